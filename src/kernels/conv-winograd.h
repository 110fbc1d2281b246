/* Private to the kernels: what conv-winograd.c (the transforms and the drivers) and
 * conv-winograd-prod.c (the products in registers on AVX-512) share. */
#ifndef CONVOY_KERNELS_CONV_WINOGRAD_H
#define CONVOY_KERNELS_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

/* F(4x4, 3x3): a 4x4 block of output from a 6x6 block of input, XI = 36 products */
enum { WB = 4, WI = 6, XI = WI * WI };

/* vectors of 4, 8 and 16 floats (the channel or filter index runs across the lanes) */
typedef float wv4 __attribute__((vector_size(16)));
typedef float wv8 __attribute__((vector_size(32)));
typedef float wv16 __attribute__((vector_size(64)));
/* the same, at any float's address: loads and stores through these go straight between memory
 * and registers (memcpy into a vector array was lowered to 128-bit copies through the stack
 * and a wider reload, which stalls on store forwarding: a quarter of the AVX2 input transform) */
typedef float wv4u __attribute__((vector_size(16), aligned(4), may_alias));
typedef float wv8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef float wv16u __attribute__((vector_size(64), aligned(4), may_alias));

#define WINO_LD(VECU, v, p) ((v) = *(const VECU *)(const void *)(p))
#define WINO_ST(VECU, p, v) (*(VECU *)(void *)(p) = (v))

/* The products over a chunk of n blocks (forward: M = V U per product), one product of the
 * weight gradient's 16 x 16 sums, and one of its 12 x 32 tiles of sums (conv-winograd-prod.c) */
typedef void (*wino_prod_fn)(float *M, size_t ms, float *V, size_t vs, const float *U, int n, int C, int F);
typedef void (*wino_dwprod_fn)(float *M, const float *V, size_t vb, const float *Z, size_t zb, int m, bool set);
typedef void (*wino_dwtile_fn)(float *M, size_t ldm, const float *V, size_t vb, const float *Z, size_t zb, int m,
                               bool set, int rows);

/** The forward products' kernel for C channels into F filters on chunks of mr blocks; NULL: the
 *  micro-kernel's calls. */
wino_prod_fn cv_wino_prod(int C, int F, int mr);
/** The blocks a chunk of the forward products holds: mr, or more where the products' kernel
 *  keeps its U in registers across them (16 x 16). */
int cv_wino_chunk(int C, int F, int mr);
/** The weight gradient's 16 x 16 product kernel, or NULL. */
wino_dwprod_fn cv_wino_dwprod(int C, int F);
/** The weight gradient's tile kernel for F filters on the micro-kernel's mr x nr tile, or NULL. */
wino_dwtile_fn cv_wino_dwtile(int F, int mr, int nr);

#endif
