/* Module cli (src/cli/). Owns the convoy program: its command line, subcommands, help and exit codes.
 * May call: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint, interop, train, tune.
 * Must not be called by: any module: nothing calls the program.
 *
 * Private to the convoy program: flag tables and the subcommands. Commands return an exit
 * code (see exit_codes in help.c: 0 ok, 1 the run failed, 2 usage error) and print their
 * own errors. */
#ifndef CONVOY_CLI_H
#define CONVOY_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "convoy/data.h"
#include "convoy/dist.h"
#include "convoy/files.h"
#include "convoy/train.h"
#include "convoy/model.h"

/* Exit codes. A usage error is a command line that cannot be right whatever the files hold
 * (unknown command or flag, missing argument, bad flag value); everything that fails later
 * (bad model file or dataset, missing file, out of memory, MPI or HDF5 failure) is 1. A run
 * stopped by SIGTERM/SIGINT/SIGUSR1 after saving its checkpoint exits 75 (EX_TEMPFAIL: run it again
 * with --resume; launch/slurm requeues on it), alone and on every rank under mpirun. */
enum { CLI_OK = 0, CLI_BAD_INPUT = 1, CLI_INTERNAL = 1 /* MPI start-up: a failed run too */, CLI_USAGE = 2,
       CLI_INTERRUPTED = 75 };

/** One flag: `--name VALUE` (or `--name=VALUE`) stores VALUE in *value; a flag without
 *  arg_name sets *on. The tables are the single source of the parser, --help, the man page and
 *  the shell completions. */
typedef struct {
    const char *name;
    const char *arg_name; /* NULL for a switch */
    const char *help;
    const char **value;
    bool *on;
} cli_flag;
/** The flag's one-letter form ('e' for --epochs: `-e 3`, `-e3`; switches bundle, `-qv`), or 0.
 *  One table in parse.c, so that a letter means the same flag in every command. */
char cli_flag_short(const cli_flag *f);

/** One subcommand of the program: main.c's table lists them; `convoy --help`, `convoy --man`
 *  and `convoy help CMD` are generated from it and from each command's own flag table. */
typedef struct {
    const char *name;
    int (*run)(const cv_dist *, int, char **);
    const char *about;    /* one line for `convoy --help` */
} cli_entry;

typedef struct {
    const char *name;     /* "train" */
    const char *usage;    /* positional part, e.g. "MODEL" */
    const char *about;
    const cli_flag *flags;
    int nflags;
    int min_pos, max_pos;
} cli_command;
#define NFLAGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/** Parses argv (after the command word) as GNU getopt_long does, without abbreviations:
 *  `--flag=value`, `--flag value`, `-c value`, `-cvalue`, bundled switches, `--` ending the
 *  flags, positionals anywhere. Returns 0 and the positionals, 1 after printing an error (a
 *  usage error: see cli_usage_fail; an unknown flag names the nearest known one), or -1 when
 *  --help was printed (exit 0). Call it first: `convoy --man` and `convoy --completion` run
 *  each command with --help to read its flag table. */
int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, int *npos);
/** While set, cli_parse hands a --help to it instead of printing (parse.c; complete.c sets it). */
extern void (*cli_describe)(const cli_command *c);
/** `convoy CMD --help`: usage line, description and every flag. */
void cli_usage(const cli_command *c, void *file);

/** Prints "convoy: MESSAGE" to stderr (rank 0 only, unless every rank must speak) and
 *  returns CLI_BAD_INPUT. */
int cli_fail(const cv_dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The same for a usage error: also records it, so the program exits CLI_USAGE (2) whatever
 *  the command returns after it. Returns CLI_USAGE. */
int cli_usage_fail(const cv_dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern bool cli_usage_error;
/** At exit (main registers it first, so it runs last): stdout flushed, and a write that failed
 *  on the way (a full disk, a closed stdout) reported as `convoy: standard output: ...` and the
 *  exit status made CLI_BAD_INPUT, as GNU tools do. */
void cli_check_stdout(void);
/** The world a usage error with no dist given prints for (rank 0 only); NULL between commands. */
void cli_fail_world(const cv_dist *d);

/** Start-up under mpirun: every rank runs its own checks (flags, files, model), and a rank that
 *  fails must not leave the others waiting in a collective. main.c opens the start-up before
 *  the command runs; from then on failure messages are kept, not printed. A command calls
 *  cli_startup_agree(d, rc) once, just before its first collective (rc: its checks' result):
 *  one allgather of every rank's code, command and message; rank 0 prints the failing ranks'
 *  messages (and "rank R failed at start-up (see its message); stopping all P ranks" when some
 *  rank was fine), and every rank gets the lowest failing rank's code (CLI_OK when none failed).
 *  main.c closes it with cli_startup_close(d, rc) for a command that returned without
 *  agreeing (a failed check, --help, or a command with no collectives), which makes the same
 *  collective. Ranks running different commands, or one rank's --help, are a usage error.
 *  A no-op in a one-rank world. */
void cli_startup_open(const cv_dist *d, const char *command);
int cli_startup_agree(const cv_dist *d, int rc);
int cli_startup_close(const cv_dist *d, int rc);

/** Every command that writes calls this before it writes anything: an output that is one of
 *  the inputs (same file, any name) or another output is a usage error with cv_check_outputs's
 *  message. Returns CLI_OK or CLI_USAGE. */
int cli_check_outputs(const cv_dist *d, const cv_path_role *outs, int nout, const cv_path_role *ins, int nin);
#define CLI_ROLES(a) (a), NFLAGS(a)

/** Checked number parsing for flag values: prints "convoy: --epochs: bad number 'x'" (a usage
 *  error). */
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
int cli_float(const char *flag, const char *s, double lo, double hi, double *out);

/** --allreduce KIND and --bucket-mb M (train and bench) into cv_train_opts.bucket_bytes (0:
 *  blocking); CLI_OK or a usage error. */
int cli_allreduce_bytes(const cv_dist *d, const char *kind, const char *bucket_mb, int64_t *bytes);

int cmd_train(const cv_dist *d, int argc, char **argv);
int cmd_eval(const cv_dist *d, int argc, char **argv);
int cmd_predict(const cv_dist *d, int argc, char **argv);
int cmd_summary(const cv_dist *d, int argc, char **argv);
int cmd_convert(const cv_dist *d, int argc, char **argv);
int cmd_bench(const cv_dist *d, int argc, char **argv);
int cmd_tune(const cv_dist *d, int argc, char **argv);
int cmd_augment(const cv_dist *d, int argc, char **argv);
int cmd_import(const cv_dist *d, int argc, char **argv);
int cmd_export(const cv_dist *d, int argc, char **argv);

/** The flags train shares with tune: data, validation, the model file's overrides, speed. */
typedef struct {
    const char *data, *val, *split, *epochs, *batch, *opt, *lr, *threads, *check, *allreduce, *bucket_mb,
        *schedule, *warmup, *early, *plateau, *precision;
    bool quiet, stream, reproducible;
} cli_train_flags;
#define CLI_TRAIN_FLAGS_MAX 24
/** Writes the shared flags' table entries (pointing into t) to out; returns their count. */
int cli_train_flags_table(cli_train_flags *t, cli_flag *out);
/** Checks them and fills o's data, validation and speed fields (the rest zero). */
int cli_train_flags_opts(const cv_dist *d, const char *cmd, const cli_train_flags *t, cv_train_opts *o);
/** Applies the model-file overrides (--epochs, --batch-size, --lr, callbacks) to spec. */
int cli_train_flags_apply(const cli_train_flags *t, cv_model_spec *spec);
int cmd_plot(const cv_dist *d, int argc, char **argv);
int cmd_visualize(const cv_dist *d, int argc, char **argv);

/** eval --confusion: counts over every rank's slice of ds; rank 0 prints the matrix and report
 *  and writes svg (when not NULL). Returns an exit code. */
int cli_confusion(const cv_dist *d, const char *ckpt, cv_net *net, cv_dataset *ds, const cv_normalizer *nz,
                  const char *svg);
/** The K class names for what is said about ds under checkpoint ckpt: the data's `classes`, else
 *  those the checkpoint keeps from its training data (in *info: cv_data_info_free it), else NULL
 *  (classes go by number). */
char *const *cli_class_names(const char *ckpt, const cv_dataset *ds, int K, cv_data_info *info);

/** Set by SIGTERM/SIGINT/SIGUSR1: training saves a checkpoint after the current step and exits 75. */
extern volatile sig_atomic_t cli_stop_requested;

/* help.c: the help and the man page, generated from the tables; version.c: --version */
void cli_help_commands(void *file, const cli_entry *cmds, int n);
int cli_help_man(const cli_entry *cmds, int n);
void cli_version(void);
/** `convoy --completion bash|zsh` (argv: the words after --completion): the shell's completion
 *  script on stdout (complete.c). */
int cli_completion(const cli_entry *cmds, int n, int argc, char **argv);
/** `convoy --man model|hdf5`: convoy-model(5) or convoy-hdf5(5) as roff on stdout (man-pages.c). */
int cli_man_page(const char *name);
/** Text as roff (help.c): hyphens and backslashes escaped, no line starting with a control character. */
void cli_roff(void *file, const char *text);
/** Set while `convoy --man` runs the commands with --help: cli_parse then emits the
 *  command's roff section instead of its usage. */
extern bool cli_help_roff;
void cli_man_command(const cli_command *c, void *file);

/** --threads T for OpenMP (T >= 1); NULL leaves the default (OMP_NUM_THREADS). */
int cli_threads(const char *value);
/** --precision fp32|bf16 into p (NULL leaves it), refused where this CPU cannot run it. */
int cli_precision(const char *value, cv_precision *p);

#endif
