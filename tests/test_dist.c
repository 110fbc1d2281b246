/* Sharding without MPI: every rank's slice of every global batch, for rank counts that do not
 * divide the data or the batch (and more ranks than samples), covers each sample exactly once
 * per epoch, disjointly, with slice sizes differing by at most one; and the messages of the
 * ranks' settings comparison. */
#define _GNU_SOURCE /* open_memstream, strdup */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/dist.h"

static void check_cover(int64_t N, int64_t B, int P)
{
    int *seen = calloc((size_t)N, sizeof *seen);
    for (int64_t start = 0; start < N; start += B) {
        const int64_t count = N - start < B ? N - start : B;
        int64_t expect_lo = start, smallest = count, largest = 0;
        for (int r = 0; r < P; r++) {
            const cv_dist d = {MPI_COMM_NULL, r, P};
            int64_t lo, hi;
            cv_dist_slice(&d, start, count, &lo, &hi);
            cr_assert_eq(lo, expect_lo, "N=%lld B=%lld P=%d rank %d: slice starts at %lld, not %lld", (long long)N,
                         (long long)B, P, r, (long long)lo, (long long)expect_lo);
            cr_assert_geq(hi, lo);
            for (int64_t i = lo; i < hi; i++) seen[i]++;
            expect_lo = hi;
            smallest = hi - lo < smallest ? hi - lo : smallest;
            largest = hi - lo > largest ? hi - lo : largest;
        }
        cr_assert_eq(expect_lo, start + count, "the slices of batch %lld end at %lld", (long long)start, (long long)expect_lo);
        cr_assert_leq(largest - smallest, 1, "N=%lld B=%lld P=%d: slice sizes %lld..%lld", (long long)N, (long long)B, P,
                      (long long)smallest, (long long)largest);
    }
    for (int64_t i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1, "N=%lld B=%lld P=%d: sample %lld seen %d times", (long long)N, (long long)B, P,
                     (long long)i, seen[i]);
    free(seen);
}

Test(dist, slices_cover_every_sample_once_per_epoch)
{
    static const int64_t Ns[] = {1003, 64, 7, 1};
    static const int64_t Bs[] = {64, 10, 3, 1, 2000};
    static const int Ps[] = {1, 2, 3, 5, 7, 16};
    for (size_t n = 0; n < sizeof Ns / sizeof Ns[0]; n++)
        for (size_t b = 0; b < sizeof Bs / sizeof Bs[0]; b++)
            for (size_t p = 0; p < sizeof Ps / sizeof Ps[0]; p++) check_cover(Ns[n], Bs[b], Ps[p]);
}

Test(dist, single_process_collectives_are_identities)
{
    const cv_dist d = cv_dist_single();
    float g[3] = {1, 2, 3};
    double m[2] = {4, 5};
    cv_err err;
    cr_assert_eq(cv_dist_sum_f32(&d, g, 3, &err), 0);
    cr_assert_eq(cv_dist_sum_f64(&d, m, 2, &err), 0);
    cr_expect(g[0] == 1 && g[1] == 2 && g[2] == 3 && m[0] == 4 && m[1] == 5);
    cr_expect_eq(cv_dist_check_same(&d, 42, "x", &err), 0);
    cr_expect_eq(cv_dist_agree(&d, 0, &err), 0);
    cv_errf(&err, "boom");
    cr_expect_eq(cv_dist_agree(&d, 1, &err), -1);
    cr_expect_str_eq(err.msg, "boom");
}

/* settings text of one rank, as cv_setting_* write it */
static char *settings_text(int reproducible, int units, const char *bucket)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert(f);
    cv_setting_model(f, "layer 1");
    fputs("input shape=2\n", f);
    cv_setting_model(f, "layer 2");
    fprintf(f, "dense units=%d activation=relu\n", units);
    cv_setting_model(f, "compile");
    fputs("compile optimizer=adam learning_rate=0.001\n", f);
    cv_setting_switch(f, "--reproducible", reproducible);
    cv_setting_value(f, "--allreduce", "%s", bucket);
    cr_assert_eq(fclose(f), 0);
    return text;
}

/* The start-up comparison names the first setting that differs, in words, for each kind of line. */
Test(dist, settings_diff_names_the_setting)
{
    char *a = settings_text(0, 8, "blocking"), *same = settings_text(0, 8, "blocking");
    char *repro = settings_text(1, 8, "blocking"), *units = settings_text(0, 16, "blocking"),
         *bucket = settings_text(0, 8, "bucketed --bucket-mb 4");
    char msg[CV_ERR_MSG];
    cv_settings_diff(a, same, 1, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "");
    cv_settings_diff(a, repro, 1, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "rank 1 has --reproducible, rank 0 has not");
    cv_settings_diff(repro, a, 3, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "rank 0 has --reproducible, rank 3 has not");
    cv_settings_diff(a, units, 1, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "rank 1's model file differs from rank 0's (layer 2: dense units=16 vs 8)");
    cv_settings_diff(a, bucket, 2, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "ranks differ in --allreduce: rank 2 has bucketed --bucket-mb 4, rank 0 has blocking");
    /* another kind of layer: both whole lines */
    char *conv = strdup(a);
    char *at = strstr(conv, "dense units=8");
    memcpy(at, "flatten      ", 13);
    cv_settings_diff(a, conv, 1, "model file", msg, sizeof msg);
    cr_expect(strstr(msg, "(layer 2: flatten") != NULL, "%s", msg);
    /* the keyword of a line whose name says it is not repeated */
    char *lr = settings_text(0, 8, "blocking");
    memcpy(strstr(lr, "0.001"), "0.002", 5);
    cv_settings_diff(a, lr, 1, "model file", msg, sizeof msg);
    cr_expect_str_eq(msg, "rank 1's model file differs from rank 0's (compile: learning_rate=0.002 vs 0.001)");
    /* a text that ends early */
    a[strlen(a) / 2] = '\0';
    cv_settings_diff(a, same, 1, "model file", msg, sizeof msg);
    cr_expect(msg[0] != '\0');
    free(a), free(same), free(repro), free(units), free(bucket), free(conv), free(lr);
}

Test(dist, single_process_settings_check_passes)
{
    const cv_dist d = cv_dist_single();
    cv_err err;
    cr_expect_eq(cv_dist_check_settings(&d, "v\t--steps\t2\n", "model file", &err), 0);
}
