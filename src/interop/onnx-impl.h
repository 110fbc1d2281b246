/* Private to module interop: reading ONNX files (models and the TensorProto files of ONNX's
 * test data) and the values of their tensors and attributes, over protobuf-c's messages. */
#ifndef CONVOY_INTEROP_ONNX_IMPL_H
#define CONVOY_INTEROP_ONNX_IMPL_H

#include <stdint.h>

#include "convoy/error.h"
#include "onnx.pb-c.h"

#define CV_ONNX_MAX_RANK 8

/** The whole of a regular file, at most 2 GiB (protobuf's limit): *buf malloc'd. */
int cv_onnx_read_file(const char *path, uint8_t **buf, size_t *n, cv_err *err);
/** Parses path as a ModelProto; NULL with "PATH: not an ONNX model (...)" when it is none. */
Onnx__ModelProto *cv_onnx_model_read(const char *path, cv_err *err);
/** Parses path as one TensorProto (ONNX's test data input_N.pb, output_N.pb). */
Onnx__TensorProto *cv_onnx_tensor_file(const char *path, cv_err *err);

/** Elements of t from its dims (1 for a scalar); -1 for a negative dimension or an overflow. */
int64_t cv_onnx_tensor_count(const Onnx__TensorProto *t);
/** t's values as floats (a FLOAT tensor, raw_data or float_data): *out malloc'd, *count
 *  elements. what names the tensor in messages ("m.onnx: initializer 'w'"). */
int cv_onnx_tensor_floats(const Onnx__TensorProto *t, const char *what, float **out, int64_t *count, cv_err *err);
/** An INT64 or INT32 tensor's values (raw_data or int64_data / int32_data), at most max. */
int cv_onnx_tensor_ints(const Onnx__TensorProto *t, const char *what, int64_t *out, int max, int *count, cv_err *err);

/** The node's attribute called name, or NULL. */
const Onnx__AttributeProto *cv_onnx_attr(const Onnx__NodeProto *n, const char *name);
/** An INT attribute (def when absent). */
int64_t cv_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
/** A FLOAT attribute (def when absent). */
float cv_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float def);
/** A STRING attribute into buf ("" when absent). */
void cv_onnx_attr_str(const Onnx__NodeProto *n, const char *name, char *buf, size_t size);
/** An INTS attribute: its count (0 when absent), at most max values copied. */
int cv_onnx_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max);

#endif
