#!/usr/bin/env bash
# A Keras user's model file, written entirely in Keras's spellings, trains: one epoch of it gives
# the checkpoint (weights, optimizer state, saved model text) that convoy's own spelling of the
# same model gives, byte for byte; summary prints the same table; the checkpoint and tune's
# best.model hold the canonical spelling; fit verbose=0 is silent; a typo gets a suggestion.
#   usage: e2e_keras.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"

# 240 12x12 grey images of 3 classes (a bright row band, column band or corner) as IDX files
python3 - <<'P' || fail "write the IDX files"
import random, struct
random.seed(5)
n, h = 240, 12
img, lab = bytearray(), bytearray()
for i in range(n):
    k = i % 3
    for r in range(h):
        for c in range(h):
            on = (k == 0 and 4 <= r < 8) or (k == 1 and 4 <= c < 8) or (k == 2 and r < 5 and c < 5)
            img.append(min(255, (160 if on else 0) + random.randrange(90)))
    lab.append(k)
open("x.idx", "wb").write(struct.pack(">IIII", 0x803, n, h, h) + img)
open("y.idx", "wb").write(struct.pack(">II", 0x801, n) + lab)
P
expect 0 "" -- "$convoy" convert idx x.idx y.idx --out data.h5

cat > keras.model <<'M'
# a Keras user's CNN
Conv2D filters=4 kernel_size=(3,3) strides=(1,1) padding='same' activation='relu' kernel_initializer='HeNormal' input_shape=(12,12,1)
MaxPooling2D pool_size=(2,2) data_format=channels_last
BatchNormalization momentum=0.9 epsilon=0.001 axis=-1
Flatten
Dropout rate=0.25
Dense units=3 activation='softmax' use_bias=True bias_initializer='zeros'
compile optimizer=SGD learning_rate=0.05 momentum=0.9 loss=SparseCategoricalCrossentropy metrics=['acc']
fit epochs=1 batch_size=32 validation_split=0.25 shuffle=True verbose=2
M
# convoy's one spelling of it, as the checkpoint keeps it
cat > canonical.model <<'M'
# a Keras user's CNN
input shape=12,12,1
conv2d filters=4 kernel=3,3 stride=1,1 padding=same activation=relu init=he_normal
maxpool2d pool=2,2
batchnorm momentum=0.9 epsilon=0.001
flatten
dropout rate=0.25
dense units=3 activation=softmax use_bias=true
compile optimizer=momentum variant=classic learning_rate=0.05 momentum=0.9 loss=sparse_categorical_crossentropy metrics=accuracy
fit epochs=1 batch_size=32 validation_split=0.25 shuffle=true verbose=2
M

expect 0 "" -- "$convoy" summary keras.model
mv out.txt keras.summary
expect 0 "" -- "$convoy" summary canonical.model
cmp -s keras.summary out.txt || fail "summary differs: $(diff keras.summary out.txt)"
grep -q "batch_normalization (BatchNormalization)" keras.summary || fail "summary rows: $(cat keras.summary)"

expect 0 "" -- "$convoy" train keras.model --data data.h5 --checkpoint keras.h5 --threads 2
grep -q "epoch 1/1" out.txt || fail "keras.model did not train an epoch: $(cat out.txt)"
grep -q "momentum lr 0.05" out.txt || fail "Keras's SGD(momentum=0.9) is the momentum optimizer: $(cat out.txt)"
expect 0 "" -- "$convoy" train canonical.model --data data.h5 --checkpoint canonical.h5 --threads 2
# the whole files: every layer, the optimizer's state, the saved model text, the run's state
h5diff -q keras.h5 canonical.h5 || fail "keras.model's checkpoint differs from canonical.model's: $(h5diff keras.h5 canonical.h5 | head -5)"
h5dump -a /model keras.h5 > saved.txt || fail "h5dump of the model text"
grep -q "Conv2D\|kernel_size\|SGD" saved.txt && fail "the checkpoint keeps Keras's spellings: $(cat saved.txt)"
grep -q "conv2d filters=4 kernel=3,3 stride=1,1 padding=same activation=relu init=he_normal" saved.txt ||
    fail "the checkpoint's model text is not canonical: $(cat saved.txt)"
# --resume takes the Keras file against its checkpoint (the saved text is the same model)
expect 0 "" -- "$convoy" train keras.model --data data.h5 --resume keras.h5 --checkpoint keras2.h5 --epochs 2 --threads 2
expect 0 "" -- "$convoy" train canonical.model --data data.h5 --resume canonical.h5 --checkpoint canonical2.h5 --epochs 2 --threads 2
h5diff -q keras2.h5 canonical2.h5 || fail "the resumed checkpoints differ"
expect 0 "" -- "$convoy" eval keras.h5 --data data.h5
grep -qE "^loss [0-9.]+  accuracy [0-9.]+" out.txt || fail "eval of the Keras model's checkpoint: $(cat out.txt)"

# --optimizer in Keras's letter case
expect 0 "" -- "$convoy" train canonical.model --data data.h5 --optimizer Adam --quiet
# fit verbose=0 is Keras's silence: nothing on stdout (--verbose still talks)
sed 's/verbose=2/verbose=0/' keras.model > quiet.model
expect 0 "" -- "$convoy" train quiet.model --data data.h5 --checkpoint quiet.h5
[[ ! -s out.txt ]] || fail "verbose=0 printed: $(cat out.txt)"
expect 0 "" -- "$convoy" train quiet.model --data data.h5 --verbose
grep -q "epoch 1/1" out.txt || fail "--verbose over verbose=0 printed no epoch line: $(cat out.txt)"

# on a terminal (a pseudo-terminal from script(1)) verbose=1 redraws a progress bar in place (a
# carriage return inside a line), verbose=2 writes one plain line per epoch
bare_cr() { perl -0ne 'my $c = () = /\r(?!\n)/g; print "$c\n"' "$1"; }
sed 's/verbose=2/verbose=1/' canonical.model > bar.model
if command -v script >/dev/null && script -qec true /dev/null >/dev/null 2>&1; then
    script -qec "'$convoy' train bar.model --data data.h5 --threads 1" /dev/null > bar.txt
    script -qec "'$convoy' train canonical.model --data data.h5 --threads 1" /dev/null > plain.txt
    [[ $(bare_cr bar.txt) -gt 0 ]] || fail "verbose=1 on a terminal drew no bar: $(cat -A bar.txt)"
    [[ $(bare_cr plain.txt) -eq 0 ]] || fail "verbose=2 on a terminal redrew a line: $(cat -A plain.txt)"
    grep -q "^epoch 1/1 " plain.txt || fail "verbose=2 on a terminal: $(cat -A plain.txt)"
else
    echo "e2e_keras: no pseudo-terminal (script(1)); verbose=1/2 on a terminal not checked"
fi

# tune's best.model: the search model with the values written in, in convoy's spelling
cat > search.model <<'M'
InputLayer input_shape=(12,12,1)
Flatten
Dense units=hp.int(4,8,step=4) activation=hp.choice(ReLU,Tanh) kernel_initializer=GlorotUniform
Dense units=3 activation=Softmax
compile optimizer=hp.choice(Adam,RMSprop) loss=SparseCategoricalCrossentropy metrics=acc
fit epochs=1 batch_size=32 validation_split=0.25
M
expect 0 "" -- "$convoy" tune search.model --data data.h5 --max-trials 2 --threads 1 --dir T
[[ -f T/best.model ]] || fail "tune wrote no best.model: $(cat out.txt err.txt)"
grep -qE "InputLayer|input_shape|Dense|GlorotUniform|ReLU|Tanh|Adam|RMSprop|Sparse|acc\b" T/best.model &&
    fail "best.model keeps Keras's spellings: $(cat T/best.model)"
grep -qE "^dense units=[48] activation=(relu|tanh) init=glorot_uniform$" T/best.model || fail "best.model: $(cat T/best.model)"
grep -qE "^compile optimizer=(adam|rmsprop) loss=sparse_categorical_crossentropy metrics=accuracy$" T/best.model ||
    fail "best.model's compile: $(cat T/best.model)"
expect 0 "" -- "$convoy" train T/best.model --data data.h5 --quiet

# a typo: the nearest known word
printf 'input shape=12,12,1\nconv2d filters=4 kernal=3\nflatten\ndense units=3 activation=softmax\n' > typo.model
expect 1 "^convoy: typo.model:2: unknown key 'kernal' for conv2d: did you mean 'kernel'\?$" -- "$convoy" summary typo.model
printf 'input shape=12,12,1\nLSTM units=4\n' > lstm.model
expect 1 "^convoy: lstm.model:2: unknown layer 'LSTM': Keras's LSTM is not in convoy \(convoy has input, conv2d," -- "$convoy" summary lstm.model

[[ $fails -eq 0 ]] && echo "e2e_keras: all passed"
exit $((fails > 0))
