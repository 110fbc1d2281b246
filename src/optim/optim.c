/* Optimizer update rules over the flat parameter buffer. One loop per rule; every rank runs
 * the same step on the same averaged gradient, so the weights stay identical everywhere. */
#include "convoy/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const optim_names[CV_OPT_COUNT] = {
    [CV_OPT_SGD] = "sgd",         [CV_OPT_MOMENTUM] = "momentum", [CV_OPT_ADAGRAD] = "adagrad",
    [CV_OPT_RMSPROP] = "rmsprop", [CV_OPT_ADADELTA] = "adadelta", [CV_OPT_ADAM] = "adam",
};

const char *cv_optim_name(cv_optim_kind k) { return k < CV_OPT_COUNT ? optim_names[k] : "?"; }

int cv_optim_from_name(const char *name)
{
    for (int k = 0; k < CV_OPT_COUNT; k++)
        if (strcmp(name, optim_names[k]) == 0) return k;
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

void cv_optim_step(cv_optim *o, float *w, const float *g)
{
    const cv_optim_config c = o->cfg;
    const int64_t n = o->n;
    float *s1 = o->s1, *s2 = o->s2;
    o->t++;
    /* Adam's bias corrections, computed in double once per step */
    const float bc1 = (float)(1.0 - pow(c.beta1, (double)o->t));
    const float bc2 = (float)(1.0 - pow(c.beta2, (double)o->t));

#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        switch (c.kind) {
        case CV_OPT_SGD:
            w[i] -= c.lr * gi;
            break;
        case CV_OPT_MOMENTUM:
            if (c.variant == CV_MOMENTUM_EWA) {
                s1[i] = c.momentum * s1[i] + (1.0f - c.momentum) * gi;
                w[i] -= c.lr * s1[i];
            } else {
                s1[i] = c.momentum * s1[i] - c.lr * gi;
                w[i] += c.variant == CV_MOMENTUM_NESTEROV ? c.momentum * s1[i] - c.lr * gi : s1[i];
            }
            break;
        case CV_OPT_ADAGRAD:
            s1[i] += gi * gi;
            w[i] -= c.lr * gi / sqrtf(s1[i] + c.epsilon);
            break;
        case CV_OPT_RMSPROP:
            s1[i] = c.rho * s1[i] + (1.0f - c.rho) * gi * gi;
            w[i] -= c.lr * gi / sqrtf(s1[i] + c.epsilon);
            break;
        case CV_OPT_ADADELTA: {
            s1[i] = c.rho * s1[i] + (1.0f - c.rho) * gi * gi; /* E[g^2] */
            const float d = sqrtf(s2[i] + c.epsilon) / sqrtf(s1[i] + c.epsilon) * gi;
            s2[i] = c.rho * s2[i] + (1.0f - c.rho) * d * d;   /* E[dx^2] */
            w[i] -= c.lr * d;
            break;
        }
        case CV_OPT_ADAM: {
            s1[i] = c.beta1 * s1[i] + (1.0f - c.beta1) * gi;
            s2[i] = c.beta2 * s2[i] + (1.0f - c.beta2) * gi * gi;
            w[i] -= c.lr * (s1[i] / bc1) / (sqrtf(s2[i] / bc2) + c.epsilon);
            break;
        }
        default:
            break;
        }
    }
}
