// HDF5 checkpoints: complete, atomic, and loadable into PyTorch by name.
//
// A checkpoint is described by an sslc_ckpt that points at the caller's
// tables and arrays; sslc_ckpt_save writes them, sslc_ckpt_load reads them
// back into tables of the same shapes. The layout (docs/checkpoints.md):
//
//   /                   attrs format_version, sslc_version, kind, method, config,
//                             epoch, step, samples_seen, seed
//   /model              attrs arch, in_channels, width, cifar_stem, ... (sslc_ckpt_attr)
//   /<part>/<tensor>    one dataset per tensor, torchvision state_dict name,
//                       PyTorch shape and layout; float32, or an int64 0-dim
//                       dataset for SSLC_TENSOR_INT64 tensors of one element
//   /optimizer          attrs name, step
//   /optimizer/<part>/<buffer>/<tensor>   float32, one per trainable tensor
//   /state/<array>      extra arrays (MoCo queue, queue pointer, ...)
//
// Saving builds the file in memory, writes it to "<path>.tmp-<pid>" in the
// same folder, fsyncs and renames it over path, then fsyncs the folder: a
// crash, a kill or a full disk never leaves a half-written file where a good
// one was. While saving, memory holds about twice the file's size.
//
// Code: checkpoint_write.c (save), checkpoint_read.c (open, validate,
// load), checkpoint_info.c (the header), checkpoint_export.c, run_folder.c
// (save_run, resolve), atomic_file.c (temporary file, fsync, rename) and
// h5util.c (HDF5 attributes and error messages); the `sslc info` printout is
// src/cli/ckpt_print.c.
//
// Not thread-safe (Debian's HDF5 is built without its global lock): call
// from one thread. Not async-signal-safe: a signal handler only sets a flag
// (src/train/interrupt.h) and the trainer saves after the step.
#ifndef SSLC_IO_CHECKPOINT_H
#define SSLC_IO_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "src/core/status.h"
#include "src/nn/params.h"

// Bumped whenever a reader of the old layout would misread the new one.
enum { SSLC_CKPT_FORMAT_VERSION = 1 };

typedef enum sslc_ckpt_attr_type {
    SSLC_CKPT_ATTR_INT,    // int64 (booleans are 0 / 1)
    SSLC_CKPT_ATTR_FLOAT,  // double
    SSLC_CKPT_ATTR_STRING, // UTF-8 text
} sslc_ckpt_attr_type;

// One model-configuration value (arch, in_channels, width, cifar_stem, ...),
// stored as an attribute of /model so the Python loader can rebuild the model.
typedef struct sslc_ckpt_attr {
    const char *key;
    sslc_ckpt_attr_type type;
    int64_t i;
    double f;
    const char *s;
} sslc_ckpt_attr;

// One model part (encoder, projector, key_encoder, ...): a group holding a
// dataset for every tensor of the table, values and buffers alike.
typedef struct sslc_ckpt_part {
    const char *name;
    sslc_params *params;
} sslc_ckpt_part;

// One optimizer buffer laid out like part's values (the same offsets):
// written per trainable tensor under /optimizer/<part>/<name>/<tensor>.
typedef struct sslc_ckpt_optim_buffer {
    const char *part; // names one of sslc_ckpt.parts
    const char *name; // PyTorch's name: momentum_buffer, exp_avg, exp_avg_sq
    float *data;      // (part's params->n_values,)
} sslc_ckpt_optim_buffer;

typedef enum sslc_ckpt_dtype {
    SSLC_CKPT_F32, // float
    SSLC_CKPT_I64, // int64_t
} sslc_ckpt_dtype;

// Any other state a trainer needs (MoCo queue (K, D) float, pointer (1,) int64).
typedef struct sslc_ckpt_array {
    const char *name;
    sslc_ckpt_dtype dtype;
    int ndim; // 0 (a scalar of one element) to SSLC_TENSOR_MAX_DIMS
    int64_t shape[SSLC_TENSOR_MAX_DIMS];
    void *data; // float * or int64_t *, prod(shape) elements
} sslc_ckpt_array;

// What goes in (save) or what to fill (load). On load, method, model and
// optimizer name are checked against the file when set (NULL / 0 entries
// skip the check); epoch, step, samples_seen, seed and optimizer_step are
// outputs; every part, optimizer buffer and array listed must be in the file.
typedef struct sslc_ckpt {
    const char *method; // "simclr", "moco", "supervised"
    const char *config; // the resolved configuration, e.g. "--name=value" lines
    int64_t epoch, step, samples_seen;
    uint64_t seed;
    const sslc_ckpt_attr *model;
    size_t n_model;
    const sslc_ckpt_part *parts;
    size_t n_parts;
    const char *optimizer; // "sgd", "lars", "adam"; NULL: no optimizer state
    int64_t optimizer_step;
    const sslc_ckpt_optim_buffer *optim;
    size_t n_optim;
    const sslc_ckpt_array *arrays;
    size_t n_arrays;
} sslc_ckpt;

// Writes c to path atomically (see above). On failure the temporary file is
// removed and whatever was at path before is untouched.
sslc_status sslc_ckpt_save(const char *path, const sslc_ckpt *c);

// Reads path into c's tables and arrays, which must already exist with the
// shapes the file should have. Everything (format version, method, model
// attributes, every tensor name, shape and type, optimizer buffers, arrays)
// is checked before any value is read; a mismatch is refused with a message
// naming the tensor and both shapes. Tensors in the file that the table
// lacks are refused too (PyTorch's strict=True). If reading fails midway
// (a corrupt block), the tables hold partial data and must not be used.
sslc_status sslc_ckpt_load(const char *path, sslc_ckpt *c);

// The header of a checkpoint, for resuming (build the model from it, then
// load) and for `sslc info`. Strings are owned; free with sslc_ckpt_info_free.
typedef struct sslc_ckpt_info {
    int64_t format_version;
    char *sslc_version, *kind, *method, *config; // "" when absent
    int64_t epoch, step, samples_seen;
    uint64_t seed;
    sslc_ckpt_attr *model; // keys and strings owned
    size_t n_model;
    char *optimizer; // "" when the file has no optimizer state
    int64_t optimizer_step;
} sslc_ckpt_info;

// Fails like sslc_ckpt_load for files that are not sslc checkpoints of this
// format version.
sslc_status sslc_ckpt_read_info(const char *path, sslc_ckpt_info *info);
// The same, except that a file of another format version is described, not
// refused (info->format_version says which): for `sslc info`
// (src/cli/ckpt_print.h), which prints what it can of any sslc checkpoint.
sslc_status sslc_ckpt_read_info_any_version(const char *path, sslc_ckpt_info *info);
void sslc_ckpt_info_free(sslc_ckpt_info *info); // NULL-safe
// NULL when the model has no attribute key.
const sslc_ckpt_attr *sslc_ckpt_info_attr(const sslc_ckpt_info *info, const char *key);

// Writes dst with only the header, /model and the named part (e.g.
// "encoder"), for fine-tuning elsewhere; atomic like sslc_ckpt_save.
sslc_status sslc_ckpt_export(const char *dst, const char *src, const char *part);

// Run folders: dir/ckpt-<step>.h5 (the newest keep of them; keep <= 0 keeps
// all), dir/last.h5, and dir/best.h5 when is_best. last and best are hard
// links (a copy where links fail) swapped in atomically, so rotating the
// numbered files never removes them. Also removes temporary files left in
// dir by processes that no longer exist.
sslc_status sslc_ckpt_save_run(const char *dir, const sslc_ckpt *c, int64_t keep, bool is_best);

// For --resume / --ckpt RUN_OR_CKPT: a file is itself; a folder gives its
// last.h5, or its ckpt-<step>.h5 with the highest step when last.h5 is
// missing. Messages are neutral ("cannot open checkpoint 'x': No such file or
// directory"); callers add what they wanted the checkpoint for.
sslc_status sslc_ckpt_resolve(const char *run_or_ckpt, char *path, size_t cap);

// Testing only: make the next saves fail at a stage, as a full disk would.
typedef enum sslc_ckpt_fault {
    SSLC_CKPT_FAULT_NONE,
    SSLC_CKPT_FAULT_WRITE,  // after the first tensor is written
    SSLC_CKPT_FAULT_RENAME, // after the temporary file is complete, before the rename
} sslc_ckpt_fault;
void sslc_ckpt_inject_fault(sslc_ckpt_fault fault);

#endif
