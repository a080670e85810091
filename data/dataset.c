// Datasets: spec dispatch, open/destroy, accessors, and decoding image i
// (from IDX memory, the cache, or its file). The formats and the cache
// live in idx.c, folder.c, manifest.c and cache.c (dataset_internal.h).
#include "data/dataset.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset_internal.h"

static const char FASHION_DIR[] = "/usr/share/datasets/fashion-mnist";

void sslc_dataset_options_default(sslc_dataset_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_pixels = 89478485;
}

sslc_status sslc_dataset_open_spec(sslc_dataset *ds, const char *spec,
                                   const sslc_dataset_options *opt, int depth)
{
    if (depth > 4)
        return sslc_error(SSLC_ERR_INVALID, "dataset: manifests refer to each other in a loop");
    if (!strncmp(spec, "fashion-mnist:", 14)) {
        const char *dir = getenv("SSLC_FASHION_MNIST_DIR");
        if (!dir || !*dir)
            dir = FASHION_DIR;
        const char *split = spec + 14;
        const char *prefix = !strcmp(split, "train") ? "train" : !strcmp(split, "test") ? "t10k"
                                                                                        : NULL;
        if (!prefix)
            return sslc_error(SSLC_ERR_INVALID,
                              "dataset '%s': use fashion-mnist:train or fashion-mnist:test", spec);
        char img[4096], lab[4096];
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
        if (access(img, R_OK) != 0)
            return sslc_error(SSLC_ERR_IO,
                              "dataset '%s': cannot read '%s' (install the Debian package "
                              "dataset-fashion-mnist, or set SSLC_FASHION_MNIST_DIR)",
                              spec, img);
        return sslc_dataset_open_idx(ds, img, lab);
    }
    if (!strncmp(spec, "idx:", 4)) {
        char buf[8192];
        snprintf(buf, sizeof buf, "%s", spec + 4);
        char *comma = strchr(buf, ',');
        if (comma)
            *comma = 0;
        return sslc_dataset_open_idx(ds, buf, comma ? comma + 1 : NULL);
    }
    if (!strncmp(spec, "folder:", 7))
        return sslc_dataset_open_folder(ds, spec + 7, opt);
    if (!strncmp(spec, "imagefolder:", 12))
        return sslc_dataset_open_imagefolder(ds, spec + 12, opt);
    if (!strncmp(spec, "manifest:", 9))
        return sslc_dataset_open_manifest(ds, spec + 9, opt, depth);
    if (!*spec)
        return sslc_error(SSLC_ERR_INVALID, "dataset: empty spec");
    if (sslc_dataset_is_dir(spec))
        return sslc_dataset_looks_like_imagefolder(spec) ? sslc_dataset_open_imagefolder(ds, spec, opt)
                                            : sslc_dataset_open_folder(ds, spec, opt);
    FILE *f = fopen(spec, "rb");
    if (!f)
        return sslc_error(SSLC_ERR_IO,
                          "dataset '%s' does not exist (expected a folder, an IDX file, a manifest, "
                          "or fashion-mnist:train, idx:, folder:, imagefolder:, manifest:)",
                          spec);
    char head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= 13 && !memcmp(head, "sslc-manifest", 13))
        return sslc_dataset_open_manifest(ds, spec, opt, depth);
    return sslc_dataset_open_idx(ds, spec, NULL); // gzip or raw IDX; idx_read says if it is neither
}

sslc_status sslc_dataset_open(sslc_dataset **out, const char *spec,
                              const sslc_dataset_options *opt_in)
{
    *out = NULL;
    sslc_dataset_options opt;
    if (opt_in)
        opt = *opt_in;
    else
        sslc_dataset_options_default(&opt);
    if (opt.channels != 0 && opt.channels != 1 && opt.channels != 3)
        return sslc_error(SSLC_ERR_INVALID, "dataset: channels must be 1 or 3, not %d",
                          opt.channels);
    sslc_dataset *ds = sslc_calloc(1, sizeof *ds);
    if (!ds)
        return SSLC_ERR_NOMEM;
    ds->cache_fd = -1;
    ds->channels = opt.channels;
    ds->max_pixels_limit = opt.max_pixels;
    sslc_status st = sslc_dataset_open_spec(ds, spec, &opt, 0);
    if (st == SSLC_OK && ds->n == 0)
        st = sslc_error(SSLC_ERR_INVALID, "dataset '%s' has no images", spec);
    if (st == SSLC_OK && opt.cache_path && opt.cache_path[0] && ds->kind != SSLC_DATASET_IDX)
        st = sslc_dataset_open_cache(ds, &opt);
    if (st != SSLC_OK) {
        sslc_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return SSLC_OK;
}

void sslc_dataset_destroy(sslc_dataset *ds)
{
    if (!ds)
        return;
    sslc_dataset_close_cache(ds);
    for (int64_t i = 0; ds->items && i < ds->n; i++)
        free(ds->items[i].path);
    free(ds->items);
    for (int64_t c = 0; ds->class_names && c < ds->num_classes; c++)
        free(ds->class_names[c]);
    free(ds->class_names);
    free(ds->idx_pixels);
    free(ds->idx_name);
    free(ds->source);
    free(ds);
}

int64_t sslc_dataset_count(const sslc_dataset *ds) { return ds->n; }
int sslc_dataset_channels(const sslc_dataset *ds) { return ds->channels; }
int64_t sslc_dataset_num_classes(const sslc_dataset *ds) { return ds->num_classes; }
int64_t sslc_dataset_skipped(const sslc_dataset *ds) { return ds->skipped; }
bool sslc_dataset_cached(const sslc_dataset *ds) { return ds->cache_map != NULL; }

int64_t sslc_dataset_label(const sslc_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n ? ds->items[i].label : -1;
}

const char *sslc_dataset_class_name(const sslc_dataset *ds, int64_t label)
{
    if (label < 0 || label >= ds->num_classes || !ds->class_names)
        return NULL;
    return ds->class_names[label];
}

const char *sslc_dataset_name(const sslc_dataset *ds, int64_t i, char *buf, size_t cap)
{
    if (i < 0 || i >= ds->n)
        snprintf(buf, cap, "#%lld (out of range)", (long long)i);
    else if (ds->kind == SSLC_DATASET_IDX)
        snprintf(buf, cap, "%s[%lld]", ds->idx_name, (long long)i);
    else
        snprintf(buf, cap, "%s", ds->items[i].path);
    return buf;
}

void sslc_dataset_dims(const sslc_dataset *ds, int64_t i, int64_t *height, int64_t *width)
{
    if (ds->cache_map) {
        *height = ds->cache_table[i].height;
        *width = ds->cache_table[i].width;
    } else {
        *height = ds->items[i].height;
        *width = ds->items[i].width;
    }
}

int64_t sslc_dataset_max_pixels(const sslc_dataset *ds)
{
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t h, w;
        sslc_dataset_dims(ds, i, &h, &w);
        if (h * w > m)
            m = h * w;
    }
    return m;
}

// sslc_dataset_decode and sslc_dataset_decode_window: window (top, left,
// bottom, right) or NULL.
static sslc_status decode_item(const sslc_dataset *ds, int64_t i, sslc_image *out,
                               int (*choose_scale)(void *ctx, int64_t h, int64_t w), void *ctx,
                               int *scale_out, const int64_t *window)
{
    memset(out, 0, sizeof *out);
    if (scale_out)
        *scale_out = 1;
    if (i < 0 || i >= ds->n)
        return sslc_error(SSLC_ERR_INVALID, "dataset: index %lld out of range [0, %lld)",
                          (long long)i, (long long)ds->n);
    if (ds->kind == SSLC_DATASET_IDX)
        return sslc_dataset_idx_decode(ds, i, out);
    sslc_status st;
    if (ds->cache_map) {
        st = sslc_dataset_cache_read(ds, i, out);
        if (st != SSLC_OK || out->data)
            return st;
    }
    sslc_decode_options dopt = {.channels = ds->channels, .max_pixels = ds->max_pixels_limit,
                                .choose_scale = ds->cache_map ? NULL : choose_scale, .ctx = ctx};
    if (window && !ds->cache_map) {
        dopt.window_top = window[0], dopt.window_left = window[1];
        dopt.window_bottom = window[2], dopt.window_right = window[3];
    }
    st = sslc_image_load(out, ds->items[i].path, &dopt, scale_out);
    if (!ds->cache_map)
        return st;
    if (st != SSLC_OK) {
        if (st == SSLC_ERR_FORMAT)
            sslc_dataset_cache_mark_bad(ds, i);
        return st;
    }
    return sslc_dataset_cache_store(ds, i, out);
}

sslc_status sslc_dataset_decode(const sslc_dataset *ds, int64_t i, sslc_image *out,
                                int (*choose_scale)(void *ctx, int64_t h, int64_t w), void *ctx,
                                int *scale_out)
{
    return decode_item(ds, i, out, choose_scale, ctx, scale_out, NULL);
}

sslc_status sslc_dataset_decode_window(const sslc_dataset *ds, int64_t i, const int64_t window[4],
                                       sslc_image *out)
{
    return decode_item(ds, i, out, NULL, NULL, NULL, window);
}

sslc_status sslc_dataset_decode_into(const sslc_dataset *ds, int64_t i, uint8_t *buf, size_t cap,
                                     int64_t *height, int64_t *width)
{
    sslc_image img;
    sslc_status st = sslc_dataset_decode(ds, i, &img, NULL, NULL, NULL);
    if (st != SSLC_OK)
        return st;
    size_t need = (size_t)(img.height * img.width * img.channels);
    if (need > cap) {
        sslc_image_free(&img);
        char name[512];
        return sslc_error(SSLC_ERR_INVALID, "dataset: '%s' needs %zu bytes, buffer has %zu",
                          sslc_dataset_name(ds, i, name, sizeof name), need, cap);
    }
    memcpy(buf, img.data, need);
    *height = img.height;
    *width = img.width;
    sslc_image_free(&img);
    return SSLC_OK;
}
