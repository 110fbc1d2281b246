/* The input layer: the sample's declared shape and how the data is normalised before it. It has
 * no passes of its own (the network starts at layer 1). */
#include "layers/layers-impl.h"

static int input_infer(cv_layer_spec *l, const char *file, cv_err *err)
{
    (void)file, (void)err;
    l->in = l->out = l->shape;
    return 0;
}

static void input_write(FILE *f, const cv_layer_spec *l)
{
    if (l->shape.rank == 3)
        fprintf(f, " shape=%d,%d,%d", l->shape.d[0], l->shape.d[1], l->shape.d[2]);
    else
        fprintf(f, " shape=%d", l->shape.d[0]);
    if (l->normalize != CV_NORM_AUTO) fprintf(f, " normalize=%s", cv_norm_name(l->normalize));
}

const cv_layer_kind_desc cv_kind_input = {
    .kind = CV_LAYER_INPUT,
    .name = "input",
    .keras_name = "input_layer",
    .keras_class = "InputLayer",
    .keys = CV_KEY(CV_KEY_SHAPE) | CV_KEY(CV_KEY_NORMALIZE),
    .required = CV_KEY(CV_KEY_SHAPE),
    .infer = input_infer,
    .write_keys = input_write,
};
