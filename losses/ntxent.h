// NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR
// (Chen et al. 2020, eq. 1), over the 2N views of a batch.
//
// z: (2N, D) raw projector outputs; rows 0..N-1 are the first view of each
// image and rows N..2N-1 the second, so the positive of row i is row
// (i + N) mod 2N. Rows are L2-normalised inside (as
// torch.nn.functional.normalize: norm clamped to 1e-12), similarities are
// cosine / tau, each row's own similarity is masked out, and the loss is the
// cross-entropy of picking the positive among the other 2N-1 rows, averaged
// over all 2N rows:
//
//   L = 1/(2N) sum_i [ -s(i,pos(i))/tau + log sum_{j != i} exp(s(i,j)/tau) ]
//
// Multi-crop (SwAV, Caron et al. 2020) makes M >= 2 views of each image:
// the multi-positive form takes z as (M*N, D), view-major (row v*N + k is
// view v of image k), and gives each row all M-1 other views of its image
// as positives, averaging the cross-entropy over them (SupCon's L_out,
// Khosla et al. 2020, with the image as the label):
//
//   L = 1/(MN) sum_i 1/(M-1) sum_{p in P(i)} [ -s(i,p)/tau + log sum_{j != i} exp(s(i,j)/tau) ]
//
// For M = 2 this is the formula above, by the same code (docs/losses.md).
//
// The forward saves in the caller's workspace everything the backward needs,
// so forward and backward never allocate. losses/ knows nothing about images
// or models: only src/core is used.
#ifndef SSLC_LOSSES_NTXENT_H
#define SSLC_LOSSES_NTXENT_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// Bytes of workspace for sslc_ntxent_forward/backward on a (two_n, D) batch;
// allocate with sslc_aligned_alloc. About (2*two_n*D + two_n^2) floats.
size_t sslc_ntxent_workspace_size(int64_t two_n, int64_t D);

// loss: the mean NT-Xent over the two_n rows.
// accuracy: optional (NULL to skip): the fraction of rows whose most similar
//   other row is their positive (ties go to the lowest index).
// workspace: (sslc_ntxent_workspace_size bytes) filled with what backward needs.
// z: (two_n, D) raw projections. two_n must be even and >= 2, tau > 0.
sslc_status sslc_ntxent_forward(float *loss, float *accuracy, float *restrict workspace,
                                const float *restrict z, int64_t two_n, int64_t D, float tau);

// The multi-positive loss over rows = views * N rows (views >= 2, N >= 1);
// accuracy: the fraction of rows whose most similar other row is one of
// their positives. sslc_ntxent_forward is this with views = 2. The backward
// is sslc_ntxent_backward with two_n = rows.
sslc_status sslc_ntxent_multi_forward(float *loss, float *accuracy, float *restrict workspace,
                                      const float *restrict z, int64_t rows, int64_t views,
                                      int64_t D, float tau);

// dz: (two_n, D) accumulates dloss * dL/dz (+=), where L is the mean loss of
// the last forward on this workspace. workspace: as left by the forward (its
// saved part is read, not changed, so backward may run more than once).
void sslc_ntxent_backward(float *restrict dz, float *restrict workspace, float dloss,
                          int64_t two_n, int64_t D);

// The naive twin: the same loss and gradient in double precision with plain
// loops, no workspace, no GEMM. dz (may be NULL) accumulates like the
// backward. Used by the tests as the reference for the fast path.
sslc_status sslc_ntxent_reference(double *loss, double *restrict dz, const double *restrict z,
                                  int64_t two_n, int64_t D, double tau);
// The naive twin of sslc_ntxent_multi_forward + backward.
sslc_status sslc_ntxent_multi_reference(double *loss, double *restrict dz,
                                        const double *restrict z, int64_t rows, int64_t views,
                                        int64_t D, double tau);

#endif
