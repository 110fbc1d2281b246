/* Training on the caller's arrays (cv_dataset_wrap, cv_train_opts.train_set): the same weights
 * as training on a file holding them, the arrays never copied nor freed, the epoch-end callback
 * (Keras's log names, stopping), initial weights given as an array, and the wrap's checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/data.h"
#include "convoy/train.h"

#define TMP CONVOY_TEST_TMP "/train_memory"
#define N 96

static const char *model =
    "input shape=4,4,1\n"
    "conv2d filters=3 kernel=3 activation=relu\n"
    "flatten\n"
    "dense units=3 activation=softmax\n"
    "compile optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy\n"
    "fit epochs=3 batch_size=16 seed=7 validation_split=0.25\n";

static uint8_t x[N * 16];
static int32_t y[N];

static void setup(void)
{
    cr_assert_eq(system("mkdir -p " TMP), 0);
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 16; j++) x[i * 16 + j] = (uint8_t)((j % 4 == y[i] ? 200 : 20) + (i * 7 + j * 13) % 31);
    }
}

TestSuite(train_memory, .init = setup);

/* the weights of a checkpoint */
static float *weights_of(const char *path, int64_t *n)
{
    cv_err err;
    cv_normalizer nz;
    cv_net *net = cv_checkpoint_load(path, 1, &nz, &err);
    cr_assert(net, "%s", err.msg);
    *n = cv_net_param_count(net);
    float *w = malloc(sizeof(float) * (size_t)*n);
    memcpy(w, cv_net_params(net), sizeof(float) * (size_t)*n);
    cv_net_free(net);
    cv_normalizer_free(&nz);
    return w;
}

static void run(const cv_train_opts *o, int want_rc)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, model, "mem.model", &err), 0, "%s", err.msg);
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_train(&spec, o, &d, NULL, &err), want_rc, "%s", err.msg);
    cv_model_spec_free(&spec);
}

Test(train_memory, arrays_train_as_their_file)
{
    cv_err err;
    static uint8_t before[sizeof x];
    memcpy(before, x, sizeof x);
    const cv_shape s = {3, {4, 4, 1}};
    cr_assert_eq(cv_dataset_write(TMP "/d.h5", N, s, CV_DTYPE_U8, x, y, NULL, 0, NULL, 0, &err), 0, "%s", err.msg);
    run(&(cv_train_opts){.data = TMP "/d.h5", .checkpoint = TMP "/file.h5", .quiet = true}, 0);
    cv_dataset ds;
    cr_assert_eq(cv_dataset_wrap(&ds, "arrays", N, s, CV_DTYPE_U8, x, y, NULL, 0, &err), 0, "%s", err.msg);
    run(&(cv_train_opts){.train_set = &ds, .checkpoint = TMP "/mem.h5", .quiet = true}, 0);
    cr_assert_eq(ds.x, x, "the set still points at the caller's array");
    int64_t n1, n2;
    float *a = weights_of(TMP "/file.h5", &n1), *b = weights_of(TMP "/mem.h5", &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, sizeof(float) * (size_t)n1), 0, "in-memory training differs from the file's");
    /* the same weights given as an array start a run as --init-from does */
    run(&(cv_train_opts){.train_set = &ds, .init_from = TMP "/mem.h5", .checkpoint = TMP "/i1.h5", .quiet = true}, 0);
    run(&(cv_train_opts){.train_set = &ds, .init_weights = b, .n_init_weights = n2, .checkpoint = TMP "/i2.h5",
                         .quiet = true}, 0);
    float *c = weights_of(TMP "/i1.h5", &n1), *e = weights_of(TMP "/i2.h5", &n2);
    cr_assert_eq(memcmp(c, e, sizeof(float) * (size_t)n1), 0, "init_weights differs from init_from");
    cr_assert_neq(memcmp(b, c, sizeof(float) * (size_t)n1), 0, "the continued run trained");
    free(a), free(b), free(c), free(e);
    cv_dataset_free(&ds); /* forgets the arrays: freeing a static array would crash */
    cr_assert_eq(memcmp(x, before, sizeof x), 0, "training left the caller's array as it was");
}

typedef struct {
    int calls, stop_at;
    char names[8][32];
    int n;
} seen;

static int on_epoch(void *ctx, int epoch, int n, const char *const *names, const double *values)
{
    seen *s = ctx;
    s->calls++;
    s->n = n;
    for (int i = 0; i < n && i < 8; i++) snprintf(s->names[i], sizeof s->names[i], "%s", names[i]);
    cr_assert(isfinite(values[0]) && values[0] > 0, "loss %g", values[0]);
    return epoch + 1 == s->stop_at;
}

Test(train_memory, epoch_end_callback_names_the_logs_and_stops)
{
    cv_err err;
    cv_dataset ds;
    cr_assert_eq(cv_dataset_wrap(&ds, "arrays", N, (cv_shape){3, {4, 4, 1}}, CV_DTYPE_U8, x, y, NULL, 0, &err), 0);
    seen s = {.stop_at = 2};
    run(&(cv_train_opts){.train_set = &ds, .quiet = true, .on_epoch_end = on_epoch, .epoch_ctx = &s}, 0);
    cr_assert_eq(s.calls, 2, "stopped after the second of 3 epochs, called %d times", s.calls);
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.names[0], "loss");
    cr_assert_str_eq(s.names[1], "accuracy");
    cr_assert_str_eq(s.names[2], "val_loss");
    cr_assert_str_eq(s.names[3], "val_accuracy");
}

Test(train_memory, bad_arrays_and_weight_counts_are_errors)
{
    cv_err err;
    cv_dataset ds;
    int32_t bad[N];
    memcpy(bad, y, sizeof bad);
    bad[5] = -2;
    cr_assert_eq(cv_dataset_wrap(&ds, "y", N, (cv_shape){3, {4, 4, 1}}, CV_DTYPE_U8, x, bad, NULL, 0, &err), -1);
    cr_assert_str_eq(err.msg, "y:/y: negative label -2 at row 5");
    float f[2 * 16] = {0};
    f[17] = NAN;
    cr_assert_eq(cv_dataset_wrap(&ds, "x", 2, (cv_shape){3, {4, 4, 1}}, CV_DTYPE_F32, f, y, NULL, 0, &err), -1);
    cr_assert_str_eq(err.msg, "x:/x: NaN at row 1");
    bad[5] = 3; /* outside the model's 3 classes: the trainer's data check names it */
    cr_assert_eq(cv_dataset_wrap(&ds, "y", N, (cv_shape){3, {4, 4, 1}}, CV_DTYPE_U8, x, bad, NULL, 0, &err), 0);
    cv_model_spec spec;
    cr_assert_eq(cv_model_parse(&spec, model, "mem.model", &err), 0, "%s", err.msg);
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_train(&spec, &(cv_train_opts){.train_set = &ds, .quiet = true}, &d, NULL, &err), -1);
    cr_assert(strstr(err.msg, "y:/y: label 3 at row 5"), "%s", err.msg);
    cr_assert_eq(cv_dataset_wrap(&ds, "x", N, (cv_shape){3, {4, 4, 1}}, CV_DTYPE_U8, x, y, NULL, 0, &err), 0);
    float w[4] = {0};
    cr_assert_eq(cv_train(&spec, &(cv_train_opts){.train_set = &ds, .quiet = true, .init_weights = w, .n_init_weights = 4},
                          &d, NULL, &err), -1);
    cr_assert(strstr(err.msg, "4 initial weights given, the model has"), "%s", err.msg);
    cv_model_spec_free(&spec);
}
