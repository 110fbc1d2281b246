/* The callbacks as model data (include/convoy/callbacks.h): the fit line's defaults, the
 * schedules' names, which monitors are maximised, and the state a run starts from. The parser,
 * checkpoints, the CLI and tune read these; the decisions themselves are train/callbacks.c's. */
#include "convoy/callbacks-config.h"

#include <math.h>
#include <string.h>

#include "convoy/loss.h"

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

int cv_monitor_metric(const char *monitor)
{
    const char *what = strncmp(monitor, "val_", 4) == 0 ? monitor + 4 : monitor;
    if (strcmp(what, "loss") == 0) return CV_MONITOR_LOSS;
    for (int i = 0; i < CV_METRIC_KINDS; i++)
        if (strcmp(what, cv_metric_name(i)) == 0) return i;
    return CV_MONITOR_UNKNOWN;
}

bool cv_monitor_max(const char *monitor)
{
    const int i = cv_monitor_metric(monitor);
    return i >= 0 && i != CV_METRIC_INDEX_MAE && i != CV_METRIC_INDEX_MSE;
}

void cv_callbacks_init(cv_callbacks_state *s, const cv_callbacks_config *c)
{
    const double worst = cv_monitor_max(c->monitor) ? -INFINITY : INFINITY;
    *s = (cv_callbacks_state){.es_best = worst, .plateau_best = worst, .save_best = worst,
                              .lr_scale = 1.0f};
}
