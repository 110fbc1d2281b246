/* The callbacks as model data (include/convoy/callbacks.h): the fit line's defaults, the
 * schedules' names, which monitors are maximised, and the state a run starts from. The parser,
 * checkpoints, the CLI and tune read these; the decisions themselves are train/callbacks.c's. */
#include "convoy/callbacks-config.h"

#include <math.h>
#include <string.h>

cv_callbacks_config cv_callbacks_defaults(void)
{
    /* 0 for decay_rate/decay_steps means "the schedule's default" (see schedule_lr) */
    cv_callbacks_config c = {
        .schedule = CV_SCHED_CONSTANT,
        .drop_every = 10,
        .monitor = "val_loss",
        .plateau_factor = 0.1f,
        .plateau_min_delta = 1e-4f,
        .stop_on_nan = true,
    };
    return c;
}

const char *cv_sched_name(cv_sched_kind k)
{
    static const char *const names[CV_SCHED_COUNT] = {
        [CV_SCHED_CONSTANT] = "constant",
        [CV_SCHED_STEP] = "step",
        [CV_SCHED_EXPONENTIAL] = "exponential",
        [CV_SCHED_COSINE] = "cosine",
    };
    return (unsigned)k < CV_SCHED_COUNT ? names[k] : "?";
}

bool cv_monitor_max(const char *monitor)
{
    static const char suffix[] = "accuracy";
    const size_t n = strlen(monitor), m = sizeof suffix - 1;
    return n >= m && strcmp(monitor + n - m, suffix) == 0;
}

void cv_callbacks_init(cv_callbacks_state *s, const cv_callbacks_config *c)
{
    const double worst = cv_monitor_max(c->monitor) ? -INFINITY : INFINITY;
    *s = (cv_callbacks_state){.es_best = worst, .plateau_best = worst, .save_best = worst,
                              .lr_scale = 1.0f};
}
