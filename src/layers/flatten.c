/* flatten: every value of a sample in one vector, in NHWC order: (h, w, c) is already the
 * memory's order, so the network gives it its input's buffer and no pass copies anything. */
#include "layers/layers-impl.h"

const cv_layer_kind_desc cv_kind_flatten = {
    .kind = CV_LAYER_FLATTEN,
    .name = "flatten",
    .keras_name = "flatten",
    .keras_class = "Flatten",
    .flags = CV_KIND_TILES | CV_KIND_ROWWISE | CV_KIND_RESHAPE,
    .infer = cv_layer_infer_flat,
    .forward = cv_identity_forward,
    .backward = cv_identity_backward,
};
