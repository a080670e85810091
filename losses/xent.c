#include "losses/xent.h"

#include <math.h>

sslc_status sslc_xent_forward(double *loss, int64_t *correct, float *restrict probs,
                              const float *restrict logits, const int64_t *restrict labels,
                              int64_t N, int64_t K)
{
    if (N <= 0 || K <= 0)
        return sslc_error(SSLC_ERR_INVALID, "xent: N=%lld K=%lld must be positive",
                          (long long)N, (long long)K);
    for (int64_t i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= K)
            return sslc_error(SSLC_ERR_INVALID, "xent: label %lld of row %lld is outside [0, %lld)",
                              (long long)labels[i], (long long)i, (long long)K);
    double total = 0.0;
    int64_t right = 0;
    // Rows are independent; the sum is reduced in row order per thread
    // chunk by OpenMP's static schedule, then combined: deterministic for a
    // fixed thread count, and the double sum hides the order anyway.
#pragma omp parallel for schedule(static) reduction(+ : total, right)
    for (int64_t i = 0; i < N; i++) {
        const float *z = logits + i * K;
        float *p = probs + i * K;
        int64_t arg = 0;
        for (int64_t k = 1; k < K; k++)
            if (z[k] > z[arg])
                arg = k;
        float m = z[arg];
        double s = 0.0;
        for (int64_t k = 0; k < K; k++) {
            p[k] = expf(z[k] - m);
            s += p[k];
        }
        float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < K; k++)
            p[k] *= inv;
        total += log(s) + (double)m - (double)z[labels[i]];
        right += arg == labels[i];
    }
    *loss = total / (double)N;
    if (correct)
        *correct = right;
    return SSLC_OK;
}

void sslc_xent_backward(float *restrict dlogits, const float *restrict probs,
                        const int64_t *restrict labels, float scale, int64_t N, int64_t K)
{
    const float s = scale / (float)N;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        for (int64_t k = 0; k < K; k++)
            dlogits[i * K + k] += s * probs[i * K + k];
        dlogits[i * K + labels[i]] -= s;
    }
}
