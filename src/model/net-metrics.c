/* Loss and metrics of the network's last forward pass (model/net-impl.h). */
#include <math.h>

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


void cv_net_metrics(cv_net *net, const int32_t *labels, const float *targets, int B, cv_metrics *m)
{
    cv_net_metrics_w(net, labels, targets, NULL, B, m);
}

void cv_net_metrics_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B, cv_metrics *m)
{
    const int K = cv_net_outputs(net);
    const float *out = net->layers[net->n - 1].out;
    const float cut = cv_loss_threshold(&net->spec.loss);
    m->loss += cv_net_loss_w(net, labels, targets, w, B);
    for (int n = 0; n < B; n++) {
        const float *o = out + (size_t)n * K;
        if (K > 1) {
            const int truth = labels ? labels[n] : argmax(targets + (size_t)n * K, K);
            m->correct += argmax(o, K) == truth;
        } else {
            const float y = labels ? (float)labels[n] : targets[n];
            m->correct += (o[0] > cut) == (y > 0.5f);
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
