/* The Bayesian tuner's parts (src/tune/bayes.c): keras-tuner's encoding of hp values into [0, 1]
 * and back, the Gaussian process against a worked example (numpy, by matrix inverse rather
 * than Cholesky), maximum likelihood choosing a length scale no grid point beats, proposals
 * that never repeat a trial and are the same on every call, and, on synthetic objectives of 2
 * and 3 sites, fewer evaluations than random search to come near the optimum, over 10 seeds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convoy/tune.h"
#include "tune/tune-impl.h"

static cv_hp site(const char *expr)
{
    cv_hp hp;
    cv_err err;
    cr_assert_eq(cv_hp_parse(expr, &hp, &err), 0, "%s: %s", expr, err.msg);
    return hp;
}

Test(bayes, encoding_as_keras_tuner)
{
    const cv_hp i = site("hp.int(32,256,step=32)"), c = site("hp.choice(relu,tanh,sigmoid)"), b = site("hp.bool()"),
                f = site("hp.float(0.1,0.5)"), l = site("hp.float(1e-4,1e-1,log)");
    /* discrete: the middle of the value's bucket */
    cr_assert_float_eq(cv_hp_encode(&i, 32), 0.5 / 8, 1e-15);
    cr_assert_float_eq(cv_hp_encode(&i, 256), 7.5 / 8, 1e-15);
    cr_assert_float_eq(cv_hp_encode(&c, 1), 1.5 / 3, 1e-15);
    cr_assert_float_eq(cv_hp_encode(&b, 1), 0.75, 1e-15);
    /* float: linear or log place */
    cr_assert_float_eq(cv_hp_encode(&f, 0.2), 0.25, 1e-12);
    cr_assert_float_eq(cv_hp_encode(&l, 1e-2), 2.0 / 3, 1e-12);
    /* and back: each value's code decodes to it; the ends of [0, 1] to the ends */
    for (int v = 32; v <= 256; v += 32) cr_assert_eq(cv_hp_decode(&i, cv_hp_encode(&i, v)), v);
    for (int k = 0; k < 3; k++) cr_assert_eq(cv_hp_decode(&c, cv_hp_encode(&c, k)), k);
    cr_assert_eq(cv_hp_decode(&i, 0.0), 32);
    cr_assert_eq(cv_hp_decode(&i, 1.0), 256);
    cr_assert_eq(cv_hp_decode(&b, 0.49), 0);
    cr_assert_float_eq(cv_hp_decode(&l, 1.0), 1e-1, 1e-15);
    cr_assert_float_eq(cv_hp_decode(&l, 1.0 / 3), 1e-3, 1e-15);
}

/* numpy, independently (inverse, not Cholesky):
 *   X = [[.1,.2],[.5,.9],[.9,.4],[.3,.6]]; y = [1, .2, .7, -.4]; ell = .3; noise 1e-4
 *   k(r) = (1 + s + s^2/3) e^-s, s = sqrt(5) r / ell; z = (y - mean) / std (population)
 *   mu = mean + std k*^T K^-1 z, sd = std sqrt(1 - k*^T K^-1 k*), lml of z */
Test(bayes, gaussian_process_worked_example)
{
    const double x[8] = {0.1, 0.2, 0.5, 0.9, 0.9, 0.4, 0.3, 0.6}, y[4] = {1.0, 0.2, 0.7, -0.4};
    const double at[3][2] = {{0.3, 0.3}, {0.75, 0.5}, {0.5, 0.9}};
    const double mu_want[3] = {0.46986356858491674, 0.49212969785924116, 0.19997724844713383};
    const double sd_want[3] = {0.3408256831434073, 0.3210426731623568, 0.005308865661796816};
    cv_gp gp = {0};
    cv_err err;
    cr_assert_eq(cv_gp_fit(&gp, x, y, 4, 2, 0.3, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        double mu, sd;
        cv_gp_predict(&gp, at[i], &mu, &sd);
        cr_assert_float_eq(mu, mu_want[i], 1e-9, "mean at %d: %.17g", i, mu);
        cr_assert_float_eq(sd, sd_want[i], 1e-9, "sd at %d: %.17g", i, sd);
    }
    cr_assert_float_eq(gp.lml, -6.352926492426158, 1e-9, "log marginal likelihood %.17g", gp.lml);
    /* maximum likelihood: no length scale of a fine scan does better */
    cr_assert_eq(cv_gp_fit_ml(&gp, x, y, 4, 2, &err), 0, "%s", err.msg);
    const double best = gp.lml, ell = gp.ell;
    for (double e = 0.01; e <= 10; e *= 1.02) {
        cv_gp probe = {0};
        cr_assert_eq(cv_gp_fit(&probe, x, y, 4, 2, e, &err), 0);
        cr_assert_leq(probe.lml, best + 1e-9, "length scale %g: %g beats the fitted %g (%g)", e, probe.lml, ell, best);
        cv_gp_free(&probe);
    }
    cv_gp_free(&gp);
}

/* Synthetic objectives on the encoded space: a smooth bowl with its minimum inside. */
static double objective(const cv_hp *hp, int d, const double *raw)
{
    static const double centre[3] = {0.62, 0.27, 0.8};
    double f = 0;
    for (int h = 0; h < d; h++) {
        const double e = cv_hp_encode(&hp[h], raw[h]) - centre[h];
        f += (h + 1) * e * e;
    }
    return f;
}

/* evaluations until the objective is within tol of the best possible (the budget + 1 if never);
 * bayesian or random search, seed s */
static int evaluations(const cv_hp *hp, int d, bool bayesian, uint64_t s, int budget, double tol)
{
    double raw[64 * 3], y[64], best_possible = 0;
    for (int h = 0; h < d; h++) { /* the bowl is separable: each site's best value on its own */
        double e = INFINITY;
        const double centre[3] = {0.62, 0.27, 0.8};
        for (double v = 0; v <= 1; v += 1e-4) {
            const double r = cv_hp_decode(&hp[h], v), g = cv_hp_encode(&hp[h], r) - centre[h];
            e = fmin(e, (h + 1) * g * g);
        }
        best_possible += e;
    }
    const cv_bayes_opts o = {.beta = 2.6};
    const int initial = 3 * d;
    cv_err err;
    for (int n = 0; n < budget; n++) {
        if (!bayesian || n < initial) {
            for (int h = 0; h < d; h++) raw[n * d + h] = cv_hp_sample(&hp[h], s, n, h);
        } else {
            const int rc = cv_bayes_propose(hp, d, raw, y, n, &o, s, n, 1, raw + n * d, NULL, &err);
            cr_assert_eq(rc, 0, "propose: %s", err.msg);
        }
        y[n] = objective(hp, d, raw + n * d);
        if (y[n] <= best_possible + tol) return n + 1;
    }
    return budget + 1;
}

Test(bayes, beats_random_search_on_synthetic_objectives)
{
    const cv_hp two[2] = {site("hp.float(1e-4,1e-1,log)"), site("hp.float(0,1)")};
    const cv_hp three[3] = {site("hp.float(1e-4,1e-1,log)"), site("hp.float(0,1)"), site("hp.int(8,512,step=8)")};
    const struct {
        const cv_hp *hp;
        int d;
    } spaces[2] = {{two, 2}, {three, 3}};
    for (int sp = 0; sp < 2; sp++) {
        double sum_b = 0, sum_r = 0;
        for (uint64_t seed = 1; seed <= 10; seed++) {
            sum_b += evaluations(spaces[sp].hp, spaces[sp].d, true, seed, 60, 2e-3);
            sum_r += evaluations(spaces[sp].hp, spaces[sp].d, false, seed, 60, 2e-3);
        }
        printf("bayes: %d sites: evaluations to within 2e-3 of the optimum, mean of 10 seeds (budget 60, 61 = never): "
               "bayesian %.1f, random %.1f\n",
               spaces[sp].d, sum_b / 10, sum_r / 10);
        cr_assert_lt(sum_b, sum_r, "%d sites: bayesian %.1f evaluations against random %.1f", spaces[sp].d, sum_b / 10,
                     sum_r / 10);
    }
}

/* A proposal is never an earlier trial's values, the same on every call, and a round's later
 * proposals differ from its earlier ones (the constant liar). */
Test(bayes, proposals_new_and_deterministic)
{
    const cv_hp hp[2] = {site("hp.choice(a,b,c)"), site("hp.int(1,3)")}; /* 9 configurations */
    double raw[9 * 2], y[9];
    int n = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 1; b <= 3 && n < 5; b++, n++) raw[2 * n] = a, raw[2 * n + 1] = b, y[n] = (a - 1) * (a - 1) + b;
    const cv_bayes_opts o = {.beta = 2.6};
    double out[4 * 2], again[4 * 2];
    cv_err err;
    cr_assert_eq(cv_bayes_propose(hp, 2, raw, y, n, &o, 7, 0, 4, out, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(cv_bayes_propose(hp, 2, raw, y, n, &o, 7, 0, 4, again, NULL, &err), 0, "%s", err.msg);
    cr_assert_arr_eq(out, again, sizeof out);
    for (int p = 0; p < 4; p++) {
        for (int i = 0; i < n; i++)
            cr_assert(out[2 * p] != raw[2 * i] || out[2 * p + 1] != raw[2 * i + 1], "proposal %d repeats trial %d", p, i);
        for (int q = 0; q < p; q++)
            cr_assert(out[2 * p] != out[2 * q] || out[2 * p + 1] != out[2 * q + 1], "proposals %d and %d", q, p);
    }
    /* all 9 tried: nothing new to propose */
    n = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 1; b <= 3; b++, n++) raw[2 * n] = a, raw[2 * n + 1] = b, y[n] = a + b;
    cr_assert_eq(cv_bayes_propose(hp, 2, raw, y, 9, &o, 7, 0, 1, out, NULL, &err), 1);
}
