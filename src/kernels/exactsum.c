/* The exact sum's local side (include/convoy/exactsum.h has the method): each element's
 * window from the magnitudes it has seen, its digits moved up with the window, each value's two
 * digits added. Integer arithmetic only, so every instruction set's clone gives the same bits;
 * elements are independent and shared out over threads in chunks. */
#include "convoy/exactsum.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/isa.h"

enum { W = CV_XSUM_DIGIT, CHUNK = 4096 };

/* The digit kernels' clones, as CV_ISA_CLONES makes them, but with an AVX-512 clone that may use
 * DQ, BW and VL too (64-bit lanes, byte windows: without them GCC keeps to 256-bit vectors),
 * picked where the CPU has them; integer arithmetic, so every clone gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__)
#define XSUM_CLONES(NAME, PARAMS, BODY, ARGS)                                                        \
    static void NAME##_generic PARAMS { BODY ARGS; }                                                 \
    __attribute__((target("avx2,fma"))) static void NAME##_avx2 PARAMS { BODY ARGS; }                \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void NAME##_avx512 PARAMS \
    {                                                                                                \
        BODY ARGS;                                                                                   \
    }                                                                                                \
    typedef void(*NAME##_fn) PARAMS;                                                                 \
    static NAME##_fn NAME##_pick(void)                                                               \
    {                                                                                                \
        const char *p = cv_gemm_path();                                                              \
        if (strcmp(p, "avx512") == 0 && __builtin_cpu_supports("avx512dq") &&                        \
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))                \
            return NAME##_avx512;                                                                    \
        return strcmp(p, "avx512") == 0 || strcmp(p, "avx2") == 0 ? NAME##_avx2 : NAME##_generic;   \
    }
#else
#define XSUM_CLONES(NAME, PARAMS, BODY, ARGS) CV_ISA_CLONES(NAME, PARAMS, BODY, ARGS)
#endif
#define DIGIT_MASK ((UINT64_C(1) << W) - 1)

int cv_xsum_init(cv_xsum *s, int64_t n, cv_err *err)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->window = malloc((size_t)(n ? n : 1));
    s->window_all = malloc((size_t)(n ? n : 1));
    s->digits = malloc(sizeof(int64_t) * (size_t)(2 * n + 1));
    if (!s->window || !s->window_all || !s->digits) {
        cv_xsum_free(s);
        return cv_errf(err, "out of memory for an exact sum of %lld values", (long long)n);
    }
    cv_xsum_wipe(s);
    return 0;
}

void cv_xsum_free(cv_xsum *s)
{
    free(s->window);
    free(s->window_all);
    free(s->digits);
    s->window = s->window_all = NULL;
    s->digits = NULL;
}

/* An empty sum is one with no term counted, whatever its memory holds (cv_xsum_add writes
 * the first term without reading); cv_xsum_wipe makes the memory say so too, for a rank that
 * joins an allreduce with nothing added. */
void cv_xsum_clear(cv_xsum *s) { s->digits[2 * s->n] = 0; }

void cv_xsum_wipe(cv_xsum *s)
{
    memset(s->window, CV_XSUM_EMPTY, (size_t)s->n);
    memset(s->digits, 0, sizeof(int64_t) * (size_t)(2 * s->n + 1));
}

/* a float's bits, read in place (a type that may alias any other) */
typedef uint32_t bits32 __attribute__((may_alias));

/* The element's digits when its window moves from `from` up to `to` (windows in digits): per
 * digit moved, lo is dropped and hi becomes lo. Nothing moves from an empty or into a
 * non-finite window. */
static inline void move_window(int64_t *hi, int64_t *lo, int from, int to)
{
    const int moved = from != CV_XSUM_EMPTY && to != CV_XSUM_NONFINITE ? to - from : 0;
    *lo = moved == 1 ? *hi : moved > 1 ? 0 : *lo;
    *hi = moved > 0 ? 0 : *hi;
}

/* hi and lo += the digits of v's m values, each element's window first raised to the value's
 * where that is higher. A value sig * 2^q (sig its 24-bit significand) below 2^top has the
 * window ceil(top / W) and sits s = q - (I - 2W) bits above the lo digit's unit, s <= 56: its
 * hi digit is floor(sig 2^(s - W)), s - W <= 16, its lo digit the low W bits of
 * floor(sig 2^s), which are 0 for s >= W. Both are right shifts of sig moved up by 16 and by
 * W - 1 bits (shifts clamped at 63, which leaves 0 of a 24-bit sig either way). */
static inline __attribute__((always_inline)) void deposit_body(int8_t *restrict win, int64_t *restrict hi,
                                                               int64_t *restrict lo, const float *restrict v,
                                                               int64_t m, bool fresh)
{
    const bits32 *vb = (const bits32 *)v;
    /* written without branches (masks and selects) so that it vectorises; a fresh sum (nothing
     * added yet: its memory holds anything) is written without being read */
    for (int64_t i = 0; i < m; i++) {
        const uint32_t u = vb[i], a = u & 0x7fffffff;
        const int32_t e = (int32_t)(a >> 23), e1 = e + (e == 0);
        /* |v| < 2^top; ceil(top / W) with top + 199 > 0: floor((top + 199) / 40) - 4 */
        const int32_t want = (e1 - 126 + 199) / W - 4;
        const int32_t cur = fresh ? CV_XSUM_EMPTY : win[i];
        const int32_t bad = (int32_t)(a >= 0x7f800000u) | (int32_t)(cur == CV_XSUM_NONFINITE);
        int32_t to = want > cur ? want : cur;
        to = a == 0 ? cur : to;
        to = bad ? CV_XSUM_NONFINITE : to;
        win[i] = (int8_t)to;
        /* the digits moved up to the new window: by one digit lo = hi, by more both cleared */
        const int32_t moved = ((cur != CV_XSUM_EMPTY) & !bad) * (to - cur);
        const int64_t one = -(int64_t)(moved == 1), up = -(int64_t)(moved >= 1);
        const int64_t hi0 = fresh ? 0 : hi[i], lo0 = fresh ? 0 : lo[i];
        const int64_t h0 = hi0 & ~up, l0 = (hi0 & one) | (lo0 & ~up);
        const int32_t s = e1 - 150 - (to * W - 2 * W);
        const uint32_t rh = (uint32_t)(W + 16 - s), rl = (uint32_t)(W - 1 - s); /* both >= 0 while s <= 56 */
        const uint64_t sig = (uint64_t)((a & 0x7fffff) | ((uint32_t)(e != 0) << 23));
        /* nothing to add for a zero, and nothing counts in a non-finite window */
        const uint64_t keep = (uint64_t)-(int64_t)(!bad & (a != 0));
        const uint64_t h = ((sig << 16) >> (rh < 63 ? rh : 63)) & keep;
        const uint64_t l = ((sig << (W - 1)) >> (rl < 63 ? rl : 63)) & DIGIT_MASK & keep & (uint64_t)-(int64_t)(s < W);
        const int64_t sign = (int64_t)(u >> 31); /* 0 or 1 */
        hi[i] = h0 + (((int64_t)h ^ -sign) + sign); /* -h for a negative value */
        lo[i] = l0 + (((int64_t)l ^ -sign) + sign);
    }
}

static inline __attribute__((always_inline)) void deposit_more(int8_t *win, int64_t *hi, int64_t *lo, const float *v,
                                                               int64_t m)
{
    deposit_body(win, hi, lo, v, m, false);
}

static inline __attribute__((always_inline)) void deposit_first(int8_t *win, int64_t *hi, int64_t *lo, const float *v,
                                                                int64_t m)
{
    deposit_body(win, hi, lo, v, m, true);
}

XSUM_CLONES(deposit, (int8_t *win, int64_t *hi, int64_t *lo, const float *v, int64_t m), deposit_more,
              (win, hi, lo, v, m))
XSUM_CLONES(deposit1, (int8_t *win, int64_t *hi, int64_t *lo, const float *v, int64_t m), deposit_first,
              (win, hi, lo, v, m))

int cv_xsum_add(cv_xsum *s, const float *v, cv_err *err)
{
    int64_t *terms = &s->digits[2 * s->n];
    if (*terms >= CV_XSUM_MAX_TERMS)
        return cv_errf(err, "internal: an exact sum of more than %lld vectors", (long long)CV_XSUM_MAX_TERMS);
    const deposit_fn dep = *terms == 0 ? deposit1_pick() : deposit_pick();
    (*terms)++;
    int64_t *hi = s->digits, *lo = s->digits + s->n;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < s->n; o += CHUNK) {
        const int64_t m = s->n - o < CHUNK ? s->n - o : CHUNK;
        dep(s->window + o, hi + o, lo + o, v + o, m);
    }
    return 0;
}

void cv_xsum_align(cv_xsum *s, const int8_t *windows)
{
    int64_t *hi = s->digits, *lo = s->digits + s->n;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s->n; i++) {
        if (s->window[i] == windows[i]) continue; /* most elements: read, nothing written */
        move_window(&hi[i], &lo[i], s->window[i], windows[i]);
        s->window[i] = windows[i];
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
 * rounded to odd then rounds to float as the exact value would: one rounding in all. */
static inline __attribute__((always_inline)) void result_body(float *restrict out, const int8_t *restrict win,
                                                              const int64_t *restrict hi, const int64_t *restrict lo,
                                                              int64_t m)
{
    bits32 *ob = (bits32 *)out;
    for (int64_t i = 0; i < m; i++) {
        const double a = small_int_to_double(hi[i]) * 0x1.0p40, b = small_int_to_double(lo[i]);
        const int w = win[i];
        const double t = a + b, bb = t - a, e = (a - (t - bb)) + (b - bb);
        uint64_t u;
        memcpy(&u, &t, sizeof u);
        /* inexact with an even last bit: one ulp towards the exact value (up in magnitude
         * when it lies beyond t) */
        const uint64_t fix = (uint64_t)(e != 0.0) & ~u & 1, away = (e > 0) == (t > 0);
        u += fix * (2 * away - 1);
        double odd, scale;
        memcpy(&odd, &u, sizeof odd);
        /* 2^(I - 2W), I = W w: a normal double for every window floats need */
        const uint64_t sb = (uint64_t)(w * W - 2 * W + 1023) << 52;
        memcpy(&scale, &sb, sizeof scale);
        const float f = (float)(odd * scale);
        uint32_t fb;
        memcpy(&fb, &f, sizeof fb);
        const uint32_t empty = -(uint32_t)(w == CV_XSUM_EMPTY), nonfinite = -(uint32_t)(w == CV_XSUM_NONFINITE);
        fb = (fb & ~(empty | nonfinite)) | (0x7fc00000u & nonfinite); /* 0, or a quiet NaN */
        ob[i] = fb;
    }
}

XSUM_CLONES(result, (float *out, const int8_t *win, const int64_t *hi, const int64_t *lo, int64_t m), result_body,
              (out, win, hi, lo, m))

void cv_xsum_round(float *out, const int8_t *window, const int64_t *hi, const int64_t *lo, int64_t m)
{
    const result_fn res = result_pick();
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < m; o += CHUNK) res(out + o, window + o, hi + o, lo + o, m - o < CHUNK ? m - o : CHUNK);
}

void cv_xsum_take(cv_xsum *s, float *out)
{
    if (cv_xsum_terms(s) == 0) /* nothing added: the memory may hold an old sum */
        memset(out, 0, sizeof(float) * (size_t)s->n);
    else
        cv_xsum_round(out, s->window, s->digits, s->digits + s->n, s->n);
    cv_xsum_clear(s);
}
