// Fuzz target: the JPEG decoder (data/image.h, in memory), whole, scaled
// and windowed (sslc_decode_options.window_*, what sslc_dataset_decode_window
// asks for a random crop).
//
// Input: nine option bytes, then the file.
//   byte 0     bits 0-1  output channels: 0 the file's own, 1, 3, (3: own)
//              bit 2     decode a window
//              bit 3     window bytes are raw signed offsets (may lie outside
//                        the image or be empty; -32768 and 32767 stand for
//                        INT64_MIN and INT64_MAX); else mapped into the image
//              bits 4-5  DCT scale asked for by choose_scale: 1, 2, 4, 8
//              bit 6     also decode the whole image and compare the window
//   bytes 1-8  window top, left, bottom, right: 16 bits each, little-endian
// Promises checked: probe and decoder agree on the size; a scaled image has
// libjpeg's scaled size; a window lies inside the image it says it is a
// window of and covers the rows and columns asked for (when they are
// inside the image); its pixels there equal the whole decode's; every byte
// is readable; a refusal is SSLC_ERR_FORMAT, names the file, keeps nothing.
#include <stdbool.h>
#include <string.h>

#include "data/image.h"
#include "src/core/log.h"
#include "tests/fuzz/fuzz.h"

static volatile uint64_t sink;

static int choose_scale(void *ctx, int64_t h, int64_t w)
{
    (void)h;
    (void)w;
    return *(const int *)ctx;
}

// A raw window offset: the 16 bits as a signed number, except that the two
// extremes stand for the extremes of int64 (the API takes any int64).
static int64_t raw_offset(uint16_t v)
{
    int16_t x = (int16_t)v;
    return x == INT16_MIN ? INT64_MIN : x == INT16_MAX ? INT64_MAX : x;
}

static void check_refusal(sslc_status st, const sslc_image *img)
{
    FUZZ_CHECK(st == SSLC_ERR_FORMAT, "status %d: %s", (int)st, sslc_error_message());
    FUZZ_CHECK(strstr(sslc_error_message(), FUZZ_NAME) != NULL,
               "the message does not name the file: %s", sslc_error_message());
    FUZZ_CHECK(img->data == NULL, "a refused image kept its pixels");
}

// A decoded image: the channels asked for, inside the image it is a part
// of, every byte readable.
static void check_image(const sslc_image *img, int64_t channels)
{
    FUZZ_CHECK(img->data && img->height > 0 && img->width > 0 && img->channels == channels,
               "%lldx%lldx%lld, %lld channels asked for", (long long)img->height,
               (long long)img->width, (long long)img->channels, (long long)channels);
    FUZZ_CHECK(img->top >= 0 && img->left >= 0 && img->top + img->height <= img->full_height &&
                   img->left + img->width <= img->full_width,
               "%lldx%lld at (%lld, %lld) is not inside %lldx%lld", (long long)img->height,
               (long long)img->width, (long long)img->top, (long long)img->left,
               (long long)img->full_height, (long long)img->full_width);
    sink = fuzz_touch(img->data, (size_t)(img->height * img->width * img->channels));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int channel_modes[4] = {0, 1, 3, 0};
    fuzz_input in = {data, size};
    sslc_log_set_level(SSLC_LOG_QUIET);
    uint8_t flags = fuzz_u8(&in);
    uint16_t raw[4];
    for (int k = 0; k < 4; k++)
        raw[k] = fuzz_u16(&in);
    int denom = 1 << ((flags >> 4) & 3);
    bool windowed = flags & 4, raw_window = flags & 8, compare = flags & 64;
    // PNG ignores scales and windows: fuzz_png covers it.
    if (sslc_image_sniff(in.data, in.size) != SSLC_IMAGE_JPEG)
        return 0;
    sslc_decode_options opt = {.channels = channel_modes[flags & 3],
                               .max_pixels = FUZZ_MAX_PIXELS};
    int64_t H = 0, W = 0, C = 0;
    sslc_status probed = sslc_image_probe(in.data, in.size, FUZZ_NAME, &opt, &H, &W, &C);
    int64_t want_c = opt.channels ? opt.channels : C;
    fuzz_trace("probe", probed, "%lldx%lld, %lld channels", (long long)H, (long long)W,
               (long long)C);

    // The whole image, at the scale asked for.
    sslc_image whole = {0};
    sslc_status whole_st = SSLC_ERR_INVALID;
    if (!windowed || compare) {
        sslc_decode_options o = opt;
        o.choose_scale = choose_scale;
        o.ctx = &denom;
        int scale = 0;
        whole_st = sslc_image_decode(&whole, in.data, in.size, FUZZ_NAME, &o, &scale);
        fuzz_trace("whole", whole_st, "%d channels, scale 1/%d asked for", opt.channels, denom);
        if (whole_st == SSLC_OK) {
            FUZZ_CHECK(probed == SSLC_OK, "decoded, but the probe said: %s",
                       sslc_error_message());
            FUZZ_CHECK(scale == denom, "asked for 1/%d, decoded at 1/%d", denom, scale);
            // libjpeg's output size: ceil(size / denom).
            int64_t oh = (H + denom - 1) / denom, ow = (W + denom - 1) / denom;
            FUZZ_CHECK(whole.height == oh && whole.width == ow,
                       "%lldx%lld at 1/%d decoded as %lldx%lld", (long long)H, (long long)W,
                       denom, (long long)whole.height, (long long)whole.width);
            check_image(&whole, want_c);
        } else {
            check_refusal(whole_st, &whole);
        }
    }
    if (!windowed || probed != SSLC_OK) {
        sslc_image_free(&whole);
        return 0;
    }

    // A window at full size.
    int64_t win[4];
    for (int k = 0; k < 4; k++)
        win[k] = raw_window ? raw_offset(raw[k]) : raw[k] % ((k & 1 ? W : H) + 1);
    opt.window_top = win[0], opt.window_left = win[1];
    opt.window_bottom = win[2], opt.window_right = win[3];
    sslc_image part;
    sslc_status st = sslc_image_decode(&part, in.data, in.size, FUZZ_NAME, &opt, NULL);
    fuzz_trace("window", st, "rows %lld-%lld cols %lld-%lld asked for, %lldx%lld at (%lld, %lld)",
               (long long)win[0], (long long)win[2], (long long)win[1], (long long)win[3],
               (long long)part.height, (long long)part.width, (long long)part.top,
               (long long)part.left);
    if (st != SSLC_OK) {
        check_refusal(st, &part);
        // A whole decode at full size reads everything a window reads.
        FUZZ_CHECK(!(whole_st == SSLC_OK && denom == 1),
                   "the whole image decodes, the window %lld,%lld,%lld,%lld does not: %s",
                   (long long)win[0], (long long)win[1], (long long)win[2], (long long)win[3],
                   sslc_error_message());
        sslc_image_free(&whole);
        return 0;
    }
    check_image(&part, want_c);
    FUZZ_CHECK(part.full_height == H && part.full_width == W,
               "a window of %lldx%lld says it is part of %lldx%lld", (long long)H, (long long)W,
               (long long)part.full_height, (long long)part.full_width);
    bool inside = win[0] >= 0 && win[1] >= 0 && win[0] < win[2] && win[1] < win[3] &&
                  win[2] <= H && win[3] <= W;
    if (inside) {
        FUZZ_CHECK(part.top <= win[0] && part.top + part.height >= win[2] &&
                       part.left <= win[1] && part.left + part.width >= win[3],
                   "window rows %lld-%lld cols %lld-%lld asked, rows %lld-%lld cols %lld-%lld "
                   "decoded",
                   (long long)win[0], (long long)win[2], (long long)win[1], (long long)win[3],
                   (long long)part.top, (long long)(part.top + part.height),
                   (long long)part.left, (long long)(part.left + part.width));
        if (whole_st == SSLC_OK && denom == 1) {
            for (int64_t y = win[0]; y < win[2]; y++) {
                const uint8_t *a = whole.data + (y * W + win[1]) * want_c;
                const uint8_t *b =
                    part.data + ((y - part.top) * part.width + win[1] - part.left) * want_c;
                FUZZ_CHECK(memcmp(a, b, (size_t)((win[3] - win[1]) * want_c)) == 0,
                           "window rows %lld-%lld cols %lld-%lld of %lldx%lld: row %lld differs "
                           "from the whole decode",
                           (long long)win[0], (long long)win[2], (long long)win[1],
                           (long long)win[3], (long long)H, (long long)W, (long long)y);
            }
        }
    }
    sslc_image_free(&part);
    sslc_image_free(&whole);
    return 0;
}
