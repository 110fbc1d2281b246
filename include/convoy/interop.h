/* Module interop (src/interop/). Owns the exchange formats: ONNX export of a checkpoint, ONNX import and Keras HDF5 import into a model file and a checkpoint.
 * May call: core, io, layers, loss, optim, data, model, checkpoint.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint.
 *
 * ONNX files are read and written with protobuf-c from convoy's part of the ONNX schema
 * (src/interop/onnx.proto, compiled at build time); Keras's model_config JSON with jansson.
 * The commands, their options and the operator tables are in docs/interop.md and docs/cli.md. */
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
    float *mean, *std; /* normalize=standardize's norm_dim statistics, (h, w, c) order (malloc'd: the
                          caller frees them), else NULL */
    int64_t norm_dim;
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

/* ONNX export: the opset of the operators written, and the file format's IR version (ONNX 1.7's,
 * the first with opset 13) */
#define CV_ONNX_OPSET 13
#define CV_ONNX_IR_VERSION 7

/** What an export wrote. */
typedef struct {
    int64_t nodes, initializers; /* the graph's nodes and constant tensors */
    int64_t bytes;               /* the file's size */
} cv_onnx_export_info;

/** Writes the network saved in checkpoint ckpt to out as an ONNX model (docs/interop.md "Export to
 *  ONNX"): input "input", float32 (N, H, W, C) or (N, D) holding the values /x holds (uint8 data
 *  as 0..255), the checkpoint's input normalisation as its first nodes, a Transpose to NCHW, each
 *  layer in its inference form, output "probabilities" (N, outputs): what `convoy predict`
 *  gives, a from_logits classifier's logits turned into probabilities. The batch dimension is
 *  dynamic ("N"). Written atomically (temporary file, fsync, rename). info may be NULL.
 *  @return 0, or -1 with "CKPT: ..." or "OUT: ..." in err */
int cv_onnx_export(const char *ckpt, const char *out, cv_onnx_export_info *info, cv_err *err);

/** `convoy import keras PATH --out DIR`: a file of Keras's model.save("m.h5") (docs/interop.md
 *  "Import from Keras": a Sequential model, or a functional one shaped as a chain, of the layers
 *  convoy has) as DIR/model.model and DIR/weights.h5, as cv_onnx_import writes them; layers
 *  Keras does not train ("trainable": false) stay frozen. Refusals read "PATH: layer 'NAME'
 *  (CLASS): what convoy would need"; nothing is written then. */
int cv_keras_import(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err);

#endif
