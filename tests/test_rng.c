/* Counter-based randomness (docs/exactness.md): permutations are permutations, reproducible per key
 * and different across keys; dropout masks are a function of (seed, epoch, sample id) only,
 * so a sample keeps its mask whatever batch it lands in and at whatever position. */
#define _GNU_SOURCE /* setenv */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/model.h"
#include "convoy/rng.h"

static void expect_permutation(const int64_t *p, int64_t n)
{
    char *seen = calloc((size_t)n, 1);
    cr_assert_not_null(seen);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(p[i] >= 0 && p[i] < n, "perm[%ld] = %ld out of range", (long)i, (long)p[i]);
        cr_assert_eq(seen[p[i]], 0, "value %ld appears twice", (long)p[i]);
        seen[p[i]] = 1;
    }
    free(seen);
}

Test(rng, permutation_is_a_permutation)
{
    static const int64_t sizes[] = {1, 2, 3, 10, 257, 60000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        int64_t *p = malloc(sizeof(int64_t) * (size_t)n);
        cv_permutation(p, n, cv_key(42, CV_STREAM_SHUFFLE, (uint64_t)s, 0));
        expect_permutation(p, n);
        free(p);
    }
}

Test(rng, permutation_reproducible_per_key_and_keys_differ)
{
    enum { n = 1000 };
    static int64_t a[n], b[n], c[n], d[n];
    cv_permutation(a, n, cv_key(7, CV_STREAM_SHUFFLE, 3, 0));
    cv_permutation(b, n, cv_key(7, CV_STREAM_SHUFFLE, 3, 0));
    cv_permutation(c, n, cv_key(7, CV_STREAM_SHUFFLE, 4, 0)); /* next epoch */
    cv_permutation(d, n, cv_key(8, CV_STREAM_SHUFFLE, 3, 0)); /* other seed */
    cr_expect_arr_eq(a, b, sizeof a, "same key, different permutation");
    int same_c = 0, same_d = 0, fixed = 0;
    for (int i = 0; i < n; i++) {
        same_c += a[i] == c[i];
        same_d += a[i] == d[i];
        fixed += a[i] == i;
    }
    /* two independent permutations agree in ~1 place on average; allow a little */
    cr_expect_lt(same_c, 10, "epochs 3 and 4 share %d positions", same_c);
    cr_expect_lt(same_d, 10, "seeds 7 and 8 share %d positions", same_d);
    cr_expect_lt(fixed, 10, "the permutation leaves %d of %d elements in place", fixed, n);
}

Test(rng, permutation_is_not_biased)
{
    /* each of the 6 permutations of 3 elements over 6000 keys: ~1000 each (sd ~ 29) */
    int count[3][3] = {{0}};
    for (uint64_t k = 0; k < 6000; k++) {
        int64_t p[3];
        cv_permutation(p, 3, cv_key(1, CV_STREAM_SHUFFLE, k, 0));
        for (int i = 0; i < 3; i++) count[i][p[i]]++;
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            cr_expect(count[i][j] > 1800 && count[i][j] < 2200, "P(perm[%d] = %d) = %d / 6000", i,
                      j, count[i][j]);
}

Test(rng, below_stays_in_range_and_covers_it)
{
    cv_rng r = {123};
    int hits[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = cv_rng_below(&r, 7);
        cr_assert_lt(v, 7);
        hits[v]++;
    }
    for (int v = 0; v < 7; v++) cr_expect(hits[v] > 850 && hits[v] < 1150, "value %d: %d", v, hits[v]);
}

/* ------------------------------------------------------------------------------------------ */
/* Dropout masks. The dropout layer sits at the same index (1) in every net, feeding an
 * identity dense layer, so the output is x * mask; with x = 1 it is the mask itself. */

enum { D = 64 };

static cv_net *dropout_net(cv_model_spec *spec)
{
    cv_err err = {{0}};
    const char *text = "input shape=64\n"
                       "dropout rate=0.5\n"
                       "dense units=64 activation=linear\n"
                       "compile loss=mse\n";
    cr_assert_eq(cv_model_parse(spec, text, "dropout.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, 8, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const cv_param_view v = cv_net_param_view(net, 2);
    float *w = cv_net_params(net);
    memset(w + v.kernel_off, 0, sizeof(float) * (size_t)v.kernel_n);
    for (int i = 0; i < D; i++) w[v.kernel_off + (int64_t)i * D + i] = 1.0f;
    memset(w + v.bias_off, 0, sizeof(float) * (size_t)v.bias_n);
    return net;
}

/* masks[b] (D floats) for a batch of sample ids */
static void masks_for(cv_net *net, const int64_t *ids, int B, uint64_t seed, int64_t epoch, float *masks)
{
    static float ones[8 * D];
    for (int i = 0; i < 8 * D; i++) ones[i] = 1.0f;
    const float *out = cv_net_forward(net, ones, B, true, seed, epoch, ids);
    memcpy(masks, out, sizeof(float) * (size_t)B * D);
}

/* Every unit's coin is cv_unit(cv_mix64(key ^ unit)) >= rate with key = cv_key(seed, dropout
 * stream << 32 | layer, epoch, sample): checked unit by unit against that scalar formula, for a
 * width that is no multiple of any vector (37) and one that is (64), on the kernel the CPU picks
 * and on the AVX2 and generic clones (the mask loop is compiled for each). */
static void check_mask_formula(void)
{
    static const int widths[] = {37, 64};
    static const float rates[] = {0.5f, 0.3f};
    for (int wi = 0; wi < 2; wi++)
        for (int ri = 0; ri < 2; ri++) {
            const int n = widths[wi];
            char text[160];
            snprintf(text, sizeof text, "input shape=%d\ndropout rate=%g\ndense units=3\ncompile loss=mse\n", n, rates[ri]);
            cv_model_spec spec;
            cv_err err = {{0}};
            cr_assert_eq(cv_model_parse(&spec, text, "dropout.model", &err), 0, "%s", err.msg);
            cv_net *net = cv_net_create(&spec, 3, 1, &err);
            cr_assert_not_null(net, "%s", err.msg);
            float x[3 * 64];
            for (int i = 0; i < 3 * n; i++) x[i] = 1.0f + (float)i;
            const int64_t ids[] = {7, 123456789, 0};
            cv_net_forward(net, x, 3, true, 99, 5, ids);
            const float *out = cv_net_layer_output(net, 1);
            const float keep = 1.0f / (1.0f - rates[ri]);
            for (int b = 0; b < 3; b++) {
                const uint64_t key = cv_key(99, ((uint64_t)CV_STREAM_DROPOUT << 32) | 1u, 5, (uint64_t)ids[b]);
                for (int i = 0; i < n; i++) {
                    const float m = cv_unit(cv_mix64(key ^ (uint64_t)i)) >= rates[ri] ? keep : 0.0f;
                    cr_assert_eq(out[b * n + i], x[b * n + i] * m, "width %d rate %g sample %d unit %d: %g, want %g",
                                 n, rates[ri], b, i, out[b * n + i], x[b * n + i] * m);
                }
            }
            cv_net_free(net);
            cv_model_spec_free(&spec);
        }
}

static void force_generic(void) { setenv("CONVOY_GEMM", "generic", 1); }
static void force_avx2(void) { setenv("CONVOY_GEMM", "avx2", 1); }
Test(rng, dropout_mask_is_the_hash_formula) { check_mask_formula(); }
Test(rng, dropout_mask_is_the_hash_formula_avx2, .init = force_avx2) { check_mask_formula(); }
Test(rng, dropout_mask_is_the_hash_formula_generic, .init = force_generic) { check_mask_formula(); }

Test(rng, dropout_mask_depends_only_on_seed_epoch_sample)
{
    cv_model_spec spec;
    cv_net *net = dropout_net(&spec);
    static float m1[8 * D], m2[8 * D], m3[D], m4[D], m5[D];
    const int64_t batch1[] = {5, 9, 2, 40};
    const int64_t batch2[] = {2, 77, 5}; /* 2 and 5 again, other positions and company */
    masks_for(net, batch1, 4, 11, 3, m1);
    masks_for(net, batch2, 3, 11, 3, m2);
    cr_expect_arr_eq(m1 + 2 * D, m2 + 0 * D, sizeof(float) * D, "sample 2 changed its mask");
    cr_expect_arr_eq(m1 + 0 * D, m2 + 2 * D, sizeof(float) * D, "sample 5 changed its mask");

    /* the mask is inverted dropout: 0 or 1/(1-rate), about half dropped */
    int dropped = 0;
    for (int i = 0; i < 4 * D; i++) {
        cr_assert(m1[i] == 0.0f || m1[i] == 2.0f, "mask value %g", m1[i]);
        dropped += m1[i] == 0.0f;
    }
    cr_expect(dropped > 4 * D * 3 / 10 && dropped < 4 * D * 7 / 10, "%d of %d dropped", dropped, 4 * D);

    /* different samples, epochs and seeds give different masks */
    cr_expect(memcmp(m1, m1 + D, sizeof(float) * D) != 0, "samples 5 and 9 share a mask");
    const int64_t two[] = {2};
    masks_for(net, two, 1, 11, 3, m3);
    masks_for(net, two, 1, 11, 4, m4);
    masks_for(net, two, 1, 12, 3, m5);
    cr_expect_arr_eq(m3, m1 + 2 * D, sizeof m3, "sample 2 alone got another mask");
    cr_expect(memcmp(m3, m4, sizeof m3) != 0, "epoch does not change the mask");
    cr_expect(memcmp(m3, m5, sizeof m3) != 0, "seed does not change the mask");

    /* inference is the identity */
    static float ones[D];
    for (int i = 0; i < D; i++) ones[i] = 1.0f;
    const float *out = cv_net_forward(net, ones, 1, false, 11, 3, two);
    for (int i = 0; i < D; i++) cr_expect_eq(out[i], 1.0f, "inference output[%d] = %g", i, out[i]);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}
