/* ONNX import's dense layers: Gemm, and MatMul with the Add of its bias, become convoy's dense
 * (B transposed to (in, out), its rows permuted where ONNX flattened a (c, h, w) map and convoy
 * flattens (h, w, c)); Flatten and Reshape to (N, values) before them. The other operators are
 * onnx-ops.c's. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop/onnx-import.h"

static int need_vector(imp *m, const Onnx__NodeProto *n)
{
    char s[64];
    if (m->kind == L_VECTOR && m->onnx_rank == 2) return 0;
    return ox_fail(m, n, "its input %s is not an (N, D) matrix: convoy's dense layer takes each sample's vector "
                   "(a Flatten first)", ox_shape_str(m, s, sizeof s));
}

/* ONNX's index of flatten element (c, y, x) of an (h, w, c) map read (c, h, w); convoy reads
 * (h, w, c): the dense kernel's row for ONNX row k */
static int64_t convoy_row(const imp *m, int64_t k)
{
    if (!m->flat) return k;
    const int64_t hw = (int64_t)m->fh * m->fw, c = k / hw, yx = k % hw;
    return yx * m->fc + c;
}

/* a dense layer of kernel (K, M) = scale * B (transposed when tb) and bias from C */
static int dense(imp *m, const Onnx__NodeProto *n, const float *Bv, int64_t K, int64_t M, bool tb, float scale,
                 float *bias, const char **out)
{
    float *Kv = cv_malloc(sizeof(float) * (size_t)(K * M), "dense kernel", m->err);
    if (!Kv) return free(bias), -1;
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < M; j++)
            Kv[convoy_row(m, k) * M + j] = scale * (tb ? Bv[j * K + k] : Bv[k * M + j]);
    m->flat = NULL;
    const int L = ox_line(m, true, "dense units=%lld%s", (long long)M, bias ? "" : " use_bias=false");
    m->line_units = (int)M;
    ox_keep(m, L, 0, Kv, K * M);
    if (bias) ox_keep(m, L, 1, bias, M);
    m->d = (int)M;
    *out = n->output[0];
    return 0;
}

/* a bias for M units from a constant broadcast over the rows: (), (1), (M) or (1, M) */
static int dense_bias(imp *m, const Onnx__NodeProto *n, int i, int64_t M, float scale, float **bias)
{
    float *c;
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r;
    if (ox_const_floats(m, n, i, "bias", &c, &cnt, dims, &r)) return -1;
    const bool row = r <= 1 || (r == 2 && dims[0] == 1);
    if (!row || (cnt != 1 && cnt != M)) {
        free(c);
        return ox_fail(m, n, "a bias of shape %lldx%lld (one per sample): convoy's dense bias is one per unit (shape (%lld) "
                       "or (1, %lld))", (long long)(r == 2 ? dims[0] : cnt), (long long)(r == 2 ? dims[1] : 1), (long long)M,
                       (long long)M);
    }
    float *b = cv_malloc(sizeof(float) * (size_t)M, "dense bias", m->err);
    if (!b) return free(c), -1;
    for (int64_t j = 0; j < M; j++) b[j] = scale * c[cnt == 1 ? 0 : j];
    free(c);
    *bias = b;
    return 0;
}

int ox_gemm(imp *m, const Onnx__NodeProto *n, const char **out)
{
    if (need_vector(m, n)) return -1;
    if (cv_onnx_attr_int(n, "transA", 0))
        return ox_fail(m, n, "transA=1 (the batch transposed): convoy's dense layer multiplies each sample's vector");
    float *B, *bias = NULL;
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r;
    if (ox_const_floats(m, n, 1, "weights B", &B, &cnt, dims, &r)) return -1;
    const bool tb = cv_onnx_attr_int(n, "transB", 0) != 0;
    const int64_t K = r == 2 ? dims[tb ? 1 : 0] : 0, M = r == 2 ? dims[tb ? 0 : 1] : 0;
    if (r != 2 || K != m->d) {
        free(B);
        return ox_fail(m, n, "weights B of rank %d%s for an input of %d features", r, r == 2 ? " with another inner size" : "", m->d);
    }
    const float alpha = cv_onnx_attr_float(n, "alpha", 1.0f), beta = cv_onnx_attr_float(n, "beta", 1.0f);
    if (ox_has_input(n, 2) && dense_bias(m, n, 2, M, beta, &bias)) return free(B), -1;
    const int rc = dense(m, n, B, K, M, tb, alpha, bias, out);
    free(B);
    return rc;
}

static bool is_const_add(const imp *m, const Onnx__NodeProto *a, const char *v)
{
    return a && strcmp(a->op_type, "Add") == 0 && a->n_input == 2 &&
           ((strcmp(a->input[0], v) == 0 && ox_constant(m, a->input[1])) || (strcmp(a->input[1], v) == 0 && ox_constant(m, a->input[0])));
}

int ox_matmul(imp *m, const Onnx__NodeProto *n, const char **out)
{
    if (need_vector(m, n)) return -1;
    float *B, *bias = NULL;
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r;
    if (ox_const_floats(m, n, 1, "weights B", &B, &cnt, dims, &r)) return -1;
    if (r != 2 || dims[0] != m->d) {
        free(B);
        return ox_fail(m, n, "weights of rank %d%s: convoy's dense layer is (N, %d) x (%d, units)", r,
                       r == 2 ? " with another inner size" : " (a batched MatMul)", m->d, m->d);
    }
    /* MatMul + Add of a constant row is a dense layer with a bias */
    const Onnx__NodeProto *next = NULL;
    const bool one = ox_consumers(m, n->output[0], &next, 1) == 1 && !ox_is_graph_output(m, n->output[0]);
    if (one && is_const_add(m, next, n->output[0])) {
        if (dense_bias(m, next, strcmp(next->input[0], n->output[0]) == 0 ? 1 : 0, dims[1], 1.0f, &bias)) return free(B), -1;
        ox_mark(m, next);
        n = next;
    }
    const int rc = dense(m, n, B, dims[0], dims[1], false, 1.0f, bias, out);
    free(B);
    return rc;
}

/* Flatten (axis) or a Reshape to (N, rest): a vector of each sample's values */
static int to_vector(imp *m, const Onnx__NodeProto *n, const char **out)
{
    *out = n->output[0];
    if (m->kind == L_IMAGE) {
        if (m->c > 1 && (int64_t)m->h * m->wd > 1 && !m->nhwc) m->flat = n, m->fh = m->h, m->fw = m->wd, m->fc = m->c;
        m->nhwc = NULL;
        ox_line(m, false, "flatten");
        m->d = m->h * m->wd * m->c;
    }
    m->kind = L_VECTOR;
    m->onnx_rank = 2;
    return 0;
}

int ox_flatten(imp *m, const Onnx__NodeProto *n, const char **out)
{
    int64_t axis = cv_onnx_attr_int(n, "axis", 1);
    if (axis < 0) axis += m->onnx_rank;
    if (axis != 1)
        return ox_fail(m, n, "axis=%lld: convoy flattens each sample whole (axis=1)", (long long)cv_onnx_attr_int(n, "axis", 1));
    return to_vector(m, n, out);
}

int ox_reshape(imp *m, const Onnx__NodeProto *n, const char **out)
{
    int64_t t[CV_ONNX_MAX_RANK];
    int nt;
    if (ox_const_ints(m, n, 1, "shape", t, CV_ONNX_MAX_RANK, &nt)) return -1;
    const int64_t D = m->kind == L_IMAGE ? (int64_t)m->h * m->wd * m->c : m->d;
    const bool allowzero = cv_onnx_attr_int(n, "allowzero", 0) != 0;
    const bool batch = nt == 2 && ((t[0] == 0 && !allowzero) || (m->batch > 0 && t[0] == m->batch) || (t[0] == -1 && t[1] == D));
    if (!batch || (t[1] != D && t[1] != -1) || (t[1] == -1 && t[0] == -1)) {
        char s[64];
        return ox_fail(m, n, "a reshape of %s to (%lld%s%lld%s): convoy reshapes only to (N, %lld), each sample's values as "
                       "one vector", ox_shape_str(m, s, sizeof s), (long long)t[0], nt > 1 ? ", " : "",
                       (long long)(nt > 1 ? t[1] : 0), nt > 2 ? ", ..." : "", (long long)D);
    }
    return to_vector(m, n, out);
}
