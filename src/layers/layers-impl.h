/* Private to layers/ and model/ (the network): the run-time side of a layer (its buffers inside
 * the network's allocations, the geometry its kernels take), the types of its forward and
 * backward passes, and what the kinds' files share. The kinds themselves are described in
 * convoy/layers.h (cv_layer_kinds[]); each kind's file is src/layers/<kind>.c. */
#ifndef CONVOY_LAYERS_IMPL_H
#define CONVOY_LAYERS_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/kernels.h"
#include "convoy/layers.h"

typedef struct cv_workspace {
    float *col;      /* im2col workspace, col_cap floats */
    int64_t col_cap;
    /* col holds the whole-batch im2col of layer col_layer's input col_x (B = col_batch), made
     * by the forward pass: its backward reuses it. col_layer 0: nothing reusable. */
    int col_layer, col_batch;
    const float *col_x;
} cv_workspace;

/** Sums v (n doubles) over every rank in place; nonzero on failure. */
typedef int (*cv_sum_fn)(void *ctx, double *v, int64_t n);

/** --reproducible with batch statistics: a pass's rows cut into the step's leaves. */
typedef struct cv_leaves {
    int n;                 /* leaves in this pass (0: none here; the sums still join the others') */
    int first;             /* the step's index of the first */
    const int *rows;       /* leaf j: rows [rows[j], rows[j + 1]) */
    /* out (len) = the sums of every leaf of every rank, added in the step's leaf order, from
     * this pass's leaves' sums (n x len); nonzero on failure */
    int (*sum)(void *ctx, const double *sums, int first, int n, int64_t len, double *out);
    void *ctx;
    float *const *grads;   /* backward: leaf j's parameter gradients (cv_net_grad_count floats) */
    const float *grads_base; /* the net's gradient buffer (a layer's offset in it is its offset there) */
} cv_leaves;

typedef struct cv_layer {
    const cv_layer_spec *spec;
    const cv_layer_kind_desc *kd; /* cv_layer_kinds[spec->kind] */
    int index;               /* position in the model file's layer list */
    int64_t in_size, out_size; /* floats per sample */
    float *w, *b, *dw, *db;  /* views into the network's parameter and gradient buffers;
                                dw and db are NULL for a frozen layer */
    float *state;            /* its untrained values (batchnorm: moving mean, then variance) */
    double *scratch;         /* kd->scratch() doubles kept from forward to backward */
    cv_sum_fn sum;           /* CV_KIND_BATCH: sums its statistics over the ranks; NULL: one */
    const cv_leaves *leaves; /* CV_KIND_BATCH: the pass's leaves (--reproducible), or NULL */
    bool folded;             /* a batchnorm folded into the layer before it (cv_net_fold_batchnorm):
                                its output is its input */
    bool relu_next;          /* a batchnorm that applies the ReLU-family activation layer after it
                                (forward: relu(y); backward: the derivative, from its output) */
    float relu_leak;         /* ... its negative slope */
    bool relu_zero;          /* end: that activation is a plain ReLU (0 below it, not leak x) */
    bool fused_into_prev;    /* that activation layer: its output is the batchnorm's, no passes */
    /* A batchnorm whose output (after the activation it applies) only a Winograd conv2d, a
     * pooling layer or an identity residual end reads (cv_bn_map_layers_fit): in training that
     * layer applies its normalisation as it reads its input (cv_conv_wino's map,
     * cv_pool_forward_mapped, cv_chan_map_add_rows), and the batchnorm never writes its output. */
    bool map_next;           /* ... planned (the next layer's in_bn is this layer) */
    bool map_live;           /* ... and its last forward pass left its output unwritten */
    const float *map_x;      /* ... that pass's input, map_rows samples */
    int map_rows;
    struct cv_layer *in_bn;  /* conv2d, end: the batchnorm whose normalisation it applies, or NULL */
    /* An end (no projection) with its ReLU, right before the next block's residual layer: the
     * end's gradient pass adds that layer's two gradients (the block's and the shortcut's). */
    struct cv_layer *sum_next; /* end: that residual layer, or NULL */
    bool sum_by_prev;          /* residual: its backward is that end's (the network skips it) */
    struct cv_layer *partner; /* end: its residual layer (whose output is the block's input and
                                 whose mask buffer takes the shortcut's gradient) */
    void *sum_ctx;
    float *out;              /* (max_batch, out_size) */
    int32_t *arg;            /* pooling winners (max_batch, out_size) */
    float *mask;             /* dropout scale factors (max_batch, out_size) */
    cv_window win;           /* conv2d / pooling geometry */
    int grad_rows, grad_cols; /* conv2d: its output gradient is zero past these rows and columns
                                 (the pool after it leaves them out of every window) */
    bool bf16;               /* --precision bf16: its products by cv_bgemm_ep (cv_layer_gemm) */
    bool act_fused;          /* forward applies the activation itself (ReLU family, in the kernel) */
    bool act_bwd_by_next;    /* the next layer's backward applies this layer's activation derivative */
    bool in_relu;            /* max/min pool after a ReLU-family layer: its backward does that */
    float in_leak;           /* ... with this negative slope (0 for ReLU) */
    /* conv2d by Winograd: the kernel transformed for the forward pass and turned for the input
     * gradient (cv_conv_wino_weights), made once per pass over a batch; NULL: not made */
    const float *wino_w, *wino_wt;
} cv_layer;

typedef struct cv_fwd_ctx {
    bool training;
    uint64_t seed;
    int64_t epoch;
    const int64_t *sample_ids; /* global sample index of each row of the batch */
    cv_workspace *ws;
} cv_fwd_ctx;

/* The linear part of a layer, out = f(x); the caller applies the activation unless the layer
 * has act_fused (then forward applied it, fused into its kernel's epilogue). */
typedef void (*cv_forward_fn)(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx);
/* Adds the parameter gradients into dw/db (unless NULL: frozen) and, when dx is not NULL, writes
 * d(loss)/dx into dx (every element: dx need not be cleared first).
 * dout is the gradient with respect to the linear output (after activation backward). */
typedef void (*cv_backward_fn)(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                               cv_workspace *ws);

/* ---- shared by the kinds' files ---- */

/* the keys of a layer with weights */
#define CV_LAYER_WEIGHTED_KEYS                                                                  \
    (CV_KEY(CV_KEY_ACTIVATION) | CV_KEY(CV_KEY_ALPHA) | CV_KEY(CV_KEY_INIT) | CV_KEY(CV_KEY_USE_BIAS) | \
     CV_KEY(CV_KEY_TRAINABLE))

/* Shape rules (each an infer hook's whole work, or part of it); errors name file and line. */
/** A sliding window's (its kind's window hook): a conv2d's output has `filters` channels, a
 *  pool's its input's. */
int cv_layer_infer_window(cv_layer_spec *l, bool conv, const char *file, cv_err *err);
/** Every value of the sample in one flat vector. */
int cv_layer_infer_flat(cv_layer_spec *l, const char *file, cv_err *err);
/** The output is shaped as the input. */
int cv_layer_infer_same(cv_layer_spec *l, const char *file, cv_err *err);
/** " key=R" for a square pair, " key=R,C" else (kernel, stride, pool). */
void cv_layer_write_pair(FILE *f, const char *key, const int v[2]);
/** " padding=same|valid|P|PH,PW|T,B,L,R", the shortest form that gives l's. */
void cv_layer_write_padding(FILE *f, const cv_layer_spec *l);
/** Whether l has numeric padding on any side. */
bool cv_layer_padded(const cv_layer_spec *l);
/** " activation=A" and, for leaky_relu, " alpha=..." (a model-file line's keys). */
void cv_layer_write_act(FILE *f, const cv_layer_spec *l);
/** The keys of a layer with weights: activation, alpha, init, use_bias, trainable. */
void cv_layer_write_weighted(FILE *f, const cv_layer_spec *l);
/** The bias, and the activation when the layer fuses it, as a kernel's epilogue. */
cv_epilogue cv_layer_epilogue(const cv_layer *l);
/** cv_sgemm_ep, or cv_bgemm_ep for a layer under --precision bf16 (l->bf16) */
static inline void cv_layer_gemm(const cv_layer *l, bool transA, bool transB, int M, int N, int K, const float *A,
                                 int lda, const float *B, int ldb, float beta, float *C, int ldc, const cv_epilogue *ep)
{
    if (l->bf16) cv_bgemm_ep(transA, transB, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, ep);
    else cv_sgemm_ep(transA, transB, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, ep);
}
/** db[f] += sum over rows of dy[:, f], the same bits at any thread count (db NULL: frozen). */
void cv_bias_grad(float *db, const float *dy, int64_t rows, int F);
/** A linear part that is the identity (flatten, activation): a copy, none where out is x. */
void cv_identity_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx);
void cv_identity_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws);
/** Which pooling a pooling layer does. */
cv_pool_kind cv_pool_layer_kind(const cv_layer *l);

/** A conv2d (conv) and the max/min pool right after it (pool) run as one kernel where the
 *  shapes allow (cv_conv_pool_fits, a direct conv with its ReLU-family activation fused): the
 *  pool's out and arg from x, without the conv output. */
bool cv_conv_pool_layers_fit(const cv_layer *conv, const cv_layer *pool);
/** Whether conv2d layer l's forward pass and weight gradient are Winograd (cv_conv_wino,
 *  cv_conv_wino_dw): the layer's own choice, after the direct kernel has taken short receptive
 *  fields; and whether its input gradient is (cv_conv_wino_dx). */
bool cv_conv_layer_winograd(const cv_layer *l);
bool cv_conv_layer_winograd_dx(const cv_layer *l);
void cv_conv_pool_layers_forward(const cv_layer *conv, cv_layer *pool, const float *x, int B);
/** Their backward when the conv's input gradient is not wanted: the conv's weight and bias
 *  gradients from the pool's output gradient dout. -1 when out of memory for its buffer (the
 *  caller then runs the two backward passes). */
int cv_conv_pool_layers_backward(cv_layer *conv, const cv_layer *pool, const float *x, const float *dout, int B);

/** A batchnorm and the activation layer right after it run as one (cv_layer.relu_next): a
 *  ReLU-family activation the activation layer would apply in its own passes. */
bool cv_bn_act_layers_fit(const cv_layer *bn, const cv_layer *act);
/* Whether batchnorm bn may leave its normalising pass to next, the layer that reads its output
 * (cv_layer.map_next): a Winograd conv2d that takes a map, a max/avg/min pool over samples of
 * up to 512 KiB, or an identity residual end right after it (cv_end_takes_map). */
bool cv_bn_map_layers_fit(const cv_layer *bn, const cv_layer *next);
/* whether a residual end adds its shortcut to a batchnorm's map of its input: an identity one */
bool cv_end_takes_map(const cv_layer *end);
/* whether end's gradient pass may take the sum of residual's backward (cv_layer.sum_next) */
bool cv_end_takes_sum(const cv_layer *end, const cv_layer *residual);
/* Where batchnorm bn's last forward pass left its output unwritten (map_live): its input at the
 * rows of x (a pointer into bn's output), and m the map that gives the output from it; else
 * NULL (the output is there). */
const float *cv_bn_mapped_input(const cv_layer *bn, const float *x, cv_chan_map *m);
/* bn's output written after all (for a conv path that takes no map); no longer map_live */
void cv_bn_write_output(cv_layer *bn);
/** The same for a residual block's `end` (zeropad or identity shortcut) and the activation
 *  layer after it. */
bool cv_end_act_layers_fit(const cv_layer *end, const cv_layer *act);

/** Samples per im2col chunk for a conv layer, given the workspace budget. */
int cv_conv_chunk(const cv_layer *l, int B);
#define CV_COL_BUDGET ((int64_t)1 << 23) /* floats: 32 MiB of im2col workspace at most */

/** Activations, in place over (rows, width) with softmax along width (the last axis). */
void cv_act_forward(float *y, int64_t rows, int width, cv_act act, float alpha);
/** dy (rows, width) becomes d/dz given the activation's output y. */
void cv_act_backward(float *dy, const float *y, int64_t rows, int width, cv_act act, float alpha);

#endif
