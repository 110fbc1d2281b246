/* libFuzzer harness for `convoy convert csv`: the input bytes as a CSV file, converted by
 * cv_convert_csv twice (label column named "label" with class labels; then the column at index 1
 * with float targets). A conversion that succeeds must write a dataset cv_dataset_load accepts,
 * with one float feature per other column; one that fails must say why in one line naming the
 * CSV and leave no output file behind. */
#include <string.h>
#include <sys/stat.h>

#include "convoy/data.h"
#include "fuzz_util.h"

static void convert(const char *csv, const char *label, bool as_float)
{
    char out[96];
    snprintf(out, sizeof out, "/tmp/convoy-fuzz-%ld.out.h5", (long)getpid());
    unlink(out);
    cv_err err = {{0}};
    struct stat st;
    if (cv_convert_csv(csv, label, as_float, out, &err) != 0) {
        /* one line that names the CSV, and no partial output */
        if (!err.msg[0] || strchr(err.msg, '\n') || strncmp(err.msg, csv, strlen(csv)) != 0) abort();
        if (stat(out, &st) == 0) abort();
        return;
    }
    cv_dataset ds;
    if (cv_dataset_load(&ds, out, &err) != 0) {
        fprintf(stderr, "fuzz: the converted file does not load: %s\n", err.msg);
        abort();
    }
    const bool labels_ok = as_float ? ds.ydim == 1 && !ds.has_labels : ds.has_labels != (ds.ydim == 1);
    if (ds.n < 1 || ds.shape.rank != 1 || ds.shape.d[0] < 1 || ds.xtype != CV_DTYPE_F32 || !labels_ok) abort();
    cv_dataset_free(&ds);
    unlink(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size);
    if (!path) return 0;
    convert(path, "label", false);
    convert(path, "1", true);
    fuzz_check_handles(path);
    return 0;
}
