/* Row kernels of sparse inference, and the one place that picks them.
 *
 * Every family fills a csp__sparse_kernels table: portable C (always),
 * AVX2+FMA and AVX-512F on x86-64 with GCC or Clang, chosen at run time
 * from the CPU's features (__builtin_cpu_supports, as lib/linalg/kernels.c
 * does). A NEON family adds one table and one case to
 * csp__sparse_kernels_get(). Within a family the summation order of a row
 * depends only on its length, never on the batch group (nb) or the thread,
 * so results never depend on the thread count or the batch size. */
#include "sparse/sparse_internal.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CSP_NO_SIMD)
#define CSP_X86 1
#include <immintrin.h>
#else
#define CSP_X86 0
#endif

/* Position of N:M slot @p t (bits divides 8, so it never straddles bytes). */
static inline uint32_t nm_pos(const uint8_t *pos, int64_t t, int32_t bits) {
    uint64_t at = (uint64_t)t * (uint64_t)bits;
    return (uint32_t)(pos[at >> 3] >> (at & 7u)) & ((1u << bits) - 1u);
}

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

static void dot_nm_c(const float *restrict v, const uint8_t *restrict pos, int64_t slots,
                     int32_t n, int32_t m, int32_t bits, const float *restrict x, int64_t ldx,
                     int nb, float *restrict out) {
    for (int b = 0; b < nb; b++) {
        const float *xb = x + b * ldx;
        float s0 = 0.0f, s1 = 0.0f;
        int64_t base = 0;
        int32_t j = 0;
        for (int64_t t = 0; t < slots; t++) {
            float p = v[t] * xb[base + nm_pos(pos, t, bits)];
            if (t & 1)
                s1 += p;
            else
                s0 += p;
            if (++j == n) {
                j = 0;
                base += m;
            }
        }
        out[b] = s0 + s1;
    }
}

static const csp__sparse_kernels kernels_c = {CSP_SPARSE_KERNEL_PORTABLE, dot_u16_c, dot_i32_c,
                                              dot_nm_c};

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

/* Positions of the 8 slots starting at t0 (a multiple of 8). */
AVX2_INLINE __m256i nm_pos8(const uint8_t *pos, int64_t t0, int32_t bits) {
    if (bits == 8)
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(pos + t0)));
    uint32_t w = 0;
    memcpy(&w, pos + t0 * bits / 8, (size_t)bits); /* 2 or 4 bytes */
    __m256i sh = bits == 2 ? _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)
                           : _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), sh),
                            _mm256_set1_epi32((1 << bits) - 1));
}

AVX2_INLINE void dot_nm_avx2_nb(const float *restrict v, const uint8_t *restrict pos,
                                int64_t slots, int32_t n, int32_t m, int32_t bits,
                                const float *restrict x, int64_t ldx, const int NB,
                                float *restrict out) {
    /* 8 % n == 0: a block of 8 slots is 8 / n whole groups. */
    __m256i lane = _mm256_mullo_epi32(
        _mm256_srlv_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                          _mm256_set1_epi32(__builtin_ctz((unsigned)n))),
        _mm256_set1_epi32(m));
    __m256 a[CSP__SPARSE_GROUP];
    for (int b = 0; b < NB; b++)
        a[b] = _mm256_setzero_ps();
    int64_t t = 0, per8 = 8 / n * m;
    for (int64_t base = 0; t + 8 <= slots; t += 8, base += per8) {
        __m256i ix = _mm256_add_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32((int)base)),
                                      nm_pos8(pos, t, bits));
        __m256 vv = _mm256_loadu_ps(v + t);
        for (int b = 0; b < NB; b++)
            a[b] = _mm256_fmadd_ps(vv, _mm256_i32gather_ps(x + b * ldx, ix, 4), a[b]);
    }
    for (int b = 0; b < NB; b++) {
        const float *xb = x + b * ldx;
        float s = hsum256(a[b]);
        for (int64_t u = t; u < slots; u++)
            s = fmaf(v[u], xb[(u / n) * m + nm_pos(pos, u, bits)], s);
        out[b] = s;
    }
}

AVX2 static void dot_nm_avx2(const float *v, const uint8_t *pos, int64_t slots, int32_t n,
                             int32_t m, int32_t bits, const float *x, int64_t ldx, int nb,
                             float *out) {
    if (8 % n != 0) {
        dot_nm_c(v, pos, slots, n, m, bits, x, ldx, nb, out);
        return;
    }
    switch (nb) {
    case 1: dot_nm_avx2_nb(v, pos, slots, n, m, bits, x, ldx, 1, out); break;
    case 2: dot_nm_avx2_nb(v, pos, slots, n, m, bits, x, ldx, 2, out); break;
    case 3: dot_nm_avx2_nb(v, pos, slots, n, m, bits, x, ldx, 3, out); break;
    default: dot_nm_avx2_nb(v, pos, slots, n, m, bits, x, ldx, 4, out); break;
    }
}

static const csp__sparse_kernels kernels_avx2 = {CSP_SPARSE_KERNEL_AVX2, dot_u16_avx2,
                                                 dot_i32_avx2, dot_nm_avx2};

/* ---- AVX-512F ------------------------------------------------------------------ */

#define AVX512 __attribute__((target("avx512f")))
#define AVX512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

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

/* N:M under AVX-512 uses the AVX2 kernel (AVX-512F CPUs have AVX2 + FMA). */
static const csp__sparse_kernels kernels_avx512 = {CSP_SPARSE_KERNEL_AVX512, dot_u16_avx512,
                                                   dot_i32_avx512, dot_nm_avx2};

static bool have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static bool have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && have_avx2();
}
#endif /* CSP_X86 */

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
        return &kernels_c;
    case CSP_SPARSE_KERNEL_PORTABLE:
        return &kernels_c;
#if CSP_X86
    case CSP_SPARSE_KERNEL_AVX2:
        return have_avx2() ? &kernels_avx2 : NULL;
    case CSP_SPARSE_KERNEL_AVX512:
        return have_avx512() ? &kernels_avx512 : NULL;
#endif
    default:
        return NULL;
    }
}
