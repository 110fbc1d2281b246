/* Module core (its preamble: convoy/error.h). Counter-based randomness: every random number convoy draws is a pure function of
 * (seed, stream, counters), so results do not depend on rank count, thread count or the
 * order in which samples are visited (docs/exactness.md). */
#ifndef CONVOY_RNG_H
#define CONVOY_RNG_H

#include <stdint.h>

/** splitmix64's finaliser: a bijective 64-bit mix. */
static inline uint64_t cv_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/** Key for one random stream: hash of seed and up to three counters. */
static inline uint64_t cv_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    return cv_mix64(cv_mix64(cv_mix64(cv_mix64(seed) ^ a) ^ b) ^ c);
}

/** Uniform float in [0, 1) from 64 random bits (24-bit mantissa). The top 24 bits go through
 *  a 32-bit integer (the same value): a 64-bit integer to float conversion does not vectorise
 *  without AVX-512DQ. */
static inline float cv_unit(uint64_t bits) { return (float)(uint32_t)(bits >> 40) * (1.0f / 16777216.0f); }

/** Stream names, so that different uses of one seed never share numbers. */
enum { CV_STREAM_INIT = 1, CV_STREAM_SHUFFLE, CV_STREAM_DROPOUT, CV_STREAM_SPLIT, CV_STREAM_AUGMENT };
/** Hyperparameter sampling of convoy tune: key (seed, config, hyperparameter index); the
 *  Bayesian tuner's candidates (seed, round and proposal, candidate and site); the order of an
 *  enumerated search space (seed, configuration index). */
enum { CV_STREAM_TUNE = 16, CV_STREAM_TUNE_CANDIDATES, CV_STREAM_TUNE_ORDER };

/** A sequential generator (splitmix64) for work that is inherently sequential. */
typedef struct {
    uint64_t state;
} cv_rng;

static inline uint64_t cv_rng_next(cv_rng *r) { return cv_mix64(r->state++); }
/** Uniform integer in [0, n) without modulo bias. */
uint64_t cv_rng_below(cv_rng *r, uint64_t n);
/** Standard normal (Box-Muller, double precision). */
double cv_rng_normal(cv_rng *r);

/** perm[0..n) = a permutation of 0..n-1 drawn from key (Fisher-Yates). */
void cv_permutation(int64_t *perm, int64_t n, uint64_t key);

#endif
