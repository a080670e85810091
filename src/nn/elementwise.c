// ReLU, GELU, the residual join, biases and accumulation.
#include "src/nn/layers.h"

#include <math.h>

void sslc_relu_forward(float *y, const float *x, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void sslc_relu_backward(float *dx, const float *dy, const float *y, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void sslc_add_relu_forward(float *y, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

void sslc_add_inplace(float *y, const float *x, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

void sslc_gelu_forward(float *y, const float *x, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void sslc_gelu_backward(float *dx, const float *dy, const float *x, int64_t n)
{
    // d/dx [x Phi(x)] = Phi(x) + x phi(x), Phi and phi the standard normal's
    // distribution and density.
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        dx[i] = dy[i] * (cdf + v * inv_sqrt_2pi * expf(-0.5f * v * v));
    }
}

void sslc_bias_forward(float *y, const float *b, int64_t rows, int64_t C)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] += b[c];
}

void sslc_bias_backward(float *db, const float *dy, int64_t rows, int64_t C)
{
    // Threads own blocks of columns and sum each in row order: the result
    // does not depend on the thread count.
    enum { BLOCK = 64 };
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < C; c0 += BLOCK) {
        int64_t c1 = c0 + BLOCK < C ? c0 + BLOCK : C;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = c0; c < c1; c++)
                db[c] += dy[r * C + c];
    }
}
