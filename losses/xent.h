// Softmax cross-entropy over class logits: the loss of linear probes,
// fine-tuning and supervised training (torch.nn.CrossEntropyLoss with
// reduction "mean"). Like the other losses it sees only arrays.
//
//   loss = (1/N) sum_i [ logsumexp(logits_i) - logits_i[y_i] ]
//   dloss/dlogits_i = (softmax(logits_i) - onehot(y_i)) / N
#ifndef SSLC_LOSSES_XENT_H
#define SSLC_LOSSES_XENT_H

#include <stdint.h>

#include "src/core/status.h"

// loss: the mean loss (double sums, so large N keeps its precision);
// correct: rows whose largest logit is the label (ties: lowest class), or NULL.
// probs: (N, K) softmax saved for backward (the caller's buffer).
// logits: (N, K); labels: (N,) in [0, K) (checked: SSLC_ERR_INVALID).
sslc_status sslc_xent_forward(double *loss, int64_t *correct, float *restrict probs,
                              const float *restrict logits, const int64_t *restrict labels,
                              int64_t N, int64_t K);

// dlogits: (N, K), accumulates scale * (probs - onehot) / N.
void sslc_xent_backward(float *restrict dlogits, const float *restrict probs,
                        const int64_t *restrict labels, float scale, int64_t N, int64_t K);

#endif
