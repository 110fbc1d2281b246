/* The subcommands: each declares its flags in a table (which is also its --help), turns
 * flag values into configuration, calls the library, and maps failures to exit codes. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "convoy/checkpoint.h"
#include "convoy/confusion.h"
#include "convoy/data.h"
#include "convoy/files.h"
#include "convoy/imageset.h"
#include "convoy/model.h"
#include "convoy/timer.h"
#include "convoy/train.h"


/* CLI flags override the model file's compile/fit values. */
static int apply_overrides(cv_model_spec *spec, const char *epochs, const char *batch,
                           const char *optimizer, const char *lr, const char *seed, const char *split)
{
    long v;
    double x;
    if (epochs) {
        if (cli_int("--epochs", epochs, 1, 1000000, &v)) return 1;
        spec->fit.epochs = (int)v;
    }
    if (batch) {
        if (strcmp(batch, "all") == 0) spec->fit.batch_size = 0;
        else if (cli_int("--batch-size", batch, 1, 1L << 30, &v)) return 1;
        else spec->fit.batch_size = (int)v;
    }
    if (optimizer) {
        int k = cv_optim_from_name(optimizer);
        if (k < 0)
            return cli_usage_fail(NULL, "--optimizer: unknown optimizer '%s' (sgd, momentum, adagrad, rmsprop, adadelta, adam)", optimizer);
        /* another optimizer than the file's starts from its own defaults */
        if (k != (int)spec->optim.kind) spec->optim = cv_optim_defaults((cv_optim_kind)k);
    }
    if (lr) {
        if (cli_float("--lr", lr, 0.0, 1e6, &x)) return 1;
        spec->optim.lr = (float)x;
    }
    if (seed) {
        if (cli_int("--seed", seed, 0, 0x7fffffffL, &v)) return 1;
        spec->fit.seed = (uint64_t)v;
    }
    if (split) {
        if (cli_float("--validation-split", split, 0.0, 0.99, &x)) return 1;
        spec->fit.validation_split = (float)x;
    }
    return 0;
}

/* (cli.h) */
int cli_allreduce_bytes(const cv_dist *d, const char *kind, const char *bucket_mb, int64_t *bytes)
{
    long mb;
    if (cli_int("--bucket-mb", bucket_mb, 1, 1024, &mb)) return CLI_BAD_INPUT;
    if (strcmp(kind, "blocking") != 0 && strcmp(kind, "bucketed") != 0)
        return cli_usage_fail(d, "--allreduce: unknown kind '%s' (blocking or bucketed)", kind);
    *bytes = strcmp(kind, "bucketed") == 0 ? (int64_t)mb << 20 : 0;
    return CLI_OK;
}

/* Callback flags override the model file's fit keys. */
static int apply_callback_flags(cv_model_spec *spec, const char *schedule, const char *warmup, const char *early,
                                const char *plateau, const char *monitor, bool save_best)
{
    cv_callbacks_config *c = &spec->callbacks;
    long v;
    if (schedule) {
        int k = -1;
        for (int i = 0; i < CV_SCHED_COUNT; i++)
            if (strcmp(schedule, cv_sched_name((cv_sched_kind)i)) == 0) k = i;
        if (k < 0) return cli_usage_fail(NULL, "--lr-schedule: unknown schedule '%s' (constant, step, exponential, cosine)", schedule);
        c->schedule = (cv_sched_kind)k;
    }
    if (warmup) {
        if (cli_int("--warmup-steps", warmup, 0, 1L << 40, &v)) return CLI_BAD_INPUT;
        c->warmup_steps = v;
    }
    if (early) {
        if (cli_int("--early-stopping", early, 0, 1000000, &v)) return CLI_BAD_INPUT;
        c->es_patience = (int)v;
    }
    if (plateau) {
        if (cli_int("--reduce-lr-on-plateau", plateau, 0, 1000000, &v)) return CLI_BAD_INPUT;
        c->plateau_patience = (int)v;
    }
    if (monitor) {
        const int metric = cv_monitor_metric(monitor);
        if (metric == CV_MONITOR_UNKNOWN)
            return cli_usage_fail(NULL, "--monitor: unknown quantity '%s' (loss or a metric name, with or without val_)",
                                  monitor);
        if (metric >= 0 && !(spec->loss.metrics & (1u << metric)))
            return cli_usage_fail(NULL, "--monitor %s needs metrics=%s in the model file's compile (line %d)", monitor,
                                  cv_metric_name(metric), spec->optim_line);
        snprintf(c->monitor, sizeof c->monitor, "%s", monitor);
    }
    if (save_best) c->save_best_only = true;
    return CLI_OK;
}

int cli_train_flags_table(cli_train_flags *t, cli_flag *out)
{
    const cli_flag shared[] = {
        {"data", "F.h5", "training set (required)", &t->data, NULL},
        {"val", "F.h5", "validation set (instead of --validation-split)", &t->val, NULL},
        {"validation-split", "R", "hold out a seeded random fraction R of --data", &t->split, NULL},
        {"epochs", "N", "epochs to train (fit epochs=)", &t->epochs, NULL},
        {"batch-size", "B|all", "GLOBAL batch size; all = full-batch gradient descent", &t->batch, NULL},
        {"optimizer", "NAME", "sgd, momentum, adagrad, rmsprop, adadelta, adam", &t->opt, NULL},
        {"lr", "X", "learning rate", &t->lr, NULL},
        {"threads", "T", "OpenMP threads per rank (default: OMP_NUM_THREADS)", &t->threads, NULL},
        {"quiet", NULL, "no per-epoch lines", NULL, &t->quiet},
        {"stream", NULL, "read each rank's rows of /x from the file per batch (data larger than memory)", NULL, &t->stream},
        {"check-every", "N", "compare a weight checksum across ranks every N steps (default 100; 0 off)", &t->check, NULL},
        {"allreduce", "KIND", "gradient averaging: blocking (one MPI_Allreduce, default) or bucketed", &t->allreduce, NULL},
        {"bucket-mb", "M", "bucketed: bucket size in MiB (default 4)", &t->bucket_mb, NULL},
        {"lr-schedule", "KIND", "constant, step, exponential or cosine (fit lr_schedule=)", &t->schedule, NULL},
        {"warmup-steps", "N", "linear learning-rate warm-up over N steps (fit warmup_steps=)", &t->warmup, NULL},
        {"early-stopping", "P", "stop after P epochs without improvement (fit early_stopping_patience=)", &t->early, NULL},
        {"reduce-lr-on-plateau", "P", "cut the learning rate after P flat epochs (fit reduce_lr_patience=)", &t->plateau, NULL},
        {"reproducible", NULL, "byte-identical weights at any rank and thread count (exact gradient sum)", NULL, &t->reproducible},
        {"precision", "P", "fp32 (default) or bf16: the products in bfloat16 (needs AVX512_BF16; fit precision=)", &t->precision, NULL},
    };
    memcpy(out, shared, sizeof shared);
    return NFLAGS(shared);
}

int cli_train_flags_opts(const cv_dist *d, const char *cmd, const cli_train_flags *t, cv_train_opts *o)
{
    if (!t->data) return cli_usage_fail(d, "%s: --data F.h5 is required", cmd);
    if (t->val && t->split) return cli_usage_fail(d, "%s: use either --val or --validation-split, not both", cmd);
    if (cli_threads(t->threads)) return CLI_BAD_INPUT;
    long check_every;
    int64_t bucket_bytes = 0;
    if (cli_int("--check-every", t->check ? t->check : "100", 0, 1L << 40, &check_every) ||
        cli_allreduce_bytes(d, t->allreduce ? t->allreduce : "blocking", t->bucket_mb ? t->bucket_mb : "4", &bucket_bytes))
        return CLI_BAD_INPUT;
    *o = (cv_train_opts){.data = t->data, .val = t->val, .quiet = t->quiet, .stream = t->stream,
                         .check_every = check_every, .bucket_bytes = bucket_bytes,
                         .stop_flag = &cli_stop_requested, .reproducible = t->reproducible};
    return CLI_OK;
}

int cli_train_flags_apply(const cli_train_flags *t, cv_model_spec *spec)
{
    if (apply_overrides(spec, t->epochs, t->batch, t->opt, t->lr, NULL, t->split)) return CLI_BAD_INPUT;
    if (t->precision) {
        if (cli_precision(t->precision, &spec->fit.precision)) return CLI_BAD_INPUT;
        spec->fit.precision_line = 0;
    }
    return apply_callback_flags(spec, t->schedule, t->warmup, t->early, t->plateau, NULL, false);
}

int cmd_train(const cv_dist *d, int argc, char **argv)
{
    cli_train_flags t = {0};
    const char *seed = NULL, *ckpt = NULL, *resume = NULL, *init_from = NULL, *ckpt_every = NULL,
               *monitor = NULL, *log = NULL, *fine_tune = NULL, *plot = NULL;
    bool save_best = false, verbose = false;
    const cli_flag own[] = {
        {"seed", "S", "seed for initialisation, shuffling, splits and dropout", &seed, NULL},
        {"checkpoint", "F.h5", "save the trained model here (rank 0)", &ckpt, NULL},
        {"checkpoint-every", "N|epoch", "also save --checkpoint every N optimizer steps (epoch ends always)", &ckpt_every, NULL},
        {"resume", "F.h5", "continue exactly where the checkpoint F.h5 stopped (--epochs counts the total)", &resume, NULL},
        {"init-from", "F.h5", "start from F.h5's weights (every layer's shape checked)", &init_from, NULL},
        {"fine-tune-last", "K", "unfreeze the last K base layers with weights (fit fine_tune_last=)", &fine_tune, NULL},
        {"monitor", "NAME", "what the callbacks watch: val_loss (default), val_accuracy, loss, ...", &monitor, NULL},
        {"save-best-only", NULL, "write --checkpoint only when the monitored value improves", NULL, &save_best},
        {"log", "history.csv", "one CSV row per epoch: epoch, lr, loss, metrics, val_*, seconds, images/s", &log, NULL},
        {"plot", "curves.svg", "SVG of loss and accuracy per epoch, train vs validation, rewritten every epoch", &plot, NULL},
        {"verbose", NULL, "per epoch also: learning rate and time (train, allreduce, validation, ms/step)", NULL, &verbose},
    };
    cli_flag flags[CLI_TRAIN_FLAGS_MAX + NFLAGS(own)];
    const int n = cli_train_flags_table(&t, flags);
    memcpy(flags + n, own, sizeof own);
    const cli_command c = {"train", "MODEL", "Trains MODEL (a model file) on --data.", flags, n + NFLAGS(own), 1, 1};
    const char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    cv_train_opts o;
    if ((rc = cli_train_flags_opts(d, "train", &t, &o))) return rc;

    cv_model_spec spec;
    cv_err err;
    if (cv_model_load(&spec, pos[0], &err)) return cli_fail(d, "%s", err.msg);
    rc = cli_train_flags_apply(&t, &spec);
    if (rc == 0) rc = apply_overrides(&spec, NULL, NULL, NULL, NULL, seed, NULL);
    if (rc == 0) rc = apply_callback_flags(&spec, NULL, NULL, NULL, NULL, monitor, save_best);
    long every = 0;
    if (rc == 0 && ckpt_every && strcmp(ckpt_every, "epoch") != 0 &&
        cli_int("--checkpoint-every", ckpt_every, 1, 1L << 40, &every))
        rc = CLI_BAD_INPUT;
    if (rc == 0 && fine_tune) {
        long k;
        if (cli_int("--fine-tune-last", fine_tune, 0, CV_MAX_LAYERS, &k)) rc = CLI_BAD_INPUT;
        else if (cv_model_fine_tune(&spec, (int)k, &err)) rc = cli_fail(d, "--fine-tune-last: %s", err.msg);
    }
    if (rc == 0 && ckpt_every && !ckpt) rc = cli_usage_fail(d, "train: --checkpoint-every needs --checkpoint F.h5");
    if (rc == 0 && t.quiet && verbose) rc = cli_usage_fail(d, "train: use either --quiet or --verbose, not both");
    if (rc == 0 && resume && init_from) rc = cli_usage_fail(d, "train: use either --resume or --init-from, not both");
    if (rc == 0) { /* never write over an input; --checkpoint may be --resume's file (a run continued in place) */
        const cv_path_role outs[] = {{"--checkpoint", ckpt}, {"--log", log}, {"--plot", plot}};
        const cv_path_role ins[] = {{"MODEL", pos[0]}, {"--data", t.data}, {"--val", t.val}, {"--init-from", init_from},
                                    {"base checkpoint=", spec.base.upto ? spec.base.checkpoint : NULL}};
        const cv_path_role resumed[] = {{"--resume", resume}};
        rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins));
        if (rc == 0) rc = cli_check_outputs(d, outs + 1, 2, CLI_ROLES(resumed));
    }
    rc = cli_startup_agree(d, rc); /* every rank's checks, before cv_train's first collective */
    if (rc == 0) {
        o.checkpoint = ckpt;
        o.resume = resume;
        o.init_from = init_from;
        o.checkpoint_every = every;
        o.log = log;
        o.verbose = verbose;
        o.plot = plot;
        const int got = cv_train(&spec, &o, d, NULL, &err);
        if (got < 0) rc = cli_fail(d, "%s", err.msg);
        else if (got == 1) rc = CLI_INTERRUPTED;
    }
    cv_model_spec_free(&spec);
    return rc;
}

/* eval and predict share: CHECKPOINT --data F.h5, load both, check they fit */
typedef struct {
    cv_net *net;
    cv_normalizer nz;
    cv_dataset ds;
} loaded;

static int load_for_inference(const cv_dist *d, const char *ckpt, const char *data, bool stream, cv_precision p,
                              loaded *l)
{
    cv_err err;
    memset(l, 0, sizeof *l);
    if (!(l->net = cv_checkpoint_load(ckpt, CV_MICRO_BATCH, &l->nz, &err)) || cv_net_fold_batchnorm(l->net, &err) < 0)
        return cli_fail(d, "%s", err.msg);
    cv_net_set_precision(l->net, p);
    if ((stream ? cv_dataset_open_stream : cv_dataset_load)(&l->ds, data, &err) ||
        cv_check_data(cv_net_spec(l->net), &l->ds, &err))
        return cli_fail(d, "%s", err.msg);
    if (l->nz.mode == CV_NORM_STANDARDIZE && l->nz.dim != cv_shape_size(l->ds.shape))
        return cli_fail(d, "%s: normaliser has %lld features, the data %lld", ckpt, (long long)l->nz.dim,
                        (long long)cv_shape_size(l->ds.shape));
    return 0;
}

/* What the ranks of eval must share (they make the same collectives, and the sum is of one
 * model): the checkpoint's model and weights, the data's shape and rows, the flags that add
 * passes. */
typedef struct {
    const loaded *l;
    bool timing, confusion;
} eval_run;

static void eval_settings(FILE *f, const void *arg)
{
    const eval_run *e = arg;
    cv_net *net = e->l->net; /* (cv_net_params takes no const) */
    cv_train_model_settings(f, cv_net_spec(net));
    const uint64_t w = cv_hash_bytes(CV_HASH_INIT, cv_net_params(net), sizeof(float) * (size_t)cv_net_param_count(net));
    cv_setting_value(f, "CHECKPOINT's weights", "%016llx", (unsigned long long)w);
    cv_train_data_setting(f, "--data", &e->l->ds);
    cv_setting_switch(f, "--timing", e->timing);
    cv_setting_switch(f, "--confusion", e->confusion);
}

static void free_loaded(loaded *l)
{
    cv_net_free(l->net);
    cv_normalizer_free(&l->nz);
    cv_dataset_free(&l->ds);
}

int cmd_eval(const cv_dist *d, int argc, char **argv)
{
    const char *data = NULL, *threads = NULL, *confusion_svg = NULL, *precision = NULL;
    bool stream = false, confusion = false, timing = false;
    const cli_flag flags[] = {
        {"data", "F.h5", "dataset to evaluate on (required)", &data, NULL},
        {"threads", "T", "OpenMP threads per rank", &threads, NULL},
        {"precision", "P", "fp32 (default) or bf16 products (needs AVX512_BF16)", &precision, NULL},
        {"stream", NULL, "read rows of /x from the file as needed", NULL, &stream},
        {"timing", NULL, "also print how long the evaluation pass took and its images/s (after loading the files and one untimed warm-up batch)",
         NULL, &timing},
        {"confusion", NULL, "also the confusion matrix and per-class precision, recall, F1 (classifiers)", NULL, &confusion},
        {"confusion-svg", "F.svg", "also write the confusion matrix as an SVG heat map (implies --confusion)", &confusion_svg, NULL},
    };
    const cli_command c = {"eval", "CHECKPOINT", "Prints the loss and metrics of CHECKPOINT on --data.",
                           flags, NFLAGS(flags), 1, 1};
    const char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!data) return cli_usage_fail(d, "eval: --data F.h5 is required");
    cv_precision prec = CV_PRECISION_FP32;
    if (cli_threads(threads) || cli_precision(precision, &prec)) return CLI_BAD_INPUT;
    const cv_path_role outs[] = {{"--confusion-svg", confusion_svg}}, ins[] = {{"CHECKPOINT", pos[0]}, {"--data", data}};
    if ((rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins)))) return rc;
    loaded l;
    int K;
    cv_err err;
    if ((rc = load_for_inference(d, pos[0], data, stream, prec, &l)) == 0 && (confusion || confusion_svg) &&
        cv_confusion_classes(cv_net_spec(l.net), &K, &err))
        rc = cli_fail(d, "%s: %s", pos[0], err.msg);
    rc = cli_startup_agree(d, rc);
    const eval_run run = {&l, timing, confusion || confusion_svg};
    if (rc == 0 && cv_dist_check_written(d, eval_settings, &run, "checkpoint's model", &err))
        rc = cli_fail(d, "%s", err.msg);
    if (rc == 0) {
        cv_metrics m;
        /* timed: the first batch once beforehand, untimed (threads started, buffers faulted in),
         * as launch/compare-pytorch gives PyTorch's eval warm-up batches; its sums are dropped */
        const int64_t warm = l.ds.n < CV_MICRO_BATCH ? l.ds.n : CV_MICRO_BATCH;
        const bool warm_failed = timing && cv_evaluate(l.net, &l.ds, &l.nz, NULL, warm, d, &m, &err);
        const double t0 = cv_now();
        if (warm_failed || cv_evaluate(l.net, &l.ds, &l.nz, NULL, l.ds.n, d, &m, &err)) {
            rc = cli_fail(d, "%s", err.msg);
        } else if (d->rank == 0) {
            const double secs = cv_now() - t0;
            char line[384];
            cv_metrics_format(cv_net_spec(l.net), &m, "", line, sizeof line);
            printf("%s  (%lld samples)\n", line, (long long)m.count);
            if (timing) /* batches made from the loaded rows, forward passes, metrics, their sum over ranks */
                printf("eval time %.4f s, %.0f images/s (%d rank%s)\n", secs, secs > 0 ? (double)m.count / secs : 0.0,
                       d->size, d->size > 1 ? "s" : "");
        }
        if (rc == 0 && (confusion || confusion_svg)) rc = cli_confusion(d, pos[0], l.net, &l.ds, &l.nz, confusion_svg);
    }
    free_loaded(&l);
    return rc;
}

static bool is_hdf5(const char *path)
{
    cv_err err;
    if (cv_require_regular(path, &err)) return false; /* the model-file read says why */
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    bool yes = f && fread(sig, 1, 8, f) == 8 && memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
    if (f) fclose(f);
    return yes;
}

int cmd_summary(const cv_dist *d, int argc, char **argv)
{
    const cli_command c = {"summary", "MODEL|CHECKPOINT",
                           "Prints each layer's output shape and parameter count (Keras-style).", NULL, 0, 1, 1};
    const char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    cv_model_spec spec;
    cv_err err;
    const bool ckpt = is_hdf5(pos[0]);
    cv_data_info info = {0};
    rc = ckpt ? cv_checkpoint_spec(pos[0], &spec, &err) || cv_checkpoint_data_info(pos[0], &info, &err)
              : cv_model_load(&spec, pos[0], &err);
    if (rc) return cli_fail(d, "%s", err.msg);
    if (d->rank == 0) {
        cv_model_summary(&spec, stdout);
        if (info.n_classes) { /* what the checkpoint keeps of its training data */
            printf("Classes (%d):", info.n_classes);
            for (int i = 0; i < info.n_classes; i++) printf("%s %d %s", i ? "," : "", i, info.class_names[i]);
            putchar('\n');
        }
        if (info.image_h)
            printf("Images: %dx%dx%d, resized by %s\n", info.image_h, info.image_w, info.image_c, info.image_filter);
    }
    cv_data_info_free(&info);
    cv_model_spec_free(&spec);
    return CLI_OK;
}

