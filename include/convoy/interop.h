/* Module interop (src/interop/). Owns the exchange formats: ONNX export of a checkpoint, ONNX import and Keras HDF5 import into a model file and a checkpoint.
 * May call: core, io, layers, loss, optim, data, model, checkpoint.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint.
 *
 * ONNX files are read and written with protobuf-c from convoy's part of the ONNX schema
 * (src/interop/onnx.proto, compiled at build time); Keras's model_config JSON with jansson.
 * The commands, their options and the operator tables are in docs/interop.md. */
#ifndef CONVOY_INTEROP_H
#define CONVOY_INTEROP_H

#include <stdint.h>

#include "convoy/error.h"

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

#endif
