/* The outside reference: tests/fixtures/small-cnn-reference.h5, a float64 PyTorch computation
 * of a small CNN (conv2d stride 2 'same' relu -> maxpool -> flatten -> dense tanh -> dense
 * softmax, sparse categorical cross-entropy). It pins NHWC layouts, Keras weight layouts,
 * channels-last flatten and TensorFlow's 'same' padding: every activation, the loss, every
 * gradient, one step of each optimizer and a 10-step Adam trajectory.
 * Tolerances (README of the fixture): |ours - ref| <= 1e-5 |ref| + 1e-6 for a single pass or
 * step, 1e-4 for the trajectory. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "convoy/optim.h"
#include "fixture.h"

#define FIXTURE CONVOY_FIXTURES "/small-cnn-reference.h5"
#define RTOL 1e-5
#define ATOL 1e-6

enum { NB = 4, XS = 8 * 8 * 2 };

#define HEAD "input shape=8,8,2\nconv2d filters=3 kernel=3 stride=2 padding=same activation=relu\n"
static const char *const full_model = HEAD
    "maxpool2d pool=2\nflatten\ndense units=5 activation=tanh\ndense units=3 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy optimizer=sgd\n";

static hid_t file = H5I_INVALID_HID;
static float x[NB * XS];
static int32_t y[NB];

/* a whole dataset of the fixture as doubles; n is the number of values expected */
static void read_f64(const char *name, double *out, size_t n) { fixture_read_f64(file, FIXTURE, name, out, n); }

static void open_fixture(void)
{
    file = H5Fopen(FIXTURE, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open %s", FIXTURE);
    double buf[NB * XS];
    read_f64("/x", buf, NB * XS);
    for (int i = 0; i < NB * XS; i++) x[i] = (float)buf[i]; /* stored as float32: exact */
    hid_t d = H5Dopen2(file, "/y", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y), 0);
    H5Dclose(d);
}

static void close_fixture(void)
{
    if (file >= 0) H5Fclose(file);
}

TestSuite(reference, .init = open_fixture, .fini = close_fixture);

/* The fixture's name of each weighted layer: conv, dense1, dense2 in order. */
static const char *layer_name(const cv_model_spec *spec, int layer)
{
    int dense = 0;
    for (int i = 1; i <= layer; i++)
        if (spec->layers[i].kind == CV_LAYER_DENSE) dense++;
    if (spec->layers[layer].kind == CV_LAYER_CONV2D) return "conv";
    if (spec->layers[layer].kind == CV_LAYER_DENSE) return dense == 1 ? "dense1" : "dense2";
    return NULL;
}

/* Reads group/<name>_kernel and _bias of every weighted layer into buf (laid out as the
 * net's parameters): the fixture's layouts are convoy's, so no transposition. */
static void read_params(const cv_net *net, const char *group, float *buf)
{
    const cv_model_spec *spec = cv_net_spec(net);
    for (int i = 1; i < spec->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[128];
        double tmp[128];
        cr_assert_leq(v.kernel_n, 128);
        snprintf(name, sizeof name, "%s/%s_kernel", group, layer_name(spec, i));
        read_f64(name, tmp, (size_t)v.kernel_n);
        for (int64_t j = 0; j < v.kernel_n; j++) buf[v.kernel_off + j] = (float)tmp[j];
        snprintf(name, sizeof name, "%s/%s_bias", group, layer_name(spec, i));
        read_f64(name, tmp, (size_t)v.bias_n);
        for (int64_t j = 0; j < v.bias_n; j++) buf[v.bias_off + j] = (float)tmp[j];
    }
}

/* Same, as doubles (the references to compare against). */
static double *read_params_f64(const cv_net *net, const char *group)
{
    const cv_model_spec *spec = cv_net_spec(net);
    double *out = calloc((size_t)cv_net_param_count(net), sizeof(double));
    for (int i = 1; i < spec->n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char name[128];
        snprintf(name, sizeof name, "%s/%s_kernel", group, layer_name(spec, i));
        read_f64(name, out + v.kernel_off, (size_t)v.kernel_n);
        snprintf(name, sizeof name, "%s/%s_bias", group, layer_name(spec, i));
        read_f64(name, out + v.bias_off, (size_t)v.bias_n);
    }
    return out;
}

static cv_net *make_net(const char *text, cv_model_spec *spec)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(spec, text, "reference.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, NB, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    read_params(net, "/weights", cv_net_params(net));
    return net;
}

static const int64_t ids[NB] = {0, 1, 2, 3};

static void expect_close(const float *got, const double *want, int64_t n, double rtol, double atol,
                         const char *what)
{
    for (int64_t j = 0; j < n; j++)
        cr_expect_leq(fabs(got[j] - want[j]), rtol * fabs(want[j]) + atol,
                      "%s[%ld] = %.9g, reference %.9g", what, (long)j, got[j], want[j]);
}

/* Every intermediate activation: a model cut after that layer (with a flatten or a linear
 * output where needed) exposes it as the output, in NHWC order. */
Test(reference, activations)
{
    static const struct {
        const char *text, *dataset;
        int n;
    } cuts[] = {
        {HEAD "flatten\ncompile loss=mse\n", "/activations/conv_relu", 4 * 4 * 3},
        {HEAD "maxpool2d pool=2\nflatten\ncompile loss=mse\n", "/activations/pool", 2 * 2 * 3},
        {HEAD "maxpool2d pool=2\nflatten\ndense units=5 activation=tanh\ncompile loss=mse\n",
         "/activations/dense1_tanh", 5},
        {HEAD "maxpool2d pool=2\nflatten\ndense units=5 activation=tanh\n"
              "dense units=3 activation=linear\ncompile loss=mse\n", "/activations/logits", 3},
        {NULL, "/activations/probs", 3},
    };
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        cv_model_spec spec;
        cv_net *net = make_net(cuts[c].text ? cuts[c].text : full_model, &spec);
        cr_assert_eq(cv_net_outputs(net), cuts[c].n, "%s", cuts[c].dataset);
        double want[NB * 48];
        read_f64(cuts[c].dataset, want, (size_t)NB * cuts[c].n);
        const float *out = cv_net_forward(net, x, NB, false, 0, 0, ids);
        expect_close(out, want, (int64_t)NB * cuts[c].n, RTOL, ATOL, cuts[c].dataset);
        cv_net_free(net);
        cv_model_spec_free(&spec);
    }
}

Test(reference, loss_and_gradients)
{
    cv_model_spec spec;
    cv_net *net = make_net(full_model, &spec);
    cv_net_forward(net, x, NB, true, 0, 0, ids);
    double want_loss;
    read_f64("/loss", &want_loss, 1);
    const double loss = cv_net_loss(net, y, NULL, NB) / NB;
    cr_expect_leq(fabs(loss - want_loss), RTOL * want_loss, "loss %.9g, reference %.9g", loss, want_loss);

    cv_net_zero_grad(net);
    cv_net_backward(net, y, NULL, NB, NB);
    double *want = read_params_f64(net, "/gradients");
    const float *g = cv_net_grads(net);
    for (int i = 1; i < spec.n_layers; i++) {
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        char what[64];
        snprintf(what, sizeof what, "d %s_kernel", layer_name(&spec, i));
        expect_close(g + v.kernel_off, want + v.kernel_off, v.kernel_n, RTOL, ATOL, what);
        snprintf(what, sizeof what, "d %s_bias", layer_name(&spec, i));
        expect_close(g + v.bias_off, want + v.bias_off, v.bias_n, RTOL, ATOL, what);
    }
    free(want);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* One step (t = 1, lr 0.1) from /weights with /gradients; hyper-parameters as in the
 * group's `formulas` attribute, which are Keras's defaults (momentum in its EWA form). */
static void one_step(cv_optim_kind kind, const char *group)
{
    cv_model_spec spec;
    cv_net *net = make_net(full_model, &spec);
    const int64_t n = cv_net_param_count(net);
    float *g = malloc(sizeof(float) * (size_t)n);
    read_params(net, "/gradients", g);
    cv_optim_config c = cv_optim_defaults(kind);
    c.lr = 0.1f;
    c.variant = CV_MOMENTUM_EWA;
    cv_optim o;
    cv_err err = {{0}};
    cr_assert_eq(cv_optim_init(&o, &c, n, &err), 0, "%s", err.msg);
    cv_optim_step(&o, cv_net_params(net), g);
    double *want = read_params_f64(net, group);
    expect_close(cv_net_params(net), want, n, RTOL, ATOL, group);
    free(want);
    free(g);
    cv_optim_free(&o);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(reference, formulas_attribute_is_what_we_implement)
{
    /* the hyper-parameters the one-step tests assume, as the fixture states them */
    hid_t g = H5Gopen2(file, "/after_one_step", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "formulas", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *s = NULL;
    cr_assert_geq(H5Aread(a, t, &s), 0);
    cr_assert_not_null(s);
    static const char *const parts[] = {
        "momentum_ewa: v=0.9v+0.1g", "adagrad: n=0.1+g^2, w-=lr*g/sqrt(n+1e-7)",
        "rmsprop: S=0.9S+0.1g^2", "w-=lr*g/sqrt(S+1e-7)", "adadelta: Eg=0.95Eg+0.05g^2",
        "d=sqrt(Ed+1e-7)/sqrt(Eg+1e-7)*g", "adam: m=0.9m+0.1g, v=0.999v+0.001g^2",
        "w-=lr*(m/0.1)/(sqrt(v/0.001)+1e-7)",
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        cr_expect_not_null(strstr(s, parts[i]), "formulas lack \"%s\": %s", parts[i], s);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);
}

Test(reference, step_sgd) { one_step(CV_OPT_SGD, "/after_one_step/sgd"); }
Test(reference, step_momentum_ewa) { one_step(CV_OPT_MOMENTUM, "/after_one_step/momentum_ewa"); }
Test(reference, step_adagrad) { one_step(CV_OPT_ADAGRAD, "/after_one_step/adagrad"); }
Test(reference, step_rmsprop) { one_step(CV_OPT_RMSPROP, "/after_one_step/rmsprop"); }
Test(reference, step_adadelta) { one_step(CV_OPT_ADADELTA, "/after_one_step/adadelta"); }
Test(reference, step_adam) { one_step(CV_OPT_ADAM, "/after_one_step/adam"); }

/* The whole loop end to end: our own gradients feeding our Adam (lr 0.01, eps 1e-7), loss
 * before each of 10 steps. */
Test(reference, adam_trajectory)
{
    cv_model_spec spec;
    cv_net *net = make_net(full_model, &spec);
    double want[10];
    read_f64("/adam_lr0.01_loss_trajectory", want, 10);
    cv_optim_config c = cv_optim_defaults(CV_OPT_ADAM);
    c.lr = 0.01f;
    c.epsilon = 1e-7f;
    cv_optim o;
    cr_assert_eq(cv_optim_init(&o, &c, cv_net_param_count(net), NULL), 0);
    for (int s = 0; s < 10; s++) {
        cv_net_forward(net, x, NB, true, 0, s, ids);
        const double loss = cv_net_loss(net, y, NULL, NB) / NB;
        cr_expect_leq(fabs(loss - want[s]), 1e-4, "step %d: loss %.7f, reference %.7f", s, loss, want[s]);
        cv_net_zero_grad(net);
        cv_net_backward(net, y, NULL, NB, NB);
        cv_optim_step(&o, cv_net_params(net), cv_net_grads(net));
    }
    cr_expect_lt(want[9], want[0] - 0.2, "the reference trajectory descends");
    cv_optim_free(&o);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}
