// losses/: NT-Xent, InfoNCE, MoCo v3's loss, distillation and the MoCo key queue. The fast float paths are
// compared with their double-precision naive twins and with PyTorch
// (tests/fixtures/losses_*.h5, written by scripts/gen_loss_fixtures.py);
// both against central finite differences in tests/gradcheck/.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/distill.h"
#include "losses/infonce.h"
#include "losses/mocov3.h"
#include "losses/ntxent.h"
#include "losses/queue.h"
#include "src/core/rng.h"
#include "src/core/status.h"
#include "tests/harness.h"

static double *to_double(const float *x, int64_t n)
{
    double *y = malloc((size_t)n * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

static float *to_float(const double *x, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)x[i];
    return y;
}

static void normalize_rows(float *x, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++)
            ss += (double)x[i * d + j] * x[i * d + j];
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = (float)(x[i * d + j] / sqrt(ss));
    }
}

// ---------------------------------------------------------------- NT-Xent

// Fast path (loss, accuracy, dz) for z: (rows, D), `views` views per image.
static float ntxent_multi_run(float *dz, float *accuracy, const float *z, int64_t rows,
                              int64_t views, int64_t D, float tau)
{
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(rows, D));
    assert_non_null(ws);
    float loss = NAN;
    assert_int_equal(sslc_ntxent_multi_forward(&loss, accuracy, ws, z, rows, views, D, tau),
                     SSLC_OK);
    if (dz) {
        memset(dz, 0, (size_t)(rows * D) * sizeof *dz);
        sslc_ntxent_backward(dz, ws, 1.0f, rows, D);
    }
    free(ws);
    return loss;
}

// The 2-view entry point (SimCLR).
static float ntxent_run(float *dz, float *accuracy, const float *z, int64_t two_n, int64_t D,
                        float tau)
{
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(two_n, D));
    assert_non_null(ws);
    float loss = NAN;
    assert_int_equal(sslc_ntxent_forward(&loss, accuracy, ws, z, two_n, D, tau), SSLC_OK);
    if (dz) {
        memset(dz, 0, (size_t)(two_n * D) * sizeof *dz);
        sslc_ntxent_backward(dz, ws, 1.0f, two_n, D);
    }
    free(ws);
    return loss;
}

static void ntxent_matches_naive_twin(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{2, 3}, {6, 5}, {32, 16}, {130, 40}};
    const float taus[] = {0.05f, 0.2f, 1.0f};
    for (size_t s = 0; s < 4; s++) {
        for (size_t t = 0; t < 3; t++) {
            int64_t two_n = shapes[s][0], D = shapes[s][1], n = two_n * D;
            float *z = sslc_test_randn((size_t)n, 100 + s, 1.5);
            float *dz = malloc((size_t)n * sizeof *dz);
            double *zd = to_double(z, n), *dzd = calloc((size_t)n, sizeof *dzd), ref;
            float loss = ntxent_run(dz, NULL, z, two_n, D, taus[t]);
            assert_int_equal(sslc_ntxent_reference(&ref, dzd, zd, two_n, D, taus[t]), SSLC_OK);
            float ref_loss = (float)ref, *ref_dz = to_float(dzd, n);
            char what[64];
            snprintf(what, sizeof what, "ntxent loss 2N=%lld tau=%g", (long long)two_n, taus[t]);
            sslc_assert_close(what, &loss, &ref_loss, 1, 1e-5, 1e-5);
            snprintf(what, sizeof what, "ntxent dz 2N=%lld tau=%g", (long long)two_n, taus[t]);
            sslc_assert_close(what, dz, ref_dz, (size_t)n, 1e-5, 1e-3);
            free(z), free(dz), free(zd), free(dzd), free(ref_dz);
        }
    }
}

// Multi-positive NT-Xent (multi-crop): M views of N images against the
// double twin, and M = 2 bit-identical to the 2-view entry point.
static void ntxent_multi_matches_naive_twin(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{2, 5, 7}, {3, 1, 4}, {4, 6, 16}, {6, 20, 24}}; // M N D
    const float taus[] = {0.05f, 0.2f, 1.0f};
    for (size_t s = 0; s < 4; s++) {
        for (size_t t = 0; t < 3; t++) {
            int64_t M = shapes[s][0], rows = M * shapes[s][1], D = shapes[s][2], n = rows * D;
            float *z = sslc_test_randn((size_t)n, 200 + s, 1.5);
            float *dz = malloc((size_t)n * sizeof *dz), acc;
            double *zd = to_double(z, n), *dzd = calloc((size_t)n, sizeof *dzd), ref;
            float loss = ntxent_multi_run(dz, &acc, z, rows, M, D, taus[t]);
            assert_int_equal(sslc_ntxent_multi_reference(&ref, dzd, zd, rows, M, D, taus[t]),
                             SSLC_OK);
            float ref_loss = (float)ref, *ref_dz = to_float(dzd, n);
            char what[64];
            snprintf(what, sizeof what, "ntxent loss M=%lld rows=%lld tau=%g", (long long)M,
                     (long long)rows, taus[t]);
            sslc_assert_close(what, &loss, &ref_loss, 1, 1e-5, 1e-5);
            snprintf(what, sizeof what, "ntxent dz M=%lld rows=%lld tau=%g", (long long)M,
                     (long long)rows, taus[t]);
            sslc_assert_close(what, dz, ref_dz, (size_t)n, 1e-5, 1e-3);
            if (M == 2) {
                float *dz2 = malloc((size_t)n * sizeof *dz2), acc2;
                float loss2 = ntxent_run(dz2, &acc2, z, rows, D, taus[t]);
                assert_true(loss2 == loss && acc2 == acc);
                assert_memory_equal(dz2, dz, (size_t)n * sizeof *dz);
                free(dz2);
            }
            free(z), free(dz), free(zd), free(dzd), free(ref_dz);
        }
    }
}

// M identical views per image, images orthogonal: each row sees cos 1 with
// its M-1 positives and 0 with the (N-1) M others, so
// L = -1/tau + log((M-1) e^{1/tau} + (N-1) M), and every row's argmax is a positive.
static void ntxent_multi_has_the_closed_form_on_orthogonal_images(void **state)
{
    (void)state;
    const int64_t M = 5, N = 3, D = 4;
    float z[5 * 3 * 4] = {0};
    for (int64_t v = 0; v < M; v++)
        for (int64_t k = 0; k < N; k++)
            z[(v * N + k) * D + k] = 1.0f + (float)v; // scale: normalised away
    const double taus[] = {0.1, 0.5, 1.0};
    for (size_t t = 0; t < 3; t++) {
        float acc = 0.0f, loss = ntxent_multi_run(NULL, &acc, z, M * N, M, D, (float)taus[t]);
        double want = -1.0 / taus[t] +
                      log((double)(M - 1) * exp(1.0 / taus[t]) + (double)((N - 1) * M));
        float wantf = (float)want, one = 1.0f;
        sslc_assert_close("ntxent multi closed form", &loss, &wantf, 1, 1e-5, 1e-5);
        sslc_assert_close("ntxent multi accuracy", &acc, &one, 1, 0, 0);
    }
}

static void ntxent_multi_rejects_impossible_arguments(void **state)
{
    (void)state;
    float z[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, loss;
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(6, 2));
    assert_int_equal(sslc_ntxent_multi_forward(&loss, NULL, ws, z, 6, 4, 2, 0.1f),
                     SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "M*N"));
    assert_int_equal(sslc_ntxent_multi_forward(&loss, NULL, ws, z, 6, 1, 2, 0.1f),
                     SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "at least 2 views"));
    assert_int_equal(sslc_ntxent_multi_forward(&loss, NULL, ws, z, 2, 3, 6, 0.1f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_ntxent_multi_forward(&loss, NULL, ws, z, 6, 3, 2, 0.1f), SSLC_OK);
    free(ws);
}

// Identical views, all pairs orthogonal: every row sees cos 1 with its
// positive and 0 with the 2N-2 others, so L = -1/tau + log(e^{1/tau} + 2N-2).
static void ntxent_has_the_closed_form_on_orthogonal_pairs(void **state)
{
    (void)state;
    enum { N = 4, D = 6 };
    float z[2 * N * D] = {0};
    for (int i = 0; i < N; i++) {
        z[i * D + i] = 2.0f + (float)i;       // view 1, any scale
        z[(i + N) * D + i] = 0.5f;            // view 2, same direction
    }
    const float taus[] = {0.05f, 0.1f, 0.5f};
    for (int t = 0; t < 3; t++) {
        double tau = taus[t];
        float acc = 0.0f, loss = ntxent_run(NULL, &acc, z, 2 * N, D, taus[t]);
        float expect = (float)(-1.0 / tau + log(exp(1.0 / tau) + 2 * N - 2));
        sslc_assert_close("ntxent orthogonal closed form", &loss, &expect, 1, 1e-5, 1e-5);
        assert_true(acc == 1.0f);
    }
}

static void ntxent_is_stable_for_small_tau_and_zero_rows(void **state)
{
    (void)state;
    const int64_t two_n = 8, D = 5, n = two_n * D;
    float *z = sslc_test_randn((size_t)n, 7, 30.0);
    for (int64_t d = 0; d < D; d++)
        z[3 * D + d] = 0.0f; // a zero row: the norm clamp must keep it finite
    float *dz = malloc((size_t)n * sizeof *dz);
    float loss = ntxent_run(dz, NULL, z, two_n, D, 0.01);
    assert_true(isfinite(loss));
    for (int64_t i = 0; i < n; i++)
        assert_true(isfinite(dz[i]));
    double *zd = to_double(z, n), *dzd = calloc((size_t)n, sizeof *dzd), ref;
    assert_int_equal(sslc_ntxent_reference(&ref, dzd, zd, two_n, D, 0.01), SSLC_OK);
    float ref_loss = (float)ref, *ref_dz = to_float(dzd, n);
    sslc_assert_close("ntxent tau=0.01 loss", &loss, &ref_loss, 1, 1e-4, 1e-5);
    sslc_assert_close("ntxent tau=0.01 dz", dz, ref_dz, (size_t)n, 1e-4, 1e-3);
    free(z), free(dz), free(zd), free(dzd), free(ref_dz);
}

static void ntxent_backward_accumulates_and_scales(void **state)
{
    (void)state;
    const int64_t two_n = 10, D = 7, n = two_n * D;
    float *z = sslc_test_randn((size_t)n, 8, 1.0);
    float *base = sslc_test_randn((size_t)n, 9, 1.0);
    float *dz = malloc((size_t)n * sizeof *dz), *acc = malloc((size_t)n * sizeof *acc);
    ntxent_run(dz, NULL, z, two_n, D, 0.3);
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(two_n, D));
    float loss;
    assert_int_equal(sslc_ntxent_forward(&loss, NULL, ws, z, two_n, D, 0.3f), SSLC_OK);
    memcpy(acc, base, (size_t)n * sizeof *acc);
    // Twice with dloss 0.5 and 1.5 onto a non-zero gradient: base + 2 dz.
    sslc_ntxent_backward(acc, ws, 0.5f, two_n, D);
    sslc_ntxent_backward(acc, ws, 1.5f, two_n, D);
    for (int64_t i = 0; i < n; i++)
        base[i] += 2.0f * dz[i];
    sslc_assert_close("ntxent backward += with dloss", acc, base, (size_t)n, 1e-6, 1e-5);
    free(z), free(base), free(dz), free(acc), free(ws);
}

static void ntxent_rejects_impossible_arguments(void **state)
{
    (void)state;
    float z[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, loss;
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(4, 3));
    assert_int_equal(sslc_ntxent_forward(&loss, NULL, ws, z, 3, 4, 0.1f), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "2N"));
    assert_int_equal(sslc_ntxent_forward(&loss, NULL, ws, z, 4, 3, 0.0f), SSLC_ERR_INVALID);
    assert_int_equal(sslc_ntxent_forward(&loss, NULL, ws, z, 4, 0, 0.1f), SSLC_ERR_INVALID);
    assert_int_equal(sslc_ntxent_workspace_size(0, 3), 0);
    free(ws);
}

// ---------------------------------------------------------------- InfoNCE

static float infonce_run(float *dq, float *accuracy, const float *q, const float *k,
                         const float *queue, int64_t N, int64_t D, int64_t K, float tau)
{
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, D, K));
    assert_non_null(ws);
    float loss = NAN;
    assert_int_equal(sslc_infonce_forward(&loss, accuracy, ws, q, k, queue, N, D, K, tau),
                     SSLC_OK);
    if (dq) {
        memset(dq, 0, (size_t)(N * D) * sizeof *dq);
        sslc_infonce_backward(dq, ws, 1.0f, N, D, K);
    }
    free(ws);
    return loss;
}

// Fraction of queries whose positive cosine beats every queue cosine (the
// positive wins ties), in double.
static double infonce_accuracy(const double *q, const double *k, const double *queue, int64_t N,
                               int64_t D, int64_t K)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < N; i++) {
        double nq = 0.0, nk = 0.0, pos = 0.0, best = -INFINITY;
        for (int64_t d = 0; d < D; d++) {
            nq += q[i * D + d] * q[i * D + d];
            nk += k[i * D + d] * k[i * D + d];
            pos += q[i * D + d] * k[i * D + d];
        }
        pos /= sqrt(nk);
        for (int64_t j = 0; j < K; j++) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += q[i * D + d] * queue[j * D + d];
            best = fmax(best, dot);
        }
        (void)nq; // the query's norm scales both sides equally
        hits += pos >= best;
    }
    return (double)hits / (double)N;
}

static void infonce_matches_naive_twin(void **state)
{
    (void)state;
    // K = 2500 spans three key blocks of the online softmax.
    const int64_t shapes[][3] = {{1, 3, 4}, {5, 7, 33}, {16, 32, 100}, {40, 24, 0}, {6, 16, 2500}};
    const float taus[] = {0.05f, 0.2f, 1.0f};
    for (size_t s = 0; s < 5; s++) {
        for (size_t t = 0; t < 3; t++) {
            int64_t N = shapes[s][0], D = shapes[s][1], K = shapes[s][2];
            float *q = sslc_test_randn((size_t)(N * D), 200 + s, 2.0);
            float *k = sslc_test_randn((size_t)(N * D), 300 + s, 1.0);
            float *queue = sslc_test_randn((size_t)(K * D + 1), 400 + s, 1.0);
            normalize_rows(queue, K, D);
            float *dq = malloc((size_t)(N * D) * sizeof *dq);
            double *qd = to_double(q, N * D), *kd = to_double(k, N * D);
            double *queued = to_double(queue, K * D), ref;
            double *dqd = calloc((size_t)(N * D), sizeof *dqd);
            float acc = -1.0f, loss = infonce_run(dq, &acc, q, k, queue, N, D, K, taus[t]);
            assert_int_equal(sslc_infonce_reference(&ref, dqd, qd, kd, queued, N, D, K, taus[t]),
                             SSLC_OK);
            assert_true(fabs(acc - infonce_accuracy(qd, kd, queued, N, D, K)) < 1e-6);
            float ref_loss = (float)ref, *ref_dq = to_float(dqd, N * D);
            char what[64];
            snprintf(what, sizeof what, "infonce loss K=%lld tau=%g", (long long)K, taus[t]);
            sslc_assert_close(what, &loss, &ref_loss, 1, 1e-5, 1e-5);
            snprintf(what, sizeof what, "infonce dq K=%lld tau=%g", (long long)K, taus[t]);
            sslc_assert_close(what, dq, ref_dq, (size_t)(N * D), 1e-5, 1e-3);
            if (K == 0)
                assert_true(loss == 0.0f);
            free(q), free(k), free(queue), free(dq), free(qd), free(kd), free(queued);
            free(dqd), free(ref_dq);
        }
    }
}

// A query equal to its key with a queue orthogonal to both: logits are
// [1/tau, 0, ..., 0], so L = -1/tau + log(e^{1/tau} + K).
static void infonce_has_the_closed_form_on_orthogonal_keys(void **state)
{
    (void)state;
    enum { N = 2, D = 8, K = 5 };
    float q[N * D] = {0}, k[N * D] = {0}, queue[K * D] = {0};
    for (int i = 0; i < N; i++) {
        q[i * D + i] = 3.0f;
        k[i * D + i] = 0.25f;
    }
    for (int j = 0; j < K; j++)
        queue[j * D + N + j] = 1.0f;
    float acc = 0.0f, loss = infonce_run(NULL, &acc, q, k, queue, N, D, K, 0.07);
    float expect = (float)(-1.0 / 0.07 + log(exp(1.0 / 0.07) + K));
    sslc_assert_close("infonce orthogonal closed form", &loss, &expect, 1, 1e-6, 1e-5);
    assert_true(acc == 1.0f);
}

// MoCo enqueues inside its forward, before the backward: the gradient must
// not change when the queue does between the two calls.
static void infonce_backward_does_not_read_the_queue(void **state)
{
    (void)state;
    const int64_t N = 6, D = 8, K = 12;
    float *q = sslc_test_randn((size_t)(N * D), 1, 1.0);
    float *k = sslc_test_randn((size_t)(N * D), 2, 1.0);
    float *queue = sslc_test_randn((size_t)(K * D), 3, 1.0);
    float *dq = malloc((size_t)(N * D) * sizeof *dq);
    normalize_rows(queue, K, D);
    infonce_run(dq, NULL, q, k, queue, N, D, K, 0.2);
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, D, K));
    float *dq2 = calloc((size_t)(N * D), sizeof *dq2), loss;
    assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, q, k, queue, N, D, K, 0.2f), SSLC_OK);
    for (int64_t i = 0; i < K * D; i++)
        queue[i] = NAN;
    sslc_infonce_backward(dq2, ws, 0.5f, N, D, K);
    sslc_infonce_backward(dq2, ws, 0.5f, N, D, K);
    sslc_assert_close("infonce dq after the queue changed", dq2, dq, (size_t)(N * D), 1e-7, 1e-6);
    // The keys it exposes for the queue are k normalised.
    const float *kn = sslc_infonce_keys(ws, N, D, K);
    normalize_rows(k, N, D);
    sslc_assert_close("infonce normalised keys", kn, k, (size_t)(N * D), 1e-6, 1e-6);
    free(q), free(k), free(queue), free(dq), free(dq2), free(ws);
}

static void infonce_rejects_impossible_arguments(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, loss;
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(2, 4, 1));
    assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, x, x, x, 2, 4, 1, -1.0f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, x, x, x, 0, 4, 1, 0.1f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, x, x, x, 2, 4, -1, 0.1f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_infonce_workspace_size(2, 4, -1), 0);
    free(ws);
}

// ---------------------------------------------------------------- MoCo v3

static float mocov3_run(float *dq, float *accuracy, const float *q, const float *k, int64_t N,
                        int64_t M, int64_t first, int64_t D, float tau)
{
    float *ws = sslc_aligned_alloc(sslc_mocov3_workspace_size(N, M, D));
    assert_non_null(ws);
    float loss = NAN;
    assert_int_equal(sslc_mocov3_forward(&loss, accuracy, ws, q, k, N, M, first, D, tau), SSLC_OK);
    if (dq) {
        memset(dq, 0, (size_t)(N * D) * sizeof *dq);
        sslc_mocov3_backward(dq, ws, 1.0f, N, M, D);
    }
    free(ws);
    return loss;
}

// Fraction of queries whose positive cosine beats every other key's
// (the lowest index wins ties), in double.
static double mocov3_accuracy(const double *q, const double *k, int64_t N, int64_t M,
                              int64_t first, int64_t D)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t best = 0;
        double best_cos = -INFINITY;
        for (int64_t j = 0; j < M; j++) {
            double dot = 0.0, nk = 0.0;
            for (int64_t d = 0; d < D; d++) {
                dot += q[i * D + d] * k[j * D + d];
                nk += k[j * D + d] * k[j * D + d];
            }
            if (dot / sqrt(nk) > best_cos)
                best_cos = dot / sqrt(nk), best = j;
        }
        hits += best == first + i;
    }
    return (double)hits / (double)N;
}

static void mocov3_matches_naive_twin(void **state)
{
    (void)state;
    // {N, M, first, D}: one process (M = N), and a slice of a larger batch.
    const int64_t shapes[][4] = {{1, 1, 0, 3}, {5, 5, 0, 7}, {4, 12, 8, 16}, {16, 64, 16, 32}};
    const float taus[] = {0.1f, 0.2f, 1.0f};
    for (size_t s = 0; s < 4; s++) {
        for (size_t t = 0; t < 3; t++) {
            int64_t N = shapes[s][0], M = shapes[s][1], first = shapes[s][2], D = shapes[s][3];
            float *q = sslc_test_randn((size_t)(N * D), 500 + s, 2.0);
            float *k = sslc_test_randn((size_t)(M * D), 600 + s, 1.0);
            float *dq = malloc((size_t)(N * D) * sizeof *dq);
            double *qd = to_double(q, N * D), *kd = to_double(k, M * D), ref;
            double *dqd = calloc((size_t)(N * D), sizeof *dqd);
            float acc = -1.0f, loss = mocov3_run(dq, &acc, q, k, N, M, first, D, taus[t]);
            assert_int_equal(sslc_mocov3_reference(&ref, dqd, qd, kd, N, M, first, D, taus[t]),
                             SSLC_OK);
            assert_true(fabs(acc - mocov3_accuracy(qd, kd, N, M, first, D)) < 1e-6);
            float ref_loss = (float)ref, *ref_dq = to_float(dqd, N * D);
            char what[64];
            snprintf(what, sizeof what, "mocov3 loss M=%lld tau=%g", (long long)M, taus[t]);
            sslc_assert_close(what, &loss, &ref_loss, 1, 1e-5, 1e-5);
            snprintf(what, sizeof what, "mocov3 dq M=%lld tau=%g", (long long)M, taus[t]);
            sslc_assert_close(what, dq, ref_dq, (size_t)(N * D), 1e-5, 1e-3);
            if (M == 1) // the positive alone: the cross-entropy is 0
                assert_true(loss == 0.0f);
            free(q), free(k), free(dq), free(qd), free(kd), free(dqd), free(ref_dq);
        }
    }
}

// Each query equal to its positive and orthogonal to the other keys:
// logits_i = 1/tau at the positive, 0 elsewhere, so
// ctr = 2 tau [log(e^{1/tau} + M - 1) - 1/tau]; the queries are at
// first = 2 of M = 5 keys (a process's slice of the batch).
static void mocov3_has_the_closed_form_on_orthogonal_keys(void **state)
{
    (void)state;
    enum { N = 2, M = 5, D = 8, FIRST = 2 };
    float q[N * D] = {0}, k[M * D] = {0};
    for (int j = 0; j < M; j++)
        k[j * D + j] = 0.5f + (float)j;
    for (int i = 0; i < N; i++)
        q[i * D + FIRST + i] = 3.0f;
    const double tau = 0.2;
    float acc = 0.0f, loss = mocov3_run(NULL, &acc, q, k, N, M, FIRST, D, (float)tau);
    float expect = (float)(2.0 * tau * (log(exp(1.0 / tau) + M - 1) - 1.0 / tau));
    sslc_assert_close("mocov3 orthogonal closed form", &loss, &expect, 1, 1e-6, 1e-5);
    assert_true(acc == 1.0f);
    // The same keys with the positives elsewhere: no query finds its own.
    loss = mocov3_run(NULL, &acc, q, k, N, M, 0, D, (float)tau);
    assert_true(acc == 0.0f);
    expect = (float)(2.0 * tau * (log(exp(1.0 / tau) + M - 1)));
    sslc_assert_close("mocov3 orthogonal, wrong positives", &loss, &expect, 1, 1e-6, 1e-5);
}

// The backward accumulates, scales by dloss and may run twice on one forward.
static void mocov3_backward_accumulates_and_scales(void **state)
{
    (void)state;
    const int64_t N = 4, M = 8, D = 6;
    float *q = sslc_test_randn((size_t)(N * D), 7, 1.0);
    float *k = sslc_test_randn((size_t)(M * D), 8, 1.0);
    float *dq = malloc((size_t)(N * D) * sizeof *dq);
    mocov3_run(dq, NULL, q, k, N, M, 4, D, 0.2f);
    float *ws = sslc_aligned_alloc(sslc_mocov3_workspace_size(N, M, D));
    float *dq2 = calloc((size_t)(N * D), sizeof *dq2), loss;
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, q, k, N, M, 4, D, 0.2f), SSLC_OK);
    sslc_mocov3_backward(dq2, ws, 0.25f, N, M, D);
    sslc_mocov3_backward(dq2, ws, 0.75f, N, M, D);
    sslc_assert_close("mocov3 dq accumulated", dq2, dq, (size_t)(N * D), 1e-7, 1e-5);
    free(q), free(k), free(dq), free(dq2), free(ws);
}

static void mocov3_rejects_impossible_arguments(void **state)
{
    (void)state;
    float x[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, loss;
    float *ws = sslc_aligned_alloc(sslc_mocov3_workspace_size(2, 4, 4));
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, x, x, 2, 4, 0, 4, 0.0f),
                     SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "temperature"));
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, x, x, 2, 4, 3, 4, 0.2f),
                     SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "positives"));
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, x, x, 0, 4, 0, 4, 0.2f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_mocov3_forward(&loss, NULL, ws, x, x, 2, 4, -1, 4, 0.2f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_mocov3_workspace_size(2, 0, 4), 0);
    free(ws);
}

// ---------------------------------------------------------------- queue

static void queue_starts_with_random_unit_keys(void **state)
{
    (void)state;
    sslc_rng r1 = sslc_rng_make(5, 0, 0, 0, 0), r2 = sslc_rng_make(5, 0, 0, 0, 0);
    sslc_queue *a = NULL, *b = NULL;
    assert_int_equal(sslc_queue_create(&a, 50, 16, &r1), SSLC_OK);
    assert_int_equal(sslc_queue_create(&b, 50, 16, &r2), SSLC_OK);
    assert_int_equal(sslc_queue_pointer(a), 0);
    assert_memory_equal(sslc_queue_data(a), sslc_queue_data(b), 50 * 16 * sizeof(float));
    double mean = 0.0;
    for (int i = 0; i < 50; i++) {
        double ss = 0.0;
        for (int d = 0; d < 16; d++) {
            float v = sslc_queue_data(a)[i * 16 + d];
            ss += (double)v * v;
            mean += v;
        }
        assert_true(fabs(ss - 1.0) < 1e-5);
    }
    assert_true(fabs(mean / (50 * 16)) < 0.05); // random directions, not a constant
    sslc_queue *bad = (sslc_queue *)1;
    assert_int_equal(sslc_queue_create(&bad, 0, 16, &r1), SSLC_ERR_INVALID);
    assert_null(bad);
    sslc_queue_destroy(a);
    sslc_queue_destroy(b);
    sslc_queue_destroy(NULL);
}

// Key number t (over the whole run) is the row (t, t, ...): after each step
// the queue must hold exactly the last K keys, key t at row t mod K.
static void check_queue_holds_last_keys(sslc_queue *q, int64_t written)
{
    const int64_t K = q->K, D = q->D;
    for (int64_t row = 0; row < K; row++) {
        // The newest key that landed on this row.
        int64_t t = written - 1 - ((written - 1 - row) % K + K) % K;
        float expect = t >= 0 ? (float)t : -1.0f; // -1: still the initial key
        if (t < 0)
            continue;
        for (int64_t d = 0; d < D; d++)
            if (sslc_queue_data(q)[row * D + d] != expect)
                fail_msg("after %lld keys row %lld holds %g, expected key %g", (long long)written,
                         (long long)row, sslc_queue_data(q)[row * D + d], expect);
    }
    assert_int_equal(sslc_queue_pointer(q), written % K);
}

static void queue_wraps_without_losing_or_duplicating_keys(void **state)
{
    (void)state;
    const int64_t K = 10, D = 3;
    sslc_rng r = sslc_rng_make(1, 0, 0, 0, 0);
    sslc_queue *q = NULL;
    assert_int_equal(sslc_queue_create(&q, K, D, &r), SSLC_OK);
    float keys[25 * 3];
    int64_t written = 0;
    // Odd sizes that do not divide K, one that equals it, and larger ones.
    const int64_t sizes[] = {3, 7, 4, 1, 9, 10, 3, 13, 0, 25, 2, 6, 5, 11, 3, 3, 3, 3, 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int64_t i = 0; i < sizes[s]; i++)
            for (int64_t d = 0; d < D; d++)
                keys[i * D + d] = (float)(written + i);
        assert_int_equal(sslc_queue_enqueue(q, keys, sizes[s]), SSLC_OK);
        written += sizes[s];
        check_queue_holds_last_keys(q, written);
    }
    // Once full, every key 0..K-1 steps back is present exactly once.
    int seen[10] = {0};
    for (int64_t row = 0; row < K; row++) {
        int64_t t = (int64_t)sslc_queue_data(q)[row * D];
        assert_true(t >= written - K && t < written);
        seen[t - (written - K)]++;
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(sslc_queue_enqueue(q, keys, -1), SSLC_ERR_INVALID);
    sslc_queue_destroy(q);
}

static void queue_pointer_round_trips_for_checkpoints(void **state)
{
    (void)state;
    sslc_rng r = sslc_rng_make(2, 0, 0, 0, 0);
    sslc_queue *a = NULL, *b = NULL;
    assert_int_equal(sslc_queue_create(&a, 8, 4, &r), SSLC_OK);
    assert_int_equal(sslc_queue_create(&b, 8, 4, &r), SSLC_OK);
    float keys[5 * 4];
    for (int i = 0; i < 20; i++)
        keys[i] = (float)i;
    assert_int_equal(sslc_queue_enqueue(a, keys, 5), SSLC_OK);
    // "Save" a, "load" into b, then continue both identically.
    memcpy(sslc_queue_data(b), sslc_queue_data(a), 8 * 4 * sizeof(float));
    assert_int_equal(sslc_queue_set_pointer(b, sslc_queue_pointer(a)), SSLC_OK);
    assert_int_equal(sslc_queue_enqueue(a, keys, 5), SSLC_OK);
    assert_int_equal(sslc_queue_enqueue(b, keys, 5), SSLC_OK);
    assert_int_equal(sslc_queue_pointer(b), 2);
    assert_memory_equal(sslc_queue_data(a), sslc_queue_data(b), 8 * 4 * sizeof(float));
    assert_int_equal(sslc_queue_set_pointer(b, 8), SSLC_ERR_INVALID);
    assert_int_equal(sslc_queue_set_pointer(b, -1), SSLC_ERR_INVALID);
    sslc_queue_destroy(a);
    sslc_queue_destroy(b);
}

// ---------------------------------------------------------------- distillation

// Fast path: targets from the teacher, loss, agreement and dstudent (zeroed first).
static double distill_run(float *ds, int64_t *agree, const float *student, const float *teacher,
                          int64_t N, int64_t K, float tau)
{
    size_t n = (size_t)(N * K);
    float *targets = malloc(n * sizeof *targets), *probs = malloc(n * sizeof *probs);
    assert_true(targets && probs);
    double loss = NAN;
    assert_int_equal(sslc_distill_targets(targets, teacher, N, K, tau), SSLC_OK);
    assert_int_equal(sslc_distill_forward(&loss, agree, probs, student, targets, N, K, tau),
                     SSLC_OK);
    if (ds) {
        memset(ds, 0, n * sizeof *ds);
        sslc_distill_backward(ds, probs, targets, 1.0f, N, K, tau);
    }
    free(targets), free(probs);
    return loss;
}

static void distill_matches_naive_twin(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{1, 2}, {5, 3}, {32, 10}, {129, 100}};
    const float taus[] = {0.1f, 1.0f, 4.0f};
    for (size_t s = 0; s < 4; s++) {
        for (size_t t = 0; t < 3; t++) {
            int64_t N = shapes[s][0], K = shapes[s][1], n = N * K;
            float *z = sslc_test_randn((size_t)n, 200 + s, 2.0);
            float *y = sslc_test_randn((size_t)n, 300 + s, 3.0);
            float *ds = malloc((size_t)n * sizeof *ds);
            double *zd = to_double(z, n), *yd = to_double(y, n);
            double *dsd = calloc((size_t)n, sizeof *dsd), ref;
            float loss = (float)distill_run(ds, NULL, z, y, N, K, taus[t]);
            assert_int_equal(sslc_distill_reference(&ref, dsd, zd, yd, N, K, taus[t]), SSLC_OK);
            float ref_loss = (float)ref, *ref_ds = to_float(dsd, n);
            char what[64];
            snprintf(what, sizeof what, "distill loss N=%lld K=%lld tau=%g", (long long)N,
                     (long long)K, taus[t]);
            sslc_assert_close(what, &loss, &ref_loss, 1, 1e-5, 1e-5);
            snprintf(what, sizeof what, "distill grad N=%lld K=%lld tau=%g", (long long)N,
                     (long long)K, taus[t]);
            sslc_assert_close(what, ds, ref_ds, (size_t)n, 1e-6, 1e-3);
            free(z), free(y), free(ds), free(zd), free(yd), free(dsd), free(ref_ds);
        }
    }
}

// A student equal to its teacher: the loss is the teacher's entropy
// -sum p log p (not 0), the gradient 0 and every argmax agrees; against a
// uniform student (constant logits), log K whatever the teacher.
static void distill_of_the_teacher_itself_is_its_entropy(void **state)
{
    (void)state;
    const int64_t N = 6, K = 5, n = N * K;
    const float tau = 0.5f;
    float *t = sslc_test_randn((size_t)n, 11, 2.0), *ds = malloc((size_t)n * sizeof *ds);
    int64_t agree = -1;
    float loss = (float)distill_run(ds, &agree, t, t, N, K, tau);
    double h = 0.0;
    for (int64_t i = 0; i < N; i++) {
        double m = -INFINITY, z = 0.0;
        for (int64_t k = 0; k < K; k++)
            m = fmax(m, t[i * K + k] / tau);
        for (int64_t k = 0; k < K; k++)
            z += exp(t[i * K + k] / tau - m);
        for (int64_t k = 0; k < K; k++) {
            double p = exp(t[i * K + k] / tau - m) / z;
            h -= p * log(p) / (double)N;
        }
    }
    float want = (float)h, zero[30] = {0};
    sslc_assert_close("distill of the teacher itself", &loss, &want, 1, 1e-6, 1e-5);
    sslc_assert_close("distill grad at the teacher", ds, zero, (size_t)n, 1e-7, 0);
    assert_int_equal(agree, N);
    float flat[30], logk = logf((float)K);
    for (int64_t i = 0; i < n; i++)
        flat[i] = 0.25f;
    loss = (float)distill_run(NULL, NULL, flat, t, N, K, tau);
    sslc_assert_close("distill of a uniform student", &loss, &logk, 1, 1e-6, 1e-6);
    free(t), free(ds);
}

// Logits 200 apart at tau 0.05: probabilities underflow to 0, the loss
// stays finite and equal to the twin's.
static void distill_is_stable_for_large_logits(void **state)
{
    (void)state;
    const int64_t N = 4, K = 6, n = N * K;
    float *z = sslc_test_randn((size_t)n, 21, 100.0), *y = sslc_test_randn((size_t)n, 22, 100.0);
    float *ds = malloc((size_t)n * sizeof *ds);
    float loss = (float)distill_run(ds, NULL, z, y, N, K, 0.05f);
    assert_true(isfinite(loss));
    double *zd = to_double(z, n), *yd = to_double(y, n), *dsd = calloc((size_t)n, sizeof *dsd), ref;
    assert_int_equal(sslc_distill_reference(&ref, dsd, zd, yd, N, K, 0.05), SSLC_OK);
    float ref_loss = (float)ref, *ref_ds = to_float(dsd, n);
    sslc_assert_close("distill large logits loss", &loss, &ref_loss, 1, 1e-3, 1e-5);
    sslc_assert_close("distill large logits grad", ds, ref_ds, (size_t)n, 1e-6, 1e-3);
    free(z), free(y), free(ds), free(zd), free(yd), free(dsd), free(ref_ds);
}

static void distill_backward_accumulates_and_scales(void **state)
{
    (void)state;
    const int64_t N = 7, K = 4, n = N * K;
    const float tau = 2.0f;
    float *z = sslc_test_randn((size_t)n, 31, 1.0), *y = sslc_test_randn((size_t)n, 32, 1.0);
    float *base = sslc_test_randn((size_t)n, 33, 1.0), *ds = malloc((size_t)n * sizeof *ds);
    float *targets = malloc((size_t)n * sizeof *targets), *probs = malloc((size_t)n * sizeof *probs);
    float *acc = malloc((size_t)n * sizeof *acc);
    distill_run(ds, NULL, z, y, N, K, tau);
    double loss;
    assert_int_equal(sslc_distill_targets(targets, y, N, K, tau), SSLC_OK);
    assert_int_equal(sslc_distill_forward(&loss, NULL, probs, z, targets, N, K, tau), SSLC_OK);
    memcpy(acc, base, (size_t)n * sizeof *acc);
    // Twice with scale 0.5 and 1.5 onto a non-zero gradient: base + 2 ds.
    sslc_distill_backward(acc, probs, targets, 0.5f, N, K, tau);
    sslc_distill_backward(acc, probs, targets, 1.5f, N, K, tau);
    for (int64_t i = 0; i < n; i++)
        base[i] += 2.0f * ds[i];
    sslc_assert_close("distill backward += with scale", acc, base, (size_t)n, 1e-6, 1e-5);
    free(z), free(y), free(base), free(ds), free(targets), free(probs), free(acc);
}

static void distill_rejects_impossible_arguments(void **state)
{
    (void)state;
    float z[6] = {1, 2, 3, 4, 5, 6}, p[6];
    double loss;
    assert_int_equal(sslc_distill_targets(p, z, 2, 3, 0.0f), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "temperature"));
    assert_int_equal(sslc_distill_targets(p, z, 2, 3, NAN), SSLC_ERR_INVALID);
    assert_int_equal(sslc_distill_forward(&loss, NULL, p, z, z, 0, 3, 1.0f), SSLC_ERR_INVALID);
    assert_int_equal(sslc_distill_forward(&loss, NULL, p, z, z, 2, 3, -1.0f), SSLC_ERR_INVALID);
}

// ---------------------------------------------------------------- fixtures

static const char *key(const char *fmt, int a)
{
    static char buf[64];
    snprintf(buf, sizeof buf, fmt, a);
    return buf;
}

static void ntxent_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_ntxent.h5";
    int cases = (int)sslc_fixture_scalar(file, "cases");
    assert_true(cases >= 9);
    for (int c = 0; c < cases; c++) {
        float *shape = sslc_fixture_floats(file, key("case%d/shape", c), NULL);
        int64_t two_n = (int64_t)shape[0], D = (int64_t)shape[1];
        float tau = (float)sslc_fixture_scalar(file, key("case%d/tau", c));
        float want = (float)sslc_fixture_scalar(file, key("case%d/loss", c));
        float want_acc = (float)sslc_fixture_scalar(file, key("case%d/accuracy", c));
        size_t n = 0;
        float *z = sslc_fixture_floats(file, key("case%d/z", c), &n);
        float *grad = sslc_fixture_floats(file, key("case%d/grad", c), NULL);
        assert_int_equal(n, (size_t)(two_n * D));
        float *dz = malloc(n * sizeof *dz), acc = -1.0f;
        float loss = ntxent_run(dz, &acc, z, two_n, D, tau);
        char what[80];
        snprintf(what, sizeof what, "torch ntxent loss 2N=%lld D=%lld tau=%g", (long long)two_n,
                 (long long)D, tau);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "torch ntxent grad 2N=%lld D=%lld tau=%g", (long long)two_n,
                 (long long)D, tau);
        sslc_assert_close(what, dz, grad, n, 1e-6, 1e-3);
        assert_true(acc == want_acc);
        free(shape), free(z), free(grad), free(dz);
    }
}

static void ntxent_multi_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_ntxent.h5";
    int cases = (int)sslc_fixture_scalar(file, "multi_cases");
    assert_true(cases >= 12);
    for (int c = 0; c < cases; c++) {
        float *shape = sslc_fixture_floats(file, key("multi%d/shape", c), NULL);
        int64_t M = (int64_t)shape[0], rows = M * (int64_t)shape[1], D = (int64_t)shape[2];
        float tau = (float)sslc_fixture_scalar(file, key("multi%d/tau", c));
        float want = (float)sslc_fixture_scalar(file, key("multi%d/loss", c));
        float want_acc = (float)sslc_fixture_scalar(file, key("multi%d/accuracy", c));
        size_t n = 0;
        float *z = sslc_fixture_floats(file, key("multi%d/z", c), &n);
        float *grad = sslc_fixture_floats(file, key("multi%d/grad", c), NULL);
        assert_int_equal(n, (size_t)(rows * D));
        float *dz = malloc(n * sizeof *dz), acc = -1.0f;
        float loss = ntxent_multi_run(dz, &acc, z, rows, M, D, tau);
        char what[80];
        snprintf(what, sizeof what, "torch ntxent-multi loss M=%lld rows=%lld D=%lld tau=%g",
                 (long long)M, (long long)rows, (long long)D, tau);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "torch ntxent-multi grad M=%lld rows=%lld D=%lld tau=%g",
                 (long long)M, (long long)rows, (long long)D, tau);
        sslc_assert_close(what, dz, grad, n, 1e-6, 1e-3);
        assert_true(acc == want_acc);
        free(shape), free(z), free(grad), free(dz);
    }
}

static void infonce_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_infonce.h5";
    int cases = (int)sslc_fixture_scalar(file, "cases");
    assert_true(cases >= 9);
    for (int c = 0; c < cases; c++) {
        float *shape = sslc_fixture_floats(file, key("case%d/shape", c), NULL);
        int64_t N = (int64_t)shape[0], D = (int64_t)shape[1], K = (int64_t)shape[2];
        float tau = (float)sslc_fixture_scalar(file, key("case%d/tau", c));
        float want = (float)sslc_fixture_scalar(file, key("case%d/loss", c));
        float want_acc = (float)sslc_fixture_scalar(file, key("case%d/accuracy", c));
        float *q = sslc_fixture_floats(file, key("case%d/q", c), NULL);
        float *k = sslc_fixture_floats(file, key("case%d/k", c), NULL);
        size_t nq = 0;
        float *queue = sslc_fixture_floats(file, key("case%d/queue", c), &nq);
        assert_int_equal(nq, (size_t)(K * D));
        float *grad = sslc_fixture_floats(file, key("case%d/grad", c), NULL);
        float *dq = malloc((size_t)(N * D) * sizeof *dq), acc = -1.0f;
        float loss = infonce_run(dq, &acc, q, k, queue, N, D, K, tau);
        char what[80];
        snprintf(what, sizeof what, "torch infonce loss N=%lld K=%lld tau=%g", (long long)N,
                 (long long)K, tau);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "torch infonce grad N=%lld K=%lld tau=%g", (long long)N,
                 (long long)K, tau);
        sslc_assert_close(what, dq, grad, (size_t)(N * D), 1e-6, 1e-3);
        assert_true(acc == want_acc);
        free(shape), free(q), free(k), free(queue), free(grad), free(dq);
    }
}

static void mocov3_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_mocov3.h5";
    int cases = (int)sslc_fixture_scalar(file, "cases");
    assert_true(cases >= 12);
    for (int c = 0; c < cases; c++) {
        float *shape = sslc_fixture_floats(file, key("case%d/shape", c), NULL);
        int64_t N = (int64_t)shape[0], D = (int64_t)shape[1], R = (int64_t)shape[2];
        int64_t M = R * N, first = (int64_t)shape[3] * N;
        float tau = (float)sslc_fixture_scalar(file, key("case%d/tau", c));
        float want = (float)sslc_fixture_scalar(file, key("case%d/loss", c));
        float want1 = (float)sslc_fixture_scalar(file, key("case%d/loss1", c));
        float *q[2], *k[2], *grad[2];
        size_t nk = 0;
        for (int v = 0; v < 2; v++) {
            q[v] = sslc_fixture_floats(file, v ? key("case%d/q2", c) : key("case%d/q1", c), NULL);
            k[v] = sslc_fixture_floats(file, v ? key("case%d/k2", c) : key("case%d/k1", c), &nk);
            grad[v] = sslc_fixture_floats(file, v ? key("case%d/grad2", c) : key("case%d/grad1", c),
                                          NULL);
        }
        assert_int_equal(nk, (size_t)(M * D));
        // The symmetric loss: ctr(q1, k2) + ctr(q2, k1), two calls.
        float *dq = malloc((size_t)(N * D) * sizeof *dq), loss = 0.0f, terms[2];
        char what[96];
        for (int v = 0; v < 2; v++) {
            float acc = -1.0f;
            terms[v] = mocov3_run(dq, &acc, q[v], k[1 - v], N, M, first, D, tau);
            loss += terms[v];
            float want_acc = (float)sslc_fixture_scalar(
                file, v ? key("case%d/accuracy2", c) : key("case%d/accuracy1", c));
            assert_true(acc == want_acc);
            snprintf(what, sizeof what, "torch mocov3 grad of q%d N=%lld M=%lld tau=%g", v + 1,
                     (long long)N, (long long)M, tau);
            sslc_assert_close(what, dq, grad[v], (size_t)(N * D), 1e-6, 1e-3);
        }
        snprintf(what, sizeof what, "torch mocov3 ctr(q1, k2) N=%lld M=%lld tau=%g", (long long)N,
                 (long long)M, tau);
        sslc_assert_close(what, &terms[0], &want1, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "torch mocov3 symmetric loss N=%lld M=%lld tau=%g",
                 (long long)N, (long long)M, tau);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        for (int v = 0; v < 2; v++)
            free(q[v]), free(k[v]), free(grad[v]);
        free(shape), free(dq);
    }
}

static void distill_matches_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_distill.h5";
    int cases = (int)sslc_fixture_scalar(file, "cases");
    assert_true(cases >= 9);
    for (int c = 0; c < cases; c++) {
        float *shape = sslc_fixture_floats(file, key("case%d/shape", c), NULL);
        int64_t N = (int64_t)shape[0], K = (int64_t)shape[1];
        float tau = (float)sslc_fixture_scalar(file, key("case%d/tau", c));
        float want = (float)sslc_fixture_scalar(file, key("case%d/loss", c));
        float want_agree = (float)sslc_fixture_scalar(file, key("case%d/agree", c));
        size_t n = 0;
        float *s = sslc_fixture_floats(file, key("case%d/student", c), &n);
        float *t = sslc_fixture_floats(file, key("case%d/teacher", c), NULL);
        float *grad = sslc_fixture_floats(file, key("case%d/grad", c), NULL);
        assert_int_equal(n, (size_t)(N * K));
        float *ds = malloc(n * sizeof *ds);
        int64_t agree = -1;
        float loss = (float)distill_run(ds, &agree, s, t, N, K, tau);
        char what[80];
        snprintf(what, sizeof what, "torch distill loss N=%lld K=%lld tau=%g", (long long)N,
                 (long long)K, tau);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "torch distill grad N=%lld K=%lld tau=%g", (long long)N,
                 (long long)K, tau);
        sslc_assert_close(what, ds, grad, n, 1e-6, 1e-3);
        assert_int_equal(agree, (int64_t)want_agree);
        free(shape), free(s), free(t), free(grad), free(ds);
    }
}

// MoCo's loop over several steps with a batch that does not divide K:
// logits against the current queue, backward, enqueue the normalised keys.
static void infonce_queue_evolves_like_pytorch(void **state)
{
    (void)state;
    const char *file = "losses_infonce.h5";
    float *shape = sslc_fixture_floats(file, "steps/shape", NULL);
    int64_t N = (int64_t)shape[0], D = (int64_t)shape[1], K = (int64_t)shape[2];
    int steps = (int)shape[3];
    float tau = (float)sslc_fixture_scalar(file, "steps/tau");
    sslc_rng r = sslc_rng_make(0, 0, 0, 0, 0);
    sslc_queue *queue = NULL;
    assert_int_equal(sslc_queue_create(&queue, K, D, &r), SSLC_OK);
    float *q0 = sslc_fixture_floats(file, "steps/queue0", NULL);
    memcpy(sslc_queue_data(queue), q0, (size_t)(K * D) * sizeof(float));
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, D, K));
    float *dq = malloc((size_t)(N * D) * sizeof *dq);
    for (int s = 0; s < steps; s++) {
        float *q = sslc_fixture_floats(file, key("steps/q%d", s), NULL);
        float *k = sslc_fixture_floats(file, key("steps/k%d", s), NULL);
        float *grad = sslc_fixture_floats(file, key("steps/grad%d", s), NULL);
        float want = (float)sslc_fixture_scalar(file, key("steps/loss%d", s));
        float *want_queue = sslc_fixture_floats(file, key("steps/queue%d", s + 1), NULL);
        float loss;
        assert_int_equal(sslc_infonce_forward(&loss, NULL, ws, q, k, sslc_queue_data(queue), N,
                                              D, K, tau),
                         SSLC_OK);
        // Enqueue before the backward, as MoCo does inside its forward.
        assert_int_equal(sslc_queue_enqueue(queue, sslc_infonce_keys(ws, N, D, K), N), SSLC_OK);
        memset(dq, 0, (size_t)(N * D) * sizeof *dq);
        sslc_infonce_backward(dq, ws, 1.0f, N, D, K);
        char what[64];
        snprintf(what, sizeof what, "step %d loss", s);
        sslc_assert_close(what, &loss, &want, 1, 1e-5, 1e-5);
        snprintf(what, sizeof what, "step %d grad", s);
        sslc_assert_close(what, dq, grad, (size_t)(N * D), 1e-6, 1e-3);
        snprintf(what, sizeof what, "step %d queue", s);
        sslc_assert_close(what, sslc_queue_data(queue), want_queue, (size_t)(K * D), 1e-6, 1e-5);
        free(q), free(k), free(grad), free(want_queue);
    }
    assert_int_equal(sslc_queue_pointer(queue), (int64_t)sslc_fixture_scalar(file, "steps/ptr"));
    free(shape), free(q0), free(ws), free(dq);
    sslc_queue_destroy(queue);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(ntxent_matches_naive_twin),
        cmocka_unit_test(ntxent_has_the_closed_form_on_orthogonal_pairs),
        cmocka_unit_test(ntxent_is_stable_for_small_tau_and_zero_rows),
        cmocka_unit_test(ntxent_backward_accumulates_and_scales),
        cmocka_unit_test(ntxent_rejects_impossible_arguments),
        cmocka_unit_test(ntxent_multi_matches_naive_twin),
        cmocka_unit_test(ntxent_multi_has_the_closed_form_on_orthogonal_images),
        cmocka_unit_test(ntxent_multi_rejects_impossible_arguments),
        cmocka_unit_test(infonce_matches_naive_twin),
        cmocka_unit_test(infonce_has_the_closed_form_on_orthogonal_keys),
        cmocka_unit_test(infonce_backward_does_not_read_the_queue),
        cmocka_unit_test(infonce_rejects_impossible_arguments),
        cmocka_unit_test(mocov3_matches_naive_twin),
        cmocka_unit_test(mocov3_has_the_closed_form_on_orthogonal_keys),
        cmocka_unit_test(mocov3_backward_accumulates_and_scales),
        cmocka_unit_test(mocov3_rejects_impossible_arguments),
        cmocka_unit_test(queue_starts_with_random_unit_keys),
        cmocka_unit_test(queue_wraps_without_losing_or_duplicating_keys),
        cmocka_unit_test(queue_pointer_round_trips_for_checkpoints),
        cmocka_unit_test(distill_matches_naive_twin),
        cmocka_unit_test(distill_of_the_teacher_itself_is_its_entropy),
        cmocka_unit_test(distill_is_stable_for_large_logits),
        cmocka_unit_test(distill_backward_accumulates_and_scales),
        cmocka_unit_test(distill_rejects_impossible_arguments),
    };
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(ntxent_matches_pytorch),
        cmocka_unit_test(ntxent_multi_matches_pytorch),
        cmocka_unit_test(infonce_matches_pytorch),
        cmocka_unit_test(infonce_queue_evolves_like_pytorch),
        cmocka_unit_test(mocov3_matches_pytorch),
        cmocka_unit_test(distill_matches_pytorch),
    };
    const sslc_test_group groups[] = {
        SSLC_GROUP("unit", unit),
        SSLC_GROUP("fixture", fixture),
    };
    return sslc_test_main(argc, argv, groups, 2);
}
