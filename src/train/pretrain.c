// The pretraining driver: builds the contrastive model, its optimizers and
// the batch pipeline, describes the whole state for checkpoints, runs the
// kNN monitor, and hands the step function (SimCLR, MoCo or MoCo v3) to the loop.
#include "src/train/pretrain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/pipeline.h"
#include "data/subset.h"
#include "losses/infonce.h"
#include "losses/ntxent.h"
#include "src/core/fs.h"
#include "src/core/hash.h"
#include "src/core/log.h"
#include "src/dist/dist.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/eval/knn.h"
#include "src/io/checkpoint.h"
#include "src/train/contrastive.h"
#include "src/train/sources.h"

// ---- checkpoints -----------------------------------------------------------------

// Parts: encoder, projector, MoCo's key encoder and key projector, MoCo
// v3's predictor; optimizer buffers: up to 2 (AdamW) for each trained part.
enum { MAX_PARTS = 5, MAX_OPTIM = 6, MAX_ATTRS = SSLC_ENCODER_ATTRS + 2 };

typedef struct ckpt_view {
    sslc_ckpt c;
    sslc_ckpt_attr model[MAX_ATTRS];
    sslc_ckpt_part parts[MAX_PARTS];
    sslc_ckpt_optim_buffer optim[MAX_OPTIM];
    sslc_ckpt_array arrays[3];
    int64_t queue_ptr, total_steps;
} ckpt_view;

// Describes the whole state at position s for sslc_ckpt_save / sslc_ckpt_load.
static void describe(sslc_contrastive *t, const sslc_train_state *s, ckpt_view *v)
{
    const sslc_pretrain_config *c = t->cfg;
    memset(v, 0, sizeof *v);
    size_t na = sslc_encoder_attrs(v->model, &t->enc, c->image_size);
    v->model[na++] = (sslc_ckpt_attr){"projector", SSLC_CKPT_ATTR_STRING, 0, 0, c->head};
    if (t->v3)
        v->model[na++] = (sslc_ckpt_attr){"predictor", SSLC_CKPT_ATTR_STRING, 0, 0, c->predictor};
    size_t np = 0;
    v->parts[np++] = (sslc_ckpt_part){"encoder", t->enc.params};
    v->parts[np++] = (sslc_ckpt_part){"projector", &t->head.params};
    if (t->moco) {
        v->parts[np++] = (sslc_ckpt_part){"key_encoder", t->key_enc.params};
        v->parts[np++] = (sslc_ckpt_part){"key_projector", &t->key_head.params};
    }
    if (t->v3)
        v->parts[np++] = (sslc_ckpt_part){"predictor", &t->pred.params};
    size_t no = 0;
    for (int i = 0; i < sslc_optim_state_count(t->opt_enc); i++) {
        v->optim[no++] = (sslc_ckpt_optim_buffer){"encoder", sslc_optim_state_name(t->opt_enc, i),
                                                  sslc_optim_state(t->opt_enc, i)};
        v->optim[no++] = (sslc_ckpt_optim_buffer){"projector", sslc_optim_state_name(t->opt_head, i),
                                                  sslc_optim_state(t->opt_head, i)};
        if (t->v3)
            v->optim[no++] = (sslc_ckpt_optim_buffer){
                "predictor", sslc_optim_state_name(t->opt_pred, i), sslc_optim_state(t->opt_pred, i)};
    }
    size_t nr = 0;
    v->total_steps = s->total_steps;
    v->arrays[nr++] = (sslc_ckpt_array){"schedule_total_steps", SSLC_CKPT_I64, 1, {1}, &v->total_steps};
    if (t->queue) {
        v->queue_ptr = sslc_queue_pointer(t->queue);
        v->arrays[nr++] = (sslc_ckpt_array){"queue", SSLC_CKPT_F32, 2, {c->queue, t->D},
                                            sslc_queue_data(t->queue)};
        v->arrays[nr++] = (sslc_ckpt_array){"queue_ptr", SSLC_CKPT_I64, 1, {1}, &v->queue_ptr};
    }
    v->c = (sslc_ckpt){
        .method = c->method, .config = c->config_text, .epoch = s->epoch, .step = s->step,
        .samples_seen = s->samples, .seed = c->seed, .model = v->model, .n_model = na,
        .parts = v->parts, .n_parts = np, .optimizer = sslc_optim_kind_name(c->optim.kind),
        .optimizer_step = sslc_optim_steps(t->opt_enc), .optim = v->optim, .n_optim = no,
        .arrays = v->arrays, .n_arrays = nr};
}

// Several processes must hold the same state: the same weights (summed
// gradients, the same updates) and the same queue (the same keys enqueued).
// A hash of each, compared at every checkpoint, proves it.
static sslc_status check_ranks_agree(sslc_contrastive *t)
{
    const sslc_params *tables[] = {t->enc.params, &t->head.params, t->key_enc.params,
                                   &t->key_head.params, &t->pred.params};
    uint64_t h = SSLC_HASH64_INIT;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (tables[i] && tables[i]->values) { // key_enc.params: NULL without MoCo
            h = sslc_hash64(h, tables[i]->values, (size_t)tables[i]->n_values * sizeof(float));
            h = sslc_hash64(h, tables[i]->buffers, (size_t)tables[i]->n_buffers * sizeof(float));
        }
    if (t->queue)
        h = sslc_hash64(h, sslc_queue_data(t->queue),
                        (size_t)(t->cfg->queue * t->D) * sizeof(float));
    double mine[2] = {(double)(h >> 32), (double)(h & 0xffffffffu)};
    double *all = sslc_malloc((size_t)(2 * t->ranks) * sizeof(double));
    if (!all)
        return SSLC_ERR_NOMEM;
    sslc_status st = sslc_dist_gather_f64(mine, all, 2);
    for (int r = 1; !st && r < t->ranks; r++)
        if (all[2 * r] != all[0] || all[2 * r + 1] != all[1])
            st = sslc_error(SSLC_ERR_INTERNAL, "rank %d's weights, statistics or queue differ "
                                               "from rank 0's (a bug)",
                            r);
    free(all);
    return st;
}

// Rank 0 writes; every rank learns whether it worked, so a full disk stops
// all of them at the same step.
static sslc_status save(void *self, const sslc_train_state *s, bool is_best)
{
    sslc_contrastive *t = self;
    sslc_status st = t->ranks > 1 ? check_ranks_agree(t) : SSLC_OK;
    if (st)
        return st;
    if (t->rank == 0) {
        ckpt_view v;
        describe(t, s, &v);
        st = sslc_ckpt_save_run(t->cfg->out, &v.c, t->cfg->keep, is_best);
    }
    return sslc_dist_agree(st);
}

static sslc_status resume(sslc_contrastive *t, const char *path, sslc_train_state *s)
{
    ckpt_view v;
    describe(t, s, &v);
    v.c.optimizer_step = 0;
    sslc_status st = sslc_ckpt_load(path, &v.c);
    if (st)
        return st;
    *s = (sslc_train_state){.step = v.c.step, .epoch = v.c.epoch, .samples = v.c.samples_seen,
                            .total_steps = v.total_steps};
    if ((st = sslc_optim_set_steps(t->opt_enc, v.c.optimizer_step)) ||
        (st = sslc_optim_set_steps(t->opt_head, v.c.optimizer_step)) ||
        (t->opt_pred && (st = sslc_optim_set_steps(t->opt_pred, v.c.optimizer_step))))
        return st;
    if (t->queue && (st = sslc_queue_set_pointer(t->queue, v.queue_ptr)))
        return st;
    return SSLC_OK;
}

// ---- monitor ----------------------------------------------------------------------

static sslc_status knn_monitor(void *self, double *top1)
{
    sslc_contrastive *t = self;
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

// ---- the run ----------------------------------------------------------------------

// The images the kNN monitor (and so best.h5) is judged on, as a list in
// the run folder: a choice made on them is reproducible and checkable.
static sslc_status save_val_list(const sslc_dataset *val, const char *out)
{
    sslc_subset all = {.n = sslc_dataset_count(val)};
    all.indices = sslc_malloc((size_t)all.n * sizeof(int64_t));
    if (!all.indices)
        return SSLC_ERR_NOMEM;
    for (int64_t i = 0; i < all.n; i++)
        all.indices[i] = i;
    char path[4200];
    snprintf(path, sizeof path, "%s/knn-val.txt", out);
    sslc_status st = sslc_subset_save(&all, val, path);
    sslc_subset_free(&all);
    return st;
}

sslc_status sslc_pretrain(const sslc_pretrain_config *cfg, const sslc_dataset *ds,
                          const sslc_recipe *recipe, sslc_pretrain_result *res)
{
    sslc_contrastive t = {0};
    sslc_pipeline *pipe = NULL;
    sslc_pipeline_source source = {0};
    memset(res, 0, sizeof *res);
    res->knn_top1 = res->best_knn_top1 = res->knn_initial = -1.0;
    sslc_status st = sslc_dist_rank() == 0 ? sslc_make_dir(cfg->out, "run folder") : SSLC_OK;
    if (!(st = sslc_dist_agree(st)))
        st = sslc_contrastive_create(&t, cfg, recipe->size, recipe->size, recipe->channels);
    sslc_pipeline_config pc;
    sslc_pipeline_config_default(&pc);
    pc.batch_size = cfg->batch;
    pc.views = 2;
    pc.local_views = cfg->local_crops;
    pc.local_recipe = cfg->local_recipe;
    pc.seed = cfg->seed;
    pc.async = cfg->async_data;
    if (t.ranks > 1) { // this process's slice of every batch
        pc.slice_first = t.rank * t.b;
        pc.slice_count = t.b;
    }
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
    sslc_train_state resumed = {0};
    if (cfg->resume && (st = resume(&t, cfg->resume, &resumed)))
        goto done;
    // The resolved configuration, readable without sslc (also in every checkpoint).
    if (t.rank == 0)
        st = sslc_write_text(cfg->out, "config.txt", cfg->config_text ? cfg->config_text : "");
    if (t.rank == 0 && !st && cfg->knn_bank && cfg->knn_val)
        st = save_val_list(cfg->knn_val, cfg->out);
    if ((st = sslc_dist_agree(st)))
        goto done;
    sslc_info("%lld steps per epoch, %lld steps in all", (long long)per_epoch,
              (long long)(cfg->resume ? resumed.total_steps : cfg->epochs * per_epoch));

    char metrics[4096], label[64];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cfg->out);
    snprintf(label, sizeof label, "kNN top-1 (k=%lld)", (long long)cfg->knn_k);
    const bool monitored = cfg->knn_bank && cfg->knn_val;
    sslc_trainer tr = {
        .self = &t,
        .groups = {{t.enc.params, t.opt_enc}, {&t.head.params, t.opt_head},
                   {&t.pred.params, t.opt_pred}},
        .n_groups = t.v3 ? 3 : 2,
        .step = t.v3 ? sslc_mocov3_step : t.moco ? sslc_moco_step : sslc_simclr_step,
        .save = save,
        .monitor = monitored ? knn_monitor : NULL,
        .sums_grads = true,
    };
    sslc_loop_config lc = {
        .what = "pretrain", .unit = "pairs", .epochs = cfg->epochs, .minutes = cfg->minutes,
        .max_steps = cfg->max_steps, .lr = cfg->lr, .final_lr = cfg->final_lr,
        .warmup_fraction = cfg->warmup, .log_every = cfg->log_every, .run_dir = cfg->out,
        .metrics_path = t.rank == 0 ? metrics : NULL, .ckpt_every = cfg->ckpt_every, .monitor_every = cfg->knn_every,
        .monitor_name = "knn_top1", .monitor_label = label,
        .resume = cfg->resume ? &resumed : NULL};
    sslc_batch_source src = sslc_pipeline_source_init(&source, pipe, cfg->fixed_batch);
    sslc_loop_result lr;
    st = sslc_train_loop(&lc, &tr, &src, &lr);
    *res = (sslc_pretrain_result){
        .steps = lr.state.step, .epochs = lr.state.epoch, .first_loss = lr.first_loss,
        .last_loss = lr.last_loss, .knn_initial = lr.monitor_initial,
        .knn_top1 = lr.monitor_last, .best_knn_top1 = lr.monitor_best, .seconds = lr.seconds,
        .pairs_per_s = lr.samples_per_s, .data_wait_fraction = lr.data_wait_fraction,
        .comm_wait_fraction = lr.comm_wait_fraction,
        .interrupted = lr.interrupted};
    if (!st && res->data_wait_fraction > 0.0)
        sslc_debug("data wait %.1f%%", 100.0 * res->data_wait_fraction);
    if ((!st || st == SSLC_ERR_INTERRUPTED) && sslc_pipeline_skipped(pipe) > 0)
        sslc_warn("%lld images could not be decoded and were skipped",
                  (long long)sslc_pipeline_skipped(pipe));
done:
    sslc_pipeline_source_free(&source);
    sslc_pipeline_destroy(pipe);
    sslc_contrastive_destroy(&t);
    return st;
}
