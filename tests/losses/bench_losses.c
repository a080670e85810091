// Time per call of the losses at training sizes (not a test: tests never
// assert on time). Prints the median of 15 calls after 3 warm-up calls.
//   flock /tmp/sslc-cpu.lock build/tests/losses/bench_losses
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "losses/ntxent.h"
#include "losses/queue.h"
#include "src/core/gemm.h"
#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/eval/knn.h"
#include "tests/harness.h"

enum { WARMUP = 3, REPS = 15 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *randn(int64_t n, uint64_t seed)
{
    float *x = sslc_aligned_alloc((size_t)n * sizeof *x);
    if (!x)
        exit(1);
    sslc_test_fill_randn(x, (size_t)n, seed, 1.0);
    return x;
}

static void bench_ntxent(int64_t pairs, int64_t D)
{
    const int64_t two_n = 2 * pairs;
    float *z = randn(two_n * D, 1), *dz = randn(two_n * D, 2);
    float *ws = sslc_aligned_alloc(sslc_ntxent_workspace_size(two_n, D));
    double t[REPS], tf[REPS];
    for (int r = 0; r < WARMUP + REPS; r++) {
        float loss;
        double t0 = sslc_now();
        if (sslc_ntxent_forward(&loss, NULL, ws, z, two_n, D, 0.5f) != SSLC_OK)
            exit(1);
        double t1 = sslc_now();
        sslc_ntxent_backward(dz, ws, 1.0f, two_n, D);
        double t2 = sslc_now();
        if (r >= WARMUP) {
            tf[r - WARMUP] = t1 - t0;
            t[r - WARMUP] = t2 - t0;
        }
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    qsort(tf, REPS, sizeof *tf, cmp_double);
    printf("ntxent  2N=%lld D=%lld: forward %.2f ms, forward+backward %.2f ms\n",
           (long long)two_n, (long long)D, 1e3 * tf[REPS / 2], 1e3 * t[REPS / 2]);
    free(z), free(dz), free(ws);
}

static void bench_infonce(int64_t N, int64_t D, int64_t K)
{
    float *q = randn(N * D, 3), *k = randn(N * D, 4), *dq = randn(N * D, 5);
    float *ws = sslc_aligned_alloc(sslc_infonce_workspace_size(N, D, K));
    sslc_rng rng = sslc_rng_make(6, 0, 0, 0, 0);
    sslc_queue *queue = NULL;
    if (!ws || sslc_queue_create(&queue, K, D, &rng) != SSLC_OK)
        exit(1);
    double t[REPS], tf[REPS];
    for (int r = 0; r < WARMUP + REPS; r++) {
        float loss;
        double t0 = sslc_now();
        if (sslc_infonce_forward(&loss, NULL, ws, q, k, sslc_queue_data(queue), N, D, K,
                                 0.2f) != SSLC_OK)
            exit(1);
        double t1 = sslc_now();
        sslc_queue_enqueue(queue, sslc_infonce_keys(ws, N, D, K), N);
        sslc_infonce_backward(dq, ws, 1.0f, N, D, K);
        double t2 = sslc_now();
        if (r >= WARMUP) {
            tf[r - WARMUP] = t1 - t0;
            t[r - WARMUP] = t2 - t0;
        }
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    qsort(tf, REPS, sizeof *tf, cmp_double);
    printf("infonce N=%lld D=%lld K=%lld: forward %.2f ms, forward+enqueue+backward %.2f ms\n",
           (long long)N, (long long)D, (long long)K, 1e3 * tf[REPS / 2], 1e3 * t[REPS / 2]);
    free(q), free(k), free(dq), free(ws);
    sslc_queue_destroy(queue);
}

// The kNN monitor at Fashion-MNIST scale (60k bank) for M queries, one call.
static void bench_knn(int64_t M, int64_t ntrain, int64_t D)
{
    float *q = randn(M * D, 7), *bank = randn(ntrain * D, 8);
    int64_t *labels = malloc((size_t)ntrain * sizeof *labels);
    void *ws = sslc_aligned_alloc(sslc_knn_workspace_size(ntrain, 10, SSLC_KNN_DEFAULT_K));
    if (!labels || !ws)
        exit(1);
    for (int64_t i = 0; i < ntrain; i++)
        labels[i] = i % 10;
    sslc_knn_normalize(q, M, D);
    sslc_knn_normalize(bank, ntrain, D);
    double t0 = sslc_now();
    if (sslc_knn_classify(NULL, NULL, ws, q, NULL, bank, labels, M, ntrain, D, 10,
                          SSLC_KNN_DEFAULT_K, SSLC_KNN_DEFAULT_TAU) != SSLC_OK)
        exit(1);
    double t = sslc_now() - t0;
    printf("knn     M=%lld ntrain=%lld D=%lld k=%d: %.1f ms (%.1f us per query)\n", (long long)M,
           (long long)ntrain, (long long)D, SSLC_KNN_DEFAULT_K, 1e3 * t, 1e6 * t / (double)M);
    free(q), free(bank), free(labels), free(ws);
}

int main(void)
{
    printf("gemm backend %s, %d threads\n", sslc_gemm_backend(), sslc_get_threads());
    bench_ntxent(256, 128);
    bench_infonce(256, 128, 4096);
    bench_infonce(256, 128, 65536);
    bench_knn(1024, 60000, 512);
    return 0;
}
