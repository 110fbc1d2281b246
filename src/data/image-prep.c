/* Preparing an image for a network (convoy/imageset.h): its channels, then its size, with
 * Pillow's arithmetic so a dataset convoy makes matches what Keras users get from PIL. */
#include "convoy/imageset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cv_image_channels(cv_image *img, int c, cv_err *err)
{
    if (c != 1 && c != 3) return cv_errf(err, "channels must be 1 (grey) or 3 (RGB), not %d", c);
    if (img->c == c) return 0;
    const size_t n = (size_t)img->w * (size_t)img->h;
    uint8_t *px = malloc(n * (size_t)c);
    if (!px) return cv_errf(err, "out of memory converting a %dx%d image", img->w, img->h);
    const uint8_t *s = img->px;
    const int in = img->c;
    for (size_t i = 0; i < n; i++, s += in) {
        if (c == 3) {
            const bool grey = in <= 2;
            for (int j = 0; j < 3; j++) px[3 * i + j] = grey ? s[0] : s[j];
        } else {
            px[i] = in <= 2 ? s[0] : (uint8_t)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
        }
    }
    free(img->px);
    img->px = px;
    img->c = c;
    return 0;
}

enum { PRECISION_BITS = 32 - 8 - 2 };

/* One axis: for each output cell its first input cell, count and 22-bit weights (Pillow's
 * precompute_coeffs and normalize_coeffs_8bpc). */
typedef struct {
    int ksize;
    int *bounds; /* (first, count) per output */
    int32_t *k;  /* ksize per output */
} coeffs;

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int make_coeffs(coeffs *c, int in, int out, cv_err *err)
{
    const double scale = (double)in / out, filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out);
    c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * (size_t)out);
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        return cv_errf(err, "out of memory resizing %d to %d pixels", in, out);
    }
    for (int o = 0; o < out; o++) {
        const double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        const int n = hi - lo;
        double sum = 0.0;
        for (int x = 0; x < n; x++) sum += w[x] = triangle((x + lo - center + 0.5) * ss);
        int32_t *k = c->k + (size_t)o * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            const double v = x < n && sum != 0.0 ? w[x] / sum : 0.0;
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * o] = lo;
        c->bounds[2 * o + 1] = n;
    }
    free(w);
    return 0;
}

static void free_coeffs(coeffs *c)
{
    free(c->bounds);
    free(c->k);
}

static uint8_t clip8(int64_t v)
{
    if (v >= (int64_t)1 << PRECISION_BITS << 8) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* out (rows x ow x c) from rows [row0, row0 + rows) of in (. x iw x c), along x */
static void pass_x(uint8_t *out, const uint8_t *in, int iw, int row0, int rows, int ow, int ch, const coeffs *cx)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(row0 + y) * iw * ch;
        uint8_t *dst = out + (size_t)y * ow * ch;
        for (int o = 0; o < ow; o++) {
            const int lo = cx->bounds[2 * o], n = cx->bounds[2 * o + 1];
            const int32_t *k = cx->k + (size_t)o * cx->ksize;
            for (int j = 0; j < ch; j++) {
                int64_t s = (int64_t)1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++) s += (int64_t)src[(size_t)(lo + x) * ch + j] * k[x];
                dst[(size_t)o * ch + j] = clip8(s);
            }
        }
    }
}

/* out (oh x w x c) from in (. x w x c), along y; the bounds are relative to in's first row */
static void pass_y(uint8_t *out, const uint8_t *in, int w, int oh, int ch, const coeffs *cy, int row0)
{
    const size_t stride = (size_t)w * ch;
    for (int o = 0; o < oh; o++) {
        const int lo = cy->bounds[2 * o] - row0, n = cy->bounds[2 * o + 1];
        const int32_t *k = cy->k + (size_t)o * cy->ksize;
        for (size_t i = 0; i < stride; i++) {
            int64_t s = (int64_t)1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) s += (int64_t)in[(size_t)(lo + y) * stride + i] * k[y];
            out[(size_t)o * stride + i] = clip8(s);
        }
    }
}

int cv_image_resize(const cv_image *in, int w, int h, cv_image *out, cv_err *err)
{
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0 || (int64_t)w * h > CV_IMAGE_MAX_PIXELS)
        return cv_errf(err, "cannot resize to %dx%d", w, h);
    const int ch = in->c;
    if (cv_image_alloc(out, w, h, ch, err)) return -1;
    if (w == in->w && h == in->h) {
        memcpy(out->px, in->px, (size_t)w * h * ch);
        return 0;
    }
    coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    int rc = make_coeffs(&cx, in->w, w, err) || make_coeffs(&cy, in->h, h, err) ? -1 : 0;
    if (rc == 0 && h == in->h) {
        pass_x(out->px, in->px, in->w, 0, h, w, ch, &cx);
    } else if (rc == 0 && w == in->w) {
        pass_y(out->px, in->px, w, h, ch, &cy, 0);
    } else if (rc == 0) { /* only the rows the vertical pass reads go through the horizontal one */
        const int first = cy.bounds[0], last = cy.bounds[2 * h - 2] + cy.bounds[2 * h - 1];
        tmp = malloc((size_t)(last - first) * w * ch);
        if (!tmp) {
            rc = cv_errf(err, "out of memory resizing a %dx%d image", in->w, in->h);
        } else {
            pass_x(tmp, in->px, in->w, first, last - first, w, ch, &cx);
            pass_y(out->px, tmp, w, h, ch, &cy, first);
        }
    }
    free(tmp);
    free_coeffs(&cx);
    free_coeffs(&cy);
    if (rc) cv_image_free(out);
    return rc;
}

int cv_image_prepare(cv_image *img, int w, int h, int c, cv_err *err)
{
    if (cv_image_channels(img, c, err)) return -1;
    if (img->w == w && img->h == h) return 0;
    cv_image out;
    if (cv_image_resize(img, w, h, &out, err)) return -1;
    cv_image_free(img);
    *img = out;
    return 0;
}
