/* The model-file parser: text -> cv_model_spec (grammar in DESIGN §3). It is strict on purpose:
 * an unknown keyword or key, a bad number, an out-of-range value or an impossible shape is an
 * error naming FILE:LINE, because a silently ignored typo costs a whole training run. */
#include "convoy/model.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys: every key of every statement, with its value type and valid range ------------ */

typedef enum {
    K_SHAPE, K_NORMALIZE, K_FILTERS, K_KERNEL, K_STRIDE, K_PADDING, K_PAD_MODE, K_ACTIVATION,
    K_ALPHA, K_INIT, K_USE_BIAS, K_TRAINABLE, K_POOL, K_UNITS, K_RATE,
    K_OPTIMIZER, K_LR, K_LOSS, K_METRICS, K_MOMENTUM, K_VARIANT, K_NESTEROV, K_RHO, K_BETA1,
    K_BETA2, K_EPSILON, K_INIT_ACC, K_DELTA,
    K_EPOCHS, K_BATCH_SIZE, K_VAL_SPLIT, K_SEED, K_SHUFFLE,
    K_SCHEDULE, K_DECAY_RATE, K_DECAY_STEPS, K_DROP_EVERY, K_COSINE_ALPHA, K_WARMUP, K_MONITOR,
    K_ES_PATIENCE, K_MIN_DELTA, K_RESTORE_BEST, K_PLATEAU_PATIENCE, K_PLATEAU_FACTOR,
    K_PLATEAU_MIN_DELTA, K_PLATEAU_COOLDOWN, K_MIN_LR, K_SAVE_BEST, K_STOP_ON_NAN,
    K_ROTATION, K_WIDTH_SHIFT, K_HEIGHT_SHIFT, K_SHEAR, K_ZOOM, K_HFLIP, K_VFLIP, K_BRIGHTNESS,
    K_NOISE, K_FILL_MODE, K_CVAL,
    K_CHECKPOINT, K_UPTO, K_FINE_TUNE_LAST,
    K_COUNT
} key_id;

typedef enum {
    V_INT,     /* an int (no fraction, fits in int) */
    V_SEED,    /* a 64-bit integer (seeds, step counts) */
    V_BATCH,   /* an int, or `all` (stored as 0) */
    V_FLOAT,   /* a finite number */
    V_BOOL,    /* true | false */
    V_CHOICE,  /* one name of a list */
    V_CHOICES, /* comma list of names of a list, stored as bits */
    V_SHAPE,   /* H,W,C or D, positive ints */
    V_KERNEL,  /* K or K,K */
    V_PAIR,    /* lo,hi */
    V_SPAN,    /* a number, or lo,hi */
    V_PATH,    /* a file name */
} value_type;

typedef enum { R_ANY, R_POS, R_NONNEG, R_UNIT, R_OPEN_UNIT } value_range;
static const char *const range_text[] = {"", "> 0", ">= 0", "in [0, 1)", "in (0, 1)"};

/* Names of a V_CHOICE/V_CHOICES list by index; the enums' own name functions where they exist. */
typedef const char *(*choice_fn)(int);
static const char *act_choice(int i) { return cv_act_name((cv_act)i); }
static const char *init_choice(int i) { return cv_init_name((cv_init)i); }
static const char *norm_choice(int i) { return cv_norm_name((cv_norm)i); }
static const char *optim_choice(int i) { return cv_optim_name((cv_optim_kind)i); }
static const char *loss_choice(int i) { return cv_loss_name((cv_loss_kind)i); }
static const char *padding_choice(int i) { return i ? "same" : "valid"; }
static const char *pad_mode_choice(int i) { return i ? "nearest" : "zero"; }
/* indexed by cv_momentum_variant */
static const char *variant_choice(int i)
{
    return (const char *[]){"ewa", "classic", "nesterov"}[i];
}
/* bit i is 1 << i: CV_METRIC_ACCURACY, CV_METRIC_MAE, CV_METRIC_MSE */
static const char *metric_choice(int i) { return (const char *[]){"accuracy", "mae", "mse"}[i]; }
static const char *sched_choice(int i) { return cv_sched_name((cv_sched_kind)i); }
/* i % 4 is the metric: 0 the loss, else the CV_METRIC_* bit 1 << (i % 4 - 1) */
static const char *const monitor_names[] = {"loss",     "accuracy",     "mae",     "mse",
                                            "val_loss", "val_accuracy", "val_mae", "val_mse"};
static const char *monitor_choice(int i) { return monitor_names[i]; }
static const char *fill_choice(int i)
{
    return (const char *[]){"nearest", "constant", "reflect", "wrap"}[i];
}

#define OPT(k) (1u << (k))
typedef struct {
    const char *name;
    const char *alias;  /* a second spelling, or NULL */
    value_type type;
    value_range range;
    choice_fn choice;   /* V_CHOICE, V_CHOICES */
    int n_choices;
    unsigned optims;    /* compile keys: OPT() of the optimizers they tune; 0 = any */
} key_desc;

#define KEY(n, t, r) {.name = n, .type = t, .range = r}
#define CHOICE(n, fn, count) {.name = n, .type = V_CHOICE, .choice = fn, .n_choices = count}
#define OPTIM_KEY(n, t, r, opts) {.name = n, .type = t, .range = r, .optims = (opts)}
static const key_desc keys[K_COUNT] = {
    [K_SHAPE] = KEY("shape", V_SHAPE, R_POS),
    [K_NORMALIZE] = CHOICE("normalize", norm_choice, CV_NORM_COUNT),
    [K_FILTERS] = KEY("filters", V_INT, R_POS),
    [K_KERNEL] = KEY("kernel", V_KERNEL, R_POS),
    [K_STRIDE] = KEY("stride", V_INT, R_POS),
    [K_PADDING] = CHOICE("padding", padding_choice, 2),
    [K_PAD_MODE] = CHOICE("pad_mode", pad_mode_choice, 2),
    [K_ACTIVATION] = CHOICE("activation", act_choice, CV_ACT_COUNT),
    [K_ALPHA] = KEY("alpha", V_FLOAT, R_NONNEG),
    [K_INIT] = CHOICE("init", init_choice, CV_INIT_COUNT),
    [K_USE_BIAS] = KEY("use_bias", V_BOOL, R_ANY),
    [K_TRAINABLE] = KEY("trainable", V_BOOL, R_ANY),
    [K_POOL] = KEY("pool", V_INT, R_POS),
    [K_UNITS] = KEY("units", V_INT, R_POS),
    [K_RATE] = KEY("rate", V_FLOAT, R_UNIT),

    [K_OPTIMIZER] = CHOICE("optimizer", optim_choice, CV_OPT_COUNT),
    [K_LR] = {.name = "learning_rate", .alias = "lr", .type = V_FLOAT, .range = R_NONNEG},
    [K_LOSS] = CHOICE("loss", loss_choice, CV_LOSS_COUNT),
    [K_METRICS] = {.name = "metrics", .type = V_CHOICES, .choice = metric_choice, .n_choices = 3},
    [K_MOMENTUM] = OPTIM_KEY("momentum", V_FLOAT, R_UNIT, OPT(CV_OPT_MOMENTUM)),
    [K_VARIANT] = {.name = "variant", .type = V_CHOICE, .choice = variant_choice, .n_choices = 3,
                   .optims = OPT(CV_OPT_MOMENTUM)},
    [K_NESTEROV] = OPTIM_KEY("nesterov", V_BOOL, R_ANY, OPT(CV_OPT_MOMENTUM)),
    [K_RHO] = OPTIM_KEY("rho", V_FLOAT, R_UNIT, OPT(CV_OPT_RMSPROP) | OPT(CV_OPT_ADADELTA)),
    [K_BETA1] = OPTIM_KEY("beta_1", V_FLOAT, R_UNIT, OPT(CV_OPT_ADAM)),
    [K_BETA2] = OPTIM_KEY("beta_2", V_FLOAT, R_UNIT, OPT(CV_OPT_ADAM)),
    [K_EPSILON] = OPTIM_KEY("epsilon", V_FLOAT, R_POS,
                            OPT(CV_OPT_ADAGRAD) | OPT(CV_OPT_RMSPROP) | OPT(CV_OPT_ADADELTA) |
                                OPT(CV_OPT_ADAM)),
    [K_INIT_ACC] = OPTIM_KEY("initial_accumulator_value", V_FLOAT, R_NONNEG, OPT(CV_OPT_ADAGRAD)),
    [K_DELTA] = KEY("delta", V_FLOAT, R_POS),

    [K_EPOCHS] = KEY("epochs", V_INT, R_POS),
    [K_BATCH_SIZE] = KEY("batch_size", V_BATCH, R_POS),
    [K_VAL_SPLIT] = KEY("validation_split", V_FLOAT, R_UNIT),
    [K_SEED] = KEY("seed", V_SEED, R_NONNEG),
    [K_SHUFFLE] = KEY("shuffle", V_BOOL, R_ANY),
    [K_SCHEDULE] = CHOICE("lr_schedule", sched_choice, CV_SCHED_COUNT),
    [K_DECAY_RATE] = KEY("decay_rate", V_FLOAT, R_POS),
    [K_DECAY_STEPS] = KEY("decay_steps", V_SEED, R_POS),
    [K_DROP_EVERY] = KEY("drop_every", V_INT, R_POS),
    [K_COSINE_ALPHA] = KEY("cosine_alpha", V_FLOAT, R_UNIT),
    [K_WARMUP] = KEY("warmup_steps", V_SEED, R_NONNEG),
    [K_MONITOR] = CHOICE("monitor", monitor_choice, 8),
    [K_ES_PATIENCE] = KEY("early_stopping_patience", V_INT, R_NONNEG),
    [K_MIN_DELTA] = KEY("min_delta", V_FLOAT, R_NONNEG),
    [K_RESTORE_BEST] = KEY("restore_best_weights", V_BOOL, R_ANY),
    [K_PLATEAU_PATIENCE] = KEY("reduce_lr_patience", V_INT, R_NONNEG),
    [K_PLATEAU_FACTOR] = KEY("reduce_lr_factor", V_FLOAT, R_OPEN_UNIT),
    [K_PLATEAU_MIN_DELTA] = KEY("reduce_lr_min_delta", V_FLOAT, R_NONNEG),
    [K_PLATEAU_COOLDOWN] = KEY("reduce_lr_cooldown", V_INT, R_NONNEG),
    [K_MIN_LR] = KEY("min_lr", V_FLOAT, R_NONNEG),
    [K_SAVE_BEST] = KEY("save_best_only", V_BOOL, R_ANY),
    [K_STOP_ON_NAN] = KEY("stop_on_nan", V_BOOL, R_ANY),

    [K_ROTATION] = KEY("rotation_range", V_FLOAT, R_NONNEG),
    [K_WIDTH_SHIFT] = KEY("width_shift_range", V_FLOAT, R_NONNEG),
    [K_HEIGHT_SHIFT] = KEY("height_shift_range", V_FLOAT, R_NONNEG),
    [K_SHEAR] = KEY("shear_range", V_FLOAT, R_NONNEG),
    [K_ZOOM] = KEY("zoom_range", V_SPAN, R_NONNEG),
    [K_HFLIP] = KEY("horizontal_flip", V_BOOL, R_ANY),
    [K_VFLIP] = KEY("vertical_flip", V_BOOL, R_ANY),
    [K_BRIGHTNESS] = KEY("brightness_range", V_PAIR, R_NONNEG),
    [K_NOISE] = KEY("noise_stddev", V_FLOAT, R_NONNEG),
    [K_FILL_MODE] = CHOICE("fill_mode", fill_choice, 4),
    [K_CVAL] = KEY("cval", V_FLOAT, R_ANY),

    [K_CHECKPOINT] = KEY("checkpoint", V_PATH, R_ANY),
    [K_UPTO] = KEY("upto", V_INT, R_POS),
    [K_FINE_TUNE_LAST] = KEY("fine_tune_last", V_INT, R_NONNEG),
};

/* ---- statements: which keys each keyword takes ------------------------------------------ */

typedef enum { S_LAYER, S_COMPILE, S_FIT, S_AUGMENT, S_BASE, S_ROLE_COUNT } stmt_role;

/* A set of keys, one bit per key_id (unsigned __int128: a GNU C extension of GCC and Clang). */
__extension__ typedef unsigned __int128 key_set;
#define B(k) ((key_set)1 << (k))
_Static_assert(K_COUNT <= 128, "a keyword's keys are a 128-bit set");
#define WEIGHTED (B(K_ACTIVATION) | B(K_ALPHA) | B(K_INIT) | B(K_USE_BIAS) | B(K_TRAINABLE))
#define POOLING (B(K_POOL) | B(K_STRIDE))
#define CALLBACKS                                                                               \
    (B(K_SCHEDULE) | B(K_DECAY_RATE) | B(K_DECAY_STEPS) | B(K_DROP_EVERY) | B(K_COSINE_ALPHA) |  \
     B(K_WARMUP) | B(K_MONITOR) | B(K_ES_PATIENCE) | B(K_MIN_DELTA) | B(K_RESTORE_BEST) |         \
     B(K_PLATEAU_PATIENCE) | B(K_PLATEAU_FACTOR) | B(K_PLATEAU_MIN_DELTA) |                      \
     B(K_PLATEAU_COOLDOWN) | B(K_MIN_LR) | B(K_SAVE_BEST) | B(K_STOP_ON_NAN))

typedef struct {
    const char *name;
    stmt_role role;
    cv_layer_kind kind; /* S_LAYER only */
    key_set allowed, required;
} keyword_desc;

static const keyword_desc keywords[] = {
    {"input", S_LAYER, CV_LAYER_INPUT, B(K_SHAPE) | B(K_NORMALIZE), B(K_SHAPE)},
    {"conv2d", S_LAYER, CV_LAYER_CONV2D,
     B(K_FILTERS) | B(K_KERNEL) | B(K_STRIDE) | B(K_PADDING) | B(K_PAD_MODE) | WEIGHTED,
     B(K_FILTERS) | B(K_KERNEL)},
    {"maxpool2d", S_LAYER, CV_LAYER_MAXPOOL2D, POOLING, 0},
    {"avgpool2d", S_LAYER, CV_LAYER_AVGPOOL2D, POOLING, 0},
    {"minpool2d", S_LAYER, CV_LAYER_MINPOOL2D, POOLING, 0},
    {"flatten", S_LAYER, CV_LAYER_FLATTEN, 0, 0},
    {"dense", S_LAYER, CV_LAYER_DENSE, B(K_UNITS) | WEIGHTED, B(K_UNITS)},
    {"dropout", S_LAYER, CV_LAYER_DROPOUT, B(K_RATE), B(K_RATE)},
    {"activation", S_LAYER, CV_LAYER_ACTIVATION, B(K_ACTIVATION) | B(K_ALPHA), B(K_ACTIVATION)},
    /* loss is required too, but its absence gets the model-level message (see finish) */
    {"compile", S_COMPILE, 0,
     B(K_OPTIMIZER) | B(K_LR) | B(K_LOSS) | B(K_METRICS) | B(K_MOMENTUM) | B(K_VARIANT) |
         B(K_NESTEROV) | B(K_RHO) | B(K_BETA1) | B(K_BETA2) | B(K_EPSILON) | B(K_INIT_ACC) |
         B(K_DELTA),
     0},
    {"fit", S_FIT, 0,
     B(K_EPOCHS) | B(K_BATCH_SIZE) | B(K_VAL_SPLIT) | B(K_SEED) | B(K_SHUFFLE) | CALLBACKS |
         B(K_FINE_TUNE_LAST),
     0},
    {"augment", S_AUGMENT, 0,
     B(K_ROTATION) | B(K_WIDTH_SHIFT) | B(K_HEIGHT_SHIFT) | B(K_SHEAR) | B(K_ZOOM) | B(K_HFLIP) |
         B(K_VFLIP) | B(K_BRIGHTNESS) | B(K_NOISE) | B(K_FILL_MODE) | B(K_CVAL),
     0},
    {"base", S_BASE, 0, B(K_CHECKPOINT) | B(K_UPTO) | B(K_TRAINABLE), B(K_CHECKPOINT)},
};
#define N_KEYWORDS ((int)(sizeof keywords / sizeof keywords[0]))

/* ---- parser state ------------------------------------------------------------------------ */

#define MAX_TOKENS 32

typedef struct {
    char *key, *val; /* val is NULL for a bare word */
    int line;
} token;

typedef struct {
    char *word;
    int line;
    int n;
    token tok[MAX_TOKENS];
} stmt;

/* A parsed value; line 0 means the key was absent. */
typedef struct {
    int line;
    long long i;
    double f, f2; /* a number, or lo,hi */
    bool b;
    const char *s; /* V_PATH: points into the parse buffer */
    int choice;
    unsigned bits;
    cv_shape shape;
} value;

typedef struct {
    cv_model_spec *spec;
    const char *file;
    cv_err *err;
    int first_line;            /* line of the first statement, 0 before it */
    const char *first_word;
    const char *base;          /* the text being parsed: hyperparameters record offsets into it */
    int role_line[S_ROLE_COUNT]; /* where each once-only statement was seen */
    bool has_loss;
    int monitor_line;          /* line of fit's monitor=, checked against compile's metrics */
    bool augment_only;         /* an augment file (cv_augment_file_load): only `augment` lines */
} parser;

static int fail(const parser *P, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const parser *P, int line, const char *fmt, ...)
{
    char msg[CV_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) return cv_errf(P->err, "%s:%d: %s", P->file, line, msg);
    return cv_errf(P->err, "%s: %s", P->file, msg);
}

/* ---- values -------------------------------------------------------------------------------- */

/* Whole-string conversions: "3x", "", "3.5" (for ints), "nan" and overflow are rejected. */
static bool to_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *s && !*end && errno == 0;
}

static bool to_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *s && !*end && errno == 0 && isfinite(*out);
}

/* Splits a comma list into at most `max` parts of < 64 chars; returns the count or -1. */
static int split(const char *s, char part[][64], int max)
{
    int n = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (n == max || len == 0 || len >= 64) return -1;
        memcpy(part[n], s, len);
        part[n++][len] = '\0';
        if (!comma) return n;
        s = comma + 1;
    }
}

static bool in_range(double x, value_range r)
{
    switch (r) {
    case R_POS: return x > 0;
    case R_NONNEG: return x >= 0;
    case R_UNIT: return x >= 0 && x < 1;
    case R_OPEN_UNIT: return x > 0 && x < 1;
    default: return true;
    }
}

static int bad_number(const parser *P, int line, const key_desc *k, const char *s)
{
    double d;
    if (k->type != V_FLOAT && k->type != V_PAIR && k->type != V_SPAN && to_double(s, &d))
        return fail(P, line, "bad number '%s' for %s: expected an integer", s, k->name);
    return fail(P, line, "bad number '%s' for %s", s, k->name);
}

/* One integer of an int-valued key (also each part of shape and kernel). */
static int parse_int(const parser *P, int line, const key_desc *k, const char *s, long long max,
                     long long *out)
{
    if (!to_ll(s, out)) return bad_number(P, line, k, s);
    if (!in_range((double)*out, k->range))
        return fail(P, line, "%s must be %s, got %s", k->name, range_text[k->range], s);
    if (*out > max) return fail(P, line, "%s=%s is too large (at most %lld)", k->name, s, max);
    return 0;
}

static int parse_float(const parser *P, int line, const key_desc *k, const char *s, double *out)
{
    if (!to_double(s, out)) return bad_number(P, line, k, s);
    if (!in_range(*out, k->range))
        return fail(P, line, "%s must be %s, got %s", k->name, range_text[k->range], s);
    return 0;
}

static int parse_choice(const parser *P, int line, const key_desc *k, const char *s, int *out)
{
    for (int i = 0; i < k->n_choices; i++)
        if (strcmp(s, k->choice(i)) == 0) return *out = i, 0;
    char list[256] = "";
    for (int i = 0; i < k->n_choices; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 k->choice(i));
    /* "metrics" lists metric names: name the singular in the message */
    const char *what = k->type == V_CHOICES ? "metric" : k->name;
    return fail(P, line, "unknown %s '%s' (expected %s)", what, s, list);
}

static int parse_value(const parser *P, const key_desc *k, const char *s, int line, value *v)
{
    char part[4][64];
    int n;
    switch (k->type) {
    case V_INT:
        return parse_int(P, line, k, s, INT_MAX, &v->i);
    case V_SEED:
        return parse_int(P, line, k, s, LLONG_MAX, &v->i);
    case V_BATCH:
        if (strcmp(s, "all") == 0) return v->i = 0, 0;
        if (to_ll(s, &v->i) && v->i <= 0)
            return fail(P, line, "%s must be > 0 or `all`, got %s", k->name, s);
        return parse_int(P, line, k, s, INT_MAX, &v->i);
    case V_FLOAT:
        return parse_float(P, line, k, s, &v->f);
    case V_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) return v->b = s[0] == 't', 0;
        return fail(P, line, "bad value '%s' for %s: expected true or false", s, k->name);
    case V_CHOICE:
        return parse_choice(P, line, k, s, &v->choice);
    case V_CHOICES:
        if ((n = split(s, part, 4)) < 0)
            return fail(P, line, "bad list '%s' for %s: expected names separated by commas",
                        s, k->name);
        for (int i = 0; i < n; i++) {
            int c;
            if (parse_choice(P, line, k, part[i], &c)) return -1;
            v->bits |= 1u << c;
        }
        return 0;
    case V_SHAPE: {
        n = split(s, part, 4);
        if (n != 1 && n != 3)
            return fail(P, line, "bad shape '%s': expected H,W,C for images or D for "
                        "feature vectors", s);
        long long d[3];
        for (int i = 0; i < n; i++)
            if (parse_int(P, line, k, part[i], INT_MAX, &d[i])) return -1;
        v->shape = n == 3 ? cv_shape_hwc((int)d[0], (int)d[1], (int)d[2]) : cv_shape_vec((int)d[0]);
        return 0;
    }
    case V_KERNEL: {
        long long d[2];
        n = split(s, part, 4);
        if (n != 1 && n != 2) return bad_number(P, line, k, s);
        for (int i = 0; i < n; i++)
            if (parse_int(P, line, k, part[i], INT_MAX, &d[i])) return -1;
        if (n == 2 && d[0] != d[1])
            return fail(P, line, "kernel %s is not square; only KxK kernels are supported", s);
        v->i = d[0];
        return 0;
    }
    case V_PAIR:
    case V_SPAN:
        n = split(s, part, 4);
        v->i = n; /* 1: a single number (V_SPAN), 2: lo,hi */
        if (n == 1 && k->type == V_SPAN) return parse_float(P, line, k, s, &v->f);
        if (n != 2)
            return fail(P, line, "bad range '%s' for %s: expected lo,hi", s, k->name);
        if (parse_float(P, line, k, part[0], &v->f) || parse_float(P, line, k, part[1], &v->f2))
            return -1;
        if (v->f > v->f2) return fail(P, line, "bad range '%s' for %s: lo > hi", s, k->name);
        return 0;
    case V_PATH:
        v->s = s;
        return 0;
    }
    return -1;
}

/* A hyperparameter in place of a value: every value it can take must be valid for the key
 * (ranges are intervals, so the extremes decide), and the spec gets its default (hp.c). */
static int parse_hp(const parser *P, const key_desc *k, const char *expr, int line, value *v)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_hp == CV_MAX_HP) return fail(P, line, "too many hyperparameters (at most %d)", CV_MAX_HP);
    cv_hp *hp = &spec->hp[spec->n_hp];
    cv_err e;
    if (cv_hp_parse(expr, hp, &e)) return fail(P, line, "%s", e.msg);
    const bool int_key = k->type == V_INT || k->type == V_SEED || k->type == V_BATCH || k->type == V_KERNEL;
    if ((hp->kind == CV_HP_INT && !int_key && k->type != V_FLOAT) ||
        (hp->kind == CV_HP_FLOAT && k->type != V_FLOAT) || (hp->kind == CV_HP_BOOL && k->type != V_BOOL))
        return fail(P, line, "%s cannot stand for %s (it takes %s; hp.choice(...) fits any key)", expr, k->name,
                    int_key ? "an integer: use hp.int" : k->type == V_FLOAT ? "a number: use hp.float"
                    : k->type == V_BOOL ? "true or false: use hp.bool" : "a name or list: use hp.choice");
    const double last = hp->kind == CV_HP_INT ? hp->lo + floor((hp->hi - hp->lo) / hp->step) * hp->step : hp->hi;
    const double extremes[2] = {hp->lo, last};
    for (int i = 0; i < (hp->kind == CV_HP_CHOICE ? hp->n_choices : 2); i++) {
        char text[64];
        value probe = {0};
        if (hp->kind == CV_HP_FLOAT) snprintf(text, sizeof text, "%.17g", extremes[i]);
        else cv_hp_value_text(hp, hp->kind == CV_HP_CHOICE ? i : extremes[i], text, sizeof text);
        if (parse_value(P, k, text, line, &probe)) return -1;
    }
    char def[64];
    cv_hp_value_text(hp, hp->lo, def, sizeof def); /* lo, the first choice, false */
    if (parse_value(P, k, def, line, v)) return -1;

    snprintf(hp->key, sizeof hp->key, "%s", k->name);
    const bool named = hp->name[0] != '\0';
    if (!named) snprintf(hp->name, sizeof hp->name, "%s", k->name);
    for (int i = 0; i < spec->n_hp; i++) {
        if (strcmp(spec->hp[i].name, hp->name) != 0) continue;
        if (named) return fail(P, line, "hyperparameter name '%s' is already used on line %d", hp->name, spec->hp[i].line);
        snprintf(hp->name, sizeof hp->name, "%s_%d", k->name, line);
        break;
    }
    hp->line = line;
    hp->off = expr - P->base;
    hp->len = (int64_t)strlen(expr);
    spec->n_hp++;
    return 0;
}

static int find_key(const char *name)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(name, keys[k].name) == 0 || (keys[k].alias && strcmp(name, keys[k].alias) == 0))
            return k;
    return -1;
}

/* "a, b, c" for the keys in `mask`: those in `first` (the required ones), then table order. */
static const char *key_list(key_set mask, key_set first, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < K_COUNT; k++)
            if ((mask & B(k)) && ((first & B(k)) != 0) == (pass == 0))
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
                         keys[k].name);
    return buf;
}

/* Checks every key=value of a statement against its keyword and parses the values. */
static int collect(const parser *P, const keyword_desc *kw, const stmt *st, value vals[K_COUNT])
{
    char list[512];
    memset(vals, 0, K_COUNT * sizeof *vals);
    for (int t = 0; t < st->n; t++) {
        const token *tok = &st->tok[t];
        const char *name = tok->key, *val = tok->val;
        if (!val) {
            /* `activation relu` is the short form of `activation activation=relu` */
            if (kw->kind != CV_LAYER_ACTIVATION || kw->role != S_LAYER || t != 0)
                return fail(P, tok->line, "expected key=value after `%s`, got '%s'", kw->name,
                            tok->key);
            name = "activation";
            val = tok->key;
        }
        const int k = find_key(name);
        if (k < 0 || !(kw->allowed & B(k))) {
            if (!kw->allowed)
                return fail(P, tok->line, "%s takes no keys, got '%s'", kw->name, name);
            return fail(P, tok->line, "unknown key '%s' for %s (valid keys: %s)", name, kw->name,
                        key_list(kw->allowed, kw->required, list, sizeof list));
        }
        if (vals[k].line)
            return fail(P, tok->line, "duplicate key '%s' in %s (already given on line %d)", name,
                        kw->name, vals[k].line);
        if (!*val) return fail(P, tok->line, "%s= has no value", name);
        if (strncmp(val, "hp.", 3) == 0 ? parse_hp(P, &keys[k], val, tok->line, &vals[k])
                                         : parse_value(P, &keys[k], val, tok->line, &vals[k]))
            return -1;
        vals[k].line = tok->line;
    }
    for (int k = 0; k < K_COUNT; k++)
        if ((kw->required & B(k)) && !vals[k].line)
            return fail(P, st->line, "%s is missing the required key %s=", kw->name, keys[k].name);
    return 0;
}

/* ---- applying statements ------------------------------------------------------------------- */

static int apply_layer(parser *P, const keyword_desc *kw, const value *v, int line)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers == CV_MAX_LAYERS)
        return fail(P, line, "too many layers (at most %d)", CV_MAX_LAYERS);
    cv_layer_spec *l = &spec->layers[spec->n_layers++];
    *l = (cv_layer_spec){.kind = kw->kind, .line = line, .alpha = 0.2f, .use_bias = true,
                         .trainable = true};
    if (kw->kind == CV_LAYER_CONV2D) l->stride = 1;
    if (kw->allowed & B(K_POOL)) l->pool = 2;
    for (int k = 0; k < K_COUNT; k++) {
        if (!v[k].line) continue;
        switch ((key_id)k) {
        case K_SHAPE: l->shape = v[k].shape; break;
        case K_NORMALIZE: l->normalize = (cv_norm)v[k].choice; break;
        case K_FILTERS: l->filters = (int)v[k].i; break;
        case K_KERNEL: l->kernel = (int)v[k].i; break;
        case K_STRIDE: l->stride = (int)v[k].i; break;
        case K_PADDING: l->same = v[k].choice == 1; break;
        case K_PAD_MODE: l->pad_nearest = v[k].choice == 1; break;
        case K_ACTIVATION: l->act = (cv_act)v[k].choice; break;
        case K_ALPHA: l->alpha = (float)v[k].f; break;
        case K_INIT: l->init = (cv_init)v[k].choice; break;
        case K_USE_BIAS: l->use_bias = v[k].b; break;
        case K_TRAINABLE: l->trainable = v[k].b; break;
        case K_POOL: l->pool = (int)v[k].i; break;
        case K_UNITS: l->units = (int)v[k].i; break;
        case K_RATE: l->rate = (float)v[k].f; break;
        default: break; /* collect() admits only this keyword's keys */
        }
    }
    /* Keras: a pooling stride defaults to the pool size */
    if ((kw->allowed & B(K_POOL)) && !v[K_STRIDE].line) l->stride = l->pool;
    return 0;
}

static int apply_compile(parser *P, const value *v, int line)
{
    cv_model_spec *spec = P->spec;
    const cv_optim_kind kind = v[K_OPTIMIZER].line ? (cv_optim_kind)v[K_OPTIMIZER].choice
                                                   : CV_OPT_RMSPROP; /* Keras's default */
    /* a hyper-parameter of another optimizer is almost always a forgotten optimizer= */
    for (int k = 0; k < K_COUNT; k++) {
        if (!v[k].line || !keys[k].optims || (keys[k].optims & OPT(kind))) continue;
        key_set own = 0;
        for (int j = 0; j < K_COUNT; j++)
            if (keys[j].optims & OPT(kind)) own |= B(j);
        char list[256];
        key_list(own, 0, list, sizeof list);
        return fail(P, v[k].line, "%s does not apply to optimizer %s (it takes learning_rate%s%s)",
                    keys[k].name, cv_optim_name(kind), own ? ", " : "", list);
    }
    if (v[K_VARIANT].line && v[K_NESTEROV].line)
        return fail(P, v[K_NESTEROV].line, "give either variant= or nesterov=, not both");
    if (v[K_DELTA].line && (!v[K_LOSS].line || v[K_LOSS].choice != CV_LOSS_HUBER))
        return fail(P, v[K_DELTA].line, "delta= applies only to loss=huber");

    cv_optim_config c = cv_optim_defaults(kind);
    if (v[K_LR].line) c.lr = (float)v[K_LR].f;
    if (v[K_MOMENTUM].line) c.momentum = (float)v[K_MOMENTUM].f;
    if (v[K_VARIANT].line) c.variant = (cv_momentum_variant)v[K_VARIANT].choice;
    /* Keras's spelling; nesterov=false leaves the default (EWA) form */
    if (v[K_NESTEROV].line && v[K_NESTEROV].b) c.variant = CV_MOMENTUM_NESTEROV;
    if (v[K_RHO].line) c.rho = (float)v[K_RHO].f;
    if (v[K_BETA1].line) c.beta1 = (float)v[K_BETA1].f;
    if (v[K_BETA2].line) c.beta2 = (float)v[K_BETA2].f;
    if (v[K_EPSILON].line) c.epsilon = (float)v[K_EPSILON].f;
    if (v[K_INIT_ACC].line) c.initial_accumulator = (float)v[K_INIT_ACC].f;
    spec->optim = c;
    spec->optim_line = line;

    if (v[K_LOSS].line) {
        spec->loss.kind = (cv_loss_kind)v[K_LOSS].choice;
        P->has_loss = true;
    }
    if (v[K_DELTA].line) spec->loss.huber_delta = (float)v[K_DELTA].f;
    spec->loss.metrics = v[K_METRICS].bits;
    return 0;
}

/* Callback keys that mean something only with another: a schedule's own keys need that
 * lr_schedule= (`schedules` bits), a callback's tuning keys need its patience > 0 (0 bits). */
static const struct {
    key_id key, needs;
    unsigned schedules;
} fit_needs[] = {
    {K_DECAY_RATE, K_SCHEDULE, OPT(CV_SCHED_STEP) | OPT(CV_SCHED_EXPONENTIAL)},
    {K_DECAY_STEPS, K_SCHEDULE, OPT(CV_SCHED_EXPONENTIAL) | OPT(CV_SCHED_COSINE)},
    {K_DROP_EVERY, K_SCHEDULE, OPT(CV_SCHED_STEP)},
    {K_COSINE_ALPHA, K_SCHEDULE, OPT(CV_SCHED_COSINE)},
    {K_MIN_DELTA, K_ES_PATIENCE, 0},
    {K_RESTORE_BEST, K_ES_PATIENCE, 0},
    {K_PLATEAU_FACTOR, K_PLATEAU_PATIENCE, 0},
    {K_PLATEAU_MIN_DELTA, K_PLATEAU_PATIENCE, 0},
    {K_PLATEAU_COOLDOWN, K_PLATEAU_PATIENCE, 0},
    {K_MIN_LR, K_PLATEAU_PATIENCE, 0},
};

static int check_fit_needs(const parser *P, const value *v)
{
    for (size_t i = 0; i < sizeof fit_needs / sizeof fit_needs[0]; i++) {
        const key_id k = fit_needs[i].key, need = fit_needs[i].needs;
        const unsigned want = fit_needs[i].schedules;
        if (!v[k].line) continue;
        if (want) {
            const cv_sched_kind have = v[need].line ? (cv_sched_kind)v[need].choice
                                                    : CV_SCHED_CONSTANT;
            if (want & OPT(have)) continue;
            char list[96] = "";
            for (int s = 0; s < CV_SCHED_COUNT; s++)
                if (want & OPT(s))
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             list[0] ? " or " : "", cv_sched_name((cv_sched_kind)s));
            return fail(P, v[k].line, "%s= applies only to %s=%s (the schedule is %s)",
                        keys[k].name, keys[need].name, list, cv_sched_name(have));
        }
        if (!v[need].line || v[need].i == 0)
            return fail(P, v[k].line, "%s= needs %s=N with N > 0 (that callback is off "
                        "without it)", keys[k].name, keys[need].name);
    }
    return 0;
}

static int apply_augment(parser *P, const value *v, int line)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers > 0 && spec->layers[0].shape.rank != 3)
        return fail(P, line, "augment needs image input (shape=H,W,C); the input on line %d is not",
                    spec->layers[0].line);
    cv_augment_config *a = &spec->augment;
    if (v[K_ROTATION].line) a->rotation_range = (float)v[K_ROTATION].f;
    if (v[K_WIDTH_SHIFT].line) a->width_shift_range = (float)v[K_WIDTH_SHIFT].f;
    if (v[K_HEIGHT_SHIFT].line) a->height_shift_range = (float)v[K_HEIGHT_SHIFT].f;
    if (v[K_SHEAR].line) a->shear_range = (float)v[K_SHEAR].f;
    const value *z = &v[K_ZOOM];
    const bool pair = z->i == 2;
    if (z->line && !pair && z->f >= 1) /* a scalar z is the range [1 - z, 1 + z] */
        return fail(P, z->line, "zoom_range=%g would allow zoom factors <= 0 (a single value must be < 1)", z->f);
    if (z->line && pair && z->f <= 0)
        return fail(P, z->line, "zoom_range lower bound %g must be > 0", z->f);
    if (z->line) {
        a->zoom_lo = (float)(pair ? z->f : 1.0 - z->f);
        a->zoom_hi = (float)(pair ? z->f2 : 1.0 + z->f);
    }
    if (v[K_HFLIP].line) a->horizontal_flip = v[K_HFLIP].b;
    if (v[K_VFLIP].line) a->vertical_flip = v[K_VFLIP].b;
    if (v[K_BRIGHTNESS].line) {
        a->brightness = true;
        a->brightness_lo = (float)v[K_BRIGHTNESS].f;
        a->brightness_hi = (float)v[K_BRIGHTNESS].f2;
    }
    if (v[K_NOISE].line) a->noise_stddev = (float)v[K_NOISE].f;
    if (v[K_FILL_MODE].line) a->fill_mode = (cv_fill_mode)v[K_FILL_MODE].choice;
    if (v[K_CVAL].line) a->cval = (float)v[K_CVAL].f;
    spec->has_augment = true;
    spec->augment_line = line;
    return 0;
}

static int apply_fit(parser *P, const value *v)
{
    cv_fit_config *f = &P->spec->fit;
    if (v[K_EPOCHS].line) f->epochs = (int)v[K_EPOCHS].i;
    if (v[K_BATCH_SIZE].line) f->batch_size = (int)v[K_BATCH_SIZE].i;
    if (v[K_VAL_SPLIT].line) f->validation_split = (float)v[K_VAL_SPLIT].f;
    if (v[K_SEED].line) f->seed = (uint64_t)v[K_SEED].i;
    if (v[K_SHUFFLE].line) f->shuffle = v[K_SHUFFLE].b;
    if (v[K_FINE_TUNE_LAST].line) { /* applied in finish(), once the base is known */
        P->spec->base.fine_tune_last = (int)v[K_FINE_TUNE_LAST].i;
        P->spec->base.fine_tune_line = v[K_FINE_TUNE_LAST].line;
    }

    if (check_fit_needs(P, v)) return -1;
    cv_callbacks_config *c = &P->spec->callbacks;
    if (v[K_SCHEDULE].line) c->schedule = (cv_sched_kind)v[K_SCHEDULE].choice;
    if (v[K_DECAY_RATE].line) c->decay_rate = (float)v[K_DECAY_RATE].f;
    if (v[K_DECAY_STEPS].line) c->decay_steps = (int64_t)v[K_DECAY_STEPS].i;
    if (v[K_DROP_EVERY].line) c->drop_every = (int)v[K_DROP_EVERY].i;
    if (v[K_COSINE_ALPHA].line) c->cosine_alpha = (float)v[K_COSINE_ALPHA].f;
    if (v[K_WARMUP].line) c->warmup_steps = (int64_t)v[K_WARMUP].i;
    if (v[K_MONITOR].line) {
        snprintf(c->monitor, sizeof c->monitor, "%s", monitor_names[v[K_MONITOR].choice]);
        P->monitor_line = v[K_MONITOR].line;
    }
    if (v[K_ES_PATIENCE].line) c->es_patience = (int)v[K_ES_PATIENCE].i;
    if (v[K_MIN_DELTA].line) c->es_min_delta = (float)v[K_MIN_DELTA].f;
    if (v[K_RESTORE_BEST].line) c->restore_best = v[K_RESTORE_BEST].b;
    if (v[K_PLATEAU_PATIENCE].line) c->plateau_patience = (int)v[K_PLATEAU_PATIENCE].i;
    if (v[K_PLATEAU_FACTOR].line) c->plateau_factor = (float)v[K_PLATEAU_FACTOR].f;
    if (v[K_PLATEAU_MIN_DELTA].line) c->plateau_min_delta = (float)v[K_PLATEAU_MIN_DELTA].f;
    if (v[K_PLATEAU_COOLDOWN].line) c->plateau_cooldown = (int)v[K_PLATEAU_COOLDOWN].i;
    if (v[K_MIN_LR].line) c->min_lr = (float)v[K_MIN_LR].f;
    if (v[K_SAVE_BEST].line) c->save_best_only = v[K_SAVE_BEST].b;
    if (v[K_STOP_ON_NAN].line) c->stop_on_nan = v[K_STOP_ON_NAN].b;
    return 0;
}

/* `base checkpoint=F upto=N trainable=B`: F is relative to the model file's folder. */
static int apply_base(parser *P, const value *v, const stmt *st)
{
    cv_model_spec *spec = P->spec;
    const char *ckpt = v[K_CHECKPOINT].s, *slash = strrchr(P->file, '/');
    char path[sizeof spec->base.checkpoint];
    const int dir = ckpt[0] != '/' && slash ? (int)(slash - P->file) : 0;
    if (snprintf(path, sizeof path, "%.*s%s%s", dir, P->file, dir ? "/" : "", ckpt) >= (int)sizeof path)
        return fail(P, st->line, "checkpoint path too long (at most %zu characters)", sizeof path - 1);
    spec->base.line = spec->base.last_line = st->line;
    for (int t = 0; t < st->n; t++)
        if (st->tok[t].line > spec->base.last_line) spec->base.last_line = st->tok[t].line;
    const int trainable = v[K_TRAINABLE].line ? v[K_TRAINABLE].b : -1;
    cv_err e;
    if (cv_model_base_take(spec, path, v[K_UPTO].line ? (int)v[K_UPTO].i : 0, trainable, &e))
        return fail(P, st->line, "%s", e.msg);
    return 0;
}

static int process(parser *P, const stmt *st)
{
    const keyword_desc *kw = NULL;
    for (int i = 0; i < N_KEYWORDS && !kw; i++)
        if (strcmp(st->word, keywords[i].name) == 0) kw = &keywords[i];
    if (!kw) {
        char list[256] = "";
        for (int i = 0; i < N_KEYWORDS; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                     keywords[i].name);
        return fail(P, st->line, "unknown layer '%s' (expected one of %s)", st->word, list);
    }
    /* input (or base, which brings the input) comes first and once; the statements after it
     * may come in any order */
    const bool is_input = kw->role == S_LAYER && kw->kind == CV_LAYER_INPUT;
    if (kw->role == S_BASE && P->first_line)
        return fail(P, st->line, "base must be the first statement (line %d has `%s` before it)",
                    P->first_line, P->first_word);
    if (is_input && P->first_line && strcmp(P->first_word, "base") == 0)
        return fail(P, st->line, "no input line with `base`: the input comes from the base model "
                    "(line %d)", P->first_line);
    if (is_input && P->first_line) {
        if (strcmp(P->first_word, "input") == 0)
            return fail(P, st->line, "a second input layer (the first is on line %d)",
                        P->first_line);
        return fail(P, st->line, "input must be the first layer (line %d has `%s` before it)",
                    P->first_line, P->first_word);
    }
    if (!P->first_line) {
        P->first_line = st->line;
        P->first_word = st->word;
    }
    if (kw->role != S_LAYER) {
        if (P->role_line[kw->role])
            return fail(P, st->line, "a second `%s` line (the first is line %d)", kw->name,
                        P->role_line[kw->role]);
        P->role_line[kw->role] = st->line;
    }

    if (P->augment_only && kw->role != S_AUGMENT)
        return fail(P, st->line, "`%s` in an augment file (it holds only an `augment` line; layers need a model file)",
                    st->word);
    value vals[K_COUNT];
    if (collect(P, kw, st, vals)) return -1;
    switch (kw->role) {
    case S_LAYER: return apply_layer(P, kw, vals, st->line);
    case S_COMPILE: return apply_compile(P, vals, st->line);
    case S_FIT: return apply_fit(P, vals);
    case S_BASE: return apply_base(P, vals, st);
    case S_AUGMENT:
        return apply_augment(P, vals, st->line);
    default: return -1;
    }
}

/* ---- the whole file ------------------------------------------------------------------------ */

static char *next_token(char **p)
{
    char *s = *p + strspn(*p, " \t\r\v\f");
    if (!*s) return *p = s, NULL;
    char *e = s + strcspn(s, " \t\r\v\f");
    if (*e) *e++ = '\0';
    *p = e;
    return s;
}

static int add_token(const parser *P, stmt *st, char *tok, int line)
{
    if (st->n == MAX_TOKENS)
        return fail(P, line, "too many keys for `%s` (at most %d)", st->word, MAX_TOKENS);
    /* `activation hp.choice(relu,tanh,name=act)`: the whole bare word is the value */
    char *eq = strncmp(tok, "hp.", 3) == 0 ? NULL : strchr(tok, '=');
    if (eq) *eq = '\0';
    st->tok[st->n++] = (token){tok, eq ? eq + 1 : NULL, line};
    return 0;
}

/* Splits buf (modified in place) into statements and processes each once it is complete,
 * i.e. when the next statement starts: a line may still continue it. */
static int parse_lines(parser *P, char *buf)
{
    stmt st = {0};
    bool open = false;
    int line = 1;
    for (char *p = buf; *p; line++) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        char *next = eol ? eol + 1 : p + strlen(p);
        char *hash = strchr(p, '#');
        if (hash) *hash = '\0';

        char *tok = next_token(&p);
        if (tok && strchr(tok, '=')) {
            if (!open)
                return fail(P, line, "`%s` continues a statement, but there is none before it",
                            tok);
        } else if (tok) {
            if (open && process(P, &st)) return -1;
            st = (stmt){.word = tok, .line = line};
            open = true;
            tok = next_token(&p);
        }
        for (; tok; tok = next_token(&p))
            if (add_token(P, &st, tok, line)) return -1;
        p = next;
    }
    return open ? process(P, &st) : 0;
}

/* Model-level checks once every line is read: input present, shapes, compile, loss vs output. */
static int finish(parser *P)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers == 0 || spec->layers[0].kind != CV_LAYER_INPUT)
        return fail(P, P->first_line ? P->first_line : 1,
                    "missing input layer (a model starts with `input shape=H,W,C` or "
                    "`input shape=D`)");
    if (spec->n_layers == 1)
        return fail(P, spec->layers[0].line, "the model has no layers after `input`");
    const int upto = spec->base.upto;
    for (int i = 0; i < spec->n_layers; i++) {
        if (i > 0) spec->layers[i].in = spec->layers[i - 1].out;
        if (cv_layer_infer_shape(&spec->layers[i], P->file, P->err)) {
            if (i == upto + 1 && upto) { /* the first new layer does not fit the base's output */
                char sh[48], *m = P->err->msg;
                snprintf(m + strlen(m), CV_ERR_MSG - strlen(m), " (its input is the output %s of "
                         "base upto=%d on line %d)", cv_shape_str(spec->layers[i].in, sh, sizeof sh),
                         upto, spec->base.line);
            }
            return -1;
        }
    }
    if (spec->base.fine_tune_line) {
        cv_err e;
        if (cv_model_fine_tune(spec, spec->base.fine_tune_last, &e))
            return fail(P, spec->base.fine_tune_line, "%s", e.msg);
    }
    const cv_layer_spec *last = &spec->layers[spec->n_layers - 1];
    if (last->out.rank != 1)
        return fail(P, last->line, "the output must be flat, but %s gives (%d, %d, %d); add "
                    "`flatten` (and a `dense` layer) after line %d", cv_layer_kind_name(last->kind),
                    last->out.d[0], last->out.d[1], last->out.d[2], last->line);
    if (!P->has_loss)
        return fail(P, spec->optim_line, "missing `compile ... loss=...` (e.g. `compile "
                    "optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy`)");
    /* a monitored metric must be computed: Keras's history has only the compiled metrics */
    if (P->monitor_line) {
        const char *mon = spec->callbacks.monitor;
        const char *metric = strncmp(mon, "val_", 4) == 0 ? mon + 4 : mon;
        for (int i = 1; i < 4; i++)
            if (strcmp(metric, monitor_names[i]) == 0 && !(spec->loss.metrics & (1u << (i - 1))))
                return fail(P, P->monitor_line, "monitor=%s needs metrics=%s in compile (line %d)",
                            mon, metric, spec->optim_line);
    }

    /* the cross-entropies are fused with their output activation (see loss.h) */
    const cv_loss_kind loss = spec->loss.kind;
    const cv_act need = loss == CV_LOSS_BINARY_CE ? CV_ACT_SIGMOID
                        : loss == CV_LOSS_SPARSE_CE || loss == CV_LOSS_CATEGORICAL_CE
                            ? CV_ACT_SOFTMAX
                            : CV_ACT_LINEAR;
    if (need == CV_ACT_LINEAR) return 0;
    const bool has_act = last->kind == CV_LAYER_DENSE || last->kind == CV_LAYER_CONV2D ||
                         last->kind == CV_LAYER_ACTIVATION;
    if (has_act && last->act == need) return 0;
    char what[96];
    if (has_act)
        snprintf(what, sizeof what, "%s with activation=%s", cv_layer_kind_name(last->kind),
                 cv_act_name(last->act));
    else
        snprintf(what, sizeof what, "%s", cv_layer_kind_name(last->kind));
    return fail(P, spec->optim_line, "%s needs a %s output layer (last layer is %s, line %d)",
                cv_loss_name(loss), cv_act_name(need), what, last->line);
}

static int parse_text(cv_model_spec *spec, const char *text, const char *file, bool augment_only, cv_err *err)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->file, sizeof spec->file, "%s", file ? file : "<model>");
    spec->optim = cv_optim_defaults(CV_OPT_RMSPROP);
    spec->loss.huber_delta = 1.0f;
    spec->fit = (cv_fit_config){.epochs = 1, .batch_size = 32, .seed = 42, .shuffle = true};
    spec->callbacks = cv_callbacks_defaults();
    spec->augment = cv_augment_defaults();
    /* messages use the full name even if spec->file had to truncate it */
    parser P = {.spec = spec, .file = file ? file : "<model>", .err = err, .augment_only = augment_only};
    if (!text) return fail(&P, 0, "no model text");

    const size_t len = strlen(text);
    char *work = cv_malloc(len + 1, "model text", err);
    spec->text = cv_malloc(len + 1, "model text", err);
    int rc = -1;
    if (work && spec->text) {
        memcpy(work, text, len + 1);
        memcpy(spec->text, text, len + 1);
        P.base = work;
        rc = parse_lines(&P, work);
        if (rc == 0 && !augment_only) rc = finish(&P);
    }
    free(work); /* statements point into it; nothing survives the parse */
    if (rc) cv_model_spec_free(spec);
    return rc;
}

int cv_model_parse(cv_model_spec *spec, const char *text, const char *file, cv_err *err)
{
    return parse_text(spec, text, file, false, err);
}

/* Whether the first statement of text (comments and blank lines skipped) is `word`. */
static bool first_word_is(const char *text, const char *word)
{
    const size_t n = strlen(word);
    for (const char *p = text; *p;) {
        p += strspn(p, " \t\r\n\v\f");
        if (*p == '#') {
            p += strcspn(p, "\n");
            continue;
        }
        return strncmp(p, word, n) == 0 && (p[n] == '\0' || strchr(" \t\r\n\v\f#", p[n]));
    }
    return false;
}

static int load_text(cv_model_spec *spec, const char *path, bool augment_file, cv_err *err)
{
    memset(spec, 0, sizeof *spec);
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot read: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = cv_malloc(cap, "model file", err);
    int rc = buf ? 0 : -1;
    while (rc == 0) {
        errno = 0;
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (ferror(f)) {
            rc = cv_errf(err, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
        } else if (n < cap - 1) {
            break; /* end of file */
        } else {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                rc = cv_errf(err, "%s: out of memory reading it (%zu bytes so far)", path, n);
            else
                buf = bigger, cap *= 2;
        }
    }
    fclose(f);
    if (rc == 0) {
        buf[n] = '\0';
        rc = memchr(buf, '\0', n)
                 ? cv_errf(err, "%s: cannot read: not a text file (it contains NUL bytes)", path)
                 : parse_text(spec, buf, path, augment_file && first_word_is(buf, "augment"), err);
    }
    free(buf);
    return rc;
}

int cv_model_load(cv_model_spec *spec, const char *path, cv_err *err)
{
    return load_text(spec, path, false, err);
}

int cv_augment_file_load(cv_model_spec *spec, const char *path, cv_err *err)
{
    if (load_text(spec, path, true, err)) return -1;
    if (spec->has_augment) return 0;
    cv_model_spec_free(spec);
    return cv_errf(err, "%s: no `augment` line (add e.g. `augment rotation_range=10 horizontal_flip=true`)", path);
}

void cv_model_spec_free(cv_model_spec *spec)
{
    if (!spec) return;
    free(spec->text);
    spec->text = NULL;
}
