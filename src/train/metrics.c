/* Metric sums: their sums over ranks, in rank-count-independent order where asked, and as people
 * and files read them (the epoch line's "loss 0.2871  accuracy 0.8992", the CSV log's columns,
 * the value a callback or a search monitors). Called by training, progress, eval and tune; it
 * calls only the model's types and the MPI collectives (dist/). */
#include "convoy/metrics.h"

#include <limits.h>
#include <string.h>

void cv_metrics_format(const cv_model_spec *spec, const cv_metrics *m, const char *prefix,
                       char *buf, size_t size)
{
    const double n = m->count ? (double)m->count : 1.0, v = m->values ? (double)m->values : 1.0;
    int len = snprintf(buf, size, "%sloss %.4f", prefix, m->loss / n);
    const unsigned mm = spec->loss.metrics;
    if ((mm & CV_METRIC_ACCURACY) && len < (int)size)
        len += snprintf(buf + len, size - (size_t)len, "  %saccuracy %.4f", prefix, m->correct / n);
    if ((mm & CV_METRIC_MAE) && len < (int)size)
        len += snprintf(buf + len, size - (size_t)len, "  %smae %.4f", prefix, m->abs_err / v);
    if ((mm & CV_METRIC_MSE) && len < (int)size)
        snprintf(buf + len, size - (size_t)len, "  %smse %.4f", prefix, m->sq_err / v);
}

/* --log: a CSV row per epoch, as Keras's CSVLogger. The metric columns follow compile's
 * metrics; val_ columns appear with validation data. */
void cv_metrics_csv(FILE *f, const cv_model_spec *spec, const cv_metrics *m, const char *prefix, bool header)
{
    const double n = m->count ? (double)m->count : 1.0, v = m->values ? (double)m->values : 1.0;
    const unsigned mm = spec->loss.metrics;
    if (header) {
        fprintf(f, ",%sloss", prefix);
        if (mm & CV_METRIC_ACCURACY) fprintf(f, ",%saccuracy", prefix);
        if (mm & CV_METRIC_MAE) fprintf(f, ",%smae", prefix);
        if (mm & CV_METRIC_MSE) fprintf(f, ",%smse", prefix);
        return;
    }
    fprintf(f, ",%.6g", m->loss / n);
    if (mm & CV_METRIC_ACCURACY) fprintf(f, ",%.6g", m->correct / n);
    if (mm & CV_METRIC_MAE) fprintf(f, ",%.6g", m->abs_err / v);
    if (mm & CV_METRIC_MSE) fprintf(f, ",%.6g", m->sq_err / v);
}

/* The value a callback monitors ("val_loss", "accuracy", ...) from the epoch's sums; a val_
 * monitor without validation data falls back to the training value, as Keras does. */
double cv_metrics_value(const char *name, const cv_metrics *tm, const cv_metrics *vm, bool has_val)
{
    const bool val = strncmp(name, "val_", 4) == 0;
    const cv_metrics *m = val && has_val ? vm : tm;
    const char *what = val ? name + 4 : name;
    const double n = m->count ? (double)m->count : 1.0, v = m->values ? (double)m->values : 1.0;
    if (strcmp(what, "accuracy") == 0) return m->correct / n;
    if (strcmp(what, "mae") == 0) return m->abs_err / v;
    if (strcmp(what, "mse") == 0) return m->sq_err / v;
    return m->loss / n;
}

void cv_metrics_to(double *v, const cv_metrics *m)
{
    v[0] = m->loss, v[1] = m->correct, v[2] = m->abs_err, v[3] = m->sq_err;
    v[4] = (double)m->count, v[5] = (double)m->values;
}

cv_metrics cv_metrics_from(const double *v)
{
    return (cv_metrics){v[0], v[1], v[2], v[3], (int64_t)v[4], (int64_t)v[5]};
}

int cv_metrics_sum_ranks(const cv_dist *d, cv_metrics *m, cv_err *err)
{
    double v[6];
    cv_metrics_to(v, m);
    if (cv_dist_sum_f64(d, v, 6, err)) return -1;
    *m = cv_metrics_from(v);
    return 0;
}

int cv_metrics_add_parts(const cv_dist *d, double *parts, int64_t nparts, cv_metrics *m, cv_err *err)
{
    for (int64_t off = 0; off < 6 * nparts; off += 6 * (INT_MAX / 12)) {
        const int64_t c = 6 * nparts - off < 6 * (INT_MAX / 12) ? 6 * nparts - off : 6 * (INT_MAX / 12);
        if (cv_dist_sum_f64(d, parts + off, (int)c, err)) return -1;
    }
    for (int64_t j = 0; j < nparts; j++) {
        const double *v = parts + 6 * j;
        m->loss += v[0], m->correct += v[1], m->abs_err += v[2], m->sq_err += v[3];
        m->count += (int64_t)v[4], m->values += (int64_t)v[5];
    }
    memset(parts, 0, sizeof(double) * 6 * (size_t)nparts);
    return 0;
}
