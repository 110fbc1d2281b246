/* Confusion matrices: counts from a network whose predictions are known by construction (an
 * identity layer predicts the largest input), binary sigmoid outputs, the classification report's
 * arithmetic, and the refusal of regression models. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/confusion.h"
#include "convoy/data.h"
#include "convoy/model.h"

#define TMP CONVOY_TEST_TMP "/confusion"

static void setup(void)
{
    cr_assert_eq(system("mkdir -p " TMP), 0);
}

TestSuite(confusion, .init = setup);

static cv_net *net_from(const char *text, cv_model_spec *spec)
{
    cv_err err;
    cr_assert_eq(cv_model_parse(spec, text, "m.model", &err), 0, "%s", err.msg);
    cv_net *net = cv_net_create(spec, 8, 1, &err);
    cr_assert_not_null(net, "%s", err.msg);
    return net;
}

Test(confusion, counts_known_predictions)
{
    cv_model_spec spec;
    cv_net *net = net_from("input shape=3\ndense units=3 activation=softmax\n"
                           "compile optimizer=sgd loss=sparse_categorical_crossentropy metrics=accuracy\n",
                           &spec);
    /* kernel (in, out) = identity, bias 0: the predicted class is the largest input */
    const cv_param_view v = cv_net_param_view(net, 1);
    float *w = cv_net_params(net);
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < 3; o++) w[v.kernel_off + i * 3 + o] = i == o ? 1.0f : 0.0f;
    for (int o = 0; o < 3; o++) w[v.bias_off + o] = 0.0f;

    /* want[t][p] rows with label t and largest input p, in a scrambled order over 20 rows
     * (more than one micro-batch of the 8-row net is not needed: cv_confusion reserves its own) */
    const int64_t want[9] = {3, 1, 0, 2, 4, 1, 0, 2, 7};
    enum { N = 20 };
    float x[N * 3];
    int32_t y[N];
    int row = 0;
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            for (int k = 0; k < want[t * 3 + p]; k++, row++) {
                const int r = (row * 7) % N; /* 7 is coprime with 20: a permutation */
                for (int j = 0; j < 3; j++) x[r * 3 + j] = j == p ? 2.0f + 0.1f * (float)k : -(float)j * 0.3f;
                y[r] = t;
            }
    cr_assert_eq(row, N);
    cv_err err;
    const cv_shape shape = {1, {3, 0, 0}};
    char *names[3] = {"a", "b", "c"};
    cr_assert_eq(cv_dataset_write(TMP "/d.h5", N, shape, CV_DTYPE_F32, x, y, NULL, 0, names, 3, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "/d.h5", &err), 0, "%s", err.msg);
    cr_assert_eq(ds.n_classes, 3);
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 3};
    int K;
    cr_assert_eq(cv_confusion_classes(&spec, &K, &err), 0, "%s", err.msg);
    cr_assert_eq(K, 3);
    int64_t got[9];
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_confusion(net, &ds, &nz, &d, got, K, &err), 0, "%s", err.msg);
    for (int i = 0; i < 9; i++) cr_assert_eq(got[i], want[i], "cell (%d, %d): %lld, want %lld", i / 3, i % 3,
                                             (long long)got[i], (long long)want[i]);
    cv_dataset_free(&ds);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(confusion, binary_sigmoid_output_is_two_classes)
{
    cv_model_spec spec;
    cv_net *net = net_from("input shape=1\ndense units=1 activation=sigmoid\n"
                           "compile optimizer=sgd loss=binary_crossentropy metrics=accuracy\n",
                           &spec);
    const cv_param_view v = cv_net_param_view(net, 1);
    cv_net_params(net)[v.kernel_off] = 1.0f; /* p = sigmoid(x): class 1 when x >= 0 */
    cv_net_params(net)[v.bias_off] = 0.0f;
    const float x[6] = {-2, -1, 0.5f, 3, -0.5f, 1};
    const int32_t y[6] = {0, 1, 1, 1, 0, 0};
    cv_err err;
    const cv_shape shape = {1, {1, 0, 0}};
    cr_assert_eq(cv_dataset_write(TMP "/b.h5", 6, shape, CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &err), 0, "%s", err.msg);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_load(&ds, TMP "/b.h5", &err), 0, "%s", err.msg);
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 1};
    int K;
    cr_assert_eq(cv_confusion_classes(&spec, &K, &err), 0, "%s", err.msg);
    cr_assert_eq(K, 2);
    int64_t got[4];
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_confusion(net, &ds, &nz, &d, got, K, &err), 0, "%s", err.msg);
    const int64_t want[4] = {2, 1, 1, 2}; /* true 0: x=-2,-0.5 right, 1 wrong; true 1: -1 wrong */
    for (int i = 0; i < 4; i++) cr_assert_eq(got[i], want[i], "cell %d: %lld", i, (long long)got[i]);
    cv_dataset_free(&ds);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(confusion, regression_models_are_refused)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, "input shape=2\ndense units=1\ncompile optimizer=sgd loss=mse\n", "r.model", &err), 0,
                 "%s", err.msg);
    int K;
    cr_assert_eq(cv_confusion_classes(&spec, &K, &err), -1);
    cr_assert_not_null(strstr(err.msg, "r.model: loss mse is a regression loss"), "%s", err.msg);
    cv_model_spec_free(&spec);
}

Test(confusion, report_arithmetic)
{
    const int64_t counts[9] = {5, 1, 0, 2, 7, 1, 0, 0, 9};
    char *names[3] = {"cat", "dog", "bird"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cv_confusion_print(f, counts, 3, names);
    fclose(f);
    /* by hand: precision tp/column, recall tp/row, f1 their harmonic mean */
    const char *want[] = {
        "0 cat     5 1 0\n",
        "0 cat        0.7143    0.8333    0.7692         6\n",
        "1 dog        0.8750    0.7000    0.7778        10\n",
        "2 bird       0.9000    1.0000    0.9474         9\n",
        "macro avg    0.8298    0.8444    0.8315        25\n",
        "accuracy                         0.8400        25\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "missing '%s' in\n%s", want[i], text);
    free(text);

    /* a class never predicted: precision 0 and F1 0, not a division by zero */
    const int64_t none[4] = {3, 0, 2, 0};
    text = NULL;
    f = open_memstream(&text, &len);
    cv_confusion_print(f, none, 2, NULL);
    fclose(f);
    cr_assert_not_null(strstr(text, "1            0.0000    0.0000    0.0000         2\n"), "%s", text);
    free(text);
}
