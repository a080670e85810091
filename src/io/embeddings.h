// Feature files: the embeddings `sslc embed` writes for downstream work
// (retrieval, clustering, a classifier elsewhere), streamed a batch at a time
// so memory stays one batch whatever the dataset's size, and committed
// atomically (a temporary file renamed over the path when complete).
//
// HDF5 (docs/evaluation.md, "sslc embed"):
//   /features     (N, D) float32   pooled encoder features, dataset order
//   /projections  (N, P) float32   projector output (with a projector only)
//   /labels       (N,) int64       class ids (labelled datasets only)
//   /indices      (N,) int64       dataset indices (bad images leave gaps)
//   /names        (N,) string      file paths, or "file[index]" for IDX
//   /class_names  (C,) string      (labelled datasets only)
//   / attrs       format "sslc-embeddings", format_version, sslc_version,
//                 dataset, recipe, view_size, resize, input_mean, input_std,
//                 ckpt, ckpt_method, ckpt_step, ckpt_epoch, weights_hash, count,
//                 skipped
// NumPy (.npy): the features alone as a float32 (N, D) array; with a
// projector, the projections in a second file "<stem>-projections.npy".
#ifndef SSLC_IO_EMBEDDINGS_H
#define SSLC_IO_EMBEDDINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/status.h"

typedef enum sslc_embed_format { SSLC_EMBED_H5, SSLC_EMBED_NPY } sslc_embed_format;

// What the file says about where its rows come from.
typedef struct sslc_embed_header {
    sslc_embed_format format;
    int64_t dim, proj_dim; // D, and P (0: no projections)
    bool labelled;
    const char *const *class_names; // (n_classes,) or NULL
    int64_t n_classes;
    const char *dataset, *recipe; // the spec and the eval recipe, as text
    const char *ckpt, *ckpt_method;
    int64_t ckpt_step, ckpt_epoch;
    uint64_t weights_hash; // sslc_hash64 of the encoder's values and buffers
    int64_t view_size, resize;             // the eval recipe's crop and short side
    const char *input_mean, *input_std;    // its normalisation, "m0,m1,m2"
} sslc_embed_header;

typedef struct sslc_embed_writer sslc_embed_writer;

// Starts the file (its temporary, "<path>.tmp-<pid>"). path: the .h5 or
// .npy file.
sslc_status sslc_embed_writer_open(sslc_embed_writer **w, const char *path,
                                   const sslc_embed_header *h);
// Appends rows: features (rows, D), projections (rows, P) or NULL, labels
// (rows,) or NULL, indices (rows,), names (rows,).
sslc_status sslc_embed_writer_append(sslc_embed_writer *w, const float *features,
                                     const float *projections, const int64_t *labels,
                                     const int64_t *indices, const char *const *names,
                                     int64_t rows);
// Completes the file (skipped: images left out) and renames it into place;
// frees w whatever happens (a failure removes the temporary file).
sslc_status sslc_embed_writer_close(sslc_embed_writer *w, int64_t skipped);
// Abandons the file: the temporary is removed, path untouched. NULL-safe.
void sslc_embed_writer_abort(sslc_embed_writer *w);

#endif
