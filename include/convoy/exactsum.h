/* Module kernels (its preamble: convoy/kernels.h). Exact, order-independent sums of float32 vectors: the same bits whatever order the vectors
 * are added in and however they are shared out over threads and MPI ranks. --reproducible
 * sums the gradients of a step's micro-batches (its leaves) this way; batch statistics summed
 * across micro-batches can use it the same way.
 *
 * The method (the idea of ReproBLAS's binned sums, with integer bins): each element keeps a
 * window index I, a multiple of W = CV_XSUM_DIGIT (40) with every value added to it so far
 * below 2^I in magnitude, and two int64 digit sums: hi counts units of 2^(I-W), lo units of
 * 2^(I-2W). A value is split into its two digits by truncation toward zero (its bits below
 * 2^(I-2W) are dropped) and the digits are added to their own sums with no carry between them,
 * so each digit sum is an exact integer sum, independent of order. When a larger value moves
 * the window up by one digit the lo sum is dropped and hi becomes lo: exactly what each earlier
 * value would have left had the window been there from its start. So the result depends only
 * on the multiset of values added to the element (its largest magnitude fixes the final
 * window): their exact sum, each value first truncated to a multiple of 2^(I-80), rounded once
 * to float. With m the element's largest |value|, 2^(I-40) <= m: the truncation loses less
 * than 2^-40 m per value, a value within 2^-16 of m loses nothing, and the sum is within half an
 * ulp plus (values) x 2^-40 m of the true one.
 *
 * Across ranks (cv_xsum_allreduce_take, in convoy/dist.h): an MPI_MAX of the windows (one byte per element),
 * every rank moves its digits to them, an integer MPI_Reduce_scatter of the digits leaves rank
 * r the exact sums of its 1/P of the elements, which it rounds, and an MPI_Allgatherv of the
 * floats gives every rank the whole result: about 21 bytes per element through the network
 * against a float allreduce's 8. A NaN or infinity among an element's values makes its result
 * NaN. */
#ifndef CONVOY_EXACTSUM_H
#define CONVOY_EXACTSUM_H

#include <stdint.h>

#include "convoy/error.h"

enum { CV_XSUM_DIGIT = 40 }; /* bits per digit */
/* most vectors one sum may hold (all ranks together): 2^11 digit sums of < 2^40 stay below
 * 2^51, converted to double exactly by the final rounding */
#define CV_XSUM_MAX_TERMS ((int64_t)1 << 11)

typedef struct {
    int64_t n;        /* elements */
    /* per element: I / W, or CV_XSUM_EMPTY (nothing nonzero yet) or CV_XSUM_NONFINITE; floats
     * need windows -3 (I = -120) to 4 (I = 160) */
    int8_t *window;
    int8_t *window_all; /* cv_xsum_allreduce_take's buffer: each element's largest window */
    /* digits: hi sums [0, n), lo sums [n, 2n), then the count of vectors added */
    int64_t *digits;
    double seconds;   /* time spent in cv_xsum_allreduce_take (for the communication share) */
} cv_xsum;

#define CV_XSUM_EMPTY INT8_MIN
#define CV_XSUM_NONFINITE INT8_MAX

/** An empty sum of n-element vectors. */
int cv_xsum_init(cv_xsum *s, int64_t n, cv_err *err);
void cv_xsum_free(cv_xsum *s);
/** Back to the empty sum (only the term count: the next cv_xsum_add overwrites the rest). */
void cv_xsum_clear(cv_xsum *s);
/** The empty sum in every byte: what an allreduce needs from a rank that added nothing. */
void cv_xsum_wipe(cv_xsum *s);
/** s += v (n floats), exactly. -1 past CV_XSUM_MAX_TERMS vectors. */
int cv_xsum_add(cv_xsum *s, const float *v, cv_err *err);
/** Moves each element's digits up to windows[i] (at or above its own): the first half of an
 *  allreduce, after the ranks' windows were reduced with MPI_MAX. */
void cv_xsum_align(cv_xsum *s, const int8_t *windows);
/** The sum rounded to float (once, to nearest) into out (n floats); s is left empty. */
void cv_xsum_take(cv_xsum *s, float *out);
/** The rounding alone, for m elements given their windows and digit sums. */
void cv_xsum_round(float *out, const int8_t *window, const int64_t *hi, const int64_t *lo, int64_t m);
/** Vectors added so far. */
static inline int64_t cv_xsum_terms(const cv_xsum *s) { return s->digits[2 * s->n]; }

#endif
