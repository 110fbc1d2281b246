/* convoy bench: the training step, or the inference pass, alone (no data loading), timed per
 * layer, against the measured peak. Inputs are uniform random, targets random labels or values. */
#include "convoy/bench.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/exactsum.h"
#include "convoy/kernels.h"
#include "convoy/optim.h"
#include "convoy/rng.h"
#include "convoy/timer.h"
#include "convoy/train.h"

/* Mean seconds of one MPI_Allreduce of n floats (after one untimed call). */
static double time_allreduce(const cv_dist *d, float *buf, int64_t n, int reps, cv_err *err)
{
    if (cv_dist_sum_f32(d, buf, n, err) || cv_dist_barrier(d, err)) return -1.0;
    const double t0 = cv_now();
    for (int i = 0; i < reps; i++)
        if (cv_dist_sum_f32(d, buf, n, err)) return -1.0;
    return (cv_now() - t0) / reps;
}

/* The report's set-up and this rank's network for its `local` rows of a global batch. */
/* batchnorm's in-pass sums over the ranks, timed */
typedef struct {
    const cv_dist *d;
    double seconds;
    int64_t calls;
    int failed;
    cv_err err;
} bench_sum;

static int bench_batch_sum(void *arg, double *v, int64_t n)
{
    bench_sum *b = arg;
    const double t0 = cv_now();
    if (n > INT_MAX || cv_dist_sum_f64(b->d, v, (int)n, b->failed ? NULL : &b->err)) b->failed = 1;
    b->seconds += cv_now() - t0;
    b->calls++;
    return b->failed ? -1 : 0;
}

/* What the ranks must share (they make the same collectives): the model, the batch, the steps
 * and the mode (-1 inference, 0 training, 1 --reproducible training); checked first. */
typedef struct {
    const cv_model_spec *spec;
    int batch, steps, mode;
    int64_t bucket_bytes;
} bench_run;

static void bench_settings(FILE *f, const void *arg)
{
    const bench_run *b = arg;
    cv_train_model_settings(f, b->spec);
    cv_setting_value(f, "--batch-size", "%d", b->batch);
    cv_setting_value(f, "--steps", "%d", b->steps);
    cv_setting_switch(f, "--inference", b->mode < 0);
    cv_setting_switch(f, "--reproducible", b->mode > 0);
    if (b->bucket_bytes) cv_setting_value(f, "--allreduce", "bucketed --bucket-mb %lld", (long long)(b->bucket_bytes >> 20));
    else cv_setting_value(f, "--allreduce", "blocking");
}

/* mode: -1 inference, 0 training, 1 --reproducible training */
static cv_net *bench_net(const cv_model_spec *spec, int batch, int steps, const cv_dist *d, int64_t bucket_bytes,
                         int mode, cv_bench_report *r, int *local, cv_err *err)
{
    const bench_run run = {spec, batch, steps, mode, bucket_bytes};
    if (cv_dist_check_written(d, bench_settings, &run, "model file", err)) return NULL;
    memset(r, 0, sizeof *r);
    r->batch = batch;
    r->steps = steps;
    r->ranks = d->size;
#ifdef _OPENMP
    r->threads = omp_get_max_threads();
#else
    r->threads = 1;
#endif
    int64_t lo, hi;
    cv_dist_slice(d, 0, batch, &lo, &hi);
    *local = (int)(hi - lo);
    cv_net *net = cv_net_create(spec, *local > 0 ? *local : 1, spec->fit.seed, err);
    if (cv_dist_agree(d, !net, err)) {
        cv_net_free(net);
        return NULL;
    }
    r->params = cv_net_param_count(net);
    r->tile = cv_net_tile_for(net, *local);
    for (int i = 1; r->tile && i < cv_net_layers(net); i++) r->fused[i] = cv_net_fused_with_next(net, i);
    for (int i = 1; i < cv_net_layers(net); i++) r->winograd[i] = cv_net_conv_winograd(net, i);
    return net;
}

/* Starts this run's resident-memory high-water mark: Linux resets a process's VmHWM to its
 * current RSS when "5" is written to /proc/self/clear_refs (since 4.0). Whether it could. */
static bool rss_mark(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    const bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* VmHWM of /proc/self/status in MiB, or -1. */
static double rss_high_water(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double mb = -1.0;
    long kb;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) mb = (double)kb / 1024.0;
    fclose(f);
    return mb;
}

/* The machine's side of the report: the measured FMA peak (every rank measures its share of
 * the machine at once; the peak is their sum) and this rank's peak resident memory since
 * `marked` (rss_mark at the run's start) or, when that failed, since the process started. */
static int bench_machine(const cv_dist *d, bool marked, cv_bench_report *r, cv_err *err)
{
    double peak = cv_peak_flops(0.5);
    if (cv_dist_sum_f64(d, &peak, 1, err)) return -1;
    r->peak_flops = peak;
    r->rss_of_process = true;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) r->peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    const double hwm = marked ? rss_high_water() : -1.0;
    if (hwm >= 0) {
        r->peak_rss_mb = hwm;
        r->rss_of_process = false;
    }
    return 0;
}

/* out = rows of x (inputs in [0, 1) standing for uint8 images scaled by 1/255), augmented as
 * training would augment them at step `step`. */
static int augment_rows(const cv_model_spec *spec, float *out, const float *x, int rows, const int64_t *ids,
                        int step, cv_err *err)
{
    const cv_augment_units units = {.unit = 1.0f / 255.0f, .max_value = 255.0f};
    const cv_shape *sh = &spec->layers[0].shape;
    memcpy(out, x, sizeof(float) * (size_t)rows * (size_t)cv_shape_size(*sh));
    return cv_augment_batch(&spec->augment, out, rows, (int)sh->d[0], (int)sh->d[1], (int)sh->d[2], ids,
                            spec->fit.seed, step, &units, err);
}

/* Distance in float ulps of v from w (the float64 sum rounded to float). */
static double ulps(float v, float w)
{
    const double u = w == 0.0f ? 0x1.0p-149 : ldexp(1.0, ilogb(w) - 23);
    return fabs((double)v - (double)w) / u;
}

/* How far the exact sum and the float32 sum lie from the float64 one: the share of elements
 * equal to it rounded to float, and the largest distance in ulps. */
static void sum_errors(const float *exact, const float *seq, const double *ref, int64_t n, cv_bench_report *r)
{
    int64_t same_x = 0, same_s = 0;
    double most_x = 0.0, most_s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float w = (float)ref[i];
        same_x += exact[i] == w;
        same_s += seq[i] == w;
        most_x = fmax(most_x, ulps(exact[i], w));
        most_s = fmax(most_s, ulps(seq[i], w));
    }
    r->repro_exact_share = (double)same_x / (double)(n ? n : 1);
    r->repro_float_share = (double)same_s / (double)(n ? n : 1);
    r->repro_exact_ulps = most_x;
    r->repro_float_ulps = most_s;
}

/* The same steps as --reproducible trains them: this rank's leaves of the global batch, each
 * computed on its own and added into an exact sum, then the integer allreduce. */
static int bench_reproducible(const cv_model_spec *spec, cv_net *net, cv_optim *opt, const float *x, float *xa,
                              const int32_t *y, const float *t, const int64_t *ids, bool labels, int batch, int steps,
                              const cv_dist *d, cv_bench_report *r, cv_err *err)
{
    const int64_t in = cv_shape_size(spec->layers[0].shape), ngrad = cv_net_grad_count(net);
    const int K = cv_net_outputs(net);
    const int64_t L = cv_repro_leaves(batch, batch), j0 = L * d->rank / d->size, j1 = L * (d->rank + 1) / d->size;
    cv_xsum xs = {0};
    /* the first step's leaves also summed in float64 (the reference) and in float32 in leaf order
     * (the default's kind of sum), to measure the exact sum's error */
    double *ref = cv_calloc((size_t)ngrad, sizeof(double), "reference sum", err);
    float *seq = cv_calloc((size_t)ngrad, sizeof(float), "float sum", err);
    int rc = -1;
    /* memory can run out on one rank only: all agree before the first collective */
    if (cv_dist_agree(d, !ref || !seq || cv_net_reserve(net, (batch + (int)L - 1) / (int)L, err) ||
                             cv_xsum_init(&xs, ngrad, err), err))
        goto done;
    cv_net_profile(net, NULL, NULL);
    double t0 = 0.0;
    for (int s = -3; s < steps; s++) {
        if (s == 0) {
            if (cv_dist_barrier(d, err)) goto done;
            xs.seconds = 0.0;
            t0 = cv_now();
        }
        for (int64_t j = j0; j < j1; j++) {
            const int p = (int)(batch * j / L), c = (int)(batch * (j + 1) / L) - p;
            const float *in_x = x + (size_t)p * in;
            if (spec->has_augment) {
                if (augment_rows(spec, xa + (size_t)p * in, in_x, c, ids + p, s, err)) goto done;
                in_x = xa + (size_t)p * in;
            }
            cv_net_zero_grad(net);
            cv_net_forward(net, in_x, c, true, spec->fit.seed, s, ids + p);
            cv_net_backward(net, labels ? y + p : NULL, labels ? NULL : t + (size_t)p * K, c, batch);
            if (cv_xsum_add(&xs, cv_net_grads(net), err)) goto done;
            const float *g = cv_net_grads(net);
            for (int64_t i = 0; s == -3 && i < ngrad; i++) {
                ref[i] += g[i];
                seq[i] += g[i];
            }
        }
        if (cv_xsum_allreduce_take(&xs, d, cv_net_grads(net), err)) goto done;
        if (s == -3 && (cv_dist_sum_f64(d, ref, (int)ngrad, err) || cv_dist_sum_f32(d, seq, ngrad, err))) goto done;
        if (s == -3) sum_errors(cv_net_grads(net), seq, ref, ngrad, r);
        cv_optim_step(opt, cv_net_params(net), cv_net_grads(net));
    }
    const double total = cv_now() - t0;
    r->repro_step_ms = 1e3 * total / steps;
    r->repro_images_per_s = (double)batch * steps / total;
    r->repro_comm_ms = 1e3 * xs.seconds / steps;
    rc = 0;
done:
    free(ref);
    free(seq);
    cv_xsum_free(&xs);
    return rc;
}

int cv_bench(const cv_model_spec *spec, int batch, int steps, const cv_dist *d, int64_t bucket_bytes,
             bool reproducible, cv_bench_report *r, cv_err *err)
{
    const bool marked = rss_mark();
    int local;
    cv_net *net = bench_net(spec, batch, steps, d, bucket_bytes, reproducible ? 1 : 0, r, &local, err);
    if (!net) return -1;
    cv_grad_sync sync;
    int64_t layer_off[CV_MAX_LAYERS];
    const int nl = cv_net_grad_layers(net, layer_off);
    const int64_t ngrad = cv_net_grad_count(net); /* frozen layers have no gradients to send */
    cv_grad_sync_init(&sync, d, cv_net_grads(net), ngrad, bucket_bytes, layer_off, nl);
    const int64_t in = cv_shape_size(spec->layers[0].shape);
    const int K = cv_net_outputs(net);
    cv_optim opt = {0};
    float *x = cv_malloc(sizeof(float) * (size_t)(batch * in), "bench inputs", err);
    float *t = cv_malloc(sizeof(float) * (size_t)(batch * K), "bench targets", err);
    int32_t *y = cv_malloc(sizeof(int32_t) * (size_t)batch, "bench labels", err);
    int64_t *ids = cv_malloc(sizeof(int64_t) * (size_t)batch, "bench ids", err);
    float *xa = NULL; /* the augmented copy of x, with an augment line */
    int rc = -1;
    if (!x || !t || !y || !ids || cv_optim_init(&opt, &spec->optim, ngrad, err)) goto done;
    cv_rng g = {spec->fit.seed};
    for (int64_t i = 0; i < batch * in; i++) x[i] = cv_unit(cv_rng_next(&g));
    for (int64_t i = 0; i < batch * K; i++) t[i] = cv_unit(cv_rng_next(&g));
    for (int i = 0; i < batch; i++) {
        y[i] = (int32_t)cv_rng_below(&g, K > 1 ? (uint64_t)K : 2);
        ids[i] = i;
    }
    if (spec->has_augment && !(xa = cv_malloc(sizeof(float) * (size_t)(batch * in), "bench inputs", err))) goto done;
    /* regression losses take float targets; the rest take labels */
    const bool labels = spec->loss.kind == CV_LOSS_SPARSE_CE || spec->loss.kind == CV_LOSS_CATEGORICAL_CE ||
                        spec->loss.kind == CV_LOSS_BINARY_CE;
    double fwd[CV_MAX_LAYERS] = {0}, bwd[CV_MAX_LAYERS] = {0}, topt = 0.0, taug = 0.0, t0 = 0.0;
    bench_sum bs = {d, 0.0, 0, 0, {{0}}};
    const bool batch_stats = cv_net_batch_layers(net) > 0 && d->size > 1;
    if (batch_stats) cv_net_set_batch_sum(net, bench_batch_sum, &bs);
    for (int s = -3; s < steps; s++) {
        if (s == 0) { /* warm-up done: start the clocks */
            if (cv_dist_barrier(d, err)) goto done;
            cv_net_profile(net, fwd, bwd);
            sync.seconds = bs.seconds = 0.0;
            bs.calls = 0;
            t0 = cv_now();
        }
        cv_net_zero_grad(net);
        if (spec->has_augment && local > 0) { /* on the fly, as training does: part of the step */
            const double a0 = cv_now();
            if (augment_rows(spec, xa, x, local, ids, s, err)) goto done;
            if (s >= 0) taug += cv_now() - a0;
        }
        if (local > 0) {
            cv_net_forward(net, spec->has_augment ? xa : x, local, true, spec->fit.seed, s, ids);
            cv_net_backward(net, labels ? y : NULL, labels ? NULL : t, local, batch);
        } else if (batch_stats) {
            cv_net_batch_idle(net);
        }
        if (bs.failed) {
            cv_errf(err, "%s", bs.err.msg);
            goto done;
        }
        if (cv_grad_sync_finish(&sync, err)) goto done;
        const double o0 = cv_now();
        cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net));
        if (s >= 0) topt += cv_now() - o0;
    }
    const double total = cv_now() - t0;
    r->step_ms = 1e3 * total / steps;
    r->images_per_s = (double)batch * steps / total;
    r->optim_ms = 1e3 * topt / steps;
    r->augment_ms = 1e3 * taug / steps;
    for (int i = 1; i < cv_net_layers(net); i++) {
        r->fwd_ms[i] = 1e3 * fwd[i] / steps;
        r->bwd_ms[i] = 1e3 * bwd[i] / steps;
        cv_net_layer_flops(net, i, &r->fwd_flops[i], &r->bwd_flops[i]);
        r->flops_per_image += r->fwd_flops[i] + r->bwd_flops[i];
    }
    r->comm_ms = 1e3 * sync.seconds / steps;
    r->batch_sum_ms = 1e3 * bs.seconds / steps;
    r->batch_sums = (double)bs.calls / steps;
    if (batch_stats) cv_net_set_batch_sum(net, NULL, NULL); /* (the reproducible steps below are one rank's) */
    if (d->size > 1) {
        float small[2] = {0};
        const double a = time_allreduce(d, small, 2, 200, err);
        const double whole = time_allreduce(d, cv_net_grads(net), ngrad, 20, err);
        if (a < 0 || whole < 0) goto done;
        r->allreduce_small_us = 1e6 * a;
        r->allreduce_grad_ms = 1e3 * whole;
    }
    if (reproducible && bench_reproducible(spec, net, &opt, x, xa, y, t, ids, labels, batch, steps, d, r, err))
        goto done;
    if (bench_machine(d, marked, r, err)) goto done;
    rc = 0;
done:
    cv_optim_free(&opt);
    free(x);
    free(xa);
    free(t);
    free(y);
    free(ids);
    cv_net_free(net);
    return rc;
}

int cv_bench_inference(const cv_model_spec *spec, int batch, int passes, const cv_dist *d, cv_bench_report *r,
                       cv_err *err)
{
    const bool marked = rss_mark();
    int local;
    cv_net *net = bench_net(spec, batch, passes, d, 0, -1, r, &local, err);
    if (!net) return -1;
    for (int i = 1; i < cv_net_layers(net); i++) r->winograd[i] &= CV_WINO_FORWARD;
    const int64_t in = cv_shape_size(spec->layers[0].shape);
    float *x = cv_malloc(sizeof(float) * (size_t)(local > 0 ? local : 1) * (size_t)in, "bench inputs", err);
    int rc = -1;
    if (!x) goto done;
    cv_rng g = {spec->fit.seed};
    for (int64_t i = 0; i < local * in; i++) x[i] = cv_unit(cv_rng_next(&g)); /* as uint8 images / 255 */
    double fwd[CV_MAX_LAYERS] = {0}, bwd[CV_MAX_LAYERS] = {0}, t0 = 0.0;
    for (int s = -3; s < passes; s++) {
        if (s == 0) {
            if (cv_dist_barrier(d, err)) goto done;
            cv_net_profile(net, fwd, bwd);
            t0 = cv_now();
        }
        if (local > 0) cv_net_forward(net, x, local, false, spec->fit.seed, 0, NULL);
    }
    if (cv_dist_barrier(d, err)) goto done; /* the slowest rank's passes count */
    const double total = cv_now() - t0;
    r->step_ms = 1e3 * total / passes;
    r->images_per_s = (double)batch * passes / total;
    for (int i = 1; i < cv_net_layers(net); i++) {
        double bwd_flops;
        r->fwd_ms[i] = 1e3 * fwd[i] / passes;
        cv_net_layer_flops(net, i, &r->fwd_flops[i], &bwd_flops);
        r->flops_per_image += r->fwd_flops[i];
    }
    if (bench_machine(d, marked, r, err)) goto done;
    rc = 0;
done:
    free(x);
    cv_net_free(net);
    return rc;
}

/* GFLOP/s of C = A B (M,N,K) at the current thread count: best of `reps` timed calls after one
 * warm-up call, so the packing buffers exist and the caches are warm. */
static double gemm_gflops(int M, int N, int K, const float *A, const float *B, float *C, int reps, bool bf16)
{
    void (*gemm)(bool, bool, int, int, int, float, const float *, int, const float *, int, float, float *, int,
                 const cv_epilogue *) = bf16 ? cv_bgemm_ep : cv_sgemm_ep;
    gemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, NULL);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        const double t0 = cv_now();
        gemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, NULL);
        const double t = cv_now() - t0;
        if (t < best) best = t;
    }
    return 2.0 * M * N * K / best / 1e9;
}

int cv_bench_gemm(int M, int N, int K, bool bf16, cv_gemm_report *r, cv_err *err)
{
    memset(r, 0, sizeof *r);
    r->M = M, r->N = N, r->K = K;
    r->bf16 = bf16;
    r->path = bf16 ? cv_bgemm_path() : cv_gemm_path();
    double (*peak)(double) = bf16 ? cv_peak_bf16_flops : cv_peak_flops;
#ifdef _OPENMP
    r->threads = omp_get_max_threads();
#else
    r->threads = 1;
#endif
    float *A = cv_malloc(sizeof(float) * (size_t)M * K, "gemm A", err);
    float *B = cv_malloc(sizeof(float) * (size_t)K * N, "gemm B", err);
    float *C = cv_malloc(sizeof(float) * (size_t)M * N, "gemm C", err);
    if (!A || !B || !C) {
        free(A), free(B), free(C);
        return -1;
    }
    cv_rng g = {1};
    for (int64_t i = 0; i < (int64_t)M * K; i++) A[i] = cv_unit(cv_rng_next(&g)) - 0.5f;
    for (int64_t i = 0; i < (int64_t)K * N; i++) B[i] = cv_unit(cv_rng_next(&g)) - 0.5f;
    /* enough repetitions for about a second of work at 100 GFLOP/s, at least 3, at most 10^4 */
    const double flops = 2.0 * M * N * K;
    const int reps = flops > 3e10 ? 3 : flops < 1e7 ? 10000 : (int)(1e11 / flops) + 3;
#ifdef _OPENMP
    omp_set_num_threads(1);
    r->peak1 = peak(0.3) / 1e9;
    r->gflops1 = gemm_gflops(M, N, K, A, B, C, reps, bf16);
    omp_set_num_threads(r->threads);
#else
    r->peak1 = peak(0.3) / 1e9;
    r->gflops1 = gemm_gflops(M, N, K, A, B, C, reps, bf16);
#endif
    if (r->threads > 1) {
        r->peak = peak(0.3) / 1e9;
        r->gflops = gemm_gflops(M, N, K, A, B, C, reps, bf16);
    } else {
        r->peak = r->peak1;
        r->gflops = r->gflops1;
    }
    free(A), free(B), free(C);
    return 0;
}
