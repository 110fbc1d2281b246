#!/usr/bin/env bash
# convoy import onnx: PyTorch models exported with torch.onnx.export (opset 13) import, predict
# what torch computes (1e-5), serve as a frozen `base` for fine-tuning on 2 ranks (the base's
# weights unchanged) and as --init-from weights; unsupported operators, branching graphs,
# dilations, NaN weights, a node without an op type and damaged files are refused with one line
# naming the node (a newline in a name shown as ?), exit 1, nothing written.
#   usage: e2e_onnx_import.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/e2e-lib.sh"
e2e_start "$@"
e2e_need_py "torch onnx h5py numpy" "python3-torch python3-onnx python3-h5py"
mpi=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
# same_data A.h5 B.h5 DATASET...: each dataset is in both files with the same values
same_data() {
    local a=$1 b=$2 ds
    for ds in "${@:3}"; do
        cmp -s <(h5dump -d "$ds" "$a" | tail -n +3) <(h5dump -d "$ds" "$b" | tail -n +3) &&
            h5dump -d "$ds" "$a" > /dev/null && h5dump -d "$ds" "$b" > /dev/null || return 1
    done
}
# the datasets under /layers of F.h5 whose names match PATTERN
tensors() { h5ls -r "$1" | awk -v p="$2" '$2 == "Dataset" && $1 ~ "^/layers/" && $1 ~ p { print substr($1, 2) }'; }

$py "$src/tests/onnx_torch_models.py" . > py.txt 2>&1 || { fail "torch export: $(tail -3 py.txt)"; exit 1; }

# (a) the imported models compute what torch computes
for m in cnn res misc tiny nhwc mlp; do
    expect 0 "" -- "$convoy" import onnx $m.onnx --out $m
    grep -q "^imported $m.onnx: " out.txt || fail "import $m says: $(cat out.txt)"
    data=d.h5 && [[ $m == misc ]] && data=dx.h5
    [[ $m == mlp ]] && data=dv.h5
    cv predict $m/weights.h5 --data $data --out p_$m.h5 > /dev/null || fail "predict $m"
    $py - "$m" <<'P' || fail "$m: convoy's outputs differ from torch's"
import sys, h5py, numpy as np
m = sys.argv[1]
p = h5py.File(f"p_{m}.h5", "r")["predictions"][...]
w = np.load(f"want_{m}.npy")
err = float(np.abs(p - w).max())
print(f"{m}: max |convoy - torch| = {err:.3g} over {p.shape}")
sys.exit(0 if p.shape == w.shape and err <= 1e-5 else 1)
P
done
grep -q "pad_mode=nearest" misc/model.model && grep -q "^zeropad2d padding=1,1,1,1" misc/model.model ||
    fail "misc's edge-padded conv and padded average pool: $(cat misc/model.model)"
grep -q "^input .* normalize=scale" nhwc/model.model || fail "nhwc's Div by 255: $(cat nhwc/model.model)"
grep -q "^batchnorm" cnn/model.model || fail "cnn's BatchNormalization is not a batchnorm layer: $(cat cnn/model.model)"
grep -q "^residual shortcut=projection" res/model.model && grep -q "^residual$" res/model.model ||
    fail "res's blocks: $(cat res/model.model)"

# the imported checkpoint as a frozen base (all its layers but the classifier), 2 ranks
n=$(grep -cvE '^(#|input|compile)' cnn/model.model)
cat > head.model <<M
base      checkpoint=cnn/weights.h5 upto=$((n - 1)) trainable=false
dense     units=5 activation=softmax
compile   optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit       epochs=2 batch_size=8 seed=3
M
mapfile -t frozen < <(tensors cnn/weights.h5 'conv2d|batchnorm')
[[ ${#frozen[@]} -eq 8 ]] || fail "the imported cnn holds ${#frozen[@]} conv2d and batchnorm tensors, not 8: ${frozen[*]}"
timeout 120 "${mpi[@]}" "$convoy" train head.model --data d.h5 --quiet --checkpoint head.h5 > o.txt 2>&1 ||
    fail "fine-tune on 2 ranks: $(tail -3 o.txt)"
same_data cnn/weights.h5 head.h5 "${frozen[@]}" || fail "the frozen base's weights changed in fine-tuning"
# --init-from the imported weights: at learning rate 0 the kernels stay the imported ones
timeout 120 "${mpi[@]}" "$convoy" train cnn/model.model --data d.h5 --quiet --epochs 1 --batch-size 8 --lr 0 \
    --init-from cnn/weights.h5 --checkpoint init.h5 > o.txt 2>&1 || fail "--init-from on 2 ranks: $(tail -3 o.txt)"
mapfile -t k < <(tensors cnn/weights.h5 'kernel|bias|gamma|beta')
same_data cnn/weights.h5 init.h5 "${k[@]}" || fail "--init-from did not start from the imported weights"

# (b) refusals: one line naming the node, exit 1, no folder written
$py - <<'P' || fail "writing the refused models"
import onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
import numpy as np
x = h.make_tensor_value_info("x", T.FLOAT, ["N", 1, 6, 6])
def save(name, nodes, out, shape, inits=()):
    g = h.make_graph(nodes, name, [x], [h.make_tensor_value_info(out, T.FLOAT, shape)], list(inits))
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), name + ".onnx")
w = nh.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
save("erf", [h.make_node("Erf", ["x"], ["y"], name="the_erf")], "y", ["N", 1, 6, 6])
save("branchy", [h.make_node("Relu", ["x"], ["a"], name="r"), h.make_node("Sigmoid", ["x"], ["b"], name="s"),
                 h.make_node("Mul", ["a", "b"], ["y"], name="m")], "y", ["N", 1, 6, 6])
save("dilated", [h.make_node("Conv", ["x", "w"], ["y"], name="wide", dilations=[2, 2])], "y", ["N", 2, 2, 2], [w])
nan = np.ones((2, 1, 3, 3), np.float32)
nan[1, 0, 2, 1] = np.nan
save("nan", [h.make_node("Conv", ["x", "w"], ["y"], name="c1")], "y", ["N", 2, 4, 4], [nh.from_array(nan, "w")])
blank = onnx.NodeProto()  # no op_type, no name: protobuf leaves the strings absent
blank.input.append("x")
blank.output.append("y")
save("blank", [blank], "y", ["N", 1, 6, 6])
save("newline", [h.make_node("Erf", ["x"], ["y"], name="two\nlines")], "y", ["N", 1, 6, 6])
P
for m in erf:"node 'the_erf' \(Erf\): convoy has no layer for Erf" branchy:"graph input 'x' feeds 2 nodes \('r' \(Relu\), 's' \(Sigmoid\)\): convoy imports chains" \
         dilated:"node 'wide' \(Conv\): dilations=2,2: convoy's windows have no dilation" \
         nan:"node 'c1' \(Conv\): its weights 'w' holds nan at \[16\]" blank:"node 'y' \(\): a node without an op_type" \
         newline:"node 'two\?lines' \(Erf\)"; do
    expect 1 "^convoy: ${m%%:*}.onnx: ${m#*:}" -- "$convoy" import onnx "${m%%:*}.onnx" --out "out_${m%%:*}"
    [[ ! -e "out_${m%%:*}" ]] || fail "${m%%:*}: refused, but out_${m%%:*} was written"
done
head -c 700 cnn.onnx > trunc.onnx
head -c 3000 /dev/urandom > garbage.onnx
: > empty.onnx
for f in trunc garbage empty; do
    expect 1 "^convoy: $f.onnx: not an ONNX model" -- "$convoy" import onnx $f.onnx --out out_$f
    [[ ! -e out_$f ]] || fail "$f: refused, but out_$f was written"
done
expect 1 "^convoy: missing.onnx: " -- "$convoy" import onnx missing.onnx --out out_missing
# a refused model leaves an existing folder's files as they were
cp -r cnn keep && expect 1 "Erf" -- "$convoy" import onnx erf.onnx --out keep
cmp -s cnn/weights.h5 keep/weights.h5 && cmp -s cnn/model.model keep/model.model || fail "a refused import changed keep/"

# usage: --out is required and names a folder; the format word
expect 2 "import: --out DIR is required" -- "$convoy" import onnx cnn.onnx
expect 2 "import: unknown format 'tflite'" -- "$convoy" import tflite cnn.onnx --out x
mkdir -p same && cp cnn.onnx same/model.model
expect 2 "is also the FILE" -- "$convoy" import onnx same/model.model --out same
cmp -s cnn.onnx same/model.model || fail "import wrote over its own input"
touch afile
expect 1 "afile: not a folder" -- "$convoy" import onnx cnn.onnx --out afile
[[ ! -s afile ]] || fail "--out afile was written"

[[ $fails -eq 0 ]] && echo "e2e_onnx_import: all passed"
exit $((fails > 0))
