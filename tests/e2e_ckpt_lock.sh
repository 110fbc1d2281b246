#!/usr/bin/env bash
# Issue 23: two runs writing one checkpoint. A run holds an advisory lock (flock on CKPT.lock)
# for as long as it runs; a second run naming the same --checkpoint is refused at its start
# (exit 1) before it writes anything; the kernel drops the lock of a SIGKILLed run, so nothing
# stale blocks the next one. The holder is stopped (SIGSTOP) while the others try: no timing.
# One "case:" comment per named bad input.
#   usage: e2e_ckpt_lock.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
source "$3/tests/e2e-lib.sh"
e2e_start "$@"
two_class 120
printf 'input shape=4\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy\nfit epochs=1 batch_size=16\n' > m.model
cv train m.model --data d.h5 --quiet --checkpoint c.h5 || fail "train"
[[ -e c.h5.lock ]] && fail "a finished run left its lock file"
cp c.h5 before.h5

# hold: a run on c.h5 that goes on until killed, stopped once it holds the lock ($holder)
hold() {
    "$convoy" train m.model --data d.h5 --quiet --epochs 1000000 --resume c.h5 --checkpoint c.h5 >/dev/null 2>&1 &
    holder=$!
    for _ in $(seq 600); do [[ -s c.h5.lock ]] && break; sleep 0.1; done
    kill -STOP $holder
    [[ $(cat c.h5.lock 2>/dev/null) == "$holder" ]] || fail "the running run's lock file does not hold its pid"
}
hold
# case: a second run with the same --checkpoint, refused at start with the holder's pid
expect 1 "^convoy: c.h5 is being written by another run \(pid $holder\); choose another --checkpoint or wait$" -- \
    cv train m.model --data d.h5 --checkpoint c.h5 --log second.csv
[[ -e second.csv ]] && fail "the refused run wrote its --log"
# case: the same checkpoint by another name (./c.h5), resumed in place (--resume F --checkpoint F)
expect 1 "^convoy: ./c.h5 is being written by another run \(pid $holder\)" -- \
    cv train m.model --data d.h5 --epochs 3 --resume c.h5 --checkpoint ./c.h5
# case: the second run under mpirun -np 2: refused by rank 0, and rank 1 does not hang
if command -v mpirun >/dev/null; then
    timeout 120 mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 \
        "$convoy" train m.model --data d.h5 --quiet --checkpoint c.h5 >out.txt 2>err.txt
    rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "mpirun -np 2 on a locked checkpoint exited $rc"
    grep -q "c.h5 is being written by another run (pid $holder)" err.txt || fail "mpirun: $(cat err.txt)"
fi
# still allowed while it runs: reading the checkpoint, and another --checkpoint
cv eval c.h5 --data d.h5 >/dev/null || fail "eval of a checkpoint being written"
cv train m.model --data d.h5 --quiet --checkpoint other.h5 || fail "another --checkpoint beside a running run"
# case: the holder SIGKILLed: its lock goes with it; the next run takes over the lock file and removes it
kill -KILL $holder && wait $holder 2>/dev/null
[[ -e c.h5.lock ]] || fail "the killed run's lock file is not there (the case tests nothing)"
cv train m.model --data d.h5 --quiet --epochs 2 --resume c.h5 --checkpoint c.h5 2>err.txt ||
    fail "the run after a SIGKILLed one: $(cat err.txt)"
[[ -e c.h5.lock ]] && fail "the run after a SIGKILLed one left the lock file"
# case: a checkpoint that is a character device (a rename would replace it), refused at start
if mknod null c 1 3 2>/dev/null; then
    expect 1 "^convoy: null: not a regular file \(this output is written beside it and renamed over it\)$" -- \
        cv train m.model --data d.h5 --checkpoint null
    [[ -c null ]] || fail "--checkpoint on a device replaced the device"
else
    echo "skipped: mknod is not allowed here (the character-device case)"
fi
exit $((fails > 0))
