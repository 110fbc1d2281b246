/* Module io (src/io/). Owns file formats below the data: HDF5 reads and writes (the private io/h5io.h), PNG images (this header) and SVG charts (plot.h), every file written atomically.
 * May call: core.
 * Must not be called by: core, kernels, dist.
 *
 * 8-bit PNG images (libpng): what `convoy augment` and `convoy visualize` write, and what
 * tests read back. Writes are atomic like every other file convoy writes: a temporary file,
 * fsync, rename; a failed write never leaves a partial PNG behind. */
#ifndef CONVOY_IMAGE_H
#define CONVOY_IMAGE_H

#include <stdint.h>

#include "convoy/error.h"

/** An image: h rows of w pixels of c channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), row-major,
 *  interleaved (the NHWC layout of one uint8 sample). */
typedef struct {
    int w, h, c;
    uint8_t *px; /* w * h * c bytes */
} cv_image;

/** Writes img to path as an 8-bit PNG. Errors name the path. */
int cv_png_write(const char *path, const cv_image *img, cv_err *err);
/** Reads an 8-bit gray/gray+alpha/RGB/RGBA PNG (16-bit and palette images are converted to 8-bit
 *  gray or RGB). img->px is malloc'd; free it with cv_image_free. */
int cv_png_read(const char *path, cv_image *img, cv_err *err);
/** Allocates a zeroed w x h x c image. */
int cv_image_alloc(cv_image *img, int w, int h, int c, cv_err *err);
void cv_image_free(cv_image *img);

/** Maps n floats to 0..255 linearly, lo -> 0 and hi -> 255 (clamped); lo == hi gives 128.
 *  For showing filters and feature maps, whose values are not pixels. */
void cv_image_scale(const float *v, int64_t n, float lo, float hi, uint8_t *out);

#endif
