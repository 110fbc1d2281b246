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

/* One loop per rule, so each is a plain elementwise loop that vectorises (the kind is not tested
 * per element; sqrt and division vectorise with -fno-math-errno, see CMakeLists.txt). Every
 * element's arithmetic is the same as written, whatever the vector width. */
void cv_optim_step(cv_optim *o, float *restrict w, const float *restrict g)
{
    const cv_optim_config c = o->cfg;
    const int64_t n = o->n;
    float *restrict s1 = o->s1, *restrict s2 = o->s2;
    o->t++;
    /* Adam's bias corrections, computed in double once per step */
    const float bc1 = (float)(1.0 - pow(c.beta1, (double)o->t));
    const float bc2 = (float)(1.0 - pow(c.beta2, (double)o->t));
    const float lr = c.lr, mom = c.momentum, rho = c.rho, eps = c.epsilon, b1 = c.beta1, b2 = c.beta2;

    switch (c.kind) {
    case CV_OPT_SGD:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) w[i] -= lr * g[i];
        break;
    case CV_OPT_MOMENTUM:
        if (c.variant == CV_MOMENTUM_EWA) {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mom * s1[i] + (1.0f - mom) * g[i];
                w[i] -= lr * s1[i];
            }
        } else {
            const bool nesterov = c.variant == CV_MOMENTUM_NESTEROV;
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mom * s1[i] - lr * g[i];
                w[i] += nesterov ? mom * s1[i] - lr * g[i] : s1[i];
            }
        }
        break;
    case CV_OPT_ADAGRAD:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            s1[i] += g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
        }
        break;
    case CV_OPT_RMSPROP:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s1[i] + eps);
        }
        break;
    case CV_OPT_ADADELTA:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i]; /* E[g^2] */
            const float d = sqrtf(s2[i] + eps) / sqrtf(s1[i] + eps) * g[i];
            s2[i] = rho * s2[i] + (1.0f - rho) * d * d;       /* E[dx^2] */
            w[i] -= lr * d;
        }
        break;
    case CV_OPT_ADAM:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            s1[i] = b1 * s1[i] + (1.0f - b1) * g[i];
            s2[i] = b2 * s2[i] + (1.0f - b2) * g[i] * g[i];
            w[i] -= lr * (s1[i] / bc1) / (sqrtf(s2[i] / bc2) + eps);
        }
        break;
    default:
        break;
    }
}
