/* Module checkpoint (src/checkpoint/). Owns checkpoint files: saving and loading a network, its optimizer and training state; reading the model a checkpoint holds, and with it the model parser's base reader (cv_model_parse).
 * May call: core, io, layers, optim, data, model.
 * Must not be called by: core, kernels, dist, io, layers, loss, optim, data, model.
 *
 * HDF5 checkpoints (layout in docs/hdf5.md "Checkpoints"): the model file text, every layer's
 * kernel and bias in Keras layouts, the input normaliser, and the optimizer's state, written
 * atomically so a crash during a save never damages the previous file. Every float tensor
 * carries its CRC32C (attribute crc32c), verified on load when present; loads refuse NaN/Inf
 * tensors and, on resume, /train and root attributes out of range (docs/hdf5.md). */
#ifndef CONVOY_CHECKPOINT_H
#define CONVOY_CHECKPOINT_H

#include <stdint.h>

#include "convoy/data.h"
#include "convoy/error.h"
#include "convoy/model.h"
#include "convoy/optim.h"

#define CV_CHECKPOINT_VERSION 1

/** Where a training run stands, beyond weights and optimizer state: enough to continue it
 *  exactly (all randomness is a function of seed, epoch and sample index, so no generator
 *  state is needed beyond these counters). */
typedef struct {
    int64_t epoch;          /* epochs completed */
    int64_t step_in_epoch;  /* optimizer steps done inside epoch `epoch` (0 at an epoch end) */
    int64_t global_step;    /* optimizer steps done in the run */
    int64_t batch_size;     /* the global batch (resume must use the same) */
    int64_t n_train;        /* training rows (resume must see the same split) */
    uint64_t seed;
    cv_metrics train_sums;  /* the current epoch's metric sums so far */
    cv_callbacks_state cb;
    const float *best_weights; /* restore_best_weights snapshot, or NULL */
    cv_data_info data;      /* the training data's class names and image attributes (borrowed) */
} cv_train_state;

/** Saves the network's weights, the normaliser, and (when opt is not NULL) the optimizer's
 *  name, hyper-parameters and state, plus the number of epochs done. */
int cv_checkpoint_save(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                       int64_t epochs_done, cv_err *err);
/** The same with the full training state (for --resume). */
int cv_checkpoint_save_state(const char *path, cv_net *net, const cv_normalizer *nz, const cv_optim *opt,
                             const cv_train_state *st, cv_err *err);

/** Continues a run: checks that the checkpoint's model has the same architecture as net's
 *  (kinds, shapes and every key that changes the arithmetic, naming the first difference) and
 *  the same optimizer, that its position and callback state are in range, then loads weights, optimizer
 *  state and t, the normaliser and the training state. best (n floats, may be NULL) receives
 *  the best-weights snapshot when the checkpoint has one (*has_best set). */
int cv_checkpoint_resume(const char *path, cv_net *net, cv_optim *opt, cv_normalizer *nz,
                         cv_train_state *st, float *best, int *has_best, cv_err *err);

/** Loads only the weights of net's layers from a checkpoint (transfer learning, weights made
 *  elsewhere): every parameterised layer must be present with the right shape; the first
 *  mismatch is named. */
int cv_checkpoint_init_from(const char *path, cv_net *net, cv_err *err);

/** Loads the weights of the base layers 1..upto of a model with a `base` line from its
 *  checkpoint (spec->base), checking every shape. */
int cv_checkpoint_load_base(cv_net *net, cv_err *err);

/** Reads the model spec saved in a checkpoint (its text re-parsed; messages name
 *  "PATH:model:LINE"). */
int cv_checkpoint_spec(const char *path, cv_model_spec *spec, cv_err *err);
/** The reader of `base checkpoint=F` lines the model parser is given (convoy/model.h): the model
 *  in F, by cv_checkpoint_spec, its own base lines read the same way one level deeper.
 *  cv_model_parse, cv_model_load and cv_augment_file_load are the model module's parses with it. */
extern const cv_base_reader cv_checkpoint_base_reader;

/** The class names and image attributes a checkpoint keeps of its training data (none: all
 *  zero). Free with cv_data_info_free. */
int cv_checkpoint_data_info(const char *path, cv_data_info *info, cv_err *err);

/** Builds the saved network (for batches up to max_batch) with its weights, and its
 *  normaliser. Every tensor's shape is checked against the model. */
cv_net *cv_checkpoint_load(const char *path, int max_batch, cv_normalizer *nz, cv_err *err);

#endif
