/* CSV to a convoy dataset file: the reader of spreadsheet exports. Fields are separated by a
 * comma, a semicolon or a tab (the one the first record has most of, unless given); a field in
 * double quotes may hold the separator, line breaks and "" for a quote (RFC 4180); blanks
 * around a field are dropped. The first record names the columns unless there is no header.
 * Every column but the label's is a float32 feature; the label column holds integers (class
 * labels), numbers (regression targets) or names (classes: sorted, then numbered, and kept as
 * the file's class names). The whole file is checked before anything is written. */
#define _DEFAULT_SOURCE /* strdup */
#include "convoy/data.h"
#include "convoy/files.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* distinct class names at most (more is a wrong --label column rather than a task) */
#define CSV_MAX_CLASSES 65536

/* One record: its text (line breaks kept inside quotes), its fields unquoted, NUL-separated. */
typedef struct {
    char *text, *buf; /* the record as read, the fields' bytes */
    size_t text_cap, text_len, buf_cap;
    char **fields;
    int nfields, fields_cap;
    long first_line, last_line; /* of the file, 1-based */
} csv_record;

typedef enum { CSV_OK, CSV_OPEN_QUOTE, CSV_AFTER_QUOTE, CSV_NOMEM } csv_status;

/* Splits rec->text at sep into rec->fields. A field is trimmed of blanks; one that starts with a
 * quote runs to the closing quote ("" inside is a quote) and may be followed by blanks only. */
static csv_status split_record(csv_record *rec, char sep)
{
    if (rec->buf_cap < rec->text_len + 1) {
        char *b = realloc(rec->buf, rec->text_len + 1);
        if (!b) return CSV_NOMEM;
        rec->buf = b, rec->buf_cap = rec->text_len + 1;
    }
    rec->nfields = 0;
    const char *p = rec->text, *end = rec->text + rec->text_len;
    char *o = rec->buf;
    for (;;) {
        if (rec->nfields == rec->fields_cap) {
            const int cap = rec->fields_cap ? 2 * rec->fields_cap : 16;
            char **f = realloc(rec->fields, (size_t)cap * sizeof *f);
            if (!f) return CSV_NOMEM;
            rec->fields = f, rec->fields_cap = cap;
        }
        rec->fields[rec->nfields++] = o;
        while (p < end && (*p == ' ' || (*p == '\t' && sep != '\t'))) p++;
        if (p < end && *p == '"') {
            for (p++;; p++) {
                if (p == end) return CSV_OPEN_QUOTE;
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        *o++ = '"', p++;
                        continue;
                    }
                    p++;
                    break;
                }
                *o++ = *p;
            }
            while (p < end && (*p == ' ' || (*p == '\t' && sep != '\t'))) p++;
            if (p < end && *p != sep) return CSV_AFTER_QUOTE;
        } else {
            char *start = o;
            while (p < end && *p != sep) *o++ = *p++;
            while (o > start && (o[-1] == ' ' || (o[-1] == '\t' && sep != '\t'))) o--;
        }
        *o++ = '\0';
        if (p == end) return CSV_OK;
        p++; /* the separator */
    }
}

/* The separator the text has most of outside quotes: comma, semicolon or tab (comma on a tie). */
static char sniff_separator(const char *t, size_t n)
{
    size_t comma = 0, semi = 0, tab = 0;
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '"') quoted = !quoted;
        else if (!quoted) comma += t[i] == ',', semi += t[i] == ';', tab += t[i] == '\t';
    }
    return semi > comma && semi >= tab ? ';' : tab > comma && tab > semi ? '\t' : ',';
}

/* Where split_record would be after text: whether a quoted field is still open at a line's end is
 * known from the new line alone, so a record of many lines is scanned once. */
enum { S_START, S_UNQUOTED, S_QUOTED, S_QUOTE_IN_QUOTED, S_AFTER_QUOTE };
static int scan_state(int st, const char *p, size_t n, char sep)
{
    for (size_t i = 0; i < n; i++) {
        const char c = p[i];
        const bool blank = c == ' ' || (c == '\t' && sep != '\t');
        switch (st) {
        case S_START: st = c == sep || blank ? S_START : c == '"' ? S_QUOTED : S_UNQUOTED; break;
        case S_UNQUOTED: st = c == sep ? S_START : S_UNQUOTED; break;
        case S_QUOTED: st = c == '"' ? S_QUOTE_IN_QUOTED : S_QUOTED; break;
        case S_QUOTE_IN_QUOTED: st = c == '"' ? S_QUOTED : c == sep ? S_START : S_AFTER_QUOTE; break;
        default: st = c == sep ? S_START : S_AFTER_QUOTE; break;
        }
    }
    return st;
}

/* a record (all its lines) may hold this many bytes: more is an unclosed quote, not data */
#define CSV_RECORD_MAX ((size_t)64 << 20)

/* Reads the next record that is not blank into rec (more lines while a quote is open) and splits
 * it; 1 a record, 0 the end of the file, -1 an error (set). *sep 0: sniffed from this record. */
static int read_record(FILE *fp, const char *path, csv_record *rec, char *sep, long *lineno, cv_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, st = S_START;
    rec->text_len = 0;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        ++*lineno;
        if (*lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) /* a spreadsheet's BOM */
            memmove(line, line + 3, (size_t)len - 2), len -= 3;
        if ((ssize_t)strlen(line) < len) { /* every string function would stop there: the rest would vanish */
            rc = cv_errf(err, "%s:%ld: a NUL byte at column %zu (binary data or UTF-16, not CSV text)", path, *lineno,
                         strlen(line) + 1);
            goto out;
        }
        size_t n = (size_t)len; /* the line without its ending */
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (rec->text_len == 0) {
            rec->first_line = *lineno;
            if (strspn(line, " \t") >= n) continue; /* a blank line between records */
            if (!*sep) *sep = sniff_separator(line, n);
        }
        rec->last_line = *lineno;
        if (rec->text_len + (size_t)len > CSV_RECORD_MAX) {
            rc = cv_errf(err, "%s:%ld: a record over %zu MB (a quoted field that is never closed?)", path,
                         rec->first_line, CSV_RECORD_MAX >> 20);
            goto out;
        }
        if (rec->text_cap < rec->text_len + (size_t)len + 1) {
            const size_t c = 2 * (rec->text_len + (size_t)len + 1);
            char *t = realloc(rec->text, c);
            if (!t) {
                rc = cv_errf(err, "%s:%ld: out of memory", path, *lineno);
                goto out;
            }
            rec->text = t, rec->text_cap = c;
        }
        memcpy(rec->text + rec->text_len, line, (size_t)len + 1);
        st = scan_state(st, line, n, *sep);
        if (st == S_QUOTED) { /* the field goes on on the next line, its line break kept */
            rec->text_len += (size_t)len;
            continue;
        }
        rec->text_len += n;
        rec->text[rec->text_len] = '\0';
        const csv_status sp = split_record(rec, *sep);
        if (sp == CSV_NOMEM) rc = cv_errf(err, "%s:%ld: out of memory", path, *lineno);
        else if (sp == CSV_OPEN_QUOTE) rc = cv_errf(err, "%s:%ld: internal: an open quote", path, rec->first_line);
        else if (sp == CSV_AFTER_QUOTE)
            rc = cv_errf(err, "%s:%ld: text after a closing quote (a quote inside a quoted field is written \"\")",
                         path, rec->first_line);
        else rc = 1;
        goto out;
    }
    if (ferror(fp)) rc = cv_errf(err, "%s: read error (%s)", path, strerror(errno));
    else if (rec->text_len)
        rc = cv_errf(err, "%s:%ld: a quoted field is not closed before the end of the file", path, rec->first_line);
out:
    free(line);
    return rc;
}

/* A whole field as a finite double (float range, since x is stored as float32). */
static bool parse_number(const char *s, double *v)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v) && fabs(*v) <= FLT_MAX;
}

/* The rows read so far: features, the label as a number (NaN where it is not one) and as text. */
typedef struct {
    float *x;
    double *y;
    size_t *name_at; /* offsets into names */
    long *line;      /* the file's line each row starts on */
    char *names;
    size_t names_len, names_cap;
    int64_t n, cap;
} csv_rows;

static int rows_add(csv_rows *r, int64_t d, const char *label, long line, const char *path, cv_err *err)
{
    if (r->n == r->cap) {
        /* first about 4 MB of rows (1024 of narrow ones, a single one of 1M columns), then doubling:
         * a wide file's reservation grows with what it holds */
        const int64_t first = ((int64_t)4 << 20) / (d * (int64_t)sizeof(float));
        const int64_t cap = r->cap ? r->cap * 2 : first < 1 ? 1 : first > 1024 ? 1024 : first;
        float *x = realloc(r->x, (size_t)cap * (size_t)d * sizeof *x);
        if (x) r->x = x;
        double *y = x ? realloc(r->y, (size_t)cap * sizeof *y) : NULL;
        if (y) r->y = y;
        size_t *at = y ? realloc(r->name_at, (size_t)cap * sizeof *at) : NULL;
        if (at) r->name_at = at;
        long *ln = at ? realloc(r->line, (size_t)cap * sizeof *ln) : NULL;
        if (ln) r->line = ln;
        if (!ln) return cv_errf(err, "%s: out of memory after %lld rows", path, (long long)r->n);
        r->cap = cap;
    }
    const size_t l = strlen(label) + 1;
    if (r->names_len + l > r->names_cap) {
        const size_t cap = 2 * (r->names_len + l) + 4096;
        char *s = realloc(r->names, cap);
        if (!s) return cv_errf(err, "%s: out of memory after %lld rows", path, (long long)r->n);
        r->names = s, r->names_cap = cap;
    }
    memcpy(r->names + r->names_len, label, l);
    r->name_at[r->n] = r->names_len;
    r->line[r->n] = line;
    r->names_len += l;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The label column's index: a header name, else a 0-based index; -1 (error set) if neither. */
static int label_column(const char *csv, const csv_record *h, bool header, const char *label, cv_err *err)
{
    for (int c = 0; header && c < h->nfields; c++)
        if (strcmp(h->fields[c], label) == 0) return c;
    char *end;
    const long v = strtol(label, &end, 10);
    if (*label && *end == '\0' && label[0] != '-' && label[0] != '+') {
        if (v < h->nfields) return (int)v;
        cv_errf(err, "%s: label column %ld but the %s has %d columns", csv, v, header ? "header" : "first row",
                h->nfields);
        return -1;
    }
    if (!header) {
        cv_errf(err, "%s: --label '%s' must be a column index without a header", csv, label);
        return -1;
    }
    char list[256] = "";
    for (int c = 0; c < h->nfields; c++) {
        size_t used = strlen(list);
        if (used + 8 >= sizeof list) {
            snprintf(list + used, sizeof list - used, ", ...");
            break;
        }
        snprintf(list + used, sizeof list - used, "%s'%s'", c ? ", " : "", h->fields[c]);
    }
    cv_errf(err, "%s: no label column '%s' (header has %s)", csv, label, list);
    return -1;
}

/* Writes the dataset: class names (labels that are not all numbers), integer labels, or float
 * targets. names[c] is the column's name for messages. */
static int write_rows(const char *csv, const csv_rows *rows, int64_t d, const char *lname, bool as_float,
                      const char *out, cv_err *err)
{
    int64_t text = -1, big = -1, neg = -1; /* the first row of each kind, or -1 */
    bool integral = true;
    for (int64_t i = 0; i < rows->n; i++) {
        const double v = rows->y[i];
        if (isnan(v)) {
            if (text < 0) text = i;
            continue;
        }
        integral = integral && v == floor(v);
        if (v == floor(v) && fabs(v) > INT32_MAX && big < 0) big = i;
        if (v < 0 && neg < 0) neg = i;
    }
    const char *name0 = text >= 0 ? rows->names + rows->name_at[text] : "";
    if (text >= 0 && as_float)
        return cv_errf(err, "%s:%ld: column '%s': '%s' is not a number (--float wants numeric targets)", csv,
                       rows->line[text], lname, name0);
    if (text >= 0) { /* class names: sorted, numbered in that order */
        char **sorted = cv_malloc((size_t)rows->n * sizeof *sorted, "CSV class names", err);
        if (!sorted) return -1;
        for (int64_t i = 0; i < rows->n; i++) sorted[i] = rows->names + rows->name_at[i];
        qsort(sorted, (size_t)rows->n, sizeof *sorted, cmp_str);
        int64_t K = 0;
        for (int64_t i = 0; i < rows->n; i++)
            if (i == 0 || strcmp(sorted[i], sorted[K - 1]) != 0) sorted[K++] = sorted[i];
        int rc = -1;
        int32_t *lab = NULL;
        if (K > CSV_MAX_CLASSES) {
            cv_errf(err, "%s: column '%s' has %lld distinct labels (at most %d classes): is it the label column?", csv,
                    lname, (long long)K, CSV_MAX_CLASSES);
        } else if ((lab = cv_malloc((size_t)rows->n * sizeof *lab, "CSV labels", err))) {
            for (int64_t i = 0; i < rows->n; i++) {
                const char *key = rows->names + rows->name_at[i];
                char **hit = bsearch(&key, sorted, (size_t)K, sizeof *sorted, cmp_str);
                lab[i] = (int32_t)(hit - sorted);
            }
            rc = cv_dataset_write(out, rows->n, cv_shape_vec((int)d), CV_DTYPE_F32, rows->x, lab, NULL, 0, sorted,
                                  (int)K, err);
        }
        free(lab);
        free(sorted);
        return rc;
    }
    /* integers throughout, one of them too large to be a class: a typo, not a regression task */
    if (big >= 0 && integral && !as_float)
        return cv_errf(err, "%s:%ld: column '%s': label %.0f is too large for a class (0..%d); for regression targets "
                            "pass --float",
                       csv, rows->line[big], lname, rows->y[big], INT32_MAX);
    if (integral && big < 0 && !as_float) {
        if (neg >= 0)
            return cv_errf(err, "%s:%ld: column '%s': negative label %.0f (class labels must be >= 0; use float "
                                "targets for regression)",
                           csv, rows->line[neg], lname, rows->y[neg]);
        int32_t *lab = cv_malloc((size_t)rows->n * sizeof *lab, "CSV labels", err);
        if (!lab) return -1;
        for (int64_t i = 0; i < rows->n; i++) lab[i] = (int32_t)rows->y[i];
        const int rc = cv_dataset_write(out, rows->n, cv_shape_vec((int)d), CV_DTYPE_F32, rows->x, lab, NULL, 0, NULL,
                                        0, err);
        free(lab);
        return rc;
    }
    float *tg = cv_malloc((size_t)rows->n * sizeof *tg, "CSV targets", err);
    if (!tg) return -1;
    for (int64_t i = 0; i < rows->n; i++) tg[i] = (float)rows->y[i];
    const int rc = cv_dataset_write(out, rows->n, cv_shape_vec((int)d), CV_DTYPE_F32, rows->x, NULL, tg, 1, NULL, 0, err);
    free(tg);
    return rc;
}

int cv_convert_csv_with(const char *csv, const cv_csv_options *o, const char *out, cv_err *err)
{
    if (o->separator && o->separator != ',' && o->separator != ';' && o->separator != '\t')
        return cv_errf(err, "%s: the separator must be ',', ';' or a tab", csv);
    if (cv_require_regular(csv, err)) return -1; /* streamed, no size limit, but a FIFO would block */
    FILE *fp = fopen(csv, "r");
    if (!fp) {
        if (errno == ENOENT) return cv_errf(err, "%s: no such file", csv);
        return cv_errf(err, "%s: cannot open (%s)", csv, strerror(errno));
    }
    int rc = -1, ncols = 0;
    char sep = o->separator, **names = NULL;
    csv_record rec = {0};
    csv_rows rows = {0};
    long lineno = 0;
    const int got = read_record(fp, csv, &rec, &sep, &lineno, err);
    if (got <= 0) {
        if (got == 0) cv_errf(err, "%s: empty file (%s)", csv, o->no_header ? "no rows" : "a header row is required");
        goto done;
    }
    ncols = rec.nfields;
    const int lcol = label_column(csv, &rec, !o->no_header, o->label, err);
    if (lcol < 0) goto done;
    if (ncols < 2) {
        cv_errf(err, "%s: only the label column; at least one feature column is needed (are the fields separated by "
                     "'%s'? --separator sets it)",
                csv, sep == '\t' ? "tab" : sep == ';' ? ";" : ",");
        goto done;
    }
    /* the columns' names for messages: the header's, or their indices */
    if (!(names = cv_calloc((size_t)ncols, sizeof *names, "CSV header", err))) goto done;
    for (int c = 0; c < ncols; c++) {
        char num[24];
        snprintf(num, sizeof num, "%d", c);
        if (!(names[c] = strdup(o->no_header ? num : rec.fields[c]))) {
            cv_errf(err, "%s: out of memory", csv);
            goto done;
        }
    }
    const int64_t d = ncols - 1;
    for (int r = o->no_header ? 1 : read_record(fp, csv, &rec, &sep, &lineno, err); r != 0;
         r = read_record(fp, csv, &rec, &sep, &lineno, err)) {
        if (r < 0) goto done;
        if (rec.nfields != ncols) {
            cv_errf(err, "%s:%ld: %d fields, %s has %d", csv, rec.first_line, rec.nfields,
                    o->no_header ? "the first row" : "header", ncols);
            goto done;
        }
        const char *label = rec.fields[lcol];
        if (!*label) {
            cv_errf(err, "%s:%ld: column '%s': empty label", csv, rec.first_line, names[lcol]);
            goto done;
        }
        if (rows_add(&rows, d, label, rec.first_line, csv, err)) goto done;
        float *xr = rows.x + rows.n * d;
        for (int c = 0, j = 0; c < ncols; c++) {
            double v;
            const bool num = parse_number(rec.fields[c], &v);
            if (c == lcol) {
                rows.y[rows.n] = num ? v : NAN;
            } else if (!num) {
                cv_errf(err, "%s:%ld: column '%s': bad number '%s'", csv, rec.first_line, names[c], rec.fields[c]);
                goto done;
            } else {
                xr[j++] = (float)v;
            }
        }
        rows.n++;
    }
    if (rows.n == 0) {
        cv_errf(err, "%s: no data rows after the header", csv);
        goto done;
    }
    rc = write_rows(csv, &rows, d, names[lcol], o->as_float, out, err);
done:
    fclose(fp);
    for (int c = 0; names && c < ncols; c++) free(names[c]);
    free(names);
    free(rec.text);
    free(rec.buf);
    free(rec.fields);
    free(rows.x);
    free(rows.y);
    free(rows.name_at);
    free(rows.line);
    free(rows.names);
    return rc;
}

int cv_convert_csv(const char *csv, const char *label, bool as_float, const char *out, cv_err *err)
{
    const cv_csv_options o = {.label = label, .as_float = as_float};
    return cv_convert_csv_with(csv, &o, out, err);
}
