/* The float32 kernels of lib/linalg/kernels.c (whichever version the CPU
 * gets: AVX-512, AVX2, NEON on aarch64, portable C) against float64
 * references, on random inputs from a fresh seed and every length up to 70
 * (all vector tails). Tolerances: the float32 results carry rounding of
 * order cnt * eps * sum |terms|; the float64-accumulated dot product is
 * exact to 1e-12 of sum |a_j b_j|. */
#include "testutil.h"

#include "linalg/linalg.h"

#include <math.h>
#include <string.h>

enum { MAXN = 70, ROWS = 23 };

static float rnd(test_rng *r) { return (float)test_rng_normal(r); }

START_TEST(test_axpy_rows) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() ^ 0x6b65726eULL);
    static float G[ROWS * (MAXN + 3)];
    float acc[MAXN + 1], acc0[MAXN + 1], coef[ROWS];
    int32_t idx[ROWS];
    for (int64_t n = 1; n <= MAXN; n++) {
        int64_t ld = n + (n % 3); /* rows with and without padding */
        for (int64_t i = 0; i < ROWS * ld; i++)
            G[i] = rnd(&r);
        int64_t cnt = 1 + (int64_t)(test_rng_u64(&r) % ROWS);
        for (int64_t t = 0; t < cnt; t++) {
            idx[t] = (int32_t)(test_rng_u64(&r) % ROWS);
            coef[t] = rnd(&r);
        }
        for (int64_t j = 0; j <= n; j++)
            acc0[j] = acc[j] = rnd(&r);
        csp__f32_axpy_rows(acc, n, G, ld, idx, coef, cnt);
        for (int64_t j = 0; j < n; j++) {
            double ref = acc0[j], mag = fabs(acc0[j]);
            for (int64_t t = 0; t < cnt; t++) {
                double term = (double)coef[t] * (double)G[(int64_t)idx[t] * ld + j];
                ref += term;
                mag += fabs(term);
            }
            double tol = 4.0 * (double)(cnt + 1) * 0x1p-24 * mag;
            REQUIRE(fabs((double)acc[j] - ref) <= tol, "n %lld j %lld: %.9g vs %.9g (tol %.3g)",
                    (long long)n, (long long)j, (double)acc[j], ref, tol);
        }
        REQUIRE(acc[n] == acc0[n], "n %lld: wrote past the end", (long long)n);
    }
    /* Nothing to do: untouched. */
    acc[0] = 1.5f;
    csp__f32_axpy_rows(acc, 1, G, 1, idx, coef, 0);
    ck_assert(acc[0] == 1.5f);
}
END_TEST

START_TEST(test_argmax_abs) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() ^ 0x61726778ULL);
    float a[MAXN], pen[MAXN];
    for (int64_t n = 1; n <= MAXN; n++) {
        for (int rep = 0; rep < 4; rep++) {
            for (int64_t j = 0; j < n; j++) {
                a[j] = rnd(&r);
                pen[j] = test_rng_u64(&r) % 4 == 0 ? -INFINITY : 0.0f;
            }
            if (rep == 1 && n > 2) /* a tie: the lower index wins */
                a[n - 1] = -a[n / 2], pen[n - 1] = pen[n / 2] = 0.0f;
            if (rep == 3) /* every score -inf */
                for (int64_t j = 0; j < n; j++)
                    pen[j] = -INFINITY;
            int64_t want = -1;
            double best = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                double sc = fabs((double)a[j]) + (double)pen[j];
                if (sc > best)
                    best = sc, want = j;
            }
            int64_t got = csp__f32_argmax_abs(a, pen, n);
            REQUIRE(got == want, "n %lld rep %d: %lld, want %lld", (long long)n, rep,
                    (long long)got, (long long)want);
        }
    }
}
END_TEST

START_TEST(test_dot64) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() ^ 0x646f7436ULL);
    float a[MAXN], b[MAXN];
    for (int64_t n = 0; n <= MAXN; n++) {
        double ref = 0.0, mag = 0.0;
        for (int64_t j = 0; j < n; j++) {
            a[j] = rnd(&r);
            b[j] = rnd(&r);
            ref += (double)a[j] * (double)b[j];
            mag += fabs((double)a[j] * (double)b[j]);
        }
        double got = csp__f32_dot64(a, b, n);
        REQUIRE(fabs(got - ref) <= 1e-12 * mag, "n %lld: %.17g vs %.17g", (long long)n, got, ref);
    }
}
END_TEST

/* csp__dot64 (float64 inputs, eight partial sums): within 2 (n + 1) eps64
 * sum |a_j b_j| of a long-double sum (the closed-form error bound of the
 * pairwise-then-serial order, with margin); below eight terms the serial sum
 * in index order, bit for bit; n = 0 gives +0. */
START_TEST(test_dot64_f64) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() ^ 0x64363464ULL);
    enum { LONG = 300 };
    static double a[LONG], b[LONG];
    for (int64_t n = 0; n <= LONG; n++) {
        long double ref = 0.0L, mag = 0.0L;
        double serial = 0.0;
        for (int64_t j = 0; j < n; j++) {
            a[j] = test_rng_normal(&r) * ldexp(1.0, (int)(test_rng_u64(&r) % 21) - 10);
            b[j] = test_rng_normal(&r);
            ref += (long double)a[j] * b[j];
            mag += fabsl((long double)a[j] * b[j]);
            serial += a[j] * b[j];
        }
        double got = csp__dot64(a, b, n);
        REQUIRE(fabsl(got - ref) <= 2.0L * (n + 1) * 0x1p-53L * mag, "n %lld: %.17g vs %.17Lg",
                (long long)n, got, ref);
        if (n < 8)
            REQUIRE(memcmp(&got, &serial, sizeof got) == 0, "n %lld: %.17g != serial %.17g",
                    (long long)n, got, serial);
    }
}
END_TEST

static Suite *kernels_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("f32");
    tcase_add_test(tc, test_axpy_rows);
    tcase_add_test(tc, test_argmax_abs);
    tcase_add_test(tc, test_dot64);
    tcase_add_test(tc, test_dot64_f64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(kernels_suite()); }
