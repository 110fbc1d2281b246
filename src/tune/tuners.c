/* The tuners (tune.c runs the search): which configurations come next - drawn or enumerated,
 * never one issued before - for random search, Bayesian optimisation (bayes.c proposes) and
 * Hyperband's brackets and rungs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/callbacks.h"
#include "convoy/rng.h"
#include "tune/search.h"

/* ---- configurations: never the same one twice ------------------------------------------ */

/* whether values were issued before */
static bool seen_before(const search *S, const double *values)
{
    const int d = S->space->n_hp;
    for (int64_t i = 0; i < S->nseen; i++)
        if (memcmp(S->seen + i * CV_MAX_HP, values, sizeof(double) * (size_t)d) == 0) return true;
    return false;
}

static int remember(search *S, const double *values, cv_err *err)
{
    if (S->nseen % 256 == 0) {
        double *s = realloc(S->seen, sizeof(double) * CV_MAX_HP * (size_t)(S->nseen + 256));
        if (!s) return cv_errf(err, "out of memory for the configurations tried");
        S->seen = s;
    }
    memcpy(S->seen + S->nseen * CV_MAX_HP, values, sizeof(double) * CV_MAX_HP);
    S->nseen++;
    return 0;
}

/* the enumeration's order: configurations by a seeded key (then index) */
typedef struct {
    uint64_t key;
    int64_t index;
} keyed;
static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1) : (x->index > y->index) - (x->index < y->index);
}

/* A space of discrete sites only, small enough, is enumerated: perm is its configurations'
 * indices in a seeded order. */
int tune_plan_enumeration(search *S, cv_err *err)
{
    double size = 1;
    for (int h = 0; h < S->space->n_hp; h++) {
        const cv_hp *hp = &S->space->hp[h];
        if (hp->kind == CV_HP_FLOAT) return 0;
        size *= hp->kind == CV_HP_INT ? floor((hp->hi - hp->lo) / hp->step) + 1
                : hp->kind == CV_HP_CHOICE ? hp->n_choices : 2;
    }
    if (size > ENUMERATE_MAX || size > (double)S->o->max_trials) return 0;
    S->space_size = (int64_t)size;
    keyed *order = cv_malloc(sizeof *order * (size_t)S->space_size, "configuration order", err);
    if (!order || !(S->perm = cv_malloc(sizeof *S->perm * (size_t)S->space_size, "configuration order", err))) {
        free(order);
        return -1;
    }
    for (int64_t i = 0; i < S->space_size; i++)
        order[i] = (keyed){cv_key(S->o->seed, CV_STREAM_TUNE_ORDER, (uint64_t)i, 0), i};
    qsort(order, (size_t)S->space_size, sizeof *order, by_key);
    for (int64_t i = 0; i < S->space_size; i++) S->perm[i] = order[i].index;
    free(order);
    return 0;
}

/* Configuration number draw's values: sampled (a pure function of seed and draw), or the
 * enumeration's draw-th; false past the enumeration's end. */
static bool draw_values(const search *S, int64_t draw, double *values)
{
    const cv_model_spec *space = S->space;
    memset(values, 0, sizeof(double) * CV_MAX_HP);
    if (S->space_size == 0) {
        for (int h = 0; h < space->n_hp; h++) values[h] = cv_hp_sample(&space->hp[h], S->o->seed, draw, h);
        return true;
    }
    if (draw >= S->space_size) return false;
    int64_t i = S->perm[draw];
    for (int h = space->n_hp - 1; h >= 0; h--) { /* mixed radix, the last site fastest */
        const cv_hp *hp = &space->hp[h];
        const int64_t n = hp->kind == CV_HP_INT ? (int64_t)floor((hp->hi - hp->lo) / hp->step) + 1
                          : hp->kind == CV_HP_CHOICE ? hp->n_choices : 2;
        values[h] = hp->kind == CV_HP_INT ? hp->lo + (double)(i % n) * hp->step : (double)(i % n);
        i /= n;
    }
    return true;
}

/* The next new configuration into d (config = the draw it came from); 1 when none is left
 * (MAX_COLLISIONS draws in a row were configurations issued before, or the enumeration ended). */
static int fresh_config(search *S, int64_t *draw, trial_desc *d, cv_err *err)
{
    for (int tries = 0; tries <= MAX_COLLISIONS; tries++) {
        const int64_t c = (*draw)++;
        if (!draw_values(S, c, d->values)) break;
        if (seen_before(S, d->values)) continue;
        d->config = c;
        return remember(S, d->values, err);
    }
    S->exhausted = true;
    return 1;
}

static void say_exhausted(const search *S)
{
    if (S->world->rank == 0)
        fprintf(S->out, "tune: the search space is exhausted: %lld distinct configuration%s tried%s\n",
                (long long)S->nseen, S->nseen == 1 ? "" : "s",
                S->space_size ? " (all of them)" : ", and the last draws only repeated them");
}

/* Random search: max_trials new configurations. */
int tune_run_random(search *S, cv_err *err)
{
    trial_desc *all = cv_malloc(sizeof *all * (size_t)S->o->max_trials, "trial list", err);
    int64_t n = 0, draw = 0;
    int rc = all ? 0 : -1;
    for (; rc == 0 && n < S->o->max_trials; n++) {
        all[n] = (trial_desc){.trial = n, .bracket = -1, .rung = -1, .parent = -1};
        if ((rc = fresh_config(S, &draw, &all[n], err))) break;
    }
    if (rc == 1) rc = 0, say_exhausted(S);
    if (rc == 0) rc = tune_run_batch(S, all, (int)n, err);
    free(all);
    return rc;
}

/* Bayesian optimisation: --initial-points random configurations, then rounds of
 * --proposals-per-round proposals fitted to every finished trial before the round. */
int tune_run_bayesian(search *S, cv_err *err)
{
    const cv_tune_opts *o = S->o;
    const int d = S->space->n_hp, P = o->proposals_per_round;
    const int64_t first = o->initial_points < o->max_trials ? o->initial_points : o->max_trials;
    trial_desc *descs = cv_malloc(sizeof *descs * (size_t)(first > P ? first : P), "trial list", err);
    double *raw = cv_malloc(sizeof(double) * (size_t)o->max_trials * d, "Bayesian tuner", err);
    double *y = cv_malloc(sizeof(double) * (size_t)o->max_trials, "Bayesian tuner", err);
    double *out = cv_malloc(sizeof(double) * (size_t)P * d, "Bayesian tuner", err);
    double *ei = cv_malloc(sizeof(double) * (size_t)P, "Bayesian tuner", err);
    int rc = descs && raw && y && out && ei ? 0 : -1;
    int64_t t = 0, draw = 0;
    for (; rc == 0 && t < first; t++) {
        descs[t] = (trial_desc){.trial = t, .bracket = -1, .rung = -1, .parent = -1};
        if ((rc = fresh_config(S, &draw, &descs[t], err))) break;
        memcpy(raw + t * d, descs[t].values, sizeof(double) * d);
    }
    if (rc == 1) rc = 0, say_exhausted(S);
    if (rc == 0) rc = tune_run_batch(S, descs, (int)t, err);
    const bool maximize = cv_monitor_max(o->objective);
    const cv_bayes_opts bo = {.beta = o->beta, .expected_improvement = o->expected_improvement};
    for (int64_t round = 0; rc == 0 && !S->exhausted && t < o->max_trials; round++) {
        bool any = false;
        for (int64_t i = 0; i < t; i++) {
            const cv_trial *r = &S->trials[i];
            y[i] = r->status == CV_TRIAL_OK && isfinite(r->objective) ? (maximize ? -r->objective : r->objective) : NAN;
            any |= isfinite(y[i]);
        }
        const int n = (int)(o->max_trials - t < P ? o->max_trials - t : P);
        if (!any) { /* nothing to fit yet (every trial failed): another random one */
            descs[0] = (trial_desc){.trial = t, .bracket = -1, .rung = -1, .parent = -1};
            rc = fresh_config(S, &draw, &descs[0], err);
            if (rc == 0) memcpy(raw + t * d, descs[0].values, sizeof(double) * d), rc = tune_run_batch(S, descs, 1, err), t++;
            continue;
        }
        rc = cv_bayes_propose(S->space->hp, d, raw, y, (int)t, &bo, o->seed, round, n, out, ei, err);
        if (rc == 1) { /* no untried values near or far */
            S->exhausted = true;
            rc = 0;
            say_exhausted(S);
            break;
        }
        for (int k = 0; rc == 0 && k < n; k++) {
            descs[k] = (trial_desc){.trial = t + k, .config = t + k, .bracket = -1, .rung = -1, .parent = -1,
                                    .proposed = true, .ei = ei[k]}; /* a gain in the objective, either direction */
            memcpy(descs[k].values, out + (size_t)k * d, sizeof(double) * d);
            memcpy(raw + (t + k) * d, descs[k].values, sizeof(double) * d);
            rc = remember(S, descs[k].values, err);
        }
        if (rc == 0) rc = tune_run_batch(S, descs, n, err), t += n;
    }
    free(descs);
    free(raw);
    free(y);
    free(out);
    free(ei);
    return rc;
}

/* The trials of Hyperband iterations in order, each rung a batch: rung 0 of a bracket takes
 * new configurations, rung i the best of rung i-1 (ties: the earlier trial). */
int tune_run_hyperband(search *S, int max_epochs, cv_err *err)
{
    cv_hb_rung plan[64];
    const int nr = cv_hyperband_plan(max_epochs, S->o->factor, plan, 64);
    int max_n = 1;
    for (int i = 0; i < nr; i++) max_n = plan[i].n > max_n ? plan[i].n : max_n;
    trial_desc *cur = cv_malloc(sizeof *cur * (size_t)max_n, "hyperband rung", err);
    trial_desc *prev = cv_malloc(sizeof *prev * (size_t)max_n, "hyperband rung", err);
    int rc = cur && prev ? 0 : -1, nprev = 0;
    int64_t trial = 0, draw = 0;
    for (int it = 0; rc == 0 && trial < S->o->max_trials && !S->exhausted; it++) {
        for (int i = 0; rc == 0 && i < nr && trial < S->o->max_trials; i++) {
            const cv_hb_rung *ru = &plan[i];
            if (S->exhausted && ru->rung == 0) break; /* no new bracket without new configurations */
            int n = 0;
            if (ru->rung > 0) { /* promote: sort the previous rung best first (insertion sort) */
                for (int a = 1; a < nprev; a++)
                    for (int b = a; b > 0 && cv_trial_better(S->info.objective, &S->trials[prev[b].trial],
                                                             &S->trials[prev[b - 1].trial]); b--) {
                        trial_desc x = prev[b];
                        prev[b] = prev[b - 1], prev[b - 1] = x;
                    }
            }
            for (; rc == 0 && n < ru->n && n < (ru->rung > 0 ? nprev : ru->n) && trial < S->o->max_trials; n++) {
                if (ru->rung > 0) { /* promoted: the same configuration, continued for the extra epochs */
                    cur[n] = prev[n];
                    cur[n].parent = prev[n].trial;
                } else {
                    cur[n] = (trial_desc){.parent = -1}; /* a new configuration, from scratch */
                    if ((rc = fresh_config(S, &draw, &cur[n], err))) break;
                }
                cur[n].trial = trial++, cur[n].bracket = ru->bracket, cur[n].rung = ru->rung, cur[n].epochs = ru->epochs;
            }
            if (rc == 1) { /* no new configuration: this bracket runs what it has, then the search ends */
                rc = 0;
                say_exhausted(S);
            }
            if (rc == 0) rc = tune_run_batch(S, cur, n, err);
            memcpy(prev, cur, sizeof *cur * (size_t)n);
            nprev = n;
        }
    }
    free(cur);
    free(prev);
    return rc;
}
