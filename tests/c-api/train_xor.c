/* A user's program against convoy's public API only (<convoy/convoy.h>, libconvoy): the XOR
 * of two coordinates' signs, learned two ways. First a hand-written loop (forward, loss,
 * backward, optimizer step) on a network built from a model given as a string; then cv_train
 * on an HDF5 dataset the program writes, followed by loading the checkpoint and evaluating it.
 * Exits 0 when both losses fell and the trained model classifies the points; 1 otherwise.
 * usage: train_xor [SCRATCH_DIR]   (default: the current directory) */
#include <convoy/convoy.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 512, EPOCHS = 30 };

static const char model[] =
    "input   shape=2\n"
    "dense   units=16 activation=tanh\n"
    "dense   units=2 activation=softmax\n"
    "compile optimizer=adam learning_rate=0.02 loss=sparse_categorical_crossentropy metrics=accuracy\n"
    "fit     epochs=30 batch_size=32 seed=7\n";

static int failed(const char *what, const cv_err *err)
{
    fprintf(stderr, "train_xor: %s: %s\n", what, err->msg);
    return 1;
}

/* N points in [-1, 1)^2 from a fixed LCG; label 1 when the signs differ */
static void make_xor(float *x, int32_t *y)
{
    uint32_t s = 12345;
    for (int i = 0; i < 2 * N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
    }
    for (int i = 0; i < N; i++) y[i] = (x[2 * i] > 0) != (x[2 * i + 1] > 0);
}

/* 200 full-batch steps by hand: returns the mean loss of the first and the last step */
static int manual_loop(const cv_model_spec *spec, const float *x, const int32_t *y, double loss[2])
{
    cv_err err;
    cv_optim opt;
    cv_net *net = cv_net_create(spec, N, spec->fit.seed, &err);
    if (!net) return failed("cv_net_create", &err);
    if (cv_optim_init(&opt, &spec->optim, cv_net_grad_count(net), &err)) {
        cv_net_free(net);
        return failed("cv_optim_init", &err);
    }
    for (int step = 0; step < 200; step++) {
        cv_net_zero_grad(net);
        cv_net_forward(net, x, N, true, spec->fit.seed, 0, NULL);
        const double l = cv_net_loss(net, y, NULL, N) / N;
        cv_net_backward(net, y, NULL, N, N);
        cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net));
        loss[step == 0 ? 0 : 1] = l;
    }
    cv_optim_free(&opt);
    cv_net_free(net);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char data[512], ckpt[512];
    snprintf(data, sizeof data, "%s/xor-data.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/xor-model.h5", dir);
    printf("convoy %s (headers %s)\n", cv_version(), CONVOY_VERSION_STRING);

    static float x[2 * N];
    static int32_t y[N];
    make_xor(x, y);
    cv_err err;
    cv_model_spec spec;
    if (cv_model_parse(&spec, model, "xor.model", &err)) return failed("cv_model_parse", &err);

    double manual[2];
    if (manual_loop(&spec, x, y, manual)) return 1;
    printf("hand-written loop: loss %.4f -> %.4f\n", manual[0], manual[1]);

    /* the same problem through the fit loop, from a file, as `convoy train` runs it */
    char *classes[] = {"same sign", "different signs"};
    const cv_dist one = cv_dist_single();
    const cv_train_opts o = {.data = data, .checkpoint = ckpt, .quiet = true};
    cv_epoch_stats st[EPOCHS];
    if (cv_dataset_write(data, N, cv_shape_vec(2), CV_DTYPE_F32, x, y, NULL, 0, classes, 2, &err))
        return failed("cv_dataset_write", &err);
    if (cv_train(&spec, &o, &one, st, &err) != 0) return failed("cv_train", &err);
    const double first = st[0].train.loss / st[0].train.count;
    const double last = st[EPOCHS - 1].train.loss / st[EPOCHS - 1].train.count;
    printf("cv_train: loss %.4f -> %.4f over %d epochs\n", first, last, EPOCHS);
    cv_model_spec_free(&spec);

    /* a saved model, as `convoy eval` uses it */
    cv_normalizer nz;
    cv_dataset ds;
    cv_metrics m;
    cv_net *net = cv_checkpoint_load(ckpt, CV_MICRO_BATCH, &nz, &err);
    if (!net) return failed("cv_checkpoint_load", &err);
    if (cv_dataset_load(&ds, data, &err) || cv_evaluate(net, &ds, &nz, NULL, ds.n, &one, &m, &err))
        return failed("evaluate", &err);
    const double acc = m.correct / m.count;
    printf("checkpoint %s: accuracy %.4f on %lld points\n", ckpt, acc, (long long)m.count);
    cv_dataset_free(&ds);
    cv_normalizer_free(&nz);
    cv_net_free(net);

    int bad = 0;
    if (!(manual[1] < 0.5 * manual[0])) bad = fprintf(stderr, "train_xor: the hand-written loop did not learn\n");
    if (!(last < 0.5 * first)) bad = fprintf(stderr, "train_xor: cv_train's loss did not halve\n");
    if (!(acc > 0.9)) bad = fprintf(stderr, "train_xor: accuracy %.4f is not above 0.9\n", acc);
    return bad ? 1 : 0;
}
