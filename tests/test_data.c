/* Dataset files: write -> load round trips, the normaliser and gather against values worked
 * out by hand, and one test per way a user's file can be wrong (each message must name the
 * file and the reason). Files are written through src/io/h5io to build the bad cases. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/data.h"
#include "io/h5io.h"

#define TMP CONVOY_TEST_TMP "/"

/* Asserts a failure whose message names `file` and contains `reason`. */
#define EXPECT_ERR(rc, e, file, reason)                                                        \
    do {                                                                                       \
        cr_assert_eq((rc), -1, "expected failure");                                            \
        cr_assert(strstr((e).msg, (file)) != NULL, "message lacks file %s: %s", (file), (e).msg); \
        cr_assert(strstr((e).msg, (reason)) != NULL, "message lacks '%s': %s", (reason), (e).msg); \
    } while (0)

/* Writes a file with arbitrary /x and /y (rank 0 type -1 skips a dataset) to build bad inputs. */
static void write_raw(const char *path, hid_t xt, int xrank, const hsize_t *xd, const void *x,
                      hid_t yt, int yrank, const hsize_t *yd, const void *y)
{
    cv_err err = {{0}};
    char tmp[1024];
    unlink(path);
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, &err);
    cr_assert_geq(f, 0, "%s", err.msg);
    if (xt >= 0) cr_assert_eq(cv_h5_write(f, "x", xt, xrank, xd, x, path, &err), 0, "%s", err.msg);
    if (yt >= 0) cr_assert_eq(cv_h5_write(f, "y", yt, yrank, yd, y, path, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_h5_commit(f, tmp, path, &err), 0, "%s", err.msg);
}

/* A valid 4-sample 2x2x1 uint8 image file. */
static void write_small_images(const char *path)
{
    uint8_t x[16];
    for (int i = 0; i < 16; i++) x[i] = (uint8_t)(i * 10);
    int32_t y[4] = {0, 1, 2, 1};
    char *names[3] = {"cat", "dog", "bird"};
    cv_err err = {{0}};
    unlink(path);
    cr_assert_eq(cv_dataset_write(path, 4, cv_shape_hwc(2, 2, 1), CV_DTYPE_U8, x, y, NULL, 0,
                                  names, 3, &err), 0, "%s", err.msg);
}

static long file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

/* True when some "<base>.tmp.*" is left in the directory. */
static int tmp_left(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

/* ---------------------------------------------------------------- round trips */

Test(dataset, roundtrip_u8_images_labels_classes)
{
    const char *p = TMP "data_rt_u8.h5";
    write_small_images(p);
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 4);
    cr_assert_eq(ds.shape.rank, 3);
    cr_assert_eq(ds.shape.d[0], 2);
    cr_assert_eq(ds.shape.d[1], 2);
    cr_assert_eq(ds.shape.d[2], 1);
    cr_assert_eq(ds.xtype, CV_DTYPE_U8);
    for (int i = 0; i < 16; i++) cr_assert_eq(((uint8_t *)ds.x)[i], i * 10);
    cr_assert(ds.has_labels);
    cr_assert_eq(ds.ydim, 0);
    cr_assert_null(ds.targets);
    int32_t want[4] = {0, 1, 2, 1};
    for (int i = 0; i < 4; i++) cr_assert_eq(ds.labels[i], want[i]);
    cr_assert_eq(ds.n_classes, 3);
    cr_assert_str_eq(ds.class_names[0], "cat");
    cr_assert_str_eq(ds.class_names[1], "dog");
    cr_assert_str_eq(ds.class_names[2], "bird");
    cr_assert_str_eq(ds.path, p);
    cr_assert_eq(cv_dataset_check_labels(&ds, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(tmp_left(CONVOY_TEST_TMP, "data_rt_u8.h5"), 0);
    cv_dataset_free(&ds);
}

Test(dataset, roundtrip_float_tabular_targets)
{
    const char *p = TMP "data_rt_f32.h5";
    float x[3 * 2] = {1.5f, -2.0f, 0.25f, 1e6f, -3.0f, 7.0f};
    float t[3 * 2] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, -0.6f};
    cv_err err = {{0}};
    unlink(p);
    cr_assert_eq(cv_dataset_write(p, 3, cv_shape_vec(2), CV_DTYPE_F32, x, NULL, t, 2, NULL, 0,
                                  &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.shape.rank, 1);
    cr_assert_eq(ds.shape.d[0], 2);
    cr_assert_eq(ds.xtype, CV_DTYPE_F32);
    cr_assert_not(ds.has_labels);
    cr_assert_null(ds.labels);
    cr_assert_eq(ds.ydim, 2);
    cr_assert_eq(ds.n_classes, 0);
    cr_assert_null(ds.class_names);
    cr_assert_arr_eq(ds.x, x, sizeof x);
    cr_assert_arr_eq(ds.targets, t, sizeof t);
    cv_dataset_free(&ds);
}

/* h5py writes float64 arrays and 1-D float targets; both are accepted (as float32, (N,1)). */
Test(dataset, float64_x_and_rank1_float_y)
{
    const char *p = TMP "data_f64.h5";
    double x[2 * 3] = {1, 2, 3, 4, 5, 6.5};
    double y[2] = {0.5, -1.5};
    hsize_t xd[2] = {2, 3}, yd[1] = {2};
    write_raw(p, H5T_NATIVE_DOUBLE, 2, xd, x, H5T_NATIVE_DOUBLE, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.xtype, CV_DTYPE_F32);
    cr_assert_eq(ds.ydim, 1);
    cr_assert_float_eq(((float *)ds.x)[5], 6.5f, 0);
    cr_assert_float_eq(ds.targets[1], -1.5f, 0);
    cv_dataset_free(&ds);
}

/* Labels of any integer width are accepted, and (N,1) too (keras.datasets' CIFAR-10 y). */
Test(dataset, integer_label_variants)
{
    const char *p = TMP "data_label_variants.h5";
    uint8_t x[3] = {1, 2, 3};
    hsize_t xd[2] = {3, 1}, yd[2] = {3, 1};
    int64_t y64[3] = {7, 0, 3};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT64, 2, yd, y64);
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert(ds.has_labels);
    cr_assert_eq(ds.labels[0], 7);
    cr_assert_eq(ds.labels[2], 3);
    cv_dataset_free(&ds);

    uint8_t y8[3] = {255, 1, 2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_UINT8, 1, yd, y8);
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.labels[0], 255);
    cv_dataset_free(&ds);

    int64_t huge[3] = {0, 1LL << 40, 2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT64, 1, yd, huge);
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/y: label 1099511627776 at row 1");
    cv_dataset_free(&ds);

    int32_t onehot[6] = {1, 0, 0, 1, 1, 0};
    hsize_t yd2[2] = {3, 2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT32, 2, yd2, onehot);
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/y: rank 2 int32 data");
    cv_dataset_free(&ds);
}

/* h5py's np.array([b"a", b"bc"]) stores fixed-length strings: `classes` reads them too. */
Test(dataset, classes_fixed_length_strings)
{
    const char *p = TMP "data_fixed_classes.h5";
    uint8_t x[2] = {1, 2};
    int32_t y[2] = {0, 1};
    hsize_t xd[2] = {2, 1}, yd[1] = {2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 3);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, "classes", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(a, 0);
    cr_assert_geq(H5Awrite(a, t, "a\0\0bcd"), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n_classes, 2);
    cr_assert_str_eq(ds.class_names[0], "a");
    cr_assert_str_eq(ds.class_names[1], "bcd");
    cv_dataset_free(&ds);
}

Test(dataset, predictions_roundtrip)
{
    const char *p = TMP "data_pred.h5";
    float pred[3 * 2] = {0.1f, 0.9f, 0.7f, 0.3f, 0.5f, 0.5f};
    cv_err err = {{0}};
    cr_assert_eq(cv_predictions_write(p, pred, 3, 2, &err), 0, "%s", err.msg);
    hid_t f = cv_h5_open_read(p, &err);
    cr_assert_geq(f, 0, "%s", err.msg);
    hsize_t dims[2] = {0, 2};
    float back[6];
    cr_assert_eq(cv_h5_read(f, "predictions", H5T_NATIVE_FLOAT, 2, dims, back, p, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(dims[0], 3);
    cr_assert_arr_eq(back, pred, sizeof pred);
    /* a wrong expected shape is reported with both shapes */
    hsize_t bad[2] = {3, 5};
    cr_assert_eq(cv_h5_read(f, "predictions", H5T_NATIVE_FLOAT, 2, bad, back, p, &err), -1);
    cr_assert(strstr(err.msg, "/predictions: shape (3,2) but expected (3,5)"), "%s", err.msg);
    H5Fclose(f);
}

/* ---------------------------------------------------------------- gather */

/* 3 rows x 2 features, uint8: (0,10) (255,20) (51,30). */
static void small_u8(cv_dataset *ds, uint8_t *x)
{
    uint8_t v[6] = {0, 10, 255, 20, 51, 30};
    memcpy(x, v, sizeof v);
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "mem");
    ds->n = 3;
    ds->shape = cv_shape_vec(2);
    ds->xtype = CV_DTYPE_U8;
    ds->x = x;
}

Test(gather, scale_u8_and_float)
{
    uint8_t x[6];
    cv_dataset ds;
    small_u8(&ds, x);
    cv_normalizer nz;
    cv_err err = {{0}};
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_AUTO, &ds, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(nz.mode, CV_NORM_SCALE, "AUTO on uint8 is SCALE");
    int64_t idx[2] = {2, 1};
    float out[4];
    cv_dataset_gather(&ds, &nz, idx, 2, out);
    cr_assert_float_eq(out[0], 51.0f / 255.0f, 1e-7);
    cr_assert_float_eq(out[0], 0.2f, 1e-7);
    cr_assert_float_eq(out[1], 30.0f / 255.0f, 1e-7);
    cr_assert_float_eq(out[2], 1.0f, 0);
    cr_assert_float_eq(out[3], 20.0f / 255.0f, 1e-7);

    /* SCALE on float data also divides by 255 */
    float xf[6] = {0, 10, 255, 20, 51, 30};
    ds.xtype = CV_DTYPE_F32;
    ds.x = xf;
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_SCALE, &ds, NULL, 0, &err), 0, "%s", err.msg);
    cv_dataset_gather(&ds, &nz, idx, 2, out);
    cr_assert_float_eq(out[0], 0.2f, 1e-7);
    cr_assert_float_eq(out[2], 1.0f, 0);
    cv_normalizer_free(&nz);
}

Test(gather, none_keeps_values)
{
    uint8_t x[6];
    cv_dataset ds;
    small_u8(&ds, x);
    cv_normalizer nz;
    cv_err err = {{0}};
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_NONE, &ds, NULL, 0, &err), 0, "%s", err.msg);
    float out[6];
    cv_dataset_gather(&ds, &nz, NULL, 3, out);
    float want[6] = {0, 10, 255, 20, 51, 30};
    cr_assert_arr_eq(out, want, sizeof want);

    float xf[4] = {-1.5f, 2.25f, 1e5f, -7.0f};
    ds.xtype = CV_DTYPE_F32;
    ds.x = xf;
    ds.n = 2;
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_AUTO, &ds, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(nz.mode, CV_NORM_NONE, "AUTO on float is NONE");
    int64_t idx[2] = {1, 0};
    cv_dataset_gather(&ds, &nz, idx, 2, out);
    float want2[4] = {1e5f, -7.0f, -1.5f, 2.25f};
    cr_assert_arr_eq(out, want2, sizeof want2);
}

Test(gather, standardize_by_hand)
{
    /* 4 rows x 2 features, fitted on rows {0, 1, 3} only:
     *   feature 0: 1, 3, 5 -> mean 3, population var (4+0+4)/3 = 8/3, std sqrt(8/3)
     *   feature 1: 7, 7, 7 -> mean 7, std 0 -> replaced by 1 */
    float x[8] = {1, 7, 3, 7, 100, -100, 5, 7};
    cv_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 4;
    ds.shape = cv_shape_vec(2);
    ds.xtype = CV_DTYPE_F32;
    ds.x = x;
    cv_normalizer nz;
    cv_err err = {{0}};
    int64_t fit_rows[3] = {0, 1, 3};
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_STANDARDIZE, &ds, fit_rows, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(nz.mode, CV_NORM_STANDARDIZE);
    cr_assert_eq(nz.dim, 2);
    const float sd = (float)sqrt(8.0 / 3.0);
    cr_assert_float_eq(nz.mean[0], 3.0f, 1e-6);
    cr_assert_float_eq(nz.std[0], sd, 1e-6);
    cr_assert_float_eq(nz.mean[1], 7.0f, 1e-6);
    cr_assert_float_eq(nz.std[1], 1.0f, 0);
    int64_t idx[2] = {3, 2};
    float out[4];
    cv_dataset_gather(&ds, &nz, idx, 2, out);
    cr_assert_float_eq(out[0], 2.0f / sd, 1e-6);
    cr_assert_float_eq(out[1], 0.0f, 1e-6);
    cr_assert_float_eq(out[2], 97.0f / sd, 1e-4);
    cr_assert_float_eq(out[3], -107.0f, 1e-4);
    cv_normalizer_free(&nz);
    cr_assert_null(nz.mean);

    /* uint8 data, all rows: feature 0 of small_u8 is 0, 255, 51 -> mean 102 */
    uint8_t xb[6];
    small_u8(&ds, xb);
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_STANDARDIZE, &ds, NULL, 0, &err), 0, "%s", err.msg);
    double m = 102.0, v = ((0 - m) * (0 - m) + (255 - m) * (255 - m) + (51 - m) * (51 - m)) / 3;
    cr_assert_float_eq(nz.mean[0], 102.0f, 1e-5);
    cr_assert_float_eq(nz.std[0], (float)sqrt(v), 1e-4);
    cv_dataset_gather(&ds, &nz, NULL, 1, out);
    cr_assert_float_eq(out[0], (float)(-102.0 / sqrt(v)), 1e-6);
    cv_normalizer_free(&nz);
}

/* Statistics must not depend on the number of threads (more features than one block). */
Test(gather, standardize_many_features_matches_serial)
{
    enum { N = 37, D = 150 };
    float *x = malloc(sizeof(float) * N * D);
    cr_assert_not_null(x);
    for (int i = 0; i < N * D; i++) x[i] = (float)((i * 7919) % 101) * 0.37f - 11.0f;
    cv_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = N;
    ds.shape = cv_shape_vec(D);
    ds.xtype = CV_DTYPE_F32;
    ds.x = x;
    cv_normalizer nz;
    cv_err err = {{0}};
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_STANDARDIZE, &ds, NULL, 0, &err), 0, "%s", err.msg);
    for (int j = 0; j < D; j++) {
        double m = 0, v = 0;
        for (int r = 0; r < N; r++) m += x[r * D + j];
        m /= N;
        for (int r = 0; r < N; r++) v += (x[r * D + j] - m) * (x[r * D + j] - m);
        cr_assert_eq(nz.mean[j], (float)m, "feature %d", j);
        cr_assert_eq(nz.std[j], (float)sqrt(v / N), "feature %d", j);
    }
    cv_normalizer_free(&nz);
    free(x);
}

Test(gather, y_labels_and_targets)
{
    int32_t lab[3] = {4, 5, 6};
    cv_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 3;
    ds.has_labels = true;
    ds.labels = lab;
    int64_t idx[2] = {2, 0};
    int32_t l[2];
    cv_dataset_gather_y(&ds, idx, 2, l, NULL);
    cr_assert_eq(l[0], 6);
    cr_assert_eq(l[1], 4);

    float tg[6] = {1, 2, 3, 4, 5, 6};
    ds.has_labels = false;
    ds.labels = NULL;
    ds.ydim = 2;
    ds.targets = tg;
    float t[4];
    cv_dataset_gather_y(&ds, idx, 2, NULL, t);
    float want[4] = {5, 6, 1, 2};
    cr_assert_arr_eq(t, want, sizeof want);
}

/* ---------------------------------------------------------------- load errors */

Test(dataset_errors, missing_file)
{
    cv_dataset ds;
    cv_err err = {{0}};
    const char *p = TMP "data_no_such_file.h5";
    unlink(p);
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, "no such file");
    cv_dataset_free(&ds);
}

Test(dataset_errors, not_hdf5)
{
    const char *p = TMP "data_text.h5";
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp);
    fputs("x,y\n1,2\n", fp);
    fclose(fp);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, "not an HDF5 file");
    cv_dataset_free(&ds);
}

Test(dataset_errors, truncated_file)
{
    const char *p = TMP "data_trunc.h5";
    write_small_images(p);
    long size = file_size(p);
    cr_assert_eq(truncate(p, size / 2), 0);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, "truncated");
    cv_dataset_free(&ds);
}

/* Whatever the cut, a damaged file is an error, never a crash or a silent success. */
Test(dataset_errors, truncated_anywhere_is_an_error)
{
    const char *p = TMP "data_trunc_many.h5";
    char orig[8192];
    write_small_images(p);
    long size = file_size(p);
    cr_assert_lt(size, (long)sizeof orig);
    FILE *fp = fopen(p, "rb");
    cr_assert_eq(fread(orig, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    for (long cut = 1; cut < size; cut += 97) {
        fp = fopen(p, "wb");
        cr_assert_eq(fwrite(orig, 1, (size_t)cut, fp), (size_t)cut);
        fclose(fp);
        cv_dataset ds;
        cv_err err = {{0}};
        cr_assert_eq(cv_dataset_load(&ds, p, &err), -1, "cut at %ld loaded", cut);
        cr_assert(strstr(err.msg, p), "cut %ld: %s", cut, err.msg);
        cv_dataset_free(&ds);
    }
}

Test(dataset_errors, missing_x)
{
    const char *p = TMP "data_no_x.h5";
    int32_t y[2] = {0, 1};
    hsize_t yd[1] = {2};
    write_raw(p, -1, 0, NULL, NULL, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/x: missing dataset");
    cv_dataset_free(&ds);
}

Test(dataset_errors, missing_y)
{
    const char *p = TMP "data_no_y.h5";
    uint8_t x[4] = {0};
    hsize_t xd[2] = {2, 2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, -1, 0, NULL, NULL);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/y: missing dataset");
    cv_dataset_free(&ds);
}

Test(dataset_errors, wrong_rank_x)
{
    const char *p = TMP "data_rank3.h5";
    uint8_t x[2 * 3 * 3] = {0};
    int32_t y[2] = {0, 1};
    hsize_t xd[3] = {2, 3, 3}, yd[1] = {2};
    write_raw(p, H5T_NATIVE_UINT8, 3, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/x: rank 3");
    cv_dataset_free(&ds);
}

Test(dataset_errors, wrong_dtype_x)
{
    const char *p = TMP "data_int16.h5";
    int16_t x[4] = {1, 2, 3, 4};
    int32_t y[2] = {0, 1};
    hsize_t xd[2] = {2, 2}, yd[1] = {2};
    write_raw(p, H5T_NATIVE_INT16, 2, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p,
               ":/x: dtype int16; convoy reads uint8 or float");
    cv_dataset_free(&ds);
}

Test(dataset_errors, n_mismatch)
{
    const char *p = TMP "data_nmismatch.h5";
    uint8_t x[3 * 2] = {0};
    int32_t y[2] = {0, 1};
    hsize_t xd[2] = {3, 2}, yd[1] = {2};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, "/x has 3 rows but /y has 2");
    cv_dataset_free(&ds);
}

Test(dataset_errors, nan_in_float_x)
{
    const char *p = TMP "data_nan.h5";
    float x[3 * 2] = {0, 1, 2, 3, NAN, 5};
    int32_t y[3] = {0, 1, 0};
    hsize_t xd[2] = {3, 2}, yd[1] = {3};
    write_raw(p, H5T_NATIVE_FLOAT, 2, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/x: NaN at row 2");
    cv_dataset_free(&ds);
}

Test(dataset_errors, negative_label)
{
    const char *p = TMP "data_neglabel.h5";
    uint8_t x[3] = {0};
    int32_t y[3] = {0, 1, -4};
    hsize_t xd[2] = {3, 1}, yd[1] = {3};
    write_raw(p, H5T_NATIVE_UINT8, 2, xd, x, H5T_NATIVE_INT32, 1, yd, y);
    cv_dataset ds;
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_load(&ds, p, &err), err, p, ":/y: negative label -4 at row 2");
    cv_dataset_free(&ds);
}

Test(dataset_errors, label_out_of_range)
{
    const char *p = TMP "data_label_range.h5";
    write_small_images(p); /* labels 0 1 2 1 */
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    EXPECT_ERR(cv_dataset_check_labels(&ds, 2, &err), err, p,
               ":/y: label 2 at row 2 outside [0, 2)");
    cv_dataset_free(&ds);
}

Test(dataset_errors, float_targets_are_not_labels)
{
    const char *p = TMP "data_targets_not_labels.h5";
    float x[2] = {1, 2}, t[2] = {0.5f, 1.5f};
    cv_err err = {{0}};
    unlink(p);
    cr_assert_eq(cv_dataset_write(p, 2, cv_shape_vec(1), CV_DTYPE_F32, x, NULL, t, 1, NULL, 0,
                                  &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "%s", err.msg);
    EXPECT_ERR(cv_dataset_check_labels(&ds, 2, &err), err, p, "float targets");
    cv_dataset_free(&ds);
}

/* ---------------------------------------------------------------- write errors */

Test(dataset_write_errors, directory_missing)
{
    const char *p = TMP "data_no_such_dir/sub/out.h5";
    uint8_t x[1] = {0};
    int32_t y[1] = {0};
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_write(p, 1, cv_shape_vec(1), CV_DTYPE_U8, x, y, NULL, 0, NULL, 0, &err),
               err, p, "cannot create (directory does not exist)");
}

/* Tests run as root, so a chmod'ed directory would still be writable: use a regular file as
 * the "directory" instead, and /proc, which nobody can create files in. */
Test(dataset_write_errors, directory_not_writable)
{
    const char *plainfile = TMP "data_plain_file";
    FILE *fp = fopen(plainfile, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    const char *p = TMP "data_plain_file/out.h5";
    uint8_t x[1] = {0};
    int32_t y[1] = {0};
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_write(p, 1, cv_shape_vec(1), CV_DTYPE_U8, x, y, NULL, 0, NULL, 0, &err),
               err, p, "cannot create (a component of the path is not a directory)");
    EXPECT_ERR(cv_predictions_write("/proc/convoy_pred.h5", (float[]){1}, 1, 1, &err), err,
               "/proc/convoy_pred.h5", "cannot create");
}

Test(dataset_write_errors, failed_write_keeps_old_file)
{
    const char *p = TMP "data_keep_old.h5";
    write_small_images(p);
    long before = file_size(p);
    /* x NULL makes the HDF5 write itself fail after the temporary file exists */
    int32_t y[2] = {0, 0};
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_write(p, 2, cv_shape_vec(3), CV_DTYPE_F32, NULL, y, NULL, 0, NULL, 0,
                                &err), err, p, "/x: cannot write");
    cr_assert_eq(file_size(p), before);
    cr_assert_eq(tmp_left(CONVOY_TEST_TMP, "data_keep_old.h5"), 0, "temporary file left behind");
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, p, &err), 0, "old file damaged: %s", err.msg);
    cr_assert_eq(ds.n, 4);
    cv_dataset_free(&ds);
}

Test(dataset_write_errors, bad_arguments)
{
    const char *p = TMP "data_bad_args.h5";
    uint8_t x[1] = {0};
    cv_err err = {{0}};
    EXPECT_ERR(cv_dataset_write(p, 1, cv_shape_vec(1), CV_DTYPE_U8, x, NULL, NULL, 0, NULL, 0,
                                &err), err, p, "labels or targets");
    EXPECT_ERR(cv_dataset_write(p, 0, cv_shape_vec(1), CV_DTYPE_U8, x, NULL, NULL, 0, NULL, 0,
                                &err), err, p, "0 samples");
}

/* /w: sample weights, optional, one finite weight >= 0 per row */
static void write_weighted(const char *path, const float *w, hsize_t nw)
{
    const float x[4] = {1, 2, 3, 4};
    const int32_t y[4] = {0, 1, 0, 1};
    cv_err e;
    cr_assert_eq(cv_dataset_write(path, 4, cv_shape_vec(1), CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_eq(cv_h5_write(f, "w", H5T_NATIVE_FLOAT, 1, &nw, w, path, &e), 0, "%s", e.msg);
    H5Fclose(f);
}

Test(dataset, sample_weights)
{
    cv_dataset ds;
    cv_err e;
    write_weighted(TMP "w.h5", (const float[]){1.0f, 0.5f, 2.0f, 0.0f}, 4);
    cr_assert_eq(cv_dataset_load(&ds, TMP "w.h5", &e), 0, "%s", e.msg);
    cr_assert(ds.weights && ds.weights[1] == 0.5f && ds.weights[3] == 0.0f);
    cv_dataset_free(&ds);
    write_weighted(TMP "w.h5", (const float[]){1.0f, -0.5f, 2.0f, 0.0f}, 4);
    EXPECT_ERR(cv_dataset_load(&ds, TMP "w.h5", &e), e, "w.h5:/w", "weight -0.5 of row 1");
    write_weighted(TMP "w.h5", (const float[]){1.0f, NAN, 2.0f, 0.0f}, 4);
    EXPECT_ERR(cv_dataset_load(&ds, TMP "w.h5", &e), e, "w.h5:/w", "row 1");
    write_weighted(TMP "w.h5", (const float[]){1.0f, 2.0f, 3.0f}, 3);
    EXPECT_ERR(cv_dataset_load(&ds, TMP "w.h5", &e), e, "w.h5", "/w");
    const float x[2] = {1, 2};
    const int32_t y[2] = {0, 1};
    cr_assert_eq(cv_dataset_write(TMP "now.h5", 2, cv_shape_vec(1), CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &e), 0);
    cr_assert_eq(cv_dataset_load(&ds, TMP "now.h5", &e), 0, "%s", e.msg);
    cr_assert_null(ds.weights, "no /w: unweighted");
    cv_dataset_free(&ds);
}
