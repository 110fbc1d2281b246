/* PNG reading and writing with libpng's simplified API (png_image), written atomically. */
#include "convoy/image.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static png_uint_32 png_format(int c)
{
    switch (c) {
    case 1: return PNG_FORMAT_GRAY;
    case 2: return PNG_FORMAT_GA;
    case 3: return PNG_FORMAT_RGB;
    default: return PNG_FORMAT_RGBA;
    }
}

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

int cv_png_write(const char *path, const cv_image *img, cv_err *err)
{
    if (!img->px || img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4)
        return cv_errf(err, "%s: nothing to write (empty image)", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cv_errf(err, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    }
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->w;
    pi.height = (png_uint_32)img->h;
    pi.format = png_format(img->c);
    int ok = png_image_write_to_stdio(&pi, f, 0, img->px, 0, NULL);
    char why[96] = "";
    if (!ok) snprintf(why, sizeof why, "%s", pi.message);
    png_image_free(&pi);
    if (ok && fflush(f) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (ok && fsync(fileno(f)) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (fclose(f) != 0 && ok) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (ok && rename(tmp, path) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (!ok) {
        unlink(tmp);
        return cv_errf(err, "%s: cannot write PNG (%s)", path, why[0] ? why : "write failed");
    }
    return 0;
}

int cv_png_read(const char *path, cv_image *img, cv_err *err)
{
    memset(img, 0, sizeof *img);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    if (!png_image_begin_read_from_stdio(&pi, f)) {
        fclose(f);
        return cv_errf(err, "%s: not a PNG file (%s)", path, pi.message);
    }
    int c = (pi.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1) + (pi.format & PNG_FORMAT_FLAG_ALPHA ? 1 : 0);
    pi.format = png_format(c);
    if (cv_image_alloc(img, (int)pi.width, (int)pi.height, c, err) != 0) {
        png_image_free(&pi);
        fclose(f);
        return -1;
    }
    int ok = png_image_finish_read(&pi, NULL, img->px, 0, NULL);
    char why[96];
    snprintf(why, sizeof why, "%s", pi.message);
    png_image_free(&pi);
    fclose(f);
    if (!ok) {
        cv_image_free(img);
        return cv_errf(err, "%s: damaged PNG (%s)", path, why);
    }
    return 0;
}
