/* Module interop (src/interop/). Owns the exchange formats: ONNX export of a checkpoint, ONNX import and Keras HDF5 import into a model file and a checkpoint.
 * May call: core, io, layers, loss, optim, data, model, checkpoint.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint.
 *
 * ONNX files are read and written with protobuf-c from convoy's part of the ONNX schema
 * (src/interop/onnx.proto, compiled at build time); Keras's model_config JSON with jansson.
 * The commands and their options are in docs/cli.md. */
#ifndef CONVOY_INTEROP_H
#define CONVOY_INTEROP_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/error.h"
#include "convoy/model.h"

/** How an imported network's input and output sit in ONNX's layout. */
typedef struct {
    bool in_image;     /* the input is an image: ONNX (N, C, H, W), convoy (N, H, W, C) */
    bool in_nhwc;      /* ... given as (N, H, W, C) to a leading Transpose (no reordering) */
    bool out_image;    /* the output is an (h, w, c) map that ONNX holds as (N, c, h, w) */
    int out_h, out_w, out_c;
    int64_t opset;     /* the model's ai.onnx opset */
} cv_onnx_info;

/** Translates the ONNX model at path (docs/interop.md "Import from ONNX") into a network holding
 *  its weights in convoy's layouts, built for batches of up to max_batch; the network's spec
 *  text is the model file (its messages name `name`). binds[0..n_binds) are TensorProto files
 *  (ONNX's test data input_N.pb) giving the graph inputs after the first, in order, as
 *  constants. info (may be NULL) receives the layouts. Returns NULL with "PATH: node 'NAME'
 *  (OP): what convoy would need" (or what else is wrong) in err. Free with cv_net_free. */
cv_net *cv_onnx_load(const char *path, const char *const *binds, int n_binds, const char *name, int max_batch,
                     cv_onnx_info *info, cv_err *err);

/** Reads a TensorProto file (ONNX's test data input_N.pb, output_N.pb) of float32 values:
 *  *data malloc'd (C order), dims[0..*rank) its dims (at most 8). */
int cv_onnx_tensor_load(const char *path, float **data, int64_t dims[8], int *rank, cv_err *err);

/** `convoy import onnx PATH --out DIR`: DIR/model.model (the model file) and DIR/weights.h5 (a
 *  checkpoint: `base checkpoint=` and `--init-from` read it), each written atomically, DIR
 *  created when missing; nothing is written when the model is refused. *layers and *params (may
 *  be NULL) receive the network's size. */
int cv_onnx_import(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err);

/** `convoy import keras PATH --out DIR`: a file of Keras's model.save("m.h5") (docs/interop.md
 *  "Import from Keras": a Sequential model, or a functional one shaped as a chain, of the layers
 *  convoy has) as DIR/model.model and DIR/weights.h5, as cv_onnx_import writes them; layers
 *  Keras does not train ("trainable": false) stay frozen. Refusals read "PATH: layer 'NAME'
 *  (CLASS): what convoy would need"; nothing is written then. */
int cv_keras_import(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err);

#endif
