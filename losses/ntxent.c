#include "losses/ntxent.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "src/core/gemm.h"
#include "src/core/rows.h"


static int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// Workspace layout, in floats, each part on a 64-byte boundary.
typedef struct layout {
    int64_t zn;        // (two_n, D) normalised rows (saved)
    int64_t inv_norm;  // (two_n,) 1 / max(|z_i|, eps) (saved)
    int64_t unclamped; // (two_n,) 1 when |z_i| > eps: the norm carries gradient (saved)
    int64_t g;         // (two_n, two_n) logits, then the symmetrised dL/dcos (saved)
    int64_t row;       // (two_n,) per-row loss, for an ordered sum
    int64_t hit;       // (two_n,) 1 when the row's argmax is its positive
    int64_t dzn;       // (two_n, D) backward scratch: dL/dzn
    int64_t total;
} layout;

static layout make_layout(int64_t two_n, int64_t D)
{
    layout l;
    int64_t at = 0;
    l.zn = at, at += align16(two_n * D);
    l.inv_norm = at, at += align16(two_n);
    l.unclamped = at, at += align16(two_n);
    l.g = at, at += align16(two_n * two_n);
    l.row = at, at += align16(two_n);
    l.hit = at, at += align16(two_n);
    l.dzn = at, at += align16(two_n * D);
    l.total = at;
    return l;
}

size_t sslc_ntxent_workspace_size(int64_t two_n, int64_t D)
{
    if (two_n <= 0 || D <= 0)
        return 0;
    return (size_t)make_layout(two_n, D).total * sizeof(float);
}

static sslc_status check_args(int64_t two_n, int64_t D, double tau)
{
    if (two_n < 2 || two_n % 2 != 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "ntxent: the batch must hold 2N >= 2 views (two per image), got %lld",
                          (long long)two_n);
    if (D < 1)
        return sslc_error(SSLC_ERR_INVALID, "ntxent: feature dimension %lld < 1", (long long)D);
    if (!(tau > 0.0) || !isfinite(tau))
        return sslc_error(SSLC_ERR_INVALID, "ntxent: temperature must be > 0, got %g", tau);
    return SSLC_OK;
}

sslc_status sslc_ntxent_forward(float *loss, float *accuracy, float *restrict workspace,
                                const float *restrict z, int64_t two_n, int64_t D, float tau)
{
    sslc_status st = check_args(two_n, D, tau);
    if (st != SSLC_OK)
        return st;
    const layout l = make_layout(two_n, D);
    float *zn = workspace + l.zn, *inv_norm = workspace + l.inv_norm;
    float *unclamped = workspace + l.unclamped, *g = workspace + l.g;
    float *row = workspace + l.row, *hit = workspace + l.hit;
    const int64_t n = two_n / 2;

    sslc_rows_normalize(zn, inv_norm, unclamped, z, two_n, D);

    // logits = zn zn^T / tau, the one large product.
    sslc_sgemm(false, true, two_n, two_n, D, 1.0f / tau, zn, D, zn, D, 0.0f, g, two_n);

    // Row-wise log-softmax with the row max subtracted (stable for small tau),
    // then dL/dlogits = (softmax - onehot(pos)) / (2N), scaled by 1/tau for
    // the chain to the cosine matrix.
    const float scale = 1.0f / ((float)two_n * tau);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < two_n; i++) {
        float *gi = g + i * two_n;
        const int64_t pos = (i + n) % two_n;
        float m = -INFINITY;
        int64_t arg = -1;
        for (int64_t j = 0; j < two_n; j++) {
            if (j != i && gi[j] > m) {
                m = gi[j];
                arg = j;
            }
        }
        const float lpos = gi[pos];
        double sum = 0.0;
        for (int64_t j = 0; j < two_n; j++) {
            float e = j == i ? 0.0f : expf(gi[j] - m);
            gi[j] = e;
            sum += e;
        }
        row[i] = (float)(log(sum) + (double)m - (double)lpos);
        hit[i] = arg == pos ? 1.0f : 0.0f;
        const float inv_sum = (float)(1.0 / sum);
        for (int64_t j = 0; j < two_n; j++)
            gi[j] *= inv_sum * scale;
        gi[pos] -= scale;
    }

    // cos(i,j) feeds both zn_i and zn_j: symmetrise once so that the backward
    // is a single product dzn = (G + G^T) zn.
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < two_n; i++) {
        for (int64_t j = i + 1; j < two_n; j++) {
            float s = g[i * two_n + j] + g[j * two_n + i];
            g[i * two_n + j] = s;
            g[j * two_n + i] = s;
        }
    }

    // Fixed-order sums: the result does not depend on the thread count.
    double total = 0.0, hits = 0.0;
    for (int64_t i = 0; i < two_n; i++) {
        total += row[i];
        hits += hit[i];
    }
    *loss = (float)(total / (double)two_n);
    if (accuracy)
        *accuracy = (float)(hits / (double)two_n);
    return SSLC_OK;
}

void sslc_ntxent_backward(float *restrict dz, float *restrict workspace, float dloss,
                          int64_t two_n, int64_t D)
{
    const layout l = make_layout(two_n, D);
    const float *zn = workspace + l.zn, *inv_norm = workspace + l.inv_norm;
    const float *unclamped = workspace + l.unclamped, *g = workspace + l.g;
    float *dzn = workspace + l.dzn;

    sslc_sgemm(false, false, two_n, D, two_n, dloss, g, two_n, zn, D, 0.0f, dzn, D);

    // Through zn = z / max(|z|, eps): dz = (dzn - zn (zn . dzn)) / |z|, or
    // dzn / eps where the clamp is active (the norm then carries no gradient).
    sslc_rows_normalize_backward(dz, dzn, zn, inv_norm, unclamped, 1.0f, two_n, D);
}

sslc_status sslc_ntxent_reference(double *loss, double *restrict dz, const double *restrict z,
                                  int64_t two_n, int64_t D, double tau)
{
    sslc_status st = check_args(two_n, D, tau);
    if (st != SSLC_OK)
        return st;
    const int64_t n = two_n / 2;
    double *u = sslc_malloc((size_t)(two_n * D) * sizeof *u);
    double *norm = sslc_malloc((size_t)two_n * sizeof *norm);
    double *p = sslc_malloc((size_t)(two_n * two_n) * sizeof *p);
    double *du = sslc_calloc((size_t)(two_n * D), sizeof *du);
    if (!u || !norm || !p || !du) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t i = 0; i < two_n; i++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += z[i * D + d] * z[i * D + d];
        norm[i] = sqrt(ss);
        double c = norm[i] > (double)SSLC_NORMALIZE_EPS ? norm[i] : (double)SSLC_NORMALIZE_EPS;
        for (int64_t d = 0; d < D; d++)
            u[i * D + d] = z[i * D + d] / c;
    }
    double total = 0.0;
    for (int64_t i = 0; i < two_n; i++) {
        double *pi = p + i * two_n, m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < two_n; j++) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += u[i * D + d] * u[j * D + d];
            pi[j] = dot / tau;
            if (j != i)
                m = fmax(m, pi[j]);
        }
        for (int64_t j = 0; j < two_n; j++)
            sum += j == i ? 0.0 : exp(pi[j] - m);
        total += log(sum) + m - pi[(i + n) % two_n];
        for (int64_t j = 0; j < two_n; j++)
            pi[j] = j == i ? 0.0 : exp(pi[j] - m) / sum;
    }
    *loss = total / (double)two_n;
    if (dz) {
        for (int64_t i = 0; i < two_n; i++) {
            for (int64_t j = 0; j < two_n; j++) {
                double gl = (p[i * two_n + j] - (j == (i + n) % two_n)) / (double)two_n / tau;
                for (int64_t d = 0; d < D; d++) {
                    du[i * D + d] += gl * u[j * D + d];
                    du[j * D + d] += gl * u[i * D + d];
                }
            }
        }
        for (int64_t i = 0; i < two_n; i++) {
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
