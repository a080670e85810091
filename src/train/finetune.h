// Training an encoder with a linear classifier on labels: SimCLR's
// semi-supervised fine-tuning (from a pretrained encoder), its
// parameter-efficient variant (only the classifier and the batch-norm
// affine parameters train), and the supervised baseline (the same loop from
// random initialisation). One loop: a batch of augmented views -> encoder
// (training mode) -> linear head -> softmax cross-entropy -> backward
// through everything -> SGD (Nesterov) with warmup + cosine.
#ifndef SSLC_TRAIN_FINETUNE_H
#define SSLC_TRAIN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/models/mlp.h"
#include "src/models/resnet.h"

typedef enum sslc_finetune_mode {
    SSLC_FINETUNE_FULL,    // every parameter trains
    SSLC_FINETUNE_BN_HEAD, // head + batch-norm weight/bias only; convolutions frozen
} sslc_finetune_mode;

// "full", "bn-head".
sslc_status sslc_finetune_mode_parse(sslc_finetune_mode *mode, const char *name);

typedef struct sslc_finetune_config {
    sslc_finetune_mode mode;
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
} sslc_finetune_result;

// Trains enc and head (a classifier built with sslc_mlp_create, e.g.
// "linear:10") on ds's images `indices` (n,) with views from recipe.
sslc_status sslc_finetune(const sslc_finetune_config *cfg, sslc_resnet *enc, sslc_mlp *head,
                          const sslc_dataset *ds, const int64_t *indices, int64_t n,
                          const sslc_recipe *recipe, sslc_finetune_result *result);

#endif
