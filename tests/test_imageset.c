/* Image files and image folders: every PNG colour type and JPEG kind decodes to the pixels it
 * holds, bad files are refused with their name, channels and resizing follow worked examples
 * (Pillow's arithmetic, computed by hand below), and a folder of class folders becomes a
 * dataset with sorted class names, a seeded stratified split and every bad-folder message. */
#define _DEFAULT_SOURCE /* symlink, mkdtemp */
#include <criterion/criterion.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/data.h"
#include "convoy/image.h"
#include "convoy/imageset.h"

static char root[512];

static void setup(void)
{
    snprintf(root, sizeof root, "%s/imageset.XXXXXX", CONVOY_TEST_TMP);
    cr_assert_not_null(mkdtemp(root));
}

TestSuite(imageset, .init = setup);

static const char *at(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

static void make_dir(const char *name) { cr_assert_eq(mkdir(at(name), 0755), 0, "mkdir %s", name); }

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A PNG of any colour type and depth through libpng's classic API (rows of packed samples). */
static void write_png(const char *path, int w, int h, int type, int depth, const uint8_t *rows, size_t stride,
                      const png_color *palette, int npal, const uint8_t *trns, int ntrns)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(png && info);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void read_ok(const char *path, cv_image *img)
{
    cv_err err;
    cr_assert_eq(cv_image_read(path, img, 0, 0, &err), 0, "%s", err.msg);
}

Test(imageset, png_colour_types)
{
    cv_image img;
    /* palette with transparency: RGBA */
    const png_color pal[3] = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
    const uint8_t trns[2] = {255, 7}, idx[4] = {0, 1, 2, 1};
    write_png(at("pal.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, 4, pal, 3, trns, 2);
    read_ok(at("pal.png"), &img);
    cr_assert_eq(img.c, 4);
    const uint8_t want_pal[16] = {10, 20, 30, 255, 200, 100, 0, 7, 1, 2, 3, 255, 200, 100, 0, 7};
    cr_assert_eq(memcmp(img.px, want_pal, 16), 0, "palette + tRNS");
    cv_image_free(&img);
    /* 16-bit grey: the high byte */
    const uint8_t g16[4] = {0x12, 0x34, 0xff, 0x01};
    write_png(at("g16.png"), 2, 1, PNG_COLOR_TYPE_GRAY, 16, g16, 4, NULL, 0, NULL, 0);
    read_ok(at("g16.png"), &img);
    cr_assert(img.c == 1 && img.px[0] == 0x12 && img.px[1] == 0xff, "16-bit grey keeps the high byte");
    cv_image_free(&img);
    /* 1-bit grey: 0 and 255 */
    const uint8_t bits[1] = {0xa0}; /* 1 0 1 0 */
    write_png(at("g1.png"), 4, 1, PNG_COLOR_TYPE_GRAY, 1, bits, 1, NULL, 0, NULL, 0);
    read_ok(at("g1.png"), &img);
    cr_assert(img.c == 1 && img.px[0] == 255 && img.px[1] == 0 && img.px[2] == 255 && img.px[3] == 0, "1-bit grey");
    cv_image_free(&img);
    /* 16-bit RGB with alpha */
    const uint8_t rgba16[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    write_png(at("rgba16.png"), 1, 1, PNG_COLOR_TYPE_RGBA, 16, rgba16, 8, NULL, 0, NULL, 0);
    read_ok(at("rgba16.png"), &img);
    cr_assert(img.c == 4 && img.px[0] == 1 && img.px[1] == 3 && img.px[2] == 5 && img.px[3] == 7, "16-bit RGBA");
    cv_image_free(&img);
}

Test(imageset, jpeg_kinds_and_round_trip)
{
    cv_image a, b;
    cv_err err;
    for (int c = 1; c <= 3; c += 2) {
        cr_assert_eq(cv_image_alloc(&a, 32, 24, c, &err), 0);
        for (int i = 0; i < 32 * 24 * c; i++) /* a smooth ramp: what JPEG keeps well */
            a.px[i] = (uint8_t)(60 + 2 * (i / c % 32) + 3 * (i / c / 32) + 10 * (i % c));
        cr_assert_eq(cv_jpeg_write(at("a.jpg"), &a, 95, &err), 0, "%s", err.msg);
        read_ok(at("a.jpg"), &b);
        cr_assert(b.w == 32 && b.h == 24 && b.c == c, "shape %dx%dx%d", b.w, b.h, b.c);
        int worst = 0;
        for (int i = 0; i < 32 * 24 * c; i++) worst = abs(a.px[i] - b.px[i]) > worst ? abs(a.px[i] - b.px[i]) : worst;
        cr_assert_leq(worst, 12, "quality 95 within a few levels, got %d", worst);
        cv_image_free(&b);
        /* draft: a 32x24 JPEG asked for at least 8x6 decodes at 1/4 */
        cr_assert_eq(cv_jpeg_read(at("a.jpg"), &b, 8, 6, &err), 0, "%s", err.msg);
        cr_assert(b.w == 8 && b.h == 6, "draft gives %dx%d", b.w, b.h);
        cv_image_free(&b);
        cr_assert_eq(cv_jpeg_read(at("a.jpg"), &b, 9, 6, &err), 0, "%s", err.msg);
        cr_assert(b.w == 16 && b.h == 12, "draft for 9x6 gives %dx%d", b.w, b.h);
        cv_image_free(&b);
        cv_image_free(&a);
    }
    /* truncated: an error naming the file, not grey pixels */
    FILE *f = fopen(at("a.jpg"), "rb");
    cr_assert_not_null(f);
    uint8_t buf[4096];
    const size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(at("cut.jpg"), buf, n / 2);
    cr_assert_eq(cv_image_read(at("cut.jpg"), &b, 0, 0, &err), -1, "a truncated JPEG decoded");
    cr_assert(strstr(err.msg, "cut.jpg") && strstr(err.msg, "damaged JPEG"), "%s", err.msg);
    cr_assert_null(strchr(err.msg, '\n'));
    write_bytes(at("text.png"), "hello", 5);
    cr_assert_eq(cv_image_read(at("text.png"), &b, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "text.png: not a PNG or JPEG image"), "%s", err.msg);
    write_bytes(at("empty.jpg"), "", 0);
    cr_assert_eq(cv_image_read(at("empty.jpg"), &b, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
    cr_assert_eq(cv_image_read(at("none.jpg"), &b, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "none.jpg: cannot open"), "%s", err.msg);
}

/* Worked by hand with Pillow's rule (triangle filter, support scaled by the shrink factor):
 * 4 -> 2: output 0 has centre 1.0 and support 2, inputs 0..2 weighted 3/7, 3/7, 1/7:
 * (0*3 + 100*3 + 200) / 7 = 71.4 -> 71; output 1, centre 3.0: inputs 1..3 weighted 1/7, 3/7,
 * 3/7: (100 + 600 + 765) / 7 = 209.3 -> 209. 2 -> 4 (no widening, support 1): centres 0.25,
 * 0.75, 1.25, 1.75 give 0, 0.25 * 255 = 63.75 -> 64, 191.25 -> 191, 255. */
Test(imageset, resize_worked_examples)
{
    cv_image in, out;
    cv_err err;
    cr_assert_eq(cv_image_alloc(&in, 4, 1, 1, &err), 0);
    const uint8_t px[4] = {0, 100, 200, 255};
    memcpy(in.px, px, 4);
    cr_assert_eq(cv_image_resize(&in, 2, 1, &out, &err), 0, "%s", err.msg);
    cr_assert(out.px[0] == 71 && out.px[1] == 209, "4->2 gives %d %d", out.px[0], out.px[1]);
    cv_image_free(&out);
    cv_image_free(&in);
    cr_assert_eq(cv_image_alloc(&in, 1, 2, 1, &err), 0);
    in.px[0] = 0, in.px[1] = 255;
    cr_assert_eq(cv_image_resize(&in, 1, 4, &out, &err), 0, "%s", err.msg);
    cr_assert(out.px[0] == 0 && out.px[1] == 64 && out.px[2] == 191 && out.px[3] == 255, "2->4 (vertical) gives %d %d %d %d",
              out.px[0], out.px[1], out.px[2], out.px[3]);
    cv_image_free(&out);
    cv_image_free(&in);
}

/* ITU-R 601 in 16-bit fixed point: (10*19595 + 200*38470 + 30*7471 + 32768) >> 16 = 124 */
Test(imageset, channels_worked_examples)
{
    cv_image img;
    cv_err err;
    cr_assert_eq(cv_image_alloc(&img, 1, 1, 4, &err), 0);
    const uint8_t rgba[4] = {10, 200, 30, 9};
    memcpy(img.px, rgba, 4);
    cr_assert_eq(cv_image_channels(&img, 1, &err), 0);
    cr_assert(img.c == 1 && img.px[0] == 124, "grey %d", img.px[0]);
    cr_assert_eq(cv_image_channels(&img, 3, &err), 0);
    cr_assert(img.c == 3 && img.px[0] == 124 && img.px[1] == 124 && img.px[2] == 124);
    cr_assert_eq(cv_image_channels(&img, 2, &err), -1);
    cv_image_free(&img);
}

/* a w x h RGB PNG whose pixels are all v */
static void flat_png(const char *name, int w, int h, uint8_t v)
{
    cv_image img;
    cv_err err;
    cr_assert_eq(cv_image_alloc(&img, w, h, 3, &err), 0);
    memset(img.px, v, (size_t)w * h * 3);
    cr_assert_eq(cv_png_write(at(name), &img, &err), 0, "%s", err.msg);
    cv_image_free(&img);
}

static int convert(const char *dir, const char *val_out, const cv_imageset_opts *o, cv_imageset_report *rep, cv_err *err)
{
    const cv_dist d = cv_dist_single();
    return cv_convert_images(at(dir), at("out.h5"), val_out ? at(val_out) : NULL, o, &d, NULL, NULL, rep, err);
}

Test(imageset, folder_becomes_a_dataset)
{
    make_dir("f");
    const char *cls[3] = {"f/zebra", "f/ant", "f/moth"};
    for (int c = 0; c < 3; c++) make_dir(cls[c]);
    make_dir("f/ant/deeper");
    char name[128];
    for (int i = 0; i < 10; i++) { /* 10 ants (2 of them one level down), 4 moths, 6 zebras */
        snprintf(name, sizeof name, i < 8 ? "f/ant/%02d.png" : "f/ant/deeper/%02d.png", i);
        flat_png(name, 6 + i, 5, (uint8_t)i);
    }
    for (int i = 0; i < 4; i++) snprintf(name, sizeof name, "f/moth/m%d.PNG", i), flat_png(name, 8, 8, 100);
    for (int i = 0; i < 6; i++) snprintf(name, sizeof name, "f/zebra/z%d.png", i), flat_png(name, 8, 8, 200);
    write_bytes(at("f/zebra/readme.txt"), "x", 1);
    cr_assert_eq(symlink("../ant", at("f/moth/link")), 0);
    cv_imageset_opts o = {.w = 4, .h = 3, .channels = 1, .val_split = 0.25, .seed = 3};
    cv_imageset_report rep;
    cv_err err;
    cr_assert_eq(convert("f", "val.h5", &o, &rep, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.n_classes, 3);
    cr_assert_eq(rep.found, 20);
    cr_assert_eq(rep.ignored, 2, "readme.txt and the symlinked folder");
    /* round(0.25 n): ants 3 (2.5 rounds up), moths 1, zebras 2 */
    cr_assert_eq(rep.val_written, 6);
    cr_assert_eq(rep.written, 14);
    cv_dataset t, v;
    cr_assert_eq(cv_dataset_load(&t, at("out.h5"), &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&v, at("val.h5"), &err), 0, "%s", err.msg);
    cr_assert(t.shape.rank == 3 && t.shape.d[0] == 3 && t.shape.d[1] == 4 && t.shape.d[2] == 1);
    cr_assert_eq(t.n_classes, 3);
    cr_assert_str_eq(t.class_names[0], "ant");
    cr_assert_str_eq(t.class_names[1], "moth");
    cr_assert_str_eq(t.class_names[2], "zebra");
    int count[2][3] = {{0}};
    for (int64_t i = 0; i < t.n; i++) count[0][t.labels[i]]++;
    for (int64_t i = 0; i < v.n; i++) count[1][v.labels[i]]++;
    cr_assert(count[0][0] == 7 && count[0][1] == 3 && count[0][2] == 4, "train %d %d %d", count[0][0], count[0][1],
              count[0][2]);
    cr_assert(count[1][0] == 3 && count[1][1] == 1 && count[1][2] == 2, "val %d %d %d", count[1][0], count[1][1],
              count[1][2]);
    for (int64_t i = 1; i < t.n; i++) cr_assert_leq(t.labels[i - 1], t.labels[i], "classes in order");
    /* every moth pixel is grey(100,100,100) = 100 after resizing a flat image */
    const uint8_t *x = t.x;
    for (int64_t i = 0; i < t.n; i++)
        if (t.labels[i] == 1) cr_assert_eq(x[i * 12 + 5], 100);
    /* the same seed picks the same files; the ants' first value tells which */
    uint8_t first[8];
    int k = 0;
    for (int64_t i = 0; i < v.n && k < 8; i++)
        if (v.labels[i] == 0) first[k++] = ((const uint8_t *)v.x)[i * 12];
    cv_dataset_free(&t);
    cv_dataset_free(&v);
    cr_assert_eq(convert("f", "val.h5", &o, &rep, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&v, at("val.h5"), &err), 0, "%s", err.msg);
    for (int64_t i = 0, j = 0; i < v.n; i++)
        if (v.labels[i] == 0) cr_assert_eq(((const uint8_t *)v.x)[i * 12], first[j++], "seeded split changed");
    cv_dataset_free(&v);
}

static void fails_with(const char *dir, const cv_imageset_opts *o, const char *want)
{
    cv_imageset_report rep;
    cv_err err;
    cr_assert_eq(convert(dir, NULL, o, &rep, &err), -1, "converted; expected \"%s\"", want);
    cr_assert(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
    cr_assert_null(strchr(err.msg, '\n'), "not one line: %s", err.msg);
    cr_assert_neq(access(at("out.h5"), F_OK), 0, "a failed conversion left its output");
}

Test(imageset, bad_folders_and_files)
{
    const cv_imageset_opts o = {0};
    fails_with("nowhere", &o, "nowhere: No such file");
    make_dir("e");
    fails_with("e", &o, "no class folders");
    make_dir("e/only");
    flat_png("e/only/a.png", 2, 2, 1);
    fails_with("e", &o, "one class folder only (only)");
    make_dir("e/void");
    fails_with("e", &o, "e/void: class folder with no images");
    write_bytes(at("e/void/bad.jpg"), "\xff\xd8\xff\xe0 not really", 15);
    fails_with("e", &o, "bad.jpg: damaged JPEG");
    cr_assert_eq(symlink("loop2.png", at("e/void/loop1.png")), 0);
    cr_assert_eq(symlink("loop1.png", at("e/void/loop2.png")), 0);
    cv_imageset_opts skip = {.skip_bad = true};
    cv_imageset_report rep;
    cv_err err;
    flat_png("e/void/good.png", 2, 2, 9);
    cr_assert_eq(convert("e", NULL, &skip, &rep, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.written, 2);
    cr_assert_eq(rep.skipped, 3, "bad.jpg and the two links of the loop");
    cr_assert(strstr(rep.first_skipped, "bad.jpg"), "%s", rep.first_skipped);
    unlink(at("out.h5"));
    fails_with("e", &o, "bad.jpg"); /* without --skip-bad the first bad file stops it */
    const cv_imageset_opts split = {.val_split = 0.5};
    fails_with("e", &split, "--val-split needs --val-out");
}
