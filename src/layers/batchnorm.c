/* batchnorm (Keras's BatchNormalization over the channel axis, the last): in training each
 * channel is normalised with its batch mean and biased variance, y = gamma (x - mean) /
 * sqrt(var + epsilon) + beta, and the moving statistics move toward them (moving = momentum
 * moving + (1 - momentum) batch); in evaluation, prediction, and when frozen (trainable=false,
 * as Keras fine-tunes) the moving statistics stand in for the batch's.
 *
 * The batch is the global one: the per-channel sums of x and x^2 (forward) and of dy and
 * dy x_hat (backward) are the whole batch's, summed over the ranks through l->sum before any
 * value is normalised, so P ranks compute what one rank computes, to rounding. Each sum is
 * taken sample by sample in a fixed order (per-sample partials in double, then added in sample
 * order), so the bits do not depend on the thread count. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"
#include "layers/layers-impl.h"

/* Every operation below is rounded on its own: no contraction into fused multiply-adds, which
 * GCC would make in some loops and not others (a vector body but not its remainder), so that
 * the fused ReLU's a x + shift is the bits of the plain pass's output, and the backward pass's
 * recomputation the bits of the forward's, on every instruction set. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

/* The per-sample loops, compiled for each instruction set (channels innermost: contiguous and
 * vectorised). The sums over a sample's cells run channel block by channel block, each block's
 * sums held in registers, every channel's sum still taken cell by cell in order (the same bits
 * as a plain loop over cells and channels). */

typedef double d8 __attribute__((vector_size(64)));
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

/* the 8 floats of *f as doubles (element by element: GCC turns this into one conversion, where
 * __builtin_convertvector takes two halves and an insert) */
static inline __attribute__((always_inline)) void widen8(d8 *d, const f8 *f)
{
    for (int k = 0; k < 8; k++) (*d)[k] = (*f)[k];
}

/* *d, or where the fused ReLU's input a x + shift is not positive leak *d, lane by lane (the
 * forward pass's values: the same operations on the same numbers; through pointers, as a
 * vector's ABI depends on the instruction set) */
static inline __attribute__((always_inline)) void relu_grad8(f8 *d, const f8 *a, const f8 *x, const f8 *shift,
                                                             float leak)
{
    CV_VEC_LEAKY_WHERE(f8, *d, *a * *x + *shift > 0.0f, leak);
}

/* One sample's sums over its HW cells for channels c0 .. c0 + 8 NV, each in a register. Without
 * dy: s[c] = the sum of x, s[C + c] of x^2. With dy: the sums of d and d x_hat, d = dy, or (relu)
 * its fused ReLU's derivative applied (a, shift: the forward pass's affine map), x_hat =
 * (x - mean) inv. */
static inline __attribute__((always_inline)) void sums_block(double *restrict s, const float *restrict dy,
                                                             const float *restrict x, int64_t HW, int64_t C,
                                                             int64_t c0, const double *restrict mean,
                                                             const double *restrict inv, const float *restrict a,
                                                             const float *restrict shift, const bool relu, float leak,
                                                             const int NV)
{
    d8 s1[4], s2[4], mv[4], iv[4];
    f8 av[4], sv[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        s1[v] = s2[v] = (d8){0};
        if (dy) memcpy(&mv[v], mean + c0 + 8 * v, sizeof mv[v]), memcpy(&iv[v], inv + c0 + 8 * v, sizeof iv[v]);
        if (relu) memcpy(&av[v], a + c0 + 8 * v, sizeof av[v]), memcpy(&sv[v], shift + c0 + 8 * v, sizeof sv[v]);
    }
    for (int64_t i = 0; i < HW; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            f8 xf;
            memcpy(&xf, x + i * C + c0 + 8 * v, sizeof xf);
            d8 xd;
            widen8(&xd, &xf);
            if (!dy) {
                s1[v] += xd;
                s2[v] += xd * xd;
                continue;
            }
            f8 df;
            memcpy(&df, dy + i * C + c0 + 8 * v, sizeof df);
            if (relu) relu_grad8(&df, &av[v], &xf, &sv[v], leak);
            d8 d;
            widen8(&d, &df);
            const d8 xh = (xd - mv[v]) * iv[v];
            s1[v] += d;
            s2[v] += d * xh;
        }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) memcpy(s + c0 + 8 * v, &s1[v], sizeof s1[v]), memcpy(s + C + c0 + 8 * v, &s2[v], sizeof s2[v]);
}

/* all C channels of one sample: blocks of 32, 16 and 8, then the channels left one by one */
static inline __attribute__((always_inline)) void sums_body(double *restrict s, const float *restrict dy,
                                                            const float *restrict x, int64_t HW, int64_t C,
                                                            const double *restrict mean, const double *restrict inv,
                                                            const float *restrict a, const float *restrict shift,
                                                            const bool relu, float leak)
{
    int64_t c0 = 0;
    for (; c0 + 32 <= C; c0 += 32) sums_block(s, dy, x, HW, C, c0, mean, inv, a, shift, relu, leak, 4);
    if (c0 + 16 <= C) sums_block(s, dy, x, HW, C, c0, mean, inv, a, shift, relu, leak, 2), c0 += 16;
    for (; c0 + 8 <= C; c0 += 8) sums_block(s, dy, x, HW, C, c0, mean, inv, a, shift, relu, leak, 1);
    if (c0 == C) return;
    for (int64_t c = c0; c < C; c++) s[c] = s[C + c] = 0.0;
    for (int64_t i = 0; i < HW; i++)
        for (int64_t c = c0; c < C; c++) {
            const float xf = x[i * C + c];
            if (!dy) {
                s[c] += (double)xf;
                s[C + c] += (double)xf * (double)xf;
                continue;
            }
            const float v = a[c] * xf + shift[c];
            const double d = !relu || v > 0.0f ? dy[i * C + c] : leak * dy[i * C + c];
            const double xh = ((double)xf - mean[c]) * inv[c];
            s[c] += d;
            s[C + c] += d * xh;
        }
}

/* s[c], s[C + c] = the sums of x and x^2 over the HW cells of one sample */
static inline __attribute__((always_inline)) void stats_body(double *s, const float *xb, int64_t HW, int64_t C)
{
    sums_body(s, NULL, xb, HW, C, NULL, NULL, NULL, NULL, false, 0.0f);
}
CV_ISA_CLONES(bn_stats, (double *s, const float *xb, int64_t HW, int64_t C), stats_body, (s, xb, HW, C))

/* The backward pass's loops take the output gradient dy the batchnorm sees: dy itself, or (a
 * ReLU fused after it) the ReLU's derivative applied, as the activation layer's backward would,
 * from the sign of the forward pass's a x + shift (recomputed: the same bits as its output's
 * sign, and one array fewer to read). v: the per-channel floats, the forward pass's a and shift,
 * then g, mean(dy), mean(dy x_hat), mean, inv (each C). */
#define GRAD_SUMS(NAME, RELU)                                                                              \
    static inline __attribute__((always_inline)) void NAME(double *s, const float *dy, const float *x,    \
                                                           int64_t HW, int64_t C, const double *mean,     \
                                                           const double *inv, const float *v, float leak) \
    {                                                                                                      \
        sums_body(s, dy, x, HW, C, mean, inv, v, v + C, RELU, leak);                                       \
    }
GRAD_SUMS(grad_sums_plain, false)
GRAD_SUMS(grad_sums_relu, true)
CV_ISA_CLONES(bn_grad_sums, (double *s, const float *dy, const float *x, int64_t HW, int64_t C, const double *mean,
                             const double *inv, const float *v, float leak),
              grad_sums_plain, (s, dy, x, HW, C, mean, inv, v, leak))
CV_ISA_CLONES(bn_grad_sums_relu, (double *s, const float *dy, const float *x, int64_t HW, int64_t C,
                                  const double *mean, const double *inv, const float *v, float leak),
              grad_sums_relu, (s, dy, x, HW, C, mean, inv, v, leak))

/* dx = g (dy - mean(dy) - x_hat mean(dy x_hat)) */
static inline __attribute__((always_inline)) void grad_x_body(float *restrict dx, const float *restrict dy,
                                                              const float *restrict x, int64_t HW, int64_t C,
                                                              const float *restrict v, const bool relu, float leak)
{
    const float *a = v, *shift = v + C, *g = v + 2 * C, *mdy = v + 3 * C, *mdyx = v + 4 * C, *mu = v + 5 * C,
                *iv = v + 6 * C;
    for (int64_t i = 0; i < HW; i++)
        for (int64_t c = 0; c < C; c++) {
            const float xf = x[i * C + c], xh = (xf - mu[c]) * iv[c];
            const float d = !relu || a[c] * xf + shift[c] > 0.0f ? dy[i * C + c] : leak * dy[i * C + c];
            dx[i * C + c] = g[c] * (d - mdy[c] - xh * mdyx[c]);
        }
}
static inline __attribute__((always_inline)) void grad_x_stream(float *restrict dx, const float *restrict dy,
                                                                const float *restrict x, int64_t HW, int64_t C,
                                                                const float *restrict v, const bool relu, float leak,
                                                                bool stream)
{
    if (!stream) {
        grad_x_body(dx, dy, x, HW, C, v, relu, leak);
        return;
    }
    const float *a = v, *shift = v + C, *g = v + 2 * C, *mdy = v + 3 * C, *mdyx = v + 4 * C, *mu = v + 5 * C,
                *iv = v + 6 * C;
    for (int64_t i = 0; i < HW; i++)
        for (int64_t c = 0; c < C; c += 16) {
            const cv_v16 xf = CV_LD16(x + i * C + c), xh = (xf - CV_LD16(mu + c)) * CV_LD16(iv + c);
            cv_v16 d = CV_LD16(dy + i * C + c);
            if (relu) CV_VEC_LEAKY_WHERE(cv_v16, d, CV_LD16(a + c) * xf + CV_LD16(shift + c) > 0.0f, leak);
            CV_STREAM_ST16(dx + i * C + c, CV_LD16(g + c) * (d - CV_LD16(mdy + c) - xh * CV_LD16(mdyx + c)));
        }
}
#define GRAD_X_PARAMS \
    (float *dx, const float *dy, const float *x, int64_t HW, int64_t C, const float *v, float leak, bool stream)
#define GRAD_X_ARGS (dx, dy, x, HW, C, v, leak, stream)
CV_STREAM_CLONES(bn_grad_x, GRAD_X_PARAMS, grad_x_body(dx, dy, x, HW, C, v, false, leak),
                 grad_x_stream(dx, dy, x, HW, C, v, false, leak, stream), GRAD_X_ARGS)
CV_STREAM_CLONES(bn_grad_x_relu, GRAD_X_PARAMS, grad_x_body(dx, dy, x, HW, C, v, true, leak),
                 grad_x_stream(dx, dy, x, HW, C, v, true, leak, stream), GRAD_X_ARGS)

static int64_t bn_channels(const cv_layer_spec *l) { return l->in.d[l->in.rank - 1]; }
/* the layer's scratch: mean [0, C), 1/sqrt(var + eps) [C, 2C), the values counted [2C], a buffer
 * of 2C + 1 sums for the reduction, then room for 7 per-channel float vectors (the forward
 * pass's a and shift, kept for the backward pass's ReLU derivative, then the backward's 5) */
static int64_t bn_scratch(const cv_layer_spec *l) { return 8 * bn_channels(l) + 2; }
static float *bn_floats(const cv_layer *l) { return (float *)(l->scratch + 4 * bn_channels(l->spec) + 2); }

/* per-sample partials: 2C doubles per sample, then (--reproducible's leaves) 2C + 1 per leaf, in
 * the shared workspace (aligned for doubles) */
static int64_t bn_workspace(const cv_layer *l, int B) { return 2 * (int64_t)B * (4 * bn_channels(l->spec) + 1) + 2; }
static double *partials(cv_workspace *ws)
{
    ws->col_layer = 0; /* the im2col kept there for a conv's backward is gone */
    return (double *)(((uintptr_t)ws->col + 7) & ~(uintptr_t)7);
}

/* The parameter gradients' share of sums s (dy, then dy x_hat, per channel) into dw, db. */
static void add_grads(const cv_layer *l, const double *s, float *dw, float *db)
{
    const int64_t C = bn_channels(l->spec);
    for (int64_t c = 0; c < C; c++) {
        if (l->spec->center && db) db[c] += (float)s[c];
        if (l->spec->scale && dw) dw[c] += (float)s[C + c];
    }
}

/* The pass's sums red (2C: per channel, then a count of values as red[2C] when counted) from the
 * B per-sample partials part: this rank's added in sample order and then over the ranks through
 * l->sum; or, with --reproducible's leaves, each leaf's in sample order, and every leaf's of
 * every rank in the step's leaf order through l->leaves->sum (so the bits depend on the leaves
 * alone, never on which rank holds them). grads: the parameter gradients take this rank's share
 * first, leaf by leaf with leaves. Nonzero if a sum failed (the caller reports it). */
static int combine(const cv_layer *l, const double *part, int B, int64_t HW, bool counted, bool grads, double *red)
{
    const int64_t C = bn_channels(l->spec), len = 2 * C + (counted ? 1 : 0);
    const cv_leaves *lv = l->leaves;
    if (!lv) {
        for (int64_t c = 0; c < 2 * C; c++) red[c] = 0.0;
        for (int b = 0; b < B; b++)
            for (int64_t c = 0; c < 2 * C; c++) red[c] += part[(size_t)b * 2 * C + c];
        if (counted) red[2 * C] = (double)B * (double)HW;
        if (grads) add_grads(l, red, l->dw, l->db);
        return l->sum ? l->sum(l->sum_ctx, red, len) : 0;
    }
    double *leaf = (double *)part + (size_t)B * 2 * C; /* n x len */
    for (int j = 0; j < lv->n; j++) {
        double *s = leaf + (size_t)j * len;
        for (int64_t c = 0; c < 2 * C; c++) s[c] = 0.0;
        for (int b = lv->rows[j]; b < lv->rows[j + 1]; b++)
            for (int64_t c = 0; c < 2 * C; c++) s[c] += part[(size_t)b * 2 * C + c];
        if (counted) s[2 * C] = (double)(lv->rows[j + 1] - lv->rows[j]) * (double)HW;
        if (grads) {
            const int64_t wo = l->dw - lv->grads_base, bo = l->db ? l->db - lv->grads_base : 0;
            add_grads(l, s, lv->grads[j] + wo, l->db ? lv->grads[j] + bo : NULL);
        }
    }
    return lv->sum(lv->ctx, leaf, lv->first, lv->n, len, red);
}

/* gamma and beta: 1 and 0 without scale and center, whatever the parameters hold */
static double gamma_of(const cv_layer *l, int64_t c) { return l->spec->scale ? (double)l->w[c] : 1.0; }
static double beta_of(const cv_layer *l, int64_t c) { return l->spec->center ? (double)l->b[c] : 0.0; }

/* in training mode: batch statistics (a frozen layer and every inference use the moving ones) */
static bool batch_mode(const cv_layer *l, bool training) { return training && l->spec->trainable; }

/* whether the batch's B samples written at y go out by stream stores: past L2, on lines, every
 * sample's in whole vectors of 16 channels */
static bool streams(const float *y, const cv_layer *l, int B)
{
    return bn_channels(l->spec) % 16 == 0 && cv_streams(y, sizeof(float) * (size_t)B * (size_t)l->in_size);
}

/* the map y = a x + shift per channel (then the activation it applies) that the last forward
 * pass kept (for the backward pass and the layer after) */
static cv_chan_map kept_map(const cv_layer *l)
{
    const float *a = bn_floats(l);
    return (cv_chan_map){a, a + bn_channels(l->spec), l->relu_next, l->relu_leak};
}

/* that map for this pass: a = gamma / sqrt(var + eps), shift = beta - mean a */
static cv_chan_map set_map(cv_layer *l, const double *mean, const double *inv)
{
    const int64_t C = bn_channels(l->spec);
    float *a = bn_floats(l), *shift = a + C;
    for (int64_t c = 0; c < C; c++) {
        const double s = gamma_of(l, c) * inv[c];
        a[c] = (float)s;
        shift[c] = (float)(beta_of(l, c) - mean[c] * s);
    }
    return kept_map(l);
}

/* the output of the B samples at x through the map m */
static void write_output(cv_layer *l, const float *x, int B, const cv_chan_map *m)
{
    const int64_t C = bn_channels(l->spec), HW = l->in_size / C;
    const bool stream = streams(l->out, l, B);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++)
            cv_chan_map_rows(l->out + (size_t)b * l->in_size, x + (size_t)b * l->in_size, HW, C, m, stream);
        if (stream) cv_stream_fence();
    }
}

const float *cv_bn_mapped_input(const cv_layer *bn, const float *x, cv_chan_map *m)
{
    if (!bn->map_live) return NULL;
    *m = kept_map(bn);
    return bn->map_x + (x - bn->out);
}

void cv_bn_write_output(cv_layer *bn)
{
    cv_chan_map m;
    if (!cv_bn_mapped_input(bn, bn->out, &m)) return;
    write_output(bn, bn->map_x, bn->map_rows, &m);
    bn->map_live = false;
}

bool cv_bn_map_layers_fit(const cv_layer *bn, const cv_layer *next)
{
    if (bn->spec->kind != CV_LAYER_BATCHNORM || !bn->spec->trainable) return false;
    if (next->spec->kind == CV_LAYER_END) /* (its own activation after the sum, none of the batchnorm's) */
        return !bn->relu_next && cv_end_takes_map(next);
    if (next->kd->flags & CV_KIND_POOL) return cv_pool_maps(&next->win);
    return next->spec->kind == CV_LAYER_CONV2D && cv_conv_layer_winograd(next) && cv_conv_wino_maps(&next->win);
}

static void moving_inverse(const cv_layer *l, double *mean, double *inv)
{
    const int64_t C = bn_channels(l->spec);
    for (int64_t c = 0; c < C; c++) {
        mean[c] = l->state[c];
        inv[c] = 1.0 / sqrt((double)l->state[C + c] + (double)l->spec->epsilon);
    }
}

static void bn_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const int64_t C = bn_channels(l->spec), HW = l->in_size / C;
    double *mean = l->scratch, *inv = mean + C, *count = inv + C, *red = count + 1;
    l->map_live = false;
    if (!batch_mode(l, ctx->training)) {
        moving_inverse(l, mean, inv);
        const cv_chan_map m = set_map(l, mean, inv);
        write_output(l, x, B, &m);
        return;
    }
    double *part = partials(ctx->ws);
    static bn_stats_fn stats;
    if (!stats) stats = bn_stats_pick();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) stats(part + (size_t)b * 2 * C, x + (size_t)b * l->in_size, HW, C);
    if (combine(l, part, B, HW, true, false, red)) red[2 * C] = 0.0; /* (the caller reports it) */
    *count = red[2 * C];
    const double n = *count > 0.0 ? *count : 1.0, m = l->spec->momentum;
    for (int64_t c = 0; c < C; c++) {
        mean[c] = red[c] / n;
        double var = red[C + c] / n - mean[c] * mean[c];
        if (var < 0.0) var = 0.0; /* rounding, for a constant channel */
        inv[c] = 1.0 / sqrt(var + (double)l->spec->epsilon);
        l->state[c] = (float)(m * l->state[c] + (1.0 - m) * mean[c]);
        l->state[C + c] = (float)(m * l->state[C + c] + (1.0 - m) * var);
    }
    const cv_chan_map map = set_map(l, mean, inv);
    if (l->map_next && l->dw) { /* the conv after it applies the map (cv_bn_mapped_input) */
        l->map_live = true;
        l->map_x = x;
        l->map_rows = B;
        return;
    }
    write_output(l, x, B, &map);
}

static void bn_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    const int64_t C = bn_channels(l->spec), HW = l->in_size / C;
    const double *mean = l->scratch, *inv = mean + C, count = inv[C];
    double *red = l->scratch + 2 * C + 1;
    if (!l->dw) { /* frozen: the moving statistics are constants, dx = a dy */
        if (!dx) return;
        double *mm = l->scratch, *iv = mm + C; /* (a frozen layer's forward left these) */
        moving_inverse(l, mm, iv);
        float *a = bn_floats(l);
        for (int64_t c = 0; c < C; c++) a[c] = (float)(gamma_of(l, c) * iv[c]);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int64_t i = 0; i < HW; i++)
                for (int64_t c = 0; c < C; c++) {
                    const size_t at = (size_t)b * l->in_size + i * C + c;
                    dx[at] = a[c] * (!l->relu_next || l->out[at] > 0.0f ? dout[at] : l->relu_leak * dout[at]);
                }
        return;
    }
    double *part = partials(ws);
    static bn_grad_sums_fn sums_plain, sums_relu;
    if (!sums_plain) sums_plain = bn_grad_sums_pick(), sums_relu = bn_grad_sums_relu_pick();
    const bn_grad_sums_fn sums = l->relu_next ? sums_relu : sums_plain;
    float *v = bn_floats(l); /* a, shift (the forward pass's), then the 5 vectors below */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        sums(part + (size_t)b * 2 * C, dout + (size_t)b * l->in_size, x + (size_t)b * l->in_size, HW, C, mean, inv,
             v, l->relu_leak);
    /* this rank's share of the parameter gradients first (the gradient sum adds the ranks') */
    combine(l, part, B, HW, false, true, red); /* (a failure is the caller's to report) */
    if (!dx) return;
    const double n = count > 0.0 ? count : 1.0;
    float *g = v + 2 * C, *mdy = g + C, *mdyx = mdy + C, *mu = mdyx + C, *iv = mu + C;
    for (int64_t c = 0; c < C; c++) {
        g[c] = (float)(gamma_of(l, c) * inv[c]);
        mdy[c] = (float)(red[c] / n);
        mdyx[c] = (float)(red[C + c] / n);
        mu[c] = (float)mean[c];
        iv[c] = (float)inv[c];
    }
    static bn_grad_x_fn gx_plain, gx_relu;
    if (!gx_plain) gx_plain = bn_grad_x_pick(), gx_relu = bn_grad_x_relu_pick();
    const bn_grad_x_fn grad_x = l->relu_next ? gx_relu : gx_plain;
    const bool stream = streams(dx, l, B);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++)
            grad_x(dx + (size_t)b * l->in_size, dout + (size_t)b * l->in_size, x + (size_t)b * l->in_size, HW, C, v,
                   l->relu_leak, stream);
        if (stream) cv_stream_fence();
    }
}

static int bn_kernel_dims(const cv_layer_spec *l, int64_t d[4])
{
    d[0] = bn_channels(l);
    return 1;
}

static int64_t bn_bias_count(const cv_layer_spec *l) { return bn_channels(l); }
static int64_t bn_state_count(const cv_layer_spec *l) { return 2 * bn_channels(l); }

static void bn_init(const cv_layer_spec *l, float *gamma, float *beta, float *state)
{
    const int64_t C = bn_channels(l);
    for (int64_t c = 0; c < C; c++) {
        gamma[c] = 1.0f;
        beta[c] = 0.0f;
        state[c] = 0.0f;
        state[C + c] = 1.0f;
    }
}

static double bn_flops(const cv_layer *l) { return 2.0 * (double)l->in_size; }

static int bn_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    if (l->in.rank != 3 && l->in.rank != 1)
        return cv_errf(err, "%s:%d: batchnorm needs an (H,W,C) or (D) input; got %s", file, l->line,
                       cv_shape_str(l->in, sb, sizeof sb));
    l->out = l->in;
    return 0;
}

static void bn_write(FILE *f, const cv_layer_spec *l)
{
    fprintf(f, " momentum=%.9g epsilon=%.9g center=%s scale=%s trainable=%s", (double)l->momentum,
            (double)l->epsilon, l->center ? "true" : "false", l->scale ? "true" : "false",
            l->trainable ? "true" : "false");
}

const cv_layer_kind_desc cv_kind_batchnorm = {
    .kind = CV_LAYER_BATCHNORM,
    .name = "batchnorm",
    .keras_name = "batch_normalization",
    .keras_class = "BatchNormalization",
    .keys = CV_KEY(CV_KEY_BN_MOMENTUM) | CV_KEY(CV_KEY_BN_EPSILON) | CV_KEY(CV_KEY_CENTER) | CV_KEY(CV_KEY_SCALE) |
            CV_KEY(CV_KEY_TRAINABLE),
    .flags = CV_KIND_WEIGHTS | CV_KIND_ROWWISE | CV_KIND_BATCH,
    .infer = bn_infer,
    .kernel_dims = bn_kernel_dims,
    .bias_count = bn_bias_count,
    .param_names = {"gamma", "beta"},
    .state_count = bn_state_count,
    .n_state = 2,
    .state_names = {"moving_mean", "moving_variance"},
    .init = bn_init,
    .scratch = bn_scratch,
    .flops = bn_flops,
    .workspace = bn_workspace,
    .write_keys = bn_write,
    .forward = bn_forward,
    .backward = bn_backward,
};

/* A ReLU whose derivative the max/min pool after it applies (act_bwd_by_next) fits too: the
 * batchnorm's backward then applies the same mask again to a gradient that is already zero off
 * it, which changes no value (a leaky ReLU's slope would be applied twice: it keeps its own
 * passes). */
bool cv_bn_act_layers_fit(const cv_layer *bn, const cv_layer *act)
{
    return bn->spec->kind == CV_LAYER_BATCHNORM && (act->kd->flags & CV_KIND_OWN_ACT) && act->act_fused &&
           (act->spec->act == CV_ACT_RELU || (act->spec->act == CV_ACT_LEAKY_RELU && !act->act_bwd_by_next));
}
