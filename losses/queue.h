// The MoCo key queue (He et al. 2020, section 3.1): a ring buffer of the K
// most recent normalised keys, the negatives of InfoNCE.
//
// Keys are stored as rows, data: (K, D) float. MoCo's PyTorch buffer is the
// transpose, `queue` (D, K), next to `queue_ptr`; a checkpoint writer
// transposes. The write pointer is part of the state: save data + pointer
// and restore both to resume exactly.
#ifndef SSLC_LOSSES_QUEUE_H
#define SSLC_LOSSES_QUEUE_H

#include <stdint.h>

#include "src/core/rng.h"
#include "src/core/status.h"

typedef struct sslc_queue {
    int64_t K;   // keys held
    int64_t D;   // key dimension
    int64_t ptr; // next row to overwrite, in [0, K)
    float *data; // (K, D)
} sslc_queue;

// A queue of K keys of dimension D, filled like MoCo's: standard normal
// entries from rng, then each key L2-normalised. K, D >= 1.
sslc_status sslc_queue_create(sslc_queue **out, int64_t K, int64_t D, sslc_rng *rng);
void sslc_queue_destroy(sslc_queue *queue); // NULL-safe

// Writes n keys (n, D) at the pointer and advances it mod K. Call it after
// the logits of the batch are computed. The result is the same as enqueueing
// the keys one at a time: a batch that does not divide K fills the end and
// wraps to the start; a batch larger than K leaves its last K keys. keys
// should be L2-normalised (sslc_infonce_keys gives them) and must not alias
// the queue.
sslc_status sslc_queue_enqueue(sslc_queue *queue, const float *restrict keys, int64_t n);

// The keys, (K, D): read for the logits, written by a checkpoint loader.
float *sslc_queue_data(sslc_queue *queue);
int64_t sslc_queue_pointer(const sslc_queue *queue);
// Restores the pointer from a checkpoint; it must lie in [0, K).
sslc_status sslc_queue_set_pointer(sslc_queue *queue, int64_t ptr);

#endif
