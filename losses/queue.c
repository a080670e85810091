#include "losses/queue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sslc_status sslc_queue_create(sslc_queue **out, int64_t K, int64_t D, sslc_rng *rng)
{
    *out = NULL;
    if (K < 1 || D < 1)
        return sslc_error(SSLC_ERR_INVALID, "queue: impossible size K=%lld D=%lld (need >= 1)",
                          (long long)K, (long long)D);
    sslc_queue *q = sslc_calloc(1, sizeof *q);
    if (!q)
        return SSLC_ERR_NOMEM;
    q->data = sslc_aligned_alloc((size_t)(K * D) * sizeof(float));
    if (!q->data) {
        free(q);
        return SSLC_ERR_NOMEM;
    }
    q->K = K;
    q->D = D;
    q->ptr = 0;
    // MoCo: torch.randn(dim, K) then normalize(dim=0), i.e. every key a random
    // direction on the unit sphere.
    for (int64_t i = 0; i < K; i++) {
        float *row = q->data + i * D;
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++) {
            row[d] = (float)sslc_rng_normal(rng);
            ss += (double)row[d] * row[d];
        }
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int64_t d = 0; d < D; d++)
            row[d] *= inv;
    }
    *out = q;
    return SSLC_OK;
}

void sslc_queue_destroy(sslc_queue *queue)
{
    if (!queue)
        return;
    free(queue->data);
    free(queue);
}

sslc_status sslc_queue_enqueue(sslc_queue *queue, const float *restrict keys, int64_t n)
{
    if (n < 0)
        return sslc_error(SSLC_ERR_INVALID, "queue: cannot enqueue %lld keys", (long long)n);
    const int64_t K = queue->K, D = queue->D;
    // Only the last K keys of an oversized batch survive; key i lands on row
    // (ptr + i) mod K, exactly as if written one by one.
    const int64_t first = n > K ? n - K : 0;
    int64_t count = n - first, at = (queue->ptr + first) % K;
    const float *src = keys + first * D;
    while (count > 0) {
        int64_t run = K - at < count ? K - at : count;
        memcpy(queue->data + at * D, src, (size_t)(run * D) * sizeof(float));
        src += run * D;
        count -= run;
        at = (at + run) % K;
    }
    queue->ptr = (queue->ptr + n) % K;
    return SSLC_OK;
}

float *sslc_queue_data(sslc_queue *queue) { return queue->data; }

int64_t sslc_queue_pointer(const sslc_queue *queue) { return queue->ptr; }

sslc_status sslc_queue_set_pointer(sslc_queue *queue, int64_t ptr)
{
    if (ptr < 0 || ptr >= queue->K)
        return sslc_error(SSLC_ERR_INVALID, "queue: pointer %lld outside [0, %lld)",
                          (long long)ptr, (long long)queue->K);
    queue->ptr = ptr;
    return SSLC_OK;
}
