/* D/trials.h5 and the per-trial result files: every finished trial's values, per-epoch
 * metrics, objective and checkpoint (layout in docs/tune.md), and the
 * leaderboard printed from them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/callbacks.h"
#include "io/h5io.h"
#include "tune/tune-impl.h"

const char *const cv_trial_cols[CV_TRIAL_COLS] = {"loss",     "accuracy",     "mae",     "mse",
                                                  "val_loss", "val_accuracy", "val_mae", "val_mse"};

void cv_trial_free(cv_trial *t)
{
    free(t->history);
    t->history = NULL;
}

int cv_trial_write(hid_t loc, const cv_trial *t, const char *file, cv_err *err)
{
    char *vals[CV_MAX_HP];
    for (int h = 0; h < t->n_hp; h++) vals[h] = (char *)t->values[h];
    const struct {
        const char *name;
        int64_t v;
    } ints[] = {{"trial", t->trial},   {"config", t->config}, {"bracket", t->bracket},
                {"rung", t->rung},     {"epochs", t->epochs}, {"status", t->status},
                {"executions", t->executions}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (cv_h5_attr_write_i64(loc, ints[i].name, ints[i].v, file, err)) return -1;
    if (cv_h5_attr_write_f64(loc, "objective", t->objective, file, err) ||
        cv_h5_attr_write_f64(loc, "seconds", t->seconds, file, err) ||
        cv_h5_attr_write_str(loc, "checkpoint", t->checkpoint, file, err) ||
        cv_h5_attr_write_str(loc, "ranks", t->ranks, file, err) ||
        cv_h5_attr_write_str(loc, "note", t->note, file, err) ||
        cv_h5_attr_write_strs(loc, "values", vals, t->n_hp, file, err))
        return -1;
    if (t->parent >= 0 && cv_h5_attr_write_i64(loc, "parent", t->parent, file, err)) return -1;
    if (isfinite(t->ei) && cv_h5_attr_write_f64(loc, "expected_improvement", t->ei, file, err)) return -1;
    const hsize_t nv = (hsize_t)t->n_hp;
    if (t->has_raw && t->n_hp > 0 && cv_h5_write(loc, "raw_values", H5T_NATIVE_DOUBLE, 1, &nv, t->raw, file, err))
        return -1;
    if (!t->history) return 0;
    const hsize_t dims[3] = {(hsize_t)t->executions, (hsize_t)t->hist_epochs, CV_TRIAL_COLS};
    if (cv_h5_write(loc, "history", H5T_NATIVE_DOUBLE, 3, dims, t->history, file, err)) return -1;
    hid_t d = H5Dopen2(loc, "history", H5P_DEFAULT);
    if (d < 0) return cv_errf(err, "%s: cannot reopen history", file);
    const int rc = cv_h5_attr_write_strs(d, "columns", (char *const *)cv_trial_cols, CV_TRIAL_COLS, file, err);
    H5Dclose(d);
    return rc;
}

static void copy_str(char *dst, size_t size, char *s)
{
    snprintf(dst, size, "%s", s ? s : "");
    free(s);
}

int cv_trial_read(hid_t loc, cv_trial *t, const char *file, cv_err *err)
{
    memset(t, 0, sizeof *t);
    int64_t v[7];
    const char *names[7] = {"trial", "config", "bracket", "rung", "epochs", "status", "executions"};
    for (int i = 0; i < 7; i++)
        if (cv_h5_attr_read_i64(loc, names[i], &v[i], file, err)) return -1;
    t->trial = v[0], t->config = v[1], t->bracket = (int)v[2], t->rung = (int)v[3], t->epochs = (int)v[4];
    t->status = v[5] == CV_TRIAL_OK ? CV_TRIAL_OK : CV_TRIAL_FAILED;
    t->executions = (int)v[6];
    if (t->trial < 0 || t->config < 0 || t->executions < 0 || t->executions > 1000)
        return cv_errf(err, "%s: trial %lld: bad trial, config or executions attribute", file, (long long)t->trial);
    if (cv_h5_attr_read_f64(loc, "objective", &t->objective, file, err) ||
        cv_h5_attr_read_f64(loc, "seconds", &t->seconds, file, err))
        return -1;
    char *s;
    if (!(s = cv_h5_attr_read_str(loc, "checkpoint", file, err))) return -1;
    copy_str(t->checkpoint, sizeof t->checkpoint, s);
    if (!(s = cv_h5_attr_read_str(loc, "ranks", file, err))) return -1;
    copy_str(t->ranks, sizeof t->ranks, s);
    if (!(s = cv_h5_attr_read_str(loc, "note", file, err))) return -1;
    copy_str(t->note, sizeof t->note, s);
    char **vals = NULL;
    const int n = cv_h5_attr_read_strs(loc, "values", &vals, file, err);
    if (n < 0) return -1;
    for (int h = 0; h < n; h++) {
        if (h < CV_MAX_HP) snprintf(t->values[h], sizeof t->values[h], "%s", vals[h]);
        free(vals[h]);
    }
    free(vals);
    if (n > CV_MAX_HP) return cv_errf(err, "%s: trial %lld: %d values (at most %d)", file, (long long)t->trial, n, CV_MAX_HP);
    t->n_hp = n;
    t->parent = -1;
    t->ei = NAN;
    if (H5Aexists(loc, "parent") > 0 && cv_h5_attr_read_i64(loc, "parent", &t->parent, file, err)) return -1;
    if (H5Aexists(loc, "expected_improvement") > 0 &&
        cv_h5_attr_read_f64(loc, "expected_improvement", &t->ei, file, err))
        return -1;
    if (cv_h5_exists(loc, "raw_values")) { /* the values as numbers (a choice's index); shape (n_hp,) */
        hsize_t nv = (hsize_t)n;
        if (n > 0 && cv_h5_read(loc, "raw_values", H5T_NATIVE_DOUBLE, 1, &nv, t->raw, file, err)) return -1;
        t->has_raw = true;
    }
    if (!cv_h5_exists(loc, "history")) return 0;
    hsize_t dims[3] = {0, 0, CV_TRIAL_COLS};
    int rank;
    if (cv_h5_shape(loc, "history", &rank, dims, file, err)) return -1;
    if (rank != 3 || dims[0] > 1000 || dims[1] > 1000000 || dims[2] != CV_TRIAL_COLS)
        return cv_errf(err, "%s: trial %lld: history must be (executions, epochs, %d)", file, (long long)t->trial,
                       CV_TRIAL_COLS);
    t->history = cv_malloc(sizeof(double) * (size_t)(dims[0] * dims[1] * dims[2] + 1), "trial history", err);
    if (!t->history || cv_h5_read(loc, "history", H5T_NATIVE_DOUBLE, 3, dims, t->history, file, err)) return -1;
    t->executions = (int)dims[0];
    t->hist_epochs = (int)dims[1];
    return 0;
}

int cv_trials_save(const char *path, const cv_search_info *info, const cv_trial *trials, int64_t n, cv_err *err)
{
    char tmp[4096];
    hid_t f = cv_h5_create_tmp(path, tmp, sizeof tmp, err);
    if (f < 0) return -1;
    char *names[CV_MAX_HP];
    for (int h = 0; h < info->n_hp; h++) names[h] = (char *)info->names[h];
    int rc = cv_h5_attr_write_str(f, "model", info->model, path, err) ||
             cv_h5_attr_write_str(f, "search", info->config, path, err) ||
             cv_h5_attr_write_str(f, "objective", info->objective, path, err) ||
             cv_h5_attr_write_str(f, "tuner", info->hyperband ? "hyperband" : info->bayesian ? "bayesian" : "random", path,
                                  err) ||
             cv_h5_attr_write_strs(f, "hyperparameters", names, info->n_hp, path, err)
                 ? -1 : 0;
    hid_t g = rc ? -1 : H5Gcreate2(f, "trials", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (rc == 0 && g < 0) rc = cv_errf(err, "%s: cannot create /trials", path);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        if (!trials[i].status) continue;
        char name[32];
        snprintf(name, sizeof name, "%05lld", (long long)i);
        hid_t tg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (tg < 0) rc = cv_errf(err, "%s: cannot create /trials/%s", path, name);
        else rc = cv_trial_write(tg, &trials[i], path, err), H5Gclose(tg);
    }
    if (g >= 0) H5Gclose(g);
    if (rc) {
        cv_h5_abort(f, tmp);
        return -1;
    }
    return cv_h5_commit(f, tmp, path, err);
}

typedef struct {
    cv_trial **trials;
    int64_t *n, cap;
    const char *path;
    cv_err *err;
    int rc;
} load_ctx;

static herr_t load_one(hid_t g, const char *name, const H5L_info_t *info, void *p)
{
    (void)info;
    load_ctx *c = p;
    hid_t tg = H5Gopen2(g, name, H5P_DEFAULT);
    if (tg < 0) return c->rc = cv_errf(c->err, "%s: /trials/%s is not a group", c->path, name), -1;
    cv_trial t;
    int rc = cv_trial_read(tg, &t, c->path, c->err);
    H5Gclose(tg);
    if (rc == 0 && t.trial >= 1000000) rc = cv_errf(c->err, "%s: /trials/%s: trial index too large", c->path, name);
    if (rc == 0 && t.trial >= c->cap) {
        int64_t cap = c->cap ? c->cap : 64;
        while (cap <= t.trial) cap *= 2;
        cv_trial *bigger = realloc(*c->trials, sizeof(cv_trial) * (size_t)cap);
        if (!bigger) rc = cv_errf(c->err, "%s: out of memory", c->path);
        else memset(bigger + c->cap, 0, sizeof(cv_trial) * (size_t)(cap - c->cap)), *c->trials = bigger, c->cap = cap;
    }
    if (rc) {
        cv_trial_free(&t);
        return c->rc = -1, -1;
    }
    cv_trial_free(&(*c->trials)[t.trial]);
    (*c->trials)[t.trial] = t;
    if (t.trial + 1 > *c->n) *c->n = t.trial + 1;
    return 0;
}

int cv_trials_load(const char *path, cv_search_info *info, cv_trial **trials, int64_t *n, cv_err *err)
{
    memset(info, 0, sizeof *info);
    *trials = NULL;
    *n = 0;
    hid_t f = cv_h5_open_read(path, err);
    if (f < 0) return -1;
    int rc = 0;
    char *s = NULL, **names = NULL;
    int nn = 0;
    if (!(info->model = cv_h5_attr_read_str(f, "model", path, err)) ||
        !(s = cv_h5_attr_read_str(f, "search", path, err)))
        rc = -1;
    if (rc == 0) copy_str(info->config, sizeof info->config, s), s = NULL;
    if (rc == 0 && !(s = cv_h5_attr_read_str(f, "objective", path, err))) rc = -1;
    if (rc == 0) copy_str(info->objective, sizeof info->objective, s), s = NULL;
    if (rc == 0 && !(s = cv_h5_attr_read_str(f, "tuner", path, err))) rc = -1;
    if (rc == 0) info->hyperband = strcmp(s, "hyperband") == 0, info->bayesian = strcmp(s, "bayesian") == 0;
    free(s);
    if (rc == 0 && (nn = cv_h5_attr_read_strs(f, "hyperparameters", &names, path, err)) < 0) rc = -1;
    for (int h = 0; h < nn; h++) {
        if (h < CV_MAX_HP) snprintf(info->names[h], sizeof info->names[h], "%s", names[h]);
        free(names[h]);
    }
    free(names);
    if (rc == 0 && nn > CV_MAX_HP) rc = cv_errf(err, "%s: %d hyperparameters (at most %d)", path, nn, CV_MAX_HP);
    info->n_hp = nn > 0 ? nn : 0;
    load_ctx c = {trials, n, 0, path, err, 0};
    if (rc == 0 && cv_h5_exists(f, "trials")) {
        hid_t g = H5Gopen2(f, "trials", H5P_DEFAULT);
        if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, load_one, &c) < 0)
            rc = c.rc ? -1 : cv_errf(err, "%s: cannot read /trials", path);
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    return rc;
}

bool cv_trial_better(const char *objective, const cv_trial *a, const cv_trial *b)
{
    const bool a_ok = a->status == CV_TRIAL_OK, b_ok = b->status == CV_TRIAL_OK;
    if (a_ok != b_ok) return a_ok;
    if (!a_ok || a->objective == b->objective) return a->trial < b->trial; /* earlier wins ties */
    return cv_monitor_max(objective) ? a->objective > b->objective : a->objective < b->objective;
}

int64_t cv_trials_leaderboard(const cv_search_info *info, const cv_trial *trials, int64_t n, FILE *out)
{
    int64_t *order = malloc(sizeof *order * (size_t)(n ? n : 1)), m = 0;
    if (!order) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (!trials[i].status) continue;
        int64_t j = m++;
        for (; j > 0 && cv_trial_better(info->objective, &trials[i], &trials[order[j - 1]]); j--) order[j] = order[j - 1];
        order[j] = i;
    }
    int w[CV_MAX_HP];
    for (int h = 0; h < info->n_hp; h++) {
        w[h] = (int)strlen(info->names[h]);
        for (int64_t k = 0; k < m; k++)
            if ((int)strlen(trials[order[k]].values[h]) > w[h]) w[h] = (int)strlen(trials[order[k]].values[h]);
    }
    fprintf(out, "%-6s", "trial");
    if (info->hyperband) fprintf(out, " %-7s %-4s %-6s %-6s", "bracket", "rung", "epochs", "from");
    if (info->bayesian) fprintf(out, " %-10s", "exp_improv");
    for (int h = 0; h < info->n_hp; h++) fprintf(out, " %-*s", w[h], info->names[h]);
    fprintf(out, " %s\n", info->objective);
    for (int64_t k = 0; k < m; k++) {
        const cv_trial *t = &trials[order[k]];
        fprintf(out, "%-6lld", (long long)t->trial);
        if (info->hyperband) {
            char from[24] = "-"; /* the trial a promotion continued */
            if (t->parent >= 0) snprintf(from, sizeof from, "%lld", (long long)t->parent);
            fprintf(out, " %-7d %-4d %-6d %-6s", t->bracket, t->rung, t->epochs, from);
        }
        if (info->bayesian) {
            char ei[24] = "-"; /* random initial trials have none */
            if (isfinite(t->ei)) snprintf(ei, sizeof ei, "%.4g", t->ei);
            fprintf(out, " %-10s", ei);
        }
        for (int h = 0; h < info->n_hp; h++) fprintf(out, " %-*s", w[h], h < t->n_hp ? t->values[h] : "?");
        if (t->status == CV_TRIAL_OK) fprintf(out, " %.4f\n", t->objective);
        else fprintf(out, " failed: %s\n", t->note);
    }
    const int64_t best = m && trials[order[0]].status == CV_TRIAL_OK ? order[0] : -1;
    free(order);
    return best;
}
