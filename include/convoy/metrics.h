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

/** The most entries of a metric list: the loss and every metric. */
#define CV_METRIC_LIST_MAX (1 + CV_METRIC_KINDS)

/** Metric i's value (i < CV_METRIC_KINDS: 1 << i its CV_METRIC_* bit) from the sums m of a model
 *  spec (precision, recall, f1 and auc from their counts: docs/model-file.md, "Losses and
 *  metrics"). */
double cv_metric_value(const cv_model_spec *spec, const cv_metrics *m, int i);

/** A metric list: loss and the compiled metrics of spec, in the order --log and the progress bar
 *  print them, with their values from the sums m. Returns the count (1 to CV_METRIC_LIST_MAX). */
int cv_metric_list(const cv_model_spec *spec, const cv_metrics *m, const char *names[CV_METRIC_LIST_MAX],
                   double values[CV_METRIC_LIST_MAX]);

/** The value of a monitor name (loss, a metric, or val_ of them) from an epoch's metric sums:
 *  val_* reads vm when has_val (else tm); an unknown name reads the loss. */
double cv_metrics_value(const cv_model_spec *spec, const char *name, const cv_metrics *tm, const cv_metrics *vm,
                        bool has_val);

/** "loss 0.2871  accuracy 0.8992" from metric sums, with an optional prefix ("val_"). */
void cv_metrics_format(const cv_model_spec *spec, const cv_metrics *m, const char *prefix,
                       char *buf, size_t size);

/** --log's metric columns after "epoch,lr": their names (header) or their values from m, each
 *  preceded by a comma; the names follow compile's metrics, with the prefix ("val_"). */
void cv_metrics_csv(FILE *f, const cv_model_spec *spec, const cv_metrics *m, const char *prefix, bool header);

/** m summed over every rank of d, in place (MPI's order: the loss and error sums' rounding may
 *  differ with the rank count; the counts are exact). spec gives the counts' layout
 *  (cv_metrics_pack). */
int cv_metrics_sum_ranks(const cv_dist *d, const cv_model_spec *spec, cv_metrics *m, cv_err *err);

/** The metric sums of parts (validation chunks, --reproducible's leaves) that several ranks
 *  compute, for cv_metrics_add_parts: v holds the parts' counts, summed (exact in any order),
 *  then a slot of CV_METRIC_SIX doubles per part, holding that part's six sums on the rank that
 *  computed it and zeros on the others (a value plus zeros is that value, exactly). */
typedef struct {
    const cv_model_spec *spec; /* the counts' layout (borrowed) */
    int64_t slots, counts;
    double *v;                 /* counts, then slots * CV_METRIC_SIX */
    double *scratch;           /* one part packed (CV_METRIC_SIX + counts) */
} cv_metric_parts;
int cv_metric_parts_init(cv_metric_parts *p, const cv_model_spec *spec, int64_t slots, cv_err *err);
/** Part j's sums m: its six sums into slot j, its counts added to the parts' counts. */
void cv_metric_parts_put(cv_metric_parts *p, int64_t j, const cv_metrics *m);
/** Adds to m the metric sums of parts 0..nparts-1 put on any rank: the counts and slots are
 *  summed over ranks in one call and every rank adds the slots up in part order, so the sums are
 *  the same at any rank count. p is cleared for the next use. Collective. */
int cv_metrics_add_parts(const cv_dist *d, cv_metric_parts *p, int64_t nparts, cv_metrics *m, cv_err *err);
void cv_metric_parts_free(cv_metric_parts *p);

#endif
