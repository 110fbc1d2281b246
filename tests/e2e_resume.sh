#!/usr/bin/env bash
# Checkpoints and exact resume: straight vs resumed runs give byte-identical weights (after an
# epoch end, after SIGKILL at an arbitrary step, after SIGTERM), resuming on 2 ranks matches to
# float rounding, and mismatched resumes, a full disk and a diverging run fail cleanly without
# damaging the last checkpoint.   usage: e2e_resume.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
weights() { for ds in layers/01_dense/kernel layers/03_dense/kernel layers/03_dense/bias optimizer/s1 optimizer/s2; do
    h5dump -d "$ds" "$1" | tail -n +3; done; }
same() { [[ "$(weights "$1")" == "$(weights "$2")" ]]; }

awk 'BEGIN { srand(11); print "x1,x2,x3,x4,label";
  for (i = 0; i < 9000; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > m.model <<'M'
input    shape=4 normalize=standardize
dense    units=64 activation=relu
dropout  rate=0.2
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=6 batch_size=8 validation_split=0.1 seed=5 early_stopping_patience=50 reduce_lr_patience=2
M
train() { "$convoy" train m.model --data d.h5 --quiet --threads 1 "$@"; }

train --checkpoint straight.h5 || fail "straight run"
# signals arrive once the first epoch's checkpoint exists (start-up is over), a moment later:
# mid-epoch, at no step chosen by the test
wait_for() { for _ in $(seq 1200); do [[ -f $1 ]] && return 0; sleep 0.05; done; return 1; }
# epoch boundary: 3 epochs, then resume to 6
train --epochs 3 --checkpoint half.h5 || fail "3 epochs"
cp half.h5 half-copy.h5
train --resume half.h5 --checkpoint resumed.h5 || fail "resume to 6 epochs"
same straight.h5 resumed.h5 || fail "3 + resume 3 epochs differs from 6 straight"

# --log: the resumed run's history equals the straight run's (timing columns aside), and resuming
# from an earlier checkpoint drops the rows after it instead of duplicating them
train --checkpoint logged.h5 --log straight.csv || fail "logged straight run"
train --epochs 3 --checkpoint logged3.h5 --log resumed.csv || fail "logged 3 epochs"
cp logged3.h5 logged3-copy.h5
train --resume logged3.h5 --checkpoint logged3.h5 --log resumed.csv || fail "logged resume"
[[ "$(cut -d, -f1-6 straight.csv)" == "$(cut -d, -f1-6 resumed.csv)" ]] ||
    fail "resumed history differs: $(diff <(cut -d, -f1-6 straight.csv) <(cut -d, -f1-6 resumed.csv))"
train --resume logged3-copy.h5 --checkpoint logged3-copy.h5 --log resumed.csv || fail "second resume"
[[ $(grep -c . resumed.csv) -eq 7 ]] || fail "history after a resume from epoch 3: $(cat resumed.csv)"
head -1 straight.csv | grep "^epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds,images_per_s$" >/dev/null ||
    fail "history header: $(head -1 straight.csv)"

# SIGKILL at an arbitrary step, resume from the last (mid-epoch) checkpoint
# (the binary itself in the background, not a shell function: $! must be convoy's pid)
"$convoy" train m.model --data d.h5 --quiet --threads 1 --checkpoint killed.h5 --checkpoint-every 37 &
pid=$!
wait_for killed.h5
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
[[ -f killed.h5 ]] || fail "no checkpoint before the kill"
ls ./*.tmp.* >/dev/null 2>&1 && rm -f ./*.tmp.*   # a kill during a save leaves only a temporary
at=$(h5dump -a epoch killed.h5 | awk '/\(0\)/ {print $2}')
[[ -n $at && $at -lt 6 ]] || fail "the kill came too late to test anything (epoch $at)"
train --resume killed.h5 --checkpoint killed.h5 || fail "resume after SIGKILL"
same straight.h5 killed.h5 || fail "killed at epoch $at and resumed differs from straight"

# SIGTERM: finish the step, save, exit 75 (EX_TEMPFAIL: interrupted) saying how to resume
"$convoy" train m.model --data d.h5 --threads 1 --checkpoint term.h5 --checkpoint-every 500 > term.out 2>&1 &
pid=$!
wait_for term.h5
kill -TERM $pid
wait $pid
rc=$?
[[ $rc -eq 75 ]] || fail "SIGTERM: exit $rc, wanted 75: $(tail -2 term.out)"
grep -q "interrupted: stopped after step .* --resume term.h5" term.out || fail "SIGTERM message: $(tail -2 term.out)"
train --resume term.h5 --checkpoint term.h5 || fail "resume after SIGTERM"
same straight.h5 term.h5 || fail "SIGTERM + resume differs from straight"

# another rank count: the same run to float rounding
if command -v mpirun >/dev/null; then
    mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train m.model --data d.h5 --quiet \
        --resume half-copy.h5 --checkpoint two.h5 || fail "resume on 2 ranks"
    a=$("$convoy" eval straight.h5 --data d.h5 | awk '{print $2}')
    b=$("$convoy" eval two.h5 --data d.h5 | awk '{print $2}')
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 1e-3 && d > -1e-3) }' || fail "2-rank resume: loss $b vs $a"
fi

# mismatches: one-line errors, exit 1
expect_err() { local pat=$1; shift; "$@" > o.txt 2> e.txt; local rc=$?
    [[ $rc -eq 1 ]] || fail "'$*' exit $rc: $(cat e.txt)"; grep -qE -- "$pat" e.txt || fail "'$*': $(cat e.txt)"; }
sed 's/units=64/units=32/' m.model > other.model
expect_err "half-copy.h5: checkpoint of another architecture: layer 1 is dense \(64\) in the checkpoint but dense \(32\) in other.model:2" \
    "$convoy" train other.model --data d.h5 --resume half-copy.h5
expect_err "holds adam state but this run uses sgd" "$convoy" train m.model --data d.h5 --resume half-copy.h5 --optimizer sgd
expect_err "saved by a run with batch 8" "$convoy" train m.model --data d.h5 --resume half-copy.h5 --batch-size 16
expect_err "half-copy.h5:/layers/01_dense/kernel: shape \(4,64\) but expected \(4,32\)" \
    "$convoy" train other.model --data d.h5 --init-from half-copy.h5 --epochs 1
train --init-from half-copy.h5 --epochs 1 || fail "--init-from with matching shapes"

# a full disk during a save (a file-size limit set on the running process, after MPI start-up
# made its own files): a one-line error, exit 1, no temporary left, and the checkpoint at the
# path is still a whole, loadable file
cat > big.model <<'M'
input    shape=4 normalize=standardize
dense    units=20000 activation=relu
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=30 batch_size=600
M
"$convoy" train big.model --data d.h5 --quiet --epochs 1 --checkpoint full.h5 || fail "big model"
"$convoy" train big.model --data d.h5 --checkpoint full.h5 > o.txt 2> e.txt &
pid=$!
for _ in $(seq 1200); do grep -q "^train:" o.txt 2>/dev/null && break; sleep 0.05; done # start-up is over
prlimit --pid $pid --fsize=100000
wait $pid
rc=$?
[[ $rc -eq 1 ]] || fail "disk full: exit $rc: $(cat e.txt)"
grep -q "^convoy: full.h5: cannot write (disk full or file size limit reached)$" e.txt || fail "disk full message: $(cat e.txt)"
ls ./*.tmp.* >/dev/null 2>&1 && fail "disk full left a temporary file"
"$convoy" eval full.h5 --data d.h5 > o.txt 2>&1 || fail "the checkpoint after a failed save is damaged: $(cat o.txt)"

# kills during saves: with a 2 MB checkpoint written every step, SIGKILL at random moments
# lands inside saves; the file at the path is always a whole checkpoint
for t in 0.9 1.3 1.7; do
    "$convoy" train big.model --data d.h5 --quiet --epochs 2 --checkpoint atomic.h5 --checkpoint-every 1 > /dev/null 2>&1 &
    pid=$!
    sleep "$t"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [[ -f atomic.h5 ]]; then
        "$convoy" eval atomic.h5 --data d.h5 > o.txt 2>&1 || fail "killed during saves: damaged checkpoint: $(cat o.txt)"
    fi
    rm -f ./atomic.h5.tmp.*
done

# callbacks in a run: early stopping with restore_best_weights, and save_best_only
cat > es.model <<'M'
input    shape=4 normalize=standardize
dense    units=64 activation=relu
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.3 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=40 batch_size=32 validation_split=0.3 seed=2 early_stopping_patience=2 restore_best_weights=true
M
"$convoy" train es.model --data d.h5 --threads 1 > es.out 2>&1 || fail "early stopping run: $(tail -2 es.out)"
grep -q "early stopping: restored the weights of epoch" es.out || fail "early stopping did not fire: $(tail -3 es.out)"
[[ $(grep -c "^epoch " es.out) -lt 40 ]] || fail "early stopping ran all 40 epochs"
"$convoy" train es.model --data d.h5 --threads 1 --epochs 6 --save-best-only --checkpoint best.h5 > sb.out 2>&1 ||
    fail "save-best-only run"
saves=$(grep -c "^saved best.h5 (best val_loss so far)" sb.out)
[[ $saves -ge 1 && $saves -le 6 ]] || fail "save-best-only wrote $saves times: $(cat sb.out)"

# divergence: stop-on-NaN names the step and layer and keeps the last good checkpoint
cp half-copy.h5 nan.h5
expect_err "loss became NaN/Inf at epoch 1, step [0-9]+: first non-finite values in layer [0-9], dense \(m.model:[0-9]\)" \
    "$convoy" train m.model --data d.h5 --optimizer sgd --lr 1e6 --checkpoint nan.h5
cmp -s nan.h5 half-copy.h5 || fail "the NaN run overwrote the last checkpoint"

[[ $fails -eq 0 ]] && echo "e2e_resume: all passed"
exit $((fails > 0))
