// Writing checkpoints: the file is built in memory by HDF5's core driver,
// its image taken (with the superblock checksum HDF5 1.10.8 leaves stale
// recomputed) and written out atomically (atomic_file.h).
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/io/atomic_file.h"
#include "src/io/checkpoint.h"
#include "src/io/checkpoint_internal.h"
#include "src/io/h5util.h"

// ---------------------------------------------------------------- groups and datasets

hid_t sslc_ckpt_make_group(hid_t loc, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_obj_track_times(gcpl, false);
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0)
        sslc_h5_capture();
    H5Pclose(gcpl);
    return g;
}

static hid_t open_or_make_group(hid_t loc, const char *name)
{
    if (sslc_h5_exists(loc, name))
        return H5Gopen2(loc, name, H5P_DEFAULT);
    return sslc_ckpt_make_group(loc, name);
}

// One dataset. Arrays with dimensions are one chunk each with a Fletcher32
// checksum, so a flipped byte in the data is detected on read (HDF5 checks
// its own metadata with checksums, see sslc_ckpt_create_image). Scalars are compact:
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
        sslc_h5_capture();
    if (d >= 0 && H5Dclose(d) < 0) {
        sslc_h5_capture();
        w = -1;
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    return w < 0 ? -1 : 0;
}

static sslc_status write_part(hid_t file, const sslc_ckpt_part *part, int64_t *written)
{
    hid_t g = sslc_ckpt_make_group(file, part->name);
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create group '%s': %s", part->name,
                          sslc_h5_reason());
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
            if (sslc_ckpt_is_int_scalar(t))
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
                            sslc_h5_reason());
        else if (++*written == 1)
            st = sslc_atomic_fault(SSLC_CKPT_FAULT_WRITE);
    }
    H5Gclose(g);
    return st;
}

const sslc_ckpt_part *sslc_ckpt_find_part(const sslc_ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->n_parts; i++)
        if (strcmp(c->parts[i].name, name) == 0)
            return &c->parts[i];
    return NULL;
}

static sslc_status write_optimizer(hid_t file, const sslc_ckpt *c)
{
    hid_t g = sslc_ckpt_make_group(file, "optimizer");
    if (g < 0 || sslc_h5_write_str(g, "name", c->optimizer) < 0 ||
        sslc_h5_write_i64(g, "step", c->optimizer_step) < 0) {
        if (g >= 0)
            H5Gclose(g);
        return sslc_error(SSLC_ERR_IO, "cannot write the optimizer group: %s", sslc_h5_reason());
    }
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_optim && st == SSLC_OK; i++) {
        const sslc_ckpt_optim_buffer *b = &c->optim[i];
        const sslc_params *p = sslc_ckpt_find_part(c, b->part)->params;
        hid_t pg = open_or_make_group(g, b->part);
        hid_t bg = pg >= 0 ? sslc_ckpt_make_group(pg, b->name) : -1;
        if (bg < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot create optimizer group %s/%s: %s", b->part,
                            b->name, sslc_h5_reason());
        for (int64_t k = 0; k < p->count && st == SSLC_OK; k++) {
            const sslc_tensor *t = &p->tensors[k];
            if (t->kind != SSLC_TENSOR_PARAM)
                continue;
            if (write_dataset(bg, t->name, t->ndim, t->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                              b->data + t->offset) < 0)
                st = sslc_error(SSLC_ERR_IO, "cannot write optimizer %s/%s tensor '%s': %s",
                                b->part, b->name, t->name, sslc_h5_reason());
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
    hid_t g = sslc_ckpt_make_group(file, "state");
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create the state group: %s", sslc_h5_reason());
    sslc_status st = SSLC_OK;
    for (size_t i = 0; i < c->n_arrays && st == SSLC_OK; i++) {
        const sslc_ckpt_array *a = &c->arrays[i];
        int f32 = a->dtype == SSLC_CKPT_F32;
        if (write_dataset(g, a->name, a->ndim, a->shape, f32 ? H5T_IEEE_F32LE : H5T_STD_I64LE,
                          f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, a->data) < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot write state array '%s': %s", a->name,
                            sslc_h5_reason());
    }
    H5Gclose(g);
    return st;
}

static sslc_status write_model_attrs(hid_t file, const sslc_ckpt_attr *attrs, size_t n)
{
    hid_t g = sslc_ckpt_make_group(file, "model");
    if (g < 0)
        return sslc_error(SSLC_ERR_IO, "cannot create the model group: %s", sslc_h5_reason());
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        const sslc_ckpt_attr *a = &attrs[i];
        switch (a->type) {
        case SSLC_CKPT_ATTR_INT: bad = sslc_h5_write_i64(g, a->key, a->i) < 0; break;
        case SSLC_CKPT_ATTR_FLOAT: bad = sslc_h5_write_f64(g, a->key, a->f) < 0; break;
        case SSLC_CKPT_ATTR_STRING: bad = sslc_h5_write_str(g, a->key, a->s) < 0; break;
        }
        if (bad) {
            H5Gclose(g);
            return sslc_error(SSLC_ERR_IO, "cannot write model attribute '%s': %s", a->key,
                              sslc_h5_reason());
        }
    }
    H5Gclose(g);
    return SSLC_OK;
}

sslc_status sslc_ckpt_write_header(hid_t file, const sslc_ckpt_header *h)
{
    if (sslc_h5_write_i64(file, "format_version", SSLC_CKPT_FORMAT_VERSION) < 0 ||
        sslc_h5_write_str(file, "sslc_version", SSLC_VERSION) < 0 ||
        sslc_h5_write_str(file, "kind", h->kind) < 0 ||
        sslc_h5_write_str(file, "method", h->method) < 0 ||
        sslc_h5_write_str(file, "config", h->config) < 0 ||
        sslc_h5_write_i64(file, "epoch", h->epoch) < 0 ||
        sslc_h5_write_i64(file, "step", h->step) < 0 ||
        sslc_h5_write_i64(file, "samples_seen", h->samples_seen) < 0 ||
        sslc_h5_write_u64(file, "seed", h->seed) < 0)
        return sslc_error(SSLC_ERR_IO, "cannot write the header attributes: %s",
                          sslc_h5_reason());
    return SSLC_OK;
}

// The 1.10 file format: checksummed superblock and object headers, and a
// single-chunk index whose address sits in the checksummed object header, so
// every byte that locates or holds a tensor is covered by a checksum.
// Readable by HDF5 >= 1.10 (Debian 10 and later, h5py built on it).
//
// The file is built in memory (HDF5's core driver, no backing store) and
// written out by sslc_ckpt_write_image. HDF5 cannot abandon a file whose close failed:
// with a full disk, H5Fclose fails, the file stays open inside the library,
// and HDF5 crashes at exit (seen with 1.10.8). Owning the write() calls makes
// a disk error a plain error return. The cost is the file's size in memory
// twice while saving.
hid_t sslc_ckpt_create_image(const char *name, size_t size_hint)
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
        sslc_h5_capture();
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return f;
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
sslc_status sslc_ckpt_write_image(hid_t f, const char *path)
{
    // The image is what the driver holds: flush HDF5's metadata cache into it first.
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    unsigned char *buf = n > 0 ? sslc_malloc((size_t)n) : NULL;
    sslc_status st = SSLC_OK;
    if (n <= 0)
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot size the file image: %s", sslc_h5_reason());
    else if (!buf)
        st = SSLC_ERR_NOMEM;
    else if (H5Fget_file_image(f, buf, (size_t)n) != n)
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot get the file image: %s", sslc_h5_reason());
    else
        st = fix_superblock(buf, (size_t)n);
    H5Fclose(f);
    if (st == SSLC_OK)
        st = sslc_atomic_write(path, buf, (size_t)n);
    free(buf);
    return st;
}

sslc_status sslc_ckpt_check_description(const sslc_ckpt *c)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        const sslc_ckpt_part *p = &c->parts[i];
        if (!p->name || !p->params || (p->params->count && !p->params->values))
            return sslc_error(SSLC_ERR_INVALID, "part %zu has no name or no allocated table", i);
        if (strchr(p->name, '/') || strcmp(p->name, "model") == 0 ||
            strcmp(p->name, "optimizer") == 0 || strcmp(p->name, "state") == 0)
            return sslc_error(SSLC_ERR_INVALID, "'%s' cannot name a part", p->name);
        if (sslc_ckpt_find_part(c, p->name) != p)
            return sslc_error(SSLC_ERR_INVALID, "part '%s' listed twice", p->name);
    }
    for (size_t i = 0; i < c->n_optim; i++) {
        if (!c->optimizer)
            return sslc_error(SSLC_ERR_INVALID, "optimizer buffers without an optimizer name");
        if (!sslc_ckpt_find_part(c, c->optim[i].part))
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
    sslc_h5_quiet();
    sslc_status st = sslc_ckpt_check_description(c);
    if (st != SSLC_OK)
        return sslc_error_prefix(st, "checkpoint %s", path);
    char *tmp = sslc_atomic_tmp_path(path);
    if (!tmp)
        return SSLC_ERR_NOMEM;
    // One allocation for the whole file, most of the time.
    int64_t floats = 0;
    for (size_t i = 0; i < c->n_parts; i++)
        floats += c->parts[i].params->n_values + c->parts[i].params->n_buffers;
    for (size_t i = 0; i < c->n_optim; i++)
        floats += sslc_ckpt_find_part(c, c->optim[i].part)->params->n_values;
    for (size_t i = 0; i < c->n_arrays; i++) {
        int64_t n = 1;
        for (int k = 0; k < c->arrays[i].ndim; k++)
            n *= c->arrays[i].shape[k];
        floats += 2 * n;
    }
    hid_t f = sslc_ckpt_create_image(tmp, (size_t)floats * sizeof(float) + (1u << 20));
    if (f < 0) {
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot create '%s' in memory: %s", tmp,
                        sslc_h5_reason());
        goto fail;
    }
    sslc_ckpt_header h = {"training", c->method, c->config, c->epoch, c->step,
                          c->samples_seen, c->seed};
    st = sslc_ckpt_write_header(f, &h);
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
        st = sslc_ckpt_write_image(f, tmp);
    else
        H5Fclose(f); // in memory: nothing to fail
    if (st == SSLC_OK)
        st = sslc_atomic_commit(tmp, path);
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
