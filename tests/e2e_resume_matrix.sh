#!/usr/bin/env bash
# The resume matrix: {fmnist-cnn (conv, pool, dropout), the same with an augment line, an MLP}
# x {no validation, validation_split, --val} x {1 rank, 2 ranks} x {stop at an epoch boundary
# and --resume, SIGKILL mid-epoch and --resume from the last step checkpoint}: the final weights
# and optimizer state are byte-identical to the run that never stopped. A Fashion-MNIST subset
# of 400 training images (320 with validation_split=0.2; --val is a subset of 100) keeps it short.
# The kill is CONVOY_KILL_AFTER_SAVE=2 with --checkpoint-every 3 (rank 0 dies by SIGKILL right
# after its second save: step 6 of 7 or 9 in epoch 1), so it lands mid-epoch on every machine.
# With CONVOY_E2E_QUICK=1 (the sanitizer build) it runs the 1-rank half.   usage: e2e_resume_matrix.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
. "$(dirname "${BASH_SOURCE[0]}")/e2e-lib.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1

"$convoy" convert fashion-mnist --classes 0,1,2,3,4,5,6,7,8,9 --per-class 40 --out fm >/dev/null || fail "convert"
"$convoy" convert fashion-mnist --classes 0,1,2,3,4,5,6,7,8,9 --per-class 10 --out fm-val >/dev/null || fail "convert val"
train=fm/train.h5 val=fm-val/train.h5

fmnist_cnn "fit epochs=2 batch_size=48 seed=3" > cnn.model
{ cat cnn.model; echo "augment rotation_range=15 width_shift_range=0.1 zoom_range=0.1 horizontal_flip=true"; } > cnn-augment.model
cat > mlp.model <<'M'
input    shape=28,28,1
flatten
dense    units=64 activation=relu
dropout  rate=0.2
dense    units=10 activation=softmax
compile  optimizer=rmsprop learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy
fit      epochs=2 batch_size=48 seed=3
M

ranks=(1 2)
[[ ${CONVOY_E2E_QUICK:-0} == 1 ]] && ranks=(1)
run() { # run P ARGS...: convoy train on P ranks, one thread each
    local p=$1
    shift
    if [[ $p -eq 1 ]]; then
        OMP_NUM_THREADS=2 "$convoy" train "$@" --quiet
    else
        mpirun -np "$p" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 ${CONVOY_KILL_AFTER_SAVE:+-x CONVOY_KILL_AFTER_SAVE} \
            "$convoy" train "$@" --quiet
    fi
}
combos=0
for model in cnn cnn-augment mlp; do
    for v in none split val; do
        case $v in
            none) vflags=(--validation-split 0) ;;
            split) vflags=(--validation-split 0.2) ;;
            val) vflags=(--val "$val") ;;
        esac
        for p in "${ranks[@]}"; do
            tag=$model-$v-$p
            args=("$model.model" --data "$train" "${vflags[@]}")
            run "$p" "${args[@]}" --checkpoint "$tag-straight.h5" || { fail "$tag: straight run"; continue; }
            # an epoch boundary: 1 epoch, then --resume to 2
            run "$p" "${args[@]}" --epochs 1 --checkpoint "$tag-e1.h5" || fail "$tag: 1 epoch"
            run "$p" "${args[@]}" --resume "$tag-e1.h5" --checkpoint "$tag-e2.h5" || fail "$tag: resume at epoch 1"
            same "$tag-straight.h5" "$tag-e2.h5" || fail "$tag: 1 epoch + resume differs from 2 straight"
            # SIGKILL mid-epoch, resume from the last step checkpoint
            CONVOY_KILL_AFTER_SAVE=2 run "$p" "${args[@]}" --checkpoint "$tag-k.h5" --checkpoint-every 3 >/dev/null 2>&1 &&
                fail "$tag: the run meant to be killed finished"
            rm -f ./"$tag"-k.h5.tmp.*
            at=$(h5dump -a /train/step_in_epoch "$tag-k.h5" 2>/dev/null | awk '/\(0\)/ {print $2}')
            [[ $at == 6 ]] || fail "$tag: the kill left a checkpoint at step '$at' of epoch 1, not 6"
            run "$p" "${args[@]}" --resume "$tag-k.h5" --checkpoint "$tag-k.h5" || fail "$tag: resume after SIGKILL"
            same "$tag-straight.h5" "$tag-k.h5" || fail "$tag: SIGKILL at step 6 + resume differs"
            combos=$((combos + 1))
        done
    done
done
echo "e2e_resume_matrix: $combos combinations of model, validation and ranks, each resumed twice"
[[ $fails -eq 0 ]] && echo "e2e_resume_matrix: all passed"
exit $((fails > 0))
