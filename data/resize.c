#include "data/resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
    uint8_t *base = sslc_scratch_get(scratch, a + b + img_bytes);
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
    int64_t vin_stride = src_stride, vin_w = src_w;
    if (need_h) {
        int64_t y = y_first;
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
        vin_w = out_w;
    }
    if (!need_v) {
        for (int64_t y = 0; y < out_h; y++)
            memcpy(dst + y * out_w * C, vin + (need_h ? y : y) * vin_stride, (size_t)(out_w * C));
        return SSLC_OK;
    }
    (void)vin_w;
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
