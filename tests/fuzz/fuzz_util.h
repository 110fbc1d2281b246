/* Shared by the fuzz harnesses: the input bytes as a file HDF5 can open (one name per process,
 * so parallel fuzzing jobs do not collide), and a check that every HDF5 handle was closed. */
#ifndef CONVOY_FUZZ_UTIL_H
#define CONVOY_FUZZ_UTIL_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the input to /tmp/convoy-fuzz-PID.bin and returns that name (NULL if it cannot). */
static inline const char *fuzz_write_tmp(const uint8_t *data, size_t size)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/convoy-fuzz-%ld.bin", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    const int ok = fwrite(data, 1, size, f) == size;
    if (fclose(f) != 0 || !ok) return NULL;
    return path;
}

/* A handle left open by a failed load is a descriptor leak in a long-running trainer (and
 * would make HDF5 hand the stale file back on the next open): treat it as a crash. */
static inline void fuzz_check_handles(const char *path)
{
    unlink(path);
    const ssize_t open_objs = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_objs != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open\n", open_objs);
        abort();
    }
}

#endif
