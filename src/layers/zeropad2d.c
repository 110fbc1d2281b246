/* zeropad2d (Keras's ZeroPadding2D): rows of zeros above and below an (H,W,C) sample and columns
 * of zeros left and right of it, padding=P (every side), PH,PW (rows, columns) or
 * TOP,BOTTOM,LEFT,RIGHT. Its gradient is the output's gradient with the border cut away. */
#include <string.h>

#include "layers/layers-impl.h"

static int zeropad_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    if (l->in.rank != 3)
        return cv_errf(err, "%s:%d: zeropad2d needs an (H,W,C) input; got %s", file, l->line,
                       cv_shape_str(l->in, sb, sizeof sb));
    if (l->same || !cv_layer_padded(l))
        return cv_errf(err, "%s:%d: zeropad2d takes padding=P, PH,PW or TOP,BOTTOM,LEFT,RIGHT with a side > 0",
                       file, l->line);
    const int64_t h = (int64_t)l->in.d[0] + l->pad[0] + l->pad[1], w = (int64_t)l->in.d[1] + l->pad[2] + l->pad[3];
    if (h > INT32_MAX || w > INT32_MAX)
        return cv_errf(err, "%s:%d: zeropad2d gives %lldx%lld cells, too many", file, l->line, (long long)h,
                       (long long)w);
    l->out = cv_shape_hwc((int)h, (int)w, l->in.d[2]);
    return 0;
}

static void zeropad_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    const cv_layer_spec *s = l->spec;
    const int H = s->in.d[0], W = s->in.d[1], C = s->in.d[2], OW = s->out.d[1];
    const size_t row = (size_t)W * C, orow = (size_t)OW * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *o = l->out + (size_t)b * l->out_size;
        const float *xb = x + (size_t)b * l->in_size;
        memset(o, 0, sizeof *o * orow * s->pad[0]);
        for (int h = 0; h < H; h++) {
            float *r = o + (size_t)(s->pad[0] + h) * orow;
            memset(r, 0, sizeof *r * (size_t)s->pad[2] * C);
            memcpy(r + (size_t)s->pad[2] * C, xb + (size_t)h * row, sizeof *r * row);
            memset(r + (size_t)s->pad[2] * C + row, 0, sizeof *r * (size_t)s->pad[3] * C);
        }
        memset(o + (size_t)(s->pad[0] + H) * orow, 0, sizeof *o * orow * s->pad[1]);
    }
}

static void zeropad_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B, cv_workspace *ws)
{
    (void)x, (void)ws;
    if (!dx) return;
    const cv_layer_spec *s = l->spec;
    const int H = s->in.d[0], W = s->in.d[1], C = s->in.d[2], OW = s->out.d[1];
    const size_t row = (size_t)W * C, orow = (size_t)OW * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            memcpy(dx + (size_t)b * l->in_size + (size_t)h * row,
                   dout + (size_t)b * l->out_size + (size_t)(s->pad[0] + h) * orow + (size_t)s->pad[2] * C,
                   sizeof *dx * row);
}

const cv_layer_kind_desc cv_kind_zeropad2d = {
    .kind = CV_LAYER_ZEROPAD2D,
    .name = "zeropad2d",
    .keras_name = "zero_padding2d",
    .keras_class = "ZeroPadding2D",
    .keys = CV_KEY(CV_KEY_PADDING),
    .required = CV_KEY(CV_KEY_PADDING),
    .flags = CV_KIND_TILES | CV_KIND_ROWWISE,
    .infer = zeropad_infer,
    .write_keys = cv_layer_write_padding,
    .forward = zeropad_forward,
    .backward = zeropad_backward,
};
