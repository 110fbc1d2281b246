/* The table of layer kinds (convoy/layers.h): every descriptor is consistent with its place and
 * with its flags, every kind's model-file line parses back to the same layer, and the counts a
 * descriptor gives (parameters, kernel layout) are the ones worked out by hand. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/layers.h"
#include "convoy/model.h"

Test(layer_kinds, each_descriptor_fits_its_place)
{
    for (int k = 0; k < CV_LAYER_KIND_COUNT; k++) {
        const cv_layer_kind_desc *d = cv_layer_kinds[k];
        cr_assert_not_null(d, "kind %d has no descriptor", k);
        cr_assert_eq((int)d->kind, k, "descriptor %s sits at %d but says %d", d->name, k, (int)d->kind);
        cr_assert(d->name && d->keras_name && d->keras_class, "kind %d lacks a name", k);
        cr_assert_eq((int)cv_layer_kind_find(d->name), k, "%s is not found by its name", d->name);
        for (int j = 0; j < k; j++) cr_assert_str_neq(cv_layer_kinds[j]->name, d->name);
        cr_assert_not_null(d->infer, "%s has no shape rule", d->name);
        cr_assert_eq(d->required & ~d->keys, 0u, "%s requires a key it does not take", d->name);
        cr_assert_eq(d->bare_key & ~d->keys, 0u, "%s's bare word is a key it does not take", d->name);
        if (k != CV_LAYER_INPUT) cr_assert(d->forward && d->backward, "%s has no passes", d->name);
        const bool weights = d->flags & CV_KIND_WEIGHTS;
        cr_assert_eq(weights, d->kernel_dims != NULL, "%s: weights flag and kernel layout disagree", d->name);
        cr_assert_eq(weights, d->flops != NULL, "%s: weights without a FLOP count (or the reverse)", d->name);
        cr_assert_eq(weights, (d->keys & CV_KEY(CV_KEY_TRAINABLE)) != 0, "%s: trainable= only with weights", d->name);
        cr_assert_eq((d->flags & CV_KIND_ACT) != 0, (d->keys & CV_KEY(CV_KEY_ACTIVATION)) != 0,
                     "%s: an activation flag without the key (or the reverse)", d->name);
        if (d->flags & (CV_KIND_POOL | CV_KIND_WINNERS)) cr_assert_not_null(d->window, "%s pools without a window", d->name);
        if (d->flags & CV_KIND_EPILOGUE) cr_assert(weights, "%s fuses a bias it does not have", d->name);
    }
    cr_assert_eq(cv_layer_kind_find("conv3d"), CV_LAYER_KIND_COUNT);
    cr_assert_str_eq(cv_layer_kind_name((cv_layer_kind)-1), "?");
    cr_assert_str_eq(cv_layer_kind_name(CV_LAYER_KIND_COUNT), "?");
}

/* every kind, each with keys off their defaults */
static const char *const every_kind =
    "input shape=12,10,2 normalize=standardize\n"
    "conv2d filters=4 kernel=3 stride=2 padding=same pad_mode=nearest activation=leaky_relu alpha=0.125 "
    "init=he_normal use_bias=false trainable=false\n"
    "maxpool2d pool=2 stride=1\n"
    "avgpool2d pool=2\n"
    "minpool2d pool=1 stride=1\n"
    "activation tanh\n"
    "flatten\n"
    "dense units=7 activation=relu init=zeros\n"
    "dropout rate=0.25\n"
    "dense units=3 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy\n";

static void parse(cv_model_spec *s, const char *text)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(s, text, "k.model", &err), 0, "%s\n%s", err.msg, text);
}

static void same_layer(const cv_layer_spec *a, const cv_layer_spec *b, int i)
{
    cr_assert_eq(a->kind, b->kind, "layer %d", i);
    cr_assert_eq(memcmp(&a->in, &b->in, sizeof a->in), 0, "layer %d input shape", i);
    cr_assert_eq(memcmp(&a->out, &b->out, sizeof a->out), 0, "layer %d output shape", i);
    cr_assert_eq(memcmp(&a->shape, &b->shape, sizeof a->shape), 0, "layer %d shape", i);
    cr_assert_eq(a->normalize, b->normalize, "layer %d", i);
    cr_assert(a->filters == b->filters && !memcmp(a->kernel, b->kernel, sizeof a->kernel) &&
              !memcmp(a->stride, b->stride, sizeof a->stride) && !memcmp(a->pool, b->pool, sizeof a->pool),
              "layer %d window", i);
    cr_assert(a->same == b->same && !memcmp(a->pad, b->pad, sizeof a->pad) && a->pad_nearest == b->pad_nearest,
              "layer %d padding", i);
    cr_assert(a->units == b->units && a->rate == b->rate, "layer %d", i);
    cr_assert(a->act == b->act && a->alpha == b->alpha && a->init == b->init, "layer %d activation", i);
    cr_assert(a->use_bias == b->use_bias && a->trainable == b->trainable, "layer %d flags", i);
    cr_assert(a->momentum == b->momentum && a->epsilon == b->epsilon && a->center == b->center && a->scale == b->scale,
              "layer %d batchnorm keys", i);
    cr_assert(a->projection == b->projection && a->block == b->block && !memcmp(&a->skip, &b->skip, sizeof a->skip),
              "layer %d residual block", i);
}

/* kinds that take an (H,W,C) input and give a vector cannot all follow each other: these models
 * hold the ones every_kind does not */
static const char *const more_kinds[] = {
    "input shape=5,4,3\nconv2d filters=2 kernel=2\nglobalavgpool2d\ndense units=2 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy\n",
    "input shape=5,4,3 normalize=none\nglobalmaxpool2d\ndense units=2 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy\n",
    /* any kernel shape and numeric padding, every form of padding= */
    "input shape=9,7,3\nzeropad2d padding=1,2,0,3\nzeropad2d padding=2\nzeropad2d padding=1,0\n"
    "conv2d filters=5 kernel=3,2 stride=1,2 padding=1,0\nconv2d filters=3 kernel=3 padding=1,2,0,1\n"
    "conv2d filters=2 kernel=3 stride=2,1 padding=2 pad_mode=nearest\nmaxpool2d pool=2,1\n"
    "avgpool2d pool=1,2 stride=1\nflatten\ndense units=2 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy\n",
    /* batchnorm on maps and on features, keys off their defaults (momentum= and epsilon= are
     * also compile's: each statement takes its own) */
    "input shape=5,4,3\nbatchnorm momentum=0.9 epsilon=0.01 center=false\nconv2d filters=2 kernel=2\n"
    "batchnorm scale=false trainable=false\nflatten\ndense units=3\nbatchnorm\ndense units=2 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy optimizer=adam epsilon=1e-6\n",
    /* residual blocks: option A, option B with its keys, nested */
    "input shape=8,8,3\nresidual\nconv2d filters=4 kernel=3 stride=2 padding=same\nend\n"
    "residual shortcut=projection\nconv2d filters=6 kernel=3 padding=same\nresidual\nactivation relu\nend\n"
    "end init=he_normal trainable=false\nflatten\ndense units=2 activation=softmax\n"
    "compile loss=sparse_categorical_crossentropy\n",
};

Test(layer_kinds, each_line_parses_back)
{
    bool seen[CV_LAYER_KIND_COUNT] = {false};
    for (size_t m = 0; m < 1 + sizeof more_kinds / sizeof more_kinds[0]; m++) {
        cv_model_spec s, back;
        parse(&s, m == 0 ? every_kind : more_kinds[m - 1]);
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        cr_assert_not_null(f);
        for (int i = 0; i < s.n_layers; i++) {
            seen[s.layers[i].kind] = true;
            cv_layer_write_line(f, &s.layers[i]);
        }
        fputs("compile loss=sparse_categorical_crossentropy\n", f);
        cr_assert_eq(fclose(f), 0);
        parse(&back, text);
        cr_assert_eq(back.n_layers, s.n_layers);
        for (int i = 0; i < s.n_layers; i++) same_layer(&s.layers[i], &back.layers[i], i);
        free(text);
        cv_model_spec_free(&s);
        cv_model_spec_free(&back);
    }
    for (int k = 0; k < CV_LAYER_KIND_COUNT; k++)
        cr_assert(seen[k], "no %s in the models: add it to every_kind or more_kinds", cv_layer_kind_name(k));
}

Test(layer_kinds, counts_and_layouts_by_hand)
{
    cv_model_spec s;
    parse(&s, every_kind);
    /* 12x10x2 -> conv 3x3 stride 2 same: 6x5x4; maxpool 2 stride 1: 5x4x4; avgpool 2: 2x2x4;
     * minpool 1: 2x2x4; flatten 16; dense 7; dropout 7; dense 3 */
    const int64_t params[] = {0, 3 * 3 * 2 * 4, 0, 0, 0, 0, 0, 16 * 7 + 7, 0, 7 * 3 + 3};
    for (int i = 0; i < s.n_layers; i++)
        cr_assert_eq(cv_layer_param_count(&s.layers[i]), params[i], "layer %d (%s)", i,
                     cv_layer_kind_name(s.layers[i].kind));
    int64_t d[4];
    cr_assert_eq(cv_layer_kernel_dims(&s.layers[1], d), 4);
    cr_assert(d[0] == 3 && d[1] == 3 && d[2] == 2 && d[3] == 4, "conv kernel (KH,KW,Cin,Cout)");
    cr_assert_eq(cv_layer_kernel_dims(&s.layers[7], d), 2);
    cr_assert(d[0] == 16 && d[1] == 7, "dense kernel (in,out)");
    cr_assert_eq(cv_layer_kernel_dims(&s.layers[2], d), 0, "a pool has no kernel");
    const cv_shape out3 = s.layers[3].out, out6 = s.layers[6].out;
    cr_assert(out3.rank == 3 && out3.d[0] == 2 && out3.d[1] == 2 && out3.d[2] == 4, "avgpool output");
    cr_assert(out6.rank == 1 && out6.d[0] == 16, "flatten output");
    cr_assert(s.layers[2].stride[0] == 1 && s.layers[2].stride[1] == 1, "a pooling stride given stays");
    cr_assert(s.layers[3].stride[0] == 2 && s.layers[3].stride[1] == 2, "a pooling stride defaults to its pool");
    cr_assert_eq(cv_layer_act(&s.layers[5]), CV_ACT_TANH);
    cr_assert_eq(cv_layer_act(&s.layers[8]), CV_ACT_LINEAR, "dropout has no activation of its own");
    cr_assert(cv_layer_has_weights(&s.layers[1]) && !cv_layer_has_weights(&s.layers[2]));
    cv_model_spec_free(&s);
}
