/* Module dist (src/dist/). Owns the MPI context and every collective convoy makes: checked sums and broadcasts, agreeing on a failure, comparing the ranks' settings, the bucketed gradient allreduce and the exact sum across ranks.
 * May call: core, kernels.
 * Must not be called by: core, kernels, io, layers, loss, optim, model, checkpoint (they stay single-process: ranks reach them as values).
 *
 * Distributed context, passed explicitly so that sharding logic runs (and is tested) in one
 * process: a world of size 1 makes no MPI calls at all. */
#ifndef CONVOY_DIST_H
#define CONVOY_DIST_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "convoy/error.h"
#include "convoy/exactsum.h"

typedef struct {
    MPI_Comm comm;  /* ignored when size == 1 */
    int rank, size;
} cv_dist;

/** A one-process world (no MPI needed). */
static inline cv_dist cv_dist_single(void) { return (cv_dist){MPI_COMM_NULL, 0, 1}; }
/** The world of an MPI_Init'ed program. */
int cv_dist_world(cv_dist *d, cv_err *err);

/** The rows [*lo, *hi) of a global range [start, start+count) that rank r takes: contiguous,
 *  sizes differ by at most one. */
static inline void cv_dist_slice(const cv_dist *d, int64_t start, int64_t count, int64_t *lo, int64_t *hi)
{
    *lo = start + count * d->rank / d->size;
    *hi = start + count * (d->rank + 1) / d->size;
}

/** Splits d into sub-worlds: the ranks passing the same color form one, ranked as in d
 *  (a size-1 d gives a size-1 group without MPI). Free it with cv_dist_free. */
int cv_dist_split(const cv_dist *d, int color, cv_dist *group, cv_err *err);
void cv_dist_free(cv_dist *group);

/** In-place sums across ranks; errors name the MPI call. */
int cv_dist_sum_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err);
int cv_dist_sum_f64(const cv_dist *d, double *buf, int n, cv_err *err);
/** Waits for every rank. */
int cv_dist_barrier(const cv_dist *d, cv_err *err);
/** Rank 0's buffer to every rank. */
int cv_dist_bcast_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err);
/** Rank 0's bytes to every rank: *buf and *n on rank 0; the others receive a malloc'd copy in
 *  *buf (theirs to free) and its size in *n. */
int cv_dist_bcast_bytes(const cv_dist *d, void **buf, int64_t *n, cv_err *err);

/** Rank 0 receives every rank's `bytes` bytes, in rank order, into all (size * bytes; ignored on
 *  the other ranks). */
int cv_dist_gather(const cv_dist *d, const void *mine, int64_t bytes, void *all, cv_err *err);
/** Collective agreement after a step that can fail on some ranks only (a file missing on one
 *  node): every rank returns -1 if any failed, with the lowest failing rank's message in err
 *  (prefixed "rank R: " when that is not rank 0), so all ranks stop together. */
int cv_dist_agree(const cv_dist *d, int failed, cv_err *err);

/** All ranks must hold the same 64-bit value (a hash of the weights, of a folder's listing):
 *  otherwise -1 with "WHAT differs: rank R has X, rank 0 has Y". */
int cv_dist_check_same(const cv_dist *d, uint64_t value, const char *what, cv_err *err);

/** Every rank's `bytes` bytes, in rank order, into all (size * bytes) on every rank. */
int cv_dist_allgather(const cv_dist *d, const void *mine, int64_t bytes, void *all, cv_err *err);

/** The settings a run's ranks must share, as text (src/dist/settings.c): one line per setting,
 *  "KIND\tNAME\tVALUE\n", where KIND is 's' for a switch (VALUE yes or no: "--reproducible"),
 *  'v' for a value ("--check-every" 100) and 'm' for a line of the model (NAME "layer 3",
 *  VALUE a model-file line: the first key that differs is named). Written with these to a
 *  FILE (open_memstream), in the same order on every rank. */
void cv_setting_switch(FILE *file, const char *name, int on);
void cv_setting_value(FILE *file, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Starts an 'm' line; the caller writes its VALUE and the newline (cv_layer_write_line). */
void cv_setting_model(FILE *file, const char *name);
/** Collective: every rank's settings text equals rank 0's, else -1 (on every rank) with the
 *  first setting that differs on the lowest rank that differs, named as cv_settings_diff names
 *  it; `whose` says what 'm' lines come from ("model file"). */
int cv_dist_check_settings(const cv_dist *d, const char *text, const char *whose, cv_err *err);
/** The same for the text write(f, arg) writes; a rank that cannot make it fails every rank. */
int cv_dist_check_written(const cv_dist *d, void (*write)(FILE *f, const void *arg), const void *arg,
                          const char *whose, cv_err *err);
/** The message for the first setting where rank `rank`'s text differs from rank 0's:
 *  "rank 1 has --reproducible, rank 0 has not", "ranks differ in --allreduce: rank 1 has
 *  bucketed --bucket-mb 4, rank 0 has blocking", "rank 1's model file differs from rank 0's
 *  (layer 3: conv2d filters=32 vs 16)". Writes "" when the texts are equal. */
void cv_settings_diff(const char *text0, const char *text, int rank, const char *whose, char *msg, size_t n);

/** FNV-1a over bytes, chained from h (start with CV_HASH_INIT). */
#define CV_HASH_INIT 0xcbf29ce484222325ull
uint64_t cv_hash_bytes(uint64_t h, const void *p, size_t n);

/** Gradient averaging over ranks: either one MPI_Allreduce of the whole buffer at the end of
 *  the backward pass, or buckets of about bucket_bytes started with MPI_Iallreduce as soon as
 *  backward has finished their layers (overlapping the rest of backward). Bucket boundaries
 *  fall on layer boundaries and are fixed at init, so every rank issues the same collectives
 *  in the same order whatever its own backward did. */
#define CV_MAX_BUCKETS 256
typedef struct {
    cv_dist d;
    float *grads;
    int64_t n;
    int64_t start[CV_MAX_BUCKETS + 1]; /* bucket b is [start[b], start[b-1]) with start[-1] = n */
    int nbuckets;          /* 0: one blocking Allreduce */
    int next;              /* buckets [0, next) are in flight */
    MPI_Request req[CV_MAX_BUCKETS];
    double seconds;        /* time spent inside the sync calls (for the comm share) */
} cv_grad_sync;

/** layer_off[0..nlayers) are the ascending offsets where parameterised layers start. */
void cv_grad_sync_init(cv_grad_sync *s, const cv_dist *d, float *grads, int64_t n, int64_t bucket_bytes,
                       const int64_t *layer_off, int nlayers);
/** Backward has finished every gradient at offsets >= off: start the buckets inside that. */
int cv_grad_sync_ready(cv_grad_sync *s, int64_t off, cv_err *err);
/** Sums the remaining gradients and waits for everything in flight. */
int cv_grad_sync_finish(cv_grad_sync *s, cv_err *err);

/** The exact sum (convoy/exactsum.h) over every rank of d, rounded to float into out (n floats)
 *  on every rank, as cv_xsum_take on one rank (collective); s is left empty. */
int cv_xsum_allreduce_take(cv_xsum *s, const cv_dist *d, float *out, cv_err *err);

#endif
