/* The pruner through the public API: GMP masks against a sort-based
 * reference at every event for every granularity, exact sparsity, monotone
 * masks, companions, excluded tensors, overrides, idempotent steps, jumps,
 * steps going back, NaN handling, thread-count independence, mask readers,
 * digest, stats and bad input. */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static csp_schedule *cubic(csp_context *ctx, int64_t t0, int64_t t_end, int64_t dt, double sf) {
    csp_schedule_options o;
    csp_schedule_options_init(&o, sizeof o);
    o.begin_step = t0;
    o.end_step = t_end;
    o.frequency = dt;
    o.final_sparsity = sf;
    csp_schedule *s = NULL;
    ck_assert_status(ctx, csp_schedule_create(&s, ctx, &o), CSP_OK);
    return s;
}

/* Round half to even, independently of the library: the default rounding
 * mode of nearbyint(). */
static int64_t zeros_for(double s, int64_t n) { return (int64_t)nearbyint(s * (double)n); }

/* ---- a small "model" ------------------------------------------------------ */

#define MAXT 8
typedef struct {
    int64_t rows, cols, stride;
    int32_t dtype;
    int32_t gran, group, nm_n, nm_m, exclude;
    double override;
    void *w;     /* host weights */
    void *mom;   /* companion (same dtype) */
    float *adam; /* companion, always float32 */
    csp_tensor *tw, *tm, *ta;
    int32_t index;
    uint8_t *mask; /* the test's own copy of the mask after the last step */
} mtensor;

typedef struct {
    csp_context *ctx;
    csp_schedule *sched;
    csp_pruner *p;
    mtensor t[MAXT];
    int nt;
    test_rng rng;
    int mode; /* data mode: ties or not */
} model;

static double getw(const mtensor *x, const void *buf, int64_t f) {
    int64_t r = f / x->cols, c = f % x->cols;
    return x->dtype == CSP_DTYPE_F64 ? ((const double *)buf)[r * x->stride + c]
                                     : (double)((const float *)buf)[r * x->stride + c];
}

static void setw(const mtensor *x, void *buf, int64_t f, double v) {
    int64_t r = f / x->cols, c = f % x->cols;
    if (x->dtype == CSP_DTYPE_F64)
        ((double *)buf)[r * x->stride + c] = v;
    else
        ((float *)buf)[r * x->stride + c] = (float)v;
}

static double draw(model *m) {
    static const double levels[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0};
    if (m->mode == 1 || (m->mode == 2 && (test_rng_u64(&m->rng) & 1)))
        return levels[test_rng_u64(&m->rng) % 8];
    return test_rng_normal(&m->rng);
}

static void add(model *m, int64_t rows, int64_t cols, int64_t pad, int32_t dtype, int32_t gran,
                int32_t group, int32_t nm_n, int32_t nm_m, int32_t exclude, double override) {
    mtensor *x = &m->t[m->nt++];
    memset(x, 0, sizeof *x);
    x->rows = rows;
    x->cols = cols;
    x->stride = cols + pad;
    x->dtype = dtype;
    x->gran = gran;
    x->group = group;
    x->nm_n = nm_n;
    x->nm_m = nm_m;
    x->exclude = exclude;
    x->override = override;
    size_t es = dtype == CSP_DTYPE_F64 ? 8 : 4;
    size_t n = (size_t)(rows * x->stride);
    x->w = calloc(n, es);
    x->mom = calloc(n, es);
    x->adam = calloc(n, sizeof(float));
    x->mask = malloc((size_t)(rows * cols));
    memset(x->mask, 1, (size_t)(rows * cols));
    int64_t shape[2] = {rows, cols};
    int64_t stride = pad ? x->stride : 0;
    ck_assert_int_eq(csp_tensor_create(&x->tw, m->ctx, x->w, dtype, 2, shape, stride, "w"), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&x->tm, m->ctx, x->mom, dtype, 2, shape, stride, "m"),
                     CSP_OK);
    ck_assert_int_eq(
        csp_tensor_create(&x->ta, m->ctx, x->adam, CSP_DTYPE_F32, 2, shape, stride, "v"), CSP_OK);
    for (int64_t f = 0; f < rows * cols; f++)
        setw(x, x->w, f, draw(m));
    csp_pruner_tensor_options o;
    ck_assert_int_eq(csp_pruner_tensor_options_init(&o, sizeof o, m->p), CSP_OK);
    o.granularity = gran;
    o.group = group;
    if (nm_n != 0)
        o.nm_n = nm_n;
    if (nm_m != 0)
        o.nm_m = nm_m;
    o.exclude = exclude;
    if (override >= 0.0)
        o.final_sparsity = override;
    ck_assert_status(m->ctx, csp_pruner_add_tensor(m->p, x->tw, &o, &x->index), CSP_OK);
    ck_assert_int_eq(x->index, m->nt - 1);
    if (!exclude) {
        ck_assert_status(m->ctx, csp_pruner_add_companion(m->p, x->index, x->tm), CSP_OK);
        ck_assert_status(m->ctx, csp_pruner_add_companion(m->p, x->index, x->ta), CSP_OK);
    }
}

static void model_init(model *m, int32_t threads, uint64_t seed, int mode, csp_schedule *sched,
                       csp_context *ctx) {
    memset(m, 0, sizeof *m);
    m->ctx = ctx != NULL ? ctx : test_context(threads, 0);
    test_rng_init(&m->rng, seed);
    m->mode = mode;
    m->sched = sched != NULL ? sched : cubic(m->ctx, 0, 100, 10, 0.9);
    ck_assert_status(m->ctx, csp_pruner_create(&m->p, m->ctx, m->sched, NULL), CSP_OK);
}

static void model_free(model *m) {
    for (int i = 0; i < m->nt; i++) {
        mtensor *x = &m->t[i];
        csp_tensor_free(x->tw);
        csp_tensor_free(x->tm);
        csp_tensor_free(x->ta);
        free(x->w);
        free(x->mom);
        free(x->adam);
        free(x->mask);
    }
    csp_pruner_free(m->p);
    csp_schedule_free(m->sched);
    csp_context_free(m->ctx);
}

/* An optimizer update: every weight and companion moves, pruned ones too. */
static void update(model *m) {
    for (int i = 0; i < m->nt; i++) {
        mtensor *x = &m->t[i];
        for (int64_t f = 0; f < x->rows * x->cols; f++) {
            double d = m->mode == 1 ? 0.0 : 0.05 * test_rng_normal(&m->rng);
            if (m->mode != 1 || (test_rng_u64(&m->rng) % 4) == 0)
                setw(x, x->w, f, m->mode == 1 ? draw(m) : getw(x, x->w, f) + d);
            setw(x, x->mom, f, 1.0 + test_rng_uniform(&m->rng));
            x->adam[(f / x->cols) * x->stride + f % x->cols] = 2.0f;
        }
    }
}

/* ---- the reference --------------------------------------------------------- */

typedef struct {
    double mag;
    int32_t t;
    int64_t f;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->mag != y->mag)
        return x->mag > y->mag ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->f < y->f ? -1 : (x->f > y->f);
}

static double tensor_target(const model *m, const mtensor *x, double s) {
    if (x->override < 0)
        return s;
    double v = s * (x->override / csp_schedule_final_sparsity(m->sched));
    return v < x->override ? v : x->override;
}

/* Keep the `keep` best candidates among the listed (tensor, flat range)
 * units; writes into want[t][f]. */
static void keep_best(const model *m, const int *ts, int nts, int64_t f0, int64_t len, int64_t keep,
                      uint8_t **want) {
    int64_t total = 0;
    for (int k = 0; k < nts; k++)
        total += len >= 0 ? len : m->t[ts[k]].rows * m->t[ts[k]].cols;
    cand *c = malloc((size_t)total * sizeof *c + 1);
    int64_t nc = 0;
    for (int k = 0; k < nts; k++) {
        const mtensor *x = &m->t[ts[k]];
        int64_t a = len >= 0 ? f0 : 0, b = len >= 0 ? f0 + len : x->rows * x->cols;
        for (int64_t f = a; f < b; f++)
            if (x->mask[f])
                c[nc++] = (cand){fabs(getw(x, x->w, f)), ts[k], f};
    }
    qsort(c, (size_t)nc, sizeof *c, cmp_cand);
    for (int64_t j = 0; j < nc && j < keep; j++)
        want[c[j].t][c[j].f] = 1;
    free(c);
}

/* Expected masks after an event at target s (weights as they are now). */
static void reference(const model *m, double s, uint8_t **want) {
    for (int i = 0; i < m->nt; i++)
        memset(want[i], 0, (size_t)(m->t[i].rows * m->t[i].cols));
    for (int i = 0; i < m->nt; i++) {
        const mtensor *x = &m->t[i];
        int64_t numel = x->rows * x->cols;
        if (x->exclude) {
            memset(want[i], 1, (size_t)numel);
            continue;
        }
        double ts = tensor_target(m, x, s);
        switch (x->gran) {
        case CSP_GRANULARITY_TENSOR:
            keep_best(m, &i, 1, 0, -1, numel - zeros_for(ts, numel), want);
            break;
        case CSP_GRANULARITY_ROW:
            for (int64_t r = 0; r < x->rows; r++)
                keep_best(m, &i, 1, r * x->cols, x->cols, x->cols - zeros_for(ts, x->cols), want);
            break;
        case CSP_GRANULARITY_NM: {
            int64_t z = zeros_for(ts, x->nm_m);
            if (z > x->nm_m - x->nm_n)
                z = x->nm_m - x->nm_n;
            for (int64_t g = 0; g < numel; g += x->nm_m)
                keep_best(m, &i, 1, g, x->nm_m, x->nm_m - z, want);
            break;
        }
        default: {
            bool first = true;
            for (int j = 0; j < i; j++)
                if (!m->t[j].exclude && m->t[j].gran == CSP_GRANULARITY_GLOBAL &&
                    m->t[j].group == x->group)
                    first = false;
            if (!first)
                break;
            int ts_[MAXT], n = 0;
            int64_t total = 0;
            for (int j = i; j < m->nt; j++)
                if (!m->t[j].exclude && m->t[j].gran == CSP_GRANULARITY_GLOBAL &&
                    m->t[j].group == x->group) {
                    ts_[n++] = j;
                    total += m->t[j].rows * m->t[j].cols;
                }
            keep_best(m, ts_, n, 0, -1, total - zeros_for(ts, total), want);
        }
        }
    }
}

/* Step the pruner and check everything against the reference. Returns the
 * status. */
static csp_status checked_step(model *m, int64_t step, int64_t last_step) {
    uint8_t *want[MAXT];
    int64_t e = -1;
    ck_assert_int_eq(csp_schedule_last_event(m->sched, step, &e), CSP_OK);
    bool event = e >= 0 && e > last_step;
    double s = 0;
    if (event)
        ck_assert_int_eq(csp_schedule_target(m->sched, e, &s), CSP_OK);
    void *before[MAXT];
    for (int i = 0; i < m->nt; i++) {
        mtensor *x = &m->t[i];
        int64_t numel = x->rows * x->cols;
        want[i] = malloc((size_t)numel);
        if (!event)
            memcpy(want[i], x->mask, (size_t)numel);
        size_t bytes = (size_t)(x->rows * x->stride) * (x->dtype == CSP_DTYPE_F64 ? 8 : 4);
        before[i] = malloc(bytes);
        memcpy(before[i], x->w, bytes);
    }
    if (event)
        reference(m, s, want);
    csp_status st = csp_step(m->p, step);
    ck_assert_msg(st == (event ? CSP_PRUNED : CSP_MASKED), "step %lld: %s (%s)", (long long)step,
                  csp_status_name(st), csp_context_last_error(m->ctx));
    for (int i = 0; i < m->nt; i++) {
        mtensor *x = &m->t[i];
        int64_t numel = x->rows * x->cols;
        uint8_t *got = malloc((size_t)numel);
        ck_assert_int_eq(csp_pruner_mask_bytes(m->p, x->index, got, numel), CSP_OK);
        int64_t nnz = 0;
        for (int64_t f = 0; f < numel; f++) {
            REQUIRE(got[f] == want[i][f],
                    "step %lld tensor %d (granularity %d) index %lld: mask %d, reference %d",
                    (long long)step, i, x->gran, (long long)f, got[f], want[i][f]);
            REQUIRE(!got[f] || x->mask[f], "mask not monotone at %lld", (long long)f);
            nnz += got[f];
            double wv = getw(x, x->w, f), wb = getw(x, before[i], f);
            if (got[f] || x->exclude) {
                REQUIRE(wv == wb || (isnan(wv) && isnan(wb)), "kept weight changed");
                if (!x->exclude) {
                    REQUIRE(getw(x, x->mom, f) != 0.0, "kept momentum zeroed");
                    REQUIRE(x->adam[(f / x->cols) * x->stride + f % x->cols] != 0.0f,
                            "kept moment zeroed");
                }
            } else {
                REQUIRE(wv == 0.0 && !signbit(wv), "pruned weight %lld of tensor %d is %g",
                        (long long)f, i, wv);
                REQUIRE(getw(x, x->mom, f) == 0.0, "companion not masked");
                REQUIRE(x->adam[(f / x->cols) * x->stride + f % x->cols] == 0.0f,
                        "float32 companion not masked");
            }
        }
        int64_t api_nnz = -1;
        ck_assert_int_eq(csp_pruner_nnz(m->p, x->index, &api_nnz), CSP_OK);
        ck_assert_int_eq(api_nnz, nnz);
        /* Exact sparsity where the budget binds. */
        if (event && !x->exclude && x->gran == CSP_GRANULARITY_TENSOR) {
            int64_t had = 0;
            for (int64_t f = 0; f < numel; f++)
                had += x->mask[f];
            int64_t keep = numel - zeros_for(tensor_target(m, x, s), numel);
            ck_assert_int_eq(nnz, had < keep ? had : keep);
        }
        memcpy(x->mask, got, (size_t)numel);
        free(got);
        free(want[i]);
        free(before[i]);
    }
    return st;
}

/* ---- tests ----------------------------------------------------------------- */

/* Every granularity at every step of a cubic schedule, with ties. */
START_TEST(test_gmp_matches_reference) {
    for (int mode = 0; mode < 3; mode++) {
        model m;
        model_init(&m, 1 + mode % 2, csp_test_seed() + (uint64_t)mode, mode, NULL, NULL);
        add(&m, 13, 37, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
        add(&m, 9, 50, 3, CSP_DTYPE_F64, CSP_GRANULARITY_ROW, 0, 0, 0, 0, -1);
        add(&m, 6, 16, 0, CSP_DTYPE_F32, CSP_GRANULARITY_NM, 0, 2, 4, 0, -1);
        add(&m, 5, 24, 2, CSP_DTYPE_F32, CSP_GRANULARITY_NM, 0, 4, 8, 0, -1);
        add(&m, 7, 11, 0, CSP_DTYPE_F32, CSP_GRANULARITY_GLOBAL, 3, 0, 0, 0, -1);
        add(&m, 4, 30, 1, CSP_DTYPE_F32, CSP_GRANULARITY_GLOBAL, 3, 0, 0, 0, -1);
        add(&m, 3, 10, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 1, -1);   /* excluded */
        add(&m, 8, 20, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, 0.45); /* override */
        ck_assert_int_eq(csp_pruner_num_tensors(m.p), 8);
        int64_t last = -1;
        for (int64_t step = 0; step <= 130; step++) {
            update(&m);
            checked_step(&m, step, last);
            last = step;
        }
        /* The end: exact final sparsities. */
        csp_tensor_stats st;
        ck_assert_int_eq(csp_tensor_stats_init(&st, sizeof st), CSP_OK);
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 0, &st), CSP_OK);
        ck_assert_int_eq(st.numel, 13 * 37);
        ck_assert_int_eq(st.nnz, 13 * 37 - zeros_for(0.9, 13 * 37));
        ck_assert(st.target_sparsity == 0.9);
        ck_assert_double_eq_tol(st.achieved_sparsity, 1.0 - (double)st.nnz / (13 * 37), 1e-15);
        ck_assert_int_eq(st.granularity, CSP_GRANULARITY_TENSOR);
        ck_assert_int_eq(st.last_event, 100);
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 1, &st), CSP_OK);
        ck_assert_int_eq(st.nnz, 9 * (50 - zeros_for(0.9, 50)));
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 2, &st), CSP_OK);
        ck_assert_int_eq(st.nnz, 6 * 16 / 2); /* 2:4 caps the 0.9 target */
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 3, &st), CSP_OK);
        ck_assert_int_eq(st.nnz, 5 * 24 / 2);
        int64_t g4, g5;
        ck_assert_int_eq(csp_pruner_nnz(m.p, 4, &g4), CSP_OK);
        ck_assert_int_eq(csp_pruner_nnz(m.p, 5, &g5), CSP_OK);
        ck_assert_int_eq(g4 + g5, 197 - zeros_for(0.9, 197));
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 6, &st), CSP_OK);
        ck_assert_int_eq(st.excluded, 1);
        ck_assert_int_eq(st.nnz, 30);
        ck_assert(st.achieved_sparsity == 0.0);
        ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 7, &st), CSP_OK);
        ck_assert(st.target_sparsity == 0.45);
        ck_assert_int_eq(st.nnz, 160 - zeros_for(0.45, 160));
        model_free(&m);
    }
}
END_TEST

/* Same step twice: nothing changes but the re-masking; jumps catch up with
 * one event; steps going back are refused and touch nothing. */
START_TEST(test_step_semantics) {
    model m;
    model_init(&m, 1, csp_test_seed() + 10, 0, NULL, NULL);
    add(&m, 10, 40, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
    add(&m, 6, 64, 0, CSP_DTYPE_F32, CSP_GRANULARITY_ROW, 0, 0, 0, 0, -1);
    int64_t ls;
    ck_assert_int_eq(csp_pruner_last_step(m.p, &ls), CSP_OK);
    ck_assert_int_eq(ls, -1);
    /* First call at 55: one catch-up event to the target of event 50. */
    update(&m);
    ck_assert_int_eq(checked_step(&m, 55, -1), CSP_PRUNED);
    csp_tensor_stats st;
    csp_tensor_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 0, &st), CSP_OK);
    ck_assert_int_eq(st.last_event, 50);
    double s50;
    ck_assert_int_eq(csp_schedule_target(m.sched, 50, &s50), CSP_OK);
    ck_assert(st.target_sparsity == s50);
    ck_assert_int_eq(st.nnz, 400 - zeros_for(s50, 400));
    uint64_t d1, d2;
    ck_assert_int_eq(csp_pruner_digest(m.p, &d1), CSP_OK);
    /* The same step again: MASKED, same masks; host changes are re-masked. */
    update(&m);
    ck_assert_int_eq(checked_step(&m, 55, 55), CSP_MASKED);
    ck_assert_int_eq(csp_pruner_digest(m.p, &d2), CSP_OK);
    ck_assert_uint_eq(d1, d2);
    /* 57, 59: no event in between. 60 is one. */
    ck_assert_int_eq(checked_step(&m, 57, 55), CSP_MASKED);
    ck_assert_int_eq(checked_step(&m, 59, 57), CSP_MASKED);
    update(&m);
    ck_assert_int_eq(checked_step(&m, 60, 59), CSP_PRUNED);
    /* Going back: refused, nothing touched. */
    update(&m);
    size_t bytes = 10 * 40 * sizeof(float);
    void *snap = malloc(bytes);
    memcpy(snap, m.t[0].w, bytes);
    ck_assert_int_eq(csp_pruner_digest(m.p, &d1), CSP_OK);
    ck_assert_status(m.ctx, csp_step(m.p, 59), CSP_E_STATE);
    ck_assert_int_eq(memcmp(snap, m.t[0].w, bytes), 0);
    ck_assert_int_eq(csp_pruner_digest(m.p, &d2), CSP_OK);
    ck_assert_uint_eq(d1, d2);
    ck_assert_int_eq(csp_pruner_last_step(m.p, &ls), CSP_OK);
    ck_assert_int_eq(ls, 60);
    free(snap);
    /* A jump over the end: one event at s_f. */
    update(&m);
    ck_assert_int_eq(checked_step(&m, 1000, 60), CSP_PRUNED);
    ck_assert_int_eq(csp_pruner_tensor_stats(m.p, 0, &st), CSP_OK);
    ck_assert_int_eq(st.last_event, 100);
    ck_assert_int_eq(st.nnz, 400 - zeros_for(0.9, 400));
    ck_assert_int_eq(checked_step(&m, 1001, 1000), CSP_MASKED);
    /* Tensors cannot be added any more. */
    ck_assert_status(m.ctx, csp_pruner_add_tensor(m.p, m.t[0].tm, NULL, NULL), CSP_E_STATE);
    model_free(&m);
}
END_TEST

/* NaN or infinity in any pruned tensor at an event: an error, and every
 * buffer, mask and the step position stay as they were. */
START_TEST(test_nonfinite_leaves_everything) {
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 6; k++) {
        model m;
        model_init(&m, 1 + k % 2, csp_test_seed() + 20 + (uint64_t)k, 0, NULL, NULL);
        add(&m, 8, 32, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
        add(&m, 8, 32, 0, CSP_DTYPE_F64, CSP_GRANULARITY_ROW, 0, 0, 0, 0, -1);
        add(&m, 8, 32, 0, CSP_DTYPE_F32, CSP_GRANULARITY_NM, 0, 2, 4, 0, -1);
        add(&m, 8, 32, 0, CSP_DTYPE_F32, CSP_GRANULARITY_GLOBAL, 0, 0, 0, 0, -1);
        update(&m);
        checked_step(&m, 0, -1);
        update(&m);
        checked_step(&m, 5, 0);
        update(&m);
        /* poison one weight of tensor k % 4 (a pruned or a kept one) */
        mtensor *x = &m.t[k % 4];
        setw(x, x->w, (int64_t)(test_rng_u64(&m.rng) % 256), bad[k % 3]);
        unsigned char *snap[4][3];
        size_t sz[4];
        for (int i = 0; i < 4; i++) {
            sz[i] = (size_t)(8 * 32) * (m.t[i].dtype == CSP_DTYPE_F64 ? 8 : 4);
            snap[i][0] = malloc(sz[i]);
            snap[i][1] = malloc(sz[i]);
            snap[i][2] = malloc(8 * 32 * 4);
            memcpy(snap[i][0], m.t[i].w, sz[i]);
            memcpy(snap[i][1], m.t[i].mom, sz[i]);
            memcpy(snap[i][2], m.t[i].adam, 8 * 32 * 4);
        }
        uint64_t d1, d2;
        ck_assert_int_eq(csp_pruner_digest(m.p, &d1), CSP_OK);
        ck_assert_status(m.ctx, csp_step(m.p, 10), CSP_E_NONFINITE);
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(memcmp(snap[i][0], m.t[i].w, sz[i]), 0);
            ck_assert_int_eq(memcmp(snap[i][1], m.t[i].mom, sz[i]), 0);
            ck_assert_int_eq(memcmp(snap[i][2], m.t[i].adam, 8 * 32 * 4), 0);
            for (int j = 0; j < 3; j++)
                free(snap[i][j]);
        }
        ck_assert_int_eq(csp_pruner_digest(m.p, &d2), CSP_OK);
        ck_assert_uint_eq(d1, d2);
        int64_t ls;
        ck_assert_int_eq(csp_pruner_last_step(m.p, &ls), CSP_OK);
        ck_assert_int_eq(ls, 5);
        /* Fixed by the host: the same step now prunes. */
        setw(x, x->w, 0, 0.5);
        for (int64_t f = 0; f < 256; f++)
            if (!isfinite(getw(x, x->w, f)))
                setw(x, x->w, f, 0.25);
        checked_step(&m, 10, 5);
        model_free(&m);
    }
}
END_TEST

/* Masks, weights and digests do not depend on the thread count; the digest
 * is FNV-1a over numel and the LE mask bytes. */
START_TEST(test_threads_and_digest) {
    uint64_t digest[3];
    float *weights[3];
    uint64_t seed = csp_test_seed() + 30;
    for (int k = 0; k < 3; k++) {
        model m;
        csp_context *ctx = test_context(k + 1, 0);
        model_init(&m, 0, seed, 2, cubic(ctx, 0, 50, 5, 0.8), ctx);
        add(&m, 300, 700, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
        add(&m, 50, 64, 0, CSP_DTYPE_F32, CSP_GRANULARITY_ROW, 0, 0, 0, 0, -1);
        add(&m, 100, 1000, 0, CSP_DTYPE_F32, CSP_GRANULARITY_GLOBAL, 1, 0, 0, 0, -1);
        add(&m, 40, 1000, 0, CSP_DTYPE_F32, CSP_GRANULARITY_GLOBAL, 1, 0, 0, 0, -1);
        for (int64_t step = 0; step <= 50; step += 5) {
            update(&m);
            ck_assert_int_eq(csp_step(m.p, step), CSP_PRUNED);
        }
        ck_assert_int_eq(csp_pruner_digest(m.p, &digest[k]), CSP_OK);
        weights[k] = malloc(300 * 700 * sizeof(float));
        memcpy(weights[k], m.t[0].w, 300 * 700 * sizeof(float));
        /* The digest, recomputed from the packed words. */
        uint64_t h = 0xcbf29ce484222325ULL;
        for (int i = 0; i < m.nt; i++) {
            int64_t numel = m.t[i].rows * m.t[i].cols;
            int64_t nw = (numel + 63) / 64;
            uint64_t *words = malloc((size_t)nw * 8);
            ck_assert_int_eq(csp_pruner_mask_words(m.p, i, words, nw), CSP_OK);
            ck_assert_status(m.ctx, csp_pruner_mask_words(m.p, i, words, nw - 1), CSP_E_BUFFER);
            for (int j = 0; j < 8; j++) {
                h ^= ((uint64_t)numel >> (8 * j)) & 0xff;
                h *= 0x100000001b3ULL;
            }
            for (int64_t b = 0; b < (numel + 7) / 8; b++) {
                h ^= (words[b / 8] >> (8 * (b % 8))) & 0xff;
                h *= 0x100000001b3ULL;
            }
            if (numel % 64)
                ck_assert_uint_eq(words[nw - 1] >> (numel % 64), 0);
            free(words);
        }
        ck_assert_uint_eq(h, digest[k]);
        model_free(&m);
    }
    ck_assert_uint_eq(digest[0], digest[1]);
    ck_assert_uint_eq(digest[0], digest[2]);
    ck_assert_int_eq(memcmp(weights[0], weights[1], 300 * 700 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(weights[0], weights[2], 300 * 700 * sizeof(float)), 0);
    for (int k = 0; k < 3; k++)
        free(weights[k]);
}
END_TEST

static csp_status failing_cb(void *user, int64_t step, double *target) {
    int *calls = user;
    (*calls)++;
    *target = 0.5;
    return step >= 20 ? -1 : CSP_OK;
}

/* A callback schedule drives the pruner; its failure touches nothing. */
START_TEST(test_callback_schedule) {
    csp_context *ctx = test_context(1, 0);
    int calls = 0;
    csp_schedule_options o;
    csp_schedule_options_init(&o, sizeof o);
    o.kind = CSP_SCHEDULE_CALLBACK;
    o.callback = failing_cb;
    o.callback_user = &calls;
    o.frequency = 10;
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &o), CSP_OK);
    model m;
    model_init(&m, 1, csp_test_seed() + 40, 0, s, ctx);
    add(&m, 4, 25, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
    update(&m);
    ck_assert_int_eq(checked_step(&m, 0, -1), CSP_PRUNED);
    ck_assert_int_eq(calls, 2); /* the reference's call and the pruner's */
    int64_t nnz;
    ck_assert_int_eq(csp_pruner_nnz(m.p, 0, &nnz), CSP_OK);
    ck_assert_int_eq(nnz, 50);
    ck_assert_int_eq(checked_step(&m, 9, 0), CSP_MASKED);
    ck_assert_int_eq(calls, 2); /* called at events only */
    ck_assert_status(ctx, csp_step(m.p, 25), CSP_E_CALLBACK);
    int64_t ls;
    ck_assert_int_eq(csp_pruner_last_step(m.p, &ls), CSP_OK);
    ck_assert_int_eq(ls, 9);
    model_free(&m);
}
END_TEST

/* k rounding through the public API: zeros = round_half_to_even(s * n),
 * per tensor (n = numel) and per row (n = cols). */
START_TEST(test_k_rounding) {
    static const struct {
        double s;
        int64_t rows, cols;
        int32_t gran;
        int64_t want_nnz;
    } cases[] = {
        {0.5, 1, 5, CSP_GRANULARITY_TENSOR, 3},  /* 2.5 -> 2 zeros */
        {0.5, 1, 7, CSP_GRANULARITY_TENSOR, 3},  /* 3.5 -> 4 zeros */
        {0.25, 1, 2, CSP_GRANULARITY_TENSOR, 2}, /* 0.5 -> 0 */
        {0.75, 1, 2, CSP_GRANULARITY_TENSOR, 0}, /* 1.5 -> 2 */
        {0.5, 3, 5, CSP_GRANULARITY_ROW, 9},     /* 2 zeros per row */
        {0.5, 4, 3, CSP_GRANULARITY_ROW, 4},     /* 1.5 -> 2: 1 kept per row */
        {0.95, 2, 10, CSP_GRANULARITY_ROW, 0},   /* 9.5 -> 10: rows emptied */
        {0.85, 2, 10, CSP_GRANULARITY_TENSOR, 3} /* 17 zeros of 20 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        csp_context *ctx = test_context(1, 0);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.kind = CSP_SCHEDULE_CONSTANT;
        so.final_sparsity = cases[k].s;
        model m;
        csp_schedule *s = NULL;
        ck_assert_int_eq(csp_schedule_create(&s, ctx, &so), CSP_OK);
        model_init(&m, 1, csp_test_seed() + 60 + k, 0, s, ctx);
        add(&m, cases[k].rows, cases[k].cols, 0, CSP_DTYPE_F32, cases[k].gran, 0, 0, 0, 0, -1);
        update(&m);
        ck_assert_int_eq(checked_step(&m, 0, -1), CSP_PRUNED);
        int64_t nnz;
        ck_assert_int_eq(csp_pruner_nnz(m.p, 0, &nnz), CSP_OK);
        ck_assert_msg(nnz == cases[k].want_nnz, "case %zu: nnz %lld, want %lld", k, (long long)nnz,
                      (long long)cases[k].want_nnz);
        model_free(&m);
    }
}
END_TEST

START_TEST(test_mask_readers) {
    model m;
    model_init(&m, 1, csp_test_seed() + 50, 0, NULL, NULL);
    add(&m, 3, 70, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 0, -1);
    add(&m, 2, 5, 0, CSP_DTYPE_F32, CSP_GRANULARITY_TENSOR, 0, 0, 0, 1, -1);
    update(&m);
    checked_step(&m, 100, -1);
    uint64_t words[4];
    uint8_t bytes[210];
    ck_assert_int_eq(csp_pruner_mask_words(m.p, 0, words, 4), CSP_OK);
    ck_assert_int_eq(csp_pruner_mask_bytes(m.p, 0, bytes, 210), CSP_OK);
    for (int i = 0; i < 210; i++)
        REQUIRE(bytes[i] == ((words[i / 64] >> (i % 64)) & 1), "bit %d", i);
    ck_assert_uint_eq(words[3] >> (210 - 192), 0);
    ck_assert_status(m.ctx, csp_pruner_mask_bytes(m.p, 0, bytes, 209), CSP_E_BUFFER);
    /* excluded: all ones, and counted whole in the total */
    ck_assert_int_eq(csp_pruner_mask_words(m.p, 1, words, 1), CSP_OK);
    ck_assert_uint_eq(words[0], 0x3ff);
    ck_assert_int_eq(csp_pruner_mask_bytes(m.p, 1, bytes, 10), CSP_OK);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(bytes[i], 1);
    int64_t total, n0;
    ck_assert_int_eq(csp_pruner_nnz(m.p, -1, &total), CSP_OK);
    ck_assert_int_eq(csp_pruner_nnz(m.p, 0, &n0), CSP_OK);
    ck_assert_int_eq(n0, 210 - 189);
    ck_assert_int_eq(total, n0 + 10);
    model_free(&m);
}
END_TEST

/* Gradient buffers: masked only by csp_pruner_mask_gradients(), never by
 * csp_step(); csp_pruner_apply_mask() masks any buffer once; kept positions
 * are never written; bad input refused. */
START_TEST(test_gradients) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed);
    csp_context *ctx = test_context(1, 1);
    csp_schedule *sched = cubic(ctx, 0, 10, 5, 0.75);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    csp_pruner *p = NULL;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, sched, &po), CSP_OK);
    enum { R = 7, C = 24 };
    float w[R * C], g[R * C], g2[R * C];
    double buf[R * C];
    for (int i = 0; i < R * C; i++)
        w[i] = (float)test_rng_normal(&rng);
    int64_t shape[2] = {R, C};
    csp_tensor *tw = NULL, *tg = NULL, *tg2 = NULL, *tb = NULL, *tbad = NULL;
    ck_assert_status(ctx, csp_tensor_create(&tw, ctx, w, CSP_DTYPE_F32, 2, shape, 0, "w"), CSP_OK);
    ck_assert_status(ctx, csp_tensor_create(&tg, ctx, g, CSP_DTYPE_F32, 2, shape, 0, "g"), CSP_OK);
    ck_assert_status(ctx, csp_tensor_create(&tg2, ctx, g2, CSP_DTYPE_F32, 2, shape, 0, "g2"),
                     CSP_OK);
    ck_assert_status(ctx, csp_tensor_create(&tb, ctx, buf, CSP_DTYPE_F64, 2, shape, 0, "b"),
                     CSP_OK);
    int64_t bad_shape[2] = {C, R};
    ck_assert_status(ctx, csp_tensor_create(&tbad, ctx, g2, CSP_DTYPE_F32, 2, bad_shape, 0, NULL),
                     CSP_OK);
    int32_t idx = -1;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, tw, NULL, &idx), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, idx, tg), CSP_OK);
    /* Bad input. */
    ck_assert_status(ctx, csp_pruner_add_gradient(NULL, idx, tg2), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, idx, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, 1, tg2), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, idx, tg), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, idx, tw), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, idx, tbad), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_apply_mask(p, idx, tbad), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_apply_mask(p, -1, tb), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_apply_mask(p, idx, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_mask_gradients(NULL), CSP_E_NULL);
    uint8_t mask[R * C];
    for (int64_t step = 0; step <= 12; step++) {
        for (int i = 0; i < R * C; i++) {
            g[i] = (float)test_rng_normal(&rng) + 3.0f; /* never 0 */
            buf[i] = test_rng_normal(&rng) - 3.0;
        }
        memcpy(g2, g, sizeof g);
        /* csp_step() does not touch a gradient. */
        ck_assert_int_ge(csp_step(p, step), 0);
        REQUIRE(memcmp(g, g2, sizeof g) == 0, "step %lld wrote the gradient", (long long)step);
        ck_assert_status(ctx, csp_pruner_mask_bytes(p, idx, mask, R * C), CSP_OK);
        ck_assert_status(ctx, csp_pruner_mask_gradients(p), CSP_OK);
        double before[R * C];
        memcpy(before, buf, sizeof buf);
        ck_assert_status(ctx, csp_pruner_apply_mask(p, idx, tb), CSP_OK);
        int64_t zeros = 0;
        for (int i = 0; i < R * C; i++) {
            REQUIRE(mask[i] ? g[i] == g2[i] : g[i] == 0.0f, "gradient %d at step %lld", i,
                    (long long)step);
            REQUIRE(mask[i] ? buf[i] == before[i] : buf[i] == 0.0, "buffer %d at step %lld", i,
                    (long long)step);
            zeros += !mask[i];
        }
        if (step >= 10)
            ck_assert_int_eq(zeros, R * zeros_for(0.75, C));
    }
    csp_pruner_free(p);
    csp_tensor_free(tw);
    csp_tensor_free(tg);
    csp_tensor_free(tg2);
    csp_tensor_free(tb);
    csp_tensor_free(tbad);
    csp_schedule_free(sched);
    csp_context_free(ctx);
}
END_TEST

/* Re-entrancy (defect: a schedule callback could call csp_step() on the
 * same pruner: the step went backwards, two events were counted, a later
 * step pruned again). Every callback that runs inside a call that changes
 * the pruner (schedule, log, step) is refused there with CSP_E_STATE and
 * changes nothing; csp_pruner_free() there is deferred to the end of the
 * outer call. */
typedef struct {
    csp_pruner *p;
    csp_tensor *t;
    int what;          /* 0 step, 1 add_tensor, 2 load, 3 free */
    int calls;
    csp_status inner;  /* the status of the nested call */
    const void *saved; /* a checkpoint of the pruner, for what == 2 */
    int64_t saved_size;
} reenter;

static csp_status reenter_schedule(void *user, int64_t step, double *target) {
    reenter *r = user;
    *target = step >= 4 ? 0.5 : 0.25;
    if (r->p != NULL && r->calls++ == 0) {
        if (r->what == 0)
            r->inner = csp_step(r->p, step + 100);
        else if (r->what == 1)
            r->inner = csp_pruner_add_tensor(r->p, r->t, NULL, NULL);
        else if (r->what == 2)
            r->inner = csp_pruner_load(r->p, r->saved, r->saved_size);
        else if (r->what == 3)
            csp_pruner_free(r->p); /* deferred */
    }
    return CSP_OK;
}

static void reenter_log(void *user, int32_t level, const char *message) {
    (void)level;
    (void)message;
    reenter *r = user;
    if (r->p != NULL && r->calls++ == 0)
        r->inner = csp_step(r->p, 1000);
}

static csp_status reenter_step_cb(void *user, const csp_pruner *pruner, int64_t step,
                                  csp_status status, int32_t event) {
    (void)pruner;
    (void)step;
    (void)status;
    (void)event;
    reenter *r = user;
    if (r->calls++ == 0)
        csp_pruner_free(r->p); /* deferred to the end of csp_step() */
    return CSP_OK;
}

/* #12.8: csp_tensor_set_data() re-pointing a bound view onto memory another
 * bound buffer uses is refused at the next csp_step() /
 * csp_pruner_mask_gradients(), with nothing changed; a disjoint buffer is
 * followed. */
START_TEST(test_set_data_overlap) {
    enum { R = 4, C = 8, N = R * C };
    float pool[4 * N], fresh[N];
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 70);
    for (int i = 0; i < 4 * N; i++)
        pool[i] = (float)test_rng_normal(&rng);
    for (int i = 0; i < N; i++)
        fresh[i] = (float)test_rng_normal(&rng) + 3.0f;
    float *w0 = pool, *w1 = pool + N, *m0 = pool + 2 * N, *g1 = pool + 3 * N;
    int64_t shape[2] = {R, C};
    csp_context *ctx = test_context(1, 1);
    csp_schedule *s = cubic(ctx, 0, 8, 2, 0.5);
    csp_pruner *p = NULL;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, NULL), CSP_OK);
    csp_tensor *tw0, *tw1, *tm0, *tg1;
    csp_tensor_create(&tw0, ctx, w0, CSP_DTYPE_F32, 2, shape, 0, "w0");
    csp_tensor_create(&tw1, ctx, w1, CSP_DTYPE_F32, 2, shape, 0, "w1");
    csp_tensor_create(&tm0, ctx, m0, CSP_DTYPE_F32, 2, shape, 0, "m0");
    csp_tensor_create(&tg1, ctx, g1, CSP_DTYPE_F32, 2, shape, 0, "g1");
    ck_assert_status(ctx, csp_pruner_add_tensor(p, tw0, NULL, NULL), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, tw1, NULL, NULL), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, tm0), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_gradient(p, 1, tg1), CSP_OK);
    ck_assert_status(ctx, csp_step(p, 0), CSP_PRUNED);
    float before[4 * N];
    /* Each view re-pointed onto (part of) another bound buffer. */
    struct {
        csp_tensor *view;
        float *onto;
    } cases[] = {{tw1, w0}, {tw0, m0 + 3}, {tm0, g1 - 5}, {tg1, w1}, {tw1, w0 + N - 1}};
    float *home[] = {w1, w0, m0, g1, w1};
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(csp_tensor_set_data(cases[k].view, cases[k].onto), CSP_OK);
        memcpy(before, pool, sizeof pool);
        ck_assert_status(ctx, csp_step(p, 2), CSP_E_INVALID);
        ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "share memory"));
        ck_assert_status(ctx, csp_pruner_mask_gradients(p), CSP_E_INVALID);
        ck_assert_mem_eq(before, pool, sizeof pool); /* nothing written */
        int64_t last = -2;
        csp_pruner_last_step(p, &last);
        ck_assert_int_eq(last, 0);
        ck_assert_int_eq(csp_tensor_set_data(cases[k].view, home[k]), CSP_OK);
    }
    /* Back home: the step prunes (and masks gradients) again. */
    ck_assert_status(ctx, csp_pruner_mask_gradients(p), CSP_OK);
    /* A disjoint buffer is accepted and is what the event prunes. */
    ck_assert_int_eq(csp_tensor_set_data(tw1, fresh), CSP_OK);
    float w1_before[N];
    memcpy(w1_before, w1, sizeof w1_before);
    ck_assert_status(ctx, csp_step(p, 2), CSP_PRUNED);
    ck_assert_mem_eq(w1_before, w1, sizeof w1_before); /* the old buffer is left */
    int zeros = 0;
    for (int i = 0; i < N; i++)
        zeros += fresh[i] == 0.0f;
    ck_assert_int_gt(zeros, 0);
    csp_pruner_free(p);
    csp_tensor_free(tw0);
    csp_tensor_free(tw1);
    csp_tensor_free(tm0);
    csp_tensor_free(tg1);
    csp_schedule_free(s);
    csp_context_free(ctx);
}
END_TEST

/* #12: csp_step() on a pruner with no tensors says so (CSP_NO_TENSORS, not
 * CSP_PRUNED), records nothing and leaves the pruner open to tensors. */
static csp_status record_status(void *user, const csp_pruner *pruner, int64_t step,
                                csp_status status, int32_t event) {
    (void)pruner;
    (void)step;
    if (status == CSP_NO_TENSORS)
        ck_assert_int_eq(event, 0);
    *(csp_status *)user = status;
    return CSP_OK;
}

START_TEST(test_empty_pruner) {
    csp_context *ctx = test_context(1, 1);
    csp_schedule *s = cubic(ctx, 0, 8, 2, 0.5);
    csp_pruner *p = NULL;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, NULL), CSP_OK);
    csp_status seen = CSP_OK;
    csp_pruner_set_callback(p, record_status, &seen);
    ck_assert_int_eq(csp_step(p, -1), CSP_E_RANGE);
    for (int64_t step = 0; step <= 8; step += 4) {
        ck_assert_int_eq(csp_step(p, step), CSP_NO_TENSORS);
        ck_assert_int_eq(seen, CSP_NO_TENSORS);
    }
    ck_assert_str_eq(csp_status_name(CSP_NO_TENSORS), "CSP_NO_TENSORS");
    int64_t last = 0;
    csp_pruner_last_step(p, &last);
    ck_assert_int_eq(last, -1);
    csp_step_stats ss;
    csp_step_stats_init(&ss, sizeof ss);
    csp_pruner_step_stats(p, &ss);
    ck_assert(ss.steps == 0 && ss.events == 0);
    /* Still open: a tensor added now is pruned by the next event. */
    float w[4 * 8];
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 80);
    for (int i = 0; i < 32; i++)
        w[i] = (float)test_rng_normal(&rng);
    int64_t shape[2] = {4, 8};
    csp_tensor *t = NULL;
    csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, NULL);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, t, NULL, NULL), CSP_OK);
    ck_assert_status(ctx, csp_step(p, 8), CSP_PRUNED);
    ck_assert_int_eq(seen, CSP_PRUNED);
    int zeros = 0;
    for (int i = 0; i < 32; i++)
        zeros += w[i] == 0.0f;
    ck_assert_int_eq(zeros, 16);
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(s);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_reentrancy) {
    float w[4 * 8], w2[4 * 8];
    for (int i = 0; i < 32; i++)
        w[i] = w2[i] = (float)(i % 9) - 4.0f + 0.01f * (float)i;
    int64_t shape[2] = {4, 8};
    for (int what = 0; what < 4; what++) {
        csp_context *ctx = test_context(1, 1);
        reenter r = {NULL, NULL, what, 0, CSP_OK, NULL, 0};
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.kind = CSP_SCHEDULE_CALLBACK;
        so.callback = reenter_schedule;
        so.callback_user = &r;
        so.final_sparsity = 0.5;
        so.frequency = 4;
        csp_schedule *s = NULL;
        ck_assert_status(ctx, csp_schedule_create(&s, ctx, &so), CSP_OK);
        csp_pruner *p = NULL;
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, NULL), CSP_OK);
        csp_tensor *t = NULL, *t2 = NULL;
        csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_tensor_create(&t2, ctx, w2, CSP_DTYPE_F32, 2, shape, 0, NULL);
        ck_assert_status(ctx, csp_pruner_add_tensor(p, t, NULL, NULL), CSP_OK);
        unsigned char saved[4096];
        int64_t saved_size = 0;
        ck_assert_status(ctx, csp_pruner_save(p, saved, sizeof saved, &saved_size), CSP_OK);
        r.saved = saved;
        r.saved_size = saved_size;
        r.p = p;
        r.t = t2;
        csp_status st = csp_step(p, 0);
        if (what == 3) { /* freed by the callback: gone after the call returned */
            ck_assert_int_eq(st, CSP_PRUNED);
        } else {
            ck_assert_int_eq(st, CSP_PRUNED);
            ck_assert_int_eq(r.inner, CSP_E_STATE);
            int64_t last = -2;
            csp_pruner_last_step(p, &last);
            ck_assert_int_eq(last, 0); /* the nested step did not happen */
            ck_assert_int_eq(csp_pruner_num_tensors(p), 1);
            csp_step_stats ss;
            csp_step_stats_init(&ss, sizeof ss);
            csp_pruner_step_stats(p, &ss);
            ck_assert(ss.events == 1 && ss.steps == 1);
            csp_pruner_free(p);
        }
        csp_tensor_free(t);
        csp_tensor_free(t2);
        csp_schedule_free(s);
        csp_context_free(ctx);
    }
    /* A log hook calling csp_step() from inside one (an error is logged). */
    {
        csp_context *ctx = test_context(1, 1);
        reenter r = {NULL, NULL, 0, 0, CSP_OK, NULL, 0};
        csp_context_set_log(ctx, reenter_log, &r, CSP_LOG_ERROR);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.end_step = 4;
        so.frequency = 2;
        csp_schedule *s = NULL;
        csp_schedule_create(&s, ctx, &so);
        csp_pruner *p = NULL;
        csp_pruner_create(&p, ctx, s, NULL);
        float bad[32];
        for (int i = 0; i < 32; i++)
            bad[i] = 1.0f;
        bad[5] = NAN;
        csp_tensor *t = NULL;
        csp_tensor_create(&t, ctx, bad, CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_pruner_add_tensor(p, t, NULL, NULL);
        r.p = p;
        ck_assert_int_eq(csp_step(p, 4), CSP_E_NONFINITE); /* logs the error */
        ck_assert_int_eq(r.inner, CSP_E_STATE);
        int64_t last = 0;
        csp_pruner_last_step(p, &last);
        ck_assert_int_eq(last, -1);
        csp_pruner_free(p);
        csp_tensor_free(t);
        csp_schedule_free(s);
        csp_context_free(ctx);
    }
    /* The step callback freeing its pruner: deferred, no use after free
     * (ASan in CI). */
    {
        csp_context *ctx = test_context(1, 1);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.end_step = 4;
        so.frequency = 2;
        csp_schedule *s = NULL;
        csp_schedule_create(&s, ctx, &so);
        csp_pruner *p = NULL;
        csp_pruner_create(&p, ctx, s, NULL);
        csp_tensor *t = NULL;
        csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_pruner_add_tensor(p, t, NULL, NULL);
        reenter r = {p, NULL, 0, 0, CSP_OK, NULL, 0};
        csp_pruner_set_callback(p, reenter_step_cb, &r);
        ck_assert_int_eq(csp_step(p, 0), CSP_PRUNED);
        ck_assert_int_eq(r.calls, 1);
        csp_tensor_free(t);
        csp_schedule_free(s);
        csp_context_free(ctx);
    }
}
END_TEST

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(1, 0);
    csp_context *other = test_context(1, 0);
    csp_schedule *s = cubic(ctx, 0, 100, 10, 0.9);
    csp_pruner *p = (csp_pruner *)&ctx;
    /* create */
    ck_assert_int_eq(csp_pruner_create(NULL, ctx, s, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_create(&p, NULL, s, NULL), CSP_E_NULL);
    ck_assert_ptr_null(p);
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, NULL, NULL), CSP_E_NULL);
    csp_pruner_options po;
    ck_assert_int_eq(csp_pruner_options_init(NULL, sizeof po), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_options_init(&po, 3), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_pruner_options_init(&po, sizeof po), CSP_OK);
    po.struct_size = 4;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_STRUCT_SIZE);
    const int32_t bad_gran[] = {0, 5, -1};
    for (int i = 0; i < 3; i++) {
        csp_pruner_options_init(&po, sizeof po);
        po.granularity = bad_gran[i];
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_ENUM);
    }
    const int32_t bad_nm[][2] = {{0, 4}, {4, 4}, {5, 4}, {1, 1}, {2, 33}, {-1, 4}};
    for (int i = 0; i < 6; i++) {
        csp_pruner_options_init(&po, sizeof po);
        po.nm_n = bad_nm[i][0];
        po.nm_m = bad_nm[i][1];
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_RANGE);
        ck_assert_ptr_null(p);
    }
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, NULL), CSP_OK);
    csp_schedule_free(s); /* the pruner keeps its own copy */

    float buf[8 * 6], buf2[8 * 6], buf3[8 * 6], buf4[8 * 6] = {0};
    double dbuf[8 * 6];
    for (int i = 0; i < 48; i++)
        buf[i] = buf2[i] = buf3[i] = (float)(dbuf[i] = i - 20.5);
    int64_t shape[2] = {8, 6}, shape2[2] = {6, 8};
    csp_tensor *w = NULL, *w2 = NULL, *wd = NULL, *wrong = NULL, *foreign = NULL, *w3 = NULL;
    ck_assert_int_eq(csp_tensor_create(&w, ctx, buf, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&w2, ctx, buf2, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&w3, ctx, buf3, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&wd, ctx, dbuf, CSP_DTYPE_F64, 2, shape, 0, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&wrong, ctx, buf2, CSP_DTYPE_F32, 2, shape2, 0, NULL),
                     CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&foreign, other, buf3, CSP_DTYPE_F32, 2, shape, 0, NULL),
                     CSP_OK);

    /* add_tensor */
    csp_pruner_tensor_options to;
    int32_t idx = 7;
    ck_assert_int_eq(csp_pruner_add_tensor(NULL, w, NULL, &idx), CSP_E_NULL);
    ck_assert_int_eq(idx, -1);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, NULL, NULL, &idx), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_tensor_options_init(NULL, sizeof to, p), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_tensor_options_init(&to, sizeof to, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_tensor_options_init(&to, 1, p), CSP_E_STRUCT_SIZE);
    struct {
        const char *what;
        csp_pruner_tensor_options o;
        csp_status want;
    } cases[16];
    int n = 0;
#define CASE(field, value, st)                                                                     \
    do {                                                                                           \
        csp_pruner_tensor_options_init(&cases[n].o, sizeof cases[n].o, p);                            \
        cases[n].what = #field " = " #value;                                                       \
        cases[n].o.field = value;                                                                  \
        cases[n++].want = st;                                                                      \
    } while (0)
    CASE(struct_size, 8, CSP_E_STRUCT_SIZE);
    CASE(granularity, -2, CSP_E_ENUM);
    CASE(nm_m, 1, CSP_E_RANGE);
    CASE(nm_n, 4, CSP_E_RANGE);
    CASE(exclude, 2, CSP_E_RANGE);
    CASE(reserved0, 1, CSP_E_RESERVED);
    CASE(group, -1, CSP_E_RANGE);
    CASE(final_sparsity, NAN, CSP_E_RANGE);
    CASE(final_sparsity, 1.0, CSP_E_RANGE);
    CASE(final_sparsity, INFINITY, CSP_E_RANGE);
#undef CASE
    /* N:M 2:4 on 6 columns */
    csp_pruner_tensor_options_init(&cases[n].o, sizeof cases[n].o, p);
    cases[n].what = "N:M with cols % M != 0";
    cases[n].o.granularity = CSP_GRANULARITY_NM;
    cases[n++].want = CSP_E_SHAPE;
    for (int i = 0; i < n; i++) {
        idx = 7;
        csp_status st = csp_pruner_add_tensor(p, w, &cases[i].o, &idx);
        ck_assert_msg(st == cases[i].want, "%s: got %s, want %s (%s)", cases[i].what,
                      csp_status_name(st), csp_status_name(cases[i].want),
                      csp_context_last_error(ctx));
        ck_assert_int_eq(idx, -1);
    }
    struct {
        csp_pruner_tensor_options o;
        char extra[4];
    } big;
    memset(&big, 0, sizeof big);
    csp_pruner_tensor_options_init(&big.o, sizeof big, p);
    big.extra[1] = 1;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w, &big.o, NULL), CSP_E_RESERVED);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, foreign, NULL, NULL), CSP_E_INVALID);
    ck_assert_int_eq(csp_pruner_num_tensors(p), 0);

    /* global group: one dtype, one override */
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.granularity = CSP_GRANULARITY_GLOBAL;
    to.group = 2;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w, &to, &idx), CSP_OK);
    ck_assert_int_eq(idx, 0);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, wd, &to, NULL), CSP_E_DTYPE);
    to.final_sparsity = 0.5;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w2, &to, NULL), CSP_E_INVALID);
    to.group = 3; /* another group may differ */
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w2, &to, &idx), CSP_OK);
    ck_assert_int_eq(idx, 1);
    /* the same buffer twice */
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w, NULL, NULL), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, wrong, NULL, NULL), CSP_E_INVALID);

    /* add_companion */
    ck_assert_int_eq(csp_pruner_add_companion(NULL, 0, w3), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 2, w3), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_add_companion(p, -1, w3), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, w), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, foreign), CSP_E_INVALID);
    csp_tensor *wrong3 = NULL;
    ck_assert_int_eq(csp_tensor_create(&wrong3, ctx, buf3, CSP_DTYPE_F32, 2, shape2, 0, NULL),
                     CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, wrong3), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 0, w3), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 1, w3), CSP_E_INVALID); /* taken */
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.exclude = 1;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, wd, &to, &idx), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_companion(p, idx, wrong), CSP_E_INVALID);

    /* step and readers */
    ck_assert_int_eq(csp_step(NULL, 0), CSP_E_NULL);
    ck_assert_status(ctx, csp_step(p, -1), CSP_E_RANGE);
    int64_t v64;
    uint64_t u64;
    uint8_t b8[48];
    csp_tensor_stats st;
    ck_assert_int_eq(csp_pruner_last_step(NULL, &v64), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_last_step(p, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_mask_words(NULL, 0, &u64, 1), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_mask_words(p, 0, NULL, 1), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_mask_words(p, 3, &u64, 1), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_mask_words(p, 0, &u64, 0), CSP_E_BUFFER);
    ck_assert_int_eq(csp_pruner_mask_bytes(NULL, 0, b8, 48), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_mask_bytes(p, 0, NULL, 48), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_mask_bytes(p, -1, b8, 48), CSP_E_RANGE);
    ck_assert_int_eq(csp_pruner_nnz(NULL, 0, &v64), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_nnz(p, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_nnz(p, 3, &v64), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_nnz(p, -2, &v64), CSP_E_RANGE);
    ck_assert_int_eq(csp_pruner_digest(NULL, &u64), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_digest(p, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_tensor_stats_init(NULL, sizeof st), CSP_E_NULL);
    ck_assert_int_eq(csp_tensor_stats_init(&st, 2), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_tensor_stats_init(&st, sizeof st), CSP_OK);
    ck_assert_int_eq(csp_pruner_tensor_stats(NULL, 0, &st), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_tensor_stats(p, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_tensor_stats(p, 9, &st), CSP_E_RANGE);
    st.struct_size = 16;
    ck_assert_status(ctx, csp_pruner_tensor_stats(p, 0, &st), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_pruner_num_tensors(NULL), 0);
    ck_assert_int_eq(csp_pruner_num_tensors(p), 3);
    /* a working step after all that */
    ck_assert_status(ctx, csp_step(p, 0), CSP_PRUNED);
    csp_tensor *late = NULL;
    ck_assert_int_eq(csp_tensor_create(&late, ctx, buf4, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_companion(p, 1, late), CSP_OK); /* any time */
    ck_assert_status(ctx, csp_step(p, 1), CSP_MASKED);

    csp_pruner_free(p);
    csp_pruner_free(NULL);
    /* An override needs a schedule whose final sparsity is not 0. */
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = 0.0;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &so), CSP_OK);
    ck_assert_int_eq(csp_pruner_create(&p, ctx, s, NULL), CSP_OK);
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.final_sparsity = 0.3;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w, &to, NULL), CSP_E_RANGE);
    csp_pruner_free(p);
    csp_schedule_free(s);
    csp_tensor_free(w);
    csp_tensor_free(w2);
    csp_tensor_free(w3);
    csp_tensor_free(wd);
    csp_tensor_free(wrong);
    csp_tensor_free(wrong3);
    csp_tensor_free(late);
    csp_tensor_free(foreign);
    csp_context_free(other);
    csp_context_free(ctx);
}
END_TEST

static Suite *pruner_suite(void) {
    Suite *s = suite_create("pruner");
    TCase *tc = tcase_create("pruner");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gmp_matches_reference);
    tcase_add_test(tc, test_step_semantics);
    tcase_add_test(tc, test_nonfinite_leaves_everything);
    tcase_add_test(tc, test_threads_and_digest);
    tcase_add_test(tc, test_callback_schedule);
    tcase_add_test(tc, test_k_rounding);
    tcase_add_test(tc, test_mask_readers);
    tcase_add_test(tc, test_gradients);
    tcase_add_test(tc, test_reentrancy);
    tcase_add_test(tc, test_empty_pruner);
    tcase_add_test(tc, test_set_data_overlap);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(pruner_suite()); }
