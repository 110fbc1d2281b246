/* Training history rows: the columns train's --log writes, kept in memory for --plot, and a
 * strict reader of such CSV files for `convoy plot`. */
#include "convoy/history.h"
#include "convoy/files.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* epoch, lr, every metric and its val_ twin, seconds, images_per_s */
_Static_assert(CV_HISTORY_MAX_COLS >= 4 + 2 * CV_METRIC_LIST_MAX, "a history has room for every metric");

static void add_col(cv_history *h, const char *prefix, const char *name)
{
    if (h->ncols < CV_HISTORY_MAX_COLS)
        snprintf(h->cols[h->ncols++], sizeof h->cols[0], "%s%s", prefix, name);
}

void cv_history_init(cv_history *h, const cv_model_spec *spec, bool has_val)
{
    memset(h, 0, sizeof *h);
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    const int k = cv_metric_list(spec, &(cv_metrics){0}, names, values);
    add_col(h, "", "epoch");
    add_col(h, "", "lr");
    for (int i = 0; i < k; i++) add_col(h, "", names[i]);
    for (int i = 0; has_val && i < k; i++) add_col(h, "val_", names[i]);
    add_col(h, "", "seconds");
    add_col(h, "", "images_per_s");
}

static int push_row(cv_history *h, const double *row, cv_err *err);

void cv_history_seed(cv_history *h, const cv_model_spec *spec, bool has_val, const char *csv)
{
    cv_history_init(h, spec, has_val);
    cv_history old;
    if (!csv || cv_history_read_csv(&old, csv, NULL)) return;
    bool same = old.ncols == h->ncols;
    for (int i = 0; same && i < h->ncols; i++) same = strcmp(old.cols[i], h->cols[i]) == 0;
    for (int64_t r = 0; same && r < old.nrows; r++)
        if (push_row(h, old.v + r * old.ncols, NULL)) break;
    cv_history_free(&old);
}

static int push_row(cv_history *h, const double *row, cv_err *err)
{
    if (h->nrows == h->cap) {
        const int64_t cap = h->cap ? 2 * h->cap : 16;
        double *v = realloc(h->v, sizeof(double) * (size_t)(cap * h->ncols));
        if (!v) return cv_errf(err, "out of memory for the training history (%lld rows)", (long long)cap);
        h->v = v;
        h->cap = cap;
    }
    memcpy(h->v + h->nrows * h->ncols, row, sizeof(double) * (size_t)h->ncols);
    h->nrows++;
    return 0;
}

int cv_history_add_epoch(cv_history *h, const cv_model_spec *spec, int epoch, double lr, const cv_metrics *train,
                         const cv_metrics *val, double seconds, double images_per_s, cv_err *err)
{
    double row[CV_HISTORY_MAX_COLS];
    const char *names[CV_METRIC_LIST_MAX];
    int c = 0;
    row[c++] = epoch;
    row[c++] = lr;
    c += cv_metric_list(spec, train, names, row + c);
    if (cv_history_col(h, "val_loss") >= 0) c += cv_metric_list(spec, val, names, row + c);
    row[c++] = seconds;
    row[c++] = images_per_s;
    if (c != h->ncols) return cv_errf(err, "internal: history row of %d values for %d columns", c, h->ncols);
    return push_row(h, row, err);
}

int cv_history_col(const cv_history *h, const char *name) { return cv_table_col(h, name); }

void cv_history_free(cv_history *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* Splits line at commas in place (the trailing newline removed); returns the field count. */
static int split_fields(char *line, char **fields, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line;; p++) {
        if (n < max) fields[n] = p;
        n++;
        p += strcspn(p, ",");
        if (*p == '\0') break;
        *p = '\0';
    }
    return n;
}

int cv_history_read_csv(cv_history *h, const char *path, cv_err *err)
{
    memset(h, 0, sizeof *h);
    snprintf(h->source, sizeof h->source, "%s", path);
    if (cv_require_regular(path, err)) return -1; /* a FIFO would block the open */
    FILE *f = fopen(path, "r");
    if (!f) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    char line[4096], *fields[CV_HISTORY_MAX_COLS + 1];
    int rc = 0, lineno = 1;
    if (!fgets(line, sizeof line, f)) {
        rc = cv_errf(err, "%s: empty file (no header row)", path);
        goto done;
    }
    const int n = split_fields(line, fields, CV_HISTORY_MAX_COLS + 1);
    if (n > CV_HISTORY_MAX_COLS) {
        rc = cv_errf(err, "%s:1: %d columns, at most %d are supported", path, n, CV_HISTORY_MAX_COLS);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (!fields[i][0] || strlen(fields[i]) >= sizeof h->cols[0]) {
            rc = cv_errf(err, "%s:1: column %d has an empty or overlong name", path, i + 1);
            goto done;
        }
        add_col(h, "", fields[i]);
    }
    if (cv_history_col(h, "epoch") < 0 || cv_history_col(h, "loss") < 0) {
        rc = cv_errf(err, "%s:1: no 'epoch' and 'loss' columns (not a convoy --log history)", path);
        goto done;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = cv_errf(err, "%s:%d: line longer than %zu bytes", path, lineno, sizeof line - 1);
            goto done;
        }
        if (line[strspn(line, " \t\r\n")] == '\0') continue; /* blank line */
        const int got = split_fields(line, fields, CV_HISTORY_MAX_COLS + 1);
        if (got != h->ncols) {
            rc = cv_errf(err, "%s:%d: %d fields, the header has %d", path, lineno, got, h->ncols);
            goto done;
        }
        double row[CV_HISTORY_MAX_COLS];
        for (int i = 0; i < got; i++) {
            char *end;
            errno = 0;
            row[i] = strtod(fields[i], &end);
            if (end == fields[i] || *end || errno == ERANGE) {
                rc = cv_errf(err, "%s:%d: bad number '%s' in column %s", path, lineno, fields[i], h->cols[i]);
                goto done;
            }
        }
        if ((rc = push_row(h, row, err))) goto done;
    }
    if (ferror(f)) rc = cv_errf(err, "%s: read error (%s)", path, strerror(errno));
done:
    fclose(f);
    if (rc) cv_history_free(h);
    return rc;
}
