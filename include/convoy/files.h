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

/** Whether path exists and lies inside the directory dir (at any depth, after symlinks and
 *  "..": the names realpath(3) gives). */
bool cv_path_inside(const char *path, const char *dir);

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

/** An advisory lock a run holds on one of its outputs (a checkpoint) for as long as it runs. */
typedef struct {
    bool held;
    int fd;
    char path[4096]; /* the lock file: the output's path + ".lock" */
} cv_file_lock;

/** Takes an exclusive flock(2) on path + ".lock" (created, holding this process's pid), so a
 *  second run naming the same output is refused at its start: "F is being written by another run
 *  (pid N); choose another FLAG or wait". The kernel drops the lock when the holder dies, however
 *  it dies (SIGKILL too): a lock file a killed run leaves behind locks nothing and is taken over.
 *  Where the lock file cannot be created (no such directory, read-only) there is no lock, and 0:
 *  the output's own write reports that. Returns 0 or -1 with the error. */
int cv_lock_output(const char *path, const char *flag, cv_file_lock *lk, cv_err *err);
/** Removes the lock file and drops the lock (nothing if none is held). */
void cv_unlock_output(cv_file_lock *lk);

/** What an output path is before it is written: 0 a regular file or nothing yet, 1 a character
 *  device (/dev/null: written straight, never replaced by a rename), -1 anything else (a FIFO,
 *  which would block; a directory, a socket) with "PATH: not a regular file" in err. */
int cv_output_kind(const char *path, cv_err *err);
/** For an output written beside its path and renamed over it (checkpoints, predictions,
 *  converted datasets): "PATH: not a regular file (...)" where the path exists and is no regular
 *  file (the rename would replace /dev/null itself). Returns 0 or -1 with the error. */
int cv_check_renamed_output(const char *path, cv_err *err);
/** Writes len bytes to path as a whole: a temporary file beside it, fsync'd, renamed over it (a
 *  failure leaves the old file), or straight to a character device (/dev/null). Errors
 *  "PATH: cannot create (...)" and "PATH: cannot write (...)". Returns 0 or -1. */
int cv_write_file_atomic(const char *path, const void *data, size_t len, cv_err *err);

#endif
