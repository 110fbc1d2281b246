#!/usr/bin/env bash
# convoy export onnx (docs/interop.md "Export to ONNX"): the example models (fmnist-cnn after an
# epoch on 64 images, fmnist-mlp, cifar10-vgg-bn for batchnorm, cifar10-resnet20 after a few
# steps on random images) and two small models holding every layer option the export maps
# (rectangular kernels, numeric, same and nearest padding, min pool, zeropad2d, every activation,
# projection shortcuts (between equal shapes too) and zeropad ones on maps and vectors, a flatten
# before a batchnorm, standardize and scale normalisation, from_logits, a tabular input) are
# exported, passed through
# onnx.checker and run by OpenCV's dnn module on the same raw inputs as `convoy predict`: the
# probabilities must agree to 1e-5 (tests/onnx_check.py). Then the refusals: each a one-line
# error, the exit code of docs/cli.md, and an earlier output left as it was.
#   usage: e2e_onnx_export.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/e2e-lib.sh"
e2e_start "$@"
e2e_need_py "onnx cv2 h5py numpy" "python3-onnx python3-opencv python3-h5py"
export OMP_NUM_THREADS=2
# check NAME MODEL DATA [--logits] [train flags...]: train, export, predict, compare
check() {
    local name=$1 model=$2 data=$3 logits=
    shift 3
    [[ ${1:-} == --logits ]] && logits=--logits && shift
    "$convoy" train "$model" --data "$data" --checkpoint "$name.h5" --quiet "$@" || { fail "$name: train"; return; }
    "$convoy" export onnx "$name.h5" --out "$name.onnx" > export.txt || { fail "$name: export: $(cat export.txt)"; return; }
    grep -q "^wrote $name.onnx: [0-9]* nodes, [0-9]* constants, opset 13, [0-9]* bytes$" export.txt ||
        fail "$name: export said: $(cat export.txt)"
    "$convoy" predict "$name.h5" --data "$data" --out "$name-pred.h5" >/dev/null || { fail "$name: predict"; return; }
    $py "$src/tests/onnx_check.py" "$name.onnx" "$data" "$name-pred.h5" $logits || fail "$name: the ONNX model disagrees"
}
models=$src/launch/models
rand_data mnist.h5 64 28 28 1 uint8 10
rand_data cifar.h5 32 32 32 3 uint8 10
# the example models with a short fit line (and batchnorm moving statistics that follow the
# batches at once, momentum=0, so that a few steps give a network whose probabilities vary)
example() { grep -v '^#\|^fit\|^augment' "$models/$1.model" | sed 's/^batchnorm.*/batchnorm momentum=0/'; echo "$2"; }
example fmnist-cnn "fit epochs=1 batch_size=32" > cnn.model
example fmnist-mlp "fit epochs=1 batch_size=32" > mlp.model
example cifar10-vgg-bn "fit epochs=1 batch_size=16" > vgg-bn.model
example cifar10-resnet20 "fit epochs=1 batch_size=16" > resnet20.model
check fmnist-cnn cnn.model mnist.h5
check fmnist-mlp mlp.model mnist.h5
check vgg-bn vgg-bn.model cifar.h5
check resnet20 resnet20.model cifar.h5 --lr 0.01

# every option on maps: float input standardized per feature
rand_data float.h5 40 12 10 3 float 5
cp "$src/tests/fixtures/onnx-maps.model" maps.model
check maps maps.model float.h5
# vectors: a flatten not followed by a dense layer, batchnorm on features, residual blocks of
# dense layers (zero channels, projection), use_bias=false, linear and sigmoid activation
# layers, dropout, from_logits; uint8 input scaled
rand_data small.h5 30 7 6 2 uint8 3
cp "$src/tests/fixtures/onnx-vectors.model" vectors.model
check vectors vectors.model small.h5 --logits
# a tabular input, standardized, and a binary from_logits output (a sigmoid at the end)
rand_data tab.h5 50 0 0 6 float 2
printf 'input shape=6 normalize=standardize\ndense units=8 activation=relu\ndense units=1\n' > table.model
printf 'compile optimizer=adam loss=binary_crossentropy from_logits=true\nfit epochs=2 batch_size=10\n' >> table.model
check table table.model tab.h5 --logits

# the same checkpoint gives the same bytes
"$convoy" export onnx fmnist-cnn.h5 --out again.onnx >/dev/null && cmp -s again.onnx fmnist-cnn.onnx ||
    fail "a second export of fmnist-cnn.h5 differs from the first"
# refusals: one line naming the file, exit 1 (2 for usage errors); an earlier output stays
cp fmnist-cnn.onnx before.onnx
echo "not hdf5" > text.h5
mkdir -p adir
expect 1 "^convoy: nope\.h5: no such file" -- "$convoy" export onnx nope.h5 --out fmnist-cnn.onnx
expect 1 "^convoy: text\.h5: not an HDF5 file" -- "$convoy" export onnx text.h5 --out fmnist-cnn.onnx
expect 1 "^convoy: mnist\.h5: not a convoy checkpoint" -- "$convoy" export onnx mnist.h5 --out fmnist-cnn.onnx
expect 1 "^convoy: no/such/dir/m\.onnx: cannot create \(No such file or directory\)" -- \
    "$convoy" export onnx fmnist-cnn.h5 --out no/such/dir/m.onnx
expect 1 "^convoy: adir: not a regular file" -- "$convoy" export onnx fmnist-cnn.h5 --out adir
expect 2 "^convoy: --out \./fmnist-cnn\.h5 is also the CHECKPOINT file" -- "$convoy" export onnx fmnist-cnn.h5 --out ./fmnist-cnn.h5
expect 2 "^convoy: export onnx: --out F\.onnx is required" -- "$convoy" export onnx fmnist-cnn.h5
expect 2 "^convoy: export: unknown format 'tflite' \(known: onnx\)" -- "$convoy" export tflite fmnist-cnn.h5 --out m.tflite
cmp -s before.onnx fmnist-cnn.onnx || fail "a failed export changed the earlier fmnist-cnn.onnx"
h5dump -n fmnist-cnn.h5 >/dev/null 2>&1 || fail "the checkpoint was damaged"
ls ./*.tmp.* 2>/dev/null && fail "temporary files left behind"
if [[ -w /proc/self ]] && [[ $(id -u) -ne 0 ]]; then # (root writes anywhere)
    mkdir -p ro && chmod a-w ro
    expect 1 "^convoy: ro/m\.onnx: cannot create \(Permission denied\)" -- "$convoy" export onnx fmnist-cnn.h5 --out ro/m.onnx
fi
exit $((fails > 0))
