/* Module train (its preamble: convoy/train.h). The flat API that language bindings call (the
 * Python package src/python/convoy, through ctypes): plain C types only, a model named by its
 * text or by a checkpoint file, arrays passed as pointers and never copied when they can be
 * used as they are. Every call that can fail returns 0 (or a count) on success and -1 with a
 * one-line message in err (CV_ERR_MSG bytes, no "convoy: " prefix). Training is cv_train, the
 * call `convoy train` makes, so the weights are the CLI's bit for bit. */
#ifndef CONVOY_BINDING_H
#define CONVOY_BINDING_H

#include <stdint.h>

#include "convoy/data.h"
#include "convoy/train.h"

/** What cv_bind_describe reports of a model, by index into its info array. */
enum {
    CV_BIND_IN_RANK,   /* input rank: 3 (H,W,C) or 1 (D) */
    CV_BIND_IN_D0,     /* input dimensions ... */
    CV_BIND_IN_D1,
    CV_BIND_IN_D2,
    CV_BIND_OUTPUTS,   /* output width K */
    CV_BIND_LABELS,    /* 1: y is integer class labels (N,); 0: float targets (N, K) */
    CV_BIND_TENSORS,   /* weight tensors (get_weights' list) */
    CV_BIND_PARAMS,    /* floats in them all */
    CV_BIND_CLASSES,   /* labels lie in [0, classes) (2 for a one-output binary model) */
    CV_BIND_INFO_N
};

/** Starts the distributed context: with mpi, MPI_Init unless MPI is initialised already (by
 *  mpi4py, say) and the world communicator; else a single process. *rank, *size: where this
 *  process stands. Call once, before the others. */
int cv_bind_init(int mpi, int *rank, int *size, char *err);
/** MPI_Finalize when cv_bind_init initialised MPI; nothing otherwise. */
void cv_bind_finalize(void);

/** Parses the model text (file names it in messages, "FILE:LINE: ...") or, when text is NULL,
 *  reads the model saved in checkpoint; fills info[CV_BIND_INFO_N] and, when summary is not
 *  NULL, *summary with `convoy summary`'s table (free it with cv_bind_free). */
int cv_bind_describe(const char *text, const char *file, const char *checkpoint, int64_t *info, char **summary,
                     char *err);
void cv_bind_free(void *p);

/** The weight tensors in Keras's order and layouts (per layer: kernel (KH,KW,Cin,Cout) or
 *  (in,out), bias, then untrained state such as moving_mean, moving_variance): dims receives 5
 *  values per tensor (its rank, then up to 4 dimensions), for at most cap tensors. Returns
 *  the number of tensors. */
int cv_bind_weight_shapes(const char *text, const char *file, const char *checkpoint, int64_t *dims, int cap,
                          char *err);
/** All weights, the tensors above one after the other, into out (n floats, the model's
 *  CV_BIND_PARAMS): the checkpoint's when given, else the initial weights training starts
 *  from (the model's seed). */
int cv_bind_get_weights(const char *text, const char *file, const char *checkpoint, float *out, int64_t n, char *err);

/** A dataset over the caller's arrays (cv_dataset_wrap), allocated; NULL with err on a bad
 *  one. shape holds rank dimensions. Free with cv_bind_dataset_free (the arrays stay the
 *  caller's). */
cv_dataset *cv_bind_dataset(const char *name, int64_t n, int rank, const int64_t *shape, int x_is_float, void *x,
                            int32_t *labels, float *targets, int ydim, char *err);
void cv_bind_dataset_free(cv_dataset *ds);
/** The dataset file at path, loaded as `convoy eval --data` / `predict --data` load it (with_y:
 *  its /y required; else /x alone); NULL with err naming the file and what is wrong. */
cv_dataset *cv_bind_dataset_file(const char *path, int with_y, char *err);
/** Its number of rows. */
int64_t cv_bind_dataset_rows(const cv_dataset *ds);

/** OpenMP threads for the calls that follow (as the CLI's --threads): n > 0 sets them, n <= 0
 *  only asks. Returns the count in force before. */
int cv_bind_threads(int n);

/** The model file text a checkpoint holds, into *text (free with cv_bind_free). */
int cv_bind_model_text(const char *checkpoint, char **text, char *err);

/** What fit may change of the model's fit line and how training runs. */
typedef struct {
    int64_t epochs;            /* > 0: fit epochs= */
    int64_t batch_size;        /* > 0: fit batch_size=; 0: all (full batch); < 0: the model's */
    int64_t seed;              /* >= 0: fit seed= */
    double validation_split;   /* >= 0: fit validation_split= (ignored with a validation set) */
    int verbose;               /* 0: silent; 1: convoy's progress; 2: also rate and times */
    const char *init_from;     /* start from this checkpoint's weights, or NULL */
    const float *init_weights; /* then these (CV_BIND_PARAMS floats), or NULL */
    int64_t n_init_weights;
    cv_epoch_end_fn on_epoch_end; /* each epoch's logs; nonzero stops (NULL: none) */
    void *epoch_ctx;
    const char *data, *val;    /* HDF5 files read as `convoy train --data/--val` reads them,
                                  instead of the train and val datasets (NULL: not used) */
} cv_bind_fit_opts;

/** Trains the model text (NULL: the model of fo->init_from) on train (val: a validation set, or
 *  NULL), or on the files fo->data (fo->val) when given, with cv_train and writes
 *  the result to checkpoint (rank 0). SIGINT (Ctrl-C) while it runs stops it after the step
 *  in progress, saving the checkpoint: then *interrupted is 1. The handler in place before is
 *  put back. */
int cv_bind_fit(const char *text, const char *file, const cv_bind_fit_opts *fo, const cv_dataset *train,
                const cv_dataset *val, const char *checkpoint, int *interrupted, char *err);

/** The network for evaluate and predict: the checkpoint's (with its normaliser) when given,
 *  else the model's initial one, normalising as training would on ds; weights (n floats, or
 *  NULL) replace its weights. Metrics of ds (every rank of the world, the rows shared out as
 *  `convoy eval` does): names gets "loss,accuracy,..." (cap bytes), values up to
 *  CV_METRIC_LIST_MAX numbers. Returns their count. */
int cv_bind_evaluate(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                     cv_dataset *ds, char *names, int cap, double *values, char *err);
/** The outputs for every row of ds into out (rows x CV_BIND_OUTPUTS floats): probabilities for
 *  softmax and sigmoid outputs. */
int cv_bind_predict(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                    cv_dataset *ds, float *out, char *err);
/** Writes a checkpoint at out (rank 0) with the weights (n floats; NULL: the checkpoint's) and
 *  the normaliser of checkpoint; without a checkpoint the model's input line must say how it
 *  normalises (normalize=scale or none). */
int cv_bind_save(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                 const char *out, char *err);

#endif
