// Internal to src/io: the HDF5 plumbing the checkpoint files share. Error
// capture (one line of sslc's own instead of HDF5's printed stack), scalar
// attributes, link names in creation order, dataset shapes. Knows nothing of
// the checkpoint layout (that is checkpoint_internal.h).
#ifndef SSLC_IO_H5UTIL_H
#define SSLC_IO_H5UTIL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/nn/params.h"

// HDF5 1.12 renamed the link iteration API; sslc builds against 1.10 and later.
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t sslc_h5_link_info;
#define sslc_h5_link_iterate H5Literate2
#else
typedef H5L_info_t sslc_h5_link_info;
#define sslc_h5_link_iterate H5Literate
#endif

// ---- errors ------------------------------------------------------------------

// Turns off HDF5's printing of its error stack; call before HDF5 work.
void sslc_h5_quiet(void);
// HDF5 clears its error stack at the start of every API call, so the cause of
// a failure is captured right after the failing call, before any cleanup call.
void sslc_h5_capture(void);
// The innermost HDF5 error of the last failure ("truncated file: eof = ...",
// "data error detected by Fletcher32 checksum"); captures first, and consumes
// what was captured. The text lives until the next call.
const char *sslc_h5_reason(void);

// ---- small things ------------------------------------------------------------

// A copy of s (sslc_malloc: NULL with SSLC_ERR_NOMEM recorded).
char *sslc_h5_strdup(const char *s);
// A variable-length UTF-8 string type; close with H5Tclose.
hid_t sslc_h5_string_type(void);
// Whether loc has a link called name.
bool sslc_h5_exists(hid_t loc, const char *name);

// ---- attributes --------------------------------------------------------------

// Scalar attributes, little-endian in the file; 0 written, -1 failed (the
// cause captured for sslc_h5_reason).
int sslc_h5_write_i64(hid_t obj, const char *name, int64_t v);
int sslc_h5_write_u64(hid_t obj, const char *name, uint64_t v);
int sslc_h5_write_f64(hid_t obj, const char *name, double v);
int sslc_h5_write_str(hid_t obj, const char *name, const char *v); // NULL writes ""

// Whether attribute a holds exactly one element (H5Aread fills as many as it
// holds: an array attribute read into one scalar would overrun).
bool sslc_h5_attr_is_scalar(hid_t a);
// Reads a one-element numeric or string attribute; 1 read, 0 absent, -1
// unreadable or not one value of that kind. Strings are new buffers.
int sslc_h5_read_i64(hid_t obj, const char *name, int64_t *v);
int sslc_h5_read_u64(hid_t obj, const char *name, uint64_t *v);
int sslc_h5_read_f64(hid_t obj, const char *name, double *v);
int sslc_h5_read_str(hid_t obj, const char *name, char **out);
// The same for an attribute already open (variable or fixed length).
int sslc_h5_read_str_open(hid_t a, char **out);

// ---- groups and datasets -----------------------------------------------------

typedef struct sslc_h5_names {
    char **names;
    size_t count, cap;
} sslc_h5_names;

// Link names of a group in creation order (name order for files that did not
// track it); 0 or -1. Free with sslc_h5_names_free.
int sslc_h5_list_names(hid_t g, sslc_h5_names *l);
void sslc_h5_names_free(sslc_h5_names *l);

typedef struct sslc_h5_shape {
    int ndim; // may exceed SSLC_TENSOR_MAX_DIMS; then only the first dims are kept
    int64_t shape[SSLC_TENSOR_MAX_DIMS];
    H5T_class_t cls;
    bool empty; // an H5S_NULL dataspace: 0 dimensions like a scalar, but no value
} sslc_h5_shape;

// Rank, dimensions and type class of dataset d; 0 or -1.
int sslc_h5_get_shape(hid_t d, sslc_h5_shape *s);
// "(16,1,3,3)", "()" for a scalar.
void sslc_h5_format_shape(char *buf, size_t cap, int ndim, const int64_t *shape);

#endif
