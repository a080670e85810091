// ReLU, GELU, the residual join, biases and accumulation.
#include "src/nn/layers.h"

#include "src/core/vmath.h"

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
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float density;
        y[i] = x[i] * sslc_normal_cdf(x[i], &density);
    }
}

void sslc_gelu_backward(float *dx, const float *dy, const float *x, int64_t n)
{
    // d/dx [x Phi(x)] = Phi(x) + x phi(x), Phi and phi the standard normal's
    // distribution and density.
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float density, cdf = sslc_normal_cdf(x[i], &density);
        dx[i] = dy[i] * (cdf + x[i] * density);
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
#pragma omp parallel for ordered schedule(static, 1)
    for (int64_t t = 0; t < sslc_sum_tasks(rows, C); t++) {
        const sslc_sum_task k = sslc_sum_task_at(t, rows, C);
        float sum[SSLC_SUM_COLS] = {0};
        for (int64_t r = k.r0; r < k.r1; r++) {
            const float *row = dy + r * C + k.c0;
#pragma omp simd
            for (int64_t c = 0; c < k.n; c++)
                sum[c] += row[c];
        }
#pragma omp ordered
        for (int64_t c = 0; c < k.n; c++)
            db[k.c0 + c] += sum[c];
    }
}
