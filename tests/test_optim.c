/* Optimizers against numbers computed by hand: three steps of every rule from w0 = [1,2,3,4]
 * with the gradients g1..g3 below, the expected weights worked out in double (python3) from
 * the formula quoted next to each table; Keras's one-step goldens; and
 * the defaults. Float32 updates agree with the double values to |d| <= 2e-6 (1 + |w|). And
 * the vectorised, threaded step against the formulas' plain scalar loop, bit for bit. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/optim.h"

#define N 4
static const float w0[N] = {1, 2, 3, 4};
static const float grads[3][N] = {{1, 6, 7, 2}, {0.5f, -3, 2, -1}, {-2, 1, 0.25f, 4}};

/* Runs `steps` steps of cfg and checks the weights after each against expect[step]. */
static void check_steps(cv_optim_config cfg, const double expect[3][N], int steps, double tol)
{
    cv_optim o;
    cv_err err = {{0}};
    cr_assert_eq(cv_optim_init(&o, &cfg, N, &err), 0, "%s", err.msg);
    float w[N];
    memcpy(w, w0, sizeof w);
    for (int s = 0; s < steps; s++) {
        cv_optim_step(&o, w, grads[s]);
        cr_assert_eq(o.t, s + 1);
        for (int i = 0; i < N; i++)
            cr_expect_leq(fabs(w[i] - expect[s][i]), tol * (1.0 + fabs(expect[s][i])),
                          "%s step %d w[%d] = %.9g, expected %.9g", cv_optim_name(cfg.kind),
                          s + 1, i, w[i], expect[s][i]);
    }
    cv_optim_free(&o);
}

static cv_optim_config with_lr(cv_optim_kind k, float lr)
{
    cv_optim_config c = cv_optim_defaults(k);
    c.lr = lr;
    return c;
}

/* w -= lr g, lr = 0.1 */
Test(optim, sgd_three_steps)
{
    static const double e[3][N] = {{0.9, 1.4, 2.3, 3.8}, {0.85, 1.7, 2.1, 3.9}, {1.05, 1.6, 2.075, 3.5}};
    check_steps(with_lr(CV_OPT_SGD, 0.1f), e, 3, 2e-6);
}

/* EWA: v = 0.9 v + 0.1 g (v0 = 0); w -= lr v, lr = 0.5 */
Test(optim, momentum_ewa_three_steps)
{
    static const double e[3][N] = {
        {0.95, 1.7, 2.65, 3.9}, {0.88, 1.58, 2.235, 3.86}, {0.917, 1.422, 1.849, 3.624}};
    cv_optim_config c = with_lr(CV_OPT_MOMENTUM, 0.5f);
    cr_assert_eq(c.variant, CV_MOMENTUM_EWA, "the course's EWA form is the default");
    check_steps(c, e, 3, 2e-6);
}

/* classic (Keras SGD momentum): v = 0.9 v - lr g; w += v, lr = 0.1 */
Test(optim, momentum_classic_three_steps)
{
    static const double e[3][N] = {
        {0.9, 1.4, 2.3, 3.8}, {0.76, 1.16, 1.47, 3.72}, {0.834, 0.844, 0.698, 3.248}};
    cv_optim_config c = with_lr(CV_OPT_MOMENTUM, 0.1f);
    c.variant = CV_MOMENTUM_CLASSIC;
    check_steps(c, e, 3, 2e-6);
}

/* nesterov (Keras): v = 0.9 v - lr g; w += 0.9 v - lr g, lr = 0.1 */
Test(optim, momentum_nesterov_three_steps)
{
    static const double e[3][N] = {
        {0.81, 0.86, 1.67, 3.62}, {0.634, 0.944, 0.723, 3.648}, {0.9006, 0.5596, 0.0032, 2.8232}};
    cv_optim_config c = with_lr(CV_OPT_MOMENTUM, 0.1f);
    c.variant = CV_MOMENTUM_NESTEROV;
    check_steps(c, e, 3, 2e-6);
}

/* a = 0.1 initially; a += g^2; w -= lr g / sqrt(a + 1e-7), lr = 0.5 */
Test(optim, adagrad_three_steps)
{
    static const double e[3][N] = {
        {0.523268727, 1.500693002, 2.500509425, 3.506135208},
        {0.3081029936, 1.724051761, 2.363278264, 3.727538927},
        {0.7404406907, 1.650410784, 2.346134455, 3.292138584}};
    check_steps(with_lr(CV_OPT_ADAGRAD, 0.5f), e, 3, 2e-6);
}

/* S = 0.9 S + 0.1 g^2 (S0 = 0); w -= lr g / sqrt(S + 1e-7), lr = 0.5 */
Test(optim, rmsprop_three_steps)
{
    static const double e[3][N] = {
        {-0.5811380395, 0.4188611919, 1.418861186, 2.418861368},
        {-1.3183475, 1.156070964, 0.9629004382, 3.156071068},
        {0.0909420107, 0.9004493832, 0.9028656567, 1.746781453}};
    check_steps(with_lr(CV_OPT_RMSPROP, 0.5f), e, 3, 2e-6);
}

/* Eg = 0.95 Eg + 0.05 g^2; d = sqrt(Ed + 1e-7) / sqrt(Eg + 1e-7) g; Ed = 0.95 Ed + 0.05 d^2;
 * w -= lr d, lr = 0.5. The updates are ~1e-3, so the tolerance is tighter here. */
Test(optim, adadelta_three_steps)
{
    static const double e[3][N] = {
        {0.9992928939, 1.999292893, 2.999292893, 3.999292893},
        {0.9988364591, 1.999749329, 2.999011593, 3.999749329},
        {0.9997960842, 1.999581556, 2.998974578, 3.998789703}};
    check_steps(with_lr(CV_OPT_ADADELTA, 0.5f), e, 3, 3e-7);
}

/* m = 0.9 m + 0.1 g; v = 0.999 v + 0.001 g^2; w -= lr (m / (1 - 0.9^t)) /
 * (sqrt(v / (1 - 0.999^t)) + 1e-7), lr = 0.5 */
Test(optim, adam_three_steps)
{
    static const double e[3][N] = {
        {0.50000005, 1.500000008, 2.500000007, 3.500000025},
        {0.03391028956, 1.366831491, 2.075611317, 3.366831514},
        {0.1370887954, 1.217883432, 1.736778702, 3.037775726}};
    check_steps(with_lr(CV_OPT_ADAM, 0.5f), e, 3, 2e-6);
}

/* The goldens quoted in the course notes (Keras, lr = 0.5, one step), to 4 decimals. */
Test(optim, keras_single_step_goldens)
{
    static const struct {
        cv_optim_kind kind;
        double w[N];
    } gold[] = {
        {CV_OPT_ADAM, {0.5, 1.5, 2.5, 3.5}},
        {CV_OPT_RMSPROP, {-0.5811, 0.4189, 1.4189, 2.4189}},
        {CV_OPT_ADAGRAD, {0.5233, 1.5007, 2.5005, 3.5061}},
        {CV_OPT_ADADELTA, {0.9993, 1.9993, 2.9993, 3.9993}},
    };
    for (size_t k = 0; k < sizeof gold / sizeof gold[0]; k++) {
        cv_optim_config c = with_lr(gold[k].kind, 0.5f);
        cv_optim o;
        cr_assert_eq(cv_optim_init(&o, &c, N, NULL), 0);
        float w[N];
        memcpy(w, w0, sizeof w);
        cv_optim_step(&o, w, grads[0]);
        for (int i = 0; i < N; i++)
            cr_expect_leq(fabs(w[i] - gold[k].w[i]), 0.5e-4 + 1e-6, "%s w[%d] = %.6f, golden %.4f",
                          cv_optim_name(gold[k].kind), i, w[i], gold[k].w[i]);
        cv_optim_free(&o);
    }
}

Test(optim, keras_defaults)
{
    for (int k = 0; k < CV_OPT_COUNT; k++) {
        const cv_optim_config c = cv_optim_defaults((cv_optim_kind)k);
        cr_expect_eq(c.kind, (cv_optim_kind)k);
        const float lr = (k == CV_OPT_SGD || k == CV_OPT_MOMENTUM) ? 0.01f : 0.001f;
        cr_expect_eq(c.lr, lr, "%s lr %g", cv_optim_name(k), c.lr);
        cr_expect_eq(c.epsilon, 1e-7f, "%s epsilon %g", cv_optim_name(k), c.epsilon);
    }
    cr_expect_eq(cv_optim_defaults(CV_OPT_MOMENTUM).momentum, 0.9f);
    cr_expect_eq(cv_optim_defaults(CV_OPT_RMSPROP).rho, 0.9f);
    cr_expect_eq(cv_optim_defaults(CV_OPT_ADADELTA).rho, 0.95f);
    cr_expect_eq(cv_optim_defaults(CV_OPT_ADAM).beta1, 0.9f);
    cr_expect_eq(cv_optim_defaults(CV_OPT_ADAM).beta2, 0.999f);
    cr_expect_eq(cv_optim_defaults(CV_OPT_ADAGRAD).initial_accumulator, 0.1f);
}

Test(optim, names_state_counts_and_init)
{
    static const char *names[CV_OPT_COUNT] = {"sgd", "momentum", "adagrad", "rmsprop", "adadelta", "adam"};
    static const int states[CV_OPT_COUNT] = {0, 1, 1, 1, 2, 2};
    for (int k = 0; k < CV_OPT_COUNT; k++) {
        cr_expect_str_eq(cv_optim_name(k), names[k]);
        cr_expect_eq(cv_optim_from_name(names[k]), k);
        cr_expect_eq(cv_optim_state_count(k), states[k], "%s", names[k]);
        cv_optim_config c = cv_optim_defaults(k);
        cv_optim o;
        cr_assert_eq(cv_optim_init(&o, &c, N, NULL), 0);
        cr_expect_eq(o.t, 0);
        cr_expect_eq(o.n, N);
        cr_expect_eq(o.s1 != NULL, states[k] >= 1, "%s s1", names[k]);
        cr_expect_eq(o.s2 != NULL, states[k] >= 2, "%s s2", names[k]);
        for (int i = 0; i < N && o.s1; i++)
            cr_expect_eq(o.s1[i], k == CV_OPT_ADAGRAD ? 0.1f : 0.0f, "%s s1[%d]", names[k], i);
        for (int i = 0; i < N && o.s2; i++) cr_expect_eq(o.s2[i], 0.0f);
        cv_optim_free(&o);
        cr_expect_null(o.s1);
    }
    cr_expect_eq(cv_optim_from_name("nadam"), -1);
}

/* The update of one element as the formulas above write it (Adam's two bias corrections folded
 * into a factor each, computed in double once per step), each operation rounded once (no fused
 * multiply-adds): what the vectorised step must give bit for bit, on every clone. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif
static void reference_step(const cv_optim_config *c, int64_t t, int64_t n, float *w, const float *g, float *s1,
                           float *s2)
{
    const float lr_c1 = (float)((double)c->lr / (1.0 - pow(c->beta1, (double)t)));
    const float inv_c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)t)));
    const float lr = c->lr, mom = c->momentum, rho = c->rho, eps = c->epsilon;
    for (int64_t i = 0; i < n; i++) {
        float d;
        switch (c->kind) {
        case CV_OPT_SGD: w[i] -= lr * g[i]; break;
        case CV_OPT_MOMENTUM:
            if (c->variant == CV_MOMENTUM_EWA) {
                s1[i] = mom * s1[i] + (1.0f - mom) * g[i];
                w[i] -= lr * s1[i];
            } else {
                s1[i] = mom * s1[i] - lr * g[i];
                w[i] += c->variant == CV_MOMENTUM_NESTEROV ? mom * s1[i] - lr * g[i] : s1[i];
            }
            break;
        case CV_OPT_ADAGRAD:
            s1[i] += g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
            break;
        case CV_OPT_RMSPROP:
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
            break;
        case CV_OPT_ADADELTA:
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
            d = sqrtf(s2[i] + eps) / sqrtf(s1[i] + eps) * g[i];
            s2[i] = rho * s2[i] + (1.0f - rho) * d * d;
            w[i] -= lr * d;
            break;
        case CV_OPT_ADAM:
            s1[i] = c->beta1 * s1[i] + (1.0f - c->beta1) * g[i];
            s2[i] = c->beta2 * s2[i] + (1.0f - c->beta2) * g[i] * g[i];
            w[i] -= lr_c1 * s1[i] / (sqrtf(s2[i] * inv_c2) + eps);
            break;
        default: break;
        }
    }
}

/* A buffer of several of the step's chunks with a tail no vector width divides, over values
 * spread across magnitudes and signs: four steps of every rule (each momentum variant) give
 * the reference's bits in weights and state, on 1 thread and on 3. */
Test(optim, vectorised_step_is_the_scalar_formula_bit_for_bit)
{
    enum { M = 3 * 16384 + 37, STEPS = 4 };
    float *w = malloc(sizeof(float) * M), *g = malloc(sizeof(float) * STEPS * M);
    float *rw = malloc(sizeof(float) * M), *r1 = malloc(sizeof(float) * M), *r2 = malloc(sizeof(float) * M);
    cr_assert(w && g && rw && r1 && r2);
    uint32_t x = 12345u;
    for (int64_t i = 0; i < (int64_t)STEPS * M; i++) {
        x = x * 1664525u + 1013904223u;
        g[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * powf(10.0f, (float)(int)(x % 7) - 4.0f);
    }
    struct {
        cv_optim_kind kind;
        cv_momentum_variant variant;
    } rules[] = {{CV_OPT_SGD, 0}, {CV_OPT_MOMENTUM, CV_MOMENTUM_EWA}, {CV_OPT_MOMENTUM, CV_MOMENTUM_CLASSIC},
                 {CV_OPT_MOMENTUM, CV_MOMENTUM_NESTEROV}, {CV_OPT_ADAGRAD, 0}, {CV_OPT_RMSPROP, 0},
                 {CV_OPT_ADADELTA, 0}, {CV_OPT_ADAM, 0}};
    static const int threads[] = {1, 3};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (int th = 0; th < 2; th++) {
#ifdef _OPENMP
            omp_set_num_threads(threads[th]);
#endif
            cv_optim_config c = with_lr(rules[r].kind, 0.01f);
            c.variant = rules[r].variant;
            cv_optim o;
            cr_assert_eq(cv_optim_init(&o, &c, M, NULL), 0);
            for (int i = 0; i < M; i++) {
                w[i] = rw[i] = (float)(i % 97) / 31.0f - 1.5f;
                r1[i] = o.s1 ? o.s1[i] : 0.0f;
                r2[i] = 0.0f;
            }
            for (int s = 0; s < STEPS; s++) {
                cv_optim_step(&o, w, g + (size_t)s * M);
                reference_step(&c, s + 1, M, rw, g + (size_t)s * M, r1, r2);
            }
            cr_expect_eq(memcmp(w, rw, sizeof(float) * M), 0, "%s variant %d, %d threads: weights",
                         cv_optim_name(c.kind), (int)c.variant, threads[th]);
            if (o.s1) cr_expect_eq(memcmp(o.s1, r1, sizeof(float) * M), 0, "%s: first state", cv_optim_name(c.kind));
            if (o.s2) cr_expect_eq(memcmp(o.s2, r2, sizeof(float) * M), 0, "%s: second state", cv_optim_name(c.kind));
            cv_optim_free(&o);
        }
    free(w), free(g), free(rw), free(r1), free(r2);
}
