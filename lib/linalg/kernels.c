/* float32 kernels of the solvers' hot loops.
 *
 * Each kernel has a portable C version and, on x86-64 with GCC or Clang,
 * AVX2+FMA and AVX-512 versions chosen at run time from the CPU's features
 * (no state is kept: the check is a load from libgcc's CPU model). On
 * aarch64 the gather-AXPY, the arg max and the float64 dot product have NEON
 * versions, used always (NEON is part of the architecture); the proximal
 * step keeps its C version there. The summation order of every kernel is
 * fixed for a given CPU, so results never depend on the thread count; they
 * may differ in the last bits between CPUs with and without FMA. */
#include "linalg.h"

#include <math.h>

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

#if CSP_X86
static inline bool have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
static inline bool have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/* ---- gather-AXPY ----------------------------------------------------------- */

static void axpy_rows_c(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
                        const int32_t *restrict idx, const float *restrict coef, int64_t cnt) {
    for (int64_t t = 0; t < cnt; t++) {
        const float *g = G + (int64_t)idx[t] * ld;
        float c = coef[t];
        for (int64_t j = 0; j < n; j++)
            acc[j] += c * g[j];
    }
}

#if CSP_X86
__attribute__((target("avx2,fma"))) static void
axpy_rows_avx2(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
               const int32_t *restrict idx, const float *restrict coef, int64_t cnt) {
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + j), a1 = _mm256_loadu_ps(acc + j + 8);
        __m256 a2 = _mm256_loadu_ps(acc + j + 16), a3 = _mm256_loadu_ps(acc + j + 24);
        for (int64_t t = 0; t < cnt; t++) {
            const float *g = G + (int64_t)idx[t] * ld + j;
            __m256 c = _mm256_broadcast_ss(coef + t);
            a0 = _mm256_fmadd_ps(c, _mm256_loadu_ps(g), a0);
            a1 = _mm256_fmadd_ps(c, _mm256_loadu_ps(g + 8), a1);
            a2 = _mm256_fmadd_ps(c, _mm256_loadu_ps(g + 16), a2);
            a3 = _mm256_fmadd_ps(c, _mm256_loadu_ps(g + 24), a3);
        }
        _mm256_storeu_ps(acc + j, a0);
        _mm256_storeu_ps(acc + j + 8, a1);
        _mm256_storeu_ps(acc + j + 16, a2);
        _mm256_storeu_ps(acc + j + 24, a3);
    }
    for (; j + 8 <= n; j += 8) {
        __m256 a0 = _mm256_loadu_ps(acc + j);
        for (int64_t t = 0; t < cnt; t++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(coef + t),
                                 _mm256_loadu_ps(G + (int64_t)idx[t] * ld + j), a0);
        _mm256_storeu_ps(acc + j, a0);
    }
    for (; j < n; j++) {
        float s = acc[j];
        for (int64_t t = 0; t < cnt; t++)
            s = fmaf(coef[t], G[(int64_t)idx[t] * ld + j], s);
        acc[j] = s;
    }
}

__attribute__((target("avx512f"))) static void
axpy_rows_avx512(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
                 const int32_t *restrict idx, const float *restrict coef, int64_t cnt) {
    int64_t j = 0;
    for (; j + 128 <= n; j += 128) {
        __m512 a[8];
        for (int q = 0; q < 8; q++)
            a[q] = _mm512_loadu_ps(acc + j + 16 * q);
        for (int64_t t = 0; t < cnt; t++) {
            const float *g = G + (int64_t)idx[t] * ld + j;
            __m512 c = _mm512_set1_ps(coef[t]);
            for (int q = 0; q < 8; q++)
                a[q] = _mm512_fmadd_ps(c, _mm512_loadu_ps(g + 16 * q), a[q]);
        }
        for (int q = 0; q < 8; q++)
            _mm512_storeu_ps(acc + j + 16 * q, a[q]);
    }
    for (; j + 64 <= n; j += 64) {
        __m512 a0 = _mm512_loadu_ps(acc + j), a1 = _mm512_loadu_ps(acc + j + 16);
        __m512 a2 = _mm512_loadu_ps(acc + j + 32), a3 = _mm512_loadu_ps(acc + j + 48);
        for (int64_t t = 0; t < cnt; t++) {
            const float *g = G + (int64_t)idx[t] * ld + j;
            __m512 c = _mm512_set1_ps(coef[t]);
            a0 = _mm512_fmadd_ps(c, _mm512_loadu_ps(g), a0);
            a1 = _mm512_fmadd_ps(c, _mm512_loadu_ps(g + 16), a1);
            a2 = _mm512_fmadd_ps(c, _mm512_loadu_ps(g + 32), a2);
            a3 = _mm512_fmadd_ps(c, _mm512_loadu_ps(g + 48), a3);
        }
        _mm512_storeu_ps(acc + j, a0);
        _mm512_storeu_ps(acc + j + 16, a1);
        _mm512_storeu_ps(acc + j + 32, a2);
        _mm512_storeu_ps(acc + j + 48, a3);
    }
    for (; j < n; j += 16) {
        int64_t left = n - j;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        __m512 a0 = _mm512_maskz_loadu_ps(m, acc + j);
        for (int64_t t = 0; t < cnt; t++)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(coef[t]),
                                 _mm512_maskz_loadu_ps(m, G + (int64_t)idx[t] * ld + j), a0);
        _mm512_mask_storeu_ps(acc + j, m, a0);
    }
}
#endif

#if CSP_NEON
static void axpy_rows_neon(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
                           const int32_t *restrict idx, const float *restrict coef, int64_t cnt) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        float32x4_t a0 = vld1q_f32(acc + j), a1 = vld1q_f32(acc + j + 4);
        float32x4_t a2 = vld1q_f32(acc + j + 8), a3 = vld1q_f32(acc + j + 12);
        for (int64_t t = 0; t < cnt; t++) {
            const float *g = G + (int64_t)idx[t] * ld + j;
            float32x4_t c = vdupq_n_f32(coef[t]);
            a0 = vfmaq_f32(a0, c, vld1q_f32(g));
            a1 = vfmaq_f32(a1, c, vld1q_f32(g + 4));
            a2 = vfmaq_f32(a2, c, vld1q_f32(g + 8));
            a3 = vfmaq_f32(a3, c, vld1q_f32(g + 12));
        }
        vst1q_f32(acc + j, a0);
        vst1q_f32(acc + j + 4, a1);
        vst1q_f32(acc + j + 8, a2);
        vst1q_f32(acc + j + 12, a3);
    }
    for (; j + 4 <= n; j += 4) {
        float32x4_t a0 = vld1q_f32(acc + j);
        for (int64_t t = 0; t < cnt; t++)
            a0 = vfmaq_f32(a0, vdupq_n_f32(coef[t]), vld1q_f32(G + (int64_t)idx[t] * ld + j));
        vst1q_f32(acc + j, a0);
    }
    for (; j < n; j++) {
        float s = acc[j];
        for (int64_t t = 0; t < cnt; t++)
            s = fmaf(coef[t], G[(int64_t)idx[t] * ld + j], s);
        acc[j] = s;
    }
}
#endif

void csp__f32_axpy_rows(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
                        const int32_t *restrict idx, const float *restrict coef, int64_t cnt) {
    if (cnt <= 0 || n <= 0)
        return;
#if CSP_NEON
    axpy_rows_neon(acc, n, G, ld, idx, coef, cnt);
    return;
#endif
#if CSP_X86
    if (have_avx512()) {
        axpy_rows_avx512(acc, n, G, ld, idx, coef, cnt);
        return;
    }
    if (have_avx2()) {
        axpy_rows_avx2(acc, n, G, ld, idx, coef, cnt);
        return;
    }
#endif
    axpy_rows_c(acc, n, G, ld, idx, coef, cnt);
}

/* ---- arg max of |a| + pen ---------------------------------------------------- */

static float max_score_c(const float *restrict a, const float *restrict pen, int64_t n) {
    float best = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        float s = fabsf(a[j]) + pen[j];
        best = s > best ? s : best;
    }
    return best;
}

#if CSP_X86
__attribute__((target("avx2,fma"))) static float max_score_avx2(const float *restrict a,
                                                               const float *restrict pen,
                                                               int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        m0 = _mm256_max_ps(m0, _mm256_add_ps(_mm256_and_ps(_mm256_loadu_ps(a + j), absmask),
                                             _mm256_loadu_ps(pen + j)));
        m1 = _mm256_max_ps(m1, _mm256_add_ps(_mm256_and_ps(_mm256_loadu_ps(a + j + 8), absmask),
                                             _mm256_loadu_ps(pen + j + 8)));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_max_ps(m0, m1));
    float best = -INFINITY;
    for (int q = 0; q < 8; q++)
        best = lanes[q] > best ? lanes[q] : best;
    float rest = max_score_c(a + j, pen + j, n - j);
    return rest > best ? rest : best;
}

__attribute__((target("avx512f"))) static float max_score_avx512(const float *restrict a,
                                                                const float *restrict pen,
                                                                int64_t n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(m0, _mm512_add_ps(_mm512_abs_ps(_mm512_loadu_ps(a + j)),
                                             _mm512_loadu_ps(pen + j)));
        m1 = _mm512_max_ps(m1, _mm512_add_ps(_mm512_abs_ps(_mm512_loadu_ps(a + j + 16)),
                                             _mm512_loadu_ps(pen + j + 16)));
    }
    for (; j < n; j += 16) {
        int64_t left = n - j;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        __m512 s = _mm512_add_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, a + j)),
                                 _mm512_maskz_loadu_ps(m, pen + j));
        m0 = _mm512_mask_max_ps(m0, m, m0, s);
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}
#endif

#if CSP_NEON
/* vmaxnmq: a NaN score loses, as in the C version's comparison. */
static float max_score_neon(const float *restrict a, const float *restrict pen, int64_t n) {
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        m0 = vmaxnmq_f32(m0, vaddq_f32(vabsq_f32(vld1q_f32(a + j)), vld1q_f32(pen + j)));
        m1 = vmaxnmq_f32(m1, vaddq_f32(vabsq_f32(vld1q_f32(a + j + 4)), vld1q_f32(pen + j + 4)));
    }
    float best = vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
    float rest = max_score_c(a + j, pen + j, n - j);
    return rest > best ? rest : best;
}
#endif

#if CSP_X86
/* The first j with |a_j| + pen_j == best (the same float expression as the
 * scalar loop), eight at a time; -1 when there is none. */
__attribute__((target("avx2,fma"))) static int64_t find_score_avx2(const float *restrict a,
                                                                  const float *restrict pen,
                                                                  int64_t n, float best) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 b = _mm256_set1_ps(best);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_add_ps(_mm256_and_ps(_mm256_loadu_ps(a + j), absmask),
                                 _mm256_loadu_ps(pen + j));
        int m = _mm256_movemask_ps(_mm256_cmp_ps(v, b, _CMP_EQ_OQ));
        if (m != 0)
            return j + __builtin_ctz((unsigned)m);
    }
    for (; j < n; j++)
        if (fabsf(a[j]) + pen[j] == best)
            return j;
    return -1;
}
#endif

int64_t csp__f32_argmax_abs(const float *restrict a, const float *restrict pen, int64_t n) {
    float best;
#if CSP_NEON
    best = max_score_neon(a, pen, n);
#elif CSP_X86
    if (have_avx512())
        best = max_score_avx512(a, pen, n);
    else if (have_avx2())
        best = max_score_avx2(a, pen, n);
    else
#endif
        best = max_score_c(a, pen, n);
    if (!(best > -INFINITY))
        return -1;
    /* The first index reaching the maximum (the same float expression). */
    return csp__f32_find_abs(a, pen, n, best);
}

int64_t csp__f32_find_abs(const float *restrict a, const float *restrict pen, int64_t n,
                          float score) {
#if CSP_X86
    if (have_avx2())
        return find_score_avx2(a, pen, n, score);
#endif
    for (int64_t j = 0; j < n; j++)
        if (fabsf(a[j]) + pen[j] == score)
            return j;
    return -1;
}

/* ---- dot product with float64 accumulation ------------------------------------ */

static double dot64_c(const float *restrict a, const float *restrict b, int64_t n) {
    double s = 0.0;
    for (int64_t j = 0; j < n; j++)
        s += (double)a[j] * (double)b[j];
    return s;
}

#if CSP_X86
__attribute__((target("avx512f"))) static double dot64_avx512(const float *restrict a,
                                                              const float *restrict b,
                                                              int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        s0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + j)),
                             _mm512_cvtps_pd(_mm256_loadu_ps(b + j)), s0);
        s1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + j + 8)),
                             _mm512_cvtps_pd(_mm256_loadu_ps(b + j + 8)), s1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) + dot64_c(a + j, b + j, n - j);
}
#endif

#if CSP_NEON
static double dot64_neon(const float *restrict a, const float *restrict b, int64_t n) {
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0, s2 = s0, s3 = s0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        float32x4_t a0 = vld1q_f32(a + j), b0 = vld1q_f32(b + j);
        float32x4_t a1 = vld1q_f32(a + j + 4), b1 = vld1q_f32(b + j + 4);
        s0 = vfmaq_f64(s0, vcvt_f64_f32(vget_low_f32(a0)), vcvt_f64_f32(vget_low_f32(b0)));
        s1 = vfmaq_f64(s1, vcvt_high_f64_f32(a0), vcvt_high_f64_f32(b0));
        s2 = vfmaq_f64(s2, vcvt_f64_f32(vget_low_f32(a1)), vcvt_f64_f32(vget_low_f32(b1)));
        s3 = vfmaq_f64(s3, vcvt_high_f64_f32(a1), vcvt_high_f64_f32(b1));
    }
    return vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3))) +
           dot64_c(a + j, b + j, n - j);
}
#endif

double csp__f32_dot64(const float *restrict a, const float *restrict b, int64_t n) {
#if CSP_NEON
    return dot64_neon(a, b, n);
#endif
#if CSP_X86
    if (have_avx512())
        return dot64_avx512(a, b, n);
#endif
    return dot64_c(a, b, n);
}

/* ---- one proximal-gradient step, fused with the duality-gap terms ------------------ */

static void prox_c(int64_t n, const float *restrict w, const float *restrict b,
                   const float *restrict pinf, float thr, float beta, float invL,
                   const float *restrict x, float *restrict xp, const float *restrict gx,
                   const float *restrict gxp, int32_t *restrict idx, float *restrict val,
                   csp__prox_out *out) {
    double r = 0, xg = 0, l1 = 0, rdot = 0;
    float gmax = 0.0f;
    int64_t nnz = 0;
    for (int64_t j = 0; j < n; j++) {
        float xj = x[j], gxj = gx[j], bj = b[j];
        float pj = pinf != NULL ? pinf[j] : 0.0f;
        float g = bj - gxj;
        float t1 = (w[j] - xj) * g;
        float t2 = xj * g;
        r += (double)t1;
        xg += (double)t2;
        l1 += (double)fabsf(xj);
        float ag = fabsf(g) - pj;
        gmax = ag > gmax ? ag : gmax;
        float y = xj + beta * (xj - xp[j]);
        float gy = gxj + beta * (gxj - gxp[j]);
        float z = y - (gy - bj) * invL;
        float a = fabsf(z) - (thr + pj);
        float xn = a > 0.0f ? copysignf(a, z) : 0.0f;
        xp[j] = xn;
        float t3 = (y - xn) * (xn - xj);
        rdot += (double)t3;
        if (xn != 0.0f) {
            idx[nnz] = (int32_t)j;
            val[nnz] = xn;
            nnz++;
        }
    }
    out->r = r;
    out->xg = xg;
    out->l1 = l1;
    out->gmax = gmax;
    out->rdot = rdot;
    out->nnz = nnz;
}

#if CSP_X86
__attribute__((target("avx512f"))) static inline __m512d lo_pd(__m512 v) {
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
__attribute__((target("avx512f"))) static inline __m512d hi_pd(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

__attribute__((target("avx512f"))) static void
prox_avx512(int64_t n, const float *restrict w, const float *restrict b,
            const float *restrict pinf, float thr, float beta, float invL,
            const float *restrict x, float *restrict xp, const float *restrict gx,
            const float *restrict gxp, int32_t *restrict idx, float *restrict val,
            csp__prox_out *out) {
    __m512d r = _mm512_setzero_pd(), xg = r, l1 = r, rd = r;
    __m512 gmax = _mm512_setzero_ps();
    const __m512 vbeta = _mm512_set1_ps(beta), vinvL = _mm512_set1_ps(invL);
    const __m512 vthr = _mm512_set1_ps(thr), zero = _mm512_setzero_ps();
    const __m512i signbit = _mm512_set1_epi32((int)0x80000000u);
    __m512i jv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    int64_t nnz = 0;
    for (int64_t j = 0; j < n; j += 16) {
        int64_t left = n - j;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        __m512 xj = _mm512_maskz_loadu_ps(m, x + j);
        __m512 xpj = _mm512_maskz_loadu_ps(m, xp + j);
        __m512 gxj = _mm512_maskz_loadu_ps(m, gx + j);
        __m512 gxpj = _mm512_maskz_loadu_ps(m, gxp + j);
        __m512 bj = _mm512_maskz_loadu_ps(m, b + j);
        __m512 wj = _mm512_maskz_loadu_ps(m, w + j);
        __m512 pj = pinf != NULL ? _mm512_maskz_loadu_ps(m, pinf + j) : zero;
        __m512 g = _mm512_sub_ps(bj, gxj);
        __m512 t1 = _mm512_mul_ps(_mm512_sub_ps(wj, xj), g);
        __m512 t2 = _mm512_mul_ps(xj, g);
        __m512 ax = _mm512_abs_ps(xj);
        r = _mm512_add_pd(r, _mm512_add_pd(lo_pd(t1), hi_pd(t1)));
        xg = _mm512_add_pd(xg, _mm512_add_pd(lo_pd(t2), hi_pd(t2)));
        l1 = _mm512_add_pd(l1, _mm512_add_pd(lo_pd(ax), hi_pd(ax)));
        gmax = _mm512_mask_max_ps(gmax, m, gmax, _mm512_sub_ps(_mm512_abs_ps(g), pj));
        __m512 y = _mm512_fmadd_ps(vbeta, _mm512_sub_ps(xj, xpj), xj);
        __m512 gy = _mm512_fmadd_ps(vbeta, _mm512_sub_ps(gxj, gxpj), gxj);
        __m512 z = _mm512_fnmadd_ps(_mm512_sub_ps(gy, bj), vinvL, y);
        __m512 a = _mm512_sub_ps(_mm512_abs_ps(z), _mm512_add_ps(vthr, pj));
        __mmask16 pos = _mm512_mask_cmp_ps_mask(m, a, zero, _CMP_GT_OQ);
        __m512 zs = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(z), signbit));
        __m512 xn = _mm512_maskz_mov_ps(
            pos, _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a),
                                                     _mm512_castps_si512(zs))));
        _mm512_mask_storeu_ps(xp + j, m, xn);
        __m512 t3 = _mm512_mul_ps(_mm512_sub_ps(y, xn), _mm512_sub_ps(xn, xj));
        t3 = _mm512_maskz_mov_ps(m, t3);
        rd = _mm512_add_pd(rd, _mm512_add_pd(lo_pd(t3), hi_pd(t3)));
        /* Compress in registers, then a masked store of the first cnt lanes:
         * the memory form of the compress is microcoded on some cores (AMD
         * Zen 4: more than 100 cycles each), the register form is not. */
        int cnt = __builtin_popcount((unsigned)pos);
        __mmask16 head = (__mmask16)((1u << cnt) - 1u);
        _mm512_mask_storeu_epi32(idx + nnz, head, _mm512_maskz_compress_epi32(pos, jv));
        _mm512_mask_storeu_ps(val + nnz, head, _mm512_maskz_compress_ps(pos, xn));
        nnz += cnt;
        jv = _mm512_add_epi32(jv, sixteen);
    }
    out->r = _mm512_reduce_add_pd(r);
    out->xg = _mm512_reduce_add_pd(xg);
    out->l1 = _mm512_reduce_add_pd(l1);
    out->gmax = _mm512_reduce_max_ps(gmax);
    out->rdot = _mm512_reduce_add_pd(rd);
    out->nnz = nnz;
}
#endif

void csp__f32_prox_step(int64_t n, const float *restrict w, const float *restrict b,
                        const float *restrict pinf, float thr, float beta, float invL,
                        const float *restrict x, float *restrict xp, const float *restrict gx,
                        const float *restrict gxp, int32_t *restrict idx, float *restrict val,
                        csp__prox_out *out) {
#if CSP_X86
    if (have_avx512()) {
        prox_avx512(n, w, b, pinf, thr, beta, invL, x, xp, gx, gxp, idx, val, out);
        return;
    }
#endif
    prox_c(n, w, b, pinf, thr, beta, invL, x, xp, gx, gxp, idx, val, out);
}
