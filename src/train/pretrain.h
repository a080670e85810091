// Contrastive pretraining: SimCLR (NT-Xent over the 2N views of a batch),
// MoCo v1/v2 (InfoNCE against a queue of keys from a momentum encoder) and
// MoCo v3 (a predictor on the query side, the batch's keys as negatives,
// no queue), one loop for all: data -> encoder -> projector -> loss -> backward -> update,
// with progress, a metrics log, a kNN monitor, checkpoints, exact resume
// and a clean stop on SIGINT / SIGTERM.
#ifndef SSLC_TRAIN_PRETRAIN_H
#define SSLC_TRAIN_PRETRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/models/encoder.h"
#include "src/optim/optimizer.h"

typedef struct sslc_pretrain_config {
    const char *method;   // "simclr" or "moco"
    int64_t moco_version; // 1, 2 or 3
    bool symmetric;       // MoCo: both views as queries, loss averaged (CIFAR demo); v3: required
    const char *predictor; // MoCo v3: the query side's predictor spec (sslc_mlp_create), else NULL
    sslc_encoder_config encoder;
    const char *head; // projector spec for sslc_mlp_create ("linear-nobias:2048,bn,relu,linear:128")

    int64_t batch;     // pairs per step, over every process (the global batch)
    int64_t epochs;    // schedule length
    double minutes;    // > 0: stop after this wall time; the schedule is fitted to it
    int64_t max_steps; // > 0: stop after this many steps (tests)

    sslc_optim_config optim;
    double lr;            // peak learning rate, already scaled for the batch
    double final_lr;      // cosine end
    double warmup;        // linear warmup from 0, as a fraction of the schedule
    double tau;           // temperature

    int64_t queue;          // MoCo K (v1, v2; v3 has no queue)
    double momentum;        // MoCo m
    bool momentum_cosine;   // ramp m to 1 with a cosine (BYOL-style)
    int64_t shuffle_groups; // MoCo shuffle-BN: key batch-norm groups over every process (1: off);
                            // v3: the groups without the shuffle (2: one per view)

    // Batch-norm groups of the query side (SimCLR: both views of a group's
    // pairs) per process, each with its own statistics: bn_groups, or
    // groups of `chunk` images. With more than one group the forward keeps
    // nothing and the backward recomputes each group's forward from the
    // cached embedding gradients (gradient caching: the memory of one group).
    int64_t bn_groups; // 1: the whole batch of this process
    int64_t chunk;     // > 0: groups of this many query images (instead of bn_groups)
    bool sync_bn;      // statistics over every process's batch (one group per process)

    // Multi-crop (SwAV, Caron et al. 2020): local_crops small views per
    // image besides the 2 global ones, made by local_recipe (NULL when 0).
    // Each size goes through the encoder as its own batch. One process, one
    // batch-norm group (docs/training.md).
    int64_t local_crops;
    const sslc_recipe *local_recipe;

    uint64_t seed;
    bool async_data;   // produce batch k+1 while training on batch k
    bool fixed_batch;  // benchmarks: augment one batch, then train on it at every step
    const char *out;   // run folder (created)
    const char *resume; // checkpoint file to continue from, or NULL
    int64_t log_every;  // plain progress / metrics every this many steps
    int64_t ckpt_every; // steps between checkpoints (0: every epoch)
    int64_t keep;       // numbered checkpoints kept
    const char *config_text; // the resolved configuration, stored in checkpoints

    // kNN monitor: bank (labelled training images) and validation set.
    const sslc_dataset *knn_bank, *knn_val;
    int64_t knn_every; // epochs (0: only at the end)
    int64_t knn_k, knn_bank_limit;
    double knn_tau;
    const sslc_recipe *eval_recipe;
    // Model attributes stored in checkpoints (for loaders).
    int64_t image_size;
} sslc_pretrain_config;

typedef struct sslc_pretrain_result {
    int64_t steps, epochs;
    double first_loss, last_loss; // mean over the first / last logged window
    double knn_initial;           // kNN accuracy of the encoder at initialisation (-1: none)
    double knn_top1;              // last kNN accuracy (-1: none)
    double best_knn_top1;
    double seconds, pairs_per_s, data_wait_fraction, comm_wait_fraction;
    bool interrupted;
} sslc_pretrain_result;

// Trains on ds with views from recipe. Returns SSLC_ERR_INTERRUPTED after a
// signal, once the checkpoint is written.
sslc_status sslc_pretrain(const sslc_pretrain_config *cfg, const sslc_dataset *ds,
                          const sslc_recipe *recipe, sslc_pretrain_result *result);

#endif
