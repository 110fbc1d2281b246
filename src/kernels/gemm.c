/* SGEMM: A and B are packed into mr-row / nr-column panels per KC-deep slice, and a
 * register-blocked micro-kernel (GCC vector extensions; 12x32 for AVX-512, 6x16 for AVX2+FMA,
 * 6x8 on 128-bit vectors otherwise, picked at run time) computes each C tile. Each C tile belongs to one thread and K is walked in a fixed order,
 * so results do not depend on the thread count. */
#include "convoy/kernels.h"
#include "kernels/conv-ukernels.h"
#include "kernels/gemm-impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

enum { KC = 384, NC = 1024 }; /* a packed B block of at most KC x NC floats (1.5 MB) stays in L2 */
enum { B_DIRECT_MAX_M = 512 }; /* products of at most this many rows read B in place (see blocked) */

/* Whether a product reads op(B) in place rather than packing it (blocked's rule, save that the
 * column block must also be whole nr-wide panels) */
static inline bool b_in_place(bool transB, int M, int ldb)
{
    return !transB && M <= B_DIRECT_MAX_M && ldb % 1024 != 0;
}

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

#if defined(__x86_64__) && defined(__GNUC__)
#define CV_X86 1
#endif

/* Scratch buffers grow once and are reused: GEMM runs every layer of every step. One set per
 * calling thread, so concurrent callers do not share them, freed when the thread ends (OpenMP
 * ends worker threads when a parallel region asks for fewer than the last one had). */
typedef struct {
    void *buf[CV_SCRATCH_COUNT];
    size_t cap[CV_SCRATCH_COUNT];
} scratch_set;

static _Thread_local scratch_set *scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    scratch_set *s = p;
    for (int i = 0; i < CV_SCRATCH_COUNT; i++) free(s->buf[i]);
    free(s);
}

static void scratch_key_make(void) { pthread_key_create(&scratch_key, scratch_release); }

void *cv_scratch(cv_scratch_slot slot, size_t bytes)
{
    if (!scratch) {
        pthread_once(&scratch_once, scratch_key_make);
        if (!(scratch = calloc(1, sizeof *scratch))) return NULL;
        pthread_setspecific(scratch_key, scratch);
    }
    if (bytes > scratch->cap[slot]) {
        free(scratch->buf[slot]);
        scratch->buf[slot] = aligned_alloc(64, (bytes + 63) / 64 * 64);
        scratch->cap[slot] = scratch->buf[slot] ? bytes : 0;
    }
    return scratch->buf[slot];
}

/* ---- micro-kernels: one per instruction set, the same arithmetic in the same order ---------- */

/* baseline: 128-bit vectors, which every x86-64 (SSE2) and most other CPUs have natively */
#define TILE_NAME tile_generic
#define TILE_CONV_NAME conv_generic
#define TILE_CONV_DW_NAME conv_dw_generic
#define TILE_BODY tile_generic_body
#define TILE_VEC v4
#define TILE_VW 4
#define TILE_MR 6
#define TILE_NR 8
#define TILE_TARGET
#include "kernels/gemm-tile.h"

#ifdef CV_X86
/* AVX2+FMA: 6 x 16 = 12 ymm accumulators */
#define TILE_NAME tile_avx2
#define TILE_CONV_NAME conv_avx2
#define TILE_CONV_DW_NAME conv_dw_avx2
#define TILE_BODY tile_avx2_body
#define TILE_VEC v8
#define TILE_VW 8
#define TILE_MR 6
#define TILE_NR 16
#define TILE_TARGET __attribute__((target("avx2,fma")))
#include "kernels/gemm-tile.h"

/* AVX-512F: 12 x 32 = 24 zmm accumulators (of 32 registers) */
#define TILE_NAME tile_avx512
#define TILE_CONV_NAME conv_avx512
#define TILE_CONV_DW_NAME conv_dw_avx512
#define TILE_BODY tile_avx512_body
#define TILE_VEC v16
#define TILE_VW 16
#define TILE_MR 12
#define TILE_NR 32
#define TILE_TARGET __attribute__((target("avx512f")))
#include "kernels/gemm-tile.h"
#endif

typedef void (*tile_fn)(int, const float *, int, int, const float *, int, float *, int, int, int, bool,
                        const cv_epilogue *);
typedef struct {
    const char *name;
    tile_fn fn;
    int mr, nr;
    cv_conv_ukernels conv;
} gemm_kernel;

/* an instruction set's GEMM micro-kernel and its convolution twins, which share its tile */
#define GEMM_KERNEL(ISA, MR, NR) {#ISA, tile_##ISA, MR, NR, {MR, NR, conv_##ISA, conv_dw_##ISA}}
static const gemm_kernel kernel_generic = GEMM_KERNEL(generic, 6, 8);
#ifdef CV_X86
static const gemm_kernel kernel_avx2 = GEMM_KERNEL(avx2, 6, 16);
static const gemm_kernel kernel_avx512 = GEMM_KERNEL(avx512, 12, 32);
#endif
#undef GEMM_KERNEL

/* The widest kernel this CPU runs; CONVOY_GEMM=generic|avx2|avx512 asks for a narrower one
 * (a wider one than the CPU has is not granted). Chosen once per process. */
static const gemm_kernel *pick_kernel(void)
{
    const char *force = getenv("CONVOY_GEMM");
    if (force && strcmp(force, "generic") == 0) return &kernel_generic;
#ifdef CV_X86
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
    if (avx512 && !(force && strcmp(force, "avx2") == 0)) return &kernel_avx512;
    if (avx2) return &kernel_avx2;
#endif
    return &kernel_generic;
}

static const gemm_kernel *kernel(void)
{
    static const gemm_kernel *k;
    if (!k) k = pick_kernel(); /* a benign race: every caller picks the same */
    return k;
}

const cv_conv_ukernels *cv_conv_ukernels_get(void) { return &kernel()->conv; }

cv_gemm_tile cv_gemm_tile_get(void) { return (cv_gemm_tile){kernel()->mr, kernel()->nr, kernel()->fn}; }

const cv_conv_ukernels *cv_conv_ukernels_for(int F)
{
    const gemm_kernel *k = kernel();
#ifdef CV_X86
    /* 16 filters on AVX-512: the 32-wide tile would leave half its columns idle; AVX2's 16-wide
     * one (the same fused multiply-adds in the same order) fits them */
    if (F % k->nr != 0 && k == &kernel_avx512 && F % kernel_avx2.nr == 0) return &kernel_avx2.conv;
#endif
    (void)F;
    return &k->conv;
}

#ifdef CONVOY_BLAS_OPENBLAS
const char *cv_gemm_path(void) { return "openblas"; }
#else
const char *cv_gemm_path(void) { return kernel()->name; }
#endif

/* op(A)[0..M, pc..pc+kc) * alpha -> panels of mr rows, k-major inside a panel, zero-padded.
 * Each case walks its source contiguously. */
static void pack_A(float *dst, const float *A, int lda, bool transA, int M, int pc, int kc, float alpha, int mr,
                   bool par)
{
    const int panels = (M + mr - 1) / mr;
#pragma omp parallel for schedule(static) if (par)
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * mr * kc;
        const int r0 = p * mr, rows = M - r0 < mr ? M - r0 : mr;
        if (!transA) {
            for (int i = 0; i < mr; i++) {
                const float *src = A + (size_t)(r0 + i) * lda + pc;
                if (i < rows)
                    for (int k = 0; k < kc; k++) d[k * mr + i] = alpha * src[k];
                else
                    for (int k = 0; k < kc; k++) d[k * mr + i] = 0.0f;
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(pc + k) * lda + r0;
                for (int i = 0; i < mr; i++) d[k * mr + i] = i < rows ? alpha * src[i] : 0.0f;
            }
        }
    }
}

/* n floats from s to d, n one of the micro-kernels' nr: a copy of a size known here is a few
 * vector moves (memcpy of a run-time size is a library call, for every k of every panel) */
static inline void copy_nr(float *restrict d, const float *restrict s, int n)
{
    switch (n) {
    case 32: memcpy(d, s, 32 * sizeof(float)); break;
    case 16: memcpy(d, s, 16 * sizeof(float)); break;
    case 8: memcpy(d, s, 8 * sizeof(float)); break;
    default: memcpy(d, s, (size_t)n * sizeof(float)); break;
    }
}

/* op(B)[pc..pc+kc, c0..c0+cols) of a transposed B -> one panel d of nr columns, zero-padded */
static void pack_Bt_panel(float *restrict d, const float *B, int ldb, int c0, int cols, int pc, int kc, int nr)
{
    if (cols == nr) {
        /* 4 x 4 blocks, transposed in registers where SSE is there (every x86-64), else 8 k at a
         * time from each source row. 16 k (a cache line of each of the panel's source rows) are
         * taken at once: rows a multiple of 4 KiB apart share the L1 cache's sets, and a line
         * left for the next k would be gone by then. */
        int k = 0;
#ifdef __SSE__
        for (; k + 4 <= kc; k += 16) {
            const int kn = kc - k >= 16 ? 16 : (kc - k) / 4 * 4;
            for (int j = 0; j < nr; j += 4)
                for (int q = k; q < k + kn; q += 4) {
                    const float *src = B + (size_t)(c0 + j) * ldb + pc + q;
                    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ldb),
                           r2 = _mm_loadu_ps(src + 2 * (size_t)ldb), r3 = _mm_loadu_ps(src + 3 * (size_t)ldb);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                    float *dk = d + (size_t)q * nr + j;
                    _mm_storeu_ps(dk, r0);
                    _mm_storeu_ps(dk + nr, r1);
                    _mm_storeu_ps(dk + 2 * nr, r2);
                    _mm_storeu_ps(dk + 3 * nr, r3);
                }
            if (kn < 16) {
                k += kn;
                break;
            }
        }
#else
        for (; k + 8 <= kc; k += 8)
            for (int j = 0; j < nr; j++) {
                const float *src = B + (size_t)(c0 + j) * ldb + pc + k;
                float *dk = d + (size_t)k * nr + j;
                for (int q = 0; q < 8; q++) dk[q * nr] = src[q];
            }
#endif
        for (; k < kc; k++)
            for (int j = 0; j < nr; j++) d[k * nr + j] = B[(size_t)(c0 + j) * ldb + pc + k];
        return;
    }
    for (int j = 0; j < nr; j++) {
        const float *src = B + (size_t)(c0 + j) * ldb + pc;
        if (j < cols)
            for (int k = 0; k < kc; k++) d[k * nr + j] = src[k];
        else
            for (int k = 0; k < kc; k++) d[k * nr + j] = 0.0f;
    }
}

enum { PACK_GROUP = 8 }; /* panels packed together from each source row (see pack_B) */

/* op(B)[pc..pc+kc, jc..jc+nc) -> panels of nr columns, k-major inside a panel, zero-padded.
 * Untransposed, a group of panels is packed row by row of B: each row's run of 8 nr floats is
 * read front to back, where a panel at a time would jump a row stride (often more than a page,
 * past the hardware prefetchers) for every k of every panel. */
static void pack_B(float *dst, const float *B, int ldb, bool transB, int jc, int nc, int pc, int kc, int nr,
                   bool par)
{
    const int panels = (nc + nr - 1) / nr, groups = (panels + PACK_GROUP - 1) / PACK_GROUP;
#pragma omp parallel for schedule(static) if (par)
    for (int gr = 0; gr < groups; gr++) {
        const int p0 = gr * PACK_GROUP, p1 = p0 + PACK_GROUP < panels ? p0 + PACK_GROUP : panels;
        if (transB) {
            for (int p = p0; p < p1; p++)
                pack_Bt_panel(dst + (size_t)p * nr * kc, B, ldb, jc + p * nr, nc - p * nr < nr ? nc - p * nr : nr,
                              pc, kc, nr);
            continue;
        }
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(pc + k) * ldb + jc;
            for (int p = p0; p < p1; p++) {
                float *d = dst + (size_t)p * nr * kc + (size_t)k * nr;
                const int cols = nc - p * nr < nr ? nc - p * nr : nr;
                if (cols == nr) {
                    copy_nr(d, src + p * nr, nr);
                    continue;
                }
                for (int j = 0; j < nr; j++) d[j] = j < cols ? src[p * nr + j] : 0.0f;
            }
        }
    }
}

/* Where tile (ip, .) of op(A) starts and how it is strided: the packed panel, or A in place. */
/* The epilogue on rows x cols of C, applied by whichever thread finished that block. */
static inline void epilogue(float *C, int ldc, int rows, int cols, const cv_epilogue *ep)
{
    for (int i = 0; i < rows; i++) {
        float *c = C + (size_t)i * ldc;
        if (ep->bias)
            for (int j = 0; j < cols; j++) c[j] += ep->bias[j];
        if (ep->relu)
            for (int j = 0; j < cols; j++) { /* both computed, then selected: no branch per element */
                const float v = c[j], w = ep->leak * v;
                c[j] = v > 0.0f ? v : w;
            }
    }
}

typedef struct {
    const float *packed; /* all panels packed (direct == NULL), or only the last partial one */
    const float *direct; /* A itself, offset to column pc of op(A); NULL when packed */
    int lda, full;       /* full: panels read in place; later ones come from `packed` */
    bool transA;
} a_panels;

/* ep: the epilogue when this is the last K slice, else NULL; bias is indexed from column 0 of C.
 * B's panels are packed (ldb 0) or B itself, read in place (row stride ldb). */
static void tiles(const gemm_kernel *g, int M, int nc, int kc, const a_panels *a, const float *pb, int ldb, float *C,
                  int ldc, bool set, const cv_epilogue *ep, bool par)
{
    const int mr = g->mr, nr = g->nr;
    const int mp = (M + mr - 1) / mr, np = (nc + nr - 1) / nr;
    const long ntiles = (long)mp * np;
    /* The larger operand is walked once: its panel stays in L1 while the smaller one's panels
     * (all of which fit in L2) pass by. Tall inputs (conv: M = pixels) put i outer. */
    const bool i_outer = (size_t)mp * mr > (size_t)np * nr;
#pragma omp parallel for schedule(static) if (par)
    for (long t = 0; t < ntiles; t++) {
        const int ip = i_outer ? (int)(t / np) : (int)(t % mp);
        const int jp = i_outer ? (int)(t % np) : (int)(t / mp);
        const int rows = M - ip * mr < mr ? M - ip * mr : mr;
        const int cols = nc - jp * nr < nr ? nc - jp * nr : nr;
        const float *pa;
        int sk = mr, si = 1;
        if (a->direct && ip < a->full) {
            pa = a->direct + (size_t)ip * mr * (a->transA ? 1 : (size_t)a->lda);
            if (a->transA) sk = a->lda;
            else sk = 1, si = a->lda;
        } else {
            pa = a->packed + (size_t)(ip - (a->direct ? a->full : 0)) * mr * kc;
        }
        const cv_epilogue e = {ep && ep->bias ? ep->bias + jp * nr : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
        g->fn(kc, pa, sk, si, pb + (size_t)jp * nr * (ldb ? 1 : (size_t)kc), ldb ? ldb : nr,
              C + (size_t)ip * mr * ldc + (size_t)jp * nr, ldc, rows, cols, set, ep ? &e : NULL);
    }
}

static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    if (beta == 1.0f) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

/* The blocked product, C += alpha op(A) op(B) (C already scaled by beta), or C = that when
 * set (beta 0: C is never read, so it need not be cleared first). K is cut into equal
 * slices of at most KC (288 stays one slice, not 256 + 32). With alpha = 1 the micro-kernel
 * reads A's full panels in place (packing a tall im2col matrix would cost as much as the
 * product); only B, and A's last partial panel, are packed. B is read in place too when the
 * product has few rows (a dense layer's batch: packing would cost a good part of the product
 * for every call, and a dense layer's weights are the largest operand) and its panels are
 * whole and do not alias in L1. */
static void blocked(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc, bool set, const cv_epilogue *ep, bool par)
{
    const gemm_kernel *g = kernel();
    const int mr = g->mr, nr = g->nr;
    const int kslices = (K + KC - 1) / KC;
    const int kcmax = (K + kslices - 1) / kslices;
    const int nslices = (N + NC - 1) / NC; /* equal column blocks, as for K */
    const int ncmax = (N + nslices - 1) / nslices;
    /* in place only when the rows do not alias in the L1 cache (a stride of 4 KiB multiples maps
     * all the panel's rows to one cache set): such A is packed */
    const bool direct = alpha == 1.0f && lda % 1024 != 0;
    const int full = direct ? M / mr : 0;
    const int packed_rows = M - full * mr;
    float *pa = cv_scratch(CV_SCRATCH_PACK_A, sizeof(float) * ((size_t)(packed_rows + mr - 1) / mr * mr * kcmax + 1));
    float *pb = cv_scratch(CV_SCRATCH_PACK_B, sizeof(float) * (size_t)(ncmax + nr - 1) / nr * nr * kcmax);
    if (!pa || !pb) { /* out of memory for packing: the reference path needs none */
        cv_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, set ? 0.0f : 1.0f, C, ldc);
        if (ep) epilogue(C, ldc, M, N, ep);
        return;
    }
    /* the rows left to pack start at row full * mr of op(A) */
    const float *rest = A + (size_t)full * mr * (transA ? 1 : (size_t)lda);
    for (int jc = 0; jc < N; jc += ncmax) {
        const int nc = N - jc < ncmax ? N - jc : ncmax;
        const bool b_direct = b_in_place(transB, M, ldb) && nc % nr == 0;
        for (int pc = 0; pc < K; pc += kcmax) {
            const int kc = K - pc < kcmax ? K - pc : kcmax;
            if (!b_direct) pack_B(pb, B, ldb, transB, jc, nc, pc, kc, nr, par);
            if (packed_rows) pack_A(pa, rest, lda, transA, packed_rows, pc, kc, alpha, mr, par);
            const a_panels a = {pa, direct ? A + (size_t)pc * (transA ? (size_t)lda : 1) : NULL, lda, full, transA};
            const cv_epilogue e = {ep && ep->bias ? ep->bias + jc : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
            tiles(g, M, nc, kc, &a, b_direct ? B + (size_t)pc * ldb + jc : pb, b_direct ? ldb : 0, C + jc, ldc,
                  set && pc == 0, ep && pc + kc >= K ? &e : NULL, par);
        }
    }
}

/* Threads for a product of mp x np tiles, cut into tr row blocks x tc column blocks (tr * tc <=
 * threads): the cut whose largest block has the fewest tiles; among those, the fewest row blocks,
 * then the fewest threads. */
static void thread_grid(int mp, int np, int threads, int *tr, int *tc)
{
    long best = -1;
    for (int r = 1; r <= threads && r <= mp; r++)
        for (int c = 1; r * c <= threads && c <= np; c++) {
            const long most = (long)((mp + r - 1) / r) * ((np + c - 1) / c);
            if (best < 0 || most < best) best = most, *tr = r, *tc = c;
        }
}

/* The blocked product on the available threads. A product with few row panels (a dense layer's
 * batch of 64 rows) is cut into blocks of whole tiles instead, one per thread, each running the
 * whole K walk with no barrier between K slices: by columns when there are enough column panels;
 * when there are few of both (fmnist-cnn's dense layer, 6 x 4 tiles, on 16 threads) by rows and
 * columns, if B is read in place (a row block packs no copy of B). Otherwise the threads share
 * each K slice's tiles, with a barrier per slice; a small product runs on one thread. Either way
 * each C tile's sum runs in the same order, so the thread count changes nothing. */
static void blocked_on_threads(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float *C, int ldc, bool set, const cv_epilogue *ep)
{
    const gemm_kernel *g = kernel();
    const int mp = (M + g->mr - 1) / g->mr, np = (N + g->nr - 1) / g->nr;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
    if (threads == 1 || 2.0 * M * N * K < 2e6) { /* one thread: no fork, no barriers */
        blocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc, set, ep, false);
        return;
    }
    int tr = 1, tc = threads;
    if (mp >= 4 * threads || (np < 2 * threads && !b_in_place(transB, M, ldb))) {
        blocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc, set, ep, true);
        return;
    }
    if (np < 2 * threads) thread_grid(mp, np, threads, &tr, &tc);
#pragma omp parallel num_threads(tr * tc)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        const int bi = t / tc, bj = t % tc;
        const int p0 = (int)((long)mp * bi / tr), p1 = (int)((long)mp * (bi + 1) / tr);
        const int q0 = (int)((long)np * bj / tc), q1 = (int)((long)np * (bj + 1) / tc);
        const int i0 = p0 * g->mr, i1 = p1 * g->mr < M ? p1 * g->mr : M;
        const int j0 = q0 * g->nr, j1 = q1 * g->nr < N ? q1 * g->nr : N;
        if (i1 > i0 && j1 > j0) {
            const cv_epilogue e = {ep && ep->bias ? ep->bias + j0 : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
            blocked(transA, transB, i1 - i0, j1 - j0, K, alpha, transA ? A + i0 : A + (size_t)i0 * lda, lda,
                    transB ? B + (size_t)j0 * ldb : B + j0, ldb, C + (size_t)i0 * ldc + j0, ldc, set,
                    ep ? &e : NULL, false);
        }
    }
}

/* Few output tiles but a long K (weight gradients: C (K_conv, F) summed over every pixel of the
 * batch): the K range is cut into fixed slices computed in parallel into their own buffers and
 * added in slice order. The slices do not depend on the thread count, so neither does C. */
enum { SPLIT_K = 2048 };

static bool use_split_k(int M, int N, int K)
{
    const int tiles_mn = ((M + kernel()->mr - 1) / kernel()->mr) * ((N + kernel()->nr - 1) / kernel()->nr);
    return tiles_mn < 16 && K >= 2 * SPLIT_K;
}

/* false when its buffer cannot be had (the caller then runs the plain blocked product) */
static bool split_k(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float *C, int ldc)
{
    const int slices = (K + SPLIT_K - 1) / SPLIT_K;
    float *part = cv_scratch(CV_SCRATCH_SPLIT_K, sizeof(float) * (size_t)slices * M * N);
    if (!part) return false;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < slices; s++) {
        const int k0 = s * SPLIT_K, kn = K - k0 < SPLIT_K ? K - k0 : SPLIT_K;
        float *Cs = part + (size_t)s * M * N;
        blocked(transA, transB, M, N, kn, alpha, transA ? A + (size_t)k0 * lda : A + k0, lda,
                transB ? B + k0 : B + (size_t)k0 * ldb, ldb, Cs, N, true, NULL, false);
    }
    for (int s = 0; s < slices; s++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += part[((size_t)s * M + i) * N + j];
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

#ifdef CONVOY_BLAS_OPENBLAS
/* The comparison build (-DCONVOY_BLAS=openblas): the product is OpenBLAS's, on as many threads
 * as OpenMP would use; its sums are not fixed in order, so results may change with threads. */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void openblas_gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc)
{
#ifdef _OPENMP
    openblas_set_num_threads(omp_in_parallel() ? 1 : omp_get_max_threads());
#endif
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

void cv_sgemm_ep(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const cv_epilogue *ep)
{
    if (M <= 0 || N <= 0) return;
#ifdef CONVOY_BLAS_OPENBLAS
    if (K > 0 && alpha != 0.0f) {
        openblas_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (ep) epilogue(C, ldc, M, N, ep);
        return;
    }
#endif
    const bool work = K > 0 && alpha != 0.0f;
    const bool small = !transA && !transB && K <= 16;
    if (work && !small && !use_split_k(M, N, K)) {
        if (beta != 0.0f) scale_c(M, N, beta, C, ldc);
        blocked_on_threads(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc, beta == 0.0f, ep);
        return; /* the epilogue ran tile by tile */
    }
    scale_c(M, N, beta, C, ldc);
    if (work && small) small_k(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    else if (work && !split_k(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc))
        blocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, C, ldc, false, NULL, true);
    if (ep) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) epilogue(C + (size_t)i * ldc, ldc, 1, N, ep);
    }
}

void cv_sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    cv_sgemm_ep(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void cv_sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)cv_gemm_elem(A, lda, transA, i, k) * cv_gemm_elem(B, ldb, transB, k, j);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}
