/* The exact sum's local side (include/convoy/exactsum.h has the method): a block's window from
 * its largest magnitude, the digits moved up with the window, each value's two digits added.
 * Integer arithmetic only, so every instruction set's clone gives the same bits; blocks are
 * independent and shared out over threads. */
#include "convoy/exactsum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/isa.h"

enum { W = CV_XSUM_DIGIT, B = CV_XSUM_BLOCK };
#define DIGIT_MASK ((UINT64_C(1) << W) - 1)

int cv_xsum_init(cv_xsum *s, int64_t n, cv_err *err)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->nblocks = (n + B - 1) / B;
    s->window = malloc(sizeof(int32_t) * (size_t)(s->nblocks ? s->nblocks : 1));
    s->window_all = malloc(sizeof(int32_t) * (size_t)(s->nblocks ? s->nblocks : 1));
    s->digits = malloc(sizeof(int64_t) * (size_t)(2 * n + 1));
    if (!s->window || !s->window_all || !s->digits) {
        cv_xsum_free(s);
        return cv_errf(err, "out of memory for an exact sum of %lld values", (long long)n);
    }
    cv_xsum_clear(s);
    return 0;
}

void cv_xsum_free(cv_xsum *s)
{
    free(s->window);
    free(s->digits);
    free(s->window_all);
    s->window = s->window_all = NULL;
    s->digits = NULL;
}

void cv_xsum_clear(cv_xsum *s)
{
    for (int64_t b = 0; b < s->nblocks; b++) s->window[b] = CV_XSUM_EMPTY;
    memset(s->digits, 0, sizeof(int64_t) * (size_t)(2 * s->n + 1));
}

static uint32_t float_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* The window for magnitudes below 2^top: the least multiple of W at or above top. */
static int32_t window_for(int32_t top) { return (int32_t)(W * (int64_t)ceil((double)top / W)); }

/* One block's digits move from window `from` up to window `to`: per digit moved, lo is
 * dropped and hi becomes lo. */
static void move_window(int64_t *hi, int64_t *lo, int64_t m, int32_t from, int32_t to)
{
    const int32_t digits = (to - from) / W;
    for (int64_t i = 0; i < m; i++) {
        lo[i] = digits == 1 ? hi[i] : 0;
        hi[i] = 0;
    }
}

/* hi and lo += the digits of each of v's m values at window I (every |v| < 2^I). A value
 * m * 2^q (m the 24-bit significand) sits s = q - (I - 2W) bits above the lo digit's unit:
 * its hi digit is m shifted by s - W, its lo digit the low W bits of m shifted by s (a right
 * shift truncates; bits shifted past 64 are zero either way, as m has 24). */
static inline __attribute__((always_inline)) void deposit_body(int64_t *restrict hi, int64_t *restrict lo,
                                                               const float *restrict v, int64_t m, int32_t I)
{
    const int32_t base = I - 2 * W;
    for (int64_t i = 0; i < m; i++) {
        const uint32_t u = float_bits(v[i]);
        const int32_t e = (int32_t)((u >> 23) & 0xff);
        const uint64_t sig = (uint64_t)(u & 0x7fffff) | (e ? UINT64_C(0x800000) : 0);
        const int32_t s = (e ? e : 1) - 150 - base;
        const int32_t t = s - W;
        const int32_t rs = -s < 63 ? -s : 63, rt = -t < 63 ? -t : 63;
        const uint64_t h = t >= 0 ? sig << t : sig >> rt;
        const uint64_t l = (s >= 0 ? sig << (s & 63) : sig >> rs) & DIGIT_MASK;
        const int64_t sign = (int64_t)(u >> 31); /* 0 or 1 */
        hi[i] += ((int64_t)h ^ -sign) + sign;    /* -h for a negative value */
        lo[i] += ((int64_t)l ^ -sign) + sign;
    }
}

CV_ISA_CLONES(deposit, (int64_t *hi, int64_t *lo, const float *v, int64_t m, int32_t I), deposit_body,
              (hi, lo, v, m, I))

/* The largest magnitude's bits (an unsigned compare orders finite magnitudes; NaN and
 * infinity sort above every finite one). */
static inline __attribute__((always_inline)) void max_bits_body(uint32_t *out, const float *restrict v, int64_t m)
{
    uint32_t most = 0;
    for (int64_t i = 0; i < m; i++) {
        const uint32_t a = float_bits(v[i]) & 0x7fffffff;
        most = a > most ? a : most;
    }
    *out = most;
}

CV_ISA_CLONES(max_bits, (uint32_t *out, const float *v, int64_t m), max_bits_body, (out, v, m))

int cv_xsum_add(cv_xsum *s, const float *v, cv_err *err)
{
    int64_t *terms = &s->digits[2 * s->n];
    if (*terms >= CV_XSUM_MAX_TERMS)
        return cv_errf(err, "internal: an exact sum of more than %lld vectors", (long long)CV_XSUM_MAX_TERMS);
    (*terms)++;
    const deposit_fn dep = deposit_pick();
    const max_bits_fn mb = max_bits_pick();
    int64_t *hi = s->digits, *lo = s->digits + s->n;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < s->nblocks; b++) {
        const int64_t o = b * B, m = s->n - o < B ? s->n - o : B;
        uint32_t most;
        mb(&most, v + o, m);
        if (most == 0 || s->window[b] == CV_XSUM_NONFINITE) continue;
        if (most >= 0x7f800000u) {
            s->window[b] = CV_XSUM_NONFINITE;
            continue;
        }
        /* |v| < 2^top: a normal value of biased exponent e is below 2^(e - 126) */
        const int32_t e = (int32_t)(most >> 23), top = (e ? e : 1) - 126;
        const int32_t want = window_for(top);
        if (s->window[b] == CV_XSUM_EMPTY) {
            s->window[b] = want;
        } else if (want > s->window[b]) {
            move_window(hi + o, lo + o, m, s->window[b], want);
            s->window[b] = want;
        }
        dep(hi + o, lo + o, v + o, m, s->window[b]);
    }
    return 0;
}

void cv_xsum_align(cv_xsum *s, const int32_t *windows)
{
    int64_t *hi = s->digits, *lo = s->digits + s->n;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < s->nblocks; b++) {
        const int64_t o = b * B, m = s->n - o < B ? s->n - o : B;
        const int32_t to = windows[b], from = s->window[b];
        if (to != CV_XSUM_NONFINITE && to != CV_XSUM_EMPTY && from != CV_XSUM_EMPTY && to > from)
            move_window(hi + o, lo + o, m, from, to);
        s->window[b] = to;
    }
}

/* An integer of magnitude below 2^51 as a double, exactly, with integer and float adds only
 * (no int64 -> double instruction before AVX-512DQ): its bits added to those of 1.5 * 2^52 are
 * the double 1.5 * 2^52 + x. */
static inline double small_int_to_double(int64_t x)
{
    const double magic = 0x1.8p52;
    int64_t mb;
    memcpy(&mb, &magic, sizeof mb);
    const int64_t u = x + mb;
    double d;
    memcpy(&d, &u, sizeof d);
    return d - magic;
}

/* hi 2^W + lo as a double rounded to odd (both digits, and hi 2^W, are exact doubles while
 * |hi|, |lo| < 2^51, CV_XSUM_MAX_TERMS digits of < 2^40): their rounded sum and its exact error
 * (TwoSum), and where that error is not zero the neighbour with an odd last bit. A double
 * rounded to odd then rounds to float as the exact value would: one rounding in all. The
 * digits are cleared as they are read (the sum is empty afterwards). */
static inline __attribute__((always_inline)) void result_body(float *restrict out, int64_t *restrict hi,
                                                              int64_t *restrict lo, int64_t m, double scale)
{
    for (int64_t i = 0; i < m; i++) {
        const double a = small_int_to_double(hi[i]) * 0x1.0p40, b = small_int_to_double(lo[i]);
        hi[i] = lo[i] = 0;
        const double t = a + b, bb = t - a, e = (a - (t - bb)) + (b - bb);
        uint64_t u;
        memcpy(&u, &t, sizeof u);
        /* inexact with an even last bit: one ulp towards the exact value (up in magnitude
         * when it lies beyond t) */
        const uint64_t fix = (uint64_t)(e != 0.0) & ~u & 1, away = (e > 0) == (t > 0);
        u += fix * (2 * away - 1);
        double odd;
        memcpy(&odd, &u, sizeof odd);
        out[i] = (float)(odd * scale);
    }
}

CV_ISA_CLONES(result, (float *out, int64_t *hi, int64_t *lo, int64_t m, double scale), result_body,
              (out, hi, lo, m, scale))

void cv_xsum_take(cv_xsum *s, float *out)
{
    int64_t *hi = s->digits, *lo = s->digits + s->n;
    const result_fn res = result_pick();
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < s->nblocks; b++) {
        const int64_t o = b * B, m = s->n - o < B ? s->n - o : B;
        const int32_t I = s->window[b];
        if (I == CV_XSUM_EMPTY || I == CV_XSUM_NONFINITE) {
            for (int64_t i = o; i < o + m; i++) out[i] = I == CV_XSUM_EMPTY ? 0.0f : NAN;
            continue;
        }
        res(out + o, hi + o, lo + o, m, ldexp(1.0, I - 2 * W)); /* a power of two: exact */
    }
    for (int64_t b = 0; b < s->nblocks; b++) s->window[b] = CV_XSUM_EMPTY;
    s->digits[2 * s->n] = 0;
}
