/* Module io (its preamble: convoy/image.h). Paths as files: whether two paths name one file,
 * outputs that would write over an input, the regular-file check every input gets before it is
 * opened (a FIFO would block, /dev/zero never end), and bounded reads of text files. */
#ifndef CONVOY_FILES_H
#define CONVOY_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "convoy/error.h"

/* the most a model file or an augment file may hold (docs/cli.md) */
#define CV_TEXT_FILE_MAX ((size_t)16 << 20)

/** Whether a and b both exist and are one file (device and inode after symlinks, any spelling). */
bool cv_same_file(const char *a, const char *b);

/** A path and the flag (or word) that names it in messages: {"--data", "data/train.h5"}. */
typedef struct {
    const char *flag;
    const char *path; /* NULL: not given, skipped */
} cv_path_role;

/** Refuses, before anything is written, an output that is one of the inputs (same file, any
 *  name: "--checkpoint d.h5 is also the --data file; choose another path") or that two outputs
 *  are one path (same name, or one existing file). An output that does not exist yet cannot be
 *  an input. Returns 0 or -1 with the error. */
int cv_check_outputs(const cv_path_role *outs, int nout, const cv_path_role *ins, int nin, cv_err *err);

/** "PATH: not a regular file" for an existing path that is a FIFO, a device, a socket or a
 *  directory; 0 for a regular file and for a path that does not exist (its open says so). */
int cv_require_regular(const char *path, cv_err *err);

/** Reads the regular file path whole into *text (malloc'd, NUL-terminated, *n bytes), refusing
 *  other files and files of more than max bytes ("F: 17 MB, more than the 16 MB a model file
 *  may have"); what names the kind of file in that message. A signal interrupting the read
 *  stops it with an error. */
int cv_read_text_file(const char *path, size_t max, const char *what, char **text, size_t *n, cv_err *err);

#endif
