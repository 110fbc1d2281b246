/* ONNX export of a checkpoint (docs/interop.md "Export to ONNX"): the input's normalisation, a
 * Transpose from convoy's NHWC to ONNX's NCHW, then each layer as the ONNX operators that compute
 * what its inference pass computes, in opset 13, written atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/files.h"
#include "convoy/interop.h"
#include "convoy/version.h"
#include "interop/onnx-graph.h"

#define FLOAT_T ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT

typedef struct {
    onnx_graph b;
    cv_net *net;
    const cv_model_spec *spec;
    const float *params;
    const char *x[CV_MAX_LAYERS]; /* each layer's output tensor (a residual's: the block's input) */
    bool chw_flat;                /* the current vector is a map flattened in ONNX's (C,H,W) order,
                                     not convoy's (h, w, c): the dense layer after it reorders */
    cv_shape flat_of;             /* ... the map it came from */
    char name[48];                /* the layer being exported, as its checkpoint group: 03_conv2d */
} exporter;

/* "03_conv2d" + suffix: a node's or a constant's name */
static const char *named(exporter *e, const char *suffix, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", e->name, suffix);
    return buf;
}

static const char *scalar(exporter *e, const char *suffix, float v)
{
    char nm[96];
    return onnx_const_f32(&e->b, named(e, suffix, nm, sizeof nm), NULL, 0, &v);
}

static const char *ints(exporter *e, const char *suffix, const int64_t *v, int n)
{
    char nm[96];
    const int64_t dims[1] = {n};
    return onnx_const_i64(&e->b, named(e, suffix, nm, sizeof nm), dims, 1, v);
}

/* x with its H and W padded top, bottom, left, right (NCHW), zeros or (edge) the nearest cell */
static const char *pad_hw(exporter *e, const char *x, const int p[4], bool edge)
{
    const int64_t pads[8] = {0, 0, p[0], p[2], 0, 0, p[1], p[3]};
    char nm[96];
    const char *in[2] = {x, ints(e, "/pads", pads, 8)};
    Onnx__NodeProto *n = onnx_node(&e->b, "Pad", named(e, "/pad", nm, sizeof nm), in, 2, NULL);
    if (edge) onnx_attr_string(&e->b, n, "mode", "edge");
    return n ? n->output[0] : NULL;
}

/* Node op over x with the weights w (dims wd, rank r; freed here) and bias (NULL: none, else
 * wd[0] values) as its constants "<layer><suffix>/kernel" and ".../bias" */
static Onnx__NodeProto *weighted(exporter *e, const char *op, const char *x, float *w, const int64_t *wd, int r,
                                 const float *bias, const char *suffix)
{
    char nm[96], s[32];
    snprintf(s, sizeof s, "%s/kernel", suffix);
    const char *in[3] = {x, onnx_const_f32(&e->b, named(e, s, nm, sizeof nm), wd, r, w), NULL};
    free(w);
    snprintf(s, sizeof s, "%s/bias", suffix);
    if (bias) in[2] = onnx_const_f32(&e->b, named(e, s, nm, sizeof nm), wd, 1, bias);
    return onnx_node(&e->b, op, named(e, suffix, nm, sizeof nm), in, bias ? 3 : 2, NULL);
}

/* The conv of x (NCHW) with a Keras kernel k (KH,KW,Cin,Cout) and bias (NULL: none) */
static const char *conv(exporter *e, const char *x, const float *k, const float *bias, const int kd[4],
                        const int stride[2], const int pads[4], const char *suffix)
{
    const int KH = kd[0], KW = kd[1], C = kd[2], F = kd[3];
    const size_t n_w = (size_t)KH * KW * C * F;
    float *w = malloc(sizeof *w * (n_w ? n_w : 1));
    if (!w) return e->b.oom = true, NULL;
    for (int o = 0; o < F; o++) /* ONNX's (Cout, Cin, KH, KW) */
        for (int c = 0; c < C; c++)
            for (int y = 0; y < KH; y++)
                for (int z = 0; z < KW; z++)
                    w[(((size_t)o * C + c) * KH + y) * KW + z] = k[(((size_t)y * KW + z) * C + c) * F + o];
    const int64_t wd[4] = {F, C, KH, KW};
    Onnx__NodeProto *n = weighted(e, "Conv", x, w, wd, 4, bias, suffix);
    const int64_t ks[2] = {KH, KW}, st[2] = {stride[0], stride[1]}, p[4] = {pads[0], pads[2], pads[1], pads[3]};
    onnx_attr_ints(&e->b, n, "kernel_shape", ks, 2);
    onnx_attr_ints(&e->b, n, "strides", st, 2);
    onnx_attr_ints(&e->b, n, "pads", p, 4);
    return n ? n->output[0] : NULL;
}

/* x @ k + bias, k (in, out) Keras's layout, written (out, in) with transB = 1 as PyTorch's Linear
 * (OpenCV 4.6 reads no other Gemm right); its rows reordered when x is a (C,H,W) flatten */
static const char *gemm(exporter *e, const char *x, const float *k, const float *bias, int in, int out,
                        const char *suffix)
{
    const size_t n_w = (size_t)in * out;
    float *w = malloc(sizeof *w * (n_w ? n_w : 1));
    if (!w) return e->b.oom = true, NULL;
    const cv_shape m = e->flat_of;
    for (int r = 0; r < in; r++) { /* ONNX's row j of convoy's row r = (h W + w) C + c */
        int j = r;
        if (e->chw_flat) {
            const int c = r % m.d[2], hw = r / m.d[2];
            j = c * m.d[0] * m.d[1] + hw;
        }
        for (int o = 0; o < out; o++) w[(size_t)o * in + j] = k[(size_t)r * out + o]; /* (out, in): transB */
    }
    e->chw_flat = false;
    const int64_t wd[2] = {out, in};
    Onnx__NodeProto *n = weighted(e, "Gemm", x, w, wd, 2, bias, suffix);
    onnx_attr_int(&e->b, n, "transB", 1);
    return n ? n->output[0] : NULL;
}

/* (N, C, 1, 1) or an (N, C, H, W) map, flattened to (N, D) */
static const char *flatten(exporter *e, const char *x)
{
    char nm[96];
    Onnx__NodeProto *n = onnx_node(&e->b, "Flatten", named(e, "", nm, sizeof nm), &x, 1, NULL);
    onnx_attr_int(&e->b, n, "axis", 1);
    return n ? n->output[0] : NULL;
}

static const char *transpose(exporter *e, const char *x, const int64_t perm[4], const char *name)
{
    Onnx__NodeProto *n = onnx_node(&e->b, "Transpose", name, &x, 1, NULL);
    onnx_attr_ints(&e->b, n, "perm", perm, 4);
    return n ? n->output[0] : NULL;
}

/* the layer's activation= after its linear part (softmax over the channels, NCHW's axis 1) */
static const char *activation(exporter *e, const cv_layer_spec *l, const char *x)
{
    static const char *const op[CV_ACT_COUNT] = {
        [CV_ACT_RELU] = "Relu", [CV_ACT_LEAKY_RELU] = "LeakyRelu", [CV_ACT_SIGMOID] = "Sigmoid",
        [CV_ACT_TANH] = "Tanh", [CV_ACT_SOFTMAX] = "Softmax"};
    const cv_act a = cv_layer_act(l);
    if (!op[a] || !x) return x;
    char nm[96];
    Onnx__NodeProto *n = onnx_node(&e->b, op[a], named(e, l->kind == CV_LAYER_ACTIVATION ? "" : "/act", nm, sizeof nm), &x,
                                   1, NULL);
    if (a == CV_ACT_LEAKY_RELU) onnx_attr_float(&e->b, n, "alpha", l->alpha);
    if (a == CV_ACT_SOFTMAX) onnx_attr_int(&e->b, n, "axis", 1);
    return n ? n->output[0] : NULL;
}

/* the stride that takes n cells to m, as the residual block's shortcut takes it (ceil(n/s) == m) */
static int skip_stride(int n, int m) { return (n + m - 1) / m; }

/* end: the block's output x plus its input s through the shortcut (identity, option A's
 * subsampling and zero channels, or option B's 1x1 conv) */
static const char *residual_end(exporter *e, const cv_layer_spec *l, const char *x, const char *s, const float *k,
                                const float *bias)
{
    const bool map = l->in.rank == 3;
    const int C = map ? l->skip.d[2] : l->skip.d[0], OC = map ? l->in.d[2] : l->in.d[0];
    const int st[2] = {map ? skip_stride(l->skip.d[0], l->in.d[0]) : 1, map ? skip_stride(l->skip.d[1], l->in.d[1]) : 1};
    char nm[96];
    const bool same = st[0] == 1 && st[1] == 1 && C == OC;
    if (l->projection && map) { /* (equal shapes too: the block's weights apply all the same) */
        const int kd[4] = {1, 1, C, OC}, pads[4] = {0};
        s = conv(e, s, k, bias, kd, st, pads, "/shortcut");
    } else if (l->projection) {
        s = gemm(e, s, k, bias, C, OC, "/shortcut");
    } else if (!same) {
        if (st[0] > 1 || st[1] > 1) { /* x[:, :, ::sh, ::sw] */
            const int64_t starts[2] = {0, 0}, ends[2] = {l->skip.d[0], l->skip.d[1]}, axes[2] = {2, 3},
                          steps[2] = {st[0], st[1]};
            const char *in[5] = {s, ints(e, "/starts", starts, 2), ints(e, "/ends", ends, 2), ints(e, "/axes", axes, 2),
                                 ints(e, "/steps", steps, 2)};
            Onnx__NodeProto *n = onnx_node(&e->b, "Slice", named(e, "/subsample", nm, sizeof nm), in, 5, NULL);
            s = n ? n->output[0] : NULL;
        }
        if (OC > C) { /* (OC - C) / 2 zero channels before, the rest after */
            const int64_t p0 = (OC - C) / 2, p1 = OC - C - p0;
            const int64_t p4[8] = {0, p0, 0, 0, 0, p1, 0, 0}, p2[4] = {0, p0, 0, p1};
            const char *in[2] = {s, map ? ints(e, "/channel_pads", p4, 8) : ints(e, "/channel_pads", p2, 4)};
            Onnx__NodeProto *n = onnx_node(&e->b, "Pad", named(e, "/zero_channels", nm, sizeof nm), in, 2, NULL);
            s = n ? n->output[0] : NULL;
        }
    }
    const char *in[2] = {x, s};
    Onnx__NodeProto *n = onnx_node(&e->b, "Add", named(e, "", nm, sizeof nm), in, 2, NULL);
    return n ? n->output[0] : NULL;
}

/* batchnorm in inference form: the moving statistics, gamma 1 without scale, beta 0 without center */
static const char *batchnorm(exporter *e, const cv_layer_spec *l, const char *x, const cv_param_view *v)
{
    const int C = l->in.rank == 3 ? l->in.d[2] : l->in.d[0];
    float *g = malloc(sizeof *g * (size_t)C * 2);
    if (!g) return e->b.oom = true, NULL;
    for (int c = 0; c < C; c++) {
        g[c] = l->scale && v->kernel_n ? e->params[v->kernel_off + c] : 1.0f;
        g[C + c] = l->center && v->bias_n ? e->params[v->bias_off + c] : 0.0f;
    }
    char nm[96];
    const int64_t d[1] = {C};
    const float *st = e->params + v->state_off;
    const char *in[5] = {x, onnx_const_f32(&e->b, named(e, "/gamma", nm, sizeof nm), d, 1, g),
                         onnx_const_f32(&e->b, named(e, "/beta", nm, sizeof nm), d, 1, g + C),
                         onnx_const_f32(&e->b, named(e, "/moving_mean", nm, sizeof nm), d, 1, st),
                         onnx_const_f32(&e->b, named(e, "/moving_variance", nm, sizeof nm), d, 1, st + C)};
    free(g);
    Onnx__NodeProto *n = onnx_node(&e->b, "BatchNormalization", named(e, "", nm, sizeof nm), in, 5, NULL);
    onnx_attr_float(&e->b, n, "epsilon", l->epsilon);
    return n ? n->output[0] : NULL;
}

/* Whether the flatten at layer i feeds a dense layer (past dropouts): then it flattens ONNX's
 * (C,H,W) order and the dense kernel's rows are reordered, the form other tools' graphs have;
 * else a Transpose back to NHWC first keeps convoy's (h, w, c) order for what follows. */
static bool flatten_feeds_dense(const cv_model_spec *spec, int i)
{
    int j = i + 1;
    while (j < spec->n_layers && spec->layers[j].kind == CV_LAYER_DROPOUT) j++;
    return j < spec->n_layers && spec->layers[j].kind == CV_LAYER_DENSE;
}

/* Layer i's nodes after x; returns its output, NULL when out of memory or (err set) when the
 * kind has no ONNX form. */
static const char *export_layer(exporter *e, int i, const char *x, const char *ckpt, cv_err *err)
{
    const cv_layer_spec *l = &e->spec->layers[i];
    const cv_param_view v = cv_net_param_view(e->net, i);
    const float *k = e->params + v.kernel_off, *bias = v.bias_n ? e->params + v.bias_off : NULL;
    char nm[96];
    snprintf(e->name, sizeof e->name, "%02d_%s", i, cv_layer_kind_name(l->kind));
    switch (l->kind) {
    case CV_LAYER_CONV2D: {
        int pads[4] = {l->pad[0], l->pad[1], l->pad[2], l->pad[3]};
        if (l->same) {
            const int ph = (l->out.d[0] - 1) * l->stride[0] + l->kernel[0] - l->in.d[0];
            const int pw = (l->out.d[1] - 1) * l->stride[1] + l->kernel[1] - l->in.d[1];
            pads[0] = ph > 0 ? ph / 2 : 0, pads[1] = ph > 0 ? ph - ph / 2 : 0;
            pads[2] = pw > 0 ? pw / 2 : 0, pads[3] = pw > 0 ? pw - pw / 2 : 0;
        }
        const bool padded = pads[0] || pads[1] || pads[2] || pads[3];
        if (l->pad_nearest && padded) { /* the edge repeated, then a conv without padding */
            x = pad_hw(e, x, pads, true);
            memset(pads, 0, sizeof pads);
        }
        const int kd[4] = {l->kernel[0], l->kernel[1], l->in.d[2], l->filters};
        return activation(e, l, conv(e, x, k, bias, kd, l->stride, pads, ""));
    }
    case CV_LAYER_MAXPOOL2D:
    case CV_LAYER_AVGPOOL2D:
    case CV_LAYER_MINPOOL2D: { /* min pool: -maxpool(-x) */
        const bool min = l->kind == CV_LAYER_MINPOOL2D;
        if (min) x = onnx_unary(&e->b, "Neg", named(e, "/neg", nm, sizeof nm), x);
        Onnx__NodeProto *n = onnx_node(&e->b, l->kind == CV_LAYER_AVGPOOL2D ? "AveragePool" : "MaxPool",
                                       named(e, "", nm, sizeof nm), &x, 1, NULL);
        const int64_t ks[2] = {l->pool[0], l->pool[1]}, st[2] = {l->stride[0], l->stride[1]};
        onnx_attr_ints(&e->b, n, "kernel_shape", ks, 2);
        onnx_attr_ints(&e->b, n, "strides", st, 2);
        x = n ? n->output[0] : NULL;
        return min && x ? onnx_unary(&e->b, "Neg", named(e, "/unneg", nm, sizeof nm), x) : x;
    }
    case CV_LAYER_GLOBALAVGPOOL2D:
    case CV_LAYER_GLOBALMAXPOOL2D:
        x = onnx_unary(&e->b, l->kind == CV_LAYER_GLOBALAVGPOOL2D ? "GlobalAveragePool" : "GlobalMaxPool",
                       named(e, "/pool", nm, sizeof nm), x);
        return x ? flatten(e, x) : NULL;
    case CV_LAYER_ZEROPAD2D:
        return pad_hw(e, x, l->pad, false);
    case CV_LAYER_FLATTEN:
        if (l->in.rank != 3) return x;
        if (flatten_feeds_dense(e->spec, i)) {
            e->chw_flat = true, e->flat_of = l->in;
        } else {
            static const int64_t to_nhwc[4] = {0, 2, 3, 1};
            x = transpose(e, x, to_nhwc, named(e, "/to_nhwc", nm, sizeof nm));
        }
        return x ? flatten(e, x) : NULL;
    case CV_LAYER_DENSE:
        return activation(e, l, gemm(e, x, k, bias, l->in.d[0], l->units, ""));
    case CV_LAYER_DROPOUT: /* inference: the identity */
    case CV_LAYER_RESIDUAL: /* its output is its input, kept for the end */
        return x;
    case CV_LAYER_ACTIVATION:
        return activation(e, l, x);
    case CV_LAYER_BATCHNORM:
        return batchnorm(e, l, x, &v);
    case CV_LAYER_END:
        return residual_end(e, l, x, e->x[l->block], k, bias);
    default:
        cv_errf(err, "%s: layer %d (%s, %s:%d) has no ONNX form", ckpt, i, cv_layer_kind_name(l->kind), e->spec->file,
                l->line);
        return NULL;
    }
}

/* The graph's start: the raw input (N, H, W, C) or (N, D) as predict reads /x, normalised as
 * the checkpoint's normaliser does, and turned to NCHW. */
static const char *export_input(exporter *e, const cv_normalizer *nz)
{
    const cv_shape in = e->spec->layers[0].shape;
    const int64_t dims[4] = {-1, in.d[0], in.d[1], in.d[2]};
    onnx_graph_value(&e->b, false, "input", FLOAT_T, dims, in.rank + 1);
    const char *x = "input";
    char nm[96];
    snprintf(e->name, sizeof e->name, "00_input");
    if (nz->mode == CV_NORM_SCALE) {
        const char *in2[2] = {x, scalar(e, "/255", 255.0f)};
        Onnx__NodeProto *n = onnx_node(&e->b, "Div", named(e, "/scale", nm, sizeof nm), in2, 2, NULL);
        x = n ? n->output[0] : NULL;
    } else if (nz->mode == CV_NORM_STANDARDIZE) { /* (x - mean) / std, per feature */
        const int64_t d[3] = {in.d[0], in.d[1], in.d[2]}; /* broadcast over N (OpenCV takes no leading 1) */
        const char *m[2] = {x, onnx_const_f32(&e->b, named(e, "/mean", nm, sizeof nm), d, in.rank, nz->mean)};
        Onnx__NodeProto *n = onnx_node(&e->b, "Sub", named(e, "/center", nm, sizeof nm), m, 2, NULL);
        const char *s[2] = {n ? n->output[0] : NULL, onnx_const_f32(&e->b, named(e, "/std", nm, sizeof nm), d, in.rank, nz->std)};
        n = s[0] ? onnx_node(&e->b, "Div", named(e, "/standardize", nm, sizeof nm), s, 2, NULL) : NULL;
        x = n ? n->output[0] : NULL;
    }
    static const int64_t to_nchw[4] = {0, 3, 1, 2};
    return in.rank == 3 && x ? transpose(e, x, to_nchw, "00_input/to_nchw") : x;
}

/* The graph's end: probabilities for a from_logits classifier's logits, named "probabilities" */
static void export_output(exporter *e, const char *x)
{
    const cv_model_spec *s = e->spec;
    const int K = cv_net_outputs(e->net);
    if (x && s->loss.from_logits) {
        snprintf(e->name, sizeof e->name, "probabilities");
        Onnx__NodeProto *n = onnx_node(&e->b, K == 1 ? "Sigmoid" : "Softmax", "probabilities", &x, 1, NULL);
        if (K > 1) onnx_attr_int(&e->b, n, "axis", 1);
        x = n ? n->output[0] : NULL;
    }
    if (!x) return;
    Onnx__GraphProto *g = e->b.g;
    Onnx__NodeProto *last = g->n_node ? g->node[g->n_node - 1] : NULL;
    if (last && strcmp(last->output[0], x) == 0) { /* its last node's output renamed */
        free(last->output[0]);
        last->output[0] = NULL;
        if (!(last->output[0] = strdup("probabilities"))) last->n_output = 0, e->b.oom = true;
    } else {
        onnx_node(&e->b, "Identity", "probabilities", &x, 1, "probabilities");
    }
    const int64_t dims[2] = {-1, K};
    onnx_graph_value(&e->b, true, "probabilities", FLOAT_T, dims, 2);
}

static int64_t count_nodes(const Onnx__GraphProto *g) { return g ? (int64_t)g->n_node : 0; }

int cv_onnx_export(const char *ckpt, const char *out, cv_onnx_export_info *info, cv_err *err)
{
    cv_err local;
    if (!err) err = &local;
    cv_normalizer nz = {0};
    cv_net *net = cv_checkpoint_load(ckpt, 1, &nz, err);
    if (!net) return -1;
    exporter e = {.net = net, .spec = cv_net_spec(net), .params = cv_net_params(net)};
    Onnx__ModelProto *m = malloc(sizeof *m);
    Onnx__OperatorSetIdProto *ops = malloc(sizeof *ops);
    Onnx__OperatorSetIdProto **opv = malloc(sizeof *opv);
    int rc = 0;
    if (m) {
        onnx__model_proto__init(m);
        m->graph = onnx_graph_new(&e.b, "convoy");
        if (ops && opv) {
            onnx__operator_set_id_proto__init(ops);
            ops->domain = strdup(""), ops->has_version = 1, ops->version = CV_ONNX_OPSET;
            opv[0] = ops, m->opset_import = opv, m->n_opset_import = 1;
            ops = NULL, opv = NULL;
        }
        m->has_ir_version = 1, m->ir_version = CV_ONNX_IR_VERSION;
        m->producer_name = strdup("convoy");
        m->producer_version = strdup(cv_version());
        m->doc_string = strdup(e.spec->text ? e.spec->text : "");
    }
    free(ops);
    free(opv);
    if (!m || !m->graph || !m->n_opset_import || !m->producer_name || !m->producer_version || !m->doc_string)
        e.b.oom = true;
    const char *x = e.b.oom ? NULL : export_input(&e, &nz);
    err->msg[0] = '\0';
    for (int i = 1; x && i < e.spec->n_layers; i++) e.x[i] = x = export_layer(&e, i, x, ckpt, err);
    if (!err->msg[0]) export_output(&e, x);
    if (err->msg[0]) {
        rc = -1;
    } else if (e.b.oom || !x) {
        rc = cv_errf(err, "%s: out of memory building the ONNX graph", out);
    } else {
        const size_t len = onnx__model_proto__get_packed_size(m);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) rc = cv_errf(err, "%s: out of memory (%zu bytes)", out, len);
        else onnx__model_proto__pack(m, buf), rc = cv_write_file_atomic(out, buf, len, err);
        free(buf);
        if (!rc && info) *info = (cv_onnx_export_info){count_nodes(m->graph), (int64_t)m->graph->n_initializer,
                                                       (int64_t)len};
    }
    if (m) protobuf_c_message_free_unpacked(&m->base, NULL);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return rc;
}
