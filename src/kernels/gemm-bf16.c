/* The bfloat16 GEMM of --precision bf16 (cv_bgemm_ep): fp32 operands rounded to bf16 as they
 * are packed, products summed in fp32 a pair at a time. With AVX512_BF16 a 12 x 32 tile of
 * VDPBF16PS (24 zmm accumulators, two products per lane per instruction: twice the fp32 FMA's
 * work); without it, cv_sgemm's own micro-kernel on fp32 panels holding the rounded values with
 * each pair's two k swapped, which makes the same roundings in the same order (the hardware adds
 * the odd k's product first). The blocking: K in slices of at most CV_BGEMM_KC, N in blocks of
 * NC columns whose B panels are packed once and shared, M in blocks of MC rows that each thread
 * packs for itself; each C tile belongs to one thread and its slices run in order, so the thread
 * count changes nothing. */
#include "convoy/kernels.h"
#include "kernels/gemm-impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define CV_X86 1
#include <immintrin.h>
#endif

enum { NC = 512, MC = 192 };     /* a packed B block of CV_BGEMM_KC x NC bf16 (512 KB) */
enum { HW_MR = 12, HW_NR = 32 }; /* the AVX512_BF16 tile */

static inline uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);        /* zero, subnormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even; past the largest: infinity */
    return (uint16_t)(u >> 16);
}

static inline float bf16_float(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float cv_bf16_round(float f) { return bf16_float(bf16_bits(f)); }

/* K's slices: as many as CV_BGEMM_KC needs, of equal even length (the last one shorter) */
static int slice_len(int K)
{
    const int slices = (K + CV_BGEMM_KC - 1) / CV_BGEMM_KC;
    const int len = (K + slices - 1) / slices;
    return len + (len & 1);
}

/* ---- which path ---- */

static bool native_pick(void)
{
#ifdef CV_X86
    const char *bf = getenv("CONVOY_BF16");
    if (bf && strcmp(bf, "emulate") == 0) return false;
    return strcmp(cv_gemm_path(), "avx512") == 0 && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

bool cv_bf16_native(void)
{
    static int native = -1;
    if (native < 0) native = native_pick(); /* a benign race: every caller picks the same */
    return native == 1;
}

const char *cv_bgemm_path(void) { return cv_bf16_native() ? "avx512bf16" : "emulated"; }

/* ---- packing: op(X) rounded to bf16, a pair of k per 32-bit word (k even low, k odd high) ---- */

#ifdef CV_X86
/* VCVTNEPS2BF16 rounds as bf16_bits does (checked bit for bit, subnormals and NaNs included) */
__attribute__((target("avx512f,avx512bf16,avx512vl"))) static void round_row_hw(uint16_t *d, const float *s, int n,
                                                                             float alpha)
{
    const __m512 a = _mm512_set1_ps(alpha);
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((__m256i *)(d + k), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(a, _mm512_loadu_ps(s + k))));
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(a, _mm512_maskz_loadu_ps(m, s + k)));
        _mm256_mask_storeu_epi16(d + k, m, (__m256i)h);
    }
}
#endif

/* d[0..n) = s[0..n) * alpha rounded to bf16 */
static void round_row(bool native, uint16_t *d, const float *s, int n, float alpha)
{
#ifdef CV_X86
    if (native) {
        round_row_hw(d, s, n, alpha);
        return;
    }
#endif
    (void)native;
    for (int k = 0; k < n; k++) d[k] = bf16_bits(alpha * s[k]);
}

/* The words of two rounded rows, k even (lo) and k odd (hi, NULL past K: zeros) */
static inline void interleave(uint32_t *d, const uint16_t *lo, const uint16_t *hi, int n)
{
    for (int j = 0; j < n; j++) d[j] = lo[j] | (uint32_t)(hi ? hi[j] : 0) << 16;
}

/* A: a matrix (m, rows ld apart), or a row reader (cv_rows: an implicit im2col matrix) */
typedef struct {
    const float *m;
    int ld;
    const cv_rows *rows;
} a_src;

/* A's row r, elements [k0, k0 + n): in place, or read into tmp */
static inline const float *a_row(const a_src *a, int64_t r, int k0, int n, float *tmp)
{
    if (!a->rows) return a->m + (size_t)r * a->ld + k0;
    a->rows->read(a->rows->ctx, r, k0, n, tmp);
    return tmp;
}

/* op(A)[r0..r0+M, pc..pc+kc) * alpha -> M/mr panels of (kc+1)/2 pairs x mr words, zero-padded:
 * row-major panels (word (i, q) at i kp + q: a row's pairs are its rounded row read as words)
 * from A's rows, k-major ones (at q mr + i) from A's columns (transA); tmp holds 2 mr bf16,
 * ftmp 2 max(kc, M) floats */
static void pack_a(bool native, uint32_t *dst, uint16_t *tmp, float *ftmp, const a_src *A, bool transA, int r0,
                   int M, int pc, int kc, float alpha, int mr)
{
    const int kp = (kc + 1) / 2, panels = (M + mr - 1) / mr;
    if (!transA) {
        for (int i = 0; i < panels * mr; i++) {
            uint16_t *t = (uint16_t *)(dst + (size_t)i * kp);
            if (i < M) round_row(native, t, a_row(A, r0 + i, pc, kc, ftmp), kc, alpha);
            else memset(t, 0, sizeof(uint16_t) * (size_t)kc);
            if (kc & 1) t[kc] = 0;
        }
        return;
    }
    /* two rows of A (k, k + 1) at a time, each cut into the panels' columns, rounded and
     * interleaved */
    uint16_t *lo = tmp, *hi = tmp + mr;
    memset(tmp, 0, sizeof(uint16_t) * 2 * (size_t)mr);
    for (int q = 0; q < kp; q++) {
        const bool odd = 2 * q + 1 < kc;
        const float *s0 = a_row(A, pc + 2 * q, r0, M, ftmp);
        const float *s1 = odd ? a_row(A, pc + 2 * q + 1, r0, M, ftmp + M) : NULL;
        for (int p = 0; p < panels; p++) {
            const int rows = M - p * mr < mr ? M - p * mr : mr;
            round_row(native, lo, s0 + p * mr, rows, alpha);
            if (odd) round_row(native, hi, s1 + p * mr, rows, alpha);
            if (rows < mr) memset(lo + rows, 0, sizeof(uint16_t) * (size_t)(mr - rows));
            if (odd && rows < mr) memset(hi + rows, 0, sizeof(uint16_t) * (size_t)(mr - rows));
            interleave(dst + (size_t)p * mr * kp + (size_t)q * mr, lo, odd ? hi : NULL, mr);
        }
    }
}

/* op(B)[pc..pc+kc, jc..jc+nc) -> panels of (kc+1)/2 pairs x nr words, zero-padded */
static void pack_b(bool native, uint32_t *dst, const float *B, int ldb, bool transB, int jc, int nc, int pc, int kc,
                   int nr, bool par)
{
    const int kp = (kc + 1) / 2, panels = (nc + nr - 1) / nr;
#pragma omp parallel for schedule(static) if (par)
    for (int p = 0; p < panels; p++) {
        uint32_t *d = dst + (size_t)p * nr * kp;
        const int c0 = jc + p * nr, cols = nc - p * nr < nr ? nc - p * nr : nr;
        uint16_t tmp[2 * 64];
        uint16_t *lo = tmp, *hi = tmp + nr;
        if (!transB) {
            memset(tmp, 0, sizeof tmp);
            for (int q = 0; q < kp; q++) {
                const float *src = B + (size_t)(pc + 2 * q) * ldb + c0;
                round_row(native, lo, src, cols, 1.0f);
                const bool odd = 2 * q + 1 < kc;
                if (odd) round_row(native, hi, src + ldb, cols, 1.0f);
                interleave(d + (size_t)q * nr, lo, odd ? hi : NULL, nr);
            }
        } else { /* column j of the panel is row c0 + j of B: its pairs are words, scattered */
            memset(d, 0, sizeof(uint32_t) * (size_t)nr * kp);
            uint16_t *row = cv_scratch(CV_SCRATCH_BF16_ROW, sizeof(uint16_t) * (size_t)(kc + 1));
            for (int j = 0; j < cols && row; j++) {
                round_row(native, row, B + (size_t)(c0 + j) * ldb + pc, kc, 1.0f);
                if (kc & 1) row[kc] = 0;
                for (int q = 0; q < kp; q++) memcpy(d + (size_t)q * nr + j, row + 2 * q, sizeof(uint32_t));
            }
            for (int j = 0; j < cols && !row; j++) /* no buffer: element by element */
                for (int k = 0; k < kc; k++)
                    ((uint16_t *)(d + (size_t)(k >> 1) * nr + j))[k & 1] = bf16_bits(B[(size_t)(c0 + j) * ldb + pc + k]);
        }
    }
}

/* Pair-packed panels as fp32 panels for the fp32 micro-kernel, each pair's odd k first: k-major
 * ones (n words wide, kp pairs) as k-major panels of 2 kp steps */
static void expand(float *dst, const uint32_t *src, int panels, int n, int kp)
{
    const uint16_t *h = (const uint16_t *)src;
    for (size_t q = 0; q < (size_t)panels * kp; q++)
        for (int i = 0; i < n; i++) {
            dst[(2 * q) * n + i] = bf16_float(h[(q * n + i) * 2 + 1]);
            dst[(2 * q + 1) * n + i] = bf16_float(h[(q * n + i) * 2]);
        }
}

/* ... and row-major ones (each row's kp words together) as rows of 2 kp floats: word w's two
 * floats at 2 w */
static void expand_rows(float *dst, const uint32_t *src, size_t words)
{
    const uint16_t *h = (const uint16_t *)src;
    for (size_t w = 0; w < words; w++) {
        dst[2 * w] = bf16_float(h[2 * w + 1]);
        dst[2 * w + 1] = bf16_float(h[2 * w]);
    }
}

/* ---- the AVX512_BF16 tile ---- */

#ifdef CV_X86
/* C[0..mr, 0..nr) (+)= the A panel (kp pairs x 12 words) times the B panel (kp pairs x 32 words),
 * then ep (bias offset to the tile's first column): stored as gemm-tile.h stores (sum, + C, +
 * bias, then the ReLU-family select), so the two paths' bits agree */
#define HW_TARGET __attribute__((target("avx512f,avx512bf16")))
/* A's word (i, q) at pa[q sq + i si]: a k-major panel (sq = HW_MR, si = 1) or a row-major one
 * (sq = 1, si = kp), each compiled with its strides known where it can be */
static inline __attribute__((always_inline)) HW_TARGET void
tile_hw_body(int kp, const uint32_t *pa, const int sq, const int si, const uint32_t *pb, float *c, int ldc, int mr,
             int nr, bool set, const cv_epilogue *ep)
{
    __m512 acc[HW_MR][2];
    for (int i = 0; i < HW_MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < kp; q++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb), b1 = (__m512bh)_mm512_loadu_si512(pb + 16);
        for (int i = 0; i < HW_MR; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)pa[i * si]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], b0, a);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], b1, a);
        }
        pa += sq;
        pb += HW_NR;
    }
    if (mr == HW_MR && nr == HW_NR) {
        const __m512 leak = _mm512_set1_ps(ep ? ep->leak : 0.0f);
        for (int i = 0; i < HW_MR; i++)
            for (int v = 0; v < 2; v++) {
                float *p = c + (size_t)i * ldc + 16 * v;
                __m512 t = acc[i][v];
                if (!set) t = _mm512_add_ps(t, _mm512_loadu_ps(p));
                if (ep && ep->bias) t = _mm512_add_ps(t, _mm512_loadu_ps(ep->bias + 16 * v));
                if (ep && ep->relu) {
                    const __mmask16 pos = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_GT_OQ);
                    t = _mm512_mask_blend_ps(pos, _mm512_mul_ps(t, leak), t);
                }
                _mm512_storeu_ps(p, t);
            }
        return;
    }
    float t[HW_MR][HW_NR];
    for (int i = 0; i < HW_MR; i++) {
        _mm512_storeu_ps(t[i], acc[i][0]);
        _mm512_storeu_ps(t[i] + 16, acc[i][1]);
    }
    cv_tile_store_part(&t[0][0], HW_NR, c, ldc, mr, nr, set, ep);
}

HW_TARGET static void tile_hw(int kp, const uint32_t *pa, bool rowmajor, const uint32_t *pb, float *c, int ldc,
                              int mr, int nr, bool set, const cv_epilogue *ep)
{
    if (rowmajor) tile_hw_body(kp, pa, 1, kp, pb, c, ldc, mr, nr, set, ep);
    else tile_hw_body(kp, pa, HW_MR, 1, pb, c, ldc, mr, nr, set, ep);
}
#undef HW_TARGET
#endif

/* ---- the blocked product ---- */

typedef struct {
    bool native;
    int mr, nr;
    cv_tile_fn fn; /* emulated: the fp32 micro-kernel */
} bgemm_tile;

static bgemm_tile tile_pick(void)
{
    if (cv_bf16_native()) return (bgemm_tile){true, HW_MR, HW_NR, NULL};
    const cv_gemm_tile t = cv_gemm_tile_get();
    return (bgemm_tile){false, t.mr, t.nr, t.fn};
}

/* One unit of a slice: rows [r0, r0 + rows) of op(A) packed by this thread, times B's panels
 * [q0, q1) of the block (packed: pb; emulated: pbf, expanded). */
static bool unit(const bgemm_tile *g, const a_src *A, bool transA, float alpha, int r0, int rows, int pc,
                 int kc, const uint32_t *pb, const float *pbf, int q0, int q1, int nc, float *C, int ldc, bool set,
                 const cv_epilogue *ep)
{
    const int kp = (kc + 1) / 2, panels = (rows + g->mr - 1) / g->mr;
    uint32_t *pa = cv_scratch(CV_SCRATCH_BF16_A, sizeof(uint32_t) * (size_t)panels * g->mr * kp);
    float *paf = g->native ? NULL : cv_scratch(CV_SCRATCH_BF16_AF, sizeof(float) * (size_t)panels * g->mr * kp * 2);
    uint16_t *tmp = cv_scratch(CV_SCRATCH_BF16_ROW, sizeof(uint16_t) * 2 * (size_t)g->mr);
    float *ftmp = cv_scratch(CV_SCRATCH_BF16_F, sizeof(float) * 2 * (size_t)(kc > rows ? kc : rows));
    if (!pa || !tmp || !ftmp || (!g->native && !paf)) return false;
    pack_a(g->native, pa, tmp, ftmp, A, transA, r0, rows, pc, kc, alpha, g->mr);
    const bool rowmajor = !transA; /* pack_a's panel forms */
    if (paf && rowmajor) expand_rows(paf, pa, (size_t)panels * g->mr * kp);
    else if (paf) expand(paf, pa, panels, g->mr, kp);
    for (int ip = 0; ip < panels; ip++) {
        const int mr = rows - ip * g->mr < g->mr ? rows - ip * g->mr : g->mr;
        float *c = C + (size_t)(r0 + ip * g->mr) * ldc;
        for (int jp = q0; jp < q1; jp++) {
            const int nr = nc - jp * g->nr < g->nr ? nc - jp * g->nr : g->nr;
            const cv_epilogue e = {ep && ep->bias ? ep->bias + jp * g->nr : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
#ifdef CV_X86
            if (g->native) {
                tile_hw(kp, pa + (size_t)ip * g->mr * kp, rowmajor, pb + (size_t)jp * g->nr * kp, c + jp * g->nr, ldc,
                        mr, nr, set, ep ? &e : NULL);
                continue;
            }
#endif
            /* an fp32 panel: k-major (k step mr floats, rows 1 apart) or row-major (1, 2 kp) */
            g->fn(2 * kp, paf + (size_t)ip * g->mr * kp * 2, rowmajor ? 1 : g->mr, rowmajor ? 2 * kp : 1,
                  pbf + (size_t)jp * g->nr * kp * 2, g->nr, c + jp * g->nr, ldc, mr, nr, set, ep ? &e : NULL);
        }
    }
    return true;
}

static bool blocked(bool transA, bool transB, int M, int N, int K, float alpha, const a_src *A, const float *B,
                    int ldb, float *C, int ldc, bool set, const cv_epilogue *ep)
{
    const bgemm_tile g = tile_pick();
    const int kcmax = slice_len(K), kpmax = (kcmax + 1) / 2;
    const int npmax = (NC + g.nr - 1) / g.nr;
    uint32_t *pb = cv_scratch(CV_SCRATCH_BF16_B, sizeof(uint32_t) * (size_t)npmax * g.nr * kpmax);
    float *pbf = g.native ? NULL : cv_scratch(CV_SCRATCH_BF16_BF, sizeof(float) * (size_t)npmax * g.nr * kpmax * 2);
    if (!pb || (!g.native && !pbf)) return false;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
    const bool par = threads > 1 && 2.0 * M * N * K >= 2e6;
    const int mblocks = (M + MC - 1) / MC;
    bool ok = true;
    for (int jc = 0; jc < N && ok; jc += NC) {
        const int nc = N - jc < NC ? N - jc : NC, np = (nc + g.nr - 1) / g.nr;
        /* column groups so that there are units for every thread (each packs its rows again) */
        int groups = par && mblocks < 2 * threads ? (2 * threads + mblocks - 1) / mblocks : 1;
        if (groups > np) groups = np;
        for (int pc = 0; pc < K && ok; pc += kcmax) {
            const int kc = K - pc < kcmax ? K - pc : kcmax, kp = (kc + 1) / 2;
            pack_b(g.native, pb, B, ldb, transB, jc, nc, pc, kc, g.nr, par);
            if (pbf) expand(pbf, pb, np, g.nr, kp);
            const bool first = set && pc == 0, last = pc + kc >= K;
            const cv_epilogue e = {ep && ep->bias ? ep->bias + jc : NULL, ep && ep->relu, ep ? ep->leak : 0.0f};
            const long units = (long)mblocks * groups;
            int failed = 0;
#pragma omp parallel for schedule(static) if (par) reduction(| : failed)
            for (long u = 0; u < units; u++) {
                const int mb = (int)(u / groups), gr = (int)(u % groups);
                const int r0 = mb * MC, rows = M - r0 < MC ? M - r0 : MC;
                const int q0 = (int)((long)np * gr / groups), q1 = (int)((long)np * (gr + 1) / groups);
                if (!unit(&g, A, transA, alpha, r0, rows, pc, kc, pb, pbf, q0, q1, nc, C + jc, ldc, first,
                          ep && last ? &e : NULL))
                    failed = 1;
            }
            ok = !failed;
        }
    }
    return ok;
}

static void epilogue_rows(float *C, int ldc, int M, int N, const cv_epilogue *ep)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = C + (size_t)i * ldc + j;
            if (ep->bias) *c += ep->bias[j];
            if (ep->relu) *c = *c > 0.0f ? *c : ep->leak * *c;
        }
}

static void scale(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

static void naive(bool transA, bool transB, int M, int N, int K, float alpha, const a_src *A, const float *B, int ldb,
                  float beta, float *C, int ldc);

static void product(bool transA, bool transB, int M, int N, int K, float alpha, const a_src *A, const float *B,
                    int ldb, float beta, float *C, int ldc, const cv_epilogue *ep)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale(M, N, beta, C, ldc);
        if (ep) epilogue_rows(C, ldc, M, N, ep);
        return;
    }
    if (beta != 0.0f && beta != 1.0f) scale(M, N, beta, C, ldc);
    if (blocked(transA, transB, M, N, K, alpha, A, B, ldb, C, ldc, beta == 0.0f, ep)) return;
    /* out of memory for packing: the reference needs none (its additions are the same) */
    naive(transA, transB, M, N, K, alpha, A, B, ldb, beta, C, ldc);
    if (ep) epilogue_rows(C, ldc, M, N, ep);
}

void cv_bgemm_ep(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const cv_epilogue *ep)
{
    const a_src a = {A, lda, NULL};
    product(transA, transB, M, N, K, alpha, &a, B, ldb, beta, C, ldc, ep);
}

void cv_bgemm_rows(bool transA, const cv_rows *A, bool transB, int M, int N, int K, const float *B, int ldb,
                   float beta, float *C, int ldc, const cv_epilogue *ep)
{
    const a_src a = {NULL, 0, A};
    product(transA, transB, M, N, K, 1.0f, &a, B, ldb, beta, C, ldc, ep);
}

/* op(A)(r, c) */
static inline float a_elem(const a_src *A, bool trans, int r, int c)
{
    float v;
    return *a_row(A, trans ? c : r, trans ? r : c, 1, &v);
}

void cv_bgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc)
{
    const a_src a = {A, lda, NULL};
    naive(transA, transB, M, N, K, alpha, &a, B, ldb, beta, C, ldc);
}

static void naive(bool transA, bool transB, int M, int N, int K, float alpha, const a_src *A, const float *B, int ldb,
                  float beta, float *C, int ldc)
{
    const int kcmax = K > 0 ? slice_len(K) : 1;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            float v = beta == 0.0f ? 0.0f : beta == 1.0f ? *c : beta * *c;
            bool set = beta == 0.0f;
            for (int pc = 0; pc < K && alpha != 0.0f; pc += kcmax) {
                const int end = K - pc < kcmax ? K : pc + kcmax;
                float acc = 0.0f;
                for (int k = pc; k < end; k += 2) {
                    const float a1 = k + 1 < end ? cv_bf16_round(alpha * a_elem(A, transA, i, k + 1)) : 0.0f;
                    const float b1 = k + 1 < end ? cv_bf16_round(cv_gemm_elem(B, ldb, transB, k + 1, j)) : 0.0f;
                    const float a0 = cv_bf16_round(alpha * a_elem(A, transA, i, k));
                    const float b0 = cv_bf16_round(cv_gemm_elem(B, ldb, transB, k, j));
                    acc += a1 * b1; /* each product exact in fp32: one rounding per addition */
                    acc += a0 * b0;
                }
                v = set ? acc : v + acc;
                set = false;
            }
            *c = v;
        }
}
