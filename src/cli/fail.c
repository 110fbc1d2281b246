/* The program's failure messages: "convoy: MESSAGE" on stderr, from rank 0 only, the exit code
 * a usage error forces, and the check that stdout took every write. A leaf of the cli folder:
 * the flag parser (parse.c), the help text (help.c) and every command call it; it calls nothing
 * of theirs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

bool cli_usage_error;
static const cv_dist *world; /* set while a command runs: usage errors print on rank 0 only */

void cli_fail_world(const cv_dist *d) { world = d; }

static void vfail(const cv_dist *d, const char *fmt, va_list ap)
{
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
    fprintf(stderr, "convoy: standard output: write error%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
    _exit(CLI_BAD_INPUT);
}
