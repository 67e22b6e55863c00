/* The context: options, allocator and log hooks, errors, threads. */
#include "testutil.h"

#include <string.h>

typedef struct {
    int calls;
    int32_t last_level;
    char last[600];
} log_capture;

static void capture_log(void *user, int32_t level, const char *msg) {
    log_capture *c = user;
    c->calls++;
    c->last_level = level;
    snprintf(c->last, sizeof c->last, "%s", msg);
}

START_TEST(test_defaults) {
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, NULL), CSP_OK);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(csp_context_num_threads(ctx), 1);
    ck_assert_uint_eq(csp_context_seed(ctx), 0);
    ck_assert_str_eq(csp_context_last_error(ctx), "");
    ck_assert_int_eq(csp_context_last_status(ctx), CSP_OK);
    csp_context_free(ctx);
    csp_context_free(NULL); /* no-op */
}
END_TEST

START_TEST(test_options_roundtrip) {
    uint64_t seed = csp_test_seed();
    csp_context_options o;
    ck_assert_int_eq(csp_context_options_init(&o, sizeof o), CSP_OK);
    ck_assert_uint_eq(o.struct_size, sizeof o);
    ck_assert_int_eq(o.num_threads, 1);
    ck_assert_int_eq(o.log_level, CSP_LOG_WARN);
    ck_assert(o.alloc == NULL && o.free == NULL && o.log == NULL);
    o.seed = seed;
    o.num_threads = 3;
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_OK);
    ck_assert_uint_eq(csp_context_seed(ctx), seed);
    ck_assert_int_eq(csp_context_num_threads(ctx), 3);
    ck_assert_int_eq(csp_context_set_num_threads(ctx, 2), CSP_OK);
    ck_assert_int_eq(csp_context_num_threads(ctx), 2);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_options_bad) {
    csp_context_options o;
    csp_context *ctx = (csp_context *)&o; /* must be reset to NULL on failure */
    ck_assert_int_eq(csp_context_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_context_options_init(&o, 0), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_context_options_init(&o, sizeof o - 1), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_context_options_init(&o, sizeof(size_t)), CSP_E_STRUCT_SIZE);

    ck_assert_int_eq(csp_context_create(NULL, NULL), CSP_E_NULL);

    csp_context_options_init(&o, sizeof o);
    o.struct_size = sizeof o - 8;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_STRUCT_SIZE);
    ck_assert_ptr_null(ctx);
    o.struct_size = 1u << 20;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_STRUCT_SIZE);

    csp_context_options_init(&o, sizeof o);
    o.num_threads = 0;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_RANGE);
    o.num_threads = -4;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_RANGE);
    o.num_threads = CSP_MAX_THREADS + 1;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_RANGE);

    csp_context_options_init(&o, sizeof o);
    o.log_level = 99;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_RANGE);
    o.log_level = -1;
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_RANGE);

    csp_context_options_init(&o, sizeof o);
    o.alloc = test_alloc_fn; /* without free */
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_INVALID);
    o.alloc = NULL;
    o.free = test_free_fn; /* without alloc */
    ck_assert_int_eq(csp_context_create(&ctx, &o), CSP_E_INVALID);
    ck_assert_ptr_null(ctx);
}
END_TEST

/* A caller built against a newer header passes a bigger struct: accepted
 * while the bytes this library does not know are zero, refused otherwise. */
START_TEST(test_options_trailing_bytes) {
    struct {
        csp_context_options o;
        unsigned char future[24];
    } big;
    ck_assert_int_eq(csp_context_options_init(&big.o, sizeof big), CSP_OK);
    ck_assert_uint_eq(big.o.struct_size, sizeof big);
    for (size_t i = 0; i < sizeof big.future; i++)
        ck_assert_uint_eq(big.future[i], 0);
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, &big.o), CSP_OK);
    csp_context_free(ctx);
    ctx = NULL;
    big.future[5] = 1;
    ck_assert_int_eq(csp_context_create(&ctx, &big.o), CSP_E_RESERVED);
    ck_assert_ptr_null(ctx);
}
END_TEST

START_TEST(test_set_bad) {
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, NULL), CSP_OK);
    ck_assert_status(ctx, csp_context_set_num_threads(ctx, 0), CSP_E_RANGE);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "outside"));
    ck_assert_int_eq(csp_context_last_status(ctx), CSP_E_RANGE);
    ck_assert_int_eq(csp_context_num_threads(ctx), 1);
    ck_assert_status(ctx, csp_context_set_log(ctx, NULL, NULL, 7), CSP_E_RANGE);
    csp_context_clear_error(ctx);
    ck_assert_str_eq(csp_context_last_error(ctx), "");
    ck_assert_int_eq(csp_context_last_status(ctx), CSP_OK);
    ck_assert_int_eq(csp_context_set_num_threads(NULL, 1), CSP_E_NULL);
    ck_assert_int_eq(csp_context_set_log(NULL, NULL, NULL, 0), CSP_E_NULL);
    ck_assert_str_eq(csp_context_last_error(NULL), "NULL context");
    ck_assert_int_eq(csp_context_last_status(NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_context_num_threads(NULL), 0);
    ck_assert_uint_eq(csp_context_seed(NULL), 0);
    csp_context_clear_error(NULL);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_log_hook) {
    log_capture cap = {0};
    csp_context *ctx = NULL;
    ck_assert_int_eq(csp_context_create(&ctx, NULL), CSP_OK);
    ck_assert_int_eq(csp_context_set_log(ctx, capture_log, &cap, CSP_LOG_ERROR), CSP_OK);
    ck_assert_int_eq(csp_context_set_num_threads(ctx, -1), CSP_E_RANGE);
    ck_assert_int_eq(cap.calls, 1);
    ck_assert_int_eq(cap.last_level, CSP_LOG_ERROR);
    ck_assert_str_eq(cap.last, csp_context_last_error(ctx));
    /* Level NONE silences errors too. */
    ck_assert_int_eq(csp_context_set_log(ctx, capture_log, &cap, CSP_LOG_NONE), CSP_OK);
    ck_assert_int_eq(csp_context_set_num_threads(ctx, -1), CSP_E_RANGE);
    ck_assert_int_eq(cap.calls, 1);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_custom_allocator) {
    test_alloc a;
    test_alloc_reset(&a, 0);
    csp_context *ctx = test_context_with_alloc(&a);
    ck_assert_int_ge(a.calls, 1);
    ck_assert_int_eq(a.live, 1);
    csp_context_free(ctx);
    ck_assert_int_eq(a.live, 0);
}
END_TEST

/* Two contexts are independent: an error on one leaves the other clean. */
START_TEST(test_no_global_state) {
    csp_context *a = NULL, *b = NULL;
    ck_assert_int_eq(csp_context_create(&a, NULL), CSP_OK);
    ck_assert_int_eq(csp_context_create(&b, NULL), CSP_OK);
    ck_assert_int_eq(csp_context_set_num_threads(a, 0), CSP_E_RANGE);
    ck_assert_str_ne(csp_context_last_error(a), "");
    ck_assert_str_eq(csp_context_last_error(b), "");
    csp_context_free(a);
    csp_context_free(b);
}
END_TEST

static Suite *context_suite(void) {
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_options_roundtrip);
    tcase_add_test(tc, test_options_bad);
    tcase_add_test(tc, test_options_trailing_bytes);
    tcase_add_test(tc, test_set_bad);
    tcase_add_test(tc, test_log_hook);
    tcase_add_test(tc, test_custom_allocator);
    tcase_add_test(tc, test_no_global_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(context_suite()); }
