/* The network built from a model spec: a plan of every tensor's size, then one allocation
 * each for parameters, gradients and activations, with layers holding views into them.
 * Forward runs each layer kind's linear part (cv_layer_kinds[]) and applies activations;
 * backward walks back, adding parameter gradients (so micro-batches and ranks accumulate for
 * free). The spatial trunk's sample tiles are net-tiles.c's; loss and metrics net-metrics.c's. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convoy/rng.h"
#include "convoy/timer.h"
#include "model/net-impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif


/* softmax and friends act along the last axis: channels, or features */
static int last_dim(cv_shape s) { return s.rank == 3 ? s.d[2] : s.d[0]; }

static void window_geometry(cv_layer *l)
{
    const cv_layer_spec *s = l->spec;
    cv_window *g = &l->win;
    g->H = s->in.d[0];
    g->W = s->in.d[1];
    g->C = s->in.d[2];
    g->OH = s->out.d[0];
    g->OW = s->out.d[1];
    cv_window_spec ws;
    l->kd->window(s, &ws);
    g->KH = ws.k[0];
    g->KW = ws.k[1];
    g->SH = ws.stride[0];
    g->SW = ws.stride[1];
    /* TensorFlow 'same': total padding split with the odd cell at the bottom/right; numeric
     * padding: its top and left (the bottom and right follow from the output size) */
    const int ph = (g->OH - 1) * g->SH + g->KH - g->H, pw = (g->OW - 1) * g->SW + g->KW - g->W;
    g->pad_top = ws.same ? (ph > 0 ? ph / 2 : 0) : ws.pad[0];
    g->pad_left = ws.same ? (pw > 0 ? pw / 2 : 0) : ws.pad[2];
}

/* a batch layer takes batch statistics when it learns (frozen, it runs as in inference) */
static bool batch_layer(const cv_net *net, int i)
{
    return cv_layer_batch_stats(net->layers[i].spec);
}

/* Keras initialisers; the normal ones are truncated at two standard deviations, with the
 * standard deviation corrected for the truncation as keras.initializers.VarianceScaling does. */
static void init_kernel(float *w, int64_t n, cv_init init, double fan_in, double fan_out, uint64_t key)
{
    cv_rng r = {key};
    const double trunc = 0.87962566103423978;
    double lim = 0.0, sd = 0.0;
    switch (init) {
    case CV_INIT_GLOROT_UNIFORM: lim = sqrt(6.0 / (fan_in + fan_out)); break;
    case CV_INIT_HE_UNIFORM: lim = sqrt(6.0 / fan_in); break;
    case CV_INIT_GLOROT_NORMAL: sd = sqrt(2.0 / (fan_in + fan_out)) / trunc; break;
    case CV_INIT_HE_NORMAL: sd = sqrt(2.0 / fan_in) / trunc; break;
    default: break;
    }
    for (int64_t i = 0; i < n; i++) {
        if (lim > 0.0) {
            w[i] = (float)((2.0 * ((double)(cv_rng_next(&r) >> 11) * 0x1.0p-53) - 1.0) * lim);
        } else if (sd > 0.0) {
            double z;
            do z = cv_rng_normal(&r);
            while (fabs(z) > 2.0);
            w[i] = (float)(z * sd);
        } else {
            w[i] = 0.0f;
        }
    }
}

/* The trainable layers' parameters come first (in layer order), then the frozen layers': the
 * gradient buffer, the optimizer state and the allreduce cover the trainable prefix only, and
 * a frozen layer has no gradient views at all (dw = db = NULL), so no kernel can spend work on
 * its weight gradient. */
static int plan_params(cv_net *net, uint64_t seed, cv_err *err)
{
    int64_t off = 0;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2) { /* the untrained state of every layer, last */
            for (int i = 1; i < net->n; i++) {
                cv_param_view *v = &net->views[i];
                v->state_n = cv_layer_state_count(net->layers[i].spec);
                v->state_off = off;
                off += v->state_n;
            }
            break;
        }
        for (int i = 1; i < net->n; i++) {
            const cv_layer_spec *s = net->layers[i].spec;
            cv_param_view *v = &net->views[i];
            if (s->trainable != (pass == 0)) continue;
            int64_t d[4];
            const int rank = cv_layer_kernel_dims(s, d);
            if (rank) {
                v->kernel_n = 1;
                for (int j = 0; j < rank; j++) v->kernel_n *= d[j];
                v->bias_n = net->layers[i].kd->bias_count ? net->layers[i].kd->bias_count(s) : 0;
            }
            v->kernel_off = off;
            v->bias_off = off + v->kernel_n;
            off += v->kernel_n + v->bias_n;
        }
        if (pass == 0) net->ntrain = off;
    }
    net->nparams = off;
    net->params = cv_calloc((size_t)(off ? off : 1), sizeof(float), "parameters", err);
    net->grads = cv_calloc((size_t)(net->ntrain ? net->ntrain : 1), sizeof(float), "gradients", err);
    if (!net->params || !net->grads) return -1;

    net->first_trainable = net->n;
    for (int i = net->n - 1; i >= 1; i--) {
        cv_layer *l = &net->layers[i];
        const cv_param_view *v = &net->views[i];
        if (!v->kernel_n) continue;
        const bool learns = l->spec->trainable;
        l->w = net->params + v->kernel_off;
        l->b = v->bias_n ? net->params + v->bias_off : NULL;
        l->dw = learns ? net->grads + v->kernel_off : NULL;
        l->db = learns && v->bias_n ? net->grads + v->bias_off : NULL;
        if (learns) net->first_trainable = i;
        const cv_layer_spec *s = l->spec;
        l->state = v->state_n ? net->params + v->state_off : NULL;
        if (l->kd->init) {
            l->kd->init(s, l->w, l->b, l->state);
            continue;
        }
        /* Keras's fans: the receptive field (every kernel dimension but the last two) times the
         * input or output dimension */
        int64_t d[4];
        const int rank = cv_layer_kernel_dims(s, d);
        double field = 1.0;
        for (int j = 0; j + 2 < rank; j++) field *= (double)d[j];
        const double fan_in = field * (double)d[rank - 2], fan_out = field * (double)d[rank - 1];
        init_kernel(l->w, v->kernel_n, s->init, fan_in, fan_out,
                    cv_key(seed, CV_STREAM_INIT, (uint64_t)i, 0));
    }
    /* A linear layer's bias right before a batchnorm that learns is subtracted again with the
     * batch mean: its gradient is exactly zero, and is kept so (computed, it would be float
     * rounding noise, which Adam's division by its own size would turn into steps of lr). */
    for (int i = 1; i + 1 < net->n; i++) {
        cv_layer *l = &net->layers[i];
        if (l->db && (l->kd->flags & CV_KIND_EPILOGUE) && cv_layer_act(l->spec) == CV_ACT_LINEAR &&
            batch_layer(net, i + 1))
            l->db = NULL;
    }
    return 0;
}


/* A flatten layer: NHWC memory is already (h, w, c) in order, so its output is the layer
 * below's (for the first layer: the input of each forward pass), not a copy (the forward copy
 * and the trunk's backward copy vanish). */
bool net_reshapes(const cv_net *net, int i)
{
    return i >= 1 && ((net->layers[i].kd->flags & CV_KIND_RESHAPE) || net->layers[i].folded ||
                      net->layers[i].fused_into_prev);
}

/* n floats rounded up to whole 64-byte lines: every tensor among the activations starts on a
 * line (the kernels' stream stores need it; no two tensors share one) */
static int64_t lines(int64_t n) { return (n + 15) / 16 * 16; }

int cv_net_reserve(cv_net *net, int max_batch, cv_err *err)
{
    if (max_batch <= net->max_batch) return 0;
    const int64_t B = max_batch;
    int64_t total = 0, nargs = 0, widest = 0, col = 0;
    for (int i = 1; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        if (!net_reshapes(net, i)) total += lines(B * l->out_size);
        if (l->kd->flags & CV_KIND_MASK) total += lines(B * l->out_size);
        if (l->kd->flags & CV_KIND_WINNERS) nargs += B * l->out_size;
        if (l->out_size > widest) widest = l->out_size;
        if (l->in_size > widest) widest = l->in_size;
        const int64_t c = l->kd->workspace ? l->kd->workspace(l, max_batch) : 0;
        if (c > col) col = c;
    }
    const int64_t K = cv_net_outputs(net);
    total += lines(B * K) + 2 * lines(B * widest) + lines(col);
    float *acts = aligned_alloc(64, sizeof(float) * (size_t)total); /* total: whole lines */
    if (!acts) cv_errf(err, "out of memory allocating %zu bytes for activations", sizeof(float) * (size_t)total);
    int32_t *args = cv_malloc(sizeof(int32_t) * (size_t)(nargs ? nargs : 1), "pooling indices", err);
    if (!acts || !args || net_reserve_tiles(net, B, err)) {
        free(acts);
        free(args);
        return -1;
    }
    free(net->acts);
    free(net->args);
    net->acts = acts;
    net->args = args;
    float *p = acts;
    int32_t *a = args;
    for (int i = 1; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        l->out = !net_reshapes(net, i) ? p : i > 1 ? net->layers[i - 1].out : NULL; /* layer 1: set by forward */
        if (!net_reshapes(net, i)) p += lines(B * l->out_size);
        l->mask = NULL;
        l->arg = NULL;
        if (l->kd->flags & CV_KIND_MASK) {
            l->mask = p;
            p += lines(B * l->out_size);
        }
        if (l->kd->flags & CV_KIND_WINNERS) {
            l->arg = a;
            a += B * l->out_size;
        }
    }
    net->logits = p;
    p += lines(B * K);
    net->dbuf[0] = p;
    p += lines(B * widest);
    net->dbuf[1] = p;
    p += lines(B * widest);
    net->ws.col = p;
    net->ws.col_cap = col;
    net->ws.col_layer = 0; /* a new buffer holds nothing reusable */
    net->max_batch = max_batch;
    return 0;
}

cv_net *cv_net_create(const cv_model_spec *spec, int max_batch, uint64_t seed, cv_err *err)
{
    cv_net *net = cv_calloc(1, sizeof *net, "network", err);
    if (!net) return NULL;
    net->spec = *spec;
    net->spec.text = NULL;
    if (spec->text && !(net->spec.text = strdup(spec->text))) {
        cv_errf(err, "out of memory copying the model text");
        free(net);
        return NULL;
    }
    net->n = spec->n_layers;
    for (int i = 0; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        l->spec = &net->spec.layers[i];
        l->kd = cv_layer_kinds[l->spec->kind];
        l->index = i;
        l->in_size = cv_shape_size(l->spec->in);
        l->out_size = cv_shape_size(l->spec->out);
        if (l->kd->window) window_geometry(l);
        if (l->spec->kind == CV_LAYER_END) l->partner = &net->layers[l->spec->block];
    }
    /* a pool right after a conv2d (or any window) may leave its last rows or columns out of
     * every window (a 2x2 pool over 11x11 reads 10x10): the output gradient is zero there */
    for (int i = 1; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        if (!l->kd->window) continue;
        l->grad_rows = l->win.OH;
        l->grad_cols = l->win.OW;
        if (i + 1 >= net->n || !(net->layers[i + 1].kd->flags & CV_KIND_POOL)) continue;
        const cv_window *p = &net->layers[i + 1].win;
        const int rows = (p->OH - 1) * p->SH - p->pad_top + p->KH;
        const int cols = (p->OW - 1) * p->SW - p->pad_left + p->KW;
        if (rows < l->grad_rows) l->grad_rows = rows;
        if (cols < l->grad_cols) l->grad_cols = cols;
    }
    net->fused = cv_loss_fused(spec->loss.kind);
    /* conv2d and dense apply ReLU-family activations in their kernels' epilogue, except on an
     * output layer whose logits the loss takes */
    for (int i = 1; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        const cv_act a = cv_layer_act(l->spec);
        l->act_fused = (l->kd->flags & (CV_KIND_EPILOGUE | CV_KIND_OWN_ACT)) &&
                       (a == CV_ACT_RELU || a == CV_ACT_LEAKY_RELU || a == CV_ACT_LINEAR) &&
                       !(i == net->n - 1 && net->fused);
    }
    /* a max/min pool after a ReLU-family layer applies that layer's activation derivative to
     * the winners it scatters to (everything else is zero either way) */
    for (int i = 2; i < net->n; i++) {
        cv_layer *l = &net->layers[i], *prev = &net->layers[i - 1];
        const cv_act a = cv_layer_act(prev->spec);
        if ((l->kd->flags & CV_KIND_WINNERS) &&
            (a == CV_ACT_RELU || a == CV_ACT_LEAKY_RELU)) {
            l->in_relu = prev->act_bwd_by_next = true;
            l->in_leak = a == CV_ACT_LEAKY_RELU ? prev->spec->alpha : 0.0f;
        }
    }
    /* a batchnorm or a residual block's end and the ReLU-family activation layer after it run as
     * one (not for the output layer; CONVOY_FUSE=0: apart) */
    const char *fuse = getenv("CONVOY_FUSE");
    const bool apart = fuse && strcmp(fuse, "0") == 0;
    for (int i = 1; !apart && i + 2 < net->n; i++) {
        cv_layer *l = &net->layers[i], *a = &net->layers[i + 1];
        if (!cv_bn_act_layers_fit(l, a) && !cv_end_act_layers_fit(l, a)) continue;
        l->relu_next = a->fused_into_prev = true;
        l->relu_leak = a->spec->act == CV_ACT_LEAKY_RELU ? a->spec->alpha : 0.0f;
        l->relu_zero = a->spec->act == CV_ACT_RELU;
    }
    /* a batchnorm whose output (through the activation it applies) only a Winograd conv2d, a
     * pool or a residual end reads leaves its normalisation to that layer: the conv and the pool
     * apply it in their copies of each sample, the end in its sum (training only: the same bits;
     * CONVOY_FUSE=0: apart) */
    for (int i = 1; !apart && i + 1 < net->n; i++) {
        cv_layer *l = &net->layers[i];
        const int c = i + (l->relu_next ? 2 : 1);
        if (c < net->n && cv_bn_map_layers_fit(l, &net->layers[c])) {
            l->map_next = true;
            net->layers[c].in_bn = l;
        }
    }
    /* a residual layer right after an end (no projection) and its ReLU leaves its backward sum to
     * that end's gradient pass (the same additions; CONVOY_FUSE=0: apart) */
    for (int i = 1; !apart && i + 2 < net->n; i++)
        if (cv_end_takes_sum(&net->layers[i], &net->layers[i + 2])) {
            net->layers[i].sum_next = &net->layers[i + 2];
            net->layers[i + 2].sum_by_prev = true;
        }
    if (spec->fit.precision != CV_PRECISION_FP32) {
        char where[600];
        snprintf(where, sizeof where, "%s:%d: precision=%s", spec->file, spec->fit.precision_line,
                 cv_precision_name(spec->fit.precision));
        if (cv_precision_check(spec->fit.precision, spec->fit.precision_line ? where : "--precision bf16", err)) {
            cv_net_free(net);
            return NULL;
        }
        cv_net_set_precision(net, spec->fit.precision);
    }
    net_plan_tiles(net);
    int64_t scratch = 0;
    for (int i = 1; i < net->n; i++)
        if (net->layers[i].kd->scratch) scratch += net->layers[i].kd->scratch(net->layers[i].spec);
    if (scratch && !(net->scratch = cv_calloc((size_t)scratch, sizeof(double), "layer scratch", err))) {
        cv_net_free(net);
        return NULL;
    }
    for (int64_t i = 1, off = 0; i < net->n; i++)
        if (net->layers[i].kd->scratch) {
            net->layers[i].scratch = net->scratch + off;
            off += net->layers[i].kd->scratch(net->layers[i].spec);
        }
    if (plan_params(net, seed, err) || cv_net_reserve(net, max_batch > 0 ? max_batch : 1, err)) {
        cv_net_free(net);
        return NULL;
    }
    return net;
}

void cv_net_free(cv_net *net)
{
    if (!net) return;
    free(net->params);
    free(net->grads);
    free(net->acts);
    free(net->args);
    free(net->scratch);
    free(net->fold_buf);
    net_free_tiles(net);
    for (int i = 0; i < net->n; i++) free(net->wino[i]);
    free(net->spec.text);
    free(net);
}

const cv_model_spec *cv_net_spec(const cv_net *net) { return &net->spec; }
int64_t cv_net_param_count(const cv_net *net) { return net->nparams; }
float *cv_net_params(cv_net *net) { return net->params; }
float *cv_net_grads(cv_net *net) { return net->grads; }
int64_t cv_net_grad_count(const cv_net *net) { return net->ntrain; }
bool cv_net_layer_trainable(const cv_net *net, int layer)
{
    return net->views[layer].kernel_n > 0 && net->layers[layer].spec->trainable;
}
int cv_net_grad_layers(const cv_net *net, int64_t *offsets)
{
    int n = 0;
    for (int i = 1; i < net->n; i++)
        if (cv_net_layer_trainable(net, i)) offsets[n++] = net->views[i].kernel_off;
    return n;
}
cv_param_view cv_net_param_view(const cv_net *net, int layer) { return net->views[layer]; }
int cv_net_outputs(const cv_net *net) { return (int)net->layers[net->n - 1].out_size; }

void cv_net_set_precision(cv_net *net, cv_precision p)
{
    net->precision = net->spec.fit.precision = p;
    for (int i = 1; i < net->n; i++) net->layers[i].bf16 = p == CV_PRECISION_BF16;
}

cv_precision cv_net_precision(const cv_net *net) { return net->precision; }

const char *cv_precision_name(cv_precision p) { return p == CV_PRECISION_BF16 ? "bf16" : "fp32"; }

int cv_precision_parse(const char *s)
{
    return strcmp(s, "fp32") == 0 ? CV_PRECISION_FP32 : strcmp(s, "bf16") == 0 ? CV_PRECISION_BF16 : -1;
}

int cv_precision_check(cv_precision p, const char *where, cv_err *err)
{
    if (p != CV_PRECISION_BF16 || cv_bf16_native()) return 0;
    const char *emu = getenv("CONVOY_BF16");
    if (emu && strcmp(emu, "emulate") == 0) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    const bool cpu_has = __builtin_cpu_supports("avx512bf16");
#else
    const bool cpu_has = false;
#endif
    if (cpu_has && strcmp(cv_gemm_path(), "avx512") != 0)
        return cv_errf(err, "%s needs AVX-512, which CONVOY_GEMM=%s leaves out (CONVOY_BF16=emulate runs the same "
                       "arithmetic emulated)", where, cv_gemm_path());
    return cv_errf(err, "%s needs a CPU with AVX512_BF16, which this one has not (no avx512_bf16 among lscpu's "
                   "flags); CONVOY_BF16=emulate runs the same arithmetic emulated, slower than fp32", where);
}
void cv_net_zero_grad(cv_net *net) { memset(net->grads, 0, sizeof(float) * (size_t)net->ntrain); }

void cv_net_profile(cv_net *net, double *fwd, double *bwd)
{
    net->prof_fwd = fwd;
    net->prof_bwd = bwd;
}

int cv_net_layers(const cv_net *net) { return net->n; }
const float *cv_net_layer_output(const cv_net *net, int layer)
{
    const cv_layer *l = &net->layers[layer];
    /* (a batchnorm that left its output to the layer after it, and the activation it applies) */
    if (l->map_live || (layer > 1 && l->fused_into_prev && net->layers[layer - 1].map_live)) return NULL;
    return net->transient[layer] && net_tiled(net, net->batch) ? NULL : l->out;
}

void cv_net_set_grad_hook(cv_net *net, cv_grad_hook hook, void *ctx)
{
    net->hook = hook;
    net->hook_ctx = ctx;
}

void cv_net_set_batch_sum(cv_net *net, cv_net_sum_fn sum, void *ctx)
{
    for (int i = 1; i < net->n; i++)
        if (net->layers[i].kd->flags & CV_KIND_BATCH) {
            net->layers[i].sum = sum;
            net->layers[i].sum_ctx = ctx;
        }
}

void cv_net_set_leaves(cv_net *net, int n, const int *rows, int first, cv_net_leaf_sum_fn sum, void *ctx)
{
    net->leaves = (cv_leaves){n, first, rows, sum, ctx, NULL, net->grads};
    for (int i = 1; i < net->n; i++)
        if (net->layers[i].kd->flags & CV_KIND_BATCH) net->layers[i].leaves = sum ? &net->leaves : NULL;
}

void cv_net_backward_leaves(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B,
                            double norm, float *const *grads)
{
    const cv_leaves *lv = &net->leaves;
    const int lo = net->first_trainable > 1 ? net->first_trainable : 1;
    float *d = net->dbuf[0], *spare = net->dbuf[1];
    cv_loss_grad_w(&net->spec.loss, net->layers[net->n - 1].out, labels, targets, w, B, cv_net_outputs(net), norm, d);
    net->leaves.grads = grads;
    for (int i = net->n - 1; i >= lo; i--) {
        cv_layer *l = &net->layers[i];
        /* the batchnorm or end below takes its gradient as it is (the end: a residual's sum too) */
        if (l->fused_into_prev || l->sum_by_prev) continue;
        const float *x = i == 1 ? net->input : net->layers[i - 1].out;
        float *dx = i > net->first_trainable ? spare : NULL;
        if (batch_layer(net, i)) { /* its sums are the step's: the whole pass at once, by leaves inside */
            net_backward_layer(net, l, x, dx, d, B, &net->ws, net->prof_bwd);
        } else {
            for (int j = 0; j < lv->n; j++) {
                const int s = lv->rows[j], nb = lv->rows[j + 1] - s;
                cv_layer v = net_tile_layer(net, i, s, grads[j]), pv, nv;
                if (v.partner) { /* end: its residual layer's rows too, and the next block's */
                    pv = net_tile_layer(net, v.partner->index, s, NULL);
                    v.partner = &pv;
                }
                if (v.sum_next) {
                    nv = net_tile_layer(net, v.sum_next->index, s, NULL);
                    v.sum_next = &nv;
                }
                net_backward_layer(net, &v, x + (size_t)s * l->in_size, dx ? dx + (size_t)s * l->in_size : NULL,
                                   d + (size_t)s * l->out_size, nb, &net->ws, NULL);
            }
        }
        spare = d;
        d = dx;
    }
    net->leaves.grads = NULL;
}

void cv_net_metrics_rows(cv_net *net, int row0, const int32_t *labels, const float *targets, const float *w, int B,
                         cv_metrics *m)
{
    cv_layer *last = &net->layers[net->n - 1];
    float *out = last->out, *logits = net->logits;
    last->out += (size_t)row0 * last->out_size;
    net->logits += (size_t)row0 * last->out_size;
    cv_net_metrics_w(net, labels, targets, w, B, m);
    last->out = out;
    net->logits = logits;
}

int cv_net_batch_layers(const cv_net *net)
{
    int n = 0;
    for (int i = 1; i < net->n; i++) n += batch_layer(net, i);
    return n;
}

int cv_net_batch_idle(cv_net *net)
{
    /* the batch layers' passes over no rows, forward in layer order, then backward in reverse:
     * their sums join the other ranks' (and the moving statistics move with the global batch's,
     * as on every other rank) */
    const cv_fwd_ctx ctx = {true, 0, 0, NULL, &net->ws};
    for (int i = 1; i < net->n; i++)
        if (batch_layer(net, i)) net->layers[i].kd->forward(&net->layers[i], NULL, 0, &ctx);
    for (int i = net->n - 1; i >= 1; i--)
        if (batch_layer(net, i)) net->layers[i].kd->backward(&net->layers[i], NULL, NULL, NULL, 0, &net->ws);
    return 0;
}

void cv_net_layer_flops(const cv_net *net, int layer, double *fwd, double *bwd)
{
    const cv_layer *l = &net->layers[layer];
    const double f = l->kd->flops ? l->kd->flops(l) : 0.0;
    /* backward: the weight gradient for a trainable layer, the input gradient above the first
     * trainable one */
    const bool learns = l->dw != NULL, needs_dx = layer > net->first_trainable;
    *fwd = f;
    *bwd = layer < net->first_trainable ? 0.0 : f * ((learns ? 1.0 : 0.0) + (needs_dx ? 1.0 : 0.0));
}

/* Layer l's forward over B rows starting at x (its buffers already at those rows); prof, when
 * given, collects the seconds it took. */
void net_forward_layer(cv_net *net, cv_layer *l, const float *x, int B, const cv_fwd_ctx *ctx, double *prof)
{
    const double t0 = prof ? cv_now() : 0.0;
    /* (a folded batchnorm's output is its input, and so is the output of the activation a
     * batchnorm applies) */
    if (!l->folded && !l->fused_into_prev) l->kd->forward(l, x, B, ctx);
    const int width = last_dim(l->spec->out);
    if (l->index == net->n - 1 && net->fused) /* the logits of these rows: l->out may be moved to them */
        memcpy(net->logits + (l->out - net->layers[l->index].out), l->out, sizeof(float) * (size_t)B * l->out_size);
    if (!l->act_fused)
        cv_act_forward(l->out, (int64_t)B * l->out_size / width, width, cv_layer_act(l->spec), l->spec->alpha);
    if (prof) prof[l->index] += cv_now() - t0;
}

int cv_net_conv_winograd(const cv_net *net, int layer)
{
    if (layer < 1 || layer >= net->n || net->layers[layer].spec->kind != CV_LAYER_CONV2D) return 0;
    const cv_layer *l = &net->layers[layer];
    int m = 0;
    if (cv_conv_layer_winograd(l)) m |= CV_WINO_FORWARD | (l->dw ? CV_WINO_WEIGHT_GRAD : 0);
    if (layer > net->first_trainable && cv_conv_layer_winograd_dx(l)) m |= CV_WINO_INPUT_GRAD;
    return m;
}

int net_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Inference through layers [from, n) in one block of rows per thread, each thread running every
 * layer on its rows with serial kernels: one parallel region per batch instead of one or more per
 * kernel (for an MLP, whose kernels are short, most of the time at 2 threads). Only for layers
 * that keep rows apart and need no workspace (CV_KIND_ROWWISE: dense, dropout, activation, flatten): a row's
 * output then depends on that row alone, with the same sums in the same order, so the outputs
 * are the bits a whole-batch pass gives. */
enum { ROW_BLOCK_MIN = 32 }; /* rows per thread at least: fewer would starve the GEMM */

static int row_blocks(const cv_net *net, int from, int B, bool training)
{
    int threads = 1;
#ifdef _OPENMP
    threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
    if (training || threads < 2 || from >= net->n) return 1;
    for (int j = from; j < net->n; j++)
        if (!(net->layers[j].kd->flags & CV_KIND_ROWWISE)) return 1;
    const int most = B / ROW_BLOCK_MIN;
    return most < threads ? (most > 1 ? most : 1) : threads;
}

static void forward_rows(cv_net *net, const float *x, int from, int B, int blocks, const cv_fwd_ctx *ctx0)
{
#pragma omp parallel num_threads(blocks)
    {
        const int t = net_thread_id(), s = (int)((int64_t)B * t / blocks), e = (int)((int64_t)B * (t + 1) / blocks);
        cv_fwd_ctx ctx = *ctx0;
        ctx.sample_ids = ctx0->sample_ids ? ctx0->sample_ids + s : NULL;
        const float *cur = x + (size_t)s * net->layers[from].in_size;
        for (int j = from; j < net->n; j++) {
            cv_layer l = net_tile_layer(net, j, s, NULL);
            net_forward_layer(net, &l, cur, e - s, &ctx, t == 0 ? net->prof_fwd : NULL);
            cur = l.out;
        }
    }
}

/* The Winograd conv2d layers' kernels transformed from the current weights, once per forward
 * pass rather than once per tile: for the forward pass, and when training for the input
 * gradient too. A layer whose buffer cannot be had is left to transform them per call. */
static void prepare_winograd(cv_net *net, bool training)
{
    for (int i = 1; i < net->n; i++) {
        cv_layer *l = &net->layers[i];
        l->wino_w = l->wino_wt = NULL;
        const int m = cv_net_conv_winograd(net, i);
        const bool fwd = m & CV_WINO_FORWARD, dx = training && (m & CV_WINO_INPUT_GRAD);
        if (!fwd && !dx) continue;
        const int C = l->win.C, F = l->spec->filters;
        const size_t n = (size_t)CV_WINO_XI * C * F;
        if (!net->wino[i]) net->wino[i] = malloc(sizeof(float) * 2 * n);
        if (!net->wino[i]) continue;
        if (fwd && cv_conv_wino_weights(net->wino[i], l->w, C, F, false) == 0) l->wino_w = net->wino[i];
        if (dx && cv_conv_wino_weights(net->wino[i] + n, l->w, C, F, true) == 0) l->wino_wt = net->wino[i] + n;
    }
}

const float *cv_net_forward(cv_net *net, const float *x, int B, bool training, uint64_t seed,
                            int64_t epoch, const int64_t *sample_ids)
{
    prepare_winograd(net, training);
    net->input = x;
    if (net_reshapes(net, 1)) /* a first flatten's output is the input itself, and so are the flattens' after it */
        for (int i = 1; i < net->n && net_reshapes(net, i); i++) net->layers[i].out = (float *)x;
    net->batch = B;
    int i = 1;
    if (net_tiled(net, B)) {
        net_forward_trunk(net, x, B, training, seed, epoch, sample_ids);
        i = net->trunk;
    }
    const cv_fwd_ctx ctx = {training, seed, epoch, sample_ids, &net->ws};
    const float *cur = i == 1 ? x : net->layers[i - 1].out;
    const int blocks = row_blocks(net, i, B, training);
    if (blocks > 1) {
        forward_rows(net, cur, i, B, blocks, &ctx);
        return net->layers[net->n - 1].out;
    }
    for (; i < net->n; i++) {
        net_forward_layer(net, &net->layers[i], cur, B, &ctx, net->prof_fwd);
        cur = net->layers[i].out;
    }
    return cur;
}

/* Layer l's backward over B rows (its buffers already at them): d is the gradient with respect
 * to its output, x its input, dx (NULL: not needed) receives the input gradient. */
void net_backward_layer(cv_net *net, cv_layer *l, const float *x, float *dx, float *d, int B,
                           cv_workspace *ws, double *prof)
{
    const double t0 = prof ? cv_now() : 0.0;
    /* a fused loss already gave d/dlogits for the output layer */
    if (!(l->index == net->n - 1 && net->fused) && !l->act_bwd_by_next &&
        !((l->kd->flags & CV_KIND_OWN_ACT) && l->act_fused)) {
        const int width = last_dim(l->spec->out);
        cv_act_backward(d, l->out, (int64_t)B * l->out_size / width, width, cv_layer_act(l->spec), l->spec->alpha);
    }
    l->kd->backward(l, x, dx, d, B, ws);
    if (prof) prof[l->index] += cv_now() - t0;
}

void cv_net_backward(cv_net *net, const int32_t *labels, const float *targets, int B, double norm)
{
    cv_net_backward_w(net, labels, targets, NULL, B, norm);
}

void cv_net_backward_w(cv_net *net, const int32_t *labels, const float *targets, const float *w, int B, double norm)
{
    const int K = cv_net_outputs(net);
    const int lo = net->first_trainable > 1 ? net->first_trainable : 1;
    const int stop = net_tiled(net, B) ? net->trunk : lo; /* the layers below stop go by tiles */
    float *d = net->dbuf[0], *spare = net->dbuf[1];
    cv_loss_grad_w(&net->spec.loss, net->layers[net->n - 1].out, labels, targets, w, B, K, norm, d);
    int i = net->n - 1;
    for (; i >= lo && i >= stop; i--) {
        cv_layer *l = &net->layers[i];
        /* the batchnorm or end below takes its gradient as it is (the end: a residual's sum too) */
        if (l->fused_into_prev || l->sum_by_prev) continue;
        const float *x = i == 1 ? net->input : net->layers[i - 1].out;
        float *dx = i > net->first_trainable ? spare : NULL; /* backward writes all of it */
        net_backward_layer(net, l, x, dx, d, B, &net->ws, net->prof_bwd);
        if (net->hook && l->dw) net->hook(net->hook_ctx, net->views[i].kernel_off);
        spare = d;
        d = dx;
    }
    if (i < lo) return;
    net_backward_trunk(net, d, i, lo, B);
    for (int j = i; j >= lo; j--) /* their gradients are final only now */
        if (net->hook && net->layers[j].dw) net->hook(net->hook_ctx, net->views[j].kernel_off);
}

