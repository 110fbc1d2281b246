/* Module train (its preamble: convoy/train.h). What rank 0 prints per epoch. On a terminal, a Keras-style progress bar redrawn in place
 * (at most 10 times a second, each line fitted to the terminal's width), then a final line with the epoch's time and metrics; elsewhere
 * (pipes, files, CI, Slurm logs) one plain line per epoch. Silent when not enabled. */
#ifndef CONVOY_PROGRESS_H
#define CONVOY_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "convoy/model.h"

typedef struct {
    FILE *out;
    bool on, tty, verbose;
    int epoch, epochs;           /* 0-based epoch being drawn */
    int64_t steps, first_step;   /* steps per epoch; where this run entered the epoch */
    int64_t batch, n_train;
    double t0, last_draw;
    int drawn;                   /* characters of the bar line on screen (0: at a line start) */
} cv_progress;

/** Extra per-epoch figures for --verbose. */
typedef struct {
    double lr;
    double train_s, comm_s, val_s; /* the epoch's training time, rank 0's gradient communication
                                      within it, and the validation pass */
} cv_progress_detail;

/** on: print at all (rank 0 without --quiet); the bar is used when out is a terminal. */
void cv_progress_init(cv_progress *p, FILE *out, bool on, bool verbose, int epochs, int64_t steps,
                      int64_t batch, int64_t n_train);
/** Starts epoch (0-based) at step first_step (non-zero after a mid-epoch resume). */
void cv_progress_epoch(cv_progress *p, int epoch, int64_t first_step);
/** After optimizer step `step` (0-based) of the epoch, with the running metric sums m. */
void cv_progress_step(cv_progress *p, const cv_model_spec *spec, int64_t step, const cv_metrics *m);
/** The epoch's end: its train and (when val is not NULL) validation metrics. */
void cv_progress_end(cv_progress *p, const cv_model_spec *spec, const cv_metrics *train, const cv_metrics *val,
                     double seconds, const cv_progress_detail *detail);
/** Ends a half-drawn bar line, so that a message printed next starts on its own line. */
void cv_progress_break(cv_progress *p);

#endif
