/* libFuzzer harness for the image reader as `convoy convert images` and `convoy predict` use it:
 * the input bytes as a file read by cv_image_read (told apart by its first bytes; a PNG goes to
 * libpng through cv_png_read). A decoded image must have a size within convoy's limits and
 * all its pixels readable; a damaged one must fail with one line naming the file. */
#include <string.h>

#include "convoy/image.h"
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_tmp(data, size);
    if (!path) return 0;
    cv_image img;
    cv_err err = {{0}};
    fuzz_check_image(path, cv_image_read(path, &img, 0, 0, &err), &img, &err);
    cv_image_free(&img);
    unlink(path);
    return 0;
}
