/* Images in memory (convoy/image.h) and reading a file by what it holds (its first bytes, not its
 * name): PNG or JPEG. */
#include "convoy/image.h"
#include "convoy/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cv_image_alloc(cv_image *img, int w, int h, int c, cv_err *err)
{
    memset(img, 0, sizeof *img);
    if (w <= 0 || h <= 0 || c < 1 || c > 4)
        return cv_errf(err, "image of %dx%dx%d: width, height and channels (1-4) must be positive",
                       w, h, c);
    img->px = cv_calloc((size_t)w * (size_t)h, (size_t)c, "image", err);
    if (!img->px) return -1;
    img->w = w, img->h = h, img->c = c;
    return 0;
}

void cv_image_free(cv_image *img)
{
    if (!img) return;
    free(img->px);
    memset(img, 0, sizeof *img);
}

void cv_image_scale(const float *v, int64_t n, float lo, float hi, uint8_t *out)
{
    float span = hi - lo;
    for (int64_t i = 0; i < n; i++) {
        if (!(span > 0)) {
            out[i] = 128;
            continue;
        }
        float t = (v[i] - lo) / span * 255.0f + 0.5f;
        out[i] = t <= 0 ? 0 : t >= 255 ? 255 : (uint8_t)t;
    }
}

cv_image_format cv_image_sniff(const unsigned char *b, size_t n)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(b, png, 8) == 0) return CV_IMAGE_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return CV_IMAGE_JPEG;
    return CV_IMAGE_UNKNOWN;
}

int cv_image_read(const char *path, cv_image *img, int min_w, int min_h, cv_err *err)
{
    memset(img, 0, sizeof *img);
    if (cv_require_regular(path, err)) return -1; /* a FIFO would block the open */
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    unsigned char head[8];
    const size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    switch (cv_image_sniff(head, n)) {
    case CV_IMAGE_PNG: return cv_png_read(path, img, err);
    case CV_IMAGE_JPEG: return cv_jpeg_read(path, img, min_w, min_h, err);
    default:
        return cv_errf(err, "%s: not a PNG or JPEG image (%s)", path,
                       n == 0 ? "the file is empty" : "its first bytes are neither's");
    }
}
