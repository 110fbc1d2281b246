/* ONNX import: the graph walk from the data input to the output, residual blocks (two branches
 * from one tensor meeting in an Add), the model text and the network with the ONNX weights, and
 * `convoy import onnx` (its two files are import-write.c's). The nodes themselves are onnx-ops.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/interop.h"
#include "interop/import-write.h"
#include "interop/onnx-import.h"

static const Onnx__NodeProto *single(const imp *m, const char *v)
{
    const Onnx__NodeProto *c;
    return ox_consumers(m, v, &c, 1) == 1 && !ox_is_graph_output(m, v) ? c : NULL;
}

static bool two_value_add(const imp *m, const Onnx__NodeProto *a)
{
    return a && strcmp(a->op_type, "Add") == 0 && a->n_input == 2 && !ox_constant(m, a->input[0]) &&
           !ox_constant(m, a->input[1]);
}

static const Onnx__NodeProto *producer(const imp *m, const char *v)
{
    for (size_t i = 0; i < m->g->n_node; i++)
        for (size_t j = 0; j < m->g->node[i]->n_output; j++)
            if (strcmp(m->g->node[i]->output[j], v) == 0) return m->g->node[i];
    return NULL;
}

/* value v feeds k nodes c[] in a way convoy has no layer for */
static int fork_fail(imp *m, const char *v, int k, const Onnx__NodeProto *const *c, const char *why)
{
    char list[300] = "";
    for (int i = 0; i < k && i < 3; i++) {
        const size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s'%s' (%s)", i ? ", " : "", ox_node_name(c[i]), c[i]->op_type);
    }
    const Onnx__NodeProto *p = producer(m, v);
    char who[300];
    if (p) snprintf(who, sizeof who, "node '%s' (%s): its output", ox_node_name(p), p->op_type);
    else snprintf(who, sizeof who, "graph input '%s'", v);
    return cv_errf(m->err, "%s: %s feeds %d node%s (%s%s): %s", m->path, who, k, k == 1 ? "" : "s", list,
                   k > 3 ? ", ..." : "", why);
}

static const char chains[] = "convoy imports chains of layers, and residual blocks (a branch and the block's input, or a "
                             "1x1 Conv of it, meeting in an Add)";

static int walk(imp *m, const char *v, const Onnx__NodeProto *stop, const char **out);

/* the shortcut's 1x1 Conv (and the BatchNormalization after it, folded in) as the `end` layer's
 * kernel (1, 1, C, C') and bias, the stride checked against the one convoy derives from the
 * shapes */
static int projection(imp *m, const Onnx__NodeProto *pc, const Onnx__NodeProto *bn, int H, int W, int C, int L)
{
    float *w, *b = NULL, *s[4] = {NULL};
    int64_t dims[CV_ONNX_MAX_RANK], n, nb;
    int r, rc = 0;
    int64_t st[8] = {1, 1}, pads[8] = {0};
    cv_onnx_attr_ints(pc, "strides", st, 8);
    const int np = cv_onnx_attr_ints(pc, "pads", pads, 8);
    if (ox_const_floats(m, pc, 1, "weights", &w, &n, dims, &r)) return -1;
    const int O = r == 4 ? (int)dims[0] : 0;
    char ap[32];
    cv_onnx_attr_str(pc, "auto_pad", ap, sizeof ap);
    if (r != 4 || dims[1] != C || dims[2] != 1 || dims[3] != 1 || cv_onnx_attr_int(pc, "group", 1) != 1 || O != m->c)
        rc = ox_fail(m, pc, "a shortcut Conv other than 1x1 from %d to %d channels: convoy's projection shortcut is a 1x1 "
                     "conv2d", C, m->c);
    for (int i = 0; i < np && i < 4 && !rc; i++)
        if (pads[i]) rc = ox_fail(m, pc, "a padded shortcut Conv: convoy's projection shortcut has no padding");
    for (int a = 0; a < 2 && !rc; a++) {
        const int in = a ? W : H, outn = a ? m->wd : m->h, conv = outn > 0 ? (in + outn - 1) / outn : 0;
        if (st[a] != conv)
            rc = ox_fail(m, pc, "stride %lld on a shortcut from %d to %d cells: convoy's projection takes stride %d there",
                         (long long)st[a], in, outn, conv);
    }
    if (!rc && (ap[0] && strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0))
        rc = ox_fail(m, pc, "auto_pad=%s on a shortcut Conv: convoy's projection shortcut has no padding", ap);
    if (!rc && pc->n_input > 2 && pc->input[2][0] && ox_const_floats(m, pc, 2, "bias", &b, &nb, dims, &r)) rc = -1;
    if (!rc && b && nb != O) rc = ox_fail(m, pc, "a bias of %lld values for %d filters", (long long)nb, O);
    if (!rc && !b && !(b = cv_calloc((size_t)O, sizeof(float), "shortcut bias", m->err))) rc = -1;
    static const char *const what[4] = {"scale", "bias", "mean", "var"};
    for (int i = 0; i < 4 && bn && !rc; i++) {
        if (ox_const_floats(m, bn, i + 1, what[i], &s[i], &n, dims, &r)) rc = -1;
        else if (n != O) rc = ox_fail(m, bn, "its %s has %lld values for %d channels", what[i], (long long)n, O);
    }
    float *K = rc ? NULL : cv_malloc(sizeof(float) * (size_t)C * O, "shortcut kernel", m->err);
    if (K) {
        const float eps = bn ? cv_onnx_attr_float(bn, "epsilon", 1e-5f) : 0;
        for (int o = 0; o < O; o++) {
            const float g = bn ? s[0][o] / sqrtf(s[3][o] + eps) : 1.0f;
            for (int c = 0; c < C; c++) K[(int64_t)c * O + o] = g * w[(int64_t)o * C + c];
            if (bn) b[o] = (b[o] - s[2][o]) * g + s[1][o];
        }
        ox_keep(m, L, 0, K, (int64_t)C * O);
        ox_keep(m, L, 1, b, O);
        b = NULL;
    }
    free(w), free(b);
    for (int i = 0; i < 4; i++) free(s[i]);
    return K ? 0 : -1;
}

/* a dense block's shortcut Gemm (B (out, in) with transB=1, or (in, out)) from D to m->d units as
 * the `end` layer's kernel (D, m->d) and bias */
static int dense_projection(imp *m, const Onnx__NodeProto *g, int D, int L)
{
    float *w, *b = NULL;
    int64_t dims[CV_ONNX_MAX_RANK], n, nb;
    int r;
    if (ox_const_floats(m, g, 1, "weights B", &w, &n, dims, &r)) return -1;
    const bool tb = cv_onnx_attr_int(g, "transB", 0) != 0;
    const int O = m->d;
    int rc = 0;
    if (r != 2 || dims[tb ? 1 : 0] != D || dims[tb ? 0 : 1] != O || cv_onnx_attr_int(g, "transA", 0) ||
        cv_onnx_attr_float(g, "alpha", 1) != 1 || cv_onnx_attr_float(g, "beta", 1) != 1)
        rc = ox_fail(m, g, "a shortcut Gemm other than (N, %d) x (%d, %d) + bias: convoy's projection shortcut is a "
                     "dense layer", D, D, O);
    if (!rc && ox_has_input(g, 2) && ox_const_floats(m, g, 2, "bias", &b, &nb, dims, &r)) rc = -1;
    if (!rc && b && nb != O) rc = ox_fail(m, g, "a bias of %lld values for %d units", (long long)nb, O);
    if (!rc && !b && !(b = cv_calloc((size_t)O, sizeof(float), "shortcut bias", m->err))) rc = -1;
    float *K = rc ? NULL : cv_malloc(sizeof(float) * (size_t)D * O, "shortcut kernel", m->err);
    if (K) {
        for (int i = 0; i < D; i++)
            for (int o = 0; o < O; o++) K[(int64_t)i * O + o] = tb ? w[(int64_t)o * D + i] : w[(int64_t)i * O + o];
        ox_keep(m, L, 0, K, (int64_t)D * O);
        ox_keep(m, L, 1, b, O);
        b = NULL;
    }
    free(w), free(b);
    return K ? 0 : -1;
}

/* option A's shortcut as convoy's export writes it: a Slice taking every st-th row and column
 * (axes 2, 3 from 0), then a Pad of zero channels, either left out; *last the node whose output
 * goes to the Add, st[] and pads[] (channels before, after) what they hold; false when a is no
 * such node */
static bool zeropad_nodes(const imp *m, const Onnx__NodeProto *a, const Onnx__NodeProto **last, int st[2], int pads[2])
{
    st[0] = st[1] = 1, pads[0] = pads[1] = 0;
    *last = NULL;
    if (strcmp(a->op_type, "Slice") == 0) {
        int64_t v[4][4];
        int n[4];
        const Onnx__TensorProto *t[4];
        for (int i = 0; i < 4; i++) /* starts, ends, axes, steps */
            if (a->n_input != 5 || !(t[i] = ox_constant(m, a->input[i + 1])) ||
                cv_onnx_tensor_ints(t[i], "slice", v[i], 4, &n[i], NULL) || n[i] != 2)
                return false;
        const int size[2] = {m->h, m->wd};
        for (int i = 0; i < 2; i++)
            if (v[0][i] || v[2][i] != i + 2 || v[1][i] < size[i] || v[3][i] < 1 || v[3][i] > 4096) return false;
        st[0] = (int)v[3][0], st[1] = (int)v[3][1];
        *last = a;
        a = single(m, a->output[0]);
        if (!a) return false;
    }
    if (strcmp(a->op_type, "Pad") == 0) {
        char mode[32];
        int64_t p[8];
        int np;
        const Onnx__TensorProto *t = a->n_input == 2 ? ox_constant(m, a->input[1]) : NULL;
        cv_onnx_attr_str(a, "mode", mode, sizeof mode);
        const int r = m->kind == L_IMAGE ? 8 : 4;
        if (m->opset < 11 || (mode[0] && strcmp(mode, "constant") != 0) || !t ||
            cv_onnx_tensor_ints(t, "pads", p, 8, &np, NULL) || np != r)
            return false;
        for (int i = 0; i < r; i++)
            if ((i % (r / 2) != 1 && p[i]) || p[i] < 0 || p[i] > (1 << 20)) return false;
        pads[0] = (int)p[1], pads[1] = (int)p[r / 2 + 1];
        *last = a;
    }
    return *last != NULL;
}

/* v feeds two nodes c[0], c[1]: a residual block when one of them is the Add that closes it (an
 * identity shortcut), a 1x1 Conv (optionally batch-normalised) whose output goes to it, or the
 * Slice and Pad of option A's zero-padding shortcut */
static int residual(imp *m, const char *v, const Onnx__NodeProto *const c[2], const char **out)
{
    const Onnx__NodeProto *join = NULL, *pc = NULL, *pbn = NULL, *branch = NULL, *za = NULL, *zl = NULL;
    int zst[2] = {1, 1}, zpad[2] = {0, 0};
    for (int i = 0; i < 2 && !join; i++) /* an identity shortcut first: a branch may be one 1x1 Conv */
        if (two_value_add(m, c[i])) join = c[i], branch = c[1 - i];
    for (int i = 0; i < 2 && !join; i++) {
        const Onnx__NodeProto *nx;
        if (zeropad_nodes(m, c[i], &zl, zst, zpad) && two_value_add(m, nx = single(m, zl->output[0])))
            join = nx, za = c[i], branch = c[1 - i];
    }
    const bool vec = m->kind == L_VECTOR && m->onnx_rank == 2; /* a dense block */
    /* two 1x1 Convs (Gemms) into the Add: convoy's export names the shortcut's ".../shortcut" */
    const size_t l1 = strlen(ox_node_name(c[1]));
    const int first = l1 >= 9 && strcmp(ox_node_name(c[1]) + l1 - 9, "/shortcut") == 0;
    for (int j = 0; j < 2 && !join; j++) {
        const Onnx__NodeProto *a = c[j ^ first];
        const int i = j ^ first;
        if (strcmp(a->op_type, vec ? "Gemm" : "Conv") == 0) {
            const Onnx__NodeProto *nx = single(m, a->output[0]), *bn = NULL;
            if (nx && strcmp(nx->op_type, "BatchNormalization") == 0) bn = nx, nx = single(m, bn->output[0]);
            if (two_value_add(m, nx)) join = nx, pc = a, pbn = bn, branch = c[1 - i];
        }
    }
    if (!join || (m->kind != L_IMAGE && !vec) || (vec && pbn)) return fork_fail(m, v, 2, c, chains);
    if (m->n >= CV_MAX_LAYERS - 1) return ox_fail(m, join, "more than the %d layers a convoy model may have", CV_MAX_LAYERS - 1);
    const int H = m->h, W = m->wd, C = m->c, D = m->d;
    ox_line(m, false, pc ? "residual shortcut=projection" : "residual");
    const char *bv;
    if (ox_translate(m, branch, &bv) || walk(m, bv, join, &bv)) return -1;
    const char *sv = pc ? (pbn ? pbn->output[0] : pc->output[0]) : za ? zl->output[0] : v;
    const bool ok = (strcmp(join->input[0], bv) == 0 && strcmp(join->input[1], sv) == 0) ||
                    (strcmp(join->input[1], bv) == 0 && strcmp(join->input[0], sv) == 0);
    if (!ok) return ox_fail(m, join, "its inputs are not one branch's output and the block's shortcut: %s", chains);
    if (vec && (m->kind != L_VECTOR || m->onnx_rank != 2 || (m->d != D && !za && !pc)))
        return ox_fail(m, join, "it adds a block's output of another shape to its (N, %d) input", D);
    if (!vec && m->kind != L_IMAGE) return ox_fail(m, join, "the block's branch ends in a vector: convoy's blocks add maps");
    if (za) { /* convoy's zero-padding shortcut: the stride it derives, (C' - C) / 2 channels before */
        const int want[2] = {vec ? 1 : (H + m->h - 1) / m->h, vec ? 1 : (W + m->wd - 1) / m->wd}, C2 = vec ? m->d : m->c;
        const int have = vec ? D : C;
        if (zst[0] != want[0] || zst[1] != want[1] || zpad[0] != (C2 - have) / 2 || zpad[0] + zpad[1] != C2 - have ||
            (!vec && ((H + zst[0] - 1) / zst[0] != m->h || (W + zst[1] - 1) / zst[1] != m->wd)))
            return ox_fail(m, za, "a shortcut taking every %d,%d-th cell with %d,%d zero channels to a block's output of "
                           "%d channels: convoy's zero-padding shortcut takes stride ceil(H/H') and (C' - C) / 2 zero "
                           "channels before", zst[0], zst[1], zpad[0], zpad[1], C2);
        for (const Onnx__NodeProto *z = za; z != join; z = single(m, z->output[0])) ox_mark(m, z);
    } else if (!vec && !pc && (H != m->h || W != m->wd || C != m->c))
        return ox_fail(m, join, "it adds a %dx%dx%d map (C, H, W) to the block's %dx%dx%d input: an identity shortcut "
                       "needs the same shape (convoy would need the shortcut's 1x1 Conv)", m->c, m->h, m->wd, C, H, W);
    if (m->edge_pad) return ox_fail(m, m->edge_pad, "an edge Pad must feed a Conv");
    ox_mark(m, join);
    if (pc) ox_mark(m, pc);
    if (pbn) ox_mark(m, pbn);
    const int L = ox_line(m, false, "end");
    if (pc && (vec ? dense_projection(m, pc, D, L) : projection(m, pc, pbn, H, W, C, L))) return -1;
    *out = join->output[0];
    return 0;
}

static int walk(imp *m, const char *v, const Onnx__NodeProto *stop, const char **out)
{
    for (;;) {
        if (stop && (strcmp(stop->input[0], v) == 0 || strcmp(stop->input[1], v) == 0)) {
            *out = v;
            return 0;
        }
        const Onnx__NodeProto *c[4];
        const int k = ox_consumers(m, v, c, 4);
        if (k == 0) {
            *out = v;
            return stop ? ox_fail(m, stop, "the block's branch ends before this Add: %s", chains) : 0;
        }
        if (ox_is_graph_output(m, v))
            return fork_fail(m, v, k, c, "it is also a graph output: convoy's model has one output, its last layer's");
        if (k == 1 && two_value_add(m, c[0]))
            return ox_fail(m, c[0], "an Add of two computed tensors that closes no block: %s", chains);
        if (k > 2) return fork_fail(m, v, k, c, chains);
        if (k == 2 ? residual(m, v, c, &v) : ox_translate(m, c[0], &v)) return -1;
    }
}

/* the constants: initializers, bound inputs (binds[i] for graph input i + 1) and Constant nodes */
static int constants(imp *m, Onnx__TensorProto **bound, int n_binds)
{
    const Onnx__GraphProto *g = m->g;
    const size_t max = g->n_initializer + (size_t)n_binds + 2 * g->n_node;
    m->const_name = cv_calloc(max + 1, sizeof *m->const_name, "ONNX constants", m->err);
    m->const_t = cv_calloc(max + 1, sizeof *m->const_t, "ONNX constants", m->err);
    m->folded = cv_calloc(g->n_node + 1, sizeof *m->folded, "ONNX constants", m->err);
    if (!m->const_name || !m->const_t || !m->folded) return -1;
    for (size_t i = 0; i < g->n_initializer; i++)
        m->const_name[m->n_const] = g->initializer[i]->name ? g->initializer[i]->name : "", m->const_t[m->n_const++] = g->initializer[i];
    for (int i = 0; i < n_binds; i++) {
        if ((size_t)i + 1 >= g->n_input)
            return cv_errf(m->err, "%s: %d tensors to bind, the graph has %zu inputs after its first", m->path, n_binds,
                           g->n_input ? g->n_input - 1 : 0);
        m->const_name[m->n_const] = g->input[i + 1]->name, m->const_t[m->n_const++] = bound[i];
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (strcmp(n->op_type, "Constant") != 0) continue;
        const Onnx__AttributeProto *a = cv_onnx_attr(n, "value");
        if (!a || !a->t || n->n_output != 1)
            return ox_fail(m, n, "a Constant without a tensor value= (convoy reads tensor constants only)");
        m->const_name[m->n_const] = n->output[0], m->const_t[m->n_const++] = a->t;
        m->done[i] = true;
    }
    return ox_fold_constants(m);
}

/* the data input (the graph input no constant gives): its layout, and the model's input line */
static int data_input(imp *m, cv_onnx_info *info, const char **v)
{
    const Onnx__GraphProto *g = m->g;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        if (ox_constant(m, g->input[i]->name)) continue;
        if (in)
            return cv_errf(m->err, "%s: graph inputs '%s' and '%s': convoy's model has one input (the others must be "
                           "initializers)", m->path, in->name, g->input[i]->name);
        in = g->input[i];
    }
    if (!in) return cv_errf(m->err, "%s: the graph has no input that is not an initializer", m->path);
    const Onnx__TypeProto *t = in->type;
    const Onnx__TypeProto__Tensor *tt = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? t->tensor_type : NULL;
    if (!tt || !tt->shape)
        return cv_errf(m->err, "%s: graph input '%s' is not a tensor of known shape", m->path, in->name);
    if (tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cv_errf(m->err, "%s: graph input '%s' is of data type %d, not float32 (1): convoy's inputs are float32",
                       m->path, in->name, (int)tt->elem_type);
    const int r = (int)tt->shape->n_dim;
    int64_t d[CV_ONNX_MAX_RANK] = {0};
    if (r < 1 || r > CV_ONNX_MAX_RANK) return cv_errf(m->err, "%s: graph input '%s' has rank %d", m->path, in->name, r);
    for (int i = 0; i < r; i++) {
        const Onnx__TensorShapeProto__Dimension *x = tt->shape->dim[i];
        d[i] = x->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && x->dim_value > 0 ? x->dim_value : -1;
        if (i && (d[i] < 1 || d[i] > (1 << 24)))
            return cv_errf(m->err, "%s: graph input '%s' has a dynamic or unusual size in dimension %d%s: convoy needs "
                           "each sample's shape fixed (export with a fixed input size)", m->path, in->name, i,
                           r == 4 && i >= 2 ? " (H or W)" : "");
    }
    m->batch = d[0];
    m->onnx_rank = r;
    *v = in->name;
    const Onnx__NodeProto *tr = r == 4 ? single(m, in->name) : NULL;
    int64_t perm[8];
    if (tr && strcmp(tr->op_type, "Transpose") == 0 && cv_onnx_attr_ints(tr, "perm", perm, 8) == 4 && perm[0] == 0 &&
        perm[1] == 3 && perm[2] == 1 && perm[3] == 2) { /* an (N, H, W, C) input made NCHW: convoy's layout already */
        m->kind = L_IMAGE, m->h = (int)d[1], m->wd = (int)d[2], m->c = (int)d[3];
        m->in_nhwc = true;
        ox_mark(m, tr);
        *v = tr->output[0];
    } else if (r == 4) {
        m->kind = L_IMAGE, m->c = (int)d[1], m->h = (int)d[2], m->wd = (int)d[3];
    } else {
        int64_t n = 1;
        for (int i = 1; i < r; i++) n *= d[i];
        if (n > (1 << 28)) return cv_errf(m->err, "%s: graph input '%s': %lld values per sample", m->path, in->name, (long long)n);
        m->kind = r == 2 ? L_VECTOR : L_RAW, m->d = (int)n;
    }
    info->in_image = m->kind == L_IMAGE;
    if (m->kind == L_IMAGE) snprintf(m->shape, sizeof m->shape, "%d,%d,%d", m->h, m->wd, m->c);
    else snprintf(m->shape, sizeof m->shape, "%d", m->d);
    return 0;
}

/* the model file: where it came from, the input line, the layers and compile (body) */
static char *model_text(const imp *m, const Onnx__ModelProto *mp, const char *body)
{
    const char *base = strrchr(m->path, '/'), *prod = mp->producer_name && mp->producer_name[0] ? mp->producer_name : "";
    const char *ver = mp->producer_version ? mp->producer_version : "";
    const size_t size = strlen(m->path) + strlen(prod) + strlen(ver) + strlen(body) + 256;
    char *t = malloc(size);
    if (t)
        snprintf(t, size, "# imported by `convoy import onnx` from %s (%s%s%s, opset %lld)\ninput     shape=%s normalize=%s\n%s",
                 base ? base + 1 : m->path, prod[0] ? prod : "unknown producer", ver[0] ? " " : "", ver,
                 (long long)m->opset, m->shape, m->scaled ? "scale" : m->norm_dim ? "standardize" : "none", body);
    return t;
}

static int64_t ai_onnx_opset(const Onnx__ModelProto *mp)
{
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0) && o->has_version) return o->version;
    }
    return 1;
}

cv_net *cv_onnx_load(const char *path, const char *const *binds, int n_binds, const char *name, int max_batch,
                     cv_onnx_info *info, cv_err *err)
{
    cv_onnx_info dummy;
    info = info ? info : &dummy;
    memset(info, 0, sizeof *info);
    Onnx__ModelProto *mp = cv_onnx_model_read(path, err);
    if (!mp) return NULL;
    Onnx__TensorProto **bound = n_binds ? cv_calloc((size_t)n_binds, sizeof *bound, "bound inputs", err) : NULL;
    imp *m = cv_calloc(1, sizeof *m, "ONNX import", err);
    char *text = NULL;
    size_t len = 0;
    cv_net *net = NULL;
    int rc = !m || (n_binds && !bound) ? -1 : 0;
    for (int i = 0; i < n_binds && !rc; i++)
        if (!(bound[i] = cv_onnx_tensor_file(binds[i], err))) rc = -1;
    if (!rc) {
        m->by_convoy = mp->producer_name && strcmp(mp->producer_name, "convoy") == 0;
        m->path = path, m->g = mp->graph, m->opset = info->opset = ai_onnx_opset(mp), m->err = err;
        m->done = cv_calloc(mp->graph->n_node + 1, sizeof *m->done, "ONNX import", err);
        m->text = open_memstream(&text, &len);
        rc = !m->done || !m->text ? cv_errf(err, "out of memory") : 0;
    }
    const char *v = NULL;
    if (!rc) rc = constants(m, bound, n_binds) || data_input(m, info, &v) || walk(m, v, NULL, &v) ? -1 : 0;
    if (!rc && (mp->graph->n_output != 1 || strcmp(mp->graph->output[0]->name, v) != 0))
        rc = cv_errf(err, "%s: the chain ends at '%s', but the graph's output%s %s'%s': convoy's model has one output, its "
                     "last layer's", path, v, mp->graph->n_output == 1 ? " is" : "s are", mp->graph->n_output > 1 ? "" : "",
                     mp->graph->n_output ? mp->graph->output[0]->name : "(none)");
    if (!rc && m->flat)
        rc = ox_fail(m, m->flat, "a Flatten of a %dx%dx%d map (C, H, W) that no dense layer reads: convoy flattens in "
                     "(h, w, c) order, ONNX in (c, h, w)", m->fc, m->fh, m->fw);
    if (!rc && m->edge_pad) rc = ox_fail(m, m->edge_pad, "an edge Pad must feed a Conv");
    if (!rc && m->mean && !m->std)
        rc = ox_fail(m, m->center, "a Sub of per-feature constants without a Div after it: convoy's input normalize="
                     "standardize is (x - mean) / std");
    if (!rc && m->mean && info->in_image && !m->in_nhwc)
        rc = ox_fail(m, m->center, "per-feature constants on an (N, C, H, W) input: convoy's normalize=standardize holds "
                     "them in (h, w, c) order, before an (N, H, W, C) input's Transpose");
    if (!rc && m->nhwc) rc = ox_fail(m, m->nhwc, "a Transpose to (N, H, W, C) must feed a Flatten");
    for (size_t i = 0; !rc && i < mp->graph->n_node; i++)
        if (!m->done[i]) rc = ox_fail(m, mp->graph->node[i], "not on the chain from the graph's input to its output");
    if (!rc && m->n >= CV_MAX_LAYERS - 1)
        rc = cv_errf(err, "%s: more than the %d layers a convoy model may have", path, CV_MAX_LAYERS - 1);
    info->in_nhwc = m && m->in_nhwc;
    if (!rc && m->std && info != &dummy) /* the normaliser's statistics, for the checkpoint */
        info->mean = m->mean, info->std = m->std, info->norm_dim = m->norm_dim, m->mean = m->std = NULL;
    if (!rc) { /* convoy's output is flat: a map comes out in (h, w, c) order */
        info->out_image = m->kind == L_IMAGE;
        info->out_h = m->h, info->out_w = m->wd, info->out_c = m->c;
        if (m->kind == L_IMAGE) ox_line(m, false, "flatten");
        if (m->logits) /* convoy's own export of a from_logits classifier: its loss comes back */
            fprintf(m->text, "\ncompile   optimizer=adam learning_rate=0.001 loss=%s from_logits=true metrics=accuracy\n",
                    m->line_units == 1 ? "binary_crossentropy" : "sparse_categorical_crossentropy");
        else
            cv_import_compile_line(m->text, m->line_act, m->line_units, m->kind == L_VECTOR ? m->d : 0);
    }
    if (m && m->text && fclose(m->text) && !rc) rc = cv_errf(err, "out of memory");
    char *full = rc ? NULL : model_text(m, mp, text);
    if (!rc && !full) rc = cv_errf(err, "out of memory");
    if (!rc) net = cv_import_net(path, full, name, max_batch, err);
    if (net && cv_import_put(net, path, m->w, err)) cv_net_free(net), net = NULL;
    free(text), free(full);
    for (int l = 0; m && l < CV_MAX_LAYERS; l++)
        for (int s = 0; s < 3; s++) free(m->w[l].v[s]);
    if (m) ox_fold_free(m), free(m->mean), free(m->std), free(m->done), free(m->const_name), free((void *)m->const_t);
    free(m);
    for (int i = 0; bound && i < n_binds; i++)
        if (bound[i]) onnx__tensor_proto__free_unpacked(bound[i], NULL);
    free(bound);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (!net) cv_import_clean_msg(err);
    return net;
}

int cv_onnx_import(const char *path, const char *dir, int *layers, int64_t *params, cv_err *err)
{
    char model[4096];
    if (snprintf(model, sizeof model, "%s/model.model", dir) >= (int)sizeof model) return cv_errf(err, "%s: path too long", dir);
    cv_onnx_info info = {0};
    cv_net *net = cv_onnx_load(path, NULL, 0, model, 1, &info, err); /* (before info is read) */
    const int rc = cv_import_save(dir, net, info.mean, info.std, layers, params, err);
    free(info.mean), free(info.std);
    return rc;
}
