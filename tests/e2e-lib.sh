# Shared by the end-to-end scripts (sourced; not a test itself): failure counting and `expect`.
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE PATTERN -- command...: exit status CODE and, when PATTERN is given, a one-line
# stderr matching it; stdout goes to out.txt, stderr to err.txt
expect() {
    local code=$1 pattern=$2
    shift 3
    "$@" >out.txt 2>err.txt
    local rc=$?
    [[ $rc -eq $code ]] || fail "'$*' exited $rc, wanted $code: $(cat err.txt)"
    if [[ -n $pattern ]]; then
        grep -qE -- "$pattern" err.txt || fail "'$*' stderr lacks /$pattern/: $(cat err.txt)"
        [[ $(wc -l <err.txt) -eq 1 ]] || fail "'$*' error is not one line: $(cat err.txt)"
    fi
}

# same A.h5 B.h5: the two checkpoints hold the same weights and optimizer state, value for value
# (h5diff without a tolerance compares exactly, attributes too; far quicker than a text dump)
same() { h5diff -q "$1" "$2" /layers /layers && h5diff -q "$1" "$2" /optimizer /optimizer; }

# fmnist_cnn "FIT LINE" > F.model: launch/models/fmnist-cnn.model with another fit line
fmnist_cnn() { grep -v '^#' "$src/launch/models/fmnist-cnn.model" | grep -v '^fit' | grep .; echo "$1"; }

# near TOL A.h5 B.h5 PATH [PATH_B]: the datasets at or below PATH (in A; PATH_B in B) equal within
# TOL (h5diff -d), their crc32c attributes left out: a checksum differs with any bit of its tensor
# (docs/hdf5.md), so only exact comparisons (`same`) keep it
near() {
    local tol=$1 a=$2 b=$3 p=$4 q=${5:-$4} ex=()
    while read -r kind path; do
        [[ $kind == dataset && ( $path == "$p" || $path == "$p"/* ) ]] && ex+=(--exclude-attribute "$path")
    done < <(h5dump -n "$a")
    h5diff -q -d "$tol" "${ex[@]}" "$a" "$b" "$p" "$q"
}

# two_class ROWS: d.csv, four features and a label, 1 where the first exceeds the second (seeded:
# the same file every run), and d.h5 converted from it by $convoy
two_class() {
    awk -v n="$1" 'BEGIN { srand(5); print "a,b,c,d,label"; for (i = 0; i < n; i++) { a = rand(); b = rand();
      printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, rand(), rand(), (a > b ? 1 : 0) } }' > d.csv &&
        "$convoy" convert csv d.csv --label label --out d.h5 >/dev/null || fail "convert d.csv"
}

# e2e_start CONVOY SCRATCH_DIR SOURCE_DIR: a script's arguments as $convoy, $dir and $src, and
# an empty scratch directory to work in; cv runs convoy for at most a minute (a hang fails, 124)
e2e_start() {
    convoy=$1 dir=$2 src=$3
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
}
cv() { timeout -k 5 60 "$convoy" "$@"; }

# e2e_need_py "MODULE..." "PACKAGE...": $py is Debian's python3; the script skips (exit 77, ctest's
# SKIP_RETURN_CODE) with the packages to install when it cannot import every MODULE
e2e_need_py() {
    py=/usr/bin/python3
    local mods=($1) list
    $py -c "import $(IFS=,; echo "${mods[*]}")" 2>/dev/null && return 0
    list="${mods[*]:0:${#mods[@]}-1}"
    list="${list// /, }${list:+ or }${mods[-1]}"
    echo "SKIP: $py lacks $list (apt-get install $2)"
    exit 77
}

# idx_pair N H W: images.idx, N random H x W grey images, and labels.idx, their labels cycling 0..9
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
idx_pair() {
    { printf '\x00\x00\x08\x03'; be32 "$1"; be32 "$2"; be32 "$3"; head -c $(($1 * $2 * $3)) /dev/urandom; } > images.idx
    { printf '\x00\x00\x08\x01'; be32 "$1"; for ((i = 0; i < $1; i++)); do printf "\\$(printf %03o $((i % 10)))"; done; } > labels.idx
}

# random datasets, seeded: NAME N H W C uint8|float CLASSES (float: normal, mean 1, sd 3)
rand_data() {
    /usr/bin/python3 - "$@" <<'EOF' || fail "make $1"
import sys, h5py, numpy as np
name, n, h, w, c, kind, k = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], int(sys.argv[7])
r = np.random.default_rng(n * 7 + h)
shape = (n, h, w, c) if h else (n, c)
x = r.integers(0, 256, shape).astype(np.uint8) if kind == "uint8" else (r.standard_normal(shape) * 3 + 1).astype(np.float32)
with h5py.File(name, "w") as f:
    f["x"] = x
    f["y"] = (np.arange(n) % k).astype(np.int32)
EOF
}
