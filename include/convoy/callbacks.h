/* Module train: Keras-style training callbacks as plain state machines: learning-rate schedules (step,
 * exponential, cosine, linear warm-up), early stopping, reduce-LR-on-plateau and save-best.
 * The trainer asks for each step's learning rate and reports each epoch's monitored value;
 * the state is small and saved in checkpoints so a resumed run decides exactly the same. Their
 * configuration and state are model data (convoy/callbacks-config.h). */
#ifndef CONVOY_CALLBACKS_H
#define CONVOY_CALLBACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "convoy/callbacks-config.h"

/** Learning rate of optimizer step `step` (0-based over the run) in epoch `epoch` (0-based):
 *  warm-up, then the schedule, times the plateau scale; never below min_lr once the plateau
 *  callback has reduced it. `total_steps` is the run's length (cosine's default D). */
float cv_callbacks_lr(const cv_callbacks_config *c, const cv_callbacks_state *s, float lr0,
                      int64_t step, int epoch, int64_t total_steps);

enum { CV_CB_IMPROVED = 1, CV_CB_BEST = 2, CV_CB_STOP = 4, CV_CB_LR_REDUCED = 8 };
/** After epoch `epoch` (0-based) with the monitored value: returns CV_CB_IMPROVED when save-best
 *  should write, CV_CB_BEST when early stopping's best improved (snapshot the weights for
 *  restore_best_weights), CV_CB_STOP when training must stop, CV_CB_LR_REDUCED when the plateau
 *  callback cut the learning rate. `lr_now` is the current learning rate (for min_lr). */
unsigned cv_callbacks_epoch_end(const cv_callbacks_config *c, cv_callbacks_state *s, int epoch,
                                double value, float lr_now);

#endif
