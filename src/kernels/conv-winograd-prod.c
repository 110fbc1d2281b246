/* Winograd F(4x4, 3x3)'s 36 products on AVX-512, without a micro-kernel call per product and
 * chunk (each pays the call, its row pointers and its accumulators' trip through memory for
 * only C steps), for conv-winograd.c's drivers. 16
 * channels into 16 filters (ResNet-20's first stage) would fill a quarter of the 32-wide tile,
 * and AVX2's 6 x 16 one stores after 16 steps: here a product's block of U (forward) or of
 * sums (weight gradient) lives in 16 of the 32 registers, loaded once. Each value is the same
 * fused multiply-adds in the same order as the tile's (from zero, over c or over the blocks),
 * so the bits are the tile's. Taken on AVX-512 only (the kernel cv_sgemm picked: not under
 * CONVOY_GEMM=avx2 or generic). */
#include <string.h>

#include "kernels/conv-winograd.h"
#include "kernels/isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* M[xi * ms + i * 16 + f] = sum over c of V[xi * vs + i * 16 + c] U[(xi * 16 + c) * 16 + f], the
 * chunk's n blocks six at a time (six chains of 16 hide the multiply-add's latency) */
__attribute__((target("avx512f"))) static void prod16_avx512(float *M, size_t ms, float *V, size_t vs,
                                                               const float *U, int n, int C, int F)
{
    (void)C, (void)F;
    for (int xi = 0; xi < XI; xi++) {
        wv16 u[16];
        for (int c = 0; c < 16; c++) WINO_LD(wv16u, u[c], U + ((size_t)xi * 16 + c) * 16);
        const float *v = V + xi * vs;
        float *m = M + xi * ms;
        int i = 0;
        for (; i + 6 <= n; i += 6) {
            wv16 acc[6] = {{0}};
            for (int c = 0; c < 16; c++)
                for (int r = 0; r < 6; r++) acc[r] += u[c] * v[(i + r) * 16 + c];
            for (int r = 0; r < 6; r++) WINO_ST(wv16u, m + (i + r) * 16, acc[r]);
        }
        for (; i < n; i++) {
            wv16 acc = {0};
            for (int c = 0; c < 16; c++) acc += u[c] * v[i * 16 + c];
            WINO_ST(wv16u, m + i * 16, acc);
        }
    }
}

/* F a multiple of 32, chunks of 12 blocks (a short one's rows past n copies of its first, as
 * the micro-kernel reads them): each product's 12 x 32 tiles as the micro-kernel computes
 * them, without its call, its row pointers and its accumulators' trip through memory */
__attribute__((target("avx512f"))) static void prod32_avx512(float *M, size_t ms, float *V, size_t vs,
                                                               const float *U, int n, int C, int F)
{
    for (int xi = 0; xi < XI; xi++) {
        float *v = V + xi * vs;
        for (int r = n; r < 12; r++) memcpy(v + (size_t)r * C, v, sizeof(float) * C);
        for (int f0 = 0; f0 < F; f0 += 32) {
            const float *u = U + (size_t)xi * C * F + f0;
            wv16 acc[12][2];
            for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = (wv16){0};
            for (int c = 0; c < C; c++) {
                wv16 u0, u1;
                WINO_LD(wv16u, u0, u + (size_t)c * F);
                WINO_LD(wv16u, u1, u + (size_t)c * F + 16);
                for (int r = 0; r < 12; r++) {
                    const float a = v[r * C + c];
                    acc[r][0] += u0 * a;
                    acc[r][1] += u1 * a;
                }
            }
            float *m = M + xi * ms + f0;
            for (int r = 0; r < 12; r++)
                if (r < n) {
                    WINO_ST(wv16u, m + (size_t)r * F, acc[r][0]);
                    WINO_ST(wv16u, m + (size_t)r * F + 16, acc[r][1]);
                }
        }
    }
}

/* one product of the weight gradient: M[c * 16 + f] (=, or += unless set) the sum over the m
 * blocks of V[i * vb + c] Z[i * zb + f] */
__attribute__((target("avx512f"))) static void dwprod16_avx512(float *M, const float *V, size_t vb, const float *Z,
                                                                 size_t zb, int m, bool set)
{
    wv16 acc[16] = {{0}};
    for (int i = 0; i < m; i++) {
        wv16 z;
        WINO_LD(wv16u, z, Z + i * zb);
        for (int c = 0; c < 16; c++) acc[c] += z * V[i * vb + c];
    }
    for (int c = 0; c < 16; c++) {
        wv16 t = acc[c];
        if (!set) {
            wv16 old;
            WINO_LD(wv16u, old, M + c * 16);
            t += old;
        }
        WINO_ST(wv16u, M + c * 16, t);
    }
}

/* a weight-gradient tile of MR (4, 8 or 12: a constant where it is inlined) channels x 32
 * filters at M (rows ldm apart): as the micro-kernel's, from zero over the m blocks, then
 * stored (set) or added. A pass holds few blocks where C is large (13 at 128 channels), so the
 * micro-kernel's call and its cleared, stored and reloaded accumulators weigh on every tile. */
static inline __attribute__((always_inline, target("avx512f"))) void
dwtile32_body(float *M, size_t ldm, const float *V, size_t vb, const float *Z, size_t zb, int m, bool set, const int MR)
{
    wv16 acc[12][2];
    for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = (wv16){0};
    for (int i = 0; i < m; i++) {
        wv16 z0, z1;
        WINO_LD(wv16u, z0, Z + i * zb);
        WINO_LD(wv16u, z1, Z + i * zb + 16);
        for (int r = 0; r < MR; r++) {
            const float a = V[i * vb + r];
            acc[r][0] += z0 * a;
            acc[r][1] += z1 * a;
        }
    }
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < 2; h++) {
            wv16 t = acc[r][h];
            if (!set) {
                wv16 old;
                WINO_LD(wv16u, old, M + r * ldm + 16 * h);
                t += old;
            }
            WINO_ST(wv16u, M + r * ldm + 16 * h, t);
        }
}

/* ... for the tile's rows channels (a short last one: a third or two thirds of 12, as the
 * micro-kernel runs it) */
__attribute__((target("avx512f"))) static void dwtile32_avx512(float *M, size_t ldm, const float *V, size_t vb,
                                                                 const float *Z, size_t zb, int m, bool set, int rows)
{
    if (rows <= 4) dwtile32_body(M, ldm, V, vb, Z, zb, m, set, 4);
    else if (rows <= 8) dwtile32_body(M, ldm, V, vb, Z, zb, m, set, 8);
    else dwtile32_body(M, ldm, V, vb, Z, zb, m, set, 12);
}
#define WINO_PROD16 prod16_avx512
#define WINO_PROD32 prod32_avx512
#define WINO_DWTILE32 dwtile32_avx512
#define WINO_DWPROD16 dwprod16_avx512
#else
#define WINO_PROD16 NULL
#define WINO_PROD32 NULL
#define WINO_DWTILE32 NULL
#define WINO_DWPROD16 NULL
#endif

/* whether the 16 x 16 ones run: 16 channels, 16 filters, AVX-512 */
static bool wino_sixteen(int C, int F) { return C == 16 && F == 16 && strcmp(cv_gemm_path(), "avx512") == 0; }

wino_prod_fn cv_wino_prod(int C, int F, int mr)
{
    if (wino_sixteen(C, F)) return WINO_PROD16;
    return strcmp(cv_gemm_path(), "avx512") == 0 && F % 32 == 0 && mr == 12 ? WINO_PROD32 : NULL;
}

/* 16 x 16: chunks of 24 blocks (prod16 keeps a product's U in registers across them; 64 x
 * 32x32x16 -> 16, best of 4: forward 1.61 ms at 6 blocks, 1.50 at 24, 1.49 at 36) */
int cv_wino_chunk(int C, int F, int mr) { return wino_sixteen(C, F) && cv_wino_prod(C, F, mr) ? 24 : mr; }

wino_dwprod_fn cv_wino_dwprod(int C, int F) { return wino_sixteen(C, F) ? WINO_DWPROD16 : NULL; }

wino_dwtile_fn cv_wino_dwtile(int F, int mr, int nr)
{
    return strcmp(cv_gemm_path(), "avx512") == 0 && F % 32 == 0 && mr == 12 && nr == 32 ? WINO_DWTILE32 : NULL;
}
