/* The deterministic dense products (lib/linalg/gemm.c): GEMM in float32 and
 * float64 and the SYRK of the activation accumulator, against references
 * written here: a long-double product (tolerance stated below) and the
 * fused multiply-add chain in order of the inner index (bitwise: the order
 * every version promises), for odd sizes, size 1, strided and transposed
 * operands, accumulation, split output ranges and every instruction set
 * this machine has; guard zones check that no write leaves the output. */
#include "testutil.h"

#include "linalg/linalg.h"

#include <math.h>
#include <string.h>

#define GUARD_F 1234.5f
#define GUARD_D -4321.25

static const int64_t sizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 47, 64, 65, 97};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* A(i, p) with strides; the scalar fma chain (the promised order). */
static float chain_s(const float *A, int64_t rsa, int64_t csa, const float *B, int64_t ldb,
                     int64_t i, int64_t j, int64_t k, float c0) {
    float s = c0;
    for (int64_t p = 0; p < k; p++)
        s = fmaf(A[i * rsa + p * csa], B[p * ldb + j], s);
    return s;
}
static double chain_d(const double *A, int64_t rsa, int64_t csa, const double *B, int64_t ldb,
                      int64_t i, int64_t j, int64_t k, double c0) {
    double s = c0;
    for (int64_t p = 0; p < k; p++)
        s = fma(A[i * rsa + p * csa], B[p * ldb + j], s);
    return s;
}

static void check_sgemm(test_rng *rng, int64_t m, int64_t n, int64_t k, bool trans, bool acc) {
    int64_t lda = (trans ? m : k) + 3, ldb = n + 2, ldc = n + 5;
    int64_t arows = trans ? k : m;
    float *A = malloc((size_t)(arows * lda) * sizeof *A);
    float *B = malloc((size_t)(k * ldb) * sizeof *B);
    float *C = malloc((size_t)((m + 1) * ldc) * sizeof *C);
    float *C0 = malloc((size_t)((m + 1) * ldc) * sizeof *C0);
    ck_assert(A && B && C && C0);
    for (int64_t q = 0; q < arows * lda; q++)
        A[q] = (float)test_rng_normal(rng);
    for (int64_t q = 0; q < k * ldb; q++)
        B[q] = (float)test_rng_normal(rng);
    for (int64_t q = 0; q < (m + 1) * ldc; q++)
        C0[q] = GUARD_F;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            C0[i * ldc + j] = (float)test_rng_normal(rng);
    int64_t rsa = trans ? 1 : lda, csa = trans ? lda : 1;
    for (int cap = 0; cap <= 2; cap++) {
        memcpy(C, C0, (size_t)((m + 1) * ldc) * sizeof *C);
        csp__gemm_set_isa_cap(cap);
        csp__sgemm(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        for (int64_t i = 0; i <= m; i++)
            for (int64_t j = 0; j < ldc; j++) {
                float got = C[i * ldc + j];
                if (i == m || j >= n) { /* outside the output: untouched */
                    ck_assert_msg(got == C0[i * ldc + j], "sgemm wrote outside C at %lld,%lld",
                                  (long long)i, (long long)j);
                    continue;
                }
                float c0 = acc ? C0[i * ldc + j] : 0.0f;
                float want = chain_s(A, rsa, csa, B, ldb, i, j, k, c0);
                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                              "sgemm %lldx%lldx%lld cap %d (%lld,%lld): %.9g != chain %.9g",
                              (long long)m, (long long)n, (long long)k, cap, (long long)i,
                              (long long)j, got, want);
                /* Against long double: |error| <= (k + 1) eps32 sum |terms|. */
                long double ref = c0, mag = fabsl((long double)c0);
                for (int64_t p = 0; p < k; p++) {
                    long double t = (long double)A[i * rsa + p * csa] * B[p * ldb + j];
                    ref += t;
                    mag += fabsl(t);
                }
                ck_assert_msg(fabsl(got - ref) <= (k + 1) * 0x1p-24L * mag + 1e-30L,
                              "sgemm error %Lg > bound", fabsl(got - ref));
            }
    }
    csp__gemm_set_isa_cap(2);
    free(A);
    free(B);
    free(C);
    free(C0);
}

START_TEST(test_sgemm_reference) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 1);
    for (int a = 0; a < NSIZES; a += 2)
        for (int b = 0; b < NSIZES; b++) {
            int64_t m = sizes[a], n = sizes[b], k = sizes[(a + 3 * b) % NSIZES];
            check_sgemm(&rng, m, n, k, (a + b) % 2 == 1, b % 3 == 0);
        }
    check_sgemm(&rng, 1, 1, 1, false, false);
    check_sgemm(&rng, 40, 130, 200, false, false);
    check_sgemm(&rng, 9, 1, 300, true, true);
}
END_TEST

static void check_dgemm(test_rng *rng, int64_t m, int64_t n, int64_t k, bool trans, bool acc) {
    int64_t lda = (trans ? m : k) + 1, ldb = n + 3, ldc = n + 2;
    int64_t arows = trans ? k : m;
    double *A = malloc((size_t)(arows * lda) * sizeof *A);
    double *B = malloc((size_t)(k * ldb) * sizeof *B);
    double *C = malloc((size_t)((m + 1) * ldc) * sizeof *C);
    double *C0 = malloc((size_t)((m + 1) * ldc) * sizeof *C0);
    ck_assert(A && B && C && C0);
    for (int64_t q = 0; q < arows * lda; q++)
        A[q] = test_rng_normal(rng);
    for (int64_t q = 0; q < k * ldb; q++)
        B[q] = test_rng_normal(rng);
    for (int64_t q = 0; q < (m + 1) * ldc; q++)
        C0[q] = GUARD_D;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            C0[i * ldc + j] = test_rng_normal(rng);
    int64_t rsa = trans ? 1 : lda, csa = trans ? lda : 1;
    for (int cap = 0; cap <= 2; cap++) {
        memcpy(C, C0, (size_t)((m + 1) * ldc) * sizeof *C);
        csp__gemm_set_isa_cap(cap);
        csp__dgemm(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        for (int64_t i = 0; i <= m; i++)
            for (int64_t j = 0; j < ldc; j++) {
                double got = C[i * ldc + j];
                if (i == m || j >= n) {
                    ck_assert_msg(got == C0[i * ldc + j], "dgemm wrote outside C");
                    continue;
                }
                double c0 = acc ? C0[i * ldc + j] : 0.0;
                double want = chain_d(A, rsa, csa, B, ldb, i, j, k, c0);
                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                              "dgemm %lldx%lldx%lld cap %d (%lld,%lld): %.17g != chain %.17g",
                              (long long)m, (long long)n, (long long)k, cap, (long long)i,
                              (long long)j, got, want);
                long double ref = c0, mag = fabsl((long double)c0);
                for (int64_t p = 0; p < k; p++) {
                    long double t = (long double)A[i * rsa + p * csa] * B[p * ldb + j];
                    ref += t;
                    mag += fabsl(t);
                }
                /* |error| <= (k + 1) eps64 sum |terms| (long double carries 11 more bits). */
                ck_assert_msg(fabsl(got - ref) <= (k + 1) * 0x1p-52L * mag + 1e-300L,
                              "dgemm error %Lg > bound", fabsl(got - ref));
            }
    }
    csp__gemm_set_isa_cap(2);
    free(A);
    free(B);
    free(C);
    free(C0);
}

START_TEST(test_dgemm_reference) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 2);
    for (int a = 1; a < NSIZES; a += 2)
        for (int b = 0; b < NSIZES; b++) {
            int64_t m = sizes[a], n = sizes[b], k = sizes[(2 * a + b) % NSIZES];
            check_dgemm(&rng, m, n, k, (a + b) % 2 == 0, b % 2 == 0);
        }
    check_dgemm(&rng, 1, 1, 1, true, true);
    check_dgemm(&rng, 1, 150, 150, false, false); /* the power iteration's shape */
}
END_TEST

/* The SYRK of the activation accumulator: each element of the upper
 * triangle is C0 + (double) of the float32 chain over the rows, bitwise;
 * the strictly lower triangle and the padding untouched; any split of the
 * rows the same; k = 0 changes nothing. */
START_TEST(test_ssyrk_reference) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 3);
    static const int64_t ns[] = {1, 2, 5, 23, 24, 25, 31, 33, 70, 129};
    for (int a = 0; a < 10; a++) {
        int64_t n = ns[a], k = 1 + (int64_t)(test_rng_u64(&rng) % 140), ldx = n + 1,
                ldc = n + 3;
        float *X = malloc((size_t)(k * ldx) * sizeof *X);
        float *T = malloc((size_t)(CSP__SYRK_SCRATCH_ROWS * n) * sizeof *T);
        double *C = malloc((size_t)(n * ldc) * sizeof *C);
        double *C0 = malloc((size_t)(n * ldc) * sizeof *C0);
        ck_assert(X && T && C && C0);
        for (int64_t q = 0; q < k * ldx; q++)
            X[q] = (float)test_rng_normal(&rng);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < ldc; j++)
                C0[i * ldc + j] = j >= i && j < n ? test_rng_normal(&rng) : GUARD_D;
        for (int cap = 0; cap <= 2; cap++) {
            csp__gemm_set_isa_cap(cap);
            memcpy(C, C0, (size_t)(n * ldc) * sizeof *C);
            int64_t split = n / 3;
            csp__ssyrk_tn_d(n, k, X, ldx, T, C, ldc, 0, split);
            csp__ssyrk_tn_d(n, k, X, ldx, T, C, ldc, split, n);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < ldc; j++) {
                    double got = C[i * ldc + j];
                    if (j < i || j >= n) {
                        ck_assert_msg(got == GUARD_D, "ssyrk wrote outside the upper triangle");
                        continue;
                    }
                    double want =
                        C0[i * ldc + j] + (double)chain_s(X, 1, ldx, X, ldx, i, j, k, 0.0f);
                    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                                  "ssyrk n %lld k %lld cap %d (%lld,%lld): %.17g != %.17g",
                                  (long long)n, (long long)k, cap, (long long)i, (long long)j,
                                  got, want);
                }
            csp__ssyrk_tn_d(n, 0, X, ldx, T, C, ldc, 0, n);
            csp__ssyrk_tn_d(n, k, X, ldx, T, C, ldc, n, n);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = i; j < n; j++) {
                    double want =
                        C0[i * ldc + j] + (double)chain_s(X, 1, ldx, X, ldx, i, j, k, 0.0f);
                    ck_assert_msg(C[i * ldc + j] == want, "ssyrk with nothing to do changed C");
                }
        }
        csp__gemm_set_isa_cap(2);
        free(X);
        free(T);
        free(C);
        free(C0);
    }
}
END_TEST

/* Nothing to do: m, n or k zero leaves C alone (k = 0 with acc false zeroes it). */
START_TEST(test_empty) {
    float c[4] = {1, 2, 3, 4}, a[1] = {5}, b[1] = {6};
    csp__sgemm(0, 2, 1, a, 1, 1, b, 1, c, 2, false);
    csp__sgemm(2, 0, 1, a, 1, 1, b, 1, c, 2, false);
    ck_assert(c[0] == 1 && c[3] == 4);
    csp__sgemm(1, 2, 0, a, 1, 1, b, 1, c, 2, true);
    ck_assert(c[0] == 1 && c[1] == 2);
    csp__sgemm(1, 2, 0, a, 1, 1, b, 1, c, 2, false);
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 3);
}
END_TEST

static Suite *linalg_suite(void) {
    Suite *s = suite_create("linalg");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sgemm_reference);
    tcase_add_test(tc, test_dgemm_reference);
    tcase_add_test(tc, test_ssyrk_reference);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(linalg_suite()); }
