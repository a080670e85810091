#include "src/cli/recipe_args.h"

#include <math.h>

void sslc_recipe_overrides_init(sslc_recipe_overrides *o)
{
    double *v = &o->crop_scale_min;
    for (int i = 0; i < SSLC_RECIPE_ARG_COUNT; i++)
        v[i] = NAN;
}

void sslc_recipe_args(sslc_arg *a, sslc_recipe_overrides *o)
{
    const sslc_arg list[SSLC_RECIPE_ARG_COUNT] = {
        {"crop-scale-min", SSLC_ARG_FLOAT, &o->crop_scale_min, "random resized crop: smallest area fraction", NULL, 0, 1},
        {"crop-scale-max", SSLC_ARG_FLOAT, &o->crop_scale_max, "random resized crop: largest area fraction", NULL, 0, 1},
        {"crop-ratio-min", SSLC_ARG_FLOAT, &o->crop_ratio_min, "random resized crop: smallest aspect ratio", NULL, 0.01, 100},
        {"crop-ratio-max", SSLC_ARG_FLOAT, &o->crop_ratio_max, "random resized crop: largest aspect ratio", NULL, 0.01, 100},
        {"flip-p", SSLC_ARG_FLOAT, &o->flip_p, "horizontal flip probability", NULL, 0, 1},
        {"jitter-p", SSLC_ARG_FLOAT, &o->jitter_p, "color jitter probability", NULL, 0, 1},
        {"jitter", SSLC_ARG_FLOAT, &o->jitter_strength, "color strength s: brightness/contrast/saturation 0.8s, hue 0.2s", NULL, 0, 10},
        {"brightness", SSLC_ARG_FLOAT, &o->brightness, "jitter brightness", NULL, 0, 10},
        {"contrast", SSLC_ARG_FLOAT, &o->contrast, "jitter contrast", NULL, 0, 10},
        {"saturation", SSLC_ARG_FLOAT, &o->saturation, "jitter saturation", NULL, 0, 10},
        {"hue", SSLC_ARG_FLOAT, &o->hue, "jitter hue", NULL, 0, 0.5},
        {"grayscale-p", SSLC_ARG_FLOAT, &o->gray_p, "random grayscale probability", NULL, 0, 1},
        {"blur-p", SSLC_ARG_FLOAT, &o->blur_p, "Gaussian blur probability", NULL, 0, 1},
        {"blur-sigma-min", SSLC_ARG_FLOAT, &o->blur_sigma_min, "blur sigma lower bound", NULL, 0.01, 100},
        {"blur-sigma-max", SSLC_ARG_FLOAT, &o->blur_sigma_max, "blur sigma upper bound", NULL, 0.01, 100},
        {"solarize-p", SSLC_ARG_FLOAT, &o->solarize_p, "solarization probability", NULL, 0, 1},
        {"mean", SSLC_ARG_FLOAT, &o->mean, "normalisation mean (every channel)", NULL, -10, 10},
        {"std", SSLC_ARG_FLOAT, &o->std, "normalisation std (every channel)", NULL, 1e-6, 100},
    };
    for (int i = 0; i < SSLC_RECIPE_ARG_COUNT; i++)
        a[i] = list[i];
}

static void set(double *field, double v)
{
    if (!isnan(v))
        *field = v;
}

sslc_status sslc_recipe_overrides_apply(sslc_recipe *r, const sslc_recipe_overrides *o)
{
    set(&r->crop_scale_min, o->crop_scale_min);
    set(&r->crop_scale_max, o->crop_scale_max);
    set(&r->crop_ratio_min, o->crop_ratio_min);
    set(&r->crop_ratio_max, o->crop_ratio_max);
    set(&r->flip_p, o->flip_p);
    set(&r->jitter_p, o->jitter_p);
    set(&r->jitter_strength, o->jitter_strength);
    bool single = !isnan(o->brightness) || !isnan(o->contrast) || !isnan(o->saturation) ||
                  !isnan(o->hue);
    if (single && r->jitter_strength > 0) {
        // A strength sets all four factors; a factor given alone then
        // replaces its part of it.
        r->brightness = r->contrast = r->saturation = 0.8 * r->jitter_strength;
        r->hue = 0.2 * r->jitter_strength;
        r->jitter_strength = 0;
    }
    set(&r->brightness, o->brightness);
    set(&r->contrast, o->contrast);
    set(&r->saturation, o->saturation);
    set(&r->hue, o->hue);
    set(&r->gray_p, o->gray_p);
    set(&r->blur_p, o->blur_p);
    set(&r->blur_sigma_min, o->blur_sigma_min);
    set(&r->blur_sigma_max, o->blur_sigma_max);
    set(&r->solarize_p, o->solarize_p);
    for (int c = 0; c < 3; c++) {
        set(&r->mean[c], o->mean);
        set(&r->std[c], o->std);
    }
    return sslc_recipe_finalize(r);
}

void sslc_recipe_overrides_resolve(sslc_recipe_overrides *o, const sslc_recipe *r)
{
    *o = (sslc_recipe_overrides){
        .crop_scale_min = r->crop_scale_min, .crop_scale_max = r->crop_scale_max,
        .crop_ratio_min = r->crop_ratio_min, .crop_ratio_max = r->crop_ratio_max,
        .flip_p = r->flip_p, .jitter_p = r->jitter_p,
        .jitter_strength = 0, // finalize turned it into the four factors below
        .brightness = r->brightness, .contrast = r->contrast, .saturation = r->saturation,
        .hue = r->hue, .gray_p = r->gray_p, .blur_p = r->blur_p,
        .blur_sigma_min = r->blur_sigma_min, .blur_sigma_max = r->blur_sigma_max,
        .solarize_p = r->solarize_p, .mean = NAN, .std = NAN};
    // One value stands for every channel; per-channel defaults stay "auto".
    bool same = r->channels == 1 || (r->mean[0] == r->mean[1] && r->mean[1] == r->mean[2] &&
                                     r->std[0] == r->std[1] && r->std[1] == r->std[2]);
    if (same) {
        o->mean = r->mean[0];
        o->std = r->std[0];
    }
}
