/* Benchmarks: training-step throughput on synthetic data with a per-layer breakdown, and the
 * fraction of the machine's measured FP32 peak that the step reaches. */
#ifndef CONVOY_BENCH_H
#define CONVOY_BENCH_H

#include "convoy/model.h"

typedef struct {
    int batch, steps, threads;
    double images_per_s;
    double step_ms;                               /* forward + backward + optimizer step */
    double fwd_ms[CV_MAX_LAYERS], bwd_ms[CV_MAX_LAYERS]; /* per step, per layer */
    double fwd_flops[CV_MAX_LAYERS], bwd_flops[CV_MAX_LAYERS]; /* per image */
    double optim_ms;                              /* per step */
    double flops_per_image;                       /* whole training step */
    double peak_flops;                            /* measured FMA peak, all threads */
} cv_bench_report;

/** Times `steps` training steps (after 3 warm-up steps) of batch `batch` on random inputs and
 *  labels, single process. */
int cv_bench(const cv_model_spec *spec, int batch, int steps, cv_bench_report *r, cv_err *err);

#endif
