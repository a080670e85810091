// HDF5 helpers for the checkpoint files: error capture, scalar attributes,
// link names, dataset shapes (h5util.h).
#include "src/io/h5util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/status.h"

// ---------------------------------------------------------------- errors

// HDF5 prints its error stack to stderr by default; sslc reports one line of
// its own instead, built from the innermost HDF5 message (sslc_h5_reason).
void sslc_h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static char captured[256];

static herr_t reason_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)data;
    if (n != 0 || !e->desc) // walking upward, 0 is the innermost, most specific error
        return 0;
    // The file drivers write "file write failed: time = ..., filename = ...,
    // errno = 28, error message = 'No space left on device', ..."; keep the
    // what and the why.
    const char *why = strstr(e->desc, "error message = '");
    const char *colon = strchr(e->desc, ':');
    if (why && colon) {
        why += strlen("error message = '");
        const char *end = strchr(why, '\'');
        snprintf(captured, sizeof captured, "%.*s: %.*s", (int)(colon - e->desc), e->desc,
                 (int)(end ? end - why : 100), why);
    } else {
        snprintf(captured, sizeof captured, "%s", e->desc);
    }
    for (char *c = captured; *c; c++)
        if (*c == '\n')
            *c = ' ';
    return 0;
}

void sslc_h5_capture(void)
{
    if (H5Eget_num(H5E_DEFAULT) > 0) {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, reason_walk, NULL);
        H5Eclear2(H5E_DEFAULT);
    }
}

const char *sslc_h5_reason(void)
{
    static char text[256];
    sslc_h5_capture();
    snprintf(text, sizeof text, "%s", captured[0] ? captured : "HDF5 error");
    captured[0] = '\0';
    return text;
}

// ---------------------------------------------------------------- small things

char *sslc_h5_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sslc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

hid_t sslc_h5_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0) {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    return t;
}

bool sslc_h5_exists(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

// ---------------------------------------------------------------- writing attributes

static int write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = a >= 0 ? H5Awrite(a, mem_type, value) : -1;
    if (w < 0)
        sslc_h5_capture();
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return w < 0 ? -1 : 0;
}

int sslc_h5_write_i64(hid_t obj, const char *name, int64_t v)
{
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int sslc_h5_write_u64(hid_t obj, const char *name, uint64_t v)
{
    return write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

int sslc_h5_write_f64(hid_t obj, const char *name, double v)
{
    return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int sslc_h5_write_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = sslc_h5_string_type();
    const char *p = v ? v : "";
    int r = t >= 0 ? write_attr(obj, name, t, t, &p) : -1;
    if (t >= 0)
        H5Tclose(t);
    return r;
}

// ---------------------------------------------------------------- reading attributes

bool sslc_h5_attr_is_scalar(hid_t a)
{
    hid_t space = H5Aget_space(a);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    return n == 1;
}

// Reads a one-element numeric attribute as mem_type.
static int read_number(hid_t obj, const char *name, hid_t mem_type, void *v)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    herr_t r = -1;
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && sslc_h5_attr_is_scalar(a))
        r = H5Aread(a, mem_type, v);
    H5Tclose(t);
    H5Aclose(a);
    return r < 0 ? -1 : 1;
}

int sslc_h5_read_i64(hid_t obj, const char *name, int64_t *v)
{
    return read_number(obj, name, H5T_NATIVE_INT64, v);
}

int sslc_h5_read_u64(hid_t obj, const char *name, uint64_t *v)
{
    return read_number(obj, name, H5T_NATIVE_UINT64, v);
}

int sslc_h5_read_f64(hid_t obj, const char *name, double *v)
{
    return read_number(obj, name, H5T_NATIVE_DOUBLE, v);
}

int sslc_h5_read_str_open(hid_t a, char **out)
{
    hid_t t = H5Aget_type(a);
    int r = -1;
    if (H5Tget_class(t) != H5T_STRING || !sslc_h5_attr_is_scalar(a))
        goto done;
    if (H5Tis_variable_str(t) > 0) {
        hid_t mt = sslc_h5_string_type();
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0) {
            *out = sslc_h5_strdup(s ? s : "");
            H5free_memory(s);
            r = *out ? 1 : -1;
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t);
        char *s = sslc_calloc(n + 1, 1);
        if (s && H5Aread(a, t, s) >= 0) {
            *out = s;
            r = 1;
        } else {
            free(s);
        }
    }
done:
    H5Tclose(t);
    return r;
}

int sslc_h5_read_str(hid_t obj, const char *name, char **out)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    int r = sslc_h5_read_str_open(a, out);
    H5Aclose(a);
    return r;
}

// ---------------------------------------------------------------- groups and datasets

static herr_t collect_name(hid_t g, const char *name, const sslc_h5_link_info *info, void *data)
{
    (void)g;
    (void)info;
    sslc_h5_names *l = data;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->names, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->names = grown;
        l->cap = cap;
    }
    l->names[l->count] = sslc_h5_strdup(name);
    if (!l->names[l->count])
        return -1;
    l->count++;
    return 0;
}

void sslc_h5_names_free(sslc_h5_names *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

int sslc_h5_list_names(hid_t g, sslc_h5_names *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (sslc_h5_link_iterate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, l) >= 0)
        return 0;
    H5Eclear2(H5E_DEFAULT);
    sslc_h5_names_free(l);
    idx = 0;
    if (sslc_h5_link_iterate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, l) >= 0)
        return 0;
    sslc_h5_names_free(l);
    return -1;
}

int sslc_h5_get_shape(hid_t d, sslc_h5_shape *s)
{
    hid_t space = H5Dget_space(d);
    hid_t t = H5Dget_type(d);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    s->empty = space >= 0 && H5Sget_simple_extent_type(space) == H5S_NULL;
    s->cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    hsize_t dims[32];
    if (nd >= 0 && nd <= 32)
        H5Sget_simple_extent_dims(space, dims, NULL);
    s->ndim = nd;
    for (int i = 0; i < nd && i < SSLC_TENSOR_MAX_DIMS; i++)
        s->shape[i] = (int64_t)dims[i];
    if (t >= 0)
        H5Tclose(t);
    if (space >= 0)
        H5Sclose(space);
    return nd < 0 ? -1 : 0;
}

void sslc_h5_format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? "," : "", shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}
