#!/usr/bin/env bash
# `convoy convert images` from the command line: a folder of every PNG and JPEG kind converted at
# several sizes matches Pillow pixel for pixel (when Debian's python3-pil, python3-numpy and
# python3-h5py are there: else that part is skipped with a message), the same files at 1, 2 and
# 3 ranks (h5diff), training on the result, and the command's errors.
#   usage: e2e_images.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
mpi() { mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np "$@"; }
py=/usr/bin/python3
[[ -x $py ]] || py=python3

if $py -c 'import PIL, numpy, h5py' 2>/dev/null; then
    $py "$src/tests/pillow_images.py" make imgs || fail "making the images"
    for size in 24,32 50,17 8,8; do
        for ch in 1 3; do
            "$convoy" convert images imgs --out s.h5 --size $size --channels $ch >/dev/null || fail "convert --size $size"
            $py "$src/tests/pillow_images.py" check s.h5 imgs >check.txt || fail "Pillow check $size x $ch: $(cat check.txt)"
        done
    done
    CONVOY_RESIZE=scalar "$convoy" convert images imgs --out s.h5 --size 24,32 >/dev/null || fail "convert, scalar resize"
    $py "$src/tests/pillow_images.py" check s.h5 imgs >check.txt || fail "Pillow check, scalar resize: $(cat check.txt)"
    "$convoy" convert images imgs --out s.h5 --size 8,8 --draft >/dev/null || fail "convert --draft"
    $py "$src/tests/pillow_images.py" check s.h5 imgs draft >check.txt || fail "Pillow draft check: $(cat check.txt)"
    tail -1 check.txt
else
    echo "SKIP: the Pillow comparison (no python3-pil, python3-numpy, python3-h5py here)"
    mkdir -p imgs/cat imgs/dog
fi

if [[ -e imgs/cat/a_rgb.png ]]; then
    "$convoy" convert images imgs --out one.h5 --val-out v1.h5 --val-split 0.3 --size 20,20 --seed 7 >out.txt ||
        fail "convert with a split: $(cat out.txt)"
    grep -q "wrote one.h5: 8 images of 20x20x3 in 2 classes; v1.h5: 3 images" out.txt || fail "report: $(cat out.txt)"
    grep -q "ignored 1 file" out.txt || fail "the text file is not reported: $(cat out.txt)"
    OMP_NUM_THREADS=1 "$convoy" convert images imgs --out t1.h5 --size 20,20 >/dev/null &&
        OMP_NUM_THREADS=2 "$convoy" convert images imgs --out t2.h5 --size 20,20 >/dev/null || fail "convert on 1, 2 threads"
    h5diff -q t1.h5 t2.h5 || fail "1 and 2 threads wrote different files"
    for P in 2 3; do
        mpi $P "$convoy" convert images imgs --out p$P.h5 --val-out v$P.h5 --val-split 0.3 --size 20,20 --seed 7 \
            >/dev/null || fail "convert on $P ranks"
        h5diff -q one.h5 p$P.h5 && h5diff -q v1.h5 v$P.h5 || fail "$P ranks wrote other files than 1"
    done
    h5dump -a classes one.h5 | grep '"cat".*"dog"' >/dev/null || fail "classes attribute: $(h5dump -a classes one.h5)"
    for a in image_height image_width image_channels image_filter; do
        h5dump -a $a one.h5 >/dev/null 2>&1 || fail "no $a attribute"
    done
    cat > m.model <<'M'
input shape=20,20,3
conv2d filters=4 kernel=3 activation=relu
maxpool2d
flatten
dense units=2 activation=softmax
compile optimizer=adam loss=sparse_categorical_crossentropy metrics=accuracy
fit epochs=2 batch_size=4
M
    "$convoy" train m.model --data one.h5 --val v1.h5 --quiet --checkpoint m.h5 || fail "training on converted images"
    # class names and image attributes travel into the checkpoint, and on to summary, eval, predict
    "$convoy" summary m.h5 >out.txt || fail "summary of the checkpoint"
    grep -q "Classes (2): 0 cat, 1 dog" out.txt || fail "summary lacks the classes: $(tail -3 out.txt)"
    grep -q "Images: 20x20x3, resized by bilinear-antialias" out.txt || fail "summary lacks the images: $(tail -3 out.txt)"
    h5copy -i one.h5 -o nonames.h5 -s /x -d /x && h5copy -i one.h5 -o nonames.h5 -s /y -d /y || fail "h5copy"
    "$convoy" eval m.h5 --data nonames.h5 --confusion >out.txt || fail "eval --confusion"
    grep -q "^1 dog" out.txt || fail "eval --confusion on unnamed data lacks the checkpoint's names: $(cat out.txt)"
    h5copy -i one.h5 -o nolabels.h5 -s /x -d /x || fail "h5copy"
    "$convoy" predict m.h5 --data nolabels.h5 --out p.csv >/dev/null || fail "predict without /y"
    [[ $(wc -l <p.csv) -eq 9 ]] || fail "predict --data: $(wc -l <p.csv) lines for 8 images and a header"
    head -1 p.csv | grep -x "source,class,class_name,probability" >/dev/null || fail "CSV header: $(head -1 p.csv)"
    # an image file predicted directly is prepared as conversion prepared it: the same probabilities
    "$convoy" predict m.h5 imgs/cat/a_rgb.png --top-k 2 >img.csv || fail "predict an image file"
    [[ $(wc -l <img.csv) -eq 3 ]] || fail "--top-k 2: $(cat img.csv)"
    row=$(sed -n 2p p.csv | cut -d, -f2-) file=$(sed -n 2p img.csv | cut -d, -f2-)
    [[ $row == "$file" ]] || fail "the image file ($file) and its converted row ($row) predict differently"
    # after --draft, predict decodes JPEGs with draft too: a photo predicts as its converted row
    "$convoy" convert images imgs --out dr.h5 --size 20,20 --draft >/dev/null || fail "convert --draft 20x20"
    "$convoy" train m.model --data dr.h5 --quiet --epochs 1 --checkpoint md.h5 || fail "train on the draft data"
    "$convoy" predict md.h5 --data dr.h5 >pd.csv && "$convoy" predict md.h5 imgs/dog/f_baseline.jpg >pf.csv ||
        fail "predict after --draft"
    [[ $(sed -n 7p pd.csv | cut -d, -f2-) == "$(sed -n 2p pf.csv | cut -d, -f2-)" ]] ||
        fail "after --draft the photo ($(sed -n 2p pf.csv)) and its row ($(sed -n 7p pd.csv)) predict differently"
    "$convoy" predict m.h5 --images imgs --out all.h5 >/dev/null || fail "predict --images"
    h5dump -H -d /predictions all.h5 | grep "( 11, 2 )" >/dev/null || fail "predict --images --out F.h5: $(h5dump -H all.h5)"
    "$convoy" visualize m.h5 --data nonames.h5 --out vis --sample 0 >out.txt || fail "visualize"
    grep -qE "^sample 0: class 0 cat, predicted [01] (cat|dog)" out.txt || fail "visualize lacks the named class: $(tail -1 out.txt)"
    expect 1 "notes.txt: not a PNG or JPEG image" -- "$convoy" predict m.h5 imgs/dog/notes.txt
    expect 2 "give one input" -- "$convoy" predict m.h5
    expect 2 "--out one.h5 is also the --data file" -- "$convoy" predict m.h5 --data one.h5 --out one.h5
    expect 2 "--out ./m.h5 is also the CHECKPOINT file" -- "$convoy" predict m.h5 imgs/cat/a_rgb.png --out ./m.h5
    expect 2 "is also the IMAGE file" -- "$convoy" predict m.h5 imgs/cat/a_rgb.png --out ./imgs/cat/../cat/a_rgb.png
    "$convoy" predict m.h5 imgs/cat/a_rgb.png --out sub/none.csv 2>err.txt && fail "predict into a missing folder"
    grep -q "sub/none.csv: cannot create (No such file or directory)" err.txt || fail "predict --out error: $(cat err.txt)"
    expect 2 "more than 134217728 pixels" -- "$convoy" convert images imgs --out big.h5 --size 11600,11600
    # augment reads image folders too, and writes JPEG
    echo "augment rotation_range=20 horizontal_flip=true" > aug.txt
    "$convoy" augment --data imgs --config aug.txt --count 3 --save-to-dir aug --save-format jpeg >/dev/null ||
        fail "augment an image folder"
    [[ $(ls aug/*.jpeg 2>/dev/null | wc -l) -eq 3 ]] || fail "augment --save-format jpeg: $(ls aug)"
    "$convoy" predict m.h5 --images aug >/dev/null 2>&1 # a different size: resized like any photo
    expect 2 "unsupported format 'gif'" -- "$convoy" augment --data imgs --config aug.txt --count 1 --save-to-dir a2 --save-format gif
    # a damaged file stops the conversion with its name, unless --skip-bad
    printf '\xff\xd8\xff\xe0 truncated' > imgs/dog/zz_broken.jpg
    expect 1 "zz_broken.jpg: damaged JPEG" -- "$convoy" convert images imgs --out bad.h5
    [[ ! -e bad.h5 ]] || fail "a failed conversion left bad.h5"
    mpi 2 "$convoy" convert images imgs --out bad.h5 > out.txt 2> err.txt && fail "2 ranks converted a damaged file"
    grep -q "zz_broken.jpg" err.txt || fail "2 ranks: the message lacks the file: $(cat err.txt)"
    "$convoy" convert images imgs --out skip.h5 --skip-bad >out.txt || fail "--skip-bad"
    grep -q "skipped 1 unreadable file (--skip-bad), the first: imgs/dog/zz_broken.jpg" out.txt || fail "skip report: $(cat out.txt)"
fi

mkdir -p empty/one
expect 1 "no class folders" -- "$convoy" convert images empty/one --out e.h5
expect 1 "class folder with no images" -- "$convoy" convert images empty --out e.h5
expect 1 "No such file" -- "$convoy" convert images nowhere --out e.h5
expect 2 "needs one folder" -- "$convoy" convert images --out e.h5
expect 2 "--val-split: a fraction" -- "$convoy" convert images empty --out e.h5 --val-split 1.5 --val-out v.h5
expect 2 "are for .convert images." -- "$convoy" convert csv x.csv --label y --out e.h5 --size 3,3
exit $((fails > 0))
