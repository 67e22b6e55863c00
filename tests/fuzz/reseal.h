/* Recompute the CRCs of a (possibly mutated) checkpoint or export, so that
 * fuzzers and mutation tests reach the parsers behind the CRC checks. An
 * independent reading of the layouts of docs/formats.md: it trusts only
 * what it bounds-checks and leaves anything implausible as it is. Shared by
 * the Check suites and the fuzz targets (header only). */
#ifndef CSP_TEST_RESEAL_H
#define CSP_TEST_RESEAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/bytes.h"

/* Checkpoint: section CRCs (for entries that lie inside the buffer), the
 * header CRC and the file CRC. */
static inline void reseal_checkpoint(uint8_t *b, size_t n) {
    if (n < 56)
        return;
    uint32_t hs = csp__ld_u32(b + 12);
    if (hs < 48 || hs > 4096 || hs > n)
        return;
    uint32_t count = csp__ld_u32(b + 24);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t e = hs + i * 40;
        if (e + 40 > n)
            break;
        uint64_t off = csp__ld_u64(b + e + 16), len = csp__ld_u64(b + e + 24);
        if (off <= n && len <= n - off)
            csp__st_u32(b + e + 12, csp__crc32(0, b + off, (size_t)len));
    }
    csp__st_u32(b + hs - 4, csp__crc32(0, b, hs - 4));
    csp__st_u32(b + n - 8, csp__crc32(0, b, n - 8));
}

/* Export: the one CRC at header_size - 4 over everything else. */
static inline void reseal_export(uint8_t *b, size_t n) {
    if (n < 80)
        return;
    uint32_t hs = csp__ld_u16(b + 6);
    if (hs < 8 || hs > n)
        return;
    uint32_t crc = csp__crc32(0, b, hs - 4);
    crc = csp__crc32(crc, b + hs, n - hs);
    csp__st_u32(b + hs - 4, crc);
}

#endif
