/* The sample-tile scheduler (model/net-impl.h): the spatial layers before the first dense one
 * run a tile of a few samples at a time through all of them, threads taking tiles in turn, and
 * the tiles' weight gradients are summed in tile order. Called by net.c only. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/timer.h"
#include "model/net-impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Sample tiling. The spatial layers before the first dense layer (conv2d, pooling, activation,
 * dropout, flatten) run a tile of a few samples at a time through all of them, so that a tile's
 * activations and im2col matrix stay in the core's L2 cache between layers instead of a whole
 * batch's going out to memory and back once per layer. The tile size depends on the layer sizes
 * and the batch size only (never on threads or ranks), so results do not change with either. */
#define CV_TILE_BYTES ((int64_t)1 << 20)
/* the trunk's weight gradients are summed per tile, then added in tile order: at most this much
 * memory of per-tile sums at once (the tiles beyond it wait for the next pass) */
#define CV_TILE_PART_BYTES ((int64_t)16 << 20)


void net_plan_tiles(cv_net *net)
{
    int t = 1;
    int64_t widest = 1; /* bytes one sample needs across a layer: input, output, im2col rows */
    /* the output layer stays out of the trunk (the loss reads its whole batch), and so does a
     * Winograd conv2d and what follows it: its transforms block the whole batch already, and on
     * a tile's few samples its weight gradient would pay a transform per tile */
    for (; t < net->n - 1 && (net->layers[t].kd->flags & CV_KIND_TILES) &&
           !(net->layers[t].spec->kind == CV_LAYER_CONV2D && cv_conv_layer_winograd(&net->layers[t]));
         t++) {
        const cv_layer *l = &net->layers[t];
        int64_t floats = l->in_size + l->out_size;
        if (l->kd->workspace) floats += l->kd->workspace(l, 1);
        if (4 * floats > widest) widest = 4 * floats;
    }
    bool reshapes_only = true; /* nothing to run in tiles then */
    for (int j = 1; j < t; j++) reshapes_only = reshapes_only && net_reshapes(net, j);
    net->trunk = reshapes_only ? 1 : t;
    for (int j = 1; j + 1 < t; j++) {
        net->transient[j] = net->layers[j].act_bwd_by_next;
        net->fuse_pool[j] = net->transient[j] && cv_conv_pool_layers_fit(&net->layers[j], &net->layers[j + 1]);
    }
    const char *fuse = getenv("CONVOY_FUSE"); /* 0: each layer on its own */
    if (fuse && strcmp(fuse, "0") == 0) memset(net->fuse_pool, 0, sizeof net->fuse_pool);
    const int64_t tile = CV_TILE_BYTES / widest;
    net->tile = tile < 1 ? 1 : tile > 64 ? 64 : (int)tile;
    const char *e = getenv("CONVOY_TILE"); /* samples per tile; 0: no tiling */
    if (e && *e) {
        net->tile = atoi(e) > 0 ? atoi(e) : INT_MAX;
        net->tile_fixed = true;
    }
}


/* Samples per tile for a batch of B: the fewest tiles of at most net->tile samples, their count
 * rounded up to a power of two so that 2, 4, 8 ... threads get equal shares (64 samples in
 * tiles of at most 5: 16 tiles of 4). It depends on B and the layers only. */
static int tile_rows(const cv_net *net, int B)
{
    if (net->tile_fixed || net->tile >= B) return net->tile;
    int tiles = 1;
    while (tiles < (B + net->tile - 1) / net->tile) tiles *= 2;
    return (B + tiles - 1) / tiles;
}


/* Layer j as seen by the tile starting at sample s: its per-sample buffers moved there, and,
 * given the tile's partial sums (backward), its parameter gradients (if it learns) going there. */
cv_layer net_tile_layer(const cv_net *net, int j, int s, float *part)
{
    cv_layer l = net->layers[j];
    l.out += (int64_t)s * l.out_size;
    if (l.arg) l.arg += (int64_t)s * l.out_size;
    if (l.mask) l.mask += (int64_t)s * l.out_size;
    if (part && l.dw) l.dw = part + net->views[j].kernel_off;
    if (part && l.db) l.db = part + net->views[j].bias_off;
    return l;
}


void net_free_tiles(cv_net *net)
{
    free(net->tile_ws);
    free(net->tile_buf);
    free(net->tile_part);
    net->tile_ws = NULL;
    net->tile_buf = net->tile_part = NULL;
}


/* The trunk's per-thread and per-tile buffers for batches up to B samples. */
int net_reserve_tiles(cv_net *net, int64_t B, cv_err *err)
{
    net_free_tiles(net);
    if (net->trunk <= 1) return 0;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const int64_t T = net->tile < B ? net->tile : B;
    int64_t col = 0, grad = 0, trans = 0, widest = 1; /* widest: a trunk layer's input gradient */
    for (int j = 1; j < net->trunk; j++) {
        const cv_layer *l = &net->layers[j];
        if (l->in_size > widest) widest = l->in_size;
        /* a fused conv's output is never written anywhere: it needs no transient buffer */
        if (net->transient[j] && !net->fuse_pool[j] && T * l->out_size > trans) trans = T * l->out_size;
        const int64_t c = l->kd->workspace ? l->kd->workspace(l, (int)T) : 0;
        if (c > col) col = c;
        if (l->dw) {
            const cv_param_view *v = &net->views[j];
            const int64_t end = v->kernel_off + v->kernel_n + v->bias_n;
            if (end > grad) grad = end;
        }
    }
    /* how the tiles' gradients are grouped into waves is part of the arithmetic: the wave
     * depends on the trunk's gradient size only, and the buffer holds the widest wave a batch
     * of up to B samples runs */
    int64_t wave = grad ? CV_TILE_PART_BYTES / (int64_t)(sizeof(float) * grad) : INT_MAX;
    wave = wave < 1 ? 1 : wave > INT_MAX ? INT_MAX : wave;
    const int64_t tiles = (B + tile_rows(net, (int)B) - 1) / tile_rows(net, (int)B);
    const int64_t slots = wave < tiles ? wave : tiles;
    net->tile_threads = threads;
    net->tile_grad = grad;
    net->wave = (int)wave;
    net->tile_half = T * widest;
    net->tile_stride = 2 * T * widest + trans + col;
    net->tile_ws = cv_calloc((size_t)threads, sizeof(cv_workspace), "tile workspaces", err);
    net->tile_buf = cv_malloc(sizeof(float) * (size_t)(threads * net->tile_stride), "tile buffers", err);
    net->tile_part = cv_malloc(sizeof(float) * (size_t)(grad ? slots * grad : 1), "tile gradients", err);
    if (!net->tile_ws || !net->tile_buf || !net->tile_part) {
        net_free_tiles(net);
        return -1;
    }
    for (int t = 0; t < threads; t++)
        net->tile_ws[t] = (cv_workspace){net->tile_buf + t * net->tile_stride + 2 * T * widest + trans, col, 0, 0,
                                         NULL};
    return 0;
}


int cv_net_tile(const cv_net *net) { return net->trunk > 1 ? net->tile : 0; }


int cv_net_set_tile(cv_net *net, int samples, cv_err *err)
{
    const int old = net->tile;
    const bool old_fixed = net->tile_fixed;
    net->tile = samples > 0 ? samples : INT_MAX;
    net->tile_fixed = true;
    if (net->trunk > 1 && net->max_batch && net_reserve_tiles(net, net->max_batch, err)) {
        net->tile = old;
        net->tile_fixed = old_fixed;
        return -1;
    }
    return 0;
}


/* Whether a batch of B samples goes through the trunk in tiles (more than one tile). */
bool net_tiled(const cv_net *net, int B) { return net->trunk > 1 && net->tile_buf && B > net->tile; }


static int tile_threads(const cv_net *net)
{
#ifdef _OPENMP
    const int t = omp_get_max_threads();
    return t < net->tile_threads ? t : net->tile_threads;
#else
    (void)net;
    return 1;
#endif
}


int cv_net_tile_for(const cv_net *net, int B) { return net_tiled(net, B) ? tile_rows(net, B) : 0; }


bool cv_net_fused_with_next(const cv_net *net, int layer)
{
    return layer >= 1 && layer < net->n && net->fuse_pool[layer];
}


/* Threads take tiles one at a time (whoever is free: a tile's result does not depend on the
 * thread) and run each through the whole trunk with serial kernels, in their own L2. A layer's
 * time in the profile is thread 0's: the threads work side by side. */
void net_forward_trunk(cv_net *net, const float *x, int B, bool training, uint64_t seed, int64_t epoch,
                          const int64_t *sample_ids)
{
    const int T = tile_rows(net, B), tiles = (B + T - 1) / T;
#pragma omp parallel num_threads(tile_threads(net))
    {
        const int t = net_thread_id();
        double *prof = t == 0 ? net->prof_fwd : NULL;
        const cv_fwd_ctx ctx0 = {training, seed, epoch, NULL, &net->tile_ws[t]};
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < tiles; k++) {
            const int s = k * T, cb = B - s < T ? B - s : T;
            cv_fwd_ctx ctx = ctx0;
            ctx.sample_ids = sample_ids ? sample_ids + s : NULL;
            const float *cur = x + (size_t)s * net->layers[1].in_size;
            float *trans = net->tile_buf + (size_t)t * net->tile_stride + 2 * net->tile_half;
            for (int j = 1; j < net->trunk; j++) {
                cv_layer l = net_tile_layer(net, j, s, NULL);
                if (net->fuse_pool[j]) { /* j and its pool at once; the time shows on j */
                    cv_layer pool = net_tile_layer(net, j + 1, s, NULL);
                    const double t0 = prof ? cv_now() : 0.0;
                    cv_conv_pool_layers_forward(&l, &pool, cur, cb);
                    if (prof) prof[j] += cv_now() - t0;
                    cur = pool.out;
                    j++;
                    continue;
                }
                if (net->transient[j]) l.out = trans;
                net_forward_layer(net, &l, cur, cb, &ctx, prof);
                cur = l.out;
            }
        }
    }
}


/* Trunk layers top down to lo, tile by tile; d holds the whole batch's gradient of layer top's
 * output. Each tile's parameter gradients go to its own partial sums, added to grads in tile
 * order after each wave of tiles: the sum does not depend on the thread count. */
void net_backward_trunk(cv_net *net, float *d, int top, int lo, int B)
{
    const int T = tile_rows(net, B), tiles = (B + T - 1) / T;
    const int64_t G = net->tile_grad;
    for (int w0 = 0; w0 < tiles; w0 += net->wave) {
        const int w1 = tiles - w0 < net->wave ? tiles : w0 + net->wave;
#pragma omp parallel num_threads(tile_threads(net))
        {
            const int t = net_thread_id();
            double *prof = t == 0 ? net->prof_bwd : NULL;
            float *buf = net->tile_buf + (size_t)t * net->tile_stride;
#pragma omp for schedule(dynamic, 1)
            for (int k = w0; k < w1; k++) {
                const int s = k * T, cb = B - s < T ? B - s : T;
                float *part = net->tile_part + (size_t)(k - w0) * G;
                if (G) memset(part, 0, sizeof(float) * (size_t)G);
                float *dt = d + (size_t)s * net->layers[top].out_size;
                for (int j = top, pp = 0; j >= lo; j--, pp ^= 1) {
                    cv_layer l = net_tile_layer(net, j, s, part);
                    const float *x = (j == 1 ? net->input : net->layers[j - 1].out) + (size_t)s * l.in_size;
                    if (j - 1 >= lo && net->fuse_pool[j - 1] && j - 1 <= net->first_trainable) {
                        /* pool j and the conv below it, whose input gradient nobody wants: the
                         * conv's weight gradient straight from the pool's (time shown on j - 1) */
                        cv_layer conv = net_tile_layer(net, j - 1, s, part);
                        const float *cx = (j == 2 ? net->input : net->layers[j - 2].out) + (size_t)s * conv.in_size;
                        const double t0 = prof ? cv_now() : 0.0;
                        if (cv_conv_pool_layers_backward(&conv, &l, cx, dt, cb) == 0) {
                            if (prof) prof[j - 1] += cv_now() - t0;
                            break; /* j - 1 was the last layer to go */
                        }
                    }
                    if (net_reshapes(net, j) && j > net->first_trainable && !l.dw) {
                        pp ^= 1; /* the gradient passes through as it is, in the same buffer */
                        continue;
                    }
                    float *dx = j > net->first_trainable ? buf + pp * net->tile_half : NULL;
                    net_backward_layer(net, &l, x, dx, dt, cb, &net->tile_ws[t], prof);
                    dt = dx;
                }
            }
        }
        const int n = w1 - w0;
#pragma omp parallel for schedule(static)
        for (int64_t g = 0; g < G; g++) { /* the tiles' sum, then added: backward stays additive */
            float sum = 0.0f;
            for (int k = 0; k < n; k++) sum += net->tile_part[(size_t)k * G + g];
            net->grads[g] += sum;
        }
    }
}


