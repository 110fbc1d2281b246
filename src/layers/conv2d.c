/* conv2d: a 2-D convolution over NHWC samples, kernel (KH,KW,Cin,Cout) as Keras keeps it, with
 * stride and padding valid or same (zeros, or the nearest edge value). Its passes run on
 * cv_sgemm's micro-kernel: it reads its receptive fields in place (cv_conv_gemm) where the window
 * and sizes allow, takes Winograd where that pays, else reads them from a padded copy of the
 * input (cv_conv_gemm_padded; the input gradient likewise from a padded copy of the output
 * gradient, one implicit GEMM per residue class of the stride), and only when the filter count
 * does not suit the micro-kernel works through im2col in chunks of samples so the workspace
 * stays bounded for any batch size; short receptive fields go direct (direct_kernels). Under --precision bf16
 * (l->bf16) the products are bf16's: pointwise by cv_bgemm_ep, else as implicit GEMMs
 * (cv_conv_bf16*; a strided or edge-padded conv's input gradient through col2im), except the
 * direct ones and Winograd's (fp32: 4x fewer products beat bf16's 2x; CONVOY_WINOGRAD=0 makes
 * those bf16 too). Right before a max/min pool it can run as one kernel with it
 * (cv_conv_pool_layers_*). */
#include "layers/layers-impl.h"

int cv_conv_chunk(const cv_layer *l, int B)
{
    const int64_t per = (int64_t)l->win.OH * l->win.OW * l->win.KH * l->win.KW * l->win.C;
    int64_t c = CV_COL_BUDGET / (per ? per : 1);
    if (c < 1) c = 1;
    return c < B ? (int)c : B;
}

/* padding that repeats edge pixels is not Winograd's (its blocks read zeros there) */
static bool zero_padded(const cv_layer *l)
{
    return !(l->spec->pad_nearest && (l->spec->same || cv_layer_padded(l->spec)));
}

bool cv_conv_layer_winograd(const cv_layer *l)
{
    const cv_window *g = &l->win;
    return g->KH * g->KW * g->C > CV_CONV_DIRECT_MAX_K && zero_padded(l) && cv_conv_wino_fits(g, l->spec->filters);
}

bool cv_conv_layer_winograd_dx(const cv_layer *l)
{
    return zero_padded(l) && cv_conv_wino_dx_fits(&l->win, l->spec->filters);
}

/* a 1x1, stride-1, unpadded window: its im2col matrix is the input itself, (B*H*W, C) */
static bool pointwise(const cv_window *g)
{
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->pad_top == 0 && g->pad_left == 0 &&
           g->OH == g->H && g->OW == g->W;
}

/* A short receptive field (KH KW C <= CV_CONV_DIRECT_MAX_K) through the direct kernels: where it
 * has at most 12 values (3x3 on one channel: their sums stay in registers), under bf16 (those
 * stay fp32), or where the implicit GEMM over a padded copy does not take the filter count; and
 * a pointwise forward pass (as a GEMM its K of 13 to 32 took the small-K loop: 16 -> 16 channels
 * on 32 x 32, batch 64, 3.5-4.2 ms against the direct kernel's 0.4-0.5 and the implicit GEMM's
 * 0.7-0.9). 3x3 on RGB (27 values) into a multiple of the tile's width goes to that implicit
 * GEMM: for VGG-BN's first layer (32 filters, batch 64, one thread, AMD EPYC) the weight
 * gradient 2.8 -> 1.6 ms and the forward pass 2.1 -> 1.9 ms. */
static bool direct_kernels(const cv_layer *l, bool forward)
{
    const cv_window *g = &l->win;
    const int K = g->KH * g->KW * g->C;
    return K <= CV_CONV_DIRECT_MAX_K && (K <= 12 || l->bf16 || (forward && pointwise(g)) ||
                                         !cv_conv_gemm_padded_fits(g, l->spec->filters));
}

static void conv_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const cv_window *g = &l->win;
    const int K = g->KH * g->KW * g->C, F = l->spec->filters, P = g->OH * g->OW;
    const cv_epilogue ep = cv_layer_epilogue(l);
    cv_chan_map map; /* the batchnorm before it left x unwritten: map(src) is x */
    const float *src = l->in_bn ? cv_bn_mapped_input(l->in_bn, x, &map) : NULL;
    if (src) {
        if (cv_conv_layer_winograd(l) && cv_conv_wino(l->out, src, l->w, l->wino_w, &ep, B, F, g, &map) == 0) {
            ctx->ws->col_layer = 0;
            return;
        }
        cv_bn_write_output(l->in_bn); /* x, for the paths below */
    }
    if (direct_kernels(l, true)) {
        cv_conv_direct(l->out, x, l->w, &ep, B, F, g, l->spec->pad_nearest);
        return;
    }
    if (pointwise(g)) {
        ctx->ws->col_layer = 0;
        cv_layer_gemm(l, false, false, B * P, F, K, x, K, l->w, F, 0.0f, l->out, F, &ep);
        return;
    }
    if (cv_conv_layer_winograd(l) && cv_conv_wino(l->out, x, l->w, l->wino_w, &ep, B, F, g, NULL) == 0) {
        ctx->ws->col_layer = 0;
        return;
    }
    if (l->bf16) { /* the implicit GEMM of cv_bgemm_rows */
        ctx->ws->col_layer = 0;
        cv_conv_bf16(l->out, x, l->w, &ep, B, F, g, l->spec->pad_nearest);
        return;
    }
    if (cv_conv_gemm_fits(g, F)) {
        ctx->ws->col_layer = 0;
        cv_conv_gemm(l->out, x, l->w, &ep, B, F, g);
        return;
    }
    if (cv_conv_gemm_padded_fits(g, F) && cv_conv_gemm_padded(l->out, x, l->w, &ep, B, F, g, l->spec->pad_nearest) == 0) {
        ctx->ws->col_layer = 0;
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
        cv_layer_gemm(l, false, false, cb * P, F, K, ws->col, K, l->w, F, 0.0f, l->out + (size_t)s * l->out_size, F,
                      &ep);
    }
}

/* A strided input gradient's column matrix small enough to stay in the L2 cache (a tile of a
 * few samples): there the GEMM on its packed kernel and col2im measured as fast as the implicit
 * GEMM over dy's residue classes (1.06x faster at 2 samples of 16x16x64 -> 8x8x128), which wins
 * once the matrix goes out to memory and back (1.2-1.45x on ResNet-20's batch of 128). */
static bool dx_col_in_cache(const cv_window *g, int B)
{
    return (g->SH > 1 || g->SW > 1) && (int64_t)B * g->OH * g->OW * g->KH * g->KW * g->C * 4 <= (512 << 10);
}

static void conv_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                          cv_workspace *ws)
{
    const cv_window *g = &l->win;
    const int K = g->KH * g->KW * g->C, F = l->spec->filters, P = g->OH * g->OW;
    const int chunk = cv_conv_chunk(l, B);
    /* the weight gradient over an input the batchnorm before left unwritten: by Winograd from
     * the batchnorm's input and map, or that input written after all for the paths below */
    cv_chan_map map;
    const float *src = l->in_bn && l->dw ? cv_bn_mapped_input(l->in_bn, x, &map) : NULL;
    const bool mapped_dw = src && cv_conv_layer_winograd(l) && cv_conv_wino_dw(l->dw, src, dout, B, F, g, &map) == 0;
    if (src && !mapped_dw) cv_bn_write_output(l->in_bn);
    /* a first layer (no dx) with a short receptive field: the direct weight and bias gradients */
    if (!mapped_dw && !dx && l->dw && direct_kernels(l, false) &&
        cv_conv_direct_dw(l->dw, l->db, x, dout, B, F, g, l->spec->pad_nearest) == 0)
        return;
    if (pointwise(g)) { /* the three products straight on x, dy and w */
        if (l->dw && !l->bf16 && cv_conv_gemm_fits(g, F)) { /* with the bias gradient, no packing */
            cv_conv_gemm_dw(l->dw, l->db, x, dout, B, F, g);
        } else if (l->dw) {
            cv_layer_gemm(l, true, false, K, F, B * P, x, K, dout, F, 1.0f, l->dw, F, NULL);
            cv_bias_grad(l->db, dout, (int64_t)B * P, F);
        }
        if (dx) cv_layer_gemm(l, false, true, B * P, K, F, dout, F, l->w, F, 0.0f, dx, K, NULL);
        return;
    }
    /* the weight gradient (none when frozen) by Winograd, or as an implicit GEMM that sums the
     * bias gradient too, or below through im2col; the input gradient by Winograd, or as the
     * implicit GEMM over dy, or below through col2im */
    bool dw_done = !l->dw || mapped_dw, db_done = !l->dw;
    if (!dw_done && cv_conv_layer_winograd(l) && cv_conv_wino_dw(l->dw, x, dout, B, F, g, NULL) == 0) {
        dw_done = true;
    } else if (!dw_done && l->bf16) {
        cv_conv_bf16_dw(l->dw, x, dout, B, F, g, l->spec->pad_nearest);
        dw_done = true;
    } else if (!dw_done && cv_conv_gemm_fits(g, F)) {
        cv_conv_gemm_dw(l->dw, l->db, x, dout, B, F, g);
        dw_done = db_done = true;
    } else if (!dw_done && cv_conv_gemm_padded_fits(g, F) &&
               cv_conv_gemm_padded_dw(l->dw, l->db, x, dout, B, F, g, l->spec->pad_nearest) == 0) {
        dw_done = db_done = true;
    }
    if (!db_done) cv_bias_grad(l->db, dout, (int64_t)B * P, F);
    const bool dx_done =
        !dx ||
        (cv_conv_layer_winograd_dx(l) &&
         cv_conv_wino_dx(dx, dout, l->w, l->wino_wt, B, F, g, l->grad_rows, l->grad_cols) == 0) ||
        (l->bf16 && zero_padded(l) && cv_conv_bf16_dx(dx, dout, l->w, B, F, g) == 0) ||
        (!l->bf16 && zero_padded(l) && cv_conv_gemm_dx_fits(g) && !dx_col_in_cache(g, B) &&
         cv_conv_gemm_dx(dx, dout, l->w, B, F, g) == 0);
    if (dw_done && dx_done) return;
    const bool reuse = ws->col_layer == l->index && ws->col_x == x && ws->col_batch == B && chunk == B;
    for (int s = 0; s < B; s += chunk) {
        const int cb = B - s < chunk ? B - s : chunk;
        const float *dy = dout + (size_t)s * l->out_size;
        if (!dw_done) {
            if (!reuse) cv_im2col(ws->col, x + (size_t)s * l->in_size, cb, g, l->spec->pad_nearest);
            cv_layer_gemm(l, true, false, K, F, cb * P, ws->col, K, dy, F, 1.0f, l->dw, F, NULL);
        }
        ws->col_layer = 0; /* the input gradient below overwrites col */
        if (dx_done) continue;
        cv_layer_gemm(l, false, true, cb * P, K, F, dy, F, l->w, F, 0.0f, ws->col, K, NULL);
        cv_col2im(dx + (size_t)s * l->in_size, ws->col, cb, g, l->spec->pad_nearest, true);
    }
}

bool cv_conv_pool_layers_fit(const cv_layer *conv, const cv_layer *pool)
{
    return conv->spec->kind == CV_LAYER_CONV2D && (pool->kd->flags & CV_KIND_WINNERS) &&
           conv->act_fused && conv->win.KH * conv->win.KW * conv->win.C <= CV_CONV_DIRECT_MAX_K &&
           cv_conv_pool_fits(&conv->win, &pool->win, conv->spec->filters, cv_pool_layer_kind(pool));
}

void cv_conv_pool_layers_forward(const cv_layer *conv, cv_layer *pool, const float *x, int B)
{
    const cv_epilogue ep = cv_layer_epilogue(conv);
    cv_conv_pool(pool->out, pool->arg, x, conv->w, &ep, B, conv->spec->filters, &conv->win, &pool->win,
                 cv_pool_layer_kind(pool));
}

int cv_conv_pool_layers_backward(cv_layer *conv, const cv_layer *pool, const float *x, const float *dout, int B)
{
    if (!conv->dw) return 0; /* frozen: nothing to compute */
    return cv_conv_pool_dw(conv->dw, conv->db, x, dout, pool->arg, pool->in_relu ? pool->out : NULL,
                           pool->in_leak, B, conv->spec->filters, &conv->win, &pool->win);
}

static void conv_defaults(cv_layer_spec *l)
{
    if (!l->stride[0]) l->stride[0] = l->stride[1] = 1;
}

static void conv_window(const cv_layer_spec *l, cv_window_spec *w)
{
    *w = (cv_window_spec){.k = {l->kernel[0], l->kernel[1]}, .stride = {l->stride[0], l->stride[1]}, .same = l->same,
                          .pad = {l->pad[0], l->pad[1], l->pad[2], l->pad[3]}};
}

static int conv_infer(cv_layer_spec *l, const char *file, cv_err *err) { return cv_layer_infer_window(l, true, file, err); }

static int conv_kernel_dims(const cv_layer_spec *l, int64_t d[4])
{
    d[0] = l->kernel[0];
    d[1] = l->kernel[1];
    d[2] = l->in.d[2];
    d[3] = l->filters;
    return 4;
}

static int64_t conv_bias_count(const cv_layer_spec *l) { return l->use_bias ? l->filters : 0; }

static double conv_flops(const cv_layer *l)
{
    return 2.0 * l->win.OH * l->win.OW * l->win.KH * l->win.KW * l->win.C * l->spec->filters;
}

/* the im2col matrix of a chunk of the B samples (even a direct conv: its backward may need it) */
static int64_t conv_workspace(const cv_layer *l, int B)
{
    return (int64_t)cv_conv_chunk(l, B) * l->win.OH * l->win.OW * l->win.KH * l->win.KW * l->win.C;
}

static void conv_write(FILE *f, const cv_layer_spec *l)
{
    fprintf(f, " filters=%d", l->filters);
    cv_layer_write_pair(f, "kernel", l->kernel);
    cv_layer_write_pair(f, "stride", l->stride);
    cv_layer_write_padding(f, l);
    fprintf(f, " pad_mode=%s", l->pad_nearest ? "nearest" : "zero");
    cv_layer_write_weighted(f, l);
}

const cv_layer_kind_desc cv_kind_conv2d = {
    .kind = CV_LAYER_CONV2D,
    .name = "conv2d",
    .keras_name = "conv2d",
    .keras_class = "Conv2D",
    .keys = CV_KEY(CV_KEY_FILTERS) | CV_KEY(CV_KEY_KERNEL) | CV_KEY(CV_KEY_STRIDE) | CV_KEY(CV_KEY_PADDING) |
            CV_KEY(CV_KEY_PAD_MODE) | CV_LAYER_WEIGHTED_KEYS,
    .required = CV_KEY(CV_KEY_FILTERS) | CV_KEY(CV_KEY_KERNEL),
    .flags = CV_KIND_WEIGHTS | CV_KIND_ACT | CV_KIND_EPILOGUE | CV_KIND_TILES,
    .defaults = conv_defaults,
    .infer = conv_infer,
    .kernel_dims = conv_kernel_dims,
    .bias_count = conv_bias_count,
    .window = conv_window,
    .flops = conv_flops,
    .workspace = conv_workspace,
    .write_keys = conv_write,
    .forward = conv_forward,
    .backward = conv_backward,
};
