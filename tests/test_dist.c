/* Sharding without MPI: every rank's slice of every global batch, for rank counts that do not
 * divide the data or the batch (and more ranks than samples), covers each sample exactly once
 * per epoch, disjointly, with slice sizes differing by at most one. */
#include <criterion/criterion.h>
#include <stdlib.h>

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
