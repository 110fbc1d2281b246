#!/usr/bin/env bash
# The progress bar on a real terminal (a pseudo-terminal 80, then 40 columns wide, through
# tests/tty_screen.py): every epoch leaves its "Epoch i/N" row and one bar row, redrawn in place
# (\r), none wrapped by the terminal, each at most COLS - 1 wide, the loss kept at every width
# and the validation accuracy at 80; piped, the same run prints one plain line per epoch. Skips
# (exit 77) where no pseudo-terminal can be opened or python3 is missing.
# usage: e2e_progress_tty.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"
screen=$(dirname "${BASH_SOURCE[0]}")/tty_screen.py
command -v python3 >/dev/null || { echo "SKIP: e2e_progress_tty needs python3"; exit 77; }

# the bar is drawn after an epoch's first step, then at most ten times a second, and its final
# line is drawn over it: at least two redraws an epoch whatever the speed
awk 'BEGIN { srand(5); print "a,b,label";
  for (i = 0; i < 400; i++) { a = rand(); b = rand(); printf "%.4f,%.4f,%d\n", a, b, (a > b) } }' >data.csv
printf 'input shape=2\ndense units=2 activation=softmax\ncompile optimizer=sgd loss=sparse_categorical_crossentropy metrics=accuracy\nfit epochs=2 batch_size=4 seed=1 validation_split=0.25\n' >m.model
expect 0 "" -- "$convoy" convert csv data.csv --label label --out data.h5

for cols in 80 40; do
    python3 "$screen" $cols "$convoy" train m.model --data data.h5 --threads 1 >screen.txt 2>err.txt
    rc=$?
    if [[ $rc -eq 77 ]]; then cat err.txt; exit 77; fi
    [[ $rc -eq 0 ]] || fail "$cols columns: train exited $rc: $(cat err.txt screen.txt)"
    redraws=$(sed -n 's/^redraws //p' screen.txt)
    [[ $redraws -ge 4 ]] || fail "$cols columns: $redraws redraws in place for 2 epochs: $(cat screen.txt)"
    # the display: from the first Epoch row on, two rows an epoch, none wrapped
    display=$(sed -n '/^|Epoch 1\/2$/,$p' screen.txt | sed '${/^|$/d}')
    [[ $(sed -n 1p <<<"$display") == "|Epoch 1/2" && $(sed -n 3p <<<"$display") == "|Epoch 2/2" ]] ||
        fail "$cols columns: not an Epoch row and a bar row per epoch: $(cat screen.txt)"
    [[ $(wc -l <<<"$display") -eq 4 ]] || fail "$cols columns: $(wc -l <<<"$display") rows for 2 epochs: $(cat screen.txt)"
    grep -q '^+' <<<"$display" && fail "$cols columns: the terminal wrapped a row: $(cat screen.txt)"
    while IFS= read -r row; do
        [[ ${#row} -le $cols ]] || fail "$cols columns: a row of $((${#row} - 1)) characters: ${row#?}"
    done <<<"$display"
    for e in 2 4; do
        bar=$(sed -n ${e}p <<<"$display")
        grep -qE ' - loss: [0-9.]+' <<<"$bar" || fail "$cols columns: epoch $((e / 2)) lost its loss: $bar"
        [[ $cols -lt 80 ]] || grep -qE 'val_accuracy: [0-9.]+' <<<"$bar" ||
            fail "$cols columns: epoch $((e / 2)) lost val_accuracy: $bar"
    done
    cp screen.txt screen-$cols.txt
done

# not a terminal: one line per epoch
expect 0 "" -- "$convoy" train m.model --data data.h5 --threads 1
[[ $(grep -c '^epoch [12]/2 ' out.txt) -eq 2 && $(grep -vc '^epoch ' out.txt) -eq 1 ]] ||
    fail "piped: not one plain line per epoch: $(cat out.txt)"
grep -q $'\r' out.txt && fail "piped: a carriage return in the output"

[[ $fails -eq 0 ]] && echo "e2e_progress_tty: all passed"
exit $((fails > 0))
