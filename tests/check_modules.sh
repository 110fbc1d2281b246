#!/bin/bash
# The modules' layering (README "Project layout", docs/architecture.md): every public header names its module ("Module NAME"
# in its opening comment) and each module's main header lists the modules it may call
# ("May call: a, b." or "May call: nothing."). This checks every #include of src/ and
# include/convoy/ against those lists and that the modules form no circle.
# Usage: check_modules.sh SOURCE_ROOT
set -u
root=${1:?usage: check_modules.sh SOURCE_ROOT}
cd "$root" || exit 2
fail=0
declare -A owner allowed main
for h in include/convoy/*.h include/convoy/*.h.in; do
    name=$(basename "$h" .in)
    [ "$name" = convoy.h ] && continue # the umbrella include of every header
    m=$(awk 'NR == 1, /\*\// { if (match($0, /Module [a-z]+/)) { print substr($0, RSTART + 7, RLENGTH - 7); exit } }' "$h")
    if [ -z "$m" ]; then
        echo "$h: its opening comment names no module (\"Module NAME\")"
        fail=1
        continue
    fi
    owner[$name]=$m
done
# a module's main header: the one whose opening comment says what it may call
for h in include/convoy/*.h src/*/*.h; do
    list=$(awk 'NR == 1, /\*\// { if (match($0, /May call: [a-z, ]+\./)) { print substr($0, RSTART + 10, RLENGTH - 11); exit } }' "$h")
    [ -z "$list" ] && continue
    case $h in src/*) m=$(basename "$(dirname "$h")") ;; *) m=${owner[$(basename "$h")]:-?} ;; esac
    if [ -n "${main[$m]:-}" ]; then
        echo "$h: module $m's may-call list is already in ${main[$m]}"
        fail=1
    fi
    main[$m]=$h
    allowed[$m]=" $(echo "$list" | tr -d ',') "
done
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for d in src/*/; do
    m=$(basename "$d")
    case $m in install | python) continue ;; esac # build rules; the Python package (no C)
    if [ -z "${main[$m]:-}" ]; then
        echo "module $m (src/$m/) has no main header saying \"May call: ...\""
        fail=1
        continue
    fi
done
for f in src/*/*.c src/*/*.h include/convoy/*.h; do
    case $f in
    src/install/*) continue ;;
    src/*) m=$(basename "$(dirname "$f")") ;;
    *) m=${owner[$(basename "$f")]:-}; [ -z "$m" ] && continue ;;
    esac
    while read -r inc; do
        case $inc in
        convoy/*) n=${owner[${inc#convoy/}]:-} ;;
        */*) n=${inc%%/*} ;;
        *) continue ;;
        esac
        [ -z "$n" ] || [ "$n" = "$m" ] && continue
        echo "$m $n" >> "$edges"
        case ${allowed[$m]:-} in
        *" $n "*) ;;
        *)
            echo "$f: includes $inc (module $n), which module $m may not call (${main[$m]:-its main header}: May call:${allowed[$m]:- nothing})"
            fail=1
            ;;
        esac
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
if ! sort -u "$edges" | tsort > /dev/null 2> "$edges.err"; then
    echo "the modules call each other in a circle:"
    cat "$edges.err"
    fail=1
fi
rm -f "$edges.err"
[ $fail = 0 ] && echo "modules: $(sort -u "$edges" | wc -l) calls between ${#main[@]} modules, all allowed, no circle"
exit $fail
