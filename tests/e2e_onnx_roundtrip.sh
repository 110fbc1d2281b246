#!/usr/bin/env bash
# export then import (docs/interop.md "Round trip"): each example model that exports (fmnist-cnn,
# fmnist-mlp, cifar10-cnn, cifar10-vgg-bn, cifar10-resnet20) and small models holding every layer
# option (rectangular kernels, numeric and nearest padding, min pool, zeropad2d, both shortcut
# kinds on maps and vectors, every activation, standardize and scale inputs, from_logits), each
# trained a few steps on seeded random data, goes `convoy export onnx` -> `convoy import onnx`.
# The imported checkpoint's weight datasets (kernels, biases, gamma/beta/moving statistics,
# /normalize's mean and std), paired by order, must have the original's dtype, shape and bytes;
# `convoy summary` must list the same layers with the same output shapes and parameter counts
# (dropout, which the export leaves out, removed from the original's list); `convoy predict`
# of the imported checkpoint must give the original's predictions bit for bit.
#   usage: e2e_onnx_roundtrip.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/e2e-lib.sh"
e2e_start "$@"
e2e_need_py "h5py numpy" python3-h5py
export OMP_NUM_THREADS=2
# the weight datasets of two checkpoints, paired by order: same names past the layer index,
# dtypes, shapes and bytes (h5diff without tolerance, where the index names may shift)
same_weights() {
    $py - "$1" "$2" <<'EOF'
import sys, h5py, numpy as np
def weights(path):
    out = []
    with h5py.File(path, "r") as f:
        for g in sorted(f["layers"]):
            for d in sorted(f["layers"][g]):
                out.append((g.split("_", 1)[1] + "/" + d, f["layers"][g][d][()]))
        for d in ("mean", "std"):
            if "normalize" in f and d in f["normalize"]:
                out.append(("normalize/" + d, f["normalize"][d][()]))
        out.append(("attr normalize", np.array(str(f.attrs.get("normalize", "")))))
    return out
a, b = weights(sys.argv[1]), weights(sys.argv[2])
if len(a) != len(b):
    sys.exit(f"{len(a)} weight datasets, {len(b)} after the round trip")
for (na, va), (nb, vb) in zip(a, b):
    if na != nb or va.dtype != vb.dtype or va.shape != vb.shape or va.tobytes() != vb.tobytes():
        sys.exit(f"{na} {va.dtype}{va.shape} came back as {nb} {vb.dtype}{vb.shape}" +
                 (" with other bytes" if na == nb and va.shape == vb.shape else ""))
print(len(a), "datasets")
EOF
}
# the summary's table less the model's name and dropout rows: layer kinds, shapes, parameters
layers() { "$convoy" summary "$1" | grep '(' | grep -v '(Dropout)\|^Model' | sed 's/^ *[a-z_0-9]* (/(/'; }
# rt NAME MODEL DATA [train flags...]: train, export, import, compare
rt() {
    local name=$1 model=$2 data=$3
    shift 3
    "$convoy" train "$model" --data "$data" --checkpoint "$name.h5" --quiet "$@" || { fail "$name: train"; return; }
    "$convoy" export onnx "$name.h5" --out "$name.onnx" >/dev/null || { fail "$name: export"; return; }
    "$convoy" import onnx "$name.onnx" --out "$name.d" > import.txt 2>&1 || { fail "$name: import: $(cat import.txt)"; return; }
    same_weights "$name.h5" "$name.d/weights.h5" > weights.txt 2>&1 || fail "$name: weights: $(cat weights.txt)"
    layers "$name.h5" > a.txt && layers "$name.d/weights.h5" > b.txt && [[ -s a.txt ]] && cmp -s a.txt b.txt ||
        fail "$name: the summaries differ: $(diff a.txt b.txt | head -4)"
    "$convoy" predict "$name.h5" --data "$data" --out "$name-a.h5" >/dev/null &&
        "$convoy" predict "$name.d/weights.h5" --data "$data" --out "$name-b.h5" >/dev/null ||
        { fail "$name: predict"; return; }
    h5diff "$name-a.h5" "$name-b.h5" /predictions /predictions > diff.txt ||
        fail "$name: the predictions differ: $(head -3 diff.txt)"
    echo "$name: $(cat weights.txt), $(wc -l < a.txt) layers, same predictions"
}
models=$src/launch/models
rand_data mnist.h5 64 28 28 1 uint8 10
rand_data cifar.h5 32 32 32 3 uint8 10
# the example models with a short fit line (batchnorm's moving statistics following the batches
# at once, momentum=0, so that a few steps move them off their initial values)
example() { grep -v '^#\|^fit\|^augment' "$models/$1.model" | sed 's/^batchnorm.*/batchnorm momentum=0/'; echo "$2"; }
example fmnist-cnn "fit epochs=1 batch_size=32" > cnn.model
example fmnist-mlp "fit epochs=1 batch_size=32" > mlp.model
example cifar10-cnn "fit epochs=1 batch_size=16" > cifar-cnn.model
example cifar10-vgg-bn "fit epochs=1 batch_size=16" > vgg-bn.model
example cifar10-resnet20 "fit epochs=1 batch_size=16" > resnet20.model
rt fmnist-cnn cnn.model mnist.h5
rt fmnist-mlp mlp.model mnist.h5
rt cifar10-cnn cifar-cnn.model cifar.h5
rt vgg-bn vgg-bn.model cifar.h5
rt resnet20 resnet20.model cifar.h5 --lr 0.01

# every option on maps: float input standardized per feature
rand_data float.h5 40 12 10 3 float 5
cp "$src/tests/fixtures/onnx-maps.model" maps.model
rt maps maps.model float.h5
# vectors: batchnorm on features, residual blocks of dense layers (zero channels, projection),
# use_bias=false, linear and sigmoid activation layers, dropout, from_logits; uint8 scaled
rand_data small.h5 30 7 6 2 uint8 3
# (less its `activation linear`, an identity the export leaves out as it does dropout)
grep -v '^activation linear' "$src/tests/fixtures/onnx-vectors.model" > vectors.model
rt vectors vectors.model small.h5
# a tabular input, standardized, and a binary from_logits output
rand_data tab.h5 50 0 0 6 float 2
printf 'input shape=6 normalize=standardize\ndense units=8 activation=relu\ndense units=1\n' > table.model
printf 'compile optimizer=adam loss=binary_crossentropy from_logits=true\nfit epochs=2 batch_size=10\n' >> table.model
rt table table.model tab.h5
# what the import still refuses around these patterns: one line, exit 1, nothing written
if $py -c 'import onnx' 2>/dev/null; then
    # mutate IN OUT WHAT: an exported file changed (onnx's Python package)
    mutate() {
        $py - "$@" <<'EOF' || fail "mutate $3"
import sys, onnx
from onnx import numpy_helper
src, out, what = sys.argv[1:4]
m = onnx.load(src)
g = m.graph
node = {n.name: n for n in g.node}
if what == "no-div":  # the standardisation's Div removed: a Sub alone
    d = node["00_input/standardize"]
    for n in g.node:
        n.input[:] = [d.input[0] if i == d.output[0] else i for i in n.input]
    g.node.remove(d)
elif what == "step":  # the first zero-padding shortcut takes every row and column
    for t in g.initializer:
        if t.name == "34_end/steps":
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 0 + 1, t.name))
elif what == "neg":  # a min pool's second Neg made a Relu
    node["05_minpool2d/unneg"].op_type = "Relu"
onnx.save(m, out)
EOF
    }
    mutate table.onnx no-div.onnx no-div
    expect 1 "^convoy: no-div\.onnx: node '00_input/center' \(Sub\): a Sub of per-feature constants without a Div" -- \
        "$convoy" import onnx no-div.onnx --out no-div.d
    mutate resnet20.onnx step.onnx step
    expect 1 "^convoy: step\.onnx: node '34_end/subsample' \(Slice\): a shortcut taking every 1,1-th cell .*stride ceil" -- \
        "$convoy" import onnx step.onnx --out step.d
    mutate maps.onnx neg.onnx neg
    expect 1 "^convoy: neg\.onnx: node '05_minpool2d/neg' \(Neg\): a Neg that is not the start of Neg -> MaxPool -> Neg" -- \
        "$convoy" import onnx neg.onnx --out neg.d
    [[ -e no-div.d || -e step.d || -e neg.d ]] && fail "a refused import wrote a folder"
fi
exit $((fails > 0))
