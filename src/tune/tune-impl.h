/* Private to src/tune: one finished trial, its HDF5 form (a group of D/trials.h5, or the root
 * of the per-trial result file a group writes), and the leaderboard. */
#ifndef CONVOY_TUNE_IMPL_H
#define CONVOY_TUNE_IMPL_H

#include <hdf5.h>

#include "convoy/tune.h"

/* history columns: the loss, accuracy, mae and mse with their val_ names (the objective may be
 * any monitor name: the trial's objective holds its value), NaN where a metric is not compiled or
 * there is no validation set */
#define CV_TRIAL_COLS 8
extern const char *const cv_trial_cols[CV_TRIAL_COLS];

typedef enum { CV_TRIAL_OK = 1, CV_TRIAL_FAILED = 2 } cv_trial_status;

typedef struct {
    int64_t trial, config;
    int bracket, rung, epochs;   /* bracket and rung -1 for random search */
    cv_trial_status status;      /* FAILED: the model is invalid, or the objective not finite */
    double objective;            /* mean over executions of each one's best epoch; NaN if failed */
    double seconds;
    int n_hp;
    char values[CV_MAX_HP][64];  /* value texts, in hp order */
    char checkpoint[4200];       /* the best execution's best-epoch checkpoint, "" if none */
    char ranks[64];              /* world ranks of the group that trained it: "2,3" */
    char note[CV_ERR_MSG];       /* why it failed */
    int executions, hist_epochs;
    double *history;             /* executions x hist_epochs x CV_TRIAL_COLS, NaN where not run */
    int64_t parent;              /* Hyperband: the trial whose state it continued, or -1 (from scratch) */
    double ei;                   /* Bayesian: the expected improvement the process saw when it proposed
                                    the trial (objective units); NaN for a random one */
    bool has_raw;                /* raw read or set (files before the Bayesian tuner lack it) */
    double raw[CV_MAX_HP];       /* the values as cv_hp_sample gives them (a choice's index) */
} cv_trial;

void cv_trial_free(cv_trial *t);
int cv_trial_write(hid_t loc, const cv_trial *t, const char *file, cv_err *err);
int cv_trial_read(hid_t loc, cv_trial *t, const char *file, cv_err *err);

/** The search's identity (model text, tuner, objective, seed, ...): a resumed search must
 *  match it. */
typedef struct {
    char *model;                 /* the search model's text */
    char config[512];            /* "tuner=random objective=val_accuracy seed=1 ..." */
    char objective[48];
    int n_hp;
    char names[CV_MAX_HP][CV_HP_TEXT];
    bool hyperband, bayesian;
} cv_search_info;

/** Writes D/trials.h5 atomically: the info and trials[0..n) (those with status != 0). */
int cv_trials_save(const char *path, const cv_search_info *info, const cv_trial *trials, int64_t n, cv_err *err);
/** Reads D/trials.h5 into trials (grown as needed; *n = 1 + the largest trial index) and info
 *  (info->model malloc'd). */
int cv_trials_load(const char *path, cv_search_info *info, cv_trial **trials, int64_t *n, cv_err *err);

/** true when objective a is better than b (max for accuracy, min for loss/mae/mse); a failed
 *  trial is worse than any other. */
bool cv_trial_better(const char *objective, const cv_trial *a, const cv_trial *b);
/** Prints the leaderboard and returns the best trial's index (-1 when none succeeded). */
int64_t cv_trials_leaderboard(const cv_search_info *info, const cv_trial *trials, int64_t n, FILE *out);

/* ---- Bayesian optimisation (bayes.c) ---- */

/** A value of site hp in [0, 1] as keras-tuner encodes it: a discrete value (int, choice,
 *  bool) the middle of its bucket, (index + 0.5) / count; a float its place between lo and hi,
 *  linear or in log space. cv_hp_decode maps back (a discrete site: the bucket x falls in). */
double cv_hp_encode(const cv_hp *hp, double v);
double cv_hp_decode(const cv_hp *hp, double x);

/* trials a Gaussian process holds at most */
#define CV_GP_MAX 1024
/** A Gaussian process regression: Matern 5/2 kernel of length scale ell on the Euclidean
 *  distance, unit signal variance on targets normalised to mean 0 and deviation 1, noise 1e-4
 *  on the diagonal. lml: the log marginal likelihood of the normalised targets. */
typedef struct {
    int n, d;
    double ell, mean, sd, lml;
    double *x, *L, *alpha; /* the points (n, d); the Cholesky factor (n, n); K^-1 z */
} cv_gp;
int cv_gp_fit(cv_gp *gp, const double *x, const double *y, int n, int d, double ell, cv_err *err);
/** cv_gp_fit with the length scale of the largest log marginal likelihood: a log grid of 41
 *  values over [0.01, 10], then golden-section search around the best. */
int cv_gp_fit_ml(cv_gp *gp, const double *x, const double *y, int n, int d, cv_err *err);
/** The posterior mean and standard deviation at x (d values), in the targets' units. */
void cv_gp_predict(const cv_gp *gp, const double *x, double *mean, double *sd);
void cv_gp_free(cv_gp *gp);

typedef struct {
    double beta;               /* the confidence bound's weight (keras-tuner: 2.6) */
    bool expected_improvement; /* instead of the confidence bound */
} cv_bayes_opts;
/** The next `count` configurations (out: count x d raw values) for sites hp[0..d) after n
 *  trials (raw: n x d, y: their objectives to minimise, NaN for a failed one): fitted as above,
 *  each the best of 1000 candidates keyed (seed, round, proposal) refined by pattern search,
 *  never the values of an earlier trial or proposal, later ones after a constant liar; ei (count
 *  values, may be NULL) the expected improvement at each when it was chosen. Returns
 *  0, 1 when no untried values were found (the space is exhausted), -1 on error. */
int cv_bayes_propose(const cv_hp *hp, int d, const double *raw, const double *y, int n, const cv_bayes_opts *o,
                     uint64_t seed, int64_t round, int count, double *out, double *ei, cv_err *err);

#endif
