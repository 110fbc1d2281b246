/* Paths as files: identity, output/input overlaps, regular-file checks, bounded text reads, run locks. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/files.h"

bool cv_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool cv_path_inside(const char *path, const char *dir)
{
    char *p = path && dir ? realpath(path, NULL) : NULL, *d = p ? realpath(dir, NULL) : NULL;
    const size_t n = d ? strlen(d) : 0;
    const bool inside = d && strncmp(p, d, n) == 0 && (p[n] == '/' || (n == 1 && p[n]));
    free(p);
    free(d);
    return inside;
}

int cv_check_outputs(const cv_path_role *outs, int nout, const cv_path_role *ins, int nin, cv_err *err)
{
    for (int o = 0; o < nout; o++) {
        if (!outs[o].path) continue;
        for (int i = 0; i < nin; i++)
            if (cv_same_file(outs[o].path, ins[i].path))
                return cv_errf(err, "%s %s is also the %s file; choose another path", outs[o].flag, outs[o].path,
                               ins[i].flag);
        for (int p = 0; p < o; p++)
            if (outs[p].path && (strcmp(outs[o].path, outs[p].path) == 0 || cv_same_file(outs[o].path, outs[p].path)))
                return cv_errf(err, "%s %s is also the %s file; choose another path", outs[o].flag, outs[o].path,
                               outs[p].flag);
    }
    return 0;
}

int cv_require_regular(const char *path, cv_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cv_errf(err, "%s: not a regular file%s", path, S_ISDIR(st.st_mode) ? " (a directory)" : "");
    return 0;
}

int cv_read_text_file(const char *path, size_t max, const char *what, char **text, size_t *n, cv_err *err)
{
    *text = NULL, *n = 0;
    /* O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cv_errf(err, "%s: cannot read: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = cv_errf(err, "%s: cannot read: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = cv_errf(err, "%s: not a regular file%s", path, S_ISDIR(st.st_mode) ? " (a directory)" : "");
    else if ((uint64_t)st.st_size > max)
        rc = cv_errf(err, "%s: %lld bytes, more than the %zu MB a %s may have", path, (long long)st.st_size, max >> 20,
                     what);
    char *buf = rc ? NULL : cv_malloc((size_t)st.st_size + 1, what, err);
    if (!rc && !buf) rc = -1;
    size_t got = 0;
    while (rc == 0) { /* the size read at the start bounds the read: a file still growing is cut there */
        const ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0)
            rc = cv_errf(err, "%s: cannot read: %s", path, strerror(errno)); /* EINTR too: a signal stops it */
        else if (r == 0 || (got += (size_t)r) == (size_t)st.st_size)
            break;
    }
    close(fd);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[got] = '\0';
    *text = buf, *n = got;
    return 0;
}

int cv_lock_output(const char *path, const char *flag, cv_file_lock *lk, cv_err *err)
{
    lk->held = false;
    if (cv_check_renamed_output(path, err)) return -1;
    if (snprintf(lk->path, sizeof lk->path, "%s.lock", path) >= (int)sizeof lk->path) return 0;
    for (;;) {
        const int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0) return 0; /* the save will say why the directory takes no files */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            char text[32] = "";
            const ssize_t got = errno == EWOULDBLOCK ? pread(fd, text, sizeof text - 1, 0) : -1;
            close(fd);
            const long pid = got > 0 ? strtol(text, NULL, 10) : 0;
            if (pid > 0)
                return cv_errf(err, "%s is being written by another run (pid %ld); choose another %s or wait", path,
                               pid, flag);
            return cv_errf(err, "%s is being written by another run; choose another %s or wait", path, flag);
        }
        /* the holder before us may have removed the file between our open and our lock: then
         * the lock is on a file no one else will find, and we start again with the path's */
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(lk->path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            char text[32];
            const int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
            const bool noted = ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) == len;
            (void)noted; /* the pid only serves the message above */
            lk->fd = fd;
            lk->held = true;
            return 0;
        }
        close(fd);
    }
}

void cv_unlock_output(cv_file_lock *lk)
{
    if (!lk->held) return;
    unlink(lk->path); /* while still holding it: a run waiting on this file retries (above) */
    close(lk->fd);
    lk->held = false;
}

int cv_check_renamed_output(const char *path, cv_err *err)
{
    if (cv_output_kind(path, err) == 0) return 0;
    return cv_errf(err, "%s: not a regular file (this output is written beside it and renamed over it)", path);
}

int cv_output_kind(const char *path, cv_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) return 0;
    if (S_ISCHR(st.st_mode)) return 1;
    return cv_errf(err, "%s: not a regular file%s", path, S_ISDIR(st.st_mode) ? " (a directory)" : "");
}

int cv_write_file_atomic(const char *path, const void *data, size_t len, cv_err *err)
{
    char tmp[4096];
    const int kind = cv_output_kind(path, err);
    const bool device = kind == 1;
    if (kind < 0) return -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cv_errf(err, "%s: path too long", path);
    const int fd = device ? open(path, O_WRONLY | O_CLOEXEC) : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    int rc = 0;
    size_t off = 0;
    errno = 0;
    while (off < len) {
        const ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    const int saved = errno;
    if (off < len) rc = cv_errf(err, "%s: cannot write (%s)", path, strerror(saved ? saved : EIO));
    else if (!device && fsync(fd) != 0) rc = cv_errf(err, "%s: cannot write (%s)", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = cv_errf(err, "%s: cannot write (%s)", path, strerror(errno));
    if (!rc && !device && rename(tmp, path) != 0) rc = cv_errf(err, "%s: cannot write (%s)", path, strerror(errno));
    if (rc && !device) unlink(tmp);
    return rc;
}
