#!/usr/bin/env bash
# convoy import keras: files in the layout of Keras's model.save("m.h5"), written with h5py by
# tests/keras_h5_models.py (a CNN with batchnorm, Keras 3's spellings of an MLP with a Rescaling,
# a chain-shaped functional model), import and predict what a NumPy forward pass of the same
# Keras model computes (1e-5); a layer Keras does not train stays frozen; the CNN serves as a
# frozen `base` fine-tuned on 2 ranks; each refusal is one line naming the layer and its class,
# exit 1, nothing written.
#   usage: e2e_keras_import.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/e2e-lib.sh"
e2e_start "$@"
e2e_need_py "h5py numpy" python3-h5py
mpi=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
# unchanged A.h5 B.h5 DATASET...: each dataset holds the same values in both files
unchanged() {
    local a=$1 b=$2 ds
    for ds in "${@:3}"; do h5diff -q "$a" "$b" "$ds" "$ds" || return 1; done
}

$py "$src/tests/keras_h5_models.py" . > py.txt 2>&1 || { fail "writing the Keras files: $(tail -3 py.txt)"; exit 1; }

# (a) the imported models compute what the Keras models compute
for m in cnn:d mlp:du chain:dv; do
    expect 0 "" -- "$convoy" import keras ${m%%:*}.h5 --out ${m%%:*}
    grep -q "^imported ${m%%:*}.h5: " out.txt || fail "import ${m%%:*} says: $(cat out.txt)"
    cv predict ${m%%:*}/weights.h5 --data ${m#*:}.h5 --out p_${m%%:*}.h5 > /dev/null || fail "predict ${m%%:*}"
    $py - "${m%%:*}" <<'P' || fail "${m%%:*}: convoy's outputs differ from the NumPy reference"
import sys, h5py, numpy as np
m = sys.argv[1]
p = h5py.File(f"p_{m}.h5", "r")["predictions"][...]
w = np.load(f"want_{m}.npy")
err = float(np.abs(p - w).max()) if p.shape == w.shape else float("inf")
print(f"{m}: max |convoy - numpy| = {err:.3g} over {p.shape}")
sys.exit(0 if err <= 1e-5 else 1)
P
done
grep -q "^conv2d .*padding=same .*trainable=false" cnn/model.model || fail "cnn's frozen conv2d: $(cat cnn/model.model)"
grep -q "^batchnorm momentum=0.9 epsilon=0.001" cnn/model.model || fail "cnn's batchnorm: $(cat cnn/model.model)"
grep -q "^input .*normalize=scale" mlp/model.model && grep -q "^activation leaky_relu alpha=0.1" mlp/model.model ||
    fail "mlp's Rescaling and LeakyReLU: $(cat mlp/model.model)"

# Keras's frozen layer stays so in convoy: training the whole imported cnn leaves it as it was
timeout 120 "$convoy" train cnn/model.model --data d.h5 --quiet --epochs 1 --batch-size 8 --init-from cnn/weights.h5 \
    --checkpoint all.h5 > o.txt 2>&1 || fail "train the imported cnn: $(tail -3 o.txt)"
unchanged cnn/weights.h5 all.h5 /layers/01_conv2d/kernel /layers/01_conv2d/bias || fail "the frozen conv2d was trained"
unchanged cnn/weights.h5 all.h5 /layers/09_dense/kernel && fail "the cnn's trainable dense did not train"

# the imported checkpoint as a frozen base (all its layers but the classifier), 2 ranks
cat > head.model <<M
base      checkpoint=cnn/weights.h5 upto=8 trainable=false
dense     units=5 activation=softmax
compile   optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit       epochs=2 batch_size=8 seed=3
M
timeout 120 "${mpi[@]}" "$convoy" train head.model --data d.h5 --quiet --checkpoint head.h5 > o.txt 2>&1 ||
    fail "fine-tune on 2 ranks: $(tail -3 o.txt)"
mapfile -t frozen < <(h5ls -r cnn/weights.h5 | awk '$2 == "Dataset" && $1 ~ "^/layers/0[1-7]_" { print $1 }')
[[ ${#frozen[@]} -eq 10 ]] || fail "the imported cnn's base holds ${#frozen[@]} tensors, not 10: ${frozen[*]}"
unchanged cnn/weights.h5 head.h5 "${frozen[@]}" || fail "the frozen base's weights changed in fine-tuning"

# (b) refusals: one line naming the layer and its class, exit 1, no folder written
while IFS='|' read -r f msg; do
    expect 1 "^convoy: $f.h5: $msg" -- "$convoy" import keras "$f.h5" --out "out_$f"
    [[ ! -e "out_$f" ]] || fail "$f: refused, but out_$f was written"
done <<'T'
unknown|layer 'lstm' \(LSTM\): convoy has no layer for LSTM \(it imports InputLayer, Conv2D,
channels_first|layer 'conv2d_1' \(Conv2D\): data_format=channels_first: convoy's tensors are channels_last \(N, H, W, C\)$
dilated|layer 'conv2d_1' \(Conv2D\): dilation_rate=2,2: convoy's convolutions have no dilation$
grouped|layer 'conv2d_1' \(Conv2D\): groups=2: convoy's convolutions are not grouped$
elu|layer 'dense' \(Dense\): activation 'elu': convoy's are linear, relu, sigmoid, tanh, softmax
dense_map|layer 'dense' \(Dense\): its input is a 3x4x6 map: convoy's dense reads vectors
rescale_late|layer 'rescaling' \(Rescaling\): scale=0.5 offset=0: convoy expresses only x/255
pool_same|layer 'max_pooling2d' \(MaxPooling2D\): padding=same pads this 10x10 map: convoy's pools do not pad
no_weights|layer 'dense' \(Dense\): its weights are missing: no group /model_weights/dense$
no_bias|layer 'dense' \(Dense\): no weight 'bias' among its weight_names in /model_weights/dense$
shape|layer 'conv2d_1' \(Conv2D\): weight 'conv2d_1/kernel:0' has shape \(3,3,4,6\), the layer needs \(3,2,4,6\)$
nan|layer 'dense_1' \(Dense\): /model_weights/dense_1/dense_1/kernel:0: NaN at \[2,3\]
newline|layer 'dense' \(Bad\?Class\): convoy has no layer for Bad\?Class
malformed|model_config is not JSON: line 1, column [0-9]+: 
weights_only|no attribute model_config: not a file of Keras's model.save\(\)
branchy|layer 'add' \(Add\): it reads 2 tensors: convoy imports Sequential models and functional ones whose every
T
expect 1 "^convoy: missing.h5: no such file" -- "$convoy" import keras missing.h5 --out out_missing
head -c 3000 /dev/urandom > garbage.h5
expect 1 "^convoy: garbage.h5: not an HDF5 file" -- "$convoy" import keras garbage.h5 --out out_garbage
# a refused model leaves an existing folder's files as they were
cp -r cnn keep && expect 1 "LSTM" -- "$convoy" import keras unknown.h5 --out keep
cmp -s cnn/weights.h5 keep/weights.h5 && cmp -s cnn/model.model keep/model.model || fail "a refused import changed keep/"
# --out's files must not be the input
mkdir -p same && cp cnn.h5 same/weights.h5
expect 2 "is also the FILE" -- "$convoy" import keras same/weights.h5 --out same
cmp -s cnn.h5 same/weights.h5 || fail "import wrote over its own input"

[[ $fails -eq 0 ]] && echo "e2e_keras_import: all passed"
exit $((fails > 0))
