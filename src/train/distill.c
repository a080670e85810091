#include "src/train/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "losses/distill.h"
#include "losses/xent.h"
#include "src/eval/loader.h"
#include "src/optim/optimizer.h"
#include "src/train/loop.h"
#include "src/train/sources.h"

typedef struct distiller {
    const sslc_distill_config *cfg;
    sslc_encoder *teacher, *student;
    sslc_mlp *teacher_head, *student_head;
    sslc_encoder_run *teacher_run, *student_run;
    sslc_mlp_run *teacher_head_run, *student_head_run;
    sslc_loader *labelled; // NULL: distillation only
    int64_t B, L;          // unlabeled and labelled rows of the student's batch
    size_t image;          // floats per view
    float *x;              // (B + L, H, W, C) the student's views
    float *targets;        // (B, K) the teacher's soft targets
    float *probs;          // (B + L, K) student softmax: at tau (rows < B), at 1 (the rest)
    float *dlogits, *dfeat; // (B + L, K), (B + L, feature_dim)
} distiller;

static sslc_status distill_step(void *self, const sslc_train_batch *b, const sslc_train_state *s,
                                sslc_step_result *r)
{
    distiller *d = self;
    const sslc_distill_config *cfg = d->cfg;
    const int64_t K = d->student_head->out_dim, B = d->B, L = d->L;
    const float tau = (float)cfg->tau;
    if (b->count != B) // the loader drops a last partial batch
        return sslc_error(SSLC_ERR_INTERNAL, "distill: a batch of %lld images, expected %lld",
                          (long long)b->count, (long long)B);
    // The teacher sees the very views the student sees, in eval mode:
    // running statistics, nothing of it changes.
    const float *tf = sslc_encoder_forward(d->teacher_run, d->teacher, b->x, false);
    const float *tl = sslc_mlp_forward(d->teacher_head_run, d->teacher_head, tf, false);
    sslc_status st = sslc_distill_targets(d->targets, tl, B, K, tau);
    if (st)
        return st;
    memcpy(d->x, b->x, (size_t)B * d->image * sizeof(float));
    const int64_t *labels = NULL;
    if (L > 0) {
        const int64_t steps = sslc_loader_steps(d->labelled);
        const float *xl;
        int64_t count;
        if ((st = sslc_loader_batch(d->labelled, s->step / steps, s->step % steps, &xl, &labels,
                                    &count)))
            return st;
        if (count != L)
            return sslc_error(SSLC_ERR_INTERNAL, "distill: a labelled batch of %lld, expected %lld",
                              (long long)count, (long long)L);
        memcpy(d->x + (size_t)B * d->image, xl, (size_t)L * d->image * sizeof(float));
    }
    sslc_encoder_prepare(d->student_run, d->student);
    const float *f = sslc_encoder_forward(d->student_run, d->student, d->x, true);
    const float *logits = sslc_mlp_forward(d->student_head_run, d->student_head, f, true);
    double loss, xent = 0.0;
    int64_t agree;
    if ((st = sslc_distill_forward(&loss, &agree, d->probs, logits, d->targets, B, K, tau)))
        return st;
    if (L > 0 && (st = sslc_xent_forward(&xent, NULL, d->probs + B * K, logits + B * K, labels,
                                         L, K)))
        return sslc_error_prefix(st, "distill: the labelled batch");
    loss += cfg->labelled_weight * xent;
    *r = (sslc_step_result){.loss = loss, .acc = (double)agree / (double)B};
    if (!isfinite(loss))
        return SSLC_OK; // the loop stops the run
    memset(d->dlogits, 0, (size_t)((B + L) * K) * sizeof(float));
    sslc_distill_backward(d->dlogits, d->probs, d->targets, 1.0f, B, K, tau);
    if (L > 0)
        sslc_xent_backward(d->dlogits + B * K, d->probs + B * K, labels,
                           (float)cfg->labelled_weight, L, K);
    sslc_mlp_backward(d->student_head_run, d->student_head, d->dfeat, d->dlogits);
    sslc_encoder_backward(d->student_run, d->student, d->dfeat);
    return SSLC_OK;
}

static sslc_status check_models(const sslc_encoder *teacher, const sslc_mlp *teacher_head,
                                const sslc_encoder *student, const sslc_mlp *student_head,
                                const sslc_dataset *unlabeled)
{
    if (teacher_head->in_dim != teacher->feature_dim || student_head->in_dim != student->feature_dim)
        return sslc_error(SSLC_ERR_INVALID, "distill: a classifier does not take its encoder's "
                                            "%lld features",
                          (long long)(teacher_head->in_dim != teacher->feature_dim
                                          ? teacher->feature_dim
                                          : student->feature_dim));
    if (teacher_head->out_dim != student_head->out_dim)
        return sslc_error(SSLC_ERR_INVALID, "distill: the teacher has %lld classes, the student %lld",
                          (long long)teacher_head->out_dim, (long long)student_head->out_dim);
    if (teacher->in_channels != student->in_channels ||
        teacher->in_channels != sslc_dataset_channels(unlabeled))
        return sslc_error(SSLC_ERR_INVALID, "distill: teacher, student and images have %lld, "
                                            "%lld and %d channels",
                          (long long)teacher->in_channels,
                          (long long)student->in_channels,
                          sslc_dataset_channels(unlabeled));
    return SSLC_OK;
}

sslc_status sslc_distill(const sslc_distill_config *cfg, sslc_encoder *teacher,
                         sslc_mlp *teacher_head, sslc_encoder *student, sslc_mlp *student_head,
                         const sslc_dataset *unlabeled, const sslc_dataset *labelled,
                         const int64_t *indices, int64_t n, const sslc_recipe *recipe,
                         sslc_distill_result *res)
{
    memset(res, 0, sizeof *res);
    distiller d = {.cfg = cfg, .teacher = teacher, .student = student,
                   .teacher_head = teacher_head, .student_head = student_head};
    sslc_loader *loader = NULL;
    sslc_optim *opt_enc = NULL, *opt_head = NULL;
    sslc_status st = check_models(teacher, teacher_head, student, student_head, unlabeled);
    if (st)
        return st;
    if (!(cfg->tau > 0.0) || !(cfg->labelled_weight >= 0.0))
        return sslc_error(SSLC_ERR_INVALID, "distill: temperature %g and labelled weight %g "
                                            "(must be > 0 and >= 0)",
                          cfg->tau, cfg->labelled_weight);
    if (cfg->labelled_weight > 0.0 && (!labelled || n <= 0))
        return sslc_error(SSLC_ERR_INVALID, "distill: a labelled weight without labelled images");
    const int64_t K = student_head->out_dim;
    if ((st = sslc_loader_create(&loader, unlabeled, NULL, sslc_dataset_count(unlabeled), recipe,
                                 cfg->batch, cfg->seed, true, true, false)))
        goto done;
    if (cfg->labelled_weight > 0.0) {
        if (sslc_dataset_num_classes(labelled) != K) {
            st = sslc_error(SSLC_ERR_INVALID, "distill: the labelled images have %lld classes, "
                                              "the teacher %lld",
                            (long long)sslc_dataset_num_classes(labelled), (long long)K);
            goto done;
        }
        // Its own stream of views (seed + 1): a labelled image that is also
        // in the unlabeled batch is not seen twice through the same crop.
        if ((st = sslc_loader_create(&d.labelled, labelled, indices, n, recipe,
                                     cfg->labelled_batch, cfg->seed + 1, true, true, false)))
            goto done;
        d.L = sslc_loader_batch_size(d.labelled);
    }
    d.B = sslc_loader_batch_size(loader);
    d.image = (size_t)(recipe->size * recipe->size * recipe->channels);
    const int64_t rows = d.B + d.L;
    sslc_optim_config oc = sslc_optim_defaults(SSLC_OPTIM_SGD);
    oc.momentum = (float)cfg->momentum;
    oc.nesterov = cfg->nesterov && cfg->momentum > 0;
    oc.weight_decay = (float)cfg->weight_decay;
    oc.exclude_no_decay = true; // weights only, as fine-tuning
    if ((st = sslc_encoder_inference_run_create(&d.teacher_run, teacher, d.B, recipe->size,
                                               recipe->size)) ||
        (st = sslc_mlp_run_create(&d.teacher_head_run, teacher_head, d.B)) ||
        (st = sslc_encoder_run_create(&d.student_run, student, rows, recipe->size, recipe->size)) ||
        (st = sslc_mlp_run_create(&d.student_head_run, student_head, rows)) ||
        (st = sslc_optim_create(&opt_enc, &oc, student->params)) ||
        (st = sslc_optim_create(&opt_head, &oc, &student_head->params)))
        goto done;
    sslc_encoder_prepare(d.teacher_run, teacher); // its weights never change
    d.x = sslc_aligned_alloc((size_t)rows * d.image * sizeof(float));
    d.targets = sslc_aligned_alloc((size_t)(d.B * K) * sizeof(float));
    d.probs = sslc_aligned_alloc((size_t)(rows * K) * sizeof(float));
    d.dlogits = sslc_aligned_alloc((size_t)(rows * K) * sizeof(float));
    d.dfeat = sslc_aligned_alloc((size_t)(rows * student->feature_dim) * sizeof(float));
    if (!d.x || !d.targets || !d.probs || !d.dlogits || !d.dfeat) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_loader_source ls;
    sslc_batch_source src = sslc_loader_source_init(&ls, loader);
    sslc_trainer tr = {.self = &d,
                       .groups = {{student->params, opt_enc}, {&student_head->params, opt_head}},
                       .n_groups = 2,
                       .step = distill_step};
    sslc_loop_config lc = {
        .what = "distill", .unit = "images", .epochs = cfg->epochs, .minutes = cfg->minutes,
        .max_steps = cfg->max_steps, .lr = cfg->lr, .final_lr = 0.0, .warmup_fraction = -1.0,
        .warmup_steps = (int64_t)(cfg->warmup_epochs * (double)src.steps_per_epoch),
        .log_every = cfg->log_every > 0 ? cfg->log_every : src.steps_per_epoch,
        .quiet = cfg->log_every <= 0};
    sslc_loop_result lr;
    if ((st = sslc_train_loop(&lc, &tr, &src, &lr)))
        goto done;
    *res = (sslc_distill_result){
        .steps = lr.state.step, .epochs = lr.state.epoch, .first_loss = lr.first_loss,
        .last_loss = lr.last_loss, .last_agreement = lr.last_epoch_acc, .seconds = lr.seconds,
        .images_per_s = lr.samples_per_s,
        // Distinct images, also when labelled is the unlabeled dataset itself.
        .skipped = sslc_dataset_bad_count(unlabeled) +
                   (d.labelled && labelled != unlabeled ? sslc_dataset_bad_count(labelled) : 0)};
done:
    sslc_loader_destroy(loader);
    sslc_loader_destroy(d.labelled);
    sslc_encoder_run_destroy(d.teacher_run);
    sslc_encoder_run_destroy(d.student_run);
    sslc_mlp_run_destroy(d.teacher_head_run);
    sslc_mlp_run_destroy(d.student_head_run);
    sslc_optim_destroy(opt_enc);
    sslc_optim_destroy(opt_head);
    free(d.x);
    free(d.targets);
    free(d.probs);
    free(d.dlogits);
    free(d.dfeat);
    return st;
}
