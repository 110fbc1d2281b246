#!/usr/bin/env bash
# --precision bf16 (issue 28): the rules of the math inside the mode — with --reproducible the
# same bytes at 1 and 2 threads and on 2 ranks, an exact resume, the model file's `fit
# precision=bf16` the same run as the flag — and bf16 really changes the products (not fp32's
# checkpoint); eval and predict take the flag; ranks that differ in it are stopped with the
# difference named; the refusals (a CPU or CONVOY_GEMM without AVX512_BF16, an unknown value,
# the model file's key). On a CPU without AVX512_BF16 the bf16 runs are CONVOY_BF16=emulate's,
# the same arithmetic.   usage: e2e_bf16.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"
e2e_start "$@"

if ! "$convoy" --version | grep '^  bf16: *--precision bf16 on AVX512_BF16' >/dev/null; then
    echo "this CPU has no AVX512_BF16: the bf16 runs below are emulated (CONVOY_BF16=emulate)"
    export CONVOY_BF16=emulate
fi
# 20 images a class (8 in the sanitizer build, CONVOY_E2E_QUICK=1: its training runs are ~10x slower)
per=20
[[ ${CONVOY_E2E_QUICK:-0} == 1 ]] && per=8
"$convoy" convert fashion-mnist --classes 0,1,2,3,4,5,6,7,8,9 --per-class $per --out fm >/dev/null || fail "convert fm"
# every bf16 path: a 5x5 conv through im2col, a 1x1 (pointwise) conv, a stride-2 padded conv, dense
cat > m.model <<'M'
input     shape=28,28,1
conv2d    filters=8 kernel=3 activation=relu
conv2d    filters=16 kernel=5 padding=same activation=relu
conv2d    filters=8 kernel=1 activation=relu
conv2d    filters=16 kernel=3 stride=2 padding=1 activation=relu
maxpool2d pool=2
flatten
dense     units=32 activation=relu
dropout   rate=0.2
dense     units=10 activation=softmax
compile   optimizer=adam learning_rate=0.002 loss=sparse_categorical_crossentropy metrics=accuracy
fit       epochs=2 batch_size=50 validation_split=0.1 seed=3
M
sed 's/^fit .*/& precision=bf16/' m.model > m-bf16.model
run() { timeout -k 5 300 "$convoy" train "$@" --data fm/train.h5 --quiet; }
mpi() { timeout -k 5 300 mpirun -np "$1" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" "${@:2}"; }

run m.model --reproducible --threads 1 --checkpoint fp32.h5 || fail "fp32 run"
run m.model --reproducible --threads 1 --precision bf16 --checkpoint t1.h5 || fail "bf16, 1 thread"
run m.model --reproducible --threads 2 --precision bf16 --checkpoint t2.h5 || fail "bf16, 2 threads"
same t1.h5 t2.h5 || fail "bf16: 1 and 2 threads differ"
if command -v mpirun >/dev/null; then
    mpi 2 train m.model --data fm/train.h5 --quiet --reproducible --precision bf16 --checkpoint r2.h5 || fail "bf16, 2 ranks"
    same t1.h5 r2.h5 || fail "bf16: 2 ranks differ from 1 with --reproducible"
    # ranks that differ in the precision: stopped, the difference named
    timeout -k 10 60 mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 1 "$convoy" train m.model \
        --data fm/train.h5 --quiet --precision bf16 : -np 1 "$convoy" train m.model --data fm/train.h5 --quiet \
        >out.txt 2>err.txt
    rc=$?
    [[ $rc -eq 1 ]] || fail "ranks with and without --precision bf16: exit $rc, wanted 1"
    grep -qE "^convoy: rank 1's model file differs from rank 0's \(fit: .*precision=fp32 vs bf16" err.txt ||
        fail "ranks with and without --precision bf16: the difference is not named: $(grep '^convoy' err.txt)"
else
    echo "SKIP: no mpirun (the 2-rank cases)"
fi
same t1.h5 fp32.h5 && fail "bf16 gave fp32's checkpoint: its products did not run"
# the model file's key is the flag
run m-bf16.model --reproducible --threads 1 --checkpoint key.h5 || fail "fit precision=bf16"
same t1.h5 key.h5 || fail "fit precision=bf16 differs from --precision bf16"
# an exact resume: one epoch, then the second from its checkpoint
run m.model --precision bf16 --reproducible --epochs 1 --checkpoint half.h5 || fail "bf16, 1 epoch"
run m.model --precision bf16 --reproducible --resume half.h5 --checkpoint resumed.h5 || fail "bf16 resume"
same t1.h5 resumed.h5 || fail "bf16: 1 epoch + resume differs from 2 epochs"

# eval and predict in bf16: the same metrics to rounding (on the training rows: the 10,000 test
# images would be most of the script's time in the sanitizer build)
cv eval t1.h5 --data fm/train.h5 > e32.txt || fail "eval"
cv eval t1.h5 --data fm/train.h5 --precision bf16 > e16.txt || fail "eval --precision bf16"
acc32=$(sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' e32.txt) acc16=$(sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' e16.txt)
[[ -n $acc32 && -n $acc16 ]] || fail "eval printed no accuracy: $(cat e32.txt e16.txt)"
awk -v a="$acc32" -v b="$acc16" 'BEGIN { d = a - b; exit !(d < 0.05 && d > -0.05) }' ||
    fail "eval: bf16 accuracy $acc16 far from fp32's $acc32"
cv predict t1.h5 --data fm/train.h5 --precision bf16 --out p.csv >/dev/null || fail "predict --precision bf16"
[[ $(wc -l < p.csv) -ge $((per * 10)) ]] || fail "predict --precision bf16 wrote $(wc -l < p.csv) lines"

# refusals
expect 1 "^convoy: --precision bf16 needs .*CONVOY_BF16=emulate" -- \
    env -u CONVOY_BF16 CONVOY_GEMM=generic "$convoy" train m.model --data fm/train.h5 --precision bf16
expect 1 "^convoy: m-bf16.model:12: precision=bf16 needs .*CONVOY_BF16=emulate" -- \
    env -u CONVOY_BF16 CONVOY_GEMM=generic "$convoy" train m-bf16.model --data fm/train.h5
expect 2 "^convoy: --precision: 'fp16' is neither fp32 nor bf16" -- "$convoy" train m.model --data fm/train.h5 --precision fp16
expect 2 "^convoy: --precision: 'half' is neither fp32 nor bf16" -- "$convoy" eval t1.h5 --data fm/train.h5 --precision half
sed 's/^fit .*/& precision=fp16/' m.model > bad.model
expect 1 "^convoy: bad.model:12: .*precision.*fp16" -- "$convoy" train bad.model --data fm/train.h5

[[ $fails -eq 0 ]] && echo "e2e_bf16: all passed"
exit $((fails > 0))
