// The table of named tensors over one contiguous buffer.
//
// Trainable parameters live in one float buffer (`values`), their gradients
// in a second of the same shape (`grads`), and non-trained state (batch-norm
// running statistics, num_batches_tracked) in a third (`buffers`). Each
// tensor has its torchvision state_dict name and PyTorch shape and layout
// (OIHW convolution weights, (out, in) linear weights), so checkpoints are a
// walk over the table. The optimizer, weight-decay exclusions, LARS trust
// ratios and MoCo's momentum update are loops over the same table.
#ifndef SSLC_NN_PARAMS_H
#define SSLC_NN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

enum { SSLC_TENSOR_MAX_DIMS = 4, SSLC_TENSOR_NAME_CAP = 96 };

typedef enum sslc_tensor_kind {
    SSLC_TENSOR_PARAM,  // trained: lives in values, has a gradient
    SSLC_TENSOR_BUFFER, // state: lives in buffers, no gradient
} sslc_tensor_kind;

enum {
    // Biases and batch-norm affine parameters: SimCLR/MoCo exclude them from
    // weight decay and from LARS adaptation.
    SSLC_TENSOR_NO_DECAY = 1u << 0,
    // Held as float, stored as int64 in checkpoints (num_batches_tracked).
    SSLC_TENSOR_INT64 = 1u << 1,
    // A parameter no optimizer updates (MoCo v3's random patch projection):
    // it keeps a gradient, so the layers below it still get theirs.
    SSLC_TENSOR_FROZEN = 1u << 2,
};

typedef struct sslc_tensor {
    char name[SSLC_TENSOR_NAME_CAP];
    int ndim;
    int64_t shape[SSLC_TENSOR_MAX_DIMS];
    int64_t numel;
    int64_t offset; // into values/grads (PARAM) or buffers (BUFFER)
    sslc_tensor_kind kind;
    unsigned flags;
} sslc_tensor;

typedef struct sslc_params {
    sslc_tensor *tensors;
    int64_t count;
    int64_t capacity;
    int64_t n_values;  // floats in values and grads
    int64_t n_buffers; // floats in buffers
    float *values;     // (n_values,)
    float *grads;      // (n_values,)
    float *buffers;    // (n_buffers,)
} sslc_params;

// Declaring is separate from allocating: models declare every tensor first
// (recording the returned offsets), then allocate all three buffers at once.
void sslc_params_init(sslc_params *p);
sslc_status sslc_params_add(sslc_params *p, const char *name, sslc_tensor_kind kind,
                            unsigned flags, int ndim, const int64_t *shape, int64_t *offset);
// Allocates values, grads and buffers, zero-filled.
sslc_status sslc_params_alloc(sslc_params *p);
void sslc_params_free(sslc_params *p); // NULL-safe

// NULL when absent.
const sslc_tensor *sslc_params_find(const sslc_params *p, const char *name);
// The tensor's storage (values or buffers).
float *sslc_params_data(const sslc_params *p, const sslc_tensor *t);
// The tensor's gradient; NULL for buffers.
float *sslc_params_grad(const sslc_params *p, const sslc_tensor *t);

void sslc_params_zero_grad(sslc_params *p);
// Copies values and buffers from src; the tables must match exactly.
sslc_status sslc_params_copy(sslc_params *dst, const sslc_params *src);
// Deep copy of the table with freshly allocated storage holding src's values.
sslc_status sslc_params_clone(sslc_params *dst, const sslc_params *src);

#endif
