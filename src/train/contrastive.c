// The contrastive model's set-up and its query side (contrastive.h).
#include "src/train/contrastive.h"

#include <stdlib.h>
#include <string.h>

#include "losses/infonce.h"
#include "losses/mocov3.h"
#include "losses/ntxent.h"
#include "src/dist/dist.h"

// sslc_bn_sync.sum over the processes. A layer cannot stop midway: the
// first failure is kept (ctx: the model's sync_status) and the step returns
// it when the pass ends.
static void sum_over_ranks(void *ctx, double *buf, int64_t n)
{
    sslc_status *failure = ctx;
    sslc_status st = sslc_dist_sum_f64(buf, (size_t)n);
    if (st && !*failure)
        *failure = st;
}

sslc_status sslc_contrastive_create(sslc_contrastive *t, const sslc_pretrain_config *c,
                                    int64_t H, int64_t W, int64_t C)
{
    *t = (sslc_contrastive){.cfg = c, .moco = strcmp(c->method, "moco") == 0,
                            .v3 = strcmp(c->method, "moco") == 0 && c->moco_version == 3,
                            .rank = sslc_dist_rank(), .ranks = sslc_dist_size(), .B = c->batch,
                            .H = H, .W = W, .C = C, .L = c->local_crops,
                            .h = c->local_crops > 0 ? c->local_recipe->size : 0};
    t->rank_sum = (sslc_bn_sync){.sum = sum_over_ranks, .ctx = &t->sync_status,
                                 .processes = t->ranks};
    t->per = t->moco && !c->symmetric ? 1 : 2;
    if (t->B % t->ranks)
        return sslc_error(SSLC_ERR_INVALID, "--batch %lld does not split over %d processes; "
                                            "give a multiple of %d",
                          (long long)t->B, t->ranks, t->ranks);
    t->b = t->B / t->ranks;
    t->G = c->chunk > 0 ? t->per * t->b / c->chunk : (c->bn_groups > 0 ? c->bn_groups : 1);
    if (c->chunk > 0 && (c->chunk % t->per || (t->per * t->b) % c->chunk))
        return sslc_error(SSLC_ERR_INVALID,
                          "--chunk %lld does not split the %lld query images of each process "
                          "into groups of whole pairs (%lld views each)",
                          (long long)c->chunk, (long long)(t->per * t->b), (long long)t->per);
    if (t->G < 1 || t->b % t->G)
        return sslc_error(SSLC_ERR_INVALID, "%lld pairs per process do not split into %lld "
                                            "batch-norm groups",
                          (long long)t->b, (long long)t->G);
    if (c->sync_bn && t->G > 1)
        return sslc_error(SSLC_ERR_INVALID, "--sync-bn takes its statistics over every "
                                            "process's whole batch: it does not combine with "
                                            "--bn-groups or --chunk");
    t->g = t->b / t->G;
    // MoCo v3 runs the predictor over the whole batch's projections at once
    // and its loss over both views: neither gradient caching over groups
    // nor extra local views are wired through the predictor yet.
    if (t->v3 && !c->symmetric)
        return sslc_error(SSLC_ERR_INVALID, "MoCo v3's loss is symmetric: it needs both views "
                                            "as queries (--symmetric)");
    if (t->v3 && t->G > 1)
        return sslc_error(SSLC_ERR_INVALID, "--moco-version 3 takes each process's batch as one "
                                            "batch-norm group: drop --bn-groups and --chunk");
    if (t->v3 && t->L > 0)
        return sslc_error(SSLC_ERR_INVALID, "--moco-version 3 does not take --local-crops yet "
                                            "(multi-crop runs with SimCLR and MoCo v1/v2)");
    // Multi-crop runs the local views as one more batch beside the global
    // ones: neither the gathers of several processes nor gradient caching
    // over groups know of it yet.
    if (t->L > 0 && t->ranks > 1)
        return sslc_error(SSLC_ERR_INVALID, "--local-crops runs on one process only, not %d "
                                            "(mpirun: drop --local-crops)",
                          t->ranks);
    if (t->L > 0 && t->G > 1)
        return sslc_error(SSLC_ERR_INVALID, "--local-crops takes the whole batch as one "
                                            "batch-norm group: it does not combine with "
                                            "--bn-groups or --chunk");
    // Gradient buckets of 1 MiB at least (SSLC_GRAD_BUCKET: floats, for tests).
    const char *bucket = getenv("SSLC_GRAD_BUCKET");
    t->bucket = bucket ? atoll(bucket) : (1 << 18);

    sslc_status st;
    if ((st = sslc_encoder_create(&t->enc, &c->encoder)))
        return st;
    sslc_encoder_init(&t->enc, c->seed);
    if ((st = sslc_mlp_create(&t->head, t->enc.feature_dim, c->head)))
        return st;
    sslc_mlp_init(&t->head, c->seed + 1);
    t->D = t->head.out_dim;
    const int64_t nq = t->per * t->g; // query images through the encoder at a time
    if ((st = sslc_encoder_run_create(&t->run, &t->enc, nq, H, W)) ||
        (st = sslc_mlp_run_create(&t->head_run, &t->head, nq)) ||
        (st = sslc_optim_create(&t->opt_enc, &c->optim, t->enc.params)) ||
        (st = sslc_optim_create(&t->opt_head, &c->optim, &t->head.params)))
        return st;
    if (t->v3) { // the predictor: seed + 2 (the encoder seed, the projector seed + 1)
        if ((st = sslc_mlp_create(&t->pred, t->D, c->predictor)))
            return st;
        sslc_mlp_init(&t->pred, c->seed + 2);
        if (t->pred.out_dim != t->D)
            return sslc_error(SSLC_ERR_INVALID, "MoCo v3: the predictor '%s' maps %lld to %lld "
                                                "dimensions; it must keep the projection's %lld",
                              c->predictor, (long long)t->D, (long long)t->pred.out_dim,
                              (long long)t->D);
        if ((st = sslc_mlp_run_create(&t->pred_run, &t->pred, nq)) ||
            (st = sslc_optim_create(&t->opt_pred, &c->optim, &t->pred.params)))
            return st;
    }
    const int64_t nl = t->L * t->b; // local views through the encoder at once
    if (t->L > 0 && ((st = sslc_encoder_run_create(&t->local_run, &t->enc, nl, t->h, t->h)) ||
                     (st = sslc_mlp_run_create(&t->local_head_run, &t->head, nl))))
        return st;
    // Statistics: sync-BN over every process; else one group's, averaged
    // over groups and processes for the running update when there are several.
    const sslc_bn_sync *sync = c->sync_bn && t->ranks > 1 ? &t->rank_sum : NULL;
    sslc_bn_running running =
        t->G * (sync ? 1 : t->ranks) > 1 ? SSLC_BN_RUNNING_ACCUMULATE : SSLC_BN_RUNNING_UPDATE;
    sslc_encoder_run_set_bn(t->run, running, sync);
    sslc_mlp_run_set_bn(t->head_run, running, sync);
    if (t->pred_run)
        sslc_mlp_run_set_bn(t->pred_run, running, sync);

    const int64_t nz = (t->per + t->L) * t->b * t->D, nf = nq > nl ? nq : nl;
    size_t ws = t->v3     ? sslc_mocov3_workspace_size(t->b, t->B, t->D)
                : t->moco ? sslc_infonce_workspace_size(t->b, t->D, c->queue)
                          : sslc_ntxent_workspace_size((2 + t->L) * t->B, t->D);
    t->loss_ws = sslc_aligned_alloc(ws);
    t->z = sslc_aligned_alloc((size_t)nz * sizeof(float));
    t->dz = sslc_aligned_alloc((size_t)nz * sizeof(float));
    t->dz_group = sslc_aligned_alloc((size_t)(nq * t->D) * sizeof(float));
    t->dfeat = sslc_aligned_alloc((size_t)(nf * t->enc.feature_dim) * sizeof(float));
    if (!t->loss_ws || !t->z || !t->dz || !t->dz_group || !t->dfeat)
        return SSLC_ERR_NOMEM;
    if (t->v3 && !(t->dp = sslc_aligned_alloc((size_t)nz * sizeof(float))))
        return SSLC_ERR_NOMEM;
    if (t->G > 1 &&
        !(t->group_x = sslc_aligned_alloc((size_t)(nq * H * W * C) * sizeof(float))))
        return SSLC_ERR_NOMEM;
    if (!t->moco && t->ranks > 1) {
        t->z_all = sslc_aligned_alloc((size_t)(2 * t->B * t->D) * sizeof(float));
        t->dz_all = sslc_aligned_alloc((size_t)(2 * t->B * t->D) * sizeof(float));
        t->gather = sslc_aligned_alloc((size_t)(2 * t->B * t->D) * sizeof(float));
        if (!t->z_all || !t->dz_all || !t->gather)
            return SSLC_ERR_NOMEM;
    }
    return t->moco ? sslc_moco_build(t) : SSLC_OK;
}

void sslc_contrastive_destroy(sslc_contrastive *t)
{
    sslc_encoder_run_destroy(t->run);
    sslc_encoder_run_destroy(t->key_run);
    sslc_encoder_run_destroy(t->local_run);
    sslc_mlp_run_destroy(t->local_head_run);
    sslc_mlp_run_destroy(t->head_run);
    sslc_mlp_run_destroy(t->key_head_run);
    sslc_mlp_run_destroy(t->pred_run);
    sslc_encoder_destroy(&t->enc);
    sslc_encoder_destroy(&t->key_enc);
    sslc_mlp_destroy(&t->head);
    sslc_mlp_destroy(&t->key_head);
    sslc_mlp_destroy(&t->pred);
    sslc_optim_destroy(t->opt_enc);
    sslc_optim_destroy(t->opt_head);
    sslc_optim_destroy(t->opt_pred);
    sslc_queue_destroy(t->queue);
    float *buffers[] = {t->loss_ws, t->group_x, t->z, t->dz, t->dz_group, t->dfeat, t->z_all,
                        t->dz_all, t->gather, t->key_all, t->key_in, t->key_part, t->keys, t->dp};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        free(buffers[i]);
    free(t->perm);
    memset(t, 0, sizeof *t);
}

// Group k's query images as one encoder batch: view v of its pairs at rows
// v * g .. (the batch's rows v * b + k * g ..).
static const float *group_views(sslc_contrastive *t, const float *x, int64_t k)
{
    if (t->G == 1)
        return x;
    const size_t image = (size_t)(t->H * t->W * t->C), rows = (size_t)t->g * image;
    for (int64_t v = 0; v < t->per; v++)
        memcpy(t->group_x + (size_t)v * rows, x + (size_t)(v * t->b + k * t->g) * image,
               rows * sizeof(float));
    return t->group_x;
}

// Rows of group k between a (per * g, D) group block and the (per * b, D)
// view-major block of the whole slice.
static void group_rows(sslc_contrastive *t, float *dst, const float *src, int64_t k,
                       bool to_slice)
{
    const size_t rows = (size_t)(t->g * t->D);
    for (int64_t v = 0; v < t->per; v++) {
        size_t in_slice = (size_t)((v * t->b + k * t->g) * t->D), in_group = (size_t)v * rows;
        if (to_slice)
            memcpy(dst + in_slice, src + in_group, rows * sizeof(float));
        else
            memcpy(dst + in_group, src + in_slice, rows * sizeof(float));
    }
}

sslc_status sslc_contrastive_embed(sslc_contrastive *t, const sslc_train_batch *batch)
{
    const float *x = batch->x;
    sslc_encoder_prepare(t->run, &t->enc);
    for (int64_t k = 0; k < t->G; k++) {
        const float *f = sslc_encoder_forward(t->run, &t->enc, group_views(t, x, k), true);
        const float *z = sslc_mlp_forward(t->head_run, &t->head, f, true);
        group_rows(t, t->z, z, k, true);
    }
    if (t->G * (t->cfg->sync_bn ? 1 : t->ranks) > 1) {
        const sslc_bn_sync *across = t->cfg->sync_bn || t->ranks == 1 ? NULL : &t->rank_sum;
        sslc_encoder_bn_apply(t->run, &t->enc, t->G, across);
        sslc_mlp_bn_apply(t->head_run, &t->head, t->G, across);
    }
    if (t->L > 0) { // one process, one group (create): local running statistics update directly
        sslc_encoder_prepare(t->local_run, &t->enc);
        const float *f = sslc_encoder_forward(t->local_run, &t->enc, batch->x_local, true);
        const float *z = sslc_mlp_forward(t->local_head_run, &t->head, f, true);
        memcpy(t->z + t->per * t->b * t->D, z, (size_t)(t->L * t->b * t->D) * sizeof(float));
    }
    return t->sync_status;
}

sslc_status sslc_contrastive_backward(sslc_contrastive *t, const sslc_train_batch *batch)
{
    const float *x = batch->x;
    if (t->L > 0) { // the local views' share first: the global one may end in gradient sums
        sslc_mlp_backward(t->local_head_run, &t->head, t->dfeat, t->dz + t->per * t->b * t->D);
        sslc_encoder_backward(t->local_run, &t->enc, t->dfeat);
    }
    if (t->G > 1) { // the recomputed forwards leave the running statistics alone
        sslc_encoder_run_set_bn(t->run, SSLC_BN_RUNNING_FROZEN, NULL);
        sslc_mlp_run_set_bn(t->head_run, SSLC_BN_RUNNING_FROZEN, NULL);
    }
    for (int64_t k = 0; k < t->G; k++) {
        if (t->G > 1) {
            const float *f = sslc_encoder_forward(t->run, &t->enc, group_views(t, x, k), true);
            sslc_mlp_forward(t->head_run, &t->head, f, true);
        }
        group_rows(t, t->dz_group, t->dz, k, false);
        sslc_mlp_backward(t->head_run, &t->head, t->dfeat, t->dz_group);
        bool last = k == t->G - 1 && t->ranks > 1;
        if (last) { // the head's gradients are final: sum them while the encoder's backward runs
            sslc_grad_sync_begin(&t->head_sync, &t->head.params, t->bucket);
            sslc_grad_sync_ready(&t->head_sync, 0);
            sslc_grad_sync_begin(&t->enc_sync, t->enc.params, t->bucket);
            sslc_encoder_run_set_grads_ready(t->run, sslc_grad_sync_ready, &t->enc_sync);
        }
        sslc_encoder_backward(t->run, &t->enc, t->dfeat);
        if (last)
            sslc_encoder_run_set_grads_ready(t->run, NULL, NULL);
    }
    if (t->G > 1) {
        sslc_encoder_run_set_bn(t->run, SSLC_BN_RUNNING_ACCUMULATE, NULL);
        sslc_mlp_run_set_bn(t->head_run, SSLC_BN_RUNNING_ACCUMULATE, NULL);
    }
    if (t->ranks == 1)
        return SSLC_OK;
    sslc_status st = sslc_grad_sync_finish(&t->enc_sync), sh = sslc_grad_sync_finish(&t->head_sync);
    return t->sync_status ? t->sync_status : st ? st : sh;
}

void sslc_contrastive_reorder(const sslc_contrastive *t, float *dst, const float *src,
                              int64_t row, int64_t per, bool to_global)
{
    const size_t block = (size_t)(t->b * row);
    for (int r = 0; r < t->ranks; r++)
        for (int64_t v = 0; v < per; v++) {
            size_t global = (size_t)((v * t->B + r * t->b) * row);
            size_t ranked = (size_t)(r * per + v) * block;
            if (to_global)
                memcpy(dst + global, src + ranked, block * sizeof(float));
            else
                memcpy(dst + ranked, src + global, block * sizeof(float));
        }
}
