/* What follows from a layer's spec alone, before any weights exist: the names of activations,
 * initialisers and normalisations as written in model files, the shape rules every kind shares
 * (TensorFlow's, so shapes match Keras), and the kind-independent questions asked of a spec
 * (parameter count, kernel layout, model-file line), answered through its kind's descriptor. */
#include "layers/layers-impl.h"

#include <limits.h>
#include <stdio.h>

static const char *const act_names[CV_ACT_COUNT] = {
    [CV_ACT_LINEAR] = "linear",   [CV_ACT_RELU] = "relu", [CV_ACT_LEAKY_RELU] = "leaky_relu",
    [CV_ACT_SIGMOID] = "sigmoid", [CV_ACT_TANH] = "tanh", [CV_ACT_SOFTMAX] = "softmax",
};

static const char *const init_names[CV_INIT_COUNT] = {
    [CV_INIT_GLOROT_UNIFORM] = "glorot_uniform", [CV_INIT_GLOROT_NORMAL] = "glorot_normal",
    [CV_INIT_HE_NORMAL] = "he_normal",           [CV_INIT_HE_UNIFORM] = "he_uniform",
    [CV_INIT_ZEROS] = "zeros",
};

static const char *const norm_names[CV_NORM_COUNT] = {
    [CV_NORM_AUTO] = "auto", [CV_NORM_SCALE] = "scale", [CV_NORM_STANDARDIZE] = "standardize",
    [CV_NORM_NONE] = "none",
};

/* The casts to unsigned make a negative (corrupt) enum value land on "?" too. */
const char *cv_act_name(cv_act a) { return (unsigned)a < CV_ACT_COUNT ? act_names[a] : "?"; }
const char *cv_init_name(cv_init i) { return (unsigned)i < CV_INIT_COUNT ? init_names[i] : "?"; }
const char *cv_norm_name(cv_norm n) { return (unsigned)n < CV_NORM_COUNT ? norm_names[n] : "?"; }

/* Output size of a window sliding over n cells: valid padding floors (n-k)/s; same padding
 * follows TensorFlow, ceil(n/s), whatever the window. Returns 0 for an empty output. */
static int window_out(int n, int k, int s, bool same)
{
    if (n <= 0) return 0;
    if (same) return (n - 1) / s + 1; /* ceil(n/s) without overflowing n + s - 1 */
    return k > n ? 0 : (n - k) / s + 1;
}

/* Values in one sample of shape s, or -1 beyond INT_MAX: cv_shape_size would overflow int64
 * for three large dimensions, and no per-sample tensor that large can be trained anyway. */
static int64_t checked_size(cv_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) {
        if (s.d[i] < 0 || (s.d[i] > 0 && n > INT_MAX / s.d[i])) return -1;
        n *= s.d[i];
    }
    return n;
}

/* Parameter counts are int64 and summed over up to CV_MAX_LAYERS layers: a layer may hold at
 * most 2^40 (4 TiB of float32), far above any memory, so the sums cannot overflow. */
#define MAX_LAYER_PARAMS 1099511627776.0

int cv_layer_infer_window(cv_layer_spec *l, bool conv, const char *file, cv_err *err)
{
    const char *name = cv_layer_kind_name(l->kind);
    cv_window_spec ws;
    cv_layer_kinds[l->kind]->window(l, &ws);
    char sb[64];
    if (l->in.rank != 3)
        return cv_errf(err, "%s:%d: %s needs an (H,W,C) input; got %s", file, l->line, name,
                       cv_shape_str(l->in, sb, sizeof sb));
    /* the parser guarantees these; a hand-built spec must not divide by zero */
    bool ok = !conv || l->filters > 0;
    for (int i = 0; i < 2; i++) ok = ok && ws.k[i] > 0 && ws.stride[i] > 0;
    for (int i = 0; i < 4; i++) ok = ok && ws.pad[i] >= 0 && ws.pad[i] <= INT_MAX / 4;
    if (!ok)
        return cv_errf(err, "%s:%d: %s needs positive %s, stride%s and padding >= 0", file, l->line, name,
                       conv ? "kernel" : "pool", conv ? ", filters" : "");
    /* a padding as large as the kernel would add outputs that see only padding */
    if (!ws.same && (ws.pad[0] >= ws.k[0] || ws.pad[1] >= ws.k[0] || ws.pad[2] >= ws.k[1] || ws.pad[3] >= ws.k[1]))
        return cv_errf(err, "%s:%d: padding %d,%d,%d,%d must be smaller than the %dx%d window on each side", file,
                       l->line, ws.pad[0], ws.pad[1], ws.pad[2], ws.pad[3], ws.k[0], ws.k[1]);
    const int h = window_out(l->in.d[0] + ws.pad[0] + ws.pad[1], ws.k[0], ws.stride[0], ws.same);
    const int w = window_out(l->in.d[1] + ws.pad[2] + ws.pad[3], ws.k[1], ws.stride[1], ws.same);
    if (h == 0 || w == 0) {
        if (conv)
            return cv_errf(err, "%s:%d: kernel %dx%d larger than its %dx%d input (use padding=same "
                           "or a smaller kernel)", file, l->line, ws.k[0], ws.k[1], l->in.d[0], l->in.d[1]);
        return cv_errf(err, "%s:%d: pooling %dx%d on a %dx%d input gives an empty output", file,
                       l->line, ws.k[0], ws.k[1], l->in.d[0], l->in.d[1]);
    }
    l->out = cv_shape_hwc(h, w, conv ? l->filters : l->in.d[2]);
    return 0;
}

int cv_layer_infer_shape(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    if (!file) file = "<model>";
    if ((unsigned)l->kind >= CV_LAYER_KIND_COUNT)
        return cv_errf(err, "%s:%d: unknown layer kind %d", file, l->line, (int)l->kind);
    if (cv_layer_kinds[l->kind]->infer(l, file, err)) return -1;
    if (checked_size(l->out) < 0)
        return cv_errf(err, "%s:%d: %s gives %s, more than %d values per sample", file,
                       l->line, cv_layer_kind_name(l->kind), cv_shape_str(l->out, sb, sizeof sb),
                       INT_MAX);
    /* doubles: kernel*kernel*Cin*filters can overflow int64 before the comparison */
    int64_t d[4];
    const int rank = cv_layer_kernel_dims(l, d);
    double params = rank ? 1.0 : 0.0;
    for (int i = 0; i < rank; i++) params *= (double)d[i];
    if (params > MAX_LAYER_PARAMS)
        return cv_errf(err, "%s:%d: %s has %.3g parameters, more than 2^40", file, l->line,
                       cv_layer_kind_name(l->kind), params);
    return 0;
}

/* flatten's rule: rank 1 stays as it is (a harmless no-op) */
int cv_layer_infer_flat(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    const int64_t n = checked_size(l->in);
    if (n < 0)
        return cv_errf(err, "%s:%d: flatten of %s gives more than %d values", file, l->line,
                       cv_shape_str(l->in, sb, sizeof sb), INT_MAX);
    l->out = cv_shape_vec((int)n);
    return 0;
}

int cv_layer_infer_same(cv_layer_spec *l, const char *file, cv_err *err)
{
    (void)file, (void)err;
    l->out = l->in;
    return 0;
}

int cv_layer_kernel_dims(const cv_layer_spec *l, int64_t dims[4])
{
    const cv_layer_kind_desc *kd = (unsigned)l->kind < CV_LAYER_KIND_COUNT ? cv_layer_kinds[l->kind] : NULL;
    return kd && kd->kernel_dims ? kd->kernel_dims(l, dims) : 0;
}

/* Needs l->in, so call it after shape inference. */
int64_t cv_layer_param_count(const cv_layer_spec *l)
{
    int64_t d[4];
    const int rank = cv_layer_kernel_dims(l, d);
    if (!rank) return 0;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    const cv_layer_kind_desc *kd = cv_layer_kinds[l->kind];
    return n + (kd->bias_count ? kd->bias_count(l) : 0);
}

int64_t cv_layer_state_count(const cv_layer_spec *l)
{
    const cv_layer_kind_desc *kd = (unsigned)l->kind < CV_LAYER_KIND_COUNT ? cv_layer_kinds[l->kind] : NULL;
    return kd && kd->state_count ? kd->state_count(l) : 0;
}

static unsigned kind_flags(const cv_layer_spec *l)
{
    return (unsigned)l->kind < CV_LAYER_KIND_COUNT ? cv_layer_kinds[l->kind]->flags : 0;
}

bool cv_layer_batch_stats(const cv_layer_spec *l) { return (kind_flags(l) & CV_KIND_BATCH) && l->trainable; }

bool cv_layer_has_weights(const cv_layer_spec *l)
{
    if (!(kind_flags(l) & CV_KIND_WEIGHTS)) return false;
    const cv_layer_kind_desc *kd = cv_layer_kinds[l->kind];
    return !kd->has_weights || kd->has_weights(l);
}

cv_act cv_layer_act(const cv_layer_spec *l) { return kind_flags(l) & CV_KIND_ACT ? l->act : CV_ACT_LINEAR; }

void cv_layer_write_line(FILE *f, const cv_layer_spec *l)
{
    fputs(cv_layer_kind_name(l->kind), f);
    if ((unsigned)l->kind < CV_LAYER_KIND_COUNT && cv_layer_kinds[l->kind]->write_keys)
        cv_layer_kinds[l->kind]->write_keys(f, l);
    fputc('\n', f);
}

void cv_layer_write_pair(FILE *f, const char *key, const int v[2])
{
    if (v[0] == v[1]) fprintf(f, " %s=%d", key, v[0]);
    else fprintf(f, " %s=%d,%d", key, v[0], v[1]);
}

bool cv_layer_padded(const cv_layer_spec *l) { return l->pad[0] || l->pad[1] || l->pad[2] || l->pad[3]; }

void cv_layer_write_padding(FILE *f, const cv_layer_spec *l)
{
    const int *p = l->pad;
    if (l->same) fputs(" padding=same", f);
    else if (!cv_layer_padded(l) && l->kind != CV_LAYER_ZEROPAD2D) fputs(" padding=valid", f);
    else if (p[0] == p[1] && p[2] == p[3] && p[0] == p[2]) fprintf(f, " padding=%d", p[0]);
    else if (p[0] == p[1] && p[2] == p[3]) fprintf(f, " padding=%d,%d", p[0], p[2]);
    else fprintf(f, " padding=%d,%d,%d,%d", p[0], p[1], p[2], p[3]);
}

void cv_layer_write_act(FILE *f, const cv_layer_spec *l)
{
    fprintf(f, " activation=%s", cv_act_name(l->act));
    if (l->act == CV_ACT_LEAKY_RELU) fprintf(f, " alpha=%.9g", (double)l->alpha);
}

void cv_layer_write_weighted(FILE *f, const cv_layer_spec *l)
{
    cv_layer_write_act(f, l);
    fprintf(f, " init=%s use_bias=%s trainable=%s", cv_init_name(l->init), l->use_bias ? "true" : "false",
            l->trainable ? "true" : "false");
}
