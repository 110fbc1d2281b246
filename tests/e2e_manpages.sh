#!/usr/bin/env bash
# The section-5 manual pages: `convoy --man model` (convoy-model(5), from the parser's grammar
# tables) and `convoy --man hdf5` (convoy-hdf5(5)), built beside convoy.1 and installed to
# share/man/man5; convoy-model(5) has a section for every keyword the parser accepts, holding
# that keyword's keys; each of the three pages renders without a warning (man -l, else groff;
# the rendering is skipped, saying so, where neither is installed).
# usage: e2e_manpages.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$src/tests/e2e-lib.sh"
build=$(dirname "$convoy")

for page in model hdf5; do
    expect 0 "" -- "$convoy" --man $page
    [[ ! -s err.txt ]] || fail "--man $page wrote to stderr: $(cat err.txt)"
    cp out.txt convoy-$page.5
    cmp -s convoy-$page.5 "$build/convoy-$page.5" || fail "$build/convoy-$page.5 (built) differs from convoy --man $page"
    head -2 convoy-$page.5 | grep "^\.TH CONVOY-${page^^} 5 " >/dev/null || fail "convoy-$page.5: no .TH line: $(head -2 convoy-$page.5)"
done
expect 2 "^convoy: --man: unknown page 'nope' \(model or hdf5" -- "$convoy" --man nope

# every keyword the parser names (its own list, from an unknown one's error) has a section
printf 'input shape=2\nbogus units=3\n' >bad.model
"$convoy" summary bad.model 2>err.txt
keywords=$(sed -nE 's/.*expected one of ([a-z0-9, ]+)\).*/\1/p' err.txt | tr -d ' ' | tr ',' '\n')
[[ $(wc -l <<<"$keywords") -ge 15 ]] || fail "too few keywords read from the parser: $(cat err.txt)"
sections=$(sed -nE 's/^\.SS "([a-z0-9]+).*/\1/p' convoy-model.5)
[[ $sections == "$keywords" ]] || fail "convoy-model.5 sections [$(tr '\n' ' ' <<<"$sections")] vs the parser's keywords [$(tr '\n' ' ' <<<"$keywords")]"
# a keyword's keys in its section: each key the parser takes on a line, and refuses elsewhere
section() { awk -v k="$1" '/^\.S[SH] / { on = index($0, ".SS \"" k) == 1; next } on' convoy-model.5 | sed 's/\\-/-/g'; }
for kk in conv2d:filters conv2d:kernel conv2d:padding dense:units batchnorm:momentum compile:optimizer \
    compile:learning_rate compile:beta_1 fit:epochs fit:batch_size augment:rotation_range base:checkpoint; do
    k=${kk%%:*} key=${kk#*:}
    section "$k" | grep "^\\\\fB$key=\\\\fR" >/dev/null || fail "convoy-model.5: $k lacks $key="
done
section conv2d | grep 'relu | leaky_relu' >/dev/null || fail "convoy-model.5: conv2d's activation= lacks its choices"
section input | grep '^\\fBshape=\\fR.*(required)' >/dev/null || fail "convoy-model.5: input's shape= is not marked required"
section compile | grep -A1 'beta_1=' | grep 'for adam' >/dev/null || fail "convoy-model.5: beta_1= does not name adam"
! section dense | grep '^\\fBfilters=' >/dev/null || fail "convoy-model.5: dense lists filters="
grep -q 'NN\\fB_batchnorm' convoy-hdf5.5 && grep -q 'gamma, beta, moving_mean, moving_variance' convoy-hdf5.5 ||
    fail "convoy-hdf5.5 lacks batchnorm's tensors"

# installed beside convoy.1
if command -v cmake >/dev/null; then
    cmake --install "$build" --prefix "$dir/p" >install.txt 2>&1 || fail "cmake --install: $(tail -3 install.txt)"
    for page in model hdf5; do
        cmp -s convoy-$page.5 p/share/man/man5/convoy-$page.5 || fail "installed convoy-$page.5 differs or is missing"
    done
fi

# each page renders without a warning
for page in "$build/convoy.1" convoy-model.5 convoy-hdf5.5; do
    if command -v man >/dev/null; then
        MANWIDTH=80 man --warnings -l "$page" >page.txt 2>err.txt || fail "man -l $page exited $?: $(cat err.txt)"
    elif command -v groff >/dev/null; then
        groff -man -Tutf8 -ww "$page" >page.txt 2>err.txt || fail "groff $page exited $?: $(cat err.txt)"
    else
        echo "e2e_manpages: neither man nor groff is installed: rendering not checked"
        break
    fi
    [[ ! -s err.txt ]] || fail "$page renders with warnings: $(head -5 err.txt)"
    grep -q "^NAME" page.txt && grep -q "^SEE ALSO" page.txt || fail "$page: rendered without NAME or SEE ALSO"
done

[[ $fails -eq 0 ]] && echo "e2e_manpages: all passed"
exit $((fails > 0))
