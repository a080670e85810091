#include "src/train/pretrain.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/pipeline.h"
#include "losses/infonce.h"
#include "src/eval/knn.h"
#include "losses/ntxent.h"
#include "losses/queue.h"
#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/eval/features.h"
#include "src/io/checkpoint.h"
#include "src/train/interrupt.h"
#include "src/models/mlp.h"
#include "src/optim/schedule.h"
#include "src/core/progress.h"

typedef struct trainer {
    const sslc_pretrain_config *cfg;
    bool moco;
    int64_t B, H, W, C, D; // pairs, view size, channels, projection dim
    int64_t n_query, n_key; // images through the query / key encoder per step

    sslc_resnet enc, key_enc;
    sslc_mlp head, key_head;
    sslc_resnet_run *run, *key_run;
    sslc_mlp_run *head_run, *key_head_run;
    sslc_optim *opt_enc, *opt_head;
    sslc_queue *queue;
    sslc_schedule schedule;

    float *loss_ws;  // NT-Xent or InfoNCE workspace
    float *dz;       // (n_query, D)
    float *dfeat;    // (n_query, feature_dim)
    float *key_in;   // (n_key, H, W, C): key images in shuffled order
    float *keys;     // (n_key, D): normalised keys in batch order
    float *key_norm; // (n_key,)
    int64_t *perm;   // (n_key,) shuffle-BN permutation

    int64_t step, epoch, samples;
    int64_t total_steps;
    FILE *metrics;
} trainer;

// ---- set-up ----------------------------------------------------------------------

static sslc_status build(trainer *t, const sslc_recipe *recipe)
{
    const sslc_pretrain_config *c = t->cfg;
    sslc_status st;
    t->moco = strcmp(c->method, "moco") == 0;
    t->B = c->batch;
    t->H = t->W = recipe->size;
    t->C = recipe->channels;
    if ((st = sslc_resnet_create(&t->enc, &c->encoder)))
        return st;
    sslc_resnet_init(&t->enc, c->seed);
    if ((st = sslc_mlp_create(&t->head, t->enc.feature_dim, c->head)))
        return st;
    sslc_mlp_init(&t->head, c->seed + 1);
    t->D = t->head.out_dim;
    t->n_query = t->moco && !c->symmetric ? t->B : 2 * t->B;
    t->n_key = t->moco ? (c->symmetric ? 2 * t->B : t->B) : 0;
    if ((st = sslc_resnet_run_create(&t->run, &t->enc, t->n_query, t->H, t->W)) ||
        (st = sslc_mlp_run_create(&t->head_run, &t->head, t->n_query)))
        return st;
    if ((st = sslc_optim_create(&t->opt_enc, &c->optim, &t->enc.params)) ||
        (st = sslc_optim_create(&t->opt_head, &c->optim, &t->head.params)))
        return st;
    size_t ws = t->moco ? sslc_infonce_workspace_size(t->B, t->D, c->queue)
                        : sslc_ntxent_workspace_size(t->n_query, t->D);
    t->loss_ws = sslc_aligned_alloc(ws);
    t->dz = sslc_aligned_alloc((size_t)(t->n_query * t->D) * sizeof(float));
    t->dfeat = sslc_aligned_alloc((size_t)(t->n_query * t->enc.feature_dim) * sizeof(float));
    if (!t->loss_ws || !t->dz || !t->dfeat)
        return SSLC_ERR_NOMEM;
    if (!t->moco)
        return SSLC_OK;

    // MoCo: the key encoder and head start as copies of the query ones.
    if (t->n_key % c->shuffle_groups)
        return sslc_error(SSLC_ERR_INVALID,
                          "moco: %lld key images do not split into %lld shuffle-BN groups; "
                          "choose --shuffle-groups dividing the batch",
                          (long long)t->n_key, (long long)c->shuffle_groups);
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

static void destroy(trainer *t)
{
    sslc_resnet_run_destroy(t->run);
    sslc_resnet_run_destroy(t->key_run);
    sslc_mlp_run_destroy(t->head_run);
    sslc_mlp_run_destroy(t->key_head_run);
    sslc_resnet_destroy(&t->enc);
    sslc_resnet_destroy(&t->key_enc);
    sslc_mlp_destroy(&t->head);
    sslc_mlp_destroy(&t->key_head);
    sslc_optim_destroy(t->opt_enc);
    sslc_optim_destroy(t->opt_head);
    sslc_queue_destroy(t->queue);
    free(t->loss_ws);
    free(t->dz);
    free(t->dfeat);
    free(t->key_in);
    free(t->keys);
    free(t->key_norm);
    free(t->perm);
    if (t->metrics)
        fclose(t->metrics);
}

// ---- checkpoints -----------------------------------------------------------------

enum { MAX_PARTS = 4, MAX_OPTIM = 4, MAX_ATTRS = 8 };

typedef struct ckpt_view {
    sslc_ckpt c;
    sslc_ckpt_attr model[MAX_ATTRS];
    sslc_ckpt_part parts[MAX_PARTS];
    sslc_ckpt_optim_buffer optim[MAX_OPTIM];
    sslc_ckpt_array arrays[3];
    int64_t queue_ptr, total_steps;
} ckpt_view;

// Describes the trainer's whole state for sslc_ckpt_save / sslc_ckpt_load.
static void describe(trainer *t, ckpt_view *v)
{
    const sslc_pretrain_config *c = t->cfg;
    memset(v, 0, sizeof *v);
    size_t na = 0;
    v->model[na++] = (sslc_ckpt_attr){"arch", SSLC_CKPT_ATTR_STRING, 0, 0, sslc_resnet_arch(&c->encoder)};
    v->model[na++] = (sslc_ckpt_attr){"in_channels", SSLC_CKPT_ATTR_INT, c->encoder.in_channels, 0, NULL};
    v->model[na++] = (sslc_ckpt_attr){"width", SSLC_CKPT_ATTR_INT, c->encoder.width, 0, NULL};
    v->model[na++] = (sslc_ckpt_attr){"cifar_stem", SSLC_CKPT_ATTR_INT, c->encoder.cifar_stem, 0, NULL};
    v->model[na++] = (sslc_ckpt_attr){"feature_dim", SSLC_CKPT_ATTR_INT, t->enc.feature_dim, 0, NULL};
    v->model[na++] = (sslc_ckpt_attr){"image_size", SSLC_CKPT_ATTR_INT, c->image_size, 0, NULL};
    v->model[na++] = (sslc_ckpt_attr){"projector", SSLC_CKPT_ATTR_STRING, 0, 0, c->head};
    size_t np = 0;
    v->parts[np++] = (sslc_ckpt_part){"encoder", &t->enc.params};
    v->parts[np++] = (sslc_ckpt_part){"projector", &t->head.params};
    if (t->moco) {
        v->parts[np++] = (sslc_ckpt_part){"key_encoder", &t->key_enc.params};
        v->parts[np++] = (sslc_ckpt_part){"key_projector", &t->key_head.params};
    }
    size_t no = 0;
    for (int i = 0; i < sslc_optim_state_count(t->opt_enc); i++) {
        v->optim[no++] = (sslc_ckpt_optim_buffer){"encoder", sslc_optim_state_name(t->opt_enc, i),
                                                  sslc_optim_state(t->opt_enc, i)};
        v->optim[no++] = (sslc_ckpt_optim_buffer){"projector", sslc_optim_state_name(t->opt_head, i),
                                                  sslc_optim_state(t->opt_head, i)};
    }
    size_t nr = 0;
    v->total_steps = t->total_steps;
    v->arrays[nr++] = (sslc_ckpt_array){"schedule_total_steps", SSLC_CKPT_I64, 1, {1}, &v->total_steps};
    if (t->moco) {
        v->queue_ptr = sslc_queue_pointer(t->queue);
        v->arrays[nr++] = (sslc_ckpt_array){"queue", SSLC_CKPT_F32, 2, {c->queue, t->D},
                                            sslc_queue_data(t->queue)};
        v->arrays[nr++] = (sslc_ckpt_array){"queue_ptr", SSLC_CKPT_I64, 1, {1}, &v->queue_ptr};
    }
    v->c = (sslc_ckpt){
        .method = c->method, .config = c->config_text, .epoch = t->epoch, .step = t->step,
        .samples_seen = t->samples, .seed = c->seed, .model = v->model, .n_model = na,
        .parts = v->parts, .n_parts = np, .optimizer = sslc_optim_kind_name(c->optim.kind),
        .optimizer_step = sslc_optim_steps(t->opt_enc), .optim = v->optim, .n_optim = no,
        .arrays = v->arrays, .n_arrays = nr};
}

static sslc_status save(trainer *t, bool is_best)
{
    ckpt_view v;
    describe(t, &v);
    return sslc_ckpt_save_run(t->cfg->out, &v.c, t->cfg->keep, is_best);
}

static sslc_status resume(trainer *t, const char *path)
{
    ckpt_view v;
    describe(t, &v);
    v.c.optimizer_step = 0;
    sslc_status st = sslc_ckpt_load(path, &v.c);
    if (st)
        return st;
    t->step = v.c.step;
    t->epoch = v.c.epoch;
    t->samples = v.c.samples_seen;
    t->total_steps = v.total_steps;
    if ((st = sslc_optim_set_steps(t->opt_enc, v.c.optimizer_step)) ||
        (st = sslc_optim_set_steps(t->opt_head, v.c.optimizer_step)))
        return st;
    if (t->moco && (st = sslc_queue_set_pointer(t->queue, v.queue_ptr)))
        return st;
    return SSLC_OK;
}

// ---- one step ---------------------------------------------------------------------

static void zero_grads(trainer *t)
{
    sslc_params_zero_grad(&t->enc.params);
    sslc_params_zero_grad(&t->head.params);
}

static sslc_status simclr_step(trainer *t, const float *views, float *loss, float *acc)
{
    sslc_resnet_prepare(t->run, &t->enc);
    const float *f = sslc_resnet_forward(t->run, &t->enc, views, true);
    const float *z = sslc_mlp_forward(t->head_run, &t->head, f, true);
    sslc_status st = sslc_ntxent_forward(loss, acc, t->loss_ws, z, t->n_query, t->D,
                                         (float)t->cfg->tau);
    if (st)
        return st;
    zero_grads(t);
    memset(t->dz, 0, (size_t)(t->n_query * t->D) * sizeof(float));
    sslc_ntxent_backward(t->dz, t->loss_ws, 1.0f, t->n_query, t->D);
    sslc_mlp_backward(t->head_run, &t->head, t->dfeat, t->dz);
    sslc_resnet_backward(t->run, &t->enc, t->dfeat);
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

// Keys for the n_key key images: shuffle-BN on one process, as the official
// CIFAR demo's SplitBatchNorm: the images are permuted and run through the
// key encoder in groups with their own batch statistics, so no key shares
// BN statistics with its own query's batch slice in a predictable way.
static void compute_keys(trainer *t, const float *key_images)
{
    const sslc_pretrain_config *c = t->cfg;
    size_t image = (size_t)(t->H * t->W * t->C);
    sslc_rng rng = sslc_rng_make(c->seed, 0x5b0ff1e, (uint64_t)t->step, 0, 0);
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

static float moco_momentum(const trainer *t)
{
    const sslc_pretrain_config *c = t->cfg;
    if (!c->momentum_cosine || t->total_steps <= 0)
        return (float)c->momentum;
    double progress = fmin(1.0, (double)t->step / (double)t->total_steps);
    return (float)(1.0 - (1.0 - c->momentum) * (cos(M_PI * progress) + 1.0) / 2.0);
}

static sslc_status moco_step(trainer *t, const float *views, float *loss, float *acc)
{
    const sslc_pretrain_config *c = t->cfg;
    const int64_t B = t->B, D = t->D, K = c->queue;
    size_t image = (size_t)(t->H * t->W * t->C);
    momentum_update(&t->key_enc.params, &t->enc.params, moco_momentum(t));
    momentum_update(&t->key_head.params, &t->head.params, moco_momentum(t));
    // Queries: view 0 (and view 1 when symmetric); keys: the other view(s).
    compute_keys(t, c->symmetric ? views : views + (size_t)B * image);
    sslc_resnet_prepare(t->run, &t->enc);
    const float *f = sslc_resnet_forward(t->run, &t->enc, views, true);
    const float *q = sslc_mlp_forward(t->head_run, &t->head, f, true);
    zero_grads(t);
    memset(t->dz, 0, (size_t)(t->n_query * D) * sizeof(float));
    const float *queue = sslc_queue_data(t->queue);
    sslc_status st;
    if (!c->symmetric) {
        if ((st = sslc_infonce_forward(loss, acc, t->loss_ws, q, t->keys, queue, B, D, K,
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
        *loss = 0.5f * (l1 + l2);
        *acc = 0.5f * (a1 + a2);
    }
    // Enqueue after the logits are computed (MoCo Algorithm 1).
    if ((st = sslc_queue_enqueue(t->queue, t->keys, t->n_key)))
        return st;
    sslc_mlp_backward(t->head_run, &t->head, t->dfeat, t->dz);
    sslc_resnet_backward(t->run, &t->enc, t->dfeat);
    return SSLC_OK;
}

// ---- monitor ----------------------------------------------------------------------

static sslc_status knn_monitor(trainer *t, double *top1)
{
    const sslc_pretrain_config *c = t->cfg;
    sslc_features bank, val;
    sslc_status st = sslc_features_extract(&bank, &t->enc, c->knn_bank, c->eval_recipe, 256,
                                           c->knn_bank_limit, c->seed);
    if (st)
        return st;
    if ((st = sslc_features_extract(&val, &t->enc, c->knn_val, c->eval_recipe, 256, 0, c->seed))) {
        sslc_features_free(&bank);
        return st;
    }
    sslc_knn_normalize(bank.x, bank.n, bank.dim);
    sslc_knn_normalize(val.x, val.n, val.dim);
    int64_t classes = sslc_dataset_num_classes(c->knn_bank);
    void *ws = sslc_malloc(sslc_knn_workspace_size(bank.n, classes, c->knn_k));
    st = ws ? sslc_knn_classify(NULL, top1, ws, val.x, val.labels, bank.x, bank.labels, val.n,
                                bank.n, bank.dim, classes, c->knn_k, (float)c->knn_tau)
            : SSLC_ERR_NOMEM;
    free(ws);
    sslc_features_free(&bank);
    sslc_features_free(&val);
    return st;
}

// ---- the loop ---------------------------------------------------------------------

static void log_metrics(trainer *t, const char *fmt, ...) SSLC_PRINTF(2, 3);
static void log_metrics(trainer *t, const char *fmt, ...)
{
    if (!t->metrics)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->metrics, fmt, ap);
    va_end(ap);
    fputc('\n', t->metrics);
    fflush(t->metrics);
}

static void set_schedule(trainer *t, int64_t total)
{
    const sslc_pretrain_config *c = t->cfg;
    int64_t warmup = (int64_t)(c->warmup * (double)total);
    if (warmup >= total)
        warmup = total - 1;
    t->total_steps = total;
    sslc_schedule_init(&t->schedule, c->lr, c->final_lr, warmup, total);
}

sslc_status sslc_pretrain(const sslc_pretrain_config *cfg, const sslc_dataset *ds,
                          const sslc_recipe *recipe, sslc_pretrain_result *res)
{
    trainer t = {.cfg = cfg};
    sslc_pipeline *pipe = NULL;
    memset(res, 0, sizeof *res);
    res->knn_top1 = res->best_knn_top1 = res->knn_initial = -1.0;
    sslc_status st = sslc_make_dir(cfg->out, "run folder");
    if (!st)
        st = build(&t, recipe);
    sslc_pipeline_config pc;
    sslc_pipeline_config_default(&pc);
    pc.batch_size = cfg->batch;
    pc.views = 2;
    pc.seed = cfg->seed;
    pc.async = cfg->async_data;
    if (!st)
        st = sslc_pipeline_create(&pipe, ds, recipe, &pc);
    if (st)
        goto done;
    const int64_t per_epoch = sslc_pipeline_steps_per_epoch(pipe);
    if (per_epoch < 1) {
        st = sslc_error(SSLC_ERR_INVALID, "pretrain: %lld images make no batch of %lld",
                        (long long)sslc_dataset_count(ds), (long long)cfg->batch);
        goto done;
    }
    set_schedule(&t, cfg->epochs * per_epoch);
    if (cfg->resume && (st = resume(&t, cfg->resume)))
        goto done;
    if (cfg->resume)
        set_schedule(&t, t.total_steps);
    bool budget_fitted = cfg->resume != NULL;
    double fit_from = 0.0;

    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->out);
    t.metrics = fopen(path, cfg->resume ? "a" : "w");
    if (!t.metrics) {
        st = sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    // The resolved configuration, readable without sslc (also in every checkpoint).
    snprintf(path, sizeof path, "%s/config.txt", cfg->out);
    FILE *conf = fopen(path, "w");
    bool written = conf && fputs(cfg->config_text ? cfg->config_text : "", conf) >= 0;
    if (conf && fclose(conf) != 0)
        written = false;
    if (!written) {
        st = sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    if ((st = sslc_interrupt_install()))
        goto done;
    sslc_info("%s: %lld images, %lld steps per epoch, %lld steps in all; run folder %s",
              cfg->method, (long long)sslc_dataset_count(ds), (long long)per_epoch,
              (long long)t.total_steps, cfg->out);

    if (cfg->knn_bank && cfg->knn_val && !cfg->resume) {
        // The same encoder at initialisation: the baseline the monitor's
        // later figures are to be read against.
        if ((st = knn_monitor(&t, &res->knn_initial)))
            goto done;
        sslc_info("kNN top-1 at initialisation %.2f%% (k=%lld)", 100.0 * res->knn_initial,
                  (long long)cfg->knn_k);
        log_metrics(&t, "{\"step\": 0, \"epoch\": 0, \"knn_top1\": %.4f}", res->knn_initial);
    }
    sslc_progress bar;
    sslc_progress_init(&bar, stderr, cfg->log_every, t.total_steps, t.step);
    const double start = sslc_now();
    double wait_total = 0.0, window_loss = 0.0, window_acc = 0.0, window_start = start;
    int64_t window_n = 0, first_window = -1;
    int64_t start_step = t.step;
    bool stop = false;
    sslc_batch fixed_copy;
    const sslc_batch *fixed = NULL;
    float *fixed_views = NULL;
    while (!stop && t.step < t.total_steps) {
        int64_t first = t.step - t.epoch * per_epoch;
        if (first >= per_epoch) { // resumed exactly at an epoch boundary
            t.epoch++;
            continue;
        }
        if ((st = sslc_pipeline_begin_epoch(pipe, t.epoch, first)))
            break;
        for (;;) {
            double t0 = sslc_now();
            const sslc_batch *b = fixed;
            if (!b && ((st = sslc_pipeline_next(pipe, &b)) || !b))
                break;
            if (cfg->fixed_batch && !fixed) {
                // The pipeline reuses its buffers once the epoch moves on:
                // keep a private copy of the batch.
                size_t n = (size_t)(b->views_per_sample * b->count * b->height * b->width *
                                    b->channels);
                fixed_views = sslc_aligned_alloc(n * sizeof(float));
                if (!fixed_views) {
                    st = SSLC_ERR_NOMEM;
                    break;
                }
                memcpy(fixed_views, b->views, n * sizeof(float));
                fixed_copy = *b;
                fixed_copy.views = fixed_views;
                fixed = &fixed_copy;
                b = fixed;
            }
            double waited = sslc_now() - t0;
            wait_total += waited;
            float loss = 0, acc = 0;
            st = t.moco ? moco_step(&t, b->views, &loss, &acc)
                        : simclr_step(&t, b->views, &loss, &acc);
            if (st)
                break;
            if (!isfinite(loss)) {
                st = sslc_error(SSLC_ERR_INVALID,
                                "pretrain: the loss diverged (%g) at step %lld; lower --lr",
                                (double)loss, (long long)t.step);
                break;
            }
            float lr = (float)sslc_schedule_lr(&t.schedule, t.step);
            if ((st = sslc_optim_step(t.opt_enc, &t.enc.params, lr)) ||
                (st = sslc_optim_step(t.opt_head, &t.head.params, lr)))
                break;
            t.step++;
            t.samples += b->count;
            window_loss += loss;
            window_acc += acc;
            window_n++;
            // Fit the schedule to a time budget once the step time is known:
            // timed over steps 5-25, after the first steps' one-off set-up
            // (still inside warmup, so the learning rate has no jump).
            int64_t done_here = t.step - start_step;
            if (cfg->minutes > 0 && !budget_fitted && done_here == 5)
                fit_from = sslc_now();
            if (cfg->minutes > 0 && !budget_fitted && done_here == 25) {
                double now = sslc_now(), per_step = (now - fit_from) / 20.0;
                int64_t fit = t.step + (int64_t)((cfg->minutes * 60.0 - (now - start)) / per_step);
                if (fit < t.total_steps) {
                    set_schedule(&t, fit > t.step + 1 ? fit : t.step + 1);
                    bar.total = t.total_steps;
                    sslc_info("time budget %.1f min at %.3f s/step: %lld steps", cfg->minutes,
                              per_step, (long long)t.total_steps);
                }
                budget_fitted = true;
            }
            double elapsed = sslc_now() - start;
            char text[256];
            snprintf(text, sizeof text,
                     "epoch %lld loss %.4f acc %.2f lr %.4f %.0f pairs/s wait %.0f%%",
                     (long long)t.epoch, (double)loss, (double)acc, (double)lr,
                     (double)(done_here * cfg->batch) / elapsed,
                     100.0 * wait_total / elapsed);
            sslc_progress_update(&bar, t.step, text);
            if (t.step % cfg->log_every == 0 || t.step == t.total_steps) {
                double now = sslc_now();
                log_metrics(&t,
                            "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"acc\": %.4f, "
                            "\"lr\": %.6g, \"pairs_per_s\": %.2f, \"data_wait\": %.4f, "
                            "\"time\": %.2f}",
                            (long long)t.step, (long long)t.epoch, window_loss / window_n,
                            window_acc / window_n, (double)lr,
                            (double)(window_n * cfg->batch) / (now - window_start),
                            wait_total / (now - start), now - start);
                if (first_window < 0) {
                    first_window = 1;
                    res->first_loss = window_loss / window_n;
                }
                res->last_loss = window_loss / window_n;
                window_loss = window_acc = 0.0;
                window_n = 0;
                window_start = now;
            }
            bool timeout = cfg->minutes > 0 && sslc_now() - start >= cfg->minutes * 60.0;
            bool limit = cfg->max_steps > 0 && t.step - start_step >= cfg->max_steps;
            if (sslc_interrupt_pending() || timeout || limit || t.step >= t.total_steps) {
                stop = true;
                res->interrupted = sslc_interrupt_pending() != 0;
                break;
            }
            if (cfg->ckpt_every > 0 && t.step % cfg->ckpt_every == 0 && (st = save(&t, false)))
                break;
        }
        if (st)
            break;
        bool epoch_done = t.step - t.epoch * per_epoch >= per_epoch;
        if (epoch_done)
            t.epoch++;
        bool last = stop || t.step >= t.total_steps;
        bool is_best = false;
        bool due = epoch_done && cfg->knn_every > 0 && t.epoch % cfg->knn_every == 0;
        if (cfg->knn_bank && cfg->knn_val && (due || last) && !res->interrupted) {
            sslc_progress_break(&bar);
            double top1 = 0.0;
            if ((st = knn_monitor(&t, &top1)))
                break;
            res->knn_top1 = top1;
            is_best = top1 > res->best_knn_top1;
            if (is_best)
                res->best_knn_top1 = top1;
            sslc_info("epoch %lld: kNN top-1 %.2f%% (k=%lld)", (long long)t.epoch, 100.0 * top1,
                      (long long)cfg->knn_k);
            log_metrics(&t, "{\"step\": %lld, \"epoch\": %lld, \"knn_top1\": %.4f}",
                        (long long)t.step, (long long)t.epoch, top1);
        }
        if (epoch_done || last) {
            sslc_progress_break(&bar);
            if ((st = save(&t, is_best)))
                break;
        }
    }
    sslc_progress_break(&bar);
    sslc_interrupt_restore();
    free(fixed_views);
    res->steps = t.step;
    res->epochs = t.epoch;
    res->seconds = sslc_now() - start;
    res->pairs_per_s = (double)((t.step - start_step) * cfg->batch) / res->seconds;
    res->data_wait_fraction = wait_total / res->seconds;
    if (!st && res->interrupted)
        st = sslc_error(SSLC_ERR_INTERRUPTED,
                        "interrupted at step %lld; the run is saved in %s (continue with "
                        "--resume %s)",
                        (long long)t.step, cfg->out, cfg->out);
    if (!st && res->data_wait_fraction > 0.0)
        sslc_debug("data wait %.1f%%", 100.0 * res->data_wait_fraction);
    if (!st && sslc_pipeline_skipped(pipe) > 0)
        sslc_warn("%lld images could not be decoded and were skipped",
                  (long long)sslc_pipeline_skipped(pipe));
done:
    sslc_pipeline_destroy(pipe);
    destroy(&t);
    return st;
}
