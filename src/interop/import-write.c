/* What the importers share once a model is translated: the network built from the model text
 * with the translated weights put in place, compile's line, the one-line message, and
 * `convoy import`'s two files written atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/checkpoint.h"
#include "interop/import-write.h"

void cv_import_compile_line(FILE *f, cv_act act, int dense_units, int64_t outputs)
{
    const char *loss = act == CV_ACT_SOFTMAX ? "sparse_categorical_crossentropy metrics=accuracy"
                     : act == CV_ACT_SIGMOID && outputs == 1 ? "binary_crossentropy metrics=accuracy"
                     : act == CV_ACT_LINEAR && dense_units > 1 ? "sparse_categorical_crossentropy from_logits=true metrics=accuracy"
                                                                : "mse";
    fprintf(f, "\ncompile   optimizer=adam learning_rate=0.001 loss=%s\n", loss);
}

cv_net *cv_import_net(const char *path, const char *text, const char *name, int max_batch, cv_err *err)
{
    cv_model_spec *spec = cv_calloc(1, sizeof *spec, "model", err);
    if (!spec) return NULL;
    cv_err e;
    cv_net *net = NULL;
    if (cv_model_parse(spec, text, name, &e)) cv_errf(err, "%s: convoy refuses the translated model: %s", path, e.msg);
    else net = cv_net_create(spec, max_batch, 0, err);
    cv_model_spec_free(spec);
    free(spec);
    return net;
}

int cv_import_put(cv_net *net, const char *path, const layer_weights *w, cv_err *err)
{
    float *p = cv_net_params(net);
    for (int l = 1; l < cv_net_layers(net); l++) {
        const cv_param_view v = cv_net_param_view(net, l);
        const int64_t off[3] = {v.kernel_off, v.bias_off, v.state_off}, n[3] = {v.kernel_n, v.bias_n, v.state_n};
        for (int s = 0; s < 3; s++) {
            if (n[s] != w[l].n[s])
                return cv_errf(err, "%s: layer %d: %lld values translated for %lld (a convoy bug)", path, l,
                               (long long)w[l].n[s], (long long)n[s]);
            if (n[s]) memcpy(p + off[s], w[l].v[s], sizeof(float) * (size_t)n[s]);
        }
    }
    return 0;
}

void cv_import_clean_msg(cv_err *err)
{
    for (char *c = err ? err->msg : ""; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
}

/* text into a temporary file in dir, fsync'd; *tmp receives its name */
static int write_temp(const char *dir, const char *text, char *tmp, size_t size, cv_err *err)
{
    snprintf(tmp, size, "%s/.model.model.XXXXXX", dir);
    const int fd = mkstemp(tmp);
    if (fd < 0) return cv_errf(err, "%s: cannot create a file there: %s", dir, strerror(errno));
    const size_t n = strlen(text);
    const ssize_t w = write(fd, text, n);
    const int bad = w < 0 || (size_t)w != n || fsync(fd);
    if (close(fd) || bad) {
        unlink(tmp);
        return cv_errf(err, "%s/model.model: cannot write (disk full or file size limit reached)", dir);
    }
    return 0;
}

static int write_both(const char *dir, cv_net *net, const float *mean, const float *std, cv_err *err)
{
    char model[4096], weights[4096], tmp[4200];
    if (snprintf(model, sizeof model, "%s/model.model", dir) >= (int)sizeof model) return cv_errf(err, "%s: path too long", dir);
    snprintf(weights, sizeof weights, "%s/weights.h5", dir);
    struct stat st;
    if (mkdir(dir, 0777) && errno != EEXIST) return cv_errf(err, "%s: cannot create the folder: %s", dir, strerror(errno));
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return cv_errf(err, "%s: not a folder (--out names the folder to write)", dir);
    const cv_model_spec *spec = cv_net_spec(net);
    if (write_temp(dir, spec->text, tmp, sizeof tmp, err)) return -1;
    const cv_norm mode = spec->layers[0].normalize;
    cv_normalizer nz = {.mode = mode == CV_NORM_SCALE || (mode == CV_NORM_STANDARDIZE && mean && std) ? mode : CV_NORM_NONE,
                        .dim = cv_shape_size(spec->layers[0].out), .mean = (float *)mean, .std = (float *)std};
    int rc = 0;
    if (cv_checkpoint_save(weights, net, &nz, NULL, 0, err)) rc = -1;
    else if (rename(tmp, model)) rc = cv_errf(err, "%s: cannot rename into place: %s", model, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int cv_import_save(const char *dir, cv_net *net, const float *mean, const float *std, int *layers, int64_t *params,
                   cv_err *err)
{
    if (!net) return -1;
    const int rc = write_both(dir, net, mean, std, err);
    if (layers) *layers = cv_net_spec(net)->n_layers - 1;
    if (params) *params = cv_net_param_count(net);
    cv_net_free(net);
    return rc;
}
