/* Constant folding for the small integer subgraphs exporters leave in front of a Pad or a
 * Reshape (torch.onnx writes a replicate-padded conv's pads as ConstantOfShape, Concat,
 * Reshape, Slice, Transpose, Reshape, Cast over constants): each such node whose inputs are all
 * constants becomes a constant itself, so the import sees the numbers. Tensors of at most
 * 4096 values and rank 2, int64 or float32; anything else is left to the walk, which refuses it. */
#include <stdlib.h>
#include <string.h>

#include "interop/onnx-import.h"

#define FOLD_MAX 4096

typedef struct {
    int rank;
    int64_t dims[2];
    int64_t n;
    bool is_float;
    double v[FOLD_MAX];
} small;

static bool load(const imp *m, const char *name, small *s)
{
    const Onnx__TensorProto *t = ox_constant(m, name);
    if (!t || t->n_dims > 2) return false;
    const int64_t n = cv_onnx_tensor_count(t);
    if (n < 0 || n > FOLD_MAX) return false;
    s->rank = (int)t->n_dims, s->n = n;
    for (int i = 0; i < s->rank; i++) s->dims[i] = t->dims[i];
    s->is_float = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (s->is_float) {
        float *f;
        int64_t c;
        if (cv_onnx_tensor_floats(t, "", &f, &c, NULL)) return false;
        for (int64_t i = 0; i < n; i++) s->v[i] = f[i];
        free(f);
        return true;
    }
    int64_t iv[FOLD_MAX];
    int c;
    if (cv_onnx_tensor_ints(t, "", iv, FOLD_MAX, &c, NULL)) return false;
    for (int64_t i = 0; i < n; i++) s->v[i] = (double)iv[i];
    return true;
}

/* the value of one node, or false when it is not one this folds */
static bool eval(const imp *m, const Onnx__NodeProto *n, small *out)
{
    static small a, b;
    const char *op = n->op_type;
    if (n->n_input < 1 || !load(m, n->input[0], &a)) return false;
    if (strcmp(op, "Cast") == 0) {
        const int64_t to = cv_onnx_attr_int(n, "to", 0);
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return false;
        *out = a;
        out->is_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        return true;
    }
    if (strcmp(op, "ConstantOfShape") == 0) {
        const Onnx__AttributeProto *v = cv_onnx_attr(n, "value");
        small fill = {.n = 1, .is_float = true, .v = {0}};
        if (v && v->t) {
            const Onnx__TensorProto *t = v->t;
            if (cv_onnx_tensor_count(t) != 1 || t->n_dims > 1) return false;
            fill.is_float = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
            int64_t iv;
            int c;
            float *f;
            int64_t fc;
            if (fill.is_float ? cv_onnx_tensor_floats(t, "", &f, &fc, NULL) : cv_onnx_tensor_ints(t, "", &iv, 1, &c, NULL)) return false;
            fill.v[0] = fill.is_float ? (double)f[0] : (double)iv;
            if (fill.is_float) free(f);
        }
        if (a.rank != 1 || a.n > 2) return false;
        out->rank = (int)a.n, out->n = 1, out->is_float = fill.is_float;
        for (int i = 0; i < out->rank; i++) out->dims[i] = (int64_t)a.v[i], out->n *= out->dims[i];
        if (out->n < 0 || out->n > FOLD_MAX) return false;
        for (int64_t i = 0; i < out->n; i++) out->v[i] = fill.v[0];
        return true;
    }
    if (strcmp(op, "Concat") == 0) {
        *out = a;
        if (a.rank != 1) return false;
        for (size_t i = 1; i < n->n_input; i++) {
            if (!load(m, n->input[i], &b) || b.rank != 1 || out->n + b.n > FOLD_MAX) return false;
            memcpy(out->v + out->n, b.v, sizeof(double) * (size_t)b.n);
            out->n += b.n;
        }
        out->dims[0] = out->n;
        return true;
    }
    if (strcmp(op, "Reshape") == 0) {
        if (n->n_input < 2 || !load(m, n->input[1], &b) || b.rank != 1 || b.n < 1 || b.n > 2) return false;
        *out = a;
        out->rank = (int)b.n;
        int64_t known = 1, free_axis = -1;
        for (int i = 0; i < out->rank; i++) {
            const int64_t d = (int64_t)b.v[i];
            out->dims[i] = d == 0 && i < a.rank ? a.dims[i] : d;
            if (out->dims[i] == -1) free_axis = i;
            else known *= out->dims[i];
        }
        if (free_axis >= 0) out->dims[free_axis] = known ? a.n / known : 0;
        return out->rank == 1 ? out->dims[0] == a.n : out->dims[0] * out->dims[1] == a.n;
    }
    if (strcmp(op, "Transpose") == 0) {
        if (a.rank != 2) return false;
        out->rank = 2, out->n = a.n, out->is_float = a.is_float;
        out->dims[0] = a.dims[1], out->dims[1] = a.dims[0];
        for (int64_t i = 0; i < a.dims[0]; i++)
            for (int64_t j = 0; j < a.dims[1]; j++) out->v[j * a.dims[0] + i] = a.v[i * a.dims[1] + j];
        return true;
    }
    if (strcmp(op, "Slice") == 0) { /* starts, ends, axes, steps: one axis */
        small st, en, ax, sp = {.n = 1, .v = {1}};
        if (n->n_input < 3 || !load(m, n->input[1], &st) || !load(m, n->input[2], &en) || st.n != 1 || en.n != 1) return false;
        int64_t axis = 0;
        if (n->n_input > 3 && n->input[3][0]) {
            if (!load(m, n->input[3], &ax) || ax.n != 1) return false;
            axis = (int64_t)ax.v[0];
        }
        if (n->n_input > 4 && n->input[4][0] && (!load(m, n->input[4], &sp) || sp.n != 1 || sp.v[0] == 0)) return false;
        if (axis < 0) axis += a.rank;
        if (axis < 0 || axis >= a.rank) return false;
        const int64_t len = a.dims[axis], step = (int64_t)sp.v[0];
        int64_t s = (int64_t)st.v[0], e = en.v[0] > 1e18 ? len : en.v[0] < -1e18 ? -len - 1 : (int64_t)en.v[0];
        if (s < 0) s += len;
        if (e < 0) e += len;
        s = step > 0 ? (s < 0 ? 0 : s > len ? len : s) : (s < 0 ? -1 : s > len - 1 ? len - 1 : s);
        e = step > 0 ? (e < 0 ? 0 : e > len ? len : e) : (e < -1 ? -1 : e > len - 1 ? len - 1 : e);
        int64_t idx[FOLD_MAX], k = 0;
        for (int64_t i = s; step > 0 ? i < e : i > e; i += step) idx[k++] = i;
        const int64_t inner = a.rank == 2 && axis == 0 ? a.dims[1] : 1, outer = a.rank == 2 && axis == 1 ? a.dims[0] : 1;
        *out = a;
        out->dims[axis] = k;
        out->n = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < k; j++)
                for (int64_t i = 0; i < inner; i++)
                    out->v[out->n++] = a.v[(o * len + idx[j]) * inner + i];
        return true;
    }
    return false;
}

static Onnx__TensorProto *tensor(const small *s)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    int64_t *dims = calloc(2, sizeof *dims);
    void *data = calloc((size_t)(s->n ? s->n : 1), s->is_float ? sizeof(float) : sizeof(int64_t));
    if (!t || !dims || !data) return free(t), free(dims), free(data), NULL;
    onnx__tensor_proto__init(t);
    t->n_dims = (size_t)s->rank, t->dims = dims;
    for (int i = 0; i < s->rank; i++) dims[i] = s->dims[i];
    t->has_data_type = 1;
    t->data_type = s->is_float ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    for (int64_t i = 0; i < s->n; i++)
        if (s->is_float) ((float *)data)[i] = (float)s->v[i];
        else ((int64_t *)data)[i] = (int64_t)s->v[i];
    if (s->is_float) t->n_float_data = (size_t)s->n, t->float_data = data;
    else t->n_int64_data = (size_t)s->n, t->int64_data = data;
    return t;
}

int ox_fold_constants(imp *m)
{
    static small out;
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < m->g->n_node; i++) {
            const Onnx__NodeProto *n = m->g->node[i];
            if (m->done[i] || n->n_output != 1 || !eval(m, n, &out)) continue;
            Onnx__TensorProto *t = tensor(&out);
            if (!t) return cv_errf(m->err, "out of memory");
            m->folded[m->n_folded++] = t;
            m->const_name[m->n_const] = n->output[0], m->const_t[m->n_const++] = t;
            m->done[i] = true;
            more = true;
        }
    }
    return 0;
}

void ox_fold_free(imp *m)
{
    for (int i = 0; i < m->n_folded; i++) {
        Onnx__TensorProto *t = m->folded[i];
        free(t->dims), free(t->float_data), free(t->int64_data), free(t);
    }
    free(m->folded);
}
