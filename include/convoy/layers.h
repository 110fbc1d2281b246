/* Layer kinds, activations and initialisers, and the per-layer kernels built on them.
 * Every layer is described by a cv_layer_spec (parsed from a model file); the registry in
 * src/layers/ maps each kind to its shape inference, parameter count, forward and backward. */
#ifndef CONVOY_LAYERS_H
#define CONVOY_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/error.h"
#include "convoy/tensor.h"

typedef enum {
    CV_LAYER_INPUT,
    CV_LAYER_CONV2D,
    CV_LAYER_MAXPOOL2D,
    CV_LAYER_AVGPOOL2D,
    CV_LAYER_MINPOOL2D,
    CV_LAYER_FLATTEN,
    CV_LAYER_DENSE,
    CV_LAYER_DROPOUT,
    CV_LAYER_ACTIVATION,
    CV_LAYER_KIND_COUNT
} cv_layer_kind;

typedef enum {
    CV_ACT_LINEAR,
    CV_ACT_RELU,
    CV_ACT_LEAKY_RELU,
    CV_ACT_SIGMOID,
    CV_ACT_TANH,
    CV_ACT_SOFTMAX,
    CV_ACT_COUNT
} cv_act;

typedef enum {
    CV_INIT_GLOROT_UNIFORM, /* Keras default for kernels */
    CV_INIT_GLOROT_NORMAL,
    CV_INIT_HE_NORMAL,
    CV_INIT_HE_UNIFORM,
    CV_INIT_ZEROS,
    CV_INIT_COUNT
} cv_init;

typedef enum {
    CV_NORM_AUTO,        /* scale for uint8 data, none for float data */
    CV_NORM_SCALE,       /* x / 255 */
    CV_NORM_STANDARDIZE, /* (x - mean) / std per feature, statistics from the training data */
    CV_NORM_NONE,
    CV_NORM_COUNT
} cv_norm;

/** One line of a model file that describes a layer. Fields not used by a kind are 0. */
typedef struct {
    cv_layer_kind kind;
    int line;            /* line number in the model file, for error messages */
    cv_shape in, out;    /* filled by cv_model_infer_shapes */
    /* input */
    cv_shape shape;      /* input: declared sample shape */
    cv_norm normalize;
    /* conv2d */
    int filters, kernel, stride;
    bool same;           /* padding=same (TensorFlow rule) instead of valid */
    bool pad_nearest;    /* pad_mode=nearest: padded cells repeat the nearest edge value */
    /* pooling: window `pool`, `stride` (defaults to pool) */
    int pool;
    /* dense */
    int units;
    /* dropout */
    float rate;
    /* conv2d, dense, activation */
    cv_act act;
    float alpha;         /* leaky_relu negative slope (default 0.2, as keras.activations) */
    cv_init init;        /* kernel initialiser; biases start at zero */
    bool use_bias;       /* default true */
    bool trainable;      /* default true */
} cv_layer_spec;

const char *cv_layer_kind_name(cv_layer_kind k);
const char *cv_act_name(cv_act a);
const char *cv_init_name(cv_init i);
const char *cv_norm_name(cv_norm n);

/** Fills spec->out from spec->in; on an impossible shape writes "FILE:LINE: ..." and returns -1. */
int cv_layer_infer_shape(cv_layer_spec *spec, const char *file, cv_err *err);

/** Number of trainable parameters of the layer (kernel + bias); 0 for layers without any. */
int64_t cv_layer_param_count(const cv_layer_spec *spec);

#endif
