/* Private to the convoy program: flag tables and the subcommands. Commands return an exit
 * code (0 ok, 1 bad input or usage, 2 internal error) and print their own errors. */
#ifndef CONVOY_CLI_H
#define CONVOY_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "convoy/dist.h"

enum { CLI_OK = 0, CLI_BAD_INPUT = 1, CLI_INTERNAL = 2 };

/** One flag: `--name VALUE` stores VALUE in *value; a flag without arg_name sets *on. */
typedef struct {
    const char *name;
    const char *arg_name; /* NULL for a switch */
    const char *help;
    const char **value;
    bool *on;
} cli_flag;

typedef struct {
    const char *name;     /* "train" */
    const char *usage;    /* positional part, e.g. "MODEL" */
    const char *about;
    const cli_flag *flags;
    int nflags;
    int min_pos, max_pos;
} cli_command;

/** Parses argv (after the command word). Returns 0 and the positionals, 1 after printing an
 *  error, or -1 when --help was printed (exit 0). */
int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, int *npos);
void cli_usage(const cli_command *c, void *file);

/** Prints "convoy: MESSAGE" to stderr (rank 0 only, unless every rank must speak) and
 *  returns CLI_BAD_INPUT. */
int cli_fail(const cv_dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Checked number parsing for flag values: prints "convoy: --epochs: bad number 'x'". */
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
int cli_float(const char *flag, const char *s, double lo, double hi, double *out);

int cmd_train(const cv_dist *d, int argc, char **argv);
int cmd_eval(const cv_dist *d, int argc, char **argv);
int cmd_predict(const cv_dist *d, int argc, char **argv);
int cmd_summary(const cv_dist *d, int argc, char **argv);
int cmd_convert(const cv_dist *d, int argc, char **argv);
int cmd_bench(const cv_dist *d, int argc, char **argv);
int cmd_augment(const cv_dist *d, int argc, char **argv);

/** Set by SIGTERM/SIGINT: training saves a checkpoint after the current step and exits 0. */
extern volatile sig_atomic_t cli_stop_requested;

/** --threads T for OpenMP (T >= 1); NULL leaves the default (OMP_NUM_THREADS). */
int cli_threads(const char *value);

#endif
