/* NHWC window kernels: im2col/col2im for conv2d and max/avg/min pooling. Forward loops are
 * parallel over output pixels; backward loops are parallel over samples, whose input
 * gradients are disjoint, so no atomics are needed and the summation order is fixed. */
#include "convoy/kernels.h"
#include "kernels/isa.h"

#include <stdlib.h>
#include <string.h>


/* Input coordinate for output o and window offset k; -1 when it falls in zero padding. */
static inline int src_coord(int o, int k, int stride, int pad, int n, bool nearest)
{
    int i = o * stride - pad + k;
    if (i >= 0 && i < n) return i;
    if (!nearest) return -1;
    return i < 0 ? 0 : n - 1;
}

/* n floats, in 64-byte blocks then one by one (inlined: the runs are short, a library call
 * would cost more than the copy) */
static inline __attribute__((always_inline)) void copy_run(float *restrict d, const float *restrict s, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) memcpy(d + i, s + i, 16 * sizeof(float));
    for (; i < n; i++) d[i] = s[i];
}

/* One row of the column matrix: output pixel (oh, ow)'s receptive field in (kh, kw, c) order.
 * A window row inside the image is KW C contiguous floats of x, copied in one go; at the border
 * each (kh, kw) cell is placed on its own. */
static inline __attribute__((always_inline)) void
im2col_pixel(float *restrict dst, const float *restrict xb, const cv_window *g, bool nearest, int oh, int ow)
{
    const int C = g->C, run = g->KW * C;
    const int iw0 = ow * g->stride - g->pad_left;
    const bool cols_in = iw0 >= 0 && iw0 + g->KW <= g->W;
    for (int kh = 0; kh < g->KH; kh++) {
        const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
        if (ih >= 0 && cols_in) {
            copy_run(dst, xb + ((size_t)ih * g->W + iw0) * C, run);
            dst += run;
            continue;
        }
        for (int kw = 0; kw < g->KW; kw++, dst += C) {
            const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
            const float *src = ih < 0 || iw < 0 ? NULL : xb + ((size_t)ih * g->W + iw) * C;
            if (src)
                copy_run(dst, src, C);
            else
                for (int c = 0; c < C; c++) dst[c] = 0.0f;
        }
    }
}

CV_ISA_CLONES(im2col_px, (float *dst, const float *xb, const cv_window *g, bool nearest, int oh, int ow),
              im2col_pixel, (dst, xb, g, nearest, oh, ow))

void cv_im2col(float *col, const float *x, int B, const cv_window *g, bool nearest)
{
    static im2col_px_fn px;
    if (!px) px = im2col_px_pick();
    const int C = g->C, K = g->KH * g->KW * C;
    const long rows = (long)B * g->OH * g->OW;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / (g->OH * g->OW)), p = (int)(r % (g->OH * g->OW));
        px(col + (size_t)r * K, x + (size_t)b * g->H * g->W * C, g, nearest, p / g->OW, p % g->OW);
    }
}

typedef float v16 __attribute__((vector_size(64)));

/* *t > 0 ? *t : leak *t, lane by lane, as a bit select (through a pointer: a 64-byte vector
 * return would have an ABI that depends on the instruction set) */
static inline __attribute__((always_inline)) void relu16(v16 *t, float leak)
{
    const __typeof__(*t > 0) pos = *t > 0;
    const v16 neg = *t * leak;
    *t = (v16)((pos & (__typeof__(pos))*t) | (~pos & (__typeof__(pos))neg));
}

/* PX neighbouring output pixels (ow0 .. ow0+PX-1 of row oh, all with their whole window inside
 * the image's width) at once: each weight vector loaded once serves PX pixels. Within a window
 * row the (kw, c) taps are one contiguous run of KW C values, in x and in w alike. */
static inline __attribute__((always_inline)) void
direct_block_vec(float *restrict o, const float *restrict xb, const float *restrict w, const float *restrict bias,
                 bool relu, float leak, int F, const cv_window *g, int oh, int ow0, const int PX, const int NV)
{
    v16 acc[8][4];
    for (int p = 0; p < PX; p++)
        for (int v = 0; v < NV; v++) {
            acc[p][v] = (v16){0};
            if (bias) memcpy(&acc[p][v], bias + 16 * v, sizeof acc[p][v]);
        }
    const int C = g->C, s = g->stride, run = g->KW * C;
    for (int kh = 0; kh < g->KH; kh++) {
        const int ih = oh * s - g->pad_top + kh;
        if (ih < 0 || ih >= g->H) continue;
        const float *px = xb + ((size_t)ih * g->W + ow0 * s - g->pad_left) * C;
        const float *wk = w + (size_t)kh * run * F;
        for (int j = 0; j < run; j++) {
            v16 wv[4];
            for (int v = 0; v < NV; v++) memcpy(&wv[v], wk + (size_t)j * F + 16 * v, sizeof wv[v]);
            for (int p = 0; p < PX; p++) {
                const float a = px[(size_t)p * s * C + j];
                for (int v = 0; v < NV; v++) acc[p][v] += wv[v] * a;
            }
        }
    }
    for (int p = 0; p < PX; p++)
        for (int v = 0; v < NV; v++) {
            if (relu) relu16(&acc[p][v], leak);
            memcpy(o + (size_t)p * F + 16 * v, &acc[p][v], sizeof acc[p][v]);
        }
}

/* One output pixel of the direct convolution: o[0..F) = bias + sum over the window. The
 * filter loop is contiguous and vectorises; the sum runs in (kh, kw, c) order. */
static inline __attribute__((always_inline)) void
direct_pixel(float *restrict o, const float *restrict xb, const float *restrict w, const cv_epilogue *ep, int F,
             const cv_window *g, bool nearest, int oh, int ow)
{
    const float *restrict bias = ep ? ep->bias : NULL;
    const bool relu = ep && ep->relu;
    const float leak = ep ? ep->leak : 0.0f;
    if (bias)
        for (int f = 0; f < F; f++) o[f] = bias[f];
    else
        for (int f = 0; f < F; f++) o[f] = 0.0f;
    const int C = g->C;
    for (int kh = 0; kh < g->KH; kh++) {
        const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
        if (ih < 0) continue;
        for (int kw = 0; kw < g->KW; kw++) {
            const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
            if (iw < 0) continue;
            const float *px = xb + ((size_t)ih * g->W + iw) * C;
            const float *wk = w + (size_t)(kh * g->KW + kw) * C * F;
            for (int c = 0; c < C; c++) {
                const float a = px[c];
                const float *wc = wk + (size_t)c * F;
                for (int f = 0; f < F; f++) o[f] += a * wc[f];
            }
        }
    }
    if (relu)
        for (int f = 0; f < F; f++) o[f] = o[f] > 0.0f ? o[f] : leak * o[f];
}

#define DIRECT_BLOCK(PX)                                                                           \
    switch (nv) {                                                                                  \
    case 1: direct_block_vec(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 1); break;              \
    case 2: direct_block_vec(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 2); break;              \
    case 3: direct_block_vec(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 3); break;              \
    default: direct_block_vec(q, xb, w, bias, relu, leak, F, g, oh, ow, PX, 4); break;             \
    }

/* Output row oh of one sample: the pixels whose window lies inside the image's width go through
 * direct_block_vec (zero padding, F = 16 NV) in blocks of 8 (up to 32 filters), 4, 2 and 1;
 * the others pixel by pixel. o is the row's first output. */
static inline __attribute__((always_inline)) void
direct_row(float *restrict o, const float *restrict xb, const float *restrict w, const cv_epilogue *ep, int F,
           const cv_window *g, bool nearest, int oh)
{
    const int nv = F % 16 == 0 && F <= 64 ? F / 16 : 0;
    const float *bias = ep ? ep->bias : NULL;
    const bool relu = ep && ep->relu;
    const float leak = ep ? ep->leak : 0.0f;
    /* [lo, hi): the output columns whose window is inside the width */
    int lo = 0, hi = g->OW;
    while (lo < hi && lo * g->stride - g->pad_left < 0) lo++;
    while (hi > lo && (hi - 1) * g->stride - g->pad_left + g->KW > g->W) hi--;
    if (nearest || !nv) lo = hi = g->OW;
    for (int ow = 0; ow < g->OW;) {
        float *q = o + (size_t)ow * F;
        const int left = ow >= lo && ow < hi ? hi - ow : 0;
        if (left >= 8 && nv <= 2) {
            DIRECT_BLOCK(8)
            ow += 8;
        } else if (left >= 4) {
            DIRECT_BLOCK(4)
            ow += 4;
        } else if (left >= 2) {
            DIRECT_BLOCK(2)
            ow += 2;
        } else if (left == 1) {
            DIRECT_BLOCK(1)
            ow++;
        } else {
            direct_pixel(q, xb, w, ep, F, g, nearest, oh, ow);
            ow++;
        }
    }
}

CV_ISA_CLONES(conv_row, (float *o, const float *xb, const float *w, const cv_epilogue *ep, int F, const cv_window *g,
                         bool nearest, int oh),
              direct_row, (o, xb, w, ep, F, g, nearest, oh))

void cv_conv_direct(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                    const cv_window *g, bool nearest)
{
    static conv_row_fn row;
    if (!row) row = conv_row_pick(); /* the GEMM's instruction set */
    const long rows = (long)B * g->OH;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / g->OH), oh = (int)(r % g->OH);
        row(out + (size_t)r * g->OW * F, x + (size_t)b * g->H * g->W * g->C, w, ep, F, g, nearest, oh);
    }
}

/* Zero padding and F = 16 NV: one tap (kh, kw, c) at a time, its F sums in registers, reading
 * x in place along each output row's valid range (no patch gathering). */
static inline __attribute__((always_inline)) void
dw_taps_vec(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
            const int NV)
{
    const int C = g->C, s = g->stride;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            int lo = 0, hi = g->OW; /* output columns whose input column is inside the image */
            while (lo < hi && lo * s - g->pad_left + kw < 0) lo++;
            while (hi > lo && (hi - 1) * s - g->pad_left + kw >= g->W) hi--;
            for (int c = 0; c < C; c++) {
                v16 sum[4];
                for (int v = 0; v < NV; v++) sum[v] = (v16){0};
                for (int oh = 0; oh < g->OH; oh++) {
                    const int ih = oh * s - g->pad_top + kh;
                    if (ih < 0 || ih >= g->H) continue;
                    const float *restrict xr = xb + ((size_t)ih * g->W - g->pad_left + kw) * C + c;
                    const float *restrict d = dyb + (size_t)oh * g->OW * F;
                    for (int ow = lo; ow < hi; ow++) {
                        const float a = xr[(size_t)ow * s * C];
                        for (int v = 0; v < NV; v++) {
                            v16 dv;
                            memcpy(&dv, d + (size_t)ow * F + 16 * v, sizeof dv);
                            sum[v] += dv * a;
                        }
                    }
                }
                float *q = acc + ((size_t)(kh * g->KW + kw) * C + c) * F;
                for (int v = 0; v < NV; v++) {
                    v16 t;
                    memcpy(&t, q + 16 * v, sizeof t);
                    t += sum[v];
                    memcpy(q + 16 * v, &t, sizeof t);
                }
            }
        }
}

/* A receptive field of KK values (at most 12) and F = 16 NV filters, all KK x F sums in
 * registers: each output pixel's dy is loaded once and serves every tap. Pixels whose window
 * crosses the border gather their patch through src_coord (zero or nearest padding). */
static inline __attribute__((always_inline)) void
dw_allt_vec(float *restrict acc, const float *restrict xb, const float *restrict dyb, const cv_window *g,
            bool nearest, bool bias, const int KK, const int NV)
{
    const int C = g->C, s = g->stride, F = 16 * NV;
    int off[12];
    for (int kh = 0, k = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            for (int c = 0; c < C; c++) off[k++] = (kh * g->W + kw) * C + c;
    v16 sum[12][2], bsum[2];
    for (int v = 0; v < NV; v++) bsum[v] = (v16){0};
    for (int k = 0; k < KK; k++)
        for (int v = 0; v < NV; v++) sum[k][v] = (v16){0};
    for (int oh = 0; oh < g->OH; oh++) {
        const int ih0 = oh * s - g->pad_top;
        const bool rows_in = ih0 >= 0 && ih0 + g->KH <= g->H;
        for (int ow = 0; ow < g->OW; ow++) {
            const int iw0 = ow * s - g->pad_left;
            float patch[12] = {0};
            if (rows_in && iw0 >= 0 && iw0 + g->KW <= g->W) {
                const float *px = xb + ((size_t)ih0 * g->W + iw0) * C;
                for (int k = 0; k < KK; k++) patch[k] = px[off[k]];
            } else {
                for (int kh = 0, k = 0; kh < g->KH; kh++) {
                    const int ih = src_coord(oh, kh, s, g->pad_top, g->H, nearest);
                    for (int kw = 0; kw < g->KW; kw++) {
                        const int iw = src_coord(ow, kw, s, g->pad_left, g->W, nearest);
                        for (int c = 0; c < C; c++, k++)
                            patch[k] = ih < 0 || iw < 0 ? 0.0f : xb[((size_t)ih * g->W + iw) * C + c];
                    }
                }
            }
            const float *d = dyb + ((size_t)oh * g->OW + ow) * F;
            v16 dv[2];
            for (int v = 0; v < NV; v++) memcpy(&dv[v], d + 16 * v, sizeof dv[v]);
            for (int k = 0; k < KK; k++)
                for (int v = 0; v < NV; v++) sum[k][v] += dv[v] * patch[k];
            if (bias)
                for (int v = 0; v < NV; v++) bsum[v] += dv[v];
        }
    }
    if (bias) /* the bias gradient's row follows the KK rows of the kernel's */
        for (int v = 0; v < NV; v++) {
            v16 t;
            memcpy(&t, acc + (size_t)KK * F + 16 * v, sizeof t);
            t += bsum[v];
            memcpy(acc + (size_t)KK * F + 16 * v, &t, sizeof t);
        }
    for (int k = 0; k < KK; k++)
        for (int v = 0; v < NV; v++) {
            v16 t;
            memcpy(&t, acc + (size_t)k * F + 16 * v, sizeof t);
            t += sum[k][v];
            memcpy(acc + (size_t)k * F + 16 * v, &t, sizeof t);
        }
}

#define DW_ALLT_K(KK)                                                                              \
    case KK:                                                                                       \
        if (nv == 1) dw_allt_vec(acc, xb, dyb, g, nearest, bias, KK, 1);                           \
        else dw_allt_vec(acc, xb, dyb, g, nearest, bias, KK, 2);                                   \
        return true;

/* dw_allt_vec for the shapes it takes; false for the others. */
static inline __attribute__((always_inline)) bool
dw_allt(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
        bool nearest, bool bias)
{
    const int nv = F == 16 ? 1 : F == 32 ? 2 : 0;
    if (!nv) return false;
    switch (g->KH * g->KW * g->C) {
        DW_ALLT_K(1) DW_ALLT_K(2) DW_ALLT_K(3) DW_ALLT_K(4) DW_ALLT_K(5) DW_ALLT_K(6)
        DW_ALLT_K(7) DW_ALLT_K(8) DW_ALLT_K(9) DW_ALLT_K(10) DW_ALLT_K(11) DW_ALLT_K(12)
    default: return false;
    }
}

/* One sample's weight gradient of a short receptive field: acc (K, F) += patch(p) dy(p)^T over
 * its output pixels, and with bias its row K (F values) += the sum of dy over them. */
static inline __attribute__((always_inline)) void
direct_dw_sample(float *restrict acc, const float *restrict xb, const float *restrict dyb, int F, const cv_window *g,
                 bool nearest, bool bias)
{
    if (dw_allt(acc, xb, dyb, F, g, nearest, bias)) return;
    const int P = g->OH * g->OW, K = g->KH * g->KW * g->C;
    if (bias)
        for (int p = 0; p < P; p++)
            for (int f = 0; f < F; f++) acc[(size_t)K * F + f] += dyb[(size_t)p * F + f];
    if (!nearest) {
        switch (F % 16 == 0 ? F / 16 : 0) {
        case 1: dw_taps_vec(acc, xb, dyb, F, g, 1); return;
        case 2: dw_taps_vec(acc, xb, dyb, F, g, 2); return;
        case 3: dw_taps_vec(acc, xb, dyb, F, g, 3); return;
        case 4: dw_taps_vec(acc, xb, dyb, F, g, 4); return;
        default: break;
        }
    }
    /* nearest padding, or a filter count off the vector width: each pixel's patch, plain loops */
    const int C = g->C;
    float patch[CV_CONV_DIRECT_MAX_K];
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            int k = 0;
            for (int kh = 0; kh < g->KH; kh++) {
                const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
                for (int kw = 0; kw < g->KW; kw++) {
                    const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
                    const float *px = ih < 0 || iw < 0 ? NULL : xb + ((size_t)ih * g->W + iw) * C;
                    for (int c = 0; c < C; c++) patch[k++] = px ? px[c] : 0.0f;
                }
            }
            const float *restrict d = dyb + ((size_t)oh * g->OW + ow) * F;
            for (k = 0; k < K; k++) {
                const float a = patch[k];
                float *restrict ak = acc + (size_t)k * F;
                for (int f = 0; f < F; f++) ak[f] += a * d[f];
            }
        }
}

CV_ISA_CLONES(dw_sample, (float *acc, const float *xb, const float *dyb, int F, const cv_window *g, bool nearest,
                          bool bias),
              direct_dw_sample, (acc, xb, dyb, F, g, nearest, bias))

int cv_conv_direct_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g,
                      bool nearest)
{
    static dw_sample_fn sample;
    if (!sample) sample = dw_sample_pick();
    const size_t KW = (size_t)g->KH * g->KW * g->C * F, KF = KW + (db ? (size_t)F : 0);
    float *part = cv_scratch(CV_SCRATCH_DIRECT_DW, sizeof(float) * KF * (size_t)B);
    if (!part) return -1;
    const size_t xs = (size_t)g->H * g->W * g->C, ys = (size_t)g->OH * g->OW * F;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *acc = part + (size_t)b * KF;
        memset(acc, 0, sizeof(float) * KF);
        sample(acc, x + (size_t)b * xs, dy + (size_t)b * ys, F, g, nearest, db != NULL);
    }
    /* per-sample sums added in sample order: the result does not depend on the thread count */
    for (int b = 0; b < B; b++) {
        const float *acc = part + (size_t)b * KF;
        for (size_t i = 0; i < KW; i++) dw[i] += acc[i];
        if (db)
            for (int f = 0; f < F; f++) db[f] += acc[KW + (size_t)f];
    }
    return 0;
}

/* One sample of col2im: dxb (H,W,C) += its column rows scattered back (cleared first when
 * overwrite, so the scatter finds it in cache). */
static inline __attribute__((always_inline)) void
col2im_sample(float *restrict dxb, const float *restrict src, const cv_window *g, bool nearest, bool overwrite)
{
    const int C = g->C;
    if (overwrite)
        for (size_t i = 0; i < (size_t)g->H * g->W * C; i++) dxb[i] = 0.0f;
    const int run = g->KW * C;
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            const int iw0 = ow * g->stride - g->pad_left;
            const bool cols_in = iw0 >= 0 && iw0 + g->KW <= g->W;
            for (int kh = 0; kh < g->KH; kh++) {
                const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
                if (ih >= 0 && cols_in) { /* the window row inside the image: one contiguous run */
                    float *restrict d = dxb + ((size_t)ih * g->W + iw0) * C;
                    for (int i = 0; i < run; i++) d[i] += src[i];
                    src += run;
                    continue;
                }
                for (int kw = 0; kw < g->KW; kw++, src += C) {
                    const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
                    if (ih < 0 || iw < 0) continue;
                    float *restrict d = dxb + ((size_t)ih * g->W + iw) * C;
                    for (int c = 0; c < C; c++) d[c] += src[c];
                }
            }
        }
}

CV_ISA_CLONES(col2im_s, (float *dxb, const float *src, const cv_window *g, bool nearest, bool overwrite),
              col2im_sample, (dxb, src, g, nearest, overwrite))

void cv_col2im(float *dx, const float *dcol, int B, const cv_window *g, bool nearest, bool overwrite)
{
    static col2im_s_fn one;
    if (!one) one = col2im_s_pick();
    const int C = g->C, K = g->KH * g->KW * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        one(dx + (size_t)b * g->H * g->W * C, dcol + (size_t)b * g->OH * g->OW * K, g, nearest, overwrite);
}

typedef int32_t v16i __attribute__((vector_size(64)));

/* Max/min pooling of one output pixel, 16 channels at a time (C a multiple of 16): the running
 * winner and its offset stay in registers over the window's cells; ties keep the first cell. */
static inline __attribute__((always_inline)) void
pool_pixel_vec(float *restrict o, int32_t *restrict a, const float *restrict xb, const cv_window *g, bool max,
               int oh, int ow)
{
    const int C = g->C;
    const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int c = 0; c < C; c += 16) {
        const int first = (oh * g->stride * g->W + ow * g->stride) * C + c;
        v16 best;
        memcpy(&best, xb + first, sizeof best);
        v16i arg = iota + first;
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = kh == 0; kw < g->KW; kw++) {
                const int base = first + (kh * g->W + kw) * C;
                v16 v;
                memcpy(&v, xb + base, sizeof v);
                const v16i win = max ? v > best : v < best;
                best = (v16)((win & (v16i)v) | (~win & (v16i)best));
                arg = (win & (iota + base)) | (~win & arg);
            }
        memcpy(o + c, &best, sizeof best);
        memcpy(a + c, &arg, sizeof arg);
    }
}

/* One output pixel of a pooling window: window cells outer, channels inner, written as selects
 * so the channel loop vectorises; ties keep the first cell in (kh, kw) order. */
static inline __attribute__((always_inline)) void
pool_pixel(float *restrict o, int32_t *restrict a, const float *restrict xb, const cv_window *g, cv_pool_kind kind,
           int oh, int ow)
{
    const int C = g->C;
    if (a && kind != CV_POOL_AVG && C % 16 == 0) {
        pool_pixel_vec(o, a, xb, g, kind == CV_POOL_MAX, oh, ow);
        return;
    }
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const int base = ((oh * g->stride + kh) * g->W + ow * g->stride + kw) * C;
            const float *restrict v = xb + base;
            if (kh == 0 && kw == 0) {
                for (int c = 0; c < C; c++) o[c] = v[c];
                if (a)
                    for (int c = 0; c < C; c++) a[c] = base + c;
            } else if (kind == CV_POOL_AVG) {
                for (int c = 0; c < C; c++) o[c] += v[c];
            } else if (kind == CV_POOL_MAX) {
                for (int c = 0; c < C; c++) {
                    const bool win = v[c] > o[c];
                    o[c] = win ? v[c] : o[c];
                    a[c] = win ? base + c : a[c];
                }
            } else {
                for (int c = 0; c < C; c++) {
                    const bool win = v[c] < o[c];
                    o[c] = win ? v[c] : o[c];
                    a[c] = win ? base + c : a[c];
                }
            }
        }
    if (kind == CV_POOL_AVG) {
        const float inv_area = 1.0f / (float)(g->KH * g->KW);
        for (int c = 0; c < C; c++) o[c] *= inv_area;
    }
}

CV_ISA_CLONES(pool_px, (float *o, int32_t *a, const float *xb, const cv_window *g, cv_pool_kind kind, int oh, int ow),
              pool_pixel, (o, a, xb, g, kind, oh, ow))

void cv_pool_forward(float *out, int32_t *arg, const float *x, int B, const cv_window *g,
                     cv_pool_kind kind)
{
    static pool_px_fn px;
    if (!px) px = pool_px_pick();
    const int C = g->C;
    const long rows = (long)B * g->OH * g->OW;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / (g->OH * g->OW)), p = (int)(r % (g->OH * g->OW));
        px(out + r * C, arg && kind != CV_POOL_AVG ? arg + r * C : NULL, x + (size_t)b * g->H * g->W * C, g, kind,
           p / g->OW, p % g->OW);
    }
}

/* Max/min pool backward for non-overlapping windows (stride = pool), one sample, writing every
 * element of dxb once in order: a cell gets its window's gradient where it won (times the ReLU
 * derivative when yb, the pool's output, is given: the winner's value decides), else 0. Rows and
 * columns no window covers get 0. No clearing pass, no scatter: all loops are contiguous and
 * vectorise. */
static inline __attribute__((always_inline)) void
pool_bwd_tiled(float *restrict dxb, const float *restrict dout, const int32_t *restrict arg, const float *restrict yb,
               float leak, const cv_window *g)
{
    const int C = g->C, KH = g->KH, KW = g->KW;
    for (int ih = 0; ih < g->H; ih++) {
        const int oh = ih / KH;
        float *restrict drow = dxb + (size_t)ih * g->W * C;
        int iw = 0;
        if (oh < g->OH)
            for (int ow = 0; ow < g->OW; ow++)
                for (int kw = 0; kw < KW; kw++, iw++) {
                    const int base = (ih * g->W + iw) * C;
                    const size_t o = ((size_t)oh * g->OW + ow) * C;
                    float *restrict d = drow + (size_t)iw * C;
                    if (C % 16 == 0) { /* 16 channels per step, the winner test as one compare */
                        const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
                        for (int c = 0; c < C; c += 16) {
                            v16 gv, y;
                            v16i at;
                            memcpy(&gv, dout + o + c, sizeof gv);
                            memcpy(&at, arg + o + c, sizeof at);
                            if (yb) {
                                memcpy(&y, yb + o + c, sizeof y);
                                const v16i pos = y > 0.0f;
                                const v16 neg = gv * leak;
                                gv = (v16)((pos & (v16i)gv) | (~pos & (v16i)neg));
                            }
                            const v16i won = at == iota + (base + c);
                            const v16 r = (v16)(won & (v16i)gv);
                            memcpy(d + c, &r, sizeof r);
                        }
                    } else if (yb) {
                        for (int c = 0; c < C; c++) {
                            const float gv = yb[o + c] > 0.0f ? dout[o + c] : leak * dout[o + c];
                            d[c] = arg[o + c] == base + c ? gv : 0.0f;
                        }
                    } else {
                        for (int c = 0; c < C; c++) d[c] = arg[o + c] == base + c ? dout[o + c] : 0.0f;
                    }
                }
        for (; iw < g->W; iw++) /* columns (or whole rows) outside every window */
            for (int c = 0; c < C; c++) drow[(size_t)iw * C + c] = 0.0f;
    }
}

CV_ISA_CLONES(pool_bwd_t, (float *dxb, const float *dout, const int32_t *arg, const float *yb, float leak,
                           const cv_window *g),
              pool_bwd_tiled, (dxb, dout, arg, yb, leak, g))

void cv_pool_backward(float *dx, const float *dout, const int32_t *arg, int B, const cv_window *g,
                      cv_pool_kind kind, bool overwrite, const float *relu_y, float leak)
{
    const int C = g->C;
    const float inv_area = 1.0f / (float)(g->KH * g->KW);
    if (overwrite && kind != CV_POOL_AVG && g->stride == g->KH && g->stride == g->KW) {
        static pool_bwd_t_fn tiled;
        if (!tiled) tiled = pool_bwd_t_pick();
        const size_t xs = (size_t)g->H * g->W * C, os = (size_t)g->OH * g->OW * C;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            tiled(dx + b * xs, dout + b * os, arg + b * os, relu_y ? relu_y + b * os : NULL, leak, g);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * g->H * g->W * C;
        const size_t base = (size_t)b * g->OH * g->OW * C;
        const float *yb = relu_y ? relu_y + base : NULL;
        if (overwrite) /* cleared here, per sample, so the scatter below finds it in cache */
            for (size_t i = 0; i < (size_t)g->H * g->W * C; i++) dxb[i] = 0.0f;
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++)
                for (int c = 0; c < C; c++) {
                    const size_t o = base + ((size_t)oh * g->OW + ow) * C + c;
                    if (kind != CV_POOL_AVG) {
                        dxb[arg[o]] += !yb || yb[o - base] > 0.0f ? dout[o] : leak * dout[o];
                        continue;
                    }
                    for (int kh = 0; kh < g->KH; kh++)
                        for (int kw = 0; kw < g->KW; kw++)
                            dxb[((oh * g->stride + kh) * g->W + ow * g->stride + kw) * C + c] +=
                                dout[o] * inv_area;
                }
    }
}
