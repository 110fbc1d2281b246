/* Metric sums: their sums over ranks, in rank-count-independent order where asked, and as people
 * and files read them (the epoch line's "loss 0.2871  accuracy 0.8992", the CSV log's columns,
 * the value a callback or a search monitors). Called by training, progress, eval and tune; it
 * calls only the model's types and the MPI collectives (dist/). */
#include "convoy/metrics.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* precision (0), recall (1) or f1 (2): the mean over the classes kept of each class's (a binary
 * model keeps its positive class alone); a class never predicted has precision 0, one never
 * true recall 0, F1 = 2PR / (P + R) or 0 (Keras's divide_no_nan) */
static double per_class(const cv_model_spec *spec, const cv_metrics *m, int which)
{
    const int C = cv_metrics_classes(spec);
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        const double tp = (double)m->tp[c], p = ratio(tp, tp + (double)m->fp[c]), r = ratio(tp, tp + (double)m->fn[c]);
        sum += which == 0 ? p : which == 1 ? r : ratio(2.0 * p * r, p + r);
    }
    return C ? sum / C : 0.0;
}

/* ROC AUC from the histogram: the points (FPR_i, TPR_i) for thresholds i = 0..CV_AUC_BINS (a
 * sample is predicted positive at threshold i when its bin is >= i), joined by the trapezoid
 * rule; walking the bins from the top, bin b adds neg_b (2 P_above + pos_b) / 2 / (P N). The
 * sums are integers (exact below 2^53) in a fixed order; no positives or no negatives: 0, as
 * Keras's AUC */
static double auc(const cv_metrics *m)
{
    double P = 0.0, N = 0.0, area2 = 0.0;
    for (int b = CV_AUC_BINS - 1; b >= 0; b--) {
        area2 += (double)m->neg[b] * (2.0 * P + (double)m->pos[b]);
        P += (double)m->pos[b];
        N += (double)m->neg[b];
    }
    return P > 0 && N > 0 ? area2 / (2.0 * P * N) : 0.0;
}

double cv_metric_value(const cv_model_spec *spec, const cv_metrics *m, int i)
{
    const double n = m->count ? (double)m->count : 1.0, v = m->values ? (double)m->values : 1.0;
    switch (i) {
    case CV_METRIC_INDEX_ACCURACY: return m->correct / n;
    case CV_METRIC_INDEX_MAE: return m->abs_err / v;
    case CV_METRIC_INDEX_MSE: return m->sq_err / v;
    case CV_METRIC_INDEX_TOP_K:
    case CV_METRIC_INDEX_SPARSE_TOP_K: return (double)m->top_k / n;
    case CV_METRIC_INDEX_PRECISION: return per_class(spec, m, 0);
    case CV_METRIC_INDEX_RECALL: return per_class(spec, m, 1);
    case CV_METRIC_INDEX_F1: return per_class(spec, m, 2);
    case CV_METRIC_INDEX_AUC: return auc(m);
    default: return 0.0;
    }
}

int cv_metric_list(const cv_model_spec *spec, const cv_metrics *m, const char *names[CV_METRIC_LIST_MAX],
                   double values[CV_METRIC_LIST_MAX])
{
    int k = 0;
    names[k] = "loss", values[k++] = m->loss / (m->count ? (double)m->count : 1.0);
    for (int i = 0; i < CV_METRIC_KINDS; i++)
        if (spec->loss.metrics & (1u << i)) names[k] = cv_metric_name(i), values[k++] = cv_metric_value(spec, m, i);
    return k;
}

void cv_metrics_format(const cv_model_spec *spec, const cv_metrics *m, const char *prefix,
                       char *buf, size_t size)
{
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    const int k = cv_metric_list(spec, m, names, values);
    int len = 0;
    buf[0] = '\0';
    for (int i = 0; i < k && len < (int)size; i++)
        len += snprintf(buf + len, size - (size_t)len, "%s%s%s %.4f", i ? "  " : "", prefix, names[i], values[i]);
}

/* --log: a CSV row per epoch, as Keras's CSVLogger. The metric columns follow compile's
 * metrics; val_ columns appear with validation data. */
void cv_metrics_csv(FILE *f, const cv_model_spec *spec, const cv_metrics *m, const char *prefix, bool header)
{
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    const int k = cv_metric_list(spec, m, names, values);
    for (int i = 0; i < k; i++) {
        if (header) fprintf(f, ",%s%s", prefix, names[i]);
        else fprintf(f, ",%.6g", values[i]);
    }
}

/* The value a callback monitors ("val_loss", "accuracy", ...) from the epoch's sums; a val_
 * monitor without validation data falls back to the training value, as Keras does. */
double cv_metrics_value(const cv_model_spec *spec, const char *name, const cv_metrics *tm, const cv_metrics *vm,
                        bool has_val)
{
    const bool val = strncmp(name, "val_", 4) == 0;
    const cv_metrics *m = val && has_val ? vm : tm;
    const char *what = val ? name + 4 : name;
    for (int i = 0; i < CV_METRIC_KINDS; i++)
        if (strcmp(what, cv_metric_name(i)) == 0) return cv_metric_value(spec, m, i);
    return m->loss / (m->count ? (double)m->count : 1.0);
}

/* sums n doubles over the ranks in calls of at most INT_MAX / 2 */
static int sum_f64(const cv_dist *d, double *v, int64_t n, cv_err *err)
{
    for (int64_t off = 0; off < n; off += INT_MAX / 2) {
        const int64_t c = n - off < INT_MAX / 2 ? n - off : INT_MAX / 2;
        if (cv_dist_sum_f64(d, v + off, (int)c, err)) return -1;
    }
    return 0;
}

int cv_metrics_sum_ranks(const cv_dist *d, const cv_model_spec *spec, cv_metrics *m, cv_err *err)
{
    /* the most cv_metrics_pack writes: the six, top_k, tp/fp/fn of every class, both bins */
    double v[CV_METRIC_SIX + 1 + 3 * CV_METRIC_MAX_CLASSES + 2 * CV_AUC_BINS];
    const int64_t n = CV_METRIC_SIX + cv_metrics_counts(spec);
    cv_metrics_pack(spec, m, v);
    if (sum_f64(d, v, n, err)) return -1;
    memset(m, 0, sizeof *m);
    cv_metrics_add_six(v, m);
    cv_metrics_add_counts(spec, v + CV_METRIC_SIX, m);
    return 0;
}

int cv_metric_parts_init(cv_metric_parts *p, const cv_model_spec *spec, int64_t slots, cv_err *err)
{
    const int64_t counts = cv_metrics_counts(spec);
    *p = (cv_metric_parts){.spec = spec, .slots = slots, .counts = counts};
    p->v = cv_calloc((size_t)(counts + CV_METRIC_SIX * (slots ? slots : 1)), sizeof(double), "metric sums", err);
    p->scratch = p->v ? cv_malloc(sizeof(double) * (size_t)(CV_METRIC_SIX + counts), "metric sums", err) : NULL;
    if (p->scratch) return 0;
    cv_metric_parts_free(p);
    return -1;
}

void cv_metric_parts_put(cv_metric_parts *p, int64_t j, const cv_metrics *m)
{
    cv_metrics_pack(p->spec, m, p->scratch);
    memcpy(p->v + p->counts + CV_METRIC_SIX * j, p->scratch, sizeof(double) * CV_METRIC_SIX);
    for (int64_t i = 0; i < p->counts; i++) p->v[i] += p->scratch[CV_METRIC_SIX + i];
}

int cv_metrics_add_parts(const cv_dist *d, cv_metric_parts *p, int64_t nparts, cv_metrics *m, cv_err *err)
{
    const int64_t n = p->counts + CV_METRIC_SIX * nparts;
    if (sum_f64(d, p->v, n, err)) return -1;
    for (int64_t j = 0; j < nparts; j++) cv_metrics_add_six(p->v + p->counts + CV_METRIC_SIX * j, m);
    cv_metrics_add_counts(p->spec, p->v, m);
    memset(p->v, 0, sizeof(double) * (size_t)n);
    return 0;
}

void cv_metric_parts_free(cv_metric_parts *p)
{
    free(p->v);
    free(p->scratch);
    p->v = p->scratch = NULL;
}
