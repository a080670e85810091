// MoCo's step (He et al. 2020; v2: Chen et al. 2020): queries from the
// encoder, keys from its momentum copy with shuffle-BN, InfoNCE against the
// positive key and the queue, then the keys are enqueued.
//
// Shuffle-BN as the paper: the key images of the whole batch (gathered from
// every process) are permuted by a permutation every process draws alike
// from (seed, step), cut into S groups with their own batch statistics,
// each process encodes its S / R groups, and the keys are gathered back and
// unshuffled. On one process the S groups run one after the other (the
// official CIFAR demo's SplitBatchNorm), with the same keys. Every process
// then holds every key and enqueues the same ones, so queues stay equal.
//
// Multi-crop (SwAV's recipe applied to MoCo): the L local views are more
// queries, never keys (keys stay the global views of the momentum encoder).
// The loss is the mean of one InfoNCE term per (query view, key view) pair
// of different views: each key against every other query view of its image.
// Without --symmetric the key is global view 1 and the queries view 0 and
// the local views; with it both global views are keys, so a local view is
// contrasted with each of them in two separate terms (as SwAV predicts each
// global view's code from every other view). With L = 0 these are exactly
// the 1 or 2 terms of plain MoCo (docs/losses.md).
//
// MoCo v3 (Chen, Xie, He 2021; sslc_mocov3_step): the same momentum
// encoder and key path, without the queue and without the shuffle (the
// paper's BN statistics are per view over the batch: with S = 2 groups the
// unshuffled keys' groups are the two views). The projections of both
// views go through a predictor (query side only); each prediction is
// contrasted with the keys of the other view of every pair of the global
// batch, its own pair's key the positive (losses/mocov3.h):
//   L = ctr(p1, k2) + ctr(p2, k1).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "losses/mocov3.h"
#include "src/core/log.h"
#include "src/core/phases.h"
#include "src/core/rng.h"
#include "src/core/rows.h"
#include "src/dist/dist.h"
#include "src/optim/schedule.h"
#include "src/train/contrastive.h"

sslc_status sslc_moco_build(sslc_contrastive *t)
{
    const sslc_pretrain_config *c = t->cfg;
    const int64_t S = c->shuffle_groups, image = t->H * t->W * t->C;
    t->n_key = t->per * t->B;
    if (S < 1 || S % t->ranks || t->n_key % S)
        return sslc_error(SSLC_ERR_INVALID,
                          "moco: %lld key images do not split into %lld shuffle-BN groups over "
                          "%d processes; choose --shuffle-groups dividing the batch and a "
                          "multiple of the processes",
                          (long long)t->n_key, (long long)S, t->ranks);
    t->key_groups = S / t->ranks;
    const int64_t group = t->n_key / S;
    sslc_status st;
    // The key encoder and head start as copies of the query ones.
    if ((st = sslc_encoder_create(&t->key_enc, &c->encoder)) ||
        (st = sslc_params_copy(t->key_enc.params, t->enc.params)) ||
        (st = sslc_mlp_create(&t->key_head, t->enc.feature_dim, c->head)) ||
        (st = sslc_params_copy(&t->key_head.params, &t->head.params)) ||
        (st = sslc_encoder_run_create(&t->key_run, &t->key_enc, group, t->H, t->W)) ||
        (st = sslc_mlp_run_create(&t->key_head_run, &t->key_head, group)))
        return st;
    if (S > 1) { // the groups' statistics averaged into one running update
        sslc_encoder_run_set_bn(t->key_run, SSLC_BN_RUNNING_ACCUMULATE, NULL);
        sslc_mlp_run_set_bn(t->key_head_run, SSLC_BN_RUNNING_ACCUMULATE, NULL);
    }
    sslc_rng rng = sslc_rng_make(c->seed, 0x9e11e, 0, 0, 0);
    if (!t->v3 && (st = sslc_queue_create(&t->queue, c->queue, t->D, &rng)))
        return st;
    t->key_in = sslc_aligned_alloc((size_t)(group * image) * sizeof(float));
    t->key_part = sslc_aligned_alloc((size_t)(t->n_key / t->ranks * t->D) * sizeof(float));
    t->keys = sslc_aligned_alloc((size_t)(t->n_key * t->D) * sizeof(float));
    t->perm = sslc_malloc((size_t)t->n_key * sizeof(int64_t));
    if (!t->key_in || !t->key_part || !t->keys || !t->perm)
        return SSLC_ERR_NOMEM;
    if (t->ranks > 1) {
        size_t gather = (size_t)(t->n_key * (image > t->D ? image : t->D));
        t->key_all = sslc_aligned_alloc((size_t)(t->n_key * image) * sizeof(float));
        t->gather = sslc_aligned_alloc(gather * sizeof(float));
        if (!t->key_all || !t->gather)
            return SSLC_ERR_NOMEM;
    }
    return SSLC_OK;
}

// theta_k <- m theta_k + (1 - m) theta_q over the trainable values; the key
// encoder's BN running statistics are its own (MoCo updates parameters only).
static void momentum_update(sslc_params *key, const sslc_params *query, float m)
{
    float *restrict k = key->values;
    const float *restrict q = query->values;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < key->n_values; i++)
        k[i] = m * k[i] + (1.0f - m) * q[i];
}

float sslc_moco_momentum(const sslc_contrastive *t, const sslc_train_state *s)
{
    const sslc_pretrain_config *c = t->cfg;
    if (!c->momentum_cosine || s->total_steps <= 0)
        return (float)c->momentum;
    double progress = fmin(1.0, (double)s->step / (double)s->total_steps);
    return (float)sslc_cosine(c->momentum, 1.0, progress, 1.0);
}

// Normalised keys of every key image of the batch into t->keys (batch
// order: view 1 of each pair, or with symmetric both views, view-major).
// mine: this process's key images, (per * b, H, W, C).
static sslc_status compute_keys(sslc_contrastive *t, const float *mine, int64_t step)
{
    const sslc_pretrain_config *c = t->cfg;
    const int64_t image = t->H * t->W * t->C, group = t->n_key / c->shuffle_groups;
    sslc_status st;
    const float *all = mine;
    if (t->ranks > 1) {
        if ((st = sslc_dist_gather_f32(mine, t->gather, (size_t)(t->per * t->b * image))))
            return st;
        sslc_contrastive_reorder(t, t->key_all, t->gather, image, t->per, true);
        all = t->key_all;
    }
    if (t->v3) { // no shuffle: group j holds the keys j * group ..
        for (int64_t j = 0; j < t->n_key; j++)
            t->perm[j] = j;
    } else {
        sslc_rng rng = sslc_rng_make(c->seed, 0x5b0ff1e, (uint64_t)step, 0, 0);
        sslc_rng_permutation(&rng, t->perm, t->n_key);
    }
    sslc_encoder_prepare(t->key_run, &t->key_enc);
    for (int64_t k = 0; k < t->key_groups; k++) {
        const int64_t *p = t->perm + (t->rank * t->key_groups + k) * group;
        for (int64_t j = 0; j < group; j++)
            memcpy(t->key_in + j * image, all + p[j] * image, (size_t)image * sizeof(float));
        const float *f = sslc_encoder_forward(t->key_run, &t->key_enc, t->key_in, true);
        const float *key = sslc_mlp_forward(t->key_head_run, &t->key_head, f, true);
        memcpy(t->key_part + k * group * t->D, key, (size_t)(group * t->D) * sizeof(float));
    }
    if (c->shuffle_groups > 1) {
        const sslc_bn_sync *across = t->ranks > 1 ? &t->rank_sum : NULL;
        sslc_encoder_bn_apply(t->key_run, &t->key_enc, t->key_groups, across);
        sslc_mlp_bn_apply(t->key_head_run, &t->key_head, t->key_groups, across);
        if (t->sync_status)
            return t->sync_status;
    }
    const float *shuffled = t->key_part; // (n_key, D) in permuted order
    if (t->ranks > 1) {
        if ((st = sslc_dist_gather_f32(t->key_part, t->gather,
                                       (size_t)(t->key_groups * group * t->D))))
            return st;
        shuffled = t->gather;
    }
    for (int64_t j = 0; j < t->n_key; j++) // unshuffle
        memcpy(t->keys + t->perm[j] * t->D, shuffled + j * t->D, (size_t)t->D * sizeof(float));
    sslc_rows_normalize(t->keys, NULL, NULL, t->keys, t->n_key, t->D);
    return SSLC_OK;
}

sslc_status sslc_moco_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                           sslc_step_result *r)
{
    sslc_contrastive *t = self;
    const sslc_pretrain_config *c = t->cfg;
    const int64_t nb = t->b, D = t->D, K = c->queue;
    const float *views = b->x;
    const size_t image = (size_t)(t->H * t->W * t->C);
    double mark = sslc_now();
    float m = sslc_moco_momentum(t, s);
    momentum_update(t->key_enc.params, t->enc.params, m);
    momentum_update(&t->key_head.params, &t->head.params, m);
    mark = sslc_phase_end(SSLC_PHASE_MOMENTUM, mark);
    // Queries: view 0 (and view 1 when symmetric); keys: the other view(s).
    sslc_status st = compute_keys(t, c->symmetric ? views : views + (size_t)nb * image, s->step);
    if (st)
        return st;
    mark = sslc_phase_end(SSLC_PHASE_KEYS, mark);
    if ((st = sslc_contrastive_embed(t, b)))
        return st;
    mark = sslc_phase_end(SSLC_PHASE_FORWARD, mark);
    const float *queue = sslc_queue_data(t->queue);
    // Query blocks of nb rows in t->z: global views 0 .. per-1, then the L
    // local views. Key views: 1, and with --symmetric 1 then 0 (t->keys is
    // view-major over the whole batch: this process's pairs at rank * nb).
    const int64_t key_views[2] = {1, 0}, n_keys = c->symmetric ? 2 : 1;
    const int64_t blocks = t->per + t->L, terms = n_keys * (blocks - (c->symmetric ? 1 : 0));
    // Each process's loss is the mean over its b queries and the terms; the
    // global loss is their mean over processes, so each backward carries
    // 1 / (terms R).
    const float weight = 1.0f / (float)terms / (float)t->ranks;
    memset(t->dz, 0, (size_t)(blocks * nb * D) * sizeof(float));
    float loss = 0.0f, acc = 0.0f;
    for (int64_t kv = 0; kv < n_keys; kv++) {
        const int64_t key_view = key_views[kv];
        const float *k = t->keys + ((c->symmetric ? key_view * t->B : 0) + t->rank * nb) * D;
        for (int64_t qb = 0; qb < blocks; qb++) {
            if (qb == key_view && qb < t->per) // a view is not its own query
                continue;
            float l, a;
            if ((st = sslc_infonce_forward(&l, &a, t->loss_ws, t->z + qb * nb * D, k, queue, nb,
                                           D, K, (float)c->tau)))
                return st;
            sslc_infonce_backward(t->dz + qb * nb * D, t->loss_ws, weight, nb, D, K);
            loss += l;
            acc += a;
        }
    }
    double lacc[2] = {loss / (float)terms, acc / (float)terms};
    if ((st = sslc_dist_sum_f64(lacc, 2)))
        return st;
    // Enqueue after the logits are computed (MoCo Algorithm 1): every key
    // of the batch, the same on every process.
    if ((st = sslc_queue_enqueue(t->queue, t->keys, t->n_key)))
        return st;
    mark = sslc_phase_end(SSLC_PHASE_LOSS, mark);
    if ((st = sslc_contrastive_backward(t, b)))
        return st;
    sslc_phase_end(SSLC_PHASE_BACKWARD, mark);
    *r = (sslc_step_result){.loss = lacc[0] / t->ranks, .acc = lacc[1] / t->ranks};
    return SSLC_OK;
}

sslc_status sslc_mocov3_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                             sslc_step_result *r)
{
    sslc_contrastive *t = self;
    const sslc_pretrain_config *c = t->cfg;
    const int64_t nb = t->b, D = t->D;
    double mark = sslc_now();
    float m = sslc_moco_momentum(t, s);
    momentum_update(t->key_enc.params, t->enc.params, m);
    momentum_update(&t->key_head.params, &t->head.params, m);
    mark = sslc_phase_end(SSLC_PHASE_MOMENTUM, mark);
    // t->keys: (2B, D) both views of every pair of the global batch, view-major.
    sslc_status st = compute_keys(t, b->x, s->step);
    if (st)
        return st;
    mark = sslc_phase_end(SSLC_PHASE_KEYS, mark);
    if ((st = sslc_contrastive_embed(t, b)))
        return st;
    // Predictions of the (2b, D) projections: view 0's rows, then view 1's.
    const float *p = sslc_mlp_forward(t->pred_run, &t->pred, t->z, true);
    if (t->ranks > 1 && !c->sync_bn) { // its running statistics averaged as the head's
        sslc_mlp_bn_apply(t->pred_run, &t->pred, 1, &t->rank_sum);
        if (t->sync_status)
            return t->sync_status;
    }
    mark = sslc_phase_end(SSLC_PHASE_FORWARD, mark);
    // Each process's loss is the sum of the two terms over its b queries;
    // the global loss is their mean over processes (the official code's
    // DDP average), so each backward carries 1 / R.
    const float weight = 1.0f / (float)t->ranks;
    memset(t->dp, 0, (size_t)(2 * nb * D) * sizeof(float));
    float loss = 0.0f, acc = 0.0f;
    for (int64_t v = 0; v < 2; v++) {
        const float *keys = t->keys + (1 - v) * t->B * D; // the other view's keys
        float l, a;
        if ((st = sslc_mocov3_forward(&l, &a, t->loss_ws, p + v * nb * D, keys, nb, t->B,
                                      t->rank * nb, D, (float)c->tau)))
            return st;
        sslc_mocov3_backward(t->dp + v * nb * D, t->loss_ws, weight, nb, t->B, D);
        loss += l;
        acc += 0.5f * a;
    }
    double lacc[2] = {loss, acc};
    if ((st = sslc_dist_sum_f64(lacc, 2)))
        return st;
    mark = sslc_phase_end(SSLC_PHASE_LOSS, mark);
    // The predictor's gradients are final after its backward: summed over
    // the processes here, the encoder's and projector's in the backward.
    sslc_mlp_backward(t->pred_run, &t->pred, t->dz, t->dp);
    if (t->ranks > 1 &&
        (st = sslc_dist_sum_f32(t->pred.params.grads, (size_t)t->pred.params.n_values)))
        return st;
    if ((st = sslc_contrastive_backward(t, b)))
        return st;
    sslc_phase_end(SSLC_PHASE_BACKWARD, mark);
    *r = (sslc_step_result){.loss = lacc[0] / t->ranks, .acc = lacc[1] / t->ranks};
    return SSLC_OK;
}
