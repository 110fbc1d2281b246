/* Module model (src/model/). Owns the model file (the parser, hyperparameter sites, base lines, the callbacks' configuration in callbacks-config.h), the network built from it (cv_net: planning, memory, the forward and backward passes, sample tiles, the loss and metrics of a pass), its summary and its pictures (visualize.h).
 * May call: core, kernels, io, layers, loss, optim, data.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data.
 *
 * Models: the parsed model file (cv_model_spec) and the network built from it (cv_net), whose
 * parameters, gradients and activations each live in one contiguous allocation. */
#ifndef CONVOY_MODEL_H
#define CONVOY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convoy/augment.h"
#include "convoy/callbacks-config.h"
#include "convoy/error.h"
#include "convoy/layers.h"
#include "convoy/loss.h"
#include "convoy/optim.h"

#define CV_MAX_LAYERS 256 /* a ResNet-56 for CIFAR is 222 lines */
#define CV_MAX_CLASS_WEIGHTS 1024 /* classes a class_weight= map may name (0..1023) */

/** The products' precision (--precision): fp32, or bf16, in which dense, conv2d and residual
 *  projection layers multiply by cv_bgemm_ep (operands rounded to bfloat16, sums in fp32; a
 *  conv2d pointwise or through im2col, save the direct ones for short receptive fields and
 *  Winograd's, which stay fp32: 4x fewer products beat bf16's 2x, and CONVOY_WINOGRAD=0 makes
 *  them bf16 too); everything else (weights, activations, batchnorm, pooling, losses, the
 *  optimizer) stays fp32.
 *  cv_precision_check says whether this CPU runs it. */
typedef enum { CV_PRECISION_FP32, CV_PRECISION_BF16 } cv_precision;

typedef struct {
    int epochs;             /* default 1 */
    int batch_size;         /* default 32; 0 means "all" (full-batch gradient descent) */
    float validation_split; /* default 0: fraction held out, chosen by a seeded shuffle */
    uint64_t seed;          /* default 42 */
    bool shuffle;           /* default true */
    /* Keras's fit(verbose=): 0 is silent (as --quiet), 1 (the default) the progress display, 2 one
     * plain line per epoch even on a terminal; --quiet and --verbose win over it */
    bool silent, plain;
    /* class_weight=C:W,C:W,... (classes not listed weigh 1) or class_weight=balanced (class c
     * weighs n / (K n_c) over the training rows, as Keras's and scikit-learn's "balanced") */
    bool class_weight_balanced;
    int n_class_weight;     /* entries of class_weight[] given (0: none) */
    float class_weight[CV_MAX_CLASS_WEIGHTS];
    int class_weight_line;  /* 0: no class_weight key */
    cv_precision precision; /* precision=fp32 (default) or bf16 (--precision wins over it) */
    int precision_line;     /* 0: no precision key */
} cv_fit_config;

/** A hyperparameter site: `KEY=hp.int(lo,hi,step=s)`, `hp.float(lo,hi[,log])`,
 *  `hp.choice(a,b,...)` or `hp.bool()`, each with an optional `name=N` (docs/model-file.md). The parsed
 *  spec holds the default value (Keras's: lo, the first choice, false); `convoy tune` samples
 *  the others and re-parses the text with the values written in. */
typedef enum { CV_HP_INT, CV_HP_FLOAT, CV_HP_CHOICE, CV_HP_BOOL } cv_hp_kind;
#define CV_MAX_HP 32
#define CV_HP_MAX_CHOICES 16
#define CV_HP_TEXT 32
typedef struct {
    cv_hp_kind kind;
    char name[CV_HP_TEXT];   /* name=, else the key (KEY_LINE when the key repeats) */
    char key[CV_HP_TEXT];    /* the key it stands for */
    int line;
    int64_t off, len;        /* the expression's bytes in spec->text */
    double lo, hi, step;     /* int: step >= 1; float: lo <= hi */
    bool log;                /* float: uniform in log space */
    int n_choices;
    char choices[CV_HP_MAX_CHOICES][CV_HP_TEXT];
} cv_hp;

/** Parses one `hp.KIND(...)` expression (no key checks; the model parser validates the values
 *  against the key). Returns 0, or -1 with a message (no file/line) in err. */
int cv_hp_parse(const char *expr, cv_hp *hp, cv_err *err);
/** The text of value v: an int or float value itself, a choice's index, a bool's 0/1. */
void cv_hp_value_text(const cv_hp *hp, double v, char *buf, size_t size);
/** The expression in canonical form: "hp.int(32,128,step=32)". */
void cv_hp_describe(const cv_hp *hp, char *buf, size_t size);
/** Transfer learning: `base checkpoint=F upto=N [trainable=B]` (docs/model-file.md "Transfer learning: base").
 *  Layers 1..upto of the model come from F's model, with F's weights. */
typedef struct {
    char checkpoint[1024];  /* resolved path of F; "" when the model has no base line */
    int upto;               /* 0 without a base */
    int line, last_line;    /* where the base statement is in the model text */
    uint64_t trainable;     /* bit i: base layer i's trainable flag before fine-tuning */
    int fine_tune_last;     /* K of `fit fine_tune_last=K` or --fine-tune-last (0: none) */
    int fine_tune_line;     /* line of the fit key, 0 if it came from elsewhere */
} cv_base_config;

/** A parsed model file. `text` is the whole file (saved in checkpoints). */
typedef struct {
    char file[256];         /* name used in error messages */
    char *text;             /* owned copy of the source text */
    int n_layers;           /* layers[0] is always the input layer */
    cv_layer_spec layers[CV_MAX_LAYERS];
    cv_optim_config optim;
    int optim_line;         /* line of `compile`, 0 if absent */
    cv_loss_config loss;
    cv_fit_config fit;
    cv_callbacks_config callbacks; /* fit keys for schedules, early stopping, plateau, save-best */
    cv_augment_config augment; /* the augment line's values (defaults when absent) */
    bool has_augment;       /* an `augment` line was present: training batches are augmented */
    int augment_line;
    int n_hp;               /* hyperparameter sites, in file order (their default values parsed) */
    cv_hp hp[CV_MAX_HP];
    cv_base_config base;
} cv_model_spec;

/** How a parse reads the model that a `base checkpoint=F` line names: read(path, depth, saved,
 *  err) parses the model saved in checkpoint path into *saved, depth being the number of bases
 *  around the one being read (1 for a model file's own base), so a checkpoint naming itself
 *  stops. The model module reads no checkpoints: the checkpoint module supplies this reader
 *  (cv_checkpoint_base_reader), and cv_model_parse below is the parse with it. */
typedef struct {
    int (*read)(const char *path, int depth, cv_model_spec *saved, cv_err *err);
    int depth; /* bases around this parse: 0 for a model file */
} cv_base_reader;

/** Parses model text. `file` names it in messages ("FILE:LINE: what is wrong"). Also infers
 *  every layer's shape and checks the loss fits the output layer. A `base` line is read with
 *  rd (NULL: refused). */
int cv_model_parse_with(cv_model_spec *spec, const char *text, const char *file, const cv_base_reader *rd,
                        cv_err *err);
/** Reads and parses a model file. */
int cv_model_load_with(cv_model_spec *spec, const char *path, const cv_base_reader *rd, cv_err *err);
/** Reads the augmentation of a model file, or of an augment file (a file whose statements are
 *  only `augment` lines; then only spec->augment, has_augment, augment_line and fit defaults are
 *  set). Fails when there is no augment line. */
int cv_augment_file_load_with(cv_model_spec *spec, const char *path, const cv_base_reader *rd, cv_err *err);
/* The three above with the checkpoint module's base reader: what programs call. They are
 * defined by the checkpoint module (src/checkpoint/model-file.c), which owns that reader. */
int cv_model_parse(cv_model_spec *spec, const char *text, const char *file, cv_err *err);
int cv_model_load(cv_model_spec *spec, const char *path, cv_err *err);
int cv_augment_file_load(cv_model_spec *spec, const char *path, cv_err *err);
void cv_model_spec_free(cv_model_spec *spec);

/** Makes layers 1..upto the layers of the model saved in checkpoint `path` (with their
 *  specs; weights are loaded with the network, see cv_checkpoint_load_base), read by rd.
 *  upto 0 takes them all; trainable 0/1 sets every base layer's flag, -1 keeps the saved
 *  flags. Messages carry no FILE:LINE (the parser adds it). */
int cv_model_base_take(cv_model_spec *spec, const char *path, int upto, int trainable, const cv_base_reader *rd,
                       cv_err *err);
/** Makes the last k base layers with weights trainable (and the other base layers as the base
 *  line left them): the second stage of fine-tuning. Messages carry no FILE:LINE. */
int cv_model_fine_tune(cv_model_spec *spec, int k, cv_err *err);
/** The model text to save in a checkpoint: spec->text, or with a base line, the text with
 *  that line replaced by the base's layers written out (trainable flags included), so the
 *  checkpoint stands alone. Returns a malloc'd string, or NULL on error. */
char *cv_model_saved_text(const cv_model_spec *spec, cv_err *err);

/** Total parameters of the model (trainable and frozen). */
int64_t cv_model_param_count(const cv_model_spec *spec);
/** Writes the Keras-style summary table (layer, output shape, params, total) to f. */
void cv_model_summary(const cv_model_spec *spec, void *file /* FILE* */);

/* ---------------------------------------------------------------------------------------- */

typedef struct cv_net cv_net;

/** Where a layer's parameters live in the flat buffers. */
typedef struct {
    int64_t kernel_off, kernel_n; /* kernel: conv (KH,KW,Cin,Cout), dense (in,out) */
    int64_t bias_off, bias_n;
    int64_t state_off, state_n;   /* untrained values (batchnorm's moving statistics), after every
                                     layer's kernel and bias */
} cv_param_view;

/** Builds the network for batches of up to max_batch samples. Weights are initialised from
 *  `seed` (deterministic). */
cv_net *cv_net_create(const cv_model_spec *spec, int max_batch, uint64_t seed, cv_err *err);
void cv_net_free(cv_net *net);
/** Re-plans activation memory for a larger batch. */
int cv_net_reserve(cv_net *net, int max_batch, cv_err *err);

const cv_model_spec *cv_net_spec(const cv_net *net);
int64_t cv_net_param_count(const cv_net *net);
float *cv_net_params(cv_net *net);
/** The gradient buffer: cv_net_grad_count floats, one per trainable parameter. Trainable
 *  layers' parameters are the prefix [0, cv_net_grad_count) of cv_net_params, in layer order,
 *  so gradient j belongs to parameter j; frozen layers' parameters follow them. */
float *cv_net_grads(cv_net *net);
int64_t cv_net_grad_count(const cv_net *net);
/** Whether layer i has weights that learn. */
bool cv_net_layer_trainable(const cv_net *net, int layer);
/** Offsets (in the gradient buffer, ascending) of the trainable layers' gradients, for
 *  gradient buckets; offsets needs CV_MAX_LAYERS entries. Returns their number. */
int cv_net_grad_layers(const cv_net *net, int64_t *offsets);
cv_param_view cv_net_param_view(const cv_net *net, int layer);

/** Forward pass of B samples x (B, input shape) already normalised. `training` enables
 *  dropout, whose masks derive from (seed, epoch, sample_ids[i]). Returns the output
 *  (B, outputs): probabilities for softmax/sigmoid outputs. */
const float *cv_net_forward(cv_net *net, const float *x, int B, bool training,
                            uint64_t seed, int64_t epoch, const int64_t *sample_ids);
/** Output of layer (1 .. layers-1) in the last forward pass, activation applied: (B, its out
 *  shape), NHWC for image layers. NULL for a ReLU-family layer feeding a max/min pool when
 *  the pass went through the spatial layers in tiles (B > cv_net_tile): its output lived in
 *  cache only. A flatten's output is its input's memory (for a first flatten: the x given to
 *  cv_net_forward). */
const float *cv_net_layer_output(const cv_net *net, int layer);
/** Samples per tile, at most: the spatial layers before the first dense layer run a tile of
 *  samples at a time through all of them, so a tile's activations stay in cache, and threads
 *  share out the tiles (0: the model has no such layers). Chosen from the layer sizes (about
 *  1 MiB per tile); a batch is cut into a power-of-two number of equal tiles (64 samples with
 *  at most 5 per tile: 16 tiles of 4). The environment variable CONVOY_TILE or cv_net_set_tile
 *  (samples <= 0: no tiling) set it exactly instead. Results depend on the tile size only
 *  through the float rounding of the weight-gradient sums, and never on the thread count. */
int cv_net_tile(const cv_net *net);
int cv_net_set_tile(cv_net *net, int samples, cv_err *err);
/** Samples per tile a batch of B samples runs in; 0 when it runs whole (no tiling). */
int cv_net_tile_for(const cv_net *net, int B);
/** Whether a tiled pass runs layer (a conv2d) and the max/min pool after it as one kernel
 *  (cv_conv_pool): the same outputs, bit for bit, without the conv output ever being written.
 *  CONVOY_FUSE=0 in the environment turns this off. */
bool cv_net_fused_with_next(const cv_net *net, int layer);
/** Which of layer's (a conv2d's) products run by Winograd F(4x4,3x3) (cv_conv_wino and its
 *  gradients): sums equal to the direct ones up to rounding; 0 for none or another layer.
 *  CONVOY_WINOGRAD=0 turns them off. */
enum { CV_WINO_FORWARD = 1, CV_WINO_WEIGHT_GRAD = 2, CV_WINO_INPUT_GRAD = 4 };
int cv_net_conv_winograd(const cv_net *net, int layer);
/** Output width (number of classes / targets). */
int cv_net_outputs(const cv_net *net);
/** (cv_net_create sets the spec's fit precision) */
void cv_net_set_precision(cv_net *net, cv_precision p);
cv_precision cv_net_precision(const cv_net *net);
/** "fp32" or "bf16"; cv_precision_parse reads one (-1: neither). */
const char *cv_precision_name(cv_precision p);
int cv_precision_parse(const char *s);
/** 0 when this CPU runs p natively, or (bf16 without AVX512_BF16) when CONVOY_BF16=emulate
 *  asks for the emulation; else -1 with the reason in err, which starts with where (what asked
 *  for it: "--precision bf16", "m.model:12: precision=bf16"). */
int cv_precision_check(cv_precision p, const char *where, cv_err *err);

/** Loss of the last forward pass against its targets, and the gradient of
 *  (sum of per-sample losses) / `norm` added into the gradient buffer by backprop.
 *  labels (B) for sparse/categorical/binary with integer labels, or targets (B, outputs).
 *  Returns the SUM of per-sample losses over the B samples (divide by N for the mean). */
double cv_net_loss(cv_net *net, const int32_t *labels, const float *targets, int B);
void cv_net_backward(cv_net *net, const int32_t *labels, const float *targets, int B, double norm);
/** The same with sample weights w (B; NULL: all 1): the sum of w_i * loss_i, and its gradient
 *  divided by norm (class_weight, the dataset's /w). */
double cv_net_loss_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B);
void cv_net_backward_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B, double norm);
/** Called by cv_net_backward after each layer with parameters, with that layer's offset in
 *  the gradient buffer: every gradient at or after it is final for this pass (used to start
 *  gradient communication while backward goes on). NULL removes it. */
typedef void (*cv_grad_hook)(void *ctx, int64_t offset);
void cv_net_set_grad_hook(cv_net *net, cv_grad_hook hook, void *ctx);
/** --reproducible with batch statistics (batchnorm): the next passes' B rows are cut into n of
 *  the step's leaves, leaf j (the step's leaf first + j) being rows [rows[j], rows[j + 1]).
 *  Each batchnorm sums its statistics leaf by leaf, each leaf's in sample order, and sum puts
 *  this pass's leaves' sums (n x len doubles) among every rank's and returns in out (len) the
 *  sums over the step's leaves in leaf order: bits that do not depend on which rank computed
 *  which leaf. rows must stay valid while set; sum NULL ends it (n = 0 with a sum: this rank
 *  has no leaf in the step, cv_net_batch_idle joins the sums). */
typedef int (*cv_net_leaf_sum_fn)(void *ctx, const double *sums, int first, int n, int64_t len, double *out);
void cv_net_set_leaves(cv_net *net, int n, const int *rows, int first, cv_net_leaf_sum_fn sum, void *ctx);
/** cv_net_backward_w over the leaves cv_net_set_leaves set, each leaf's parameter gradients
 *  added into its own grads[j] (cv_net_grad_count floats) instead of the net's: layer by layer,
 *  each leaf's rows on their own, so each leaf's gradient is the one a pass over that leaf alone
 *  gives. The pass must not have gone in tiles (cv_net_set_tile(net, 0)). */
void cv_net_backward_leaves(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B,
                            double norm, float *const *grads);
/** For inference only (eval, predict): every batchnorm right after a conv2d or dense with a
 *  linear activation is folded into that layer's kernel and bias (copies: the parameters stay),
 *  and passes its input on: the same outputs to rounding, one pass over the data fewer.
 *  The net must not be trained after it. CONVOY_FOLD=0 in the environment turns it off.
 *  Returns the number folded, -1 on error. */
int cv_net_fold_batchnorm(cv_net *net, cv_err *err);
/** Sums n doubles over every rank in place; nonzero on failure. */
typedef int (*cv_net_sum_fn)(void *ctx, double *v, int64_t n);
/** How the layers whose training statistics are the whole batch's (batchnorm) sum theirs over
 *  the ranks: once per such layer in each training forward pass and once in each backward pass.
 *  NULL (the default): this process holds the whole batch. */
void cv_net_set_batch_sum(cv_net *net, cv_net_sum_fn sum, void *ctx);
/** Layers that take batch statistics in training (trainable batchnorm layers). A rank with no
 *  samples in a step must still take its part in their sums: cv_net_batch_idle. */
int cv_net_batch_layers(const cv_net *net);
/** The batch layers' passes over no rows (a rank without samples this step, or whose batch failed):
 *  their sums join the other ranks', and their moving statistics move as theirs do. Returns 0
 *  (a failed sum is reported through its function's context). */
int cv_net_batch_idle(cv_net *net);

/** The first layer (1-based index in the model file's list) whose weights or whose output in
 *  the last forward pass hold a NaN or infinity; 0 when everything is finite. */
int cv_net_first_nonfinite(const cv_net *net);

/** Zeroes the gradient buffer. */
void cv_net_zero_grad(cv_net *net);

/** Per-layer timing for benchmarks: when set, each forward/backward pass adds the seconds
 *  spent in layer i (activation included) to fwd[i] / bwd[i] (CV_MAX_LAYERS entries each).
 *  NULL turns it off (the default; no clock is read then). */
void cv_net_profile(cv_net *net, double *fwd, double *bwd);
/** Floating-point operations of layer i for one sample: forward, and backward (the weight
 *  gradient of a trainable layer, plus the input gradient of every layer above the first
 *  trainable one; nothing below it). */
void cv_net_layer_flops(const cv_net *net, int layer, double *fwd, double *bwd);
/** Number of layers (including the input at 0). */
int cv_net_layers(const cv_net *net);

/** Metric sums of forward passes: the loss, accuracy count, abs err, sq err, and the counts the
 *  compiled metrics need (kept only when compiled: see cv_metrics_classes and cv_metrics_bins).
 *  Everything but loss, abs_err and sq_err is an integer count, the same summed in any order. */
typedef struct {
    double loss, correct, abs_err, sq_err;
    int64_t count;     /* samples */
    int64_t values;    /* output values (for mae/mse denominators) */
    int64_t top_k;     /* samples whose true class is among the CV_TOP_K highest outputs */
    /* precision, recall, f1: per class c (a binary model: [0], the positive class) the samples
     * predicted c that are c, predicted c that are not, c but predicted otherwise */
    int64_t tp[CV_METRIC_MAX_CLASSES], fp[CV_METRIC_MAX_CLASSES], fn[CV_METRIC_MAX_CLASSES];
    /* auc: the positive and negative samples whose predicted probability p has bin
     * min(floor(p * CV_AUC_BINS), CV_AUC_BINS - 1) (p below 0 or NaN: bin 0) */
    int64_t pos[CV_AUC_BINS], neg[CV_AUC_BINS];
} cv_metrics;
void cv_net_metrics(cv_net *net, const int32_t *labels, const float *targets, int B, cv_metrics *m);
/** The same with the loss weighted by w (NULL: unweighted); the other metrics stay unweighted, as
 *  Keras's. */
void cv_net_metrics_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B, cv_metrics *m);
/** cv_net_metrics_w of the last pass's rows [row0, row0 + B) (labels, targets and w are theirs). */
void cv_net_metrics_rows(cv_net *net, int row0, const int32_t *labels, const float *targets, const float *w, int B,
                         cv_metrics *m);

/** The per-class entries of tp, fp, fn that spec's metrics keep: the outputs K, 1 for a 1-output
 *  (binary) model; 0 without precision, recall and f1 (or beyond CV_METRIC_MAX_CLASSES, which
 *  the parser refuses). */
int cv_metrics_classes(const cv_model_spec *spec);
/** The AUC bins spec's metrics keep: CV_AUC_BINS with metrics=auc on a 1-output model, else 0. */
int cv_metrics_bins(const cv_model_spec *spec);
/** Metric sums as doubles, for sums over ranks and checkpoints: the six sums first (loss,
 *  correct, abs_err, sq_err, count, values), then the counts spec's metrics keep (top_k when
 *  compiled, tp, fp, fn of each of cv_metrics_classes, pos and neg of each of cv_metrics_bins),
 *  CV_METRIC_SIX + cv_metrics_counts(spec) in all. Counts are exact as doubles below 2^53. */
#define CV_METRIC_SIX 6
int64_t cv_metrics_counts(const cv_model_spec *spec);
void cv_metrics_pack(const cv_model_spec *spec, const cv_metrics *m, double *v);
/** Adds to m the six sums six[0..5] (as cv_metrics_pack writes them), and the counts counts[]
 *  (as cv_metrics_pack writes them after the six). */
void cv_metrics_add_six(const double *six, cv_metrics *m);
void cv_metrics_add_counts(const cv_model_spec *spec, const double *counts, cv_metrics *m);

#endif
