/* Private to model/: what the parser's two files share. parse-keys.c owns the tables of keys and
 * keywords and reads a statement's values; parse.c owns the grammar (lines, tokens, statements)
 * and applies each statement's values to the spec. Nothing outside model/ includes it. */
#ifndef CONVOY_MODEL_PARSE_IMPL_H
#define CONVOY_MODEL_PARSE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convoy/model.h"

typedef enum {
    /* a layer line's keys are the layers module's (cv_layer_key), with the same numbers: a kind's
     * key bits are the parser's */
    K_SHAPE = CV_KEY_SHAPE, K_NORMALIZE = CV_KEY_NORMALIZE, K_FILTERS = CV_KEY_FILTERS,
    K_KERNEL = CV_KEY_KERNEL, K_STRIDE = CV_KEY_STRIDE, K_PADDING = CV_KEY_PADDING,
    K_PAD_MODE = CV_KEY_PAD_MODE, K_ACTIVATION = CV_KEY_ACTIVATION, K_ALPHA = CV_KEY_ALPHA,
    K_INIT = CV_KEY_INIT, K_USE_BIAS = CV_KEY_USE_BIAS, K_TRAINABLE = CV_KEY_TRAINABLE,
    K_POOL = CV_KEY_POOL, K_UNITS = CV_KEY_UNITS, K_RATE = CV_KEY_RATE, K_BN_MOMENTUM = CV_KEY_BN_MOMENTUM,
    K_BN_EPSILON = CV_KEY_BN_EPSILON, K_CENTER = CV_KEY_CENTER, K_SCALE = CV_KEY_SCALE, K_SHORTCUT = CV_KEY_SHORTCUT,
    K_OPTIMIZER = CV_LAYER_KEY_COUNT, K_LR, K_LOSS, K_METRICS, K_MOMENTUM, K_VARIANT, K_NESTEROV, K_RHO, K_BETA1,
    K_BETA2, K_EPSILON, K_INIT_ACC, K_DELTA, K_FROM_LOGITS,
    K_EPOCHS, K_BATCH_SIZE, K_VAL_SPLIT, K_SEED, K_SHUFFLE,
    K_SCHEDULE, K_DECAY_RATE, K_DECAY_STEPS, K_DROP_EVERY, K_COSINE_ALPHA, K_WARMUP, K_MONITOR,
    K_ES_PATIENCE, K_MIN_DELTA, K_RESTORE_BEST, K_PLATEAU_PATIENCE, K_PLATEAU_FACTOR,
    K_PLATEAU_MIN_DELTA, K_PLATEAU_COOLDOWN, K_MIN_LR, K_SAVE_BEST, K_STOP_ON_NAN,
    K_ROTATION, K_WIDTH_SHIFT, K_HEIGHT_SHIFT, K_SHEAR, K_ZOOM, K_HFLIP, K_VFLIP, K_BRIGHTNESS,
    K_NOISE, K_FILL_MODE, K_CVAL,
    K_CHECKPOINT, K_UPTO, K_FINE_TUNE_LAST, K_CLASS_WEIGHT, K_VERBOSE, K_PRECISION,
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
    V_KERNEL,  /* K or KH,KW (kernel, stride, pool): ints[0..2) */
    V_PADDING, /* same | valid | P | PH,PW | T,B,L,R: choice 1 same, else ints[0..4) */
    V_PAIR,    /* lo,hi */
    V_SPAN,    /* a number, or lo,hi */
    V_PATH,    /* a file name */
} value_type;

typedef enum { R_ANY, R_POS, R_NONNEG, R_UNIT, R_OPEN_UNIT } value_range;

/* Names of a V_CHOICE/V_CHOICES list by index. */
typedef const char *(*choice_fn)(int);

#define OPT(k) (1u << (k))
typedef struct {
    const char *name;
    const char *alias;  /* a second spelling (Keras's), or NULL: parses, written out as name */
    value_type type;
    value_range range;
    choice_fn choice;   /* V_CHOICE, V_CHOICES */
    int n_choices;
    unsigned optims;    /* compile keys: OPT() of the optimizers they tune; 0 = any */
} key_desc;

typedef enum { S_LAYER, S_COMPILE, S_FIT, S_AUGMENT, S_BASE, S_ROLE_COUNT } stmt_role;

/* A set of keys, one bit per key_id (unsigned __int128: a GNU C extension of GCC and Clang). */
__extension__ typedef unsigned __int128 key_set;
#define B(k) ((key_set)1 << (k))
_Static_assert(K_COUNT <= 128, "a keyword's keys are a 128-bit set");

typedef struct {
    const char *name;
    stmt_role role;
    cv_layer_kind kind; /* S_LAYER only */
    key_set allowed, required;
    key_set bare;       /* B(the key) a bare word after the keyword gives (`activation relu`); 0: none */
} keyword_desc;

/* ---- parser state ------------------------------------------------------------------------ */

/* Bytes [start, end) of the text become repl (an insertion when start == end). */
typedef struct {
    int64_t start, end;
    char *repl;
    int seq; /* the order edits at one place were made in */
} text_edit;

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
    const char *raw, *key_raw; /* the value and its key as written (in the parse buffer) */
    long long i;
    double f, f2; /* a number, or lo,hi */
    bool b;
    const char *s; /* V_PATH: points into the parse buffer */
    int choice;
    unsigned bits;
    cv_shape shape;
    int ints[4];
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
    const cv_base_reader *rd;  /* reads a base line's checkpoint; NULL: none */
    int open[CV_MAX_LAYERS];   /* the residual layers whose block has no end yet, innermost last */
    int n_open;
    text_edit *edits;          /* what turns the text into its canonical spelling (parse-keras.c) */
    int n_edits, cap_edits, edit_seq;
} parser;

/* ---- parse-keys.c ------------------------------------------------------------------------- */

extern const key_desc parse_keys[K_COUNT];
/** The statement keyword word: a layer kind's (from its descriptor) or compile, fit, augment,
 *  base. False if there is none. */
bool parse_find_keyword(const char *word, keyword_desc *kw);
/** ": did you mean 'X'?" for the keyword (or Keras layer name) nearest to word, else "". */
const char *parse_keyword_suggest(const char *word, char *buf, size_t size);
/** "input, conv2d, ..., base": every keyword, for messages. */
const char *parse_keyword_list(char *buf, size_t size);
/** monitor= choices: "loss", the metrics' names (cv_metric_name), then the val_ of each. */
#define PARSE_MONITORS (2 * (1 + CV_METRIC_KINDS))
extern const char *const parse_monitor_names[PARSE_MONITORS];

/** "FILE:LINE: message" (or "FILE: message" for line 0) into the parser's error; returns -1. */
int parse_fail(const parser *P, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Whole-string conversions (also hp.c's): "3x", "", "3.5" (for ints), "nan" and overflow are
 *  rejected. */
bool parse_whole_ll(const char *s, long long *out);
bool parse_whole_double(const char *s, double *out);
/** The key named name (or its alias): the one in allowed where two keys share a name; -1 if none. */
int parse_find_key(const char *name, key_set allowed);
/** "a, b, c" for the keys in mask: those in first (the required ones), then table order. */
const char *parse_key_list(key_set mask, key_set first, char *buf, size_t size);
/** The value s (quotes and Python brackets already unwrapped) of key k; canon (CANON_MAX bytes,
 *  or NULL) receives its canonical text where that can differ from s (a choice's own name, true
 *  or false). */
#define CANON_MAX 1024
int parse_value(const parser *P, const key_desc *k, const char *s, int line, value *v, char *canon);
/** Checks every key=value of a statement against its keyword and parses the values; a key or
 *  value spelt otherwise than its canonical way gets the edit that writes that way. */
int parse_collect(parser *P, const keyword_desc *kw, const stmt *st, value vals[K_COUNT]);

/* ---- parse-keras.c: Keras's spellings and the canonical text ------------------------------ */

/** The choice of key k's list that Keras's word stands for (mean_squared_error for mse, None for
 *  linear); -1 if none. Matched without regard to case and underscores. */
int parse_value_alias(key_id k, const char *word);
/** The alias words of key k's list, for suggestions: fills out[0..max) and returns the count. */
int parse_value_alias_words(key_id k, const char **out, int max);
/** Whether word is a Keras word convoy lacks, where what is W_LAYER (a statement keyword),
 *  W_KEY, or the key_id whose list it would be a value of; then *keras receives Keras's spelling
 *  of it and *instead what to write instead (NULL: nothing to write, only what convoy has). */
enum { W_LAYER = -1, W_KEY = -2 };
bool parse_keras_missing(int what, const char *word, const char **keras, const char **instead);
/** A Keras key whose only meaning convoy always has (bias_initializer=zeros, data_format=
 *  channels_last ...): 1 when tok is one (its edit drops it from the text), 0 when it is not
 *  such a key for this keyword, -1 (error) when its value asks for what convoy lacks. */
int parse_keras_neutral(parser *P, const keyword_desc *kw, const token *tok);
/** compile's Keras SGD(momentum, nesterov) as convoy's momentum optimizer (in place in v, with
 *  its canonical text); 0 or -1. */
int parse_keras_sgd(parser *P, value *v);
/** s without the Python around it: one pair of quotes ('relu', "same"), and for list values
 *  (list: true) every bracket, quote and a trailing comma ((28,28,1), (784,), [accuracy]).
 *  Returns s itself when there is nothing to take off, else buf (NULL if it does not fit). */
const char *parse_unwrap(const char *s, bool list, char *buf, size_t size);
/** ": did you mean 'X'?" for the nearest of cands[0..n) to word, else "". */
const char *parse_suggest(const char *word, const char *const *cands, int n, char *buf, size_t size);

/** Records that bytes [start, end) of the text (offsets into it) read repl in the canonical
 *  text. An edit of the same bytes made before is replaced. */
int parse_edit(parser *P, int64_t start, int64_t end, const char *repl);
/** Where p (a pointer into the parse buffer) is in the text. */
int64_t parse_offset(const parser *P, const char *p);
/** Removes the token key=value starting at key (in the parse buffer), and the blanks before it. */
int parse_drop_token(parser *P, const char *key, const char *val);
/** Applies the edits to spec->text (hp sites moved with it); frees them. */
int parse_canonical_text(parser *P);
void parse_edits_free(parser *P);

#endif
