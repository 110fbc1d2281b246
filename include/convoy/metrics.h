/* Metric sums as people and files read them (src/train/metrics.c): the epoch line, the CSV
 * log's columns, and the value a monitor names. Below training and progress: it needs only the
 * model's types. */
#ifndef CONVOY_METRICS_H
#define CONVOY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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

#endif
