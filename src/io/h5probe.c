/* Reading an untrusted HDF5 file in a child process before convoy reads it. libhdf5 1.10
 * (Debian 12's) crashes, loops or allocates without bound on some corrupt object headers, heaps
 * and B-trees (found by tests/fuzz: H5Fopen, H5Lexists, H5Aread...), before convoy sees a value
 * it could check. So every HDF5 input is first opened and walked in a forked child: every object,
 * every attribute read, every dataset's type, shape, filters and (up to a budget) its data. The
 * child calls only HDF5 and leaves by _exit, never MPI or atexit handlers: its one result is how
 * it ended. A child killed by a signal or by its alarm, or stopped with a non-zero status (a
 * sanitizer's report: the child itself only ever ends with 0), makes the file refused in one
 * line naming it; a child that ended normally, whatever HDF5 told it, leaves the verdict to the
 * real read, whose messages are convoy's. CONVOY_H5_PROBE=0 skips it (docs/robustness.md). */
#include "io/h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    PROBE_SECONDS = 30,                   /* the child's alarm (CONVOY_H5_PROBE_SECONDS) */
    PROBE_ATTR_MAX = 1 << 20,             /* attributes up to this many bytes are read */
};
#define PROBE_DATA_BUDGET ((hsize_t)64 << 20) /* dataset bytes read in all; then first rows only */
#define PROBE_AS_EXTRA ((rlim_t)4 << 30)      /* the child's address space beyond the parent's */

typedef struct {
    hsize_t budget; /* data bytes the child may still read */
} walk;

static herr_t read_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)info, (void)op;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    const hsize_t bytes = H5Aget_storage_size(a);
    if (t >= 0 && s >= 0 && bytes > 0 && bytes <= PROBE_ATTR_MAX) {
        hid_t mt = H5Tget_native_type(t, H5T_DIR_DEFAULT);
        const hssize_t n = H5Sget_simple_extent_npoints(s);
        const size_t msize = mt >= 0 ? H5Tget_size(mt) : 0;
        /* variable-length strings are read as pointers and reclaimed */
        if (mt >= 0 && n > 0 && msize > 0 && (hsize_t)n * msize <= PROBE_ATTR_MAX) {
            void *buf = calloc((size_t)n, msize);
            if (buf && H5Aread(a, mt, buf) >= 0 && H5Tis_variable_str(mt) > 0)
                H5Dvlen_reclaim(mt, s, H5P_DEFAULT, buf);
            free(buf);
        }
        if (mt >= 0) H5Tclose(mt);
    }
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return 0;
}

/* A dataset's description and its data: whole while the budget lasts, else its first row. */
static void read_dataset(hid_t d, walk *w)
{
    hid_t t = H5Dget_type(d), s = H5Dget_space(d), p = H5Dget_create_plist(d);
    if (p >= 0) {
        const int nf = H5Pget_nfilters(p);
        for (int i = 0; i < nf && i < 32; i++) {
            unsigned flags, cd[8];
            size_t ncd = 8;
            char name[64];
            H5Pget_filter2(p, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        }
        H5Pclose(p);
    }
    hid_t mt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_DEFAULT) : -1;
    const int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[H5S_MAX_RANK];
    const size_t msize = mt >= 0 ? H5Tget_size(mt) : 0;
    if (mt >= 0 && H5Tis_variable_str(mt) <= 0 && H5Tget_class(mt) != H5T_VLEN && rank >= 0 && rank <= H5S_MAX_RANK &&
        msize > 0 && H5Sget_simple_extent_dims(s, dims, NULL) == rank) {
        hsize_t n = 1, row = 1;
        for (int i = 0; i < rank; i++) {
            n = dims[i] && n > ((hsize_t)-1) / dims[i] ? (hsize_t)-1 : n * dims[i];
            if (i > 0) row = dims[i] && row > ((hsize_t)-1) / dims[i] ? (hsize_t)-1 : row * dims[i];
        }
        const bool whole = n <= w->budget / msize;
        const hsize_t count = whole ? n : rank > 0 && dims[0] > 0 && row <= w->budget / msize ? row : 0;
        void *buf = count ? malloc((size_t)(count * msize)) : NULL;
        if (buf && whole) {
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        } else if (buf) { /* the first row (and, for rank 1, the first element) */
            hsize_t start[H5S_MAX_RANK] = {0}, cnt[H5S_MAX_RANK];
            for (int i = 0; i < rank; i++) cnt[i] = i == 0 ? 1 : dims[i];
            hid_t ms = H5Screate_simple(1, &count, NULL);
            if (ms >= 0 && H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0)
                H5Dread(d, mt, ms, s, H5P_DEFAULT, buf);
            if (ms >= 0) H5Sclose(ms);
        }
        free(buf);
        w->budget -= count * msize <= w->budget ? count * msize : w->budget;
    }
    if (mt >= 0) H5Tclose(mt);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
}

static herr_t visit(hid_t loc, const char *name, const H5O_info_t *info, void *op)
{
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, read_attr, NULL);
    if (info->type == H5O_TYPE_DATASET) read_dataset(o, op);
    H5Oclose(o);
    return 0;
}

/* The child: walks the file and ends; never returns. */
/* The child's alarm: CONVOY_H5_PROBE_SECONDS (1..3600) or 30. */
static int probe_seconds(void)
{
    const char *env = getenv("CONVOY_H5_PROBE_SECONDS");
    char *end;
    const long v = env ? strtol(env, &end, 10) : 0;
    return env && *env && !*end && v >= 1 && v <= 3600 ? (int)v : PROBE_SECONDS;
}

static void probe_child(const char *path, int seconds)
{
    /* the parent's handlers (Open MPI prints a backtrace on SIGSEGV) are not the child's */
    const int crashes[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM};
    for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++) signal(crashes[i], SIG_DFL);
    /* what the library (or a sanitizer) prints while it fails is not the user's message */
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    alarm((unsigned)seconds);
#ifndef __SANITIZE_ADDRESS__ /* ASan reserves terabytes of address space up front */
    struct rlimit rl;
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm) {
        if (fscanf(statm, "%ld", &pages) != 1) pages = 0;
        fclose(statm);
    }
    if (pages > 0 && getrlimit(RLIMIT_AS, &rl) == 0) {
        const rlim_t want = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + PROBE_AS_EXTRA;
        if (rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max) rl.rlim_cur = want;
        setrlimit(RLIMIT_AS, &rl);
    }
#endif
    cv_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        walk w = {PROBE_DATA_BUDGET};
        H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &w, H5O_INFO_BASIC);
    }
    _exit(0);
}

static const char *signal_words(int sig)
{
    switch (sig) {
    case SIGSEGV: return "crashed (SIGSEGV)";
    case SIGBUS: return "crashed (SIGBUS)";
    case SIGABRT: return "aborted (SIGABRT)";
    case SIGFPE: return "crashed (SIGFPE)";
    case SIGILL: return "crashed (SIGILL)";
    case SIGALRM: return "did not finish in time";
    case SIGKILL: return "was killed (SIGKILL: out of memory?)";
    default: return NULL;
    }
}

int cv_h5_probe(const char *path, cv_err *err)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)path, (void)err;
    return 0; /* the fuzzers are there to see the library's crashes */
#else
    const char *env = getenv("CONVOY_H5_PROBE");
    if (env && strcmp(env, "0") == 0) return 0;
    fflush(NULL); /* nothing buffered is written twice */
    const int seconds = probe_seconds();
    const pid_t pid = fork();
    if (pid < 0) return 0; /* no child to be had: read it as before */
    if (pid == 0) probe_child(path, seconds);
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) return 0;
    char what[64];
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) /* the child only ever _exit(0)s: a sanitizer's stop */
        snprintf(what, sizeof what, "stopped (its process ended with status %d)", WEXITSTATUS(status));
    else if (!WIFSIGNALED(status) || !signal_words(WTERMSIG(status)))
        return 0; /* ended by itself, or an interrupt (Ctrl-C reaches the child too): no verdict */
    else if (WTERMSIG(status) == SIGALRM)
        snprintf(what, sizeof what, "did not finish in %d s", seconds);
    else
        snprintf(what, sizeof what, "%s", signal_words(WTERMSIG(status)));
    return cv_errf(err, "%s: damaged HDF5 file: the HDF5 library %s reading it in a separate process, so convoy "
                        "refuses it (CONVOY_H5_PROBE=0 skips that check)", path, what);
#endif
}
