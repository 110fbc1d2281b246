/* Checkpoint integrity (issue 23): non-finite tensors, a flipped byte caught by the per-tensor
 * CRC32C, /train and root attributes out of range, and a resume whose layers differ in any key
 * that changes the arithmetic. Each is refused on load with one line naming the file and the
 * place; the file itself is never written by a load.
 *
 * Named bad-input cases (// case N: below): 1-5 non-finite tensors, 6-7 checksums, 8-20
 * attributes, 21-24 architecture, 25-26 negative squares and variances, 27-34 the optimizer's
 * hyper-parameters. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/model.h"
#include "netcheck.h"
#include "io/h5io.h"

#define TMP CONVOY_TEST_TMP "/integrity-"

static const char *small = "input shape=6\n"
                           "dense units=5 activation=relu\n"
                           "dropout rate=0.25\n"
                           "dense units=3 activation=softmax\n"
                           "compile optimizer=adam loss=sparse_categorical_crossentropy\n";

/* The float tensors of save_state's checkpoints. */
static const char *const tensors[] = {"layers/01_dense/kernel", "layers/01_dense/bias", "layers/03_dense/kernel",
                                      "layers/03_dense/bias",   "optimizer/s1",         "optimizer/s2",
                                      "train/epoch_sums"};

/* A resumable checkpoint of `small`: 1 epoch and 1 step done (6 rows at batch 2: 3 steps an
 * epoch, global step 4, adam's t 4). nan_s1 / best put a NaN in the optimizer state or a
 * best-weights snapshot. */
static void save_state(const char *path, bool nan_s1, const float *best)
{
    cv_model_spec spec;
    cv_net *net = make_net(small, &spec);
    cv_err err;
    cv_optim opt;
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
    cr_assert_eq(cv_optim_init(&opt, &spec.optim, cv_net_grad_count(net), &err), 0);
    opt.t = 4;
    if (nan_s1) opt.s1[0] = NAN;
    cv_train_state st = {.epoch = 1, .step_in_epoch = 1, .global_step = 4, .batch_size = 2, .n_train = 6,
                         .seed = spec.fit.seed, .best_weights = best};
    cv_callbacks_init(&st.cb, &spec.callbacks);
    cr_assert_eq(cv_checkpoint_save_state(path, net, &nz, &opt, &st, &err), 0, "%s", err.msg);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

/* Resumes path into a net of `text`; 0 or -1 with the message in msg. */
static int resume(const char *path, const char *text, char *msg, size_t size)
{
    cv_model_spec spec;
    cv_net *net = make_net(text, &spec);
    cv_err err = {0};
    cv_optim opt;
    cv_normalizer nz;
    cv_train_state st;
    int has_best;
    cr_assert_eq(cv_optim_init(&opt, &spec.optim, cv_net_grad_count(net), &err), 0);
    float *best = calloc((size_t)cv_net_param_count(net), sizeof(float));
    const int rc = cv_checkpoint_resume(path, net, &opt, &nz, &st, best, &has_best, &err);
    snprintf(msg, size, "%s", rc ? err.msg : "");
    if (rc == 0) cv_normalizer_free(&nz);
    free(best);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_model_spec_free(&spec);
    return rc;
}

/* Rewrites attribute name of obj (deleted and created again with its type: HDF5 1.10 cannot
 * H5Awrite some attributes in place in these files). */
static void set_attr(const char *path, const char *obj, const char *name, hid_t type, const void *v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(a, 0, "%s %s", obj, name);
    hid_t ft = H5Aget_type(a), space = H5Aget_space(a);
    H5Aclose(a);
    cr_assert_geq(H5Adelete_by_name(f, obj, name, H5P_DEFAULT), 0);
    a = H5Acreate_by_name(f, obj, name, ft, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(a, 0, "%s %s", obj, name);
    cr_assert_geq(H5Awrite(a, type, v), 0, "%s %s", obj, name);
    H5Aclose(a);
    H5Tclose(ft);
    H5Sclose(space);
    H5Fclose(f);
}

static void set_i64(const char *path, const char *obj, const char *name, long long v)
{
    set_attr(path, obj, name, H5T_NATIVE_LLONG, &v);
}

static void set_f64(const char *path, const char *obj, const char *name, double v)
{
    set_attr(path, obj, name, H5T_NATIVE_DOUBLE, &v);
}

static void expect_resume_error(const char *path, const char *want)
{
    char msg[1024];
    cr_assert_neq(resume(path, small, msg, sizeof msg), 0, "resume accepted %s", path);
    cr_expect(strstr(msg, want), "got: %s\nwant: %s", msg, want);
}

/* Bytes of a file, to check a refused load left it as it was. */
static long file_bytes(const char *path, unsigned char *buf, long max)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    const long n = (long)fread(buf, 1, (size_t)max, f);
    fclose(f);
    return n;
}

Test(integrity, crc32c_is_castagnolis)
{
    cr_expect_eq(cv_crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check value */
    cr_expect_eq(cv_crc32c(cv_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    cr_expect_eq(cv_crc32c(0, "", 0), 0u);
    cr_expect_eq(cv_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    /* the instruction and the tables agree at every length and alignment */
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 131u + 7u);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 13)
            cr_expect_eq(cv_crc32c(5, buf + off, n), cv_crc32c_portable(5, buf + off, n), "off %zu n %zu", off, n);
}

Test(integrity, every_tensor_carries_its_checksum)
{
    save_state(TMP "sum.h5", false, NULL);
    hid_t f = H5Fopen(TMP "sum.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        cr_expect_gt(H5Aexists_by_name(f, tensors[i], CV_H5_CRC_ATTR, H5P_DEFAULT), 0, "%s has no checksum", tensors[i]);
    /* the attribute is the CRC32C of the values' bytes */
    float k[30];
    long long crc = 0;
    hid_t d = H5Dopen2(f, "layers/01_dense/kernel", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, k), 0);
    hid_t a = H5Aopen(d, CV_H5_CRC_ATTR, H5P_DEFAULT);
    cr_assert_geq(H5Aread(a, H5T_NATIVE_LLONG, &crc), 0);
    cr_expect_eq((uint32_t)crc, cv_crc32c(0, k, sizeof k));
    H5Aclose(a);
    H5Dclose(d);
    H5Fclose(f);
    char msg[512];
    cr_expect_eq(resume(TMP "sum.h5", small, msg, sizeof msg), 0, "%s", msg);
}

Test(integrity, non_finite_tensors_are_refused_naming_the_place)
{
    cv_model_spec spec;
    cv_net *net = make_net(small, &spec);
    const cv_param_view v = cv_net_param_view(net, 3);
    cv_err err;
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6}, got;
    // case 1: a NaN in a kernel (a diverged run's weights): eval/predict's load names it
    cv_net_params(net)[v.kernel_off + 7] = NAN; /* (5,3): row 2, column 1 */
    cr_assert_eq(cv_checkpoint_save(TMP "nan.h5", net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    cr_expect_null(cv_checkpoint_load(TMP "nan.h5", 4, &got, &err));
    cr_expect(strstr(err.msg, "nan.h5:/layers/03_dense/kernel: NaN at [2,1]"), "%s", err.msg);
    // case 2: the same file as --init-from
    cv_model_spec s2;
    cv_net *other = make_net(small, &s2);
    cr_expect_neq(cv_checkpoint_init_from(TMP "nan.h5", other, &err), 0);
    cr_expect(strstr(err.msg, "nan.h5:/layers/03_dense/kernel: NaN at [2,1]"), "%s", err.msg);
    // case 3: an Inf in a bias, several non-finite values counted
    cv_net_params(net)[v.kernel_off + 7] = 0.0f;
    cv_net_params(net)[v.bias_off + 1] = INFINITY;
    cv_net_params(net)[v.bias_off + 2] = -INFINITY;
    cr_assert_eq(cv_checkpoint_save(TMP "inf.h5", net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    cr_expect_null(cv_checkpoint_load(TMP "inf.h5", 4, &got, &err));
    cr_expect(strstr(err.msg, "inf.h5:/layers/03_dense/bias: Inf at [1] (2 non-finite values in all)"), "%s", err.msg);
    cv_net_params(net)[v.bias_off + 1] = cv_net_params(net)[v.bias_off + 2] = 0.0f;
    // case 4: the normaliser: an Inf mean, then a zero standard deviation
    float mean[6] = {0, 0, INFINITY, 0, 0, 0}, sd[6] = {1, 1, 1, 1, 1, 1};
    cv_normalizer st = {.mode = CV_NORM_STANDARDIZE, .dim = 6, .mean = mean, .std = sd};
    cr_assert_eq(cv_checkpoint_save(TMP "norm.h5", net, &st, NULL, 1, &err), 0, "%s", err.msg);
    cr_expect_null(cv_checkpoint_load(TMP "norm.h5", 4, &got, &err));
    cr_expect(strstr(err.msg, "norm.h5:/normalize/mean: Inf at [2]"), "%s", err.msg);
    mean[2] = 0.0f;
    sd[4] = 0.0f;
    cr_assert_eq(cv_checkpoint_save(TMP "norm.h5", net, &st, NULL, 1, &err), 0, "%s", err.msg);
    cr_expect_null(cv_checkpoint_load(TMP "norm.h5", 4, &got, &err));
    cr_expect(strstr(err.msg, "norm.h5:/normalize/std: 0 at [4] (a standard deviation must be > 0)"), "%s", err.msg);
    cv_net_free(other);
    cv_model_spec_free(&s2);
    cv_net_free(net);
    cv_model_spec_free(&spec);

    // case 5: the optimizer state and the best-weights snapshot on resume
    save_state(TMP "s1.h5", true, NULL);
    expect_resume_error(TMP "s1.h5", "s1.h5:/optimizer/s1: NaN at [0]");
    float best[64] = {0};
    best[9] = NAN;
    save_state(TMP "best.h5", false, best);
    expect_resume_error(TMP "best.h5", "best.h5:/train/best_weights: NaN at [9]: layer 1's kernel (dense at m.model:2)");
}

/* The file offset of a contiguous dataset's first byte. */
static haddr_t offset_of(const char *path, const char *ds)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
    const haddr_t at = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    cr_assert_neq(at, HADDR_UNDEF, "%s is not contiguous", ds);
    return at;
}

Test(integrity, a_flipped_byte_is_caught_and_files_without_checksums_load)
{
    save_state(TMP "flip.h5", false, NULL);
    // case 6: one byte of a saved kernel changed on disk (a bit flip): load, resume and
    // --init-from all refuse it, and the refusals leave the file as it is
    const haddr_t at = offset_of(TMP "flip.h5", "layers/01_dense/kernel");
    FILE *fp = fopen(TMP "flip.h5", "r+b");
    cr_assert(fp);
    cr_assert_eq(fseek(fp, (long)at + 5, SEEK_SET), 0);
    const int c = fgetc(fp);
    cr_assert_eq(fseek(fp, (long)at + 5, SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    static unsigned char before[1 << 16], after[1 << 16];
    const long n = file_bytes(TMP "flip.h5", before, sizeof before);
    cv_err err;
    cv_normalizer nz;
    cr_expect_null(cv_checkpoint_load(TMP "flip.h5", 4, &nz, &err));
    cr_expect(strstr(err.msg, "flip.h5:/layers/01_dense/kernel: checksum mismatch (attribute crc32c is 0x"), "%s",
              err.msg);
    cr_expect(strstr(err.msg, "the file is damaged"), "%s", err.msg);
    expect_resume_error(TMP "flip.h5", "flip.h5:/layers/01_dense/kernel: checksum mismatch");
    cr_expect_eq(file_bytes(TMP "flip.h5", after, sizeof after), n);
    cr_expect_arr_eq(before, after, (size_t)n, "a refused load changed the file");

    // case 7: a damaged checksum attribute itself (beyond 32 bits) is refused too
    save_state(TMP "attr.h5", false, NULL);
    set_i64(TMP "attr.h5", "layers/03_dense/bias", CV_H5_CRC_ATTR, -1);
    expect_resume_error(TMP "attr.h5", "attr.h5:/layers/03_dense/bias: checksum mismatch");

    /* a checkpoint without the attributes (older convoy, h5py) still loads and resumes */
    save_state(TMP "old.h5", false, NULL);
    hid_t f = H5Fopen(TMP "old.h5", H5F_ACC_RDWR, H5P_DEFAULT);
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        cr_assert_geq(H5Adelete_by_name(f, tensors[i], CV_H5_CRC_ATTR, H5P_DEFAULT), 0, "%s", tensors[i]);
    H5Fclose(f);
    char msg[512];
    cr_expect_eq(resume(TMP "old.h5", small, msg, sizeof msg), 0, "%s", msg);
    cv_net *net = cv_checkpoint_load(TMP "old.h5", 4, &nz, &err);
    cr_expect(net, "%s", err.msg);
    cv_net_free(net);
    cv_normalizer_free(&nz);
}

/* One bad attribute: where, which, the bad value (an integer unless is_f64), the message
 * expected, and the good value written back after. */
typedef struct {
    const char *obj, *name;
    bool is_f64;
    double bad, good;
    const char *want;
} bad_attr;

Test(integrity, train_attributes_out_of_range_are_refused)
{
    const char *p = TMP "attrs.h5";
    save_state(p, false, NULL);
    char msg[512];
    cr_assert_eq(resume(p, small, msg, sizeof msg), 0, "%s", msg);
    const bad_attr cases[] = {
        // case 8: step_in_epoch 1e9 (gave negative img/s)
        {"train", "step_in_epoch", false, 1e9, 1,
         "attrs.h5:/train: attribute step_in_epoch is 1000000000, allowed 0..3 (an epoch of 6 rows at batch 2 has 3 steps)"},
        // case 9: a negative step_in_epoch
        {"train", "step_in_epoch", false, -1, 1, "attribute step_in_epoch is -1, allowed 0..3"},
        // case 10: a negative epoch (printed "epoch -4/2")
        {".", "epoch", false, -4, 1, "attrs.h5:/: attribute epoch is -4, allowed 0..2147483647"},
        // case 11: global_step not where epoch and step put it
        {"train", "global_step", false, 99, 4,
         "attrs.h5:/train: attribute global_step is 99, but epoch 1 × 3 steps + step_in_epoch 1 is 4"},
        // case 12: batch_size 0, n_train negative
        {"train", "batch_size", false, 0, 2, "attrs.h5:/train: attribute batch_size is 0, allowed 1.."},
        {"train", "n_train", false, -6, 6, "attrs.h5:/train: attribute n_train is -6, allowed 1.."},
        // case 13: a patience counter beyond the epochs done
        {"train", "es_wait", false, 5, 0, "attrs.h5:/train: attribute es_wait is 5, allowed 0..1"},
        // case 14: a negative plateau_wait
        {"train", "plateau_wait", false, -3, 0, "attribute plateau_wait is -3, allowed 0..1"},
        // case 15: a negative cooldown
        {"train", "cooldown", false, -1, 0, "attribute cooldown is -1, allowed 0..2147483647"},
        // case 16: best_epoch after the epochs done
        {"train", "best_epoch", false, 7, 0, "attribute best_epoch is 7, allowed 0..1"},
        // case 17: early_stopped neither 0 nor 1
        {"train", "early_stopped", false, 7, 0, "attribute early_stopped is 7, allowed 0..1 (a flag)"},
        // case 18: lr_scale 0, above 1, NaN
        {"train", "lr_scale", true, 0.0, 1.0, "attrs.h5:/train: attribute lr_scale is 0, allowed (0, 1]"},
        {"train", "lr_scale", true, 2.0, 1.0, "attribute lr_scale is 2, allowed (0, 1]"},
        {"train", "lr_scale", true, NAN, 1.0, "attribute lr_scale is nan, allowed (0, 1]"},
        // case 19: a NaN best value (±inf is "none yet")
        {"train", "es_best", true, NAN, INFINITY, "attrs.h5:/train: attribute es_best is NaN"},
        // case 20: the optimizer's t other than the global step
        {"optimizer", "t", false, -2, 4, "attrs.h5:/optimizer: attribute t is -2, allowed exactly /train's global_step 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_attr *c = &cases[i];
        if (c->is_f64) set_f64(p, c->obj, c->name, c->bad);
        else set_i64(p, c->obj, c->name, (long long)c->bad);
        expect_resume_error(p, c->want);
        if (c->is_f64) set_f64(p, c->obj, c->name, c->good);
        else set_i64(p, c->obj, c->name, (long long)c->good);
    }
    cr_expect_eq(resume(p, small, msg, sizeof msg), 0, "restored attributes: %s", msg);
    /* step_in_epoch equal to the epoch's steps (3): a save after its last step and before its end
     * (a SIGTERM there, as under mpirun in e2e_mpmd), which resumes to the epoch's end */
    set_i64(p, "train", "step_in_epoch", 3);
    set_i64(p, "train", "global_step", 6);
    set_i64(p, "optimizer", "t", 6);
    cr_expect_eq(resume(p, small, msg, sizeof msg), 0, "step_in_epoch = steps: %s", msg);
}

/* small with `from` replaced by `to` */
static void variant(char *out, size_t size, const char *from, const char *to)
{
    const char *at = strstr(small, from);
    cr_assert(at, "%s", from);
    snprintf(out, size, "%.*s%s%s", (int)(at - small), small, to, at + strlen(from));
}

Test(integrity, resume_names_any_layer_key_that_differs)
{
    const char *p = TMP "arch.h5";
    save_state(p, false, NULL);
    char text[512], msg[1024];
    // case 21: a relu checkpoint resumed as tanh
    variant(text, sizeof text, "units=5 activation=relu", "units=5 activation=tanh");
    cr_expect_neq(resume(p, text, msg, sizeof msg), 0);
    cr_expect(strstr(msg, "arch.h5: layer 1 (dense, m.model:2) has activation=tanh, the checkpoint relu"), "%s", msg);
    // case 22: leaky_relu's slope
    save_state(p, false, NULL);
    variant(text, sizeof text, "activation=relu", "activation=leaky_relu alpha=0.1");
    char lk[512];
    snprintf(lk, sizeof lk, "%s", text);
    {
        cv_model_spec spec;
        cv_net *net = make_net(lk, &spec);
        cv_err err;
        cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
        cv_optim opt;
        cr_assert_eq(cv_optim_init(&opt, &spec.optim, cv_net_grad_count(net), &err), 0);
        cv_train_state st = {.epoch = 1, .global_step = 3, .batch_size = 2, .n_train = 6, .seed = spec.fit.seed};
        opt.t = 3;
        cv_callbacks_init(&st.cb, &spec.callbacks);
        cr_assert_eq(cv_checkpoint_save_state(TMP "leaky.h5", net, &nz, &opt, &st, &err), 0, "%s", err.msg);
        cv_optim_free(&opt);
        cv_net_free(net);
        cv_model_spec_free(&spec);
    }
    variant(text, sizeof text, "activation=relu", "activation=leaky_relu alpha=0.3");
    cr_expect_neq(resume(TMP "leaky.h5", text, msg, sizeof msg), 0);
    cr_expect(strstr(msg, "leaky.h5: layer 1 (dense, m.model:2) has alpha=0.300000012, the checkpoint 0.100000001"),
              "%s", msg);
    // case 23: a dropout rate (no weights, same shapes)
    variant(text, sizeof text, "rate=0.25", "rate=0.5");
    cr_expect_neq(resume(p, text, msg, sizeof msg), 0);
    cr_expect(strstr(msg, "arch.h5: layer 2 (dropout, m.model:3) has rate=0.5, the checkpoint 0.25"), "%s", msg);
    // case 24: use_bias (same output shape, another parameter count: the shape message names it)
    variant(text, sizeof text, "units=3 activation=softmax", "units=3 activation=softmax use_bias=false");
    cr_expect_neq(resume(p, text, msg, sizeof msg), 0);
    cr_expect(strstr(msg, "arch.h5: checkpoint of another architecture: layer 3"), "%s", msg);
    /* the same model resumes */
    cr_expect_eq(resume(p, small, msg, sizeof msg), 0, "%s", msg);
}

Test(integrity, negative_squares_and_variances_are_refused)
{
    // case 25: adam's v (a running mean of squares) negative
    cv_model_spec spec;
    cv_net *net = make_net(small, &spec);
    cv_err err;
    cv_optim opt;
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6}, got;
    cr_assert_eq(cv_optim_init(&opt, &spec.optim, cv_net_grad_count(net), &err), 0);
    opt.t = 4;
    opt.s2[5] = -0.5f;
    cv_train_state st = {.epoch = 1, .step_in_epoch = 1, .global_step = 4, .batch_size = 2, .n_train = 6,
                         .seed = spec.fit.seed};
    cv_callbacks_init(&st.cb, &spec.callbacks);
    cr_assert_eq(cv_checkpoint_save_state(TMP "neg-v.h5", net, &nz, &opt, &st, &err), 0, "%s", err.msg);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_model_spec_free(&spec);
    expect_resume_error(TMP "neg-v.h5", "neg-v.h5:/optimizer/s2: -0.5 at [5] (adam keeps squares or variances here: "
                                        "never negative)");
    // case 26: a batchnorm's moving variance negative: eval/predict's load refuses it
    const char *bn = "input shape=6\n"
                     "dense units=4\n"
                     "batchnorm\n"
                     "dense units=3 activation=softmax\n"
                     "compile optimizer=sgd loss=sparse_categorical_crossentropy\n";
    net = make_net(bn, &spec);
    const cv_param_view v = cv_net_param_view(net, 2);
    cr_assert_eq(v.state_n, 8);
    cv_net_params(net)[v.state_off + 4 + 2] = -1.0f; /* moving_variance[2] */
    cr_assert_eq(cv_checkpoint_save(TMP "neg-var.h5", net, &nz, NULL, 1, &err), 0, "%s", err.msg);
    cr_expect_null(cv_checkpoint_load(TMP "neg-var.h5", 4, &got, &err));
    cr_expect(strstr(err.msg, "neg-var.h5:/layers/02_batchnorm/moving_variance: -1 at [2] (batchnorm keeps squares or "
                              "variances here: never negative)"), "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(integrity, optimizer_hyper_parameters_out_of_range_are_refused)
{
    const char *p = TMP "optim.h5";
    const struct {
        const char *name;
        double bad;
        const char *want;
    } cases[] = {
        // case 27: a NaN, an infinite and a negative learning rate
        {"learning_rate", NAN, "optim.h5:/optimizer: attribute learning_rate is nan, allowed [0, inf)"},
        {"learning_rate", INFINITY, "attribute learning_rate is inf, allowed [0, inf)"},
        {"learning_rate", -0.1, "attribute learning_rate is -0.1, allowed [0, inf)"},
        // case 28: beta_1 of 1 (adam's first moment would never move)
        {"beta_1", 1.0, "optim.h5:/optimizer: attribute beta_1 is 1, allowed [0, 1)"},
        // case 29: beta_2 negative, and NaN
        {"beta_2", -0.5, "attribute beta_2 is -0.5, allowed [0, 1)"},
        {"beta_2", NAN, "attribute beta_2 is nan, allowed [0, 1)"},
        // case 30: epsilon 0 (a division by sqrt(v) + 0) and -inf
        {"epsilon", 0.0, "optim.h5:/optimizer: attribute epsilon is 0, allowed (0, inf)"},
        {"epsilon", -INFINITY, "attribute epsilon is -inf, allowed (0, inf)"},
        // case 31: rho above 1
        {"rho", 1.5, "attribute rho is 1.5, allowed [0, 1)"},
        // case 32: momentum NaN
        {"momentum", NAN, "attribute momentum is nan, allowed [0, 1)"},
        // case 33: a negative initial_accumulator_value
        {"initial_accumulator_value", -1.0, "attribute initial_accumulator_value is -1, allowed [0, inf)"},
        // case 34: a momentum variant that is none of the three
        {"variant", 7.0, "optim.h5:/optimizer: attribute variant is 7, allowed 0, 1 or 2 (ewa, classic, nesterov)"},
        {"variant", 0.5, "attribute variant is 0.5, allowed 0, 1 or 2"},
    };
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        save_state(p, false, NULL);
        cr_assert_eq(resume(p, small, msg, sizeof msg), 0, "%s", msg);
        set_f64(p, "optimizer", cases[i].name, cases[i].bad);
        expect_resume_error(p, cases[i].want);
    }
}
