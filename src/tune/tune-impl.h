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
    bool hyperband;
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

#endif
