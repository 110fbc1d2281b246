/* Module data (src/data/). Owns datasets (HDF5, in memory or streamed), input normalisation, the converters (Fashion-MNIST, CSV) and augmentation (augment.h).
 * May call: core, dist, io, layers.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim.
 *
 * Datasets: HDF5 files with /x (N,H,W,C) or (N,D), uint8 or float32, and /y (N,) integer
 * labels or (N,K) float targets, optional /w (N,) sample weights and attribute `classes`. Held in memory as stored
 * (uint8 stays uint8) and turned into normalised float batches on demand. Also the
 * converters (Fashion-MNIST IDX, CSV) and the writer used by predict. */
#ifndef CONVOY_DATA_H
#define CONVOY_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/error.h"
#include "convoy/layers.h"
#include "convoy/tensor.h"

typedef enum { CV_DTYPE_U8, CV_DTYPE_F32 } cv_dtype;

typedef struct {
    char path[512];
    int64_t n;            /* samples */
    cv_shape shape;       /* one sample of x: rank 3 (H,W,C) or rank 1 (D) */
    cv_dtype xtype;
    void *x;              /* n * cv_shape_size(shape) values of xtype */
    bool has_labels;      /* y is (N,) integers: labels[] */
    int32_t *labels;
    int ydim;             /* y is (N,K) floats: targets[] with K = ydim; 0 when labels */
    float *targets;
    int n_classes;        /* entries of attribute `classes`, 0 if absent */
    char **class_names;
    float *weights;       /* /w: a weight per sample (N,), finite and >= 0; NULL if absent */
    /* how `convert images` made the samples (attributes image_height, ...; 0 and "" if absent) */
    int image_h, image_w, image_c;
    char image_filter[64];
    /* streamed datasets (cv_dataset_open_stream): x is NULL and rows come from the file */
    bool streamed;
    int64_t h5_file, h5_x; /* open HDF5 handles (hid_t) */
    void *row_buf;        /* raw rows read by the last fetch */
    int64_t file_bytes;   /* the file's size when opened: a read finding it shorter stops (HDF5
                             would read zeros past a truncated end) */
    size_t row_buf_cap;
    bool borrowed;        /* its arrays belong to someone else (cv_dataset_wrap): free forgets them */
} cv_dataset;

/** Loads a dataset file whole. Errors name the file and dataset: "F.h5:/x: ...". Checks: file
 *  exists and is HDF5, /x and /y present, ranks and dtypes as above, N equal, float data
 *  finite, labels >= 0. */
int cv_dataset_load(cv_dataset *ds, const char *path, cv_err *err);
void cv_dataset_free(cv_dataset *ds);

/** A dataset over the caller's arrays, without copying them: x holds n samples of shape
 *  (rank 3 (H,W,C) or rank 1 (D)) as xtype, NHWC and contiguous; labels (n) or targets
 *  (n, ydim), or neither (inputs only, for prediction). The arrays must outlive the dataset;
 *  cv_dataset_free forgets them without freeing. name stands for the file in messages
 *  ("NAME:/y: negative label -1 at row 3"). Checks as a load does: float values finite,
 *  labels >= 0. */
int cv_dataset_wrap(cv_dataset *ds, const char *name, int64_t n, cv_shape shape, cv_dtype xtype, void *x,
                    int32_t *labels, float *targets, int ydim, cv_err *err);

/** Loads a dataset whose /y may be absent (what predict reads): then has_labels is false and
 *  ydim 0. */
int cv_dataset_load_inputs(cv_dataset *ds, const char *path, cv_err *err);

/** What a checkpoint keeps of its training data so that eval, predict and summary can name
 *  classes and prepare new images as the training images were: the `classes` names and the
 *  attributes of `convert images`. */
typedef struct {
    int n_classes;
    char **class_names;   /* owned when read from a checkpoint (cv_data_info_free) */
    int image_h, image_w, image_c; /* 0: the data were not made from images */
    char image_filter[64];
} cv_data_info;
/** The info of a loaded dataset (its names borrowed, not copied). */
cv_data_info cv_data_info_of(const cv_dataset *ds);
void cv_data_info_free(cv_data_info *info);
/** The class names and image attributes on an open HDF5 file (loc, its hid_t), as datasets and
 *  checkpoints keep them: read (absent: zero; image attributes that are no image size, an error
 *  naming path; image_filter may be absent unless require_filter) and written (what info has). */
int cv_data_info_read(int64_t loc, cv_data_info *info, bool require_filter, const char *path, cv_err *err);
int cv_data_info_write(int64_t loc, const cv_data_info *info, const char *path, cv_err *err);

/** Opens a dataset for streaming: everything is loaded and checked as by cv_dataset_load except
 *  /x, which stays in the file (x is NULL) and is read row by row by cv_dataset_fetch, so
 *  datasets larger than memory can train. Float rows are checked for NaN/Inf as they are read. */
int cv_dataset_open_stream(cv_dataset *ds, const char *path, cv_err *err);

/** Checks labels lie in [0, classes): "F.h5:/y: label 12 at row 345 outside [0, 10)". */
int cv_dataset_check_labels(const cv_dataset *ds, int classes, cv_err *err);

/** Input normalisation resolved for a dataset: CV_NORM_SCALE / STANDARDIZE / NONE (never AUTO). */
typedef struct {
    cv_norm mode;
    int64_t dim;          /* features per sample */
    float *mean, *std;    /* STANDARDIZE only: dim values each (owned) */
} cv_normalizer;

/** Resolves `mode` (AUTO -> SCALE for uint8, NONE for float). For STANDARDIZE computes per-feature
 *  mean and std (population std; features with std < 1e-7 use std 1) over the rows idx[0..count)
 *  (idx NULL: all rows) in double precision. */
int cv_normalizer_fit(cv_normalizer *nz, cv_norm mode, cv_dataset *ds,
                      const int64_t *idx, int64_t count, cv_err *err);
void cv_normalizer_free(cv_normalizer *nz);

/** Writes the normalised float rows idx[0..count) of x into out (count * dim floats).
 *  OpenMP-parallel over rows. */
void cv_dataset_gather(const cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx,
                       int64_t count, float *out);
/** Copies the labels or targets of rows idx[0..count) (whichever the dataset has). */
void cv_dataset_gather_y(const cv_dataset *ds, const int64_t *idx, int64_t count,
                         int32_t *labels, float *targets);

/** Normalised rows idx[0..count) into out (count * dim floats): cv_dataset_gather for an
 *  in-memory dataset, HDF5 reads of just those rows for a streamed one. Not thread-safe for
 *  one dataset; HDF5 calls must not run concurrently with other HDF5 use. */
int cv_dataset_fetch(cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx, int64_t count,
                     float *out, cv_err *err);

/** Writes a dataset file atomically (temporary file, fsync, rename). x is u8 or f32 as xtype;
 *  shape is one sample; either labels (n) or targets (n, ydim); class_names may be NULL. */
int cv_dataset_write(const char *path, int64_t n, cv_shape shape, cv_dtype xtype, const void *x,
                     const int32_t *labels, const float *targets, int ydim,
                     char *const *class_names, int n_classes, cv_err *err);

/** cv_dataset_write with the class names and image attributes of info (NULL: none). */
int cv_dataset_write_info(const char *path, int64_t n, cv_shape shape, cv_dtype xtype, const void *x,
                          const int32_t *labels, const float *targets, int ydim, const cv_data_info *info, cv_err *err);

/** Writes /predictions (n, k) float32 atomically. */
int cv_predictions_write(const char *path, const float *pred, int64_t n, int k, cv_err *err);

/** A class subset of a labelled image set (for transfer-learning experiments). */
typedef struct {
    const int *classes;   /* keep only images with these labels, in this order (NULL: all) */
    int nclasses;
    int per_class;        /* train split only: the first N images of each kept class (0: all) */
    bool relabel;         /* label classes[j] becomes j, and `classes` names only the kept ones */
} cv_class_subset;

/** Reads IDX (optionally .gz) images+labels of Fashion-MNIST from srcdir and writes
 *  outdir/train.h5 and outdir/test.h5 with the ten class names. When positive is non-NULL,
 *  labels become binary: 1 if the class is one of positive[0..npos), else 0, and `classes` is
 *  {"other", pos_name}. subset (NULL: every image) keeps some classes; it does not combine
 *  with positive. */
int cv_convert_fashion_mnist(const char *srcdir, const char *outdir, const int *positive,
                             int npos, const char *pos_name, const cv_class_subset *subset,
                             cv_err *err);
/** Reads the binary version of CIFAR-10 (which 10: data_batch_1..5.bin, test_batch.bin,
 *  batches.meta.txt) or CIFAR-100 (which 100: train.bin, test.bin, fine_label_names.txt, and
 *  coarse_label_names.txt with coarse: the 20 superclasses) from srcdir into outdir/train.h5
 *  and outdir/test.h5: /x uint8 (N,32,32,3), /y, the class names and image attributes. */
int cv_convert_cifar(const char *srcdir, const char *outdir, int which, bool coarse, cv_err *err);

/** The files cv_convert_fashion_mnist (which 0) or cv_convert_cifar (which 10 or 100) reads from
 *  srcdir, for the check that outdir/train.h5 and outdir/test.h5 are none of them: at most 8,
 *  into paths[0..]. Returns the count. */
int cv_convert_sources(int which, const char *srcdir, char (*paths)[1024], int max);
/** Converts one IDX image file + label file pair to a dataset file. */
int cv_convert_idx(const char *images, const char *labels, const char *out, cv_err *err);
/** How a CSV file is read (docs/cli.md, convert csv). */
typedef struct {
    const char *label; /* the target column: a header name or a 0-based index */
    bool as_float;     /* float targets even when every label is an integer */
    char separator;    /* ',', ';' or '\t'; 0: the one the first record has most of */
    bool no_header;    /* the first record is data; columns are named by index */
} cv_csv_options;

/** Converts a CSV file: fields separated by o->separator, "quoted" fields holding separators,
 *  line breaks and "" for a quote, blanks around fields dropped, blank lines skipped, a UTF-8
 *  BOM ignored. The label column's values become y: (N,) int labels when all are integers >= 0
 *  (unless as_float), (N,1) float targets when all are numbers, else class names, sorted and
 *  numbered in that order, kept as the file's class names. Every other column is a float32
 *  feature of x (N,D). The whole file is checked before writing; errors name FILE:LINE. */
int cv_convert_csv_with(const char *csv, const cv_csv_options *o, const char *out, cv_err *err);
/** cv_convert_csv_with with a header row and the separator sniffed. */
int cv_convert_csv(const char *csv, const char *label, bool as_float, const char *out, cv_err *err);

#endif
