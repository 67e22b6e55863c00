/* Bit-packed masks: counting, applying to tensors, digests. */
#include "prune/mask.h"

#include "core/walk.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define MASK_SSE2 1
#else
#define MASK_SSE2 0
#endif
#if MASK_SSE2 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&             \
    !defined(CSP_NO_SIMD)
#include <immintrin.h>
#define MASK_AVX2 1
#else
#define MASK_AVX2 0
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

/* ---- energies of a mask change ----------------------------------------------- */

/* Portable: accumulator j % 4 of each piece; masked-out elements add
 * nothing (adding +0.0 would not change the sums either, so this matches
 * the SIMD versions bit for bit). */
static void energy_piece_c(const csp_tensor *t, const void *p, int n, uint64_t kb, uint64_t gb,
                           int shift, double *acc_w, double *acc_e) {
    for (int j = 0; j < n; j++) {
        double v = t->dtype == CSP_DTYPE_F64 ? ((const double *)p)[j] : ((const float *)p)[j];
        if (shift != 0) /* extreme float64 weights only: v 2^shift, exact */
            v = ldexp(v, shift);
        double sq = v * v;
        if ((kb >> j) & 1)
            acc_w[j & 3] += sq;
        if ((gb >> j) & 1)
            acc_e[j & 3] += sq;
    }
}

#if MASK_AVX2
__attribute__((target("avx2"))) static void energy_f32_avx2(const csp_tensor *t,
                                                            const uint64_t *kept,
                                                            const uint64_t *next, double *acc_w,
                                                            double *acc_e) {
    const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
    __m256d aw = _mm256_loadu_pd(acc_w), ae = _mm256_loadu_pd(acc_e);
    csp__walk w_;
    for (csp__walk_init(&w_, t, 0, t->numel); csp__walk_next(&w_);) {
        const float *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t kb = (kept[i >> 6] >> (i & 63)) & csp__lowmask(n);
        uint64_t gb = kb & ~((next[i >> 6] >> (i & 63)) & csp__lowmask(n));
        if (kb == 0)
            continue;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(p + j));
            __m256d sq = _mm256_mul_pd(v, v);
            __m256i mk = _mm256_cmpeq_epi64(
                _mm256_and_si256(_mm256_set1_epi64x((long long)((kb >> j) & 15)), bits), bits);
            __m256i mg = _mm256_cmpeq_epi64(
                _mm256_and_si256(_mm256_set1_epi64x((long long)((gb >> j) & 15)), bits), bits);
            aw = _mm256_add_pd(aw, _mm256_and_pd(sq, _mm256_castsi256_pd(mk)));
            ae = _mm256_add_pd(ae, _mm256_and_pd(sq, _mm256_castsi256_pd(mg)));
        }
        if (j < n) { /* the tail continues accumulators j % 4 = 0, 1, 2 */
            _mm256_storeu_pd(acc_w, aw);
            _mm256_storeu_pd(acc_e, ae);
            energy_piece_c(t, p + j, n - j, kb >> j, gb >> j, 0, acc_w, acc_e);
            aw = _mm256_loadu_pd(acc_w);
            ae = _mm256_loadu_pd(acc_e);
        }
    }
    _mm256_storeu_pd(acc_w, aw);
    _mm256_storeu_pd(acc_e, ae);
}

static bool mask_have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

#if MASK_SSE2
/* 2 mask bits -> 2 lanes of 64 bits. */
static const uint64_t lanes2[4][2] __attribute__((aligned(16))) = {
    {0, 0}, {~0ULL, 0}, {0, ~0ULL}, {~0ULL, ~0ULL}};

static void energy_f32_sse2(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                            double *acc_w, double *acc_e) {
    __m128d aw0 = _mm_loadu_pd(acc_w), aw1 = _mm_loadu_pd(acc_w + 2);
    __m128d ae0 = _mm_loadu_pd(acc_e), ae1 = _mm_loadu_pd(acc_e + 2);
    csp__walk w_;
    for (csp__walk_init(&w_, t, 0, t->numel); csp__walk_next(&w_);) {
        const float *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t kb = (kept[i >> 6] >> (i & 63)) & csp__lowmask(n);
        uint64_t gb = kb & ~((next[i >> 6] >> (i & 63)) & csp__lowmask(n));
        if (kb == 0)
            continue;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            __m128 v = _mm_loadu_ps(p + j);
            __m128d lo = _mm_cvtps_pd(v), hi = _mm_cvtps_pd(_mm_movehl_ps(v, v));
            lo = _mm_mul_pd(lo, lo);
            hi = _mm_mul_pd(hi, hi);
            unsigned k4 = (unsigned)(kb >> j) & 15, g4 = (unsigned)(gb >> j) & 15;
            aw0 = _mm_add_pd(aw0, _mm_and_pd(lo, _mm_load_pd((const double *)lanes2[k4 & 3])));
            aw1 = _mm_add_pd(aw1, _mm_and_pd(hi, _mm_load_pd((const double *)lanes2[k4 >> 2])));
            ae0 = _mm_add_pd(ae0, _mm_and_pd(lo, _mm_load_pd((const double *)lanes2[g4 & 3])));
            ae1 = _mm_add_pd(ae1, _mm_and_pd(hi, _mm_load_pd((const double *)lanes2[g4 >> 2])));
        }
        if (j < n) {
            _mm_storeu_pd(acc_w, aw0);
            _mm_storeu_pd(acc_w + 2, aw1);
            _mm_storeu_pd(acc_e, ae0);
            _mm_storeu_pd(acc_e + 2, ae1);
            energy_piece_c(t, p + j, n - j, kb >> j, gb >> j, 0, acc_w, acc_e);
            aw0 = _mm_loadu_pd(acc_w);
            aw1 = _mm_loadu_pd(acc_w + 2);
            ae0 = _mm_loadu_pd(acc_e);
            ae1 = _mm_loadu_pd(acc_e + 2);
        }
    }
    _mm_storeu_pd(acc_w, aw0);
    _mm_storeu_pd(acc_w + 2, aw1);
    _mm_storeu_pd(acc_e, ae0);
    _mm_storeu_pd(acc_e + 2, ae1);
}
#endif

static void energy_c(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                     int shift, double *acc_w, double *acc_e) {
    csp__walk w_;
    for (csp__walk_init(&w_, t, 0, t->numel); csp__walk_next(&w_);) {
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t kb = (kept[i >> 6] >> (i & 63)) & csp__lowmask(n);
        uint64_t gb = kb & ~((next[i >> 6] >> (i & 63)) & csp__lowmask(n));
        if (kb != 0)
            energy_piece_c(t, w_.p, n, kb, gb, shift, acc_w, acc_e);
    }
}

/* The shift of a float64 tensor's sums (weights times 2^shift): 0 while every kept |w| lies in
 * [2^-300, 2^300] (squares and their sums can neither overflow nor lose
 * precision to underflow), else -e, the shift that brings the largest
 * kept |w| = m 2^e into [1, 2) (the max-rescale of LAPACK's dnrm2: both
 * sums scaled by 2^-2e, exactly, so their ratio is unchanged). */
static int energy_shift(const csp_tensor *t, const uint64_t *kept) {
    if (t->dtype != CSP_DTYPE_F64)
        return 0; /* float32 squares stay far inside the double range */
    double mx = 0.0;
    csp__walk w_;
    for (csp__walk_init(&w_, t, 0, t->numel); csp__walk_next(&w_);) {
        const int64_t i = w_.i;
        uint64_t kb = (kept[i >> 6] >> (i & 63)) & csp__lowmask(w_.n);
        const double *p = w_.p;
        for (int j = 0; kb != 0 && j < w_.n; j++)
            if (((kb >> j) & 1) && fabs(p[j]) > mx)
                mx = fabs(p[j]);
    }
    if (!(mx > 0.0) || (mx >= 0x1p-300 && mx <= 0x1p300))
        return 0;
    return -ilogb(mx);
}

void csp__mask_energy_ex(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                         double *kept_sq, double *dropped_sq, int kernels) {
    double acc_w[4] = {0.0, 0.0, 0.0, 0.0}, acc_e[4] = {0.0, 0.0, 0.0, 0.0};
    if (t->dtype != CSP_DTYPE_F32 || kernels == 2)
        energy_c(t, kept, next, energy_shift(t, kept), acc_w, acc_e);
#if MASK_AVX2
    else if (kernels == 0 && mask_have_avx2())
        energy_f32_avx2(t, kept, next, acc_w, acc_e);
#endif
#if MASK_SSE2
    else
        energy_f32_sse2(t, kept, next, acc_w, acc_e);
#else
    else
        energy_c(t, kept, next, 0, acc_w, acc_e);
#endif
    *kept_sq = (acc_w[0] + acc_w[1]) + (acc_w[2] + acc_w[3]);
    *dropped_sq = (acc_e[0] + acc_e[1]) + (acc_e[2] + acc_e[3]);
}

void csp__mask_energy(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                      double *kept_sq, double *dropped_sq) {
    csp__mask_energy_ex(t, kept, next, kept_sq, dropped_sq, 0);
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
