#!/usr/bin/env bash
# Residual blocks from the command line: the example ResNet-20 counts the paper's parameters,
# trains on 1 and 2 ranks to the same losses (synchronised batch statistics), its checkpoint
# evaluates and predicts; the VGG-BN example trains; the model-file errors of blocks.
#   usage: e2e_resnet.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
mpi() { mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np "$@"; }
"$convoy" summary "$src/launch/models/cifar10-resnet20.model" > summary.txt || fail "summary"
grep -q "^Trainable params: 269,722" summary.txt || fail "ResNet-20 should have 269,722 trainable parameters: $(tail -5 summary.txt)"
grep -q "^Non-trainable params: 1,376" summary.txt || fail "ResNet-20's moving statistics: $(tail -5 summary.txt)"
[[ $(grep -c "^ add" summary.txt) -eq 9 && $(grep -c "^ residual" summary.txt) -eq 9 ]] || fail "summary shows 9 blocks"
# CIFAR-10's binary layout (a label byte, then 3072 pixel bytes) with random pixels: 5 training
# batches of 26 images and a test batch, converted as the real one is
mkdir -p cifar && printf 'c%d\n' 0 1 2 3 4 5 6 7 8 9 > cifar/batches.meta.txt
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
    for i in $(seq 0 25); do printf "\\x$(printf %02x $((i % 10)))"; head -c 3072 /dev/urandom; done > "cifar/$f.bin"
done
"$convoy" convert cifar10 cifar --out c10 >/dev/null 2>err.txt || fail "convert: $(cat err.txt)"
# a small learning rate: 2 ranks are 1 rank to rounding (a large one magnifies the rounding)
{ grep -v '^#' "$src/launch/models/cifar10-resnet20.model" | grep -v '^fit\|^compile\|^augment' | grep .
  echo "compile optimizer=sgd learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy"
  echo "fit epochs=1 batch_size=64 shuffle=false"; } > r20.model
"$convoy" train r20.model --data c10/train.h5 --checkpoint one.h5 > one.txt || fail "train ResNet-20"
mpi 2 "$convoy" train r20.model --data c10/train.h5 --checkpoint two.h5 > two.txt || fail "train ResNet-20 on 2 ranks"
l1=$(grep -o "loss [0-9.]*" one.txt) l2=$(grep -o "loss [0-9.]*" two.txt)
[[ -n $l1 && $l1 == "$l2" ]] || fail "ResNet-20: 1 rank $l1, 2 ranks $l2"
near 1e-4 one.h5 two.h5 /layers >/dev/null || fail "ResNet-20: 2 ranks' weights differ from 1 rank's"
# --reproducible: byte for byte at 1, 2 and 3 ranks (steps of 2 leaves of 32 and a last one of 2
# samples; 3 ranks: one without a leaf in every step), at 1 and 2 threads
"$convoy" train r20.model --data c10/train.h5 --reproducible --checkpoint rep1.h5 --quiet || fail "ResNet-20 --reproducible"
OMP_NUM_THREADS=1 "$convoy" train r20.model --data c10/train.h5 --reproducible --checkpoint rep1t.h5 --quiet || fail "1 thread"
same rep1.h5 rep1t.h5 || fail "ResNet-20 --reproducible: 1 thread differs from 2"
for p in 2 3; do
    mpi $p "$convoy" train r20.model --data c10/train.h5 --reproducible --checkpoint rep$p.h5 --quiet || fail "$p ranks"
    same rep1.h5 rep$p.h5 || fail "ResNet-20 --reproducible: $p ranks differ from 1"
done
"$convoy" eval one.h5 --data c10/train.h5 >/dev/null || fail "eval ResNet-20"
"$convoy" predict one.h5 --data c10/train.h5 --out p.csv >/dev/null && [[ $(wc -l < p.csv) -eq 131 ]] || fail "predict ResNet-20"
{ grep -v '^#' "$src/launch/models/cifar10-vgg-bn.model" | grep -v '^fit\|^augment' | grep .; echo "fit epochs=1 batch_size=32"; } > vgg.model
mpi 2 "$convoy" train vgg.model --data c10/train.h5 --quiet || fail "train VGG-BN on 2 ranks"
head() { printf 'input shape=8,8,3\nconv2d filters=4 kernel=3 padding=same\n'; }
tail_() { printf 'flatten\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n'; }
# the blocks' model-file errors: the lines between head and tail_, and the message expected
while IFS='|' read -r n lines want; do
    # shellcheck disable=SC2059  # the lines are a printf format: their \n are line breaks
    { head; printf "$lines"; tail_; } > "e$n.model"
    expect 1 "e$n.model:$want" -- "$convoy" summary "e$n.model"
done <<'CASES'
1|end\n|3: .end. without a .residual. block to close
2|residual\nconv2d filters=4 kernel=3 padding=same\n|3: this residual block has no .end.
3|residual\nend\n|4: empty residual block
4|residual\nconv2d filters=2 kernel=3 padding=same\nend\n|5: end: .*fewer channels.*shortcut=projection
5|residual\nconv2d filters=4 kernel=3\nend\n|5: end: the block takes \(8, 8, 4\) to \(6, 6, 4\)
6|residual\nconv2d filters=4 kernel=3 padding=same\nend init=zeros\n|5: init= on .end. applies to a projection shortcut
CASES
{ head; printf 'residual shortcut=projection\nconv2d filters=2 kernel=3 padding=same\nend\n'; tail_; } > ok.model
"$convoy" summary ok.model | grep "add (Add) *(None, 8, 8, 2) *10" >/dev/null || fail "projection shortcut's 1x1 conv: 4*2+2 params"
exit $((fails > 0))
