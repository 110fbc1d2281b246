/* globalavgpool2d and globalmaxpool2d (Keras's GlobalAveragePooling2D and GlobalMaxPooling2D):
 * each channel of an (H,W,C) sample reduced over all its H x W cells to one value, a (C) vector.
 * The average's gradient spreads evenly; the maximum's goes to the first cell holding the
 * maximum (row-major), found again in the backward pass from the input, so no index is kept. */
#include "layers/layers-impl.h"

static int global_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    if (l->in.rank != 3)
        return cv_errf(err, "%s:%d: %s needs an (H,W,C) input; got %s", file, l->line, cv_layer_kind_name(l->kind),
                       cv_shape_str(l->in, sb, sizeof sb));
    l->out = cv_shape_vec(l->in.d[2]);
    return 0;
}

/* the cells of one sample and channel: x[i * C + c] for i < HW */
static void avg_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    const int64_t C = l->out_size, HW = l->in_size / C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *s = x + (size_t)b * l->in_size;
        float *o = l->out + (size_t)b * C;
        for (int64_t c = 0; c < C; c++) o[c] = 0.0f;
        for (int64_t i = 0; i < HW; i++) /* cell by cell: the same order at any vector width */
            for (int64_t c = 0; c < C; c++) o[c] += s[i * C + c];
        for (int64_t c = 0; c < C; c++) o[c] /= (float)HW;
    }
}

static void avg_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)x, (void)ws;
    if (!dx) return;
    const int64_t C = l->out_size, HW = l->in_size / C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = 0; c < C; c++) dx[(size_t)b * l->in_size + i * C + c] = dout[(size_t)b * C + c] / (float)HW;
}

static void max_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    const int64_t C = l->out_size, HW = l->in_size / C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *s = x + (size_t)b * l->in_size;
        float *o = l->out + (size_t)b * C;
        for (int64_t c = 0; c < C; c++) o[c] = s[c];
        for (int64_t i = 1; i < HW; i++)
            for (int64_t c = 0; c < C; c++) o[c] = s[i * C + c] > o[c] ? s[i * C + c] : o[c];
    }
}

static void max_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)ws;
    if (!dx) return;
    const int64_t C = l->out_size, HW = l->in_size / C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *s = x + (size_t)b * l->in_size;
        float *d = dx + (size_t)b * l->in_size;
        for (int64_t j = 0; j < l->in_size; j++) d[j] = 0.0f;
        for (int64_t c = 0; c < C; c++) {
            int64_t best = 0;
            for (int64_t i = 1; i < HW; i++) best = s[i * C + c] > s[best * C + c] ? i : best;
            d[best * C + c] = dout[(size_t)b * C + c];
        }
    }
}

#define GLOBAL_KIND(e, kname, snake, cls, fwd, bwd)                                                     \
    {.kind = e, .name = kname, .keras_name = snake, .keras_class = cls, .flags = CV_KIND_TILES | CV_KIND_ROWWISE, \
     .infer = global_infer, .forward = fwd, .backward = bwd}

const cv_layer_kind_desc cv_kind_globalavgpool2d = GLOBAL_KIND(CV_LAYER_GLOBALAVGPOOL2D, "globalavgpool2d",
                                                               "global_average_pooling2d", "GlobalAveragePooling2D",
                                                               avg_forward, avg_backward);
const cv_layer_kind_desc cv_kind_globalmaxpool2d = GLOBAL_KIND(CV_LAYER_GLOBALMAXPOOL2D, "globalmaxpool2d",
                                                               "global_max_pooling2d", "GlobalMaxPooling2D",
                                                               max_forward, max_backward);
