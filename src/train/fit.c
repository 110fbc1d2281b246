/* The fit loop. One global permutation per epoch from the seed; rank r takes its contiguous
 * slice of every global batch, walks it in micro-batches adding into one gradient buffer, and
 * the sum over ranks divided by the true batch size is the gradient every rank applies: the
 * math of a single process at any rank count (with --reproducible, the same bits: leaves and an
 * exact sum). */
#define _GNU_SOURCE /* open_memstream */
#include "convoy/train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/checkpoint.h"
#include "convoy/exactsum.h"
#include "convoy/plot.h"
#include "convoy/progress.h"
#include "convoy/rng.h"
#include "convoy/timer.h"
#include "train/prefetch.h"

/* Training and validation rows: a separate file, or a seeded shuffle split of the data. */
typedef struct {
    cv_dataset train, val;
    bool has_val, val_is_split;
    int64_t *order;          /* owns the index memory train_idx and val_idx point into */
    int64_t *train_idx, n_train, *val_idx, n_val;
} data_split;

static int load_data(data_split *s, const cv_model_spec *spec, const cv_train_opts *o, cv_err *err)
{
    memset(s, 0, sizeof *s);
    if (!o->data) return cv_errf(err, "train: no training data (use --data F.h5)");
    int (*open)(cv_dataset *, const char *, cv_err *) = o->stream ? cv_dataset_open_stream : cv_dataset_load;
    if (open(&s->train, o->data, err) || cv_check_data(spec, &s->train, err)) return -1;
    const int64_t N = s->train.n;
    int64_t *all = s->order = cv_malloc(sizeof(int64_t) * (size_t)N, "sample index", err);
    if (!all) return -1;
    if (o->val) {
        if (open(&s->val, o->val, err) || cv_check_data(spec, &s->val, err)) return -1;
        s->has_val = true;
        s->n_val = s->val.n;
        for (int64_t i = 0; i < N; i++) all[i] = i;
        s->train_idx = all;
        s->n_train = N;
    } else {
        /* never "the last rows": a seeded permutation picks the held-out fraction */
        s->n_val = (int64_t)llround(spec->fit.validation_split * (double)N);
        cv_permutation(all, N, cv_key(spec->fit.seed, CV_STREAM_SPLIT, 0, 0));
        s->val_idx = all;
        s->train_idx = all + s->n_val;
        s->n_train = N - s->n_val;
        s->has_val = s->val_is_split = s->n_val > 0;
    }
    if (s->n_train <= 0)
        return cv_errf(err, "%s: no training rows left after validation_split=%g", o->data,
                       spec->fit.validation_split);
    return 0;
}

static void free_data(data_split *s)
{
    free(s->order);
    cv_dataset_free(&s->train);
    cv_dataset_free(&s->val);
}

/* What every rank must agree on before training: the model as parsed (with CLI overrides),
 * the run configuration and the data's shape. */
static uint64_t run_hash(const cv_model_spec *spec, const cv_train_opts *o, const data_split *s)
{
    uint64_t h = CV_HASH_INIT;
    for (int i = 0; i < spec->n_layers; i++) {
        const cv_layer_spec *l = &spec->layers[i];
        const int64_t v[] = {l->kind, l->out.rank, l->out.d[0], l->out.d[1], l->out.d[2], l->normalize,
                             l->filters, l->kernel, l->stride, l->same, l->pad_nearest, l->pool,
                             l->units, l->act, l->init, l->use_bias, l->trainable};
        const float f[] = {l->rate, l->alpha};
        h = cv_hash_bytes(cv_hash_bytes(h, v, sizeof v), f, sizeof f);
    }
    const cv_optim_config *c = &spec->optim;
    const float of[] = {c->lr, c->momentum, c->rho, c->beta1, c->beta2, c->epsilon,
                        c->initial_accumulator, spec->loss.huber_delta, spec->fit.validation_split};
    const int64_t ov[] = {c->kind, c->variant, spec->loss.kind, spec->loss.metrics, spec->fit.epochs,
                          spec->fit.batch_size, (int64_t)spec->fit.seed, spec->fit.shuffle,
                          s->train.n, s->train.xtype, s->train.ydim, s->train.has_labels,
                          s->n_train, s->n_val, o->stream, o->check_every, o->bucket_bytes};
    h = cv_hash_bytes(cv_hash_bytes(h, of, sizeof of), ov, sizeof ov);
    const cv_augment_config *a = &spec->augment;
    const float af[] = {a->rotation_range, a->width_shift_range, a->height_shift_range, a->shear_range, a->zoom_lo,
                        a->zoom_hi, a->brightness_lo, a->brightness_hi, a->noise_stddev, a->cval,
                        (float)spec->has_augment, (float)a->horizontal_flip, (float)a->vertical_flip,
                        (float)a->brightness, (float)a->fill_mode};
    h = cv_hash_bytes(h, af, sizeof af);
    return cv_hash_bytes(h, &s->train.shape, sizeof s->train.shape);
}

/* Starts the bucketed allreduce from backward's per-layer notifications. */
typedef struct {
    cv_grad_sync *sync;
    bool armed;     /* only the last micro-batch of a step has final gradients */
    int failed;
    cv_err err;
} hook_ctx;

static void grads_ready(void *arg, int64_t off)
{
    hook_ctx *h = arg;
    if (h->armed && !h->failed && cv_grad_sync_ready(h->sync, off, &h->err)) h->failed = 1;
}

/* Opens the log: a fresh run starts a new file; a resumed run keeps the header and the rows
 * of the epochs the checkpoint has done (later rows, from a run that went further before it
 * was killed, would be duplicated) and appends. */
static FILE *open_log(const char *path, bool resume, int64_t epochs_done, const cv_model_spec *spec, bool has_val,
                      cv_err *err)
{
    char *keep = NULL;
    size_t keep_len = 0;
    FILE *old = resume ? fopen(path, "r") : NULL;
    if (old) {
        FILE *mem = open_memstream(&keep, &keep_len);
        char line[4096];
        bool first = true;
        while (mem && fgets(line, sizeof line, old)) {
            if (first || atoll(line) <= epochs_done) fputs(line, mem);
            first = false;
        }
        fclose(old);
        if (mem) fclose(mem);
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        free(keep);
        cv_errf(err, "%s: cannot write the log (%s)", path, strerror(errno));
        return NULL;
    }
    if (keep_len) {
        fwrite(keep, 1, keep_len, f);
    } else {
        fputs("epoch,lr", f);
        cv_metrics_csv(f, spec, &(cv_metrics){0}, "", true);
        if (has_val) cv_metrics_csv(f, spec, &(cv_metrics){0}, "val_", true);
        fputs(",seconds,images_per_s\n", f);
    }
    free(keep);
    fflush(f);
    return f;
}

/* One micro-batch of the epoch plan: positions [p, p + count) of the epoch's order. */
typedef struct {
    int64_t p;
    int count;
    bool leaf_first, leaf_last; /* --reproducible: it starts / ends a gradient leaf */
    int64_t leaf;   /* --reproducible: which leaf of its step */
    bool last;      /* the last of its step on this rank */
} micro;

/* The dataset rows of micro-batch m: the epoch's order perm picks positions among the training
 * rows train_idx. */
static void fill_ids(const micro *m, const int64_t *train_idx, const int64_t *perm, int64_t *ids)
{
    for (int i = 0; i < m->count; i++) ids[i] = train_idx[perm[m->p + i]];
}

/* Appends the micro-batches of positions [lo, hi) as one leaf (at least one entry, so an empty
 * slice still joins its step); returns the new count. */
static int64_t plan_leaf(micro *plan, int64_t *steps_of, int64_t n, int64_t step, int64_t leaf, int64_t lo,
                         int64_t hi, int mb)
{
    int64_t p = lo;
    const int64_t first = n;
    do {
        if (plan) {
            plan[n] = (micro){p, (int)(hi - p < mb ? hi - p : mb), n == first, p + mb >= hi, leaf, false};
            steps_of[n] = step;
        }
        n++;
        p += mb;
    } while (p < hi);
    return n;
}

/* --reproducible: each global batch of `count` samples is cut into leaves of at most
 * repro_leaf(B) samples (CV_REPRO_LEAF, more past CV_XSUM_MAX_TERMS leaves of it), sizes
 * differing by at most one: a cut that depends on the batch alone. Rank r computes leaves
 * [L r / P, L (r + 1) / P), each on its own, and adds each leaf's gradient into an exact sum
 * (convoy/exactsum.h), which the ranks then add up with integer MPI sums. Within a leaf every
 * kernel sums in a fixed order whatever the thread count, and the exact sum does not depend on
 * which rank added which leaf, so neither ranks nor threads change a bit. */
static int64_t repro_leaf(int64_t B)
{
    const int64_t spread = (B + CV_XSUM_MAX_TERMS - 1) / CV_XSUM_MAX_TERMS;
    return spread > CV_REPRO_LEAF ? spread : CV_REPRO_LEAF;
}

int64_t cv_repro_leaves(int64_t B, int64_t count) { return (count + repro_leaf(B) - 1) / repro_leaf(B); }

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

int cv_train(const cv_model_spec *spec, const cv_train_opts *o, const cv_dist *d,
             cv_epoch_stats *stats, cv_err *err)
{
    FILE *out = o->out ? o->out : stdout;
    const bool talk = d->rank == 0 && !o->quiet;
    const cv_fit_config fit = spec->fit;
    data_split s = {0};
    cv_normalizer nz = {0};
    cv_net *net = NULL;
    cv_optim opt = {0};
    cv_batch mem = {0};
    cv_prefetch pf = {0};
    int64_t *perm = NULL, *steps_of = NULL;
    micro *plan = NULL;
    float *best = NULL;
    cv_xsum leaf_sum = {0};
    double *leaf_parts = NULL; /* --reproducible: a step's leaves' metric sums (6 doubles each) */
    FILE *logf = NULL;
    cv_progress prog = {0};
    cv_history hist = {0};
    int rc = -1;

    if (spec->n_hp) {
        cv_errf(err, "%s:%d: %s= is a hyperparameter: search it with `convoy tune` (train takes values, e.g. "
                "the search's D/best.model)", spec->file, spec->hp[0].line, spec->hp[0].key);
        goto done;
    }
    /* data problems can hit one rank only (a file missing on one node): agree before going on */
    int failed = load_data(&s, spec, o, err) ||
                 cv_normalizer_fit(&nz, spec->layers[0].normalize, &s.train, s.train_idx, s.n_train, err);
    if (cv_dist_agree(d, failed, err)) goto done;
    if (cv_dist_check_same(d, run_hash(spec, o, &s), "model, configuration or data shape", err)) goto done;

    const int64_t B = fit.batch_size > 0 && fit.batch_size < s.n_train ? fit.batch_size : s.n_train;
    const int64_t leaf = repro_leaf(B);
    /* micro-batch size: from the local share, or (reproducible) the leaf size, so that no rank
     * count changes how a leaf is cut */
    const int64_t local_max = o->reproducible ? (B < leaf ? B : leaf) : (B + d->size - 1) / d->size;
    const int mb = (int)(local_max < CV_MICRO_BATCH ? local_max : CV_MICRO_BATCH);
    const int64_t steps = (s.n_train + B - 1) / B;
    failed = !(net = cv_net_create(spec, mb, fit.seed, err)) ||
             cv_optim_init(&opt, &spec->optim, cv_net_grad_count(net), err) ||
             !(perm = cv_malloc(sizeof(int64_t) * (size_t)s.n_train, "epoch order", err)) ||
             (s.train.streamed ? cv_prefetch_start(&pf, &s.train, &nz, mb, err)
                               : cv_batch_alloc(&mem, &s.train, mb, err));
    if (cv_dist_agree(d, failed, err)) goto done;
    /* every rank initialises identically from the seed; rank 0's copy is authoritative */
    if (cv_dist_bcast_f32(d, cv_net_params(net), cv_net_param_count(net), err)) goto done;

    /* the micro-batches this rank computes in one epoch: its slice of every global batch, or
     * with --reproducible its leaves of every global batch */
    int64_t nplan = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && (!(plan = cv_malloc(sizeof(micro) * (size_t)nplan, "epoch plan", err)) ||
                          !(steps_of = cv_malloc(sizeof(int64_t) * (size_t)nplan, "epoch plan", err))))
            goto done;
        nplan = 0;
        for (int64_t step = 0; step < steps; step++) {
            const int64_t start = step * B, count = s.n_train - start < B ? s.n_train - start : B;
            if (!o->reproducible) {
                int64_t lo, hi;
                cv_dist_slice(d, start, count, &lo, &hi);
                nplan = plan_leaf(pass ? plan : NULL, steps_of, nplan, step, 0, lo, hi, mb);
            } else {
                const int64_t L = cv_repro_leaves(B, count), j0 = L * d->rank / d->size, j1 = L * (d->rank + 1) / d->size;
                for (int64_t j = j0; j < j1; j++)
                    nplan = plan_leaf(pass ? plan : NULL, steps_of, nplan, step, j, start + count * j / L,
                                      start + count * (j + 1) / L, mb);
                if (j0 == j1) { /* more ranks than leaves: no leaf here, but the step's sum is joined */
                    if (pass) {
                        plan[nplan] = (micro){start, 0, false, false, 0, false};
                        steps_of[nplan] = step;
                    }
                    nplan++;
                }
            }
            if (pass) plan[nplan - 1].last = true;
        }
    }
    /* gradients, and so the allreduce, cover the trainable parameters only; with --reproducible
     * the leaves' metric sums are added in leaf order too (callbacks compare them) */
    failed = o->reproducible && (cv_xsum_init(&leaf_sum, cv_net_grad_count(net), err) ||
                                 !(leaf_parts = cv_calloc((size_t)cv_repro_leaves(B, B), 6 * sizeof(double),
                                                          "leaf metrics", err)));
    cv_grad_sync sync;
    int64_t layer_off[CV_MAX_LAYERS];
    const int ngrad_layers = cv_net_grad_layers(net, layer_off);
    cv_grad_sync_init(&sync, d, cv_net_grads(net), cv_net_grad_count(net), o->bucket_bytes, layer_off,
                      ngrad_layers);
    hook_ctx hook = {&sync, false, 0, {{0}}};
    if (d->size > 1 && o->bucket_bytes > 0 && !o->reproducible) cv_net_set_grad_hook(net, grads_ready, &hook);

    /* where the run starts: a fresh start, imported weights, or a checkpoint's exact state */
    const int64_t nparams = cv_net_param_count(net);
    const cv_callbacks_config *cb = &spec->callbacks;
    cv_train_state st = {.batch_size = B, .n_train = s.n_train, .seed = fit.seed};
    cv_callbacks_init(&st.cb, cb);
    int has_best = 0;
    if (cb->restore_best && !(best = cv_malloc(sizeof(float) * (size_t)nparams, "best weights", err))) failed = 1;
    if (!failed && spec->base.upto && !o->resume && d->rank == 0) failed = cv_checkpoint_load_base(net, err);
    if (!failed && o->init_from && d->rank == 0) failed = cv_checkpoint_init_from(o->init_from, net, err);
    if (!failed && o->resume) {
        cv_normalizer saved;
        failed = cv_checkpoint_resume(o->resume, net, &opt, &saved, &st, best, &has_best, err);
        if (!failed && (st.batch_size != B || st.n_train != s.n_train || st.seed != fit.seed))
            failed = cv_errf(err, "%s: saved by a run with batch %lld, %lld training rows and seed %llu; this run has "
                             "batch %lld, %lld rows and seed %llu (resume needs the same)", o->resume,
                             (long long)st.batch_size, (long long)st.n_train, (unsigned long long)st.seed,
                             (long long)B, (long long)s.n_train, (unsigned long long)fit.seed);
        if (!failed) { /* the checkpoint's normaliser is the one training used */
            cv_normalizer_free(&nz);
            nz = saved;
        } else {
            cv_normalizer_free(&saved);
        }
    }
    if (cv_dist_agree(d, failed, err)) goto done;
    if ((o->init_from || spec->base.upto) && cv_dist_bcast_f32(d, cv_net_params(net), nparams, err)) goto done;
    if (!o->resume && cv_dist_check_same(d, cv_hash_bytes(CV_HASH_INIT, cv_net_params(net), sizeof(float) * (size_t)nparams),
                                         "initial weights", err))
        goto done;
    if (o->resume && talk)
        fprintf(out, "resumed %s: epoch %lld, step %lld of %lld\n", o->resume, (long long)st.epoch + 1,
                (long long)st.step_in_epoch, (long long)steps);
    failed = o->log && d->rank == 0 && !(logf = open_log(o->log, o->resume, st.epoch, spec, s.has_val, err));
    if (cv_dist_agree(d, failed, err)) goto done;

    if (talk)
        fprintf(out, "train: %lld samples, %lld validation, batch %lld (%lld steps/epoch), %d rank%s%s, %s lr %g\n",
                (long long)s.n_train, (long long)s.n_val, (long long)B, (long long)steps, d->size,
                d->size > 1 ? "s" : "", s.train.streamed ? ", streamed" : "",
                cv_optim_name(spec->optim.kind), (double)spec->optim.lr);
    if (talk) fflush(out); /* logs and scripts see the start at once */
    cv_progress_init(&prog, out, talk, o->verbose, fit.epochs, steps, B, s.n_train);
    if (o->plot && d->rank == 0) { /* drawn at once (empty axes, or the resumed epochs): a bad path fails now */
        cv_history_seed(&hist, spec, s.has_val, o->resume ? o->log : NULL);
        failed = cv_plot_curves_svg(o->plot, &hist, 1, NULL, err);
    }
    if (o->plot && cv_dist_agree(d, failed, err)) goto done;

    const cv_augment_units aug_units = cv_augment_units_for(&nz, s.train.xtype);
    const int64_t total_steps = steps * fit.epochs;
    const char *save_path = o->checkpoint ? o->checkpoint : "convoy-interrupted.h5";
    bool stopping = st.cb.stop;
    for (int epoch = (int)st.epoch; epoch < fit.epochs && !stopping; epoch++) {
        const double t0 = cv_now();
        const int64_t first_step = epoch == st.epoch ? st.step_in_epoch : 0;
        /* metric sums so far this epoch: rank 0 carries the saved global sums, the others add theirs */
        cv_metrics tm = {0};
        if (first_step > 0 && (d->rank == 0 || o->reproducible)) /* --reproducible: every rank holds the sums */
            tm = (cv_metrics){st.train_sums[0], st.train_sums[1], st.train_sums[2], st.train_sums[3],
                              (int64_t)st.train_sums[4], (int64_t)st.train_sums[5]};
        if (fit.shuffle) cv_permutation(perm, s.n_train, cv_key(fit.seed, CV_STREAM_SHUFFLE, (uint64_t)epoch, 0));
        else for (int64_t i = 0; i < s.n_train; i++) perm[i] = i;
        int64_t k0 = 0;
        while (k0 < nplan && steps_of[k0] < first_step) k0++;
        cv_progress_epoch(&prog, epoch, first_step);

        if (s.train.streamed && k0 < nplan) {
            fill_ids(&plan[k0], s.train_idx, perm, pf.slot[k0 % 2].ids);
            cv_prefetch_request(&pf, (int)(k0 % 2), plan[k0].count);
        }
        double step_loss = 0.0;
        cv_metrics lm = {0};
        for (int64_t k = k0; k < nplan; k++) {
            const int64_t step = steps_of[k];
            const int64_t count = s.n_train - step * B < B ? s.n_train - step * B : B;
            cv_batch *b = &mem;
            if (k == k0 || steps_of[k - 1] != step) {
                if (!o->reproducible) cv_net_zero_grad(net); /* (a leaf clears them as it starts) */
                failed = 0;
                step_loss = tm.loss;
            }
            if (s.train.streamed) {
                if (k + 1 < nplan) { /* read the next micro-batch while this one computes */
                    fill_ids(&plan[k + 1], s.train_idx, perm, pf.slot[(k + 1) % 2].ids);
                    cv_prefetch_request(&pf, (int)((k + 1) % 2), plan[k + 1].count);
                }
                /* a read error (file changed under us) is kept until the step's end, where all
                 * ranks agree on it: no rank is left waiting in a collective */
                cv_batch *got = cv_prefetch_wait(&pf, (int)(k % 2), failed ? NULL : err);
                failed |= !got;
                b = got;
            } else {
                fill_ids(&plan[k], s.train_idx, perm, mem.ids);
                failed |= cv_batch_fill(&mem, &s.train, &nz, plan[k].count, err);
            }
            hook.armed = plan[k].last;
            cv_metrics *mt = o->reproducible ? &lm : &tm; /* a leaf's sums on their own */
            if (o->reproducible && plan[k].leaf_first) {
                cv_net_zero_grad(net);
                lm = (cv_metrics){0};
            }
            if (!failed && plan[k].count > 0 && spec->has_augment) /* training batches only */
                failed = cv_augment_batch(&spec->augment, b->x, b->count, (int)s.train.shape.d[0], (int)s.train.shape.d[1],
                                          (int)s.train.shape.d[2], b->ids, fit.seed, epoch, &aug_units, err);
            if (!failed && plan[k].count > 0) {
                cv_net_forward(net, b->x, b->count, true, fit.seed, epoch, b->ids);
                cv_net_metrics(net, b->labels, b->targets, b->count, mt);
                cv_net_backward(net, b->labels, b->targets, b->count, (double)count);
            }
            /* (cannot fail: a step has at most CV_XSUM_MAX_TERMS leaves) */
            if (o->reproducible && plan[k].leaf_last && !failed) {
                cv_xsum_add(&leaf_sum, cv_net_grads(net), err);
                cv_metrics_to(leaf_parts + 6 * plan[k].leaf, &lm);
            }
            if (!plan[k].last) continue;
            /* a failed read or augmentation on one rank: every rank stops here, none is left
             * waiting in the gradient sum */
            if (cv_dist_agree(d, failed, err)) goto done;
            if (hook.failed) {
                cv_errf(err, "%s", hook.err.msg);
                goto done;
            }
            if (o->reproducible) {
                if (cv_xsum_allreduce_take(&leaf_sum, d, cv_net_grads(net), err) ||
                    cv_metrics_add_parts(d, leaf_parts, cv_repro_leaves(B, count), &tm, err))
                    goto done;
            } else if (cv_grad_sync_finish(&sync, err)) {
                goto done;
            }
            /* stop-on-NaN and a termination signal, agreed by all ranks in one small reduction */
            const bool nan_here = cb->stop_on_nan && !isfinite(tm.loss - step_loss);
            double flags[2] = {o->stop_flag && *o->stop_flag ? 1.0 : 0.0, nan_here ? 1.0 : 0.0};
            if (d->size > 1 && cv_dist_sum_f64(d, flags, 2, err)) goto done;
            if (flags[1] > 0) { /* the lowest rank that saw it names the layer for everyone */
                const int layer = nan_here ? cv_net_first_nonfinite(net) : 0;
                if (nan_here && layer > 0)
                    cv_errf(err, "loss became NaN/Inf at epoch %d, step %lld: first non-finite values in layer %d, "
                            "%s (%s:%d); learning rate %g too high? The last checkpoint is kept", epoch + 1,
                            (long long)step + 1, layer, cv_layer_kind_name(spec->layers[layer].kind), spec->file,
                            spec->layers[layer].line, (double)opt.cfg.lr);
                else if (nan_here)
                    cv_errf(err, "loss became NaN/Inf at epoch %d, step %lld (learning rate %g too high?); the last "
                            "checkpoint is kept", epoch + 1, (long long)step + 1, (double)opt.cfg.lr);
                cv_dist_agree(d, nan_here, err);
                goto done;
            }
            opt.cfg.lr = cv_callbacks_lr(cb, &st.cb, spec->optim.lr, st.global_step, epoch, total_steps);
            cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net));
            st.global_step++;
            cv_progress_step(&prog, spec, step, &tm);
            const bool signalled = flags[0] > 0;
            const bool periodic = o->checkpoint && o->checkpoint_every > 0 && st.global_step % o->checkpoint_every == 0 &&
                                  step + 1 < steps;
            if (signalled || periodic) {
                cv_metrics all = tm;
                if (!o->reproducible && cv_metrics_sum_ranks(d, &all, err)) goto done;
                const double sums[6] = {all.loss, all.correct, all.abs_err, all.sq_err, (double)all.count, (double)all.values};
                memcpy(st.train_sums, sums, sizeof sums);
                st.epoch = epoch;
                st.step_in_epoch = step + 1;
                st.best_weights = has_best ? best : NULL;
                if (d->rank == 0 && cv_checkpoint_save_state(save_path, net, &nz, &opt, &st, err)) failed = 1;
                if (!failed && d->rank == 0) kill_after_save();
                if (cv_dist_agree(d, failed, err)) goto done;
                if (signalled) {
                    cv_progress_break(&prog);
                    if (d->rank == 0)
                        fprintf(out, "interrupted: stopped after step %lld of epoch %d and saved %s; continue with "
                                "the same command plus --resume %s\n", (long long)step + 1, epoch + 1, save_path, save_path);
                    rc = 1;
                    goto done;
                }
            }
            if (o->check_every > 0 && st.global_step % o->check_every == 0) {
                const uint64_t w = cv_hash_bytes(CV_HASH_INIT, cv_net_params(net), sizeof(float) * (size_t)nparams);
                char what[96];
                snprintf(what, sizeof what, "weights after step %lld (ranks diverged)", (long long)st.global_step);
                if (cv_dist_check_same(d, w, what, err)) goto done;
            }
        }
        if (!o->reproducible && cv_metrics_sum_ranks(d, &tm, err)) goto done;
        const double secs = cv_now() - t0;
        cv_metrics vm = {0};
        const double tv = cv_now();
        if (s.has_val &&
            cv_evaluate(net, s.val_is_split ? &s.train : &s.val, &nz, s.val_idx, s.n_val, d, &vm, err))
            goto done;
        const double comm = sync.seconds + leaf_sum.seconds;
        const cv_progress_detail detail = {opt.cfg.lr, secs, comm, cv_now() - tv};
        if (stats) stats[epoch] = (cv_epoch_stats){tm, vm, secs, (double)s.n_train / secs, comm};
        if (logf) {
            fprintf(logf, "%d,%.6g", epoch + 1, (double)opt.cfg.lr);
            cv_metrics_csv(logf, spec, &tm, "", false);
            if (s.has_val) cv_metrics_csv(logf, spec, &vm, "val_", false);
            fprintf(logf, ",%.3f,%.1f\n", secs, (double)s.n_train / secs);
            fflush(logf);
        }
        sync.seconds = leaf_sum.seconds = 0.0;
        cv_progress_end(&prog, spec, &tm, s.has_val ? &vm : NULL, secs, &detail);
        if (o->plot && d->rank == 0 &&
            (cv_history_add_epoch(&hist, spec, epoch + 1, opt.cfg.lr, &tm, &vm, secs, (double)s.n_train / secs, err) ||
             cv_plot_curves_svg(o->plot, &hist, 1, NULL, err)))
            failed = 1;
        if (o->plot && cv_dist_agree(d, failed, err)) goto done;

        /* callbacks see the epoch's monitored value; every rank holds the same value */
        const unsigned ev = cv_callbacks_epoch_end(cb, &st.cb, epoch, cv_metrics_value(cb->monitor, &tm, &vm, s.has_val), opt.cfg.lr);
        if ((ev & CV_CB_BEST) && best) {
            memcpy(best, cv_net_params(net), sizeof(float) * (size_t)nparams);
            has_best = 1;
        }
        if ((ev & CV_CB_LR_REDUCED) && talk)
            fprintf(out, "reduce-lr-on-plateau: learning rate now %g\n",
                    (double)cv_callbacks_lr(cb, &st.cb, spec->optim.lr, st.global_step, epoch, total_steps));
        stopping = st.cb.stop;
        if (stopping && best && has_best) { /* restore_best_weights */
            memcpy(cv_net_params(net), best, sizeof(float) * (size_t)nparams);
            if (talk) fprintf(out, "early stopping: restored the weights of epoch %d\n", st.cb.best_epoch);
        } else if (stopping && talk) {
            fprintf(out, "early stopping after epoch %d (best epoch %d)\n", epoch + 1, st.cb.best_epoch);
        }
        /* an epoch-end checkpoint: always, or only on improvement with save_best_only */
        if (o->checkpoint && (!cb->save_best_only || (ev & CV_CB_IMPROVED))) {
            st.epoch = epoch + 1;
            st.step_in_epoch = 0;
            st.best_weights = has_best ? best : NULL;
            failed = d->rank == 0 && cv_checkpoint_save_state(o->checkpoint, net, &nz, &opt, &st, err);
            if (!failed && d->rank == 0) kill_after_save();
            if (cv_dist_agree(d, failed, err)) goto done;
            if (talk && cb->save_best_only) fprintf(out, "saved %s (best %s so far)\n", o->checkpoint, cb->monitor);
        }
    }
    if (o->checkpoint && talk && !cb->save_best_only) fprintf(out, "saved %s\n", o->checkpoint);
    rc = 0;
done:
    cv_progress_break(&prog);
    cv_history_free(&hist);
    if (logf) fclose(logf);
    cv_xsum_free(&leaf_sum);
    free(leaf_parts);
    free(best);
    cv_prefetch_free(&pf);
    cv_batch_free(&mem);
    free(perm);
    free(plan);
    free(steps_of);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_normalizer_free(&nz);
    free_data(&s);
    return rc;
}
