/* NHWC window kernels: im2col/col2im for conv2d and max/avg/min pooling. Forward loops are
 * parallel over output pixels; backward loops are parallel over samples, whose input
 * gradients are disjoint, so no atomics are needed and the summation order is fixed. */
#include "convoy/kernels.h"

#include <stdlib.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* Input coordinate for output o and window offset k; -1 when it falls in zero padding. */
static inline int src_coord(int o, int k, int stride, int pad, int n, bool nearest)
{
    int i = o * stride - pad + k;
    if (i >= 0 && i < n) return i;
    if (!nearest) return -1;
    return i < 0 ? 0 : n - 1;
}

void cv_im2col(float *col, const float *x, int B, const cv_window *g, bool nearest)
{
    const int C = g->C, K = g->KH * g->KW * C;
    const long rows = (long)B * g->OH * g->OW;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / (g->OH * g->OW)), p = (int)(r % (g->OH * g->OW));
        const int oh = p / g->OW, ow = p % g->OW;
        const float *xb = x + (size_t)b * g->H * g->W * C;
        float *dst = col + (size_t)r * K;
        for (int kh = 0; kh < g->KH; kh++) {
            const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
            for (int kw = 0; kw < g->KW; kw++, dst += C) {
                const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
                const float *src = ih < 0 || iw < 0 ? NULL : xb + ((size_t)ih * g->W + iw) * C;
                if (C >= 16) { /* library calls pay off for long runs only */
                    if (src) memcpy(dst, src, sizeof(float) * C);
                    else memset(dst, 0, sizeof(float) * C);
                } else {
                    for (int c = 0; c < C; c++) dst[c] = src ? src[c] : 0.0f;
                }
            }
        }
    }
}

/* One output pixel of the direct convolution: o[0..F) = bias + sum over the window. The
 * filter loop is contiguous and vectorises; the sum runs in (kh, kw, c) order. */
static inline __attribute__((always_inline)) void
direct_pixel(float *restrict o, const float *restrict xb, const float *restrict w, const float *bias, int F,
             const cv_window *g, bool nearest, int oh, int ow)
{
    for (int f = 0; f < F; f++) o[f] = bias ? bias[f] : 0.0f;
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
}

typedef void (*pixel_fn)(float *, const float *, const float *, const float *, int, const cv_window *, bool, int, int);

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void pixel_avx2(float *o, const float *xb, const float *w, const float *bias,
                                                           int F, const cv_window *g, bool nearest, int oh, int ow)
{
    direct_pixel(o, xb, w, bias, F, g, nearest, oh, ow);
}
#endif

static void pixel_generic(float *o, const float *xb, const float *w, const float *bias, int F, const cv_window *g,
                          bool nearest, int oh, int ow)
{
    direct_pixel(o, xb, w, bias, F, g, nearest, oh, ow);
}

void cv_conv_direct(float *out, const float *x, const float *w, const float *bias, int B, int F,
                    const cv_window *g, bool nearest)
{
    static pixel_fn pixel;
    if (!pixel) { /* the same choice as the GEMM's: AVX2+FMA unless absent or CONVOY_GEMM=generic */
        const char *force = getenv("CONVOY_GEMM");
        pixel = pixel_generic;
#if defined(__x86_64__) && defined(__GNUC__)
        if (!(force && strcmp(force, "generic") == 0) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            pixel = pixel_avx2;
#else
        (void)force;
#endif
    }
    const long rows = (long)B * g->OH * g->OW;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / (g->OH * g->OW)), p = (int)(r % (g->OH * g->OW));
        pixel(out + (size_t)r * F, x + (size_t)b * g->H * g->W * g->C, w, bias, F, g, nearest, p / g->OW, p % g->OW);
    }
}

void cv_col2im(float *dx, const float *dcol, int B, const cv_window *g, bool nearest)
{
    const int C = g->C, K = g->KH * g->KW * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * g->H * g->W * C;
        const float *src = dcol + (size_t)b * g->OH * g->OW * K;
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++)
                for (int kh = 0; kh < g->KH; kh++) {
                    const int ih = src_coord(oh, kh, g->stride, g->pad_top, g->H, nearest);
                    for (int kw = 0; kw < g->KW; kw++, src += C) {
                        const int iw = src_coord(ow, kw, g->stride, g->pad_left, g->W, nearest);
                        if (ih < 0 || iw < 0) continue;
                        float *d = dxb + ((size_t)ih * g->W + iw) * C;
                        for (int c = 0; c < C; c++) d[c] += src[c];
                    }
                }
    }
}

void cv_pool_forward(float *out, int32_t *arg, const float *x, int B, const cv_window *g,
                     cv_pool_kind kind)
{
    const int C = g->C;
    const long rows = (long)B * g->OH * g->OW;
    const float inv_area = 1.0f / (float)(g->KH * g->KW);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int b = (int)(r / (g->OH * g->OW)), p = (int)(r % (g->OH * g->OW));
        const int oh = p / g->OW, ow = p % g->OW;
        const float *xb = x + (size_t)b * g->H * g->W * C;
        float *restrict o = out + r * C;
        int32_t *restrict a = arg ? arg + r * C : NULL;
        /* window cells outer, channels inner: the channel loop is branch-free and vectorises;
         * ties keep the first cell in (kh, kw) order */
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                const int base = ((oh * g->stride + kh) * g->W + ow * g->stride + kw) * C;
                const float *restrict v = xb + base;
                if (kh == 0 && kw == 0) {
                    for (int c = 0; c < C; c++) o[c] = v[c];
                    if (a) for (int c = 0; c < C; c++) a[c] = base + c;
                } else if (kind == CV_POOL_AVG) {
                    for (int c = 0; c < C; c++) o[c] += v[c];
                } else {
                    int c = 0;
                    /* 8 channels at a time as masks: GCC will not if-convert the scalar select */
                    for (; c + 8 <= C; c += 8) {
                        v8f vv, ov;
                        v8i av;
                        memcpy(&vv, v + c, sizeof vv);
                        memcpy(&ov, o + c, sizeof ov);
                        memcpy(&av, a + c, sizeof av);
                        const v8i m = kind == CV_POOL_MAX ? vv > ov : vv < ov;
                        const v8i idx = (v8i){0, 1, 2, 3, 4, 5, 6, 7} + (base + c);
                        ov = (v8f)(((v8i)vv & m) | ((v8i)ov & ~m));
                        av = (idx & m) | (av & ~m);
                        memcpy(o + c, &ov, sizeof ov);
                        memcpy(a + c, &av, sizeof av);
                    }
                    for (; c < C; c++) {
                        const bool win = kind == CV_POOL_MAX ? v[c] > o[c] : v[c] < o[c];
                        if (win) {
                            o[c] = v[c];
                            a[c] = base + c;
                        }
                    }
                }
            }
        if (kind == CV_POOL_AVG)
            for (int c = 0; c < C; c++) o[c] *= inv_area;
    }
}

void cv_pool_backward(float *dx, const float *dout, const int32_t *arg, int B, const cv_window *g,
                      cv_pool_kind kind)
{
    const int C = g->C;
    const float inv_area = 1.0f / (float)(g->KH * g->KW);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * g->H * g->W * C;
        const size_t base = (size_t)b * g->OH * g->OW * C;
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++)
                for (int c = 0; c < C; c++) {
                    const size_t o = base + ((size_t)oh * g->OW + ow) * C + c;
                    if (kind != CV_POOL_AVG) {
                        dxb[arg[o]] += dout[o];
                        continue;
                    }
                    for (int kh = 0; kh < g->KH; kh++)
                        for (int kw = 0; kw < g->KW; kw++)
                            dxb[((oh * g->stride + kh) * g->W + ow * g->stride + kw) * C + c] +=
                                dout[o] * inv_area;
                }
    }
}
