/* Module train (its preamble: convoy/train.h). Confusion matrices of classifiers: counts of (true class, predicted class) over a dataset,
 * summed across ranks, and the per-class precision / recall / F1 report printed from them. */
#ifndef CONVOY_CONFUSION_H
#define CONVOY_CONFUSION_H

#include <stdint.h>
#include <stdio.h>

#include "convoy/data.h"
#include "convoy/dist.h"
#include "convoy/model.h"

/** The number of classes K of a classification model: its output width, or 2 for one sigmoid
 *  output with binary_crossentropy. Regression losses (mse, mae, huber) are an error. */
int cv_confusion_classes(const cv_model_spec *spec, int *K, cv_err *err);

/** counts[t * K + p] = rows of ds whose true class is t and whose predicted class is p, over all
 *  rows, each rank computing its slice and the counts summed across ranks (every rank gets the
 *  total). The true class is the label, or the largest one-hot target (a binary target >= 0.5);
 *  the predicted class the largest output (one sigmoid output: p >= 0.5 is class 1). */
int cv_confusion(cv_net *net, cv_dataset *ds, const cv_normalizer *nz, const cv_dist *d, int64_t *counts, int K,
                 cv_err *err);

/** Prints the matrix (rows true, columns predicted, classes numbered and named) and, per class,
 *  precision, recall, F1 and support, then their macro averages (unweighted means over classes)
 *  and the accuracy. A class never predicted has precision 0, one never present recall 0, and
 *  F1 is 0 when precision + recall is 0 (as scikit-learn's classification_report). names may be
 *  NULL. */
void cv_confusion_print(FILE *f, const int64_t *counts, int K, char *const *names);

#endif
