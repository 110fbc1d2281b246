/* PNG round trips: what convoy writes decodes back to the same pixels; bad files are refused (and
 * JPEGs of too many scans). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "convoy/image.h"

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", CONVOY_TEST_TMP, name);
}

Test(image, png_round_trip_every_channel_count)
{
    for (int c = 1; c <= 4; c++) {
        cv_image a, b;
        cv_err err;
        cr_assert_eq(cv_image_alloc(&a, 7, 5, c, &err), 0, "%s", err.msg);
        for (int i = 0; i < 7 * 5 * c; i++) a.px[i] = (uint8_t)(i * 37 + c);
        char path[512];
        tmp_path(path, sizeof path, "roundtrip.png");
        cr_assert_eq(cv_png_write(path, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(cv_png_read(path, &b, &err), 0, "%s", err.msg);
        cr_assert_eq(b.w, 7);
        cr_assert_eq(b.h, 5);
        cr_assert_eq(b.c, c);
        cr_assert_eq(memcmp(a.px, b.px, (size_t)(7 * 5 * c)), 0, "pixels differ for c=%d", c);
        cv_image_free(&a);
        cv_image_free(&b);
    }
}

Test(image, not_a_png_and_missing_file)
{
    char path[512];
    tmp_path(path, sizeof path, "not.png");
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs("hello, not a png", f);
    fclose(f);
    cv_image img;
    cv_err err;
    cr_assert_eq(cv_png_read(path, &img, &err), -1);
    cr_assert(strstr(err.msg, "not a PNG"), "%s", err.msg);
    tmp_path(path, sizeof path, "missing-dir/x.png");
    cr_assert_eq(cv_png_read(path, &img, &err), -1);
    cr_assert(strstr(err.msg, "x.png"), "%s", err.msg);
    cv_image a;
    cr_assert_eq(cv_image_alloc(&a, 2, 2, 1, &err), 0);
    cr_assert_eq(cv_png_write(path, &a, &err), -1, "writing into a missing directory must fail");
    cr_assert(strstr(err.msg, "x.png"), "%s", err.msg);
    cv_image_free(&a);
}

Test(image, scale_maps_range_and_clamps)
{
    float v[5] = {-1, 0, 0.5f, 1, 2};
    uint8_t o[5];
    cv_image_scale(v, 5, 0, 1, o);
    cr_assert_eq(o[0], 0);
    cr_assert_eq(o[1], 0);
    cr_assert_eq(o[2], 128);
    cr_assert_eq(o[3], 255);
    cr_assert_eq(o[4], 255);
    cv_image_scale(v, 1, 3, 3, o);
    cr_assert_eq(o[0], 128);
}

/* A 16x16 grey progressive JPEG of `scans` scans (64: DC, then each AC coefficient alone; 128:
 * both also in two successive-approximation steps), written with libjpeg's own scan script. */
static void write_progressive(const char *path, int scans)
{
    static jpeg_scan_info s[128];
    int n = 0;
    const int steps = scans == 128 ? 2 : 1;
    for (int k = 0; k < 64; k++)
        for (int a = steps - 1; a >= 0; a--)
            s[n++] = (jpeg_scan_info){1, {0}, k, k, a == steps - 1 ? 0 : a + 1, a};
    cr_assert_eq(n, scans);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = c.image_height = 16;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    c.scan_info = s;
    c.num_scans = n;
    jpeg_start_compress(&c, TRUE);
    uint8_t row[16];
    while (c.next_scanline < 16) {
        for (int x = 0; x < 16; x++) row[x] = (uint8_t)(x * 16 + c.next_scanline);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    cr_assert_eq(fclose(f), 0);
}

/* Every scan is a pass over the whole image: a 16-megapixel file of 695 scans took 10 s to decode
 * (65 scans: 0.4 s). More than 100 (jpegtran's own limit for scan scripts) are refused. */
Test(image, jpeg_more_than_100_scans_is_refused)
{
    char path[512];
    tmp_path(path, sizeof path, "scans.jpg");
    cv_image img;
    cv_err err;
    write_progressive(path, 64);
    cr_assert_eq(cv_jpeg_read(path, &img, 0, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(img.w, 16);
    cv_image_free(&img);
    write_progressive(path, 128);
    cr_assert_eq(cv_jpeg_read(path, &img, 0, 0, &err), -1, "128 scans must be refused");
    cr_assert(strstr(err.msg, "scans.jpg: damaged JPEG (more than 100 progressive scans)"), "%s", err.msg);
    cr_assert_null(img.px);
}
