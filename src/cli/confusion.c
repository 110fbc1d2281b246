/* eval --confusion: the matrix and classification report on stdout, optionally an SVG heat map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/checkpoint.h"
#include "convoy/confusion.h"
#include "convoy/plot.h"

char *const *cli_class_names(const char *ckpt, const cv_dataset *ds, int K, cv_data_info *info)
{
    cv_err err;
    memset(info, 0, sizeof *info);
    if (ds->n_classes == K) return ds->class_names;
    if (cv_checkpoint_data_info(ckpt, info, &err)) return NULL; /* names are a courtesy: numbers then */
    return info->n_classes == K ? info->class_names : NULL;
}

int cli_confusion(const cv_dist *d, const char *ckpt, cv_net *net, cv_dataset *ds, const cv_normalizer *nz,
                  const char *svg)
{
    cv_err err;
    int K;
    if (cv_confusion_classes(cv_net_spec(net), &K, &err)) return cli_fail(d, "%s: %s", ckpt, err.msg);
    int64_t *counts = cv_malloc(sizeof(int64_t) * (size_t)K * K, "confusion matrix", &err);
    int rc = CLI_OK, failed = !counts;
    if (cv_dist_agree(d, failed, &err) || cv_confusion(net, ds, nz, d, counts, K, &err)) {
        rc = cli_fail(d, "%s", err.msg);
    } else if (d->rank == 0) {
        cv_data_info info;
        char *const *names = cli_class_names(ckpt, ds, K, &info);
        putchar('\n');
        cv_confusion_print(stdout, counts, K, names);
        char title[600];
        snprintf(title, sizeof title, "%s on %s", ckpt, ds->path);
        if (svg && cv_plot_confusion_svg(svg, counts, K, names, title, &err))
            rc = cli_fail(d, "%s", err.msg);
        else if (svg)
            printf("wrote %s\n", svg);
        cv_data_info_free(&info);
    }
    free(counts);
    return rc;
}
