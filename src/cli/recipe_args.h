// Command-line overrides of an augmentation recipe, declared once and
// shared by every command that makes views (augment-preview, pretrain,
// linear-eval): the recipe's defaults depend on its name, size and
// channels, which are only known after parsing, so options land in an
// overrides struct (NaN / -1 = unset) that is applied afterwards.
#ifndef SSLC_CLI_RECIPE_ARGS_H
#define SSLC_CLI_RECIPE_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "src/cli/args.h"

typedef struct sslc_recipe_overrides {
    double crop_scale_min, crop_scale_max, crop_ratio_min, crop_ratio_max;
    double flip_p, jitter_p, jitter_strength, brightness, contrast, saturation, hue;
    double gray_p, blur_p, blur_sigma_min, blur_sigma_max, solarize_p;
    int64_t blur_kernel, solarize_threshold, eval_resize;
    double mean[3], std[3];
    bool scaled_decode;
} sslc_recipe_overrides;

enum { SSLC_RECIPE_ARGS_MAX = 32 };

// Marks everything unset.
void sslc_recipe_overrides_init(sslc_recipe_overrides *ov);

// Writes the option table (--crop-scale-min, --jitter-strength, --blur-p,
// ...) pointing into ov to args[0..return) (at most SSLC_RECIPE_ARGS_MAX).
size_t sslc_recipe_args(sslc_arg *args, size_t cap, sslc_recipe_overrides *ov);

// Copies the set values into r (filled by sslc_recipe_defaults) and
// re-checks it with sslc_recipe_finalize. An explicit --brightness etc.
// wins over --jitter-strength.
sslc_status sslc_recipe_overrides_apply(sslc_recipe *r, const sslc_recipe_overrides *ov);

// Writes the resolved recipe back into ov, so the printed configuration
// shows every value and rebuilds the same recipe when parsed again (resume).
void sslc_recipe_overrides_resolve(sslc_recipe_overrides *ov, const sslc_recipe *r);

#endif
