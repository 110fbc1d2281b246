/* Keras ImageDataGenerator-style augmentation: the transform matrix of
 * keras_preprocessing.image.apply_affine_transform (rotation @ shift @ shear @ zoom about the
 * image centre, mapping output pixel coordinates to input coordinates, as scipy's
 * ndimage.affine_transform does), bilinear sampling with the fill modes, flips, brightness and
 * gaussian noise. */
#include "convoy/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"

cv_augment_config cv_augment_defaults(void)
{
    return (cv_augment_config){.zoom_lo = 1.0f, .zoom_hi = 1.0f, .fill_mode = CV_FILL_NEAREST};
}

const char *cv_fill_mode_name(cv_fill_mode m)
{
    static const char *const names[] = {"nearest", "constant", "reflect", "wrap"};
    return (unsigned)m < 4 ? names[m] : "?";
}

cv_augment_params cv_augment_identity(void)
{
    return (cv_augment_params){.zx = 1.0, .zy = 1.0, .brightness = 1.0};
}

uint64_t cv_augment_key(uint64_t seed, int64_t epoch, int64_t index)
{
    return cv_key(seed, CV_STREAM_AUGMENT, (uint64_t)epoch, (uint64_t)index);
}

cv_augment_units cv_augment_units_for(const cv_normalizer *nz, cv_dtype xtype)
{
    cv_augment_units u = {.unit = 1.0f, .max_value = xtype == CV_DTYPE_U8 ? 255.0f : 0.0f};
    if (nz->mode == CV_NORM_SCALE) u.unit = 1.0f / 255.0f;
    if (nz->mode == CV_NORM_STANDARDIZE) {
        u.mean = nz->mean;
        u.std = nz->std;
    }
    return u;
}

static double uniform01(cv_rng *r) { return (double)(cv_rng_next(r) >> 11) * 0x1.0p-53; }

/* Nine draws, always in this order and always all of them, so that turning one option on or
 * off never changes the numbers another option gets. */
static void draw(const cv_augment_config *c, int h, int w, cv_rng *r, cv_augment_params *p)
{
    double u[9];
    for (int i = 0; i < 9; i++) u[i] = uniform01(r);
    *p = cv_augment_identity();
    p->theta = (2.0 * u[0] - 1.0) * c->rotation_range;
    p->tx = (2.0 * u[1] - 1.0) * c->height_shift_range;
    if (c->height_shift_range < 1.0f) p->tx *= h;
    p->ty = (2.0 * u[2] - 1.0) * c->width_shift_range;
    if (c->width_shift_range < 1.0f) p->ty *= w;
    p->shear = (2.0 * u[3] - 1.0) * c->shear_range;
    if (c->zoom_lo != 1.0f || c->zoom_hi != 1.0f) {
        p->zx = c->zoom_lo + (c->zoom_hi - c->zoom_lo) * u[4];
        p->zy = c->zoom_lo + (c->zoom_hi - c->zoom_lo) * u[5];
    }
    p->flip_h = c->horizontal_flip && u[6] < 0.5;
    p->flip_v = c->vertical_flip && u[7] < 0.5;
    if (c->brightness) p->brightness = c->brightness_lo + (c->brightness_hi - c->brightness_lo) * u[8];
}

void cv_augment_draw(const cv_augment_config *c, int h, int w, uint64_t key, cv_augment_params *p)
{
    cv_rng r = {key};
    draw(c, h, w, &r, p);
}

/* a = a @ b for 3x3 matrices */
static void mat_mul(double a[3][3], const double b[3][3])
{
    double t[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
    memcpy(a, t, sizeof t);
}

/* Output (row, col) -> input (row, col): m[0..1][0..2]. */
static void affine_matrix(const cv_augment_params *p, int h, int w, double m[3][3])
{
    const double rad = 3.14159265358979323846 / 180.0;
    const double th = p->theta * rad, sh = p->shear * rad;
    const double oy = h / 2.0 - 0.5, ox = w / 2.0 - 0.5;
    const double offset[3][3] = {{1, 0, oy}, {0, 1, ox}, {0, 0, 1}};
    const double rot[3][3] = {{cos(th), -sin(th), 0}, {sin(th), cos(th), 0}, {0, 0, 1}};
    const double shift[3][3] = {{1, 0, p->tx}, {0, 1, p->ty}, {0, 0, 1}};
    const double shear[3][3] = {{1, -sin(sh), 0}, {0, cos(sh), 0}, {0, 0, 1}};
    const double zoom[3][3] = {{p->zx, 0, 0}, {0, p->zy, 0}, {0, 0, 1}};
    const double reset[3][3] = {{1, 0, -oy}, {0, 1, -ox}, {0, 0, 1}};
    memcpy(m, offset, sizeof offset);
    mat_mul(m, rot);
    mat_mul(m, shift);
    mat_mul(m, shear);
    mat_mul(m, zoom);
    mat_mul(m, reset);
}

/* An index outside [0, n) mapped back inside by the fill mode (constant is handled before). */
static int64_t fill_index(int64_t i, int64_t n, cv_fill_mode mode)
{
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case CV_FILL_REFLECT: { /* dcba|abcd|dcba: period 2n, the edge pixel repeated */
        int64_t k = i % (2 * n);
        if (k < 0) k += 2 * n;
        return k < n ? k : 2 * n - 1 - k;
    }
    case CV_FILL_WRAP: { /* abcd|abcd|abcd */
        int64_t k = i % n;
        return k < 0 ? k + n : k;
    }
    default: return i < 0 ? 0 : n - 1; /* nearest: aaaa|abcd|dddd */
    }
}

/* A coordinate within 1e-6 of an integer is that integer: exact 90-degree rotations and whole
 * pixel shifts then sample pixel centres exactly, whatever the rounding of cos and sin. */
static double snap(double v)
{
    const double r = nearbyint(v);
    return fabs(v - r) < 1e-6 ? r : v;
}

/* o[0..ch) = the bilinear mix of input cells (r0, c0), (r0, c1), (r1, c0), (r1, c1) of an image w
 * wide, weights fx across and fy down (ch a constant where inlined) */
static inline __attribute__((always_inline)) void bilinear(float *o, const float *in, int w, const int ch, int64_t r0,
                                                           int64_t r1, int64_t c0, int64_t c1, float fx, float fy)
{
    const float *a = in + ((size_t)r0 * w + (size_t)c0) * ch, *b = in + ((size_t)r0 * w + (size_t)c1) * ch;
    const float *d = in + ((size_t)r1 * w + (size_t)c0) * ch, *e = in + ((size_t)r1 * w + (size_t)c1) * ch;
    for (int k = 0; k < ch; k++) {
        const float top = a[k] + fx * (b[k] - a[k]), bottom = d[k] + fx * (e[k] - d[k]);
        o[k] = top + fy * (bottom - top);
    }
}

/* Where output index i of one axis of a pure translation reads: input cells lo and hi, weight f
 * on hi, or (outside) the constant fill. */
typedef struct {
    int64_t lo, hi;
    float f;
    bool outside;
} axis_tap;

/* the taps of n output cells at coordinate i + shift, as the general path computes them for a
 * matrix whose linear part is the identity (its products by 1 and 0 exact) */
static void axis_taps(axis_tap *t, int n, double shift, cv_fill_mode mode)
{
    for (int i = 0; i < n; i++) {
        const double v = snap((double)i + shift);
        const double vc = fmin(fmax(v, -1e15), 1e15), v0 = floor(vc);
        t[i] = (axis_tap){fill_index((int64_t)v0, n, mode), fill_index((int64_t)v0 + 1, n, mode), (float)(vc - v0),
                          v < 0 || v > n - 1};
    }
}

/* the pixels of a shift through the taps (ch a constant where inlined) */
static inline __attribute__((always_inline)) void shift_pixels(const axis_tap *rows, const axis_tap *cols,
                                                                 const float *in, float *out, int h, int w,
                                                                 const int ch, bool flip, bool constant, float cval)
{
    for (int r = 0; r < h; r++) {
        const axis_tap *ty = &rows[r];
        const float fy = ty->f;
        for (int col = 0; col < w; col++) {
            const axis_tap *tx = &cols[col];
            float *o = out + ((size_t)r * w + (size_t)(flip ? w - 1 - col : col)) * ch;
            if (constant && (ty->outside || tx->outside)) {
                for (int k = 0; k < ch; k++) o[k] = cval;
                continue;
            }
            const float fx = tx->f;
            bilinear(o, in, w, ch, ty->lo, ty->hi, tx->lo, tx->hi, fx, fy);
        }
    }
}

/* A shift (with or without a horizontal flip): the general path's bits, each row's and
 * column's coordinates computed once instead of per pixel, the flip done as the pixels are
 * written. Returns false (nothing done) when the tap arrays cannot be had. */
static bool apply_translation(const cv_augment_config *c, const cv_augment_params *p, const double m[3][3],
                              const float *in, float *out, int h, int w, int ch, float cval)
{
    axis_tap *rows = malloc(sizeof(axis_tap) * ((size_t)h + (size_t)w));
    if (!rows) return false;
    axis_tap *cols = rows + h;
    axis_taps(rows, h, m[0][2], c->fill_mode);
    axis_taps(cols, w, m[1][2], c->fill_mode);
    const bool constant = c->fill_mode == CV_FILL_CONSTANT;
    if (ch == 1) shift_pixels(rows, cols, in, out, h, w, 1, p->flip_h, constant, cval);
    else if (ch == 3) shift_pixels(rows, cols, in, out, h, w, 3, p->flip_h, constant, cval);
    else shift_pixels(rows, cols, in, out, h, w, ch, p->flip_h, constant, cval);
    free(rows);
    return true;
}

/* whether the general path is asked for (CONVOY_AUGMENT=general: the shift path's check) */
static bool general_only(void)
{
    const char *e = getenv("CONVOY_AUGMENT");
    return e && strcmp(e, "general") == 0;
}

void cv_augment_apply(const cv_augment_config *c, const cv_augment_params *p, const float *in,
                      float *out, int h, int w, int ch, float unit, float max_value)
{
    double m[3][3];
    affine_matrix(p, h, w, m);
    const float cval = c->cval * unit;
    const bool constant = c->fill_mode == CV_FILL_CONSTANT;
    /* no rotation, shear or zoom: the linear part is exactly the identity */
    const bool shifted = m[0][0] == 1.0 && m[0][1] == 0.0 && m[1][0] == 0.0 && m[1][1] == 1.0 && !general_only() &&
                         apply_translation(c, p, m, in, out, h, w, ch, cval);
    for (int r = 0; r < h && !shifted; r++) {
        for (int col = 0; col < w; col++) {
            const double y = snap(m[0][0] * r + m[0][1] * col + m[0][2]);
            const double x = snap(m[1][0] * r + m[1][1] * col + m[1][2]);
            float *o = out + ((size_t)r * w + col) * ch;
            if (constant && (y < 0 || y > h - 1 || x < 0 || x > w - 1)) {
                for (int k = 0; k < ch; k++) o[k] = cval;
                continue;
            }
            /* far outside, the floor of a huge coordinate must still fit an int64 */
            const double yc = fmin(fmax(y, -1e15), 1e15), xc = fmin(fmax(x, -1e15), 1e15);
            const double y0 = floor(yc), x0 = floor(xc);
            const float fy = (float)(yc - y0), fx = (float)(xc - x0);
            const int64_t r0 = fill_index((int64_t)y0, h, c->fill_mode), r1 = fill_index((int64_t)y0 + 1, h, c->fill_mode);
            const int64_t c0 = fill_index((int64_t)x0, w, c->fill_mode), c1 = fill_index((int64_t)x0 + 1, w, c->fill_mode);
            bilinear(o, in, w, ch, r0, r1, c0, c1, fx, fy);
        }
    }
    if (p->flip_h && !shifted) /* Keras flips after the affine transform */
        for (int r = 0; r < h; r++)
            for (int i = 0, j = w - 1; i < j; i++, j--)
                for (int k = 0; k < ch; k++) {
                    float *u = out + ((size_t)r * w + i) * ch + k, *v = out + ((size_t)r * w + j) * ch + k;
                    const float t = *u;
                    *u = *v;
                    *v = t;
                }
    if (p->flip_v)
        for (int i = 0, j = h - 1; i < j; i++, j--)
            for (int q = 0; q < w * ch; q++) {
                float *u = out + (size_t)i * w * ch + q, *v = out + (size_t)j * w * ch + q;
                const float t = *u;
                *u = *v;
                *v = t;
            }
    if (p->brightness != 1.0 || c->brightness) {
        const float f = (float)p->brightness, hi = max_value * unit;
        const size_t n = (size_t)h * w * ch;
        for (size_t i = 0; i < n; i++) {
            float v = out[i] * f;
            if (max_value > 0) v = v < 0 ? 0 : v > hi ? hi : v;
            out[i] = v;
        }
    }
}

void cv_augment_sample(const cv_augment_config *c, float *x, int h, int w, int ch,
                       const cv_augment_units *u, uint64_t key, float *tmp)
{
    cv_rng r = {key};
    cv_augment_params p;
    draw(c, h, w, &r, &p);
    const size_t n = (size_t)h * w * ch;
    if (u->mean) { /* standardised: back to stored units, transform, standardise again */
        for (size_t j = 0; j < n; j++) tmp[j] = x[j] * u->std[j] + u->mean[j];
        cv_augment_apply(c, &p, tmp, x, h, w, ch, 1.0f, u->max_value);
        for (size_t j = 0; j < n; j++) x[j] = (x[j] - u->mean[j]) / u->std[j];
    } else { /* scaling commutes with the sampling: work in normalised units */
        memcpy(tmp, x, sizeof(float) * n);
        cv_augment_apply(c, &p, tmp, x, h, w, ch, u->unit, u->max_value);
    }
    if (c->noise_stddev > 0)
        for (size_t j = 0; j < n; j++) x[j] += (float)(c->noise_stddev * cv_rng_normal(&r));
}

int cv_augment_batch(const cv_augment_config *c, float *x, int B, int h, int w, int ch,
                     const int64_t *ids, uint64_t seed, int64_t epoch, const cv_augment_units *u,
                     cv_err *err)
{
    const size_t n = (size_t)h * w * ch;
    float *tmp = cv_malloc(sizeof(float) * n * (size_t)(B > 0 ? B : 1), "augmentation buffer", err);
    if (!tmp) return -1;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++)
        cv_augment_sample(c, x + n * (size_t)i, h, w, ch, u, cv_augment_key(seed, epoch, ids[i]), tmp + n * (size_t)i);
    free(tmp);
    return 0;
}
