/* The machine's FP32 peak as a loop of independent fused multiply-adds, the roofline that
 * benchmarks compare the kernels against, and its bf16 twin (VDPBF16PS: two products per lane). */
#include <string.h>

#include "convoy/kernels.h"
#include "convoy/timer.h"

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

/* 12 independent accumulators hide the FMA latency on two pipes; returns FLOPs done. The
 * vector width is the GEMM micro-kernel's, so the roofline is the one the kernels can reach. */
#define FMA_LOOP(NAME, VEC, TARGET)                                                            \
    TARGET static double NAME(long iters, float *sink)                                         \
    {                                                                                          \
        VEC acc[12];                                                                           \
        const VEC a = (VEC){0} + 0.999f, b = (VEC){0} + 1e-3f;                                 \
        for (int i = 0; i < 12; i++) acc[i] = b * (float)i;                                    \
        for (long it = 0; it < iters; it++)                                                    \
            for (int i = 0; i < 12; i++) acc[i] = acc[i] * a + b;                              \
        VEC s = acc[0];                                                                        \
        for (int i = 1; i < 12; i++) s += acc[i];                                              \
        *sink = s[0];                                                                          \
        return (double)iters * 12 * (sizeof(VEC) / sizeof(float)) * 2;                         \
    }

FMA_LOOP(fma_generic, v4, )
#if defined(__x86_64__) && defined(__GNUC__)
FMA_LOOP(fma_avx2, v8, __attribute__((target("avx2,fma"))))
FMA_LOOP(fma_avx512, v16, __attribute__((target("avx512f"))))

#include <immintrin.h>
/* the same with VDPBF16PS: 32 multiply-adds per instruction */
__attribute__((target("avx512f,avx512bf16"))) static double dot_bf16(long iters, float *sink)
{
    __m512 acc[12];
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3a83); /* 1, 1e-3 */
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 32 * 2;
}
#endif

static double peak_of(double (*loop)(long, float *), double seconds);

double cv_peak_flops(double seconds)
{
    double (*loop)(long, float *) = fma_generic;
#if defined(__x86_64__) && defined(__GNUC__)
    const char *path = cv_gemm_path();
    const bool blas = strcmp(path, "openblas") == 0; /* then the widest this CPU runs */
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(path, "avx512") == 0 || (blas && avx2 && __builtin_cpu_supports("avx512f"))) loop = fma_avx512;
    else if (strcmp(path, "avx2") == 0 || (blas && avx2)) loop = fma_avx2;
#endif
    return peak_of(loop, seconds);
}

double cv_peak_bf16_flops(double seconds)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (cv_bf16_native()) return peak_of(dot_bf16, seconds);
#endif
    return cv_peak_flops(seconds); /* emulated: one fused multiply-add per product */
}

/* one round of iters on every thread: FLOP/s */
static double round_of(double (*loop)(long, float *), long iters, float *sink, double *t)
{
    const double t0 = cv_now();
    double flops = 0.0;
#pragma omp parallel reduction(+ : flops)
    {
        float s;
        flops += loop(iters, &s);
#pragma omp critical
        *sink += s;
    }
    *t = cv_now() - t0;
    return *t > 0 ? flops / *t : 0.0;
}

enum { PEAK_ROUNDS = 5 };

/* Rounds grow until one takes a fifth of the budget; then the best of PEAK_ROUNDS such rounds,
 * so that a round the machine's other work interrupted does not lower the roofline. */
static double peak_of(double (*loop)(long, float *), double seconds)
{
    float sink = 0.0f;
    long iters = 1 << 16;
    double t = 0.0, best = round_of(loop, iters, &sink, &t);
    const double target = seconds / PEAK_ROUNDS;
    while (t < target && iters <= (1L << 40)) {
        iters = t < target / 4 ? iters * 4 : (long)((double)iters * target / (t > 0 ? t : 1e-9));
        best = round_of(loop, iters, &sink, &t);
    }
    for (int r = 1; r < PEAK_ROUNDS; r++) {
        const double f = round_of(loop, iters, &sink, &t);
        if (f > best) best = f;
    }
    /* sink is read so the loop cannot be optimised away */
    return best + (sink == 12345.0f ? 1.0 : 0.0);
}
