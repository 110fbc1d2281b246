#!/usr/bin/env bash
# Class weights from the command line: fit class_weight=balanced trains, gives the same weights
# on 1 and 2 ranks with --reproducible, weights of 1 change nothing, and the errors.
#   usage: e2e_weights.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
mpi() { mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np "$@"; }
awk 'BEGIN { srand(7); print "a,b,c,d,label"; for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); d = rand();
  k = a > 0.8 ? 0 : (b > 0.5 ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
"$convoy" convert csv d.csv --label label --float --out f.h5 >/dev/null || fail "convert --float"
model() { printf 'input shape=4\ndense units=8 activation=relu\ndense units=3 activation=softmax\n'
          printf 'compile optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy\n'
          printf 'fit epochs=2 batch_size=16 seed=3 %s\n' "$1"; }
model "class_weight=balanced" > bal.model
model "class_weight=0:1,1:1,2:1" > ones.model
model "" > plain.model
"$convoy" train bal.model --data d.h5 --quiet --reproducible --checkpoint b1.h5 || fail "train balanced"
mpi 2 "$convoy" train bal.model --data d.h5 --quiet --reproducible --checkpoint b2.h5 || fail "train balanced, 2 ranks"
same b1.h5 b2.h5 || fail "class weights: 2 ranks differ from 1 with --reproducible"
"$convoy" train plain.model --data d.h5 --quiet --checkpoint p.h5 || fail "train unweighted"
same b1.h5 p.h5 && fail "balanced weights changed nothing (class 0 is rare: they should)"
"$convoy" train ones.model --data d.h5 --quiet --reproducible --checkpoint o.h5 || fail "train weights 1"
"$convoy" train plain.model --data d.h5 --quiet --reproducible --checkpoint p1.h5 || fail "train unweighted"
same o.h5 p1.h5 || fail "class weights of 1 changed the training"
printf 'input shape=4\ndense units=1 activation=linear\ncompile loss=mse\nfit class_weight=balanced\n' > float.model
expect 1 "class_weight needs integer class labels" -- "$convoy" train float.model --data f.h5 --quiet
exit $((fails > 0))
