/* The Winograd weight gradient's block groups (conv-winograd.c, dw_groups): where a product's
 * sums are small (16 or 32 channels) and the batch has 1024 blocks or more, the blocks are
 * summed in groups, each into sums of its own, added in group order. Against the direct sums
 * in double (to the float rounding of the terms' size), and the same bits on 1, 2, 3 and 5
 * threads. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/kernels.h"
#include "randbuf.h"


/* 3x3, stride 1, same padding over B x H x H x C into F filters */
static void check(int B, int H, int C, int F)
{
    const cv_window g = {.H = H, .W = H, .C = C, .KH = 3, .KW = 3, .SH = 1, .SW = 1, .pad_top = 1, .pad_left = 1,
                         .OH = H, .OW = H};
    cr_assert(cv_conv_wino_fits(&g, F));
    const size_t nx = (size_t)B * H * H * C, ny = (size_t)B * H * H * F, nw = (size_t)9 * C * F;
    float *x = rand_buf(nx, 41), *dy = rand_buf(ny, 42), *dw = calloc(nw, sizeof(float));
    double *ref = calloc(nw, sizeof(double)), *mag = calloc(nw, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < H; oy++)
            for (int ox = 0; ox < H; ox++)
                for (int k = 0; k < 9; k++) {
                    const int iy = oy + k / 3 - 1, ix = ox + k % 3 - 1;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= H) continue;
                    const float *xp = x + (((size_t)b * H + iy) * H + ix) * C;
                    const float *dp = dy + (((size_t)b * H + oy) * H + ox) * F;
                    for (int c = 0; c < C; c++)
                        for (int f = 0; f < F; f++) {
                            const double t = (double)xp[c] * dp[f];
                            ref[(size_t)k * C * F + (size_t)c * F + f] += t;
                            mag[(size_t)k * C * F + (size_t)c * F + f] += fabs(t);
                        }
                }
    cr_assert_eq(cv_conv_wino_dw(dw, x, dy, B, F, &g, NULL), 0);
    for (size_t i = 0; i < nw; i++)
        cr_assert_leq(fabs(dw[i] - ref[i]), 1e-5 * mag[i] + 1e-6, "%dx%dx%dx%d -> %d: dw[%zu] %.9g vs %.9g", B, H, H, C,
                      F, i, (double)dw[i], ref[i]);
#ifdef _OPENMP
    static const int threads[] = {1, 2, 3, 5};
    float *dwt = malloc(sizeof(float) * nw);
    for (int t = 0; t < 4; t++) {
        omp_set_num_threads(threads[t]);
        memset(dwt, 0, sizeof(float) * nw);
        cr_assert_eq(cv_conv_wino_dw(dwt, x, dy, B, F, &g, NULL), 0);
        cr_assert_eq(memcmp(dw, dwt, sizeof(float) * nw), 0, "%dx%dx%dx%d -> %d: %d threads change the bits", B, H, H,
                     C, F, threads[t]);
    }
    omp_set_num_threads(1);
    free(dwt);
#endif
    free(x), free(dy), free(dw), free(ref), free(mag);
}

/* 64 x 32x32: 4096 blocks (8 groups); 17 x 32x32: 1088 (2 groups); 19 x 16x16 x 32: 304 (none) */
Test(wino_groups, grouped_weight_gradient_is_the_direct_sum_on_any_thread_count)
{
    check(64, 32, 16, 16);
    check(17, 32, 32, 32);
    check(19, 16, 32, 16);
}
