// sslc export: a checkpoint with only the header, /model and one part, for
// fine-tuning elsewhere; written in memory and committed atomically like a save.
#include <hdf5.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/io/atomic_file.h"
#include "src/io/checkpoint.h"
#include "src/io/checkpoint_internal.h"
#include "src/io/h5util.h"

#if H5_VERSION_GE(1, 12, 0)
#define vlen_reclaim H5Treclaim
#else
#define vlen_reclaim H5Dvlen_reclaim
#endif

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
        sslc_h5_capture();
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
    st = sslc_ckpt_open_file(src, true, &in, NULL);
    if (st != SSLC_OK)
        goto done;
    if (!sslc_h5_exists(in, part)) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: has no part '%s' to export", src, part);
        goto done;
    }
    tmp = sslc_atomic_tmp_path(dst);
    if (!tmp) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    struct stat sb;
    out = sslc_ckpt_create_image(tmp, stat(src, &sb) == 0 ? (size_t)sb.st_size / 2 + (1u << 20)
                                                          : 1u << 24);
    if (out < 0) {
        st = sslc_error(SSLC_ERR_INTERNAL, "cannot create '%s' in memory: %s", tmp,
                        sslc_h5_reason());
        goto done;
    }
    sslc_ckpt_header h = {"export", info.method, info.config, info.epoch, info.step,
                          info.samples_seen, info.seed};
    st = sslc_ckpt_write_header(out, &h);
    // No attribute goes through H5Ocopy: HDF5 1.10.8 calls through a NULL
    // pointer when it copies variable-length strings from dense attribute
    // storage (more than 8 attributes on an object), so a model with 9
    // attributes, or a hard link to the root group, crashed the export.
    // /model holds only attributes: copied one by one. The part is copied
    // without attributes (sslc writes none on tensors); H5Ocopy keeps the
    // chunk layout and checksums of its datasets.
    if (st == SSLC_OK && sslc_h5_exists(in, "model")) {
        hid_t from = H5Gopen2(in, "model", H5P_DEFAULT);
        hid_t to = from >= 0 ? sslc_ckpt_make_group(out, "model") : -1;
        if (from < 0 || to < 0 || copy_attrs(from, to) < 0)
            st = sslc_error(SSLC_ERR_IO, "cannot copy the model attributes: %s",
                            sslc_h5_reason());
        if (to >= 0)
            H5Gclose(to);
        if (from >= 0)
            H5Gclose(from);
    }
    hid_t copy = H5Pcreate(H5P_OBJECT_COPY);
    H5Pset_copy_object(copy, H5O_COPY_WITHOUT_ATTR_FLAG);
    if (st == SSLC_OK && H5Ocopy(in, part, out, part, copy, H5P_DEFAULT) < 0)
        st = sslc_error(SSLC_ERR_IO, "cannot copy part '%s': %s", part, sslc_h5_reason());
    H5Pclose(copy);
    if (st == SSLC_OK)
        st = sslc_ckpt_write_image(out, tmp);
    else
        H5Fclose(out);
    out = -1;
    if (st == SSLC_OK)
        st = sslc_atomic_commit(tmp, dst);
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
