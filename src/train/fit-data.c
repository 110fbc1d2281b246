/* What the fit loop reads and writes besides checkpoints (train/fit-impl.h): the training and
 * validation rows (a separate file, or a seeded split), the hash of what every rank must agree
 * on, and the --log CSV file. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"
#include "train/fit-impl.h"

int fit_load_data(data_split *s, const cv_model_spec *spec, const cv_train_opts *o, cv_err *err)
{
    memset(s, 0, sizeof *s);
    if (!o->data && !o->train_set) return cv_errf(err, "train: no training data (use --data F.h5)");
    if ((o->train_set && o->train_set->streamed) || (o->val_set && o->val_set->streamed))
        return cv_errf(err, "train: in-memory sets (train_set, val_set) must not be streamed");
    int (*open)(cv_dataset *, const char *, cv_err *) = o->stream ? cv_dataset_open_stream : cv_dataset_load;
    /* an in-memory set is used as it is: a shallow copy marked borrowed, never freed here */
    if (o->train_set) s->train = *o->train_set, s->train.borrowed = true;
    if ((!o->train_set && open(&s->train, o->data, err)) || cv_check_data(spec, &s->train, err)) return -1;
    const int64_t N = s->train.n;
    int64_t *all = s->order = cv_malloc(sizeof(int64_t) * (size_t)N, "sample index", err);
    if (!all) return -1;
    if (o->val_set) s->val = *o->val_set, s->val.borrowed = true;
    if (o->val || o->val_set) {
        if ((!o->val_set && open(&s->val, o->val, err)) || cv_check_data(spec, &s->val, err)) return -1;
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
        return cv_errf(err, "%s: no training rows left after validation_split=%g", s->train.path,
                       spec->fit.validation_split);
    return 0;
}

void fit_free_data(data_split *s)
{
    free(s->order);
    cv_dataset_free(&s->train);
    cv_dataset_free(&s->val);
}

uint64_t fit_run_hash(const cv_model_spec *spec, const cv_train_opts *o, const data_split *s)
{
    uint64_t h = CV_HASH_INIT;
    for (int i = 0; i < spec->n_layers; i++) {
        const cv_layer_spec *l = &spec->layers[i];
        const int64_t v[] = {l->kind, l->out.rank, l->out.d[0], l->out.d[1], l->out.d[2], l->normalize,
                             l->filters, l->kernel[0], l->kernel[1], l->stride[0], l->stride[1], l->same,
                             l->pad[0], l->pad[1], l->pad[2], l->pad[3], l->pad_nearest, l->pool[0], l->pool[1],
                             l->units, l->act, l->init, l->use_bias, l->trainable};
        const float f[] = {l->rate, l->alpha, l->momentum, l->epsilon, (float)l->center, (float)l->scale};
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

/* Opens the log: a fresh run starts a new file; a resumed run keeps the header and the rows
 * of the epochs the checkpoint has done (later rows, from a run that went further before it
 * was killed, would be duplicated) and appends. */
FILE *fit_open_log(const char *path, bool resume, int64_t epochs_done, const cv_model_spec *spec, bool has_val,
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
