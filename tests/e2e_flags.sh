#!/usr/bin/env bash
# The commands' flag syntax is GNU getopt_long's: --flag=value and --flag value, the short forms
# -e -b -t -o -q -h (and -V for the program), attached values (-e3), bundled switches (-qh), --
# ending the flags, no abbreviations, an unknown flag answered with the nearest known one; and a
# write to a full stdout (convoy --help > /dev/full) fails the run.
# usage: e2e_flags.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"

awk 'BEGIN { srand(5); print "a,b,label";
  for (i = 0; i < 64; i++) { a = rand(); b = rand(); printf "%.4f,%.4f,%d\n", a, b, (a > b) } }' >data.csv
printf 'input shape=2\ndense units=2 activation=softmax\ncompile optimizer=sgd loss=sparse_categorical_crossentropy\nfit epochs=7 batch_size=8 seed=1\n' >m.model
expect 0 "" -- "$convoy" convert csv data.csv --label label -o data.h5
[[ -s data.h5 ]] || fail "convert -o wrote no data.h5"

# the same run spelled four ways trains the same weights
expect 0 "" -- "$convoy" train m.model --data data.h5 --epochs 3 --batch-size 16 --threads 1 --checkpoint a.h5
grep -q "^epoch 3/3 " out.txt || fail "long flags: $(cat out.txt)"
expect 0 "" -- "$convoy" train m.model --data=data.h5 --epochs=3 --batch-size=16 --threads=1 --checkpoint=b.h5
grep -q "^epoch 3/3 " out.txt || fail "--flag=value: $(cat out.txt)"
expect 0 "" -- "$convoy" train -e 3 -b 16 -t 1 m.model --data data.h5 --checkpoint c.h5
grep -q "^epoch 3/3 " out.txt || fail "short flags: $(cat out.txt)"
expect 0 "" -- "$convoy" train m.model -e3 -b16 -t1 --data data.h5 --checkpoint d.h5
grep -q "^epoch 3/3 " out.txt || fail "attached values: $(cat out.txt)"
for f in b c d; do same a.h5 $f.h5 || fail "$f.h5 differs from the long flags' a.h5"; done
# -q alone and bundled with a value flag: nothing per epoch
expect 0 "" -- "$convoy" train m.model --data data.h5 -qe 2 --checkpoint q.h5
[[ ! -s out.txt ]] || fail "-qe 2 printed: $(cat out.txt)"
expect 0 "" -- "$convoy" train m.model --data data.h5 -q -e2 --checkpoint q2.h5
[[ ! -s out.txt ]] || fail "-q -e2 printed: $(cat out.txt)"
same q.h5 q2.h5 || fail "-qe 2 and -q -e2 differ"
# a value that starts with a dash is a value
expect 2 "^convoy: --lr: -1 is outside" -- "$convoy" train m.model --data data.h5 --lr=-1
expect 2 "^convoy: --epochs: -3 is outside" -- "$convoy" train m.model --data data.h5 -e -3

# -- ends the flags: a file named like a flag
cp m.model ./-x.model
expect 0 "" -- "$convoy" summary -- -x.model
grep -q "Total params: 6" out.txt || fail "summary -- -x.model: $(cat out.txt)"
expect 2 "^convoy: summary: unknown flag '-x'" -- "$convoy" summary -x.model
expect 2 "^convoy: train: unexpected argument '--quiet'" -- "$convoy" train m.model --data data.h5 -- --quiet

# help: -h alone, bundled after a switch, and --help anywhere
expect 0 "" -- "$convoy" train -h
grep -q "^usage: convoy train " out.txt || fail "train -h: $(head -1 out.txt)"
grep -qE "^  -e, --epochs N +" out.txt || fail "train --help lacks '-e, --epochs N': $(cat out.txt)"
grep -qE "^      --data F.h5 +" out.txt || fail "train --help: a flag without a letter is not aligned: $(cat out.txt)"
expect 0 "" -- "$convoy" train m.model -qh
grep -q "^usage: convoy train " out.txt || fail "train -qh: $(head -1 out.txt)"
expect 0 "" -- "$convoy" -V
grep -q "^convoy [0-9]" out.txt || fail "-V: $(head -1 out.txt)"

# mistakes: exit 2 with one line; no abbreviation is taken, the nearest flag is suggested
expect 2 "^convoy: train: unknown flag '--epoch'; did you mean --epochs\? " -- "$convoy" train m.model --data data.h5 --epoch 3
expect 2 "^convoy: train: unknown flag '--epo'; did you mean --epochs\? " -- "$convoy" train m.model --data data.h5 --epo=3
expect 2 "did you mean --check-every, --checkpoint or --checkpoint-every\?" -- "$convoy" train m.model --data data.h5 --check 3
expect 2 "^convoy: train: unknown flag '--optimiser'; did you mean --optimizer\? " -- "$convoy" train m.model --optimiser adam
expect 2 "^convoy: eval: unknown flag '-threads'; did you mean --threads\? " -- "$convoy" eval a.h5 --data data.h5 -threads 2
expect 2 "^convoy: train: unknown flag '--bogus' \(see convoy train --help\)$" -- "$convoy" train m.model --bogus
expect 2 "^convoy: train: --quiet takes no value \(in '--quiet=yes'\)$" -- "$convoy" train m.model --data data.h5 --quiet=yes
expect 2 "^convoy: train: -e needs a value \(N\)$" -- "$convoy" train m.model --data data.h5 -e
expect 2 "^convoy: train: --epochs needs a value \(N\)$" -- "$convoy" train m.model --data data.h5 --epochs
expect 2 "^convoy: summary: unknown flag '-q'" -- "$convoy" summary m.model -q

# stdout that cannot be written (a full disk): an error and a failing exit, for every printer
if [[ -w /dev/full ]]; then
    for args in "--help" "-V" "--man" "train --help" "help eval" "summary m.model" "eval a.h5 --data data.h5"; do
        # shellcheck disable=SC2086
        "$convoy" $args >/dev/full 2>err.txt
        rc=$?
        [[ $rc -ne 0 ]] || fail "convoy $args >/dev/full exited 0"
        grep -qx "convoy: standard output: write error: No space left on device" err.txt ||
            fail "convoy $args >/dev/full: $(cat err.txt)"
        [[ $(wc -l <err.txt) -eq 1 ]] || fail "convoy $args >/dev/full: not one line: $(cat err.txt)"
    done
else
    echo "e2e_flags: no writable /dev/full: full-disk checks skipped"
fi

[[ $fails -eq 0 ]] && echo "e2e_flags: all passed"
exit $((fails > 0))
