// Fine-tuning modes: which tensors of an encoder's table train, and which
// change, in each. The rules read only the table (names, kinds and flags),
// not the architecture, so one set serves the ResNet and, later, the ViT.
//
//   mode     trains (besides the classifier)          encoder forward    changes
//   full     every parameter                          training mode      all
//   linear   nothing: a linear probe by SGD           eval mode          nothing
//   bn-head  the normalisation affine parameters      training mode      those + BN statistics
//            (the tensors excluded from weight decay)
//   bias     every tensor named "*.bias" (BitFit)     training mode      those + BN statistics
//   lora     low-rank adapters only (src/models/lora.h) training mode    adapters + BN statistics
//   prompt   visual prompts only (ViT; vit.h, VPT)     training mode      prompts
//
// ResNet convolutions have no bias, so BitFit on a ResNet trains the
// batch-norm biases (beta) and leaves their weights (gamma) frozen.
// Training-mode forwards update the batch-norm running statistics, as
// PyTorch's train() does; the adapter file keeps them (src/eval/adapter.h).
#ifndef SSLC_MODELS_PEFT_H
#define SSLC_MODELS_PEFT_H

#include <stdbool.h>
#include <stdint.h>

#include "src/nn/params.h"

typedef enum sslc_peft_mode {
    SSLC_PEFT_FULL,
    SSLC_PEFT_LINEAR,
    SSLC_PEFT_BN_HEAD,
    SSLC_PEFT_BIAS,
    SSLC_PEFT_LORA,
    SSLC_PEFT_PROMPT,
} sslc_peft_mode;

// "full", "linear", "bn-head", "bias", "lora", "prompt".
sslc_status sslc_peft_mode_parse(sslc_peft_mode *mode, const char *name);
const char *sslc_peft_mode_name(sslc_peft_mode mode);

// Whether t (a tensor of an encoder's table) trains in mode.
bool sslc_peft_trains(sslc_peft_mode mode, const sslc_tensor *t);
// Whether training in mode changes t: it trains, or it is a running
// statistic that training-mode forwards update.
bool sslc_peft_changes(sslc_peft_mode mode, const sslc_tensor *t);
// Whether the encoder runs in training mode (batch statistics, backward).
bool sslc_peft_encoder_trains(sslc_peft_mode mode);
// Elements of p's tensors that train in mode.
int64_t sslc_peft_trainable(sslc_peft_mode mode, const sslc_params *p);

#endif
