/* Module core (its preamble: convoy/error.h). Words as users type them: a comparison blind to case
 * and underscores (Keras's class and function names, `GlorotUniform` = `glorot_uniform`), and the
 * nearest of a list of known words to a misspelt one, for "did you mean ...?" messages. */
#ifndef CONVOY_WORDS_H
#define CONVOY_WORDS_H

#include <stdbool.h>

/** Whether a and b are the same word up to letter case and underscores ("MaxPooling2D",
 *  "max_pooling2d"). */
bool cv_word_loose_eq(const char *a, const char *b);

/** The optimal-string-alignment distance between a and b, letter case ignored: insertions,
 *  deletions, substitutions and swaps of two neighbours cost 1 each. Words longer than 63
 *  characters count as far from everything (64). */
int cv_word_distance(const char *a, const char *b);

/** The word of cands[0..n) nearest to word, or NULL when none is near enough to be a likely typo:
 *  at most 2 edits and at most a third of word's length (1 edit for words of up to 5 letters).
 *  Ties go to the earliest candidate; NULL entries are skipped. */
const char *cv_word_nearest(const char *word, const char *const *cands, int n);

#endif
