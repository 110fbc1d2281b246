/* Keras import: a file of Keras's `model.save("m.h5")` (HDF5: the root attribute model_config,
 * JSON read with jansson, and the groups model_weights/<layer>/ holding each layer's tensors),
 * a Sequential model or a functional one shaped as a chain, into convoy's model text (one Keras
 * layer at a time, its shapes followed) and weights read against the built network's shapes. */
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/interop.h"
#include "interop/import-write.h"
#include "io/h5io.h"

typedef struct {
    const char *name, *cls;
    json_t *cfg;
} klayer;

typedef struct {
    const char *path;
    cv_err *err;
    FILE *text;
    bool image;          /* the flowing tensor: an (h, w, c) map, else a vector of d */
    int h, w, c, d;
    bool scaled;         /* a Rescaling by 1/255 first: normalize=scale */
    char shape[64];      /* the input line's shape= */
    int n;               /* convoy layers written (the input is layer 0) */
    cv_act act;          /* the last line's activation and a dense's units (compile's loss) */
    int units;
    const klayer *src[CV_MAX_LAYERS]; /* the Keras layer giving convoy layer l its weights */
    layer_weights wt[CV_MAX_LAYERS];
} kimp;

static int kfail(kimp *m, const klayer *L, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int kfail(kimp *m, const klayer *L, const char *fmt, ...)
{
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cv_errf(m->err, "%s: layer '%s' (%s): %s", m->path, L->name, L->cls, what);
}

static const char *str_of(const json_t *cfg, const char *key, const char *def)
{
    const json_t *v = json_object_get(cfg, key);
    return !v || json_is_null(v) ? def : json_is_string(v) ? json_string_value(v) : "(not a string)";
}

static double num_of(const json_t *cfg, const char *key, double def)
{
    const json_t *v = json_object_get(cfg, key);
    return json_is_number(v) ? json_number_value(v) : json_is_null(v) || !v ? def : NAN;
}

static bool bool_of(const json_t *cfg, const char *key, bool def)
{
    const json_t *v = json_object_get(cfg, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* key as (rows, columns): an integer, a list of two, or def when absent or null */
static int pair(kimp *m, const klayer *L, const char *key, int def, int out[2])
{
    const json_t *v = json_object_get(L->cfg, key);
    out[0] = out[1] = def;
    if (!v || json_is_null(v)) return def > 0 ? 0 : kfail(m, L, "no %s", key);
    if (json_is_integer(v)) out[0] = out[1] = (int)json_integer_value(v);
    else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)) &&
             json_is_integer(json_array_get(v, 1)))
        out[0] = (int)json_integer_value(json_array_get(v, 0)), out[1] = (int)json_integer_value(json_array_get(v, 1));
    else return kfail(m, L, "%s is not an integer or a pair of them", key);
    if (out[0] < 1 || out[1] < 1 || out[0] > 1 << 16 || out[1] > 1 << 16)
        return kfail(m, L, "%s=%d,%d: convoy's are positive", key, out[0], out[1]);
    return 0;
}

static int need_image(kimp *m, const klayer *L)
{
    const char *df = str_of(L->cfg, "data_format", "channels_last");
    if (strcmp(df, "channels_last") != 0)
        return kfail(m, L, "data_format=%s: convoy's tensors are channels_last (N, H, W, C)", df);
    return m->image ? 0 : kfail(m, L, "its input is a vector of %d: convoy's %s takes (H, W, C) maps", m->d, L->cls);
}

static int act_of(kimp *m, const klayer *L, cv_act *a)
{
    static const struct { const char *name; cv_act act; } acts[] = {
        {"linear", CV_ACT_LINEAR}, {"relu", CV_ACT_RELU}, {"sigmoid", CV_ACT_SIGMOID}, {"tanh", CV_ACT_TANH},
        {"softmax", CV_ACT_SOFTMAX}};
    const char *s = str_of(L->cfg, "activation", "linear");
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(s, acts[i].name) == 0) return *a = acts[i].act, 0;
    return kfail(m, L, "activation '%s': convoy's are linear, relu, sigmoid, tanh, softmax (and the LeakyReLU layer)", s);
}

/* a new model-file line; layers with weights name their Keras layer (its tensors come later) */
static int line(kimp *m, const klayer *weights, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int line(kimp *m, const klayer *weights, const char *fmt, ...)
{
    if (m->n + 1 >= CV_MAX_LAYERS) return cv_errf(m->err, "%s: more than the %d layers a convoy model may have", m->path, CV_MAX_LAYERS - 1);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(m->text, fmt, ap);
    va_end(ap);
    if (weights && !bool_of(weights->cfg, "trainable", true)) fputs(" trainable=false", m->text);
    fputc('\n', m->text);
    m->src[++m->n] = weights;
    m->act = CV_ACT_LINEAR, m->units = 0;
    return 0;
}

static int conv2d(kimp *m, const klayer *L)
{
    int k[2], s[2], dil[2];
    cv_act a = CV_ACT_LINEAR;
    const char *pad = str_of(L->cfg, "padding", "valid");
    const int filters = (int)num_of(L->cfg, "filters", 0), groups = (int)num_of(L->cfg, "groups", 1);
    if (need_image(m, L) || pair(m, L, "kernel_size", 0, k) || pair(m, L, "strides", 1, s) ||
        pair(m, L, "dilation_rate", 1, dil) || act_of(m, L, &a))
        return -1;
    if (filters < 1) return kfail(m, L, "filters is not a positive integer");
    if (dil[0] != 1 || dil[1] != 1) return kfail(m, L, "dilation_rate=%d,%d: convoy's convolutions have no dilation", dil[0], dil[1]);
    if (groups != 1) return kfail(m, L, "groups=%d: convoy's convolutions are not grouped", groups);
    const bool same = strcmp(pad, "same") == 0;
    if (!same && strcmp(pad, "valid") != 0) return kfail(m, L, "padding=%s: convoy's are valid and same", pad);
    const bool bias = bool_of(L->cfg, "use_bias", true);
    if (line(m, L, "conv2d    filters=%d kernel=%d,%d stride=%d,%d padding=%s activation=%s%s", filters, k[0], k[1],
             s[0], s[1], pad, cv_act_name(a), bias ? "" : " use_bias=false"))
        return -1;
    m->act = a;
    m->h = same ? (m->h + s[0] - 1) / s[0] : (m->h - k[0]) / s[0] + 1;
    m->w = same ? (m->w + s[1] - 1) / s[1] : (m->w - k[1]) / s[1] + 1;
    m->c = filters;
    return 0;
}

static int pool(kimp *m, const klayer *L)
{
    int p[2], s[2];
    if (need_image(m, L) || pair(m, L, "pool_size", 2, p)) return -1;
    const json_t *st = json_object_get(L->cfg, "strides");
    if (!st || json_is_null(st)) s[0] = p[0], s[1] = p[1];
    else if (pair(m, L, "strides", 1, s)) return -1;
    const char *pad = str_of(L->cfg, "padding", "valid");
    if (strcmp(pad, "same") == 0) { /* TensorFlow pads only where the windows run past the map */
        const int n[2] = {m->h, m->w};
        for (int a = 0; a < 2; a++)
            if (((n[a] + s[a] - 1) / s[a] - 1) * s[a] + p[a] > n[a])
                return kfail(m, L, "padding=same pads this %dx%d map: convoy's pools do not pad (write padding=valid, or "
                             "ZeroPadding2D before it)", m->h, m->w);
    } else if (strcmp(pad, "valid") != 0) return kfail(m, L, "padding=%s: convoy's pools are valid", pad);
    if (line(m, NULL, "%s pool=%d,%d stride=%d,%d", strcmp(L->cls, "MaxPooling2D") == 0 ? "maxpool2d" : "avgpool2d",
             p[0], p[1], s[0], s[1]))
        return -1;
    m->h = (m->h - p[0]) / s[0] + 1, m->w = (m->w - p[1]) / s[1] + 1;
    return 0;
}

static int global_pool(kimp *m, const klayer *L)
{
    if (need_image(m, L)) return -1;
    if (bool_of(L->cfg, "keepdims", false)) return kfail(m, L, "keepdims=true: convoy's global pools give vectors");
    m->image = false, m->d = m->c;
    return line(m, NULL, "%s", strcmp(L->cls, "GlobalMaxPooling2D") == 0 ? "globalmaxpool2d" : "globalavgpool2d");
}

static int zeropad(kimp *m, const klayer *L)
{
    if (need_image(m, L)) return -1;
    const json_t *v = json_object_get(L->cfg, "padding");
    int p[4];
    if (json_is_integer(v)) p[0] = p[1] = p[2] = p[3] = (int)json_integer_value(v);
    else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)))
        p[0] = p[1] = (int)json_integer_value(json_array_get(v, 0)), p[2] = p[3] = (int)json_integer_value(json_array_get(v, 1));
    else if (json_is_array(v) && json_array_size(v) == 2 && json_array_size(json_array_get(v, 0)) == 2 &&
             json_array_size(json_array_get(v, 1)) == 2)
        for (int i = 0; i < 4; i++) p[i] = (int)json_integer_value(json_array_get(json_array_get(v, i / 2), i % 2));
    else return kfail(m, L, "padding is not an integer, a pair or ((top, bottom), (left, right))");
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > 1 << 16) return kfail(m, L, "padding %d: convoy's is >= 0", p[i]);
    m->h += p[0] + p[1], m->w += p[2] + p[3];
    return line(m, NULL, "zeropad2d padding=%d,%d,%d,%d", p[0], p[1], p[2], p[3]);
}

static int batchnorm(kimp *m, const klayer *L)
{
    const json_t *ax = json_object_get(L->cfg, "axis");
    if (json_is_array(ax) && json_array_size(ax) == 1) ax = json_array_get(ax, 0);
    const int last = m->image ? 3 : 1;
    const int a = json_is_integer(ax) ? (int)json_integer_value(ax) : ax ? 0 : -1;
    if (a != -1 && a != last)
        return kfail(m, L, "axis is not the last (-1 or %d): convoy's batchnorm normalises each channel", last);
    const double mom = num_of(L->cfg, "momentum", 0.99), eps = num_of(L->cfg, "epsilon", 1e-3);
    if (bool_of(L->cfg, "renorm", false)) return kfail(m, L, "renorm=true: convoy's batchnorm has no renormalisation");
    return line(m, L, "batchnorm momentum=%.9g epsilon=%.9g center=%s scale=%s", mom, eps,
                bool_of(L->cfg, "center", true) ? "true" : "false", bool_of(L->cfg, "scale", true) ? "true" : "false");
}

static int activation(kimp *m, const klayer *L)
{
    cv_act a = CV_ACT_LINEAR;
    double alpha = 0;
    if (strcmp(L->cls, "Activation") == 0) {
        if (act_of(m, L, &a)) return -1;
    } else if (strcmp(L->cls, "Softmax") == 0) {
        const json_t *ax = json_object_get(L->cfg, "axis");
        if (json_is_array(ax) && json_array_size(ax) == 1) ax = json_array_get(ax, 0);
        if (ax && !(json_is_integer(ax) && json_integer_value(ax) == -1))
            return kfail(m, L, "an axis other than -1: convoy's softmax is over the last axis");
        a = CV_ACT_SOFTMAX;
    } else if (strcmp(L->cls, "LeakyReLU") == 0) {
        alpha = num_of(L->cfg, "negative_slope", num_of(L->cfg, "alpha", 0.3)), a = CV_ACT_LEAKY_RELU;
    } else { /* ReLU */
        const json_t *mx = json_object_get(L->cfg, "max_value");
        if (mx && !json_is_null(mx)) return kfail(m, L, "max_value=%g: convoy's relu has no ceiling", json_number_value(mx));
        if (num_of(L->cfg, "threshold", 0) != 0) return kfail(m, L, "threshold=%g: convoy's relu is 0 below 0", num_of(L->cfg, "threshold", 0));
        alpha = num_of(L->cfg, "negative_slope", 0);
        a = alpha != 0 ? CV_ACT_LEAKY_RELU : CV_ACT_RELU;
    }
    if (isnan(alpha)) return kfail(m, L, "its slope is not a number");
    if (a == CV_ACT_LEAKY_RELU ? line(m, NULL, "activation leaky_relu alpha=%.9g", alpha)
                               : line(m, NULL, "activation %s", cv_act_name(a)))
        return -1;
    m->act = a;
    return 0;
}

static int dense(kimp *m, const klayer *L)
{
    cv_act a = CV_ACT_LINEAR;
    const int units = (int)num_of(L->cfg, "units", 0);
    if (act_of(m, L, &a)) return -1;
    if (m->image)
        return kfail(m, L, "its input is a %dx%dx%d map: convoy's dense reads vectors (Flatten or a global pool before it)",
                     m->h, m->w, m->c);
    if (units < 1) return kfail(m, L, "units is not a positive integer");
    const bool bias = bool_of(L->cfg, "use_bias", true);
    if (line(m, L, "dense     units=%d activation=%s%s", units, cv_act_name(a), bias ? "" : " use_bias=false")) return -1;
    m->act = a, m->units = units, m->d = units;
    return 0;
}

static int flatten(kimp *m, const klayer *L)
{
    if (!m->image) return 0; /* a vector stays one */
    if (need_image(m, L)) return -1;
    m->image = false, m->d = m->h * m->w * m->c;
    return line(m, NULL, "flatten");
}

static int dropout(kimp *m, const klayer *L)
{
    const cv_act a = m->act;
    const int u = m->units;
    if (line(m, NULL, "dropout   rate=%.9g", num_of(L->cfg, "rate", NAN))) return -1;
    m->act = a, m->units = u; /* inference passes through: the loss follows the layer before */
    return 0;
}

static int rescaling(kimp *m, const klayer *L)
{
    const double s = num_of(L->cfg, "scale", NAN), o = num_of(L->cfg, "offset", 0);
    if (m->n || m->scaled || !(fabs(s * 255 - 1) < 1e-6) || o != 0)
        return kfail(m, L, "scale=%g offset=%g: convoy expresses only x/255 (scale=1/255, offset=0) as the first layer "
                     "(input normalize=scale)", s, o);
    m->scaled = true;
    return 0;
}

static const struct {
    const char *cls;
    int (*fn)(kimp *, const klayer *);
} kinds[] = {
    {"Conv2D", conv2d}, {"MaxPooling2D", pool}, {"AveragePooling2D", pool}, {"GlobalAveragePooling2D", global_pool},
    {"GlobalMaxPooling2D", global_pool}, {"BatchNormalization", batchnorm}, {"Activation", activation},
    {"ReLU", activation}, {"LeakyReLU", activation}, {"Softmax", activation}, {"Dense", dense}, {"Flatten", flatten},
    {"Dropout", dropout}, {"ZeroPadding2D", zeropad}, {"Rescaling", rescaling},
};

/* the input shape: an InputLayer's batch_input_shape (Keras 2) or batch_shape (Keras 3), or the
 * first layer's batch_input_shape */
static int input_shape(kimp *m, const klayer *L, const json_t *shape)
{
    const size_t r = json_array_size(shape);
    int d[3] = {0};
    for (size_t i = 1; i < r && i < 4; i++) d[i - 1] = json_is_integer(json_array_get(shape, i)) ? (int)json_integer_value(json_array_get(shape, i)) : -1;
    const bool ok = (r == 4 || r == 2) && d[0] > 0 && (r == 2 || (d[1] > 0 && d[2] > 0)) && d[0] < 1 << 24 && d[1] < 1 << 24 && d[2] < 1 << 24;
    if (!ok) {
        char *s = json_dumps(shape, JSON_COMPACT | JSON_ENCODE_ANY);
        const int rc = kfail(m, L, "input shape %s: convoy takes (None, H, W, C) images or (None, D) vectors of fixed size", s ? s : "?");
        free(s);
        return rc;
    }
    m->image = r == 4;
    if (m->image) m->h = d[0], m->w = d[1], m->c = d[2];
    else m->d = d[0];
    if (m->image) snprintf(m->shape, sizeof m->shape, "%d,%d,%d", d[0], d[1], d[2]);
    else snprintf(m->shape, sizeof m->shape, "%d", d[0]);
    return 0;
}

/* the name of the one layer whose output L reads (Keras 2's [[["name", 0, 0, {}]]] or Keras 3's
 * {"args": [{"config": {"keras_history": ["name", 0, 0]}}]}); NULL when it reads none or several */
static const char *inbound(const json_t *layer, int *count)
{
    const json_t *nodes = json_object_get(layer, "inbound_nodes"), *node = json_array_get(nodes, 0), *t = NULL;
    *count = 0;
    if (json_array_size(nodes) != 1) return *count = (int)json_array_size(nodes), NULL;
    if (json_is_array(node)) *count = (int)json_array_size(node), t = json_array_get(node, 0);
    else {
        const json_t *args = json_object_get(node, "args");
        *count = (int)json_array_size(args);
        t = json_object_get(json_object_get(json_array_get(args, 0), "config"), "keras_history");
    }
    return *count == 1 && json_is_string(json_array_get(t, 0)) ? json_string_value(json_array_get(t, 0)) : NULL;
}

static const char chain[] = "convoy imports Sequential models and functional ones whose every layer reads the one before";

/* model_config's layers in order, as lines */
static int translate(kimp *m, json_t *root, klayer *ls)
{
    const char *cls = str_of(root, "class_name", "(none)");
    const bool functional = strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0;
    if (!functional && strcmp(cls, "Sequential") != 0)
        return cv_errf(m->err, "%s: model_config's class_name is '%s': %s", m->path, cls, chain);
    json_t *cfg = json_object_get(root, "config"), *layers = json_is_array(cfg) ? cfg : json_object_get(cfg, "layers");
    const size_t n = json_array_size(layers);
    if (!n) return cv_errf(m->err, "%s: model_config holds no layers", m->path);
    if (n >= CV_MAX_LAYERS) return cv_errf(m->err, "%s: more than the %d layers a convoy model may have", m->path, CV_MAX_LAYERS - 1);
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(layers, i);
        ls[i].cls = str_of(l, "class_name", "(no class_name)");
        ls[i].cfg = json_object_get(l, "config");
        ls[i].name = str_of(ls[i].cfg, "name", str_of(l, "name", "(no name)"));
        if (!json_is_object(ls[i].cfg)) return kfail(m, &ls[i], "no config object");
        int k = 0;
        const char *from = functional ? inbound(l, &k) : NULL;
        if (functional && i && !from) return kfail(m, &ls[i], "it reads %d tensors: %s", k, chain);
        if (functional && i && strcmp(from, ls[i - 1].name) != 0)
            return kfail(m, &ls[i], "it reads '%s', not the layer before it ('%s'): %s", from, ls[i - 1].name, chain);
    }
    size_t first = 0;
    const json_t *shape = json_object_get(ls[0].cfg, "batch_input_shape");
    if (strcmp(ls[0].cls, "InputLayer") == 0) {
        if (!shape) shape = json_object_get(ls[0].cfg, "batch_shape");
        first = 1;
    }
    if (!shape) return kfail(m, &ls[0], "no input shape (batch_input_shape): build the model with an Input before saving");
    if (input_shape(m, &ls[0], shape)) return -1;
    for (size_t i = first; i < n; i++) {
        size_t j = 0;
        while (j < sizeof kinds / sizeof kinds[0] && strcmp(kinds[j].cls, ls[i].cls) != 0) j++;
        if (j == sizeof kinds / sizeof kinds[0])
            return kfail(m, &ls[i], "convoy has no layer for %s (it imports InputLayer, Conv2D, MaxPooling2D, "
                         "AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, BatchNormalization, Activation, "
                         "ReLU, LeakyReLU, Softmax, Dense, Flatten, Dropout, ZeroPadding2D, Rescaling)", ls[i].cls);
        if (kinds[j].fn(m, &ls[i])) return -1;
    }
    if (m->image && line(m, NULL, "flatten")) return -1; /* convoy's output is flat: (h, w, c) order */
    cv_import_compile_line(m->text, m->act, m->units, m->image ? 0 : m->d);
    return 0;
}

/* the weight of group g called want ("kernel": Keras writes "conv2d/kernel:0", Keras 3
 * "kernel") into *v, its shape checked against dims[0..rank) */
static int weight(kimp *m, const klayer *L, hid_t g, char **names, int nn, const char *want, int rank, const int64_t *dims,
                  float **v)
{
    const size_t wl = strlen(want);
    const char *name = NULL;
    for (int i = 0; i < nn && !name; i++) {
        const char *s = strrchr(names[i], '/');
        s = s ? s + 1 : names[i];
        if (strncmp(s, want, wl) == 0 && (s[wl] == 0 || strcmp(s + wl, ":0") == 0)) name = names[i];
    }
    if (!name) return kfail(m, L, "no weight '%s' among its weight_names in /model_weights/%s", want, L->name);
    int r;
    hsize_t hd[8];
    cv_err e;
    if (cv_h5_shape(g, name, &r, hd, m->path, &e)) return kfail(m, L, "weight '%s' is missing: %s", name, e.msg);
    bool same = r == rank;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) same = same && (int64_t)hd[i] == dims[i], n *= dims[i];
    if (!same) {
        char have[128] = "", need[128] = "";
        for (int i = 0; i < r && i < 8; i++) snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", i ? "," : "", (unsigned long long)hd[i]);
        for (int i = 0; i < rank; i++) snprintf(need + strlen(need), sizeof need - strlen(need), "%s%lld", i ? "," : "", (long long)dims[i]);
        return kfail(m, L, "weight '%s' has shape (%s), the layer needs (%s)", name, have, need);
    }
    if (!(*v = cv_malloc(sizeof(float) * (size_t)n, "Keras weights", m->err))) return -1;
    if (cv_h5_read_tensor(g, name, H5T_NATIVE_FLOAT, r, hd, *v, m->path, &e)) {
        const size_t pl = strlen(m->path);
        return kfail(m, L, "%s", strncmp(e.msg, m->path, pl) == 0 && e.msg[pl] == ':' ? e.msg + pl + 1 : e.msg);
    }
    return 0;
}

static float *filled(int64_t n, float x, cv_err *err)
{
    float *v = cv_malloc(sizeof(float) * (size_t)n, "batchnorm weights", err);
    for (int64_t i = 0; v && i < n; i++) v[i] = x;
    return v;
}

/* the tensors of convoy layer l from its Keras layer's group */
static int layer_weights_read(kimp *m, hid_t mw, const cv_net *net, int l)
{
    const klayer *L = m->src[l];
    const cv_layer_spec *s = &cv_net_spec(net)->layers[l];
    const cv_param_view pv = cv_net_param_view(net, l);
    layer_weights *w = &m->wt[l];
    if (H5Lexists(mw, L->name, H5P_DEFAULT) <= 0) return kfail(m, L, "its weights are missing: no group /model_weights/%s", L->name);
    const hid_t g = H5Gopen2(mw, L->name, H5P_DEFAULT);
    if (g < 0) return kfail(m, L, "/model_weights/%s is not a group", L->name);
    char **names = NULL;
    cv_err e;
    const int nn = cv_h5_attr_read_strs(g, "weight_names", &names, m->path, &e);
    int rc = nn < 0 ? kfail(m, L, "%s", e.msg) : 0;
    w->n[0] = pv.kernel_n, w->n[1] = pv.bias_n, w->n[2] = pv.state_n;
    if (!rc && s->kind == CV_LAYER_BATCHNORM) {
        const int64_t c = pv.bias_n;
        float *mv[2] = {NULL, NULL};
        rc = s->scale ? weight(m, L, g, names, nn, "gamma", 1, &c, &w->v[0]) : !(w->v[0] = filled(c, 1, m->err));
        if (!rc) rc = s->center ? weight(m, L, g, names, nn, "beta", 1, &c, &w->v[1]) : !(w->v[1] = filled(c, 0, m->err));
        if (!rc) rc = weight(m, L, g, names, nn, "moving_mean", 1, &c, &mv[0]) || weight(m, L, g, names, nn, "moving_variance", 1, &c, &mv[1]);
        for (int64_t i = 0; !rc && i < c; i++)
            if (!(mv[1][i] >= 0)) rc = kfail(m, L, "moving_variance[%lld] is %g: a variance is >= 0", (long long)i, mv[1][i]);
        if (!rc && (w->v[2] = cv_malloc(sizeof(float) * 2 * (size_t)c, "batchnorm statistics", m->err))) {
            memcpy(w->v[2], mv[0], sizeof(float) * (size_t)c);
            memcpy(w->v[2] + c, mv[1], sizeof(float) * (size_t)c);
        } else rc = -1;
        free(mv[0]), free(mv[1]);
    } else if (!rc) {
        int64_t kd[4];
        const int kr = cv_layer_kernel_dims(s, kd);
        rc = weight(m, L, g, names, nn, "kernel", kr, kd, &w->v[0]);
        if (!rc && pv.bias_n) rc = weight(m, L, g, names, nn, "bias", 1, &pv.bias_n, &w->v[1]);
    }
    for (int i = 0; i < (nn > 0 ? nn : 0); i++) free(names[i]);
    free(names);
    H5Gclose(g);
    return rc ? -1 : 0;
}

/* the model file: where it came from, the input line, the layers and compile (body) */
static char *model_text(const kimp *m, hid_t f, const char *body)
{
    cv_err e;
    char *ver = H5Aexists(f, "keras_version") > 0 ? cv_h5_attr_read_str(f, "keras_version", m->path, &e) : NULL;
    char *be = H5Aexists(f, "backend") > 0 ? cv_h5_attr_read_str(f, "backend", m->path, &e) : NULL;
    const char *base = strrchr(m->path, '/');
    const size_t size = strlen(m->path) + strlen(body) + (ver ? strlen(ver) : 0) + (be ? strlen(be) : 0) + 256;
    char *t = malloc(size);
    if (t)
        snprintf(t, size, "# imported by `convoy import keras` from %s (Keras %s, backend %s)\ninput     shape=%s normalize=%s\n%s",
                 base ? base + 1 : m->path, ver ? ver : "of unknown version", be ? be : "unknown", m->shape,
                 m->scaled ? "scale" : "none", body);
    free(ver), free(be);
    return t;
}

/* the file's model as a network holding its weights; NULL with the reason in err */
static cv_net *keras_load(kimp *m, const char *name)
{
    const hid_t f = cv_h5_open_read(m->path, m->err);
    if (f < 0) return NULL;
    char *cfg = NULL, *body = NULL, *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    klayer *ls = cv_calloc(CV_MAX_LAYERS, sizeof *ls, "Keras layers", m->err);
    cv_net *net = NULL;
    cv_err e;
    int rc = ls ? 0 : -1;
    if (!rc && H5Aexists(f, "model_config") <= 0)
        rc = cv_errf(m->err, "%s: no attribute model_config: not a file of Keras's model.save() (save_weights() files hold "
                     "no model)", m->path);
    if (!rc && !(cfg = cv_h5_attr_read_str(f, "model_config", m->path, &e))) rc = cv_errf(m->err, "%s", e.msg);
    json_error_t je;
    if (!rc && !(root = json_loads(cfg, 0, &je)))
        rc = cv_errf(m->err, "%s: model_config is not JSON: line %d, column %d: %s", m->path, je.line, je.column, je.text);
    if (!rc && !(m->text = open_memstream(&body, &len))) rc = cv_errf(m->err, "out of memory");
    if (!rc) rc = translate(m, root, ls);
    if (m->text && fclose(m->text) && !rc) rc = cv_errf(m->err, "out of memory");
    m->text = NULL;
    if (!rc && !(text = model_text(m, f, body))) rc = cv_errf(m->err, "out of memory");
    if (!rc && !(net = cv_import_net(m->path, text, name, 1, m->err))) rc = -1;
    const hid_t mw = rc ? -1 : H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? H5Gopen2(f, "model_weights", H5P_DEFAULT) : -1;
    if (!rc && mw < 0) rc = cv_errf(m->err, "%s: no group model_weights: the file holds no weights", m->path);
    for (int l = 1; !rc && l <= m->n; l++)
        if (m->src[l] && cv_layer_has_weights(&cv_net_spec(net)->layers[l])) rc = layer_weights_read(m, mw, net, l);
    if (!rc) rc = cv_import_put(net, m->path, m->wt, m->err);
    if (mw >= 0) H5Gclose(mw);
    if (rc) cv_net_free(net), net = NULL;
    for (int l = 0; l < CV_MAX_LAYERS; l++)
        for (int s = 0; s < 3; s++) free(m->wt[l].v[s]);
    json_decref(root);
    free(cfg), free(body), free(text), free(ls);
    H5Fclose(f);
    if (!net) cv_import_clean_msg(m->err);
    return net;
}

int cv_keras_import(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err)
{
    char model[4096];
    if (snprintf(model, sizeof model, "%s/model.model", dir) >= (int)sizeof model) return cv_errf(err, "%s: path too long", dir);
    kimp *m = cv_calloc(1, sizeof *m, "Keras import", err);
    if (!m) return -1;
    m->path = path, m->err = err;
    cv_net *net = keras_load(m, model);
    free(m);
    return cv_import_save(dir, net, NULL, NULL, layers, params, err);
}
