/* Checksummed, checked number tensors (io/h5io.h): checkpoints write every float tensor with a
 * CRC32C of its bytes as the dataset's attribute `crc32c`, and read it back verified (when the
 * attribute is there: files of older convoys and of h5py have none) and with every value
 * finite. */
#include "io/h5io.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as iSCSI, ext4 and Btrfs use it:
 * slicing by 8, its tables built on first use (8 KiB, the same on every call). */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2's crc32 instruction computes the same polynomial, 8 bytes at a time. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n)
{
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    c = (uint32_t)c64;
    while (n--) c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#define CRC_HW 1
#endif

uint32_t cv_crc32c(uint32_t crc, const void *data, size_t n)
{
#ifdef CRC_HW
    if (__builtin_cpu_supports("sse4.2")) return ~crc_hw(~crc, data, n);
#endif
    return cv_crc32c_portable(crc, data, n);
}

uint32_t cv_crc32c_portable(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    pthread_once(&crc_once, crc_init);
    for (; n >= 8; n -= 8, p += 8) {
        const uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* The checksum of n elements of `size` bytes as the file stores them: little-endian IEEE
 * (convoy's file type), so a big-endian host swaps each element first. */
static uint32_t tensor_crc(const void *data, size_t n, size_t size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const unsigned char *p = data;
    uint32_t c = 0;
    unsigned char e[8];
    for (size_t i = 0; i < n; i++, p += size) {
        for (size_t k = 0; k < size; k++) e[k] = p[size - 1 - k];
        c = cv_crc32c(c, e, size);
    }
    return c;
#else
    return cv_crc32c(0, data, n * size);
#endif
}

static size_t elem_count(int rank, const hsize_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    return n;
}

int cv_h5_write_tensor(hid_t loc, const char *name, hid_t memtype, int rank, const hsize_t *dims, const void *data,
                       const char *file, cv_err *err)
{
    if (cv_h5_write(loc, name, memtype, rank, dims, data, file, err)) return -1;
    const uint32_t crc = tensor_crc(data, elem_count(rank, dims), H5Tget_size(memtype));
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) {
        char where[512];
        cv_h5_where(loc, name, where, sizeof where);
        return cv_errf(err, "%s:%s: cannot reopen to store its checksum", file, where);
    }
    const int rc = cv_h5_attr_write_i64(d, CV_H5_CRC_ATTR, (int64_t)crc, file, err);
    H5Dclose(d);
    return rc;
}

/* "[i,j,k]" of flat element `at` of a (dims) tensor. */
static void fmt_index(char *out, size_t size, int rank, const hsize_t *dims, size_t at)
{
    size_t idx[8] = {0};
    for (int i = rank - 1; i >= 0; i--) {
        idx[i] = dims[i] ? at % (size_t)dims[i] : 0;
        at = dims[i] ? at / (size_t)dims[i] : 0;
    }
    size_t used = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < (rank ? rank : 1) && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%zu", i ? "," : "", rank ? idx[i] : (size_t)0);
    if (used < size) snprintf(out + used, size - used, "]");
}

int cv_h5_read_tensor(hid_t loc, const char *name, hid_t memtype, int rank, hsize_t *dims, void *data,
                      const char *file, cv_err *err)
{
    if (cv_h5_read(loc, name, memtype, rank, dims, data, file, err)) return -1;
    if (!data) return 0;
    char where[512];
    cv_h5_where(loc, name, where, sizeof where);
    const size_t n = elem_count(rank, dims), size = H5Tget_size(memtype);
    /* the checksum first: a flipped bit that makes a NaN is damage, not a diverged run */
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return cv_errf(err, "%s:%s: cannot reopen to check its checksum", file, where);
    const htri_t has = H5Aexists(d, CV_H5_CRC_ATTR);
    int64_t stored = 0;
    int rc = has < 0 ? cv_errf(err, "%s:%s: cannot read its attributes (file corrupt?)", file, where)
             : has > 0 ? cv_h5_attr_read_i64(d, CV_H5_CRC_ATTR, &stored, file, err)
                       : 0;
    H5Dclose(d);
    if (rc) return -1;
    if (has > 0) {
        const uint32_t crc = tensor_crc(data, n, size);
        if (stored < 0 || stored > (int64_t)UINT32_MAX || (uint32_t)stored != crc)
            return cv_errf(err, "%s:%s: checksum mismatch (attribute %s is 0x%08llx, the data's CRC32C 0x%08x): the "
                           "file is damaged (or the tensor was rewritten without updating or deleting its %s)",
                           file, where, CV_H5_CRC_ATTR, (unsigned long long)stored, crc, CV_H5_CRC_ATTR);
    }
    if (H5Tget_class(memtype) != H5T_FLOAT || (size != sizeof(float) && size != sizeof(double))) return 0;
    size_t bad = 0, first = 0;
    bool first_nan = false;
    for (size_t i = 0; i < n; i++) {
        const double v = size == sizeof(float) ? (double)((const float *)data)[i] : ((const double *)data)[i];
        if (isfinite(v)) continue;
        if (!bad++) {
            first = i;
            first_nan = isnan(v);
        }
    }
    if (!bad) return 0;
    char at[96];
    fmt_index(at, sizeof at, rank, dims, first);
    if (bad == 1) return cv_errf(err, "%s:%s: %s at %s", file, where, first_nan ? "NaN" : "Inf", at);
    return cv_errf(err, "%s:%s: %s at %s (%zu non-finite values in all)", file, where, first_nan ? "NaN" : "Inf", at,
                   bad);
}
