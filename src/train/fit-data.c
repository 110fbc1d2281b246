/* What the fit loop reads and writes besides checkpoints (train/fit-impl.h): the training and
 * validation rows (a separate file, or a seeded split), the settings every rank must agree on
 * (checked by cv_dist_check_settings), and the --log CSV file. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* " key=value" with the fewest digits that read back as the same float */
static void put_f(FILE *f, const char *key, float v)
{
    char s[32] = "";
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, (double)v);
        if (strtof(s, NULL) == v) break;
    }
    fprintf(f, " %s=%s", key, s);
}

typedef struct {
    const char *key;
    float v;
} named_float;

static void put_fs(FILE *f, const named_float *kv, int n)
{
    for (int i = 0; i < n; i++) put_f(f, kv[i].key, kv[i].v);
}
#define PUT_FS(f, ...) put_fs(f, (const named_float[]){__VA_ARGS__}, \
                              (int)(sizeof((const named_float[]){__VA_ARGS__}) / sizeof(named_float)))

void cv_train_model_settings(FILE *f, const cv_model_spec *spec)
{
    cv_setting_model(f, "layers");
    fprintf(f, "%d\n", spec->n_layers);
    for (int i = 0; i < spec->n_layers; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer %d", i + 1);
        cv_setting_model(f, name);
        cv_layer_write_line(f, &spec->layers[i]);
    }
    const cv_optim_config *c = &spec->optim;
    cv_setting_model(f, "compile");
    fprintf(f, "compile optimizer=%s variant=%d", cv_optim_name(c->kind), (int)c->variant);
    PUT_FS(f, {"learning_rate", c->lr}, {"momentum", c->momentum}, {"rho", c->rho}, {"beta_1", c->beta1},
           {"beta_2", c->beta2}, {"epsilon", c->epsilon}, {"initial_accumulator_value", c->initial_accumulator});
    fprintf(f, " loss=%s", cv_loss_name(spec->loss.kind));
    put_f(f, "delta", spec->loss.huber_delta);
    fprintf(f, " from_logits=%d metrics=%u\n", spec->loss.from_logits, spec->loss.metrics);
    const cv_fit_config *t = &spec->fit;
    cv_setting_model(f, "fit");
    fprintf(f, "fit epochs=%d batch_size=%d seed=%llu shuffle=%d", t->epochs, t->batch_size,
            (unsigned long long)t->seed, t->shuffle);
    put_f(f, "validation_split", t->validation_split);
    fprintf(f, " precision=%s", cv_precision_name(t->precision));
    fprintf(f, " class_weight=%s", t->class_weight_balanced ? "balanced" : t->n_class_weight ? "" : "none");
    for (int k = 0; !t->class_weight_balanced && k < t->n_class_weight; k++)
        fprintf(f, "%s%.9g", k ? "," : "", (double)t->class_weight[k]);
    const cv_callbacks_config *b = &spec->callbacks;
    fprintf(f, " lr_schedule=%s", cv_sched_name(b->schedule));
    put_f(f, "decay_rate", b->decay_rate);
    fprintf(f, " decay_steps=%lld drop_every=%d", (long long)b->decay_steps, b->drop_every);
    put_f(f, "cosine_alpha", b->cosine_alpha);
    fprintf(f, " warmup_steps=%lld monitor=%s early_stopping_patience=%d", (long long)b->warmup_steps, b->monitor,
            b->es_patience);
    put_f(f, "min_delta", b->es_min_delta);
    fprintf(f, " restore_best_weights=%d reduce_lr_patience=%d", b->restore_best, b->plateau_patience);
    PUT_FS(f, {"reduce_lr_factor", b->plateau_factor}, {"reduce_lr_min_delta", b->plateau_min_delta});
    fprintf(f, " reduce_lr_cooldown=%d", b->plateau_cooldown);
    put_f(f, "min_lr", b->min_lr);
    fprintf(f, " save_best_only=%d stop_on_nan=%d\n", b->save_best_only, b->stop_on_nan);
    const cv_augment_config *a = &spec->augment;
    cv_setting_model(f, "augment");
    fputs(spec->has_augment ? "augment" : "augment none\n", f);
    if (!spec->has_augment) return;
    PUT_FS(f, {"rotation_range", a->rotation_range}, {"width_shift_range", a->width_shift_range},
           {"height_shift_range", a->height_shift_range}, {"shear_range", a->shear_range}, {"zoom_lo", a->zoom_lo},
           {"zoom_hi", a->zoom_hi}, {"brightness_lo", a->brightness_lo}, {"brightness_hi", a->brightness_hi},
           {"noise_stddev", a->noise_stddev}, {"cval", a->cval});
    fprintf(f, " brightness=%d", (int)a->brightness);
    fprintf(f, " horizontal_flip=%d vertical_flip=%d fill_mode=%s\n", (int)a->horizontal_flip, (int)a->vertical_flip,
            cv_fill_mode_name(a->fill_mode));
}

void cv_train_data_setting(FILE *f, const char *name, const cv_dataset *ds)
{
    char shape[64];
    cv_shape_str(ds->shape, shape, sizeof shape);
    if (ds->has_labels)
        cv_setting_value(f, name, "%lld rows of %s %s, labels", (long long)ds->n, shape,
                         ds->xtype == CV_DTYPE_U8 ? "uint8" : "float32");
    else
        cv_setting_value(f, name, "%lld rows of %s %s, %d targets", (long long)ds->n, shape,
                         ds->xtype == CV_DTYPE_U8 ? "uint8" : "float32", ds->ydim);
}

void fit_run_settings(FILE *f, const void *arg)
{
    const trainer_settings *r = arg;
    const cv_model_spec *spec = r->spec;
    const cv_train_opts *o = r->o;
    const data_split *s = r->s;
    cv_train_model_settings(f, spec);
    cv_train_data_setting(f, "--data", &s->train);
    cv_setting_value(f, "training and validation rows", "%lld and %lld (%s)", (long long)s->n_train,
                     (long long)s->n_val, s->val_is_split ? "a split of --data" : s->has_val ? "--val" : "none");
    if (s->has_val && !s->val_is_split) cv_train_data_setting(f, "--val", &s->val);
    /* the flags that change the math or the collectives each step makes */
    cv_setting_switch(f, "--reproducible", o->reproducible);
    cv_setting_switch(f, "--stream", o->stream);
    if (o->bucket_bytes) cv_setting_value(f, "--allreduce", "bucketed --bucket-mb %lld", (long long)(o->bucket_bytes >> 20));
    else cv_setting_value(f, "--allreduce", "blocking");
    cv_setting_value(f, "--check-every", "%lld", (long long)o->check_every);
    cv_setting_switch(f, "--checkpoint", o->checkpoint != NULL);
    cv_setting_value(f, "--checkpoint-every", "%lld", (long long)o->checkpoint_every);
    cv_setting_switch(f, "--resume", o->resume != NULL);
    cv_setting_switch(f, "--init-from", o->init_from != NULL);
    cv_setting_switch(f, "--plot", o->plot != NULL);
}

/* Opens the log: a fresh run starts a new file; a resumed run keeps the header and the rows
 * of the epochs the checkpoint has done (later rows, from a run that went further before it
 * was killed, would be duplicated) and appends. Nothing here waits: only a regular file is
 * read back (a device or a pipe has no rows to keep, and a FIFO would block the read), and the
 * log opens without blocking (a FIFO no process reads is refused; one with a reader is written). */
FILE *fit_open_log(const char *path, bool resume, int64_t epochs_done, const cv_model_spec *spec, bool has_val,
                      cv_err *err)
{
    char *keep = NULL;
    size_t keep_len = 0;
    struct stat st;
    FILE *old = resume && stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "r") : NULL;
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
    /* bad input: a FIFO as --log, which fopen(path, "w") waited on for a reader forever */
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        const int e = errno;
        if (fd >= 0) close(fd);
        free(keep);
        cv_errf(err, "%s: cannot write the log (%s)", path,
                e == ENXIO ? "a FIFO that no process reads: writing would wait for one" : strerror(e));
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
