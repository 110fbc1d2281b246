/* Activation functions and their derivatives, written in terms of the output y so that the
 * pre-activation never needs to be kept (relu/leaky: sign of y; sigmoid y(1-y); tanh 1-y^2),
 * and the activation layer (Keras's Activation): an identity whose activation= the network
 * applies as it does any layer's. */
#include <math.h>

#include "layers/layers-impl.h"

void cv_act_forward(float *y, int64_t rows, int width, cv_act act, float alpha)
{
    const int64_t n = rows * width;
    switch (act) {
    case CV_ACT_LINEAR: break;
    case CV_ACT_RELU:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case CV_ACT_LEAKY_RELU:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : alpha * y[i];
        break;
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
    case CV_ACT_RELU:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case CV_ACT_LEAKY_RELU:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
        break;
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
    float *restrict y = l->out;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : leak * x[i];
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
    const float *restrict y = l->out;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dout[i] : leak * dout[i];
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
