// Writes the committed seed corpora of the fuzz targets (tests/fuzz/corpus,
// docs/fuzzing.md): small valid files of every kind each reader handles,
// with the option bytes each target expects in front.
//
//   fuzz_make_seeds SOURCE_ROOT OUT     (OUT/png, OUT/jpeg, OUT/idx, OUT/ckpt)
//
// Images are a few dozen pixels, so the whole corpus stays small; the PNG
// and JPEG files of tests/fixtures/decode (made by PIL) are added as they
// are, behind option bytes. Deterministic: the same files every run.
#include <errno.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
// jpeglib.h needs FILE and size_t before it.
#include <jpeglib.h>

#include "data/image.h"

static const char *out_dir;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_make_seeds: %s: %s\n", what, detail);
    exit(1);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path, strerror(errno));
}

// OUT/kind/name, with prefix bytes in front of data.
static void emit(const char *kind, const char *name, const uint8_t *prefix, size_t np,
                 const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, kind, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, np, f) != np || (n && fwrite(data, 1, n, f) != n) || fclose(f))
        die(path, strerror(errno));
}

// A smooth ramp with a little structure, so every channel and row varies.
static uint8_t *pixels(int w, int h, int comps, int seed)
{
    uint8_t *p = malloc((size_t)(w * h * comps));
    if (!p)
        die("pixels", "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++)
                p[(y * w + x) * comps + c] =
                    (uint8_t)(x * (7 + c) + y * (11 - 2 * c) + ((x ^ y) & 5) * 9 + seed * 29);
    return p;
}

// ---------------------------------------------------------------- PNG

typedef struct mem_buf {
    uint8_t *data;
    size_t size, cap;
} mem_buf;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    mem_buf *b = png_get_io_ptr(png);
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            png_error(png, "out of memory");
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
}

static void mem_flush(png_structp png) { (void)png; }

// color: PNG_COLOR_TYPE_*; depth: bits per sample; rows are packed by
// libpng from one byte per sample (png_set_packing) or two (16-bit).
static void png_seed(const char *name, uint8_t option, int w, int h, int color, int depth,
                     bool interlace, bool trns)
{
    int comps = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGB_ALPHA ? 4
              : color == PNG_COLOR_TYPE_GRAY_ALPHA                                  ? 2
                                                                                    : 1;
    int bytes = depth == 16 ? 2 : 1;
    uint8_t *p = pixels(w, h, comps * bytes, depth);
    // Samples within the bit depth; palette indexes within the palette.
    int bits = color == PNG_COLOR_TYPE_PALETTE && depth > 4 ? 4 : depth;
    if (bits < 8)
        for (int i = 0; i < w * h * comps; i++)
            p[i] &= (uint8_t)((1 << bits) - 1);
    mem_buf buf = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png)))
        die(name, "libpng failed");
    png_set_write_fn(png, &buf, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        png_byte alpha[16];
        for (int i = 0; i < 16; i++) {
            pal[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 9), (png_byte)(i * 5)};
            alpha[i] = (png_byte)(255 - i * 15);
        }
        png_set_PLTE(png, info, pal, 1 << (depth < 4 ? depth : 4));
        if (trns)
            png_set_tRNS(png, info, alpha, 1 << (depth < 4 ? depth : 4), NULL);
    } else if (trns) {
        png_color_16 key = {.gray = 1, .red = 3, .green = 5, .blue = 7};
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_color_16 bg = {.gray = 0, .red = 10, .green = 20, .blue = 30};
    png_set_bKGD(png, info, &bg); // an ancillary chunk the decoder skips
    png_set_gAMA(png, info, 0.45455);
    png_write_info(png, info);
    if (depth < 8)
        png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++)
            png_write_row(png, p + (size_t)y * (size_t)(w * comps * bytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    emit("png", name, &option, 1, buf.data, buf.size);
    free(buf.data);
    free(p);
}

// ---------------------------------------------------------------- JPEG

typedef struct jpeg_kind {
    const char *name;
    int w, h, comps, hs, vs;
    bool progressive, arith, optimize;
    int restart; // restart interval in MCU rows, 0: none
    uint8_t options[9];
} jpeg_kind;

static void jpeg_seed(const jpeg_kind *k)
{
    uint8_t *p = pixels(k->w, k->h, k->comps, k->hs * 3 + k->vs);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&ci, &out, &size);
    ci.image_width = (JDIMENSION)k->w;
    ci.image_height = (JDIMENSION)k->h;
    ci.input_components = k->comps;
    ci.in_color_space = k->comps == 1 ? JCS_GRAYSCALE : k->comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 75, TRUE);
    if (k->comps == 3) {
        ci.comp_info[0].h_samp_factor = k->hs;
        ci.comp_info[0].v_samp_factor = k->vs;
    }
    if (k->comps == 4)
        jpeg_set_colorspace(&ci, JCS_YCCK); // Adobe marker, inverted CMYK
    ci.arith_code = k->arith;
    ci.optimize_coding = k->optimize;
    ci.restart_in_rows = k->restart;
    if (k->progressive)
        jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    jpeg_write_marker(&ci, JPEG_COM, (const JOCTET *)"sslc fuzz seed", 14);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = p + (size_t)ci.next_scanline * (size_t)(k->w * k->comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    emit("jpeg", k->name, k->options, sizeof k->options, out, size);
    free(out);
    free(p);
}

// ---------------------------------------------------------------- fixtures

static void fixture_seed(const char *root, const char *file, const char *kind,
                         const uint8_t *prefix, size_t np)
{
    char path[4096], name[256];
    snprintf(path, sizeof path, "%s/tests/fixtures/decode/%s", root, file);
    uint8_t *bytes;
    size_t n;
    if (sslc_file_read(path, &bytes, &n) != SSLC_OK)
        die(path, sslc_error_message());
    snprintf(name, sizeof name, "pil-%s", file);
    emit(kind, name, prefix, np, bytes, n);
    free(bytes);
}

// ---------------------------------------------------------------- IDX

// An IDX file: magic (0, 0, 8, ndims), big-endian dims, data.
static size_t idx_bytes(uint8_t *out, int ndims, const uint32_t *dims, int seed)
{
    size_t n = 4, total = 1;
    out[0] = out[1] = 0;
    out[2] = 8;
    out[3] = (uint8_t)ndims;
    for (int d = 0; d < ndims; d++, n += 4) {
        for (int b = 0; b < 4; b++)
            out[n + (size_t)b] = (uint8_t)(dims[d] >> (24 - 8 * b));
        total *= dims[d];
    }
    for (size_t i = 0; i < total; i++)
        out[n + i] = (uint8_t)(ndims == 1 ? (i * 3 + (size_t)seed) % 5 : i * 37 + (size_t)seed);
    return n + total;
}

static size_t gzip_bytes(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
    z_stream z = {0};
    // windowBits 15 + 16: a gzip header, as gzip(1) writes.
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("gzip", "deflateInit2 failed");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("gzip", "output too small");
    size_t got = z.total_out;
    deflateEnd(&z);
    return got;
}

// flags as fuzz_idx reads them; labels are appended and their length
// stored in the second option byte.
static void idx_seed(const char *name, uint8_t flags, int ndims, const uint32_t *dims,
                     bool gz_file, bool labels)
{
    static uint8_t img[8192], lab[512], file[16384];
    size_t n = idx_bytes(img, ndims, dims, ndims);
    const uint8_t *body = img;
    if (gz_file) {
        n = gzip_bytes(file, sizeof file, img, n);
        body = file;
    }
    size_t nl = 0;
    if (labels) {
        uint32_t ldims[1] = {dims[0]};
        nl = idx_bytes(lab, 1, ldims, 1);
        if (nl > 255)
            die(name, "labels too long for the length byte");
        flags |= 2;
    }
    uint8_t all[16384 + 512];
    memcpy(all, body, n);
    memcpy(all + n, lab, nl);
    uint8_t prefix[2] = {flags, (uint8_t)nl};
    emit("idx", name, prefix, 2, all, n + nl);
}

// ---------------------------------------------------------------- checkpoints

// fuzz_ckpt inputs (its header comment and ckpt_edit.h give the layout):
// every base untouched, damaged ones, and edit programs that make
// well-formed files of the wrong shape. Path and name indexes refer to the
// tables of ckpt_edit.c.
static void ckpt_seeds(void)
{
#define SEED(name, ...) {name, sizeof((const uint8_t[]){__VA_ARGS__}), {__VA_ARGS__}}
    static const struct {
        const char *name;
        size_t n;
        uint8_t bytes[96];
    } seeds[] = {
        SEED("base0-moco-full", 0, 0),
        SEED("base1-weights", 0, 1),
        SEED("base2-export", 0, 2),
        SEED("base3-other-shape", 0, 3),
        SEED("base0-half", 0, 0, 128),
        // A tensor's chunk (checksummed) and an object header.
        SEED("base0-patched", 0, 0, 0, 0x10, 0x30, 0x5a, 0x90, 0x18, 0x01),
        // encoder/bn1.num_batches_tracked as an empty (H5S_NULL) dataspace
        SEED("edit-null-dataspace", 1, 0, 3, 2, 5, 3, 1, 0, 0, 0, 0, 0),
        // a chunked 2^40 x 2^40 float tensor that was never written
        SEED("edit-huge-shape", 1, 0, 3, 2, 29, 0, 4, 0, 0, 0, 0, 3),
        // conv1.weight (2,1,3,3) as float64, chunked with Fletcher32: loads
        SEED("edit-float64-tensor", 1, 0, 3, 2, 0, 1, 2, 0x82, 0x81, 0x83, 0x83, 2),
        // method as a fixed-length string "moco"
        SEED("edit-fixed-string", 1, 0, 2, 0, 19, 5, 0, 0, 0, 0, 0, 0, 0, 0, 4, 'm', 'o', 'c', 'o'),
        // format_version as an int64 array of 3
        SEED("edit-array-version", 1, 0, 2, 0, 16, 6, 3, 0, 0, 0, 0, 0, 0, 0),
        // projector deleted, then a soft link to nothing in its place
        SEED("edit-dangling-link", 1, 0, 0, 3, 4, 0, 12, 14),
        // encoder deleted, then a dataset named encoder
        SEED("edit-encoder-dataset", 1, 0, 0, 2, 3, 0, 11, 0, 2, 0x82, 0x03, 0, 0, 0),
        // the optimizer's step attribute deleted
        SEED("edit-no-optimizer-step", 1, 0, 1, 4, 22),
        // state/queue moved into the encoder
        SEED("edit-moved-queue", 1, 0, 7, 12, 15),
        // 6 more string attributes on /model: 9, held in dense storage
        SEED("edit-dense-model-attrs", 1, 0,                       //
             2, 1, 16, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a',          //
             2, 1, 17, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'b',          //
             2, 1, 18, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'c',          //
             2, 1, 19, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'd',          //
             2, 1, 20, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'e',          //
             2, 1, 21, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'f'),
        // /model/link: a hard link to the root group (9 attributes, dense)
        SEED("edit-model-links-root", 1, 0, 5, 1, 29, 0),
        // the model's width as a compound (neither number nor string)
        SEED("edit-compound-attr", 1, 0, 2, 1, 27, 9, 0, 0, 0, 0, 0, 0, 0, 0),
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        emit("ckpt", seeds[i].name, seeds[i].bytes, seeds[i].n, NULL, 0);
#undef SEED
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_make_seeds SOURCE_ROOT OUT\n");
        return 2;
    }
    const char *root = argv[1];
    out_dir = argv[2];
    make_dir(out_dir);
    const char *kinds[] = {"png", "jpeg", "idx", "ckpt"};
    for (int i = 0; i < 4; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out_dir, kinds[i]);
        make_dir(path);
    }

    // PNG: option byte = output channels (% 3: own, 1, 3).
    png_seed("gray8.png", 0, 9, 7, PNG_COLOR_TYPE_GRAY, 8, false, false);
    png_seed("gray1.png", 2, 13, 5, PNG_COLOR_TYPE_GRAY, 1, false, false);
    png_seed("gray4-trns.png", 1, 7, 6, PNG_COLOR_TYPE_GRAY, 4, false, true);
    png_seed("gray16.png", 2, 5, 4, PNG_COLOR_TYPE_GRAY, 16, false, false);
    png_seed("gray-alpha.png", 0, 6, 6, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false);
    png_seed("rgb8.png", 1, 11, 8, PNG_COLOR_TYPE_RGB, 8, false, false);
    png_seed("rgb16-trns.png", 0, 4, 5, PNG_COLOR_TYPE_RGB, 16, false, true);
    png_seed("rgba-adam7.png", 2, 10, 9, PNG_COLOR_TYPE_RGB_ALPHA, 8, true, false);
    png_seed("palette2-trns.png", 0, 12, 4, PNG_COLOR_TYPE_PALETTE, 2, false, true);
    png_seed("palette8-adam7.png", 1, 9, 9, PNG_COLOR_TYPE_PALETTE, 8, true, false);
    const char *pngs[] = {"rgb.png", "palette.png", "gray_alpha.png"};
    for (int i = 0; i < 3; i++) {
        uint8_t option = (uint8_t)i;
        fixture_seed(root, pngs[i], "png", &option, 1);
    }

    // JPEG: options (flags, window top, left, bottom, right). flags: bits
    // 0-1 channels, 2 window, 3 raw window, 4-5 scale, 6 compare with whole.
    const jpeg_kind jpegs[] = {
        {"420.jpg", 29, 21, 3, 2, 2, false, false, false, 0, {0x44, 5, 0, 3, 0, 17, 0, 20, 0}},
        {"422-restart.jpg", 33, 17, 3, 2, 1, false, false, false, 1,
         {0x46, 1, 0, 9, 0, 16, 0, 30, 0}},
        {"444-optimized.jpg", 19, 18, 3, 1, 1, false, false, true, 0, {0x10, 0}},
        {"440.jpg", 17, 26, 3, 1, 2, false, false, false, 0, {0x45, 9, 0, 0, 0, 25, 0, 6, 0}},
        {"411.jpg", 40, 9, 3, 4, 1, false, false, false, 0, {0x46, 0, 0, 13, 0, 9, 0, 27, 0}},
        {"progressive.jpg", 27, 23, 3, 2, 2, true, false, false, 0,
         {0x44, 7, 0, 2, 0, 20, 0, 11, 0}},
        {"arith.jpg", 21, 15, 3, 2, 2, false, true, false, 0,
         {0x4e, 0xfd, 0xff, 3, 0, 4, 0, 40, 0}},
        {"gray.jpg", 23, 19, 1, 1, 1, false, false, false, 0, {0x46, 0, 0, 0, 0, 19, 0, 23, 0}},
        {"gray-progressive.jpg", 18, 31, 1, 1, 1, true, false, false, 0, {0x21, 0}},
        {"ycck.jpg", 14, 13, 4, 1, 1, false, false, false, 0, {0x45, 2, 0, 2, 0, 11, 0, 12, 0}},
    };
    for (size_t i = 0; i < sizeof jpegs / sizeof jpegs[0]; i++)
        jpeg_seed(&jpegs[i]);
    const char *jpgs[] = {"baseline.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg"};
    const uint8_t jpg_options[4][9] = {{0x46, 3, 0, 4, 0, 30, 0, 28, 0},
                                       {0x30},
                                       {0x44, 0, 0, 0, 0, 8, 0, 8, 0},
                                       {0x45, 1, 0, 1, 0, 5, 0, 5, 0}};
    for (int i = 0; i < 4; i++)
        fixture_seed(root, jpgs[i], "jpeg", jpg_options[i], 9);

    // IDX: flags bit 0 gzip here, 1 labels (set by idx_seed), 2 gzip
    // labels, 3-4 channels.
    const uint32_t gray[3] = {4, 5, 6}, color[4] = {3, 4, 3, 3}, one[4] = {2, 7, 5, 1};
    idx_seed("gray.idx", 0, 3, gray, false, false);
    idx_seed("gray-labels.idx", 0x08, 3, gray, false, true);
    idx_seed("gray-gzipped-here.idx", 0x01 | 0x04, 3, gray, false, true);
    idx_seed("gray.idx.gz", 0x10, 3, gray, true, false);
    idx_seed("color-labels.idx", 0x08, 4, color, false, true);
    idx_seed("color.idx.gz", 0x00, 4, color, true, false);
    idx_seed("one-channel.idx", 0x11, 4, one, false, true);

    ckpt_seeds();
    return 0;
}
