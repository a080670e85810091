// Classification metrics from class scores: top-1 and top-5 accuracy,
// per-class accuracy (recall) and the confusion matrix, as the linear-eval
// and fine-tuning reports print them.
#ifndef SSLC_EVAL_METRICS_H
#define SSLC_EVAL_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "src/core/status.h"

typedef struct sslc_metrics {
    int64_t n, classes;
    double top1, top5;   // fractions in [0, 1]; top5 is top-k with k = min(5, classes)
    double *per_class;   // (classes,) accuracy among images of each class (NaN: none)
    int64_t *confusion;  // (classes, classes): row = true class, column = prediction
} sslc_metrics;

// scores: (n, classes), larger = more likely; labels: (n,) in [0, classes).
// Ties go to the lower class (as argmax in PyTorch).
sslc_status sslc_metrics_compute(sslc_metrics *m, const float *scores, const int64_t *labels,
                                 int64_t n, int64_t classes);
void sslc_metrics_free(sslc_metrics *m); // NULL-safe

// Text report: accuracies, per-class accuracy with names (NULL: numbers),
// then the confusion matrix.
void sslc_metrics_print(FILE *out, const sslc_metrics *m, const char *const *class_names);
// The confusion matrix as CSV with a header row of class names, for
// scripts/plot_confusion.py.
sslc_status sslc_metrics_write_confusion(const sslc_metrics *m, const char *const *class_names,
                                         const char *path);

#endif
