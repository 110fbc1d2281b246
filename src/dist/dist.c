/* MPI collectives used by training, each checked; large buffers go in chunks because MPI
 * counts are int. */
#include "convoy/dist.h"
#include "convoy/exactsum.h"
#include "convoy/timer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cv_dist_split(const cv_dist *d, int color, cv_dist *group, cv_err *err)
{
    *group = cv_dist_single();
    if (d->size == 1) return 0;
    MPI_Comm c;
    int rc = MPI_Comm_split(d->comm, color, d->rank, &c);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_split", err);
    group->comm = c;
    rc = MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(c, &group->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(c, &group->size);
    if (rc != MPI_SUCCESS) {
        cv_dist_free(group);
        return mpi_fail(rc, "MPI_Comm_rank/size of a split communicator", err);
    }
    return 0;
}

void cv_dist_free(cv_dist *group)
{
    if (group->comm != MPI_COMM_NULL && group->comm != MPI_COMM_WORLD) MPI_Comm_free(&group->comm);
    *group = cv_dist_single();
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

int cv_dist_barrier(const cv_dist *d, cv_err *err)
{
    if (d->size == 1) return 0;
    int rc = MPI_Barrier(d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Barrier", err);
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

int cv_dist_bcast_bytes(const cv_dist *d, void **buf, int64_t *n, cv_err *err)
{
    if (d->size == 1) return 0;
    int64_t len = d->rank == 0 ? *n : 0;
    int rc = MPI_Bcast(&len, 1, MPI_INT64_T, 0, d->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast of a size", err);
    if (d->rank != 0 && !(*buf = cv_malloc((size_t)(len ? len : 1), "broadcast bytes", err))) return -1;
    *n = len;
    for (int64_t off = 0; off < len; off += INT_MAX / 2) {
        const int c = (int)(len - off < INT_MAX / 2 ? len - off : INT_MAX / 2);
        if ((rc = MPI_Bcast((char *)*buf + off, c, MPI_BYTE, 0, d->comm)) != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Bcast of bytes", err);
    }
    return 0;
}

int cv_dist_gather(const cv_dist *d, const void *mine, int64_t bytes, void *all, cv_err *err)
{
    if (d->size == 1) {
        if (all != mine) memcpy(all, mine, (size_t)bytes);
        return 0;
    }
    if (bytes > INT_MAX) return cv_errf(err, "MPI_Gather of %lld bytes per rank: more than one call takes", (long long)bytes);
    const int rc = MPI_Gather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, 0, d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Gather", err);
}

int cv_dist_allgather(const cv_dist *d, const void *mine, int64_t bytes, void *all, cv_err *err)
{
    if (d->size == 1) {
        if (all != mine) memcpy(all, mine, (size_t)bytes);
        return 0;
    }
    if (bytes > INT_MAX) return cv_errf(err, "MPI_Allgather of %lld bytes per rank: more than one call takes", (long long)bytes);
    const int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, d->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgather", err);
}

int cv_dist_agree(const cv_dist *d, int failed, cv_err *err)
{
    if (d->size == 1) return failed ? -1 : 0;
    /* the lowest failing rank speaks for everyone */
    int mine = failed ? d->rank : d->size, first = d->size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (error agreement)", err);
    if (first == d->size) return 0;
    char msg[CV_ERR_MSG] = "";
    if (d->rank == first && err) snprintf(msg, sizeof msg, "%s", err->msg);
    rc = MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, d->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast (error agreement)", err);
    return first == 0 ? cv_errf(err, "%s", msg) : cv_errf(err, "rank %d: %s", first, msg);
}

uint64_t cv_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int cv_dist_check_same(const cv_dist *d, uint64_t value, const char *what, cv_err *err)
{
    if (d->size == 1) return 0;
    unsigned long long mine = value, *all = cv_malloc(sizeof *all * (size_t)d->size, "hash exchange", err);
    if (!all) return -1;
    int rc = MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, d->comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "MPI_Allgather (consistency check)", err);
    }
    int bad = -1;
    for (int r = 1; r < d->size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    int out = 0;
    if (bad >= 0)
        out = cv_errf(err, "%s differs: rank %d has %016llx, rank 0 has %016llx", what, bad, all[bad], all[0]);
    free(all);
    return out;
}

void cv_grad_sync_init(cv_grad_sync *s, const cv_dist *d, float *grads, int64_t n, int64_t bucket_bytes,
                       const int64_t *layer_off, int nlayers)
{
    memset(s, 0, sizeof *s);
    s->d = *d;
    s->grads = grads;
    s->n = n;
    if (bucket_bytes <= 0 || d->size == 1) return;
    int64_t bucket = bucket_bytes / (int64_t)sizeof(float), end = n;
    if (bucket < (n + CV_MAX_BUCKETS - 1) / CV_MAX_BUCKETS) bucket = (n + CV_MAX_BUCKETS - 1) / CV_MAX_BUCKETS;
    /* walk the layers from the last (backward's order), closing a bucket once it is big enough */
    for (int i = nlayers - 1; i > 0; i--)
        if (end - layer_off[i] >= bucket && s->nbuckets < CV_MAX_BUCKETS - 1) {
            s->start[s->nbuckets++] = layer_off[i];
            end = layer_off[i];
        }
    s->start[s->nbuckets++] = 0;
}

static int64_t bucket_end(const cv_grad_sync *s, int b) { return b == 0 ? s->n : s->start[b - 1]; }

static int launch_until(cv_grad_sync *s, int64_t off, cv_err *err)
{
    for (; s->next < s->nbuckets && s->start[s->next] >= off; s->next++) {
        const int64_t lo = s->start[s->next], len = bucket_end(s, s->next) - lo;
        if (len > INT_MAX) return cv_errf(err, "gradient bucket of %lld floats is too large for MPI", (long long)len);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, s->grads + lo, (int)len, MPI_FLOAT, MPI_SUM, s->d.comm,
                                &s->req[s->next]);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Iallreduce of gradients", err);
    }
    return 0;
}

int cv_grad_sync_ready(cv_grad_sync *s, int64_t off, cv_err *err)
{
    if (!s->nbuckets) return 0;
    const double t0 = cv_now();
    const int before = s->next;
    int rc = launch_until(s, off, err);
    /* Open MPI progresses non-blocking collectives only inside MPI calls: poke it */
    int done;
    if (rc == 0 && s->next > before && MPI_Testall(s->next, s->req, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        rc = cv_errf(err, "MPI_Testall of gradient buckets failed");
    s->seconds += cv_now() - t0;
    return rc;
}

int cv_grad_sync_finish(cv_grad_sync *s, cv_err *err)
{
    if (s->d.size == 1) return 0;
    const double t0 = cv_now();
    int rc;
    if (!s->nbuckets) {
        rc = cv_dist_sum_f32(&s->d, s->grads, s->n, err);
    } else {
        rc = launch_until(s, 0, err);
        if (rc == 0 && MPI_Waitall(s->nbuckets, s->req, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            rc = cv_errf(err, "MPI_Waitall of gradient buckets failed");
        s->next = 0;
    }
    s->seconds += cv_now() - t0;
    return rc;
}

/* The exact sum over ranks: the windows' maximum, the digits moved to it, each rank the integer
 * sums of its slice of the elements (MPI_Reduce_scatter: integers, so the order MPI adds them in
 * changes nothing), rounded there, and the floats gathered by every rank. */
int cv_xsum_allreduce_take(cv_xsum *s, const cv_dist *d, float *out, cv_err *err)
{
    if (d->size == 1) {
        cv_xsum_take(s, out);
        return 0;
    }
    if (s->n > INT_MAX) return cv_errf(err, "internal: an exact sum of %lld values is too long for MPI", (long long)s->n);
    const double t0 = cv_now();
    if (cv_xsum_terms(s) == 0) cv_xsum_wipe(s); /* this rank added nothing: its memory must say so */
    int64_t terms = cv_xsum_terms(s);
    int *count = malloc(sizeof(int) * 2 * (size_t)d->size);
    if (!count) return cv_errf(err, "out of memory for the exact sum's MPI counts");
    int *start = count + d->size;
    for (int r = 0; r < d->size; r++) {
        start[r] = (int)(s->n * r / d->size);
        count[r] = (int)(s->n * (r + 1) / d->size) - start[r];
    }
    memcpy(s->window_all, s->window, (size_t)s->n);
    int rc = MPI_Allreduce(MPI_IN_PLACE, s->window_all, (int)s->n, MPI_INT8_T, MPI_MAX, d->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &terms, 1, MPI_INT64_T, MPI_SUM, d->comm);
    if (rc == MPI_SUCCESS) {
        cv_xsum_align(s, s->window_all);
        int64_t *hi = s->digits, *lo = s->digits + s->n;
        rc = MPI_Reduce_scatter(MPI_IN_PLACE, hi, count, MPI_INT64_T, MPI_SUM, d->comm);
        if (rc == MPI_SUCCESS) rc = MPI_Reduce_scatter(MPI_IN_PLACE, lo, count, MPI_INT64_T, MPI_SUM, d->comm);
        /* this rank's slice sums now start hi and lo */
        if (rc == MPI_SUCCESS) cv_xsum_round(out + start[d->rank], s->window_all + start[d->rank], hi, lo, count[d->rank]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, count, start, MPI_FLOAT, d->comm);
    }
    free(count);
    cv_xsum_clear(s); /* the digits are spent either way */
    s->seconds += cv_now() - t0;
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI collectives of the exact gradient sum", err);
    if (terms > CV_XSUM_MAX_TERMS)
        return cv_errf(err, "internal: an exact sum of %lld vectors over %d ranks (at most %lld)", (long long)terms,
                       d->size, (long long)CV_XSUM_MAX_TERMS);
    return 0;
}
