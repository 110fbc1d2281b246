#!/usr/bin/env bash
# The example models (launch/models/*.model) parse, and what their comments cite is in the
# repository: their text goes into every checkpoint trained from them (the `model` attribute),
# so a reference to a document users do not have (a section of the design contract) would travel with each one.
#   usage: e2e_example_models.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"

n=0
for m in "$src"/launch/models/*.model; do
    name=${m#"$src"/}
    n=$((n + 1))
    # a base line needs its pretrained checkpoint (launch/transfer-study makes it)
    if ! grep -q '^base ' "$m"; then
        expect 0 "" -- "$convoy" summary "$m"
    fi
    grep -nE 'DESIGN|PLAN\.md|§' "$m" && fail "$name cites a document that is not in the repository"
    for ref in $(grep '#' "$m" | grep -oE '(docs|launch|tests|datasets|src|include)/[A-Za-z0-9_./-]*[A-Za-z0-9_]|README\.md'); do
        [[ -e $src/$ref ]] || fail "$name cites $ref, which is not in the repository"
    done
done
[[ $n -ge 10 ]] || fail "only $n example models found"
[[ $fails -eq 0 ]] && echo "e2e_example_models: all passed ($n models)"
exit $((fails > 0))
