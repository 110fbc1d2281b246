/* Sequential draws built on the counter-based mix in rng.h. */
#include "convoy/rng.h"

#include <math.h>

uint64_t cv_rng_below(cv_rng *r, uint64_t n)
{
    /* rejection keeps every value equally likely */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = cv_rng_next(r);
    while (v >= limit);
    return v % n;
}

double cv_rng_normal(cv_rng *r)
{
    double u1 = ((double)(cv_rng_next(r) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(cv_rng_next(r) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void cv_permutation(int64_t *perm, int64_t n, uint64_t key)
{
    cv_rng r = {key};
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)cv_rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
