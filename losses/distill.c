#include "losses/distill.h"

#include <math.h>
#include <stdlib.h>

static sslc_status check(int64_t N, int64_t K, double tau)
{
    if (N <= 0 || K <= 0)
        return sslc_error(SSLC_ERR_INVALID, "distill: N=%lld K=%lld must be positive",
                          (long long)N, (long long)K);
    if (!(tau > 0.0))
        return sslc_error(SSLC_ERR_INVALID, "distill: temperature %g must be positive", tau);
    return SSLC_OK;
}

// p: (K,) softmax(z / tau); returns log of the sum of exp(z/tau - max/tau),
// so log p_k = z_k / tau - max / tau - that.
static double softmax_row(float *restrict p, const float *restrict z, int64_t K, float inv_tau)
{
    float m = z[0];
    for (int64_t k = 1; k < K; k++)
        m = z[k] > m ? z[k] : m;
    double s = 0.0;
    for (int64_t k = 0; k < K; k++) {
        p[k] = expf((z[k] - m) * inv_tau);
        s += p[k];
    }
    float inv = (float)(1.0 / s);
    for (int64_t k = 0; k < K; k++)
        p[k] *= inv;
    return log(s);
}

static int64_t argmax(const float *z, int64_t K)
{
    int64_t a = 0;
    for (int64_t k = 1; k < K; k++)
        if (z[k] > z[a])
            a = k;
    return a;
}

sslc_status sslc_distill_targets(float *restrict targets, const float *restrict teacher,
                                 int64_t N, int64_t K, float tau)
{
    sslc_status st = check(N, K, tau);
    if (st)
        return st;
    const float inv_tau = 1.0f / tau;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++)
        softmax_row(targets + i * K, teacher + i * K, K, inv_tau);
    return SSLC_OK;
}

sslc_status sslc_distill_forward(double *loss, int64_t *agree, float *restrict probs,
                                 const float *restrict student, const float *restrict targets,
                                 int64_t N, int64_t K, float tau)
{
    sslc_status st = check(N, K, tau);
    if (st)
        return st;
    const float inv_tau = 1.0f / tau;
    double total = 0.0;
    int64_t same = 0;
    // Rows are independent; OpenMP's static schedule reduces them in a fixed
    // order for a fixed thread count (as xent).
#pragma omp parallel for schedule(static) reduction(+ : total, same)
    for (int64_t i = 0; i < N; i++) {
        const float *z = student + i * K, *t = targets + i * K;
        double lse = softmax_row(probs + i * K, z, K, inv_tau);
        const int64_t a = argmax(z, K);
        // -sum_k t_k log p_k with log p_k = (z_k - z_max) / tau - lse: finite
        // even where p_k underflows to 0.
        double row = 0.0;
        for (int64_t k = 0; k < K; k++)
            row += (double)t[k] * (lse - (double)((z[k] - z[a]) * inv_tau));
        total += row;
        same += a == argmax(t, K);
    }
    *loss = total / (double)N;
    if (agree)
        *agree = same;
    return SSLC_OK;
}

void sslc_distill_backward(float *restrict dstudent, const float *restrict probs,
                           const float *restrict targets, float scale, int64_t N, int64_t K,
                           float tau)
{
    const float s = scale / (tau * (float)N);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N * K; i++)
        dstudent[i] += s * (probs[i] - targets[i]);
}

sslc_status sslc_distill_reference(double *loss, double *restrict dstudent,
                                   const double *restrict student, const double *restrict teacher,
                                   int64_t N, int64_t K, double tau)
{
    sslc_status st = check(N, K, tau);
    if (st)
        return st;
    double *pt = malloc((size_t)K * sizeof *pt), *ls = malloc((size_t)K * sizeof *ls);
    if (!pt || !ls) {
        free(pt), free(ls);
        return sslc_error(SSLC_ERR_NOMEM, "distill reference: %lld classes", (long long)K);
    }
    double total = 0.0;
    for (int64_t i = 0; i < N; i++) {
        const double *s = student + i * K, *t = teacher + i * K;
        double mt = t[0], ms = s[0], zt = 0.0, zs = 0.0;
        for (int64_t k = 1; k < K; k++)
            mt = fmax(mt, t[k]), ms = fmax(ms, s[k]);
        for (int64_t k = 0; k < K; k++)
            zt += exp((t[k] - mt) / tau), zs += exp((s[k] - ms) / tau);
        for (int64_t k = 0; k < K; k++) {
            pt[k] = exp((t[k] - mt) / tau) / zt;
            ls[k] = (s[k] - ms) / tau - log(zs); // log p_S
            total -= pt[k] * ls[k];
        }
        if (dstudent)
            for (int64_t k = 0; k < K; k++)
                dstudent[i * K + k] += (exp(ls[k]) - pt[k]) / (tau * (double)N);
    }
    free(pt), free(ls);
    *loss = total / (double)N;
    return SSLC_OK;
}
