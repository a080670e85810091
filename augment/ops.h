// Image ops on uint8 HWC images (C = 1 or 3). Each is a pure function of
// the image and its parameters; the random draws happen elsewhere
// (augment/recipe.h), so every op can be checked against torchvision on
// fixed, explicit parameters. Semantics follow torchvision 0.14 applied to
// PIL images (the usual SimCLR / MoCo data path), down to Pillow's integer
// arithmetic, so outputs match to the last unit except where noted.
#ifndef SSLC_AUGMENT_OPS_H
#define SSLC_AUGMENT_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "data/resize.h"
#include "src/core/rng.h"
#include "src/core/status.h"

// A crop window in source pixels.
typedef struct sslc_crop {
    int64_t top, left, height, width;
} sslc_crop;

// torchvision RandomResizedCrop.get_params: up to 10 tries of (area
// fraction ~ U(scale), log aspect ~ U(log ratio)), sides rounded half to
// even as Python's round(); then the central crop clamped to ratio.
sslc_crop sslc_aug_crop_params(sslc_rng *rng, int64_t H, int64_t W, double scale_min,
                               double scale_max, double ratio_min, double ratio_max);

// torchvision CenterCrop offsets: int(round((H - h) / 2)).
sslc_crop sslc_aug_center_crop_params(int64_t H, int64_t W, int64_t h, int64_t w);

// dst: (out_h, out_w, C) = bilinear resize of the crop of src (H, W, C).
sslc_status sslc_aug_resized_crop(uint8_t *dst, int64_t out_h, int64_t out_w, const uint8_t *src,
                                  int64_t H, int64_t W, int64_t C, sslc_crop crop,
                                  sslc_scratch *scratch);

// img: (H, W, C), in place.
void sslc_aug_hflip(uint8_t *img, int64_t H, int64_t W, int64_t C);

// Pillow ImageEnhance: blend with a degenerate image, in float, truncated.
// img: (n) uint8 values (brightness: any layout).
void sslc_aug_brightness(uint8_t *img, int64_t n, double factor);
// img: (H*W, C); the degenerate image is the rounded mean luma.
void sslc_aug_contrast(uint8_t *img, int64_t npix, int64_t C, double factor);
// img: (H*W, C); blend with the luma image; no-op when C == 1.
void sslc_aug_saturation(uint8_t *img, int64_t npix, int64_t C, double factor);
// img: (H*W, C); Pillow HSV round trip with the hue byte shifted by
// uint8(hue * 255); hue in [-0.5, 0.5]; no-op when C == 1.
void sslc_aug_hue(uint8_t *img, int64_t npix, int64_t C, double hue);
// The naive twin: Pillow's per-pixel float conversion both ways.
void sslc_aug_hue_naive(uint8_t *img, int64_t npix, int64_t C, double hue);
// img: (H*W, C); luma replicated to every channel; no-op when C == 1.
void sslc_aug_grayscale(uint8_t *img, int64_t npix, int64_t C);
// Values >= threshold become 255 - value (Pillow ImageOps.solarize).
void sslc_aug_solarize(uint8_t *img, int64_t n, int64_t threshold);

// torchvision gaussian_blur: a float32 kernel exp(-x^2 / 2 sigma^2) over
// linspace(-(k-1)/2, (k-1)/2, k), normalised; reflect padding; result
// rounded half to even. Separable (torchvision convolves the 2-D outer
// product; the sums differ only in float rounding). ksize odd, and
// ksize / 2 < min(H, W). img: (H, W, C) in place.
sslc_status sslc_aug_gaussian_blur(uint8_t *img, int64_t H, int64_t W, int64_t C, int64_t ksize,
                                   double sigma, sslc_scratch *scratch);
// The naive twin: a direct 2-D convolution with the outer-product kernel.
sslc_status sslc_aug_gaussian_blur_naive(uint8_t *img, int64_t H, int64_t W, int64_t C,
                                         int64_t ksize, double sigma);

// ToTensor + Normalize: dst (H*W, C) float = (x / 255 - mean[c]) / std[c]
// in float32, as torchvision computes it.
void sslc_aug_to_float(float *restrict dst, const uint8_t *restrict src, int64_t npix, int64_t C,
                       const float *mean, const float *std);

#endif
