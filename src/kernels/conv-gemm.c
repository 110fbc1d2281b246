/* Implicit-GEMM convolution for windows that stay inside the input (no padding): the GEMM
 * micro-kernel reads each output pixel's receptive field straight from the NHWC input, where it
 * is KH runs of KW*C contiguous values, and the weights (KH*KW*C, F) in place. No im2col matrix
 * is written and nothing is packed, which on a conv layer of a small CNN is as much memory
 * traffic as the products themselves. The forward sums run in the im2col column order, so
 * results equal the im2col + GEMM path's bit for bit where that path takes K in one slice
 * (K <= 384); the weight gradient adds one sample at a time, in sample order, per C tile,
 * whatever the thread count. */
#include <stdlib.h>
#include <string.h>

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

/* The weight gradient's tiles: for each window row, its KW*C offsets in runs of mr (the last
 * run of a row shorter when mr does not divide KW*C: its tile reads up to mr - 1 values past the
 * row, which x must hold, and stores only its own rows) times nr filters. */
void cv_conv_gemm_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const int mr = u->mr, nr = u->nr, P = g->OH * g->OW, seg = g->KW * g->C, K = g->KH * seg;
    const int runs = (seg + mr - 1) / mr, mp = g->KH * runs, tiles = mp * (F / nr);
    const size_t in = (size_t)g->H * g->W * g->C;
    const bool par = cv_conv_fork_worth(2.0 * B * P * F * K);
    /* a few samples at a time, so their inputs and gradients stay in cache while every tile
     * passes over them */
    for (int b0 = 0; b0 < B; b0 += SAMPLE_BLOCK) {
        const int b1 = B - b0 < SAMPLE_BLOCK ? B : b0 + SAMPLE_BLOCK;
#pragma omp parallel for schedule(static) if (par)
        for (int t = 0; t < tiles; t++) {
            const int jp = t / mp, ip = t % mp, kh = ip / runs, j0 = (ip % runs) * mr;
            const int rows = seg - j0 < mr ? seg - j0 : mr;
            const size_t off = (size_t)kh * g->W * g->C + (size_t)j0;
            float *c = dw + ((size_t)kh * seg + j0) * F + jp * nr;
            for (int b = b0; b < b1; b++) /* the first row of tiles also sums the bias gradient */
                u->dw(x + b * in + off, g->OH, (long)g->SH * g->W * g->C, g->OW, (long)g->SW * g->C,
                      dy + (size_t)b * P * F + jp * nr, F, c, F, rows, false, db && ip == 0 ? db + jp * nr : NULL);
        }
    }
}

/* ---- through a padded copy: any padding, stride and window row ---- */

bool cv_conv_gemm_padded_fits(const cv_window *g, int F)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const char *env = getenv("CONVOY_IMPLICIT");
    return !(env && strcmp(env, "0") == 0) && F % u->nr == 0 && u->mr <= MR_MAX && g->C > 0;
}

/* xp (B, Hp, Wp, C) = the part of x (B, H, W, C) the windows read, with its padding: zeros, or
 * the nearest edge pixel (the values im2col puts in the column matrix), then MR_MAX zeros for
 * the weight gradient's short tiles to read past the end. gp: the window on xp, unpadded. */
static void pad_copy(float *xp, const float *x, int B, const cv_window *g, bool nearest, cv_window *gp)
{
    const int Hp = (g->OH - 1) * g->SH + g->KH, Wp = (g->OW - 1) * g->SW + g->KW, C = g->C;
    *gp = (cv_window){Hp, Wp, C, g->KH, g->KW, g->SH, g->SW, 0, 0, g->OH, g->OW};
    const long rows = (long)B * Hp;
    const size_t rowlen = (size_t)Wp * C, in = (size_t)g->H * g->W * C;
#pragma omp parallel for schedule(static) if (cv_conv_fork_worth(64.0 * rows * rowlen))
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / Hp), y = (int)(r % Hp) - g->pad_top;
        float *dst = xp + (size_t)r * rowlen;
        if (!nearest && (y < 0 || y >= g->H)) {
            memset(dst, 0, sizeof(float) * rowlen);
            continue;
        }
        const float *src = x + b * in + (size_t)(y < 0 ? 0 : y >= g->H ? g->H - 1 : y) * g->W * C;
        for (int px = 0; px < Wp; px++) {
            const int sx = px - g->pad_left;
            if (!nearest && (sx < 0 || sx >= g->W)) memset(dst + (size_t)px * C, 0, sizeof(float) * C);
            else memcpy(dst + (size_t)px * C, src + (size_t)(sx < 0 ? 0 : sx >= g->W ? g->W - 1 : sx) * C,
                        sizeof(float) * C);
        }
    }
    memset(xp + (size_t)rows * rowlen, 0, sizeof(float) * MR_MAX);
}

static float *padded(cv_scratch_slot slot, const float *x, int B, const cv_window *g, bool nearest, cv_window *gp)
{
    const size_t n = (size_t)B * ((g->OH - 1) * g->SH + g->KH) * ((g->OW - 1) * g->SW + g->KW) * g->C + MR_MAX;
    float *xp = cv_scratch(slot, sizeof(float) * n);
    if (xp) pad_copy(xp, x, B, g, nearest, gp);
    return xp;
}

int cv_conv_gemm_padded(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                        const cv_window *g, bool nearest)
{
    cv_window gp;
    const float *xp = padded(CV_SCRATCH_PADDED, x, B, g, nearest, &gp);
    if (!xp) return -1;
    cv_conv_gemm(out, xp, w, ep, B, F, &gp);
    return 0;
}

int cv_conv_gemm_padded_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g,
                           bool nearest)
{
    cv_window gp;
    const float *xp = padded(CV_SCRATCH_PADDED, x, B, g, nearest, &gp);
    if (!xp) return -1;
    cv_conv_gemm_dw(dw, db, xp, dy, B, F, &gp);
    return 0;
}

bool cv_conv_gemm_dx_fits(const cv_window *g)
{
    const int pb = (g->OH - 1) + g->KH - g->H - g->pad_top, pr = (g->OW - 1) + g->KW - g->W - g->pad_left;
    return g->SH == 1 && g->SW == 1 && g->pad_top < g->KH && g->pad_left < g->KW && pb < g->KH && pr < g->KW &&
           cv_conv_gemm_padded_fits(g, g->C);
}

int cv_conv_gemm_dx(float *dx, const float *dy, const float *w, int B, int F, const cv_window *g)
{
    const int KH = g->KH, KW = g->KW, C = g->C;
    /* dy seen as an input (OH, OW, F) padded to (H + KH - 1, W + KW - 1): the stride-1
     * convolution with the kernel turned 180 degrees and its channel axes swapped */
    const cv_window gd = {g->OH, g->OW, F, KH, KW, 1, 1, KH - 1 - g->pad_top, KW - 1 - g->pad_left, g->H, g->W};
    cv_window gp;
    const float *dyp = padded(CV_SCRATCH_PADDED, dy, B, &gd, false, &gp);
    float *wt = cv_scratch(CV_SCRATCH_PADDED_W, sizeof(float) * (size_t)KH * KW * C * F);
    if (!dyp || !wt) return -1;
    for (int kh = 0; kh < KH; kh++)
        for (int kw = 0; kw < KW; kw++)
            for (int f = 0; f < F; f++)
                for (int c = 0; c < C; c++)
                    wt[(((size_t)kh * KW + kw) * F + f) * C + c] =
                        w[(((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C + c) * F + f];
    cv_conv_gemm(dx, dyp, wt, NULL, B, C, &gp);
    return 0;
}
