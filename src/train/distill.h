// SimCLRv2's distillation on unlabeled images (Chen et al. 2020, sec. 2.2):
// a fixed teacher (a fine-tuned encoder + classifier) gives soft targets
// p_T = softmax(logits_T / tau) on augmented views of unlabeled images, and
// a student (encoder + linear classifier, the same or a smaller network)
// learns to match them on the same views with the distillation loss
// (losses/distill.h). One loop (src/train/loop.h), one step:
//
//   unlabeled views --teacher, eval mode, no gradient--> targets (B, K)
//   [unlabeled views ; labelled views] --student, training mode--> logits
//   L = distill(student logits of the unlabeled rows, targets)
//       + labelled_weight * xent(student logits of the labelled rows, labels)
//   backward through the student -> SGD (Nesterov), warmup + cosine
//
// The labelled term (SimCLRv2 eq. 3, here weighted relative to the
// distillation term; 0: distillation only, SimCLRv2's choice at low label
// fractions) takes its own batch of the labelled subset each step, so its
// weight does not depend on how many unlabeled images happen to be
// labelled; the two batches go through the student's forward together
// (one set of batch-norm statistics). Step s takes labelled batch s mod
// (labelled steps per epoch) of labelled epoch s / (labelled steps per
// epoch): a function of the step, like every batch of the loop.
#ifndef SSLC_TRAIN_DISTILL_H
#define SSLC_TRAIN_DISTILL_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/models/mlp.h"
#include "src/models/encoder.h"

typedef struct sslc_distill_config {
    int64_t batch;          // unlabeled images per step
    int64_t labelled_batch; // labelled images per step (used when labelled_weight > 0)
    int64_t epochs;         // over the unlabeled images
    double minutes;         // > 0: stop after this wall time, schedule fitted to it
    int64_t max_steps;      // > 0: stop after this many steps (tests)
    double tau;             // the temperature of teacher and student (> 0)
    double labelled_weight; // weight of the labelled cross-entropy (0: none)
    double lr;              // peak, already scaled for the batch
    double warmup_epochs;
    double momentum;
    bool nesterov;
    double weight_decay; // on weights only (not biases, not batch-norm affine)
    uint64_t seed;
    int64_t log_every; // progress lines (0: quiet)
} sslc_distill_config;

typedef struct sslc_distill_result {
    int64_t steps, epochs;
    double first_loss, last_loss; // means over the first / last log_every steps (an epoch when quiet)
    double last_agreement; // how often the student's top class was the teacher's, over the
                           // last epoch's unlabeled views
    double seconds, images_per_s;
    int64_t skipped; // images found bad when decoded (others took their place)
} sslc_distill_result;

// Trains student + student_head on the images of `unlabeled` (all of them)
// against teacher + teacher_head (unchanged, batch-norm statistics
// included), with views from recipe. With cfg->labelled_weight > 0, also on
// labelled's images `indices` (n,) with their labels (labelled may be the
// same dataset as unlabeled). The heads are linear classifiers of the same
// number of classes.
sslc_status sslc_distill(const sslc_distill_config *cfg, sslc_encoder *teacher,
                         sslc_mlp *teacher_head, sslc_encoder *student, sslc_mlp *student_head,
                         const sslc_dataset *unlabeled, const sslc_dataset *labelled,
                         const int64_t *indices, int64_t n, const sslc_recipe *recipe,
                         sslc_distill_result *result);

#endif
