#!/usr/bin/env bash
# Issue 23, inputs and outputs: an output that is also an input (any name: a symlink, ./, a hard
# link) is refused before anything is written, the input left byte for byte; FIFOs and devices
# are refused where a regular file is read (never a hang: every command runs under `timeout 10`,
# exit 124 fails the case); model files have a size limit; a byte-order mark and CR line ends
# parse; a file that cannot be created says why; a dataset compressed with a filter HDF5 lacks
# names it; a device or a FIFO as an output is written straight or refused, never replaced by a
# rename and never waited on. One "case:" comment per named bad input.
#   usage: e2e_hardening_io.sh CONVOY SCRATCH_DIR SOURCE_DIR
set -uo pipefail
convoy=$1 dir=$2 src=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
source "$src/tests/e2e-lib.sh"
cv() { timeout -k 5 10 "$convoy" "$@"; } # -k: a run ignoring SIGTERM (blocked in open) is killed
two_class 120
cp d.h5 v.h5
printf 'input shape=4\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy metrics=accuracy\nfit epochs=1 batch_size=16\n' > m.model
cv train m.model --data d.h5 --quiet --checkpoint c.h5 --log h.csv || fail "train"
ln -sf d.h5 link.h5
ln -f v.h5 hard.h5
mkfifo fifo.h5 fifo.model fifo.csv
echo "augment horizontal_flip=true" > aug.txt
sums() { md5sum d.h5 v.h5 m.model c.h5 d.csv h.csv; }
sums > before.md5
# unchanged: after every refusal the inputs are as they were and no output or temporary file appeared
unchanged() { sums | cmp -s - before.md5 || fail "$1: an input changed"; ls | grep "\.tmp\." >/dev/null && fail "$1: a temporary file was left"; }

# -- 1. an output that is an input
# case: train --checkpoint is --data through a symlink
expect 2 "^convoy: --checkpoint link.h5 is also the --data file; choose another path$" -- cv train m.model --data d.h5 --checkpoint link.h5
unchanged "checkpoint=data"
# case: train --checkpoint is --val through a hard link
expect 2 "--checkpoint hard.h5 is also the --val file" -- cv train m.model --data d.h5 --val v.h5 --checkpoint hard.h5
# case: train --checkpoint is the model file
expect 2 "--checkpoint ./m.model is also the MODEL file" -- cv train m.model --data d.h5 --checkpoint ./m.model
# case: train --log is the --val file
expect 2 "--log v.h5 is also the --val file" -- cv train m.model --data d.h5 --val v.h5 --log v.h5
# case: train --plot is the --val file
expect 2 "--plot ./v.h5 is also the --val file" -- cv train m.model --data d.h5 --val v.h5 --plot ./v.h5
# case: train --log is the model file
expect 2 "--log m.model is also the MODEL file" -- cv train m.model --data d.h5 --log m.model
# case: train --plot is the --data file
expect 2 "--plot link.h5 is also the --data file" -- cv train m.model --data d.h5 --plot link.h5
# case: train --log and --plot one new file
expect 2 "--plot same.out is also the --log file" -- cv train m.model --data d.h5 --log same.out --plot same.out
# case: train --checkpoint and --log one file
expect 2 "--log c2.h5 is also the --checkpoint file" -- cv train m.model --data d.h5 --checkpoint c2.h5 --log c2.h5
# case: train --log is the --resume checkpoint
expect 2 "--log c.h5 is also the --resume file" -- cv train m.model --data d.h5 --resume c.h5 --log c.h5
# case: train --checkpoint is the --init-from checkpoint (its weights would be lost)
expect 2 "--checkpoint c.h5 is also the --init-from file" -- cv train m.model --data d.h5 --init-from c.h5 --checkpoint c.h5
# case: train --checkpoint is the model file's base checkpoint
printf 'base checkpoint=c.h5 upto=1 trainable=false\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n' > base.model
expect 2 "--checkpoint c.h5 is also the base checkpoint= file" -- cv train base.model --data d.h5 --checkpoint c.h5
unchanged "train overlaps"
# still allowed: --resume F --checkpoint F continues a run in place
cv train m.model --data d.h5 --quiet --checkpoint r.h5 && cv train m.model --data d.h5 --quiet --epochs 2 --resume r.h5 --checkpoint r.h5 ||
    fail "--resume F --checkpoint F is a run continued in place"
# case: predict --out is the --data file
expect 2 "--out ./d.h5 is also the --data file" -- cv predict c.h5 --data d.h5 --out ./d.h5
# case: predict --out is the checkpoint through a symlink
ln -sf c.h5 clink.h5
expect 2 "--out clink.h5 is also the CHECKPOINT file" -- cv predict c.h5 --data d.h5 --out clink.h5
# case: eval --confusion-svg is the --data file
expect 2 "--confusion-svg link.h5 is also the --data file" -- cv eval c.h5 --data d.h5 --confusion-svg link.h5
# case: convert csv --out is its source
expect 2 "--out ./d.csv is also the CSV file" -- cv convert csv d.csv --label label --out ./d.csv
# case: convert idx --out is its LABELS file
expect 2 "--out d.csv is also the LABELS file" -- cv convert idx m.model d.csv --out d.csv
# case: convert images --out and --val-out one file
expect 2 "--val-out t.h5 is also the --out file" -- cv convert images imgs --out t.h5 --val-split 0.5 --val-out t.h5
# case: plot --out is one of the histories
expect 2 "--out ./h.csv is also the HISTORY.csv file" -- cv plot h.csv --out ./h.csv
# case: tune --dir whose best.model is the search model
mkdir -p T && cp m.model T/best.model
expect 2 "T/best.model is also the MODEL file" -- cv tune T/best.model --data d.h5 --max-trials 1 --dir T
# case: tune --dir whose trials.h5 is the --data file
cp d.h5 T/trials.h5
expect 2 "T/trials.h5 is also the --data file" -- cv tune m.model --data T/trials.h5 --max-trials 1 --dir T
# case: augment's contact sheet is its --config file
mkdir -p A && cp m.model A/aug_contact_sheet.png
expect 2 "A/aug_contact_sheet.png is also the --config file" -- cv augment --data d.h5 --config A/aug_contact_sheet.png --count 1 --save-to-dir A
cmp -s m.model A/aug_contact_sheet.png || fail "augment wrote over its --config"
unchanged "other overlaps"
# the outputs named after the model, the sources or the data: 12 random 8x8 images, a conv checkpoint
idx_pair 12 8 8
cv convert idx images.idx labels.idx --out img.h5 >/dev/null || fail "convert idx"
printf 'input shape=8,8,1\nconv2d filters=2 kernel=3 activation=relu\nflatten\ndense units=10 activation=softmax\ncompile loss=sparse_categorical_crossentropy\nfit epochs=1 batch_size=4\n' > conv.model
cv train conv.model --data img.h5 --quiet --checkpoint conv.h5 || fail "train conv"
cp img.h5 img-copy.h5
# case: visualize --out DIR whose filters.png is the --data file (a symlink)
mkdir -p V && ln -sf ../img.h5 V/filters.png
expect 2 "^convoy: --out's V/filters.png is also the --data file; choose another path$" -- cv visualize conv.h5 --data img.h5 --out V
# case: visualize --out DIR whose features-01.png is the checkpoint (a hard link)
rm V/filters.png && ln conv.h5 V/features-01.png
expect 2 "^convoy: --out's V/features-01.png is also the CHECKPOINT file" -- cv visualize conv.h5 --data img.h5 --out V
# case: convert fashion-mnist --out DIR whose train.h5 is a symlink to one of the --src files
mkdir -p S O && cp images.idx S/train-images-idx3-ubyte && cp labels.idx S/train-labels-idx1-ubyte &&
    cp images.idx S/t10k-images-idx3-ubyte && cp labels.idx S/t10k-labels-idx1-ubyte && ln -sf ../S/t10k-labels-idx1-ubyte O/train.h5
expect 2 "^convoy: --out's O/train.h5 is also the --src file; choose another path$" -- cv convert fashion-mnist --src S --out O
cmp -s labels.idx S/t10k-labels-idx1-ubyte && [[ -L O/train.h5 ]] || fail "convert fashion-mnist replaced O/train.h5 (the link) or its source"
# case: convert cifar10 DIR --out whose test.h5 is a hard link to DIR's test_batch.bin
mkdir -p C O2 && printf 'x\n' > C/test_batch.bin && ln C/test_batch.bin O2/test.h5
expect 2 "^convoy: --out's O2/test.h5 is also the DIR file" -- cv convert cifar10 C --out O2
# case: convert images --out naming one of the folder's images (through a symlink)
mkdir -p I/a I/b && cv augment --data img.h5 --config aug.txt --count 2 --save-to-dir P >/dev/null || fail "augment for images"
cp "$(ls P/aug_0_*.png)" I/a/one.png && cp "$(ls P/aug_1_*.png)" I/b/two.png && cp I/b/two.png two-copy.png && ln -sf I/b/two.png out.h5
expect 1 "^convoy: --out out.h5 is also the image I/b/two.png of the folder; choose another path$" -- cv convert images I --out out.h5
cmp -s I/b/two.png two-copy.png || fail "convert images wrote over one of its images"
# case: tune --data inside --dir's trials/ folder (its NNNNN.h5 are written, renamed and removed)
mkdir -p T3/trials && cp d.h5 T3/trials/00000.h5
expect 2 "^convoy: --data T3/trials/00000.h5 is in T3/trials/, where the search writes its trials; choose another --dir or move the file$" -- \
    cv tune m.model --data T3/trials/00000.h5 --max-trials 1 --dir T3
# case: augment into a folder of --data images that holds an earlier run's images (same names)
cv augment --data I --config aug.txt --count 2 --save-to-dir I/a >/dev/null || fail "augment into the image folder"
cp -r I I-copy
expect 1 "^convoy: I/a/aug_0_[0-9]+\.png is also an input \(in --data I\); choose another --save-to-dir$" -- \
    cv augment --data I --config aug.txt --count 2 --save-to-dir I/a
diff -r I I-copy >/dev/null || fail "augment wrote over its --data images"
cmp -s img.h5 img-copy.h5 || fail "a refused command changed img.h5"

# -- 2. unbounded reads: devices, FIFOs and oversized text files
# case: a model file that is /dev/zero
expect 1 "^convoy: /dev/zero: not a regular file$" -- cv train /dev/zero --data d.h5
# case: a model file that is /dev/urandom (summary)
expect 1 "^convoy: /dev/urandom: not a regular file$" -- cv summary /dev/urandom
# case: an augment file that is /dev/zero
expect 1 "^convoy: /dev/zero: not a regular file$" -- cv augment --data d.h5 --config /dev/zero --count 1 --save-to-dir A
# case: a model file that is a FIFO
expect 1 "fifo.model: not a regular file" -- cv train fifo.model --data d.h5
# case: a model file over 16 MB
truncate -s 17M big.model
expect 1 "big.model: 17825792 bytes, more than the 16 MB a model file may have" -- cv summary big.model
# case: tune's model file is /dev/zero
expect 1 "/dev/zero: not a regular file" -- cv tune /dev/zero --data d.h5 --max-trials 1 --dir T2

# -- 3. FIFOs where HDF5 files are read: refused before the open (which would wait forever)
# case: train --data FIFO
expect 1 "fifo.h5: not a regular file" -- cv train m.model --data fifo.h5
# case: train --val FIFO
expect 1 "fifo.h5: not a regular file" -- cv train m.model --data d.h5 --val fifo.h5
# case: train --stream --data FIFO
expect 1 "fifo.h5: not a regular file" -- cv train m.model --data fifo.h5 --stream
# case: train --init-from FIFO
expect 1 "fifo.h5: not a regular file" -- cv train m.model --data d.h5 --init-from fifo.h5
# case: train --resume FIFO
expect 1 "fifo.h5: not a regular file" -- cv train m.model --data d.h5 --resume fifo.h5
# case: a base checkpoint that is a FIFO
printf 'base checkpoint=fifo.h5 upto=1\ndense units=2 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n' > fbase.model
expect 1 "fifo.h5:? (is )?not a regular file" -- cv train fbase.model --data d.h5
# case: eval's checkpoint is a FIFO
expect 1 "fifo.h5: not a regular file" -- cv eval fifo.h5 --data d.h5
# case: eval --data FIFO
expect 1 "fifo.h5: not a regular file" -- cv eval c.h5 --data fifo.h5
# case: predict --data FIFO
expect 1 "fifo.h5: not a regular file" -- cv predict c.h5 --data fifo.h5
# case: summary of a FIFO
expect 1 "fifo.h5: not a regular file" -- cv summary fifo.h5
# case: convert csv from a FIFO
expect 1 "fifo.csv: not a regular file" -- cv convert csv fifo.csv --label label --out x.h5
# case: convert idx from a FIFO
expect 1 "fifo.csv: not a regular file" -- cv convert idx fifo.csv d.csv --out x.h5
# case: plot a FIFO history
expect 1 "fifo.csv: not a regular file" -- cv plot fifo.csv --out x.svg
# case: augment --data FIFO
expect 1 "fifo.h5: not a regular file" -- cv augment --data fifo.h5 --config aug.txt --count 1 --save-to-dir A
[[ -e x.h5 || -e x.svg ]] && fail "a refused input left an output"

# -- 4. misleading messages
# case: a UTF-8 byte-order mark before `input`
printf '\xef\xbb\xbf' > bom.model && cat m.model >> bom.model
cv train bom.model --data d.h5 --quiet --checkpoint bom.h5 2>err.txt || fail "a model file with a byte-order mark: $(cat err.txt)"
# case: CR-only line ends
tr '\n' '\r' < m.model > cr.model
cv summary cr.model > out.txt 2>err.txt && grep -q "Total params: 10" out.txt || fail "CR-only model: $(cat err.txt)"
# case: CRLF line ends (as before)
sed 's/$/\r/' m.model > crlf.model
cv summary crlf.model >/dev/null || fail "CRLF model"
# case: a dataset compressed with a filter this HDF5 lacks (h5py's lzf, tests/fixtures/lzf-x.h5):
# the filter named, not "corrupt" (train, train --stream and eval)
cp "$src/tests/fixtures/lzf-x.h5" lzf.h5
lzf="^convoy: lzf.h5: /x is compressed with filter 32000 \(lzf\), which this HDF5 build lacks; re-save it with gzip or no compression \(h5repack -f NONE\)$"
expect 1 "$lzf" -- cv train m.model --data lzf.h5
expect 1 "$lzf" -- cv train m.model --data lzf.h5 --stream
expect 1 "$lzf" -- cv eval c.h5 --data lzf.h5
# still read: the same filter skipped for every chunk (random floats: lzf would not shrink them)
cv eval c.h5 --data "$src/tests/fixtures/lzf-skipped.h5" >/dev/null 2>err.txt || fail "lzf-skipped.h5: $(cat err.txt)"
# case: a checkpoint under /proc: errno's words, not "directory does not exist"
expect 1 "^convoy: /proc/convoy-e2e.h5: cannot create \(No such file or directory\)$" -- cv train m.model --data d.h5 --quiet --checkpoint /proc/convoy-e2e.h5
# case: a checkpoint in a directory that does not exist still says so
expect 1 "no/dir/c.h5: cannot create \(directory does not exist\)" -- cv train m.model --data d.h5 --quiet --checkpoint no/dir/c.h5

# -- 5. devices and FIFOs as outputs: never replaced by a rename, never waited on
# case: --log /dev/null, fresh and resumed (a device is written, never read back)
cv train m.model --data d.h5 --quiet --checkpoint dn.h5 --log /dev/null 2>err.txt || fail "--log /dev/null: $(cat err.txt)"
cv train m.model --data d.h5 --quiet --epochs 2 --resume dn.h5 --checkpoint dn.h5 --log /dev/null --plot dn.svg 2>err.txt ||
    fail "--resume with --log /dev/null: $(cat err.txt)"
# case: --log a FIFO that no process reads (fopen waited forever), fresh and resumed
mkfifo log.fifo
expect 1 "^convoy: log.fifo: cannot write the log \(a FIFO that no process reads: writing would wait for one\)$" -- \
    cv train m.model --data d.h5 --quiet --log log.fifo
expect 1 "log.fifo: cannot write the log \(a FIFO that no process reads" -- \
    cv train m.model --data d.h5 --quiet --epochs 2 --resume c.h5 --checkpoint r2.h5 --log log.fifo
[[ -e r2.h5 ]] && fail "a refused --log let the run save"
# still allowed: a FIFO with a reader (opened here first, read and write, so no one waits)
exec 3<>log.fifo
cv train m.model --data d.h5 --quiet --log log.fifo 2>err.txt || fail "--log a FIFO with a reader: $(cat err.txt)"
read -r -t 5 -u 3 header && [[ $header == epoch,lr,* ]] || fail "the FIFO's reader got no header: '${header:-}'"
exec 3<&-
if mknod null c 1 3 2>/dev/null && mknod null.csv c 1 3 && mknod null.h5 c 1 3; then
    # case: --plot a character device: written straight to it (a rename replaced the device)
    cv train m.model --data d.h5 --quiet --plot null 2>err.txt || fail "--plot on a device: $(cat err.txt)"
    [[ -c null ]] || fail "--plot replaced the device with a file"
    # case: predict --out a character device as CSV: written straight to it
    cv predict c.h5 --data d.h5 --out null.csv >/dev/null 2>err.txt || fail "predict --out a device: $(cat err.txt)"
    [[ -c null.csv ]] || fail "predict --out replaced the device with a file"
    # case: predict --out a character device as HDF5 (renamed into place): refused, the device kept
    expect 1 "^convoy: null.h5: not a regular file \(this output is written beside it and renamed over it\)$" -- \
        cv predict c.h5 --data d.h5 --out null.h5
    [[ -c null.h5 ]] || fail "predict --out F.h5 replaced the device with a file"
else
    echo "skipped: mknod is not allowed here (the character-device cases)"
fi
# a wide CSV (300,000 columns, 3 rows) converts in an address space of 800 MB: its row buffer grows
# with the rows read (it used to reserve 1,024 rows, 1.2 GB, before the first)
awk 'BEGIN { n = 300000; for (i = 0; i < n; i++) printf "c%d,", i; print "label";
  for (r = 0; r < 3; r++) { for (i = 0; i < n; i++) printf "0.5,"; print r % 2 } }' > wide.csv
if nm -D "$convoy" 2>/dev/null | grep __asan_init >/dev/null || ldd "$convoy" | grep libasan >/dev/null; then
    echo "skipped: the wide CSV's address-space limit (AddressSanitizer reserves terabytes)"
else
    (ulimit -v 800000; "$convoy" convert csv wide.csv --label label --out wide.h5 >/dev/null 2>err.txt) ||
        fail "wide CSV in 800 MB of address space: $(cat err.txt)"
fi
rm -f wide.csv wide.h5
unchanged "the end"
exit $((fails > 0))
