// Optimizers over the parameter table (src/nn/params.h): SGD with momentum,
// LARS and AdamW.
//
// They read `grads` and update `values` of the SSLC_TENSOR_PARAM tensors not
// flagged SSLC_TENSOR_FROZEN (whose values and state stay as they are),
// tensor by tensor (buffers such as batch-norm running statistics are never
// touched, nor the padding between tensors). Their state is one or two flat
// buffers with the layout of `values`, so a checkpoint saves state i of
// tensor t at the tensor's offset, under PyTorch's state name
// (`momentum_buffer`, `exp_avg`, `exp_avg_sq`), plus the step count.
//
//   SGD   torch.optim.SGD, dampening 0:  d = g + wd p;  buf = m buf + d;
//         p -= lr (nesterov ? d + m buf : buf).
//   LARS  as SimCLR's TensorFlow LARSOptimizer (You et al. 2017):
//         d = g + wd p;  trust = eta |p| / |d| (1 when either norm is 0);
//         buf = m buf + lr trust d;  p -= nesterov ? m buf + lr trust d : buf.
//         Note buf holds the learning rate, as in SimCLR (not as in SGD).
//   AdamW torch.optim.AdamW: p *= 1 - lr wd;  m1 = b1 m1 + (1-b1) g;
//         m2 = b2 m2 + (1-b2) g^2;  p -= lr/(1-b1^t) m1 / (sqrt(m2)/sqrt(1-b2^t) + eps).
//
// With exclude_no_decay, tensors flagged SSLC_TENSOR_NO_DECAY (biases and
// batch-norm affine parameters) get no weight decay and, for LARS, no trust
// ratio (SimCLR's exclude_from_weight_decay / exclude_from_layer_adaptation).
#ifndef SSLC_OPTIM_OPTIMIZER_H
#define SSLC_OPTIM_OPTIMIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/status.h"
#include "src/nn/params.h"

typedef enum sslc_optim_kind {
    SSLC_OPTIM_SGD,
    SSLC_OPTIM_LARS,
    SSLC_OPTIM_ADAMW,
} sslc_optim_kind;

typedef struct sslc_optim_config {
    sslc_optim_kind kind;
    float momentum;          // SGD, LARS; in [0, 1)
    bool nesterov;           // SGD, LARS; needs momentum > 0
    float weight_decay;      // >= 0
    bool exclude_no_decay;   // skip decay (and LARS adaptation) on NO_DECAY tensors
    float trust_coefficient; // LARS eta
    float beta1, beta2, eps; // AdamW
} sslc_optim_config;

// The papers' defaults: SGD momentum 0.9, wd 1e-4 on every tensor (MoCo);
// LARS momentum 0.9, eta 0.001, wd 1e-6, biases and BN excluded (SimCLR);
// AdamW betas (0.9, 0.999), eps 1e-8, wd 0.01 on every tensor (PyTorch).
sslc_optim_config sslc_optim_defaults(sslc_optim_kind kind);

// "sgd", "lars", "adamw"; parse returns SSLC_ERR_INVALID on anything else.
const char *sslc_optim_kind_name(sslc_optim_kind kind);
sslc_status sslc_optim_kind_parse(sslc_optim_kind *kind, const char *name);

typedef struct sslc_optim {
    sslc_optim_config config;
    int64_t n_values;  // length of each state buffer (params->n_values)
    int64_t n_tensors; // tensors in the table it was created for
    int n_states;      // 0 (plain SGD), 1 (momentum) or 2 (AdamW)
    float *state[2];   // (n_values,) each, zero at creation
    double *norms;     // (2 * n_tensors,) LARS scratch: |p|, |d| per tensor
    int64_t steps;     // completed steps (AdamW's bias-correction t)
} sslc_optim;

// Checks the configuration (a message names the bad field) and allocates
// zeroed state for params' table. params must be allocated.
sslc_status sslc_optim_create(sslc_optim **out, const sslc_optim_config *config,
                              const sslc_params *params);
void sslc_optim_destroy(sslc_optim *optim); // NULL-safe

// One update of params->values from params->grads with learning rate lr
// (from sslc_schedule_lr); params must have the table given at creation.
sslc_status sslc_optim_step(sslc_optim *optim, sslc_params *params, float lr);

// State buffers for checkpoints: count, PyTorch name and data (n_values,).
int sslc_optim_state_count(const sslc_optim *optim);
const char *sslc_optim_state_name(const sslc_optim *optim, int i);
float *sslc_optim_state(sslc_optim *optim, int i);
int64_t sslc_optim_steps(const sslc_optim *optim);
sslc_status sslc_optim_set_steps(sslc_optim *optim, int64_t steps);

#endif
