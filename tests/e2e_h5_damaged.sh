#!/usr/bin/env bash
# Damaged HDF5 files that crash or loop inside libhdf5 1.10 (found by mutating a checkpoint; see
# tests/fixtures/h5-damaged/README.md) are refused in one line naming the file, exit 1, nothing
# written, no core dump: the HDF5 library reads each input in a forked child first (src/io/h5probe.c).
# Without that check (CONVOY_H5_PROBE=0) the same files crash convoy: the test tells the two apart.
# usage: e2e_h5_damaged.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$src/tests/e2e-lib.sh"
fx=$src/tests/fixtures/h5-damaged
ulimit -c 0
"$convoy" convert csv "$fx/d.csv" --label label --out d.h5 >/dev/null || fail "convert"
"$convoy" train "$fx/m.model" --data d.h5 --checkpoint good.h5 --quiet || fail "train"

crashed="damaged HDF5 file: the HDF5 library crashed \\(SIGSEGV\\) reading it in a separate process, so convoy refuses it"
# (in a sanitizer build the child may stop at a sanitizer's report first, exit status 1)
if ldd "$convoy" | grep libasan >/dev/null; then
    crashed="damaged HDF5 file: the HDF5 library (crashed \\(SIGSEGV\\)|stopped \\(its process ended with status 1\\)) reading it in a separate process, so convoy refuses it"
fi
for f in "$fx"/ckpt-segv-*.h5; do
    expect 1 "^convoy: $f: $crashed \\(CONVOY_H5_PROBE=0 skips that check\\)$" -- "$convoy" eval "$f" --data d.h5
    expect 1 "^convoy: $f: $crashed" -- "$convoy" predict "$f" --data d.h5 --out p.csv
    [[ -e p.csv ]] && fail "predict wrote p.csv from $f"
    expect 1 "^convoy: $f: $crashed" -- "$convoy" train "$fx/m.model" --data d.h5 --init-from "$f" --checkpoint out.h5
    [[ -e out.h5 ]] && fail "train wrote out.h5 from --init-from $f"
    # under mpirun: every rank probes, rank 0 says it once, nobody hangs
    timeout 120 mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 "$convoy" eval "$f" --data d.h5 \
        >out.txt 2>err.txt
    rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "mpirun eval $f: exit $rc"
    [[ $(grep -cE "$crashed" err.txt) -eq 1 ]] || fail "mpirun eval $f: $(cat err.txt)"
    ! grep -q "Segmentation fault\|Process received signal" err.txt || fail "mpirun eval $f: a crash's report: $(cat err.txt)"
    # without the check the library's crash is convoy's (so this test fails on code without it)
    # (AddressSanitizer reports the SEGV, or the overlapping memcpy before it, itself and exits 1)
    CONVOY_H5_PROBE=0 "$convoy" eval "$f" --data d.h5 >/dev/null 2>err.txt
    rc=$?
    [[ $rc -ge 128 ]] || grep -q "ERROR: AddressSanitizer" err.txt ||
        fail "CONVOY_H5_PROBE=0 eval $f exited $rc: the fixture no longer crashes libhdf5: $(cat err.txt)"
done
# a file libhdf5 loops on: the child's alarm (CONVOY_H5_PROBE_SECONDS, 30 by default)
CONVOY_H5_PROBE_SECONDS=2 expect 1 "^convoy: $fx/ckpt-loop.h5: damaged HDF5 file: the HDF5 library did not finish in 2 s reading it" \
    -- "$convoy" eval "$fx/ckpt-loop.h5" --data d.h5
# intact files read as before, probed or not
expect 0 "" -- "$convoy" eval good.h5 --data d.h5
cp out.txt probed.txt
CONVOY_H5_PROBE=0 expect 0 "" -- "$convoy" eval good.h5 --data d.h5
cmp -s out.txt probed.txt || fail "eval differs with CONVOY_H5_PROBE=0: $(cat out.txt probed.txt)"
[[ $fails -eq 0 ]] && echo "e2e_h5_damaged: all passed"
exit $((fails > 0))
