/* Module train (its preamble: convoy/train.h). Benchmarks: training-step and inference-pass throughput on synthetic data with a per-layer
 * breakdown, and the fraction of the machine's measured FP32 peak that they reach. */
#ifndef CONVOY_BENCH_H
#define CONVOY_BENCH_H

#include "convoy/dist.h"
#include "convoy/model.h"

typedef struct {
    int batch, steps, threads;
    double images_per_s;
    double step_ms;                               /* forward + backward + optimizer step */
    double fwd_ms[CV_MAX_LAYERS], bwd_ms[CV_MAX_LAYERS]; /* per step, per layer */
    double fwd_flops[CV_MAX_LAYERS], bwd_flops[CV_MAX_LAYERS]; /* per image */
    double optim_ms;                              /* per step */
    double augment_ms;                            /* per step, rank 0: the augment line (0 without) */
    double flops_per_image;                       /* whole training step */
    double peak_flops;                            /* measured FMA peak, all threads */
    int ranks;
    int64_t params;
    double comm_ms;                               /* per step: gradient averaging across ranks */
    double batch_sum_ms;                          /* per step: batchnorm's statistics' sums across ranks,
                                                     waiting for the slower rank included */
    double batch_sums;                            /* ... their number per step */
    double allreduce_small_us;                    /* one 8-byte MPI_Allreduce */
    double allreduce_grad_ms;                     /* one MPI_Allreduce of the whole gradient */
    double peak_rss_mb;                           /* this rank's peak resident memory during the run, MiB */
    bool rss_of_process;                          /* ... or since the process started (no /proc/self/clear_refs) */
    int tile;                                     /* samples per tile of the spatial layers (0: none) */
    bool fused[CV_MAX_LAYERS];                    /* layer i ran as one kernel with i + 1 (its time shows on i) */
    int winograd[CV_MAX_LAYERS];                  /* layer i's products run by Winograd (CV_WINO_* mask) */
    double repro_step_ms, repro_images_per_s;     /* the same steps with --reproducible (0: not run) */
    double repro_comm_ms;                         /* per step: its exact sum's allreduce */
    /* the first step's gradient against the leaves' float64 sum rounded to float: the share of
     * elements equal to it and the largest distance in float ulps, for the exact sum and for a
     * float32 sum of the leaves in order */
    double repro_exact_share, repro_exact_ulps, repro_float_share, repro_float_ulps;
} cv_bench_report;

/** Times `steps` data-parallel training steps (after 3 warm-up steps) of GLOBAL batch `batch`
 *  on random inputs and labels: each rank computes its slice and the gradients are averaged
 *  as in training (bucket_bytes as cv_train_opts). Per-layer times are rank 0's. With more
 *  than one rank it also times bare allreduces (latency and gradient-sized). A model with an
 *  augment line has each step's inputs augmented first, timed as augment_ms (part of step_ms).
 *  With `reproducible` it then times the same steps as --reproducible trains them (leaves, exact
 *  sum, integer allreduce): repro_step_ms, repro_images_per_s, repro_comm_ms. */
int cv_bench(const cv_model_spec *spec, int batch, int steps, const cv_dist *d, int64_t bucket_bytes,
             bool reproducible, cv_bench_report *r, cv_err *err);

/** Times `passes` inference-mode forward passes (eval and predict: dropout off, no backward)
 *  of GLOBAL batch `batch` on random inputs, after 3 warm-up passes, each rank its slice. Fills
 *  the same report as cv_bench: step_ms is one pass, bwd_ms, optim_ms and comm_ms are 0, and
 *  flops_per_image counts the forward pass only. */
int cv_bench_inference(const cv_model_spec *spec, int batch, int passes, const cv_dist *d, cv_bench_report *r,
                       cv_err *err);

/** The suite's built-in models (`convoy bench --suite`): the shapes users bring beside
 *  launch/models/ (5x5, 7x7 strided, 1x1 and stride-2 convolutions, dense layers >= 1024 wide,
 *  plain 3x3 VGG stages), each a model file text whose time goes mostly to its shape. */
typedef struct {
    const char *name, *what, *text;
} cv_bench_shape;
extern const cv_bench_shape cv_bench_shapes[];
extern const int cv_bench_n_shapes;

/** SGEMM throughput: C (M,N) = A (M,K) B (K,N) on one thread and on all OpenMP threads, with
 *  the measured FMA peak of the same vector width for each; with bf16, cv_bgemm_ep's against
 *  the bf16 peak (cv_peak_bf16_flops). */
typedef struct {
    int M, N, K, threads;
    bool bf16;
    const char *path;           /* the micro-kernel: avx512, avx2, generic; bf16: avx512bf16, emulated */
    double gflops1, peak1;      /* one thread */
    double gflops, peak;        /* `threads` threads */
} cv_gemm_report;
int cv_bench_gemm(int M, int N, int K, bool bf16, cv_gemm_report *r, cv_err *err);

#endif
