/* An LD_PRELOAD shim for tests/faults_ckpt.sh: the Nth call of one file operation on a file
 * being saved (a path holding ".tmp.": convoy writes every checkpoint to F.tmp.PID, then renames
 * it) fails, so the test can show that a failed save at any point leaves the previous
 * checkpoint intact and is reported. Other files (the log, the data) are never touched.
 *   CONVOY_FAULT=OP:N   OP: write, pwrite, fsync, close, rename (that call fails with EIO;
 *                       close after really closing), short (the Nth write or pwrite writes half
 *                       and the next fails with ENOSPC: a disk filling up), shortonly (the Nth
 *                       writes half, the rest go through: a save must finish it)
 *   CONVOY_FAULT_LOG=F  "OP N" is appended to F when the fault fires */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_close)(int);
static int (*real_rename)(const char *, const char *);

static char op[16];
static long at;        /* the call that fails, counted from 1 */
static long seen;      /* matching calls so far */
static int fail_next;  /* short: the write after the short one fails */

__attribute__((constructor)) static void init(void)
{
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    const char *spec = getenv("CONVOY_FAULT"), *colon = spec ? strchr(spec, ':') : NULL;
    if (colon && (size_t)(colon - spec) < sizeof op) {
        memcpy(op, spec, (size_t)(colon - spec));
        at = strtol(colon + 1, NULL, 10);
    }
}

static int saving(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return strstr(path, ".tmp.") != NULL;
}

static void note(void)
{
    const char *log = getenv("CONVOY_FAULT_LOG");
    char line[64];
    const int len = snprintf(line, sizeof line, "%s %ld\n", op, at);
    const int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    if (fd < 0) return;
    const int written = real_write(fd, line, (size_t)len) == len;
    (void)written; /* a lost line shows as a fault that never fired: the test fails then */
    real_close(fd);
}

/* Whether this call (of operation kind, on a file being saved) is the one that fails. */
static int fires(const char *kind)
{
    if (strcmp(op, kind) != 0 || ++seen != at) return 0;
    note();
    return 1;
}

/* write and pwrite (kind): the failing, short and following calls; -2 for "go on normally" */
static ssize_t write_fault(int fd, size_t *n, const char *kind)
{
    if (!saving(fd)) return -2;
    if (fail_next) {
        fail_next = 0;
        errno = ENOSPC;
        return -1;
    }
    if (fires(kind)) {
        errno = EIO;
        return -1;
    }
    if (fires("short") || fires("shortonly")) {
        fail_next = op[5] == '\0'; /* "short", not "shortonly" */
        if (*n > 1) *n /= 2;
    }
    return -2;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    const ssize_t r = write_fault(fd, &n, "write");
    return r == -2 ? real_write(fd, buf, n) : r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    const ssize_t r = write_fault(fd, &n, "pwrite");
    return r == -2 ? real_pwrite(fd, buf, n, off) : r;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

int fsync(int fd)
{
    if (saving(fd) && fires("fsync")) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

int close(int fd)
{
    const int hit = saving(fd) && fires("close");
    const int rc = real_close(fd); /* Linux frees the descriptor even when close fails */
    if (!hit) return rc;
    errno = EIO;
    return -1;
}

int rename(const char *from, const char *to)
{
    if (strstr(from, ".tmp.") && fires("rename")) {
        errno = EIO;
        return -1;
    }
    return real_rename(from, to);
}
