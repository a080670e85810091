#include "losses/infonce.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "src/core/gemm.h"
#include "src/core/rows.h"


static int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// The negatives are visited in blocks of KEY_BLOCK queue rows with an online
// softmax (running row max and sum, rescaled when the max grows, as in
// Milakov & Gimelshein 2018): the N x (1+K) logits never exist at once, so
// the workspace is ~1.5 MB instead of 67 MB at N 256, K 65536, and each
// block's exponentials are still in cache for the second product. (Speed is
// about the same as three passes over the full matrix; the time goes to the
// two products and the scalar expf.)
enum { KEY_BLOCK = 1024 };

static int64_t key_block(int64_t K) { return K < KEY_BLOCK ? K : KEY_BLOCK; }

// Workspace layout, in floats, each part on a 64-byte boundary.
typedef struct layout {
    int64_t qn;        // (N, D) normalised queries (saved)
    int64_t inv_norm;  // (N,) 1 / max(|q_i|, eps) (saved)
    int64_t unclamped; // (N,) 1 when |q_i| > eps (saved)
    int64_t kn;        // (N, D) normalised keys (for the queue)
    int64_t dqn;       // (N, D) sum_j e_ij key_j, then dL/dqn for dloss = 1 (saved)
    int64_t row_max;   // (N,) running max logit
    int64_t row_pos;   // (N,) positive logit
    int64_t row_sum;   // (N,) double: running sum of exp(logit - max)
    int64_t row_best;  // (N,) largest negative logit so far (accuracy)
    int64_t block;     // (N, key_block(K)) logits, then exponentials (scratch)
    int64_t total;
} layout;

static layout make_layout(int64_t N, int64_t D, int64_t K)
{
    layout l;
    int64_t at = 0;
    l.qn = at, at += align16(N * D);
    l.inv_norm = at, at += align16(N);
    l.unclamped = at, at += align16(N);
    l.kn = at, at += align16(N * D);
    l.dqn = at, at += align16(N * D);
    l.row_max = at, at += align16(N);
    l.row_pos = at, at += align16(N);
    l.row_sum = at, at += align16(2 * N);
    l.row_best = at, at += align16(N);
    l.block = at, at += align16(N * key_block(K));
    l.total = at;
    return l;
}

size_t sslc_infonce_workspace_size(int64_t N, int64_t D, int64_t K)
{
    if (N <= 0 || D <= 0 || K < 0)
        return 0;
    return (size_t)make_layout(N, D, K).total * sizeof(float);
}

const float *sslc_infonce_keys(const float *workspace, int64_t N, int64_t D, int64_t K)
{
    return workspace + make_layout(N, D, K).kn;
}

static sslc_status check_args(int64_t N, int64_t D, int64_t K, double tau)
{
    if (N < 1 || D < 1 || K < 0)
        return sslc_error(SSLC_ERR_INVALID,
                          "infonce: impossible shape N=%lld D=%lld K=%lld (need N, D >= 1, K >= 0)",
                          (long long)N, (long long)D, (long long)K);
    if (!(tau > 0.0) || !isfinite(tau))
        return sslc_error(SSLC_ERR_INVALID, "infonce: temperature must be > 0, got %g", tau);
    return SSLC_OK;
}

sslc_status sslc_infonce_forward(float *loss, float *accuracy, float *restrict workspace,
                                 const float *restrict q, const float *restrict k,
                                 const float *restrict queue, int64_t N, int64_t D, int64_t K,
                                 float tau)
{
    sslc_status st = check_args(N, D, K, tau);
    if (st != SSLC_OK)
        return st;
    const layout l = make_layout(N, D, K);
    float *qn = workspace + l.qn, *kn = workspace + l.kn, *acc = workspace + l.dqn;
    float *row_max = workspace + l.row_max, *row_pos = workspace + l.row_pos;
    float *row_best = workspace + l.row_best, *block = workspace + l.block;
    double *row_sum = (double *)(void *)(workspace + l.row_sum);
    const int64_t KB = key_block(K);

    sslc_rows_normalize(qn, workspace + l.inv_norm, workspace + l.unclamped, q, N, D);
    sslc_rows_normalize(kn, NULL, NULL, k, N, D);

    // Start every row with its positive: max = l_pos, sum = e^0, and the
    // exp-weighted key sum holds kn_i.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        float dot = 0.0f;
        for (int64_t d = 0; d < D; d++)
            dot += qn[i * D + d] * kn[i * D + d];
        row_pos[i] = row_max[i] = dot / tau;
        row_best[i] = -INFINITY;
        row_sum[i] = 1.0;
        for (int64_t d = 0; d < D; d++)
            acc[i * D + d] = kn[i * D + d];
    }

    for (int64_t k0 = 0; k0 < K; k0 += KB) {
        const int64_t kb = K - k0 < KB ? K - k0 : KB;
        const float *keys = queue + k0 * D;
        // (N, kb) = qn keys^T / tau
        sslc_sgemm(false, true, N, kb, D, 1.0f / tau, qn, D, keys, D, 0.0f, block, kb);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            float *bi = block + i * kb;
            float bm = -INFINITY;
            for (int64_t j = 0; j < kb; j++)
                bm = bi[j] > bm ? bi[j] : bm;
            if (bm > row_best[i])
                row_best[i] = bm;
            // Log-sum-exp with the running max: exact for small tau.
            if (bm > row_max[i]) {
                const float r = expf(row_max[i] - bm);
                row_sum[i] *= r;
                for (int64_t d = 0; d < D; d++)
                    acc[i * D + d] *= r;
                row_max[i] = bm;
            }
            const float m = row_max[i];
            double sum = 0.0;
            for (int64_t j = 0; j < kb; j++) {
                float e = expf(bi[j] - m);
                bi[j] = e;
                sum += e;
            }
            row_sum[i] += sum;
        }
        // acc += e keys: (N, D) += (N, kb) (kb, D)
        sslc_sgemm(false, false, N, D, kb, 1.0f, block, kb, keys, D, 1.0f, acc, D);
    }

    // dL/dqn_i = (sum_j p_ij key_j - kn_i) / (N tau), where the sum runs
    // over the positive (key kn_i) and the negatives. Computed now so that
    // the queue may change before the backward.
    const float scale = 1.0f / ((float)N * tau);
    double total = 0.0, hits = 0.0;
    for (int64_t i = 0; i < N; i++) {
        total += log(row_sum[i]) + (double)row_max[i] - (double)row_pos[i];
        // The positive wins ties, as argmax picks index 0 first.
        hits += row_pos[i] >= row_best[i] ? 1.0 : 0.0;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float inv_sum = (float)(1.0 / row_sum[i]);
        for (int64_t d = 0; d < D; d++)
            acc[i * D + d] = (acc[i * D + d] * inv_sum - kn[i * D + d]) * scale;
    }
    *loss = (float)(total / (double)N);
    if (accuracy)
        *accuracy = (float)(hits / (double)N);
    return SSLC_OK;
}

void sslc_infonce_backward(float *restrict dq, const float *restrict workspace, float dloss,
                           int64_t N, int64_t D, int64_t K)
{
    const layout l = make_layout(N, D, K);
    const float *qn = workspace + l.qn, *dqn = workspace + l.dqn;
    const float *inv_norm = workspace + l.inv_norm, *unclamped = workspace + l.unclamped;
    // Through qn = q / max(|q|, eps), as in the NT-Xent backward.
    sslc_rows_normalize_backward(dq, dqn, qn, inv_norm, unclamped, dloss, N, D);
}

static double norm_clamped(const double *x, int64_t D, bool *unclamped)
{
    double ss = 0.0;
    for (int64_t d = 0; d < D; d++)
        ss += x[d] * x[d];
    double n = sqrt(ss);
    if (unclamped)
        *unclamped = n > (double)SSLC_NORMALIZE_EPS;
    return n > (double)SSLC_NORMALIZE_EPS ? n : (double)SSLC_NORMALIZE_EPS;
}

sslc_status sslc_infonce_reference(double *loss, double *restrict dq, const double *restrict q,
                                   const double *restrict k, const double *restrict queue,
                                   int64_t N, int64_t D, int64_t K, double tau)
{
    sslc_status st = check_args(N, D, K, tau);
    if (st != SSLC_OK)
        return st;
    double *logit = sslc_malloc((size_t)(1 + K) * sizeof *logit);
    double *u = sslc_malloc((size_t)D * sizeof *u), *kn = sslc_malloc((size_t)D * sizeof *kn);
    double *du = sslc_malloc((size_t)D * sizeof *du);
    if (!logit || !u || !kn || !du) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    double total = 0.0;
    for (int64_t i = 0; i < N; i++) {
        bool unclamped;
        double nq = norm_clamped(q + i * D, D, &unclamped), nk = norm_clamped(k + i * D, D, NULL);
        for (int64_t d = 0; d < D; d++) {
            u[d] = q[i * D + d] / nq;
            kn[d] = k[i * D + d] / nk;
        }
        double m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j <= K; j++) {
            const double *key = j == 0 ? kn : queue + (j - 1) * D;
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += u[d] * key[d];
            logit[j] = dot / tau;
            m = fmax(m, logit[j]);
        }
        for (int64_t j = 0; j <= K; j++)
            sum += exp(logit[j] - m);
        total += log(sum) + m - logit[0];
        if (!dq)
            continue;
        for (int64_t d = 0; d < D; d++)
            du[d] = 0.0;
        for (int64_t j = 0; j <= K; j++) {
            const double *key = j == 0 ? kn : queue + (j - 1) * D;
            double g = (exp(logit[j] - m) / sum - (j == 0)) / (double)N / tau;
            for (int64_t d = 0; d < D; d++)
                du[d] += g * key[d];
        }
        double dot = 0.0;
        if (unclamped)
            for (int64_t d = 0; d < D; d++)
                dot += u[d] * du[d];
        for (int64_t d = 0; d < D; d++)
            dq[i * D + d] += (du[d] - u[d] * dot) / nq;
    }
    *loss = total / (double)N;
fail:
    free(logit);
    free(u);
    free(kn);
    free(du);
    return st;
}
