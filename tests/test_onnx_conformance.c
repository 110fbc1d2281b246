/* ONNX's own node tests (Debian's libonnx-testdata, data/node/test_*) for the operators convoy
 * imports: each test's one-node model imported with its graph inputs after the first bound as
 * constants from input_N.pb, convoy's forward pass run on input_0.pb and compared with
 * output_0.pb at ONNX's backend-test tolerance (numpy assert_allclose, rtol 1e-3, atol 1e-7).
 * One line per case: pass, refused (why) or FAIL. Every case must pass except the refusals
 * listed below (docs/interop.md's table), which must be refused: a new refusal, a listed case
 * that starts to pass, or any wrong number fails the test. */
#define _DEFAULT_SOURCE /* d_type */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convoy/interop.h"
#include "convoy/model.h"

#define RTOL 1e-3
#define ATOL 1e-7

/* the node tests of the operators convoy's import takes (a name is the prefix or prefix_...) */
static const char *const prefixes[] = {
    "test_conv", "test_basic_conv", "test_maxpool", "test_averagepool", "test_globalaveragepool", "test_globalmaxpool",
    "test_batchnorm", "test_relu", "test_leakyrelu", "test_sigmoid", "test_tanh", "test_softmax", "test_gemm",
    "test_matmul", "test_flatten", "test_reshape", "test_constant_pad", "test_edge_pad", "test_reflect_pad",
    "test_dropout", "test_training_dropout", "test_identity", "test_add", "test_reduce_mean", "test_reduce_max",
    "test_transpose", "test_div", "test_mul",
};

/* the cases convoy refuses, and the words its message must contain */
static const struct {
    const char *name, *why;
} refusals[] = {
#include "onnx_refusals.inc"
};
enum { N_REFUSALS = sizeof refusals / sizeof refusals[0] };

static const char *node_dir(void)
{
    const char *d = getenv("CONVOY_ONNX_NODE_TESTS");
    return d && d[0] ? d : "/usr/share/libonnx-testdata/data/node";
}

static bool selected(const char *name)
{
    const size_t n = strlen(name);
    if (n > 9 && strcmp(name + n - 9, "_expanded") == 0) return false; /* several nodes: other operators */
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        const size_t p = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], p) == 0 && (name[p] == '\0' || name[p] == '_')) return true;
    }
    return false;
}

static int listed(const char *name)
{
    for (int i = 0; i < N_REFUSALS; i++)
        if (strcmp(refusals[i].name, name) == 0) return i;
    return -1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* one data set of one test: 0 pass, 1 refused (msg set), -1 FAIL (msg set) */
static int run_set(const char *model, const char *set, char *msg, size_t size)
{
    char path[4300], binds[8][4300];
    const char *bp[8];
    int nb = 0;
    for (; nb < 8; nb++) {
        snprintf(binds[nb], sizeof binds[nb], "%s/input_%d.pb", set, nb + 1);
        if (access(binds[nb], R_OK)) break;
        bp[nb] = binds[nb];
    }
    float *x = NULL, *want = NULL;
    int64_t xd[8], wd[8];
    int xr, wr;
    cv_err err;
    cv_onnx_info info;
    cv_net *net = cv_onnx_load(model, bp, nb, "model.onnx", 1, &info, &err);
    if (!net) return snprintf(msg, size, "%s", err.msg), 1;
    snprintf(path, sizeof path, "%s/input_0.pb", set);
    int rc = cv_onnx_tensor_load(path, &x, xd, &xr, &err);
    snprintf(path, sizeof path, "%s/output_0.pb", set);
    if (!rc) rc = cv_onnx_tensor_load(path, &want, wd, &wr, &err);
    const int B = !rc && xr ? (int)xd[0] : 1;
    if (!rc) rc = cv_net_reserve(net, B, &err);
    if (rc) return cv_net_free(net), free(x), free(want), snprintf(msg, size, "%s", err.msg), -1;
    int64_t nx = 1, nw = 1;
    for (int i = 0; i < xr; i++) nx *= xd[i];
    for (int i = 0; i < wr; i++) nw *= wd[i];
    float *in = malloc(sizeof(float) * (size_t)nx);
    if (info.in_image && !info.in_nhwc) { /* NCHW -> NHWC */
        const int64_t C = xd[1], H = xd[2], W = xd[3];
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < H * W; i++) in[(b * H * W + i) * C + c] = x[(b * C + c) * H * W + i];
    } else {
        memcpy(in, x, sizeof(float) * (size_t)nx);
    }
    const float *y = cv_net_forward(net, in, B, false, 0, 0, NULL);
    const int64_t outs = cv_net_outputs(net);
    if (outs * B != nw) {
        rc = -1, snprintf(msg, size, "%lld outputs, ONNX has %lld", (long long)(outs * B), (long long)nw);
    } else {
        const int64_t hw = (int64_t)info.out_h * info.out_w, C = info.out_c;
        double worst = 0;
        for (int64_t k = 0; k < nw; k++) { /* k: ONNX's index; convoy's holds NHWC for a map */
            const int64_t b = k / (outs ? outs : 1), r = k % (outs ? outs : 1);
            const int64_t j = info.out_image ? b * outs + (r % hw) * C + r / hw : k;
            const double e = fabs((double)y[j] - want[k]), lim = ATOL + RTOL * fabs((double)want[k]);
            if (!(e <= lim) && (rc == 0 || e - lim > worst)) {
                worst = e - lim, rc = -1;
                snprintf(msg, size, "output[%lld] is %.9g, ONNX's %.9g", (long long)k, y[j], want[k]);
            }
        }
    }
    cv_net_free(net);
    free(in), free(x), free(want);
    return rc;
}

Test(onnx_conformance, node_tests_of_the_imported_operators)
{
    DIR *d = opendir(node_dir());
    if (!d) cr_skip_test("no ONNX node tests at %s (Debian's libonnx-testdata; CONVOY_ONNX_NODE_TESTS names another folder)",
                         node_dir());
    char *names[1024];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 1024;)
        if (selected(e->d_name)) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    int pass = 0, refused = 0, bad = 0;
    bool seen[N_REFUSALS];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < n; i++) {
        char model[4200], set[4200], msg[CV_ERR_MSG + 64] = "";
        snprintf(model, sizeof model, "%s/%s/model.onnx", node_dir(), names[i]);
        int rc = 0, sets = 0;
        for (; rc == 0; sets++) {
            snprintf(set, sizeof set, "%s/%s/test_data_set_%d", node_dir(), names[i], sets);
            if (access(set, R_OK)) break;
            rc = run_set(model, set, msg, sizeof msg);
        }
        const int l = listed(names[i]);
        if (l >= 0) seen[l] = true;
        if (rc == 0 && sets == 0) rc = -1, snprintf(msg, sizeof msg, "no test_data_set_0");
        if (rc == 1 && l >= 0 && strstr(msg, refusals[l].why)) {
            refused++;
            printf("refused %-52s %s\n", names[i], msg);
        } else if (rc == 0 && l < 0) {
            pass++;
            printf("pass    %s (%d data set%s)\n", names[i], sets, sets > 1 ? "s" : "");
        } else {
            bad++;
            printf("FAIL    %-52s %s%s\n", names[i], rc == 0 ? "passes, but is listed as refused" : msg,
                   rc == 1 ? (l < 0 ? " (refused, not listed)" : " (refused for another reason than the list's)") : "");
        }
        free(names[i]);
    }
    for (int i = 0; i < N_REFUSALS; i++)
        if (!seen[i]) bad++, printf("FAIL    %s: listed as refused, not among the node tests\n", refusals[i].name);
    printf("ONNX node tests: %d pass, %d refused, %d FAIL (rtol %g, atol %g)\n", pass, refused, bad, RTOL, ATOL);
    fflush(stdout);
    cr_expect(pass > 0, "no case passed");
    cr_assert(bad == 0, "%d node tests failed (lines FAIL above)", bad);
}
