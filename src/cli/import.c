/* convoy import FORMAT FILE --out DIR: a model made elsewhere as convoy's model file and a
 * checkpoint of its weights (the translators are module interop's). One command, a format
 * word choosing the reader: onnx here; each format is a function of its own below. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/interop.h"

static int import_onnx(const cv_dist *d, const char *file, const char *dir)
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
    if (cv_onnx_import(file, dir, &layers, &params, &err)) return cli_fail(d, "%s", err.msg);
    printf("imported %s: %d layers, %lld parameters; wrote %s and %s\n", file, layers, (long long)params, model, weights);
    return CLI_OK;
}

int cmd_import(const cv_dist *d, int argc, char **argv)
{
    const char *out = NULL;
    const cli_flag flags[] = {
        {"out", "DIR", "the folder to write model.model and weights.h5 into (created when missing)", &out, NULL},
    };
    const cli_command c = {"import", "onnx FILE",
                           "Translates a model made elsewhere (ONNX) into DIR/model.model and the checkpoint "
                           "DIR/weights.h5, usable as `base checkpoint=DIR/weights.h5` or with --init-from.",
                           flags, NFLAGS(flags), 2, 2};
    const char *pos[2];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!out) return cli_usage_fail(d, "import: --out DIR is required");
    if (strcmp(pos[0], "onnx") == 0) return import_onnx(d, pos[1], out);
    return cli_usage_fail(d, "import: unknown format '%s' (onnx)", pos[0]);
}
