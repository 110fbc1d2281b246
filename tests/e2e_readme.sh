#!/usr/bin/env bash
# README.md's commands, run as written: every ```sh block's command lines (continuations joined,
# comments dropped) in a scratch directory laid out like the repository (launch/ and build/ are
# links to the real ones, data/ is empty), in order, each expected to exit 0. The data is
# shrunken so that the whole README runs in seconds: `convert fashion-mnist` reads 1,000
# training and 200 test images (the first ones of Debian's files, or random ones where the
# package is missing) through an added --src; `photos/` is launch/make-image-folder's generated
# folder (4 classes x 12 photos), `my.model` a small CNN for it (2 epochs), `new-photo.jpg` one of
# its photos. The commands that cannot run here are marked and listed with the reason: setting up
# the machine (launch/demo, launch/test, launch/setup: CI runs launch/test itself), this suite's
# own build and ctest, synopsis lines, and sbatch (no Slurm: its --dry-run twin runs). A README
# command that is neither run nor marked fails the test, so a new command is run as soon as it
# is added.
# usage: e2e_readme.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
build=$(cd "$(dirname "$convoy")" && pwd)
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
ln -s "$src/launch" launch && ln -s "$build" build && mkdir data || exit 1
fails=0 ran=0 marked=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMP_NUM_THREADS=1

# shrunken Fashion-MNIST IDX files: a header for COUNT items, then COUNT items of SIZE bytes
fm=/usr/share/datasets/fashion-mnist
be32() { # N as 4 big-endian bytes
    # shellcheck disable=SC2059  # the format is the bytes
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"
}
idx() { # SOURCE OUT MAGIC COUNT SIZE [ROWS COLS]
    local source=$1 out=$2 magic=$3 count=$4 size=$5 skip=8
    {
        be32 "$magic" && be32 "$count"
        if [[ $# -gt 5 ]]; then be32 "$6" && be32 "$7"; skip=16; fi
        if [[ -f $source ]]; then
            gzip -dc "$source" | tail -c +$((skip + 1)) | head -c $((count * size))
        elif [[ $magic == 2051 ]]; then
            head -c $((count * size)) /dev/urandom
        else
            for ((i = 0; i < count; i++)); do printf "\\x0$((i % 10))"; done
        fi
    } | gzip >"$out"
}
mkdir -p fmnist-src
idx $fm/train-images-idx3-ubyte.gz fmnist-src/train-images-idx3-ubyte.gz 2051 1000 784 28 28
idx $fm/train-labels-idx1-ubyte.gz fmnist-src/train-labels-idx1-ubyte.gz 2049 1000 1
idx $fm/t10k-images-idx3-ubyte.gz fmnist-src/t10k-images-idx3-ubyte.gz 2051 200 784 28 28
idx $fm/t10k-labels-idx1-ubyte.gz fmnist-src/t10k-labels-idx1-ubyte.gz 2049 200 1

# the own-images walk-through's inputs
/usr/bin/python3 "$src/launch/make-image-folder" photos --per-class 12 --size 40 >make-photos.log 2>&1 ||
    fail "make-image-folder: $(cat make-photos.log)"
cp "$(find photos -name '*.jpg' | sort | head -1)" new-photo.jpg 2>/dev/null || fail "no generated JPEG"
cat >my.model <<'EOF'
input    shape=32,32,3
conv2d   filters=8 kernel=3 padding=same activation=relu
maxpool2d pool=2
flatten
dense    units=4 activation=softmax
compile  optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=16
EOF

# README's command lines: "LINE<TAB>COMMAND", continuation lines joined, comments dropped
awk '
    /^```sh/ { inside = 1; next }
    /^```/ { inside = 0; next }
    !inside { next }
    {
        line = $0
        if (cmd == "") start = NR
        if (line ~ /\\$/) { sub(/\\$/, "", line); cmd = cmd line; next }
        cmd = cmd line
        sub(/[ \t]+# .*$/, "", cmd); sub(/^[ \t]+/, "", cmd); sub(/[ \t]+$/, "", cmd)
        if (cmd != "" && cmd !~ /^#/) printf "%d\t%s\n", start, cmd
        cmd = ""
    }' "$src/README.md" >commands.tsv
[[ -s commands.tsv ]] || fail "no commands found in README.md"

mark() { marked=$((marked + 1)); printf '  marked  README.md:%s: %s  -- %s\n' "$1" "$2" "$3"; }
while IFS=$'\t' read -r line cmd; do
    case $cmd in
        ./launch/demo* | ./launch/test* | launch/setup*)
            mark "$line" "$cmd" "sets up this machine (CI runs launch/test itself)"; continue ;;
        "cmake -S . -B build"* | "ctest "*) mark "$line" "$cmd" "this suite's own build and run"; continue ;;
        *RANKS*THREADS*convoy-args*) mark "$line" "$cmd" "a synopsis, not a command"; continue ;;
        "sbatch "*) mark "$line" "$cmd" "needs a Slurm cluster (launch/slurm --dry-run runs instead)"; continue ;;
        export\ *) eval "$cmd"; ran=$((ran + 1)); continue ;;
    esac
    run=$cmd
    [[ $run == *"convert fashion-mnist"* ]] && run+=" --src fmnist-src"
    ran=$((ran + 1))
    echo "  run     README.md:$line: $cmd"
    if ! timeout 600 bash -c "$run" </dev/null >"cmd-$line.log" 2>&1; then
        fail "README.md:$line: '$cmd' exited non-zero: $(tail -5 "cmd-$line.log")"
    fi
done <commands.tsv
# the walk-throughs' outputs exist
for f in data/fmnist/train.h5 data/fmnist/test.h5 data/fmnist-cnn.h5 data/fmnist-pred.h5 data/photos.h5 \
    data/photos-val.h5 data/my.h5; do
    [[ -f $f ]] || fail "$f was not written by README's commands"
done
(( ran >= 15 )) || fail "only $ran README commands ran"
echo "e2e_readme: $ran commands run, $marked marked"
[[ $fails -eq 0 ]] && echo "e2e_readme: all passed"
exit $((fails > 0))
