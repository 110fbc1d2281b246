#!/usr/bin/env bash
# The program's help, version, man page and exit codes: every command that `convoy --help` lists
# answers `convoy CMD --help` (and `convoy help CMD`) with its flags, the man page (build/convoy.1,
# generated from the same tables) has a section per command holding exactly those flags and
# renders with man, --version names the project version and the build facts, and each kind of
# mistake exits with its documented code and a one-line message.
# usage: e2e_help.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"

expect 0 "" -- "$convoy" --help
[[ -s err.txt ]] && fail "--help wrote to stderr: $(cat err.txt)"
commands=$(awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }' out.txt)
[[ $(wc -w <<<"$commands") -ge 6 ]] || fail "--help lists too few commands: $commands"
for c in train eval predict summary convert bench; do
    grep -qx "$c" <<<"$commands" || fail "--help does not list $c"
done
for code in 0 1 2 75; do grep -qE "^  $code  " out.txt || fail "--help does not document exit status $code"; done
expect 0 "" -- "$convoy" -h
expect 0 "" -- "$convoy" help

"$convoy" --man >man.1 2>err.txt || fail "--man exited $?: $(cat err.txt)"
page=$(dirname "$convoy")/convoy.1
cmp -s man.1 "$page" || fail "$page (built) differs from convoy --man"
# the man page's command sections are the --help list, in order
[[ $(sed -nE 's/^\.SS "([a-z-]+) .*/\1/p' man.1) == "$commands" ]] ||
    fail "man page sections: $(sed -nE 's/^\.SS "([a-z-]+) .*/\1/p' man.1 | tr '\n' ' ') vs --help: $commands"

allflags=""
for c in $commands; do
    expect 0 "" -- "$convoy" "$c" --help
    head -1 out.txt | grep "^usage: convoy $c " >/dev/null || fail "$c --help: $(head -1 out.txt)"
    "$convoy" help "$c" >help.txt 2>&1 || fail "help $c exited $?"
    cmp -s out.txt help.txt || fail "'convoy help $c' differs from 'convoy $c --help'"
    # every flag of the command's --help, and no other, in its man section (roff escapes '-')
    flags=$(sed -nE 's/^  (-[a-zA-Z], |    )--([a-z0-9-]+).*/\2/p' out.txt | grep -vx help | sort)
    section=$(awk -v c="$c" '/^\.S[SH] / { on = index($0, ".SS \"" c " ") == 1; next } on' man.1)
    manflags=$(sed -nE 's/^(\\fB\\-[a-zA-Z]\\fR, )?\\fB\\-\\-([a-z0-9\\-]+)\\fR.*/\2/p' <<<"$section" | sed 's/\\-/-/g' | sort)
    [[ $c != train || $(wc -l <<<"$flags") -ge 20 ]] || fail "train --help: too few flags read: $flags"
    allflags+=$'\n'$flags
    [[ $flags == "$manflags" ]] || fail "$c: --help flags [$(tr '\n' ' ' <<<"$flags")] vs man [$(tr '\n' ' ' <<<"$manflags")]"
    # --flag explained on the same line in both
    while read -r f; do
        [[ -z $f ]] && continue
        grep -qE -- "^  (-[a-zA-Z], |    )--$f( [^ ]+)? +[^ ]" out.txt || fail "$c --help: --$f has no description"
    done <<<"$flags"
done

# the manual's examples use only flags that exist
for f in $(awk '/^\.SH / { on = $2 == "EXAMPLES"; next } on' man.1 | sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -qx -- "${f#--}" <<<"$allflags" || fail "man page EXAMPLES use $f, which no command has"
done

# the page renders
if command -v man >/dev/null; then
    MANWIDTH=100 man -l man.1 >man.txt 2>err.txt || fail "man -l exited $?: $(cat err.txt)"
    grep -qE "error" err.txt && fail "man -l: $(cat err.txt)"
    for s in NAME SYNOPSIS DESCRIPTION COMMANDS "EXIT STATUS" ENVIRONMENT; do
        grep -q "^$s" man.txt || fail "rendered man page lacks $s"
    done
    grep -qE -- "--checkpoint-every N\|epoch" man.txt || fail "rendered man page lacks train's flags"
fi

# --version: project(VERSION) of CMakeLists.txt, then the build facts
version=$(sed -nE 's/^project\(convoy VERSION ([0-9.]+) .*/\1/p' "$src/CMakeLists.txt")
expect 0 "" -- "$convoy" --version
[[ $(head -1 out.txt) == "convoy $version" ]] || fail "--version: '$(head -1 out.txt)', wanted 'convoy $version'"
for k in build openmp gemm mpi hdf5 libpng; do grep -qE "^  $k: +[^ ]" out.txt || fail "--version lacks $k: $(cat out.txt)"; done
grep -qE "^  gemm: +(avx512|avx2|generic|openblas) " out.txt || fail "--version gemm line: $(grep gemm out.txt)"
CONVOY_GEMM=generic "$convoy" --version | grep -E "^  gemm: +generic " >/dev/null || fail "CONVOY_GEMM=generic not reported"

# exit codes: 2 for a command line that cannot work, 1 for a run that failed
printf 'input shape=2\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n' >m.model
expect 2 "^convoy: unknown command 'frobnicate' \(see convoy --help\)$" -- "$convoy" frobnicate
expect 2 "^convoy: unknown option '--bogus' \(see convoy --help\)$" -- "$convoy" --bogus
expect 2 "^convoy: train: unknown flag '--bogus' \(see convoy train --help\)$" -- "$convoy" train m.model --bogus
expect 2 "^convoy: train: --epochs needs a value" -- "$convoy" train m.model --data d.h5 --epochs
expect 2 "^convoy: train: missing MODEL" -- "$convoy" train --data d.h5
expect 2 "^convoy: train: unexpected argument 'extra'" -- "$convoy" train m.model extra --data d.h5
expect 2 "^convoy: train: --data F.h5 is required" -- "$convoy" train m.model
expect 2 "^convoy: --epochs: bad number 'x'" -- "$convoy" train m.model --data d.h5 --epochs x
expect 2 "^convoy: --lr: -1 is outside" -- "$convoy" train m.model --data d.h5 --lr -1
expect 2 "^convoy: --optimizer: unknown optimizer 'foo'" -- "$convoy" train m.model --data d.h5 --optimizer foo
expect 2 "^convoy: --threads: bad number" -- "$convoy" eval c.h5 --data d.h5 --threads many
expect 2 "^convoy: convert: unknown source 'xls'" -- "$convoy" convert xls f --out o.h5
expect 2 "^convoy: help: unknown command 'nope'" -- "$convoy" help nope
"$convoy" >out.txt 2>err.txt
[[ $? -eq 2 ]] || fail "convoy without arguments: exit not 2"
grep -q "^usage: convoy COMMAND" err.txt || fail "convoy without arguments: no usage on stderr"
expect 1 "^convoy: nope.model: " -- "$convoy" train nope.model --data d.h5
expect 1 "^convoy: d.h5: " -- "$convoy" train m.model --data d.h5
expect 0 "" -- "$convoy" summary m.model
if command -v mpirun >/dev/null; then
    mpirun -np 2 --oversubscribe --bind-to none "$convoy" summary m.model --bogus >out.txt 2>err.txt
    rc=$?
    [[ $rc -eq 2 ]] || fail "usage error under mpirun -np 2: exit $rc, wanted 2: $(cat err.txt)"
    [[ $(grep -c "unknown flag '--bogus'" err.txt) -eq 1 ]] || fail "usage error under mpirun (once, by rank 0): $(cat err.txt)"
fi

[[ $fails -eq 0 ]] && echo "e2e_help: all passed"
exit $((fails > 0))
