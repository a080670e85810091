// Decoded images (uint8 HWC) and the decoders that make them: PNG through
// libpng, JPEG through libjpeg-turbo, and a PNG writer for contact sheets.
//
// Decoders pick the format from the file's first bytes, never from its
// extension, so a text file named x.jpg is refused with a reason rather
// than fed to the wrong library. Every failure is an sslc_status with a
// message naming the file and what went wrong; libjpeg's "corrupt data"
// warnings count as failures, because libjpeg would otherwise fill the
// missing part with grey and hand back a silent substitute.
#ifndef SSLC_DATA_IMAGE_H
#define SSLC_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

typedef struct sslc_image {
    uint8_t *data; // (height, width, channels) uint8, row-major, owned
    int64_t height, width, channels;
    // The whole image this is a window of, and where pixel (0, 0) lies in
    // it: the image itself (0, 0, height, width) unless a window was
    // decoded (sslc_decode_options.window_*).
    int64_t top, left, full_height, full_width;
} sslc_image;

// Allocates data for (height, width, channels), a whole image; contents
// undefined.
sslc_status sslc_image_alloc(sslc_image *img, int64_t height, int64_t width, int64_t channels);
// Frees data and zeroes the struct; NULL-safe, safe on a zeroed struct.
void sslc_image_free(sslc_image *img);

typedef enum sslc_image_format {
    SSLC_IMAGE_UNKNOWN = 0,
    SSLC_IMAGE_PNG = 1,
    SSLC_IMAGE_JPEG = 2,
} sslc_image_format;

// The format told by the first bytes (at least 8 are needed).
sslc_image_format sslc_image_sniff(const uint8_t *bytes, size_t size);

typedef struct sslc_decode_options {
    // Output channels: 1 (grayscale, ITU-R 601 luma as PIL's convert("L"))
    // or 3 (RGB; gray is replicated, alpha dropped as PIL's convert("RGB")).
    int channels;
    // Images with more pixels than this are refused before any pixel is
    // decoded (0: no limit).
    int64_t max_pixels;
    // Optional: called once the header is read, with the full-size
    // dimensions; returns the JPEG DCT scale denominator (1, 2, 4 or 8) at
    // which to decode. PNG ignores it. NULL means full size.
    int (*choose_scale)(void *ctx, int64_t height, int64_t width);
    void *ctx;
    // Optional: only rows [top, bottom) and columns [left, right) of the
    // full-size image are needed (all 0: the whole image). A JPEG decoded
    // at full size is then cut to a slightly larger window whose pixels in
    // the asked one are exactly a whole decode's (libjpeg-turbo's
    // jpeg_skip_scanlines / jpeg_crop_scanline; the rows below are not
    // decoded, so damage there goes unnoticed when the file still ends
    // with its end-of-image marker). PNG and scaled JPEG decode everything.
    int64_t window_top, window_left, window_bottom, window_right;
} sslc_decode_options;

// Header only: full-size dimensions and the file's own channel count
// (1 gray, 3 colour; alpha not counted). Checks the pixel limit.
sslc_status sslc_image_probe(const uint8_t *bytes, size_t size, const char *name,
                             const sslc_decode_options *opt, int64_t *height, int64_t *width,
                             int64_t *channels);

// Decodes an in-memory PNG or JPEG into out (allocated here). name is used
// in messages only. *scale_out (may be NULL) receives the DCT denominator
// actually used (1 for PNG).
sslc_status sslc_image_decode(sslc_image *out, const uint8_t *bytes, size_t size,
                              const char *name, const sslc_decode_options *opt, int *scale_out);

// Reads a whole file into a new buffer (free with free()). Zero-byte files
// are an SSLC_ERR_FORMAT error ("empty file").
sslc_status sslc_file_read(const char *path, uint8_t **bytes, size_t *size);

// Reads and decodes a file.
sslc_status sslc_image_load(sslc_image *out, const char *path, const sslc_decode_options *opt,
                            int *scale_out);

// Writes pixels: (height, width, channels) uint8 with channels 1 or 3 as
// an 8-bit PNG.
sslc_status sslc_png_write(const char *path, const uint8_t *pixels, int64_t height, int64_t width,
                           int64_t channels);

// pixels: (n) RGB triples -> (n) luma, PIL's convert("L") integer formula
// (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
void sslc_rgb_to_luma(uint8_t *restrict luma, const uint8_t *restrict rgb, int64_t n);

#endif
