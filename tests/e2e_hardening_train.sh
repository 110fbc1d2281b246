#!/usr/bin/env bash
# Bad-input cases of training (issue 23, "Wrong: accepted when it should be refused"): each is
# refused before anything trains or is written, with a one-line error that names the file, the
# rule and the fix.
#   usage: e2e_hardening_train.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
awk 'BEGIN { srand(5); print "a,b,label"; for (i = 0; i < 60; i++) printf "%.3f,%.3f,%d\n", rand(), rand(), i % 10 }' > ten.csv
"$convoy" convert csv ten.csv --label label --out ten.h5 >/dev/null || fail "convert"
head() { printf 'input shape=2\ndense units=8 activation=relu\n'; }
# case: binary_crossentropy over 10 sigmoid outputs with integer labels 0-9 (one class each)
{ head; printf 'dense units=10 activation=sigmoid\ncompile loss=binary_crossentropy\n'; } > bce.model
expect 1 "ten.h5:/y: binary_crossentropy with 10 outputs needs 10 0/1 targets.*use sparse_categorical_crossentropy" -- \
    "$convoy" train bce.model --data ten.h5 --checkpoint bce.h5
[[ ! -e bce.h5 ]] || fail "a refused run wrote its checkpoint"
# case: a softmax with mse against integer labels
{ head; printf 'dense units=10 activation=softmax\ncompile loss=mse\n'; } > mse.model
expect 1 "ten.h5:/y: mse compares 10 outputs with 10 float targets.*sparse_categorical_crossentropy" -- \
    "$convoy" train mse.model --data ten.h5
# (a single output with mse on integer labels is a regression on integers: still accepted)
{ head; printf 'dense units=1\ncompile loss=mse\nfit epochs=1\n'; } > reg.model
"$convoy" train reg.model --data ten.h5 --quiet || fail "mse on one output with integer targets was refused"
# case: a CSV label too large for a class index silently turned the task into regression
printf 'a,b,label\n1,2,0\n3,4,99999999999\n5,6,1\n' > big.csv
expect 1 "big.csv:3: column 'label': label 99999999999 is too large for a class .*pass --float" -- \
    "$convoy" convert csv big.csv --label label --out big.h5
[[ ! -e big.h5 ]] || fail "a refused convert wrote its output"
"$convoy" convert csv big.csv --label label --float --out bigf.h5 >/dev/null || fail "--float with a large target"
# case: early stopping / save-best watching a val_ metric without validation data
{ head; printf 'dense units=10 activation=softmax\ncompile loss=sparse_categorical_crossentropy metrics=accuracy\n'
  printf 'fit epochs=2 monitor=val_accuracy early_stopping_patience=1\n'; } > mon.model
expect 1 "mon.model: the callbacks monitor val_accuracy but there is no validation data.*monitor accuracy" -- \
    "$convoy" train mon.model --data ten.h5
# case: save_best_only watches val_loss (the default monitor) without validation data
{ head; printf 'dense units=10 activation=softmax\ncompile loss=sparse_categorical_crossentropy metrics=accuracy\n'
  printf 'fit epochs=2 save_best_only=true\n'; } > best.model
expect 1 "the callbacks monitor val_loss but there is no validation data" -- \
    "$convoy" train best.model --data ten.h5 --checkpoint best.h5
"$convoy" train best.model --data ten.h5 --val ten.h5 --checkpoint best.h5 --quiet || fail "save_best_only with --val"
sed 's/monitor=val_accuracy/monitor=accuracy/' mon.model > mon2.model
"$convoy" train mon2.model --data ten.h5 --quiet || fail "monitor=accuracy without validation data"
# case: --stream data truncated during the run (HDF5 reads zeros past a truncated end): the run
# stops with the file named and the last checkpoint kept
awk 'BEGIN { srand(9); for (i = 0; i < 3000; i++) { line = ""; for (j = 0; j < 64; j++) line = line sprintf("%.3f,", rand());
  print line (i % 2) } }' > s.csv
"$convoy" convert csv s.csv --label 64 --out s.h5 >/dev/null 2>&1 || fail "convert the stream data"
printf 'input shape=64\ndense units=8 activation=relu\ndense units=2 activation=softmax\n' > s.model
printf 'compile loss=sparse_categorical_crossentropy\nfit epochs=500 batch_size=32\n' >> s.model
# case: --stream with frequent saves: the reader thread's HDF5 reads and the training thread's
# saves and validation passes never overlap (HDF5 is not thread-safe; this crashed about every
# second run, heap corruption)
timeout 600 "$convoy" train s.model --data s.h5 --stream --checkpoint s-every.h5 --checkpoint-every 3 --epochs 40 \
    --val s.h5 --quiet 2>every.err || fail "--stream with --checkpoint-every 3: exit $?: $(tail -1 every.err)"
timeout 120 "$convoy" train s.model --data s.h5 --stream --checkpoint s-ck.h5 --checkpoint-every 20 >s.out 2>s.err &
pid=$!
sleep 2
truncate -s $(( $(stat -c %s s.h5) / 2 )) s.h5
wait $pid
rc=$?
[[ $rc -eq 1 ]] || fail "a run on truncated --stream data exited $rc, wanted 1: $(tail -2 s.err)"
grep -q "s.h5: truncated during the run" s.err || fail "the truncation is not named: $(tail -2 s.err)"
exit $((fails > 0))
