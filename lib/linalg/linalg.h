/*
 * Dense linear algebra shared by the sensing operators and the solvers:
 * float32 kernels for the hot loops (run-time dispatched to AVX-512 / AVX2
 * where the compiler supports it), small float64 Cholesky helpers, power
 * iteration, and the prepared Gram matrix (csp__gram) every solver takes.
 *
 * Matrices are row-major. Gram matrices are symmetric, so a row of G is also
 * a column: the kernels read rows.
 */
#ifndef CSP_LINALG_H
#define CSP_LINALG_H

#include "core/bits.h"
#include "core/internal.h"

/* ---- the prepared Gram matrix -------------------------------------------- */

/* G in float64 (n x n, leading dimension n) for everything that must be
 * accurate (Cholesky factors, right-hand sides, energies), and the same
 * values rounded to float32 for the O(n k^2) and GEMM-shaped work. */
typedef struct csp__gram {
    int64_t n;
    double *g64;      /* n * n, symmetric */
    float *g32;       /* n * n, the same rounded to float */
    double mean_diag; /* trace / n */
    double max_diag;
    double lmax;      /* Lipschitz bound >= lambda_max(G); 0 until computed */
    bool identity;    /* G is exactly I */
    int64_t rank_bound; /* rank(G) <= rank_bound when > 0 (random operators:
                           m < n); 0 = no bound known */
} csp__gram;

/* Allocate storage for an n x n Gram (64-byte aligned). */
csp_status csp__gram_alloc(csp_context *ctx, csp__gram *g, int64_t n);
void csp__gram_release(csp_context *ctx, csp__gram *g);
/* After g64 is filled (both triangles): derive g32, the diagonal summaries
 * and the identity flag, and forget lmax. */
void csp__gram_finish(csp__gram *g);
/* Compute lmax once (power iteration, float64): a bound >= the largest
 * eigenvalue, at most the Gershgorin bound. Needs 2n doubles of scratch from
 * the context. */
csp_status csp__gram_ensure_lmax(csp_context *ctx, csp__gram *g);
/* Validate a caller's Gram: finite, symmetric to 1e-10 relative, diagonal
 * >= 0 and positive semi-definite (a Cholesky factorisation of
 * G + 1e-9 max(diag) I succeeds). Leaves a message on ctx. */
csp_status csp__gram_validate(csp_context *ctx, const double *G, int64_t n, int64_t ld,
                              const char *fn);

/* ---- float32 kernels ------------------------------------------------------ */

/* acc[j] += sum_t coef[t] * G[idx[t] * ld + j] for j < n, summed over t in
 * order (a gather-AXPY over rows of G). */
void csp__f32_axpy_rows(float *restrict acc, int64_t n, const float *restrict G, int64_t ld,
                        const int32_t *restrict idx, const float *restrict coef, int64_t cnt);

/* The first index j maximising |a[j]| + pen[j] (pen is 0 or -inf); -1 when
 * every score is -inf. Ties go to the lower index. */
int64_t csp__f32_argmax_abs(const float *restrict a, const float *restrict pen, int64_t n);
/* The first index j with |a[j]| + pen[j] == score (the arg max's float
 * expression); -1 when there is none. */
int64_t csp__f32_find_abs(const float *restrict a, const float *restrict pen, int64_t n,
                          float score);

/* sum_j a[j] * b[j] accumulated in float64. */
double csp__f32_dot64(const float *restrict a, const float *restrict b, int64_t n);

/* One proximal-gradient (ISTA / FISTA) step on a row, fused with the
 * duality-gap terms of the current iterate:
 *   y  = x + beta (x - xp),  G y = gx + beta (gx - gxp)   (by linearity)
 *   xn = soft(y - (G y - b) invL, thr + pinf),  written over xp
 * with b = G w, gx = G x, gxp = G xp, pinf[j] = 0 (allowed) or +inf (not;
 * NULL = all allowed). The nonzeros of xn are listed in idx/val (ascending
 * index). For the current x, with g = b - gx: r = (w - x).g, xg = x.g,
 * l1 = ||x||_1, gmax = max over allowed |g|; rdot = (y - xn).(xn - x) is the
 * momentum-restart test. Sums are accumulated in float64. */
typedef struct csp__prox_out {
    double r, xg, l1, gmax, rdot;
    int64_t nnz;
} csp__prox_out;
void csp__f32_prox_step(int64_t n, const float *restrict w, const float *restrict b,
                        const float *restrict pinf, float thr, float beta, float invL,
                        const float *restrict x, float *restrict xp, const float *restrict gx,
                        const float *restrict gxp, int32_t *restrict idx, float *restrict val,
                        csp__prox_out *out);

/* ---- deterministic dense products (gemm.c) ------------------------------- */

/* C = A B (acc false) or C += A B (acc true) for an m x n C (leading
 * dimension ldc), A(i, p) = A[i * rsa + p * csa] (m x k: rsa = lda, csa = 1
 * for a row-major A, rsa = 1, csa = lda for a transposed one), B k x n
 * row-major (leading dimension ldb). Each element is the chain of fused
 * multiply-adds over p = 0 .. k-1 in order: the bits do not depend on the
 * CPU's instruction set, on how callers split the rows or columns between
 * threads, or on any BLAS library. Single-threaded; no allocation. */
void csp__sgemm(int64_t m, int64_t n, int64_t k, const float *A, int64_t rsa, int64_t csa,
                const float *B, int64_t ldb, float *C, int64_t ldc, bool acc);
void csp__dgemm(int64_t m, int64_t n, int64_t k, const double *A, int64_t rsa, int64_t csa,
                const double *B, int64_t ldb, double *C, int64_t ldc, bool acc);
/* The upper triangle of C += X^T X for rows a0 .. a1-1 of C (columns a ..
 * n-1 of row a), X k x n float32 row-major (leading dimension ldx): each
 * element of X^T X is the float32 chain of csp__sgemm over the k rows
 * (error <= k u sum_p |x_pa x_pc|, u = 2^-24), then added to C in float64.
 * T is scratch of CSP__SYRK_SCRATCH_ROWS * n floats. The strictly lower
 * triangle is not touched; k <= 0 does nothing. */
void csp__ssyrk_tn_d(int64_t n, int64_t k, const float *X, int64_t ldx, float *T, double *C,
                     int64_t ldc, int64_t a0, int64_t a1);
#define CSP__SYRK_SCRATCH_ROWS 24
/* Tests only (not thread-safe): the highest instruction set the products
 * may use, 0 portable, 1 AVX2+FMA, 2 AVX-512 (the default). */
void csp__gemm_set_isa_cap(int cap);

/* ---- float64 helpers (small, accuracy first) ----------------------------- */

/* Solve L y = y in place, L lower triangular s x s with leading dimension ld. */
void csp__trsv_lower(const double *L, int64_t ld, int64_t s, double *y);
/* Solve L^T y = y in place (y must not overlap L). */
void csp__trsv_lower_t(const double *L, int64_t ld, int64_t s, double *y);
double csp__dot64(const double *a, const double *b, int64_t n);

/* e^T G e over the @p cnt nonzeros @p nz of e (float64), G = I when
 * g->g64 is NULL: O(cnt^2). */
double csp__quad_sparse(const csp__gram *g, const double *e, const int32_t *nz, int64_t cnt);

/* H = G^-1 (n x n, full symmetric, leading dimension n) in float64 through
 * G's Cholesky factor (csp__cholesky with dependence test tau): n^3 / 2
 * multiply-adds, fixed order. False (H scratch) when a pivot fails. */
bool csp__gram_inverse(const csp__gram *g, double *H, double tau);

/* Factor A = L L^T in place (lower triangle, leading dimension ld, s x s).
 * Returns -1 on success, else the index of the first pivot d with
 * !(d > tau * A_ii) (the matrix is numerically singular there). */
int64_t csp__cholesky(double *A, int64_t ld, int64_t s, double tau);

#endif /* CSP_LINALG_H */
