// L2 normalisation of rows, as torch.nn.functional.normalize: the one
// implementation behind NT-Xent's and InfoNCE's embeddings and MoCo's keys.
#ifndef SSLC_CORE_ROWS_H
#define SSLC_CORE_ROWS_H

#include <stdint.h>

// PyTorch's default eps: the norm is clamped to it.
#define SSLC_NORMALIZE_EPS 1e-12f

// y = x / max(|x|, eps) per row of x: (N, D); |x| summed in double. y may
// be x. inv_norm (N,): 1 / max(|x|, eps); unclamped (N,): 1 where |x| > eps
// (the norm then carries gradient), 0 where the clamp holds. Either may be
// NULL.
void sslc_rows_normalize(float *y, float *inv_norm, float *unclamped, const float *x, int64_t N,
                         int64_t D);

// The backward of it, accumulated: dx += scale * (dy - y (y . dy)) * inv_norm
// per row, the projection (y . dy) only where unclamped (else the row is
// x / eps, linear in x). dx, dy, y: (N, D).
void sslc_rows_normalize_backward(float *dx, const float *dy, const float *y,
                                  const float *inv_norm, const float *unclamped, float scale,
                                  int64_t N, int64_t D);

#endif
