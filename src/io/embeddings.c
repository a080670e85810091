#include "src/io/embeddings.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/io/atomic_file.h"
#include "src/io/h5util.h"

enum { FORMAT_VERSION = 1, NPY_HEADER = 128, CHUNK_ROWS = 1024 };

// One .npy array being written: a fixed-size header rewritten with the row
// count when the file is complete.
typedef struct npy_file {
    FILE *f;
    char *path, *tmp;
    int64_t cols;
} npy_file;

struct sslc_embed_writer {
    sslc_embed_header h;
    char *path, *tmp;
    int64_t rows;
    // HDF5
    hid_t file, features, projections, labels, indices, names;
    // NumPy
    npy_file npy[2]; // features, projections
};

// ---- NumPy -----------------------------------------------------------------------

// The version 1.0 header of a little-endian float32 (rows, cols) array,
// padded to NPY_HEADER bytes (a multiple of 64, as numpy writes them).
static void npy_header(char *buf, int64_t rows, int64_t cols)
{
    memset(buf, ' ', NPY_HEADER);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((NPY_HEADER - 10) & 0xff);
    buf[9] = (char)((NPY_HEADER - 10) >> 8);
    int n = snprintf(buf + 10, NPY_HEADER - 10,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    buf[10 + n] = ' '; // snprintf's terminator
    buf[NPY_HEADER - 1] = '\n';
}

static sslc_status npy_open(npy_file *a, const char *path, int64_t cols)
{
    a->cols = cols;
    if (!(a->path = sslc_h5_strdup(path)) || !(a->tmp = sslc_atomic_tmp_path(path)))
        return SSLC_ERR_NOMEM;
    char header[NPY_HEADER];
    npy_header(header, 0, cols);
    a->f = fopen(a->tmp, "wb");
    if (!a->f || fwrite(header, 1, NPY_HEADER, a->f) != NPY_HEADER)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
    return SSLC_OK;
}

static sslc_status npy_append(npy_file *a, const float *x, int64_t rows)
{
    size_t n = (size_t)(rows * a->cols);
    if (fwrite(x, sizeof(float), n, a->f) != n)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(errno));
    return SSLC_OK;
}

static sslc_status npy_close(npy_file *a, int64_t rows)
{
    char header[NPY_HEADER];
    npy_header(header, rows, a->cols);
    bool ok = fseek(a->f, 0, SEEK_SET) == 0 && fwrite(header, 1, NPY_HEADER, a->f) == NPY_HEADER &&
              fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    int err = errno;
    ok = fclose(a->f) == 0 && ok;
    a->f = NULL;
    if (!ok)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", a->tmp, strerror(err));
    return sslc_atomic_commit(a->tmp, a->path);
}

static void npy_free(npy_file *a, bool remove_tmp)
{
    if (a->f)
        fclose(a->f);
    if (remove_tmp && a->tmp)
        unlink(a->tmp);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

// "<stem>-projections.npy" for "<stem>.npy" (or "<path>-projections.npy").
static char *projections_path(const char *path)
{
    size_t n = strlen(path);
    size_t stem = n > 4 && !strcmp(path + n - 4, ".npy") ? n - 4 : n;
    char *p = sslc_malloc(stem + 32);
    if (p)
        snprintf(p, stem + 32, "%.*s-projections.npy", (int)stem, path);
    return p;
}

// ---- HDF5 ------------------------------------------------------------------------

// An empty (0, cols) dataset (cols 0: a vector) that grows by rows.
static hid_t h5_growing(hid_t file, const char *name, hid_t type, int64_t cols)
{
    int rank = cols > 0 ? 2 : 1;
    hsize_t dims[2] = {0, (hsize_t)cols}, maxdims[2] = {H5S_UNLIMITED, (hsize_t)cols};
    hsize_t chunk[2] = {CHUNK_ROWS, (hsize_t)cols};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_obj_track_times(dcpl, false);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0)
        sslc_h5_capture();
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

// Appends rows at row `at` of the growing dataset d.
static int h5_append(hid_t d, hid_t mem_type, const void *data, int64_t at, int64_t rows,
                     int64_t cols)
{
    int rank = cols > 0 ? 2 : 1;
    hsize_t size[2] = {(hsize_t)(at + rows), (hsize_t)cols};
    hsize_t start[2] = {(hsize_t)at, 0}, count[2] = {(hsize_t)rows, (hsize_t)cols};
    if (H5Dset_extent(d, size) < 0) {
        sslc_h5_capture();
        return -1;
    }
    hid_t file_space = H5Dget_space(d);
    hid_t mem_space = H5Screate_simple(rank, count, NULL);
    herr_t st = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (st >= 0)
        st = H5Dwrite(d, mem_type, mem_space, file_space, H5P_DEFAULT, data);
    if (st < 0)
        sslc_h5_capture();
    H5Sclose(mem_space);
    H5Sclose(file_space);
    return st < 0 ? -1 : 0;
}

static int h5_strings(hid_t file, const char *name, const char *const *s, int64_t n)
{
    hid_t type = sslc_h5_string_type();
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = d >= 0 ? H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) : -1;
    if (st < 0)
        sslc_h5_capture();
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    H5Tclose(type);
    return st < 0 ? -1 : 0;
}

static sslc_status h5_open(sslc_embed_writer *w)
{
    const sslc_embed_header *h = &w->h;
    sslc_h5_quiet();
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_obj_track_times(fcpl, false);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (w->file < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create '%s': %s", w->tmp, sslc_h5_reason());
    hid_t str = sslc_h5_string_type();
    w->features = h5_growing(w->file, "features", H5T_IEEE_F32LE, h->dim);
    w->projections = h->proj_dim > 0 ? h5_growing(w->file, "projections", H5T_IEEE_F32LE,
                                                  h->proj_dim)
                                     : H5I_INVALID_HID;
    w->labels = h->labelled ? h5_growing(w->file, "labels", H5T_STD_I64LE, 0) : H5I_INVALID_HID;
    w->indices = h5_growing(w->file, "indices", H5T_STD_I64LE, 0);
    w->names = h5_growing(w->file, "names", str, 0);
    H5Tclose(str);
    bool ok = w->features >= 0 && w->indices >= 0 && w->names >= 0 &&
              (h->proj_dim <= 0 || w->projections >= 0) && (!h->labelled || w->labels >= 0);
    if (ok && h->class_names && h->n_classes > 0)
        ok = h5_strings(w->file, "class_names", h->class_names, h->n_classes) == 0;
    if (!ok)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", w->tmp, sslc_h5_reason());
    return SSLC_OK;
}

static void h5_close_objects(sslc_embed_writer *w)
{
    hid_t ds[] = {w->features, w->projections, w->labels, w->indices, w->names};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
        if (ds[i] > 0)
            H5Dclose(ds[i]);
    w->features = w->projections = w->labels = w->indices = w->names = H5I_INVALID_HID;
    if (w->file > 0)
        H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
}

static sslc_status h5_finish(sslc_embed_writer *w, int64_t skipped)
{
    const sslc_embed_header *h = &w->h;
    int bad = sslc_h5_write_str(w->file, "format", "sslc-embeddings") |
              sslc_h5_write_i64(w->file, "format_version", FORMAT_VERSION) |
              sslc_h5_write_str(w->file, "sslc_version", SSLC_VERSION) |
              sslc_h5_write_str(w->file, "dataset", h->dataset) |
              sslc_h5_write_str(w->file, "recipe", h->recipe) |
              sslc_h5_write_i64(w->file, "view_size", h->view_size) |
              sslc_h5_write_i64(w->file, "resize", h->resize) |
              sslc_h5_write_str(w->file, "input_mean", h->input_mean) |
              sslc_h5_write_str(w->file, "input_std", h->input_std) |
              sslc_h5_write_str(w->file, "ckpt", h->ckpt) |
              sslc_h5_write_str(w->file, "ckpt_method", h->ckpt_method) |
              sslc_h5_write_i64(w->file, "ckpt_step", h->ckpt_step) |
              sslc_h5_write_i64(w->file, "ckpt_epoch", h->ckpt_epoch);
    char hash[20];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h->weights_hash);
    bad |= sslc_h5_write_str(w->file, "weights_hash", hash) |
           sslc_h5_write_i64(w->file, "count", w->rows) |
           sslc_h5_write_i64(w->file, "skipped", skipped);
    if (bad)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", w->tmp, sslc_h5_reason());
    bool closed = H5Fflush(w->file, H5F_SCOPE_GLOBAL) >= 0;
    if (!closed)
        sslc_h5_capture();
    h5_close_objects(w);
    if (!closed)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", w->tmp, sslc_h5_reason());
    sslc_status st = sslc_atomic_sync(w->tmp, false);
    return st ? st : sslc_atomic_commit(w->tmp, w->path);
}

// ---- the writer ------------------------------------------------------------------

static void writer_free(sslc_embed_writer *w, bool remove_tmp)
{
    h5_close_objects(w);
    for (int i = 0; i < 2; i++)
        npy_free(&w->npy[i], remove_tmp);
    if (remove_tmp && w->tmp)
        unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}

sslc_status sslc_embed_writer_open(sslc_embed_writer **out, const char *path,
                                   const sslc_embed_header *h)
{
    *out = NULL;
    sslc_embed_writer *w = sslc_calloc(1, sizeof *w);
    if (!w)
        return SSLC_ERR_NOMEM;
    w->h = *h;
    w->file = w->features = w->projections = w->labels = w->indices = w->names = H5I_INVALID_HID;
    sslc_status st = SSLC_OK;
    if (h->format == SSLC_EMBED_NPY) {
        st = npy_open(&w->npy[0], path, h->dim);
        if (!st && h->proj_dim > 0) {
            char *p = projections_path(path);
            st = p ? npy_open(&w->npy[1], p, h->proj_dim) : SSLC_ERR_NOMEM;
            free(p);
        }
    } else if (!(w->path = sslc_h5_strdup(path)) || !(w->tmp = sslc_atomic_tmp_path(path))) {
        st = SSLC_ERR_NOMEM;
    } else {
        st = h5_open(w);
    }
    if (st) {
        writer_free(w, true);
        return st;
    }
    *out = w;
    return SSLC_OK;
}

sslc_status sslc_embed_writer_append(sslc_embed_writer *w, const float *features,
                                     const float *projections, const int64_t *labels,
                                     const int64_t *indices, const char *const *names,
                                     int64_t rows)
{
    const sslc_embed_header *h = &w->h;
    sslc_status st = SSLC_OK;
    if (h->format == SSLC_EMBED_NPY) {
        st = npy_append(&w->npy[0], features, rows);
        if (!st && h->proj_dim > 0)
            st = npy_append(&w->npy[1], projections, rows);
    } else {
        hid_t str = sslc_h5_string_type();
        int bad = h5_append(w->features, H5T_NATIVE_FLOAT, features, w->rows, rows, h->dim) ||
                  (h->proj_dim > 0 && h5_append(w->projections, H5T_NATIVE_FLOAT, projections,
                                                w->rows, rows, h->proj_dim)) ||
                  (h->labelled && h5_append(w->labels, H5T_NATIVE_INT64, labels, w->rows, rows,
                                            0)) ||
                  h5_append(w->indices, H5T_NATIVE_INT64, indices, w->rows, rows, 0) ||
                  h5_append(w->names, str, names, w->rows, rows, 0);
        H5Tclose(str);
        if (bad)
            st = sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", w->tmp, sslc_h5_reason());
    }
    if (!st)
        w->rows += rows;
    return st;
}

sslc_status sslc_embed_writer_close(sslc_embed_writer *w, int64_t skipped)
{
    sslc_status st = SSLC_OK;
    if (w->h.format == SSLC_EMBED_NPY) {
        for (int i = 0; i < 2 && !st; i++)
            if (w->npy[i].path)
                st = npy_close(&w->npy[i], w->rows);
    } else {
        st = h5_finish(w, skipped);
    }
    writer_free(w, st != SSLC_OK);
    return st;
}

void sslc_embed_writer_abort(sslc_embed_writer *w)
{
    if (w)
        writer_free(w, true);
}
