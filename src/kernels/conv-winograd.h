/* Private to the kernels: what conv-winograd.c (the transforms, the block sources, the forward
 * pass and the input gradient), conv-winograd-dw.c (the weight gradient) and
 * conv-winograd-prod.c (the products in registers on AVX-512) share. */
#ifndef CONVOY_KERNELS_CONV_WINOGRAD_H
#define CONVOY_KERNELS_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "convoy/kernels.h"

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

/* The transforms of one block, whichever way its pixels are found (conv-winograd.c, each
 * compiled for every instruction set): an edge block's copy, the input transform, the output
 * transform through pointers or rows, the output gradient's transform through pointers or rows */
typedef void (*wino_edge_fn)(float *blk, const float *xb, size_t rs, int y0, int x0, int i0, int i1, int j0, int j1,
                             int C);
typedef void (*wino_inputs_fn)(float *V, size_t vstride, const float *b, size_t rs, int C);
typedef void (*wino_output_fn)(float *const *o, const float *M, size_t mstride, int F, const cv_epilogue *ep);
typedef void (*wino_outputs_fn)(float *ob, size_t rs, const float *M, size_t mstride, int F, const cv_epilogue *ep,
                                bool stream);
typedef void (*wino_grad_fn)(float *Z, size_t zstride, const float *const *q, int F);
typedef void (*wino_grads_fn)(float *Z, size_t zstride, const float *qb, size_t rs, int F);
typedef struct {
    wino_edge_fn edge;
    wino_inputs_fn ins;
    wino_output_fn out;
    wino_outputs_fn outs;
    wino_grad_fn grad;
    wino_grads_fn grads;
} wino_fns;
/** The transforms for this CPU (cv_gemm_path's instruction set). */
wino_fns cv_wino_fns(void);
/** dw (3, 3, C, F) += G^T m G for channels [c0, c1) and every filter, m the 36 values
 *  M[xi * mstride + c * F + f]. */
typedef void (*wino_dwout_fn)(float *dw, const float *M, size_t mstride, int c0, int c1, int C, int F);
wino_dwout_fn cv_wino_dwout(void);

/* rows (or columns) of blocks that cover n rows (columns) of output */
static inline int cv_wino_blocks_over(int n) { return (n + WB - 1) / WB; }

/* Where a thread's transforms read the input blocks from: a copy of one sample padded with its
 * zeros (buf, Hp x Wp pixels: row r, column c are the input's r - pad_top, c - pad_left), made
 * when a block of another sample comes (a thread takes its blocks in order), where that copy
 * stays within 512 KiB (in L2: the copy reads the sample in order, which the prefetchers
 * follow, where the blocks' rows across pages they did not); else (Hp = 0) blocks inside read
 * in place and each at the edge copied into buf. map (NULL: none): the copy holds map(x) (its
 * zeros stay zeros: they pad the map's output). */
typedef struct {
    float *buf;
    long sample;
    int Hp, Wp;
    const cv_chan_map *map;
} wino_src;
/** The source plan for blocks ty x tx a sample over g (buf and map unset), and the floats its
 *  buffer needs. */
wino_src cv_wino_src_plan(const cv_window *g, int ty, int tx, size_t *floats);
/** s->buf = sample xb, padded (through s->map where given) */
void cv_wino_pad_sample(wino_src *s, const float *xb, const cv_window *g);
/** The 36 input pixels of block t (of per per sample, tx per row) of x: pixel (i, j) at the
 *  returned pointer + i *rs + j C. From the padded sample (s->Hp), or: a block inside x read in
 *  place (rows W C apart); one at the edge copied into s->buf (WI x WI x C, rows WI C apart)
 *  with zeros for its pixels outside, by spans of rows: the transform then loads without a
 *  branch per pixel (measured: selecting each pixel or zeros as it loaded stalled its loads,
 *  ~1.5x an inside block's time). */
static inline const float *cv_wino_block_inputs(wino_src *s, size_t *rs, const float *x, long t, int per, int tx,
                                                const cv_window *g, wino_edge_fn edge)
{
    const int q = (int)(t % per), y0 = WB * (q / tx) - g->pad_top, x0 = WB * (q % tx) - g->pad_left, C = g->C;
    const size_t row = (size_t)g->W * C;
    const float *xb = x + (size_t)(t / per) * g->H * row;
    if (s->Hp) {
        if (s->sample != t / per) cv_wino_pad_sample(s, xb, g);
        s->sample = t / per;
        *rs = (size_t)s->Wp * C;
        return s->buf + ((size_t)WB * (q / tx) * s->Wp + (size_t)WB * (q % tx)) * C;
    }
    float *blk = s->buf;
    *rs = row;
    if (y0 >= 0 && x0 >= 0 && y0 + WI <= g->H && x0 + WI <= g->W) return xb + (size_t)y0 * row + (size_t)x0 * C;
    /* the rows [i0, i1) and columns [j0, j1) of the block inside the input (none: i0 = i1) */
    int i0 = y0 < 0 ? -y0 : 0, i1 = y0 + WI > g->H ? g->H - y0 : WI;
    const int j0 = x0 < 0 ? -x0 : 0, j1 = x0 + WI > g->W ? g->W - x0 : WI;
    if (i1 <= i0 || j1 <= j0) i0 = i1 = 0;
    edge(blk, xb, row, y0, x0, i0, i1, j0, j1, C);
    *rs = (size_t)WI * C;
    return blk;
}

/** Where the 16 output pixels of block t are in an (B, OH, OW, F) tensor: where all lie inside,
 *  the first one's offset (rows OW F apart); else -1, and at[0..16) their offsets, -1 past the
 *  edge. */
static inline long cv_wino_block_outputs(long *at, long t, int per, int tx, int F, const cv_window *g)
{
    const int q = (int)(t % per), y0 = WB * (q / tx), x0 = WB * (q % tx);
    const long base = (t / per) * g->OH * g->OW;
    if (y0 + WB <= g->OH && x0 + WB <= g->OW) return (base + (long)y0 * g->OW + x0) * F;
    for (int k = 0; k < WB * WB; k++) {
        const int y = y0 + k / WB, xx = x0 + k % WB;
        at[k] = y < g->OH && xx < g->OW ? (base + (long)y * g->OW + xx) * F : -1;
    }
    return -1;
}

#endif
