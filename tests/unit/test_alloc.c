/* Allocation failure: fail the N-th allocation of every create path, for
 * every N, and check the call fails cleanly and leaks nothing. Later layers
 * add their create paths here. */
#include "testutil.h"

/* Run @p path with the N-th allocation failing, for N = 1, 2, ... until it
 * succeeds; every failure must be CSP_E_NOMEM with nothing left allocated
 * beyond what existed before. Returns the allocations a success makes. */
typedef csp_status (*create_path)(test_alloc *a, void *state);

static int64_t exhaust(const char *what, create_path path, void *state) {
    for (int64_t n = 1; n < 10000; n++) {
        test_alloc a;
        test_alloc_reset(&a, n);
        csp_status st = path(&a, state);
        ck_assert_msg(a.live == 0, "%s: %lld blocks leaked when allocation %lld failed", what,
                      (long long)a.live, (long long)n);
        if (st == CSP_OK)
            return n - 1;
        ck_assert_msg(st == CSP_E_NOMEM, "%s: allocation %lld failed and the call returned %s",
                      what, (long long)n, csp_status_name(st));
    }
    ck_abort_msg("%s: never succeeded", what);
    return -1;
}

static csp_status path_context(test_alloc *a, void *state) {
    (void)state;
    csp_context_options o;
    csp_context_options_init(&o, sizeof o);
    o.alloc = test_alloc_fn;
    o.free = test_free_fn;
    o.alloc_user = a;
    csp_context *ctx = NULL;
    csp_status st = csp_context_create(&ctx, &o);
    if (st != CSP_OK)
        ck_assert_ptr_null(ctx);
    csp_context_free(ctx);
    return st;
}

/* The context itself is created with allocations switched off, then the
 * tensor create path runs under the failing allocator. */
static csp_status path_tensor(test_alloc *a, void *state) {
    float *buf = state;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    a->fail_at = fail_at == 0 ? 0 : a->calls + fail_at;
    int64_t shape[2] = {3, 4};
    csp_tensor *t = NULL;
    csp_status st = csp_tensor_create(&t, ctx, buf, CSP_DTYPE_F32, 2, shape, 0, "weights");
    if (st != CSP_OK)
        ck_assert_ptr_null(t);
    csp_tensor_free(t);
    csp_context_free(ctx);
    return st;
}

START_TEST(test_context_create_oom) {
    ck_assert_int_eq(exhaust("csp_context_create", path_context, NULL), 1);
}
END_TEST

START_TEST(test_tensor_create_oom) {
    float buf[12];
    ck_assert_int_eq(exhaust("csp_tensor_create", path_tensor, buf), 2); /* tensor, name */
}
END_TEST

/* The context is created with allocations switched off, then @p fn runs
 * with the N-th later allocation failing. */
static csp_context *context_then_fail(test_alloc *a) {
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    a->fail_at = fail_at == 0 ? 0 : a->calls + fail_at;
    return ctx;
}

static csp_status path_sensing(test_alloc *a, void *state) {
    int32_t kind = *(const int32_t *)state;
    csp_context *ctx = context_then_fail(a);
    csp_sensing_options o;
    csp_sensing_options_init(&o, sizeof o);
    o.kind = kind;
    o.n = 37;
    o.m = 20;
    csp_sensing *s = NULL;
    csp_status st = csp_sensing_create(&s, ctx, &o);
    if (st != CSP_OK)
        ck_assert_ptr_null(s);
    csp_sensing_free(s);
    csp_context_free(ctx);
    return st;
}

START_TEST(test_sensing_create_oom) {
    for (int32_t kind = CSP_SENSING_IDENTITY; kind <= CSP_SENSING_GRAM; kind++) {
        int64_t n = exhaust("csp_sensing_create", path_sensing, &kind);
        ck_assert_int_ge(n, 1);
    }
}
END_TEST

static Suite *alloc_suite(void) {
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("oom");
    tcase_add_test(tc, test_context_create_oom);
    tcase_add_test(tc, test_tensor_create_oom);
    tcase_add_test(tc, test_sensing_create_oom);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(alloc_suite()); }
