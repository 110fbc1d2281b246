/* Model-file parser: the example model of docs/model-file.md parses with the right shapes, defaults and 225,034
 * parameters, and every bad-input path fails with one "FILE:LINE: reason" message. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"

static const char *const design_cnn =
    "# the example of docs/model-file.md\n"
    "input     shape=28,28,1\n"
    "conv2d    filters=32 kernel=3 stride=1 padding=valid activation=relu\n"
    "maxpool2d pool=2\n"
    "conv2d    filters=64 kernel=3 activation=relu\n"
    "maxpool2d pool=2\n"
    "flatten\n"
    "dense     units=128 activation=relu init=he_normal\n"
    "dropout   rate=0.3   # Keras's rate: the fraction dropped\n"
    "dense     units=10 activation=softmax\n"
    "\n"
    "compile   optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy "
    "metrics=accuracy\n"
    "fit       epochs=10 batch_size=64 validation_split=0.1\n"
    "augment   rotation_range=40 width_shift_range=0.2 height_shift_range=0.2 shear_range=0.2\n"
    "          zoom_range=0.2 horizontal_flip=true fill_mode=nearest\n";

/* A minimal valid model whose line 1 is input, line 2 dense, line 3 compile. */
#define MLP_HEAD "input shape=4\n"
#define MLP_TAIL "dense units=3 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n"

static cv_model_spec spec;

/* The parse succeeds and keeps the text as its canonical spelling, `canonical` (NULL: the text
 * itself, which is convoy's own spelling). */
static void parse_canon(const char *text, const char *canonical)
{
    cv_err err = {{0}};
    int rc = cv_model_parse(&spec, text, "m.model", &err);
    cr_assert_eq(rc, 0, "parse failed: %s", err.msg);
    cr_assert_not_null(spec.text);
    cr_assert_str_eq(spec.text, canonical ? canonical : text);
}

static void parse_ok(const char *text) { parse_canon(text, NULL); }

/* The parse fails with a single-line message containing `where` ("m.model:LINE:") and `why`. */
static void parse_fails(const char *text, const char *where, const char *why)
{
    cv_err err = {{0}};
    int rc = cv_model_parse(&spec, text, "m.model", &err);
    cr_assert_eq(rc, -1, "parse succeeded; expected \"%s ... %s\"", where, why);
    cr_assert_not_null(strstr(err.msg, where), "message \"%s\" lacks \"%s\"", err.msg, where);
    cr_assert_not_null(strstr(err.msg, why), "message \"%s\" lacks \"%s\"", err.msg, why);
    cr_assert_null(strchr(err.msg, '\n'), "message \"%s\" is not one line", err.msg);
    cr_assert_null(strstr(err.msg, "convoy:"), "the CLI adds the prefix: \"%s\"", err.msg);
    cr_assert_null(spec.text, "a failed parse must not keep the text");
}

static void teardown(void) { cv_model_spec_free(&spec); }

TestSuite(parse, .fini = teardown);

static void assert_shape(cv_shape s, int rank, int d0, int d1, int d2)
{
    cr_assert_eq(s.rank, rank);
    cr_assert_eq(s.d[0], d0);
    if (rank == 3) {
        cr_assert_eq(s.d[1], d1);
        cr_assert_eq(s.d[2], d2);
    }
}

/* ---- valid models --------------------------------------------------------------------- */

Test(parse, design_cnn_shapes_and_params)
{
    parse_ok(design_cnn);
    cr_assert_eq(spec.n_layers, 9);
    const cv_layer_spec *L = spec.layers;
    cr_assert_eq(L[0].kind, CV_LAYER_INPUT);
    cr_assert_eq(L[0].line, 2);
    assert_shape(L[0].out, 3, 28, 28, 1);
    assert_shape(L[1].out, 3, 26, 26, 32);
    assert_shape(L[2].out, 3, 13, 13, 32);
    assert_shape(L[3].out, 3, 11, 11, 64);
    assert_shape(L[4].out, 3, 5, 5, 64);
    assert_shape(L[5].out, 1, 1600, 0, 0);
    assert_shape(L[6].out, 1, 128, 0, 0);
    assert_shape(L[7].out, 1, 128, 0, 0);
    assert_shape(L[8].out, 1, 10, 0, 0);
    assert_shape(L[3].in, 3, 13, 13, 32);
    cr_assert_eq(L[1].act, CV_ACT_RELU);
    cr_assert_eq(L[2].stride[0], 2, "a pooling stride defaults to the pool size");
    cr_assert_eq(L[6].init, CV_INIT_HE_NORMAL);
    cr_assert_float_eq(L[7].rate, 0.3f, 1e-7f);
    cr_assert_eq(L[8].act, CV_ACT_SOFTMAX);
    cr_assert_eq(L[8].line, 10);

    cr_assert_eq(cv_layer_param_count(&L[1]), 320);
    cr_assert_eq(cv_layer_param_count(&L[3]), 18496);
    cr_assert_eq(cv_layer_param_count(&L[6]), 204928);
    cr_assert_eq(cv_layer_param_count(&L[8]), 1290);
    cr_assert_eq(cv_model_param_count(&spec), 225034);

    cr_assert_eq(spec.optim.kind, CV_OPT_ADAM);
    cr_assert_float_eq(spec.optim.lr, 0.001f, 1e-9f);
    cr_assert_eq(spec.optim_line, 12);
    cr_assert_eq(spec.loss.kind, CV_LOSS_SPARSE_CE);
    cr_assert_eq(spec.loss.metrics, (unsigned)CV_METRIC_ACCURACY);
    cr_assert_eq(spec.fit.epochs, 10);
    cr_assert_eq(spec.fit.batch_size, 64);
    cr_assert_float_eq(spec.fit.validation_split, 0.1f, 1e-7f);
    cr_assert(spec.has_augment);
    cr_assert_eq(spec.augment_line, 14);
}

Test(parse, defaults_are_filled)
{
    parse_ok("input shape=3,3,2\n"
             "conv2d filters=2 kernel=1\n"
             "maxpool2d\n"
             "flatten\n"
             "dense units=1\n"
             "compile loss=mse\n");
    const cv_layer_spec *L = spec.layers;
    cr_assert_eq(L[0].normalize, CV_NORM_AUTO);
    cr_assert_eq(L[1].stride[0], 1);
    cr_assert(!L[1].same);
    cr_assert(!L[1].pad_nearest);
    cr_assert_eq(L[1].act, CV_ACT_LINEAR);
    cr_assert_eq(L[1].init, CV_INIT_GLOROT_UNIFORM);
    for (int i = 0; i < spec.n_layers; i++) {
        cr_assert(L[i].use_bias && L[i].trainable, "layer %d", i);
        cr_assert_float_eq(L[i].alpha, 0.2f, 1e-7f);
        cr_assert_eq(L[i].line, i + 1);
    }
    cr_assert_eq(L[2].pool[0], 2);
    cr_assert_eq(L[2].stride[1], 2);
    assert_shape(L[2].out, 3, 1, 1, 2);

    cr_assert_eq(spec.fit.epochs, 1);
    cr_assert_eq(spec.fit.batch_size, 32);
    cr_assert_float_eq(spec.fit.validation_split, 0.0f, 0.0f);
    cr_assert_eq(spec.fit.seed, 42u);
    cr_assert(spec.fit.shuffle);
    cr_assert(!spec.has_augment);

    cr_assert_eq(spec.optim.kind, CV_OPT_RMSPROP, "Keras's default optimizer");
    cv_optim_config d = cv_optim_defaults(CV_OPT_RMSPROP);
    cr_assert_float_eq(spec.optim.lr, d.lr, 0.0f);
    cr_assert_float_eq(spec.optim.rho, d.rho, 0.0f);
    cr_assert_eq(spec.optim_line, 6);
    cr_assert_eq(spec.loss.kind, CV_LOSS_MSE);
    cr_assert_float_eq(spec.loss.huber_delta, 1.0f, 0.0f);
    cr_assert_eq(spec.loss.metrics, 0u);
}

Test(parse, compile_overrides_apply_in_any_order)
{
    /* hyper-parameters before optimizer= still belong to it */
    parse_ok(MLP_HEAD "dense units=2 activation=sigmoid\n"
             "compile beta_2=0.99 epsilon=1e-8 learning_rate=0.01 optimizer=adam beta_1=0.8 "
             "loss=binary_crossentropy metrics=accuracy,mse\n"
             "fit batch_size=all seed=7 shuffle=false epochs=3\n");
    cr_assert_eq(spec.optim.kind, CV_OPT_ADAM);
    cr_assert_float_eq(spec.optim.lr, 0.01f, 1e-9f);
    cr_assert_float_eq(spec.optim.beta1, 0.8f, 1e-7f);
    cr_assert_float_eq(spec.optim.beta2, 0.99f, 1e-7f);
    cr_assert_float_eq(spec.optim.epsilon, 1e-8f, 1e-12f);
    cr_assert_eq(spec.loss.kind, CV_LOSS_BINARY_CE);
    cr_assert_eq(spec.loss.metrics, (unsigned)(CV_METRIC_ACCURACY | CV_METRIC_MSE));
    cr_assert_eq(spec.fit.batch_size, 0, "`all` is full-batch");
    cr_assert_eq(spec.fit.seed, 7u);
    cr_assert(!spec.fit.shuffle);
    cr_assert_eq(spec.fit.epochs, 3);
    teardown();

    parse_ok(MLP_HEAD "dense units=1\n"
             "compile nesterov=true momentum=0.5 optimizer=momentum loss=huber delta=2.5\n");
    cr_assert_eq(spec.optim.kind, CV_OPT_MOMENTUM);
    cr_assert_eq(spec.optim.variant, CV_MOMENTUM_NESTEROV);
    cr_assert_float_eq(spec.optim.momentum, 0.5f, 1e-7f);
    cr_assert_float_eq(spec.optim.lr, cv_optim_defaults(CV_OPT_MOMENTUM).lr, 0.0f);
    cr_assert_float_eq(spec.loss.huber_delta, 2.5f, 1e-7f);
    teardown();

    parse_ok(MLP_HEAD "dense units=1\n"
             "compile optimizer=adadelta rho=0.5 loss=mae\n");
    cr_assert_float_eq(spec.optim.rho, 0.5f, 1e-7f);
    teardown();

    parse_ok(MLP_HEAD "dense units=1\n"
             "compile optimizer=adagrad initial_accumulator_value=0.2 loss=mae\n");
    cr_assert_float_eq(spec.optim.initial_accumulator, 0.2f, 1e-7f);
    teardown();

    parse_ok(MLP_HEAD "dense units=1\ncompile optimizer=momentum variant=classic loss=mae\n");
    cr_assert_eq(spec.optim.variant, CV_MOMENTUM_CLASSIC);
}

Test(parse, same_padding_follows_tensorflow)
{
    parse_ok("input shape=8,8,1\n"
             "conv2d filters=2 kernel=3 stride=2 padding=same pad_mode=nearest\n"
             "flatten\n" MLP_TAIL);
    assert_shape(spec.layers[1].out, 3, 4, 4, 2);
    cr_assert(spec.layers[1].same && spec.layers[1].pad_nearest);
    teardown();

    parse_ok("input shape=7,7,3\n"
             "conv2d filters=2 kernel=3,3 stride=2 padding=same\n"
             "flatten\n" MLP_TAIL);
    assert_shape(spec.layers[1].out, 3, 4, 4, 2);
    cr_assert_eq(spec.layers[1].kernel[1], 3);
    teardown();

    /* any kernel shape: the fixture's conv (9x7 -> 9x3), PyTorch's numeric padding, zeropad2d */
    parse_ok("input shape=9,7,3\n"
             "conv2d filters=5 kernel=3,2 stride=1,2 padding=1,0\n"
             "conv2d filters=2 kernel=3 stride=2 padding=1\n"
             "zeropad2d padding=1,2,0,3\n"
             "maxpool2d pool=2,1\n"
             "flatten\n" MLP_TAIL);
    assert_shape(spec.layers[1].out, 3, 9, 3, 5);
    cr_assert(spec.layers[1].kernel[0] == 3 && spec.layers[1].kernel[1] == 2);
    cr_assert(spec.layers[1].stride[0] == 1 && spec.layers[1].stride[1] == 2);
    cr_assert(spec.layers[1].pad[0] == 1 && spec.layers[1].pad[1] == 1 && spec.layers[1].pad[2] == 0);
    assert_shape(spec.layers[2].out, 3, 5, 2, 2);
    assert_shape(spec.layers[3].out, 3, 8, 5, 2);
    assert_shape(spec.layers[4].out, 3, 4, 5, 2);
    cr_assert(spec.layers[4].stride[0] == 2 && spec.layers[4].stride[1] == 1, "a pool's stride is its window");
    teardown();

    /* same padding never empties, even with a kernel larger than the input */
    parse_ok("input shape=2,2,1\nconv2d filters=1 kernel=5 padding=same\nflatten\n" MLP_TAIL);
    assert_shape(spec.layers[1].out, 3, 2, 2, 1);
}

Test(parse, activation_layer_short_and_long_forms)
{
    parse_ok(MLP_HEAD "dense units=3\nactivation leaky_relu alpha=0.1\nactivation softmax\n"
             "compile loss=categorical_crossentropy\n");
    cr_assert_eq(spec.layers[2].kind, CV_LAYER_ACTIVATION);
    cr_assert_eq(spec.layers[2].act, CV_ACT_LEAKY_RELU);
    cr_assert_float_eq(spec.layers[2].alpha, 0.1f, 1e-7f);
    cr_assert_eq(spec.layers[3].act, CV_ACT_SOFTMAX);
    teardown();

    parse_ok(MLP_HEAD "dense units=3\nactivation activation=sigmoid\n"
             "compile loss=binary_crossentropy\n");
    cr_assert_eq(spec.layers[2].act, CV_ACT_SIGMOID);
}

Test(parse, flags_and_misc_keys)
{
    parse_canon("input shape=5 normalize=standardize\n"
                "flatten\n"
                "dense units=3 use_bias=false trainable=false init=zeros\n"
                "dense units=2 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy optimizer=sgd lr=0\n",
                /* lr= is an alias: the text keeps learning_rate= */
                "input shape=5 normalize=standardize\n"
                "flatten\n"
                "dense units=3 use_bias=false trainable=false init=zeros\n"
                "dense units=2 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy optimizer=sgd learning_rate=0\n");
    cr_assert_eq(spec.layers[0].normalize, CV_NORM_STANDARDIZE);
    assert_shape(spec.layers[1].out, 1, 5, 0, 0);
    cr_assert(!spec.layers[2].use_bias && !spec.layers[2].trainable);
    cr_assert_eq(cv_layer_param_count(&spec.layers[2]), 15);
    cr_assert_eq(cv_model_param_count(&spec), 15 + 8);
    cr_assert_float_eq(spec.optim.lr, 0.0f, 0.0f);
}

Test(parse, summary_table)
{
    parse_ok(design_cnn);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert_not_null(f);
    cv_model_summary(&spec, f);
    fclose(f);
    cr_assert_not_null(strstr(buf, "Total params: 225,034"), "%s", buf);
    cr_assert_not_null(strstr(buf, "Trainable params: 225,034"), "%s", buf);
    cr_assert_not_null(strstr(buf, "Non-trainable params: 0"), "%s", buf);
    cr_assert_not_null(strstr(buf, "conv2d_1 (Conv2D)"), "%s", buf);
    cr_assert_not_null(strstr(buf, "(None, 26, 26, 32)"), "%s", buf);
    cr_assert_not_null(strstr(buf, "(None, 1600)"), "%s", buf);
    cr_assert_not_null(strstr(buf, "204,928"), "%s", buf);
    cr_assert_not_null(strstr(buf, "dense_1 (Dense)"), "%s", buf);
    free(buf);
}

Test(parse, summary_counts_frozen_layers)
{
    parse_ok(MLP_HEAD "dense units=10 trainable=false\n" MLP_TAIL);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cv_model_summary(&spec, f);
    fclose(f);
    cr_assert_not_null(strstr(buf, "Total params: 83\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "Trainable params: 33\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "Non-trainable params: 50\n"), "%s", buf);
    free(buf);
}

Test(parse, load_reads_a_file_and_reports_unreadable_ones)
{
    const char *path = CONVOY_TEST_TMP "/test_parse.model";
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(design_cnn, f);
    fclose(f);
    cv_err err = {{0}};
    cr_assert_eq(cv_model_load(&spec, path, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_model_param_count(&spec), 225034);
    cr_assert_str_eq(spec.text, design_cnn);
    cr_assert_str_eq(spec.file, path);
    teardown();

    cr_assert_eq(cv_model_load(&spec, CONVOY_TEST_TMP "/no-such.model", &err), -1);
    cr_assert_not_null(strstr(err.msg, "no-such.model: cannot read: No such file"), "%s", err.msg);

    /* a parse error names the path it was loaded from */
    f = fopen(path, "w");
    fputs("input shape=4\nflaten\n", f);
    fclose(f);
    cr_assert_eq(cv_model_load(&spec, path, &err), -1);
    cr_assert_not_null(strstr(err.msg, "test_parse.model:2: unknown layer 'flaten'"), "%s", err.msg);
    remove(path);
}

/* ---- one test per error path ------------------------------------------------------------ */

Test(parse, unknown_layer)
{
    parse_fails(MLP_HEAD "\n# comment\nconv3d filters=1 kernel=1\n" MLP_TAIL, "m.model:4:",
                "unknown layer 'conv3d'");
}

Test(parse, unknown_key)
{
    parse_fails(MLP_HEAD "dense units=3 activaton=relu\n" MLP_TAIL, "m.model:2:",
                "unknown key 'activaton' for dense: did you mean 'activation'?");
    parse_fails(MLP_HEAD "dense units=3 bias=false\n" MLP_TAIL, "m.model:2:",
                "unknown key 'bias' for dense (valid keys: units, activation, alpha, "
                "init, use_bias, trainable)");
    parse_fails(MLP_HEAD "flatten units=2\n" MLP_TAIL, "m.model:2:", "flatten takes no keys");
}

Test(parse, duplicate_key)
{
    parse_fails(MLP_HEAD "dense units=3\n  units=4\n" MLP_TAIL, "m.model:3:",
                "duplicate key 'units' in dense (already given on line 2)");
    parse_fails(MLP_HEAD MLP_TAIL "  learning_rate=0.1 lr=0.2\n", "m.model:4:",
                "duplicate key 'lr' in compile");
}

Test(parse, bad_number)
{
    parse_fails("input shape=8,8,1\nconv2d filters=abc kernel=3\n", "m.model:2:",
                "bad number 'abc' for filters");
    parse_fails(MLP_HEAD "dropout rate=0.3x\n" MLP_TAIL, "m.model:2:",
                "bad number '0.3x' for rate");
    parse_fails(MLP_HEAD "dropout rate=nan\n" MLP_TAIL, "m.model:2:", "bad number 'nan' for rate");
    parse_fails(MLP_HEAD "dense units=99999999999999999999\n" MLP_TAIL, "m.model:2:",
                "bad number '99999999999999999999' for units");
    parse_fails(MLP_HEAD "dense units=\n" MLP_TAIL, "m.model:2:", "units= has no value");
}

Test(parse, non_integer_int)
{
    parse_fails("input shape=8,8,1\nconv2d filters=3.5 kernel=3\n", "m.model:2:",
                "bad number '3.5' for filters: expected an integer");
    parse_fails("input shape=28.0,28,1\n", "m.model:1:", "bad number '28.0' for shape");
    parse_fails(MLP_HEAD MLP_TAIL "fit epochs=1e3\n", "m.model:4:",
                "bad number '1e3' for epochs: expected an integer");
}

Test(parse, missing_required_key)
{
    parse_fails("input shape=8,8,1\nconv2d filters=4\n", "m.model:2:",
                "conv2d is missing the required key kernel=");
    parse_fails(MLP_HEAD "dense activation=relu\n" MLP_TAIL, "m.model:2:",
                "dense is missing the required key units=");
    parse_fails(MLP_HEAD "dropout\n" MLP_TAIL, "m.model:2:", "dropout is missing the required key rate=");
    parse_fails("input normalize=scale\n", "m.model:1:", "input is missing the required key shape=");
}

Test(parse, missing_input)
{
    parse_fails("dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy\n",
                "m.model:1:", "missing input layer");
    parse_fails("# nothing but comments\n\n", "m.model:1:", "missing input layer");
    parse_fails("\n\ncompile loss=mse\n", "m.model:3:", "missing input layer");
}

Test(parse, input_not_first)
{
    parse_fails("\ndense units=3\ninput shape=4\n" MLP_TAIL, "m.model:3:",
                "input must be the first layer (line 2 has `dense` before it)");
    parse_fails(MLP_HEAD "input shape=4\n" MLP_TAIL, "m.model:2:",
                "a second input layer (the first is on line 1)");
}

Test(parse, kernel_larger_than_input)
{
    parse_fails("input shape=3,3,1\nconv2d filters=1 kernel=5\nflatten\n" MLP_TAIL, "m.model:2:",
                "kernel 5x5 larger than its 3x3 input");
}

Test(parse, pooling_to_zero)
{
    parse_fails("input shape=2,2,1\nmaxpool2d pool=3\nflatten\n" MLP_TAIL, "m.model:2:",
                "pooling 3x3 on a 2x2 input gives an empty output");
    parse_fails("input shape=4\navgpool2d\n" MLP_TAIL, "m.model:2:",
                "avgpool2d needs an (H,W,C) input; got (4)");
    parse_fails("input shape=784\nconv2d filters=1 kernel=3\n" MLP_TAIL, "m.model:2:",
                "conv2d needs an (H,W,C) input; got (784)");
}

Test(parse, dense_on_rank3_input)
{
    parse_fails("input shape=4,4,1\n\ndense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "dense needs a flat input; add `flatten` before line 3");
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernel=1\ncompile loss=mse\n", "m.model:2:",
                "the output must be flat");
}

Test(parse, bad_activation_name)
{
    parse_fails(MLP_HEAD "dense units=3 activation=rleu\n" MLP_TAIL, "m.model:2:",
                "unknown activation 'rleu': did you mean 'relu'?");
    parse_fails(MLP_HEAD "dense units=3 activation=step\n" MLP_TAIL, "m.model:2:",
                "unknown activation 'step' (expected linear, relu, leaky_relu, sigmoid, tanh, "
                "softmax)");
    parse_fails(MLP_HEAD "activation swish\n" MLP_TAIL, "m.model:2:", "unknown activation 'swish'");
    parse_fails(MLP_HEAD "dense units=3 init=lecun\n" MLP_TAIL, "m.model:2:", "unknown init 'lecun'");
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernel=1 padding=full\n", "m.model:2:",
                "bad padding 'full' (expected same, valid, P, PH,PW or TOP,BOTTOM,LEFT,RIGHT)");
    parse_fails(MLP_HEAD "dense units=3 use_bias=yes\n" MLP_TAIL, "m.model:2:",
                "bad value 'yes' for use_bias: expected true or false");
    parse_fails(MLP_HEAD "dense units=3 relu\n" MLP_TAIL, "m.model:2:",
                "expected key=value after `dense`, got 'relu'");
}

Test(parse, bad_optimizer)
{
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile optimizer=adamw loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "unknown optimizer 'adamw': Keras's AdamW is not in convoy (expected sgd, momentum, "
                "adagrad, rmsprop, adadelta, adam)");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile optimizer=bfgs loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "unknown optimizer 'bfgs' (expected sgd, momentum, adagrad, rmsprop, adadelta, adam)");
}

Test(parse, bad_loss)
{
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=crossentropy\n",
                "m.model:3:", "unknown loss 'crossentropy'");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy metrics=accuracy,kappa\n",
                "m.model:3:", "unknown metric 'kappa' (expected accuracy, mae, mse, top_k_categorical_accuracy, "
                "sparse_top_k_categorical_accuracy, precision, recall, f1, auc)");
}

Test(parse, missing_compile_or_loss)
{
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n", "m.model: ",
                "missing `compile ... loss=...`");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile optimizer=adam\n",
                "m.model:3:", "missing `compile ... loss=...`");
}

Test(parse, loss_output_mismatch)
{
    parse_fails(MLP_HEAD "dense units=3\ncompile loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "sparse_categorical_crossentropy needs a softmax output layer "
                "(last layer is dense with activation=linear");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ndropout rate=0.1\n"
                "compile loss=categorical_crossentropy\n",
                "m.model:4:", "categorical_crossentropy needs a softmax output layer "
                "(last layer is dropout");
    parse_fails(MLP_HEAD "dense units=1 activation=softmax\ncompile loss=binary_crossentropy\n",
                "m.model:3:", "binary_crossentropy needs a sigmoid output layer");
}

Test(parse, out_of_range_values)
{
    parse_fails("input shape=8,8,1\nconv2d filters=0 kernel=3\n", "m.model:2:",
                "filters must be > 0, got 0");
    parse_fails("input shape=8,8,1\nconv2d filters=1 kernel=3 stride=-1\n", "m.model:2:",
                "stride must be > 0, got -1");
    parse_fails("input shape=8,0,1\n", "m.model:1:", "shape must be > 0, got 0");
    parse_fails("input shape=8,8\n", "m.model:1:", "bad shape '8,8'");
    parse_fails("input shape=8,8,1\nconv2d filters=1 kernel=3,5,1\n", "m.model:2:",
                "bad kernel '3,5,1' (expected N for NxN, or ROWS,COLUMNS)");
    parse_fails("input shape=8,8,1\nconv2d filters=1 kernel=3 padding=1,2,3\n", "m.model:2:",
                "bad padding '1,2,3'");
    parse_fails("input shape=8,8,1\nconv2d filters=1 kernel=3 padding=-1\n", "m.model:2:",
                "padding must be >= 0, got -1");
    parse_fails("input shape=8,8,1\nconv2d filters=1 kernel=3,2 padding=1,2\n", "m.model:2:",
                "padding 1,1,2,2 must be smaller than the 3x2 window on each side");
    parse_fails("input shape=8,8,1\nzeropad2d padding=same\n", "m.model:2:", "zeropad2d takes padding=P");
    parse_fails("input shape=8,8,1\nzeropad2d\n", "m.model:2:", "zeropad2d is missing the required key padding=");
    parse_fails("input shape=8\nzeropad2d padding=1\n", "m.model:2:", "zeropad2d needs an (H,W,C) input");
    parse_fails(MLP_HEAD "dropout rate=1\n" MLP_TAIL, "m.model:2:", "rate must be in [0, 1), got 1");
    parse_fails(MLP_HEAD "dense units=-2\n" MLP_TAIL, "m.model:2:", "units must be > 0, got -2");
    parse_fails(MLP_HEAD MLP_TAIL "fit validation_split=1.5\n", "m.model:4:",
                "validation_split must be in [0, 1), got 1.5");
    parse_fails(MLP_HEAD MLP_TAIL "fit epochs=0\n", "m.model:4:", "epochs must be > 0, got 0");
    parse_fails(MLP_HEAD MLP_TAIL "fit batch_size=0\n", "m.model:4:", "batch_size must be > 0");
    parse_fails(MLP_HEAD MLP_TAIL "fit seed=-1\n", "m.model:4:", "seed must be >= 0");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy learning_rate=-0.1\n",
                "m.model:3:", "learning_rate must be >= 0, got -0.1");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy optimizer=adam beta_1=1\n",
                "m.model:3:", "beta_1 must be in [0, 1), got 1");
    parse_fails(MLP_HEAD MLP_TAIL "augment zoom_range=1.2,0.8\n", "m.model:4:",
                "bad range '1.2,0.8' for zoom_range: lo > hi");
    parse_fails(MLP_HEAD MLP_TAIL "augment rotation_range=-5\n", "m.model:4:",
                "rotation_range must be >= 0");
    parse_fails(MLP_HEAD MLP_TAIL "augment fill_mode=mirror\n", "m.model:4:",
                "unknown fill_mode 'mirror'");
    parse_fails(MLP_HEAD MLP_TAIL "augment brightness_range=0.5\n", "m.model:4:",
                "bad range '0.5' for brightness_range: expected lo,hi");
}

Test(parse, hp_value)
{
    /* a hyperparameter parses with its default (lo); tests/test_tune.c covers the rest */
    parse_ok(MLP_HEAD "dense units=hp.int(32,256,step=32)\n" MLP_TAIL);
    cr_assert_eq(spec.n_hp, 1);
    cr_assert_eq(spec.layers[1].units, 32);
}

/* the rest of `base` is in test_transfer.c */
Test(parse, base_line_comes_first)
{
    parse_fails(MLP_HEAD "base checkpoint=a.h5 upto=3 trainable=false\n" MLP_TAIL, "m.model:2:",
                "base must be the first statement (line 1 has `input` before it)");
}

Test(parse, orphan_continuation_line)
{
    parse_fails("# header\n   shape=4\n" MLP_TAIL, "m.model:2:",
                "`shape=4` continues a statement, but there is none before it");
}

Test(parse, key_for_another_optimizer)
{
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile optimizer=sgd beta_1=0.9 loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "beta_1 does not apply to optimizer sgd");
    /* the default optimizer is rmsprop, which has no momentum */
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile momentum=0.9 loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "momentum does not apply to optimizer rmsprop");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy delta=2\n",
                "m.model:3:", "delta= applies only to loss=huber");
    parse_fails(MLP_HEAD "dense units=3 activation=linear\ncompile loss=mse from_logits=true\n", "m.model:3:",
                "from_logits= applies only to the cross-entropies");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy from_logits=true\n",
                "m.model:3:", "from_logits=true needs a linear output layer, the logits (last layer is dense with "
                "activation=softmax, line 2)");
}

/* from_logits: a linear output is what the cross-entropy takes; the loss equals the softmax
 * model's with the same weights */
Test(parse, from_logits_matches_a_softmax_output)
{
    parse_ok(MLP_HEAD "dense units=3 activation=linear\ncompile loss=sparse_categorical_crossentropy from_logits=true\n");
    cr_assert(spec.loss.from_logits);
    cv_model_spec soft;
    cv_err err;
    cr_assert_eq(cv_model_parse(&soft, MLP_HEAD "dense units=3 activation=softmax\n"
                                "compile loss=sparse_categorical_crossentropy\n", "s.model", &err), 0, "%s", err.msg);
    cv_net *a = cv_net_create(&spec, 4, 7, &err), *b = cv_net_create(&soft, 4, 7, &err);
    cr_assert(a && b, "%s", err.msg);
    const float x[8] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f, 0.0f, 1.0f};
    const int32_t y[2] = {2, 0};
    cv_net_forward(a, x, 2, true, 7, 0, (const int64_t[]){0, 1});
    cv_net_forward(b, x, 2, true, 7, 0, (const int64_t[]){0, 1});
    const double la = cv_net_loss(a, y, NULL, 2), lb = cv_net_loss(b, y, NULL, 2);
    cr_assert_float_eq(la, lb, 1e-6 * fabs(lb), "loss from logits %g, from a softmax output %g", la, lb);
    cv_net_zero_grad(a);
    cv_net_zero_grad(b);
    cv_net_backward(a, y, NULL, 2, 2.0);
    cv_net_backward(b, y, NULL, 2, 2.0);
    for (int64_t i = 0; i < cv_net_grad_count(a); i++)
        cr_assert_float_eq(cv_net_grads(a)[i], cv_net_grads(b)[i], 1e-6, "gradient %lld", (long long)i);
    cv_net_free(a);
    cv_net_free(b);
    cv_model_spec_free(&soft);
}

Test(parse, repeated_statement)
{
    parse_fails(MLP_HEAD MLP_TAIL "fit epochs=2\nfit epochs=3\n", "m.model:5:",
                "a second `fit` line (the first is line 4)");
}

Test(parse, class_weight)
{
    parse_ok(MLP_HEAD MLP_TAIL "fit class_weight=0:1,2:5.5\n");
    cr_assert(spec.fit.n_class_weight == 3 && spec.fit.class_weight[1] == 1.0f && spec.fit.class_weight[2] == 5.5f);
    cr_assert(!spec.fit.class_weight_balanced);
    cv_model_spec_free(&spec);
    parse_ok(MLP_HEAD MLP_TAIL "fit class_weight=balanced\n");
    cr_assert(spec.fit.class_weight_balanced && spec.fit.class_weight_line == 4);
    cv_model_spec_free(&spec);
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=0:1,3:2\n", "m.model:4:",
                "class_weight names class 3, but the model has 3 classes (0..2)");
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=1:2,1:3\n", "m.model:4:", "class 1 is given twice");
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=1:-2\n", "m.model:4:", "class 1 needs a finite weight >= 0");
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=heavy\n", "m.model:4:", "class 0 needs a finite weight >= 0, got 'heavy'");
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=1:2,x:3\n", "m.model:4:", "expected balanced, CLASS:WEIGHT,...");
    /* the list form, a weight per class from 0 (as the bn-gap fixture writes it) */
    parse_ok(MLP_HEAD MLP_TAIL "fit class_weight=1,2,0.5\n");
    cr_assert(spec.fit.n_class_weight == 3 && spec.fit.class_weight[0] == 1.0f && spec.fit.class_weight[1] == 2.0f &&
              spec.fit.class_weight[2] == 0.5f);
    cv_model_spec_free(&spec);
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight=1,2,3,4\n", "m.model:4:", "class_weight names class 3");
}

/* ---- Keras's spellings ------------------------------------------------------------------ */

#include "convoy/words.h"

/* Every layer written out as convoy writes a line (cv_layer_write_line): two specs whose lines
 * are equal build the same network. */
static char *layer_lines(const cv_model_spec *s)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert_not_null(f);
    for (int i = 0; i < s->n_layers; i++) cv_layer_write_line(f, &s->layers[i]);
    fclose(f);
    return buf;
}

static const char *const keras_cnn =
    "# a Keras user's first model\n"
    "Conv2D filters=8 kernel_size=(3,3) strides=(1,1) padding='same' activation='relu' "
    "kernel_initializer=HeNormal use_bias=True input_shape=(28,28,1)\n"
    "MaxPooling2D pool_size=(2,2)\n"
    "BatchNormalization momentum=0.99 epsilon=0.001 axis=-1\n"
    "Flatten\n"
    "Dropout rate=0.25\n"
    "Dense units=10 activation=Softmax bias_initializer=zeros\n"
    "compile optimizer=Adam learning_rate=0.001 loss=SparseCategoricalCrossentropy metrics=[acc]\n"
    "fit epochs=1 batch_size=64 verbose=2 shuffle=True\n";

/* what convoy writes for it: the same lines, each word in its one canonical spelling */
static const char *const keras_cnn_canonical =
    "# a Keras user's first model\n"
    "input shape=28,28,1\n"
    "conv2d filters=8 kernel=3,3 stride=1,1 padding=same activation=relu init=he_normal use_bias=true\n"
    "maxpool2d pool=2,2\n"
    "batchnorm momentum=0.99 epsilon=0.001\n"
    "flatten\n"
    "dropout rate=0.25\n"
    "dense units=10 activation=softmax\n"
    "compile optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy\n"
    "fit epochs=1 batch_size=64 verbose=2 shuffle=true\n";

/* keras parses with canonical as its text, and canonical (convoy's own spelling, which parses
 * to itself) to the same network, compile and fit; spec is left holding keras's parse. */
static void same_model(const char *keras, const char *canonical)
{
    parse_ok(canonical);
    char *canon_layers = layer_lines(&spec);
    const cv_model_spec canon = spec;
    spec.text = NULL; /* the copy owns nothing else */
    free(canon.text);
    parse_canon(keras, canonical);
    char *keras_layers = layer_lines(&spec);
    cr_assert_str_eq(keras_layers, canon_layers, "%s", keras);
    cr_assert(memcmp(&spec.optim, &canon.optim, sizeof spec.optim) == 0, "%s", keras);
    cr_assert(memcmp(&spec.loss, &canon.loss, sizeof spec.loss) == 0, "%s", keras);
    cr_assert(memcmp(&spec.fit, &canon.fit, sizeof spec.fit) == 0, "%s", keras);
    free(keras_layers);
    free(canon_layers);
}

Test(parse, keras_file_is_its_canonical_file)
{
    same_model(keras_cnn, keras_cnn_canonical);
    cr_assert_eq(spec.n_layers, 7);
    cr_assert_eq(spec.layers[0].kind, CV_LAYER_INPUT);
    cr_assert_eq(spec.layers[0].line, 2, "the implied input is the first layer's line");
    cr_assert(spec.fit.plain && !spec.fit.silent);
}

/* {what a Keras user writes, what convoy writes} */
typedef struct {
    const char *keras, *canonical;
} spelling;

/* Each alias in a model of its own */
static const spelling aliases[] = {
    /* layer kinds: Keras's class, its snake-case name, other letter cases */
    {"input shape=4,4,1\nConv2D filters=1 kernel=1\nflatten\n", "input shape=4,4,1\nconv2d filters=1 kernel=1\nflatten\n"},
    {"input shape=4,4,1\nCONV2D filters=1 kernel=1\nFlatten\n", "input shape=4,4,1\nconv2d filters=1 kernel=1\nflatten\n"},
    {"input shape=4,4,1\nMaxPooling2D\nflatten\n", "input shape=4,4,1\nmaxpool2d\nflatten\n"},
    {"input shape=4,4,1\nmax_pooling2d\nflatten\n", "input shape=4,4,1\nmaxpool2d\nflatten\n"},
    {"input shape=4,4,1\nMaxPool2D\nflatten\n", "input shape=4,4,1\nmaxpool2d\nflatten\n"},
    {"input shape=4,4,1\nAveragePooling2D\nflatten\n", "input shape=4,4,1\navgpool2d\nflatten\n"},
    {"input shape=4,4,1\naverage_pooling2d\nflatten\n", "input shape=4,4,1\navgpool2d\nflatten\n"},
    {"input shape=4,4,1\nGlobalAveragePooling2D\n", "input shape=4,4,1\nglobalavgpool2d\n"},
    {"input shape=4,4,1\nglobal_max_pooling2d\n", "input shape=4,4,1\nglobalmaxpool2d\n"},
    {"input shape=4,4,1\nZeroPadding2D padding=((1,1),(2,0))\nflatten\n",
     "input shape=4,4,1\nzeropad2d padding=1,1,2,0\nflatten\n"},
    {"input shape=4,4,1\nzero_padding2d padding=(1,2)\nflatten\n", "input shape=4,4,1\nzeropad2d padding=1,2\nflatten\n"},
    {"input shape=4\nBatchNormalization\n", "input shape=4\nbatchnorm\n"},
    {"input shape=4\nbatch_normalization\n", "input shape=4\nbatchnorm\n"},
    {"input shape=4\nDropout rate=0.5\n", "input shape=4\ndropout rate=0.5\n"},
    {"input shape=4\nActivation relu\n", "input shape=4\nactivation relu\n"},
    {"input shape=4\nActivation activation=ReLU\n", "input shape=4\nactivation activation=relu\n"},
    {"InputLayer input_shape=(4,)\nDense units=2\n", "input shape=4\ndense units=2\n"},
    {"Input shape=(4,4,1)\nflatten\n", "input shape=4,4,1\nflatten\n"},
    {"input_layer input_dim=4\ndense units=2\n", "input shape=4\ndense units=2\n"},
    /* input_shape=, input_dim= on the first layer: the input layer before it */
    {"Dense units=2 input_dim=4\n", "input shape=4\ndense units=2\n"},
    {"  Dense units=2 input_shape=4\n", "input shape=4\n  dense units=2\n"},
    {"Flatten input_shape=28,28,1\n", "input shape=28,28,1\nflatten\n"},
    /* keys */
    {"input shape=4,4,1\nconv2d filters=1 kernel_size=(2,1) strides=(1,2)\nflatten\n",
     "input shape=4,4,1\nconv2d filters=1 kernel=2,1 stride=1,2\nflatten\n"},
    {"input shape=4,4,1\nmaxpool2d pool_size=2 strides=1\nflatten\n", "input shape=4,4,1\nmaxpool2d pool=2 stride=1\nflatten\n"},
    {"input shape=4\ndense units=2 kernel_initializer=GlorotNormal use_bias=False\n",
     "input shape=4\ndense units=2 init=glorot_normal use_bias=false\n"},
    {"input shape=4\ndense units=2 kernel_initializer='he_uniform'\n", "input shape=4\ndense units=2 init=he_uniform\n"},
    {"input shape=4\ndense units=2 init=Zeros activation=None\n", "input shape=4\ndense units=2 init=zeros activation=linear\n"},
    {"input shape=4\ndense units=2 activation=LeakyReLU\n", "input shape=4\ndense units=2 activation=leaky_relu\n"},
    {"input shape=4,4,1\nconv2d filters=1 kernel=3 padding=SAME\nflatten\n",
     "input shape=4,4,1\nconv2d filters=1 kernel=3 padding=same\nflatten\n"},
    /* Keras keys whose only meaning convoy always has: left out */
    {"input shape=4,4,1\nconv2d filters=1 kernel=1 dilation_rate=(1,1) groups=1 data_format=channels_last\nflatten\n",
     "input shape=4,4,1\nconv2d filters=1 kernel=1\nflatten\n"},
    {"input shape=4\ndense units=2 bias_initializer='zeros'\nbatchnorm axis=-1\n", "input shape=4\ndense units=2\nbatchnorm\n"},
    {"input shape=4,4,1\nMaxPooling2D pool_size=2 padding='valid'\nGlobalMaxPooling2D keepdims=False\n",
     "input shape=4,4,1\nmaxpool2d pool=2\nglobalmaxpool2d\n"},
};

#define ONE_OUTPUT_TAIL "dense units=1\ncompile loss=mse\n"

Test(parse, every_keras_alias)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        char keras[512], canonical[512];
        snprintf(keras, sizeof keras, "%s" ONE_OUTPUT_TAIL, aliases[i].keras);
        snprintf(canonical, sizeof canonical, "%s" ONE_OUTPUT_TAIL, aliases[i].canonical);
        same_model(keras, canonical);
        cv_model_spec_free(&spec);
    }
}

/* compile and fit words: {Keras's, convoy's} after a one-output model */
static const spelling compile_aliases[] = {
    {"compile optimizer=Adam loss=mean_squared_error\n", "compile optimizer=adam loss=mse\n"},
    {"compile optimizer=ADAM loss=MeanSquaredError\n", "compile optimizer=adam loss=mse\n"},
    {"compile optimizer=RMSprop loss=MSE\n", "compile optimizer=rmsprop loss=mse\n"},
    {"compile optimizer=Adagrad loss=mean_absolute_error\n", "compile optimizer=adagrad loss=mae\n"},
    {"compile optimizer=Adadelta loss=MeanAbsoluteError\n", "compile optimizer=adadelta loss=mae\n"},
    {"compile optimizer=SGD loss=Huber\n", "compile optimizer=sgd loss=huber\n"},
    {"compile optimizer=sgd loss=huber_loss lr=0.1\n", "compile optimizer=sgd loss=huber learning_rate=0.1\n"},
    {"compile loss=mae metrics=['mean_squared_error','MAE']\n", "compile loss=mae metrics=mse,mae\n"},
    {"compile loss=mae metrics=acc,AUC,Precision,Recall,f1_score\n",
     "compile loss=mae metrics=accuracy,auc,precision,recall,f1\n"},
    {"compile loss=mae\nfit verbose=auto\n", "compile loss=mae\nfit verbose=1\n"},
    {"compile loss=mae\nfit verbose=0 class_weight={0:1,1:2}\n", "compile loss=mae\nfit verbose=0 class_weight=0:1,1:2\n"},
    /* Keras's SGD(momentum=m, nesterov=n) is convoy's momentum optimizer, classic or nesterov */
    {"compile optimizer=SGD momentum=0.9 loss=mse\n", "compile optimizer=momentum variant=classic momentum=0.9 loss=mse\n"},
    {"compile optimizer=SGD momentum=0.9 nesterov=True loss=mse\n",
     "compile optimizer=momentum momentum=0.9 nesterov=true loss=mse\n"},
    {"compile optimizer=SGD momentum=0.5 nesterov=False loss=mse\n",
     "compile optimizer=momentum variant=classic momentum=0.5 loss=mse\n"},
    {"compile optimizer=sgd nesterov=True loss=mse\n", "compile optimizer=momentum momentum=0 nesterov=true loss=mse\n"},
};

Test(parse, keras_compile_and_fit_words)
{
    for (size_t i = 0; i < sizeof compile_aliases / sizeof compile_aliases[0]; i++) {
        char keras[512], canonical[512];
        snprintf(keras, sizeof keras, "input shape=4\ndense units=1 activation=sigmoid\n%s", compile_aliases[i].keras);
        snprintf(canonical, sizeof canonical, "input shape=4\ndense units=1 activation=sigmoid\n%s",
                 compile_aliases[i].canonical);
        same_model(keras, canonical);
        cv_model_spec_free(&spec);
    }
}

Test(parse, keras_sgd_maps_exactly)
{
    parse_ok(MLP_HEAD "dense units=3 activation=softmax\n"
             "compile optimizer=momentum variant=classic momentum=0.9 loss=sparse_categorical_crossentropy\n");
    cv_model_spec_free(&spec);
    parse_canon(MLP_HEAD "dense units=3 activation=softmax\n"
                "compile optimizer=SGD momentum=0.9 loss=sparse_categorical_crossentropy\n",
                MLP_HEAD "dense units=3 activation=softmax\n"
                "compile optimizer=momentum variant=classic momentum=0.9 loss=sparse_categorical_crossentropy\n");
    cr_assert_eq(spec.optim.kind, CV_OPT_MOMENTUM);
    cr_assert_eq(spec.optim.variant, CV_MOMENTUM_CLASSIC, "Keras's SGD momentum is v = mv - lr g; w += v");
    cr_assert_float_eq(spec.optim.momentum, 0.9f, 0.0f);
    cr_assert_float_eq(spec.optim.lr, 0.01f, 0.0f, "Keras's SGD learning rate 0.01");
    cv_model_spec_free(&spec);
    /* SGD without momentum is plain sgd */
    parse_canon(MLP_HEAD "dense units=3 activation=softmax\ncompile optimizer=SGD loss=mse\n",
                MLP_HEAD "dense units=3 activation=softmax\ncompile optimizer=sgd loss=mse\n");
    cr_assert_eq(spec.optim.kind, CV_OPT_SGD);
}

Test(parse, keras_bool_and_case)
{
    parse_canon(MLP_HEAD "dense units=3 use_bias=FALSE trainable=False\n" MLP_TAIL,
                MLP_HEAD "dense units=3 use_bias=false trainable=false\n" MLP_TAIL);
    cr_assert(!spec.layers[1].use_bias && !spec.layers[1].trainable);
    cv_model_spec_free(&spec);
    /* keys keep their one spelling: Keras's keyword arguments are case-sensitive too */
    parse_fails(MLP_HEAD "dense Units=3\n" MLP_TAIL, "m.model:2:", "unknown key 'Units' for dense: did you mean 'units'?");
}

Test(parse, keras_defaults_are_convoys)
{
    /* Dense(use_bias=True, kernel_initializer=glorot_uniform), BatchNormalization(momentum=0.99,
     * epsilon=0.001): a line that leaves them out means Keras's values */
    parse_ok("input shape=4\ndense units=3\nbatchnorm\n" MLP_TAIL);
    cr_assert(spec.layers[1].use_bias);
    cr_assert_eq(spec.layers[1].init, CV_INIT_GLOROT_UNIFORM);
    cr_assert_float_eq(spec.layers[2].momentum, 0.99f, 0.0f);
    cr_assert_float_eq(spec.layers[2].epsilon, 1e-3f, 0.0f);
    cr_assert_eq(spec.layers[1].act, CV_ACT_LINEAR, "Keras's activation=None");
}

Test(parse, keras_words_convoy_lacks)
{
    parse_fails(MLP_HEAD "LSTM units=3\n" MLP_TAIL, "m.model:2:",
                "unknown layer 'LSTM': Keras's LSTM is not in convoy (convoy has input, conv2d,");
    parse_fails(MLP_HEAD "ReLU\n" MLP_TAIL, "m.model:2:", "unknown layer 'ReLU': Keras's ReLU layer is `activation relu` in convoy");
    parse_fails(MLP_HEAD "leaky_relu\n" MLP_TAIL, "m.model:2:",
                "Keras's LeakyReLU layer is `activation leaky_relu alpha=0.3` (0.3 is Keras's LeakyReLU default) in convoy");
    parse_fails(MLP_HEAD "dense units=3 kernel_regularizer=l2\n" MLP_TAIL, "m.model:2:",
                "unknown key 'kernel_regularizer' for dense: Keras's kernel_regularizer= is not in convoy (dense takes units, "
                "activation, alpha, init, use_bias, trainable)");
    parse_fails(MLP_HEAD "dense units=3 name=fc1\n" MLP_TAIL, "m.model:2:", "convoy names the layers itself");
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernel=3 dilation_rate=2\nflatten\n" ONE_OUTPUT_TAIL, "m.model:2:",
                "dilation_rate=2: convoy's conv2d has no dilation (only dilation_rate=1)");
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernel=3 data_format=channels_first\nflatten\n" ONE_OUTPUT_TAIL,
                "m.model:2:", "data_format=channels_first: convoy's tensors are channels_last (NHWC) only");
    parse_fails("input shape=4,4,1\nmaxpool2d padding=same\nflatten\n" ONE_OUTPUT_TAIL, "m.model:2:",
                "padding=same: convoy's pooling windows are unpadded (only padding=valid; pad with zeropad2d before)");
    parse_fails(MLP_HEAD "dense units=3 bias_initializer=ones\n" MLP_TAIL, "m.model:2:",
                "bias_initializer=ones: convoy's biases start at zero (only bias_initializer=zeros)");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile optimizer=Nadam loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "unknown optimizer 'Nadam': Keras's Nadam is not in convoy (expected sgd, momentum, adagrad, "
                "rmsprop, adadelta, adam)");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=kl_divergence\n", "m.model:3:",
                "unknown loss 'kl_divergence': Keras's kl_divergence is not in convoy (expected mse, mae, huber,");
    parse_fails(MLP_HEAD "dense units=3 activation=gelu\n" MLP_TAIL, "m.model:2:",
                "unknown activation 'gelu': Keras's gelu is not in convoy (expected linear, relu,");
    parse_fails(MLP_HEAD "dense units=3 init=Orthogonal\n" MLP_TAIL, "m.model:2:",
                "unknown init 'Orthogonal': Keras's orthogonal is not in convoy (expected glorot_uniform,");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=mse metrics=sparse_categorical_accuracy\n",
                "m.model:3:", "Keras's sparse_categorical_accuracy is not in convoy; write metrics=accuracy (the argmax)");
    parse_fails(MLP_HEAD MLP_TAIL "fit validation_data=v.h5\n", "m.model:4:",
                "Keras's validation_data= is not in convoy; write `convoy train --val F.h5`");
}

Test(parse, keras_input_shape_errors)
{
    parse_fails(MLP_HEAD "dense units=3 input_shape=4\n" MLP_TAIL, "m.model:2:",
                "input_shape= belongs to the model's first layer (as in Keras's Sequential); this model's input is line 1");
    parse_fails("dense units=3 input_dim=4,4\n" MLP_TAIL, "m.model:1:", "input_dim= is the number of features (one number)");
    parse_fails("dense units=3 input_shape=(4,0)\n" MLP_TAIL, "m.model:1:", "bad shape '4,0'");
    parse_fails("input shape=4\ninput_layer shape=4\n" MLP_TAIL, "m.model:2:", "a second input layer (the first is on line 1)");
    parse_fails("dense units=3 input_shape=hp.choice(4,8)\n" MLP_TAIL, "m.model:1:", "input_shape= takes no hyperparameter");
    parse_fails("dense units=3 input_shape=()\n" MLP_TAIL, "m.model:1:", "bad shape ''");
    /* brackets or quotes alone are no value (a comment after `{` left only it) */
    parse_fails(MLP_HEAD MLP_TAIL "fit class_weight={#0:1}\n", "m.model:4:", "class_weight= has no value (only '{')");
    parse_fails(MLP_HEAD "dense units=3 activation=''\n" MLP_TAIL, "m.model:2:", "activation= has no value (only '''')");
}

Test(parse, suggestions)
{
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernal=3\n", "m.model:2:",
                "unknown key 'kernal' for conv2d: did you mean 'kernel'?");
    parse_fails("input shape=4,4,1\nconv2d filters=1 kernel_sise=3\n", "m.model:2:",
                "unknown key 'kernel_sise' for conv2d: did you mean 'kernel_size'?");
    parse_fails(MLP_HEAD "dence units=3\n" MLP_TAIL, "m.model:2:", "unknown layer 'dence': did you mean 'dense'?");
    parse_fails(MLP_HEAD "Desne units=3\n" MLP_TAIL, "m.model:2:", "unknown layer 'Desne': did you mean 'dense'?");
    parse_fails(MLP_HEAD "BatchNormalisation\n" MLP_TAIL, "m.model:2:",
                "unknown layer 'BatchNormalisation': did you mean 'BatchNormalization'?");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile optimizer=adma loss=sparse_categorical_crossentropy\n",
                "m.model:3:", "unknown optimizer 'adma': did you mean 'adam'?");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=sparse_categorical_crossentopy\n", "m.model:3:",
                "unknown loss 'sparse_categorical_crossentopy': did you mean 'sparse_categorical_crossentropy'?");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=mean_squared_eror\n", "m.model:3:",
                "unknown loss 'mean_squared_eror': did you mean 'mean_squared_error'?");
    parse_fails(MLP_HEAD "dense units=3 activation=sigmod\n" MLP_TAIL, "m.model:2:",
                "unknown activation 'sigmod': did you mean 'sigmoid'?");
    parse_fails(MLP_HEAD "dense units=3 init=he_normla\n" MLP_TAIL, "m.model:2:", "unknown init 'he_normla': did you mean 'he_normal'?");
    parse_fails(MLP_HEAD "dense units=3 activation=softmax\ncompile loss=mse metrics=acuracy\n", "m.model:3:",
                "unknown metric 'acuracy': did you mean 'accuracy'?");
    parse_fails(MLP_HEAD MLP_TAIL "fit epoch=3\n", "m.model:4:", "unknown key 'epoch' for fit: did you mean 'epochs'?");
    /* too far from every known word: the list instead */
    parse_fails(MLP_HEAD "dense units=3 activation=elephant\n" MLP_TAIL, "m.model:2:",
                "unknown activation 'elephant' (expected linear, relu,");
}

Test(parse, keras_hp_sites_follow_the_edits)
{
    /* the edits before a site move it; the values tune writes in are canonical */
    parse_canon("Dense units=hp.int(2,8,step=2) activation=hp.choice(ReLU,Tanh) input_dim=4\n"
                "dense units=1\ncompile optimizer=hp.choice(Adam,SGD) loss=mse\n",
                "input shape=4\ndense units=hp.int(2,8,step=2) activation=hp.choice(ReLU,Tanh)\n"
                "dense units=1\ncompile optimizer=hp.choice(Adam,SGD) loss=mse\n");
    cr_assert_eq(spec.n_hp, 3);
    const char *expr[] = {"hp.int(2,8,step=2)", "hp.choice(ReLU,Tanh)", "hp.choice(Adam,SGD)"};
    for (int h = 0; h < 3; h++) {
        cr_assert_eq(spec.hp[h].len, (int64_t)strlen(expr[h]));
        cr_assert(strncmp(spec.text + spec.hp[h].off, expr[h], strlen(expr[h])) == 0, "site %d: %s", h,
                  spec.text + spec.hp[h].off);
    }
    cr_assert_str_eq(spec.hp[1].choices[0], "relu");
    cr_assert_str_eq(spec.hp[1].choices[1], "tanh");
    cr_assert_str_eq(spec.hp[2].choices[1], "sgd");
    cr_assert_eq(spec.layers[1].act, CV_ACT_RELU);
}

Test(parse, keras_verbose)
{
    parse_ok(MLP_HEAD MLP_TAIL "fit verbose=0\n");
    cr_assert(spec.fit.silent && !spec.fit.plain);
    cv_model_spec_free(&spec);
    parse_ok(MLP_HEAD MLP_TAIL "fit verbose=1\n");
    cr_assert(!spec.fit.silent && !spec.fit.plain);
    cv_model_spec_free(&spec);
    parse_ok(MLP_HEAD MLP_TAIL "fit verbose=2\n");
    cr_assert(!spec.fit.silent && spec.fit.plain);
    cv_model_spec_free(&spec);
    parse_fails(MLP_HEAD MLP_TAIL "fit verbose=3\n", "m.model:4:", "unknown verbose '3' (expected 0, 1, 2)");
}

Test(words, distance_and_nearest)
{
    cr_assert_eq(cv_word_distance("kernal", "kernel"), 1);
    cr_assert_eq(cv_word_distance("kenrel", "kernel"), 1, "a swap of neighbours is one edit");
    cr_assert_eq(cv_word_distance("Dense", "dense"), 0, "letter case is no edit");
    cr_assert_eq(cv_word_distance("", "abc"), 3);
    cr_assert_eq(cv_word_distance("flaten", "flatten"), 1);
    cr_assert_eq(cv_word_distance("ab", "ba"), 1);
    cr_assert_eq(cv_word_distance("ca", "abc"), 3, "optimal string alignment: a swapped pair is not edited again");
    const char *words[] = {"units", "kernel", "kernel_size", NULL, "stride"};
    cr_assert_str_eq(cv_word_nearest("kernal", words, 5), "kernel");
    cr_assert_str_eq(cv_word_nearest("strid", words, 5), "stride");
    cr_assert_null(cv_word_nearest("unit_s_x", words, 5), "3 edits: too far");
    cr_assert_null(cv_word_nearest("uits_", words, 5), "2 edits in a 5-letter word: too far");
    const char *digits[] = {"0", "1", "2"};
    cr_assert_null(cv_word_nearest("3", digits, 3), "a word replaced whole is no typo");
    cr_assert(cv_word_loose_eq("MaxPooling2D", "max_pooling2d"));
    cr_assert(cv_word_loose_eq("glorot_uniform", "GlorotUniform"));
    cr_assert(!cv_word_loose_eq("maxpool2d", "max_pooling2d"));
}
