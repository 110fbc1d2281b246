/* Training callbacks: schedules against values computed by hand (python3, formula beside each),
 * early stopping / reduce-on-plateau / save-best against Keras's algorithms epoch by epoch, and
 * the model-file `fit` keys that configure them, with every error path's FILE:LINE and reason. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convoy/callbacks.h"
#include "convoy/model.h"

/* float result vs a double literal: relative 1e-6 (float rounding of the double formula) */
static void lr_eq(float got, double want, const char *what)
{
    cr_assert(fabs((double)got - want) <= 1e-6 * fabs(want) + 1e-12, "%s: got %.9g, want %.9g",
              what, (double)got, want);
}

static cv_callbacks_config cfg(cv_sched_kind k)
{
    cv_callbacks_config c = cv_callbacks_defaults();
    c.schedule = k;
    return c;
}

/* ---- defaults and names ------------------------------------------------------------------ */

Test(callbacks, defaults)
{
    const cv_callbacks_config c = cv_callbacks_defaults();
    cr_assert_eq(c.schedule, CV_SCHED_CONSTANT);
    cr_assert_eq(c.decay_rate, 0.0f, "0: the schedule's own default");
    cr_assert_eq(c.decay_steps, 0);
    cr_assert_eq(c.drop_every, 10);
    cr_assert_eq(c.cosine_alpha, 0.0f);
    cr_assert_eq(c.warmup_steps, 0);
    cr_assert_str_eq(c.monitor, "val_loss");
    cr_assert_eq(c.es_patience, 0, "early stopping off");
    cr_assert_eq(c.es_min_delta, 0.0f);
    cr_assert(!c.restore_best);
    cr_assert_eq(c.plateau_patience, 0, "plateau off");
    cr_assert_float_eq(c.plateau_factor, 0.1f, 0.0f);
    cr_assert_float_eq(c.plateau_min_delta, 1e-4f, 0.0f);
    cr_assert_eq(c.plateau_cooldown, 0);
    cr_assert_eq(c.min_lr, 0.0f);
    cr_assert(!c.save_best_only);
    cr_assert(c.stop_on_nan);
}

Test(callbacks, names_and_modes)
{
    cr_assert_str_eq(cv_sched_name(CV_SCHED_CONSTANT), "constant");
    cr_assert_str_eq(cv_sched_name(CV_SCHED_STEP), "step");
    cr_assert_str_eq(cv_sched_name(CV_SCHED_EXPONENTIAL), "exponential");
    cr_assert_str_eq(cv_sched_name(CV_SCHED_COSINE), "cosine");
    cr_assert(cv_monitor_max("accuracy"));
    cr_assert(cv_monitor_max("val_accuracy"));
    cr_assert(!cv_monitor_max("loss"));
    cr_assert(!cv_monitor_max("val_loss"));
    cr_assert(!cv_monitor_max("mae"));
    cr_assert(!cv_monitor_max("val_mse"));

    cv_callbacks_state s;
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_init(&s, &c);
    cr_assert(isinf(s.es_best) && s.es_best > 0, "min mode starts at +inf");
    cr_assert(isinf(s.plateau_best) && s.plateau_best > 0);
    cr_assert(isinf(s.save_best) && s.save_best > 0);
    cr_assert_eq(s.lr_scale, 1.0f);
    cr_assert_eq(s.best_epoch, 0);
    cr_assert(!s.stop);
    snprintf(c.monitor, sizeof c.monitor, "val_accuracy");
    cv_callbacks_init(&s, &c);
    cr_assert(isinf(s.es_best) && s.es_best < 0, "max mode starts at -inf");
    cr_assert(isinf(s.plateau_best) && s.plateau_best < 0);
    cr_assert(isinf(s.save_best) && s.save_best < 0);
}

/* ---- schedules ------------------------------------------------------------------------------ */

Test(schedule, constant)
{
    const cv_callbacks_config c = cfg(CV_SCHED_CONSTANT);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 0, 0, 1000), 0.01, "step 0");
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 999, 37, 1000), 0.01, "step 999");
}

Test(schedule, step)
{
    /* lr0 * rate^floor(epoch / drop_every) */
    cv_callbacks_config c = cfg(CV_SCHED_STEP);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    c.decay_rate = 0.5f;
    c.drop_every = 3;
    const int epoch[] = {0, 2, 3, 5, 6, 7, 9};
    const double want[] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};
    for (int i = 0; i < 7; i++) {
        char what[32];
        snprintf(what, sizeof what, "epoch %d", epoch[i]);
        /* the step count does not matter to a per-epoch schedule */
        lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 1000 + i, epoch[i], 0), want[i], what);
    }
    /* defaults: rate 0.1 every 10 epochs: 0.1 * 0.1^2 at epoch 25 */
    c = cfg(CV_SCHED_STEP);
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 0, 9, 0), 0.1, "default, epoch 9");
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 0, 10, 0), 0.01, "default, epoch 10");
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 0, 25, 0), 0.001, "default, epoch 25");
}

Test(schedule, exponential)
{
    /* keras ExponentialDecay(staircase=False): lr0 * rate^(step / decay_steps) */
    cv_callbacks_config c = cfg(CV_SCHED_EXPONENTIAL);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    /* defaults rate 0.96, decay_steps 1000: python3 0.01*0.96**(s/1000) */
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 0, 0, 0), 0.01, "step 0");
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 500, 0, 0), 0.009797958971132711, "step 500");
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 1000, 1, 0), 0.0096, "step 1000");
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 2500, 2, 0), 0.009029798987795908, "step 2500");
    /* 0.01 * 0.5**(150/100) */
    c.decay_rate = 0.5f;
    c.decay_steps = 100;
    lr_eq(cv_callbacks_lr(&c, &s, 0.01f, 150, 0, 0), 0.003535533905932738, "rate 0.5, D 100");
}

Test(schedule, cosine_alpha)
{
    /* keras CosineDecay: lr0 * ((1-a) * 0.5 * (1 + cos(pi * min(step, D) / D)) + a),
     * lr0 0.1, alpha 0.1, D 100 */
    cv_callbacks_config c = cfg(CV_SCHED_COSINE);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    c.cosine_alpha = 0.1f;
    c.decay_steps = 100;
    const int64_t step[] = {0, 25, 50, 100, 150};
    const double want[] = {0.1, 0.08681980515339464, 0.05500000000000001, 0.010000000000000002,
                           0.010000000000000002};
    for (int i = 0; i < 5; i++) {
        char what[32];
        snprintf(what, sizeof what, "step %lld", (long long)step[i]);
        lr_eq(cv_callbacks_lr(&c, &s, 0.1f, step[i], 0, 999), want[i], what);
    }
    /* decay_steps 0: D = the run's total steps (200): 0.1 * 0.5 * (1 + cos(pi * 50/200)) */
    c = cfg(CV_SCHED_COSINE);
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 50, 0, 200), 0.08535533905932738, "default D");
}

Test(schedule, warmup_cosine)
{
    /* warm-up 10 steps to lr0 0.1: 0.1 * (step + 1) / 10; then cosine (alpha 0) over
     * D = total - warm-up = 110 - 10 = 100 steps, counting from the end of warm-up:
     * 0.1 * 0.5 * (1 + cos(pi * min(step - 10, 100) / 100)) */
    cv_callbacks_config c = cfg(CV_SCHED_COSINE);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    c.warmup_steps = 10;
    const int64_t step[] = {0, 4, 9, 10, 35, 60, 110, 200};
    const double want[] = {0.01, 0.05, 0.1, 0.1, 0.08535533905932738, 0.05, 0.0, 0.0};
    for (int i = 0; i < 8; i++) {
        char what[32];
        snprintf(what, sizeof what, "step %lld", (long long)step[i]);
        lr_eq(cv_callbacks_lr(&c, &s, 0.1f, step[i], 0, 110), want[i], what);
    }
    /* warm-up on a constant schedule: 0.1 * 1/4, 0.1 * 4/4, then 0.1 */
    c = cfg(CV_SCHED_CONSTANT);
    c.warmup_steps = 4;
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 0, 0, 100), 0.025, "constant, step 0");
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 3, 0, 100), 0.1, "constant, step 3");
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 50, 0, 100), 0.1, "constant, step 50");
}

Test(schedule, plateau_scale_and_floor)
{
    /* the plateau's scale multiplies the schedule; once reduced, never below min_lr */
    cv_callbacks_config c = cfg(CV_SCHED_COSINE);
    cv_callbacks_state s;
    c.decay_steps = 100;
    c.min_lr = 0.01f;
    cv_callbacks_init(&s, &c);
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 100, 0, 0), 0.0, "unreduced: the schedule alone");
    s.lr_scale = 0.5f;
    /* 0.5 * 0.1 * 0.5 * (1 + cos(pi * 25/100)) = 0.5 * 0.08535533905932738 */
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 25, 0, 0), 0.04267766952966369, "scaled");
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 100, 0, 0), 0.01, "floored at min_lr");
}

/* ---- early stopping ------------------------------------------------------------------------- */

/* Feeds values epoch by epoch; checks each epoch's BEST/STOP flags against `flags`. */
static void run_es(const cv_callbacks_config *c, cv_callbacks_state *s, const double *v,
                   const unsigned *flags, int n)
{
    cv_callbacks_init(s, c);
    for (int e = 0; e < n; e++) {
        const unsigned got = cv_callbacks_epoch_end(c, s, e, v[e], 0.1f);
        cr_assert_eq(got & (CV_CB_BEST | CV_CB_STOP), flags[e], "epoch %d (value %g): flags %u, "
                     "want %u", e + 1, v[e], got & (CV_CB_BEST | CV_CB_STOP), flags[e]);
        cr_assert_eq(s->stop, (flags[e] & CV_CB_STOP) != 0);
        if (s->stop) return;
    }
}

enum { B_ = CV_CB_BEST, S_ = CV_CB_STOP };

Test(early_stopping, min_mode_patience)
{
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    const double v[] = {1.0, 0.9, 0.95, 0.91, 0.92};
    /* patience 2: epochs 3 and 4 do not improve on 0.9 -> stop after epoch 4 */
    c.es_patience = 2;
    run_es(&c, &s, v, (const unsigned[]){B_, B_, 0, S_}, 4);
    cr_assert_eq(s.best_epoch, 2);
    cr_assert_float_eq(s.es_best, 0.9, 0.0);
    /* patience 3: three epochs without improvement (3, 4, 5) -> stop after epoch 5 */
    c.es_patience = 3;
    run_es(&c, &s, v, (const unsigned[]){B_, B_, 0, 0, S_}, 5);
    cr_assert_eq(s.best_epoch, 2);
    cr_assert_eq(s.es_wait, 3);
}

Test(early_stopping, min_delta)
{
    /* improvement means value < best - 0.05 */
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    c.es_patience = 2;
    c.es_min_delta = 0.05f;
    const double v[] = {1.0, 0.96, 0.94, 0.90, 0.895};
    run_es(&c, &s, v, (const unsigned[]){B_, 0, B_, 0, S_}, 5);
    cr_assert_eq(s.best_epoch, 3);
    cr_assert_float_eq(s.es_best, 0.94, 0.0);
}

Test(early_stopping, max_mode)
{
    /* accuracy: improvement means value > best + 0.01; a tie is not one */
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    snprintf(c.monitor, sizeof c.monitor, "val_accuracy");
    c.es_patience = 2;
    c.es_min_delta = 0.01f;
    const double v[] = {0.5, 0.6, 0.605, 0.62, 0.62, 0.6};
    run_es(&c, &s, v, (const unsigned[]){B_, B_, 0, B_, 0, S_}, 6);
    cr_assert_eq(s.best_epoch, 4);
}

Test(early_stopping, nan_and_off)
{
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    c.es_patience = 1;
    /* NaN never improves; Keras never stops after the first epoch */
    run_es(&c, &s, (const double[]){NAN, 1.0, NAN}, (const unsigned[]){0, B_, S_}, 3);
    cr_assert_eq(s.best_epoch, 2);
    /* patience 0: off, whatever the values */
    c.es_patience = 0;
    run_es(&c, &s, (const double[]){1, 2, 3, 4, 5, 6}, (const unsigned[]){0, 0, 0, 0, 0, 0}, 6);
    cr_assert_eq(s.best_epoch, 0);
}

/* ---- save best ------------------------------------------------------------------------------- */

Test(save_best, flags)
{
    /* ModelCheckpoint(save_best_only=True): strictly better than the best so far, no min_delta;
     * reported whether or not save_best_only is set, and independent of early stopping's delta */
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    c.es_patience = 10;
    c.es_min_delta = 0.5f;
    cv_callbacks_init(&s, &c);
    const double lo[] = {1.0, 0.9, 0.95, 0.91, 0.9, 0.85};
    const bool lo_want[] = {true, true, false, false, false, true};
    for (int e = 0; e < 6; e++)
        cr_assert_eq((cv_callbacks_epoch_end(&c, &s, e, lo[e], 0.1f) & CV_CB_IMPROVED) != 0,
                     lo_want[e], "min mode, epoch %d", e + 1);
    cr_assert_float_eq(s.save_best, 0.85, 0.0);

    c = cv_callbacks_defaults();
    c.save_best_only = true;
    snprintf(c.monitor, sizeof c.monitor, "accuracy");
    cv_callbacks_init(&s, &c);
    const double hi[] = {0.5, 0.6, 0.605, 0.62, 0.62, 0.6, NAN};
    const bool hi_want[] = {true, true, true, true, false, false, false};
    for (int e = 0; e < 7; e++) {
        const unsigned f = cv_callbacks_epoch_end(&c, &s, e, hi[e], 0.1f);
        cr_assert_eq((f & CV_CB_IMPROVED) != 0, hi_want[e], "max mode, epoch %d", e + 1);
        cr_assert_eq(f & (CV_CB_BEST | CV_CB_STOP | CV_CB_LR_REDUCED), 0u, "others are off");
    }
}

/* ---- reduce on plateau ------------------------------------------------------------------------ */

/* keras.callbacks.ReduceLROnPlateau.on_epoch_end, statement for statement (min mode), with
 * the optimizer's learning rate as a plain variable. */
typedef struct {
    double best, lr;
    int wait, cooldown_counter;
} keras_plateau;

static bool keras_on_epoch_end(keras_plateau *k, const cv_callbacks_config *c, double current)
{
    const float min_lr = c->min_lr;
    bool reduced = false;
    if (k->cooldown_counter > 0) { /* self.in_cooldown() */
        k->cooldown_counter -= 1;
        k->wait = 0;
    }
    if (current < k->best - c->plateau_min_delta) { /* np.less(a, b - min_delta) */
        k->best = current;
        k->wait = 0;
    } else if (!(k->cooldown_counter > 0)) {
        k->wait += 1;
        if (k->wait >= c->plateau_patience) {
            const double old_lr = (float)k->lr;
            if (old_lr > min_lr) {
                double new_lr = old_lr * c->plateau_factor;
                new_lr = new_lr > min_lr ? new_lr : min_lr;
                k->lr = new_lr;
                k->cooldown_counter = c->plateau_cooldown;
                k->wait = 0;
                reduced = true;
            }
        }
    }
    return reduced;
}

/* Runs the sequence through convoy (constant schedule, lr from cv_callbacks_lr) and the Keras
 * reference side by side; `want_lr` (if not NULL) pins the rate after each epoch. */
static void run_plateau(const cv_callbacks_config *c, float lr0, const double *v, int n,
                        const double *want_lr)
{
    cv_callbacks_state s;
    cv_callbacks_init(&s, c);
    keras_plateau k = {.best = INFINITY, .lr = lr0};
    for (int e = 0; e < n; e++) {
        const float lr_now = cv_callbacks_lr(c, &s, lr0, e, e, n);
        const bool keras = keras_on_epoch_end(&k, c, v[e]);
        const unsigned f = cv_callbacks_epoch_end(c, &s, e, v[e], lr_now);
        cr_assert_eq((f & CV_CB_LR_REDUCED) != 0, keras, "epoch %d (value %g): reduced %d, "
                     "Keras %d", e + 1, v[e], (f & CV_CB_LR_REDUCED) != 0, keras);
        cr_assert_eq(s.plateau_wait, k.wait, "epoch %d: wait", e + 1);
        cr_assert_eq(s.cooldown, k.cooldown_counter, "epoch %d: cooldown", e + 1);
        char what[48];
        snprintf(what, sizeof what, "lr after epoch %d", e + 1);
        const float lr_next = cv_callbacks_lr(c, &s, lr0, e + 1, e + 1, n);
        lr_eq(lr_next, k.lr, what);
        if (want_lr) lr_eq(lr_next, want_lr[e], what);
    }
}

Test(plateau, cooldown_and_min_lr)
{
    /* patience 2, factor 0.5, cooldown 1, min_lr 0.02, a loss that never improves after
     * epoch 1. By hand: reduce at epoch 3 (0.05), cooldown eats epoch 4's count, reduce at 5
     * (0.025), at 7 (max(0.0125, 0.02) = 0.02), then lr == min_lr stops further cuts. */
    cv_callbacks_config c = cv_callbacks_defaults();
    c.plateau_patience = 2;
    c.plateau_factor = 0.5f;
    c.plateau_cooldown = 1;
    c.min_lr = 0.02f;
    const double v[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double lr[10] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02};
    run_plateau(&c, 0.1f, v, 10, lr);
}

Test(plateau, longer_cooldown)
{
    /* cooldown 2: after a cut, one epoch fully cooled down, the next starts counting again */
    cv_callbacks_config c = cv_callbacks_defaults();
    c.plateau_patience = 2;
    c.plateau_factor = 0.5f;
    c.plateau_cooldown = 2;
    c.min_lr = 0.02f;
    const double v[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double lr[10] = {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02};
    run_plateau(&c, 0.1f, v, 10, lr);
}

Test(plateau, improvements_and_min_delta)
{
    /* min_delta 1e-4 (default): 0.99995 is no improvement on 1.0; improvements during the
     * cooldown still move best; patience 1, factor 0.1, cooldown 2 */
    cv_callbacks_config c = cv_callbacks_defaults();
    c.plateau_patience = 1;
    c.plateau_cooldown = 2;
    const double v[] = {1.0, 0.99995, 0.9, 0.95, 0.8, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7};
    run_plateau(&c, 0.1f, v, 11, NULL);
}

Test(plateau, matches_keras_on_a_long_sequence)
{
    /* a noisy, slowly improving loss with ties and plateaus, several settings */
    double v[200];
    uint32_t x = 12345;
    for (int i = 0; i < 200; i++) {
        x = x * 1664525u + 1013904223u;
        const double noise = (double)(x >> 8) / 16777216.0; /* [0, 1) */
        v[i] = 1.0 / (1.0 + 0.02 * i) + 0.05 * noise;
        if (i % 17 > 12) v[i] = v[i - 1]; /* ties */
    }
    const int patience[] = {1, 2, 3, 5};
    const int cooldown[] = {0, 1, 3, 0};
    const float factor[] = {0.5f, 0.1f, 0.8f, 0.3f};
    const float min_lr[] = {0.0f, 1e-3f, 0.03f, 1e-6f};
    const float delta[] = {1e-4f, 0.0f, 0.01f, 0.003f};
    for (int t = 0; t < 4; t++) {
        cv_callbacks_config c = cv_callbacks_defaults();
        c.plateau_patience = patience[t];
        c.plateau_cooldown = cooldown[t];
        c.plateau_factor = factor[t];
        c.min_lr = min_lr[t];
        c.plateau_min_delta = delta[t];
        run_plateau(&c, 0.1f, v, 200, NULL);
    }
}

Test(plateau, floor_is_exact)
{
    /* 0.7 * 0.1^4 * (3e-5 / 7e-5) lands a float hair above min_lr = 3e-5; the floor must read
     * as min_lr exactly, or the next plateau would "reduce" min_lr to itself (Keras stores
     * min_lr itself). */
    cv_callbacks_config c = cv_callbacks_defaults();
    c.plateau_patience = 1;
    c.min_lr = 3e-5f;
    double v[12];
    for (int i = 0; i < 12; i++) v[i] = 1.0;
    const double lr[12] = {0.7, 0.07, 0.007, 0.0007, 7e-5, 3e-5, 3e-5, 3e-5, 3e-5, 3e-5, 3e-5,
                           3e-5};
    run_plateau(&c, 0.7f, v, 12, lr);
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    int cuts = 0;
    for (int e = 0; e < 12; e++)
        cuts += (cv_callbacks_epoch_end(&c, &s, e, 1.0, cv_callbacks_lr(&c, &s, 0.7f, e, e, 0)) &
                 CV_CB_LR_REDUCED) != 0;
    cr_assert_eq(cuts, 5, "0.7 -> 0.07 -> 0.007 -> 0.0007 -> 7e-5 -> 3e-5, then no more");
    cr_assert_eq(cv_callbacks_lr(&c, &s, 0.7f, 12, 12, 0), 3e-5f);
}

Test(plateau, max_mode_and_schedule)
{
    /* accuracy (max mode) under an exponential schedule: the cut scales what the schedule
     * gives from then on. patience 1, factor 0.5: epoch 2 does not beat 0.6 -> cut. */
    cv_callbacks_config c = cfg(CV_SCHED_EXPONENTIAL);
    snprintf(c.monitor, sizeof c.monitor, "val_accuracy");
    c.plateau_patience = 1;
    c.plateau_factor = 0.5f;
    c.decay_rate = 0.5f;
    c.decay_steps = 100;
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    cr_assert_eq(cv_callbacks_epoch_end(&c, &s, 0, 0.6, cv_callbacks_lr(&c, &s, 0.1f, 100, 0, 0)),
                 CV_CB_IMPROVED);
    const unsigned f = cv_callbacks_epoch_end(&c, &s, 1, 0.6, cv_callbacks_lr(&c, &s, 0.1f, 200,
                                                                              1, 0));
    cr_assert_eq(f, CV_CB_LR_REDUCED);
    /* 0.5 * 0.1 * 0.5^(300/100) = 0.00625 */
    lr_eq(cv_callbacks_lr(&c, &s, 0.1f, 300, 2, 0), 0.00625, "scaled schedule");
}

Test(plateau, off)
{
    cv_callbacks_config c = cv_callbacks_defaults();
    cv_callbacks_state s;
    cv_callbacks_init(&s, &c);
    for (int e = 0; e < 20; e++)
        cr_assert_eq(cv_callbacks_epoch_end(&c, &s, e, 1.0, 0.1f) & CV_CB_LR_REDUCED, 0u);
    cr_assert_eq(s.lr_scale, 1.0f);
}

/* ---- the model file's fit keys ------------------------------------------------------------ */

/* line 1 input, line 2 dense, line 3 compile; fit goes on line 4 */
#define HEAD "input shape=4\ndense units=3 activation=softmax\n"
#define COMPILE "compile loss=sparse_categorical_crossentropy\n"
#define COMPILE_ACC "compile loss=sparse_categorical_crossentropy metrics=accuracy\n"

static cv_model_spec spec;

static void parse_ok(const char *text)
{
    cv_err err = {{0}};
    cr_assert_eq(cv_model_parse(&spec, text, "m.model", &err), 0, "parse failed: %s", err.msg);
}

static void parse_fails(const char *text, const char *where, const char *why)
{
    cv_err err = {{0}};
    int rc = cv_model_parse(&spec, text, "m.model", &err);
    cr_assert_eq(rc, -1, "parse succeeded; expected \"%s ... %s\"", where, why);
    cr_assert_not_null(strstr(err.msg, where), "message \"%s\" lacks \"%s\"", err.msg, where);
    cr_assert_not_null(strstr(err.msg, why), "message \"%s\" lacks \"%s\"", err.msg, why);
    cr_assert_null(strchr(err.msg, '\n'), "message \"%s\" is not one line", err.msg);
}

static void teardown(void) { cv_model_spec_free(&spec); }

TestSuite(fit_keys, .fini = teardown);

Test(fit_keys, defaults_without_fit)
{
    parse_ok(HEAD COMPILE);
    const cv_callbacks_config *c = &spec.callbacks, d = cv_callbacks_defaults();
    cr_assert_eq(memcmp(c, &d, sizeof d), 0, "no fit line: cv_callbacks_defaults()");
    cv_model_spec_free(&spec);
    parse_ok(HEAD COMPILE "fit epochs=3\n");
    cr_assert_eq(memcmp(&spec.callbacks, &d, sizeof d), 0, "fit without callback keys");
}

Test(fit_keys, every_key)
{
    parse_ok(HEAD COMPILE_ACC
             "fit epochs=5 lr_schedule=exponential decay_rate=0.5 decay_steps=300\n"
             "    warmup_steps=20 monitor=val_accuracy early_stopping_patience=4 min_delta=0.01\n"
             "    restore_best_weights=true reduce_lr_patience=2 reduce_lr_factor=0.2\n"
             "    reduce_lr_min_delta=0.001 reduce_lr_cooldown=3 min_lr=1e-5\n"
             "    save_best_only=true stop_on_nan=false\n");
    const cv_callbacks_config *c = &spec.callbacks;
    cr_assert_eq(spec.fit.epochs, 5);
    cr_assert_eq(c->schedule, CV_SCHED_EXPONENTIAL);
    cr_assert_float_eq(c->decay_rate, 0.5f, 0.0f);
    cr_assert_eq(c->decay_steps, 300);
    cr_assert_eq(c->warmup_steps, 20);
    cr_assert_str_eq(c->monitor, "val_accuracy");
    cr_assert_eq(c->es_patience, 4);
    cr_assert_float_eq(c->es_min_delta, 0.01f, 0.0f);
    cr_assert(c->restore_best);
    cr_assert_eq(c->plateau_patience, 2);
    cr_assert_float_eq(c->plateau_factor, 0.2f, 0.0f);
    cr_assert_float_eq(c->plateau_min_delta, 0.001f, 0.0f);
    cr_assert_eq(c->plateau_cooldown, 3);
    cr_assert_float_eq(c->min_lr, 1e-5f, 0.0f);
    cr_assert(c->save_best_only);
    cr_assert(!c->stop_on_nan);
    cr_assert_eq(c->drop_every, 10, "untouched keys keep their defaults");
}

Test(fit_keys, schedules)
{
    parse_ok(HEAD COMPILE "fit lr_schedule=step decay_rate=0.25 drop_every=7\n");
    cr_assert_eq(spec.callbacks.schedule, CV_SCHED_STEP);
    cr_assert_float_eq(spec.callbacks.decay_rate, 0.25f, 0.0f);
    cr_assert_eq(spec.callbacks.drop_every, 7);
    cv_model_spec_free(&spec);

    parse_ok(HEAD COMPILE "fit lr_schedule=cosine cosine_alpha=0.05 decay_steps=1000\n");
    cr_assert_eq(spec.callbacks.schedule, CV_SCHED_COSINE);
    cr_assert_float_eq(spec.callbacks.cosine_alpha, 0.05f, 0.0f);
    cr_assert_eq(spec.callbacks.decay_steps, 1000);
    cv_model_spec_free(&spec);

    parse_ok(HEAD COMPILE "fit lr_schedule=constant warmup_steps=100\n");
    cr_assert_eq(spec.callbacks.schedule, CV_SCHED_CONSTANT);
    cr_assert_eq(spec.callbacks.warmup_steps, 100);
}

Test(fit_keys, monitors)
{
    /* loss needs no metric; the others need theirs; fit may come before compile */
    parse_ok(HEAD COMPILE "fit monitor=loss early_stopping_patience=3\n");
    cr_assert_str_eq(spec.callbacks.monitor, "loss");
    cv_model_spec_free(&spec);
    parse_ok(HEAD "fit monitor=accuracy\n" COMPILE_ACC);
    cr_assert_str_eq(spec.callbacks.monitor, "accuracy");
    cv_model_spec_free(&spec);
    parse_ok(HEAD "compile loss=mse metrics=mae,mse\nfit monitor=val_mae\n");
    cr_assert_str_eq(spec.callbacks.monitor, "val_mae");
    cv_model_spec_free(&spec);
    parse_ok(HEAD "compile loss=mse metrics=mse\nfit monitor=mse\n");
    cr_assert_str_eq(spec.callbacks.monitor, "mse");
}

Test(fit_keys, bad_values)
{
    parse_fails(HEAD COMPILE "fit patience=3\n", "m.model:4:",
                "unknown key 'patience' for fit (valid keys: epochs, batch_size, "
                "validation_split, seed, shuffle, lr_schedule, decay_rate, decay_steps, "
                "drop_every, cosine_alpha, warmup_steps, monitor, early_stopping_patience, "
                "min_delta, restore_best_weights, reduce_lr_patience, reduce_lr_factor, "
                "reduce_lr_min_delta, reduce_lr_cooldown, min_lr, save_best_only, stop_on_nan, fine_tune_last, class_weight, verbose, precision)");
    parse_fails(HEAD COMPILE "fit lr_schedule=linear\n", "m.model:4:",
                "unknown lr_schedule 'linear' (expected constant, step, exponential, cosine)");
    parse_fails(HEAD COMPILE "fit lr_schedule=step decay_rate=0\n", "m.model:4:",
                "decay_rate must be > 0, got 0");
    parse_fails(HEAD COMPILE "fit lr_schedule=exponential decay_steps=0\n", "m.model:4:",
                "decay_steps must be > 0, got 0");
    parse_fails(HEAD COMPILE "fit lr_schedule=exponential decay_steps=2.5\n", "m.model:4:",
                "bad number '2.5' for decay_steps: expected an integer");
    parse_fails(HEAD COMPILE "fit lr_schedule=step drop_every=0\n", "m.model:4:",
                "drop_every must be > 0, got 0");
    parse_fails(HEAD COMPILE "fit lr_schedule=cosine cosine_alpha=1\n", "m.model:4:",
                "cosine_alpha must be in [0, 1), got 1");
    parse_fails(HEAD COMPILE "fit warmup_steps=-1\n", "m.model:4:",
                "warmup_steps must be >= 0, got -1");
    parse_fails(HEAD COMPILE "fit monitor=val_f2\n", "m.model:4:", "unknown monitor 'val_f2': did you mean 'val_f1'?");
    parse_fails(HEAD COMPILE "fit monitor=val_kappa\n", "m.model:4:",
                "unknown monitor 'val_kappa' (expected loss, accuracy, mae, mse, top_k_categorical_accuracy, "
                "sparse_top_k_categorical_accuracy, precision, recall, f1, auc, val_loss, val_accuracy, val_mae, "
                "val_mse, val_top_k_categorical_accuracy, val_sparse_top_k_categorical_accuracy, val_precision, "
                "val_recall, val_f1, val_auc)");
    parse_fails(HEAD COMPILE "fit early_stopping_patience=-2\n", "m.model:4:",
                "early_stopping_patience must be >= 0, got -2");
    parse_fails(HEAD COMPILE "fit early_stopping_patience=2 min_delta=-0.1\n", "m.model:4:",
                "min_delta must be >= 0, got -0.1");
    parse_fails(HEAD COMPILE "fit early_stopping_patience=2 restore_best_weights=yes\n",
                "m.model:4:", "bad value 'yes' for restore_best_weights: expected true or false");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=1.5\n", "m.model:4:",
                "bad number '1.5' for reduce_lr_patience: expected an integer");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=2 reduce_lr_factor=1\n", "m.model:4:",
                "reduce_lr_factor must be in (0, 1), got 1");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=2 reduce_lr_factor=0\n", "m.model:4:",
                "reduce_lr_factor must be in (0, 1), got 0");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=2 reduce_lr_min_delta=-1\n", "m.model:4:",
                "reduce_lr_min_delta must be >= 0, got -1");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=2 reduce_lr_cooldown=-1\n", "m.model:4:",
                "reduce_lr_cooldown must be >= 0, got -1");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=2 min_lr=-1e-5\n", "m.model:4:",
                "min_lr must be >= 0, got -1e-5");
    parse_fails(HEAD COMPILE "fit save_best_only=1\n", "m.model:4:",
                "bad value '1' for save_best_only: expected true or false");
    parse_fails(HEAD COMPILE "fit stop_on_nan=maybe\n", "m.model:4:",
                "bad value 'maybe' for stop_on_nan: expected true or false");
    parse_fails(HEAD COMPILE "fit lr_schedule=step\n    lr_schedule=cosine\n", "m.model:5:",
                "duplicate key 'lr_schedule' in fit (already given on line 4)");
}

Test(fit_keys, schedule_keys_need_their_schedule)
{
    parse_fails(HEAD COMPILE "fit decay_rate=0.5\n", "m.model:4:",
                "decay_rate= applies only to lr_schedule=step or exponential (the schedule is "
                "constant)");
    parse_fails(HEAD COMPILE "fit lr_schedule=cosine decay_rate=0.5\n", "m.model:4:",
                "decay_rate= applies only to lr_schedule=step or exponential (the schedule is "
                "cosine)");
    parse_fails(HEAD COMPILE "fit lr_schedule=step\n    decay_steps=10\n", "m.model:5:",
                "decay_steps= applies only to lr_schedule=exponential or cosine (the schedule "
                "is step)");
    parse_fails(HEAD COMPILE "fit lr_schedule=exponential drop_every=5\n", "m.model:4:",
                "drop_every= applies only to lr_schedule=step (the schedule is exponential)");
    parse_fails(HEAD COMPILE "fit lr_schedule=step cosine_alpha=0.1\n", "m.model:4:",
                "cosine_alpha= applies only to lr_schedule=cosine (the schedule is step)");
}

Test(fit_keys, callback_keys_need_their_patience)
{
    parse_fails(HEAD COMPILE "fit min_delta=0.01\n", "m.model:4:",
                "min_delta= needs early_stopping_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit restore_best_weights=true\n", "m.model:4:",
                "restore_best_weights= needs early_stopping_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit early_stopping_patience=0 restore_best_weights=true\n",
                "m.model:4:", "restore_best_weights= needs early_stopping_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit reduce_lr_factor=0.5\n", "m.model:4:",
                "reduce_lr_factor= needs reduce_lr_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit reduce_lr_min_delta=0.01\n", "m.model:4:",
                "reduce_lr_min_delta= needs reduce_lr_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit reduce_lr_cooldown=2\n", "m.model:4:",
                "reduce_lr_cooldown= needs reduce_lr_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit epochs=3\n    min_lr=1e-5\n", "m.model:5:",
                "min_lr= needs reduce_lr_patience=N with N > 0");
    parse_fails(HEAD COMPILE "fit reduce_lr_patience=0 min_lr=1e-5\n", "m.model:4:",
                "min_lr= needs reduce_lr_patience=N with N > 0");
}

Test(fit_keys, monitor_needs_its_metric)
{
    parse_fails(HEAD COMPILE "fit early_stopping_patience=3 monitor=val_accuracy\n", "m.model:4:",
                "monitor=val_accuracy needs metrics=accuracy in compile (line 3)");
    parse_fails(HEAD "fit monitor=accuracy\n" COMPILE, "m.model:3:",
                "monitor=accuracy needs metrics=accuracy in compile (line 4)");
    parse_fails(HEAD "compile loss=mse metrics=mse\nfit monitor=val_mae\n", "m.model:4:",
                "monitor=val_mae needs metrics=mae in compile (line 3)");
    parse_fails(HEAD "compile loss=mse metrics=accuracy,mae\nfit epochs=2\n    monitor=mse\n",
                "m.model:5:", "monitor=mse needs metrics=mse in compile (line 3)");
}
