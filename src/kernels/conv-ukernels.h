/* Private to the kernels: the implicit-GEMM convolution micro-kernels gemm.c compiles next to
 * its own (gemm-tile.h), for conv-gemm.c's drivers. */
#ifndef CONVOY_KERNELS_CONV_UKERNELS_H
#define CONVOY_KERNELS_CONV_UKERNELS_H

#include "convoy/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int mr, nr; /* the tile: mr rows (pixels, or receptive-field offsets) x nr filters */
    /* C (mr x nr of a TILE) = patches of pixels rows[0..mr) (nseg runs of seglen values,
     * segstride apart) times B (row k at pb + k * sb); set: store, else add; then ep */
    void (*fwd)(const float *const *rows, int nseg, int seglen, long segstride, const float *pb, int sb, float *c,
                int ldc, int mr, int nr, bool set, const cv_epilogue *ep);
    /* C (mr <= TILE rows x nr) += (set: =) sum over no x nq pixels of A (pixel, i) =
     * pa[o * so + q * sq + i] times B's row for that pixel (pb + pixel * sb); bsum (nr floats;
     * NULL: none) += those rows' sum */
    void (*dw)(const float *pa, int no, long so, int nq, long sq, const float *pb, int sb, float *c, int ldc,
               int mr, bool set, float *bsum);
} cv_conv_ukernels;

/* the kernels of the instruction set cv_sgemm uses */
const cv_conv_ukernels *cv_conv_ukernels_get(void);
/* ... or, for F filters that its tile's width does not divide, a narrower set's whose does */
const cv_conv_ukernels *cv_conv_ukernels_for(int F);

/* dst (F, C) = src (C, F) transposed: a kernel tap's channel axes swapped (the turned kernel of
 * an input gradient) */
static inline void cv_conv_tap_transpose(float *dst, const float *src, int C, int F)
{
    for (int f = 0; f < F; f++)
        for (int c = 0; c < C; c++) dst[(size_t)f * C + c] = src[(size_t)c * F + f];
}

/* the conv drivers' parallel loops: only outside a parallel region, and only for enough work to
 * pay the fork */
static inline bool cv_conv_fork_worth(double flops)
{
#ifdef _OPENMP
    return !omp_in_parallel() && omp_get_max_threads() > 1 && flops >= 2e6;
#else
    (void)flops;
    return false;
#endif
}

#endif
