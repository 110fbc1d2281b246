/* `convoy augment`: augmented images of a dataset written as PNG or JPEG files, like Keras's
 * flow(save_to_dir=...), and a contact sheet of originals beside their variants. */
#include "convoy/augment.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convoy/files.h"
#include "convoy/image.h"

void cv_augment_file_name(char *buf, size_t size, const char *dir, const char *prefix, int64_t row, uint64_t key,
                          const char *ext)
{
    snprintf(buf, size, "%s/%s_%lld_%llu.%s", dir, prefix, (long long)row,
             (unsigned long long)((key >> 16) % 10000000u), ext);
}

void cv_augment_png_name(char *buf, size_t size, const char *dir, const char *prefix, int64_t row, uint64_t key)
{
    cv_augment_file_name(buf, size, dir, prefix, row, key, "png");
}

void cv_augment_to_pixels(const float *x, int64_t n, const cv_augment_units *u, float *tmp, uint8_t *out)
{
    for (int64_t j = 0; j < n; j++) tmp[j] = u->mean ? x[j] * u->std[j] + u->mean[j] : x[j] / u->unit;
    if (u->max_value <= 0) { /* float data has no pixel range: this image's min..max, as Keras */
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            lo = fminf(lo, tmp[j]);
            hi = fmaxf(hi, tmp[j]);
        }
        cv_image_scale(tmp, n, lo, hi, out);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        const float v = tmp[j];
        out[j] = (uint8_t)(v <= 0 ? 0 : v >= u->max_value ? u->max_value : lrintf(v));
    }
}

/* Row `row` of ds augmented as training epoch `epoch` would, into x (normalised) and px. */
static int augmented(const cv_augment_config *c, cv_dataset *ds, const cv_normalizer *nz, const cv_augment_units *u,
                     uint64_t seed, int64_t epoch, int64_t row, float *x, float *tmp, uint8_t *px, cv_err *err)
{
    const cv_shape s = ds->shape;
    if (cv_dataset_fetch(ds, nz, &row, 1, x, err)) return -1;
    if (epoch >= 0)
        cv_augment_sample(c, x, (int)s.d[0], (int)s.d[1], (int)s.d[2], u, cv_augment_key(seed, epoch, row), tmp);
    cv_augment_to_pixels(x, cv_shape_size(s), u, tmp, px);
    return 0;
}

/* mkdir -p: the directory and any missing parents. */
static int make_dir(const char *dir, cv_err *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return cv_errf(err, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        const char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return cv_errf(err, "%s: exists and is not a directory", path);
        } else if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            return cv_errf(err, "%s: cannot create the directory (%s)", path, strerror(errno));
        }
        if (c == '\0') return 0;
        *p = c;
    }
}

int cv_augment_save(const cv_augment_config *c, cv_dataset *ds, const cv_normalizer *nz, uint64_t seed,
                    int64_t count, const char *dir, const char *prefix, int sheet_rows, int sheet_variants,
                    char *sheet_path, size_t sheet_size, cv_err *err)
{
    return cv_augment_save_as(c, ds, nz, seed, count, dir, prefix, false, sheet_rows, sheet_variants, sheet_path,
                              sheet_size, err);
}

int cv_augment_save_as(const cv_augment_config *c, cv_dataset *ds, const cv_normalizer *nz, uint64_t seed,
                       int64_t count, const char *dir, const char *prefix, bool jpeg, int sheet_rows, int sheet_variants,
                       char *sheet_path, size_t sheet_size, cv_err *err)
{
    const cv_shape s = ds->shape;
    if (s.rank != 3)
        return cv_errf(err, "%s:/x: samples are vectors (N, %lld), not images (N, H, W, C); augment needs images",
                       ds->path, (long long)s.d[0]);
    if (s.d[2] < 1 || s.d[2] > 4)
        return cv_errf(err, "%s:/x: %lld channels per pixel; PNG images have 1 to 4", ds->path, (long long)s.d[2]);
    if (jpeg && s.d[2] != 1 && s.d[2] != 3)
        return cv_errf(err, "%s:/x: %lld channels per pixel; JPEG holds 1 (grey) or 3 (RGB): use --save-format png",
                       ds->path, (long long)s.d[2]);
    if (ds->n == 0) return cv_errf(err, "%s:/x: no images", ds->path);
    if (make_dir(dir, err)) return -1;
    const int h = (int)s.d[0], w = (int)s.d[1], ch = (int)s.d[2];
    const int64_t n = cv_shape_size(s);
    const cv_augment_units u = cv_augment_units_for(nz, ds->xtype);
    const int rows = (int)(ds->n < sheet_rows ? ds->n : sheet_rows), gap = 2;
    float *x = cv_malloc(sizeof(float) * (size_t)n, "image", err);
    float *tmp = cv_malloc(sizeof(float) * (size_t)n, "image", err);
    cv_image img = {0}, sheet = {0};
    int rc = -1;
    if (!x || !tmp || cv_image_alloc(&img, w, h, ch, err) ||
        cv_image_alloc(&sheet, (sheet_variants + 1) * (w + gap) + gap, rows * (h + gap) + gap, ch, err))
        goto done;
    /* bad input: an image's name that is one of --data's files (an image folder holding an
     * earlier run's images, the data file by a link): checked for all before any is written */
    for (int64_t j = 0; j < count; j++) {
        const int64_t row = j % ds->n, epoch = j / ds->n;
        char path[1024];
        struct stat st;
        cv_augment_file_name(path, sizeof path, dir, prefix, row, cv_augment_key(seed, epoch, row), jpeg ? "jpeg" : "png");
        if (stat(path, &st) == 0 && (cv_same_file(path, ds->path) || cv_path_inside(path, ds->path))) {
            cv_errf(err, "%s is also an input (in --data %s); choose another --save-to-dir", path, ds->path);
            goto done;
        }
    }
    /* image j is row j mod N as training epoch j div N augments it (with this seed) */
    for (int64_t j = 0; j < count; j++) {
        const int64_t row = j % ds->n, epoch = j / ds->n;
        char path[1024];
        cv_augment_file_name(path, sizeof path, dir, prefix, row, cv_augment_key(seed, epoch, row), jpeg ? "jpeg" : "png");
        if (augmented(c, ds, nz, &u, seed, epoch, row, x, tmp, img.px, err) ||
            (jpeg ? cv_jpeg_write(path, &img, 95, err) : cv_png_write(path, &img, err)))
            goto done;
    }
    /* the contact sheet: rows 0.. of the data, the original in the first column, then the
     * variants of epochs 0, 1, ..., on a grey grid */
    memset(sheet.px, 128, (size_t)sheet.w * sheet.h * ch);
    for (int r = 0; r < rows; r++)
        for (int v = 0; v <= sheet_variants; v++) {
            if (augmented(c, ds, nz, &u, seed, v - 1, r, x, tmp, img.px, err)) goto done;
            for (int y = 0; y < h; y++)
                memcpy(sheet.px + ((size_t)(gap + r * (h + gap) + y) * sheet.w + gap + (size_t)v * (w + gap)) * ch,
                       img.px + (size_t)y * w * ch, (size_t)w * ch);
        }
    snprintf(sheet_path, sheet_size, "%s/%s_contact_sheet.png", dir, prefix);
    rc = cv_png_write(sheet_path, &sheet, err);
done:
    free(x);
    free(tmp);
    cv_image_free(&img);
    cv_image_free(&sheet);
    return rc;
}
