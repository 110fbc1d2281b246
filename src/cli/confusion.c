/* eval --confusion: the matrix and classification report on stdout, optionally an SVG heat map. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "convoy/checkpoint.h"
#include "convoy/confusion.h"
#include "convoy/plot.h"

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
        /* the dataset's class names, else those the checkpoint keeps from its training data */
        cv_data_info info = {0};
        if (ds->n_classes != K && cv_checkpoint_data_info(ckpt, &info, &err)) info.n_classes = 0;
        char *const *names = ds->n_classes == K ? ds->class_names : info.n_classes == K ? info.class_names : NULL;
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
