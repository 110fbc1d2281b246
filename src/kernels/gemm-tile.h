/* The SGEMM micro-kernel, instantiated once per instruction set by gemm.c (after gemm-impl.h): define TILE_NAME,
 * TILE_VEC (a GCC vector type of TILE_VW floats), TILE_MR, TILE_NR (a multiple of TILE_VW) and
 * TILE_TARGET (a target attribute, or nothing), then include this file.
 *
 * C[0..mr, 0..nr) += A-panel * B-panel over kc steps. Row k of the B panel is TILE_NR values
 * at pb + k * sb: packed k-major and zero-padded (sb = TILE_NR), or B read in place (sb = ldb). A's element (i, k) is pa[k * sk + i * si]: a packed panel
 * (sk = TILE_MR, si = 1), or A read in place, row-major (sk = 1, si = lda) or transposed
 * (sk = lda, si = 1); each form is compiled with its strides known. All TILE_MR rows are read,
 * so A in place needs full panels; only the store is trimmed to mr x nr. The sum over k runs
 * in order, whatever the ISA and the form. With `set` the tile is stored, not added (beta 0);
 * ep (NULL: none; its bias offset to the tile's first column) is applied on the way out.
 * Defining TILE_CONV_NAME and TILE_CONV_DW_NAME as well adds the implicit-GEMM convolution
 * kernels (conv-gemm.c's), which share the accumulation and the store. */
/* The finished tile acc (its first MR of TILE_MR rows x TILE_NR) into C: stored (set) or added,
 * then ep; only mr x nr of it when the tile is cut short. MR is a constant where it is inlined. */
#define TILE_NV (TILE_NR / TILE_VW)
#define TILE_CAT2(a, b) a##b
#define TILE_CAT(a, b) TILE_CAT2(a, b)
#define TILE_STORE TILE_CAT(TILE_NAME, _store)
#define TILE_CONV_DW_BODY TILE_CAT(TILE_NAME, _conv_dw_body)
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_STORE(TILE_VEC acc[TILE_MR][TILE_NV], const int MR, float *restrict c, int ldc, int mr, int nr, bool set,
           const cv_epilogue *ep)
{
    if (mr == MR && nr == TILE_NR) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < TILE_NV; v++) {
                TILE_VEC t = acc[i][v];
                float *p = c + (size_t)i * ldc + v * TILE_VW;
                if (!set) {
                    TILE_VEC old;
                    memcpy(&old, p, sizeof old);
                    t += old;
                }
                if (ep && ep->bias) {
                    TILE_VEC bv;
                    memcpy(&bv, ep->bias + v * TILE_VW, sizeof bv);
                    t += bv;
                }
                if (ep && ep->relu) { /* t > 0 ? t : leak t, as a bit select */
                    const __typeof__(t > 0) pos = t > 0;
                    const TILE_VEC neg = t * ep->leak;
                    t = (TILE_VEC)((pos & (__typeof__(pos))t) | (~pos & (__typeof__(pos))neg));
                }
                memcpy(p, &t, sizeof t);
            }
    } else {
        float t[TILE_MR][TILE_NR];
        memcpy(t, acc, sizeof t);
        cv_tile_store_part(&t[0][0], TILE_NR, c, ldc, mr, nr, set, ep);
    }
}

/* The first MR (a constant where it is inlined) of the TILE_MR rows: a panel's last rows. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_BODY(int kc, const float *restrict pa, const int sk, const int si, const int MR, const float *restrict pb,
          int sb, float *restrict c, int ldc, int mr, int nr, bool set, const cv_epilogue *ep)
{
    TILE_VEC acc[TILE_MR][TILE_NV];
    for (int i = 0; i < TILE_MR; i++) /* registers cleared, not a memset of the stack (rep stos) */
        for (int v = 0; v < TILE_NV; v++) acc[i][v] = (TILE_VEC){0};
    for (int k = 0; k < kc; k++) {
        TILE_VEC b[TILE_NV];
        if (sb != TILE_NR) {
            /* B read in place (a dense layer's weights, often just updated by the optimizer or
             * out of cache): its rows are ldb apart, across pages the hardware prefetcher does
             * not follow, so the row 16 ahead is asked for now (an address, never dereferenced) */
            const uintptr_t ahead = (uintptr_t)pb + sizeof(float) * 16 * (size_t)sb;
            __builtin_prefetch((const void *)ahead);
            if (TILE_NR * sizeof(float) > 64) __builtin_prefetch((const void *)(ahead + 64));
        }
        for (int v = 0; v < TILE_NV; v++) memcpy(&b[v], pb + v * TILE_VW, sizeof b[v]);
        for (int i = 0; i < MR; i++) {
            const float a = pa[i * si];
            for (int v = 0; v < TILE_NV; v++) acc[i][v] += b[v] * a;
        }
        pa += sk;
        pb += sb;
    }
    TILE_STORE(acc, MR, c, ldc, mr, nr, set, ep);
}

/* A panel cut short (a product's last mr < TILE_MR rows, always packed) runs a third or two
 * thirds of the rows, not all TILE_MR of them (a 64-row batch is 5 whole 12-row panels and 4
 * rows). Each element's sum is the same FMAs in the same order, so the bits are the same. */
TILE_TARGET static void TILE_NAME(int kc, const float *pa, int sk, int si, const float *pb, int sb, float *c,
                                  int ldc, int mr, int nr, bool set, const cv_epilogue *ep)
{
    enum { THIRD = TILE_MR / 3 };
    if (si == 1 && sk == TILE_MR) { /* packed */
        if (mr <= THIRD) TILE_BODY(kc, pa, TILE_MR, 1, THIRD, pb, sb, c, ldc, mr, nr, set, ep);
        else if (mr <= 2 * THIRD) TILE_BODY(kc, pa, TILE_MR, 1, 2 * THIRD, pb, sb, c, ldc, mr, nr, set, ep);
        else TILE_BODY(kc, pa, TILE_MR, 1, TILE_MR, pb, sb, c, ldc, mr, nr, set, ep);
    } else if (sk == 1) {
        TILE_BODY(kc, pa, 1, si, TILE_MR, pb, sb, c, ldc, mr, nr, set, ep);
    } else {
        TILE_BODY(kc, pa, sk, 1, TILE_MR, pb, sb, c, ldc, mr, nr, set, ep);
    }
}


#ifdef TILE_CONV_NAME
/* Implicit-GEMM convolution, B read in place (row k of B at pb + k * sb, TILE_NR wide).
 * Forward: A's row i is output pixel i's receptive field, which in NHWC is nseg runs (one per
 * window row) of seglen contiguous values, segstride apart, starting at rows[i]; k runs in
 * (run, offset) order, the im2col matrix's column order. */
TILE_TARGET static void TILE_CONV_NAME(const float *const *rows, int nseg, int seglen, long segstride,
                                       const float *restrict pb, int sb, float *c, int ldc, int mr, int nr,
                                       bool set, const cv_epilogue *ep)
{
    TILE_VEC acc[TILE_MR][TILE_NV];
    for (int i = 0; i < TILE_MR; i++)
        for (int v = 0; v < TILE_NV; v++) acc[i][v] = (TILE_VEC){0};
    /* one loop over the nseg * seglen steps (a loop per run kept acc in memory between runs,
     * measured 5-6% slower): the rows' pointers move on to the next run where one ends */
    const float *restrict r[TILE_MR];
    for (int i = 0; i < TILE_MR; i++) r[i] = rows[i];
    const int K = nseg * seglen;
    for (int k = 0, j = 0; k < K; k++) {
        TILE_VEC b[TILE_NV];
        for (int v = 0; v < TILE_NV; v++) memcpy(&b[v], pb + v * TILE_VW, sizeof b[v]);
        for (int i = 0; i < TILE_MR; i++) {
            const float a = r[i][j];
            for (int v = 0; v < TILE_NV; v++) acc[i][v] += b[v] * a;
        }
        pb += sb;
        if (++j == seglen) {
            j = 0;
            for (int i = 0; i < TILE_MR; i++) r[i] += segstride;
        }
    }
    TILE_STORE(acc, TILE_MR, c, ldc, mr, nr, set, ep);
}

/* Weight gradient: C (TILE_MR receptive-field offsets x TILE_NR filters) += (or, with set, =)
 * the sum over the output pixels of one sample, walked as no rows of nq pixels: A's value
 * (pixel, i) is pa[o * so + q * sq + i] (TILE_MR consecutive offsets of one window row), B's
 * row is that pixel's output gradient; with BIAS, bsum (TILE_NR) += the sum of those rows as
 * well. Only the first MR (a constant where it is inlined) of the rows, when the tile is a
 * panel's last, short one. */
static inline __attribute__((always_inline)) TILE_TARGET void
TILE_CONV_DW_BODY(const float *pa, int no, long so, int nq, long sq, const float *restrict pb, int sb, float *c,
                  int ldc, bool set, float *restrict bsum, const bool BIAS, const int MR, int mr)
{
    TILE_VEC acc[TILE_MR][TILE_NV], bs[TILE_NV];
    for (int i = 0; i < TILE_MR; i++)
        for (int v = 0; v < TILE_NV; v++) acc[i][v] = (TILE_VEC){0};
    for (int v = 0; v < TILE_NV; v++) bs[v] = (TILE_VEC){0};
    for (int o = 0; o < no; o++) {
        const float *restrict p = pa + o * so;
        for (int q = 0; q < nq; q++) {
            TILE_VEC b[TILE_NV];
            for (int v = 0; v < TILE_NV; v++) memcpy(&b[v], pb + v * TILE_VW, sizeof b[v]);
            for (int i = 0; i < MR; i++) {
                const float a = p[i];
                for (int v = 0; v < TILE_NV; v++) acc[i][v] += b[v] * a;
            }
            if (BIAS)
                for (int v = 0; v < TILE_NV; v++) bs[v] += b[v];
            p += sq;
            pb += sb;
        }
    }
    TILE_STORE(acc, MR, c, ldc, mr, TILE_NR, set, NULL);
    if (BIAS)
        for (int v = 0; v < TILE_NV; v++) {
            TILE_VEC t;
            memcpy(&t, bsum + v * TILE_VW, sizeof t);
            t += bs[v];
            memcpy(bsum + v * TILE_VW, &t, sizeof t);
        }
}

/* mr (<= TILE_MR) rows of C: a short one (the Winograd weight gradient's last channels) runs a
 * third or two thirds of the rows, each sum the same FMAs in the same order */
TILE_TARGET static void TILE_CONV_DW_NAME(const float *pa, int no, long so, int nq, long sq,
                                          const float *restrict pb, int sb, float *c, int ldc, int mr, bool set,
                                          float *bsum)
{
    enum { THIRD = TILE_MR / 3 };
    if (bsum) TILE_CONV_DW_BODY(pa, no, so, nq, sq, pb, sb, c, ldc, set, bsum, true, TILE_MR, mr);
    else if (mr <= THIRD) TILE_CONV_DW_BODY(pa, no, so, nq, sq, pb, sb, c, ldc, set, NULL, false, THIRD, mr);
    else if (mr <= 2 * THIRD) TILE_CONV_DW_BODY(pa, no, so, nq, sq, pb, sb, c, ldc, set, NULL, false, 2 * THIRD, mr);
    else TILE_CONV_DW_BODY(pa, no, so, nq, sq, pb, sb, c, ldc, set, NULL, false, TILE_MR, mr);
}
#undef TILE_CONV_NAME
#undef TILE_CONV_DW_NAME
#endif

#undef TILE_BODY
#undef TILE_STORE
#undef TILE_CONV_DW_BODY
#undef TILE_CAT
#undef TILE_CAT2
#undef TILE_NV
#undef TILE_NAME
#undef TILE_VEC
#undef TILE_VW
#undef TILE_MR
#undef TILE_NR
#undef TILE_TARGET
