// What the files of data/ share behind data/dataset.h: the dataset struct
// and the functions each concern exports to the others. Included only by
// data/*.c; nothing outside data/ may rely on it.
//
//   dataset.c   spec dispatch, open/destroy, accessors, decoding image i
//   idx.c       IDX files, plain or gzip
//   folder.c    the folder walk, the header scan, folder and ImageFolder
//   manifest.c  writing and reading manifests
//   cache.c     the memory-mapped decode cache
#ifndef SSLC_DATA_DATASET_INTERNAL_H
#define SSLC_DATA_DATASET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/image.h"
#include "src/core/status.h"

typedef enum sslc_dataset_kind {
    SSLC_DATASET_FOLDER,
    SSLC_DATASET_IMAGEFOLDER,
    SSLC_DATASET_IDX,
} sslc_dataset_kind;

typedef struct sslc_dataset_item {
    char *path;    // image files: the file; IDX: NULL
    int32_t label; // -1 unlabeled
    int32_t height, width;
} sslc_dataset_item;

enum { SSLC_CACHE_EMPTY = 0, SSLC_CACHE_FILLED = 1, SSLC_CACHE_BAD = 2 };

typedef struct sslc_cache_entry {
    uint64_t offset;
    uint32_t height, width;
} sslc_cache_entry;

struct sslc_dataset {
    sslc_dataset_kind kind;
    int channels;
    int64_t n;
    sslc_dataset_item *items;
    int64_t num_classes;
    char **class_names;
    int64_t skipped;
    int64_t max_pixels_limit;
    char *source; // IDX: "idx:IMAGES,LABELS"
    // IDX pixels: (n, rows, cols, idx_channels) uint8, all in memory.
    uint8_t *idx_pixels;
    int64_t idx_rows, idx_cols, idx_channels;
    char *idx_name; // base name of the images file, for messages
    // Decoded cache (image files only).
    int cache_fd;
    uint8_t *cache_map;
    size_t cache_size;
    sslc_cache_entry *cache_table;
    uint8_t *cache_flags;
    int64_t cache_short_side;
    // Files the scan skipped (and, with strict, items of a manifest that
    // fail to decode): skipped of them, each with its reason.
    char **skip_paths, **skip_reasons;
    int64_t skip_cap;
    int64_t skipped_links; // symlinked folders not followed (already listed)
    // Images reported bad after opening (sslc_dataset_report_bad): (n)
    // flags and their count, changed atomically.
    uint8_t *bad;
    int64_t bad_count;
    bool quiet;
    bool allow_empty;   // sslc_scan: a folder where nothing is readable still opens
    bool from_manifest; // items listed by a manifest, not scanned
    // After a "#val" / "#fit" selection: image i's index in the whole set
    // (for its name); NULL when nothing was selected.
    int64_t *origin;
};

// dataset.c: "folder", "imagefolder" or "idx" (as manifests write it).
const char *sslc_dataset_kind_name(const sslc_dataset *ds);
// dataset.c: records a file skipped by the scan with its reason.
sslc_status sslc_dataset_add_skip(sslc_dataset *ds, const char *path, const char *reason);
// The reason part of an error message about path, into buf: "cannot
// decode 'p': why" and "data: cannot decode 'p': why" give "why", "cannot
// open 'p': why" gives "cannot open: why"; other messages come whole.
const char *sslc_dataset_reason(char *buf, size_t cap, const char *message, const char *path);
// dataset.c: sslc_dataset_open, and with allow_empty a folder whose files
// are all bad opens with no images (sslc_scan reports them).
sslc_status sslc_dataset_open_ex(sslc_dataset **out, const char *spec,
                                 const sslc_dataset_options *opt, bool allow_empty);

// dataset.c: opens spec into ds (manifests recurse through it; depth
// bounds manifests naming each other).
// split.c: tells "SPEC#val", "SPEC#fit", "SPEC#val:N", "SPEC#fit:N" apart
// from a plain spec: the length of SPEC, which part, and N (0: default).
bool sslc_dataset_split_parse(const char *spec, size_t *base_len, bool *val, int64_t *held_out);
// split.c: keeps the validation part of ds (val) or the rest; spec for messages.
sslc_status sslc_dataset_select_split(sslc_dataset *ds, const char *spec, bool val,
                                      int64_t held_out);
sslc_status sslc_dataset_open_spec(sslc_dataset *ds, const char *spec,
                                   const sslc_dataset_options *opt, int depth);

// idx.c: the images file (and optional labels file) into ds.
sslc_status sslc_dataset_open_idx(sslc_dataset *ds, const char *images, const char *labels);
// idx.c: image i of an IDX dataset into out (allocated), ds->channels.
sslc_status sslc_dataset_idx_decode(const sslc_dataset *ds, int64_t i, sslc_image *out);

// folder.c
bool sslc_dataset_is_dir(const char *path);
// folder.c: one PNG or JPEG file as a dataset of one image.
sslc_status sslc_dataset_open_image_file(sslc_dataset *ds, const char *path,
                                         const sslc_dataset_options *opt);
sslc_status sslc_dataset_open_folder(sslc_dataset *ds, const char *root,
                                     const sslc_dataset_options *opt);
sslc_status sslc_dataset_open_imagefolder(sslc_dataset *ds, const char *root,
                                          const sslc_dataset_options *opt);
// A bare directory is an ImageFolder when it has no image files of its
// own and every sub-folder holds images.
bool sslc_dataset_looks_like_imagefolder(const char *root);

// manifest.c
// sslc_dataset_save_manifest of the items i with keep[i] set (keep NULL:
// all). An IDX dataset records its source whatever keep says.
sslc_status sslc_dataset_write_manifest(const sslc_dataset *ds, const char *path,
                                        const uint8_t *keep);
sslc_status sslc_dataset_open_manifest(sslc_dataset *ds, const char *path,
                                       const sslc_dataset_options *opt, int depth);

// cache.c: maps (creating or reusing) opt->cache_path for ds's items.
sslc_status sslc_dataset_open_cache(sslc_dataset *ds, const sslc_dataset_options *opt);
void sslc_dataset_close_cache(sslc_dataset *ds);
// Image i from the cache: SSLC_OK with out filled when it is there, an
// SSLC_ERR_FORMAT error when it is marked bad, and SSLC_OK with out->data
// NULL when it is not decoded yet.
sslc_status sslc_dataset_cache_read(const sslc_dataset *ds, int64_t i, sslc_image *out);
// Stores the full-size decode of image i (resized to the cache's size
// first, replacing *img) and marks it filled.
sslc_status sslc_dataset_cache_store(const sslc_dataset *ds, int64_t i, sslc_image *img);
void sslc_dataset_cache_mark_bad(const sslc_dataset *ds, int64_t i);

#endif
