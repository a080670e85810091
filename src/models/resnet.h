// ResNet-18/34/50 encoders exactly as torchvision builds them (same tensor
// names, shapes and initialisation), with the options small-image
// contrastive learning needs: the CIFAR stem (3x3 stride-1 conv, no max
// pool), 1 or 3 input channels, and a base width (64 in torchvision; 16 or
// 32 give small encoders that train on 2 cores). The classifier (fc) is not
// part of the encoder: its output is the pooled feature vector.
#ifndef SSLC_MODELS_RESNET_H
#define SSLC_MODELS_RESNET_H

#include <stdbool.h>
#include <stdint.h>

#include "src/nn/layers.h"
#include "src/nn/params.h"

typedef struct sslc_resnet_config {
    int depth;           // 18, 34 or 50
    int64_t in_channels; // 1 (grayscale) or 3
    int64_t width;       // base width: stage widths are w, 2w, 4w, 8w
    bool cifar_stem;     // 3x3 stride-1 conv1 and no max pool
} sslc_resnet_config;

// One convolution followed by its batch norm: the unit the network is made of.
typedef struct sslc_conv_bn {
    int64_t in, out, kernel, stride, pad;
    int64_t w;                   // conv weight offset in params.values, (out, in, k, k)
    int64_t gamma, beta;         // BN affine offsets in params.values
    int64_t mean, var, batches;  // BN buffer offsets in params.buffers
} sslc_conv_bn;

typedef struct sslc_resnet_block {
    int first, count; // its units: units[first .. first+count), the last one joins
    int down;         // unit index of the downsample shortcut, or -1
} sslc_resnet_block;

typedef struct sslc_resnet {
    sslc_resnet_config config;
    sslc_params params;
    sslc_conv_bn *units; // stem first, then each block's units, then its downsample
    int n_units;
    sslc_resnet_block *blocks;
    int n_blocks;
    int64_t feature_dim; // channels of the pooled output: 8w (basic) or 32w (bottleneck)
} sslc_resnet;

// Declares and allocates every tensor; weights are zero until init.
sslc_status sslc_resnet_create(sslc_resnet *net, const sslc_resnet_config *config);
void sslc_resnet_destroy(sslc_resnet *net); // NULL-safe
// torchvision's initialisation: Kaiming normal (fan_out, ReLU) convolution
// weights, BN weight 1 and bias 0, running mean 0 and variance 1.
void sslc_resnet_init(sslc_resnet *net, uint64_t seed);
// "resnet18", ...
const char *sslc_resnet_arch(const sslc_resnet_config *config);
// Parses "resnet18" / "resnet34" / "resnet50" into config->depth.
sslc_status sslc_resnet_parse_arch(sslc_resnet_config *config, const char *arch);

// Activations, saved statistics and scratch for one batch shape.
typedef struct sslc_resnet_run sslc_resnet_run;

sslc_status sslc_resnet_run_create(sslc_resnet_run **run, const sslc_resnet *net, int64_t N,
                                   int64_t H, int64_t W);
// A run for eval-mode forwards only (feature extraction): it keeps no
// activations for a backward pass, so it holds four activation-sized buffers
// whatever the depth (a training run: two per convolution, and four more).
// Its features equal a training run's eval-mode forward bit for bit.
sslc_status sslc_resnet_inference_run_create(sslc_resnet_run **run, const sslc_resnet *net,
                                             int64_t N, int64_t H, int64_t W);
void sslc_resnet_run_destroy(sslc_resnet_run *run);
int64_t sslc_resnet_run_batch(const sslc_resnet_run *run);
// Bytes held by the run (activations and scratch).
size_t sslc_resnet_run_bytes(const sslc_resnet_run *run);
// Floating-point operations of the convolutions in one forward pass
// (2 per multiply-add); backward costs twice that.
double sslc_resnet_run_flops(const sslc_resnet_run *run, const sslc_resnet *net);

// x: (N, H, W, C_in). Returns the pooled features (N, feature_dim), owned by
// the run and valid until its next forward. training: batch statistics and
// running-stat updates (PyTorch train()); otherwise running statistics.
// Call sslc_resnet_prepare after the weights change and before forward.
void sslc_resnet_prepare(sslc_resnet_run *run, const sslc_resnet *net);
const float *sslc_resnet_forward(sslc_resnet_run *run, sslc_resnet *net, const float *x,
                                 bool training);
// dfeatures: (N, feature_dim). Accumulates into net->params.grads; the
// forward before it must have been in training mode.
void sslc_resnet_backward(sslc_resnet_run *run, sslc_resnet *net, const float *dfeatures);

// Called during sslc_resnet_backward after each residual block (the last
// first) and after the stem: the gradients of the parameter values from
// offset `from` to the end of the table are final (data parallelism starts
// summing them over processes while the backward goes on). NULL: none.
typedef void (*sslc_grads_ready_fn)(void *ctx, int64_t from);
void sslc_resnet_run_set_grads_ready(sslc_resnet_run *run, sslc_grads_ready_fn fn, void *ctx);

// Batch norm in the run's training-mode forwards: running is what they do
// with the running statistics (sslc_bn_running); sync, when not NULL, makes
// the batch statistics those of every process's batch (sync-BN, forward and
// backward). Defaults: SSLC_BN_RUNNING_UPDATE, no sync.
void sslc_resnet_run_set_bn(sslc_resnet_run *run, sslc_bn_running running,
                            const sslc_bn_sync *sync);
// After `batches` forwards with SSLC_BN_RUNNING_ACCUMULATE: the running
// statistics move once towards the mean of their statistics (across, when
// not NULL: summed over its processes first, batches each), and
// num_batches_tracked counts one; the sums restart.
void sslc_resnet_bn_apply(sslc_resnet_run *run, sslc_resnet *net, int64_t batches,
                          const sslc_bn_sync *across);

#endif
