// The batch pipeline: OpenMP workers decode images and make V views of
// each into preallocated batch buffers, a ring of at least two, so batch
// k+1 is made while the trainer uses batch k (async mode), or on demand in
// the caller's thread (sync mode).
//
// An epoch is a seeded permutation of the dataset (a function of (seed,
// epoch)); view v of dataset index i is a function of (seed, epoch, i, v).
// So batches are identical for any thread count, sync or async, and a run
// resumed at (epoch, step) sees exactly the batches it would have seen.
//
// Images that fail to decode are skipped: one warning naming the file and
// the reason, a count (sslc_pipeline_skipped), and the slot is filled with
// the next dataset index that decodes (batch->indices says which), or
// dropped from the batch (drop_bad).
#ifndef SSLC_AUGMENT_PIPELINE_H
#define SSLC_AUGMENT_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/core/status.h"

typedef struct sslc_pipeline sslc_pipeline;

typedef struct sslc_pipeline_config {
    int64_t batch_size;    // B
    int64_t views;         // V: 2 for pretraining, 1 for evaluation
    int64_t height, width; // output size; must equal the recipe's size (0: take it)
    uint64_t seed;
    bool drop_last; // drop the last partial batch (default true)
    bool shuffle;   // seeded permutation per epoch (default true); false: dataset order
    // A bad image's slot: filled with the next index that decodes (false,
    // the default: training keeps its batch size), or dropped, so the batch
    // is smaller and no image is counted twice (evaluation).
    bool drop_bad;
    // Data parallelism: make only samples [slice_first, slice_first +
    // slice_count) of each batch of batch_size (slice_count 0: all). The
    // epoch, its batches and every view are the whole batch's, so N ranks
    // taking N slices see exactly the views one process would.
    int64_t slice_first, slice_count;
    // Multi-crop (SwAV): L more views per sample, views V .. V+L-1, made by
    // local_recipe (sslc_recipe_local: smaller, of a smaller area) into
    // batch->local. The V global views are the same as without them.
    int64_t local_views;              // L (0: none)
    const sslc_recipe *local_recipe;  // copied; needed when L > 0
    int threads;    // augmentation workers (0: sslc_get_threads())
    bool async;     // a producer thread runs ahead of the consumer (default true)
    int ring;       // batches in the ring, >= 2 (default 2)
} sslc_pipeline_config;

void sslc_pipeline_config_default(sslc_pipeline_config *cfg);

typedef struct sslc_batch {
    // (V * count, H, W, C) float NHWC, normalised: view v of sample i is
    // row v * count + i (count == B for every full batch), so the V views
    // are V consecutive blocks and the whole array is one encoder batch.
    float *views;
    int64_t *indices; // (count) dataset indices
    int *labels;      // (count) labels, -1 when the dataset is unlabeled
    int64_t count;    // B (or the slice), or fewer for a kept last partial batch or dropped bad images
    int64_t views_per_sample, height, width, channels;
    // Multi-crop: (local_views * count, local_size, local_size, C) float,
    // view j of sample i at row j * count + i (NULL when local_views is 0).
    float *local;
    int64_t local_views, local_size;
    int64_t epoch, step;
} sslc_batch;

// The dataset and recipe must outlive the pipeline; the recipe is copied.
sslc_status sslc_pipeline_create(sslc_pipeline **out, const sslc_dataset *ds,
                                 const sslc_recipe *recipe, const sslc_pipeline_config *cfg);
// Stops the producer and frees everything; NULL-safe.
void sslc_pipeline_destroy(sslc_pipeline *p);

int64_t sslc_pipeline_steps_per_epoch(const sslc_pipeline *p);

// Starts (or restarts) epoch `epoch` at step first_step (0 for a fresh
// epoch; a resumed run passes the step it stopped at). Work in flight for
// a previous epoch is discarded.
sslc_status sslc_pipeline_begin_epoch(sslc_pipeline *p, int64_t epoch, int64_t first_step);

// Blocks until the next batch is ready. *batch stays valid until the next
// call to next / begin_epoch / destroy; it is NULL once the epoch is done.
sslc_status sslc_pipeline_next(sslc_pipeline *p, const sslc_batch **batch);

// Distinct images that failed to decode so far.
int64_t sslc_pipeline_skipped(const sslc_pipeline *p);
// Seconds the consumer spent blocked in sslc_pipeline_next so far.
double sslc_pipeline_wait_seconds(const sslc_pipeline *p);
// Bytes held by the batch ring (for memory reports).
size_t sslc_pipeline_buffer_bytes(const sslc_pipeline *p);

#endif
