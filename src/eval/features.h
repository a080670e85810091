// Pooled encoder features of a dataset in eval mode (running statistics,
// no update), for the kNN monitor, linear probes and interop checks.
#ifndef SSLC_EVAL_FEATURES_H
#define SSLC_EVAL_FEATURES_H

#include "augment/recipe.h"
#include "data/dataset.h"
#include "src/core/progress.h"
#include "src/models/mlp.h"
#include "src/models/encoder.h"

typedef struct sslc_features {
    float *x;        // (n, dim)
    int64_t *labels; // (n,), -1 when the dataset is unlabeled
    int64_t *indices; // (n,) dataset indices
    int64_t n, dim;
    int64_t skipped; // images left out because they could not be decoded
} sslc_features;

// Features of the dataset through recipe (an eval recipe: deterministic),
// in batches of `batch`. limit > 0 takes that many images, a seeded random
// subset; 0 takes all. BN statistics of net are not changed. Images that
// cannot be decoded are left out (named in a warning, counted in skipped),
// so rows are fewer than the images asked for.
sslc_status sslc_features_extract(sslc_features *out, sslc_encoder *net, const sslc_dataset *ds,
                                  const sslc_recipe *recipe, int64_t batch, int64_t limit,
                                  uint64_t seed);
void sslc_features_free(sslc_features *f); // NULL-safe

// Called with each batch of features (rows, dim), their labels (rows,) (-1
// when unlabeled) and dataset indices (rows,); valid during the call.
typedef sslc_status (*sslc_features_fn)(void *ctx, const float *features, const int64_t *labels,
                                        const int64_t *indices, int64_t rows);
// sslc_features_extract a batch at a time, for datasets whose features do
// not fit in memory: fn gets each batch in order. progress (NULL: none) is
// updated with the images done; skipped (NULL: not wanted) receives the
// images left out.
sslc_status sslc_features_each(sslc_encoder *net, const sslc_dataset *ds,
                               const sslc_recipe *recipe, int64_t batch, int64_t limit,
                               uint64_t seed, sslc_progress *progress, int64_t *skipped,
                               sslc_features_fn fn, void *ctx);

// Class scores of every image of ds through enc (eval mode: running
// statistics) and head: scores (count, classes) and labels (count,) are
// allocated here (free with free()); images that cannot be decoded are left
// out and counted in *skipped.
sslc_status sslc_classifier_scores(float **scores, int64_t **labels, int64_t *count,
                                   int64_t *skipped, sslc_encoder *enc, sslc_mlp *head,
                                   const sslc_dataset *ds, const sslc_recipe *eval_recipe,
                                   int64_t batch);

#endif
