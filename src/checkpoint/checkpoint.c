/* Checkpoint files. Layout: attribute `model` (the model file text) and `format_version` on
 * the root; /layers/NN_kind/{kernel,bias} per parameterised layer (NN = position in the model
 * file's layer list, input = 0); /normalize/{mean,std} for standardised inputs; /optimizer
 * with the hyper-parameters as attributes and the state as s1/s2. */
#include "convoy/checkpoint.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/h5io.h"

static void layer_group(char *buf, size_t n, const cv_model_spec *spec, int i)
{
    snprintf(buf, n, "layers/%02d_%s", i, cv_layer_kind_name(spec->layers[i].kind));
}

/* The kernel's dimensions in its kind's Keras layout (conv (KH,KW,Cin,Cout), dense (in,out)).
 * Returns the rank. */
/* A layer's tensor names in its group: 0 the kernel, 1 the bias (Keras's names: batchnorm's
 * gamma and beta), 2.. the parts of its untrained state (moving_mean, moving_variance). */
static const char *tensor_name(const cv_layer_spec *l, int which)
{
    const cv_layer_kind_desc *kd = cv_layer_kinds[l->kind];
    if (which >= 2) return kd->state_names[which - 2];
    return kd->param_names[which] ? kd->param_names[which] : which ? "bias" : "kernel";
}

/* The state's parts, each (count / parts) long, after the kernel and bias: names and sizes. */
static int state_parts(const cv_layer_spec *l, hsize_t *each)
{
    const cv_layer_kind_desc *kd = cv_layer_kinds[l->kind];
    const int64_t n = cv_layer_state_count(l);
    *each = n && kd->n_state ? (hsize_t)(n / kd->n_state) : 0;
    return n ? kd->n_state : 0;
}

static int kernel_dims(const cv_layer_spec *l, hsize_t *kd)
{
    int64_t d[4];
    const int rank = cv_layer_kernel_dims(l, d);
    for (int i = 0; i < rank; i++) kd[i] = (hsize_t)d[i];
    return rank;
}

int cv_checkpoint_data_info(const char *path, cv_data_info *info, cv_err *err)
{
    memset(info, 0, sizeof *info);
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    const int rc = cv_data_info_read(f, info, true, path, err);
    H5Fclose(f);
    return rc;
}

static int save_optimizer(hid_t f, const cv_optim *o, const char *path, cv_err *err)
{
    hid_t g = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cv_errf(err, "%s: cannot create /optimizer", path);
    const cv_optim_config *c = &o->cfg;
    const struct { const char *name; double v; } hp[] = {
        {"learning_rate", c->lr}, {"momentum", c->momentum}, {"variant", c->variant},
        {"rho", c->rho}, {"beta_1", c->beta1}, {"beta_2", c->beta2}, {"epsilon", c->epsilon},
        {"initial_accumulator_value", c->initial_accumulator},
    };
    int rc = cv_h5_attr_write_str(g, "name", cv_optim_name(c->kind), path, err);
    for (size_t i = 0; rc == 0 && i < sizeof hp / sizeof hp[0]; i++)
        rc = cv_h5_attr_write_f64(g, hp[i].name, hp[i].v, path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(g, "t", o->t, path, err);
    const hsize_t n = (hsize_t)o->n;
    if (rc == 0 && o->s1) rc = cv_h5_write_tensor(g, "s1", H5T_NATIVE_FLOAT, 1, &n, o->s1, path, err);
    if (rc == 0 && o->s2) rc = cv_h5_write_tensor(g, "s2", H5T_NATIVE_FLOAT, 1, &n, o->s2, path, err);
    H5Gclose(g);
    return rc;
}

/* /train: the run's counters, metric sums and callback state, for an exact resume. */
static int save_state(hid_t f, const cv_train_state *st, const cv_model_spec *spec, int64_t nparams, const char *path,
                      cv_err *err)
{
    hid_t g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cv_errf(err, "%s: cannot create /train", path);
    const cv_callbacks_state *c = &st->cb;
    const struct { const char *name; int64_t v; } iv[] = {
        {"step_in_epoch", st->step_in_epoch}, {"global_step", st->global_step},
        {"batch_size", st->batch_size}, {"n_train", st->n_train}, {"es_wait", c->es_wait},
        {"plateau_wait", c->plateau_wait}, {"cooldown", c->cooldown}, {"best_epoch", c->best_epoch},
        {"early_stopped", c->stop},
    };
    const struct { const char *name; double v; } dv[] = {
        {"es_best", c->es_best}, {"plateau_best", c->plateau_best}, {"save_best", c->save_best},
        {"lr_scale", c->lr_scale},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof iv / sizeof iv[0]; i++) rc = cv_h5_attr_write_i64(g, iv[i].name, iv[i].v, path, err);
    for (size_t i = 0; rc == 0 && i < sizeof dv / sizeof dv[0]; i++) rc = cv_h5_attr_write_f64(g, dv[i].name, dv[i].v, path, err);
    /* the epoch's metric sums: the six, then the counts the compiled metrics keep */
    const int64_t nc = cv_metrics_counts(spec);
    const hsize_t six = CV_METRIC_SIX, counts = (hsize_t)nc, n = (hsize_t)nparams;
    double *sums = rc == 0 ? cv_malloc(sizeof(double) * (size_t)(CV_METRIC_SIX + nc), "metric sums", err) : NULL;
    if (!sums) rc = -1;
    if (rc == 0) cv_metrics_pack(spec, &st->train_sums, sums);
    if (rc == 0) rc = cv_h5_write_tensor(g, "epoch_sums", H5T_NATIVE_DOUBLE, 1, &six, sums, path, err);
    if (rc == 0 && nc)
        rc = cv_h5_write_tensor(g, "epoch_counts", H5T_NATIVE_DOUBLE, 1, &counts, sums + CV_METRIC_SIX, path, err);
    free(sums);
    if (rc == 0 && st->best_weights)
        rc = cv_h5_write_tensor(g, "best_weights", H5T_NATIVE_FLOAT, 1, &n, st->best_weights, path, err);
    H5Gclose(g);
    return rc;
}

int cv_checkpoint_save_state(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                             const cv_train_state *st, cv_err *err)
{
    char tmp[1024];
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    const cv_model_spec *spec = cv_net_spec(net);
    char *text = cv_model_saved_text(spec, err); /* a base line written out: the file stands alone */
    int rc = text ? cv_h5_attr_write_str(f, "model", text, path, err) : -1;
    free(text);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "format_version", CV_CHECKPOINT_VERSION, path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "epoch", st->epoch, path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "seed", (int64_t)st->seed, path, err);
    /* the resolved normalisation, so eval and predict apply exactly what training used */
    if (rc == 0) rc = cv_h5_attr_write_str(f, "normalize", cv_norm_name(nz->mode), path, err);
    if (rc == 0) rc = cv_data_info_write(f, &st->data, path, err); /* the training data's names, image size */
    const float *w = cv_net_params(net);
    for (int i = 1; rc == 0 && i < spec->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[96];
        layer_group(name, sizeof name, spec, i);
        size_t len = strlen(name);
        hsize_t kd[4];
        const int kr = kernel_dims(&spec->layers[i], kd);
        snprintf(name + len, sizeof name - len, "/%s", tensor_name(&spec->layers[i], 0));
        rc = cv_h5_write_tensor(f, name, H5T_NATIVE_FLOAT, kr, kd, w + v.kernel_off, path, err);
        if (rc == 0 && v.bias_n) {
            const hsize_t bd = (hsize_t)v.bias_n;
            snprintf(name + len, sizeof name - len, "/%s", tensor_name(&spec->layers[i], 1));
            rc = cv_h5_write_tensor(f, name, H5T_NATIVE_FLOAT, 1, &bd, w + v.bias_off, path, err);
        }
        hsize_t each;
        const int parts = state_parts(&spec->layers[i], &each);
        for (int p = 0; rc == 0 && p < parts; p++) {
            snprintf(name + len, sizeof name - len, "/%s", tensor_name(&spec->layers[i], 2 + p));
            rc = cv_h5_write_tensor(f, name, H5T_NATIVE_FLOAT, 1, &each, w + v.state_off + (int64_t)p * (int64_t)each,
                                    path, err);
        }
    }
    if (rc == 0 && nz->mode == CV_NORM_STANDARDIZE) {
        const hsize_t n = (hsize_t)nz->dim;
        rc = cv_h5_write_tensor(f, "normalize/mean", H5T_NATIVE_FLOAT, 1, &n, nz->mean, path, err);
        if (rc == 0) rc = cv_h5_write_tensor(f, "normalize/std", H5T_NATIVE_FLOAT, 1, &n, nz->std, path, err);
    }
    if (rc == 0 && opt) rc = save_optimizer(f, opt, path, err);
    if (rc == 0) rc = save_state(f, st, spec, cv_net_param_count(net), path, err);
    if (rc) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}

int cv_checkpoint_save(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                       int64_t epochs_done, cv_err *err)
{
    cv_train_state st = {.epoch = epochs_done, .seed = cv_net_spec(net)->fit.seed};
    cv_callbacks_init(&st.cb, &cv_net_spec(net)->callbacks);
    return cv_checkpoint_save_state(path, net, nz, opt, &st, err);
}

static int read_spec(hid_t f, const char *path, cv_model_spec *spec, const cv_base_reader *rd, cv_err *err)
{
    int64_t version;
    if (H5Aexists(f, "format_version") <= 0 || H5Aexists(f, "model") <= 0)
        return cv_errf(err, "%s: not a convoy checkpoint (no format_version and model attributes)", path);
    if (cv_h5_attr_read_i64(f, "format_version", &version, path, err)) return -1;
    if (version != CV_CHECKPOINT_VERSION)
        return cv_errf(err, "%s: checkpoint format version %lld, this convoy reads version %d",
                       path, (long long)version, CV_CHECKPOINT_VERSION);
    char *text = cv_h5_attr_read_str(f, "model", path, err);
    if (!text) return -1;
    char name[600];
    snprintf(name, sizeof name, "%s:model", path);
    int rc = cv_model_parse_with(spec, text, name, rd, err);
    free(text);
    return rc;
}

/* The checkpoint's model, its base lines read at depth + 1. */
static int spec_at(const char *path, int depth, cv_model_spec *spec, cv_err *err)
{
    const cv_base_reader rd = {cv_checkpoint_base_reader.read, depth};
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    int rc = read_spec(f, path, spec, &rd, err);
    H5Fclose(f);
    return rc;
}

int cv_checkpoint_spec(const char *path, cv_model_spec *spec, cv_err *err) { return spec_at(path, 0, spec, err); }

static int read_base(const char *path, int depth, cv_model_spec *saved, cv_err *err)
{
    struct stat st; /* a FIFO or device would make HDF5 block or read forever */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return cv_errf(err, "%s is not a regular file", path);
    return spec_at(path, depth, saved, err);
}

const cv_base_reader cv_checkpoint_base_reader = {read_base, 0};

int cv_model_parse(cv_model_spec *spec, const char *text, const char *file, cv_err *err)
{
    return cv_model_parse_with(spec, text, file, &cv_checkpoint_base_reader, err);
}
int cv_model_load(cv_model_spec *spec, const char *path, cv_err *err)
{
    return cv_model_load_with(spec, path, &cv_checkpoint_base_reader, err);
}
int cv_augment_file_load(cv_model_spec *spec, const char *path, cv_err *err)
{
    return cv_augment_file_load_with(spec, path, &cv_checkpoint_base_reader, err);
}

/* Values that are squares or variances: never negative (the first one that is, named). */
static int check_nonneg(const float *v, int64_t n, const char *path, const char *where, const char *what, cv_err *err)
{
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0.0f)
            return cv_errf(err, "%s:/%s: %g at [%lld] (%s keeps squares or variances here: never negative)", path,
                           where, (double)v[i], (long long)i, what);
    return 0;
}

/* Every parameterised layer 1..last of net from /layers/NN_kind/{kernel,bias}, shapes checked. */
static int read_weights(hid_t f, cv_net *net, int last, const char *path, cv_err *err)
{
    const cv_model_spec *s = cv_net_spec(net);
    float *w = cv_net_params(net);
    for (int i = 1; i <= last; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[96];
        layer_group(name, sizeof name, s, i);
        size_t len = strlen(name);
        if (!cv_h5_exists(f, name))
            return cv_errf(err, "%s:/%s: missing (the model's layer %d, %s at %s:%d, has no weights here)",
                           path, name, i, cv_layer_kind_name(s->layers[i].kind), s->file, s->layers[i].line);
        hsize_t kd[4];
        const int kr = kernel_dims(&s->layers[i], kd);
        snprintf(name + len, sizeof name - len, "/%s", tensor_name(&s->layers[i], 0));
        if (cv_h5_read_tensor(f, name, H5T_NATIVE_FLOAT, kr, kd, w + v.kernel_off, path, err)) return -1;
        if (v.bias_n) {
            hsize_t bd = (hsize_t)v.bias_n;
            snprintf(name + len, sizeof name - len, "/%s", tensor_name(&s->layers[i], 1));
            if (cv_h5_read_tensor(f, name, H5T_NATIVE_FLOAT, 1, &bd, w + v.bias_off, path, err)) return -1;
        }
        hsize_t each;
        const int parts = state_parts(&s->layers[i], &each);
        for (int p = 0; p < parts; p++) {
            snprintf(name + len, sizeof name - len, "/%s", tensor_name(&s->layers[i], 2 + p));
            float *part = w + v.state_off + (int64_t)p * (int64_t)each;
            if (cv_h5_read_tensor(f, name, H5T_NATIVE_FLOAT, 1, &each, part, path, err))
                return -1;
            /* bad input: a negative moving variance (batchnorm takes its square root) */
            if (strstr(tensor_name(&s->layers[i], 2 + p), "variance") &&
                check_nonneg(part, (int64_t)each, path, name, cv_layer_kind_name(s->layers[i].kind), err))
                return -1;
        }
    }
    return 0;
}

/* The saved normaliser (mode attribute, and statistics for standardize). */
static int read_normalizer(hid_t f, const cv_model_spec *s, cv_normalizer *nz, const char *path, cv_err *err)
{
    char *mode = cv_h5_attr_read_str(f, "normalize", path, err);
    if (!mode) return -1;
    nz->mode = CV_NORM_COUNT;
    for (int m = 0; m < CV_NORM_COUNT; m++)
        if (m != CV_NORM_AUTO && strcmp(mode, cv_norm_name((cv_norm)m)) == 0) nz->mode = (cv_norm)m;
    free(mode);
    if (nz->mode == CV_NORM_COUNT) return cv_errf(err, "%s: attribute normalize: unknown mode", path);
    nz->dim = cv_shape_size(s->layers[0].shape);
    if (nz->mode != CV_NORM_STANDARDIZE) return 0;
    hsize_t n = (hsize_t)nz->dim;
    nz->mean = cv_malloc(sizeof(float) * n, "normalizer", err);
    nz->std = cv_malloc(sizeof(float) * n, "normalizer", err);
    if (!nz->mean || !nz->std ||
        cv_h5_read_tensor(f, "normalize/mean", H5T_NATIVE_FLOAT, 1, &n, nz->mean, path, err) ||
        cv_h5_read_tensor(f, "normalize/std", H5T_NATIVE_FLOAT, 1, &n, nz->std, path, err))
        return -1;
    /* bad input: a zero or negative standard deviation (inputs divided by it) */
    for (hsize_t j = 0; j < n; j++)
        if (!(nz->std[j] > 0.0f))
            return cv_errf(err, "%s:/normalize/std: %g at [%llu] (a standard deviation must be > 0)", path,
                           (double)nz->std[j], (unsigned long long)j);
    return 0;
}

cv_net *cv_checkpoint_load(const char *path, int max_batch, cv_normalizer *nz, cv_err *err)
{
    memset(nz, 0, sizeof *nz);
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return NULL;
    cv_model_spec spec;
    cv_net *net = NULL;
    if (read_spec(f, path, &spec, &cv_checkpoint_base_reader, err)) goto fail;
    /* the tensors must be in the file at the model's sizes before anything is allocated for
     * them: a corrupt model text must not make us allocate gigabytes */
    for (int i = 1; i < spec.n_layers; i++) {
        if (!cv_layer_param_count(&spec.layers[i])) continue;
        char name[96];
        layer_group(name, sizeof name, &spec, i);
        const size_t len = strlen(name);
        hsize_t kd[4];
        const int kr = kernel_dims(&spec.layers[i], kd);
        snprintf(name + len, sizeof name - len, "/%s", tensor_name(&spec.layers[i], 0));
        if (!cv_h5_exists(f, name) || cv_h5_read(f, name, H5T_NATIVE_FLOAT, kr, kd, NULL, path, err)) {
            if (!cv_h5_exists(f, name)) cv_errf(err, "%s:/%s: missing", path, name);
            cv_model_spec_free(&spec);
            goto fail;
        }
    }
    spec.fit.precision = CV_PRECISION_FP32; /* a training setting: inference asks for bf16 itself */
    net = cv_net_create(&spec, max_batch, spec.fit.seed, err);
    cv_model_spec_free(&spec);
    if (!net || read_weights(f, net, cv_net_spec(net)->n_layers - 1, path, err) || read_normalizer(f, cv_net_spec(net), nz, path, err)) goto fail;
    H5Fclose(f);
    return net;
fail:
    cv_normalizer_free(nz);
    cv_net_free(net);
    H5Fclose(f);
    return NULL;
}

int cv_checkpoint_init_from(const char *path, cv_net *net, cv_err *err)
{
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    int rc = read_weights(f, net, cv_net_spec(net)->n_layers - 1, path, err);
    H5Fclose(f);
    return rc;
}

int cv_checkpoint_load_base(cv_net *net, cv_err *err)
{
    const cv_base_config *b = &cv_net_spec(net)->base;
    hid_t f = cv_h5_open_read(b->checkpoint, err);
    if (f < 0) return -1;
    int rc = read_weights(f, net, b->upto, b->checkpoint, err);
    H5Fclose(f);
    return rc;
}

/* One key of a layer line as the model file writes it: "activation=tanh", "kernel=3,3". */
typedef struct {
    const char *key;
    char a[64], b[64]; /* the checkpoint's value, the run's */
} layer_diff;

static bool diff_ints(layer_diff *d, const char *key, const int *a, const int *b, int n)
{
    if (memcmp(a, b, sizeof *a * (size_t)n) == 0) return false;
    d->key = key;
    size_t ua = 0, ub = 0;
    for (int k = 0; k < n; k++) {
        ua += (size_t)snprintf(d->a + ua, sizeof d->a - ua, "%s%d", k ? "," : "", a[k]);
        ub += (size_t)snprintf(d->b + ub, sizeof d->b - ub, "%s%d", k ? "," : "", b[k]);
    }
    return true;
}

static bool diff_float(layer_diff *d, const char *key, float a, float b)
{
    if (memcmp(&a, &b, sizeof a) == 0) return false;
    d->key = key;
    snprintf(d->a, sizeof d->a, "%.9g", (double)a);
    snprintf(d->b, sizeof d->b, "%.9g", (double)b);
    return true;
}

static bool diff_word(layer_diff *d, const char *key, bool differ, const char *a, const char *b)
{
    if (!differ) return false;
    d->key = key;
    snprintf(d->a, sizeof d->a, "%s", a);
    snprintf(d->b, sizeof d->b, "%s", b);
    return true;
}

#define BOOL_WORD(x) ((x) ? "true" : "false")

/* Every field of two layers of the same kind that changes the arithmetic (not the line, nor the
 * initialiser: the weights come from the checkpoint; alpha only where leaky_relu uses it, as a
 * base's written-out lines keep it), the first difference named. */
static int same_layer(const cv_layer_spec *a, const cv_layer_spec *b, int i, const char *path, const char *file,
                      cv_err *err)
{
    layer_diff d;
    char sa[48], sb[48];
    /* bad input (each line below): a resumed layer that differs from the checkpoint's in that key */
    const bool differ =
        diff_word(&d, "in", a->in.rank != b->in.rank || memcmp(a->in.d, b->in.d, sizeof a->in.d) != 0,
                  cv_shape_str(a->in, sa, sizeof sa), cv_shape_str(b->in, sb, sizeof sb)) ||
        diff_word(&d, "shape", a->shape.rank != b->shape.rank || memcmp(a->shape.d, b->shape.d, sizeof a->shape.d) != 0,
                  cv_shape_str(a->shape, sa, sizeof sa), cv_shape_str(b->shape, sb, sizeof sb)) ||
        diff_ints(&d, "filters", &a->filters, &b->filters, 1) || diff_ints(&d, "kernel", a->kernel, b->kernel, 2) ||
        diff_ints(&d, "strides", a->stride, b->stride, 2) ||
        diff_word(&d, "padding", a->same != b->same, a->same ? "same" : "numeric", b->same ? "same" : "numeric") ||
        diff_ints(&d, "padding", a->pad, b->pad, 4) ||
        diff_word(&d, "pad_mode", a->pad_nearest != b->pad_nearest, a->pad_nearest ? "nearest" : "zeros",
                  b->pad_nearest ? "nearest" : "zeros") ||
        diff_ints(&d, "pool", a->pool, b->pool, 2) || diff_ints(&d, "units", &a->units, &b->units, 1) ||
        diff_float(&d, "rate", a->rate, b->rate) || diff_float(&d, "momentum", a->momentum, b->momentum) ||
        diff_float(&d, "epsilon", a->epsilon, b->epsilon) ||
        diff_word(&d, "center", a->center != b->center, BOOL_WORD(a->center), BOOL_WORD(b->center)) ||
        diff_word(&d, "scale", a->scale != b->scale, BOOL_WORD(a->scale), BOOL_WORD(b->scale)) ||
        diff_word(&d, "shortcut", a->projection != b->projection, a->projection ? "projection" : "zeropad",
                  b->projection ? "projection" : "zeropad") ||
        diff_ints(&d, "block", &a->block, &b->block, 1) ||
        diff_word(&d, "activation", a->act != b->act, cv_act_name(a->act), cv_act_name(b->act)) ||
        ((a->act == CV_ACT_LEAKY_RELU || b->act == CV_ACT_LEAKY_RELU) && diff_float(&d, "alpha", a->alpha, b->alpha)) ||
        diff_word(&d, "use_bias", a->use_bias != b->use_bias, BOOL_WORD(a->use_bias), BOOL_WORD(b->use_bias));
    if (!differ) return 0;
    return cv_errf(err, "%s: layer %d (%s, %s:%d) has %s=%s, the checkpoint %s (resume needs the same architecture; "
                   "start a new run with --init-from to change it)", path, i, cv_layer_kind_name(b->kind), file,
                   b->line, d.key, d.b, d.a);
}

/* Same layers, kinds, output shapes, parameter counts and trainable flags (the optimizer state
 * covers the trainable parameters only): the first difference is named. */
static int same_architecture(const cv_model_spec *saved, const cv_model_spec *run, const char *path, cv_err *err)
{
    const int n = saved->n_layers < run->n_layers ? saved->n_layers : run->n_layers;
    for (int i = 0; i < n; i++) {
        const cv_layer_spec *a = &saved->layers[i], *b = &run->layers[i];
        const int64_t np = cv_layer_param_count(a);
        if (a->kind == b->kind && a->out.rank == b->out.rank && memcmp(a->out.d, b->out.d, sizeof a->out.d) == 0 &&
            np == cv_layer_param_count(b) && (!np || a->trainable == b->trainable))
            continue;
        if (a->kind == b->kind && np && np == cv_layer_param_count(b) && a->trainable != b->trainable)
            return cv_errf(err, "%s: layer %d (%s) is %s in the checkpoint but %s in %s:%d (resume needs the same "
                           "trainable layers; start a new stage with --init-from instead)", path, i,
                           cv_layer_kind_name(a->kind), a->trainable ? "trainable" : "frozen",
                           b->trainable ? "trainable" : "frozen", run->file, b->line);
        char sa[48], sb[48];
        return cv_errf(err, "%s: checkpoint of another architecture: layer %d is %s %s in the checkpoint but %s %s in %s:%d",
                       path, i, cv_layer_kind_name(a->kind), cv_shape_str(a->out, sa, sizeof sa),
                       cv_layer_kind_name(b->kind), cv_shape_str(b->out, sb, sizeof sb), run->file, b->line);
    }
    for (int i = 0; i < n; i++)
        if (same_layer(&saved->layers[i], &run->layers[i], i, path, run->file, err)) return -1;
    if (saved->n_layers != run->n_layers)
        return cv_errf(err, "%s: checkpoint of another architecture: %d layers in the checkpoint, %d in %s", path,
                       saved->n_layers, run->n_layers, run->file);
    return 0;
}

/* "F.h5:/train: attribute NAME is V, allowed LO..HI": a resume refuses counters no run can have saved. */
static int out_of_range(const char *path, const char *group, const char *name, int64_t v, int64_t lo, int64_t hi,
                        const char *why, cv_err *err)
{
    return cv_errf(err, "%s:%s: attribute %s is %lld, allowed %lld..%lld%s", path, group, name, (long long)v,
                   (long long)lo, (long long)hi, why);
}

/* The position and callback state against each other: batch and rows positive, the step
 * inside the epoch's steps, the global step where epoch and step put it, the best values not
 * NaN, the learning-rate scale in (0, 1]. */
static int check_train_state(const cv_train_state *st, double lr_scale, const char *path, cv_err *err)
{
    const int64_t most = (int64_t)1 << 53; /* counts a double still holds exactly */
    /* bad input: batch_size or n_train below 1 */
    if (st->n_train < 1 || st->n_train > most)
        return out_of_range(path, "/train", "n_train", st->n_train, 1, most, " (training rows)", err);
    if (st->batch_size < 1 || st->batch_size > most)
        return out_of_range(path, "/train", "batch_size", st->batch_size, 1, most, " (the global batch)", err);
    /* bad input: step_in_epoch outside the epoch's steps (1e9 gave negative img/s); equal to the
     * step count is a save after an epoch's last step and before its end (a signal or
     * --checkpoint-every there): the resumed epoch only ends */
    const int64_t steps = (st->n_train + st->batch_size - 1) / st->batch_size;
    if (st->step_in_epoch < 0 || st->step_in_epoch > steps)
        return cv_errf(err, "%s:/train: attribute step_in_epoch is %lld, allowed 0..%lld (an epoch of %lld rows "
                       "at batch %lld has %lld steps)", path, (long long)st->step_in_epoch, (long long)steps,
                       (long long)st->n_train, (long long)st->batch_size, (long long)steps);
    /* bad input: global_step not epoch × steps + step_in_epoch (the schedules' position) */
    const int64_t g = st->epoch * steps + st->step_in_epoch;
    if (st->global_step != g)
        return cv_errf(err, "%s:/train: attribute global_step is %lld, but epoch %lld × %lld steps + step_in_epoch "
                       "%lld is %lld (allowed: exactly that)", path, (long long)st->global_step,
                       (long long)st->epoch, (long long)steps, (long long)st->step_in_epoch, (long long)g);
    /* bad input: a best value that is NaN (±inf is the "none yet" start) */
    const double best[] = {st->cb.es_best, st->cb.plateau_best, st->cb.save_best};
    const char *bn[] = {"es_best", "plateau_best", "save_best"};
    for (int i = 0; i < 3; i++)
        if (isnan(best[i]))
            return cv_errf(err, "%s:/train: attribute %s is NaN, allowed a number or ±inf", path, bn[i]);
    /* bad input: lr_scale not in (0, 1] (reductions only lower the rate) */
    if (!(lr_scale > 0.0 && lr_scale <= 1.0))
        return cv_errf(err, "%s:/train: attribute lr_scale is %g, allowed (0, 1] (the product of plateau "
                       "reductions)", path, lr_scale);
    return 0;
}

static int read_train_state(hid_t f, cv_train_state *st, const cv_model_spec *spec, const char *path, cv_err *err)
{
    int64_t v;
    double x;
    if (cv_h5_attr_read_i64(f, "epoch", &st->epoch, path, err) || cv_h5_attr_read_i64(f, "seed", &v, path, err))
        return -1;
    /* bad input: a negative epoch ("epoch -4/2"), or one no int epoch counter reaches */
    if (st->epoch < 0 || st->epoch > INT_MAX)
        return out_of_range(path, "/", "epoch", st->epoch, 0, INT_MAX, " (epochs completed)", err);
    st->seed = (uint64_t)v;
    if (!cv_h5_exists(f, "train"))
        return cv_errf(err, "%s: no /train state (saved by a run that cannot be resumed)", path);
    hid_t g = H5Gopen2(f, "train", H5P_DEFAULT);
    if (g < 0) return cv_errf(err, "%s:/train: cannot open", path);
    cv_callbacks_state *c = &st->cb;
    int rc = 0;
    int64_t *iv[] = {&st->step_in_epoch, &st->global_step, &st->batch_size, &st->n_train};
    const char *in[] = {"step_in_epoch", "global_step", "batch_size", "n_train"};
    for (size_t i = 0; rc == 0 && i < 4; i++) rc = cv_h5_attr_read_i64(g, in[i], iv[i], path, err);
    int *cv[] = {&c->es_wait, &c->plateau_wait, &c->cooldown, &c->best_epoch};
    const char *cn[] = {"es_wait", "plateau_wait", "cooldown", "best_epoch"};
    for (size_t i = 0; rc == 0 && i < 4; i++) {
        rc = cv_h5_attr_read_i64(g, cn[i], &v, path, err);
        /* bad input: a counter beyond the epochs done (or below 0), which an int cannot hold either */
        if (rc == 0 && (v < 0 || v > (i == 2 ? INT_MAX : st->epoch)))
            rc = out_of_range(path, "/train", cn[i], v, 0, i == 2 ? INT_MAX : st->epoch,
                              i == 2 ? "" : " (at most the epochs done, attribute epoch)", err);
        *cv[i] = (int)v;
    }
    if (rc == 0 && (rc = cv_h5_attr_read_i64(g, "early_stopped", &v, path, err)) == 0) {
        /* bad input: early_stopped neither 0 nor 1 */
        if (v != 0 && v != 1) rc = out_of_range(path, "/train", "early_stopped", v, 0, 1, " (a flag)", err);
        c->stop = v != 0;
    }
    double *dv[] = {&c->es_best, &c->plateau_best, &c->save_best};
    const char *dn[] = {"es_best", "plateau_best", "save_best"};
    for (size_t i = 0; rc == 0 && i < 3; i++) rc = cv_h5_attr_read_f64(g, dn[i], dv[i], path, err);
    if (rc == 0 && (rc = cv_h5_attr_read_f64(g, "lr_scale", &x, path, err)) == 0) c->lr_scale = (float)x;
    if (rc == 0) rc = check_train_state(st, x, path, err);
    double six[CV_METRIC_SIX];
    hsize_t n6 = CV_METRIC_SIX;
    if (rc == 0) rc = cv_h5_read_tensor(g, "epoch_sums", H5T_NATIVE_DOUBLE, 1, &n6, six, path, err);
    memset(&st->train_sums, 0, sizeof st->train_sums);
    if (rc == 0) cv_metrics_add_six(six, &st->train_sums);
    /* the counts of the compiled metrics: needed in the middle of an epoch (at its end the sums
     * start again from zero) */
    const int64_t nc = cv_metrics_counts(spec);
    if (rc == 0 && nc && st->step_in_epoch > 0) {
        hsize_t counts = (hsize_t)nc;
        double *kept = cv_malloc(sizeof(double) * (size_t)nc, "metric sums", err);
        if (!kept) rc = -1;
        else if (!cv_h5_exists(g, "epoch_counts"))
            rc = cv_errf(err, "%s:/train: no epoch_counts, which this model's metrics= need in the middle of an epoch "
                         "(resume with the compile metrics= the run was saved with)", path);
        else if ((rc = cv_h5_read_tensor(g, "epoch_counts", H5T_NATIVE_DOUBLE, 1, &counts, kept, path, err)) == 0)
            cv_metrics_add_counts(spec, kept, &st->train_sums);
        free(kept);
    }
    H5Gclose(g);
    return rc;
}

/* The saved hyper-parameters against the model file's ranges for them (the run's own values,
 * from its model file and flags, are the ones it trains with; a value no run can have saved
 * means the group was damaged or edited). */
static int check_optimizer_params(hid_t g, const char *path, cv_err *err)
{
    /* lo, hi and whether each end is included: [0, inf) for rates, [0, 1) for decays, (0, inf) for
     * epsilon; variant is a cv_momentum_variant */
    static const struct { const char *name; double lo, hi; bool lo_in, hi_in, whole; } hp[] = {
        {"learning_rate", 0, INFINITY, true, false, false}, {"momentum", 0, 1, true, false, false},
        {"rho", 0, 1, true, false, false}, {"beta_1", 0, 1, true, false, false},
        {"beta_2", 0, 1, true, false, false}, {"epsilon", 0, INFINITY, false, false, false},
        {"initial_accumulator_value", 0, INFINITY, true, false, false},
        {"variant", 0, CV_MOMENTUM_NESTEROV, true, true, true},
    };
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        double v;
        if (H5Aexists(g, hp[i].name) <= 0) continue; /* not read on resume: absent is no harm */
        if (cv_h5_attr_read_f64(g, hp[i].name, &v, path, err)) return -1;
        /* bad input (each): an optimizer hyper-parameter that is not finite or out of its range */
        const bool ok = isfinite(v) && (hp[i].lo_in ? v >= hp[i].lo : v > hp[i].lo) &&
                        (hp[i].hi_in ? v <= hp[i].hi : v < hp[i].hi) && (!hp[i].whole || v == floor(v));
        if (ok) continue;
        if (hp[i].whole)
            return cv_errf(err, "%s:/optimizer: attribute %s is %g, allowed 0, 1 or 2 (ewa, classic, nesterov)", path,
                           hp[i].name, v);
        return cv_errf(err, "%s:/optimizer: attribute %s is %g, allowed %c%g, %g%c", path, hp[i].name, v,
                       hp[i].lo_in ? '[' : '(', hp[i].lo, hp[i].hi, hp[i].hi_in ? ']' : ')');
    }
    return 0;
}

/* A best-weights snapshot is flat: the message of its first non-finite value gains the layer it
 * belongs to. */
static void name_best_layer(const cv_net *net, const float *best, int64_t n, cv_err *err)
{
    int64_t at = 0;
    while (at < n && isfinite(best[at])) at++;
    const cv_model_spec *s = cv_net_spec(net);
    for (int i = 1; at < n && i < s->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        const int which = at >= v.kernel_off && at < v.kernel_off + v.kernel_n ? 0
                          : at >= v.bias_off && at < v.bias_off + v.bias_n     ? 1
                          : at >= v.state_off && at < v.state_off + v.state_n  ? 2
                                                                               : -1;
        if (which < 0) continue;
        char msg[CV_ERR_MSG];
        snprintf(msg, sizeof msg, "%s", err->msg);
        const int parts = cv_layer_kinds[s->layers[i].kind]->n_state;
        const int part = which < 2 || !v.state_n ? which : 2 + (int)((at - v.state_off) * parts / v.state_n);
        cv_errf(err, "%s: layer %d's %s (%s at %s:%d)", msg, i, tensor_name(&s->layers[i], part),
                cv_layer_kind_name(s->layers[i].kind), s->file, s->layers[i].line);
        return;
    }
}

int cv_checkpoint_resume(const char *path, cv_net *net, cv_optim *opt, cv_normalizer *nz,
                         cv_train_state *st, float *best, int *has_best, cv_err *err)
{
    memset(nz, 0, sizeof *nz);
    *has_best = 0;
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    cv_model_spec saved;
    int rc = read_spec(f, path, &saved, &cv_checkpoint_base_reader, err);
    if (rc) goto done;
    rc = same_architecture(&saved, cv_net_spec(net), path, err);
    cv_model_spec_free(&saved);
    if (rc) goto done;
    /* the optimizer's name before the weights and state: another optimizer is the likelier mistake */
    hid_t g = cv_h5_exists(f, "optimizer") ? H5Gopen2(f, "optimizer", H5P_DEFAULT) : -1;
    char *name = g >= 0 ? cv_h5_attr_read_str(g, "name", path, err) : NULL;
    if (!name) {
        if (g >= 0) H5Gclose(g);
        rc = cv_errf(err, "%s: no /optimizer state to resume from", path);
        goto done;
    }
    if (strcmp(name, cv_optim_name(opt->cfg.kind)) != 0)
        rc = cv_errf(err, "%s: the checkpoint holds %s state but this run uses %s (resume with the same optimizer)",
                     path, name, cv_optim_name(opt->cfg.kind));
    free(name);
    if (rc == 0 && ((rc = read_weights(f, net, cv_net_spec(net)->n_layers - 1, path, err)) ||
                    (rc = read_normalizer(f, cv_net_spec(net), nz, path, err)) ||
                    (rc = read_train_state(f, st, cv_net_spec(net), path, err)))) {
        H5Gclose(g);
        goto done;
    }
    hsize_t n = (hsize_t)opt->n;
    if (rc == 0) rc = check_optimizer_params(g, path, err);
    if (rc == 0) rc = cv_h5_attr_read_i64(g, "t", &opt->t, path, err);
    /* bad input: an optimizer step count t other than the run's global_step (Adam's bias
     * corrections use it) */
    if (rc == 0 && opt->t != st->global_step)
        rc = cv_errf(err, "%s:/optimizer: attribute t is %lld, allowed exactly /train's global_step %lld (one "
                     "optimizer step each)", path, (long long)opt->t, (long long)st->global_step);
    if (rc == 0 && opt->s1) rc = cv_h5_read_tensor(g, "s1", H5T_NATIVE_FLOAT, 1, &n, opt->s1, path, err);
    if (rc == 0 && opt->s2) rc = cv_h5_read_tensor(g, "s2", H5T_NATIVE_FLOAT, 1, &n, opt->s2, path, err);
    /* bad input: a negative running sum or mean of squares (adagrad n, rmsprop S, adadelta Eg and
     * Ed, adam v), whose square root the step divides by */
    const cv_optim_kind k = opt->cfg.kind;
    if (rc == 0 && opt->s1 && (k == CV_OPT_ADAGRAD || k == CV_OPT_RMSPROP || k == CV_OPT_ADADELTA))
        rc = check_nonneg(opt->s1, opt->n, path, "optimizer/s1", cv_optim_name(k), err);
    if (rc == 0 && opt->s2 && (k == CV_OPT_ADADELTA || k == CV_OPT_ADAM))
        rc = check_nonneg(opt->s2, opt->n, path, "optimizer/s2", cv_optim_name(k), err);
    H5Gclose(g);
    if (rc == 0 && best && cv_h5_exists(f, "train/best_weights")) {
        hsize_t nb = (hsize_t)cv_net_param_count(net);
        if ((rc = cv_h5_read_tensor(f, "train/best_weights", H5T_NATIVE_FLOAT, 1, &nb, best, path, err)) == 0)
            *has_best = 1;
        else
            name_best_layer(net, best, (int64_t)nb, err);
    }
done:
    if (rc) cv_normalizer_free(nz);
    H5Fclose(f);
    return rc;
}
