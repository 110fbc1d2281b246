/* Reading the PyTorch reference fixtures (tests/fixtures/README.md) in the Criterion tests that
 * check against them: a whole dataset as doubles, its size checked. */
#ifndef CONVOY_TESTS_FIXTURE_H
#define CONVOY_TESTS_FIXTURE_H

#include <criterion/criterion.h>
#include <hdf5.h>

/* Dataset `name` of the open fixture `file` (its path `path`, for messages) into out, which must
 * hold exactly n values. */
static inline void fixture_read_f64(hid_t file, const char *path, const char *name, double *out, size_t n)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    cr_assert_geq(d, 0, "%s: no dataset %s", path, name);
    hid_t s = H5Dget_space(d);
    cr_assert_eq((size_t)H5Sget_simple_extent_npoints(s), n, "%s: %s has %lld values, expected %zu", path, name,
                 (long long)H5Sget_simple_extent_npoints(s), n);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0);
    H5Sclose(s);
    H5Dclose(d);
}

#endif
