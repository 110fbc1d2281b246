/* residual ... end: a block whose input is added to its output (He et al. 2015). `residual`
 * marks the block's start: its output is its input (the same memory, kept for `end`), and its
 * backward adds the shortcut's gradient to the block's. `end` adds the block's input, through
 * the shortcut, to the block's output:
 *   - the same shape: the identity;
 *   - else, shortcut=zeropad (the paper's option A): the input subsampled with the stride that
 *     maps its rows and columns onto the output's (x[::s, ::s]) and its channels placed in the
 *     middle of the output's, (C' - C) / 2 zero channels before them and the rest after (as
 *     the common CIFAR ResNet code pads them);
 *   - shortcut=projection (option B): a 1x1 conv2d with that stride and a bias, its weights the
 *     end layer's (kernel (1,1,C,C'), Keras's layout).
 * A vector (D) is a 1x1 map of D channels.
 *
 * A ReLU-family activation layer right after a zeropad or identity `end` runs inside it
 * (relu_next, set by the network): forward relu(x + s) in the addition's pass; backward the
 * derivative, from end's output (the relu's), in the pass that hands the gradient to both the
 * block and the shortcut. The same operations on the same values as the two layers apart.
 * Two more fusions the network sets up: an identity end adds its shortcut to the map of the
 * batchnorm before it (in_bn: that batchnorm writes no output), and an end whose activation
 * the next block's residual layer follows adds that layer's two gradients in its gradient pass
 * (sum_next; the residual's own pass is skipped). */
#include <string.h>

#include "kernels/isa.h"
#include "layers/layers-impl.h"

/* o = x + s, then (act) relu (zero: 0 below, else leak times the sum), as the activation layer
 * computes it */
static inline __attribute__((always_inline)) void add_body(float *restrict o, const float *restrict x,
                                                           const float *restrict s, int64_t n, float leak,
                                                           const bool act, const bool zero)
{
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i] + s[i], w = zero ? 0.0f : leak * v;
        o[i] = !act || v > 0.0f ? v : w;
    }
}
/* g = dout (+ add: the next block's residual sum) where the relu's output y is positive, else 0
 * (zero) or leak g; into a and b */
static inline __attribute__((always_inline)) void grad_body(float *restrict a, float *restrict b,
                                                            const float *restrict y, const float *restrict dout,
                                                            const float *restrict add, int64_t n, float leak,
                                                            const bool zero)
{
    for (int64_t i = 0; i < n; i++) {
        const float g = add ? dout[i] + add[i] : dout[i], w = zero ? 0.0f : leak * g, v = y[i] > 0.0f ? g : w;
        a[i] = v;
        if (b) b[i] = v;
    }
}

/* The AVX-512 clones: where stream (the tensor past L2, on 64-byte lines), the whole vectors
 * of 16 by stream stores, the same operations lane by lane as the loops above, which take the
 * rest (from a line's start: no line is written both ways). RELU16: v where pos, else 0 (zero)
 * or leak v, as the loops' v > 0 ? v : w (in place: a vector's ABI depends on the instruction
 * set). */
#define RELU16(v, pos, leak, zero)                                              \
    do {                                                                        \
        if (zero) (v) = (cv_v16)((pos) & (cv_i16)(v));                          \
        else CV_VEC_LEAKY_WHERE(cv_v16, v, pos, leak);                          \
    } while (0)
static inline __attribute__((always_inline)) void add_stream(float *restrict o, const float *restrict x,
                                                             const float *restrict s, int64_t n, float leak,
                                                             const bool act, const bool zero, bool stream)
{
    int64_t i = 0;
    for (; stream && i + 16 <= n; i += 16) {
        cv_v16 v = CV_LD16(x + i) + CV_LD16(s + i);
        if (act) RELU16(v, v > 0.0f, leak, zero);
        CV_STREAM_ST16(o + i, v);
    }
    add_body(o + i, x + i, s + i, n - i, leak, act, zero);
}
static inline __attribute__((always_inline)) void grad_stream(float *restrict a, float *restrict b,
                                                              const float *restrict y, const float *restrict dout,
                                                              const float *restrict add, int64_t n, float leak,
                                                              const bool zero, bool stream)
{
    int64_t i = 0;
    for (; stream && i + 16 <= n; i += 16) {
        cv_v16 v = CV_LD16(dout + i);
        if (add) v += CV_LD16(add + i);
        RELU16(v, CV_LD16(y + i) > 0.0f, leak, zero);
        CV_STREAM_ST16(a + i, v);
        if (b) CV_STREAM_ST16(b + i, v);
    }
    grad_body(a + i, b ? b + i : NULL, y + i, dout + i, add ? add + i : NULL, n - i, leak, zero);
}
#define END_ADD_PARAMS (float *o, const float *x, const float *s, int64_t n, float leak, bool stream)
#define END_GRAD_PARAMS \
    (float *a, float *b, const float *y, const float *dout, const float *add, int64_t n, float leak, bool stream)
#define END_ADD_ARGS (o, x, s, n, leak, stream)
#define END_GRAD_ARGS (a, b, y, dout, add, n, leak, stream)
CV_STREAM_CLONES(end_add, END_ADD_PARAMS, add_body(o, x, s, n, leak, false, false),
                 add_stream(o, x, s, n, leak, false, false, stream), END_ADD_ARGS)
CV_STREAM_CLONES(end_add0, END_ADD_PARAMS, add_body(o, x, s, n, leak, true, true),
                 add_stream(o, x, s, n, leak, true, true, stream), END_ADD_ARGS)
CV_STREAM_CLONES(end_addl, END_ADD_PARAMS, add_body(o, x, s, n, leak, true, false),
                 add_stream(o, x, s, n, leak, true, false, stream), END_ADD_ARGS)
CV_STREAM_CLONES(end_grad0, END_GRAD_PARAMS, grad_body(a, b, y, dout, add, n, leak, true),
                 grad_stream(a, b, y, dout, add, n, leak, true, stream), END_GRAD_ARGS)
CV_STREAM_CLONES(end_gradl, END_GRAD_PARAMS, grad_body(a, b, y, dout, add, n, leak, false),
                 grad_stream(a, b, y, dout, add, n, leak, false, stream), END_GRAD_ARGS)

/* the threads take equal runs of whole blocks of this many floats; no value depends on them */
#define END_BLOCK 1024
static int64_t end_blocks(int64_t n) { return (n + END_BLOCK - 1) / END_BLOCK; }
static int64_t block_len(int64_t n, int64_t b) { return n - b * END_BLOCK < END_BLOCK ? n - b * END_BLOCK : END_BLOCK; }

/* whether n floats written at o (and b unless NULL) go out by stream stores: past L2, on lines
 * (the blocks, END_BLOCK floats, then are too) */
static bool streams(const float *o, const float *b, int64_t n)
{
    return cv_streams(o, sizeof(float) * (size_t)n) && (!b || cv_streams(b, sizeof(float) * (size_t)n));
}

/* o = x + s over n floats, with end's fused activation (if any) */
static void add_all(const cv_layer *l, float *o, const float *x, const float *s, int64_t n)
{
    const end_add_fn f = !l->relu_next ? end_add_pick() : l->relu_zero ? end_add0_pick() : end_addl_pick();
    const bool stream = streams(o, NULL, n);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < end_blocks(n); b++)
            f(o + b * END_BLOCK, x + b * END_BLOCK, s + b * END_BLOCK, block_len(n, b), l->relu_leak, stream);
        if (stream) cv_stream_fence();
    }
}

/* a (and b unless NULL) = dout (plus the shortcut gradient of the block after, where its
 * residual layer leaves its sum to this end: l->sum_next) through end's fused activation,
 * whose output y is */
static void grad_all(const cv_layer *l, float *a, float *b, const float *y, const float *dout, int64_t n)
{
    const float *add = l->sum_next ? l->sum_next->mask : NULL;
    const end_grad0_fn f = l->relu_zero ? end_grad0_pick() : end_gradl_pick();
    const bool stream = streams(a, b, n);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t k = 0; k < end_blocks(n); k++)
            f(a + k * END_BLOCK, b ? b + k * END_BLOCK : NULL, y + k * END_BLOCK, dout + k * END_BLOCK,
              add ? add + k * END_BLOCK : NULL, block_len(n, k), l->relu_leak, stream);
        if (stream) cv_stream_fence();
    }
}

/* (H, W, C) of a map, (1, 1, D) of a vector */
static void dims(cv_shape s, int d[3])
{
    d[0] = s.rank == 3 ? s.d[0] : 1;
    d[1] = s.rank == 3 ? s.d[1] : 1;
    d[2] = s.rank == 3 ? s.d[2] : s.d[0];
}

/* the stride s that takes n cells to m (ceil(n / s) == m), 0 if none */
static int skip_stride(int n, int m)
{
    if (m <= 0 || m > n) return 0;
    const int s = (n + m - 1) / m;
    return (n + s - 1) / s == m ? s : 0;
}

typedef struct {
    int H, W, C, OH, OW, OC, sh, sw, p0;
} skip_geom;

static skip_geom geom(const cv_layer_spec *l)
{
    int in[3], out[3];
    dims(l->skip, in);
    dims(l->out, out);
    return (skip_geom){in[0], in[1], in[2], out[0], out[1], out[2], skip_stride(in[0], out[0]), skip_stride(in[1], out[1]),
                       (out[2] - in[2]) / 2};
}

static int end_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    char a[64], b[64];
    l->out = l->in;
    if (l->in.rank != l->skip.rank)
        return cv_errf(err, "%s:%d: end: the block's output %s and its input %s must both be maps or both vectors", file,
                       l->line, cv_shape_str(l->in, a, sizeof a), cv_shape_str(l->skip, b, sizeof b));
    const skip_geom g = geom(l);
    if (!g.sh || !g.sw)
        return cv_errf(err, "%s:%d: end: the block takes %s to %s: no stride maps its input's rows and columns onto "
                       "its output's", file, l->line, cv_shape_str(l->skip, b, sizeof b), cv_shape_str(l->in, a, sizeof a));
    if (!l->projection && g.OC < g.C)
        return cv_errf(err, "%s:%d: end: the block's output %s has fewer channels than its input %s: use "
                       "`residual shortcut=projection`", file, l->line, cv_shape_str(l->in, a, sizeof a),
                       cv_shape_str(l->skip, b, sizeof b));
    return 0;
}

static bool identity(const skip_geom *g) { return g->sh == 1 && g->sw == 1 && g->C == g->OC; }

/* the shortcut's input pixels: (B * OH * OW, C) of the block's input s, every sh-th row and
 * sw-th column */
static void gather(float *col, const float *s, int B, const skip_geom *g)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++)
                memcpy(col + (((size_t)b * g->OH + oh) * g->OW + ow) * g->C,
                       s + (((size_t)b * g->H + (size_t)oh * g->sh) * g->W + (size_t)ow * g->sw) * g->C,
                       sizeof(float) * (size_t)g->C);
}

static void end_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const skip_geom g = geom(l->spec);
    const float *s = l->partner->out;
    const size_t n = (size_t)B * l->out_size;
    if (l->spec->projection) {
        float *col = ctx->ws->col;
        ctx->ws->col_layer = 0;
        const int M = B * g.OH * g.OW;
        gather(col, s, B, &g);
        memcpy(l->out, x, sizeof(float) * n);
        const cv_epilogue ep = {l->b, false, 0.0f};
        cv_layer_gemm(l, false, false, M, g.OC, g.C, col, g.C, l->w, g.OC, 1.0f, l->out, g.OC, l->b ? &ep : NULL);
        return;
    }
    cv_chan_map m;
    const float *src = l->in_bn ? cv_bn_mapped_input(l->in_bn, x, &m) : NULL;
    if (src) { /* (identity: cv_end_takes_map) the batchnorm's map, the sum and the activation at once */
        const int64_t C = g.OC, HW = l->out_size / C;
        const bool stream = C % 16 == 0 && cv_streams(l->out, sizeof(float) * n);
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int b = 0; b < B; b++)
                cv_chan_map_add_rows(l->out + (size_t)b * l->out_size, src + (size_t)b * l->out_size,
                                     s + (size_t)b * l->out_size, HW, C, &m, l->relu_next, l->relu_zero, l->relu_leak,
                                     stream);
            if (stream) cv_stream_fence();
        }
        return;
    }
    if (identity(&g)) {
        add_all(l, l->out, x, s, (int64_t)n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                const size_t o = (((size_t)b * g.OH + oh) * g.OW + ow) * g.OC;
                const float *si = s + (((size_t)b * g.H + (size_t)oh * g.sh) * g.W + (size_t)ow * g.sw) * g.C;
                memcpy(l->out + o, x + o, sizeof(float) * (size_t)g.OC);
                for (int c = 0; c < g.C; c++) l->out[o + g.p0 + c] += si[c];
                if (!l->relu_next) continue;
                for (int c = 0; c < g.OC; c++) {
                    const float v = l->out[o + c], w = l->relu_zero ? 0.0f : l->relu_leak * v;
                    l->out[o + c] = v > 0.0f ? v : w;
                }
            }
}

/* the shortcut's gradient, into the residual layer's buffer (its backward adds it) */
static void end_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)x;
    const skip_geom g = geom(l->spec);
    const size_t n = (size_t)B * l->out_size, nin = (size_t)B * g.H * g.W * g.C;
    float *ds = l->partner->mask;
    const int M = B * g.OH * g.OW;
    if (dx && l->relu_next && identity(&g)) { /* the block's gradient and the shortcut's in one pass */
        grad_all(l, dx, ds, l->out, dout, (int64_t)n);
        return;
    }
    if (dx && l->relu_next) { /* (never a projection) the scatter below takes it from dx */
        grad_all(l, dx, NULL, l->out, dout, (int64_t)n);
        dout = dx;
    } else if (dx) {
        memcpy(dx, dout, sizeof(float) * n);
    }
    if (l->spec->projection) {
        float *col = ws->col;
        ws->col_layer = 0;
        if (l->dw) {
            gather(col, l->partner->out, B, &g);
            cv_layer_gemm(l, true, false, g.C, g.OC, M, col, g.C, dout, g.OC, 1.0f, l->dw, g.OC, NULL);
            cv_bias_grad(l->db, dout, M, g.OC);
        }
        if (!dx) return;
        cv_layer_gemm(l, false, true, M, g.C, g.OC, dout, g.OC, l->w, g.OC, 0.0f, col, g.C, NULL);
    } else if (!dx) {
        return;
    } else if (identity(&g)) {
        memcpy(ds, dout, sizeof(float) * n);
        return;
    }
    if (g.sh > 1 || g.sw > 1) memset(ds, 0, sizeof(float) * nin); /* cells the shortcut skips */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                const size_t p = ((size_t)b * g.OH + oh) * g.OW + ow;
                float *di = ds + (((size_t)b * g.H + (size_t)oh * g.sh) * g.W + (size_t)ow * g.sw) * g.C;
                const float *from = l->spec->projection ? ws->col + p * g.C : dout + p * g.OC + g.p0;
                memcpy(di, from, sizeof(float) * (size_t)g.C);
            }
}

/* (a ReLU whose derivative a max pool after it applies fits too: the mask applied twice changes
 * nothing; a leaky one keeps its passes) */
bool cv_end_act_layers_fit(const cv_layer *end, const cv_layer *act)
{
    return end->spec->kind == CV_LAYER_END && !end->spec->projection && (act->kd->flags & CV_KIND_OWN_ACT) &&
           act->act_fused &&
           (act->spec->act == CV_ACT_RELU || (act->spec->act == CV_ACT_LEAKY_RELU && !act->act_bwd_by_next));
}

bool cv_end_takes_sum(const cv_layer *end, const cv_layer *residual)
{
    /* (its gradient pass, grad_all, takes the gradient of the relu's output: identity or zeropad) */
    return end->spec->kind == CV_LAYER_END && end->relu_next && !end->spec->projection &&
           residual->spec->kind == CV_LAYER_RESIDUAL && residual->index == end->index + 2;
}

bool cv_end_takes_map(const cv_layer *end)
{
    const skip_geom g = geom(end->spec);
    return end->spec->kind == CV_LAYER_END && !end->spec->projection && identity(&g);
}

static bool end_has_weights(const cv_layer_spec *l) { return l->projection; }

static int end_kernel_dims(const cv_layer_spec *l, int64_t d[4])
{
    if (!l->projection) return 0;
    d[0] = d[1] = 1;
    d[2] = l->skip.rank == 3 ? l->skip.d[2] : l->skip.d[0];
    d[3] = l->out.rank == 3 ? l->out.d[2] : l->out.d[0];
    return 4;
}

static int64_t end_bias_count(const cv_layer_spec *l) { return l->projection ? (l->out.rank == 3 ? l->out.d[2] : l->out.d[0]) : 0; }

static double end_flops(const cv_layer *l)
{
    const skip_geom g = geom(l->spec);
    return (double)l->out_size * (l->spec->projection ? 2.0 * g.C + 1.0 : 1.0);
}

/* the projection's pixels (its input's gather, then its input gradient's) */
static int64_t end_workspace(const cv_layer *l, int B)
{
    const skip_geom g = geom(l->spec);
    return l->spec->projection ? (int64_t)B * g.OH * g.OW * g.C : 0;
}

static void end_write(FILE *f, const cv_layer_spec *l)
{
    if (l->projection) fprintf(f, " init=%s trainable=%s", cv_init_name(l->init), l->trainable ? "true" : "false");
}

static void residual_write(FILE *f, const cv_layer_spec *l)
{
    fprintf(f, " shortcut=%s", l->projection ? "projection" : "zeropad");
}

/* the block's gradient plus the shortcut's, which end's backward left in the mask buffer */
static void residual_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)x, (void)ws;
    if (!dx) return;
    const size_t n = (size_t)B * l->out_size;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = dout[i] + l->mask[i];
}

const cv_layer_kind_desc cv_kind_residual = {
    .kind = CV_LAYER_RESIDUAL,
    .name = "residual",
    .keras_name = "residual",
    .keras_class = "Residual",
    .keys = CV_KEY(CV_KEY_SHORTCUT),
    .flags = CV_KIND_RESHAPE | CV_KIND_MASK,
    .infer = cv_layer_infer_same,
    .write_keys = residual_write,
    .forward = cv_identity_forward,
    .backward = residual_backward,
};

const cv_layer_kind_desc cv_kind_end = {
    .kind = CV_LAYER_END,
    .name = "end",
    .keras_name = "add",
    .keras_class = "Add",
    .keys = CV_KEY(CV_KEY_INIT) | CV_KEY(CV_KEY_TRAINABLE),
    .flags = CV_KIND_WEIGHTS,
    .infer = end_infer,
    .has_weights = end_has_weights,
    .kernel_dims = end_kernel_dims,
    .bias_count = end_bias_count,
    .flops = end_flops,
    .workspace = end_workspace,
    .write_keys = end_write,
    .forward = end_forward,
    .backward = end_backward,
};
