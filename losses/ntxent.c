#include "losses/ntxent.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "src/core/gemm.h"
#include "src/core/rows.h"

static int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// Workspace layout, in floats, each part on a 64-byte boundary.
typedef struct layout {
    int64_t zn;        // (rows, D) normalised rows (saved)
    int64_t inv_norm;  // (rows,) 1 / max(|z_i|, eps) (saved)
    int64_t unclamped; // (rows,) 1 when |z_i| > eps: the norm carries gradient (saved)
    int64_t g;         // (rows, rows) logits, then the symmetrised dL/dcos (saved)
    int64_t row;       // (rows,) per-row loss, for an ordered sum
    int64_t hit;       // (rows,) 1 when the row's argmax is a positive
    int64_t dzn;       // (rows, D) backward scratch: dL/dzn
    int64_t total;
} layout;

static layout make_layout(int64_t rows, int64_t D)
{
    layout l;
    int64_t at = 0;
    l.zn = at, at += align16(rows * D);
    l.inv_norm = at, at += align16(rows);
    l.unclamped = at, at += align16(rows);
    l.g = at, at += align16(rows * rows);
    l.row = at, at += align16(rows);
    l.hit = at, at += align16(rows);
    l.dzn = at, at += align16(rows * D);
    l.total = at;
    return l;
}

size_t sslc_ntxent_workspace_size(int64_t rows, int64_t D)
{
    if (rows <= 0 || D <= 0)
        return 0;
    return (size_t)make_layout(rows, D).total * sizeof(float);
}

static sslc_status check_args(int64_t rows, int64_t views, int64_t D, double tau)
{
    if (views < 2)
        return sslc_error(SSLC_ERR_INVALID,
                          "ntxent: each image needs at least 2 views, got %lld", (long long)views);
    if (rows < views || rows % views != 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "ntxent: the batch must hold M*N rows (M = %lld views of each of N >= 1 "
                          "images; 2N for pairs), got %lld",
                          (long long)views, (long long)rows);
    if (D < 1)
        return sslc_error(SSLC_ERR_INVALID, "ntxent: feature dimension %lld < 1", (long long)D);
    if (!(tau > 0.0) || !isfinite(tau))
        return sslc_error(SSLC_ERR_INVALID, "ntxent: temperature must be > 0, got %g", tau);
    return SSLC_OK;
}

sslc_status sslc_ntxent_forward(float *loss, float *accuracy, float *restrict workspace,
                                const float *restrict z, int64_t rows, int64_t D, float tau)
{
    return sslc_ntxent_multi_forward(loss, accuracy, workspace, z, rows, 2, D, tau);
}

sslc_status sslc_ntxent_multi_forward(float *loss, float *accuracy, float *restrict workspace,
                                      const float *restrict z, int64_t rows, int64_t views,
                                      int64_t D, float tau)
{
    sslc_status st = check_args(rows, views, D, tau);
    if (st != SSLC_OK)
        return st;
    const layout l = make_layout(rows, D);
    float *zn = workspace + l.zn, *inv_norm = workspace + l.inv_norm;
    float *unclamped = workspace + l.unclamped, *g = workspace + l.g;
    float *row = workspace + l.row, *hit = workspace + l.hit;
    const int64_t n = rows / views;

    sslc_rows_normalize(zn, inv_norm, unclamped, z, rows, D);

    // logits = zn zn^T / tau, the one large product.
    sslc_sgemm(false, true, rows, rows, D, 1.0f / tau, zn, D, zn, D, 0.0f, g, rows);

    // Row-wise log-softmax with the row max subtracted (stable for small tau),
    // then dL/dlogits = (softmax - onehot(positives) / (M-1)) / rows, scaled
    // by 1/tau for the chain to the cosine matrix. Row i = v * n + k is view
    // v of image k; its positives are the rows u * n + k, u != v.
    const float scale = 1.0f / ((float)rows * tau), pos_scale = scale / (float)(views - 1);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i++) {
        float *gi = g + i * rows;
        const int64_t image = i % n;
        float m = -INFINITY;
        int64_t arg = -1;
        for (int64_t j = 0; j < rows; j++) {
            if (j != i && gi[j] > m) {
                m = gi[j];
                arg = j;
            }
        }
        double lpos = 0.0; // sum of the positives' logits
        for (int64_t p = image; p < rows; p += n)
            if (p != i)
                lpos += gi[p];
        double sum = 0.0;
        for (int64_t j = 0; j < rows; j++) {
            float e = j == i ? 0.0f : expf(gi[j] - m);
            gi[j] = e;
            sum += e;
        }
        row[i] = (float)(log(sum) + (double)m - lpos / (double)(views - 1));
        hit[i] = arg % n == image ? 1.0f : 0.0f; // arg != i: a positive
        const float inv_sum = (float)(1.0 / sum);
        for (int64_t j = 0; j < rows; j++)
            gi[j] *= inv_sum * scale;
        for (int64_t p = image; p < rows; p += n)
            if (p != i)
                gi[p] -= pos_scale;
    }

    // cos(i,j) feeds both zn_i and zn_j: symmetrise once so that the backward
    // is a single product dzn = (G + G^T) zn.
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = i + 1; j < rows; j++) {
            float s = g[i * rows + j] + g[j * rows + i];
            g[i * rows + j] = s;
            g[j * rows + i] = s;
        }
    }

    // Fixed-order sums: the result does not depend on the thread count.
    double total = 0.0, hits = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        total += row[i];
        hits += hit[i];
    }
    *loss = (float)(total / (double)rows);
    if (accuracy)
        *accuracy = (float)(hits / (double)rows);
    return SSLC_OK;
}

void sslc_ntxent_backward(float *restrict dz, float *restrict workspace, float dloss,
                          int64_t rows, int64_t D)
{
    const layout l = make_layout(rows, D);
    const float *zn = workspace + l.zn, *inv_norm = workspace + l.inv_norm;
    const float *unclamped = workspace + l.unclamped, *g = workspace + l.g;
    float *dzn = workspace + l.dzn;

    sslc_sgemm(false, false, rows, D, rows, dloss, g, rows, zn, D, 0.0f, dzn, D);

    // Through zn = z / max(|z|, eps): dz = (dzn - zn (zn . dzn)) / |z|, or
    // dzn / eps where the clamp is active (the norm then carries no gradient).
    sslc_rows_normalize_backward(dz, dzn, zn, inv_norm, unclamped, 1.0f, rows, D);
}

sslc_status sslc_ntxent_reference(double *loss, double *restrict dz, const double *restrict z,
                                  int64_t rows, int64_t D, double tau)
{
    return sslc_ntxent_multi_reference(loss, dz, z, rows, 2, D, tau);
}

sslc_status sslc_ntxent_multi_reference(double *loss, double *restrict dz,
                                        const double *restrict z, int64_t rows, int64_t views,
                                        int64_t D, double tau)
{
    sslc_status st = check_args(rows, views, D, tau);
    if (st != SSLC_OK)
        return st;
    const int64_t n = rows / views;
    double *u = sslc_malloc((size_t)(rows * D) * sizeof *u);
    double *norm = sslc_malloc((size_t)rows * sizeof *norm);
    double *p = sslc_malloc((size_t)(rows * rows) * sizeof *p);
    double *du = sslc_calloc((size_t)(rows * D), sizeof *du);
    if (!u || !norm || !p || !du) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t i = 0; i < rows; i++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += z[i * D + d] * z[i * D + d];
        norm[i] = sqrt(ss);
        double c = norm[i] > (double)SSLC_NORMALIZE_EPS ? norm[i] : (double)SSLC_NORMALIZE_EPS;
        for (int64_t d = 0; d < D; d++)
            u[i * D + d] = z[i * D + d] / c;
    }
    // L = 1/rows sum_i 1/(M-1) sum_{p in P(i)} [ -s_ip + log sum_{j != i} exp(s_ij) ]
    double total = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        double *pi = p + i * rows, m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < rows; j++) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += u[i * D + d] * u[j * D + d];
            pi[j] = dot / tau;
            if (j != i)
                m = fmax(m, pi[j]);
        }
        for (int64_t j = 0; j < rows; j++)
            sum += j == i ? 0.0 : exp(pi[j] - m);
        for (int64_t j = 0; j < rows; j++)
            if (j != i && j % n == i % n)
                total += (log(sum) + m - pi[j]) / (double)(views - 1);
        for (int64_t j = 0; j < rows; j++)
            pi[j] = j == i ? 0.0 : exp(pi[j] - m) / sum;
    }
    *loss = total / (double)rows;
    if (dz) {
        for (int64_t i = 0; i < rows; i++) {
            for (int64_t j = 0; j < rows; j++) {
                double positive = j != i && j % n == i % n ? 1.0 / (double)(views - 1) : 0.0;
                double gl = (p[i * rows + j] - positive) / (double)rows / tau;
                for (int64_t d = 0; d < D; d++) {
                    du[i * D + d] += gl * u[j * D + d];
                    du[j * D + d] += gl * u[i * D + d];
                }
            }
        }
        for (int64_t i = 0; i < rows; i++) {
            double dot = 0.0;
            bool unclamped = norm[i] > (double)SSLC_NORMALIZE_EPS;
            double c = unclamped ? norm[i] : (double)SSLC_NORMALIZE_EPS;
            if (unclamped)
                for (int64_t d = 0; d < D; d++)
                    dot += u[i * D + d] * du[i * D + d];
            for (int64_t d = 0; d < D; d++)
                dz[i * D + d] += (du[i * D + d] - u[i * D + d] * dot) / c;
        }
    }
fail:
    free(u);
    free(norm);
    free(p);
    free(du);
    return st;
}
