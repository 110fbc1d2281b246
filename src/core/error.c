/* Error messages and checked allocation shared by every module. */
#include "convoy/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cv_errf(cv_err *err, const char *fmt, ...)
{
    if (err) { /* through a copy: the arguments may include err->msg itself ("%s: %s", path, err->msg) */
        char msg[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        memcpy(err->msg, msg, sizeof msg);
    }
    return -1;
}

void *cv_malloc(size_t bytes, const char *what, cv_err *err)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) cv_errf(err, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *cv_calloc(size_t count, size_t size, const char *what, cv_err *err)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) cv_errf(err, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}
