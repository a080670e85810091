#include "data/resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define SSLC_RESIZE_VBMI 1
#endif

enum { PRECISION_BITS = 32 - 8 - 2 };

void *sslc_scratch_get(sslc_scratch *s, size_t bytes)
{
    if (bytes <= s->cap)
        return s->ptr;
    free(s->ptr);
    s->cap = 0;
    s->ptr = sslc_aligned_alloc(bytes + bytes / 4);
    if (s->ptr)
        s->cap = bytes + bytes / 4;
    return s->ptr;
}

void sslc_scratch_free(sslc_scratch *s)
{
    free(s->ptr);
    s->ptr = NULL;
    s->cap = 0;
}

static double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc. bounds: (out, 2)
// {first tap, tap count}; kk: (out, ksize) fixed-point weights. Returns
// ksize. Weights are computed in double and normalised before rounding.
static int64_t ksize_for(int64_t in_size, double in0, double in1, int64_t out_size)
{
    (void)in_size;
    double scale = (double)((float)in1 - (float)in0) / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    return (int64_t)ceil(filterscale) * 2 + 1;
}

static void coeffs(int64_t in_size, double in0, double in1, int64_t out_size, int64_t ksize,
                   int32_t *bounds, int32_t *kk, double *tmp)
{
    // Pillow passes the box as float.
    float f0 = (float)in0, f1 = (float)in1;
    double scale = (double)(f1 - f0) / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    for (int64_t xx = 0; xx < out_size; xx++) {
        double center = f0 + ((double)xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int64_t xmax = (int64_t)(int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize)
            xmax = ksize;
        for (int64_t x = 0; x < xmax; x++) {
            double w = triangle(((double)(x + xmin) - center + 0.5) * ss);
            tmp[x] = w;
            ww += w;
        }
        for (int64_t x = 0; x < ksize; x++) {
            double k = x < xmax ? (ww != 0.0 ? tmp[x] / ww : tmp[x]) : 0.0;
            kk[xx * ksize + x] = k < 0 ? (int32_t)(-0.5 + k * (1 << PRECISION_BITS))
                                       : (int32_t)(0.5 + k * (1 << PRECISION_BITS));
        }
        bounds[2 * xx] = (int32_t)xmin;
        bounds[2 * xx + 1] = (int32_t)(xmax < 0 ? 0 : xmax);
    }
}

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

static sslc_status check_args(int64_t out_h, int64_t out_w, int64_t src_h, int64_t src_w,
                              int64_t C, const double box[4])
{
    if (out_h <= 0 || out_w <= 0 || src_h <= 0 || src_w <= 0 || C <= 0 || C > 4)
        return sslc_error(SSLC_ERR_INVALID, "resize: bad sizes %lldx%lld -> %lldx%lld (C %lld)",
                          (long long)src_h, (long long)src_w, (long long)out_h, (long long)out_w,
                          (long long)C);
    if (!(box[0] >= 0 && box[1] >= 0 && box[2] <= (double)src_w && box[3] <= (double)src_h &&
          box[2] > box[0] && box[3] > box[1]))
        return sslc_error(SSLC_ERR_INVALID, "resize: box (%g, %g, %g, %g) is outside %lldx%lld",
                          box[0], box[1], box[2], box[3], (long long)src_w, (long long)src_h);
    return SSLC_OK;
}

// One row of the horizontal pass for C channels. Specialised on C so the
// inner loops have constant trip counts.
static void hpass_row(uint8_t *restrict out, const uint8_t *restrict in, int64_t out_w, int64_t C,
                      int64_t ksize, const int32_t *restrict bounds, const int32_t *restrict kk)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    if (C == 3) {
        for (int64_t xx = 0; xx < out_w; xx++) {
            const int32_t *k = kk + xx * ksize;
            const uint8_t *p = in + (int64_t)bounds[2 * xx] * 3;
            int32_t n = bounds[2 * xx + 1], s0 = half, s1 = half, s2 = half;
            for (int32_t x = 0; x < n; x++) {
                s0 += p[3 * x] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            out[3 * xx] = clip8(s0), out[3 * xx + 1] = clip8(s1), out[3 * xx + 2] = clip8(s2);
        }
    } else {
        for (int64_t xx = 0; xx < out_w; xx++) {
            const int32_t *k = kk + xx * ksize;
            const uint8_t *p = in + (int64_t)bounds[2 * xx] * C;
            int32_t n = bounds[2 * xx + 1];
            for (int64_t c = 0; c < C; c++) {
                int32_t s = half;
                for (int32_t x = 0; x < n; x++)
                    s += p[x * C + c] * k[x];
                out[xx * C + c] = clip8(s);
            }
        }
    }
}

// Two rows of the horizontal pass at once (C == 3): the weights and the
// loop overhead are shared, and six independent sums keep the multiplier
// busy. Same arithmetic per pixel as hpass_row.
static void hpass_rows2_c3(uint8_t *restrict out0, uint8_t *restrict out1,
                           const uint8_t *restrict in0, const uint8_t *restrict in1,
                           int64_t out_w, int64_t ksize, const int32_t *restrict bounds,
                           const int32_t *restrict kk)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    for (int64_t xx = 0; xx < out_w; xx++) {
        const int32_t *k = kk + xx * ksize;
        int64_t off = (int64_t)bounds[2 * xx] * 3;
        const uint8_t *p = in0 + off, *q = in1 + off;
        int32_t n = bounds[2 * xx + 1];
        int32_t a0 = half, a1 = half, a2 = half, b0 = half, b1 = half, b2 = half;
        for (int32_t x = 0; x < n; x++) {
            int32_t w = k[x];
            a0 += p[3 * x] * w;
            a1 += p[3 * x + 1] * w;
            a2 += p[3 * x + 2] * w;
            b0 += q[3 * x] * w;
            b1 += q[3 * x + 1] * w;
            b2 += q[3 * x + 2] * w;
        }
        out0[3 * xx] = clip8(a0), out0[3 * xx + 1] = clip8(a1), out0[3 * xx + 2] = clip8(a2);
        out1[3 * xx] = clip8(b0), out1[3 * xx + 1] = clip8(b1), out1[3 * xx + 2] = clip8(b2);
    }
}

#ifdef SSLC_RESIZE_VBMI
// The horizontal pass for C == 3 with AVX-512 VBMI, 16 output pixels at a
// time. A group whose input bytes fit in 128 bytes loads them once into two
// registers; for each tap and channel a byte permute (vpermt2b) places each
// output's input byte in its own 32-bit lane, which is multiplied by that
// output's weight and summed in int32 as the scalar code does. Integer sums
// do not depend on their order, so the bytes are the scalar pass's. Groups
// that do not fit (shrinking by more than about 2.3x) and the last out_w %
// 16 pixels take the scalar path.
typedef struct hplan {
    int64_t groups;
    int32_t *start; // first input byte of each group; -1: scalar
    uint8_t *idx;   // (groups, ksize, 3, 64): permute indices
    int32_t *w;     // (groups, ksize, 16): weights, 0 past a pixel's taps
} hplan;

static size_t hplan_bytes(int64_t out_w, int64_t ksize)
{
    int64_t g = out_w / 16;
    return (size_t)((g * 4 + 63) / 64 * 64 + g * ksize * 3 * 64 + g * ksize * 64);
}

static void hplan_make(hplan *pl, uint8_t *mem, int64_t out_w, int64_t ksize,
                       const int32_t *bounds, const int32_t *kk)
{
    int64_t G = out_w / 16;
    pl->groups = G;
    pl->start = (int32_t *)mem;
    pl->idx = mem + (G * 4 + 63) / 64 * 64;
    pl->w = (int32_t *)(pl->idx + G * ksize * 3 * 64);
    memset(pl->idx, 0, (size_t)(G * ksize * 3 * 64));
    for (int64_t g = 0; g < G; g++) {
        int64_t x0 = 16 * g, first = (int64_t)bounds[2 * x0] * 3, end = 0;
        for (int64_t l = 0; l < 16; l++) {
            int64_t e = ((int64_t)bounds[2 * (x0 + l)] + bounds[2 * (x0 + l) + 1]) * 3;
            end = e > end ? e : end;
        }
        pl->start[g] = end - first <= 128 ? (int32_t)first : -1;
        for (int64_t t = 0; t < ksize; t++)
            for (int64_t l = 0; l < 16; l++) {
                int64_t xx = x0 + l;
                bool on = t < bounds[2 * xx + 1] && pl->start[g] >= 0;
                pl->w[(g * ksize + t) * 16 + l] = on ? kk[xx * ksize + t] : 0;
                for (int64_t c = 0; c < 3; c++)
                    pl->idx[((g * ksize + t) * 3 + c) * 64 + 4 * l] =
                        on ? (uint8_t)((bounds[2 * xx] + t) * 3 + c - first) : 0;
            }
    }
}

// in_bytes: how many bytes from `in` may be read (masked loads never touch
// the others).
static void hpass_row_vbmi(uint8_t *restrict out, const uint8_t *restrict in, int64_t in_bytes,
                           int64_t out_w, int64_t ksize, const hplan *pl,
                           const int32_t *restrict bounds, const int32_t *restrict kk)
{
    const __m512i half = _mm512_set1_epi32(1 << (PRECISION_BITS - 1));
    const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    // Byte 3l + c of the output is byte 16c + l of (r | g | b).
    const __m512i interleave = _mm512_set_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 47, 31, 15, 46, 30, 14, 45, 29, 13, 44, 28,
        12, 43, 27, 11, 42, 26, 10, 41, 25, 9, 40, 24, 8, 39, 23, 7, 38, 22, 6, 37, 21, 5, 36, 20,
        4, 35, 19, 3, 34, 18, 2, 33, 17, 1, 32, 16, 0);
    const __mmask64 low_bytes = 0x1111111111111111ull; // byte 0 of each 32-bit lane
    for (int64_t g = 0; g < pl->groups; g++) {
        int64_t s = pl->start[g];
        if (s < 0) {
            hpass_row(out + 48 * g, in, 16, 3, ksize, bounds + 32 * g, kk + 16 * g * ksize);
            continue;
        }
        int64_t left = in_bytes - s;
        __mmask64 m0 = left >= 64 ? ~0ull : (1ull << left) - 1;
        __mmask64 m1 = left >= 128 ? ~0ull : left <= 64 ? 0 : (1ull << (left - 64)) - 1;
        __m512i lo = _mm512_maskz_loadu_epi8(m0, in + s);
        __m512i hi = _mm512_maskz_loadu_epi8(m1, in + s + 64);
        __m512i acc[3] = {half, half, half};
        const uint8_t *ix = pl->idx + g * ksize * 3 * 64;
        const int32_t *w = pl->w + g * ksize * 16;
        for (int64_t t = 0; t < ksize; t++) {
            __m512i wt = _mm512_loadu_si512(w + 16 * t);
            for (int c = 0; c < 3; c++) {
                __m512i at = _mm512_loadu_si512(ix + (3 * t + c) * 64);
                __m512i v = _mm512_maskz_permutex2var_epi8(low_bytes, lo, at, hi);
                acc[c] = _mm512_add_epi32(acc[c], _mm512_mullo_epi32(v, wt));
            }
        }
        __m128i rgb[3];
        for (int c = 0; c < 3; c++) { // clip8: (sum >> 22) clamped to 0..255
            __m512i v = _mm512_srai_epi32(acc[c], PRECISION_BITS);
            rgb[c] = _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, zero), top));
        }
        __m512i z = _mm512_castsi128_si512(rgb[0]);
        z = _mm512_inserti32x4(z, rgb[1], 1);
        z = _mm512_inserti32x4(z, rgb[2], 2);
        _mm512_mask_storeu_epi8(out + 48 * g, 0xFFFFFFFFFFFFull,
                                _mm512_permutexvar_epi8(interleave, z));
    }
    int64_t done = 16 * pl->groups;
    hpass_row(out + 3 * done, in, out_w - done, 3, ksize, bounds + 2 * done, kk + done * ksize);
}
#endif

sslc_status sslc_resize_bilinear(uint8_t *dst, int64_t out_h, int64_t out_w, const uint8_t *src,
                                 int64_t src_h, int64_t src_w, int64_t src_stride, int64_t C,
                                 const double box[4], sslc_scratch *scratch)
{
    sslc_status st = check_args(out_h, out_w, src_h, src_w, C, box);
    if (st != SSLC_OK)
        return st;
    int64_t kh = ksize_for(src_w, box[0], box[2], out_w);
    int64_t kv = ksize_for(src_h, box[1], box[3], out_h);
    bool need_h = out_w != src_w || box[0] != 0.0 || box[2] != (double)src_w;
    bool need_v = out_h != src_h || box[1] != 0.0 || box[3] != (double)src_h;
    size_t coef_bytes = (size_t)(out_w * (kh + 2) + out_h * (kv + 2)) * sizeof(int32_t);
    size_t tmp_bytes = (size_t)(kh > kv ? kh : kv) * sizeof(double);
    size_t a = (coef_bytes + 63) / 64 * 64, b = (tmp_bytes + 63) / 64 * 64;
    size_t img_bytes = (size_t)(src_h * out_w * C) + 64 + (size_t)(out_w * C) * sizeof(int32_t);
    size_t plan_bytes = 0;
#ifdef SSLC_RESIZE_VBMI
    if (C == 3 && need_h)
        plan_bytes = (hplan_bytes(out_w, kh) + 63) / 64 * 64;
#endif
    img_bytes = (img_bytes + 63) / 64 * 64;
    uint8_t *base = sslc_scratch_get(scratch, a + b + img_bytes + plan_bytes);
    if (!base)
        return SSLC_ERR_NOMEM;
    int32_t *kk_h = (int32_t *)base, *bounds_h = kk_h + out_w * kh;
    int32_t *kk_v = bounds_h + 2 * out_w, *bounds_v = kk_v + out_h * kv;
    double *tmp = (double *)(base + a);
    uint8_t *mid = base + a + b;
    coeffs(src_w, box[0], box[2], out_w, kh, bounds_h, kk_h, tmp);
    coeffs(src_h, box[1], box[3], out_h, kv, bounds_v, kk_v, tmp);

    // Pillow: the horizontal pass covers only the rows the vertical one reads.
    int64_t y_first = bounds_v[0];
    int64_t y_last = bounds_v[2 * out_h - 2] + bounds_v[2 * out_h - 1];
    const uint8_t *vin = src;
    int64_t vin_stride = src_stride;
    if (need_h) {
        int64_t y = y_first;
#ifdef SSLC_RESIZE_VBMI
        if (C == 3) {
            hplan plan;
            hplan_make(&plan, base + a + b + img_bytes, out_w, kh, bounds_h, kk_h);
            int64_t src_bytes = (src_h - 1) * src_stride + src_w * C;
            for (; y < y_last; y++)
                hpass_row_vbmi(mid + (y - y_first) * out_w * C, src + y * src_stride,
                               src_bytes - y * src_stride, out_w, kh, &plan, bounds_h, kk_h);
        }
#endif
        if (C == 3)
            for (; y + 1 < y_last; y += 2)
                hpass_rows2_c3(mid + (y - y_first) * out_w * C, mid + (y + 1 - y_first) * out_w * C,
                               src + y * src_stride, src + (y + 1) * src_stride, out_w, kh,
                               bounds_h, kk_h);
        for (; y < y_last; y++)
            hpass_row(mid + (y - y_first) * out_w * C, src + y * src_stride, out_w, C, kh,
                      bounds_h, kk_h);
        for (int64_t i = 0; i < out_h; i++)
            bounds_v[2 * i] -= (int32_t)y_first;
        vin = mid;
        vin_stride = out_w * C;
    }
    if (!need_v) {
        for (int64_t y = 0; y < out_h; y++)
            memcpy(dst + y * out_w * C, vin + y * vin_stride, (size_t)(out_w * C));
        return SSLC_OK;
    }
    const int32_t half = 1 << (PRECISION_BITS - 1);
    int64_t row = out_w * C;
    int32_t *acc = (int32_t *)(mid + ((size_t)(src_h * out_w * C) + 63) / 64 * 64);
    for (int64_t yy = 0; yy < out_h; yy++) {
        const int32_t *k = kk_v + yy * kv;
        int64_t y0 = bounds_v[2 * yy], n = bounds_v[2 * yy + 1];
        uint8_t *o = dst + yy * row;
        const uint8_t *p = vin + y0 * vin_stride;
        // Tap by tap over the whole row: a vectorisable multiply-add into
        // int32 accumulators (same sums as Pillow, same order per pixel).
        for (int64_t x = 0; x < row; x++)
            acc[x] = half;
        for (int64_t t = 0; t < n; t++) {
            const uint8_t *pt = p + t * vin_stride;
            int32_t kt = k[t];
            for (int64_t x = 0; x < row; x++)
                acc[x] += pt[x] * kt;
        }
        for (int64_t x = 0; x < row; x++)
            o[x] = clip8(acc[x]);
    }
    return SSLC_OK;
}

void sslc_resize_short_side_dims(int64_t height, int64_t width, int64_t size, int64_t *out_h,
                                 int64_t *out_w)
{
    // torchvision _compute_resized_output_size: short, long = (w, h) if w <= h else (h, w).
    if (width <= height) {
        *out_w = size;
        *out_h = (int64_t)((double)size * (double)height / (double)width);
    } else {
        *out_h = size;
        *out_w = (int64_t)((double)size * (double)width / (double)height);
    }
}

sslc_status sslc_resize_bilinear_naive(uint8_t *dst, int64_t out_h, int64_t out_w,
                                       const uint8_t *src, int64_t src_h, int64_t src_w,
                                       int64_t src_stride, int64_t C, const double box[4])
{
    sslc_status st = check_args(out_h, out_w, src_h, src_w, C, box);
    if (st != SSLC_OK)
        return st;
    int64_t kh = ksize_for(src_w, box[0], box[2], out_w);
    int64_t kv = ksize_for(src_h, box[1], box[3], out_h);
    int32_t *kk_h = malloc((size_t)(out_w * kh) * sizeof(int32_t));
    int32_t *kk_v = malloc((size_t)(out_h * kv) * sizeof(int32_t));
    int32_t *b_h = malloc((size_t)out_w * 2 * sizeof(int32_t));
    int32_t *b_v = malloc((size_t)out_h * 2 * sizeof(int32_t));
    double *tmp = malloc((size_t)(kh > kv ? kh : kv) * sizeof(double));
    uint8_t *mid = malloc((size_t)(src_h * out_w * C));
    if (!kk_h || !kk_v || !b_h || !b_v || !tmp || !mid) {
        st = sslc_error(SSLC_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    coeffs(src_w, box[0], box[2], out_w, kh, b_h, kk_h, tmp);
    coeffs(src_h, box[1], box[3], out_h, kv, b_v, kk_v, tmp);
    // Horizontal pass over every row (identity weights when not resizing).
    for (int64_t y = 0; y < src_h; y++)
        for (int64_t x = 0; x < out_w; x++)
            for (int64_t c = 0; c < C; c++) {
                int32_t s = 1 << (PRECISION_BITS - 1);
                for (int32_t t = 0; t < b_h[2 * x + 1]; t++)
                    s += src[y * src_stride + (b_h[2 * x] + t) * C + c] * kk_h[x * kh + t];
                mid[(y * out_w + x) * C + c] = clip8(s);
            }
    for (int64_t y = 0; y < out_h; y++)
        for (int64_t x = 0; x < out_w; x++)
            for (int64_t c = 0; c < C; c++) {
                int32_t s = 1 << (PRECISION_BITS - 1);
                for (int32_t t = 0; t < b_v[2 * y + 1]; t++)
                    s += mid[((b_v[2 * y] + t) * out_w + x) * C + c] * kk_v[y * kv + t];
                dst[(y * out_w + x) * C + c] = clip8(s);
            }
done:
    free(kk_h);
    free(kk_v);
    free(b_h);
    free(b_v);
    free(tmp);
    free(mid);
    return st;
}
