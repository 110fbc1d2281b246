/* Module train (src/train/). Owns training (the fit loop in readable stages), evaluation and prediction, and what a run reports: metric sums (metrics.h), progress (progress.h), history (history.h), callbacks (callbacks.h), confusion matrices (confusion.h) and benchmarks (bench.h).
 * May call: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint.
 * Must not be called by: every module it calls.
 *
 * Training, evaluation and prediction over datasets: the fit loop (epochs of shuffled global
 * batches, each rank computing its slice in micro-batches, gradients summed across ranks and
 * divided by the true batch size), and exact whole-set evaluation. */
#ifndef CONVOY_TRAIN_H
#define CONVOY_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "convoy/data.h"
#include "convoy/dist.h"
#include "convoy/metrics.h"
#include "convoy/model.h"

/** Samples per forward/backward pass: larger local batches are accumulated in micro-batches
 *  of at most this size, so memory does not grow with the batch (batch_size=all works). */
#define CV_MICRO_BATCH 256
/* --reproducible: samples per leaf, at most (a batch of B is ceil(B / 32) leaves; past 2048
 * leaves, 2048 leaves of about B / 2048) */
#define CV_REPRO_LEAF 32
/** --reproducible's cut of a step's `count` samples in a run of batch B: its number of leaves
 *  L; leaf j holds the step's positions [count j / L, count (j + 1) / L) and rank r of P
 *  computes leaves [L r / P, L (r + 1) / P). */
int64_t cv_repro_leaves(int64_t B, int64_t count);

/** Called after epoch `epoch` (0-based) ends, with its logs: n names and values, Keras's keys
 *  (loss, the compiled metrics, then val_ of each when there is validation data), the same on
 *  every rank. Nonzero stops training there, as early stopping does: if any rank says stop,
 *  every rank stops (cv_train then returns 0). */
typedef int (*cv_epoch_end_fn)(void *ctx, int epoch, int n, const char *const *names, const double *values);

typedef struct {
    const char *data;        /* training set (required unless train_set) */
    const char *val;         /* validation set, or NULL to use spec->fit.validation_split */
    const char *checkpoint;  /* written at the end by rank 0, or NULL */
    bool quiet;              /* no per-epoch lines */
    FILE *out;               /* where rank 0 prints (NULL: stdout) */
    bool stream;             /* read /x rows from the file as needed instead of loading it */
    int64_t check_every;     /* compare a checksum of the weights across ranks every N steps; 0 off */
    int64_t bucket_bytes;    /* gradient allreduce: 0 = one blocking MPI_Allreduce after backward,
                                else buckets of this size overlapped with backward */
    const char *resume;      /* continue exactly from this checkpoint, or NULL */
    const char *init_from;   /* start from these weights (checked layer by layer), or NULL */
    int64_t checkpoint_every;/* also save the checkpoint every N optimizer steps (0: epoch ends only) */
    volatile sig_atomic_t *stop_flag; /* set by a signal handler: save and stop after this step */
    bool reproducible;       /* byte-identical weights at any rank and thread count (see README) */
    const char *log;         /* CSV history, one row per epoch (rank 0), or NULL */
    bool verbose;            /* per-epoch learning rate and time breakdown */
    const char *plot;        /* SVG training curves, rewritten after every epoch (rank 0), or NULL */
    /* in-memory data (cv_dataset_wrap: the caller's arrays, not copied), used instead of the
     * files data and val when not NULL; training reads them and never changes or frees them */
    const cv_dataset *train_set, *val_set;
    cv_epoch_end_fn on_epoch_end; /* called on every rank after each epoch's end (and its
                                     checkpoint), or NULL */
    void *epoch_ctx;              /* passed to on_epoch_end */
    const float *init_weights;    /* start from these weights (all cv_net_param_count floats, in
                                     cv_net_params' order), as init_from does from a file, or NULL */
    int64_t n_init_weights;       /* their count (checked) */
    bool private_checkpoint;      /* checkpoint is the caller's own copy: no "saved F" lines, and a
                                     stop by stop_flag names no --resume command */
} cv_train_opts;

typedef struct {
    cv_metrics train, val;   /* sums over the epoch; val.count == 0 without validation */
    double seconds;
    double images_per_s;
    double comm_seconds;     /* spent in gradient communication on this rank */
} cv_epoch_stats;

/** Trains spec as configured (spec->fit, spec->optim, spec->callbacks) and fills
 *  stats[0..epochs) when stats is not NULL. Returns 0 when done, 1 when *stop_flag stopped it
 *  (after saving the checkpoint), -1 on error. The checkpoint is written at every epoch end
 *  (only on improvement with save_best_only), every checkpoint_every steps, and on a stop. */
int cv_train(const cv_model_spec *spec, const cv_train_opts *o, const cv_dist *d,
             cv_epoch_stats *stats, cv_err *err);

/** Lines for cv_dist_check_settings (convoy/dist.h): the model as parsed, with the CLI's
 *  overrides (each layer as a model-file line, then compile's, fit's and augment's values), and
 *  a dataset's shape and rows under `name` ("--data"). */
void cv_train_model_settings(FILE *f, const cv_model_spec *spec);
void cv_train_data_setting(FILE *f, const char *name, const cv_dataset *ds);

/** Checks a dataset fits the model: sample shape, label range or target width, label/loss kind. */
int cv_check_data(const cv_model_spec *spec, const cv_dataset *ds, cv_err *err);

/** Metrics over rows idx[0..count) (all rows when idx is NULL): the rows are cut into chunks of
 *  CV_MICRO_BATCH, the ranks share out the chunks, and the chunks' sums are added in chunk order,
 *  so every sample counts once and the sums are the same bits at any rank count. */
int cv_evaluate(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx,
                int64_t count, const cv_dist *d, cv_metrics *m, cv_err *err);

/** Network outputs for every row of ds into out (n, outputs); single process. */
int cv_predict(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, float *out, cv_err *err);

#endif
