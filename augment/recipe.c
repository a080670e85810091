#include "augment/recipe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void set_norm(sslc_recipe *r)
{
    if (r->channels == 1) {
        r->mean[0] = r->mean[1] = r->mean[2] = 0.2860;
        r->std[0] = r->std[1] = r->std[2] = 0.3530;
    } else {
        const double m[3] = {0.485, 0.456, 0.406}, s[3] = {0.229, 0.224, 0.225};
        memcpy(r->mean, m, sizeof m);
        memcpy(r->std, s, sizeof s);
    }
}

sslc_status sslc_recipe_defaults(sslc_recipe *r, const char *name, int64_t size, int64_t channels)
{
    memset(r, 0, sizeof *r);
    if (size < 1 || size > 8192)
        return sslc_error(SSLC_ERR_INVALID, "recipe: image size %lld is out of range [1, 8192]",
                          (long long)size);
    if (channels != 1 && channels != 3)
        return sslc_error(SSLC_ERR_INVALID, "recipe: channels must be 1 or 3, not %lld",
                          (long long)channels);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->size = size;
    r->channels = channels;
    r->crop_scale_min = 0.08;
    r->crop_scale_max = 1.0;
    r->crop_ratio_min = 3.0 / 4.0;
    r->crop_ratio_max = 4.0 / 3.0;
    r->eval_resize = size <= 64 ? size : (int64_t)floor((double)size * 256.0 / 224.0 + 0.5);
    r->blur_sigma_min = 0.1;
    r->blur_sigma_max = 2.0;
    r->solarize_threshold = 128;
    r->random_crop = true;
    set_norm(r);
    if (!strcmp(name, "simclr")) {
        // SimCLR appendix A: crop, flip, color distortion (p 0.8, strength
        // s), grayscale p 0.2, blur p 0.5 (dropped for CIFAR-sized images).
        bool small = size <= 64;
        r->flip_p = 0.5;
        r->jitter_p = 0.8;
        r->jitter_strength = small ? 0.5 : 1.0;
        r->gray_p = 0.2;
        r->blur_p = small ? 0.0 : 0.5;
    } else if (!strcmp(name, "moco-v1")) {
        // MoCo v1 (main_moco.py): crop scale (0.2, 1), grayscale p 0.2,
        // then color jitter (0.4, 0.4, 0.4, 0.4) always, flip.
        r->crop_scale_min = 0.2;
        r->gray_p = 0.2;
        r->gray_before_jitter = true;
        r->jitter_p = 1.0;
        r->brightness = r->contrast = r->saturation = r->hue = 0.4;
        r->flip_p = 0.5;
    } else if (!strcmp(name, "moco-v2")) {
        // MoCo v2: crop scale (0.2, 1), jitter (0.4, 0.4, 0.4, 0.1) p 0.8,
        // grayscale p 0.2, blur sigma [0.1, 2] p 0.5, flip.
        r->crop_scale_min = 0.2;
        r->jitter_p = 0.8;
        r->brightness = r->contrast = r->saturation = 0.4;
        r->hue = 0.1;
        r->gray_p = 0.2;
        r->blur_p = 0.5;
        r->flip_p = 0.5;
    } else if (!strcmp(name, "eval")) {
        r->random_crop = false;
    } else {
        return sslc_error(SSLC_ERR_INVALID,
                          "unknown recipe '%s' (choose simclr, moco-v1, moco-v2 or eval)", name);
    }
    return sslc_recipe_finalize(r);
}

sslc_status sslc_recipe_local(sslc_recipe *local, const sslc_recipe *r, int64_t size,
                              double scale_min, double scale_max)
{
    if (!r->random_crop)
        return sslc_error(SSLC_ERR_INVALID, "recipe: local crops need a random-crop recipe, not "
                                            "'%s'",
                          r->name);
    *local = *r;
    local->size = size;
    local->crop_scale_min = scale_min;
    local->crop_scale_max = scale_max;
    local->jitter_strength = 0; // r is finalized: its factors are already expanded
    sslc_status st = sslc_recipe_finalize(local);
    if (st)
        return sslc_error_prefix(st, "local crops (--local-size %lld, --local-scale %g,%g)",
                                 (long long)size, scale_min, scale_max);
    return SSLC_OK;
}

int64_t sslc_recipe_blur_kernel(const sslc_recipe *r)
{
    if (r->blur_kernel > 0)
        return r->blur_kernel;
    int64_t k = (int64_t)(0.1 * (double)r->size);
    if (k % 2 == 0)
        k += 1;
    return k < 3 ? 3 : k;
}

static sslc_status bad(const char *what, double v, const char *range)
{
    return sslc_error(SSLC_ERR_INVALID, "recipe: %s = %g is out of range; it must be %s", what, v,
                      range);
}

sslc_status sslc_recipe_finalize(sslc_recipe *r)
{
    if (r->jitter_strength > 0) {
        double s = r->jitter_strength;
        r->brightness = r->contrast = r->saturation = 0.8 * s;
        r->hue = 0.2 * s;
    }
    if (r->size < 1)
        return bad("size", (double)r->size, ">= 1");
    if (r->channels != 1 && r->channels != 3)
        return bad("channels", (double)r->channels, "1 or 3");
    if (!(r->crop_scale_min > 0 && r->crop_scale_min <= r->crop_scale_max))
        return bad("crop-scale-min", r->crop_scale_min, "in (0, crop-scale-max]");
    if (!(r->crop_scale_max <= 1.0))
        return bad("crop-scale-max", r->crop_scale_max, "<= 1");
    if (!(r->crop_ratio_min > 0 && r->crop_ratio_min <= r->crop_ratio_max))
        return bad("crop-ratio-min", r->crop_ratio_min, "in (0, crop-ratio-max]");
    const struct {
        const char *name;
        double v;
    } probs[] = {{"flip-p", r->flip_p},         {"jitter-p", r->jitter_p},
                 {"grayscale-p", r->gray_p},     {"blur-p", r->blur_p},
                 {"solarize-p", r->solarize_p}};
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        if (!(probs[i].v >= 0 && probs[i].v <= 1))
            return bad(probs[i].name, probs[i].v, "a probability in [0, 1]");
    if (!(r->brightness >= 0))
        return bad("brightness", r->brightness, ">= 0");
    if (!(r->contrast >= 0))
        return bad("contrast", r->contrast, ">= 0");
    if (!(r->saturation >= 0))
        return bad("saturation", r->saturation, ">= 0");
    if (!(r->hue >= 0 && r->hue <= 0.5))
        return bad("hue", r->hue, "in [0, 0.5]");
    if (!(r->blur_sigma_min > 0 && r->blur_sigma_min <= r->blur_sigma_max))
        return bad("blur-sigma-min", r->blur_sigma_min, "in (0, blur-sigma-max]");
    int64_t k = sslc_recipe_blur_kernel(r);
    if (k % 2 == 0)
        return bad("blur-kernel", (double)k, "odd");
    if (r->blur_p > 0 && k / 2 >= r->size)
        return sslc_error(SSLC_ERR_INVALID,
                          "recipe: blur kernel %lld is too large for %lld-pixel views (reflect "
                          "padding needs kernel/2 < size); lower --blur-kernel or --blur-p 0",
                          (long long)k, (long long)r->size);
    if (r->solarize_threshold < 0 || r->solarize_threshold > 256)
        return bad("solarize-threshold", (double)r->solarize_threshold, "in [0, 256]");
    if (!r->random_crop && r->eval_resize < r->size)
        return sslc_error(SSLC_ERR_INVALID,
                          "recipe: eval resize %lld is smaller than the %lld-pixel center crop",
                          (long long)r->eval_resize, (long long)r->size);
    for (int64_t c = 0; c < r->channels; c++)
        if (!(r->std[c] > 0))
            return bad("std", r->std[c], "> 0");
    return SSLC_OK;
}

void sslc_recipe_draw(const sslc_recipe *r, uint64_t seed, uint64_t epoch, uint64_t index,
                      uint64_t view, int64_t H, int64_t W, sslc_view_params *p)
{
    memset(p, 0, sizeof *p);
    if (!r->random_crop) {
        p->crop = (sslc_crop){0, 0, H, W};
        for (int i = 0; i < 4; i++)
            p->order[i] = i;
        return;
    }
    sslc_rng g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_CROP);
    p->crop = sslc_aug_crop_params(&g, H, W, r->crop_scale_min, r->crop_scale_max,
                                   r->crop_ratio_min, r->crop_ratio_max);
    g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_FLIP);
    p->flip = sslc_rng_uniform(&g) < r->flip_p;
    g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_JITTER);
    // RandomApply: applied unless p < U.
    p->jitter = sslc_rng_uniform(&g) < r->jitter_p;
    int64_t perm[4];
    sslc_rng_permutation(&g, perm, 4);
    for (int i = 0; i < 4; i++)
        p->order[i] = (int)perm[i];
    double b = r->brightness, c = r->contrast, s = r->saturation;
    p->brightness = sslc_rng_range(&g, b < 1 ? 1 - b : 0, 1 + b);
    p->contrast = sslc_rng_range(&g, c < 1 ? 1 - c : 0, 1 + c);
    p->saturation = sslc_rng_range(&g, s < 1 ? 1 - s : 0, 1 + s);
    p->hue = sslc_rng_range(&g, -r->hue, r->hue);
    g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_GRAY);
    p->gray = sslc_rng_uniform(&g) < r->gray_p;
    g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_BLUR);
    p->blur = sslc_rng_uniform(&g) < r->blur_p;
    p->sigma = sslc_rng_range(&g, r->blur_sigma_min, r->blur_sigma_max);
    g = sslc_rng_make(seed, epoch, index, view, SSLC_OP_SOLARIZE);
    p->solarize = sslc_rng_uniform(&g) < r->solarize_p;
}

int sslc_recipe_decode_scale(const sslc_recipe *r, const sslc_view_params *p, int n, int64_t H,
                             int64_t W)
{
    if (!r->scaled_decode)
        return 1;
    for (int d = 8; d > 1; d /= 2) {
        bool ok = true;
        for (int v = 0; v < n && ok; v++) {
            if (r->random_crop)
                ok = p[v].crop.height / d >= r->size && p[v].crop.width / d >= r->size;
            else
                ok = (H < W ? H : W) / d >= r->eval_resize;
        }
        if (ok)
            return d;
    }
    return 1;
}

static void jitter(uint8_t *img, int64_t npix, int64_t C, const sslc_view_params *p)
{
    for (int i = 0; i < 4; i++) {
        switch (p->order[i]) {
        case 0: sslc_aug_brightness(img, npix * C, p->brightness); break;
        case 1: sslc_aug_contrast(img, npix, C, p->contrast); break;
        case 2: sslc_aug_saturation(img, npix, C, p->saturation); break;
        default: sslc_aug_hue(img, npix, C, p->hue); break;
        }
    }
}

sslc_status sslc_recipe_apply_u8(uint8_t *out, const sslc_recipe *r, const sslc_view_params *p,
                                 const uint8_t *src, int64_t h, int64_t w, int scale,
                                 sslc_view_scratch *s)
{
    int64_t S = r->size, C = r->channels, npix = S * S;
    sslc_status st;
    if (r->random_crop) {
        if (scale <= 1) {
            st = sslc_aug_resized_crop(out, S, S, src, h, w, C, p->crop, &s->resize);
        } else {
            // The crop in the scaled image's coordinates (fractional box).
            double d = (double)scale;
            double box[4] = {(double)p->crop.left / d, (double)p->crop.top / d,
                             (double)(p->crop.left + p->crop.width) / d,
                             (double)(p->crop.top + p->crop.height) / d};
            if (box[2] > (double)w)
                box[2] = (double)w;
            if (box[3] > (double)h)
                box[3] = (double)h;
            st = sslc_resize_bilinear(out, S, S, src, h, w, w * C, C, box, &s->resize);
        }
    } else {
        // torchvision Resize(eval_resize) then CenterCrop(size), from
        // whatever scale the image was decoded at.
        int64_t rh, rw;
        sslc_resize_short_side_dims(h, w, r->eval_resize, &rh, &rw);
        uint8_t *mid = sslc_scratch_get(&s->mid, (size_t)(rh * rw * C));
        if (!mid)
            return SSLC_ERR_NOMEM;
        double box[4] = {0, 0, (double)w, (double)h};
        st = sslc_resize_bilinear(mid, rh, rw, src, h, w, w * C, C, box, &s->resize);
        if (st != SSLC_OK)
            return st;
        sslc_crop c = sslc_aug_center_crop_params(rh, rw, S, S);
        for (int64_t y = 0; y < S; y++)
            memcpy(out + y * S * C, mid + ((c.top + y) * rw + c.left) * C, (size_t)(S * C));
        return SSLC_OK;
    }
    if (st != SSLC_OK)
        return st;
    if (p->flip)
        sslc_aug_hflip(out, S, S, C);
    if (r->gray_before_jitter && p->gray)
        sslc_aug_grayscale(out, npix, C);
    if (p->jitter)
        jitter(out, npix, C, p);
    if (!r->gray_before_jitter && p->gray)
        sslc_aug_grayscale(out, npix, C);
    if (p->blur) {
        st = sslc_aug_gaussian_blur(out, S, S, C, sslc_recipe_blur_kernel(r), p->sigma, &s->blur);
        if (st != SSLC_OK)
            return st;
    }
    if (p->solarize)
        sslc_aug_solarize(out, npix * C, r->solarize_threshold);
    return SSLC_OK;
}

sslc_status sslc_recipe_apply(float *out, const sslc_recipe *r, const sslc_view_params *p,
                              const uint8_t *src, int64_t h, int64_t w, int scale,
                              sslc_view_scratch *s)
{
    int64_t S = r->size, C = r->channels;
    uint8_t *u8 = sslc_scratch_get(&s->pix, (size_t)(S * S * C));
    if (!u8)
        return SSLC_ERR_NOMEM;
    sslc_status st = sslc_recipe_apply_u8(u8, r, p, src, h, w, scale, s);
    if (st != SSLC_OK)
        return st;
    float mean[3], std[3];
    for (int c = 0; c < 3; c++)
        mean[c] = (float)r->mean[c], std[c] = (float)r->std[c];
    sslc_aug_to_float(out, u8, S * S, C, mean, std);
    return SSLC_OK;
}

void sslc_view_scratch_free(sslc_view_scratch *s)
{
    sslc_scratch_free(&s->resize);
    sslc_scratch_free(&s->blur);
    sslc_scratch_free(&s->pix);
    sslc_scratch_free(&s->mid);
}
