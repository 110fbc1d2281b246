/* convoy export: a checkpoint's network in a format other tools run (ONNX: src/interop). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/interop.h"

int cmd_export(const cv_dist *d, int argc, char **argv)
{
    const char *out = NULL;
    const cli_flag flags[] = {
        {"out", "F.onnx", "the model file to write (required)", &out, NULL},
    };
    const cli_command c = {"export", "onnx CHECKPOINT",
                           "Writes CHECKPOINT's network as an ONNX model (opset 13) that takes predict's raw input "
                           "and gives its probabilities.",
                           flags, NFLAGS(flags), 2, 2};
    const char *pos[2];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (strcmp(pos[0], "onnx") != 0) return cli_usage_fail(d, "export: unknown format '%s' (known: onnx)", pos[0]);
    if (!out) return cli_usage_fail(d, "export onnx: --out F.onnx is required");
    const cv_path_role outs[] = {{"--out", out}}, ins[] = {{"CHECKPOINT", pos[1]}};
    if ((rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins)))) return rc;
    if (d->rank != 0) return CLI_OK; /* one writer */
    cv_err err;
    cv_onnx_export_info info;
    if (cv_onnx_export(pos[1], out, &info, &err)) return cli_fail(d, "%s", err.msg);
    printf("wrote %s: %lld nodes, %lld constants, opset %d, %lld bytes\n", out, (long long)info.nodes,
           (long long)info.initializers, CV_ONNX_OPSET, (long long)info.bytes);
    return CLI_OK;
}
