/* libFuzzer harness for the JPEG decoder (libjpeg-turbo through cv_jpeg_read): the input bytes
 * as a JPEG file, decoded whole and then, when it is at least 2x2, shrunk in the inverse DCT as
 * `convoy convert images` asks (min_w, min_h a quarter of the size: scale 1/4). A decoded image
 * must have a size within convoy's limits, at least the size asked for and all its pixels readable;
 * a damaged one must fail with one line naming the file. */
#include <string.h>

#include "convoy/image.h"
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size);
    if (!path) return 0;
    cv_image img;
    cv_err err = {{0}};
    const int rc = cv_jpeg_read(path, &img, 0, 0, &err);
    fuzz_check_image(path, rc, &img, &err);
    const int w = img.w, h = img.h;
    cv_image_free(&img);
    if (rc == 0 && w >= 2 && h >= 2) {
        const int min_w = w / 4 > 0 ? w / 4 : 1, min_h = h / 4 > 0 ? h / 4 : 1;
        err.msg[0] = '\0';
        /* the same bytes decoded again: a second pass may still find them damaged */
        if (cv_jpeg_read(path, &img, min_w, min_h, &err) == 0 && (img.w < min_w || img.h < min_h)) abort();
        fuzz_check_image(path, img.px ? 0 : -1, &img, &err);
        cv_image_free(&img);
    }
    unlink(path);
    return 0;
}
