/* Module tune (src/tune/). Owns the hyperparameter search: sampling hp.* sites, Hyperband, trials across rank groups and their record.
 * May call: core, dist, io, data, model, checkpoint, train.
 * Must not be called by: every module it calls.
 *
 * Hyperparameter search (convoy tune): sampling a model file's hp.* sites, the Hyperband
 * schedule, Bayesian optimisation (src/tune/bayes.c), and the search itself, which splits the MPI world into groups of R ranks that each
 * train one trial data-parallel, and records every finished trial in D/trials.h5 (README
 * "Hyperparameter search" has the layout and the exact counting rules). */
#ifndef CONVOY_TUNE_H
#define CONVOY_TUNE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "convoy/dist.h"
#include "convoy/model.h"
#include "convoy/train.h"

/** Value of hyperparameter number h (of spec->hp) in configuration `config` of the search
 *  seeded `seed`: a pure function of (seed, config, h), so a resumed search samples the same
 *  sequence. int: lo + k*step (k uniform); float: uniform in [lo, hi], or uniform in
 *  log space with log; choice: the index of a choice (uniform); bool: 0 or 1. */
double cv_hp_sample(const cv_hp *hp, uint64_t seed, int64_t config, int h);

/** The model text with the text of values[h] in place of each hp site (malloc'd). */
char *cv_tune_substitute(const cv_model_spec *space, const double *values, cv_err *err);
/** One trial's model: that text parsed by cv_model_parse, so it is validated exactly like a
 *  hand-written file (messages name space->file and the same lines). */
int cv_tune_trial_spec(const cv_model_spec *space, const double *values, cv_model_spec *out, cv_err *err);

/** One rung of a Hyperband iteration (Li et al. 2018, Algorithm 1): in bracket s, rung i
 *  trains n configurations for `epochs` epochs; rung 0 takes new configurations, rung i > 0
 *  the best n of rung i-1. */
typedef struct {
    int bracket, rung, n, epochs;
} cv_hb_rung;
/** The rungs of one iteration in order (brackets s_max..0, rungs 0..s) for max_epochs R and
 *  factor eta: s_max = floor(log_eta R); bracket s starts n = ceil((s_max+1)/(s+1) * eta^s)
 *  configurations at R*eta^-s epochs; rung i keeps floor(n*eta^-i) at round(R*eta^(i-s))
 *  epochs. Returns the count (at most max). */
int cv_hyperband_plan(int max_epochs, int factor, cv_hb_rung *rungs, int max);

typedef enum { CV_TUNER_RANDOM, CV_TUNER_HYPERBAND, CV_TUNER_BAYESIAN } cv_tuner_kind;

typedef struct {
    const char *dir;          /* D: trials.h5, trials/NNNNN.h5, best.model */
    cv_tuner_kind tuner;
    const char *objective;    /* val_accuracy, val_loss, accuracy, loss, val_mae, ... */
    int64_t max_trials;
    int executions;           /* trainings per trial (seeds fit seed + 0..K-1), objective averaged */
    int ranks_per_trial;      /* R: the world splits into size/R groups */
    uint64_t seed;            /* sampling seed */
    int factor;               /* Hyperband's eta (3) */
    cv_train_opts train;      /* data, validation and speed options of every trial */
    /* the command line's overrides of each trial's model (epochs, batch size, ...), or NULL */
    void (*adjust)(void *ctx, cv_model_spec *spec);
    void *adjust_ctx;
    FILE *out;                /* world rank 0's progress lines and leaderboard (NULL: stdout) */
    /* bayesian: random configurations first (keras-tuner: 3 x the hp sites), then rounds of
     * proposals_per_round; the acquisition: mu - beta sigma (beta 2.6), or expected improvement */
    int initial_points, proposals_per_round;
    double beta;
    bool expected_improvement;
    int num_models;           /* keep the best K trials' checkpoints as D/best-1.h5 ... best-K.h5 (0: none) */
    int max_consecutive_failed; /* stop when this many trials in a row failed (0: never) */
} cv_tune_opts;

/** Runs (or resumes) the search described by space's hp sites. Every world rank calls it.
 *  Returns 0 when done, 1 when stopped by *o->train.stop_flag (finished trials kept), -1 on
 *  error. */
int cv_tune(const cv_model_spec *space, const cv_tune_opts *o, const cv_dist *world, cv_err *err);

/** Prints the leaderboard of D/trials.h5 (trials best first, their values and objective) and
 *  where the best checkpoint and D/best.model are. */
int cv_tune_summary(const char *dir, FILE *out, cv_err *err);

#endif
