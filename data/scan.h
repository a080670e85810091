// Knowing a dataset before a long run (the work of `sslc scan`, below the
// CLI): opens it, decodes every image fully in parallel, and summarises
// what training would meet: images accepted, formats, channels, sizes,
// classes, every file that would be skipped grouped by reason, and
// optionally files with identical bytes. The accepted images can be saved
// as a manifest, so later runs neither rescan nor meet the bad files.
#ifndef SSLC_DATA_SCAN_H
#define SSLC_DATA_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "src/core/status.h"

typedef struct sslc_scan sslc_scan;

typedef struct sslc_scan_options {
    // How the dataset is opened (channels, max_pixels); verify, strict,
    // quiet, the cache and progress are set by the scan itself.
    sslc_dataset_options dataset;
    bool duplicates; // hash every accepted file's bytes and group equal ones
    int examples;    // example paths kept per skip reason (0: 3)
    // Optional: called from one thread while the scan works; phase is
    // "reading headers" or "decoding".
    void (*progress)(void *ctx, const char *phase, int64_t done, int64_t total);
    void *progress_ctx;
} sslc_scan_options;

void sslc_scan_options_default(sslc_scan_options *opt);

enum { SSLC_SCAN_PNG, SSLC_SCAN_JPEG, SSLC_SCAN_IDX, SSLC_SCAN_FORMATS };
// Short sides below 32, 64, 128, 256, 512, 1024, 2048, and the rest.
enum { SSLC_SCAN_SIZE_BUCKETS = 8 };

typedef struct sslc_scan_reason {
    // The reason with its numbers replaced by N when the files of the
    // group differ only in them ("NxN = N pixels is over the limit of N").
    char *reason;
    int64_t count;
    int64_t n_examples;
    char **examples; // the first n_examples paths, in scan order
} sslc_scan_reason;

typedef struct sslc_scan_duplicate {
    int64_t count; // files with these bytes (>= 2)
    char **paths;  // in dataset order
} sslc_scan_duplicate;

typedef struct sslc_scan_summary {
    const char *spec;
    const char *kind; // "folder", "imagefolder" or "idx"
    int64_t files;    // image files found (IDX: images)
    int64_t accepted; // decoded fully
    int64_t skipped;  // files - accepted: at the header scan or when decoded
    int64_t formats[SSLC_SCAN_FORMATS]; // accepted, by format
    int64_t gray, colour;               // accepted, by the file's own channels
    int64_t short_side[SSLC_SCAN_SIZE_BUCKETS];
    int64_t height_min, height_median, height_max; // median: the lower middle
    int64_t width_min, width_median, width_max;
    int64_t bytes; // accepted files' sizes (IDX: pixels)
    int64_t num_classes; // 0 when unlabeled
    const char *const *class_names; // NULL when unnamed (IDX labels)
    const int64_t *class_counts; // accepted images per class
    int64_t n_reasons;
    const sslc_scan_reason *reasons; // most frequent first
    bool duplicates_checked;
    int64_t n_duplicates;
    const sslc_scan_duplicate *duplicates; // in dataset order of their first file
    int64_t duplicate_files; // files that repeat an earlier one
    int64_t skipped_links;   // symlinked folders not followed (already listed)
    double seconds;
} sslc_scan_summary;

// The upper bound (exclusive) of short-side bucket b, 0 for the last.
int64_t sslc_scan_bucket_limit(int b);
// "PNG", "JPEG", "IDX".
const char *sslc_scan_format_name(int format);

// Scans spec. Fails only when the dataset cannot be opened at all (no
// folder, no image files, not a dataset); a dataset whose every file is
// bad scans fine with accepted 0.
sslc_status sslc_scan_run(sslc_scan **out, const char *spec, const sslc_scan_options *opt);
const sslc_scan_summary *sslc_scan_get_summary(const sslc_scan *s);
// The k-th skipped file (0 <= k < skipped) with its reason, in scan order.
const char *sslc_scan_skipped_file(const sslc_scan *s, int64_t k, const char **reason);
// A manifest of the accepted images (labels and class names included)
// that "manifest:FILE" reads back. Refused when nothing was accepted.
sslc_status sslc_scan_save_manifest(const sslc_scan *s, const char *path);
// The summary as JSON, with every skipped file and its reason.
sslc_status sslc_scan_write_json(const sslc_scan *s, const char *path);
void sslc_scan_destroy(sslc_scan *s);

#endif
