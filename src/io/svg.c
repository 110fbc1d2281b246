/* SVG charts: training curves (loss and a metric, train vs validation, several runs) and a
 * confusion heat map. Built in memory, then written atomically: temporary file, fsync, rename. */
#define _GNU_SOURCE /* open_memstream */
#include "convoy/plot.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/files.h"

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPALETTE ((int)(sizeof palette / sizeof palette[0]))

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} svg_doc;

static int svg_begin(svg_doc *s, const char *path, double w, double h, cv_err *err)
{
    s->buf = NULL;
    s->len = 0;
    if (!(s->f = open_memstream(&s->buf, &s->len))) return cv_errf(err, "%s: out of memory", path);
    fprintf(s->f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", w, h, w, h);
    return 0;
}

/* XML-escaped text (names come from files and data sets) */
static void esc(FILE *f, const char *t)
{
    for (; *t; t++) {
        switch (*t) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*t >= 0x20 || *t == '\t') fputc(*t, f); /* no control characters in XML */
        }
    }
}

/* <text ...>escaped</text> */
static void text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *t)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "", extra ? extra : "");
    esc(f, t);
    fputs("</text>\n", f);
}

/* Roughly how wide t is at font size px: 0.6 em per character (Helvetica's widest average, bold
 * included), counting UTF-8 characters, not bytes. */
static double text_width(const char *t, double px)
{
    size_t chars = 0;
    for (; *t; t++) chars += ((unsigned char)*t & 0xC0) != 0x80;
    return 0.6 * px * (double)chars;
}

/* Closes the document and writes it to path through a temporary file, or straight to a
 * character device (--plot /dev/null: a rename would replace the device itself). */
static int svg_commit(svg_doc *s, const char *path, cv_err *err)
{
    fputs("</svg>\n", s->f);
    const int mem_ok = fclose(s->f) == 0;
    s->f = NULL;
    const int rc = mem_ok ? cv_write_file_atomic(path, s->buf, s->len, err) : cv_errf(err, "%s: out of memory", path);
    free(s->buf);
    s->buf = NULL;
    return rc;
}

/* Tick spacing 1, 2 or 5 times a power of ten giving about five intervals over [lo, hi], and the
 * range widened to whole ticks. */
static double nice_ticks(double *lo, double *hi, bool integer)
{
    if (!(*hi > *lo)) {
        const double pad = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1.0;
        *lo -= pad;
        *hi += pad;
    }
    const double raw = (*hi - *lo) / 5.0, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
    if (integer && step < 1.0) step = 1.0;
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

typedef struct {
    double x, y, w, h;        /* plot area in pixels */
    double xlo, xhi, ylo, yhi;
} frame;

static double px(const frame *fr, double x) { return fr->x + (x - fr->xlo) / (fr->xhi - fr->xlo) * fr->w; }
static double py(const frame *fr, double y) { return fr->y + fr->h - (y - fr->ylo) / (fr->yhi - fr->ylo) * fr->h; }

/* Axes, grid, ticks and labels of one panel. */
static void axes(FILE *f, const frame *fr, double xstep, double ystep, const char *title, const char *ylabel)
{
    fprintf(f, "<g class=\"axes\" stroke=\"#ddd\" stroke-width=\"1\">\n");
    for (double y = fr->ylo; y <= fr->yhi + ystep * 1e-6; y += ystep)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr->x, py(fr, y), fr->x + fr->w, py(fr, y));
    for (double x = fr->xlo; x <= fr->xhi + xstep * 1e-6; x += xstep)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(fr, x), fr->y, px(fr, x), fr->y + fr->h);
    fprintf(f, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
            fr->x, fr->y, fr->w, fr->h);
    char lab[32];
    for (double y = fr->ylo; y <= fr->yhi + ystep * 1e-6; y += ystep) {
        snprintf(lab, sizeof lab, "%.4g", fabs(y) < ystep * 1e-6 ? 0.0 : y);
        text(f, fr->x - 6, py(fr, y) + 4, "end", "class=\"ytick\"", lab);
    }
    for (double x = fr->xlo; x <= fr->xhi + xstep * 1e-6; x += xstep) {
        snprintf(lab, sizeof lab, "%.4g", x);
        text(f, px(fr, x), fr->y + fr->h + 16, "middle", "class=\"xtick\"", lab);
    }
    text(f, fr->x + fr->w / 2, fr->y + fr->h + 34, "middle", "class=\"xlabel\"", "epoch");
    char rot[96];
    snprintf(rot, sizeof rot, "class=\"ylabel\" transform=\"rotate(-90 %.1f %.1f)\"", fr->x - 56, fr->y + fr->h / 2);
    text(f, fr->x - 56, fr->y + fr->h / 2, "middle", rot, ylabel);
    text(f, fr->x + fr->w / 2, fr->y - 10, "middle", "font-size=\"14\" font-weight=\"bold\"", title);
}

int cv_table_col(const cv_table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], name) == 0) return i;
    return -1;
}

/* One curve: a polyline broken at non-finite values, with dots when there are few points. */
static void series(FILE *f, const frame *fr, const cv_table *h, int xc, int yc, const char *color, bool dashed,
                   const char *label)
{
    fprintf(f, "<g class=\"series\" data-label=\"");
    esc(f, label);
    fprintf(f, "\" data-column=\"");
    esc(f, h->cols[yc]);
    fprintf(f, "\" data-points=\"%lld\" stroke=\"%s\" fill=\"none\" stroke-width=\"2\"%s>\n", (long long)h->nrows, color,
            dashed ? " stroke-dasharray=\"6,4\"" : "");
    bool open = false;
    for (int64_t r = 0; r < h->nrows; r++) {
        const double x = h->v[r * h->ncols + xc], y = h->v[r * h->ncols + yc];
        if (!isfinite(x) || !isfinite(y)) {
            if (open) fputs("\"/>\n", f);
            open = false;
            continue;
        }
        fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline points=\"", px(fr, x), py(fr, y));
        open = true;
    }
    if (open) fputs("\"/>\n", f);
    for (int64_t r = 0; h->nrows <= 40 && r < h->nrows; r++) {
        const double x = h->v[r * h->ncols + xc], y = h->v[r * h->ncols + yc];
        if (isfinite(x) && isfinite(y))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" stroke=\"none\"/>\n", px(fr, x), py(fr, y),
                    color);
    }
    fputs("</g>\n", f);
}

/* A short line sample and its label. */
static void legend_item(FILE *f, double x, double y, const char *color, bool dashed, const char *label)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", x, y - 4,
            x + 28, y - 4, color, dashed ? " stroke-dasharray=\"6,4\"" : "");
    text(f, x + 34, y, "start", "class=\"legend\"", label);
}

int cv_plot_curves_svg(const char *path, const cv_table *h, int n, const char *const *labels, cv_err *err)
{
    if (n < 1) return cv_errf(err, "%s: no history to plot", path);
    /* the second panel: the first metric every history has */
    static const char *const metrics[] = {"accuracy", "mae", "mse"};
    const char *metric = NULL;
    for (int m = 0; m < 3 && !metric; m++) {
        bool all = true;
        for (int i = 0; i < n; i++) all &= cv_table_col(&h[i], metrics[m]) >= 0;
        if (all) metric = metrics[m];
    }
    bool any_val = false;
    for (int i = 0; i < n; i++) {
        if (cv_table_col(&h[i], "epoch") < 0 || cv_table_col(&h[i], "loss") < 0)
            return cv_errf(err, "%s: history %d has no 'epoch' and 'loss' columns", path, i + 1);
        any_val |= cv_table_col(&h[i], "val_loss") >= 0;
    }
    const char *panels[2] = {"loss", metric};
    const int npanels = metric ? 2 : 1;

    /* ranges over every finite point */
    double xlo = INFINITY, xhi = -INFINITY, ylo[2] = {INFINITY, INFINITY}, yhi[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < n; i++) {
        const int xc = cv_table_col(&h[i], "epoch");
        for (int p = 0; p < npanels; p++) {
            char vname[40];
            snprintf(vname, sizeof vname, "val_%s", panels[p]);
            const int cols[2] = {cv_table_col(&h[i], panels[p]), cv_table_col(&h[i], vname)};
            for (int64_t r = 0; r < h[i].nrows; r++)
                for (int c = 0; c < 2; c++) {
                    if (cols[c] < 0) continue;
                    const double x = h[i].v[r * h[i].ncols + xc], y = h[i].v[r * h[i].ncols + cols[c]];
                    if (!isfinite(x) || !isfinite(y)) continue;
                    xlo = fmin(xlo, x), xhi = fmax(xhi, x);
                    ylo[p] = fmin(ylo[p], y), yhi[p] = fmax(yhi[p], y);
                }
        }
    }
    if (!isfinite(xlo)) xlo = 0.0, xhi = 1.0; /* nothing finite yet: empty axes */
    for (int p = 0; p < 2; p++)
        if (!isfinite(ylo[p])) ylo[p] = 0.0, yhi[p] = 1.0;
    const double xstep = nice_ticks(&xlo, &xhi, true);

    const double PW = 420, PH = 280, ML = 72, MR = 24, MT = 40, MB = 52;
    const int legend_rows = n == 1 ? 1 : n + (any_val ? 1 : 0);
    const double W = npanels * (ML + PW + MR), H = MT + PH + MB + 10 + 18.0 * legend_rows + 8;
    svg_doc s;
    if (svg_begin(&s, path, W, H, err)) return -1;
    FILE *f = s.f;
    for (int p = 0; p < npanels; p++) {
        frame fr = {p * (ML + PW + MR) + ML, MT, PW, PH, xlo, xhi, ylo[p], yhi[p]};
        const double ystep = nice_ticks(&fr.ylo, &fr.yhi, false);
        axes(f, &fr, xstep, ystep, panels[p], panels[p]);
        char vname[40];
        snprintf(vname, sizeof vname, "val_%s", panels[p]);
        for (int i = 0; i < n; i++) {
            const char *label = labels ? labels[i] : n == 1 ? "train" : h[i].source;
            const char *c_train = n == 1 ? palette[0] : palette[i % NPALETTE];
            const char *c_val = n == 1 ? palette[1] : c_train;
            const int xc = cv_table_col(&h[i], "epoch"), tc = cv_table_col(&h[i], panels[p]),
                      vc = cv_table_col(&h[i], vname);
            series(f, &fr, &h[i], xc, tc, c_train, false, label);
            if (vc >= 0) series(f, &fr, &h[i], xc, vc, c_val, true, n == 1 && !labels ? "validation" : label);
        }
    }
    /* legend under the panels */
    double ly = MT + PH + MB + 18;
    if (n == 1) {
        legend_item(f, ML, ly, palette[0], false, labels ? labels[0] : "train");
        if (any_val) legend_item(f, ML + 200, ly, palette[1], true, labels ? "validation (val_)" : "validation");
    } else {
        for (int i = 0; i < n; i++, ly += 18)
            legend_item(f, ML, ly, palette[i % NPALETTE], false, labels ? labels[i] : h[i].source);
        if (any_val) text(f, ML, ly, "start", "class=\"legend\" fill=\"#555\"", "solid: train, dashed: validation");
    }
    return svg_commit(&s, path, err);
}

int cv_plot_confusion_svg(const char *path, const int64_t *counts, int K, char *const *names, const char *title,
                          cv_err *err)
{
    if (K < 1) return cv_errf(err, "%s: empty confusion matrix", path);
    size_t longest = 2;
    char num[24];
    for (int k = 0; k < K; k++) {
        const size_t l = names ? strlen(names[k]) : (size_t)snprintf(num, sizeof num, "%d", k);
        if (l > longest) longest = l;
    }
    const double cell = K <= 12 ? 44 : K <= 30 ? 24 : 14, label_w = 7.0 * (double)(longest < 24 ? longest : 24) + 16;
    const char *head = title ? title : "confusion matrix",
               *sub = "predicted class (columns) - shade: share of the true class";
    /* the titles centred over the grid, moved right and the picture widened where a few classes'
     * grid is narrower than they are */
    const double tw = fmax(text_width(head, 14), text_width(sub, 12)) / 2 + 8;
    const double x0 = label_w + 28, y0 = 48, tx = fmax(x0 + K * cell / 2, tw), W = fmax(x0 + K * cell + 24, tx + tw),
                 H = y0 + K * cell + label_w + 28;
    svg_doc s;
    if (svg_begin(&s, path, W, H, err)) return -1;
    FILE *f = s.f;
    text(f, tx, 22, "middle", "font-size=\"14\" font-weight=\"bold\"", head);
    text(f, tx, 40, "middle", "fill=\"#555\"", sub);
    char rot[96];
    snprintf(rot, sizeof rot, "transform=\"rotate(-90 14 %.1f)\" fill=\"#555\"", y0 + K * cell / 2);
    text(f, 14, y0 + K * cell / 2, "middle", rot, "true class (rows)");
    for (int t = 0; t < K; t++) {
        int64_t row = 0;
        for (int p = 0; p < K; p++) row += counts[t * K + p];
        for (int p = 0; p < K; p++) {
            const int64_t c = counts[t * K + p];
            const double share = row ? (double)c / (double)row : 0.0;
            /* white to dark blue */
            const int r = (int)lround(247 + (8 - 247) * share), g = (int)lround(251 + (48 - 251) * share),
                      b = (int)lround(255 + (107 - 255) * share);
            fprintf(f, "<rect class=\"cell\" data-true=\"%d\" data-pred=\"%d\" data-count=\"%lld\" x=\"%.1f\" y=\"%.1f\" "
                       "width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" stroke=\"#ccc\"/>\n",
                    t, p, (long long)c, x0 + p * cell, y0 + t * cell, cell, cell, r, g, b);
            if (cell >= 24) {
                snprintf(num, sizeof num, "%lld", (long long)c);
                char style[64];
                snprintf(style, sizeof style, "font-size=\"%d\" fill=\"%s\"", cell >= 44 ? 12 : 9,
                         share > 0.5 ? "white" : "black");
                text(f, x0 + (p + 0.5) * cell, y0 + (t + 0.5) * cell + 4, "middle", style, num);
            }
        }
    }
    for (int k = 0; k < K; k++) {
        if (!names) snprintf(num, sizeof num, "%d", k);
        const char *name = names ? names[k] : num;
        text(f, x0 - 6, y0 + (k + 0.5) * cell + 4, "end", "class=\"row-label\"", name);
        const double cx = x0 + (k + 0.5) * cell, cy = y0 + K * cell + 10;
        snprintf(rot, sizeof rot, "class=\"col-label\" transform=\"rotate(-45 %.1f %.1f)\"", cx, cy);
        text(f, cx, cy, "end", rot, name);
    }
    return svg_commit(&s, path, err);
}

int cv_plot_picture_svg(const char *path, const cv_plot_picture *p, cv_err *err)
{
    if (p->n < 1 || p->cols < 1) return cv_errf(err, "%s: a picture without tiles", path);
    int tw = 1, th = 1; /* the largest tile */
    double lw = 0;      /* the widest label */
    for (int i = 0; i < p->n; i++) {
        tw = p->tiles[i].w > tw ? p->tiles[i].w : tw;
        th = p->tiles[i].h > th ? p->tiles[i].h : th;
        lw = fmax(lw, text_width(p->tiles[i].label, 10));
    }
    const int scale = tw >= 64 ? 1 : (64 + tw - 1) / tw, rows = (p->n + p->cols - 1) / p->cols;
    const double cw = fmax(tw * scale, lw) + 12, ch = th * scale + 20, top = 56, legend = p->legend_lo ? 40 : 0;
    const double W = fmax(fmax(24 + p->cols * cw, 24 + fmax(text_width(p->title, 14), text_width(p->subtitle, 12))), 240),
                 H = top + rows * ch + legend + 12;
    svg_doc s;
    if (svg_begin(&s, path, W, H, err)) return -1;
    FILE *f = s.f;
    text(f, 12, 22, "start", "font-size=\"14\" font-weight=\"bold\"", p->title);
    text(f, 12, 40, "start", "fill=\"#555\"", p->subtitle);
    for (int i = 0; i < p->n; i++) {
        const cv_plot_tile *t = &p->tiles[i];
        const double x = 12 + (i % p->cols) * cw + (cw - t->w * scale) / 2, y = top + (i / p->cols) * ch;
        /* the tile: a viewport onto its rectangle of the PNG */
        fprintf(f, "<svg class=\"tile\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" viewBox=\"%d %d %d %d\">"
                   "<image href=\"",
                x, y, t->w * scale, t->h * scale, t->x, t->y, t->w, t->h);
        esc(f, p->png);
        fprintf(f, "\" width=\"%d\" height=\"%d\" style=\"image-rendering:pixelated\"/></svg>\n", p->png_w, p->png_h);
        text(f, 12 + (i % p->cols + 0.5) * cw, y + t->h * scale + 13, "middle", "class=\"tile-label\" font-size=\"10\"",
             t->label);
    }
    if (p->legend_lo) {
        const double y = top + rows * ch + 8;
        fputs("<defs><linearGradient id=\"shade\"><stop offset=\"0\" stop-color=\"black\"/>"
              "<stop offset=\"1\" stop-color=\"white\"/></linearGradient></defs>\n", f);
        fprintf(f, "<rect class=\"legend\" x=\"12\" y=\"%.1f\" width=\"200\" height=\"10\" fill=\"url(#shade)\" "
                   "stroke=\"#999\"/>\n", y);
        text(f, 12, y + 24, "start", "class=\"legend-lo\" font-size=\"10\"", p->legend_lo);
        text(f, 212, y + 24, "end", "class=\"legend-hi\" font-size=\"10\"", p->legend_hi ? p->legend_hi : "");
    }
    return svg_commit(&s, path, err);
}
