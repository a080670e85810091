// Fully connected layer and row-wise L2 normalisation.
#include "src/nn/layers.h"

#include <math.h>

#include "src/core/gemm.h"

void sslc_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N,
                         int64_t in, int64_t out)
{
    sslc_sgemm(false, true, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        sslc_bias_forward(y, b, N, out);
}

void sslc_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int64_t N, int64_t in, int64_t out)
{
    if (dw) // dW (out, in) += dy^T x
        sslc_sgemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db)
        sslc_bias_backward(db, dy, N, out);
    if (dx) // dx (N, in) = dy W
        sslc_sgemm(false, false, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}
