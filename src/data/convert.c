/* Converters from common formats to convoy dataset files: IDX image/label pairs (plain or
 * gzip, as Fashion-MNIST ships), the Fashion-MNIST directory as a whole (optionally as a
 * binary task), CIFAR-10 and CIFAR-100's binary version, and CSV with a header row. Each
 * validates its input fully before writing. */
#define _DEFAULT_SOURCE /* strdup */
#include "convoy/data.h"
#include "convoy/files.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *const FMNIST_CLASSES[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/* ---------------------------------------------------------------- IDX */

/* Reads exactly len bytes; gzread takes an unsigned int, so big payloads go in pieces. */
static int gz_read_all(gzFile g, void *buf, size_t len, const char *path, const char *what,
                       cv_err *err)
{
    size_t got = 0;
    while (got < len) {
        size_t want = len - got > (1u << 30) ? (1u << 30) : len - got;
        int r = gzread(g, (char *)buf + got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(g, &zerr);
            return cv_errf(err, "%s: corrupt data (%s)", path, msg ? msg : "read error");
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got < len)
        return cv_errf(err, "%s: truncated: %s needs %zu bytes, found %zu", path, what, len, got);
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads an IDX file of unsigned bytes with `ndims` dimensions (magic 0x0000080N). dims gets
 * the sizes; *data a malloc'd payload of their product. */
static int idx_read(const char *path, int ndims, uint32_t *dims, uint8_t **data, cv_err *err)
{
    *data = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return cv_errf(err, "%s: no such file", path);
        return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return cv_errf(err, "%s: not a regular file", path); /* a FIFO would block */
    gzFile g = gzopen(path, "rb"); /* transparently reads plain files too */
    if (!g) return cv_errf(err, "%s: cannot open (%s)", path, errno ? strerror(errno) : "zlib");
    int rc = -1;
    unsigned char hdr[4 + 4 * 3];
    const char *kind = ndims == 3 ? "images" : "labels";
    if (gz_read_all(g, hdr, 4, path, "the IDX header", err) < 0) goto done;
    uint32_t magic = be32(hdr), want = 0x00000800u | (uint32_t)ndims;
    if (magic != want) {
        cv_errf(err, "%s: bad magic 0x%08x, expected 0x%08x (IDX unsigned-byte %s)", path,
                (unsigned)magic, (unsigned)want, kind);
        goto done;
    }
    if (gz_read_all(g, hdr + 4, 4 * (size_t)ndims, path, "the IDX header", err) < 0) goto done;
    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > INT32_MAX) {
            cv_errf(err, "%s: dimension %d has size %u", path, i, (unsigned)dims[i]);
            goto done;
        }
        total *= dims[i]; /* checked each step, so the product never overflows */
        if (total > (uint64_t)SIZE_MAX / 2) {
            cv_errf(err, "%s: header sizes too large", path);
            goto done;
        }
    }
    *data = cv_malloc((size_t)total, path, err);
    if (!*data) goto done;
    char what[64];
    snprintf(what, sizeof what, "the %s", kind);
    if (gz_read_all(g, *data, (size_t)total, path, what, err) < 0) goto done;
    unsigned char extra;
    int r = gzread(g, &extra, 1);
    if (r != 0) {
        cv_errf(err, "%s: %s after the %llu bytes its header promises", path,
                r > 0 ? "extra data" : "corrupt data", (unsigned long long)total);
        goto done;
    }
    rc = 0;
done:
    if (gzclose(g) != Z_OK && rc == 0) rc = cv_errf(err, "%s: read error on close", path);
    if (rc < 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

/* Reads an image/label IDX pair whose counts agree. */
static int idx_pair(const char *images, const char *labels, uint32_t *idims, uint8_t **x,
                    int32_t **y, cv_err *err)
{
    uint32_t ldims[1];
    uint8_t *lab = NULL;
    *x = NULL;
    *y = NULL;
    if (idx_read(images, 3, idims, x, err) < 0) return -1;
    if (idx_read(labels, 1, ldims, &lab, err) < 0) goto fail;
    if (ldims[0] != idims[0]) {
        cv_errf(err, "%s: %u labels but %s has %u images", labels, (unsigned)ldims[0], images,
                (unsigned)idims[0]);
        goto fail;
    }
    *y = cv_malloc((size_t)ldims[0] * sizeof **y, labels, err);
    if (!*y) goto fail;
    for (uint32_t i = 0; i < ldims[0]; i++) (*y)[i] = lab[i];
    free(lab);
    return 0;
fail:
    free(lab);
    free(*x);
    *x = NULL;
    return -1;
}

int cv_convert_idx(const char *images, const char *labels, const char *out, cv_err *err)
{
    uint32_t d[3];
    uint8_t *x;
    int32_t *y;
    if (idx_pair(images, labels, d, &x, &y, err) < 0) return -1;
    int rc = cv_dataset_write(out, d[0], cv_shape_hwc((int)d[1], (int)d[2], 1), CV_DTYPE_U8, x, y,
                              NULL, 0, NULL, 0, err);
    free(x);
    free(y);
    return rc;
}

/* mkdir -p: creates every missing component; an existing directory is fine. */
static int mkdir_p(const char *dir, cv_err *err)
{
    char buf[4096];
    if (!dir[0]) return cv_errf(err, "output directory: empty name");
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return cv_errf(err, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return cv_errf(err, "%s: cannot create directory %s (%s)", dir, buf, strerror(errno));
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return cv_errf(err, "%s: %s is not a directory", dir, buf);
        *p = c;
        if (!c) break;
    }
    return 0;
}

/* srcdir/name, preferring name.gz and falling back to an uncompressed copy. */
static void fmnist_path(char *out, size_t size, const char *srcdir, const char *name)
{
    snprintf(out, size, "%s/%s.gz", srcdir, name);
    struct stat st;
    if (stat(out, &st) != 0) {
        char plain[1024];
        snprintf(plain, sizeof plain, "%s/%s", srcdir, name);
        if (stat(plain, &st) == 0) snprintf(out, size, "%s", plain);
    }
}

/* Keeps the images of subset's classes (in place; the first per_class of each when limit),
 * relabelled to their position in the list when asked. Returns the number kept. */
static uint32_t keep_classes(uint8_t *x, int32_t *y, uint32_t n, size_t img, const cv_class_subset *sub,
                             bool limit)
{
    int slot[10], taken[10] = {0};
    for (int c = 0; c < 10; c++) slot[c] = -1;
    for (int j = 0; j < sub->nclasses; j++) slot[sub->classes[j]] = j;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        const int j = slot[y[i]];
        if (j < 0 || (limit && sub->per_class > 0 && taken[j] >= sub->per_class)) continue;
        taken[j]++;
        memmove(x + kept * img, x + i * img, img);
        y[kept++] = sub->relabel ? j : y[i];
    }
    return kept;
}

static int check_subset(const cv_class_subset *sub, cv_err *err)
{
    bool seen[10] = {false};
    if (sub->nclasses < 1) return cv_errf(err, "classes: the list is empty");
    if (sub->per_class < 0) return cv_errf(err, "per-class count %d must be >= 0", sub->per_class);
    for (int j = 0; j < sub->nclasses; j++) {
        const int c = sub->classes[j];
        if (c < 0 || c >= 10) return cv_errf(err, "class %d outside [0, 10)", c);
        if (seen[c]) return cv_errf(err, "class %d listed twice", c);
        seen[c] = true;
    }
    return 0;
}

int cv_convert_fashion_mnist(const char *srcdir, const char *outdir, const int *positive,
                             int npos, const char *pos_name, const cv_class_subset *subset,
                             cv_err *err)
{
    if (positive && subset)
        return cv_errf(err, "positive classes and a class subset do not combine (pick one)");
    if (subset && check_subset(subset, err)) return -1;
    const char *names[10];
    for (int j = 0; subset && subset->relabel && j < subset->nclasses; j++)
        names[j] = FMNIST_CLASSES[subset->classes[j]];
    bool is_pos[10] = {false};
    char default_name[256] = "";
    if (positive) {
        if (npos < 1) return cv_errf(err, "positive classes: the list is empty");
        for (int i = 0; i < npos; i++) {
            if (positive[i] < 0 || positive[i] >= 10)
                return cv_errf(err, "positive class %d outside [0, 10)", positive[i]);
            is_pos[positive[i]] = true;
        }
        /* Without a name, the positive class is called after its members: "Sandal+Bag". */
        for (int c = 0; c < 10 && !pos_name; c++) {
            if (!is_pos[c]) continue;
            size_t used = strlen(default_name);
            snprintf(default_name + used, sizeof default_name - used, "%s%s", used ? "+" : "",
                     FMNIST_CLASSES[c]);
        }
    }
    if (mkdir_p(outdir, err) < 0) return -1;
    static const char *const split_src[2] = {"train", "t10k"};
    static const char *const split_out[2] = {"train.h5", "test.h5"};
    for (int s = 0; s < 2; s++) {
        char images[1024], labels[1024], name[64], out[1024];
        snprintf(name, sizeof name, "%s-images-idx3-ubyte", split_src[s]);
        fmnist_path(images, sizeof images, srcdir, name);
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split_src[s]);
        fmnist_path(labels, sizeof labels, srcdir, name);
        if (snprintf(out, sizeof out, "%s/%s", outdir, split_out[s]) >= (int)sizeof out)
            return cv_errf(err, "%s: path too long", outdir);
        uint32_t d[3];
        uint8_t *x;
        int32_t *y;
        if (idx_pair(images, labels, d, &x, &y, err) < 0) return -1;
        int rc = 0;
        for (uint32_t i = 0; i < d[0] && rc == 0; i++) {
            if (y[i] >= 10)
                rc = cv_errf(err, "%s: label %d of image %u outside [0, 10)", labels, (int)y[i],
                             (unsigned)i);
            else if (positive)
                y[i] = is_pos[y[i]];
        }
        if (rc == 0 && subset) /* --per-class limits the training split only */
            d[0] = keep_classes(x, y, d[0], (size_t)d[1] * d[2], subset, s == 0);
        char *bin[2] = {"other", (char *)(pos_name ? pos_name : default_name)};
        const bool relabel = subset && subset->relabel;
        char *const *cls = positive ? bin : relabel ? (char *const *)names : (char *const *)FMNIST_CLASSES;
        if (rc == 0)
            rc = cv_dataset_write(out, d[0], cv_shape_hwc((int)d[1], (int)d[2], 1), CV_DTYPE_U8,
                                  x, y, NULL, 0, cls, positive ? 2 : relabel ? subset->nclasses : 10, err);
        free(x);
        free(y);
        if (rc < 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- CIFAR */

/* A whole file into memory. */
static int slurp(const char *path, uint8_t **buf, size_t *n, cv_err *err)
{
    *buf = NULL, *n = 0;
    if (cv_require_regular(path, err)) return -1; /* before the open: a FIFO would block it */
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot read (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cv_errf(err, "%s: not a regular file", path);
    }
    *buf = cv_malloc((size_t)st.st_size + 1, path, err);
    const size_t got = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!*buf) return -1;
    if (got != (size_t)st.st_size) {
        free(*buf);
        *buf = NULL;
        return cv_errf(err, "%s: read %zu of %lld bytes", path, got, (long long)st.st_size);
    }
    (*buf)[got] = '\0';
    *n = got;
    return 0;
}

/* The class names of a CIFAR meta file: one a line, blank lines ignored; exactly want of them. */
static int cifar_names(const char *path, char **names, int want, cv_err *err)
{
    uint8_t *text;
    size_t n;
    if (slurp(path, &text, &n, err)) return -1;
    int k = 0, rc = 0;
    for (char *line = strtok((char *)text, "\r\n"); line && rc == 0; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = '\0';
        if (!len) continue;
        if (k == want) rc = cv_errf(err, "%s: more than %d class names", path, want);
        else if (!(names[k++] = strdup(line))) rc = cv_errf(err, "out of memory");
    }
    free(text);
    if (rc == 0 && k != want) rc = cv_errf(err, "%s: %d class names, CIFAR-%d has %d", path, k, want == 20 ? 100 : want, want);
    return rc;
}

/* Appends the records of one CIFAR binary file: (label bytes, then 1024 R, 1024 G, 1024 B) as
 * NHWC pixels and the label at byte `which` of the record's label bytes. */
static int cifar_records(const char *path, int label_bytes, int which, int classes, uint8_t **x, int32_t **y,
                         int64_t *count, cv_err *err)
{
    enum { PIXELS = 32 * 32 };
    uint8_t *buf;
    size_t n;
    if (slurp(path, &buf, &n, err)) return -1;
    const size_t rec = (size_t)label_bytes + 3 * PIXELS;
    int rc = 0;
    if (n == 0 || n % rec)
        rc = cv_errf(err, "%s: %zu bytes, not a whole number of %zu-byte CIFAR records (is it the binary version?)",
                     path, n, rec);
    const int64_t add = (int64_t)(n / rec);
    uint8_t *nx = rc ? NULL : realloc(*x, (size_t)(*count + add) * 3 * PIXELS);
    if (nx) *x = nx;
    int32_t *ny = nx ? realloc(*y, sizeof **y * (size_t)(*count + add)) : NULL;
    if (ny) *y = ny;
    if (rc == 0 && (!nx || !ny)) rc = cv_errf(err, "%s: out of memory", path);
    for (int64_t r = 0; rc == 0 && r < add; r++) {
        const uint8_t *p = buf + (size_t)r * rec;
        if (p[which] >= classes) {
            rc = cv_errf(err, "%s: record %lld has label %d, outside [0, %d)", path, (long long)r, p[which], classes);
            break;
        }
        (*y)[*count + r] = p[which];
        uint8_t *o = *x + (size_t)(*count + r) * 3 * PIXELS;
        for (int i = 0; i < PIXELS; i++)
            for (int c = 0; c < 3; c++) o[3 * i + c] = p[label_bytes + c * PIXELS + i];
    }
    free(buf);
    if (rc == 0) *count += add;
    return rc;
}

int cv_convert_cifar(const char *srcdir, const char *outdir, int which, bool coarse, cv_err *err)
{
    if (which != 10 && which != 100) return cv_errf(err, "CIFAR-%d: there are CIFAR-10 and CIFAR-100", which);
    if (coarse && which != 100) return cv_errf(err, "--label coarse is CIFAR-100's (its 20 superclasses)");
    const int classes = which == 10 ? 10 : coarse ? 20 : 100;
    char *names[100] = {NULL}, path[1024];
    snprintf(path, sizeof path, "%s/%s", srcdir,
             which == 10 ? "batches.meta.txt" : coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
    int rc = cifar_names(path, names, classes, err);
    /* every input read and checked before anything is written */
    uint8_t *x[2] = {NULL, NULL};
    int32_t *y[2] = {NULL, NULL};
    int64_t n[2] = {0, 0};
    for (int s = 0; s < 2 && rc == 0; s++) {
        const int files = which == 10 && s == 0 ? 5 : 1;
        for (int k = 0; k < files && rc == 0; k++) {
            if (which == 10)
                snprintf(path, sizeof path, s == 0 ? "%s/data_batch_%d.bin" : "%s/test_batch.bin", srcdir, k + 1);
            else
                snprintf(path, sizeof path, "%s/%s", srcdir, s == 0 ? "train.bin" : "test.bin");
            rc = cifar_records(path, which == 10 ? 1 : 2, which == 10 || coarse ? 0 : 1, classes, &x[s], &y[s], &n[s], err);
        }
    }
    if (rc == 0) rc = mkdir_p(outdir, err);
    const cv_data_info info = {classes, names, 32, 32, 3, "none (32x32 as CIFAR distributes them)"};
    for (int s = 0; s < 2 && rc == 0; s++) {
        if (snprintf(path, sizeof path, "%s/%s", outdir, s == 0 ? "train.h5" : "test.h5") >= (int)sizeof path)
            rc = cv_errf(err, "%s: path too long", outdir);
        if (rc == 0) rc = cv_dataset_write_info(path, n[s], cv_shape_hwc(32, 32, 3), CV_DTYPE_U8, x[s], y[s], NULL, 0, &info, err);
    }
    for (int s = 0; s < 2; s++) {
        free(x[s]);
        free(y[s]);
    }
    for (int i = 0; i < classes; i++) free(names[i]);
    return rc;
}

/* ---------------------------------------------------------------- CSV */

/* Trims blanks and one pair of surrounding double quotes (fields never contain commas). */
static char *trim_field(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Splits line in place on commas into at most max fields; returns the field count (which
 * may exceed max: only the first max are stored). */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (n < max) fields[n] = trim_field(p);
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    return n;
}

/* getline keeps NUL bytes, where every string function after it would stop: the rest of the line
 * would vanish without a word (a binary file, or UTF-16 text). */
static int nul_in_line(const char *line, ssize_t len, const char *path, long lineno, cv_err *err)
{
    const size_t at = strlen(line);
    if ((ssize_t)at == len) return 0;
    return cv_errf(err, "%s:%ld: a NUL byte at column %zu (binary data or UTF-16, not CSV text)", path, lineno,
                   at + 1);
}

/* Strips the line ending; true when nothing but blanks remains. */
static bool chomp_blank(char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return strspn(line, " \t") == n;
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

typedef struct {
    float *x;
    double *y;
    int64_t n, cap;
} csv_rows;

static int csv_grow(csv_rows *r, int64_t d, const char *path, cv_err *err)
{
    int64_t cap = r->cap ? r->cap * 2 : 1024;
    float *x = realloc(r->x, (size_t)cap * (size_t)d * sizeof *x);
    if (x) r->x = x;
    double *y = x ? realloc(r->y, (size_t)cap * sizeof *y) : NULL;
    if (y) r->y = y;
    if (!x || !y) return cv_errf(err, "%s: out of memory after %lld rows", path, (long long)r->n);
    r->cap = cap;
    return 0;
}

int cv_convert_csv(const char *csv, const char *label, bool as_float, const char *out, cv_err *err)
{
    if (cv_require_regular(csv, err)) return -1; /* streamed, no size limit, but a FIFO would block */
    FILE *fp = fopen(csv, "r");
    if (!fp) {
        if (errno == ENOENT) return cv_errf(err, "%s: no such file", csv);
        return cv_errf(err, "%s: cannot open (%s)", csv, strerror(errno));
    }
    int rc = -1;
    char *line = NULL, *header = NULL;
    size_t linecap = 0;
    char **names = NULL, **fields = NULL;
    csv_rows rows = {0};
    long lineno = 0;

    /* The header: the first line that is not blank. */
    ssize_t len;
    while ((len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        if (nul_in_line(line, len, csv, lineno, err)) goto done;
        if (!chomp_blank(line)) break;
    }
    if (len < 0) {
        if (ferror(fp)) cv_errf(err, "%s: read error (%s)", csv, strerror(errno));
        else cv_errf(err, "%s: empty file (a header row is required)", csv);
        goto done;
    }
    /* Spreadsheets often save a UTF-8 byte-order mark, which would stick to the first name. */
    header = strdup(strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line);
    if (!header) {
        cv_errf(err, "%s: out of memory", csv);
        goto done;
    }
    int ncols = 1;
    for (const char *c = header; *c; c++) ncols += *c == ',';
    names = cv_calloc((size_t)ncols, sizeof *names, "CSV header", err);
    fields = cv_calloc((size_t)ncols, sizeof *fields, "CSV fields", err);
    if (!names || !fields) goto done;
    split_csv(header, names, ncols);

    int lcol = -1;
    for (int c = 0; c < ncols; c++)
        if (strcmp(names[c], label) == 0) {
            lcol = c;
            break;
        }
    if (lcol < 0) {
        char *end;
        long v = strtol(label, &end, 10);
        if (*label && *end == '\0' && label[0] != '-' && label[0] != '+') {
            if (v >= ncols) {
                cv_errf(err, "%s: label column %ld but the header has %d columns", csv, v, ncols);
                goto done;
            }
            lcol = (int)v;
        }
    }
    if (lcol < 0) {
        char list[256] = "";
        for (int c = 0; c < ncols; c++) {
            size_t used = strlen(list);
            if (used + 8 >= sizeof list) {
                snprintf(list + used, sizeof list - used, ", ...");
                break;
            }
            snprintf(list + used, sizeof list - used, "%s'%s'", c ? ", " : "", names[c]);
        }
        cv_errf(err, "%s: no label column '%s' (header has %s)", csv, label, list);
        goto done;
    }
    if (ncols < 2) {
        cv_errf(err, "%s: only the label column '%s'; at least one feature column is needed", csv,
                names[lcol]);
        goto done;
    }
    const int64_t d = ncols - 1;

    bool all_int = true;
    long first_neg_line = 0, first_big_line = 0; /* big: an integer past a class index's range */
    double first_big = 0.0;
    double first_neg = 0;
    while ((len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        if (nul_in_line(line, len, csv, lineno, err)) goto done;
        if (chomp_blank(line)) continue;
        int nf = split_csv(line, fields, ncols);
        if (nf != ncols) {
            cv_errf(err, "%s:%ld: %d fields, header has %d", csv, lineno, nf, ncols);
            goto done;
        }
        if (rows.n == rows.cap && csv_grow(&rows, d, csv, err) < 0) goto done;
        float *xr = rows.x + rows.n * d;
        for (int c = 0, j = 0; c < ncols; c++) {
            double v;
            if (!parse_number(fields[c], &v)) {
                cv_errf(err, "%s:%ld: column '%s': bad number '%s'", csv, lineno, names[c],
                        fields[c]);
                goto done;
            }
            if (c == lcol) {
                rows.y[rows.n] = v;
                if (v != floor(v) || fabs(v) > INT32_MAX) all_int = false;
                if (v == floor(v) && fabs(v) > INT32_MAX && !first_big_line) first_big_line = lineno, first_big = v;
                else if (v < 0 && !first_neg_line) first_neg_line = lineno, first_neg = v;
            } else {
                xr[j++] = (float)v;
            }
        }
        rows.n++;
    }
    if (ferror(fp)) {
        cv_errf(err, "%s: read error (%s)", csv, strerror(errno));
        goto done;
    }
    if (rows.n == 0) {
        cv_errf(err, "%s: no data rows after the header", csv);
        goto done;
    }

    /* integers throughout, one of them too large to be a class: a typo, not a regression task */
    bool integral = true;
    for (int64_t i = 0; i < rows.n && first_big_line; i++) integral = integral && rows.y[i] == floor(rows.y[i]);
    if (first_big_line && integral && !as_float) {
        cv_errf(err, "%s:%ld: column '%s': label %.0f is too large for a class (0..%d); for regression targets pass "
                     "--float", csv, first_big_line, names[lcol], first_big, INT32_MAX);
        goto done;
    }
    if (all_int && !as_float) {
        if (first_neg_line) {
            cv_errf(err, "%s:%ld: column '%s': negative label %.0f (class labels must be >= 0; "
                         "use float targets for regression)", csv, first_neg_line, names[lcol],
                    first_neg);
            goto done;
        }
        int32_t *lab = cv_malloc((size_t)rows.n * sizeof *lab, "CSV labels", err);
        if (!lab) goto done;
        for (int64_t i = 0; i < rows.n; i++) lab[i] = (int32_t)rows.y[i];
        rc = cv_dataset_write(out, rows.n, cv_shape_vec((int)d), CV_DTYPE_F32, rows.x, lab, NULL,
                              0, NULL, 0, err);
        free(lab);
    } else {
        float *tg = cv_malloc((size_t)rows.n * sizeof *tg, "CSV targets", err);
        if (!tg) goto done;
        for (int64_t i = 0; i < rows.n; i++) tg[i] = (float)rows.y[i];
        rc = cv_dataset_write(out, rows.n, cv_shape_vec((int)d), CV_DTYPE_F32, rows.x, NULL, tg,
                              1, NULL, 0, err);
        free(tg);
    }
done:
    fclose(fp);
    free(line);
    free(header);
    free(names);
    free(fields);
    free(rows.x);
    free(rows.y);
    return rc;
}
