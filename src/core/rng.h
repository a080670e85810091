// Counter-based random numbers.
//
// A stream is a pure function of its key, so every random decision can be
// derived from (seed, epoch, sample index, view, op) without shared state:
// results do not depend on thread count or scheduling, and resuming a run
// needs only the position. Draw k of a stream is mix(key, k) with a
// SplitMix64-style finaliser (Steele, Lea & Flood 2014), cheap and well mixed.
#ifndef SSLC_CORE_RNG_H
#define SSLC_CORE_RNG_H

#include <stdint.h>

typedef struct sslc_rng {
    uint64_t key;
    uint64_t counter;
} sslc_rng;

// A stream keyed by up to five coordinates; unused ones are 0.
sslc_rng sslc_rng_make(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

uint64_t sslc_rng_u64(sslc_rng *rng);
uint32_t sslc_rng_u32(sslc_rng *rng);
// Uniform in [0, 1) with 53 random bits.
double sslc_rng_uniform(sslc_rng *rng);
// Uniform in [lo, hi).
double sslc_rng_range(sslc_rng *rng, double lo, double hi);
// Uniform integer in [0, n), without modulo bias; n > 0.
uint64_t sslc_rng_below(sslc_rng *rng, uint64_t n);
// Standard normal (Box-Muller; uses two draws).
double sslc_rng_normal(sslc_rng *rng);
// perm: (n,) filled with a uniform random permutation of 0..n-1 (Fisher-Yates).
void sslc_rng_permutation(sslc_rng *rng, int64_t *perm, int64_t n);

#endif
