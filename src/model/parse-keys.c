/* The model file's keys (model/parse-impl.h): every key of every statement with its value type
 * and valid range, which keys each keyword takes, and reading one statement's key=value tokens
 * into checked values. The grammar and what each statement does with its values are parse.c's. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convoy/words.h"
#include "model/parse-impl.h"

/* ---- keys: every key of every statement, with its value type and valid range ------------ */



static const char *const range_text[] = {"", "> 0", ">= 0", "in [0, 1)", "in (0, 1)"};

/* Names of a V_CHOICE/V_CHOICES list by index; the enums' own name functions where they exist. */
typedef const char *(*choice_fn)(int);
/* the enums' own name functions where they exist */
static const char *act_choice(int i) { return cv_act_name((cv_act)i); }
static const char *init_choice(int i) { return cv_init_name((cv_init)i); }
static const char *norm_choice(int i) { return cv_norm_name((cv_norm)i); }
static const char *optim_choice(int i) { return cv_optim_name((cv_optim_kind)i); }
static const char *loss_choice(int i) { return cv_loss_name((cv_loss_kind)i); }
static const char *pad_mode_choice(int i) { return i ? "nearest" : "zero"; }
static const char *shortcut_choice(int i) { return i ? "projection" : "zeropad"; }
/* indexed by cv_momentum_variant */
static const char *variant_choice(int i)
{
    return (const char *[]){"ewa", "classic", "nesterov"}[i];
}
/* bit i is 1 << i: the CV_METRIC_* bits */
static const char *metric_choice(int i) { return cv_metric_name(i); }
static const char *sched_choice(int i) { return cv_sched_name((cv_sched_kind)i); }
/* the loss and the metrics (in CV_METRIC_LIST's order), then their val_ names */
#define MONITOR_NAME_(e, name) #name,
#define VAL_MONITOR_NAME_(e, name) "val_" #name,
const char *const parse_monitor_names[PARSE_MONITORS] = {"loss", CV_METRIC_LIST(MONITOR_NAME_) "val_loss",
                                                         CV_METRIC_LIST(VAL_MONITOR_NAME_)};
#undef MONITOR_NAME_
#undef VAL_MONITOR_NAME_
static const char *monitor_choice(int i) { return parse_monitor_names[i]; }
/* Keras's fit(verbose=): 0 silent, 1 a progress bar, 2 one line per epoch */
static const char *verbose_choice(int i)
{
    return (const char *[]){"0", "1", "2"}[i];
}
static const char *precision_choice(int i) { return cv_precision_name((cv_precision)i); }
static const char *fill_choice(int i)
{
    return (const char *[]){"nearest", "constant", "reflect", "wrap"}[i];
}


#define KEY(n, t, r) {.name = n, .type = t, .range = r}
#define CHOICE(n, fn, count) {.name = n, .type = V_CHOICE, .choice = fn, .n_choices = count}
#define OPTIM_KEY(n, t, r, opts) {.name = n, .type = t, .range = r, .optims = (opts)}
const key_desc parse_keys[K_COUNT] = {
    [K_SHAPE] = KEY("shape", V_SHAPE, R_POS),
    [K_NORMALIZE] = CHOICE("normalize", norm_choice, CV_NORM_COUNT),
    [K_FILTERS] = KEY("filters", V_INT, R_POS),
    /* Keras's names as aliases: kernel_size, strides, pool_size, kernel_initializer */
    [K_KERNEL] = {.name = "kernel", .alias = "kernel_size", .type = V_KERNEL, .range = R_POS},
    [K_STRIDE] = {.name = "stride", .alias = "strides", .type = V_KERNEL, .range = R_POS},
    [K_PADDING] = KEY("padding", V_PADDING, R_NONNEG),
    [K_PAD_MODE] = CHOICE("pad_mode", pad_mode_choice, 2),
    [K_ACTIVATION] = CHOICE("activation", act_choice, CV_ACT_COUNT),
    [K_ALPHA] = KEY("alpha", V_FLOAT, R_NONNEG),
    [K_INIT] = {.name = "init", .alias = "kernel_initializer", .type = V_CHOICE, .choice = init_choice,
                .n_choices = CV_INIT_COUNT},
    [K_USE_BIAS] = KEY("use_bias", V_BOOL, R_ANY),
    [K_TRAINABLE] = KEY("trainable", V_BOOL, R_ANY),
    [K_POOL] = {.name = "pool", .alias = "pool_size", .type = V_KERNEL, .range = R_POS},
    [K_UNITS] = KEY("units", V_INT, R_POS),
    [K_RATE] = KEY("rate", V_FLOAT, R_UNIT),
    /* batchnorm's; compile has a momentum= and an epsilon= of its own (parse_find_key picks
     * the one the statement takes) */
    [K_BN_MOMENTUM] = KEY("momentum", V_FLOAT, R_UNIT),
    [K_BN_EPSILON] = KEY("epsilon", V_FLOAT, R_POS),
    [K_CENTER] = KEY("center", V_BOOL, R_ANY),
    [K_SCALE] = KEY("scale", V_BOOL, R_ANY),
    [K_SHORTCUT] = CHOICE("shortcut", shortcut_choice, 2),

    [K_OPTIMIZER] = CHOICE("optimizer", optim_choice, CV_OPT_COUNT),
    [K_LR] = {.name = "learning_rate", .alias = "lr", .type = V_FLOAT, .range = R_NONNEG},
    [K_LOSS] = CHOICE("loss", loss_choice, CV_LOSS_COUNT),
    [K_METRICS] = {.name = "metrics", .type = V_CHOICES, .choice = metric_choice, .n_choices = CV_METRIC_KINDS},
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
    [K_FROM_LOGITS] = KEY("from_logits", V_BOOL, R_ANY),

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
    [K_MONITOR] = CHOICE("monitor", monitor_choice, PARSE_MONITORS),
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
    [K_CLASS_WEIGHT] = KEY("class_weight", V_PATH, R_ANY), /* balanced, or C:W,C:W: read by parse.c */
    [K_VERBOSE] = CHOICE("verbose", verbose_choice, 3),
    [K_PRECISION] = CHOICE("precision", precision_choice, 2),
};

/* ---- statements: which keys each keyword takes ------------------------------------------ */


#define CALLBACKS                                                                               \
    (B(K_SCHEDULE) | B(K_DECAY_RATE) | B(K_DECAY_STEPS) | B(K_DROP_EVERY) | B(K_COSINE_ALPHA) |  \
     B(K_WARMUP) | B(K_MONITOR) | B(K_ES_PATIENCE) | B(K_MIN_DELTA) | B(K_RESTORE_BEST) |         \
     B(K_PLATEAU_PATIENCE) | B(K_PLATEAU_FACTOR) | B(K_PLATEAU_MIN_DELTA) |                      \
     B(K_PLATEAU_COOLDOWN) | B(K_MIN_LR) | B(K_SAVE_BEST) | B(K_STOP_ON_NAN))


/* the statements that are not layers (those are the layer kinds', cv_layer_kinds[]) */
static const keyword_desc statements[] = {
    /* loss is required too, but its absence gets the model-level message (see finish) */
    {"compile", S_COMPILE, 0,
     B(K_OPTIMIZER) | B(K_LR) | B(K_LOSS) | B(K_METRICS) | B(K_MOMENTUM) | B(K_VARIANT) |
         B(K_NESTEROV) | B(K_RHO) | B(K_BETA1) | B(K_BETA2) | B(K_EPSILON) | B(K_INIT_ACC) |
         B(K_DELTA) | B(K_FROM_LOGITS),
     0, 0},
    {"fit", S_FIT, 0,
     B(K_EPOCHS) | B(K_BATCH_SIZE) | B(K_VAL_SPLIT) | B(K_SEED) | B(K_SHUFFLE) | CALLBACKS |
         B(K_FINE_TUNE_LAST) | B(K_CLASS_WEIGHT) | B(K_VERBOSE) | B(K_PRECISION),
     0, 0},
    {"augment", S_AUGMENT, 0,
     B(K_ROTATION) | B(K_WIDTH_SHIFT) | B(K_HEIGHT_SHIFT) | B(K_SHEAR) | B(K_ZOOM) | B(K_HFLIP) |
         B(K_VFLIP) | B(K_BRIGHTNESS) | B(K_NOISE) | B(K_FILL_MODE) | B(K_CVAL),
     0, 0},
    {"base", S_BASE, 0, B(K_CHECKPOINT) | B(K_UPTO) | B(K_TRAINABLE), B(K_CHECKPOINT), 0},
};
enum { N_STATEMENTS = sizeof statements / sizeof statements[0] };

static void layer_keyword(cv_layer_kind k, keyword_desc *kw)
{
    const cv_layer_kind_desc *d = cv_layer_kinds[k];
    *kw = (keyword_desc){d->name, S_LAYER, k, (key_set)d->keys, (key_set)d->required, (key_set)d->bare_key};
}

bool parse_find_keyword(const char *word, keyword_desc *kw)
{
    const cv_layer_kind k = cv_layer_kind_find(word);
    if (k != CV_LAYER_KIND_COUNT) return layer_keyword(k, kw), true;
    for (int i = 0; i < N_STATEMENTS; i++)
        if (strcmp(word, statements[i].name) == 0) return *kw = statements[i], true;
    /* Keras's spellings: the class (Conv2D, MaxPooling2D) or its snake-case name (max_pooling2d),
     * without regard to case and underscores (MaxPool2D is maxpool2d, Input is input) */
    for (int i = 0; i < CV_LAYER_KIND_COUNT; i++) {
        const cv_layer_kind_desc *d = cv_layer_kinds[i];
        if (cv_word_loose_eq(word, d->name) || cv_word_loose_eq(word, d->keras_name) ||
            cv_word_loose_eq(word, d->keras_class))
            return layer_keyword((cv_layer_kind)i, kw), true;
    }
    for (int i = 0; i < N_STATEMENTS; i++)
        if (cv_word_loose_eq(word, statements[i].name)) return *kw = statements[i], true;
    return false;
}

const char *parse_keyword_suggest(const char *word, char *buf, size_t size)
{
    const char *cands[3 * CV_LAYER_KIND_COUNT + N_STATEMENTS];
    int n = 0;
    for (int i = 0; i < CV_LAYER_KIND_COUNT; i++) cands[n++] = cv_layer_kinds[i]->name;
    for (int i = 0; i < N_STATEMENTS; i++) cands[n++] = statements[i].name;
    for (int i = 0; i < CV_LAYER_KIND_COUNT; i++) cands[n++] = cv_layer_kinds[i]->keras_class;
    for (int i = 0; i < CV_LAYER_KIND_COUNT; i++) cands[n++] = cv_layer_kinds[i]->keras_name;
    return parse_suggest(word, cands, n, buf, size);
}

const char *parse_keyword_list(char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < CV_LAYER_KIND_COUNT + N_STATEMENTS; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
                 i < CV_LAYER_KIND_COUNT ? cv_layer_kinds[i]->name : statements[i - CV_LAYER_KIND_COUNT].name);
    return buf;
}

int parse_fail(const parser *P, int line, const char *fmt, ...)
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

bool parse_whole_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *s && !*end && errno == 0;
}

bool parse_whole_double(const char *s, double *out)
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
    if (k->type != V_FLOAT && k->type != V_PAIR && k->type != V_SPAN && parse_whole_double(s, &d))
        return parse_fail(P, line, "bad number '%s' for %s: expected an integer", s, k->name);
    return parse_fail(P, line, "bad number '%s' for %s", s, k->name);
}

/* One integer of an int-valued key (also each part of shape and kernel). */
static int parse_int(const parser *P, int line, const key_desc *k, const char *s, long long max,
                     long long *out)
{
    if (!parse_whole_ll(s, out)) return bad_number(P, line, k, s);
    if (!in_range((double)*out, k->range))
        return parse_fail(P, line, "%s must be %s, got %s", k->name, range_text[k->range], s);
    if (*out > max) return parse_fail(P, line, "%s=%s is too large (at most %lld)", k->name, s, max);
    return 0;
}

static int parse_float(const parser *P, int line, const key_desc *k, const char *s, double *out)
{
    if (!parse_whole_double(s, out)) return bad_number(P, line, k, s);
    if (!in_range(*out, k->range))
        return parse_fail(P, line, "%s must be %s, got %s", k->name, range_text[k->range], s);
    return 0;
}

/* One name of k's list: its own spelling, the same up to case and underscores (Adam, HeNormal),
 * or a Keras alias (mean_squared_error) */
static int parse_choice(const parser *P, int line, const key_desc *k, const char *s, int *out)
{
    const key_id id = (key_id)(k - parse_keys);
    for (int i = 0; i < k->n_choices; i++)
        if (strcmp(s, k->choice(i)) == 0) return *out = i, 0;
    for (int i = 0; i < k->n_choices; i++)
        if (cv_word_loose_eq(s, k->choice(i))) return *out = i, 0;
    if ((*out = parse_value_alias(id, s)) >= 0) return 0;
    char list[400] = "";
    const char *cands[64];
    int n = 0;
    for (int i = 0; i < k->n_choices; i++) {
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 k->choice(i));
        if (n < 48) cands[n++] = k->choice(i);
    }
    n += parse_value_alias_words(id, cands + n, 64 - n);
    /* "metrics" lists metric names: name the singular in the message */
    const char *what = k->type == V_CHOICES ? "metric" : k->name, *keras, *instead;
    if (parse_keras_missing(id, s, &keras, &instead)) {
        if (instead) return parse_fail(P, line, "unknown %s '%s': Keras's %s is not in convoy; write %s", what, s, keras, instead);
        return parse_fail(P, line, "unknown %s '%s': Keras's %s is not in convoy (expected %s)", what, s, keras, list);
    }
    char near[96];
    if (*parse_suggest(s, cands, n, near, sizeof near)) return parse_fail(P, line, "unknown %s '%s'%s", what, s, near);
    return parse_fail(P, line, "unknown %s '%s' (expected %s)", what, s, list);
}

int parse_value(const parser *P, const key_desc *k, const char *s, int line, value *v, char *canon)
{
    char part[2 * CV_METRIC_KINDS][64]; /* a metrics= list (a name given twice is a bit set twice) */
    int n;
    switch (k->type) {
    case V_INT:
        return parse_int(P, line, k, s, INT_MAX, &v->i);
    case V_SEED:
        return parse_int(P, line, k, s, LLONG_MAX, &v->i);
    case V_BATCH:
        if (strcmp(s, "all") == 0) return v->i = 0, 0;
        if (parse_whole_ll(s, &v->i) && v->i <= 0)
            return parse_fail(P, line, "%s must be > 0 or `all`, got %s", k->name, s);
        return parse_int(P, line, k, s, INT_MAX, &v->i);
    case V_FLOAT:
        return parse_float(P, line, k, s, &v->f);
    case V_BOOL: /* Python's True and False too */
        if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return parse_fail(P, line, "bad value '%s' for %s: expected true or false", s, k->name);
        v->b = s[0] == 't' || s[0] == 'T';
        if (canon) snprintf(canon, CANON_MAX, "%s", v->b ? "true" : "false");
        return 0;
    case V_CHOICE:
        if (parse_choice(P, line, k, s, &v->choice)) return -1;
        if (canon) snprintf(canon, CANON_MAX, "%s", k->choice(v->choice));
        return 0;
    case V_CHOICES:
        if ((n = split(s, part, 2 * CV_METRIC_KINDS)) < 0)
            return parse_fail(P, line, "bad list '%s' for %s: expected names separated by commas",
                        s, k->name);
        if (canon) canon[0] = '\0';
        for (int i = 0; i < n; i++) {
            int c = 0;
            if (parse_choice(P, line, k, part[i], &c)) return -1;
            v->bits |= 1u << c;
            if (canon) snprintf(canon + strlen(canon), CANON_MAX - strlen(canon), "%s%s", i ? "," : "", k->choice(c));
        }
        return 0;
    case V_SHAPE: {
        n = split(s, part, 4);
        if (n != 1 && n != 3)
            return parse_fail(P, line, "bad shape '%s': expected H,W,C for images or D for "
                        "feature vectors", s);
        long long d[3];
        for (int i = 0; i < n; i++)
            if (parse_int(P, line, k, part[i], INT_MAX, &d[i])) return -1;
        v->shape = n == 3 ? cv_shape_hwc((int)d[0], (int)d[1], (int)d[2]) : cv_shape_vec((int)d[0]);
        return 0;
    }
    case V_KERNEL:
    case V_PADDING: {
        const bool pad = k->type == V_PADDING;
        if (pad && (strcasecmp(s, "same") == 0 || strcasecmp(s, "valid") == 0)) {
            v->choice = s[0] == 's' || s[0] == 'S';
            if (canon) snprintf(canon, CANON_MAX, "%s", v->choice ? "same" : "valid");
            return 0;
        }
        long long d[4];
        n = split(s, part, 4);
        for (int i = 0; pad && i < n; i++)
            if (!parse_whole_ll(part[i], &d[i])) n = -1;
        if (n < 1 || n == 3 || (!pad && n > 2)) {
            if (pad)
                return parse_fail(P, line, "bad padding '%s' (expected same, valid, P, PH,PW or TOP,BOTTOM,LEFT,RIGHT)", s);
            return parse_fail(P, line, "bad %s '%s' (expected N for NxN, or ROWS,COLUMNS)", k->name, s);
        }
        for (int i = 0; i < n; i++)
            if (parse_int(P, line, k, part[i], 1 << 20, &d[i])) return -1;
        /* P: every side; PH,PW (and KH,KW): rows, columns */
        const long long t = d[0], l = n == 1 ? d[0] : n == 2 ? d[1] : d[2];
        const long long all[4] = {t, n == 4 ? d[1] : t, l, n == 4 ? d[3] : l};
        for (int i = 0; i < 4; i++) v->ints[i] = (int)all[i];
        if (!pad) v->ints[1] = (int)l;
        v->choice = 2;
        return 0;
    }
    case V_PAIR:
    case V_SPAN:
        n = split(s, part, 4);
        v->i = n; /* 1: a single number (V_SPAN), 2: lo,hi */
        if (n == 1 && k->type == V_SPAN) return parse_float(P, line, k, s, &v->f);
        if (n != 2)
            return parse_fail(P, line, "bad range '%s' for %s: expected lo,hi", s, k->name);
        if (parse_float(P, line, k, part[0], &v->f) || parse_float(P, line, k, part[1], &v->f2))
            return -1;
        if (v->f > v->f2) return parse_fail(P, line, "bad range '%s' for %s: lo > hi", s, k->name);
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
    if (spec->n_hp == CV_MAX_HP) return parse_fail(P, line, "too many hyperparameters (at most %d)", CV_MAX_HP);
    cv_hp *hp = &spec->hp[spec->n_hp];
    cv_err e;
    if (cv_hp_parse(expr, hp, &e)) return parse_fail(P, line, "%s", e.msg);
    const bool int_key = k->type == V_INT || k->type == V_SEED || k->type == V_BATCH || k->type == V_KERNEL ||
                         k->type == V_PADDING;
    if ((hp->kind == CV_HP_INT && !int_key && k->type != V_FLOAT) ||
        (hp->kind == CV_HP_FLOAT && k->type != V_FLOAT) || (hp->kind == CV_HP_BOOL && k->type != V_BOOL))
        return parse_fail(P, line, "%s cannot stand for %s (it takes %s; hp.choice(...) fits any key)", expr, k->name,
                    int_key ? "an integer: use hp.int" : k->type == V_FLOAT ? "a number: use hp.float"
                    : k->type == V_BOOL ? "true or false: use hp.bool" : "a name or list: use hp.choice");
    const double last = hp->kind == CV_HP_INT ? hp->lo + floor((hp->hi - hp->lo) / hp->step) * hp->step : hp->hi;
    const double extremes[2] = {hp->lo, last};
    for (int i = 0; i < (hp->kind == CV_HP_CHOICE ? hp->n_choices : 2); i++) {
        char text[64];
        value probe = {0};
        if (hp->kind == CV_HP_FLOAT) snprintf(text, sizeof text, "%.17g", extremes[i]);
        else cv_hp_value_text(hp, hp->kind == CV_HP_CHOICE ? i : extremes[i], text, sizeof text);
        if (parse_value(P, k, text, line, &probe, NULL)) return -1;
        if (hp->kind == CV_HP_CHOICE && (k->type == V_CHOICE || k->type == V_BOOL)) {
            char canon[CANON_MAX]; /* the values tune writes in are canonical (Adam: adam) */
            if (parse_value(P, k, text, line, &probe, canon) == 0 && strlen(canon) < CV_HP_TEXT)
                memcpy(hp->choices[i], canon, strlen(canon) + 1);
        }
    }
    char def[64];
    cv_hp_value_text(hp, hp->lo, def, sizeof def); /* lo, the first choice, false */
    if (parse_value(P, k, def, line, v, NULL)) return -1;

    snprintf(hp->key, sizeof hp->key, "%s", k->name);
    const bool named = hp->name[0] != '\0';
    if (!named) snprintf(hp->name, sizeof hp->name, "%s", k->name);
    for (int i = 0; i < spec->n_hp; i++) {
        if (strcmp(spec->hp[i].name, hp->name) != 0) continue;
        if (named) return parse_fail(P, line, "hyperparameter name '%s' is already used on line %d", hp->name, spec->hp[i].line);
        snprintf(hp->name, sizeof hp->name, "%s_%d", k->name, line);
        break;
    }
    hp->line = line;
    hp->off = expr - P->base;
    hp->len = (int64_t)strlen(expr);
    spec->n_hp++;
    return 0;
}

int parse_find_key(const char *name, key_set allowed)
{
    int first = -1;
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(name, parse_keys[k].name) == 0 || (parse_keys[k].alias && strcmp(name, parse_keys[k].alias) == 0)) {
            if (allowed & B(k)) return k; /* the statement's own key of that name */
            if (first < 0) first = k;
        }
    return first;
}

/* "a, b, c" for the keys in `mask`: those in `first` (the required ones), then table order. */
const char *parse_key_list(key_set mask, key_set first, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < K_COUNT; k++)
            if ((mask & B(k)) && ((first & B(k)) != 0) == (pass == 0))
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
                         parse_keys[k].name);
    return buf;
}

/* The message for a key the statement does not take: a Keras key convoy lacks, a likely typo of
 * one it takes, or the list of those it takes. */
static int unknown_key(const parser *P, const keyword_desc *kw, const token *tok, const char *name)
{
    char list[512], near[96];
    const char *keras, *instead;
    if (!kw->allowed) return parse_fail(P, tok->line, "%s takes no keys, got '%s'", kw->name, name);
    parse_key_list(kw->allowed, kw->required, list, sizeof list);
    if (parse_keras_missing(W_KEY, name, &keras, &instead)) {
        if (instead) return parse_fail(P, tok->line, "unknown key '%s' for %s: Keras's %s= is not in convoy; write %s", name,
                                       kw->name, keras, instead);
        return parse_fail(P, tok->line, "unknown key '%s' for %s: Keras's %s= is not in convoy (%s takes %s)", name,
                          kw->name, keras, kw->name, list);
    }
    const char *cands[2 * K_COUNT];
    int n = 0;
    for (int k = 0; k < K_COUNT; k++)
        if (kw->allowed & B(k)) cands[n++] = parse_keys[k].name;
    for (int k = 0; k < K_COUNT; k++)
        if ((kw->allowed & B(k)) && parse_keys[k].alias) cands[n++] = parse_keys[k].alias;
    if (*parse_suggest(name, cands, n, near, sizeof near))
        return parse_fail(P, tok->line, "unknown key '%s' for %s%s", name, kw->name, near);
    return parse_fail(P, tok->line, "unknown key '%s' for %s (valid keys: %s)", name, kw->name, list);
}

/* Every value type that is a comma list, which Python writes in brackets: (3,3), [accuracy] */
static bool list_type(key_id k)
{
    const value_type t = parse_keys[k].type;
    return t == V_SHAPE || t == V_KERNEL || t == V_PADDING || t == V_PAIR || t == V_SPAN || t == V_CHOICES ||
           k == K_CLASS_WEIGHT;
}

/* Checks every key=value of a statement against its keyword and parses the values. */
int parse_collect(parser *P, const keyword_desc *kw, const stmt *st, value vals[K_COUNT])
{
    memset(vals, 0, K_COUNT * sizeof *vals);
    for (int t = 0; t < st->n; t++) {
        const token *tok = &st->tok[t];
        const char *name = tok->key, *val = tok->val;
        if (!val) {
            /* `activation relu` is the short form of `activation activation=relu` */
            if (!kw->bare || t != 0)
                return parse_fail(P, tok->line, "expected key=value after `%s`, got '%s'", kw->name,
                            tok->key);
            int bare = 0;
            while (!(kw->bare & B(bare))) bare++;
            name = parse_keys[bare].name;
            val = tok->key;
        }
        const int neutral = parse_keras_neutral(P, kw, tok);
        if (neutral < 0) return -1;
        if (neutral) continue;
        const int k = parse_find_key(name, kw->allowed);
        if (k < 0 || !(kw->allowed & B(k))) return unknown_key(P, kw, tok, name);
        if (vals[k].line)
            return parse_fail(P, tok->line, "duplicate key '%s' in %s (already given on line %d)", name,
                        kw->name, vals[k].line);
        if (!*val) return parse_fail(P, tok->line, "%s= has no value", name);
        /* Keras's key (kernel_size=) is written out as convoy's (kernel=) */
        if (tok->val && strcmp(name, parse_keys[k].name) != 0 &&
            parse_edit(P, parse_offset(P, name), parse_offset(P, name) + (int64_t)strlen(name), parse_keys[k].name))
            return -1;
        vals[k].raw = val;
        vals[k].key_raw = tok->val ? name : NULL;
        if (strncmp(val, "hp.", 3) == 0) {
            if (parse_hp(P, &parse_keys[k], val, tok->line, &vals[k])) return -1;
        } else {
            char buf[CANON_MAX], canon[CANON_MAX] = "";
            const int64_t at = parse_offset(P, val), end = at + (int64_t)strlen(val);
            const char *s = parse_unwrap(val, list_type((key_id)k), buf, sizeof buf);
            if (!s) return parse_fail(P, tok->line, "%s= value too long", name);
            if (!*s) return parse_fail(P, tok->line, "%s= has no value (only '%s')", name, val);
            const bool unwrapped = s != val;
            if (unwrapped && parse_keys[k].type == V_PATH) s = strcpy((char *)val, buf); /* a path is kept as a pointer */
            if (parse_value(P, &parse_keys[k], s, tok->line, &vals[k], canon)) return -1;
            const char *want = canon[0] ? canon : s;
            if ((unwrapped || strcmp(want, s) != 0) && parse_edit(P, at, end, want)) return -1;
        }
        vals[k].line = tok->line;
    }
    for (int k = 0; k < K_COUNT; k++)
        if ((kw->required & B(k)) && !vals[k].line)
            return parse_fail(P, st->line, "%s is missing the required key %s=", kw->name, parse_keys[k].name);
    return 0;
}
