/* The epoch's step plan, in pieces the trainer (fit.c) puts together: micro-batches of
 * positions, --reproducible's leaves, and the rows a micro-batch takes. */
#include "convoy/exactsum.h"
#include "train/fit-impl.h"

/* The dataset rows of micro-batch m: the epoch's order perm picks positions among the training
 * rows train_idx. */
void fit_fill_ids(const micro *m, const int64_t *train_idx, const int64_t *perm, int64_t *ids)
{
    for (int i = 0; i < m->count; i++) ids[i] = train_idx[perm[m->p + i]];
}

/* Appends the micro-batches of positions [lo, hi) as one leaf (at least one entry, so an empty
 * slice still joins its step); returns the new count. */
int64_t fit_plan_leaf(micro *plan, int64_t *steps_of, int64_t n, int64_t step, int64_t leaf, int64_t lo,
                         int64_t hi, int mb)
{
    int64_t p = lo;
    const int64_t first = n;
    do {
        if (plan) {
            plan[n] = (micro){p, (int)(hi - p < mb ? hi - p : mb), n == first, p + mb >= hi, leaf, false};
            steps_of[n] = step;
        }
        n++;
        p += mb;
    } while (p < hi);
    return n;
}

/* --reproducible: each global batch of `count` samples is cut into leaves of at most
 * fit_repro_leaf(B) samples (CV_REPRO_LEAF, more past CV_XSUM_MAX_TERMS leaves of it), sizes
 * differing by at most one: a cut that depends on the batch alone. Rank r computes leaves
 * [L r / P, L (r + 1) / P), each on its own, and adds each leaf's gradient into an exact sum
 * (convoy/exactsum.h), which the ranks then add up with integer MPI sums. Within a leaf every
 * kernel sums in a fixed order whatever the thread count, and the exact sum does not depend on
 * which rank added which leaf, so neither ranks nor threads change a bit. */
int64_t fit_repro_leaf(int64_t B)
{
    const int64_t spread = (B + CV_XSUM_MAX_TERMS - 1) / CV_XSUM_MAX_TERMS;
    return spread > CV_REPRO_LEAF ? spread : CV_REPRO_LEAF;
}

int64_t cv_repro_leaves(int64_t B, int64_t count) { return (count + fit_repro_leaf(B) - 1) / fit_repro_leaf(B); }
