/* The per-channel map of a batchnorm (cv_chan_map) on its own and fused into the layers after
 * it: cv_chan_map_rows and cv_chan_map_add_rows against the operations one by one, and the
 * Winograd passes given a map (cv_conv_wino, cv_conv_wino_dw) against the same passes over the
 * mapped input written out: the same bits, with and without the ReLU, leaky or not, the input's
 * padding zeros left zeros (the map's output is what is padded), on every instruction set the
 * CPU runs (CONVOY_GEMM). */
#define _GNU_SOURCE /* setenv */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/kernels.h"
#include "randbuf.h"


/* the map's value at one element, each operation rounded apart (volatile: no contraction) */
static float map1(const cv_chan_map *m, int64_t c, float x)
{
    volatile float ax = m->a[c] * x;
    const float v = ax + m->shift[c];
    return !m->relu || v > 0.0f ? v : m->leak * v;
}

static const float leaks[] = {0.0f, 0.1f};

Test(chan_map, rows_are_the_operations_one_by_one)
{
    enum { N = 37, C = 48 };
    float *x = rand_buf(N * C, 1), *a = rand_buf(C, 2), *shift = rand_buf(C, 3);
    float *y = rand_buf(N * C, 4), *ys = rand_buf(N * C, 5);
    for (int relu = 0; relu < 2; relu++)
        for (int k = 0; k < 2; k++) {
            const cv_chan_map m = {a, shift, relu, leaks[k]};
            cv_chan_map_rows(y, x, N, C, &m, false);
            cv_chan_map_rows(ys, x, N, C, &m, true);
            for (int64_t i = 0; i < N * C; i++) {
                const float want = map1(&m, i % C, x[i]);
                cr_assert_eq(memcmp(&y[i], &want, sizeof want), 0, "relu %d leak %g [%ld]: %.9g vs %.9g", relu,
                             (double)m.leak, (long)i, (double)y[i], (double)want);
            }
            cr_assert_eq(memcmp(y, ys, sizeof(float) * N * C), 0, "relu %d: stream stores change the bits", relu);
        }
    free(x), free(a), free(shift), free(y), free(ys);
}

Test(chan_map, add_rows_are_the_map_then_the_sum_then_the_activation)
{
    enum { N = 29, C = 32 };
    float *x = rand_buf(N * C, 11), *s = rand_buf(N * C, 12), *a = rand_buf(C, 13), *shift = rand_buf(C, 14);
    float *o = rand_buf(N * C, 15), *os = rand_buf(N * C, 16);
    const cv_chan_map m = {a, shift, false, 0.0f};
    for (int act = 0; act < 3; act++) { /* none, ReLU (0 below), leaky 0.2 */
        const bool on = act > 0, zero = act == 1;
        const float leak = act == 2 ? 0.2f : 0.0f;
        cv_chan_map_add_rows(o, x, s, N, C, &m, on, zero, leak, false);
        cv_chan_map_add_rows(os, x, s, N, C, &m, on, zero, leak, true);
        for (int64_t i = 0; i < N * C; i++) {
            const float v = map1(&m, i % C, x[i]) + s[i], w = zero ? 0.0f : leak * v, want = !on || v > 0.0f ? v : w;
            cr_assert_eq(memcmp(&o[i], &want, sizeof want), 0, "act %d [%ld]: %.9g vs %.9g", act, (long)i,
                         (double)o[i], (double)want);
        }
        cr_assert_eq(memcmp(o, os, sizeof(float) * N * C), 0, "act %d: stream stores change the bits", act);
    }
    free(x), free(s), free(a), free(shift), free(o), free(os);
}

/* a 3x3 window over H x W x C, padded by pad on every side */
static cv_window win(int H, int W, int C, int pad)
{
    return (cv_window){.H = H, .W = W, .C = C, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .pad_top = pad, .pad_left = pad,
                       .OH = H + 2 * pad - 2, .OW = W + 2 * pad - 2};
}

static void check_mapped(int B, int H, int W, int C, int F, int pad)
{
    const cv_window g = win(H, W, C, pad);
    cr_assert(cv_conv_wino_fits(&g, F) && cv_conv_wino_maps(&g), "%dx%dx%d -> %d: no Winograd map", H, W, C, F);
    const size_t nx = (size_t)B * H * W * C, ny = (size_t)B * g.OH * g.OW * F, nw = (size_t)9 * C * F;
    float *x = rand_buf(nx, 21), *w = rand_buf(nw, 22), *dy = rand_buf(ny, 23), *a = rand_buf(C, 24);
    float *shift = rand_buf(C, 25), *xm = rand_buf(nx, 26), *o1 = rand_buf(ny, 27), *o2 = rand_buf(ny, 28);
    float *dw1 = calloc(nw, sizeof(float)), *dw2 = calloc(nw, sizeof(float));
    for (int relu = 0; relu < 2; relu++)
        for (int k = 0; k < 2; k++) {
            const cv_chan_map m = {a, shift, relu, leaks[k]};
            cv_chan_map_rows(xm, x, (int64_t)B * H * W, C, &m, false);
            memset(dw1, 0, sizeof(float) * nw), memset(dw2, 0, sizeof(float) * nw);
            cr_assert_eq(cv_conv_wino(o1, x, w, NULL, NULL, B, F, &g, &m), 0);
            cr_assert_eq(cv_conv_wino(o2, xm, w, NULL, NULL, B, F, &g, NULL), 0);
            cr_assert_eq(memcmp(o1, o2, sizeof(float) * ny), 0, "%dx%dx%d -> %d pad %d relu %d leak %g: forward", H,
                         W, C, F, pad, relu, (double)m.leak);
            cr_assert_eq(cv_conv_wino_dw(dw1, x, dy, B, F, &g, &m), 0);
            cr_assert_eq(cv_conv_wino_dw(dw2, xm, dy, B, F, &g, NULL), 0);
            cr_assert_eq(memcmp(dw1, dw2, sizeof(float) * nw), 0, "%dx%dx%d -> %d pad %d relu %d: weight gradient", H,
                         W, C, F, pad, relu);
        }
    free(x), free(w), free(dy), free(a), free(shift), free(xm), free(o1), free(o2), free(dw1), free(dw2);
}

/* 16 channels (their own products), 32 into 64, valid windows over a size no block divides,
 * and a batch of 64 whose output passes 1 MiB (stream stores) */
static void check_all(void)
{
    check_mapped(3, 12, 12, 16, 16, 1);
    check_mapped(2, 9, 7, 32, 64, 0);
    check_mapped(5, 10, 13, 16, 32, 2);
    check_mapped(64, 16, 16, 16, 16, 1);
}

Test(chan_map, winograd_with_a_map_is_winograd_over_the_mapped_input) { check_all(); }
static void force_avx2(void) { setenv("CONVOY_GEMM", "avx2", 1); }
static void force_generic(void) { setenv("CONVOY_GEMM", "generic", 1); }
Test(chan_map, winograd_map_avx2_clone, .init = force_avx2) { check_all(); }
Test(chan_map, winograd_map_generic_clone, .init = force_generic) { check_all(); }

/* a sample whose padded copy passes the kernels' bound: no map, and the passes refuse one
 * (dw then unchanged) */
Test(chan_map, a_sample_past_the_copy_bound_takes_no_map)
{
    const cv_window g = win(100, 100, 16, 1);
    cr_assert(cv_conv_wino_fits(&g, 16));
    cr_assert_not(cv_conv_wino_maps(&g));
    const cv_window small = win(32, 32, 16, 1);
    cr_assert(cv_conv_wino_maps(&small));
    const size_t nx = (size_t)100 * 100 * 16, nw = 9 * 16 * 16;
    float *x = rand_buf(nx, 31), *w = rand_buf(nw, 32), *o = rand_buf(nx, 33), *a = rand_buf(16, 34);
    float *dw = calloc(nw, sizeof(float));
    const cv_chan_map m = {a, a, true, 0.0f};
    cr_assert_eq(cv_conv_wino(o, x, w, NULL, NULL, 1, 16, &g, &m), -1);
    cr_assert_eq(cv_conv_wino_dw(dw, x, o, 1, 16, &g, &m), -1);
    for (size_t i = 0; i < nw; i++) cr_assert_eq(dw[i], 0.0f);
    free(x), free(w), free(o), free(a), free(dw);
}

/* a pool over map(x) against the pool over map(x) written out: values and winners, each kind,
 * channels in and out of whole vectors, overlapping windows; a sample past 512 KiB refused */
Test(chan_map, pooling_a_mapped_input_is_pooling_the_mapped_input)
{
    static const cv_pool_kind kinds[] = {CV_POOL_MAX, CV_POOL_AVG, CV_POOL_MIN};
    static const int chans[] = {32, 13};
    enum { B = 5, H = 9, W = 8 };
    for (int ci = 0; ci < 2; ci++)
        for (int k = 0; k < 3; k++)
            for (int s = 1; s <= 2; s++) {
                const int C = chans[ci];
                const cv_window g = {.H = H, .W = W, .C = C, .KH = 2, .KW = 3, .SH = s, .SW = s,
                                     .OH = (H - 2) / s + 1, .OW = (W - 3) / s + 1};
                const size_t nx = (size_t)B * H * W * C, no = (size_t)B * g.OH * g.OW * C;
                float *x = rand_buf(nx, 51), *a = rand_buf(C, 52), *shift = rand_buf(C, 53), *xm = rand_buf(nx, 54);
                float *o1 = rand_buf(no, 55), *o2 = rand_buf(no, 56);
                int32_t *a1 = calloc(no, sizeof(int32_t)), *a2 = calloc(no, sizeof(int32_t));
                const cv_chan_map m = {a, shift, k != 1, 0.0f};
                cv_chan_map_rows(xm, x, (int64_t)B * H * W, C, &m, false);
                cr_assert(cv_pool_maps(&g));
                cr_assert_eq(cv_pool_forward_mapped(o1, a1, x, B, &g, kinds[k], &m), 0);
                cv_pool_forward(o2, a2, xm, B, &g, kinds[k]);
                cr_assert_eq(memcmp(o1, o2, sizeof(float) * no), 0, "kind %d, %d channels, stride %d: values", k, C, s);
                if (kinds[k] != CV_POOL_AVG)
                    cr_assert_eq(memcmp(a1, a2, sizeof(int32_t) * no), 0, "kind %d, %d channels: winners", k, C);
                free(x), free(a), free(shift), free(xm), free(o1), free(o2), free(a1), free(a2);
            }
    const cv_window big = {.H = 100, .W = 100, .C = 16, .KH = 2, .KW = 2, .SH = 2, .SW = 2, .OH = 50, .OW = 50};
    cr_assert_not(cv_pool_maps(&big));
    const cv_chan_map m = {NULL, NULL, false, 0.0f};
    cr_assert_eq(cv_pool_forward_mapped(NULL, NULL, NULL, 1, &big, CV_POOL_MAX, &m), -1);
}
