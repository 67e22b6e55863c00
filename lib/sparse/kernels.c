/* Row kernels of sparse inference, and the one place that picks them.
 *
 * Every family fills a csp__sparse_kernels table: portable C (always),
 * AVX2+FMA and AVX-512F on x86-64 with GCC or Clang, chosen at run time
 * from the CPU's features (__builtin_cpu_supports, as lib/linalg/kernels.c
 * does), and NEON on aarch64, used always there (NEON is part of the
 * architecture; CSP_NO_SIMD leaves the portable C alone). Within a family the
 * summation order of a row depends only on its length, never on the batch
 * group (nb) or the thread, so results never depend on the thread count or
 * the batch size. */
#include "sparse/sparse_internal.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CSP_NO_SIMD)
#define CSP_X86 1
#include <immintrin.h>
#else
#define CSP_X86 0
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(CSP_NO_SIMD)
#define CSP_NEON 1
#include <arm_neon.h>
#else
#define CSP_NEON 0
#endif

/* ---- portable C ---------------------------------------------------------------- */

#define DOT_C(NAME, ITYPE)                                                                  \
    static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t n,          \
                     const float *restrict x, int64_t ldx, int nb, float *restrict out) {    \
        for (int b = 0; b < nb; b++) {                                                      \
            const float *xb = x + b * ldx;                                                  \
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;                               \
            int64_t k = 0;                                                                  \
            for (; k + 4 <= n; k += 4) {                                                    \
                s0 += v[k] * xb[idx[k]];                                                    \
                s1 += v[k + 1] * xb[idx[k + 1]];                                            \
                s2 += v[k + 2] * xb[idx[k + 2]];                                            \
                s3 += v[k + 3] * xb[idx[k + 3]];                                            \
            }                                                                               \
            for (; k < n; k++)                                                              \
                s0 += v[k] * xb[idx[k]];                                                    \
            out[b] = (s0 + s1) + (s2 + s3);                                                 \
        }                                                                                   \
    }

DOT_C(dot_u16_c, uint16_t)
DOT_C(dot_i32_c, int32_t)

/* Slice kernels: lane l sums its positions in order (see sparse_internal.h). */
#define SELL_C(NAME, NAMEB, ITYPE)                                                          \
    static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,         \
                     const float *restrict x, float *restrict out) {                        \
        float a[CSP__SPARSE_LANES] = {0};                                                   \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const float *vk = v + k * CSP__SPARSE_LANES;                                    \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES;                                  \
            for (int l = 0; l < CSP__SPARSE_LANES; l++) {                                   \
                float p = vk[l] * x[ik[l]];                                                 \
                a[l] = a[l] + p;                                                            \
            }                                                                               \
        }                                                                                   \
        memcpy(out, a, sizeof a);                                                           \
    }                                                                                       \
    static void NAMEB(const float *restrict v, const ITYPE *restrict idx, int64_t w,        \
                      const float *restrict xt, int nw, float *restrict out) {              \
        (void)nw;                                                                           \
        for (int l = 0; l < CSP__SPARSE_LANES; l++) {                                       \
            float a[CSP__SPARSE_LANES] = {0};                                               \
            for (int64_t k = 0; k < w; k++) {                                               \
                float vv = v[k * CSP__SPARSE_LANES + l];                                    \
                const float *xr = xt + (int64_t)idx[k * CSP__SPARSE_LANES + l] *            \
                                           CSP__SPARSE_LANES;                               \
                for (int j = 0; j < CSP__SPARSE_LANES; j++) {                               \
                    float p = vv * xr[j];                                                   \
                    a[j] = a[j] + p;                                                        \
                }                                                                           \
            }                                                                               \
            memcpy(out + l * CSP__SPARSE_LANES, a, sizeof a);                               \
        }                                                                                   \
    }

SELL_C(sell_u16_c, sellb_u16_c, uint16_t)
SELL_C(sell_i32_c, sellb_i32_c, int32_t)

static const csp__sparse_kernels kernels_c = {CSP_SPARSE_KERNEL_PORTABLE, dot_u16_c, dot_i32_c,
                                              sell_u16_c,  sell_i32_c, sellb_u16_c,
                                              sellb_i32_c};

/* ---- AVX2 + FMA ---------------------------------------------------------------- */

#if CSP_X86
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

AVX2_INLINE float hsum256(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE __m256i load_idx8_u16(const uint16_t *p) {
    return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}
AVX2_INLINE __m256i load_idx8_i32(const int32_t *p) {
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* The body for a constant group size NB (the compiler specialises it). */
#define DOT_AVX2_BODY(LOAD)                                                                 \
    __m256 a0[CSP__SPARSE_GROUP], a1[CSP__SPARSE_GROUP];                                    \
    for (int b = 0; b < NB; b++)                                                            \
        a0[b] = a1[b] = _mm256_setzero_ps();                                                \
    int64_t k = 0;                                                                          \
    for (; k + 16 <= n; k += 16) {                                                          \
        __m256i i0 = LOAD(idx + k), i1 = LOAD(idx + k + 8);                                 \
        __m256 v0 = _mm256_loadu_ps(v + k), v1 = _mm256_loadu_ps(v + k + 8);               \
        for (int b = 0; b < NB; b++) {                                                      \
            a0[b] = _mm256_fmadd_ps(v0, _mm256_i32gather_ps(x + b * ldx, i0, 4), a0[b]);    \
            a1[b] = _mm256_fmadd_ps(v1, _mm256_i32gather_ps(x + b * ldx, i1, 4), a1[b]);    \
        }                                                                                   \
    }                                                                                       \
    if (k + 8 <= n) {                                                                       \
        __m256i i0 = LOAD(idx + k);                                                         \
        __m256 v0 = _mm256_loadu_ps(v + k);                                                 \
        for (int b = 0; b < NB; b++)                                                        \
            a0[b] = _mm256_fmadd_ps(v0, _mm256_i32gather_ps(x + b * ldx, i0, 4), a0[b]);    \
        k += 8;                                                                             \
    }                                                                                       \
    for (int b = 0; b < NB; b++) {                                                          \
        const float *xb = x + b * ldx;                                                      \
        float s = hsum256(_mm256_add_ps(a0[b], a1[b]));                                     \
        for (int64_t t = k; t < n; t++)                                                     \
            s = fmaf(v[t], xb[idx[t]], s);                                                  \
        out[b] = s;                                                                         \
    }

AVX2_INLINE void dot_u16_avx2_nb(const float *restrict v, const uint16_t *restrict idx, int64_t n,
                                 const float *restrict x, int64_t ldx, const int NB,
                                 float *restrict out) {
    DOT_AVX2_BODY(load_idx8_u16)
}
AVX2_INLINE void dot_i32_avx2_nb(const float *restrict v, const int32_t *restrict idx, int64_t n,
                                 const float *restrict x, int64_t ldx, const int NB,
                                 float *restrict out) {
    DOT_AVX2_BODY(load_idx8_i32)
}

AVX2 static void dot_u16_avx2(const float *v, const uint16_t *idx, int64_t n, const float *x,
                              int64_t ldx, int nb, float *out) {
    switch (nb) {
    case 1: dot_u16_avx2_nb(v, idx, n, x, ldx, 1, out); break;
    case 2: dot_u16_avx2_nb(v, idx, n, x, ldx, 2, out); break;
    case 3: dot_u16_avx2_nb(v, idx, n, x, ldx, 3, out); break;
    default: dot_u16_avx2_nb(v, idx, n, x, ldx, 4, out); break;
    }
}
AVX2 static void dot_i32_avx2(const float *v, const int32_t *idx, int64_t n, const float *x,
                              int64_t ldx, int nb, float *out) {
    switch (nb) {
    case 1: dot_i32_avx2_nb(v, idx, n, x, ldx, 1, out); break;
    case 2: dot_i32_avx2_nb(v, idx, n, x, ldx, 2, out); break;
    case 3: dot_i32_avx2_nb(v, idx, n, x, ldx, 3, out); break;
    default: dot_i32_avx2_nb(v, idx, n, x, ldx, 4, out); break;
    }
}

/* 8 elements of x by scalar loads (faster than a gather, see below). */
AVX2_INLINE __m256 x8_avx2(const float *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3,
                           int64_t i4, int64_t i5, int64_t i6, int64_t i7) {
    return _mm256_setr_ps(x[i0], x[i1], x[i2], x[i3], x[i4], x[i5], x[i6], x[i7]);
}

/* Slice kernels: two 8-lane halves, one FMA chain per lane. */
#define SELL_AVX2(NAME, ITYPE)                                                              \
    AVX2 static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,    \
                          const float *restrict x, float *restrict out) {                   \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                         \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const float *vk = v + k * CSP__SPARSE_LANES;                                    \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES;                                  \
            a0 = _mm256_fmadd_ps(                                                           \
                _mm256_loadu_ps(vk),                                                        \
                x8_avx2(x, ik[0], ik[1], ik[2], ik[3], ik[4], ik[5], ik[6], ik[7]), a0);    \
            a1 = _mm256_fmadd_ps(                                                           \
                _mm256_loadu_ps(vk + 8),                                                    \
                x8_avx2(x, ik[8], ik[9], ik[10], ik[11], ik[12], ik[13], ik[14], ik[15]),   \
                a1);                                                                        \
        }                                                                                   \
        _mm256_storeu_ps(out, a0);                                                          \
        _mm256_storeu_ps(out + 8, a1);                                                      \
    }
SELL_AVX2(sell_u16_avx2, uint16_t)
SELL_AVX2(sell_i32_avx2, int32_t)

/* Batched: 4 lanes x 2 halves of the chunk per pass (8 accumulators), or
 * 8 lanes x 1 half when the chunk has at most 8 vectors. */
#define SELLB_AVX2(NAME, ITYPE)                                                             \
    AVX2 static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,    \
                          const float *restrict xt, int nw, float *restrict out) {          \
        if (nw <= 8) {                                                                      \
            for (int l0 = 0; l0 < CSP__SPARSE_LANES; l0 += 8) {                             \
                __m256 a[8];                                                                \
                for (int l = 0; l < 8; l++)                                                 \
                    a[l] = _mm256_setzero_ps();                                             \
                for (int64_t k = 0; k < w; k++) {                                           \
                    const float *vk = v + k * CSP__SPARSE_LANES + l0;                       \
                    const ITYPE *ik = idx + k * CSP__SPARSE_LANES + l0;                     \
                    for (int l = 0; l < 8; l++)                                             \
                        a[l] = _mm256_fmadd_ps(                                             \
                            _mm256_broadcast_ss(vk + l),                                    \
                            _mm256_load_ps(xt + (int64_t)ik[l] * CSP__SPARSE_LANES), a[l]); \
                }                                                                           \
                for (int l = 0; l < 8; l++)                                                 \
                    _mm256_storeu_ps(out + (l0 + l) * CSP__SPARSE_LANES, a[l]);             \
            }                                                                               \
            return;                                                                         \
        }                                                                                   \
        for (int l0 = 0; l0 < CSP__SPARSE_LANES; l0 += 4) {                                 \
            __m256 a[4], b[4];                                                              \
            for (int l = 0; l < 4; l++)                                                     \
                a[l] = b[l] = _mm256_setzero_ps();                                          \
            for (int64_t k = 0; k < w; k++) {                                               \
                const float *vk = v + k * CSP__SPARSE_LANES + l0;                           \
                const ITYPE *ik = idx + k * CSP__SPARSE_LANES + l0;                         \
                for (int l = 0; l < 4; l++) {                                               \
                    __m256 vv = _mm256_broadcast_ss(vk + l);                                \
                    const float *xr = xt + (int64_t)ik[l] * CSP__SPARSE_LANES;              \
                    a[l] = _mm256_fmadd_ps(vv, _mm256_load_ps(xr), a[l]);                   \
                    b[l] = _mm256_fmadd_ps(vv, _mm256_load_ps(xr + 8), b[l]);               \
                }                                                                           \
            }                                                                               \
            for (int l = 0; l < 4; l++) {                                                   \
                _mm256_storeu_ps(out + (l0 + l) * CSP__SPARSE_LANES, a[l]);                 \
                _mm256_storeu_ps(out + (l0 + l) * CSP__SPARSE_LANES + 8, b[l]);             \
            }                                                                               \
        }                                                                                   \
    }
SELLB_AVX2(sellb_u16_avx2, uint16_t)
SELLB_AVX2(sellb_i32_avx2, int32_t)

static const csp__sparse_kernels kernels_avx2 = {
    CSP_SPARSE_KERNEL_AVX2, dot_u16_avx2,   dot_i32_avx2,  sell_u16_avx2,
    sell_i32_avx2,          sellb_u16_avx2, sellb_i32_avx2};

/* ---- AVX-512F ------------------------------------------------------------------ */

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define AVX512_INLINE __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline

AVX512_INLINE __m512i load_idx16_u16(const uint16_t *p) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
AVX512_INLINE __m512i load_idx16_i32(const int32_t *p) {
    return _mm512_loadu_si512((const void *)p);
}

#define DOT_AVX512_BODY(LOAD)                                                               \
    __m512 a0[CSP__SPARSE_GROUP], a1[CSP__SPARSE_GROUP];                                    \
    for (int b = 0; b < NB; b++)                                                            \
        a0[b] = a1[b] = _mm512_setzero_ps();                                                \
    int64_t k = 0;                                                                          \
    for (; k + 32 <= n; k += 32) {                                                          \
        __m512i i0 = LOAD(idx + k), i1 = LOAD(idx + k + 16);                                \
        __m512 v0 = _mm512_loadu_ps(v + k), v1 = _mm512_loadu_ps(v + k + 16);              \
        for (int b = 0; b < NB; b++) {                                                      \
            a0[b] = _mm512_fmadd_ps(v0, _mm512_i32gather_ps(i0, x + b * ldx, 4), a0[b]);    \
            a1[b] = _mm512_fmadd_ps(v1, _mm512_i32gather_ps(i1, x + b * ldx, 4), a1[b]);    \
        }                                                                                   \
    }                                                                                       \
    if (k + 16 <= n) {                                                                      \
        __m512i i0 = LOAD(idx + k);                                                         \
        __m512 v0 = _mm512_loadu_ps(v + k);                                                 \
        for (int b = 0; b < NB; b++)                                                        \
            a0[b] = _mm512_fmadd_ps(v0, _mm512_i32gather_ps(i0, x + b * ldx, 4), a0[b]);    \
        k += 16;                                                                            \
    }                                                                                       \
    for (int b = 0; b < NB; b++) {                                                          \
        const float *xb = x + b * ldx;                                                      \
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a0[b], a1[b]));                        \
        for (int64_t t = k; t < n; t++)                                                     \
            s = fmaf(v[t], xb[idx[t]], s);                                                  \
        out[b] = s;                                                                         \
    }

AVX512_INLINE void dot_u16_avx512_nb(const float *restrict v, const uint16_t *restrict idx,
                                     int64_t n, const float *restrict x, int64_t ldx,
                                     const int NB, float *restrict out) {
    DOT_AVX512_BODY(load_idx16_u16)
}
AVX512_INLINE void dot_i32_avx512_nb(const float *restrict v, const int32_t *restrict idx,
                                     int64_t n, const float *restrict x, int64_t ldx,
                                     const int NB, float *restrict out) {
    DOT_AVX512_BODY(load_idx16_i32)
}

AVX512 static void dot_u16_avx512(const float *v, const uint16_t *idx, int64_t n, const float *x,
                                  int64_t ldx, int nb, float *out) {
    switch (nb) {
    case 1: dot_u16_avx512_nb(v, idx, n, x, ldx, 1, out); break;
    case 2: dot_u16_avx512_nb(v, idx, n, x, ldx, 2, out); break;
    case 3: dot_u16_avx512_nb(v, idx, n, x, ldx, 3, out); break;
    default: dot_u16_avx512_nb(v, idx, n, x, ldx, 4, out); break;
    }
}
AVX512 static void dot_i32_avx512(const float *v, const int32_t *idx, int64_t n, const float *x,
                                  int64_t ldx, int nb, float *out) {
    switch (nb) {
    case 1: dot_i32_avx512_nb(v, idx, n, x, ldx, 1, out); break;
    case 2: dot_i32_avx512_nb(v, idx, n, x, ldx, 2, out); break;
    case 3: dot_i32_avx512_nb(v, idx, n, x, ldx, 3, out); break;
    default: dot_i32_avx512_nb(v, idx, n, x, ldx, 4, out); break;
    }
}

/* Slice kernels: the 16 lanes in one register; x is loaded element by
 * element (scalar loads run about 1.5x the rate of a 16-lane gather on the
 * CPUs measured, docs/results/inference.md). */
#define SELL_AVX512(NAME, ITYPE)                                                            \
    AVX512 static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,  \
                            const float *restrict x, float *restrict out) {                 \
        __m512 a = _mm512_setzero_ps();                                                     \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES;                                  \
            __m256 lo = x8_avx2(x, ik[0], ik[1], ik[2], ik[3], ik[4], ik[5], ik[6], ik[7]); \
            __m256 hi = x8_avx2(x, ik[8], ik[9], ik[10], ik[11], ik[12], ik[13], ik[14],    \
                                ik[15]);                                                    \
            __m512 xv = _mm512_castpd_ps(_mm512_insertf64x4(                                \
                _mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));    \
            a = _mm512_fmadd_ps(_mm512_loadu_ps(v + k * CSP__SPARSE_LANES), xv, a);         \
        }                                                                                   \
        _mm512_storeu_ps(out, a);                                                           \
    }
SELL_AVX512(sell_u16_avx512, uint16_t)
SELL_AVX512(sell_i32_avx512, int32_t)

/* Batched: 16 lanes x the 16 vectors of the chunk in 16 registers, one
 * broadcast FMA per stored weight. */
#define SELLB_AVX512(NAME, ITYPE)                                                           \
    AVX512 static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,  \
                            const float *restrict xt, int nw, float *restrict out) {        \
        (void)nw;                                                                           \
        __m512 a[CSP__SPARSE_LANES];                                                        \
        for (int l = 0; l < CSP__SPARSE_LANES; l++)                                         \
            a[l] = _mm512_setzero_ps();                                                     \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const float *vk = v + k * CSP__SPARSE_LANES;                                    \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES;                                  \
            for (int l = 0; l < CSP__SPARSE_LANES; l++)                                     \
                a[l] = _mm512_fmadd_ps(                                                     \
                    _mm512_set1_ps(vk[l]),                                                  \
                    _mm512_load_ps(xt + (int64_t)ik[l] * CSP__SPARSE_LANES), a[l]);         \
        }                                                                                   \
        for (int l = 0; l < CSP__SPARSE_LANES; l++)                                         \
            _mm512_storeu_ps(out + l * CSP__SPARSE_LANES, a[l]);                            \
    }
SELLB_AVX512(sellb_u16_avx512, uint16_t)
SELLB_AVX512(sellb_i32_avx512, int32_t)

static const csp__sparse_kernels kernels_avx512 = {
    CSP_SPARSE_KERNEL_AVX512, dot_u16_avx512,   dot_i32_avx512,  sell_u16_avx512,
    sell_i32_avx512,          sellb_u16_avx512, sellb_i32_avx512};

static bool have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static bool have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && have_avx2();
}
#endif /* CSP_X86 */

/* ---- NEON (aarch64) ------------------------------------------------------------ */

#if CSP_NEON
#define NEON_INLINE __attribute__((always_inline)) static inline
/* The accumulators are arrays indexed by loop counters: unrolled, they stay
 * in registers (rolled, GCC -O2 keeps them on the stack). */
#define NEON_UNROLL _Pragma("GCC unroll 16")

/* 4 elements of x by scalar loads (NEON has no gather). */
NEON_INLINE float32x4_t x4_neon(const float *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    float32x4_t r = vld1q_dup_f32(x + i0);
    r = vld1q_lane_f32(x + i1, r, 1);
    r = vld1q_lane_f32(x + i2, r, 2);
    return vld1q_lane_f32(x + i3, r, 3);
}

/* The row kernels: four 4-lane FMA chains over 16 weights at a time, then
 * 8 and 4, the four chains added pairwise, the rest by scalar fmaf. Every
 * vector b of the group runs the same sequence (NB is a constant the
 * compiler specialises). */
#define DOT_NEON_BODY(ITYPE)                                                                \
    float32x4_t a0[CSP__SPARSE_GROUP], a1[CSP__SPARSE_GROUP], a2[CSP__SPARSE_GROUP],        \
        a3[CSP__SPARSE_GROUP];                                                              \
    NEON_UNROLL for (int b = 0; b < NB; b++) a0[b] = a1[b] = a2[b] = a3[b] =                \
        vdupq_n_f32(0.0f);                                                                  \
    int64_t k = 0;                                                                          \
    for (; k + 16 <= n; k += 16) {                                                          \
        const float *vk = v + k;                                                            \
        const ITYPE *ik = idx + k;                                                          \
        float32x4_t v0 = vld1q_f32(vk), v1 = vld1q_f32(vk + 4);                             \
        float32x4_t v2 = vld1q_f32(vk + 8), v3 = vld1q_f32(vk + 12);                        \
        NEON_UNROLL for (int b = 0; b < NB; b++) {                                          \
            const float *xb = x + b * ldx;                                                  \
            a0[b] = vfmaq_f32(a0[b], v0, x4_neon(xb, ik[0], ik[1], ik[2], ik[3]));          \
            a1[b] = vfmaq_f32(a1[b], v1, x4_neon(xb, ik[4], ik[5], ik[6], ik[7]));          \
            a2[b] = vfmaq_f32(a2[b], v2, x4_neon(xb, ik[8], ik[9], ik[10], ik[11]));        \
            a3[b] = vfmaq_f32(a3[b], v3, x4_neon(xb, ik[12], ik[13], ik[14], ik[15]));      \
        }                                                                                   \
    }                                                                                       \
    if (k + 8 <= n) {                                                                       \
        const ITYPE *ik = idx + k;                                                          \
        float32x4_t v0 = vld1q_f32(v + k), v1 = vld1q_f32(v + k + 4);                       \
        NEON_UNROLL for (int b = 0; b < NB; b++) {                                          \
            const float *xb = x + b * ldx;                                                  \
            a0[b] = vfmaq_f32(a0[b], v0, x4_neon(xb, ik[0], ik[1], ik[2], ik[3]));          \
            a1[b] = vfmaq_f32(a1[b], v1, x4_neon(xb, ik[4], ik[5], ik[6], ik[7]));          \
        }                                                                                   \
        k += 8;                                                                             \
    }                                                                                       \
    if (k + 4 <= n) {                                                                       \
        const ITYPE *ik = idx + k;                                                          \
        float32x4_t v0 = vld1q_f32(v + k);                                                  \
        NEON_UNROLL for (int b = 0; b < NB; b++) a0[b] =                                    \
            vfmaq_f32(a0[b], v0, x4_neon(x + b * ldx, ik[0], ik[1], ik[2], ik[3]));         \
        k += 4;                                                                             \
    }                                                                                       \
    NEON_UNROLL for (int b = 0; b < NB; b++) {                                              \
        const float *xb = x + b * ldx;                                                      \
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0[b], a1[b]), vaddq_f32(a2[b], a3[b])));  \
        for (int64_t t = k; t < n; t++)                                                     \
            s = fmaf(v[t], xb[idx[t]], s);                                                  \
        out[b] = s;                                                                         \
    }

#define DOT_NEON(NAME, ITYPE)                                                               \
    NEON_INLINE void NAME##_nb(const float *restrict v, const ITYPE *restrict idx,          \
                               int64_t n, const float *restrict x, int64_t ldx,             \
                               const int NB, float *restrict out) {                         \
        DOT_NEON_BODY(ITYPE)                                                                \
    }                                                                                       \
    static void NAME(const float *v, const ITYPE *idx, int64_t n, const float *x,           \
                     int64_t ldx, int nb, float *out) {                                     \
        switch (nb) {                                                                       \
        case 1: NAME##_nb(v, idx, n, x, ldx, 1, out); break;                                \
        case 2: NAME##_nb(v, idx, n, x, ldx, 2, out); break;                                \
        case 3: NAME##_nb(v, idx, n, x, ldx, 3, out); break;                                \
        default: NAME##_nb(v, idx, n, x, ldx, 4, out); break;                               \
        }                                                                                   \
    }
DOT_NEON(dot_u16_neon, uint16_t)
DOT_NEON(dot_i32_neon, int32_t)

/* Slice kernels: the 16 lanes in four registers, one FMA chain per lane
 * (k = 0 .. w - 1), x loaded element by element. */
#define SELL_NEON(NAME, ITYPE)                                                              \
    static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,         \
                     const float *restrict x, float *restrict out) {                        \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                      \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const float *vk = v + k * CSP__SPARSE_LANES;                                    \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES;                                  \
            a0 = vfmaq_f32(a0, vld1q_f32(vk), x4_neon(x, ik[0], ik[1], ik[2], ik[3]));      \
            a1 = vfmaq_f32(a1, vld1q_f32(vk + 4), x4_neon(x, ik[4], ik[5], ik[6], ik[7]));  \
            a2 = vfmaq_f32(a2, vld1q_f32(vk + 8),                                           \
                           x4_neon(x, ik[8], ik[9], ik[10], ik[11]));                       \
            a3 = vfmaq_f32(a3, vld1q_f32(vk + 12),                                          \
                           x4_neon(x, ik[12], ik[13], ik[14], ik[15]));                     \
        }                                                                                   \
        vst1q_f32(out, a0);                                                                 \
        vst1q_f32(out + 4, a1);                                                             \
        vst1q_f32(out + 8, a2);                                                             \
        vst1q_f32(out + 12, a3);                                                            \
    }
SELL_NEON(sell_u16_neon, uint16_t)
SELL_NEON(sell_i32_neon, int32_t)

/* Batched: 16 accumulators of 4 vectors each, one broadcast FMA per stored
 * weight and quarter of the chunk: NQ quarters (the chunk's first 4 NQ
 * vectors, enough for nw) of 16 / NQ lanes per pass. Each output element is
 * the same FMA chain as in the matvec kernel above, whatever NQ. */
#define SELLB_NEON_PASS(ITYPE, NQ)                                                          \
    for (int l0 = 0; l0 < CSP__SPARSE_LANES; l0 += 16 / (NQ)) {                             \
        float32x4_t a[16 / (NQ)][NQ];                                                       \
        NEON_UNROLL for (int l = 0; l < 16 / (NQ); l++)                                     \
            NEON_UNROLL for (int q = 0; q < (NQ); q++) a[l][q] = vdupq_n_f32(0.0f);         \
        for (int64_t k = 0; k < w; k++) {                                                   \
            const float *vk = v + k * CSP__SPARSE_LANES + l0;                               \
            const ITYPE *ik = idx + k * CSP__SPARSE_LANES + l0;                             \
            NEON_UNROLL for (int l = 0; l < 16 / (NQ); l++) {                               \
                float32x4_t vv = vld1q_dup_f32(vk + l);                                     \
                const float *xr = xt + (int64_t)ik[l] * CSP__SPARSE_LANES;                  \
                NEON_UNROLL for (int q = 0; q < (NQ); q++) a[l][q] =                        \
                    vfmaq_f32(a[l][q], vv, vld1q_f32(xr + 4 * q));                          \
            }                                                                               \
        }                                                                                   \
        NEON_UNROLL for (int l = 0; l < 16 / (NQ); l++)                                     \
            NEON_UNROLL for (int q = 0; q < (NQ); q++)                                      \
                vst1q_f32(out + (l0 + l) * CSP__SPARSE_LANES + 4 * q, a[l][q]);             \
    }

#define SELLB_NEON(NAME, ITYPE)                                                             \
    static void NAME(const float *restrict v, const ITYPE *restrict idx, int64_t w,         \
                     const float *restrict xt, int nw, float *restrict out) {               \
        if (nw <= 4) {                                                                      \
            SELLB_NEON_PASS(ITYPE, 1)                                                       \
        } else if (nw <= 8) {                                                               \
            SELLB_NEON_PASS(ITYPE, 2)                                                       \
        } else {                                                                            \
            SELLB_NEON_PASS(ITYPE, 4)                                                       \
        }                                                                                   \
    }
SELLB_NEON(sellb_u16_neon, uint16_t)
SELLB_NEON(sellb_i32_neon, int32_t)

static const csp__sparse_kernels kernels_neon = {
    CSP_SPARSE_KERNEL_NEON, dot_u16_neon,   dot_i32_neon,  sell_u16_neon,
    sell_i32_neon,          sellb_u16_neon, sellb_i32_neon};
#endif /* CSP_NEON */

/* ---- dispatch ------------------------------------------------------------------ */

const csp__sparse_kernels *csp__sparse_kernels_get(int32_t kind) {
    switch (kind) {
    case CSP_SPARSE_KERNEL_AUTO:
#if CSP_X86
        if (have_avx512())
            return &kernels_avx512;
        if (have_avx2())
            return &kernels_avx2;
#endif
#if CSP_NEON
        return &kernels_neon;
#else
        return &kernels_c;
#endif
    case CSP_SPARSE_KERNEL_PORTABLE:
        return &kernels_c;
#if CSP_X86
    case CSP_SPARSE_KERNEL_AVX2:
        return have_avx2() ? &kernels_avx2 : NULL;
    case CSP_SPARSE_KERNEL_AVX512:
        return have_avx512() ? &kernels_avx512 : NULL;
#endif
#if CSP_NEON
    case CSP_SPARSE_KERNEL_NEON:
        return &kernels_neon;
#endif
    default:
        return NULL;
    }
}
