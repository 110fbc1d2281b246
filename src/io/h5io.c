/* Checked HDF5 access for datasets, predictions and checkpoints: whole-dataset reads and
 * writes and atomic file creation (temp file, fsync, rename); attributes are h5attr.c's.
 * HDF5's own error printing is silenced; every failure becomes one cv_err line. */
#include "io/h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/files.h"

#define H5IO_MAX_RANK 8

void cv_h5_quiet(void)
{
    /* Cheap and idempotent, so every entry point calls it rather than relying on an init. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* "/group/name" for messages: absolute names as given, relative ones joined to loc's path
 * ("" names loc itself, for attribute messages). */
void cv_h5_where(hid_t loc, const char *name, char *out, size_t size)
{
    if (name[0] == '/') {
        snprintf(out, size, "%s", name);
        return;
    }
    char base[256] = "";
    ssize_t len = H5Iget_name(loc, base, sizeof base);
    if (len <= 0 || (size_t)len >= sizeof base || strcmp(base, "/") == 0)
        snprintf(out, size, "/%s", name);
    else if (!name[0])
        snprintf(out, size, "%s", base);
    else
        snprintf(out, size, "%s/%s", base, name);
}

/* ---------------------------------------------------------------- files */

/* H5Ewalk2 callback: remembers a truncation or locking failure found on the stack. */
static herr_t find_open_failure(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    if (e->min_num == H5E_TRUNCATED || e->min_num == H5E_CANTLOCKFILE) *(hid_t *)data = e->min_num;
    return 0;
}

hid_t cv_h5_open_read(const char *path, cv_err *err)
{
    cv_h5_quiet();
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return cv_errf(err, "%s: no such file", path);
        return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return cv_errf(err, "%s: is a directory, not an HDF5 file", path);
    if (!S_ISREG(st.st_mode)) return cv_errf(err, "%s: not a regular file", path); /* a FIFO would block */
    /* Probe readability ourselves: HDF5 would report a permission problem as "not HDF5". */
    FILE *probe = fopen(path, "rb");
    if (!probe) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    fclose(probe);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return cv_errf(err, "%s: not an HDF5 file", path);
    if (cv_h5_probe(path, err)) return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) return f;
    /* The error stack still holds HDF5's reason: tell truncation and locking from corruption. */
    hid_t minor = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_open_failure, &minor);
    if (minor == H5E_TRUNCATED)
        return cv_errf(err, "%s: truncated HDF5 file (an interrupted copy or download?)", path);
    if (minor == H5E_CANTLOCKFILE)
        return cv_errf(err, "%s: locked by another process (HDF5_USE_FILE_LOCKING=FALSE "
                            "disables locking)", path);
    return cv_errf(err, "%s: corrupt HDF5 file (cannot open)", path);
}

/* Whether the directory path's file would go in exists (ENOENT may also come from a
 * filesystem such as /proc that refuses new files). */
static bool parent_exists(const char *path)
{
    char dir[4096] = ".";
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + (slash == path), path);
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Names the reason a file cannot be created in the words a user can act on. */
static const char *create_reason(const char *path, int e)
{
    switch (e) {
    case ENOENT: return parent_exists(path) ? strerror(e) : "directory does not exist";
    case ENOTDIR: return "a component of the path is not a directory";
    case EACCES: case EPERM: case EROFS: return "directory not writable";
    case ENOSPC: case EDQUOT: return "disk full";
    case ENAMETOOLONG: return "name too long";
    default: return strerror(e);
    }
}

static hid_t create_tmp(const char *path, char *tmp, size_t tmpsize, bool on_disk, cv_err *err)
{
    cv_h5_quiet();
    int len = snprintf(tmp, tmpsize, "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= tmpsize) {
        if (tmpsize) tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (path too long)", path);
    }
    /* bad input: an output that is a device or a FIFO, which the rename below would replace
     * (--checkpoint /dev/null made /dev/null a checkpoint) */
    if (cv_check_renamed_output(path, err)) {
        tmp[0] = '\0';
        return -1;
    }
    /* HDF5 loses errno, so probe with open(2) first to give a precise reason. A leftover temp
     * file with our own pid can only be from a dead process or an earlier failed write here. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        int e = errno;
        tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (%s)", path, create_reason(path, e));
    }
    if (close(fd) != 0) { /* nothing written yet, but a file system failing this fails the save too */
        int e = errno;
        unlink(tmp);
        tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (%s)", path, create_reason(path, e));
    }
    if (unlink(tmp) != 0) {
        int e = errno;
        tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (%s)", path, create_reason(path, e));
    }
    /* The file is built in memory (core driver, no backing store) and written out by
     * cv_h5_commit with plain write(2): a full disk or a file-size limit then fails in our own
     * code with errno, and never inside HDF5's flush, which leaves its state broken. Strong close
     * frees it even if a caller leaked a dataset or group handle. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        (!on_disk && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0)) {
        if (fapl >= 0) H5Pclose(fapl);
        tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (HDF5 property list failed)", path);
    }
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        tmp[0] = '\0';
        return cv_errf(err, "%s: cannot create (HDF5 failed)", path);
    }
    return f;
}

hid_t cv_h5_create_tmp(const char *path, char *tmp, size_t tmpsize, cv_err *err)
{
    return create_tmp(path, tmp, tmpsize, false, err);
}

hid_t cv_h5_create_tmp_disk(const char *path, char *tmp, size_t tmpsize, cv_err *err)
{
    return create_tmp(path, tmp, tmpsize, true, err);
}

/* fsync a file or directory by name; directories on some filesystems refuse (EINVAL). */
static int fsync_path(const char *p, bool dir)
{
    int fd = open(p, dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && dir && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Writes n bytes or fails with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cv_h5_commit(hid_t file, const char *tmp, const char *path, cv_err *err)
{
    /* the in-memory image, then the temporary file, fsync, rename, fsync of the directory */
    ssize_t size = H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(file, NULL, 0);
    char *image = size > 0 ? malloc((size_t)size) : NULL;
    if (!image || H5Fget_file_image(file, image, (size_t)size) != size) {
        free(image);
        H5Fclose(file);
        return cv_errf(err, "%s: cannot write (HDF5 could not build the file image)", path);
    }
    H5Fclose(file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0 || write_all(fd, image, (size_t)size) != 0 || fsync(fd) != 0) {
        int e = errno;
        free(image);
        if (fd >= 0) close(fd);
        unlink(tmp);
        return cv_errf(err, "%s: cannot write (%s)", path,
                       e == ENOSPC || e == EFBIG || e == EDQUOT ? "disk full or file size limit reached" : strerror(e));
    }
    free(image);
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return cv_errf(err, "%s: cannot write (%s)", path, strerror(e));
    }
    return cv_h5_replace(tmp, path, err);
}

int cv_h5_close_disk(hid_t file, const char *tmp, const char *path, cv_err *err)
{
    const bool ok = H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0;
    if (H5Fclose(file) < 0 || !ok || fsync_path(tmp, false) != 0) {
        unlink(tmp);
        return cv_errf(err, "%s: cannot write (disk full or file size limit reached?)", path);
    }
    return 0;
}

int cv_h5_commit_disk(hid_t file, const char *tmp, const char *path, cv_err *err)
{
    return cv_h5_close_disk(file, tmp, path, err) ? -1 : cv_h5_replace(tmp, path, err);
}

/* The temporary file renamed onto path, durably. */
int cv_h5_replace(const char *tmp, const char *path, cv_err *err)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cv_errf(err, "%s: cannot replace (%s)", path, strerror(e));
    }
    /* The rename is durable only once the directory entry is on disk. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (fsync_path(dir, true) != 0)
        return cv_errf(err, "%s: written, but syncing directory %s failed (%s)", path, dir,
                       strerror(errno));
    return 0;
}

void cv_h5_abort(hid_t file, const char *tmp)
{
    if (file >= 0) H5Fclose(file); /* in memory: nothing reached the disk (on disk: removed below) */
    if (tmp && tmp[0]) unlink(tmp);
}

/* ---------------------------------------------------------------- datasets */

int cv_h5_exists(hid_t loc, const char *name)
{
    cv_h5_quiet();
    /* H5Lexists fails (rather than saying no) when an intermediate group is missing, so walk
     * the path one component at a time. */
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
    for (char *p = buf + (buf[0] == '/'); *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        htri_t ok = H5Lexists(loc, buf, H5P_DEFAULT);
        *p = '/';
        if (ok <= 0) return 0;
    }
    if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
    return H5Oexists_by_name(loc, buf, H5P_DEFAULT) > 0; /* a dangling soft link is "missing" */
}

int cv_h5_write(hid_t loc, const char *name, hid_t memtype, int rank, const hsize_t *dims,
                const void *data, const char *file, cv_err *err)
{
    cv_h5_quiet();
    char where[512];
    cv_h5_where(loc, name, where, sizeof where);
    hid_t lcpl = -1, space = -1, dset = -1;
    int rc = -1;
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        cv_errf(err, "%s:%s: cannot create (HDF5 property list failed)", file, where);
        goto done;
    }
    space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    if (space < 0) {
        cv_errf(err, "%s:%s: cannot create dataspace of rank %d", file, where, rank);
        goto done;
    }
    /* The native memory type doubles as the file type: HDF5 stores it in its standard form. */
    dset = H5Dcreate2(loc, name, memtype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (dset < 0) {
        cv_errf(err, "%s:%s: cannot create dataset (exists already, or disk full?)", file, where);
        goto done;
    }
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    if (npoints > 0 && H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        cv_errf(err, "%s:%s: cannot write (disk full?)", file, where);
        goto done;
    }
    rc = 0;
done:
    if (dset >= 0 && H5Dclose(dset) < 0 && rc == 0)
        rc = cv_errf(err, "%s:%s: cannot close dataset (disk full?)", file, where);
    if (space >= 0) H5Sclose(space);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

hid_t cv_h5_create_rows(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, hsize_t chunk_rows,
                        const char *file, cv_err *err)
{
    cv_h5_quiet();
    char where[512];
    cv_h5_where(loc, name, where, sizeof where);
    hsize_t now[8], most[8], chunk[8];
    if (rank < 1 || rank > 8) return cv_errf(err, "%s:%s: cannot create a dataset of rank %d", file, where, rank);
    for (int i = 0; i < rank; i++) now[i] = most[i] = chunk[i] = dims[i];
    now[0] = 0;
    most[0] = H5S_UNLIMITED;
    chunk[0] = chunk_rows > 0 ? chunk_rows : 1;
    hid_t space = H5Screate_simple(rank, now, most), dcpl = H5Pcreate(H5P_DATASET_CREATE), dset = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0)
        dset = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (dset < 0) cv_errf(err, "%s:%s: cannot create dataset (exists already, or disk full?)", file, where);
    return dset;
}

int cv_h5_append_rows(hid_t dset, hid_t memtype, hsize_t rows, const void *data, const char *file, cv_err *err)
{
    char where[512];
    cv_h5_where(dset, "", where, sizeof where);
    if (rows == 0) return 0;
    hsize_t dims[8], start[8] = {0}, count[8];
    hid_t space = H5Dget_space(dset);
    const int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
    if (space >= 0) H5Sclose(space);
    if (rank < 1) return cv_errf(err, "%s:%s: cannot read its shape", file, where);
    start[0] = dims[0];
    for (int i = 0; i < rank; i++) count[i] = dims[i];
    count[0] = rows;
    dims[0] += rows;
    int rc = -1;
    hid_t fspace = -1, mspace = -1;
    if (H5Dset_extent(dset, dims) >= 0 && (fspace = H5Dget_space(dset)) >= 0 &&
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
        (mspace = H5Screate_simple(rank, count, NULL)) >= 0 &&
        H5Dwrite(dset, memtype, mspace, fspace, H5P_DEFAULT, data) >= 0)
        rc = 0;
    if (fspace >= 0) H5Sclose(fspace);
    if (mspace >= 0) H5Sclose(mspace);
    return rc ? cv_errf(err, "%s:%s: cannot write rows %llu.. (disk full?)", file, where, (unsigned long long)start[0]) : 0;
}

static void fmt_dims(char *out, size_t size, int rank, const hsize_t *dims, bool wildcard)
{
    size_t used = 0;
    used += (size_t)snprintf(out, size, "(");
    for (int i = 0; i < rank && used < size; i++) {
        if (wildcard && dims[i] == 0)
            used += (size_t)snprintf(out + used, size - used, "%s?", i ? "," : "");
        else
            used += (size_t)snprintf(out + used, size - used, "%s%llu", i ? "," : "",
                                     (unsigned long long)dims[i]);
    }
    if (used < size) snprintf(out + used, size - used, ")");
}

/* Opens dataset name after checking it exists; errors "F:/path: missing dataset". */
static hid_t open_dataset(hid_t loc, const char *name, const char *where, const char *file,
                          cv_err *err)
{
    if (!cv_h5_exists(loc, name)) return cv_errf(err, "%s:%s: missing dataset", file, where);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return cv_errf(err, "%s:%s: not a dataset (or file corrupt)", file, where);
    return d;
}

/* Rank and dims of an open dataset's simple dataspace. */
static int dataset_dims(hid_t dset, int *rank, hsize_t *dims, const char *where, const char *file,
                        cv_err *err)
{
    hid_t space = H5Dget_space(dset);
    if (space < 0) return cv_errf(err, "%s:%s: cannot read dataspace (file corrupt?)", file, where);
    int r = H5Sget_simple_extent_ndims(space);
    if (r < 0 || r > H5IO_MAX_RANK) {
        H5Sclose(space);
        if (r < 0) return cv_errf(err, "%s:%s: cannot read dataspace (file corrupt?)", file, where);
        return cv_errf(err, "%s:%s: rank %d exceeds %d", file, where, r, H5IO_MAX_RANK);
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        H5Sclose(space);
        return cv_errf(err, "%s:%s: cannot read dataspace (file corrupt?)", file, where);
    }
    H5Sclose(space);
    *rank = r;
    return 0;
}

int cv_h5_shape(hid_t loc, const char *name, int *rank, hsize_t *dims, const char *file,
                cv_err *err)
{
    cv_h5_quiet();
    char where[512];
    cv_h5_where(loc, name, where, sizeof where);
    hid_t d = open_dataset(loc, name, where, file, err);
    if (d < 0) return -1;
    int rc = dataset_dims(d, rank, dims, where, file, err);
    H5Dclose(d);
    return rc;
}

const char *cv_h5_class_word(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_BITFIELD: return "bitfield";
    default: return "unknown";
    }
}

/* HDF5 1.10 trusts a file's datatype message: a "float" of 4 GiB per element, or one whose
 * exponent and mantissa fields lie outside its bytes, exhausts memory or crashes inside the
 * conversion. Numbers convoy reads are 1-8 byte integers and 2-8 byte IEEE-like floats. */
static bool sane_number_type(hid_t t)
{
    const H5T_class_t c = H5Tget_class(t);
    const size_t size = H5Tget_size(t), bits = size * 8;
    const size_t prec = H5Tget_precision(t);
    const int off = H5Tget_offset(t);
    if ((size != 1 || c == H5T_FLOAT) && size != 2 && size != 4 && size != 8) return false;
    if (prec == 0 || off < 0 || prec + (size_t)off > bits) return false;
    if (c == H5T_INTEGER) return true;
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return false;
    return esize >= 1 && esize <= 16 && msize >= 1 && spos < bits && epos + esize <= bits &&
           mpos + msize <= bits && H5Tget_ebias(t) < ((size_t)1 << esize);
}

/* Whether some chunk of dset went through pipeline filter i: an optional filter (h5py's lzf is
 * one) is skipped, and the chunk stored as it is, where it would not make the chunk smaller. */
static bool filter_applied(hid_t dset, unsigned i)
{
    const hid_t space = H5Dget_space(dset);
    hsize_t n = 0, offset[H5IO_MAX_RANK];
    bool applied = space < 0 || H5Sget_simple_extent_ndims(space) > H5IO_MAX_RANK ||
                   H5Dget_num_chunks(dset, space, &n) < 0;
    for (hsize_t c = 0; !applied && c < n; c++) {
        unsigned mask = 0;
        haddr_t addr;
        hsize_t size;
        applied = H5Dget_chunk_info(dset, space, c, offset, &mask, &addr, &size) < 0 || !(mask & (1u << i));
    }
    if (space >= 0) H5Sclose(space);
    return applied;
}

/* bad input: a dataset compressed with a filter this HDF5 lacks (h5py's lzf), which HDF5
 * reports only as a failed read; the filter named, with the way out. */
static int check_filters(hid_t dset, hid_t dcpl, const char *where, const char *file, cv_err *err)
{
    const int n = H5Pget_nfilters(dcpl);
    for (int i = 0; i < n; i++) {
        unsigned flags, conf;
        size_t nv = 0;
        char name[64] = "";
        const H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nv, NULL, sizeof name, name, &conf);
        if (id < 0) return cv_errf(err, "%s:%s: cannot read its filter pipeline (file corrupt?)", file, where);
        if (H5Zfilter_avail(id) > 0 || ((flags & H5Z_FLAG_OPTIONAL) && !filter_applied(dset, (unsigned)i))) continue;
        for (char *c = name; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?'; /* the file's own text */
        return cv_errf(err, "%s: %s is compressed with filter %d (%s), which this HDF5 build lacks; re-save it with "
                       "gzip or no compression (h5repack -f NONE)", file, where, (int)id, name[0] ? name : "unnamed");
    }
    return n < 0 ? cv_errf(err, "%s:%s: cannot read its filter pipeline (file corrupt?)", file, where) : 0;
}

int cv_h5_check_readable(hid_t dset, const char *where, const char *file, cv_err *err)
{
    hid_t t = H5Dget_type(dset), space = H5Dget_space(dset), dcpl = H5Dget_create_plist(dset);
    int rc = 0;
    if (t < 0 || space < 0 || dcpl < 0) {
        rc = cv_errf(err, "%s:%s: cannot read its type or layout (file corrupt?)", file, where);
        goto done;
    }
    if ((rc = check_filters(dset, dcpl, where, file, err))) goto done;
    const H5T_class_t cls = H5Tget_class(t);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) goto done; /* callers reject other classes */
    if (!sane_number_type(t)) {
        rc = cv_errf(err, "%s:%s: unsupported number type (%zu bytes per element; convoy reads "
                     "1-8 byte integers and 2-8 byte floats)", file, where, H5Tget_size(t));
        goto done;
    }
    /* A corrupt dataspace can claim more rows than its own maximum (and than the file holds):
     * reading it would allocate the claim first. */
    hsize_t dims[H5IO_MAX_RANK], maxdims[H5IO_MAX_RANK];
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > H5IO_MAX_RANK || H5Sget_simple_extent_dims(space, dims, maxdims) < 0) {
        rc = cv_errf(err, "%s:%s: cannot read dataspace (file corrupt?)", file, where);
        goto done;
    }
    for (int i = 0; i < rank; i++)
        if (maxdims[i] != H5S_UNLIMITED && dims[i] > maxdims[i]) {
            rc = cv_errf(err, "%s:%s: dimension %d is %llu, beyond its maximum %llu (file "
                         "corrupt?)", file, where, i, (unsigned long long)dims[i],
                         (unsigned long long)maxdims[i]);
            goto done;
        }
    /* A compact or contiguous dataset holds exactly its points' bytes; HDF5 1.10 copies from a
     * short compact buffer. No data at all (created, never written) would read as fill values:
     * never a real training set, and a way for a small file to claim any size. */
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    const hssize_t points = H5Sget_simple_extent_npoints(space);
    const hsize_t have = H5Dget_storage_size(dset);
    const hsize_t need = points > 0 ? (hsize_t)points * H5Tget_size(t) : 0;
    if (points < 0 || layout < 0 ||
        ((layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) && have != 0 && have != need))
        rc = cv_errf(err, "%s:%s: stored size %llu bytes does not match its shape and type "
                     "(%llu bytes; file corrupt?)", file, where, (unsigned long long)have,
                     (unsigned long long)need);
    else if (have == 0 && need > 0)
        rc = cv_errf(err, "%s:%s: holds no data (created but never written?)", file, where);
done:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int cv_h5_read(hid_t loc, const char *name, hid_t memtype, int rank, hsize_t *dims, void *data,
               const char *file, cv_err *err)
{
    cv_h5_quiet();
    char where[512];
    cv_h5_where(loc, name, where, sizeof where);
    hid_t d = open_dataset(loc, name, where, file, err);
    if (d < 0) return -1;
    int rc = -1, frank = 0;
    hsize_t fdims[H5IO_MAX_RANK];
    hid_t ftype = -1;
    if (dataset_dims(d, &frank, fdims, where, file, err) < 0) goto done;
    bool match = frank == rank;
    for (int i = 0; match && i < rank; i++) match = dims[i] == 0 || dims[i] == fdims[i];
    if (!match) {
        char have[160], want[160];
        fmt_dims(have, sizeof have, frank, fdims, false);
        fmt_dims(want, sizeof want, rank, dims, true);
        cv_errf(err, "%s:%s: shape %s but expected %s", file, where, have, want);
        goto done;
    }
    /* HDF5 would silently truncate floats read as integers; numbers only go up the ladder. */
    ftype = H5Dget_type(d);
    H5T_class_t fc = ftype >= 0 ? H5Tget_class(ftype) : H5T_NO_CLASS;
    H5T_class_t mc = H5Tget_class(memtype);
    bool ok = fc == mc || (mc == H5T_FLOAT && fc == H5T_INTEGER);
    if (!ok) {
        cv_errf(err, "%s:%s: %s data but expected %s", file, where, cv_h5_class_word(fc),
                cv_h5_class_word(mc));
        goto done;
    }
    if (cv_h5_check_readable(d, where, file, err) < 0) goto done;
    for (int i = 0; i < rank; i++) dims[i] = fdims[i];
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= fdims[i];
    if (data && total > 0 && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        cv_errf(err, "%s:%s: cannot read (file truncated or corrupt?)", file, where);
        goto done;
    }
    rc = 0;
done:
    if (ftype >= 0) H5Tclose(ftype);
    H5Dclose(d);
    return rc;
}

/* ---------------------------------------------------------------- attributes */
