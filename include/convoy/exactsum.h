/* Exact, order-independent sums of float32 vectors: the same bits whatever order the vectors
 * are added in and however they are shared out over threads and MPI ranks. --reproducible
 * sums the gradients of a step's micro-batches (its leaves) this way; batch statistics summed
 * across micro-batches can use it the same way.
 *
 * The method (the idea of ReproBLAS's binned sums, with integer bins): the n elements are cut
 * into fixed blocks of CV_XSUM_BLOCK. A block keeps a window index I, a multiple of
 * CV_XSUM_DIGIT (W = 40) with every value added so far below 2^I in magnitude, and each element
 * two int64 digit sums: hi counts units of 2^(I-W), lo units of 2^(I-2W). A value is split
 * into its two digits by truncation (its bits below 2^(I-2W) are dropped) and the digits are
 * added to their own sums with no carry between them, so each digit sum is an exact integer
 * sum, independent of order. When a larger value moves the window up by one digit the lo sums
 * are dropped and hi becomes lo: exactly what each earlier value would have left had the window
 * been there from its start. So the result depends only on the multiset of values (and on the
 * largest magnitude per block, which fixes the final window): it is their exact sum, each value
 * first truncated to a multiple of 2^(I-80), then rounded once to float. Relative to the
 * block's largest magnitude m the truncation is below 2^-40 m per value: a value within 2^-16
 * of m keeps all its bits, and the error is far below float rounding of the result.
 *
 * Across ranks (cv_xsum_allreduce): an MPI_MAX of the block windows, every rank moves its
 * digits to them, then one integer MPI_SUM of the digits. A NaN or infinity in a block makes
 * that block's results NaN. */
#ifndef CONVOY_EXACTSUM_H
#define CONVOY_EXACTSUM_H

#include <stdint.h>

#include "convoy/dist.h"
#include "convoy/error.h"

enum {
    CV_XSUM_BLOCK = 1024, /* elements sharing one window */
    CV_XSUM_DIGIT = 40,   /* bits per digit */
};
/* most vectors one sum may hold (all ranks together): 2^11 digit sums of < 2^40 stay below
 * 2^51, converted to double exactly by the final rounding */
#define CV_XSUM_MAX_TERMS ((int64_t)1 << 11)

typedef struct {
    int64_t n;        /* elements */
    int64_t nblocks;
    int32_t *window;  /* per block: I, CV_XSUM_EMPTY (nothing nonzero yet) or CV_XSUM_NONFINITE */
    /* digits: hi sums [0, n), lo sums [n, 2n), then the count of vectors added (one buffer
     * for the MPI sum) */
    int64_t *digits;
    int32_t *window_all; /* cv_xsum_allreduce's buffer: the largest window of each block */
    double seconds;      /* time spent in cv_xsum_allreduce (for the communication share) */
} cv_xsum;

#define CV_XSUM_EMPTY INT32_MIN
#define CV_XSUM_NONFINITE INT32_MAX

/** An empty sum of n-element vectors. */
int cv_xsum_init(cv_xsum *s, int64_t n, cv_err *err);
void cv_xsum_free(cv_xsum *s);
/** Back to the empty sum. */
void cv_xsum_clear(cv_xsum *s);
/** s += v (n floats), exactly. -1 past CV_XSUM_MAX_TERMS vectors. */
int cv_xsum_add(cv_xsum *s, const float *v, cv_err *err);
/** The sum over every rank of d, in place on each (collective; nothing to do on one rank). */
int cv_xsum_allreduce(cv_xsum *s, const cv_dist *d, cv_err *err);
/** Moves each block's digits up to windows[block] (at or above its own): the first half of an
 *  allreduce, after the ranks' windows were reduced with MPI_MAX. */
void cv_xsum_align(cv_xsum *s, const int32_t *windows);
/** The sum rounded to float (once, to nearest) into out (n floats); s is left empty (as
 *  cv_xsum_clear leaves it: reading and clearing the digits in one pass). */
void cv_xsum_take(cv_xsum *s, float *out);
/** Vectors added so far (all ranks' after cv_xsum_allreduce). */
static inline int64_t cv_xsum_terms(const cv_xsum *s) { return s->digits[2 * s->n]; }

#endif
