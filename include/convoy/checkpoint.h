/* HDF5 checkpoints (layout in README "Checkpoint file"): the model file text, every layer's
 * kernel and bias in Keras layouts, the input normaliser, and the optimizer's state, written
 * atomically so a crash during a save never damages the previous file. */
#ifndef CONVOY_CHECKPOINT_H
#define CONVOY_CHECKPOINT_H

#include <stdint.h>

#include "convoy/data.h"
#include "convoy/error.h"
#include "convoy/model.h"
#include "convoy/optim.h"

#define CV_CHECKPOINT_VERSION 1

/** Saves the network's weights, the normaliser, and (when opt is not NULL) the optimizer's
 *  name, hyper-parameters and state, plus the number of epochs done. */
int cv_checkpoint_save(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                       int64_t epochs_done, cv_err *err);

/** Reads the model spec saved in a checkpoint (its text re-parsed; messages name
 *  "PATH:model:LINE"). */
int cv_checkpoint_spec(const char *path, cv_model_spec *spec, cv_err *err);

/** Builds the saved network (for batches up to max_batch) with its weights, and its
 *  normaliser. Every tensor's shape is checked against the model. */
cv_net *cv_checkpoint_load(const char *path, int max_batch, cv_normalizer *nz, cv_err *err);

#endif
