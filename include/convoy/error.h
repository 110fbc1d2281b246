/* Module core (src/core/). Owns errors (this header), counter-based randomness (rng.h), timers (timer.h), per-sample shapes (tensor.h), the version (version.h) and word comparisons for aliases and suggestions (words.h).
 * May call: nothing.
 * Must not be called by: none: every module may call it.
 *
 * convoy error reporting: library functions never exit; they return a status and fill a cv_err
 * whose message is one line, already naming the file and place (FILE:LINE or FILE:/dataset). */
#ifndef CONVOY_ERROR_H
#define CONVOY_ERROR_H

#include <stddef.h>

#define CV_ERR_MSG 512

/** One error message. Functions taking a `cv_err *` return 0 on success and -1 on failure;
 *  on failure `msg` holds the reason (without the leading "convoy: "). NULL is allowed. */
typedef struct {
    char msg[CV_ERR_MSG];
} cv_err;

/** printf-style: writes the message into err (if not NULL) and returns -1. */
int cv_errf(cv_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** malloc/calloc that report "out of memory" with what was asked for; NULL on failure. */
void *cv_malloc(size_t bytes, const char *what, cv_err *err);
void *cv_calloc(size_t count, size_t size, const char *what, cv_err *err);

#endif
