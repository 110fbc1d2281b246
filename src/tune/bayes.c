/* Bayesian optimisation of the hp sites (keras-tuner's BayesianOptimization): each trial's values
 * encoded in [0, 1]^d as keras-tuner does, a Gaussian process with a Matern 5/2 kernel over them
 * (targets normalised, noise 1e-4 on the diagonal, the length scale by maximum likelihood), and
 * the next values where an acquisition is best: the lower confidence bound mu - beta sigma of
 * the objective framed as a minimisation (keras-tuner's upper confidence bound, beta 2.6), or
 * expected improvement. Concurrent proposals of one round are spread by a constant liar: each
 * proposal joins the data with the pessimistic value mu + sigma before the next is chosen (as
 * keras-tuner hallucinates running trials). Everything is double precision, in a fixed order,
 * and its randomness comes from (seed, round, proposal, candidate) keys, so every rank computes
 * the same proposals, and a resumed search the same ones again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"
#include "tune/tune-impl.h"

enum { CANDIDATES = 1000, REFINED = 5, GRID = 41 };
#define NOISE 1e-4
#define ELL_LO 0.01
#define ELL_HI 10.0

/* ---- the encoding ---------------------------------------------------------------------- */

/* the number of values of a discrete site (int, choice, bool); 0 for a float */
static double site_values(const cv_hp *hp)
{
    switch (hp->kind) {
    case CV_HP_INT: return floor((hp->hi - hp->lo) / hp->step) + 1;
    case CV_HP_CHOICE: return hp->n_choices;
    case CV_HP_BOOL: return 2;
    default: return 0;
    }
}

double cv_hp_encode(const cv_hp *hp, double v)
{
    const double n = site_values(hp);
    if (n > 0) { /* a discrete value: the middle of its bucket */
        const double index = hp->kind == CV_HP_INT ? round((v - hp->lo) / hp->step) : v;
        return (index + 0.5) / n;
    }
    if (hp->hi <= hp->lo) return 0.5;
    return hp->log ? log(v / hp->lo) / log(hp->hi / hp->lo) : (v - hp->lo) / (hp->hi - hp->lo);
}

double cv_hp_decode(const cv_hp *hp, double x)
{
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    const double n = site_values(hp);
    if (n > 0) {
        const double index = fmin(floor(x * n), n - 1);
        return hp->kind == CV_HP_INT ? hp->lo + index * hp->step : index;
    }
    const double v = hp->log ? exp(log(hp->lo) + x * (log(hp->hi) - log(hp->lo))) : hp->lo + x * (hp->hi - hp->lo);
    return v < hp->lo ? hp->lo : v > hp->hi ? hp->hi : v;
}

/* ---- the Gaussian process --------------------------------------------------------------- */

static double matern52(const double *a, const double *b, int d, double ell)
{
    double r2 = 0;
    for (int k = 0; k < d; k++) r2 += (a[k] - b[k]) * (a[k] - b[k]);
    const double s = sqrt(5.0 * r2) / ell;
    return (1.0 + s + s * s / 3.0) * exp(-s);
}

void cv_gp_free(cv_gp *gp)
{
    free(gp->x);
    free(gp->L);
    free(gp->alpha);
    memset(gp, 0, sizeof *gp);
}

int cv_gp_fit(cv_gp *gp, const double *x, const double *y, int n, int d, double ell, cv_err *err)
{
    cv_gp_free(gp);
    if (n < 1 || d < 1 || !(ell > 0)) return cv_errf(err, "internal: a Gaussian process of %d points", n);
    gp->x = cv_malloc(sizeof(double) * (size_t)n * d, "Gaussian process", err);
    gp->L = cv_malloc(sizeof(double) * (size_t)n * n, "Gaussian process", err);
    gp->alpha = cv_malloc(sizeof(double) * (size_t)n, "Gaussian process", err);
    if (!gp->x || !gp->L || !gp->alpha) {
        cv_gp_free(gp);
        return -1;
    }
    gp->n = n, gp->d = d, gp->ell = ell;
    memcpy(gp->x, x, sizeof(double) * (size_t)n * d);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean);
    const double sd = sqrt(var / n);
    gp->mean = mean, gp->sd = sd > 0 ? sd : 1.0; /* all equal (or one point): unscaled */
    /* K + noise I = L L^T, row-major lower triangle */
    double *L = gp->L;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) L[i * n + j] = matern52(x + i * d, x + j * d, d, ell) + (i == j ? NOISE : 0);
    for (int j = 0; j < n; j++) {
        double s = L[j * n + j];
        for (int k = 0; k < j; k++) s -= L[j * n + k] * L[j * n + k];
        if (!(s > 0)) {
            cv_gp_free(gp);
            return cv_errf(err, "internal: the Gaussian process's kernel matrix is not positive definite");
        }
        L[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = L[i * n + j];
            for (int k = 0; k < j; k++) t -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = t / L[j * n + j];
        }
    }
    /* alpha = K^-1 z: forward then back substitution */
    double *a = gp->alpha;
    for (int i = 0; i < n; i++) {
        double t = (y[i] - mean) / gp->sd;
        for (int k = 0; k < i; k++) t -= L[i * n + k] * a[k];
        a[i] = t / L[i * n + i];
    }
    gp->lml = 0;
    for (int i = 0; i < n; i++) gp->lml -= 0.5 * a[i] * a[i] + log(L[i * n + i]); /* before the back pass */
    gp->lml -= 0.5 * n * log(2 * M_PI);
    for (int i = n - 1; i >= 0; i--) {
        double t = a[i];
        for (int k = i + 1; k < n; k++) t -= L[k * n + i] * a[k];
        a[i] = t / L[i * n + i];
    }
    return 0;
}

void cv_gp_predict(const cv_gp *gp, const double *x, double *mean, double *sd)
{
    const int n = gp->n;
    double kv[CV_GP_MAX], v[CV_GP_MAX];
    double mu = 0;
    for (int i = 0; i < n; i++) {
        kv[i] = matern52(x, gp->x + i * gp->d, gp->d, gp->ell);
        mu += kv[i] * gp->alpha[i];
    }
    /* the variance: k(x, x) - |L^-1 k|^2 */
    double var = 1.0;
    for (int i = 0; i < n; i++) {
        double t = kv[i];
        for (int k = 0; k < i; k++) t -= gp->L[i * n + k] * v[k];
        v[i] = t / gp->L[i * n + i];
        var -= v[i] * v[i];
    }
    *mean = gp->mean + gp->sd * mu;
    *sd = gp->sd * sqrt(var > 0 ? var : 0);
}

int cv_gp_fit_ml(cv_gp *gp, const double *x, const double *y, int n, int d, cv_err *err)
{
    /* the log marginal likelihood over a log grid of length scales, then golden-section search
     * around the best grid point */
    double best = -INFINITY, best_ell = 1.0;
    const double step = log(ELL_HI / ELL_LO) / (GRID - 1);
    for (int g = 0; g < GRID; g++) {
        const double ell = ELL_LO * exp(step * g);
        if (cv_gp_fit(gp, x, y, n, d, ell, err)) return -1;
        if (gp->lml > best) best = gp->lml, best_ell = ell;
    }
    double lo = log(best_ell) - step, hi = log(best_ell) + step;
    const double phi = (sqrt(5.0) - 1) / 2;
    double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo), fa, fb;
    if (cv_gp_fit(gp, x, y, n, d, exp(a), err)) return -1;
    fa = gp->lml;
    if (cv_gp_fit(gp, x, y, n, d, exp(b), err)) return -1;
    fb = gp->lml;
    for (int it = 0; it < 30; it++) {
        if (fa > fb) {
            hi = b, b = a, fb = fa, a = hi - phi * (hi - lo);
            if (cv_gp_fit(gp, x, y, n, d, exp(a), err)) return -1;
            fa = gp->lml;
        } else {
            lo = a, a = b, fa = fb, b = lo + phi * (hi - lo);
            if (cv_gp_fit(gp, x, y, n, d, exp(b), err)) return -1;
            fb = gp->lml;
        }
    }
    double ell = exp(fa > fb ? a : b), lml = fa > fb ? fa : fb;
    if (best > lml) ell = best_ell; /* the grid's edge was better than its neighbourhood */
    return cv_gp_fit(gp, x, y, n, d, ell, err);
}

/* ---- proposals -------------------------------------------------------------------------- */

/* the expected improvement over y_best at a point of posterior mu, sd (minimising) */
static double expected_improvement(double mu, double sd, double y_best)
{
    const double gain = y_best - mu;
    if (sd <= 0) return gain > 0 ? gain : 0;
    const double z = gain / sd;
    return gain * 0.5 * erfc(-z / sqrt(2.0)) + sd * exp(-0.5 * z * z) / sqrt(2 * M_PI);
}

/* the acquisition at x, lower is better */
static double acquisition(const cv_gp *gp, const double *x, const cv_bayes_opts *o, double y_best)
{
    double mu, sd;
    cv_gp_predict(gp, x, &mu, &sd);
    return o->expected_improvement ? -expected_improvement(mu, sd, y_best) : mu - o->beta * sd;
}

/* uniform in [0, 1) from a key */
static double uniform(uint64_t seed, uint64_t a, uint64_t b)
{
    return (double)(cv_key(seed, CV_STREAM_TUNE_CANDIDATES, a, b) >> 11) * 0x1p-53;
}

/* the values that x decodes to, in raw (cv_hp_sample's) form */
static void decode_all(const cv_hp *hp, int d, const double *x, double *raw)
{
    for (int h = 0; h < d; h++) raw[h] = cv_hp_decode(&hp[h], x[h]);
}

static bool same_values(const double *a, const double *b, int d)
{
    for (int h = 0; h < d; h++)
        if (a[h] != b[h]) return false;
    return true;
}

/* whether raw is among the n rows of tried (d values each) */
static bool tried_before(const double *tried, int n, const double *raw, int d)
{
    for (int i = 0; i < n; i++)
        if (same_values(tried + (size_t)i * d, raw, d)) return true;
    return false;
}

/* Coordinate pattern search from x (in place) on the acquisition: steps of 0.1 halved down to
 * 1e-3 along each axis in turn. */
static double refine(const cv_gp *gp, double *x, const cv_bayes_opts *o, double y_best)
{
    double f = acquisition(gp, x, o, y_best);
    for (double s = 0.1; s >= 1e-3; s /= 2) {
        bool moved = true;
        while (moved) {
            moved = false;
            for (int k = 0; k < gp->d; k++)
                for (int dir = -1; dir <= 1; dir += 2) {
                    const double keep = x[k], t = keep + dir * s;
                    if (t < 0 || t > 1) continue;
                    x[k] = t;
                    const double g = acquisition(gp, x, o, y_best);
                    if (g < f) f = g, moved = true;
                    else x[k] = keep;
                }
        }
    }
    return f;
}

int cv_bayes_propose(const cv_hp *hp, int d, const double *raw, const double *y, int n, const cv_bayes_opts *o,
                     uint64_t seed, int64_t round, int count, double *out, double *ei, cv_err *err)
{
    if (d < 1 || d > CV_MAX_HP || count < 1) return cv_errf(err, "internal: %d proposals of %d values", count, d);
    const int cap = n + count;
    if (cap > CV_GP_MAX)
        return cv_errf(err, "tune: the Bayesian tuner keeps at most %d trials (--max-trials)", CV_GP_MAX - count);
    double *x = cv_malloc(sizeof(double) * (size_t)cap * d, "Bayesian tuner", err);
    double *z = cv_malloc(sizeof(double) * (size_t)cap, "Bayesian tuner", err);
    double *all = cv_malloc(sizeof(double) * (size_t)cap * d, "Bayesian tuner", err); /* raw values so far */
    double *cand = cv_malloc(sizeof(double) * (size_t)CANDIDATES * d, "Bayesian tuner", err);
    double *score = cv_malloc(sizeof(double) * CANDIDATES, "Bayesian tuner", err);
    cv_gp gp = {0};
    int rc = x && z && all && cand && score ? 0 : -1, m = 0;
    /* the data: finished trials with a finite objective, in trial order */
    for (int i = 0; rc == 0 && i < n; i++) {
        memcpy(all + (size_t)i * d, raw + (size_t)i * d, sizeof(double) * d);
        if (!isfinite(y[i])) continue;
        for (int h = 0; h < d; h++) x[(size_t)m * d + h] = cv_hp_encode(&hp[h], raw[(size_t)i * d + h]);
        z[m++] = y[i];
    }
    int tried = n;
    if (rc == 0 && m == 0) rc = cv_errf(err, "internal: no finished trial to fit");
    double ell = 0;
    for (int p = 0; rc == 0 && p < count; p++) {
        /* the length scale by maximum likelihood on the real data; the lies keep it */
        rc = p == 0 ? cv_gp_fit_ml(&gp, x, z, m, d, err) : cv_gp_fit(&gp, x, z, m, d, ell, err);
        if (rc) break;
        ell = gp.ell;
        double y_best = INFINITY;
        for (int i = 0; i < m; i++) y_best = fmin(y_best, z[i]);
        for (int c = 0; c < CANDIDATES; c++) {
            double *v = cand + (size_t)c * d;
            for (int h = 0; h < d; h++)
                v[h] = uniform(seed, (uint64_t)round * 64 + (uint64_t)p, (uint64_t)c * CV_MAX_HP + (uint64_t)h);
            score[c] = acquisition(&gp, v, o, y_best);
        }
        /* the best few candidates refined; the best result whose values were not tried yet wins,
         * else the best untried candidate, else none (the space is exhausted near here) */
        int order[REFINED];
        for (int r = 0; r < REFINED; r++) {
            order[r] = -1;
            for (int c = 0; c < CANDIDATES; c++) {
                bool taken = false;
                for (int q = 0; q < r; q++) taken |= order[q] == c;
                if (!taken && (order[r] < 0 || score[c] < score[order[r]])) order[r] = c;
            }
        }
        double best_f = INFINITY, best_x[CV_MAX_HP], r_raw[CV_MAX_HP];
        bool found = false;
        for (int r = 0; r < REFINED; r++) {
            double t[CV_MAX_HP];
            memcpy(t, cand + (size_t)order[r] * d, sizeof(double) * d);
            const double f = refine(&gp, t, o, y_best);
            decode_all(hp, d, t, r_raw);
            if (f < best_f && !tried_before(all, tried, r_raw, d)) best_f = f, memcpy(best_x, t, sizeof t), found = true;
        }
        for (int c = 0; !found && c < CANDIDATES; c++) {
            int pick = -1; /* the best candidate left */
            for (int q = 0; q < CANDIDATES; q++)
                if (isfinite(score[q]) && (pick < 0 || score[q] < score[pick])) pick = q;
            if (pick < 0) break;
            decode_all(hp, d, cand + (size_t)pick * d, r_raw);
            if (!tried_before(all, tried, r_raw, d)) memcpy(best_x, cand + (size_t)pick * d, sizeof(double) * d), found = true;
            score[pick] = INFINITY;
        }
        if (!found) {
            rc = 1; /* nothing new: the caller ends the search */
            break;
        }
        decode_all(hp, d, best_x, out + (size_t)p * d);
        memcpy(all + (size_t)tried * d, out + (size_t)p * d, sizeof(double) * d);
        tried++;
        /* the lie: the proposal's pessimistic value, at its encoded (decoded-then-encoded) point */
        double mu, sd;
        for (int h = 0; h < d; h++) x[(size_t)m * d + h] = cv_hp_encode(&hp[h], out[(size_t)p * d + h]);
        cv_gp_predict(&gp, x + (size_t)m * d, &mu, &sd);
        if (ei) ei[p] = expected_improvement(mu, sd, y_best);
        z[m++] = mu + sd;
    }
    cv_gp_free(&gp);
    free(x);
    free(z);
    free(all);
    free(cand);
    free(score);
    return rc;
}
