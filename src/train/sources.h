// Batch sources for the training loop: the threaded augmentation pipeline
// (pretraining) and the loader of a labelled subset (fine-tuning).
#ifndef SSLC_TRAIN_SOURCES_H
#define SSLC_TRAIN_SOURCES_H

#include <stdbool.h>

#include "augment/pipeline.h"
#include "src/eval/loader.h"
#include "src/train/loop.h"

typedef struct sslc_pipeline_source {
    sslc_pipeline *pipe;
    bool fixed;        // benchmarks: the first batch again at every step
    float *fixed_views; // a private copy of it (the pipeline reuses its buffers)
    float *fixed_local; // and of its local views (multi-crop)
    sslc_train_batch fixed_batch;
} sslc_pipeline_source;

// Batches of the pipeline's views (labels are not passed on). fixed_batch:
// augment one batch, then train on it at every step (benchmarks).
sslc_batch_source sslc_pipeline_source_init(sslc_pipeline_source *ps, sslc_pipeline *pipe,
                                            bool fixed_batch);
void sslc_pipeline_source_free(sslc_pipeline_source *ps); // the pipeline is the caller's

typedef struct sslc_loader_source {
    sslc_loader *loader;
    int64_t epoch, step;
} sslc_loader_source;

// Batches of the loader: one view per image, with labels.
sslc_batch_source sslc_loader_source_init(sslc_loader_source *ls, sslc_loader *loader);

#endif
