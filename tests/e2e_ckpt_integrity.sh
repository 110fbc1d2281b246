#!/usr/bin/env bash
# Checkpoint integrity through the program (issue 23; the file-level cases are
# tests/test_ckpt_integrity.c): resuming a checkpoint that has all its epochs says there is
# nothing to do, exits 0 and writes nothing; a NaN weight stops eval with one line naming the
# dataset.   usage: e2e_ckpt_integrity.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"

awk 'BEGIN { srand(3); print "x1,x2,x3,label";
  for (i = 0; i < 300; i++) { a = rand(); b = rand(); c = rand(); printf "%.4f,%.4f,%.4f,%d\n", a, b, c, (a > b ? 1 : 0) }}' > d.csv
"$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert"
cat > m.model <<'M'
input    shape=3
dense    units=8 activation=relu
dense    units=2 activation=softmax
compile  optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=16 seed=4
M
train() { "$convoy" train m.model --data d.h5 --threads 1 "$@"; }
train --checkpoint c.h5 --quiet || fail "2 epochs"
cp c.h5 c-copy.h5

# case 1: --epochs at the checkpoint's epochs: nothing to do, exit 0, no "saved", nothing written
train --resume c.h5 --checkpoint c.h5 --log h.csv --plot p.svg > out.txt 2> err.txt
rc=$?
[[ $rc -eq 0 ]] || fail "resume with nothing to do exited $rc: $(cat err.txt)"
grep -q "nothing to do: c.h5 has 2 epochs done and the run has 2 (--epochs counts the total); nothing trained, nothing written" out.txt ||
    fail "no 'nothing to do' line: $(cat out.txt)"
grep -q "^saved" out.txt && fail "claimed a save: $(cat out.txt)"
cmp -s c.h5 c-copy.h5 || fail "the checkpoint changed"
[[ -e h.csv || -e p.svg ]] && fail "a log or plot was written"
# case 2: --epochs below the checkpoint's
train --resume c.h5 --checkpoint c.h5 --epochs 1 > out.txt 2> err.txt || fail "resume --epochs 1: $(cat err.txt)"
grep -q "nothing to do: c.h5 has 2 epochs done and the run has 1" out.txt || fail "epochs 1: $(cat out.txt)"
cmp -s c.h5 c-copy.h5 || fail "the checkpoint changed (--epochs 1)"
# case 2b: the same under --quiet: the line still says why nothing was written
train --resume c.h5 --checkpoint c.h5 --quiet > out.txt 2> err.txt || fail "resume --quiet: $(cat err.txt)"
grep -q "^nothing to do: c.h5 has 2 epochs done and the run has 2" out.txt || fail "--quiet silenced 'nothing to do': $(cat out.txt)"
cmp -s c.h5 c-copy.h5 || fail "the checkpoint changed (--quiet)"
# one more epoch still trains and saves
train --resume c.h5 --checkpoint c3.h5 --epochs 3 > out.txt 2> err.txt || fail "resume --epochs 3: $(cat err.txt)"
grep -q "^saved c3.h5" out.txt || fail "resume to 3 epochs did not save: $(cat out.txt)"


# case 3: one byte of a saved kernel flipped on disk (at the offset h5dump -p gives): eval,
# predict's load and --resume refuse it with one line naming the dataset, exit 1, the file kept
off=$(h5dump -p -H -d /layers/01_dense/kernel c.h5 | awk '/OFFSET/ { print $2; exit }')
if [[ -n $off ]]; then
    cp c.h5 flip.h5
    byte=$(od -An -tu1 -j $((off + 9)) -N1 flip.h5 | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of=flip.h5 bs=1 seek=$((off + 9)) conv=notrunc status=none
    cp flip.h5 flip-copy.h5
    expect 1 "^convoy: flip.h5:/layers/01_dense/kernel: checksum mismatch \(attribute crc32c is 0x[0-9a-f]+, the data's CRC32C 0x[0-9a-f]+\): the file is damaged \(or the tensor was rewritten without updating or deleting its crc32c\)$" -- \
        "$convoy" eval flip.h5 --data d.h5
    expect 1 "flip.h5:/layers/01_dense/kernel: checksum mismatch" -- train --resume flip.h5 --epochs 3 --checkpoint out.h5
    [[ -e out.h5 ]] && fail "a refused resume wrote its checkpoint"
    cmp -s flip.h5 flip-copy.h5 || fail "a refused load changed the file"
    expect 0 "" -- "$convoy" eval c.h5 --data d.h5
else
    fail "h5dump -p gave no OFFSET for /layers/01_dense/kernel"
fi
exit $((fails > 0))
