/* The search: the world splits into groups of R ranks; rounds of trials run one per group,
 * each trained data-parallel inside its group; at each round's end every rank learns the
 * round's objectives, and world rank 0 folds the groups' result files into D/trials.h5 (the
 * only writer of it) and rewrites D/best.model. Trial t's values are a pure function of
 * (seed, its configuration), so a resumed search reruns exactly the unfinished trials. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/callbacks.h"
#include "convoy/rng.h"
#include "convoy/timer.h"
#include "io/h5io.h"
#include "tune/search.h"

static const char *tuner_name(cv_tuner_kind k)
{
    return k == CV_TUNER_HYPERBAND ? "hyperband" : k == CV_TUNER_BAYESIAN ? "bayesian" : "random";
}

static void trial_path(const search *S, int64_t t, const char *suffix, char *buf, size_t size)
{
    snprintf(buf, size, "%s/trials/%05lld%s", S->o->dir, (long long)t, suffix);
}

/* ---- one trial, trained by one group --------------------------------------------------- */

/* The epoch's 8 history columns; NaN for metrics not compiled and val_* without validation. */
static void history_row(const cv_model_spec *spec, const cv_epoch_stats *st, double *row)
{
    for (int c = 0; c < CV_TRIAL_COLS; c++) {
        const bool val = c >= 4;
        const int metric = c % 4; /* 0 loss, else the CV_METRIC_* bit 1 << (metric - 1) */
        const bool have = (metric == 0 || (spec->loss.metrics & (1u << (metric - 1)))) && (!val || st->val.count > 0);
        row[c] = have ? cv_metrics_value(spec, cv_trial_cols[c], &st->train, &st->val, st->val.count > 0) : NAN;
    }
}

/* The objective's value in an epoch (any monitor name, in the history's columns or not); NaN for
 * a val_ one without validation data. */
static double objective_value(const cv_model_spec *spec, const char *objective, const cv_epoch_stats *st)
{
    const bool val = strncmp(objective, "val_", 4) == 0;
    return !val || st->val.count > 0 ? cv_metrics_value(spec, objective, &st->train, &st->val, st->val.count > 0) : NAN;
}

static int write_result(const search *S, const cv_trial *t, cv_err *err)
{
    char path[4096], tmp[4200];
    trial_path(S, t->trial, ".result.h5", path, sizeof path);
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    if (cv_trial_write(f, t, path, err)) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}

/* Trains trial d on this rank's group. Returns 0 (t filled, its result file written by the
 * group's rank 0), 1 when stopped by a signal, -1 on an error that ends the search. */
static int run_trial(search *S, const trial_desc *d, cv_trial *t, cv_err *err)
{
    const cv_tune_opts *o = S->o;
    const cv_model_spec *space = S->space;
    const double *values = d->values;
    *t = (cv_trial){.trial = d->trial, .config = d->config, .bracket = d->bracket, .rung = d->rung,
                    .epochs = d->epochs, .n_hp = space->n_hp, .objective = NAN, .executions = o->executions,
                    .has_raw = true, .parent = -1, .ei = d->proposed ? d->ei : NAN};
    snprintf(t->ranks, sizeof t->ranks, "%s", S->ranks);
    for (int h = 0; h < space->n_hp; h++) {
        t->raw[h] = values[h];
        cv_hp_value_text(&space->hp[h], values[h], t->values[h], sizeof t->values[h]);
    }
    const double t0 = cv_now();
    cv_model_spec spec;
    cv_err perr;
    if (cv_tune_trial_spec(space, values, &spec, &perr)) {
        /* an impossible combination (a kernel larger than its input): a failed trial, as in Keras */
        t->status = CV_TRIAL_FAILED;
        snprintf(t->note, sizeof t->note, "%s", perr.msg);
        return S->group.rank == 0 ? write_result(S, t, err) : 0;
    }
    if (o->adjust) o->adjust(o->adjust_ctx, &spec);
    if (d->epochs > 0) spec.fit.epochs = d->epochs;
    t->epochs = spec.fit.epochs;
    snprintf(spec.callbacks.monitor, sizeof spec.callbacks.monitor, "%s", o->objective);
    /* each execution's checkpoint is its best epoch; in Hyperband its last epoch's full state, which
     * a promoted trial continues from */
    const bool hyperband = d->bracket >= 0;
    spec.callbacks.save_best_only = !hyperband;
    const uint64_t seed0 = spec.fit.seed;
    const int E = spec.fit.epochs, K = o->executions;
    const bool maximize = cv_monitor_max(o->objective);
    t->hist_epochs = E;
    cv_epoch_stats *stats = cv_malloc(sizeof *stats * (size_t)E, "epoch stats", err);
    t->history = cv_malloc(sizeof(double) * (size_t)K * E * CV_TRIAL_COLS, "trial history", err);
    int rc = stats && t->history ? 0 : -1;
    double sum = 0.0, best_exec = NAN;
    int best_e = -1;
    for (int e = 0; rc == 0 && e < K; e++) {
        char ck[4200];
        snprintf(ck, sizeof ck, "%s/trials/%05lld.e%d.h5", o->dir, (long long)d->trial, e);
        cv_train_opts to = o->train;
        to.checkpoint = ck;
        to.quiet = true;
        to.out = S->sink; /* a stopped trial's "continue with --resume" is not the search's way */
        to.resume = to.init_from = to.log = NULL;
        to.checkpoint_every = 0;
        char from[4200];
        if (d->parent >= 0) { /* promoted: continue the previous rung's execution e, when it is there */
            snprintf(from, sizeof from, "%s/trials/%05lld.e%d.h5", o->dir, (long long)d->parent, e);
            if (access(from, F_OK) == 0) to.resume = from, t->parent = d->parent;
        }
        spec.fit.seed = seed0 + (uint64_t)e;
        memset(stats, 0, sizeof *stats * (size_t)E);
        rc = cv_train(&spec, &to, &S->group, stats, err);
        double best = NAN;
        for (int ep = 0; rc == 0 && ep < E; ep++) {
            double *row = t->history + ((size_t)e * E + ep) * CV_TRIAL_COLS;
            if (stats[ep].train.count == 0) { /* early stopping ended it */
                for (int c = 0; c < CV_TRIAL_COLS; c++) row[c] = NAN;
                continue;
            }
            history_row(&spec, &stats[ep], row);
            const double v = objective_value(&spec, o->objective, &stats[ep]);
            if (isfinite(v) && (!isfinite(best) || (maximize ? v > best : v < best))) best = v;
        }
        sum += best;
        if (isfinite(best) && (best_e < 0 || (maximize ? best > best_exec : best < best_exec))) best_exec = best, best_e = e;
    }
    free(stats);
    cv_model_spec_free(&spec);
    if (rc) return rc; /* 1: stopped, -1: error; the trial is rerun on resume */
    t->seconds = cv_now() - t0;
    t->objective = sum / K;
    t->status = isfinite(t->objective) ? CV_TRIAL_OK : CV_TRIAL_FAILED;
    if (t->status != CV_TRIAL_OK)
        snprintf(t->note, sizeof t->note, "%s is not finite (diverged?)", o->objective);
    if (S->group.rank != 0) return 0;
    /* keep the best execution's checkpoint as NNNNN.h5 (Hyperband: every execution's stays too,
     * for a promotion to continue; NNNNN.h5 is then a second name of the best one) */
    for (int e = 0; e < K; e++) {
        char ck[4200], final[4200];
        snprintf(ck, sizeof ck, "%s/trials/%05lld.e%d.h5", o->dir, (long long)d->trial, e);
        trial_path(S, d->trial, ".h5", final, sizeof final);
        if (e != best_e) {
            if (!hyperband) remove(ck);
            continue;
        }
        remove(final); /* a trial run again after a kill */
        if ((hyperband ? link(ck, final) : rename(ck, final)) != 0) {
            if (errno != ENOENT) return cv_errf(err, "%s: cannot %s to %s: %s", ck, hyperband ? "link" : "rename", final,
                                                strerror(errno));
        } else {
            snprintf(t->checkpoint, sizeof t->checkpoint, "%s", final);
        }
    }
    return write_result(S, t, err);
}

/* ---- rank 0's bookkeeping -------------------------------------------------------------- */

/* D/best.model: the search model with the best trial's values written in. */
static int write_best_model(search *S, int64_t best, cv_err *err)
{
    const cv_trial *t = &S->trials[best];
    double values[CV_MAX_HP];
    for (int h = 0; h < S->space->n_hp; h++)
        values[h] = t->has_raw ? t->raw[h] : cv_hp_sample(&S->space->hp[h], S->o->seed, t->config, h);
    char *text = cv_tune_substitute(S->space, values, err);
    if (!text) return -1;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/best.model", S->o->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = cv_errf(err, "%s: cannot write: %s", tmp, strerror(errno));
    } else {
        fprintf(f, "# convoy tune: best trial %lld of %s (%s %.6g; trained %d epoch%s, checkpoint %s)\n%s",
                (long long)t->trial, S->path, S->info.objective, t->objective, t->epochs, t->epochs > 1 ? "s" : "",
                t->checkpoint, text);
        if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = cv_errf(err, "%s: cannot write: %s", tmp, strerror(errno));
        if (fclose(f) != 0 && rc == 0) rc = cv_errf(err, "%s: cannot write: %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, path) != 0) rc = cv_errf(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        if (rc) remove(tmp);
    }
    free(text);
    return rc;
}

/* --num-models K: D/best-k.h5, a second name (a hard link) of the k-th best trial's
 * checkpoint, for k = 1..K among the trials that have one. */
static int keep_best_models(search *S, cv_err *err)
{
    const int K = S->o->num_models;
    int64_t *order = K > 0 ? cv_malloc(sizeof *order * (size_t)K, "best models", err) : NULL;
    if (K > 0 && !order) return -1;
    int m = 0;
    for (int64_t i = 0; i < S->o->max_trials; i++) { /* the K best, best first (insertion) */
        const cv_trial *t = &S->trials[i];
        if (t->status != CV_TRIAL_OK || !t->checkpoint[0]) continue;
        int j = m < K ? m++ : K;
        for (; j > 0 && cv_trial_better(S->info.objective, t, &S->trials[order[j - 1]]); j--)
            if (j < K) order[j] = order[j - 1];
        if (j < K) order[j] = i;
    }
    int rc = 0;
    for (int k = 0; rc == 0 && k < m; k++) {
        char dst[4200];
        snprintf(dst, sizeof dst, "%s/best-%d.h5", S->o->dir, k + 1);
        const char *src = S->trials[order[k]].checkpoint;
        remove(dst);
        if (link(src, dst) != 0) rc = cv_errf(err, "%s: cannot link to %s: %s", dst, src, strerror(errno));
    }
    free(order);
    return rc;
}

/* Reads the result files of trials[from..to) that exist into the records; saves trials.h5
 * and best.model when any was new. *merged counts them. */
static int merge_results(search *S, const int64_t *ids, int n, int *merged, cv_err *err)
{
    *merged = 0;
    for (int i = 0; i < n; i++) {
        char path[4200];
        trial_path(S, ids[i], ".result.h5", path, sizeof path);
        if (access(path, F_OK) != 0) continue;
        hid_t f = cv_h5_open_read(path, err);
        if (f < 0) return -1;
        cv_trial t;
        int rc = cv_trial_read(f, &t, path, err);
        H5Fclose(f);
        if (rc == 0 && (t.trial != ids[i] || t.n_hp != S->space->n_hp))
            rc = cv_errf(err, "%s: not trial %lld of this search", path, (long long)ids[i]);
        if (rc) {
            cv_trial_free(&t);
            return -1;
        }
        cv_trial_free(&S->trials[ids[i]]);
        S->trials[ids[i]] = t;
        (*merged)++;
    }
    if (!*merged) return 0;
    if (cv_trials_save(S->path, &S->info, S->trials, S->o->max_trials, err)) return -1;
    for (int i = 0; i < n; i++) { /* folded in: the result files are no longer needed */
        char path[4200];
        trial_path(S, ids[i], ".result.h5", path, sizeof path);
        remove(path);
    }
    int64_t best = -1;
    for (int64_t i = 0; i < S->o->max_trials; i++)
        if (S->trials[i].status == CV_TRIAL_OK && (best < 0 || cv_trial_better(S->info.objective, &S->trials[i], &S->trials[best])))
            best = i;
    if (best >= 0 && write_best_model(S, best, err)) return -1;
    return keep_best_models(S, err);
}

static void print_trial(search *S, const cv_trial *t)
{
    FILE *f = S->out;
    fprintf(f, "trial %lld (of %lld)", (long long)t->trial, (long long)S->o->max_trials);
    if (S->info.hyperband) fprintf(f, "  bracket %d rung %d", t->bracket, t->rung);
    fprintf(f, "  %d epoch%s  ranks %s ", t->epochs, t->epochs > 1 ? "s" : "", t->ranks);
    for (int h = 0; h < t->n_hp; h++) fprintf(f, " %s=%s", S->info.names[h], t->values[h]);
    if (t->status == CV_TRIAL_OK) fprintf(f, "  %s %.4f  (%.1fs)\n", S->info.objective, t->objective, t->seconds);
    else fprintf(f, "  failed: %s\n", t->note);
    fflush(f);
}

/* ---- rounds ------------------------------------------------------------------------------ */

static int bcast_results(search *S, int64_t n, cv_err *err)
{
    if (S->world->size == 1) return 0;
    double *buf = cv_malloc(sizeof(double) * 2 * (size_t)n, "trial results", err);
    if (!buf) return -1;
    for (int64_t i = 0; i < n; i++) buf[2 * i] = S->trials[i].status, buf[2 * i + 1] = S->trials[i].objective;
    int rc = MPI_Bcast(buf, (int)(2 * n), MPI_DOUBLE, 0, S->world->comm);
    for (int64_t i = 0; rc == MPI_SUCCESS && i < n; i++)
        S->trials[i].status = (cv_trial_status)buf[2 * i], S->trials[i].objective = buf[2 * i + 1];
    free(buf);
    return rc == MPI_SUCCESS ? 0 : cv_errf(err, "MPI_Bcast of finished trials failed");
}

/* --max-consecutive-failed-trials N: true (err set) when N finished trials in a row, in trial
 * order, failed. Every rank decides alike: the statuses are the round's shared ones. */
static bool too_many_failures(const search *S, cv_err *err)
{
    const int N = S->o->max_consecutive_failed;
    int64_t run = 0, first = -1;
    for (int64_t i = 0; N > 0 && i < S->o->max_trials; i++) {
        const cv_trial *t = &S->trials[i];
        if (!t->status) continue;
        if (t->status == CV_TRIAL_OK) {
            run = 0;
            continue;
        }
        if (run++ == 0) first = i;
        if (run >= N) {
            cv_errf(err, "tune: %d trials in a row failed (trials %lld to %lld; the last: %s); stopping "
                         "(--max-consecutive-failed-trials %d, 0 never stops)",
                    N, (long long)first, (long long)i, t->note[0] ? t->note : "see trials.h5", N);
            return true;
        }
    }
    return false;
}

/* Runs the unfinished trials of descs, one per group per round. Returns 0, 1 (stopped), -1. */
int tune_run_batch(search *S, const trial_desc *descs, int n, cv_err *err)
{
    trial_desc *pending = cv_malloc(sizeof *pending * (size_t)(n ? n : 1), "trial list", err);
    double *sync = cv_malloc(sizeof(double) * 3 * (size_t)S->G, "round results", err);
    int64_t *ids = cv_malloc(sizeof *ids * (size_t)S->G, "round results", err);
    int np = 0, rc = pending && sync && ids ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++)
        if (!S->trials[descs[i].trial].status) pending[np++] = descs[i];
    for (int r = 0; rc == 0 && r < np; r += S->G) {
        cv_trial t = {0};
        const int mine = r + S->g;
        int got = mine < np ? run_trial(S, &pending[mine], &t, err) : 0;
        /* an error anywhere ends the search on every rank, with that rank's message */
        if (cv_dist_agree(S->world, got < 0, err)) {
            cv_trial_free(&t);
            rc = -1;
            break;
        }
        memset(sync, 0, sizeof(double) * 3 * (size_t)S->G);
        if (mine < np && S->group.rank == 0)
            sync[3 * S->g] = t.status, sync[3 * S->g + 1] = t.objective, sync[3 * S->g + 2] = got == 1;
        cv_trial_free(&t);
        if (cv_dist_sum_f64(S->world, sync, 3 * S->G, err)) {
            rc = -1;
            break;
        }
        int nids = 0, stopped = 0;
        for (int k = 0; k < S->G && r + k < np; k++) {
            stopped |= sync[3 * k + 2] > 0;
            if (sync[3 * k + 2] > 0) continue;
            cv_trial *rec = &S->trials[pending[r + k].trial];
            rec->status = (cv_trial_status)sync[3 * k];
            rec->objective = sync[3 * k + 1];
            ids[nids++] = pending[r + k].trial;
        }
        int merged = 0, failed = S->world->rank == 0 && merge_results(S, ids, nids, &merged, err);
        if (cv_dist_agree(S->world, failed, err)) {
            rc = -1;
            break;
        }
        S->done += nids;
        if (S->world->rank == 0)
            for (int k = 0; k < nids; k++) print_trial(S, &S->trials[ids[k]]);
        if (stopped) rc = 1;
        else if (too_many_failures(S, err)) rc = -1;
    }
    free(pending);
    free(sync);
    free(ids);
    return rc;
}

/* ---- the search ----------------------------------------------------------------------- */

/* mkdir -p: path and the folders above it */
static int make_dir(const char *path, cv_err *err)
{
    char p[4200];
    snprintf(p, sizeof p, "%s", path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return cv_errf(err, "%s: cannot create directory: %s", p, strerror(errno));
        *c = '/';
    }
    if (mkdir(p, 0777) == 0 || errno == EEXIST) return 0;
    return cv_errf(err, "%s: cannot create directory: %s", path, strerror(errno));
}

/* Rank 0: the search's identity, and any earlier run's trials (trials.h5, and result files a
 * killed run wrote but had not folded in). */
static int open_search(search *S, const cv_model_spec *probe, cv_err *err)
{
    const cv_tune_opts *o = S->o;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/trials", o->dir);
    if (make_dir(o->dir, err) || make_dir(dir, err)) return -1;
    const cv_train_opts *tr = &o->train;
    snprintf(S->info.config, sizeof S->info.config,
             "tuner=%s objective=%s seed=%llu executions=%d ranks_per_trial=%d epochs=%d factor=%d batch=%d "
             "data=%s val=%s validation_split=%g",
             tuner_name(o->tuner), o->objective, (unsigned long long)o->seed, o->executions, o->ranks_per_trial,
             probe->fit.epochs, o->factor, probe->fit.batch_size, tr->data, tr->val ? tr->val : "-",
             (double)probe->fit.validation_split);
    if (o->tuner == CV_TUNER_BAYESIAN) /* what changes its proposals */
        snprintf(S->info.config + strlen(S->info.config), sizeof S->info.config - strlen(S->info.config),
                 " initial_points=%d beta=%g acquisition=%s proposals_per_round=%d", o->initial_points, o->beta,
                 o->expected_improvement ? "ei" : "ucb", o->proposals_per_round);
    if (access(S->path, F_OK) == 0) {
        cv_search_info old;
        cv_trial *prev = NULL;
        int64_t n = 0;
        int rc = cv_trials_load(S->path, &old, &prev, &n, err);
        if (rc == 0 && strcmp(old.model, S->space->text) != 0)
            rc = cv_errf(err, "%s: made by a search of another model file; use another --dir (or remove it)", S->path);
        else if (rc == 0 && strcmp(old.config, S->info.config) != 0)
            rc = cv_errf(err, "%s: made by another search (%s); this one is %s: use the same flags or another --dir",
                         S->path, old.config, S->info.config);
        for (int64_t i = o->max_trials; rc == 0 && i < n; i++)
            if (prev[i].status)
                rc = cv_errf(err, "%s: holds trial %lld, beyond --max-trials %lld (give at least %lld)", S->path,
                             (long long)i, (long long)o->max_trials, (long long)n);
        for (int64_t i = 0; i < n; i++) {
            if (rc == 0 && i < o->max_trials && prev[i].status) {
                S->trials[i] = prev[i];
                S->done++;
            } else {
                cv_trial_free(&prev[i]);
            }
        }
        free(prev);
        free(old.model);
        if (rc) return -1;
    }
    const int64_t before = S->done;
    int64_t *ids = cv_malloc(sizeof *ids * (size_t)o->max_trials, "trial list", err);
    if (!ids) return -1;
    int n = 0, merged = 0;
    for (int64_t i = 0; i < o->max_trials; i++)
        if (!S->trials[i].status) ids[n++] = i;
    int rc = merge_results(S, ids, n, &merged, err);
    free(ids);
    S->done += merged;
    if (rc == 0 && before + merged > 0)
        fprintf(S->out, "tune: resuming %s: %lld finished trial%s kept\n", S->path, (long long)(before + merged),
                before + merged > 1 ? "s" : "");
    return rc;
}

static int check_objective(const cv_model_spec *probe, const cv_tune_opts *o, cv_err *err)
{
    const int metric = cv_monitor_metric(o->objective);
    if (metric == CV_MONITOR_UNKNOWN)
        return cv_errf(err, "--objective: unknown '%s' (loss or a metric name, with or without val_)", o->objective);
    if (metric >= 0 && !(probe->loss.metrics & (1u << metric)))
        return cv_errf(err, "%s:%d: --objective %s needs metrics=%s in compile", probe->file, probe->optim_line,
                       o->objective, cv_metric_name(metric));
    if (strncmp(o->objective, "val_", 4) == 0 && !o->train.val && probe->fit.validation_split <= 0)
        return cv_errf(err, "--objective %s needs validation data (--val F.h5 or --validation-split R)", o->objective);
    return 0;
}

int cv_tune(const cv_model_spec *space, const cv_tune_opts *o, const cv_dist *world, cv_err *err)
{
    /* the group is the single rank until split: an early error frees no communicator */
    search S = {.space = space, .o = o, .world = world, .group = cv_dist_single(),
                .out = o->out ? o->out : stdout};
    if (space->n_hp == 0)
        return cv_errf(err, "%s: no hyperparameters to tune (write e.g. units=hp.int(32,256,step=32))", space->file);
    if (o->max_trials < 1 || o->executions < 1 || o->ranks_per_trial < 1 || o->factor < 2)
        return cv_errf(err, "tune: max trials, executions and ranks per trial must be >= 1, the factor >= 2");
    if (o->tuner == CV_TUNER_BAYESIAN &&
        (o->initial_points < 1 || o->proposals_per_round < 1 || !(o->beta >= 0) || o->max_trials > CV_GP_MAX))
        return cv_errf(err, "tune: the Bayesian tuner needs --initial-points and --proposals-per-round >= 1, --beta "
                            ">= 0 and --max-trials <= %d",
                       CV_GP_MAX - 1);
    if (world->size % o->ranks_per_trial != 0)
        return cv_errf(err, "--ranks-per-trial %d does not divide the %d ranks", o->ranks_per_trial, world->size);
    cv_model_spec probe = *space; /* shallow: only fit/compile fields change */
    if (o->adjust) o->adjust(o->adjust_ctx, &probe);
    if (check_objective(&probe, o, err)) return -1;

    S.G = world->size / o->ranks_per_trial;
    S.g = world->rank / o->ranks_per_trial;
    snprintf(S.path, sizeof S.path, "%s/trials.h5", o->dir);
    S.info.model = space->text;
    snprintf(S.info.objective, sizeof S.info.objective, "%s", o->objective);
    S.info.hyperband = o->tuner == CV_TUNER_HYPERBAND;
    S.info.bayesian = o->tuner == CV_TUNER_BAYESIAN;
    S.info.n_hp = space->n_hp;
    for (int h = 0; h < space->n_hp; h++) snprintf(S.info.names[h], sizeof S.info.names[h], "%s", space->hp[h].name);
    S.sink = fopen("/dev/null", "w"); /* NULL (stdout) when there is none */
    S.trials = calloc((size_t)o->max_trials, sizeof *S.trials);
    if (!S.trials) {
        if (S.sink) fclose(S.sink);
        return cv_errf(err, "out of memory for %lld trial records", (long long)o->max_trials);
    }

    int rc = cv_dist_agree(world, world->rank == 0 && open_search(&S, &probe, err), err);
    if (rc == 0) rc = bcast_results(&S, o->max_trials, err);
    if (rc == 0) rc = cv_dist_split(world, S.g, &S.group, err);
    if (rc == 0 && world->size > 1) { /* the group's world ranks, as every trial records them */
        int *all = cv_malloc(sizeof(int) * (size_t)S.group.size, "group ranks", err);
        if (!all || (S.group.size > 1 &&
                     MPI_Allgather(&world->rank, 1, MPI_INT, all, 1, MPI_INT, S.group.comm) != MPI_SUCCESS))
            rc = cv_errf(err, "MPI_Allgather of group ranks failed");
        if (S.group.size == 1 && all) all[0] = world->rank;
        for (int i = 0; rc == 0 && i < S.group.size; i++)
            snprintf(S.ranks + strlen(S.ranks), sizeof S.ranks - strlen(S.ranks), "%s%d", i ? "," : "", all[i]);
        free(all);
    } else {
        snprintf(S.ranks, sizeof S.ranks, "0");
    }
    if (rc == 0 && world->rank == 0)
        fprintf(S.out, "tune: %s search of %d hyperparameter%s, %lld trials x %d execution%s, objective %s (%s); "
                "%d group%s of %d rank%s\n", tuner_name(o->tuner), space->n_hp,
                space->n_hp > 1 ? "s" : "", (long long)o->max_trials, o->executions, o->executions > 1 ? "s" : "",
                o->objective, cv_monitor_max(o->objective) ? "max" : "min", S.G, S.G > 1 ? "s" : "",
                o->ranks_per_trial, o->ranks_per_trial > 1 ? "s" : "");
    if (rc == 0) rc = tune_plan_enumeration(&S, err);
    if (rc == 0 && o->tuner == CV_TUNER_HYPERBAND) rc = tune_run_hyperband(&S, probe.fit.epochs, err);
    else if (rc == 0 && o->tuner == CV_TUNER_BAYESIAN) rc = tune_run_bayesian(&S, err);
    else if (rc == 0) rc = tune_run_random(&S, err);
    if (rc == 1 && world->rank == 0)
        fprintf(S.out, "tune: stopped; %lld finished trial%s in %s (run the same command to resume)\n",
                (long long)S.done, S.done == 1 ? " is" : "s are", S.path);
    if (rc == 1 && world->rank == 0) fflush(S.out); /* under mpirun the first rank to exit 75 ends the job */
    if (rc == 0 && world->rank == 0) {
        fputc('\n', S.out);
        const int64_t best = cv_trials_leaderboard(&S.info, S.trials, o->max_trials, S.out);
        if (best >= 0)
            fprintf(S.out, "\nbest: trial %lld, %s %.4f; checkpoint %s; model %s/best.model (convoy train it)\n",
                    (long long)best, o->objective, S.trials[best].objective, S.trials[best].checkpoint, o->dir);
        else
            fprintf(S.out, "\nno trial succeeded\n");
    }
    cv_dist_free(&S.group);
    free(S.seen);
    free(S.perm);
    if (S.sink) fclose(S.sink);
    for (int64_t i = 0; i < o->max_trials; i++) cv_trial_free(&S.trials[i]);
    free(S.trials);
    return rc;
}

int cv_tune_summary(const char *dir, FILE *out, cv_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/trials.h5", dir);
    cv_search_info info;
    cv_trial *trials = NULL;
    int64_t n = 0;
    int rc = cv_trials_load(path, &info, &trials, &n, err);
    if (rc == 0) {
        int64_t done = 0;
        for (int64_t i = 0; i < n; i++) done += trials[i].status != 0;
        fprintf(out, "%s: %lld finished trial%s (%s)\n\n", path, (long long)done, done == 1 ? "" : "s", info.config);
        const int64_t best = cv_trials_leaderboard(&info, trials, n, out);
        if (best >= 0)
            fprintf(out, "\nbest: trial %lld, %s %.4f; checkpoint %s; model %s/best.model\n", (long long)best,
                    info.objective, trials[best].objective, trials[best].checkpoint, dir);
    }
    for (int64_t i = 0; i < n; i++) cv_trial_free(&trials[i]);
    free(trials);
    free(info.model);
    return rc;
}
