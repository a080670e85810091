// Fuzz target: the checkpoint reader (src/io/checkpoint.h). HDF5 reads
// from a path, so the input is written to a scratch file, which then goes
// through everything that reads a checkpoint: sslc_ckpt_read_info (resume,
// `sslc info`), sslc_ckpt_print with tensors, sslc_ckpt_load into the seeds'
// model (tests/fuzz/ckpt_model.h), and sslc_ckpt_export of its encoder,
// whose output is read back.
//
// Input: the file itself (seeds are sslc checkpoints; any HDF5 file can be
// added to the corpus as it is).
// Promises checked: a refusal is SSLC_ERR_FORMAT or SSLC_ERR_IO and names
// the file; what read_info hands back is complete; a file that loads also
// reads its header and prints; an export that succeeds reads back as an
// export of the same step; no HDF5 object stays open after any call.
#include <hdf5.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "src/core/log.h"
#include "src/io/checkpoint.h"
#include "tests/fuzz/ckpt_model.h"
#include "tests/fuzz/fuzz.h"

static FILE *devnull;
static fuzz_ckpt_model model;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    // Debian's HDF5 prints its error stack on every failure otherwise;
    // sslc silences it in the calls it makes, this covers the first ones.
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    sslc_log_set_level(SSLC_LOG_QUIET);
    devnull = fopen("/dev/null", "w");
    if (!devnull || fuzz_ckpt_model_make(&model, 3) != SSLC_OK) {
        fprintf(stderr, "fuzz_ckpt: cannot set up\n");
        abort();
    }
    return 0;
}

static void check_refusal(const char *call, sslc_status st, const char *path)
{
    FUZZ_CHECK(st == SSLC_ERR_FORMAT || st == SSLC_ERR_IO, "%s: status %d: %s", call, (int)st,
               sslc_error_message());
    FUZZ_CHECK(strstr(sslc_error_message(), path) != NULL, "%s: the message does not name %s: %s",
               call, path, sslc_error_message());
}

static void check_closed(const char *after)
{
    ssize_t open = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    FUZZ_CHECK(open == 0, "%zd HDF5 objects left open after %s", open, after);
}

// Little-endian unsigned of n bytes.
static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

// Inputs that reach known crashes inside libhdf5 1.10.8 (Debian 12) which
// sslc cannot prevent are skipped, not reported (docs/fuzzing.md):
//  - Files without metadata checksums (superblock version 0 or 1, what
//    HDF5 and h5py write by default; sslc writes version 3). HDF5 parses
//    their unchecked metadata with out-of-bounds reads and writes (found
//    here: SEGV in H5T_close_real and in a memcpy after one changed byte of
//    such a file, with heap state carried into later inputs). sslc reads
//    these files; refusing them is a change of what sslc accepts, left to
//    the checkpoint's owners.
//  - Global heap collections whose sizes HDF5 would mis-parse. The global
//    heap (variable-length strings: sslc_version, kind, method, config,
//    string model attributes) has no checksum in any version of the file
//    format, and HDF5 1.10.8 trusts its sizes: an object size past the
//    collection's end makes H5HG_read memcpy out of bounds, a zero size
//    makes the collection parser loop forever (found here: one flipped
//    byte in a checkpoint's GCOL block). sslc cannot check those bytes
//    before HDF5 reads them: the public API gives no access to heap
//    addresses. Checked as the format specification (III.E) lays a
//    collection out: "GCOL", version, 3 reserved bytes, collection size,
//    then objects of (index u16, references u16, 4 reserved, size, data
//    padded to 8 bytes), indexes 1, 2, ... in order, the last index 0 (free
//    space, its size the whole rest).
static bool hdf5_input_excluded(const uint8_t *d, size_t n)
{
    // The superblock, where HDF5 looks for it (offset 0, 512, 1024, ...):
    // its version (byte 8) and, from version 2, size of lengths (byte 10).
    const uint8_t *sb = NULL;
    for (size_t at = 0; !sb && at + 16 <= n; at = at ? 2 * at : 512)
        if (memcmp(d + at, "\x89HDF\r\n\x1a\n", 8) == 0)
            sb = d + at;
    if (!sb)
        return false; // HDF5 refuses it before parsing anything
    if (sb[8] < 2)
        return true;
    int len = sb[10];
    if (len != 2 && len != 4 && len != 8)
        return true;
    // The collection header and each object header: 8 bytes, then a length.
    const size_t hdr = 8 + (size_t)len, obj_hdr = hdr;
    for (const uint8_t *g = memmem(d, n, "GCOL", 4); g;
         g = memmem(g + 1, n - (size_t)(g + 1 - d), "GCOL", 4)) {
        size_t left = n - (size_t)(g - d);
        if (left < hdr)
            return true;
        uint64_t size = le(g + 8, len);
        if (size < hdr || size > left)
            return true;
        uint64_t expect = 1;
        for (uint64_t p = hdr; p < size;) {
            if (size - p < obj_hdr)
                break; // a tail too small for an object header: free space
            unsigned idx = (unsigned)le(g + p, 2);
            uint64_t bytes = le(g + p + 8, len);
            if (bytes > size)
                return true;
            uint64_t need = idx ? obj_hdr + ((bytes + 7) & ~(uint64_t)7) : bytes;
            if (need == 0 || need > size - p || (idx && idx != expect++))
                return true;
            p += need;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (hdf5_input_excluded(data, size))
        return 0;
    const char *path = fuzz_scratch_path(0, "ckpt.h5");
    const char *exported = fuzz_scratch_path(1, "export.h5");
    fuzz_write_file(path, data, size);

    sslc_ckpt_info info;
    sslc_status info_st = sslc_ckpt_read_info(path, &info);
    fuzz_trace("read_info", info_st, "%zu bytes", size);
    if (info_st == SSLC_OK) {
        FUZZ_CHECK(info.format_version == SSLC_CKPT_FORMAT_VERSION, "read version %lld",
                   (long long)info.format_version);
        FUZZ_CHECK(info.sslc_version && info.kind && info.method && info.config && info.optimizer,
                   "a header string is NULL");
        for (size_t i = 0; i < info.n_model; i++) {
            const sslc_ckpt_attr *a = &info.model[i];
            FUZZ_CHECK(a->key && (a->type != SSLC_CKPT_ATTR_STRING || a->s),
                       "model attribute %zu is incomplete", i);
            FUZZ_CHECK(sslc_ckpt_info_attr(&info, a->key) != NULL, "attribute %s not found",
                       a->key);
        }
        sslc_ckpt_info_free(&info);
    } else {
        check_refusal("read_info", info_st, path);
    }
    check_closed("sslc_ckpt_read_info");

    sslc_status st = sslc_ckpt_print(devnull, path, true);
    fuzz_trace("print", st, "%s", path);
    if (st != SSLC_OK)
        check_refusal("print", st, path);
    check_closed("sslc_ckpt_print");

    st = sslc_ckpt_load(path, &model.desc);
    fuzz_trace("load", st, "%s", path);
    if (st == SSLC_OK) {
        FUZZ_CHECK(info_st == SSLC_OK, "loads, but read_info refused it");
    } else {
        check_refusal("load", st, path);
    }
    check_closed("sslc_ckpt_load");

    if (info_st == SSLC_OK) {
        st = sslc_ckpt_export(exported, path, "encoder");
        fuzz_trace("export", st, "%s", exported);
        if (st == SSLC_OK) {
            sslc_ckpt_info back, orig;
            FUZZ_CHECK(sslc_ckpt_read_info(exported, &back) == SSLC_OK,
                       "the export does not read back: %s", sslc_error_message());
            FUZZ_CHECK(sslc_ckpt_read_info(path, &orig) == SSLC_OK, "read_info changed its mind");
            FUZZ_CHECK(strcmp(back.kind, "export") == 0 && back.step == orig.step,
                       "exported kind '%s' step %lld, from step %lld", back.kind,
                       (long long)back.step, (long long)orig.step);
            sslc_ckpt_info_free(&back);
            sslc_ckpt_info_free(&orig);
        } else {
            // Refused or failed to write; either way nothing is left behind.
            FUZZ_CHECK(access(exported, F_OK) != 0, "a failed export left %s", exported);
        }
        check_closed("sslc_ckpt_export");
        unlink(exported);
    }
    unlink(path);
    return 0;
}
