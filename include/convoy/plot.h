/* Module io (its preamble: convoy/image.h). SVG charts, written atomically (temporary file, fsync, rename) so a browser or a watcher never
 * sees half a file: training curves from histories, a confusion-matrix heat map, and labelled pictures of tiles. */
#ifndef CONVOY_PLOT_H
#define CONVOY_PLOT_H

#include <stdint.h>

#include "convoy/error.h"

/* a training history's columns: epoch, lr, the loss and every metric with their val_ twins,
 * seconds, images_per_s (24), with room; names as long as val_sparse_top_k_categorical_accuracy */
#define CV_TABLE_MAX_COLS 32
#define CV_TABLE_NAME 48

/** Numbers under named columns, row-major: what a curve chart plots. Training keeps its history
 *  in one (cv_history, convoy/history.h); the chart reads nothing but these arrays. */
typedef struct {
    int ncols;
    char cols[CV_TABLE_MAX_COLS][CV_TABLE_NAME];
    int64_t nrows, cap;
    double *v;        /* nrows * ncols values, row-major; NaN where a CSV cell was "nan" */
    char source[256]; /* the file it was read from ("" when built in memory) */
} cv_table;

/** Index of the column called name, or -1. */
int cv_table_col(const cv_table *t, const char *name);

/** Training curves of n tables (histories, columns epoch, loss, ...): a loss panel and, when the histories have one, a panel of the
 *  first metric (accuracy, else mae, else mse); train as solid lines, val_ columns dashed; x is
 *  the epoch. With several histories each has its colour and labels[i] in the legend (labels may
 *  be NULL: then "train"/"validation" for one history, the file names for several). */
int cv_plot_curves_svg(const char *path, const cv_table *h, int n, const char *const *labels, cv_err *err);

/** A K x K confusion matrix (counts[t * K + p]: true class t predicted as p) as a heat map:
 *  cell shade by the row's share (recall), the count written in each cell, class names on both
 *  axes (names NULL: class numbers). */
int cv_plot_confusion_svg(const char *path, const int64_t *counts, int K, char *const *names, const char *title,
                          cv_err *err);

/** One tile of a picture: its rectangle in the PNG (pixels) and the label shown under it. */
typedef struct {
    int x, y, w, h;
    char label[48];
} cv_plot_tile;

/** A PNG of tiles, labelled: the SVG shows each tile of png (a file name relative to the SVG's
 *  folder, png_w x png_h pixels) cropped from it, magnified to at least 64 px wide (pixels kept
 *  square and sharp), `cols` to a row with its label under it, below a title and a subtitle, and,
 *  when legend_lo/legend_hi are set, a black-to-white strip with those two ends labelled. */
typedef struct {
    const char *png;
    int png_w, png_h;
    const char *title, *subtitle;
    const cv_plot_tile *tiles;
    int n, cols;
    const char *legend_lo, *legend_hi;
} cv_plot_picture;

int cv_plot_picture_svg(const char *path, const cv_plot_picture *p, cv_err *err);

#endif
