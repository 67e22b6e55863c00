/*
 * Explicit little-endian serialisation and CRC-32 for the I/O layer.
 * Internal. Every multi-byte field of every libcsp file format is written
 * and read through these helpers, byte by byte, so the formats are the same
 * on every host whatever its endianness or alignment rules.
 */
#ifndef CSP_IO_BYTES_H
#define CSP_IO_BYTES_H

#include <string.h>

#include "core/internal.h"

/* ---- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) ------------------------
 * The CRC of zlib's crc32(), Python's zlib.crc32() and binascii.crc32():
 * start with 0 and chain calls, csp__crc32(csp__crc32(0, a, na), b, nb) is
 * the CRC of a followed by b. */
uint32_t csp__crc32(uint32_t crc, const void *data, size_t n);

/* ---- little-endian loads and stores ---------------------------------------- */

static inline void csp__st_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void csp__st_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void csp__st_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t csp__ld_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (uint16_t)(p[1] << 8));
}
static inline uint32_t csp__ld_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t csp__ld_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
/* IEEE-754 values travel as their bit patterns. */
static inline uint64_t csp__f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static inline double csp__bits_f64(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
static inline uint32_t csp__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float csp__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round @p n up to a multiple of 8 (n small enough not to overflow). */
static inline uint64_t csp__pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* ---- a bounded writer ----------------------------------------------------- *
 * Writers compute their exact size first, so a write past the end is a bug:
 * it is caught (pos stops, ok = false) and reported as CSP_E_INVALID rather
 * than corrupting memory. */
typedef struct {
    uint8_t *p;
    uint64_t cap, pos;
    bool ok;
} csp__wbuf;

static inline bool csp__w_room(csp__wbuf *w, uint64_t n) {
    if (!w->ok || n > w->cap - w->pos) {
        w->ok = false;
        return false;
    }
    return true;
}
static inline void csp__w_u8(csp__wbuf *w, uint8_t v) {
    if (csp__w_room(w, 1))
        w->p[w->pos++] = v;
}
static inline void csp__w_u16(csp__wbuf *w, uint16_t v) {
    if (csp__w_room(w, 2)) {
        csp__st_u16(w->p + w->pos, v);
        w->pos += 2;
    }
}
static inline void csp__w_u32(csp__wbuf *w, uint32_t v) {
    if (csp__w_room(w, 4)) {
        csp__st_u32(w->p + w->pos, v);
        w->pos += 4;
    }
}
static inline void csp__w_u64(csp__wbuf *w, uint64_t v) {
    if (csp__w_room(w, 8)) {
        csp__st_u64(w->p + w->pos, v);
        w->pos += 8;
    }
}
static inline void csp__w_i32(csp__wbuf *w, int32_t v) { csp__w_u32(w, (uint32_t)v); }
static inline void csp__w_i64(csp__wbuf *w, int64_t v) { csp__w_u64(w, (uint64_t)v); }
static inline void csp__w_f64(csp__wbuf *w, double v) { csp__w_u64(w, csp__f64_bits(v)); }
static inline void csp__w_bytes(csp__wbuf *w, const void *src, uint64_t n) {
    if (n > 0 && csp__w_room(w, n)) {
        memcpy(w->p + w->pos, src, (size_t)n);
        w->pos += n;
    }
}
/* Zero bytes up to the next multiple of 8 of pos. */
static inline void csp__w_pad8(csp__wbuf *w) {
    uint64_t n = csp__pad8(w->pos) - w->pos;
    if (n > 0 && csp__w_room(w, n)) {
        memset(w->p + w->pos, 0, (size_t)n);
        w->pos += n;
    }
}

/* ---- a bounded reader ----------------------------------------------------- *
 * Every read is bounds-checked: reading past the end sets ok = false and
 * yields zeros, so a parser reads on and checks `ok` once. */
typedef struct {
    const uint8_t *p;
    uint64_t len, pos;
    bool ok;
} csp__rbuf;

static inline void csp__r_init(csp__rbuf *r, const void *p, uint64_t len) {
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->ok = true;
}
static inline const uint8_t *csp__r_take(csp__rbuf *r, uint64_t n) {
    if (!r->ok || n > r->len - r->pos) {
        r->ok = false;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}
static inline uint8_t csp__r_u8(csp__rbuf *r) {
    const uint8_t *q = csp__r_take(r, 1);
    return q == NULL ? 0 : q[0];
}
static inline uint16_t csp__r_u16(csp__rbuf *r) {
    const uint8_t *q = csp__r_take(r, 2);
    return q == NULL ? 0 : csp__ld_u16(q);
}
static inline uint32_t csp__r_u32(csp__rbuf *r) {
    const uint8_t *q = csp__r_take(r, 4);
    return q == NULL ? 0 : csp__ld_u32(q);
}
static inline uint64_t csp__r_u64(csp__rbuf *r) {
    const uint8_t *q = csp__r_take(r, 8);
    return q == NULL ? 0 : csp__ld_u64(q);
}
static inline int32_t csp__r_i32(csp__rbuf *r) { return (int32_t)csp__r_u32(r); }
static inline int64_t csp__r_i64(csp__rbuf *r) { return (int64_t)csp__r_u64(r); }
static inline double csp__r_f64(csp__rbuf *r) { return csp__bits_f64(csp__r_u64(r)); }
/* Skip the padding to the next multiple of 8 of pos; false (and ok = false)
 * when a padding byte is not zero. */
static inline bool csp__r_pad8(csp__rbuf *r) {
    uint64_t n = csp__pad8(r->pos) - r->pos;
    const uint8_t *q = csp__r_take(r, n);
    if (q == NULL)
        return false;
    for (uint64_t i = 0; i < n; i++)
        if (q[i] != 0) {
            r->ok = false;
            return false;
        }
    return true;
}

/* "ABCD" as the little-endian u32 whose bytes are 'A' 'B' 'C' 'D'. */
#define CSP__TAG(a, b, c, d)                                                                       \
    ((uint32_t)(uint8_t)(a) | ((uint32_t)(uint8_t)(b) << 8) | ((uint32_t)(uint8_t)(c) << 16) |    \
     ((uint32_t)(uint8_t)(d) << 24))

/* A tag as printable text (non-printable bytes as '?'), for messages. */
static inline void csp__tag_text(uint32_t tag, char out[5]) {
    for (int i = 0; i < 4; i++) {
        char c = (char)(tag >> (8 * i));
        out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    out[4] = '\0';
}

#endif
