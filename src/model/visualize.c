/* Filter and feature-map grids of a conv network, written as PNGs through convoy/image.h, each
 * with an SVG beside it that labels its tiles (convoy/plot.h). */
#include "convoy/visualize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convoy/image.h"
#include "convoy/plot.h"

enum { GAP = 2, BACKGROUND = 255 };

/* A grid of `tiles` tiles of tw x th values with c channels, `cols` per row, each value drawn as
 * a zoom x zoom block, GAP pixels of background between tiles. */
static int grid_alloc(cv_image *img, int tiles, int cols, int tw, int th, int c, int zoom, cv_err *err)
{
    const int rows = (tiles + cols - 1) / cols;
    if (cv_image_alloc(img, cols * (tw * zoom + GAP) + GAP, rows * (th * zoom + GAP) + GAP, c, err)) return -1;
    memset(img->px, BACKGROUND, (size_t)img->w * (size_t)img->h * (size_t)c);
    return 0;
}

/* Puts tile t (th x tw x c bytes, row-major interleaved) into its cell. */
static void grid_put(cv_image *img, int t, int cols, int tw, int th, int zoom, const uint8_t *tile)
{
    const int x0 = GAP + (t % cols) * (tw * zoom + GAP), y0 = GAP + (t / cols) * (th * zoom + GAP), c = img->c;
    for (int y = 0; y < th * zoom; y++)
        for (int x = 0; x < tw * zoom; x++)
            memcpy(img->px + ((size_t)(y0 + y) * img->w + (size_t)(x0 + x)) * c,
                   tile + ((size_t)(y / zoom) * tw + (size_t)(x / zoom)) * c, (size_t)c);
}

static int square_cols(int tiles)
{
    int cols = (int)ceil(sqrt((double)tiles));
    return cols > 0 ? cols : 1;
}

/* Magnification so that a tile is at least `want` pixels high. */
static int zoom_for(int h, int want) { return h >= want ? 1 : (want + h - 1) / h; }

/* The tiles of a grid (where grid_put put them), their labels left to the caller. */
static cv_plot_tile *grid_tiles(const cv_visual *v, cv_err *err)
{
    cv_plot_tile *t = cv_calloc((size_t)v->tiles, sizeof *t, "picture labels", err);
    for (int i = 0; t && i < v->tiles; i++)
        t[i] = (cv_plot_tile){.x = GAP + (i % v->cols) * (v->tile_w + GAP), .y = GAP + (i / v->cols) * (v->tile_h + GAP),
                              .w = v->tile_w, .h = v->tile_h};
    return t;
}

/* dir/name (a .png) and, beside it, the same name .svg labelling its tiles */
static int write_grid(cv_image *img, cv_visual *v, const char *dir, const char *name, const cv_plot_tile *tiles,
                      const char *title, const char *subtitle, const char *lo, const char *hi, cv_err *err)
{
    if (snprintf(v->path, sizeof v->path, "%s/%s", dir, name) >= (int)sizeof v->path ||
        snprintf(v->svg, sizeof v->svg, "%.*s.svg", (int)strlen(v->path) - 4, v->path) >= (int)sizeof v->svg)
        return cv_errf(err, "%s: path too long", dir);
    if (cv_png_write(v->path, img, err)) return -1;
    const cv_plot_picture pic = {.png = name, .png_w = img->w, .png_h = img->h, .title = title, .subtitle = subtitle,
                                 .tiles = tiles, .n = v->tiles, .cols = v->cols, .legend_lo = lo, .legend_hi = hi};
    return cv_plot_picture_svg(v->svg, &pic, err);
}

static int filters_png(cv_net *net, int L, const char *dir, cv_visual *v, cv_err *err)
{
    const cv_layer_spec *s = &cv_net_spec(net)->layers[L];
    const int KH = s->kernel[0], KW = s->kernel[1], Cin = s->in.d[2], Cout = s->filters;
    const float *w = cv_net_params(net) + cv_net_param_view(net, L).kernel_off; /* (KH, KW, Cin, Cout) */
    const int64_t n = (int64_t)KH * KW * Cin * Cout;
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(w[i]));
    const bool rgb = Cin == 3;
    const int c = rgb ? 3 : 1, tiles = rgb ? Cout : Cout * Cin;
    *v = (cv_visual){.layer = L, .tiles = tiles, .cols = rgb || Cin == 1 ? square_cols(tiles) : Cout,
                     .zoom = zoom_for(KH > KW ? KH : KW, 32)};
    v->tile_w = KW * v->zoom;
    v->tile_h = KH * v->zoom;
    cv_image img;
    float vals[3 * 64 * 64];
    uint8_t tile[3 * 64 * 64];
    if (KH > 64 || KW > 64) return cv_errf(err, "layer %d: %dx%d kernels are too large to draw", L, KH, KW);
    cv_plot_tile *labels = grid_tiles(v, err);
    if (!labels) return -1;
    if (grid_alloc(&img, tiles, v->cols, KW, KH, c, v->zoom, err)) {
        free(labels);
        return -1;
    }
    for (int t = 0; t < tiles; t++) {
        const int co = rgb ? t : t % Cout, ci = rgb ? 0 : t / Cout;
        for (int p = 0; p < KH * KW; p++)
            for (int ch = 0; ch < c; ch++) vals[p * c + ch] = w[((int64_t)p * Cin + ci + ch) * Cout + co];
        cv_image_scale(vals, (int64_t)KH * KW * c, -m, m, tile);
        grid_put(&img, t, v->cols, KW, KH, v->zoom, tile);
        if (rgb || Cin == 1)
            snprintf(labels[t].label, sizeof labels[t].label, "filter %d", co);
        else
            snprintf(labels[t].label, sizeof labels[t].label, "filter %d, in %d", co, ci);
    }
    char title[160], lo[32], hi[32];
    snprintf(title, sizeof title, "layer %d conv2d: %d filters %dx%d over %d input channel%s", L, Cout, KH, KW, Cin,
             Cin == 1 ? "" : "s");
    snprintf(lo, sizeof lo, "%.4g", -(double)m);
    snprintf(hi, sizeof hi, "%.4g", (double)m);
    const int rc = write_grid(&img, v, dir, "filters.png", labels, title,
                              rgb ? "weights as RGB; each channel from -m (dark) to +m (bright), m the largest |weight|"
                                  : "weights from -m (black) to +m (white), m the largest |weight|; mid-gray is 0",
                              lo, hi, err);
    cv_image_free(&img);
    free(labels);
    return rc;
}

/* Feature maps (H, W, F) of one sample, one tile per channel stretched to its own range, which
 * its label gives. */
static int maps_png(const float *a, int H, int W, int F, int L, const char *dir, const char *name, const char *title,
                    cv_visual *v, cv_err *err)
{
    *v = (cv_visual){.layer = L, .tiles = F, .cols = square_cols(F), .zoom = zoom_for(H, 48)};
    v->tile_w = W * v->zoom, v->tile_h = H * v->zoom;
    cv_image img;
    float *vals = cv_malloc(sizeof(float) * (size_t)H * W, "feature map", err);
    uint8_t *tile = cv_malloc((size_t)H * W, "feature map", err);
    cv_plot_tile *labels = vals && tile ? grid_tiles(v, err) : NULL;
    int rc = !labels ? -1 : grid_alloc(&img, F, v->cols, W, H, 1, v->zoom, err);
    for (int f = 0; rc == 0 && f < F; f++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int p = 0; p < H * W; p++) {
            vals[p] = a[(int64_t)p * F + f];
            lo = fminf(lo, vals[p]), hi = fmaxf(hi, vals[p]);
        }
        cv_image_scale(vals, (int64_t)H * W, lo, hi, tile);
        grid_put(&img, f, v->cols, W, H, v->zoom, tile);
        /* (+ 0.0: a ReLU's -0 printed as 0) */
        snprintf(labels[f].label, sizeof labels[f].label, "%d: %.3g..%.3g", f, (double)lo + 0.0, (double)hi + 0.0);
    }
    if (rc == 0) {
        rc = write_grid(&img, v, dir, name, labels, title,
                        "each channel N: its own minimum (black) to maximum (white), labelled N: min..max", "min",
                        "max", err);
        cv_image_free(&img);
    }
    free(labels);
    free(vals);
    free(tile);
    return rc;
}

/* The input sample: RGB when it has 3 channels, else its channels side by side in gray. */
static int input_png(const float *x, cv_shape in, const char *dir, cv_visual *v, cv_err *err)
{
    const int H = in.d[0], W = in.d[1], C = in.d[2];
    if (C != 3) return maps_png(x, H, W, C, 0, dir, "input.png", "the input sample (normalised)", v, err);
    *v = (cv_visual){.layer = 0, .tiles = 1, .cols = 1, .zoom = zoom_for(H, 96)};
    v->tile_w = W * v->zoom, v->tile_h = H * v->zoom;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < (int64_t)H * W * C; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    cv_image img;
    uint8_t *tile = cv_malloc((size_t)H * W * C, "input image", err);
    cv_plot_tile *label = tile ? grid_tiles(v, err) : NULL;
    int rc = !label ? -1 : grid_alloc(&img, 1, 1, W, H, 3, v->zoom, err);
    if (rc == 0) {
        cv_image_scale(x, (int64_t)H * W * C, lo, hi, tile);
        grid_put(&img, 0, 1, W, H, v->zoom, tile);
        snprintf(label->label, sizeof label->label, "RGB: %.3g..%.3g", (double)lo, (double)hi);
        char slo[32], shi[32];
        snprintf(slo, sizeof slo, "%.3g", (double)lo);
        snprintf(shi, sizeof shi, "%.3g", (double)hi);
        rc = write_grid(&img, v, dir, "input.png", label, "the input sample (normalised)",
                        "its three channels as RGB, stretched from its minimum to its maximum", slo, shi, err);
        cv_image_free(&img);
    }
    free(label);
    free(tile);
    return rc;
}

int cv_visualize(cv_net *net, const float *x, const char *dir, cv_visual *out, int max, int *n, cv_err *err)
{
    const cv_model_spec *spec = cv_net_spec(net);
    *n = 0;
    int first = 0;
    for (int i = spec->n_layers - 1; i >= 1; i--)
        if (spec->layers[i].kind == CV_LAYER_CONV2D) first = i;
    if (!first) return cv_errf(err, "%s: the model has no conv2d layer (nothing to visualize)", spec->file);
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cv_errf(err, "%s: cannot create (%s)", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return cv_errf(err, "%s: not a directory", dir);
    if (max < 2) return cv_errf(err, "internal: room for %d pictures", max);
    if (filters_png(net, first, dir, &out[(*n)++], err)) return -1;
    if (input_png(x, spec->layers[0].out, dir, &out[(*n)++], err)) return -1;
    cv_net_forward(net, x, 1, false, 0, 0, NULL);
    for (int i = first; i < spec->n_layers; i++) {
        const cv_layer_spec *l = &spec->layers[i];
        if (l->kind != CV_LAYER_CONV2D) continue;
        if (*n >= max) return cv_errf(err, "internal: more than %d pictures", max);
        char name[32], title[128];
        snprintf(name, sizeof name, "features-%02d.png", i);
        snprintf(title, sizeof title, "layer %d conv2d: %d feature maps %dx%d (after its activation)", i, l->out.d[2],
                 l->out.d[1], l->out.d[0]);
        if (maps_png(cv_net_layer_output(net, i), l->out.d[0], l->out.d[1], l->out.d[2], i, dir, name, title,
                     &out[(*n)++], err))
            return -1;
    }
    return 0;
}
