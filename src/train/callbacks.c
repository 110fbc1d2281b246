/* Training callbacks (include/convoy/callbacks.h): learning-rate schedules with linear warm-up,
 * and Keras's EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only) decisions as
 * pure functions of a small state, so the trainer stays simple and a resumed run decides alike.
 * What the model file and a checkpoint know of them (defaults, names, the starting state) is
 * model data: model/callbacks-config.c. */
#include "convoy/callbacks.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The schedule alone at `step` steps after warm-up (epoch for the step schedule). */
static double schedule_lr(const cv_callbacks_config *c, double lr0, int64_t step, int epoch,
                          int64_t total_steps)
{
    switch (c->schedule) {
    case CV_SCHED_STEP: {
        const double rate = c->decay_rate > 0 ? c->decay_rate : 0.1;
        const int every = c->drop_every > 0 ? c->drop_every : 10;
        return lr0 * pow(rate, (double)(epoch / every));
    }
    case CV_SCHED_EXPONENTIAL: {
        const double rate = c->decay_rate > 0 ? c->decay_rate : 0.96;
        const int64_t d = c->decay_steps > 0 ? c->decay_steps : 1000;
        return lr0 * pow(rate, (double)step / (double)d); /* staircase=False */
    }
    case CV_SCHED_COSINE: {
        /* a run no longer than its warm-up has nothing left to decay over: D = 1 */
        int64_t d = c->decay_steps > 0 ? c->decay_steps : total_steps - c->warmup_steps;
        if (d < 1) d = 1;
        const double p = (double)(step < d ? step : d) / (double)d;
        const double alpha = c->cosine_alpha;
        return lr0 * ((1.0 - alpha) * 0.5 * (1.0 + cos(3.14159265358979323846 * p)) + alpha);
    }
    default: return lr0;
    }
}

float cv_callbacks_lr(const cv_callbacks_config *c, const cv_callbacks_state *s, float lr0,
                      int64_t step, int epoch, int64_t total_steps)
{
    double lr;
    if (step < c->warmup_steps) /* every schedule starts at lr0, so warm-up rises to lr0 */
        lr = (double)lr0 * (double)(step + 1) / (double)c->warmup_steps;
    else
        lr = schedule_lr(c, lr0, step - c->warmup_steps, epoch, total_steps);
    if (s->lr_scale < 1.0f) {
        lr *= s->lr_scale;
        /* the plateau never goes below its floor; a float-rounding hair above it counts as the
         * floor, or the next plateau would "reduce" min_lr to itself */
        if (lr < c->min_lr * (1.0 + 4 * FLT_EPSILON)) lr = c->min_lr;
    }
    return (float)lr;
}

/* Keras's monitor_op with its min_delta: strictly better by more than delta. */
static bool better(bool max, double value, double best, double delta)
{
    return max ? value > best + delta : value < best - delta;
}

unsigned cv_callbacks_epoch_end(const cv_callbacks_config *c, cv_callbacks_state *s, int epoch,
                                double value, float lr_now)
{
    const bool max = cv_monitor_max(c->monitor);
    unsigned out = 0;

    /* ModelCheckpoint(save_best_only=True): no min_delta */
    if (better(max, value, s->save_best, 0.0)) {
        s->save_best = value;
        out |= CV_CB_IMPROVED;
    }

    /* EarlyStopping (Keras 3: the first epoch never stops; NaN is never an improvement) */
    if (c->es_patience > 0) {
        if (better(max, value, s->es_best, fabs(c->es_min_delta))) {
            s->es_best = value;
            s->es_wait = 0;
            s->best_epoch = epoch + 1;
            out |= CV_CB_BEST;
        } else if (++s->es_wait >= c->es_patience && epoch > 0) {
            s->stop = true;
            out |= CV_CB_STOP;
        }
    }

    /* ReduceLROnPlateau, statement for statement as keras.callbacks does it */
    if (c->plateau_patience > 0) {
        if (s->cooldown > 0) {
            s->cooldown--;
            s->plateau_wait = 0;
        }
        if (better(max, value, s->plateau_best, fabs(c->plateau_min_delta))) {
            s->plateau_best = value;
            s->plateau_wait = 0;
        } else if (s->cooldown == 0 && ++s->plateau_wait >= c->plateau_patience) {
            if (lr_now > c->min_lr) {
                double lr_new = (double)lr_now * c->plateau_factor;
                if (lr_new < c->min_lr) lr_new = c->min_lr;
                /* the scale carries the cut through whatever the schedule does next */
                s->lr_scale = (float)((double)s->lr_scale * lr_new / lr_now);
                s->cooldown = c->plateau_cooldown;
                s->plateau_wait = 0;
                out |= CV_CB_LR_REDUCED;
            }
        }
    }
    return out;
}
