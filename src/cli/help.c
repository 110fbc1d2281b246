/* The program's help: `convoy --help` (the command table), `convoy CMD --help` (the command's
 * flag table) and the man page (`convoy --man`, roff), all generated from the same tables so
 * that the manual lists exactly the commands and flags the parser accepts. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/version.h"

bool cli_help_roff;
static int man_sections; /* commands that emitted their roff section during --man */

static const char *const exit_codes[][2] = {
    {"0", "success"},
    {"1", "the run failed: bad model file or data, missing file, out of memory, MPI or HDF5 error; under "
          "mpirun also ranks whose settings differ"},
    {"2", "usage error: unknown command or flag, missing argument or required flag, bad flag value; under "
          "mpirun every rank exits 2 when one has a usage error, or when the ranks run different commands"},
    {"75", "interrupted (EX_TEMPFAIL): SIGTERM, SIGINT or SIGUSR1 stopped train or tune after saving; run "
           "the same command again (train: with --resume) to continue"},
};
enum { N_EXIT_CODES = sizeof exit_codes / sizeof exit_codes[0] };

static const char *const environment[][2] = {
    {"OMP_NUM_THREADS", "OpenMP threads per rank when --threads is not given"},
    {"CONVOY_MPI", "1: start MPI even when no MPI launcher (mpirun, srun) is seen in the environment; "
                   "a plain start otherwise runs as the only rank without MPI"},
    {"CONVOY_GEMM", "generic: use the portable GEMM and convolution kernels even where the CPU has AVX2+FMA"},
    {"CONVOY_BF16", "emulate: run --precision bf16 on fp32 fused multiply-adds (the same bits, slower) where the CPU "
                    "has no AVX512_BF16, or to test the emulation where it has"},
    {"CONVOY_TILE", "samples per tile of the layers before the first dense one (default: about 1 MiB of "
                    "activations per tile; 0: no tiling)"},
    {"CONVOY_FUSE", "0: run a first conv2d and the max/min pool after it as two kernels, not one (bench comparisons)"},
    {"CONVOY_WINOGRAD", "0: compute 3x3 stride-1 convolutions and their gradients directly, not by Winograd F(4x4,3x3)"},
    {"CONVOY_H5_PROBE", "0: open HDF5 inputs without first reading them in a forked child (which refuses files the "
                        "HDF5 library crashes or loops on)"},
    {"CONVOY_H5_PROBE_SECONDS", "the child's time limit for reading an HDF5 input (default 30)"},
    {"CONVOY_IMPLICIT", "0: run padded and strided convolutions through im2col + GEMM, not the implicit GEMM over a "
                        "padded copy of the input (bench comparisons)"},
};
enum { N_ENVIRONMENT = sizeof environment / sizeof environment[0] };

static const char *const examples[] = {
    "convoy convert fashion-mnist --out data/fmnist",
    "convoy summary launch/models/fmnist-cnn.model",
    "convoy train launch/models/fmnist-cnn.model --data data/fmnist/train.h5 \\\n"
    "    --val data/fmnist/test.h5 --epochs 10 --checkpoint cnn.h5 --log history.csv",
    "mpirun -np 4 convoy train launch/models/fmnist-cnn.model --threads 2 \\\n"
    "    --data data/fmnist/train.h5 --batch-size 256 --checkpoint cnn.h5",
    "convoy train launch/models/fmnist-cnn.model --data data/fmnist/train.h5 \\\n"
    "    --epochs 20 --checkpoint cnn.h5 --resume cnn.h5      # after a preemption",
    "convoy eval cnn.h5 --data data/fmnist/test.h5",
};
enum { N_EXAMPLES = sizeof examples / sizeof examples[0] };

static const char summary[] =
    "convoy trains neural networks (multi-layer perceptrons and convolutional networks) data-parallel "
    "across MPI ranks, with OpenMP-parallel kernels inside each rank. A network is a small text file "
    "in the spirit of a Keras Sequential model; datasets and checkpoints are HDF5 files. Under "
    "mpirun -np P every rank runs the same command; only rank 0 prints and writes files. Errors go to "
    "stderr as one line, convoy: FILE:LINE: what is wrong. Flags take the GNU forms: --flag=value or "
    "--flag value; -e N or -eN for the common ones (-e epochs, -b batch size, -t threads, -o out, "
    "-q quiet, -h help); switches bundle (-qh); -- ends the flags; a flag is never abbreviated.";

void cli_usage(const cli_command *c, void *file)
{
    FILE *f = file;
    fprintf(f, "usage: convoy %s %s [flags]\n%s\n", c->name, c->usage, c->about);
    if (c->nflags) fputs("\nflags:\n", f);
    for (int i = 0; i < c->nflags; i++) {
        char left[64], letter = cli_flag_short(&c->flags[i]);
        snprintf(left, sizeof left, "%c%c%s--%s%s%s", letter ? '-' : ' ', letter ? letter : ' ', letter ? ", " : "  ",
                 c->flags[i].name, c->flags[i].arg_name ? " " : "", c->flags[i].arg_name ? c->flags[i].arg_name : "");
        fprintf(f, "  %-30s %s\n", left, c->flags[i].help);
    }
    fputs("  -h, --help                     this text\n", f);
}

void cli_help_commands(void *file, const cli_entry *cmds, int n)
{
    FILE *f = file;
    int w = 0;
    for (int i = 0; i < n; i++) w = (int)strlen(cmds[i].name) > w ? (int)strlen(cmds[i].name) : w;
    fputs("usage: convoy COMMAND [args] [flags]     (convoy COMMAND --help for its flags)\n\ncommands:\n", f);
    for (int i = 0; i < n; i++) fprintf(f, "  %-*s  %s\n", w, cmds[i].name, cmds[i].about);
    fputs("\nalso:\n"
          "  convoy --help, -h       this list\n"
          "  convoy help COMMAND     the same as convoy COMMAND --help\n"
          "  convoy --version, -V    version and build facts (OpenMP, GEMM kernel, MPI, HDF5)\n"
          "  convoy --man            the manual page as roff (man -l build/convoy.1 shows it)\n"
          "  convoy --man model|hdf5 the file formats' pages, convoy-model(5) and convoy-hdf5(5)\n"
          "  convoy --completion bash|zsh\n"
          "                          the shell's completion script (installed with convoy)\n"
          "\nflags: --flag=value or --flag value; -e N, -eN; switches bundle (-qh); -- ends them\n"
          "\nexit status:\n", f);
    for (int i = 0; i < N_EXIT_CODES; i++) fprintf(f, "  %s  %s\n", exit_codes[i][0], exit_codes[i][1]);
}

/* Text as roff: backslashes and hyphens escaped (so --flag is not hyphenated or shown as a
 * dash), a line never starts with a control character, and a long list may break after a
 * comma or slash. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'') fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\') fputs("\\e", f);
        else if (*s == '-') fputs("\\-", f);
        else fputc(*s, f);
        if ((*s == ',' || *s == '/') && s[1] && s[1] != ' ') fputs("\\:", f);
    }
}

void cli_roff(void *file, const char *text) { roff(file, text); }

void cli_man_command(const cli_command *c, void *file)
{
    FILE *f = file;
    fputs(".SS \"", f);
    roff(f, c->name);
    fputs(" ", f);
    roff(f, c->usage);
    fputs("\"\n", f);
    roff(f, c->about);
    fputs("\n", f);
    for (int i = 0; i < c->nflags; i++) {
        const char letter = cli_flag_short(&c->flags[i]);
        if (letter) fprintf(f, ".TP\n\\fB\\-%c\\fR, \\fB\\-\\-", letter);
        else fputs(".TP\n\\fB\\-\\-", f);
        roff(f, c->flags[i].name);
        fputs("\\fR", f);
        if (c->flags[i].arg_name) {
            fputs(" \\fI", f);
            roff(f, c->flags[i].arg_name);
            fputs("\\fR", f);
        }
        fputs("\n", f);
        roff(f, c->flags[i].help);
        fputs("\n", f);
    }
    man_sections++;
}

static void man_item(FILE *f, const char *tag, const char *text)
{
    fputs(".TP\n.B ", f);
    roff(f, tag);
    fputs("\n", f);
    roff(f, text);
    fputs("\n", f);
}

int cli_help_man(const cli_entry *cmds, int n)
{
    FILE *f = stdout;
    fprintf(f, ".\\\" convoy(1), generated by `convoy --man` from the program's own command and flag tables.\n"
               ".TH CONVOY 1 \"\" \"convoy %s\" \"User Commands\"\n"
               ".SH NAME\nconvoy \\- data\\-parallel neural network training with MPI, OpenMP and HDF5\n"
               ".SH SYNOPSIS\n.B convoy\n.I COMMAND\n[\\fIARGS\\fR] [\\fIFLAGS\\fR]\n.br\n"
               "[\\fBmpirun \\-np\\fR \\fIP\\fR] \\fBconvoy\\fR \\fICOMMAND\\fR ...\n.br\n"
               ".B convoy \\-\\-help\n.br\n.B convoy \\-\\-version\n.br\n"
               ".B convoy \\-\\-completion\n.IR bash | zsh\n.br\n"
               ".B convoy help\n.I COMMAND\n.SH DESCRIPTION\n",
            CONVOY_VERSION_STRING);
    roff(f, summary);
    fputs("\n.SH COMMANDS\n", f);
    const cv_dist single = cv_dist_single();
    char help[] = "--help";
    char *argv[] = {help, NULL};
    cli_help_roff = true;
    for (int i = 0; i < n; i++) {
        const int before = man_sections;
        if (cmds[i].run(&single, 1, argv) != CLI_OK || man_sections != before + 1) {
            cli_help_roff = false;
            return cli_fail(NULL, "--man: command '%s' did not describe its flags (it must call cli_parse first)",
                            cmds[i].name);
        }
    }
    cli_help_roff = false;
    fputs(".SH \"EXIT STATUS\"\n", f);
    for (int i = 0; i < N_EXIT_CODES; i++) man_item(f, exit_codes[i][0], exit_codes[i][1]);
    fputs(".SH ENVIRONMENT\n", f);
    for (int i = 0; i < N_ENVIRONMENT; i++) man_item(f, environment[i][0], environment[i][1]);
    fputs(".SH SIGNALS\n", f);
    roff(f, "SIGTERM, SIGINT or SIGUSR1 (Slurm preemption, Ctrl-C) stops training after the current step: "
            "the checkpoint is written (to --checkpoint, or convoy-interrupted.h5) and convoy exits 75 "
            "(EX_TEMPFAIL) saying how to continue with --resume; tune keeps its finished trials and exits 75. "
            "Under mpirun every rank does so and mpirun exits 75 when mpirun is sent SIGUSR1, which it passes "
            "on to the ranks; launch/train and launch/slurm turn their own SIGTERM into that. SIGTERM to "
            "Open MPI's mpirun itself aborts the job: the ranks get SIGTERM about a second later and SIGKILL a "
            "second after that, and mpirun exits 1 whatever they return.");
    fputs("\n.SH EXAMPLES\n", f);
    for (int i = 0; i < N_EXAMPLES; i++) {
        fputs(".PP\n.nf\n", f);
        roff(f, examples[i]);
        fputs("\n.fi\n", f);
    }
    fputs(".SH \"SEE ALSO\"\n.BR convoy\\-model (5),\n.BR convoy\\-hdf5 (5),\n.BR mpirun (1),\n.BR h5dump (1);\n"
          "README.md and docs/ in the source tree (model file grammar, HDF5 layouts, results).\n", f);
    return CLI_OK; /* a failed write: cli_check_stdout at exit */
}
