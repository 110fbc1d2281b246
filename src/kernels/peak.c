/* The machine's FP32 peak as a loop of independent fused multiply-adds, the roofline that
 * benchmarks compare the kernels against. */
#include <string.h>

#include "convoy/kernels.h"
#include "convoy/timer.h"

typedef float v8 __attribute__((vector_size(32)));

/* 12 accumulators hide the FMA latency on two pipes; returns FLOPs done */
static inline __attribute__((always_inline)) double fma_loop(long iters, float *sink)
{
    v8 acc[12];
    const v8 a = {0.999f, 0.999f, 0.999f, 0.999f, 0.999f, 0.999f, 0.999f, 0.999f};
    const v8 b = {1e-3f, 1e-3f, 1e-3f, 1e-3f, 1e-3f, 1e-3f, 1e-3f, 1e-3f};
    for (int i = 0; i < 12; i++) acc[i] = b * (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = acc[i] * a + b;
    v8 s = acc[0];
    for (int i = 1; i < 12; i++) s += acc[i];
    *sink = s[0];
    return (double)iters * 12 * 8 * 2;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters, float *sink) { return fma_loop(iters, sink); }
#endif
static double fma_generic(long iters, float *sink) { return fma_loop(iters, sink); }

double cv_peak_flops(double seconds)
{
    double (*loop)(long, float *) = fma_generic;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) loop = fma_avx2;
#endif
    float sink = 0.0f;
    long iters = 1 << 16;
    double t = 0.0, flops = 0.0;
    /* grow until one round takes a quarter of the budget, then time a full round */
    for (;;) {
        const double t0 = cv_now();
        flops = 0.0;
#pragma omp parallel reduction(+ : flops)
        {
            float s;
            flops += loop(iters, &s);
#pragma omp critical
            sink += s;
        }
        t = cv_now() - t0;
        if (t >= seconds || iters > (1L << 40)) break;
        iters = t < seconds / 4 ? iters * 4 : (long)((double)iters * seconds / (t > 0 ? t : 1e-9));
    }
    /* sink is read so the loop cannot be optimised away */
    return t > 0 ? flops / t + (sink == 12345.0f ? 1.0 : 0.0) : 0.0;
}
