/* Confusion counts over a dataset (rank slices, summed) and the classification report. */
#include "convoy/confusion.h"

#include <stdlib.h>
#include <string.h>

#include "convoy/loss.h"
#include "convoy/train.h"
#include "train/prefetch.h"

int cv_confusion_classes(const cv_model_spec *spec, int *K, cv_err *err)
{
    const int out = (int)cv_shape_size(spec->layers[spec->n_layers - 1].out);
    const cv_loss_kind k = spec->loss.kind;
    if (k != CV_LOSS_SPARSE_CE && k != CV_LOSS_CATEGORICAL_CE && k != CV_LOSS_BINARY_CE)
        return cv_errf(err, "%s: loss %s is a regression loss; a confusion matrix needs a classifier "
                       "(sparse_categorical_crossentropy, categorical_crossentropy or binary_crossentropy)",
                       spec->file, cv_loss_name(k));
    *K = out == 1 ? 2 : out;
    return 0;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int cv_confusion(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, const cv_dist *d, int64_t *counts, int K,
                 cv_err *err)
{
    const int mb = CV_MICRO_BATCH, out = cv_net_outputs(net);
    memset(counts, 0, sizeof(int64_t) * (size_t)K * K);
    double *sum = cv_calloc((size_t)K * K, sizeof(double), "confusion matrix", err);
    cv_batch b = {0};
    int rc = !sum || cv_net_reserve(net, mb, err) || cv_batch_alloc(&b, ds, mb, err) ? -1 : 0;
    int64_t lo, hi;
    cv_dist_slice(d, 0, ds->n, &lo, &hi);
    for (int64_t s = lo; rc == 0 && s < hi; s += mb) {
        const int c = (int)(hi - s < mb ? hi - s : mb);
        for (int i = 0; i < c; i++) b.ids[i] = s + i;
        if ((rc = cv_batch_fill(&b, ds, nz, c, err))) break;
        const float *y = cv_net_forward(net, b.x, c, false, 0, 0, b.ids);
        for (int i = 0; i < c; i++) {
            const int t = ds->has_labels ? b.labels[i]
                          : ds->ydim == 1 ? b.targets[i] >= 0.5f
                                          : argmax(b.targets + (size_t)i * ds->ydim, ds->ydim);
            const int p = out == 1 ? y[i] >= cv_loss_threshold(&cv_net_spec(net)->loss) : argmax(y + (size_t)i * out, out);
            if (t >= 0 && t < K) sum[t * K + p] += 1.0;
        }
    }
    cv_batch_free(&b);
    /* a read error on one rank must not leave the others waiting in the sum */
    if (cv_dist_agree(d, rc, err) == 0 && cv_dist_sum_f64(d, sum, K * K, err) == 0) {
        for (int i = 0; i < K * K; i++) counts[i] = (int64_t)sum[i];
    } else {
        rc = -1;
    }
    free(sum);
    return rc;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

void cv_confusion_print(FILE *f, const int64_t *counts, int K, char *const *names)
{
    int64_t total = 0, correct = 0, widest = 1;
    for (int i = 0; i < K * K; i++) {
        total += counts[i];
        if (counts[i] > widest) widest = counts[i];
    }
    int cw = snprintf(NULL, 0, "%lld", (long long)widest), iw = snprintf(NULL, 0, "%d", K - 1), nw = 5;
    if (cw < iw) cw = iw;
    for (int k = 0; names && k < K; k++)
        if ((int)strlen(names[k]) > nw) nw = (int)strlen(names[k]);
    if (nw > 24) nw = 24;
    if (iw + 1 + nw < 9) nw = 8 - iw; /* room for "macro avg" */
    const int lw = iw + 1 + nw;       /* "3 Dress" */
    fprintf(f, "confusion matrix: rows true class, columns predicted class (%lld samples)\n", (long long)total);
    fprintf(f, "%*s", lw, "");
    for (int p = 0; p < K; p++) fprintf(f, " %*d", cw, p);
    fputc('\n', f);
    for (int t = 0; t < K; t++) {
        fprintf(f, "%*d %-*.*s", iw, t, nw, nw, names ? names[t] : "");
        for (int p = 0; p < K; p++) fprintf(f, " %*lld", cw, (long long)counts[t * K + p]);
        fputc('\n', f);
        correct += counts[t * K + t];
    }
    fprintf(f, "\n%-*s %9s %9s %9s %9s\n", lw, "class", "precision", "recall", "f1-score", "support");
    double mp = 0, mr = 0, mf = 0;
    for (int k = 0; k < K; k++) {
        int64_t pred = 0, support = 0;
        for (int j = 0; j < K; j++) pred += counts[j * K + k], support += counts[k * K + j];
        const double tp = (double)counts[k * K + k], prec = ratio(tp, (double)pred), rec = ratio(tp, (double)support),
                     f1 = ratio(2 * prec * rec, prec + rec);
        mp += prec, mr += rec, mf += f1;
        fprintf(f, "%*d %-*.*s %9.4f %9.4f %9.4f %9lld\n", iw, k, nw, nw, names ? names[k] : "", prec, rec, f1,
                (long long)support);
    }
    fprintf(f, "%-*s %9.4f %9.4f %9.4f %9lld\n", lw, "macro avg", mp / K, mr / K, mf / K, (long long)total);
    fprintf(f, "%-*s %9s %9s %9.4f %9lld\n", lw, "accuracy", "", "", ratio((double)correct, (double)total),
            (long long)total);
}
