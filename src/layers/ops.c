/* What the kinds' passes share: a kernel's epilogue (bias and fused activation), the bias
 * gradient, and the identity's passes. Layouts: x (B, in), out (B, out), NHWC. */
#include <stdlib.h>
#include <string.h>

#include "layers/layers-impl.h"

cv_epilogue cv_layer_epilogue(const cv_layer *l)
{
    const bool relu = l->act_fused && l->spec->act != CV_ACT_LINEAR;
    return (cv_epilogue){l->b, relu, relu && l->spec->act == CV_ACT_LEAKY_RELU ? l->spec->alpha : 0.0f};
}

/* Rows are cut into fixed chunks summed in parallel (contiguous, vectorised) and the chunk sums
 * are added in order: the result does not depend on the thread count. */
void cv_bias_grad(float *db, const float *dy, int64_t rows, int F)
{
    enum { ROWS = 512 };
    if (!db) return;
    const int64_t chunks = (rows + ROWS - 1) / ROWS;
    float *part = cv_scratch(CV_SCRATCH_BIAS_GRAD, sizeof(float) * (size_t)(chunks * F));
    if (!part) { /* no memory for partial sums: the serial loop needs none */
        for (int64_t r = 0; r < rows; r++)
            for (int f = 0; f < F; f++) db[f] += dy[r * F + f];
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        float *restrict p = part + c * F;
        for (int f = 0; f < F; f++) p[f] = 0.0f;
        const int64_t end = (c + 1) * ROWS < rows ? (c + 1) * ROWS : rows;
        for (int64_t r = c * ROWS; r < end; r++)
            for (int f = 0; f < F; f++) p[f] += dy[r * F + f];
    }
    for (int f = 0; f < F; f++) { /* the chunk sums in order, in double */
        double sum = 0.0;
        for (int64_t c = 0; c < chunks; c++) sum += part[c * F + f];
        db[f] += (float)sum;
    }
}

/* flatten and activation: the linear part is the identity (NHWC memory is already (h,w,c)) */
void cv_identity_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    if (l->out != x) /* a flatten's output is its input's buffer (cv_net_reserve) */
        memcpy(l->out, x, sizeof(float) * (size_t)B * l->out_size);
}

void cv_identity_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)x, (void)ws;
    if (dx) memcpy(dx, dout, sizeof(float) * (size_t)B * l->out_size);
}
