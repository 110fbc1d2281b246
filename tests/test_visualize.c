/* convoy visualize's pictures: PNGs that decode, with the documented grid geometry (tiles, tiles
 * per row, zoom) for gray, RGB and multi-channel inputs, filter shades that map [-m, m] to 0..255,
 * feature-map tiles stretched to their own range, the SVG beside each that labels its tiles
 * (filter, input channel, each map's range, the legend), and errors for models without conv
 * layers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/image.h"
#include "convoy/visualize.h"
#include "xmlcheck.h"

#define TMP CONVOY_TEST_TMP "/visualize"

static void setup(void)
{
    cr_assert_eq(system("mkdir -p " TMP), 0);
}

TestSuite(visualize, .init = setup);

static cv_net *net_from(const char *text, cv_model_spec *spec)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(spec, text, "v.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, 1, 7, &err);
    cr_assert_not_null(net, "%s", err.msg);
    return net;
}

static void read_png(const char *path, cv_image *img, int w, int h, int c)
{
    cv_err err;
    cr_assert_eq(cv_png_read(path, img, &err), 0, "%s", err.msg);
    cr_assert_eq(img->w, w, "%s: width %d, want %d", path, img->w, w);
    cr_assert_eq(img->h, h, "%s: height %d, want %d", path, img->h, h);
    cr_assert_eq(img->c, c, "%s: %d channels, want %d", path, img->c, c);
}

/* v's SVG: well-formed, beside its PNG, one cropped tile per tile of the grid, each tile's place
 * in the PNG as grid_put drew it, and the labels wanted (NULL-terminated) */
static char *labelled(const cv_visual *v, const char *const *want)
{
    const size_t n = strlen(v->path);
    cr_assert(n > 4 && strncmp(v->svg, v->path, n - 4) == 0 && strcmp(v->svg + n - 4, ".svg") == 0, "%s beside %s",
              v->svg, v->path);
    char *svg = slurp(v->svg), why[160];
    cr_assert_not_null(svg, "%s", v->svg);
    cr_assert_null(xml_check(svg, why, sizeof why), "%s: %s", v->svg, why);
    cr_assert_eq(count_of(svg, "class=\"tile\""), v->tiles, "%s: tiles", v->svg);
    char at[96];
    for (int t = 0; t < v->tiles; t++) {
        snprintf(at, sizeof at, "viewBox=\"%d %d %d %d\"", 2 + (t % v->cols) * (v->tile_w + 2),
                 2 + (t / v->cols) * (v->tile_h + 2), v->tile_w, v->tile_h);
        cr_assert_eq(count_of(svg, at), 1, "%s: tile %d at %s", v->svg, t, at);
    }
    const char *png = strrchr(v->path, '/') + 1;
    snprintf(at, sizeof at, "href=\"%s\"", png);
    cr_assert_eq(count_of(svg, at), v->tiles, "%s shows %s", v->svg, png);
    for (; *want; want++) cr_assert_geq(count_of(svg, *want), 1, "%s lacks %s", v->svg, *want);
    return svg;
}

/* pixel (x, y) channel ch */
static int px(const cv_image *img, int x, int y, int ch) { return img->px[((size_t)y * img->w + x) * img->c + ch]; }

static void sample(float *x, int n)
{
    for (int i = 0; i < n; i++) x[i] = sinf(0.37f * (float)i) + 0.2f * (float)(i % 5);
}

Test(visualize, gray_input_grids)
{
    cv_model_spec spec;
    cv_net *net = net_from("input shape=8,8,1\nconv2d filters=4 kernel=3 activation=relu\n"
                           "conv2d filters=6 kernel=3 activation=relu\nflatten\ndense units=2 activation=softmax\n"
                           "compile optimizer=sgd loss=sparse_categorical_crossentropy\n",
                           &spec);
    float x[64];
    sample(x, 64);
    cv_visual v[8];
    int n;
    cv_err err;
    cr_assert_eq(cv_visualize(net, x, TMP "/gray", v, 8, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4, "filters, input, two feature grids");
    cr_assert_str_eq(v[0].path, TMP "/gray/filters.png");
    cr_assert_str_eq(v[3].path, TMP "/gray/features-02.png");

    /* filters: 4 tiles of 3x3 weights zoomed 11x (33 px), 2 per row, 2 px gaps */
    cv_image img;
    read_png(v[0].path, &img, 2 * (33 + 2) + 2, 2 * (33 + 2) + 2, 1);
    cr_assert_eq(v[0].tiles, 4);
    cr_assert_eq(v[0].cols, 2);
    const float *w = cv_net_params(net) + cv_net_param_view(net, 1).kernel_off; /* (3, 3, 1, 4) */
    float m = 0;
    for (int i = 0; i < 36; i++) m = fmaxf(m, fabsf(w[i]));
    for (int f = 0; f < 4; f++)
        for (int p = 0; p < 9; p++) {
            const int x0 = 2 + (f % 2) * 35 + (p % 3) * 11 + 5, y0 = 2 + (f / 2) * 35 + (p / 3) * 11 + 5;
            const int want = (int)((w[p * 4 + f] + m) / (2 * m) * 255.0f + 0.5f);
            cr_assert(abs(px(&img, x0, y0, 0) - want) <= 1, "filter %d weight %d: pixel %d, want %d", f, p,
                      px(&img, x0, y0, 0), want);
        }
    cv_image_free(&img);

    read_png(TMP "/gray/input.png", &img, 48 + 4, 48 + 4, 1);
    cv_image_free(&img);

    /* layer 1: 4 maps of 6x6 zoomed 8x; each tile spans its own min..max */
    read_png(v[2].path, &img, 2 * (48 + 2) + 2, 2 * (48 + 2) + 2, 1);
    const float *a = cv_net_layer_output(net, 1); /* (6, 6, 4) */
    for (int f = 0; f < 4; f++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int p = 0; p < 36; p++) lo = fminf(lo, a[p * 4 + f]), hi = fmaxf(hi, a[p * 4 + f]);
        int plo = 255, phi = 0;
        for (int p = 0; p < 36; p++) {
            const int v0 = px(&img, 2 + (f % 2) * 50 + (p % 6) * 8, 2 + (f / 2) * 50 + (p / 6) * 8, 0);
            plo = v0 < plo ? v0 : plo, phi = v0 > phi ? v0 : phi;
        }
        if (hi > lo) cr_assert(plo == 0 && phi == 255, "map %d spans %d..%d", f, plo, phi);
        else cr_assert(plo == 128 && phi == 128, "constant map %d is mid-gray", f);
    }
    cv_image_free(&img);
    /* layer 2: 6 maps of 4x4 zoomed 12x, 3 per row */
    read_png(v[3].path, &img, 3 * (48 + 2) + 2, 2 * (48 + 2) + 2, 1);
    cr_assert_eq(v[3].tiles, 6);
    cv_image_free(&img);

    /* the labels: the layer, each filter, the shades' range -m..m; each map's own range */
    char lo[32], hi[32], range[64];
    snprintf(lo, sizeof lo, ">%.4g</text>", -(double)m);
    snprintf(hi, sizeof hi, ">%.4g</text>", (double)m);
    free(labelled(&v[0], (const char *[]){"layer 1 conv2d: 4 filters 3x3 over 1 input channel<", ">filter 0<",
                                          ">filter 3<", "class=\"legend\"", lo, hi, NULL}));
    float alo = INFINITY, ahi = -INFINITY;
    for (int p = 0; p < 36; p++) alo = fminf(alo, a[p * 4 + 2]), ahi = fmaxf(ahi, a[p * 4 + 2]);
    snprintf(range, sizeof range, ">2: %.3g..%.3g</text>", (double)alo + 0.0, (double)ahi + 0.0);
    free(labelled(&v[2], (const char *[]){"layer 1 conv2d: 4 feature maps 6x6", range, NULL}));
    free(labelled(&v[1], (const char *[]){"the input sample", NULL}));
    free(labelled(&v[3], (const char *[]){"layer 2 conv2d: 6 feature maps 4x4", ">5: ", NULL}));
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(visualize, rgb_and_multichannel_filters)
{
    cv_model_spec spec;
    cv_net *net = net_from("input shape=6,6,3\nconv2d filters=5 kernel=2\nflatten\ndense units=2 activation=softmax\n"
                           "compile optimizer=sgd loss=sparse_categorical_crossentropy\n",
                           &spec);
    float x[108];
    sample(x, 108);
    cv_visual v[4];
    int n;
    cv_err err;
    cr_assert_eq(cv_visualize(net, x, TMP "/rgb", v, 4, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cv_image img;
    /* one RGB tile per filter: 2x2 zoomed 16x, 3 per row */
    read_png(v[0].path, &img, 3 * (32 + 2) + 2, 2 * (32 + 2) + 2, 3);
    cv_image_free(&img);
    read_png(TMP "/rgb/input.png", &img, 96 + 4, 96 + 4, 3);
    cv_image_free(&img);
    cv_net_free(net);
    cv_model_spec_free(&spec);

    /* 2 input channels: a row of 3 filters per input channel */
    net = net_from("input shape=5,5,2\nconv2d filters=3 kernel=3\nflatten\ndense units=2 activation=softmax\n"
                   "compile optimizer=sgd loss=sparse_categorical_crossentropy\n",
                   &spec);
    cr_assert_eq(cv_visualize(net, x, TMP "/two", v, 4, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(v[0].tiles, 6);
    cr_assert_eq(v[0].cols, 3);
    read_png(v[0].path, &img, 3 * (33 + 2) + 2, 2 * (33 + 2) + 2, 1);
    cv_image_free(&img);
    free(labelled(&v[0], (const char *[]){"3 filters 3x3 over 2 input channels", ">filter 0, in 0<",
                                          ">filter 2, in 1<", NULL}));
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(visualize, errors)
{
    cv_model_spec spec;
    cv_net *net = net_from("input shape=4,4,1\nflatten\ndense units=2 activation=softmax\n"
                           "compile optimizer=sgd loss=sparse_categorical_crossentropy\n",
                           &spec);
    float x[16] = {0};
    cv_visual v[4];
    int n;
    cv_err err;
    cr_assert_eq(cv_visualize(net, x, TMP "/mlp", v, 4, &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "v.model: the model has no conv2d layer"), "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);

    net = net_from("input shape=4,4,1\nconv2d filters=2 kernel=3\nflatten\ndense units=2 activation=softmax\n"
                   "compile optimizer=sgd loss=sparse_categorical_crossentropy\n",
                   &spec);
    FILE *f = fopen(TMP "/plain-file", "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(cv_visualize(net, x, TMP "/plain-file", v, 4, &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "plain-file: not a directory"), "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}
