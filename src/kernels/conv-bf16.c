/* Convolutions under --precision bf16 as implicit GEMMs on cv_bgemm_rows: the im2col matrix is
 * never written; the packing reads each output pixel's receptive field (runs of the input's
 * rows, zeros or the nearest edge pixel outside it) straight into its bf16 panels. The values
 * packed are im2col's, so each product has the bits of im2col + cv_bgemm_ep. The input gradient
 * of a stride-1, zero-padded convolution is the same kind of product over the output gradient,
 * with the kernel turned (flipped, its channel axes swapped). */
#include <stdlib.h>
#include <string.h>

#include "convoy/kernels.h"
#include "kernels/conv-ukernels.h"

typedef struct {
    const float *x;
    const cv_window *g;
    bool nearest;
} field;

static inline int clamp(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

/* row r of x's im2col matrix (output pixel r of the batch), elements [k0, k0 + n) */
static void field_read(const void *ctx, int64_t r, int k0, int n, float *dst)
{
    const field *f = ctx;
    const cv_window *g = f->g;
    const int C = g->C, rowlen = g->KW * C;
    const int64_t per = (int64_t)g->OH * g->OW;
    const int b = (int)(r / per), p = (int)(r % per), oh = p / g->OW, ow = p % g->OW;
    const int ih0 = oh * g->SH - g->pad_top, iw0 = ow * g->SW - g->pad_left;
    const float *img = f->x + (size_t)b * g->H * g->W * C;
    for (int k = k0, end = k0 + n; k < end;) {
        const int kh = k / rowlen, off = k % rowlen, take = rowlen - off < end - k ? rowlen - off : end - k;
        int ih = ih0 + kh;
        const bool row_in = ih >= 0 && ih < g->H;
        if (!row_in && !f->nearest) {
            memset(dst, 0, sizeof(float) * (size_t)take);
        } else {
            ih = clamp(ih, g->H);
            const float *row = img + (size_t)ih * g->W * C;
            if (iw0 >= 0 && iw0 + g->KW <= g->W) { /* the whole window row inside: one run */
                memcpy(dst, row + (size_t)iw0 * C + off, sizeof(float) * (size_t)take);
            } else {
                for (int t = 0; t < take;) { /* pixel by pixel along the window row */
                    const int kw = (off + t) / C, c = (off + t) % C, run = C - c < take - t ? C - c : take - t;
                    int iw = iw0 + kw;
                    if ((iw < 0 || iw >= g->W) && !f->nearest) memset(dst + t, 0, sizeof(float) * (size_t)run);
                    else memcpy(dst + t, row + (size_t)clamp(iw, g->W) * C + c, sizeof(float) * (size_t)run);
                    t += run;
                }
            }
        }
        dst += take;
        k += take;
    }
}

void cv_conv_bf16(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F, const cv_window *g,
                  bool nearest)
{
    const field f = {x, g, nearest};
    const cv_rows rows = {field_read, &f};
    const int K = g->KH * g->KW * g->C;
    cv_bgemm_rows(false, &rows, false, B * g->OH * g->OW, F, K, w, F, 0.0f, out, F, ep);
}

void cv_conv_bf16_dw(float *dw, const float *x, const float *dy, int B, int F, const cv_window *g, bool nearest)
{
    const field f = {x, g, nearest};
    const cv_rows rows = {field_read, &f};
    const int K = g->KH * g->KW * g->C;
    cv_bgemm_rows(true, &rows, false, K, F, B * g->OH * g->OW, dy, F, 1.0f, dw, F, NULL);
}

bool cv_conv_bf16_dx_fits(const cv_window *g)
{
    return g->SH == 1 && g->SW == 1 && g->pad_top < g->KH && g->pad_left < g->KW;
}

int cv_conv_bf16_dx(float *dx, const float *dy, const float *w, int B, int F, const cv_window *g)
{
    if (!cv_conv_bf16_dx_fits(g)) return -1;
    const int KH = g->KH, KW = g->KW, C = g->C;
    /* wt (KH,KW,F,C): w (KH,KW,C,F) flipped in both window axes, channels swapped */
    float *wt = cv_scratch(CV_SCRATCH_BF16_W, sizeof(float) * (size_t)KH * KW * C * F);
    if (!wt) return -1;
    for (int kh = 0; kh < KH; kh++)
        for (int kw = 0; kw < KW; kw++)
            cv_conv_tap_transpose(wt + ((size_t)kh * KW + kw) * F * C,
                                  w + ((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C * F, C, F);
    /* dx is the stride-1 convolution of dy, padded by the window less one less the padding, with wt */
    const cv_window t = {.H = g->OH, .W = g->OW, .C = F, .KH = KH, .KW = KW, .SH = 1, .SW = 1,
                         .pad_top = KH - 1 - g->pad_top, .pad_left = KW - 1 - g->pad_left, .OH = g->H, .OW = g->W};
    const field f = {dy, &t, false};
    const cv_rows rows = {field_read, &f};
    cv_bgemm_rows(false, &rows, false, B * g->H * g->W, C, KH * KW * F, wt, C, 0.0f, dx, C, NULL);
    return 0;
}
