/* The convoy program: MPI start-up, subcommand dispatch and the shared flag parser. Every
 * rank runs the same command; only rank 0 prints. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"

#define CONVOY_VERSION "0.1.0"

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

/* Slurm preemption and Ctrl-C end training cleanly; a file-size limit makes writes fail with an
 * error (reported, the old file kept) instead of killing the process. */
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int cli_fail(const cv_dist *d, const char *fmt, ...)
{
    if (!d || d->rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        fputs("convoy: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return CLI_BAD_INPUT;
}

void cli_usage(const cli_command *c, void *file)
{
    FILE *f = file;
    fprintf(f, "usage: convoy %s %s [flags]\n%s\n", c->name, c->usage, c->about);
    if (c->nflags) fputs("\nflags:\n", f);
    for (int i = 0; i < c->nflags; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", c->flags[i].name, c->flags[i].arg_name ? " " : "",
                 c->flags[i].arg_name ? c->flags[i].arg_name : "");
        fprintf(f, "  %-26s %s\n", left, c->flags[i].help);
    }
}

int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, int *npos)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(c, stdout);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (*npos >= c->max_pos) {
                cli_fail(NULL, "%s: unexpected argument '%s' (see convoy %s --help)", c->name, a, c->name);
                return 1;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const cli_flag *f = NULL;
        for (int k = 0; k < c->nflags; k++)
            if (strcmp(a + 2, c->flags[k].name) == 0) f = &c->flags[k];
        if (!f) {
            cli_fail(NULL, "%s: unknown flag '%s' (see convoy %s --help)", c->name, a, c->name);
            return 1;
        }
        if (!f->arg_name) {
            *f->on = true;
        } else if (i + 1 >= argc) {
            cli_fail(NULL, "%s: %s needs a value (%s)", c->name, a, f->arg_name);
            return 1;
        } else {
            *f->value = argv[++i];
        }
    }
    if (*npos < c->min_pos) {
        cli_fail(NULL, "%s: missing %s (usage: convoy %s %s)", c->name, c->usage, c->name, c->usage);
        return 1;
    }
    return 0;
}

int cli_int(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return cli_fail(NULL, "%s: bad number '%s' (an integer is needed)", flag, s);
    if (v < lo || v > hi) return cli_fail(NULL, "%s: %ld is outside [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int cli_float(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return cli_fail(NULL, "%s: bad number '%s'", flag, s);
    if (v < lo || v > hi) return cli_fail(NULL, "%s: %g is outside [%g, %g]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int cli_threads(const char *value)
{
    if (!value) return 0;
    long t = 1;
    if (cli_int("--threads", value, 1, 1024, &t)) return 1;
#ifdef _OPENMP
    omp_set_num_threads((int)t);
#endif
    return 0;
}

static const struct {
    const char *name;
    int (*run)(const cv_dist *, int, char **);
    const char *about;
} commands[] = {
    {"train", cmd_train, "train a model file on an HDF5 dataset"},
    {"eval", cmd_eval, "loss and metrics of a checkpoint on a dataset"},
    {"predict", cmd_predict, "write a checkpoint's outputs for a dataset to /predictions"},
    {"summary", cmd_summary, "layers, output shapes and parameter counts"},
    {"convert", cmd_convert, "make HDF5 datasets from Fashion-MNIST, IDX or CSV files"},
    {"bench", cmd_bench, "time training steps: images/s, per-layer times, fraction of peak"},
    {"augment", cmd_augment, "write augmented images of a dataset as PNG files, and a contact sheet"},
};

static void usage(FILE *f)
{
    fputs("usage: convoy COMMAND [args] [flags]     (convoy COMMAND --help for its flags)\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].about);
    fputs("\nexit status: 0 success, 1 bad input or usage, 2 internal error (MPI start-up)\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_BAD_INPUT : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("convoy %s\n", CONVOY_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
            fputs("convoy: MPI_Init failed\n", stderr);
            return CLI_INTERNAL;
        }
        install_signals(); /* after MPI_Init, which may install handlers of its own */
        cv_dist d;
        cv_err err;
        int rc;
        if (cv_dist_world(&d, &err)) rc = cli_fail(NULL, "%s", err.msg), rc = CLI_INTERNAL;
        else rc = commands[i].run(&d, argc - 2, argv + 2);
        if (MPI_Finalize() != MPI_SUCCESS) {
            fputs("convoy: MPI_Finalize failed\n", stderr);
            return CLI_INTERNAL;
        }
        return rc;
    }
    fprintf(stderr, "convoy: unknown command '%s' (see convoy --help)\n", argv[1]);
    return CLI_BAD_INPUT;
}
