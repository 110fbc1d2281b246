/* Checkpoint files. Layout: attribute `model` (the model file text) and `format_version` on
 * the root; /layers/NN_kind/{kernel,bias} per parameterised layer (NN = position in the model
 * file's layer list, input = 0); /normalize/{mean,std} for standardised inputs; /optimizer
 * with the hyper-parameters as attributes and the state as s1/s2. */
#include "convoy/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5io.h"

static void layer_group(char *buf, size_t n, const cv_model_spec *spec, int i)
{
    snprintf(buf, n, "layers/%02d_%s", i, cv_layer_kind_name(spec->layers[i].kind));
}

/* Keras layouts: conv (KH,KW,Cin,Cout), dense (in,out). Returns the rank. */
static int kernel_dims(const cv_layer_spec *l, hsize_t *kd)
{
    if (l->kind == CV_LAYER_CONV2D) {
        kd[0] = kd[1] = (hsize_t)l->kernel;
        kd[2] = (hsize_t)l->in.d[2];
        kd[3] = (hsize_t)l->filters;
        return 4;
    }
    kd[0] = (hsize_t)cv_shape_size(l->in);
    kd[1] = (hsize_t)l->units;
    return 2;
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
    if (rc == 0 && o->s1) rc = cv_h5_write(g, "s1", H5T_NATIVE_FLOAT, 1, &n, o->s1, path, err);
    if (rc == 0 && o->s2) rc = cv_h5_write(g, "s2", H5T_NATIVE_FLOAT, 1, &n, o->s2, path, err);
    H5Gclose(g);
    return rc;
}

int cv_checkpoint_save(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                       int64_t epochs_done, cv_err *err)
{
    char tmp[1024];
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    const cv_model_spec *spec = cv_net_spec(net);
    int rc = cv_h5_attr_write_str(f, "model", spec->text ? spec->text : "", path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "format_version", CV_CHECKPOINT_VERSION, path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "epoch", epochs_done, path, err);
    if (rc == 0) rc = cv_h5_attr_write_i64(f, "seed", (int64_t)spec->fit.seed, path, err);
    /* the resolved normalisation, so eval and predict apply exactly what training used */
    if (rc == 0) rc = cv_h5_attr_write_str(f, "normalize", cv_norm_name(nz->mode), path, err);
    const float *w = cv_net_params(net);
    for (int i = 1; rc == 0 && i < spec->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[96];
        layer_group(name, sizeof name, spec, i);
        size_t len = strlen(name);
        hsize_t kd[4];
        const int kr = kernel_dims(&spec->layers[i], kd);
        snprintf(name + len, sizeof name - len, "/kernel");
        rc = cv_h5_write(f, name, H5T_NATIVE_FLOAT, kr, kd, w + v.kernel_off, path, err);
        if (rc == 0 && v.bias_n) {
            const hsize_t bd = (hsize_t)v.bias_n;
            snprintf(name + len, sizeof name - len, "/bias");
            rc = cv_h5_write(f, name, H5T_NATIVE_FLOAT, 1, &bd, w + v.bias_off, path, err);
        }
    }
    if (rc == 0 && nz->mode == CV_NORM_STANDARDIZE) {
        const hsize_t n = (hsize_t)nz->dim;
        rc = cv_h5_write(f, "normalize/mean", H5T_NATIVE_FLOAT, 1, &n, nz->mean, path, err);
        if (rc == 0) rc = cv_h5_write(f, "normalize/std", H5T_NATIVE_FLOAT, 1, &n, nz->std, path, err);
    }
    if (rc == 0 && opt) rc = save_optimizer(f, opt, path, err);
    if (rc) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}

static int read_spec(hid_t f, const char *path, cv_model_spec *spec, cv_err *err)
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
    int rc = cv_model_parse(spec, text, name, err);
    free(text);
    return rc;
}

int cv_checkpoint_spec(const char *path, cv_model_spec *spec, cv_err *err)
{
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    int rc = read_spec(f, path, spec, err);
    H5Fclose(f);
    return rc;
}

cv_net *cv_checkpoint_load(const char *path, int max_batch, cv_normalizer *nz, cv_err *err)
{
    memset(nz, 0, sizeof *nz);
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return NULL;
    cv_model_spec spec;
    cv_net *net = NULL;
    if (read_spec(f, path, &spec, err)) goto fail;
    net = cv_net_create(&spec, max_batch, spec.fit.seed, err);
    cv_model_spec_free(&spec);
    if (!net) goto fail;
    const cv_model_spec *s = cv_net_spec(net);
    float *w = cv_net_params(net);
    for (int i = 1; i < s->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[96];
        layer_group(name, sizeof name, s, i);
        size_t len = strlen(name);
        hsize_t kd[4];
        const int kr = kernel_dims(&s->layers[i], kd);
        snprintf(name + len, sizeof name - len, "/kernel");
        if (cv_h5_read(f, name, H5T_NATIVE_FLOAT, kr, kd, w + v.kernel_off, path, err)) goto fail;
        if (v.bias_n) {
            hsize_t bd = (hsize_t)v.bias_n;
            snprintf(name + len, sizeof name - len, "/bias");
            if (cv_h5_read(f, name, H5T_NATIVE_FLOAT, 1, &bd, w + v.bias_off, path, err)) goto fail;
        }
    }
    char *mode = cv_h5_attr_read_str(f, "normalize", path, err);
    if (!mode) goto fail;
    nz->mode = CV_NORM_COUNT;
    for (int m = 0; m < CV_NORM_COUNT; m++)
        if (m != CV_NORM_AUTO && strcmp(mode, cv_norm_name((cv_norm)m)) == 0) nz->mode = (cv_norm)m;
    free(mode);
    if (nz->mode == CV_NORM_COUNT) {
        cv_errf(err, "%s: attribute normalize: unknown mode", path);
        goto fail;
    }
    nz->dim = cv_shape_size(s->layers[0].shape);
    if (nz->mode == CV_NORM_STANDARDIZE) {
        hsize_t n = (hsize_t)nz->dim;
        nz->mean = cv_malloc(sizeof(float) * n, "normalizer", err);
        nz->std = cv_malloc(sizeof(float) * n, "normalizer", err);
        if (!nz->mean || !nz->std ||
            cv_h5_read(f, "normalize/mean", H5T_NATIVE_FLOAT, 1, &n, nz->mean, path, err) ||
            cv_h5_read(f, "normalize/std", H5T_NATIVE_FLOAT, 1, &n, nz->std, path, err))
            goto fail;
    }
    H5Fclose(f);
    return net;
fail:
    cv_normalizer_free(nz);
    cv_net_free(net);
    H5Fclose(f);
    return NULL;
}
