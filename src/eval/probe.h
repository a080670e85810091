// The linear-probe protocol around sslc_logreg: features of a labelled
// subset through a frozen encoder in eval mode, standardisation fitted on
// them, the L2 strength chosen on a class-balanced held-out part of the
// subset, and a final fit on the whole subset (SimCLR appendix B.5 / the
// scikit-learn protocol of Kolesnikov et al. 2019).
#ifndef SSLC_EVAL_PROBE_H
#define SSLC_EVAL_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/eval/features.h"
#include "src/eval/logreg.h"
#include "src/models/encoder.h"

typedef struct sslc_probe_config {
    double l2;        // >= 0: use it; < 0: choose from grid on the held-out part
    const double *grid;
    int n_grid;
    double holdout;   // fraction of each class held out for the choice (0.1)
    sslc_logreg_options solver;
    uint64_t seed;
} sslc_probe_config;

typedef struct sslc_probe_result {
    double l2;                           // the strength used for the final fit
    double val_top1[SSLC_LOGREG_GRID];   // held-out accuracy per grid entry (n_grid <= GRID)
    int n_grid;
    int64_t n_fit, n_val;                // rows used for the choice
    sslc_logreg_fit_info fit;            // the final fit
    double seconds;
} sslc_probe_result;

// m: created with (dim, classes). x: (n, dim) raw features (standardised in
// place), y: (n,) labels in [0, classes).
sslc_status sslc_probe_fit(sslc_logreg *m, sslc_probe_result *r, float *x, const int64_t *y,
                           int64_t n, const sslc_probe_config *c);

// Features of ds's images indices (n,; NULL: images 0..n-1) through recipe
// (view seed / epoch as sslc_loader), enc in eval mode; enc NULL: the
// normalised pixels themselves (the raw-pixel baseline). out->x (rows, dim)
// and out->labels (rows,) in subset order; images that cannot be decoded are
// left out (rows = n - out->skipped). images_per_s: encoder throughput (NULL:
// not wanted).
sslc_status sslc_probe_features(sslc_features *out, sslc_encoder *enc, const sslc_dataset *ds,
                                const int64_t *indices, int64_t n, const sslc_recipe *recipe,
                                int64_t batch, int64_t epoch, uint64_t seed, double *images_per_s);

// MoCo's linear classification protocol: SGD (o's epochs, batch, lr,
// momentum) over fresh augmented views of the subset's images every epoch
// (recipe: crop + flip), through enc in eval mode, standardised with m's
// statistics; m's weights start from zero.
sslc_status sslc_probe_fit_augmented(sslc_logreg *m, sslc_encoder *enc, const sslc_dataset *ds,
                                     const int64_t *indices, int64_t n,
                                     const sslc_recipe *recipe, int64_t batch, double l2,
                                     const sslc_logreg_options *o);

#endif
