/* The step's collectives the fit loop hands the network (train/fit-impl.h): the gradient
 * buckets started from backward's notifications, and batchnorm's statistics summed over the
 * ranks (a double allreduce, or with --reproducible leaf by leaf in the step's leaf order). */
#include <limits.h>
#include <string.h>

#include "train/fit-impl.h"

void fit_grads_ready(void *arg, int64_t off)
{
    hook_ctx *h = arg;
    if (h->armed && !h->failed && cv_grad_sync_ready(h->sync, off, &h->err)) h->failed = 1;
}


int fit_batch_sum(void *arg, double *v, int64_t n)
{
    batch_sum_ctx *c = arg;
    if (n > INT_MAX) return c->failed = cv_errf(&c->err, "batch statistics of %lld values: too many", (long long)n), -1;
    if (cv_dist_sum_f64(c->d, v, (int)n, c->failed ? NULL : &c->err)) c->failed = 1;
    return c->failed ? -1 : 0;
}


int fit_leaf_sum(void *arg, const double *sums, int first, int n, int64_t len, double *out)
{
    leaf_sum_ctx *c = arg;
    if (c->L * len > c->cap || c->L * len > INT_MAX)
        return c->failed = cv_errf(&c->err, "batch statistics of %lld leaves: too many", (long long)c->L), -1;
    memset(c->slots, 0, sizeof(double) * (size_t)(c->L * len));
    if (n) memcpy(c->slots + (size_t)first * len, sums, sizeof(double) * (size_t)(n * len));
    if (cv_dist_sum_f64(c->d, c->slots, (int)(c->L * len), c->failed ? NULL : &c->err)) c->failed = 1;
    for (int64_t v = 0; v < len; v++) {
        out[v] = 0.0;
        for (int64_t j = 0; j < c->L; j++) out[v] += c->slots[j * len + v];
    }
    return c->failed ? -1 : 0;
}

int fit_batch_layers(const cv_model_spec *spec)
{
    int n = 0;
    for (int i = 1; i < spec->n_layers; i++)
        n += cv_layer_batch_stats(&spec->layers[i]);
    return n;
}
