#!/usr/bin/env bash
# --reproducible: byte-identical weights, optimizer state and callback state (the metrics they
# monitor) for 1, 2, 3, 5 and 6 ranks and for 1, 2 and 3 threads, at global batches that divide neither the data nor the rank counts (an
# MLP and fmnist-cnn's layers), and a checkpoint written by 2 ranks resumes on 1 and on 3 ranks
# to the same bytes as the run that never stopped. With CONVOY_E2E_QUICK=1 (the sanitizer
# build): 1, 2 and 3 ranks.   usage: e2e_reproducible.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1

awk 'BEGIN { srand(5); print "x1,x2,x3,x4,label";
  for (i = 0; i < 1000; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
# batch 100 over 900 training rows: 9 steps of 4 leaves (25 rows each)
cat > mlp.model <<'M'
input    shape=4 normalize=standardize
dense    units=32 activation=tanh
dropout  rate=0.1
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=3 batch_size=100 validation_split=0.1 seed=4 early_stopping_patience=9 reduce_lr_patience=9
M
"$convoy" convert fashion-mnist --classes 0,1,2,3,4,5,6,7,8,9 --per-class 25 --out fm >/dev/null || fail "convert fm"
# batch 70 over 225 training rows: steps of 3 leaves (23-24 rows) and a short last one of 15
fmnist_cnn "fit epochs=2 batch_size=70 validation_split=0.1 seed=3 early_stopping_patience=9 reduce_lr_patience=9" > cnn.model
ranks=(2 3 5 6)
[[ ${CONVOY_E2E_QUICK:-0} == 1 ]] && ranks=(2 3)
mpi() { local p=$1; shift; mpirun -np "$p" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" "$@"; }
for m in mlp cnn; do
    data=d.h5
    [[ $m == cnn ]] && data=fm/train.h5
    for t in 1 2 3; do
        "$convoy" train $m.model --data $data --quiet --reproducible --threads $t --checkpoint $m-t$t.h5 || fail "$m: $t threads"
    done
    same $m-t1.h5 $m-t2.h5 || fail "$m: 1 and 2 threads differ"
    same $m-t1.h5 $m-t3.h5 || fail "$m: 1 and 3 threads differ"
    for p in "${ranks[@]}"; do
        mpi $p train $m.model --data $data --quiet --reproducible --checkpoint $m-r$p.h5 || fail "$m: $p ranks"
        same $m-t1.h5 $m-r$p.h5 || fail "$m: $p ranks differ from 1"
        # the callbacks' state too: the best val_loss and loss they compare, to the last bit
        h5diff -q $m-t1.h5 $m-r$p.h5 /train /train || fail "$m: $p ranks: the callbacks saw other metric values"
    done
done
# 2 ranks x 2 threads too
mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=2 "$convoy" train cnn.model --data fm/train.h5 --quiet \
    --reproducible --checkpoint cnn-r2t2.h5 || fail "cnn: 2 ranks x 2 threads"
same cnn-t1.h5 cnn-r2t2.h5 || fail "cnn: 2 ranks x 2 threads differ from 1 x 1"

# another rank count on resume: 1 epoch on 2 ranks, then the second on 1 and on 3 ranks
mpi 2 train cnn.model --data fm/train.h5 --quiet --reproducible --epochs 1 --checkpoint half.h5 || fail "1 epoch on 2 ranks"
cp half.h5 half-copy.h5
"$convoy" train cnn.model --data fm/train.h5 --quiet --reproducible --resume half.h5 --checkpoint on1.h5 ||
    fail "resume on 1 rank"
same cnn-t1.h5 on1.h5 || fail "2 ranks, then resumed on 1, differs from the run that never stopped"
mpi 3 train cnn.model --data fm/train.h5 --quiet --reproducible --resume half-copy.h5 --checkpoint on3.h5 ||
    fail "resume on 3 ranks"
same cnn-t1.h5 on3.h5 || fail "2 ranks, then resumed on 3, differs from the run that never stopped"

# without --reproducible the same math to float rounding: 3 ranks against 1
mpi 3 train cnn.model --data fm/train.h5 --quiet --checkpoint plain3.h5 || fail "3 ranks without --reproducible"
"$convoy" train cnn.model --data fm/train.h5 --quiet --checkpoint plain1.h5 || fail "1 rank without --reproducible"
# (an absolute bound: the weights are ~0.1, and a relative one flags weights near zero, which
# Adam's normalised steps leave at a few 1e-5 apart after 2 epochs of rounding differences)
near 1e-3 plain1.h5 plain3.h5 /layers || fail "3 ranks and 1 rank differ by more than rounding"

[[ $fails -eq 0 ]] && echo "e2e_reproducible: all passed"
exit $((fails > 0))
