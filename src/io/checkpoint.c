#include "src/io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/log.h"
#include "src/core/fs.h"

// HDF5 1.12 renamed the link iteration API; sslc builds against 1.10 and later.
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t link_info;
#define link_iterate H5Literate2
#define vlen_reclaim H5Treclaim
#else
typedef H5L_info_t link_info;
#define link_iterate H5Literate
#define vlen_reclaim H5Dvlen_reclaim
#endif

static sslc_ckpt_fault injected_fault = SSLC_CKPT_FAULT_NONE;

void sslc_ckpt_inject_fault(sslc_ckpt_fault fault) { injected_fault = fault; }

// ---------------------------------------------------------------- helpers

// HDF5 prints its error stack to stderr by default; sslc reports one line of
// its own instead, built from the innermost HDF5 message (reason()).
static void quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

// HDF5 clears its error stack at the start of every API call, so the cause of
// a failure is captured right after the failing call, before any cleanup
// call; reason() then gives it for the message.
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

static void capture(void)
{
    if (H5Eget_num(H5E_DEFAULT) > 0) {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, reason_walk, NULL);
        H5Eclear2(H5E_DEFAULT);
    }
}

// The innermost HDF5 error of the last failure ("truncated file: eof = ...",
// "data error detected by Fletcher32 checksum"); consumed by the call.
static const char *reason(void)
{
    static char text[256];
    capture();
    snprintf(text, sizeof text, "%s", captured[0] ? captured : "HDF5 error");
    captured[0] = '\0';
    return text;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sslc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sslc_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *tmp_path_for(const char *path)
{
    size_t n = strlen(path) + 32;
    char *p = sslc_malloc(n);
    if (p)
        snprintf(p, n, "%s.tmp-%ld", path, (long)getpid());
    return p;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? "," : "", shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
}

static hid_t string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0) {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    return t;
}

static int link_exists(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

// ---------------------------------------------------------------- attributes

static int write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = a >= 0 ? H5Awrite(a, mem_type, value) : -1;
    if (w < 0)
        capture();
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return w < 0 ? -1 : 0;
}

static int attr_i64(hid_t obj, const char *name, int64_t v)
{
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static int attr_u64(hid_t obj, const char *name, uint64_t v)
{
    return write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

static int attr_f64(hid_t obj, const char *name, double v)
{
    return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

static int attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = string_type();
    const char *p = v ? v : "";
    int r = t >= 0 ? write_attr(obj, name, t, t, &p) : -1;
    if (t >= 0)
        H5Tclose(t);
    return r;
}

// H5Aread fills as many elements as the attribute holds: reading an array
// attribute (a file edited with h5py, say) into one scalar would overrun.
static int attr_is_scalar(hid_t a)
{
    hid_t space = H5Aget_space(a);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    return n == 1;
}

// Reads a one-element numeric attribute as mem_type; 1 read, 0 absent,
// -1 unreadable or not one number.
static int read_attr_number(hid_t obj, const char *name, hid_t mem_type, void *v)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    herr_t r = -1;
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && attr_is_scalar(a))
        r = H5Aread(a, mem_type, v);
    H5Tclose(t);
    H5Aclose(a);
    return r < 0 ? -1 : 1;
}

static int read_attr_i64(hid_t obj, const char *name, int64_t *v)
{
    return read_attr_number(obj, name, H5T_NATIVE_INT64, v);
}

static int read_attr_u64(hid_t obj, const char *name, uint64_t *v)
{
    return read_attr_number(obj, name, H5T_NATIVE_UINT64, v);
}

static int read_attr_f64(hid_t obj, const char *name, double *v)
{
    return read_attr_number(obj, name, H5T_NATIVE_DOUBLE, v);
}

// Reads a string attribute, variable or fixed length, into a new buffer.
static int read_attr_str_open(hid_t a, char **out)
{
    hid_t t = H5Aget_type(a);
    int r = -1;
    if (H5Tget_class(t) != H5T_STRING || !attr_is_scalar(a))
        goto done;
    if (H5Tis_variable_str(t) > 0) {
        hid_t mt = string_type();
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0) {
            *out = dup_string(s ? s : "");
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

static int read_attr_str(hid_t obj, const char *name, char **out)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    int r = read_attr_str_open(a, out);
    H5Aclose(a);
    return r;
}

// ---------------------------------------------------------------- writing

// Groups remember creation order, so `sslc info` lists tensors in model
// order and the model attributes in the order they were given.
static hid_t make_group(hid_t loc, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_obj_track_times(gcpl, false);
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0)
        capture();
    H5Pclose(gcpl);
    return g;
}

static hid_t open_or_make_group(hid_t loc, const char *name)
{
    if (link_exists(loc, name))
        return H5Gopen2(loc, name, H5P_DEFAULT);
    return make_group(loc, name);
}

// One dataset. Arrays with dimensions are one chunk each with a Fletcher32
// checksum, so a flipped byte in the data is detected on read (HDF5 checks
// its own metadata with checksums, see create_file). Scalars are compact:
// they live in the checksummed object header.
static int write_dataset(hid_t loc, const char *name, int ndim, const int64_t *shape,
                         hid_t file_type, hid_t mem_type, const void *data)
{
    hsize_t dims[SSLC_TENSOR_MAX_DIMS] = {0};
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = (hsize_t)shape[i];
        numel *= shape[i];
    }
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, false);
    size_t elem = H5Tget_size(file_type);
    if (ndim == 0) {
        H5Pset_layout(dcpl, H5D_COMPACT);
    } else if (numel > 0 && (double)numel * (double)elem < 4.0e9) { // HDF5's chunk limit
        H5Pset_chunk(dcpl, ndim, dims);
        H5Pset_fletcher32(dcpl);
    }
    hid_t d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t w = d >= 0 ? H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (w < 0)
        capture();
    if (d >= 0 && H5Dclose(d) < 0) {
        capture();
        w = -1;
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    return w < 0 ? -1 : 0;
}

static int is_int_scalar(const sslc_tensor *t)
{
    return (t->flags & SSLC_TENSOR_INT64) && t->numel == 1;
}

static sslc_status fault_check(sslc_ckpt_fault stage)
{
    if (injected_fault == stage)
        return sslc_error(SSLC_ERR_IO, "injected fault (testing)");
    return SSLC_OK;
}

static sslc_status write_part(hid_t file, const sslc_ckpt_part *part, int64_t *written)
{
        hid_t g = make_group(file, part->name);
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create group '%s': %s", part->name,
                          reason());
    sslc_status st = SSLC_OK;
    const sslc_params *p = part->params;
    for (int64_t i = 0; i < p->count && st == SSLC_OK; i++) {
        const sslc_tensor *t = &p->tensors[i];
        const float *x = sslc_params_data(p, t);
        int ok;
        if (t->flags & SSLC_TENSOR_INT64) {
            int64_t *v = sslc_malloc((size_t)t->numel * sizeof *v);
            if (!v) {
                st = SSLC_ERR_NOMEM;
                break;
            }
            for (int64_t k = 0; k < t->numel; k++)
                v[k] = (int64_t)llround((double)x[k]);
            // PyTorch's num_batches_tracked is a 0-dim int64 tensor.
            if (is_int_scalar(t))
                ok = write_dataset(g, t->name, 0, NULL, H5T_STD_I64LE, H5T_NATIVE_INT64, v);
            else
                ok = write_dataset(g, t->name, t->ndim, t->shape, H5T_STD_I64LE,
                                   H5T_NATIVE_INT64, v);
            free(v);
        } else {
            ok = write_dataset(g, t->name, t->ndim, t->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                               x);
        }
        if (ok < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot write %s tensor '%s': %s", part->name, t->name,
                            reason());
        else if (++*written == 1)
            st = fault_check(SSLC_CKPT_FAULT_WRITE);
    }
    H5Gclose(g);
    return st;
}

static const sslc_ckpt_part *find_part(const sslc_ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->n_parts; i++)
        if (strcmp(c->parts[i].name, name) == 0)
            return &c->parts[i];
    return NULL;
}

static sslc_status write_optimizer(hid_t file, const sslc_ckpt *c)
{
        hid_t g = make_group(file, "optimizer");
    if (g < 0 || attr_str(g, "name", c->optimizer) < 0 ||
        attr_i64(g, "step", c->optimizer_step) < 0) {
        if (g >= 0)
            H5Gclose(g);
        return sslc_error(SSLC_ERR_IO, "cannot write the optimizer group: %s", reason());
    }
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        const sslc_params *p = find_part(c, b->part)->params;
        hid_t pg = open_or_make_group(g, b->part);
        hid_t bg = pg >= 0 ? make_group(pg, b->name) : -1;
        if (bg < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot create optimizer group %s/%s: %s", b->part,
                            b->name, reason());
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind != SSLC_TENSOR_PARAM)
                continue;
            if (write_dataset(bg, t->name, t->ndim, t->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                              b->data + t->offset) < 0)
                st = sslc_error(SSLC_ERR_IO, "cannot write optimizer %s/%s tensor '%s': %s",
                                b->part, b->name, t->name, reason());
        }
        if (bg >= 0)
            H5Gclose(bg);
        if (pg >= 0)
            H5Gclose(pg);
    }
    H5Gclose(g);
    return st;
}

static sslc_status write_arrays(hid_t file, const sslc_ckpt *c)
{
        hid_t g = make_group(file, "state");
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create the state group: %s", reason());
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        int f32 = a->dtype == SSLC_CKPT_F32;
        if (write_dataset(g, a->name, a->ndim, a->shape, f32 ? H5T_IEEE_F32LE : H5T_STD_I64LE,
                          f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, a->data) < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot write state array '%s': %s", a->name,
                            reason());
    }
    H5Gclose(g);
    return st;
}

static sslc_status write_model_attrs(hid_t file, const sslc_ckpt_attr *attrs, size_t n)
{
        hid_t g = make_group(file, "model");
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create the model group: %s", reason());
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        const sslc_ckpt_attr *a = &attrs[i];
        switch (a->type) {
        case SSLC_CKPT_ATTR_INT: bad = attr_i64(g, a->key, a->i) < 0; break;
        case SSLC_CKPT_ATTR_FLOAT: bad = attr_f64(g, a->key, a->f) < 0; break;
        case SSLC_CKPT_ATTR_STRING: bad = attr_str(g, a->key, a->s) < 0; break;
        }
        if (bad) {
            H5Gclose(g);
            return sslc_error(SSLC_ERR_IO, "cannot write model attribute '%s': %s", a->key,
                              reason());
        }
    }
    H5Gclose(g);
    return SSLC_OK;
}

typedef struct header_values {
    const char *kind, *method, *config;
    int64_t epoch, step, samples_seen;
    uint64_t seed;
} header_values;

static sslc_status write_header(hid_t file, const header_values *h)
{
        if (attr_i64(file, "format_version", SSLC_CKPT_FORMAT_VERSION) < 0 ||
        attr_str(file, "sslc_version", SSLC_VERSION) < 0 || attr_str(file, "kind", h->kind) < 0 ||
        attr_str(file, "method", h->method) < 0 || attr_str(file, "config", h->config) < 0 ||
        attr_i64(file, "epoch", h->epoch) < 0 || attr_i64(file, "step", h->step) < 0 ||
        attr_i64(file, "samples_seen", h->samples_seen) < 0 || attr_u64(file, "seed", h->seed) < 0)
        return sslc_error(SSLC_ERR_IO, "cannot write the header attributes: %s", reason());
    return SSLC_OK;
}

// The 1.10 file format: checksummed superblock and object headers, and a
// single-chunk index whose address sits in the checksummed object header, so
// every byte that locates or holds a tensor is covered by a checksum.
// Readable by HDF5 >= 1.10 (Debian 10 and later, h5py built on it).
//
// The file is built in memory (HDF5's core driver, no backing store) and
// written out by write_image. HDF5 cannot abandon a file whose close failed:
// with a full disk, H5Fclose fails, the file stays open inside the library,
// and HDF5 crashes at exit (seen with 1.10.8). Owning the write() calls makes
// a disk error a plain error return. The cost is the file's size in memory
// twice while saving.
static hid_t create_file(const char *name, size_t size_hint)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_obj_track_times(fcpl, false); // same state, same bytes
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    H5Pset_fapl_core(fapl, size_hint, 0);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, fcpl, fapl);
    if (f < 0)
        capture();
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return f;
}

static sslc_status write_fd(int fd, const char *path, const unsigned char *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        off += (size_t)w;
    }
    return SSLC_OK;
}

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

// Bob Jenkins' lookup3 hash (hashlittle, 2006, public domain), which HDF5
// uses as the checksum of its metadata.
static uint32_t lookup3(const unsigned char *k, size_t length)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length;
    while (length > 12) {
        a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
        b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
        c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
        a -= c; a ^= ROT(c, 4); c += b;
        b -= a; b ^= ROT(a, 6); a += c;
        c -= b; c ^= ROT(b, 8); b += a;
        a -= c; a ^= ROT(c, 16); c += b;
        b -= a; b ^= ROT(a, 19); a += c;
        c -= b; c ^= ROT(b, 4); b += a;
        length -= 12;
        k += 12;
    }
    switch (length) {
    case 12: c += (uint32_t)k[11] << 24; // fall through
    case 11: c += (uint32_t)k[10] << 16; // fall through
    case 10: c += (uint32_t)k[9] << 8; // fall through
    case 9: c += k[8]; // fall through
    case 8: b += (uint32_t)k[7] << 24; // fall through
    case 7: b += (uint32_t)k[6] << 16; // fall through
    case 6: b += (uint32_t)k[5] << 8; // fall through
    case 5: b += k[4]; // fall through
    case 4: a += (uint32_t)k[3] << 24; // fall through
    case 3: a += (uint32_t)k[2] << 16; // fall through
    case 2: a += (uint32_t)k[1] << 8; // fall through
    case 1: a += k[0]; break;
    case 0: return c;
    }
    c ^= b; c -= ROT(b, 14);
    a ^= c; a -= ROT(c, 11);
    b ^= a; b -= ROT(a, 25);
    c ^= b; c -= ROT(b, 16);
    a ^= c; a -= ROT(c, 4);
    b ^= a; b -= ROT(a, 14);
    c ^= b; c -= ROT(b, 24);
    return c;
}

#undef ROT

// HDF5 1.10.8's H5Fget_file_image copies a version 2/3 superblock with a
// stale checksum, and HDF5 then refuses to open the image. The superblock is
// 8 signature bytes, 4 bytes (version, sizes, flags), 4 addresses, then the
// checksum of all that; recompute it.
static sslc_status fix_superblock(unsigned char *buf, size_t n)
{
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (n < 12 || memcmp(buf, signature, 8) != 0)
        return sslc_error(SSLC_ERR_INTERNAL, "the HDF5 file image has no superblock at 0");
    if (buf[8] < 2)
        return SSLC_OK; // versions 0 and 1 have no checksum
    size_t len = 12 + 4 * (size_t)buf[9];
    if (n < len + 4)
        return sslc_error(SSLC_ERR_INTERNAL, "the HDF5 file image is too short");
    uint32_t sum = lookup3(buf, len);
    for (int i = 0; i < 4; i++)
        buf[len + (size_t)i] = (unsigned char)(sum >> (8 * i));
    return SSLC_OK;
}

// Closes the in-memory file f and writes its bytes to path, synced to disk.
static sslc_status write_image(hid_t f, const char *path)
{
    // The image is what the driver holds: flush HDF5's metadata cache into it first.
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    unsigned char *buf = n > 0 ? sslc_malloc((size_t)n) : NULL;
    sslc_status st = SSLC_OK;
    if (n <= 0)
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot size the file image: %s", reason());
    else if (!buf)
        st = SSLC_ERR_NOMEM;
    else if (H5Fget_file_image(f, buf, (size_t)n) != n)
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot get the file image: %s", reason());
    else
        st = fix_superblock(buf, (size_t)n);
    H5Fclose(f);
    int fd = -1;
    if (st == SSLC_OK) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    }
    if (st == SSLC_OK)
        st = write_fd(fd, path, buf, (size_t)n);
    if (st == SSLC_OK && fsync(fd) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", path, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && st == SSLC_OK) // NFS reports write errors here
        st = sslc_error(SSLC_ERR_IO, "cannot close '%s': %s", path, strerror(errno));
    free(buf);
    return st;
}

static sslc_status fsync_path(const char *path, int dir)
{
    int fd = open(path, O_RDONLY | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return sslc_error(SSLC_ERR_IO, "cannot open '%s' to sync it: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", path, strerror(e));
    return SSLC_OK;
}

static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dup_string(".");
    if (slash == path)
        return dup_string("/");
    size_t n = (size_t)(slash - path);
    char *d = sslc_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

// The last steps of every atomic write: tmp is complete, synced and closed.
static sslc_status commit_tmp(const char *tmp, const char *path)
{
    sslc_status st = fault_check(SSLC_CKPT_FAULT_RENAME);
    if (st != SSLC_OK)
        return st;
    if (rename(tmp, path) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    // The file is in place; a failed folder sync only weakens durability
    // against a power cut, so it warns rather than fails.
    char *dir = parent_dir(path);
    if (dir && fsync_path(dir, 1) != SSLC_OK)
        sslc_warn("checkpoint %s: %s", path, sslc_error_message());
    free(dir);
    return SSLC_OK;
}

static sslc_status check_description(const sslc_ckpt *c)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        const sslc_ckpt_part *p = &c->parts[i];
        if (!p->name || !p->params || (p->params->count && !p->params->values))
            return sslc_error(SSLC_ERR_INVALID, "part %zu has no name or no allocated table", i);
        if (strchr(p->name, '/') || strcmp(p->name, "model") == 0 ||
            strcmp(p->name, "optimizer") == 0 || strcmp(p->name, "state") == 0)
            return sslc_error(SSLC_ERR_INVALID, "'%s' cannot name a part", p->name);
        if (find_part(c, p->name) != p)
            return sslc_error(SSLC_ERR_INVALID, "part '%s' listed twice", p->name);
    }
    for (size_t i = 0; i < c->n_optim; i++) {
        if (!c->optimizer)
            return sslc_error(SSLC_ERR_INVALID, "optimizer buffers without an optimizer name");
        if (!find_part(c, c->optim[i].part))
            return sslc_error(SSLC_ERR_INVALID, "optimizer buffer '%s' names no part ('%s')",
                              c->optim[i].name, c->optim[i].part);
        for (size_t k = 0; k < i; k++)
            if (strcmp(c->optim[k].part, c->optim[i].part) == 0 &&
                strcmp(c->optim[k].name, c->optim[i].name) == 0)
                return sslc_error(SSLC_ERR_INVALID, "optimizer buffer %s/%s listed twice",
                                  c->optim[i].part, c->optim[i].name);
    }
    for (size_t i = 0; i < c->n_arrays; i++)
        if (c->arrays[i].ndim < 0 || c->arrays[i].ndim > SSLC_TENSOR_MAX_DIMS ||
            strchr(c->arrays[i].name, '/'))
            return sslc_error(SSLC_ERR_INVALID, "state array '%s' has a bad name or rank",
                              c->arrays[i].name);
    return SSLC_OK;
}

sslc_status sslc_ckpt_save(const char *path, const sslc_ckpt *c)
{
    quiet_hdf5();
    sslc_status st = check_description(c);
    if (st != SSLC_OK)
        return sslc_error_prefix(st, "checkpoint %s", path);
    char *tmp = tmp_path_for(path);
    if (!tmp)
        return SSLC_ERR_NOMEM;
    // One allocation for the whole file, most of the time.
    int64_t floats = 0;
    for (size_t i = 0; i < c->n_parts; i++)
        floats += c->parts[i].params->n_values + c->parts[i].params->n_buffers;
    for (size_t i = 0; i < c->n_optim; i++)
        floats += find_part(c, c->optim[i].part)->params->n_values;
    for (size_t i = 0; i < c->n_arrays; i++) {
        int64_t n = 1;
        for (int k = 0; k < c->arrays[i].ndim; k++)
            n *= c->arrays[i].shape[k];
        floats += 2 * n;
    }
    hid_t f = create_file(tmp, (size_t)floats * sizeof(float) + (1u << 20));
    if (f < 0) {
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot create '%s' in memory: %s", tmp, reason());
        goto fail;
    }
    header_values h = {"training", c->method, c->config, c->epoch, c->step, c->samples_seen,
                       c->seed};
    st = write_header(f, &h);
    if (st == SSLC_OK)
        st = write_model_attrs(f, c->model, c->n_model);
    int64_t written = 0;
    for (size_t i = 0; i < c->n_parts && st == SSLC_OK; i++)
        st = write_part(f, &c->parts[i], &written);
    if (st == SSLC_OK && c->optimizer)
        st = write_optimizer(f, c);
    if (st == SSLC_OK && c->n_arrays)
        st = write_arrays(f, c);
    if (st == SSLC_OK)
        st = write_image(f, tmp);
    else
        H5Fclose(f); // in memory: nothing to fail
    if (st == SSLC_OK)
        st = commit_tmp(tmp, path);
    if (st != SSLC_OK)
        goto fail;
    free(tmp);
    return SSLC_OK;
fail:
    unlink(tmp);
    free(tmp);
    H5Eclear2(H5E_DEFAULT);
    return sslc_error_prefix(st, "checkpoint %s: not saved (the previous file is untouched)",
                             path);
}

// ---------------------------------------------------------------- opening

// Opens path read-only after checking that it is an sslc checkpoint; with
// strict, of this format version. Messages start "checkpoint <path>: ".
static sslc_status open_checkpoint(const char *path, int strict, hid_t *out, int64_t *version)
{
    quiet_hdf5();
        struct stat sb;
    if (stat(path, &sb) != 0)
        return sslc_error(SSLC_ERR_IO, "checkpoint %s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return sslc_error(SSLC_ERR_IO, "checkpoint %s: is a folder, not a file", path);
    if (sb.st_size == 0)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is empty (0 bytes)", path);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is not an HDF5 file (%lld bytes)",
                          path, (long long)sb.st_size);
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0)
        capture();
    H5Pclose(fapl);
    if (f < 0)
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: is truncated or corrupt (%lld bytes): %s", path,
                          (long long)sb.st_size, reason());
    int64_t v = 0;
    int got = read_attr_i64(f, "format_version", &v);
    if (got <= 0) {
        H5Fclose(f);
        H5Eclear2(H5E_DEFAULT);
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: is an HDF5 file but not an sslc checkpoint "
                          "(%s format_version attribute)",
                          path, got == 0 ? "no" : "unreadable");
    }
    if (strict && v != SSLC_CKPT_FORMAT_VERSION) {
        H5Fclose(f);
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: has format version %" PRId64
                          "; this sslc (%s) reads version %d",
                          path, v, SSLC_VERSION, SSLC_CKPT_FORMAT_VERSION);
    }
    *out = f;
    if (version)
        *version = v;
    return SSLC_OK;
}

// ---------------------------------------------------------------- loading

typedef struct dataset_shape {
    int ndim;
    int64_t shape[SSLC_TENSOR_MAX_DIMS];
    H5T_class_t cls;
    int empty; // an H5S_NULL dataspace: 0 dimensions like a scalar, but no value
} dataset_shape;

static int get_shape(hid_t d, dataset_shape *s)
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

static int same_shape(const dataset_shape *s, int ndim, const int64_t *shape)
{
    if (s->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (s->shape[i] != shape[i])
            return 0;
    return 1;
}

// Checks that loc/name is a dataset of the given type class and shape;
// scalar_ok also accepts a 0-dim dataset for a one-element tensor.
static sslc_status check_dataset(const char *path, const char *what, hid_t loc, const char *name,
                                 int want_int, int ndim, const int64_t *shape, int scalar_ok)
{
    char want[96], have[96];
    if (!link_exists(loc, name))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' is missing", path, what, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    dataset_shape s;
    int bad = d < 0 || get_shape(d, &s) < 0;
    if (bad)
        capture();
    if (d >= 0)
        H5Dclose(d);
    if (bad) {
                return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' is not a readable dataset: %s",
                          path, what, name, reason());
    }
    if (s.ndim > SSLC_TENSOR_MAX_DIMS)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' has %d dimensions", path, what,
                          name, s.ndim);
    if (s.empty)
        return sslc_error(SSLC_ERR_FORMAT,
                          "checkpoint %s: %s '%s' holds no value (an empty dataspace)", path,
                          what, name);
    format_shape(want, sizeof want, ndim, shape);
    format_shape(have, sizeof have, s.ndim, s.shape);
    if (!same_shape(&s, ndim, shape) && !(scalar_ok && s.ndim == 0))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' has shape %s, model expects %s",
                          path, what, name, have, want);
    H5T_class_t cls = want_int ? H5T_INTEGER : H5T_FLOAT;
    if (s.cls != cls)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: %s '%s' holds %s, expected %s", path,
                          what, name, s.cls == H5T_INTEGER ? "integers" : "non-float data",
                          want_int ? "int64" : "float32");
    return SSLC_OK;
}

typedef struct name_list {
    char **names;
    size_t count, cap;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const link_info *info, void *data)
{
    (void)g;
    (void)info;
    name_list *l = data;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->names, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->names = grown;
        l->cap = cap;
    }
    l->names[l->count] = dup_string(name);
    if (!l->names[l->count])
        return -1;
    l->count++;
    return 0;
}

static void free_names(name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

// Link names of a group in creation order (name order for files that did
// not track it).
static int list_names(hid_t g, name_list *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (link_iterate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, l) >= 0)
        return 0;
    H5Eclear2(H5E_DEFAULT);
    free_names(l);
    idx = 0;
    if (link_iterate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, l) >= 0)
        return 0;
    free_names(l);
    return -1;
}

static sslc_status check_part(const char *path, hid_t file, const sslc_ckpt_part *part)
{
    if (!link_exists(file, part->name))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no part '%s'", path, part->name);
    hid_t g = H5Gopen2(file, part->name, H5P_DEFAULT);
    if (g < 0)
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: '%s' is not a group", path, part->name);
    char what[128];
    snprintf(what, sizeof what, "%s tensor", part->name);
    const sslc_params *p = part->params;
    sslc_status st = SSLC_OK;
    for (int64_t i = 0; i < p->count && st == SSLC_OK; i++) {
        const sslc_tensor *t = &p->tensors[i];
        int want_int = (t->flags & SSLC_TENSOR_INT64) != 0;
        st = check_dataset(path, what, g, t->name, want_int, t->ndim, t->shape, is_int_scalar(t));
    }
    name_list names;
    if (st == SSLC_OK && list_names(g, &names) != 0)
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot list group '%s'", path,
                        part->name);
    else if (st == SSLC_OK) {
        // strict=True, as PyTorch loads: a tensor the model lacks means the
        // checkpoint is of another model.
        for (size_t i = 0; i < names.count && st == SSLC_OK; i++)
            if (!sslc_params_find(p, names.names[i]))
                st = sslc_error(SSLC_ERR_FORMAT,
                                "checkpoint %s: %s '%s' is not in the model (%" PRId64
                                " tensors in the file, %" PRId64 " in the model)",
                                path, what, names.names[i], (int64_t)names.count, p->count);
        free_names(&names);
    }
    H5Gclose(g);
    return st;
}

// The shortest of %.15g / %.17g that reads back as v: "0.2", not
// "0.20000000000000001", yet distinct values never print the same.
static void float_text(double v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, cap, "%.17g", v);
}

static int attr_equal(hid_t g, const sslc_ckpt_attr *a, char *have, size_t cap)
{
    int got = 0, eq = 0;
    switch (a->type) {
    case SSLC_CKPT_ATTR_INT: {
        int64_t v = 0;
        got = read_attr_i64(g, a->key, &v);
        if (got > 0) {
            snprintf(have, cap, "%" PRId64, v);
            eq = v == a->i;
        }
        break;
    }
    case SSLC_CKPT_ATTR_FLOAT: {
        double v = 0;
        got = read_attr_f64(g, a->key, &v);
        if (got > 0) {
            float_text(v, have, cap);
            eq = v == a->f;
        }
        break;
    }
    case SSLC_CKPT_ATTR_STRING: {
        char *v = NULL;
        got = read_attr_str(g, a->key, &v);
        if (got > 0) {
            snprintf(have, cap, "%s", v);
            eq = strcmp(v, a->s ? a->s : "") == 0;
        }
        free(v);
        break;
    }
    }
    if (got <= 0) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(have, cap, "%s", got == 0 ? "(absent)" : "(unreadable)");
    }
    return eq;
}

static void attr_text(const sslc_ckpt_attr *a, char *buf, size_t cap)
{
    switch (a->type) {
    case SSLC_CKPT_ATTR_INT: snprintf(buf, cap, "%" PRId64, a->i); break;
    case SSLC_CKPT_ATTR_FLOAT: float_text(a->f, buf, cap); break;
    case SSLC_CKPT_ATTR_STRING: snprintf(buf, cap, "%s", a->s ? a->s : ""); break;
    }
}

// Lists "key=file vs key=here" for every model attribute that differs.
static void model_mismatch(hid_t file, const sslc_ckpt *c, char *out, size_t cap)
{
    out[0] = '\0';
    if (!c->n_model)
        return;
    hid_t g = link_exists(file, "model") ? H5Gopen2(file, "model", H5P_DEFAULT) : -1;
    size_t used = 0;
    for (size_t i = 0; i < c->n_model; i++) {
        char have[128] = "(absent)", want[128];
        if (g >= 0 && attr_equal(g, &c->model[i], have, sizeof have))
            continue;
        attr_text(&c->model[i], want, sizeof want);
        if (used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s%s %s in the file, %s here",
                                     used ? ", " : "", c->model[i].key, have, want);
    }
    if (g >= 0)
        H5Gclose(g);
}

static sslc_status check_optimizer(const char *path, hid_t file, const sslc_ckpt *c)
{
    if (!link_exists(file, "optimizer"))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no optimizer state", path);
    hid_t g = H5Gopen2(file, "optimizer", H5P_DEFAULT);
    char *name = NULL;
    sslc_status st = SSLC_OK;
    if (read_attr_str(g, "name", &name) <= 0 || strcmp(name, c->optimizer) != 0)
        st = sslc_error(SSLC_ERR_FORMAT,
                        "checkpoint %s: optimizer state is for '%s', this run uses '%s'", path,
                        name ? name : "(unknown)", c->optimizer);
    free(name);
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        char sub[256], what[300];
        snprintf(sub, sizeof sub, "%s/%s", b->part, b->name);
        snprintf(what, sizeof what, "optimizer %s tensor", sub);
        if (H5Lexists(g, b->part, H5P_DEFAULT) <= 0 || H5Lexists(g, sub, H5P_DEFAULT) <= 0) {
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no optimizer buffer %s", path,
                            sub);
            break;
        }
        hid_t bg = H5Gopen2(g, sub, H5P_DEFAULT);
        const sslc_params *p = find_part(c, b->part)->params;
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind == SSLC_TENSOR_PARAM)
                st = check_dataset(path, what, bg, t->name, 0, t->ndim, t->shape, 0);
        }
        H5Gclose(bg);
    }
    H5Eclear2(H5E_DEFAULT);
    H5Gclose(g);
    return st;
}

static sslc_status check_arrays(const char *path, hid_t file, const sslc_ckpt *c)
{
    if (!link_exists(file, "state"))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no state arrays (wanted '%s')",
                          path, c->arrays[0].name);
    hid_t g = H5Gopen2(file, "state", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        st = check_dataset(path, "state array", g, a->name, a->dtype == SSLC_CKPT_I64, a->ndim,
                           a->shape, 0);
    }
    H5Gclose(g);
    return st;
}

static int read_dataset(hid_t loc, const char *name, hid_t mem_type, void *data)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t r = d >= 0 ? H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (r < 0)
        capture();
    if (d >= 0)
        H5Dclose(d);
    return r < 0 ? -1 : 0;
}

static sslc_status read_part(const char *path, hid_t file, const sslc_ckpt_part *part)
{
        hid_t g = H5Gopen2(file, part->name, H5P_DEFAULT);
    const sslc_params *p = part->params;
    sslc_status st = SSLC_OK;
    for (int64_t i = 0; i < p->count && st == SSLC_OK; i++) {
        const sslc_tensor *t = &p->tensors[i];
        float *x = sslc_params_data(p, t);
        int bad;
        if (t->flags & SSLC_TENSOR_INT64) {
            int64_t *v = sslc_malloc((size_t)t->numel * sizeof *v);
            if (!v) {
                st = SSLC_ERR_NOMEM;
                break;
            }
            bad = read_dataset(g, t->name, H5T_NATIVE_INT64, v);
            for (int64_t k = 0; k < t->numel && !bad; k++)
                x[k] = (float)v[k];
            free(v);
        } else {
            bad = read_dataset(g, t->name, H5T_NATIVE_FLOAT, x);
        }
        if (bad)
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot read %s tensor '%s': %s",
                            path, part->name, t->name, reason());
    }
    H5Gclose(g);
    return st;
}

static sslc_status read_optimizer(const char *path, hid_t file, sslc_ckpt *c)
{
        hid_t g = H5Gopen2(file, "optimizer", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    if (read_attr_i64(g, "step", &c->optimizer_step) <= 0)
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: optimizer has no step", path);
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        char sub[256];
        snprintf(sub, sizeof sub, "%s/%s", b->part, b->name);
        hid_t bg = H5Gopen2(g, sub, H5P_DEFAULT);
        const sslc_params *p = find_part(c, b->part)->params;
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind == SSLC_TENSOR_PARAM &&
                read_dataset(bg, t->name, H5T_NATIVE_FLOAT, b->data + t->offset) < 0)
                st = sslc_error(SSLC_ERR_FORMAT,
                                "checkpoint %s: cannot read optimizer %s tensor '%s': %s", path,
                                sub, t->name, reason());
        }
        H5Gclose(bg);
    }
    H5Gclose(g);
    return st;
}

static sslc_status read_arrays(const char *path, hid_t file, const sslc_ckpt *c)
{
        hid_t g = H5Gopen2(file, "state", H5P_DEFAULT);
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        hid_t mt = a->dtype == SSLC_CKPT_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
        if (read_dataset(g, a->name, mt, a->data) < 0)
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot read state array '%s': %s",
                            path, a->name, reason());
    }
    H5Gclose(g);
    return st;
}

sslc_status sslc_ckpt_load(const char *path, sslc_ckpt *c)
{
    sslc_status st = check_description(c);
    if (st != SSLC_OK)
        return sslc_error_prefix(st, "checkpoint %s", path);
    hid_t f = -1;
    st = open_checkpoint(path, 1, &f, NULL);
    if (st != SSLC_OK)
        return st;
    char *method = NULL;
    if (c->method && (read_attr_str(f, "method", &method) <= 0 || strcmp(method, c->method))) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is from a '%s' run, this run is '%s'",
                        path, method ? method : "(unknown)", c->method);
        goto done;
    }
    // Validate everything before reading anything. A differing model
    // attribute (arch, width) is reported together with the first tensor
    // that it breaks, or alone when every tensor still fits.
    char mismatch[768];
    model_mismatch(f, c, mismatch, sizeof mismatch);
    for (size_t i = 0; i < c->n_parts && st == SSLC_OK; i++)
        st = check_part(path, f, &c->parts[i]);
    if (mismatch[0]) {
        if (st != SSLC_OK) {
            char detail[1024];
            snprintf(detail, sizeof detail, "%s", sslc_error_message());
            const char *tail = strstr(detail, ": ");
            st = sslc_error(st, "checkpoint %s: is a different model (%s): %s", path, mismatch,
                            tail ? tail + 2 : detail);
        } else {
            st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: is a different model (%s)", path,
                            mismatch);
        }
        goto done;
    }
    if (st == SSLC_OK && c->optimizer)
        st = check_optimizer(path, f, c);
    if (st == SSLC_OK && c->n_arrays)
        st = check_arrays(path, f, c);
    if (st != SSLC_OK)
        goto done;

    if (read_attr_i64(f, "epoch", &c->epoch) <= 0 || read_attr_i64(f, "step", &c->step) <= 0 ||
        read_attr_i64(f, "samples_seen", &c->samples_seen) <= 0 ||
        read_attr_u64(f, "seed", &c->seed) <= 0) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: training position is missing", path);
        goto done;
    }
    for (size_t i = 0; i < c->n_parts && st == SSLC_OK; i++)
        st = read_part(path, f, &c->parts[i]);
    if (st == SSLC_OK && c->optimizer)
        st = read_optimizer(path, f, c);
    if (st == SSLC_OK && c->n_arrays)
        st = read_arrays(path, f, c);
done:
    free(method);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

// ---------------------------------------------------------------- info

typedef struct attr_list {
    sslc_ckpt_attr *items;
    size_t count, cap;
    int failed;
} attr_list;

static herr_t collect_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    attr_list *l = data;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        sslc_ckpt_attr *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->items = grown;
        l->cap = cap;
    }
    sslc_ckpt_attr a = {0};
    a.key = dup_string(name);
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = at >= 0 ? H5Aget_type(at) : -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (at >= 0 && !attr_is_scalar(at))
        cls = H5T_NO_CLASS; // arrays: not a model option sslc writes; listed as "?"
    int ok = -1;
    if (cls == H5T_INTEGER) {
        a.type = SSLC_CKPT_ATTR_INT;
        ok = H5Aread(at, H5T_NATIVE_INT64, &a.i);
    } else if (cls == H5T_FLOAT) {
        a.type = SSLC_CKPT_ATTR_FLOAT;
        ok = H5Aread(at, H5T_NATIVE_DOUBLE, &a.f);
    } else if (cls == H5T_STRING) {
        a.type = SSLC_CKPT_ATTR_STRING;
        char *s = NULL;
        ok = read_attr_str_open(at, &s) > 0 ? 0 : -1;
        a.s = s;
    } else if (at >= 0) {
        // Another type (an array written by h5py): shown, never compared.
        a.type = SSLC_CKPT_ATTR_STRING;
        a.s = dup_string("?");
        ok = a.s ? 0 : -1;
    }
    if (t >= 0)
        H5Tclose(t);
    if (at >= 0)
        H5Aclose(at);
    if (ok < 0 || !a.key) {
        free((char *)a.key);
        free((char *)a.s);
        l->failed = 1;
        return -1;
    }
    l->items[l->count++] = a;
    return 0;
}

static void free_attrs(sslc_ckpt_attr *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)a[i].key);
        free((char *)a[i].s);
    }
    free(a);
}

static int list_attrs(hid_t obj, attr_list *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_attr, l) >= 0)
        return 0;
    H5Eclear2(H5E_DEFAULT);
    free_attrs(l->items, l->count);
    memset(l, 0, sizeof *l);
    idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, l) >= 0)
        return 0;
    free_attrs(l->items, l->count);
    memset(l, 0, sizeof *l);
    return -1;
}

static char *str_or_empty(hid_t obj, const char *name)
{
    char *s = NULL;
    if (read_attr_str(obj, name, &s) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        s = dup_string("");
    }
    return s;
}

static sslc_status fill_info(hid_t f, const char *path, sslc_ckpt_info *info)
{
    info->sslc_version = str_or_empty(f, "sslc_version");
    info->kind = str_or_empty(f, "kind");
    info->method = str_or_empty(f, "method");
    info->config = str_or_empty(f, "config");
    read_attr_i64(f, "epoch", &info->epoch);
    read_attr_i64(f, "step", &info->step);
    read_attr_i64(f, "samples_seen", &info->samples_seen);
    read_attr_u64(f, "seed", &info->seed);
    if (link_exists(f, "model")) {
        hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
        attr_list l;
        int r = g >= 0 ? list_attrs(g, &l) : -1;
        if (g >= 0)
            H5Gclose(g);
        if (r < 0)
            return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: unreadable model attributes",
                              path);
        info->model = l.items;
        info->n_model = l.count;
    }
    if (link_exists(f, "optimizer")) {
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        info->optimizer = str_or_empty(g, "name");
        read_attr_i64(g, "step", &info->optimizer_step);
        H5Gclose(g);
    } else {
        info->optimizer = dup_string("");
    }
    H5Eclear2(H5E_DEFAULT);
    if (!info->sslc_version || !info->kind || !info->method || !info->config || !info->optimizer)
        return SSLC_ERR_NOMEM;
    return SSLC_OK;
}

sslc_status sslc_ckpt_read_info(const char *path, sslc_ckpt_info *info)
{
    memset(info, 0, sizeof *info);
    hid_t f = -1;
    sslc_status st = open_checkpoint(path, 1, &f, &info->format_version);
    if (st != SSLC_OK)
        return st;
    st = fill_info(f, path, info);
    H5Fclose(f);
    if (st != SSLC_OK)
        sslc_ckpt_info_free(info);
    return st;
}

void sslc_ckpt_info_free(sslc_ckpt_info *info)
{
    if (!info)
        return;
    free(info->sslc_version);
    free(info->kind);
    free(info->method);
    free(info->config);
    free(info->optimizer);
    free_attrs(info->model, info->n_model);
    memset(info, 0, sizeof *info);
}

const sslc_ckpt_attr *sslc_ckpt_info_attr(const sslc_ckpt_info *info, const char *key)
{
    for (size_t i = 0; i < info->n_model; i++)
        if (strcmp(info->model[i].key, key) == 0)
            return &info->model[i];
    return NULL;
}

// ---------------------------------------------------------------- print

static const char *dtype_name(hid_t d)
{
    hid_t t = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    H5Tclose(t);
    if (cls == H5T_FLOAT)
        return size == 4 ? "float32" : size == 8 ? "float64" : "float";
    if (cls == H5T_INTEGER)
        return size == 8 ? "int64" : size == 4 ? "int32" : "int";
    return "other";
}

static void print_count(FILE *out, int64_t n)
{
    // Thousands separators: "11,168,832 values" reads at a glance.
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%" PRId64, n);
    for (int i = 0; i < len; i++) {
        fputc(digits[i], out);
        int left = len - 1 - i;
        if (left > 0 && left % 3 == 0 && digits[i] != '-')
            fputc(',', out);
    }
}

// Prints one group of datasets: a summary line, then (when tensors) each
// tensor with its type and shape. Returns the number of elements.
static int64_t print_tensor_group(FILE *out, hid_t g, const char *label, int indent, bool tensors)
{
    name_list names;
    if (list_names(g, &names) != 0) {
        fprintf(out, "%*s%-20s (unreadable)\n", indent, "", label);
        return 0;
    }
    int64_t total = 0, count = 0;
    // Two passes: the summary first, then the tensors.
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            fprintf(out, "%*s%-20s %" PRId64 " tensors, ", indent, "", label, count);
            print_count(out, total);
            fprintf(out, " values\n");
            if (!tensors)
                break;
        }
        for (size_t i = 0; i < names.count; i++) {
            // Sub-groups fail to open as datasets and are skipped.
            hid_t d = H5Dopen2(g, names.names[i], H5P_DEFAULT);
            dataset_shape s;
            if (d < 0 || get_shape(d, &s) < 0 || s.ndim > SSLC_TENSOR_MAX_DIMS) {
                if (d >= 0)
                    H5Dclose(d);
                continue;
            }
            // Saturating: a file can declare dimensions whose product
            // overflows (a chunked 2^40 x 2^40 dataset, never written).
            int64_t n = 1;
            for (int k = 0; k < s.ndim; k++)
                if (s.shape[k] < 0 || __builtin_mul_overflow(n, s.shape[k], &n))
                    n = INT64_MAX;
            if (pass == 0) {
                if (__builtin_add_overflow(total, n, &total))
                    total = INT64_MAX;
                count++;
            } else {
                char shape[96];
                format_shape(shape, sizeof shape, s.ndim, s.shape);
                fprintf(out, "%*s  %-40s %-8s %s\n", indent, "", names.names[i], dtype_name(d),
                        shape);
            }
            H5Dclose(d);
        }
    }
    H5Eclear2(H5E_DEFAULT);
    free_names(&names);
    return total;
}

static void print_attr_value(FILE *out, const sslc_ckpt_attr *a)
{
    switch (a->type) {
    case SSLC_CKPT_ATTR_INT: fprintf(out, "%" PRId64, a->i); break;
    case SSLC_CKPT_ATTR_FLOAT: fprintf(out, "%g", a->f); break;
    case SSLC_CKPT_ATTR_STRING: fprintf(out, "%s", a->s ? a->s : ""); break;
    }
}

sslc_status sslc_ckpt_print(FILE *out, const char *path, bool tensors)
{
    hid_t f = -1;
    int64_t version = 0;
    sslc_status st = open_checkpoint(path, 0, &f, &version);
    if (st != SSLC_OK)
        return st;
    sslc_ckpt_info info = {0};
    info.format_version = version;
    st = fill_info(f, path, &info);
    if (st != SSLC_OK)
        goto done;
    struct stat sb = {0};
    if (stat(path, &sb) != 0)
        sb.st_size = 0;
    fprintf(out, "checkpoint %s (", path);
    print_count(out, (int64_t)sb.st_size);
    fprintf(out, " bytes)\n");
    fprintf(out, "  %-14s %" PRId64 "%s, written by sslc %s\n", "format", version,
            version == SSLC_CKPT_FORMAT_VERSION ? "" : " (this sslc reads only version 1)",
            info.sslc_version);
    fprintf(out, "  %-14s %s\n", "kind", info.kind);
    fprintf(out, "  %-14s %s\n", "method", info.method);
    fprintf(out, "  %-14s epoch %" PRId64 ", step %" PRId64 ", %" PRId64 " samples seen\n",
            "position", info.epoch, info.step, info.samples_seen);
    fprintf(out, "  %-14s %" PRIu64 "\n", "seed", info.seed);
    const sslc_ckpt_attr *arch = sslc_ckpt_info_attr(&info, "arch");
    fprintf(out, "  %-14s %s\n", "arch", arch && arch->type == SSLC_CKPT_ATTR_STRING ? arch->s
                                                                                      : "(none)");
    fprintf(out, "  %-14s", "model");
    for (size_t i = 0; i < info.n_model; i++) {
        fprintf(out, " %s=", info.model[i].key);
        print_attr_value(out, &info.model[i]);
    }
    fprintf(out, "\n");

    name_list names;
    if (list_names(f, &names) != 0) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: cannot list its groups", path);
        goto done;
    }
    fprintf(out, "  parts\n");
    int64_t grand = 0;
    for (size_t i = 0; i < names.count; i++) {
        const char *n = names.names[i];
        if (!strcmp(n, "model") || !strcmp(n, "optimizer") || !strcmp(n, "state"))
            continue;
        hid_t g = H5Gopen2(f, n, H5P_DEFAULT);
        if (g < 0)
            continue;
        if (__builtin_add_overflow(grand, print_tensor_group(out, g, n, 4, tensors), &grand))
            grand = INT64_MAX;
        H5Gclose(g);
    }
    fprintf(out, "    %-20s ", "total");
    print_count(out, grand);
    fprintf(out, " values\n");
    if (info.optimizer[0]) {
        fprintf(out, "  optimizer      %s, step %" PRId64 "\n", info.optimizer,
                info.optimizer_step);
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        name_list parts;
        if (g >= 0 && list_names(g, &parts) == 0) {
            for (size_t i = 0; i < parts.count; i++) {
                hid_t pg = H5Gopen2(g, parts.names[i], H5P_DEFAULT);
                name_list bufs;
                if (pg >= 0 && list_names(pg, &bufs) == 0) {
                    for (size_t k = 0; k < bufs.count; k++) {
                        char label[256];
                        snprintf(label, sizeof label, "%s/%s", parts.names[i], bufs.names[k]);
                        hid_t bg = H5Gopen2(pg, bufs.names[k], H5P_DEFAULT);
                        if (bg >= 0) {
                            print_tensor_group(out, bg, label, 4, false);
                            H5Gclose(bg);
                        }
                    }
                    free_names(&bufs);
                }
                if (pg >= 0)
                    H5Gclose(pg);
            }
            free_names(&parts);
        }
        if (g >= 0)
            H5Gclose(g);
    } else {
        fprintf(out, "  optimizer      (none)\n");
    }
    if (link_exists(f, "state")) {
        hid_t g = H5Gopen2(f, "state", H5P_DEFAULT);
        fprintf(out, "  state\n");
        print_tensor_group(out, g, "arrays", 4, true);
        H5Gclose(g);
    }
    free_names(&names);
    fprintf(out, "  config\n");
    const char *line = info.config;
    while (*line) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(out, "    %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
    H5Eclear2(H5E_DEFAULT);
done:
    sslc_ckpt_info_free(&info);
    H5Fclose(f);
    return st;
}

// ---------------------------------------------------------------- export

// Copies one attribute by reading and writing it in its own type (strings,
// arrays and compounds included); the H5Aiterate2 callback of copy_attrs.
static herr_t copy_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    hid_t to = *(const hid_t *)data;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ftype = a >= 0 ? H5Aget_type(a) : -1;
    hid_t mtype = ftype >= 0 ? H5Tget_native_type(ftype, H5T_DIR_ASCEND) : -1;
    hid_t space = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    size_t size = mtype >= 0 ? H5Tget_size(mtype) : 0;
    void *buf = n >= 0 && size ? calloc((size_t)n + 1, size) : NULL;
    int ok = buf && H5Aread(a, mtype, buf) >= 0;
    if (ok) {
        hid_t b = H5Acreate2(to, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
        ok = b >= 0 && H5Awrite(b, mtype, buf) >= 0;
        if (b >= 0)
            H5Aclose(b);
        vlen_reclaim(mtype, space, H5P_DEFAULT, buf); // strings read as variable length
    }
    if (!ok)
        capture();
    free(buf);
    if (space >= 0)
        H5Sclose(space);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : -1;
}

// Every attribute of from onto to, in creation order (name order for files
// that did not track it), as sslc_ckpt_save wrote them.
static int copy_attrs(hid_t from, hid_t to)
{
    hsize_t idx = 0;
    if (H5Aiterate2(from, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, copy_attr, &to) >= 0)
        return 0;
    if (idx > 0) // failed midway, not for want of creation order
        return -1;
    H5Eclear2(H5E_DEFAULT);
    return H5Aiterate2(from, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr, &to) >= 0 ? 0 : -1;
}

sslc_status sslc_ckpt_export(const char *dst, const char *src, const char *part)
{
    sslc_ckpt_info info;
    sslc_status st = sslc_ckpt_read_info(src, &info);
    if (st != SSLC_OK)
        return st;
    hid_t in = -1, out = -1;
    char *tmp = NULL;
    st = open_checkpoint(src, 1, &in, NULL);
    if (st != SSLC_OK)
        goto done;
    if (!link_exists(in, part)) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no part '%s' to export", src, part);
        goto done;
    }
    tmp = tmp_path_for(dst);
    if (!tmp) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    struct stat sb;
    out = create_file(tmp, stat(src, &sb) == 0 ? (size_t)sb.st_size / 2 + (1u << 20) : 1u << 24);
    if (out < 0) {
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot create '%s' in memory: %s", tmp, reason());
        goto done;
    }
    header_values h = {"export", info.method, info.config, info.epoch, info.step,
                       info.samples_seen, info.seed};
    st = write_header(out, &h);
    // No attribute goes through H5Ocopy: HDF5 1.10.8 calls through a NULL
    // pointer when it copies variable-length strings from dense attribute
    // storage (more than 8 attributes on an object), so a model with 9
    // attributes, or a hard link to the root group, crashed the export.
    // /model holds only attributes: copied one by one. The part is copied
    // without attributes (sslc writes none on tensors); H5Ocopy keeps the
    // chunk layout and checksums of its datasets.
    if (st == SSLC_OK && link_exists(in, "model")) {
        hid_t from = H5Gopen2(in, "model", H5P_DEFAULT);
        hid_t to = from >= 0 ? make_group(out, "model") : -1;
        if (from < 0 || to < 0 || copy_attrs(from, to) < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot copy the model attributes: %s", reason());
        if (to >= 0)
            H5Gclose(to);
        if (from >= 0)
            H5Gclose(from);
    }
    hid_t copy = H5Pcreate(H5P_OBJECT_COPY);
    H5Pset_copy_object(copy, H5O_COPY_WITHOUT_ATTR_FLAG);
    if (st == SSLC_OK && H5Ocopy(in, part, out, part, copy, H5P_DEFAULT) < 0)
        st = sslc_error(SSLC_ERR_IO, "cannot copy part '%s': %s", part, reason());
    H5Pclose(copy);
    if (st == SSLC_OK)
        st = write_image(out, tmp);
    else
        H5Fclose(out);
    out = -1;
    if (st == SSLC_OK)
        st = commit_tmp(tmp, dst);
done:
    if (st != SSLC_OK && tmp)
        unlink(tmp);
    free(tmp);
    if (in >= 0)
        H5Fclose(in);
    if (out >= 0)
        H5Fclose(out);
    sslc_ckpt_info_free(&info);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

// ---------------------------------------------------------------- run folders

// Parses "ckpt-<step>.h5"; -1 otherwise.
static int64_t ckpt_step(const char *name)
{
    if (strncmp(name, "ckpt-", 5) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long s = strtoll(name + 5, &end, 10);
    if (errno || end == name + 5 || strcmp(end, ".h5") != 0 || s < 0)
        return -1;
    return (int64_t)s;
}

// "<anything>.tmp-<pid>" files of processes that no longer exist are what a
// kill -9 mid-save leaves behind; they never replaced a good checkpoint.
static void remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp-");
        if (!t)
            continue;
        char *end = NULL;
        long pid = strtol(t + 5, &end, 10);
        if (end == t + 5 || *end || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char *p = join_path(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
    }
    closedir(d);
}

static sslc_status copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sslc_status st = SSLC_OK;
    if (in < 0 || out < 0) {
        st = sslc_error(SSLC_ERR_IO, "cannot copy '%s' to '%s': %s", from, to, strerror(errno));
        goto done;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = sslc_error(SSLC_ERR_IO, "cannot read '%s': %s", from, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                st = sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", to, strerror(errno));
                goto done;
            }
            off += w;
        }
    }
    if (st == SSLC_OK && fsync(out) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot sync '%s': %s", to, strerror(errno));
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return st;
}

// Points dir/name at target (a file in dir) by swapping in a hard link.
static sslc_status link_atomically(const char *dir, const char *target, const char *name)
{
    char *dst = join_path(dir, name);
    char *tmp = dst ? tmp_path_for(dst) : NULL;
    sslc_status st = SSLC_OK;
    if (!tmp) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    unlink(tmp);
    if (link(target, tmp) != 0)
        st = copy_file(target, tmp);
    if (st == SSLC_OK && rename(tmp, dst) != 0)
        st = sslc_error(SSLC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
    if (st != SSLC_OK)
        unlink(tmp);
done:
    free(tmp);
    free(dst);
    return st;
}

static int compare_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

// Removes dir/ckpt-<s>.h5 beyond the newest keep, never the one just saved.
static void rotate(const char *dir, int64_t keep, int64_t current)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    int64_t *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = ckpt_step(e->d_name);
        if (s < 0 || s == current)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(steps, cap * sizeof *grown);
            if (!grown)
                break;
            steps = grown;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (steps)
        qsort(steps, n, sizeof *steps, compare_desc);
    for (size_t i = (size_t)(keep - 1); i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", steps[i]);
        char *p = join_path(dir, name);
        if (p && unlink(p) != 0 && errno != ENOENT)
            sslc_warn("cannot remove old checkpoint %s: %s", p, strerror(errno));
        free(p);
    }
    free(steps);
}

sslc_status sslc_ckpt_save_run(const char *dir, const sslc_ckpt *c, int64_t keep, bool is_best)
{
    sslc_status st = sslc_make_dir(dir, "run folder");
    if (st)
        return st;
    remove_stale_tmp(dir);
    char name[64];
    snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", c->step);
    char *path = join_path(dir, name);
    if (!path)
        return SSLC_ERR_NOMEM;
    st = sslc_ckpt_save(path, c);
    if (st == SSLC_OK)
        st = link_atomically(dir, path, "last.h5");
    if (st == SSLC_OK && is_best)
        st = link_atomically(dir, path, "best.h5");
    if (st == SSLC_OK) {
        if (fsync_path(dir, 1) != SSLC_OK)
            sslc_warn("%s", sslc_error_message());
        if (keep > 0)
            rotate(dir, keep, c->step);
    }
    free(path);
    return st;
}

sslc_status sslc_ckpt_resolve(const char *run_or_ckpt, char *path, size_t cap)
{
    struct stat sb;
    if (stat(run_or_ckpt, &sb) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot resume from '%s': %s", run_or_ckpt,
                          strerror(errno));
    const char *pick = run_or_ckpt;
    char *owned = NULL;
    if (S_ISDIR(sb.st_mode)) {
        owned = join_path(run_or_ckpt, "last.h5");
        if (!owned)
            return SSLC_ERR_NOMEM;
        if (stat(owned, &sb) != 0) {
            free(owned);
            owned = NULL;
            int64_t best = -1;
            DIR *d = opendir(run_or_ckpt);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                int64_t s = ckpt_step(e->d_name);
                if (s > best)
                    best = s;
            }
            if (d)
                closedir(d);
            if (best < 0)
                return sslc_error(SSLC_ERR_IO,
                                  "run folder %s has no checkpoint (no last.h5, no ckpt-*.h5)",
                                  run_or_ckpt);
            char name[64];
            snprintf(name, sizeof name, "ckpt-%" PRId64 ".h5", best);
            owned = join_path(run_or_ckpt, name);
            if (!owned)
                return SSLC_ERR_NOMEM;
        }
        pick = owned;
    }
    sslc_status st = SSLC_OK;
    if (strlen(pick) + 1 > cap)
        st = sslc_error(SSLC_ERR_INVALID, "checkpoint path '%s' is too long", pick);
    else
        memcpy(path, pick, strlen(pick) + 1);
    free(owned);
    return st;
}
