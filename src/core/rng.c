#include "src/core/rng.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

sslc_rng sslc_rng_make(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    // Chain the coordinates through the mixer so that (a, b) and (b, a) differ.
    uint64_t k = mix64(seed + 0x9e3779b97f4a7c15ull);
    k = mix64(k ^ (a + 0x632be59bd9b4e019ull));
    k = mix64(k ^ (b + 0x85157af5ull * 0x9e3779b97f4a7c15ull));
    k = mix64(k ^ (c + 0xd6e8feb86659fd93ull));
    k = mix64(k ^ (d + 0xa0761d6478bd642full));
    return (sslc_rng){.key = k, .counter = 0};
}

uint64_t sslc_rng_u64(sslc_rng *rng)
{
    return mix64(rng->key + (rng->counter++ + 1) * 0x9e3779b97f4a7c15ull);
}

uint32_t sslc_rng_u32(sslc_rng *rng) { return (uint32_t)(sslc_rng_u64(rng) >> 32); }

double sslc_rng_uniform(sslc_rng *rng) { return (double)(sslc_rng_u64(rng) >> 11) * 0x1.0p-53; }

double sslc_rng_range(sslc_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * sslc_rng_uniform(rng);
}

uint64_t sslc_rng_below(sslc_rng *rng, uint64_t n)
{
    // Rejection sampling: discard the top partial block of 2^64 values.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = sslc_rng_u64(rng);
    while (x >= limit);
    return x % n;
}

double sslc_rng_normal(sslc_rng *rng)
{
    double u1 = 1.0 - sslc_rng_uniform(rng); // (0, 1]: log is finite
    double u2 = sslc_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void sslc_rng_permutation(sslc_rng *rng, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sslc_rng_below(rng, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
