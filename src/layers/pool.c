/* Pooling: max, average and min over a KHxKW window with a stride (Keras's MaxPooling2D and
 * AveragePooling2D, and min pooling in the same pattern). Max and min keep each output's
 * winning input (the arg buffer) for the backward pass, which scatters the gradient to it. */
#include "layers/layers-impl.h"

cv_pool_kind cv_pool_layer_kind(const cv_layer *l)
{
    return l->spec->kind == CV_LAYER_MAXPOOL2D ? CV_POOL_MAX
         : l->spec->kind == CV_LAYER_MINPOOL2D ? CV_POOL_MIN : CV_POOL_AVG;
}

static void pool_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    cv_chan_map map; /* the batchnorm before it left x unwritten: map(src) is x */
    const float *src = l->in_bn ? cv_bn_mapped_input(l->in_bn, x, &map) : NULL;
    if (src && cv_pool_forward_mapped(l->out, l->arg, src, B, &l->win, cv_pool_layer_kind(l), &map) == 0) return;
    if (src) cv_bn_write_output(l->in_bn);
    cv_pool_forward(l->out, l->arg, x, B, &l->win, cv_pool_layer_kind(l));
}

static void pool_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                          cv_workspace *ws)
{
    (void)x, (void)ws;
    if (dx) cv_pool_backward(dx, dout, l->arg, B, &l->win, cv_pool_layer_kind(l), true, l->in_relu ? l->out : NULL, l->in_leak);
}

/* Keras: the window defaults to 2, the stride to the window */
static void pool_defaults(cv_layer_spec *l)
{
    if (!l->pool[0]) l->pool[0] = l->pool[1] = 2;
    if (!l->stride[0]) l->stride[0] = l->pool[0], l->stride[1] = l->pool[1];
}

static void pool_window(const cv_layer_spec *l, cv_window_spec *w)
{
    *w = (cv_window_spec){.k = {l->pool[0], l->pool[1]},
                          .stride = {l->stride[0] ? l->stride[0] : l->pool[0], l->stride[1] ? l->stride[1] : l->pool[1]}};
}

static int pool_infer(cv_layer_spec *l, const char *file, cv_err *err) { return cv_layer_infer_window(l, false, file, err); }

static void pool_write(FILE *f, const cv_layer_spec *l)
{
    cv_layer_write_pair(f, "pool", l->pool);
    cv_layer_write_pair(f, "stride", l->stride);
}

#define POOL_KIND(e, kname, snake, cls, more)                                                   \
    {.kind = e, .name = kname, .keras_name = snake, .keras_class = cls,                         \
     .keys = CV_KEY(CV_KEY_POOL) | CV_KEY(CV_KEY_STRIDE), .flags = CV_KIND_POOL | CV_KIND_TILES | (more), \
     .defaults = pool_defaults, .infer = pool_infer, .window = pool_window, .write_keys = pool_write, \
     .forward = pool_forward, .backward = pool_backward}

const cv_layer_kind_desc cv_kind_maxpool2d = POOL_KIND(CV_LAYER_MAXPOOL2D, "maxpool2d", "max_pooling2d", "MaxPooling2D",
                                                       CV_KIND_WINNERS);
const cv_layer_kind_desc cv_kind_avgpool2d = POOL_KIND(CV_LAYER_AVGPOOL2D, "avgpool2d", "average_pooling2d",
                                                       "AveragePooling2D", 0);
/* no Keras twin; named in the same pattern */
const cv_layer_kind_desc cv_kind_minpool2d = POOL_KIND(CV_LAYER_MINPOOL2D, "minpool2d", "min_pooling2d", "MinPooling2D",
                                                       CV_KIND_WINNERS);
