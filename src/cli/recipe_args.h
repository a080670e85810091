// Command-line overrides of an augmentation recipe. Each option starts
// unset ("auto": the recipe's published default, which depends on the
// recipe, the image size and the channels known only after the dataset is
// opened); the ones the user sets replace the default.
#ifndef SSLC_CLI_RECIPE_ARGS_H
#define SSLC_CLI_RECIPE_ARGS_H

#include "augment/recipe.h"
#include "src/cli/args.h"

typedef struct sslc_recipe_overrides {
    double crop_scale_min, crop_scale_max, crop_ratio_min, crop_ratio_max;
    double flip_p, jitter_p, jitter_strength, brightness, contrast, saturation, hue;
    double gray_p, blur_p, blur_sigma_min, blur_sigma_max, solarize_p, mean, std;
} sslc_recipe_overrides;

enum { SSLC_RECIPE_ARG_COUNT = 18 };

void sslc_recipe_overrides_init(sslc_recipe_overrides *o);
// Writes SSLC_RECIPE_ARG_COUNT options pointing into o at args.
void sslc_recipe_args(sslc_arg *args, sslc_recipe_overrides *o);
// Applies the set overrides to r (after sslc_recipe_defaults), then
// sslc_recipe_finalize checks the result.
sslc_status sslc_recipe_overrides_apply(sslc_recipe *r, const sslc_recipe_overrides *o);

// Writes the resolved recipe back into o, so the printed configuration
// shows every value and reproduces the recipe when parsed again (resume).
void sslc_recipe_overrides_resolve(sslc_recipe_overrides *o, const sslc_recipe *r);

#endif
