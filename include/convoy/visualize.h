/* Module model (its preamble: convoy/model.h). Pictures of what a convolutional network learned: the first conv layer's filters and the
 * feature maps one sample produces in every conv layer, as PNG grids of tiles. */
#ifndef CONVOY_VISUALIZE_H
#define CONVOY_VISUALIZE_H

#include "convoy/error.h"
#include "convoy/model.h"

/** One picture written. */
typedef struct {
    char path[4096];
    char svg[4096];          /* the same picture with its tiles labelled: path's name with .svg */
    int layer;               /* the conv layer shown (index in the model file's list) */
    int tiles, cols;         /* tiles in the grid, tiles per row */
    int tile_w, tile_h;      /* tile size in pixels (values are repeated `zoom` times) */
    int zoom;
} cv_visual;

/** Writes into the directory dir (created if missing):
 *  filters.png   the first conv layer's kernels, one tile per filter in RGB when it has 3 input
 *                channels, else one gray tile per (input channel, filter): a row per input
 *                channel (a square grid when there is one); shades map [-m, m] to black..white,
 *                m = the layer's largest |weight|, so mid-gray is 0;
 *  input.png     the sample as the network sees it (normalised): RGB stretched from its min to
 *                max when it has 3 channels, else one gray tile per channel on its own range;
 *  features-LL.png for each conv layer LL: one tile per output channel of the sample x (one
 *                normalised sample of the input shape), each tile stretched from its own min to max.
 *  Beside each, NAME.svg shows its tiles labelled (filter and input channel, or channel and its
 *  min..max), a title naming the layer, and the shades' legend (convoy/plot.h).
 *  out[] receives up to max entries (filters first); *n the count. The network must have a conv
 *  layer; net is run forward on x. */
int cv_visualize(cv_net *net, const float *x, const char *dir, cv_visual *out, int max, int *n, cv_err *err);

#endif
