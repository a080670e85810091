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
    // H5Ocopy keeps the chunk layout and checksums of the source datasets.
    if (st == SSLC_OK && sslc_h5_exists(in, "model") &&
        H5Ocopy(in, "model", out, "model", H5P_DEFAULT, H5P_DEFAULT) < 0)
        st = sslc_error(SSLC_ERR_IO, "cannot copy the model attributes: %s", sslc_h5_reason());
    if (st == SSLC_OK && H5Ocopy(in, part, out, part, H5P_DEFAULT, H5P_DEFAULT) < 0)
        st = sslc_error(SSLC_ERR_IO, "cannot copy part '%s': %s", part, sslc_h5_reason());
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
