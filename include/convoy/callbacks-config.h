/* Module model: the callbacks' configuration and state as model data. A model file's `fit`
 * keys configure learning-rate schedules, early stopping, reduce-LR-on-plateau and save-best;
 * the parser fills the configuration, checkpoints save the state, and the trainer (module
 * train, convoy/callbacks.h) runs the callbacks on them. */
#ifndef CONVOY_CALLBACKS_CONFIG_H
#define CONVOY_CALLBACKS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    CV_SCHED_CONSTANT,
    CV_SCHED_STEP,        /* lr0 * decay_rate^floor(epoch / drop_every) */
    CV_SCHED_EXPONENTIAL, /* lr0 * decay_rate^(step / decay_steps)   (keras ExponentialDecay) */
    CV_SCHED_COSINE,      /* lr0 * ((1-alpha) * 0.5 (1 + cos(pi min(step,D)/D)) + alpha)  (CosineDecay) */
    CV_SCHED_COUNT
} cv_sched_kind;

/** The `fit` keys that configure callbacks (defaults in brackets are Keras's). */
typedef struct {
    cv_sched_kind schedule; /* lr_schedule= [constant] */
    float decay_rate;       /* decay_rate= [0.1 for step, 0.96 for exponential] */
    int64_t decay_steps;    /* decay_steps= (optimizer steps) [exponential 1000; cosine: total steps of the run] */
    int drop_every;         /* drop_every= (epochs) [10] */
    float cosine_alpha;     /* cosine_alpha= [0] */
    int64_t warmup_steps;   /* warmup_steps= [0]: lr rises linearly to the schedule's start over these
                               steps, and the schedule starts counting after them */
    char monitor[48];       /* monitor= [val_loss]: loss or a metric's name, with or without val_ */
    int es_patience;        /* early_stopping_patience= [0 = early stopping off] */
    float es_min_delta;     /* min_delta= [0] */
    bool restore_best;      /* restore_best_weights= [false] */
    int plateau_patience;   /* reduce_lr_patience= [0 = off] */
    float plateau_factor;   /* reduce_lr_factor= [0.1] */
    float plateau_min_delta;/* reduce_lr_min_delta= [1e-4] */
    int plateau_cooldown;   /* reduce_lr_cooldown= [0] */
    float min_lr;           /* min_lr= [0] */
    bool save_best_only;    /* save_best_only= [false]: --checkpoint is written only on improvement */
    bool stop_on_nan;       /* stop_on_nan= [true] */
} cv_callbacks_config;

/** Defaults (all callbacks off, stop_on_nan on). */
cv_callbacks_config cv_callbacks_defaults(void);
const char *cv_sched_name(cv_sched_kind k);

/** Run-time state; each callback keeps its own best value, as Keras's do. */
typedef struct {
    double es_best, plateau_best, save_best; /* +inf (min mode) or -inf (max mode) at start */
    int es_wait, plateau_wait, cooldown;
    int best_epoch;         /* 1-based epoch of es_best (0: none yet) */
    float lr_scale;         /* product of plateau reductions, 1 at start */
    bool stop;              /* early stopping fired */
} cv_callbacks_state;

void cv_callbacks_init(cv_callbacks_state *s, const cv_callbacks_config *c);
/** Larger is better for this monitor (accuracy, top-k accuracy, precision, recall, f1, auc);
 *  smaller for losses and errors (mae, mse). */
bool cv_monitor_max(const char *monitor);
/** What a monitor name (with or without val_) watches: CV_MONITOR_LOSS, a metric's index i
 *  (its CV_METRIC_* bit 1 << i), or CV_MONITOR_UNKNOWN. */
enum { CV_MONITOR_LOSS = -1, CV_MONITOR_UNKNOWN = -2 };
int cv_monitor_metric(const char *monitor);

#endif
