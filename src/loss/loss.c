/* Loss values and gradients. Sums use double accumulators over samples in a fixed order;
 * the cross-entropies work from logits (log-sum-exp, softplus) so they never take log(0). */
#include "convoy/loss.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

static inline float target_at(const int32_t *labels, const float *targets, int K, int n, int k)
{
    if (!labels) return targets[(size_t)n * K + k];
    if (K == 1) return (float)labels[n];
    return labels[n] == k ? 1.0f : 0.0f;
}

/* log(1 + exp(z)) without overflow */
static inline double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

double cv_loss_sum(const cv_loss_config *cfg, const float *out, const float *logits,
                   const int32_t *labels, const float *targets, int B, int K)
{
    return cv_loss_sum_w(cfg, out, logits, labels, targets, NULL, B, K);
}

double cv_loss_sum_w(const cv_loss_config *cfg, const float *out, const float *logits, const int32_t *labels,
                     const float *targets, const float *w, int B, int K)
{
    const double delta = cfg->huber_delta;
    double total = 0.0;
/* serial: a fixed summation order whatever the thread count */
    for (int n = 0; n < B; n++) {
        const float *o = out + (size_t)n * K, *z = logits ? logits + (size_t)n * K : NULL;
        double s = 0.0;
        if (cfg->kind == CV_LOSS_CATEGORICAL_CE || cfg->kind == CV_LOSS_SPARSE_CE) {
            double m = z[0];
            for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
            double se = 0.0;
            for (int k = 0; k < K; k++) se += exp(z[k] - m);
            const double lse = m + log(se);
            for (int k = 0; k < K; k++) {
                const float y = target_at(labels, targets, K, n, k);
                if (y != 0.0f) s += y * (lse - z[k]);
            }
        } else {
            for (int k = 0; k < K; k++) {
                const double y = target_at(labels, targets, K, n, k), e = o[k] - y;
                switch (cfg->kind) {
                case CV_LOSS_MSE: s += e * e; break;
                case CV_LOSS_MAE: s += fabs(e); break;
                case CV_LOSS_HUBER: s += fabs(e) <= delta ? 0.5 * e * e : delta * (fabs(e) - 0.5 * delta); break;
                default: /* binary cross-entropy from the logit: softplus(z) - y z */
                    s += softplus(z[k]) - y * z[k];
                    break;
                }
            }
            s /= K; /* Keras: mean over the last axis */
        }
        total += w ? (double)w[n] * s : s;
    }
    return total;
}

void cv_loss_probabilities(const cv_loss_config *cfg, const float *out, int B, int K, float *p)
{
    for (int n = 0; n < B; n++) {
        const float *z = out + (size_t)n * K;
        float *q = p + (size_t)n * K;
        if (!cfg->from_logits) {
            for (int k = 0; k < K; k++) q[k] = z[k];
        } else if (K == 1) {
            q[0] = (float)(1.0 / (1.0 + exp(-(double)z[0])));
        } else {
            double m = z[0], se = 0.0;
            for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
            for (int k = 0; k < K; k++) se += exp(z[k] - m);
            for (int k = 0; k < K; k++) q[k] = (float)(exp(z[k] - m) / se);
        }
    }
}

void cv_loss_grad(const cv_loss_config *cfg, const float *out, const int32_t *labels,
                  const float *targets, int B, int K, double norm, float *d)
{
    cv_loss_grad_w(cfg, out, labels, targets, NULL, B, K, norm, d);
}

void cv_loss_grad_w(const cv_loss_config *cfg, const float *out, const int32_t *labels, const float *targets,
                    const float *w, int B, int K, double norm, float *d)
{
    const float delta = cfg->huber_delta;
    const bool categorical = cfg->kind == CV_LOSS_CATEGORICAL_CE || cfg->kind == CV_LOSS_SPARSE_CE;
    /* per-sample losses average over K outputs except for the categorical cross-entropies */
    const float scale = (float)(1.0 / (norm * (categorical ? 1 : K)));
#pragma omp parallel for schedule(static) if (B * K > 4096)
    for (int n = 0; n < B; n++) {
        /* d/dz_k of -sum_j y_j log softmax(z)_j is p_k sum_j y_j - y_k: p - y for rows summing
         * to one, and still exact for soft or multi-hot rows */
        float sy = 1.0f;
        if (categorical && !labels) {
            sy = 0.0f;
            for (int k = 0; k < K; k++) sy += targets[(size_t)n * K + k];
        }
        /* from logits: the probabilities first (the gradient w.r.t. the logits is p - y either way) */
        double m = 0.0, se = 1.0;
        if (cfg->from_logits && categorical) {
            m = out[(size_t)n * K];
            for (int k = 1; k < K; k++) m = out[(size_t)n * K + k] > m ? out[(size_t)n * K + k] : m;
            se = 0.0;
            for (int k = 0; k < K; k++) se += exp(out[(size_t)n * K + k] - m);
        }
        for (int k = 0; k < K; k++) {
            const size_t i = (size_t)n * K + k;
            const float o = !cfg->from_logits ? out[i]
                            : categorical     ? (float)(exp(out[i] - m) / se)
                            : cfg->kind == CV_LOSS_BINARY_CE ? (float)(1.0 / (1.0 + exp(-(double)out[i])))
                                                              : out[i];
            const float y = target_at(labels, targets, K, n, k), e = o - y;
            float g;
            switch (cfg->kind) {
            case CV_LOSS_MSE: g = 2.0f * e; break;
            case CV_LOSS_MAE: g = (float)((e > 0) - (e < 0)); break;
            case CV_LOSS_HUBER: g = fabsf(e) <= delta ? e : delta * (float)((e > 0) - (e < 0)); break;
            case CV_LOSS_BINARY_CE: g = e; break; /* w.r.t. the logit: p - y */
            default: g = o * sy - y; break;
            }
            d[i] = w ? g * scale * w[n] : g * scale;
        }
    }
}
