// The distillation loss of SimCLRv2 (Chen et al. 2020, sec. 2.2, eq. 2) and
// of Hinton et al. 2015: the cross-entropy of the student's class
// probabilities against the teacher's soft targets, both at temperature tau.
//
//   p_T = softmax(t / tau)   (the targets, computed once per batch)
//   p_S = softmax(s / tau)
//   L   = (1/N) sum_i sum_k -p_T[i,k] log p_S[i,k]
//   dL/ds_i = (p_S_i - p_T_i) / (tau N)
//
// L is the cross-entropy H(p_T, p_S) = H(p_T) + KL(p_T || p_S): a student
// that matches the teacher scores the teacher's entropy, not 0. No tau^2
// factor: SimCLRv2's eq. 2 has none (Hinton et al. multiply the soft term by
// tau^2 to keep its gradient scale as tau changes; pass scale = tau * tau to
// the backward for that). At tau = 1 the two agree. Like the other losses it
// sees only arrays.
#ifndef SSLC_LOSSES_DISTILL_H
#define SSLC_LOSSES_DISTILL_H

#include <stdint.h>

#include "src/core/status.h"

// targets: (N, K) softmax(teacher / tau) row by row. teacher: (N, K) logits.
// N, K > 0 and tau > 0 (SSLC_ERR_INVALID).
sslc_status sslc_distill_targets(float *restrict targets, const float *restrict teacher,
                                 int64_t N, int64_t K, float tau);

// loss: the mean soft cross-entropy (double sums). agree: rows whose largest
// student logit is the largest target (ties: lowest class), or NULL.
// probs: (N, K) softmax(student / tau) saved for backward (the caller's buffer).
// student: (N, K) logits; targets: (N, K) rows of probabilities (as
// sslc_distill_targets writes them).
sslc_status sslc_distill_forward(double *loss, int64_t *agree, float *restrict probs,
                                 const float *restrict student, const float *restrict targets,
                                 int64_t N, int64_t K, float tau);

// dstudent: (N, K), accumulates scale * (probs - targets) / (tau N).
void sslc_distill_backward(float *restrict dstudent, const float *restrict probs,
                           const float *restrict targets, float scale, int64_t N, int64_t K,
                           float tau);

// The naive twin in double precision, from the teacher's logits: loss and,
// when dstudent is not NULL, its gradient accumulated (+=) like the backward.
sslc_status sslc_distill_reference(double *loss, double *restrict dstudent,
                                   const double *restrict student, const double *restrict teacher,
                                   int64_t N, int64_t K, double tau);

#endif
