/* A batchnorm, or a residual block's end, that applies the ReLU-family activation after it
 * (cv_layer.relu_next) against the same network run layer by layer (CONVOY_FUSE=0): the logits,
 * the loss, every gradient and the moving statistics are the same values, for a ReLU before a
 * conv, a leaky ReLU, a ReLU before a max pool (whose derivative the pool applies too) and a
 * frozen batchnorm; channel counts that take every block of the per-sample sums (32, 8 and
 * single channels); identity, zero-padded (stride 2) and projection shortcuts (the last not
 * fused); on 1 and 3 threads. And a batchnorm that leaves its normalisation to the layer after
 * it (cv_layer.map_next: a Winograd conv2d's copies of each sample, with a ReLU, a leaky one or
 * none; a max, average or min pool's; an identity end's sum), an end whose gradient pass takes the next block's residual sum
 * (sum_next), and those batchnorms' outputs written after all where the conv finds Winograd
 * gone (CONVOY_WINOGRAD=0 once the network is built). */
#define _GNU_SOURCE /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/model.h"
#include "convoy/rng.h"

enum { B = 6 };

static const char *const models[] = {
    "input shape=6,5,3\n"
    "conv2d filters=45 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation relu\n"
    "conv2d filters=16 kernel=1 use_bias=false\nbatchnorm\nactivation leaky_relu alpha=0.1\n"
    "conv2d filters=37 kernel=1 use_bias=false\nbatchnorm\nactivation relu\nmaxpool2d pool=2\n"
    "conv2d filters=8 kernel=1\nbatchnorm trainable=false\nactivation relu\nglobalavgpool2d\n"
    "dense units=4\ncompile loss=sparse_categorical_crossentropy from_logits=true\n",
    "input shape=40\ndense units=33 use_bias=false\nbatchnorm\nactivation relu\n"
    "dense units=3\ncompile loss=sparse_categorical_crossentropy from_logits=true\n",
    "input shape=8,8,4\nconv2d filters=8 kernel=3 padding=same\n"
    "residual\nconv2d filters=8 kernel=3 padding=same\nbatchnorm\nend\nactivation relu\n"
    "residual\nconv2d filters=16 kernel=3 stride=2 padding=same\nend\nactivation leaky_relu alpha=0.2\n"
    "residual shortcut=projection\nconv2d filters=12 kernel=1\nend\nactivation relu\n"
    "residual\nconv2d filters=12 kernel=1\nend\nactivation relu\nmaxpool2d pool=2\n"
    "globalavgpool2d\ndense units=4\ncompile loss=sparse_categorical_crossentropy from_logits=true\n",
    "input shape=8,8,16\n"
    "conv2d filters=16 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation relu\n"
    "conv2d filters=16 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation leaky_relu alpha=0.1\n"
    "residual\nconv2d filters=16 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation leaky_relu alpha=0.3\n"
    "conv2d filters=16 kernel=3 padding=same use_bias=false\nbatchnorm\nend\nactivation relu\n"
    "residual\nconv2d filters=16 kernel=3 padding=same use_bias=false\nbatchnorm\nend\nactivation leaky_relu alpha=0.2\n"
    "conv2d filters=16 kernel=3 padding=same\nbatchnorm\nconv2d filters=16 kernel=3 use_bias=false\n"
    "batchnorm\navgpool2d pool=2\nbatchnorm\nactivation relu\nminpool2d pool=3\n"
    "globalavgpool2d\ndense units=4\ncompile loss=sparse_categorical_crossentropy from_logits=true\n",
};
/* the layers whose output a training forward pass leaves unwritten (cv_net_layer_output NULL),
 * fused: the batchnorms before a Winograd conv, a pool or an identity end, and the activations
 * they apply; with Winograd gone (wino 1 below), those before a pool or an end only */
static const int unwritten[] = {2, 0, 1, 10}, unwritten_late[] = {2, 0, 1, 5};
enum { MODELS = sizeof models / sizeof models[0] };

/* whether layer i is an activation the layer before runs (a batchnorm, or an end without a
 * projection) */
static bool fusable(const cv_model_spec *spec, int i)
{
    const cv_layer_spec *a = &spec->layers[i], *p = &spec->layers[i - 1];
    return a->kind == CV_LAYER_ACTIVATION &&
           (p->kind == CV_LAYER_BATCHNORM || (p->kind == CV_LAYER_END && !p->projection));
}

typedef struct {
    float *logits, *grads, *params;
    double loss;
    int64_t k, ng, np;
} result;

/* One training step's forward and backward of model m, fused or layer by layer; fused also
 * checks that the activations after a batchnorm were fused (their output is the batchnorm's)
 * and which outputs the forward pass left unwritten. wino: 1 turns Winograd off once the
 * network is built (the plan then finds it gone), 2 before. */
static result step(int m, bool fused, int threads, int wino)
{
    if (wino == 2) setenv("CONVOY_WINOGRAD", "0", 1);
    if (fused) unsetenv("CONVOY_FUSE");
    else setenv("CONVOY_FUSE", "0", 1);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, models[m], "fused.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(&spec, B, 7, &err);
    cr_assert_not_null(net, "%s", err.msg);
    int seen = 0;
    for (int i = 2; i < spec.n_layers; i++)
        if (spec.layers[i].kind == CV_LAYER_ACTIVATION) {
            const bool same = cv_net_layer_output(net, i) == cv_net_layer_output(net, i - 1);
            cr_assert_eq(same, fused && fusable(&spec, i), "model %d layer %d: fused %d", m, i, fused);
            seen += same;
        }
    cr_assert(!fused || seen >= 1, "model %d: nothing fused", m);
    if (wino == 1) setenv("CONVOY_WINOGRAD", "0", 1);
    const int64_t n_in = cv_shape_size(spec.layers[0].out);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in));
    cv_rng r = {99};
    for (int64_t j = 0; j < B * n_in; j++) x[j] = (float)(2.0 * cv_unit(cv_rng_next(&r)) - 1.0);
    int32_t labels[B];
    result res = {.k = cv_net_outputs(net), .ng = cv_net_grad_count(net), .np = cv_net_param_count(net)};
    for (int b = 0; b < B; b++) labels[b] = b % (int)res.k;
    res.logits = malloc(sizeof(float) * (size_t)(B * res.k));
    res.grads = malloc(sizeof(float) * (size_t)res.ng);
    res.params = malloc(sizeof(float) * (size_t)res.np);
    cv_net_zero_grad(net);
    memcpy(res.logits, cv_net_forward(net, x, B, true, 1, 0, NULL), sizeof(float) * (size_t)(B * res.k));
    int none = 0;
    for (int i = 1; i < spec.n_layers; i++) none += !cv_net_layer_output(net, i);
    cr_assert_eq(none, !fused || wino == 2 ? 0 : wino ? unwritten_late[m] : unwritten[m], "model %d (fused %d, wino %d): %d outputs unwritten", m,
                 fused, wino, none);
    res.loss = cv_net_loss(net, labels, NULL, B);
    cv_net_backward(net, labels, NULL, B, B);
    memcpy(res.grads, cv_net_grads(net), sizeof(float) * (size_t)res.ng);
    memcpy(res.params, cv_net_params(net), sizeof(float) * (size_t)res.np); /* moving statistics included */
    free(x);
    cv_net_free(net);
    cv_model_spec_free(&spec);
    unsetenv("CONVOY_FUSE");
    unsetenv("CONVOY_WINOGRAD");
    return res;
}

/* equal as values (a zero's sign may differ: the fused ReLU gives leak * v, 0 * v for a ReLU) */
static void expect_same(const float *a, const float *b, int64_t n, const char *what, int m, int threads)
{
    int64_t bad = 0, first = -1;
    for (int64_t j = 0; j < n; j++)
        if (!(a[j] == b[j])) bad++, first = first < 0 ? j : first;
    cr_expect_eq(bad, 0, "model %d, %d threads: %ld of %ld %s differ, first [%ld] %.9g vs %.9g", m, threads,
                 (long)bad, (long)n, what, (long)first, first >= 0 ? a[first] : 0.0, first >= 0 ? b[first] : 0.0);
}

Test(bn_fused, relu_after_batchnorm_is_the_layer_by_layer_pass)
{
    static const int threads[] = {1, 3};
    for (int m = 0; m < MODELS; m++)
        for (int t = 0; t < 2; t++) {
            result f = step(m, true, threads[t], 0), u = step(m, false, threads[t], 0);
            expect_same(f.logits, u.logits, B * f.k, "logits", m, threads[t]);
            cr_expect_eq(f.loss, u.loss, "model %d: loss %.17g vs %.17g", m, f.loss, u.loss);
            expect_same(f.grads, u.grads, f.ng, "gradients", m, threads[t]);
            expect_same(f.params, u.params, f.np, "parameters and moving statistics", m, threads[t]);
            double norm = 0.0;
            for (int64_t j = 0; j < f.ng; j++) norm += fabs(f.grads[j]);
            cr_expect_gt(norm, 0.0, "model %d: no gradient at all", m);
            free(f.logits), free(f.grads), free(f.params), free(u.logits), free(u.grads), free(u.params);
        }
}

/* the fused convs finding Winograd gone: the batchnorms before them write their outputs after
 * all (cv_bn_write_output), and the step is the layer-by-layer one without Winograd */
Test(bn_fused, a_conv_without_its_winograd_path_has_the_batchnorm_write_its_output)
{
    const int m = MODELS - 1;
    result f = step(m, true, 2, 1), u = step(m, false, 2, 2);
    expect_same(f.logits, u.logits, B * f.k, "logits", m, 2);
    cr_expect_eq(f.loss, u.loss, "loss %.17g vs %.17g", f.loss, u.loss);
    expect_same(f.grads, u.grads, f.ng, "gradients", m, 2);
    expect_same(f.params, u.params, f.np, "parameters and moving statistics", m, 2);
    free(f.logits), free(f.grads), free(f.params), free(u.logits), free(u.grads), free(u.params);
}
