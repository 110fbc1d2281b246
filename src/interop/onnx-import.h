/* Private to module interop: the state of an ONNX import (onnx-import.c walks the graph,
 * onnx-ops.c translates its nodes) and the helpers the two share. */
#ifndef CONVOY_INTEROP_ONNX_IMPORT_H
#define CONVOY_INTEROP_ONNX_IMPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "convoy/layers.h"
#include "convoy/model.h"
#include "interop/import-write.h"
#include "interop/onnx-impl.h"

typedef enum { L_IMAGE, L_VECTOR, L_RAW } layout;

typedef struct {
    const char *path;
    const Onnx__GraphProto *g;
    int64_t opset;
    int n_const;
    const char **const_name;
    const Onnx__TensorProto **const_t;
    bool *done;             /* per node: translated (or folded into a constant) */
    Onnx__TensorProto **folded; /* the constants ox_fold_constants made (owned) */
    int n_folded;
    FILE *text;
    bool line_open, line_takes_act;
    cv_act line_act;        /* the last line's activation (compile's loss follows it) */
    int line_units;         /* a dense last line's units */
    bool by_convoy;         /* the file's producer is convoy's export */
    bool logits;            /* the export's Softmax or Sigmoid over logits, dropped: from_logits=true */
    bool nonneg;            /* the flowing values are >= 0 (a Relu's, a Sigmoid's, pooled) */
    int n;                  /* convoy layers written (the input is layer 0) */
    layer_weights w[CV_MAX_LAYERS];
    /* the tensor flowing down the chain: an (h,w,c) map (ONNX: N,C,H,W), a vector of d (ONNX:
     * (N,d), or (N,d,1,1) after a global pool: onnx_rank 4), or raw (any rank; only elementwise
     * nodes, d the product of the non-batch dims) */
    layout kind;
    int h, wd, c, d, onnx_rank;
    int64_t batch;          /* the input's static batch size, -1 when dynamic */
    const Onnx__NodeProto *flat; /* a Flatten of a map whose (c,h,w) order differs from convoy's */
    int fh, fw, fc;
    const Onnx__NodeProto *nhwc; /* a Transpose to (N, H, W, C) waiting for its Flatten: convoy's order */
    bool scaled;            /* a Div by 255 (or Mul by 1/255) at the input: normalize=scale */
    float *mean, *std;      /* a Sub and a Div by per-feature constants there: normalize=standardize */
    int64_t norm_dim;
    const Onnx__NodeProto *center; /* that Sub */
    char shape[48];         /* the input line's shape= */
    bool in_nhwc;           /* the input is (N, H, W, C), made (N, C, H, W) by a Transpose */
    const Onnx__NodeProto *edge_pad; /* an edge-mode Pad waiting for its Conv */
    int edge[4];
    cv_err *err;
} imp;

/** The node's name for messages (its first output's when it has none). */
const char *ox_node_name(const Onnx__NodeProto *n);
/** "PATH: node 'NAME' (OP): what" into m->err; returns -1. */
int ox_fail(imp *m, const Onnx__NodeProto *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** The constant (initializer, bound input, Constant node) called name, or NULL. */
const Onnx__TensorProto *ox_constant(const imp *m, const char *name);
bool ox_is_graph_output(const imp *m, const char *v);
/** The nodes reading value v (at most max listed in out); returns how many there are. */
int ox_consumers(const imp *m, const char *v, const Onnx__NodeProto **out, int max);
/** Marks node n translated. */
void ox_mark(imp *m, const Onnx__NodeProto *n);
/** Whether n has an input i that is not the empty name (an omitted optional input). */
bool ox_has_input(const Onnx__NodeProto *n, int i);
/** Whether value v is read by a node or is a graph output. */
bool ox_used(const imp *m, const char *v);
/** Input i of n as at most max integers (a constant); their count. */
int ox_const_ints(imp *m, const Onnx__NodeProto *n, int i, const char *what, int64_t *v, int max, int *count);
/** Input i of n as floats, which must be a constant; its ONNX dims and rank. */
int ox_const_floats(imp *m, const Onnx__NodeProto *n, int i, const char *what, float **v, int64_t *count,
                    int64_t dims[CV_ONNX_MAX_RANK], int *rank);
/** A model-file line for a new layer, whose index it returns; takes_act: a conv2d or dense that
 *  an activation node after it may still join (activation=). */
int ox_line(imp *m, bool takes_act, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Keeps v (n floats, owned from now on) as layer's kernel (slot 0), bias (1) or state (2). */
int ox_keep(imp *m, int layer, int slot, float *v, int64_t n);
/** The flowing tensor's ONNX shape, for messages. */
const char *ox_shape_str(const imp *m, char *buf, size_t size);
/** Folds the nodes whose inputs are all constants (small integer subgraphs before Pad and
 *  Reshape) into constants of their own; ox_fold_free releases them. */
int ox_fold_constants(imp *m);
void ox_fold_free(imp *m);
/** The dense operators (onnx-dense.c): Gemm; MatMul (with the Add of its bias); Flatten and
 *  Reshape to (N, values). *out the value flowing on after them. */
int ox_gemm(imp *m, const Onnx__NodeProto *n, const char **out);
int ox_matmul(imp *m, const Onnx__NodeProto *n, const char **out);
int ox_flatten(imp *m, const Onnx__NodeProto *n, const char **out);
int ox_reshape(imp *m, const Onnx__NodeProto *n, const char **out);
/** Translates node n (the chain's next), *out the value flowing on after it. */
int ox_translate(imp *m, const Onnx__NodeProto *n, const char **out);

#endif
