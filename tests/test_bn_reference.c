/* The second outside reference: tests/fixtures/bn-gap-reference.h5, a float64 PyTorch
 * computation (formulas in its `notes` attribute) of conv2d with kernel (3,2), stride (1,2) and
 * padding (1,0) -> batchnorm in training mode -> relu -> global average pooling -> dense 4
 * (logits) -> sparse categorical cross-entropy on logits weighted per sample by class_weight[y]
 * (Keras's sum_over_batch_size). Every tensor: the activations, the batch statistics, the
 * weighted and unweighted loss, every gradient, one Adam step with the moving statistics, and
 * inference after it. Tolerances as the fixture's README: 1e-5 relative (plus 1e-6). */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "convoy/optim.h"
#include "fixture.h"

#define FIXTURE CONVOY_FIXTURES "/bn-gap-reference.h5"
#define RTOL 1e-5
#define ATOL 1e-6

enum { NB = 6, XS = 9 * 7 * 3, K = 4, CH = 5 };

/* the fixture's model in convoy's syntax (its `model` attribute proposed the same keys) */
#define MODEL(momentum)                                                                          \
    "input shape=9,7,3 normalize=none\n"                                                         \
    "conv2d filters=5 kernel=3,2 stride=1,2 padding=1,0\n"                                       \
    "batchnorm momentum=" momentum " epsilon=0.001\n"                                            \
    "activation relu\n"                                                                          \
    "globalavgpool2d\n"                                                                          \
    "dense units=4\n"                                                                            \
    "compile optimizer=adam learning_rate=0.01 epsilon=1e-7 loss=sparse_categorical_crossentropy " \
    "from_logits=true\n"                                                                         \
    "fit batch_size=6 class_weight=1,2,0.5,1.5\n"

static hid_t file = H5I_INVALID_HID;
static float x[NB * XS];
static int32_t y[NB];
static float w[NB]; /* class_weight[y] */
static const int64_t ids[NB] = {0, 1, 2, 3, 4, 5};

/* a whole dataset of the fixture as doubles; n is the number of values expected */
static void read_f64(const char *name, double *out, size_t n) { fixture_read_f64(file, FIXTURE, name, out, n); }

static void open_fixture(void)
{
    file = H5Fopen(FIXTURE, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open %s", FIXTURE);
    double buf[NB * XS], cw[K];
    read_f64("/x", buf, NB * XS);
    for (int i = 0; i < NB * XS; i++) x[i] = (float)buf[i]; /* stored as float32: exact */
    read_f64("/y", buf, NB);
    read_f64("/class_weight", cw, K);
    for (int i = 0; i < NB; i++) {
        y[i] = (int32_t)buf[i];
        w[i] = (float)cw[y[i]];
    }
}

static void close_fixture(void)
{
    if (file >= 0) H5Fclose(file);
}

TestSuite(bn_reference, .init = open_fixture, .fini = close_fixture);

/* The fixture's prefix of each layer with parameters (conv, bn, dense) and the names of its
 * tensors: kernel, bias, then the state's parts. */
static const char *prefix(const cv_model_spec *s, int i)
{
    return s->layers[i].kind == CV_LAYER_CONV2D ? "conv" : s->layers[i].kind == CV_LAYER_BATCHNORM ? "bn" : "dense";
}
static const char *tensor(const cv_model_spec *s, int i, int which)
{
    const bool bn = s->layers[i].kind == CV_LAYER_BATCHNORM;
    static const char *const plain[] = {"kernel", "bias"}, *const bn_names[] = {"gamma", "beta", "moving_mean",
                                                                                  "moving_variance"};
    return bn ? bn_names[which] : plain[which];
}

/* Every tensor of group as doubles laid out as the net's parameters (the state included when
 * with_state), or as floats into the net's own parameters. */
static void read_group(const cv_net *net, const char *group, double *out, bool with_state)
{
    const cv_model_spec *s = cv_net_spec(net);
    for (int i = 1; i < s->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        const int64_t off[4] = {v.kernel_off, v.bias_off, v.state_off, v.state_off + v.state_n / 2};
        const int64_t n[4] = {v.kernel_n, v.bias_n, v.state_n / 2, v.state_n / 2};
        for (int t = 0; t < (with_state ? 4 : 2); t++) {
            if (!n[t]) continue;
            char name[128];
            snprintf(name, sizeof name, "%s/%s_%s", group, prefix(s, i), tensor(s, i, t));
            read_f64(name, out + off[t], (size_t)n[t]);
        }
    }
}

static cv_net *make_net(const char *text, cv_model_spec *spec)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(spec, text, "bn-reference.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, NB, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const int64_t n = cv_net_param_count(net);
    double *p = calloc((size_t)n, sizeof(double));
    read_group(net, "/weights", p, true);
    for (int64_t j = 0; j < n; j++) cv_net_params(net)[j] = (float)p[j];
    free(p);
    return net;
}

static void expect_close(const float *got, const double *want, int64_t n, const char *what)
{
    for (int64_t j = 0; j < n; j++)
        cr_expect_leq(fabs(got[j] - want[j]), RTOL * fabs(want[j]) + ATOL, "%s[%ld] = %.9g, reference %.9g", what,
                      (long)j, got[j], want[j]);
}

static void expect_dataset(const float *got, const char *name, int64_t n)
{
    double *want = malloc(sizeof(double) * (size_t)n);
    read_f64(name, want, (size_t)n);
    expect_close(got, want, n, name);
    free(want);
}

/* CONVOY_FUSE=0: the batchnorm's own output exists (by default the relu after it is applied
 * by the batchnorm itself and its output is the relu's; the next test checks that path) */
Test(bn_reference, forward_activations_and_loss)
{
    setenv("CONVOY_FUSE", "0", 1);
    cv_model_spec spec;
    cv_net *net = make_net(MODEL("0.99"), &spec);
    cr_assert_eq(spec.layers[1].out.d[0], 9);
    cr_assert_eq(spec.layers[1].out.d[1], 3, "kernel (3,2) stride (1,2) padding (1,0): 9x7 -> 9x3");
    const float *logits = cv_net_forward(net, x, NB, true, 0, 0, ids);
    expect_dataset(cv_net_layer_output(net, 1), "/activations/conv", NB * 9 * 3 * CH);
    expect_dataset(cv_net_layer_output(net, 2), "/activations/bn", NB * 9 * 3 * CH);
    expect_dataset(cv_net_layer_output(net, 3), "/activations/relu", NB * 9 * 3 * CH);
    expect_dataset(cv_net_layer_output(net, 4), "/activations/gap", NB * CH);
    expect_dataset(logits, "/activations/logits", NB * K);
    double want, want_u;
    read_f64("/loss", &want, 1);
    read_f64("/loss_unweighted", &want_u, 1);
    const double loss = cv_net_loss_w(net, y, NULL, w, NB) / NB, loss_u = cv_net_loss(net, y, NULL, NB) / NB;
    cr_expect_leq(fabs(loss - want), RTOL * want, "weighted loss %.9g, reference %.9g", loss, want);
    cr_expect_leq(fabs(loss_u - want_u), RTOL * want_u, "unweighted loss %.9g, reference %.9g", loss_u, want_u);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* The batchnorm applying the relu after it (the default): the relu's output, everything after
 * it and the gradients (the next test) as the reference's. */
Test(bn_reference, fused_batchnorm_relu)
{
    cv_model_spec spec;
    cv_net *net = make_net(MODEL("0.99"), &spec);
    const float *logits = cv_net_forward(net, x, NB, true, 0, 0, ids);
    cr_assert_eq(cv_net_layer_output(net, 2), cv_net_layer_output(net, 3), "the relu's output is the batchnorm's");
    expect_dataset(cv_net_layer_output(net, 3), "/activations/relu", NB * 9 * 3 * CH);
    expect_dataset(cv_net_layer_output(net, 4), "/activations/gap", NB * CH);
    expect_dataset(logits, "/activations/logits", NB * K);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* With momentum 0 the moving statistics after one training pass are the batch's own. */
Test(bn_reference, batch_statistics)
{
    cv_model_spec spec;
    cv_net *net = make_net(MODEL("0"), &spec);
    cv_net_forward(net, x, NB, true, 0, 0, ids);
    const cv_param_view v = cv_net_param_view(net, 2);
    cr_assert_eq(v.state_n, 2 * CH);
    expect_dataset(cv_net_params(net) + v.state_off, "/activations/batch_mean", CH);
    expect_dataset(cv_net_params(net) + v.state_off + CH, "/activations/batch_var", CH);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(bn_reference, gradients_adam_step_and_inference)
{
    cv_model_spec spec;
    cv_net *net = make_net(MODEL("0.99"), &spec);
    const int64_t n = cv_net_param_count(net), ng = cv_net_grad_count(net);
    cv_net_forward(net, x, NB, true, 0, 0, ids);
    cv_net_zero_grad(net);
    cv_net_backward_w(net, y, NULL, w, NB, NB);
    double *want = calloc((size_t)n, sizeof(double));
    read_group(net, "/gradients", want, false);
    cr_assert_eq(ng, n - 2 * CH, "every parameter but the moving statistics learns");
    for (int i = 1; i < spec.n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        char what[64];
        snprintf(what, sizeof what, "d %s_%s", prefix(&spec, i), tensor(&spec, i, 0));
        expect_close(cv_net_grads(net) + v.kernel_off, want + v.kernel_off, v.kernel_n, what);
        snprintf(what, sizeof what, "d %s_%s", prefix(&spec, i), tensor(&spec, i, 1));
        expect_close(cv_net_grads(net) + v.bias_off, want + v.bias_off, v.bias_n, what);
    }

    cv_optim o;
    cv_err err = {{0}};
    cr_assert_eq(cv_optim_init(&o, &spec.optim, ng, &err), 0, "%s", err.msg);
    cv_optim_step(&o, cv_net_params(net), cv_net_grads(net));
    cv_optim_free(&o);
    read_group(net, "/after_one_step/adam", want, true); /* the moving statistics after the pass too */
    expect_close(cv_net_params(net), want, n, "after one Adam step");

    const float *logits = cv_net_forward(net, x, NB, false, 0, 0, ids);
    expect_dataset(logits, "/inference_after_step/logits", NB * K);
    float probs[NB * K];
    for (int b = 0; b < NB; b++) {
        double m = logits[b * K], s = 0.0;
        for (int k = 1; k < K; k++) m = fmax(m, logits[b * K + k]);
        for (int k = 0; k < K; k++) s += exp(logits[b * K + k] - m);
        for (int k = 0; k < K; k++) probs[b * K + k] = (float)(exp(logits[b * K + k] - m) / s);
    }
    expect_dataset(probs, "/inference_after_step/probs", NB * K);
    free(want);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* A frozen batchnorm (trainable=false) runs as in inference, in training too, and keeps its
 * statistics, as Keras fine-tunes. */
Test(bn_reference, batchnorm_is_frozen_in_inference_mode)
{
    setenv("CONVOY_FUSE", "0", 1); /* (layer 2's own output) */
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec,
                                "input shape=9,7,3 normalize=none\nconv2d filters=5 kernel=3,2 stride=1,2 padding=1,0\n"
                                "batchnorm trainable=false\nactivation relu\nglobalavgpool2d\ndense units=4\n"
                                "compile optimizer=adam loss=sparse_categorical_crossentropy from_logits=true\n",
                                "frozen.model", &err),
                 0, "%s", err.msg);
    cv_net *net = cv_net_create(&spec, NB, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const cv_param_view v = cv_net_param_view(net, 2);
    float *p = cv_net_params(net);
    for (int c = 0; c < CH; c++) p[v.state_off + c] = 0.5f, p[v.state_off + CH + c] = 4.0f;
    cv_net_forward(net, x, NB, true, 0, 0, ids);
    const float *conv = cv_net_layer_output(net, 1), *bn = cv_net_layer_output(net, 2);
    for (int j = 0; j < NB * 9 * 3 * CH; j++)
        cr_expect_leq(fabsf(bn[j] - (conv[j] - 0.5f) / sqrtf(4.0f + 1e-3f)), 1e-6f, "a frozen batchnorm uses its moving statistics");
    for (int c = 0; c < CH; c++)
        cr_expect(p[v.state_off + c] == 0.5f && p[v.state_off + CH + c] == 4.0f, "a frozen batchnorm's statistics stay");
    cr_expect_eq(cv_net_batch_layers(net), 0);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* Folding each batchnorm into the linear conv2d or dense before it (eval and predict): the same
 * inference outputs to rounding, with the checkpoint's parameters untouched; a batchnorm after
 * a ReLU stays as it is. */
Test(bn_reference, folding_keeps_inference_outputs)
{
    static const char *const models[] = {
        MODEL("0.99"),
        "input shape=9,7,3 normalize=none\nconv2d filters=5 kernel=3,2 stride=1,2 padding=1,0 use_bias=false\n"
        "batchnorm\nactivation relu\nconv2d filters=4 kernel=3 padding=same activation=relu\nbatchnorm center=false\n"
        "flatten\ndense units=6\nbatchnorm scale=false\ndense units=4\n"
        "compile optimizer=adam loss=sparse_categorical_crossentropy from_logits=true\n",
    };
    for (int m = 0; m < 2; m++) {
        cv_model_spec spec;
        cv_err err = {{0}};
        cr_assert_eq(cv_model_parse(&spec, models[m], "fold.model", &err), 0, "%s", err.msg);
        cv_net *a = cv_net_create(&spec, NB, 7, &err), *b = cv_net_create(&spec, NB, 7, &err);
        cr_assert(a && b, "%s", err.msg);
        /* statistics and affine parameters away from 0 and 1, the same in both */
        const int64_t n = cv_net_param_count(a);
        for (int i = 1; i < spec.n_layers; i++) {
            const cv_param_view v = cv_net_param_view(a, i);
            if (spec.layers[i].kind != CV_LAYER_BATCHNORM) continue;
            for (int64_t j = 0; j < v.kernel_n; j++) cv_net_params(a)[v.kernel_off + j] = 0.5f + 0.1f * (float)j;
            for (int64_t j = 0; j < v.bias_n; j++) cv_net_params(a)[v.bias_off + j] = 0.2f - 0.05f * (float)j;
            for (int64_t j = 0; j < v.state_n / 2; j++) {
                cv_net_params(a)[v.state_off + j] = 0.3f * (float)j - 0.4f;
                cv_net_params(a)[v.state_off + v.state_n / 2 + j] = 0.5f + 0.25f * (float)j;
            }
        }
        memcpy(cv_net_params(b), cv_net_params(a), sizeof(float) * (size_t)n);
        const int folds = cv_net_fold_batchnorm(b, &err);
        cr_assert_eq(folds, m == 0 ? 1 : 2, "model %d: %d batchnorms folded (%s)", m, folds, err.msg);
        cr_assert_eq(memcmp(cv_net_params(a), cv_net_params(b), sizeof(float) * (size_t)n), 0, "the parameters stay");
        const float *ya = cv_net_forward(a, x, NB, false, 0, 0, ids);
        float want[NB * K];
        memcpy(want, ya, sizeof want);
        const float *yb = cv_net_forward(b, x, NB, false, 0, 0, ids);
        for (int j = 0; j < NB * K; j++)
            cr_expect_leq(fabsf(yb[j] - want[j]), 1e-5f * (1.0f + fabsf(want[j])), "model %d logit %d: folded %.9g, not %.9g", m,
                          j, yb[j], want[j]);
        cv_net_free(a);
        cv_net_free(b);
        cv_model_spec_free(&spec);
    }
}
