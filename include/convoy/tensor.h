/* Module core (its preamble: convoy/error.h). Shapes of per-sample tensors. Activations are NHWC (channels last, as Keras); a batch of B
 * samples of shape s is B * cv_shape_size(s) contiguous floats. Tabular data and dense
 * outputs are rank 1. */
#ifndef CONVOY_TENSOR_H
#define CONVOY_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank;  /* 1: (d[0]) features; 3: (d[0]=H, d[1]=W, d[2]=C) */
    int d[3];
} cv_shape;

static inline int64_t cv_shape_size(cv_shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) n *= s.d[i];
    return n;
}

static inline cv_shape cv_shape_hwc(int h, int w, int c) { return (cv_shape){3, {h, w, c}}; }
static inline cv_shape cv_shape_vec(int d) { return (cv_shape){1, {d, 1, 1}}; }

/** "(784)" or "(28, 28, 1)" into buf, for messages; returns buf. */
const char *cv_shape_str(cv_shape s, char *buf, size_t size);

#endif
