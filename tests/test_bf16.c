/* --precision bf16: the rounding to bfloat16 (known values), the pair order VDPBF16PS adds in
 * (a hand-made case where the order decides the result), cv_bgemm_ep against its plain-loop
 * reference bit for bit on every path (AVX512_BF16 where the CPU has it, and the emulation on
 * the AVX-512, AVX2 and generic micro-kernels), at any thread count, within bf16's rounding of
 * the fp32 product; the implicit convolutions against im2col + cv_bgemm_ep (forward, weight and
 * input gradients, zero and nearest padding, strides, bit for bit); and a network in bf16 against the same network in fp32 (gradients close,
 * not equal; Winograd off), and the refusal where the CPU cannot run it. */
#define _GNU_SOURCE /* setenv */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/kernels.h"
#include "convoy/model.h"
#include "convoy/rng.h"
#include "randbuf.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(bf16, rounding_known_values)
{
    const struct {
        uint32_t in, out;
    } cases[] = {
        {0x3f800000u, 0x3f800000u}, /* 1 */
        {0x3f808000u, 0x3f800000u}, /* 1 + 2^-8: a tie, to the even 1 */
        {0x3f818000u, 0x3f820000u}, /* 1 + 3 2^-8: a tie, to the even 1 + 2^-6 */
        {0x3f808001u, 0x3f810000u}, /* just past the tie: up */
        {0xc0f00000u, 0xc0f00000u}, /* -7.5, exact */
        {0x00000000u, 0x00000000u}, {0x80000000u, 0x80000000u},
        {0x007fffffu, 0x00000000u}, /* the largest subnormal: to zero */
        {0x800116c2u, 0x80000000u}, /* a negative subnormal: to -0 */
        {0x00800000u, 0x00800000u}, /* the smallest normal stays */
        {0x7f7fffffu, 0x7f800000u}, /* FLT_MAX rounds past the largest bf16: infinity */
        {0xff800000u, 0xff800000u}, /* -inf */
        {0x7f800001u, 0x7fc00000u}, /* a signalling NaN: quiet, still NaN */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(bits_of(cv_bf16_round(float_of(cases[i].in))), cases[i].out, "%08x -> %08x, want %08x",
                     cases[i].in, bits_of(cv_bf16_round(float_of(cases[i].in))), cases[i].out);
}

/* 1 x 1 x 4: pairs (k0, k1) then (k2, k3), each the odd k's product first. a0 b0 = a1 b1 = 1/2
 * sum to 1; then a3 b3 = -1 gives 0, and a2 b2 = 2^-24 gives 2^-24. Adding a2 b2 first would
 * lose it (1 + 2^-24 rounds to 1) and give 0. */
static void check_pair_order(void)
{
    const float A[4] = {0.5f, 0.5f, 0x1p-12f, -1.0f}, B[4] = {1.0f, 1.0f, 0x1p-12f, 1.0f};
    float c = 7.0f, r = 7.0f;
    cv_bgemm_ep(false, false, 1, 1, 4, 1.0f, A, 4, B, 1, 0.0f, &c, 1, NULL);
    cv_bgemm_naive(false, false, 1, 1, 4, 1.0f, A, 4, B, 1, 0.0f, &r, 1);
    cr_assert_eq(c, 0x1p-24f, "got %a", (double)c);
    cr_assert_eq(r, 0x1p-24f, "reference got %a", (double)r);
}

Test(bf16, pair_order_is_odd_k_first) { check_pair_order(); }


typedef struct {
    int M, N, K;
} shape;

/* shapes across the tiles (12 x 32, 6 x 16, 6 x 8), the MC = 192 row blocks, the NC = 512
 * column blocks, odd K, and K in several CV_BGEMM_KC slices */
static const shape shapes[] = {{1, 1, 1},     {3, 5, 2},      {13, 33, 7},   {12, 32, 64},  {64, 128, 577},
                               {200, 70, 33}, {5, 600, 1030}, {193, 17, 3},  {40, 64, 1601}};

/* C by cv_bgemm_ep against cv_bgemm_naive, bit for bit, for every transpose, alpha, beta and
 * leading dimension, with and without an epilogue */
static void check_against_reference(void)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int v = 0; v < 3; v++) {
                const bool tA = tr & 1, tB = tr & 2;
                const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
                const int lda = (tA ? M : K) + (v == 2 ? 3 : 0), ldb = (tB ? K : N) + (v == 2 ? 5 : 0),
                          ldc = N + (v == 2 ? 2 : 0);
                const float alpha = v == 1 ? 0.5f : 1.0f, beta = v == 0 ? 0.0f : v == 1 ? 1.0f : 0.75f;
                float *A = rand_buf((size_t)(tA ? K : M) * lda, 11 + s), *B = rand_buf((size_t)(tB ? N : K) * ldb, 23 + s);
                float *C = rand_buf((size_t)M * ldc, 31 + s), *R = malloc(sizeof(float) * (size_t)M * ldc);
                float *bias = rand_buf((size_t)N, 41 + s);
                memcpy(R, C, sizeof(float) * (size_t)M * ldc);
                const cv_epilogue ep = {bias, v != 1, v == 2 ? 0.1f : 0.0f};
                cv_bgemm_ep(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, v ? &ep : NULL);
                cv_bgemm_naive(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
                for (int i = 0; v && i < M; i++)
                    for (int j = 0; j < N; j++) {
                        float *r = &R[(size_t)i * ldc + j];
                        *r += bias[j];
                        if (ep.relu) *r = *r > 0.0f ? *r : ep.leak * *r;
                    }
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++)
                        cr_assert_eq(bits_of(C[(size_t)i * ldc + j]), bits_of(R[(size_t)i * ldc + j]),
                                     "%s: %dx%dx%d tA=%d tB=%d case %d: C[%d][%d] = %a, reference %a", cv_bgemm_path(),
                                     M, N, K, tA, tB, v, i, j, (double)C[(size_t)i * ldc + j],
                                     (double)R[(size_t)i * ldc + j]);
                free(A), free(B), free(C), free(R), free(bias);
            }
}

Test(bf16, default_path_matches_reference_bit_for_bit) { check_against_reference(); }

static void force_emulate(void) { setenv("CONVOY_BF16", "emulate", 1); }
static void force_emulate_avx2(void)
{
    setenv("CONVOY_GEMM", "avx2", 1);
    force_emulate();
}
static void force_emulate_generic(void)
{
    setenv("CONVOY_GEMM", "generic", 1);
    force_emulate();
}

/* Criterion forks per test: the path is chosen after .init has set the variables */
Test(bf16, emulated_on_avx512_matches_reference, .init = force_emulate)
{
    cr_assert_str_eq(cv_bgemm_path(), "emulated");
    check_against_reference();
    check_pair_order();
}
Test(bf16, emulated_on_avx2_matches_reference, .init = force_emulate_avx2)
{
    cr_assert_str_eq(cv_bgemm_path(), "emulated");
    check_against_reference();
}
Test(bf16, emulated_on_generic_matches_reference, .init = force_emulate_generic)
{
    cr_assert_str_eq(cv_bgemm_path(), "emulated");
    check_against_reference();
    check_pair_order();
}

Test(bf16, native_where_the_cpu_has_it)
{
#if defined(__x86_64__)
    const bool has = __builtin_cpu_supports("avx512bf16") && strcmp(cv_gemm_path(), "avx512") == 0;
    cr_assert_str_eq(cv_bgemm_path(), has ? "avx512bf16" : "emulated");
    if (!has) cr_log_info("this CPU has no AVX512_BF16: the emulated path is the one tested");
#endif
}

Test(bf16, thread_count_does_not_change_bits)
{
#ifndef _OPENMP
    cr_skip_test("built without OpenMP");
#else
    const int M = 300, N = 200, K = 1100;
    float *A = rand_buf((size_t)M * K, 5), *B = rand_buf((size_t)K * N, 6);
    float *C1 = malloc(sizeof(float) * M * N), *Ct = malloc(sizeof(float) * M * N);
    omp_set_num_threads(1);
    cv_bgemm_ep(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N, NULL);
    const int counts[] = {2, 3, 5};
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(counts[t]);
        cv_bgemm_ep(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, Ct, N, NULL);
        cr_assert(memcmp(C1, Ct, sizeof(float) * M * N) == 0, "%d threads changed the bits", counts[t]);
    }
    /* a product of few rows (a dense layer's batch) is cut by column groups instead */
    omp_set_num_threads(1);
    cv_bgemm_ep(false, false, 7, N, 64, 1.0f, A, 64, B, N, 0.0f, C1, N, NULL);
    omp_set_num_threads(4);
    cv_bgemm_ep(false, false, 7, N, 64, 1.0f, A, 64, B, N, 0.0f, Ct, N, NULL);
    cr_assert(memcmp(C1, Ct, sizeof(float) * 7 * N) == 0, "few rows: 4 threads changed the bits");
    free(A), free(B), free(C1), free(Ct);
#endif
}

/* each product's operands are within 2^-9 relatively of the fp32 ones, so |C - C_fp32| <=
 * (2^-8 + 2^-16) sum |a b| plus the fp32 additions' rounding, K of them */
Test(bf16, within_bf16_rounding_of_the_fp32_product)
{
    const int M = 37, N = 45, K = 700;
    float *A = rand_buf((size_t)M * K, 7), *B = rand_buf((size_t)K * N, 8);
    float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
    cv_bgemm_ep(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, NULL);
    cv_sgemm_naive(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
    double worst = 0.0, sum_diff = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double mag = 0.0;
            for (int k = 0; k < K; k++) mag += fabs((double)A[i * K + k] * B[k * N + j]);
            const double d = fabs((double)C[i * N + j] - R[i * N + j]);
            const double bound = (0x1p-8 + 0x1p-16) * mag + K * 0x1p-24 * mag;
            cr_assert(d <= bound, "C[%d][%d]: off by %g, bound %g", i, j, d, bound);
            if (d / mag > worst) worst = d / mag;
            sum_diff += d;
        }
    cr_assert(sum_diff > 0.0, "no difference from fp32 at all: the operands were not rounded");
    cr_log_info("worst |bf16 - fp32| / sum |a b| = %.3g", worst);
    free(A), free(B), free(C), free(R);
}

/* ---- the implicit convolutions ---- */

static cv_window window(int H, int W, int C, int KH, int KW, int S, int pt, int pl, int OH, int OW)
{
    return (cv_window){.H = H, .W = W, .C = C, .KH = KH, .KW = KW, .SH = S, .SW = S, .pad_top = pt, .pad_left = pl,
                       .OH = OH, .OW = OW};
}

/* windows inside and across the edges, strides 1 and 2, rectangular, C a few channels or 1 */
static const struct {
    cv_window g;
    int F;
} convs[] = {
    {{.H = 9, .W = 9, .C = 5, .KH = 5, .KW = 5, .SH = 1, .SW = 1, .pad_top = 2, .pad_left = 2, .OH = 9, .OW = 9}, 12},
    {{.H = 8, .W = 7, .C = 3, .KH = 3, .KW = 2, .SH = 1, .SW = 1, .pad_top = 0, .pad_left = 0, .OH = 6, .OW = 6}, 33},
    {{.H = 10, .W = 10, .C = 4, .KH = 3, .KW = 3, .SH = 2, .SW = 2, .pad_top = 1, .pad_left = 1, .OH = 5, .OW = 5}, 8},
    {{.H = 6, .W = 6, .C = 1, .KH = 7, .KW = 7, .SH = 1, .SW = 1, .pad_top = 3, .pad_left = 3, .OH = 6, .OW = 6}, 16},
};

static void check_implicit_convs(void)
{
    for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++)
        for (int nearest = 0; nearest < 2; nearest++) {
            const cv_window *g = &convs[c].g;
            const int F = convs[c].F, B = 3, K = g->KH * g->KW * g->C, M = B * g->OH * g->OW;
            float *x = rand_buf((size_t)B * g->H * g->W * g->C, 50 + c), *w = rand_buf((size_t)K * F, 60 + c);
            float *dy = rand_buf((size_t)M * F, 70 + c), *bias = rand_buf((size_t)F, 80 + c);
            float *col = malloc(sizeof(float) * (size_t)M * K), *out = malloc(sizeof(float) * (size_t)M * F),
                  *ref = malloc(sizeof(float) * (size_t)M * F);
            const cv_epilogue ep = {bias, true, 0.0f};
            cv_im2col(col, x, B, g, nearest);
            cv_conv_bf16(out, x, w, &ep, B, F, g, nearest);
            cv_bgemm_ep(false, false, M, F, K, 1.0f, col, K, w, F, 0.0f, ref, F, &ep);
            cr_assert(memcmp(out, ref, sizeof(float) * (size_t)M * F) == 0, "conv %zu nearest %d: forward", c, nearest);
            float *dw = rand_buf((size_t)K * F, 90 + c), *dwr = malloc(sizeof(float) * (size_t)K * F);
            memcpy(dwr, dw, sizeof(float) * (size_t)K * F);
            cv_conv_bf16_dw(dw, x, dy, B, F, g, nearest);
            cv_bgemm_ep(true, false, K, F, M, 1.0f, col, K, dy, F, 1.0f, dwr, F, NULL);
            cr_assert(memcmp(dw, dwr, sizeof(float) * (size_t)K * F) == 0, "conv %zu nearest %d: weight gradient", c,
                      nearest);
            if (!nearest && cv_conv_bf16_dx_fits(g)) {
                /* the turned kernel over dy padded by hand, through im2col: the same bits */
                const int KH = g->KH, KW = g->KW, C = g->C;
                const cv_window t = window(g->OH, g->OW, F, KH, KW, 1, KH - 1 - g->pad_top, KW - 1 - g->pad_left,
                                           g->H, g->W);
                const int Kt = KH * KW * F, Mt = B * g->H * g->W;
                float *colt = malloc(sizeof(float) * (size_t)Mt * Kt), *wt = malloc(sizeof(float) * (size_t)Kt * C);
                float *dx = malloc(sizeof(float) * (size_t)Mt * C), *dxr = malloc(sizeof(float) * (size_t)Mt * C);
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++)
                        for (int ci = 0; ci < C; ci++)
                            for (int f = 0; f < F; f++)
                                wt[(((size_t)kh * KW + kw) * F + f) * C + ci] =
                                    w[(((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * C + ci) * F + f];
                cv_im2col(colt, dy, B, &t, false);
                cv_bgemm_ep(false, false, Mt, C, Kt, 1.0f, colt, Kt, wt, C, 0.0f, dxr, C, NULL);
                cr_assert_eq(cv_conv_bf16_dx(dx, dy, w, B, F, g), 0);
                cr_assert(memcmp(dx, dxr, sizeof(float) * (size_t)Mt * C) == 0, "conv %zu: input gradient", c);
                /* and it is the input gradient: close to col2im of dy w^T in fp32 */
                float *dcol = malloc(sizeof(float) * (size_t)M * K), *dx32 = malloc(sizeof(float) * (size_t)Mt * C);
                cv_sgemm_naive(false, true, M, K, F, 1.0f, dy, F, w, F, 0.0f, dcol, K);
                cv_col2im(dx32, dcol, B, g, false, true);
                double d = 0.0, n = 0.0;
                for (int i = 0; i < Mt * C; i++) d += (dx[i] - dx32[i]) * (double)(dx[i] - dx32[i]), n += dx32[i] * (double)dx32[i];
                cr_assert(sqrt(d / n) < 1e-2, "conv %zu: input gradient %.3g off fp32's", c, sqrt(d / n));
                free(colt), free(wt), free(dx), free(dxr), free(dcol), free(dx32);
            }
            free(x), free(w), free(dy), free(bias), free(col), free(out), free(ref), free(dw), free(dwr);
        }
}

Test(bf16, implicit_convs_are_im2col_products_bit_for_bit) { check_implicit_convs(); }
Test(bf16, implicit_convs_emulated, .init = force_emulate) { check_implicit_convs(); }

/* ---- a network ---- */

static const char *net_text = "input shape=12,12,3\n"
                              "conv2d filters=16 kernel=3 padding=same activation=relu\n"
                              "conv2d filters=24 kernel=3 activation=relu\n"
                              "conv2d filters=8 kernel=1 activation=relu\n"
                              "conv2d filters=8 kernel=3 stride=2 padding=1 activation=linear\n"
                              "flatten\n"
                              "dense units=20 activation=relu\n"
                              "dense units=4 activation=softmax\n"
                              "compile optimizer=sgd loss=sparse_categorical_crossentropy\n";

static cv_net *make_net(cv_precision p)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, net_text, "bf16.model", &err), 0, "%s", err.msg);
    spec.fit.precision = p;
    cv_net *net = cv_net_create(&spec, 16, 9, &err);
    cv_model_spec_free(&spec);
    cr_assert_not_null(net, "%s", err.msg);
    return net;
}

static void gradients(cv_net *net, const float *x, const int32_t *y, int B)
{
    cv_net_zero_grad(net);
    cv_net_forward(net, x, B, true, 1, 0, NULL);
    cv_net_loss(net, y, NULL, B);
    cv_net_backward(net, y, NULL, B, (double)B);
}

static void check_network(void)
{
    const int B = 16;
    float *x = rand_buf((size_t)B * 12 * 12 * 3, 3);
    int32_t y[16];
    for (int i = 0; i < B; i++) y[i] = i % 4;
    cv_net *f32 = make_net(CV_PRECISION_FP32), *b16 = make_net(CV_PRECISION_BF16);
    cr_assert_eq(cv_net_precision(b16), CV_PRECISION_BF16);
    cr_assert_eq(cv_net_param_count(f32), cv_net_param_count(b16));
    cr_assert(memcmp(cv_net_params(f32), cv_net_params(b16), sizeof(float) * (size_t)cv_net_param_count(f32)) == 0,
              "the same seed gives other initial weights");
    for (int i = 1; i < 8; i++) /* Winograd's fp32 products stay: 4x fewer beat bf16's 2x */
        cr_assert_eq(cv_net_conv_winograd(b16, i), cv_net_conv_winograd(f32, i), "layer %d", i);
    gradients(f32, x, y, B);
    gradients(b16, x, y, B);
    const int64_t n = cv_net_grad_count(f32);
    const float *g32 = cv_net_grads(f32), *g16 = cv_net_grads(b16);
    double top = 0.0, worst = 0.0, diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) top = fmax(top, fabs(g32[i]));
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)g16[i] - g32[i];
        worst = fmax(worst, fabs(d));
        diff += d * d;
        norm += (double)g32[i] * g32[i];
    }
    cr_assert(top > 0.0);
    cr_assert(diff > 0.0, "bf16 gave fp32's gradients exactly: its products did not run");
    /* bf16 keeps 8 bits: 2^-9 per operand, through the products of six layers and the
     * cancellation in sums over the batch (measured: 0.5 % for the dense layers' gradients,
     * 2.5-4 % for the first convs', 3.2 % overall) */
    cr_assert(sqrt(diff / norm) <= 0.06, "bf16 gradients %.3g off fp32's in norm", sqrt(diff / norm));
    cr_assert(worst <= 0.1 * top, "bf16 gradients off by %g of the largest %g", worst, top);
    cr_log_info("%s: gradients %.3g off fp32's in norm; largest difference %.3g of the largest gradient",
                cv_bgemm_path(), sqrt(diff / norm), worst / top);
    /* the same bits again: nothing in a pass depends on the one before it */
    float *keep = malloc(sizeof(float) * (size_t)n);
    memcpy(keep, g16, sizeof(float) * (size_t)n);
    gradients(b16, x, y, B);
    cr_assert(memcmp(keep, cv_net_grads(b16), sizeof(float) * (size_t)n) == 0, "a second pass changed the bits");
    free(keep);
    cv_net_free(f32);
    cv_net_free(b16);
    free(x);
}

Test(bf16, network_gradients_close_to_fp32)
{
    cv_err err;
    if (cv_precision_check(CV_PRECISION_BF16, "--precision bf16", &err)) setenv("CONVOY_BF16", "emulate", 1);
    check_network();
}
Test(bf16, network_gradients_close_to_fp32_emulated, .init = force_emulate) { check_network(); }

static void force_generic(void) { setenv("CONVOY_GEMM", "generic", 1); }

/* the generic kernel has no bf16 instruction under it: refused unless emulation is asked for */
Test(bf16, refused_where_the_cpu_cannot_run_it, .init = force_generic)
{
    cv_err err;
    cr_assert_eq(cv_precision_check(CV_PRECISION_FP32, "--precision fp32", &err), 0);
    cr_assert_eq(cv_precision_check(CV_PRECISION_BF16, "--precision bf16", &err), -1);
    cr_assert(strstr(err.msg, "--precision bf16 needs") && strstr(err.msg, "CONVOY_BF16=emulate"), "%s", err.msg);
    cv_model_spec spec;
    cr_assert_eq(cv_model_parse(&spec, "input shape=4\ndense units=2 activation=softmax\n"
                                       "compile optimizer=sgd loss=sparse_categorical_crossentropy\n"
                                       "fit epochs=1 precision=bf16\n",
                                "p.model", &err), 0, "%s", err.msg);
    cr_assert_eq(spec.fit.precision, CV_PRECISION_BF16);
    cr_assert_null(cv_net_create(&spec, 4, 1, &err));
    cr_assert(strstr(err.msg, "p.model:4: precision=bf16 needs"), "%s", err.msg);
    cv_model_spec_free(&spec);
    setenv("CONVOY_BF16", "emulate", 1);
    cr_assert_eq(cv_precision_check(CV_PRECISION_BF16, "--precision bf16", &err), 0);
}

Test(bf16, model_file_key)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_neq(cv_model_parse(&spec, "input shape=4\ndense units=2 activation=softmax\n"
                                        "compile optimizer=sgd loss=sparse_categorical_crossentropy\n"
                                        "fit precision=fp16\n",
                                 "q.model", &err), 0);
    cr_assert(strstr(err.msg, "q.model:4") && strstr(err.msg, "bf16"), "%s", err.msg);
    cr_assert_eq(cv_precision_parse("bf16"), CV_PRECISION_BF16);
    cr_assert_eq(cv_precision_parse("fp32"), CV_PRECISION_FP32);
    cr_assert_eq(cv_precision_parse("half"), -1);
}
