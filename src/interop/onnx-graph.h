/* Private to interop/: a small builder of ONNX graphs over the protobuf-c structures of
 * src/interop/onnx.proto. Every string, array and message is malloc'd, so one
 * protobuf_c_message_free_unpacked of the model frees it all; an allocation that fails marks the
 * builder (oom) and the calls after it do nothing, so callers check once at the end. */
#ifndef CONVOY_INTEROP_ONNX_GRAPH_H
#define CONVOY_INTEROP_ONNX_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

typedef struct {
    Onnx__GraphProto *g;
    size_t cap_node, cap_init;
    int tmp;  /* intermediate tensors are named t1, t2, ... */
    bool oom;
} onnx_graph;

/** A new graph named name; NULL when out of memory. */
Onnx__GraphProto *onnx_graph_new(onnx_graph *b, const char *name);
/** A tensor-typed value (float when elem is ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) of rank dims,
 *  dims[i] < 0 being the dynamic dimension "N"; added to the graph's inputs or outputs. */
void onnx_graph_value(onnx_graph *b, bool output, const char *name, int elem, const int64_t *dims, int rank);
/** Adds node op_type named name with inputs in[0..nin) (NULL entries: an absent optional
 *  input, written as "") and one output; out NULL makes a fresh name. Returns the node (its
 *  output is node->output[0]) or NULL. */
Onnx__NodeProto *onnx_node(onnx_graph *b, const char *op, const char *name, const char *const *in, int nin,
                           const char *out);
/** The output of a one-input node, NULL when out of memory. */
const char *onnx_unary(onnx_graph *b, const char *op, const char *name, const char *x);
void onnx_attr_int(onnx_graph *b, Onnx__NodeProto *n, const char *name, int64_t v);
void onnx_attr_float(onnx_graph *b, Onnx__NodeProto *n, const char *name, float v);
void onnx_attr_string(onnx_graph *b, Onnx__NodeProto *n, const char *name, const char *v);
void onnx_attr_ints(onnx_graph *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count);
/** A constant (an initializer) of float or int64 values, copied (little-endian raw_data);
 *  returns its name, NULL when out of memory. */
const char *onnx_const_f32(onnx_graph *b, const char *name, const int64_t *dims, int rank, const float *v);
const char *onnx_const_i64(onnx_graph *b, const char *name, const int64_t *dims, int rank, const int64_t *v);

#endif
