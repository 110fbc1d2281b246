/* Loss and metric names as written in model files. */
#include "convoy/loss.h"

static const char *const loss_names[CV_LOSS_COUNT] = {
    [CV_LOSS_MSE] = "mse",
    [CV_LOSS_MAE] = "mae",
    [CV_LOSS_HUBER] = "huber",
    [CV_LOSS_BINARY_CE] = "binary_crossentropy",
    [CV_LOSS_CATEGORICAL_CE] = "categorical_crossentropy",
    [CV_LOSS_SPARSE_CE] = "sparse_categorical_crossentropy",
};

const char *cv_loss_name(cv_loss_kind k) { return k < CV_LOSS_COUNT ? loss_names[k] : "?"; }

const char *cv_metric_name(int i)
{
    static const char *const names[CV_METRIC_KINDS] = {
#define NAME_(e, name) #name,
        CV_METRIC_LIST(NAME_)
#undef NAME_
    };
    return i >= 0 && i < CV_METRIC_KINDS ? names[i] : "?";
}
