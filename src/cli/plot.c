/* convoy plot: training curves from --log CSV histories into one SVG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/history.h"
#include "convoy/plot.h"

enum { MAX_FILES = 32 };

int cmd_plot(const cv_dist *d, int argc, char **argv)
{
    const char *out = NULL, *labels = NULL;
    const cli_flag flags[] = {
        {"out", "F.svg", "the SVG to write (required)", &out, NULL},
        {"labels", "A,B,..", "legend names, one per file (default: file names without .csv)", &labels, NULL},
    };
    const cli_command c = {"plot", "HISTORY.csv [HISTORY.csv ...]",
                           "Draws loss and accuracy (or mae/mse) per epoch from train --log files: train solid, "
                           "validation dashed, one colour per file.",
                           flags, (int)(sizeof flags / sizeof flags[0]), 1, MAX_FILES};
    const char *pos[MAX_FILES];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!out) return cli_usage_fail(d, "plot: --out F.svg is required");
    if (d->rank != 0) return CLI_OK;
    cv_path_role outs[] = {{"--out", out}}, ins[MAX_FILES];
    for (int i = 0; i < npos; i++) ins[i] = (cv_path_role){"HISTORY.csv", pos[i]};
    if ((rc = cli_check_outputs(d, CLI_ROLES(outs), ins, npos))) return rc;

    char names[MAX_FILES][128];
    const char *label[MAX_FILES];
    int nlabels = 0;
    if (labels) { /* "a,b,c": exactly one per file */
        for (const char *p = labels; nlabels < MAX_FILES; nlabels++) {
            const size_t len = strcspn(p, ",");
            snprintf(names[nlabels], sizeof names[0], "%.*s", (int)len, p);
            label[nlabels] = names[nlabels];
            if (!p[len]) {
                nlabels++;
                break;
            }
            p += len + 1;
        }
        if (nlabels != npos)
            return cli_usage_fail(d, "plot: --labels has %d name%s for %d file%s", nlabels, nlabels == 1 ? "" : "s", npos,
                            npos == 1 ? "" : "s");
    } else {
        for (int i = 0; i < npos; i++) {
            const char *base = strrchr(pos[i], '/') ? strrchr(pos[i], '/') + 1 : pos[i];
            size_t len = strlen(base);
            if (len > 4 && strcmp(base + len - 4, ".csv") == 0) len -= 4;
            snprintf(names[i], sizeof names[0], "%.*s", (int)len, base);
            label[i] = names[i];
        }
    }
    cv_history h[MAX_FILES];
    cv_err err;
    int loaded = 0;
    rc = CLI_OK;
    for (; loaded < npos; loaded++) {
        if (cv_history_read_csv(&h[loaded], pos[loaded], &err)) {
            rc = cli_fail(d, "%s", err.msg);
            break;
        }
        if (h[loaded].nrows == 0) {
            rc = cli_fail(d, "%s: no epochs yet (only the header row)", pos[loaded]);
            loaded++;
            break;
        }
    }
    /* one file without --labels: the legend says train / validation */
    if (rc == CLI_OK && cv_plot_curves_svg(out, h, npos, npos == 1 && !labels ? NULL : label, &err))
        rc = cli_fail(d, "%s", err.msg);
    if (rc == CLI_OK) printf("wrote %s (%d histor%s)\n", out, npos, npos == 1 ? "y" : "ies");
    for (int i = 0; i < loaded; i++) cv_history_free(&h[i]);
    return rc;
}
