/* Module train (its preamble: convoy/train.h). Training history: one row of numbers per epoch under named columns (epoch, lr, loss, the
 * compiled metrics, their val_ twins, seconds, images_per_s), as `train --log` writes it to CSV.
 * Built in memory by train for --plot, read back from CSV files by `convoy plot`. */
#ifndef CONVOY_HISTORY_H
#define CONVOY_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/error.h"
#include "convoy/metrics.h"
#include "convoy/model.h"
#include "convoy/plot.h"

#define CV_HISTORY_MAX_COLS CV_TABLE_MAX_COLS

/** A history is a table of the chart's kind (convoy/plot.h): the chart takes it as it is. */
typedef cv_table cv_history;

/** An empty history with train's columns for spec (val_ columns when has_val). */
void cv_history_init(cv_history *h, const cv_model_spec *spec, bool has_val);
/** cv_history_init, then the rows of the CSV file csv (a resumed run's --log, already trimmed
 *  to the checkpoint's epochs) when it exists and has exactly these columns; NULL: none. */
void cv_history_seed(cv_history *h, const cv_model_spec *spec, bool has_val, const char *csv);
/** Appends the row of one finished epoch (1-based) from its metric sums. */
int cv_history_add_epoch(cv_history *h, const cv_model_spec *spec, int epoch, double lr, const cv_metrics *train,
                         const cv_metrics *val, double seconds, double images_per_s, cv_err *err);
/** Reads a CSV history (header row of column names, then numeric rows; "nan"/"inf" allowed).
 *  Errors name the file and line: "h.csv:4: 7 fields, the header has 8". An `epoch` and a
 *  `loss` column are required. */
int cv_history_read_csv(cv_history *h, const char *path, cv_err *err);
/** Index of the column called name, or -1. */
int cv_history_col(const cv_history *h, const char *name);
void cv_history_free(cv_history *h);

#endif
