/* rng.h - small deterministic PRNG for the speech trainer (header only).
 *
 * splitmix64 expands a 64-bit seed into the 256-bit state of xoshiro256**
 * (Blackman & Vigna, public domain reference algorithms, re-implemented here).
 * No global state: every generator is a value owned by its caller.
 */
#ifndef SP_RNG_H
#define SP_RNG_H

#include <stdint.h>

typedef struct sp_rng {
    uint64_t s[4];
} sp_rng;

static inline uint64_t sp_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/** Seed a generator; any seed (including 0) gives a valid state. */
static inline void sp_rng_seed(sp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = sp_splitmix64(&x);
}

static inline uint64_t sp_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/** Next 64 random bits (xoshiro256**). */
static inline uint64_t sp_rng_next(sp_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sp_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sp_rng_rotl(s[3], 45);
    return result;
}

/** Uniform float in [0, 1) with 24 random bits. */
static inline float sp_rng_uniform(sp_rng *r)
{
    return (float)(sp_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/** Uniform integer in [0, n) without modulo bias (n > 0). */
static inline uint64_t sp_rng_below(sp_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* multiple of n */
    uint64_t x;
    do {
        x = sp_rng_next(r);
    } while (x >= limit);
    return x % n;
}

/** Fisher-Yates shuffle of an int64 array. */
static inline void sp_rng_shuffle_i64(sp_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sp_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

#endif /* SP_RNG_H */
