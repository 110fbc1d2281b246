/* Distributed context, passed explicitly so that sharding logic runs (and is tested) in one
 * process: a world of size 1 makes no MPI calls at all. */
#ifndef CONVOY_DIST_H
#define CONVOY_DIST_H

#include <mpi.h>
#include <stdint.h>

#include "convoy/error.h"

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

/** In-place sums across ranks; errors name the MPI call. */
int cv_dist_sum_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err);
int cv_dist_sum_f64(const cv_dist *d, double *buf, int n, cv_err *err);
/** Rank 0's buffer to every rank. */
int cv_dist_bcast_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err);

#endif
