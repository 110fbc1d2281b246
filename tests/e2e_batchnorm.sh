#!/usr/bin/env bash
# Batchnorm from the command line, on the bn-gap fixture (tests/fixtures/bn-gap-reference.h5):
# one training step from the fixture's weights gives its weights and moving statistics after one
# Adam step, on 1 rank and with the 6 samples split 3 + 3 over 2 ranks (the statistics are the
# global batch's); the checkpoint's Keras names, summary's parameter counts, --resume, eval with
# the moving statistics, and the refusals.
#   usage: e2e_batchnorm.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
mpi() { mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np "$@"; }
fx=$src/tests/fixtures/bn-gap-reference.h5
h5copy -i "$fx" -o data.h5 -s /x -d /x && h5copy -i "$fx" -o data.h5 -s /y -d /y || fail "copy the fixture's data"
# the fixture's weights as a checkpoint's layers, for --init-from
for p in "conv_kernel 01_conv2d/kernel" "conv_bias 01_conv2d/bias" "bn_gamma 02_batchnorm/gamma" "bn_beta 02_batchnorm/beta" \
         "bn_moving_mean 02_batchnorm/moving_mean" "bn_moving_variance 02_batchnorm/moving_variance" \
         "dense_kernel 05_dense/kernel" "dense_bias 05_dense/bias"; do
    set -- $p
    h5copy -p -i "$fx" -o init.h5 -s "/weights/$1" -d "/layers/$2" || fail "copy $1"
done
model() { printf 'input shape=9,7,3\nconv2d filters=5 kernel=3,2 stride=1,2 padding=1,0\n'
          printf 'batchnorm momentum=0.99 epsilon=0.001 %s\nactivation relu\nglobalavgpool2d\ndense units=4\n' "${2:-}"
          printf 'compile optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy from_logits=true\n'
          printf 'fit epochs=%s batch_size=6 class_weight=1,2,0.5,1.5\n' "$1"; }
model 1 > bn.model
"$convoy" train bn.model --data data.h5 --init-from init.h5 --checkpoint one.h5 --quiet || fail "train 1 rank"
mpi 2 "$convoy" train bn.model --data data.h5 --init-from init.h5 --checkpoint two.h5 --quiet || fail "train 2 ranks"
for t in "01_conv2d/kernel conv_kernel" "01_conv2d/bias conv_bias" "02_batchnorm/gamma bn_gamma" "02_batchnorm/beta bn_beta" \
         "02_batchnorm/moving_mean bn_moving_mean" "02_batchnorm/moving_variance bn_moving_variance" \
         "05_dense/kernel dense_kernel" "05_dense/bias dense_bias"; do
    set -- $t
    near 1e-5 one.h5 "$fx" "/layers/$1" "/after_one_step/adam/$2" ||
        fail "1 rank: /layers/$1 differs from the fixture's after_one_step/adam/$2: $(h5diff -d 1e-5 one.h5 "$fx" "/layers/$1" "/after_one_step/adam/$2" | head -4)"
    near 1e-6 one.h5 two.h5 "/layers/$1" || fail "2 ranks (3 + 3 samples) differ from 1 rank in /layers/$1"
done
"$convoy" summary bn.model > summary.txt || fail "summary"
grep -q "batch_normalization (BatchNormalization) *(None, 9, 3, 5) *20" summary.txt || fail "summary row: $(cat summary.txt)"
grep -q "^Total params: 139" summary.txt && grep -q "^Trainable params: 129" summary.txt &&
    grep -q "^Non-trainable params: 10" summary.txt || fail "summary counts (Keras's: the moving statistics are non-trainable)"
# --resume carries the moving statistics: 2 epochs straight = 1 epoch, then 1 more
model 2 > bn2.model
"$convoy" train bn2.model --data data.h5 --init-from init.h5 --checkpoint straight.h5 --quiet || fail "train 2 epochs"
"$convoy" train bn2.model --data data.h5 --init-from init.h5 --checkpoint half.h5 --epochs 1 --quiet || fail "train 1 of 2"
"$convoy" train bn2.model --data data.h5 --resume half.h5 --checkpoint resumed.h5 --quiet || fail "resume"
same straight.h5 resumed.h5 || fail "resumed run differs from the straight one (moving statistics lost?)"
# eval uses the moving statistics: the same checkpoint evaluates the same on 1 and 2 ranks
"$convoy" eval one.h5 --data data.h5 > e1.txt || fail "eval"
mpi 2 "$convoy" eval one.h5 --data data.h5 > e2.txt || fail "eval 2 ranks"
diff e1.txt e2.txt >/dev/null || fail "eval differs on 2 ranks: $(cat e1.txt e2.txt)"
# a frozen batchnorm trains as in inference: its statistics stay the fixture's
model 1 "trainable=false" > frozen.model
"$convoy" train frozen.model --data data.h5 --init-from init.h5 --checkpoint frozen.h5 --quiet || fail "train frozen"
near 0 frozen.h5 "$fx" /layers/02_batchnorm/moving_mean /weights/bn_moving_mean || fail "a frozen batchnorm moved its statistics"
# transfer learning: a frozen base with a batchnorm runs it in inference mode; its statistics stay
printf 'base checkpoint=one.h5 upto=4 trainable=false\ndense units=4\n' > head.model
printf 'compile optimizer=adam loss=sparse_categorical_crossentropy from_logits=true\nfit epochs=2 batch_size=3\n' >> head.model
"$convoy" train head.model --data data.h5 --checkpoint head.h5 --quiet || fail "train a head on a frozen base with a batchnorm"
for t in moving_mean moving_variance gamma beta; do
    h5diff one.h5 head.h5 /layers/02_batchnorm/$t /layers/02_batchnorm/$t >/dev/null || fail "the frozen base's batchnorm $t changed"
done
h5diff one.h5 head.h5 /layers/05_dense/kernel /layers/05_dense/kernel >/dev/null 2>&1 && fail "the new head did not train"
# --reproducible: the same bytes on 1 and 2 ranks (one leaf of 6 samples: rank 0 has none and
# still takes its part in the statistics' sums, its moving statistics moving with rank 1's)
"$convoy" train bn2.model --data data.h5 --init-from init.h5 --reproducible --checkpoint r1.h5 --quiet || fail "reproducible"
mpi 2 "$convoy" train bn2.model --data data.h5 --init-from init.h5 --reproducible --checkpoint r2.h5 --quiet || fail "reproducible, 2 ranks"
same r1.h5 r2.h5 || fail "batchnorm --reproducible: 2 ranks differ from 1"
# stream stores: at 64 samples of 12x12x32 the outputs of the batchnorms, the residual end and the
# 32-filter Winograd convs (and their gradients) pass 1 MiB and go out by stream stores, at 32 a
# rank (and --reproducible's leaves of 32) they do not: the same bytes. And the end's fused ReLU,
# whose gradient pass streams, against the layers apart (CONVOY_FUSE=0: the end's gradient is
# copied by memcpy, the activation's by its own loop); a batchnorm whose normalisation the
# Winograd conv after it applies, or the identity end after it, and an end that takes the next
# block's residual sum: the same bytes as the layers apart
rand_data big.h5 128 12 12 3 float 4
{ printf 'input shape=12,12,3\nconv2d filters=32 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation relu\n'
  printf 'conv2d filters=32 kernel=3 padding=same use_bias=false\nbatchnorm\nactivation relu\n'
  printf 'residual\nconv2d filters=32 kernel=3 padding=same use_bias=false\nbatchnorm\nend\nactivation relu\n'
  printf 'residual\nconv2d filters=32 kernel=3 padding=same use_bias=false\nbatchnorm\nend\nactivation relu\n'
  printf 'conv2d filters=32 kernel=3 padding=same use_bias=false\nbatchnorm\nglobalavgpool2d\ndense units=4\n'
  printf 'compile optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy from_logits=true\n'
  printf 'fit epochs=2 batch_size=64\n'; } > big.model
"$convoy" train big.model --data big.h5 --reproducible --checkpoint s1.h5 --quiet || fail "reproducible, 64 a rank"
mpi 2 "$convoy" train big.model --data big.h5 --reproducible --checkpoint s2.h5 --quiet || fail "reproducible, 32 a rank"
same s1.h5 s2.h5 || fail "stream stores: 64 samples on 1 rank differ from 32 on each of 2"
"$convoy" train big.model --data big.h5 --checkpoint f1.h5 --quiet || fail "train, fused"
CONVOY_FUSE=0 "$convoy" train big.model --data big.h5 --checkpoint f0.h5 --quiet || fail "train, CONVOY_FUSE=0"
same f1.h5 f0.h5 || fail "stream stores: the fused ReLUs differ from the layers apart"
printf 'input shape=9,7,3\nbatchnorm momentum=1\ncompile loss=mse\n' > bad.model
expect 1 "bad.model:2: momentum must be in \[0, 1\), got 1" -- "$convoy" summary bad.model
exit $((fails > 0))
