// View recipes: every parameter of the random augmentation that turns an
// image into one view, with the published defaults, and the function that
// draws and applies it.
//
// Randomness is counter-based: the draws of op k for view v of dataset
// index i in epoch e come from sslc_rng_make(seed, e, i, v, k), so a view
// is the same whatever the thread count, batch order or resume point.
#ifndef SSLC_AUGMENT_RECIPE_H
#define SSLC_AUGMENT_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/ops.h"
#include "data/resize.h"
#include "src/core/status.h"

typedef struct sslc_recipe {
    char name[16];
    int64_t size;     // output height = width
    int64_t channels; // 1 or 3
    bool random_crop; // false: eval (resize short side, center crop)
    double crop_scale_min, crop_scale_max; // area fraction
    double crop_ratio_min, crop_ratio_max; // width / height
    int64_t eval_resize;                   // eval: short side before the center crop
    double flip_p;
    // Color jitter: applied with probability jitter_p; factors drawn from
    // [max(0, 1 - b), 1 + b], ... and hue from [-h, h], in a random order.
    double jitter_p, brightness, contrast, saturation, hue;
    double jitter_strength;  // > 0: sets b = c = s = 0.8 x, hue = 0.2 x (SimCLR's s)
    bool gray_before_jitter; // MoCo v1 order
    double gray_p;
    double blur_p, blur_sigma_min, blur_sigma_max;
    int64_t blur_kernel; // odd; 0: about 10% of the side (int(0.1 size), made odd)
    double solarize_p;
    int64_t solarize_threshold;
    double mean[3], std[3]; // normalisation per channel
    // JPEG: decode at 1/2, 1/4 or 1/8 scale when every crop of the image
    // still has at least the output size at that scale (not torchvision's
    // pixels; see docs/data.md).
    bool scaled_decode;
} sslc_recipe;

// Fills r with the published defaults of "simclr" (SimCLR, Chen et al.
// 2020: s = 1 and blur for images larger than 64 pixels, s = 0.5 and no
// blur for small ones as in its CIFAR-10 setup), "moco-v1" (He et al. 2019),
// "moco-v2" (Chen et al. 2020) or "eval" (resize + center crop), for square
// outputs of size and 1 or 3 channels. Normalisation: Fashion-MNIST's mean
// 0.2860 / std 0.3530 for 1 channel, ImageNet's for 3.
sslc_status sslc_recipe_defaults(sslc_recipe *r, const char *name, int64_t size, int64_t channels);

// Multi-crop (SwAV, Caron et al. 2020): the recipe of the small local views,
// the global recipe r with another output size and crop-scale range (every
// other op alike; an automatic blur kernel follows the new size).
sslc_status sslc_recipe_local(sslc_recipe *local, const sslc_recipe *r, int64_t size,
                              double scale_min, double scale_max);

// Applies jitter_strength and the blur-kernel rule, then checks every
// range; a message says which parameter is wrong and how.
sslc_status sslc_recipe_finalize(sslc_recipe *r);

// Draw streams (the op coordinate of the RNG key).
enum {
    SSLC_OP_CROP = 1,
    SSLC_OP_FLIP = 2,
    SSLC_OP_JITTER = 3,
    SSLC_OP_GRAY = 4,
    SSLC_OP_BLUR = 5,
    SSLC_OP_SOLARIZE = 6,
};

// Everything drawn for one view, so the draws can be tested and logged.
typedef struct sslc_view_params {
    sslc_crop crop; // in full-size source pixels
    bool flip;
    bool jitter;
    int order[4]; // 0 brightness, 1 contrast, 2 saturation, 3 hue
    double brightness, contrast, saturation, hue;
    bool gray;
    bool blur;
    double sigma;
    bool solarize;
} sslc_view_params;

// Draws the parameters of view `view` of dataset index `index` for a
// source of H x W full-size pixels.
void sslc_recipe_draw(const sslc_recipe *r, uint64_t seed, uint64_t epoch, uint64_t index,
                      uint64_t view, int64_t H, int64_t W, sslc_view_params *p);

// The blur kernel size in use (after finalize).
int64_t sslc_recipe_blur_kernel(const sslc_recipe *r);

// Per-worker scratch for sslc_recipe_apply.
typedef struct sslc_view_scratch {
    sslc_scratch resize, blur, pix, mid;
} sslc_view_scratch;
void sslc_view_scratch_free(sslc_view_scratch *s);

// Makes one view. out: (size, size, channels) float, normalised.
// src: (h, w, channels) uint8, decoded at 1/scale of the full size that p
// was drawn for (scale 1: full size).
sslc_status sslc_recipe_apply(float *out, const sslc_recipe *r, const sslc_view_params *p,
                              const uint8_t *src, int64_t h, int64_t w, int scale,
                              sslc_view_scratch *s);

// The same, stopping before normalisation: out (size, size, channels) uint8.
sslc_status sslc_recipe_apply_u8(uint8_t *out, const sslc_recipe *r, const sslc_view_params *p,
                                 const uint8_t *src, int64_t h, int64_t w, int scale,
                                 sslc_view_scratch *s);

// The largest JPEG DCT denominator (1, 2, 4, 8) such that every crop in
// p[0..n) keeps at least the output size (eval: the resize) when decoded
// at that scale; 1 when scaled_decode is off.
int sslc_recipe_decode_scale(const sslc_recipe *r, const sslc_view_params *p, int n, int64_t H,
                             int64_t W);

#endif
