#include "augment/ops.h"

#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "data/image.h"

// Python's round(): half to even (the default rounding mode).
static int64_t py_round(double x) { return (int64_t)nearbyint(x); }

sslc_crop sslc_aug_crop_params(sslc_rng *rng, int64_t H, int64_t W, double scale_min,
                               double scale_max, double ratio_min, double ratio_max)
{
    double area = (double)H * (double)W;
    double lr0 = log(ratio_min), lr1 = log(ratio_max);
    // torchvision RandomResizedCrop: 10 tries, then a center crop.
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * sslc_rng_range(rng, scale_min, scale_max);
        double aspect = exp(sslc_rng_range(rng, lr0, lr1));
        int64_t w = py_round(sqrt(target * aspect));
        int64_t h = py_round(sqrt(target / aspect));
        if (0 < w && w <= W && 0 < h && h <= H) {
            int64_t top = (int64_t)sslc_rng_below(rng, (uint64_t)(H - h + 1));
            int64_t left = (int64_t)sslc_rng_below(rng, (uint64_t)(W - w + 1));
            return (sslc_crop){top, left, h, w};
        }
    }
    double in_ratio = (double)W / (double)H;
    int64_t w, h;
    if (in_ratio < ratio_min) {
        w = W;
        h = py_round((double)w / ratio_min);
    } else if (in_ratio > ratio_max) {
        h = H;
        w = py_round((double)h * ratio_max);
    } else {
        w = W;
        h = H;
    }
    return (sslc_crop){(H - h) / 2, (W - w) / 2, h, w};
}

sslc_crop sslc_aug_center_crop_params(int64_t H, int64_t W, int64_t h, int64_t w)
{
    return (sslc_crop){py_round((double)(H - h) / 2.0), py_round((double)(W - w) / 2.0), h, w};
}

sslc_status sslc_aug_resized_crop(uint8_t *dst, int64_t out_h, int64_t out_w, const uint8_t *src,
                                  int64_t H, int64_t W, int64_t C, sslc_crop crop,
                                  sslc_scratch *scratch)
{
    if (crop.top < 0 || crop.left < 0 || crop.height <= 0 || crop.width <= 0 ||
        crop.top + crop.height > H || crop.left + crop.width > W)
        return sslc_error(SSLC_ERR_INVALID, "crop (%lld, %lld, %lld, %lld) is outside %lldx%lld",
                          (long long)crop.top, (long long)crop.left, (long long)crop.height,
                          (long long)crop.width, (long long)H, (long long)W);
    // PIL: img.crop(box).resize(size): the crop is the whole source.
    double box[4] = {0, 0, (double)crop.width, (double)crop.height};
    return sslc_resize_bilinear(dst, out_h, out_w, src + (crop.top * W + crop.left) * C,
                                crop.height, crop.width, W * C, C, box, scratch);
}

void sslc_aug_hflip(uint8_t *img, int64_t H, int64_t W, int64_t C)
{
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
    // P = 64 / C pixels a step from each end: a byte permute reverses the
    // pixels of a block and keeps each pixel's channels in order.
    const int64_t P = 64 / C;
    const __mmask64 m = C * P == 64 ? ~(__mmask64)0 : ((__mmask64)1 << (C * P)) - 1;
    uint8_t rev[64] = {0};
    for (int64_t j = 0; j < C * P; j++)
        rev[j] = (uint8_t)((P - 1 - j / C) * C + j % C);
    const __m512i idx = _mm512_loadu_si512(rev);
#endif
    for (int64_t y = 0; y < H; y++) {
        uint8_t *row = img + y * W * C;
        int64_t a = 0, b = W - 1; // pixels a..b are still to swap
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
        for (; b - a + 1 >= 2 * P; a += P, b -= P) {
            uint8_t *pa = row + a * C, *pb = row + (b - P + 1) * C;
            __m512i x = _mm512_maskz_loadu_epi8(m, pa), z = _mm512_maskz_loadu_epi8(m, pb);
            _mm512_mask_storeu_epi8(pa, m, _mm512_permutexvar_epi8(idx, z));
            _mm512_mask_storeu_epi8(pb, m, _mm512_permutexvar_epi8(idx, x));
        }
#endif
        for (; a < b; a++, b--)
            for (int64_t c = 0; c < C; c++) {
                uint8_t t = row[a * C + c];
                row[a * C + c] = row[b * C + c];
                row[b * C + c] = t;
            }
    }
}

// Pillow ImagingBlend with im1 = degenerate, im2 = image:
// out = (uint8) clip((float) in1 + alpha * (float)(in2 - in1)), written
// without branches so the loops below vectorise (omp simd) into the same
// float operations.
static inline uint8_t blend1(int in1, int in2, float alpha)
{
    float t = (float)in1 + alpha * (float)(in2 - in1);
    t = t > 0.0f ? t : 0.0f;
    t = t < 255.0f ? t : 255.0f;
    return (uint8_t)(int)t;
}

static inline int luma(int r, int g, int b)
{
    return (int)(((unsigned)r * 19595u + (unsigned)g * 38470u + (unsigned)b * 7471u + 0x8000u) >>
                 16);
}

// img[i] = lut[img[i]]: 64 bytes a step from a table held in four
// registers when the CPU has AVX-512 VBMI byte permutes.
static void apply_lut(uint8_t *restrict img, int64_t n, const uint8_t lut[256])
{
    int64_t i = 0;
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
    __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
    __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
    for (; i + 64 <= n; i += 64) {
        __m512i x = _mm512_loadu_si512(img + i);
        // Bits 0-6 index the 128 bytes of (t0, t1) or (t2, t3); bit 7 picks.
        __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
        __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_storeu_si512(img + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
    }
#endif
    for (; i < n; i++)
        img[i] = lut[img[i]];
}

void sslc_aug_brightness(uint8_t *img, int64_t n, double factor)
{
    float a = (float)factor;
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = blend1(0, v, a);
    apply_lut(img, n, lut);
}

static int64_t mean_luma_rounded(const uint8_t *restrict img, int64_t npix, int64_t C)
{
    // ImageStat.Stat(image.convert("L")).mean: histogram-weighted sum / count.
    uint64_t sum = 0;
    if (C == 1) {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < npix; i++)
            sum += img[i];
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < npix; i++)
            sum += (uint64_t)luma(img[3 * i], img[3 * i + 1], img[3 * i + 2]);
    }
    return (int64_t)((double)sum / (double)npix + 0.5);
}

void sslc_aug_contrast(uint8_t *img, int64_t npix, int64_t C, double factor)
{
    int mean = (int)mean_luma_rounded(img, npix, C);
    float a = (float)factor;
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = blend1(mean, v, a);
    apply_lut(img, npix * C, lut);
}

void sslc_aug_saturation(uint8_t *restrict img, int64_t npix, int64_t C, double factor)
{
    if (C != 3)
        return;
    float a = (float)factor;
#pragma omp simd
    for (int64_t i = 0; i < npix; i++) {
        int r = img[3 * i], g = img[3 * i + 1], b = img[3 * i + 2];
        int l = luma(r, g, b);
        img[3 * i] = blend1(l, r, a);
        img[3 * i + 1] = blend1(l, g, a);
        img[3 * i + 2] = blend1(l, b, a);
    }
}

static inline uint8_t clip8i(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

// Pillow's rgb2hsv_row / hsv2rgb (Convert.c), following colorsys.py with
// the same float/double mix so the bytes agree.
static inline void rgb_to_hsv(uint8_t r, uint8_t g, uint8_t b, uint8_t *oh, uint8_t *os,
                              uint8_t *ov)
{
    uint8_t maxc = r > g ? r : g;
    maxc = maxc > b ? maxc : b;
    uint8_t minc = r < g ? r : g;
    minc = minc < b ? minc : b;
    *ov = maxc;
    if (minc == maxc) {
        *oh = 0;
        *os = 0;
        return;
    }
    float cr = (float)(maxc - minc);
    float s = cr / (float)maxc;
    float rc = (float)(maxc - r) / cr;
    float gc = (float)(maxc - g) / cr;
    float bc = (float)(maxc - b) / cr;
    float h;
    if (r == maxc)
        h = bc - gc;
    else if (g == maxc)
        h = (float)(2.0 + (double)rc - (double)bc);
    else
        h = (float)(4.0 + (double)gc - (double)rc);
    // fmod(y, 1) for y = h/6 + 1 in (0.8, 2): y - 1 when y >= 1 (exact by
    // Sterbenz), else y; Pillow calls fmod.
    double y = (double)h / 6.0 + 1.0;
    h = (float)(y >= 1.0 ? y - 1.0 : y);
    *oh = clip8i((int)((double)h * 255.0));
    *os = clip8i((int)((double)s * 255.0));
}

static inline void hsv_to_rgb(uint8_t h, uint8_t s, uint8_t v, uint8_t *out)
{
    if (s == 0) {
        out[0] = out[1] = out[2] = v;
        return;
    }
    int i = (int)floor((double)(float)h * 6.0 / 255.0);
    float f = (float)((double)(float)h * 6.0 / 255.0 - (double)(float)i);
    float fs = (float)((double)(float)s / 255.0);
    int p = (int)round((double)(float)v * (1.0 - (double)fs));
    int q = (int)round((double)(float)v * (1.0 - (double)(fs * f)));
    int t = (int)round((double)(float)v * (1.0 - (double)fs * (1.0 - (double)f)));
    uint8_t up = clip8i(p), uq = clip8i(q), ut = clip8i(t);
    switch (i % 6) {
    case 0: out[0] = v, out[1] = ut, out[2] = up; break;
    case 1: out[0] = uq, out[1] = v, out[2] = up; break;
    case 2: out[0] = up, out[1] = v, out[2] = ut; break;
    case 3: out[0] = up, out[1] = uq, out[2] = v; break;
    case 4: out[0] = ut, out[1] = up, out[2] = v; break;
    default: out[0] = v, out[1] = up, out[2] = uq; break;
    }
}

void sslc_aug_hue_naive(uint8_t *img, int64_t npix, int64_t C, double hue)
{
    if (C != 3)
        return;
    // numpy: np_h += np.uint8(hue_factor * 255), wrapping.
    uint8_t shift = (uint8_t)(int)(hue * 255.0);
    for (int64_t i = 0; i < npix; i++) {
        uint8_t *p = img + 3 * i, h, s, v;
        rgb_to_hsv(p[0], p[1], p[2], &h, &s, &v);
        hsv_to_rgb((uint8_t)(h + shift), s, v, p);
    }
}

// C's round() for x >= 0 (half away from zero), without a libm call.
static inline int round_pos(double x)
{
    double f = floor(x);
    return (int)f + (x - f >= 0.5);
}

// The reference above without branches, so the loop vectorises (omp simd;
// 16 doubles a step with AVX-512): every case is computed and the right one
// selected. A grey pixel divides by zero, harmlessly (no traps), and is then
// given h = s = 0. A zero saturation needs no case of its own: fs = 0 makes
// p = q = t = v. The double divisions of the reference become a product
// (h / 6) and float or integer arithmetic that gives the same sector, f and
// fs for every byte. Checked equal to the reference on all 2^24 colours
// (tests/augment, slow group).
void sslc_aug_hue(uint8_t *restrict img, int64_t npix, int64_t C, double hue)
{
    if (C != 3)
        return;
    const int shift = (uint8_t)(int)(hue * 255.0);
#pragma omp simd
    for (int64_t i = 0; i < npix; i++) {
        int r = img[3 * i], g = img[3 * i + 1], b = img[3 * i + 2];
        int v = r > g ? r : g;
        v = v > b ? v : b;
        int mn = r < g ? r : g;
        mn = mn < b ? mn : b;
        // RGB -> HSV, as rgb_to_hsv.
        float cr = (float)(v - mn);
        float s = cr / (float)v;
        float rc = (float)(v - r) / cr, gc = (float)(v - g) / cr, bc = (float)(v - b) / cr;
        float h = r == v   ? bc - gc
                  : g == v ? (float)(2.0 + (double)rc - (double)bc)
                           : (float)(4.0 + (double)gc - (double)rc);
        double y = (double)h * (1.0 / 6.0) + 1.0;
        h = (float)(y >= 1.0 ? y - 1.0 : y);
        int hb = clip8i((int)((double)h * 255.0)), sb = clip8i((int)((double)s * 255.0));
        if (v == mn)
            hb = sb = 0;
        // The shift, then HSV -> RGB, as hsv_to_rgb.
        hb = (hb + shift) & 255;
        int sector = (int)((float)(hb * 6 + 1) * (1.0f / 255.0f));
        float f = (float)(hb * 6 - sector * 255) / 255.0f;
        float fs = (float)sb / 255.0f;
        double dv = (double)v;
        int p = clip8i(round_pos(dv * (1.0 - (double)fs)));
        int q = clip8i(round_pos(dv * (1.0 - (double)(fs * f))));
        int t = clip8i(round_pos(dv * (1.0 - (double)fs * (1.0 - (double)f))));
        sector = sector == 6 ? 0 : sector;
        // (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q) for sectors 0-5.
        int o0 = sector == 0 || sector == 5 ? v : sector == 1 ? q : sector == 4 ? t : p;
        int o1 = sector == 0 ? t : sector <= 2 ? v : sector == 3 ? q : p;
        int o2 = sector <= 1 ? p : sector == 2 ? t : sector == 5 ? q : v;
        img[3 * i] = (uint8_t)o0, img[3 * i + 1] = (uint8_t)o1, img[3 * i + 2] = (uint8_t)o2;
    }
}

void sslc_aug_grayscale(uint8_t *restrict img, int64_t npix, int64_t C)
{
    if (C != 3)
        return;
#pragma omp simd
    for (int64_t i = 0; i < npix; i++) {
        uint8_t l = (uint8_t)luma(img[3 * i], img[3 * i + 1], img[3 * i + 2]);
        img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = l;
    }
}

void sslc_aug_solarize(uint8_t *img, int64_t n, int64_t threshold)
{
    for (int64_t i = 0; i < n; i++)
        if (img[i] >= threshold)
            img[i] = (uint8_t)(255 - img[i]);
}

static void blur_kernel(float *k, int64_t ksize, double sigma)
{
    // torch.linspace(-half, half, ksize) in float32, then exp, then / sum.
    float half = (float)(ksize - 1) * 0.5f;
    float sum = 0.0f;
    float sg = (float)sigma;
    for (int64_t i = 0; i < ksize; i++) {
        float step = ksize > 1 ? (2.0f * half) / (float)(ksize - 1) : 0.0f;
        float x = -half + step * (float)i;
        float z = x / sg;
        k[i] = expf(-0.5f * z * z);
        sum += k[i];
    }
    for (int64_t i = 0; i < ksize; i++)
        k[i] /= sum;
}

static sslc_status blur_check(int64_t H, int64_t W, int64_t ksize, double sigma)
{
    if (ksize < 1 || ksize % 2 == 0 || ksize > 255 || !(sigma > 0.0))
        return sslc_error(SSLC_ERR_INVALID,
                          "blur: kernel size %lld must be odd and <= 255, and sigma %g > 0",
                          (long long)ksize, sigma);
    if (ksize / 2 >= H || ksize / 2 >= W)
        return sslc_error(SSLC_ERR_INVALID,
                          "blur: kernel %lld is too large for a %lldx%lld image (reflect padding)",
                          (long long)ksize, (long long)H, (long long)W);
    return SSLC_OK;
}

// acc[0..64) = sum_t k[t] * rows[t][0..64), taps in order t = 0, 1, ...
// Four independent 16-float sums stay in registers across all taps (a plain
// axpy per tap would be load/store bound). With AVX-512 each tap is a fused
// multiply-add; elsewhere a GCC/Clang vector extension (AVX2 / SSE pairs).
#ifdef __AVX512F__
static inline void taps64(float *acc, const float *const *rows, const float *k, int64_t ksize)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t t = 0; t < ksize; t++) {
        __m512 kv = _mm512_set1_ps(k[t]);
        const float *in = rows[t];
        a0 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(in), a0);
        a1 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(in + 16), a1);
        a2 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(in + 32), a2);
        a3 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(in + 48), a3);
    }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
    _mm512_storeu_ps(acc + 32, a2);
    _mm512_storeu_ps(acc + 48, a3);
}
#else
typedef float v16f __attribute__((vector_size(64)));
// acc += kv * p[0..16): through pointers, since passing or returning a
// 64-byte vector by value changes the ABI without AVX-512 (-Wpsabi).
static inline void fma16(v16f *acc, const v16f *kv, const float *p)
{
    v16f x;
    memcpy(&x, p, sizeof x);
    *acc += *kv * x;
}

static inline void taps64(float *acc, const float *const *rows, const float *k, int64_t ksize)
{
    v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t t = 0; t < ksize; t++) {
        v16f kv = (v16f){0} + k[t];
        const float *in = rows[t];
        fma16(&a0, &kv, in);
        fma16(&a1, &kv, in + 16);
        fma16(&a2, &kv, in + 32);
        fma16(&a3, &kv, in + 48);
    }
    memcpy(acc, &a0, 64);
    memcpy(acc + 16, &a1, 64);
    memcpy(acc + 32, &a2, 64);
    memcpy(acc + 48, &a3, 64);
}
#endif

static inline int64_t reflect(int64_t i, int64_t n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * n - 2 - i;
    return i;
}

static inline uint8_t round_u8(float v)
{
    float r = nearbyintf(v); // torch.round: half to even
    return (uint8_t)(r <= 0.0f ? 0.0f : r >= 255.0f ? 255.0f : r);
}

sslc_status sslc_aug_gaussian_blur(uint8_t *img, int64_t H, int64_t W, int64_t C, int64_t ksize,
                                   double sigma, sslc_scratch *scratch)
{
    sslc_status st = blur_check(H, W, ksize, sigma);
    if (st != SSLC_OK)
        return st;
    // Rows are swept in whole blocks of BLK floats; the last block of a row
    // runs past its end into the next row (overwritten when that row is
    // done) or into BLK floats of slack, so no column takes a scalar path.
    enum { BLK = 64 };
    int64_t r = ksize / 2, row = W * C, prow = (W + 2 * r) * C;
    int64_t kpad = (ksize + 15) / 16 * 16;
    size_t need = (size_t)(kpad + prow + BLK + H * row + BLK) * sizeof(float) + 256;
    float *base = sslc_scratch_get(scratch, need);
    if (!base)
        return SSLC_ERR_NOMEM;
    float *k = base, *pad = k + kpad, *mid = pad + prow + BLK;
    memset(pad + prow, 0, BLK * sizeof(float));
    memset(mid + H * row, 0, BLK * sizeof(float));
    blur_kernel(k, ksize, sigma);
    // Taps below 1e-9 of the centre (the kernel is 10% of the side whatever
    // sigma is, so a small sigma leaves most of it at ~0) add less than the
    // float rounding of the sum (255 * 22 * 1e-9 < half an ulp of 255):
    // skipping them cannot change a result but the exact .5 ties the
    // tolerance already admits. Halves the work for sigma near 1.
    int64_t t0 = 0;
    while (t0 < r && k[t0] < 1e-9f * k[r])
        t0++;
    const float *kl = k + t0;
    const int64_t live = ksize - 2 * t0;
    // Horizontal pass: each row reflect-padded into floats, then the kernel
    // swept over the flattened (W*C) row.
    for (int64_t y = 0; y < H; y++) {
        const uint8_t *src = img + y * row;
        for (int64_t j = 0; j < row; j++)
            pad[r * C + j] = (float)src[j];
        for (int64_t x = 1; x <= r; x++)
            for (int64_t c = 0; c < C; c++) {
                pad[(r - x) * C + c] = (float)src[x * C + c];               // reflect left
                pad[(r + W - 1 + x) * C + c] = (float)src[(W - 1 - x) * C + c]; // and right
            }
        const float *taps[256];
        for (int64_t t = 0; t < live; t++)
            taps[t] = pad + (t0 + t) * C;
        for (int64_t j0 = 0; j0 < row; j0 += BLK) {
            taps64(mid + y * row + j0, taps, kl, live);
            for (int64_t t = 0; t < live; t++)
                taps[t] += BLK;
        }
    }
    // Vertical pass, the same blocking over columns, rows reflected.
    for (int64_t y = 0; y < H; y++) {
        const float *taps[256];
        for (int64_t t = 0; t < live; t++)
            taps[t] = mid + reflect(y + t0 + t - r, H) * row;
        uint8_t *dst = img + y * row;
        for (int64_t j0 = 0; j0 < row; j0 += BLK) {
            float acc[BLK];
            taps64(acc, taps, kl, live);
            for (int64_t t = 0; t < live; t++)
                taps[t] += BLK;
            int64_t n = row - j0 < BLK ? row - j0 : BLK;
            for (int64_t j = 0; j < n; j++)
                dst[j0 + j] = round_u8(acc[j]);
        }
    }
    return SSLC_OK;
}

sslc_status sslc_aug_gaussian_blur_naive(uint8_t *img, int64_t H, int64_t W, int64_t C,
                                         int64_t ksize, double sigma)
{
    sslc_status st = blur_check(H, W, ksize, sigma);
    if (st != SSLC_OK)
        return st;
    int64_t r = ksize / 2;
    float *k = malloc((size_t)ksize * sizeof(float));
    uint8_t *copy = malloc((size_t)(H * W * C));
    if (!k || !copy) {
        free(k);
        free(copy);
        return sslc_error(SSLC_ERR_NOMEM, "blur: out of memory");
    }
    blur_kernel(k, ksize, sigma);
    memcpy(copy, img, (size_t)(H * W * C));
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++)
            for (int64_t c = 0; c < C; c++) {
                float s = 0.0f;
                for (int64_t a = 0; a < ksize; a++)
                    for (int64_t b = 0; b < ksize; b++)
                        s += k[a] * k[b] *
                             (float)copy[(reflect(y + a - r, H) * W + reflect(x + b - r, W)) * C + c];
                img[(y * W + x) * C + c] = round_u8(s);
            }
    free(k);
    free(copy);
    return SSLC_OK;
}

void sslc_aug_to_float(float *restrict dst, const uint8_t *restrict src, int64_t npix, int64_t C,
                       const float *mean, const float *std)
{
    // ToTensor then Normalize, in float32 as torchvision: (v / 255 - m) / s.
    if (C == 1) {
        float m = mean[0], sd = std[0];
#pragma omp simd
        for (int64_t i = 0; i < npix; i++)
            dst[i] = ((float)src[i] / 255.0f - m) / sd;
    } else {
        float m0 = mean[0], m1 = mean[1], m2 = mean[2], s0 = std[0], s1 = std[1], s2 = std[2];
#pragma omp simd
        for (int64_t i = 0; i < npix; i++) {
            dst[3 * i] = ((float)src[3 * i] / 255.0f - m0) / s0;
            dst[3 * i + 1] = ((float)src[3 * i + 1] / 255.0f - m1) / s1;
            dst[3 * i + 2] = ((float)src[3 * i + 2] / 255.0f - m2) / s2;
        }
    }
}
