/* NHWC window kernels: im2col/col2im for conv2d and max/avg/min pooling. Forward loops are
 * parallel over output pixels; backward loops are parallel over samples, whose input
 * gradients are disjoint, so no atomics are needed and the summation order is fixed. */
#include "convoy/kernels.h"

#include <float.h>
#include <string.h>

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
                if (ih < 0 || iw < 0)
                    memset(dst, 0, sizeof(float) * C);
                else
                    memcpy(dst, xb + ((size_t)ih * g->W + iw) * C, sizeof(float) * C);
            }
        }
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
        for (int c = 0; c < C; c++) {
            float best = kind == CV_POOL_MAX ? -FLT_MAX : FLT_MAX, sum = 0.0f;
            int32_t where = -1;
            for (int kh = 0; kh < g->KH; kh++)
                for (int kw = 0; kw < g->KW; kw++) {
                    const int off = ((oh * g->stride + kh) * g->W + ow * g->stride + kw) * C + c;
                    const float v = xb[off];
                    sum += v;
                    /* first winner on ties, and NaN never wins silently: where starts at -1 */
                    if (where < 0 || (kind == CV_POOL_MAX ? v > best : v < best)) {
                        best = v;
                        where = off;
                    }
                }
            out[r * C + c] = kind == CV_POOL_AVG ? sum * inv_area : best;
            if (arg) arg[r * C + c] = where;
        }
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
