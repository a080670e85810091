// The encoder of every command: a ResNet (resnet.h) or a Vision Transformer
// (vit.h) behind one set of calls that mirror the ResNet's, so training and
// evaluation do not care which one they hold. A ViT has no batch norm: the
// batch-norm calls do nothing for it.
#ifndef SSLC_MODELS_ENCODER_H
#define SSLC_MODELS_ENCODER_H

#include <stdbool.h>
#include <stdint.h>

#include "src/models/resnet.h"
#include "src/models/vit.h"

typedef enum sslc_encoder_kind {
    SSLC_ENCODER_RESNET,
    SSLC_ENCODER_VIT,
} sslc_encoder_kind;

// Only the config of `kind` is read.
typedef struct sslc_encoder_config {
    sslc_encoder_kind kind;
    sslc_resnet_config resnet;
    sslc_vit_config vit;
} sslc_encoder_config;

// Sets kind and the architecture's shape from arch: "resnet18", "resnet34",
// "resnet50" (resnet.depth) or "vit-tiny", "vit-small", "vit-base"
// (vit.hidden, layers, heads, mlp_dim). The other fields are the caller's.
sslc_status sslc_encoder_parse_arch(sslc_encoder_config *config, const char *arch);
// "resnet18", ..., "vit-tiny", ... ("vit" for a ViT of another shape).
const char *sslc_encoder_config_arch(const sslc_encoder_config *config);
bool sslc_encoder_arch_is_vit(const char *arch);

typedef struct sslc_encoder {
    sslc_encoder_kind kind;
    union {
        sslc_resnet resnet;
        sslc_vit vit;
    } net;
    // The active network's table: it points into this struct, so an encoder
    // is used where it was created and never copied by value.
    sslc_params *params;
    int64_t feature_dim; // the output's width: the ResNet's pooled channels, the ViT's D
    int64_t in_channels;
} sslc_encoder;

// Declares and allocates every tensor; weights are zero until init.
sslc_status sslc_encoder_create(sslc_encoder *enc, const sslc_encoder_config *config);
void sslc_encoder_destroy(sslc_encoder *enc); // NULL-safe, and safe on a zeroed encoder
// torchvision's initialisation of the network (sslc_resnet_init, sslc_vit_init).
void sslc_encoder_init(sslc_encoder *enc, uint64_t seed);
const char *sslc_encoder_arch(const sslc_encoder *enc);
// The encoder's config (kind and the active family's fields).
sslc_encoder_config sslc_encoder_config_of(const sslc_encoder *enc);

// Visual prompts (sslc_vit_add_prompts) on a ViT; a ResNet is refused with
// the reason. Runs created afterwards carry them.
sslc_status sslc_encoder_add_prompts(sslc_encoder *enc, int64_t prompts, bool deep);
// The prompts' own table ("prompt_embeddings"), or NULL when there are none.
sslc_params *sslc_encoder_prompts(sslc_encoder *enc);

// Activations and scratch for batches of N images of H x W. A ViT takes
// only its own image size (H = W = config.vit.image_size).
typedef struct sslc_encoder_run sslc_encoder_run;
sslc_status sslc_encoder_run_create(sslc_encoder_run **run, const sslc_encoder *enc, int64_t N,
                                    int64_t H, int64_t W);
// For eval-mode forwards only (sslc_resnet_inference_run_create). A ViT's is
// an ordinary run: it keeps its activations.
sslc_status sslc_encoder_inference_run_create(sslc_encoder_run **run, const sslc_encoder *enc,
                                              int64_t N, int64_t H, int64_t W);
void sslc_encoder_run_destroy(sslc_encoder_run *run); // NULL-safe
size_t sslc_encoder_run_bytes(const sslc_encoder_run *run);
// Floating-point operations of one forward pass (2 per multiply-add): the
// ResNet's convolutions; for a ViT an estimate from its matrix products
// (patch projection, attention projections and products, MLP).
double sslc_encoder_run_flops(const sslc_encoder_run *run, const sslc_encoder *enc);

// As sslc_resnet_prepare / forward / backward. x: (N, H, W, in_channels),
// valid until the backward; returns (N, feature_dim) owned by the run.
void sslc_encoder_prepare(sslc_encoder_run *run, const sslc_encoder *enc);
const float *sslc_encoder_forward(sslc_encoder_run *run, sslc_encoder *enc, const float *x,
                                  bool training);
// dfeatures: (N, feature_dim). Accumulates into enc->params->grads.
void sslc_encoder_backward(sslc_encoder_run *run, sslc_encoder *enc, const float *dfeatures);

// ResNet: sslc_resnet_run_set_grads_ready. ViT: never called, so a gradient
// sum over processes starts when the backward is over.
void sslc_encoder_run_set_grads_ready(sslc_encoder_run *run, sslc_grads_ready_fn fn, void *ctx);
// ResNet: sslc_resnet_run_set_bn / sslc_resnet_bn_apply. ViT: nothing.
void sslc_encoder_run_set_bn(sslc_encoder_run *run, sslc_bn_running running,
                             const sslc_bn_sync *sync);
void sslc_encoder_bn_apply(sslc_encoder_run *run, sslc_encoder *enc, int64_t batches,
                           const sslc_bn_sync *across);

#endif
