/* The flat API for bindings (convoy/binding.h): models named by text or checkpoint, the
 * caller's arrays wrapped as datasets, and fit, evaluate, predict and save as the CLI's
 * train, eval and predict do them (cv_train, cv_evaluate, cv_predict, the checkpoint calls). */
#define _GNU_SOURCE /* open_memstream */
#include "convoy/binding.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "convoy/checkpoint.h"

static cv_dist world = {MPI_COMM_NULL, 0, 1};
static int we_initialised_mpi;

static int fail(char *err, const cv_err *e)
{
    if (err) snprintf(err, CV_ERR_MSG, "%s", e->msg);
    return -1;
}

int cv_bind_init(int mpi, int *rank, int *size, char *err)
{
    cv_err e;
    int up = 0;
    if (mpi && MPI_Initialized(&up) == MPI_SUCCESS && !up) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return fail(err, &(cv_err){"MPI_Init failed"});
        we_initialised_mpi = 1;
    }
    if (mpi && cv_dist_world(&world, &e)) return fail(err, &e);
    *rank = world.rank;
    *size = world.size;
    return 0;
}

void cv_bind_finalize(void)
{
    if (we_initialised_mpi) MPI_Finalize();
    we_initialised_mpi = 0;
}

void cv_bind_free(void *p) { free(p); }

/* The model: parsed from text, or the one a checkpoint holds. */
static int get_spec(cv_model_spec *spec, const char *text, const char *file, const char *checkpoint, cv_err *e)
{
    if (text) return cv_model_parse(spec, text, file ? file : "<model>", e);
    if (checkpoint) return cv_checkpoint_spec(checkpoint, spec, e);
    return cv_errf(e, "no model: give its text or a checkpoint");
}

/* Calls fn(tensor rank, dims, offset in the parameters, ctx) for each weight tensor in
 * Keras's order: kernel, bias, state parts, layer by layer. Returns the count. */
static int each_tensor(const cv_model_spec *spec, const cv_net *net,
                       void (*fn)(int rank, const int64_t *dims, int64_t off, void *ctx), void *ctx)
{
    int n = 0;
    for (int i = 1; i < spec->n_layers; i++) {
        const cv_layer_spec *l = &spec->layers[i];
        const cv_param_view v = cv_net_param_view(net, i);
        if (!v.kernel_n) continue;
        int64_t d[4];
        fn(cv_layer_kernel_dims(l, d), d, v.kernel_off, ctx), n++;
        if (v.bias_n) fn(1, &v.bias_n, v.bias_off, ctx), n++;
        const int parts = v.state_n ? cv_layer_kinds[l->kind]->n_state : 0;
        const int64_t each = parts ? v.state_n / parts : 0;
        for (int p = 0; p < parts; p++) fn(1, &each, v.state_off + p * each, ctx), n++;
    }
    return n;
}

typedef struct {
    int64_t *dims;
    int cap, n;
    int64_t params;
} shape_list;

static void note_shape(int rank, const int64_t *dims, int64_t off, void *ctx)
{
    (void)off;
    shape_list *s = ctx;
    int64_t size = 1;
    for (int i = 0; i < rank; i++) size *= dims[i];
    s->params += size;
    if (s->dims && s->n < s->cap) {
        int64_t *row = s->dims + 5 * s->n;
        row[0] = rank;
        for (int i = 0; i < 4; i++) row[1 + i] = i < rank ? dims[i] : 0;
    }
    s->n++;
}

/* The network of a model (its initial weights) or of a checkpoint (its weights and normaliser,
 * *has_nz set). */
static cv_net *get_net(const char *text, const char *file, const char *checkpoint, cv_normalizer *nz, bool *has_nz,
                       cv_err *e)
{
    memset(nz, 0, sizeof *nz);
    *has_nz = false;
    if (checkpoint) {
        cv_net *net = cv_checkpoint_load(checkpoint, CV_MICRO_BATCH, nz, e);
        *has_nz = net != NULL;
        return net;
    }
    cv_model_spec spec;
    if (get_spec(&spec, text, file, NULL, e)) return NULL;
    spec.fit.precision = CV_PRECISION_FP32; /* a training setting: inference runs fp32, as eval's */
    cv_net *net = cv_net_create(&spec, CV_MICRO_BATCH, spec.fit.seed, e);
    cv_model_spec_free(&spec);
    return net;
}

int cv_bind_describe(const char *text, const char *file, const char *checkpoint, int64_t *info, char **summary,
                     char *err)
{
    cv_err e;
    cv_model_spec spec;
    if (get_spec(&spec, text, file, checkpoint, &e)) return fail(err, &e);
    spec.fit.precision = CV_PRECISION_FP32; /* the layout, not a pass: on any CPU */
    cv_net *net = cv_net_create(&spec, 1, spec.fit.seed, &e);
    int rc = net ? 0 : -1;
    if (net) {
        const cv_shape in = spec.layers[0].shape;
        const int K = cv_net_outputs(net);
        const bool labels = spec.loss.kind == CV_LOSS_SPARSE_CE || (K == 1 && spec.loss.kind == CV_LOSS_BINARY_CE);
        shape_list s = {0};
        const int64_t v[CV_BIND_INFO_N] = {in.rank, in.d[0], in.rank == 3 ? in.d[1] : 0, in.rank == 3 ? in.d[2] : 0,
                                           K, labels, each_tensor(&spec, net, note_shape, &s), s.params,
                                           K == 1 ? 2 : K};
        memcpy(info, v, sizeof v);
        cv_net_free(net);
    }
    size_t len = 0;
    FILE *f = rc == 0 && summary ? open_memstream(summary, &len) : NULL;
    if (f) {
        cv_model_summary(&spec, f);
        fclose(f);
    } else if (rc == 0 && summary) {
        rc = cv_errf(&e, "out of memory for the summary");
    }
    cv_model_spec_free(&spec);
    return rc ? fail(err, &e) : 0;
}

int cv_bind_weight_shapes(const char *text, const char *file, const char *checkpoint, int64_t *dims, int cap,
                          char *err)
{
    cv_err e;
    cv_model_spec spec;
    if (get_spec(&spec, text, file, checkpoint, &e)) return fail(err, &e);
    spec.fit.precision = CV_PRECISION_FP32; /* the layout, not a pass: on any CPU */
    cv_net *net = cv_net_create(&spec, 1, spec.fit.seed, &e);
    shape_list s = {dims, cap, 0, 0};
    if (net) each_tensor(&spec, net, note_shape, &s);
    cv_net_free(net);
    cv_model_spec_free(&spec);
    return net ? s.n : fail(err, &e);
}

int cv_bind_get_weights(const char *text, const char *file, const char *checkpoint, float *out, int64_t n, char *err)
{
    cv_err e;
    cv_normalizer nz;
    bool has_nz;
    cv_net *net = get_net(text, file, checkpoint, &nz, &has_nz, &e);
    if (!net) return fail(err, &e);
    int rc = 0;
    if (n != cv_net_param_count(net))
        rc = cv_errf(&e, "get_weights: room for %lld floats, the model has %lld", (long long)n,
                     (long long)cv_net_param_count(net));
    else
        memcpy(out, cv_net_params(net), sizeof(float) * (size_t)n);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return rc ? fail(err, &e) : 0;
}

cv_dataset *cv_bind_dataset(const char *name, int64_t n, int rank, const int64_t *shape, int x_is_float, void *x,
                            int32_t *labels, float *targets, int ydim, char *err)
{
    cv_err e;
    cv_shape s = {rank, {0, 0, 0}};
    for (int i = 0; i < rank && i < 3; i++) {
        if (shape[i] < 1 || shape[i] > INT32_MAX) {
            cv_errf(&e, "%s:/x: dimension %d of a sample is %lld", name, i + 1, (long long)shape[i]);
            fail(err, &e);
            return NULL;
        }
        s.d[i] = (int)shape[i];
    }
    cv_dataset *ds = cv_malloc(sizeof *ds, "dataset", &e);
    if (ds && cv_dataset_wrap(ds, name, n, s, x_is_float ? CV_DTYPE_F32 : CV_DTYPE_U8, x, labels, targets, ydim, &e)) {
        free(ds);
        ds = NULL;
    }
    if (!ds) fail(err, &e);
    return ds;
}

void cv_bind_dataset_free(cv_dataset *ds)
{
    cv_dataset_free(ds);
    free(ds);
}

cv_dataset *cv_bind_dataset_file(const char *path, int with_y, char *err)
{
    cv_err e;
    cv_dataset *ds = cv_calloc(1, sizeof *ds, "dataset", &e);
    if (ds && (with_y ? cv_dataset_load(ds, path, &e) : cv_dataset_load_inputs(ds, path, &e))) {
        free(ds);
        ds = NULL;
    }
    if (!ds) fail(err, &e);
    return ds;
}

int64_t cv_bind_dataset_rows(const cv_dataset *ds) { return ds->n; }

int cv_bind_threads(int n)
{
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    if (n > 0) omp_set_num_threads(n);
    return before;
#else
    (void)n;
    return 1;
#endif
}

int cv_bind_model_text(const char *checkpoint, char **text, char *err)
{
    cv_err e;
    cv_model_spec spec;
    *text = NULL;
    if (cv_checkpoint_spec(checkpoint, &spec, &e)) return fail(err, &e);
    *text = strdup(spec.text ? spec.text : "");
    cv_model_spec_free(&spec);
    return *text ? 0 : fail(err, &(cv_err){"out of memory for the model text"});
}

/* Rank 0's file at path to every other rank's path (each process keeps its own copy of the
 * trained model: evaluate and predict run on every rank). Written whole, then renamed. */
static int share_file(const char *path, cv_err *e)
{
    void *bytes = NULL;
    int64_t n = 0;
    int failed = 0;
    if (world.rank == 0) {
        FILE *f = fopen(path, "rb");
        failed = !f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
                 !(bytes = malloc((size_t)(n ? n : 1))) || fread(bytes, 1, (size_t)n, f) != (size_t)n;
        if (f) fclose(f);
        if (failed) cv_errf(e, "%s: cannot read the trained checkpoint back", path);
    }
    if (cv_dist_agree(&world, failed, e) || cv_dist_bcast_bytes(&world, &bytes, &n, e)) {
        free(bytes);
        return -1;
    }
    if (world.rank != 0) {
        char tmp[CV_ERR_MSG];
        snprintf(tmp, sizeof tmp, "%s.part", path);
        FILE *f = fopen(tmp, "wb");
        failed = !f || fwrite(bytes, 1, (size_t)n, f) != (size_t)n;
        if (f && fclose(f)) failed = 1;
        if (failed || rename(tmp, path)) failed = cv_errf(e, "%s: cannot write rank %d's copy of the model", path,
                                                          world.rank) != 0;
    }
    free(bytes);
    return cv_dist_agree(&world, failed, e);
}

/* Ctrl-C during fit: the trainer's stop flag, checked after every step. */
static volatile sig_atomic_t stop_requested;
static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int cv_bind_fit(const char *text, const char *file, const cv_bind_fit_opts *fo, const cv_dataset *train,
                const cv_dataset *val, const char *checkpoint, int *interrupted, char *err)
{
    cv_err e;
    cv_model_spec spec;
    *interrupted = 0;
    if (get_spec(&spec, text, file, fo->init_from, &e)) return fail(err, &e);
    /* the CLI's overrides (--epochs, --batch-size, --seed, --validation-split), already checked */
    if (fo->epochs > 0) spec.fit.epochs = (int)fo->epochs;
    if (fo->batch_size >= 0) spec.fit.batch_size = (int)fo->batch_size;
    if (fo->seed >= 0) spec.fit.seed = (uint64_t)fo->seed;
    if (fo->validation_split >= 0) spec.fit.validation_split = (float)fo->validation_split;
    if (val || fo->val) spec.fit.validation_split = 0.0f;
    const cv_train_opts o = {.quiet = fo->verbose == 0, .verbose = fo->verbose >= 2, .check_every = 100,
                             .checkpoint = checkpoint, .init_from = fo->init_from, .stop_flag = &stop_requested,
                             .train_set = fo->data ? NULL : train, .val_set = fo->val ? NULL : val,
                             .data = fo->data, .val = fo->val, .on_epoch_end = fo->on_epoch_end,
                             .epoch_ctx = fo->epoch_ctx, .init_weights = fo->init_weights,
                             .n_init_weights = fo->n_init_weights, .private_checkpoint = true};
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old);
    fflush(stdout);
    const int rc = cv_train(&spec, &o, &world, NULL, &e);
    fflush(stdout);
    sigaction(SIGINT, &old, NULL);
    cv_model_spec_free(&spec);
    if (rc < 0 || (world.size > 1 && share_file(checkpoint, &e))) return fail(err, &e);
    *interrupted = rc == 1;
    return 0;
}

/* get_net for data: the normaliser fitted on ds when no checkpoint gave one, the weights
 * replaced when given, the data checked against the model. */
static cv_net *net_for(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                       cv_dataset *ds, cv_normalizer *nz, cv_err *e)
{
    bool has_nz;
    cv_net *net = get_net(text, file, checkpoint, nz, &has_nz, e);
    if (!net) return NULL;
    const cv_model_spec *spec = cv_net_spec(net);
    /* the data's errors name the model text's lines, not a checkpoint's copy of them */
    cv_model_spec own;
    const bool parsed = text && checkpoint && cv_model_parse(&own, text, file ? file : "<model>", NULL) == 0;
    int rc = cv_check_data(parsed ? &own : spec, ds, e);
    if (parsed) cv_model_spec_free(&own);
    if (rc == 0 && !has_nz) rc = cv_normalizer_fit(nz, spec->layers[0].normalize, ds, NULL, ds->n, e);
    if (rc == 0 && weights && n != cv_net_param_count(net))
        rc = cv_errf(e, "%lld weights given, the model has %lld", (long long)n, (long long)cv_net_param_count(net));
    else if (rc == 0 && weights)
        memcpy(cv_net_params(net), weights, sizeof(float) * (size_t)n);
    if (rc == 0) return net;
    cv_normalizer_free(nz);
    cv_net_free(net);
    return NULL;
}

int cv_bind_evaluate(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                     cv_dataset *ds, char *names, int cap, double *values, char *err)
{
    cv_err e;
    cv_normalizer nz;
    if (!ds->has_labels && ds->ydim == 0) return fail(err, &(cv_err){"evaluate needs y (labels or targets)"});
    cv_net *net = net_for(text, file, checkpoint, weights, n, ds, &nz, &e);
    if (!net) return fail(err, &e);
    cv_metrics m;
    int k = cv_evaluate(net, ds, &nz, NULL, ds->n, &world, &m, &e);
    if (k == 0) {
        const char *list[CV_METRIC_LIST_MAX];
        k = cv_metric_list(cv_net_spec(net), &m, list, values);
        int used = 0;
        names[0] = '\0';
        for (int i = 0; i < k && used < cap; i++)
            used += snprintf(names + used, (size_t)(cap - used), "%s%s", i ? "," : "", list[i]);
    }
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return k < 0 ? fail(err, &e) : k;
}

int cv_bind_predict(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                    cv_dataset *ds, float *out, char *err)
{
    cv_err e;
    cv_normalizer nz;
    cv_net *net = net_for(text, file, checkpoint, weights, n, ds, &nz, &e);
    if (!net) return fail(err, &e);
    const int rc = cv_predict(net, ds, &nz, out, &e);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return rc ? fail(err, &e) : 0;
}

int cv_bind_save(const char *text, const char *file, const char *checkpoint, const float *weights, int64_t n,
                 const char *out, char *err)
{
    cv_err e;
    cv_normalizer nz;
    bool has_nz;
    cv_net *net = get_net(text, file, checkpoint, &nz, &has_nz, &e);
    if (!net) return fail(err, &e);
    const cv_model_spec *spec = cv_net_spec(net);
    const cv_norm mode = spec->layers[0].normalize;
    int rc = 0;
    if (!has_nz && mode != CV_NORM_SCALE && mode != CV_NORM_NONE)
        rc = cv_errf(&e, "%s: the model was never trained, so how it normalises its input (normalize=%s) is not known "
                     "yet: fit it first, or give the input line normalize=scale or normalize=none", out,
                     cv_norm_name(mode));
    if (!has_nz) nz = (cv_normalizer){mode, cv_shape_size(spec->layers[0].shape), NULL, NULL};
    if (rc == 0 && weights && n != cv_net_param_count(net))
        rc = cv_errf(&e, "%lld weights given, the model has %lld", (long long)n, (long long)cv_net_param_count(net));
    else if (rc == 0 && weights)
        memcpy(cv_net_params(net), weights, sizeof(float) * (size_t)n);
    if (rc == 0 && world.rank == 0) rc = cv_checkpoint_save(out, net, &nz, NULL, 0, &e);
    cv_normalizer_free(&nz);
    cv_net_free(net);
    return rc ? fail(err, &e) : 0;
}
