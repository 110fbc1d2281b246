/* Winograd F(4x4, 3x3) convolution for 3x3 stride-1 windows (Lavin & Gray, "Fast Algorithms
 * for Convolutional Neural Networks", 2016), its input gradient and its weight gradient. Each
 * 4x4 block of output pixels comes from a 6x6 block of input: with the input block d, the 3x3
 * kernel g and (interpolation points 0, 1, -1, 2, -2 and infinity)
 *     B^T = [4  0 -5  0  1  0;     G = [ 1/4     0     0;     A^T = [1  1  1  1  1  0;
 *            0 -4 -4  1  1  0;          -1/6  -1/6  -1/6;            0  1 -1  2 -2  0;
 *            0  4 -4 -1  1  0;          -1/6   1/6  -1/6;            0  1  1  4  4  0;
 *            0 -2 -1  2  1  0;          1/24  1/12   1/6;            0  1 -1  8 -8  1],
 *            0  2 -1 -2  1  0;          1/24 -1/12   1/6;
 *            0  4  0 -5  0  1],            0     0     1],
 * the block is A^T [ sum over channels of (G g G^T) .* (B^T d B) ] A: 36 products per channel
 * and filter where the direct sums have 144, and the sum over channels is 36 independent GEMMs
 * (blocks x C) x (C x F), run on the implicit-GEMM micro-kernel. Input pixels in the padding or
 * past the bottom or right edge read zeros; blocks store only their pixels inside the output.
 *
 * The input gradient is the same forward pass over the output gradient, padded by 2 - pad,
 * with the kernel turned 180 degrees and its channels and filters swapped. The weight gradient
 * is the forward map transposed: per channel and filter, G^T [ sum over blocks of
 * (B^T d B) .* (A e A^T) ] G, where e is the block's 4x4 output gradient (zero past the edge):
 * 36 GEMMs (C x blocks) x (blocks x F) on the weight-gradient micro-kernel (conv-winograd-dw.c,
 * on the transforms and block sources here, conv-winograd.h).
 *
 * The sums are not the direct convolution's: they differ from them by rounding, within 1e-5
 * of the sum of the terms' magnitudes (the transforms' coefficients reach 8; measured up to
 * 3.3e-6 in the tests). Each output pixel's arithmetic depends on its
 * own block alone, and each weight gradient sums the blocks of a call in order or in fixed
 * groups, so the thread count never changes a bit (nor, in the forward pass and the input gradient, how samples are
 * grouped into calls). CONVOY_WINOGRAD=0 turns all three off (the fits functions say no). */
#include <stdlib.h>
#include <string.h>

#include "kernels/conv-ukernels.h"
#include "kernels/conv-winograd.h"
#include "kernels/isa.h"

enum { MR_MAX = 16 };

/* a 3x3 stride-1 convolution of C channels into F filters, padded by at most 2, that the
 * transforms (C and F in whole vectors) and the micro-kernel (F in whole tiles) take */
static bool wino_shape(const cv_window *g, int C, int F)
{
    const char *env = getenv("CONVOY_WINOGRAD");
    if (env && env[0] == '0' && env[1] == '\0') return false;
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->pad_top >= 0 && g->pad_top <= 2 && g->pad_left >= 0 &&
           g->pad_left <= 2 && g->OH > 0 && g->OW > 0 && g->H > 0 && g->W > 0 && C % 16 == 0 && F % u->nr == 0 &&
           u->mr <= MR_MAX;
}

bool cv_conv_wino_fits(const cv_window *g, int F) { return wino_shape(g, g->C, F); }

/* the input gradient's window: the output gradient (OH, OW, F) padded by 2 - pad, into (H, W, C) */
static cv_window dx_window(const cv_window *g, int F)
{
    return (cv_window){.H = g->OH, .W = g->OW, .C = F, .KH = 3, .KW = 3, .SH = 1, .SW = 1,
                       .pad_top = 2 - g->pad_top, .pad_left = 2 - g->pad_left, .OH = g->H, .OW = g->W};
}

bool cv_conv_wino_dx_fits(const cv_window *g, int F)
{
    const cv_window d = dx_window(g, F); /* padded by 0 to 2 if g is */
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && wino_shape(&d, F, g->C);
}

/* The one-dimensional transforms, on arrays of values (vectors or scalars): o = B^T d (6 from
 * 6), G g (6 from 3), A^T m (4 from 6), and for the weight gradient A e (6 from 4) and G^T m
 * (3 from 6). */
#define WINO_BT(o, d)                                                                                 \
    do {                                                                                              \
        (o)[0] = 4.0f * (d)[0] - 5.0f * (d)[2] + (d)[4];                                              \
        (o)[1] = ((d)[3] + (d)[4]) - 4.0f * ((d)[1] + (d)[2]);                                        \
        (o)[2] = ((d)[4] - (d)[3]) + 4.0f * ((d)[1] - (d)[2]);                                        \
        (o)[3] = ((d)[4] - (d)[2]) + 2.0f * ((d)[3] - (d)[1]);                                        \
        (o)[4] = ((d)[4] - (d)[2]) - 2.0f * ((d)[3] - (d)[1]);                                        \
        (o)[5] = 4.0f * (d)[1] - 5.0f * (d)[3] + (d)[5];                                              \
    } while (0)
#define WINO_G(o, g)                                                                                  \
    do {                                                                                              \
        (o)[0] = 0.25f * (g)[0];                                                                      \
        (o)[1] = (-1.0f / 6) * ((g)[0] + (g)[1] + (g)[2]);                                            \
        (o)[2] = (-1.0f / 6) * ((g)[0] - (g)[1] + (g)[2]);                                            \
        (o)[3] = (1.0f / 24) * (g)[0] + (1.0f / 12) * (g)[1] + (1.0f / 6) * (g)[2];                   \
        (o)[4] = (1.0f / 24) * (g)[0] - (1.0f / 12) * (g)[1] + (1.0f / 6) * (g)[2];                   \
        (o)[5] = (g)[2];                                                                              \
    } while (0)
#define WINO_AT(o, m)                                                                                 \
    do {                                                                                              \
        const __typeof__((m)[0]) w_a = (m)[1] + (m)[2], w_b = (m)[1] - (m)[2];                        \
        const __typeof__((m)[0]) w_c = (m)[3] + (m)[4], w_d = (m)[3] - (m)[4];                        \
        (o)[0] = (m)[0] + w_a + w_c;                                                                  \
        (o)[1] = w_b + 2.0f * w_d;                                                                    \
        (o)[2] = w_a + 4.0f * w_c;                                                                    \
        (o)[3] = w_b + 8.0f * w_d + (m)[5];                                                           \
    } while (0)
#define WINO_A(o, e)                                                                                  \
    do {                                                                                              \
        const __typeof__((e)[0]) w_p = (e)[0] + (e)[2], w_q = (e)[1] + (e)[3];                        \
        const __typeof__((e)[0]) w_r = (e)[0] + 4.0f * (e)[2], w_s = 2.0f * (e)[1] + 8.0f * (e)[3];   \
        (o)[0] = (e)[0];                                                                              \
        (o)[1] = w_p + w_q;                                                                           \
        (o)[2] = w_p - w_q;                                                                           \
        (o)[3] = w_r + w_s;                                                                           \
        (o)[4] = w_r - w_s;                                                                           \
        (o)[5] = (e)[3];                                                                              \
    } while (0)
#define WINO_GT(o, m)                                                                                 \
    do {                                                                                              \
        const __typeof__((m)[0]) w_a = (m)[1] + (m)[2], w_b = (m)[1] - (m)[2];                        \
        const __typeof__((m)[0]) w_c = (m)[3] + (m)[4], w_d = (m)[3] - (m)[4];                        \
        (o)[0] = 0.25f * (m)[0] - (1.0f / 6) * w_a + (1.0f / 24) * w_c;                               \
        (o)[1] = (1.0f / 12) * w_d - (1.0f / 6) * w_b;                                                \
        (o)[2] = (1.0f / 6) * (w_c - w_a) + (m)[5];                                                   \
    } while (0)

/* The transforms' loops, written once for the ways of finding a block's pixels: pixel (i, j)
 * of the block at AT(i, j), at rows rs apart (input blocks, those at the edge copied with their
 * zeros; output blocks inside) or through an array of pointers (output blocks at the edge,
 * whose pixels outside point at a sink or zeros). The same operations on the same values
 * whichever way. Outputs past L2 go out by stream stores (WINO_STREAM). */
#define WINO_AT_ROW(i, j) (b + (size_t)(i) * rs + (size_t)(j) * C)
/* (AVX-512 only: with 4 or 8 floats a vector, a block's filters fill a pixel's line over
 * several passes of its loop, and stream stores of part lines measured 1.4x slower) */
#define WINO_STREAM4 WINO_ST
#define WINO_STREAM8 WINO_ST
#define WINO_STREAM16(VECU, p, v) CV_STREAM_ST16(p, v)
#define WINO_AT_O(i, j) o[(i) * WB + (j)]
#define WINO_AT_OB(i, j) (ob + (size_t)(i) * rs + (size_t)(j) * F)
#define WINO_AT_Q(i, j) q[(i) * WB + (j)]
#define WINO_AT_QB(i, j) (qb + (size_t)(i) * rs + (size_t)(j) * F)
#define WINO_INPUT_LOOP(VEC, VECU, VW, AT)                                                            \
    for (int c = 0; c < C; c += VW) {                                                                 \
        VEC t[WI][WI];                                                                                \
        for (int j = 0; j < WI; j++) {                                                                \
            VEC d[WI], o[WI];                                                                         \
            for (int i = 0; i < WI; i++) WINO_LD(VECU, d[i], AT(i, j) + c);                           \
            WINO_BT(o, d);                                                                            \
            for (int i = 0; i < WI; i++) t[i][j] = o[i];                                              \
        }                                                                                             \
        for (int i = 0; i < WI; i++) {                                                                \
            VEC v[WI];                                                                                \
            WINO_BT(v, t[i]);                                                                         \
            for (int j = 0; j < WI; j++) WINO_ST(VECU, V + (i * WI + j) * vstride + c, v[j]);         \
        }                                                                                             \
    }

#define WINO_OUTPUT_LOOP(VEC, VECU, VW, AT, ST)                                                     \
    const float *bias = ep ? ep->bias : NULL;                                                     \
    const bool relu = ep && ep->relu;                                                             \
    const float leak = ep ? ep->leak : 0.0f;                                                      \
    for (int f = 0; f < F; f += VW) {                                                             \
        VEC s[WB][WI], b = {0};                                                                   \
        for (int j = 0; j < WI; j++) {                                                            \
            VEC m[WI], y[WB];                                                                     \
            for (int i = 0; i < WI; i++) WINO_LD(VECU, m[i], M + (i * WI + j) * mstride + f);     \
            WINO_AT(y, m);                                                                        \
            for (int i = 0; i < WB; i++) s[i][j] = y[i];                                          \
        }                                                                                         \
        if (bias) WINO_LD(VECU, b, bias + f);                                                     \
        for (int i = 0; i < WB; i++) {                                                            \
            VEC y[WB];                                                                            \
            WINO_AT(y, s[i]);                                                                     \
            for (int j = 0; j < WB; j++) {                                                        \
                VEC v = y[j] + b;                                                                 \
                if (relu) CV_VEC_LEAKY_RELU(VEC, v, leak);                                        \
                ST(VECU, AT(i, j) + f, v);                                                        \
            }                                                                                     \
        }                                                                                         \
    }
#define WINO_GRAD_LOOP(VEC, VECU, VW, AT)                                                         \
    for (int f = 0; f < F; f += VW) {                                                             \
        VEC r[WI][WB];                                                                            \
        for (int j = 0; j < WB; j++) {                                                            \
            VEC e[WB], o[WI];                                                                     \
            for (int i = 0; i < WB; i++) WINO_LD(VECU, e[i], AT(i, j) + f);                       \
            WINO_A(o, e);                                                                         \
            for (int i = 0; i < WI; i++) r[i][j] = o[i];                                          \
        }                                                                                         \
        for (int i = 0; i < WI; i++) {                                                            \
            VEC z[WI];                                                                            \
            WINO_A(z, r[i]);                                                                      \
            for (int j = 0; j < WI; j++) WINO_ST(VECU, Z + (i * WI + j) * zstride + f, z[j]);     \
        }                                                                                         \
    }

/* The two-dimensional transforms, written once for vectors of VW floats (the channel or filter
 * index runs across the lanes) and compiled for each instruction set's width: each applies
 * its one-dimensional transform down the columns, then along the rows. */
#define WINO_BODIES(VEC, VECU, VW)                                                                            \
    /* U (36, C, F) = G g G^T for every channel and filter; w is (3, 3, C, F) */                     \
    static inline __attribute__((always_inline)) void weights_w##VW(float *U, const float *w, int C, \
                                                                    int F)                            \
    {                                                                                                 \
        const size_t cf = (size_t)C * F;                                                              \
        for (size_t at = 0; at < cf; at += VW) {                                                      \
            VEC q[WI][3];                                                                             \
            for (int j = 0; j < 3; j++) {                                                             \
                VEC g[3], o[WI];                                                                      \
                for (int i = 0; i < 3; i++) WINO_LD(VECU, g[i], w + (i * 3 + j) * cf + at);                 \
                WINO_G(o, g);                                                                         \
                for (int i = 0; i < WI; i++) q[i][j] = o[i];                                          \
            }                                                                                         \
            for (int i = 0; i < WI; i++) {                                                            \
                VEC u[WI];                                                                            \
                WINO_G(u, q[i]);                                                                      \
                for (int j = 0; j < WI; j++) WINO_ST(VECU, U + (i * WI + j) * cf + at, u[j]);               \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    /* an input block at the edge into blk (WI x WI pixels of C, rows WI C apart): its rows           \
     * [i0, i1) and columns [j0, j1) from pixel (i, j) at xb + (y0 + i) rs + (x0 + j) C, zeros       \
     * elsewhere; by vectors of the width the transform then loads them at */                          \
    static inline __attribute__((always_inline)) void edge_w##VW(float *blk, const float *xb, size_t rs, \
                                                                 int y0, int x0, int i0, int i1, int j0,  \
                                                                 int j1, int C)                         \
    {                                                                                                 \
        const VEC z = {0};                                                                            \
        for (int i = 0; i < WI; i++) {                                                                \
            float *b = blk + (size_t)i * WI * C;                                                      \
            const int a = i >= i0 && i < i1 ? j0 : WI, e = i >= i0 && i < i1 ? j1 : WI;               \
            for (int k = 0; k < a * C; k += VW) WINO_ST(VECU, b + k, z);                              \
            if (a < e) {                                                                              \
                const float *s = xb + (size_t)(y0 + i) * rs + (size_t)(x0 + a) * C;                   \
                for (int k = 0; k < (e - a) * C; k += VW) {                                           \
                    VEC v;                                                                            \
                    WINO_LD(VECU, v, s + k);                                                          \
                    WINO_ST(VECU, b + a * C + k, v);                                                  \
                }                                                                                     \
            }                                                                                         \
            for (int k = e * C; k < WI * C; k += VW) WINO_ST(VECU, b + k, z);                         \
        }                                                                                             \
    }                                                                                                 \
    /* V[xi * vstride + c] = (B^T d B)[xi] for the input block d: pixel (i, j) at b + i rs + j C */  \
    static inline __attribute__((always_inline)) void inputs_w##VW(float *V, size_t vstride,        \
                                                                   const float *b, size_t rs, int C)  \
    {                                                                                                 \
        WINO_INPUT_LOOP(VEC, VECU, VW, WINO_AT_ROW)                                                   \
    }                                                                                                 \
    /* the 4x4 block A^T m A from M[xi * mstride + f], plus bias and the activation, into the     \
     * pixels o[0..16) (those outside the output point at a sink) */                                \
    static inline __attribute__((always_inline)) void output_w##VW(float *const *o, const float *M, \
                                                                   size_t mstride, int F,             \
                                                                   const cv_epilogue *ep)             \
    {                                                                                                 \
        WINO_OUTPUT_LOOP(VEC, VECU, VW, WINO_AT_O, WINO_ST)                                           \
    }                                                                                                 \
    /* ... for a block inside the output: pixel (i, j) at ob + i rs + j F, by stream stores if    \
     * stream (ob and rs in whole vectors) */                                                        \
    static inline __attribute__((always_inline)) void outputs_w##VW(float *ob, size_t rs, const float *M, \
                                                                    size_t mstride, int F,            \
                                                                    const cv_epilogue *ep, bool stream) \
    {                                                                                                 \
        if (stream) {                                                                                 \
            WINO_OUTPUT_LOOP(VEC, VECU, VW, WINO_AT_OB, WINO_STREAM##VW)                              \
        } else {                                                                                      \
            WINO_OUTPUT_LOOP(VEC, VECU, VW, WINO_AT_OB, WINO_ST)                                      \
        }                                                                                             \
    }                                                                                                 \
    /* the weight gradient's two transforms. Z[xi * zstride + f] = (A e A^T)[xi] for the 4x4     \
     * block of output gradients e at q[0..16) (those outside the output point at zeros) */        \
    static inline __attribute__((always_inline)) void grad_w##VW(float *Z, size_t zstride,          \
                                                                 const float *const *q, int F)        \
    {                                                                                                 \
        WINO_GRAD_LOOP(VEC, VECU, VW, WINO_AT_Q)                                                      \
    }                                                                                                 \
    /* ... for a block inside the output: e (i, j) at qb + i rs + j F */                            \
    static inline __attribute__((always_inline)) void grads_w##VW(float *Z, size_t zstride,         \
                                                                  const float *qb, size_t rs, int F)  \
    {                                                                                                 \
        WINO_GRAD_LOOP(VEC, VECU, VW, WINO_AT_QB)                                                     \
    }                                                                                                 \
    /* dw (3, 3, C, F) += G^T m G for channels [c0, c1) and every filter, m the 36 values           \
     * M[xi * mstride + c * F + f] */                                                                 \
    static inline __attribute__((always_inline)) void dwout_w##VW(float *dw, const float *M,        \
                                                                  size_t mstride, int c0, int c1,     \
                                                                  int C, int F)                       \
    {                                                                                                 \
        const size_t cf = (size_t)C * F;                                                              \
        for (int c = c0; c < c1; c++)                                                                 \
            for (int f = 0; f < F; f += VW) {                                                         \
                const size_t at = (size_t)c * F + f;                                                  \
                VEC r[3][WI];                                                                         \
                for (int j = 0; j < WI; j++) {                                                        \
                    VEC m[WI], o[3];                                                                  \
                    for (int i = 0; i < WI; i++) WINO_LD(VECU, m[i], M + (i * WI + j) * mstride + at);      \
                    WINO_GT(o, m);                                                                    \
                    for (int i = 0; i < 3; i++) r[i][j] = o[i];                                       \
                }                                                                                     \
                for (int i = 0; i < 3; i++) {                                                         \
                    VEC k[3];                                                                         \
                    WINO_GT(k, r[i]);                                                                 \
                    for (int j = 0; j < 3; j++) {                                                     \
                        VEC t;                                                                        \
                        WINO_LD(VECU, t, dw + (i * 3 + j) * cf + at);                                       \
                        t += k[j];                                                                    \
                        WINO_ST(VECU, dw + (i * 3 + j) * cf + at, t);                                       \
                    }                                                                                 \
                }                                                                                     \
            }                                                                                         \
    }

WINO_BODIES(wv4, wv4u, 4)
WINO_BODIES(wv8, wv8u, 8)
WINO_BODIES(wv16, wv16u, 16)

CV_ISA_CLONES3(wino_weights, (float *U, const float *w, int C, int F), weights_w4, weights_w8, weights_w16,
               (U, w, C, F))
CV_ISA_CLONES3(wino_output, (float *const *o, const float *M, size_t mstride, int F, const cv_epilogue *ep),
               output_w4, output_w8, output_w16, (o, M, mstride, F, ep))
CV_ISA_CLONES3(wino_grad, (float *Z, size_t zstride, const float *const *q, int F), grad_w4, grad_w8, grad_w16,
               (Z, zstride, q, F))
CV_ISA_CLONES3(wino_inputs, (float *V, size_t vstride, const float *b, size_t rs, int C), inputs_w4, inputs_w8,
               inputs_w16, (V, vstride, b, rs, C))
CV_ISA_CLONES3(wino_edge,
               (float *blk, const float *xb, size_t rs, int y0, int x0, int i0, int i1, int j0, int j1, int C),
               edge_w4, edge_w8, edge_w16, (blk, xb, rs, y0, x0, i0, i1, j0, j1, C))
CV_ISA_CLONES3(wino_outputs,
               (float *ob, size_t rs, const float *M, size_t mstride, int F, const cv_epilogue *ep, bool stream),
               outputs_w4, outputs_w8, outputs_w16, (ob, rs, M, mstride, F, ep, stream))
CV_ISA_CLONES3(wino_grads, (float *Z, size_t zstride, const float *qb, size_t rs, int F), grads_w4, grads_w8,
               grads_w16, (Z, zstride, qb, rs, F))

wino_fns cv_wino_fns(void)
{
    return (wino_fns){wino_edge_pick(), wino_inputs_pick(), wino_output_pick(), wino_outputs_pick(), wino_grad_pick(),
                      wino_grads_pick()};
}
CV_ISA_CLONES3(wino_dwout, (float *dw, const float *M, size_t mstride, int c0, int c1, int C, int F), dwout_w4,
               dwout_w8, dwout_w16, (dw, M, mstride, c0, c1, C, F))
wino_dwout_fn cv_wino_dwout(void) { return wino_dwout_pick(); }

enum { PAD_BYTES = 512 << 10 };

wino_src cv_wino_src_plan(const cv_window *g, int ty, int tx, size_t *floats)
{
    wino_src s = {NULL, -1, WB * ty + 2, WB * tx + 2, NULL};
    const size_t pad = (size_t)s.Hp * s.Wp * g->C;
    if (sizeof(float) * pad > PAD_BYTES) s.Hp = s.Wp = 0;
    *floats = s.Hp ? pad : (size_t)XI * g->C;
    return s;
}

void cv_wino_pad_sample(wino_src *s, const float *xb, const cv_window *g)
{
    const int C = g->C, left = g->pad_left, n = g->W < s->Wp - left ? g->W : s->Wp - left;
    const size_t wc = (size_t)s->Wp * C;
    for (int r = 0; r < s->Hp; r++) {
        float *b = s->buf + r * wc;
        const int y = r - g->pad_top;
        if (y < 0 || y >= g->H || n <= 0) {
            memset(b, 0, sizeof(float) * wc);
            continue;
        }
        memset(b, 0, sizeof(float) * (size_t)left * C);
        if (s->map)
            cv_chan_map_rows(b + (size_t)left * C, xb + (size_t)y * g->W * C, n, C, s->map, false);
        else
            memcpy(b + (size_t)left * C, xb + (size_t)y * g->W * C, sizeof(float) * (size_t)n * C);
        memset(b + (size_t)(left + n) * C, 0, sizeof(float) * (wc - (size_t)(left + n) * C));
    }
}

/* the blocks [t0, t0 + n) of the batch's B * per blocks, tx a row (n <= cm, the micro-kernel's
 * height, or more for the 16 x 16 products: cv_wino_chunk): transform their inputs, the 36
 * products over the channels, the inverse transform; V and M are the transformed inputs and
 * products of these n blocks only, cm apart (chunks of several panels on the micro-kernel,
 * each slice of U serving them all, measured no faster) */
static void wino_chunk(float *out, const float *x, const float *U, wino_src *src, float *V, float *M, float *sink,
                       const cv_epilogue *ep, long t0, int n, int per, int tx, int F, const cv_window *g,
                       const wino_fns *fn, wino_prod_fn prod, bool stream, int cm)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_for(F);
    const int C = g->C, mr = u->mr, nr = u->nr;
    const size_t vs = (size_t)cm * C, ms = (size_t)cm * F;
    for (int i = 0; i < n; i++) {
        size_t rs;
        const float *b = cv_wino_block_inputs(src, &rs, x, t0 + i, per, tx, g, fn->edge);
        fn->ins(V + (size_t)i * C, vs, b, rs, C);
    }
    const float *at[MR_MAX];
    if (prod) prod(M, ms, V, vs, U, n, C, F);
    for (int xi = 0; xi < XI && !prod; xi++) {
        for (int i = 0; i < mr; i++) at[i] = V + xi * vs + (size_t)(i < n ? i : 0) * C; /* short: repeat */
        for (int f0 = 0; f0 < F; f0 += nr)
            u->fwd(at, 1, C, 0, U + (size_t)xi * C * F + f0, F, M + xi * ms + f0, F, n, nr, true, NULL);
    }
    for (int i = 0; i < n; i++) {
        long pos[WB * WB] = {0}; /* (filled where the block is at the edge) */
        float *o[WB * WB];
        const long at0 = cv_wino_block_outputs(pos, t0 + i, per, tx, F, g);
        if (at0 >= 0) {
            fn->outs(out + at0, (size_t)g->OW * F, M + (size_t)i * F, ms, F, ep, stream);
            continue;
        }
        for (int k = 0; k < WB * WB; k++) o[k] = pos[k] < 0 ? sink : out + pos[k];
        fn->out(o, M + (size_t)i * F, ms, F, ep);
    }
}

/* out = ep(the convolution of x with the transformed weights U (36, C, F)) in the first ty x tx
 * blocks of each sample, and zero past them */
static int wino_forward(float *out, const float *x, const float *U, const cv_epilogue *ep, const cv_chan_map *map,
                        int B, int F, const cv_window *g, int ty, int tx)
{
    const int C = g->C, per = ty * tx, mr0 = cv_conv_ukernels_for(F)->mr, mr = cv_wino_chunk(C, F, mr0);
    const long T = (long)B * per, chunks = (T + mr - 1) / mr;
    const wino_fns fn = cv_wino_fns();
    const wino_prod_fn prod = cv_wino_prod(C, F, mr0);
    /* an output past L2's size by stream stores (its blocks inside write whole lines) */
    const bool stream = F % 16 == 0 && cv_streams(out, sizeof(float) * (size_t)B * g->OH * g->OW * F);
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (cv_conv_fork_worth(2.0 * B * g->OH * g->OW * F * 9.0 * C))
    {
        /* this thread's transformed inputs and products of one chunk, a sink of F, and its
         * padded sample (or edge block) */
        const size_t nv = (size_t)XI * mr * C, nm = (size_t)XI * mr * F;
        float *V = cv_scratch(CV_SCRATCH_WINOGRAD, sizeof(float) * (nv + nm + (size_t)F));
        size_t ns;
        wino_src src = cv_wino_src_plan(g, ty, tx, &ns);
        src.buf = cv_scratch(CV_SCRATCH_WINOGRAD_BLOCK, sizeof(float) * ns);
        src.map = map;
        if (!V || !src.buf) V = NULL, failed = 1; /* (a map: cv_conv_wino saw it fit) */
#pragma omp for schedule(static)
        for (long k = 0; k < chunks; k++) {
            if (!V) continue;
            const long t0 = k * mr;
            wino_chunk(out, x, U, &src, V, V + nv, V + nv + nm, ep, t0, T - t0 < mr ? (int)(T - t0) : mr,
                       per, tx, F, g, &fn, prod, stream, mr);
        }
        if (stream) cv_stream_fence();
    }
    const int rows = WB * ty < g->OH ? WB * ty : g->OH, cols = WB * tx < g->OW ? WB * tx : g->OW;
    for (int b = 0; b < B && !failed && (rows < g->OH || cols < g->OW); b++) /* past the blocks */
        for (int y = 0; y < g->OH; y++) {
            const int x0 = y < rows ? cols : 0;
            memset(out + (((size_t)b * g->OH + y) * g->OW + x0) * F, 0, sizeof(float) * (size_t)(g->OW - x0) * F);
        }
    return failed ? -1 : 0;
}

int cv_conv_wino_weights(float *U, const float *w, int C, int F, bool turned)
{
    if (!turned) {
        wino_weights_pick()(U, w, C, F);
        return 0;
    }
    const size_t cf = (size_t)C * F;
    float *t = cv_scratch(CV_SCRATCH_WINOGRAD_W, sizeof(float) * 9 * cf); /* the turned kernel (3, 3, F, C) */
    if (!t) return -1;
    for (int k = 0; k < 9; k++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++) t[k * cf + (size_t)f * C + c] = w[(8 - k) * cf + (size_t)c * F + f];
    wino_weights_pick()(U, t, F, C);
    return 0;
}

/* the forward pass over window d into F filters with the transformed kernel U, or with w
 * transformed here (turned: for an input gradient, w being (3, 3, F, d->C)), its output past
 * the first rows and columns zero */
static int wino_pass(float *out, const float *x, const float *w, const float *U, bool turned, const cv_epilogue *ep,
                     const cv_chan_map *map, int B, int F, const cv_window *d, int rows, int cols)
{
    const int C = d->C;
    if (!U) { /* the transformed kernel */
        float *u = cv_scratch(CV_SCRATCH_WINOGRAD_Z, sizeof(float) * XI * C * F);
        if (!u || cv_conv_wino_weights(u, w, turned ? F : C, turned ? C : F, turned)) return -1;
        U = u;
    }
    return wino_forward(out, x, U, ep, map, B, F, d, cv_wino_blocks_over(rows), cv_wino_blocks_over(cols));
}

bool cv_conv_wino_maps(const cv_window *g)
{
    size_t floats;
    return cv_wino_src_plan(g, cv_wino_blocks_over(g->OH), cv_wino_blocks_over(g->OW), &floats).Hp > 0;
}

int cv_conv_wino(float *out, const float *x, const float *w, const float *U, const cv_epilogue *ep, int B, int F,
                 const cv_window *g, const cv_chan_map *map)
{
    if (map && !cv_conv_wino_maps(g)) return -1;
    return wino_pass(out, x, w, U, false, ep, map, B, F, g, g->OH, g->OW);
}

int cv_conv_wino_dx(float *dx, const float *dy, const float *w, const float *U, int B, int F, const cv_window *g,
                    int dy_rows, int dy_cols)
{
    const cv_window d = dx_window(g, F);
    /* input rows past dy_rows + the padding read only zero rows of dy */
    const int rows = dy_rows + d.pad_top < d.OH ? dy_rows + d.pad_top : d.OH;
    const int cols = dy_cols + d.pad_left < d.OW ? dy_cols + d.pad_left : d.OW;
    return wino_pass(dx, dy, w, U, true, NULL, NULL, B, g->C, &d, rows, cols);
}
