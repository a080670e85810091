// Gradients summed over MPI ranks in buckets while the backward runs: the
// model reports which gradients are final (sslc_grads_ready_fn, from the
// end of the table towards its start, as backward goes), each new range of
// at least a bucket's size is summed with a non-blocking collective, and
// finish launches the rest and waits. Buckets depend only on the table, so
// the sums are the same at every step for a given number of ranks.
#ifndef SSLC_TRAIN_GRAD_SYNC_H
#define SSLC_TRAIN_GRAD_SYNC_H

#include <stdint.h>

#include "src/dist/dist.h"
#include "src/nn/params.h"

enum { SSLC_GRAD_SYNC_MAX_BUCKETS = 64 };

typedef struct sslc_grad_sync {
    float *grads;
    int64_t pending;     // gradients [0, pending) not yet being summed
    int64_t bucket;      // floats a bucket holds at least (the last one excepted)
    sslc_dist_request *requests[SSLC_GRAD_SYNC_MAX_BUCKETS];
    int n_requests;
    sslc_status status;  // the first failure of a launch, reported by finish
} sslc_grad_sync;

// Starts a step's sums over the gradients of params. bucket_floats: the
// smallest bucket (25 MB, PyTorch DDP's default, is 6.5M floats).
void sslc_grad_sync_begin(sslc_grad_sync *s, sslc_params *params, int64_t bucket_floats);
// sslc_grads_ready_fn: gradients from `from` on are final.
void sslc_grad_sync_ready(void *self, int64_t from);
// Sums what is left and waits for every bucket.
sslc_status sslc_grad_sync_finish(sslc_grad_sync *s);

#endif
