#!/usr/bin/env bash
# compile's metrics precision, recall, f1, auc and top-k accuracy end to end: their columns in the
# epoch line and the --log CSV (val_ ones too), the same values on 1 and 2 ranks with
# --reproducible (and in eval on 1 and 2 ranks), eval's precision/recall/f1 equal to the
# --confusion report's (an independent count), monitor=val_auc maximised by save_best_only and
# early stopping, a mid-epoch resume that keeps the counts, and the errors.
#   usage: e2e_metrics.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
mpi() { mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np "$@"; }
# the epoch lines without their timing ("  0.1s  52000 img/s")
lines() { grep '^epoch ' "$1" | sed -E 's/  [0-9.]+s  [0-9]+ img\/s$//'; }
# a CSV log's columns 1..N (seconds and images_per_s are the last two)
cols() { awk -F, -v n="$2" '{ s = $1; for (i = 2; i <= n; i++) s = s "," $i; print s }' "$1"; }

awk 'BEGIN { srand(11); print "a,b,c,d,label"; for (i = 0; i < 400; i++) { a = rand(); b = rand(); c = rand(); d = rand();
  k = (a + 0.5 * b + 0.4 * rand() > 1.0) ? 1 : 0; printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > bin.csv
awk 'BEGIN { srand(5); print "a,b,c,d,label"; for (i = 0; i < 480; i++) { a = rand(); b = rand(); c = rand(); d = rand();
  k = int(8 * (0.75 * a + 0.25 * rand())); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > multi.csv
"$convoy" convert csv bin.csv --label label --out bin.h5 >/dev/null || fail "convert bin"
"$convoy" convert csv multi.csv --label label --out multi.h5 >/dev/null || fail "convert multi"
binary() { printf 'input shape=4\ndense units=8 activation=relu\ndense units=1 activation=sigmoid\n'
           printf 'compile optimizer=adam learning_rate=0.03 loss=binary_crossentropy metrics=accuracy,precision,recall,f1,auc\n'
           printf 'fit batch_size=64 validation_split=0.25 seed=3 %s\n' "$1"; }
multi() { printf 'input shape=4\ndense units=16 activation=relu\ndense units=8 activation=softmax\n'
          printf 'compile optimizer=adam learning_rate=0.03 loss=sparse_categorical_crossentropy '
          printf 'metrics=accuracy,top_k_categorical_accuracy,precision,recall,f1\n'
          printf 'fit batch_size=96 validation_split=0.25 seed=4 %s\n' "$1"; }
binary "epochs=3" > bin.model
multi "epochs=3" > multi.model

# ---- the columns, and 1 rank = 2 ranks ----------------------------------------------------
"$convoy" train bin.model --data bin.h5 --reproducible --log b1.csv --checkpoint b1.h5 > b1.out || fail "train binary"
mpi 2 "$convoy" train bin.model --data bin.h5 --reproducible --log b2.csv --checkpoint b2.h5 > b2.out ||
    fail "train binary, 2 ranks"
[[ $(head -1 b1.csv) == "epoch,lr,loss,accuracy,precision,recall,f1,auc,val_loss,val_accuracy,val_precision,val_recall,val_f1,val_auc,seconds,images_per_s" ]] ||
    fail "binary log header: $(head -1 b1.csv)"
[[ $(wc -l < b1.csv) -eq 4 ]] || fail "binary log: $(wc -l < b1.csv) lines, wanted a header and 3 epochs"
grep -qE '^epoch 3/3  loss [0-9.]+  accuracy [0-9.]+  precision [0-9.]+  recall [0-9.]+  f1 [0-9.]+  auc [0-9.]+  val_loss [0-9.]+  val_accuracy [0-9.]+  val_precision [0-9.]+  val_recall [0-9.]+  val_f1 [0-9.]+  val_auc [0-9.]+  ' b1.out ||
    fail "binary epoch line: $(grep '^epoch 3' b1.out)"
[[ "$(cols b1.csv 14)" == "$(cols b2.csv 14)" ]] || fail "binary: the log's metrics differ on 2 ranks: $(diff <(cols b1.csv 14) <(cols b2.csv 14))"
[[ "$(lines b1.out)" == "$(lines b2.out)" ]] || fail "binary: the epoch lines differ on 2 ranks: $(diff <(lines b1.out) <(lines b2.out))"
same b1.h5 b2.h5 || fail "binary: 2 ranks' weights differ from 1 rank's with --reproducible"
# a run that learned something: the last epoch's val_auc above chance
awk -F, 'NR == 4 && !($14 > 0.6) { exit 1 }' b1.csv || fail "binary: val_auc $(awk -F, 'NR == 4 { print $14 }' b1.csv) <= 0.6"

"$convoy" train multi.model --data multi.h5 --reproducible --log m1.csv --checkpoint m1.h5 > m1.out || fail "train multi"
mpi 2 "$convoy" train multi.model --data multi.h5 --reproducible --log m2.csv --checkpoint m2.h5 > m2.out ||
    fail "train multi, 2 ranks"
[[ $(head -1 m1.csv) == "epoch,lr,loss,accuracy,top_k_categorical_accuracy,precision,recall,f1,val_loss,val_accuracy,val_top_k_categorical_accuracy,val_precision,val_recall,val_f1,seconds,images_per_s" ]] ||
    fail "multi log header: $(head -1 m1.csv)"
[[ "$(cols m1.csv 14)" == "$(cols m2.csv 14)" ]] || fail "multi: the log's metrics differ on 2 ranks: $(diff <(cols m1.csv 14) <(cols m2.csv 14))"
[[ "$(lines m1.out)" == "$(lines m2.out)" ]] || fail "multi: the epoch lines differ on 2 ranks"
# top-5 of 8 classes holds at least every top-1 hit
awk -F, 'NR > 1 && !($5 >= $4 && $11 >= $10) { exit 1 }' m1.csv || fail "multi: top-k accuracy below accuracy: $(cat m1.csv)"

# without --reproducible the counts are summed over the ranks at the epoch's end: at lr 0 from
# b1.h5's weights every rank count sees the same outputs, so the count metrics are identical
"$convoy" train bin.model --data bin.h5 --init-from b1.h5 --lr 0 --log z1.csv --quiet || fail "train lr 0"
mpi 3 "$convoy" train bin.model --data bin.h5 --init-from b1.h5 --lr 0 --log z3.csv --quiet || fail "train lr 0, 3 ranks"
[[ "$(cut -d, -f1,4-8,10-14 z1.csv)" == "$(cut -d, -f1,4-8,10-14 z3.csv)" ]] ||
    fail "lr 0: the count metrics differ on 3 ranks: $(diff <(cut -d, -f1,4-8,10-14 z1.csv) <(cut -d, -f1,4-8,10-14 z3.csv))"
awk -F, 'NR > 1 && !($5 > 0 && $6 > 0 && $8 > 0.6) { exit 1 }' z1.csv || fail "lr 0: a trained model's metrics: $(cat z1.csv)"

# ---- eval: the metrics, 1 rank = 2 ranks, and the confusion report's own counts agree ------
"$convoy" eval b1.h5 --data bin.h5 > e1.out || fail "eval binary"
mpi 2 "$convoy" eval b1.h5 --data bin.h5 > e2.out || fail "eval binary, 2 ranks"
grep -qE '^loss [0-9.]+  accuracy [0-9.]+  precision [0-9.]+  recall [0-9.]+  f1 [0-9.]+  auc [0-9.]+  \(400 samples\)$' e1.out ||
    fail "eval binary line: $(cat e1.out)"
cmp -s e1.out e2.out || fail "eval binary: 2 ranks print $(cat e2.out), 1 rank $(cat e1.out)"
"$convoy" eval b1.h5 --data bin.h5 --confusion > c1.out || fail "eval --confusion binary"
# binary: precision, recall and f1 are the positive class's, the report's row of class 1
want=$(awk '$1 == "1" && NF == 5 { print $2, $3, $4 }' c1.out)
got=$(awk '{ print $6, $8, $10 }' e1.out)
[[ -n $want && $want == "$got" ]] || fail "binary: eval's precision recall f1 '$got', the confusion report's class 1 '$want'"

"$convoy" eval m1.h5 --data multi.h5 --confusion > c2.out || fail "eval --confusion multi"
mpi 2 "$convoy" eval m1.h5 --data multi.h5 > e3.out || fail "eval multi, 2 ranks"
# multi-class: the macro averages over all 8 classes, the report's "macro avg" row
want=$(awk '$1 == "macro" { print $3, $4, $5 }' c2.out)
got=$(awk 'NR == 1 { print $8, $10, $12 }' c2.out)
[[ -n $want && $want == "$got" ]] || fail "multi: eval's macro precision recall f1 '$got', the confusion report's '$want'"
[[ $(head -1 c2.out) == "$(cat e3.out)" ]] || fail "eval multi: 2 ranks print $(cat e3.out), 1 rank $(head -1 c2.out)"

# ---- monitor=val_auc: maximised ----------------------------------------------------------
# save_best_only writes on each new highest val_auc; early stopping (min_delta 0.01, patience 2)
# keeps the best epoch as Keras does; both recomputed here from the log's val_auc column
binary "epochs=30 monitor=val_auc early_stopping_patience=2 min_delta=0.01 save_best_only=true" > es.model
"$convoy" train es.model --data bin.h5 --lr 0.05 --log es.csv --checkpoint es.h5 > es.out || fail "train monitor=val_auc"
saves=$(awk '/^saved es.h5 \(best val_auc so far\)$/ { print n } /^epoch / { n = $2 + 0 }' es.out | tr '\n' ' ')
want=$(awk -F, 'NR > 1 && (best == "" || $14 > best) { best = $14; printf "%d ", $1 }' es.csv)
[[ -n $saves && $saves == "$want" ]] || fail "save_best_only on val_auc saved after epochs '$saves', the highest val_auc came at '$want'"
want=$(awk -F, 'NR > 1 { if (best == "" || $14 > best + 0.01) { best = $14; at = $1; wait = 0 }
                         else if (++wait >= 2) { printf "early stopping after epoch %d (best epoch %d)", $1, at; exit } }' es.csv)
got=$(grep '^early stopping' es.out)
[[ -n $want && $got == "$want" ]] || fail "early stopping on val_auc: '$got', the log's val_auc gives '$want'"

# ---- tune --objective val_auc: maximised, and its value the epochs' best ---------------------
cat > t.model <<'M'
input shape=4
dense units=8 activation=relu
dense units=1 activation=sigmoid
compile optimizer=adam learning_rate=hp.float(1e-3,1e-1,log,name=lr) loss=binary_crossentropy metrics=accuracy,auc
fit epochs=4 batch_size=64 validation_split=0.25 seed=3
M
"$convoy" tune t.model --data bin.h5 --max-trials 3 --seed 2 --objective val_auc --dir T > t.out || fail "tune --objective val_auc"
grep -q "objective val_auc (max)" t.out || fail "tune: val_auc not maximised: $(head -1 t.out)"
top=$(awk '/^trial [0-9]+ \(of 3\)/ && $NF ~ /s\)$/ { v = $(NF - 1); if (top == "" || v > top) top = v } END { print top }' t.out)
grep -q "^best: trial [0-9]*, val_auc $top;" t.out || fail "tune: the best trial is not the highest val_auc ($top): $(cat t.out)"
# best.model retrained (the same values and seed): its best epoch's val_auc is the trial's objective
"$convoy" train T/best.model --data bin.h5 --quiet --log tb.csv || fail "train best.model"
want=$(sed -n 's/.*(val_auc \([0-9.]*\);.*/\1/p' T/best.model)
got=$(awk -F, 'NR > 1 && (m == "" || $8 > m) { m = $8 } END { print m }' tb.csv)
[[ -n $want && $want == "$got" ]] || fail "tune: the trial's val_auc $want, its best epoch's $got"

# ---- a mid-epoch resume keeps the epoch's counts ------------------------------------------
binary "epochs=2" > r.model
"$convoy" train r.model --data bin.h5 --reproducible --log r0.csv --quiet || fail "train uninterrupted"
# 2 ranks, rank 0 killed after its first save (step 2 of 5): every rank resumes with the sums
CONVOY_KILL_AFTER_SAVE=1 mpi 2 -x CONVOY_KILL_AFTER_SAVE "$convoy" train r.model --data bin.h5 --reproducible \
    --log r1.csv --quiet --checkpoint r.h5 --checkpoint-every 2 >/dev/null 2>&1 && fail "the run meant to be killed finished"
mpi 2 "$convoy" train r.model --data bin.h5 --reproducible --log r1.csv --quiet --checkpoint r.h5 --resume r.h5 ||
    fail "resume mid-epoch"
[[ "$(cols r0.csv 14)" == "$(cols r1.csv 14)" ]] || fail "resumed mid-epoch: the log differs: $(diff <(cols r0.csv 14) <(cols r1.csv 14))"

# ---- every metric at once: the epoch line, --plot's history and `convoy plot` of the log -----
sed 's/metrics=.*/metrics=accuracy,mae,mse,top_k_categorical_accuracy,sparse_top_k_categorical_accuracy,precision,recall,f1/' \
    multi.model > all.model
"$convoy" train all.model --data multi.h5 --log all.csv --plot all.svg > all.out || fail "train every metric with --plot"
[[ $(head -1 all.csv | tr ',' '\n' | wc -l) -eq 22 ]] || fail "every metric: $(head -1 all.csv)"
grep -q '  val_sparse_top_k_categorical_accuracy [0-9.]*  val_precision ' all.out || fail "every metric's epoch line: $(cat all.out)"
"$convoy" plot all.csv --out all2.svg > /dev/null || fail "convoy plot of the log of every metric"
[[ -s all.svg && -s all2.svg ]] || fail "no SVG"

# ---- errors ----------------------------------------------------------------------------------
sed 's/metrics=.*/metrics=accuracy,auc/' multi.model > auc3.model
expect 1 "auc3.model:4: metrics=auc needs a binary classifier \(1 sigmoid output\), but the output layer \(line 3\) has 8 outputs" -- \
    "$convoy" train auc3.model --data multi.h5 --quiet
expect 2 "--monitor val_auc needs metrics=auc in the model file's compile \(line 4\)" -- \
    "$convoy" train multi.model --data multi.h5 --quiet --monitor val_auc
expect 2 "--monitor: unknown quantity 'val_f2'" -- "$convoy" train multi.model --data multi.h5 --quiet --monitor val_f2
exit $((fails > 0))
