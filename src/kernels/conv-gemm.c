/* Implicit-GEMM convolution for windows that stay inside the input (no padding): the GEMM
 * micro-kernel reads each output pixel's receptive field straight from the NHWC input, where it
 * is KH runs of KW*C contiguous values, and the weights (KH*KW*C, F) in place. No im2col matrix
 * is written and nothing is packed, which on a conv layer of a small CNN is as much memory
 * traffic as the products themselves. The forward sums run in the im2col column order, so
 * results equal the im2col + GEMM path's bit for bit where that path takes K in one slice
 * (K <= 384); the weight gradient adds one sample at a time, in sample order, per C tile,
 * whatever the thread count. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv-ukernels.h"

enum { MR_MAX = 16, SAMPLE_BLOCK = 4, DX_STRIDE_MAX = 8 };

/* The micro-kernels of each driver are cv_conv_ukernels_for(F): a filter count that AVX-512's
 * 32-wide tile does not divide but AVX2's 16-wide one does runs on that. */

bool cv_conv_gemm_fits(const cv_window *g, int F)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
    return g->pad_top == 0 && g->pad_left == 0 && (g->OH - 1) * g->SH + g->KH <= g->H &&
           (g->OW - 1) * g->SW + g->KW <= g->W && F % u->nr == 0 && g->KW * g->C >= u->mr &&
           (g->KW * g->C) % (u->mr / 3) == 0 && u->mr <= MR_MAX;
}

/* cv_conv_gemm on the micro-kernels u (F a multiple of their width) */
static void conv_gemm_on(const cv_conv_ukernels *u, float *out, const float *x, const float *w, const cv_epilogue *ep,
                         int B, int F, const cv_window *g)
{
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

void cv_conv_gemm(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                  const cv_window *g)
{
    conv_gemm_on(cv_conv_ukernels_for(F), out, x, w, ep, B, F, g);
}

/* The weight gradient's tiles: for each window row, its KW*C offsets in runs of mr (the last
 * run of a row shorter when mr does not divide KW*C: its tile runs a third or two thirds of mr
 * rows, reading up to mr / 3 - 1 values past the row, which x must hold (none where a third of
 * mr divides KW*C, as cv_conv_gemm_fits asks), and stores only its own rows) times nr filters. */
void cv_conv_gemm_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
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

/* CONVOY_IMPLICIT=0 keeps im2col */
static bool implicit_allowed(void)
{
    const char *env = getenv("CONVOY_IMPLICIT");
    return !(env && strcmp(env, "0") == 0);
}

bool cv_conv_gemm_padded_fits(const cv_window *g, int F)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
    return implicit_allowed() && F % u->nr == 0 && u->mr <= MR_MAX && g->C > 0;
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
        /* [lo, hi): the row's pixels inside the input, one copy; the padding either side */
        const int lo = g->pad_left < 0 ? 0 : g->pad_left > Wp ? Wp : g->pad_left;
        const int hi = g->W + g->pad_left < lo ? lo : g->W + g->pad_left > Wp ? Wp : g->W + g->pad_left;
        if (hi > lo) memcpy(dst + (size_t)lo * C, src + (size_t)(lo - g->pad_left) * C, sizeof(float) * (hi - lo) * C);
        for (int px = 0; px < Wp; px++) {
            if (px >= lo && px < hi) continue;
            if (!nearest) memset(dst + (size_t)px * C, 0, sizeof(float) * C);
            else memcpy(dst + (size_t)px * C, src + (size_t)(px < lo ? 0 : g->W - 1) * C, sizeof(float) * C);
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

/* Samples per block of the passes over a padded copy: a multiple of SAMPLE_BLOCK (so that the
 * weight gradient adds the samples in the order it always does) whose copy takes about 256 KiB,
 * still in the L2 cache when the products read it, rather than a whole batch's going out to
 * memory between the copy and the products (ResNet-20's 16 -> 32 stride-2 conv, batch 64, one
 * thread, AMD EPYC: forward 58 -> 89 GFLOP/s with 8 samples a block). It depends on the shape
 * alone. */
static int pad_block(const cv_window *g)
{
    const size_t per = sizeof(float) * (size_t)((g->OH - 1) * g->SH + g->KH) * ((g->OW - 1) * g->SW + g->KW) * g->C;
    const size_t k = ((size_t)256 << 10) / (per * SAMPLE_BLOCK);
    return SAMPLE_BLOCK * (int)(k < 1 ? 1 : k > 16 ? 16 : k);
}

int cv_conv_gemm_padded(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                        const cv_window *g, bool nearest)
{
    const int nb = pad_block(g);
    const size_t in = (size_t)g->H * g->W * g->C, on = (size_t)g->OH * g->OW * F;
    for (int b0 = 0; b0 < B; b0 += nb) { /* each output's sum is its own: blocks change no bit */
        const int n = B - b0 < nb ? B - b0 : nb;
        cv_window gp;
        const float *xp = padded(CV_SCRATCH_PADDED, x + b0 * in, n, g, nearest, &gp);
        if (!xp) return -1;
        cv_conv_gemm(out + b0 * on, xp, w, ep, n, F, &gp);
    }
    return 0;
}

int cv_conv_gemm_padded_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g,
                           bool nearest)
{
    const int nb = pad_block(g);
    const size_t in = (size_t)g->H * g->W * g->C, on = (size_t)g->OH * g->OW * F;
    for (int b0 = 0; b0 < B; b0 += nb) { /* the samples in order, SAMPLE_BLOCK at a time, as in one call */
        const int n = B - b0 < nb ? B - b0 : nb;
        cv_window gp;
        const float *xp = padded(CV_SCRATCH_PADDED, x + b0 * in, n, g, nearest, &gp);
        if (!xp) return -1;
        cv_conv_gemm_dw(dw, db, xp, dy + b0 * on, n, F, &gp);
    }
    return 0;
}

/* ---- the input gradient: one implicit GEMM over dy per residue class of the stride ----
 * Along one axis (n inputs, k taps, stride s, padding p before), the inputs i = q s + r - p of
 * residue r < s are reached by the taps r + s m alone, from outputs q - m: a stride-1 window of
 * ceil((k - r) / s) taps, turned, over dy padded by taps - 1 - q0 before (q0 the class's first
 * q; negative: dy's first rows skipped), for the class's nq inputs from i0; a class no tap
 * reaches (k < s) is zero. Stride 1 is one class, dx itself; stride 2 is four (a 3x3 window's
 * 2x2, 2x1, 1x2 and 1x1 taps), each into a scratch tensor, then to its pixels of dx. One padded
 * copy of dy serves every class (each reads it from its own offset), and the kernel is turned
 * once, class by class. No column matrix, no col2im, no product with a zero of a dilated dy;
 * each dx value is one tile's sum over (tap row, tap column, filter) in that order. */
typedef struct {
    int taps, pad, nq, i0;
} dx_axis;

static dx_axis dx_axis_of(int n, int k, int s, int p, int r)
{
    const int taps = (k - r + s - 1) / s, q0 = (p - r + s - 1) / s, i0 = q0 * s + r - p;
    return (dx_axis){taps, taps - 1 - q0, i0 < n ? (n - 1 - i0) / s + 1 : 0, i0};
}

/* One axis's classes in one padded copy: the padding before (the largest class's) and the
 * length (the longest reach) */
static void dx_axis_span(int n, int k, int s, int p, int *pad, int *len)
{
    *pad = INT_MIN;
    for (int r = 0; r < s; r++) {
        const dx_axis a = dx_axis_of(n, k, s, p, r);
        if (a.taps > 0 && a.nq > 0 && a.pad > *pad) *pad = a.pad;
    }
    if (*pad == INT_MIN) *pad = 0; /* no class reads dy: dx is all zeros */
    *len = 1;
    for (int r = 0; r < s; r++) {
        const dx_axis a = dx_axis_of(n, k, s, p, r);
        if (a.taps > 0 && a.nq > 0 && *pad - a.pad + a.nq + a.taps - 1 > *len) *len = *pad - a.pad + a.nq + a.taps - 1;
    }
}

bool cv_conv_gemm_dx_fits(const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(g->C);
    return implicit_allowed() && g->C > 0 && g->C % u->nr == 0 && u->mr <= MR_MAX && g->SH <= DX_STRIDE_MAX &&
           g->SW <= DX_STRIDE_MAX;
}

/* dst (F, C) = src (C, F) transposed (once per call: next to a batch's products, little) */
/* dx of n samples (dy's padded copy for them made here; their class outputs at t): the class
 * products, each class's pixels then into their places */
static int dx_block(float *dx, const float *dy, float *const *taps, float *t0, int B, int F, const cv_window *g,
                    const cv_window *gd, const cv_conv_ukernels *u)
{
    const int C = g->C, SH = g->SH, SW = g->SW, pt = gd->pad_top, pl = gd->pad_left, Hp = gd->OH, Wp = gd->OW;
    const bool whole = SH == 1 && SW == 1;
    cv_window gp;
    const float *dyp = padded(CV_SCRATCH_PADDED, dy, B, gd, false, &gp);
    if (!dyp) return -1;
    for (int ry = 0; ry < SH; ry++)
        for (int rx = 0; rx < SW; rx++) {
            const dx_axis ay = dx_axis_of(g->H, g->KH, SH, g->pad_top, ry);
            const dx_axis ax = dx_axis_of(g->W, g->KW, SW, g->pad_left, rx);
            if (ay.nq == 0 || ax.nq == 0) continue;
            const long px = (long)B * ay.nq * ax.nq;
            float *t = whole ? dx : t0;
            if (ay.taps == 0 || ax.taps == 0) {
                memset(t, 0, sizeof(float) * (size_t)px * C);
            } else { /* the class's window on the padded copy, from its own offset */
                const cv_window gc = {Hp, Wp, F, ay.taps, ax.taps, 1, 1, 0, 0, ay.nq, ax.nq};
                conv_gemm_on(u, t, dyp + ((size_t)(pt - ay.pad) * Wp + (size_t)(pl - ax.pad)) * F,
                             taps[ry * DX_STRIDE_MAX + rx], NULL, B, C, &gc);
            }
            if (whole) continue;
            const long rows = (long)B * ay.nq;
#pragma omp parallel for schedule(static) if (cv_conv_fork_worth(64.0 * px * C))
            for (long r = 0; r < rows; r++) { /* the class's pixels into their places in dx, row by row */
                const int b = (int)(r / ay.nq), jy = (int)(r % ay.nq);
                float *restrict d = dx + (((size_t)b * g->H + ay.i0 + (size_t)SH * jy) * g->W + ax.i0) * C;
                const float *restrict s = t + (size_t)r * ax.nq * C;
                for (int jx = 0; jx < ax.nq; jx++)
                    for (int c = 0; c < C; c++) d[(size_t)SW * jx * C + c] = s[(size_t)jx * C + c];
            }
        }
    return 0;
}

int cv_conv_gemm_dx(float *dx, const float *dy, const float *w, int B, int F, const cv_window *g)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(g->C);
    const int C = g->C, SH = g->SH, SW = g->SW;
    const bool whole = SH == 1 && SW == 1; /* one class: dx itself */
    int pt, pl, Hp, Wp;
    dx_axis_span(g->H, g->KH, SH, g->pad_top, &pt, &Hp);
    dx_axis_span(g->W, g->KW, SW, g->pad_left, &pl, &Wp);
    /* the largest class's pixels, after the turned kernel (KH * KW taps of (F, C)) */
    const size_t nw = (size_t)g->KH * g->KW * F * C;
    const cv_window gd = {g->OH, g->OW, F, 1, 1, 1, 1, pt, pl, Hp, Wp};
    const int nb = pad_block(&gd); /* samples per block: dy's padded copy still in cache for its products */
    const int bb = B < nb ? B : nb;
    const size_t nt = whole ? 0 : (size_t)bb * ((g->H + SH - 1) / SH) * ((g->W + SW - 1) / SW) * C;
    float *wt = cv_scratch(CV_SCRATCH_PADDED_W, sizeof(float) * (nw + nt));
    if (!wt) return -1;
    /* every class's taps turned 180 degrees, channel axes swapped: (taps_y, taps_x, F, C) each */
    float *taps[DX_STRIDE_MAX * DX_STRIDE_MAX], *next = wt;
    for (int ry = 0; ry < SH; ry++)
        for (int rx = 0; rx < SW; rx++) {
            const dx_axis ay = dx_axis_of(g->H, g->KH, SH, g->pad_top, ry);
            const dx_axis ax = dx_axis_of(g->W, g->KW, SW, g->pad_left, rx);
            taps[ry * DX_STRIDE_MAX + rx] = next;
            for (int my = 0; my < ay.taps; my++)
                for (int mx = 0; mx < ax.taps; mx++, next += (size_t)F * C) {
                    const int kh = ry + SH * (ay.taps - 1 - my), kw = rx + SW * (ax.taps - 1 - mx);
                    cv_conv_tap_transpose(next, w + ((size_t)kh * g->KW + kw) * C * F, C, F);
                }
        }
    const size_t dyn = (size_t)g->OH * g->OW * F, dxn = (size_t)g->H * g->W * C;
    for (int b0 = 0; b0 < B; b0 += nb) /* each dx value is one tile's sum: blocks change no bit */
        if (dx_block(dx + b0 * dxn, dy + b0 * dyn, taps, wt + nw, B - b0 < nb ? B - b0 : nb, F, g, &gd, u)) return -1;
    return 0;
}
