/* Every layer's and every loss's backward against central finite differences of an
 * independent double-precision reference: each test builds a small net from model text,
 * checks the library's forward and loss against the reference implemented here, then checks
 * the analytic parameter gradients (float, from cv_net_backward with norm = B) against
 * (L(p + h) - L(p - h)) / 2h of the reference's batch-mean loss, h = 1e-5: all of them, but
 * for a kernel of over FD_KERNEL_MAX entries a fixed sample of about that many.
 * Input gradients: the layer under test always follows a small trainable conv/dense layer,
 * whose gradient can only be right if the tested layer's d loss / d x is.
 * Data are drawn from seeds until no ReLU pre-activation, pooling runner-up or MAE error lies
 * within 2e-3 of its kink, so the finite differences never straddle one. */
#define _GNU_SOURCE /* unsetenv */
#include <criterion/criterion.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#else
static void omp_set_num_threads(int n) { (void)n; }
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "convoy/rng.h"
#include "layers/layers-impl.h"

#define FD_H 1e-5        /* finite-difference step on every parameter */
#define KINK_MIN 2e-3    /* data whose kink distance is smaller are redrawn */
#define GRAD_RTOL 1e-4   /* |analytic - numeric| <= GRAD_RTOL |numeric| + GRAD_ATOL */
#define GRAD_ATOL 1e-6
#define FWD_TOL 1e-5     /* forward outputs and the loss, relative to 1 + |reference| */
#define FD_KERNEL_MAX 512 /* kernels with more entries are checked on a fixed sample this size */

/* targets: floats in [-1.5, 1.5]; integer labels; one-hot; soft rows summing to 1; soft rows
 * NOT summing to 1 (multi-label); values in (0, 1) */
typedef enum { T_FLOAT, T_LABELS, T_ONEHOT, T_SOFT, T_SOFT_RAW, T_UNIT } target_kind;

typedef struct {
    cv_model_spec spec;
    cv_net *net;
    int B, K;
    float *xf;
    int32_t *labels;
    float *targets;
    target_kind tk;      /* T_LABELS: the library gets labels, otherwise float targets */
    bool training;
    uint64_t seed;
    int64_t epoch;
    int64_t ids[8];
    double *mask[CV_MAX_LAYERS]; /* dropout scale per (sample, unit), from a probe net */
} gcase;

static double urand(cv_rng *r) { return 2.0 * cv_unit(cv_rng_next(r)) - 1.0; }

/* ------------------------------------------------------------------------------------------ */
/* The double-precision reference */

static void act_ref(double *y, int rows, int width, cv_act act, double alpha, double *kink)
{
    for (int r = 0; r < rows; r++) {
        double *v = y + (size_t)r * width;
        if (act == CV_ACT_SOFTMAX) {
            double m = v[0], s = 0.0;
            for (int k = 1; k < width; k++) m = fmax(m, v[k]);
            for (int k = 0; k < width; k++) s += (v[k] = exp(v[k] - m));
            for (int k = 0; k < width; k++) v[k] /= s;
            continue;
        }
        for (int k = 0; k < width; k++) {
            const double z = v[k];
            switch (act) {
            case CV_ACT_RELU: v[k] = z > 0 ? z : 0.0, *kink = fmin(*kink, fabs(z)); break;
            case CV_ACT_LEAKY_RELU: v[k] = z > 0 ? z : alpha * z, *kink = fmin(*kink, fabs(z)); break;
            case CV_ACT_SIGMOID: v[k] = 1.0 / (1.0 + exp(-z)); break;
            case CV_ACT_TANH: v[k] = tanh(z); break;
            default: break;
            }
        }
    }
}

/* one sample through layer l: in -> out; p is the whole parameter vector */
static void layer_ref(const gcase *gc, int i, int b, const double *p, const double *in, double *out,
                      double *kink)
{
    const cv_layer_spec *l = &gc->spec.layers[i];
    const cv_param_view v = cv_net_param_view(gc->net, i);
    const int64_t n_in = cv_shape_size(l->in), n_out = cv_shape_size(l->out);
    const double *w = p + v.kernel_off, *bias = v.bias_n ? p + v.bias_off : NULL;
    int width = l->out.rank == 3 ? l->out.d[2] : l->out.d[0];
    cv_act act = CV_ACT_LINEAR;
    switch (l->kind) {
    case CV_LAYER_CONV2D: {
        const int H = l->in.d[0], W = l->in.d[1], C = l->in.d[2];
        const int OH = l->out.d[0], OW = l->out.d[1], F = l->filters, kh_n = l->kernel[0], kw_n = l->kernel[1];
        const int sh = l->stride[0], sw = l->stride[1];
        /* TensorFlow 'same': the total padding's odd cell goes to the bottom/right; numeric:
         * PyTorch's, top and left given */
        const int pt = l->same ? (int)fmax((OH - 1) * sh + kh_n - H, 0) / 2 : l->pad[0];
        const int pl = l->same ? (int)fmax((OW - 1) * sw + kw_n - W, 0) / 2 : l->pad[2];
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int f = 0; f < F; f++) {
                    double z = bias ? bias[f] : 0.0;
                    for (int kh = 0; kh < kh_n; kh++)
                        for (int kw = 0; kw < kw_n; kw++) {
                            int ih = oh * sh - pt + kh, iw = ow * sw - pl + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
                                if (!l->pad_nearest) continue;
                                ih = ih < 0 ? 0 : ih >= H ? H - 1 : ih;
                                iw = iw < 0 ? 0 : iw >= W ? W - 1 : iw;
                            }
                            for (int c = 0; c < C; c++)
                                z += in[((size_t)ih * W + iw) * C + c] * w[(((size_t)kh * kw_n + kw) * C + c) * F + f];
                        }
                    out[((size_t)oh * OW + ow) * F + f] = z;
                }
        act = l->act;
        break;
    }
    case CV_LAYER_MAXPOOL2D:
    case CV_LAYER_AVGPOOL2D:
    case CV_LAYER_MINPOOL2D: {
        const int W = l->in.d[1], C = l->in.d[2], OH = l->out.d[0], OW = l->out.d[1];
        const int kh_n = l->pool[0], kw_n = l->pool[1], sh = l->stride[0], sw = l->stride[1];
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int c = 0; c < C; c++) {
                    double best = 0.0, second = 0.0, sum = 0.0;
                    int count = 0;
                    for (int kh = 0; kh < kh_n; kh++)
                        for (int kw = 0; kw < kw_n; kw++) {
                            double x = in[((size_t)(oh * sh + kh) * W + ow * sw + kw) * C + c];
                            if (l->kind == CV_LAYER_MINPOOL2D) x = -x;
                            sum += x;
                            if (count == 0 || x > best) second = count ? best : x, best = x;
                            else if (count == 1 || x > second) second = x;
                            count++;
                        }
                    double y = l->kind == CV_LAYER_AVGPOOL2D ? sum / (kh_n * kw_n) : best;
                    if (l->kind == CV_LAYER_MINPOOL2D) y = -y;
                    if (l->kind != CV_LAYER_AVGPOOL2D && count > 1 && best != 0.0)
                        *kink = fmin(*kink, best - second); /* tied exact zeros (after ReLU) are harmless */
                    out[((size_t)oh * OW + ow) * C + c] = y;
                }
        break;
    }
    case CV_LAYER_GLOBALAVGPOOL2D:
    case CV_LAYER_GLOBALMAXPOOL2D: {
        const int C = l->in.d[2], HW = l->in.d[0] * l->in.d[1];
        for (int c = 0; c < C; c++) {
            double sum = 0.0, best = in[c], second = -INFINITY;
            for (int j = 0; j < HW; j++) {
                const double x = in[(size_t)j * C + c];
                sum += x;
                if (j > 0 && x > best) second = best, best = x;
                else if (j > 0 && x > second) second = x;
            }
            out[c] = l->kind == CV_LAYER_GLOBALAVGPOOL2D ? sum / HW : best;
            if (l->kind == CV_LAYER_GLOBALMAXPOOL2D && HW > 1 && best != 0.0) *kink = fmin(*kink, best - second);
        }
        break;
    }
    case CV_LAYER_DENSE: {
        const int U = l->units;
        for (int u = 0; u < U; u++) {
            double z = bias ? bias[u] : 0.0;
            for (int64_t j = 0; j < n_in; j++) z += in[j] * w[j * U + u];
            out[u] = z;
        }
        act = l->act;
        break;
    }
    case CV_LAYER_DROPOUT:
        for (int64_t j = 0; j < n_out; j++)
            out[j] = gc->training && gc->mask[i] ? in[j] * gc->mask[i][(size_t)b * n_out + j] : in[j];
        break;
    case CV_LAYER_ACTIVATION:
        memcpy(out, in, sizeof(double) * (size_t)n_out);
        act = l->act;
        break;
    case CV_LAYER_ZEROPAD2D: {
        const int H = l->in.d[0], W = l->in.d[1], C = l->in.d[2], OW = l->out.d[1];
        for (int64_t j = 0; j < n_out; j++) out[j] = 0.0;
        for (int h = 0; h < H; h++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    out[((size_t)(h + l->pad[0]) * OW + x + l->pad[2]) * C + c] = in[((size_t)h * W + x) * C + c];
        break;
    }
    default: /* flatten: NHWC memory is already (h, w, c) */
        memcpy(out, in, sizeof(double) * (size_t)n_out);
        break;
    }
    act_ref(out, (int)(n_out / width), width, act, l->alpha, kink);
}

static double target_ref(const gcase *gc, int b, int k)
{
    if (gc->tk != T_LABELS) return gc->targets[(size_t)b * gc->K + k];
    if (gc->K == 1) return gc->labels[b];
    return gc->labels[b] == k;
}

/* Keras: per-sample mean over outputs (sum over classes for the categorical ones) */
static double loss_ref(const gcase *gc, int b, const double *o, double *kink)
{
    const cv_loss_config *c = &gc->spec.loss;
    const double delta = c->huber_delta;
    double s = 0.0, prob[64];
    if (c->from_logits) { /* the reference applies the softmax / sigmoid the loss takes over */
        double m = o[0], se = 0.0;
        for (int k = 1; k < gc->K; k++) m = fmax(m, o[k]);
        for (int k = 0; k < gc->K; k++) se += exp(o[k] - m);
        for (int k = 0; k < gc->K; k++)
            prob[k] = c->kind == CV_LOSS_BINARY_CE ? 1.0 / (1.0 + exp(-o[k])) : exp(o[k] - m) / se;
        o = prob;
    }
    for (int k = 0; k < gc->K; k++) {
        const double y = target_ref(gc, b, k), e = o[k] - y;
        switch (c->kind) {
        case CV_LOSS_MSE: s += e * e; break;
        case CV_LOSS_MAE: s += fabs(e), *kink = fmin(*kink, fabs(e)); break;
        case CV_LOSS_HUBER: s += fabs(e) <= delta ? 0.5 * e * e : delta * (fabs(e) - 0.5 * delta); break;
        case CV_LOSS_BINARY_CE: s -= y * log(o[k]) + (1.0 - y) * log(1.0 - o[k]); break;
        default: s -= y * log(o[k]); break; /* categorical / sparse */
        }
    }
    const bool categorical = c->kind == CV_LOSS_CATEGORICAL_CE || c->kind == CV_LOSS_SPARSE_CE;
    return categorical ? s : s / gc->K;
}

/* Batch-mean loss of the reference at parameters p; the final outputs go to out (B, K) when
 * not NULL, the smallest kink distance to *kink. */
/* batchnorm over the whole batch (rows widest apart): in training mode with the batch's mean and
 * biased variance, else with the moving statistics */
static void batchnorm_ref(const gcase *gc, int i, const double *p, const double *in, double *out, int64_t widest)
{
    const cv_layer_spec *l = &gc->spec.layers[i];
    const cv_param_view v = cv_net_param_view(gc->net, i);
    const int64_t C = l->in.d[l->in.rank - 1], HW = cv_shape_size(l->in) / C;
    for (int64_t c = 0; c < C; c++) {
        double mean = p[v.state_off + c], var = p[v.state_off + C + c];
        if (gc->training && l->trainable) {
            double s = 0.0, q = 0.0;
            for (int b = 0; b < gc->B; b++)
                for (int64_t j = 0; j < HW; j++) s += in[b * widest + j * C + c];
            mean = s / (double)(gc->B * HW);
            for (int b = 0; b < gc->B; b++)
                for (int64_t j = 0; j < HW; j++) q += pow(in[b * widest + j * C + c] - mean, 2);
            var = q / (double)(gc->B * HW);
        }
        /* without scale (center) gamma stays 1 (beta 0), whatever the parameter holds */
        const double g = l->scale ? p[v.kernel_off + c] : 1.0, beta = l->center ? p[v.bias_off + c] : 0.0;
        const double inv = 1.0 / sqrt(var + l->epsilon);
        for (int b = 0; b < gc->B; b++)
            for (int64_t j = 0; j < HW; j++)
                out[b * widest + j * C + c] = g * (in[b * widest + j * C + c] - mean) * inv + beta;
    }
}

/* end: the block's output plus its input s through the shortcut (identity, option A's
 * subsampling and middle channels, or option B's 1x1 strided projection) */
static void end_ref(const gcase *gc, int i, const double *p, const double *in, const double *s, double *out, int64_t widest)
{
    const cv_layer_spec *l = &gc->spec.layers[i];
    const cv_param_view v = cv_net_param_view(gc->net, i);
    const bool map = l->out.rank == 3;
    const int H = map ? l->skip.d[0] : 1, W = map ? l->skip.d[1] : 1, C = map ? l->skip.d[2] : l->skip.d[0];
    const int OH = map ? l->out.d[0] : 1, OW = map ? l->out.d[1] : 1, OC = map ? l->out.d[2] : l->out.d[0];
    const int sh = (H + OH - 1) / OH, sw = (W + OW - 1) / OW, p0 = (OC - C) / 2;
    for (int b = 0; b < gc->B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int f = 0; f < OC; f++) {
                    const size_t o = ((size_t)oh * OW + ow) * OC + f;
                    const double *si = s + b * widest + ((size_t)oh * sh * W + (size_t)ow * sw) * C;
                    double add = 0.0;
                    if (l->projection) {
                        add = p[v.bias_off + f];
                        for (int c = 0; c < C; c++) add += si[c] * p[v.kernel_off + (size_t)c * OC + f];
                    } else if (f >= p0 && f < p0 + C) {
                        add = si[f - p0];
                    }
                    out[b * widest + o] = in[b * widest + o] + add;
                }
}

static double forward_ref(const gcase *gc, const double *p, double *out, double *kink)
{
    int64_t widest = 0;
    for (int i = 0; i < gc->spec.n_layers; i++) {
        const int64_t n = cv_shape_size(gc->spec.layers[i].out);
        if (n > widest) widest = n;
    }
    /* layer by layer over the whole batch (batchnorm couples the samples) */
    double *a = malloc(sizeof(double) * (size_t)(widest * gc->B)), *c = malloc(sizeof(double) * (size_t)(widest * gc->B));
    const int64_t n_in = cv_shape_size(gc->spec.layers[0].out);
    double total = 0.0, k_min = INFINITY;
    for (int b = 0; b < gc->B; b++)
        for (int64_t j = 0; j < n_in; j++) a[b * widest + j] = gc->xf[(size_t)b * n_in + j];
    double *saved[CV_MAX_LAYERS] = {0}; /* each residual layer's input, for its end */
    for (int i = 1; i < gc->spec.n_layers; i++) {
        const cv_layer_spec *l = &gc->spec.layers[i];
        if (l->kind == CV_LAYER_RESIDUAL) {
            saved[i] = malloc(sizeof(double) * (size_t)(widest * gc->B));
            memcpy(saved[i], a, sizeof(double) * (size_t)(widest * gc->B));
        }
        if (l->kind == CV_LAYER_BATCHNORM)
            batchnorm_ref(gc, i, p, a, c, widest);
        else if (l->kind == CV_LAYER_END)
            end_ref(gc, i, p, a, saved[l->block], c, widest);
        else
            for (int b = 0; b < gc->B; b++) layer_ref(gc, i, b, p, a + b * widest, c + b * widest, &k_min);
        double *t = a;
        a = c, c = t;
    }
    for (int i = 0; i < gc->spec.n_layers; i++) free(saved[i]);
    for (int b = 0; b < gc->B; b++) {
        if (out) memcpy(out + (size_t)b * gc->K, a + b * widest, sizeof(double) * gc->K);
        total += loss_ref(gc, b, a + b * widest, &k_min);
    }
    free(a), free(c);
    if (kink) *kink = k_min;
    return total / gc->B;
}

/* ------------------------------------------------------------------------------------------ */
/* Building cases */

/* Dropout masks from a probe net whose dropout layer sits at the same index with the same
 * width and whose dense layers are set to the identity: its output for x = 1 is the mask. */
static void probe_mask(gcase *gc, const char *probe_text, int layer)
{
    cv_model_spec ps;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&ps, probe_text, "probe.model", &err), 0, "%s", err.msg);
    cr_assert_eq(ps.layers[layer].kind, CV_LAYER_DROPOUT);
    cv_net *pn = cv_net_create(&ps, gc->B, 1, &err);
    cr_assert_not_null(pn, "%s", err.msg);
    float *w = cv_net_params(pn);
    for (int i = 1; i < ps.n_layers; i++) {
        const cv_param_view v = cv_net_param_view(pn, i);
        if (!v.kernel_n) continue;
        const int U = ps.layers[i].units;
        cr_assert_eq(v.kernel_n, (int64_t)U * U, "probe dense layers must be square");
        memset(w + v.kernel_off, 0, sizeof(float) * (size_t)(v.kernel_n + v.bias_n));
        for (int u = 0; u < U; u++) w[v.kernel_off + (int64_t)u * U + u] = 1.0f;
    }
    const int64_t n_in = cv_shape_size(ps.layers[0].out), n = cv_shape_size(ps.layers[layer].out);
    cr_assert_eq(n, cv_shape_size(gc->spec.layers[layer].out));
    float *ones = malloc(sizeof(float) * (size_t)(gc->B * n_in));
    for (int64_t j = 0; j < gc->B * n_in; j++) ones[j] = 1.0f;
    const float *y = cv_net_forward(pn, ones, gc->B, true, gc->seed, gc->epoch, gc->ids);
    gc->mask[layer] = malloc(sizeof(double) * (size_t)(gc->B * n));
    int dropped = 0;
    for (int64_t j = 0; j < gc->B * n; j++) {
        gc->mask[layer][j] = y[j];
        dropped += y[j] == 0.0f;
    }
    cr_assert(dropped > 0 && dropped < gc->B * n, "the probe mask drops %d of %ld", dropped,
              (long)(gc->B * n));
    free(ones);
    cv_net_free(pn);
    cv_model_spec_free(&ps);
}

static void fill_data(gcase *gc, target_kind tk, uint64_t seed)
{
    cv_rng r = {cv_key(seed, 99, 0, 0)};
    const int64_t n_in = cv_shape_size(gc->spec.layers[0].out);
    for (int64_t j = 0; j < gc->B * n_in; j++) gc->xf[j] = (float)urand(&r);
    float *p = cv_net_params(gc->net);
    for (int i = 1; i < gc->spec.n_layers; i++) {
        const cv_param_view v = cv_net_param_view(gc->net, i);
        for (int64_t j = 0; j < v.bias_n; j++) p[v.bias_off + j] = (float)(0.3 * urand(&r));
    }
    for (int b = 0; b < gc->B; b++) {
        gc->labels[b] = (int32_t)cv_rng_below(&r, tk == T_LABELS && gc->K == 1 ? 2 : (uint64_t)gc->K);
        double sum = 0.0;
        for (int k = 0; k < gc->K; k++) {
            float *t = &gc->targets[(size_t)b * gc->K + k];
            switch (tk) {
            case T_ONEHOT: *t = gc->labels[b] == k; break;
            case T_SOFT:
            case T_SOFT_RAW: sum += (*t = (float)(0.1 + cv_unit(cv_rng_next(&r)))); break;
            case T_UNIT: *t = (float)(0.05 + 0.9 * cv_unit(cv_rng_next(&r))); break;
            default: *t = (float)(1.5 * urand(&r)); break;
            }
        }
        for (int k = 0; tk == T_SOFT && k < gc->K; k++) gc->targets[(size_t)b * gc->K + k] /= (float)sum;
    }
}

/* Parses `model`, creates the net and draws data and biases until no kink is near. */
static void case_init(gcase *gc, const char *model, int B, target_kind tk, bool training)
{
    memset(gc, 0, sizeof *gc);
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&gc->spec, model, "grad.model", &err), 0, "%s\n%s", err.msg, model);
    gc->B = B;
    gc->training = training;
    gc->seed = 5;
    gc->epoch = 2;
    for (int b = 0; b < B; b++) gc->ids[b] = 3 + 7 * b;
    gc->net = cv_net_create(&gc->spec, B, 17, &err);
    cr_assert_not_null(gc->net, "%s", err.msg);
    gc->K = cv_net_outputs(gc->net);
    gc->xf = malloc(sizeof(float) * (size_t)(B * cv_shape_size(gc->spec.layers[0].out)));
    gc->labels = malloc(sizeof(int32_t) * (size_t)B);
    gc->targets = malloc(sizeof(float) * (size_t)(B * gc->K));
    gc->tk = tk;
}

static void case_free(gcase *gc)
{
    cv_net_free(gc->net);
    cv_model_spec_free(&gc->spec);
    free(gc->xf), free(gc->labels), free(gc->targets);
    for (int i = 0; i < CV_MAX_LAYERS; i++) free(gc->mask[i]);
}

static double *params_double(gcase *gc)
{
    const int64_t n = cv_net_param_count(gc->net);
    double *p = malloc(sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < n; j++) p[j] = cv_net_params(gc->net)[j];
    return p;
}

/* Draws data until the kinks are far, then runs the three checks. */
static void check_case(gcase *gc)
{
    double kink = 0.0;
    for (uint64_t seed = 1; seed < 200; seed++) {
        fill_data(gc, gc->tk, seed);
        double *p = params_double(gc);
        forward_ref(gc, p, NULL, &kink);
        free(p);
        if (kink > KINK_MIN) break;
    }
    cr_assert_gt(kink, KINK_MIN, "no data seed keeps the kinks away");
    const int32_t *labels = gc->tk == T_LABELS ? gc->labels : NULL;
    const float *targets = gc->tk == T_LABELS ? NULL : gc->targets;

    /* 1. forward and loss */
    double *p = params_double(gc);
    double *out = malloc(sizeof(double) * (size_t)(gc->B * gc->K));
    const double ref_loss = forward_ref(gc, p, out, NULL);
    const float *y = cv_net_forward(gc->net, gc->xf, gc->B, gc->training, gc->seed, gc->epoch, gc->ids);
    for (int j = 0; j < gc->B * gc->K; j++)
        cr_assert_leq(fabs(y[j] - out[j]), FWD_TOL * (1.0 + fabs(out[j])),
                      "forward out[%d] = %.8g, reference %.8g", j, y[j], out[j]);
    const double loss = cv_net_loss(gc->net, labels, targets, gc->B) / gc->B;
    cr_assert_leq(fabs(loss - ref_loss), FWD_TOL * (1.0 + fabs(ref_loss)),
                  "loss %.9g, reference %.9g", loss, ref_loss);

    /* 2. analytic gradient of the batch mean */
    cv_net_zero_grad(gc->net);
    cv_net_backward(gc->net, labels, targets, gc->B, gc->B);
    const float *g = cv_net_grads(gc->net);

    /* 3. central differences of the reference: every bias, every entry of a kernel of up to
     * FD_KERNEL_MAX entries; a larger kernel (a 32 -> 32 3x3 conv has 9216) on a sample of
     * about that many, its first and last entries included, picked by a hash of the index so
     * that no stride of the layout (filter, channel, tap) is favoured */
    const int64_t n = cv_net_grad_count(gc->net); /* (untrained state has no gradient) */
    double gmax = 0.0, worst = 0.0;
    int bad = 0;
    int64_t checked = 0;
    for (int64_t j = 0; j < n; j++) {
        int layer = 0;
        cv_param_view v = {0};
        for (int i = 1; i < gc->spec.n_layers; i++) {
            const cv_param_view vi = cv_net_param_view(gc->net, i);
            if (j >= vi.kernel_off && j < vi.bias_off + vi.bias_n) layer = i, v = vi;
        }
        const int64_t kn = v.kernel_n;
        const bool inner = j > v.kernel_off && j < v.kernel_off + kn - 1; /* not its first or last */
        if (layer && kn > FD_KERNEL_MAX && inner && cv_key((uint64_t)j, 0, 0, 0) % (uint64_t)kn >= FD_KERNEL_MAX)
            continue;
        checked++;
        const double keep = p[j];
        p[j] = keep + FD_H;
        const double lp = forward_ref(gc, p, NULL, NULL);
        p[j] = keep - FD_H;
        const double lm = forward_ref(gc, p, NULL, NULL);
        p[j] = keep;
        const double num = (lp - lm) / (2 * FD_H);
        gmax = fmax(gmax, fabs(num));
        const double tol = GRAD_RTOL * fabs(num) + GRAD_ATOL;
        worst = fmax(worst, fabs(g[j] - num) / tol);
        if (fabs(g[j] - num) > tol && ++bad <= 8) /* the first few, then a count */
            cr_expect_leq(fabs(g[j] - num), tol,
                          "param %ld (layer %d, %s): analytic %.9g, numeric %.9g", (long)j, layer,
                          cv_layer_kind_name(gc->spec.layers[layer].kind), g[j], num);
    }
    cr_expect_eq(bad, 0, "%d of %ld checked gradients differ from the finite differences", bad, (long)checked);
    if (getenv("CONVOY_GRAD_VERBOSE"))
        fprintf(stderr, "%d params, %d checked, |grad| <= %.3g, worst error %.3g of the tolerance\n", (int)n,
                (int)checked, gmax, worst);
    cr_assert_gt(gmax, 1e-3, "the gradient is (nearly) zero: the test checks nothing");
    free(p), free(out);
}

static void grad_check(const char *model, int B, target_kind tk)
{
    gcase gc;
    case_init(&gc, model, B, tk, false);
    check_case(&gc);
    case_free(&gc);
}

/* ------------------------------------------------------------------------------------------ */
/* conv2d: odd/prime sizes, 3 channels, kernels 3 and 2, 5 filters, valid and same, strides
 * 1 and 2, zero and nearest padding. The 1x1 conv in front checks the input gradient. */

#define CONV_HEAD "input shape=7,5,3\nconv2d filters=3 kernel=1 activation=linear\n"
#define CONV_TAIL "flatten\ndense units=3 activation=linear\ncompile loss=mse\n"
#define POOL(kind, extra) CONV_HEAD kind " " extra "\n" CONV_TAIL

Test(grad, conv_valid_stride1_k3)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_valid_stride2_k2)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=2 stride=2 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_valid_stride2_k3_relu)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 stride=2 activation=relu\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_same_stride1_k3_relu)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 padding=same activation=relu\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_same_stride1_k2_odd_pad)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=2 padding=same activation=sigmoid\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_same_stride2_k3)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 stride=2 padding=same activation=leaky_relu\n" CONV_TAIL,
               3, T_FLOAT);
}
Test(grad, conv_same_stride2_k2)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=2 stride=2 padding=same activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_same_nearest_stride1_k3)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 padding=same pad_mode=nearest activation=tanh\n" CONV_TAIL,
               3, T_FLOAT);
}
Test(grad, conv_same_nearest_stride2_k2)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=2 stride=2 padding=same pad_mode=nearest activation=linear\n"
               CONV_TAIL, 3, T_FLOAT);
}
Test(grad, conv_same_nearest_k5_larger_than_pad)
{
    grad_check(CONV_HEAD "conv2d filters=2 kernel=5 padding=same pad_mode=nearest activation=tanh\n" CONV_TAIL,
               1, T_FLOAT);
}
Test(grad, conv_stack_batch1)
{
    grad_check("input shape=7,5,3\nconv2d filters=5 kernel=3 padding=same activation=relu\n"
               "conv2d filters=4 kernel=2 stride=2 activation=tanh\n" CONV_TAIL, 1, T_FLOAT);
}
/* any kernel shape: rectangular kernels and strides, numeric padding (PyTorch's, both sides or
 * top,bottom,left,right), with zero and nearest padding, through the direct, im2col and
 * implicit-GEMM paths, and zeropad2d */
Test(grad, conv_rectangular_kernel_stride)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3,2 stride=1,2 padding=1,0 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(CONV_HEAD "conv2d filters=5 kernel=2,3 stride=2,1 activation=relu\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(CONV_HEAD "conv2d filters=4 kernel=1,3 stride=2 padding=same activation=tanh\n" CONV_TAIL, 2, T_FLOAT);
}
Test(grad, conv_numeric_padding)
{
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 padding=1 activation=relu\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(CONV_HEAD "conv2d filters=5 kernel=3 stride=2 padding=2,1 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(CONV_HEAD "conv2d filters=4 kernel=3,2 padding=0,1,1,0 pad_mode=nearest activation=tanh\n" CONV_TAIL,
               2, T_FLOAT);
    /* 32 filters: Winograd (3x3 stride 1, pad 1) takes it; then a 3x2 window on 4 channels (direct) */
    grad_check("input shape=7,5,3\nconv2d filters=32 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=3 padding=1 activation=tanh\n" CONV_TAIL, 2, T_FLOAT);
    grad_check("input shape=7,5,3\nconv2d filters=4 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=3,2 stride=1,2 activation=tanh\n" CONV_TAIL, 2, T_FLOAT);
}
Test(grad, zeropad2d)
{
    grad_check(CONV_HEAD "zeropad2d padding=1\nconv2d filters=4 kernel=3 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(CONV_HEAD "zeropad2d padding=0,2,1,0\nmaxpool2d pool=2\n" CONV_TAIL, 3, T_FLOAT);
}
/* batchnorm in training mode: after a conv (its bias's gradient is kept at exactly 0, as the
 * reference's is to rounding), after a tanh conv and before a pool, on a dense layer's features, two in a row,
 * and without center or scale */
static void grad_check_training(const char *model, int B)
{
    gcase gc;
    case_init(&gc, model, B, T_FLOAT, true);
    check_case(&gc);
    case_free(&gc);
}
Test(grad, batchnorm)
{
    grad_check_training(CONV_HEAD "conv2d filters=4 kernel=2 activation=linear\nbatchnorm\nactivation tanh\n" CONV_TAIL, 3);
    grad_check_training(CONV_HEAD "conv2d filters=4 kernel=3 padding=same activation=tanh\nbatchnorm momentum=0.9\n"
                        "avgpool2d pool=2\n" CONV_TAIL, 4);
    grad_check_training("input shape=6\ndense units=5 activation=tanh\nbatchnorm epsilon=0.1\nbatchnorm\n"
                        "dense units=3 activation=linear\ncompile loss=mse\n", 5);
    grad_check_training(CONV_HEAD "batchnorm center=false\nconv2d filters=4 kernel=2 activation=tanh\nbatchnorm scale=false\n"
                        CONV_TAIL, 3);
}
/* a frozen batchnorm, and any batchnorm outside training: an affine map by the moving statistics */
Test(grad, batchnorm_frozen)
{
    grad_check_training(CONV_HEAD "batchnorm trainable=false\nconv2d filters=4 kernel=2 activation=tanh\n" CONV_TAIL, 3);
    grad_check_training(CONV_HEAD "batchnorm trainable=false\nactivation relu\nconv2d filters=4 kernel=2 activation=tanh\n"
                        CONV_TAIL, 3);
}
/* a batchnorm applying the ReLU-family activation layer after it (forward and backward), also
 * a ReLU before a max pool (whose backward applies the same derivative) */
Test(grad, batchnorm_fused_relu)
{
    grad_check_training(CONV_HEAD "conv2d filters=4 kernel=2 activation=linear\nbatchnorm\nactivation relu\n"
                        "maxpool2d pool=2\n" CONV_TAIL, 3);
    grad_check_training(CONV_HEAD "conv2d filters=4 kernel=2 activation=linear\nbatchnorm\nactivation leaky_relu alpha=0.1\n"
                        "conv2d filters=3 kernel=2 activation=tanh\n" CONV_TAIL, 3);
    grad_check_training(CONV_HEAD "batchnorm\nactivation relu\nconv2d filters=4 kernel=2 activation=tanh\n" CONV_TAIL, 4);
}

Test(grad, pool_rectangular)
{
    grad_check(POOL("maxpool2d", "pool=2,1"), 3, T_FLOAT);
    grad_check(POOL("avgpool2d", "pool=3,2 stride=1,2"), 3, T_FLOAT);
    grad_check(POOL("minpool2d", "pool=1,2"), 3, T_FLOAT);
}

/* 32 filters on 4 channels (a 3-wide window row of 12 values), no padding: the implicit-GEMM
 * path (cv_conv_gemm, cv_conv_gemm_dw), stride 1 and 2, with its input gradient */
Test(grad, conv_implicit_gemm_path)
{
    grad_check("input shape=7,5,3\nconv2d filters=4 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=3 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check("input shape=7,5,3\nconv2d filters=4 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=3 stride=2 activation=relu\n" CONV_TAIL, 2, T_FLOAT);
}

/* 1x1 stride-1 convolutions on more than 32 channels: three GEMMs straight on the input, the
 * output gradient and the kernel (its im2col matrix would be the input itself), with and
 * without a bias; where the filters fill the micro-kernel's width, the weight and bias
 * gradients are the implicit GEMM's (cv_conv_gemm_dw: 36 channels, tiles of 12 or 6 rows) */
Test(grad, conv_pointwise_path)
{
    grad_check("input shape=5,4,3\nconv2d filters=36 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=1 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check("input shape=5,4,3\nconv2d filters=40 kernel=1 activation=linear\n"
               "conv2d filters=7 kernel=1 activation=tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check("input shape=5,4,3\nconv2d filters=36 kernel=1 activation=linear\n"
               "conv2d filters=32 kernel=1 use_bias=false activation=sigmoid\nconv2d filters=5 kernel=3 activation=tanh\n"
               CONV_TAIL, 2, T_FLOAT);
}

/* 32 filters with padding, stride 2 or windows Winograd does not take: the implicit GEMM over a
 * padded copy of the input (cv_conv_gemm_padded, _padded_dw); the stride-1 zero-padded ones on 32
 * channels also take the input gradient over a padded dy (cv_conv_gemm_dx), the others col2im */
Test(grad, conv_padded_implicit_path)
{
    const char *convs[] = {"conv2d filters=32 kernel=5 padding=same activation=tanh",
                           "conv2d filters=32 kernel=3 stride=2 padding=same activation=relu",
                           "conv2d filters=32 kernel=3 padding=1 pad_mode=nearest activation=tanh",
                           "conv2d filters=32 kernel=3,2 padding=2,0,1,1 activation=tanh",
                           "conv2d filters=32 kernel=2 stride=2,1 padding=1 activation=sigmoid"};
    const int first[] = {32, 32, 32, 8, 8};
    for (int i = 0; i < 5; i++) {
        char model[512];
        snprintf(model, sizeof model, "input shape=7,5,3\nconv2d filters=%d kernel=1 activation=linear\n%s\n" CONV_TAIL,
                 first[i], convs[i]);
        grad_check(model, 2, T_FLOAT);
    }
}

/* 32 channels into 32 filters through a 3x3 window, valid and 'same': the Winograd F(4x4,3x3)
 * path for the forward pass and both gradients (cv_conv_wino, _dw, _dx), blocks past the edge;
 * then with a 2x2 average pool after it that leaves the conv's last row and column out (9x7
 * -> 4x3): the input gradient skips the column of blocks that reads only their zero gradient */
Test(grad, conv_winograd_path)
{
    const char *models[] = {"input shape=7,5,3\nconv2d filters=32 kernel=1 activation=linear\n"
                            "conv2d filters=32 kernel=3 activation=tanh\n" CONV_TAIL,
                            "input shape=7,5,3\nconv2d filters=32 kernel=1 activation=linear\n"
                            "conv2d filters=32 kernel=3 padding=same activation=sigmoid\n" CONV_TAIL,
                            "input shape=11,9,3\nconv2d filters=32 kernel=1 activation=linear\n"
                            "conv2d filters=32 kernel=3 activation=tanh\navgpool2d pool=2\n" CONV_TAIL,
                            /* 16 filters: on AVX-512 by the 16-wide AVX2 tile (cv_conv_ukernels_for) */
                            "input shape=7,5,3\nconv2d filters=16 kernel=1 activation=linear\n"
                            "conv2d filters=16 kernel=3 padding=1 activation=tanh\n" CONV_TAIL};
    for (int m = 0; m < 4; m++) {
        gcase gc;
        case_init(&gc, models[m], 3, T_FLOAT, false);
        cr_assert_eq(cv_net_conv_winograd(gc.net, 2), CV_WINO_FORWARD | CV_WINO_WEIGHT_GRAD | CV_WINO_INPUT_GRAD);
        check_case(&gc);
        case_free(&gc);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* pooling on 7x5: leftovers, stride != pool, overlapping windows */


Test(grad, maxpool_2) { grad_check(POOL("maxpool2d", "pool=2"), 3, T_FLOAT); }
/* a pool after a ReLU-family conv applies the conv's activation derivative itself */
#define RELU_POOL(act, pool)                                                                     \
    "input shape=7,5,3\nconv2d filters=3 kernel=1 activation=linear\nconv2d filters=4 kernel=2 " \
    "activation=" act "\n" pool "\n" CONV_TAIL
Test(grad, relu_conv_then_maxpool) { grad_check(RELU_POOL("relu", "maxpool2d pool=2"), 3, T_FLOAT); }
Test(grad, leaky_conv_then_minpool) { grad_check(RELU_POOL("leaky_relu alpha=0.2", "minpool2d pool=2 stride=1"), 3, T_FLOAT); }
Test(grad, relu_conv_then_avgpool) { grad_check(RELU_POOL("relu", "avgpool2d pool=2"), 3, T_FLOAT); }
Test(grad, maxpool_3_stride_2) { grad_check(POOL("maxpool2d", "pool=3 stride=2"), 3, T_FLOAT); }
Test(grad, maxpool_2_stride_1) { grad_check(POOL("maxpool2d", "pool=2 stride=1"), 3, T_FLOAT); }
Test(grad, avgpool_2) { grad_check(POOL("avgpool2d", "pool=2"), 3, T_FLOAT); }
Test(grad, avgpool_3_stride_2) { grad_check(POOL("avgpool2d", "pool=3 stride=2"), 3, T_FLOAT); }
Test(grad, avgpool_2_stride_1) { grad_check(POOL("avgpool2d", "pool=2 stride=1"), 3, T_FLOAT); }
Test(grad, minpool_2) { grad_check(POOL("minpool2d", "pool=2"), 3, T_FLOAT); }
Test(grad, minpool_3_stride_2) { grad_check(POOL("minpool2d", "pool=3 stride=2"), 3, T_FLOAT); }
Test(grad, minpool_2_stride_1) { grad_check(POOL("minpool2d", "pool=2 stride=1"), 1, T_FLOAT); }
/* global pooling: a whole 7x5 map per channel, after a linear and after a ReLU conv, and in front
 * of the output layer */
#define GLOBAL(pool, act) "input shape=7,5,3\nconv2d filters=4 kernel=2 activation=" act "\n" pool "\ndense units=3 activation=linear\ncompile loss=mse\n"
Test(grad, globalavgpool) { grad_check(GLOBAL("globalavgpool2d", "linear"), 3, T_FLOAT); }
Test(grad, globalavgpool_after_relu) { grad_check(GLOBAL("globalavgpool2d", "relu"), 3, T_FLOAT); }
Test(grad, globalmaxpool) { grad_check(GLOBAL("globalmaxpool2d", "linear"), 3, T_FLOAT); }
Test(grad, globalmaxpool_after_tanh) { grad_check(GLOBAL("globalmaxpool2d", "tanh"), 3, T_FLOAT); }
Test(grad, globalavgpool_softmax_output)
{
    grad_check("input shape=6,4,2\nconv2d filters=5 kernel=3 padding=same activation=relu\nglobalavgpool2d\n"
               "activation softmax\ncompile loss=categorical_crossentropy\n", 3, T_ONEHOT);
}

Test(grad, maxpool_after_relu_conv)
{
    grad_check("input shape=7,5,3\nconv2d filters=4 kernel=3 padding=same activation=relu\n"
               "maxpool2d pool=2\n" CONV_TAIL, 3, T_FLOAT);
}

/* ------------------------------------------------------------------------------------------ */
/* dense and activations (in a dense layer and as separate layers); softmax in the middle
 * takes the full Jacobian path */

#define LOSS_NET(k, out, loss) \
    "input shape=5\ndense units=4 activation=tanh\ndense units=" #k " activation=" out "\ncompile loss=" loss "\n"
#define DENSE_HEAD "input shape=6\ndense units=7 activation="
#define DENSE_TAIL "\ndense units=4 activation=linear\ncompile loss=mse\n"
#define ACT_HEAD "input shape=6\ndense units=7 activation=linear\nactivation "

Test(grad, dense_linear) { grad_check(DENSE_HEAD "linear" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, dense_relu) { grad_check(DENSE_HEAD "relu" DENSE_TAIL, 3, T_FLOAT); }
/* the reference reads alpha and delta from the spec, so pin their defaults here */
Test(grad, defaults_leaky_alpha_and_huber_delta)
{
    cv_model_spec spec;
    cr_assert_eq(cv_model_parse(&spec, DENSE_HEAD "leaky_relu\nactivation leaky_relu" DENSE_TAIL, "m", NULL), 0);
    cr_expect_eq(spec.layers[1].alpha, 0.2f, "keras.activations.leaky_relu default");
    cr_expect_eq(spec.layers[2].alpha, 0.2f);
    cv_model_spec_free(&spec);
    cr_assert_eq(cv_model_parse(&spec, LOSS_NET(3, "linear", "huber"), "m", NULL), 0);
    cr_expect_eq(spec.loss.huber_delta, 1.0f, "Keras Huber default delta");
    cv_model_spec_free(&spec);
}
Test(grad, dense_leaky_relu) { grad_check(DENSE_HEAD "leaky_relu" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, dense_leaky_relu_alpha) { grad_check(DENSE_HEAD "leaky_relu alpha=0.05" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, dense_sigmoid) { grad_check(DENSE_HEAD "sigmoid" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, dense_tanh) { grad_check(DENSE_HEAD "tanh" DENSE_TAIL, 1, T_FLOAT); }
Test(grad, dense_softmax_not_final) { grad_check(DENSE_HEAD "softmax" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, dense_no_bias) { grad_check(DENSE_HEAD "tanh use_bias=false" DENSE_TAIL, 3, T_FLOAT); }

Test(grad, activation_layer_relu) { grad_check(ACT_HEAD "relu" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, activation_layer_leaky_relu) { grad_check(ACT_HEAD "leaky_relu alpha=0.3" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, activation_layer_sigmoid) { grad_check(ACT_HEAD "sigmoid" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, activation_layer_tanh) { grad_check(ACT_HEAD "tanh" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, activation_layer_softmax) { grad_check(ACT_HEAD "softmax" DENSE_TAIL, 3, T_FLOAT); }
Test(grad, activation_layer_linear) { grad_check(ACT_HEAD "linear" DENSE_TAIL, 1, T_FLOAT); }

/* softmax over the channels of an (H, W, C) tensor, pixel by pixel */
Test(grad, activation_softmax_on_channels)
{
    grad_check("input shape=4,3,5\nconv2d filters=4 kernel=1 activation=linear\nactivation softmax\n"
               CONV_TAIL, 3, T_FLOAT);
}

/* ------------------------------------------------------------------------------------------ */
/* dropout in training mode: masks from (seed, epoch, sample id), taken from a probe net */

Test(grad, dropout_training)
{
    gcase gc;
    case_init(&gc,
              "input shape=6\ndense units=10 activation=tanh\ndropout rate=0.4\n"
              "dense units=3 activation=linear\ncompile loss=mse\n", 3, T_FLOAT, true);
    probe_mask(&gc,
               "input shape=10\ndense units=10 activation=linear\ndropout rate=0.4\n"
               "dense units=10 activation=linear\ncompile loss=mse\n", 2);
    check_case(&gc);
    case_free(&gc);
}

Test(grad, dropout_on_feature_maps_training)
{
    gcase gc;
    case_init(&gc, CONV_HEAD "dropout rate=0.3\nconv2d filters=2 kernel=2 activation=tanh\n" CONV_TAIL, 3,
              T_FLOAT, true);
    probe_mask(&gc,
               "input shape=105\ndense units=105 activation=linear\ndropout rate=0.3\n"
               "dense units=105 activation=linear\ncompile loss=mse\n", 2);
    check_case(&gc);
    case_free(&gc);
}

/* ------------------------------------------------------------------------------------------ */
/* losses */


Test(grad, loss_mse) { grad_check(LOSS_NET(3, "linear", "mse"), 3, T_FLOAT); }
Test(grad, loss_mse_batch1) { grad_check(LOSS_NET(3, "linear", "mse"), 1, T_FLOAT); }
Test(grad, loss_mse_labels_1_output) { grad_check(LOSS_NET(1, "linear", "mse"), 3, T_LABELS); }
Test(grad, loss_mae) { grad_check(LOSS_NET(3, "linear", "mae"), 3, T_FLOAT); }
Test(grad, loss_mae_batch1) { grad_check(LOSS_NET(2, "linear", "mae"), 1, T_FLOAT); }

/* huber with delta 0.5 and targets in [-1.5, 1.5]: both branches occur (checked) */
Test(grad, loss_huber_both_branches)
{
    gcase gc;
    case_init(&gc, LOSS_NET(4, "linear", "huber delta=0.5"), 3, T_FLOAT, false);
    check_case(&gc);
    const float *y = cv_net_forward(gc.net, gc.xf, gc.B, false, 0, 0, gc.ids);
    int small = 0, large = 0;
    for (int j = 0; j < gc.B * gc.K; j++) {
        const double e = fabs(y[j] - gc.targets[j]);
        small += e < 0.5, large += e > 0.5;
    }
    cr_assert(small > 0 && large > 0, "huber branches: %d quadratic, %d linear", small, large);
    case_free(&gc);
}
Test(grad, loss_huber_default_delta) { grad_check(LOSS_NET(3, "linear", "huber"), 3, T_FLOAT); }

/* from_logits=true: a linear output layer, the loss applying the softmax / sigmoid */
Test(grad, loss_sparse_ce_from_logits)
{
    grad_check(LOSS_NET(4, "linear", "sparse_categorical_crossentropy from_logits=true"), 3, T_LABELS);
}
Test(grad, loss_categorical_ce_from_logits_soft)
{
    grad_check(LOSS_NET(4, "linear", "categorical_crossentropy from_logits=true"), 3, T_SOFT);
}
Test(grad, loss_binary_ce_from_logits)
{
    grad_check(LOSS_NET(3, "linear", "binary_crossentropy from_logits=true"), 3, T_UNIT);
}

Test(grad, loss_binary_ce_labels) { grad_check(LOSS_NET(1, "sigmoid", "binary_crossentropy"), 3, T_LABELS); }
Test(grad, loss_binary_ce_labels_batch1)
{
    grad_check(LOSS_NET(1, "sigmoid", "binary_crossentropy"), 1, T_LABELS);
}
Test(grad, loss_binary_ce_float_targets)
{
    grad_check(LOSS_NET(3, "sigmoid", "binary_crossentropy"), 3, T_UNIT);
}
Test(grad, loss_categorical_ce_onehot)
{
    grad_check(LOSS_NET(4, "softmax", "categorical_crossentropy"), 3, T_ONEHOT);
}
Test(grad, loss_categorical_ce_soft_targets)
{
    grad_check(LOSS_NET(4, "softmax", "categorical_crossentropy"), 3, T_SOFT);
}
/* -sum_k y_k log p_k for targets that do not sum to 1 (multi-label rows): the loss value is
 * right, and its gradient with respect to the logits is p sum(y) - y, not p - y */
Test(grad, loss_categorical_ce_unnormalised_targets)
{
    grad_check(LOSS_NET(4, "softmax", "categorical_crossentropy"), 3, T_SOFT_RAW);
}
Test(grad, loss_categorical_ce_labels)
{
    grad_check(LOSS_NET(4, "softmax", "categorical_crossentropy"), 3, T_LABELS);
}
Test(grad, loss_sparse_ce) { grad_check(LOSS_NET(4, "softmax", "sparse_categorical_crossentropy"), 3, T_LABELS); }
Test(grad, loss_sparse_ce_batch1)
{
    grad_check(LOSS_NET(4, "softmax", "sparse_categorical_crossentropy"), 1, T_LABELS);
}
/* the output softmax as its own layer: the loss still fuses with it */
Test(grad, loss_sparse_ce_softmax_layer)
{
    grad_check("input shape=5\ndense units=4 activation=linear\nactivation softmax\n"
               "compile loss=sparse_categorical_crossentropy\n", 3, T_LABELS);
}
Test(grad, loss_binary_ce_sigmoid_layer)
{
    grad_check("input shape=5\ndense units=2 activation=tanh\ndense units=2\nactivation sigmoid\n"
               "compile loss=binary_crossentropy\n", 3, T_UNIT);
}

/* ------------------------------------------------------------------------------------------ */
/* accumulation and normalisation */

static gcase *accum_case(void)
{
    static gcase gc;
    case_init(&gc, CONV_HEAD "conv2d filters=2 kernel=3 activation=tanh\nmaxpool2d pool=2\n"
                   "flatten\ndense units=3 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n",
              3, T_LABELS, false);
    fill_data(&gc, T_LABELS, 1);
    cv_net_forward(gc.net, gc.xf, gc.B, false, 0, 0, gc.ids);
    return &gc;
}

/* backward ADDS into the gradient buffer: two calls give twice one call, bit for bit (in
 * tiles of one sample as well: the tiles' sum is added at once) */
static void check_accumulates(int tile)
{
    gcase *gc = accum_case();
    cv_err err = {{0}};
    cr_assert_eq(cv_net_set_tile(gc->net, tile, &err), 0, "%s", err.msg);
    cv_net_forward(gc->net, gc->xf, gc->B, false, 0, 0, gc->ids);
    cr_assert_eq(cv_net_tile_for(gc->net, gc->B), tile);
    const int64_t n = cv_net_param_count(gc->net);
    float *once = malloc(sizeof(float) * (size_t)n);
    cv_net_zero_grad(gc->net);
    cv_net_backward(gc->net, gc->labels, NULL, gc->B, gc->B);
    memcpy(once, cv_net_grads(gc->net), sizeof(float) * (size_t)n);
    cv_net_backward(gc->net, gc->labels, NULL, gc->B, gc->B);
    const float *twice = cv_net_grads(gc->net);
    int nonzero = 0;
    for (int64_t j = 0; j < n; j++) {
        nonzero += once[j] != 0.0f;
        cr_expect_eq(twice[j], 2.0f * once[j], "param %ld: %.9g after two calls, %.9g after one", (long)j, twice[j],
                     once[j]);
    }
    cr_assert_gt(nonzero, n / 2);
    /* zero_grad clears it */
    cv_net_zero_grad(gc->net);
    for (int64_t j = 0; j < n; j++) cr_assert_eq(cv_net_grads(gc->net)[j], 0.0f);
    free(once);
    case_free(gc);
}

Test(grad, backward_accumulates) { check_accumulates(0); }
Test(grad, backward_accumulates_in_tiles) { check_accumulates(1); }

/* norm divides: backward(norm) = B / norm * backward(B); and two half-batch backward calls
 * with norm = B add up to the full batch's */
Test(grad, norm_scales_and_micro_batches_add)
{
    gcase *gc = accum_case();
    const int64_t n = cv_net_param_count(gc->net);
    float *full = malloc(sizeof(float) * (size_t)n);
    cv_net_zero_grad(gc->net);
    cv_net_backward(gc->net, gc->labels, NULL, gc->B, gc->B);
    memcpy(full, cv_net_grads(gc->net), sizeof(float) * (size_t)n);

    float gmax = 0.0f;
    for (int64_t j = 0; j < n; j++) gmax = fmaxf(gmax, fabsf(full[j]));
    /* float rounding of 1/norm differs, and sums with cancellation amplify it: compare
     * relative to the gradient's scale */
    cv_net_zero_grad(gc->net);
    cv_net_backward(gc->net, gc->labels, NULL, gc->B, 7.5);
    for (int64_t j = 0; j < n; j++)
        cr_expect_leq(fabsf(cv_net_grads(gc->net)[j] - full[j] * 3.0f / 7.5f), 1e-6f * gmax,
                      "param %ld with norm 7.5: %.9g, expected %.9g", (long)j,
                      cv_net_grads(gc->net)[j], full[j] * 3.0f / 7.5f);

    /* samples 0..1 then sample 2, each divided by the whole batch's 3 */
    const int64_t n_in = cv_shape_size(gc->spec.layers[0].out);
    cv_net_zero_grad(gc->net);
    cv_net_forward(gc->net, gc->xf, 2, false, 0, 0, gc->ids);
    cv_net_backward(gc->net, gc->labels, NULL, 2, 3.0);
    cv_net_forward(gc->net, gc->xf + 2 * n_in, 1, false, 0, 0, gc->ids + 2);
    cv_net_backward(gc->net, gc->labels + 2, NULL, 1, 3.0);
    for (int64_t j = 0; j < n; j++)
        cr_expect_leq(fabsf(cv_net_grads(gc->net)[j] - full[j]), 1e-6f * gmax,
                      "param %ld: micro-batches %.9g, full batch %.9g", (long)j, cv_net_grads(gc->net)[j],
                      full[j]);
    free(full);
    case_free(gc);
}

/* A batch big enough that conv2d works through im2col in several chunks of samples gives the
 * same outputs as one sample at a time, and the sum of the per-sample gradients. */
Test(grad, conv_chunked_batch_matches_per_sample)
{
    enum { B = 16 };
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, "input shape=64,64,16\n"
                                "conv2d filters=4 kernel=3 padding=same activation=tanh\n"
                                "flatten\ndense units=2 activation=linear\ncompile loss=mse\n",
                                "chunk.model", &err), 0, "%s", err.msg);
    const cv_layer probe = {.spec = &spec.layers[1],
                            .win = {.H = 64, .W = 64, .C = 16, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .OH = 64, .OW = 64}};
    cr_assert_lt(cv_conv_chunk(&probe, B), B, "the batch fits one chunk: the test checks nothing");
    cv_net *net = cv_net_create(&spec, B, 3, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const int64_t n_in = 64 * 64 * 16, np = cv_net_param_count(net);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in)), t[B * 2];
    cv_rng r = {42};
    for (int64_t j = 0; j < B * n_in; j++) x[j] = (float)urand(&r);
    for (int j = 0; j < B * 2; j++) t[j] = (float)urand(&r);
    float *p = cv_net_params(net);
    const cv_param_view v = cv_net_param_view(net, 1);
    for (int64_t j = 0; j < v.bias_n; j++) p[v.bias_off + j] = (float)(0.3 * urand(&r));
    int64_t ids[B];
    for (int b = 0; b < B; b++) ids[b] = b;

    float *whole = malloc(sizeof(float) * B * 2), *g = malloc(sizeof(float) * (size_t)np);
    memcpy(whole, cv_net_forward(net, x, B, false, 0, 0, ids), sizeof(float) * B * 2);
    cv_net_zero_grad(net);
    cv_net_backward(net, NULL, t, B, B);
    memcpy(g, cv_net_grads(net), sizeof(float) * (size_t)np);

    cv_net_zero_grad(net);
    for (int b = 0; b < B; b++) {
        const float *y = cv_net_forward(net, x + b * n_in, 1, false, 0, 0, ids + b);
        for (int k = 0; k < 2; k++)
            cr_expect_leq(fabsf(y[k] - whole[b * 2 + k]), 1e-6f * (1.0f + fabsf(whole[b * 2 + k])),
                          "sample %d output %d: alone %.9g, in the batch %.9g", b, k, y[k], whole[b * 2 + k]);
        cv_net_backward(net, NULL, t + b * 2, 1, B);
    }
    float gmax = 0.0f;
    for (int64_t j = 0; j < np; j++) gmax = fmaxf(gmax, fabsf(g[j]));
    int bad = 0;
    for (int64_t j = 0; j < np; j++) bad += fabsf(cv_net_grads(net)[j] - g[j]) > 1e-5f * gmax;
    cr_expect_eq(bad, 0, "%d of %ld gradients differ between the chunked batch and per-sample sums",
                 bad, (long)np);
    free(x), free(whole), free(g);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* Cross-entropies from logits stay finite and exact when the softmax/sigmoid saturates. */
Test(grad, cross_entropy_saturated_logits)
{
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, "input shape=2\ndense units=3 activation=softmax\n"
                                "compile loss=sparse_categorical_crossentropy\n", "sat.model", &err), 0);
    cv_net *net = cv_net_create(&spec, 1, 1, &err);
    float *p = cv_net_params(net);
    const float w[6] = {100, -100, 0, 0, 0, 0}; /* logits (100, -100, 0) for x = (1, 0) */
    memcpy(p, w, sizeof w);
    memset(p + 6, 0, 3 * sizeof(float));
    const float x[2] = {1, 0};
    const int64_t id = 0;
    const int32_t label = 1;
    const float *y = cv_net_forward(net, x, 1, false, 0, 0, &id);
    cr_expect_eq(y[1], 0.0f, "p(-100) underflows to 0 in float");
    const double loss = cv_net_loss(net, &label, NULL, 1);
    cr_expect(fabs(loss - 200.0) < 1e-9 * 200, "loss %.12g, expected 200 (= lse - z_1)", loss);
    cv_net_zero_grad(net);
    cv_net_backward(net, &label, NULL, 1, 1);
    const float *g = cv_net_grads(net);
    /* d/dlogits = p - y = (1, -1, 0) (to float); kernel row 0 = x_0 * that, bias = that */
    const float want[9] = {1, -1, 0, 0, 0, 0, 1, -1, 0};
    for (int j = 0; j < 9; j++) {
        cr_expect(isfinite(g[j]), "grad %d = %g", j, g[j]);
        cr_expect_leq(fabsf(g[j] - want[j]), 1e-6f, "grad %d = %.9g, expected %g", j, g[j], want[j]);
    }
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* ------------------------------------------------------------------------------------------ */
/* Sample tiling: the spatial layers run a few samples at a time (cv_net_set_tile). A trunk with
 * dropout, a direct conv whose ReLU output only its max pool sees (kept in cache only), an
 * im2col conv with same padding and an overlapping min pool after a leaky ReLU; 5 samples in
 * tiles of 2 (the last one short). */

#define TILED_TRUNK                                                                                \
    CONV_HEAD "dropout rate=0.3\nconv2d filters=4 kernel=2 activation=relu\nmaxpool2d pool=2\n"    \
              "conv2d filters=5 kernel=3 padding=same activation=leaky_relu alpha=0.1\n"           \
              "minpool2d pool=2 stride=1\n" CONV_TAIL

Test(grad, tiled_trunk_training)
{
    gcase gc;
    case_init(&gc, TILED_TRUNK, 5, T_FLOAT, true);
    cv_err err = {{0}};
    cr_assert_eq(cv_net_set_tile(gc.net, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_net_tile(gc.net), 2);
    probe_mask(&gc,
               "input shape=105\ndense units=105 activation=linear\ndropout rate=0.3\n"
               "dense units=105 activation=linear\ncompile loss=mse\n", 2);
    check_case(&gc);
    /* the ReLU conv feeding the max pool kept its output in cache only; the others are there */
    cr_assert_null(cv_net_layer_output(gc.net, 3));
    cr_assert_null(cv_net_layer_output(gc.net, 5));
    cr_assert_not_null(cv_net_layer_output(gc.net, 4));
    cr_assert_not_null(cv_net_layer_output(gc.net, 6));
    case_free(&gc);
}

/* One forward and backward of net on the fixed data: outputs into y, gradients into g. */
static void run_once(cv_net *net, const float *x, const float *t, int B, float *y, float *g)
{
    int64_t ids[16];
    for (int b = 0; b < B; b++) ids[b] = 11 * b + 1;
    memcpy(y, cv_net_forward(net, x, B, true, 9, 1, ids), sizeof(float) * (size_t)(B * cv_net_outputs(net)));
    cv_net_zero_grad(net);
    cv_net_backward(net, NULL, t, B, B);
    memcpy(g, cv_net_grads(net), sizeof(float) * (size_t)cv_net_grad_count(net));
}

/* Tiles change the weight gradients' summation order only: the outputs are identical and the
 * gradients agree to float rounding; the thread count changes nothing at all. */
static void check_tiled_matches(const char *model, int transient)
{
    enum { B = 13 };
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, model, "tiled.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(&spec, B, 3, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const int K = cv_net_outputs(net);
    const int64_t n_in = cv_shape_size(spec.layers[0].out), ng = cv_net_grad_count(net);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in)), t[B * 3];
    cv_rng r = {8};
    for (int64_t j = 0; j < B * n_in; j++) x[j] = (float)urand(&r);
    for (int j = 0; j < B * K; j++) t[j] = (float)urand(&r);
    float y0[B * 3], y1[B * 3], y2[B * 3];
    float *g0 = malloc(sizeof(float) * (size_t)ng), *g1 = malloc(sizeof(float) * (size_t)ng),
          *g2 = malloc(sizeof(float) * (size_t)ng);

    cr_assert_eq(cv_net_set_tile(net, 0, &err), 0, "%s", err.msg); /* the whole batch at once */
    run_once(net, x, t, B, y0, g0);
    cr_assert_not_null(cv_net_layer_output(net, transient));
    cr_assert_eq(cv_net_set_tile(net, 3, &err), 0, "%s", err.msg);
    omp_set_num_threads(1);
    run_once(net, x, t, B, y1, g1);
    omp_set_num_threads(2);
    run_once(net, x, t, B, y2, g2);
    cr_assert_null(cv_net_layer_output(net, transient), "the tiled pass did not run");

    cr_assert_eq(memcmp(y0, y1, sizeof y0), 0, "tiled outputs differ from the whole batch's");
    cr_assert_eq(memcmp(y1, y2, sizeof y1), 0, "1 and 2 threads give different outputs");
    cr_assert_eq(memcmp(g1, g2, sizeof(float) * (size_t)ng), 0, "1 and 2 threads give different gradients");
    float gmax = 0.0f;
    for (int64_t j = 0; j < ng; j++) gmax = fmaxf(gmax, fabsf(g0[j]));
    cr_assert_gt(gmax, 1e-3f);
    int bad = 0;
    for (int64_t j = 0; j < ng; j++) bad += fabsf(g1[j] - g0[j]) > 1e-5f * gmax;
    cr_expect_eq(bad, 0, "%d of %ld gradients differ between tiles and the whole batch", bad, (long)ng);
    free(x), free(g0), free(g1), free(g2);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(grad, tiled_matches_whole_batch_and_any_thread_count) { check_tiled_matches(TILED_TRUNK, 3); }

/* A first conv2d and its 2x2 pool as one kernel in tiles (cv_conv_pool): 3x3 on one channel
 * with ReLU and a conv row no window covers, 2x2 on three channels with leaky ReLU, one that is
 * not the first layer (its input gradient is wanted: only its forward runs fused), and a min
 * pool. */
static const char *const fused_models[] = {
    "input shape=5,6,1\nconv2d filters=16 kernel=3 activation=relu\nmaxpool2d pool=2\n" CONV_TAIL,
    "input shape=3,5,3\nconv2d filters=16 kernel=2 activation=leaky_relu alpha=0.1\nmaxpool2d pool=2\n" CONV_TAIL,
    "input shape=4,5,2\nconv2d filters=1 kernel=1 activation=linear\nconv2d filters=16 kernel=3 activation=relu\n"
    "maxpool2d pool=2\n" CONV_TAIL,
    "input shape=4,6,1\nconv2d filters=16 kernel=3 activation=relu\nminpool2d pool=2\n" CONV_TAIL,
};
static const int fused_conv[] = {1, 1, 2, 1};

/* the fused pair is what these tests are about, whatever the caller's environment says */
static void allow_fusion(void) { unsetenv("CONVOY_FUSE"); }

Test(grad, fused_conv_pool_in_tiles, .init = allow_fusion)
{
    for (int m = 0; m < 4; m++) {
        gcase gc;
        case_init(&gc, fused_models[m], 3, T_FLOAT, true);
        cv_err err = {{0}};
        cr_assert_eq(cv_net_set_tile(gc.net, 2, &err), 0, "%s", err.msg);
        cr_assert(cv_net_fused_with_next(gc.net, fused_conv[m]), "model %d: the pair is not fused", m);
        check_case(&gc);
        cr_assert_null(cv_net_layer_output(gc.net, fused_conv[m]));
        case_free(&gc);
    }
}

Test(grad, fused_conv_pool_matches_whole_batch, .init = allow_fusion)
{
    for (int m = 0; m < 4; m++) check_tiled_matches(fused_models[m], fused_conv[m]);
}

/* Inference splits the rows after the spatial layers into one block per thread (forward_rows):
 * the outputs, and the loss the fused logits give, are the bits of a one-thread pass. */
Test(grad, inference_row_blocks_match_one_thread)
{
    static const char *const models[] = {
        "input shape=6,5,1\nflatten\ndense units=40 activation=relu\ndropout rate=0.3\n"
        "dense units=7 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n",
        "input shape=7,5,3\nconv2d filters=4 kernel=2 activation=relu\nmaxpool2d pool=2\nflatten\n"
        "dense units=9 activation=tanh\nactivation sigmoid\ndense units=3 activation=softmax\n"
        "compile loss=sparse_categorical_crossentropy\n",
    };
    enum { B = 150 };
    for (int m = 0; m < 2; m++) {
        cv_model_spec spec;
        cv_err err = {{0}};
        cr_assert_eq(cv_model_parse(&spec, models[m], "rows.model", &err), 0, "%s", err.msg);
        cv_net *net = cv_net_create(&spec, B, 3, &err);
        cr_assert_not_null(net, "%s", err.msg);
        const int64_t n_in = cv_shape_size(spec.layers[0].out), K = cv_net_outputs(net);
        float *x = malloc(sizeof(float) * (size_t)(B * n_in)), *y1 = malloc(sizeof(float) * (size_t)(B * K));
        int32_t labels[B];
        cv_rng r = {21};
        for (int64_t j = 0; j < B * n_in; j++) x[j] = (float)urand(&r);
        for (int b = 0; b < B; b++) labels[b] = b % (int)K;
        omp_set_num_threads(1);
        memcpy(y1, cv_net_forward(net, x, B, false, 1, 0, NULL), sizeof(float) * (size_t)(B * K));
        const double l1 = cv_net_loss(net, labels, NULL, B);
        omp_set_num_threads(2);
        const float *y2 = cv_net_forward(net, x, B, false, 1, 0, NULL);
        const double l2 = cv_net_loss(net, labels, NULL, B);
        cr_assert_eq(memcmp(y1, y2, sizeof(float) * (size_t)(B * K)), 0, "model %d: 2 threads' outputs differ", m);
        cr_assert_eq(l1, l2, "model %d: loss %g vs %g", m, l1, l2);
        free(x), free(y1);
        cv_net_free(net);
        cv_model_spec_free(&spec);
    }
}

/* sample weights: the weighted loss and gradient are the per-sample ones, weighted and summed
 * (Keras's sum_over_batch_size with sample_weight / class_weight) */
Test(grad, sample_weights_weigh_each_sample)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, LOSS_NET(3, "softmax", "sparse_categorical_crossentropy"), "w.model", &err), 0,
                 "%s", err.msg);
    cv_net *net = cv_net_create(&spec, 3, 5, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const float x[15] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 1.0f, 0.5f, -1.5f, 0.25f, 0.0f, -0.3f, 0.7f, 0.2f, -0.9f, 0.6f};
    const int32_t y[3] = {2, 0, 1};
    const float w[3] = {2.0f, 0.0f, 0.5f};
    const int64_t ids[3] = {0, 1, 2}, n = cv_net_grad_count(net);
    double *want = calloc((size_t)n, sizeof *want), lw = 0.0;
    for (int b = 0; b < 3; b++) { /* each sample alone, weighted by hand */
        cv_net_forward(net, x + 5 * b, 1, false, 5, 0, ids + b);
        lw += w[b] * cv_net_loss(net, y + b, NULL, 1);
        cv_net_zero_grad(net);
        cv_net_backward(net, y + b, NULL, 1, 3.0);
        for (int64_t i = 0; i < n; i++) want[i] += w[b] * cv_net_grads(net)[i];
    }
    cv_net_forward(net, x, 3, false, 5, 0, ids);
    const double got = cv_net_loss_w(net, y, NULL, w, 3);
    cr_assert_float_eq(got, lw, 1e-6 * fabs(lw), "weighted loss %g, by hand %g", got, lw);
    cv_metrics m = {0};
    cv_net_metrics_w(net, y, NULL, w, 3, &m);
    cr_assert_float_eq(m.loss, lw, 1e-6 * fabs(lw));
    cr_assert_eq(m.count, 3, "accuracy and counts stay unweighted");
    cv_net_zero_grad(net);
    cv_net_backward_w(net, y, NULL, w, 3, 3.0);
    for (int64_t i = 0; i < n; i++)
        cr_assert_float_eq(cv_net_grads(net)[i], want[i], 1e-6, "gradient %lld: %g, by hand %g", (long long)i,
                           (double)cv_net_grads(net)[i], want[i]);
    free(want);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* ------------------------------------------------------------------------------------------ */
/* residual blocks: the identity shortcut, option A (stride-2 subsampling, zero channels placed
 * in the middle), option B (a 1x1 strided projection), nested blocks, a block on vectors, and
 * batchnorm inside (the ResNet pattern) */

#define RES_HEAD "input shape=7,5,3\nconv2d filters=4 kernel=1 activation=linear\n"
Test(grad, residual_identity)
{
    grad_check(RES_HEAD "residual\nconv2d filters=4 kernel=3 padding=same activation=tanh\n"
               "conv2d filters=4 kernel=3 padding=same activation=linear\nend\nactivation tanh\n" CONV_TAIL, 3, T_FLOAT);
}
Test(grad, residual_option_a)
{
    grad_check(RES_HEAD "residual\nconv2d filters=8 kernel=3 stride=2 padding=same activation=tanh\n"
               "conv2d filters=8 kernel=3 padding=same activation=linear\nend\nactivation tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(RES_HEAD "residual\nconv2d filters=7 kernel=1 activation=tanh\nend\n" CONV_TAIL, 2, T_FLOAT);
}
Test(grad, residual_option_b)
{
    grad_check(RES_HEAD "residual shortcut=projection\nconv2d filters=6 kernel=3 stride=2 padding=same activation=tanh\n"
               "end\nactivation tanh\n" CONV_TAIL, 3, T_FLOAT);
    grad_check(RES_HEAD "residual shortcut=projection\nconv2d filters=2 kernel=3 padding=same activation=tanh\nend\n"
               CONV_TAIL, 2, T_FLOAT);
}
Test(grad, residual_nested_and_vectors)
{
    grad_check(RES_HEAD "residual\nconv2d filters=4 kernel=2 padding=same activation=tanh\nresidual\n"
               "conv2d filters=4 kernel=3 padding=same activation=tanh\nend\nend\n" CONV_TAIL, 3, T_FLOAT);
    grad_check("input shape=6\ndense units=5 activation=tanh\nresidual\ndense units=5 activation=tanh\nend\n"
               "residual\ndense units=7 activation=tanh\nend\ndense units=3 activation=linear\ncompile loss=mse\n",
               3, T_FLOAT);
}
Test(grad, residual_with_batchnorm)
{
    grad_check_training(RES_HEAD "residual\nconv2d filters=8 kernel=3 stride=2 padding=same activation=linear\nbatchnorm\n"
                        "activation relu\nconv2d filters=8 kernel=3 padding=same activation=linear\nbatchnorm\nend\n"
                        "activation tanh\n" CONV_TAIL, 4);
}
