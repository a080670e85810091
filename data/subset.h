// Label subsets for semi-supervised evaluation: the 1% / 10% protocols of
// SimCLR (Chen et al. 2020, its 1percent.txt / 10percent.txt lists) and of
// the MoCo/PIRL evaluations, made class-balanced and deterministic.
//
// A subset is a sorted list of dataset indices. For a seed, class c's
// members are put in a seeded random order (a function of (seed, c) only)
// and the first k of them are taken, so the same seed always picks the same
// images, and a smaller subset is contained in a larger one (1% within 10%).
//
// The text form, one image per line after '#' comments:
//   <index> <label> <name>
// where name is sslc_dataset_name (a file path, or "file[123]" for IDX).
// Reading checks every line against the dataset it is applied to, so a list
// made for another dataset (or another file order) is refused.
#ifndef SSLC_DATA_SUBSET_H
#define SSLC_DATA_SUBSET_H

#include <stdint.h>

#include "data/dataset.h"
#include "src/core/status.h"

typedef struct sslc_subset {
    int64_t *indices; // (n,) sorted dataset indices
    int64_t n;
} sslc_subset;

// Images per class for a fraction of a dataset of `total` images and
// `classes` classes: round(fraction * total / classes), at least 1.
int64_t sslc_subset_per_class(double fraction, int64_t total, int64_t classes);

// labels: (n,) in [0, classes) (negative: unlabeled, refused). Takes
// per_class images of each class; a class with fewer is an error naming it.
sslc_status sslc_subset_balanced(sslc_subset *out, const int64_t *labels, int64_t n,
                                 int64_t classes, int64_t per_class, uint64_t seed);

// The same over a labelled dataset; fraction in (0, 1] (1 takes every image,
// in order) or per_class > 0 (then fraction is ignored).
sslc_status sslc_subset_from_dataset(sslc_subset *out, const sslc_dataset *ds, double fraction,
                                     int64_t per_class, uint64_t seed);

// Splits s into a held-out part (about `fraction` of each class, at least
// one image of a class with two or more) and the rest, deterministically
// from seed; both sorted. labels: (dataset size,) indexed by dataset index.
sslc_status sslc_subset_split(sslc_subset *rest, sslc_subset *held_out, const sslc_subset *s,
                              const int64_t *labels, int64_t classes, double fraction,
                              uint64_t seed);

sslc_status sslc_subset_save(const sslc_subset *s, const sslc_dataset *ds, const char *path);
sslc_status sslc_subset_load(sslc_subset *out, const sslc_dataset *ds, const char *path);
void sslc_subset_free(sslc_subset *s); // NULL-safe

#endif
