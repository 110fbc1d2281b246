/* `convoy convert images`: a folder of class folders of images into dataset files
 * (convoy/imageset.h). The files are listed and split first (the same on every rank), then
 * decoded a batch at a time: under MPI each rank takes its share of a batch (its OpenMP threads
 * a file each) and rank 0 gathers and appends them, so memory stays bounded and the output does
 * not depend on the rank or thread count. */
#define _DEFAULT_SOURCE /* DT_DIR, strdup */
#include "convoy/imageset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/rng.h"
#include "io/h5io.h"

typedef struct {
    char **path;
    int32_t *label;
    int64_t n, cap;
} file_list;

typedef struct {
    char **name;
    int n, cap;
} name_list;

static int push_name(name_list *l, const char *s, cv_err *err)
{
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->name, sizeof *p * (size_t)cap);
        if (!p) return cv_errf(err, "out of memory listing files");
        l->name = p, l->cap = cap;
    }
    if (!(l->name[l->n] = strdup(s))) return cv_errf(err, "out of memory listing files");
    l->n++;
    return 0;
}

static void free_names(name_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->name[i]);
    free(l->name);
    memset(l, 0, sizeof *l);
}

static int push_file(file_list *l, char *path, int32_t label, cv_err *err)
{
    if (l->n == l->cap) {
        const int64_t cap = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->path, sizeof *p * (size_t)cap);
        int32_t *y = p ? realloc(l->label, sizeof *y * (size_t)cap) : NULL;
        if (p) l->path = p;
        if (!p || !y) {
            free(path);
            return cv_errf(err, "out of memory listing files");
        }
        l->label = y, l->cap = cap;
    }
    l->path[l->n] = path;
    l->label[l->n++] = label;
    return 0;
}

static void free_files(file_list *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    free(l->label);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

bool cv_image_file_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".jpe"));
}

/* The sorted entries of dir (no hidden ones). */
static int list_dir(const char *dir, name_list *out, cv_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return cv_errf(err, "%s: cannot open the folder (%s)", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)))
        if (e->d_name[0] != '.') rc = push_name(out, e->d_name, err);
    closedir(d);
    if (rc == 0 && out->n > 1) qsort(out->name, (size_t)out->n, sizeof *out->name, by_name);
    return rc;
}

/* Keras's order of a class's files: by folder path, then file name (os.walk's (root, name)
 * pairs sorted), so "a/b-c/x" comes before "a/b/x/y" ('-' < '/'). */
static int by_folder_then_name(const void *pa, const void *pb)
{
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    const size_t da = sa ? (size_t)(sa - a) : 0, db = sb ? (size_t)(sb - b) : 0;
    const int c = strncmp(a, b, da < db ? da : db);
    if (c) return c;
    if (da != db) return da < db ? -1 : 1; /* one folder path is a prefix of the other: the shorter first */
    return strcmp(sa ? sa + 1 : a, sb ? sb + 1 : b);
}

/* Sorts files [from, n) into Keras's order (their labels are all the same). */
static void keras_order(file_list *files, int64_t from)
{
    if (files->n - from > 1)
        qsort(files->path + from, (size_t)(files->n - from), sizeof *files->path, by_folder_then_name);
}

/* Adds the image files under dir with label y (to be put in Keras's order by keras_order);
 * symlinked folders are not followed. */
static int walk(const char *dir, int32_t y, file_list *files, cv_imageset_report *rep, int depth, cv_err *err)
{
    if (depth > 64) return cv_errf(err, "%s: folders nested more than 64 deep", dir);
    name_list names = {0};
    int rc = list_dir(dir, &names, err);
    for (int i = 0; rc == 0 && i < names.n; i++) {
        const size_t len = strlen(dir) + strlen(names.name[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = cv_errf(err, "out of memory listing files");
            break;
        }
        snprintf(path, len, "%s/%s", dir, names.name[i]);
        struct stat ls, st;
        if (lstat(path, &ls) != 0) {
            rc = cv_errf(err, "%s: cannot read (%s)", path, strerror(errno));
        } else if (S_ISDIR(ls.st_mode)) {
            rc = walk(path, y, files, rep, depth + 1, err);
        } else if (S_ISLNK(ls.st_mode) && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rep->ignored++; /* a symlinked folder: not followed */
        } else if (!cv_image_file_name(names.name[i])) {
            rep->ignored++;
        } else {
            rep->found++;
            rc = push_file(files, path, y, err);
            path = NULL;
        }
        free(path);
    }
    free_names(&names);
    return rc;
}

int cv_image_files(const char *dir, char ***paths, int64_t *n, cv_err *err)
{
    file_list files = {0};
    cv_imageset_report rep = {0};
    struct stat st;
    if (stat(dir, &st) != 0) return cv_errf(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return cv_errf(err, "%s: not a folder", dir);
    if (walk(dir, 0, &files, &rep, 0, err)) {
        free_files(&files);
        return -1;
    }
    keras_order(&files, 0);
    free(files.label);
    *paths = files.path;
    *n = files.n;
    return 0;
}

/* The classes (sorted sub-folders of dir) and their files, in order. */
static int scan(const char *dir, name_list *classes, file_list *files, cv_imageset_report *rep, cv_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) return cv_errf(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return cv_errf(err, "%s: not a folder (convert images takes a folder of class folders)", dir);
    name_list entries = {0};
    int rc = list_dir(dir, &entries, err);
    for (int i = 0; rc == 0 && i < entries.n; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, entries.name[i]) >= (int)sizeof path) {
            rc = cv_errf(err, "%s/%s: path too long", dir, entries.name[i]);
            break;
        }
        if (stat(path, &st) != 0) {
            rc = cv_errf(err, "%s: cannot read (%s)", path, strerror(errno));
            break;
        }
        if (!S_ISDIR(st.st_mode)) continue; /* files beside the class folders: not images of a class */
        const int64_t before = files->n;
        rc = push_name(classes, entries.name[i], err);
        if (rc == 0) rc = walk(path, classes->n - 1, files, rep, 0, err);
        if (rc == 0) keras_order(files, before);
        if (rc == 0 && files->n == before)
            rc = cv_errf(err, "%s: class folder with no images (.png, .jpg or .jpeg files); remove it or add some",
                         path);
    }
    free_names(&entries);
    if (rc) return -1;
    if (classes->n == 0)
        return cv_errf(err, "%s: no class folders (it must hold one folder per class, each with its images)", dir);
    if (classes->n == 1)
        return cv_errf(err, "%s: one class folder only (%s); a classifier needs at least two", dir, classes->name[0]);
    return 0;
}

/* Which files go to validation: round(split * n) of each class of n >= 2 files, a seeded random
 * choice of them. */
static int split(const file_list *files, int n_classes, double frac, uint64_t seed, bool *val, cv_err *err)
{
    memset(val, 0, sizeof *val * (size_t)files->n);
    if (frac <= 0.0) return 0;
    int64_t *idx = malloc(sizeof *idx * (size_t)files->n);
    if (!idx) return cv_errf(err, "out of memory splitting %lld files", (long long)files->n);
    for (int c = 0; c < n_classes; c++) {
        int64_t n = 0;
        for (int64_t i = 0; i < files->n; i++)
            if (files->label[i] == c) idx[n++] = i;
        cv_rng r = {cv_key(seed, CV_STREAM_SPLIT, (uint64_t)c, 1)};
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            const int64_t j = (int64_t)cv_rng_below(&r, (uint64_t)i + 1), t = idx[i];
            idx[i] = idx[j], idx[j] = t;
        }
        int64_t take = n >= 2 ? (int64_t)(frac * (double)n + 0.5) : 0;
        if (take >= n) take = n - 1; /* every class keeps a training image */
        for (int64_t i = 0; i < take; i++) val[idx[i]] = true;
    }
    free(idx);
    return 0;
}

typedef struct {
    const char *path;
    char tmp[1024];
    hid_t f, x, y;
    int64_t n;
} out_file;

static int open_out(out_file *o, const char *path, const cv_imageset_report *rep, char **classes, int n_classes,
                    bool draft, cv_err *err)
{
    o->path = path;
    o->n = 0;
    o->x = o->y = -1;
    o->f = cv_h5_create_tmp_disk(path, o->tmp, sizeof o->tmp, err);
    if (o->f < 0) return -1;
    const int64_t img = (int64_t)rep->w * rep->h * rep->channels;
    const hsize_t xd[4] = {0, (hsize_t)rep->h, (hsize_t)rep->w, (hsize_t)rep->channels}, yd[1] = {0};
    const hsize_t chunk = img >= (1 << 20) ? 1 : (hsize_t)((1 << 20) / img);
    cv_data_info info = {n_classes, classes, rep->h, rep->w, rep->channels, ""};
    snprintf(info.image_filter, sizeof info.image_filter, "%s", draft ? CV_IMAGESET_FILTER_DRAFT : CV_IMAGESET_FILTER);
    if ((o->x = cv_h5_create_rows(o->f, "x", H5T_NATIVE_UINT8, 4, xd, chunk, path, err)) < 0 ||
        (o->y = cv_h5_create_rows(o->f, "y", H5T_NATIVE_INT32, 1, yd, 4096, path, err)) < 0 ||
        cv_data_info_write(o->f, &info, path, err))
        return -1;
    return 0;
}

/* Drops an output: its temporary file removed, the path untouched. */
static void drop_out(out_file *o)
{
    if (o->x >= 0) H5Dclose(o->x);
    if (o->y >= 0) H5Dclose(o->y);
    o->x = o->y = -1;
    if (o->f >= 0) cv_h5_abort(o->f, o->tmp);
    o->f = -1;
}

/* Both outputs closed and synced, then both renamed: neither replaces its path unless both
 * could be written. */
static int keep_outs(out_file *outs, int n, cv_err *err)
{
    int rc = 0;
    bool closed[2] = {false, false};
    for (int t = 0; t < n; t++) {
        if (outs[t].f < 0) continue;
        if (rc) {
            drop_out(&outs[t]);
            continue;
        }
        H5Dclose(outs[t].x);
        H5Dclose(outs[t].y);
        outs[t].x = outs[t].y = -1;
        rc = cv_h5_close_disk(outs[t].f, outs[t].tmp, outs[t].path, err); /* removes it on failure */
        outs[t].f = -1;
        closed[t] = rc == 0;
    }
    for (int t = 0; t < n; t++) {
        if (!closed[t]) continue;
        if (rc == 0) rc = cv_h5_replace(outs[t].tmp, outs[t].path, err);
        else unlink(outs[t].tmp);
    }
    return rc;
}

/* The first image's size and channels, for what the options leave open. */
static int first_shape(const file_list *files, const cv_imageset_opts *o, cv_imageset_report *rep, cv_err *err)
{
    rep->w = o->w, rep->h = o->h, rep->channels = o->channels;
    if (rep->w > 0 && rep->h > 0 && rep->channels > 0) return 0;
    for (int64_t i = 0; i < files->n; i++) {
        cv_image img;
        if (cv_image_read(files->path[i], &img, 0, 0, err)) {
            if (o->skip_bad) continue;
            return -1;
        }
        if (rep->w <= 0 || rep->h <= 0) rep->w = img.w, rep->h = img.h;
        if (rep->channels <= 0) rep->channels = img.c <= 2 ? 1 : 3;
        cv_image_free(&img);
        return 0;
    }
    return cv_errf(err, "none of the %lld image files could be read", (long long)files->n);
}

enum { PER_RANK = 32 }; /* images each rank decodes per round */

/* bad input: --out or --val-out one of the folder's images (by any name: a symlink, a hard
 * link), which the conversion would replace while it still reads the folder */
static int outputs_not_images(const file_list *files, const char *out, const char *val_out, cv_err *err)
{
    const char *outs[2] = {out, val_out}, *flags[2] = {"--out", "--val-out"};
    for (int k = 0; k < 2; k++) {
        struct stat so, si;
        if (!outs[k] || stat(outs[k], &so) != 0) continue; /* a file that does not exist is no image */
        for (int64_t i = 0; i < files->n; i++)
            if (stat(files->path[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
                return cv_errf(err, "%s %s is also the image %s of the folder; choose another path", flags[k], outs[k],
                               files->path[i]);
    }
    return 0;
}

int cv_convert_images(const char *dir, const char *out, const char *val_out, const cv_imageset_opts *o,
                      const cv_dist *d, cv_progress_fn progress, void *ctx, cv_imageset_report *rep, cv_err *err)
{
    memset(rep, 0, sizeof *rep);
    if (o->val_split < 0.0 || o->val_split >= 1.0)
        return cv_errf(err, "--val-split %g: give a fraction in [0, 1)", o->val_split);
    if ((o->val_split > 0.0) != (val_out != NULL))
        return cv_errf(err, o->val_split > 0.0 ? "--val-split needs --val-out FILE.h5 (where the validation images go)"
                                               : "--val-out needs --val-split F (the fraction of each class it takes)");
    if (val_out && strcmp(out, val_out) == 0) return cv_errf(err, "--out and --val-out are the same file (%s)", out);
    if ((o->w > 0) != (o->h > 0) || o->w < 0 || (o->channels != 0 && o->channels != 1 && o->channels != 3))
        return cv_errf(err, "size %dx%d with %d channels: give --size H,W with positive sides and --channels 1 or 3",
                       o->h, o->w, o->channels);
    name_list classes = {0};
    file_list files = {0};
    bool *val = NULL;
    uint8_t *mine = NULL, *all = NULL, *stage = NULL;
    int32_t *stage_y = NULL;
    out_file outs[2] = {{.f = -1, .x = -1, .y = -1}, {.f = -1, .x = -1, .y = -1}};
    int rc = scan(dir, &classes, &files, rep, err);
    if (rc == 0) rep->n_classes = classes.n;
    if (rc == 0 && !(val = malloc(sizeof *val * (size_t)files.n))) rc = cv_errf(err, "out of memory");
    if (rc == 0) rc = split(&files, classes.n, o->val_split, o->seed, val, err);
    if (rc == 0) rc = first_shape(&files, o, rep, err);
    if (rc == 0) rc = outputs_not_images(&files, out, val_out, err);
    if (cv_dist_agree(d, rc != 0, err)) {
        rc = -1;
        goto done;
    }
    /* every rank listed the folder itself: the lists must be the same (a node-local folder, or
     * files changing during the scan, would otherwise mix up the rounds) */
    uint64_t h = cv_hash_bytes(CV_HASH_INIT, &files.n, sizeof files.n);
    for (int64_t i = 0; i < files.n; i++)
        h = cv_hash_bytes(cv_hash_bytes(h, files.path[i], strlen(files.path[i]) + 1), &files.label[i], sizeof *files.label);
    h = cv_hash_bytes(cv_hash_bytes(h, val, sizeof *val * (size_t)files.n), &rep->w, 3 * sizeof rep->w);
    if (cv_dist_check_same(d, h, "listing of the image folder (is it the same on every node?)", err)) {
        rc = -1;
        goto done;
    }

    /* the order written: training files, then validation files, each in listing order */
    int64_t *order = malloc(sizeof *order * (size_t)files.n), n_train = 0;
    if (cv_dist_agree(d, !order && cv_errf(err, "out of memory listing %lld files", (long long)files.n), err)) {
        free(order);
        rc = -1;
        goto done;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < files.n; i++)
            if (val[i] == (pass == 1)) order[n_train++] = i;
    n_train = 0;
    for (int64_t i = 0; i < files.n; i++) n_train += !val[i];
    if (val_out && n_train == files.n) { /* the same on every rank */
        free(order);
        rc = cv_errf(err, "--val-split %g takes no file (each class needs 2 or more images for a split)", o->val_split);
        goto done;
    }
    const int64_t img = (int64_t)rep->w * rep->h * rep->channels, slot = img + (int64_t)sizeof(int32_t);
    /* images per rank per round: 32, fewer for large images (a round's gather stays below 1 GiB) */
    const int per = (int)(slot * PER_RANK <= ((int64_t)1 << 30) ? PER_RANK : ((int64_t)1 << 30) / slot > 1 ? ((int64_t)1 << 30) / slot : 1);
    mine = malloc((size_t)(per * slot));
    if (d->rank == 0) {
        all = malloc((size_t)(per * slot) * (size_t)d->size);
        stage = malloc((size_t)(per * img) * (size_t)d->size);
        stage_y = malloc(sizeof *stage_y * per * (size_t)d->size);
    }
    if (!mine || (d->rank == 0 && (!all || !stage || !stage_y))) rc = cv_errf(err, "out of memory for a batch of images");
    if (rc == 0 && d->rank == 0) {
        rc = open_out(&outs[0], out, rep, classes.name, classes.n, o->draft, err);
        if (rc == 0 && val_out) rc = open_out(&outs[1], val_out, rep, classes.name, classes.n, o->draft, err);
    }
    for (int64_t start = 0; start < files.n; start += (int64_t)per * d->size) {
        if (cv_dist_agree(d, rc != 0, err)) {
            rc = -1;
            break;
        }
        int32_t *status = (int32_t *)mine;
        uint8_t *px = mine + per * sizeof(int32_t);
        /* the rank's share of the round, decoded by its threads; a file that fails is read again
         * below, alone, for its message (the first in order, whatever the thread count) */
#pragma omp parallel for schedule(dynamic, 1)
        for (int s = 0; s < per; s++) {
            const int64_t k = start + (int64_t)d->rank * per + s;
            status[s] = -2; /* past the end */
            if (k >= files.n) continue;
            const int64_t i = order[k];
            cv_image im;
            cv_err e;
            const bool ok = cv_image_read(files.path[i], &im, o->draft ? rep->w : 0, o->draft ? rep->h : 0, &e) == 0 &&
                            cv_image_prepare(&im, rep->w, rep->h, rep->channels, &e) == 0;
            if (ok) memcpy(px + s * img, im.px, (size_t)img);
            cv_image_free(&im);
            status[s] = ok ? files.label[i] : -1;
        }
        for (int s = 0; s < per && rc == 0 && !o->skip_bad; s++) {
            if (status[s] != -1) continue;
            const char *path = files.path[order[start + (int64_t)d->rank * per + s]];
            cv_image im;
            if (cv_image_read(path, &im, o->draft ? rep->w : 0, o->draft ? rep->h : 0, err) == 0 &&
                cv_image_prepare(&im, rep->w, rep->h, rep->channels, err) == 0)
                cv_errf(err, "%s: could not be read on the first try", path);
            else if (!strstr(err->msg, path))
                cv_errf(err, "%s: %s", path, err->msg);
            cv_image_free(&im);
            rc = -1;
        }
        if (cv_dist_agree(d, rc != 0, err)) {
            rc = -1;
            break;
        }
        if (cv_dist_gather(d, mine, per * slot, all, err)) {
            rc = -1;
            continue;
        }
        if (d->rank != 0) continue;
        int64_t rows[2] = {0, 0};
        uint8_t *sx[2] = {stage, NULL};
        int32_t *sy[2] = {stage_y, NULL};
        /* one round's rows go to at most two files: training rows first, then validation rows */
        const int64_t cap = (int64_t)per * d->size;
        int64_t n_round = 0, first_val = cap;
        for (int r = 0; r < d->size; r++)
            for (int s = 0; s < per; s++) {
                const int64_t k = start + (int64_t)r * per + s;
                if (k < files.n && k >= n_train && first_val == cap) first_val = n_round;
                if (k < files.n) n_round++;
            }
        sx[1] = stage + first_val * img, sy[1] = stage_y + first_val;
        for (int r = 0; r < d->size; r++) {
            const uint8_t *block = all + (size_t)r * per * slot;
            const int32_t *st = (const int32_t *)block;
            for (int s = 0; s < per; s++) {
                const int64_t k = start + (int64_t)r * per + s;
                if (st[s] == -2) continue;
                if (st[s] < 0) {
                    if (!rep->skipped++)
                        snprintf(rep->first_skipped, sizeof rep->first_skipped, "%s", files.path[order[k]]);
                    continue;
                }
                const int t = k >= n_train;
                memcpy(sx[t] + rows[t] * img, block + per * sizeof(int32_t) + s * img, (size_t)img);
                sy[t][rows[t]++] = st[s];
            }
        }
        for (int t = 0; t < 2 && rc == 0; t++) {
            if (!rows[t]) continue;
            rc = cv_h5_append_rows(outs[t].x, H5T_NATIVE_UINT8, (hsize_t)rows[t], sx[t], outs[t].path, err) ||
                         cv_h5_append_rows(outs[t].y, H5T_NATIVE_INT32, (hsize_t)rows[t], sy[t], outs[t].path, err)
                     ? -1 : 0;
            outs[t].n += rows[t];
        }
        if (progress) progress(ctx, start + n_round < files.n ? start + n_round : files.n, files.n);
    }
    free(order);
    if (rc == 0 && d->rank == 0 && outs[0].n == 0)
        rc = cv_errf(err, "%s: no image could be read (%lld skipped, the first %s)", dir, (long long)rep->skipped,
                     rep->first_skipped);
    if (rc == 0 && d->rank == 0 && val_out && outs[1].n == 0)
        rc = cv_errf(err, "%s: no validation image could be read", dir);
    rep->written = outs[0].n;
    rep->val_written = outs[1].n;
    if (rc == 0) rc = keep_outs(outs, 2, err);
    if (cv_dist_agree(d, rc != 0, err)) rc = -1;
done:
    for (int t = 0; t < 2; t++) drop_out(&outs[t]);
    free(mine);
    free(all);
    free(stage);
    free(stage_y);
    free(val);
    free_files(&files);
    free_names(&classes);
    return rc ? -1 : 0;
}

int cv_dataset_from_images(const char *dir, const cv_imageset_opts *o, cv_dataset *ds, cv_err *err)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "%s", dir);
    name_list classes = {0};
    file_list files = {0};
    cv_imageset_report rep = {0};
    int rc = scan(dir, &classes, &files, &rep, err) || first_shape(&files, o, &rep, err) ? -1 : 0;
    const int64_t img = (int64_t)rep.w * rep.h * rep.channels;
    uint8_t *x = rc ? NULL : cv_malloc((size_t)(files.n * img), "images", err);
    int32_t *y = x ? cv_malloc(sizeof *y * (size_t)files.n, "labels", err) : NULL;
    if (rc == 0 && !y) rc = -1;
    int64_t n = 0;
    for (int64_t i = 0; rc == 0 && i < files.n; i++) {
        cv_image im;
        const bool ok = cv_image_read(files.path[i], &im, o->draft ? rep.w : 0, o->draft ? rep.h : 0, err) == 0 &&
                        cv_image_prepare(&im, rep.w, rep.h, rep.channels, err) == 0;
        if (ok) {
            memcpy(x + n * img, im.px, (size_t)img);
            y[n++] = files.label[i];
        } else if (!o->skip_bad) {
            if (!strstr(err->msg, files.path[i])) cv_errf(err, "%s: %s", files.path[i], err->msg);
            rc = -1;
        }
        cv_image_free(&im);
    }
    if (rc == 0 && n == 0) rc = cv_errf(err, "%s: no image could be read", dir);
    if (rc) {
        free(x);
        free(y);
    } else {
        ds->n = n;
        ds->shape = cv_shape_hwc(rep.h, rep.w, rep.channels);
        ds->xtype = CV_DTYPE_U8;
        ds->x = x;
        ds->has_labels = true;
        ds->labels = y;
        ds->n_classes = classes.n;
        ds->class_names = classes.name; /* the dataset owns them now */
        classes = (name_list){0};
        ds->image_h = rep.h, ds->image_w = rep.w, ds->image_c = rep.channels;
        snprintf(ds->image_filter, sizeof ds->image_filter, "%s", o->draft ? CV_IMAGESET_FILTER_DRAFT : CV_IMAGESET_FILTER);
    }
    free_files(&files);
    free_names(&classes);
    return rc;
}
