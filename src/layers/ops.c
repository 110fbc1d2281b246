/* Forward and backward of every layer kind's linear part, and the registry that maps kinds
 * to them. conv2d and dense run on cv_sgemm; conv2d reads its receptive fields in place
 * (cv_conv_gemm) where the window and sizes allow, else works through im2col in chunks of
 * samples so the workspace stays bounded for any batch size; short receptive
 * fields go direct. Layouts: x (B, in), out (B, out), NHWC. */
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"
#include "kernels/isa.h"
#include "layers/layers-impl.h"

/* The bias, and the activation when the layer fuses it, as the kernel's epilogue. */
static cv_epilogue layer_epilogue(const cv_layer *l)
{
    const bool relu = l->act_fused && l->spec->act != CV_ACT_LINEAR;
    return (cv_epilogue){l->b, relu, relu && l->spec->act == CV_ACT_LEAKY_RELU ? l->spec->alpha : 0.0f};
}

/* db[f] += sum over rows of dy[:, f]. Rows are cut into fixed chunks summed in parallel
 * (contiguous, vectorised) and the chunk sums are added in order: the result does not depend
 * on the thread count. */
static void bias_grad(float *db, const float *dy, int64_t rows, int F)
{
    enum { ROWS = 512 };
    if (!db) return;
    const int64_t chunks = (rows + ROWS - 1) / ROWS;
    float *part = cv_scratch(CV_SCRATCH_BIAS_GRAD, sizeof(float) * (size_t)(chunks * F));
    if (!part) { /* no memory for partial sums: the serial loop needs none */
        for (int64_t r = 0; r < rows; r++)
            for (int f = 0; f < F; f++) db[f] += dy[r * F + f];
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        float *restrict p = part + c * F;
        for (int f = 0; f < F; f++) p[f] = 0.0f;
        const int64_t end = (c + 1) * ROWS < rows ? (c + 1) * ROWS : rows;
        for (int64_t r = c * ROWS; r < end; r++)
            for (int f = 0; f < F; f++) p[f] += dy[r * F + f];
    }
    for (int f = 0; f < F; f++) { /* the chunk sums in order, in double */
        double sum = 0.0;
        for (int64_t c = 0; c < chunks; c++) sum += part[c * F + f];
        db[f] += (float)sum;
    }
}

int cv_conv_chunk(const cv_layer *l, int B)
{
    const int64_t per = (int64_t)l->win.OH * l->win.OW * l->win.KH * l->win.KW * l->win.C;
    int64_t c = CV_COL_BUDGET / (per ? per : 1);
    if (c < 1) c = 1;
    return c < B ? (int)c : B;
}

/* padding that repeats edge pixels is not Winograd's (its blocks read zeros there) */
static bool zero_padded(const cv_layer *l) { return !(l->spec->pad_nearest && l->spec->same); }

bool cv_conv_layer_winograd(const cv_layer *l)
{
    const cv_window *g = &l->win;
    return g->KH * g->KW * g->C > CV_CONV_DIRECT_MAX_K && zero_padded(l) && cv_conv_wino_fits(g, l->spec->filters);
}

bool cv_conv_layer_winograd_dx(const cv_layer *l)
{
    return zero_padded(l) && cv_conv_wino_dx_fits(&l->win, l->spec->filters);
}

static void conv_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const cv_window *g = &l->win;
    const int K = g->KH * g->KW * g->C, F = l->spec->filters, P = g->OH * g->OW;
    const cv_epilogue ep = layer_epilogue(l);
    if (K <= CV_CONV_DIRECT_MAX_K) {
        cv_conv_direct(l->out, x, l->w, &ep, B, F, g, l->spec->pad_nearest);
        return;
    }
    if (cv_conv_layer_winograd(l) && cv_conv_wino(l->out, x, l->w, l->wino_w, &ep, B, F, g) == 0) {
        ctx->ws->col_layer = 0;
        return;
    }
    if (cv_conv_gemm_fits(g, F)) {
        ctx->ws->col_layer = 0;
        cv_conv_gemm(l->out, x, l->w, &ep, B, F, g);
        return;
    }
    const int chunk = cv_conv_chunk(l, B);
    cv_workspace *ws = ctx->ws;
    /* a whole batch in one chunk stays in the workspace for the backward pass */
    ws->col_layer = chunk == B && ctx->training ? l->index : 0;
    ws->col_x = x;
    ws->col_batch = B;
    for (int s = 0; s < B; s += chunk) {
        const int cb = B - s < chunk ? B - s : chunk;
        cv_im2col(ws->col, x + (size_t)s * l->in_size, cb, g, l->spec->pad_nearest);
        cv_sgemm_ep(false, false, cb * P, F, K, 1.0f, ws->col, K, l->w, F, 0.0f,
                    l->out + (size_t)s * l->out_size, F, &ep);
    }
}

static void conv_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                          cv_workspace *ws)
{
    const cv_window *g = &l->win;
    const int K = g->KH * g->KW * g->C, F = l->spec->filters, P = g->OH * g->OW;
    const int chunk = cv_conv_chunk(l, B);
    /* a first layer (no dx) with a short receptive field: the direct weight and bias gradients */
    if (!dx && l->dw && K <= CV_CONV_DIRECT_MAX_K &&
        cv_conv_direct_dw(l->dw, l->db, x, dout, B, F, g, l->spec->pad_nearest) == 0)
        return;
    /* the weight gradient (none when frozen) by Winograd, or as an implicit GEMM that sums the
     * bias gradient too, or below through im2col; the input gradient by Winograd, or below
     * through col2im */
    bool dw_done = !l->dw, db_done = !l->dw;
    if (!dw_done && cv_conv_layer_winograd(l) && cv_conv_wino_dw(l->dw, x, dout, B, F, g) == 0) {
        dw_done = true;
    } else if (!dw_done && cv_conv_gemm_fits(g, F)) {
        cv_conv_gemm_dw(l->dw, l->db, x, dout, B, F, g);
        dw_done = db_done = true;
    }
    if (!db_done) bias_grad(l->db, dout, (int64_t)B * P, F);
    const bool dx_done = !dx || (cv_conv_layer_winograd_dx(l) &&
                                 cv_conv_wino_dx(dx, dout, l->w, l->wino_wt, B, F, g, l->grad_rows, l->grad_cols) == 0);
    if (dw_done && dx_done) return;
    const bool reuse = ws->col_layer == l->index && ws->col_x == x && ws->col_batch == B && chunk == B;
    for (int s = 0; s < B; s += chunk) {
        const int cb = B - s < chunk ? B - s : chunk;
        const float *dy = dout + (size_t)s * l->out_size;
        if (!dw_done) {
            if (!reuse) cv_im2col(ws->col, x + (size_t)s * l->in_size, cb, g, l->spec->pad_nearest);
            cv_sgemm(true, false, K, F, cb * P, 1.0f, ws->col, K, dy, F, 1.0f, l->dw, F);
        }
        ws->col_layer = 0; /* the input gradient below overwrites col */
        if (dx_done) continue;
        cv_sgemm(false, true, cb * P, K, F, 1.0f, dy, F, l->w, F, 0.0f, ws->col, K);
        cv_col2im(dx + (size_t)s * l->in_size, ws->col, cb, g, l->spec->pad_nearest, true);
    }
}

static cv_pool_kind pool_kind(const cv_layer *l)
{
    return l->spec->kind == CV_LAYER_MAXPOOL2D ? CV_POOL_MAX
         : l->spec->kind == CV_LAYER_MINPOOL2D ? CV_POOL_MIN : CV_POOL_AVG;
}

bool cv_conv_pool_layers_fit(const cv_layer *conv, const cv_layer *pool)
{
    const cv_layer_kind pk = pool->spec->kind;
    return conv->spec->kind == CV_LAYER_CONV2D && (pk == CV_LAYER_MAXPOOL2D || pk == CV_LAYER_MINPOOL2D) &&
           conv->act_fused && conv->win.KH * conv->win.KW * conv->win.C <= CV_CONV_DIRECT_MAX_K &&
           cv_conv_pool_fits(&conv->win, &pool->win, conv->spec->filters, pool_kind(pool));
}

void cv_conv_pool_layers_forward(const cv_layer *conv, cv_layer *pool, const float *x, int B)
{
    const cv_epilogue ep = layer_epilogue(conv);
    cv_conv_pool(pool->out, pool->arg, x, conv->w, &ep, B, conv->spec->filters, &conv->win, &pool->win,
                 pool_kind(pool));
}

int cv_conv_pool_layers_backward(cv_layer *conv, const cv_layer *pool, const float *x, const float *dout, int B)
{
    if (!conv->dw) return 0; /* frozen: nothing to compute */
    return cv_conv_pool_dw(conv->dw, conv->db, x, dout, pool->arg, pool->in_relu ? pool->out : NULL,
                           pool->in_leak, B, conv->spec->filters, &conv->win, &pool->win);
}

static void pool_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    cv_pool_forward(l->out, l->arg, x, B, &l->win, pool_kind(l));
}

static void pool_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                          cv_workspace *ws)
{
    (void)x, (void)ws;
    if (dx) cv_pool_backward(dx, dout, l->arg, B, &l->win, pool_kind(l), true, l->in_relu ? l->out : NULL, l->in_leak);
}

static void dense_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    const int I = (int)l->in_size, U = (int)l->out_size;
    const cv_epilogue ep = layer_epilogue(l);
    cv_sgemm_ep(false, false, B, U, I, 1.0f, x, I, l->w, U, 0.0f, l->out, U, &ep);
}

static void dense_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                           cv_workspace *ws)
{
    (void)ws;
    const int I = (int)l->in_size, U = (int)l->out_size;
    bias_grad(l->db, dout, B, U);
    if (l->dw) cv_sgemm(true, false, I, U, B, 1.0f, x, I, dout, U, 1.0f, l->dw, U);
    if (dx) cv_sgemm(false, true, B, I, U, 1.0f, dout, U, l->w, U, 0.0f, dx, I);
}

/* flatten and activation: the linear part is the identity (NHWC memory is already (h,w,c)) */
static void copy_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    if (l->out != x) /* a flatten's output is its input's buffer (cv_net_reserve) */
        memcpy(l->out, x, sizeof(float) * (size_t)B * l->out_size);
}

static void copy_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                          cv_workspace *ws)
{
    (void)x, (void)ws;
    if (dx) memcpy(dx, dout, sizeof(float) * (size_t)B * l->out_size);
}

/* One sample's units: the coin of unit i is a hash of key and i, kept units scaled by keep.
 * Integer hashing, an exact conversion and one product: the same bits at any vector width. */
static inline __attribute__((always_inline)) void dropout_row_body(float *restrict out, float *restrict mask,
                                                                   const float *restrict x, int64_t n, uint64_t key,
                                                                   float rate, float keep)
{
    for (int64_t i = 0; i < n; i++) {
        mask[i] = cv_unit(cv_mix64(key ^ (uint64_t)i)) >= rate ? keep : 0.0f;
        out[i] = x[i] * mask[i];
    }
}

CV_ISA_CLONES(dropout_row, (float *out, float *mask, const float *x, int64_t n, uint64_t key, float rate, float keep),
              dropout_row_body, (out, mask, x, n, key, rate, keep))

/* Inverted dropout: kept units are scaled by 1/(1-rate) during training so that inference is
 * the identity. Each unit's coin is a hash of (seed, epoch, global sample index, layer,
 * unit): the same at any rank count and any batch composition. */
static void dropout_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const float rate = l->spec->rate;
    const int64_t n = l->out_size;
    if (!ctx->training || rate == 0.0f) {
        memcpy(l->out, x, sizeof(float) * (size_t)B * n);
        for (int64_t i = 0; i < (int64_t)B * n; i++) l->mask[i] = 1.0f;
        return;
    }
    const float keep_scale = 1.0f / (1.0f - rate);
    const dropout_row_fn row = dropout_row_pick();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const uint64_t key = cv_key(ctx->seed, ((uint64_t)CV_STREAM_DROPOUT << 32) | (uint64_t)l->index,
                                    (uint64_t)ctx->epoch, (uint64_t)ctx->sample_ids[b]);
        const size_t o = (size_t)b * n;
        row(l->out + o, l->mask + o, x + o, n, key, rate, keep_scale);
    }
}

static void dropout_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                             cv_workspace *ws)
{
    (void)x, (void)ws;
    if (!dx) return;
    const int64_t n = (int64_t)B * l->out_size;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] = dout[i] * l->mask[i];
}

const cv_layer_ops cv_layer_registry[CV_LAYER_KIND_COUNT] = {
    [CV_LAYER_INPUT] = {NULL, NULL},
    [CV_LAYER_CONV2D] = {conv_forward, conv_backward},
    [CV_LAYER_MAXPOOL2D] = {pool_forward, pool_backward},
    [CV_LAYER_AVGPOOL2D] = {pool_forward, pool_backward},
    [CV_LAYER_MINPOOL2D] = {pool_forward, pool_backward},
    [CV_LAYER_FLATTEN] = {copy_forward, copy_backward},
    [CV_LAYER_DENSE] = {dense_forward, dense_backward},
    [CV_LAYER_DROPOUT] = {dropout_forward, dropout_backward},
    [CV_LAYER_ACTIVATION] = {copy_forward, copy_backward},
};
