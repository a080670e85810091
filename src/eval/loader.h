// Batches of one augmented view per image from a subset of a dataset (the
// labelled subset of semi-supervised evaluation), made in the caller's
// thread with OpenMP over the images of the batch.
//
// Batch `step` of epoch `e` holds images perm_e[step*B .. step*B+B) where
// perm_e is a seeded permutation (a function of (seed, e)), or subset order
// when shuffle is off; image i's view is drawn from (seed, e, i, 0) like the
// pretraining pipeline's, so results do not depend on the thread count.
#ifndef SSLC_EVAL_LOADER_H
#define SSLC_EVAL_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"

typedef struct sslc_loader sslc_loader;

// indices: (n,) dataset indices (copied; NULL: images 0..n-1). drop_last: drop a last partial
// batch (training: batch norm on a handful of images is noise), unless n is
// smaller than one batch. An image that cannot be decoded is named in one
// warning and counted (sslc_loader_skipped); its slot takes the next image
// of the subset that decodes (training), or with drop_bad is left out, so
// the batch is smaller and no image counts twice (evaluation). The dataset
// must outlive the loader; the recipe is copied.
sslc_status sslc_loader_create(sslc_loader **out, const sslc_dataset *ds, const int64_t *indices,
                               int64_t n, const sslc_recipe *recipe, int64_t batch, uint64_t seed,
                               bool shuffle, bool drop_last, bool drop_bad);
void sslc_loader_destroy(sslc_loader *l); // NULL-safe

int64_t sslc_loader_steps(const sslc_loader *l); // batches per epoch
int64_t sslc_loader_batch_size(const sslc_loader *l);
int64_t sslc_loader_skipped(const sslc_loader *l); // distinct images that failed so far

// Makes batch `step` of `epoch`: *x (count, size, size, channels) float
// normalised, *labels (count,) (-1 when unlabeled), both owned by the loader
// until the next call.
sslc_status sslc_loader_batch(sslc_loader *l, int64_t epoch, int64_t step, const float **x,
                              const int64_t **labels, int64_t *count);

#endif
