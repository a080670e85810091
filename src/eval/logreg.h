// Multinomial logistic regression on standardised features: the linear
// probe of the SimCLR / MoCo evaluation protocols.
//
// The model is scores = standardise(x) W^T + b with the objective
//   f(W, b) = (1/n) sum_i CE(scores_i, y_i) + (l2 / 2) |W|^2
// (the bias is not regularised; l2 = 1 / (C n) for scikit-learn's C). It is
// fitted full-batch with L-BFGS (Nocedal & Wright, algorithm 7.4, Armijo
// backtracking), or with mini-batch SGD (momentum / Nesterov, cosine
// schedule) as in the papers' probes. The regularisation is chosen on a
// held-out part of the labelled subset (sslc_logreg_select), then the model
// is refitted on all of it.
#ifndef SSLC_EVAL_LOGREG_H
#define SSLC_EVAL_LOGREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

typedef struct sslc_logreg {
    int64_t dim, classes;
    float *w;     // (classes, dim)
    float *b;     // (classes,)
    float *mean;  // (dim,) standardisation: x' = (x - mean) * scale
    float *scale; // (dim,) 1 / std (1 for constant features)
} sslc_logreg;

// Zero weights, identity standardisation.
sslc_status sslc_logreg_create(sslc_logreg *m, int64_t dim, int64_t classes);
void sslc_logreg_destroy(sslc_logreg *m); // NULL-safe

// Sets mean and scale from x: (n, dim) (population std, as sklearn's
// StandardScaler; features with std below 1e-6 get scale 1).
void sslc_logreg_fit_standardize(sslc_logreg *m, const float *x, int64_t n);
// out: (n, dim) standardised x (out may be x).
void sslc_logreg_standardize(const sslc_logreg *m, float *out, const float *x, int64_t n);

// Bytes of workspace for the objective on n rows.
size_t sslc_logreg_workspace_size(int64_t n, int64_t classes);
// f and its gradient at m's weights: gw (classes, dim), gb (classes,) are
// overwritten. x: (n, dim) already standardised, y: (n,) in [0, classes).
sslc_status sslc_logreg_objective(double *f, float *gw, float *gb, void *workspace,
                                  const sslc_logreg *m, const float *x, const int64_t *y,
                                  int64_t n, double l2);
// scores: (n, classes) for standardised x: (n, dim).
void sslc_logreg_scores(const sslc_logreg *m, float *scores, const float *x, int64_t n);

typedef enum sslc_logreg_solver { SSLC_LOGREG_LBFGS, SSLC_LOGREG_SGD } sslc_logreg_solver;

typedef struct sslc_logreg_options {
    sslc_logreg_solver solver;
    // L-BFGS
    int64_t max_iter; // iterations (default 1000)
    double tol;       // stop when max |gradient| < tol (default 1e-5)
    int64_t history;  // correction pairs kept (default 10)
    // SGD
    int64_t epochs, batch; // default 100, 256
    double lr, momentum;   // default 0.1 (cosine to 0), 0.9
    bool nesterov;         // default true
    uint64_t seed;
} sslc_logreg_options;

void sslc_logreg_options_default(sslc_logreg_options *o);

typedef struct sslc_logreg_fit_info {
    int64_t iterations; // L-BFGS iterations or SGD steps
    double loss;        // final objective
    double grad_max;    // final max |gradient| (L-BFGS)
    bool converged;     // L-BFGS reached tol (or could not decrease f further)
} sslc_logreg_fit_info;

// Fits m's weights (starting from their current values: warm starts) on
// standardised x: (n, dim), y: (n,).
sslc_status sslc_logreg_fit(sslc_logreg *m, const float *x, const int64_t *y, int64_t n,
                            double l2, const sslc_logreg_options *o, sslc_logreg_fit_info *info);

// Mini-batch SGD (momentum / Nesterov, cosine from o->lr to 0 over
// o->epochs epochs) for fits whose features may change every epoch (MoCo's
// augmented probe): init, then one sslc_logreg_sgd_epoch per epoch.
typedef struct sslc_logreg_sgd {
    sslc_logreg_options o;
    int64_t n, batch;   // rows per epoch, rows per step
    int64_t step, total; // steps done, of total
    double loss;        // the last step's objective
    float *vel;         // (classes * dim + classes,) momentum buffer, W first then b
    float *xb;          // (batch, dim)
    int64_t *yb, *perm; // (batch,), (n,)
    void *ws;           // the objective's workspace and gradient
} sslc_logreg_sgd;

sslc_status sslc_logreg_sgd_init(sslc_logreg_sgd *s, const sslc_logreg *m, int64_t n,
                                 const sslc_logreg_options *o);
void sslc_logreg_sgd_free(sslc_logreg_sgd *s);
// One epoch over standardised x: (n, dim), y: (n,) in the order of a
// permutation seeded by (o->seed, epoch), updating m's weights.
sslc_status sslc_logreg_sgd_epoch(sslc_logreg_sgd *s, sslc_logreg *m, const float *x,
                                  const int64_t *y, double l2, int64_t epoch);

// The default regularisation grid: l2 from 1 down to 1e-6 in half decades.
enum { SSLC_LOGREG_GRID = 13 };
extern const double sslc_logreg_default_grid[SSLC_LOGREG_GRID];

// Fits on (x_fit, y_fit) for each l2 of grid (largest first, each warm-
// started from the last), scores the standardised held-out (x_val, y_val),
// and returns the l2 with the best held-out top-1 (ties: the larger l2).
// val_top1: (n_grid,) held-out accuracies, or NULL. m's weights end as the
// fit for the last grid value; its standardisation is used as it is.
sslc_status sslc_logreg_select(double *best_l2, double *val_top1, sslc_logreg *m,
                               const float *x_fit, const int64_t *y_fit, int64_t n_fit,
                               const float *x_val, const int64_t *y_val, int64_t n_val,
                               const double *grid, int n_grid, const sslc_logreg_options *o);

#endif
