// MoCo v3's contrastive loss (Chen, Xie, He 2021, Algorithm 1; the
// official code's ctr), one term of the symmetric loss:
//
// q: (N, D) this process's queries (predictor outputs), normalised inside
// (with gradient); k: (M, D) the keys of the whole global batch from the
// momentum encoder (every process's, gathered in batch order), normalised
// inside (no gradient). Query i's positive is key first + i, every other
// key a negative (no queue):
//
//   logits = qn kn^T / tau                          (N, M)
//   ctr    = 2 tau * (1/N) sum_i [ logsumexp(logits_i) - logits_i[first + i] ]
//
// The factor 2 tau is the official code's: it makes the gradient's size
// independent of tau. The symmetric loss is two calls,
//   L = ctr(q1, k2) + ctr(q2, k1),
// each with its own workspace (or one reused after the first backward).
// With R processes each holds N = M / R queries at first = rank * N; the
// gradient of the global loss (the mean over processes) is each process's
// backward with dloss = 1 / R, summed with the parameters' gradients.
#ifndef SSLC_LOSSES_MOCOV3_H
#define SSLC_LOSSES_MOCOV3_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// Bytes of workspace for N queries against M keys of dimension D; allocate
// with sslc_aligned_alloc. About (2 N D + M D + 2 N M) floats.
size_t sslc_mocov3_workspace_size(int64_t N, int64_t M, int64_t D);

// loss: ctr(q, k) as above (already scaled by 2 tau).
// accuracy: optional (NULL to skip): the fraction of queries whose largest
//   logit is their positive (ties: the lowest key index wins).
// workspace: (sslc_mocov3_workspace_size bytes) filled for the backward.
// q: (N, D), k: (M, D) raw; 0 <= first, first + N <= M; tau > 0.
sslc_status sslc_mocov3_forward(float *loss, float *accuracy, float *restrict workspace,
                                const float *restrict q, const float *restrict k, int64_t N,
                                int64_t M, int64_t first, int64_t D, float tau);

// dq: (N, D) accumulates dloss * dctr/dq (+=) for the last forward on this
// workspace; its saved part is read, not changed (backward may run again).
void sslc_mocov3_backward(float *restrict dq, float *restrict workspace, float dloss, int64_t N,
                          int64_t M, int64_t D);

// The naive twin in double precision (plain loops, no GEMM, no
// workspace); dq (may be NULL) accumulates like the backward.
sslc_status sslc_mocov3_reference(double *loss, double *restrict dq, const double *restrict q,
                                  const double *restrict k, int64_t N, int64_t M, int64_t first,
                                  int64_t D, double tau);

#endif
