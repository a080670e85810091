// MoCo's step (He et al. 2020; v2: Chen et al. 2020): queries from the
// encoder, keys from its momentum copy with shuffle-BN, InfoNCE against the
// positive key and the queue, then the keys are enqueued.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "src/core/rng.h"
#include "src/nn/layers.h"
#include "src/optim/schedule.h"
#include "src/train/contrastive.h"

sslc_status sslc_moco_build(sslc_contrastive *t)
{
    const sslc_pretrain_config *c = t->cfg;
    sslc_status st;
    if (t->n_key % c->shuffle_groups)
        return sslc_error(SSLC_ERR_INVALID,
                          "moco: %lld key images do not split into %lld shuffle-BN groups; "
                          "choose --shuffle-groups dividing the batch",
                          (long long)t->n_key, (long long)c->shuffle_groups);
    // The key encoder and head start as copies of the query ones.
    if ((st = sslc_resnet_create(&t->key_enc, &c->encoder)) ||
        (st = sslc_params_copy(&t->key_enc.params, &t->enc.params)) ||
        (st = sslc_mlp_create(&t->key_head, t->enc.feature_dim, c->head)) ||
        (st = sslc_params_copy(&t->key_head.params, &t->head.params)))
        return st;
    int64_t group = t->n_key / c->shuffle_groups;
    if ((st = sslc_resnet_run_create(&t->key_run, &t->key_enc, group, t->H, t->W)) ||
        (st = sslc_mlp_run_create(&t->key_head_run, &t->key_head, group)))
        return st;
    sslc_rng rng = sslc_rng_make(c->seed, 0x9e11e, 0, 0, 0);
    if ((st = sslc_queue_create(&t->queue, c->queue, t->D, &rng)))
        return st;
    t->key_in = sslc_aligned_alloc((size_t)(t->n_key * t->H * t->W * t->C) * sizeof(float));
    t->keys = sslc_aligned_alloc((size_t)(t->n_key * t->D) * sizeof(float));
    t->key_norm = sslc_aligned_alloc((size_t)t->n_key * sizeof(float));
    t->perm = sslc_malloc((size_t)t->n_key * sizeof(int64_t));
    if (!t->key_in || !t->keys || !t->key_norm || !t->perm)
        return SSLC_ERR_NOMEM;
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

// Keys for the n_key key images: shuffle-BN on one process, as the official
// CIFAR demo's SplitBatchNorm: the images are permuted and run through the
// key encoder in groups with their own batch statistics, so no key shares
// BN statistics with its own query's batch slice in a predictable way.
static void compute_keys(sslc_contrastive *t, const float *key_images, int64_t step)
{
    const sslc_pretrain_config *c = t->cfg;
    size_t image = (size_t)(t->H * t->W * t->C);
    sslc_rng rng = sslc_rng_make(c->seed, 0x5b0ff1e, (uint64_t)step, 0, 0);
    sslc_rng_permutation(&rng, t->perm, t->n_key);
    for (int64_t j = 0; j < t->n_key; j++)
        memcpy(t->key_in + (size_t)j * image, key_images + (size_t)t->perm[j] * image,
               image * sizeof(float));
    int64_t group = t->n_key / c->shuffle_groups;
    sslc_resnet_prepare(t->key_run, &t->key_enc);
    for (int64_t g = 0; g < c->shuffle_groups; g++) {
        const float *f = sslc_resnet_forward(t->key_run, &t->key_enc,
                                             t->key_in + (size_t)(g * group) * image, true);
        const float *k = sslc_mlp_forward(t->key_head_run, &t->key_head, f, true);
        for (int64_t j = 0; j < group; j++) // unshuffle
            memcpy(t->keys + t->perm[g * group + j] * t->D, k + j * t->D,
                   (size_t)t->D * sizeof(float));
    }
    sslc_l2norm_forward(t->keys, t->key_norm, t->keys, t->n_key, t->D, 1e-12f);
}

sslc_status sslc_moco_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                           sslc_step_result *r)
{
    sslc_contrastive *t = self;
    const sslc_pretrain_config *c = t->cfg;
    const int64_t B = t->B, D = t->D, K = c->queue;
    const float *views = b->x;
    size_t image = (size_t)(t->H * t->W * t->C);
    float m = sslc_moco_momentum(t, s);
    momentum_update(&t->key_enc.params, &t->enc.params, m);
    momentum_update(&t->key_head.params, &t->head.params, m);
    // Queries: view 0 (and view 1 when symmetric); keys: the other view(s).
    compute_keys(t, c->symmetric ? views : views + (size_t)B * image, s->step);
    sslc_resnet_prepare(t->run, &t->enc);
    const float *f = sslc_resnet_forward(t->run, &t->enc, views, true);
    const float *q = sslc_mlp_forward(t->head_run, &t->head, f, true);
    memset(t->dz, 0, (size_t)(t->n_query * D) * sizeof(float));
    const float *queue = sslc_queue_data(t->queue);
    float loss, acc;
    sslc_status st;
    if (!c->symmetric) {
        if ((st = sslc_infonce_forward(&loss, &acc, t->loss_ws, q, t->keys, queue, B, D, K,
                                       (float)c->tau)))
            return st;
        sslc_infonce_backward(t->dz, t->loss_ws, 1.0f, B, D, K);
    } else {
        // loss = (L(q1, k2) + L(q2, k1)) / 2, both against the same queue.
        float l1, l2, a1, a2;
        if ((st = sslc_infonce_forward(&l1, &a1, t->loss_ws, q, t->keys + B * D, queue, B, D,
                                       K, (float)c->tau)))
            return st;
        sslc_infonce_backward(t->dz, t->loss_ws, 0.5f, B, D, K);
        if ((st = sslc_infonce_forward(&l2, &a2, t->loss_ws, q + B * D, t->keys, queue, B, D,
                                       K, (float)c->tau)))
            return st;
        sslc_infonce_backward(t->dz + B * D, t->loss_ws, 0.5f, B, D, K);
        loss = 0.5f * (l1 + l2);
        acc = 0.5f * (a1 + a2);
    }
    // Enqueue after the logits are computed (MoCo Algorithm 1).
    if ((st = sslc_queue_enqueue(t->queue, t->keys, t->n_key)))
        return st;
    sslc_mlp_backward(t->head_run, &t->head, t->dfeat, t->dz);
    sslc_resnet_backward(t->run, &t->enc, t->dfeat);
    *r = (sslc_step_result){.loss = loss, .acc = acc};
    return SSLC_OK;
}
