/* Private to src/tune: the search as tune.c runs it (its groups, trial records, the
 * configurations issued) and what the tuners in tuners.c need of it. */
#ifndef CONVOY_TUNE_SEARCH_H
#define CONVOY_TUNE_SEARCH_H

#include "tune/tune-impl.h"

typedef struct {
    int64_t trial, config;
    int bracket, rung, epochs;
    double values[CV_MAX_HP]; /* its hp values (cv_hp_sample's form) */
    int64_t parent;           /* Hyperband: the previous rung's trial it continues, or -1 */
    bool proposed;            /* Bayesian: proposed by the process, with expected improvement ei */
    double ei;
} trial_desc;

/* draws in a row that give configurations already issued before the space counts as exhausted
 * (keras-tuner's max_collisions) */
#define MAX_COLLISIONS 20
/* a space of only discrete sites with at most this many configurations (and at most
 * --max-trials) is enumerated, in a seeded order, instead of sampled */
#define ENUMERATE_MAX 100000

typedef struct {
    const cv_model_spec *space;
    const cv_tune_opts *o;
    const cv_dist *world;
    cv_dist group;
    int G, g;            /* number of groups, this rank's */
    char ranks[64];      /* this group's world ranks */
    cv_search_info info;
    cv_trial *trials;    /* max_trials; every rank knows status and objective, rank 0 all */
    int64_t done;        /* finished trials */
    double *seen;        /* the values of every configuration issued, CV_MAX_HP each */
    int64_t nseen;
    int64_t space_size;  /* > 0: the configurations are enumerated in the order perm */
    int64_t *perm;
    bool exhausted;      /* no new configuration could be found */
    char path[4096];     /* D/trials.h5 */
    FILE *out;
    FILE *sink;          /* /dev/null: where the trials' own cv_train lines go */
} search;

/** Runs the unfinished trials of descs, one per group per round (tune.c). Returns 0, 1
 *  (stopped), -1. */
int tune_run_batch(search *S, const trial_desc *descs, int n, cv_err *err);

/** tuners.c: a small all-discrete space's enumeration order (perm), and the three tuners. */
int tune_plan_enumeration(search *S, cv_err *err);
int tune_run_random(search *S, cv_err *err);
int tune_run_bayesian(search *S, cv_err *err);
int tune_run_hyperband(search *S, int max_epochs, cv_err *err);

#endif
