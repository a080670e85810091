#include "src/core/rows.h"

#include <math.h>

void sslc_rows_normalize(float *y, float *inv_norm, float *unclamped, const float *x, int64_t N,
                         int64_t D)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *xi = x + i * D;
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)xi[d] * xi[d];
        float norm = (float)sqrt(ss);
        float inv = 1.0f / (norm > SSLC_NORMALIZE_EPS ? norm : SSLC_NORMALIZE_EPS);
        if (inv_norm)
            inv_norm[i] = inv;
        if (unclamped)
            unclamped[i] = norm > SSLC_NORMALIZE_EPS ? 1.0f : 0.0f;
        for (int64_t d = 0; d < D; d++)
            y[i * D + d] = xi[d] * inv;
    }
}

void sslc_rows_normalize_backward(float *dx, const float *dy, const float *y,
                                  const float *inv_norm, const float *unclamped, float scale,
                                  int64_t N, int64_t D)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *u = y + i * D, *du = dy + i * D;
        float dot = 0.0f;
        if (unclamped[i] != 0.0f)
            for (int64_t d = 0; d < D; d++)
                dot += u[d] * du[d];
        const float f = scale * inv_norm[i];
        for (int64_t d = 0; d < D; d++)
            dx[i * D + d] += (du[d] - u[d] * dot) * f;
    }
}
