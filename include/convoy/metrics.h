/* Module train (its preamble: convoy/train.h). Metric sums (src/train/metrics.c): summed over ranks, and as people and files read them (the
 * epoch line, the CSV log's columns, the value a monitor names). Below training and progress:
 * it needs only the model's types and the distributed context. */
#ifndef CONVOY_METRICS_H
#define CONVOY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "convoy/dist.h"
#include "convoy/model.h"

/** The value of a monitor name (loss, accuracy, mae, mse, or val_ of them) from an epoch's
 *  metric sums: val_* reads vm when has_val (else tm). */
double cv_metrics_value(const char *name, const cv_metrics *tm, const cv_metrics *vm, bool has_val);

/** "loss 0.2871  accuracy 0.8992" from metric sums, with an optional prefix ("val_"). */
void cv_metrics_format(const cv_model_spec *spec, const cv_metrics *m, const char *prefix,
                       char *buf, size_t size);

/** --log's metric columns after "epoch,lr": their names (header) or their values from m, each
 *  preceded by a comma; the names follow compile's metrics, with the prefix ("val_"). */
void cv_metrics_csv(FILE *f, const cv_model_spec *spec, const cv_metrics *m, const char *prefix, bool header);

/** m summed over every rank of d, in place (MPI's order: rounding may differ with the rank
 *  count). */
int cv_metrics_sum_ranks(const cv_dist *d, cv_metrics *m, cv_err *err);
/** m's six sums as doubles (loss, correct, abs_err, sq_err, count, values), and back. */
void cv_metrics_to(double *v, const cv_metrics *m);
cv_metrics cv_metrics_from(const double *v);
/** Adds to m the metric sums of parts (validation chunks, --reproducible's leaves) that several
 *  ranks computed, in part order: slot j (6 doubles, cv_metrics_to) of parts holds part j's
 *  sums on the rank that computed it and zeros on the others; the slots are summed over ranks
 *  (a value plus zeros is that value, exactly) and every rank adds them up in order, so the
 *  sums are the same at any rank count. parts is cleared for the next use. Collective. */
int cv_metrics_add_parts(const cv_dist *d, double *parts, int64_t nparts, cv_metrics *m, cv_err *err);

#endif
