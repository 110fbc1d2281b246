/* Private to the kernels: cv_sgemm's micro-kernel (gemm-tile.h's, for the instruction set it
 * picked), for the products that pack their own panels (gemm-bf16.c's emulated path). */
#ifndef CONVOY_KERNELS_GEMM_IMPL_H
#define CONVOY_KERNELS_GEMM_IMPL_H

#include <stdbool.h>

#include "convoy/kernels.h"

/* C[0..mr, 0..nr) (+)= the A panel times the B panel over kc steps, each element's sum in k
 * order by fused multiply-adds: A's element (i, k) at pa[k * sk + i * si], B's row k at
 * pb + k * sb; set: stored, else added; then ep (its bias offset to the tile's first column) */
typedef void (*cv_tile_fn)(int kc, const float *pa, int sk, int si, const float *pb, int sb, float *c, int ldc,
                           int mr, int nr, bool set, const cv_epilogue *ep);

typedef struct {
    int mr, nr; /* the tile: mr rows x nr columns; packed panels are k-major, mr (nr) wide */
    cv_tile_fn fn;
} cv_gemm_tile;

/* A tile cut short (mr x nr of t, its rows ldt apart) into C: stored (set) or added, then ep's
 * bias and ReLU-family select; every micro-kernel's last tiles, so that their bits agree */
static inline void cv_tile_store_part(const float *t, int ldt, float *c, int ldc, int mr, int nr, bool set,
                                      const cv_epilogue *ep)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = set ? t[(size_t)i * ldt + j] : c[(size_t)i * ldc + j] + t[(size_t)i * ldt + j];
            if (ep && ep->bias) v += ep->bias[j];
            if (ep && ep->relu) v = v > 0.0f ? v : ep->leak * v;
            c[(size_t)i * ldc + j] = v;
        }
}

/* op(X)(r, c) of a row-major X, rows ld apart (X^T when trans): the reference products' reads */
static inline float cv_gemm_elem(const float *X, int ld, bool trans, int r, int c)
{
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/** the tile cv_sgemm uses (CONVOY_GEMM's choice) */
cv_gemm_tile cv_gemm_tile_get(void);

#endif
