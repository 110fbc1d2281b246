/* Batchnorm folded into the layer before it, for inference: a conv2d or dense with a linear
 * activation followed by a batchnorm computes, per output channel f, a_f (W x + b - mean_f) +
 * beta_f with a_f = gamma_f / sqrt(moving_var_f + eps): the same as a conv2d or dense with
 * kernel a_f W and bias a_f (b - mean_f) + beta_f, and the batchnorm then passes its input on.
 * The folded kernel and bias are copies (the parameters, which checkpoints save, stay as they
 * are); the batchnorm's output becomes its input's memory, as a flatten's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/net-impl.h"

static bool foldable(const cv_net *net, int i)
{
    if (i < 2 || !(net->layers[i].kd->flags & CV_KIND_BATCH) || net->layers[i].folded) return false;
    const cv_layer *p = &net->layers[i - 1];
    return (p->kd->flags & CV_KIND_EPILOGUE) && cv_layer_act(p->spec) == CV_ACT_LINEAR && p->w &&
           !(i - 1 == net->n - 1 && net->fused);
}

int cv_net_fold_batchnorm(cv_net *net, cv_err *err)
{
    const char *env = getenv("CONVOY_FOLD"); /* CONVOY_FOLD=0: leave them (to measure what folding gains) */
    if (env && strcmp(env, "0") == 0) return 0;
    int64_t need = 0;
    for (int i = 2; i < net->n; i++)
        if (foldable(net, i)) need += net->views[i - 1].kernel_n + net->layers[i].spec->in.d[net->layers[i].spec->in.rank - 1]; /* kernel, bias */
    if (!need) return 0;
    float *buf = cv_malloc(sizeof(float) * (size_t)need, "folded weights", err);
    if (!buf) return -1;
    free(net->fold_buf);
    net->fold_buf = buf;
    int folded = 0;
    for (int i = 2; i < net->n; i++) {
        if (!foldable(net, i)) continue;
        cv_layer *p = &net->layers[i - 1], *bn = &net->layers[i];
        const cv_layer_spec *s = bn->spec;
        const int64_t F = s->in.d[s->in.rank - 1], kn = net->views[i - 1].kernel_n;
        float *w = buf, *b = buf + kn;
        buf += kn + F;
        for (int64_t f = 0; f < F; f++) {
            const double gamma = s->scale ? bn->w[f] : 1.0, beta = s->center ? bn->b[f] : 0.0;
            const double a = gamma / sqrt((double)bn->state[F + f] + (double)s->epsilon);
            b[f] = (float)(a * ((p->b ? (double)p->b[f] : 0.0) - (double)bn->state[f]) + beta);
            for (int64_t j = f; j < kn; j += F) w[j] = (float)(a * (double)p->w[j]);
        }
        p->w = w;
        p->b = b;
        bn->folded = true;
        bn->map_next = bn->map_live = false; /* (a folded batchnorm runs no forward pass) */
        for (int j = i + 1; j < net->n; j++)
            if (net->layers[j].in_bn == bn) net->layers[j].in_bn = NULL;
        if (bn->relu_next) { /* the activation after it takes its own passes again */
            bn->relu_next = false;
            net->layers[i + 1].fused_into_prev = false;
        }
        folded++;
    }
    /* the folded layers' outputs are their inputs: the buffers again */
    const int max_batch = net->max_batch;
    net->max_batch = 0;
    if (cv_net_reserve(net, max_batch, err)) return -1;
    return folded;
}
