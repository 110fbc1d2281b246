/* dense: out = x W + b on flat samples, W (in, units) as Keras keeps it, by cv_sgemm (or
 * cv_bgemm_ep under --precision bf16) with the bias and a ReLU-family activation in its
 * epilogue. */
#include "layers/layers-impl.h"

static void dense_forward(cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx)
{
    (void)ctx;
    const int I = (int)l->in_size, U = (int)l->out_size;
    const cv_epilogue ep = cv_layer_epilogue(l);
    cv_layer_gemm(l, false, false, B, U, I, x, I, l->w, U, 0.0f, l->out, U, &ep);
}

static void dense_backward(cv_layer *l, const float *x, float *dx, const float *dout, int B,
                           cv_workspace *ws)
{
    (void)ws;
    const int I = (int)l->in_size, U = (int)l->out_size;
    cv_bias_grad(l->db, dout, B, U);
    if (l->dw) cv_layer_gemm(l, true, false, I, U, B, x, I, dout, U, 1.0f, l->dw, U, NULL);
    if (dx) cv_layer_gemm(l, false, true, B, I, U, dout, U, l->w, U, 0.0f, dx, I, NULL);
}

static int dense_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    char sb[64];
    if (l->in.rank != 1)
        return cv_errf(err, "%s:%d: dense needs a flat input; add `flatten` before line %d "
                       "(its input is %s)", file, l->line, l->line, cv_shape_str(l->in, sb, sizeof sb));
    if (l->units <= 0) return cv_errf(err, "%s:%d: dense needs units > 0", file, l->line);
    l->out = cv_shape_vec(l->units);
    return 0;
}

static int dense_kernel_dims(const cv_layer_spec *l, int64_t d[4])
{
    d[0] = cv_shape_size(l->in);
    d[1] = l->units;
    return 2;
}

static int64_t dense_bias_count(const cv_layer_spec *l) { return l->use_bias ? l->units : 0; }

static double dense_flops(const cv_layer *l) { return 2.0 * (double)l->in_size * (double)l->out_size; }

static void dense_write(FILE *f, const cv_layer_spec *l)
{
    fprintf(f, " units=%d", l->units);
    cv_layer_write_weighted(f, l);
}

const cv_layer_kind_desc cv_kind_dense = {
    .kind = CV_LAYER_DENSE,
    .name = "dense",
    .keras_name = "dense",
    .keras_class = "Dense",
    .keys = CV_KEY(CV_KEY_UNITS) | CV_LAYER_WEIGHTED_KEYS,
    .required = CV_KEY(CV_KEY_UNITS),
    .flags = CV_KIND_WEIGHTS | CV_KIND_ACT | CV_KIND_EPILOGUE | CV_KIND_ROWWISE,
    .infer = dense_infer,
    .kernel_dims = dense_kernel_dims,
    .bias_count = dense_bias_count,
    .flops = dense_flops,
    .write_keys = dense_write,
    .forward = dense_forward,
    .backward = dense_backward,
};
