#!/usr/bin/env bash
# End-to-end checks of what users see: the per-epoch display on a pipe (plain lines) and on a
# pseudo-terminal (Keras-style bar redrawn with \r, at most ~10 times a second, and a final line
# with val_ metrics), --quiet and --verbose, train --log/--plot, convoy plot, eval --confusion
# (also on 2 ranks), convoy visualize, and every new command's error paths.
# usage: e2e_insight.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"

# a 3-class problem (which of x1, x2, x3 is largest), 40 steps per epoch
awk 'BEGIN { srand(11); print "x1,x2,x3,x4,label";
  for (i = 0; i < 800; i++) { a = rand(); b = rand(); c = rand(); d = rand();
    k = (a > b && a > c) ? 0 : (b > c ? 1 : 2); printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, k } }' > data.csv
cat > clf.model <<'M'
input    shape=4 normalize=standardize
dense    units=32 activation=tanh
dense    units=3 activation=softmax
compile  optimizer=adam learning_rate=0.02 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=3 batch_size=16 validation_split=0.2 seed=3
M
expect 0 "" -- "$convoy" convert csv data.csv --label label --out data.h5

# --- a pipe: one plain line per epoch, no carriage returns -----------------------------------
expect 0 "" -- "$convoy" train clf.model --data data.h5 --checkpoint clf.h5 --log h.csv --plot h.svg --threads 1
[[ $(grep -c '^epoch [0-9]/3  loss [0-9.]*  accuracy [0-9.]*  val_loss [0-9.]*  val_accuracy [0-9.]*  [0-9.]*s  [0-9]* img/s$' out.txt) -eq 3 ]] ||
    fail "plain lines: $(cat out.txt)"
grep -q $'\r' out.txt && fail "carriage return on a pipe"
[[ $(head -1 h.csv) == "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds,images_per_s" ]] || fail "CSV header: $(head -1 h.csv)"
[[ $(grep -c . h.csv) -eq 4 ]] || fail "CSV rows: $(cat h.csv)"
# the CSV and the printed line agree on epoch 3's val_accuracy
printed=$(grep '^epoch 3/3' out.txt | sed -E 's/.*val_accuracy ([0-9.]+).*/\1/')
logged=$(awk -F, 'NR == 4 { printf "%.4f", $6 }' h.csv)
[[ $printed == "$logged" ]] || fail "val_accuracy printed $printed, logged $logged"
grep -q 'data-column="val_accuracy" data-points="3"' h.svg || fail "train --plot: no 3-point val_accuracy series"
# --resume with --log: the plot continues from the log's earlier epochs
expect 0 "" -- "$convoy" train clf.model --data data.h5 --epochs 2 --checkpoint r.h5 --log r.csv --plot r.svg --quiet
expect 0 "" -- "$convoy" train clf.model --data data.h5 --epochs 3 --resume r.h5 --log r.csv --plot r.svg --quiet
[[ $(grep -c 'data-points="3"' r.svg) -eq 4 && $(grep -c . r.csv) -eq 4 ]] || fail "resumed plot: $(grep -o 'data-points="[0-9]*"' r.svg)"
expect 0 "" -- "$convoy" train clf.model --data data.h5 --quiet --epochs 1
[[ ! -s out.txt ]] || fail "--quiet printed: $(cat out.txt)"
expect 0 "" -- "$convoy" train clf.model --data data.h5 --verbose --threads 1 --epochs 2
[[ $(grep -c '^  lr 0.02  time: train [0-9.]*s (gradient allreduce [0-9.]*s on rank 0)  validation [0-9.]*s  [0-9.]* ms/step$' out.txt) -eq 2 ]] ||
    fail "--verbose lines: $(cat out.txt)"
expect 2 "either --quiet or --verbose" -- "$convoy" train clf.model --data data.h5 --quiet --verbose

# --- a pseudo-terminal: the bar -----------------------------------------------------------------
t0=$(date +%s.%N)
# 200 columns: room for every part of the line (docs/watching.md: what a narrower one drops)
script -qec "stty cols 200; '$convoy' train clf.model --data data.h5 --threads 1" /dev/null > tty.txt < /dev/null
t1=$(date +%s.%N)
tr '\r' '\n' < tty.txt > tty-lines.txt
[[ $(grep -c '^Epoch [1-3]/3$' tty-lines.txt) -eq 3 ]] || fail "tty: Epoch headers: $(cat -A tty.txt | head -5)"
draws=$(grep -cE '^ +[0-9]+/40 \[[=>.]{30}\] - ETA: [0-9:]+s? - loss: [0-9.]+ - accuracy: [0-9.]+ - [0-9]+ img/s *$' tty-lines.txt)
[[ $draws -ge 3 ]] || fail "tty: $draws in-place redraws, want at least one per epoch: $(cat -A tty.txt | head -5)"
# at most ~10 redraws a second (plus the first of each epoch)
awk -v n="$draws" -v a="$t0" -v b="$t1" 'BEGIN { exit !(n <= 10 * (b - a) + 3) }' ||
    fail "tty: $draws redraws in $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')s"
[[ $(grep -cE '^ +40/40 \[={30}\] - [0-9:]+s? [0-9]+ms/step - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - val_accuracy: [0-9.]+ - [0-9]+ img/s *$' tty-lines.txt) -eq 3 ]] ||
    fail "tty: final lines: $(cat -A tty.txt | tail -3)"
grep -q '^epoch ' tty-lines.txt && fail "tty: plain lines on a terminal"
# each epoch ends its line: the next Epoch header starts a fresh line
grep -q $'img/s *\r\nEpoch 2/3' tty.txt || fail "tty: epoch 1's final line is not ended before Epoch 2"

# under mpirun: Open MPI gives rank 0 a pseudo-terminal even when mpirun writes to a pipe (a batch
# log): still plain lines there; mpirun started from a terminal: the bar
if command -v mpirun >/dev/null; then
    mpi=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
    "${mpi[@]}" "$convoy" train clf.model --data data.h5 --epochs 2 > mp.txt 2>&1 || fail "mpirun train: $(cat mp.txt)"
    grep -q $'\r' mp.txt && fail "mpirun to a pipe drew the bar: $(cat -A mp.txt | head -3)"
    [[ $(grep -c '^epoch [12]/2  loss ' mp.txt) -eq 2 ]] || fail "mpirun to a pipe: $(cat mp.txt)"
    script -qec "stty cols 200; ${mpi[*]} '$convoy' train clf.model --data data.h5 --epochs 2" /dev/null > mptty.txt < /dev/null
    [[ $(tr '\r' '\n' < mptty.txt | grep -cE '^ +40/40 \[={30}\] - .* - val_accuracy: [0-9.]+ - [0-9]+ img/s *$') -eq 2 ]] ||
        fail "mpirun on a terminal: no bar: $(cat -A mptty.txt | head -3)"
fi

# --- convoy plot ----------------------------------------------------------------------------------
expect 0 "" -- "$convoy" train clf.model --data data.h5 --optimizer sgd --lr 0.1 --log sgd.csv --quiet --epochs 2
expect 0 "" -- "$convoy" plot h.csv --out one.svg
grep -q '>validation</text>' one.svg || fail "plot: one file has no validation legend"
expect 0 "" -- "$convoy" plot h.csv sgd.csv --out two.svg
[[ $(grep -c 'class="series"' two.svg) -eq 8 ]] || fail "plot: two files, want 8 series"
grep -q '>sgd</text>' two.svg && grep -q '>h</text>' two.svg || fail "plot: legend entries per file"
expect 0 "" -- "$convoy" plot h.csv sgd.csv --labels adam,sgd --out two.svg
grep -q '>adam</text>' two.svg || fail "plot --labels"
expect 2 "plot: --out F.svg is required" -- "$convoy" plot h.csv
expect 1 "missing.csv: cannot open" -- "$convoy" plot missing.csv --out x.svg
head -1 h.csv > empty.csv
expect 1 "empty.csv: no epochs yet" -- "$convoy" plot empty.csv --out x.svg
printf 'epoch,loss\n1,0.5\n2,oops\n' > bad.csv
expect 1 "bad.csv:3: bad number 'oops' in column loss" -- "$convoy" plot bad.csv --out x.svg
expect 2 "--labels has 1 name for 2 files" -- "$convoy" plot h.csv sgd.csv --labels a --out x.svg
expect 1 "no/dir/x.svg: cannot create" -- "$convoy" plot h.csv --out no/dir/x.svg
expect 1 "no/dir/p.svg: cannot create" -- "$convoy" train clf.model --data data.h5 --plot no/dir/p.svg
[[ ! -e x.svg ]] || fail "plot errors left x.svg"

# --- eval --confusion -----------------------------------------------------------------------------
expect 0 "" -- "$convoy" eval clf.h5 --data data.h5 --confusion-svg conf.svg
grep -qE '^loss [0-9.]+  accuracy [0-9.]+  \(800 samples\)$' out.txt || fail "eval line: $(head -1 out.txt)"
# the matrix: 3 rows whose counts add up to the data's class counts, 800 in all
for k in 0 1 2; do
    want=$(awk -F, -v k=$k 'NR > 1 && $5 == k { n++ } END { print n + 0 }' data.csv)
    got=$(awk -v k=$k '$1 == k && NF == 4 { print $2 + $3 + $4 }' out.txt)
    [[ $got == "$want" ]] || fail "confusion row $k sums to '$got', the data has $want"
done
acc=$(awk '/^accuracy / { print $2 }' out.txt)
[[ $acc == $(awk '/^loss/ { print $4 }' out.txt) ]] || fail "report accuracy $acc differs from eval's"
grep -q '^macro avg ' out.txt || fail "no macro averages"
[[ $(grep -c 'class="cell"' conf.svg) -eq 9 ]] || fail "confusion SVG cells"
if command -v mpirun >/dev/null; then
    mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" eval clf.h5 --data data.h5 --confusion \
        > two.txt 2>&1 || fail "eval --confusion on 2 ranks: $(cat two.txt)"
    diff <(grep -v '^wrote' out.txt) two.txt > /dev/null || fail "2 ranks differ: $(diff out.txt two.txt)"
fi
printf 'input shape=4\ndense units=1\ncompile optimizer=adam loss=mse\nfit epochs=1\n' > reg.model
awk -F, 'BEGIN { OFS = "," } NR == 1 { print; next } { $5 = $1 + $2; print }' data.csv > reg.csv
expect 0 "" -- "$convoy" convert csv reg.csv --label label --float --out reg.h5
expect 0 "" -- "$convoy" train reg.model --data reg.h5 --checkpoint reg.h5.ckpt --quiet
expect 1 "reg.h5.ckpt: .*loss mse is a regression loss" -- "$convoy" eval reg.h5.ckpt --data reg.h5 --confusion
[[ ! -s out.txt ]] || fail "regression --confusion printed: $(cat out.txt)"

# --- visualize ------------------------------------------------------------------------------------
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
{ printf '\x00\x00\x08\x03'; be32 32; be32 10; be32 10; head -c 3200 /dev/urandom; } > img.idx
{ printf '\x00\x00\x08\x01'; be32 32; for i in $(seq 32); do printf "\\x0$((i % 2))"; done; } > lab.idx
expect 0 "" -- "$convoy" convert idx img.idx lab.idx --out img.h5
cat > cnn.model <<'M'
input    shape=10,10,1
conv2d   filters=4 kernel=3 activation=relu
maxpool2d pool=2
conv2d   filters=5 kernel=2 activation=relu
flatten
dense    units=2 activation=softmax
compile  optimizer=adam loss=sparse_categorical_crossentropy
fit      epochs=1 batch_size=8
M
expect 0 "" -- "$convoy" train cnn.model --data img.h5 --checkpoint cnn.h5 --quiet
expect 0 "" -- "$convoy" visualize cnn.h5 --data img.h5 --out vis --sample 31
# PNG signature and IHDR size: filters 2x2 tiles of 33 px, features-01 2x2 of 48, features-03 3x2 of 48
size() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }'; }
for f in filters.png:72x72 input.png:54x54 features-01.png:102x102 features-03.png:152x102; do
    png=vis/${f%%:*}
    [[ $(head -c 8 "$png" 2>/dev/null | od -An -tx1 | tr -d ' ') == 89504e470d0a1a0a ]] || { fail "$png is not a PNG"; continue; }
    [[ $(size "$png") == "${f##*:}" ]] || fail "$png is $(size "$png"), want ${f##*:}"
done
grep -q "wrote vis/filters.png: layer 1 conv2d, 4 filters 3x3x1" out.txt || fail "visualize report: $(cat out.txt)"
# each picture's labelled twin: its tiles, labels and legend
for f in filters features-01 features-03; do
    [[ -f vis/$f.svg ]] || fail "visualize wrote no vis/$f.svg"
done
grep -q 'href="filters.png"' vis/filters.svg && grep -q '>filter 3<' vis/filters.svg &&
    grep -q 'class="legend"' vis/filters.svg || fail "vis/filters.svg does not label filters.png's tiles"
grep -q "labelled: beside each picture its .svg (vis/filters.svg" out.txt || fail "visualize report names no SVG: $(cat out.txt)"
expect 1 "--sample: 32 is outside \[0, 31\] \(img.h5 has 32 samples\)" -- "$convoy" visualize cnn.h5 --data img.h5 --out v2 --sample 32
expect 2 "--sample: bad number" -- "$convoy" visualize cnn.h5 --data img.h5 --out v2 --sample x
expect 1 "clf.h5: the model has no conv2d layer" -- "$convoy" visualize clf.h5 --data data.h5 --out v2
expect 1 "data.h5:/x: samples are \(4\) vectors, not images" -- "$convoy" visualize cnn.h5 --data data.h5 --out v2
expect 2 "visualize: --data F.h5 and --out DIR are required" -- "$convoy" visualize cnn.h5 --data img.h5
touch afile
expect 1 "afile: not a directory" -- "$convoy" visualize cnn.h5 --data img.h5 --out afile
[[ ! -e v2 ]] || fail "failed visualize runs created v2"
ls ./*.tmp.* vis/*.tmp.* 2>/dev/null && fail "temporary files left behind"

[[ $fails -eq 0 ]] && echo "e2e_insight: all passed"
exit $((fails > 0))
