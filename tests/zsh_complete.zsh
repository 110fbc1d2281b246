# zsh_complete.zsh FPATH_DIR LINE: prints, one a line, the matches zsh's completion system offers
# for LINE (as typed before a Tab) with FPATH_DIR first in $fpath: an interactive zsh on a
# pseudo-terminal (zpty), compinit, compadd wrapped to print what it adds, and a Tab that prints
# a marker line after the completion has run. Run under `timeout`.
zmodload zsh/zpty || exit 77
dir=$1 line=$2
zpty z zsh -f -i || exit 77
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { local -a hits; builtin compadd -A hits "$@"; local h; for h in $hits; do print -r -- "<ma""tch>$h</ma""tch>"; done; builtin compadd "$@"; }'
# Tab completes, then prints the marker (its text as typed differs from what it prints); no
# other input may wait meanwhile: zsh skips a completion while typeahead is pending
zpty -w z 'complete-then-mark() { zle complete-word; print -r -- "done-$((40 + 2))"; }; zle -N complete-then-mark; bindkey "^I" complete-then-mark'
zpty -n -w z "$line"$'\t'
zpty -r z out '*done-42*'
print -r -- "$out" | tr -d '\r' | grep -o '<match>[^<]*</match>' | sed 's/<match>//; s/<\/match>//' | sort -u
zpty -d z
