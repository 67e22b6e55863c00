/* Bit-packed masks: counting, applying to tensors, digests. */
#include "prune/mask.h"

#include "core/walk.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define MASK_SSE2 1
#else
#define MASK_SSE2 0
#endif

/* ---- apply ----------------------------------------------------------------- */

#if MASK_SSE2
/* Lane masks for 4 x 32-bit lanes from 4 mask bits, and 2 x 64-bit lanes
 * from 2 bits (constant tables, no mutable state). */
#define L4(b)                                                                                      \
    { (b) & 1 ? ~0u : 0u, (b)&2 ? ~0u : 0u, (b)&4 ? ~0u : 0u, (b)&8 ? ~0u : 0u }
static const uint32_t lanes4[16][4]
    __attribute__((aligned(16))) = {L4(0), L4(1), L4(2),  L4(3),  L4(4),  L4(5),  L4(6),  L4(7),
                                    L4(8), L4(9), L4(10), L4(11), L4(12), L4(13), L4(14), L4(15)};
#undef L4
#endif

/* 64 floats (32-bit lanes) under 64 mask bits. */
static inline void apply64_u32(uint32_t *p, uint64_t bits) {
#if MASK_SSE2
    for (int j = 0; j < 64; j += 4) {
        __m128i m = _mm_load_si128((const __m128i *)lanes4[(bits >> j) & 15]);
        __m128i v = _mm_loadu_si128((const __m128i *)(p + j));
        _mm_storeu_si128((__m128i *)(p + j), _mm_and_si128(v, m));
    }
#else
    for (int j = 0; j < 64; j++)
        p[j] &= 0u - (uint32_t)((bits >> j) & 1);
#endif
}

static inline void apply64_u64(uint64_t *p, uint64_t bits) {
    for (int j = 0; j < 64; j++)
        p[j] &= 0ULL - ((bits >> j) & 1);
}

/* Elements are handled through integer views so NaNs, -0 and signalling
 * patterns at kept positions stay bit-identical. */
static void apply_range(const csp_tensor *t, const uint64_t *mask, int64_t a, int64_t b) {
    if (t->dtype == CSP_DTYPE_F64) {
        csp__walk w_;
        for (csp__walk_init(&w_, t, a, b); csp__walk_next(&w_);) {
            uint64_t *p = w_.p;
            const int64_t i = w_.i;
            const int n = w_.n;
            uint64_t cb = (mask[i >> 6] >> (i & 63)) & csp__lowmask(n);
            if (cb == csp__lowmask(n)) {
                /* all kept: nothing to write */
            } else if (cb == 0) {
                memset(p, 0, (size_t)n * sizeof *p);
            } else if (n == 64) {
                apply64_u64(p, cb);
            } else {
                for (int j = 0; j < n; j++)
                    p[j] &= 0ULL - ((cb >> j) & 1);
            }
        }
    } else {
        csp__walk w_;
        for (csp__walk_init(&w_, t, a, b); csp__walk_next(&w_);) {
            uint32_t *p = w_.p;
            const int64_t i = w_.i;
            const int n = w_.n;
            uint64_t cb = (mask[i >> 6] >> (i & 63)) & csp__lowmask(n);
            if (cb == csp__lowmask(n)) {
                /* all kept: nothing to write */
            } else if (cb == 0) {
                memset(p, 0, (size_t)n * sizeof *p);
            } else if (n == 64) {
                apply64_u32(p, cb);
            } else {
                for (int j = 0; j < n; j++)
                    p[j] &= 0u - (uint32_t)((cb >> j) & 1);
            }
        }
    }
}

typedef struct {
    const csp_tensor *t;
    const uint64_t *mask;
} apply_job;

static void apply_words(void *arg, int64_t w0, int64_t w1, int32_t worker) {
    (void)worker;
    const apply_job *job = arg;
    int64_t b = w1 * 64 < job->t->numel ? w1 * 64 : job->t->numel;
    apply_range(job->t, job->mask, w0 * 64, b);
}

/* Below this many words per thread a thread start costs more than it saves. */
#define APPLY_GRAIN_WORDS (1 << 15)

void csp__mask_apply(csp_context *ctx, const csp_tensor *t, const uint64_t *mask) {
    apply_job job = {t, mask};
    csp__parallel_for(ctx, csp__mask_words(t->numel), APPLY_GRAIN_WORDS, apply_words, &job);
}

/* ---- digest ---------------------------------------------------------------- */

uint64_t csp__fnv1a(uint64_t h, const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= bytes[i];
        h *= CSP__FNV_PRIME;
    }
    return h;
}

uint64_t csp__mask_digest(uint64_t h, const uint64_t *mask, int64_t numel) {
    uint8_t le[8];
    for (int j = 0; j < 8; j++)
        le[j] = (uint8_t)((uint64_t)numel >> (8 * j));
    h = csp__fnv1a(h, le, 8);
    int64_t nbytes = (numel + 7) / 8;
    for (int64_t i = 0; i < nbytes; i++) {
        h ^= (uint8_t)(mask[i >> 3] >> (8 * (i & 7)));
        h *= CSP__FNV_PRIME;
    }
    return h;
}
