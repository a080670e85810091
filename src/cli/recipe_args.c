#include "src/cli/recipe_args.h"

#include <math.h>
#include <string.h>

void sslc_recipe_overrides_init(sslc_recipe_overrides *ov)
{
    double *d[] = {&ov->crop_scale_min, &ov->crop_scale_max, &ov->crop_ratio_min,
                   &ov->crop_ratio_max, &ov->flip_p,         &ov->jitter_p,
                   &ov->jitter_strength, &ov->brightness,    &ov->contrast,
                   &ov->saturation,     &ov->hue,            &ov->gray_p,
                   &ov->blur_p,         &ov->blur_sigma_min, &ov->blur_sigma_max,
                   &ov->solarize_p};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        *d[i] = NAN;
    for (int c = 0; c < 3; c++)
        ov->mean[c] = ov->std[c] = NAN;
    ov->blur_kernel = ov->solarize_threshold = ov->eval_resize = -1;
    ov->scaled_decode = false;
}

size_t sslc_recipe_args(sslc_arg *args, size_t cap, sslc_recipe_overrides *ov)
{
    const sslc_arg all[] = {
        {"crop-scale-min", SSLC_ARG_FLOAT, &ov->crop_scale_min,
         "random crop: smallest area fraction (nan: recipe default)", NULL, 0, 0},
        {"crop-scale-max", SSLC_ARG_FLOAT, &ov->crop_scale_max,
         "random crop: largest area fraction", NULL, 0, 0},
        {"crop-ratio-min", SSLC_ARG_FLOAT, &ov->crop_ratio_min, "random crop: smallest w/h", NULL,
         0, 0},
        {"crop-ratio-max", SSLC_ARG_FLOAT, &ov->crop_ratio_max, "random crop: largest w/h", NULL,
         0, 0},
        {"flip-p", SSLC_ARG_FLOAT, &ov->flip_p, "probability of a horizontal flip", NULL, 0, 0},
        {"jitter-p", SSLC_ARG_FLOAT, &ov->jitter_p, "probability of color jitter", NULL, 0, 0},
        {"jitter-strength", SSLC_ARG_FLOAT, &ov->jitter_strength,
         "SimCLR color strength s: brightness = contrast = saturation = 0.8 s, hue = 0.2 s", NULL,
         0, 0},
        {"brightness", SSLC_ARG_FLOAT, &ov->brightness, "jitter brightness b: factor in [1-b, 1+b]",
         NULL, 0, 0},
        {"contrast", SSLC_ARG_FLOAT, &ov->contrast, "jitter contrast", NULL, 0, 0},
        {"saturation", SSLC_ARG_FLOAT, &ov->saturation, "jitter saturation", NULL, 0, 0},
        {"hue", SSLC_ARG_FLOAT, &ov->hue, "jitter hue h: shift in [-h, h], h <= 0.5", NULL, 0, 0},
        {"grayscale-p", SSLC_ARG_FLOAT, &ov->gray_p, "probability of grayscale", NULL, 0, 0},
        {"blur-p", SSLC_ARG_FLOAT, &ov->blur_p, "probability of Gaussian blur", NULL, 0, 0},
        {"blur-sigma-min", SSLC_ARG_FLOAT, &ov->blur_sigma_min, "blur: smallest sigma", NULL, 0,
         0},
        {"blur-sigma-max", SSLC_ARG_FLOAT, &ov->blur_sigma_max, "blur: largest sigma", NULL, 0, 0},
        {"blur-kernel", SSLC_ARG_INT, &ov->blur_kernel,
         "blur kernel size, odd (-1: about 10% of the view side)", NULL, 0, 0},
        {"solarize-p", SSLC_ARG_FLOAT, &ov->solarize_p, "probability of solarization", NULL, 0, 0},
        {"solarize-threshold", SSLC_ARG_INT, &ov->solarize_threshold,
         "solarize pixels >= this (-1: 128)", NULL, 0, 0},
        {"eval-resize", SSLC_ARG_INT, &ov->eval_resize,
         "eval recipe: short side before the center crop (-1: size*256/224, or size when <= 64)",
         NULL, 0, 0},
        {"mean-r", SSLC_ARG_FLOAT, &ov->mean[0], "normalisation mean, channel 0 (or gray)", NULL,
         0, 0},
        {"mean-g", SSLC_ARG_FLOAT, &ov->mean[1], "normalisation mean, channel 1", NULL, 0, 0},
        {"mean-b", SSLC_ARG_FLOAT, &ov->mean[2], "normalisation mean, channel 2", NULL, 0, 0},
        {"std-r", SSLC_ARG_FLOAT, &ov->std[0], "normalisation std, channel 0 (or gray)", NULL, 0,
         0},
        {"std-g", SSLC_ARG_FLOAT, &ov->std[1], "normalisation std, channel 1", NULL, 0, 0},
        {"std-b", SSLC_ARG_FLOAT, &ov->std[2], "normalisation std, channel 2", NULL, 0, 0},
        {"scaled-decode", SSLC_ARG_FLAG, &ov->scaled_decode,
         "decode large JPEGs at 1/2, 1/4, 1/8 when every crop stays >= the view size (faster, "
         "not torchvision's pixels)",
         NULL, 0, 0},
    };
    size_t n = sizeof all / sizeof all[0];
    if (n > cap)
        n = cap;
    memcpy(args, all, n * sizeof all[0]);
    return n;
}

static void take(double *dst, double v)
{
    if (!isnan(v))
        *dst = v;
}

sslc_status sslc_recipe_overrides_apply(sslc_recipe *r, const sslc_recipe_overrides *ov)
{
    take(&r->crop_scale_min, ov->crop_scale_min);
    take(&r->crop_scale_max, ov->crop_scale_max);
    take(&r->crop_ratio_min, ov->crop_ratio_min);
    take(&r->crop_ratio_max, ov->crop_ratio_max);
    take(&r->flip_p, ov->flip_p);
    take(&r->jitter_p, ov->jitter_p);
    if (!isnan(ov->jitter_strength)) {
        r->jitter_strength = ov->jitter_strength;
        sslc_status st = sslc_recipe_finalize(r); // expands s into the four factors
        if (st != SSLC_OK)
            return st;
    }
    r->jitter_strength = 0; // explicit factors below win
    take(&r->brightness, ov->brightness);
    take(&r->contrast, ov->contrast);
    take(&r->saturation, ov->saturation);
    take(&r->hue, ov->hue);
    take(&r->gray_p, ov->gray_p);
    take(&r->blur_p, ov->blur_p);
    take(&r->blur_sigma_min, ov->blur_sigma_min);
    take(&r->blur_sigma_max, ov->blur_sigma_max);
    take(&r->solarize_p, ov->solarize_p);
    if (ov->blur_kernel >= 0)
        r->blur_kernel = ov->blur_kernel;
    if (ov->solarize_threshold >= 0)
        r->solarize_threshold = ov->solarize_threshold;
    if (ov->eval_resize >= 0)
        r->eval_resize = ov->eval_resize;
    for (int c = 0; c < 3; c++) {
        take(&r->mean[c], ov->mean[c]);
        take(&r->std[c], ov->std[c]);
    }
    if (ov->scaled_decode)
        r->scaled_decode = true;
    return sslc_recipe_finalize(r);
}

void sslc_recipe_overrides_resolve(sslc_recipe_overrides *ov, const sslc_recipe *r)
{
    *ov = (sslc_recipe_overrides){
        .crop_scale_min = r->crop_scale_min, .crop_scale_max = r->crop_scale_max,
        .crop_ratio_min = r->crop_ratio_min, .crop_ratio_max = r->crop_ratio_max,
        .flip_p = r->flip_p, .jitter_p = r->jitter_p,
        .jitter_strength = NAN, // finalize expanded it into the four factors
        .brightness = r->brightness, .contrast = r->contrast, .saturation = r->saturation,
        .hue = r->hue, .gray_p = r->gray_p, .blur_p = r->blur_p,
        .blur_sigma_min = r->blur_sigma_min, .blur_sigma_max = r->blur_sigma_max,
        .solarize_p = r->solarize_p, .blur_kernel = r->blur_kernel,
        .solarize_threshold = r->solarize_threshold, .eval_resize = r->eval_resize,
        .scaled_decode = r->scaled_decode};
    for (int c = 0; c < 3; c++) {
        ov->mean[c] = c < r->channels ? r->mean[c] : NAN;
        ov->std[c] = c < r->channels ? r->std[c] : NAN;
    }
}
