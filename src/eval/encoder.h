// Encoders from checkpoints for evaluation: build the ResNet or ViT that a
// checkpoint's /model attributes describe and load its "encoder" part
// (pretraining runs, exported encoders and fine-tuned classifiers alike);
// save a trained classifier (encoder + linear head) in the same format.
#ifndef SSLC_EVAL_ENCODER_H
#define SSLC_EVAL_ENCODER_H

#include <stdint.h>

#include "src/io/checkpoint.h"
#include "src/models/mlp.h"
#include "src/models/encoder.h"

typedef struct sslc_encoder_info {
    int64_t image_size; // the view size it was trained on (0: unknown)
    char method[32];    // "simclr", "moco", "supervised", ...
    int64_t step, epoch;
} sslc_encoder_info;

// net: created here. in_channels > 0: the data's channels, checked against
// the checkpoint (a clear error for a model of the wrong input).
sslc_status sslc_encoder_load(sslc_encoder *net, sslc_encoder_info *info, const char *path,
                              int64_t in_channels);

// The projection head of a pretraining checkpoint (its "projector" part,
// built from the /model attribute "projector"), taking in_dim features.
// head: created here. A file without one (an exported encoder, a
// fine-tuned classifier) is refused with the reason.
sslc_status sslc_projector_load(sslc_mlp *head, const char *path, int64_t in_dim);

// The classifier of a fine-tuned model (finetune, supervised, distill: its
// "classifier" part, built from the /model attribute "classifier", else a
// Linear of "num_classes" outputs), taking in_dim features. head: created
// here. A file without one is refused with the reason.
sslc_status sslc_classifier_load(sslc_mlp *head, const char *path, int64_t in_dim);

// The /model attributes that describe enc to the loaders (arch,
// in_channels, width, cifar_stem, feature_dim, image_size; a ViT's: arch,
// in_channels, patch, layers, heads, hidden, mlp_dim, pos_embedding,
// feature_dim, image_size) into attrs (room for SSLC_ENCODER_ATTRS); returns
// how many. image_size: the view size it trains on (a ViT's own).
enum { SSLC_ENCODER_ATTRS = 10 };
size_t sslc_encoder_attrs(sslc_ckpt_attr *attrs, const sslc_encoder *enc, int64_t image_size);

// Writes enc as "encoder" and head (may be NULL) as "classifier" to path
// (atomic), with the model attributes the loaders read (the classifier's
// layers as the spec attribute "classifier").
sslc_status sslc_encoder_save(const char *path, sslc_encoder *enc, sslc_mlp *head,
                              const char *method, const char *config, int64_t image_size,
                              uint64_t seed, int64_t step, int64_t epoch);

#endif
