#!/usr/bin/env bash
# --reproducible: byte-identical weights for 1, 2 and 4 ranks and for 1 and 2 threads, and a
# clear error for a rank count it cannot serve.   usage: e2e_reproducible.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
weights() { for ds in layers/01_dense/kernel layers/03_dense/kernel layers/03_dense/bias; do h5dump -d "$ds" "$1" | tail -n +3; done; }

awk 'BEGIN { srand(5); print "x1,x2,x3,x4,label";
  for (i = 0; i < 1000; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > m.model <<'M'
input    shape=4 normalize=standardize
dense    units=32 activation=tanh
dropout  rate=0.1
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=3 batch_size=48 validation_split=0.1 seed=4
M
# batch 48 does not divide the 900 training rows: the short last batch is covered too
"$convoy" train m.model --data d.h5 --quiet --reproducible --threads 1 --checkpoint t1.h5 || fail "1 thread"
"$convoy" train m.model --data d.h5 --quiet --reproducible --threads 2 --checkpoint t2.h5 || fail "2 threads"
[[ "$(weights t1.h5)" == "$(weights t2.h5)" ]] || fail "1 and 2 threads differ"
for p in 2 4; do
    mpirun -np $p --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train m.model --data d.h5 --quiet \
        --reproducible --checkpoint r$p.h5 || fail "$p ranks"
    [[ "$(weights t1.h5)" == "$(weights r$p.h5)" ]] || fail "$p ranks differ from 1"
done
mpirun -np 3 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train m.model --data d.h5 --quiet \
    --reproducible > o.txt 2> e.txt && fail "3 ranks accepted"
grep -q "reproducible needs a power-of-two rank count" e.txt || fail "3 ranks message: $(cat e.txt)"

[[ $fails -eq 0 ]] && echo "e2e_reproducible: all passed"
exit $((fails > 0))
