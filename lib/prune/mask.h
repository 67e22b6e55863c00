/*
 * Bit-packed masks: 1 bit per weight, bit i (row-major flat index over the
 * shape, ignoring row_stride) in bit i % 64 of word i / 64, 1 = kept; the
 * unused bits of the last word are 0. Internal.
 */
#ifndef CSP_PRUNE_MASK_H
#define CSP_PRUNE_MASK_H

#include "core/internal.h"

/* Words of a mask of @p numel bits. */
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

/* Ones among the first @p numel bits of @p mask. */
int64_t csp__mask_popcount(const uint64_t *mask, int64_t numel);
/* Ones among bits [begin, begin + n) of @p mask. */
int64_t csp__mask_popcount_range(const uint64_t *mask, int64_t begin, int64_t n);
/* All @p numel bits set, the unused bits of the last word clear. */
void csp__mask_fill(uint64_t *mask, int64_t numel);
/* OR bits [pos, pos + n) of @p src into the same bits of @p dst. */
void csp__mask_or_range(uint64_t *dst, const uint64_t *src, int64_t pos, int64_t n);

/* Zero the elements of @p t whose bit in @p mask is 0; elements whose bit is
 * 1 are not written, nor are whole words of ones. Uses the context's worker
 * threads for large tensors; the result does not depend on their number. */
void csp__mask_apply(csp_context *ctx, const csp_tensor *t, const uint64_t *mask);

/* FNV-1a 64 over @p n bytes, continuing from @p h. */
#define CSP__FNV_OFFSET 0xcbf29ce484222325ULL
#define CSP__FNV_PRIME 0x100000001b3ULL
uint64_t csp__fnv1a(uint64_t h, const uint8_t *bytes, size_t n);
/* Continue digest @p h with @p numel (8 little-endian bytes) and the mask's
 * (numel + 7) / 8 little-endian bytes. */
uint64_t csp__mask_digest(uint64_t h, const uint64_t *mask, int64_t numel);

/* Walk the flat range [a, b) of a tensor in pieces that stay within one row
 * and one mask word:
 *   csp__walk w;
 *   for (csp__walk_init(&w, t, a, b); csp__walk_next(&w);)
 *       use w.p (first element), w.i (its flat index), w.n (1..64 elements)
 */
typedef struct {
    char *base;
    size_t esize;
    int64_t cols, stride; /* a contiguous tensor is walked as one row */
    int64_t r, c, end;
    void *p;
    int64_t i;
    int n;
} csp__walk;

static inline void csp__walk_init(csp__walk *w, const csp_tensor *t, int64_t a, int64_t b) {
    w->base = (char *)t->data;
    w->esize = csp__dtype_size(t->dtype);
    w->cols = t->row_stride == t->cols ? t->numel : t->cols;
    w->stride = t->row_stride;
    w->r = a / w->cols;
    w->c = a % w->cols;
    w->end = b;
    w->i = a;
    w->n = 0;
}

static inline bool csp__walk_next(csp__walk *w) {
    w->i += w->n;
    w->c += w->n;
    if (w->c == w->cols) {
        w->c = 0;
        w->r++;
    }
    if (w->i >= w->end)
        return false;
    int64_t n = w->cols - w->c;
    if (n > w->end - w->i)
        n = w->end - w->i;
    if (n > 64 - (w->i & 63))
        n = 64 - (w->i & 63);
    w->n = (int)n;
    w->p = w->base + (size_t)(w->r * w->stride + w->c) * w->esize;
    return true;
}

#endif
