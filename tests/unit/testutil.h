/* Shared helpers for the Check suites. */
#ifndef CSP_TESTUTIL_H
#define CSP_TESTUTIL_H

#include <csp/csp.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Seed for this run's random inputs: $CSP_TEST_SEED when set, else fresh
 * from the clock. Printed once so a failure can be replayed. */
uint64_t csp_test_seed(void);

/* A small deterministic generator for test data (xorshift64*). */
typedef struct {
    uint64_t s;
} test_rng;
void test_rng_init(test_rng *r, uint64_t seed);
uint64_t test_rng_u64(test_rng *r);
double test_rng_uniform(test_rng *r);  /* [0, 1) */
double test_rng_normal(test_rng *r);

/* An allocator that counts, tracks live blocks and fails the N-th call. */
typedef struct {
    int64_t fail_at;     /* 1-based index of the call that fails; 0 = never */
    int64_t calls;       /* calls so far */
    int64_t live;        /* blocks not yet freed */
    int64_t peak_live;
    int64_t bytes_live;
} test_alloc;
void test_alloc_reset(test_alloc *a, int64_t fail_at);
void *test_alloc_fn(void *user, size_t size);
void test_free_fn(void *user, void *ptr);

/* A context with @p threads worker threads and seed @p seed (asserts
 * success). */
csp_context *test_context(int32_t threads, uint64_t seed);

/* A context using the test allocator (asserts success). */
csp_context *test_context_with_alloc(test_alloc *a);

/* Assert that @p expr returns status @p expected; on mismatch print the
 * context's message. */
#define ck_assert_status(ctx, expr, expected)                                         \
    do {                                                                              \
        csp_status got_ = (expr);                                                     \
        ck_assert_msg(got_ == (expected), "%s returned %s (%d), expected %s: %s",     \
                      #expr, csp_status_name(got_), (int)got_,                        \
                      csp_status_name(expected), csp_context_last_error(ctx));        \
    } while (0)

/* Check records every ck_assert (a write per call): inner loops use this. */
#define REQUIRE(cond, ...)             \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* Run one suite; the exit status is the number of failures. */
int test_run_suite(Suite *s);

#endif
