#!/usr/bin/env bash
# convoy tune: under mpirun -np 4 with --ranks-per-trial 2 the trials run on the groups {0,1}
# and {2,3}; a search SIGKILLed after its first trials resumes without rerunning them and ends
# with the same trials as an uninterrupted one (and a CNN search killed mid-trial, the same scores
# to the last bit); --summary; best.model trains; Hyperband promotes the best configuration of a
# rung, continuing its state (equal to training it longer from scratch); bad flags and hp expressions fail cleanly.
#   usage: e2e_tune.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

awk 'BEGIN { srand(7); print "x1,x2,x3,x4,label";
  for (i = 0; i < 2000; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > s.model <<'M'
input    shape=4 normalize=standardize
dense    units=hp.int(4,32,step=4) activation=hp.choice(relu,tanh)
dropout  rate=hp.float(0,0.4)
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=hp.float(1e-3,1e-1,log,name=lr) loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=16 validation_split=0.2 seed=5
M

"$convoy" summary s.model > space.txt || fail "summary of a search model"
grep -q "Search space (4 hyperparameters" space.txt && grep -q "lr .*line 5 .*learning_rate .*hp.float(0.001,0.1,log)" space.txt ||
    fail "summary lists the search space: $(cat space.txt)"

"$convoy" train s.model --data d.h5 > t.out 2>&1 && fail "train of a search model accepted"
grep -q "^convoy: s.model:2: units= is a hyperparameter: search it with \`convoy tune\`" t.out || fail "train message: $(cat t.out)"

mpi() { mpirun -np 4 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$@"; }
search=(tune s.model --data d.h5 --max-trials 12 --seed 3 --ranks-per-trial 2 --threads 1)

# an uninterrupted search: 2 groups of 2 ranks, 12 trials
mpi "$convoy" "${search[@]}" --dir A > a.out 2>&1 || fail "uninterrupted search: $(cat a.out)"
grep -q "2 groups of 2 ranks" a.out || fail "group count: $(head -1 a.out)"
[[ $(grep -c "^trial [0-9]* (of 12)" a.out) -eq 12 ]] || fail "12 trials: $(cat a.out)"
[[ $(grep -c "ranks 0,1 " a.out) -ge 1 && $(grep -c "ranks 2,3 " a.out) -ge 1 ]] || fail "both groups trained: $(cat a.out)"
[[ $(grep "^trial [0-9]* (of" a.out | grep -vc "ranks 0,1 \|ranks 2,3 ") -eq 0 ]] || fail "a trial outside the groups {0,1} {2,3}"
h5dump -a /trials/00001/ranks A/trials.h5 | grep '"2,3"' >/dev/null || fail "trials.h5 records trial 1's group"
for t in $(seq -f %05g 0 11); do [[ -f A/trials/$t.h5 ]] || fail "no checkpoint A/trials/$t.h5"; done
ls A/trials/*.result.h5 A/trials/*.e?.h5 >/dev/null 2>&1 && fail "result files or execution checkpoints left behind"

# the same search, SIGKILLed once its first round is in trials.h5, then resumed
# (mpirun itself in the background, not a shell function: $! must be mpirun's pid, whose
# children are the ranks)
mpirun -np 4 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" "${search[@]}" --dir B > b1.out 2>&1 &
pid=$!
for _ in $(seq 1200); do [[ -f B/trials.h5 ]] && break; sleep 0.02; done
kill -KILL $(pgrep -P $pid) $pid 2>/dev/null
wait $pid 2>/dev/null
done1=$("$convoy" tune --summary B 2>&1 | head -1 | grep -o "[0-9]* finished" | cut -d' ' -f1)
[[ -n $done1 && $done1 -ge 2 && $done1 -lt 12 ]] || fail "the kill should land mid-search ($done1 finished)"
mpi "$convoy" "${search[@]}" --dir B > b2.out 2>&1 || fail "resumed search: $(cat b2.out)"
# a trial whose result file was written but not yet merged into trials.h5 when the kill landed is
# kept too: at least the trials the summary counted
kept=$(grep -o "resuming B/trials.h5: [0-9]* finished trials kept" b2.out | grep -o "[0-9]* finished" | cut -d' ' -f1)
[[ -n $kept && $kept -ge $done1 ]] || fail "resume message: $(head -2 b2.out) ($done1 in the summary)"
ran=$(grep -c "^trial [0-9]* (of 12)" b2.out)
[[ $((ran + kept)) -eq 12 ]] || fail "the resumed search ran $ran trials with $kept kept (12 in all expected)"
for t in $(grep -o "^trial [0-9]*" b1.out | cut -d' ' -f2); do
    grep -q "^trial $t (of" b2.out && fail "trial $t finished before the kill and ran again"
done
# identical leaderboards: the same trials, values and objectives as the uninterrupted search
"$convoy" tune --summary A | sed 1d | grep -v "^best:" > a.board || fail "summary A"
"$convoy" tune --summary B | sed 1d | grep -v "^best:" > b.board || fail "summary B"
[[ $(grep -c . a.board) -eq 13 ]] || fail "leaderboard has 12 trials: $(cat a.board)"
diff a.board b.board > /dev/null || fail "resumed leaderboard differs: $(diff a.board b.board)"
[[ "$(sed 1d A/best.model)" == "$(sed 1d B/best.model)" ]] || fail "best.model differs after resume"

# a CNN search (tiled conv layers, whose arithmetic once depended on what the process ran before)
# SIGKILLed in the middle of its second trial (CONVOY_KILL_AFTER_SAVE: after the process's third
# checkpoint save) and resumed: each trial's objective and metric history, value for value, as in
# the search that was never interrupted
"$convoy" convert fashion-mnist --classes 0,1,2,3,4,5,6,7,8,9 --per-class 20 --out fm >/dev/null || fail "convert fm"
cat > cnn.model <<'M'
input     shape=28,28,1
conv2d    filters=hp.choice(16,32) kernel=3 activation=relu
maxpool2d pool=2
conv2d    filters=32 kernel=3 activation=relu
maxpool2d pool=2
flatten
dense     units=hp.int(32,96,step=32) activation=relu
dropout   rate=0.3
dense     units=10 activation=softmax
compile   optimizer=adam learning_rate=hp.float(1e-3,1e-2,log) loss=sparse_categorical_crossentropy metrics=accuracy
fit       epochs=2 batch_size=32 validation_split=0.2 seed=3
M
csearch=(tune cnn.model --data fm/train.h5 --max-trials 4 --seed 2 --threads 2)
"$convoy" "${csearch[@]}" --dir CA > ca.out 2>&1 || fail "CNN search: $(cat ca.out)"
(CONVOY_KILL_AFTER_SAVE=3 "$convoy" "${csearch[@]}" --dir CB; exit) > cb1.out 2>&1 && fail "the CNN search meant to be killed finished"
kept=$("$convoy" tune --summary CB 2>&1 | head -1 | grep -o "[0-9]* finished" | cut -d' ' -f1)
[[ -n $kept && $kept -ge 1 && $kept -lt 4 ]] || fail "the kill should land mid-search ($kept finished)"
"$convoy" "${csearch[@]}" --dir CB > cb2.out 2>&1 || fail "resumed CNN search: $(cat cb2.out)"
for t in 00000 00001 00002 00003; do
    [[ "$(h5dump -a /trials/$t/objective -d /trials/$t/history CA/trials.h5 | tail -n +2)" == \
       "$(h5dump -a /trials/$t/objective -d /trials/$t/history CB/trials.h5 | tail -n +2)" ]] ||
        fail "CNN trial $t: the resumed search's scores differ from the uninterrupted one's"
done

# SIGTERM (Slurm preemption, Ctrl-C): the running trial stops, the finished ones are kept
"$convoy" tune s.model --data d.h5 --max-trials 12 --seed 3 --threads 1 --dir T > t1.out 2>&1 &
pid=$!
for _ in $(seq 1200); do [[ -f T/trials.h5 ]] && break; sleep 0.02; done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
[[ $rc -eq 75 ]] || fail "SIGTERM: exit status $rc (75 expected: interrupted)"
grep -q "^tune: stopped; [0-9]* finished trials\? \(is\|are\) in T/trials.h5 (run the same command to resume)" t1.out ||
    fail "SIGTERM message: $(cat t1.out)"
grep -q -- "--resume" t1.out && fail "a trial's --resume hint leaked: $(cat t1.out)"
"$convoy" tune s.model --data d.h5 --max-trials 12 --seed 3 --threads 1 --dir T > t2.out 2>&1 || fail "resume after SIGTERM"
[[ $("$convoy" tune --summary T | head -1 | grep -o "[0-9]* finished") == "12 finished" ]] || fail "12 trials after SIGTERM + resume"

# best.model is a plain model file that trains
grep -q "hp\." A/best.model && fail "best.model still has hp expressions"
"$convoy" train A/best.model --data d.h5 --epochs 1 --quiet --threads 1 || fail "best.model does not train"
"$convoy" tune --summary A | grep "^best: trial [0-9]*, val_accuracy 0\.[0-9]*; checkpoint A/trials/[0-9]*.h5" >/dev/null ||
    fail "summary names the best checkpoint"
"$convoy" eval "$(sed -n 's/.*checkpoint \(A\/trials\/[0-9]*\.h5\).*/\1/p' A/best.model)" --data d.h5 > /dev/null ||
    fail "the best checkpoint evaluates"

# Hyperband (max epochs 3, factor 3): rung 1 of bracket 1 continues rung 0's best configuration
"$convoy" tune s.model --data d.h5 --tuner hyperband --epochs 3 --max-trials 6 --executions-per-trial 2 \
    --objective val_loss --threads 1 --dir H > h.out 2>&1 || fail "hyperband: $(cat h.out)"
[[ $(grep -c "bracket 1 rung 0  1 epoch " h.out) -eq 3 && $(grep -c "bracket 1 rung 1  3 epochs" h.out) -eq 1 &&
   $(grep -c "bracket 0 rung 0  3 epochs" h.out) -eq 2 ]] || fail "hyperband schedule: $(cat h.out)"
vals() { sed 's/.*ranks 0 *//; s/  val_loss.*//'; }
best0=$(grep "bracket 1 rung 0" h.out | sort -t' ' -k1,1 | awk '{ for (i = 1; i <= NF; i++) if ($i == "val_loss") print $(i + 1), $0 }' |
        sort -g | head -1 | cut -d' ' -f2- | vals)
[[ "$(grep "bracket 1 rung 1" h.out | vals)" == "$best0" ]] || fail "rung 1 is not rung 0's best: $(cat h.out)"
h5dump -d /trials/00003/history H/trials.h5 | grep "DATASPACE  SIMPLE { ( 2, 3, 8 )" >/dev/null || fail "history (executions, epochs, 8)"
# the promotion continues its parent's state: trial 3 names it, trains epochs 2-3 only (epoch 1's
# history row is its parent's, NaN here), and each execution ends where training its configuration
# 3 epochs from scratch ends, byte for byte
parent=$(grep "bracket 1 rung 0" h.out | awk '{ for (i = 1; i <= NF; i++) if ($i == "val_loss") print $(i + 1), $2 }' | sort -g |
         head -1 | cut -d' ' -f2)
h5dump -a /trials/00003/parent H/trials.h5 | grep "(0): $parent\$" >/dev/null || fail "trial 3 does not continue trial $parent"
/usr/bin/python3 -c '
import h5py, math, sys
h = h5py.File(sys.argv[1], "r")["/trials/00003/history"][()]
sys.exit(0 if all(math.isnan(v) for v in h[:, 0, 0]) and all(not math.isnan(v) for v in h[:, 1:, 0].ravel()) else 1)' \
    H/trials.h5 || fail "the continued trial should train epochs 2 and 3 only"
line=$(grep "^trial 3 " h.out)
cp s.model m3.model
for kv in units activation lr rate; do # (lr first: rate= is also the end of learning_rate=)
    v=$(grep -o " $kv=[^ ]*" <<<"$line" | cut -d= -f2)
    case $kv in
        units) sed -i "s/units=hp.int([^)]*)/units=$v/" m3.model ;;
        activation) sed -i "s/activation=hp.choice([^)]*)/activation=$v/" m3.model ;;
        rate) sed -i "s/rate=hp.float([^)]*)/rate=$v/" m3.model ;;
        lr) sed -i "s/learning_rate=hp.float([^)]*)/learning_rate=$v/" m3.model ;;
    esac
done
grep -q "hp\." m3.model && fail "m3.model: $(cat m3.model)"
for e in 0 1; do
    "$convoy" train m3.model --data d.h5 --epochs 3 --seed $((5 + e)) --threads 1 --checkpoint "scratch$e.h5" --quiet ||
        fail "train m3.model"
    h5diff "scratch$e.h5" "H/trials/00003.e$e.h5" /layers > /dev/null ||
        fail "execution $e of the continued trial differs from 3 epochs from scratch"
done

# bad input: one line, non-zero exit, nothing written
"$convoy" tune s.model --data d.h5 --max-trials 2 --ranks-per-trial 2 --dir X > x.out 2>&1 &&
    fail "--ranks-per-trial 2 of 1 rank accepted"
grep -q "convoy: --ranks-per-trial 2 does not divide the 1 ranks" x.out || fail "ranks message: $(cat x.out)"
[[ -e X ]] && fail "a refused search created its directory"
"$convoy" tune s.model --data d.h5 --max-trials 12 --seed 4 --threads 1 --dir A > y.out 2>&1 &&
    fail "another search's directory accepted"
grep -q "convoy: A/trials.h5: made by another search" y.out || fail "another search message: $(cat y.out)"
sed 's/hp.int(4,32,step=4)/hp.int(4,32,step=4/' s.model > bad.model
"$convoy" tune bad.model --data d.h5 --max-trials 2 --dir Z > z.out 2>&1 && fail "a malformed hp accepted"
grep -q "^convoy: bad.model:2: bad hyperparameter 'hp.int(4,32,step=4'" z.out || fail "malformed hp message: $(cat z.out)"
sed 's/metrics=accuracy//' s.model > nometric.model
"$convoy" tune nometric.model --data d.h5 --max-trials 2 --objective val_accuracy --dir Z > z.out 2>&1 &&
    fail "objective without its metric accepted"
grep -q "^convoy: nometric.model:5: --objective val_accuracy needs metrics=accuracy" z.out || fail "objective message: $(cat z.out)"
[[ -e Z ]] && fail "a refused search created its directory"

exit $((fails > 0))
