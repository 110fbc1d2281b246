/* Shared by the image harnesses (fuzz_png.c, fuzz_jpeg.c): what a decode must leave behind. */
#ifndef CONVOY_FUZZ_IMAGE_H
#define CONVOY_FUZZ_IMAGE_H

#include <string.h>

#include "convoy/image.h"
#include "fuzz_util.h"

/* rc == 0: a size within convoy's limits, 1-4 channels, and all w*h*c bytes of px readable
 * (ASan catches a short buffer; the sum keeps the reads). rc != 0: one line naming the file, and
 * no pixels left allocated. */
static inline void fuzz_check_image(const char *path, int rc, const cv_image *img, const cv_err *err)
{
    if (rc != 0) {
        if (img->px || !err->msg[0] || strchr(err->msg, '\n') || strncmp(err->msg, path, strlen(path)) != 0)
            abort();
        return;
    }
    if (!img->px || img->w < 1 || img->h < 1 || img->w > CV_IMAGE_MAX_SIDE || img->h > CV_IMAGE_MAX_SIDE ||
        (int64_t)img->w * img->h > CV_IMAGE_MAX_PIXELS || img->c < 1 || img->c > 4)
        abort();
    const size_t n = (size_t)img->w * img->h * img->c;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += img->px[i];
    volatile unsigned keep = sum;
    (void)keep;
}

#endif
