/* No hidden state: a training step's arithmetic is a function of its inputs only. N steps, then
 * what a process may run in between (an evaluation of a large batch, which grows the buffers;
 * an earlier tuning trial's larger network, which grows the kernels' scratch memory), then N
 * more steps must give the bits of 2N steps in a fresh process. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "convoy/optim.h"
#include "convoy/rng.h"

/* fmnist-cnn at batch 64: a tiled trunk (16 tiles of 4), Winograd conv2, dropout */
static const char *cnn =
    "input shape=28,28,1\n"
    "conv2d filters=32 kernel=3 activation=relu\n"
    "maxpool2d pool=2\n"
    "conv2d filters=64 kernel=3 activation=relu\n"
    "maxpool2d pool=2\n"
    "flatten\n"
    "dense units=128 activation=relu\n"
    "dropout rate=0.3\n"
    "dense units=10 activation=softmax\n"
    "compile optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy\n";

/* a different, wider network: another trial of a search */
static const char *other =
    "input shape=28,28,1\n"
    "conv2d filters=48 kernel=5 padding=same activation=relu\n"
    "avgpool2d pool=2\n"
    "conv2d filters=96 kernel=3 activation=relu\n"
    "flatten\n"
    "dense units=300 activation=relu\n"
    "dense units=10 activation=softmax\n"
    "compile optimizer=sgd learning_rate=0.01 loss=sparse_categorical_crossentropy\n";

enum { BATCH = 64, EVAL = 512, SAMPLES = 4096, D = 28 * 28 };

typedef struct {
    float *x;
    int32_t *y;
} data;

static data make_data(void)
{
    data d = {malloc(sizeof(float) * (size_t)SAMPLES * D), malloc(sizeof(int32_t) * SAMPLES)};
    cv_rng r = {cv_key(7, 0, 0, 0)};
    for (int64_t i = 0; i < (int64_t)SAMPLES * D; i++) d.x[i] = (float)((cv_rng_next(&r) >> 40) * 0x1.0p-24);
    for (int i = 0; i < SAMPLES; i++) d.y[i] = (int32_t)(cv_rng_next(&r) % 10);
    return d;
}

typedef struct {
    cv_model_spec spec;
    cv_net *net;
    cv_optim opt;
} model;

static void open_model(model *m, const char *text, int max_batch)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(&m->spec, text, "m.model", &err), 0, "%s", err.msg);
    m->net = cv_net_create(&m->spec, max_batch, 3, &err);
    cr_assert_not_null(m->net, "%s", err.msg);
    cr_assert_eq(cv_optim_init(&m->opt, &m->spec.optim, cv_net_grad_count(m->net), &err), 0, "%s", err.msg);
}

static void close_model(model *m)
{
    cv_optim_free(&m->opt);
    cv_net_free(m->net);
    cv_model_spec_free(&m->spec);
}

/* training steps [from, to): batch k is samples [64k, 64k + 64) */
static void steps(model *m, const data *d, int from, int to)
{
    int64_t ids[BATCH];
    for (int k = from; k < to; k++) {
        const int s = k * BATCH % SAMPLES;
        for (int i = 0; i < BATCH; i++) ids[i] = s + i;
        cv_net_zero_grad(m->net);
        cv_net_forward(m->net, d->x + (size_t)s * D, BATCH, true, 3, 0, ids);
        cv_net_backward(m->net, d->y + s, NULL, BATCH, BATCH);
        cv_optim_step(&m->opt, cv_net_params(m->net), cv_net_grads(m->net));
    }
}

/* everything a process might run between two training steps */
static void in_between(model *m, const data *d)
{
    cv_err err;
    cr_assert_eq(cv_net_reserve(m->net, EVAL, &err), 0, "%s", err.msg);
    cv_metrics met = {0};
    cv_net_forward(m->net, d->x, EVAL, false, 0, 0, NULL);
    cv_net_metrics(m->net, d->y, NULL, EVAL, &met);
    model o;
    open_model(&o, other, EVAL);
    steps(&o, d, 0, 2);
    cv_net_forward(o.net, d->x, EVAL, false, 0, 0, NULL);
    close_model(&o);
}

static void same_bits_after_other_work(const char *text)
{
    const data d = make_data();
    const int N = 4;
    model a, b;
    open_model(&a, text, BATCH);
    steps(&a, &d, 0, 2 * N);
    open_model(&b, text, BATCH);
    steps(&b, &d, 0, N);
    in_between(&b, &d);
    steps(&b, &d, N, 2 * N);
    const int64_t n = cv_net_param_count(a.net);
    const float *pa = cv_net_params(a.net), *pb = cv_net_params(b.net);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) differ += memcmp(&pa[i], &pb[i], sizeof(float)) != 0;
    cr_expect_eq(differ, 0, "%lld of %lld weights differ after an evaluation and another network in between",
                 (long long)differ, (long long)n);
    cr_expect_eq(memcmp(a.opt.s1, b.opt.s1, sizeof(float) * (size_t)cv_net_grad_count(a.net)), 0,
                 "Adam's first moments differ");
    close_model(&a);
    close_model(&b);
    free(d.x);
    free(d.y);
}

Test(exactness, cnn_step_ignores_what_ran_before) { same_bits_after_other_work(cnn); }

/* the same with the spatial layers run whole (no tiles) */
Test(exactness, untiled_cnn_step_ignores_what_ran_before)
{
    setenv("CONVOY_TILE", "0", 1);
    same_bits_after_other_work(cnn);
}
