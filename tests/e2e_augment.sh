#!/usr/bin/env bash
# Augmentation end to end: `convoy augment` writes the PNG files and the contact sheet and
# reports every bad input clearly; training with an augment line gives byte-identical weights
# at 1 and 2 ranks (--reproducible), in memory and streamed, and after a resume, and differs
# from training without it.   usage: e2e_augment.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
weights() { for ds in layers/02_dense/kernel layers/02_dense/bias; do h5dump -d "$ds" "$1" | tail -n +3; done; }
# expect RC PATTERN -- command...: exit status RC and stderr matching PATTERN
expect() {
    local want=$1 pat=$2
    shift 3
    "$@" > out.txt 2> err.txt
    local rc=$?
    [[ $rc -eq $want ]] || fail "$* exited $rc (wanted $want): $(cat err.txt)"
    [[ -z "$pat" ]] || grep -q -- "$pat" err.txt || fail "$*: stderr '$(cat err.txt)' lacks '$pat'"
}

# 120 random 12x10 grey images as IDX files (labels cycling 0..9), converted to img.h5
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
n=120
{ printf '\x00\x00\x08\x03'; be32 $n; be32 12; be32 10; head -c $((n * 120)) /dev/urandom; } > images.idx
{ printf '\x00\x00\x08\x01'; be32 $n; for ((i = 0; i < n / 10; i++)); do printf '\0\1\2\3\4\5\6\7\10\11'; done; } > labels.idx
"$convoy" convert idx images.idx labels.idx --out img.h5 > /dev/null || fail "convert idx"
printf 'a,b,label\n1,2,0\n3,4,1\n' > tab.csv
"$convoy" convert csv tab.csv --label label --out tab.h5 > /dev/null || fail "convert csv"

cat > aug.model <<'M'
input   shape=12,10,1
flatten
dense   units=10 activation=softmax
compile optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit     epochs=2 batch_size=16 seed=3
augment rotation_range=20 width_shift_range=0.2 height_shift_range=2 zoom_range=0.2 shear_range=5
        horizontal_flip=true brightness_range=0.8,1.2 noise_stddev=0.02 fill_mode=reflect
M
grep -v '^augment\|^        horizontal' aug.model > plain.model
printf '# only the augmentation\naugment horizontal_flip=true vertical_flip=true\n' > flips.aug

# --- convoy augment ---------------------------------------------------------------------------
expect 0 "" -- "$convoy" augment --data img.h5 --config aug.model --count 130 --save-to-dir out/pngs --save-prefix s
[[ $(ls out/pngs/s_*_*.png | grep -vc contact_sheet) -eq 130 ]] || fail "130 images expected: $(ls out/pngs | head -3)"
[[ -s out/pngs/s_contact_sheet.png ]] || fail "no contact sheet"
grep -q "wrote 130 augmented images" out.txt || fail "augment output: $(cat out.txt)"
ls out/pngs | grep '^s_119_[0-9]*\.png$' >/dev/null || fail "row 119 missing"
[[ $(ls out/pngs | grep -c '^s_5_') -eq 2 ]] || fail "rows 0..9 come twice (epochs 0 and 1) in 130 images"
expect 0 "" -- "$convoy" augment --data img.h5 --config flips.aug --count 3 --save-to-dir out/flips
[[ $(ls out/flips | wc -l) -eq 4 ]] || fail "an augment file: $(ls out/flips)"
# same seed, same files; another seed, other names
expect 0 "" -- "$convoy" augment --data img.h5 --config aug.model --count 5 --save-to-dir out/again --save-prefix s
for f in out/again/s_*_*.png; do cmp -s "$f" "out/pngs/$(basename "$f")" || fail "$f differs from the first run"; done
expect 0 "" -- "$convoy" augment --data img.h5 --config aug.model --count 5 --save-to-dir out/seed --save-prefix s --seed 9
[[ -z "$(comm -12 <(ls out/seed) <(ls out/again) | grep -v contact)" ]] || fail "--seed 9 gives the same names"

expect 2 "are required" -- "$convoy" augment --data img.h5 --config aug.model --count 3
expect 2 "count" -- "$convoy" augment --data img.h5 --config aug.model --count 0 --save-to-dir out/x
expect 2 "count: bad number 'ten'" -- "$convoy" augment --data img.h5 --config aug.model --count ten --save-to-dir out/x
expect 1 "plain.model: no \`augment\` line" -- "$convoy" augment --data img.h5 --config plain.model --count 3 --save-to-dir out/x
expect 1 "tab.h5:/x: samples are vectors" -- "$convoy" augment --data tab.h5 --config flips.aug --count 3 --save-to-dir out/x
expect 2 "unsupported format 'tiff'" -- "$convoy" augment --data img.h5 --config aug.model --count 3 --save-to-dir out/x --save-format tiff
expect 1 "missing.h5" -- "$convoy" augment --data missing.h5 --config aug.model --count 3 --save-to-dir out/x
touch afile
expect 1 "afile: exists and is not a directory" -- "$convoy" augment --data img.h5 --config aug.model --count 3 --save-to-dir afile
expect 1 "afile: exists and is not a directory" -- "$convoy" augment --data img.h5 --config aug.model --count 3 --save-to-dir afile/sub
chmod 500 out && [[ ! -w out ]] && {  # not as root, which may write anyway
    expect 1 "out/ro: cannot create the directory" -- "$convoy" augment --data img.h5 --config aug.model --count 3 --save-to-dir out/ro; }
chmod 700 out
printf 'augment horizontal_flip=true\ndense units=3\n' > bad.aug
expect 1 "bad.aug:2: \`dense\` in an augment file" -- "$convoy" augment --data img.h5 --config bad.aug --count 3 --save-to-dir out/x
[[ ! -e out/x ]] || [[ -z "$(ls out/x)" ]] || fail "a failed run left files in out/x"

# --- training -------------------------------------------------------------------------------
t() { "$convoy" train "$@" --data img.h5 --quiet --threads 1 --reproducible; }
t aug.model --checkpoint a1.h5 || fail "train with augment"
t plain.model --checkpoint p1.h5 || fail "train without augment"
[[ "$(weights a1.h5)" != "$(weights p1.h5)" ]] || fail "the augment line changed nothing"
t aug.model --stream --checkpoint as.h5 || fail "streamed"
[[ "$(weights a1.h5)" == "$(weights as.h5)" ]] || fail "streamed differs from in memory"
t aug.model --epochs 1 --checkpoint half.h5 || fail "first epoch"
t aug.model --resume half.h5 --checkpoint res.h5 || fail "resume"
[[ "$(weights a1.h5)" == "$(weights res.h5)" ]] || fail "resumed run differs"
if command -v mpirun > /dev/null; then
    mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$convoy" train aug.model --data img.h5 --quiet \
        --reproducible --checkpoint a2.h5 || fail "2 ranks"
    [[ "$(weights a1.h5)" == "$(weights a2.h5)" ]] || fail "2 ranks differ from 1"
fi

[[ $fails -eq 0 ]] && echo "e2e_augment: all passed"
exit $((fails > 0))
