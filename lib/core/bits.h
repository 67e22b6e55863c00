/*
 * Bit sets: the one home of libcsp's bit helpers. A bit set of n bits is
 * (n + 63) / 64 64-bit words, bit i in bit i % 64 of word i / 64, the
 * unused bits of the last word 0. Masks (lib/prune/mask.h), allowed and
 * selected supports (lib/solver) and selections (lib/select) all use this
 * layout. Internal.
 */
#ifndef CSP_CORE_BITS_H
#define CSP_CORE_BITS_H

#include <stdbool.h>
#include <stdint.h>

/* Words of a bit set of @p numel bits. */
static inline int64_t csp__mask_words(int64_t numel) { return (numel + 63) / 64; }

/* Population count. Baseline x86-64 has no POPCNT instruction and GCC's
 * fallback is a library call: a SWAR count is faster there. */
static inline int csp__popcount64(uint64_t x) {
#if defined(__POPCNT__) || !defined(__x86_64__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
#endif
}

/* The low @p n bits set, 0 <= n <= 64. */
static inline uint64_t csp__lowmask(int n) { return n >= 64 ? ~0ULL : (1ULL << n) - 1; }

static inline bool csp__bit_get(const uint64_t *bits, int64_t i) {
    return (bits[i >> 6] >> (i & 63)) & 1u;
}

static inline void csp__bit_set(uint64_t *bits, int64_t i, bool v) {
    uint64_t m = (uint64_t)1 << (i & 63);
    if (v)
        bits[i >> 6] |= m;
    else
        bits[i >> 6] &= ~m;
}

/* Bits [pos, pos + n) of @p w as the low n bits, 1 <= n <= 64. */
static inline uint64_t csp__bits_load(const uint64_t *w, int64_t pos, int n) {
    int64_t q = pos >> 6;
    int r = (int)(pos & 63);
    uint64_t v = w[q] >> r;
    if (r + n > 64)
        v |= w[q + 1] << (64 - r);
    return v & csp__lowmask(n);
}

/* OR the low @p n bits of @p v into bits [pos, pos + n) of @p w. */
static inline void csp__bits_or(uint64_t *w, int64_t pos, int n, uint64_t v) {
    int64_t q = pos >> 6;
    int r = (int)(pos & 63);
    v &= csp__lowmask(n);
    w[q] |= v << r;
    if (r + n > 64)
        w[q + 1] |= v >> (64 - r);
}

/* Replace bits [pos, pos + n) of @p w by the low @p n bits of @p v,
 * 1 <= n <= 64. */
static inline void csp__bits_store(uint64_t *w, int64_t pos, int n, uint64_t v) {
    int64_t q = pos >> 6;
    int r = (int)(pos & 63);
    uint64_t m = csp__lowmask(n);
    v &= m;
    w[q] = (w[q] & ~(m << r)) | (v << r);
    if (r + n > 64)
        w[q + 1] = (w[q + 1] & ~(m >> (64 - r))) | (v >> (64 - r));
}

/* Ones among the first @p numel bits of @p mask. */
int64_t csp__mask_popcount(const uint64_t *mask, int64_t numel);
/* Ones among bits [begin, begin + n) of @p mask. */
int64_t csp__mask_popcount_range(const uint64_t *mask, int64_t begin, int64_t n);
/* All @p numel bits set, the unused bits of the last word clear. */
void csp__mask_fill(uint64_t *mask, int64_t numel);
/* OR bits [pos, pos + n) of @p src into the same bits of @p dst. */
void csp__mask_or_range(uint64_t *dst, const uint64_t *src, int64_t pos, int64_t n);
/* Copy bits [pos, pos + n) of @p src to bits [0, n) of @p dst; the bits of
 * dst past n in its last word are cleared. */
void csp__bits_extract(uint64_t *dst, const uint64_t *src, int64_t pos, int64_t n);
/* Copy bits [0, n) of @p src to bits [pos, pos + n) of @p dst, leaving the
 * other bits of dst as they are. */
void csp__bits_insert(uint64_t *dst, int64_t pos, const uint64_t *src, int64_t n);

#endif /* CSP_CORE_BITS_H */
