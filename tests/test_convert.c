/* Converters: synthetic IDX pairs (gzip and plain) and CSV files written here, converted and
 * loaded back; every malformed input must fail with FILE or FILE:LINE and the reason; and the
 * real Fashion-MNIST from Debian's dataset-fashion-mnist package. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "convoy/data.h"

#define TMP CONVOY_TEST_TMP "/"
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

#define EXPECT_ERR(rc, e, file, reason)                                                        \
    do {                                                                                       \
        cr_assert_eq((rc), -1, "expected failure");                                            \
        cr_assert(strstr((e).msg, (file)) != NULL, "message lacks file %s: %s", (file), (e).msg); \
        cr_assert(strstr((e).msg, (reason)) != NULL, "message lacks '%s': %s", (reason), (e).msg); \
    } while (0)

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes an IDX file (gzip unless mode is "wT", zlib's plain mode): magic, dims, payload. */
static void write_idx(const char *path, const char *mode, uint32_t magic, int ndims,
                      const uint32_t *dims, const uint8_t *data, size_t len)
{
    gzFile g = gzopen(path, mode);
    cr_assert_not_null(g, "gzopen %s", path);
    unsigned char hdr[16];
    put_be32(hdr, magic);
    for (int i = 0; i < ndims; i++) put_be32(hdr + 4 + 4 * i, dims[i]);
    cr_assert_eq(gzwrite(g, hdr, 4 + 4 * (unsigned)ndims), 4 + 4 * ndims);
    if (len) cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
    cr_assert_eq(gzclose(g), Z_OK);
}

/* 5 images of 3x4 with pixel (i,r,c) = 12i + 4r + c, labels 9 - i. */
static void synthetic_pair(const char *img, const char *lab, const char *mode)
{
    uint8_t px[5 * 12], lb[5];
    for (int i = 0; i < 60; i++) px[i] = (uint8_t)i;
    for (int i = 0; i < 5; i++) lb[i] = (uint8_t)(9 - i);
    write_idx(img, mode, 0x803, 3, (uint32_t[]){5, 3, 4}, px, sizeof px);
    write_idx(lab, mode, 0x801, 1, (uint32_t[]){5}, lb, sizeof lb);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    cr_assert_eq(fputs(text, fp) >= 0, 1);
    cr_assert_eq(fclose(fp), 0);
}

/* ---------------------------------------------------------------- IDX */

static void check_synthetic(const char *out)
{
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 5);
    cr_assert_eq(ds.shape.rank, 3);
    cr_assert_eq(ds.shape.d[0], 3);
    cr_assert_eq(ds.shape.d[1], 4);
    cr_assert_eq(ds.shape.d[2], 1);
    cr_assert_eq(ds.xtype, CV_DTYPE_U8);
    for (int i = 0; i < 60; i++) cr_assert_eq(((uint8_t *)ds.x)[i], i);
    cr_assert(ds.has_labels);
    for (int i = 0; i < 5; i++) cr_assert_eq(ds.labels[i], 9 - i);
    cr_assert_eq(ds.n_classes, 0);
    cv_dataset_free(&ds);
}

Test(idx, gzip_roundtrip)
{
    const char *img = TMP "cv_idx_gz_img.gz", *lab = TMP "cv_idx_gz_lab.gz",
               *out = TMP "cv_idx_gz.h5";
    synthetic_pair(img, lab, "wb");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_idx(img, lab, out, &err), 0, "%s", err.msg);
    check_synthetic(out);
}

Test(idx, plain_roundtrip)
{
    const char *img = TMP "cv_idx_plain_img", *lab = TMP "cv_idx_plain_lab",
               *out = TMP "cv_idx_plain.h5";
    synthetic_pair(img, lab, "wT");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_idx(img, lab, out, &err), 0, "%s", err.msg);
    check_synthetic(out);
}

Test(idx, bad_magic)
{
    const char *img = TMP "cv_idx_magic_img.gz", *lab = TMP "cv_idx_magic_lab.gz",
               *out = TMP "cv_idx_magic.h5";
    synthetic_pair(img, lab, "wb");
    uint8_t px[12] = {0};
    write_idx(img, "wb", 0x802, 3, (uint32_t[]){1, 3, 4}, px, sizeof px); /* wrong type code */
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_idx(img, lab, out, &err), err, img, "bad magic 0x00000802");
    /* labels and images swapped: each has the other's magic */
    EXPECT_ERR(cv_convert_idx(lab, lab, out, &err), err, lab, "bad magic 0x00000801");
}

Test(idx, count_mismatch)
{
    const char *img = TMP "cv_idx_count_img.gz", *lab = TMP "cv_idx_count_lab.gz",
               *out = TMP "cv_idx_count.h5";
    synthetic_pair(img, lab, "wb");
    uint8_t lb[4] = {0};
    write_idx(lab, "wb", 0x801, 1, (uint32_t[]){4}, lb, sizeof lb);
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_idx(img, lab, out, &err), err, lab, "4 labels but");
    cr_assert(strstr(err.msg, "has 5 images"), "%s", err.msg);
    struct stat st;
    cr_assert_neq(stat(out, &st), 0, "no output on failure");
}

Test(idx, truncated)
{
    const char *img = TMP "cv_idx_trunc_img.gz", *lab = TMP "cv_idx_trunc_lab.gz",
               *out = TMP "cv_idx_trunc.h5";
    synthetic_pair(img, lab, "wb");
    uint8_t px[5 * 12 - 7] = {0}; /* header promises 5 images, 7 bytes are missing */
    write_idx(img, "wb", 0x803, 3, (uint32_t[]){5, 3, 4}, px, sizeof px);
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_idx(img, lab, out, &err), err, img, "truncated");

    /* a gzip stream cut short is also an error, not a crash */
    synthetic_pair(img, lab, "wb");
    struct stat st;
    cr_assert_eq(stat(img, &st), 0);
    cr_assert_eq(truncate(img, st.st_size / 2), 0);
    cr_assert_eq(cv_convert_idx(img, lab, out, &err), -1);
    cr_assert(strstr(err.msg, img), "%s", err.msg);

    /* and so is a header cut short */
    write_text(img, "\0\0");
    EXPECT_ERR(cv_convert_idx(img, lab, out, &err), err, img, "truncated");
}

Test(idx, trailing_data)
{
    const char *img = TMP "cv_idx_extra_img.gz", *lab = TMP "cv_idx_extra_lab.gz",
               *out = TMP "cv_idx_extra.h5";
    synthetic_pair(img, lab, "wb");
    uint8_t lb[6] = {0};
    write_idx(lab, "wb", 0x801, 1, (uint32_t[]){5}, lb, sizeof lb); /* one byte too many */
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_idx(img, lab, out, &err), err, lab, "extra data");
}

Test(idx, missing_file)
{
    const char *lab = TMP "cv_idx_missing_lab.gz";
    synthetic_pair(TMP "cv_idx_missing_img.gz", lab, "wb");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_idx(TMP "cv_idx_nope.gz", lab, TMP "cv_idx_missing.h5", &err), err,
               TMP "cv_idx_nope.gz", "no such file");
}

/* ---------------------------------------------------------------- CSV */

Test(csv, int_labels_by_name)
{
    const char *in = TMP "cv_csv_int.csv", *out = TMP "cv_csv_int.h5";
    write_text(in, "a,label,b\n1.5,2,-3\n\n0,0,4e2\r\n7,1,0.25\n");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_csv(in, "label", false, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.shape.rank, 1);
    cr_assert_eq(ds.shape.d[0], 2);
    cr_assert_eq(ds.xtype, CV_DTYPE_F32);
    float want[6] = {1.5f, -3, 0, 400, 7, 0.25f};
    cr_assert_arr_eq(ds.x, want, sizeof want);
    cr_assert(ds.has_labels);
    cr_assert_eq(ds.labels[0], 2);
    cr_assert_eq(ds.labels[1], 0);
    cr_assert_eq(ds.labels[2], 1);
    cr_assert_eq(ds.n_classes, 0);
    cv_dataset_free(&ds);
}

Test(csv, float_targets_by_index)
{
    const char *in = TMP "cv_csv_float.csv", *out = TMP "cv_csv_float.h5";
    write_text(in, "price,x1,x2\n2.5,1,2\n-1,3,4\n");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_csv(in, "0", false, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.shape.d[0], 2);
    cr_assert_not(ds.has_labels);
    cr_assert_eq(ds.ydim, 1);
    cr_assert_float_eq(ds.targets[0], 2.5f, 0);
    cr_assert_float_eq(ds.targets[1], -1.0f, 0);
    float want[4] = {1, 2, 3, 4};
    cr_assert_arr_eq(ds.x, want, sizeof want);
    cv_dataset_free(&ds);
}

Test(csv, as_float_forces_targets)
{
    const char *in = TMP "cv_csv_asfloat.csv", *out = TMP "cv_csv_asfloat.h5";
    write_text(in, "x,y\n1,3\n2,-4\n"); /* integers, one negative: fine as targets */
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_csv(in, "y", true, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_not(ds.has_labels);
    cr_assert_eq(ds.ydim, 1);
    cr_assert_float_eq(ds.targets[1], -4.0f, 0);
    cv_dataset_free(&ds);
}

/* A spreadsheet's byte-order mark must not hide the first column's name. */
Test(csv, byte_order_mark)
{
    const char *in = TMP "cv_csv_bom.csv", *out = TMP "cv_csv_bom.h5";
    write_text(in, "\xEF\xBB\xBFy,x\n1,2\n0,3\n");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_csv(in, "y", false, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.labels[0], 1);
    cr_assert_float_eq(((float *)ds.x)[1], 3.0f, 0);
    cv_dataset_free(&ds);
}

Test(csv, bad_number_names_line_and_column)
{
    const char *in = TMP "cv_csv_badnum.csv";
    write_text(in, "x1,x2,x3,y\n1,2,3,0\n4,5,abc,1\n");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_badnum.h5", &err), err, in,
               ":3: column 'x3': bad number 'abc'");
    write_text(in, "x1,y\n1,0\n2x,1\n"); /* a number must be the whole field */
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_badnum.h5", &err), err, in,
               ":3: column 'x1': bad number '2x'");
    write_text(in, "x1,y\n1,0\ninf,1\n"); /* and finite */
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_badnum.h5", &err), err, in,
               ":3: column 'x1': bad number 'inf'");
}

/* the labels' class names, as the file stores them */
static void expect_classes(const cv_dataset *ds, int K, const char *const *names)
{
    cr_assert_eq(ds->n_classes, K, "%d classes, want %d", ds->n_classes, K);
    for (int k = 0; k < K; k++) cr_assert_str_eq(ds->class_names[k], names[k]);
}

/* names in the label column: classes sorted, numbered in that order, kept as class names */
Test(csv, string_labels_become_sorted_classes)
{
    const char *in = TMP "cv_csv_names.csv", *out = TMP "cv_csv_names.h5";
    write_text(in, "petal,species\n1.4,setosa\n4.7,versicolor\n6.0,virginica\n1.3,setosa\n5.1,Virginica\n");
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_csv(in, "species", false, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert(ds.has_labels);
    expect_classes(&ds, 4, (const char *[]){"Virginica", "setosa", "versicolor", "virginica"}); /* byte order */
    const int32_t want[5] = {1, 2, 3, 1, 0};
    cr_assert_arr_eq(ds.labels, want, sizeof want);
    cv_dataset_free(&ds);
    /* numbers and names mixed: all are names */
    write_text(in, "x,y\n1,cat\n2,10\n3,9\n");
    cr_assert_eq(cv_convert_csv(in, "y", false, out, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    expect_classes(&ds, 3, (const char *[]){"10", "9", "cat"});
    cv_dataset_free(&ds);
    /* --float wants numbers; an empty label is refused */
    EXPECT_ERR(cv_convert_csv(in, "y", true, out, &err), err, in, ":2: column 'y': 'cat' is not a number");
    write_text(in, "x,y\n1,cat\n2,\n");
    EXPECT_ERR(cv_convert_csv(in, "y", false, out, &err), err, in, ":3: column 'y': empty label");
}

/* semicolons and tabs: sniffed from the first record, or given; quotes hold separators, line
 * breaks and "" */
Test(csv, separators_and_quotes)
{
    const char *in = TMP "cv_csv_sep.csv", *out = TMP "cv_csv_sep.h5";
    cv_err err = {{0}};
    cv_dataset ds;
    const char *files[] = {"\"a;b\";y;c\n1.5;\"north; east\";2\n-3; south ;4\n",
                           "a\ty\tc\n1.5\tnorth; east\t2\n-3\t south \t4\n",
                           "a,y,c\n1.5,\"north; east\",2\n-3,\" south \",4\n"};
    for (int f = 0; f < 3; f++) {
        write_text(in, files[f]);
        cr_assert_eq(cv_convert_csv(in, "y", false, out, &err), 0, "file %d: %s", f, err.msg);
        cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
        const float want[4] = {1.5f, 2, -3, 4};
        cr_assert_arr_eq(ds.x, want, sizeof want, "file %d", f);
        if (f < 2) expect_classes(&ds, 2, (const char *[]){"north; east", "south"});
        else expect_classes(&ds, 2, (const char *[]){" south ", "north; east"}); /* quoted blanks stay */
        cv_dataset_free(&ds);
    }
    /* a quoted field over two lines, "" inside, CRLF endings; the line numbers after it right */
    write_text(in, "x,y\r\n1,\"a \"\"big\"\"\r\ncat\"\r\n2,dog\r\n3,\"dog\"x\r\n");
    EXPECT_ERR(cv_convert_csv(in, "y", false, out, &err), err, in, ":5: text after a closing quote");
    write_text(in, "x,y\n1,\"a \"\"big\"\"\ncat\"\n2,dog\n");
    cr_assert_eq(cv_convert_csv(in, "y", false, out, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    expect_classes(&ds, 2, (const char *[]){"a \"big\"\ncat", "dog"});
    cr_assert_eq(ds.n, 2);
    cv_dataset_free(&ds);
    write_text(in, "x,y\n1,dog\n2,\"cat\n3,dog\n");
    EXPECT_ERR(cv_convert_csv(in, "y", false, out, &err), err, in, ":3: a quoted field is not closed");
    /* the separator given: a comma file read with ';' has one column */
    write_text(in, "x,y\n1,0\n");
    const cv_csv_options semi = {.label = "0", .separator = ';'};
    EXPECT_ERR(cv_convert_csv_with(in, &semi, out, &err), err, in, "only the label column");
}

/* no header: the first record is data and columns are named by index */
Test(csv, no_header)
{
    const char *in = TMP "cv_csv_nohead.csv", *out = TMP "cv_csv_nohead.h5";
    write_text(in, "0.5,1,cat\n0.25,2,dog\n");
    cv_err err = {{0}};
    const cv_csv_options o = {.label = "2", .no_header = true};
    cr_assert_eq(cv_convert_csv_with(in, &o, out, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, out, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 2);
    const float want[4] = {0.5f, 1, 0.25f, 2};
    cr_assert_arr_eq(ds.x, want, sizeof want);
    expect_classes(&ds, 2, (const char *[]){"cat", "dog"});
    cv_dataset_free(&ds);
    const cv_csv_options named = {.label = "y", .no_header = true};
    EXPECT_ERR(cv_convert_csv_with(in, &named, out, &err), err, in, "must be a column index without a header");
    write_text(in, "0.5,1,cat\n0.25,x,dog\n");
    EXPECT_ERR(cv_convert_csv_with(in, &o, out, &err), err, in, ":2: column '1': bad number 'x'");
}

Test(csv, wrong_field_count)
{
    const char *in = TMP "cv_csv_fields.csv";
    write_text(in, "a,b,c,d,y\n1,2,3,4,0\n1,2,3,0\n");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_fields.h5", &err), err, in,
               ":3: 4 fields, header has 5");
}

Test(csv, unknown_label_column)
{
    const char *in = TMP "cv_csv_nolabel.csv";
    write_text(in, "a,b\n1,2\n");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "target", false, TMP "cv_csv_nolabel.h5", &err), err, in,
               "no label column 'target'");
    EXPECT_ERR(cv_convert_csv(in, "5", false, TMP "cv_csv_nolabel.h5", &err), err, in,
               "label column 5 but the header has 2 columns");
}

Test(csv, empty_and_header_only)
{
    const char *in = TMP "cv_csv_empty.csv";
    write_text(in, "");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_empty.h5", &err), err, in, "empty file");
    write_text(in, "x,y\n\n");
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_empty.h5", &err), err, in, "no data rows");
}

Test(csv, negative_integer_label)
{
    const char *in = TMP "cv_csv_neg.csv";
    write_text(in, "x,y\n1,0\n2,1\n3,-1\n");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_neg.h5", &err), err, in,
               ":4: column 'y': negative label -1");
}

Test(csv, missing_file)
{
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(TMP "cv_csv_nope.csv", "y", false, TMP "cv_csv_nope.h5", &err), err,
               TMP "cv_csv_nope.csv", "no such file");
}

/* ---------------------------------------------------------------- Fashion-MNIST */

static void check_fmnist(const char *path, int64_t n, int classes)
{
    cv_dataset ds;
    cv_err err = {{0}};
    cr_assert_eq(cv_dataset_load(&ds, path, &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, n);
    cr_assert_eq(ds.shape.rank, 3);
    cr_assert_eq(ds.shape.d[0], 28);
    cr_assert_eq(ds.shape.d[1], 28);
    cr_assert_eq(ds.shape.d[2], 1);
    cr_assert_eq(ds.xtype, CV_DTYPE_U8);
    cr_assert_eq(ds.n_classes, classes);
    cr_assert_eq(cv_dataset_check_labels(&ds, classes, &err), 0, "%s", err.msg);
    cv_dataset_free(&ds);
}

Test(fashion_mnist, real_dataset, .timeout = 120)
{
    struct stat st;
    cr_assert_eq(stat(FMNIST_DIR "/train-images-idx3-ubyte.gz", &st), 0,
                 "Fashion-MNIST missing: apt-get install dataset-fashion-mnist");
    const char *outdir = TMP "cv_fmnist/nested";
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_fashion_mnist(FMNIST_DIR, outdir, NULL, 0, NULL, NULL, &err), 0, "%s",
                 err.msg);
    check_fmnist(TMP "cv_fmnist/nested/train.h5", 60000, 10);
    check_fmnist(TMP "cv_fmnist/nested/test.h5", 10000, 10);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist/nested/train.h5", &err), 0, "%s", err.msg);
    cr_assert_str_eq(ds.class_names[0], "T-shirt/top");
    cr_assert_str_eq(ds.class_names[9], "Ankle boot");
    int count[10] = {0};
    for (int64_t i = 0; i < ds.n; i++) count[ds.labels[i]]++;
    for (int c = 0; c < 10; c++) cr_assert_eq(count[c], 6000, "class %d", c);
    cv_dataset_free(&ds);

    /* binary: sandals, sneakers and ankle boots against the rest */
    const int pos[3] = {5, 7, 9};
    cr_assert_eq(cv_convert_fashion_mnist(FMNIST_DIR, TMP "cv_fmnist_bin", pos, 3, "footwear", NULL,
                                          &err), 0, "%s", err.msg);
    check_fmnist(TMP "cv_fmnist_bin/train.h5", 60000, 2);
    check_fmnist(TMP "cv_fmnist_bin/test.h5", 10000, 2);
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist_bin/train.h5", &err), 0, "%s", err.msg);
    cr_assert_str_eq(ds.class_names[0], "other");
    cr_assert_str_eq(ds.class_names[1], "footwear");
    int64_t positives = 0;
    for (int64_t i = 0; i < ds.n; i++) positives += ds.labels[i];
    cr_assert_eq(positives, 18000);
    cv_dataset_free(&ds);
}

Test(fashion_mnist, errors)
{
    cv_err err = {{0}};
    const int bad[1] = {10};
    EXPECT_ERR(cv_convert_fashion_mnist(FMNIST_DIR, TMP "cv_fmnist_err", bad, 1, NULL, NULL, &err), err,
               "positive class 10", "outside [0, 10)");
    EXPECT_ERR(cv_convert_fashion_mnist(TMP "cv_no_such_src", TMP "cv_fmnist_err", NULL, 0, NULL, NULL,
                                        &err), err, "cv_no_such_src/train-images-idx3-ubyte",
               "no such file");
    write_text(TMP "cv_fmnist_plainfile", "x");
    EXPECT_ERR(cv_convert_fashion_mnist(FMNIST_DIR, TMP "cv_fmnist_plainfile/out", NULL, 0, NULL, NULL,
                                        &err), err, "cv_fmnist_plainfile", "not a directory");
}

/* Synthetic Fashion-MNIST directory with uncompressed files: the .gz names are optional. */
Test(fashion_mnist, plain_files_and_default_positive_name)
{
    const char *src = TMP "cv_fmnist_plain_src";
    mkdir(src, 0777);
    synthetic_pair(TMP "cv_fmnist_plain_src/train-images-idx3-ubyte",
                   TMP "cv_fmnist_plain_src/train-labels-idx1-ubyte", "wT");
    synthetic_pair(TMP "cv_fmnist_plain_src/t10k-images-idx3-ubyte",
                   TMP "cv_fmnist_plain_src/t10k-labels-idx1-ubyte", "wT");
    const int pos[2] = {9, 5};
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_fashion_mnist(src, TMP "cv_fmnist_plain_out", pos, 2, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist_plain_out/test.h5", &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n, 5);
    cr_assert_str_eq(ds.class_names[1], "Sandal+Ankle boot");
    int want[5] = {1, 0, 0, 0, 1}; /* labels 9 8 7 6 5 */
    for (int i = 0; i < 5; i++) cr_assert_eq(ds.labels[i], want[i]);
    cv_dataset_free(&ds);
}

/* --classes 6,5 --per-class 2 --relabel: the training split keeps the first two images of each
 * listed class, the test split all of them; labels become positions in the list. */
Test(fashion_mnist, class_subset_per_class_and_relabel)
{
    const char *src = TMP "cv_fmnist_subset_src";
    mkdir(src, 0777);
    uint8_t px[6 * 4], lb[6] = {5, 5, 6, 5, 6, 0};
    for (int i = 0; i < 24; i++) px[i] = (uint8_t)i;
    for (int s = 0; s < 2; s++) {
        char img[256], lab[256];
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte", src, s ? "t10k" : "train");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte", src, s ? "t10k" : "train");
        write_idx(img, "wT", 0x803, 3, (uint32_t[]){6, 2, 2}, px, sizeof px);
        write_idx(lab, "wT", 0x801, 1, (uint32_t[]){6}, lb, sizeof lb);
    }
    const int keep[2] = {6, 5};
    cv_class_subset sub = {keep, 2, 2, true};
    cv_err err = {{0}};
    cr_assert_eq(cv_convert_fashion_mnist(src, TMP "cv_fmnist_subset", NULL, 0, NULL, &sub, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist_subset/train.h5", &err), 0, "%s", err.msg);
    const int32_t want_train[4] = {1, 1, 0, 0};
    const int from_train[4] = {0, 1, 2, 4};
    cr_assert_eq(ds.n, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(ds.labels[i], want_train[i], "train label %d", i);
        cr_expect_eq(((uint8_t *)ds.x)[i * 4], from_train[i] * 4, "train image %d", i);
    }
    cr_assert_eq(ds.n_classes, 2);
    cr_expect_str_eq(ds.class_names[0], "Shirt");
    cr_expect_str_eq(ds.class_names[1], "Sandal");
    cv_dataset_free(&ds);
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist_subset/test.h5", &err), 0, "%s", err.msg);
    const int32_t want_test[5] = {1, 1, 0, 1, 0};
    cr_assert_eq(ds.n, 5);
    for (int i = 0; i < 5; i++) cr_expect_eq(ds.labels[i], want_test[i], "test label %d", i);
    cv_dataset_free(&ds);

    /* without --relabel the labels and the ten class names stay */
    sub.relabel = false;
    cr_assert_eq(cv_convert_fashion_mnist(src, TMP "cv_fmnist_subset", NULL, 0, NULL, &sub, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&ds, TMP "cv_fmnist_subset/train.h5", &err), 0, "%s", err.msg);
    cr_expect_eq(ds.n_classes, 10);
    cr_expect(ds.labels[0] == 5 && ds.labels[2] == 6);
    cv_dataset_free(&ds);

    const int twice[2] = {5, 5}, out_of_range[1] = {10};
    EXPECT_ERR(cv_convert_fashion_mnist(src, TMP "cv_fmnist_subset", NULL, 0, NULL,
                                        &(cv_class_subset){twice, 2, 0, true}, &err), err, "class 5 listed twice", "");
    EXPECT_ERR(cv_convert_fashion_mnist(src, TMP "cv_fmnist_subset", NULL, 0, NULL,
                                        &(cv_class_subset){out_of_range, 1, 0, true}, &err), err, "class 10", "outside [0, 10)");
    EXPECT_ERR(cv_convert_fashion_mnist(src, TMP "cv_fmnist_subset", keep, 1, NULL, &sub, &err), err,
               "positive classes and a class subset do not combine", "");
}

/* ---- CIFAR: files in the binary version's byte format, written here ---- */

/* n records whose label bytes are labels(i) and whose pixel (y, x) of plane c is
 * (i + 3y + 5x + 7c) mod 256 */
static void cifar_file(const char *path, int n, int label_bytes, int (*labels)(int i, int b))
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        for (int b = 0; b < label_bytes; b++) fputc(labels(i, b), f);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) fputc((i + 3 * y + 5 * x + 7 * c) & 255, f);
    }
    fclose(f);
}

static int label10(int i, int b) { return (void)b, (i * 3) % 10; }
static int label100(int i, int b) { return b == 0 ? i % 20 : (i * 7) % 100; }

static void text_file(const char *path, const char *fmt, int n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) fprintf(f, fmt, i), fputc('\n', f);
    fputs("\n", f); /* the real meta files end with blank lines */
    fclose(f);
}

Test(cifar, ten_and_hundred)
{
    mkdir(TMP "c10", 0755);
    mkdir(TMP "c100", 0755);
    char path[512];
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, TMP "c10/data_batch_%d.bin", b);
        cifar_file(path, 4, 1, label10);
    }
    cifar_file(TMP "c10/test_batch.bin", 3, 1, label10);
    text_file(TMP "c10/batches.meta.txt", "class%d", 10);
    cv_err e;
    cr_assert_eq(cv_convert_cifar(TMP "c10", TMP "c10out", 10, false, &e), 0, "%s", e.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "c10out/train.h5", &e), 0, "%s", e.msg);
    cr_assert_eq(ds.n, 20);
    cr_assert(ds.shape.d[0] == 32 && ds.shape.d[1] == 32 && ds.shape.d[2] == 3);
    cr_assert(ds.n_classes == 10 && strcmp(ds.class_names[9], "class9") == 0);
    cr_assert(ds.image_h == 32 && ds.image_w == 32 && ds.image_c == 3);
    const uint8_t *x = ds.x;
    /* image 6 (batch 2's third): label (2*3) % 10; pixel (y=4, x=9), channel G */
    cr_assert_eq(ds.labels[6], 6);
    cr_assert_eq(x[6 * 3072 + (4 * 32 + 9) * 3 + 1], (2 + 12 + 45 + 7) & 255, "planes become NHWC");
    cv_dataset_free(&ds);

    cifar_file(TMP "c100/train.bin", 5, 2, label100);
    cifar_file(TMP "c100/test.bin", 2, 2, label100);
    text_file(TMP "c100/fine_label_names.txt", "fine%d", 100);
    text_file(TMP "c100/coarse_label_names.txt", "coarse%d", 20);
    for (int coarse = 0; coarse < 2; coarse++) {
        cr_assert_eq(cv_convert_cifar(TMP "c100", TMP "c100out", 100, coarse, &e), 0, "%s", e.msg);
        cr_assert_eq(cv_dataset_load(&ds, TMP "c100out/train.h5", &e), 0, "%s", e.msg);
        cr_assert_eq(ds.n_classes, coarse ? 20 : 100);
        cr_assert_eq(ds.labels[3], coarse ? 3 : 21, "record 3's %s label", coarse ? "coarse" : "fine");
        cr_assert_eq(((const uint8_t *)ds.x)[3 * 3072 + 2], (3 + 14) & 255, "the second label byte is skipped");
        cv_dataset_free(&ds);
    }
}

Test(cifar, bad_files)
{
    mkdir(TMP "cbad", 0755);
    unlink(TMP "cbad/batches.meta.txt"); /* a previous run's files */
    cv_err e;
    EXPECT_ERR(cv_convert_cifar(TMP "cbad", TMP "cbadout", 10, false, &e), e, "batches.meta.txt", "cannot read");
    text_file(TMP "cbad/batches.meta.txt", "c%d", 9);
    EXPECT_ERR(cv_convert_cifar(TMP "cbad", TMP "cbadout", 10, false, &e), e, "batches.meta.txt", "9 class names");
    text_file(TMP "cbad/batches.meta.txt", "c%d", 10);
    char path[512];
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, TMP "cbad/data_batch_%d.bin", b);
        cifar_file(path, 2, 1, label10);
    }
    FILE *f = fopen(TMP "cbad/data_batch_4.bin", "ab");
    fputc(1, f);
    fclose(f);
    EXPECT_ERR(cv_convert_cifar(TMP "cbad", TMP "cbadout", 10, false, &e), e, "data_batch_4.bin", "3073-byte CIFAR records");
    cifar_file(TMP "cbad/data_batch_4.bin", 2, 1, label100); /* label 0, then 7 read as pixels: fine */
    cifar_file(TMP "cbad/test_batch.bin", 1, 2, label100);   /* a 3074-byte file */
    EXPECT_ERR(cv_convert_cifar(TMP "cbad", TMP "cbadout", 10, false, &e), e, "test_batch.bin", "CIFAR records");
    EXPECT_ERR(cv_convert_cifar(TMP "cbad", TMP "cbadout", 10, true, &e), e, "coarse", "CIFAR-100");
}

/* A NUL byte (binary data, UTF-16 text; seen while writing fuzz_csv): getline kept it and the
 * string functions after it stopped there, so "2,1<NUL>,junk" converted as "2,1" without a word. */
Test(csv, nul_byte_is_an_error)
{
    const char *in = TMP "cv_csv_nul.csv";
    static const char text[] = "x,y\n1,0\n2,1\0,junk\n";
    FILE *fp = fopen(in, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(text, 1, sizeof text - 1, fp), sizeof text - 1);
    cr_assert_eq(fclose(fp), 0);
    unlink(TMP "cv_csv_nul.h5");
    cv_err err = {{0}};
    EXPECT_ERR(cv_convert_csv(in, "y", false, TMP "cv_csv_nul.h5", &err), err, in, ":3: a NUL byte at column 4");
    struct stat st;
    cr_assert_neq(stat(TMP "cv_csv_nul.h5", &st), 0, "no output for a refused CSV");
}
