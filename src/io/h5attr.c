/* Checked HDF5 attributes (io/h5io.h): scalar numbers, strings and string arrays, written and
 * read with their type, size and presence checked; every failure becomes one cv_err line. */
#include "io/h5io.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Variable-length UTF-8 strings: what h5py writes for str and reads back as str. */
static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Creates (replacing any old one) and writes attribute name. */
static int attr_write(hid_t loc, const char *name, hid_t type, hid_t space, const void *buf,
                      const char *file, cv_err *err)
{
    cv_h5_quiet();
    char where[512];
    cv_h5_where(loc, "", where, sizeof where);
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0 || (ex > 0 && H5Adelete(loc, name) < 0))
        return cv_errf(err, "%s:%s: cannot replace attribute '%s'", file, where, name);
    hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return cv_errf(err, "%s:%s: cannot create attribute '%s'", file, where, name);
    int rc = 0;
    if (H5Awrite(a, type, buf) < 0)
        rc = cv_errf(err, "%s:%s: cannot write attribute '%s' (disk full?)", file, where, name);
    if (H5Aclose(a) < 0 && rc == 0)
        rc = cv_errf(err, "%s:%s: cannot write attribute '%s' (disk full?)", file, where, name);
    return rc;
}

int cv_h5_attr_write_str(hid_t loc, const char *name, const char *s, const char *file, cv_err *err)
{
    hid_t t = vlen_str_type();
    hid_t space = H5Screate(H5S_SCALAR);
    int rc;
    if (t < 0 || space < 0)
        rc = cv_errf(err, "%s: cannot create string attribute '%s'", file, name);
    else
        rc = attr_write(loc, name, t, space, &s, file, err);
    if (space >= 0) H5Sclose(space);
    if (t >= 0) H5Tclose(t);
    return rc;
}

static int attr_write_scalar(hid_t loc, const char *name, hid_t type, const void *v,
                             const char *file, cv_err *err)
{
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0) return cv_errf(err, "%s: cannot create attribute '%s'", file, name);
    int rc = attr_write(loc, name, type, space, v, file, err);
    H5Sclose(space);
    return rc;
}

int cv_h5_attr_write_f64(hid_t loc, const char *name, double v, const char *file, cv_err *err)
{
    return attr_write_scalar(loc, name, H5T_NATIVE_DOUBLE, &v, file, err);
}

int cv_h5_attr_write_i64(hid_t loc, const char *name, int64_t v, const char *file, cv_err *err)
{
    return attr_write_scalar(loc, name, H5T_NATIVE_INT64, &v, file, err);
}

int cv_h5_attr_write_strs(hid_t loc, const char *name, char *const *s, int n, const char *file,
                          cv_err *err)
{
    if (n < 0) return cv_errf(err, "%s: attribute '%s': negative count %d", file, name, n);
    hsize_t dim = (hsize_t)n;
    hid_t t = vlen_str_type();
    hid_t space = H5Screate_simple(1, &dim, NULL);
    int rc;
    if (t < 0 || space < 0) {
        rc = cv_errf(err, "%s: cannot create string attribute '%s'", file, name);
    } else {
        /* HDF5 dereferences every element of a vlen write: a NULL entry must become "". */
        const char **buf = cv_malloc((size_t)(n ? n : 1) * sizeof *buf, "string attribute", err);
        if (!buf) {
            rc = -1;
        } else {
            for (int i = 0; i < n; i++) buf[i] = s[i] ? s[i] : "";
            rc = attr_write(loc, name, t, space, buf, file, err);
            free(buf);
        }
    }
    if (space >= 0) H5Sclose(space);
    if (t >= 0) H5Tclose(t);
    return rc;
}

/* Opens attribute name, checking its existence; -2 (no error) when absent. */
static hid_t attr_open(hid_t loc, const char *name, const char *where, const char *file,
                       cv_err *err)
{
    cv_h5_quiet();
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0)
        return cv_errf(err, "%s:%s: cannot read attribute '%s' (file corrupt?)", file, where, name);
    if (ex == 0) return -2;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        return cv_errf(err, "%s:%s: cannot read attribute '%s' (file corrupt?)", file, where, name);
    return a;
}

/* Number of elements in an attribute's dataspace (a scalar counts 1); -1 on error. */
static hssize_t attr_npoints(hid_t a)
{
    hid_t space = H5Aget_space(a);
    if (space < 0) return -1;
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (H5Sget_simple_extent_ndims(space) > 1) n = -1; /* only scalars and 1-D arrays */
    H5Sclose(space);
    return n;
}

/* Reads n strings (vlen or fixed-length) of attribute a into a malloc'd array. */
static int attr_strings(hid_t a, hssize_t n, char ***out, const char *name, const char *where,
                        const char *file, cv_err *err)
{
    int rc = -1;
    hid_t ftype = H5Aget_type(a), mtype = -1;
    char **res = NULL;
    if (ftype < 0 || H5Tget_class(ftype) != H5T_STRING) {
        cv_errf(err, "%s:%s: attribute '%s' is not a string", file, where, name);
        goto done;
    }
    res = cv_calloc((size_t)(n ? n : 1), sizeof *res, "string attribute", err);
    if (!res) goto done;
    htri_t vlen = H5Tis_variable_str(ftype);
    if (vlen < 0) {
        cv_errf(err, "%s:%s: attribute '%s' has a bad string type", file, where, name);
        goto done;
    }
    if (vlen) {
        mtype = vlen_str_type();
        /* HDF5 converts no character set into another: read ASCII (h5py's bytes) as ASCII */
        const H5T_cset_t cset = H5Tget_cset(ftype);
        if (mtype >= 0 && cset >= 0 && H5Tset_cset(mtype, cset) < 0) H5Tclose(mtype), mtype = -1;
        char **raw = cv_calloc((size_t)(n ? n : 1), sizeof *raw, "string attribute", err);
        if (!raw) goto done;
        if (mtype < 0 || H5Aread(a, mtype, raw) < 0) {
            free(raw);
            cv_errf(err, "%s:%s: cannot read attribute '%s' (file corrupt?)", file, where, name);
            goto done;
        }
        int fail = 0;
        for (hssize_t i = 0; i < n; i++) {
            const char *s = raw[i] ? raw[i] : "";
            if (!fail) {
                res[i] = cv_malloc(strlen(s) + 1, "string attribute", err);
                if (res[i]) memcpy(res[i], s, strlen(s) + 1);
                else fail = 1;
            }
            if (raw[i]) H5free_memory(raw[i]);
        }
        free(raw);
        if (fail) goto done;
    } else {
        /* Fixed length: read as null-terminated strings one byte longer, whatever the padding. */
        size_t sz = H5Tget_size(ftype);
        /* the type's size comes from the file: a corrupt one claimed gigabytes that the
         * attribute does not hold, and HDF5 and convoy allocated (and zeroed) them all */
        if (sz == 0 || H5Aget_storage_size(a) != (hsize_t)n * sz) {
            cv_errf(err, "%s:%s: attribute '%s' has a bad string size (file corrupt?)", file,
                    where, name);
            goto done;
        }
        mtype = H5Tcopy(H5T_C_S1);
        if (mtype < 0 || H5Tset_size(mtype, sz + 1) < 0 ||
            H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0) {
            cv_errf(err, "%s:%s: attribute '%s' has a bad string type", file, where, name);
            goto done;
        }
        char *raw = cv_calloc((size_t)(n ? n : 1), sz + 1, "string attribute", err);
        if (!raw) goto done;
        if (H5Aread(a, mtype, raw) < 0) {
            free(raw);
            cv_errf(err, "%s:%s: cannot read attribute '%s' (file corrupt?)", file, where, name);
            goto done;
        }
        for (hssize_t i = 0; i < n; i++) {
            const char *s = raw + (size_t)i * (sz + 1);
            size_t len = strnlen(s, sz);
            res[i] = cv_malloc(len + 1, "string attribute", err);
            if (!res[i]) break;
            memcpy(res[i], s, len);
            res[i][len] = '\0';
        }
        free(raw);
        for (hssize_t i = 0; i < n; i++)
            if (!res[i]) goto done;
    }
    *out = res;
    res = NULL;
    rc = 0;
done:
    if (res) {
        for (hssize_t i = 0; i < n; i++) free(res[i]);
        free(res);
    }
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    return rc;
}

char *cv_h5_attr_read_str(hid_t loc, const char *name, const char *file, cv_err *err)
{
    char where[512];
    cv_h5_where(loc, "", where, sizeof where);
    hid_t a = attr_open(loc, name, where, file, err);
    if (a == -2) cv_errf(err, "%s:%s: missing attribute '%s'", file, where, name);
    if (a < 0) return NULL;
    char **strs = NULL;
    char *s = NULL;
    hssize_t n = attr_npoints(a);
    if (n != 1)
        cv_errf(err, "%s:%s: attribute '%s' is not a single string", file, where, name);
    else if (attr_strings(a, 1, &strs, name, where, file, err) == 0) {
        s = strs[0];
        free(strs);
    }
    H5Aclose(a);
    return s;
}

int cv_h5_attr_read_strs(hid_t loc, const char *name, char ***out, const char *file, cv_err *err)
{
    char where[512];
    cv_h5_where(loc, "", where, sizeof where);
    *out = NULL;
    hid_t a = attr_open(loc, name, where, file, err);
    if (a == -2) return 0;
    if (a < 0) return -1;
    int rc = -1;
    hssize_t n = attr_npoints(a);
    if (n < 0 || n > 1000000)
        cv_errf(err, "%s:%s: attribute '%s' must be a list of strings", file, where, name);
    else if (attr_strings(a, n, out, name, where, file, err) == 0)
        rc = (int)n;
    H5Aclose(a);
    return rc;
}

/* Reads a numeric scalar attribute as memtype (integers widen to double, not the reverse). */
static int attr_read_scalar(hid_t loc, const char *name, hid_t memtype, void *v, const char *file,
                            cv_err *err)
{
    char where[512];
    cv_h5_where(loc, "", where, sizeof where);
    hid_t a = attr_open(loc, name, where, file, err);
    if (a == -2) return cv_errf(err, "%s:%s: missing attribute '%s'", file, where, name);
    if (a < 0) return -1;
    int rc = -1;
    hid_t ftype = H5Aget_type(a);
    H5T_class_t fc = ftype >= 0 ? H5Tget_class(ftype) : H5T_NO_CLASS;
    H5T_class_t mc = H5Tget_class(memtype);
    if (!(fc == mc || (mc == H5T_FLOAT && fc == H5T_INTEGER)))
        cv_errf(err, "%s:%s: attribute '%s' is %s, expected %s", file, where, name,
                cv_h5_class_word(fc), cv_h5_class_word(mc));
    else if (attr_npoints(a) != 1)
        cv_errf(err, "%s:%s: attribute '%s' is not a single value", file, where, name);
    else if (H5Aread(a, memtype, v) < 0)
        cv_errf(err, "%s:%s: cannot read attribute '%s' (file corrupt?)", file, where, name);
    else
        rc = 0;
    if (ftype >= 0) H5Tclose(ftype);
    H5Aclose(a);
    return rc;
}

int cv_h5_attr_read_f64(hid_t loc, const char *name, double *v, const char *file, cv_err *err)
{
    return attr_read_scalar(loc, name, H5T_NATIVE_DOUBLE, v, file, err);
}

int cv_h5_attr_read_i64(hid_t loc, const char *name, int64_t *v, const char *file, cv_err *err)
{
    return attr_read_scalar(loc, name, H5T_NATIVE_INT64, v, file, err);
}
