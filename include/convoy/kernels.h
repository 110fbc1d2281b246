/* Module kernels (src/kernels/). Owns the numeric kernels (this header): SGEMM, convolution (direct, implicit GEMM, Winograd, im2col), pooling, their run-time choice of instruction set, and the exact sum (exactsum.h).
 * May call: core.
 * Must not be called by: core.
 *
 * Numeric kernels: a cache-blocked SGEMM (with its naive twin as the reference) and the
 * NHWC im2col/col2im and pooling kernels that conv2d and the pooling layers build on.
 * All are OpenMP-parallel over independent outputs, with a fixed summation order, so the
 * thread count never changes a result. */
#ifndef CONVOY_KERNELS_H
#define CONVOY_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Scratch memory of the calling thread that grows to the largest request and is then reused,
 *  so the kernels allocate nothing per step. One buffer per slot; NULL when out of memory.
 *  Contents are not preserved between calls; pass the pointer (not the slot) to OpenMP teams. */
typedef enum {
    CV_SCRATCH_PACK_A, CV_SCRATCH_PACK_B, CV_SCRATCH_SPLIT_K, CV_SCRATCH_DIRECT_DW, CV_SCRATCH_BIAS_GRAD,
    CV_SCRATCH_WINOGRAD, CV_SCRATCH_WINOGRAD_W, CV_SCRATCH_WINOGRAD_Z, CV_SCRATCH_WINOGRAD_BLOCK, CV_SCRATCH_PADDED,
    CV_SCRATCH_PADDED_W, CV_SCRATCH_POOL_MAP,
    CV_SCRATCH_BF16_A, CV_SCRATCH_BF16_B, CV_SCRATCH_BF16_AF, CV_SCRATCH_BF16_BF, CV_SCRATCH_BF16_ROW, CV_SCRATCH_BF16_F, CV_SCRATCH_BF16_W,
    CV_SCRATCH_COUNT
} cv_scratch_slot;
void *cv_scratch(cv_scratch_slot slot, size_t bytes);

/** What a layer applies to its linear output, fused into the kernel that computes it while
 *  the tile is in cache: C[i][j] += bias[j] (bias may be NULL), then max(v, leak * v) when
 *  relu (leak 0 for ReLU, the slope for leaky ReLU). */
typedef struct {
    const float *bias;
    bool relu;
    float leak;
} cv_epilogue;

/** A per-channel affine map with a ReLU-family activation after it: v = a[c] x + shift[c], then
 *  (relu) v where v > 0, else leak * v; each operation rounded on its own (no fused multiply-add),
 *  so that every kernel that applies it gives the same bits. A batchnorm's normalising pass, and
 *  that pass fused into the Winograd conv after it (cv_conv_wino's map). */
typedef struct {
    const float *a, *shift; /* one per channel */
    bool relu;
    float leak;
} cv_chan_map;
/** y = m(x) over n pixels of C channels; stream: y by stream stores where the CPU has them
 *  (AVX-512; y on a 64-byte line, C a multiple of 16), the caller fencing them (kernels/isa.h)
 *  before another thread reads y. */
void cv_chan_map_rows(float *y, const float *x, int64_t n, int64_t C, const cv_chan_map *m, bool stream);
/** o = act(m(x) + s) over n pixels of C channels, m without an activation of its own (a
 *  batchnorm's map fused into the residual end after it), act none (!act) or a ReLU-family one
 *  as the end applies it: v where v > 0, else 0 (zero) or leak * v; stream as above. */
void cv_chan_map_add_rows(float *o, const float *x, const float *s, int64_t n, int64_t C, const cv_chan_map *m,
                          bool act, bool zero, float leak, bool stream);

/** Row-major C (M,N) = alpha * op(A) op(B) + beta * C, op(X) = X or X^T.
 *  A is (M,K) (or (K,M) when transA), B is (K,N) (or (N,K) when transB). */
void cv_sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/** cv_sgemm followed by the epilogue ep (NULL: none) on every element of C. */
void cv_sgemm_ep(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const cv_epilogue *ep);
/** The micro-kernel cv_sgemm uses: "avx512", "avx2" or "generic" (the widest this CPU runs,
 *  or the one CONVOY_GEMM names if narrower). */
const char *cv_gemm_path(void);
/** cv_sgemm_ep with its products in bfloat16 (--precision bf16): every element of op(A) (times
 *  alpha) and op(B) rounded to bf16 (to nearest even; subnormals to signed zero), and each C
 *  element summed in fp32 over K slices of CV_BGEMM_KC, from 0 in each slice, a pair of products
 *  at a time as AVX512_BF16's VDPBF16PS adds them: the odd k's product, then the even one's,
 *  each a rounded fp32 addition; each slice's sum is then added to C (beta 0: stored), then ep.
 *  On a CPU without AVX512_BF16 (or with CONVOY_BF16=emulate) the same additions run as fp32
 *  fused multiply-adds on cv_sgemm's micro-kernel: the same bits, save that the hardware flushes
 *  a subnormal sum to zero. */
void cv_bgemm_ep(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const cv_epilogue *ep);
enum { CV_BGEMM_KC = 512 };
/** A matrix given by a function that reads row r's elements [k0, k0 + n) into dst: an
 *  implicit im2col matrix (conv-bf16.c), so that its rows are read as they are packed. */
typedef struct {
    void (*read)(const void *ctx, int64_t r, int k0, int n, float *dst);
    const void *ctx;
} cv_rows;
/** cv_bgemm_ep with alpha 1 and A's rows read by A->read (A is (M,K), or (K,M) when transA):
 *  the same bits as cv_bgemm_ep on the matrix those rows make. */
void cv_bgemm_rows(bool transA, const cv_rows *A, bool transB, int M, int N, int K, const float *B, int ldb,
                   float beta, float *C, int ldc, const cv_epilogue *ep);
/** What cv_bgemm_ep runs on: "avx512bf16" (the instruction) or "emulated" (on cv_gemm_path()). */
const char *cv_bgemm_path(void);
/** Whether this CPU has AVX512_BF16 (and CONVOY_GEMM and CONVOY_BF16 leave it to cv_bgemm_ep). */
bool cv_bf16_native(void);
/** f rounded to bfloat16 as cv_bgemm_ep rounds its operands, and back to float. */
float cv_bf16_round(float f);
/** cv_bgemm_ep by plain loops (the test reference): the same roundings and additions, in order. */
void cv_bgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);
/** The same by three plain loops (double accumulation): the test reference. */
void cv_sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/** Geometry of a 2-D window op on NHWC tensors. Padding is top/left; the bottom/right
 *  padding is whatever the output size implies (TensorFlow 'same' puts the odd one there;
 *  numeric padding, as PyTorch's, the same on both sides). Windows and strides may be
 *  rectangular; the fast paths say which shapes they take (the *_fits functions). */
typedef struct {
    int H, W, C;      /* input */
    int KH, KW;       /* window */
    int SH, SW;       /* stride along rows, along columns */
    int pad_top, pad_left;
    int OH, OW;       /* output */
} cv_window;

/** col (B*OH*OW, KH*KW*C): each row is one output pixel's receptive field in (kh, kw, c)
 *  order, which matches a Keras (KH,KW,Cin,Cout) kernel read as a (KH*KW*Cin, Cout) matrix.
 *  Outside the image: 0, or the nearest edge pixel when nearest. x is (B,H,W,C). */
void cv_im2col(float *col, const float *x, int B, const cv_window *g, bool nearest);
/** dx (B,H,W,C) += the col-shaped gradient scattered back (the adjoint of cv_im2col); with
 *  overwrite, dx = it (no need to clear dx first). */
void cv_col2im(float *dx, const float *dcol, int B, const cv_window *g, bool nearest, bool overwrite);

/** out (B,OH,OW,F) = bias + the convolution of x (B,H,W,C) with w (KH,KW,C,F), computed
 *  directly (no im2col): for short receptive fields (a first layer's KH*KW*C of 9, or 27 into a
 *  filter count the implicit GEMM's tile does not divide), where building the column matrix
 *  costs more than the products. ep (bias, ReLU) may be NULL. */
void cv_conv_direct(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                    const cv_window *g, bool nearest);
/** dw (KH,KW,C,F) += the weight gradient of cv_conv_direct given dy (B,OH,OW,F), and db (F)
 *  += the bias gradient unless db is NULL, computed directly (per-sample sums added in sample
 *  order). -1 when its buffer cannot be allocated (the caller then takes the im2col + GEMM
 *  path). */
int cv_conv_direct_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g,
                      bool nearest);
/** Whether cv_conv_gemm and cv_conv_gemm_dw take this convolution: windows inside the input (no
 *  padding), F a multiple of the micro-kernel's width, KW*C at least its height and a multiple
 *  of a third of it (e.g. F % 32, KW*C >= 12 and KW*C % 4 with AVX-512: a window row's last
 *  weight-gradient tile, cut short, then reads nothing past the row). A pointwise conv's
 *  (1x1, stride 1) weight gradient is one too. */
bool cv_conv_gemm_fits(const cv_window *g, int F);
/** Whether cv_conv_wino and cv_conv_wino_dw take this convolution: a 3x3 window, stride 1,
 *  zero padding of at most 2 (padding that repeats edge pixels is the caller's to refuse), a
 *  multiple of 16 channels, F a multiple of the micro-kernel's width, and CONVOY_WINOGRAD not
 *  "0". */
bool cv_conv_wino_fits(const cv_window *g, int F);
/** Whether cv_conv_wino_dx takes it: the same with the roles of C and F swapped. */
bool cv_conv_wino_dx_fits(const cv_window *g, int F);
/** Products per Winograd F(4x4,3x3) block: a transformed kernel is (CV_WINO_XI, C, F) floats. */
#define CV_WINO_XI 36
/** Whether cv_conv_wino and cv_conv_wino_dw take a map (cv_chan_map) over this window's input:
 *  where each sample's zero-padded copy, which the map is applied into, stays within the
 *  kernels' bound of 512 KiB. */
bool cv_conv_wino_maps(const cv_window *g);
/** U = w (3,3,C,F) transformed for cv_conv_wino, (CV_WINO_XI, C, F); turned: for
 *  cv_conv_wino_dx, (CV_WINO_XI, F, C). -1 when out of memory (turned only). */
int cv_conv_wino_weights(float *U, const float *w, int C, int F, bool turned);
/** out (B,OH,OW,F) = ep(the convolution of x (B,H,W,C) with w (3,3,C,F)) by Winograd F(4x4,3x3):
 *  36 products per 4x4 output block and channel where the direct sums have 144; equal to the
 *  direct sums up to rounding, and the same bits at any thread count. U: w already
 *  transformed (cv_conv_wino_weights), or NULL to transform it here. map (NULL: none): the
 *  input is map(x), computed as each sample is read (a batchnorm and ReLU before the conv that
 *  never write their output), the same bits as the pass over map(x) written out; only where
 *  cv_conv_wino_maps. -1 (out unspecified) when its scratch memory cannot be had, or a map is
 *  given where it does not fit: the caller then takes another path. */
int cv_conv_wino(float *out, const float *x, const float *w, const float *U, const cv_epilogue *ep, int B, int F,
                 const cv_window *g, const cv_chan_map *map);
/** dx (B,H,W,C) = the input gradient of that convolution given dy (B,OH,OW,F): the same
 *  forward pass over dy with the kernel turned 180 degrees (U: its turned transform, or NULL).
 *  dy is zero past its first dy_rows rows and dy_cols columns (OH and OW when nothing is
 *  known): the blocks of dx that read only those are not computed, their pixels set to 0.
 *  -1 as above. */
int cv_conv_wino_dx(float *dx, const float *dy, const float *w, const float *U, int B, int F, const cv_window *g,
                    int dy_rows, int dy_cols);
/** dw (3,3,C,F) += its weight gradient given x and dy, by the transposed Winograd transforms
 *  (each block's products summed in block order, or, where C F <= 2048 and there are 1024
 *  blocks or more, in fixed groups of blocks whose sums are then added in group order); equal
 *  to the direct sums up to rounding, the same bits at any thread count; map: the input is map(x), as for cv_conv_wino. -1 (nothing
 *  added) as above. */
int cv_conv_wino_dw(float *dw, const float *x, const float *dy, int B, int F, const cv_window *g,
                    const cv_chan_map *map);
/** out (B,OH,OW,F) = ep(the convolution of x (B,H,W,C) with w (KH,KW,C,F)) as an implicit GEMM:
 *  the same sums, in the same order, as im2col + cv_sgemm, without the column matrix. */
void cv_conv_gemm(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                  const cv_window *g);
/** dw (KH,KW,C,F) += its weight gradient given dy (B,OH,OW,F), and db (F; NULL: none) += the
 *  bias gradient (dy summed over pixels), one sample at a time in order. */
void cv_conv_gemm_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g);
/** Whether cv_conv_gemm_padded and cv_conv_gemm_padded_dw take this convolution: any window,
 *  stride and padding (zeros or nearest), F a multiple of the micro-kernel's width, and
 *  CONVOY_IMPLICIT not "0". */
bool cv_conv_gemm_padded_fits(const cv_window *g, int F);
/** cv_conv_gemm on a copy of x holding its padding (the values im2col would write, in a scratch
 *  buffer of B x the padded sample): the same sums in the same order as im2col + cv_sgemm where
 *  that takes K in one slice, without the column matrix. -1 when the copy cannot be had. */
int cv_conv_gemm_padded(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                        const cv_window *g, bool nearest);
/** The weight (and bias, db not NULL) gradient the same way, adding to dw and db; any KW*C.
 *  -1 (nothing added) when the copy cannot be had. */
int cv_conv_gemm_padded_dw(float *dw, float *db, const float *x, const float *dy, int B, int F, const cv_window *g,
                           bool nearest);
/** Whether cv_conv_gemm_dx takes it: any window, padding and stride up to 8, C a multiple of the
 *  width of a micro-kernel (cv_conv_ukernels_for: 16 channels on AVX-512 take AVX2's), and
 *  CONVOY_IMPLICIT not "0" (zero padding is the caller's to check). */
bool cv_conv_gemm_dx_fits(const cv_window *g);
/** dx (B,H,W,C) = the input gradient given dy (B,OH,OW,F) of a zero-padded convolution with w
 *  (KH,KW,C,F): per residue class of the stride (one class at stride 1), the implicit GEMM over
 *  a padded copy of dy with the class's taps turned 180 degrees and their channel axes swapped
 *  (each value's sum over (tap row, tap column, f) in order; the same bits at any thread count).
 *  -1 when its buffers cannot be had. */
int cv_conv_gemm_dx(float *dx, const float *dy, const float *w, int B, int F, const cv_window *g);
/** --precision bf16's convolutions (conv-bf16.c), implicit GEMMs on cv_bgemm_rows with the bits
 *  of im2col + cv_bgemm_ep: out (B,OH,OW,F) = ep(x conv w); dw (KH,KW,C,F) += the weight
 *  gradient (the bias's is the caller's); dx (B,H,W,C) = the input gradient of a stride-1 conv
 *  (cv_conv_bf16_dx_fits; zero padding) by the turned kernel over dy, -1 when it does not fit or
 *  its buffer cannot be had. */
void cv_conv_bf16(float *out, const float *x, const float *w, const cv_epilogue *ep, int B, int F, const cv_window *g,
                  bool nearest);
void cv_conv_bf16_dw(float *dw, const float *x, const float *dy, int B, int F, const cv_window *g, bool nearest);
bool cv_conv_bf16_dx_fits(const cv_window *g);
int cv_conv_bf16_dx(float *dx, const float *dy, const float *w, int B, int F, const cv_window *g);
/** Receptive fields up to this many values go through cv_conv_direct and cv_conv_direct_dw. */
#define CV_CONV_DIRECT_MAX_K 32

typedef enum { CV_POOL_MAX, CV_POOL_AVG, CV_POOL_MIN } cv_pool_kind;
/** out (B,OH,OW,C) from x (B,H,W,C), windows fully inside (valid). For max/min, arg (same
 *  size as out) records the flat input offset within the sample that won. */
void cv_pool_forward(float *out, int32_t *arg, const float *x, int B, const cv_window *g,
                     cv_pool_kind kind);
/** Whether cv_pool_forward_mapped takes this window: a sample of at most 512 KiB. */
bool cv_pool_maps(const cv_window *g);
/** cv_pool_forward over map(x) (a batchnorm before the pool that never writes its output): each
 *  sample mapped into the calling thread's scratch, then pooled from there; the same values and
 *  winners as pooling map(x) written out. -1 (out unspecified) where the window does not fit
 *  (cv_pool_maps) or the scratch cannot be had. */
int cv_pool_forward_mapped(float *out, int32_t *arg, const float *x, int B, const cv_window *g, cv_pool_kind kind,
                           const cv_chan_map *map);
/** dx (B,H,W,C) += gradient of the pool given dout (B,OH,OW,C); with overwrite, dx = it. With
 *  relu_y (max/min only: the pool's output (B,OH,OW,C), its input being a ReLU-family output)
 *  each winner's gradient is also multiplied by the ReLU's derivative there (1 where the
 *  winner, relu_y, is > 0, else leak), so the layer before needs no activation backward of its
 *  own and its output need not be kept. */
void cv_pool_backward(float *dx, const float *dout, const int32_t *arg, int B, const cv_window *g,
                      cv_pool_kind kind, bool overwrite, const float *relu_y, float leak);
/** Whether cv_conv_pool and cv_conv_pool_dw take a conv2d (window inside the input, 3x3 on one
 *  channel or 2x2 on up to three, F a multiple of 16) followed by a 2x2, stride-2 max/min pool. */
bool cv_conv_pool_fits(const cv_window *conv, const cv_window *pool, int F, cv_pool_kind kind);
/** The pool's out and arg (B,OH,OW,F of pool) straight from x through the conv (w, ep) and the
 *  pool, without writing the conv output: the same values, winners and bits as cv_conv_direct
 *  then cv_pool_forward. */
void cv_conv_pool(float *out, int32_t *arg, const float *x, const float *w, const cv_epilogue *ep, int B, int F,
                  const cv_window *conv, const cv_window *pool, cv_pool_kind kind);
/** dw (and db unless NULL) += the conv's weight (bias) gradient given the pool's output gradient
 *  dout, winners arg and, when the conv has a ReLU-family activation, the pool output y (NULL:
 *  none; leak its negative slope): cv_pool_backward then cv_conv_direct_dw without the conv
 *  output's gradient map. -1 when its buffer cannot be had. */
int cv_conv_pool_dw(float *dw, float *db, const float *x, const float *dout, const int32_t *arg, const float *y,
                    float leak, int B, int F, const cv_window *conv, const cv_window *pool);

/** Measured peak FP32 FLOP/s of this machine with the current OpenMP thread count: an FMA
 *  loop on independent registers (AVX2+FMA when the CPU has it), about `seconds` long: the best
 *  of five rounds (a round another process interrupted does not lower it). */
double cv_peak_flops(double seconds);
/** The same for cv_bgemm_ep: VDPBF16PS's peak (two products per lane), or when emulated the
 *  FP32 one. */
double cv_peak_bf16_flops(double seconds);

#endif
