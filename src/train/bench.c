/* convoy bench: the training step alone (no data loading), timed per layer, against the
 * measured peak. Inputs are uniform random, targets random labels or values. */
#include "convoy/bench.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/kernels.h"
#include "convoy/optim.h"
#include "convoy/rng.h"

static double wall(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}

int cv_bench(const cv_model_spec *spec, int batch, int steps, cv_bench_report *r, cv_err *err)
{
    memset(r, 0, sizeof *r);
    r->batch = batch;
    r->steps = steps;
#ifdef _OPENMP
    r->threads = omp_get_max_threads();
#else
    r->threads = 1;
#endif
    cv_net *net = cv_net_create(spec, batch, spec->fit.seed, err);
    if (!net) return -1;
    const int64_t in = cv_shape_size(spec->layers[0].shape);
    const int K = cv_net_outputs(net);
    cv_optim opt;
    float *x = cv_malloc(sizeof(float) * (size_t)(batch * in), "bench inputs", err);
    float *t = cv_malloc(sizeof(float) * (size_t)(batch * K), "bench targets", err);
    int32_t *y = cv_malloc(sizeof(int32_t) * (size_t)batch, "bench labels", err);
    int64_t *ids = cv_malloc(sizeof(int64_t) * (size_t)batch, "bench ids", err);
    int rc = -1;
    if (!x || !t || !y || !ids || cv_optim_init(&opt, &spec->optim, cv_net_param_count(net), err)) goto done;
    cv_rng g = {spec->fit.seed};
    for (int64_t i = 0; i < batch * in; i++) x[i] = cv_unit(cv_rng_next(&g));
    for (int64_t i = 0; i < batch * K; i++) t[i] = cv_unit(cv_rng_next(&g));
    for (int i = 0; i < batch; i++) {
        y[i] = (int32_t)cv_rng_below(&g, K > 1 ? (uint64_t)K : 2);
        ids[i] = i;
    }
    /* regression losses take float targets; the rest take labels */
    const bool labels = spec->loss.kind == CV_LOSS_SPARSE_CE || spec->loss.kind == CV_LOSS_CATEGORICAL_CE ||
                        spec->loss.kind == CV_LOSS_BINARY_CE;
    double fwd[CV_MAX_LAYERS] = {0}, bwd[CV_MAX_LAYERS] = {0}, topt = 0.0, t0 = 0.0;
    for (int s = -3; s < steps; s++) {
        if (s == 0) { /* warm-up done: start the clocks */
            cv_net_profile(net, fwd, bwd);
            t0 = wall();
        }
        cv_net_zero_grad(net);
        cv_net_forward(net, x, batch, true, spec->fit.seed, s, ids);
        cv_net_backward(net, labels ? y : NULL, labels ? NULL : t, batch, batch);
        const double o0 = wall();
        cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net), cv_net_trainable(net));
        if (s >= 0) topt += wall() - o0;
    }
    const double total = wall() - t0;
    r->step_ms = 1e3 * total / steps;
    r->images_per_s = (double)batch * steps / total;
    r->optim_ms = 1e3 * topt / steps;
    for (int i = 1; i < cv_net_layers(net); i++) {
        r->fwd_ms[i] = 1e3 * fwd[i] / steps;
        r->bwd_ms[i] = 1e3 * bwd[i] / steps;
        cv_net_layer_flops(net, i, &r->fwd_flops[i], &r->bwd_flops[i]);
        r->flops_per_image += r->fwd_flops[i] + r->bwd_flops[i];
    }
    r->peak_flops = cv_peak_flops(0.5);
    cv_optim_free(&opt);
    rc = 0;
done:
    free(x);
    free(t);
    free(y);
    free(ids);
    cv_net_free(net);
    return rc;
}
