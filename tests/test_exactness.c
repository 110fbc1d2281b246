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

/* ---- the exact sum (convoy/exactsum.h) ---- */
#include <math.h>

#include "convoy/exactsum.h"

enum { XN = 3000, XV = 24 }; /* three blocks (the last one short), 24 vectors */

/* vectors of mixed signs and magnitudes over 2^-76 .. 2^85 (later vectors larger: windows move), with zeros,
 * subnormals and exact cancellations */
static float *make_vectors(uint64_t seed)
{
    float *v = malloc(sizeof(float) * XN * XV);
    cv_rng r = {cv_key(seed, 1, 2, 3)};
    for (int k = 0; k < XV; k++)
        for (int i = 0; i < XN; i++) {
            const uint64_t u = cv_rng_next(&r);
            const double mant = 1.0 + (double)(u >> 40) * 0x1.0p-24;
            const int e = (int)(u % 30) - 60 + k * 5 - (i / 1024) * 8; /* vector k up to 2^(5k - 30) */
            float x = (float)ldexp(mant, e) * ((u >> 20) & 1 ? -1.0f : 1.0f);
            if (i % 97 == 0) x = 0.0f;
            if (i % 89 == 0) x = 0x1.8p-140f; /* subnormal */
            if (k == XV - 1 && i % 7 == 0) x = -v[i]; /* cancels the first vector's value */
            v[(size_t)k * XN + i] = x;
        }
    return v;
}

static void xsum_of(cv_xsum *s, const float *v, const int *order, int from, int to)
{
    cv_err err;
    cr_assert_eq(cv_xsum_init(s, XN, &err), 0, "%s", err.msg);
    for (int k = from; k < to; k++) cr_assert_eq(cv_xsum_add(s, v + (size_t)order[k] * XN, &err), 0, "%s", err.msg);
}

/* what cv_xsum_allreduce_take does for two ranks (before its rounding), in one process */
static void merge(cv_xsum *a, cv_xsum *b)
{
    if (!cv_xsum_terms(a)) cv_xsum_wipe(a);
    if (!cv_xsum_terms(b)) cv_xsum_wipe(b);
    int8_t w[XN];
    
    for (int64_t k = 0; k < a->n; k++) w[k] = a->window[k] > b->window[k] ? a->window[k] : b->window[k];
    cv_xsum_align(a, w);
    cv_xsum_align(b, w);
    for (int64_t i = 0; i < 2 * a->n + 1; i++) a->digits[i] += b->digits[i];
}

Test(exactsum, same_bits_in_any_order_and_any_split)
{
    float *v = make_vectors(1);
    int order[XV];
    for (int k = 0; k < XV; k++) order[k] = k;
    float ref[XN], got[XN];
    cv_xsum s;
    xsum_of(&s, v, order, 0, XV);
    cr_expect_eq(cv_xsum_terms(&s), XV);
    cv_xsum_take(&s, ref);
    cv_xsum_free(&s);
    for (int trial = 0; trial < 6; trial++) {
        cv_rng r = {cv_key(9, (uint64_t)trial, 0, 0)};
        for (int k = XV - 1; k > 0; k--) { /* a shuffled order */
            const int j = (int)(cv_rng_next(&r) % (uint64_t)(k + 1)), t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        const int cut = trial * 4 + 1; /* and a split in two "ranks" */
        cv_xsum a, b;
        xsum_of(&a, v, order, 0, cut);
        xsum_of(&b, v, order, cut, XV);
        merge(trial % 2 ? &b : &a, trial % 2 ? &a : &b);
        cv_xsum_take(trial % 2 ? &b : &a, got);
        cr_expect_eq(memcmp(ref, got, sizeof ref), 0, "order %d split at %d changed the sum", trial, cut);
        cv_xsum_free(&a);
        cv_xsum_free(&b);
    }
    free(v);
}

/* against the sum in long double (64-bit significand): within half a float ulp of it plus the
 * documented truncation (below 2^-40 of the element's largest magnitude per value), and the
 * correctly rounded sum where every value is within 2^-16 of its element's largest (no bit lost) */
Test(exactsum, within_its_stated_error_of_the_true_sum)
{
    float *v = make_vectors(2);
    int order[XV];
    for (int k = 0; k < XV; k++) order[k] = k;
    cv_xsum s;
    xsum_of(&s, v, order, 0, XV);
    float got[XN];
    cv_xsum_take(&s, got);
    for (int i = 0; i < XN; i++) {
        long double t = 0.0L, most = 0.0L;
        for (int k = 0; k < XV; k++) {
            t += v[(size_t)k * XN + i];
            most = fabsl(v[(size_t)k * XN + i]) > most ? fabsl(v[(size_t)k * XN + i]) : most;
        }
        const long double bound = 0.5L * fabsl(t) * 0x1.0p-23L + XV * most * 0x1.0p-40L + 0x1.0p-149L;
        cr_expect_leq(fabsl((long double)got[i] - t), bound, "element %d: %a, true sum %La", i, (double)got[i], t);
    }
    /* values of one binade: the exact sum, rounded once */
    cv_rng r = {7};
    for (int i = 0; i < XN * XV; i++) v[i] = (float)(1.0 + (double)(cv_rng_next(&r) >> 40) * 0x1.0p-24) * ((i & 1) ? 3.0f : -1.0f);
    cv_err err;
    for (int k = 0; k < XV; k++) cr_assert_eq(cv_xsum_add(&s, v + (size_t)k * XN, &err), 0, "%s", err.msg);
    cv_xsum_take(&s, got);
    int wrong = 0;
    for (int i = 0; i < XN; i++) {
        double t = 0.0; /* exact: 24 values of 26 significant bits at most */
        for (int k = 0; k < XV; k++) t += v[(size_t)k * XN + i];
        wrong += got[i] != (float)t;
    }
    cr_expect_eq(wrong, 0, "%d sums not the exact sum rounded once", wrong);
    cv_xsum_free(&s);
    free(v);
}

/* a small value beside a large one in the same vector keeps its bits: windows are per element */
Test(exactsum, small_values_beside_large_ones_keep_their_bits)
{
    enum { N = 2 };
    cv_xsum s;
    cv_err err;
    cr_assert_eq(cv_xsum_init(&s, N, &err), 0, "%s", err.msg);
    const float v[N] = {1.0f, 0x1.fffffep-42f};
    for (int k = 0; k < 1000; k++) cr_assert_eq(cv_xsum_add(&s, v, &err), 0);
    float got[N];
    cv_xsum_take(&s, got);
    cr_expect_eq(got[0], 1000.0f);
    cr_expect_eq(got[1], (float)(1000.0 * 0x1.fffffep-42), "%a", (double)got[1]);
    cv_xsum_free(&s);
}

/* the final rounding is one rounding: {2^39, 2^15, 2^-40} lies just above the midpoint of
 * 2^39 and its next float, so it rounds up (a double rounding would land on the midpoint and
 * round to even, down); the same with signs flipped, and just below the midpoint */
Test(exactsum, rounds_once_to_nearest)
{
    const float sets[3][3] = {{0x1p39f, 0x1p15f, 0x1p-40f}, {-0x1p39f, -0x1p15f, -0x1p-40f}, {0x1p39f, 0x1p15f, -0x1p-40f}};
    const float want[3] = {0x1.000002p39f, -0x1.000002p39f, 0x1p39f};
    for (int c = 0; c < 3; c++) {
        cv_xsum s;
        cv_err err;
        cr_assert_eq(cv_xsum_init(&s, 1, &err), 0, "%s", err.msg);
        for (int k = 0; k < 3; k++) cr_assert_eq(cv_xsum_add(&s, &sets[c][k], &err), 0);
        float got;
        cv_xsum_take(&s, &got);
        cr_expect_eq(got, want[c], "set %d: %a, wanted %a", c, (double)got, (double)want[c]);
        cv_xsum_free(&s);
    }
}

/* a sum taken, then reused (its memory still holding the old digits and windows), or cleared
 * part-way, gives the bits of a new one */
Test(exactsum, a_reused_sum_keeps_nothing_of_the_last)
{
    float *v = make_vectors(4);
    int order[XV];
    for (int k = 0; k < XV; k++) order[k] = XV - 1 - k; /* the largest first: no window moves up */
    float fresh[XN], reused[XN];
    cv_xsum s;
    cv_err err;
    xsum_of(&s, v, order, 0, XV / 2);
    cv_xsum_take(&s, fresh);
    for (int k = XV / 2; k < XV; k++) cr_assert_eq(cv_xsum_add(&s, v + (size_t)order[k] * XN, &err), 0);
    cv_xsum_clear(&s);
    for (int k = 0; k < XV / 2; k++) cr_assert_eq(cv_xsum_add(&s, v + (size_t)order[k] * XN, &err), 0);
    cv_xsum_take(&s, reused);
    cr_expect_eq(memcmp(fresh, reused, sizeof fresh), 0, "a reused sum differs from a new one");
    cv_xsum_take(&s, reused); /* nothing added since: zeros */
    int nonzero = 0;
    for (int i = 0; i < XN; i++) nonzero += reused[i] != 0.0f;
    cr_expect_eq(nonzero, 0);
    cv_xsum_free(&s);
    free(v);
}

Test(exactsum, a_nan_spoils_its_element_only)
{
    float v[XN] = {0};
    for (int i = 0; i < XN; i++) v[i] = 1.5f;
    cv_xsum s;
    cv_err err;
    cr_assert_eq(cv_xsum_init(&s, XN, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_xsum_add(&s, v, &err), 0);
    v[5] = NAN;
    v[7] = INFINITY;
    cr_assert_eq(cv_xsum_add(&s, v, &err), 0);
    v[5] = v[7] = 1.0f;
    cr_assert_eq(cv_xsum_add(&s, v, &err), 0);
    float got[XN];
    cv_xsum_take(&s, got);
    cr_expect(isnan(got[5]) && isnan(got[7]));
    cr_expect(got[4] == 4.5f && got[6] == 4.5f && got[XN - 1] == 4.5f);
    cv_xsum_free(&s);
}

/* The documented result, computed another way: per element the final window I (the least
 * multiple of 40 with every |value| below 2^I), each value truncated toward zero to a multiple
 * of 2^(I-80) and summed as a 128-bit integer, rounded once. Run on the default clone and on
 * the AVX2 and generic ones (CONVOY_GEMM, read once per process: set before the first call). */
static void documented_sum(const char *path)
{
    if (path) setenv("CONVOY_GEMM", path, 1);
    float *v = make_vectors(3);
    int order[XV];
    for (int k = 0; k < XV; k++) order[k] = (k * 7) % XV; /* 7 is prime to 24: a permutation */
    float got[XN];
    cv_xsum s;
    xsum_of(&s, v, order, 0, XV);
    cv_xsum_take(&s, got);
    cv_xsum_free(&s);
    int wrong = 0;
    for (int i = 0; i < XN; i++) {
        int I = -1000;
        for (int k = 0; k < XV; k++) {
            const float x = v[(size_t)k * XN + i];
            int e;
            if (x == 0.0f) continue;
            frexpf(x, &e); /* |x| < 2^e */
            const int w = e <= 0 ? -(-e / 40) * 40 : (e + 39) / 40 * 40;
            I = w > I ? w : I;
        }
        __int128 t = 0;
        for (int k = 0; k < XV; k++) /* x / 2^(I-80), truncated: exact in long double */
            t += (__int128)truncl(ldexpl((long double)v[(size_t)k * XN + i], 80 - I));
        wrong += got[i] != ldexpf((float)t, I - 80);
    }
    cr_expect_eq(wrong, 0, "%d of %d sums differ from the documented formula (%s clone)", wrong, XN,
                 path ? path : "default");
    free(v);
}

Test(exactsum, is_the_documented_formula) { documented_sum(NULL); }
Test(exactsum, avx2_clone_is_the_documented_formula) { documented_sum("avx2"); }
Test(exactsum, generic_clone_is_the_documented_formula) { documented_sum("generic"); }
