/* convoy tune: the hyperparameter search's flags (train's data, validation and override flags
 * plus the search's own) and --summary D, the leaderboard of an earlier search. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "convoy/tune.h"

/* every trial's model gets the command line's overrides, checked once on the search model */
static void adjust_trial(void *ctx, cv_model_spec *spec)
{
    (void)cli_train_flags_apply(ctx, spec);
}

int cmd_tune(const cv_dist *d, int argc, char **argv)
{
    cli_train_flags t = {0};
    const char *trials = NULL, *objective = NULL, *executions = "1", *seed = "1", *tuner = "random",
               *ranks = "1", *dir = "tune", *factor = "3", *summary = NULL, *initial = NULL, *beta = "2.6",
               *acquisition = "ucb", *proposals = "1", *num_models = "0", *project = NULL, *max_failed = "3";
    const cli_flag own[] = {
        {"max-trials", "N", "trials to run (hyperband: configuration x rung runs; see docs/tune.md)", &trials, NULL},
        {"objective", "NAME", "val_accuracy (default with metrics=accuracy), val_loss (else), loss, val_mae, ...",
         &objective, NULL},
        {"executions-per-trial", "K", "trainings per trial (fit seed + 0..K-1); the objective is their mean",
         &executions, NULL},
        {"seed", "S", "sampling seed: the same S gives the same trials (default 1)", &seed, NULL},
        {"tuner", "KIND", "random (default), hyperband (max epochs = --epochs / fit epochs=) or bayesian", &tuner,
         NULL},
        {"initial-points", "N", "bayesian: random trials before the Gaussian process (default 3 x the hp sites)",
         &initial, NULL},
        {"beta", "B", "bayesian: the confidence bound's weight, mu - B sigma (default 2.6)", &beta, NULL},
        {"acquisition", "A", "bayesian: ucb (the confidence bound, default) or ei (expected improvement)",
         &acquisition, NULL},
        {"proposals-per-round", "P", "bayesian: trials proposed at once (default 1; as many as groups keeps "
                                     "them all busy)",
         &proposals, NULL},
        {"factor", "F", "hyperband: the reduction factor eta (default 3)", &factor, NULL},
        {"ranks-per-trial", "R", "ranks training each trial data-parallel; mpirun -np P gives P/R groups",
         &ranks, NULL},
        {"dir", "D", "search directory: trials.h5, trials/NNNNN.h5, best.model (default tune); resumes", &dir,
         NULL},
        {"summary", "D", "print the leaderboard of the search in D (or D/NAME with --project-name) and exit", &summary,
         NULL},
        {"project-name", "NAME", "the search lives in D/NAME (keras-tuner's directory/project_name)", &project, NULL},
        {"num-models", "K", "keep the K best trials' checkpoints as D/best-1.h5 ... best-K.h5 (default 0)", &num_models,
         NULL},
        {"max-consecutive-failed-trials", "N", "stop the search when N trials in a row fail (default 3; 0: never)",
         &max_failed, NULL},
    };
    cli_flag flags[CLI_TRAIN_FLAGS_MAX + sizeof own / sizeof own[0]];
    const int n = cli_train_flags_table(&t, flags);
    memcpy(flags + n, own, sizeof own);
    const cli_command c = {"tune", "MODEL",
                           "Searches MODEL's hp.* hyperparameters: trials in parallel on groups of ranks, every "
                           "finished trial kept in D/trials.h5, D/best.model at the end.",
                           flags, n + (int)(sizeof own / sizeof own[0]), 0, 1};
    const char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    cv_err err;
    char project_dir[4200];
    if (project) { /* D/NAME; a name, not a path */
        if (!*project || strchr(project, '/') || strcmp(project, ".") == 0 || strcmp(project, "..") == 0)
            return cli_usage_fail(d, "--project-name: '%s' must be a plain name (no '/')", project);
        snprintf(project_dir, sizeof project_dir, "%s/%s", summary ? summary : dir, project);
        if (summary) summary = project_dir;
        else dir = project_dir;
    }
    if (summary) {
        if (npos) return cli_usage_fail(d, "tune: --summary D takes no MODEL");
        if (d->rank == 0 && cv_tune_summary(summary, stdout, &err)) return cli_fail(d, "%s", err.msg);
        return CLI_OK;
    }
    if (!npos) return cli_usage_fail(d, "tune: missing MODEL (usage: convoy tune MODEL --max-trials N ...)");
    if (!trials) return cli_usage_fail(d, "tune: --max-trials N is required");
    long ntrials, k, s, r, f, ip = 0, pp, nm, mf;
    double b;
    if (cli_int("--max-trials", trials, 1, 100000, &ntrials) ||
        cli_int("--executions-per-trial", executions, 1, 100, &k) || cli_int("--seed", seed, 0, 0x7fffffffL, &s) ||
        cli_int("--ranks-per-trial", ranks, 1, 1 << 20, &r) || cli_int("--factor", factor, 2, 100, &f) ||
        (initial && cli_int("--initial-points", initial, 1, 100000, &ip)) ||
        cli_int("--proposals-per-round", proposals, 1, 1000, &pp) || cli_float("--beta", beta, 0.0, 1e6, &b) ||
        cli_int("--num-models", num_models, 0, 1000, &nm) ||
        cli_int("--max-consecutive-failed-trials", max_failed, 0, 1000000, &mf))
        return CLI_BAD_INPUT;
    const cv_tuner_kind kind = strcmp(tuner, "random") == 0      ? CV_TUNER_RANDOM
                               : strcmp(tuner, "hyperband") == 0 ? CV_TUNER_HYPERBAND
                               : strcmp(tuner, "bayesian") == 0  ? CV_TUNER_BAYESIAN
                                                                 : (cv_tuner_kind)-1;
    if ((int)kind < 0) return cli_usage_fail(d, "--tuner: unknown tuner '%s' (random, hyperband or bayesian)", tuner);
    if (strcmp(acquisition, "ucb") != 0 && strcmp(acquisition, "ei") != 0)
        return cli_usage_fail(d, "--acquisition: unknown '%s' (ucb or ei)", acquisition);
    if (kind != CV_TUNER_BAYESIAN && (initial || strcmp(beta, "2.6") != 0 || strcmp(acquisition, "ucb") != 0 ||
                                      strcmp(proposals, "1") != 0))
        return cli_usage_fail(d, "tune: --initial-points, --beta, --acquisition and --proposals-per-round are for "
                                 "--tuner bayesian");
    cv_tune_opts o = {.dir = dir, .objective = objective, .max_trials = ntrials, .executions = (int)k,
                      .ranks_per_trial = (int)r, .seed = (uint64_t)s, .factor = (int)f, .tuner = kind,
                      .adjust = adjust_trial, .adjust_ctx = &t, .initial_points = (int)ip,
                      .proposals_per_round = (int)pp, .beta = b, .expected_improvement = strcmp(acquisition, "ei") == 0,
                      .num_models = (int)nm, .max_consecutive_failed = (int)mf};
    if ((rc = cli_train_flags_opts(d, "tune", &t, &o.train))) return rc;
    char best[4200], table[4200]; /* what the search writes in D: never an input */
    snprintf(best, sizeof best, "%s/best.model", dir);
    snprintf(table, sizeof table, "%s/trials.h5", dir);
    const cv_path_role outs[] = {{"--dir's", best}, {"--dir's", table}};
    const cv_path_role ins[] = {{"MODEL", pos[0]}, {"--data", t.data}, {"--val", t.val}};
    if ((rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins)))) return rc;
    /* bad input: an input inside D/trials/, whose NNNNN.h5, .eK.h5 and .result.h5 the search
     * writes, renames and removes (names that depend on the trial: the folder is checked) */
    char folder[4200];
    snprintf(folder, sizeof folder, "%s/trials", dir);
    for (int i = 0; i < NFLAGS(ins); i++)
        if (cv_path_inside(ins[i].path, folder))
            return cli_usage_fail(d, "%s %s is in %s/, where the search writes its trials; choose another --dir or "
                                  "move the file", ins[i].flag, ins[i].path, folder);

    cv_model_spec space;
    if (cv_model_load(&space, pos[0], &err)) return cli_fail(d, "%s", err.msg);
    cv_model_spec probe = space; /* the overrides' errors, once */
    rc = cli_train_flags_apply(&t, &probe);
    if (rc == 0 && !o.objective) o.objective = (space.loss.metrics & CV_METRIC_ACCURACY) ? "val_accuracy" : "val_loss";
    if (!o.initial_points) o.initial_points = 3 * (space.n_hp > 0 ? space.n_hp : 1); /* keras-tuner's default */
    rc = cli_startup_agree(d, rc); /* every rank's checks, before the search's first collective */
    if (rc == 0) {
        const int got = cv_tune(&space, &o, d, &err);
        if (got < 0) rc = cli_fail(d, "%s", err.msg);
        else if (got == 1) rc = CLI_INTERRUPTED;
    }
    cv_model_spec_free(&space);
    return rc;
}
