// Training an encoder with a linear classifier on labels: SimCLR's
// semi-supervised fine-tuning (from a pretrained encoder), its
// parameter-efficient variants (src/models/peft.h: a linear probe, batch-norm
// + head, BitFit, LoRA), and the supervised baseline (the same loop from
// random initialisation). One loop: a batch of augmented views -> encoder
// (training mode; eval mode for the linear probe) -> linear head -> softmax
// cross-entropy -> backward through what trains -> SGD (Nesterov) with
// warmup + cosine. Frozen tensors are never written: they stay bit for bit.
#ifndef SSLC_TRAIN_FINETUNE_H
#define SSLC_TRAIN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/models/lora.h"
#include "src/models/mlp.h"
#include "src/models/peft.h"
#include "src/models/encoder.h"

typedef struct sslc_finetune_config {
    sslc_peft_mode mode; // what trains besides the head (the head always does)
    sslc_lora *lora;     // SSLC_PEFT_LORA: adapters created on the encoder; NULL otherwise
                         // SSLC_PEFT_PROMPT: the encoder holds prompts (sslc_encoder_add_prompts)
    int64_t batch, epochs;
    double minutes;     // > 0: stop after this wall time, schedule fitted to it
    int64_t max_steps;  // > 0: stop after this many steps (tests)
    double lr;          // peak, already scaled for the batch
    double warmup_epochs;
    double momentum;
    bool nesterov;
    double weight_decay; // on weights only (not biases, not batch-norm affine)
    uint64_t seed;
    int64_t log_every; // progress lines (0: quiet)
} sslc_finetune_config;

typedef struct sslc_finetune_result {
    int64_t steps, epochs;
    double first_loss, last_loss; // means over the first / last log_every steps (an epoch when quiet)
    double last_train_top1;       // accuracy on the augmented batches of the last epoch
    double seconds, images_per_s;
    int64_t skipped; // training images that could not be decoded (others took their place)
    int64_t trainable; // parameters trained (sslc_finetune_trainable)
} sslc_finetune_result;

// Elements trained in mode: the encoder's tensors the mode trains, the
// adapters (lora, may be NULL), the prompts (prompt mode) and the whole head.
int64_t sslc_finetune_trainable(sslc_peft_mode mode, const sslc_encoder *enc,
                                const sslc_mlp *head, const sslc_lora *lora);

// Trains enc and head (a classifier built with sslc_mlp_create, e.g.
// "linear:10") on ds's images `indices` (n,) with views from recipe.
// In LoRA mode enc holds the merged weights W + (alpha / r) B A on return
// (what evaluation runs), and cfg->lora the frozen ones.
sslc_status sslc_finetune(const sslc_finetune_config *cfg, sslc_encoder *enc, sslc_mlp *head,
                          const sslc_dataset *ds, const int64_t *indices, int64_t n,
                          const sslc_recipe *recipe, sslc_finetune_result *result);

#endif
