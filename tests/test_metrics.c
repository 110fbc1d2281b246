/* compile's metrics beyond accuracy/mae/mse: top-k accuracy, precision, recall, f1 and auc on
 * worked examples whose counts and values are computed by hand (beside each), through a network
 * whose output is its input (an identity dense layer), so every output is the number written
 * here; their sums in parts and over ranks, their display, the monitor's direction, and the
 * parser's errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/callbacks.h"
#include "convoy/metrics.h"
#include "convoy/model.h"

static cv_model_spec spec;
static cv_net *net;

/* "input shape=K", a K-unit dense layer without bias whose kernel is the identity, then text's
 * compile line */
static void open_identity(int K, const char *act, const char *compile)
{
    char text[512];
    snprintf(text, sizeof text, "input shape=%d\ndense units=%d activation=%s use_bias=false\n%s\n", K, K, act,
             compile);
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, text, "m.model", &err), 0, "%s", err.msg);
    net = cv_net_create(&spec, 64, 1, &err);
    cr_assert(net, "%s", err.msg);
    float *w = cv_net_params(net);
    memset(w, 0, sizeof(float) * (size_t)cv_net_param_count(net));
    const cv_param_view v = cv_net_param_view(net, 1);
    for (int k = 0; k < K; k++) w[v.kernel_off + k * K + k] = 1.0f;
}

static void teardown(void)
{
    cv_net_free(net);
    net = NULL;
    cv_model_spec_free(&spec);
}

TestSuite(metrics, .fini = teardown);

static cv_metrics run(const float *x, const int32_t *labels, const float *targets, const float *w, int B)
{
    cv_metrics m = {0};
    cv_net_forward(net, x, B, false, 0, 0, NULL);
    cv_net_metrics_w(net, labels, targets, w, B, &m);
    return m;
}

static double value(const cv_metrics *m, int metric) { return cv_metric_value(&spec, m, metric); }

static void near(double got, double want, const char *what)
{
    cr_assert(fabs(got - want) <= 1e-12, "%s: got %.17g, want %.17g", what, got, want);
}

/* ---- three classes, softmax: a confusion by hand -------------------------------------------- */

/* rows true class, columns predicted:   p0 p1 p2
 *                                   t0   3  1  0
 *                                   t1   0  2  1
 *                                   t2   2  0  1
 * TP = 3, 2, 1; FP (column minus TP) = 2, 1, 1; FN (row minus TP) = 1, 1, 2.
 * precision 3/5, 2/3, 1/2: macro 53/90; recall 3/4, 2/3, 1/3: macro 7/12;
 * F1 = 2PR/(P+R) = 2/3, 2/3, 2/5: macro 26/45; accuracy 6/10 */
static const int32_t conf_truth[10] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
static const int conf_pred[10] = {0, 0, 0, 1, 1, 1, 2, 2, 0, 0};

static void confusion_logits(float *x)
{
    for (int n = 0; n < 10; n++)
        for (int k = 0; k < 3; k++) x[n * 3 + k] = k == conf_pred[n] ? 2.0f : (float)k * 0.25f - 1.0f;
}

Test(metrics, three_classes_by_hand)
{
    open_identity(3, "softmax", "compile loss=sparse_categorical_crossentropy metrics=accuracy,precision,recall,f1");
    float x[30];
    confusion_logits(x);
    const cv_metrics m = run(x, conf_truth, NULL, NULL, 10);
    cr_assert_eq(cv_metrics_classes(&spec), 3);
    const int64_t tp[3] = {3, 2, 1}, fp[3] = {2, 1, 1}, fn[3] = {1, 1, 2};
    for (int c = 0; c < 3; c++) {
        cr_expect_eq(m.tp[c], tp[c], "tp[%d]", c);
        cr_expect_eq(m.fp[c], fp[c], "fp[%d]", c);
        cr_expect_eq(m.fn[c], fn[c], "fn[%d]", c);
    }
    near(value(&m, CV_METRIC_INDEX_ACCURACY), 0.6, "accuracy");
    near(value(&m, CV_METRIC_INDEX_PRECISION), 53.0 / 90.0, "macro precision");
    near(value(&m, CV_METRIC_INDEX_RECALL), 7.0 / 12.0, "macro recall");
    near(value(&m, CV_METRIC_INDEX_F1), 26.0 / 45.0, "macro f1");
    char line[256];
    cv_metrics_format(&spec, &m, "val_", line, sizeof line);
    /* the loss is whatever the softmax gives: only the metrics' part is fixed */
    cr_assert(strstr(line, "  val_accuracy 0.6000  val_precision 0.5889  val_recall 0.5833  val_f1 0.5778"), "%s", line);
    cr_assert_eq(strncmp(line, "val_loss ", 9), 0, "%s", line);
}

/* the same confusion from one-hot targets (categorical_crossentropy): the true class is the
 * target's argmax, as Keras's; and sample weights change the loss only */
Test(metrics, one_hot_targets_and_weights_count_the_same)
{
    open_identity(3, "softmax", "compile loss=categorical_crossentropy metrics=precision,recall,f1");
    float x[30], y[30] = {0}, w[10];
    confusion_logits(x);
    for (int n = 0; n < 10; n++) y[n * 3 + conf_truth[n]] = 1.0f, w[n] = (float)(n % 3) + 0.5f;
    const cv_metrics a = run(x, NULL, y, NULL, 10), b = run(x, NULL, y, w, 10);
    for (int c = 0; c < 3; c++) cr_expect(a.tp[c] == b.tp[c] && a.fp[c] == b.fp[c] && a.fn[c] == b.fn[c]);
    near(value(&a, CV_METRIC_INDEX_F1), 26.0 / 45.0, "macro f1 from one-hot targets");
    near(value(&b, CV_METRIC_INDEX_F1), 26.0 / 45.0, "weighted: the same f1");
    cr_expect(a.loss != b.loss, "the weights do change the loss");
}

/* a class never predicted has precision 0, one never true recall 0, and both count in the mean
 * over all K classes (Keras's F1Score(average="macro")) */
Test(metrics, absent_classes_count_as_zero)
{
    open_identity(4, "linear", "compile loss=mse metrics=precision,recall,f1");
    /* two samples of class 0 predicted 0, one of class 1 predicted 0; classes 2 and 3 never
     * appear: P = 2/3, 0, 0, 0; R = 1, 0, 0, 0; F1 = 0.8, 0, 0, 0 */
    const float x[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    const int32_t y[3] = {0, 0, 1};
    const cv_metrics m = run(x, y, NULL, NULL, 3);
    near(value(&m, CV_METRIC_INDEX_PRECISION), (2.0 / 3.0) / 4.0, "precision");
    near(value(&m, CV_METRIC_INDEX_RECALL), 1.0 / 4.0, "recall");
    near(value(&m, CV_METRIC_INDEX_F1), 0.8 / 4.0, "f1");
}

/* ---- top-k (k = 5) ------------------------------------------------------------------------ */

/* 7 classes, linear outputs (exactly the inputs): the label is in the top 5 when fewer than 5
 * outputs are larger than its own; ties at the boundary count in (tf.math.in_top_k) */
Test(metrics, top_k_by_hand)
{
    open_identity(7, "linear", "compile loss=mse metrics=top_k_categorical_accuracy,sparse_top_k_categorical_accuracy");
    const float x[5 * 7] = {
        7, 6, 5, 4, 3, 2, 1, /* label 4 (3): 4 larger, in */
        7, 6, 5, 4, 3, 2, 1, /* label 5 (2): 5 larger, out */
        9, 8, 7, 6, 5, 5, 5, /* label 6 (5): 4 larger, in (the tie straddles the boundary) */
        1, 2, 3, 4, 5, 6, 7, /* label 0 (1): 6 larger, out */
        0, 0, 0, 0, 0, 0, NAN, /* label 6: a non-finite output is never in */
    };
    const int32_t y[5] = {4, 5, 6, 0, 6};
    const cv_metrics m = run(x, y, NULL, NULL, 5);
    cr_expect_eq(m.top_k, 2);
    near(value(&m, CV_METRIC_INDEX_TOP_K), 0.4, "top_k_categorical_accuracy");
    near(value(&m, CV_METRIC_INDEX_SPARSE_TOP_K), 0.4, "the sparse spelling: the same count");
    /* one-hot targets: the true class is their argmax */
    float t[5 * 7] = {0};
    for (int n = 0; n < 5; n++) t[n * 7 + y[n]] = 1.0f;
    cr_expect_eq(run(x, NULL, t, NULL, 5).top_k, 2);
    /* both spellings compiled: two columns of one value */
    FILE *f = tmpfile();
    cv_metrics_csv(f, &spec, &m, "", true);
    cv_metrics_csv(f, &spec, &m, "", false);
    rewind(f);
    char buf[256] = "";
    cr_assert(fread(buf, 1, sizeof buf - 1, f) > 0);
    fclose(f);
    cr_assert(strstr(buf, ",loss,top_k_categorical_accuracy,sparse_top_k_categorical_accuracy,"), "%s", buf);
    cr_assert(strstr(buf, ",0.4,0.4"), "%s", buf);
}

/* ---- a binary classifier ------------------------------------------------------------------ */

/* ten probabilities (a 1-unit linear output: exactly these) and labels; predicted positive when
 * p > 0.5 (Keras's Precision/Recall thresholds=0.5: 0.5 itself is negative):
 *   p: 0.9 0.8 0.7 0.6 0.5 0.5 0.3 0.2 0.1 0.05
 *   y:  1   0   1   1   0   1   0   1   0   0
 * TP 3 (0.9, 0.7, 0.6), FP 1 (0.8), FN 2 (0.5, 0.2), TN 4: precision 3/4, recall 3/5,
 * F1 = 2 (3/4)(3/5) / (3/4 + 3/5) = 2/3, accuracy 7/10.
 * AUC: every probability in its own bin of 1/1000 but the two 0.5s (bin 500); per positive the
 * negatives below it, a shared bin counting half: 0.9: 5, 0.7: 4, 0.6: 4, 0.5: 3 + 1/2, 0.2: 2;
 * 18.5 / (5 * 5) = 0.74 (scikit-learn's roc_auc_score gives 0.74 too) */
static const float bin_p[10] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.5f, 0.3f, 0.2f, 0.1f, 0.05f};
static const int32_t bin_y[10] = {1, 0, 1, 1, 0, 1, 0, 1, 0, 0};

Test(metrics, binary_by_hand)
{
    open_identity(1, "linear", "compile loss=mse metrics=accuracy,precision,recall,f1,auc");
    cr_assert_eq(cv_metrics_classes(&spec), 1, "a binary model counts its positive class");
    cr_assert_eq(cv_metrics_bins(&spec), CV_AUC_BINS);
    const cv_metrics m = run(bin_p, bin_y, NULL, NULL, 10);
    cr_expect(m.tp[0] == 3 && m.fp[0] == 1 && m.fn[0] == 2, "tp %lld fp %lld fn %lld", (long long)m.tp[0],
              (long long)m.fp[0], (long long)m.fn[0]);
    cr_expect(m.pos[500] == 1 && m.neg[500] == 1 && m.pos[899] == 1 && m.neg[50] == 1, "bins");
    near(value(&m, CV_METRIC_INDEX_ACCURACY), 0.7, "accuracy");
    near(value(&m, CV_METRIC_INDEX_PRECISION), 0.75, "precision");
    near(value(&m, CV_METRIC_INDEX_RECALL), 0.6, "recall");
    near(value(&m, CV_METRIC_INDEX_F1), 2.0 / 3.0, "f1");
    near(value(&m, CV_METRIC_INDEX_AUC), 0.74, "auc");
    /* float targets: positive above 0.5, as accuracy */
    float t[10];
    for (int n = 0; n < 10; n++) t[n] = (float)bin_y[n];
    near(value(&(cv_metrics){0}, CV_METRIC_INDEX_AUC), 0.0, "no samples: 0");
    const cv_metrics mt = run(bin_p, NULL, t, NULL, 10);
    near(value(&mt, CV_METRIC_INDEX_AUC), 0.74, "auc from float targets");
    near(value(&mt, CV_METRIC_INDEX_F1), 2.0 / 3.0, "f1 from float targets");
}

/* the histogram's resolution: two probabilities in one bin of 1/1000 tie (half a pair), ends and
 * out-of-range outputs go to the first and last bins, and one class alone gives 0 (Keras) */
Test(metrics, auc_bins_and_edges)
{
    open_identity(1, "linear", "compile loss=mse metrics=auc");
    const float x[4] = {0.7005f, 0.7001f, 1.0f, -0.25f};
    const int32_t y[4] = {1, 0, 1, 0};
    const cv_metrics m = run(x, y, NULL, NULL, 2);
    near(value(&m, CV_METRIC_INDEX_AUC), 0.5, "a positive and a negative in bin 700: a tie");
    const cv_metrics e = run(x + 2, y + 2, NULL, NULL, 2);
    cr_expect(e.pos[CV_AUC_BINS - 1] == 1 && e.neg[0] == 1, "p = 1 in the last bin, p < 0 in the first");
    near(value(&e, CV_METRIC_INDEX_AUC), 1.0, "auc");
    const float ones[2] = {0.9f, 0.1f};
    const int32_t pos[2] = {1, 1};
    near(value(&(cv_metrics){0}, CV_METRIC_INDEX_AUC), 0.0, "no samples");
    const cv_metrics p = run(ones, pos, NULL, NULL, 2);
    near(value(&p, CV_METRIC_INDEX_AUC), 0.0, "positives only");
}

/* from_logits: the output is a logit; the threshold is 0 and auc bins sigmoid(z):
 *   z: 2 (p .881, y 1), -2 (.119, y 0), 0.5 (.622, y 0), -0.5 (.378, y 1)
 * predicted positive z > 0: TP 1, FP 1, FN 1: precision 1/2, recall 1/2; auc: the positive
 * .881 is above both negatives, .378 above one: 3/4 */
Test(metrics, binary_from_logits)
{
    open_identity(1, "linear", "compile loss=binary_crossentropy from_logits=true metrics=precision,recall,auc");
    const float z[4] = {2.0f, -2.0f, 0.5f, -0.5f};
    const int32_t y[4] = {1, 0, 0, 1};
    const cv_metrics m = run(z, y, NULL, NULL, 4);
    near(value(&m, CV_METRIC_INDEX_PRECISION), 0.5, "precision");
    near(value(&m, CV_METRIC_INDEX_RECALL), 0.5, "recall");
    near(value(&m, CV_METRIC_INDEX_AUC), 0.75, "auc");
    cr_expect(m.pos[880] == 1 && m.neg[119] == 1 && m.neg[622] == 1 && m.pos[377] == 1, "bins of sigmoid(z)");
}

/* ---- sums: in parts, over ranks, packed --------------------------------------------------- */

static bool same_metrics(const cv_metrics *a, const cv_metrics *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* every sample a part, put in any order, adds up to the whole batch's sums; packing and adding
 * back gives the same sums; the counts' layout follows the compiled metrics */
Test(metrics, parts_and_packing)
{
    open_identity(1, "linear", "compile loss=mse metrics=accuracy,precision,recall,f1,auc");
    cr_assert_eq(cv_metrics_counts(&spec), 3 + 2 * CV_AUC_BINS);
    const cv_metrics whole = run(bin_p, bin_y, NULL, NULL, 10);
    cv_err err;
    cv_metric_parts p;
    cr_assert_eq(cv_metric_parts_init(&p, &spec, 10, &err), 0, "%s", err.msg);
    for (int j = 9; j >= 0; j--) {
        const cv_metrics one = run(bin_p + j, bin_y + j, NULL, NULL, 1);
        cv_metric_parts_put(&p, j, &one);
    }
    const cv_dist d = cv_dist_single();
    cv_metrics sum = {0};
    cr_assert_eq(cv_metrics_add_parts(&d, &p, 10, &sum, &err), 0, "%s", err.msg);
    cv_metric_parts_free(&p);
    cr_expect_eq(sum.count, 10);
    cr_expect(memcmp(sum.pos, whole.pos, sizeof sum.pos) == 0 && memcmp(sum.neg, whole.neg, sizeof sum.neg) == 0);
    cr_expect(sum.tp[0] == whole.tp[0] && sum.fp[0] == whole.fp[0] && sum.fn[0] == whole.fn[0]);
    near(value(&sum, CV_METRIC_INDEX_AUC), 0.74, "auc of the parts");
    near(value(&sum, CV_METRIC_INDEX_F1), 2.0 / 3.0, "f1 of the parts");

    double *v = malloc(sizeof(double) * (size_t)(CV_METRIC_SIX + cv_metrics_counts(&spec)));
    cr_assert(v);
    cv_metrics_pack(&spec, &whole, v);
    cv_metrics back = {0};
    cv_metrics_add_six(v, &back);
    cv_metrics_add_counts(&spec, v + CV_METRIC_SIX, &back);
    free(v);
    cr_expect(same_metrics(&back, &whole), "pack, then add back: the same sums");
    cv_metrics r = whole;
    cr_assert_eq(cv_metrics_sum_ranks(&d, &spec, &r, &err), 0, "%s", err.msg);
    cr_expect(same_metrics(&r, &whole), "one rank's sum is itself");
}

Test(metrics, layouts)
{
    open_identity(10, "softmax", "compile loss=sparse_categorical_crossentropy metrics=accuracy");
    cr_expect_eq(cv_metrics_counts(&spec), 0, "accuracy alone: the six sums only");
    teardown();
    open_identity(10, "softmax", "compile loss=sparse_categorical_crossentropy metrics=top_k_categorical_accuracy,f1");
    cr_expect_eq(cv_metrics_classes(&spec), 10);
    cr_expect_eq(cv_metrics_bins(&spec), 0);
    cr_expect_eq(cv_metrics_counts(&spec), 1 + 3 * 10);
}

/* ---- monitors ------------------------------------------------------------------------------ */

Test(metrics, monitor_values_and_directions)
{
    open_identity(1, "linear", "compile loss=mse metrics=precision,recall,f1,auc");
    const cv_metrics tm = run(bin_p, bin_y, NULL, NULL, 10), vm = run(bin_p, bin_y, NULL, NULL, 4);
    near(cv_metrics_value(&spec, "auc", &tm, &vm, true), 0.74, "auc");
    /* the first four: p .9 .8 .7 .6, y 1 0 1 1: one positive of three above the negative .8 */
    near(cv_metrics_value(&spec, "val_auc", &tm, &vm, true), 1.0 / 3.0, "val_auc");
    near(cv_metrics_value(&spec, "val_auc", &tm, &vm, false), 0.74, "val_auc without validation: the training value");
    near(cv_metrics_value(&spec, "val_recall", &tm, &vm, true), 1.0, "val_recall");
    const char *const up[] = {"top_k_categorical_accuracy", "val_sparse_top_k_categorical_accuracy", "precision",
                              "val_recall", "f1", "val_f1", "auc", "val_auc"};
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) cr_expect(cv_monitor_max(up[i]), "%s is maximised", up[i]);
    cr_expect(!cv_monitor_max("val_loss") && !cv_monitor_max("mae") && !cv_monitor_max("val_mse"));
    cr_expect_eq(cv_monitor_metric("val_auc"), CV_METRIC_INDEX_AUC);
    cr_expect_eq(cv_monitor_metric("loss"), CV_MONITOR_LOSS);
    cr_expect_eq(cv_monitor_metric("val_f2"), CV_MONITOR_UNKNOWN);
}

/* early stopping on val_auc keeps the highest epoch: 0.70, 0.80, 0.75, 0.78 with patience 2
 * stops after the fourth, best the second (a min monitor would have kept the first) */
Test(metrics, early_stopping_maximises_auc)
{
    cv_callbacks_config c = cv_callbacks_defaults();
    snprintf(c.monitor, sizeof c.monitor, "val_auc");
    c.es_patience = 2;
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    const double auc[4] = {0.70, 0.80, 0.75, 0.78};
    unsigned ev = 0;
    for (int e = 0; e < 4; e++) {
        ev = cv_callbacks_epoch_end(&c, &s, e, auc[e], 0.01f);
        cr_expect_eq(!!(ev & CV_CB_BEST), e < 2, "epoch %d", e + 1);
    }
    cr_expect(ev & CV_CB_STOP);
    cr_expect_eq(s.best_epoch, 2);
}

/* ---- the parser ----------------------------------------------------------------------------- */

static void parse_fails(const char *text, const char *why)
{
    cv_err err;
    cv_model_spec s;
    cr_assert_neq(cv_model_parse(&s, text, "m.model", &err), 0, "parse succeeded; expected \"%s\"", why);
    cr_assert(strstr(err.msg, why), "message \"%s\" lacks \"%s\"", err.msg, why);
    cr_assert_null(strchr(err.msg, '\n'), "message \"%s\" is not one line", err.msg);
}

#define SOFTMAX3 "input shape=4\ndense units=3 activation=softmax\n"
#define SIGMOID1 "input shape=4\ndense units=1 activation=sigmoid\n"

Test(metrics, every_name_parses)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec,
                                SOFTMAX3 "compile loss=sparse_categorical_crossentropy metrics=accuracy,mae,mse,"
                                         "top_k_categorical_accuracy,sparse_top_k_categorical_accuracy,precision,recall,f1\n"
                                         "fit monitor=val_sparse_top_k_categorical_accuracy\n",
                                "m.model", &err),
                 0, "%s", err.msg);
    cr_expect_eq(spec.loss.metrics, (unsigned)(CV_METRIC_ACCURACY | CV_METRIC_MAE | CV_METRIC_MSE | CV_METRIC_TOP_K |
                                               CV_METRIC_SPARSE_TOP_K | CV_METRIC_PRECISION | CV_METRIC_RECALL |
                                               CV_METRIC_F1));
    cr_expect_str_eq(spec.callbacks.monitor, "val_sparse_top_k_categorical_accuracy");
    const char *names[CV_METRIC_LIST_MAX];
    double values[CV_METRIC_LIST_MAX];
    cr_expect_eq(cv_metric_list(&spec, &(cv_metrics){0}, names, values), 9);
    cr_expect_str_eq(names[4], "top_k_categorical_accuracy");
    cr_expect_str_eq(names[8], "f1");
    cv_model_spec_free(&spec);
    cr_assert_eq(cv_model_parse(&spec, SIGMOID1 "compile loss=binary_crossentropy metrics=auc,f1\nfit monitor=val_auc\n",
                                "m.model", &err),
                 0, "%s", err.msg);
    cr_expect_eq(spec.loss.metrics, (unsigned)(CV_METRIC_AUC | CV_METRIC_F1));
}

Test(metrics, parse_errors)
{
    parse_fails(SOFTMAX3 "compile loss=sparse_categorical_crossentropy metrics=auc\n",
                "m.model:3: metrics=auc needs a binary classifier (1 sigmoid output), but the output layer (line 2) "
                "has 3 outputs; for classes use precision, recall or f1");
    parse_fails(SIGMOID1 "compile loss=binary_crossentropy metrics=accuracy,top_k_categorical_accuracy\n",
                "m.model:3: metrics=top_k_categorical_accuracy needs a model with one output per class, but the "
                "output layer (line 2) has 1 output (a binary classifier: use accuracy or auc)");
    parse_fails(SIGMOID1 "compile loss=binary_crossentropy metrics=sparse_top_k_categorical_accuracy\n",
                "metrics=sparse_top_k_categorical_accuracy needs a model with one output per class");
    parse_fails("input shape=4\ndense units=2000 activation=softmax\n"
                "compile loss=sparse_categorical_crossentropy metrics=accuracy,recall\n",
                "m.model:3: metrics=recall counts at most 1024 classes, but the output layer (line 2) has 2000 outputs");
    parse_fails(SIGMOID1 "compile loss=binary_crossentropy metrics=accuracy\nfit monitor=val_auc\n",
                "m.model:4: monitor=val_auc needs metrics=auc in compile (line 3)");
    parse_fails(SOFTMAX3 "fit early_stopping_patience=2 monitor=f1\ncompile loss=sparse_categorical_crossentropy "
                         "metrics=precision,recall\n",
                "m.model:3: monitor=f1 needs metrics=f1 in compile (line 4)");
    parse_fails(SOFTMAX3 "compile loss=sparse_categorical_crossentropy metrics=top_k_categorical_accuracy\n"
                         "fit monitor=sparse_top_k_categorical_accuracy\n",
                "monitor=sparse_top_k_categorical_accuracy needs metrics=sparse_top_k_categorical_accuracy in compile");
    parse_fails(SOFTMAX3 "compile loss=sparse_categorical_crossentropy metrics=top_5_accuracy\n",
                "m.model:3: unknown metric 'top_5_accuracy' (expected accuracy, mae, mse, top_k_categorical_accuracy, "
                "sparse_top_k_categorical_accuracy, precision, recall, f1, auc)");
}
