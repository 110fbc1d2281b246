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

/* Sums stay below 255 * (2^22 + ksize) + 2^21 < 2^31: int32, as Pillow's, with the same bits. */
static inline uint8_t clip8(int32_t v)
{
    if (v >= (int32_t)1 << (PRECISION_BITS + 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* out (rows x ow x c) from rows [row0, row0 + rows) of in (. x iw x c), along x, one row at a
 * time. */
static void pass_x_rows(uint8_t *out, const uint8_t *in, int iw, int row0, int rows, int ow, int ch, const coeffs *cx)
{
    const int32_t half = (int32_t)1 << (PRECISION_BITS - 1);
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(row0 + y) * iw * ch;
        uint8_t *dst = out + (size_t)y * ow * ch;
        for (int o = 0; o < ow; o++) {
            const int lo = cx->bounds[2 * o], n = cx->bounds[2 * o + 1];
            const int32_t *k = cx->k + (size_t)o * cx->ksize;
            const uint8_t *p = src + (size_t)lo * ch;
            if (ch == 3) {
                int32_t s0 = half, s1 = half, s2 = half;
                for (int x = 0; x < n; x++, p += 3) s0 += p[0] * k[x], s1 += p[1] * k[x], s2 += p[2] * k[x];
                dst[3 * o] = clip8(s0), dst[3 * o + 1] = clip8(s1), dst[3 * o + 2] = clip8(s2);
            } else {
                for (int j = 0; j < ch; j++) {
                    int32_t s = half;
                    for (int x = 0; x < n; x++) s += p[(size_t)x * ch + j] * k[x];
                    dst[(size_t)o * ch + j] = clip8(s);
                }
            }
        }
    }
}

/* The same eight rows at a time with AVX2: t holds them transposed (value i of row r at
 * t[8 i + r], as int32), so one output's taps are contiguous vectors of eight rows' values,
 * summed with the same integer arithmetic. t: 8 * iw * c int32. */
typedef int32_t v8i __attribute__((vector_size(32)));

__attribute__((target("avx2"))) static void pass_x_avx2(uint8_t *out, const uint8_t *in, int iw, int row0, int rows,
                                                         int ow, int ch, const coeffs *cx, int32_t *t)
{
    const int32_t half = (int32_t)1 << (PRECISION_BITS - 1);
    const size_t width = (size_t)iw * ch;
    for (int y0 = 0; y0 < rows; y0 += 8) {
        const int nr = rows - y0 < 8 ? rows - y0 : 8;
        for (int r = 0; r < 8; r++) {
            const uint8_t *src = in + (size_t)(row0 + y0 + (r < nr ? r : nr - 1)) * width;
            for (size_t i = 0; i < width; i++) t[8 * i + r] = src[i];
        }
        for (int o = 0; o < ow; o++) {
            const int lo = cx->bounds[2 * o], n = cx->bounds[2 * o + 1];
            const int32_t *k = cx->k + (size_t)o * cx->ksize;
            for (int j = 0; j < ch; j++) {
                v8i sum = {half, half, half, half, half, half, half, half};
                const int32_t *q = t + 8 * ((size_t)lo * ch + j);
                for (int x = 0; x < n; x++) {
                    v8i v;
                    memcpy(&v, q + (size_t)8 * x * ch, sizeof v);
                    sum += v * k[x];
                }
                for (int r = 0; r < nr; r++) out[((size_t)(y0 + r) * ow + o) * ch + j] = clip8(sum[r]);
            }
        }
    }
}

static void pass_x(uint8_t *out, const uint8_t *in, int iw, int row0, int rows, int ow, int ch, const coeffs *cx,
                   int32_t *t)
{
    const char *e = getenv("CONVOY_RESIZE"); /* "scalar": the one-row loop on any CPU (tests both) */
    if (__builtin_cpu_supports("avx2") && !(e && strcmp(e, "scalar") == 0))
        pass_x_avx2(out, in, iw, row0, rows, ow, ch, cx, t);
    else
        pass_x_rows(out, in, iw, row0, rows, ow, ch, cx);
}

/* out (oh x w x c) from in (. x w x c), along y, a whole row at a time into acc (w * c sums);
 * the bounds are relative to in's first row */
static void pass_y(uint8_t *out, const uint8_t *in, int w, int oh, int ch, const coeffs *cy, int row0, int32_t *acc)
{
    const size_t stride = (size_t)w * ch;
    const int32_t half = (int32_t)1 << (PRECISION_BITS - 1);
    for (int o = 0; o < oh; o++) {
        const int lo = cy->bounds[2 * o] - row0, n = cy->bounds[2 * o + 1];
        const int32_t *k = cy->k + (size_t)o * cy->ksize;
        for (size_t i = 0; i < stride; i++) acc[i] = half;
        for (int y = 0; y < n; y++) {
            const uint8_t *row = in + (size_t)(lo + y) * stride;
            const int32_t ky = k[y];
            for (size_t i = 0; i < stride; i++) acc[i] += row[i] * ky;
        }
        for (size_t i = 0; i < stride; i++) out[(size_t)o * stride + i] = clip8(acc[i]);
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
    int32_t *acc = malloc(sizeof *acc * (size_t)w * ch), *t = malloc(sizeof *t * 8 * (size_t)in->w * ch);
    int rc = !acc || !t ? cv_errf(err, "out of memory resizing a %dx%d image", in->w, in->h)
             : make_coeffs(&cx, in->w, w, err) || make_coeffs(&cy, in->h, h, err) ? -1 : 0;
    if (rc == 0 && h == in->h) {
        pass_x(out->px, in->px, in->w, 0, h, w, ch, &cx, t);
    } else if (rc == 0 && w == in->w) {
        pass_y(out->px, in->px, w, h, ch, &cy, 0, acc);
    } else if (rc == 0) { /* only the rows the vertical pass reads go through the horizontal one */
        const int first = cy.bounds[0], last = cy.bounds[2 * h - 2] + cy.bounds[2 * h - 1];
        tmp = malloc((size_t)(last - first) * w * ch);
        if (!tmp) {
            rc = cv_errf(err, "out of memory resizing a %dx%d image", in->w, in->h);
        } else {
            pass_x(tmp, in->px, in->w, first, last - first, w, ch, &cx, t);
            pass_y(out->px, tmp, w, h, ch, &cy, first, acc);
        }
    }
    free(tmp);
    free(acc);
    free(t);
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
