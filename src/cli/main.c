/* The convoy program: MPI start-up (under an MPI launcher only), subcommand dispatch and the
 * flag values' number checks (the flag parser is parse.c). Every rank runs the same command;
 * only rank 0 prints. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

/* Slurm preemption and Ctrl-C end training cleanly; so does SIGUSR1, which Open MPI's mpirun
 * passes on to the ranks as it is (SIGTERM to mpirun makes it abort the job, exit 1 whatever the
 * ranks say, and SIGKILL them two seconds later: launch/train turns a SIGTERM into a SIGUSR1 to
 * mpirun). A file-size limit makes writes fail with an error (reported, the old file kept)
 * instead of killing the process. */
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int cli_int(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return cli_usage_fail(NULL, "%s: bad number '%s' (an integer is needed)", flag, s);
    if (v < lo || v > hi) return cli_usage_fail(NULL, "%s: %ld is outside [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int cli_float(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return cli_usage_fail(NULL, "%s: bad number '%s'", flag, s);
    if (v < lo || v > hi) return cli_usage_fail(NULL, "%s: %g is outside [%g, %g]", flag, v, lo, hi);
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

int cli_precision(const char *value, cv_precision *p)
{
    if (!value) return 0;
    const int v = cv_precision_parse(value);
    if (v < 0) return cli_usage_fail(NULL, "--precision: '%s' is neither fp32 nor bf16", value);
    cv_err err;
    if (cv_precision_check((cv_precision)v, "--precision bf16", &err)) return cli_fail(NULL, "%s", err.msg);
    *p = (cv_precision)v;
    return 0;
}

static const cli_entry commands[] = {
    {"train", cmd_train, "train a model file on an HDF5 dataset"},
    {"eval", cmd_eval, "loss and metrics of a checkpoint on a dataset"},
    {"predict", cmd_predict, "a checkpoint's predictions for a dataset or for image files (CSV or HDF5)"},
    {"summary", cmd_summary, "layers, output shapes and parameter counts"},
    {"convert", cmd_convert, "make HDF5 datasets from Fashion-MNIST, IDX or CSV files"},
    {"tune", cmd_tune, "hyperparameter search over hp.* values: parallel trials, resumable"},
    {"bench", cmd_bench, "time training steps or inference passes: images/s, per-layer times, fraction of peak"},
    {"plot", cmd_plot, "draw training curves (SVG) from train --log CSV files"},
    {"visualize", cmd_visualize, "PNGs of a checkpoint's first conv filters and a sample's feature maps"},
    {"augment", cmd_augment, "write augmented images of a dataset as PNG files, and a contact sheet"},
    {"export", cmd_export, "write a checkpoint's network as an ONNX model (OpenCV, ONNX Runtime, TensorRT)"},
    {"import", cmd_import, "translate an ONNX model into a model file and a checkpoint of its weights"},
};

static void usage(FILE *f)
{
    cli_help_commands(f, commands, (int)(sizeof commands / sizeof commands[0]));
}

static const cli_entry *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return &commands[i];
    return NULL;
}

/* `convoy CMD --help` and `convoy help CMD`: the command prints its flag table; no MPI needed */
static int command_help(const cli_entry *c)
{
    const cv_dist single = cv_dist_single();
    char help[] = "--help";
    char *argv[] = {help, NULL};
    return c->run(&single, 1, argv);
}

/* Was this process started as a rank of an MPI job? Open MPI's mpirun sets
 * OMPI_COMM_WORLD_SIZE and PMIX_RANK, Slurm's srun SLURM_PROCID (and PMIX_RANK or PMI_RANK with
 * its MPI plugins), MPICH-style launchers PMI_RANK or PMI_FD; CONVOY_MPI=1 says so for any other.
 * A process started plainly is the only rank, and then runs without MPI_Init: Open MPI starts a
 * singleton by spawning a helper daemon, about 0.4 s before any work. */
static bool started_by_mpi_launcher(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD", "SLURM_PROCID"};
    const char *force = getenv("CONVOY_MPI");
    if (force && strcmp(force, "1") == 0) return true;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

/* Every rank runs the command; a usage error reported on the way exits CLI_USAGE. */
static int run_command(const cli_entry *c, int argc, char **argv)
{
    const bool mpi = started_by_mpi_launcher();
    if (mpi && MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fputs("convoy: MPI_Init failed\n", stderr);
        return CLI_INTERNAL;
    }
    install_signals(); /* after MPI_Init, which may install handlers of its own */
    cv_dist d = cv_dist_single();
    cv_err err;
    int rc;
    if (mpi && cv_dist_world(&d, &err)) rc = cli_fail(NULL, "%s", err.msg);
    else {
        cli_fail_world(&d);
        cli_startup_open(&d, c->name);
        rc = c->run(&d, argc - 2, argv + 2);
        if (rc != CLI_OK && cli_usage_error) rc = CLI_USAGE;
        rc = cli_startup_close(&d, rc); /* a rank that failed before agreeing meets the others there */
        cli_fail_world(NULL);
    }
    if (rc != CLI_OK && cli_usage_error) rc = CLI_USAGE;
    if (!mpi) return rc;
    if (MPI_Finalize() != MPI_SUCCESS) {
        fputs("convoy: MPI_Finalize failed\n", stderr);
        return CLI_INTERNAL;
    }
    return rc;
}

int main(int argc, char **argv)
{
    atexit(cli_check_stdout); /* a full disk or closed stdout fails the run */
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *word = argv[1];
    const bool alone = argc == 2;
    if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0 || (strcmp(word, "help") == 0 && alone)) {
        usage(stdout);
        return CLI_OK;
    }
    if ((strcmp(word, "--version") == 0 || strcmp(word, "-V") == 0) && alone) {
        cli_version();
        return CLI_OK;
    }
    if (strcmp(word, "--completion") == 0)
        return cli_completion(commands, (int)(sizeof commands / sizeof commands[0]), argc - 2, argv + 2);
    if (strcmp(word, "--man") == 0 && argc == 3) return cli_man_page(argv[2]);
    if (strcmp(word, "--man") == 0 && alone) return cli_help_man(commands, (int)(sizeof commands / sizeof commands[0]));
    if (strcmp(word, "help") == 0) {
        const cli_entry *c = find_command(argv[2]);
        if (!c || argc > 3) return cli_usage_fail(NULL, "help: unknown command '%s' (see convoy --help)", argv[2]);
        return command_help(c);
    }
    const cli_entry *c = find_command(word);
    if (!c)
        return cli_usage_fail(NULL, "unknown %s '%s' (see convoy --help)", word[0] == '-' ? "option" : "command", word);
    /* under an MPI launcher the other ranks may be running the command: --help meets them there */
    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) && !started_by_mpi_launcher())
        return command_help(c);
    return run_command(c, argc, argv);
}
