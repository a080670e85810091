// Weighted k-nearest-neighbour classifier, the feature monitor of
// InstDisc (Wu et al. 2018, section 3.4) and MoCo's kNN evaluation: each
// query's k most cosine-similar training features vote for their class with
// weight exp(sim / tau); the prediction is the class with the largest sum.
//
// It works on feature vectors only and uses only src/core; it lives with
// the other evaluation code.
//
// Features must be L2-normalised (sslc_knn_normalize) so that the dot
// products computed with sslc_sgemm are cosine similarities. Queries are
// processed in chunks of SSLC_KNN_CHUNK rows, so the workspace holds a
// (chunk, Ntrain) similarity block, not (M, Ntrain).
#ifndef SSLC_EVAL_KNN_H
#define SSLC_EVAL_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

enum { SSLC_KNN_CHUNK = 256 };

// InstDisc / MoCo monitor defaults.
#define SSLC_KNN_DEFAULT_K 200
#define SSLC_KNN_DEFAULT_TAU 0.1f

// x: (n, D) rows scaled to unit L2 norm in place (norm clamped to 1e-12).
void sslc_knn_normalize(float *x, int64_t n, int64_t D);

// Bytes of workspace for a bank of ntrain features, n_classes classes and k
// neighbours; allocate with sslc_aligned_alloc.
size_t sslc_knn_workspace_size(int64_t ntrain, int64_t n_classes, int64_t k);

// pred: (M,) predicted class of each query, or NULL.
// accuracy: top-1 accuracy against query_labels, or NULL (then query_labels
//   may be NULL).
// query: (M, D), bank: (ntrain, D), both L2-normalised; bank_labels: (ntrain,)
//   in [0, n_classes). k is clamped to ntrain; tau > 0. Ties between equal
//   similarities go to the lower bank index, ties between class scores to
//   the lower class.
sslc_status sslc_knn_classify(int64_t *pred, double *accuracy, void *workspace,
                              const float *restrict query, const int64_t *query_labels,
                              const float *restrict bank, const int64_t *bank_labels, int64_t M,
                              int64_t ntrain, int64_t D, int64_t n_classes, int64_t k, float tau);

// The naive twin: full sort of every similarity row, double precision, no
// GEMM. pred: (M,).
sslc_status sslc_knn_classify_reference(int64_t *pred, const float *query, const float *bank,
                                        const int64_t *bank_labels, int64_t M, int64_t ntrain,
                                        int64_t D, int64_t n_classes, int64_t k, float tau);

#endif
