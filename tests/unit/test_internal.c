/* White-box tests of the internal helpers: options checks, aligned memory,
 * the parallel loop, counter-based random numbers. */
#include "testutil.h"

#include "core/abi.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

START_TEST(test_aligned_alloc) {
    test_alloc a;
    test_alloc_reset(&a, 0);
    csp_context *ctx = test_context_with_alloc(&a);
    for (size_t n = 0; n < 300; n += 7) {
        unsigned char *p = csp__malloc_aligned(ctx, n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        memset(p, 0xab, n);
        csp__free_aligned(ctx, p);
    }
    csp__free_aligned(ctx, NULL);
    ck_assert_ptr_null(csp__malloc_aligned(ctx, SIZE_MAX - 8));
    ck_assert_ptr_null(csp__calloc(ctx, SIZE_MAX / 2, 4));
    csp_context_free(ctx);
    ck_assert_int_eq(a.live, 0);
}
END_TEST

typedef struct {
    double *out;
    int64_t *owner;
} square_job;

static void square_range(void *arg, int64_t b, int64_t e, int32_t w) {
    square_job *j = arg;
    for (int64_t i = b; i < e; i++) {
        j->out[i] = sqrt((double)i) * 1.5;
        j->owner[i] = w;
    }
}

START_TEST(test_parallel_for) {
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, NULL), CSP_OK);
    enum { N = 10007 };
    static double ref[N], got[N];
    static int64_t owner[N];
    square_job j = {ref, owner};
    ck_assert_int_eq(csp__parallel_for(ctx, N, 1, square_range, &j), CSP_OK);
    for (int32_t threads = 2; threads <= 7; threads++) {
        csp_context_set_num_threads(ctx, threads);
        for (int64_t i = 0; i < N; i++)
            owner[i] = -1;
        j.out = got;
        ck_assert_int_eq(csp__parallel_for(ctx, N, 100, square_range, &j), CSP_OK);
        ck_assert_mem_eq(ref, got, sizeof ref);
        /* Every item covered once, by contiguous workers in order. */
        for (int64_t i = 1; i < N; i++)
            ck_assert_int_ge(owner[i], owner[i - 1]);
        ck_assert_int_eq(owner[0], 0);
        ck_assert_int_eq(owner[N - 1], threads - 1);
    }
    /* Fewer items than threads x grain: fewer workers. */
    for (int64_t i = 0; i < N; i++)
        owner[i] = -1;
    ck_assert_int_eq(csp__parallel_for(ctx, 50, 100, square_range, &j), CSP_OK);
    ck_assert_int_eq(owner[49], 0);
    ck_assert_int_eq(owner[50], -1);
    ck_assert_int_eq(csp__parallel_for(ctx, 0, 1, square_range, &j), CSP_OK);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_rng_stateless) {
    uint64_t seed = csp_test_seed();
    uint64_t k1 = csp__key(seed, 1, 2, 3), k2 = csp__key(seed, 1, 2, 4);
    ck_assert_uint_ne(k1, k2);
    ck_assert_uint_eq(k1, csp__key(seed, 1, 2, 3));
    /* Known value: the stream is part of the reproducibility promise. */
    ck_assert_uint_eq(csp__mix64(0), 0);
    ck_assert_uint_eq(csp__mix64(1), 0x5692161d100b05e5ULL);
    /* Moments of uniforms and normals from a counter stream. */
    enum { N = 200000 };
    double su = 0, su2 = 0, sn = 0, sn2 = 0;
    for (uint64_t i = 0; i < N; i++) {
        double u = csp__uniform(k1, i);
        ck_assert(u >= 0.0 && u < 1.0);
        su += u;
        su2 += u * u;
        double z = csp__normal(k2, i);
        ck_assert(isfinite(z));
        sn += z;
        sn2 += z * z;
        ck_assert(csp__uniform(k1, i) == u); /* pure function */
    }
    /* 6-sigma bounds for N samples. */
    ck_assert_double_eq_tol(su / N, 0.5, 6 * sqrt(1.0 / 12 / N));
    ck_assert_double_eq_tol(su2 / N, 1.0 / 3, 6 * sqrt(4.0 / 45 / N));
    ck_assert_double_eq_tol(sn / N, 0.0, 6 * sqrt(1.0 / N));
    ck_assert_double_eq_tol(sn2 / N, 1.0, 6 * sqrt(2.0 / N));
}
END_TEST

START_TEST(test_rng_portable_values) {
    /* Committed values: csp__normal uses only correctly rounded IEEE
     * operations, so these hold on every platform and compiler. */
    uint64_t k = csp__key(1, 2, 3, 4);
    ck_assert_uint_eq(k, 0xe8915bcef3ac840fULL);
    const double want[4] = {0x1.77f27caa74be3p-6, 0x1.5142da597278ap+0, -0x1.49f859f23f535p-2,
                            -0x1.dcdd56f29b9edp-2};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(csp__normal(k, (uint64_t)i) == want[i], "normal %d: %a != %a", i,
                      csp__normal(k, (uint64_t)i), want[i]);
    ck_assert(csp__log_portable(0.1) == -0x1.26bb1bbb55515p+1);
    /* The portable logarithm is within a few ulp of the C library's. */
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    const char *vg = getenv("CSP_UNDER_VALGRIND");
    int samples = vg != NULL && vg[0] == '1' ? 5000 : 100000;
    for (int i = 0; i < samples; i++) {
        double x = ldexp(0.5 + test_rng_uniform(&r), (int)(test_rng_u64(&r) % 2000) - 1000);
        double ref = log(x);
        ck_assert_msg(fabs(csp__log_portable(x) - ref) <= 8e-16 * fabs(ref) + 1e-300,
                      "log(%a): %a vs %a", x, csp__log_portable(x), ref);
    }
    ck_assert(csp__log_portable(1.0) == 0.0);
    ck_assert(isinf(csp__log_portable(0.0)) && csp__log_portable(0.0) < 0);
    ck_assert(isnan(csp__log_portable(-1.0)));
    /* Symmetric tails: the extreme values stay finite and moderate. */
    for (uint64_t i = 0; i < (uint64_t)samples; i++) {
        double z = csp__normal(k, i);
        ck_assert(isfinite(z) && fabs(z) < 9.0);
    }
}
END_TEST

/* The growth path (lib/core/abi.h) on a struct that grew: v1 had a and b,
 * v2 appended c (default 7) and d (default 9). */
typedef struct {
    size_t struct_size;
    int32_t a, b;
    int64_t c, d;
} grown;

static void grown_defaults(void *full) {
    grown *g = full;
    g->a = 1;
    g->b = 2;
    g->c = 7;
    g->d = 9;
}

START_TEST(test_growth_path) {
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, NULL), CSP_OK);
    const size_t v1 = offsetof(grown, c);
    const csp__struct_desc d = {"grown", v1, sizeof(grown), grown_defaults, false};
    /* _init of an old caller writes its v1 bytes only (the canary stays). */
    unsigned char buf[64];
    memset(buf, 0xA5, sizeof buf);
    ck_assert_int_eq(csp__struct_init(&d, buf, v1), CSP_OK);
    for (size_t i = v1; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xA5);
    grown full;
    ck_assert_int_eq(csp__struct_in(ctx, &d, buf, &full, "x"), CSP_OK);
    ck_assert_uint_eq(full.struct_size, sizeof(grown)); /* the library's own size */
    ck_assert(full.a == 1 && full.b == 2 && full.c == 7 && full.d == 9);
    /* The caller's fields win; the fields it lacks keep their defaults even
     * when the bytes after its struct are not zero. */
    ((grown *)(void *)buf)->a = 5;
    memset(buf + v1, 0xFF, sizeof buf - v1);
    ck_assert_int_eq(csp__struct_in(ctx, &d, buf, &full, "x"), CSP_OK);
    ck_assert(full.a == 5 && full.b == 2 && full.c == 7 && full.d == 9);
    /* NULL: the defaults. */
    ck_assert_int_eq(csp__struct_in(ctx, &d, NULL, &full, "x"), CSP_OK);
    ck_assert(full.a == 1 && full.d == 9);
    /* A newer caller: known bytes read, a zero tail accepted, a non-zero one
     * refused. */
    unsigned char big[sizeof(grown) + 16];
    memset(big, 0, sizeof big);
    ck_assert_int_eq(csp__struct_init(&d, big, sizeof big), CSP_OK);
    ((grown *)(void *)big)->d = 3;
    ck_assert_int_eq(csp__struct_in(ctx, &d, big, &full, "x"), CSP_OK);
    ck_assert_int_eq(full.d, 3);
    big[sizeof big - 1] = 1;
    ck_assert_status(ctx, csp__struct_in(ctx, &d, big, &full, "x"), CSP_E_RESERVED);
    /* Sizes below the first release, or absurd. */
    size_t small = v1 - 1;
    memcpy(buf, &small, sizeof small);
    ck_assert_status(ctx, csp__struct_in(ctx, &d, buf, &full, "x"), CSP_E_STRUCT_SIZE);
    ck_assert(strstr(csp_context_last_error(ctx), "grown") != NULL);
    ck_assert_int_eq(csp__struct_init(&d, buf, v1 - 1), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp__struct_init(&d, buf, CSP_STRUCT_MAX_SIZE + 1), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp__struct_init(&d, NULL, v1), CSP_E_NULL);
    /* Output: an old caller gets its v1 bytes, struct_size kept; a newer one
     * gets zeros past the library's size. */
    memset(buf, 0xA5, sizeof buf);
    ck_assert_int_eq(csp__struct_init(&d, buf, v1), CSP_OK);
    ck_assert_int_eq(csp__struct_out_check(ctx, &d, buf, "x"), CSP_OK);
    grown res = {sizeof(grown), 11, 12, 13, 14};
    csp__struct_out(&d, &res, buf);
    const grown *seen = (const grown *)(const void *)buf;
    ck_assert(seen->struct_size == v1 && seen->a == 11 && seen->b == 12);
    for (size_t i = v1; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xA5);
    memset(big, 0xA5, sizeof big);
    size_t bs = sizeof big;
    memcpy(big, &bs, sizeof bs);
    csp__struct_out(&d, &res, big);
    ck_assert(((grown *)(void *)big)->d == 14 && big[sizeof big - 1] == 0);
    ck_assert_status(ctx, csp__struct_out_check(ctx, &d, NULL, "x"), CSP_E_NULL);
    memcpy(buf, &small, sizeof small);
    ck_assert_status(ctx, csp__struct_out_check(ctx, &d, buf, "x"), CSP_E_STRUCT_SIZE);
    csp_context_free(ctx);
}
END_TEST

static Suite *internal_suite(void) {
    Suite *s = suite_create("internal");
    TCase *tc = tcase_create("core");
    /* test_rng_stateless draws 400k numbers: up to 2.3 s under ASan on a
     * loaded machine, near Check's default 4 s. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_aligned_alloc);
    tcase_add_test(tc, test_parallel_for);
    tcase_add_test(tc, test_rng_stateless);
    tcase_add_test(tc, test_rng_portable_values);
    tcase_add_test(tc, test_growth_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(internal_suite()); }
