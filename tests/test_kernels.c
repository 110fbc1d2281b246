/* Kernels: the blocked SGEMM against its naive twin (every transpose, alpha/beta, padded
 * leading dimensions, shapes that cross the 6x16 tiles and the KC=256 / NC=1024 blocks), the
 * generic fallback (CONVOY_GEMM=generic), thread-count independence; the Sobel worked
 * Sobel example, output-size rules, known pooling results and im2col/col2im adjointness. */
#define _GNU_SOURCE /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/kernels.h"
#include "convoy/model.h"
#include "convoy/rng.h"
#include "randbuf.h"

/* ---------------------------------------------------------------------------------------- */
/* SGEMM */

typedef struct {
    int M, N, K;
} shape3;

static const shape3 shapes[] = {
    {1, 1, 1},   {1, 7, 1},    {7, 1, 13},  {7, 13, 37},  {6, 16, 8},   {12, 32, 256},
    {13, 17, 5}, {37, 29, 257}, {5, 1031, 3}, {7, 1100, 300}, {50, 3, 600}, {2, 2048, 2},
    /* few output tiles, long K: the fixed K-slices path (a first conv layer's weight gradient) */
    {9, 32, 9000}, {5, 20, 4100},
    /* the AVX-512 tile (12 x 32) and the K slicing (384 per slice, equal slices) */
    {12, 32, 384}, {25, 65, 385}, {24, 64, 769}, {11, 31, 288},
};

/* elementwise |C - ref| <= 1e-5 * (|alpha| sum_k |a b| + |beta c0|) + 1e-30: float rounding of
 * a K-term sum stays well inside this bound */
static void check_one(bool ta, bool tb, shape3 s, float alpha, float beta, int pad, uint64_t seed)
{
    const int M = s.M, N = s.N, K = s.K;
    const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = rand_buf(na, seed), *B = rand_buf(nb, seed + 1), *C = rand_buf(nc, seed + 2);
    float *R = malloc(sizeof(float) * nc), *C0 = malloc(sizeof(float) * nc);
    memcpy(R, C, sizeof(float) * nc);
    memcpy(C0, C, sizeof(float) * nc);
    cv_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    cv_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            const size_t o = (size_t)i * ldc + j;
            if (j >= N) { /* padding columns of C are never touched */
                cr_assert_eq(C[o], C0[o], "C padding (%d,%d) written", i, j);
                continue;
            }
            double mag = 0.0;
            for (int k = 0; k < K; k++) {
                const float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                mag += fabs((double)a * b);
            }
            const double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta * C0[o])) + 1e-30;
            cr_assert_leq(fabs((double)C[o] - R[o]), tol,
                          "ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g ld+%d: C(%d,%d) = %.9g, "
                          "naive %.9g", ta, tb, M, N, K, alpha, beta, pad, i, j, C[o], R[o]);
        }
    free(A), free(B), free(C), free(R), free(C0);
}

static void check_all_shapes(void)
{
    static const float alphas[] = {1.0f, 0.5f, -1.5f}, betas[] = {0.0f, 1.0f, 0.5f};
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    /* the big shapes once per transpose pair, with padding */
                    const bool big = (int64_t)shapes[s].M * shapes[s].N * shapes[s].K > 100000;
                    if (big && (a != 1 || b != 2)) continue;
                    check_one(t & 1, t & 2, shapes[s], alphas[a], betas[b], (a + b) % 2 ? 3 : 0, seed++);
                }
}

Test(gemm, matches_naive_all_transposes_and_shapes) { check_all_shapes(); }

static void force_generic(void) { setenv("CONVOY_GEMM", "generic", 1); }

/* Criterion runs each test in a fresh process, so the kernel choice is made here, after
 * .init has set the variable. */
Test(gemm, generic_fallback_matches_naive, .init = force_generic)
{
    if (strcmp(cv_gemm_path(), "openblas") == 0) cr_skip_test("the OpenBLAS comparison build picks no kernel");
    cr_assert_str_eq(cv_gemm_path(), "generic");
    check_all_shapes();
}

static void force_avx2(void) { setenv("CONVOY_GEMM", "avx2", 1); }

/* On an AVX-512 CPU the default is the AVX-512 kernel: this covers the AVX2 one there. */
Test(gemm, avx2_kernel_matches_naive, .init = force_avx2)
{
    if (strcmp(cv_gemm_path(), "openblas") == 0) cr_skip_test("the OpenBLAS comparison build picks no kernel");
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cr_assert_str_eq(cv_gemm_path(), "avx2");
    else
        cr_assert_str_eq(cv_gemm_path(), "generic");
#endif
    check_all_shapes();
}

Test(gemm, default_path_is_the_widest_the_cpu_runs)
{
    unsetenv("CONVOY_GEMM"); /* before the first call: the kernel is picked once per process */
    if (strcmp(cv_gemm_path(), "openblas") == 0) cr_skip_test("the OpenBLAS comparison build picks no kernel");
    const char *want = "generic";
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = __builtin_cpu_supports("avx512f") ? "avx512" : "avx2";
#endif
    cr_assert_str_eq(cv_gemm_path(), want);
}

Test(gemm, alpha_zero_and_beta_zero_semantics)
{
    enum { M = 7, N = 19, K = 13 };
    float *A = rand_buf(M * K, 5), *B = rand_buf(K * N, 6), C[M * N], R[M * N];
    /* beta = 0 ignores C entirely, even NaN (BLAS semantics) */
    for (int i = 0; i < M * N; i++) C[i] = R[i] = NAN;
    cv_sgemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    cv_sgemm_naive(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
    for (int i = 0; i < M * N; i++) {
        cr_assert(isfinite(C[i]), "C[%d] = %g with beta 0 and NaN input", i, C[i]);
        cr_assert_leq(fabsf(C[i] - R[i]), 1e-5f);
    }
    /* alpha = 0: C = beta C, A and B unread */
    for (int i = 0; i < M * N; i++) C[i] = (float)i;
    cv_sgemm(false, false, M, N, K, 0.0f, A, K, B, N, 0.5f, C, N);
    for (int i = 0; i < M * N; i++) cr_assert_eq(C[i], 0.5f * (float)i);
    /* K = 0: C = beta C */
    for (int i = 0; i < M * N; i++) C[i] = (float)i;
    cv_sgemm(false, false, M, N, 0, 1.0f, A, 1, B, N, 0.0f, C, N);
    for (int i = 0; i < M * N; i++) cr_assert_eq(C[i], 0.0f);
    free(A), free(B);
}

/* Both kernels in child processes (the choice is made once per process). On a CPU with
 * AVX2+FMA an optimised build's fused kernel rounds differently, which shows the variable
 * took effect. */
static void gemm_in_child(bool generic, float *out, int M, int N, int K)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (generic) setenv("CONVOY_GEMM", "generic", 1);
        else unsetenv("CONVOY_GEMM");
        float *A = rand_buf((size_t)M * K, 77), *B = rand_buf((size_t)K * N, 78);
        float *C = calloc((size_t)M * N, sizeof(float));
        cv_sgemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        const size_t bytes = sizeof(float) * (size_t)M * N;
        _exit(write(fd[1], C, bytes) == (ssize_t)bytes ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0, want = sizeof(float) * (size_t)M * N;
    while (got < want) {
        ssize_t r = read(fd[0], (char *)out + got, want - got);
        cr_assert_gt(r, 0, "child gave %zu of %zu bytes", got, want);
        got += (size_t)r;
    }
    close(fd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(gemm, environment_selects_the_generic_kernel)
{
    /* (no cv_gemm_path() here before the forks: it would fix the choice the children inherit) */
    enum { M = 13, N = 40, K = 300 };
    static float fast[M * N], gen[M * N], ref[M * N];
    gemm_in_child(false, fast, M, N, K);
    gemm_in_child(true, gen, M, N, K);
    float *A = rand_buf((size_t)M * K, 77), *B = rand_buf((size_t)K * N, 78);
    cv_sgemm_naive(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, ref, N);
    for (int i = 0; i < M * N; i++) {
        cr_assert_leq(fabsf(fast[i] - ref[i]), 1e-4f);
        cr_assert_leq(fabsf(gen[i] - ref[i]), 1e-4f);
    }
#if defined(__x86_64__) && defined(__OPTIMIZE__) /* at -O0 GCC forms no FMAs: both round alike */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && strcmp(cv_gemm_path(), "openblas") != 0)
        cr_expect(memcmp(fast, gen, sizeof fast) != 0,
                  "CONVOY_GEMM=generic gave bit-identical results to the AVX2+FMA kernel");
#endif
    free(A), free(B);
}

Test(gemm, thread_count_does_not_change_bits)
{
    if (strcmp(cv_gemm_path(), "openblas") == 0) cr_skip_test("OpenBLAS does not fix its summation order");
#ifndef _OPENMP
    cr_skip_test("built without OpenMP");
#else
    static const shape3 s[] = {{37, 29, 257}, {7, 1100, 300}, {101, 64, 513}, {9, 32, 9000}};
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
        const int M = s[k].M, N = s[k].N, K = s[k].K;
        float *A = rand_buf((size_t)M * K, 9), *B = rand_buf((size_t)K * N, 10);
        float *C1 = rand_buf((size_t)M * N, 11), *C2 = malloc(sizeof(float) * (size_t)M * N);
        memcpy(C2, C1, sizeof(float) * (size_t)M * N);
        omp_set_num_threads(1);
        cv_sgemm(true, false, M, N, K, 0.75f, A, M, B, N, 0.5f, C1, N);
        omp_set_num_threads(2);
        cv_sgemm(true, false, M, N, K, 0.75f, A, M, B, N, 0.5f, C2, N);
        cr_expect_arr_eq(C1, C2, sizeof(float) * (size_t)M * N, "M=%d N=%d K=%d", M, N, K);
        free(A), free(B), free(C1), free(C2);
    }
#endif
}

/* Products with few row panels (a dense layer's batch): threads take blocks of columns, each
 * walking all of K, or blocks of rows and columns when the columns are few too (fmnist-cnn's dense
 * layer, 64 x 128 x 1600, is 6 x 4 AVX-512 tiles). With the fused bias + leaky ReLU epilogue,
 * op(A) or op(B) transposed, alpha 1 or not: against the naive product, and bit-identical on 1,
 * 2, 3, 5 and 16 threads (more than the cores: the blocks are the same). */
static void check_few_row_panels(void)
{
    static const shape3 s[] = {{64, 128, 1600}, {64, 1600, 128}, {13, 333, 700}, {64, 256, 784},
                               {13, 40, 300},   {30, 70, 50},    {37, 95, 129}};
    static const int threads[] = {2, 3, 5, 16};
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
        for (int v = 0; v < 3; v++) { /* op(A), op(B) as stored; A transposed; B transposed */
            const int M = s[k].M, N = s[k].N, K = s[k].K;
            const bool ta = v == 1, tb = v == 2;
            const int lda = ta ? M : K, ldb = tb ? K : N;
            const float alpha = k % 2 ? 0.5f : 1.0f;
            float *A = rand_buf((size_t)M * K, 21), *B = rand_buf((size_t)K * N, 22), *bias = rand_buf((size_t)N, 23);
            float *C1 = malloc(sizeof(float) * (size_t)M * N), *Ct = malloc(sizeof(float) * (size_t)M * N),
                  *R = malloc(sizeof(float) * (size_t)M * N);
            const cv_epilogue ep = {bias, true, 0.1f};
#ifdef _OPENMP
            omp_set_num_threads(1);
#endif
            cv_sgemm_ep(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C1, N, &ep);
            cv_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, R, N);
            for (int i = 0; i < M * N; i++) {
                const float r = R[i] + bias[i % N], want = r > 0.0f ? r : 0.1f * r;
                cr_assert_leq(fabsf(C1[i] - want), 1e-4f * (1.0f + fabsf(want)), "M=%d N=%d K=%d: C[%d] = %g, want %g",
                              M, N, K, i, C1[i], want);
            }
#ifdef _OPENMP
            for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                omp_set_num_threads(threads[t]);
                memset(Ct, 0xff, sizeof(float) * (size_t)M * N); /* NaNs: every element must be written */
                cv_sgemm_ep(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, Ct, N, &ep);
                cr_expect_arr_eq(C1, Ct, sizeof(float) * (size_t)M * N,
                                 "M=%d N=%d K=%d transA=%d transB=%d on %d threads", M, N, K, ta, tb, threads[t]);
            }
            omp_set_num_threads(2);
#endif
            free(A), free(B), free(bias), free(C1), free(Ct), free(R);
        }
}

Test(gemm, few_row_panels_split_on_threads) { check_few_row_panels(); }
Test(gemm, few_row_panels_split_on_threads_generic, .init = force_generic) { check_few_row_panels(); }

/* A product's last row panel, cut short (a 64-row batch: five 12-row AVX-512 panels and 4 rows),
 * runs a kernel of a third or two thirds of the panel's rows: each of its rows must come out
 * with the same bits as that row computed inside a whole panel. Every M from 61 to 71 against the
 * first rows of the 72-row product (whole 12- and 6-row panels), through a partial column tile
 * (N = 40) and two K slices (K = 500), op(A) as stored or transposed, B read in place or packed
 * (transposed), alpha 1 (A's whole panels read in place) or 0.5 (A packed), with and without the
 * fused bias + leaky ReLU, beta 0 or 1. */
static void check_short_panels(void)
{
    enum { MB = 72, N = 40, K = 500 };
    float *A = rand_buf((size_t)MB * K, 31), *B = rand_buf((size_t)K * N, 32), *bias = rand_buf(N, 33);
    float *C0 = rand_buf((size_t)MB * N, 34), *Cb = malloc(sizeof(float) * MB * N), *Cs = malloc(sizeof(float) * MB * N);
    for (int v = 0; v < 16; v++) {
        const bool ta = v & 1, tb = v & 2;
        const float alpha = v & 4 ? 0.5f : 1.0f, beta = v & 8 ? 1.0f : 0.0f;
        const cv_epilogue ep = {bias, true, 0.1f};
        const cv_epilogue *e = v % 3 ? &ep : NULL;
        const int lda = ta ? MB : K, ldb = tb ? K : N;
        memcpy(Cb, C0, sizeof(float) * MB * N);
        cv_sgemm_ep(ta, tb, MB, N, K, alpha, A, lda, B, ldb, beta, Cb, N, e);
        for (int M = MB - 11; M < MB; M++) {
            memcpy(Cs, C0, sizeof(float) * MB * N);
            cv_sgemm_ep(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cs, N, e);
            cr_expect_arr_eq(Cs, Cb, sizeof(float) * (size_t)M * N,
                             "%s kernel: M=%d rows differ from the %d-row product's (transA=%d transB=%d alpha=%g beta=%g ep=%d)",
                             cv_gemm_path(), M, MB, ta, tb, alpha, beta, e != NULL);
            cr_expect_arr_eq(Cs + (size_t)M * N, C0 + (size_t)M * N, sizeof(float) * (size_t)(MB - M) * N,
                             "M=%d: rows past M written", M);
        }
    }
    free(A), free(B), free(bias), free(C0), free(Cb), free(Cs);
}

Test(gemm, short_last_panel_same_bits_as_whole_panel) { check_short_panels(); }
Test(gemm, short_last_panel_same_bits_avx2, .init = force_avx2) { check_short_panels(); }
Test(gemm, short_last_panel_same_bits_generic, .init = force_generic) { check_short_panels(); }

/* op(B) packed from B as stored (its rows 4 KiB apart: N = 1024, so the product packs it) or
 * transposed, and read in place (rows 1027 floats apart): the micro-kernel sees the same panels,
 * so C has the same bits. Columns 1024 and 293 (groups of 8 panels, a short last group and a
 * short last panel), K = 602 (two slices of 301: 18 lines of 16, then 3 blocks of 4 and one k). */
static void check_packed_b(void)
{
    enum { M = 13, K = 602, NMAX = 1024 };
    static const int cols[] = {1024, 293};
    float *A = rand_buf((size_t)M * K, 41), *Bs = rand_buf((size_t)K * (NMAX + 3), 42);
    float *Bt = malloc(sizeof(float) * K * NMAX), *Bp = malloc(sizeof(float) * K * NMAX);
    float *C1 = malloc(sizeof(float) * M * NMAX), *C2 = malloc(sizeof(float) * M * NMAX),
          *C3 = malloc(sizeof(float) * M * NMAX);
    for (int c = 0; c < 2; c++) {
        const int N = cols[c];
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++) Bt[(size_t)j * K + k] = Bp[(size_t)k * N + j] = Bs[(size_t)k * (NMAX + 3) + j];
        cv_sgemm(false, false, M, N, K, 1.0f, A, K, Bs, NMAX + 3, 0.0f, C1, N); /* in place */
        cv_sgemm(false, false, M, N, K, 1.0f, A, K, Bp, N, 0.0f, C2, N);
        cv_sgemm(false, true, M, N, K, 1.0f, A, K, Bt, K, 0.0f, C3, N);
        cr_expect_arr_eq(C2, C1, sizeof(float) * (size_t)M * N, "%s kernel, N=%d: B packed as stored differs",
                         cv_gemm_path(), N);
        cr_expect_arr_eq(C3, C1, sizeof(float) * (size_t)M * N, "%s kernel, N=%d: B packed transposed differs",
                         cv_gemm_path(), N);
    }
    free(A), free(Bs), free(Bt), free(Bp), free(C1), free(C2), free(C3);
}

Test(gemm, packed_b_same_bits_as_in_place) { check_packed_b(); }
Test(gemm, packed_b_same_bits_avx2, .init = force_avx2) { check_packed_b(); }
Test(gemm, packed_b_same_bits_generic, .init = force_generic) { check_packed_b(); }

/* ---------------------------------------------------------------------------------------- */
/* The worked example: Sobel on a 6x6 step image, through a conv2d net. */

static const float sobel[9] = {1, 0, -1, 2, 0, -2, 1, 0, -1}; /* (3,3,1,1) */

static void sobel_net(const char *conv_line, float *out, int *OH, int *OW)
{
    char text[256];
    snprintf(text, sizeof text, "input shape=6,6,1\n%s\nflatten\ncompile loss=mse\n", conv_line);
    cv_model_spec spec;
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, text, "sobel.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(&spec, 1, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    const cv_param_view v = cv_net_param_view(net, 1);
    cr_assert_eq(v.kernel_n, 9);
    memcpy(cv_net_params(net) + v.kernel_off, sobel, sizeof sobel);
    cv_net_params(net)[v.bias_off] = 0.0f;
    float img[36];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) img[i * 6 + j] = j < 3 ? 0.0f : 1.0f;
    const int64_t id = 0;
    const float *y = cv_net_forward(net, img, 1, false, 0, 0, &id);
    *OH = spec.layers[1].out.d[0];
    *OW = spec.layers[1].out.d[1];
    memcpy(out, y, sizeof(float) * (size_t)*OH * *OW);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

static void expect_image(const float *got, const float *want, int H, int W, const char *what)
{
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++)
            cr_expect_eq(got[i * W + j], want[i * W + j], "%s (%d,%d) = %g, expected %g", what, i,
                         j, got[i * W + j], want[i * W + j]);
}

Test(conv, sobel_valid_gives_0_m4_m4_0)
{
    float out[36];
    int OH, OW;
    sobel_net("conv2d filters=1 kernel=3 activation=linear", out, &OH, &OW);
    cr_assert_eq(OH, 4);
    cr_assert_eq(OW, 4);
    static const float want[16] = {0, -4, -4, 0, 0, -4, -4, 0, 0, -4, -4, 0, 0, -4, -4, 0};
    expect_image(out, want, 4, 4, "valid");
}

/* padding=same, zero: pad 1 all round. out(i,j) = v(i) (x[j-1] - x[j+1]) where the vertical
 * weight sum v is 4 inside and 3 on the first/last row (one kernel row falls in padding), and
 * x[-1] = x[6] = 0: columns (0, 0, -1, -1, 0, 1) times v. */
Test(conv, sobel_same_zero_padding_borders)
{
    float out[36];
    int OH, OW;
    sobel_net("conv2d filters=1 kernel=3 padding=same activation=linear", out, &OH, &OW);
    cr_assert_eq(OH, 6);
    cr_assert_eq(OW, 6);
    static const float want[36] = {
        0, 0, -3, -3, 0, 3, 0, 0, -4, -4, 0, 4, 0, 0, -4, -4, 0, 4,
        0, 0, -4, -4, 0, 4, 0, 0, -4, -4, 0, 4, 0, 0, -3, -3, 0, 3,
    };
    expect_image(out, want, 6, 6, "same/zero");
}

/* pad_mode=nearest repeats the edges: rows keep weight 4, and x[6] = x[5] = 1 makes the last
 * column 0; x[-1] = x[0] = 0 leaves the first column 0. */
Test(conv, sobel_same_nearest_padding_borders)
{
    float out[36];
    int OH, OW;
    sobel_net("conv2d filters=1 kernel=3 padding=same pad_mode=nearest activation=linear", out, &OH, &OW);
    cr_assert_eq(OH, 6);
    static const float row[6] = {0, 0, -4, -4, 0, 0};
    float want[36];
    for (int i = 0; i < 36; i++) want[i] = row[i % 6];
    expect_image(out, want, 6, 6, "same/nearest");
}

/* stride 2 valid: out(i,j) = input window at (2i, 2j): columns 0..2 -> 0, 2..4 -> -4 */
Test(conv, sobel_stride2_valid)
{
    float out[36];
    int OH, OW;
    sobel_net("conv2d filters=1 kernel=3 stride=2 activation=linear", out, &OH, &OW);
    cr_assert_eq(OH, 2);
    cr_assert_eq(OW, 2);
    static const float want[4] = {0, -4, 0, -4};
    expect_image(out, want, 2, 2, "stride 2");
}

/* Output sizes: valid floor((n - f)/s) + 1 (= n + 2p - f + 1 with p = 0, s = 1); same ceil(n/s),
 * which for s = 1 and odd f is floor((n + 2p - f)/s) + 1 with p = (f-1)/2. */
Test(conv, output_size_rules)
{
    static const int ns[] = {5, 6, 7, 8, 13, 28}, fs[] = {1, 2, 3, 5}, ss[] = {1, 2, 3};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 3; c++)
                for (int same = 0; same < 2; same++) {
                    const int n = ns[a], f = fs[b], s = ss[c];
                    if (f > n) continue;
                    char text[256];
                    snprintf(text, sizeof text,
                             "input shape=%d,%d,2\nconv2d filters=3 kernel=%d stride=%d padding=%s\n"
                             "flatten\ncompile loss=mse\n", n, n + 1, f, s, same ? "same" : "valid");
                    cv_model_spec spec;
                    cv_err err = {{0}};
                    cr_assert_eq(cv_model_parse(&spec, text, "m", &err), 0, "%s", err.msg);
                    const int p = same ? (f - 1) / 2 : 0;
                    int want_h = (n + 2 * p - f) / s + 1, want_w = (n + 1 + 2 * p - f) / s + 1;
                    if (same) {
                        want_h = (n + s - 1) / s;
                        want_w = (n + 1 + s - 1) / s;
                        if (s == 1 && f % 2) {
                            cr_assert_eq(want_h, (n + 2 * p - f) / s + 1);
                            cr_assert_eq(want_w, (n + 1 + 2 * p - f) / s + 1);
                        }
                    }
                    const cv_shape o = spec.layers[1].out;
                    cr_expect(o.d[0] == want_h && o.d[1] == want_w && o.d[2] == 3,
                              "n=%d f=%d s=%d %s: (%d,%d,%d), expected (%d,%d,3)", n, f, s,
                              same ? "same" : "valid", o.d[0], o.d[1], o.d[2], want_h, want_w);
                    cv_model_spec_free(&spec);
                }
}

/* ---------------------------------------------------------------------------------------- */
/* Pooling on known inputs */

static const float img4[16] = {1, 2, 5, 3, 4, 0, 1, 7, -1, -2, 8, 6, 3, 9, 0, 2};

static cv_window win(int H, int W, int C, int k, int s)
{
    return (cv_window){.H = H, .W = W, .C = C, .KH = k, .KW = k, .SH = s, .SW = s,
                       .OH = (H - k) / s + 1, .OW = (W - k) / s + 1};
}

Test(pool, known_2x2_max_avg_min)
{
    const cv_window g = win(4, 4, 1, 2, 2);
    static const float want[3][4] = {{4, 7, 9, 8}, {1.75f, 4, 2.25f, 4}, {0, 1, -2, 0}};
    static const cv_pool_kind kinds[3] = {CV_POOL_MAX, CV_POOL_AVG, CV_POOL_MIN};
    for (int k = 0; k < 3; k++) {
        float out[4];
        int32_t arg[4];
        cv_pool_forward(out, arg, img4, 1, &g, kinds[k]);
        for (int i = 0; i < 4; i++)
            cr_expect_eq(out[i], want[k][i], "pool kind %d out[%d] = %g", k, i, out[i]);
    }
}

/* Backward routes dout to the winner (max/min) or spreads it over the window (avg); with two
 * channels (the second is the negated image) the NHWC interleaving is exercised too. */
Test(pool, known_backward_two_channels)
{
    const cv_window g = win(4, 4, 2, 2, 2);
    float x[32];
    for (int i = 0; i < 16; i++) x[2 * i] = img4[i], x[2 * i + 1] = -img4[i];
    const float dout[8] = {1, 10, 2, 20, 3, 30, 4, 40};
    float out[8], dx[32];
    int32_t arg[8];
    /* max: channel 0 winners 4@(1,0) 7@(1,3) 9@(3,1) 8@(2,2); channel 1 (max of -x = min of x)
     * 0@(1,1) 1@(1,2) -2->2@(2,1) 0@(3,2) */
    cv_pool_forward(out, arg, x, 1, &g, CV_POOL_MAX);
    static const float want_max[8] = {4, 0, 7, -1, 9, 2, 8, 0};
    for (int i = 0; i < 8; i++) cr_expect_eq(out[i], want_max[i], "max out[%d] = %g", i, out[i]);
    memset(dx, 0, sizeof dx);
    cv_pool_backward(dx, dout, arg, 1, &g, CV_POOL_MAX, false, NULL, 0.0f);
    float want_dx[32] = {0};
    want_dx[(1 * 4 + 0) * 2] = 1, want_dx[(1 * 4 + 3) * 2] = 2;
    want_dx[(3 * 4 + 1) * 2] = 3, want_dx[(2 * 4 + 2) * 2] = 4;
    want_dx[(1 * 4 + 1) * 2 + 1] = 10, want_dx[(1 * 4 + 2) * 2 + 1] = 20;
    want_dx[(2 * 4 + 1) * 2 + 1] = 30, want_dx[(3 * 4 + 2) * 2 + 1] = 40;
    for (int i = 0; i < 32; i++) cr_expect_eq(dx[i], want_dx[i], "max dx[%d] = %g", i, dx[i]);
    /* overwrite: whatever dx held is replaced */
    for (int i = 0; i < 32; i++) dx[i] = NAN;
    cv_pool_backward(dx, dout, arg, 1, &g, CV_POOL_MAX, true, NULL, 0.0f);
    for (int i = 0; i < 32; i++) cr_expect_eq(dx[i], want_dx[i], "overwritten max dx[%d] = %g", i, dx[i]);

    cv_pool_forward(out, NULL, x, 1, &g, CV_POOL_AVG);
    memset(dx, 0, sizeof dx);
    cv_pool_backward(dx, dout, NULL, 1, &g, CV_POOL_AVG, false, NULL, 0.0f);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int c = 0; c < 2; c++) {
                const float d = dout[((i / 2) * 2 + j / 2) * 2 + c] / 4.0f;
                cr_expect_eq(dx[(i * 4 + j) * 2 + c], d, "avg dx(%d,%d,%d)", i, j, c);
            }
    cr_expect_eq(out[1], -1.75f);
}

/* pool 3, stride 1 on 4x4: overlapping windows; the backward accumulates */
Test(pool, overlapping_windows_stride_not_pool)
{
    const cv_window g = win(4, 4, 1, 3, 1);
    cr_assert_eq(g.OH, 2);
    float out[4], dx[16] = {0};
    int32_t arg[4];
    cv_pool_forward(out, arg, img4, 1, &g, CV_POOL_MAX);
    static const float want[4] = {8, 8, 9, 9};
    for (int i = 0; i < 4; i++) cr_expect_eq(out[i], want[i], "out[%d] = %g", i, out[i]);
    const float dout[4] = {1, 2, 3, 4};
    cv_pool_backward(dx, dout, arg, 1, &g, CV_POOL_MAX, false, NULL, 0.0f);
    cr_expect_eq(dx[2 * 4 + 2], 3.0f, "8 at (2,2) wins twice: 1 + 2");
    cr_expect_eq(dx[3 * 4 + 1], 7.0f, "9 at (3,1) wins twice: 3 + 4");
    cv_pool_forward(out, arg, img4, 1, &g, CV_POOL_MIN);
    static const float want_min[4] = {-2, -2, -2, -2};
    for (int i = 0; i < 4; i++) cr_expect_eq(out[i], want_min[i], "min out[%d] = %g", i, out[i]);
}

/* max/min pooling against plain loops on many channels (the 16-channel vector path, and the
 * scalar one for the leftover widths), with ties (values from a few levels) kept on the first
 * cell, and the ReLU-aware backward, which takes the derivative from the pool's own output */
static void check_pool_wide(void)
{
    static const int channels[] = {16, 32, 48, 5};
    static const int geo[][2] = {{2, 2}, {3, 2}, {2, 1}};
    for (size_t ci = 0; ci < sizeof channels / sizeof channels[0]; ci++)
        for (size_t gi = 0; gi < sizeof geo / sizeof geo[0]; gi++)
            for (int kind = 0; kind < 2; kind++) {
                const int C = channels[ci];
                const cv_window g = win(7, 6, C, geo[gi][0], geo[gi][1]);
                const int n_in = 7 * 6 * C, n_out = g.OH * g.OW * C, B = 2;
                float *x = malloc(sizeof(float) * (size_t)(B * n_in)), *out = malloc(sizeof(float) * (size_t)(B * n_out));
                int32_t *arg = malloc(sizeof(int32_t) * (size_t)(B * n_out));
                for (int i = 0; i < B * n_in; i++) x[i] = (float)((i * 7919) % 5) - 2.0f; /* -2 .. 2 */
                const cv_pool_kind pk = kind ? CV_POOL_MIN : CV_POOL_MAX;
                cv_pool_forward(out, arg, x, B, &g, pk);
                for (int b = 0; b < B; b++)
                    for (int oh = 0; oh < g.OH; oh++)
                        for (int ow = 0; ow < g.OW; ow++)
                            for (int c = 0; c < C; c++) {
                                int best = -1;
                                for (int kh = 0; kh < g.KH; kh++)
                                    for (int kw = 0; kw < g.KW; kw++) {
                                        const int at = ((oh * g.SH + kh) * 6 + ow * g.SW + kw) * C + c;
                                        const float v = x[b * n_in + at];
                                        if (best < 0 || (pk == CV_POOL_MAX ? v > x[b * n_in + best] : v < x[b * n_in + best]))
                                            best = at;
                                    }
                                const int o = b * n_out + (oh * g.OW + ow) * C + c;
                                cr_assert_eq(arg[o], best, "C=%d pool %d stride %d %s: arg[%d] = %d, want %d", C,
                                             g.KH, g.SH, kind ? "min" : "max", o, arg[o], best);
                                cr_assert_eq(out[o], x[b * n_in + best]);
                            }
                /* backward after a ReLU (the pool's input is a ReLU output: clamp it first) */
                if (g.SH == g.KH) {
                    for (int i = 0; i < B * n_in; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
                    cv_pool_forward(out, arg, x, B, &g, pk);
                    float *dout = malloc(sizeof(float) * (size_t)(B * n_out)), *dx = malloc(sizeof(float) * (size_t)(B * n_in));
                    for (int i = 0; i < B * n_out; i++) dout[i] = (float)(i % 11) - 5.0f;
                    for (int relu = 0; relu < 2; relu++) { /* with and without the ReLU derivative */
                        cv_pool_backward(dx, dout, arg, B, &g, pk, true, relu ? out : NULL, 0.25f);
                        for (int i = 0; i < B * n_in; i++) {
                            float want = 0.0f;
                            const int b = i / n_in;
                            for (int o = b * n_out; o < (b + 1) * n_out; o++)
                                if (arg[o] == i % n_in) want = !relu || x[i] > 0.0f ? dout[o] : 0.25f * dout[o];
                            cr_assert_eq(dx[i], want, "C=%d %s backward (relu %d) dx[%d] = %g, want %g", C,
                                         kind ? "min" : "max", relu, i, dx[i], want);
                        }
                    }
                    free(dout), free(dx);
                }
                free(x), free(out), free(arg);
            }
}

Test(pool, wide_channels_match_plain_loops) { check_pool_wide(); }
Test(pool, wide_channels_avx2_clone, .init = force_avx2) { check_pool_wide(); }
Test(pool, wide_channels_generic_clone, .init = force_generic) { check_pool_wide(); }

/* ---------------------------------------------------------------------------------------- */
/* im2col against a direct reference, and col2im as its adjoint */

static cv_window conv_win(int H, int W, int C, int k, int s, bool same)
{
    cv_window g = {.H = H, .W = W, .C = C, .KH = k, .KW = k, .SH = s, .SW = s};
    if (same) {
        g.OH = (H + s - 1) / s;
        g.OW = (W + s - 1) / s;
        const int ph = (g.OH - 1) * s + k - H, pw = (g.OW - 1) * s + k - W;
        g.pad_top = ph > 0 ? ph / 2 : 0;
        g.pad_left = pw > 0 ? pw / 2 : 0;
    } else {
        g.OH = (H - k) / s + 1;
        g.OW = (W - k) / s + 1;
    }
    return g;
}

static int clampi(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

Test(im2col, matches_reference_and_col2im_is_its_adjoint)
{
    static const struct {
        int H, W, C, k, s;
        bool same;
    } cases[] = {
        {7, 5, 3, 3, 1, false}, {7, 5, 3, 3, 1, true}, {7, 5, 3, 2, 2, true},
        {8, 8, 2, 3, 2, true},  {6, 9, 1, 5, 3, true}, {5, 5, 4, 1, 2, false},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
        for (int nearest = 0; nearest < 2; nearest++) {
            const cv_window g = conv_win(cases[t].H, cases[t].W, cases[t].C, cases[t].k,
                                         cases[t].s, cases[t].same);
            const int B = 2, K = g.KH * g.KW * g.C;
            const size_t nx = (size_t)B * g.H * g.W * g.C, ncol = (size_t)B * g.OH * g.OW * K;
            float *x = rand_buf(nx, 100 + t), *y = rand_buf(ncol, 200 + t);
            float *col = malloc(sizeof(float) * ncol), *dx = calloc(nx, sizeof(float));
            cv_im2col(col, x, B, &g, nearest);
            /* direct reference: padded cells are 0, or the clamped edge pixel when nearest */
            size_t r = 0;
            for (int b = 0; b < B; b++)
                for (int oh = 0; oh < g.OH; oh++)
                    for (int ow = 0; ow < g.OW; ow++)
                        for (int kh = 0; kh < g.KH; kh++)
                            for (int kw = 0; kw < g.KW; kw++)
                                for (int c = 0; c < g.C; c++, r++) {
                                    int ih = oh * g.SH - g.pad_top + kh;
                                    int iw = ow * g.SW - g.pad_left + kw;
                                    const bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                                    float want = 0.0f;
                                    if (inside || nearest) {
                                        ih = clampi(ih, g.H), iw = clampi(iw, g.W);
                                        want = x[(((size_t)b * g.H + ih) * g.W + iw) * g.C + c];
                                    }
                                    cr_assert_eq(col[r], want, "case %zu nearest=%d: col[%zu]", t,
                                                 nearest, r);
                                }
            double lhs = 0.0, rhs = 0.0;
            for (size_t i = 0; i < ncol; i++) lhs += (double)col[i] * y[i];
            cv_col2im(dx, y, B, &g, nearest, false);
            /* overwrite gives the same, whatever dx held */
            float *dx2 = malloc(sizeof(float) * nx);
            for (size_t i = 0; i < nx; i++) dx2[i] = NAN;
            cv_col2im(dx2, y, B, &g, nearest, true);
            cr_assert_eq(memcmp(dx, dx2, sizeof(float) * nx), 0, "case %zu: col2im overwrite differs", t);
            free(dx2);
            for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * dx[i];
            cr_expect_leq(fabs(lhs - rhs), 1e-5 * (1.0 + fabs(lhs)),
                          "case %zu nearest=%d: <im2col x, y> = %.9g, <x, col2im y> = %.9g", t,
                          nearest, lhs, rhs);
            free(x), free(y), free(col), free(dx);
        }
}

/* The fused epilogue (bias, then ReLU or leaky ReLU) on every GEMM path: blocked with one and
 * several K slices and a partial A panel, the short-K path, and the K-split path. */
Test(gemm, epilogue_bias_and_relu_on_every_path)
{
    static const shape3 cases[] = {{29, 37, 50}, {25, 70, 800}, {40, 33, 9}, {9, 32, 9000}};
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++)
        for (int mode = 0; mode < 3; mode++) {
            const int M = cases[s].M, N = cases[s].N, K = cases[s].K;
            float *A = rand_buf((size_t)M * K, 11 + s), *B = rand_buf((size_t)K * N, 12 + s);
            float *bias = rand_buf((size_t)N, 13 + s);
            float *C = calloc((size_t)M * N, sizeof(float)), *R = calloc((size_t)M * N, sizeof(float));
            const cv_epilogue ep = {mode == 2 ? NULL : bias, mode >= 1, mode == 1 ? 0.1f : 0.0f};
            cv_sgemm_ep(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, &ep);
            cv_sgemm_naive(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
            int negatives = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    float v = R[(size_t)i * N + j] + (ep.bias ? bias[j] : 0.0f);
                    if (ep.relu && v < 0) v *= ep.leak, negatives++;
                    cr_assert_leq(fabsf(C[(size_t)i * N + j] - v), 1e-4f * (1.0f + fabsf(v)),
                                  "M=%d N=%d K=%d mode %d: C(%d,%d) = %g, want %g", M, N, K, mode, i, j,
                                  C[(size_t)i * N + j], v);
                }
            if (ep.relu) cr_assert_gt(negatives, 0, "the case must exercise the ReLU");
            free(A), free(B), free(bias), free(C), free(R);
        }
}

/* The direct convolution and its weight gradient against im2col + the naive GEMM, for filter
 * counts that take each register-blocked width (16, 32, 48, 64) and the plain loops (5, 40),
 * with padding, stride 2, nearest padding, several channels and the bias + ReLU epilogue. */
static void check_direct(int H, int W, int C, int k, int s, bool same, bool nearest, int F, int B)
{
    const cv_window g = conv_win(H, W, C, k, s, same);
    const int K = g.KH * g.KW * g.C, P = g.OH * g.OW;
    cr_assert_leq(K, CV_CONV_DIRECT_MAX_K);
    float *x = rand_buf((size_t)B * H * W * C, 300 + F), *w = rand_buf((size_t)K * F, 301 + F);
    float *bias = rand_buf((size_t)F, 302 + F), *dy = rand_buf((size_t)B * P * F, 303 + F);
    float *col = malloc(sizeof(float) * (size_t)B * P * K), *out = malloc(sizeof(float) * (size_t)B * P * F);
    float *ref = malloc(sizeof(float) * (size_t)B * P * F);
    float *dw = calloc((size_t)K * F, sizeof(float)), *dwref = calloc((size_t)K * F, sizeof(float));
    cv_im2col(col, x, B, &g, nearest);
    cv_sgemm_naive(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, ref, F);
    const cv_epilogue ep = {bias, true, 0.0f};
    cv_conv_direct(out, x, w, &ep, B, F, &g, nearest);
    for (int r = 0; r < B * P; r++)
        for (int f = 0; f < F; f++) {
            float v = ref[(size_t)r * F + f] + bias[f];
            v = v > 0 ? v : 0;
            cr_assert_leq(fabsf(out[(size_t)r * F + f] - v), 1e-5f * (1.0f + fabsf(v)),
                          "F=%d C=%d k=%d s=%d: out(%d,%d) = %g, want %g", F, C, k, s, r, f, out[(size_t)r * F + f], v);
        }
    /* with and without the bias gradient (the sum of dy over pixels and samples) */
    for (int with_db = 0; with_db < 2; with_db++) {
        float db[64], dbref[64];
        for (int i = 0; i < K * F; i++) dw[i] = dwref[i] = 0.5f; /* both accumulate */
        for (int f = 0; f < F; f++) db[f] = dbref[f] = -0.25f;
        cr_assert_eq(cv_conv_direct_dw(dw, with_db ? db : NULL, x, dy, B, F, &g, nearest), 0);
        cv_sgemm_naive(true, false, K, F, B * P, 1.0f, col, K, dy, F, 1.0f, dwref, F);
        for (int i = 0; i < K * F; i++)
            cr_assert_leq(fabsf(dw[i] - dwref[i]), 1e-4f * (1.0f + fabsf(dwref[i])),
                          "F=%d C=%d k=%d s=%d: dw[%d] = %g, want %g", F, C, k, s, i, dw[i], dwref[i]);
        for (int f = 0; f < F; f++) {
            double sum = dbref[f];
            for (int r = 0; r < B * P; r++) sum += dy[(size_t)r * F + f];
            const float want = with_db ? (float)sum : -0.25f;
            cr_assert_leq(fabsf(db[f] - want), 1e-4f * (1.0f + fabsf(want)), "F=%d C=%d k=%d s=%d: db[%d] = %g, want %g",
                          F, C, k, s, f, db[f], want);
        }
    }
    free(x), free(w), free(bias), free(dy), free(col), free(out), free(ref), free(dw), free(dwref);
}

static void check_direct_all(void)
{
    static const int filters[] = {16, 32, 48, 64, 5, 40};
    for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
        check_direct(28, 28, 1, 3, 1, false, false, filters[f], 3);  /* fmnist's first layer */
        check_direct(9, 7, 3, 3, 2, true, false, filters[f], 2);     /* same padding, stride 2 */
        check_direct(6, 5, 2, 2, 1, true, true, filters[f], 2);      /* odd pad, nearest */
        check_direct(11, 13, 1, 5, 1, true, false, filters[f], 1);   /* K = 25, pixels > 64 */
    }
}

Test(conv_direct, matches_im2col_gemm_forward_and_weight_gradient) { check_direct_all(); }
/* the same through the other instruction-set clones (chosen once per process, like the GEMM's) */
Test(conv_direct, avx2_clone, .init = force_avx2) { check_direct_all(); }
Test(conv_direct, generic_clone, .init = force_generic) { check_direct_all(); }

/* The implicit-GEMM convolution against im2col + the naive GEMM: the fmnist-cnn second layer,
 * stride 2, a 2x2 window, panels cut short by the pixel count, with bias + ReLU and an
 * accumulating weight (and bias) gradient; the forward equals the im2col + cv_sgemm path bit
 * for bit. */
static void check_implicit(int H, int W, int C, int k, int s, int F, int B)
{
    const cv_window g = conv_win(H, W, C, k, s, false);
    const int K = g.KH * g.KW * g.C, P = g.OH * g.OW;
    cr_assert(cv_conv_gemm_fits(&g, F), "H=%d W=%d C=%d k=%d s=%d F=%d should take the implicit path", H, W, C, k,
              s, F);
    float *x = rand_buf((size_t)B * H * W * C, 400 + F), *w = rand_buf((size_t)K * F, 401 + F);
    float *bias = rand_buf((size_t)F, 402 + F), *dy = rand_buf((size_t)B * P * F, 403 + F);
    float *col = malloc(sizeof(float) * (size_t)B * P * K), *out = malloc(sizeof(float) * (size_t)B * P * F);
    float *ref = malloc(sizeof(float) * (size_t)B * P * F), *gemm = malloc(sizeof(float) * (size_t)B * P * F);
    float *dw = malloc(sizeof(float) * (size_t)K * F), *dwref = malloc(sizeof(float) * (size_t)K * F);
    cv_im2col(col, x, B, &g, false);
    cv_sgemm_naive(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, ref, F);
    const cv_epilogue ep = {bias, true, 0.05f};
    cv_conv_gemm(out, x, w, &ep, B, F, &g);
    cv_sgemm_ep(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, gemm, F, &ep);
    int negatives = 0;
    for (int r = 0; r < B * P; r++)
        for (int f = 0; f < F; f++) {
            float v = ref[(size_t)r * F + f] + bias[f];
            if (v < 0) v *= 0.05f, negatives++;
            cr_assert_leq(fabsf(out[(size_t)r * F + f] - v), 1e-4f * (1.0f + fabsf(v)),
                          "F=%d C=%d k=%d s=%d: out(%d,%d) = %g, want %g", F, C, k, s, r, f, out[(size_t)r * F + f], v);
        }
    cr_assert_gt(negatives, 0);
    if (K <= 384) /* one K slice: the same sums in the same order */
        cr_assert_eq(memcmp(out, gemm, sizeof(float) * (size_t)B * P * F), 0, "F=%d C=%d k=%d s=%d: not bit-identical",
                     F, C, k, s);
    for (int with_db = 0; with_db < 2; with_db++) {
        float db[96];
        for (int i = 0; i < K * F; i++) dw[i] = dwref[i] = 0.5f; /* both accumulate */
        for (int f = 0; f < F; f++) db[f] = -0.25f;
        cv_conv_gemm_dw(dw, with_db ? db : NULL, x, dy, B, F, &g);
        cv_sgemm_naive(true, false, K, F, B * P, 1.0f, col, K, dy, F, 1.0f, dwref, F);
        for (int i = 0; i < K * F; i++)
            cr_assert_leq(fabsf(dw[i] - dwref[i]), 1e-4f * (1.0f + fabsf(dwref[i])),
                          "F=%d C=%d k=%d s=%d: dw[%d] = %g, want %g", F, C, k, s, i, dw[i], dwref[i]);
        for (int f = 0; f < F; f++) {
            double sum = -0.25;
            for (int r = 0; with_db && r < B * P; r++) sum += dy[(size_t)r * F + f];
            cr_assert_leq(fabsf(db[f] - (float)sum), 1e-4f * (1.0f + fabsf((float)sum)), "F=%d: db[%d] = %g, want %g", F,
                          f, db[f], sum);
        }
    }
    free(x), free(w), free(bias), free(dy), free(col), free(out), free(ref), free(gemm), free(dw), free(dwref);
}

static void check_implicit_all(void)
{
    check_implicit(13, 13, 32, 3, 1, 64, 5); /* fmnist-cnn's second layer; 605 pixels */
    check_implicit(11, 9, 8, 3, 2, 32, 3);   /* stride 2, KW*C = 24 */
    check_implicit(7, 6, 6, 2, 1, 96, 2);    /* 2x2 window, KW*C = 12, 60 pixels */
    check_implicit(12, 12, 48, 3, 1, 32, 1); /* K = 1296: several K slices in the GEMM */
    /* window rows a third of the tile's height divides, not the height: the row's last weight-
     * gradient tile runs a third or two of the rows and reads nothing past the row (the last
     * pixel's values end the buffer: past them is what the sanitizer build would see) */
    check_implicit(6, 5, 64, 1, 1, 64, 3);   /* pointwise, 64 channels: 5 tiles of 12 and one of 4 */
    check_implicit(8, 7, 128, 1, 1, 32, 2);  /* 128 channels: 10 of 12 and one of 8 */
    check_implicit(9, 9, 4, 5, 1, 32, 2);    /* a 5x5 window on 4 channels: KW*C = 20 */
    /* where it does not apply: padding, a filter count off the micro-kernel's width, a window
     * row that does not split into thirds of tiles, or shorter than one */
    const cv_window same = conv_win(13, 13, 32, 3, 1, true), odd = conv_win(13, 13, 5, 3, 1, false);
    const cv_window narrow = conv_win(13, 13, 2, 2, 1, false);
    cr_assert_not(cv_conv_gemm_fits(&same, 64));
    cr_assert_not(cv_conv_gemm_fits(&odd, 64));
    cr_assert_not(cv_conv_gemm_fits(&narrow, 64)); /* KW*C = 4 */
    const cv_window ok = conv_win(13, 13, 32, 3, 1, false);
    cr_assert_not(cv_conv_gemm_fits(&ok, 36));
}

Test(conv_implicit, matches_im2col_gemm_forward_and_weight_gradient) { check_implicit_all(); }
Test(conv_implicit, avx2_kernel, .init = force_avx2) { check_implicit_all(); }
Test(conv_implicit, generic_kernel, .init = force_generic) { check_implicit_all(); }
Test(conv_implicit, thread_count_does_not_change_bits)
{
    const cv_window g = conv_win(13, 13, 32, 3, 1, false);
    enum { B = 9, F = 64 };
    const int K = 288, P = g.OH * g.OW;
    float *x = rand_buf((size_t)B * 13 * 13 * 32, 501), *dy = rand_buf((size_t)B * P * F, 502);
    float *w = rand_buf((size_t)K * F, 503);
    float *o1 = malloc(sizeof(float) * B * P * F), *o2 = malloc(sizeof(float) * B * P * F);
    float *d1 = calloc((size_t)K * F, sizeof(float)), *d2 = calloc((size_t)K * F, sizeof(float));
    omp_set_num_threads(1);
    cv_conv_gemm(o1, x, w, NULL, B, F, &g);
    float b1[F] = {0}, b2[F] = {0};
    cv_conv_gemm_dw(d1, b1, x, dy, B, F, &g);
    omp_set_num_threads(2);
    cv_conv_gemm(o2, x, w, NULL, B, F, &g);
    cv_conv_gemm_dw(d2, b2, x, dy, B, F, &g);
    cr_assert_eq(memcmp(o1, o2, sizeof(float) * B * P * F), 0);
    cr_assert_eq(memcmp(d1, d2, sizeof(float) * K * F), 0);
    cr_assert_eq(memcmp(b1, b2, sizeof b1), 0);
    free(x), free(dy), free(w), free(o1), free(o2), free(d1), free(d2);
}

/* The implicit GEMM over a padded copy (cv_conv_gemm_padded, _padded_dw) and the stride-1 input
 * gradient over a padded dy (cv_conv_gemm_dx) against im2col + the naive GEMM (+ col2im): 'same'
 * 5x5 and 7x7 stride 2, a 3x3 stride-2 'same' window whose padding is all at the bottom and
 * right, numeric padding on a rectangular window, nearest padding, window rows that do not
 * split into whole tiles (KW*C = 160, 21, 15), with bias + leaky ReLU and accumulating weight and
 * bias gradients; the forward equals im2col + cv_sgemm bit for bit where K fits one slice. */
/* the micro-kernel's width in filters: 32 (avx512), 16 (avx2), 8 (generic) */
static int tile_width(void)
{
    const char *p = cv_gemm_path();
    return strcmp(p, "avx512") == 0 ? 32 : strcmp(p, "avx2") == 0 ? 16 : 8;
}

/* ... and the input gradient's, whose width divides C where one does (16 channels on AVX-512:
 * AVX2's tile) */
static int dx_tile_width(int C)
{
    const int nr = tile_width();
    return nr == 32 && C % 32 != 0 && C % 16 == 0 ? 16 : nr;
}

typedef struct {
    int H, W, C, KH, KW, SH, SW, pt, pb, pl, pr, F, B;
    bool nearest;
} pad_case;

static void check_padded(pad_case t)
{
    cv_window g = {.H = t.H, .W = t.W, .C = t.C, .KH = t.KH, .KW = t.KW, .SH = t.SH, .SW = t.SW,
                   .pad_top = t.pt, .pad_left = t.pl};
    g.OH = (t.H + t.pt + t.pb - t.KH) / t.SH + 1;
    g.OW = (t.W + t.pl + t.pr - t.KW) / t.SW + 1;
    const int K = g.KH * g.KW * g.C, P = g.OH * g.OW, F = t.F, B = t.B;
    cr_assert(cv_conv_gemm_padded_fits(&g, F), "F=%d should take the padded implicit path", F);
    const size_t nx = (size_t)B * t.H * t.W * t.C, ny = (size_t)B * P * F, ncol = (size_t)B * P * K;
    float *x = rand_buf(nx, 600 + K), *w = rand_buf((size_t)K * F, 601 + K), *bias = rand_buf((size_t)F, 602);
    float *dy = rand_buf(ny, 603 + K), *col = malloc(sizeof(float) * ncol), *out = malloc(sizeof(float) * ny);
    float *ref = malloc(sizeof(float) * ny), *gemm = malloc(sizeof(float) * ny);
    cv_im2col(col, x, B, &g, t.nearest);
    cv_sgemm_naive(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, ref, F);
    const cv_epilogue ep = {bias, true, 0.05f};
    cr_assert_eq(cv_conv_gemm_padded(out, x, w, &ep, B, F, &g, t.nearest), 0);
    cv_sgemm_ep(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, gemm, F, &ep);
    for (size_t i = 0; i < ny; i++) {
        float v = ref[i] + bias[i % F];
        if (v < 0) v *= 0.05f;
        cr_assert_leq(fabsf(out[i] - v), 1e-4f * (1.0f + fabsf(v)), "K=%d: out[%zu] = %g, want %g", K, i, out[i], v);
    }
    if (K <= 384)
        cr_assert_eq(memcmp(out, gemm, sizeof(float) * ny), 0, "K=%d: not bit-identical to im2col + cv_sgemm", K);
    float *dw = malloc(sizeof(float) * (size_t)K * F), *dwref = malloc(sizeof(float) * (size_t)K * F);
    float *db = malloc(sizeof(float) * (size_t)F);
    for (int i = 0; i < K * F; i++) dw[i] = dwref[i] = 0.5f;
    for (int f = 0; f < F; f++) db[f] = -0.25f;
    cr_assert_eq(cv_conv_gemm_padded_dw(dw, db, x, dy, B, F, &g, t.nearest), 0);
    cv_sgemm_naive(true, false, K, F, B * P, 1.0f, col, K, dy, F, 1.0f, dwref, F);
    for (int i = 0; i < K * F; i++)
        cr_assert_leq(fabsf(dw[i] - dwref[i]), 1e-4f * (1.0f + fabsf(dwref[i])), "K=%d: dw[%d] = %g, want %g", K, i,
                      dw[i], dwref[i]);
    for (int f = 0; f < F; f++) {
        double sum = -0.25;
        for (int r = 0; r < B * P; r++) sum += dy[(size_t)r * F + f];
        cr_assert_leq(fabsf(db[f] - (float)sum), 1e-4f * (1.0f + fabsf((float)sum)), "db[%d] = %g, want %g", f, db[f],
                      sum);
    }
    if (!t.nearest) {
        cr_assert(cv_conv_gemm_dx_fits(&g) == (t.C % dx_tile_width(t.C) == 0), "K=%d: dx fits", K);
        if (cv_conv_gemm_dx_fits(&g)) {
            float *dx = malloc(sizeof(float) * nx), *dxref = malloc(sizeof(float) * nx);
            cv_sgemm_naive(false, true, B * P, K, F, 1.0f, dy, F, w, F, 0.0f, col, K);
            cv_col2im(dxref, col, B, &g, false, true);
            cr_assert_eq(cv_conv_gemm_dx(dx, dy, w, B, F, &g), 0);
            for (size_t i = 0; i < nx; i++)
                cr_assert_leq(fabsf(dx[i] - dxref[i]), 1e-4f * (1.0f + fabsf(dxref[i])), "K=%d: dx[%zu] = %g, want %g",
                              K, i, dx[i], dxref[i]);
            free(dx), free(dxref);
        }
    }
    free(x), free(w), free(bias), free(dy), free(col), free(out), free(ref), free(gemm), free(dw), free(dwref), free(db);
}

static void check_padded_all(void)
{
    const int nr = tile_width();
    const pad_case cases[] = {
        {14, 14, 32, 5, 5, 1, 1, 2, 2, 2, 2, 2 * nr, 3, false}, /* tf-convnet's second conv: KW*C = 160 */
        {20, 18, 3, 7, 7, 2, 2, 3, 2, 3, 2, nr, 2, false},      /* a 7x7 stride-2 stem: KW*C = 21 */
        {9, 9, 16, 3, 3, 2, 2, 0, 1, 0, 1, nr, 3, false},       /* 'same' stride 2 on 9x9... */
        {8, 8, 32, 3, 3, 2, 2, 0, 1, 0, 1, nr, 2, false},       /* ... and on 8x8: pads at the end only */
        {7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, nr, 2, true},         /* nearest, KW*C = 15 */
        {6, 7, nr, 3, 2, 1, 1, 2, 0, 1, 1, nr, 2, false},       /* numeric T,B,L,R on a 3x2 window */
        {5, 5, nr, 5, 5, 1, 1, 4, 4, 4, 4, nr, 1, false},       /* padding of window - 1 each side */
        {6, 6, 48, 3, 3, 1, 1, 0, 0, 0, 0, nr, 2, false},       /* unpadded, K = 432: two K slices */
        /* strided input gradients, one implicit GEMM per residue class of the stride */
        {11, 12, 16, 5, 5, 2, 2, 2, 2, 2, 1, nr, 2, false},     /* 5x5 'same' stride 2: 3x3..2x2 taps */
        {9, 8, nr, 3, 3, 2, 2, 1, 1, 1, 1, nr, 2, false},       /* padding 1: classes start at q = 1 */
        {7, 9, nr, 3, 2, 1, 2, 1, 1, 0, 1, nr, 3, false},       /* stride (1, 2) on a 3x2 window */
        {9, 7, 2 * nr, 1, 1, 2, 2, 0, 0, 0, 0, nr, 2, false},   /* 1x1 stride 2: three classes no tap reaches */
        {10, 11, nr, 2, 2, 3, 3, 0, 1, 1, 0, nr, 2, false},     /* stride 3 past a 2x2 window; skips dy column 0 */
        {9, 9, nr, 3, 3, 2, 2, 2, 2, 2, 2, nr, 2, false},       /* padding 2: a class skips dy's first row */
        {1, 1, nr, 1, 1, 2, 2, 1, 0, 1, 0, nr, 2, false},       /* 1x1 stride 2 padded by 1: no tap reads x */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_padded(cases[i]);
}

Test(conv_padded, matches_im2col_gemm_all_three_passes) { check_padded_all(); }
Test(conv_padded, avx2_kernel, .init = force_avx2) { check_padded_all(); }
Test(conv_padded, generic_kernel, .init = force_generic) { check_padded_all(); }
Test(conv_padded, environment_turns_it_off)
{
    const cv_window g = conv_win(8, 8, 32, 3, 1, true);
    cr_assert(cv_conv_gemm_padded_fits(&g, 64));
    setenv("CONVOY_IMPLICIT", "0", 1);
    cr_assert_not(cv_conv_gemm_padded_fits(&g, 64));
    cr_assert_not(cv_conv_gemm_dx_fits(&g));
    unsetenv("CONVOY_IMPLICIT");
}
Test(conv_padded, thread_count_does_not_change_bits)
{
    const cv_window g = conv_win(14, 14, 32, 5, 1, true);
    enum { B = 5, F = 64 };
    const int K = 800, P = g.OH * g.OW;
    float *x = rand_buf((size_t)B * 14 * 14 * 32, 701), *dy = rand_buf((size_t)B * P * F, 702);
    float *w = rand_buf((size_t)K * F, 703);
    float *o[2], *d[2], *dx[2], b[2][F];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        o[t] = malloc(sizeof(float) * B * P * F), d[t] = calloc((size_t)K * F, sizeof(float));
        dx[t] = malloc(sizeof(float) * B * 14 * 14 * 32);
        memset(b[t], 0, sizeof b[t]);
        cr_assert_eq(cv_conv_gemm_padded(o[t], x, w, NULL, B, F, &g, false), 0);
        cr_assert_eq(cv_conv_gemm_padded_dw(d[t], b[t], x, dy, B, F, &g, false), 0);
        cr_assert_eq(cv_conv_gemm_dx(dx[t], dy, w, B, F, &g), 0);
    }
    cr_assert_eq(memcmp(o[0], o[1], sizeof(float) * B * P * F), 0);
    cr_assert_eq(memcmp(d[0], d[1], sizeof(float) * K * F), 0);
    cr_assert_eq(memcmp(b[0], b[1], sizeof b[0]), 0);
    cr_assert_eq(memcmp(dx[0], dx[1], sizeof(float) * B * 14 * 14 * 32), 0);
    for (int t = 0; t < 2; t++) free(o[t]), free(d[t]), free(dx[t]);
    free(x), free(dy), free(w);
}

/* The strided input gradient (one implicit GEMM per residue class of the stride, the classes'
 * pixels then put in place) gives the same bits on 1, 2, 3, 5 and 16 threads: ResNet-20's
 * stride-2 'same' convs, 16 -> 32 channels (a 16-wide tile on AVX-512) and 32 -> 64. */
Test(conv_padded, strided_input_gradient_thread_count_does_not_change_bits)
{
#ifndef _OPENMP
    cr_skip_test("built without OpenMP");
#else
    static const int Cs[2] = {16, 32}, threads[] = {1, 2, 3, 5, 16};
    enum { B = 16, H = 16 };
    for (int k = 0; k < 2; k++) {
        const int C = Cs[k], F = 2 * C;
        cv_window g = conv_win(H, H, C, 3, 2, true);
        cr_assert_eq(g.pad_top, 0, "'same' stride 2 on an even size pads the bottom and right only");
        cr_assert(cv_conv_gemm_dx_fits(&g), "C=%d: the strided input gradient is not taken", C);
        const size_t nx = (size_t)B * H * H * C;
        float *dy = rand_buf((size_t)B * g.OH * g.OW * F, 720 + C), *w = rand_buf((size_t)9 * C * F, 721 + C);
        float *first = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx);
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            omp_set_num_threads(threads[t]);
            for (size_t i = 0; i < nx; i++) dx[i] = NAN; /* every value written */
            cr_assert_eq(cv_conv_gemm_dx(t ? dx : first, dy, w, B, F, &g), 0);
            if (t) cr_assert_eq(memcmp(first, dx, sizeof(float) * nx), 0, "C=%d, %d threads", C, threads[t]);
            else
                for (size_t i = 0; i < nx; i++) cr_assert(isfinite(first[i]), "C=%d: dx[%zu] not written", C, i);
        }
        omp_set_num_threads(1);
        free(dy), free(w), free(first), free(dx);
    }
#endif
}

/* Winograd F(4x4,3x3) against im2col + the naive GEMM. Not bit for bit: its sums are not the
 * direct ones, so each value must be within WINO_TOL of the sum of its terms' magnitudes (the
 * same products on |x| and |w|): forward pass, input gradient (col2im of dy w^T) and weight
 * gradient (col^T dy). Shapes: fmnist-cnn's second layer (11x11 outputs, blocks past the
 * edge), whole blocks, 3x5 and 1x1 outputs, 'same' padding, 16 to 64 channels, 32 to 96
 * filters, bias and leaky ReLU. A batch's forward and input-gradient bits
 * equal those of its samples one call each; a kernel transformed beforehand gives the bits of
 * one transformed in the call. */
#define WINO_TOL 1e-5

static void assert_near_terms(const float *got, const float *want, const float *terms, size_t n, const char *what,
                              int H, int W, int C, int F)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_leq(fabsf(got[i] - want[i]), WINO_TOL * terms[i] + 1e-30,
                      "H=%d W=%d C=%d F=%d: %s[%zu] = %.9g, want %.9g (terms %.3g)", H, W, C, F, what, i, got[i],
                      want[i], terms[i]);
}

static float *abs_copy(const float *p, size_t n)
{
    float *a = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) a[i] = fabsf(p[i]);
    return a;
}

/* n floats on 64-byte lines, as the network's activations are (where outputs past L2 go out by
 * stream stores) */
static float *line_alloc(size_t n) { return aligned_alloc(64, (sizeof(float) * n + 63) / 64 * 64); }

static void check_wino(int H, int W, int C, int F, int B, bool same)
{
    const cv_window g = conv_win(H, W, C, 3, 1, same);
    const int K = 9 * C, P = g.OH * g.OW;
    const size_t nx = (size_t)B * H * W * C, ny = (size_t)B * P * F, nc = (size_t)B * P * K, nw = (size_t)K * F;
    cr_assert(cv_conv_wino_fits(&g, F), "H=%d W=%d C=%d F=%d: Winograd not taken", H, W, C, F);
    /* the input gradient's filters are C: a multiple of every micro-kernel's width (8 to 32)
     * fits, a smaller one (here 16) where the width divides it */
    const bool dx_fits = cv_conv_wino_dx_fits(&g, F);
    cr_assert(dx_fits || C % 32 != 0, "H=%d W=%d C=%d F=%d: input gradient not taken", H, W, C, F);
    float *x = rand_buf(nx, 600 + F + C), *w = rand_buf(nw, 601 + F), *bias = rand_buf((size_t)F, 602 + F);
    float *dy = rand_buf(ny, 603 + C), *xa = abs_copy(x, nx), *wa = abs_copy(w, nw), *dya = abs_copy(dy, ny);
    float *col = malloc(sizeof(float) * nc), *cola = malloc(sizeof(float) * nc);
    float *ref = malloc(sizeof(float) * ny), *terms = malloc(sizeof(float) * ny);
    float *out = line_alloc(ny), *one = malloc(sizeof(float) * ny);
    cv_im2col(col, x, B, &g, false);
    cv_im2col(cola, xa, B, &g, false);
    /* forward */
    cv_sgemm_naive(false, false, B * P, F, K, 1.0f, col, K, w, F, 0.0f, ref, F);
    cv_sgemm_naive(false, false, B * P, F, K, 1.0f, cola, K, wa, F, 0.0f, terms, F);
    const cv_epilogue ep = {bias, true, 0.05f};
    cr_assert_eq(cv_conv_wino(out, x, w, NULL, &ep, B, F, &g, NULL), 0);
    int negatives = 0;
    for (size_t i = 0; i < ny; i++) { /* the epilogue's own rounding on top: scale the bound */
        float v = ref[i] + bias[i % F];
        if (v < 0) v *= 0.05f, negatives++;
        ref[i] = v;
        terms[i] += fabsf(bias[i % F]);
    }
    cr_assert_gt(negatives, 0);
    assert_near_terms(out, ref, terms, ny, "out", H, W, C, F);
    for (int b = 0; b < B; b++)
        cr_assert_eq(cv_conv_wino(one + (size_t)b * P * F, x + (size_t)b * H * W * C, w, NULL, &ep, 1, F, &g, NULL), 0);
    cr_assert_eq(memcmp(out, one, sizeof(float) * ny), 0, "H=%d W=%d C=%d F=%d: a batch's bits differ from its samples'",
                 H, W, C, F);
    float *U = malloc(sizeof(float) * CV_WINO_XI * nw);
    cr_assert_eq(cv_conv_wino_weights(U, w, C, F, false), 0);
    cr_assert_eq(cv_conv_wino(one, x, w, U, &ep, B, F, &g, NULL), 0);
    cr_assert_eq(memcmp(out, one, sizeof(float) * ny), 0, "H=%d W=%d C=%d F=%d: given U", H, W, C, F);
    /* the weight gradient, added to what dw holds */
    float *dw = rand_buf(nw, 604), *dw0 = malloc(sizeof(float) * nw);
    float *wref = malloc(sizeof(float) * nw), *wterms = malloc(sizeof(float) * nw);
    memcpy(dw0, dw, sizeof(float) * nw);
    cv_sgemm_naive(true, false, K, F, B * P, 1.0f, col, K, dy, F, 0.0f, wref, F);
    cv_sgemm_naive(true, false, K, F, B * P, 1.0f, cola, K, dya, F, 0.0f, wterms, F);
    cr_assert_eq(cv_conv_wino_dw(dw, x, dy, B, F, &g, NULL), 0);
    for (size_t i = 0; i < nw; i++) dw[i] -= dw0[i], wterms[i] += fabsf(dw0[i]);
    assert_near_terms(dw, wref, wterms, nw, "dw", H, W, C, F);
    /* input gradient */
    if (dx_fits) {
        const size_t nxa = nx;
        float *dx = line_alloc(nxa), *dxone = malloc(sizeof(float) * nxa);
        float *xref = malloc(sizeof(float) * nxa), *xterms = malloc(sizeof(float) * nxa);
        cv_sgemm_naive(false, true, B * P, K, F, 1.0f, dy, F, w, F, 0.0f, col, K);
        cv_col2im(xref, col, B, &g, false, true);
        cv_sgemm_naive(false, true, B * P, K, F, 1.0f, dya, F, wa, F, 0.0f, cola, K);
        cv_col2im(xterms, cola, B, &g, false, true);
        cr_assert_eq(cv_conv_wino_dx(dx, dy, w, NULL, B, F, &g, g.OH, g.OW), 0);
        assert_near_terms(dx, xref, xterms, nxa, "dx", H, W, C, F);
        for (int b = 0; b < B; b++)
            cr_assert_eq(cv_conv_wino_dx(dxone + (size_t)b * H * W * C, dy + (size_t)b * P * F, w, NULL, 1, F, &g,
                                         g.OH, g.OW), 0);
        cr_assert_eq(memcmp(dx, dxone, sizeof(float) * nxa), 0, "H=%d W=%d C=%d F=%d: dx of a batch vs its samples", H,
                     W, C, F);
        cr_assert_eq(cv_conv_wino_weights(U, w, C, F, true), 0);
        cr_assert_eq(cv_conv_wino_dx(dxone, dy, w, U, B, F, &g, g.OH, g.OW), 0);
        cr_assert_eq(memcmp(dx, dxone, sizeof(float) * nxa), 0, "H=%d W=%d C=%d F=%d: dx given U", H, W, C, F);
        /* dy zero past its first rows and columns (as after a pool that leaves the last ones
         * out): told so, the blocks that read only zeros are skipped, and every value equals
         * the whole computation's (7 + pad rows: dx's first 9 rows, 3 blocks, one row into the
         * third) */
        const int rows[2] = {g.OH - 1, 7 + g.pad_top < g.OH ? 7 + g.pad_top : g.OH}, cols[2] = {g.OW - 1, g.OW};
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < ny; i++) {
                const int q = (int)(i / F % P), y = q / g.OW, xx = q % g.OW;
                if (y >= rows[k] || xx >= cols[k]) dy[i] = 0.0f;
            }
            cr_assert_eq(cv_conv_wino_dx(dx, dy, w, U, B, F, &g, g.OH, g.OW), 0);
            for (size_t i = 0; i < nxa; i++) dxone[i] = NAN;
            cr_assert_eq(cv_conv_wino_dx(dxone, dy, w, U, B, F, &g, rows[k], cols[k]), 0);
            for (size_t i = 0; i < nxa; i++)
                cr_assert(dx[i] == dxone[i], "H=%d W=%d C=%d F=%d, dy %dx%d: dx[%zu] = %.9g, want %.9g", H, W, C, F,
                          rows[k], cols[k], i, dxone[i], dx[i]);
        }
        free(dx), free(dxone), free(xref), free(xterms);
    }
    free(x), free(w), free(bias), free(dy), free(xa), free(wa), free(dya), free(col), free(cola), free(ref);
    free(terms), free(out), free(one), free(U), free(dw), free(dw0), free(wref), free(wterms);
}

static void check_wino_all(void)
{
    check_wino(13, 13, 32, 64, 5, false); /* fmnist-cnn's second layer: 11x11, blocks past the edge */
    check_wino(14, 10, 16, 32, 3, false); /* 12x8: whole blocks */
    check_wino(5, 7, 48, 96, 2, false);   /* 3x5 */
    check_wino(3, 3, 16, 32, 1, false);   /* 1x1 */
    check_wino(13, 13, 32, 64, 2, true);  /* 'same': padded by 1 */
    check_wino(6, 9, 64, 32, 3, true);
    /* 16 channels into 16 filters (ResNet-20's first stage; on AVX-512 the products' blocks held
     * in registers, chunks of 24 blocks; AVX2's tile: chunks of 6): 27 blocks, one chunk and a
     * short one of 3 (AVX2: four and 3); 'same' on 11x9 */
    check_wino(14, 13, 16, 16, 3, false);
    check_wino(11, 9, 16, 16, 2, true);
    /* a batch whose output and input gradient pass 1 MiB (17 samples of 64 KiB) goes out by
     * stream stores, its samples one at a time do not: the same bits */
    check_wino(32, 32, 16, 16, 17, true);
    /* a sample whose padded copy passes 512 KiB (66 x 66 x 32): inside blocks read in place,
     * those at the edge copied one at a time */
    check_wino(64, 64, 32, 32, 2, true);
    /* where it does not apply: stride 2, a 5x5 window, channels off a multiple of 16, a filter
     * count off the micro-kernel's width */
    const cv_window s2 = conv_win(13, 13, 32, 3, 2, false), k5 = conv_win(13, 13, 32, 5, 1, false);
    const cv_window c8 = conv_win(13, 13, 8, 3, 1, false), ok = conv_win(13, 13, 32, 3, 1, false);
    cr_assert_not(cv_conv_wino_fits(&s2, 64));
    cr_assert_not(cv_conv_wino_dx_fits(&s2, 64));
    cr_assert_not(cv_conv_wino_fits(&k5, 64));
    cr_assert_not(cv_conv_wino_dx_fits(&k5, 64));
    cr_assert_not(cv_conv_wino_fits(&c8, 64));
    cr_assert_not(cv_conv_wino_fits(&ok, 36));
    cr_assert_not(cv_conv_wino_dx_fits(&ok, 40)); /* F = 40 channels of dy: not whole vectors */
    setenv("CONVOY_WINOGRAD", "0", 1);
    cr_assert_not(cv_conv_wino_fits(&ok, 64), "CONVOY_WINOGRAD=0 turns it off");
    cr_assert_not(cv_conv_wino_dx_fits(&ok, 64), "CONVOY_WINOGRAD=0 turns it off");
    unsetenv("CONVOY_WINOGRAD");
    cr_assert(cv_conv_wino_fits(&ok, 64));
    cr_assert(cv_conv_wino_dx_fits(&ok, 64));
}

/* The weight gradient's channel tiles: 32 channels on the 12-row AVX-512 kernel are two whole
 * tiles and a short one of 8 (on 6-row kernels, 16 channels: two whole tiles and 4). A channel's
 * gradient depends on its own input channel and dy alone, so the first C channels of a C + 16
 * channel input (copied from the C-channel one), whose tiles are cut elsewhere, must give the
 * same bits. */
static void check_wino_dw_short_tile(void)
{
    static const int Cs[] = {16, 32};
    enum { H = 13, F = 64, B = 3 };
    for (int k = 0; k < 2; k++) {
        const int C = Cs[k], C2 = C + 16;
        const cv_window g = conv_win(H, H, C, 3, 1, false), g2 = conv_win(H, H, C2, 3, 1, false);
        const int P = g.OH * g.OW;
        float *x = rand_buf((size_t)B * H * H * C, 710 + C), *x2 = rand_buf((size_t)B * H * H * C2, 711);
        float *dy = rand_buf((size_t)B * P * F, 712);
        for (int px = 0; px < B * H * H; px++) memcpy(x2 + (size_t)px * C2, x + (size_t)px * C, sizeof(float) * C);
        float *dw = calloc((size_t)9 * C * F, sizeof(float)), *dw2 = calloc((size_t)9 * C2 * F, sizeof(float));
        cr_assert_eq(cv_conv_wino_dw(dw, x, dy, B, F, &g, NULL), 0);
        cr_assert_eq(cv_conv_wino_dw(dw2, x2, dy, B, F, &g2, NULL), 0);
        for (int t = 0; t < 9; t++)
            cr_expect_arr_eq(dw + (size_t)t * C * F, dw2 + (size_t)t * C2 * F, sizeof(float) * C * F,
                             "%s kernel, C=%d: window tap %d's gradient differs from the first %d of %d channels",
                             cv_gemm_path(), C, t, C, C2);
        free(x), free(x2), free(dy), free(dw), free(dw2);
    }
}

Test(conv_winograd, short_channel_tile_same_bits) { check_wino_dw_short_tile(); }
Test(conv_winograd, short_channel_tile_same_bits_avx2, .init = force_avx2) { check_wino_dw_short_tile(); }
Test(conv_winograd, short_channel_tile_same_bits_generic, .init = force_generic) { check_wino_dw_short_tile(); }

Test(conv_winograd, matches_the_direct_sums) { check_wino_all(); }
Test(conv_winograd, avx2_clone, .init = force_avx2) { check_wino_all(); }
Test(conv_winograd, generic_clone, .init = force_generic) { check_wino_all(); }
Test(conv_winograd, thread_count_does_not_change_bits)
{
    const cv_window g = conv_win(13, 13, 32, 3, 1, false);
    enum { B = 9, F = 64 };
    const int P = g.OH * g.OW;
    const size_t nx = (size_t)B * 13 * 13 * 32, ny = (size_t)B * P * F, nw = (size_t)288 * F;
    float *x = rand_buf(nx, 701), *w = rand_buf(nw, 702), *dy = rand_buf(ny, 703);
    float *o[2], *dx[2], *dw[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        o[t] = malloc(sizeof(float) * ny), dx[t] = malloc(sizeof(float) * nx), dw[t] = calloc(nw, sizeof(float));
        cr_assert_eq(cv_conv_wino(o[t], x, w, NULL, NULL, B, F, &g, NULL), 0);
        cr_assert_eq(cv_conv_wino_dw(dw[t], x, dy, B, F, &g, NULL), 0);
        if (cv_conv_wino_dx_fits(&g, F)) cr_assert_eq(cv_conv_wino_dx(dx[t], dy, w, NULL, B, F, &g, 10, 11), 0);
        else memset(dx[t], 0, sizeof(float) * nx);
    }
    cr_assert_eq(memcmp(o[0], o[1], sizeof(float) * ny), 0);
    cr_assert_eq(memcmp(dx[0], dx[1], sizeof(float) * nx), 0);
    cr_assert_eq(memcmp(dw[0], dw[1], sizeof(float) * nw), 0);
    for (int t = 0; t < 2; t++) free(o[t]), free(dx[t]), free(dw[t]);
    free(x), free(w), free(dy);
}

/* 16 channels into 16 filters (the products' own AVX-512 kernels): the forward pass, input and
 * weight gradients give the same bits on 1, 2, 3, 5 and 16 threads */
Test(conv_winograd, sixteen_channels_thread_count_does_not_change_bits)
{
#ifndef _OPENMP
    cr_skip_test("built without OpenMP");
#else
    static const int threads[] = {1, 2, 3, 5, 16};
    enum { B = 7, H = 18, C = 16, F = 16, T = sizeof threads / sizeof threads[0] };
    const cv_window g = conv_win(H, H, C, 3, 1, true);
    const size_t nx = (size_t)B * H * H * C, nw = (size_t)9 * C * F;
    float *x = rand_buf(nx, 731), *w = rand_buf(nw, 732), *dy = rand_buf(nx, 733);
    float *o[T], *dx[T], *dw[T];
    for (int t = 0; t < T; t++) {
        omp_set_num_threads(threads[t]);
        o[t] = malloc(sizeof(float) * nx), dx[t] = malloc(sizeof(float) * nx), dw[t] = calloc(nw, sizeof(float));
        cr_assert_eq(cv_conv_wino(o[t], x, w, NULL, NULL, B, F, &g, NULL), 0);
        cr_assert_eq(cv_conv_wino_dw(dw[t], x, dy, B, F, &g, NULL), 0);
        cr_assert_eq(cv_conv_wino_dx(dx[t], dy, w, NULL, B, F, &g, H, H), 0);
        if (!t) continue;
        cr_assert_eq(memcmp(o[0], o[t], sizeof(float) * nx), 0, "out, %d threads", threads[t]);
        cr_assert_eq(memcmp(dx[0], dx[t], sizeof(float) * nx), 0, "dx, %d threads", threads[t]);
        cr_assert_eq(memcmp(dw[0], dw[t], sizeof(float) * nw), 0, "dw, %d threads", threads[t]);
    }
    omp_set_num_threads(1);
    for (int t = 0; t < T; t++) free(o[t]), free(dx[t]), free(dw[t]);
    free(x), free(w), free(dy);
#endif
}

/* The conv2d + 2x2 pool kernel against cv_conv_direct then cv_pool_forward (bit for bit: the
 * same sums, winners and activation), and its weight gradient against cv_pool_backward then
 * cv_conv_direct_dw: 3x3 on one channel (with a conv row no window covers), 2x2 on three
 * channels with stride 2, ReLU, leaky ReLU and none, max and min, with and without db. */
static void check_conv_pool(int H, int W, int C, int k, int s, int F, int B, const cv_epilogue *ep, cv_pool_kind kind)
{
    const cv_window g = conv_win(H, W, C, k, s, false);
    const cv_window pg = {.H = g.OH, .W = g.OW, .C = F, .KH = 2, .KW = 2, .SH = 2, .SW = 2, .OH = g.OH / 2, .OW = g.OW / 2};
    cr_assert(cv_conv_pool_fits(&g, &pg, F, kind));
    const int K = k * k * C, P = g.OH * g.OW, Q = pg.OH * pg.OW;
    float *x = rand_buf((size_t)B * H * W * C, 600 + F), *w = rand_buf((size_t)K * F, 601 + F);
    float *y = malloc(sizeof(float) * (size_t)B * P * F), *dy = malloc(sizeof(float) * (size_t)B * P * F);
    float *po = malloc(sizeof(float) * (size_t)B * Q * F), *fo = malloc(sizeof(float) * (size_t)B * Q * F);
    float *dout = rand_buf((size_t)B * Q * F, 602 + F);
    int32_t *pa = malloc(sizeof(int32_t) * (size_t)B * Q * F), *fa = malloc(sizeof(int32_t) * (size_t)B * Q * F);
    cv_conv_direct(y, x, w, ep, B, F, &g, false);
    cv_pool_forward(po, pa, y, B, &pg, kind);
    cv_conv_pool(fo, fa, x, w, ep, B, F, &g, &pg, kind);
    cr_assert_eq(memcmp(po, fo, sizeof(float) * (size_t)B * Q * F), 0, "k=%d C=%d F=%d: pooled values differ", k, C, F);
    cr_assert_eq(memcmp(pa, fa, sizeof(int32_t) * (size_t)B * Q * F), 0, "k=%d C=%d F=%d: winners differ", k, C, F);
    const bool relu = ep && ep->relu;
    for (int with_db = 0; with_db < 2; with_db++) {
        float *dw = malloc(sizeof(float) * (size_t)(K + 1) * F), *rw = malloc(sizeof(float) * (size_t)(K + 1) * F);
        for (int i = 0; i < (K + 1) * F; i++) dw[i] = rw[i] = 0.25f; /* both accumulate */
        cv_pool_backward(dy, dout, pa, B, &pg, kind, true, relu ? po : NULL, relu ? ep->leak : 0.0f);
        cr_assert_eq(cv_conv_direct_dw(rw, with_db ? rw + K * F : NULL, x, dy, B, F, &g, false), 0);
        cr_assert_eq(cv_conv_pool_dw(dw, with_db ? dw + K * F : NULL, x, dout, fa, relu ? fo : NULL,
                                     relu ? ep->leak : 0.0f, B, F, &g, &pg),
                     0);
        for (int i = 0; i < (K + 1) * F; i++)
            cr_assert_leq(fabsf(dw[i] - rw[i]), 1e-5f * (1.0f + fabsf(rw[i])), "k=%d C=%d F=%d: dw[%d] = %g, want %g", k,
                          C, F, i, dw[i], rw[i]);
        free(dw), free(rw);
    }
    free(x), free(w), free(y), free(dy), free(po), free(fo), free(dout), free(pa), free(fa);
}

static void check_conv_pool_all(void)
{
    float bias[64];
    for (int f = 0; f < 64; f++) bias[f] = 0.1f * (float)(f % 7) - 0.3f;
    const cv_epilogue relu = {bias, true, 0.0f}, leaky = {bias, true, 0.1f}, linear = {NULL, false, 0.0f};
    check_conv_pool(28, 28, 1, 3, 1, 32, 3, &relu, CV_POOL_MAX);   /* fmnist-cnn's first pair */
    check_conv_pool(11, 12, 1, 3, 1, 16, 2, &relu, CV_POOL_MAX);   /* 9 conv rows: one uncovered */
    check_conv_pool(13, 11, 3, 2, 2, 48, 2, &leaky, CV_POOL_MAX);  /* RGB 2x2, stride 2 */
    check_conv_pool(9, 10, 2, 2, 1, 64, 2, &leaky, CV_POOL_MIN);
    check_conv_pool(10, 10, 1, 3, 1, 16, 2, &relu, CV_POOL_MIN);
    check_conv_pool(10, 9, 1, 3, 1, 32, 2, &linear, CV_POOL_MAX);
    check_conv_pool(10, 9, 1, 3, 1, 32, 2, NULL, CV_POOL_MIN);
    /* what it does not take: padding, avg pooling, 5x5 windows, other pools, filter counts */
    const cv_window c = conv_win(28, 28, 1, 3, 1, false), same = conv_win(28, 28, 1, 3, 1, true);
    const cv_window c5 = conv_win(28, 28, 1, 5, 1, false);
    const cv_window p2 = {.H = 26, .W = 26, .C = 32, .KH = 2, .KW = 2, .SH = 2, .SW = 2, .OH = 13, .OW = 13};
    const cv_window p3 = {.H = 26, .W = 26, .C = 32, .KH = 3, .KW = 3, .SH = 3, .SW = 3, .OH = 8, .OW = 8};
    const cv_window p24 = {.H = 24, .W = 24, .C = 32, .KH = 2, .KW = 2, .SH = 2, .SW = 2, .OH = 12, .OW = 12};
    cr_assert_not(cv_conv_pool_fits(&c, &p2, 32, CV_POOL_AVG));
    cr_assert_not(cv_conv_pool_fits(&same, &p2, 32, CV_POOL_MAX));
    cr_assert(cv_conv_pool_fits(&c, &p2, 32, CV_POOL_MAX));
    cr_assert_not(cv_conv_pool_fits(&c5, &p24, 32, CV_POOL_MAX));
    cr_assert_not(cv_conv_pool_fits(&c, &p3, 32, CV_POOL_MAX));
    cr_assert_not(cv_conv_pool_fits(&c, &p2, 24, CV_POOL_MAX));
}

Test(conv_pool, matches_conv_then_pool) { check_conv_pool_all(); }
Test(conv_pool, avx2_clone, .init = force_avx2) { check_conv_pool_all(); }
Test(conv_pool, generic_clone, .init = force_generic) { check_conv_pool_all(); }
