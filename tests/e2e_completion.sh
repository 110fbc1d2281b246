#!/usr/bin/env bash
# The shell completions: `convoy --completion bash|zsh` prints scripts generated from the flag
# tables, the build writes them to build/completion/ and `cmake --install` puts them in
# share/bash-completion/completions/convoy and share/zsh/site-functions/_convoy; bash (and zsh,
# where it is installed: tests/zsh_complete.zsh) then complete commands, every flag --help
# lists (in both forms), and flag values: files, folders, the words an argument names.
# usage: e2e_completion.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
. "$src/tests/e2e-lib.sh"
build=$(dirname "$convoy")

for shell in bash zsh; do
    expect 0 "" -- "$convoy" --completion $shell
    [[ -s out.txt && ! -s err.txt ]] || fail "--completion $shell: $(cat err.txt)"
    cp out.txt completion.$shell
done
cmp -s completion.bash "$build/completion/bash/convoy" || fail "build/completion/bash/convoy differs from --completion bash"
cmp -s completion.zsh "$build/completion/zsh/_convoy" || fail "build/completion/zsh/_convoy differs from --completion zsh"
bash -n completion.bash || fail "the bash script does not parse"
expect 2 "^convoy: --completion: unknown shell 'fish' \(bash or zsh\)$" -- "$convoy" --completion fish
expect 2 "^convoy: --completion: name one shell" -- "$convoy" --completion
expect 2 "^convoy: --completion: name one shell" -- "$convoy" --completion bash zsh

# installed where the shells look
if command -v cmake >/dev/null; then
    cmake --install "$build" --prefix "$dir/p" >install.txt 2>&1 || fail "cmake --install: $(tail -3 install.txt)"
    cmp -s completion.bash p/share/bash-completion/completions/convoy || fail "installed bash completion differs"
    cmp -s completion.zsh p/share/zsh/site-functions/_convoy || fail "installed zsh completion differs"
fi

touch data.h5 dd.h5 other.csv
mkdir -p runs
# bash_complete WORD...: what _convoy offers for the last word, sorted, on one line
bash_complete() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _convoy; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$dir/completion.bash" "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}
check() { # check SHELL "GOT" "WANTED" WHAT
    [[ $2 == "$3" ]] || fail "$1: $4: offered [$2], wanted [$3]"
}
check bash "$(bash_complete convoy train --ep)" "--epochs" "convoy train --ep"
check bash "$(bash_complete convoy tr)" "train" "convoy tr"
check bash "$(bash_complete convoy train m.model --check)" "--check-every --checkpoint --checkpoint-every" "--check"
check bash "$(bash_complete convoy train --data d)" "data.h5 dd.h5" "--data d (files)"
check bash "$(bash_complete convoy train --data = d)" "data.h5 dd.h5" "--data=d (bash splits at =)"
check bash "$(bash_complete convoy predict --images r)" "runs" "--images r (folders)"
check bash "$(bash_complete convoy train -b a)" "all" "-b a (B|all)"
check bash "$(bash_complete convoy train --epochs '')" "" "--epochs (a number: nothing)"
check bash "$(bash_complete convoy help e)" "eval export" "help e"
check bash "$(bash_complete convoy --completion '')" "bash zsh" "--completion"
check bash "$(bash_complete convoy --man '')" "hdf5 model" "--man"
check bash "$(bash_complete convoy train -- --e)" "" "after --"

have_zsh=0
if command -v zsh >/dev/null; then
    mkdir -p zfunc && cp completion.zsh zfunc/_convoy
    zsh_complete() { timeout 60 zsh -f "$src/tests/zsh_complete.zsh" "$dir/zfunc" "$1" | tr '\n' ' ' | sed 's/ $//'; }
    if [[ $(zsh_complete 'convoy tr') == train ]]; then
        have_zsh=1
        check zsh "$(zsh_complete 'convoy train --ep')" "--epochs" "convoy train --ep"
        check zsh "$(zsh_complete 'convoy train --data=d')" "data.h5 dd.h5" "--data=d"
        check zsh "$(zsh_complete 'convoy train --data d')" "data.h5 dd.h5" "--data d"
        check zsh "$(zsh_complete 'convoy train -b ')" "all" "-b (B|all)"
        check zsh "$(zsh_complete 'convoy --completion ')" "bash zsh" "--completion"
        check zsh "$(zsh_complete 'convoy --man ')" "hdf5 model" "--man"
        check zsh "$(zsh_complete 'convoy eval --con')" "--confusion --confusion-svg" "eval --con"
    else
        echo "e2e_completion: zsh cannot complete on a pseudo-terminal here: its checks skipped"
    fi
else
    echo "e2e_completion: zsh is not installed: its checks skipped"
fi

# every command: the flags offered for '-' are exactly those of its --help, both forms
commands=$("$convoy" --help | awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }')
for c in $commands; do
    "$convoy" "$c" --help >help.txt || fail "$c --help"
    wanted=$(grep -oE '^  (-[a-zA-Z], |    )--[a-z0-9-]+' help.txt | tr -s ', ' '\n\n' | grep . | sort | tr '\n' ' ' | sed 's/ $//')
    check bash "$(bash_complete convoy "$c" -)" "$wanted" "convoy $c -"
    if ((have_zsh)); then
        check zsh "$(zsh_complete "convoy $c --" | tr ' ' '\n' | grep -- '^--' | sort | tr '\n' ' ' | sed 's/ $//')" \
            "$(tr ' ' '\n' <<<"$wanted" | grep -- '^--' | tr '\n' ' ' | sed 's/ $//')" "convoy $c --"
    fi
done

[[ $fails -eq 0 ]] && echo "e2e_completion: all passed"
exit $((fails > 0))
