/* Shared by the kernel tests: n floats uniform in [-1, 1) from seed (cv_rng), on 64-byte lines
 * (where the network's activations are, and the kernels' stream stores need), never NULL (a
 * test assertion); free() releases them. */
#ifndef CONVOY_TESTS_RANDBUF_H
#define CONVOY_TESTS_RANDBUF_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "convoy/rng.h"

static inline float *rand_buf(size_t n, uint64_t seed)
{
    cv_rng r = {seed};
    float *p = aligned_alloc(64, (sizeof(float) * (n ? n : 1) + 63) / 64 * 64);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * cv_unit(cv_rng_next(&r)) - 1.0f;
    return p;
}

#endif
