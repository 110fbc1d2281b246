/* ONNX import, one node at a time: each operator convoy has becomes model-file lines and its
 * weights in Keras layouts (OIHW -> HWIO; a dense kernel's rows permuted where ONNX flattened
 * (c,h,w) and convoy flattens (h,w,c)); what convoy cannot express is refused naming the node,
 * its op type and what convoy would need. The graph walk is onnx-import.c. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interop/onnx-import.h"


static int need_image(imp *m, const Onnx__NodeProto *n, const char *what)
{
    char s[64];
    if (m->kind == L_IMAGE) return 0;
    return ox_fail(m, n, "its input %s is not an (N, C, H, W) image: convoy's %s is 2-D%s", ox_shape_str(m, s, sizeof s), what,
                   m->kind == L_RAW && m->onnx_rank == 5 ? " (a 3-D op)" : m->kind == L_RAW && m->onnx_rank == 3 ? " (a 1-D op)" : "");
}

/* the shortest decimal that reads back as the same float (0.9, not 0.899999976) */
static const char *short_float(float v, char buf[32])
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, 32, "%.*g", digits, v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

static bool all_ones(const int64_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i] != 1) return false;
    return true;
}

/* a 2-D window's padding as convoy's top, bottom, left, right, from pads= or auto_pad= */
static int window_pads(imp *m, const Onnx__NodeProto *n, const int k[2], const int s[2], int p[4])
{
    char ap[32];
    int64_t v[8];
    cv_onnx_attr_str(n, "auto_pad", ap, sizeof ap);
    memset(p, 0, 4 * sizeof *p);
    if (!ap[0] || strcmp(ap, "NOTSET") == 0) {
        const int np = cv_onnx_attr_ints(n, "pads", v, 8);
        if (np && np != 4) return ox_fail(m, n, "pads= has %d values, a 2-D op takes 4", np);
        for (int i = 0; i < np; i++)
            if (v[i] < 0 || v[i] > 4096) return ox_fail(m, n, "pads=%lld: convoy pads by 0 to 4096 cells", (long long)v[i]);
        if (np) p[0] = (int)v[0], p[1] = (int)v[2], p[2] = (int)v[1], p[3] = (int)v[3];
    } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        const int size[2] = {m->h, m->wd};
        for (int a = 0; a < 2; a++) {
            const int out = (size[a] + s[a] - 1) / s[a], total = (out - 1) * s[a] + k[a] - size[a];
            const int t = total > 0 ? total : 0, small = t / 2;
            p[2 * a] = ap[5] == 'U' ? small : t - small; /* SAME_UPPER: the extra cell at the end */
            p[2 * a + 1] = t - p[2 * a];
        }
    } else if (strcmp(ap, "VALID") != 0) {
        return ox_fail(m, n, "auto_pad=%s is not an ONNX padding rule", ap);
    }
    return 0;
}

static int window_strides(imp *m, const Onnx__NodeProto *n, int s[2])
{
    int64_t v[8];
    const int ns = cv_onnx_attr_ints(n, "strides", v, 8);
    if (ns && ns != 2) return ox_fail(m, n, "strides= has %d values, a 2-D op takes 2", ns);
    for (int a = 0; a < 2; a++) {
        s[a] = ns ? (int)v[a] : 1;
        if (!ns) continue;
        if (v[a] < 1 || v[a] > 4096) return ox_fail(m, n, "strides=%lld: convoy takes strides 1 to 4096", (long long)v[a]);
    }
    int64_t d[8];
    const int nd = cv_onnx_attr_ints(n, "dilations", d, 8);
    if (nd && !all_ones(d, nd < 8 ? nd : 8))
        return ox_fail(m, n, "dilations=%lld,%lld: convoy's windows have no dilation (only 1)", (long long)d[0],
                       (long long)(nd > 1 ? d[1] : d[0]));
    return 0;
}

static int op_conv(imp *m, const Onnx__NodeProto *n, const char **out)
{
    float *W = NULL, *B = NULL;
    int64_t wd[CV_ONNX_MAX_RANK], bd[CV_ONNX_MAX_RANK], nw, nb = 0;
    int wr, br, s[2], p[4];
    if (need_image(m, n, "conv2d") || ox_const_floats(m, n, 1, "weights", &W, &nw, wd, &wr)) return -1;
    if (wr != 4) return free(W), ox_fail(m, n, "a %d-D convolution (weights of rank %d): convoy's conv2d is 2-D", wr - 2, wr);
    const int64_t group = cv_onnx_attr_int(n, "group", 1);
    if (group != 1)
        return free(W), ox_fail(m, n, "group=%lld (a grouped or depthwise convolution): convoy's conv2d connects every "
                                "input channel to every filter", (long long)group);
    if (wd[1] != m->c)
        return free(W), ox_fail(m, n, "weights for %lld input channels, its input has %d", (long long)wd[1], m->c);
    for (int i = 0; i < 4; i++)
        if (wd[i] < 1 || wd[i] > (i < 2 ? 1 << 20 : 4096))
            return free(W), ox_fail(m, n, "weights of dims %lld,%lld,%lld,%lld", (long long)wd[0], (long long)wd[1],
                                    (long long)wd[2], (long long)wd[3]);
    const int O = (int)wd[0], C = m->c, k[2] = {(int)wd[2], (int)wd[3]};
    if (window_strides(m, n, s) || window_pads(m, n, k, s, p)) return free(W), -1;
    bool nearest = false;
    if (m->edge_pad) {
        if (p[0] || p[1] || p[2] || p[3])
            return free(W), ox_fail(m, m->edge_pad, "an edge Pad before a Conv with pads of its own: convoy's conv2d pads "
                                    "one way (pad_mode=nearest or zero)");
        memcpy(p, m->edge, sizeof m->edge);
        nearest = true;
        m->edge_pad = NULL;
    }
    for (int i = 0; i < 4; i++)
        if (p[i] >= k[i / 2])
            return free(W), ox_fail(m, n, "pads %d,%d,%d,%d (top, bottom, left, right) reach the %dx%d kernel's size: "
                                    "convoy's conv2d pads less than the kernel on each side", p[0], p[1], p[2], p[3], k[0], k[1]);
    if (ox_has_input(n, 2)) {
        if (ox_const_floats(m, n, 2, "bias", &B, &nb, bd, &br)) return free(W), -1;
        if (nb != O) return free(W), free(B), ox_fail(m, n, "a bias of %lld values for %d filters", (long long)nb, O);
    }
    if (m->h + p[0] + p[1] < k[0] || m->wd + p[2] + p[3] < k[1])
        return free(W), free(B), ox_fail(m, n, "a %dx%d kernel on a %dx%d map (padded): no output", k[0], k[1],
                                         m->h + p[0] + p[1], m->wd + p[2] + p[3]);
    const int L = ox_line(m, true, "conv2d filters=%d kernel=%d,%d stride=%d,%d padding=%d,%d,%d,%d%s%s", O, k[0], k[1], s[0],
                          s[1], p[0], p[1], p[2], p[3], nearest ? " pad_mode=nearest" : "", B ? "" : " use_bias=false");
    float *K = cv_malloc(sizeof(float) * (size_t)nw, "conv2d kernel", m->err);
    if (!K) return free(W), free(B), -1;
    for (int o = 0; o < O; o++) /* ONNX (O, C, KH, KW) -> Keras (KH, KW, C, O) */
        for (int c = 0; c < C; c++)
            for (int y = 0; y < k[0]; y++)
                for (int x = 0; x < k[1]; x++)
                    K[(((int64_t)y * k[1] + x) * C + c) * O + o] = W[(((int64_t)o * C + c) * k[0] + y) * k[1] + x];
    free(W);
    ox_keep(m, L, 0, K, nw);
    if (B) ox_keep(m, L, 1, B, nb);
    m->h = (m->h + p[0] + p[1] - k[0]) / s[0] + 1;
    m->wd = (m->wd + p[2] + p[3] - k[1]) / s[1] + 1;
    m->c = O;
    *out = n->output[0];
    return 0;
}

/* a MaxPool or AveragePool n; min: a MaxPool between two Negs (convoy's minpool2d) */
static int pool(imp *m, const Onnx__NodeProto *n, bool min, const char **out)
{
    const bool avg = strcmp(n->op_type, "AveragePool") == 0;
    int64_t ks[8];
    const int nk = cv_onnx_attr_ints(n, "kernel_shape", ks, 8);
    if (nk != 2 && m->kind == L_IMAGE) return ox_fail(m, n, "kernel_shape= has %d values, a 2-D pool takes 2", nk);
    if (need_image(m, n, avg ? "avgpool2d" : "maxpool2d")) return -1;
    if ((int)n->n_output > 1 && ox_used(m, n->output[1]))
        return ox_fail(m, n, "its Indices output is used: convoy's pools give only the values");
    int s[2], p[4];
    if (ks[0] < 1 || ks[1] < 1 || ks[0] > 4096 || ks[1] > 4096)
        return ox_fail(m, n, "kernel_shape=%lld,%lld: convoy's windows are 1 to 4096 cells", (long long)ks[0], (long long)ks[1]);
    const int k[2] = {(int)ks[0], (int)ks[1]};
    if (window_strides(m, n, s) || window_pads(m, n, k, s, p)) return -1;
    /* ONNX pads a max pool with -inf; zeros give the same maxima where the input is >= 0 (a
     * Relu's or Sigmoid's output) and no window lies wholly in the padding (pads < kernel) */
    const bool nonneg = m->nonneg, ceil = cv_onnx_attr_int(n, "ceil_mode", 0) != 0;
    bool padded = p[0] || p[1] || p[2] || p[3];
    for (int i = 0; i < 4; i++)
        if (p[i] >= k[i / 2]) return ox_fail(m, n, "pads %d,%d,%d,%d reach the %dx%d window's size", p[0], p[1], p[2], p[3], k[0], k[1]);
    if (padded && min)
        return ox_fail(m, n, "pads %d,%d,%d,%d between two Negs: convoy's minpool2d has no padding", p[0], p[1], p[2], p[3]);
    if (padded && !avg && !nonneg)
        return ox_fail(m, n, "pads %d,%d,%d,%d: convoy's maxpool2d has no padding; ONNX pads with -inf, which zeros "
                       "match only on an input >= 0 (a Relu's or Sigmoid's output)", p[0], p[1], p[2], p[3]);
    if (padded && avg && !cv_onnx_attr_int(n, "count_include_pad", 0))
        return ox_fail(m, n, "pads %d,%d,%d,%d without count_include_pad=1: ONNX then averages the cells inside the image "
                       "only; convoy's avgpool2d after a zeropad2d averages the whole window", p[0], p[1], p[2], p[3]);
    const int in[2] = {m->h, m->wd};
    for (int a = 0; a < 2 && ceil; a++) { /* ceil_mode: the partial window, its start inside the map or left padding */
        const int n_pad = in[a] + p[2 * a] + p[2 * a + 1];
        if (n_pad < k[a]) break;
        int cells = (n_pad - k[a] + s[a] - 1) / s[a] + 1;
        if ((cells - 1) * s[a] >= in[a] + p[2 * a]) cells--;
        const int extra = (cells - 1) * s[a] + k[a] - n_pad;
        if (extra <= 0) continue;
        if (avg || min || !nonneg)
            return ox_fail(m, n, "ceil_mode=1 adds a partial window at the bottom or right here: convoy's pools round the "
                           "output size down%s", avg ? "" : " (a max pool on an input >= 0 would take zero padding)");
        p[2 * a + 1] += extra;
        padded = true;
    }
    const int H = m->h + p[0] + p[1], Wd = m->wd + p[2] + p[3];
    if (H < k[0] || Wd < k[1]) return ox_fail(m, n, "a %dx%d window on a %dx%d map", k[0], k[1], H, Wd);
    if (padded) ox_line(m, false, "zeropad2d padding=%d,%d,%d,%d", p[0], p[1], p[2], p[3]);
    ox_line(m, false, "%s pool=%d,%d stride=%d,%d", avg ? "avgpool2d" : min ? "minpool2d" : "maxpool2d", k[0], k[1], s[0], s[1]);
    m->h = (H - k[0]) / s[0] + 1;
    m->wd = (Wd - k[1]) / s[1] + 1;
    m->nonneg = nonneg;
    *out = n->output[0];
    return 0;
}

static int op_pool(imp *m, const Onnx__NodeProto *n, const char **out) { return pool(m, n, false, out); }

/* Neg -> MaxPool -> Neg, each the only reader of the one before: -maxpool(-x) is convoy's minpool2d */
static int op_neg(imp *m, const Onnx__NodeProto *n, const char **out)
{
    const Onnx__NodeProto *p = NULL, *back = NULL;
    const bool one = ox_consumers(m, n->output[0], &p, 1) == 1 && !ox_is_graph_output(m, n->output[0]) &&
                     strcmp(p->op_type, "MaxPool") == 0 && !((int)p->n_output > 1 && ox_used(m, p->output[1])) &&
                     ox_consumers(m, p->output[0], &back, 1) == 1 && !ox_is_graph_output(m, p->output[0]) &&
                     strcmp(back->op_type, "Neg") == 0;
    if (!one) return ox_fail(m, n, "a Neg that is not the start of Neg -> MaxPool -> Neg: convoy negates only as its "
                             "min pool (minpool2d)");
    if (need_image(m, n, "minpool2d") || pool(m, p, true, out)) return -1;
    ox_mark(m, p);
    ox_mark(m, back);
    *out = back->output[0];
    return 0;
}

static int op_global_pool(imp *m, const Onnx__NodeProto *n, const char **out)
{
    const bool avg = strcmp(n->op_type, "GlobalAveragePool") == 0 || strcmp(n->op_type, "ReduceMean") == 0;
    if (need_image(m, n, avg ? "globalavgpool2d" : "globalmaxpool2d")) return -1;
    ox_line(m, false, "%s", avg ? "globalavgpool2d" : "globalmaxpool2d");
    m->kind = L_VECTOR;
    m->d = m->c;
    m->onnx_rank = 4; /* ONNX keeps (N, C, 1, 1) */
    *out = n->output[0];
    return 0;
}

/* ReduceMean / ReduceMax over H and W (PyTorch's x.mean((2, 3))): a global pool */
static int op_reduce(imp *m, const Onnx__NodeProto *n, const char **out)
{
    int64_t ax[8];
    int na = cv_onnx_attr_ints(n, "axes", ax, 8);
    if (!na && ox_has_input(n, 1) && ox_const_ints(m, n, 1, "axes", ax, 8, &na)) return -1;
    bool h = false, w = false, other = na == 0;
    for (int i = 0; i < na && i < 8; i++) {
        const int64_t a = ax[i] < 0 ? ax[i] + m->onnx_rank : ax[i];
        h |= a == 2, w |= a == 3, other |= a != 2 && a != 3;
    }
    if (m->kind != L_IMAGE || !h || !w || other)
        return ox_fail(m, n, "a reduction over other axes than H and W of an (N, C, H, W) image: convoy reduces a map "
                       "only as a global pool");
    const int rc = op_global_pool(m, n, out);
    m->onnx_rank = cv_onnx_attr_int(n, "keepdims", 1) ? 4 : 2;
    return rc;
}

static int op_batchnorm(imp *m, const Onnx__NodeProto *n, const char **out)
{
    if (m->kind == L_RAW) {
        char s[64];
        return ox_fail(m, n, "its input %s: convoy's batchnorm takes (N, C, H, W) images or (N, C) vectors", ox_shape_str(m, s, sizeof s));
    }
    if (cv_onnx_attr_int(n, "training_mode", 0) || ((int)n->n_output > 1 && ox_used(m, n->output[1])))
        return ox_fail(m, n, "training mode (its running statistics are outputs): convoy imports the inference form");
    if (!cv_onnx_attr_int(n, "spatial", 1)) return ox_fail(m, n, "spatial=0 (statistics per cell): convoy's are per channel");
    const int C = m->kind == L_IMAGE ? m->c : m->d;
    static const char *const what[4] = {"scale", "bias", "mean", "var"};
    float *v[4] = {NULL};
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r, rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        rc = ox_const_floats(m, n, i + 1, what[i], &v[i], &cnt, dims, &r);
        if (!rc && cnt != C) rc = ox_fail(m, n, "its %s has %lld values for %d channels", what[i], (long long)cnt, C);
    }
    for (int c = 0; c < C && !rc; c++)
        if (!(v[3][c] >= 0)) rc = ox_fail(m, n, "var[%d] is %g: a variance is >= 0", c, v[3][c]);
    const float eps = cv_onnx_attr_float(n, "epsilon", 1e-5f), mom = cv_onnx_attr_float(n, "momentum", 0.9f);
    if (!rc && !(eps > 0)) rc = ox_fail(m, n, "epsilon=%g: convoy's is > 0", eps);
    if (!rc && !(mom >= 0 && mom < 1)) rc = ox_fail(m, n, "momentum=%g: convoy's is in [0, 1)", mom);
    float *state = rc ? NULL : cv_malloc(sizeof(float) * 2 * (size_t)C, "batchnorm statistics", m->err);
    if (rc || !state) {
        for (int i = 0; i < 4; i++) free(v[i]);
        return -1;
    }
    memcpy(state, v[2], sizeof(float) * (size_t)C);
    memcpy(state + C, v[3], sizeof(float) * (size_t)C);
    free(v[2]), free(v[3]);
    char a[32], b[32];
    const int L = ox_line(m, false, "batchnorm momentum=%s epsilon=%s", short_float(mom, a), short_float(eps, b));
    ox_keep(m, L, 0, v[0], C);
    ox_keep(m, L, 1, v[1], C);
    ox_keep(m, L, 2, state, 2 * C);
    *out = n->output[0];
    return 0;
}

/* convoy's export of a from_logits classifier ends in a Softmax (Sigmoid for one unit) called
 * "probabilities" over the linear logits: the import gives the logits and from_logits=true back */
static bool export_probabilities(const imp *m, const Onnx__NodeProto *n, cv_act a)
{
    return m->by_convoy && m->line_act == CV_ACT_LINEAR && m->line_units > 0 && n->name &&
           strcmp(n->name, "probabilities") == 0 && ox_is_graph_output(m, n->output[0]) &&
           a == (m->line_units == 1 ? CV_ACT_SIGMOID : CV_ACT_SOFTMAX);
}

static int activation(imp *m, const Onnx__NodeProto *n, cv_act a, float alpha)
{
    char buf[32];
    if (export_probabilities(m, n, a)) {
        m->logits = true;
        return 0;
    }
    if (m->line_takes_act && a == CV_ACT_LEAKY_RELU && alpha >= 0) {
        fprintf(m->text, " activation=leaky_relu alpha=%s", short_float(alpha, buf));
        m->line_takes_act = false;
    } else if (m->line_takes_act && a != CV_ACT_LEAKY_RELU) {
        fprintf(m->text, " activation=%s", cv_act_name(a));
        m->line_takes_act = false;
    } else if (a == CV_ACT_LEAKY_RELU) {
        ox_line(m, false, "activation leaky_relu alpha=%s", short_float(alpha, buf));
    } else {
        ox_line(m, false, "activation %s", cv_act_name(a));
    }
    m->line_act = a;
    m->nonneg = a == CV_ACT_RELU || a == CV_ACT_SIGMOID || a == CV_ACT_SOFTMAX;
    return 0;
}

static int op_elementwise(imp *m, const Onnx__NodeProto *n, const char **out)
{
    const char *op = n->op_type;
    const cv_act a = strcmp(op, "Relu") == 0 ? CV_ACT_RELU : strcmp(op, "Sigmoid") == 0 ? CV_ACT_SIGMOID
                   : strcmp(op, "Tanh") == 0 ? CV_ACT_TANH : CV_ACT_LEAKY_RELU;
    *out = n->output[0];
    return activation(m, n, a, cv_onnx_attr_float(n, "alpha", 0.01f));
}

static int op_softmax(imp *m, const Onnx__NodeProto *n, const char **out)
{
    char s[64];
    const int rank = m->onnx_rank;
    int64_t axis = cv_onnx_attr_int(n, "axis", m->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    /* before opset 13 Softmax flattens from axis on: axis 1 is each sample's whole vector; from
     * 13 on axis 1 of a map is each cell's channels, as convoy's softmax on a map */
    const bool ok = axis == 1 && (m->kind == L_IMAGE ? m->opset >= 13 || (int64_t)m->h * m->wd == 1
                                                     : m->opset < 13 || rank == 2 || m->kind == L_VECTOR);
    if (!ok)
        return ox_fail(m, n, "a softmax over axis %lld of its input %s: convoy's softmax takes each sample's vector (axis "
                       "1 of (N, D)) or, from opset 13, each cell's channels (axis 1 of (N, C, H, W))", (long long)axis,
                       ox_shape_str(m, s, sizeof s));
    *out = n->output[0];
    return activation(m, n, CV_ACT_SOFTMAX, 0);
}

/* a constant input holding one float (an empty one leaves *v as it is) */
static int const_scalar(imp *m, const Onnx__NodeProto *n, int i, const char *what, float *v)
{
    float *t;
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r;
    if (ox_const_floats(m, n, i, what, &t, &cnt, dims, &r)) return -1;
    if (cnt > 1) return free(t), ox_fail(m, n, "its %s has %lld values, one expected", what, (long long)cnt);
    if (cnt) *v = t[0];
    free(t);
    return 0;
}

static int op_pad(imp *m, const Onnx__NodeProto *n, const char **out)
{
    char mode[32];
    int64_t p[16];
    int np;
    float value = 0;
    cv_onnx_attr_str(n, "mode", mode, sizeof mode);
    if (need_image(m, n, "zeropad2d")) return -1;
    if (m->opset >= 11) {
        if (ox_const_ints(m, n, 1, "pads", p, 16, &np)) return -1;
        if (ox_has_input(n, 3)) return ox_fail(m, n, "its axes input: convoy pads the rows and columns of (N, C, H, W) only");
        if (ox_has_input(n, 2) && const_scalar(m, n, 2, "constant_value", &value)) return -1;
    } else {
        np = cv_onnx_attr_ints(n, "pads", p, 16);
        value = cv_onnx_attr_float(n, "value", 0);
    }
    if (np != 8) return ox_fail(m, n, "%d pads for a 4-D tensor (8 expected)", np);
    if (p[0] || p[1] || p[4] || p[5]) return ox_fail(m, n, "it pads the batch or channel axis: convoy pads rows and columns");
    for (int i = 0; i < 8; i++)
        if (p[i] < 0 || p[i] > 4096) return ox_fail(m, n, "pads of %lld: convoy pads by 0 to 4096 cells", (long long)p[i]);
    const int q[4] = {(int)p[2], (int)p[6], (int)p[3], (int)p[7]};
    *out = n->output[0];
    if (strcmp(mode, "edge") == 0) { /* conv2d's pad_mode=nearest: the Conv after it takes it */
        m->edge_pad = n;
        memcpy(m->edge, q, sizeof m->edge);
        return 0;
    }
    if (mode[0] && strcmp(mode, "constant") != 0)
        return ox_fail(m, n, "mode=%s: convoy pads with zeros (zeropad2d) or the edge value (conv2d pad_mode=nearest)", mode);
    if (value != 0) return ox_fail(m, n, "constant_value=%g: convoy pads with zeros", value);
    const bool nonneg = m->nonneg;
    if (q[0] || q[1] || q[2] || q[3]) ox_line(m, false, "zeropad2d padding=%d,%d,%d,%d", q[0], q[1], q[2], q[3]);
    m->nonneg = nonneg;
    m->h += q[0] + q[1];
    m->wd += q[2] + q[3];
    return 0;
}

static int op_dropout(imp *m, const Onnx__NodeProto *n, const char **out)
{
    float rate = cv_onnx_attr_float(n, "ratio", 0.5f);
    if ((int)n->n_output > 1 && ox_used(m, n->output[1])) return ox_fail(m, n, "its mask output is used: convoy's dropout gives only its output");
    if (m->opset >= 12 && ox_has_input(n, 1) && const_scalar(m, n, 1, "ratio", &rate)) return -1;
    if (ox_has_input(n, 2)) {
        int64_t t;
        int nt;
        const Onnx__TensorProto *tm = ox_constant(m, n->input[2]);
        if (!tm) return ox_fail(m, n, "its training_mode input is not a constant");
        const bool on = tm->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL
                            ? (tm->has_raw_data ? tm->raw_data.len && tm->raw_data.data[0] : tm->n_int32_data && tm->int32_data[0])
                            : !cv_onnx_tensor_ints(tm, "training_mode", &t, 1, &nt, NULL) && nt && t;
        if (on) return ox_fail(m, n, "training_mode=true: convoy imports the inference form (dropout is active only in training)");
    }
    if (!(rate >= 0 && rate < 1)) return ox_fail(m, n, "ratio=%g: convoy's dropout rate is in [0, 1)", rate);
    *out = n->output[0];
    const bool nonneg = m->nonneg; /* dropout scales by 1 / (1 - rate) */
    char buf[32];
    if (rate > 0) ox_line(m, false, "dropout rate=%s", short_float(rate, buf));
    m->nonneg = nonneg;
    return 0;
}

static int op_identity(imp *m, const Onnx__NodeProto *n, const char **out)
{
    (void)m;
    *out = n->output[0];
    return 0;
}

/* an Add the walk meets on the chain: of a constant (a MatMul's bias is taken with it) */
static int op_add(imp *m, const Onnx__NodeProto *n, const char **out)
{
    (void)out;
    return ox_fail(m, n, "an Add of a constant tensor: convoy adds constants only as the bias of a dense layer (MatMul + "
                   "Add) or a Conv's bias input, and two tensors only where an Add closes a residual block");
}

/* a Transpose of an (N, C, H, W) map to (N, H, W, C) right before a Flatten: convoy's own order
 * (how a channels-last exporter writes a flatten, keeping the dense kernel as it is) */
static int op_transpose(imp *m, const Onnx__NodeProto *n, const char **out)
{
    int64_t p[8];
    const int np = cv_onnx_attr_ints(n, "perm", p, 8);
    if (m->kind == L_IMAGE && np == 4 && p[0] == 0 && p[1] == 3 && p[2] == 1 && p[3] == 2 && !m->n && !m->in_nhwc) {
        /* an (N, H, W, C) input (so far only scaled) made (N, C, H, W): convoy's layout already */
        const int H = m->c, W = m->h, C = m->wd;
        m->h = H, m->wd = W, m->c = C, m->in_nhwc = true;
        snprintf(m->shape, sizeof m->shape, "%d,%d,%d", H, W, C);
        *out = n->output[0];
        return 0;
    }
    if (m->kind != L_IMAGE || np != 4 || p[0] != 0 || p[1] != 2 || p[2] != 3 || p[3] != 1)
        return ox_fail(m, n, "convoy transposes only an (N, C, H, W) map to (N, H, W, C) right before a Flatten, or an "
                       "(N, H, W, C) input to (N, C, H, W)");
    m->nhwc = n;
    *out = n->output[0];
    return 0;
}

/* whether a constant of dims[0..r) holds one value per feature of the graph's data input: the
 * dims of one sample, with or without a leading 1 (broadcast over the batch) */
static bool per_feature(imp *m, const int64_t *dims, int r, int64_t cnt)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < m->g->n_input && !in; i++)
        if (!ox_constant(m, m->g->input[i]->name)) in = m->g->input[i];
    const Onnx__TypeProto *t = in ? in->type : NULL;
    const Onnx__TensorShapeProto *sh = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type
                                           ? t->tensor_type->shape : NULL;
    const int skip = r == (int)(sh ? sh->n_dim : 0) && r && dims[0] == 1;
    if (!sh || cnt < 2 || r - skip != (int)sh->n_dim - 1) return false;
    for (int i = skip; i < r; i++)
        if (dims[i] != sh->dim[i - skip + 1]->dim_value) return false;
    return true;
}

/* (x - mean) / std of per-feature constants before the first layer (and before the Transpose
 * of an (N, H, W, C) input): convoy's input normalize=standardize, mean and std as convoy's
 * normaliser holds them, one per feature in (h, w, c) order */
static int standardize(imp *m, const Onnx__NodeProto *n, bool div, const float *t, const int64_t *dims, int r,
                       int64_t cnt, const char **out)
{
    const bool flat = m->kind == L_VECTOR && m->onnx_rank == 2, image = m->kind == L_IMAGE && m->onnx_rank == 4;
    if (m->n || m->scaled || m->in_nhwc || (div ? !m->mean || m->std : m->mean != NULL) || !(flat || image) ||
        !per_feature(m, dims, r, cnt))
        return ox_fail(m, n, "a %s by a tensor of %lld values: convoy subtracts and divides by per-feature constants "
                       "(the graph input's shape) only as its input normalize=standardize, a Sub then a Div before the "
                       "first layer", n->op_type, (long long)cnt);
    for (int64_t i = 0; div && i < cnt; i++)
        if (!(t[i] > 0))
            return ox_fail(m, n, "its divisor holds %g at [%lld]: convoy's standard deviations are > 0", t[i], (long long)i);
    float *v = cv_malloc(sizeof(float) * (size_t)cnt, "normaliser", m->err);
    if (!v) return -1;
    memcpy(v, t, sizeof(float) * (size_t)cnt);
    if (div) m->std = v;
    else m->mean = v, m->center = n;
    m->norm_dim = cnt;
    *out = n->output[0];
    return 0;
}

/* a Div by 255 or a Mul by 1/255 before the first layer: convoy's input normalize=scale; a Sub
 * and a Div by per-feature constants there: normalize=standardize */
static int op_scale(imp *m, const Onnx__NodeProto *n, const char **out)
{
    const bool div = strcmp(n->op_type, "Div") == 0, sub = strcmp(n->op_type, "Sub") == 0;
    const int ci = n->n_input == 2 && ox_constant(m, n->input[1]) ? 1 : n->n_input == 2 && ox_constant(m, n->input[0]) ? 0 : -1;
    float f = 0;
    if (ci < 0 || ((div || sub) && ci != 1))
        return ox_fail(m, n, "a %s of computed tensors: convoy has no such layer", n->op_type);
    float *t;
    int64_t dims[CV_ONNX_MAX_RANK], cnt;
    int r;
    if (ox_const_floats(m, n, ci, "factor", &t, &cnt, dims, &r)) return -1;
    if (sub || (div && m->mean)) {
        const int rc = standardize(m, n, div, t, dims, r, cnt, out);
        free(t);
        return rc;
    }
    f = cnt ? t[0] : 0;
    free(t);
    const double scale = div ? 1.0 / f : f;
    if (cnt != 1 || m->n || m->scaled || m->mean || !(fabs(scale * 255.0 - 1.0) < 1e-6))
        return ox_fail(m, n, "a %s by %s%g: convoy scales only its input, by 1/255 (input normalize=scale), before the "
                       "first layer", n->op_type, cnt != 1 ? "a tensor, its first value " : "", f);
    m->scaled = true;
    *out = n->output[0];
    return 0;
}

typedef int (*op_fn)(imp *m, const Onnx__NodeProto *n, const char **out);
static const struct {
    const char *op;
    op_fn fn;
    bool elementwise; /* takes a tensor of any shape (the raw layout) */
} ops[] = {
    {"Conv", op_conv, false},
    {"MaxPool", op_pool, false},
    {"Neg", op_neg, false},
    {"AveragePool", op_pool, false},
    {"GlobalAveragePool", op_global_pool, false},
    {"GlobalMaxPool", op_global_pool, false},
    {"ReduceMean", op_reduce, false},
    {"ReduceMax", op_reduce, false},
    {"BatchNormalization", op_batchnorm, false},
    {"Relu", op_elementwise, true},
    {"LeakyRelu", op_elementwise, true},
    {"Sigmoid", op_elementwise, true},
    {"Tanh", op_elementwise, true},
    {"Softmax", op_softmax, true}, /* on any rank: op_softmax checks the axis */
    {"Gemm", ox_gemm, false},
    {"MatMul", ox_matmul, false},
    {"Flatten", ox_flatten, false},
    {"Reshape", ox_reshape, false},
    {"Pad", op_pad, false},
    {"Dropout", op_dropout, true},
    {"Identity", op_identity, true},
    {"Add", op_add, true},
    {"Transpose", op_transpose, false},
    {"Div", op_scale, true},
    {"Mul", op_scale, true},
    {"Sub", op_scale, true},
};
enum { N_OPS = sizeof ops / sizeof ops[0] };

static int find_op(const char *op)
{
    for (int i = 0; i < N_OPS; i++)
        if (strcmp(ops[i].op, op) == 0) return i;
    return -1;
}

int ox_translate(imp *m, const Onnx__NodeProto *n, const char **out)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return ox_fail(m, n, "an operator of domain '%s': convoy reads ONNX's standard operators only", n->domain);
    if (!n->op_type[0]) return ox_fail(m, n, "a node without an op_type (a damaged or hand-made file)");
    const int i = find_op(n->op_type);
    if (i < 0)
        return ox_fail(m, n, "convoy has no layer for %s (it imports Conv, MaxPool (between Negs: a min pool), AveragePool, GlobalAveragePool, "
                       "GlobalMaxPool, ReduceMean, ReduceMax, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, "
                       "Softmax, Gemm, MatMul, Add, Flatten, Reshape, Transpose, Pad, Dropout, Identity, and a Div by 255 or a Sub and "
                       "Div of per-feature constants at the input)", n->op_type);
    if (m->nhwc && ops[i].fn != ox_flatten && ops[i].fn != ox_reshape)
        return ox_fail(m, m->nhwc, "a Transpose to (N, H, W, C) must feed a Flatten (convoy's maps are channels-last "
                       "already)");
    if (m->edge_pad && ops[i].fn != op_conv)
        return ox_fail(m, m->edge_pad, "an edge Pad must feed a Conv: convoy pads with the edge value only as conv2d's "
                       "pad_mode=nearest");
    if (m->kind == L_RAW && !ops[i].elementwise && ops[i].fn != ox_flatten) {
        if (ops[i].fn == op_conv || ops[i].fn == op_pool || ops[i].fn == op_neg || ops[i].fn == op_global_pool || ops[i].fn == op_pad)
            return need_image(m, n, n->op_type);
        char s[64];
        return ox_fail(m, n, "its input %s: convoy's layers take (N, D) vectors or (N, C, H, W) images", ox_shape_str(m, s, sizeof s));
    }
    for (size_t k = 0; k < m->g->n_node; k++)
        if (m->g->node[k] == n && m->done[k]) return ox_fail(m, n, "reached twice: the graph has a cycle");
    ox_mark(m, n);
    return ops[i].fn(m, n, out);
}
