/* Private HDF5 helpers shared by datasets, predictions and checkpoints: checked reads and
 * writes of whole datasets and attributes, and atomic file creation (temp + fsync + rename).
 * Every error message names the file and the dataset path. */
#ifndef CONVOY_H5IO_H
#define CONVOY_H5IO_H

#include <hdf5.h>
#include <stdint.h>

#include "convoy/error.h"

/** Silences HDF5's own error stack printing (convoy reports errors itself). Idempotent. */
void cv_h5_quiet(void);

/** Opens an existing file read-only: "F: no such file" / "F: not an HDF5 file"; a file the HDF5
 *  library crashes, loops or runs out of memory on while cv_h5_probe reads it is refused. */
hid_t cv_h5_open_read(const char *path, cv_err *err);
/** Reads path's objects, attributes and (up to 64 MB) data in a forked child (h5probe.c): -1 with
 *  "F: damaged HDF5 file: ..." when the child died by a signal or its 30 s alarm, else 0 (also
 *  when CONVOY_H5_PROBE=0 or no child could be forked). */
int cv_h5_probe(const char *path, cv_err *err);

/** Atomic writing: creates "<path>.tmp.<pid>" (name returned in tmp), which cv_h5_commit
 *  flushes, closes, fsyncs and renames onto path, and cv_h5_abort closes and removes. An
 *  unwritable directory or a full disk gives an error naming path; path is never touched
 *  until the rename. */
hid_t cv_h5_create_tmp(const char *path, char *tmp, size_t tmpsize, cv_err *err);
int cv_h5_commit(hid_t file, const char *tmp, const char *path, cv_err *err);
/** The same for files too large to build in memory (an image folder's dataset): written to the
 *  temporary file as it grows (HDF5's default driver), committed by cv_h5_commit_disk (flush,
 *  fsync, rename), removed by cv_h5_abort. */
hid_t cv_h5_create_tmp_disk(const char *path, char *tmp, size_t tmpsize, cv_err *err);
int cv_h5_commit_disk(hid_t file, const char *tmp, const char *path, cv_err *err);
/** cv_h5_commit_disk in two halves, for outputs that must appear together: close and sync the
 *  temporary file (removed on failure), then rename it onto path, durably. */
int cv_h5_close_disk(hid_t file, const char *tmp, const char *path, cv_err *err);
int cv_h5_replace(const char *tmp, const char *path, cv_err *err);
void cv_h5_abort(hid_t file, const char *tmp);

/** Whole-dataset writes (name may contain '/', intermediate groups are created). */
int cv_h5_write(hid_t loc, const char *name, hid_t memtype, int rank, const hsize_t *dims,
                const void *data, const char *file, cv_err *err);
/** A dataset that grows along its first dimension: dims[1..rank) fixed, no rows yet, stored in
 *  chunks of chunk_rows rows; type is also the file type. Returns the open dataset, -1 on error. */
hid_t cv_h5_create_rows(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, hsize_t chunk_rows,
                        const char *file, cv_err *err);
/** Appends `rows` rows of memtype (each of the dataset's row shape) at its end. */
int cv_h5_append_rows(hid_t dset, hid_t memtype, hsize_t rows, const void *data, const char *file, cv_err *err);
/** Reads dataset `name` as memtype after checking it exists and has exactly `rank` dims equal
 *  to dims (a dims entry of 0 accepts any size and is filled in). Errors like
 *  "F.h5:/layers/01_dense/kernel: shape (12,5) but the model needs (12,6)". */
int cv_h5_read(hid_t loc, const char *name, hid_t memtype, int rank, hsize_t *dims, void *data,
               const char *file, cv_err *err);
/** Checks an integer or float dataset can be read safely, before anything is allocated for it
 *  (HDF5 1.10 itself crashes or exhausts memory on some corrupt files): an element type of
 *  1-8 bytes with consistent fields, dims within the dataspace's maximum, some data stored,
 *  and compact/contiguous storage exactly as large as the shape needs. Other type classes
 *  pass (callers reject them with a better message). cv_h5_read calls it. */
int cv_h5_check_readable(hid_t dset, const char *where, const char *file, cv_err *err);
/** Checkpoint tensors: cv_h5_write plus the attribute CV_H5_CRC_ATTR on the dataset, the CRC32C
 *  of its elements' little-endian bytes (int64, 0..2^32-1); and cv_h5_read that, with data,
 *  verifies that attribute when present (files without it, from older convoys or h5py, load)
 *  and, for float types, that every value is finite: "F.h5:/layers/03_dense/kernel: checksum
 *  mismatch ...", "F.h5:/layers/03_dense/kernel: NaN at [12,0]". */
#define CV_H5_CRC_ATTR "crc32c"
int cv_h5_write_tensor(hid_t loc, const char *name, hid_t memtype, int rank, const hsize_t *dims, const void *data,
                       const char *file, cv_err *err);
int cv_h5_read_tensor(hid_t loc, const char *name, hid_t memtype, int rank, hsize_t *dims, void *data,
                      const char *file, cv_err *err);
/** CRC32C (Castagnoli) of n bytes, continuing crc (0 to start): SSE4.2's instruction where the
 *  CPU has it, else cv_crc32c_portable (tables, 8 bytes a step), which gives the same. */
uint32_t cv_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t cv_crc32c_portable(uint32_t crc, const void *data, size_t n);
/** Rank and dims (up to 8) of dataset name; -1 with an error if missing. */
int cv_h5_shape(hid_t loc, const char *name, int *rank, hsize_t *dims, const char *file,
                cv_err *err);
int cv_h5_exists(hid_t loc, const char *name);

/** Scalar attributes on an object (loc, with `obj` "." for loc itself). */
int cv_h5_attr_write_str(hid_t loc, const char *name, const char *s, const char *file, cv_err *err);
/** Returns a malloc'd string, NULL with an error if missing or not a string. */
char *cv_h5_attr_read_str(hid_t loc, const char *name, const char *file, cv_err *err);
int cv_h5_attr_write_f64(hid_t loc, const char *name, double v, const char *file, cv_err *err);
int cv_h5_attr_read_f64(hid_t loc, const char *name, double *v, const char *file, cv_err *err);
int cv_h5_attr_write_i64(hid_t loc, const char *name, int64_t v, const char *file, cv_err *err);
int cv_h5_attr_read_i64(hid_t loc, const char *name, int64_t *v, const char *file, cv_err *err);
/** Array of strings attribute (e.g. `classes`). */
int cv_h5_attr_write_strs(hid_t loc, const char *name, char *const *s, int n, const char *file,
                          cv_err *err);
/** Returns count (>= 0) and a malloc'd array of malloc'd strings in *out; -1 on error;
 *  0 with *out NULL when the attribute is absent. */
int cv_h5_attr_read_strs(hid_t loc, const char *name, char ***out, const char *file, cv_err *err);

/** Shared by h5io.c and h5attr.c: "/group/name" for messages (absolute names as given,
 *  relative ones joined to loc's path; "" names loc itself), and a datatype class in words. */
void cv_h5_where(hid_t loc, const char *name, char *out, size_t size);
const char *cv_h5_class_word(H5T_class_t c);

#endif
