#include "tests/fuzz/ckpt_edit.h"

#include <hdf5.h>
#include <string.h>

// Objects sslc opens, and a few it does not.
static const char *const paths[] = {
    "/",
    "model",
    "encoder",
    "projector",
    "optimizer",
    "optimizer/encoder",
    "optimizer/encoder/momentum_buffer",
    "optimizer/projector/momentum_buffer",
    "state",
    "encoder/conv1.weight",
    "encoder/bn1.num_batches_tracked",
    "projector/0.weight",
    "state/queue",
    "state/queue_ptr",
    "nowhere",
    "encoder/nowhere",
};
enum { N_PATHS = sizeof paths / sizeof paths[0] };

// Link and attribute names sslc looks for, and a stranger.
static const char *const names[] = {
    "conv1.weight", "bn1.weight",   "bn1.bias",  "bn1.running_mean", "bn1.running_var",
    "bn1.num_batches_tracked",      "0.weight",  "0.bias",           "queue",
    "queue_ptr",    "momentum_buffer",           "encoder",          "projector",
    "model",        "optimizer",    "state",     "format_version",   "sslc_version",
    "kind",         "method",       "config",    "epoch",            "step",
    "samples_seen", "seed",         "name",      "arch",             "width",
    "temperature",  "extra",
};
enum { N_NAMES = sizeof names / sizeof names[0] };

static const char *pick_path(fuzz_input *in) { return paths[fuzz_u8(in) % N_PATHS]; }
static const char *pick_name(fuzz_input *in) { return names[fuzz_u8(in) % N_NAMES]; }

// A string of up to 15 characters from the input, for string attributes.
static void take_string(fuzz_input *in, char *buf)
{
    size_t n = fuzz_u8(in) % 16;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)fuzz_u8(in);
    buf[n] = '\0';
}

static void set_attr(hid_t f, fuzz_input *in)
{
    const char *obj = pick_path(in), *name = pick_name(in);
    unsigned kind = fuzz_u8(in) % 10;
    uint8_t raw[8];
    for (int i = 0; i < 8; i++)
        raw[i] = fuzz_u8(in);
    int64_t i64;
    double f64;
    memcpy(&i64, raw, 8);
    memcpy(&f64, raw, 8);
    char text[16];
    if (kind == 4 || kind == 5)
        take_string(in, text);
    if (H5Aexists_by_name(f, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name(f, obj, name, H5P_DEFAULT);
    hsize_t n = (hsize_t)(raw[0] % 4); // array lengths 0..3
    hid_t space = kind == 8                ? H5Screate(H5S_NULL)
                  : kind == 6 || kind == 7 ? H5Screate_simple(1, &n, NULL)
                                           : H5Screate(H5S_SCALAR);
    hid_t type = -1, mem = -1;
    const void *value = raw;
    const char *p = text;
    const double doubles[3] = {f64, f64, f64};
    const int64_t ints[3] = {i64, i64, i64};
    switch (kind) {
    case 0: type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_INT64); break;
    case 1: type = H5Tcopy(H5T_STD_U64BE), mem = H5Tcopy(H5T_NATIVE_UINT64); break;
    case 2: type = H5Tcopy(H5T_STD_I32LE), mem = H5Tcopy(H5T_NATIVE_INT32); break;
    case 3: type = H5Tcopy(H5T_IEEE_F64LE), mem = H5Tcopy(H5T_NATIVE_DOUBLE); break;
    case 4: // variable-length UTF-8, as sslc writes
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        H5Tset_cset(type, H5T_CSET_UTF8);
        mem = H5Tcopy(type);
        value = &p;
        break;
    case 5: // fixed length, as other tools write
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, strlen(text) + 1);
        mem = H5Tcopy(type);
        value = text;
        break;
    case 6: type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_INT64), value = ints; break;
    case 7:
        type = H5Tcopy(H5T_IEEE_F64LE), mem = H5Tcopy(H5T_NATIVE_DOUBLE), value = doubles;
        break;
    case 8: type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_INT64); break;
    default: // a compound: neither number nor string
        type = H5Tcreate(H5T_COMPOUND, 8);
        H5Tinsert(type, "x", 0, H5T_NATIVE_INT64);
        mem = H5Tcopy(type);
        break;
    }
    hid_t a = H5Acreate_by_name(f, obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, mem, value);
        H5Aclose(a);
    }
    H5Tclose(type);
    H5Tclose(mem);
    H5Sclose(space);
}

static void set_dataset(hid_t f, fuzz_input *in)
{
    const char *group = pick_path(in), *name = pick_name(in);
    unsigned dtype = fuzz_u8(in) % 8, space_kind = fuzz_u8(in) % 5;
    hsize_t dims[4];
    int ndim = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t b = fuzz_u8(in);
        dims[i] = b % 8; // small, so the data can be written
        ndim += b >> 7;  // the top bits count the dimensions
    }
    unsigned layout = fuzz_u8(in) % 4;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0)
        return;
    if (H5Lexists(g, name, H5P_DEFAULT) > 0)
        H5Ldelete(g, name, H5P_DEFAULT);
    // float32 (and big-endian), float64, integers of 8 to 64 bits, strings.
    const hid_t types[8] = {H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_IEEE_F32BE, H5T_STD_I64LE,
                            H5T_STD_I32LE,  H5T_STD_U8LE,   H5T_STD_U64LE,  H5T_C_S1};
    hid_t type = H5Tcopy(types[dtype]);
    if (dtype == 7)
        H5Tset_size(type, H5T_VARIABLE);
    // 0 scalar, 1 empty (H5S_NULL), 2-3 the dimensions read, 4 a huge one.
    hid_t space;
    hsize_t huge[2] = {(hsize_t)1 << 40, (hsize_t)1 << 40};
    if (space_kind == 0)
        space = H5Screate(H5S_SCALAR);
    else if (space_kind == 1)
        space = H5Screate(H5S_NULL);
    else if (space_kind == 4)
        space = H5Screate_simple(2, huge, NULL), layout = 3;
    else
        space = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rank = H5Sget_simple_extent_ndims(space);
    hssize_t points = H5Sget_simple_extent_npoints(space);
    if (layout == 1 && points > 0 && points < 1000)
        H5Pset_layout(dcpl, H5D_COMPACT);
    else if (layout >= 2 && rank > 0 && points > 0) {
        hsize_t chunk[4] = {1, 1, 1, 1};
        H5Pset_chunk(dcpl, rank, chunk);
        if (layout == 2 && dtype != 7)
            H5Pset_fletcher32(dcpl);
    }
    hid_t d = H5Dcreate2(g, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    // Values written as doubles (converted to the file type), except strings
    // and spaces too large to fill; those keep HDF5's fill value.
    if (d >= 0 && dtype != 7 && space_kind != 4 && points > 0 && points <= 4096) {
        static double v[4096];
        for (hssize_t i = 0; i < points; i++)
            v[i] = (double)(i % 7) - 1.5;
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    }
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
    H5Gclose(g);
}

bool fuzz_ckpt_edit(const char *path, fuzz_input *in)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return false;
    // A few dozen operations at most: each rewrites metadata.
    for (int ops = 0; in->size > 0 && ops < 32; ops++) {
        unsigned op = fuzz_u8(in) % 8;
        const char *a, *b;
        switch (op) {
        case 0: H5Ldelete(f, pick_path(in), H5P_DEFAULT); break;
        case 1:
            a = pick_path(in);
            H5Adelete_by_name(f, a, pick_name(in), H5P_DEFAULT);
            break;
        case 2: set_attr(f, in); break;
        case 3: set_dataset(f, in); break;
        case 4:
        case 5: {
            hid_t g = H5Gopen2(f, pick_path(in), H5P_DEFAULT);
            a = pick_name(in);
            b = pick_path(in);
            if (g >= 0 && H5Lexists(g, a, H5P_DEFAULT) <= 0) {
                if (op == 4)
                    H5Lcreate_soft(b, g, a, H5P_DEFAULT, H5P_DEFAULT);
                else
                    H5Lcreate_hard(f, b, g, a, H5P_DEFAULT, H5P_DEFAULT);
            }
            if (g >= 0)
                H5Gclose(g);
            break;
        }
        case 6: {
            hid_t g = H5Gcreate2(f, pick_path(in), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g >= 0)
                H5Gclose(g);
            break;
        }
        default:
            a = pick_path(in);
            b = pick_path(in);
            H5Lmove(f, a, f, b, H5P_DEFAULT, H5P_DEFAULT);
            break;
        }
    }
    H5Eclear2(H5E_DEFAULT);
    return H5Fclose(f) >= 0;
}
