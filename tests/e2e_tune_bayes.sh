#!/usr/bin/env bash
# convoy tune --tuner bayesian: a search of 10 trials (4 random, then proposals 2 at a time)
# runs on 2 groups of 2 ranks and gives the same trials as 1 rank with --reproducible (the
# proposals depend on the objectives only, so the same objectives give the same search); killed
# mid-search and resumed, the same trials, values and objectives as the uninterrupted search; no
# configuration is tried twice, and a small discrete space ends the search when it is used up
# (random, Hyperband and bayesian); the leaderboard shows each trial's tuner state; --project-name,
# --num-models and --max-consecutive-failed-trials; the Bayesian flags are refused for the other
# tuners.
#   usage: e2e_tune_bayes.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
# shellcheck source=tests/e2e-lib.sh
. "$src/tests/e2e-lib.sh"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_NUM_THREADS=1

awk 'BEGIN { srand(11); print "x1,x2,x3,label";
  for (i = 0; i < 600; i++) { a = rand(); b = rand(); c = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%d\n", a, b, c, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > s.model <<'M'
input    shape=3 normalize=standardize
dense    units=hp.int(4,32,step=4) activation=relu
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=hp.float(1e-3,1e-1,log,name=lr) loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=32 validation_split=0.25 seed=5
M
search=(tune s.model --data d.h5 --tuner bayesian --max-trials 10 --initial-points 4 --proposals-per-round 2
        --seed 3 --reproducible)
# the trials' values in trial order, from a leaderboard
values() { "$convoy" tune --summary "$1" | awk '/^ *[0-9]+ / { print }' | sort -n | awk '{ $NF = ""; print }'; }

mpirun -np 4 --oversubscribe --bind-to none -x OMP_NUM_THREADS "$convoy" "${search[@]}" --ranks-per-trial 2 --dir A \
    > a.out 2>&1 || fail "bayesian search on 2 groups: $(tail -3 a.out)"
grep -q "^tune: bayesian search of 2 hyperparameters, 10 trials" a.out || fail "header: $(head -1 a.out)"
[[ $(grep -c "^trial [0-9]* (of 10)" a.out) -eq 10 ]] || fail "10 trials: $(cat a.out)"
grep -o " units=[0-9]* lr=[0-9.e-]*" a.out | sort | uniq -d | grep . >/dev/null && fail "a configuration ran twice: $(cat a.out)"
"$convoy" "${search[@]}" --dir B > b.out 2>&1 || fail "bayesian search on 1 rank: $(tail -3 b.out)"
[[ "$(values A)" == "$(values B)" && -n "$(values A)" ]] || fail "2 groups and 1 rank searched differently:
$(diff <(values A) <(values B))"
h5dump -d /trials/00009/raw_values A/trials.h5 >/dev/null 2>&1 || fail "trials.h5 keeps each trial's raw values"

# killed after its 5th checkpoint save (mid-search), resumed: the same search
(CONVOY_KILL_AFTER_SAVE=5 "$convoy" "${search[@]}" --dir C; exit) > c1.out 2>&1 && fail "the search meant to be killed finished"
kept=$("$convoy" tune --summary C 2>&1 | head -1 | grep -o "[0-9]* finished" | cut -d' ' -f1)
[[ -n $kept && $kept -ge 1 && $kept -lt 10 ]] || fail "the kill should land mid-search ($kept finished)"
"$convoy" "${search[@]}" --dir C > c2.out 2>&1 || fail "resumed search: $(tail -3 c2.out)"
[[ "$("$convoy" tune --summary B | sed 1d)" == "$("$convoy" tune --summary C | sed 1d | sed 's/ C\// B\//g')" ]] ||
    fail "the resumed search differs: $(diff <("$convoy" tune --summary B) <("$convoy" tune --summary C))"

# a space of 4 configurations: every tuner stops when they are used up, none twice
cat > small.model <<'M'
input    shape=3
dense    units=hp.int(4,8,step=4) activation=hp.choice(relu,tanh)
dense    units=3 activation=softmax
compile  optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=1 batch_size=64 validation_split=0.25
M
for tuner in random bayesian hyperband; do
    extra=(); [[ $tuner == bayesian ]] && extra=(--initial-points 2)
    "$convoy" tune small.model --data d.h5 --tuner "$tuner" --max-trials 12 "${extra[@]}" --epochs 3 --dir "S-$tuner" \
        > "s-$tuner.out" 2>&1 || fail "$tuner search of a small space: $(tail -3 "s-$tuner.out")"
    grep -q "^tune: the search space is exhausted: 4 distinct configurations tried" "s-$tuner.out" ||
        fail "$tuner: no exhausted message: $(cat "s-$tuner.out")"
    # each configuration once (Hyperband: once per bracket's first rung)
    grep "^trial [0-9]* (of" "s-$tuner.out" | grep -v "rung [1-9]" | grep -o " units=[0-9]* activation=[a-z]*" | sort | uniq -d |
        grep -q . && fail "$tuner: a configuration ran twice: $(cat "s-$tuner.out")"
done
[[ $(grep -c "^trial [0-9]* (of" s-random.out) -eq 4 ]] || fail "random: 4 trials for 4 configurations: $(cat s-random.out)"
[[ $(grep -c "^trial [0-9]* (of" s-bayesian.out) -eq 4 ]] || fail "bayesian: 4 trials for 4 configurations: $(cat s-bayesian.out)"

# the leaderboard shows each trial's tuner state: the expected improvement a proposal had
"$convoy" tune --summary A > a.board || fail "summary A"
grep -q "^trial  exp_improv" a.board || fail "no exp_improv column: $(cat a.board)"
[[ $(awk '/^ *[0-9]+ / && $2 == "-"' a.board | wc -l) -eq 4 ]] || fail "the 4 random trials have no expected improvement: $(cat a.board)"
[[ $(awk '/^ *[0-9]+ / && $2 ~ /^[0-9]/' a.board | wc -l) -eq 6 ]] || fail "the 6 proposals show theirs: $(cat a.board)"
"$convoy" tune --summary S-hyperband | grep "^trial  bracket rung epochs from" >/dev/null || fail "hyperband summary: no from column"

# --project-name: D/NAME; --num-models K: D/NAME/best-k.h5 are the k-th best trials' checkpoints
"$convoy" tune s.model --data d.h5 --max-trials 4 --dir P --project-name first --num-models 2 > p.out 2>&1 ||
    fail "--project-name: $(tail -3 p.out)"
[[ -f P/first/trials.h5 ]] || fail "no P/first/trials.h5"
"$convoy" tune --summary P --project-name first > p.board || fail "--summary with --project-name"
for k in 1 2; do
    ck=$(awk '/^ *[0-9]+ /' p.board | sed -n "${k}p" | awk '{ print $1 }')
    ck=P/first/trials/$(printf %05d "$ck").h5
    [[ P/first/best-$k.h5 -ef $ck ]] || fail "best-$k.h5 should be $ck: $(cat p.board)"
done
[[ -e P/first/best-3.h5 ]] && fail "--num-models 2 kept a third"
expect 2 "--project-name: 'a/b' must be a plain name" -- "$convoy" tune s.model --data d.h5 --max-trials 2 --project-name a/b

# --max-consecutive-failed-trials: all but 1 of this space's 27 configurations fail (the three
# kernels outgrow the 4x4 input), and seed 1's first three are failures
cat > never.model <<'M'
input    shape=4,4,1
conv2d   filters=2 kernel=hp.int(2,4)
conv2d   filters=2 kernel=hp.int(2,4)
conv2d   filters=2 kernel=hp.int(2,4)
flatten
dense    units=3 activation=softmax
compile  optimizer=adam loss=sparse_categorical_crossentropy
M
awk 'BEGIN { srand(2); print "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,p10,p11,p12,p13,p14,p15,label";
  for (i = 0; i < 40; i++) { l = ""; for (j = 0; j < 16; j++) l = l sprintf("%.3f,", rand()); print l (i % 3) } }' > img.csv
"$convoy" convert csv img.csv --label label --out flat.h5 >/dev/null || fail "convert img.csv"
/usr/bin/python3 -c 'import h5py, sys; f = h5py.File(sys.argv[1], "a"); x = f["x"][()].reshape(-1, 4, 4, 1); del f["x"]; f["x"] = x' flat.h5 ||
    fail "reshape flat.h5"
expect 1 "tune: 3 trials in a row failed \(trials 0 to 2; the last: never.model:4: .*\); stopping \(--max-consecutive-failed-trials 3" -- \
    "$convoy" tune never.model --data flat.h5 --max-trials 6 --objective loss --dir F
"$convoy" tune never.model --data flat.h5 --max-trials 4 --objective loss --max-consecutive-failed-trials 0 --dir F0 > f0.out 2>&1 ||
    fail "--max-consecutive-failed-trials 0 should not stop: $(tail -3 f0.out)"
[[ $(grep -c "^trial [0-9]* (of 4) .* failed: " f0.out) -eq 4 ]] || fail "f0: $(cat f0.out)"

expect 2 "--beta.*for --tuner bayesian" -- "$convoy" tune s.model --data d.h5 --max-trials 2 --beta 1
expect 2 "--acquisition: unknown 'pi' \(ucb or ei\)" -- "$convoy" tune s.model --data d.h5 --max-trials 2 --tuner bayesian --acquisition pi
expect 2 "--tuner: unknown tuner 'grid' \(random, hyperband or bayesian\)" -- "$convoy" tune s.model --data d.h5 --max-trials 2 --tuner grid
exit $((fails > 0))
