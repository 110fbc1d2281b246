/* Keras's spellings in model files (model/parse-impl.h): the Keras words convoy takes for its own
 * (Conv2D, max_pooling2d, GlorotUniform, mean_squared_error, (28,28,1), True), the Keras keys
 * whose one meaning convoy always has, the Keras words convoy lacks with what to write instead,
 * the nearest known word for a typo, and the edits that turn a parsed text into its canonical
 * spelling (spec->text: what checkpoints, base lines and tune's best.model hold). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/words.h"
#include "model/parse-impl.h"

/* ---- values: Keras's other names of convoy's choices ---------------------------------------- */

/* Names that differ from convoy's by more than case and underscores (those match anyway:
 * SGD, RMSprop, HeNormal, BinaryCrossentropy, TopKCategoricalAccuracy, LeakyReLU). */
static const struct {
    key_id key;
    const char *word;
    int choice;
} value_aliases[] = {
    {K_LOSS, "mean_squared_error", CV_LOSS_MSE}, /* also MeanSquaredError */
    {K_LOSS, "mean_absolute_error", CV_LOSS_MAE},
    {K_LOSS, "huber_loss", CV_LOSS_HUBER},
    {K_METRICS, "acc", CV_METRIC_INDEX_ACCURACY},
    {K_METRICS, "mean_squared_error", CV_METRIC_INDEX_MSE},
    {K_METRICS, "mean_absolute_error", CV_METRIC_INDEX_MAE},
    {K_METRICS, "f1_score", CV_METRIC_INDEX_F1}, /* also F1Score */
    {K_ACTIVATION, "None", CV_ACT_LINEAR},       /* Keras's activation=None */
    {K_VERBOSE, "auto", 1},                      /* Keras's default, a progress bar */
};
enum { N_VALUE_ALIASES = sizeof value_aliases / sizeof value_aliases[0] };

int parse_value_alias(key_id k, const char *word)
{
    for (int i = 0; i < N_VALUE_ALIASES; i++)
        if (value_aliases[i].key == k && cv_word_loose_eq(word, value_aliases[i].word)) return value_aliases[i].choice;
    return -1;
}

int parse_value_alias_words(key_id k, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < N_VALUE_ALIASES && n < max; i++)
        if (value_aliases[i].key == k) out[n++] = value_aliases[i].word;
    return n;
}

/* ---- Keras words convoy lacks ---------------------------------------------------------------- */

static const struct {
    int what; /* W_LAYER, W_KEY or the key whose value it would be */
    const char *word, *instead;
} missing[] = {
    {W_LAYER, "ReLU", "`activation relu`"},
    {W_LAYER, "Softmax", "`activation softmax`"},
    {W_LAYER, "LeakyReLU", "`activation leaky_relu alpha=0.3` (0.3 is Keras's LeakyReLU default)"},
    {W_LAYER, "Rescaling", "`input normalize=scale` (x / 255)"},
    {W_LAYER, "Normalization", "`input normalize=standardize` (statistics from the training data)"},
    {W_LAYER, "RandomFlip", "`augment horizontal_flip=true` (or vertical_flip=true)"},
    {W_LAYER, "RandomRotation", "`augment rotation_range=DEGREES`"},
    {W_LAYER, "RandomZoom", "`augment zoom_range=Z`"},
    {W_LAYER, "RandomTranslation", "`augment width_shift_range=S height_shift_range=S`"},
    {W_LAYER, "GaussianNoise", "`augment noise_stddev=SIGMA` (noise on the training inputs)"},
    {W_LAYER, "Conv1D", NULL}, {W_LAYER, "Conv3D", NULL}, {W_LAYER, "Conv2DTranspose", NULL},
    {W_LAYER, "SeparableConv2D", NULL}, {W_LAYER, "DepthwiseConv2D", NULL}, {W_LAYER, "LSTM", NULL},
    {W_LAYER, "GRU", NULL}, {W_LAYER, "SimpleRNN", NULL}, {W_LAYER, "Embedding", NULL}, {W_LAYER, "Reshape", NULL},
    {W_LAYER, "Permute", NULL}, {W_LAYER, "UpSampling2D", NULL}, {W_LAYER, "Cropping2D", NULL},
    {W_LAYER, "Concatenate", NULL}, {W_LAYER, "MaxPooling1D", NULL}, {W_LAYER, "AveragePooling1D", NULL},
    {W_LAYER, "GlobalAveragePooling1D", NULL}, {W_LAYER, "LayerNormalization", NULL},
    {W_LAYER, "SpatialDropout2D", NULL}, {W_LAYER, "GaussianDropout", NULL}, {W_LAYER, "AlphaDropout", NULL},
    {W_LAYER, "PReLU", NULL}, {W_LAYER, "ELU", NULL}, {W_LAYER, "Lambda", NULL},

    {W_KEY, "name", "nothing: convoy names the layers itself (conv2d, conv2d_1, ... as `convoy summary` shows)"},
    {W_KEY, "kernel_regularizer", NULL}, {W_KEY, "bias_regularizer", NULL}, {W_KEY, "activity_regularizer", NULL},
    {W_KEY, "kernel_constraint", NULL}, {W_KEY, "bias_constraint", NULL}, {W_KEY, "beta_initializer", NULL},
    {W_KEY, "gamma_initializer", NULL}, {W_KEY, "moving_mean_initializer", NULL},
    {W_KEY, "moving_variance_initializer", NULL}, {W_KEY, "noise_shape", NULL}, {W_KEY, "dtype", NULL},
    {W_KEY, "validation_data", "`convoy train --val F.h5`"}, {W_KEY, "initial_epoch", "`convoy train --resume F.h5`"},
    {W_KEY, "steps_per_epoch", NULL}, {W_KEY, "callbacks", "fit's callback keys (docs/model-file.md, fit)"},
    {W_KEY, "sample_weight", "a dataset's /w (docs/hdf5.md)"}, {W_KEY, "weight_decay", NULL},
    {W_KEY, "clipnorm", NULL}, {W_KEY, "clipvalue", NULL}, {W_KEY, "global_clipnorm", NULL}, {W_KEY, "amsgrad", NULL},
    {W_KEY, "centered", NULL}, {W_KEY, "label_smoothing", NULL}, {W_KEY, "loss_weights", NULL},

    {K_OPTIMIZER, "Nadam", NULL}, {K_OPTIMIZER, "Adamax", NULL}, {K_OPTIMIZER, "AdamW", NULL},
    {K_OPTIMIZER, "Ftrl", NULL}, {K_OPTIMIZER, "Lion", NULL}, {K_OPTIMIZER, "Adafactor", NULL},
    {K_LOSS, "kl_divergence", NULL}, {K_LOSS, "kld", NULL}, {K_LOSS, "poisson", NULL},
    {K_LOSS, "cosine_similarity", NULL}, {K_LOSS, "hinge", NULL}, {K_LOSS, "squared_hinge", NULL},
    {K_LOSS, "categorical_hinge", NULL}, {K_LOSS, "log_cosh", NULL}, {K_LOSS, "mean_absolute_percentage_error", NULL},
    {K_LOSS, "mape", NULL}, {K_LOSS, "mean_squared_logarithmic_error", NULL}, {K_LOSS, "msle", NULL},
    {K_LOSS, "binary_focal_crossentropy", NULL},
    {K_ACTIVATION, "elu", NULL}, {K_ACTIVATION, "selu", NULL}, {K_ACTIVATION, "gelu", NULL},
    {K_ACTIVATION, "swish", NULL}, {K_ACTIVATION, "silu", NULL}, {K_ACTIVATION, "softplus", NULL},
    {K_ACTIVATION, "softsign", NULL}, {K_ACTIVATION, "exponential", NULL}, {K_ACTIVATION, "hard_sigmoid", NULL},
    {K_ACTIVATION, "relu6", NULL}, {K_ACTIVATION, "mish", NULL}, {K_ACTIVATION, "log_softmax", NULL},
    {K_INIT, "lecun_normal", NULL}, {K_INIT, "lecun_uniform", NULL}, {K_INIT, "ones", NULL},
    {K_INIT, "random_normal", NULL}, {K_INIT, "random_uniform", NULL}, {K_INIT, "truncated_normal", NULL},
    {K_INIT, "orthogonal", NULL}, {K_INIT, "variance_scaling", NULL}, {K_INIT, "constant", NULL},
    {K_INIT, "identity", NULL},
    {K_METRICS, "binary_accuracy", "metrics=accuracy (a 1-output model's is the threshold 0.5)"},
    {K_METRICS, "categorical_accuracy", "metrics=accuracy (the argmax)"},
    {K_METRICS, "sparse_categorical_accuracy", "metrics=accuracy (the argmax)"},
    {K_METRICS, "RootMeanSquaredError", NULL}, {K_METRICS, "MeanIoU", NULL},
};

bool parse_keras_missing(int what, const char *word, const char **keras, const char **instead)
{
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        if (missing[i].what == what && cv_word_loose_eq(word, missing[i].word)) {
            *keras = missing[i].word;
            *instead = missing[i].instead;
            return true;
        }
    return false;
}

/* ---- Keras keys that say what convoy always does ----------------------------------------- */

#define KIND(k) (1u << (k))
#define WINDOWED (KIND(CV_LAYER_CONV2D) | KIND(CV_LAYER_MAXPOOL2D) | KIND(CV_LAYER_AVGPOOL2D) | \
                  KIND(CV_LAYER_GLOBALAVGPOOL2D) | KIND(CV_LAYER_GLOBALMAXPOOL2D) | KIND(CV_LAYER_ZEROPAD2D) | \
                  KIND(CV_LAYER_FLATTEN))
_Static_assert(CV_LAYER_KIND_COUNT <= 32, "a kind mask is 32 bits");
static const struct {
    const char *key;
    unsigned kinds;                /* the layer kinds that take it */
    const char *values[2], *what;  /* the values meaning what convoy does; what else would be */
} neutral[] = {
    {"bias_initializer", KIND(CV_LAYER_CONV2D) | KIND(CV_LAYER_DENSE), {"zeros", NULL},
     "convoy's biases start at zero (only bias_initializer=zeros)"},
    {"data_format", WINDOWED, {"channels_last", NULL}, "convoy's tensors are channels_last (NHWC) only"},
    {"dilation_rate", KIND(CV_LAYER_CONV2D), {"1", "1,1"}, "convoy's conv2d has no dilation (only dilation_rate=1)"},
    {"groups", KIND(CV_LAYER_CONV2D), {"1", NULL}, "convoy's conv2d has no groups (only groups=1)"},
    {"axis", KIND(CV_LAYER_BATCHNORM), {"-1", NULL}, "convoy's batchnorm normalises the last axis (only axis=-1)"},
    {"padding", KIND(CV_LAYER_MAXPOOL2D) | KIND(CV_LAYER_AVGPOOL2D) | KIND(CV_LAYER_MINPOOL2D), {"valid", NULL},
     "convoy's pooling windows are unpadded (only padding=valid; pad with zeropad2d before)"},
    {"keepdims", KIND(CV_LAYER_GLOBALAVGPOOL2D) | KIND(CV_LAYER_GLOBALMAXPOOL2D), {"false", NULL},
     "convoy's global pools give a vector (only keepdims=False)"},
};

int parse_keras_neutral(parser *P, const keyword_desc *kw, const token *tok)
{
    if (kw->role != S_LAYER || !tok->val) return 0;
    for (size_t i = 0; i < sizeof neutral / sizeof neutral[0]; i++) {
        if (strcmp(tok->key, neutral[i].key) != 0 || !(neutral[i].kinds & KIND(kw->kind))) continue;
        char buf[64];
        const char *v = parse_unwrap(tok->val, true, buf, sizeof buf);
        for (int j = 0; v && j < 2; j++)
            if (neutral[i].values[j] && cv_word_loose_eq(v, neutral[i].values[j]))
                return parse_drop_token(P, tok->key, tok->val) ? -1 : 1;
        return parse_fail(P, tok->line, "%s=%s: %s", tok->key, tok->val, neutral[i].what);
    }
    return 0;
}

/* ---- Python around values, suggestions ------------------------------------------------------ */

static bool is_quote(char c) { return c == '\'' || c == '"'; }

const char *parse_unwrap(const char *s, bool list, char *buf, size_t size)
{
    const size_t n = strlen(s);
    if (!list) {
        if (n < 2 || !is_quote(s[0]) || s[n - 1] != s[0]) return s;
        if (n - 1 > size) return NULL;
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        return buf;
    }
    if (!strpbrk(s, "()[]{}'\"")) return s;
    size_t o = 0;
    for (const char *p = s; *p; p++) {
        if (strchr("()[]{}'\"", *p)) continue;
        if (o + 1 >= size) return NULL;
        buf[o++] = *p;
    }
    if (o > 0 && buf[o - 1] == ',') o--; /* (784,): Python's one-element tuple */
    buf[o] = '\0';
    return buf;
}

const char *parse_suggest(const char *word, const char *const *cands, int n, char *buf, size_t size)
{
    const char *near = cv_word_nearest(word, cands, n);
    if (near) snprintf(buf, size, ": did you mean '%s'?", near);
    else buf[0] = '\0';
    return buf;
}

/* ---- the canonical text ------------------------------------------------------------------- */

int64_t parse_offset(const parser *P, const char *p) { return p - P->base; }

int parse_edit(parser *P, int64_t start, int64_t end, const char *repl)
{
    char *copy = strdup(repl);
    if (!copy) return parse_fail(P, 0, "out of memory writing the canonical model text");
    for (int i = 0; i < P->n_edits; i++)
        if (P->edits[i].start == start && P->edits[i].end == end && start != end) {
            free(P->edits[i].repl);
            P->edits[i].repl = copy;
            return 0;
        }
    if (P->n_edits == P->cap_edits) {
        const int cap = P->cap_edits ? 2 * P->cap_edits : 16;
        text_edit *e = realloc(P->edits, (size_t)cap * sizeof *e);
        if (!e) {
            free(copy);
            return parse_fail(P, 0, "out of memory writing the canonical model text");
        }
        P->edits = e, P->cap_edits = cap;
    }
    P->edits[P->n_edits] = (text_edit){start, end, copy, P->edit_seq++};
    P->n_edits++;
    return 0;
}

int parse_drop_token(parser *P, const char *key, const char *val)
{
    const char *text = P->spec->text;
    int64_t start = parse_offset(P, key);
    while (start > 0 && (text[start - 1] == ' ' || text[start - 1] == '\t')) start--;
    const int64_t end = parse_offset(P, val) + (int64_t)strlen(val);
    int kept = 0; /* the token's own edits (nesterov=False: false) go with it */
    for (int i = 0; i < P->n_edits; i++) {
        if (P->edits[i].start >= start && P->edits[i].end <= end && P->edits[i].start < P->edits[i].end)
            free(P->edits[i].repl);
        else
            P->edits[kept++] = P->edits[i];
    }
    P->n_edits = kept;
    return parse_edit(P, start, end, "");
}

static int edit_order(const void *a, const void *b)
{
    const text_edit *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->seq - y->seq;
}

/* Where offset x of the old text lands in the new one: edits ending at or before x move it. */
static int64_t moved(const parser *P, int64_t x)
{
    int64_t d = 0;
    for (int i = 0; i < P->n_edits; i++)
        if (P->edits[i].end <= x) d += (int64_t)strlen(P->edits[i].repl) - (P->edits[i].end - P->edits[i].start);
    return x + d;
}

int parse_canonical_text(parser *P)
{
    cv_model_spec *spec = P->spec;
    if (!P->n_edits) return 0;
    qsort(P->edits, (size_t)P->n_edits, sizeof *P->edits, edit_order);
    const int64_t len = (int64_t)strlen(spec->text);
    size_t size = (size_t)len + 1;
    for (int i = 0; i < P->n_edits; i++) {
        const text_edit *e = &P->edits[i];
        if (e->start < (i ? P->edits[i - 1].end : 0) || e->end > len)
            return parse_fail(P, 0, "internal error: overlapping edits of the model text");
        size += strlen(e->repl);
    }
    char *out = cv_malloc(size, "canonical model text", P->err);
    if (!out) return -1;
    size_t o = 0;
    int64_t at = 0;
    for (int i = 0; i < P->n_edits; i++) {
        const text_edit *e = &P->edits[i];
        memcpy(out + o, spec->text + at, (size_t)(e->start - at));
        o += (size_t)(e->start - at);
        memcpy(out + o, e->repl, strlen(e->repl));
        o += strlen(e->repl);
        at = e->end;
    }
    memcpy(out + o, spec->text + at, (size_t)(len - at) + 1);
    for (int h = 0; h < spec->n_hp; h++) {
        cv_hp *hp = &spec->hp[h];
        const int64_t end = moved(P, hp->off + hp->len);
        hp->off = moved(P, hp->off);
        hp->len = end - hp->off;
    }
    free(spec->text);
    spec->text = out;
    return 0;
}

void parse_edits_free(parser *P)
{
    for (int i = 0; i < P->n_edits; i++) free(P->edits[i].repl);
    free(P->edits);
    P->edits = NULL;
    P->n_edits = P->cap_edits = 0;
}

/* Keras's SGD(momentum=m, nesterov=n) is convoy's momentum optimizer in its classic form (or
 * nesterov), with Keras's default m = 0: `optimizer=sgd momentum=0.9` is written out as
 * `optimizer=momentum variant=classic momentum=0.9`. */
int parse_keras_sgd(parser *P, value *v)
{
    value *opt = &v[K_OPTIMIZER], *nest = &v[K_NESTEROV];
    if (!opt->line || opt->choice != CV_OPT_SGD || (!v[K_MOMENTUM].line && !nest->line) ||
        strncmp(opt->raw, "hp.", 3) == 0)
        return 0;
    opt->choice = CV_OPT_MOMENTUM;
    const int64_t at = parse_offset(P, opt->raw), end = at + (int64_t)strlen(opt->raw);
    char more[64] = "";
    if (!v[K_VARIANT].line && !(nest->line && nest->b)) {
        v[K_VARIANT] = (value){.line = opt->line, .choice = CV_MOMENTUM_CLASSIC};
        snprintf(more, sizeof more, " variant=classic");
    }
    if (nest->line && !nest->b) { /* Keras's nesterov=False: the classic form, said once */
        if (parse_drop_token(P, nest->key_raw, nest->raw)) return -1;
        nest->line = 0;
    }
    if (!v[K_MOMENTUM].line) {
        v[K_MOMENTUM] = (value){.line = opt->line, .f = 0.0};
        snprintf(more + strlen(more), sizeof more - strlen(more), " momentum=0");
    }
    if (parse_edit(P, at, end, "momentum")) return -1;
    return more[0] ? parse_edit(P, end, end, more) : 0;
}
