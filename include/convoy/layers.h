/* Module layers (src/layers/). Owns every layer kind, described once: the kinds' names, their
 * keys in model files, their shape rules, parameter layouts, FLOP counts and model-file lines
 * (cv_layer_kinds[], below) and their forward and backward passes (on the private side,
 * layers/layers-impl.h), plus activations and initialisers.
 * May call: core, kernels.
 * Must not be called by: core, kernels, dist, io (model/, data/ and checkpoint/ call it).
 *
 * Adding a layer kind (the recipe the kinds below follow):
 *   1. one file src/layers/<kind>.c: its forward and backward (layers-impl.h's types), its
 *      shape rule, and `const cv_layer_kind_desc cv_kind_<name> = {...}` filling the fields it
 *      has (a NULL hook means "none": no weights, no window, no workspace ...);
 *   2. one line X(CV_LAYER_<NAME>, <name>) in CV_LAYER_KINDS below: that makes its enum value,
 *      puts its descriptor in cv_layer_kinds[] and its keyword in the parser.
 *   A kind that needs a key no kind has yet also adds it to cv_layer_key below, to
 *   cv_layer_spec, and to the parser's key table (model/parse-keys.c: spelling, value type,
 *   range) and apply_layer (model/parse.c: which field it sets). */
#ifndef CONVOY_LAYERS_H
#define CONVOY_LAYERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "convoy/error.h"
#include "convoy/tensor.h"

/* Every layer kind, in the order of cv_layer_kind: X(enum value, descriptor cv_kind_<name>). */
#define CV_LAYER_KINDS(X)                                                                       \
    X(CV_LAYER_INPUT, input)                                                                    \
    X(CV_LAYER_CONV2D, conv2d)                                                                  \
    X(CV_LAYER_MAXPOOL2D, maxpool2d)                                                            \
    X(CV_LAYER_AVGPOOL2D, avgpool2d)                                                            \
    X(CV_LAYER_MINPOOL2D, minpool2d)                                                            \
    X(CV_LAYER_FLATTEN, flatten)                                                                \
    X(CV_LAYER_DENSE, dense)                                                                    \
    X(CV_LAYER_DROPOUT, dropout)                                                                \
    X(CV_LAYER_ACTIVATION, activation)                                                          \
    X(CV_LAYER_GLOBALAVGPOOL2D, globalavgpool2d)                                                \
    X(CV_LAYER_GLOBALMAXPOOL2D, globalmaxpool2d)                                                \
    X(CV_LAYER_ZEROPAD2D, zeropad2d)                                                            \
    X(CV_LAYER_BATCHNORM, batchnorm)                                                            \
    X(CV_LAYER_RESIDUAL, residual)                                                              \
    X(CV_LAYER_END, end)

#define CV_LAYER_ENUM_(e, name) e,
typedef enum { CV_LAYER_KINDS(CV_LAYER_ENUM_) CV_LAYER_KIND_COUNT } cv_layer_kind;
#undef CV_LAYER_ENUM_

/* The keys a layer line may take (the parser owns their spelling and values). */
typedef enum {
    CV_KEY_SHAPE, CV_KEY_NORMALIZE, CV_KEY_FILTERS, CV_KEY_KERNEL, CV_KEY_STRIDE, CV_KEY_PADDING,
    CV_KEY_PAD_MODE, CV_KEY_ACTIVATION, CV_KEY_ALPHA, CV_KEY_INIT, CV_KEY_USE_BIAS, CV_KEY_TRAINABLE,
    CV_KEY_POOL, CV_KEY_UNITS, CV_KEY_RATE, CV_KEY_BN_MOMENTUM, CV_KEY_BN_EPSILON, CV_KEY_CENTER, CV_KEY_SCALE,
    CV_KEY_SHORTCUT,
    CV_LAYER_KEY_COUNT
} cv_layer_key;
#define CV_KEY(k) (UINT32_C(1) << (k))

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
    int filters;
    int kernel[2];       /* (rows, columns); kernel=3 is 3,3 */
    int stride[2];       /* conv2d and pooling, (rows, columns) */
    bool same;           /* padding=same (TensorFlow's rule) instead of pad */
    int pad[4];          /* numeric padding (conv2d, zeropad2d): top, bottom, left, right; 0 is
                            padding=valid */
    bool pad_nearest;    /* pad_mode=nearest: padded cells repeat the nearest edge value */
    /* pooling: window `pool` (rows, columns), `stride` (defaults to pool) */
    int pool[2];
    /* dense */
    int units;
    /* dropout */
    float rate;
    /* batchnorm (Keras's defaults: momentum 0.99, epsilon 1e-3, center and scale) */
    float momentum, epsilon;
    bool center, scale;  /* learn beta, gamma (else they stay 0 and 1) */
    /* residual ... end: the block's output plus its input through the shortcut */
    bool projection;     /* shortcut=projection (a 1x1 strided conv, the paper's option B) rather
                            than zeropad (strided subsampling and zero channels, option A) */
    int block;           /* end: the index of its residual layer */
    cv_shape skip;       /* end: the block's input shape (filled with the shapes) */
    /* conv2d, dense, activation */
    cv_act act;
    float alpha;         /* leaky_relu negative slope (default 0.2, as keras.activations) */
    cv_init init;        /* kernel initialiser; biases start at zero */
    bool use_bias;       /* default true */
    bool trainable;      /* default true */
} cv_layer_spec;

/* What a kind is, beyond its hooks (cv_layer_kind_desc.flags). */
enum {
    CV_KIND_WEIGHTS = 1 << 0,  /* a kernel and a bias: takes trainable=, counts for fine_tune_last */
    CV_KIND_ACT = 1 << 1,      /* has an activation= of its own (applied after its linear part) */
    CV_KIND_EPILOGUE = 1 << 2, /* its kernels can apply the bias and a ReLU-family activation */
    CV_KIND_TILES = 1 << 3,    /* runs a tile of samples at a time in the spatial trunk */
    CV_KIND_ROWWISE = 1 << 4,  /* rows stay apart, no workspace: inference in blocks of rows */
    CV_KIND_RESHAPE = 1 << 5,  /* its output is its input's memory, reinterpreted (flatten) */
    CV_KIND_POOL = 1 << 6,     /* a pooling window */
    CV_KIND_WINNERS = 1 << 7,  /* keeps each output's winning input (max/min pooling); its backward
                                  can apply the ReLU-family derivative of the layer below */
    CV_KIND_MASK = 1 << 8,     /* keeps B x out floats for its backward (dropout's scales,
                                  residual's shortcut gradient) */
    CV_KIND_BATCH = 1 << 9,    /* training couples the rows: its statistics are the whole batch's,
                                  summed over every rank (batchnorm) */
    CV_KIND_OWN_ACT = 1 << 10, /* its passes apply its activation= and its derivative themselves,
                                  in one pass with their own work (the activation layer), when
                                  the network sets act_fused */
};

/** A sliding window as a spec gives it (cv_layer_kind_desc.window): (rows, columns) each, and
 *  padding top, bottom, left, right unless same (TensorFlow's rule, from the output size). */
typedef struct {
    int k[2], stride[2];
    bool same;
    int pad[4];
} cv_window_spec;

struct cv_layer;     /* the run-time layer, layers/layers-impl.h */
struct cv_fwd_ctx;
struct cv_workspace;

/** Everything about one layer kind. Hooks left NULL mean the kind has no such thing. */
typedef struct {
    cv_layer_kind kind;
    const char *name;                   /* its keyword in model files; checkpoint groups NN_name */
    const char *keras_name, *keras_class; /* summary rows: "conv2d (Conv2D)", "conv2d_1 ..." */
    uint32_t keys, required;            /* CV_KEY()s its line may take, and must */
    uint32_t bare_key;                  /* the CV_KEY() a bare word after the keyword gives
                                           (`activation relu`); 0: none */
    unsigned flags;                     /* CV_KIND_* */
    /** Fills the fields its line left out (0) with their defaults (pooling: pool 2, stride pool). */
    void (*defaults)(cv_layer_spec *l);
    /** l->out from l->in (TensorFlow's rules); errors "FILE:LINE: ...". */
    int (*infer)(cv_layer_spec *l, const char *file, cv_err *err);
    /** The kernel's dimensions in Keras's layout (conv (KH,KW,Cin,Cout), dense (in,out)); returns
     *  the rank. Needs l->in. NULL: no parameters. */
    int (*kernel_dims)(const cv_layer_spec *l, int64_t dims[4]);
    int64_t (*bias_count)(const cv_layer_spec *l);
    /** Whether this layer of the kind has weights (NULL: whenever the kind has CV_KIND_WEIGHTS). */
    bool (*has_weights)(const cv_layer_spec *l);
    /** Names of its kernel and bias in checkpoints; NULL: "kernel", "bias". */
    const char *param_names[2];
    /** Values it keeps that no gradient moves (batchnorm's moving statistics), in n_state equal
     *  parts named state_names[]; NULL: none. */
    int64_t (*state_count)(const cv_layer_spec *l);
    int n_state;
    const char *state_names[2];
    /** Its starting kernel, bias and state (NULL: the kernel by its init=, the bias zero). */
    void (*init)(const cv_layer_spec *l, float *kernel, float *bias, float *state);
    /** Doubles of per-layer scratch its passes keep from forward to backward (batchnorm: the
     *  batch's statistics). */
    int64_t (*scratch)(const cv_layer_spec *l);
    /** A sliding window's size, stride and padding. */
    void (*window)(const cv_layer_spec *l, cv_window_spec *w);
    /** Floating-point operations of its forward pass for one sample. */
    double (*flops)(const struct cv_layer *l);
    /** Floats of shared workspace (im2col) its passes need for B samples. */
    int64_t (*workspace)(const struct cv_layer *l, int B);
    /** Its keys as a model-file line writes them (after the keyword; " key=value" each), so the
     *  line parses back to the same spec. */
    void (*write_keys)(FILE *f, const cv_layer_spec *l);
    /** The linear part, out = f(x); the network applies the activation unless the layer fused it
     *  (see cv_forward_fn in layers-impl.h). NULL for the input. */
    void (*forward)(struct cv_layer *l, const float *x, int B, const struct cv_fwd_ctx *ctx);
    void (*backward)(struct cv_layer *l, const float *x, float *dx, const float *dout, int B,
                     struct cv_workspace *ws);
} cv_layer_kind_desc;

/** The descriptors, indexed by cv_layer_kind. */
extern const cv_layer_kind_desc *const cv_layer_kinds[CV_LAYER_KIND_COUNT];

/** The kind whose keyword is name; CV_LAYER_KIND_COUNT if none. */
cv_layer_kind cv_layer_kind_find(const char *name);

const char *cv_layer_kind_name(cv_layer_kind k);
const char *cv_act_name(cv_act a);
const char *cv_init_name(cv_init i);
const char *cv_norm_name(cv_norm n);

/** Fills spec->out from spec->in; on an impossible shape writes "FILE:LINE: ..." and returns -1. */
int cv_layer_infer_shape(cv_layer_spec *spec, const char *file, cv_err *err);

/** Number of trainable parameters of the layer (kernel + bias); 0 for layers without any. */
int64_t cv_layer_param_count(const cv_layer_spec *spec);
/** Values the layer keeps that are not trained (batchnorm's moving mean and variance). */
int64_t cv_layer_state_count(const cv_layer_spec *spec);
/** The kernel's dimensions (Keras layout) and their rank; 0 for a layer without parameters. */
int cv_layer_kernel_dims(const cv_layer_spec *spec, int64_t dims[4]);
/** Whether the layer takes the whole batch's statistics in training (a batchnorm that learns;
 *  frozen, it runs as in inference). */
bool cv_layer_batch_stats(const cv_layer_spec *spec);
/** Whether the kind has weights (takes trainable=). */
bool cv_layer_has_weights(const cv_layer_spec *spec);
/** The layer's activation: its activation= for kinds that have one, else linear. */
cv_act cv_layer_act(const cv_layer_spec *spec);
/** The layer as one model-file line (keyword and keys, newline) that parses back to it. */
void cv_layer_write_line(FILE *f, const cv_layer_spec *spec);

#endif
