/* Schedules: closed form at every step, event grid, TF-MOT alignment,
 * callbacks, bad input. */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static csp_schedule_options poly(int64_t t0, int64_t t_end, int64_t dt, double si, double sf,
                                 double p) {
    csp_schedule_options o;
    ck_assert_int_eq(csp_schedule_options_init(&o, sizeof o), CSP_OK);
    o.kind = CSP_SCHEDULE_POLYNOMIAL;
    o.begin_step = t0;
    o.end_step = t_end;
    o.frequency = dt;
    o.initial_sparsity = si;
    o.final_sparsity = sf;
    o.exponent = p;
    return o;
}

/* Zhu & Gupta, written out here. */
static double closed_form(const csp_schedule_options *o, int64_t t) {
    if (t <= o->begin_step)
        return o->initial_sparsity;
    if (t >= o->end_step)
        return o->final_sparsity;
    double frac = (double)(t - o->begin_step) / (double)(o->end_step - o->begin_step);
    return o->final_sparsity +
           (o->initial_sparsity - o->final_sparsity) * pow(1.0 - frac, o->exponent);
}

/* The event grid, by definition. */
static bool grid_event(const csp_schedule_options *o, int64_t t) {
    if (t < o->begin_step)
        return false;
    if (o->end_step >= 0 && t > o->end_step)
        return false;
    return (t - o->begin_step) % o->frequency == 0 || t == o->end_step;
}

START_TEST(test_options_init) {
    csp_schedule_options o;
    ck_assert_int_eq(csp_schedule_options_init(&o, sizeof o), CSP_OK);
    ck_assert_uint_eq(o.struct_size, sizeof o);
    ck_assert_int_eq(o.kind, CSP_SCHEDULE_POLYNOMIAL);
    ck_assert(o.exponent == 3.0);
    ck_assert_int_eq(o.frequency, 100);
    ck_assert_int_eq(o.end_step, -1);
    ck_assert(o.callback == NULL);
    ck_assert_int_eq(csp_schedule_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_schedule_options_init(&o, sizeof o - 1), CSP_E_STRUCT_SIZE);
}
END_TEST

START_TEST(test_polynomial_closed_form) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    for (int trial = 0; trial < 60; trial++) {
        int64_t t0 = (int64_t)(test_rng_u64(&r) % 50);
        int64_t dt = 1 + (int64_t)(test_rng_u64(&r) % 17);
        int64_t t_end = t0 + 1 + (int64_t)(test_rng_u64(&r) % 400);
        double sf = test_rng_uniform(&r) * 0.999;
        double si = trial % 3 ? 0.0 : sf * test_rng_uniform(&r);
        double p = trial % 4 ? 3.0 : 0.5 + 4.0 * test_rng_uniform(&r);
        csp_schedule_options o = poly(t0, t_end, dt, si, sf, p);
        csp_schedule *s = NULL;
        ck_assert_status(ctx, csp_schedule_create(&s, ctx, &o), CSP_OK);
        ck_assert(csp_schedule_final_sparsity(s) == sf);
        double prev = -1.0;
        for (int64_t t = 0; t <= t_end + 3 * dt; t++) {
            double got = -1.0;
            REQUIRE(csp_schedule_target(s, t, &got) == CSP_OK, "target");
            REQUIRE(got == closed_form(&o, t), "step %lld: %.17g != %.17g", (long long)t, got,
                    closed_form(&o, t));
            REQUIRE(got >= prev, "not monotone at %lld", (long long)t);
            prev = got;
        }
        /* Exact boundaries. */
        double v;
        ck_assert_int_eq(csp_schedule_target(s, t0, &v), CSP_OK);
        ck_assert(v == si);
        ck_assert_int_eq(csp_schedule_target(s, t_end, &v), CSP_OK);
        ck_assert(v == sf);
        ck_assert_int_eq(csp_schedule_target(s, INT64_MAX, &v), CSP_OK);
        ck_assert(v == sf);
        csp_schedule_free(s);
    }
    /* A fixed known value: cubic from 0 to 0.8 over [0, 100] at t = 50. */
    csp_schedule_options o = poly(0, 100, 10, 0.0, 0.8, 3.0);
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &o), CSP_OK);
    double v;
    ck_assert_int_eq(csp_schedule_target(s, 50, &v), CSP_OK);
    ck_assert_double_eq_tol(v, 0.8 * (1.0 - 0.125), 1e-15);
    csp_schedule_free(s);
    csp_context_free(ctx);
}
END_TEST

/* Events, next and last event equal brute force over the grid definition,
 * for every kind, aligned and unaligned ends, and no end. */
START_TEST(test_event_grid) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 1);
    for (int trial = 0; trial < 60; trial++) {
        csp_schedule_options o;
        int64_t t0 = (int64_t)(test_rng_u64(&r) % 30);
        int64_t dt = 1 + (int64_t)(test_rng_u64(&r) % 12);
        if (trial % 3 == 0) {
            o = poly(t0, t0 + 1 + (int64_t)(test_rng_u64(&r) % 100), dt, 0.0, 0.9, 3.0);
        } else {
            ck_assert_int_eq(csp_schedule_options_init(&o, sizeof o), CSP_OK);
            o.kind = CSP_SCHEDULE_CONSTANT;
            o.final_sparsity = 0.7;
            o.begin_step = t0;
            o.frequency = dt;
            o.end_step = trial % 3 == 1 ? -1 : t0 + (int64_t)(test_rng_u64(&r) % 60);
        }
        csp_schedule *s = NULL;
        ck_assert_status(ctx, csp_schedule_create(&s, ctx, &o), CSP_OK);
        int64_t horizon = t0 + 150;
        for (int64_t t = 0; t <= horizon; t++) {
            int32_t ev = -1;
            REQUIRE(csp_schedule_is_event(s, t, &ev) == CSP_OK, "is_event");
            REQUIRE(ev == (int32_t)grid_event(&o, t), "is_event(%lld) = %d", (long long)t, ev);
            int64_t want_next = -1, want_last = -1;
            for (int64_t u = t + 1; u <= horizon + 2 * dt + 100 && want_next < 0; u++)
                if (grid_event(&o, u))
                    want_next = u;
            for (int64_t u = t; u >= 0 && want_last < 0; u--)
                if (grid_event(&o, u))
                    want_last = u;
            int64_t got;
            REQUIRE(csp_schedule_next_event(s, t, &got) == CSP_OK, "next");
            REQUIRE(got == want_next, "next_event(%lld) = %lld, want %lld", (long long)t,
                    (long long)got, (long long)want_next);
            REQUIRE(csp_schedule_last_event(s, t, &got) == CSP_OK, "last");
            REQUIRE(got == want_last, "last_event(%lld) = %lld, want %lld", (long long)t,
                    (long long)got, (long long)want_last);
        }
        int64_t first;
        ck_assert_int_eq(csp_schedule_next_event(s, -1, &first), CSP_OK);
        ck_assert_int_eq(first, t0);
        csp_schedule_free(s);
    }
    csp_context_free(ctx);
}
END_TEST

/* TF-MOT's PolynomialDecay prunes where begin <= t <= end and
 * (t - begin) % frequency == 0; with an aligned end that is our grid. */
START_TEST(test_tfmot_alignment) {
    csp_context *ctx = test_context(1, 0);
    csp_schedule_options o = poly(2000, 10000, 100, 0.0, 0.9, 3.0);
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &o), CSP_OK);
    for (int64_t t = 0; t < 12000; t++) {
        bool tf = t >= 2000 && t <= 10000 && (t - 2000) % 100 == 0;
        int32_t ev;
        REQUIRE(csp_schedule_is_event(s, t, &ev) == CSP_OK && ev == (int32_t)tf, "step %lld",
                (long long)t);
        /* TF-MOT: p = clip((t - begin) / (end - begin), 0, 1);
         * s = (si - sf) * (1 - p)^power + sf */
        double pr = fmin(1.0, fmax(0.0, (double)(t - 2000) / 8000.0));
        double want = (0.0 - 0.9) * pow(1.0 - pr, 3.0) + 0.9, got;
        REQUIRE(csp_schedule_target(s, t, &got) == CSP_OK && fabs(got - want) < 1e-15,
                "target at %lld", (long long)t);
    }
    csp_schedule_free(s);
    /* Unaligned end: TF-MOT's last event would be 10000; ours adds 10050. */
    o = poly(0, 10050, 100, 0.0, 0.9, 3.0);
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &o), CSP_OK);
    int64_t e;
    ck_assert_int_eq(csp_schedule_next_event(s, 10000, &e), CSP_OK);
    ck_assert_int_eq(e, 10050);
    ck_assert_int_eq(csp_schedule_next_event(s, 10050, &e), CSP_OK);
    ck_assert_int_eq(e, -1);
    csp_schedule_free(s);
    csp_context_free(ctx);
}
END_TEST

typedef struct {
    int calls;
    int fail_at;    /* step whose call fails */
    double bad_val; /* returned at step 7 when not 0 */
} cb_state;

static csp_status cb_target(void *user, int64_t step, double *target) {
    cb_state *st = user;
    st->calls++;
    if (step == st->fail_at)
        return -1;
    *target = step == 7 && st->bad_val != 0.0 ? st->bad_val : (double)(step % 10) / 20.0;
    return CSP_OK;
}

START_TEST(test_callback) {
    csp_context *ctx = test_context(1, 0);
    cb_state cs = {0, 5, 0.0};
    csp_schedule_options o;
    ck_assert_int_eq(csp_schedule_options_init(&o, sizeof o), CSP_OK);
    o.kind = CSP_SCHEDULE_CALLBACK;
    o.callback = cb_target;
    o.callback_user = &cs;
    o.frequency = 3;
    o.begin_step = 1;
    o.final_sparsity = 0.45;
    csp_schedule *s = NULL;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &o), CSP_OK);
    double v;
    ck_assert_int_eq(csp_schedule_target(s, 3, &v), CSP_OK);
    ck_assert(v == 0.15);
    ck_assert_int_eq(cs.calls, 1);
    ck_assert_status(ctx, csp_schedule_target(s, 5, &v), CSP_E_CALLBACK);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "callback"));
    int32_t ev;
    ck_assert_int_eq(csp_schedule_is_event(s, 4, &ev), CSP_OK);
    ck_assert_int_eq(ev, 1);
    ck_assert_int_eq(csp_schedule_is_event(s, 5, &ev), CSP_OK);
    ck_assert_int_eq(ev, 0);
    const double bad[] = {1.0, -0.1, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        cs.bad_val = bad[i];
        ck_assert_status(ctx, csp_schedule_target(s, 7, &v), CSP_E_RANGE);
    }
    csp_schedule_free(s);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(1, 0);
    csp_schedule *s = (csp_schedule *)&ctx; /* must be reset to NULL */
    csp_schedule_options o = poly(0, 100, 10, 0.0, 0.5, 3.0);
    ck_assert_int_eq(csp_schedule_create(NULL, ctx, &o), CSP_E_NULL);
    ck_assert_int_eq(csp_schedule_create(&s, NULL, &o), CSP_E_NULL);
    ck_assert_ptr_null(s);
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, NULL), CSP_E_NULL);

    struct {
        csp_schedule_options o;
        char extra[8];
    } big;
    memset(&big, 0, sizeof big);
    big.o = o;
    big.o.struct_size = sizeof big;
    big.extra[3] = 1;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &big.o), CSP_E_RESERVED);
    big.extra[3] = 0;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &big.o), CSP_OK);
    csp_schedule_free(s);
    csp_schedule_options w = o;
    w.struct_size = sizeof w - 8;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &w), CSP_E_STRUCT_SIZE);

    struct {
        const char *what;
        csp_schedule_options o;
        csp_status want;
    } cases[32];
    int n = 0;
#define CASE(field, value, st)                                                                     \
    do {                                                                                           \
        cases[n].what = #field " = " #value;                                                       \
        cases[n].o = o;                                                                            \
        cases[n].o.field = value;                                                                  \
        cases[n++].want = st;                                                                      \
    } while (0)
    CASE(kind, 0, CSP_E_ENUM);
    CASE(kind, 4, CSP_E_ENUM);
    CASE(initial_sparsity, NAN, CSP_E_RANGE);
    CASE(initial_sparsity, -0.1, CSP_E_RANGE);
    CASE(initial_sparsity, 0.6, CSP_E_RANGE); /* > final */
    CASE(final_sparsity, NAN, CSP_E_RANGE);
    CASE(final_sparsity, 1.0, CSP_E_RANGE);
    CASE(final_sparsity, 1.5, CSP_E_RANGE);
    CASE(final_sparsity, -INFINITY, CSP_E_RANGE);
    CASE(exponent, 0.0, CSP_E_RANGE);
    CASE(exponent, -1.0, CSP_E_RANGE);
    CASE(exponent, NAN, CSP_E_RANGE);
    CASE(exponent, INFINITY, CSP_E_RANGE);
    CASE(begin_step, -1, CSP_E_RANGE);
    CASE(end_step, 0, CSP_E_RANGE);  /* == t0 */
    CASE(end_step, -1, CSP_E_RANGE); /* polynomial needs an end */
    CASE(frequency, 0, CSP_E_RANGE);
    CASE(frequency, -5, CSP_E_RANGE);
    CASE(callback, cb_target, CSP_E_INVALID);
#undef CASE
    cases[n].what = "callback kind without callback";
    cases[n].o = o;
    cases[n].o.kind = CSP_SCHEDULE_CALLBACK;
    cases[n++].want = CSP_E_NULL;
    cases[n].what = "constant with end before begin";
    cases[n].o = o;
    cases[n].o.kind = CSP_SCHEDULE_CONSTANT;
    cases[n].o.begin_step = 10;
    cases[n].o.end_step = 5;
    cases[n++].want = CSP_E_RANGE;
    cases[n].what = "polynomial with end before begin";
    cases[n].o = o;
    cases[n].o.begin_step = 10;
    cases[n].o.end_step = 5;
    cases[n++].want = CSP_E_RANGE;
    for (int i = 0; i < n; i++) {
        s = (csp_schedule *)&ctx;
        csp_context_clear_error(ctx);
        csp_status st = csp_schedule_create(&s, ctx, &cases[i].o);
        ck_assert_msg(st == cases[i].want, "%s: got %s, want %s", cases[i].what,
                      csp_status_name(st), csp_status_name(cases[i].want));
        ck_assert_ptr_null(s);
        ck_assert_uint_gt(strlen(csp_context_last_error(ctx)), 0);
    }
    /* A one-shot constant schedule (end == begin) is fine. */
    csp_schedule_options c = o;
    c.kind = CSP_SCHEDULE_CONSTANT;
    c.begin_step = c.end_step = 7;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &c), CSP_OK);

    double v;
    int32_t ev;
    int64_t e;
    ck_assert_int_eq(csp_schedule_target(NULL, 0, &v), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_target(s, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_target(s, -1, &v), CSP_E_RANGE);
    ck_assert_int_eq(csp_schedule_is_event(NULL, 0, &ev), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_is_event(s, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_is_event(s, -3, &ev), CSP_E_RANGE);
    ck_assert_int_eq(csp_schedule_next_event(NULL, 0, &e), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_next_event(s, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_next_event(s, -2, &e), CSP_E_RANGE);
    ck_assert_int_eq(csp_schedule_last_event(NULL, 0, &e), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_last_event(s, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_schedule_last_event(s, -1, &e), CSP_E_RANGE);
    ck_assert(csp_schedule_final_sparsity(NULL) == 0.0);
    ck_assert_int_eq(csp_schedule_is_event(s, 7, &ev), CSP_OK);
    ck_assert_int_eq(ev, 1);
    ck_assert_int_eq(csp_schedule_next_event(s, 7, &e), CSP_OK);
    ck_assert_int_eq(e, -1);
    csp_schedule_free(s);
    csp_schedule_free(NULL);
    csp_context_free(ctx);
}
END_TEST

static Suite *schedule_suite(void) {
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("schedule");
    tcase_add_test(tc, test_options_init);
    tcase_add_test(tc, test_polynomial_closed_form);
    tcase_add_test(tc, test_event_grid);
    tcase_add_test(tc, test_tfmot_alignment);
    tcase_add_test(tc, test_callback);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(schedule_suite()); }
