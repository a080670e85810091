// The validation split of a dataset: "SPEC#val" and "SPEC#fit".
//
// Every choice (recipe, hyperparameters, which checkpoint) is made on
// images held out from the training set, so the test set is touched once
// per final figure. The hold-out is a function of the dataset's images and
// labels in their order and of its size only: class-balanced when the data
// are labelled (size / classes images of each class), a plain random draw
// otherwise, with a fixed seed. "#val" keeps the held-out images, "#fit"
// the rest; together they are the whole set, without overlap. The default
// size is a sixth of the set (10,000 of Fashion-MNIST's 60,000);
// "#val:N" / "#fit:N" hold out N images.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"
#include "data/subset.h"

// The seed of the hold-out draw: part of the definition of the split, so
// that every command and every run holds out the same images.
static const uint64_t SPLIT_SEED = 0x76616c69646174ULL; // "validat"

bool sslc_dataset_split_parse(const char *spec, size_t *base_len, bool *val, int64_t *held_out)
{
    const char *hash = strrchr(spec, '#');
    if (!hash)
        return false;
    const char *sel = hash + 1;
    bool is_val = !strncmp(sel, "val", 3), is_fit = !strncmp(sel, "fit", 3);
    if (!is_val && !is_fit)
        return false;
    const char *rest = sel + 3;
    long long n = 0;
    if (*rest == ':') {
        char *end;
        n = strtoll(rest + 1, &end, 10);
        if (end == rest + 1 || *end || n <= 0)
            return false;
    } else if (*rest) {
        return false;
    }
    *base_len = (size_t)(hash - spec);
    *val = is_val;
    *held_out = n;
    return true;
}

// Moves the kept items (and IDX pixels) to the front, in order; keeps each
// kept image's index in the whole set for its name.
static sslc_status keep_items(sslc_dataset *ds, const int64_t *keep, int64_t n_keep)
{
    int64_t *origin = sslc_malloc((size_t)(n_keep ? n_keep : 1) * sizeof(int64_t));
    uint8_t *kept = sslc_calloc((size_t)ds->n, 1);
    if (!origin || !kept) {
        free(origin);
        free(kept);
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    for (int64_t k = 0; k < n_keep; k++)
        kept[keep[k]] = 1;
    for (int64_t i = 0; i < ds->n; i++)
        if (!kept[i])
            free(ds->items[i].path);
    const size_t px = (size_t)(ds->idx_rows * ds->idx_cols * ds->idx_channels);
    for (int64_t k = 0; k < n_keep; k++) { // keep is sorted: k <= keep[k]
        int64_t i = keep[k];
        ds->items[k] = ds->items[i];
        if (ds->idx_pixels && k != i)
            memcpy(ds->idx_pixels + (size_t)k * px, ds->idx_pixels + (size_t)i * px, px);
        origin[k] = ds->origin ? ds->origin[i] : i;
    }
    free(kept);
    free(ds->origin);
    ds->origin = origin;
    ds->n = n_keep;
    return SSLC_OK;
}

sslc_status sslc_dataset_select_split(sslc_dataset *ds, const char *spec, bool val,
                                      int64_t held_out)
{
    const int64_t n = ds->n, classes = ds->num_classes > 0 ? ds->num_classes : 1;
    if (held_out == 0)
        held_out = (n + 3) / 6; // rounded: 10,000 of 60,000
    const int64_t per_class = held_out / classes;
    if (per_class < 1 || classes * per_class >= n)
        return sslc_error(SSLC_ERR_INVALID,
                          "dataset '%s': cannot hold out %lld of %lld images in %lld class(es) "
                          "(at least one per class, and some left to fit on)",
                          spec, (long long)held_out, (long long)n, (long long)classes);
    int64_t *labels = sslc_malloc((size_t)n * sizeof(int64_t));
    if (!labels)
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    for (int64_t i = 0; i < n; i++)
        labels[i] = ds->num_classes > 0 ? ds->items[i].label : 0;
    sslc_subset hold = {0};
    sslc_status st = sslc_subset_balanced(&hold, labels, n, classes, per_class, SPLIT_SEED);
    free(labels);
    if (st)
        return sslc_error_prefix(st, "dataset '%s'", spec);
    int64_t *keep = hold.indices, n_keep = hold.n;
    if (!val) { // the complement, in order
        keep = sslc_malloc((size_t)(n - hold.n) * sizeof(int64_t));
        if (!keep) {
            sslc_subset_free(&hold);
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
        }
        n_keep = 0;
        for (int64_t i = 0, h = 0; i < n; i++) {
            if (h < hold.n && hold.indices[h] == i)
                h++;
            else
                keep[n_keep++] = i;
        }
    }
    st = keep_items(ds, keep, n_keep);
    if (keep != hold.indices)
        free(keep);
    sslc_subset_free(&hold);
    return st;
}
