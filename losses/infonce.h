// InfoNCE as MoCo uses it (He et al. 2020, eq. 1; MoCo v2 keeps it).
//
// q: (N, D) raw query projections, normalised inside (with gradient);
// k: (N, D) raw key projections from the momentum encoder, normalised inside
// (no gradient); queue: (K, D) normalised keys of earlier batches (no
// gradient, see losses/queue.h). For each query i the logits are
//
//   [ qn_i . kn_i , qn_i . queue_0 , ... , qn_i . queue_{K-1} ] / tau
//
// (N x (1+K)), and the loss is the cross-entropy with the positive at index
// 0, averaged over the N queries.
//
// The forward also computes dL/dqn and saves it, so the queue may be updated
// (sslc_queue_enqueue) right after the forward and before the backward, as
// MoCo's reference code enqueues inside its forward: the backward never
// reads the queue.
//
// The symmetric loss (MoCo v3, and symmetrised MoCo v2 variants)
//   L = ctr(q1, k2) + ctr(q2, k1)
// is two calls, each with its own workspace (or one workspace reused after
// the first backward), with both keys enqueued after both forwards.
#ifndef SSLC_LOSSES_INFONCE_H
#define SSLC_LOSSES_INFONCE_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// Bytes of workspace for a batch of N queries, dimension D, queue length K;
// allocate with sslc_aligned_alloc. About (4 N D + N min(K, 1024)) floats:
// the negatives are processed in blocks, the full logits never stored.
size_t sslc_infonce_workspace_size(int64_t N, int64_t D, int64_t K);

// loss: the mean InfoNCE over the N queries.
// accuracy: optional (NULL to skip): fraction of queries whose largest logit
//   is the positive (index 0 wins ties), MoCo's "Acc@1".
// workspace: (sslc_infonce_workspace_size bytes) filled for the backward.
// q, k: (N, D) raw projections; queue: (K, D) normalised keys; tau > 0.
// K may be 0 (then only the positive logit remains and the loss is 0).
sslc_status sslc_infonce_forward(float *loss, float *accuracy, float *restrict workspace,
                                 const float *restrict q, const float *restrict k,
                                 const float *restrict queue, int64_t N, int64_t D, int64_t K,
                                 float tau);

// dq: (N, D) accumulates dloss * dL/dq (+=) for the last forward on this
// workspace. Reads only the workspace (never the queue).
void sslc_infonce_backward(float *restrict dq, const float *restrict workspace, float dloss,
                           int64_t N, int64_t D, int64_t K);

// The normalised keys kn: (N, D) the forward left in the workspace, ready to
// pass to sslc_queue_enqueue.
const float *sslc_infonce_keys(const float *workspace, int64_t N, int64_t D, int64_t K);

// The naive twin in double precision (plain loops, no GEMM, no workspace);
// dq (may be NULL) accumulates like the backward.
sslc_status sslc_infonce_reference(double *loss, double *restrict dq, const double *restrict q,
                                   const double *restrict k, const double *restrict queue,
                                   int64_t N, int64_t D, int64_t K, double tau);

#endif
