// Datasets: spec dispatch, open/destroy, accessors, and decoding image i
// (from IDX memory, the cache, or its file). The formats and the cache
// live in idx.c, folder.c, manifest.c and cache.c (dataset_internal.h).
#include "data/dataset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset_internal.h"
#include "src/core/log.h"

static const char FASHION_DIR[] = "/usr/share/datasets/fashion-mnist";

void sslc_dataset_options_default(sslc_dataset_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_pixels = 89478485;
}

#define UNDERSTOOD                                                                         \
    "sslc reads a folder of images, a PNG or JPEG image, an IDX file (plain or gzip), an sslc " \
    "manifest, or a spec: fashion-mnist:train|test, idx:IMAGES[,LABELS], folder:DIR, "          \
    "imagefolder:DIR, manifest:FILE"

// A bare file path, told by its first bytes rather than its name.
static sslc_status open_by_content(sslc_dataset *ds, const char *path,
                                   const sslc_dataset_options *opt, int depth)
{
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT)
        return sslc_error(SSLC_ERR_IO, "dataset '%s' does not exist (%s)", path, UNDERSTOOD);
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot open dataset '%s': %s", path, strerror(errno));
    uint8_t head[16] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got == 0)
        return sslc_error(SSLC_ERR_FORMAT, "dataset '%s' is an empty file (%s)", path, UNDERSTOOD);
    if (got >= 13 && !memcmp(head, "sslc-manifest", 13))
        return sslc_dataset_open_manifest(ds, path, opt, depth);
    if (sslc_image_sniff(head, got) != SSLC_IMAGE_UNKNOWN)
        return sslc_dataset_open_image_file(ds, path, opt);
    // IDX magic: two zero bytes, the element type (0x08 uint8 ... 0x0e
    // double), the number of dimensions. idx.c refuses all but uint8.
    if (got >= 4 && head[0] == 0 && head[1] == 0 && head[2] >= 0x08 && head[2] <= 0x0e)
        return sslc_dataset_open_idx(ds, path, NULL);
    if (got >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
        // gzip: Fashion-MNIST's files are gzip-compressed IDX.
        uint8_t inner[4] = {0};
        gzFile z = gzopen(path, "rb");
        int n = z ? gzread(z, inner, sizeof inner) : -1;
        if (z)
            gzclose(z);
        if (n == 4 && inner[0] == 0 && inner[1] == 0 && inner[2] >= 0x08 && inner[2] <= 0x0e)
            return sslc_dataset_open_idx(ds, path, NULL);
        return sslc_error(SSLC_ERR_FORMAT,
                          "dataset '%s' is gzip-compressed but holds no IDX file (%s)", path,
                          UNDERSTOOD);
    }
    return sslc_error(SSLC_ERR_FORMAT,
                      "dataset '%s' is not a format sslc knows (it starts with bytes %02x %02x %02x "
                      "%02x); %s",
                      path, head[0], head[1], head[2], head[3], UNDERSTOOD);
}

static sslc_status open_split(sslc_dataset *ds, const char *spec, size_t base_len, bool val,
                              int64_t held_out, const sslc_dataset_options *opt, int depth)
{
    char *base = strndup(spec, base_len);
    if (!base)
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    sslc_status st = sslc_dataset_open_spec(ds, base, opt, depth + 1);
    if (st == SSLC_OK) {
        int64_t whole = ds->n;
        st = sslc_dataset_select_split(ds, spec, val, held_out);
        if (st == SSLC_OK && ds->source) { // an IDX manifest reopens the same part
            size_t len = strlen(ds->source) + 32;
            char *source = malloc(len);
            if (!source)
                st = sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
            else {
                snprintf(source, len, "%s#%s:%lld", ds->source, val ? "val" : "fit",
                         (long long)(val ? ds->n : whole - ds->n));
                free(ds->source);
                ds->source = source;
            }
        }
    }
    free(base);
    return st;
}

sslc_status sslc_dataset_open_spec(sslc_dataset *ds, const char *spec,
                                   const sslc_dataset_options *opt, int depth)
{
    if (depth > 4)
        return sslc_error(SSLC_ERR_INVALID, "dataset: manifests refer to each other in a loop");
    size_t base_len;
    bool val;
    int64_t held_out;
    if (sslc_dataset_split_parse(spec, &base_len, &val, &held_out))
        return open_split(ds, spec, base_len, val, held_out, opt, depth);
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
    if (sslc_dataset_is_dir(spec)) {
        if (sslc_dataset_looks_like_imagefolder(spec))
            return sslc_dataset_open_imagefolder(ds, spec, opt);
        return sslc_dataset_open_folder(ds, spec, opt);
    }
    return open_by_content(ds, spec, opt, depth);
}

// Tells strict's verdict: fails when the scan (or the check of a
// manifest's items) found any bad file, naming the first few.
static sslc_status strict_verdict(const sslc_dataset *ds, const char *spec)
{
    if (ds->skipped == 0)
        return SSLC_OK;
    enum { SHOWN = 3 };
    char list[900] = "";
    size_t used = 0;
    for (int64_t k = 0; k < ds->skipped && k < SHOWN && used < sizeof list; k++) {
        int n = snprintf(list + used, sizeof list - used, "%s'%s': %s", k ? "; " : "",
                         ds->skip_paths[k], ds->skip_reasons[k]);
        used += n > 0 ? (size_t)n : 0;
    }
    // A manifest's bad items are still among its n; a scan's are not.
    int64_t total = ds->from_manifest ? ds->n : ds->n + ds->skipped;
    char more[64] = "";
    if (ds->skipped > SHOWN)
        snprintf(more, sizeof more, "; and %lld more", (long long)(ds->skipped - SHOWN));
    return sslc_error(SSLC_ERR_FORMAT,
                      "data: %lld of %lld image files of '%s' are bad, and strict mode refuses "
                      "any: %s%s",
                      (long long)ds->skipped, (long long)total, spec, list, more);
}

// strict on a manifest: its items were never scanned, so decode each now
// (in parallel) and record the ones that fail.
static sslc_status check_manifest_items(sslc_dataset *ds, const sslc_dataset_options *opt)
{
    char **why = calloc((size_t)(ds->n ? ds->n : 1), sizeof(char *));
    if (!why)
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    bool nomem = false;
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < ds->n; i++) {
        sslc_decode_options dopt = {.channels = 3, .max_pixels = opt->max_pixels};
        sslc_image img;
        const char *path = ds->items[i].path;
        sslc_status st = sslc_image_load(&img, path, &dopt, NULL);
        sslc_image_free(&img);
        if (st == SSLC_OK)
            continue;
        char buf[1024];
        why[i] = strdup(sslc_dataset_reason(buf, sizeof buf, sslc_error_message(), path));
        if (!why[i] || st == SSLC_ERR_NOMEM)
            __atomic_store_n(&nomem, true, __ATOMIC_RELAXED);
    }
    sslc_status st = nomem ? sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory") : SSLC_OK;
    for (int64_t i = 0; i < ds->n; i++) {
        if (st == SSLC_OK && why[i]) {
            st = sslc_dataset_add_skip(ds, ds->items[i].path, why[i]);
            if (st == SSLC_OK && !ds->quiet)
                sslc_warn("skipping '%s': %s", ds->items[i].path, why[i]);
        }
        free(why[i]);
    }
    free(why);
    return st;
}

sslc_status sslc_dataset_open_ex(sslc_dataset **out, const char *spec,
                                 const sslc_dataset_options *opt_in, bool allow_empty)
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
    if (opt.strict)
        opt.verify = true;
    sslc_dataset *ds = sslc_calloc(1, sizeof *ds);
    if (!ds)
        return SSLC_ERR_NOMEM;
    ds->cache_fd = -1;
    ds->channels = opt.channels;
    ds->max_pixels_limit = opt.max_pixels;
    ds->quiet = opt.quiet;
    // strict names every bad file, even when no good one is left.
    ds->allow_empty = allow_empty || opt.strict;
    sslc_status st = sslc_dataset_open_spec(ds, spec, &opt, 0);
    if (st == SSLC_OK && opt.strict && ds->from_manifest)
        st = check_manifest_items(ds, &opt);
    if (st == SSLC_OK && opt.strict)
        st = strict_verdict(ds, spec);
    if (st == SSLC_OK && ds->n == 0 && !allow_empty)
        st = sslc_error(SSLC_ERR_INVALID, "dataset '%s' has no images", spec);
    if (st == SSLC_OK) {
        ds->bad = calloc((size_t)(ds->n ? ds->n : 1), 1);
        if (!ds->bad)
            st = sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    if (st == SSLC_OK && ds->n > 0 && opt.cache_path && opt.cache_path[0] &&
        ds->kind != SSLC_DATASET_IDX)
        st = sslc_dataset_open_cache(ds, &opt);
    if (st != SSLC_OK) {
        sslc_dataset_destroy(ds);
        return st;
    }
    *out = ds;
    return SSLC_OK;
}

sslc_status sslc_dataset_open(sslc_dataset **out, const char *spec,
                              const sslc_dataset_options *opt)
{
    return sslc_dataset_open_ex(out, spec, opt, false);
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
    free(ds->origin);
    for (int64_t k = 0; ds->skip_paths && k < ds->skipped; k++) {
        free(ds->skip_paths[k]);
        free(ds->skip_reasons[k]);
    }
    free(ds->skip_paths);
    free(ds->skip_reasons);
    free(ds->bad);
    free(ds);
}

const char *sslc_dataset_kind_name(const sslc_dataset *ds)
{
    static const char *names[] = {"folder", "imagefolder", "idx"};
    return names[ds->kind];
}

sslc_status sslc_dataset_add_skip(sslc_dataset *ds, const char *path, const char *reason)
{
    if (ds->skipped == ds->skip_cap) {
        int64_t cap = ds->skip_cap ? 2 * ds->skip_cap : 16;
        char **p = realloc(ds->skip_paths, (size_t)cap * sizeof(char *));
        if (p)
            ds->skip_paths = p;
        char **r = realloc(ds->skip_reasons, (size_t)cap * sizeof(char *));
        if (r)
            ds->skip_reasons = r;
        if (!p || !r)
            return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
        ds->skip_cap = cap;
    }
    char *pc = strdup(path), *rc = strdup(reason);
    if (!pc || !rc) {
        free(pc);
        free(rc);
        return sslc_error(SSLC_ERR_NOMEM, "dataset: out of memory");
    }
    ds->skip_paths[ds->skipped] = pc;
    ds->skip_reasons[ds->skipped] = rc;
    ds->skipped++;
    return SSLC_OK;
}

const char *sslc_dataset_reason(char *buf, size_t cap, const char *message, const char *path)
{
    if (!strncmp(message, "data: ", 6))
        message += 6;
    char quoted[4200];
    snprintf(quoted, sizeof quoted, "cannot decode '%s': ", path);
    size_t q = strlen(quoted);
    if (!strncmp(message, quoted, q)) {
        snprintf(buf, cap, "%s", message + q);
        return buf;
    }
    snprintf(quoted, sizeof quoted, "'%s'", path);
    const char *at = strstr(message, quoted);
    if (!at) {
        snprintf(buf, cap, "%s", message);
        return buf;
    }
    // "cannot open 'p': why" -> "cannot open: why"; "'p' changed size" -> "changed size"
    size_t before = (size_t)(at - message);
    while (before > 0 && message[before - 1] == ' ')
        before--;
    const char *after = at + strlen(quoted);
    if (before == 0)
        while (*after == ' ' || *after == ':')
            after++;
    snprintf(buf, cap, "%.*s%s", (int)before, message, after);
    return buf;
}

int64_t sslc_dataset_count(const sslc_dataset *ds) { return ds->n; }
int sslc_dataset_channels(const sslc_dataset *ds) { return ds->channels; }
int64_t sslc_dataset_num_classes(const sslc_dataset *ds) { return ds->num_classes; }
int64_t sslc_dataset_skipped(const sslc_dataset *ds) { return ds->skipped; }
int64_t sslc_dataset_skipped_links(const sslc_dataset *ds) { return ds->skipped_links; }

const char *sslc_dataset_skipped_file(const sslc_dataset *ds, int64_t k, const char **reason)
{
    if (k < 0 || k >= ds->skipped) {
        if (reason)
            *reason = NULL;
        return NULL;
    }
    if (reason)
        *reason = ds->skip_reasons[k];
    return ds->skip_paths[k];
}

bool sslc_dataset_report_bad(const sslc_dataset *ds, int64_t i, const char *message)
{
    if (i < 0 || i >= ds->n || __atomic_exchange_n(&ds->bad[i], 1, __ATOMIC_RELAXED))
        return false;
    __atomic_fetch_add(&((sslc_dataset *)ds)->bad_count, 1, __ATOMIC_RELAXED);
    if (!ds->quiet) {
        char name[4096], why[1024];
        sslc_dataset_name(ds, i, name, sizeof name);
        sslc_warn("skipping '%s': %s", name,
                  sslc_dataset_reason(why, sizeof why, message ? message : "", name));
    }
    return true;
}

bool sslc_dataset_is_bad(const sslc_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n && __atomic_load_n(&ds->bad[i], __ATOMIC_RELAXED);
}

int64_t sslc_dataset_bad_count(const sslc_dataset *ds)
{
    return __atomic_load_n(&ds->bad_count, __ATOMIC_RELAXED);
}
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
        snprintf(buf, cap, "%s[%lld]", ds->idx_name, (long long)(ds->origin ? ds->origin[i] : i));
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
// One wording for an image file that does not decode, whatever found it:
// "data: cannot decode 'a/b.jpg': <the decoder's reason>".
static sslc_status decode_failed(const sslc_dataset *ds, int64_t i, sslc_status st)
{
    if (st != SSLC_ERR_FORMAT && st != SSLC_ERR_IO)
        return st;
    char why[1024];
    const char *path = ds->items[i].path;
    sslc_dataset_reason(why, sizeof why, sslc_error_message(), path);
    return sslc_error(st, "data: cannot decode '%s': %s", path, why);
}

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
            return decode_failed(ds, i, st);
    }
    sslc_decode_options dopt = {.channels = ds->channels, .max_pixels = ds->max_pixels_limit,
                                .choose_scale = ds->cache_map ? NULL : choose_scale, .ctx = ctx};
    if (window && !ds->cache_map) {
        dopt.window_top = window[0], dopt.window_left = window[1];
        dopt.window_bottom = window[2], dopt.window_right = window[3];
    }
    st = sslc_image_load(out, ds->items[i].path, &dopt, scale_out);
    if (!ds->cache_map)
        return decode_failed(ds, i, st);
    if (st != SSLC_OK) {
        if (st == SSLC_ERR_FORMAT)
            sslc_dataset_cache_mark_bad(ds, i);
        return decode_failed(ds, i, st);
    }
    return decode_failed(ds, i, sslc_dataset_cache_store(ds, i, out));
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
