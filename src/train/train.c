/* Around training: whether a dataset fits a model, evaluation (the metrics of a dataset, the
 * ranks sharing its rows) and prediction. The fit loop itself is in fit.c. */
#include "convoy/train.h"

#include <stdlib.h>
#include <string.h>

#include "train/prefetch.h"

int cv_check_data(const cv_model_spec *spec, const cv_dataset *ds, cv_err *err)
{
    const cv_shape want = spec->layers[0].shape;
    const int K = (int)cv_shape_size(spec->layers[spec->n_layers - 1].out);
    const cv_loss_kind loss = spec->loss.kind;
    if (ds->shape.rank != want.rank || cv_shape_size(ds->shape) != cv_shape_size(want) ||
        (want.rank == 3 && memcmp(ds->shape.d, want.d, sizeof want.d) != 0)) {
        char a[48], b[48];
        return cv_errf(err, "%s:/x: samples are %s but the model's input is %s (%s:%d)", ds->path,
                       cv_shape_str(ds->shape, a, sizeof a), cv_shape_str(want, b, sizeof b), spec->file,
                       spec->layers[0].line);
    }
    if (!ds->has_labels && ds->ydim == 0) return 0; /* inputs only (cv_dataset_load_inputs): predict */
    if (ds->has_labels) {
        if (K == 1 && loss != CV_LOSS_BINARY_CE && loss != CV_LOSS_MSE && loss != CV_LOSS_MAE &&
            loss != CV_LOSS_HUBER)
            return cv_errf(err, "%s:/y: integer labels need more than one output for %s", ds->path,
                           cv_loss_name(loss));
        /* integer labels name one class of K: a K-output binary cross-entropy (K independent
         * yes/no targets) or a regression loss over K outputs has nothing to compare them with */
        if (K > 1 && loss == CV_LOSS_BINARY_CE)
            return cv_errf(err, "%s:/y: binary_crossentropy with %d outputs needs %d 0/1 targets per sample (multi-label), "
                           "but the file has one integer label per sample: for one class of %d use "
                           "sparse_categorical_crossentropy with a softmax output (%s:%d)", ds->path, K, K, K, spec->file,
                           spec->optim_line);
        if (K > 1 && (loss == CV_LOSS_MSE || loss == CV_LOSS_MAE || loss == CV_LOSS_HUBER))
            return cv_errf(err, "%s:/y: %s compares %d outputs with %d float targets per sample, but the file has one "
                           "integer label per sample: for classes use sparse_categorical_crossentropy, for regression "
                           "store float targets (convoy convert csv --float) (%s:%d)", ds->path, cv_loss_name(loss), K, K,
                           spec->file, spec->optim_line);
        /* binary: labels are 0/1; K-way: labels index the outputs */
        if (loss == CV_LOSS_BINARY_CE || K > 1)
            return cv_dataset_check_labels(ds, K == 1 ? 2 : K, err);
        return 0;
    }
    if (loss == CV_LOSS_SPARSE_CE)
        return cv_errf(err, "%s:/y: sparse_categorical_crossentropy needs integer labels, the file has float targets (%d per sample)",
                       ds->path, ds->ydim);
    if (ds->ydim != K)
        return cv_errf(err, "%s:/y: %d targets per sample but the model has %d outputs", ds->path,
                       ds->ydim, K);
    return 0;
}

/* The rows are cut into chunks of CV_MICRO_BATCH positions, rank r evaluating chunks
 * [C r / P, C (r + 1) / P): a chunk's sums do not depend on who computed it, and they are added
 * in chunk order, so the metrics are the same at any rank count. */
int cv_evaluate(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, const int64_t *idx,
                int64_t count, const cv_dist *d, cv_metrics *m, cv_err *err)
{
    memset(m, 0, sizeof *m);
    const int mb = CV_MICRO_BATCH;
    const int64_t chunks = (count + mb - 1) / mb, c0 = chunks * d->rank / d->size, c1 = chunks * (d->rank + 1) / d->size;
    cv_batch b = {0};
    cv_metric_parts parts;
    int rc = cv_metric_parts_init(&parts, cv_net_spec(net), chunks, err) || cv_net_reserve(net, mb, err) ||
                     cv_batch_alloc(&b, ds, mb, err) ? -1 : 0;
    for (int64_t k = c0; rc == 0 && k < c1; k++) {
        const int64_t s = k * mb;
        const int c = (int)(count - s < mb ? count - s : mb);
        for (int i = 0; i < c; i++) b.ids[i] = idx ? idx[s + i] : s + i;
        if ((rc = cv_batch_fill(&b, ds, nz, c, err))) break;
        cv_net_forward(net, b.x, c, false, 0, 0, b.ids);
        cv_metrics part = {0};
        cv_net_metrics(net, b.labels, b.targets, c, &part);
        cv_metric_parts_put(&parts, k, &part);
    }
    cv_batch_free(&b);
    /* a read error on one rank must not leave the others waiting in the sum */
    if (cv_dist_agree(d, rc, err) == 0) rc = cv_metrics_add_parts(d, &parts, chunks, m, err);
    else rc = -1;
    cv_metric_parts_free(&parts);
    return rc;
}

int cv_predict(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, float *out, cv_err *err)
{
    const int mb = CV_MICRO_BATCH, K = cv_net_outputs(net);
    cv_batch b = {0};
    int rc = cv_net_reserve(net, mb, err) || cv_batch_alloc(&b, ds, mb, err) ? -1 : 0;
    for (int64_t s = 0; rc == 0 && s < ds->n; s += mb) {
        const int c = (int)(ds->n - s < mb ? ds->n - s : mb);
        for (int i = 0; i < c; i++) b.ids[i] = s + i;
        if ((rc = cv_dataset_fetch(ds, nz, b.ids, c, b.x, err))) break;
        const float *y = cv_net_forward(net, b.x, c, false, 0, 0, b.ids);
        memcpy(out + (size_t)s * K, y, sizeof(float) * (size_t)c * K);
    }
    cv_batch_free(&b);
    return rc;
}

