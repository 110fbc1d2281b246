/* MPI collectives used by training, each checked; large buffers go in chunks because MPI
 * counts are int. */
#include "convoy/dist.h"

#include <limits.h>

static int mpi_fail(int rc, const char *what, cv_err *err)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return cv_errf(err, "%s failed: %s", what, s);
}

int cv_dist_world(cv_dist *d, cv_err *err)
{
    d->comm = MPI_COMM_WORLD;
    int rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Comm_rank/size", err);
}

int cv_dist_sum_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err)
{
    if (d->size == 1) return 0;
    for (int64_t off = 0; off < n; off += INT_MAX / 2) {
        const int c = (int)(n - off < INT_MAX / 2 ? n - off : INT_MAX / 2);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, c, MPI_FLOAT, MPI_SUM, d->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce of gradients", err);
    }
    return 0;
}

int cv_dist_sum_f64(const cv_dist *d, double *buf, int n, cv_err *err)
{
    if (d->size == 1) return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce of metrics", err);
}

int cv_dist_bcast_f32(const cv_dist *d, float *buf, int64_t n, cv_err *err)
{
    if (d->size == 1) return 0;
    for (int64_t off = 0; off < n; off += INT_MAX / 2) {
        const int c = (int)(n - off < INT_MAX / 2 ? n - off : INT_MAX / 2);
        int rc = MPI_Bcast(buf + off, c, MPI_FLOAT, 0, d->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast of initial weights", err);
    }
    return 0;
}
