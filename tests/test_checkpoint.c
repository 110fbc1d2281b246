/* Checkpoint files: the version check, resume refusing another architecture or optimizer, and
 * --init-from naming the first layer whose shape differs. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/model.h"
#include "netcheck.h"

#define TMP CONVOY_TEST_TMP "/ckpt-"

static const char *small = "input shape=6\n"
                           "dense units=5 activation=relu\n"
                           "dense units=3 activation=softmax\n"
                           "compile optimizer=adam loss=sparse_categorical_crossentropy\n";

static void save(cv_net *net, const cv_model_spec *spec, const char *path)
{
    cv_err err;
    cv_optim opt;
    cv_normalizer nz = {.mode = CV_NORM_NONE, .dim = 6};
    cr_assert_eq(cv_optim_init(&opt, &spec->optim, cv_net_param_count(net), &err), 0);
    cr_assert_eq(cv_checkpoint_save(path, net, &nz, &opt, 1, &err), 0, "%s", err.msg);
    cv_optim_free(&opt);
}

Test(checkpoint, another_format_version_is_refused)
{
    cv_model_spec spec;
    cv_net *net = make_net(small, &spec);
    save(net, &spec, TMP "v.h5");
    hid_t f = H5Fopen(TMP "v.h5", H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    const long long two = 2;
    cr_assert_geq(H5Awrite(a, H5T_NATIVE_LLONG, &two), 0);
    H5Aclose(a);
    H5Fclose(f);
    cv_err err;
    cv_model_spec s2;
    cr_assert_neq(cv_checkpoint_spec(TMP "v.h5", &s2, &err), 0);
    cr_expect(strstr(err.msg, "v.h5: checkpoint format version 2, this convoy reads version 1"), "%s", err.msg);
    cv_net_free(net);
    cv_model_spec_free(&spec);
}

Test(checkpoint, resume_refuses_another_architecture_and_optimizer)
{
    cv_model_spec a, b;
    cv_net *na = make_net(small, &a);
    save(na, &a, TMP "a.h5");
    char other[512];
    snprintf(other, sizeof other, "%s", small);
    memcpy(strstr(other, "units=5"), "units=7", 7);
    cv_net *nb = make_net(other, &b);
    cv_err err;
    cv_optim opt;
    cv_normalizer nz;
    cv_train_state st;
    int has_best;
    cr_assert_eq(cv_optim_init(&opt, &b.optim, cv_net_param_count(nb), &err), 0);
    cr_assert_neq(cv_checkpoint_resume(TMP "a.h5", nb, &opt, &nz, &st, NULL, &has_best, &err), 0);
    cr_expect(strstr(err.msg, "a.h5: checkpoint of another architecture: layer 1 is dense (5) in the checkpoint but "
                              "dense (7) in m.model:2"), "%s", err.msg);
    cv_optim_free(&opt);

    cv_optim_config sgd = cv_optim_defaults(CV_OPT_SGD);
    cr_assert_eq(cv_optim_init(&opt, &sgd, cv_net_param_count(na), &err), 0);
    cr_assert_neq(cv_checkpoint_resume(TMP "a.h5", na, &opt, &nz, &st, NULL, &has_best, &err), 0);
    cr_expect(strstr(err.msg, "holds adam state but this run uses sgd"), "%s", err.msg);
    cv_optim_free(&opt);
    cv_net_free(na);
    cv_net_free(nb);
    cv_model_spec_free(&a);
    cv_model_spec_free(&b);
}

Test(checkpoint, init_from_names_the_first_mismatch_and_loads_matching_weights)
{
    cv_model_spec a, b;
    cv_net *na = make_net(small, &a);
    for (int64_t i = 0; i < cv_net_param_count(na); i++) cv_net_params(na)[i] = (float)i * 0.5f;
    save(na, &a, TMP "w.h5");
    char other[512];
    snprintf(other, sizeof other, "%s", small);
    memcpy(strstr(other, "units=3"), "units=4", 7);
    cv_net *nb = make_net(other, &b);
    cv_err err;
    cr_assert_neq(cv_checkpoint_init_from(TMP "w.h5", nb, &err), 0);
    cr_expect(strstr(err.msg, "w.h5:/layers/02_dense/kernel: shape (5,3) but expected (5,4)"), "%s", err.msg);
    cv_model_spec c;
    cv_net *nc = make_net(small, &c);
    cr_assert_eq(cv_checkpoint_init_from(TMP "w.h5", nc, &err), 0, "%s", err.msg);
    cr_expect_arr_eq(cv_net_params(nc), cv_net_params(na), sizeof(float) * (size_t)cv_net_param_count(na));
    cv_net_free(na);
    cv_net_free(nb);
    cv_net_free(nc);
    cv_model_spec_free(&a);
    cv_model_spec_free(&b);
    cv_model_spec_free(&c);
}
