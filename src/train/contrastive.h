// The model of contrastive pretraining, shared by its two step functions
// (internal to src/train): an encoder and a projection head trained by the
// loop, and for MoCo a momentum copy of both with a queue of keys.
//
//   SimCLR (simclr.c): NT-Xent over the 2B views of a batch of B pairs.
//   MoCo   (moco.c):   InfoNCE of queries against their keys and the queue,
//                      keys from the momentum encoder with shuffle-BN.
//   MoCo v3 (moco.c):  queries through a predictor after the projector;
//                      each against every key of the other view in the
//                      global batch (no queue, keys' BN groups unshuffled).
//
// Data parallelism (src/dist): each of R processes holds b = B / R pairs,
// its slice of the single-process batch. Query images go through the
// encoder in G batch-norm groups of g = b / G pairs (G = 1: the whole slice,
// activations kept for the backward; G > 1: embeddings first, the loss and
// its gradient with respect to every embedding, then each group's forward
// again with its backward: gradient caching, the memory of one group).
// A step function leaves in the grads the gradient of the global loss with
// respect to this process's share, so the loop only sums them over ranks.
//
// Multi-crop (SwAV): L local views per image, of h x h pixels, go through
// the same encoder and head as a second batch (their own run buffers), and
// their embeddings follow the global ones in z: (per * b + L * b, D), view
// blocks of b rows. One process and one batch-norm group only.
#ifndef SSLC_TRAIN_CONTRASTIVE_H
#define SSLC_TRAIN_CONTRASTIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "losses/queue.h"
#include "src/models/mlp.h"
#include "src/models/encoder.h"
#include "src/optim/optimizer.h"
#include "src/train/grad_sync.h"
#include "src/train/loop.h"
#include "src/train/pretrain.h"

typedef struct sslc_contrastive {
    const sslc_pretrain_config *cfg;
    bool moco;
    bool v3;              // MoCo v3: predictor, no queue
    int rank, ranks;
    int64_t B, b, G, g;   // pairs: global, this process's, groups here, per group
    int64_t per;          // query images per pair: 2 (SimCLR, symmetric MoCo) or 1
    int64_t H, W, C, D;   // view size, channels, projection dim
    int64_t L, h;         // multi-crop: local views per image and their size (L = 0: none)
    int64_t n_key;        // MoCo: keys per step over every process (B or 2B)
    int64_t key_groups;   // MoCo: shuffle-BN groups on this process

    sslc_encoder enc, key_enc;
    sslc_mlp head, key_head;
    sslc_mlp pred;                        // MoCo v3: the predictor (query side only)
    sslc_mlp_run *pred_run;               // MoCo v3: over the (2b, D) projections
    sslc_encoder_run *run, *key_run;       // run: one group's queries; key_run: one key group
    sslc_mlp_run *head_run, *key_head_run;
    sslc_encoder_run *local_run; // multi-crop: the L * b local views
    sslc_mlp_run *local_head_run;
    sslc_optim *opt_enc, *opt_head, *opt_pred;
    sslc_queue *queue;
    sslc_bn_sync rank_sum; // sums over the processes (sync-BN, deferred statistics)
    sslc_status sync_status; // the first failure of such a sum (a step then fails)
    sslc_grad_sync enc_sync, head_sync; // gradient sums overlapped with the last backward
    int64_t bucket;                     // floats per gradient bucket

    float *loss_ws;  // NT-Xent (over (2 + L) B), InfoNCE (over b) or MoCo v3 (b x B) workspace
    float *dp;       // MoCo v3: (2b, D) the gradient of the global loss with respect to the predictions
    float *group_x;  // (per * g, H, W, C): a group's views side by side (G > 1)
    float *z;        // ((per + L) * b, D): this process's embeddings, view-major
    float *dz;       // ((per + L) * b, D): the gradient of the global loss with respect to them
    float *dz_group; // (per * g, D)
    float *dfeat;    // (max(per * g, L * b), feature_dim)
    float *z_all;    // SimCLR, R > 1: (2B, D) every process's, single-process order
    float *dz_all;   // SimCLR, R > 1: (2B, D)
    float *gather;   // R > 1: (R * max(per * b * D, key part)) receive buffer
    float *key_all;  // MoCo, R > 1: (n_key, H, W, C) every process's key images, batch order
    float *key_in;   // MoCo: (n_key / S, H, W, C) one shuffle group's images
    float *key_part; // MoCo: (n_key / R, D) this process's keys, permuted order
    float *keys;     // MoCo: (n_key, D) normalised keys in batch order
    int64_t *perm;   // MoCo: (n_key,) shuffle-BN permutation
} sslc_contrastive;

// Builds the model of cfg for views of H x W x C (the encoder and head
// initialised from cfg->seed; MoCo's key side as their copies) on this
// process's share of the batch. destroy is NULL-safe on a partial build.
sslc_status sslc_contrastive_create(sslc_contrastive *t, const sslc_pretrain_config *cfg,
                                    int64_t H, int64_t W, int64_t C);
void sslc_contrastive_destroy(sslc_contrastive *t);

// Loop step functions (sslc_trainer.step) over an sslc_contrastive.
sslc_status sslc_simclr_step(void *self, const sslc_train_batch *batch,
                             const sslc_train_state *s, sslc_step_result *result);
sslc_status sslc_moco_step(void *self, const sslc_train_batch *batch, const sslc_train_state *s,
                           sslc_step_result *result);
sslc_status sslc_mocov3_step(void *self, const sslc_train_batch *batch,
                             const sslc_train_state *s, sslc_step_result *result);

// The query side, shared by both methods. batch->x: this process's batch,
// (2b, H, W, C) views view-major (and batch->x_local its L * b local
// views). Embeddings of every group into t->z, the local views' after them
// (the encoder's batch-norm running statistics updated once per group,
// averaged over groups and processes when there are several; local views
// update them once more, as PyTorch's separate forward of each size does).
sslc_status sslc_contrastive_embed(sslc_contrastive *t, const sslc_train_batch *batch);
// Backward of every group from t->dz (recomputing a group's forward first
// when G > 1); gradients accumulate into the encoder's and head's and, with
// several processes, are summed over them (in buckets while the last
// group's backward runs).
sslc_status sslc_contrastive_backward(sslc_contrastive *t, const sslc_train_batch *batch);

// rows (row floats each) of every process, rank-major with `per` view
// blocks of b rows each, to (to_global) or from the single-process order:
// view 0 of all B pairs, then view 1.
void sslc_contrastive_reorder(const sslc_contrastive *t, float *dst, const float *src,
                              int64_t row, int64_t per, bool to_global);

// MoCo's extra state: the key encoder and head as copies of the query ones,
// the queue (v1, v2) and the key buffers.
sslc_status sslc_moco_build(sslc_contrastive *t);
// The key encoder's momentum at position s: cfg->momentum, or ramped to 1
// by a cosine over the schedule.
float sslc_moco_momentum(const sslc_contrastive *t, const sslc_train_state *s);

#endif
