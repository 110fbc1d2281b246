/* dropout: inverted dropout, each unit's coin a hash of (seed, epoch, global sample index,
 * layer, unit), so the same units drop at any rank count and any batch composition. */
#include <string.h>

#include "convoy/rng.h"
#include "kernels/isa.h"
#include "layers/layers-impl.h"

/* One sample's units: the coin of unit i is a hash of key and i, kept units scaled by keep.
 * Integer hashing, an exact conversion and one product: the same bits at any vector width. */
static inline __attribute__((always_inline)) void dropout_row_body(float *restrict out, float *restrict mask,
                                                                   const float *restrict x, int64_t n, uint64_t key,
                                                                   float rate, float keep)
{
    for (int64_t i = 0; i < n; i++) {
        mask[i] = cv_unit(cv_mix64(key ^ (uint64_t)i)) >= rate ? keep : 0.0f;
        out[i] = x[i] * mask[i];
    }
}

CV_ISA_CLONES(dropout_row, (float *out, float *mask, const float *x, int64_t n, uint64_t key, float rate, float keep),
              dropout_row_body, (out, mask, x, n, key, rate, keep))

/* Inverted dropout: kept units are scaled by 1/(1-rate) during training so that inference is
 * the identity. Each unit's coin is a hash of (seed, epoch, global sample index, layer,
 * unit): the same at any rank count and any batch composition. */
static void dropout_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    const float rate = l->spec->rate;
    const int64_t n = l->out_size;
    if (!ctx->training || rate == 0.0f) {
        memcpy(l->out, x, sizeof(float) * (size_t)B * n);
        for (int64_t i = 0; i < (int64_t)B * n; i++) l->mask[i] = 1.0f;
        return;
    }
    const float keep_scale = 1.0f / (1.0f - rate);
    const dropout_row_fn row = dropout_row_pick();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const uint64_t key = cv_key(ctx->seed, ((uint64_t)CV_STREAM_DROPOUT << 32) | (uint64_t)l->index,
                                    (uint64_t)ctx->epoch, (uint64_t)ctx->sample_ids[b]);
        const size_t o = (size_t)b * n;
        row(l->out + o, l->mask + o, x + o, n, key, rate, keep_scale);
    }
}

static void dropout_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                             cv_workspace *ws)
{
    (void)x, (void)ws;
    if (!dx) return;
    const int64_t n = (int64_t)B * l->out_size;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] = dout[i] * l->mask[i];
}

static void dropout_write(FILE *f, const cv_layer_spec *l) { fprintf(f, " rate=%.9g", (double)l->rate); }

const cv_layer_kind_desc cv_kind_dropout = {
    .kind = CV_LAYER_DROPOUT,
    .name = "dropout",
    .keras_name = "dropout",
    .keras_class = "Dropout",
    .keys = CV_KEY(CV_KEY_RATE),
    .required = CV_KEY(CV_KEY_RATE),
    .flags = CV_KIND_TILES | CV_KIND_ROWWISE | CV_KIND_MASK,
    .infer = cv_layer_infer_same,
    .write_keys = dropout_write,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
