/* SGEMM: A and B are packed into MR-row / NR-column panels per KC-deep slice, and a 6x16
 * register-blocked micro-kernel (GCC vector extensions, cloned for AVX2+FMA at run time)
 * computes each C tile. Each C tile belongs to one thread and K is walked in a fixed order,
 * so results do not depend on the thread count. */
#include "convoy/kernels.h"

#include <stdlib.h>
#include <string.h>

enum { MR = 6, NR = 16, KC = 256, NC = 1024 };

typedef float v8 __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__)
#define CV_X86 1
#endif

/* Packing buffers grow once and are reused: GEMM runs every layer of every step. One set per
 * calling thread, so concurrent callers do not share them. */
static _Thread_local float *pack_a, *pack_b;
static _Thread_local size_t pack_a_cap, pack_b_cap;

static float *grow(float **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        free(*buf);
        *buf = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
        *cap = *buf ? n : 0;
    }
    return *buf;
}

static inline float elem(const float *X, int ld, bool trans, int r, int c)
{
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* op(A)[0..M, pc..pc+kc) * alpha -> panels of MR rows, k-major inside a panel, zero-padded.
 * Each case walks its source contiguously. */
static void pack_A(float *dst, const float *A, int lda, bool transA, int M, int pc, int kc, float alpha)
{
    const int panels = (M + MR - 1) / MR;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * MR * kc;
        const int r0 = p * MR, rows = M - r0 < MR ? M - r0 : MR;
        if (!transA) {
            for (int i = 0; i < MR; i++) {
                const float *src = A + (size_t)(r0 + i) * lda + pc;
                if (i < rows)
                    for (int k = 0; k < kc; k++) d[k * MR + i] = alpha * src[k];
                else
                    for (int k = 0; k < kc; k++) d[k * MR + i] = 0.0f;
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(pc + k) * lda + r0;
                for (int i = 0; i < MR; i++) d[k * MR + i] = i < rows ? alpha * src[i] : 0.0f;
            }
        }
    }
}

/* op(B)[pc..pc+kc, jc..jc+nc) -> panels of NR columns, k-major inside a panel, zero-padded. */
static void pack_B(float *dst, const float *B, int ldb, bool transB, int jc, int nc, int pc, int kc)
{
    const int panels = (nc + NR - 1) / NR;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * NR * kc;
        const int c0 = jc + p * NR, cols = nc - p * NR < NR ? nc - p * NR : NR;
        if (!transB) {
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(pc + k) * ldb + c0;
                for (int j = 0; j < NR; j++) d[k * NR + j] = j < cols ? src[j] : 0.0f;
            }
        } else {
            for (int j = 0; j < NR; j++) {
                const float *src = B + (size_t)(c0 + j) * ldb + pc;
                if (j < cols)
                    for (int k = 0; k < kc; k++) d[k * NR + j] = src[k];
                else
                    for (int k = 0; k < kc; k++) d[k * NR + j] = 0.0f;
            }
        }
    }
}

static inline __attribute__((always_inline)) void
micro_kernel(int kc, const float *restrict pa, const float *restrict pb, float *restrict c, int ldc,
             int mr, int nr)
{
    v8 acc[MR][2];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        const v8 b0 = *(const v8 *)pb, b1 = *(const v8 *)(pb + 8);
        for (int i = 0; i < MR; i++) {
            acc[i][0] += b0 * pa[i];
            acc[i][1] += b1 * pa[i];
        }
        pa += MR;
        pb += NR;
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            v8 c0, c1;
            memcpy(&c0, c + (size_t)i * ldc, sizeof c0);
            memcpy(&c1, c + (size_t)i * ldc + 8, sizeof c1);
            c0 += acc[i][0];
            c1 += acc[i][1];
            memcpy(c + (size_t)i * ldc, &c0, sizeof c0);
            memcpy(c + (size_t)i * ldc + 8, &c1, sizeof c1);
        }
    } else {
        float t[MR][NR];
        memcpy(t, acc, sizeof t);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) c[(size_t)i * ldc + j] += t[i][j];
    }
}

/* The micro-kernel compiled twice, for AVX2+FMA and for the baseline ISA, picked at run time.
 * (OpenMP outlines parallel regions before inlining, so the parallel loop stays outside.) */
#ifdef CV_X86
__attribute__((target("avx2,fma"))) static void
tile_avx2(int kc, const float *pa, const float *pb, float *c, int ldc, int mr, int nr)
{
    micro_kernel(kc, pa, pb, c, ldc, mr, nr);
}
#endif

static void tile_generic(int kc, const float *pa, const float *pb, float *c, int ldc, int mr, int nr)
{
    micro_kernel(kc, pa, pb, c, ldc, mr, nr);
}

typedef void (*tile_fn)(int, const float *, const float *, float *, int, int, int);

static tile_fn pick_tile(void)
{
#ifdef CV_X86
    const char *force = getenv("CONVOY_GEMM");
    if (!(force && strcmp(force, "generic") == 0) && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return tile_avx2;
#endif
    return tile_generic;
}

const char *cv_sgemm_kernel(void)
{
#ifdef CV_X86
    if (pick_tile() == tile_avx2) return "avx2+fma";
#endif
    return "generic";
}

static void tiles(tile_fn tile, int M, int nc, int kc, const float *pa, const float *pb, float *C, int ldc)
{
    const int mp = (M + MR - 1) / MR, np = (nc + NR - 1) / NR;
    const long ntiles = (long)mp * np;
    /* j-panel outer, i-panel inner: a thread's consecutive tiles reuse one B panel from cache */
#pragma omp parallel for schedule(static)
    for (long t = 0; t < ntiles; t++) {
        const int jp = (int)(t / mp), ip = (int)(t % mp);
        const int mr = M - ip * MR < MR ? M - ip * MR : MR;
        const int nr = nc - jp * NR < NR ? nc - jp * NR : NR;
        tile(kc, pa + (size_t)ip * MR * kc, pb + (size_t)jp * NR * kc,
             C + (size_t)ip * MR * ldc + (size_t)jp * NR, ldc, mr, nr);
    }
}

static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    if (beta == 1.0f) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

/* The blocked product, C += alpha op(A) op(B) (C already scaled by beta). */
static void blocked(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc)
{
    const int mpad = (M + MR - 1) / MR * MR;
    const int kcmax = K < KC ? K : KC;
    const int ncmax = N < NC ? N : NC;
    float *pa = grow(&pack_a, &pack_a_cap, (size_t)mpad * kcmax);
    float *pb = grow(&pack_b, &pack_b_cap, (size_t)(ncmax + NR - 1) / NR * NR * kcmax);
    if (!pa || !pb) { /* out of memory for packing: the reference path needs none */
        cv_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
        return;
    }
    static tile_fn tile;
    if (!tile) tile = pick_tile(); /* a benign race: every caller picks the same */
    for (int jc = 0; jc < N; jc += NC) {
        const int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = K - pc < KC ? K - pc : KC;
            pack_B(pb, B, ldb, transB, jc, nc, pc, kc);
            pack_A(pa, A, lda, transA, M, pc, kc, alpha);
            tiles(tile, M, nc, kc, pa, pb, C + jc, ldc);
        }
    }
}

/* Few output tiles but a long K (weight gradients: C (K_conv, F) summed over every pixel of the
 * batch): the K range is cut into fixed slices computed in parallel into their own buffers and
 * added in slice order. The slices do not depend on the thread count, so neither does C. */
enum { SPLIT_K = 2048 };

static bool split_k(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc)
{
    const int tiles_mn = ((M + MR - 1) / MR) * ((N + NR - 1) / NR);
    if (tiles_mn >= 16 || K < 2 * SPLIT_K) return false;
    const int slices = (K + SPLIT_K - 1) / SPLIT_K;
    float *part = malloc(sizeof(float) * (size_t)slices * M * N);
    if (!part) return false;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < slices; s++) {
        const int k0 = s * SPLIT_K, kn = K - k0 < SPLIT_K ? K - k0 : SPLIT_K;
        float *Cs = part + (size_t)s * M * N;
        memset(Cs, 0, sizeof(float) * (size_t)M * N);
        /* nested regions inside run on this thread alone */
        blocked(transA, transB, M, N, kn, alpha, transA ? A + (size_t)k0 * lda : A + k0, lda,
                transB ? B + k0 : B + (size_t)k0 * ldb, ldb, Cs, N);
    }
    for (int s = 0; s < slices; s++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += part[((size_t)s * M + i) * N + j];
    free(part);
    return true;
}

/* A short K (a first conv layer: K = KH*KW*Cin = 9): packing would cost more than the product,
 * so each row of C is built directly as a sum of K scaled rows of B. */
static void small_k(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int k = 0; k < K; k++) {
            const float a = alpha * A[(size_t)i * lda + k];
            const float *b = B + (size_t)k * ldb;
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
}

void cv_sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    scale_c(M, N, beta, C, ldc);
    if (K <= 0 || alpha == 0.0f) return;
    if (!transA && !transB && K <= 16) {
        small_k(M, N, K, alpha, A, lda, B, ldb, C, ldc);
        return;
    }
    if (split_k(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc)) return;
    blocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc);
}

void cv_sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)elem(A, lda, transA, i, k) * elem(B, ldb, transB, k, j);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}
