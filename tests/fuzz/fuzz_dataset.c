/* libFuzzer harness for dataset loading: the input bytes as an HDF5 file, loaded whole
 * (cv_dataset_load, then a standardisation fit and a gather) and opened for streaming
 * (cv_dataset_open_stream, then a fetch of its first and last rows). Corrupt files must give
 * one-line errors and leave no memory or HDF5 handle behind. */
#include <string.h>

#include "convoy/data.h"
#include "fuzz_util.h"

/* Rows 0, n/2 and n-1 of ds as normalised floats (dim is small enough: rows are in the file). */
static void fetch_some(cv_dataset *ds, cv_norm mode)
{
    cv_err err;
    cv_normalizer nz;
    const int64_t dim = cv_shape_size(ds->shape);
    if (dim > (1 << 24)) return;
    if (cv_normalizer_fit(&nz, mode, ds, NULL, 0, &err)) return;
    const int64_t idx[3] = {0, ds->n / 2, ds->n - 1};
    float *out = malloc(sizeof(float) * 3 * (size_t)dim);
    if (out) (void)cv_dataset_fetch(ds, &nz, idx, 3, out, &err);
    free(out);
    int32_t labels[3];
    float *targets = ds->ydim > 0 ? malloc(sizeof(float) * 3 * (size_t)ds->ydim) : NULL;
    cv_dataset_gather_y(ds, idx, 3, labels, targets);
    free(targets);
    (void)cv_dataset_check_labels(ds, 10, &err);
    cv_normalizer_free(&nz);
}

static void check_err(const cv_err *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n')) abort(); /* a failure must say why, in one line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size);
    if (!path) return 0;
    cv_dataset ds;
    cv_err err = {{0}};
    if (cv_dataset_load(&ds, path, &err) == 0) {
        fetch_some(&ds, CV_NORM_STANDARDIZE);
        cv_dataset_free(&ds);
    } else {
        check_err(&err);
        cv_dataset_free(&ds);
    }
    err.msg[0] = '\0';
    if (cv_dataset_open_stream(&ds, path, &err) == 0) {
        fetch_some(&ds, CV_NORM_AUTO);
        cv_dataset_free(&ds);
    } else {
        check_err(&err);
        cv_dataset_free(&ds);
    }
    fuzz_check_handles(path);
    return 0;
}
