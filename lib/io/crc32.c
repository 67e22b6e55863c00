/* CRC-32 (IEEE 802.3 / zlib), slicing-by-8. The byte table is a compile-time
 * constant; the other seven are derived from it on the stack when a buffer is
 * long enough to pay for them (no mutable globals, no lazy init). */
#include "io/bytes.h"

#define CRC_POLY 0xEDB88320u
#define C1(c) (((c) >> 1) ^ (((c)&1u) ? CRC_POLY : 0u))
#define C8(c) C1(C1(C1(C1(C1(C1(C1(C1((uint32_t)(c)))))))))
#define T4(n) C8(n), C8((n) + 1), C8((n) + 2), C8((n) + 3)
#define T16(n) T4(n), T4((n) + 4), T4((n) + 8), T4((n) + 12)
#define T64(n) T16(n), T16((n) + 16), T16((n) + 32), T16((n) + 48)

static const uint32_t crc_table[256] = {T64(0), T64(64), T64(128), T64(192)};

#undef T64
#undef T16
#undef T4
#undef C8
#undef C1

/* Below this many bytes the table derivation costs more than it saves. */
#define SLICE_MIN 1024

uint32_t csp__crc32(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    if (n >= SLICE_MIN) {
        uint32_t t[8][256];
        for (int i = 0; i < 256; i++)
            t[0][i] = crc_table[i];
        for (int k = 1; k < 8; k++)
            for (int i = 0; i < 256; i++)
                t[k][i] = (t[k - 1][i] >> 8) ^ crc_table[t[k - 1][i] & 0xff];
        while (n >= 8) {
            uint32_t lo = crc ^ csp__ld_u32(p);
            uint32_t hi = csp__ld_u32(p + 4);
            crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
                  t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
                  t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
            p += 8;
            n -= 8;
        }
    }
    while (n-- > 0)
        crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xff];
    return ~crc;
}
