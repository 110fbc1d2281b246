/* The per-channel affine map with a ReLU-family activation after it (cv_chan_map): a
 * batchnorm's normalising pass, and the same pass applied by the conv2d after it as it reads
 * its input (cv_conv_wino's map). One body for both, compiled per instruction set, so that the
 * fused and the plain pass give the same bits. */
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"

/* Every operation rounded on its own: no contraction of a x + shift into a fused multiply-add,
 * which GCC would make in some loops and not others (a vector body but not its remainder). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

static inline __attribute__((always_inline)) void map_body(float *restrict y, const float *restrict x, int64_t n,
                                                           int64_t C, const float *restrict a,
                                                           const float *restrict shift, const bool relu, float leak)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float v = a[c] * x[i * C + c] + shift[c];
            y[i * C + c] = !relu || v > 0.0f ? v : leak * v;
        }
}

/* The AVX-512 clones: where stream (the caller's: y on whole lines, C in whole vectors), by
 * stream stores of 16 channels, the loop's operations lane by lane (the same bits); else the
 * loop. */
static inline __attribute__((always_inline)) void map_stream(float *restrict y, const float *restrict x, int64_t n,
                                                             int64_t C, const float *restrict a,
                                                             const float *restrict shift, const bool relu, float leak,
                                                             bool stream)
{
    if (!stream) {
        map_body(y, x, n, C, a, shift, relu, leak);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c += 16) {
            cv_v16 v = CV_LD16(a + c) * CV_LD16(x + i * C + c) + CV_LD16(shift + c);
            if (relu) CV_VEC_LEAKY_RELU(cv_v16, v, leak);
            CV_STREAM_ST16(y + i * C + c, v);
        }
}
#define MAP_PARAMS \
    (float *y, const float *x, int64_t n, int64_t C, const float *a, const float *shift, float leak, bool stream)
#define MAP_ARGS (y, x, n, C, a, shift, leak, stream)
CV_STREAM_CLONES(chan_map_plain, MAP_PARAMS, map_body(y, x, n, C, a, shift, false, leak),
                 map_stream(y, x, n, C, a, shift, false, leak, stream), MAP_ARGS)
CV_STREAM_CLONES(chan_map_relu, MAP_PARAMS, map_body(y, x, n, C, a, shift, true, leak),
                 map_stream(y, x, n, C, a, shift, true, leak, stream), MAP_ARGS)

void cv_chan_map_rows(float *y, const float *x, int64_t n, int64_t C, const cv_chan_map *m, bool stream)
{
    if (m->relu) chan_map_relu_pick()(y, x, n, C, m->a, m->shift, m->leak, stream);
    else chan_map_plain_pick()(y, x, n, C, m->a, m->shift, m->leak, stream);
}

/* o = act(m(x) + s), act a residual end's: v where v > 0, else 0 (zero) or leak v; the end's
 * operations on the batchnorm's values (the same bits as the two passes apart) */
static inline __attribute__((always_inline)) void add_body(float *restrict o, const float *restrict x,
                                                           const float *restrict s, int64_t n, int64_t C,
                                                           const float *restrict a, const float *restrict shift,
                                                           const bool act, const bool zero, float leak)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float y = a[c] * x[i * C + c] + shift[c], v = y + s[i * C + c], w = zero ? 0.0f : leak * v;
            o[i * C + c] = !act || v > 0.0f ? v : w;
        }
}
static inline __attribute__((always_inline)) void add_stream(float *restrict o, const float *restrict x,
                                                             const float *restrict s, int64_t n, int64_t C,
                                                             const float *restrict a, const float *restrict shift,
                                                             const bool act, const bool zero, float leak, bool stream)
{
    if (!stream) {
        add_body(o, x, s, n, C, a, shift, act, zero, leak);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c += 16) {
            cv_v16 v = CV_LD16(a + c) * CV_LD16(x + i * C + c) + CV_LD16(shift + c) + CV_LD16(s + i * C + c);
            if (act && zero) v = (cv_v16)((v > 0.0f) & (cv_i16)v);
            else if (act) CV_VEC_LEAKY_RELU(cv_v16, v, leak);
            CV_STREAM_ST16(o + i * C + c, v);
        }
}
#define ADD_PARAMS                                                                                           \
    (float *o, const float *x, const float *s, int64_t n, int64_t C, const float *a, const float *shift, float leak, \
     bool stream)
#define ADD_ARGS (o, x, s, n, C, a, shift, leak, stream)
CV_STREAM_CLONES(map_add, ADD_PARAMS, add_body(o, x, s, n, C, a, shift, false, false, leak),
                 add_stream(o, x, s, n, C, a, shift, false, false, leak, stream), ADD_ARGS)
CV_STREAM_CLONES(map_add0, ADD_PARAMS, add_body(o, x, s, n, C, a, shift, true, true, leak),
                 add_stream(o, x, s, n, C, a, shift, true, true, leak, stream), ADD_ARGS)
CV_STREAM_CLONES(map_addl, ADD_PARAMS, add_body(o, x, s, n, C, a, shift, true, false, leak),
                 add_stream(o, x, s, n, C, a, shift, true, false, leak, stream), ADD_ARGS)

void cv_chan_map_add_rows(float *o, const float *x, const float *s, int64_t n, int64_t C, const cv_chan_map *m,
                          bool act, bool zero, float leak, bool stream)
{
    const map_add_fn f = !act ? map_add_pick() : zero ? map_add0_pick() : map_addl_pick();
    f(o, x, s, n, C, m->a, m->shift, leak, stream);
}
