/* Loss and metrics of the network's last forward pass (model/net-impl.h). */
#include <math.h>
#include <stddef.h>

#include "model/net-impl.h"

static bool all_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}


int cv_net_first_nonfinite(const cv_net *net)
{
    for (int i = 1; i < net->n; i++) {
        const cv_param_view *v = &net->views[i];
        const float *out = cv_net_layer_output(net, i); /* a transient one shows in the next layer */
        if (!all_finite(net->params + v->kernel_off, v->kernel_n + v->bias_n) ||
            (out && !all_finite(out, (int64_t)net->batch * net->layers[i].out_size)))
            return i;
    }
    return 0;
}


double cv_net_loss(cv_net *net, const int32_t *labels, const float *targets, int B)
{
    return cv_net_loss_w(net, labels, targets, NULL, B);
}

double cv_net_loss_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B)
{
    return cv_loss_sum_w(&net->spec.loss, net->layers[net->n - 1].out, net->fused ? net->logits : NULL, labels,
                         targets, w, B, cv_net_outputs(net));
}


static int argmax(const float *v, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

static int spec_outputs(const cv_model_spec *spec) { return (int)cv_shape_size(spec->layers[spec->n_layers - 1].out); }

int cv_metrics_classes(const cv_model_spec *spec)
{
    const int K = spec_outputs(spec);
    return (spec->loss.metrics & CV_METRIC_PER_CLASS) && K <= CV_METRIC_MAX_CLASSES ? K : 0;
}

int cv_metrics_bins(const cv_model_spec *spec)
{
    return (spec->loss.metrics & CV_METRIC_AUC) && spec_outputs(spec) == 1 ? CV_AUC_BINS : 0;
}

/* the label's class is in the top k when fewer than k outputs are strictly larger than its own
 * (ties at the boundary count in, as tf.math.in_top_k); a non-finite output never is */
static bool in_top_k(const float *o, int K, int truth)
{
    if (!isfinite(o[truth])) return false;
    int above = 0;
    for (int k = 0; k < K; k++) above += o[k] > o[truth];
    return above < CV_TOP_K;
}

static int auc_bin(float p)
{
    const double x = (double)p * CV_AUC_BINS;
    return !(x > 0) ? 0 : x >= CV_AUC_BINS - 1 ? CV_AUC_BINS - 1 : (int)x;
}

void cv_net_metrics(cv_net *net, const int32_t *labels, const float *targets, int B, cv_metrics *m)
{
    cv_net_metrics_w(net, labels, targets, NULL, B, m);
}

void cv_net_metrics_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B, cv_metrics *m)
{
    const int K = cv_net_outputs(net);
    const float *out = net->layers[net->n - 1].out;
    const cv_loss_config *cfg = &net->spec.loss;
    const float cut = cv_loss_threshold(cfg);
    const bool top_k = (cfg->metrics & CV_METRIC_TOP_KS) && K > 1;
    const bool per_class = cv_metrics_classes(&net->spec) > 0, auc = cv_metrics_bins(&net->spec) > 0;
    m->loss += cv_net_loss_w(net, labels, targets, w, B);
    for (int n = 0; n < B; n++) {
        const float *o = out + (size_t)n * K;
        /* the true class and the predicted one (a binary model: 1 positive, 0 negative) */
        int truth, pred;
        if (K > 1) {
            truth = labels ? labels[n] : argmax(targets + (size_t)n * K, K);
            pred = argmax(o, K);
            if (top_k && truth >= 0 && truth < K) m->top_k += in_top_k(o, K, truth);
        } else {
            truth = (labels ? (float)labels[n] : targets[n]) > 0.5f;
            pred = o[0] > cut;
        }
        m->correct += pred == truth;
        if (per_class && K > 1 && truth >= 0 && truth < K) {
            if (pred == truth) m->tp[truth]++;
            else m->fp[pred]++, m->fn[truth]++;
        } else if (per_class && K == 1) {
            m->tp[0] += pred && truth, m->fp[0] += pred && !truth, m->fn[0] += !pred && truth;
        }
        if (auc) {
            float p;
            cv_loss_probabilities(cfg, o, 1, 1, &p);
            (truth ? m->pos : m->neg)[auc_bin(p)]++;
        }
        for (int k = 0; k < K; k++) {
            const double y = labels ? (K == 1 ? labels[n] : (labels[n] == k)) : targets[(size_t)n * K + k];
            const double e = o[k] - y;
            m->abs_err += fabs(e);
            m->sq_err += e * e;
        }
    }
    m->count += B;
    m->values += (int64_t)B * K;
}

/* The runs of counts spec's metrics keep, in cv_metrics_pack's order: each an offset into
 * cv_metrics and a length. Returns their number. */
static int count_runs(const cv_model_spec *spec, size_t off[6], int len[6])
{
    const int C = cv_metrics_classes(spec), NB = cv_metrics_bins(spec);
    int n = 0;
    if (spec->loss.metrics & CV_METRIC_TOP_KS) off[n] = offsetof(cv_metrics, top_k), len[n++] = 1;
    if (C) {
        off[n] = offsetof(cv_metrics, tp), len[n++] = C;
        off[n] = offsetof(cv_metrics, fp), len[n++] = C;
        off[n] = offsetof(cv_metrics, fn), len[n++] = C;
    }
    if (NB) {
        off[n] = offsetof(cv_metrics, pos), len[n++] = NB;
        off[n] = offsetof(cv_metrics, neg), len[n++] = NB;
    }
    return n;
}

int64_t cv_metrics_counts(const cv_model_spec *spec)
{
    size_t off[6];
    int len[6];
    int64_t total = 0;
    for (int r = 0, n = count_runs(spec, off, len); r < n; r++) total += len[r];
    return total;
}

void cv_metrics_pack(const cv_model_spec *spec, const cv_metrics *m, double *v)
{
    v[0] = m->loss, v[1] = m->correct, v[2] = m->abs_err, v[3] = m->sq_err;
    v[4] = (double)m->count, v[5] = (double)m->values;
    size_t off[6];
    int len[6];
    v += CV_METRIC_SIX;
    for (int r = 0, n = count_runs(spec, off, len); r < n; r++) {
        const int64_t *c = (const int64_t *)((const char *)m + off[r]);
        for (int i = 0; i < len[r]; i++) *v++ = (double)c[i];
    }
}

void cv_metrics_add_six(const double *six, cv_metrics *m)
{
    m->loss += six[0], m->correct += six[1], m->abs_err += six[2], m->sq_err += six[3];
    m->count += (int64_t)six[4], m->values += (int64_t)six[5];
}

void cv_metrics_add_counts(const cv_model_spec *spec, const double *counts, cv_metrics *m)
{
    size_t off[6];
    int len[6];
    for (int r = 0, n = count_runs(spec, off, len); r < n; r++) {
        int64_t *c = (int64_t *)((char *)m + off[r]);
        for (int i = 0; i < len[r]; i++) c[i] += (int64_t)*counts++;
    }
}
