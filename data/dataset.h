// Datasets: where the images are, their labels, and how to decode image i.
//
// Opened from one spec string:
//   fashion-mnist:train | fashion-mnist:test   Debian's dataset-fashion-mnist IDX files
//   idx:IMAGES[,LABELS]                         IDX files, gzip-compressed or not
//   folder:PATH                                 unlabeled images, searched recursively
//   imagefolder:PATH                            torchvision ImageFolder: one sub-folder per
//                                               class, class ids by sorted name
//   manifest:FILE                               a list saved by sslc_dataset_save_manifest
//   PATH                                        told by what it is: a directory (ImageFolder
//                                               when it holds only class sub-folders, else an
//                                               unlabeled folder); a file by its first bytes:
//                                               a PNG or JPEG (a dataset of that one image),
//                                               an IDX file (plain or gzip), or a manifest
//   SPEC#val | SPEC#fit                         the validation split of any of the above: a
//                                               fixed, class-balanced sixth of the images
//                                               (10,000 of Fashion-MNIST's 60,000), or the
//                                               rest; SPEC#val:N / SPEC#fit:N hold out N
//                                               (data/split.c). Names keep whole-set indices.
// Image files are .png .jpg .jpeg in any case. Folders are searched
// following symlinks, but each folder is entered once (by device and
// inode): a link to a folder already listed is skipped with one warning.
//
// The bad-input rule: the scan reads every file's header; unreadable,
// empty, non-image, corrupt-header and over-limit files are skipped with
// one warning line each ("skipping 'a/b.jpg': <reason>"), counted
// (sslc_dataset_skipped) and kept with their reasons
// (sslc_dataset_skipped_file); an empty or missing folder is an error
// before any work. Files whose pixel data turn out corrupt later fail
// sslc_dataset_decode* with "data: cannot decode 'a/b.jpg': <reason>";
// the layer that skips them reports them with sslc_dataset_report_bad, so
// every command names and counts them the same way. With strict, every
// image is decoded during the scan and any bad file is an error instead.
#ifndef SSLC_DATA_DATASET_H
#define SSLC_DATA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "src/core/status.h"

typedef struct sslc_dataset sslc_dataset;

typedef struct sslc_dataset_options {
    int channels;       // 0: 1 for IDX, 3 for image files; or force 1 / 3
    int64_t max_pixels; // images with more pixels are skipped (0: no limit)
    // Decoded cache: when set, images are decoded once into this
    // memory-mapped file (created or reused), so later epochs decode
    // nothing and datasets larger than RAM work through the page cache.
    const char *cache_path;
    int64_t cache_short_side; // > 0: cache images resized so the short side is this
    bool verify;              // decode every image during the scan (slow, finds all bad files)
    // verify, and any bad file (or a manifest item that does not decode)
    // fails sslc_dataset_open, naming how many and the first few with why.
    bool strict;
    bool quiet; // no warnings (the counts and sslc_dataset_skipped_file still tell)
    // Optional: called during the scan from one thread with the files
    // probed so far and the total, for a progress bar.
    void (*progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
} sslc_dataset_options;

// Defaults: channels 0, max_pixels 89478485 (Pillow's decompression-bomb
// limit), no cache, no verify, not strict.
void sslc_dataset_options_default(sslc_dataset_options *opt);

sslc_status sslc_dataset_open(sslc_dataset **out, const char *spec,
                              const sslc_dataset_options *opt);
void sslc_dataset_destroy(sslc_dataset *ds);

int64_t sslc_dataset_count(const sslc_dataset *ds);
int sslc_dataset_channels(const sslc_dataset *ds);
int64_t sslc_dataset_num_classes(const sslc_dataset *ds); // 0 when unlabeled
int64_t sslc_dataset_label(const sslc_dataset *ds, int64_t i); // -1 when unlabeled
const char *sslc_dataset_class_name(const sslc_dataset *ds, int64_t label); // NULL if none
// "path/to/file.jpg" or "train-images-idx3-ubyte.gz[123]"; written into buf.
const char *sslc_dataset_name(const sslc_dataset *ds, int64_t i, char *buf, size_t cap);
// Files skipped during the scan, and the k-th of them (0 <= k <
// sslc_dataset_skipped) with its reason ("premature end of JPEG file").
int64_t sslc_dataset_skipped(const sslc_dataset *ds);
const char *sslc_dataset_skipped_file(const sslc_dataset *ds, int64_t k, const char **reason);
// Symlinked folders the walk did not follow because it had listed them.
int64_t sslc_dataset_skipped_links(const sslc_dataset *ds);

// Image i turned out bad when decoded: message is the error of the failed
// sslc_dataset_decode* ("data: cannot decode 'a/b.jpg': <reason>"). The
// first report of i prints one warning, "skipping 'a/b.jpg': <reason>"
// (as the scan does), and counts it; later reports of i are silent.
// Thread-safe. Returns true for the first report.
bool sslc_dataset_report_bad(const sslc_dataset *ds, int64_t i, const char *message);
bool sslc_dataset_is_bad(const sslc_dataset *ds, int64_t i);
// Images reported bad since opening. With sslc_dataset_skipped, what a
// command excluded.
int64_t sslc_dataset_bad_count(const sslc_dataset *ds);
// Full-size dimensions of image i as read from its header (or the cache's
// stored size when the cache resizes).
void sslc_dataset_dims(const sslc_dataset *ds, int64_t i, int64_t *height, int64_t *width);
// The largest height * width over the dataset (for sizing buffers).
int64_t sslc_dataset_max_pixels(const sslc_dataset *ds);
bool sslc_dataset_cached(const sslc_dataset *ds);

// Decodes image i into out (allocated here, channels = sslc_dataset_channels).
// A file that fails is an SSLC_ERR_FORMAT or SSLC_ERR_IO error worded
// "data: cannot decode 'a/b.jpg': <the decoder's reason>".
// choose_scale / ctx are passed to the JPEG decoder (NULL: full size) and
// ignored when the image comes from IDX or the cache; *scale_out receives
// the denominator used. Thread-safe for distinct or equal i.
sslc_status sslc_dataset_decode(const sslc_dataset *ds, int64_t i, sslc_image *out,
                                int (*choose_scale)(void *ctx, int64_t h, int64_t w), void *ctx,
                                int *scale_out);
// The same at full size, when only the window (top, left, bottom, right)
// of the full-size image is needed: a JPEG read from its file is decoded
// only around it (out->top / out->left say where out lies), an image from
// IDX or the cache is whole.
sslc_status sslc_dataset_decode_window(const sslc_dataset *ds, int64_t i, const int64_t window[4],
                                       sslc_image *out);
// Decodes image i into a caller's buffer: (h, w, channels) uint8, cap bytes.
sslc_status sslc_dataset_decode_into(const sslc_dataset *ds, int64_t i, uint8_t *buf, size_t cap,
                                     int64_t *height, int64_t *width);

// Writes the file list, labels and class names so a run can be reopened
// with exactly the same images and indices ("manifest:FILE").
sslc_status sslc_dataset_save_manifest(const sslc_dataset *ds, const char *path);

#endif
