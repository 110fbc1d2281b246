/* End to end through the library: an MLP learns Fashion-MNIST from a small slice (loss falls,
 * accuracy far above chance), runs are bit-identical for a seed at any thread count, and
 * checkpoints round-trip through eval. */
#include <criterion/criterion.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/data.h"
#include "convoy/model.h"
#include "convoy/rng.h"
#include "convoy/train.h"

#define TMP CONVOY_TEST_TMP "/train"

static const char *mlp =
    "input shape=28,28,1\n"
    "flatten\n"
    "dense units=64 activation=relu\n"
    "dropout rate=0.1\n"
    "dense units=10 activation=softmax\n"
    "compile optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy\n"
    "fit epochs=3 batch_size=32 seed=5\n";

/* writes rows [from, from+n) of a converted Fashion-MNIST file to path */
static void slice(const cv_dataset *ds, int64_t from, int64_t n, const char *path)
{
    cv_err err;
    const int64_t d = cv_shape_size(ds->shape);
    cr_assert_eq(cv_dataset_write(path, n, ds->shape, ds->xtype, (uint8_t *)ds->x + from * d,
                                  ds->labels + from, NULL, 0, ds->class_names, ds->n_classes, &err),
                 0, "%s", err.msg);
}

static void setup(void)
{
    cv_err err;
    cv_dataset tr, te;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", TMP);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(cv_convert_fashion_mnist("/usr/share/datasets/fashion-mnist", TMP, NULL, 0, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&tr, TMP "/train.h5", &err), 0, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&te, TMP "/test.h5", &err), 0, "%s", err.msg);
    slice(&tr, 0, 3000, TMP "/small-train.h5");
    slice(&te, 0, 1000, TMP "/small-test.h5");
    cv_dataset_free(&tr);
    cv_dataset_free(&te);
}

TestSuite(train, .init = setup);

static void train(const char *ckpt, cv_epoch_stats *st)
{
    cv_model_spec spec;
    cv_err err;
    cr_assert_eq(cv_model_parse(&spec, mlp, "mlp.model", &err), 0, "%s", err.msg);
    const cv_train_opts o = {.data = TMP "/small-train.h5", .val = TMP "/small-test.h5", .checkpoint = ckpt, .quiet = true};
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_train(&spec, &o, &d, st, &err), 0, "%s", err.msg);
    cv_model_spec_free(&spec);
}

Test(train, mlp_learns)
{
    cv_epoch_stats st[3];
    train(NULL, st);
    const double l0 = st[0].train.loss / st[0].train.count, l2 = st[2].train.loss / st[2].train.count;
    const double acc = st[2].val.correct / st[2].val.count;
    cr_expect_lt(l2, 0.8 * l0, "training loss %g -> %g", l0, l2);
    cr_expect_gt(acc, 0.70, "validation accuracy %g after 3 epochs", acc);
    cr_expect_eq(st[2].val.count, 1000);
}

Test(train, same_seed_same_bits_any_thread_count)
{
    cv_epoch_stats a[3], b[3];
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    train(TMP "/a.h5", a);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    train(TMP "/b.h5", b);
    for (int e = 0; e < 3; e++) {
        cr_expect_eq(a[e].train.loss, b[e].train.loss, "epoch %d: %.17g vs %.17g", e, a[e].train.loss, b[e].train.loss);
        cr_expect_eq(a[e].val.loss, b[e].val.loss);
    }
    /* and the weights themselves */
    cv_err err;
    cv_normalizer na, nb;
    cv_net *x = cv_checkpoint_load(TMP "/a.h5", 8, &na, &err);
    cr_assert(x, "%s", err.msg);
    cv_net *y = cv_checkpoint_load(TMP "/b.h5", 8, &nb, &err);
    cr_assert(y, "%s", err.msg);
    cr_expect_eq(memcmp(cv_net_params(x), cv_net_params(y), sizeof(float) * (size_t)cv_net_param_count(x)), 0);
    cv_net_free(x);
    cv_net_free(y);
}

Test(train, checkpoint_evaluates_like_training)
{
    cv_epoch_stats st[3];
    train(TMP "/c.h5", st);
    cv_err err;
    cv_normalizer nz;
    cv_dataset te;
    cv_net *net = cv_checkpoint_load(TMP "/c.h5", 64, &nz, &err);
    cr_assert(net, "%s", err.msg);
    cr_assert_eq(cv_dataset_load(&te, TMP "/small-test.h5", &err), 0, "%s", err.msg);
    cv_metrics m;
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_evaluate(net, &te, &nz, NULL, te.n, &d, &m, &err), 0, "%s", err.msg);
    cr_expect_eq(m.count, 1000);
    cr_expect_float_eq(m.loss, st[2].val.loss, 1e-9 * st[2].val.loss);
    cr_expect_eq(m.correct, st[2].val.correct);
    cv_dataset_free(&te);
    cv_normalizer_free(&nz);
    cv_net_free(net);
}

/* validation_split holds out a seeded random fraction (never the last rows), and standardize
 * statistics come from the training rows only and travel in the checkpoint. */
Test(train, validation_split_is_shuffled_and_standardize_uses_training_rows)
{
    enum { N = 100 };
    float x[N];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i;
        y[i] = i % 2;
    }
    cv_err err;
    cr_assert_eq(cv_dataset_write(TMP "/rows.h5", N, cv_shape_vec(1), CV_DTYPE_F32, x, y, NULL, 0, NULL, 0, &err),
                 0, "%s", err.msg);
    const char *text = "input shape=1 normalize=standardize\n"
                       "dense units=2 activation=softmax\n"
                       "compile optimizer=sgd loss=sparse_categorical_crossentropy metrics=accuracy\n"
                       "fit epochs=1 batch_size=10 validation_split=0.2 seed=11\n";
    cv_model_spec spec;
    cr_assert_eq(cv_model_parse(&spec, text, "rows.model", &err), 0, "%s", err.msg);
    cv_epoch_stats st[1];
    const cv_train_opts o = {.data = TMP "/rows.h5", .checkpoint = TMP "/rows-ckpt.h5", .quiet = true};
    const cv_dist d = cv_dist_single();
    cr_assert_eq(cv_train(&spec, &o, &d, st, &err), 0, "%s", err.msg);
    cr_expect_eq(st[0].val.count, 20);
    cr_expect_eq(st[0].train.count, 80);

    /* the training rows are those the seeded split keeps: x = row index, so their mean says
     * which rows they were */
    int64_t perm[N];
    cv_permutation(perm, N, cv_key(11, CV_STREAM_SPLIT, 0, 0));
    double mean = 0.0, var = 0.0;
    for (int i = 20; i < N; i++) mean += (double)perm[i] / 80.0;
    for (int i = 20; i < N; i++) var += ((double)perm[i] - mean) * ((double)perm[i] - mean) / 80.0;
    cr_expect_neq(mean, 39.5, "the held-out rows must not be the last ones");

    cv_normalizer nz;
    cv_net *net = cv_checkpoint_load(TMP "/rows-ckpt.h5", 4, &nz, &err);
    cr_assert(net, "%s", err.msg);
    cr_expect_eq(nz.mode, CV_NORM_STANDARDIZE);
    cr_expect_float_eq(nz.mean[0], mean, 1e-4, "mean %g, expected %g", nz.mean[0], mean);
    cr_expect_float_eq(nz.std[0], sqrt(var), 1e-4);
    cv_net_free(net);
    cv_normalizer_free(&nz);
    cv_model_spec_free(&spec);
}
