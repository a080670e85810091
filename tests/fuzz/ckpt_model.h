// The small model of fuzz_ckpt: the checkpoints it starts from (its
// "bases", written by sslc_ckpt_save) and the tables it loads them into. An
// encoder (a 3x3 convolution and a batch norm) and a projector (one linear
// layer), SGD momentum buffers for both, and MoCo's queue and pointer as
// state arrays. Small, but every kind of entry a real checkpoint holds:
// float tensors, an int64 0-dim buffer, model attributes of all three
// types, optimizer groups, state arrays of both dtypes.
#ifndef SSLC_TESTS_FUZZ_CKPT_MODEL_H
#define SSLC_TESTS_FUZZ_CKPT_MODEL_H

#include "src/io/checkpoint.h"

enum { FUZZ_QUEUE_K = 3, FUZZ_QUEUE_D = 2 };

typedef struct fuzz_ckpt_model {
    sslc_params encoder, projector;
    sslc_ckpt_part parts[2];
    float *momentum[2];  // like each part's values
    sslc_ckpt_optim_buffer optim[2];
    float queue[FUZZ_QUEUE_K * FUZZ_QUEUE_D];
    int64_t queue_ptr[1];
    sslc_ckpt_array arrays[2];
    sslc_ckpt_attr attrs[3];
    sslc_ckpt desc; // everything above, method "moco", optimizer "sgd"
} fuzz_ckpt_model;

// Declares and allocates the tables (zero-filled) and fills desc. With
// projector_out other than 3 the projector has another shape (a checkpoint
// of a different model). Returns SSLC_OK or the allocation failure.
sslc_status fuzz_ckpt_model_make(fuzz_ckpt_model *m, int64_t projector_out);
void fuzz_ckpt_model_free(fuzz_ckpt_model *m);

// The bases: 0 the complete MoCo checkpoint (loads into the model), 1 the
// weights only (method simclr, no optimizer, no state), 2 an export of 0's
// encoder, 3 the same as 0 for another model (the projector has 4 outputs).
enum { FUZZ_CKPT_BASES = 4 };
// Writes base k to path (scratch: a path for base 0 when k is 2); the same
// bytes every time.
sslc_status fuzz_ckpt_write_base(int k, const char *path, const char *scratch);

#endif
