// Fuzz target: the PNG decoder (data/image.h, in memory).
//
// Input: one option byte, then the file.
//   byte 0   output channels: value % 3 -> 0 (the file's own), 1, 3
// Promises checked: the header probe and the decoder agree on the size; a
// decoded image has the size, channel count and placement asked for, and
// every byte of it is readable; a refusal is SSLC_ERR_FORMAT, names the file
// and leaves no image behind.
#include <string.h>

#include "data/image.h"
#include "src/core/log.h"
#include "tests/fuzz/fuzz.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int channel_modes[3] = {0, 1, 3};
    fuzz_input in = {data, size};
    sslc_log_set_level(SSLC_LOG_QUIET);
    sslc_decode_options opt = {.channels = channel_modes[fuzz_u8(&in) % 3],
                               .max_pixels = FUZZ_MAX_PIXELS};
    int64_t h = 0, w = 0, c = 0;
    sslc_status probed = sslc_image_probe(in.data, in.size, FUZZ_NAME, &opt, &h, &w, &c);
    fuzz_trace("probe", probed, "%lldx%lld, %lld channels", (long long)h, (long long)w,
               (long long)c);
    sslc_image img;
    int scale = 0;
    sslc_status st = sslc_image_decode(&img, in.data, in.size, FUZZ_NAME, &opt, &scale);
    fuzz_trace("decode", st, "%d channels asked for", opt.channels);
    if (st == SSLC_OK) {
        FUZZ_CHECK(probed == SSLC_OK, "decoded, but the probe said: %s", sslc_error_message());
        int64_t want_c = opt.channels ? opt.channels : c;
        FUZZ_CHECK(img.height == h && img.width == w && img.channels == want_c,
                   "decoded %lldx%lldx%lld, probe said %lldx%lldx%lld", (long long)img.height,
                   (long long)img.width, (long long)img.channels, (long long)h, (long long)w,
                   (long long)want_c);
        FUZZ_CHECK(img.top == 0 && img.left == 0 && img.full_height == h && img.full_width == w,
                   "a whole PNG placed at (%lld, %lld) of %lldx%lld", (long long)img.top,
                   (long long)img.left, (long long)img.full_height, (long long)img.full_width);
        FUZZ_CHECK(scale == 1, "PNG decoded at scale 1/%d", scale);
        sink = fuzz_touch(img.data, (size_t)(h * w * want_c));
    } else {
        FUZZ_CHECK(st == SSLC_ERR_FORMAT, "status %d: %s", (int)st, sslc_error_message());
        FUZZ_CHECK(strstr(sslc_error_message(), FUZZ_NAME) != NULL,
                   "the message does not name the file: %s", sslc_error_message());
        FUZZ_CHECK(img.data == NULL, "a refused image kept its pixels");
    }
    sslc_image_free(&img);
    return 0;
}
