/* Transfer learning: `base checkpoint=F upto=N` takes a saved model's first layers and weights,
 * fine_tune_last unfreezes the right ones, frozen layers get no gradient storage, work or
 * optimizer state and keep their weights to the byte, and every bad base line is an error
 * naming FILE:LINE. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/model.h"

#define DIR CONVOY_TEST_TMP
#define BASE_H5 DIR "/transfer-base.h5"
#define HEAD_FILE DIR "/head.model" /* relative checkpoint paths resolve against DIR */

/* layers 1..5: dense, dropout, dense, activation, dense; weights 1 and 3 and 5 */
static const char *base_text = "input shape=6\n"
                               "dense units=8 activation=relu\n"
                               "dropout rate=0.25\n"
                               "dense units=5\n"
                               "activation leaky_relu alpha=0.1\n"
                               "dense units=3 activation=softmax\n"
                               "compile optimizer=adam loss=sparse_categorical_crossentropy\n";

#define COMPILE "compile optimizer=adam learning_rate=0.05 loss=sparse_categorical_crossentropy\n"

/* Saves the base model with recognisable weights (parameter j = 0.01 j - 1). */
static void write_base(void)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, base_text, "base.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(&spec, 4, 1, &err);
    cr_assert(net, "%s", err.msg);
    for (int64_t j = 0; j < cv_net_param_count(net); j++) cv_net_params(net)[j] = 0.01f * (float)j - 1.0f;
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
    cr_assert_eq(cv_checkpoint_save(BASE_H5, net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

static void parse_ok(cv_model_spec *spec, const char *text)
{
    cv_err err;
    write_base();
    cr_assert_eq(cv_model_parse(spec, text, HEAD_FILE, &err), 0, "%s", err.msg);
}

static void expect_error(const char *text, const char *want)
{
    cv_model_spec spec;
    cv_err err = {{0}};
    write_base();
    cr_assert_neq(cv_model_parse(&spec, text, HEAD_FILE, &err), 0, "accepted:\n%s", text);
    cr_expect(strstr(err.msg, want), "got '%s', want '%s'", err.msg, want);
}

Test(transfer, base_takes_the_first_layers_and_their_flags)
{
    cv_model_spec s;
    parse_ok(&s, "# a comment line first is fine\n"
                 "base checkpoint=transfer-base.h5 upto=3 trainable=false\n"
                 "dense units=4 activation=softmax\n" COMPILE);
    cr_assert_eq(s.n_layers, 5);
    cr_expect_str_eq(s.base.checkpoint, BASE_H5);
    cr_expect_eq(s.base.upto, 3);
    const cv_layer_kind kinds[5] = {CV_LAYER_INPUT, CV_LAYER_DENSE, CV_LAYER_DROPOUT, CV_LAYER_DENSE, CV_LAYER_DENSE};
    for (int i = 0; i < 5; i++) cr_expect_eq(s.layers[i].kind, kinds[i], "layer %d", i);
    cr_expect_eq(s.layers[1].units, 8);
    cr_expect_eq(s.layers[2].rate, 0.25f);
    cr_expect_eq(s.layers[3].line, 2, "base layers point at the base line");
    cr_expect(!s.layers[1].trainable && !s.layers[3].trainable);
    cr_expect(s.layers[4].trainable);
    cr_expect_eq(s.layers[4].in.d[0], 5, "the head's input is the base's output");
    cv_model_spec_free(&s);

    /* without trainable=, the saved flags stay (all trainable here); no upto takes every layer */
    parse_ok(&s, "base checkpoint=" BASE_H5 "\n" COMPILE);
    cr_expect_eq(s.n_layers, 6);
    cr_expect(s.layers[1].trainable && s.layers[5].trainable);
    cv_model_spec_free(&s);
}

Test(transfer, fine_tune_last_unfreezes_the_last_layers_with_weights)
{
    cv_model_spec s;
    cv_err err;
    /* base layers with weights: 1 and 3 (2 is dropout, 4 an activation) */
    parse_ok(&s, "base checkpoint=transfer-base.h5 upto=4 trainable=false\n"
                 "dense units=4 activation=softmax\n" COMPILE "fit epochs=1 fine_tune_last=1\n");
    const bool want1[6] = {true, false, true, true, true, true};
    for (int i = 1; i < s.n_layers; i++) cr_expect_eq(s.layers[i].trainable, want1[i], "K=1: layer %d", i);
    /* --fine-tune-last overrides the file's value, both ways */
    cr_assert_eq(cv_model_fine_tune(&s, 2, &err), 0, "%s", err.msg);
    cr_expect(s.layers[1].trainable && s.layers[3].trainable && s.layers[5].trainable);
    cr_assert_eq(cv_model_fine_tune(&s, 0, &err), 0, "%s", err.msg);
    cr_expect(!s.layers[1].trainable && !s.layers[3].trainable && s.layers[5].trainable);
    /* a base layer that is trainable already counts among the last K: layer 3 trainable by its
     * own flag, fine_tune_last=1 leaves layer 1 frozen */
    s.base.trainable |= UINT64_C(1) << 3;
    cr_assert_eq(cv_model_fine_tune(&s, 1, &err), 0, "%s", err.msg);
    cr_expect(!s.layers[1].trainable && s.layers[3].trainable);
    cr_expect_neq(cv_model_fine_tune(&s, 3, &err), 0);
    cr_expect(strstr(err.msg, "fine_tune_last=3 but the base (upto=4) has only 2 layers with weights"), "%s", err.msg);
    cv_model_spec_free(&s);
}

Test(transfer, bad_base_lines_name_file_and_line)
{
    expect_error("base checkpoint=transfer-base.h5 upto=6\ndense units=3 activation=softmax\n" COMPILE,
                 HEAD_FILE ":1: upto=6 is out of range: the model in " BASE_H5 " has 5 layers after its input");
    expect_error("base checkpoint=transfer-base.h5 upto=0\n" COMPILE, HEAD_FILE ":1: upto must be > 0, got 0");
    expect_error("\nbase checkpoint=no-such.h5 upto=2\n" COMPILE, HEAD_FILE ":2: base checkpoint: " DIR "/no-such.h5");
    expect_error("base upto=2\n" COMPILE, HEAD_FILE ":1: base is missing the required key checkpoint=");
    expect_error("base checkpoint=transfer-base.h5 upto=1\nconv2d filters=2 kernel=3\n" COMPILE,
                 HEAD_FILE ":2: conv2d needs an (H,W,C) input; got (8) (its input is the output (8) of base upto=1 on line 1)");
    expect_error("input shape=6\nbase checkpoint=transfer-base.h5 upto=1\n" COMPILE,
                 HEAD_FILE ":2: base must be the first statement (line 1 has `input` before it)");
    expect_error("base checkpoint=transfer-base.h5 upto=1\ninput shape=6\n" COMPILE,
                 HEAD_FILE ":2: no input line with `base`: the input comes from the base model (line 1)");
    expect_error("base checkpoint=transfer-base.h5 upto=1\nbase checkpoint=transfer-base.h5\n" COMPILE,
                 HEAD_FILE ":2: base must be the first statement");
    expect_error("input shape=6\ndense units=3 activation=softmax\n" COMPILE "fit fine_tune_last=1\n",
                 HEAD_FILE ":4: fine-tuning needs a `base checkpoint=F.h5 upto=N` line");
    expect_error("base checkpoint=transfer-base.h5 upto=3\ndense units=3 activation=softmax\n" COMPILE
                 "fit fine_tune_last=3\n", HEAD_FILE ":4: fine_tune_last=3 but the base (upto=3) has only 2 layers");
    expect_error("base checkpoint=transfer-base.h5 upto=1 units=3\n" COMPILE,
                 HEAD_FILE ":1: unknown key 'units' for base (valid keys: checkpoint, trainable, upto)");
    /* a file that is not a checkpoint */
    FILE *f = fopen(DIR "/not-a-checkpoint.h5", "w");
    cr_assert(f);
    fputs("text", f);
    fclose(f);
    expect_error("base checkpoint=not-a-checkpoint.h5\n" COMPILE, HEAD_FILE ":1: base checkpoint: " DIR "/not-a-checkpoint.h5");
    expect_error("base checkpoint=/dev/null\n" COMPILE, HEAD_FILE ":1: base checkpoint: /dev/null is not a regular file");
}

/* A checkpoint whose saved model text names itself as its base is an error, not a recursion. */
Test(transfer, a_checkpoint_that_is_its_own_base)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, base_text, "base.model", &err), 0, "%s", err.msg);
    free(spec.text);
    spec.text = strdup("base checkpoint=transfer-loop.h5\n" COMPILE);
    cv_net *net = cv_net_create(&spec, 4, 1, &err);
    cr_assert(net, "%s", err.msg);
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
    cr_assert_eq(cv_checkpoint_save(DIR "/transfer-loop.h5", net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);
    expect_error("base checkpoint=transfer-loop.h5\n" COMPILE, "bases nested more than 4 deep");
}

static void summary_counts(const cv_model_spec *s, char *buf, size_t size)
{
    FILE *f = fmemopen(buf, size, "w");
    cr_assert(f);
    cv_model_summary(s, f);
    fclose(f);
}

/* A frozen layer between trainable ones (frozen 1 and 3, trainable 5 and the head 6): */
static const char *mixed = "base checkpoint=transfer-base.h5 trainable=false\n"
                           "dense units=4 activation=softmax\n" COMPILE "fit fine_tune_last=1\n";

Test(transfer, summary_counts_trainable_and_frozen_parameters)
{
    cv_model_spec s;
    parse_ok(&s, mixed);
    char buf[4096];
    summary_counts(&s, buf, sizeof buf);
    /* frozen: 6*8+8 + 8*5+5 = 101; trainable: 5*3+3 + 3*4+4 = 34 */
    cr_expect(strstr(buf, "Total params: 135\nTrainable params: 34\nNon-trainable params: 101\n"), "%s", buf);
    cv_model_spec_free(&s);
}

/* One training step on a fixed batch: forward, backward, optimizer. */
static void step(cv_net *net, cv_optim *opt)
{
    float x[4 * 6];
    const int32_t y[4] = {0, 3, 1, 2};
    const int64_t ids[4] = {0, 1, 2, 3};
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    cv_net_zero_grad(net);
    cv_net_forward(net, x, 4, true, 3, 0, ids);
    cv_net_backward(net, y, NULL, 4, 4.0);
    cv_optim_step(opt, cv_net_params(net), cv_net_grads(net));
}

Test(transfer, frozen_layers_have_no_gradients_no_state_and_keep_their_weights)
{
    cv_model_spec s;
    cv_err err;
    parse_ok(&s, mixed);
    cv_net *net = cv_net_create(&s, 4, 9, &err);
    cr_assert(net, "%s", err.msg);
    cr_assert_eq(cv_checkpoint_load_base(net, &err), 0, "%s", err.msg);
    cr_expect_eq(cv_net_param_count(net), 135);
    cr_expect_eq(cv_net_grad_count(net), 34, "the gradient buffer holds the trainable parameters only");
    cv_optim opt;
    cr_assert_eq(cv_optim_init(&opt, &s.optim, cv_net_grad_count(net), &err), 0, "%s", err.msg);
    cr_expect_eq(opt.n, 34, "adam's moments cover the trainable parameters only");
    int64_t offs[CV_MAX_LAYERS];
    cr_expect_eq(cv_net_grad_layers(net, offs), 2);
    cr_expect(offs[0] == 0 && offs[1] == 18, "gradient offsets %lld %lld", (long long)offs[0], (long long)offs[1]);

    /* the base weights arrived: layer 1's kernel starts at the base's parameter 0 (-1.0) */
    const cv_param_view v1 = cv_net_param_view(net, 1), v3 = cv_net_param_view(net, 3),
                        v5 = cv_net_param_view(net, 5), v6 = cv_net_param_view(net, 6);
    cr_expect_eq(cv_net_params(net)[v1.kernel_off], -1.0f);
    cr_expect_eq(cv_net_params(net)[v5.bias_off + 2], 0.01f * 118 - 1.0f);
    cr_expect(cv_net_layer_trainable(net, 5) && cv_net_layer_trainable(net, 6));
    cr_expect(!cv_net_layer_trainable(net, 1) && !cv_net_layer_trainable(net, 3) && !cv_net_layer_trainable(net, 2));

    const int64_t n = cv_net_param_count(net);
    float *before = malloc(sizeof(float) * (size_t)n);
    memcpy(before, cv_net_params(net), sizeof(float) * (size_t)n);
    double bwd[CV_MAX_LAYERS] = {0}, fwd[CV_MAX_LAYERS] = {0};
    cv_net_profile(net, fwd, bwd);
    for (int k = 0; k < 5; k++) step(net, &opt);
    const float *w = cv_net_params(net);
    cr_expect_eq(memcmp(w + v1.kernel_off, before + v1.kernel_off, sizeof(float) * (size_t)(v1.kernel_n + v1.bias_n)), 0,
                 "frozen layer 1 changed");
    cr_expect_eq(memcmp(w + v3.kernel_off, before + v3.kernel_off, sizeof(float) * (size_t)(v3.kernel_n + v3.bias_n)), 0,
                 "frozen layer 3 changed");
    cr_expect_neq(memcmp(w + v5.kernel_off, before + v5.kernel_off, sizeof(float) * (size_t)v5.kernel_n), 0,
                  "fine-tuned layer 5 did not learn");
    cr_expect_neq(memcmp(w + v6.kernel_off, before + v6.kernel_off, sizeof(float) * (size_t)v6.kernel_n), 0,
                  "the new head did not learn");
    /* backward stops at the first trainable layer (5): nothing below it is visited */
    for (int i = 1; i < 5; i++) cr_expect_eq(bwd[i], 0.0, "backward visited frozen layer %d", i);
    cr_expect_gt(bwd[5] + bwd[6], 0.0);
    /* and it costs the weight gradients of trainable layers plus input gradients above layer 5 */
    double f, b;
    cv_net_layer_flops(net, 3, &f, &b);
    cr_expect(f > 0 && b == 0.0, "layer 3 backward flops %g", b);
    cv_net_layer_flops(net, 5, &f, &b);
    cr_expect(b == f, "first trainable layer: weight gradient only (%g vs %g)", b, f);
    cv_net_layer_flops(net, 6, &f, &b);
    cr_expect(b == 2 * f);
    free(before);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_model_spec_free(&s);
}

/* A frozen layer ABOVE a trainable one passes the input gradient down but computes no weight
 * gradient: the trainable layers' gradients equal those of the same net with everything
 * trainable, and the frozen layer's flops are its input gradient alone. */
Test(transfer, frozen_layer_between_trainable_ones)
{
    const char *text = "input shape=6\n"
                       "dense units=8 activation=tanh\n"
                       "dense units=5 activation=tanh trainable=false\n"
                       "dense units=4 activation=softmax\n" COMPILE;
    cv_model_spec s, all;
    cv_err err;
    cr_assert_eq(cv_model_parse(&s, text, "m.model", &err), 0, "%s", err.msg);
    cr_assert_eq(cv_model_parse(&all, text, "m.model", &err), 0, "%s", err.msg);
    all.layers[2].trainable = true;
    cv_net *a = cv_net_create(&s, 4, 5, &err), *b = cv_net_create(&all, 4, 5, &err);
    cr_assert(a && b, "%s", err.msg);
    cr_expect_eq(cv_net_grad_count(a), 6 * 8 + 8 + 5 * 4 + 4);
    /* same weights layer by layer (the layouts differ: a puts frozen layer 2 last) */
    for (int i = 1; i <= 3; i++) {
        const cv_param_view va = cv_net_param_view(a, i), vb = cv_net_param_view(b, i);
        memcpy(cv_net_params(a) + va.kernel_off, cv_net_params(b) + vb.kernel_off,
               sizeof(float) * (size_t)(vb.kernel_n + vb.bias_n));
    }
    cv_optim oa, ob;
    cr_assert_eq(cv_optim_init(&oa, &s.optim, cv_net_grad_count(a), &err), 0);
    cr_assert_eq(cv_optim_init(&ob, &all.optim, cv_net_grad_count(b), &err), 0);
    step(a, &oa);
    step(b, &ob);
    for (int i = 1; i <= 3; i += 2) {
        const cv_param_view va = cv_net_param_view(a, i), vb = cv_net_param_view(b, i);
        for (int64_t j = 0; j < va.kernel_n + va.bias_n; j++)
            cr_assert_eq(cv_net_grads(a)[va.kernel_off + j], cv_net_grads(b)[vb.kernel_off + j], "layer %d grad %lld", i,
                         (long long)j);
    }
    double f, bw;
    cv_net_layer_flops(a, 2, &f, &bw);
    cr_expect(bw == f, "frozen middle layer: input gradient only");
    cv_net_layer_flops(b, 2, &f, &bw);
    cr_expect(bw == 2 * f);
    cv_optim_free(&oa);
    cv_optim_free(&ob);
    cv_net_free(a);
    cv_net_free(b);
    cv_model_spec_free(&s);
    cv_model_spec_free(&all);
}

/* A checkpoint of a model with a base stands alone: its text has the base written out with the
 * trainable flags, parses back to the same layers, and resume insists on the same flags. */
Test(transfer, checkpoint_text_stands_alone_and_resume_checks_trainable_flags)
{
    cv_model_spec s, back;
    cv_err err;
    parse_ok(&s, "# head\nbase checkpoint=transfer-base.h5 trainable=false\n"
                 "   upto=4\n" /* a continued base line */
                 "dense units=4 activation=softmax\n" COMPILE "fit epochs=2\n  fine_tune_last=1 batch_size=3\n");
    cv_net *net = cv_net_create(&s, 4, 9, &err);
    cr_assert(net, "%s", err.msg);
    cv_optim opt;
    cr_assert_eq(cv_optim_init(&opt, &s.optim, cv_net_grad_count(net), &err), 0);
    step(net, &opt);
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
    cr_assert_eq(cv_checkpoint_save(DIR "/transfer-head.h5", net, &nz, &opt, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_checkpoint_spec(DIR "/transfer-head.h5", &back, &err), 0, "%s", err.msg);
    cr_expect(!strstr(back.text, "\nbase") && !strstr(back.text, "fine_tune_last"), "%s", back.text);
    cr_expect(strstr(back.text, "dense units=8 activation=relu init=glorot_uniform use_bias=true trainable=false\n"), "%s",
              back.text);
    cr_expect(strstr(back.text, "fit epochs=2\n   batch_size=3\n"), "%s", back.text);
    cr_assert_eq(back.n_layers, s.n_layers);
    for (int i = 0; i < s.n_layers; i++) {
        cr_expect_eq(back.layers[i].kind, s.layers[i].kind, "layer %d", i);
        cr_expect_eq(back.layers[i].trainable, s.layers[i].trainable, "layer %d", i);
        cr_expect_eq(cv_layer_param_count(&back.layers[i]), cv_layer_param_count(&s.layers[i]), "layer %d", i);
    }
    cr_expect_eq(back.layers[4].alpha, 0.1f);
    cr_expect_eq(back.fit.batch_size, 3);

    /* resuming with another trainable set is refused */
    cr_assert_eq(cv_model_fine_tune(&s, 2, &err), 0);
    cv_net *other = cv_net_create(&s, 4, 9, &err);
    cv_optim o2;
    cr_assert_eq(cv_optim_init(&o2, &s.optim, cv_net_grad_count(other), &err), 0);
    cv_train_state st;
    int has_best;
    cv_normalizer nz2;
    cr_expect_neq(cv_checkpoint_resume(DIR "/transfer-head.h5", other, &o2, &nz2, &st, NULL, &has_best, &err), 0);
    cr_expect(strstr(err.msg, "layer 1 (dense) is frozen in the checkpoint but trainable in " HEAD_FILE ":2"), "%s",
              err.msg);
    cv_optim_free(&o2);
    cv_net_free(other);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_model_spec_free(&back);
    cv_model_spec_free(&s);
}
