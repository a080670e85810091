// Layer norm over the last dimension (torch.nn.LayerNorm(C)).
//
// Rows are independent, so forward and the input gradient run a row per
// iteration; the affine gradients are column sums in one pass over dy and x,
// in tasks that make them independent of the thread count (sslc_sum_task).
#include "src/nn/layers.h"

#include <math.h>

void sslc_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                            const float *gamma, const float *beta, int64_t rows, int64_t C,
                            float eps)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double s = 0.0;
        for (int64_t c = 0; c < C; c++)
            s += xr[c];
        double mu = s / (double)C, v = 0.0;
        for (int64_t c = 0; c < C; c++)
            v += ((double)xr[c] - mu) * ((double)xr[c] - mu);
        float m = (float)mu, rs = (float)(1.0 / sqrt(v / (double)C + (double)eps));
        mean[r] = m;
        rstd[r] = rs;
        float *yr = y + r * C;
        for (int64_t c = 0; c < C; c++)
            yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
    }
}

void sslc_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *x, const float *mean, const float *rstd,
                             const float *gamma, int64_t rows, int64_t C)
{
    // With g = dy * gamma and x-hat = (x - mean) rstd:
    // dx = rstd (g - mean(g) - x-hat mean(g x-hat)).
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *dyr = dy + r * C;
        const float m = mean[r], rs = rstd[r];
        double sg = 0.0, sgx = 0.0;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)dyr[c] * gamma[c];
            sg += g;
            sgx += g * (double)((xr[c] - m) * rs);
        }
        float mg = (float)(sg / (double)C), mgx = (float)(sgx / (double)C);
        float *dxr = dx + r * C;
        for (int64_t c = 0; c < C; c++)
            dxr[c] = rs * (dyr[c] * gamma[c] - mg - (xr[c] - m) * rs * mgx);
    }
#pragma omp parallel for ordered schedule(static, 1)
    for (int64_t t = 0; t < sslc_sum_tasks(rows, C); t++) {
        const sslc_sum_task k = sslc_sum_task_at(t, rows, C);
        float sg[SSLC_SUM_COLS] = {0}, sb[SSLC_SUM_COLS] = {0};
        for (int64_t r = k.r0; r < k.r1; r++) {
            const float *xr = x + r * C + k.c0, *dyr = dy + r * C + k.c0;
            const float m = mean[r], rs = rstd[r];
#pragma omp simd
            for (int64_t c = 0; c < k.n; c++) {
                sg[c] += dyr[c] * (xr[c] - m) * rs;
                sb[c] += dyr[c];
            }
        }
#pragma omp ordered
        for (int64_t c = 0; c < k.n; c++) {
            dgamma[k.c0 + c] += sg[c];
            dbeta[k.c0 + c] += sb[c];
        }
    }
}
