/* The fit loop. One global permutation per epoch from the seed; rank r takes its contiguous
 * slice of every global batch, walks it in micro-batches adding into one gradient buffer, and
 * the sum over ranks divided by the true batch size is the gradient every rank applies: the
 * math of a single process at any rank count (with --reproducible, the same bits: leaves and an
 * exact sum). */
#include "convoy/train.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/callbacks.h"
#include "convoy/checkpoint.h"
#include "convoy/exactsum.h"
#include "convoy/files.h"
#include "convoy/history.h"
#include "convoy/plot.h"
#include "convoy/progress.h"
#include "convoy/rng.h"
#include "convoy/timer.h"
#include "train/fit-impl.h"
#include "train/prefetch.h"

/* Fault injection for the resume tests: CONVOY_KILL_AFTER_SAVE=N kills the process with
 * SIGKILL (no clean-up, as a node failure or the OOM killer would) right after its N-th
 * checkpoint save, counted over the process (a search's trials too), at a step the test
 * chooses instead of whenever a signal lands. */
static void kill_after_save(void)
{
    static int64_t saves; /* only rank 0 of a run saves, from the thread that trains */
    const char *e = getenv("CONVOY_KILL_AFTER_SAVE");
    if (e && *e && ++saves == atoll(e)) raise(SIGKILL);
}

/* Everything one run of cv_train holds: its inputs, the data, the network and the optimizer,
 * this rank's epoch plan, the gradient sums, the run's state (what a checkpoint saves) and its
 * outputs. The stages below fill and use it in order: set_up, restore, then per epoch
 * run_epoch (its steps, run_step) and end_epoch; tear_down frees it. */
typedef struct {
    const cv_model_spec *spec;
    const cv_train_opts *o;
    const cv_dist *d;
    cv_epoch_stats *stats;
    FILE *out;
    bool talk;               /* rank 0 prints */
    cv_fit_config fit;
    data_split s;
    cv_normalizer nz;
    cv_net *net;
    cv_optim opt;
    cv_batch mem;            /* in-memory data: the micro-batch being computed */
    cv_prefetch pf;          /* --stream: two micro-batches, one read while the other computes */
    cv_augment_units aug_units;
    int64_t B, steps, total_steps, nparams;
    int mb;                  /* samples per micro-batch, at most */
    micro *plan;             /* this rank's micro-batches of an epoch, in order ... */
    int64_t *steps_of, nplan; /* ... and the step each belongs to */
    int64_t *perm;           /* this epoch's order of the training rows */
    cv_grad_sync sync;
    hook_ctx hook;
    batch_sum_ctx bsum;      /* batchnorm's sums over the ranks */
    /* --reproducible with batchnorm: a rank's leaves of a step in one pass, each leaf's gradient
     * in its own buffer, the statistics summed by fit_leaf_sum */
    int max_leaves;          /* a rank's leaves in a step, at most */
    float **leaf_grads;      /* max_leaves buffers of cv_net_grad_count floats */
    int *leaf_rows;          /* max_leaves + 1 row offsets */
    leaf_sum_ctx lsum;
    bool batch_stats;        /* the model has layers that take batch statistics */
    cv_xsum leaf_sum;        /* --reproducible: the step's leaves' gradients, exactly */
    cv_metric_parts leaf_parts; /* --reproducible: the step's leaves' metric sums */
    cv_train_state st;
    float *best;             /* restore_best_weights: the best epoch's weights */
    int has_best;
    FILE *logf;
    cv_progress prog;
    cv_history hist;
    const char *save_path;   /* where a signal's or a --checkpoint-every save goes */
    cv_file_lock ckpt_lock;  /* rank 0: --checkpoint is this run's for as long as it runs */
    float class_w[CV_MAX_CLASS_WEIGHTS]; /* fit class_weight=: each class's loss weight */
} trainer;

/* fit class_weight=: the given weights (1 for classes not named), or "balanced": n / (K n_c)
 * over the training rows (the same on every rank: each holds all of them). */
static int class_weights(trainer *t, cv_err *err)
{
    const cv_fit_config *f = &t->spec->fit;
    const cv_dataset *ds = &t->s.train;
    if (!ds->has_labels)
        return cv_errf(err, "%s:%d: class_weight needs integer class labels in /y, and %s has float targets",
                       t->spec->file, f->class_weight_line, ds->path);
    const int K = cv_net_outputs(t->net) == 1 ? 2 : cv_net_outputs(t->net);
    if (K > CV_MAX_CLASS_WEIGHTS)
        return cv_errf(err, "%s:%d: class_weight takes models of up to %d classes, this one has %d", t->spec->file,
                       f->class_weight_line, CV_MAX_CLASS_WEIGHTS, K);
    for (int c = 0; c < CV_MAX_CLASS_WEIGHTS; c++) t->class_w[c] = c < f->n_class_weight ? f->class_weight[c] : 1.0f;
    if (f->class_weight_balanced) {
        int64_t count[CV_MAX_CLASS_WEIGHTS] = {0};
        for (int64_t i = 0; i < t->s.n_train; i++)
            if (ds->labels[t->s.train_idx[i]] < K) count[ds->labels[t->s.train_idx[i]]]++;
        for (int c = 0; c < K && c < CV_MAX_CLASS_WEIGHTS; c++)
            t->class_w[c] = count[c] ? (float)((double)t->s.n_train / ((double)K * (double)count[c])) : 1.0f;
    }
    return 0;
}

/* The epoch plan: the micro-batches this rank computes in one epoch, its slice of every global
 * batch or, with --reproducible, its leaves of every global batch (counted, then written). */
static int plan_epoch(trainer *t, cv_err *err)
{
    const cv_dist *d = t->d;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && (!(t->plan = cv_malloc(sizeof(micro) * (size_t)t->nplan, "epoch plan", err)) ||
                          !(t->steps_of = cv_malloc(sizeof(int64_t) * (size_t)t->nplan, "epoch plan", err))))
            return -1;
        micro *plan = pass ? t->plan : NULL;
        int64_t n = 0;
        for (int64_t step = 0; step < t->steps; step++) {
            const int64_t start = step * t->B, count = t->s.n_train - start < t->B ? t->s.n_train - start : t->B;
            if (!t->o->reproducible) {
                int64_t lo, hi;
                cv_dist_slice(d, start, count, &lo, &hi);
                n = fit_plan_leaf(plan, t->steps_of, n, step, 0, lo, hi, t->mb);
            } else {
                const int64_t L = cv_repro_leaves(t->B, count), j0 = L * d->rank / d->size, j1 = L * (d->rank + 1) / d->size;
                if (t->batch_stats && j0 < j1) /* batchnorm: the rank's leaves in one pass (run_step cuts it) */
                    n = fit_plan_leaf(plan, t->steps_of, n, step, j0, start + count * j0 / L, start + count * j1 / L, t->mb);
                for (int64_t j = j0; !t->batch_stats && j < j1; j++)
                    n = fit_plan_leaf(plan, t->steps_of, n, step, j, start + count * j / L, start + count * (j + 1) / L, t->mb);
                if (j0 == j1) { /* more ranks than leaves: no leaf here, but the step's sum is joined */
                    if (plan) {
                        plan[n] = (micro){start, 0, false, false, 0, false};
                        t->steps_of[n] = step;
                    }
                    n++;
                }
            }
            if (plan) plan[n - 1].last = true;
        }
        t->nplan = n;
    }
    return 0;
}

/* Set-up: the data (and its normaliser), the batch and micro-batch sizes, the network and the
 * optimizer, the epoch plan and the gradient sums. Every failure is agreed by all ranks. */
static int set_up(trainer *t, cv_err *err)
{
    const cv_model_spec *spec = t->spec;
    const cv_train_opts *o = t->o;
    const cv_dist *d = t->d;
    if (spec->n_hp)
        return cv_errf(err, "%s:%d: %s= is a hyperparameter: search it with `convoy tune` (train takes values, e.g. "
                       "the search's D/best.model)", spec->file, spec->hp[0].line, spec->hp[0].key);
    /* bad input: a --checkpoint another run is writing (two runs would replace each other's
     * saves); data problems can hit one rank only (a file missing on one node): agree before going on */
    int failed = (o->checkpoint && d->rank == 0 && cv_lock_output(o->checkpoint, "--checkpoint", &t->ckpt_lock, err)) ||
                 fit_load_data(&t->s, spec, o, err) ||
                 cv_normalizer_fit(&t->nz, spec->layers[0].normalize, &t->s.train, t->s.train_idx, t->s.n_train, err);
    if (cv_dist_agree(d, failed, err)) return -1;
    const trainer_settings run = {spec, o, &t->s};
    if (cv_dist_check_written(d, fit_run_settings, &run, "model file", err)) return -1;
    /* a val_ monitor without validation data would silently watch the training metric */
    const cv_callbacks_config *cb = &spec->callbacks;
    if (!t->s.has_val && strncmp(cb->monitor, "val_", 4) == 0 &&
        (cb->es_patience > 0 || cb->plateau_patience > 0 || cb->save_best_only || cb->restore_best))
        return cv_errf(err, "%s: the callbacks monitor %s but there is no validation data: give --val FILE or fit "
                       "validation_split=, or monitor %s", spec->file, cb->monitor, cb->monitor + 4);

    const int64_t n = t->s.n_train, B = t->fit.batch_size > 0 && t->fit.batch_size < n ? t->fit.batch_size : n;
    const int64_t leaf = fit_repro_leaf(B);
    t->batch_stats = fit_batch_layers(spec) > 0;
    /* micro-batch size: from the local share, or (reproducible) the leaf size, so that no rank
     * count changes how a leaf is cut; batch statistics need a rank's whole share in one pass
     * (reproducible: all its leaves of the step) */
    const int64_t Lmax = cv_repro_leaves(B, B);
    t->max_leaves = (int)((Lmax + d->size - 1) / d->size);
    const int64_t local_max = o->reproducible ? (t->batch_stats ? (int64_t)t->max_leaves * (B < leaf ? B : leaf)
                                                                 : (B < leaf ? B : leaf))
                                              : (B + d->size - 1) / d->size;
    t->B = B;
    if (t->batch_stats && local_max > INT_MAX / 2)
        return cv_errf(err, "%s: batch_size %lld is too large for batchnorm's one pass per rank", spec->file,
                       (long long)B);
    t->mb = (int)(local_max < CV_MICRO_BATCH || t->batch_stats ? local_max : CV_MICRO_BATCH);
    t->steps = (n + B - 1) / B;
    t->total_steps = t->steps * t->fit.epochs;
    failed = !(t->net = cv_net_create(spec, t->mb, t->fit.seed, err)) ||
             cv_optim_init(&t->opt, &spec->optim, cv_net_grad_count(t->net), err) ||
             !(t->perm = cv_malloc(sizeof(int64_t) * (size_t)n, "epoch order", err)) ||
             (t->s.train.streamed ? cv_prefetch_start(&t->pf, &t->s.train, &t->nz, t->mb, err)
                                  : cv_batch_alloc(&t->mem, &t->s.train, t->mb, err));
    if (!failed && spec->fit.class_weight_line) {
        failed = class_weights(t, err);
        for (int i = 0; !failed && i < (t->s.train.streamed ? 2 : 1); i++)
            failed = cv_batch_weigh(t->s.train.streamed ? &t->pf.slot[i] : &t->mem, t->class_w, t->mb, err);
    }
    if (cv_dist_agree(d, failed, err)) return -1;
    t->nparams = cv_net_param_count(t->net);
    /* every rank initialises identically from the seed; rank 0's copy is authoritative */
    if (cv_dist_bcast_f32(d, cv_net_params(t->net), t->nparams, err)) return -1;
    /* gradients, and so the allreduce, cover the trainable parameters only; with --reproducible
     * the leaves' metric sums are added in leaf order too (callbacks compare them) */
    failed = plan_epoch(t, err) ||
             (o->reproducible && (cv_xsum_init(&t->leaf_sum, cv_net_grad_count(t->net), err) ||
                                  cv_metric_parts_init(&t->leaf_parts, spec, cv_repro_leaves(B, B), err)));
    if (cv_dist_agree(d, failed, err)) return -1;
    int64_t layer_off[CV_MAX_LAYERS];
    const int ngrad_layers = cv_net_grad_layers(t->net, layer_off);
    cv_grad_sync_init(&t->sync, d, cv_net_grads(t->net), cv_net_grad_count(t->net), o->bucket_bytes, layer_off,
                      ngrad_layers);
    t->hook = (hook_ctx){&t->sync, false, 0, {{0}}};
    /* batchnorm's sums are collectives inside the passes: the gradient buckets wait for the
     * step's end, so every rank makes its collectives in the same order (an idle rank too) */
    if (d->size > 1 && o->bucket_bytes > 0 && !o->reproducible && !t->batch_stats)
        cv_net_set_grad_hook(t->net, fit_grads_ready, &t->hook);
    t->bsum = (batch_sum_ctx){d, 0, {{0}}};
    if (d->size > 1) cv_net_set_batch_sum(t->net, fit_batch_sum, &t->bsum);
    if (t->batch_stats && o->reproducible) { /* each leaf's rows on their own: no tiles */
        int64_t widest = 0;
        for (int i = 1; i < spec->n_layers; i++)
            if (cv_layer_kinds[spec->layers[i].kind]->flags & CV_KIND_BATCH) {
                const cv_shape s = spec->layers[i].in;
                const int64_t len = 2 * (int64_t)s.d[s.rank - 1] + 1;
                if (len > widest) widest = len;
            }
        t->lsum = (leaf_sum_ctx){d, 0, NULL, Lmax * widest, 0, {{0}}};
        failed = cv_net_set_tile(t->net, 0, err) ||
                 !(t->lsum.slots = cv_malloc(sizeof(double) * (size_t)(t->lsum.cap ? t->lsum.cap : 1), "batch sums", err)) ||
                 !(t->leaf_rows = cv_malloc(sizeof(int) * (size_t)(t->max_leaves + 1), "leaves", err)) ||
                 !(t->leaf_grads = cv_calloc((size_t)t->max_leaves, sizeof(float *), "leaf gradients", err));
        for (int j = 0; !failed && j < t->max_leaves; j++)
            failed = !(t->leaf_grads[j] = cv_malloc(sizeof(float) * (size_t)cv_net_grad_count(t->net), "leaf gradients", err));
        if (cv_dist_agree(d, failed, err)) return -1;
    }
    t->aug_units = cv_augment_units_for(&t->nz, t->s.train.xtype);
    t->save_path = o->checkpoint ? o->checkpoint : "convoy-interrupted.h5";
    return 0;
}

/* A resumed run whose checkpoint has all its epochs done, or whose early stopping fired. */
static bool nothing_to_do(const trainer *t)
{
    return t->o->resume && (t->st.epoch >= t->fit.epochs || t->st.cb.stop);
}

/* Where the run starts: a fresh start, a base model's layers, imported weights (--init-from)
 * or a checkpoint's exact state (--resume); then the log, the start line, the progress display
 * and the plot. */
static int restore(trainer *t, cv_err *err)
{
    const cv_model_spec *spec = t->spec;
    const cv_train_opts *o = t->o;
    const cv_dist *d = t->d;
    const cv_callbacks_config *cb = &spec->callbacks;
    t->st = (cv_train_state){.batch_size = t->B, .n_train = t->s.n_train, .seed = t->fit.seed,
                             .data = cv_data_info_of(&t->s.train)};
    cv_callbacks_init(&t->st.cb, cb);
    int failed = cb->restore_best && !(t->best = cv_malloc(sizeof(float) * (size_t)t->nparams, "best weights", err));
    if (!failed && spec->base.upto && !o->resume && d->rank == 0) failed = cv_checkpoint_load_base(t->net, err);
    if (!failed && o->init_from && d->rank == 0) failed = cv_checkpoint_init_from(o->init_from, t->net, err);
    if (!failed && o->init_weights && o->n_init_weights != t->nparams)
        failed = cv_errf(err, "train: %lld initial weights given, the model has %lld", (long long)o->n_init_weights,
                         (long long)t->nparams);
    else if (!failed && o->init_weights)
        memcpy(cv_net_params(t->net), o->init_weights, sizeof(float) * (size_t)t->nparams);
    if (!failed && o->resume) {
        cv_normalizer saved;
        cv_train_state *st = &t->st;
        failed = cv_checkpoint_resume(o->resume, t->net, &t->opt, &saved, st, t->best, &t->has_best, err);
        if (!failed && (st->batch_size != t->B || st->n_train != t->s.n_train || st->seed != t->fit.seed))
            failed = cv_errf(err, "%s: saved by a run with batch %lld, %lld training rows and seed %llu; this run has "
                             "batch %lld, %lld rows and seed %llu (resume needs the same)", o->resume,
                             (long long)st->batch_size, (long long)st->n_train, (unsigned long long)st->seed,
                             (long long)t->B, (long long)t->s.n_train, (unsigned long long)t->fit.seed);
        if (!failed) { /* the checkpoint's normaliser is the one training used */
            cv_normalizer_free(&t->nz);
            t->nz = saved;
        } else {
            cv_normalizer_free(&saved);
        }
    }
    if (cv_dist_agree(d, failed, err)) return -1;
    float *params = cv_net_params(t->net);
    if ((o->init_from || o->init_weights || spec->base.upto) && cv_dist_bcast_f32(d, params, t->nparams, err))
        return -1;
    if (!o->resume && cv_dist_check_same(d, cv_hash_bytes(CV_HASH_INIT, params, sizeof(float) * (size_t)t->nparams),
                                         "initial weights", err))
        return -1;
    /* bad input: --epochs at or below the checkpoint's epochs, or a run early stopping ended:
     * nothing to train and nothing written (no log, no plot, no checkpoint), said so even under
     * --quiet (it is why nothing was written); exit 0 */
    if (nothing_to_do(t)) {
        if (d->rank != 0) return 0;
        if (t->st.cb.stop)
            fprintf(t->out, "nothing to do: %s's run stopped early (early stopping after epoch %lld); nothing "
                    "trained, nothing written\n", o->resume, (long long)t->st.epoch);
        else
            fprintf(t->out, "nothing to do: %s has %lld epoch%s done and the run has %d (--epochs counts the "
                    "total); nothing trained, nothing written\n", o->resume, (long long)t->st.epoch,
                    t->st.epoch == 1 ? "" : "s", t->fit.epochs);
        return 0;
    }
    if (o->resume && t->talk)
        fprintf(t->out, "resumed %s: epoch %lld, step %lld of %lld\n", o->resume, (long long)t->st.epoch + 1,
                (long long)t->st.step_in_epoch, (long long)t->steps);
    failed = o->log && d->rank == 0 && !(t->logf = fit_open_log(o->log, o->resume, t->st.epoch, spec, t->s.has_val, err));
    if (cv_dist_agree(d, failed, err)) return -1;

    if (t->talk) {
        fprintf(t->out, "train: %lld samples, %lld validation, batch %lld (%lld steps/epoch), %d rank%s%s, %s lr %g\n",
                (long long)t->s.n_train, (long long)t->s.n_val, (long long)t->B, (long long)t->steps, d->size,
                d->size > 1 ? "s" : "", t->s.train.streamed ? ", streamed" : "", cv_optim_name(spec->optim.kind),
                (double)spec->optim.lr);
        fflush(t->out); /* logs and scripts see the start at once */
    }
    cv_progress_init(&t->prog, t->out, t->talk, o->verbose, t->fit.epochs, t->steps, t->B, t->s.n_train);
    if (t->fit.plain) t->prog.tty = false; /* fit verbose=2: one line per epoch, no bar */
    if (o->plot && d->rank == 0) { /* drawn at once (empty axes, or the resumed epochs): a bad path fails now */
        cv_history_seed(&t->hist, spec, t->s.has_val, o->resume ? o->log : NULL);
        failed = cv_plot_curves_svg(o->plot, &t->hist, 1, NULL, err);
    }
    return o->plot && cv_dist_agree(d, failed, err) ? -1 : 0;
}

/* The saved state of an interrupted epoch: its metric sums so far (every rank's), the position
 * after `step`. */
static int save_mid_epoch(trainer *t, const cv_metrics *tm, int epoch, int64_t step, cv_err *err)
{
    if (t->s.train.streamed) cv_prefetch_quiet(&t->pf); /* (HDF5 from one thread at a time) */
    cv_metrics all = *tm;
    if (!t->o->reproducible && cv_metrics_sum_ranks(t->d, t->spec, &all, err)) return -1;
    t->st.train_sums = all;
    t->st.epoch = epoch;
    t->st.step_in_epoch = step + 1;
    t->st.best_weights = t->has_best ? t->best : NULL;
    const int failed = t->d->rank == 0 && cv_checkpoint_save_state(t->save_path, t->net, &t->nz, &t->opt, &t->st, err);
    if (!failed && t->d->rank == 0) kill_after_save();
    return cv_dist_agree(t->d, failed, err);
}

/* --reproducible with batchnorm: the rank's leaves of the step (m, in b) in one pass, the
 * statistics summed leaf by leaf (fit_leaf_sum), each leaf's metric sums and gradient on its own into
 * the step's parts and exact sum: what a pass over each leaf alone would add, with the statistics
 * of the whole batch. A rank without samples (or whose batch failed) still takes its part in
 * the statistics' sums. Nonzero: failed. */
static int repro_batch_pass(trainer *t, const micro *m, const cv_batch *b, int failed, int64_t count, int epoch,
                            cv_err *err)
{
    const cv_dist *d = t->d;
    const int64_t L = cv_repro_leaves(t->B, count), j0 = L * d->rank / d->size, j1 = L * (d->rank + 1) / d->size;
    const int nl = failed || m->count == 0 ? 0 : (int)(j1 - j0);
    for (int j = 0; j <= nl; j++) t->leaf_rows[j] = (int)(count * (j0 + j) / L - count * j0 / L);
    t->lsum.L = L;
    cv_net_set_leaves(t->net, nl, t->leaf_rows, (int)j0, fit_leaf_sum, &t->lsum);
    if (!nl) {
        if (d->size > 1) cv_net_batch_idle(t->net);
        cv_net_set_leaves(t->net, 0, NULL, 0, NULL, NULL);
        return 0;
    }
    const int K = cv_net_outputs(t->net);
    cv_net_forward(t->net, b->x, b->count, true, t->fit.seed, epoch, b->ids);
    for (int j = 0; j < nl; j++) {
        const int r = t->leaf_rows[j], nb = t->leaf_rows[j + 1] - r;
        cv_metrics lm = {0};
        cv_net_metrics_rows(t->net, r, b->labels ? b->labels + r : NULL, b->targets ? b->targets + (size_t)r * K : NULL,
                            b->w ? b->w + r : NULL, nb, &lm);
        cv_metric_parts_put(&t->leaf_parts, j0 + j, &lm);
        memset(t->leaf_grads[j], 0, sizeof(float) * (size_t)cv_net_grad_count(t->net));
    }
    cv_net_backward_leaves(t->net, b->labels, b->targets, b->w, b->count, (double)count, t->leaf_grads);
    cv_net_set_leaves(t->net, 0, NULL, 0, NULL, NULL);
    int rc = 0;
    for (int j = 0; j < nl && !rc; j++) rc = cv_xsum_add(&t->leaf_sum, t->leaf_grads[j], err);
    return rc != 0;
}

/* One training step: the micro-batches of plan entries [*k, the step's last] (their forward and
 * backward passes adding into the gradients), the gradient sum over ranks, the checks all ranks
 * agree on (a failed read, a NaN loss, a termination signal), the optimizer step, and a
 * --checkpoint-every save. *k moves past the step. 0: go on; 1: stopped by a signal (saved);
 * -1: an error, in err. */
static int run_step(trainer *t, int epoch, int64_t *k, cv_metrics *tm, cv_err *err)
{
    const cv_model_spec *spec = t->spec;
    const cv_train_opts *o = t->o;
    const cv_dist *d = t->d;
    const cv_callbacks_config *cb = &spec->callbacks;
    const int64_t step = t->steps_of[*k];
    const int64_t count = t->s.n_train - step * t->B < t->B ? t->s.n_train - step * t->B : t->B;
    const double step_loss = tm->loss;
    cv_metrics lm = {0}; /* --reproducible: a leaf's sums on their own */
    cv_metrics *mt = o->reproducible ? &lm : tm;
    int failed = 0;
    if (!o->reproducible) cv_net_zero_grad(t->net); /* (a leaf clears them as it starts) */
    for (;; ++*k) {
        const micro *m = &t->plan[*k];
        cv_batch *b = &t->mem;
        if (t->s.train.streamed) {
            if (*k + 1 < t->nplan) { /* read the next micro-batch while this one computes */
                const int next = (int)((*k + 1) % 2);
                fit_fill_ids(&t->plan[*k + 1], t->s.train_idx, t->perm, t->pf.slot[next].ids);
                cv_prefetch_request(&t->pf, next, t->plan[*k + 1].count);
            }
            /* a read error (file changed under us) is kept until the step's end, where all
             * ranks agree on it: no rank is left waiting in a collective */
            b = cv_prefetch_wait(&t->pf, (int)(*k % 2), failed ? NULL : err);
            failed |= !b;
        } else {
            fit_fill_ids(m, t->s.train_idx, t->perm, t->mem.ids);
            failed |= cv_batch_fill(&t->mem, &t->s.train, &t->nz, m->count, err);
        }
        t->hook.armed = m->last;
        if (o->reproducible && m->leaf_first) {
            cv_net_zero_grad(t->net);
            lm = (cv_metrics){0};
        }
        if (!failed && m->count > 0 && spec->has_augment) /* training batches only */
            failed = cv_augment_batch(&spec->augment, b->x, b->count, (int)t->s.train.shape.d[0],
                                      (int)t->s.train.shape.d[1], (int)t->s.train.shape.d[2], b->ids, t->fit.seed,
                                      epoch, &t->aug_units, err);
        if (o->reproducible && t->batch_stats) {
            failed |= repro_batch_pass(t, m, b, failed, count, epoch, err);
        } else if (!failed && m->count > 0) {
            cv_net_forward(t->net, b->x, b->count, true, t->fit.seed, epoch, b->ids);
            cv_net_metrics_w(t->net, b->labels, b->targets, b->w, b->count, mt);
            cv_net_backward_w(t->net, b->labels, b->targets, b->w, b->count, (double)count);
        } else if (t->batch_stats && d->size > 1) { /* no samples here: still a part in the batch sums */
            cv_net_batch_idle(t->net);
        }
        /* (cannot fail: a step has at most CV_XSUM_MAX_TERMS leaves) */
        if (o->reproducible && !t->batch_stats && m->leaf_last && !failed) {
            cv_xsum_add(&t->leaf_sum, cv_net_grads(t->net), err);
            cv_metric_parts_put(&t->leaf_parts, m->leaf, &lm);
        }
        if (m->last) break;
    }
    ++*k;
    /* a failed read or augmentation on one rank: every rank stops here, none is left waiting in
     * the gradient sum */
    if (cv_dist_agree(d, failed, err)) return -1;
    if (t->hook.failed) return cv_errf(err, "%s", t->hook.err.msg);
    if (t->bsum.failed) return cv_errf(err, "%s", t->bsum.err.msg);
    if (t->lsum.failed) return cv_errf(err, "%s", t->lsum.err.msg);
    if (o->reproducible ? cv_xsum_allreduce_take(&t->leaf_sum, d, cv_net_grads(t->net), err) ||
                              cv_metrics_add_parts(d, &t->leaf_parts, cv_repro_leaves(t->B, count), tm, err)
                        : cv_grad_sync_finish(&t->sync, err))
        return -1;

    /* stop-on-NaN and a termination signal, agreed by all ranks in one small reduction */
    const bool nan_here = cb->stop_on_nan && !isfinite(tm->loss - step_loss);
    double flags[2] = {o->stop_flag && *o->stop_flag ? 1.0 : 0.0, nan_here ? 1.0 : 0.0};
    if (d->size > 1 && cv_dist_sum_f64(d, flags, 2, err)) return -1;
    if (flags[1] > 0) { /* the lowest rank that saw it names the layer for everyone */
        const int layer = nan_here ? cv_net_first_nonfinite(t->net) : 0;
        if (nan_here && layer > 0)
            cv_errf(err, "loss became NaN/Inf at epoch %d, step %lld: first non-finite values in layer %d, "
                    "%s (%s:%d); learning rate %g too high? The last checkpoint is kept", epoch + 1,
                    (long long)step + 1, layer, cv_layer_kind_name(spec->layers[layer].kind), spec->file,
                    spec->layers[layer].line, (double)t->opt.cfg.lr);
        else if (nan_here)
            cv_errf(err, "loss became NaN/Inf at epoch %d, step %lld (learning rate %g too high?); the last "
                    "checkpoint is kept", epoch + 1, (long long)step + 1, (double)t->opt.cfg.lr);
        cv_dist_agree(d, nan_here, err);
        return -1;
    }

    t->opt.cfg.lr = cv_callbacks_lr(cb, &t->st.cb, spec->optim.lr, t->st.global_step, epoch, t->total_steps);
    cv_optim_step(&t->opt, cv_net_params(t->net), cv_net_grads(t->net));
    t->st.global_step++;
    cv_progress_step(&t->prog, spec, step, tm);

    const bool signalled = flags[0] > 0;
    const bool periodic = o->checkpoint && o->checkpoint_every > 0 && t->st.global_step % o->checkpoint_every == 0 &&
                          step + 1 < t->steps;
    if ((signalled || periodic) && save_mid_epoch(t, tm, epoch, step, err)) return -1;
    if (signalled) {
        cv_progress_break(&t->prog);
        if (d->rank == 0 && o->private_checkpoint)
            fprintf(t->out, "interrupted: stopped after step %lld of epoch %d\n", (long long)step + 1, epoch + 1);
        else if (d->rank == 0)
            fprintf(t->out, "interrupted: stopped after step %lld of epoch %d and saved %s; continue with "
                    "the same command plus --resume %s\n", (long long)step + 1, epoch + 1, t->save_path, t->save_path);
        /* under mpirun the first rank to exit 75 ends the job: the line must be out by then */
        fflush(t->out);
        return 1;
    }
    if (o->check_every > 0 && t->st.global_step % o->check_every == 0) {
        const uint64_t w = cv_hash_bytes(CV_HASH_INIT, cv_net_params(t->net), sizeof(float) * (size_t)t->nparams);
        char what[96];
        snprintf(what, sizeof what, "weights after step %lld (ranks diverged)", (long long)t->st.global_step);
        if (cv_dist_check_same(d, w, what, err)) return -1;
    }
    return 0;
}

/* The caller's epoch-end callback (cv_train_opts.on_epoch_end) with the epoch's logs under
 * Keras's names; a stop asked on any rank stops every rank. */
static int call_epoch_end(const trainer *t, int epoch, const cv_metrics *tm, const cv_metrics *vm, bool *stopping,
                          cv_err *err)
{
    if (!t->o->on_epoch_end) return 0;
    const char *names[2 * CV_METRIC_LIST_MAX], *plain[CV_METRIC_LIST_MAX];
    char val_names[CV_METRIC_LIST_MAX][48];
    double values[2 * CV_METRIC_LIST_MAX];
    int n = cv_metric_list(t->spec, tm, names, values);
    if (t->s.has_val) {
        const int k = cv_metric_list(t->spec, vm, plain, values + n);
        for (int i = 0; i < k; i++) {
            snprintf(val_names[i], sizeof val_names[i], "val_%s", plain[i]);
            names[n + i] = val_names[i];
        }
        n += k;
    }
    double stop = t->o->on_epoch_end(t->o->epoch_ctx, epoch, n, names, values) ? 1.0 : 0.0;
    if (t->d->size > 1 && cv_dist_sum_f64(t->d, &stop, 1, err)) return -1;
    if (stop > 0) *stopping = true;
    return 0;
}

/* The end of an epoch: its metric sums over ranks, the validation pass, the log row, the
 * progress line and the plot, the callbacks (best weights, learning rate, early stopping) and
 * the epoch-end checkpoint. *stopping: early stopping ends the run. */
static int end_epoch(trainer *t, int epoch, cv_metrics *tm, double t0, bool *stopping, cv_err *err)
{
    if (t->s.train.streamed) cv_prefetch_quiet(&t->pf); /* (HDF5 from one thread at a time) */
    const cv_model_spec *spec = t->spec;
    const cv_train_opts *o = t->o;
    const cv_dist *d = t->d;
    const cv_callbacks_config *cb = &spec->callbacks;
    if (!o->reproducible && cv_metrics_sum_ranks(d, spec, tm, err)) return -1;
    const double secs = cv_now() - t0;
    cv_metrics vm = {0};
    const double tv = cv_now();
    if (t->s.has_val && cv_evaluate(t->net, t->s.val_is_split ? &t->s.train : &t->s.val, &t->nz, t->s.val_idx,
                                    t->s.n_val, d, &vm, err))
        return -1;
    const double comm = t->sync.seconds + t->leaf_sum.seconds, rate = (double)t->s.n_train / secs;
    const cv_progress_detail detail = {t->opt.cfg.lr, secs, comm, cv_now() - tv};
    if (t->stats) t->stats[epoch] = (cv_epoch_stats){*tm, vm, secs, rate, comm};
    if (t->logf) {
        fprintf(t->logf, "%d,%.6g", epoch + 1, (double)t->opt.cfg.lr);
        cv_metrics_csv(t->logf, spec, tm, "", false);
        if (t->s.has_val) cv_metrics_csv(t->logf, spec, &vm, "val_", false);
        fprintf(t->logf, ",%.3f,%.1f\n", secs, rate);
        fflush(t->logf);
    }
    t->sync.seconds = t->leaf_sum.seconds = 0.0;
    cv_progress_end(&t->prog, spec, tm, t->s.has_val ? &vm : NULL, secs, &detail);
    int failed = o->plot && d->rank == 0 &&
                 (cv_history_add_epoch(&t->hist, spec, epoch + 1, t->opt.cfg.lr, tm, &vm, secs, rate, err) ||
                  cv_plot_curves_svg(o->plot, &t->hist, 1, NULL, err));
    if (o->plot && cv_dist_agree(d, failed, err)) return -1;

    /* callbacks see the epoch's monitored value; every rank holds the same value */
    float *params = cv_net_params(t->net);
    const double monitored = cv_metrics_value(spec, cb->monitor, tm, &vm, t->s.has_val);
    const unsigned ev = cv_callbacks_epoch_end(cb, &t->st.cb, epoch, monitored, t->opt.cfg.lr);
    if ((ev & CV_CB_BEST) && t->best) {
        memcpy(t->best, params, sizeof(float) * (size_t)t->nparams);
        t->has_best = 1;
    }
    if ((ev & CV_CB_LR_REDUCED) && t->talk)
        fprintf(t->out, "reduce-lr-on-plateau: learning rate now %g\n",
                (double)cv_callbacks_lr(cb, &t->st.cb, spec->optim.lr, t->st.global_step, epoch, t->total_steps));
    *stopping = t->st.cb.stop;
    if (*stopping && t->best && t->has_best) { /* restore_best_weights */
        memcpy(params, t->best, sizeof(float) * (size_t)t->nparams);
        if (t->talk) fprintf(t->out, "early stopping: restored the weights of epoch %d\n", t->st.cb.best_epoch);
    } else if (*stopping && t->talk) {
        fprintf(t->out, "early stopping after epoch %d (best epoch %d)\n", epoch + 1, t->st.cb.best_epoch);
    }
    /* an epoch-end checkpoint: always, or only on improvement with save_best_only */
    if (o->checkpoint && (!cb->save_best_only || (ev & CV_CB_IMPROVED))) {
        t->st.epoch = epoch + 1;
        t->st.step_in_epoch = 0;
        t->st.best_weights = t->has_best ? t->best : NULL;
        failed = d->rank == 0 && cv_checkpoint_save_state(o->checkpoint, t->net, &t->nz, &t->opt, &t->st, err);
        if (!failed && d->rank == 0) kill_after_save();
        if (cv_dist_agree(d, failed, err)) return -1;
        if (t->talk && cb->save_best_only && !o->private_checkpoint)
            fprintf(t->out, "saved %s (best %s so far)\n", o->checkpoint, cb->monitor);
    }
    return call_epoch_end(t, epoch, tm, &vm, stopping, err);
}

/* One epoch: its order of the training rows, its steps from where the run stands (a resumed
 * epoch starts at the checkpoint's step, with its metric sums), then its end. 0, 1 (stopped by
 * a signal) or -1, as run_step. */
static int run_epoch(trainer *t, int epoch, bool *stopping, cv_err *err)
{
    const double t0 = cv_now();
    const int64_t first_step = epoch == t->st.epoch ? t->st.step_in_epoch : 0;
    /* metric sums so far this epoch: rank 0 carries the saved global sums, the others add theirs
     * (--reproducible: every rank holds the global sums) */
    cv_metrics tm = {0};
    if (first_step > 0 && (t->d->rank == 0 || t->o->reproducible)) tm = t->st.train_sums;
    if (t->fit.shuffle)
        cv_permutation(t->perm, t->s.n_train, cv_key(t->fit.seed, CV_STREAM_SHUFFLE, (uint64_t)epoch, 0));
    else
        for (int64_t i = 0; i < t->s.n_train; i++) t->perm[i] = i;
    int64_t k = 0;
    while (k < t->nplan && t->steps_of[k] < first_step) k++;
    cv_progress_epoch(&t->prog, epoch, first_step);
    if (t->s.train.streamed && k < t->nplan) { /* the first micro-batch's read */
        fit_fill_ids(&t->plan[k], t->s.train_idx, t->perm, t->pf.slot[k % 2].ids);
        cv_prefetch_request(&t->pf, (int)(k % 2), t->plan[k].count);
    }
    while (k < t->nplan) {
        const int rc = run_step(t, epoch, &k, &tm, err);
        if (rc) return rc;
    }
    return end_epoch(t, epoch, &tm, t0, stopping, err);
}

static void tear_down(trainer *t)
{
    cv_progress_break(&t->prog);
    cv_history_free(&t->hist);
    if (t->logf) fclose(t->logf);
    cv_xsum_free(&t->leaf_sum);
    cv_metric_parts_free(&t->leaf_parts);
    for (int j = 0; t->leaf_grads && j < t->max_leaves; j++) free(t->leaf_grads[j]);
    free(t->leaf_grads);
    free(t->leaf_rows);
    free(t->lsum.slots);
    free(t->best);
    cv_prefetch_free(&t->pf);
    cv_batch_free(&t->mem);
    free(t->perm);
    free(t->plan);
    free(t->steps_of);
    cv_optim_free(&t->opt);
    cv_net_free(t->net);
    cv_normalizer_free(&t->nz);
    fit_free_data(&t->s);
    cv_unlock_output(&t->ckpt_lock);
}

int cv_train(const cv_model_spec *spec, const cv_train_opts *o, const cv_dist *d, cv_epoch_stats *stats,
             cv_err *err)
{
    trainer t = {.spec = spec, .o = o, .d = d, .stats = stats, .out = o->out ? o->out : stdout,
                 .talk = d->rank == 0 && !o->quiet && (!spec->fit.silent || o->verbose), .fit = spec->fit};
    int rc = set_up(&t, err) || restore(&t, err) ? -1 : 0;
    const bool idle = rc == 0 && nothing_to_do(&t); /* said so by restore: no "saved" */
    bool stopping = rc == 0 && t.st.cb.stop;
    for (int epoch = (int)t.st.epoch; rc == 0 && epoch < t.fit.epochs && !stopping; epoch++)
        rc = run_epoch(&t, epoch, &stopping, err);
    if (rc == 0 && o->checkpoint && t.talk && !spec->callbacks.save_best_only && !idle && !o->private_checkpoint)
        fprintf(t.out, "saved %s\n", o->checkpoint);
    tear_down(&t);
    return rc;
}
