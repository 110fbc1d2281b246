/* The program's failure messages: "convoy: MESSAGE" on stderr, from rank 0 only, the exit code
 * a usage error forces, the ranks' agreement on their start-up checks, and the check that stdout
 * took every write. A leaf of the cli folder: the flag parser (parse.c), the help text (help.c)
 * and every command call it; it calls nothing of theirs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

bool cli_usage_error;
static const cv_dist *world; /* set while a command runs: usage errors print on rank 0 only */

void cli_fail_world(const cv_dist *d) { world = d; }

/* Start-up (cli_startup_open to the agreement): under mpirun with several ranks every rank
 * keeps its first error instead of printing it, and the agreement prints them from rank 0. */
static struct {
    bool open, passed;
    const char *command;
    char msg[CV_ERR_MSG];
} startup;

static void vfail(const cv_dist *d, const char *fmt, va_list ap)
{
    if (startup.open) {
        if (!startup.msg[0]) vsnprintf(startup.msg, sizeof startup.msg, fmt, ap);
        return;
    }
    if (!d || d->rank == 0) {
        fputs("convoy: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
}

int cli_fail(const cv_dist *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(d, fmt, ap);
    va_end(ap);
    return CLI_BAD_INPUT;
}

int cli_usage_fail(const cv_dist *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(d ? d : world, fmt, ap); /* every rank parses the same command line */
    va_end(ap);
    cli_usage_error = true;
    return CLI_USAGE;
}

int cli_check_outputs(const cv_dist *d, const cv_path_role *outs, int nout, const cv_path_role *ins, int nin)
{
    cv_err err;
    return cv_check_outputs(outs, nout, ins, nin, &err) ? cli_usage_fail(d, "%s", err.msg) : CLI_OK;
}

void cli_check_stdout(void)
{
    const bool failed = ferror(stdout);
    errno = 0;
    if (fflush(stdout) == 0 && !failed) return;
    /* glibc drops a buffer whose write failed: when the last one did, the final flush has nothing
     * left to fail on and errno says nothing; the output is lost already, so one more byte asks
     * the file why (a full disk: ENOSPC) */
    if (failed && !errno && write(STDOUT_FILENO, "\n", 1) == 1) errno = 0;
    fprintf(stderr, "convoy: standard output: write error%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
    _exit(CLI_BAD_INPUT);
}

void cli_startup_open(const cv_dist *d, const char *command)
{
    startup.open = d->size > 1;
    startup.passed = false;
    startup.command = command;
    startup.msg[0] = '\0';
}

/* what each rank brings to the agreement */
enum { STAGE_GO_ON = 1, STAGE_DONE = 2 };
typedef struct {
    int code, stage;
    char command[16];
    char msg[CV_ERR_MSG];
} startup_note;

/* Rank 0 prints what made the start-up fail: every failing rank's message (once for ranks
 * that failed alike: the same command line on every rank), then, when some rank was fine, why
 * it stops. Returns the agreed exit code. */
static int startup_failed(const cv_dist *d, const startup_note *all)
{
    int first = -1;
    for (int r = 0; r < d->size && first < 0; r++)
        if (all[r].code) first = r;
    const bool talk = d->rank == 0;
    if (first < 0) { /* nobody failed, but the ranks are not running the same thing */
        int r = 1;
        while (strcmp(all[r].command, all[0].command) == 0 && all[r].stage == all[0].stage) r++;
        if (talk && strcmp(all[r].command, all[0].command) != 0)
            fprintf(stderr, "convoy: rank %d runs `convoy %s`, rank 0 `convoy %s`: every rank must run the same "
                    "command\n", r, all[r].command, all[0].command);
        else if (talk)
            fprintf(stderr, "convoy: rank %d stopped at start-up with nothing to run (--help?), rank %d goes on: every "
                    "rank must run the same command\n", all[r].stage == STAGE_DONE ? r : 0,
                    all[r].stage == STAGE_DONE ? 0 : r);
        return CLI_USAGE;
    }
    bool some_fine = false;
    for (int r = 0; r < d->size; r++) {
        if (!all[r].code) {
            some_fine = true;
            continue;
        }
        bool said = !all[r].msg[0];
        for (int q = 0; q < r && !said; q++) said = all[q].code && strcmp(all[q].msg, all[r].msg) == 0;
        if (talk && !said && r == 0) fprintf(stderr, "convoy: %s\n", all[r].msg);
        else if (talk && !said) fprintf(stderr, "convoy: rank %d: %s\n", r, all[r].msg);
    }
    if (talk && some_fine)
        fprintf(stderr, "convoy: rank %d failed at start-up (see its message); stopping all %d ranks\n", first,
                d->size);
    return all[first].code;
}

static int agree(const cv_dist *d, int rc, int stage)
{
    if (!startup.open || startup.passed) return rc;
    startup.passed = true;
    startup.open = false;
    startup_note mine = {.code = rc == CLI_OK ? 0 : cli_usage_error ? CLI_USAGE : rc, .stage = stage};
    snprintf(mine.command, sizeof mine.command, "%s", startup.command);
    snprintf(mine.msg, sizeof mine.msg, "%s", startup.msg);
    startup_note *all = malloc(sizeof *all * (size_t)d->size);
    cv_err err;
    if (!all || cv_dist_allgather(d, &mine, sizeof mine, all, &err)) {
        free(all);
        /* an agreement that cannot be made: this rank says why and ends the job */
        fprintf(stderr, "convoy: rank %d: %s\n", d->rank, all ? err.msg : "out of memory at start-up");
        MPI_Abort(d->comm, CLI_BAD_INPUT);
        return CLI_BAD_INPUT;
    }
    bool alike = true;
    for (int r = 0; r < d->size; r++)
        alike = alike && !all[r].code && all[r].stage == all[0].stage && strcmp(all[r].command, all[0].command) == 0;
    const int code = alike ? CLI_OK : startup_failed(d, all);
    free(all);
    cli_usage_error = code == CLI_USAGE;
    return code;
}

int cli_startup_agree(const cv_dist *d, int rc) { return agree(d, rc, STAGE_GO_ON); }

int cli_startup_close(const cv_dist *d, int rc) { return agree(d, rc, STAGE_DONE); }
