/* ONNX export read back with protobuf-c (no Python needed): the header docs/interop.md states, the
 * node sequence of a small network, the weights in ONNX's layouts (a conv kernel as (Cout, Cin,
 * KH, KW), a dense kernel after a flatten as (out, in) with its rows in (c, h, w) order), the
 * standardize statistics and TensorFlow's same padding; and the writes' refusals. The numbers
 * OpenCV computes from exported models are tests/e2e_onnx_export.sh's. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convoy/checkpoint.h"
#include "convoy/files.h"
#include "convoy/interop.h"
#include "netcheck.h"
#include "onnx.pb-c.h"

#define TMP CONVOY_TEST_TMP "/onnx-"

enum { H = 3, W = 2, C = 3, F = 2, K = 4 };
static const char *model = "input shape=3,2,3 normalize=standardize\n"
                           "conv2d filters=2 kernel=2,1 padding=same activation=relu\n"
                           "flatten\n"
                           "dense units=4 activation=softmax\n"
                           "compile optimizer=sgd loss=sparse_categorical_crossentropy\n";

/* A checkpoint of model with standardize statistics mean j / 8, std 1 + j / 4 per feature j; the
 * network (its weights) in *net_out. */
static void save(const char *path, cv_net **net_out, float *mean, float *sd)
{
    cv_model_spec spec;
    cv_net *net = make_net(model, &spec);
    for (int j = 0; j < H * W * C; j++) mean[j] = (float)j / 8, sd[j] = 1.0f + (float)j / 4;
    cv_normalizer nz = {.mode = CV_NORM_STANDARDIZE, .dim = H * W * C, .mean = mean, .std = sd};
    cv_err err;
    cr_assert_eq(cv_checkpoint_save(path, net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    *net_out = net;
}

static Onnx__ModelProto *load(const char *path)
{
    char *buf;
    size_t n;
    cv_err err;
    cr_assert_eq(cv_read_text_file(path, 1 << 24, "onnx", &buf, &n, &err), 0, "%s", err.msg);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, (const uint8_t *)buf);
    free(buf);
    cr_assert(m, "%s: protobuf-c cannot read it back", path);
    return m;
}

static const Onnx__TensorProto *constant(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0) return g->initializer[i];
    cr_assert_fail("no constant %s", name);
    return NULL;
}

static float value(const Onnx__TensorProto *t, size_t i)
{
    cr_assert(t->has_raw_data && t->raw_data.len % 4 == 0 && i < t->raw_data.len / 4);
    const uint8_t *b = t->raw_data.data + 4 * i;
    const uint32_t u = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static const Onnx__AttributeProto *attribute(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    cr_assert_fail("node %s has no attribute %s", n->name, name);
    return NULL;
}

static void check_dims(const Onnx__ValueInfoProto *v, const char *name, const int64_t *want, int rank)
{
    cr_assert_str_eq(v->name, name);
    const Onnx__TensorShapeProto *s = v->type->tensor_type->shape;
    cr_assert_eq(v->type->tensor_type->elem_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    cr_assert_eq(s->n_dim, (size_t)rank, "%s has rank %zu", name, s->n_dim);
    cr_assert_eq(s->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, "%s: a fixed batch", name);
    cr_assert_str_eq(s->dim[0]->dim_param, "N");
    for (int i = 1; i < rank; i++) cr_assert_eq(s->dim[i]->dim_value, want[i], "%s: dimension %d", name, i);
}

Test(onnx_export, header_nodes_and_layouts)
{
    cv_net *net;
    float mean[H * W * C], sd[H * W * C];
    save(TMP "small.h5", &net, mean, sd);
    cv_onnx_export_info info;
    cv_err err;
    cr_assert_eq(cv_onnx_export(TMP "small.h5", TMP "small.onnx", &info, &err), 0, "%s", err.msg);
    Onnx__ModelProto *m = load(TMP "small.onnx");
    cr_assert_eq(m->ir_version, 7);
    cr_assert_eq(m->n_opset_import, 1);
    cr_assert_str_eq(m->opset_import[0]->domain, "");
    cr_assert_eq(m->opset_import[0]->version, 13);
    cr_assert_str_eq(m->producer_name, "convoy");
    const Onnx__GraphProto *g = m->graph;
    static const char *const ops[] = {"Sub", "Div", "Transpose", "Conv", "Relu", "Flatten", "Gemm", "Softmax"};
    cr_assert_eq(g->n_node, sizeof ops / sizeof *ops, "%zu nodes", g->n_node);
    cr_assert_eq(info.nodes, (int64_t)g->n_node);
    for (size_t i = 0; i < g->n_node; i++) cr_assert_str_eq(g->node[i]->op_type, ops[i], "node %zu", i);
    cr_assert_eq(g->n_input, 1);
    cr_assert_eq(g->n_output, 1);
    check_dims(g->input[0], "input", (const int64_t[]){-1, H, W, C}, 4);
    check_dims(g->output[0], "probabilities", (const int64_t[]){-1, K}, 2);
    cr_assert_str_eq(g->node[g->n_node - 1]->output[0], "probabilities");
    /* NHWC in, NCHW after */
    const Onnx__AttributeProto *perm = attribute(g->node[2], "perm");
    cr_assert(perm->n_ints == 4 && perm->ints[1] == 3 && perm->ints[2] == 1 && perm->ints[3] == 2);
    /* the statistics, per feature in NHWC order */
    for (int j = 0; j < H * W * C; j++) {
        cr_assert_eq(value(constant(g, "00_input/mean"), (size_t)j), mean[j]);
        cr_assert_eq(value(constant(g, "00_input/std"), (size_t)j), sd[j]);
    }
    /* same padding of a 2x1 kernel on 3x2: rows 1 in all, the odd one at the bottom; columns none */
    const Onnx__AttributeProto *pads = attribute(g->node[3], "pads");
    cr_assert(pads->n_ints == 4 && pads->ints[0] == 0 && pads->ints[1] == 0 && pads->ints[2] == 1 && pads->ints[3] == 0,
              "pads %lld %lld %lld %lld", (long long)pads->ints[0], (long long)pads->ints[1], (long long)pads->ints[2],
              (long long)pads->ints[3]);
    /* conv kernel (KH,KW,Cin,Cout) -> (Cout,Cin,KH,KW) */
    const float *p = cv_net_params(net);
    const cv_param_view cv = cv_net_param_view(net, 1), dv = cv_net_param_view(net, 3);
    const Onnx__TensorProto *ck = constant(g, "01_conv2d/kernel");
    cr_assert(ck->n_dims == 4 && ck->dims[0] == F && ck->dims[1] == C && ck->dims[2] == 2 && ck->dims[3] == 1);
    for (int o = 0; o < F; o++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < 2; y++)
                cr_assert_eq(value(ck, (size_t)((o * C + c) * 2 + y)), p[cv.kernel_off + (y * C + c) * F + o]);
    /* dense kernel (in, out) with rows r = (h W + w) F + c -> (out, in) with columns (c H + h) W + w */
    const Onnx__TensorProto *dk = constant(g, "03_dense/kernel");
    const int in = H * W * F;
    cr_assert(dk->n_dims == 2 && dk->dims[0] == K && dk->dims[1] == in);
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
            for (int c = 0; c < F; c++)
                for (int o = 0; o < K; o++)
                    cr_assert_eq(value(dk, (size_t)(o * in + (c * H + h) * W + w)),
                                 p[dv.kernel_off + ((h * W + w) * F + c) * K + o]);
    cr_assert_eq(attribute(g->node[6], "transB")->i, 1);
    onnx__model_proto__free_unpacked(m, NULL);
    cv_net_free(net);
}

Test(onnx_export, refusals_leave_no_file)
{
    cv_net *net;
    float mean[H * W * C], sd[H * W * C];
    save(TMP "r.h5", &net, mean, sd);
    cv_net_free(net);
    cv_err err;
    unlink(TMP "none.onnx");
    cr_assert_eq(cv_onnx_export(TMP "missing.h5", TMP "none.onnx", NULL, &err), -1);
    cr_assert(strstr(err.msg, "missing.h5"), "%s", err.msg);
    cr_assert_eq(access(TMP "none.onnx", F_OK), -1, "a failed export wrote its output");
    cr_assert_eq(cv_onnx_export(TMP "r.h5", TMP "no-dir/m.onnx", NULL, &err), -1);
    cr_assert(strstr(err.msg, "no-dir/m.onnx: cannot create"), "%s", err.msg);
    cr_assert_eq(cv_onnx_export(TMP "r.h5", "/dev/null", NULL, NULL), 0, "a device is written straight");
    cr_assert_eq(cv_onnx_export(TMP "r.h5", TMP "missing-dir/x.onnx", NULL, NULL), -1, "err may be NULL");
}
