/* Private: a one-thread reader that fetches the next micro-batch of a streamed dataset while
 * the current one computes (double buffering). HDF5 here is not thread-safe, so while a
 * prefetcher runs, no other thread may touch HDF5; cv_prefetch_free joins the thread. */
#ifndef CONVOY_PREFETCH_H
#define CONVOY_PREFETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "convoy/data.h"

typedef struct {
    float *x, *targets;
    int32_t *labels;
    int64_t *ids;
    int count;
    float *w;               /* the samples' loss weights (NULL: unweighted): the dataset's /w times */
    const float *class_w;   /* ... the weight of the label's class (NULL: 1; cv_batch_weigh) */
} cv_batch;

int cv_batch_alloc(cv_batch *b, const cv_dataset *ds, int max, cv_err *err);
void cv_batch_free(cv_batch *b);
/** Inputs and labels/targets of rows b->ids[0..count) (sets b->count). */
int cv_batch_fill(cv_batch *b, cv_dataset *ds, const cv_normalizer *nz, int count, cv_err *err);
/** From now on the batch weighs each sample by class_w[its label] too (max: the batch's size). */
int cv_batch_weigh(cv_batch *b, const float *class_w, int max, cv_err *err);

typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, quit;
    cv_dataset *ds;
    const cv_normalizer *nz;
    cv_batch slot[2];
    int state[2];      /* 0 idle, 1 requested, 2 filled, 3 failed */
    cv_err err[2];
} cv_prefetch;

int cv_prefetch_start(cv_prefetch *p, cv_dataset *ds, const cv_normalizer *nz, int max, cv_err *err);
/** The slot's ids[0..count) must be written before the request. */
void cv_prefetch_request(cv_prefetch *p, int slot, int count);
/** Waits until no read is in flight (the slot it fills stays ready for its cv_prefetch_wait):
 *  before the training thread itself touches HDF5 (a checkpoint save, a validation pass), since
 *  the library is not thread-safe and a validation split reads the same dataset's buffers. */
void cv_prefetch_quiet(cv_prefetch *p);
/** Waits for the slot; returns its batch, or NULL with the reader's error. */
cv_batch *cv_prefetch_wait(cv_prefetch *p, int slot, cv_err *err);
void cv_prefetch_free(cv_prefetch *p);

#endif
