// Fuzz target: the checkpoint reader (src/io/checkpoint.h). HDF5 reads
// from a path, so each input makes a file in /dev/shm, which then goes
// through everything that reads a checkpoint: sslc_ckpt_read_info (resume,
// `sslc info`), sslc_ckpt_print with tensors, sslc_ckpt_load into the small
// model of tests/fuzz/ckpt_model.h, and sslc_ckpt_export of its encoder,
// whose output is read back.
//
// The file is one of the model's base checkpoints (written by
// sslc_ckpt_save when the target starts), changed in one of two ways:
//   byte 0   mode: even -> byte patches, odd -> an edit program
//   byte 1   base checkpoint (ckpt_model.h), modulo their number
// Byte patches (damage: flipped bits, truncation):
//   byte 2   keep the first byte2/256 of the file (0: all of it)
//   then     (offset u16, value) triples: file[offset % size] = value
// Edit program (well-formed files of the wrong shape, through the HDF5 API,
// see ckpt_edit.h): the rest of the input.
//
// Promises checked: a refusal is SSLC_ERR_FORMAT or SSLC_ERR_IO and names
// the file; what read_info hands back is complete; a file that loads also
// reads its header; a successful export reads back as an export of the same
// step, a failed one leaves no file; no HDF5 object stays open after any
// call.
//
// Not patched: bytes whose damage crashes HDF5 1.10.8 itself, which sslc
// cannot check before HDF5 reads them (docs/fuzzing.md):
//  - the global heap (GCOL collections), where variable-length strings live
//    (sslc_version, kind, method, config, string model attributes). It has
//    no checksum in any version of the file format, and HDF5 trusts its
//    sizes and indexes: one flipped byte made H5HG_read memcpy out of bounds
//    or the heap parser loop forever (found here). The public API gives
//    sslc no access to heap addresses to check them first.
//  - the superblock's version byte: versions 0 and 1 have no metadata
//    checksums, and HDF5 parses the rest of the file as such with
//    out-of-bounds reads and writes (found here in files without checksums:
//    SEGV in H5T_close_real, and in a memcpy). sslc writes version 3.
#include <hdf5.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cli/ckpt_print.h"
#include "src/core/log.h"
#include "src/io/checkpoint.h"
#include "tests/fuzz/ckpt_edit.h"
#include "tests/fuzz/ckpt_model.h"
#include "tests/fuzz/fuzz.h"

typedef struct base {
    uint8_t *bytes;
    size_t size;
    size_t heap_start, heap_end; // the GCOL collection: [start, end)
} base;

static base bases[FUZZ_CKPT_BASES];
static FILE *devnull;
static fuzz_ckpt_model model;

int LLVMFuzzerInitialize(int *argc, char ***argv);

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

// Writes base k, reads it back and finds its global heap collection: "GCOL",
// version, 3 reserved bytes, then the collection's size (of the superblock's
// size of lengths, byte 10 of a version 3 superblock) counted from "GCOL".
static void load_base(int k)
{
    const char *path = fuzz_scratch_path(2, "base.h5");
    const char *scratch = fuzz_scratch_path(3, "base0.h5");
    base *b = &bases[k];
    if (fuzz_ckpt_write_base(k, path, scratch) != SSLC_OK ||
        !fuzz_read_file(path, &b->bytes, &b->size)) {
        fprintf(stderr, "fuzz_ckpt: cannot write base %d: %s\n", k, sslc_error_message());
        abort();
    }
    unlink(path);
    unlink(scratch);
    const uint8_t *g = memmem(b->bytes, b->size, "GCOL", 4);
    size_t after = g ? b->size - (size_t)(g + 1 - b->bytes) : 0;
    int len = b->bytes[10];
    if (b->size < 16 || b->bytes[8] != 3 || !g || memmem(g + 1, after, "GCOL", 4)) {
        fprintf(stderr, "fuzz_ckpt: base %d is not laid out as expected\n", k);
        abort();
    }
    b->heap_start = (size_t)(g - b->bytes);
    b->heap_end = b->heap_start + (size_t)le(g + 8, len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    // Debian's HDF5 prints its error stack on every failure otherwise;
    // sslc silences it in the calls it makes, this covers the edits.
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    sslc_log_set_level(SSLC_LOG_QUIET);
    devnull = fopen("/dev/null", "w");
    if (!devnull || fuzz_ckpt_model_make(&model, 3) != SSLC_OK) {
        fprintf(stderr, "fuzz_ckpt: cannot set up\n");
        abort();
    }
    for (int k = 0; k < FUZZ_CKPT_BASES; k++)
        load_base(k);
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

// The damaged copy of b: truncated, then patched outside the global heap
// and the superblock's version byte.
static void write_patched(const char *path, const base *b, fuzz_input *in)
{
    static uint8_t buf[1 << 16];
    FUZZ_CHECK(b->size <= sizeof buf, "base of %zu bytes", b->size);
    memcpy(buf, b->bytes, b->size);
    size_t keep = fuzz_u8(in);
    keep = keep ? b->size * keep / 256 : b->size;
    while (in->size >= 3) {
        size_t at = fuzz_u16(in) % b->size;
        uint8_t v = fuzz_u8(in);
        if (at != 8 && (at < b->heap_start || at >= b->heap_end))
            buf[at] = v;
    }
    fuzz_write_file(path, buf, keep);
}

static void read_everything(const char *path, const char *exported, size_t size)
{
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
    fuzz_trace("print", st, "tensors listed");
    if (st != SSLC_OK)
        check_refusal("print", st, path);
    check_closed("sslc_ckpt_print");

    st = sslc_ckpt_load(path, &model.desc);
    fuzz_trace("load", st, "into the model");
    if (st == SSLC_OK)
        FUZZ_CHECK(info_st == SSLC_OK, "loads, but read_info refused it");
    else
        check_refusal("load", st, path);
    check_closed("sslc_ckpt_load");

    if (info_st == SSLC_OK) {
        st = sslc_ckpt_export(exported, path, "encoder");
        fuzz_trace("export", st, "the encoder");
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    const base *b = &bases[fuzz_u8(&in) % FUZZ_CKPT_BASES];
    const char *path = fuzz_scratch_path(0, "ckpt.h5");
    const char *exported = fuzz_scratch_path(1, "export.h5");
    if (mode & 1) {
        fuzz_write_file(path, b->bytes, b->size);
        FUZZ_CHECK(fuzz_ckpt_edit(path, &in), "HDF5 cannot open a base checkpoint to edit");
        check_closed("the edit (the target's own HDF5 calls)");
    } else {
        write_patched(path, b, &in);
    }
    struct stat sb;
    read_everything(path, exported, stat(path, &sb) == 0 ? (size_t)sb.st_size : 0);
    unlink(path);
    return 0;
}
