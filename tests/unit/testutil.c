#include "testutil.h"

#include <math.h>
#include <string.h>
#include <time.h>

uint64_t csp_test_seed(void) {
    static uint64_t seed;
    static int have;
    if (!have) {
        const char *env = getenv("CSP_TEST_SEED");
        if (env != NULL && *env != '\0') {
            seed = strtoull(env, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
        }
        have = 1;
        fprintf(stderr, "test seed: CSP_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    return seed;
}

void test_rng_init(test_rng *r, uint64_t seed) {
    r->s = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    if (r->s == 0)
        r->s = 1;
}

uint64_t test_rng_u64(test_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

double test_rng_uniform(test_rng *r) { return (double)(test_rng_u64(r) >> 11) * 0x1.0p-53; }

double test_rng_normal(test_rng *r) {
    double u1 = 1.0 - test_rng_uniform(r);
    double u2 = test_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Each block carries its size in a header so the counters stay exact. */
typedef union {
    size_t size;
    max_align_t align;
} block_header;

void test_alloc_reset(test_alloc *a, int64_t fail_at) {
    memset(a, 0, sizeof *a);
    a->fail_at = fail_at;
}

void *test_alloc_fn(void *user, size_t size) {
    test_alloc *a = user;
    a->calls++;
    if (a->fail_at != 0 && a->calls == a->fail_at)
        return NULL;
    block_header *h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    a->live++;
    if (a->live > a->peak_live)
        a->peak_live = a->live;
    a->bytes_live += (int64_t)size;
    return h + 1;
}

void test_free_fn(void *user, void *ptr) {
    test_alloc *a = user;
    block_header *h = (block_header *)ptr - 1;
    a->live--;
    a->bytes_live -= (int64_t)h->size;
    free(h);
}

csp_context *test_context(int32_t threads, uint64_t seed) {
    csp_context_options o;
    ck_assert_int_eq(csp_context_options_init(&o, sizeof o), CSP_OK);
    o.num_threads = threads;
    o.seed = seed;
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_OK);
    return ctx;
}

csp_context *test_context_with_alloc(test_alloc *a) {
    csp_context_options o;
    ck_assert_int_eq(csp_context_options_init(&o, sizeof o), CSP_OK);
    o.alloc = test_alloc_fn;
    o.free = test_free_fn;
    o.alloc_user = a;
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_OK);
    return ctx;
}

int test_run_suite(Suite *s) {
    (void)csp_test_seed();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
