// Adapter files: what a parameter-efficient fine-tuning (src/models/peft.h)
// changed, as its own small HDF5 file on top of a base checkpoint, so one
// pretrained encoder serves many tasks. The layout (docs/evaluation.md,
// "Parameter-efficient fine-tuning"), written by the checkpoint writer:
//
//   /               attrs method "adapter", config, step, epoch, seed
//   /model          the base encoder's attributes (arch, in_channels, width,
//                   cifar_stem, feature_dim, image_size), adapter_mode,
//                   base_checkpoint (its path), base_hash (sslc_adapter_base_hash,
//                   16 hex digits); lora_rank, lora_alpha, lora_targets (LoRA);
//                   num_classes, classifier (the head's spec)
//   /encoder_changed/<tensor>  the encoder tensors the mode changed, under their
//                   encoder names (bias: the BN biases and running statistics)
//   /lora/<layer>.lora_A, /lora/<layer>.lora_B   (LoRA)
//   /classifier/<tensor>      the head (sslc_classifier_load reads it)
//
// Applying one checks the base first: another encoder is refused with the
// reason, before anything is changed.
#ifndef SSLC_EVAL_ADAPTER_H
#define SSLC_EVAL_ADAPTER_H

#include <stdint.h>

#include "src/models/lora.h"
#include "src/models/mlp.h"
#include "src/models/peft.h"
#include "src/models/encoder.h"

// The identity of an encoder's weights: a hash (FNV-1a 64) over every
// tensor's name, shape and values, running statistics included.
uint64_t sslc_adapter_base_hash(const sslc_params *enc);

typedef struct sslc_adapter {
    sslc_peft_mode mode;   // not full: a fully fine-tuned model is its own checkpoint
    const char *base_path; // the base checkpoint, as given
    uint64_t base_hash;    // of the base encoder, before training
    const sslc_lora *lora; // LoRA mode: the adapters
} sslc_adapter;

// Writes path (atomically): the tensors of enc (after training) that a->mode
// changed, the adapters, and head (may be NULL). image_size: the view size.
sslc_status sslc_adapter_save(const char *path, const sslc_adapter *a, const sslc_encoder *enc,
                              const sslc_mlp *head, const char *config, int64_t image_size,
                              int64_t step, int64_t epoch);

// Folds the adapter at path into enc's weights in memory: the changed
// tensors replace enc's, LoRA adds (alpha / r) B A to its weights. enc must
// be the adapter's base (same architecture and sslc_adapter_base_hash);
// otherwise, or for a file that is not an adapter, enc is left untouched and
// the reason returned.
sslc_status sslc_adapter_apply(sslc_encoder *enc, const char *path);

#endif
