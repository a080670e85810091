// exp and the normal distribution for `omp simd` loops.
//
// libm's expf and erff are calls the compiler cannot vectorise: with the
// loops around them, a fifth of a ViT-Tiny training step (docs/benchmarks.md).
// These are branch-free polynomials that vectorise, accurate to a few float
// ulps (tests/test_core.c holds them against double precision).
#ifndef SSLC_CORE_VMATH_H
#define SSLC_CORE_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// exp(a): a = n ln2 + r with |r| <= ln2/2, exp(a) = 2^n exp(r), exp(r) by
// its Taylor series to r^7 (relative error below 5e-9 before rounding); ln2
// is split in two so that n ln2 is exact. Below -87 the result is 0 (exp is
// subnormal there: flushed, as the slow subnormal arithmetic is not worth a
// value below 1e-38), above 88 it is +inf, and NaN stays NaN.
static inline float sslc_vexpf(float a)
{
    float c = a > -87.0f ? (a < 88.0f ? a : 88.0f) : -87.0f; // NaN: -87
    float n = rintf(c * 1.44269504f);
    float r = (c - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    p *= scale;
    return a < -87.0f ? 0.0f : a > 88.0f ? INFINITY : a == a ? p : a;
}

// The standard normal distribution at x: its CDF Phi(x) returned, its density
// phi(x) in *density. The tail P(Z > |x|) = erfc(z) / 2, z = |x| / sqrt 2, is
// computed as t S(t) exp(-z^2) / 2 with t = 1 / (1 + 0.35 z) and S a degree-9
// polynomial fitted (least squares, z in [0, 12]) to erfc(z) exp(z^2) / t, to
// 2.5e-8 relative; so the lower tail keeps its relative accuracy where
// 1 + erf(x / sqrt 2) would cancel.
static inline float sslc_normal_cdf(float x, float *density)
{
    float z = fabsf(x) * 0.707106781f;
    float t = 1.0f / (1.0f + 0.35f * z);
    float s = 4.190396888e-02f;
    s = s * t - 1.777614692e-01f;
    s = s * t + 2.253609240e-01f;
    s = s * t - 8.583207691e-02f;
    s = s * t + 1.351108955e-01f;
    s = s * t + 1.203036328e-01f;
    s = s * t + 1.600818209e-01f;
    s = s * t + 1.859906855e-01f;
    s = s * t + 1.973698999e-01f;
    s = s * t + 1.974717441e-01f;
    float e = sslc_vexpf(-z * z);
    *density = 0.398942280f * e;
    float tail = 0.5f * t * s * e;
    return x < 0.0f ? tail : 1.0f - tail;
}

#endif
