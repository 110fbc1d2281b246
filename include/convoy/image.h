/* Module io (src/io/). Owns file formats below the data: HDF5 reads and writes (the private io/h5io.h), PNG images (this header) and SVG charts (plot.h), every file written atomically.
 * May call: core.
 * Must not be called by: core, kernels, dist.
 *
 * Images: PNG (libpng) and JPEG (libjpeg-turbo) files read into 8-bit pixels, as `convoy
 * convert images` and `convoy predict` take them, and written, as `convoy augment` and `convoy
 * visualize` do. Writes are atomic like every other file convoy writes: a temporary file,
 * fsync, rename; a failed write never leaves a partial image behind. */
#ifndef CONVOY_IMAGE_H
#define CONVOY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "convoy/error.h"

/** An image: h rows of w pixels of c channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), row-major,
 *  interleaved (the NHWC layout of one uint8 sample). */
typedef struct {
    int w, h, c;
    uint8_t *px; /* w * h * c bytes */
} cv_image;

/* larger images are refused (a decompression bomb or a corrupt header, not a photo) */
#define CV_IMAGE_MAX_SIDE 65535
#define CV_IMAGE_MAX_PIXELS ((int64_t)1 << 27)

typedef enum { CV_IMAGE_UNKNOWN, CV_IMAGE_PNG, CV_IMAGE_JPEG } cv_image_format;
/** What a file starting with these n bytes holds (8 are enough). */
cv_image_format cv_image_sniff(const unsigned char *b, size_t n);
/** Reads a PNG or a JPEG, told apart by their first bytes: 1 (grey), 2 (grey+alpha), 3 (RGB)
 *  or 4 (RGBA) channels of 8 bits. min_w, min_h > 0 let a JPEG decode smaller, down to at
 *  least that size (cv_jpeg_read); 0 decodes it whole. Errors name the path and the reason. */
int cv_image_read(const char *path, cv_image *img, int min_w, int min_h, cv_err *err);
/** Reads a JPEG into grey or RGB (CMYK converted). With min_w, min_h > 0 the decoder shrinks
 *  by 1/s in its inverse DCT, s the largest of 8, 4, 2 with s <= min(width / min_w, height /
 *  min_h) (Pillow's draft() rule). A truncated or corrupt file is an error, and so is a
 *  progressive one of more than 100 scans (each is a pass over the whole image). */
int cv_jpeg_read(const char *path, cv_image *img, int min_w, int min_h, cv_err *err);
/** Writes a grey or RGB image as a baseline JPEG of this quality (1-100). */
int cv_jpeg_write(const char *path, const cv_image *img, int quality, cv_err *err);

/** Writes img to path as an 8-bit PNG. Errors name the path. */
int cv_png_write(const char *path, const cv_image *img, cv_err *err);
/** Reads a PNG of any colour type into 8-bit grey, grey+alpha, RGB or RGBA: palettes become RGB
 *  (RGBA with transparency), 1/2/4-bit grey 8-bit, 16-bit samples keep their high byte (as
 *  Pillow reads them). img->px is malloc'd; free it with cv_image_free. */
int cv_png_read(const char *path, cv_image *img, cv_err *err);
/** Allocates a zeroed w x h x c image. */
int cv_image_alloc(cv_image *img, int w, int h, int c, cv_err *err);
void cv_image_free(cv_image *img);

/** Maps n floats to 0..255 linearly, lo -> 0 and hi -> 255 (clamped); lo == hi gives 128.
 *  For showing filters and feature maps, whose values are not pixels. */
void cv_image_scale(const float *v, int64_t n, float lo, float hi, uint8_t *out);

#endif
