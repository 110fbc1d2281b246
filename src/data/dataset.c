/* Dataset files (/x, /y, `classes`): loading with every check a user's file can fail, the
 * normaliser (scale / standardize) and the OpenMP gather that turns stored rows into float
 * batches, and the atomic writers used by the converters and by predict. */
#include "convoy/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/h5io.h"

/* Names an HDF5 numeric type the way numpy would ("int16", "float64"). */
static void dtype_name(hid_t t, char *out, size_t size)
{
    H5T_class_t c = H5Tget_class(t);
    size_t bytes = H5Tget_size(t);
    if (c == H5T_INTEGER)
        snprintf(out, size, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bytes * 8);
    else if (c == H5T_FLOAT)
        snprintf(out, size, "float%zu", bytes * 8);
    else if (c == H5T_STRING)
        snprintf(out, size, "string");
    else if (c == H5T_ENUM)
        snprintf(out, size, "enum (bool?)");
    else if (c == H5T_COMPOUND)
        snprintf(out, size, "compound");
    else
        snprintf(out, size, "non-numeric");
}

/* Class and name of dataset `name`'s element type. */
static int dataset_type(hid_t f, const char *name, H5T_class_t *cls, size_t *bytes, int *is_unsigned,
                        char *tname, size_t tsize, const char *path, cv_err *err)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return cv_errf(err, "%s:/%s: cannot open dataset (file corrupt?)", path, name);
    /* before anything is allocated for it: a corrupt shape or type must not cost memory */
    char where[64];
    snprintf(where, sizeof where, "/%s", name);
    if (cv_h5_check_readable(d, where, path, err) < 0) {
        H5Dclose(d);
        return -1;
    }
    hid_t t = H5Dget_type(d);
    H5Dclose(d);
    if (t < 0) return cv_errf(err, "%s:/%s: cannot read its type (file corrupt?)", path, name);
    *cls = H5Tget_class(t);
    *bytes = H5Tget_size(t);
    *is_unsigned = *cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE;
    dtype_name(t, tname, tsize);
    H5Tclose(t);
    return 0;
}

/* First non-finite value of a float array as "NaN at row R" (rows of `width` values). */
static int check_finite(const float *v, int64_t count, int64_t width, const char *path,
                        const char *name, cv_err *err)
{
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(v[i]))
            return cv_errf(err, "%s:/%s: %s at row %lld", path, name,
                           isnan(v[i]) ? "NaN" : "infinity", (long long)(i / width));
    return 0;
}

void cv_dataset_free(cv_dataset *ds)
{
    if (!ds) return;
    if (ds->borrowed) { /* every array is someone else's */
        memset(ds, 0, sizeof *ds);
        return;
    }
    if (ds->streamed) {
        if (ds->h5_x > 0) H5Dclose((hid_t)ds->h5_x);
        if (ds->h5_file > 0) H5Fclose((hid_t)ds->h5_file);
    }
    free(ds->row_buf);
    free(ds->x);
    free(ds->labels);
    free(ds->targets);
    free(ds->weights);
    for (int i = 0; i < ds->n_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    memset(ds, 0, sizeof *ds);
}

int cv_dataset_wrap(cv_dataset *ds, const char *name, int64_t n, cv_shape shape, cv_dtype xtype, void *x,
                    int32_t *labels, float *targets, int ydim, cv_err *err)
{
    memset(ds, 0, sizeof *ds);
    const int64_t per = cv_shape_size(shape);
    if (n < 1 || !x || (shape.rank != 1 && shape.rank != 3) || per < 1 || (labels && targets) || (targets && ydim < 1))
        return cv_errf(err, "%s: %lld samples of %lld values, labels %s, targets %s x %d: not a dataset", name,
                       (long long)n, (long long)per, labels ? "given" : "none", targets ? "given" : "none", ydim);
    *ds = (cv_dataset){.n = n, .shape = shape, .xtype = xtype, .x = x, .has_labels = labels != NULL,
                       .labels = labels, .ydim = targets ? ydim : 0, .targets = targets, .borrowed = true};
    snprintf(ds->path, sizeof ds->path, "%s", name);
    if (xtype == CV_DTYPE_F32 && check_finite(x, n * per, per, name, "x", err)) return -1;
    if (targets && check_finite(targets, n * ydim, ydim, name, "y", err)) return -1;
    for (int64_t i = 0; labels && i < n; i++)
        if (labels[i] < 0) return cv_errf(err, "%s:/y: negative label %d at row %lld", name, labels[i], (long long)i);
    return 0;
}

static int load_x(cv_dataset *ds, hid_t f, bool stream, const char *path, cv_err *err)
{
    int rank;
    hsize_t dims[8];
    if (cv_h5_shape(f, "x", &rank, dims, path, err) < 0) return -1;
    if (rank != 4 && rank != 2)
        return cv_errf(err, "%s:/x: rank %d; convoy reads (N,H,W,C) images or (N,D) features",
                       path, rank);
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0 || dims[i] > INT32_MAX)
            return cv_errf(err, "%s:/x: dimension %d has size %llu", path, i,
                           (unsigned long long)dims[i]);
    ds->n = (int64_t)dims[0];
    ds->shape = rank == 4 ? cv_shape_hwc((int)dims[1], (int)dims[2], (int)dims[3])
                          : cv_shape_vec((int)dims[1]);

    H5T_class_t cls;
    size_t bytes;
    int uns;
    char tname[32];
    if (dataset_type(f, "x", &cls, &bytes, &uns, tname, sizeof tname, path, err) < 0) return -1;
    hid_t mem;
    size_t esize;
    if (cls == H5T_INTEGER && bytes == 1 && uns) {
        ds->xtype = CV_DTYPE_U8, mem = H5T_NATIVE_UINT8, esize = 1;
    } else if (cls == H5T_FLOAT) {
        ds->xtype = CV_DTYPE_F32, mem = H5T_NATIVE_FLOAT, esize = sizeof(float);
    } else {
        return cv_errf(err, "%s:/x: dtype %s; convoy reads uint8 or float images/features", path,
                       tname);
    }
    int64_t per = cv_shape_size(ds->shape);
    if (stream) { /* keep /x open; rows are read on demand */
        struct stat st;
        ds->streamed = true;
        ds->file_bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
        ds->h5_x = H5Dopen2(f, "x", H5P_DEFAULT);
        return ds->h5_x < 0 ? cv_errf(err, "%s:/x: cannot open dataset (file corrupt?)", path) : 0;
    }
    if ((uint64_t)ds->n > SIZE_MAX / esize / (uint64_t)per)
        return cv_errf(err, "%s:/x: too large for memory", path);
    ds->x = cv_malloc((size_t)ds->n * (size_t)per * esize, path, err);
    if (!ds->x) return -1;
    if (cv_h5_read(f, "x", mem, rank, dims, ds->x, path, err) < 0) return -1;
    if (ds->xtype == CV_DTYPE_F32) return check_finite(ds->x, ds->n * per, per, path, "x", err);
    return 0;
}

static int load_y(cv_dataset *ds, hid_t f, const char *path, cv_err *err)
{
    int rank;
    hsize_t dims[8];
    if (cv_h5_shape(f, "y", &rank, dims, path, err) < 0) return -1;
    H5T_class_t cls;
    size_t bytes;
    int uns;
    char tname[32];
    if (dataset_type(f, "y", &cls, &bytes, &uns, tname, sizeof tname, path, err) < 0) return -1;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        return cv_errf(err, "%s:/y: dtype %s; convoy reads integer labels or float targets", path,
                       tname);
    /* Integer (N,1) is accepted as labels: keras.datasets ships CIFAR-10's y that way. */
    if (rank < 1 || rank > 2 || (cls == H5T_INTEGER && rank == 2 && dims[1] != 1))
        return cv_errf(err, "%s:/y: rank %d %s data; convoy reads (N,) integer labels or (N,K) "
                            "float targets", path, rank, tname);
    if ((int64_t)dims[0] != ds->n)
        return cv_errf(err, "%s: /x has %lld rows but /y has %llu", path, (long long)ds->n,
                       (unsigned long long)dims[0]);
    if (cls == H5T_INTEGER) {
        ds->has_labels = true;
        ds->labels = cv_malloc((size_t)ds->n * sizeof *ds->labels, path, err);
        if (!ds->labels) return -1;
        /* Wider integers are read through int64 so that out-of-range values are not clipped
         * silently into plausible labels. */
        if (bytes > 4 || (bytes == 4 && uns)) {
            int64_t *wide = cv_malloc((size_t)ds->n * sizeof *wide, path, err);
            if (!wide) return -1;
            int rc = cv_h5_read(f, "y", H5T_NATIVE_INT64, rank, dims, wide, path, err);
            for (int64_t i = 0; rc == 0 && i < ds->n; i++) {
                /* uint64 beyond INT64_MAX arrives clipped or wrapped: too large either way */
                if (wide[i] > INT32_MAX || (uns && wide[i] < 0))
                    rc = cv_errf(err, "%s:/y: label %lld at row %lld is too large", path,
                                 (long long)wide[i], (long long)i);
                else if (wide[i] < 0)
                    rc = cv_errf(err, "%s:/y: negative label %lld at row %lld", path,
                                 (long long)wide[i], (long long)i);
                else
                    ds->labels[i] = (int32_t)wide[i];
            }
            free(wide);
            if (rc < 0) return -1;
        } else if (cv_h5_read(f, "y", H5T_NATIVE_INT32, rank, dims, ds->labels, path, err) < 0) {
            return -1;
        }
        for (int64_t i = 0; i < ds->n; i++)
            if (ds->labels[i] < 0)
                return cv_errf(err, "%s:/y: negative label %d at row %lld", path, ds->labels[i],
                               (long long)i);
        return 0;
    }
    int64_t k = rank == 2 ? (int64_t)dims[1] : 1;
    if (k < 1 || k > INT32_MAX) return cv_errf(err, "%s:/y: %lld targets per row", path, (long long)k);
    if ((uint64_t)ds->n > SIZE_MAX / sizeof(float) / (uint64_t)k)
        return cv_errf(err, "%s:/y: too large for memory", path);
    ds->ydim = (int)k;
    ds->targets = cv_malloc((size_t)ds->n * (size_t)k * sizeof(float), path, err);
    if (!ds->targets) return -1;
    if (cv_h5_read(f, "y", H5T_NATIVE_FLOAT, rank, dims, ds->targets, path, err) < 0) return -1;
    return check_finite(ds->targets, ds->n * k, k, path, "y", err);
}

/* /w, when there: one finite weight >= 0 per sample (any integer or float type, read as float). */
static int load_w(cv_dataset *ds, hid_t f, const char *path, cv_err *err)
{
    if (!cv_h5_exists(f, "w")) return 0;
    hsize_t dims[1] = {(hsize_t)ds->n};
    if (!(ds->weights = cv_malloc(sizeof(float) * (size_t)(ds->n ? ds->n : 1), path, err))) return -1;
    if (cv_h5_read(f, "w", H5T_NATIVE_FLOAT, 1, dims, ds->weights, path, err) < 0) return -1;
    for (int64_t i = 0; i < ds->n; i++)
        if (!isfinite(ds->weights[i]) || ds->weights[i] < 0.0f)
            return cv_errf(err, "%s:/w: weight %g of row %lld (sample weights are finite and >= 0)", path,
                           (double)ds->weights[i], (long long)i);
    return 0;
}

int cv_data_info_read(int64_t loc, cv_data_info *info, bool require_filter, const char *path, cv_err *err)
{
    const hid_t f = (hid_t)loc;
    memset(info, 0, sizeof *info);
    const int n = cv_h5_attr_read_strs(f, "classes", &info->class_names, path, err);
    if (n < 0) return -1;
    info->n_classes = n;
    if (H5Aexists(f, "image_height") <= 0) return 0;
    int64_t v[3];
    const char *names[3] = {"image_height", "image_width", "image_channels"};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) rc = cv_h5_attr_read_i64(f, names[i], &v[i], path, err);
    if (rc == 0 && (v[0] < 1 || v[1] < 1 || v[0] > 65535 || v[1] > 65535 || (v[2] != 1 && v[2] != 3)))
        rc = cv_errf(err, "%s: attributes image_height, image_width, image_channels (%lld, %lld, %lld) are not an "
                     "image size", path, (long long)v[0], (long long)v[1], (long long)v[2]);
    char *filter = NULL;
    if (rc == 0 && (require_filter || H5Aexists(f, "image_filter") > 0) && !(filter = cv_h5_attr_read_str(f, "image_filter", path, err)))
        rc = -1;
    if (rc == 0) {
        info->image_h = (int)v[0], info->image_w = (int)v[1], info->image_c = (int)v[2];
        snprintf(info->image_filter, sizeof info->image_filter, "%s", filter ? filter : "");
    }
    free(filter);
    if (rc) cv_data_info_free(info);
    return rc;
}

int cv_data_info_write(int64_t loc, const cv_data_info *info, const char *path, cv_err *err)
{
    const hid_t f = (hid_t)loc;
    if (info->class_names && info->n_classes > 0 &&
        cv_h5_attr_write_strs(f, "classes", info->class_names, info->n_classes, path, err) < 0)
        return -1;
    if (info->image_h <= 0) return 0;
    return cv_h5_attr_write_i64(f, "image_height", info->image_h, path, err) ||
                   cv_h5_attr_write_i64(f, "image_width", info->image_w, path, err) ||
                   cv_h5_attr_write_i64(f, "image_channels", info->image_c, path, err) ||
                   cv_h5_attr_write_str(f, "image_filter", info->image_filter, path, err)
               ? -1 : 0;
}

static int load(cv_dataset *ds, const char *path, bool stream, bool inputs_only, cv_err *err)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    int rc = -1;
    if (load_x(ds, f, stream, path, err) < 0 || (!(inputs_only && !cv_h5_exists(f, "y")) && load_y(ds, f, path, err) < 0))
        goto done;
    cv_data_info info;
    if (cv_data_info_read(f, &info, false, path, err)) goto done;
    ds->n_classes = info.n_classes, ds->class_names = info.class_names; /* the dataset owns the names now */
    ds->image_h = info.image_h, ds->image_w = info.image_w, ds->image_c = info.image_c;
    snprintf(ds->image_filter, sizeof ds->image_filter, "%s", info.image_filter);
    if (load_w(ds, f, path, err)) goto done;
    rc = 0;
done:
    if (ds->streamed) /* the file stays open for the row reads; cv_dataset_free closes it */
        ds->h5_file = f;
    else if (H5Fclose(f) < 0 && rc == 0)
        rc = cv_errf(err, "%s: cannot close (file corrupt?)", path);
    if (rc < 0) {
        cv_dataset_free(ds);
        snprintf(ds->path, sizeof ds->path, "%s", path);
    }
    return rc;
}

int cv_dataset_load(cv_dataset *ds, const char *path, cv_err *err) { return load(ds, path, false, false, err); }
int cv_dataset_load_inputs(cv_dataset *ds, const char *path, cv_err *err) { return load(ds, path, false, true, err); }

cv_data_info cv_data_info_of(const cv_dataset *ds)
{
    cv_data_info i = {ds->n_classes, ds->class_names, ds->image_h, ds->image_w, ds->image_c, ""};
    snprintf(i.image_filter, sizeof i.image_filter, "%s", ds->image_filter);
    return i;
}

void cv_data_info_free(cv_data_info *info)
{
    for (int i = 0; i < info->n_classes; i++) free(info->class_names[i]);
    free(info->class_names);
    memset(info, 0, sizeof *info);
}

int cv_dataset_open_stream(cv_dataset *ds, const char *path, cv_err *err) { return load(ds, path, true, false, err); }

int cv_dataset_check_labels(const cv_dataset *ds, int classes, cv_err *err)
{
    if (!ds->has_labels)
        return cv_errf(err, "%s:/y: holds float targets (N,%d), but integer class labels are "
                            "needed", ds->path, ds->ydim);
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= classes)
            return cv_errf(err, "%s:/y: label %d at row %lld outside [0, %d)", ds->path,
                           ds->labels[i], (long long)i, classes);
    return 0;
}

/* ---------------------------------------------------------------- normalisation */

void cv_normalizer_free(cv_normalizer *nz)
{
    if (!nz) return;
    free(nz->mean);
    free(nz->std);
    memset(nz, 0, sizeof *nz);
}

static double value_at(const cv_dataset *ds, int64_t i)
{
    return ds->xtype == CV_DTYPE_U8 ? ((const uint8_t *)ds->x)[i] : ((const float *)ds->x)[i];
}

/* Standardisation statistics of a streamed dataset: two passes over the rows in chunks, each
 * feature summed in row order (the same order as the in-memory path). */
static int fit_streamed(cv_normalizer *nz, cv_dataset *ds, const int64_t *idx, int64_t count,
                        double *mean, double *var, cv_err *err)
{
    enum { CHUNK = 512 };
    const int64_t dim = nz->dim;
    const cv_normalizer raw = {.mode = CV_NORM_NONE};
    float *buf = cv_malloc(sizeof(float) * CHUNK * (size_t)dim, "standardization rows", err);
    int64_t rows[CHUNK];
    if (!buf) return -1;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t r0 = 0; r0 < count; r0 += CHUNK) {
            const int64_t c = count - r0 < CHUNK ? count - r0 : CHUNK;
            for (int64_t r = 0; r < c; r++) rows[r] = idx ? idx[r0 + r] : r0 + r;
            if (cv_dataset_fetch(ds, &raw, rows, c, buf, err)) {
                free(buf);
                return -1;
            }
            for (int64_t r = 0; r < c; r++)
                for (int64_t j = 0; j < dim; j++) {
                    const double v = buf[r * dim + j];
                    if (pass == 0) mean[j] += v;
                    else var[j] += (v - mean[j]) * (v - mean[j]);
                }
        }
        if (pass == 0)
            for (int64_t j = 0; j < dim; j++) mean[j] /= (double)count;
    }
    free(buf);
    for (int64_t j = 0; j < dim; j++) {
        const double sd = sqrt(var[j] / (double)count);
        nz->mean[j] = (float)mean[j];
        nz->std[j] = sd < 1e-7 ? 1.0f : (float)sd;
    }
    return 0;
}

int cv_normalizer_fit(cv_normalizer *nz, cv_norm mode, cv_dataset *ds,
                      const int64_t *idx, int64_t count, cv_err *err)
{
    memset(nz, 0, sizeof *nz);
    nz->dim = cv_shape_size(ds->shape);
    if (mode == CV_NORM_AUTO) mode = ds->xtype == CV_DTYPE_U8 ? CV_NORM_SCALE : CV_NORM_NONE;
    if (mode != CV_NORM_SCALE && mode != CV_NORM_STANDARDIZE && mode != CV_NORM_NONE)
        return cv_errf(err, "%s: unknown normalisation mode %d", ds->path, (int)mode);
    nz->mode = mode;
    if (mode != CV_NORM_STANDARDIZE) return 0;

    if (!idx) count = ds->n;
    if (count <= 0) return cv_errf(err, "%s: cannot standardize over 0 rows", ds->path);
    for (int64_t r = 0; idx && r < count; r++)
        if (idx[r] < 0 || idx[r] >= ds->n)
            return cv_errf(err, "%s: row %lld outside [0, %lld)", ds->path, (long long)idx[r],
                           (long long)ds->n);
    const int64_t dim = nz->dim;
    double *acc = cv_calloc((size_t)dim * 2, sizeof *acc, "standardization statistics", err);
    nz->mean = cv_malloc((size_t)dim * sizeof *nz->mean, "standardization mean", err);
    nz->std = cv_malloc((size_t)dim * sizeof *nz->std, "standardization std", err);
    if (!acc || !nz->mean || !nz->std) {
        free(acc);
        cv_normalizer_free(nz);
        return -1;
    }
    double *mean = acc, *var = acc + dim;
    if (ds->streamed) {
        int rc = fit_streamed(nz, ds, idx, count, mean, var, err);
        free(acc);
        if (rc) cv_normalizer_free(nz);
        return rc;
    }
    /* Threads split the features and each feature sums its rows in index order, so the
     * statistics do not depend on the thread count. Two passes keep the variance accurate. */
    const int64_t block = 64, nblocks = (dim + block - 1) / block;
    #pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t j0 = b * block, j1 = j0 + block < dim ? j0 + block : dim;
        for (int64_t r = 0; r < count; r++) {
            int64_t base = (idx ? idx[r] : r) * dim;
            for (int64_t j = j0; j < j1; j++) mean[j] += value_at(ds, base + j);
        }
        for (int64_t j = j0; j < j1; j++) mean[j] /= (double)count;
        for (int64_t r = 0; r < count; r++) {
            int64_t base = (idx ? idx[r] : r) * dim;
            for (int64_t j = j0; j < j1; j++) {
                double d = value_at(ds, base + j) - mean[j];
                var[j] += d * d;
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            double sd = sqrt(var[j] / (double)count);
            nz->mean[j] = (float)mean[j];
            nz->std[j] = sd < 1e-7 ? 1.0f : (float)sd;
        }
    }
    free(acc);
    return 0;
}

/* One stored row (uint8 or float) to normalised floats. */
static void normalize_row(const void *row, bool u8, int64_t dim, cv_norm mode, const cv_normalizer *nz,
                          float *o)
{
    const uint8_t *xb = row;
    const float *xf = row;
    switch (mode) {
    case CV_NORM_STANDARDIZE:
        for (int64_t j = 0; j < dim; j++) o[j] = ((u8 ? (float)xb[j] : xf[j]) - nz->mean[j]) / nz->std[j];
        break;
    case CV_NORM_SCALE:
        for (int64_t j = 0; j < dim; j++) o[j] = (u8 ? (float)xb[j] : xf[j]) / 255.0f;
        break;
    default: /* NONE (fit never leaves AUTO) */
        for (int64_t j = 0; j < dim; j++) o[j] = u8 ? (float)xb[j] : xf[j];
        break;
    }
}

static cv_norm resolved_mode(const cv_dataset *ds, const cv_normalizer *nz)
{
    return nz ? nz->mode : ds->xtype == CV_DTYPE_U8 ? CV_NORM_SCALE : CV_NORM_NONE;
}

void cv_dataset_gather(const cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx,
                       int64_t count, float *out)
{
    const int64_t dim = cv_shape_size(ds->shape);
    const cv_norm mode = resolved_mode(ds, nz);
    const bool u8 = ds->xtype == CV_DTYPE_U8;
    const size_t esize = u8 ? 1 : sizeof(float);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < count; r++)
        normalize_row((const char *)ds->x + (size_t)((idx ? idx[r] : r) * dim) * esize, u8, dim, mode,
                      nz, out + r * dim);
}

/* Reads rows idx[0..count) of a streamed /x into ds->row_buf (in the order given). */
static int read_rows(cv_dataset *ds, const int64_t *idx, int64_t count, cv_err *err)
{
    const int64_t dim = cv_shape_size(ds->shape);
    const bool u8 = ds->xtype == CV_DTYPE_U8;
    const size_t row_bytes = (size_t)dim * (u8 ? 1 : sizeof(float));
    if ((size_t)count * row_bytes > ds->row_buf_cap) {
        void *p = realloc(ds->row_buf, (size_t)count * row_bytes);
        if (!p) return cv_errf(err, "%s: out of memory for %lld streamed rows", ds->path, (long long)count);
        ds->row_buf = p;
        ds->row_buf_cap = (size_t)count * row_bytes;
    }
    hsize_t start[4] = {0}, cnt[4] = {1};
    for (int i = 0; i < ds->shape.rank; i++) cnt[i + 1] = (hsize_t)ds->shape.d[i];
    const hsize_t row_elems = (hsize_t)dim;
    hid_t fs = H5Dget_space((hid_t)ds->h5_x), ms = H5Screate_simple(1, &row_elems, NULL);
    const hid_t mem = u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    int rc = fs < 0 || ms < 0 ? cv_errf(err, "%s:/x: cannot get its dataspace", ds->path) : 0;
    struct stat st;
    const int64_t now = stat(ds->path, &st) == 0 ? (int64_t)st.st_size : -1;
    if (rc == 0 && ds->file_bytes >= 0 && now < ds->file_bytes)
        rc = cv_errf(err, "%s: truncated during the run (%lld bytes when opened, %lld now): stopped before row %lld",
                     ds->path, (long long)ds->file_bytes, (long long)now, (long long)(count ? idx[0] : 0));
    for (int64_t r = 0; rc == 0 && r < count; r++) {
        start[0] = (hsize_t)idx[r];
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
            H5Dread((hid_t)ds->h5_x, mem, ms, fs, H5P_DEFAULT, (char *)ds->row_buf + (size_t)r * row_bytes) < 0)
            rc = cv_errf(err, "%s:/x: cannot read row %lld (file truncated or changed?)", ds->path,
                         (long long)idx[r]);
        else if (!u8)
            for (int64_t j = 0; j < dim && rc == 0; j++)
                if (!isfinite(((const float *)ds->row_buf)[(size_t)r * dim + j]))
                    rc = cv_errf(err, "%s:/x: %s at row %lld", ds->path,
                                 isnan(((const float *)ds->row_buf)[(size_t)r * dim + j]) ? "NaN" : "infinity",
                                 (long long)idx[r]);
    }
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    return rc;
}

int cv_dataset_fetch(cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx, int64_t count,
                     float *out, cv_err *err)
{
    if (!ds->streamed) {
        cv_dataset_gather(ds, nz, idx, count, out);
        return 0;
    }
    int64_t *rows = NULL;
    if (!idx) { /* rows 0..count */
        rows = cv_malloc(sizeof(int64_t) * (size_t)count, "row list", err);
        if (!rows) return -1;
        for (int64_t r = 0; r < count; r++) rows[r] = r;
    }
    int rc = read_rows(ds, idx ? idx : rows, count, err);
    free(rows);
    if (rc) return -1;
    const int64_t dim = cv_shape_size(ds->shape);
    const bool u8 = ds->xtype == CV_DTYPE_U8;
    const cv_norm mode = resolved_mode(ds, nz);
    for (int64_t r = 0; r < count; r++)
        normalize_row((const char *)ds->row_buf + (size_t)(r * dim) * (u8 ? 1 : sizeof(float)), u8, dim,
                      mode, nz, out + r * dim);
    return 0;
}

void cv_dataset_gather_y(const cv_dataset *ds, const int64_t *idx, int64_t count,
                         int32_t *labels, float *targets)
{
    if (ds->has_labels && labels) {
        for (int64_t r = 0; r < count; r++) labels[r] = ds->labels[idx ? idx[r] : r];
    } else if (ds->ydim > 0 && targets) {
        const int64_t k = ds->ydim;
        for (int64_t r = 0; r < count; r++)
            memcpy(targets + r * k, ds->targets + (idx ? idx[r] : r) * k, (size_t)k * sizeof(float));
    }
}

/* ---------------------------------------------------------------- writing */

int cv_dataset_write(const char *path, int64_t n, cv_shape shape, cv_dtype xtype, const void *x,
                     const int32_t *labels, const float *targets, int ydim,
                     char *const *class_names, int n_classes, cv_err *err)
{
    const cv_data_info info = {class_names ? n_classes : 0, (char **)class_names, 0, 0, 0, ""};
    return cv_dataset_write_info(path, n, shape, xtype, x, labels, targets, ydim, &info, err);
}

int cv_dataset_write_info(const char *path, int64_t n, cv_shape shape, cv_dtype xtype, const void *x,
                          const int32_t *labels, const float *targets, int ydim, const cv_data_info *info, cv_err *err)
{
    if (n <= 0) return cv_errf(err, "%s: cannot write a dataset with %lld samples", path, (long long)n);
    if (shape.rank != 1 && shape.rank != 3)
        return cv_errf(err, "%s: sample shape must have rank 1 or 3, not %d", path, shape.rank);
    if (!labels && (!targets || ydim < 1))
        return cv_errf(err, "%s: a dataset needs labels or targets for /y", path);
    hsize_t xdims[4] = {(hsize_t)n};
    for (int i = 0; i < shape.rank; i++) xdims[i + 1] = (hsize_t)shape.d[i];
    hsize_t ydims[2] = {(hsize_t)n, (hsize_t)ydim};
    hid_t xmem = xtype == CV_DTYPE_U8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;

    char tmp[1024];
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    if (cv_h5_write(f, "x", xmem, shape.rank + 1, xdims, x, path, err) < 0 ||
        (labels ? cv_h5_write(f, "y", H5T_NATIVE_INT32, 1, ydims, labels, path, err)
                : cv_h5_write(f, "y", H5T_NATIVE_FLOAT, 2, ydims, targets, path, err)) < 0 ||
        (info && cv_data_info_write(f, info, path, err))) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}

int cv_predictions_write(const char *path, const float *pred, int64_t n, int k, cv_err *err)
{
    if (n < 0 || k < 1) return cv_errf(err, "%s: bad prediction shape (%lld,%d)", path, (long long)n, k);
    char tmp[1024];
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)k};
    if (cv_h5_write(f, "predictions", H5T_NATIVE_FLOAT, 2, dims, pred, path, err) < 0) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}
