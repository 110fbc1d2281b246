/* The fit loop, evaluation and prediction. One global permutation per epoch from the seed;
 * rank r takes its contiguous slice of every global batch, walks it in micro-batches adding
 * into one gradient buffer, and the sum over ranks divided by the true batch size is the
 * gradient every rank applies: the math of a single process at any rank count. */
#include "convoy/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convoy/checkpoint.h"
#include "convoy/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void shape_str(cv_shape s, char *buf, size_t n)
{
    if (s.rank == 3) snprintf(buf, n, "(%d,%d,%d)", s.d[0], s.d[1], s.d[2]);
    else snprintf(buf, n, "(%d)", s.d[0]);
}

int cv_check_data(const cv_model_spec *spec, const cv_dataset *ds, cv_err *err)
{
    const cv_shape want = spec->layers[0].shape;
    const int K = (int)cv_shape_size(spec->layers[spec->n_layers - 1].out);
    const cv_loss_kind loss = spec->loss.kind;
    if (ds->shape.rank != want.rank || cv_shape_size(ds->shape) != cv_shape_size(want) ||
        (want.rank == 3 && memcmp(ds->shape.d, want.d, sizeof want.d) != 0)) {
        char a[48], b[48];
        shape_str(ds->shape, a, sizeof a);
        shape_str(want, b, sizeof b);
        return cv_errf(err, "%s:/x: samples are %s but the model's input is %s (%s:%d)", ds->path, a,
                       b, spec->file, spec->layers[0].line);
    }
    if (ds->has_labels) {
        if (K == 1 && loss != CV_LOSS_BINARY_CE && loss != CV_LOSS_MSE && loss != CV_LOSS_MAE &&
            loss != CV_LOSS_HUBER)
            return cv_errf(err, "%s:/y: integer labels need more than one output for %s", ds->path,
                           cv_loss_name(loss));
        /* binary: labels are 0/1; K-way: labels index the outputs */
        if (loss == CV_LOSS_BINARY_CE || K > 1)
            return cv_dataset_check_labels(ds, K == 1 ? 2 : K, err);
        return 0;
    }
    if (loss == CV_LOSS_SPARSE_CE)
        return cv_errf(err, "%s:/y: sparse_categorical_crossentropy needs integer labels, the file has float targets (%d per sample)",
                       ds->path, ds->ydim);
    if (ds->ydim != K)
        return cv_errf(err, "%s:/y: %d targets per sample but the model has %d outputs", ds->path,
                       ds->ydim, K);
    return 0;
}

void cv_metrics_format(const cv_model_spec *spec, const cv_metrics *m, const char *prefix,
                       char *buf, size_t size)
{
    const double n = m->count ? (double)m->count : 1.0, v = m->values ? (double)m->values : 1.0;
    int len = snprintf(buf, size, "%sloss %.4f", prefix, m->loss / n);
    const unsigned mm = spec->loss.metrics;
    if ((mm & CV_METRIC_ACCURACY) && len < (int)size)
        len += snprintf(buf + len, size - (size_t)len, "  %saccuracy %.4f", prefix, m->correct / n);
    if ((mm & CV_METRIC_MAE) && len < (int)size)
        len += snprintf(buf + len, size - (size_t)len, "  %smae %.4f", prefix, m->abs_err / v);
    if ((mm & CV_METRIC_MSE) && len < (int)size)
        snprintf(buf + len, size - (size_t)len, "  %smse %.4f", prefix, m->sq_err / v);
}

/* Scratch for one micro-batch: inputs, labels or targets, and global sample ids. */
typedef struct {
    float *x, *targets;
    int32_t *labels;
    int64_t *ids;
} batch_buf;

static int batch_alloc(batch_buf *b, const cv_dataset *ds, int mb, cv_err *err)
{
    memset(b, 0, sizeof *b);
    b->x = cv_malloc(sizeof(float) * (size_t)mb * (size_t)cv_shape_size(ds->shape), "batch", err);
    b->ids = cv_malloc(sizeof(int64_t) * (size_t)mb, "batch ids", err);
    if (ds->has_labels) b->labels = cv_malloc(sizeof(int32_t) * (size_t)mb, "batch labels", err);
    else b->targets = cv_malloc(sizeof(float) * (size_t)mb * (size_t)ds->ydim, "batch targets", err);
    return b->x && b->ids && (b->labels || b->targets) ? 0 : -1;
}

static void batch_free(batch_buf *b)
{
    free(b->x);
    free(b->targets);
    free(b->labels);
    free(b->ids);
}

static void batch_fill(batch_buf *b, const cv_dataset *ds, const cv_normalizer *nz, int64_t count)
{
    cv_dataset_gather(ds, nz, b->ids, count, b->x);
    cv_dataset_gather_y(ds, b->ids, count, b->labels, b->targets);
}

int cv_evaluate(cv_net *net, const cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx,
                int64_t count, const cv_dist *d, cv_metrics *m, cv_err *err)
{
    memset(m, 0, sizeof *m);
    const int mb = CV_MICRO_BATCH;
    batch_buf b;
    if (cv_net_reserve(net, mb, err) || batch_alloc(&b, ds, mb, err)) {
        batch_free(&b);
        return -1;
    }
    int64_t lo, hi;
    cv_dist_slice(d, 0, count, &lo, &hi);
    for (int64_t s = lo; s < hi; s += mb) {
        const int c = (int)(hi - s < mb ? hi - s : mb);
        for (int i = 0; i < c; i++) b.ids[i] = idx ? idx[s + i] : s + i;
        batch_fill(&b, ds, nz, c);
        cv_net_forward(net, b.x, c, false, 0, 0, b.ids);
        cv_net_metrics(net, b.labels, b.targets, c, m);
    }
    batch_free(&b);
    double sums[6] = {m->loss, m->correct, m->abs_err, m->sq_err, (double)m->count, (double)m->values};
    if (cv_dist_sum_f64(d, sums, 6, err)) return -1;
    *m = (cv_metrics){sums[0], sums[1], sums[2], sums[3], (int64_t)sums[4], (int64_t)sums[5]};
    return 0;
}

int cv_predict(cv_net *net, const cv_dataset *ds, const cv_normalizer *nz, float *out, cv_err *err)
{
    const int mb = CV_MICRO_BATCH, K = cv_net_outputs(net);
    batch_buf b;
    if (cv_net_reserve(net, mb, err) || batch_alloc(&b, ds, mb, err)) {
        batch_free(&b);
        return -1;
    }
    for (int64_t s = 0; s < ds->n; s += mb) {
        const int c = (int)(ds->n - s < mb ? ds->n - s : mb);
        for (int i = 0; i < c; i++) b.ids[i] = s + i;
        cv_dataset_gather(ds, nz, b.ids, c, b.x);
        const float *y = cv_net_forward(net, b.x, c, false, 0, 0, b.ids);
        memcpy(out + (size_t)s * K, y, sizeof(float) * (size_t)c * K);
    }
    batch_free(&b);
    return 0;
}

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
    if (cv_dataset_load(&s->train, o->data, err) || cv_check_data(spec, &s->train, err)) return -1;
    const int64_t N = s->train.n;
    int64_t *all = s->order = cv_malloc(sizeof(int64_t) * (size_t)N, "sample index", err);
    if (!all) return -1;
    if (o->val) {
        if (cv_dataset_load(&s->val, o->val, err) || cv_check_data(spec, &s->val, err)) return -1;
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
    batch_buf b = {0};
    int64_t *perm = NULL;
    int rc = -1;

    if (spec->has_augment) {
        cv_errf(err, "%s:%d: augment is parsed but not applied yet; remove the line to train",
                spec->file, spec->augment_line);
        goto done;
    }
    if (load_data(&s, spec, o, err)) goto done;
    if (cv_normalizer_fit(&nz, spec->layers[0].normalize, &s.train, s.train_idx, s.n_train, err))
        goto done;

    const int64_t B = fit.batch_size > 0 && fit.batch_size < s.n_train ? fit.batch_size : s.n_train;
    const int64_t local_max = (B + d->size - 1) / d->size;
    const int mb = (int)(local_max < CV_MICRO_BATCH ? local_max : CV_MICRO_BATCH);
    const int64_t steps = (s.n_train + B - 1) / B;
    if (!(net = cv_net_create(spec, mb, fit.seed, err))) goto done;
    /* every rank initialises identically from the seed; rank 0's copy is authoritative */
    if (cv_dist_bcast_f32(d, cv_net_params(net), cv_net_param_count(net), err)) goto done;
    if (cv_optim_init(&opt, &spec->optim, cv_net_param_count(net), err)) goto done;
    if (batch_alloc(&b, &s.train, mb, err)) goto done;
    if (!(perm = cv_malloc(sizeof(int64_t) * (size_t)s.n_train, "epoch order", err))) goto done;

    if (talk)
        fprintf(out, "train: %lld samples, %lld validation, batch %lld (%lld steps/epoch), %d rank%s, %s lr %g\n",
                (long long)s.n_train, (long long)s.n_val, (long long)B, (long long)steps, d->size,
                d->size > 1 ? "s" : "", cv_optim_name(spec->optim.kind), (double)spec->optim.lr);

    for (int epoch = 0; epoch < fit.epochs; epoch++) {
        const double t0 = now();
        cv_metrics tm = {0};
        if (fit.shuffle) cv_permutation(perm, s.n_train, cv_key(fit.seed, CV_STREAM_SHUFFLE, (uint64_t)epoch, 0));
        else for (int64_t i = 0; i < s.n_train; i++) perm[i] = i;

        for (int64_t step = 0; step < steps; step++) {
            const int64_t start = step * B, count = s.n_train - start < B ? s.n_train - start : B;
            int64_t lo, hi;
            cv_dist_slice(d, start, count, &lo, &hi);
            cv_net_zero_grad(net);
            for (int64_t p = lo; p < hi; p += mb) {
                const int c = (int)(hi - p < mb ? hi - p : mb);
                for (int i = 0; i < c; i++) b.ids[i] = s.train_idx[perm[p + i]];
                batch_fill(&b, &s.train, &nz, c);
                cv_net_forward(net, b.x, c, true, fit.seed, epoch, b.ids);
                cv_net_metrics(net, b.labels, b.targets, c, &tm);
                cv_net_backward(net, b.labels, b.targets, c, (double)count);
            }
            if (cv_dist_sum_f32(d, cv_net_grads(net), cv_net_param_count(net), err)) goto done;
            cv_optim_step(&opt, cv_net_params(net), cv_net_grads(net), cv_net_trainable(net));
        }
        double sums[6] = {tm.loss, tm.correct, tm.abs_err, tm.sq_err, (double)tm.count, (double)tm.values};
        if (cv_dist_sum_f64(d, sums, 6, err)) goto done;
        tm = (cv_metrics){sums[0], sums[1], sums[2], sums[3], (int64_t)sums[4], (int64_t)sums[5]};
        if (!isfinite(tm.loss)) {
            cv_errf(err, "training loss became %s in epoch %d (learning rate %g too high?)",
                    isnan(tm.loss) ? "NaN" : "infinite", epoch + 1, (double)spec->optim.lr);
            goto done;
        }
        const double secs = now() - t0;
        cv_metrics vm = {0};
        if (s.has_val &&
            cv_evaluate(net, s.val_is_split ? &s.train : &s.val, &nz, s.val_idx, s.n_val, d, &vm, err))
            goto done;
        if (stats) stats[epoch] = (cv_epoch_stats){tm, vm, secs, (double)s.n_train / secs};
        if (talk) {
            char tl[160], vl[160] = "";
            cv_metrics_format(spec, &tm, "", tl, sizeof tl);
            if (s.has_val) cv_metrics_format(spec, &vm, "val_", vl, sizeof vl);
            fprintf(out, "epoch %d/%d  %s  %s  %.1fs  %.0f img/s\n", epoch + 1, fit.epochs, tl, vl,
                    secs, (double)s.n_train / secs);
            fflush(out);
        }
    }
    if (o->checkpoint && d->rank == 0 &&
        cv_checkpoint_save(o->checkpoint, net, &nz, &opt, fit.epochs, err))
        goto done;
    if (o->checkpoint && talk) fprintf(out, "saved %s\n", o->checkpoint);
    rc = 0;
done:
    free(perm);
    batch_free(&b);
    cv_optim_free(&opt);
    cv_net_free(net);
    cv_normalizer_free(&nz);
    free_data(&s);
    return rc;
}
