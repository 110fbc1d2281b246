/* NHWC window kernels: im2col/col2im for conv2d, the direct convolution and weight gradient of
 * short receptive fields, and max/avg/min pooling. Forward loops are parallel over output
 * pixels; backward loops are parallel over samples, whose input gradients are disjoint, so no
 * atomics are needed and the summation order is fixed. Every kernel is compiled for the
 * instruction set the GEMM uses (isa.h); the hand-vectorised ones are in window-vec.h. */
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
    const int iw0 = ow * g->SW - g->pad_left;
    const bool cols_in = iw0 >= 0 && iw0 + g->KW <= g->W;
    for (int kh = 0; kh < g->KH; kh++) {
        const int ih = src_coord(oh, kh, g->SH, g->pad_top, g->H, nearest);
        if (ih >= 0 && cols_in) {
            copy_run(dst, xb + ((size_t)ih * g->W + iw0) * C, run);
            dst += run;
            continue;
        }
        for (int kw = 0; kw < g->KW; kw++, dst += C) {
            const int iw = src_coord(ow, kw, g->SW, g->pad_left, g->W, nearest);
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
        const int ih = src_coord(oh, kh, g->SH, g->pad_top, g->H, nearest);
        if (ih < 0) continue;
        for (int kw = 0; kw < g->KW; kw++) {
            const int iw = src_coord(ow, kw, g->SW, g->pad_left, g->W, nearest);
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
        for (int f = 0; f < F; f++) { /* both computed, then selected: no branch per element */
            const float v = o[f], neg = leak * v;
            o[f] = v > 0.0f ? v : neg;
        }
}

/* The hand-vectorised kernels (window-vec.h) at each instruction set's native width: 16 floats
 * (AVX-512, 32 registers), 8 (AVX2, 16 registers), 4 (SSE and other 128-bit sets). */
typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

#define VEC v16
#define VECI v16i
#define VW 16
#define VREGS 32
#define VN(name) name##_w16
#include "kernels/window-vec.h"
#undef VEC
#undef VECI
#undef VW
#undef VREGS
#undef VN
#define VEC v8
#define VECI v8i
#define VW 8
#define VREGS 16
#define VN(name) name##_w8
#include "kernels/window-vec.h"
#undef VEC
#undef VECI
#undef VW
#undef VREGS
#undef VN
#define VEC v4
#define VECI v4i
#define VW 4
#define VREGS 16
#define VN(name) name##_w4
#include "kernels/window-vec.h"
#undef VEC
#undef VECI
#undef VW
#undef VREGS
#undef VN

CV_ISA_CLONES_W(conv_row, (float *o, const float *xb, const float *w, const cv_epilogue *ep, int F, const cv_window *g,
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

/* B per-sample sums of KF floats each (KW of the kernel's, then the bias's) added up in sample
 * order (the result does not depend on the thread count), then into dw and db (NULL: dropped)
 * at once, so two calls add exactly twice one call. */
static void add_sample_sums(float *dw, float *db, const float *part, int B, size_t KW, size_t KF)
{
    for (size_t i = 0; i < KF; i++) {
        float sum = 0.0f;
        for (int b = 0; b < B; b++) sum += part[(size_t)b * KF + i];
        if (i < KW) dw[i] += sum;
        else if (db) db[i - KW] += sum;
    }
}

CV_ISA_CLONES_W(dw_sample, (float *acc, const float *xb, const float *dyb, int F, const cv_window *g, bool nearest,
                          bool bias),
              dw_sample, (acc, xb, dyb, F, g, nearest, bias))

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
    add_sample_sums(dw, db, part, B, KW, KF);
    return 0;
}

bool cv_conv_pool_fits(const cv_window *conv, const cv_window *pool, int F, cv_pool_kind kind)
{
    return kind != CV_POOL_AVG && conv->pad_top == 0 && conv->pad_left == 0 &&
           conv->SH == conv->SW && (conv->OH - 1) * conv->SH + conv->KH <= conv->H &&
           (conv->OW - 1) * conv->SW + conv->KW <= conv->W &&
           conv->KH == conv->KW && ((conv->KH == 3 && conv->C == 1) || (conv->KH == 2 && conv->C <= 3)) &&
           F % 16 == 0 && pool->KH == 2 && pool->KW == 2 && pool->SH == 2 && pool->SW == 2 &&
           pool->H == conv->OH && pool->W == conv->OW && pool->C == F;
}

CV_ISA_CLONES_W(cpool_row, (float *o, int32_t *arg, const float *xb, const float *w, const cv_epilogue *ep, bool max,
                          int F, const cv_window *g, int OWp, int ph),
              cpool_row, (o, arg, xb, w, ep, max, F, g, OWp, ph))

void cv_conv_pool(float *out, int32_t *arg, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                  const cv_window *conv, const cv_window *pool, cv_pool_kind kind)
{
    static cpool_row_fn row;
    if (!row) row = cpool_row_pick();
    const size_t xs = (size_t)conv->H * conv->W * conv->C, os = (size_t)pool->OH * pool->OW * F;
    const long rows = (long)B * pool->OH;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / pool->OH), ph = (int)(r % pool->OH);
        row(out + b * os, arg + b * os, x + b * xs, w, ep, kind == CV_POOL_MAX, F, conv, pool->OW, ph);
    }
}

CV_ISA_CLONES_W(cpool_dw, (float *acc, const float *xb, const float *dout, const int32_t *arg, const float *y,
                         bool relu, float leak, int F, const cv_window *g, int OHp, int OWp),
              cpool_dw_sample, (acc, xb, dout, arg, y, relu, leak, F, g, OHp, OWp))

int cv_conv_pool_dw(float *dw, float *db, const float *x, const float *dout, const int32_t *arg, const float *y,
                    float leak, int B, int F, const cv_window *conv, const cv_window *pool)
{
    static cpool_dw_fn sample;
    if (!sample) sample = cpool_dw_pick();
    const size_t KW = (size_t)conv->KH * conv->KW * conv->C * F, KF = KW + F;
    float *part = cv_scratch(CV_SCRATCH_DIRECT_DW, sizeof(float) * KF * (size_t)B);
    if (!part) return -1;
    const size_t xs = (size_t)conv->H * conv->W * conv->C, os = (size_t)pool->OH * pool->OW * F;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *acc = part + (size_t)b * KF;
        memset(acc, 0, sizeof(float) * KF);
        sample(acc, x + b * xs, dout + b * os, arg + b * os, y ? y + b * os : NULL, y != NULL, leak, F, conv,
               pool->OH, pool->OW);
    }
    add_sample_sums(dw, db, part, B, KW, KF);
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
            const int iw0 = ow * g->SW - g->pad_left;
            const bool cols_in = iw0 >= 0 && iw0 + g->KW <= g->W;
            for (int kh = 0; kh < g->KH; kh++) {
                const int ih = src_coord(oh, kh, g->SH, g->pad_top, g->H, nearest);
                if (ih >= 0 && cols_in) { /* the window row inside the image: one contiguous run */
                    float *restrict d = dxb + ((size_t)ih * g->W + iw0) * C;
                    for (int i = 0; i < run; i++) d[i] += src[i];
                    src += run;
                    continue;
                }
                for (int kw = 0; kw < g->KW; kw++, src += C) {
                    const int iw = src_coord(ow, kw, g->SW, g->pad_left, g->W, nearest);
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

CV_ISA_CLONES_W(pool_px, (float *o, int32_t *a, const float *xb, const cv_window *g, cv_pool_kind kind, int oh, int ow),
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

enum { POOL_MAP_BYTES = 512 << 10 };
bool cv_pool_maps(const cv_window *g) { return sizeof(float) * (size_t)g->H * g->W * g->C <= POOL_MAP_BYTES; }

int cv_pool_forward_mapped(float *out, int32_t *arg, const float *x, int B, const cv_window *g, cv_pool_kind kind,
                           const cv_chan_map *map)
{
    if (!cv_pool_maps(g)) return -1;
    const pool_px_fn px = pool_px_pick();
    const int C = g->C, per = g->OH * g->OW;
    const size_t xs = (size_t)g->H * g->W * C;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *buf = cv_scratch(CV_SCRATCH_POOL_MAP, sizeof(float) * xs); /* one sample, mapped */
        if (!buf) failed = 1;
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!buf) continue;
            cv_chan_map_rows(buf, x + (size_t)b * xs, (int64_t)g->H * g->W, C, map, false);
            for (int p = 0; p < per; p++) {
                const size_t r = (size_t)b * per + p;
                px(out + r * C, arg && kind != CV_POOL_AVG ? arg + r * C : NULL, buf, g, kind, p / g->OW, p % g->OW);
            }
        }
    }
    return failed ? -1 : 0;
}

CV_ISA_CLONES_W(pool_bwd_t, (float *dxb, const float *dout, const int32_t *arg, const float *yb, float leak,
                           const cv_window *g),
              pool_bwd_tiled, (dxb, dout, arg, yb, leak, g))

void cv_pool_backward(float *dx, const float *dout, const int32_t *arg, int B, const cv_window *g,
                      cv_pool_kind kind, bool overwrite, const float *relu_y, float leak)
{
    const int C = g->C;
    const float inv_area = 1.0f / (float)(g->KH * g->KW);
    if (overwrite && kind != CV_POOL_AVG && g->SH == g->KH && g->SW == g->KW) {
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
                            dxb[((oh * g->SH + kh) * g->W + ow * g->SW + kw) * C + c] +=
                                dout[o] * inv_area;
                }
    }
}
