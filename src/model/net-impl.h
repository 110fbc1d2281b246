/* Private to model/: the network's state (struct cv_net) shared by its three files: net.c
 * (building it, its memory, parameters, accessors, the forward and backward passes),
 * net-tiles.c (the sample-tile scheduler of the spatial trunk) and net-metrics.c (loss and
 * metrics of the last pass). Nothing outside model/ includes it: the rest of convoy sees the
 * opaque cv_net of convoy/model.h. */
#ifndef CONVOY_MODEL_NET_IMPL_H
#define CONVOY_MODEL_NET_IMPL_H

#include "convoy/model.h"
#include "layers/layers-impl.h"

struct cv_net {
    cv_model_spec spec;      /* a copy; layers point at its entries */
    int n;                   /* layers, including the input at 0 */
    cv_layer layers[CV_MAX_LAYERS];
    cv_param_view views[CV_MAX_LAYERS];
    cv_precision precision;  /* the products' (cv_net_set_precision) */
    int first_trainable;     /* earliest layer whose parameters learn: backward stops there */
    int64_t nparams;
    int64_t ntrain;          /* trainable parameters: the prefix [0, ntrain) of params */
    float *params, *grads;   /* grads has ntrain entries: frozen layers have none */
    int max_batch;
    float *acts;             /* every activation, logits, gradient ping-pong, im2col */
    int32_t *args;           /* pooling winners */
    double *scratch;         /* every layer's kd->scratch() doubles */
    float *fold_buf;         /* the kernels and biases of layers a batchnorm was folded into */
    cv_leaves leaves;        /* --reproducible with batch statistics: the pass's leaves */
    float *logits, *dbuf[2];
    cv_workspace ws;
    bool fused;              /* loss takes the output layer's logits */
    double *prof_fwd, *prof_bwd; /* per-layer seconds, when profiling */
    cv_grad_hook hook;       /* told when a layer's gradients are final */
    void *hook_ctx;
    const float *input;      /* input of the last forward pass */
    int batch;               /* its batch size */
    int trunk;               /* layers [1, trunk) run a tile of samples at a time */
    int tile;                /* samples per tile, at most */
    bool tile_fixed;         /* tile was set by the user: taken as it is */
    int tile_threads;        /* threads the tile buffers below were made for */
    int64_t tile_grad;       /* floats of the trunk's trainable parameters (a prefix of grads) */
    int wave;                /* tiles whose gradients are summed per pass, at most: a function of
                                the layers alone (never of the batches reserved) */
    cv_workspace *tile_ws;   /* per thread: its im2col buffer */
    float *tile_buf;         /* per thread: gradient ping-pong, transient outputs, im2col */
    float *tile_part;        /* per tile of a wave: its trunk gradients, tile_grad floats */
    /* tile_buf per thread, tile_stride floats: two gradient halves of tile_half floats each, the
     * transient outputs, then the im2col buffer tile_ws[t].col points at */
    int64_t tile_stride, tile_half;
    /* a ReLU-family layer whose max/min pool applies its derivative: nothing reads its output
     * after the pool's forward, so a tiled pass keeps it in the thread's cache-sized buffer only */
    bool transient[CV_MAX_LAYERS];
    /* a transient conv2d whose pool's kernel computes it on the fly (cv_conv_pool): in a tiled
     * pass the pair runs as one kernel and the conv output is never written at all */
    bool fuse_pool[CV_MAX_LAYERS];
    /* a Winograd conv2d's transformed kernels (forward, then turned), 2 * CV_WINO_XI * C * F
     * floats, made from the weights at the start of each forward pass (prepare_winograd) */
    float *wino[CV_MAX_LAYERS];
};

/* net.c */
/** A flatten layer: NHWC memory is already (h, w, c) in order, so its output is the layer
 *  below's (for the first layer: the input of each forward pass), not a copy. */
bool net_reshapes(const cv_net *net, int i);
/** Layer l's forward over B rows starting at x (its buffers already at those rows); prof, when
 *  given, collects the seconds it took. */
void net_forward_layer(cv_net *net, cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx, double *prof);
/** Layer l's backward over B rows (its buffers already at them): d is the gradient with respect
 *  to its output, x its input, dx (NULL: not needed) receives the input gradient. */
void net_backward_layer(cv_net *net, cv_layer *l, const float *x, float *dx, float *d, int B, cv_workspace *ws,
                        double *prof);
int net_thread_id(void);

/* net-tiles.c */
/** Which layers form the tiled trunk, the tile size, and which conv + pool pairs fuse. */
void net_plan_tiles(cv_net *net);
/** The trunk's per-thread and per-tile buffers for batches up to B samples. */
int net_reserve_tiles(cv_net *net, int64_t B, cv_err *err);
void net_free_tiles(cv_net *net);
/** Whether a batch of B samples goes through the trunk in tiles (more than one tile). */
bool net_tiled(const cv_net *net, int B);
/** Layer j as seen by the rows starting at sample s (and, given part, with its parameter
 *  gradients going there). */
cv_layer net_tile_layer(const cv_net *net, int j, int s, float *part);
/** The trunk's forward pass over a batch of B, tile by tile. */
void net_forward_trunk(cv_net *net, const float *x, int B, bool training, uint64_t seed, int64_t epoch,
                       const int64_t *sample_ids);
/** The trunk's layers top down to lo, tile by tile; d holds the batch's gradient of layer top's
 *  output. */
void net_backward_trunk(cv_net *net, float *d, int top, int lo, int B);

#endif
