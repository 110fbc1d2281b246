/* Private to module interop: what every importer (ONNX, Keras) shares once it has translated a
 * model into convoy's model text and weights: the network built from the text with the weights
 * put in place, the compile line, the one-line message and `convoy import`'s two files. */
#ifndef CONVOY_INTEROP_IMPORT_WRITE_H
#define CONVOY_INTEROP_IMPORT_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "convoy/layers.h"
#include "convoy/model.h"

/** One convoy layer's translated weights in Keras's layouts (malloc'd; NULL with n 0 for none). */
typedef struct {
    float *v[3];   /* kernel, bias, state */
    int64_t n[3];
} layer_weights;

/** compile's line for a translated model, its loss from the output layer: a softmax or sigmoid
 *  its cross-entropy, a linear dense of several units (dense_units) logits of classes,
 *  anything else mse (a starting point to edit); outputs: the output's size (0 for a map). */
void cv_import_compile_line(FILE *f, cv_act act, int dense_units, int64_t outputs);

/** Parses text (messages naming `name`) and builds its network for batches of up to
 *  max_batch; "PATH: convoy refuses the translated model: ..." when the parser does. */
cv_net *cv_import_net(const char *path, const char *text, const char *name, int max_batch, cv_err *err);

/** Copies w[l] (l = 1 .. layers - 1) into net's parameters; each count must be the layer's. */
int cv_import_put(cv_net *net, const char *path, const layer_weights *w, cv_err *err);

/** Replaces control characters in err's message by '?': names are a file's bytes, and a newline
 *  in one must not break the one-line message. */
void cv_import_clean_msg(cv_err *err);

/** DIR/model.model (net's model text) and DIR/weights.h5 (its checkpoint), each through a
 *  temporary file, fsync'd and renamed; DIR created when missing. mean and std (the input's size each,
 *  or NULL): a standardize input's statistics for the checkpoint's normaliser. *layers and *params (may be
 *  NULL) receive the network's size; net is freed. A NULL net (a refused model) returns -1,
 *  err kept. */
int cv_import_save(const char *dir, cv_net *net, const float *mean, const float *std, int *layers, int64_t *params,
                   cv_err *err);

#endif
