/* ONNX import's view of the graph: node names for messages, failures naming the node, the
 * constants (initializers and Constant nodes) a node reads, who consumes a value, which nodes are
 * used, and the model-file lines and weights the translation accumulates (onnx-ops.c calls
 * these). */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop/onnx-import.h"
const char *ox_node_name(const Onnx__NodeProto *n)
{
    return n->name && n->name[0] ? n->name : n->n_output && n->output[0][0] ? n->output[0] : "?";
}

int ox_fail(imp *m, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cv_errf(m->err, "%s: node '%s' (%s): %s", m->path, ox_node_name(n), n->op_type, what);
}

const Onnx__TensorProto *ox_constant(const imp *m, const char *name)
{
    if (!name || !name[0]) return NULL;
    for (int i = 0; i < m->n_const; i++)
        if (strcmp(m->const_name[i], name) == 0) return m->const_t[i];
    return NULL;
}

bool ox_has_input(const Onnx__NodeProto *n, int i) { return (int)n->n_input > i && n->input[i][0]; }

bool ox_is_graph_output(const imp *m, const char *v)
{
    for (size_t i = 0; i < m->g->n_output; i++)
        if (strcmp(m->g->output[i]->name, v) == 0) return true;
    return false;
}

/* the nodes reading value v, at most max listed; returns how many there are */
int ox_consumers(const imp *m, const char *v, const Onnx__NodeProto **out, int max)
{
    int k = 0;
    for (size_t i = 0; i < m->g->n_node; i++) {
        const Onnx__NodeProto *n = m->g->node[i];
        for (size_t j = 0; j < n->n_input; j++)
            if (strcmp(n->input[j], v) == 0) {
                if (k < max) out[k] = n;
                k++;
                break;
            }
    }
    return k;
}

bool ox_used(const imp *m, const char *v)
{
    const Onnx__NodeProto *c;
    return v && v[0] && (ox_consumers(m, v, &c, 1) || ox_is_graph_output(m, v));
}

void ox_mark(imp *m, const Onnx__NodeProto *n)
{
    for (size_t i = 0; i < m->g->n_node; i++)
        if (m->g->node[i] == n) m->done[i] = true;
}

/* input i of n as floats, which must be a constant (an initializer, a bound graph input, a
 * Constant node); dims and rank as ONNX has them */
int ox_const_floats(imp *m, const Onnx__NodeProto *n, int i, const char *what, float **v, int64_t *count,
                    int64_t dims[CV_ONNX_MAX_RANK], int *rank)
{
    const Onnx__TensorProto *t = ox_has_input(n, i) ? ox_constant(m, n->input[i]) : NULL;
    if (!t)
        return ox_fail(m, n, "its %s (input %d%s%s%s) is not a constant: convoy needs weights as initializers", what, i,
                       ox_has_input(n, i) ? ", '" : "", ox_has_input(n, i) ? n->input[i] : "", ox_has_input(n, i) ? "'" : "");
    if (t->n_dims > CV_ONNX_MAX_RANK) return ox_fail(m, n, "its %s has rank %zu", what, t->n_dims);
    char where[300];
    snprintf(where, sizeof where, "%s: node '%s' (%s): %s '%s'", m->path, ox_node_name(n), n->op_type, what, n->input[i]);
    if (cv_onnx_tensor_floats(t, where, v, count, m->err)) return -1;
    for (int64_t k = 0; k < *count; k++)
        if (!isfinite((*v)[k])) {
            const float bad = (*v)[k];
            free(*v), *v = NULL;
            return ox_fail(m, n, "its %s '%s' holds %g at [%lld]: convoy's weights are finite", what, n->input[i], bad,
                           (long long)k);
        }
    *rank = (int)t->n_dims;
    for (int d = 0; d < *rank; d++) dims[d] = t->dims[d];
    return 0;
}

int ox_const_ints(imp *m, const Onnx__NodeProto *n, int i, const char *what, int64_t *v, int max, int *count)
{
    const Onnx__TensorProto *t = ox_has_input(n, i) ? ox_constant(m, n->input[i]) : NULL;
    if (!t) return ox_fail(m, n, "its %s (input %d) is not a constant: convoy needs it fixed in the file", what, i);
    char where[300];
    snprintf(where, sizeof where, "%s: node '%s' (%s): %s", m->path, ox_node_name(n), n->op_type, what);
    return cv_onnx_tensor_ints(t, where, v, max, count, m->err);
}

/* one model-file line, a new layer (its index returned); takes_act: a conv2d or dense that may
 * still take an activation= from the node after it */
int ox_line(imp *m, bool takes_act, const char *fmt, ...)
{
    if (m->line_open) fputc('\n', m->text);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(m->text, fmt, ap);
    va_end(ap);
    m->line_open = true;
    m->line_takes_act = takes_act;
    m->line_act = CV_ACT_LINEAR;
    m->line_units = 0;
    m->nonneg = false;
    if (m->n + 1 >= CV_MAX_LAYERS) return 0; /* refused after the walk; layer 0 keeps no weights */
    return ++m->n;
}

int ox_keep(imp *m, int layer, int slot, float *v, int64_t n)
{
    if (!layer) return free(v), 0;
    m->w[layer].v[slot] = v;
    m->w[layer].n[slot] = n;
    return 0;
}

const char *ox_shape_str(const imp *m, char *buf, size_t size)
{
    if (m->kind == L_IMAGE) snprintf(buf, size, "(N, %d, %d, %d)", m->c, m->h, m->wd);
    else if (m->kind == L_VECTOR && m->onnx_rank == 4) snprintf(buf, size, "(N, %d, 1, 1)", m->d);
    else if (m->kind == L_VECTOR) snprintf(buf, size, "(N, %d)", m->d);
    else snprintf(buf, size, "of rank %d", m->onnx_rank);
    return buf;
}
