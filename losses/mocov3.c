#include "losses/mocov3.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "losses/xent.h"
#include "src/core/gemm.h"
#include "src/core/rows.h"

static int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// Workspace layout, in floats, each part on a 64-byte boundary. The
// cross-entropy over the logits is losses/xent's (the loss of the linear
// probe): this file adds the normalisations, the products and the scale.
typedef struct layout {
    int64_t qn;        // (N, D) normalised queries (saved)
    int64_t inv_norm;  // (N,) 1 / max(|q_i|, eps) (saved)
    int64_t unclamped; // (N,) 1 when |q_i| > eps (saved)
    int64_t kn;        // (M, D) normalised keys (saved)
    int64_t labels;    // (N,) int64: first + i (saved)
    int64_t tau;       // (1,) the temperature (saved)
    int64_t probs;     // (N, M) softmax of the logits (saved)
    int64_t scratch;   // (N, M) logits in the forward, their gradient in the backward
    int64_t dqn;       // (N, D) backward: dctr/dqn
    int64_t total;
} layout;

static layout make_layout(int64_t N, int64_t M, int64_t D)
{
    layout l;
    int64_t at = 0;
    l.qn = at, at += align16(N * D);
    l.inv_norm = at, at += align16(N);
    l.unclamped = at, at += align16(N);
    l.kn = at, at += align16(M * D);
    l.labels = at, at += align16(2 * N);
    l.tau = at, at += 16;
    l.probs = at, at += align16(N * M);
    l.scratch = at, at += align16(N * M);
    l.dqn = at, at += align16(N * D);
    l.total = at;
    return l;
}

static sslc_status check_args(int64_t N, int64_t M, int64_t first, int64_t D, double tau)
{
    if (N < 1 || M < 1 || D < 1 || first < 0 || first + N > M)
        return sslc_error(SSLC_ERR_INVALID,
                          "mocov3 loss: impossible shape N=%lld M=%lld first=%lld D=%lld (need "
                          "N, M, D >= 1 and the positives first .. first + N - 1 among the M keys)",
                          (long long)N, (long long)M, (long long)first, (long long)D);
    if (!(tau > 0.0) || !isfinite(tau))
        return sslc_error(SSLC_ERR_INVALID, "mocov3 loss: temperature must be > 0, got %g", tau);
    return SSLC_OK;
}

size_t sslc_mocov3_workspace_size(int64_t N, int64_t M, int64_t D)
{
    if (N <= 0 || M <= 0 || D <= 0)
        return 0;
    return (size_t)make_layout(N, M, D).total * sizeof(float);
}

sslc_status sslc_mocov3_forward(float *loss, float *accuracy, float *restrict workspace,
                                const float *restrict q, const float *restrict k, int64_t N,
                                int64_t M, int64_t first, int64_t D, float tau)
{
    sslc_status st = check_args(N, M, first, D, tau);
    if (st)
        return st;
    const layout l = make_layout(N, M, D);
    float *qn = workspace + l.qn, *kn = workspace + l.kn, *logits = workspace + l.scratch;
    int64_t *labels = (int64_t *)(void *)(workspace + l.labels);
    sslc_rows_normalize(qn, workspace + l.inv_norm, workspace + l.unclamped, q, N, D);
    sslc_rows_normalize(kn, NULL, NULL, k, M, D);
    workspace[l.tau] = tau;
    for (int64_t i = 0; i < N; i++)
        labels[i] = first + i;
    // (N, M) = qn kn^T / tau
    sslc_sgemm(false, true, N, M, D, 1.0f / tau, qn, D, kn, D, 0.0f, logits, M);
    double ce;
    int64_t correct;
    if ((st = sslc_xent_forward(&ce, &correct, workspace + l.probs, logits, labels, N, M)))
        return st;
    *loss = (float)(2.0 * (double)tau * ce);
    if (accuracy)
        *accuracy = (float)((double)correct / (double)N);
    return SSLC_OK;
}

void sslc_mocov3_backward(float *restrict dq, float *restrict workspace, float dloss, int64_t N,
                          int64_t M, int64_t D)
{
    const layout l = make_layout(N, M, D);
    const float tau = workspace[l.tau];
    float *dlogits = workspace + l.scratch, *dqn = workspace + l.dqn;
    const int64_t *labels = (const int64_t *)(const void *)(workspace + l.labels);
    memset(dlogits, 0, (size_t)(N * M) * sizeof(float));
    sslc_xent_backward(dlogits, workspace + l.probs, labels, 2.0f * tau * dloss, N, M);
    // dL/dqn = dlogits kn / tau: (N, D) = (N, M) (M, D)
    sslc_sgemm(false, false, N, D, M, 1.0f / tau, dlogits, M, workspace + l.kn, D, 0.0f, dqn, D);
    sslc_rows_normalize_backward(dq, dqn, workspace + l.qn, workspace + l.inv_norm,
                                 workspace + l.unclamped, 1.0f, N, D);
}

// x / max(|x|, eps) in double; unclamped as sslc_rows_normalize's.
static double normalize(double *y, const double *x, int64_t D, bool *unclamped)
{
    double ss = 0.0;
    for (int64_t d = 0; d < D; d++)
        ss += x[d] * x[d];
    double n = sqrt(ss);
    if (unclamped)
        *unclamped = n > (double)SSLC_NORMALIZE_EPS;
    n = n > (double)SSLC_NORMALIZE_EPS ? n : (double)SSLC_NORMALIZE_EPS;
    for (int64_t d = 0; d < D; d++)
        y[d] = x[d] / n;
    return n;
}

sslc_status sslc_mocov3_reference(double *loss, double *restrict dq, const double *restrict q,
                                  const double *restrict k, int64_t N, int64_t M, int64_t first,
                                  int64_t D, double tau)
{
    sslc_status st = check_args(N, M, first, D, tau);
    if (st)
        return st;
    double *kn = malloc((size_t)(M * D) * sizeof *kn), *logit = malloc((size_t)M * sizeof *logit);
    double *u = malloc((size_t)D * sizeof *u), *du = malloc((size_t)D * sizeof *du);
    if (!kn || !logit || !u || !du) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t j = 0; j < M; j++)
        normalize(kn + j * D, k + j * D, D, NULL);
    double total = 0.0;
    for (int64_t i = 0; i < N; i++) {
        bool unclamped;
        double nq = normalize(u, q + i * D, D, &unclamped), m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < M; j++) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += u[d] * kn[j * D + d];
            logit[j] = dot / tau;
            m = fmax(m, logit[j]);
        }
        for (int64_t j = 0; j < M; j++)
            sum += exp(logit[j] - m);
        total += log(sum) + m - logit[first + i];
        if (!dq)
            continue;
        // d(2 tau ce)/du = 2 tau / N * sum_j (p_j - [j = first + i]) kn_j / tau
        for (int64_t d = 0; d < D; d++)
            du[d] = 0.0;
        for (int64_t j = 0; j < M; j++) {
            double g = 2.0 * (exp(logit[j] - m) / sum - (j == first + i)) / (double)N;
            for (int64_t d = 0; d < D; d++)
                du[d] += g * kn[j * D + d];
        }
        double dot = 0.0;
        if (unclamped)
            for (int64_t d = 0; d < D; d++)
                dot += u[d] * du[d];
        for (int64_t d = 0; d < D; d++)
            dq[i * D + d] += (du[d] - u[d] * dot) / nq;
    }
    *loss = 2.0 * tau * total / (double)N;
fail:
    free(kn), free(logit), free(u), free(du);
    return st;
}
