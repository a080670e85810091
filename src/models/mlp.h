// Small sequential MLPs: projection heads (SimCLR, MoCo v2, MoCo v3 and its
// predictor), MoCo v1's linear head, and linear classifiers. Tensor names
// follow nn.Sequential ("0.weight", "1.running_mean", ...), so a head loads
// into PyTorch as nn.Sequential(Linear, BatchNorm1d, ReLU, Linear, ...).
#ifndef SSLC_MODELS_MLP_H
#define SSLC_MODELS_MLP_H

#include <stdbool.h>
#include <stdint.h>

#include "src/nn/layers.h"
#include "src/nn/params.h"

typedef enum sslc_mlp_kind {
    SSLC_MLP_LINEAR, // Linear(in, out, bias)
    SSLC_MLP_BN,     // BatchNorm1d(in), or BatchNorm1d(in, affine=False) (spec "bn-noaffine")
    SSLC_MLP_RELU,
} sslc_mlp_kind;

typedef struct sslc_mlp_layer {
    sslc_mlp_kind kind;
    int64_t in, out;
    bool bias;                  // Linear: with a bias
    bool affine;                // BN: with gamma and beta (else none: scale 1, shift 0)
    int64_t w, b;               // offsets in values (Linear: w, b; affine BN: gamma, beta)
    int64_t mean, var, batches; // BN buffer offsets
} sslc_mlp_layer;

enum { SSLC_MLP_MAX_LAYERS = 12 };

typedef struct sslc_mlp {
    sslc_params params;
    sslc_mlp_layer layers[SSLC_MLP_MAX_LAYERS];
    int n_layers;
    int64_t in_dim, out_dim;
} sslc_mlp;

// Builds layers from a spec such as "linear-nobias:2048,bn,relu,linear:128"
// applied to in_dim inputs (layers: linear:N, linear-nobias:N, bn,
// bn-noaffine, relu). Weights are zero until sslc_mlp_init.
sslc_status sslc_mlp_create(sslc_mlp *m, int64_t in_dim, const char *spec);
void sslc_mlp_destroy(sslc_mlp *m); // NULL-safe
// PyTorch's defaults: Linear weight and bias U(-1/sqrt(in), 1/sqrt(in)),
// BatchNorm weight 1, bias 0, running mean 0, variance 1.
void sslc_mlp_init(sslc_mlp *m, uint64_t seed);

// The projection heads of the papers, as specs, with `layers` Linear
// layers (2, or 3 as SimCLRv2; MoCo v1's is always 1):
//   simclr:  [Linear(in|hidden, hidden, no bias) - BN - ReLU] x (layers - 1)
//            - Linear(hidden, out) [- BN]
//   moco-v2: [Linear(in|hidden, hidden) - ReLU] x (layers - 1) - Linear(hidden, out)
//   moco-v1: Linear(in, out)  (MoCo v1's fc)
//   moco-v3: [Linear(in|hidden, hidden, no bias) - BN - ReLU] x (layers - 1)
//            - Linear(hidden, out, no bias) - BN(affine=False)
//            (MoCo v3's projector and, with layers 2, its predictor: every
//            layer with BN, as the official _build_mlp)
// Writes the spec into buf (cap bytes).
sslc_status sslc_mlp_head_spec(char *buf, size_t cap, const char *kind, int64_t hidden,
                               int64_t out, bool out_bn, int layers);

// The number of layers in the first k blocks of m, where a block is a
// Linear and the BN / ReLU after it (SimCLRv2's "head layer"): the index
// of the (k+1)-th Linear, m->n_layers for k = all of them, -1 beyond.
int sslc_mlp_block_end(const sslc_mlp *m, int k);
// The spec of m's first n_layers layers ("" for 0), into buf (cap bytes).
sslc_status sslc_mlp_spec(char *buf, size_t cap, const sslc_mlp *m, int n_layers);
// Copies the values and buffers of src's first n_layers layers into the
// tensors of the same names in dst (a head built from a spec that starts
// with the same layers).
sslc_status sslc_mlp_copy_layers(sslc_mlp *dst, const sslc_mlp *src, int n_layers);

// Activations for a batch of N rows.
typedef struct sslc_mlp_run sslc_mlp_run;
sslc_status sslc_mlp_run_create(sslc_mlp_run **run, const sslc_mlp *m, int64_t N);
void sslc_mlp_run_destroy(sslc_mlp_run *run);

// x: (N, in_dim) -> returns (N, out_dim), owned by the run. x must stay
// valid until backward.
const float *sslc_mlp_forward(sslc_mlp_run *run, sslc_mlp *m, const float *x, bool training);
// dy: (N, out_dim). Accumulates parameter gradients; writes dx (N, in_dim)
// unless dx is NULL.
void sslc_mlp_backward(sslc_mlp_run *run, sslc_mlp *m, float *dx, const float *dy);
// Batch norm in training-mode forwards and its deferred running-statistics
// update, as sslc_resnet_run_set_bn and sslc_resnet_bn_apply.
void sslc_mlp_run_set_bn(sslc_mlp_run *run, sslc_bn_running running, const sslc_bn_sync *sync);
void sslc_mlp_bn_apply(sslc_mlp_run *run, sslc_mlp *m, int64_t batches, const sslc_bn_sync *across);

#endif
