/* Building ONNX graphs: nodes, attributes, constants and typed values over protobuf-c's
 * structures, every piece malloc'd so that freeing the model frees the graph (onnx-graph.h). */
#include "interop/onnx-graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *take(onnx_graph *b, void *p)
{
    if (!p) b->oom = true;
    return p;
}

static char *dup(onnx_graph *b, const char *s)
{
    if (b->oom) return NULL;
    const size_t n = strlen(s) + 1;
    char *c = take(b, malloc(n));
    if (c) memcpy(c, s, n);
    return c;
}

/* Appends p to the array *arr of *n entries (capacity *cap); false when out of memory. */
static bool push(onnx_graph *b, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (b->oom || !p) return b->oom = true, false;
    if (*n == *cap) {
        const size_t c = *cap ? *cap * 2 : 16;
        void **a = take(b, realloc(*arr, c * sizeof *a));
        if (!a) return false;
        *arr = a, *cap = c;
    }
    (*arr)[(*n)++] = p;
    return true;
}

Onnx__GraphProto *onnx_graph_new(onnx_graph *b, const char *name)
{
    memset(b, 0, sizeof *b);
    Onnx__GraphProto *g = take(b, malloc(sizeof *g));
    if (!g) return NULL;
    onnx__graph_proto__init(g);
    g->name = dup(b, name);
    return b->g = g;
}

void onnx_graph_value(onnx_graph *b, bool output, const char *name, int elem, const int64_t *dims, int rank)
{
    Onnx__ValueInfoProto *v = b->oom ? NULL : take(b, malloc(sizeof *v));
    Onnx__TypeProto *t = v ? take(b, malloc(sizeof *t)) : NULL;
    Onnx__TypeProto__Tensor *tt = t ? take(b, malloc(sizeof *tt)) : NULL;
    Onnx__TensorShapeProto *sh = tt ? take(b, malloc(sizeof *sh)) : NULL;
    Onnx__TensorShapeProto__Dimension **d = sh ? take(b, calloc((size_t)rank, sizeof *d)) : NULL;
    if (v) onnx__value_info_proto__init(v), v->name = dup(b, name);
    if (t) onnx__type_proto__init(t), v->type = t;
    if (tt) {
        onnx__type_proto__tensor__init(tt);
        t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
        tt->has_elem_type = 1, tt->elem_type = elem;
    }
    if (sh) onnx__tensor_shape_proto__init(sh), tt->shape = sh;
    if (d) sh->dim = d;
    for (int i = 0; d && i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *e = take(b, malloc(sizeof *e));
        if (!e) break;
        onnx__tensor_shape_proto__dimension__init(e);
        sh->dim[sh->n_dim++] = e;
        if (dims[i] < 0) e->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, e->dim_param = dup(b, "N");
        else e->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, e->dim_value = dims[i];
    }
    size_t cap = output ? b->g->n_output : b->g->n_input; /* one input, one output: no spare room */
    if (output) push(b, (void ***)&b->g->output, &b->g->n_output, &cap, v);
    else push(b, (void ***)&b->g->input, &b->g->n_input, &cap, v);
    if (b->oom && v) protobuf_c_message_free_unpacked(&v->base, NULL);
}

Onnx__NodeProto *onnx_node(onnx_graph *b, const char *op, const char *name, const char *const *in, int nin,
                           const char *out)
{
    Onnx__NodeProto *n = b->oom ? NULL : take(b, malloc(sizeof *n));
    if (!n) return NULL;
    onnx__node_proto__init(n);
    if (!push(b, (void ***)&b->g->node, &b->g->n_node, &b->cap_node, n)) {
        free(n);
        return NULL;
    }
    char fresh[32];
    if (!out) snprintf(fresh, sizeof fresh, "t%d", ++b->tmp), out = fresh;
    n->op_type = dup(b, op);
    n->name = dup(b, name);
    n->input = take(b, calloc((size_t)nin + 1, sizeof *n->input));
    n->output = take(b, calloc(1, sizeof *n->output));
    for (int i = 0; n->input && i < nin; i++)
        if ((n->input[i] = dup(b, in[i] ? in[i] : ""))) n->n_input++;
    if (n->output && (n->output[0] = dup(b, out))) n->n_output = 1;
    return b->oom ? NULL : n;
}

const char *onnx_unary(onnx_graph *b, const char *op, const char *name, const char *x)
{
    Onnx__NodeProto *n = onnx_node(b, op, name, &x, 1, NULL);
    return n ? n->output[0] : NULL;
}

static Onnx__AttributeProto *attr(onnx_graph *b, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = b->oom || !n ? NULL : take(b, malloc(sizeof *a));
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    size_t cap = n->n_attribute; /* a node has a handful: grow by one */
    if (!push(b, (void ***)&n->attribute, &n->n_attribute, &cap, a)) {
        free(a);
        return NULL;
    }
    a->name = dup(b, name);
    a->has_type = 1, a->type = type;
    return a;
}

void onnx_attr_int(onnx_graph *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void onnx_attr_float(onnx_graph *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

void onnx_attr_string(onnx_graph *b, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *s = a ? dup(b, v) : NULL;
    if (s) a->has_s = 1, a->s.data = (uint8_t *)s, a->s.len = strlen(s);
}

void onnx_attr_ints(onnx_graph *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = a ? take(b, malloc(sizeof *c * (size_t)count)) : NULL;
    if (!c) return;
    memcpy(c, v, sizeof *c * (size_t)count);
    a->ints = c, a->n_ints = (size_t)count;
}

/* A constant of count values of size bytes each, little-endian in raw_data. */
static const char *constant(onnx_graph *b, const char *name, const int64_t *dims, int rank, int type,
                            const void *v, size_t size)
{
    Onnx__TensorProto *t = b->oom ? NULL : take(b, malloc(sizeof *t));
    if (!t) return NULL;
    onnx__tensor_proto__init(t);
    if (!push(b, (void ***)&b->g->initializer, &b->g->n_initializer, &b->cap_init, t)) {
        free(t);
        return NULL;
    }
    size_t count = 1;
    t->dims = rank ? take(b, malloc(sizeof *t->dims * (size_t)rank)) : NULL;
    for (int i = 0; t->dims && i < rank; i++) t->dims[i] = dims[i], count *= (size_t)dims[i];
    if (t->dims) t->n_dims = (size_t)rank;
    t->has_data_type = 1, t->data_type = type;
    t->name = dup(b, name);
    const size_t bytes = count * size;
    uint8_t *raw = take(b, malloc(bytes ? bytes : 1));
    if (!raw) return NULL;
    const uint8_t *src = v;
    for (size_t i = 0; i < count; i++) { /* little-endian whatever the host */
        uint32_t u32 = 0;
        uint64_t bits = 0;
        if (size == 4) memcpy(&u32, src + i * size, 4), bits = u32;
        else memcpy(&bits, src + i * size, 8);
        for (size_t k = 0; k < size; k++) raw[i * size + k] = (uint8_t)(bits >> (8 * k));
    }
    t->has_raw_data = 1, t->raw_data.data = raw, t->raw_data.len = count * size;
    return b->oom ? NULL : t->name;
}

const char *onnx_const_f32(onnx_graph *b, const char *name, const int64_t *dims, int rank, const float *v)
{
    return constant(b, name, dims, rank, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, v, sizeof *v);
}

const char *onnx_const_i64(onnx_graph *b, const char *name, const int64_t *dims, int rank, const int64_t *v)
{
    return constant(b, name, dims, rank, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, v, sizeof *v);
}
