/* Module loss (src/loss/). Owns the losses, their gradients and the per-batch metric sums.
 * May call: core.
 * Must not be called by: core, kernels, dist, io, layers.
 *
 * Losses and metrics. Losses follow Keras: the per-sample loss is the mean over outputs
 * (sum over classes for cross-entropies), and the batch loss is the mean over samples. The
 * cross-entropies take the logits of their softmax/sigmoid output layer (fused, stable), or, with
 * from_logits, the output of a linear output layer. */
#ifndef CONVOY_LOSS_H
#define CONVOY_LOSS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    CV_LOSS_MSE,
    CV_LOSS_MAE,
    CV_LOSS_HUBER,
    CV_LOSS_BINARY_CE,      /* needs a sigmoid output */
    CV_LOSS_CATEGORICAL_CE, /* needs a softmax output; one-hot (N,K) targets or labels */
    CV_LOSS_SPARSE_CE,      /* needs a softmax output; integer labels */
    CV_LOSS_COUNT
} cv_loss_kind;

/* compile's metrics= (Keras's names): metric i is bit 1 << i of cv_loss_config.metrics, named
 * cv_metric_name(i); the epoch line, the log's columns and eval list them in this order. How each
 * is computed: docs/model-file.md, "Losses and metrics". */
#define CV_METRIC_LIST(X)                                 \
    X(ACCURACY, accuracy)                                 \
    X(MAE, mae)                                           \
    X(MSE, mse)                                           \
    X(TOP_K, top_k_categorical_accuracy)                  \
    X(SPARSE_TOP_K, sparse_top_k_categorical_accuracy)    \
    X(PRECISION, precision)                               \
    X(RECALL, recall)                                     \
    X(F1, f1)                                             \
    X(AUC, auc)

enum {
#define CV_METRIC_INDEX_(e, name) CV_METRIC_INDEX_##e,
    CV_METRIC_LIST(CV_METRIC_INDEX_)
#undef CV_METRIC_INDEX_
    CV_METRIC_KINDS
};
enum {
#define CV_METRIC_BIT_(e, name) CV_METRIC_##e = 1 << CV_METRIC_INDEX_##e,
    CV_METRIC_LIST(CV_METRIC_BIT_)
#undef CV_METRIC_BIT_
};
/* the metrics that count per class (TP, FP, FN) */
#define CV_METRIC_PER_CLASS (CV_METRIC_PRECISION | CV_METRIC_RECALL | CV_METRIC_F1)
/* top_k_categorical_accuracy and its sparse spelling: one count, Keras's k = 5 */
#define CV_METRIC_TOP_KS (CV_METRIC_TOP_K | CV_METRIC_SPARSE_TOP_K)
#define CV_TOP_K 5
/* precision, recall and f1 count each of at most this many classes (a model with more outputs is
 * a parse error); auc's histogram has this many equal bins of the predicted probability */
#define CV_METRIC_MAX_CLASSES 1024
#define CV_AUC_BINS 1000

/** "accuracy", "mae", ..., "auc": metric i's name (i < CV_METRIC_KINDS), else "?". */
const char *cv_metric_name(int i);

typedef struct {
    cv_loss_kind kind;
    float huber_delta; /* default 1.0 */
    unsigned metrics;  /* CV_METRIC_* bits */
    bool from_logits;  /* cross-entropies: the output layer is linear and gives the logits; the
                          loss applies the softmax / sigmoid itself (Keras's from_logits=True) */
} cv_loss_config;

const char *cv_loss_name(cv_loss_kind k);

/* Targets come either as integer labels (B) or as floats (B, K). With labels, a K-wide output
 * sees one-hot targets, a 1-wide output (binary / regression) sees the label's value. */

/** Sum over the B samples of the per-sample loss. `out` is the network output (probabilities
 *  for the cross-entropies), `logits` the pre-activation of the output layer (used by the
 *  cross-entropies for a stable log-softmax / log-sigmoid). */
double cv_loss_sum(const cv_loss_config *cfg, const float *out, const float *logits,
                   const int32_t *labels, const float *targets, int B, int K);

/** d(sum of per-sample losses / norm) written to d (B, K): with respect to the logits for the
 *  cross-entropies (p - y, fused), with respect to `out` otherwise. */
void cv_loss_grad(const cv_loss_config *cfg, const float *out, const int32_t *labels,
                  const float *targets, int B, int K, double norm, float *d);

/** The output as probabilities: out itself, or with from_logits its softmax (K > 1) or sigmoid
 *  (K == 1), written to p (B, K). */
void cv_loss_probabilities(const cv_loss_config *cfg, const float *out, int B, int K, float *p);
/** The binary decision threshold on an output: 0.5 on a probability, 0 on a logit. */
static inline float cv_loss_threshold(const cv_loss_config *cfg) { return cfg->from_logits ? 0.0f : 0.5f; }

/** The same with sample weights w (B; NULL: all 1): sum over samples of w_i * loss_i, and its
 *  gradient w_i * d loss_i / norm (Keras's weighted sum_over_batch_size when norm is the batch). */
double cv_loss_sum_w(const cv_loss_config *cfg, const float *out, const float *logits, const int32_t *labels,
                     const float *targets, const float *w, int B, int K);
void cv_loss_grad_w(const cv_loss_config *cfg, const float *out, const int32_t *labels, const float *targets,
                    const float *w, int B, int K, double norm, float *d);

/** True when the loss takes the output layer's logits (cross-entropy after softmax/sigmoid). */
static inline int cv_loss_fused(cv_loss_kind k)
{
    return k == CV_LOSS_BINARY_CE || k == CV_LOSS_CATEGORICAL_CE || k == CV_LOSS_SPARSE_CE;
}
#endif
