// Fully connected layer and row-wise L2 normalisation.
#include "src/nn/layers.h"

#include <math.h>

#include "src/core/gemm.h"

void sslc_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t N,
                         int64_t in, int64_t out)
{
    sslc_sgemm(false, true, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < out; o++)
                y[n * out + o] += b[o];
}

void sslc_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int64_t N, int64_t in, int64_t out)
{
    if (dw) // dW (out, in) += dy^T x
        sslc_sgemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < out; o++)
                db[o] += dy[n * out + o];
    if (dx) // dx (N, in) = dy W
        sslc_sgemm(false, false, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

void sslc_l2norm_forward(float *y, float *norm, const float *x, int64_t N, int64_t D, float eps)
{
    for (int64_t n = 0; n < N; n++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[n * D + d] * x[n * D + d];
        float nrm = (float)sqrt(ss);
        norm[n] = nrm;
        float inv = 1.0f / (nrm > eps ? nrm : eps);
        for (int64_t d = 0; d < D; d++)
            y[n * D + d] = x[n * D + d] * inv;
    }
}

void sslc_l2norm_backward(float *dx, const float *dy, const float *y, const float *norm,
                          int64_t N, int64_t D, float eps)
{
    for (int64_t n = 0; n < N; n++) {
        const float *yn = y + n * D, *g = dy + n * D;
        float *dxn = dx + n * D;
        if (!(norm[n] > eps)) { // clamped: y = x / eps is linear in x
            for (int64_t d = 0; d < D; d++)
                dxn[d] = g[d] / eps;
            continue;
        }
        // dx = (dy - y (y . dy)) / ||x||
        double dot = 0.0;
        for (int64_t d = 0; d < D; d++)
            dot += (double)yn[d] * g[d];
        for (int64_t d = 0; d < D; d++)
            dxn[d] = (float)((g[d] - yn[d] * dot) / norm[n]);
    }
}
