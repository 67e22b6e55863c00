/* The adaptive schedule (CSP_X_ADAPT_*, lib/prune/adaptive.c): off is the
 * schedule bit for bit; the targets follow the rule from the measured
 * errors (a float64 reference), never pass the final target and reach it
 * at the last event; a closed-form case where the error of every event is
 * known; resume from a checkpoint is bit-identical; bad values are refused.
 * Fresh seeds every run (CSP_TEST_SEED replays one). */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#define MAXT 3

typedef struct {
    csp_context *ctx;
    csp_schedule *sched;
    csp_pruner *p;
    int nt;
    int64_t numel[MAXT];
    double *w[MAXT];
    csp_tensor *tw[MAXT];
    test_rng rng;
} rig;

static csp_schedule_options poly(int64_t t_end, int64_t dt, double sf, double exponent) {
    csp_schedule_options o;
    csp_schedule_options_init(&o, sizeof o);
    o.begin_step = 0;
    o.end_step = t_end;
    o.frequency = dt;
    o.final_sparsity = sf;
    o.exponent = exponent;
    return o;
}

/* A pruner on float64 tensors: a GMP tensor 20x30 (TENSOR granularity),
 * a GMP tensor 12x16 (ROW) and, when @p with_cs, a CSP tensor 10x24
 * (Gaussian sensing, OMP, ROW): the adaptive schedule serves every
 * strategy. Weights from @p data_seed. */
static void rig_init_final(rig *g, uint64_t seed, uint64_t data_seed,
                           const csp_schedule_options *so, bool with_cs, double final1) {
    memset(g, 0, sizeof *g);
    g->ctx = test_context(1, seed);
    test_rng_init(&g->rng, data_seed);
    ck_assert_status(g->ctx, csp_schedule_create(&g->sched, g->ctx, so), CSP_OK);
    ck_assert_status(g->ctx, csp_pruner_create(&g->p, g->ctx, g->sched, NULL), CSP_OK);
    static const int64_t shapes[MAXT][2] = {{20, 30}, {12, 16}, {10, 24}};
    for (int i = 0; i < (with_cs ? 3 : 2); i++) {
        csp_pruner_tensor_options o;
        ck_assert_int_eq(csp_pruner_tensor_options_init(&o, sizeof o, g->p), CSP_OK);
        o.granularity = i == 0 ? CSP_GRANULARITY_TENSOR : CSP_GRANULARITY_ROW;
        if (i == 2)
            o.sensing.kind = CSP_SENSING_GAUSSIAN;
        if (i == 1 && !isnan(final1))
            o.final_sparsity = final1;
        int64_t n = shapes[i][0] * shapes[i][1];
        g->numel[i] = n;
        g->w[i] = malloc((size_t)n * sizeof(double));
        for (int64_t k = 0; k < n; k++)
            g->w[i][k] = test_rng_normal(&g->rng);
        ck_assert_int_eq(csp_tensor_create(&g->tw[i], g->ctx, g->w[i], CSP_DTYPE_F64, 2,
                                           shapes[i], 0, "w"),
                         CSP_OK);
        int32_t index;
        ck_assert_status(g->ctx, csp_pruner_add_tensor(g->p, g->tw[i], &o, &index), CSP_OK);
        g->nt++;
    }
}

static void rig_init(rig *g, uint64_t seed, uint64_t data_seed, const csp_schedule_options *so,
                     bool with_cs) {
    rig_init_final(g, seed, data_seed, so, with_cs, NAN);
}

static void rig_x(rig *g, int32_t param, double v) {
    ck_assert_status(g->ctx, csp_pruner_set_experimental(g->p, -1, param, v), CSP_OK);
}

/* An optimizer update at @p step, a function of (@p useed, step) (pruned
 * weights move too; the mask zeroes them). */
static void rig_update(rig *g, uint64_t useed, int64_t step) {
    test_rng r;
    test_rng_init(&r, useed * 1000003u + (uint64_t)step);
    for (int i = 0; i < g->nt; i++)
        for (int64_t k = 0; k < g->numel[i]; k++)
            g->w[i][k] += 0.05 * test_rng_normal(&r);
}

static void rig_free(rig *g) {
    csp_pruner_free(g->p);
    for (int i = 0; i < g->nt; i++) {
        csp_tensor_free(g->tw[i]);
        free(g->w[i]);
    }
    csp_schedule_free(g->sched);
    csp_context_free(g->ctx);
}

/* csp_step(): 1 at an event, 0 otherwise (asserting success). */
static int32_t do_step(csp_context *ctx, csp_pruner *p, int64_t step) {
    csp_status st = csp_step(p, step);
    ck_assert_msg(st == CSP_OK || st == CSP_MASKED || st == CSP_PRUNED, "csp_step(%lld): %s: %s", (long long)step,
                  csp_status_name(st), csp_context_last_error(ctx));
    return st == CSP_PRUNED;
}

static double target_of(const rig *g, int i) {
    double t = -1.0;
    ck_assert_status(g->ctx, csp_pruner_target(g->p, i, &t), CSP_OK);
    return t;
}

static double error_of(const rig *g, int i) {
    csp_tensor_stats st;
    csp_tensor_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_tensor_stats(g->p, i, &st), CSP_OK);
    return st.sensing_error;
}

static void same_rigs(const rig *a, const rig *b, int64_t step) {
    for (int i = 0; i < a->nt; i++)
        REQUIRE(memcmp(a->w[i], b->w[i], (size_t)a->numel[i] * sizeof(double)) == 0,
                "step %lld tensor %d: weights differ", (long long)step, i);
    uint64_t da, db;
    ck_assert_int_eq(csp_pruner_digest(a->p, &da), CSP_OK);
    ck_assert_int_eq(csp_pruner_digest(b->p, &db), CSP_OK);
    REQUIRE(da == db, "step %lld: digests differ", (long long)step);
}

static uint8_t *save(const rig *g, int64_t *size) {
    ck_assert_status(g->ctx, csp_pruner_save(g->p, NULL, 0, size), CSP_OK);
    uint8_t *buf = malloc((size_t)*size);
    int64_t again;
    ck_assert_status(g->ctx, csp_pruner_save(g->p, buf, *size, &again), CSP_OK);
    return buf;
}

static bool has_tag(const uint8_t *buf, int64_t size, const char *tag) {
    for (int64_t k = 0; k + 4 <= size; k++)
        if (memcmp(buf + k, tag, 4) == 0)
            return true;
    return false;
}

/* ---- off: the schedule as it is ------------------------------------------------- */

START_TEST(test_off_is_schedule) {
    uint64_t seed = csp_test_seed();
    csp_schedule_options so = poly(60, 10, 0.8, 3.0);
    rig a, b;
    rig_init(&a, seed, seed, &so, true);
    rig_init(&b, seed, seed, &so, true);
    /* b: every adaptive parameter but the bound away from its default. */
    rig_x(&b, CSP_X_ADAPT_INITIAL, 2.5);
    rig_x(&b, CSP_X_ADAPT_MAX, 7.0);
    rig_x(&b, CSP_X_ADAPT_GROW, 4.0);
    rig_x(&b, CSP_X_ADAPT_SHRINK, 0.0);
    for (int64_t step = 0; step <= 70; step++) {
        rig_update(&a, seed, step);
        rig_update(&b, seed, step);
        int32_t ea = do_step(a.ctx, a.p, step), eb = do_step(b.ctx, b.p, step);
        ck_assert_int_eq(ea, eb);
        same_rigs(&a, &b, step);
        if (ea) {
            double s;
            ck_assert_int_eq(csp_schedule_target(a.sched, step, &s), CSP_OK);
            for (int i = 0; i < a.nt; i++)
                REQUIRE(target_of(&b, i) == s, "step %lld: target %.17g, schedule %.17g",
                        (long long)step, target_of(&b, i), s);
        }
    }
    int64_t size;
    uint8_t *buf = save(&b, &size);
    ck_assert(!has_tag(buf, size, "ADPT"));
    free(buf);
    rig_free(&a);
    rig_free(&b);
}
END_TEST

/* ---- on: the rule from the measured errors ------------------------------------- */

/* The reference of the rule in float64: the target of an event from the
 * previous one, the multiplier, the schedule's increment; then the next
 * multiplier from the measured error. */
typedef struct {
    double bound, initial, max, grow, shrink;
} rule;

/* A tensor's target when the schedule says @p s (final @p sf), the
 * tensor's final being @p f. */
static double scaled(double s, double sf, double f) {
    return f == sf ? s : fmin(s * (f / sf), f);
}

static double ref_target(double before, double m, double s, double s_last, double sf, double f) {
    if (s >= sf)
        return f;
    double base = scaled(s, sf, f) - scaled(s_last, sf, f);
    if (!(base > 0.0))
        return before;
    double t = before + m * base;
    return t < f ? t : f;
}

static double ref_next(const rule *r, double m, double err) {
    double n = err <= r->bound ? (m > 0.0 ? m * r->grow : r->initial) : m * r->shrink;
    return n < r->max ? n : r->max;
}

static void set_rule(rig *g, const rule *r) {
    rig_x(g, CSP_X_ADAPT_BOUND, r->bound);
    rig_x(g, CSP_X_ADAPT_INITIAL, r->initial);
    rig_x(g, CSP_X_ADAPT_MAX, r->max);
    rig_x(g, CSP_X_ADAPT_GROW, r->grow);
    rig_x(g, CSP_X_ADAPT_SHRINK, r->shrink);
}

START_TEST(test_rule_and_final) {
    uint64_t seed = csp_test_seed() + 1;
    test_rng pr;
    test_rng_init(&pr, seed);
    for (int trial = 0; trial < 6; trial++) {
        rule r = {0.01 + 0.2 * test_rng_uniform(&pr), 0.5 + test_rng_uniform(&pr),
                  1.5 + 2.0 * test_rng_uniform(&pr), 1.0 + 2.0 * test_rng_uniform(&pr),
                  trial % 3 == 0 ? 0.0 : test_rng_uniform(&pr)};
        double sf = 0.5 + 0.45 * test_rng_uniform(&pr);
        double expo = trial % 2 == 0 ? 1.0 : 3.0;
        csp_schedule_options so = poly(100, 10, sf, expo);
        rig g;
        /* Tensor 1 has a final_sparsity of its own (below or above the schedule's). */
        double f1 = trial % 2 == 0 ? 0.5 * sf : 0.97;
        double fin[MAXT] = {sf, f1, sf};
        rig_init_final(&g, seed + (uint64_t)trial, seed + 7 * (uint64_t)trial, &so, true, f1);
        set_rule(&g, &r);
        double m[MAXT], before[MAXT] = {0.0, 0.0, 0.0}, s_last = 0.0;
        for (int i = 0; i < MAXT; i++)
            m[i] = r.initial < r.max ? r.initial : r.max;
        int64_t nnz_last[MAXT];
        for (int i = 0; i < g.nt; i++)
            nnz_last[i] = g.numel[i];
        for (int64_t step = 0; step <= 105; step++) {
            rig_update(&g, seed, step);
            int32_t ev = do_step(g.ctx, g.p, step);
            if (!ev)
                continue;
            double s;
            ck_assert_int_eq(csp_schedule_target(g.sched, step, &s), CSP_OK);
            for (int i = 0; i < g.nt; i++) {
                double want = ref_target(before[i], m[i], s, s_last, sf, fin[i]);
                double got = target_of(&g, i);
                REQUIRE(fabs(got - want) <= 1e-12, "trial %d step %lld tensor %d: target %.17g, "
                        "reference %.17g", trial, (long long)step, i, got, want);
                /* Bounded: never past the final target, never more than max
                 * times the schedule's increment, never back (before the last event). */
                REQUIRE(got <= fin[i] && got >= before[i], "trial %d: target out of bounds",
                        trial);
                double inc = scaled(s, sf, fin[i]) - scaled(s_last, sf, fin[i]);
                if (s < sf)
                    REQUIRE(got - before[i] <= r.max * inc + 1e-12,
                            "trial %d step %lld: increment %.17g over max %.17g x %.17g", trial,
                            (long long)step, got - before[i], r.max, inc);
                int64_t nnz;
                ck_assert_int_eq(csp_pruner_nnz(g.p, i, &nnz), CSP_OK);
                REQUIRE(nnz <= nnz_last[i], "masks never regrow");
                nnz_last[i] = nnz;
                m[i] = ref_next(&r, m[i], error_of(&g, i));
                before[i] = got;
            }
            s_last = s;
        }
        /* The last event reached the final target exactly. */
        for (int i = 0; i < g.nt; i++) {
            ck_assert(target_of(&g, i) == fin[i]);
            int64_t nnz;
            ck_assert_int_eq(csp_pruner_nnz(g.p, i, &nnz), CSP_OK);
            if (i == 0)
                ck_assert_int_eq(nnz, g.numel[0] - (int64_t)nearbyint(sf * (double)g.numel[0]));
        }
        rig_free(&g);
    }
}
END_TEST

/* ---- a closed form: every |w| = 1, so an event's relative energy removed is
 * the share of the kept weights it removes ---------------------------------------- */

START_TEST(test_closed_form) {
    uint64_t seed = csp_test_seed() + 2;
    csp_schedule_options so = poly(80, 10, 0.8, 1.0); /* s_k = 0.1 k, events 0..80 */
    csp_context *ctx = test_context(1, seed);
    test_rng rng;
    test_rng_init(&rng, seed);
    csp_schedule *sched;
    csp_pruner *p;
    ck_assert_int_eq(csp_schedule_create(&sched, ctx, &so), CSP_OK);
    ck_assert_int_eq(csp_pruner_create(&p, ctx, sched, NULL), CSP_OK);
    const int64_t shape[2] = {25, 40}, n = 1000;
    double *w = malloc(n * sizeof *w);
    for (int64_t k = 0; k < n; k++)
        w[k] = test_rng_uniform(&rng) < 0.5 ? -1.0 : 1.0;
    csp_tensor *tw;
    ck_assert_int_eq(csp_tensor_create(&tw, ctx, w, CSP_DTYPE_F64, 2, shape, 0, "w"), CSP_OK);
    ck_assert_int_eq(csp_pruner_add_tensor(p, tw, NULL, NULL), CSP_OK); /* TENSOR granularity */
    ck_assert_int_eq(csp_pruner_set_experimental(p, -1, CSP_X_ADAPT_BOUND, 0.15), CSP_OK);
    /* Defaults: initial 1, max 3, grow 2, shrink 0.1. By hand: event 0 takes
     * 0 (error 0: multiplier 2); event 1 takes 0.2 (removes 200 of 1000,
     * 0.2 > 0.15: 0.2); 0.22 (20/800: 0.4); 0.26 (40/780: 0.8); 0.34
     * (80/740: 1.6); 0.50 (160/660 = 0.242: 0.16); 0.516 (16/500: 0.32);
     * 0.548 (32/484: 0.64); the last event 0.8. */
    static const double want_t[9] = {0.0, 0.2, 0.22, 0.26, 0.34, 0.5, 0.516, 0.548, 0.8};
    int64_t kept = n;
    for (int k = 0; k <= 8; k++) {
        ck_assert_status(ctx, csp_step(p, 10 * k), CSP_PRUNED);
        double t;
        ck_assert_int_eq(csp_pruner_target(p, 0, &t), CSP_OK);
        REQUIRE(fabs(t - want_t[k]) <= 1e-12, "event %d: target %.17g, by hand %.17g", k, t,
                want_t[k]);
        int64_t nnz, want_nnz = n - (int64_t)nearbyint(want_t[k] * (double)n);
        ck_assert_int_eq(csp_pruner_nnz(p, 0, &nnz), CSP_OK);
        ck_assert_int_eq(nnz, want_nnz);
        csp_tensor_stats st;
        csp_tensor_stats_init(&st, sizeof st);
        ck_assert_int_eq(csp_pruner_tensor_stats(p, 0, &st), CSP_OK);
        double err = (double)(kept - nnz) / (double)kept;
        REQUIRE(fabs(st.sensing_error - err) <= 1e-12, "event %d: error %.17g, closed form %.17g",
                k, st.sensing_error, err);
        kept = nnz;
    }
    csp_pruner_free(p);
    csp_tensor_free(tw);
    free(w);
    csp_schedule_free(sched);
    csp_context_free(ctx);
}
END_TEST

/* ---- resume ---------------------------------------------------------------------- */

START_TEST(test_resume) {
    uint64_t seed = csp_test_seed() + 3;
    csp_schedule_options so = poly(100, 10, 0.9, 3.0);
    rule r = {0.05, 1.0, 3.0, 2.0, 0.0};
    rig a, b;
    rig_init(&a, seed, seed, &so, true);
    set_rule(&a, &r);
    int64_t cut = 30 + (int64_t)(test_rng_uniform(&a.rng) * 40.0);
    bool adapted = false;
    for (int64_t step = 0; step <= 110; step++) {
        rig_update(&a, seed, step);
        if (step > cut)
            rig_update(&b, seed, step);
        int32_t ev = do_step(a.ctx, a.p, step), eb = 0;
        double s;
        ck_assert_int_eq(csp_schedule_target(a.sched, step, &s), CSP_OK);
        adapted = adapted || (ev && target_of(&a, 0) != s);
        if (step > cut) {
            eb = do_step(b.ctx, b.p, step);
            ck_assert_int_eq(ev, eb);
            same_rigs(&a, &b, step);
        }
        if (step != cut)
            continue;
        int64_t size;
        uint8_t *buf = save(&a, &size);
        ck_assert(has_tag(buf, size, "ADPT"));
        rig_init(&b, seed, seed + 99, &so, true); /* other weights: overwritten */
        set_rule(&b, &r);
        for (int i = 0; i < a.nt; i++)
            memcpy(b.w[i], a.w[i], (size_t)a.numel[i] * sizeof(double));
        ck_assert_status(b.ctx, csp_pruner_load(b.p, buf, size), CSP_OK);
        /* It saves back to its own bytes. */
        int64_t size2;
        uint8_t *buf2 = save(&b, &size2);
        ck_assert_int_eq(size, size2);
        ck_assert(memcmp(buf, buf2, (size_t)size) == 0);
        free(buf2);
        /* A pruner with the adaptive schedule off refuses it. */
        rig c;
        rig_init(&c, seed, seed, &so, true);
        ck_assert_status(c.ctx, csp_pruner_load(c.p, buf, size), CSP_E_STATE);
        rig_free(&c);
        free(buf);
    }
    /* The run adapted: the targets left the schedule's somewhere. */
    ck_assert(adapted);
    rig_free(&a);
    rig_free(&b);
}
END_TEST

/* ---- refusals -------------------------------------------------------------------- */

START_TEST(test_refused) {
    uint64_t seed = csp_test_seed() + 4;
    csp_schedule_options so = poly(60, 10, 0.8, 3.0);
    rig g;
    rig_init(&g, seed, seed, &so, false);
    static const struct {
        int32_t param;
        double v;
    } bad[] = {
        {CSP_X_ADAPT_BOUND, -0.1}, {CSP_X_ADAPT_BOUND, 1001.0}, {CSP_X_ADAPT_BOUND, NAN},
        {CSP_X_ADAPT_BOUND, INFINITY}, {CSP_X_ADAPT_INITIAL, -1.0}, {CSP_X_ADAPT_INITIAL, 101.0},
        {CSP_X_ADAPT_MAX, -1.0}, {CSP_X_ADAPT_GROW, 0.5}, {CSP_X_ADAPT_GROW, NAN},
        {CSP_X_ADAPT_SHRINK, -0.5}, {CSP_X_ADAPT_SHRINK, 1.5},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_status(g.ctx, csp_pruner_set_experimental(g.p, -1, bad[k].param, bad[k].v),
                         CSP_E_RANGE);
        double v;
        ck_assert_int_eq(csp_pruner_get_experimental(g.p, -1, bad[k].param, &v), CSP_OK);
        ck_assert(v != bad[k].v); /* unchanged */
    }
    /* Pruner-wide: not per tensor. */
    ck_assert_status(g.ctx, csp_pruner_set_experimental(g.p, 0, CSP_X_ADAPT_BOUND, 0.1),
                     CSP_E_INVALID);
    ck_assert_int_eq(csp_pruner_set_experimental(g.p, -1, 29, 1.0), CSP_E_ENUM);
    /* Defaults. */
    static const double defs[5] = {0.0, 1.0, 3.0, 2.0, 0.1};
    for (int k = 0; k < 5; k++) {
        double v;
        ck_assert_int_eq(csp_pruner_get_experimental(g.p, -1, CSP_X_ADAPT_BOUND + k, &v), CSP_OK);
        ck_assert(v == defs[k]);
    }
    /* The getter. */
    double t = -1.0;
    ck_assert_int_eq(csp_pruner_target(NULL, 0, &t), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_target(g.p, 0, NULL), CSP_E_NULL);
    ck_assert_status(g.ctx, csp_pruner_target(g.p, 2, &t), CSP_E_RANGE);
    ck_assert_status(g.ctx, csp_pruner_target(g.p, -1, &t), CSP_E_RANGE);
    ck_assert_int_eq(csp_pruner_target(g.p, 1, &t), CSP_OK);
    ck_assert(t == 0.0);
    /* After the first step. */
    ck_assert_int_eq(csp_step(g.p, 0), CSP_PRUNED);
    ck_assert_status(g.ctx, csp_pruner_set_experimental(g.p, -1, CSP_X_ADAPT_BOUND, 0.1),
                     CSP_E_STATE);
    rig_free(&g);
}
END_TEST

static Suite *adaptive_suite(void) {
    Suite *s = suite_create("adaptive");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_off_is_schedule);
    tcase_add_test(tc, test_rule_and_final);
    tcase_add_test(tc, test_closed_form);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(adaptive_suite()); }
