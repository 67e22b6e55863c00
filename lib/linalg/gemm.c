/* Deterministic dense products: GEMM in float32 and float64 and the SYRK of
 * the activation accumulator, in place of the BLAS calls whose summation
 * order can depend on the BLAS library's thread count.
 *
 * Each output element is the fused multiply-add chain over the inner index
 * in order (gemm_tmpl.h), one rounding per term. IEEE 754 specifies fma
 * exactly, so the AVX-512, AVX2+FMA and portable versions give the same
 * bits, on every CPU, for any split of the output between threads. */
#include "linalg.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CSP_NO_SIMD)
#define CSP_X86 1
#include <immintrin.h>
#else
#define CSP_X86 0
#endif

/* ---- the portable version ---------------------------------------------------------- */

#define GM_TARGET
#define GM_W 1
#define GM_MR 4
#define GM_LOAD(p) (*(p))
#define GM_STORE(p, v) (*(p) = (v))
#define GM_BCAST(p) (*(p))

#define GM_T float
#define GM_VT float
#define GM_ZERO() 0.0f
#define GM_FMA(a, b, c) fmaf(a, b, c)
#define GM_FMAS fmaf
#define GM_SFX s_c
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#define GM_T double
#define GM_VT double
#define GM_ZERO() 0.0
#define GM_FMA(a, b, c) fma(a, b, c)
#define GM_FMAS fma
#define GM_SFX d_c
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#undef GM_TARGET
#undef GM_W
#undef GM_MR
#undef GM_LOAD
#undef GM_STORE
#undef GM_BCAST

#if CSP_X86
static inline bool have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
static inline bool have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* ---- AVX-512 ------------------------------------------------------------------------ */

#define GM_TARGET __attribute__((target("avx512f")))
#define GM_MR 8

#define GM_T float
#define GM_VT __m512
#define GM_W 16
#define GM_LOAD(p) _mm512_loadu_ps(p)
#define GM_STORE(p, v) _mm512_storeu_ps(p, v)
#define GM_BCAST(p) _mm512_set1_ps(*(p))
#define GM_ZERO() _mm512_setzero_ps()
#define GM_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define GM_FMAS fmaf
#define GM_MASK_T __mmask16
#define GM_MASK(r) ((__mmask16)((1u << (r)) - 1u))
#define GM_LOADM(p, mk) _mm512_maskz_loadu_ps(mk, p)
#define GM_STOREM(p, mk, v) _mm512_mask_storeu_ps(p, mk, v)
#define GM_SFX s_avx512
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_W
#undef GM_LOAD
#undef GM_STORE
#undef GM_BCAST
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#define GM_T double
#define GM_VT __m512d
#define GM_W 8
#define GM_LOAD(p) _mm512_loadu_pd(p)
#define GM_STORE(p, v) _mm512_storeu_pd(p, v)
#define GM_BCAST(p) _mm512_set1_pd(*(p))
#define GM_ZERO() _mm512_setzero_pd()
#define GM_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define GM_FMAS fma
#define GM_MASK_T __mmask8
#define GM_MASK(r) ((__mmask8)((1u << (r)) - 1u))
#define GM_LOADM(p, mk) _mm512_maskz_loadu_pd(mk, p)
#define GM_STOREM(p, mk, v) _mm512_mask_storeu_pd(p, mk, v)
#define GM_SFX d_avx512
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_W
#undef GM_LOAD
#undef GM_STORE
#undef GM_BCAST
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#undef GM_TARGET
#undef GM_MR

/* ---- AVX2 + FMA ----------------------------------------------------------------------- */

#define GM_TARGET __attribute__((target("avx2,fma")))
#define GM_MR 6

#define GM_T float
#define GM_VT __m256
#define GM_W 8
#define GM_LOAD(p) _mm256_loadu_ps(p)
#define GM_STORE(p, v) _mm256_storeu_ps(p, v)
#define GM_BCAST(p) _mm256_broadcast_ss(p)
#define GM_ZERO() _mm256_setzero_ps()
#define GM_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define GM_FMAS fmaf
#define GM_MASK_T __m256i
#define GM_MASK(r)                                                                          \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define GM_LOADM(p, mk) _mm256_maskload_ps(p, mk)
#define GM_STOREM(p, mk, v) _mm256_maskstore_ps(p, mk, v)
#define GM_SFX s_avx2
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_W
#undef GM_LOAD
#undef GM_STORE
#undef GM_BCAST
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#define GM_T double
#define GM_VT __m256d
#define GM_W 4
#define GM_LOAD(p) _mm256_loadu_pd(p)
#define GM_STORE(p, v) _mm256_storeu_pd(p, v)
#define GM_BCAST(p) _mm256_broadcast_sd(p)
#define GM_ZERO() _mm256_setzero_pd()
#define GM_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define GM_FMAS fma
#define GM_MASK_T __m256i
#define GM_MASK(r)                                                                          \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(r)), _mm256_setr_epi64x(0, 1, 2, 3))
#define GM_LOADM(p, mk) _mm256_maskload_pd(p, mk)
#define GM_STOREM(p, mk, v) _mm256_maskstore_pd(p, mk, v)
#define GM_SFX d_avx2
#include "gemm_tmpl.h"
#undef GM_T
#undef GM_VT
#undef GM_W
#undef GM_LOAD
#undef GM_STORE
#undef GM_BCAST
#undef GM_ZERO
#undef GM_FMA
#undef GM_FMAS
#undef GM_SFX
#undef GM_MASK_T
#undef GM_MASK
#undef GM_LOADM
#undef GM_STOREM

#undef GM_TARGET
#undef GM_MR
#endif

/* ---- dispatch ------------------------------------------------------------------------- */

/* The highest instruction set the dispatch may choose (tests lower it to
 * compare the versions on one machine). */
static int isa_cap = 2;

void csp__gemm_set_isa_cap(int cap) { isa_cap = cap; }

void csp__sgemm(int64_t m, int64_t n, int64_t k, const float *A, int64_t rsa, int64_t csa,
                const float *B, int64_t ldb, float *C, int64_t ldc, bool acc) {
    if (m <= 0 || n <= 0)
        return;
#if CSP_X86
    if (isa_cap >= 2 && have_avx512()) {
        gemm_s_avx512(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        return;
    }
    if (isa_cap >= 1 && have_avx2()) {
        gemm_s_avx2(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        return;
    }
#endif
    gemm_s_c(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
}

void csp__dgemm(int64_t m, int64_t n, int64_t k, const double *A, int64_t rsa, int64_t csa,
                const double *B, int64_t ldb, double *C, int64_t ldc, bool acc) {
    if (m <= 0 || n <= 0)
        return;
#if CSP_X86
    if (isa_cap >= 2 && have_avx512()) {
        gemm_d_avx512(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        return;
    }
    if (isa_cap >= 1 && have_avx2()) {
        gemm_d_avx2(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        return;
    }
#endif
    gemm_d_c(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
}

/* Rows of C per block of the SYRK: a multiple of every register tile's
 * height (4, 6, 8), so the block's product runs in whole tiles. */
#define SYRK_BLOCK CSP__SYRK_SCRATCH_ROWS

void csp__ssyrk_tn_d(int64_t n, int64_t k, const float *X, int64_t ldx, float *T, double *C,
                     int64_t ldc, int64_t a0, int64_t a1) {
    if (k <= 0)
        return;
    for (int64_t b0 = a0; b0 < a1; b0 += SYRK_BLOCK) {
        int64_t b1 = b0 + SYRK_BLOCK < a1 ? b0 + SYRK_BLOCK : a1;
        /* T row (a - b0), column c holds element (a, c) of X^T X for c >= b0:
         * one rectangular product (A(i,p) = X[p][i]). Its part below the
         * diagonal is computed and dropped, cheaper than row-by-row
         * triangles; every element is the same chain either way. */
        csp__sgemm(b1 - b0, n - b0, k, X + b0, 1, ldx, X + b0, ldx, T + b0, n, false);
        for (int64_t a = b0; a < b1; a++) {
            const float *t = T + (a - b0) * n;
            double *c = C + a * ldc;
            for (int64_t j = a; j < n; j++)
                c[j] += (double)t[j];
        }
    }
}
