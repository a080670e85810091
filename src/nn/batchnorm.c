// Batch normalisation over the rows of an (rows, C) array, as PyTorch's
// BatchNorm2d on NHWC data (rows = N*H*W) and BatchNorm1d (rows = N).
#include "src/nn/layers.h"

#include <math.h>
#include <string.h>

#include "src/core/threads.h"

size_t sslc_batchnorm_workspace_size(int64_t C)
{
    return (size_t)(2 * C) * (size_t)(sslc_get_threads() + 1);
}

// Per-channel sums of a(r, c) and a(r, c) * b(r, c) over all rows (b NULL:
// a^2), optionally masked by m(r, c) > 0. Each thread sums a fixed block of
// rows; the blocks are added in thread order. Results land in work[0..2C).
static void column_sums(double *work, const float *a, const float *b, const float *mask,
                        const float *shift, int64_t rows, int64_t C)
{
    int used = 1;
#pragma omp parallel
    {
        int t = sslc_thread_index(), T = sslc_thread_count();
#pragma omp single
        used = T;
        double *s1 = work + (size_t)(t + 1) * 2 * (size_t)C, *s2 = s1 + C;
        memset(s1, 0, (size_t)(2 * C) * sizeof(double));
        int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
        for (int64_t r = r0; r < r1; r++) {
            const float *ar = a + r * C;
            const float *br = b ? b + r * C : NULL;
            const float *mr = mask ? mask + r * C : NULL;
            if (!br) {
                for (int64_t c = 0; c < C; c++) {
                    double v = ar[c];
                    s1[c] += v;
                    s2[c] += v * v;
                }
            } else {
                for (int64_t c = 0; c < C; c++) {
                    double g = (mr && !(mr[c] > 0.0f)) ? 0.0 : (double)ar[c];
                    s1[c] += g;
                    s2[c] += g * ((double)br[c] - (double)shift[c]);
                }
            }
        }
    }
    double *s1 = work, *s2 = work + C;
    memset(work, 0, (size_t)(2 * C) * sizeof(double));
    for (int t = 0; t < used; t++) {
        const double *p1 = work + (size_t)(t + 1) * 2 * (size_t)C, *p2 = p1 + C;
        for (int64_t c = 0; c < C; c++) {
            s1[c] += p1[c];
            s2[c] += p2[c];
        }
    }
}

// y = x * scale + shift per channel, then ReLU if asked. scale, shift: (C,).
static void affine(float *y, const float *x, const float *scale, const float *shift, int64_t rows,
                   int64_t C, unsigned flags)
{
    const int relu = (flags & SSLC_BN_FUSE_RELU) != 0;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        for (int64_t c = 0; c < C; c++) {
            float v = xr[c] * scale[c] + shift[c];
            yr[c] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void sslc_batchnorm_forward_train(float *y, float *mean, float *rstd, float *running_mean,
                                  float *running_var, double *stats, const float *x,
                                  const float *gamma, const float *beta, int64_t rows, int64_t C,
                                  float momentum, float eps, unsigned flags,
                                  const sslc_bn_sync *sync, double *work)
{
    column_sums(work, x, NULL, NULL, NULL, rows, C);
    const int64_t local_rows = rows;
    if (sync) { // statistics over every process's rows
        sync->sum(sync->ctx, work, 2 * C);
        rows *= sync->processes;
    }
    // The per-thread area is free again: reuse it for scale and shift.
    float *scale = (float *)(work + 2 * C), *shift = scale + C;
    for (int64_t c = 0; c < C; c++) {
        double m = work[c] / (double)rows;
        double var = work[C + c] / (double)rows - m * m;
        if (var < 0.0)
            var = 0.0;
        mean[c] = (float)m;
        rstd[c] = (float)(1.0 / sqrt(var + eps));
        scale[c] = gamma[c] * rstd[c];
        shift[c] = beta[c] - mean[c] * scale[c];
        // PyTorch: the running variance is unbiased, the normalisation biased.
        double unbiased = rows > 1 ? var * (double)rows / (double)(rows - 1) : var;
        if (running_mean) {
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
        if (stats) {
            stats[c] += m;
            stats[C + c] += unbiased;
        }
    }
    affine(y, x, scale, shift, local_rows, C, flags);
}

void sslc_batchnorm_update_running(float *running_mean, float *running_var, const double *stats,
                                   int64_t batches, int64_t C, float momentum)
{
    for (int64_t c = 0; c < C; c++) {
        double m = stats[c] / (double)batches, unbiased = stats[C + c] / (double)batches;
        running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
}

void sslc_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 int64_t rows, int64_t C, float eps, unsigned flags,
                                 double *work)
{
    float *scale = (float *)work, *shift = scale + C;
    for (int64_t c = 0; c < C; c++) {
        scale[c] = (float)(gamma[c] / sqrt((double)running_var[c] + eps));
        shift[c] = beta[c] - running_mean[c] * scale[c];
    }
    affine(y, x, scale, shift, rows, C, flags);
}

void sslc_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *y, const float *x, const float *mean, const float *rstd,
                             const float *gamma, int64_t rows, int64_t C, unsigned flags,
                             const sslc_bn_sync *sync, double *work)
{
    const float *mask = (flags & SSLC_BN_FUSE_RELU) ? y : NULL;
    // sum(dy) and sum(dy * (x - mean)); x-hat = (x - mean) * rstd.
    column_sums(work, dy, x, mask, mean, rows, C);
    for (int64_t c = 0; c < C; c++) {
        dbeta[c] += (float)work[c];
        dgamma[c] += (float)(work[C + c] * rstd[c]);
    }
    const int64_t local_rows = rows;
    if (sync) { // dx through statistics over every process's rows
        sync->sum(sync->ctx, work, 2 * C);
        rows *= sync->processes;
    }
    float *a = (float *)(work + 2 * C), *b = a + C, *k = b + C;
    for (int64_t c = 0; c < C; c++) {
        double sum_dy = work[c], sum_dy_xhat = work[C + c] * rstd[c];
        // dx = gamma*rstd * (dy - sum_dy/n - x_hat * sum_dy_xhat/n)
        //    = k * dy + a * x + b
        double g = (double)gamma[c] * rstd[c];
        double coef = sum_dy_xhat / (double)rows * rstd[c];
        k[c] = (float)g;
        a[c] = (float)(-g * coef);
        b[c] = (float)(-g * (sum_dy / (double)rows - coef * mean[c]));
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < local_rows; r++) {
        const float *dyr = dy + r * C, *xr = x + r * C, *mr = mask ? mask + r * C : NULL;
        float *dxr = dx + r * C;
        for (int64_t c = 0; c < C; c++) {
            float g = (mr && !(mr[c] > 0.0f)) ? 0.0f : dyr[c];
            dxr[c] = k[c] * g + a[c] * xr[c] + b[c];
        }
    }
}
