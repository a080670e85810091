// Max pooling (the ImageNet stem) and global average pooling.
#include "src/nn/layers.h"

#include <float.h>
#include <string.h>

void sslc_maxpool_forward(float *y, int32_t *argmax, const float *x, int64_t N, int64_t H,
                          int64_t W, int64_t C, int64_t kernel, int64_t stride, int64_t pad,
                          int64_t P, int64_t Q)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < P; p++)
            for (int64_t q = 0; q < Q; q++) {
                float *yo = y + ((n * P + p) * Q + q) * C;
                int32_t *ao = argmax + ((n * P + p) * Q + q) * C;
                for (int64_t c = 0; c < C; c++) {
                    yo[c] = -FLT_MAX;
                    ao[c] = -1;
                }
                // Scan taps in row-major order and keep the first maximum,
                // as PyTorch does (a tie goes to the earlier tap).
                for (int64_t r = 0; r < kernel; r++) {
                    int64_t h = p * stride - pad + r;
                    if (h < 0 || h >= H)
                        continue;
                    for (int64_t s = 0; s < kernel; s++) {
                        int64_t w = q * stride - pad + s;
                        if (w < 0 || w >= W)
                            continue;
                        const float *xi = x + ((n * H + h) * W + w) * C;
                        int32_t at = (int32_t)(h * W + w);
                        for (int64_t c = 0; c < C; c++)
                            if (xi[c] > yo[c] || ao[c] < 0) {
                                yo[c] = xi[c];
                                ao[c] = at;
                            }
                    }
                }
            }
}

void sslc_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int64_t N,
                           int64_t H, int64_t W, int64_t C, int64_t P, int64_t Q)
{
    memset(dx, 0, (size_t)(N * H * W * C) * sizeof(float));
    // Windows overlap, so parallelise over images only.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t pq = 0; pq < P * Q; pq++) {
            const float *g = dy + (n * P * Q + pq) * C;
            const int32_t *a = argmax + (n * P * Q + pq) * C;
            float *dxn = dx + n * H * W * C;
            for (int64_t c = 0; c < C; c++)
                dxn[(int64_t)a[c] * C + c] += g[c];
        }
}

void sslc_avgpool_forward(float *y, const float *x, int64_t N, int64_t HW, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *yn = y + n * C;
        for (int64_t c = 0; c < C; c++)
            yn[c] = 0.0f;
        for (int64_t i = 0; i < HW; i++) {
            const float *xi = x + (n * HW + i) * C;
            for (int64_t c = 0; c < C; c++)
                yn[c] += xi[c];
        }
        const float inv = 1.0f / (float)HW;
        for (int64_t c = 0; c < C; c++)
            yn[c] *= inv;
    }
}

void sslc_avgpool_backward(float *dx, const float *dy, int64_t N, int64_t HW, int64_t C)
{
    const float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) {
            float *dxi = dx + (n * HW + i) * C;
            const float *g = dy + n * C;
            for (int64_t c = 0; c < C; c++)
                dxi[c] = g[c] * inv;
        }
}
