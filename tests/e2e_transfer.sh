#!/usr/bin/env bash
# Transfer learning from the command line: a model file with `base checkpoint=F upto=N
# trainable=false` (F relative to the model file), frozen weights byte-identical after training
# on 1 and 2 ranks (bucketed allreduce of the trainable gradients only), exact resume, stage two
# with --init-from and --fine-tune-last, summary counts and the errors.
#   usage: e2e_transfer.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir/models" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
dump() { for ds in "${@:2}"; do h5dump -d "$ds" "$1" | tail -n +3; done; }
expect_err() { local pat=$1; shift; "$@" > o.txt 2> e.txt; local rc=$?
    [[ $rc -ne 0 ]] || fail "'$*' succeeded"; grep -qE -- "$pat" e.txt || fail "'$*': $(cat e.txt)"; }

awk 'BEGIN { srand(7); print "x1,x2,x3,x4,label";
  for (i = 0; i < 1200; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > base.model <<'M'
input    shape=4
dense    units=16 activation=relu
dense    units=8 activation=relu
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=16 seed=3
M
"$convoy" train base.model --data d.h5 --quiet --threads 1 --checkpoint models/base.h5 || fail "pretrain"
cat > models/head.model <<'M'
base     checkpoint=base.h5 upto=2 trainable=false
dense    units=6 activation=relu
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=4 batch_size=16 seed=5
M
base_layers=(layers/01_dense/kernel layers/01_dense/bias layers/02_dense/kernel layers/02_dense/bias)
head_layers=(layers/03_dense/kernel layers/04_dense/kernel optimizer/s1 optimizer/s2)

# the checkpoint path is relative to the model file's folder, not the working directory
"$convoy" summary models/head.model > sum.txt || fail "summary"
{ grep -q "^Trainable params: 75$" sum.txt && grep -q "^Non-trainable params: 216$" sum.txt; } ||
    fail "summary counts: $(tail -4 sum.txt)"
"$convoy" train models/head.model --data d.h5 --quiet --threads 1 --checkpoint straight.h5 || fail "head run"
[[ "$(dump models/base.h5 "${base_layers[@]}")" == "$(dump straight.h5 "${base_layers[@]}")" ]] ||
    fail "frozen base weights changed in training"
# the checkpoint stands alone: it evaluates and summarises without the base file
"$convoy" summary straight.h5 | grep "^Non-trainable params: 216$" >/dev/null || fail "checkpoint summary"
h5dump -d optimizer/s1 straight.h5 | grep "DATASPACE  SIMPLE { ( 75 ) / ( 75 ) }" >/dev/null ||
    fail "optimizer state is not sized for the 75 trainable parameters: $(h5dump -H -d optimizer/s1 straight.h5)"

# 2 ranks, gradients in buckets: same frozen weights, and --reproducible gives 1-rank bytes
mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train models/head.model --data d.h5 \
    --quiet --allreduce bucketed --bucket-mb 1 --checkpoint r2.h5 || fail "2 ranks"
[[ "$(dump models/base.h5 "${base_layers[@]}")" == "$(dump r2.h5 "${base_layers[@]}")" ]] ||
    fail "frozen base weights changed on 2 ranks"
"$convoy" train models/head.model --data d.h5 --quiet --threads 1 --reproducible --checkpoint p1.h5 || fail "repro 1"
mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train models/head.model --data d.h5 \
    --quiet --reproducible --checkpoint p2.h5 > o.txt 2>&1 || fail "repro 2 ranks: $(tail -3 o.txt)"
[[ "$(dump p1.h5 "${head_layers[@]}")" == "$(dump p2.h5 "${head_layers[@]}")" ]] || fail "1 and 2 ranks differ"

# exact resume: 2 epochs + 2 resumed equal 4 straight, optimizer state included
"$convoy" train models/head.model --data d.h5 --quiet --threads 1 --epochs 2 --checkpoint half.h5 || fail "half"
"$convoy" train models/head.model --data d.h5 --quiet --threads 1 --resume half.h5 --checkpoint resumed.h5 ||
    fail "resume"
[[ "$(dump straight.h5 "${head_layers[@]}")" == "$(dump resumed.h5 "${head_layers[@]}")" ]] ||
    fail "2 + resumed 2 epochs differ from 4 straight"

# stage two: unfreeze the last base layer with weights (layer 2), start from stage one's weights
"$convoy" train models/head.model --data d.h5 --quiet --threads 1 --epochs 2 --init-from straight.h5 \
    --fine-tune-last 1 --lr 0.001 --checkpoint ft.h5 || fail "fine-tune"
"$convoy" summary ft.h5 | grep "^Non-trainable params: 80$" >/dev/null || fail "fine-tuned summary: $(tail -4 sum.txt)"
[[ "$(dump straight.h5 layers/01_dense/kernel)" == "$(dump ft.h5 layers/01_dense/kernel)" ]] ||
    fail "layer 1 moved while fine-tuning only the last base layer"
[[ "$(dump straight.h5 layers/02_dense/kernel)" != "$(dump ft.h5 layers/02_dense/kernel)" ]] ||
    fail "layer 2 did not learn with --fine-tune-last 1"
sed 's/seed=5/seed=5 fine_tune_last=1/' models/head.model > models/ft.model
"$convoy" summary models/ft.model | grep "^Trainable params: 211$" >/dev/null || fail "fit fine_tune_last=1 summary"

# errors name the file and line
expect_err "^convoy: --fine-tune-last: fine_tune_last=3 but the base \(upto=2\) has only 2 layers with weights" \
    "$convoy" train models/head.model --data d.h5 --fine-tune-last 3
expect_err "half.h5: layer 2 \(dense\) is frozen in the checkpoint but trainable in models/head.model:1" \
    "$convoy" train models/head.model --data d.h5 --resume half.h5 --fine-tune-last 1
sed 's/upto=2/upto=9/' models/head.model > models/bad.model
expect_err "^convoy: models/bad.model:1: upto=9 is out of range: the model in models/base.h5 has 3 layers after its input" \
    "$convoy" train models/bad.model --data d.h5
sed 's/base.h5/missing.h5/' models/head.model > models/bad.model
expect_err "^convoy: models/bad.model:1: base checkpoint: models/missing.h5" "$convoy" summary models/bad.model
printf 'base checkpoint=base.h5 upto=1\nflatten\ndense units=3 activation=softmax\ncompile loss=mse\n' > models/bad.model
"$convoy" summary models/bad.model > /dev/null || fail "flatten of a flat base output is allowed"
printf 'base checkpoint=base.h5 upto=1\nmaxpool2d pool=2\nflatten\ndense units=3 activation=softmax\ncompile loss=mse\n' \
    > models/bad.model
expect_err "^convoy: models/bad.model:2: maxpool2d needs an \(H,W,C\) input; got \(16\) \(its input is the output \(16\) of base upto=1 on line 1\)" \
    "$convoy" summary models/bad.model

[[ $fails -eq 0 ]] && echo "e2e_transfer: all passed"
exit $((fails > 0))
