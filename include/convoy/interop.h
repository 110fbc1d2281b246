/* Module interop (src/interop/). Owns the exchange formats: ONNX export of a checkpoint, ONNX import and Keras HDF5 import into a model file and a checkpoint.
 * May call: core, io, layers, loss, optim, data, model, checkpoint.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data, model, checkpoint.
 *
 * ONNX files are read and written with protobuf-c from convoy's part of the ONNX schema
 * (src/interop/onnx.proto, compiled at build time); Keras's model_config JSON with jansson.
 * The commands and their options are in docs/cli.md. */
#ifndef CONVOY_INTEROP_H
#define CONVOY_INTEROP_H

#include "convoy/error.h"

#endif
