/* The model-file parser: text -> cv_model_spec (grammar in docs/model-file.md). It is strict on purpose:
 * an unknown keyword or key, a bad number, an out-of-range value or an impossible shape is an
 * error naming FILE:LINE, because a silently ignored typo costs a whole training run. This file
 * holds the grammar and applies each statement; the keys and their values are parse-keys.c's. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/files.h"
#include "model/parse-impl.h"

#define UTF8_BOM "\xef\xbb\xbf"

/* ---- applying statements ------------------------------------------------------------------- */

static int apply_layer(parser *P, const keyword_desc *kw, const value *v, int line)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers == CV_MAX_LAYERS)
        return parse_fail(P, line, "too many layers (at most %d)", CV_MAX_LAYERS);
    cv_layer_spec *l = &spec->layers[spec->n_layers++];
    *l = (cv_layer_spec){.kind = kw->kind, .line = line, .alpha = 0.2f, .use_bias = true,
                         .trainable = true, .momentum = 0.99f, .epsilon = 1e-3f, .center = true, .scale = true};
    for (int k = 0; k < K_COUNT; k++) {
        if (!v[k].line) continue;
        switch ((key_id)k) {
        case K_SHAPE: l->shape = v[k].shape; break;
        case K_NORMALIZE: l->normalize = (cv_norm)v[k].choice; break;
        case K_FILTERS: l->filters = (int)v[k].i; break;
        case K_KERNEL: l->kernel[0] = v[k].ints[0], l->kernel[1] = v[k].ints[1]; break;
        case K_STRIDE: l->stride[0] = v[k].ints[0], l->stride[1] = v[k].ints[1]; break;
        case K_PADDING:
            l->same = v[k].choice == 1;
            for (int i = 0; i < 4; i++) l->pad[i] = v[k].choice == 2 ? v[k].ints[i] : 0;
            break;
        case K_PAD_MODE: l->pad_nearest = v[k].choice == 1; break;
        case K_ACTIVATION: l->act = (cv_act)v[k].choice; break;
        case K_ALPHA: l->alpha = (float)v[k].f; break;
        case K_INIT: l->init = (cv_init)v[k].choice; break;
        case K_USE_BIAS: l->use_bias = v[k].b; break;
        case K_TRAINABLE: l->trainable = v[k].b; break;
        case K_POOL: l->pool[0] = v[k].ints[0], l->pool[1] = v[k].ints[1]; break;
        case K_UNITS: l->units = (int)v[k].i; break;
        case K_RATE: l->rate = (float)v[k].f; break;
        case K_BN_MOMENTUM: l->momentum = (float)v[k].f; break;
        case K_BN_EPSILON: l->epsilon = (float)v[k].f; break;
        case K_CENTER: l->center = v[k].b; break;
        case K_SCALE: l->scale = v[k].b; break;
        case K_SHORTCUT: l->projection = v[k].choice == 1; break;
        default: break; /* parse_collect() admits only this keyword's keys */
        }
    }
    /* the kind's own defaults for what the line left out (a pooling stride is its pool size) */
    if (cv_layer_kinds[kw->kind]->defaults) cv_layer_kinds[kw->kind]->defaults(l);
    /* residual ... end: blocks nest; an end closes the innermost open one and takes its shortcut */
    if (l->kind == CV_LAYER_RESIDUAL) P->open[P->n_open++] = spec->n_layers - 1;
    if (l->kind == CV_LAYER_END) {
        if (!P->n_open) return parse_fail(P, line, "`end` without a `residual` block to close");
        l->block = P->open[--P->n_open];
        if (l->block == spec->n_layers - 2)
            return parse_fail(P, line, "empty residual block (line %d): put layers between `residual` and `end`",
                              spec->layers[l->block].line);
        l->projection = spec->layers[l->block].projection;
        const int key_line = v[K_INIT].line ? v[K_INIT].line : v[K_TRAINABLE].line;
        if (!l->projection && key_line)
            return parse_fail(P, key_line, "%s= on `end` applies to a projection shortcut (`residual shortcut=projection` "
                              "on line %d); this block's shortcut has no weights", v[K_INIT].line ? "init" : "trainable",
                              spec->layers[l->block].line);
    }
    return 0;
}

static int apply_compile(parser *P, value *v, int line)
{
    cv_model_spec *spec = P->spec;
    if (parse_keras_sgd(P, v)) return -1;
    const cv_optim_kind kind = v[K_OPTIMIZER].line ? (cv_optim_kind)v[K_OPTIMIZER].choice
                                                   : CV_OPT_RMSPROP; /* Keras's default */
    /* a hyper-parameter of another optimizer is almost always a forgotten optimizer= */
    for (int k = 0; k < K_COUNT; k++) {
        if (!v[k].line || !parse_keys[k].optims || (parse_keys[k].optims & OPT(kind))) continue;
        key_set own = 0;
        for (int j = 0; j < K_COUNT; j++)
            if (parse_keys[j].optims & OPT(kind)) own |= B(j);
        char list[256];
        parse_key_list(own, 0, list, sizeof list);
        return parse_fail(P, v[k].line, "%s does not apply to optimizer %s (it takes learning_rate%s%s)",
                    parse_keys[k].name, cv_optim_name(kind), own ? ", " : "", list);
    }
    if (v[K_VARIANT].line && v[K_NESTEROV].line)
        return parse_fail(P, v[K_NESTEROV].line, "give either variant= or nesterov=, not both");
    if (v[K_DELTA].line && (!v[K_LOSS].line || v[K_LOSS].choice != CV_LOSS_HUBER))
        return parse_fail(P, v[K_DELTA].line, "delta= applies only to loss=huber");
    if (v[K_FROM_LOGITS].line && (!v[K_LOSS].line || !cv_loss_fused((cv_loss_kind)v[K_LOSS].choice)))
        return parse_fail(P, v[K_FROM_LOGITS].line, "from_logits= applies only to the cross-entropies (binary_crossentropy, "
                          "categorical_crossentropy, sparse_categorical_crossentropy)");

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
    spec->loss.from_logits = v[K_FROM_LOGITS].line && v[K_FROM_LOGITS].b;
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
            return parse_fail(P, v[k].line, "%s= applies only to %s=%s (the schedule is %s)",
                        parse_keys[k].name, parse_keys[need].name, list, cv_sched_name(have));
        }
        if (!v[need].line || v[need].i == 0)
            return parse_fail(P, v[k].line, "%s= needs %s=N with N > 0 (that callback is off "
                        "without it)", parse_keys[k].name, parse_keys[need].name);
    }
    return 0;
}

static int apply_augment(parser *P, const value *v, int line)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers > 0 && spec->layers[0].shape.rank != 3)
        return parse_fail(P, line, "augment needs image input (shape=H,W,C); the input on line %d is not",
                    spec->layers[0].line);
    cv_augment_config *a = &spec->augment;
    if (v[K_ROTATION].line) a->rotation_range = (float)v[K_ROTATION].f;
    if (v[K_WIDTH_SHIFT].line) a->width_shift_range = (float)v[K_WIDTH_SHIFT].f;
    if (v[K_HEIGHT_SHIFT].line) a->height_shift_range = (float)v[K_HEIGHT_SHIFT].f;
    if (v[K_SHEAR].line) a->shear_range = (float)v[K_SHEAR].f;
    const value *z = &v[K_ZOOM];
    const bool pair = z->i == 2;
    if (z->line && !pair && z->f >= 1) /* a scalar z is the range [1 - z, 1 + z] */
        return parse_fail(P, z->line, "zoom_range=%g would allow zoom factors <= 0 (a single value must be < 1)", z->f);
    if (z->line && pair && z->f <= 0)
        return parse_fail(P, z->line, "zoom_range lower bound %g must be > 0", z->f);
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

/* class_weight=balanced, C:W,C:W,... (classes 0..CV_MAX_CLASS_WEIGHTS-1, weights finite >= 0), or
 * W0,W1,... (a weight for every class from 0, in order) */
static int parse_class_weight(parser *P, const value *v, cv_fit_config *f)
{
    const char *s = v->s;
    f->class_weight_line = v->line;
    if (strcmp(s, "balanced") == 0) {
        f->class_weight_balanced = true;
        return 0;
    }
    for (int c = 0; c < CV_MAX_CLASS_WEIGHTS; c++) f->class_weight[c] = 1.0f;
    bool seen[CV_MAX_CLASS_WEIGHTS] = {false};
    const bool listed = !strchr(s, ':');
    for (long next = 0; *s; next++) {
        char *end;
        errno = 0;
        long c = next;
        if (listed) {
            if (next == CV_MAX_CLASS_WEIGHTS)
                return parse_fail(P, v->line, "class_weight: more than %d weights", CV_MAX_CLASS_WEIGHTS);
            end = (char *)s - 1; /* the weight starts at s */
        } else {
            c = strtol(s, &end, 10);
        }
        if (!listed && (end == s || *end != ':' || c < 0 || c >= CV_MAX_CLASS_WEIGHTS || errno))
        if (end == s || *end != ':' || c < 0 || c >= CV_MAX_CLASS_WEIGHTS || errno)
            return parse_fail(P, v->line, "class_weight: expected balanced, CLASS:WEIGHT,... with classes 0..%d, "
                              "or WEIGHT,... for classes 0, 1, ...; got '%s'", CV_MAX_CLASS_WEIGHTS - 1, v->s);
        s = end + 1;
        const double w = strtod(s, &end);
        if (end == s || (*end && *end != ',') || !isfinite(w) || w < 0)
            return parse_fail(P, v->line, "class_weight: class %ld needs a finite weight >= 0, got '%s'", c, v->s);
        if (seen[c]) return parse_fail(P, v->line, "class_weight: class %ld is given twice", c);
        seen[c] = true;
        f->class_weight[c] = (float)w;
        if (c + 1 > f->n_class_weight) f->n_class_weight = (int)c + 1;
        s = *end ? end + 1 : end;
    }
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
    if (v[K_PRECISION].line) f->precision = (cv_precision)v[K_PRECISION].choice, f->precision_line = v[K_PRECISION].line;
    if (v[K_VERBOSE].line) f->silent = v[K_VERBOSE].choice == 0, f->plain = v[K_VERBOSE].choice == 2;
    if (v[K_CLASS_WEIGHT].line && parse_class_weight(P, &v[K_CLASS_WEIGHT], f)) return -1;
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
        snprintf(c->monitor, sizeof c->monitor, "%s", parse_monitor_names[v[K_MONITOR].choice]);
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
        return parse_fail(P, st->line, "checkpoint path too long (at most %zu characters)", sizeof path - 1);
    spec->base.line = spec->base.last_line = st->line;
    for (int t = 0; t < st->n; t++)
        if (st->tok[t].line > spec->base.last_line) spec->base.last_line = st->tok[t].line;
    const int trainable = v[K_TRAINABLE].line ? v[K_TRAINABLE].b : -1;
    cv_err e;
    if (cv_model_base_take(spec, path, v[K_UPTO].line ? (int)v[K_UPTO].i : 0, trainable, P->rd, &e))
        return parse_fail(P, st->line, "%s", e.msg);
    return 0;
}

/* Keras's input_shape= (or input_dim=, a Dense's) on the first layer stands for the input layer
 * before it; on an input line it is shape=. Either is written out as an `input shape=` line. */
static int keras_input(parser *P, stmt *st, const keyword_desc *kw)
{
    for (int t = 0; t < st->n; t++) {
        token *tok = &st->tok[t];
        const bool dim = tok->val && strcmp(tok->key, "input_dim") == 0;
        if (!tok->val || (!dim && strcmp(tok->key, "input_shape") != 0)) continue;
        if (dim && strchr(tok->val, ','))
            return parse_fail(P, tok->line, "input_dim= is the number of features (one number); for images "
                              "write input_shape=H,W,C");
        if (kw->kind == CV_LAYER_INPUT) { /* InputLayer input_shape=(28,28,1) */
            if (parse_edit(P, parse_offset(P, tok->key), parse_offset(P, tok->key) + (int64_t)strlen(tok->key), "shape"))
                return -1;
            tok->key = (char *)parse_keys[K_SHAPE].name;
            continue;
        }
        if (P->spec->base.upto)
            return parse_fail(P, tok->line, "no %s= with `base`: the input comes from the base model (line %d)",
                              tok->key, P->spec->base.line);
        if (P->spec->n_layers)
            return parse_fail(P, tok->line, "%s= belongs to the model's first layer (as in Keras's Sequential); "
                              "this model's input is line %d", tok->key, P->spec->layers[0].line);
        if (strncmp(tok->val, "hp.", 3) == 0)
            return parse_fail(P, tok->line, "%s= takes no hyperparameter", tok->key);
        char buf[CANON_MAX], line[CANON_MAX + 32];
        const char *s = parse_unwrap(tok->val, true, buf, sizeof buf);
        value vals[K_COUNT] = {{0}};
        keyword_desc input;
        if (!s) return parse_fail(P, tok->line, "%s= value too long", tok->key);
        if (parse_value(P, &parse_keys[K_SHAPE], s, tok->line, &vals[K_SHAPE], NULL)) return -1;
        vals[K_SHAPE].line = tok->line;
        parse_find_keyword("input", &input);
        if (apply_layer(P, &input, vals, st->line)) return -1;
        /* the new line goes where the statement's line starts (after a byte-order mark) */
        const char *text = P->spec->text;
        int64_t at = parse_offset(P, st->word);
        while (at > 0 && text[at - 1] != '\n' && text[at - 1] != '\r') at--;
        if (at == 0 && strncmp(text, UTF8_BOM, 3) == 0) at = 3;
        snprintf(line, sizeof line, "input shape=%s\n", s);
        if (parse_edit(P, at, at, line) || parse_drop_token(P, tok->key, tok->val)) return -1;
        memmove(tok, tok + 1, (size_t)(st->n - t - 1) * sizeof *tok);
        st->n--, t--;
    }
    return 0;
}

/* A keyword convoy does not know: a Keras layer it lacks, a typo, or neither. */
static int unknown_keyword(const parser *P, const stmt *st)
{
    char list[256], near[96];
    const char *keras, *instead;
    parse_keyword_list(list, sizeof list);
    if (parse_keras_missing(W_LAYER, st->word, &keras, &instead)) {
        if (instead) return parse_fail(P, st->line, "unknown layer '%s': Keras's %s layer is %s in convoy", st->word, keras, instead);
        return parse_fail(P, st->line, "unknown layer '%s': Keras's %s is not in convoy (convoy has %s)", st->word, keras, list);
    }
    if (*parse_keyword_suggest(st->word, near, sizeof near))
        return parse_fail(P, st->line, "unknown layer '%s'%s", st->word, near);
    return parse_fail(P, st->line, "unknown layer '%s' (expected one of %s)", st->word, list);
}

static int process(parser *P, stmt *st)
{
    keyword_desc found;
    const keyword_desc *kw = &found;
    if (!parse_find_keyword(st->word, &found)) return unknown_keyword(P, st);
    /* Keras's spelling (Conv2D) is written out as convoy's (conv2d) */
    if (strcmp(st->word, kw->name) != 0 &&
        parse_edit(P, parse_offset(P, st->word), parse_offset(P, st->word) + (int64_t)strlen(st->word), kw->name))
        return -1;
    /* input (or base, which brings the input) comes first and once; the statements after it
     * may come in any order */
    const bool is_input = kw->role == S_LAYER && kw->kind == CV_LAYER_INPUT;
    if (kw->role == S_BASE && P->first_line)
        return parse_fail(P, st->line, "base must be the first statement (line %d has `%s` before it)",
                    P->first_line, P->first_word);
    if (is_input && P->first_line && strcmp(P->first_word, "base") == 0)
        return parse_fail(P, st->line, "no input line with `base`: the input comes from the base model "
                    "(line %d)", P->first_line);
    if (is_input && P->first_line) {
        if (strcmp(P->first_word, "input") == 0)
            return parse_fail(P, st->line, "a second input layer (the first is on line %d)",
                        P->first_line);
        return parse_fail(P, st->line, "input must be the first layer (line %d has `%s` before it)",
                    P->first_line, P->first_word);
    }
    if (!P->first_line) {
        P->first_line = st->line;
        P->first_word = kw->name;
    }
    if (kw->role != S_LAYER) {
        if (P->role_line[kw->role])
            return parse_fail(P, st->line, "a second `%s` line (the first is line %d)", kw->name,
                        P->role_line[kw->role]);
        P->role_line[kw->role] = st->line;
    }

    if (P->augment_only && kw->role != S_AUGMENT)
        return parse_fail(P, st->line, "`%s` in an augment file (it holds only an `augment` line; layers need a model file)",
                    st->word);
    value vals[K_COUNT];
    if (kw->role == S_LAYER && keras_input(P, st, kw)) return -1;
    if (parse_collect(P, kw, st, vals)) return -1;
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
        return parse_fail(P, line, "too many keys for `%s` (at most %d)", st->word, MAX_TOKENS);
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
    if (strncmp(buf, UTF8_BOM, 3) == 0) buf += 3; /* an editor's byte-order mark is not part of `input` */
    for (char *p = buf; *p; line++) {
        /* a line ends at LF, CRLF or a lone CR (old Mac files) */
        char *eol = p + strcspn(p, "\r\n");
        char *next = *eol == '\0' ? eol : eol + (eol[0] == '\r' && eol[1] == '\n' ? 2 : 1);
        *eol = '\0';
        char *hash = strchr(p, '#');
        if (hash) *hash = '\0';

        char *tok = next_token(&p);
        if (tok && strchr(tok, '=')) {
            if (!open)
                return parse_fail(P, line, "`%s` continues a statement, but there is none before it",
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

/* compile's metrics against the output layer: auc is a binary classifier's (1 output), top-k
 * accuracy needs classes to rank, and the per-class counts have room for CV_METRIC_MAX_CLASSES */
static int check_metrics(const parser *P, const cv_layer_spec *last)
{
    const cv_model_spec *spec = P->spec;
    const unsigned mm = spec->loss.metrics;
    const int K = (int)cv_shape_size(last->out);
    if ((mm & CV_METRIC_AUC) && K != 1)
        return parse_fail(P, spec->optim_line, "metrics=auc needs a binary classifier (1 sigmoid output), but the "
                          "output layer (line %d) has %d outputs; for classes use precision, recall or f1",
                          last->line, K);
    for (int i = 0; i < CV_METRIC_KINDS; i++)
        if ((mm & CV_METRIC_TOP_KS & (1u << i)) && K == 1)
            return parse_fail(P, spec->optim_line, "metrics=%s needs a model with one output per class, but the output "
                              "layer (line %d) has 1 output (a binary classifier: use accuracy or auc)",
                              cv_metric_name(i), last->line);
    for (int i = 0; i < CV_METRIC_KINDS; i++)
        if ((mm & CV_METRIC_PER_CLASS & (1u << i)) && K > CV_METRIC_MAX_CLASSES)
            return parse_fail(P, spec->optim_line, "metrics=%s counts at most %d classes, but the output layer "
                              "(line %d) has %d outputs", cv_metric_name(i), CV_METRIC_MAX_CLASSES, last->line, K);
    return 0;
}

/* Model-level checks once every line is read: input present, shapes, compile, loss vs output. */
static int finish(parser *P)
{
    cv_model_spec *spec = P->spec;
    if (spec->n_layers == 0 || spec->layers[0].kind != CV_LAYER_INPUT)
        return parse_fail(P, P->first_line ? P->first_line : 1,
                    "missing input layer (a model starts with `input shape=H,W,C` or "
                    "`input shape=D`)");
    if (spec->n_layers == 1)
        return parse_fail(P, spec->layers[0].line, "the model has no layers after `input`");
    if (P->n_open)
        return parse_fail(P, spec->layers[P->open[P->n_open - 1]].line, "this residual block has no `end`");
    /* (a base cut inside a block: its residual's end is not in the model) */
    for (int i = 1; i < spec->n_layers; i++) {
        if (spec->layers[i].kind != CV_LAYER_RESIDUAL) continue;
        bool closed = false;
        for (int j = i + 1; j < spec->n_layers; j++) closed |= spec->layers[j].kind == CV_LAYER_END && spec->layers[j].block == i;
        if (!closed) return parse_fail(P, spec->layers[i].line, "this residual block has no `end` in the model");
    }
    const int upto = spec->base.upto;
    for (int i = 0; i < spec->n_layers; i++) {
        if (i > 0) spec->layers[i].in = spec->layers[i - 1].out;
        if (spec->layers[i].kind == CV_LAYER_END) spec->layers[i].skip = spec->layers[spec->layers[i].block].in;
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
            return parse_fail(P, spec->base.fine_tune_line, "%s", e.msg);
    }
    const cv_layer_spec *last = &spec->layers[spec->n_layers - 1];
    if (last->out.rank != 1)
        return parse_fail(P, last->line, "the output must be flat, but %s gives (%d, %d, %d); add "
                    "`flatten` (and a `dense` layer) after line %d", cv_layer_kind_name(last->kind),
                    last->out.d[0], last->out.d[1], last->out.d[2], last->line);
    if (!P->has_loss)
        return parse_fail(P, spec->optim_line, "missing `compile ... loss=...` (e.g. `compile "
                    "optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy`)");
    /* a monitored metric must be computed: Keras's history has only the compiled metrics */
    if (P->monitor_line) {
        const char *mon = spec->callbacks.monitor;
        const int metric = cv_monitor_metric(mon);
        if (metric >= 0 && !(spec->loss.metrics & (1u << metric)))
            return parse_fail(P, P->monitor_line, "monitor=%s needs metrics=%s in compile (line %d)",
                        mon, cv_metric_name(metric), spec->optim_line);
    }
    if (check_metrics(P, last)) return -1;

    const int classes = last->out.d[0] == 1 ? 2 : last->out.d[0];
    if (spec->fit.n_class_weight > classes)
        return parse_fail(P, spec->fit.class_weight_line, "class_weight names class %d, but the model has %d classes "
                          "(0..%d)", spec->fit.n_class_weight - 1, classes, classes - 1);
    /* the cross-entropies are fused with their output activation (see loss.h), or with
     * from_logits take a linear output's logits */
    const cv_loss_kind loss = spec->loss.kind;
    if (spec->loss.from_logits) {
        if (cv_layer_act(last) == CV_ACT_LINEAR) return 0;
        return parse_fail(P, spec->optim_line, "from_logits=true needs a linear output layer, the logits (last layer is %s "
                          "with activation=%s, line %d)", cv_layer_kind_name(last->kind), cv_act_name(last->act), last->line);
    }
    const cv_act need = loss == CV_LOSS_BINARY_CE ? CV_ACT_SIGMOID
                        : loss == CV_LOSS_SPARSE_CE || loss == CV_LOSS_CATEGORICAL_CE
                            ? CV_ACT_SOFTMAX
                            : CV_ACT_LINEAR;
    if (need == CV_ACT_LINEAR) return 0;
    const bool has_act = (cv_layer_kinds[last->kind]->flags & CV_KIND_ACT) != 0;
    if (has_act && last->act == need) return 0;
    char what[96];
    if (has_act)
        snprintf(what, sizeof what, "%s with activation=%s", cv_layer_kind_name(last->kind),
                 cv_act_name(last->act));
    else
        snprintf(what, sizeof what, "%s", cv_layer_kind_name(last->kind));
    return parse_fail(P, spec->optim_line, "%s needs a %s output layer (last layer is %s, line %d)",
                cv_loss_name(loss), cv_act_name(need), what, last->line);
}

static int parse_text(cv_model_spec *spec, const char *text, const char *file, bool augment_only,
                      const cv_base_reader *rd, cv_err *err)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->file, sizeof spec->file, "%s", file ? file : "<model>");
    spec->optim = cv_optim_defaults(CV_OPT_RMSPROP);
    spec->loss.huber_delta = 1.0f;
    spec->fit = (cv_fit_config){.epochs = 1, .batch_size = 32, .seed = 42, .shuffle = true};
    spec->callbacks = cv_callbacks_defaults();
    spec->augment = cv_augment_defaults();
    /* messages use the full name even if spec->file had to truncate it */
    parser P = {.spec = spec, .file = file ? file : "<model>", .err = err, .augment_only = augment_only,
                .rd = rd};
    if (!text) return parse_fail(&P, 0, "no model text");

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
        if (rc == 0) rc = parse_canonical_text(&P);
    }
    parse_edits_free(&P);
    free(work); /* statements point into it; nothing survives the parse */
    if (rc) cv_model_spec_free(spec);
    return rc;
}

int cv_model_parse_with(cv_model_spec *spec, const char *text, const char *file, const cv_base_reader *rd,
                        cv_err *err)
{
    return parse_text(spec, text, file, false, rd, err);
}

/* Whether the first statement of text (comments and blank lines skipped) is `word`. */
static bool first_word_is(const char *text, const char *word)
{
    const size_t n = strlen(word);
    for (const char *p = strncmp(text, UTF8_BOM, 3) == 0 ? text + 3 : text; *p;) {
        p += strspn(p, " \t\r\n\v\f");
        if (*p == '#') {
            p += strcspn(p, "\r\n");
            continue;
        }
        return strncmp(p, word, n) == 0 && (p[n] == '\0' || strchr(" \t\r\n\v\f#", p[n]));
    }
    return false;
}

static int load_text(cv_model_spec *spec, const char *path, bool augment_file, const cv_base_reader *rd,
                     cv_err *err)
{
    memset(spec, 0, sizeof *spec);
    char *buf;
    size_t n;
    int rc = cv_read_text_file(path, CV_TEXT_FILE_MAX, augment_file ? "model or augment file" : "model file", &buf, &n,
                               err);
    if (rc == 0) {
        rc = memchr(buf, '\0', n)
                 ? cv_errf(err, "%s: cannot read: not a text file (it contains NUL bytes)", path)
                 : parse_text(spec, buf, path, augment_file && first_word_is(buf, "augment"), rd, err);
    }
    free(buf);
    return rc;
}

int cv_model_load_with(cv_model_spec *spec, const char *path, const cv_base_reader *rd, cv_err *err)
{
    return load_text(spec, path, false, rd, err);
}

int cv_augment_file_load_with(cv_model_spec *spec, const char *path, const cv_base_reader *rd, cv_err *err)
{
    if (load_text(spec, path, true, rd, err)) return -1;
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
