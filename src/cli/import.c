/* convoy import FORMAT FILE --out DIR: a model made elsewhere as convoy's model file and a
 * checkpoint of its weights (the translators are module interop's). One command, a format
 * word choosing the reader (onnx, keras) from the table below. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/interop.h"

typedef int (*import_fn)(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err);

static const struct {
    const char *word;
    import_fn fn;
} formats[] = {{"onnx", cv_onnx_import}, {"keras", cv_keras_import}};

static int import_with(const cv_dist *d, import_fn fn, const char *file, const char *dir)
{
    char model[4200], weights[4200];
    snprintf(model, sizeof model, "%s/model.model", dir);
    snprintf(weights, sizeof weights, "%s/weights.h5", dir);
    const cv_path_role outs[] = {{"--out's", model}, {"--out's", weights}}, ins[] = {{"FILE", file}};
    int rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins));
    if (rc || d->rank != 0) return rc;
    int layers;
    int64_t params;
    cv_err err;
    if (fn(file, dir, &layers, &params, &err)) return cli_fail(d, "%s", err.msg);
    printf("imported %s: %d layers, %lld parameters; wrote %s and %s\n", file, layers, (long long)params, model, weights);
    return CLI_OK;
}

int cmd_import(const cv_dist *d, int argc, char **argv)
{
    const char *out = NULL;
    const cli_flag flags[] = {
        {"out", "DIR", "the folder to write model.model and weights.h5 into (created when missing)", &out, NULL},
    };
    const cli_command c = {"import", "onnx|keras FILE",
                           "Translates a model made elsewhere (ONNX, or Keras's model.save HDF5 file) into DIR/model.model and the checkpoint "
                           "DIR/weights.h5, usable as `base checkpoint=DIR/weights.h5` or with --init-from.",
                           flags, NFLAGS(flags), 2, 2};
    const char *pos[2];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!out) return cli_usage_fail(d, "import: --out DIR is required");
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(pos[0], formats[i].word) == 0) return import_with(d, formats[i].fn, pos[1], out);
    return cli_usage_fail(d, "import: unknown format '%s' (onnx, keras)", pos[0]);
}
