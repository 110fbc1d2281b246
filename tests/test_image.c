/* PNG round trips: what convoy writes decodes back to the same pixels; bad files are refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
