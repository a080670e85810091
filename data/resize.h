// Bilinear resampling of uint8 HWC images, pixel-exact with Pillow's
// Image.resize(..., BILINEAR) (what torchvision's Resize and
// RandomResizedCrop do to PIL images): a triangle filter whose support
// widens by the shrink factor (so shrinking is antialiased), fixed-point
// weights with 22 fractional bits, a horizontal pass rounded to uint8, then
// a vertical pass. Lives in data/ because the decoded cache resizes too.
#ifndef SSLC_DATA_RESIZE_H
#define SSLC_DATA_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// Grow-only scratch memory owned by one worker, so hot paths do not
// allocate once warmed up.
typedef struct sslc_scratch {
    void *ptr;
    size_t cap;
} sslc_scratch;

// A pointer to at least bytes of scratch (64-byte aligned); NULL + NOMEM.
void *sslc_scratch_get(sslc_scratch *s, size_t bytes);
void sslc_scratch_free(sslc_scratch *s);

// dst: (out_h, out_w, C); src: (src_h, src_w, C) with rows src_stride
// bytes apart. box = {x0, y0, x1, y1} is the source region in pixels
// (fractional allowed, as Pillow's box argument); {0, 0, src_w, src_h}
// resizes the whole image. Needs three scratch areas of its own.
sslc_status sslc_resize_bilinear(uint8_t *dst, int64_t out_h, int64_t out_w, const uint8_t *src,
                                 int64_t src_h, int64_t src_w, int64_t src_stride, int64_t C,
                                 const double box[4], sslc_scratch *scratch);

// torchvision Resize(size) with an int size: the short side becomes size,
// the long side int(size * long / short); a square becomes size x size.
// The eval recipe's resize and the decoded cache's shrink both use it.
void sslc_resize_short_side_dims(int64_t height, int64_t width, int64_t size, int64_t *out_h,
                                 int64_t *out_w);

// The naive twin: the same arithmetic, one output pixel at a time, with no
// pass skipped. Tests compare the two.
sslc_status sslc_resize_bilinear_naive(uint8_t *dst, int64_t out_h, int64_t out_w,
                                       const uint8_t *src, int64_t src_h, int64_t src_w,
                                       int64_t src_stride, int64_t C, const double box[4]);

#endif
