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
#include "src/optim/schedule.h"
#include "src/core/progress.h"

sslc_status sslc_finetune_mode_parse(sslc_finetune_mode *mode, const char *name)
{
    if (!strcmp(name, "full"))
        *mode = SSLC_FINETUNE_FULL;
    else if (!strcmp(name, "bn-head"))
        *mode = SSLC_FINETUNE_BN_HEAD;
    else
        return sslc_error(SSLC_ERR_INVALID, "unknown fine-tuning mode '%s' (full or bn-head)", name);
    return SSLC_OK;
}

// Decoupled from the optimizer (which then runs with weight decay 0) so that
// frozen tensors, whose gradients are zeroed, stay exactly as they are:
// grad += wd * p for decayed tensors, and frozen ones get grad = 0.
static void shape_grads(sslc_params *p, double wd, bool freeze_decayed)
{
    for (int64_t t = 0; t < p->count; t++) {
        const sslc_tensor *x = &p->tensors[t];
        if (x->kind != SSLC_TENSOR_PARAM)
            continue;
        float *g = sslc_params_grad(p, x);
        const float *v = sslc_params_data(p, x);
        bool decayed = !(x->flags & SSLC_TENSOR_NO_DECAY);
        if (decayed && freeze_decayed)
            memset(g, 0, (size_t)x->numel * sizeof(float));
        else if (decayed && wd > 0)
            for (int64_t i = 0; i < x->numel; i++)
                g[i] += (float)wd * v[i];
    }
}

sslc_status sslc_finetune(const sslc_finetune_config *cfg, sslc_resnet *enc, sslc_mlp *head,
                          const sslc_dataset *ds, const int64_t *indices, int64_t n,
                          const sslc_recipe *recipe, sslc_finetune_result *res)
{
    memset(res, 0, sizeof *res);
    const int64_t K = head->out_dim;
    sslc_loader *loader = NULL;
    sslc_resnet_run *run = NULL;
    sslc_mlp_run *head_run = NULL;
    sslc_optim *opt_enc = NULL, *opt_head = NULL;
    float *probs = NULL, *dlogits = NULL, *dfeat = NULL;
    if (head->in_dim != enc->feature_dim)
        return sslc_error(SSLC_ERR_INVALID, "finetune: head takes %lld features, encoder gives %lld",
                          (long long)head->in_dim, (long long)enc->feature_dim);
    sslc_status st = sslc_loader_create(&loader, ds, indices, n, recipe, cfg->batch, cfg->seed,
                                        true, true);
    if (st)
        return st;
    const int64_t B = sslc_loader_batch_size(loader), per_epoch = sslc_loader_steps(loader);
    sslc_optim_config oc = sslc_optim_defaults(SSLC_OPTIM_SGD);
    oc.momentum = (float)cfg->momentum;
    oc.nesterov = cfg->nesterov && cfg->momentum > 0;
    oc.weight_decay = 0.0f;
    if ((st = sslc_resnet_run_create(&run, enc, B, recipe->size, recipe->size)) ||
        (st = sslc_mlp_run_create(&head_run, head, B)) ||
        (st = sslc_optim_create(&opt_enc, &oc, &enc->params)) ||
        (st = sslc_optim_create(&opt_head, &oc, &head->params)))
        goto done;
    probs = sslc_aligned_alloc((size_t)(B * K) * sizeof(float));
    dlogits = sslc_aligned_alloc((size_t)(B * K) * sizeof(float));
    dfeat = sslc_aligned_alloc((size_t)(B * enc->feature_dim) * sizeof(float));
    if (!probs || !dlogits || !dfeat) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_schedule sched;
    int64_t total = cfg->epochs * per_epoch;
    int64_t warmup = (int64_t)(cfg->warmup_epochs * (double)per_epoch);
    if (warmup >= total)
        warmup = total / 10;
    if ((st = sslc_schedule_init(&sched, cfg->lr, 0.0, warmup, total)))
        goto done;
    sslc_progress bar;
    if (cfg->log_every > 0)
        sslc_progress_init(&bar, stderr, cfg->log_every, total, 0);
    const double start = sslc_now();
    bool fitted = false, stop = false;
    double pace_start = start;
    int64_t step = 0;
    for (int64_t epoch = 0; !stop && step < total; epoch++) {
        double epoch_loss = 0.0;
        int64_t epoch_right = 0, epoch_n = 0, epoch_steps = 0;
        for (int64_t s = 0; s < per_epoch && step < total; s++) {
            const float *x;
            const int64_t *y;
            int64_t count;
            if ((st = sslc_loader_batch(loader, epoch, s, &x, &y, &count)))
                goto done;
            sslc_resnet_prepare(run, enc);
            const float *f = sslc_resnet_forward(run, enc, x, true);
            const float *logits = sslc_mlp_forward(head_run, head, f, true);
            double loss;
            int64_t right;
            if ((st = sslc_xent_forward(&loss, &right, probs, logits, y, count, K))) {
                st = sslc_error_prefix(st, "finetune (does the dataset have labels?)");
                goto done;
            }
            if (!isfinite(loss)) {
                st = sslc_error(SSLC_ERR_INVALID, "finetune: the loss diverged (%g) at step %lld; "
                                                  "lower --lr",
                                loss, (long long)step);
                goto done;
            }
            sslc_params_zero_grad(&enc->params);
            sslc_params_zero_grad(&head->params);
            memset(dlogits, 0, (size_t)(count * K) * sizeof(float));
            sslc_xent_backward(dlogits, probs, y, 1.0f, count, K);
            sslc_mlp_backward(head_run, head, dfeat, dlogits);
            sslc_resnet_backward(run, enc, dfeat);
            shape_grads(&enc->params, cfg->weight_decay, cfg->mode == SSLC_FINETUNE_BN_HEAD);
            shape_grads(&head->params, cfg->weight_decay, false);
            float lr = (float)sslc_schedule_lr(&sched, step);
            if ((st = sslc_optim_step(opt_enc, &enc->params, lr)) ||
                (st = sslc_optim_step(opt_head, &head->params, lr)))
                goto done;
            step++;
            epoch_loss += loss;
            epoch_right += right;
            epoch_n += count;
            epoch_steps++;
            res->images_per_s = (double)(step * B) / (sslc_now() - start);
            // Fit the schedule to a time budget from the pace of steps 5..25
            // (the first steps pay page faults and oneDNN's primitive set-up).
            if (cfg->minutes > 0 && step == 5)
                pace_start = sslc_now();
            if (cfg->minutes > 0 && !fitted && step == 25) {
                double per_step = (sslc_now() - pace_start) / 20.0;
                int64_t fit = step + (int64_t)((cfg->minutes * 60.0 - (sslc_now() - start)) / per_step);
                if (fit < total) {
                    total = fit > step + 1 ? fit : step + 1;
                    if (warmup >= total)
                        warmup = total / 10;
                    sslc_schedule_init(&sched, cfg->lr, 0.0, warmup, total);
                    if (cfg->log_every > 0)
                        bar.total = total;
                }
                fitted = true;
            }
            if (cfg->log_every > 0) {
                char text[160];
                snprintf(text, sizeof text, "epoch %lld loss %.4f acc %.3f lr %.4f %.0f img/s",
                         (long long)epoch, loss, (double)right / (double)count, (double)lr,
                         res->images_per_s);
                sslc_progress_update(&bar, step, text);
            }
            if ((cfg->minutes > 0 && sslc_now() - start >= cfg->minutes * 60.0) ||
                (cfg->max_steps > 0 && step >= cfg->max_steps)) {
                stop = true;
                break;
            }
        }
        if (epoch_steps > 0) {
            if (epoch == 0)
                res->first_loss = epoch_loss / (double)epoch_steps;
            res->last_loss = epoch_loss / (double)epoch_steps;
            res->last_train_top1 = (double)epoch_right / (double)epoch_n;
            res->epochs = epoch + 1;
        }
    }
    if (cfg->log_every > 0)
        sslc_progress_break(&bar);
    res->steps = step;
    res->seconds = sslc_now() - start;
done:
    sslc_loader_destroy(loader);
    sslc_resnet_run_destroy(run);
    sslc_mlp_run_destroy(head_run);
    sslc_optim_destroy(opt_enc);
    sslc_optim_destroy(opt_head);
    free(probs);
    free(dlogits);
    free(dfeat);
    return st;
}

sslc_status sslc_classifier_scores(float **scores, int64_t **labels, int64_t *count,
                                   sslc_resnet *enc, sslc_mlp *head, const sslc_dataset *ds,
                                   const sslc_recipe *eval_recipe, int64_t batch)
{
    *scores = NULL;
    *labels = NULL;
    *count = 0;
    sslc_features f;
    sslc_status st = sslc_features_extract(&f, enc, ds, eval_recipe, batch, 0, 0);
    if (st)
        return st;
    sslc_mlp_run *run = NULL;
    const int64_t K = head->out_dim;
    if ((st = sslc_mlp_run_create(&run, head, f.n)))
        goto done;
    *scores = sslc_malloc((size_t)(f.n * K) * sizeof(float));
    if (!*scores) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    memcpy(*scores, sslc_mlp_forward(run, head, f.x, false), (size_t)(f.n * K) * sizeof(float));
    *labels = f.labels;
    f.labels = NULL;
    *count = f.n;
done:
    sslc_mlp_run_destroy(run);
    sslc_features_free(&f);
    return st;
}
