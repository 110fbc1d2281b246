/* Optimizer update rules over the flat parameter buffer. One loop per rule; every rank runs
 * the same step on the same averaged gradient, so the weights stay identical everywhere. */
#include "convoy/optim.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const optim_names[CV_OPT_COUNT] = {
    [CV_OPT_SGD] = "sgd",         [CV_OPT_MOMENTUM] = "momentum", [CV_OPT_ADAGRAD] = "adagrad",
    [CV_OPT_RMSPROP] = "rmsprop", [CV_OPT_ADADELTA] = "adadelta", [CV_OPT_ADAM] = "adam",
};

const char *cv_optim_name(cv_optim_kind k) { return k < CV_OPT_COUNT ? optim_names[k] : "?"; }

int cv_optim_from_name(const char *name)
{
    for (int k = 0; k < CV_OPT_COUNT; k++)
        if (strcasecmp(name, optim_names[k]) == 0) return k; /* Keras's Adam, SGD, RMSprop too */
    return -1;
}

cv_optim_config cv_optim_defaults(cv_optim_kind kind)
{
    cv_optim_config c = {
        .kind = kind, .lr = 0.001f, .momentum = 0.9f, .variant = CV_MOMENTUM_EWA, .rho = 0.9f,
        .beta1 = 0.9f, .beta2 = 0.999f, .epsilon = 1e-7f, .initial_accumulator = 0.1f,
    };
    if (kind == CV_OPT_SGD || kind == CV_OPT_MOMENTUM) c.lr = 0.01f;
    if (kind == CV_OPT_ADADELTA) c.rho = 0.95f;
    return c;
}

int cv_optim_state_count(cv_optim_kind kind)
{
    switch (kind) {
    case CV_OPT_SGD: return 0;
    case CV_OPT_MOMENTUM: case CV_OPT_ADAGRAD: case CV_OPT_RMSPROP: return 1;
    default: return 2;
    }
}

int cv_optim_init(cv_optim *o, const cv_optim_config *cfg, int64_t n, cv_err *err)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    int ns = cv_optim_state_count(cfg->kind);
    if (ns >= 1 && !(o->s1 = cv_calloc((size_t)n, sizeof(float), "optimizer state", err))) return -1;
    if (ns >= 2 && !(o->s2 = cv_calloc((size_t)n, sizeof(float), "optimizer state", err))) {
        cv_optim_free(o);
        return -1;
    }
    if (cfg->kind == CV_OPT_ADAGRAD)
        for (int64_t i = 0; i < n; i++) o->s1[i] = cfg->initial_accumulator;
    return 0;
}

void cv_optim_free(cv_optim *o)
{
    free(o->s1);
    free(o->s2);
    o->s1 = o->s2 = NULL;
}

/* The update rules, one elementwise loop each (the kind is not tested per element), compiled
 * for each instruction set: the widest vectors the CPU has (sqrt and division vectorise with
 * -fno-math-errno, see CMakeLists.txt). Contraction into fused multiply-adds is off in this
 * file, so every element's arithmetic is the operations as written, each rounded once: the same
 * bits on every instruction set and vector width as the plain scalar loop. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

typedef struct {
    cv_optim_kind kind;
    cv_momentum_variant variant;
    float lr, mom, rho, eps, b1, b2;
    float lr_c1, inv_c2; /* Adam: lr / (1 - beta1^t) and 1 / (1 - beta2^t), this step's bias corrections */
} step_consts;

static inline __attribute__((always_inline)) void step_body(const step_consts *k, int64_t n, float *restrict w,
                                                            const float *restrict g, float *restrict s1,
                                                            float *restrict s2)
{
    const float lr = k->lr, mom = k->mom, rho = k->rho, eps = k->eps, b1 = k->b1, b2 = k->b2, lr_c1 = k->lr_c1,
                inv_c2 = k->inv_c2;
    switch (k->kind) {
    case CV_OPT_SGD:
        for (int64_t i = 0; i < n; i++) w[i] -= lr * g[i];
        break;
    case CV_OPT_MOMENTUM:
        if (k->variant == CV_MOMENTUM_EWA) {
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mom * s1[i] + (1.0f - mom) * g[i];
                w[i] -= lr * s1[i];
            }
        } else if (k->variant == CV_MOMENTUM_NESTEROV) {
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mom * s1[i] - lr * g[i];
                w[i] += mom * s1[i] - lr * g[i];
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mom * s1[i] - lr * g[i];
                w[i] += s1[i];
            }
        }
        break;
    case CV_OPT_ADAGRAD:
        for (int64_t i = 0; i < n; i++) {
            s1[i] += g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
        }
        break;
    case CV_OPT_RMSPROP:
        for (int64_t i = 0; i < n; i++) {
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
        }
        break;
    case CV_OPT_ADADELTA:
        for (int64_t i = 0; i < n; i++) {
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i]; /* E[g^2] */
            const float d = sqrtf(s2[i] + eps) / sqrtf(s1[i] + eps) * g[i];
            s2[i] = rho * s2[i] + (1.0f - rho) * d * d;       /* E[dx^2] */
            w[i] -= lr * d;
        }
        break;
    case CV_OPT_ADAM:
        for (int64_t i = 0; i < n; i++) {
            s1[i] = b1 * s1[i] + (1.0f - b1) * g[i];
            s2[i] = b2 * s2[i] + (1.0f - b2) * g[i] * g[i];
            /* lr m_hat / (sqrt(v_hat) + eps), the corrections folded into a factor each: one
             * division and one square root an element (three divisions made the step
             * division-bound where the buffers stay in cache) */
            w[i] -= lr_c1 * s1[i] / (sqrtf(s2[i] * inv_c2) + eps);
        }
        break;
    default:
        break;
    }
}

#define STEP_PARAMS (const step_consts *k, int64_t n, float *w, const float *g, float *s1, float *s2)
typedef void(*step_fn) STEP_PARAMS;
static void step_generic STEP_PARAMS { step_body(k, n, w, g, s1, s2); }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void step_avx2 STEP_PARAMS { step_body(k, n, w, g, s1, s2); }
__attribute__((target("avx512f"))) static void step_avx512 STEP_PARAMS { step_body(k, n, w, g, s1, s2); }
#endif

/* the widest clone this CPU runs (all give the same bits, so no setting narrows it) */
static step_fn step_pick(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) return step_avx512;
    if (__builtin_cpu_supports("avx2")) return step_avx2;
#endif
    return step_generic;
}

/* Threads take fixed chunks of the buffer (each element's update is its own, so the cut changes
 * no bit); a small buffer is one chunk, with no fork. */
enum { STEP_CHUNK = 1 << 14 };

void cv_optim_step(cv_optim *o, float *restrict w, const float *restrict g)
{
    static step_fn run;
    if (!run) run = step_pick(); /* a benign race: every caller picks the same */
    const cv_optim_config c = o->cfg;
    const int64_t n = o->n, chunks = (n + STEP_CHUNK - 1) / STEP_CHUNK;
    float *s1 = o->s1, *s2 = o->s2;
    o->t++;
    /* Adam's bias corrections, computed in double once per step */
    const step_consts k = {
        .kind = c.kind, .variant = c.variant, .lr = c.lr, .mom = c.momentum, .rho = c.rho, .eps = c.epsilon,
        .b1 = c.beta1, .b2 = c.beta2, .lr_c1 = (float)((double)c.lr / (1.0 - pow(c.beta1, (double)o->t))),
        .inv_c2 = (float)(1.0 / (1.0 - pow(c.beta2, (double)o->t))),
    };
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t j = 0; j < chunks; j++) {
        const int64_t at = j * STEP_CHUNK, len = n - at < STEP_CHUNK ? n - at : STEP_CHUNK;
        run(&k, len, w + at, g + at, s1 ? s1 + at : NULL, s2 ? s2 + at : NULL);
    }
}
