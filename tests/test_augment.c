/* Augmentation: geometry on known images (rotation, shifts, flips, zoom, each fill mode), the
 * model file's augment line, determinism by (seed, epoch, index), and that training applies it
 * to training batches only. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/augment.h"
#include "convoy/data.h"
#include "convoy/image.h"
#include "convoy/model.h"

#define N 5 /* test images are N x N, one channel, pixel (r, c) = 10 r + c */

static void known_image(float *img, int h, int w)
{
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) img[r * w + c] = (float)(10 * r + c);
}

static void apply(const cv_augment_config *cfg, const cv_augment_params *p, const float *in, float *out)
{
    cv_augment_apply(cfg, p, in, out, N, N, 1, 1.0f, 0.0f);
}

Test(augment, rotation_90_is_transpose_then_flip)
{
    float in[N * N], out[N * N];
    known_image(in, N, N);
    const cv_augment_config cfg = cv_augment_defaults();
    cv_augment_params p = cv_augment_identity();
    p.theta = 90;
    apply(&cfg, &p, in, out);
    /* Keras's matrix maps output (r, c) to input (N-1-c, r): out = fliplr(transpose(in)), i.e.
     * transpose(in)[r][N-1-c] */
    float t[N * N];
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) t[r * N + c] = in[c * N + r];
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++)
            cr_assert_eq(out[r * N + c], t[r * N + (N - 1 - c)], "(%d,%d): %g", r, c, out[r * N + c]);
    /* and -90 is the inverse */
    float back[N * N];
    p.theta = -90;
    apply(&cfg, &p, out, back);
    for (int i = 0; i < N * N; i++) cr_assert_float_eq(back[i], in[i], 1e-5);
    /* 180 is both flips */
    p.theta = 180;
    apply(&cfg, &p, in, out);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) cr_assert_float_eq(out[r * N + c], in[(N - 1 - r) * N + (N - 1 - c)], 1e-5);
}

Test(augment, shift_moves_content_by_k_pixels)
{
    float in[N * N], out[N * N];
    known_image(in, N, N);
    cv_augment_config cfg = cv_augment_defaults();
    cfg.fill_mode = CV_FILL_CONSTANT;
    cfg.cval = -1;
    for (int k = 1; k <= 2; k++) {
        cv_augment_params p = cv_augment_identity();
        p.tx = k; /* rows: output row r reads input row r + k, so content moves up by k */
        apply(&cfg, &p, in, out);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++)
                cr_assert_float_eq(out[r * N + c], r + k < N ? in[(r + k) * N + c] : -1.0f, 1e-5, "k=%d (%d,%d)", k, r, c);
        p = cv_augment_identity();
        p.ty = -k; /* columns: content moves right by k */
        apply(&cfg, &p, in, out);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++)
                cr_assert_float_eq(out[r * N + c], c - k >= 0 ? in[r * N + c - k] : -1.0f, 1e-5, "k=%d (%d,%d)", k, r, c);
    }
    /* half a pixel is the bilinear mean of two neighbours */
    cv_augment_params p = cv_augment_identity();
    p.ty = 0.5;
    apply(&cfg, &p, in, out);
    cr_assert_float_eq(out[2 * N + 1], 0.5f * (in[2 * N + 1] + in[2 * N + 2]), 1e-5);
}

Test(augment, flips)
{
    float in[N * N], out[N * N];
    known_image(in, N, N);
    const cv_augment_config cfg = cv_augment_defaults();
    cv_augment_params p = cv_augment_identity();
    p.flip_h = true;
    apply(&cfg, &p, in, out);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) cr_assert_eq(out[r * N + c], in[r * N + N - 1 - c]);
    p = cv_augment_identity();
    p.flip_v = true;
    apply(&cfg, &p, in, out);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) cr_assert_eq(out[r * N + c], in[(N - 1 - r) * N + c]);
    p = cv_augment_identity();
    apply(&cfg, &p, in, out);
    cr_assert_eq(memcmp(in, out, sizeof in), 0, "the identity changes nothing");
}

/* A shift alone (and a horizontal flip) runs its own path, the rows' and columns' coordinates
 * computed once: the general path's bits (CONVOY_AUGMENT=general) for every fill mode, whole,
 * fractional and far-out shifts, one and three channels, and uneven sizes. */
Test(augment, shift_path_is_the_general_path_bit_for_bit)
{
    enum { H = 7, W = 9, CH = 3 };
    float in[H * W * CH], fast[H * W * CH], general[H * W * CH];
    for (int i = 0; i < H * W * CH; i++) in[i] = (float)((i * 37) % 101) / 7.0f - 3.0f;
    const double shifts[] = {0.0, 1.0, -2.0, 0.5, -0.37, 2.9, -3.25, 8.6, -40.5, 1.0000001};
    const cv_fill_mode modes[] = {CV_FILL_NEAREST, CV_FILL_CONSTANT, CV_FILL_REFLECT, CV_FILL_WRAP};
    int cases = 0;
    for (int mi = 0; mi < 4; mi++)
        for (int ch = 1; ch <= CH; ch += 2)
            for (int a = 0; a < 10; a++)
                for (int b = 0; b < 10; b++)
                    for (int flip = 0; flip < 2; flip++) {
                        cv_augment_config cfg = cv_augment_defaults();
                        cfg.fill_mode = modes[mi];
                        cfg.cval = 0.25f;
                        cv_augment_params p = cv_augment_identity();
                        p.tx = shifts[a];
                        p.ty = shifts[(b + 3) % 10] * (b < 5 ? 1.0 : -1.0);
                        p.flip_h = flip;
                        unsetenv("CONVOY_AUGMENT");
                        cv_augment_apply(&cfg, &p, in, fast, H, W, ch, 1.0f, 0.0f);
                        setenv("CONVOY_AUGMENT", "general", 1);
                        cv_augment_apply(&cfg, &p, in, general, H, W, ch, 1.0f, 0.0f);
                        cr_assert_eq(memcmp(fast, general, sizeof(float) * H * W * ch), 0,
                                     "mode %d, %d channels, shift (%g, %g), flip %d", mi, ch, p.tx, p.ty, flip);
                        cases++;
                    }
    cr_assert_eq(cases, 1600);
    /* and a changed pixel is seen: the comparison can fail */
    cv_augment_config cfg = cv_augment_defaults();
    cv_augment_params p = cv_augment_identity();
    p.ty = 0.5;
    unsetenv("CONVOY_AUGMENT");
    cv_augment_apply(&cfg, &p, in, fast, H, W, 1, 1.0f, 0.0f);
    p.ty = 0.5000001;
    cv_augment_apply(&cfg, &p, in, general, H, W, 1, 1.0f, 0.0f);
    cr_assert_neq(memcmp(fast, general, sizeof(float) * H * W), 0);
}

/* A shift of 2 columns to the right of the row 0..4: what each fill mode puts in the gap. */
Test(augment, fill_modes_on_the_border)
{
    const float row[N] = {0, 1, 2, 3, 4};
    float in[N * N], out[N * N];
    for (int r = 0; r < N; r++) memcpy(in + r * N, row, sizeof row);
    const struct {
        cv_fill_mode mode;
        float want[N];
    } cases[] = {
        {CV_FILL_NEAREST, {0, 0, 0, 1, 2}},  /* aaaa|abcd */
        {CV_FILL_CONSTANT, {7, 7, 0, 1, 2}}, /* cval */
        {CV_FILL_REFLECT, {1, 0, 0, 1, 2}},  /* dcba|abcd: the edge repeated */
        {CV_FILL_WRAP, {3, 4, 0, 1, 2}},     /* abcd|abcd */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cv_augment_config cfg = cv_augment_defaults();
        cfg.fill_mode = cases[i].mode;
        cfg.cval = 7;
        cv_augment_params p = cv_augment_identity();
        p.ty = -2;
        apply(&cfg, &p, in, out);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++)
                cr_assert_float_eq(out[r * N + c], cases[i].want[c], 1e-5, "%s (%d,%d): %g",
                                   cv_fill_mode_name(cases[i].mode), r, c, out[r * N + c]);
    }
    /* the other side, and far outside (several periods) */
    cv_augment_config cfg = cv_augment_defaults();
    cfg.fill_mode = CV_FILL_REFLECT;
    cv_augment_params p = cv_augment_identity();
    p.ty = 2; /* output c reads c + 2: 2 3 4 | 4 3 */
    apply(&cfg, &p, in, out);
    const float want[N] = {2, 3, 4, 4, 3};
    for (int c = 0; c < N; c++) cr_assert_float_eq(out[c], want[c], 1e-5);
    cfg.fill_mode = CV_FILL_WRAP;
    p.ty = 3 * N + 1; /* three whole periods and one */
    apply(&cfg, &p, in, out);
    for (int c = 0; c < N; c++) cr_assert_float_eq(out[c], row[(c + 1) % N], 1e-5);
}

Test(augment, zoom_about_the_centre)
{
    float in[N * N], out[N * N];
    known_image(in, N, N);
    cv_augment_config cfg = cv_augment_defaults();
    cfg.fill_mode = CV_FILL_CONSTANT;
    cfg.cval = -1;
    cv_augment_params p = cv_augment_identity();
    p.zx = p.zy = 2; /* Keras: zoom 2 maps output offset d from the centre to input offset 2d */
    apply(&cfg, &p, in, out);
    cr_assert_float_eq(out[2 * N + 2], in[2 * N + 2], 1e-5, "the centre stays");
    cr_assert_float_eq(out[1 * N + 1], in[0 * N + 0], 1e-5, "(1,1) reads (0,0)");
    cr_assert_float_eq(out[3 * N + 2], in[4 * N + 2], 1e-5);
    cr_assert_float_eq(out[0], -1.0f, 1e-5, "(0,0) reads (-2,-2): outside");
    p.zx = p.zy = 0.5; /* magnifies: output (0,0) reads (1,1) */
    apply(&cfg, &p, in, out);
    cr_assert_float_eq(out[0], in[1 * N + 1], 1e-5);
    cr_assert_float_eq(out[1], 0.5f * (in[1 * N + 1] + in[1 * N + 2]), 1e-5);
}

Test(augment, brightness_scales_and_clips_in_pixel_units)
{
    float in[4] = {0.1f, 0.5f, 0.9f, 1.0f}, out[4];
    cv_augment_config cfg = cv_augment_defaults();
    cfg.brightness = true;
    cv_augment_params p = cv_augment_identity();
    p.brightness = 1.5;
    /* scaled uint8 data: unit 1/255, clip at 255 stored = 1.0 normalised */
    cv_augment_apply(&cfg, &p, in, out, 2, 2, 1, 1.0f / 255.0f, 255.0f);
    cr_assert_float_eq(out[0], 0.15f, 1e-6);
    cr_assert_float_eq(out[1], 0.75f, 1e-6);
    cr_assert_float_eq(out[2], 1.0f, 1e-6);
    cr_assert_float_eq(out[3], 1.0f, 1e-6);
    cv_augment_apply(&cfg, &p, in, out, 2, 2, 1, 1.0f, 0.0f); /* float data: no clip */
    cr_assert_float_eq(out[3], 1.5f, 1e-6);
}

static cv_augment_config busy_config(void)
{
    cv_augment_config c = cv_augment_defaults();
    c.rotation_range = 30;
    c.width_shift_range = 0.2f;
    c.height_shift_range = 2;
    c.shear_range = 10;
    c.zoom_lo = 0.8f;
    c.zoom_hi = 1.2f;
    c.horizontal_flip = c.vertical_flip = true;
    c.brightness = true;
    c.brightness_lo = 0.7f;
    c.brightness_hi = 1.3f;
    c.noise_stddev = 0.05f;
    return c;
}

#define H 8
#define W 6
#define C 2
#define S (H * W * C)

static void sample_rows(float *x, const int64_t *ids, int B)
{
    for (int i = 0; i < B; i++)
        for (int j = 0; j < S; j++) x[i * S + j] = (float)((ids[i] * 31 + j * 7) % 256) / 255.0f;
}

Test(augment, same_sample_same_result_in_any_batch)
{
    const cv_augment_config cfg = busy_config();
    const cv_augment_units u = {.unit = 1.0f / 255.0f, .max_value = 255.0f};
    cv_err err;
    /* one batch of ids 0..7, against the same ids in other batches, orders and slices */
    const int64_t all[8] = {0, 1, 2, 3, 4, 5, 6, 7}, other[3] = {6, 2, 5}, one[1] = {3};
    float a[8 * S], b[3 * S], c[S];
    sample_rows(a, all, 8);
    sample_rows(b, other, 3);
    sample_rows(c, one, 1);
    cr_assert_eq(cv_augment_batch(&cfg, a, 8, H, W, C, all, 42, 3, &u, &err), 0);
    cr_assert_eq(cv_augment_batch(&cfg, b, 3, H, W, C, other, 42, 3, &u, &err), 0);
    cr_assert_eq(cv_augment_batch(&cfg, c, 1, H, W, C, one, 42, 3, &u, &err), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(memcmp(b + i * S, a + other[i] * S, sizeof(float) * S), 0, "id %d differs", (int)other[i]);
    cr_assert_eq(memcmp(c, a + 3 * S, sizeof c), 0);
    /* another epoch, another seed: different */
    float d[S], e[S];
    sample_rows(d, one, 1);
    sample_rows(e, one, 1);
    cr_assert_eq(cv_augment_batch(&cfg, d, 1, H, W, C, one, 42, 4, &u, &err), 0);
    cr_assert_eq(cv_augment_batch(&cfg, e, 1, H, W, C, one, 43, 3, &u, &err), 0);
    cr_assert_neq(memcmp(d, c, sizeof c), 0, "epochs 3 and 4 augment alike");
    cr_assert_neq(memcmp(e, c, sizeof c), 0, "seeds 42 and 43 augment alike");
}

Test(augment, draws_follow_the_ranges)
{
    const cv_augment_config cfg = busy_config();
    int flips = 0;
    double zlo = 9, zhi = 0;
    for (int64_t i = 0; i < 2000; i++) {
        cv_augment_params p;
        cv_augment_draw(&cfg, H, W, cv_augment_key(1, 0, i), &p);
        cr_assert(fabs(p.theta) <= 30 && fabs(p.shear) <= 10);
        cr_assert(fabs(p.tx) <= 2, "height shift 2 is pixels: %g", p.tx);
        cr_assert(fabs(p.ty) <= 0.2 * W, "width shift 0.2 is a fraction of %d: %g", W, p.ty);
        cr_assert(p.zx >= 0.8 && p.zx <= 1.2 && p.zy >= 0.8 && p.zy <= 1.2);
        cr_assert(p.brightness >= 0.7 && p.brightness <= 1.3);
        flips += p.flip_h;
        zlo = fmin(zlo, p.zx);
        zhi = fmax(zhi, p.zx);
    }
    cr_assert(flips > 900 && flips < 1100, "horizontal flips %d of 2000", flips);
    cr_assert(zlo < 0.82 && zhi > 1.18, "zoom spans [%g, %g]", zlo, zhi);
    /* nothing configured: the identity */
    const cv_augment_config none = cv_augment_defaults();
    cv_augment_params p;
    cv_augment_draw(&none, H, W, 7, &p);
    const cv_augment_params id = cv_augment_identity();
    cr_assert(p.theta == 0 && p.tx == 0 && p.ty == 0 && p.shear == 0 && p.zx == 1 && p.zy == 1 && !p.flip_h &&
              !p.flip_v && p.brightness == 1 && id.zx == 1);
}

Test(augment, standardized_data_is_transformed_in_pixel_units)
{
    /* a flip of standardised data equals standardising the flipped pixels */
    cv_augment_config cfg = cv_augment_defaults();
    cfg.horizontal_flip = true;
    float mean[S], std[S], raw[S], x[S];
    for (int j = 0; j < S; j++) {
        mean[j] = (float)(j % 5);
        std[j] = 1.0f + (float)(j % 3);
        raw[j] = (float)((j * 13) % 17);
        x[j] = (raw[j] - mean[j]) / std[j];
    }
    const cv_augment_units u = {.unit = 1.0f, .mean = mean, .std = std};
    int64_t id = -1;
    cv_augment_params p;
    for (int64_t i = 0; i < 100 && id < 0; i++) { /* a sample that draws a flip */
        cv_augment_draw(&cfg, H, W, cv_augment_key(5, 0, i), &p);
        if (p.flip_h) id = i;
    }
    cr_assert(id >= 0);
    cv_err err;
    cr_assert_eq(cv_augment_batch(&cfg, x, 1, H, W, C, &id, 5, 0, &u, &err), 0);
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            for (int k = 0; k < C; k++) {
                const int j = (r * W + c) * C + k, m = (r * W + (W - 1 - c)) * C + k;
                cr_assert_float_eq(x[j], (raw[m] - mean[j]) / std[j], 1e-4);
            }
}

Test(augment, parsed_from_the_model_file)
{
    const char *text = "input shape=28,28,1\nflatten\ndense units=10 activation=softmax\n"
                       "compile loss=sparse_categorical_crossentropy\n"
                       "augment rotation_range=15 width_shift_range=0.1 height_shift_range=3\n"
                       "  zoom_range=0.2 horizontal_flip=true brightness_range=0.5,1.5 noise_stddev=0.1\n"
                       "  fill_mode=reflect cval=9 shear_range=4\n";
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, text, "aug.model", &err), 0, "%s", err.msg);
    const cv_augment_config *a = &spec.augment;
    cr_assert(spec.has_augment);
    cr_assert_eq(spec.augment_line, 5);
    cr_assert_float_eq(a->rotation_range, 15, 1e-6);
    cr_assert_float_eq(a->width_shift_range, 0.1, 1e-6);
    cr_assert_float_eq(a->height_shift_range, 3, 1e-6);
    cr_assert_float_eq(a->zoom_lo, 0.8, 1e-6);
    cr_assert_float_eq(a->zoom_hi, 1.2, 1e-6);
    cr_assert(a->horizontal_flip && !a->vertical_flip && a->brightness);
    cr_assert_float_eq(a->brightness_lo, 0.5, 1e-6);
    cr_assert_float_eq(a->brightness_hi, 1.5, 1e-6);
    cr_assert_float_eq(a->noise_stddev, 0.1, 1e-6);
    cr_assert_eq(a->fill_mode, CV_FILL_REFLECT);
    cr_assert_float_eq(a->cval, 9, 1e-6);
    cr_assert_float_eq(a->shear_range, 4, 1e-6);
    cv_model_spec_free(&spec);

    const char *pair = "input shape=8,8,1\nflatten\ndense units=2 activation=softmax\n"
                       "compile loss=sparse_categorical_crossentropy\naugment zoom_range=0.5,2\n";
    cr_assert_eq(cv_model_parse(&spec, pair, "pair.model", &err), 0, "%s", err.msg);
    cr_assert_float_eq(spec.augment.zoom_lo, 0.5, 1e-6);
    cr_assert_float_eq(spec.augment.zoom_hi, 2, 1e-6);
    cv_model_spec_free(&spec);
}

Test(augment, bad_augment_lines)
{
    const struct {
        const char *line, *want;
    } bad[] = {
        {"augment zoom_range=1.5", "aug.model:5: zoom_range=1.5 would allow zoom factors <= 0"},
        {"augment zoom_range=0,2", "aug.model:5: zoom_range lower bound 0 must be > 0"},
        {"augment rotation_range=-5", "aug.model:5: rotation_range"},
        {"augment fill_mode=mirror", "aug.model:5:"},
        {"augment brightness_range=1.5,0.5", "lo > hi"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "input shape=8,8,1\nflatten\ndense units=2 activation=softmax\n"
                                    "compile loss=sparse_categorical_crossentropy\n%s\n", bad[i].line);
        cv_model_spec spec;
        cv_err err;
        cr_assert_eq(cv_model_parse(&spec, text, "aug.model", &err), -1, "%s accepted", bad[i].line);
        cr_assert(strstr(err.msg, bad[i].want), "%s: got '%s'", bad[i].line, err.msg);
    }
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, "input shape=8\ndense units=2 activation=softmax\n"
                                       "compile loss=sparse_categorical_crossentropy\naugment horizontal_flip=true\n",
                                "tab.model", &err), -1);
    cr_assert(strstr(err.msg, "tab.model:4: augment needs image input"), "%s", err.msg);
}

/* `convoy augment`'s files decode to the pixels of the augmented tensor. */
static void check_saved(cv_dtype xtype, int ch)
{
    const int h = 7, w = 6, rows = 4;
    const cv_shape shape = {3, {h, w, ch}};
    const int64_t n = (int64_t)h * w * ch;
    uint8_t xb[4 * 7 * 6 * 3];
    float xf[4 * 7 * 6 * 3];
    int32_t labels[4] = {0, 1, 0, 1};
    for (int64_t i = 0; i < rows * n; i++) {
        xb[i] = (uint8_t)((i * 29) % 256);
        xf[i] = (float)((i * 29) % 101) * 0.1f - 3.0f;
    }
    char path[512], dir[512], sheet[1100];
    snprintf(path, sizeof path, "%s/aug-%d-%d.h5", CONVOY_TEST_TMP, (int)xtype, ch);
    snprintf(dir, sizeof dir, "%s/augment-pngs-%d-%d/sub", CONVOY_TEST_TMP, (int)xtype, ch);
    cv_err err;
    cr_assert_eq(cv_dataset_write(path, rows, shape, xtype, xtype == CV_DTYPE_U8 ? (void *)xb : (void *)xf, labels,
                                  NULL, 0, NULL, 0, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cv_normalizer nz;
    cr_assert_eq(cv_dataset_load(&ds, path, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_AUTO, &ds, NULL, ds.n, &err), 0, "%s", err.msg);
    cv_augment_config cfg = busy_config();
    cfg.fill_mode = CV_FILL_WRAP;
    const int count = 6; /* rows 0..3 at epoch 0, then rows 0..1 at epoch 1 */
    cr_assert_eq(cv_augment_save(&cfg, &ds, &nz, 11, count, dir, "t", 3, 2, sheet, sizeof sheet, &err), 0, "%s", err.msg);
    const cv_augment_units u = cv_augment_units_for(&nz, xtype);
    float x[7 * 6 * 3], tmp[7 * 6 * 3];
    uint8_t want[7 * 6 * 3];
    for (int j = 0; j < count; j++) {
        int64_t row = j % rows, epoch = j / rows;
        cr_assert_eq(cv_dataset_fetch(&ds, &nz, &row, 1, x, &err), 0, "%s", err.msg);
        cr_assert_eq(cv_augment_batch(&cfg, x, 1, h, w, ch, &row, 11, epoch, &u, &err), 0);
        cv_augment_to_pixels(x, n, &u, tmp, want);
        char name[1024];
        cv_augment_png_name(name, sizeof name, dir, "t", row, cv_augment_key(11, epoch, row));
        cv_image img;
        cr_assert_eq(cv_png_read(name, &img, &err), 0, "%s", err.msg);
        cr_assert(img.w == w && img.h == h && img.c == ch);
        cr_assert_eq(memcmp(img.px, want, (size_t)n), 0, "%s: pixels differ", name);
        if (xtype == CV_DTYPE_U8 && j == 0) { /* and the pixels are the augmented tensor's stored values */
            for (int64_t k = 0; k < n; k++)
                cr_assert(fabsf(img.px[k] - fminf(fmaxf(x[k] * 255.0f, 0.0f), 255.0f)) <= 0.5f + 1e-3f);
        }
        cv_image_free(&img);
    }
    cv_image sh;
    cr_assert_eq(cv_png_read(sheet, &sh, &err), 0, "%s", err.msg);
    cr_assert_eq(sh.w, 3 * (w + 2) + 2); /* original + 2 variants, 2-pixel gaps */
    cr_assert_eq(sh.h, 3 * (h + 2) + 2);
    /* the first column of the sheet is the original row 0 */
    int64_t row0 = 0;
    cr_assert_eq(cv_dataset_fetch(&ds, &nz, &row0, 1, x, &err), 0);
    cv_augment_to_pixels(x, n, &u, tmp, want);
    for (int y = 0; y < h; y++)
        cr_assert_eq(memcmp(sh.px + ((size_t)(2 + y) * sh.w + 2) * ch, want + (size_t)y * w * ch, (size_t)w * ch), 0);
    cv_image_free(&sh);
    cv_normalizer_free(&nz);
    cv_dataset_free(&ds);
}

Test(augment, saved_pngs_decode_to_the_augmented_pixels)
{
    check_saved(CV_DTYPE_U8, 1);
    check_saved(CV_DTYPE_U8, 3);
    check_saved(CV_DTYPE_F32, 1);
}

Test(augment, save_refuses_vectors)
{
    char path[512], dir[512], sheet[1100];
    snprintf(path, sizeof path, "%s/aug-vec.h5", CONVOY_TEST_TMP);
    snprintf(dir, sizeof dir, "%s/aug-vec", CONVOY_TEST_TMP);
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const int32_t y[2] = {0, 1};
    cv_err err;
    cr_assert_eq(cv_dataset_write(path, 2, (cv_shape){1, {3}}, CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cv_normalizer nz;
    cr_assert_eq(cv_dataset_load(&ds, path, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_normalizer_fit(&nz, CV_NORM_AUTO, &ds, NULL, ds.n, &err), 0, "%s", err.msg);
    const cv_augment_config cfg = busy_config();
    cr_assert_eq(cv_augment_save(&cfg, &ds, &nz, 1, 2, dir, "v", 2, 2, sheet, sizeof sheet, &err), -1);
    cr_assert(strstr(err.msg, "aug-vec.h5:/x: samples are vectors (N, 3)"), "%s", err.msg);
    cv_normalizer_free(&nz);
    cv_dataset_free(&ds);
}
