/* Module optim (src/optim/). Owns the optimizers: hyper-parameters, state and the update over the flat parameter buffer.
 * May call: core.
 * Must not be called by: core, kernels, dist, io, layers, loss.
 *
 * Optimizers: one flat update loop over the parameter buffer. Formulas and defaults (Keras's,
 * unless the course says otherwise) are listed in docs/model-file.md "Optimizers". */
#ifndef CONVOY_OPTIM_H
#define CONVOY_OPTIM_H

#include <stdint.h>

#include "convoy/error.h"

typedef enum {
    CV_OPT_SGD,
    CV_OPT_MOMENTUM,
    CV_OPT_ADAGRAD,
    CV_OPT_RMSPROP,
    CV_OPT_ADADELTA,
    CV_OPT_ADAM,
    CV_OPT_COUNT
} cv_optim_kind;

typedef enum {
    CV_MOMENTUM_EWA,      /* v = b v + (1-b) g;      w -= lr v   (the course's form) */
    CV_MOMENTUM_CLASSIC,  /* v = b v - lr g;         w += v      (Keras SGD(momentum=b)) */
    CV_MOMENTUM_NESTEROV, /* v = b v - lr g;         w += b v - lr g */
} cv_momentum_variant;

typedef struct {
    cv_optim_kind kind;
    float lr;
    float momentum;         /* momentum: beta (0.9) */
    cv_momentum_variant variant;
    float rho;              /* rmsprop 0.9, adadelta 0.95 */
    float beta1, beta2;     /* adam 0.9, 0.999 */
    float epsilon;          /* 1e-7 */
    float initial_accumulator; /* adagrad 0.1 */
} cv_optim_config;

/** Keras defaults for `kind` (learning rate included). */
cv_optim_config cv_optim_defaults(cv_optim_kind kind);
const char *cv_optim_name(cv_optim_kind k);
/** Looks up an optimizer by name, in any letter case (Keras's Adam, SGD, RMSprop); -1 if unknown. */
int cv_optim_from_name(const char *name);

/** Optimizer state for n parameters: the moment buffers the kind needs and the step count. */
typedef struct {
    cv_optim_config cfg;
    int64_t n;
    int64_t t;       /* steps taken */
    float *s1, *s2;  /* first/second state buffers (NULL when unused) */
} cv_optim;

int cv_optim_init(cv_optim *o, const cv_optim_config *cfg, int64_t n, cv_err *err);
void cv_optim_free(cv_optim *o);
/** Number of state buffers the kind keeps (0, 1 or 2); they are s1 and s2. */
int cv_optim_state_count(cv_optim_kind kind);

/** One update of w[0..n) with gradient g; increments t. A network's trainable parameters are
 *  the prefix [0, cv_net_grad_count) of its parameter buffer, so frozen layers hold no state. */
void cv_optim_step(cv_optim *o, float *w, const float *g);

#endif
