// augment/ops: each op against torchvision 0.14 (PIL path) on fixed,
// explicit parameters (tests/fixtures/augment_ops.h5, made by
// scripts/gen_augment_fixtures.py), and the optimised ops against their
// naive twins.
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/ops.h"
#include "data/resize.h"
#include "tests/harness.h"

static const char FIX[] = "augment_ops.h5";

typedef struct img {
    uint8_t *px;
    int64_t H, W, C;
} img;

static img load_input(const char *tag)
{
    char name[128];
    snprintf(name, sizeof name, "%s/input", tag);
    size_t n = 0;
    float *f = sslc_fixture_floats(FIX, name, &n);
    img r = {malloc(n), 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        r.px[i] = (uint8_t)f[i];
    free(f);
    r.C = strcmp(tag, "gray") == 0 ? 1 : 3;
    r.H = strcmp(tag, "rgb") == 0 ? 29 : strcmp(tag, "gray") == 0 ? 28 : 48;
    r.W = (int64_t)n / (r.H * r.C);
    return r;
}

// Compares uint8 pixels with a reference: at most max_diff anywhere, and
// at most frac_off of the values off by one (rounding of float ties).
static void check_pixels(const char *what, const uint8_t *got, const float *want, size_t n,
                         int max_diff, double frac_off)
{
    int worst = 0;
    size_t off = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        if (d > worst)
            worst = d, at = i;
        off += d != 0;
    }
    printf("  %-28s n=%zu max|diff|=%d (at %zu), %zu values differ\n", what, n, worst, at, off);
    if (worst > max_diff || (double)off > frac_off * (double)n)
        fail_msg("%s: max diff %d at [%zu] (got %d, want %g), %zu of %zu differ", what, worst, at,
                 got[at], want[at], off, n);
}

static float *ref(const char *tag, const char *what, size_t *n)
{
    char name[128];
    snprintf(name, sizeof name, "%s/%s", tag, what);
    return sslc_fixture_floats(FIX, name, n);
}

static void resized_crop_for(const char *tag)
{
    img in = load_input(tag);
    sslc_scratch s = {0};
    for (int k = 0; k < 6; k++) {
        char name[64];
        snprintf(name, sizeof name, "crop%d/params", k);
        float *p = ref(tag, name, NULL);
        sslc_crop c = {(int64_t)p[0], (int64_t)p[1], (int64_t)p[2], (int64_t)p[3]};
        int64_t oh = (int64_t)p[4], ow = (int64_t)p[5];
        size_t n;
        snprintf(name, sizeof name, "crop%d/output", k);
        float *want = ref(tag, name, &n);
        assert_int_equal(n, (size_t)(oh * ow * in.C));
        uint8_t *out = malloc(n), *naive = malloc(n);
        assert_int_equal(sslc_aug_resized_crop(out, oh, ow, in.px, in.H, in.W, in.C, c, &s),
                         SSLC_OK);
        snprintf(name, sizeof name, "%s resized_crop %d", tag, k);
        check_pixels(name, out, want, n, 0, 0.0); // Pillow's integer arithmetic: exact
        double box[4] = {0, 0, (double)c.width, (double)c.height};
        assert_int_equal(sslc_resize_bilinear_naive(naive, oh, ow,
                                                    in.px + (c.top * in.W + c.left) * in.C,
                                                    c.height, c.width, in.W * in.C, in.C, box),
                         SSLC_OK);
        assert_memory_equal(out, naive, n);
        free(out);
        free(naive);
        free(want);
        free(p);
    }
    sslc_scratch_free(&s);
    free(in.px);
}

static void resized_crop_matches_torchvision(void **state)
{
    (void)state;
    resized_crop_for("rgb");
    resized_crop_for("gray");
}

typedef void (*enhance_fn)(uint8_t *img, int64_t npix, int64_t C, double f);
static void brightness3(uint8_t *img, int64_t npix, int64_t C, double f)
{
    sslc_aug_brightness(img, npix * C, f);
}

static void enhance_for(const char *tag, const char *op, enhance_fn fn, int count, int max_diff)
{
    img in = load_input(tag);
    size_t n = (size_t)(in.H * in.W * in.C);
    uint8_t *work = malloc(n);
    for (int k = 0; k < count; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d/factor", op, k);
        float *f = ref(tag, name, NULL);
        snprintf(name, sizeof name, "%s%d/output", op, k);
        size_t m;
        float *want = ref(tag, name, &m);
        assert_int_equal(m, n);
        memcpy(work, in.px, n);
        fn(work, in.H * in.W, in.C, (double)f[0]);
        snprintf(name, sizeof name, "%s %s(%.3g)", tag, op, (double)f[0]);
        check_pixels(name, work, want, n, max_diff, 0.0);
        free(f);
        free(want);
    }
    free(work);
    free(in.px);
}

static void color_ops_match_torchvision(void **state)
{
    (void)state;
    const char *tags[] = {"rgb", "gray"};
    for (int t = 0; t < 2; t++) {
        enhance_for(tags[t], "brightness", brightness3, 5, 0);
        enhance_for(tags[t], "contrast", sslc_aug_contrast, 5, 0);
        enhance_for(tags[t], "saturation", sslc_aug_saturation, 5, 0);
        enhance_for(tags[t], "hue", sslc_aug_hue, 7, 0);
    }
    enhance_for("noise", "hue", sslc_aug_hue, 5, 0);
}

static void flip_gray_solarize_match_torchvision(void **state)
{
    (void)state;
    const char *tags[] = {"rgb", "gray"};
    for (int t = 0; t < 2; t++) {
        img in = load_input(tags[t]);
        size_t n = (size_t)(in.H * in.W * in.C), m;
        uint8_t *work = malloc(n);
        memcpy(work, in.px, n);
        sslc_aug_hflip(work, in.H, in.W, in.C);
        float *want = ref(tags[t], "hflip", &m);
        check_pixels("hflip", work, want, n, 0, 0.0);
        free(want);
        memcpy(work, in.px, n);
        sslc_aug_grayscale(work, in.H * in.W, in.C);
        want = ref(tags[t], "grayscale", &m);
        check_pixels("grayscale", work, want, n, 0, 0.0);
        free(want);
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "solarize%d/threshold", k);
            float *th = ref(tags[t], name, NULL);
            snprintf(name, sizeof name, "solarize%d/output", k);
            want = ref(tags[t], name, &m);
            memcpy(work, in.px, n);
            sslc_aug_solarize(work, (int64_t)n, (int64_t)th[0]);
            check_pixels(name, work, want, n, 0, 0.0);
            free(th);
            free(want);
        }
        free(work);
        free(in.px);
    }
}

static void blur_matches_torchvision_and_naive(void **state)
{
    (void)state;
    const char *tags[] = {"rgb", "gray"};
    sslc_scratch s = {0};
    for (int t = 0; t < 2; t++) {
        img in = load_input(tags[t]);
        size_t n = (size_t)(in.H * in.W * in.C), m;
        uint8_t *work = malloc(n), *naive = malloc(n);
        for (int k = 0; k < 5; k++) {
            char name[64];
            snprintf(name, sizeof name, "blur%d/params", k);
            float *p = ref(tags[t], name, NULL);
            snprintf(name, sizeof name, "blur%d/output", k);
            float *want = ref(tags[t], name, &m);
            memcpy(work, in.px, n);
            memcpy(naive, in.px, n);
            assert_int_equal(
                sslc_aug_gaussian_blur(work, in.H, in.W, in.C, (int64_t)p[0], (double)p[1], &s),
                SSLC_OK);
            assert_int_equal(
                sslc_aug_gaussian_blur_naive(naive, in.H, in.W, in.C, (int64_t)p[0], (double)p[1]),
                SSLC_OK);
            snprintf(name, sizeof name, "%s blur k%d s%.3g", tags[t], (int)p[0], (double)p[1]);
            // Float sums in a different order: a value at an exact .5 tie may
            // round the other way.
            check_pixels(name, work, want, n, 1, 0.01);
            float *nf = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                nf[i] = naive[i];
            check_pixels("  separable vs naive 2-D", work, nf, n, 1, 0.01);
            free(nf);
            free(p);
            free(want);
        }
        // A 23-tap kernel with small sigmas, whose outer taps the fast blur
        // skips (below 1e-9 of the centre), against the naive 2-D sum of all.
        for (int k = 0; k < 3; k++) {
            const double sigmas[] = {0.3, 1.0, 2.0};
            memcpy(work, in.px, n);
            memcpy(naive, in.px, n);
            assert_int_equal(sslc_aug_gaussian_blur(work, in.H, in.W, in.C, 23, sigmas[k], &s),
                             SSLC_OK);
            assert_int_equal(sslc_aug_gaussian_blur_naive(naive, in.H, in.W, in.C, 23, sigmas[k]),
                             SSLC_OK);
            float *nf = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                nf[i] = naive[i];
            check_pixels("  k23 fast vs naive 2-D", work, nf, n, 1, 0.01);
            free(nf);
        }
        // Kernel too large for reflect padding is refused, not read out of bounds.
        assert_int_equal(sslc_aug_gaussian_blur(work, in.H, in.W, in.C, 61, 1.0, &s),
                         SSLC_ERR_INVALID);
        free(work);
        free(naive);
        free(in.px);
    }
    sslc_scratch_free(&s);
}

static void to_float_matches_torchvision(void **state)
{
    (void)state;
    const char *tags[] = {"rgb", "gray"};
    for (int t = 0; t < 2; t++) {
        img in = load_input(tags[t]);
        size_t n = (size_t)(in.H * in.W * in.C), m;
        float *mean = ref(tags[t], "normalize/mean", NULL);
        float *std = ref(tags[t], "normalize/std", NULL);
        float *want = ref(tags[t], "normalize/output", &m);
        float *out = malloc(n * sizeof(float));
        sslc_aug_to_float(out, in.px, in.H * in.W, in.C, mean, std);
        sslc_assert_close("to_float + normalize", out, want, n, 1e-6, 1e-6);
        free(out);
        free(want);
        free(mean);
        free(std);
        free(in.px);
    }
}

static void chain_matches_torchvision(void **state)
{
    (void)state;
    const char *tags[] = {"rgb", "gray"};
    sslc_scratch s = {0};
    for (int t = 0; t < 2; t++) {
        img in = load_input(tags[t]);
        int64_t C = in.C, n = 24 * 24 * C;
        uint8_t *v = malloc((size_t)n);
        sslc_crop c = {2, 4, 22, 23};
        assert_int_equal(sslc_aug_resized_crop(v, 24, 24, in.px, in.H, in.W, C, c, &s), SSLC_OK);
        sslc_aug_hflip(v, 24, 24, C);
        sslc_aug_brightness(v, n, 1.3);
        sslc_aug_hue(v, 24 * 24, C, -0.08);
        sslc_aug_contrast(v, 24 * 24, C, 0.7);
        sslc_aug_saturation(v, 24 * 24, C, 1.5);
        assert_int_equal(sslc_aug_gaussian_blur(v, 24, 24, C, 3, 0.9, &s), SSLC_OK);
        size_t m;
        float *want = ref(tags[t], "chain/output", &m);
        assert_int_equal(m, (size_t)n);
        check_pixels("crop+flip+jitter+blur", v, want, m, 1, 0.01);
        free(want);
        assert_int_equal(sslc_aug_resized_crop(v, 24, 24, in.px, in.H, in.W, C, c, &s), SSLC_OK);
        sslc_aug_hflip(v, 24, 24, C);
        sslc_aug_contrast(v, 24 * 24, C, 1.4);
        sslc_aug_grayscale(v, 24 * 24, C);
        want = ref(tags[t], "chain_gray/output", &m);
        check_pixels("crop+flip+contrast+gray", v, want, m, 0, 0.0);
        free(want);
        free(v);
        free(in.px);
    }
    sslc_scratch_free(&s);
}

// The vectorised hue against Pillow's per-pixel conversion.
static void hue_fast_matches_naive(int64_t npix, bool exhaustive)
{
    uint8_t *a = malloc((size_t)(npix * 3)), *b = malloc((size_t)(npix * 3));
    sslc_rng r = sslc_rng_make(9, 0, 0, 0, 0);
    const double shifts[] = {-0.5, -0.31, -0.05, 0.0, 0.004, 0.1, 0.27, 0.5};
    for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++) {
        for (int64_t i = 0; i < npix; i++) {
            uint32_t c = exhaustive ? (uint32_t)i : sslc_rng_u32(&r);
            a[3 * i] = b[3 * i] = (uint8_t)c;
            a[3 * i + 1] = b[3 * i + 1] = (uint8_t)(c >> 8);
            a[3 * i + 2] = b[3 * i + 2] = (uint8_t)(c >> 16);
        }
        sslc_aug_hue(a, npix, 3, shifts[k]);
        sslc_aug_hue_naive(b, npix, 3, shifts[k]);
        for (int64_t i = 0; i < npix * 3; i++)
            if (a[i] != b[i])
                fail_msg("hue %g: pixel %lld channel %lld: fast %d, naive %d", shifts[k],
                         (long long)(i / 3), (long long)(i % 3), a[i], b[i]);
        if (exhaustive && k == 1)
            break; // two shifts over all 2^24 colours is enough
    }
    free(a);
    free(b);
}

static void hue_fast_matches_naive_sampled(void **state)
{
    (void)state;
    hue_fast_matches_naive(1 << 18, false);
}

static void hue_fast_matches_naive_every_colour(void **state)
{
    (void)state;
    hue_fast_matches_naive(1 << 24, true);
}

// Pillow's blend, written plainly: (uint8) clip(in1 + a * (in2 - in1)).
static uint8_t blend_ref(int in1, int in2, float a)
{
    float t = (float)in1 + a * (float)(in2 - in1);
    return t <= 0.0f ? 0 : t >= 255.0f ? 255 : (uint8_t)t;
}

// Brightness and contrast go through a byte table (64 bytes a step with
// AVX-512 VBMI): every byte value, lengths with and without a tail.
static void table_ops_match_the_formula(void **state)
{
    (void)state;
    const float factors[] = {0.0f, 0.37f, 1.0f, 1.61f, 2.9f};
    const int64_t lengths[] = {1, 63, 64, 255 * 3, 1000};
    for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++)
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            int64_t n = lengths[l];
            uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
            for (int64_t i = 0; i < n; i++)
                a[i] = b[i] = (uint8_t)(i * 131 + 7);
            sslc_aug_brightness(a, n, factors[f]);
            for (int64_t i = 0; i < n; i++)
                assert_int_equal(a[i], blend_ref(0, b[i], factors[f]));
            if (n % 3 == 0) {
                // contrast blends towards the rounded mean luma
                memcpy(a, b, (size_t)n);
                uint64_t sum = 0;
                for (int64_t i = 0; i < n / 3; i++)
                    sum += (b[3 * i] * 19595u + b[3 * i + 1] * 38470u + b[3 * i + 2] * 7471u +
                            0x8000u) >> 16;
                int mean = (int)((double)sum / (double)(n / 3) + 0.5);
                sslc_aug_contrast(a, n / 3, 3, factors[f]);
                for (int64_t i = 0; i < n; i++)
                    assert_int_equal(a[i], blend_ref(mean, b[i], factors[f]));
            }
            free(a);
            free(b);
        }
}

// The flip (blocks of 64 bytes with AVX-512 VBMI) on widths around the
// block sizes, 1 and 3 channels: pixel x lands at W - 1 - x.
static void hflip_mirrors_every_width(void **state)
{
    (void)state;
    for (int64_t C = 1; C <= 3; C += 2)
        for (int64_t W = 1; W <= 200; W++) {
            const int64_t H = 2;
            uint8_t *a = malloc((size_t)(H * W * C)), *b = malloc((size_t)(H * W * C));
            for (int64_t i = 0; i < H * W * C; i++)
                a[i] = b[i] = (uint8_t)(i * 7 + i / 256);
            sslc_aug_hflip(a, H, W, C);
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++)
                    for (int64_t c = 0; c < C; c++)
                        if (a[(y * W + x) * C + c] != b[(y * W + W - 1 - x) * C + c])
                            fail_msg("W %lld C %lld: pixel %lld wrong", (long long)W,
                                     (long long)C, (long long)x);
            free(a);
            free(b);
        }
}

static void crop_params_follow_torchvision_rules(void **state)
{
    (void)state;
    // Within bounds, area and ratio inside the ranges (up to rounding).
    int fallback = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        sslc_rng r = sslc_rng_make(1, i, 0, 0, 0);
        int64_t H = 20 + (int64_t)(i % 300), W = 30 + (int64_t)((i * 7) % 400);
        sslc_crop c = sslc_aug_crop_params(&r, H, W, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0);
        assert_true(c.top >= 0 && c.left >= 0 && c.height >= 1 && c.width >= 1);
        assert_true(c.top + c.height <= H && c.left + c.width <= W);
        double frac = (double)(c.height * c.width) / (double)(H * W);
        if (frac > 0.999)
            fallback++;
        double ratio = (double)c.width / (double)c.height;
        if (!(frac > 0.999)) {
            assert_true(ratio > 0.75 * 0.8 && ratio < 4.0 / 3.0 * 1.25);
            assert_true(frac > 0.05 && frac < 1.0 + 1e-9);
        }
    }
    assert_true(fallback < 20000 / 5);
    // Impossible ranges: 10 failed tries, then the central crop with the
    // ratio clamped, as torchvision does: a 100x10 image, ratio in [3/4, 4/3].
    sslc_rng r = sslc_rng_make(2, 0, 0, 0, 0);
    sslc_crop c = sslc_aug_crop_params(&r, 10, 100, 2.0, 3.0, 0.75, 4.0 / 3.0);
    assert_int_equal(c.height, 10);
    assert_int_equal(c.width, 13); // round(10 * 4/3)
    assert_int_equal(c.left, (100 - 13) / 2);
    assert_int_equal(c.top, 0);
    c = sslc_aug_crop_params(&r, 100, 10, 2.0, 3.0, 0.75, 4.0 / 3.0);
    assert_int_equal(c.width, 10);
    assert_int_equal(c.height, 13); // round(10 / 0.75) = round(13.33)
    assert_int_equal(c.top, (100 - 13) / 2);
    // Center-crop offsets and Resize(int) dims as torchvision.
    c = sslc_aug_center_crop_params(256, 341, 224, 224);
    assert_int_equal(c.top, 16);
    assert_int_equal(c.left, 58); // round(58.5) = 58 (half to even)
    int64_t oh, ow;
    sslc_resize_short_side_dims(375, 500, 256, &oh, &ow);
    assert_int_equal(oh, 256);
    assert_int_equal(ow, 341);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(crop_params_follow_torchvision_rules),
        cmocka_unit_test(hue_fast_matches_naive_sampled),
        cmocka_unit_test(table_ops_match_the_formula),
        cmocka_unit_test(hflip_mirrors_every_width),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test(hue_fast_matches_naive_every_colour),
    };
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(resized_crop_matches_torchvision),
        cmocka_unit_test(color_ops_match_torchvision),
        cmocka_unit_test(flip_gray_solarize_match_torchvision),
        cmocka_unit_test(blur_matches_torchvision_and_naive),
        cmocka_unit_test(to_float_matches_torchvision),
        cmocka_unit_test(chain_matches_torchvision),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit), SSLC_GROUP("fixture", fixture),
                                      SSLC_GROUP("slow", slow)};
    return sslc_test_main(argc, argv, groups, 3);
}
