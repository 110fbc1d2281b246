/* Activation functions and their derivatives, written in terms of the output y so that the
 * pre-activation never needs to be kept (relu/leaky: sign of y; sigmoid y(1-y); tanh 1-y^2),
 * and the activation layer (Keras's Activation): an identity whose activation= the network
 * applies as it does any layer's. */
#include <math.h>
#include <stdbool.h>

#include "kernels/isa.h"
#include "layers/layers-impl.h"

/* The ReLU family's passes, vectorised: the leaky product is taken for every lane and then
 * selected (a branch per element mispredicts on half the lanes of random-sign activations, and
 * GCC will not if-convert a floating-point multiply it would have to speculate). Same values as
 * the branches they replace: v > 0 ? v : leak v, or with zero (cv_act_*'s plain ReLU) +0 and a
 * NaN to 0. y may be x (in place); dx may be dout. */
static inline __attribute__((always_inline)) void relu_fwd_body(float *y, const float *x, int64_t n, float leak,
                                                                const bool zero)
{
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i], w = zero ? 0.0f : leak * v;
        y[i] = v > 0.0f ? v : w;
    }
}
static inline __attribute__((always_inline)) void relu_bwd_body(float *dx, const float *y, const float *dout, int64_t n,
                                                                float leak, const bool zero)
{
    for (int64_t i = 0; i < n; i++) {
        const float g = dout[i], w = zero ? 0.0f : leak * g;
        dx[i] = y[i] > 0.0f ? g : w;
    }
}
static inline __attribute__((always_inline)) void leaky_fwd(float *y, const float *x, int64_t n, float leak)
{
    relu_fwd_body(y, x, n, leak, false);
}
static inline __attribute__((always_inline)) void zero_fwd(float *y, const float *x, int64_t n, float leak)
{
    relu_fwd_body(y, x, n, leak, true);
}
static inline __attribute__((always_inline)) void leaky_bwd(float *dx, const float *y, const float *dout, int64_t n,
                                                            float leak)
{
    relu_bwd_body(dx, y, dout, n, leak, false);
}
static inline __attribute__((always_inline)) void zero_bwd(float *dx, const float *y, const float *dout, int64_t n,
                                                           float leak)
{
    relu_bwd_body(dx, y, dout, n, leak, true);
}
CV_ISA_CLONES(relu_fwd, (float *y, const float *x, int64_t n, float leak), leaky_fwd, (y, x, n, leak))
CV_ISA_CLONES(relu0_fwd, (float *y, const float *x, int64_t n, float leak), zero_fwd, (y, x, n, leak))
CV_ISA_CLONES(relu_bwd, (float *dx, const float *y, const float *dout, int64_t n, float leak), leaky_bwd,
              (dx, y, dout, n, leak))
CV_ISA_CLONES(relu0_bwd, (float *dx, const float *y, const float *dout, int64_t n, float leak), zero_bwd,
              (dx, y, dout, n, leak))

/* the threads take equal runs of whole 64-float blocks; each element's value depends on neither */
#define RELU_BLOCK 64
static void relu_forward_all(float *y, const float *x, int64_t n, float leak, bool zero)
{
    const relu_fwd_fn f = zero ? relu0_fwd_pick() : relu_fwd_pick();
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i = b * RELU_BLOCK, m = n - i < RELU_BLOCK ? n - i : RELU_BLOCK;
        f(y + i, x + i, m, leak);
    }
}
static void relu_backward_all(float *dx, const float *y, const float *dout, int64_t n, float leak, bool zero)
{
    const relu_bwd_fn f = zero ? relu0_bwd_pick() : relu_bwd_pick();
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i = b * RELU_BLOCK, m = n - i < RELU_BLOCK ? n - i : RELU_BLOCK;
        f(dx + i, y + i, dout + i, m, leak);
    }
}

void cv_act_forward(float *y, int64_t rows, int width, cv_act act, float alpha)
{
    const int64_t n = rows * width;
    switch (act) {
    case CV_ACT_LINEAR: break;
    case CV_ACT_RELU: relu_forward_all(y, y, n, 0.0f, true); break;
    case CV_ACT_LEAKY_RELU: relu_forward_all(y, y, n, alpha, false); break;
    case CV_ACT_SIGMOID:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case CV_ACT_TANH:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    case CV_ACT_SOFTMAX:
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *v = y + r * width, m = v[0], s = 0.0f;
            for (int k = 1; k < width; k++) m = v[k] > m ? v[k] : m;
            for (int k = 0; k < width; k++) s += (v[k] = expf(v[k] - m));
            for (int k = 0; k < width; k++) v[k] /= s;
        }
        break;
    default: break;
    }
}

void cv_act_backward(float *dy, const float *y, int64_t rows, int width, cv_act act, float alpha)
{
    const int64_t n = rows * width;
    switch (act) {
    case CV_ACT_LINEAR: break;
    case CV_ACT_RELU: relu_backward_all(dy, y, dy, n, 0.0f, true); break;
    case CV_ACT_LEAKY_RELU: relu_backward_all(dy, y, dy, n, alpha, false); break;
    case CV_ACT_SIGMOID:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case CV_ACT_TANH:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case CV_ACT_SOFTMAX: /* dz = y * (dy - <dy, y>) per row */
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *d = dy + r * width;
            const float *v = y + r * width;
            float dot = 0.0f;
            for (int k = 0; k < width; k++) dot += d[k] * v[k];
            for (int k = 0; k < width; k++) d[k] = v[k] * (d[k] - dot);
        }
        break;
    default: break;
    }
}

static void activation_write(FILE *f, const cv_layer_spec *l) { cv_layer_write_act(f, l); }

/* The layer's passes: a ReLU-family activation in one pass from x to out (and back from dout
 * to dx) when the network lets it (act_fused); the others a copy, the network applying them. */
static void activation_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const int64_t n = (int64_t)B * l->out_size;
    const float leak = l->spec->act == CV_ACT_LEAKY_RELU ? l->spec->alpha : 0.0f;
    if (!l->act_fused || l->spec->act == CV_ACT_LINEAR) {
        cv_identity_forward(l, x, B, ctx);
        return;
    }
    relu_forward_all(l->out, x, n, leak, false);
}

static void activation_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    const int64_t n = (int64_t)B * l->out_size;
    const float leak = l->spec->act == CV_ACT_LEAKY_RELU ? l->spec->alpha : 0.0f;
    if (!dx) return;
    if (!l->act_fused || l->spec->act == CV_ACT_LINEAR || l->act_bwd_by_next) { /* (the pool above applied it) */
        cv_identity_backward(l, x, dx, dout, B, ws);
        return;
    }
    relu_backward_all(dx, l->out, dout, n, leak, false);
}

const cv_layer_kind_desc cv_kind_activation = {
    .kind = CV_LAYER_ACTIVATION,
    .name = "activation",
    .keras_name = "activation",
    .keras_class = "Activation",
    .keys = CV_KEY(CV_KEY_ACTIVATION) | CV_KEY(CV_KEY_ALPHA),
    .required = CV_KEY(CV_KEY_ACTIVATION),
    .bare_key = CV_KEY(CV_KEY_ACTIVATION),
    .flags = CV_KIND_ACT | CV_KIND_TILES | CV_KIND_ROWWISE | CV_KIND_OWN_ACT,
    .infer = cv_layer_infer_same,
    .write_keys = activation_write,
    .forward = activation_forward,
    .backward = activation_backward,
};
