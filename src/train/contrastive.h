// The model of contrastive pretraining, shared by its two step functions
// (internal to src/train): an encoder and a projection head trained by the
// loop, and for MoCo a momentum copy of both with a queue of keys.
//
//   SimCLR (simclr.c): NT-Xent over the 2B views of a batch of B pairs.
//   MoCo   (moco.c):   InfoNCE of queries against their keys and the queue,
//                      keys from the momentum encoder with shuffle-BN.
#ifndef SSLC_TRAIN_CONTRASTIVE_H
#define SSLC_TRAIN_CONTRASTIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "losses/queue.h"
#include "src/models/mlp.h"
#include "src/models/resnet.h"
#include "src/optim/optimizer.h"
#include "src/train/loop.h"
#include "src/train/pretrain.h"

typedef struct sslc_contrastive {
    const sslc_pretrain_config *cfg;
    bool moco;
    int64_t B, H, W, C, D;  // pairs, view size, channels, projection dim
    int64_t n_query, n_key; // images through the query / key encoder per step

    sslc_resnet enc, key_enc;
    sslc_mlp head, key_head;
    sslc_resnet_run *run, *key_run;
    sslc_mlp_run *head_run, *key_head_run;
    sslc_optim *opt_enc, *opt_head;
    sslc_queue *queue;

    float *loss_ws;  // NT-Xent or InfoNCE workspace
    float *dz;       // (n_query, D)
    float *dfeat;    // (n_query, feature_dim)
    float *key_in;   // (n_key, H, W, C): key images in shuffled order
    float *keys;     // (n_key, D): normalised keys in batch order
    float *key_norm; // (n_key,)
    int64_t *perm;   // (n_key,) shuffle-BN permutation
} sslc_contrastive;

// Loop step functions (sslc_trainer.step) over an sslc_contrastive.
sslc_status sslc_simclr_step(void *self, const sslc_train_batch *batch,
                             const sslc_train_state *s, sslc_step_result *result);
sslc_status sslc_moco_step(void *self, const sslc_train_batch *batch, const sslc_train_state *s,
                           sslc_step_result *result);

// MoCo's extra state: the key encoder and head as copies of the query ones,
// the queue and the key buffers.
sslc_status sslc_moco_build(sslc_contrastive *t);
// The key encoder's momentum at position s: cfg->momentum, or ramped to 1
// by a cosine over the schedule.
float sslc_moco_momentum(const sslc_contrastive *t, const sslc_train_state *s);

#endif
