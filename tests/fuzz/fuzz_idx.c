// Fuzz target: the IDX reader, plain and gzip-compressed, through
// sslc_dataset_open("idx:IMAGES[,LABELS]") (the reader is internal to
// data/), then every access function of the dataset it opens.
//
// Input: two option bytes, then the images file, then the labels file.
//   byte 0   bit 0     gzip the images file here before it is read (the
//                      fuzzer then varies the IDX bytes behind gzip; without
//                      it the bytes are the file, and gzip seeds vary the
//                      compressed stream itself)
//            bit 1     there is a labels file: the last (byte 1) bytes
//            bit 2     gzip the labels file here
//            bits 3-4  channels asked for: 0 (the file's), 1, 3, (3: 0)
//   byte 1   length of the labels file
// Promises checked: an opened dataset has images, 1 or 3 channels, sizes
// that match what decoding gives, labels in [-1, classes); decode, window
// and decode_into agree; a refusal names the file and leaves no dataset.
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "src/core/log.h"
#include "tests/fuzz/fuzz.h"

static volatile uint64_t sink;

static void write_gzip(const char *path, const uint8_t *data, size_t size)
{
    gzFile f = gzopen(path, "wb1");
    if (!f || (size && gzwrite(f, data, (unsigned)size) != (int)size) || gzclose(f) != Z_OK) {
        fprintf(stderr, "fuzz: cannot write scratch file '%s'\n", path);
        abort();
    }
}

static void check_image(const sslc_dataset *ds, int64_t i)
{
    char name[256];
    int64_t h, w;
    sslc_dataset_dims(ds, i, &h, &w);
    int64_t c = sslc_dataset_channels(ds);
    sslc_image img;
    sslc_status st = sslc_dataset_decode(ds, i, &img, NULL, NULL, NULL);
    FUZZ_CHECK(st == SSLC_OK, "%s does not decode: %s", sslc_dataset_name(ds, i, name, sizeof name),
               sslc_error_message());
    FUZZ_CHECK(img.height == h && img.width == w && img.channels == c,
               "image %lld decodes as %lldx%lldx%lld, the dataset says %lldx%lldx%lld",
               (long long)i, (long long)img.height, (long long)img.width,
               (long long)img.channels, (long long)h, (long long)w, (long long)c);
    sink = fuzz_touch(img.data, (size_t)(h * w * c));

    // IDX images come whole from a window request.
    const int64_t window[4] = {0, 0, (h + 1) / 2, (w + 1) / 2};
    sslc_image part;
    st = sslc_dataset_decode_window(ds, i, window, &part);
    FUZZ_CHECK(st == SSLC_OK && part.height == h && part.width == w && part.channels == c &&
                   memcmp(part.data, img.data, (size_t)(h * w * c)) == 0,
               "image %lld: the window decode differs from the whole: %s", (long long)i,
               st == SSLC_OK ? "other pixels" : sslc_error_message());
    sslc_image_free(&part);

    size_t cap = (size_t)(h * w * c);
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL, "out of memory for %zu bytes", cap);
    int64_t bh = 0, bw = 0;
    st = sslc_dataset_decode_into(ds, i, buf, cap, &bh, &bw);
    FUZZ_CHECK(st == SSLC_OK && bh == h && bw == w && memcmp(buf, img.data, cap) == 0,
               "image %lld: decode_into differs from decode: %s", (long long)i,
               st == SSLC_OK ? "other pixels or size" : sslc_error_message());
    if (cap > 1) // one byte short is refused
        FUZZ_CHECK(sslc_dataset_decode_into(ds, i, buf, cap - 1, &bh, &bw) == SSLC_ERR_INVALID,
                   "image %lld: decode_into wrote %zu bytes into %zu", (long long)i, cap,
                   cap - 1);
    free(buf);
    sslc_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int channel_modes[4] = {0, 1, 3, 0};
    fuzz_input in = {data, size};
    sslc_log_set_level(SSLC_LOG_QUIET);
    uint8_t flags = fuzz_u8(&in);
    size_t label_len = fuzz_u8(&in);
    bool labels = flags & 2;
    if (!labels || label_len > in.size)
        label_len = labels ? in.size : 0;
    size_t image_len = in.size - label_len;

    const char *images = fuzz_scratch_path(0, "images");
    const char *label_path = fuzz_scratch_path(1, "labels");
    if (flags & 1)
        write_gzip(images, in.data, image_len);
    else
        fuzz_write_file(images, in.data, image_len);
    if (labels && (flags & 4))
        write_gzip(label_path, in.data + image_len, label_len);
    else if (labels)
        fuzz_write_file(label_path, in.data + image_len, label_len);

    char spec[1100];
    snprintf(spec, sizeof spec, "idx:%s%s%s", images, labels ? "," : "", labels ? label_path : "");
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    opt.channels = channel_modes[(flags >> 3) & 3];
    opt.quiet = true;
    sslc_dataset *ds = NULL;
    sslc_status st = sslc_dataset_open(&ds, spec, &opt);
    fuzz_trace("open", st, "%s, %d channels asked for, %lld images", spec, opt.channels,
               st ? 0LL : (long long)sslc_dataset_count(ds));
    if (st != SSLC_OK) {
        FUZZ_CHECK(st == SSLC_ERR_FORMAT || st == SSLC_ERR_INVALID, "status %d: %s", (int)st,
                   sslc_error_message());
        const char *msg = sslc_error_message();
        FUZZ_CHECK(strstr(msg, images) || (labels && strstr(msg, label_path)),
                   "the message names neither file: %s", msg);
    } else {
        int64_t n = sslc_dataset_count(ds);
        int c = sslc_dataset_channels(ds);
        int64_t classes = sslc_dataset_num_classes(ds);
        FUZZ_CHECK(n > 0, "an open dataset with %lld images", (long long)n);
        FUZZ_CHECK(c == (opt.channels ? opt.channels : c) && (c == 1 || c == 3),
                   "%d channels, %d asked for", c, opt.channels);
        FUZZ_CHECK(labels ? classes >= 1 : classes == 0, "%lld classes (labels file: %d)",
                   (long long)classes, (int)labels);
        int64_t most = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t h, w, label = sslc_dataset_label(ds, i);
            sslc_dataset_dims(ds, i, &h, &w);
            FUZZ_CHECK(h > 0 && w > 0, "image %lld is %lldx%lld", (long long)i, (long long)h,
                       (long long)w);
            FUZZ_CHECK(labels ? label >= 0 && label < classes : label == -1,
                       "image %lld has label %lld of %lld classes", (long long)i,
                       (long long)label, (long long)classes);
            most = h * w > most ? h * w : most;
        }
        FUZZ_CHECK(sslc_dataset_max_pixels(ds) == most, "max_pixels %lld, largest %lld",
                   (long long)sslc_dataset_max_pixels(ds), (long long)most);
        FUZZ_CHECK(sslc_dataset_label(ds, n) == -1 && sslc_dataset_label(ds, -1) == -1,
                   "labels out of range");
        // The first, the last, and a few between: decoding is a copy, the
        // same for every index.
        for (int64_t i = 0; i < n; i += i < 4 ? 1 : n / 4 + 1)
            check_image(ds, i);
        check_image(ds, n - 1);
        sslc_image img;
        FUZZ_CHECK(sslc_dataset_decode(ds, n, &img, NULL, NULL, NULL) == SSLC_ERR_INVALID &&
                       img.data == NULL,
                   "index n decoded");
        char name[64];
        FUZZ_CHECK(strlen(sslc_dataset_name(ds, n - 1, name, sizeof name)) > 0, "no name");
        sslc_dataset_destroy(ds);
    }
    unlink(images);
    if (labels)
        unlink(label_path);
    return 0;
}
