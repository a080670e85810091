// Internal to src/io: what the checkpoint files (write, read, info, export,
// run folders) share about the checkpoint layout (docs/checkpoints.md).
#ifndef SSLC_IO_CHECKPOINT_INTERNAL_H
#define SSLC_IO_CHECKPOINT_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/io/checkpoint.h"

// PyTorch's num_batches_tracked: an int64 tensor of one element, stored as a
// 0-dim dataset.
static inline bool sslc_ckpt_is_int_scalar(const sslc_tensor *t)
{
    return (t->flags & SSLC_TENSOR_INT64) && t->numel == 1;
}

// ---- checkpoint_write.c ------------------------------------------------------

// The part of c called name, or NULL.
const sslc_ckpt_part *sslc_ckpt_find_part(const sslc_ckpt *c, const char *name);
// Refuses descriptions no file could hold (reserved or repeated part names,
// optimizer buffers naming no part, bad array ranks); SSLC_ERR_INVALID.
sslc_status sslc_ckpt_check_description(const sslc_ckpt *c);

// A new group that remembers creation order, so `sslc info` lists tensors
// in model order and the model attributes in the order they were given;
// -1 on failure (the cause captured for sslc_h5_reason).
hid_t sslc_ckpt_make_group(hid_t loc, const char *name);

// The root attributes every checkpoint has (kind "training" or "export").
typedef struct sslc_ckpt_header {
    const char *kind, *method, *config;
    int64_t epoch, step, samples_seen;
    uint64_t seed;
} sslc_ckpt_header;
sslc_status sslc_ckpt_write_header(hid_t file, const sslc_ckpt_header *h);

// A new empty checkpoint file in memory (the 1.10 format, creation order
// tracked, no timestamps), named name for HDF5's messages; size_hint: the
// expected file size. -1 on failure (the cause captured for sslc_h5_reason).
hid_t sslc_ckpt_create_image(const char *name, size_t size_hint);
// Closes the in-memory file f and writes its bytes to path, synced to disk
// (sslc_atomic_write). On failure the caller removes path.
sslc_status sslc_ckpt_write_image(hid_t f, const char *path);

// ---- checkpoint_read.c -------------------------------------------------------

// Opens path read-only after checking that it is an sslc checkpoint; with
// strict, of this format version. version (may be NULL) receives the file's.
// Messages start "checkpoint <path>: ".
sslc_status sslc_ckpt_open_file(const char *path, bool strict, hid_t *out, int64_t *version);

#endif
