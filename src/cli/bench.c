/* convoy bench: one model's training steps or inference passes timed per layer; --suite: the
 * built-in shapes (cv_bench_shapes) and the models given, one table; --gemm: SGEMM alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "convoy/bench.h"
#include "convoy/kernels.h"
#include "convoy/model.h"
#include "convoy/train.h"

/* bench --gemm N or M,N,K */
static int bench_gemm(const cv_dist *d, const char *arg, bool bf16)
{
    long mnk[3];
    int n = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 3) return cli_usage_fail(d, "--gemm: expected N or M,N,K, got '%s'", arg);
        if (cli_int("--gemm", tok, 1, 16384, &mnk[n++])) return CLI_BAD_INPUT;
    }
    if (n == 1) mnk[1] = mnk[2] = mnk[0];
    else if (n != 3) return cli_usage_fail(d, "--gemm: expected N or M,N,K, got '%s'", arg);
    cv_gemm_report r;
    cv_err err;
    if (cv_bench_gemm((int)mnk[0], (int)mnk[1], (int)mnk[2], bf16, &r, &err)) return cli_fail(d, "%s", err.msg);
    if (d->rank != 0) return CLI_OK;
    printf("%s %dx%dx%d, %s%s\n", bf16 ? "bf16 gemm" : "sgemm", r.M, r.N, r.K, r.path,
           strcmp(r.path, "openblas") == 0 ? " (cblas_sgemm)" : " micro-kernel");
    const char *peak = bf16 ? "bf16 peak" : "FMA peak";
    printf("  1 thread : %6.1f GFLOP/s of %6.1f measured %s: %5.1f%%\n", r.gflops1, r.peak1, peak,
           100.0 * r.gflops1 / r.peak1);
    if (r.threads > 1)
        printf("  %d threads: %6.1f GFLOP/s of %6.1f measured %s: %5.1f%%, %.2fx one thread\n", r.threads,
               r.gflops, r.peak, peak, 100.0 * r.gflops / r.peak, r.gflops / r.gflops1);
    return CLI_OK;
}

/* One model's report, as rank 0 prints it. */
static void print_report(const char *model, const cv_model_spec *spec, const cv_bench_report *r, bool inference,
                         bool reproducible, bool csv)
{
    const double achieved = r->flops_per_image * r->images_per_s;
    if (csv) {
        printf("%d,%d,%d,%.1f,%.3f,%.3f,%.4f,%lld,%.2f,%.4f\n", r->ranks, r->threads, r->batch, r->images_per_s,
               r->step_ms, r->comm_ms, r->comm_ms / r->step_ms, (long long)r->params, r->allreduce_small_us,
               r->allreduce_grad_ms);
    } else {
        printf("bench %s: global batch %d, %d rank%s x %d thread%s, %d %s\n", model, r->batch, r->ranks,
               r->ranks > 1 ? "s" : "", r->threads, r->threads > 1 ? "s" : "", r->steps,
               inference ? "inference passes (forward only, dropout off)" : "steps");
        if (spec->fit.precision == CV_PRECISION_BF16)
            printf("  --precision bf16: dense and conv2d products on %s (GFLOP/s and %% of peak against the "
                   "FP32 FMA peak)\n", cv_bgemm_path());
        printf("  %-16s %9s %9s %9s %7s\n", "layer (rank 0)", "fwd ms", inference ? "" : "bwd ms", "GFLOP/s", "share");
        const double local = (double)r->batch / r->ranks;
        for (int i = 1; i < spec->n_layers; i++) {
            const double ms = r->fwd_ms[i] + r->bwd_ms[i];
            const double gf = ms > 0 ? (r->fwd_flops[i] + r->bwd_flops[i]) * local / (ms * 1e6) : 0.0;
            char name[40], bwd[16] = "";
            snprintf(name, sizeof name, "%02d %s", i, cv_layer_kind_name(spec->layers[i].kind));
            if (!inference) snprintf(bwd, sizeof bwd, "%.3f", r->bwd_ms[i]);
            printf("  %-16s %9.3f %9s %9.1f %6.1f%%\n", name, r->fwd_ms[i], bwd, gf, 100.0 * ms / r->step_ms);
        }
        if (!inference)
            printf("  %-16s %9s %9.3f %9s %6.1f%%\n", "optimizer", "", r->optim_ms, "", 100.0 * r->optim_ms / r->step_ms);
        if (spec->has_augment && !inference)
            printf("  %-16s %9.3f %9s %9s %6.1f%%\n", "augment", r->augment_ms, "", "", 100.0 * r->augment_ms / r->step_ms);
        if (r->ranks > 1 && !inference)
            printf("  %-16s %9s %9.3f %9s %6.1f%%\n", "allreduce", "", r->comm_ms, "", 100.0 * r->comm_ms / r->step_ms);
        if (r->batch_sums > 0 && !inference)
            printf("  %-16s %9s %9.3f %9s %6.1f%%   (%.0f per step, in the layers' times above)\n", "batchnorm sums",
                   "", r->batch_sum_ms, "", 100.0 * r->batch_sum_ms / r->step_ms, r->batch_sums);
        if (r->tile)
            printf("tiles: the layers before the first dense one run %d samples at a time, threads taking tiles in turn "
                   "(CONVOY_TILE=N sets N, 0 turns tiling off)\n", r->tile);
        for (int i = 1; i < spec->n_layers; i++)
            if (r->fused[i])
                printf("fused: %02d %s and %02d %s run as one kernel, its time on %02d (CONVOY_FUSE=0: apart)\n", i,
                       cv_layer_kind_name(spec->layers[i].kind), i + 1, cv_layer_kind_name(spec->layers[i + 1].kind), i);
        for (int i = 1; i < spec->n_layers; i++) {
            const int m = r->winograd[i];
            if (m)
                printf("winograd: %02d %s's %s%s%s by Winograd F(4x4,3x3), the same sums up to rounding; "
                       "its GFLOP/s and the roofline count the direct sums' FLOPs (CONVOY_WINOGRAD=0: direct)\n",
                       i, cv_layer_kind_name(spec->layers[i].kind),
                       m & CV_WINO_FORWARD ? "forward pass" : "",
                       m & CV_WINO_WEIGHT_GRAD ? (m & CV_WINO_INPUT_GRAD ? ", weight gradient" : " and weight gradient") : "",
                       m & CV_WINO_INPUT_GRAD ? (m & CV_WINO_FORWARD ? " and input gradient" : "input gradient") : "");
        }
        printf("%s %.3f ms, %.0f images/s, %.2f MFLOP per image, %lld parameters, peak RSS %.0f MiB (rank 0)\n",
               inference ? "pass" : "step", r->step_ms, r->images_per_s, r->flops_per_image / 1e6, (long long)r->params,
               r->peak_rss_mb);
        if (reproducible)
            printf("reproducible: step %.3f ms, %.0f images/s, %.2fx the default step (%lld leaves of the batch, "
                   "exact sum; its allreduce %.3f ms)\n", r->repro_step_ms, r->repro_images_per_s,
                   r->repro_step_ms / r->step_ms, (long long)cv_repro_leaves(r->batch, r->batch), r->repro_comm_ms);
        if (reproducible)
            printf("reproducible: against the leaves' float64 sum, the exact sum is %.2f%% equal to it, at most %.2g "
                   "ulp off (a float32 sum of the leaves: %.2f%%, %.2g ulp)\n", 100.0 * r->repro_exact_share,
                   r->repro_exact_ulps, 100.0 * r->repro_float_share, r->repro_float_ulps);
        if (r->ranks > 1 && !inference)
            printf("allreduce alone: %.1f us for 8 bytes, %.3f ms for the %.2f MB gradient\n", r->allreduce_small_us,
                   r->allreduce_grad_ms, 4e-6 * (double)r->params);
        printf("roofline: %.1f GFLOP/s achieved of %.1f GFLOP/s measured FMA peak (%d x %d threads): %.1f%%\n",
               achieved / 1e9, r->peak_flops / 1e9, r->ranks, r->threads, 100.0 * achieved / r->peak_flops);
    }
}

/* A suite entry's name: a built-in shape's, or the file's base name without ".model". */
static void entry_name(char *out, size_t n, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, n, "%s", base);
    const size_t len = strlen(out);
    if (len > 6 && strcmp(out + len - 6, ".model") == 0) out[len - 6] = 0;
}

static int threads_per_rank(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

typedef struct {
    int64_t batch;              /* 0: each model's own */
    int steps;
    int64_t bucket_bytes;
    bool inference, reproducible, csv;
    int precision;              /* a cv_precision for every model, or -1: each model's own */
} suite_opts;

/* --suite: the built-in shapes, then each model file given; one table. A model that cannot be
 * read (a base checkpoint missing, a bad file) is a row saying why, on every rank alike. */
static int bench_suite(const cv_dist *d, const char *const *files, int nfiles, const suite_opts *o)
{
    if (d->rank == 0) {
        if (o->csv) printf("model,batch,images_per_s,gflops,peak_gflops,peak_share,rss_mib\n");
        else
            printf("bench --suite: %d rank%s x %d thread%s, %d %s per model; GFLOP/s counts the direct "
                   "sums' FLOPs; peak: the FMA peak measured with each row\n"
                   "  %-22s %6s %10s %9s %8s %7s %8s\n",
                   d->size, d->size > 1 ? "s" : "", threads_per_rank(), threads_per_rank() > 1 ? "s" : "", o->steps,
                   o->inference ? "inference passes" : "training steps", "model", "batch", "img/s", "GFLOP/s", "peak",
                   "% peak", "RSS MiB");
        fflush(stdout);
    }
    for (int e = 0; e < cv_bench_n_shapes + nfiles; e++) {
        const bool builtin = e < cv_bench_n_shapes;
        char name[64];
        cv_model_spec spec;
        cv_err err;
        int rc;
        if (builtin) {
            snprintf(name, sizeof name, "%s", cv_bench_shapes[e].name);
            char file[80];
            snprintf(file, sizeof file, "suite:%s", name);
            rc = cv_model_parse(&spec, cv_bench_shapes[e].text, file, &err);
        } else {
            entry_name(name, sizeof name, files[e - cv_bench_n_shapes]);
            rc = cv_model_load(&spec, files[e - cv_bench_n_shapes], &err);
        }
        if (rc) {
            if (d->rank == 0) {
                if (o->csv) printf("%s,,,,,,\n", name);
                else printf("  %-22s skipped: %s\n", name, err.msg);
                fflush(stdout);
            }
            continue;
        }
        if (o->precision >= 0) spec.fit.precision = (cv_precision)o->precision, spec.fit.precision_line = 0;
        const int64_t b = o->batch ? o->batch : o->inference ? CV_MICRO_BATCH
                                             : spec.fit.batch_size > 0 ? spec.fit.batch_size : 32;
        cv_bench_report r;
        rc = o->inference ? cv_bench_inference(&spec, (int)b, o->steps, d, &r, &err)
                          : cv_bench(&spec, (int)b, o->steps, d, o->bucket_bytes, false, &r, &err);
        cv_model_spec_free(&spec);
        if (rc) return cli_fail(d, "bench --suite: %s: %s", name, err.msg);
        if (d->rank != 0) continue;
        const double gflops = r.flops_per_image * r.images_per_s / 1e9, peak = r.peak_flops / 1e9;
        if (o->csv)
            printf("%s,%d,%.1f,%.2f,%.2f,%.4f,%.0f\n", name, r.batch, r.images_per_s, gflops, peak, gflops / peak,
                   r.peak_rss_mb);
        else
            printf("  %-22s %6d %10.1f %9.1f %8.1f %6.1f%% %8.0f%s\n", name, r.batch, r.images_per_s, gflops, peak,
                   100.0 * gflops / peak, r.peak_rss_mb, r.rss_of_process ? " (process)" : "");
        fflush(stdout);
    }
    return CLI_OK;
}

int cmd_bench(const cv_dist *d, int argc, char **argv)
{
    const char *batch = NULL, *steps = "30", *threads = NULL, *allreduce = "blocking", *bucket_mb = "4";
    const char *gemm = NULL, *precision = NULL;
    bool csv = false, inference = false, reproducible = false, suite = false;
    const cli_flag flags[] = {
        {"batch-size", "B", "GLOBAL batch size (default: the model file's; with --inference 256, eval's batch)", &batch, NULL},
        {"steps", "N", "timed training steps (or --inference passes) after 3 warm-up ones (default 30)", &steps, NULL},
        {"inference", NULL, "time inference-mode forward passes (what eval and predict run) instead of training steps", NULL,
         &inference},
        {"threads", "T", "OpenMP threads per rank", &threads, NULL},
        {"reproducible", NULL, "also time the steps as train --reproducible runs them, beside the default", NULL,
         &reproducible},
        {"allreduce", "KIND", "blocking (default) or bucketed, as for train", &allreduce, NULL},
        {"bucket-mb", "M", "bucketed: bucket size in MiB (default 4)", &bucket_mb, NULL},
        {"csv", NULL, "one line: ranks,threads,batch,images_per_s,step_ms,comm_ms,comm_share,params,"
                      "allreduce_small_us,allreduce_grad_ms", NULL, &csv},
        {"suite", NULL, "time the built-in shapes (5x5, 7x7, 1x1, strided convs, wide dense, VGG) and every MODEL "
                        "given: one table of images/s, GFLOP/s, % of peak and peak RSS (docs/performance.md)", NULL, &suite},
        {"gemm", "N|M,N,K", "instead of a model: SGEMM GFLOP/s on 1 and T threads vs the FMA peak", &gemm, NULL},
        {"precision", "P", "fp32 (default, or the model file's fit precision=) or bf16 products (needs AVX512_BF16)",
         &precision, NULL},
    };
    const cli_command c = {"bench", "MODEL",
                           "Times data-parallel training steps of MODEL (or its inference passes) on random data: images/s, per-layer "
                           "times, communication, and the fraction of the measured FP32 peak.",
                           flags, NFLAGS(flags), 0, 256};
    const char *pos[256];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    cv_precision prec = CV_PRECISION_FP32;
    if (cli_threads(threads) || cli_precision(precision, &prec)) return CLI_BAD_INPUT;
    if (gemm && inference) return cli_usage_fail(d, "bench: --inference times a MODEL, not --gemm");
    if (reproducible && (gemm || inference))
        return cli_usage_fail(d, "bench: --reproducible times training steps, not %s", gemm ? "--gemm" : "--inference");
    if (gemm && suite) return cli_usage_fail(d, "bench: --suite times models, not --gemm");
    if (reproducible && suite) return cli_usage_fail(d, "bench: --reproducible times one MODEL, not --suite");
    if (gemm) return npos ? cli_usage_fail(d, "bench: give MODEL or --gemm, not both") : bench_gemm(d, gemm, prec == CV_PRECISION_BF16);
    if (!npos && !suite) return cli_usage_fail(d, "bench: MODEL is required (or --gemm N, or --suite)");
    if (npos > 1 && !suite) return cli_usage_fail(d, "bench: one MODEL (several with --suite)");
    long nsteps, b = 0;
    int64_t bucket_bytes = 0;
    if (cli_int("--steps", steps, 1, 1000000, &nsteps) || cli_allreduce_bytes(d, allreduce, bucket_mb, &bucket_bytes))
        return CLI_BAD_INPUT;
    if (batch && cli_int("--batch-size", batch, 1, 1 << 20, &b)) return CLI_BAD_INPUT;
    if (suite) {
        if ((rc = cli_startup_agree(d, CLI_OK))) return rc;
        const suite_opts o = {b, (int)nsteps, bucket_bytes, inference, false, csv, precision ? (int)prec : -1};
        return bench_suite(d, pos, npos, &o);
    }
    cv_model_spec spec;
    cv_err err;
    if (cv_model_load(&spec, pos[0], &err)) return cli_fail(d, "%s", err.msg);
    if (precision) spec.fit.precision = prec, spec.fit.precision_line = 0;
    if (!b) b = inference ? CV_MICRO_BATCH : spec.fit.batch_size > 0 ? spec.fit.batch_size : 32;
    if ((rc = cli_startup_agree(d, CLI_OK))) { /* another rank's checks failed */
        cv_model_spec_free(&spec);
        return rc;
    }
    cv_bench_report r;
    if (inference ? cv_bench_inference(&spec, (int)b, (int)nsteps, d, &r, &err)
                  : cv_bench(&spec, (int)b, (int)nsteps, d, bucket_bytes, reproducible, &r, &err)) {
        cv_model_spec_free(&spec);
        return cli_fail(d, "%s", err.msg);
    }
    if (d->rank == 0) print_report(pos[0], &spec, &r, inference, reproducible, csv);
    cv_model_spec_free(&spec);
    return CLI_OK;
}
