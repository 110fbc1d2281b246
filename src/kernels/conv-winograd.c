/* Winograd F(2x2, 3x3) convolution for 3x3 stride-1 windows inside the input (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016). Each 2x2 block of output pixels
 * comes from a 4x4 block of input: with the input block d, the 3x3 kernel g and
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *     A^T = [1 1 1 0; 0 1 -1 -1],
 * the block is A^T [ sum over channels of (G g G^T) .* (B^T d B) ] A: 16 products per channel
 * and filter where the direct sum has 36, and the sum over channels is 16 independent GEMMs
 * (tiles x C) x (C x F), run on the implicit-GEMM micro-kernel. Blocks past the bottom or right
 * edge read zeros and store only their pixels inside the output.
 *
 * The sums are not the direct convolution's: they differ from it by rounding (a few ulp of
 * the largest term; the transforms' coefficients are 0, +-1 and +-1/2). Each output pixel's
 * arithmetic depends on its own block alone, so neither the thread count nor how samples are
 * grouped into calls changes a bit. CONVOY_WINOGRAD=0 turns it off (cv_conv_wino_fits says no);
 * so does the AVX2 kernel, where it gains nothing. */
#include <stdlib.h>
#include <string.h>

#include "kernels/conv-ukernels.h"
#include "kernels/isa.h"

enum { MR_MAX = 16, XI = 16 };

bool cv_conv_wino_fits(const cv_window *g, int F)
{
    const char *env = getenv("CONVOY_WINOGRAD");
    if (env && env[0] == '0' && env[1] == '\0') return false;
    /* with the AVX2 kernel (6x16) the transforms cost what the products save (fmnist-cnn's
     * conv2: 238 us against 243 per 4 samples; AVX-512 100 against 126, 128-bit 478 against 694) */
    if (strcmp(cv_gemm_path(), "avx2") == 0) return false;
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    return g->KH == 3 && g->KW == 3 && g->stride == 1 && g->pad_top == 0 && g->pad_left == 0 &&
           g->OH == g->H - 2 && g->OW == g->W - 2 && g->OH > 0 && g->OW > 0 && g->C % 16 == 0 && F % u->nr == 0 &&
           u->mr <= MR_MAX;
}

/* The three transforms, written once for vectors of VW floats (the channel or filter index
 * runs across the lanes) and compiled for each instruction set's width. */
typedef float wv4 __attribute__((vector_size(16)));
typedef float wv8 __attribute__((vector_size(32)));
typedef float wv16 __attribute__((vector_size(64)));

#define WINO_LD(v, p) memcpy(&(v), (p), sizeof(v))
#define WINO_ST(p, v) memcpy((p), &(v), sizeof(v))

#define WINO_BODIES(VEC, VW)                                                                           \
    /* U (16, C, F) = G g G^T for every channel and filter; w is (3, 3, C, F) */                      \
    static inline __attribute__((always_inline)) void weights_w##VW(float *U, const float *w, int C, int F) \
    {                                                                                                  \
        const size_t cf = (size_t)C * F;                                                               \
        for (size_t cfi = 0; cfi < cf; cfi += VW) {                                                   \
            VEC q[4][3];                                                                               \
            for (int j = 0; j < 3; j++) { /* G g, column j */                                          \
                VEC g0, g1, g2;                                                                        \
                WINO_LD(g0, w + (0 * 3 + j) * cf + cfi);                                               \
                WINO_LD(g1, w + (1 * 3 + j) * cf + cfi);                                               \
                WINO_LD(g2, w + (2 * 3 + j) * cf + cfi);                                               \
                q[0][j] = g0;                                                                          \
                q[1][j] = 0.5f * (g0 + g1 + g2);                                                       \
                q[2][j] = 0.5f * (g0 - g1 + g2);                                                       \
                q[3][j] = g2;                                                                          \
            }                                                                                          \
            for (int i = 0; i < 4; i++) { /* (G g) G^T */                                             \
                const VEC u0 = q[i][0], u1 = 0.5f * (q[i][0] + q[i][1] + q[i][2]);                     \
                const VEC u2 = 0.5f * (q[i][0] - q[i][1] + q[i][2]), u3 = q[i][2];                     \
                WINO_ST(U + (i * 4 + 0) * cf + cfi, u0);                                               \
                WINO_ST(U + (i * 4 + 1) * cf + cfi, u1);                                               \
                WINO_ST(U + (i * 4 + 2) * cf + cfi, u2);                                               \
                WINO_ST(U + (i * 4 + 3) * cf + cfi, u3);                                               \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
    /* V[xi * vstride + c] = (B^T d B)[xi] for the block whose 16 pixels start at p[0..16) */        \
    static inline __attribute__((always_inline)) void input_w##VW(float *V, size_t vstride,          \
                                                                  const float *const *p, int C)        \
    {                                                                                                  \
        for (int c = 0; c < C; c += VW) {                                                              \
            VEC d[4][4], t[4][4];                                                                      \
            for (int i = 0; i < 16; i++) WINO_LD(d[i / 4][i % 4], p[i] + c);                          \
            for (int j = 0; j < 4; j++) { /* B^T d */                                                  \
                t[0][j] = d[0][j] - d[2][j];                                                           \
                t[1][j] = d[1][j] + d[2][j];                                                           \
                t[2][j] = d[2][j] - d[1][j];                                                           \
                t[3][j] = d[1][j] - d[3][j];                                                           \
            }                                                                                          \
            for (int i = 0; i < 4; i++) { /* (B^T d) B */                                              \
                const VEC v0 = t[i][0] - t[i][2], v1 = t[i][1] + t[i][2];                              \
                const VEC v2 = t[i][2] - t[i][1], v3 = t[i][1] - t[i][3];                              \
                WINO_ST(V + (i * 4 + 0) * vstride + c, v0);                                            \
                WINO_ST(V + (i * 4 + 1) * vstride + c, v1);                                            \
                WINO_ST(V + (i * 4 + 2) * vstride + c, v2);                                            \
                WINO_ST(V + (i * 4 + 3) * vstride + c, v3);                                            \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
    /* the 2x2 block A^T m A from M[xi * mstride + f], plus bias and the activation, into the      \
     * pixels o[0..4) (those outside the output point at a sink) */                                  \
    static inline __attribute__((always_inline)) void output_w##VW(float *const *o, const float *M,  \
                                                                   size_t mstride, int F,              \
                                                                   const cv_epilogue *ep)              \
    {                                                                                                  \
        const float *bias = ep ? ep->bias : NULL;                                                      \
        const bool relu = ep && ep->relu;                                                              \
        const float leak = ep ? ep->leak : 0.0f;                                                       \
        for (int f = 0; f < F; f += VW) {                                                              \
            VEC m[4][4], s[2][4], y[4], b = {0};                                                       \
            for (int i = 0; i < 16; i++) WINO_LD(m[i / 4][i % 4], M + i * mstride + f);               \
            for (int j = 0; j < 4; j++) { /* A^T m */                                                  \
                s[0][j] = m[0][j] + m[1][j] + m[2][j];                                                 \
                s[1][j] = m[1][j] - m[2][j] - m[3][j];                                                 \
            }                                                                                          \
            for (int i = 0; i < 2; i++) { /* (A^T m) A */                                              \
                y[i * 2 + 0] = s[i][0] + s[i][1] + s[i][2];                                            \
                y[i * 2 + 1] = s[i][1] - s[i][2] - s[i][3];                                            \
            }                                                                                          \
            if (bias) WINO_LD(b, bias + f);                                                            \
            for (int k = 0; k < 4; k++) {                                                              \
                VEC v = y[k] + b;                                                                      \
                if (relu) { /* v > 0 ? v : leak v, as a bit select */                                  \
                    const __typeof__(v > 0) pos = v > 0;                                               \
                    const VEC neg = v * leak;                                                          \
                    v = (VEC)((pos & (__typeof__(pos))v) | (~pos & (__typeof__(pos))neg));             \
                }                                                                                      \
                WINO_ST(o[k] + f, v);                                                                  \
            }                                                                                          \
        }                                                                                              \
    }

WINO_BODIES(wv4, 4)
WINO_BODIES(wv8, 8)
WINO_BODIES(wv16, 16)

CV_ISA_CLONES3(wino_weights, (float *U, const float *w, int C, int F), weights_w4, weights_w8, weights_w16,
               (U, w, C, F))
CV_ISA_CLONES3(wino_input, (float *V, size_t vstride, const float *const *p, int C), input_w4, input_w8, input_w16,
               (V, vstride, p, C))
CV_ISA_CLONES3(wino_output, (float *const *o, const float *M, size_t mstride, int F, const cv_epilogue *ep),
               output_w4, output_w8, output_w16, (o, M, mstride, F, ep))

/* the blocks [t0, t0 + n) of the batch's T = B * per blocks (n <= the micro-kernel's height):
 * transform their inputs, the 16 products over the channels, the inverse transform; V and M
 * are the transformed inputs and products of these n blocks only, so they stay in L1 */
static void wino_chunk(float *out, const float *x, const float *U, const float *zeros, float *V, float *M,
                       float *sink, const cv_epilogue *ep, long t0, int n, int F, const cv_window *g,
                       wino_input_fn in, wino_output_fn outf)
{
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const int C = g->C, tx = (g->OW + 1) / 2, per = ((g->OH + 1) / 2) * tx, mr = u->mr, nr = u->nr;
    const size_t vs = (size_t)mr * C, ms = (size_t)mr * F;
    for (int i = 0; i < n; i++) {
        const long t = t0 + i;
        const int q = (int)(t % per), y0 = 2 * (q / tx), x0 = 2 * (q % tx);
        const float *xb = x + (size_t)(t / per) * g->H * g->W * C, *p[16];
        for (int k = 0; k < 16; k++) {
            const int y = y0 + k / 4, xx = x0 + k % 4;
            p[k] = y < g->H && xx < g->W ? xb + ((size_t)y * g->W + xx) * C : zeros;
        }
        in(V + (size_t)i * C, vs, p, C);
    }
    const float *at[MR_MAX];
    for (int xi = 0; xi < XI; xi++) {
        for (int i = 0; i < mr; i++) at[i] = V + xi * vs + (size_t)(i < n ? i : 0) * C; /* short: repeat */
        for (int f0 = 0; f0 < F; f0 += nr)
            u->fwd(at, 1, C, 0, U + (size_t)xi * C * F + f0, F, M + xi * ms + f0, F, n, nr, true, NULL);
    }
    for (int i = 0; i < n; i++) {
        const long t = t0 + i;
        const int q = (int)(t % per), y0 = 2 * (q / tx), x0 = 2 * (q % tx);
        float *ob = out + (size_t)(t / per) * g->OH * g->OW * F, *o[4];
        for (int k = 0; k < 4; k++) {
            const int y = y0 + k / 2, xx = x0 + k % 2;
            o[k] = y < g->OH && xx < g->OW ? ob + ((size_t)y * g->OW + xx) * F : sink;
        }
        outf(o, M + (size_t)i * F, ms, F, ep);
    }
}

int cv_conv_wino(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                 const cv_window *g)
{
    const int C = g->C;
    /* the transformed weights, then a row of C zeros for blocks past the edge */
    float *U = cv_scratch(CV_SCRATCH_WINOGRAD_W, sizeof(float) * ((size_t)XI * C * F + (size_t)C));
    if (!U) return -1;
    float *zeros = U + (size_t)XI * C * F;
    for (int c = 0; c < C; c++) zeros[c] = 0.0f;
    wino_weights_pick()(U, w, C, F);
    const cv_conv_ukernels *u = cv_conv_ukernels_get();
    const int mr = u->mr;
    const long T = (long)B * ((g->OH + 1) / 2) * ((g->OW + 1) / 2), chunks = (T + mr - 1) / mr;
    const wino_input_fn in = wino_input_pick();
    const wino_output_fn outf = wino_output_pick();
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (cv_conv_fork_worth(2.0 * B * g->OH * g->OW * F * 9.0 * C))
    {
        /* this thread's transformed inputs and products of one chunk, and a sink of F */
        float *V = cv_scratch(CV_SCRATCH_WINOGRAD, sizeof(float) * ((size_t)XI * mr * (C + F) + (size_t)F));
        if (!V) failed = 1;
#pragma omp for schedule(static)
        for (long k = 0; k < chunks; k++) {
            if (!V) continue;
            const long t0 = k * mr;
            wino_chunk(out, x, U, zeros, V, V + (size_t)XI * mr * C, V + (size_t)XI * mr * (C + F), ep, t0,
                       T - t0 < mr ? (int)(T - t0) : mr, F, g, in, outf);
        }
    }
    return failed ? -1 : 0;
}
