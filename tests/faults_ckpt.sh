#!/usr/bin/env bash
# Issue 23, measured robustness: checkpoint saves under injected faults. tests/fault_shim.c
# (LD_PRELOAD) fails the Nth write, pwrite, fsync, close or rename of a save, or makes the Nth
# write short and the next one fail (a disk filling up), for N = 1, 2, ... until the save has
# no Nth such call. Every time: the run exits non-zero with one line naming the checkpoint, the
# previous checkpoint is there byte for byte (and convoy still loads it, at its old epoch), and
# neither a temporary file nor the run's lock is left. A short write alone is finished by the
# save. One "case:" comment per kind of fault.
#   usage: faults_ckpt.sh CONVOY SCRATCH_DIR SOURCE_DIR [LIBASAN.so:]SHIM.so
# (a sanitized build preloads ASan's runtime first: it must come before any other library)
set -uo pipefail
src=$3 preload=${4/:/ }
for lib in $preload; do
    if [[ ! -f $lib ]]; then
        echo "SKIP: $lib is not a file: the LD_PRELOAD fault shim cannot be combined with this sanitizer runtime"
        exit 77
    fi
done
source "$src/tests/e2e-lib.sh"
e2e_start "$@"
two_class 120
printf 'input shape=4\ndense units=8 activation=relu\ndense units=2 activation=softmax\ncompile optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy\nfit epochs=1 batch_size=16\n' > m.model
cv train m.model --data d.h5 --quiet --checkpoint base.h5 || fail "train the first epoch"
attr() { h5dump -a "$2" "$1" 2>/dev/null | awk '/\(0\):/ { print $2 }'; }
[[ $(attr base.h5 /epoch) == 1 ]] || fail "base.h5 is not at epoch 1"

# faulty OP N [train flags...]: the resumed run (epoch 2) with the Nth OP of its saves failing;
# sets $fired (whether the save had an Nth OP) and $rc
faulty() {
    local op=$1 n=$2
    shift 2
    cp base.h5 c.h5 && rm -f fired.txt
    CONVOY_FAULT=$op:$n CONVOY_FAULT_LOG=$PWD/fired.txt LD_PRELOAD=$preload \
        cv train m.model --data d.h5 --quiet --epochs 2 --resume c.h5 --checkpoint c.h5 "$@" >out.txt 2>err.txt
    rc=$?
    fired=0
    [[ -s fired.txt ]] && fired=1
}

# intact WHAT [GLOBAL_STEP]: the failed run left the previous checkpoint (base.h5's bytes, or
# the last successful save's global_step) and nothing else
intact() {
    local what=$1 step=${2:-}
    [[ $rc -ne 0 ]] || fail "$what: the run exited 0 after a failed save"
    grep -qE "^convoy: (\./)?c\.h5: " err.txt && [[ $(wc -l <err.txt) -eq 1 ]] ||
        fail "$what: no one-line error naming c.h5: $(cat err.txt)"
    if [[ -z $step ]]; then
        cmp -s base.h5 c.h5 || fail "$what: the previous checkpoint changed"
    else
        [[ $(attr c.h5 /train/global_step) == "$step" ]] || fail "$what: c.h5 is not the save of step $step"
    fi
    cv eval c.h5 --data d.h5 >/dev/null 2>&1 || fail "$what: convoy cannot load the previous checkpoint"
    ls | grep '\.tmp\.' >/dev/null && fail "$what: a temporary file was left: $(ls)"
    [[ -e c.h5.lock ]] && fail "$what: the run's lock file was left"
}

declare -A count
# case: write fails at each call of a save
# case: pwrite fails at each call of a save (the in-memory image is written with write: none)
# case: fsync fails at each call of a save
# case: close fails at each call of a save (the probe of the temporary file, then the written one)
# case: rename fails at each call of a save
# case: a short write followed by ENOSPC at each write of a save
for op in write pwrite fsync close rename short; do
    count[$op]=0
    for n in $(seq 1 50); do
        faulty "$op" "$n"
        [[ $fired == 1 ]] || break
        count[$op]=$n
        intact "$op $n"
    done
    # the first call past the last one the save makes: the run went through, the new epoch saved
    [[ $rc -eq 0 && $(attr c.h5 /epoch) == 2 ]] || fail "$op: the run without a fault did not save epoch 2: $(cat err.txt)"
    echo "faults: $op failed at each of ${count[$op]} calls of a save"
done
for op in write fsync close rename short; do
    [[ ${count[$op]} -ge 1 ]] || fail "$op: a save made no such call: the shim or the save changed, the test checks nothing"
done

# case: a short write alone: the save writes the rest, the new checkpoint is whole
faulty shortonly 1
[[ $fired == 1 && $rc -eq 0 && $(attr c.h5 /epoch) == 2 ]] || fail "a short write: rc $rc, fired $fired: $(cat err.txt)"
cv eval c.h5 --data d.h5 >/dev/null 2>&1 || fail "a short write: the checkpoint does not load"

# case: the third of several --checkpoint-every saves fails at its rename: the second one's stays
# (base.h5 is at global step 8; saves at steps 9, 10, then 11 fails)
faulty rename 3 --checkpoint-every 1
[[ $fired == 1 ]] || fail "--checkpoint-every 1 made fewer than three saves"
intact "the third of several saves" 10
# case: the same for a failing fsync
faulty fsync 3 --checkpoint-every 1
intact "the third of several saves, fsync" 10
exit $((fails > 0))
