/* Implicit-GEMM convolution for windows that stay inside the input (no padding): the GEMM
 * micro-kernel reads each output pixel's receptive field straight from the NHWC input, where it
 * is KH runs of KW*C contiguous values, and the weights (KH*KW*C, F) in place. No im2col matrix
 * is written and nothing is packed, which on a conv layer of a small CNN is as much memory
 * traffic as the products themselves. The forward sums run in the im2col column order, so
 * results equal the im2col + GEMM path's bit for bit where that path takes K in one slice
 * (K <= 384); the weight gradient adds one sample at a time, in sample order, per C tile,
 * whatever the thread count. */
#include "kernels/conv-ukernels.h"

enum { MR_MAX = 16, SAMPLE_BLOCK = 4 };

bool cv_conv_gemm_fits(const cv_window *g, int F)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    return g->pad_top == 0 && g->pad_left == 0 && (g->OH - 1) * g->SH + g->KH <= g->H &&
           (g->OW - 1) * g->SW + g->KW <= g->W && F % u->nr == 0 && (g->KW * g->C) % u->mr == 0 &&
           u->mr <= MR_MAX;
}

void cv_conv_gemm(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                  const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const int mr = u->mr, nr = u->nr, P = g->OH * g->OW, K = g->KH * g->KW * g->C;
    const long M = (long)B * P, panels = (M + mr - 1) / mr;
    const size_t in = (size_t)g->H * g->W * g->C;
    const long segstride = (long)g->W * g->C;
#pragma omp parallel for schedule(static) if (cv_conv_fork_worth(2.0 * M * F * K))
    for (long p = 0; p < panels; p++) {
        const long r0 = p * mr;
        const int rows = M - r0 < mr ? (int)(M - r0) : mr;
        const float *at[MR_MAX];
        for (int i = 0; i < mr; i++) { /* a short last panel repeats its first pixel */
            const long r = r0 + (i < rows ? i : 0);
            const int b = (int)(r / P), q = (int)(r % P), oy = q / g->OW, ox = q % g->OW;
            at[i] = x + b * in + ((size_t)oy * g->SH * g->W + (size_t)ox * g->SW) * g->C;
        }
        for (int f0 = 0; f0 < F; f0 += nr) {
            const cv_epilogue e = {ep && ep->bias ? ep->bias + f0 : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
            u->fwd(at, g->KH, g->KW * g->C, segstride, w + f0, F, out + r0 * F + f0, F, rows, nr, true,
                   ep ? &e : NULL);
        }
    }
}

void cv_conv_gemm_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const int mr = u->mr, nr = u->nr, P = g->OH * g->OW, seg = g->KW * g->C, K = g->KH * seg;
    const int mp = K / mr, tiles = mp * (F / nr);
    const size_t in = (size_t)g->H * g->W * g->C;
    const bool par = cv_conv_fork_worth(2.0 * B * P * F * K);
    /* a few samples at a time, so their inputs and gradients stay in cache while every tile
     * passes over them */
    for (int b0 = 0; b0 < B; b0 += SAMPLE_BLOCK) {
        const int b1 = B - b0 < SAMPLE_BLOCK ? B : b0 + SAMPLE_BLOCK;
#pragma omp parallel for schedule(static) if (par)
        for (int t = 0; t < tiles; t++) {
            const int jp = t / mp, ip = t % mp, k0 = ip * mr;
            const size_t off = (size_t)(k0 / seg) * g->W * g->C + (size_t)(k0 % seg);
            for (int b = b0; b < b1; b++) /* the first row of tiles also sums the bias gradient */
                u->dw(x + b * in + off, g->OH, (long)g->SH * g->W * g->C, g->OW, (long)g->SW * g->C,
                      dy + (size_t)b * P * F + jp * nr, F, dw + (size_t)k0 * F + jp * nr, F, mr, false,
                      db && ip == 0 ? db + jp * nr : NULL);
        }
    }
}
