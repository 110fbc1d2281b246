/* Private to the train module's fit loop: the run's data split, hash and log (fit-data.c) and the step's
 * collectives that the network and the gradient buckets call back into (fit-sync.c), for
 * fit.c. */
#ifndef CONVOY_TRAIN_FIT_IMPL_H
#define CONVOY_TRAIN_FIT_IMPL_H

#include <stdio.h>

#include "convoy/train.h"

/* Training and validation rows: a separate file, or a seeded shuffle split of the data. */
typedef struct {
    cv_dataset train, val;
    bool has_val, val_is_split;
    int64_t *order;          /* owns the index memory train_idx and val_idx point into */
    int64_t *train_idx, n_train, *val_idx, n_val;
} data_split;

int fit_load_data(data_split *s, const cv_model_spec *spec, const cv_train_opts *o, cv_err *err);
void fit_free_data(data_split *s);
/* What every rank must agree on before training, written for cv_dist_check_written: the model
 * as parsed (with CLI overrides), the flags that change the math or the collectives, the data's
 * shape and rows. */
typedef struct {
    const cv_model_spec *spec;
    const cv_train_opts *o;
    const data_split *s;
} trainer_settings;
void fit_run_settings(FILE *f, const void *arg); /* arg: a trainer_settings */

/* Opens the log: a fresh run starts a new file; a resumed run keeps the header and the rows
 * of the epochs the checkpoint has done (later rows, from a run that went further before it
 * was killed, would be duplicated) and appends. */
FILE *fit_open_log(const char *path, bool resume, int64_t epochs_done, const cv_model_spec *spec, bool has_val,
                      cv_err *err);

/* Starts the bucketed allreduce from backward's per-layer notifications. */
typedef struct {
    cv_grad_sync *sync;
    bool armed;     /* only the last micro-batch of a step has final gradients */
    int failed;
    cv_err err;
} hook_ctx;
void fit_grads_ready(void *arg, int64_t off);

/* Batchnorm's statistics summed over the ranks (cv_net_set_batch_sum); the first failure is
 * kept for the step's end. */
typedef struct {
    const cv_dist *d;
    int failed;
    cv_err err;
} batch_sum_ctx;
int fit_batch_sum(void *arg, double *v, int64_t n);

/* --reproducible's batch statistics (cv_net_set_leaves): each rank's leaves' sums put in their
 * slots of the step's L, zeros elsewhere, summed over the ranks (a value plus zeros is that
 * value, exactly), then added up in leaf order: the same bits at any rank count. */
typedef struct {
    const cv_dist *d;
    int64_t L;      /* the step's leaves */
    double *slots;  /* cap doubles */
    int64_t cap;
    int failed;
    cv_err err;
} leaf_sum_ctx;
int fit_leaf_sum(void *arg, const double *sums, int first, int n, int64_t len, double *out);

/* layers whose training statistics are the whole batch's (trainable batchnorm) */
int fit_batch_layers(const cv_model_spec *spec);

/* One micro-batch of the epoch plan: positions [p, p + count) of the epoch's order. */
typedef struct {
    int64_t p;
    int count;
    bool leaf_first, leaf_last; /* --reproducible: it starts / ends a gradient leaf */
    int64_t leaf;   /* --reproducible: which leaf of its step */
    bool last;      /* the last of its step on this rank */
} micro;

/* fit-plan.c */
void fit_fill_ids(const micro *m, const int64_t *train_idx, const int64_t *perm, int64_t *ids);
int64_t fit_plan_leaf(micro *plan, int64_t *steps_of, int64_t n, int64_t step, int64_t leaf, int64_t lo, int64_t hi,
                      int mb);
int64_t fit_repro_leaf(int64_t B);

#endif
