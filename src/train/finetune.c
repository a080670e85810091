#include "src/train/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/xent.h"
#include "src/core/log.h"
#include "src/eval/features.h"
#include "src/eval/loader.h"
#include "src/optim/optimizer.h"
#include "src/train/loop.h"
#include "src/train/sources.h"

// Decoupled from the optimizer (which then runs with weight decay 0) so that
// frozen tensors, whose gradients are zeroed, stay exactly as they are:
// grad += wd * p for decayed tensors that train in mode, grad = 0 for the
// tensors that do not.
static void shape_grads(sslc_params *p, double wd, sslc_peft_mode mode)
{
    for (int64_t t = 0; t < p->count; t++) {
        const sslc_tensor *x = &p->tensors[t];
        if (x->kind != SSLC_TENSOR_PARAM)
            continue;
        float *g = sslc_params_grad(p, x);
        const float *v = sslc_params_data(p, x);
        if (!sslc_peft_trains(mode, x))
            memset(g, 0, (size_t)x->numel * sizeof(float));
        else if (!(x->flags & SSLC_TENSOR_NO_DECAY) && wd > 0)
            for (int64_t i = 0; i < x->numel; i++)
                g[i] += (float)wd * v[i];
    }
}

int64_t sslc_finetune_trainable(sslc_peft_mode mode, const sslc_encoder *enc,
                                const sslc_mlp *head, const sslc_lora *lora)
{
    const int64_t prompts = enc->kind == SSLC_ENCODER_VIT ? enc->net.vit.prompt.n_values : 0;
    return sslc_peft_trainable(mode, enc->params) +
           sslc_peft_trainable(SSLC_PEFT_FULL, &head->params) +
           (lora ? sslc_peft_trainable(SSLC_PEFT_FULL, &lora->params) : 0) +
           (mode == SSLC_PEFT_PROMPT ? prompts : 0);
}

typedef struct classifier {
    const sslc_finetune_config *cfg;
    sslc_encoder *enc;
    sslc_mlp *head;
    sslc_lora *lora;    // LoRA mode only
    sslc_params *prompts; // prompt mode only: the ViT's prompt table
    bool enc_trains;    // the encoder has tensors that train in the mode
    sslc_encoder_run *run;
    sslc_mlp_run *head_run;
    float *probs, *dlogits, *dfeat; // (B, K), (B, K), (B, feature_dim)
} classifier;

// Softmax cross-entropy of the head's scores; gradients shaped by the mode.
static sslc_status classifier_step(void *self, const sslc_train_batch *b,
                                   const sslc_train_state *s, sslc_step_result *r)
{
    classifier *c = self;
    const int64_t K = c->head->out_dim;
    const sslc_peft_mode mode = c->cfg->mode;
    const bool training = sslc_peft_encoder_trains(mode);
    if (c->lora) // W' = W + (alpha / r) B A, from this step's A and B
        sslc_lora_merge(c->lora, c->enc->params);
    sslc_encoder_prepare(c->run, c->enc);
    const float *f = sslc_encoder_forward(c->run, c->enc, b->x, training);
    const float *logits = sslc_mlp_forward(c->head_run, c->head, f, true);
    double loss;
    int64_t right;
    sslc_status st = sslc_xent_forward(&loss, &right, c->probs, logits, b->labels, b->count, K);
    if (st)
        return sslc_error_prefix(st, "finetune (does the dataset have labels?)");
    *r = (sslc_step_result){.loss = loss, .acc = (double)right / (double)b->count};
    if (!isfinite(loss))
        return SSLC_OK; // the loop stops the run
    (void)s;
    memset(c->dlogits, 0, (size_t)(b->count * K) * sizeof(float));
    sslc_xent_backward(c->dlogits, c->probs, b->labels, 1.0f, b->count, K);
    sslc_mlp_backward(c->head_run, c->head, c->dfeat, c->dlogits);
    if (training) {
        if (!c->enc_trains) // the encoder is in no group: the loop does not zero it
            sslc_params_zero_grad(c->enc->params);
        sslc_encoder_backward(c->run, c->enc, c->dfeat);
        if (c->lora)
            sslc_lora_backward(c->lora, c->enc->params);
    }
    if (c->enc_trains)
        shape_grads(c->enc->params, c->cfg->weight_decay, mode);
    shape_grads(&c->head->params, c->cfg->weight_decay, SSLC_PEFT_FULL);
    if (c->lora)
        shape_grads(&c->lora->params, c->cfg->weight_decay, SSLC_PEFT_FULL);
    if (c->prompts)
        shape_grads(c->prompts, c->cfg->weight_decay, SSLC_PEFT_FULL);
    return SSLC_OK;
}

sslc_status sslc_finetune(const sslc_finetune_config *cfg, sslc_encoder *enc, sslc_mlp *head,
                          const sslc_dataset *ds, const int64_t *indices, int64_t n,
                          const sslc_recipe *recipe, sslc_finetune_result *res)
{
    memset(res, 0, sizeof *res);
    const int64_t K = head->out_dim;
    classifier c = {.cfg = cfg, .enc = enc, .head = head, .lora = cfg->lora,
                    .prompts = cfg->mode == SSLC_PEFT_PROMPT ? sslc_encoder_prompts(enc) : NULL,
                    .enc_trains = sslc_peft_trainable(cfg->mode, enc->params) > 0};
    sslc_loader *loader = NULL;
    sslc_optim *opt_enc = NULL, *opt_head = NULL, *opt_lora = NULL, *opt_prompt = NULL;
    if (head->in_dim != enc->feature_dim)
        return sslc_error(SSLC_ERR_INVALID, "finetune: head takes %lld features, encoder gives %lld",
                          (long long)head->in_dim, (long long)enc->feature_dim);
    if ((cfg->mode == SSLC_PEFT_LORA) != (cfg->lora != NULL))
        return sslc_error(SSLC_ERR_INVALID, "finetune: LoRA adapters go with mode lora and only "
                                            "with it (mode %s)", sslc_peft_mode_name(cfg->mode));
    if (cfg->mode == SSLC_PEFT_PROMPT && !c.prompts)
        return sslc_error(SSLC_ERR_INVALID, "finetune: mode prompt needs an encoder with prompts "
                                            "(sslc_encoder_add_prompts)");
    sslc_status st = sslc_loader_create(&loader, ds, indices, n, recipe, cfg->batch, cfg->seed,
                                        true, true, false);
    if (st)
        return st;
    const int64_t B = sslc_loader_batch_size(loader);
    sslc_optim_config oc = sslc_optim_defaults(SSLC_OPTIM_SGD);
    oc.momentum = (float)cfg->momentum;
    oc.nesterov = cfg->nesterov && cfg->momentum > 0;
    oc.weight_decay = 0.0f;
    // The linear probe's encoder only runs forward in eval mode: a run that
    // keeps no activations, and no optimizer state for it.
    st = sslc_peft_encoder_trains(cfg->mode)
             ? sslc_encoder_run_create(&c.run, enc, B, recipe->size, recipe->size)
             : sslc_encoder_inference_run_create(&c.run, enc, B, recipe->size, recipe->size);
    if (st || (st = sslc_mlp_run_create(&c.head_run, head, B)) ||
        (c.enc_trains && (st = sslc_optim_create(&opt_enc, &oc, enc->params))) ||
        (st = sslc_optim_create(&opt_head, &oc, &head->params)) ||
        (c.lora && (st = sslc_optim_create(&opt_lora, &oc, &c.lora->params))) ||
        (c.prompts && (st = sslc_optim_create(&opt_prompt, &oc, c.prompts))))
        goto done;
    c.probs = sslc_aligned_alloc((size_t)(B * K) * sizeof(float));
    c.dlogits = sslc_aligned_alloc((size_t)(B * K) * sizeof(float));
    c.dfeat = sslc_aligned_alloc((size_t)(B * enc->feature_dim) * sizeof(float));
    if (!c.probs || !c.dlogits || !c.dfeat) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_loader_source ls;
    sslc_batch_source src = sslc_loader_source_init(&ls, loader);
    sslc_trainer tr = {.self = &c, .step = classifier_step};
    if (c.enc_trains)
        tr.groups[tr.n_groups++] = (sslc_train_group){enc->params, opt_enc};
    tr.groups[tr.n_groups++] = (sslc_train_group){&head->params, opt_head};
    if (c.lora)
        tr.groups[tr.n_groups++] = (sslc_train_group){&c.lora->params, opt_lora};
    if (c.prompts)
        tr.groups[tr.n_groups++] = (sslc_train_group){c.prompts, opt_prompt};
    sslc_loop_config lc = {
        .what = "finetune", .unit = "images", .epochs = cfg->epochs, .minutes = cfg->minutes,
        .max_steps = cfg->max_steps, .lr = cfg->lr, .final_lr = 0.0, .warmup_fraction = -1.0,
        .warmup_steps = (int64_t)(cfg->warmup_epochs * (double)src.steps_per_epoch),
        .log_every = cfg->log_every > 0 ? cfg->log_every : src.steps_per_epoch,
        .quiet = cfg->log_every <= 0};
    sslc_loop_result lr;
    st = sslc_train_loop(&lc, &tr, &src, &lr);
    if (c.lora) // the last update's adapters, for whatever runs the encoder next
        sslc_lora_merge(c.lora, enc->params);
    if (st)
        goto done;
    *res = (sslc_finetune_result){
        .steps = lr.state.step, .epochs = lr.state.epoch, .first_loss = lr.first_loss,
        .last_loss = lr.last_loss, .last_train_top1 = lr.last_epoch_acc, .seconds = lr.seconds,
        .images_per_s = lr.samples_per_s, .skipped = sslc_loader_skipped(loader),
        .trainable = sslc_finetune_trainable(cfg->mode, enc, head, c.lora)};
done:
    sslc_loader_destroy(loader);
    sslc_encoder_run_destroy(c.run);
    sslc_mlp_run_destroy(c.head_run);
    sslc_optim_destroy(opt_enc);
    sslc_optim_destroy(opt_head);
    sslc_optim_destroy(opt_lora);
    sslc_optim_destroy(opt_prompt);
    free(c.probs);
    free(c.dlogits);
    free(c.dfeat);
    return st;
}
