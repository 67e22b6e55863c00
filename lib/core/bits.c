/* Bit sets (lib/core/bits.h). */
#include "core/bits.h"

int64_t csp__mask_popcount(const uint64_t *mask, int64_t numel) {
    int64_t c = 0, nw = numel / 64;
    for (int64_t w = 0; w < nw; w++)
        c += csp__popcount64(mask[w]);
    if (numel % 64)
        c += csp__popcount64(mask[nw] & csp__lowmask((int)(numel % 64)));
    return c;
}

int64_t csp__mask_popcount_range(const uint64_t *mask, int64_t begin, int64_t n) {
    int64_t c = 0;
    while (n > 0) {
        int piece = (int)(64 - (begin & 63));
        if (piece > n)
            piece = (int)n;
        c += csp__popcount64(csp__bits_load(mask, begin, piece));
        begin += piece;
        n -= piece;
    }
    return c;
}

void csp__mask_fill(uint64_t *mask, int64_t numel) {
    int64_t nw = csp__mask_words(numel);
    for (int64_t w = 0; w < nw; w++)
        mask[w] = ~0ULL;
    if (numel % 64)
        mask[nw - 1] = csp__lowmask((int)(numel % 64));
}

void csp__mask_or_range(uint64_t *dst, const uint64_t *src, int64_t pos, int64_t n) {
    while (n > 0) {
        int piece = (int)(64 - (pos & 63));
        if (piece > n)
            piece = (int)n;
        csp__bits_or(dst, pos, piece, csp__bits_load(src, pos, piece));
        pos += piece;
        n -= piece;
    }
}

void csp__bits_extract(uint64_t *dst, const uint64_t *src, int64_t pos, int64_t n) {
    for (int64_t c = 0; c < n; c += 64) {
        int piece = n - c < 64 ? (int)(n - c) : 64;
        dst[c >> 6] = csp__bits_load(src, pos + c, piece);
    }
}

void csp__bits_insert(uint64_t *dst, int64_t pos, const uint64_t *src, int64_t n) {
    for (int64_t c = 0; c < n; c += 64) {
        int piece = n - c < 64 ? (int)(n - c) : 64;
        csp__bits_store(dst, pos + c, piece, src[c >> 6]);
    }
}
