/* Module model (its preamble: convoy/model.h). The model file's grammar as data, read from the
 * parser's own tables (the layer kinds' descriptors and the key table), so that a reference
 * written from it (the manual page convoy-model(5)) names exactly the keywords and keys the
 * parser takes. */
#ifndef CONVOY_GRAMMAR_H
#define CONVOY_GRAMMAR_H

#include <stdbool.h>

enum { CV_GRAMMAR_MAX_KEYS = 48, CV_GRAMMAR_VALUE = 320 };

typedef struct {
    const char *name;             /* "filters" */
    const char *alias;            /* a second spelling ("lr"), or NULL */
    bool required;
    char value[CV_GRAMMAR_VALUE]; /* what it takes: "an integer > 0", "same | valid | ...", with
                                     the optimizers a compile key applies to */
} cv_grammar_key;

typedef struct {
    const char *keyword;     /* "conv2d", "compile", ... */
    const char *role;        /* "layer", "compile", "fit", "augment" or "base" */
    const char *keras_class; /* a layer's Keras class ("Conv2D"), else NULL */
    const char *bare_key;    /* the key a bare word after the keyword sets (`activation relu`), or NULL */
    int nkeys;
    cv_grammar_key keys[CV_GRAMMAR_MAX_KEYS]; /* in the key table's order */
} cv_grammar_statement;

/** The number of statement keywords: the layer kinds, then compile, fit, augment and base. */
int cv_grammar_count(void);
/** Statement i (0 <= i < cv_grammar_count()) into *st. Returns 0, or -1 for an i out of range. */
int cv_grammar_statement_at(int i, cv_grammar_statement *st);

#endif
