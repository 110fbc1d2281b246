/* Hyperparameter search: hp.* parsing and its FILE:LINE errors, sampling (range, step, log
 * space, same seed same trials), substitution into the model text, the Hyperband schedule
 * against Li et al.'s Table 1, and trials.h5 written and read back. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/tune.h"
#include "tune/tune-impl.h"

#define HEAD "input shape=4\n"
#define TAIL "dense units=3 activation=softmax\ncompile loss=sparse_categorical_crossentropy metrics=accuracy\n"

static cv_model_spec spec;
static void teardown(void) { cv_model_spec_free(&spec); }
TestSuite(tune, .fini = teardown);

static void parse_ok(const char *text)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, text, "s.model", &err), 0, "parse failed: %s", err.msg);
}

static void parse_fails(const char *text, const char *where, const char *why)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, text, "s.model", &err), -1, "parse succeeded; expected %s %s", where, why);
    cr_assert_not_null(strstr(err.msg, where), "message \"%s\" lacks \"%s\"", err.msg, where);
    cr_assert_not_null(strstr(err.msg, why), "message \"%s\" lacks \"%s\"", err.msg, why);
    cr_assert_null(strchr(err.msg, '\n'));
}

Test(tune, hp_sites_and_defaults)
{
    parse_ok(HEAD "dense units=hp.int(8,64,step=8) activation=hp.choice(relu,tanh,name=act)\n"
                  "dropout rate=hp.float(0.1,0.5)\n"
                  "dense units=hp.int(4,8) use_bias=hp.bool()\n" TAIL
             "fit batch_size=hp.choice(16,all)\n");
    cr_assert_eq(spec.n_hp, 6);
    const char *names[] = {"units", "act", "rate", "units_4", "use_bias", "batch_size"};
    for (int i = 0; i < 6; i++) cr_assert_str_eq(spec.hp[i].name, names[i]);
    cr_assert_eq(spec.hp[0].kind, CV_HP_INT);
    cr_assert_eq(spec.hp[0].step, 8);
    cr_assert_eq(spec.hp[1].n_choices, 2);
    cr_assert_eq(spec.hp[2].line, 3);
    /* the spec holds the defaults: lo, the first choice, false */
    cr_assert_eq(spec.layers[1].units, 8);
    cr_assert_eq(spec.layers[1].act, CV_ACT_RELU);
    cr_assert_float_eq(spec.layers[2].rate, 0.1f, 1e-7);
    cr_assert_eq(spec.layers[3].use_bias, false);
    cr_assert_eq(spec.fit.batch_size, 16);
    /* the offsets point at the expressions */
    cr_assert_eq(strncmp(spec.text + spec.hp[2].off, "hp.float(0.1,0.5)", (size_t)spec.hp[2].len), 0);
    cr_assert_eq(spec.hp[2].len, (int64_t)strlen("hp.float(0.1,0.5)"));
}

Test(tune, malformed_hp_names_file_and_line)
{
    parse_fails(HEAD "dense units=hp.int(3)\n" TAIL, "s.model:2:", "hp.int needs integer lo,hi");
    parse_fails(HEAD "dense units=hp.int(9,3)\n" TAIL, "s.model:2:", "lo > hi");
    parse_fails(HEAD "dense units=hp.int(1,9,step=0)\n" TAIL, "s.model:2:", "step must be an integer >= 1");
    parse_fails(HEAD "dense units=hp.int(1,9,sampling=log)\n" TAIL, "s.model:2:", "unknown argument 'sampling=log'");
    parse_fails(HEAD "dense units=hp.int(0,9)\n" TAIL, "s.model:2:", "units must be > 0, got 0");
    parse_fails(HEAD "dense units=hp.float(1,9)\n" TAIL, "s.model:2:", "cannot stand for units");
    parse_fails(HEAD "dense units=4 use_bias=hp.int(0,1)\n" TAIL, "s.model:2:", "cannot stand for use_bias");
    parse_fails(HEAD "dense units=4\ndropout rate=hp.float(0,1)\n" TAIL, "s.model:3:", "rate must be in [0, 1), got 1");
    parse_fails(HEAD "dense units=4\ndropout rate=hp.float(0,0.5,log)\n" TAIL, "s.model:3:", "log sampling needs lo > 0");
    parse_fails(HEAD "dense units=4 activation=hp.choice()\n" TAIL, "s.model:2:", "hp.choice needs 1 to 16 values");
    parse_fails(HEAD "dense units=4 activation=hp.choice(relu,,tanh)\n" TAIL, "s.model:2:", "empty or nested argument");
    parse_fails(HEAD "dense units=4 activation=hp.choice(relu,swish)\n" TAIL, "s.model:2:", "unknown activation 'swish'");
    parse_fails(HEAD "dense units=4 activation=hp.choice(relu,relu)\n" TAIL, "s.model:2:", "'relu' is listed twice");
    parse_fails(HEAD "dense units=4 use_bias=hp.bool(true)\n" TAIL, "s.model:2:", "hp.bool takes no values");
    parse_fails(HEAD "dense units=hp.range(1,4)\n" TAIL, "s.model:2:", "unknown kind");
    parse_fails(HEAD "dense units=hp.int(1,4\n" TAIL, "s.model:2:", "bad hyperparameter 'hp.int(1,4'");
    /* a space inside ends the token: the message says so */
    parse_fails(HEAD "dense units=hp.int(1, 4)\n" TAIL, "s.model:2:", "no spaces inside");
    parse_fails(HEAD "dense units=hp.int(1,4,name=a)\ndense units=hp.int(1,4,name=a)\n" TAIL, "s.model:3:",
                "hyperparameter name 'a' is already used on line 2");
    parse_fails(HEAD "dense units=hp.int(1,4,name=9a)\n" TAIL, "s.model:2:", "name '9a' must be letters");
}

Test(tune, sampling_within_range_and_step)
{
    parse_ok(HEAD "dense units=hp.int(3,50,step=7) activation=hp.choice(relu,tanh,sigmoid)\n"
                  "dropout rate=hp.float(0.05,0.3)\n"
                  "dense units=4 use_bias=hp.bool()\n" TAIL);
    int seen_int[8] = {0}, seen_choice[3] = {0}, seen_bool[2] = {0};
    for (int64_t c = 0; c < 2000; c++) {
        const double u = cv_hp_sample(&spec.hp[0], 7, c, 0);
        cr_assert(u >= 3 && u <= 50 && fmod(u - 3, 7) == 0, "hp.int value %g", u);
        seen_int[(int)(u - 3) / 7]++;
        const double a = cv_hp_sample(&spec.hp[1], 7, c, 1);
        cr_assert(a == 0 || a == 1 || a == 2, "choice index %g", a);
        seen_choice[(int)a]++;
        const double r = cv_hp_sample(&spec.hp[2], 7, c, 2);
        cr_assert(r >= 0.05 && r <= 0.3, "hp.float value %g", r);
        const double b = cv_hp_sample(&spec.hp[3], 7, c, 3);
        cr_assert(b == 0 || b == 1);
        seen_bool[(int)b]++;
    }
    /* 3, 10, ..., 45: 7 values, each about 2000/7 times */
    for (int i = 0; i < 7; i++) cr_assert(seen_int[i] > 200 && seen_int[i] < 380, "value %d drawn %d times", 3 + 7 * i, seen_int[i]);
    cr_assert_eq(seen_int[7], 0);
    for (int i = 0; i < 3; i++) cr_assert(seen_choice[i] > 550 && seen_choice[i] < 780);
    cr_assert(seen_bool[0] > 900 && seen_bool[1] > 900);
}

Test(tune, log_sampling_is_uniform_in_log_space)
{
    parse_ok(HEAD "dense units=3 activation=softmax\n"
                  "compile loss=sparse_categorical_crossentropy learning_rate=hp.float(1e-5,1e-1,log)\n");
    /* four decades: a quarter of the samples in each (uniform sampling would put 90% in the last) */
    int decade[4] = {0};
    double mean = 0;
    const int n = 4000;
    for (int64_t c = 0; c < n; c++) {
        const double v = cv_hp_sample(&spec.hp[0], 3, c, 0);
        cr_assert(v >= 1e-5 && v <= 1e-1);
        const double l = log10(v);
        mean += l / n;
        decade[(int)floor(l + 5) < 4 ? (int)floor(l + 5) : 3]++;
    }
    for (int i = 0; i < 4; i++) cr_assert(fabs(decade[i] / (double)n - 0.25) < 0.03, "decade %d: %d of %d", i, decade[i], n);
    cr_assert(fabs(mean + 3) < 0.06, "mean log10 %g (expected -3)", mean);
}

Test(tune, same_seed_same_trials)
{
    parse_ok(HEAD "dense units=hp.int(1,1000) activation=hp.choice(relu,tanh)\n" TAIL);
    int differ = 0;
    for (int64_t c = 0; c < 100; c++)
        for (int h = 0; h < 2; h++) {
            cr_assert_eq(cv_hp_sample(&spec.hp[h], 42, c, h), cv_hp_sample(&spec.hp[h], 42, c, h));
            differ += cv_hp_sample(&spec.hp[0], 42, c, 0) != cv_hp_sample(&spec.hp[0], 43, c, 0);
        }
    cr_assert(differ > 150, "another seed gives other trials (%d of 200 differ)", differ);
    /* and the configurations differ from one another */
    cr_assert_neq(cv_hp_sample(&spec.hp[0], 42, 0, 0) + 1000 * cv_hp_sample(&spec.hp[0], 42, 1, 0),
                  cv_hp_sample(&spec.hp[0], 42, 1, 0) * 1001);
}

Test(tune, substitution_round_trips)
{
    const char *text = "input shape=4   # search\n"
                       "dense units=hp.int(8,64,step=8)   activation=hp.choice(relu,tanh)\n"
                       "dropout rate=hp.float(0.01,0.5,log)\n"
                       "dense units=3 activation=softmax\n"
                       "compile optimizer=adam learning_rate=hp.float(1e-4,1e-2,log,name=lr) "
                       "loss=sparse_categorical_crossentropy\n";
    parse_ok(text);
    for (int64_t c = 0; c < 50; c++) {
        double v[CV_MAX_HP];
        for (int h = 0; h < spec.n_hp; h++) v[h] = cv_hp_sample(&spec.hp[h], 5, c, h);
        cv_err err = {{0}};
        char *sub = cv_tune_substitute(&spec, v, &err);
        cr_assert_not_null(sub);
        /* only the expressions change: same lines, same comments and spacing */
        int lines = 0;
        for (const char *p = sub; *p; p++) lines += *p == '\n';
        cr_assert_eq(lines, 5);
        cr_assert_not_null(strstr(sub, "input shape=4   # search\n"));
        cr_assert_null(strstr(sub, "hp."));
        cv_model_spec trial;
        cr_assert_eq(cv_tune_trial_spec(&spec, v, &trial, &err), 0, "%s", err.msg);
        cr_assert_str_eq(trial.text, sub);
        cr_assert_eq(trial.n_hp, 0);
        cr_assert_str_eq(trial.file, "s.model");
        cr_assert_eq(trial.layers[1].units, (int)v[0]);
        cr_assert_eq(trial.layers[1].act, v[1] == 0 ? CV_ACT_RELU : CV_ACT_TANH);
        char t[64];
        cv_hp_value_text(&spec.hp[2], v[2], t, sizeof t);
        cr_assert_float_eq(trial.layers[2].rate, (float)strtod(t, NULL), 1e-9);
        cr_assert(fabs(strtod(t, NULL) - v[2]) <= 1e-5 * v[2], "text %s of %.17g", t, v[2]);
        cv_hp_value_text(&spec.hp[3], v[3], t, sizeof t);
        cr_assert_float_eq(trial.optim.lr, (float)strtod(t, NULL), 1e-12);
        cv_model_spec_free(&trial);
        free(sub);
    }
}

Test(tune, hyperband_plan_matches_li_et_al_table_1)
{
    /* R = 81, eta = 3 (Li et al. 2018, Table 1): (n_i, r_i) per bracket */
    const int want[][3] = {{4, 81, 1}, {4, 27, 3}, {4, 9, 9},  {4, 3, 27}, {4, 1, 81}, {3, 34, 3},
                           {3, 11, 9}, {3, 3, 27}, {3, 1, 81}, {2, 15, 9}, {2, 5, 27}, {2, 1, 81},
                           {1, 8, 27}, {1, 2, 81}, {0, 5, 81}};
    cv_hb_rung r[64];
    const int n = cv_hyperband_plan(81, 3, r, 64);
    cr_assert_eq(n, 15);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(r[i].bracket, want[i][0], "rung %d", i);
        cr_assert_eq(r[i].n, want[i][1], "rung %d: n %d", i, r[i].n);
        cr_assert_eq(r[i].epochs, want[i][2], "rung %d: epochs %d", i, r[i].epochs);
    }
    /* R = 3: bracket 1 (3 configs at 1 epoch, the best at 3), bracket 0 (2 at 3) */
    cr_assert_eq(cv_hyperband_plan(3, 3, r, 64), 3);
    cr_assert(r[0].n == 3 && r[0].epochs == 1 && r[1].n == 1 && r[1].epochs == 3 && r[2].n == 2 && r[2].epochs == 3);
    /* R below the factor: one bracket, plain random search at R epochs */
    cr_assert_eq(cv_hyperband_plan(2, 3, r, 64), 1);
    cr_assert(r[0].n == 1 && r[0].epochs == 2);
}

Test(tune, trials_file_round_trip_and_leaderboard)
{
    cv_search_info info = {.model = "input shape=4\n", .objective = "val_loss", .n_hp = 1};
    snprintf(info.config, sizeof info.config, "tuner=random");
    snprintf(info.names[0], sizeof info.names[0], "units");
    cv_trial t[3] = {{0}};
    double hist[2 * 8];
    for (int i = 0; i < 16; i++) hist[i] = i == 5 ? NAN : i * 0.5;
    const double obj[3] = {0.7, 0.2, NAN};
    for (int i = 0; i < 3; i++) {
        t[i] = (cv_trial){.trial = i, .config = i, .bracket = -1, .rung = -1, .epochs = 2, .n_hp = 1,
                          .status = i == 2 ? CV_TRIAL_FAILED : CV_TRIAL_OK, .objective = obj[i], .executions = 1,
                          .hist_epochs = 2, .history = hist};
        snprintf(t[i].values[0], sizeof t[i].values[0], "%d", 8 * (i + 1));
        snprintf(t[i].ranks, sizeof t[i].ranks, "%d,%d", 2 * i, 2 * i + 1);
    }
    snprintf(t[2].note, sizeof t[2].note, "diverged");
    t[1].status = 0; /* not finished: not written */
    const char *path = CONVOY_TEST_TMP "/test_tune_trials.h5";
    cv_err err = {{0}};
    cr_assert_eq(cv_trials_save(path, &info, t, 3, &err), 0, "%s", err.msg);
    cv_search_info back;
    cv_trial *got = NULL;
    int64_t n = 0;
    cr_assert_eq(cv_trials_load(path, &back, &got, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(got[1].status, 0);
    cr_assert_eq(got[0].status, CV_TRIAL_OK);
    cr_assert_eq(got[2].status, CV_TRIAL_FAILED);
    cr_assert_str_eq(got[2].note, "diverged");
    cr_assert_str_eq(got[0].values[0], "8");
    cr_assert_str_eq(got[2].ranks, "4,5");
    cr_assert_str_eq(back.model, info.model);
    cr_assert_str_eq(back.names[0], "units");
    cr_assert_eq(got[0].hist_epochs, 2);
    cr_assert(isnan(got[0].history[5]) && got[0].history[7] == 3.5);
    /* min objective: trial 0 first, the failed trial last */
    got[1] = t[1];
    got[1].status = CV_TRIAL_OK;
    got[1].history = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert_eq(cv_trials_leaderboard(&back, got, n, f), 1);
    fclose(f);
    cr_assert(strstr(buf, "0.2000") < strstr(buf, "0.7000") && strstr(buf, "0.7000") < strstr(buf, "failed: diverged"),
              "%s", buf);
    free(buf);
    for (int64_t i = 0; i < n; i++) cv_trial_free(&got[i]);
    free(got);
    free(back.model);
}
