/* Writes the seed corpora of the fuzz harnesses (small valid inputs that reach every branch of
 * a successful load): make_seeds SRCDIR, where SRCDIR is tests/fuzz. The HDF5 seeds and the
 * CMYK/YCCK JPEGs were made by it (make_text_seeds.py writes the CSV, PNG and other JPEG seeds);
 * run it again only to change them (launch/fuzz does not).
 *   cmake --build build --target fuzz_make_seeds && build/tests/fuzz/fuzz_make_seeds tests/fuzz */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "convoy/checkpoint.h"
#include "convoy/data.h"

static int die(const cv_err *err)
{
    fprintf(stderr, "make_seeds: %s\n", err->msg);
    return 1;
}

/* HDF5 files are named seed-N.bin: the repository ignores *.h5. */
static void seed_name(char *buf, size_t size, const char *dir, const char *kind, int n)
{
    snprintf(buf, size, "%s/seeds-%s/seed-%d.bin", dir, kind, n);
}

static int datasets(const char *dir, cv_err *err)
{
    char path[1024];
    uint8_t img[3 * 2 * 2 * 1] = {0, 255, 7, 9, 1, 2, 3, 4, 250, 251, 252, 253};
    int32_t labels[4] = {0, 1, 2, 1};
    char *classes[] = {"t-shirt", "trouser", "pullover"};
    seed_name(path, sizeof path, dir, "dataset", 1);
    if (cv_dataset_write(path, 3, cv_shape_hwc(2, 2, 1), CV_DTYPE_U8, img, labels, NULL, 0, classes,
                         3, err))
        return -1;
    float tab[4 * 3] = {0.5f, -1, 2, 3, 4, 5, -6, 7.25f, 8, 9, 10, 11};
    float targets[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
    seed_name(path, sizeof path, dir, "dataset", 2);
    if (cv_dataset_write(path, 4, cv_shape_vec(3), CV_DTYPE_F32, tab, NULL, targets, 2, NULL, 0,
                         err))
        return -1;
    seed_name(path, sizeof path, dir, "dataset", 3);
    return cv_dataset_write(path, 4, cv_shape_vec(3), CV_DTYPE_F32, tab, labels, NULL, 0, NULL, 0,
                            err);
}

/* A checkpoint of a freshly built network, with a standardising normaliser and optimizer state. */
static int checkpoint(const char *dir, int n, const char *model, cv_err *err)
{
    char path[1024];
    cv_model_spec spec;
    if (cv_model_parse(&spec, model, "seed.model", err)) return -1;
    cv_net *net = cv_net_create(&spec, 1, 7, err);
    cv_model_spec_free(&spec);
    if (!net) return -1;
    const cv_model_spec *s = cv_net_spec(net);
    cv_normalizer nz = {.mode = s->layers[0].normalize == CV_NORM_STANDARDIZE ? CV_NORM_STANDARDIZE
                                                                               : CV_NORM_SCALE,
                        .dim = cv_shape_size(s->layers[0].shape)};
    float mean[16] = {0}, sd[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    nz.mean = mean;
    nz.std = sd;
    cv_optim opt;
    int rc = cv_optim_init(&opt, &s->optim, cv_net_param_count(net), err);
    if (rc == 0) {
        cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net));
        seed_name(path, sizeof path, dir, "checkpoint", n);
        rc = cv_checkpoint_save(path, net, &nz, &opt, 1, err);
        cv_optim_free(&opt);
    }
    cv_net_free(net);
    return rc;
}

/* A 4-component JPEG (cjpeg cannot write one): plain CMYK, or YCCK, which libjpeg marks with an
 * Adobe APP14 segment (the inverted CMYK of Photoshop's files). */
static int jpeg_cmyk(const char *dir, const char *name, J_COLOR_SPACE space)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/seeds-jpeg/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr); /* exits on error: fine for a seed writer */
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = 8;
    c.image_height = 6;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, space);
    jpeg_set_quality(&c, 80, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[8 * 4];
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < 8 * 4; i++) row[i] = (uint8_t)(i * 7 + c.next_scanline * 40);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds SRCDIR (tests/fuzz)\n");
        return 2;
    }
    cv_err err;
    if (datasets(argv[1], &err)) return die(&err);
    if (checkpoint(argv[1], 1,
                   "input shape=3 normalize=standardize\n"
                   "dense units=4 activation=relu\n"
                   "dense units=2 activation=softmax\n"
                   "compile optimizer=adam loss=sparse_categorical_crossentropy\n", &err))
        return die(&err);
    if (checkpoint(argv[1], 2,
                   "input shape=4,4,1\n"
                   "conv2d filters=2 kernel=3 padding=same activation=relu\n"
                   "maxpool2d pool=2\n"
                   "flatten\n"
                   "dense units=3 activation=softmax use_bias=false\n"
                   "compile optimizer=sgd loss=sparse_categorical_crossentropy metrics=accuracy\n",
                   &err))
        return die(&err);
    if (jpeg_cmyk(argv[1], "cmyk.jpg", JCS_CMYK) || jpeg_cmyk(argv[1], "ycck-adobe.jpg", JCS_YCCK)) {
        fprintf(stderr, "make_seeds: cannot write the CMYK JPEG seeds\n");
        return 1;
    }
    return 0;
}
