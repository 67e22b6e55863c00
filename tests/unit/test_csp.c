/* CSP through csp_step(): identity sensing is GMP bit for bit; OMP with a
 * user Gram I is GMP; supports stay inside the mask with exact per-row
 * counts; corrections and stats against float64 references; random
 * sensing reproducible; activation observation; data-parallel replicas in
 * threads; the between-event shrink; the step callback; bad input; NaN.
 * Fresh seeds every run (CSP_TEST_SEED replays one). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "prune/pruner_internal.h"

static int64_t zeros_for(double s, int64_t n) { return (int64_t)nearbyint(s * (double)n); }

/* ---- a tensor with its host buffers ------------------------------------------ */

typedef struct {
    int32_t rank, dtype;
    int64_t shape[3];
    int64_t rows, cols, stride, numel;
    void *w, *mom;
    csp_tensor *tw, *tm;
    int32_t index;
    int64_t unit; /* CS row length (cols, or the block size of rank 1) */
} ten;

static size_t ten_bytes(const ten *t) {
    return (size_t)(t->rows * t->stride) * (t->dtype == CSP_DTYPE_F64 ? 8 : 4);
}

static double tget(const ten *t, const void *buf, int64_t f) {
    int64_t r = f / t->cols, c = f % t->cols;
    return t->dtype == CSP_DTYPE_F64 ? ((const double *)buf)[r * t->stride + c]
                                     : (double)((const float *)buf)[r * t->stride + c];
}

static void tset(const ten *t, void *buf, int64_t f, double v) {
    int64_t r = f / t->cols, c = f % t->cols;
    if (t->dtype == CSP_DTYPE_F64)
        ((double *)buf)[r * t->stride + c] = v;
    else
        ((float *)buf)[r * t->stride + c] = (float)v;
}

/* ---- a rig: context, schedule, pruner and tensors ---------------------------- */

#define MAXT 8
typedef struct {
    csp_context *ctx;
    csp_schedule *sched;
    csp_pruner *p;
    ten t[MAXT];
    int nt;
    test_rng rng;
} rig;

static csp_schedule_options cubic_opts(int64_t t0, int64_t t_end, int64_t dt, double sf) {
    csp_schedule_options o;
    csp_schedule_options_init(&o, sizeof o);
    o.begin_step = t0;
    o.end_step = t_end;
    o.frequency = dt;
    o.final_sparsity = sf;
    return o;
}

static void rig_init(rig *g, int32_t threads, uint64_t ctx_seed, uint64_t data_seed,
                     const csp_schedule_options *so, const csp_pruner_options *po) {
    memset(g, 0, sizeof *g);
    g->ctx = test_context(threads, ctx_seed);
    test_rng_init(&g->rng, data_seed);
    ck_assert_status(g->ctx, csp_schedule_create(&g->sched, g->ctx, so), CSP_OK);
    ck_assert_status(g->ctx, csp_pruner_create(&g->p, g->ctx, g->sched, po), CSP_OK);
}

/* A float-representable normal number (so float64 tensors have no ties the
 * float32 solvers would see differently). */
static double fnormal(test_rng *r) { return (double)(float)test_rng_normal(r); }

static ten *rig_add(rig *g, int32_t rank, const int64_t *shape, int64_t pad, int32_t dtype,
                    const csp_pruner_tensor_options *to) {
    ten *t = &g->t[g->nt++];
    memset(t, 0, sizeof *t);
    t->rank = rank;
    t->dtype = dtype;
    t->rows = rank == 1 ? 1 : shape[0];
    t->cols = 1;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        if (rank == 1 || i > 0)
            t->cols *= shape[i];
    }
    t->numel = t->rows * t->cols;
    t->stride = t->cols + pad;
    size_t es = dtype == CSP_DTYPE_F64 ? 8 : 4;
    t->w = calloc((size_t)(t->rows * t->stride), es);
    t->mom = calloc((size_t)(t->rows * t->stride), es);
    ck_assert_int_eq(csp_tensor_create(&t->tw, g->ctx, t->w, dtype, rank, shape, pad ? t->stride : 0,
                                       "w"),
                     CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&t->tm, g->ctx, t->mom, dtype, rank, shape,
                                       pad ? t->stride : 0, "m"),
                     CSP_OK);
    for (int64_t f = 0; f < t->numel; f++) {
        tset(t, t->w, f, fnormal(&g->rng));
        tset(t, t->mom, f, 1.0);
    }
    ck_assert_status(g->ctx, csp_pruner_add_tensor(g->p, t->tw, to, &t->index), CSP_OK);
    if (to == NULL || !to->exclude)
        ck_assert_status(g->ctx, csp_pruner_add_companion(g->p, t->index, t->tm), CSP_OK);
    int32_t bs = to != NULL ? to->block_size : CSP_DEFAULT_BLOCK_SIZE;
    t->unit = rank == 1 ? (bs < t->numel ? bs : t->numel) : t->cols;
    return t;
}

/* An optimizer update: every weight moves (pruned ones too), companions too. */
static void rig_update(rig *g) {
    for (int i = 0; i < g->nt; i++) {
        ten *t = &g->t[i];
        for (int64_t f = 0; f < t->numel; f++) {
            tset(t, t->w, f, (double)(float)(tget(t, t->w, f) + 0.05 * test_rng_normal(&g->rng)));
            tset(t, t->mom, f, 1.0 + test_rng_uniform(&g->rng));
        }
    }
}

static void rig_free(rig *g) {
    csp_pruner_free(g->p);
    for (int i = 0; i < g->nt; i++) {
        csp_tensor_free(g->t[i].tw);
        csp_tensor_free(g->t[i].tm);
        free(g->t[i].w);
        free(g->t[i].mom);
    }
    csp_schedule_free(g->sched);
    csp_context_free(g->ctx);
}

static uint8_t *mask_of(const rig *g, const ten *t) {
    uint8_t *m = malloc((size_t)t->numel);
    ck_assert_int_eq(csp_pruner_mask_bytes(g->p, t->index, m, t->numel), CSP_OK);
    return m;
}

/* Masks, weights and companions of two rigs with the same tensors agree
 * bit for bit. */
static void same_rigs(const rig *a, const rig *b, int64_t step) {
    ck_assert_int_eq(a->nt, b->nt);
    for (int i = 0; i < a->nt; i++) {
        const ten *x = &a->t[i], *y = &b->t[i];
        int64_t nw = (x->numel + 63) / 64;
        uint64_t *ma = malloc((size_t)nw * 8), *mb = malloc((size_t)nw * 8);
        ck_assert_int_eq(csp_pruner_mask_words(a->p, x->index, ma, nw), CSP_OK);
        ck_assert_int_eq(csp_pruner_mask_words(b->p, y->index, mb, nw), CSP_OK);
        REQUIRE(memcmp(ma, mb, (size_t)nw * 8) == 0, "step %lld tensor %d: masks differ",
                (long long)step, i);
        REQUIRE(memcmp(x->w, y->w, ten_bytes(x)) == 0, "step %lld tensor %d: weights differ",
                (long long)step, i);
        REQUIRE(memcmp(x->mom, y->mom, ten_bytes(x)) == 0,
                "step %lld tensor %d: companions differ", (long long)step, i);
        free(ma);
        free(mb);
    }
    uint64_t da, db;
    ck_assert_int_eq(csp_pruner_digest(a->p, &da), CSP_OK);
    ck_assert_int_eq(csp_pruner_digest(b->p, &db), CSP_OK);
    ck_assert_uint_eq(da, db);
}

/* Tensor options from rig @p g's pruner, at granularity @p gran (0: the
 * pruner's). */
static csp_pruner_tensor_options topts(const rig *g, int32_t gran) {
    csp_pruner_tensor_options o;
    ck_assert_int_eq(csp_pruner_tensor_options_init(&o, sizeof o, g->p), CSP_OK);
    if (gran != 0)
        o.granularity = gran;
    return o;
}

/* An experimental parameter of rig @p g's pruner: the default of the
 * tensors added afterwards. */
static void rig_x(rig *g, int32_t param, double value) {
    ck_assert_status(g->ctx, csp_pruner_set_experimental(g->p, -1, param, value), CSP_OK);
}

/* Every kind of tensor the GMP path knows. */
static void add_gmp_zoo(rig *g, csp_pruner_tensor_options base) {
    static const int64_t s0[2] = {13, 37}, s1[2] = {9, 50}, s2[2] = {6, 16}, s3[2] = {7, 11},
                         s4[2] = {4, 30}, s5[1] = {100}, s6[3] = {4, 3, 5}, s7[2] = {3, 10};
    csp_pruner_tensor_options o = base;
    o.granularity = CSP_GRANULARITY_TENSOR;
    rig_add(g, 2, s0, 0, CSP_DTYPE_F32, &o);
    o.granularity = CSP_GRANULARITY_ROW;
    rig_add(g, 2, s1, 3, CSP_DTYPE_F64, &o);
    o.granularity = CSP_GRANULARITY_NM;
    o.nm_n = 2;
    o.nm_m = 4;
    rig_add(g, 2, s2, 0, CSP_DTYPE_F32, &o);
    o.nm_n = base.nm_n;
    o.nm_m = base.nm_m;
    o.granularity = CSP_GRANULARITY_GLOBAL;
    o.group = 3;
    rig_add(g, 2, s3, 0, CSP_DTYPE_F32, &o);
    rig_add(g, 2, s4, 1, CSP_DTYPE_F32, &o);
    o.group = 0;
    o.granularity = CSP_GRANULARITY_ROW;
    rig_add(g, 1, s5, 0, CSP_DTYPE_F32, &o);
    o.granularity = CSP_GRANULARITY_TENSOR;
    o.final_sparsity = 0.5;
    rig_add(g, 3, s6, 0, CSP_DTYPE_F32, &o);
    o.final_sparsity = base.final_sparsity;
    o.exclude = 1;
    rig_add(g, 2, s7, 0, CSP_DTYPE_F32, &o);
}

/* ---- 1. identity sensing is the GMP path --------------------------------------- */

/* The default pruner (the GMP path) against pruners configured with the
 * identity operator and every solver and correction: masks, weights and
 * companions identical at every step of a cubic run, at every granularity. */
START_TEST(test_identity_is_gmp) {
    uint64_t seed = csp_test_seed() + 1;
    csp_schedule_options so = cubic_opts(0, 100, 10, 0.9);
    rig r[4];
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    rig_init(&r[0], 1, 7, seed, &so, NULL);
    po.sensing.kind = CSP_SENSING_IDENTITY;
    po.solver.method = CSP_SOLVER_OMP;
    po.correction = CSP_CORRECTION_NONE;
    rig_init(&r[1], 2, 7, seed, &so, &po);
    po.solver.method = CSP_SOLVER_FISTA;
    po.correction = CSP_CORRECTION_FULL;
    rig_init(&r[2], 1, 8, seed, &so, &po);
    po.solver.method = CSP_SOLVER_ISTA;
    po.correction = CSP_CORRECTION_BLEND;
    rig_init(&r[3], 1, 9, seed, &so, &po);
    rig_x(&r[3], CSP_X_ALPHA, 0.7);
    for (int k = 0; k < 4; k++) {
        csp_pruner_tensor_options base = topts(&r[k], 0);
        if (k == 3) { /* per-tensor options, identity named explicitly */
            base.sensing.kind = CSP_SENSING_IDENTITY;
            base.solver.method = CSP_SOLVER_OMP;
            base.correction = CSP_CORRECTION_FULL;
        }
        add_gmp_zoo(&r[k], base);
    }
    for (int64_t step = 0; step <= 130; step++) {
        for (int k = 0; k < 4; k++) {
            rig_update(&r[k]);
            csp_status st = csp_step(r[k].p, step);
            REQUIRE(st == CSP_PRUNED || st == CSP_MASKED, "step %lld: %s", (long long)step,
                    csp_context_last_error(r[k].ctx));
            if (step % 37 == 0) /* the same step twice */
                ck_assert_int_eq(csp_step(r[k].p, step), CSP_MASKED);
        }
        for (int k = 1; k < 4; k++)
            same_rigs(&r[0], &r[k], step);
    }
    /* Identity tensors are not CSP tensors: no operator, identity stats. */
    csp_sensing *s = (csp_sensing *)&s;
    ck_assert_int_eq(csp_pruner_sensing(r[2].p, 1, &s), CSP_OK);
    ck_assert_ptr_null(s);
    csp_tensor_stats st;
    csp_tensor_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_tensor_stats(r[2].p, 1, &st), CSP_OK);
    ck_assert_int_eq(st.sensing, CSP_SENSING_IDENTITY);
    ck_assert_int_eq(st.solver, CSP_SOLVER_FISTA);
    ck_assert_int_eq(st.correction, CSP_CORRECTION_FULL);
    ck_assert_int_eq(st.events, 11);
    ck_assert_int_eq(st.solver_iterations, 0);
    ck_assert_int_eq(st.converged, 1);
    for (int k = 0; k < 4; k++)
        rig_free(&r[k]);
}
END_TEST

/* ---- 2. OMP through a user Gram I is GMP (ROW) -------------------------------------- */

static csp_sensing *identity_gram(csp_context *ctx, int64_t n) {
    csp_sensing_options o;
    csp_sensing_options_init(&o, sizeof o);
    o.kind = CSP_SENSING_GRAM;
    o.n = n;
    csp_sensing *s = NULL;
    ck_assert_int_eq(csp_sensing_create(&s, ctx, &o), CSP_OK);
    double *G = calloc((size_t)(n * n), sizeof *G);
    for (int64_t i = 0; i < n; i++)
        G[i * n + i] = 1.0;
    ck_assert_int_eq(csp_sensing_set_gram(s, G, n), CSP_OK);
    free(G);
    return s;
}

START_TEST(test_user_gram_identity_is_gmp_row) {
    uint64_t seed = csp_test_seed() + 2;
    csp_schedule_options so = cubic_opts(3, 93, 10, 0.93);
    static const int64_t s0[2] = {13, 37}, s1[2] = {8, 64}, s2[2] = {9, 50}, s3[3] = {4, 3, 5};
    rig a, b;
    rig_init(&a, 1, 1, seed, &so, NULL);
    rig_init(&b, 3, 1, seed, &so, NULL);
    csp_pruner_tensor_options o = topts(&a, CSP_GRANULARITY_ROW);
    rig_add(&a, 2, s0, 0, CSP_DTYPE_F32, &o);
    rig_add(&a, 2, s1, 5, CSP_DTYPE_F32, &o);
    rig_add(&a, 2, s2, 0, CSP_DTYPE_F64, &o);
    rig_add(&a, 3, s3, 0, CSP_DTYPE_F32, &o);
    /* b: two tensors get a pruner-owned GRAM operator set to I through the
     * handle, two a host operator attached; f32 ones are fully corrected
     * (a no-op with G = I). */
    o.sensing.kind = CSP_SENSING_GRAM;
    o.correction = CSP_CORRECTION_FULL;
    rig_add(&b, 2, s0, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_IDENTITY;
    rig_add(&b, 2, s1, 5, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_GRAM;
    o.correction = CSP_CORRECTION_NONE;
    rig_add(&b, 2, s2, 0, CSP_DTYPE_F64, &o);
    o.sensing.kind = CSP_SENSING_IDENTITY;
    o.correction = CSP_CORRECTION_BLEND;
    rig_add(&b, 3, s3, 0, CSP_DTYPE_F32, &o);
    csp_sensing *host1 = identity_gram(b.ctx, 64), *host3 = identity_gram(b.ctx, 15);
    ck_assert_status(b.ctx, csp_pruner_set_sensing(b.p, 1, host1), CSP_OK);
    ck_assert_status(b.ctx, csp_pruner_set_sensing(b.p, 3, host3), CSP_OK);
    for (int32_t i = 0; i < 3; i += 2) {
        csp_sensing *own = NULL;
        ck_assert_int_eq(csp_pruner_sensing(b.p, i, &own), CSP_OK);
        ck_assert_ptr_nonnull(own);
        ck_assert_int_eq(csp_sensing_kind(own), CSP_SENSING_GRAM);
        int64_t n = csp_sensing_n(own);
        double *G = calloc((size_t)(n * n), sizeof *G);
        for (int64_t q = 0; q < n; q++)
            G[q * n + q] = 1.0;
        ck_assert_int_eq(csp_sensing_set_gram(own, G, n), CSP_OK);
        free(G);
    }
    csp_sensing *got = NULL;
    ck_assert_int_eq(csp_pruner_sensing(b.p, 1, &got), CSP_OK);
    ck_assert_ptr_eq(got, host1);
    for (int64_t step = 0; step <= 100; step++) {
        rig_update(&a);
        rig_update(&b);
        csp_status sa = csp_step(a.p, step), sb = csp_step(b.p, step);
        REQUIRE(sa == sb && sa > 0, "step %lld: %s / %s (%s)", (long long)step,
                csp_status_name(sa), csp_status_name(sb), csp_context_last_error(b.ctx));
        same_rigs(&a, &b, step);
    }
    csp_tensor_stats st;
    csp_tensor_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_tensor_stats(b.p, 0, &st), CSP_OK);
    ck_assert_int_eq(st.sensing, CSP_SENSING_GRAM);
    ck_assert_int_eq(st.events, 10);
    ck_assert_int_eq(csp_pruner_tensor_stats(b.p, 1, &st), CSP_OK);
    ck_assert_int_eq(st.sensing, CSP_SENSING_GRAM); /* the attached operator's kind */
    ck_assert_int_eq(st.rows_damped, 0);
    /* Detaching goes back to the GMP path (the tensor's own config is identity). */
    ck_assert_int_eq(csp_pruner_set_sensing(b.p, 1, NULL), CSP_OK);
    ck_assert_int_eq(csp_pruner_sensing(b.p, 1, &got), CSP_OK);
    ck_assert_ptr_null(got);
    csp_sensing_free(host1); /* a detached / unused host operator may go first */
    csp_sensing_free(host3);
    rig_free(&a);
    rig_free(&b);
}
END_TEST

/* ---- helpers for CSP checks ------------------------------------------------------- */

/* Snapshot of a tensor before a step. */
typedef struct {
    uint8_t *mask;
    double *w, *mom; /* flat, numel */
} snap;

static void snap_take(snap *sn, const rig *g, const ten *t) {
    sn->mask = mask_of(g, t);
    sn->w = malloc((size_t)t->numel * sizeof(double));
    sn->mom = malloc((size_t)t->numel * sizeof(double));
    for (int64_t f = 0; f < t->numel; f++) {
        sn->w[f] = tget(t, t->w, f);
        sn->mom[f] = tget(t, t->mom, f);
    }
}

static void snap_free(snap *sn) {
    free(sn->mask);
    free(sn->w);
    free(sn->mom);
}

/* Number of CS units (rows or blocks) of a tensor. */
static int64_t units(const ten *t) {
    return t->rank == 1 ? (t->numel + t->unit - 1) / t->unit : t->rows;
}
static int64_t unit_len(const ten *t, int64_t u) {
    if (t->rank != 1)
        return t->cols;
    int64_t left = t->numel - u * t->unit;
    return left < t->unit ? left : t->unit;
}

/* After an event at tensor target ts: the new mask is inside the old one
 * with exactly min(old, L - round(ts L)) per unit; pruned weights are +0;
 * companions are zero where pruned and untouched where kept; with
 * correction none the kept weights are untouched. */
static void check_event(const rig *g, const ten *t, const snap *before, double ts,
                        bool keeps_values, int64_t step) {
    uint8_t *now = mask_of(g, t);
    for (int64_t u = 0; u < units(t); u++) {
        int64_t L = unit_len(t, u), old = 0, cnt = 0;
        for (int64_t c = 0; c < L; c++) {
            int64_t f = u * t->unit + c;
            REQUIRE(!now[f] || before->mask[f], "step %lld: tensor %d regrew %lld",
                    (long long)step, t->index, (long long)f);
            old += before->mask[f];
            cnt += now[f];
            double w = tget(t, t->w, f), m = tget(t, t->mom, f);
            if (!now[f]) {
                REQUIRE(w == 0.0 && !signbit(w), "step %lld: pruned weight %g", (long long)step,
                        w);
                REQUIRE(m == 0.0, "step %lld: companion not masked", (long long)step);
            } else {
                REQUIRE(m == before->mom[f], "step %lld: kept companion changed",
                        (long long)step);
                if (keeps_values)
                    REQUIRE(w == before->w[f], "step %lld: kept weight changed",
                            (long long)step);
            }
        }
        int64_t keep = L - zeros_for(ts, L);
        REQUIRE(cnt == (keep < old ? keep : old),
                "step %lld tensor %d unit %lld: %lld kept, want min(%lld, %lld)",
                (long long)step, t->index, (long long)u, (long long)cnt, (long long)keep,
                (long long)old);
    }
    free(now);
}

/* The support the pruner should find for OMP tensor @p t: a direct
 * csp_solver_solve() with the tensor's operator (random key (0,
 * @p key_event)) on the masked weights of the units that lose weights (the
 * same batch the pruner forms, so even the GEMM sees the same shapes); the
 * last block of a rank-1 tensor with the leading block of G. Returns a 0/1
 * byte per weight. */
static uint8_t *direct_omp(const rig *g, const ten *t, const snap *sn, double ts,
                           int64_t key_event) {
    csp_sensing *h = NULL;
    ck_assert_int_eq(csp_pruner_sensing(g->p, t->index, &h), CSP_OK);
    ck_assert_ptr_nonnull(h);
    csp_solver *sv = NULL;
    ck_assert_int_eq(csp_solver_create(&sv, g->ctx, NULL), CSP_OK);
    int64_t n = t->unit, nu = units(t), full = t->numel / n, tail = t->numel % n;
    int64_t wn = (n + 63) / 64;
    float *w = calloc((size_t)(nu * n), sizeof *w), *x = calloc((size_t)(nu * n), sizeof *x);
    int32_t *k = calloc((size_t)nu, sizeof *k);
    int64_t *sel = calloc((size_t)nu, sizeof *sel);
    uint64_t *allowed = calloc((size_t)(nu * wn), 8), *support = calloc((size_t)(nu * wn), 8);
    uint8_t *out = malloc((size_t)t->numel);
    memcpy(out, sn->mask, (size_t)t->numel);
    int64_t nc = 0, ns = 0;
    for (int64_t u = 0; u < nu; u++) {
        int64_t L = unit_len(t, u), old = 0;
        for (int64_t c = 0; c < L; c++)
            old += sn->mask[u * n + c];
        int64_t keep = L - zeros_for(ts, L);
        if (keep >= old)
            continue;
        for (int64_t c = 0; c < L; c++) {
            int64_t f = u * n + c;
            if (sn->mask[f]) {
                w[nc * n + c] = (float)sn->w[f];
                allowed[nc * wn + c / 64] |= 1ULL << (c % 64);
            }
        }
        k[nc] = (int32_t)keep;
        sel[nc++] = u;
        ns += u < full;
    }
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.n = n;
    b.w = w;
    b.x = x;
    b.k = k;
    b.allowed = allowed;
    b.support = support;
    if (ns > 0) {
        b.rows = ns;
        csp_status st = csp_solver_solve(sv, h, 0, key_event, &b);
        ck_assert_msg(st >= 0, "%s", csp_context_last_error(g->ctx));
    }
    if (nc > ns) { /* the short last block */
        double *G = malloc((size_t)(n * n) * sizeof *G);
        ck_assert_int_eq(csp_sensing_gram(h, 0, key_event, G, n), CSP_OK);
        csp_sensing_options so;
        csp_sensing_options_init(&so, sizeof so);
        so.kind = CSP_SENSING_GRAM;
        so.n = tail;
        csp_sensing *tg = NULL;
        ck_assert_int_eq(csp_sensing_create(&tg, g->ctx, &so), CSP_OK);
        ck_assert_int_eq(csp_sensing_set_gram(tg, G, n), CSP_OK); /* leading block, ld n */
        b.rows = 1;
        b.n = tail;
        b.w = w + ns * n;
        b.w_stride = n;
        b.x = x + ns * n;
        b.x_stride = n;
        b.k = k + ns;
        b.allowed = allowed + ns * wn;
        b.support = support + ns * wn;
        csp_status st = csp_solver_solve(sv, tg, 0, 0, &b);
        ck_assert_msg(st >= 0, "%s", csp_context_last_error(g->ctx));
        csp_sensing_free(tg);
        free(G);
    }
    for (int64_t q = 0; q < nc; q++) {
        int64_t u = sel[q];
        for (int64_t c = 0; c < unit_len(t, u); c++)
            out[u * n + c] = (uint8_t)(support[q * wn + c / 64] >> (c % 64) & 1);
    }
    free(w);
    free(x);
    free(k);
    free(sel);
    free(allowed);
    free(support);
    csp_solver_free(sv);
    return out;
}

/* A well-conditioned PSD Gram: A^T A / m + 0.2 I, A m x n normal, m = 2n. */
static double *good_gram(test_rng *rng, int64_t n) {
    int64_t m = 2 * n;
    double *A = malloc((size_t)(m * n) * sizeof *A), *G = calloc((size_t)(n * n), sizeof *G);
    for (int64_t i = 0; i < m * n; i++)
        A[i] = test_rng_normal(rng);
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = 0; c < n; c++) {
            double s = 0.0;
            for (int64_t i = 0; i < m; i++)
                s += A[i * n + a] * A[i * n + c];
            G[a * n + c] = s / (double)m + (a == c ? 0.2 : 0.0);
        }
    free(A);
    return G;
}

static void set_handle_gram(const rig *g, const ten *t, const double *G) {
    csp_sensing *h = NULL;
    ck_assert_int_eq(csp_pruner_sensing(g->p, t->index, &h), CSP_OK);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(csp_sensing_set_gram(h, G, t->unit), CSP_OK);
}

static void observe_normal(rig *g, const ten *t, int64_t rows, float *buf) {
    for (int64_t i = 0; i < rows * t->unit; i++)
        buf[i] = (float)test_rng_normal(&g->rng);
    ck_assert_status(g->ctx, csp_pruner_observe(g->p, t->index, buf, rows, t->unit), CSP_OK);
}

/* ---- 3. supports inside the mask, exact counts, the solver wired right ------------ */

START_TEST(test_cs_masks) {
    uint64_t seed = csp_test_seed() + 3;
    csp_schedule_options so = cubic_opts(0, 60, 10, 0.8);
    rig g;
    rig_init(&g, 2, seed, seed, &so, NULL);
    static const int64_t sa[2] = {24, 40}, sb[2] = {16, 33}, sc[2] = {12, 20}, sd[1] = {300},
                         se[2] = {10, 24};
    csp_pruner_tensor_options o = topts(&g, CSP_GRANULARITY_ROW);
    ck_assert_int_eq(o.correction, CSP_CORRECTION_FULL); /* the default (0.1.0) */
    o.correction = CSP_CORRECTION_NONE;
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    ten *A = rig_add(&g, 2, sa, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_RADEMACHER;
    o.solver.method = CSP_SOLVER_FISTA;
    o.correction = CSP_CORRECTION_BLEND;
    rig_x(&g, CSP_X_ALPHA, 0.3);
    ten *B = rig_add(&g, 2, sb, 2, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_ACTIVATIONS;
    o.solver.method = CSP_SOLVER_ISTA;
    o.correction = CSP_CORRECTION_FULL;
    ten *C = rig_add(&g, 2, sc, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    o.solver.method = CSP_SOLVER_OMP;
    o.block_size = 64;
    o.sensing.rho = 1.5;
    ten *D = rig_add(&g, 1, sd, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_GRAM;
    o.block_size = CSP_DEFAULT_BLOCK_SIZE;
    o.sensing.rho = 0.5;
    ten *E = rig_add(&g, 2, se, 3, CSP_DTYPE_F64, &o);
    double *GE = good_gram(&g.rng, 24);
    set_handle_gram(&g, E, GE);
    free(GE);
    float obs[16 * 20];
    for (int64_t step = 0; step <= 70; step++) {
        rig_update(&g);
        observe_normal(&g, C, 16, obs);
        int64_t e = -1, last = -1;
        ck_assert_int_eq(csp_schedule_last_event(g.sched, step, &e), CSP_OK);
        ck_assert_int_eq(csp_pruner_last_step(g.p, &last), CSP_OK);
        bool event = e >= 0 && e > last;
        double ts = 0.0;
        if (event)
            ck_assert_int_eq(csp_schedule_target(g.sched, e, &ts), CSP_OK);
        snap sn[5];
        for (int i = 0; i < 5; i++)
            snap_take(&sn[i], &g, &g.t[i]);
        uint8_t *wantA = event ? direct_omp(&g, A, &sn[0], ts, 0) : NULL;
        uint8_t *wantD = event ? direct_omp(&g, D, &sn[3], ts, 0) : NULL;
        csp_status st = csp_step(g.p, step);
        REQUIRE(st == (event ? CSP_PRUNED : CSP_MASKED), "step %lld: %s (%s)", (long long)step,
                csp_status_name(st), csp_context_last_error(g.ctx));
        for (int i = 0; i < 5; i++) {
            if (event) {
                check_event(&g, &g.t[i], &sn[i], ts, i == 0, step);
            } else {
                uint8_t *now = mask_of(&g, &g.t[i]);
                REQUIRE(memcmp(now, sn[i].mask, (size_t)g.t[i].numel) == 0,
                        "mask changed without an event");
                for (int64_t f = 0; f < g.t[i].numel; f++)
                    REQUIRE(tget(&g.t[i], g.t[i].w, f) == (now[f] ? sn[i].w[f] : 0.0),
                            "masked step changed a weight");
                free(now);
            }
        }
        if (event) {
            uint8_t *gotA = mask_of(&g, A), *gotD = mask_of(&g, D);
            REQUIRE(memcmp(gotA, wantA, (size_t)A->numel) == 0,
                    "step %lld: OMP support differs from a direct solve", (long long)step);
            REQUIRE(memcmp(gotD, wantD, (size_t)D->numel) == 0,
                    "step %lld: block OMP support differs from a direct solve", (long long)step);
            free(gotA);
            free(gotD);
        }
        free(wantA);
        free(wantD);
        for (int i = 0; i < 5; i++)
            snap_free(&sn[i]);
    }
    (void)B;
    (void)E;
    rig_free(&g);
}
END_TEST

/* ---- 4. corrections and stats against float64 references --------------------------- */

/* Solve A x = b in place for SPD A (s x s, row-major), float64. */
static void spd_solve(double *A, int64_t s, double *b) {
    for (int64_t i = 0; i < s; i++) {
        for (int64_t j = 0; j <= i; j++) {
            double v = A[i * s + j];
            for (int64_t q = 0; q < j; q++)
                v -= A[i * s + q] * A[j * s + q];
            A[i * s + j] = i == j ? sqrt(v) : v / A[j * s + j];
        }
    }
    for (int64_t i = 0; i < s; i++) {
        for (int64_t q = 0; q < i; q++)
            b[i] -= A[i * s + q] * b[q];
        b[i] /= A[i * s + i];
    }
    for (int64_t i = s - 1; i >= 0; i--) {
        for (int64_t q = i + 1; q < s; q++)
            b[i] -= A[q * s + i] * b[q];
        b[i] /= A[i * s + i];
    }
}

typedef struct {
    double see, sww, seGe, swGw;
    int64_t iters, iters_max;
} ref_stats;

/* Check one CS tensor after an event against the float64 reference:
 * x_S = w_S + alpha (G_SS^-1 (G w)_S - w_S) on every unit that lost
 * weights, untouched elsewhere; accumulate the reference stats. G is the
 * unit's Gram (n x n; the last block of a rank-1 tensor uses its leading
 * block). */
static void check_correction(const rig *g, const ten *t, const snap *sn, const double *G,
                             double alpha, bool omp, ref_stats *rs, int64_t step) {
    uint8_t *now = mask_of(g, t);
    int64_t n = t->unit;
    double *A = malloc((size_t)(n * n) * sizeof *A), *b = malloc((size_t)n * sizeof *b),
           *w = malloc((size_t)n * sizeof *w), *e = malloc((size_t)n * sizeof *e);
    int64_t *S = malloc((size_t)n * sizeof *S);
    for (int64_t u = 0; u < units(t); u++) {
        int64_t L = unit_len(t, u), old = 0, s = 0;
        for (int64_t c = 0; c < L; c++) {
            int64_t f = u * n + c;
            w[c] = sn->mask[f] ? (double)(float)sn->w[f] : 0.0;
            old += sn->mask[f];
            if (now[f])
                S[s++] = c;
        }
        bool moved = s < old;
        for (int64_t c = 0; c < L; c++)
            e[c] = w[c];
        if (moved) {
            for (int64_t i = 0; i < s; i++) {
                double acc = 0.0;
                for (int64_t c = 0; c < L; c++)
                    acc += G[S[i] * n + c] * w[c];
                b[i] = acc;
                for (int64_t j = 0; j < s; j++)
                    A[i * s + j] = G[S[i] * n + S[j]];
            }
            spd_solve(A, s, b);
            if (omp) {
                rs->iters += s;
                rs->iters_max = s > rs->iters_max ? s : rs->iters_max;
            }
        }
        double scale = 1.0;
        for (int64_t c = 0; c < L; c++)
            scale = fabs(w[c]) > scale ? fabs(w[c]) : scale;
        for (int64_t i = 0; i < s; i++) {
            int64_t c = S[i];
            double got = tget(t, t->w, u * n + c);
            double want = moved ? w[c] + alpha * (b[i] - w[c]) : w[c];
            if (!moved || alpha == 0.0)
                REQUIRE(got == sn->w[u * n + c], "step %lld tensor %d: an uncorrected kept "
                        "weight changed", (long long)step, t->index);
            else
                REQUIRE(fabs(got - want) <= 2e-6 * scale,
                        "step %lld tensor %d unit %lld col %lld: corrected %.9g, reference "
                        "%.9g (alpha %g)",
                        (long long)step, t->index, (long long)u, (long long)c, got, want, alpha);
            e[c] = w[c] - got;
        }
        double ww = 0.0, ee = 0.0, eGe = 0.0, wGw = 0.0;
        for (int64_t a = 0; a < L; a++) {
            ww += w[a] * w[a];
            ee += e[a] * e[a];
            for (int64_t c = 0; c < L; c++) {
                eGe += e[a] * G[a * n + c] * e[c];
                wGw += w[a] * G[a * n + c] * w[c];
            }
        }
        rs->sww += ww;
        rs->see += ee;
        rs->seGe += eGe;
        rs->swGw += wGw;
    }
    free(A);
    free(b);
    free(w);
    free(e);
    free(S);
    free(now);
}

static void check_stats(const rig *g, const ten *t, const ref_stats *rs, bool omp, int64_t step) {
    csp_tensor_stats st;
    csp_tensor_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_tensor_stats(g->p, t->index, &st), CSP_OK);
    double we = rs->sww > 0 ? sqrt(rs->see / rs->sww) : 0.0;
    double se = rs->swGw > 0 ? rs->seGe / rs->swGw : 0.0;
    REQUIRE(fabs(st.weight_error - we) <= 1e-9 + 1e-6 * we,
            "step %lld tensor %d: weight error %.12g, reference %.12g", (long long)step, t->index,
            st.weight_error, we);
    REQUIRE(fabs(st.sensing_error - se) <= 1e-9 + 1e-5 * se,
            "step %lld tensor %d: sensing error %.12g, reference %.12g", (long long)step,
            t->index, st.sensing_error, se);
    if (omp) {
        ck_assert_int_eq(st.solver_iterations, rs->iters);
        ck_assert_int_eq(st.solver_iterations_max, rs->iters_max);
    }
    ck_assert_int_eq(st.converged, 1);
    ck_assert_int_eq(st.rows_not_converged, 0);
    ck_assert_int_eq(st.rows_damped, 0);
    ck_assert(st.event_seconds > 0.0);
    ck_assert(st.total_seconds >= st.event_seconds);
}

START_TEST(test_correction_and_stats) {
    uint64_t seed = csp_test_seed() + 4;
    csp_schedule_options so = cubic_opts(0, 40, 10, 0.75);
    rig g;
    rig_init(&g, 1 + (int32_t)(seed % 3), seed, seed, &so, NULL);
    static const int64_t sp[2] = {20, 24}, ss[1] = {70}, st_[2] = {12, 16}, su[2] = {10, 30};
    double *G24 = good_gram(&g.rng, 24), *G32 = good_gram(&g.rng, 32);
    csp_pruner_tensor_options o = topts(&g, CSP_GRANULARITY_ROW);
    o.sensing.kind = CSP_SENSING_GRAM;
    o.correction = CSP_CORRECTION_FULL;
    ten *P = rig_add(&g, 2, sp, 0, CSP_DTYPE_F32, &o);
    o.correction = CSP_CORRECTION_BLEND;
    rig_x(&g, CSP_X_ALPHA, 0.35);
    o.solver.method = CSP_SOLVER_FISTA;
    ten *Q = rig_add(&g, 2, sp, 1, CSP_DTYPE_F32, &o);
    o.correction = CSP_CORRECTION_NONE;
    o.solver.method = CSP_SOLVER_OMP;
    ten *R = rig_add(&g, 2, sp, 0, CSP_DTYPE_F32, &o);
    o.correction = CSP_CORRECTION_FULL;
    o.block_size = 32;
    ten *S = rig_add(&g, 1, ss, 0, CSP_DTYPE_F32, &o);
    o.block_size = CSP_DEFAULT_BLOCK_SIZE;
    o.sensing.kind = CSP_SENSING_ACTIVATIONS;
    ten *T = rig_add(&g, 2, st_, 0, CSP_DTYPE_F32, &o);
    ten *U = rig_add(&g, 2, su, 0, CSP_DTYPE_F32, NULL);
    ck_assert_int_eq(U->index, 5);
    set_handle_gram(&g, P, G24);
    set_handle_gram(&g, Q, G24);
    set_handle_gram(&g, R, G24);
    set_handle_gram(&g, S, G32);
    /* GMP tensor: row granularity default is TENSOR for U (NULL options). */
    double *XtX = calloc(16 * 16, sizeof *XtX);
    int64_t nobs = 0, events = 0;
    float obs[9 * 16];
    for (int64_t step = 0; step <= 45; step++) {
        rig_update(&g);
        observe_normal(&g, T, 9, obs);
        for (int r = 0; r < 9; r++)
            for (int a = 0; a < 16; a++)
                for (int c = 0; c < 16; c++)
                    XtX[a * 16 + c] += (double)obs[r * 16 + a] * (double)obs[r * 16 + c];
        nobs += 9;
        int64_t e = -1, last = -1;
        csp_schedule_last_event(g.sched, step, &e);
        csp_pruner_last_step(g.p, &last);
        bool event = e >= 0 && e > last;
        csp_tensor_stats ts;
        csp_tensor_stats_init(&ts, sizeof ts);
        ck_assert_int_eq(csp_pruner_tensor_stats(g.p, T->index, &ts), CSP_OK);
        ck_assert_int_eq(ts.observed_rows, nobs);
        /* The activation Gram the pruner will use, from the test's own sums. */
        double GT[16 * 16], trace = 0.0;
        for (int a = 0; a < 16; a++)
            trace += XtX[a * 16 + a] / (double)nobs;
        for (int a = 0; a < 16 * 16; a++)
            GT[a] = XtX[a] / (double)nobs + (a % 17 == 0 ? 0.01 * trace / 16.0 : 0.0);
        snap sn[6];
        for (int i = 0; i < 6; i++)
            snap_take(&sn[i], &g, &g.t[i]);
        csp_status st = csp_step(g.p, step);
        REQUIRE(st == (event ? CSP_PRUNED : CSP_MASKED), "step %lld: %s (%s)", (long long)step,
                csp_status_name(st), csp_context_last_error(g.ctx));
        if (!event) {
            for (int i = 0; i < 6; i++)
                snap_free(&sn[i]);
            continue;
        }
        events++;
        ref_stats rp = {0}, rq = {0}, rr = {0}, rsS = {0}, rt = {0};
        check_correction(&g, P, &sn[0], G24, 1.0, true, &rp, step);
        check_correction(&g, Q, &sn[1], G24, 0.35, false, &rq, step);
        check_correction(&g, R, &sn[2], G24, 0.0, true, &rr, step);
        check_correction(&g, S, &sn[3], G32, 1.0, true, &rsS, step);
        check_correction(&g, T, &sn[4], GT, 1.0, true, &rt, step);
        if (step > 0) { /* the first event (s = 0) prunes nothing */
            check_stats(&g, P, &rp, true, step);
            check_stats(&g, Q, &rq, false, step);
            check_stats(&g, R, &rr, true, step);
            check_stats(&g, S, &rsS, true, step);
            check_stats(&g, T, &rt, true, step);
        }
        /* The GMP tensor: weight-domain error, G = I. */
        uint8_t *now = mask_of(&g, U);
        double ww = 0.0, ee = 0.0;
        for (int64_t f = 0; f < U->numel; f++)
            if (sn[5].mask[f]) {
                ww += sn[5].w[f] * sn[5].w[f];
                if (!now[f])
                    ee += sn[5].w[f] * sn[5].w[f];
            }
        free(now);
        ck_assert_int_eq(csp_pruner_tensor_stats(g.p, U->index, &ts), CSP_OK);
        ck_assert_double_eq_tol(ts.weight_error, sqrt(ee / ww), 1e-12);
        ck_assert_double_eq_tol(ts.sensing_error, ee / ww, 1e-12);
        ck_assert_int_eq(ts.events, events);
        ck_assert_int_eq(ts.solver_iterations, 0);
        /* Observations were used and forgotten. */
        ck_assert_int_eq(csp_pruner_tensor_stats(g.p, T->index, &ts), CSP_OK);
        ck_assert_int_eq(ts.observed_rows, 0);
        ck_assert_int_eq(ts.events, events);
        memset(XtX, 0, 16 * 16 * sizeof *XtX);
        nobs = 0;
        for (int i = 0; i < 6; i++)
            snap_free(&sn[i]);
    }
    csp_step_stats ps;
    ck_assert_int_eq(csp_step_stats_init(&ps, sizeof ps), CSP_OK);
    ck_assert_int_eq(csp_pruner_step_stats(g.p, &ps), CSP_OK);
    ck_assert_int_eq(ps.steps, 46);
    ck_assert_int_eq(ps.events, 5);
    ck_assert_int_eq(ps.last_event, 40);
    int64_t nnz = 0, numel = 0;
    for (int i = 0; i < 6; i++) {
        int64_t v;
        csp_pruner_nnz(g.p, i, &v);
        nnz += v;
        numel += g.t[i].numel;
    }
    ck_assert_int_eq(ps.nnz, nnz);
    ck_assert_int_eq(ps.numel, numel);
    ck_assert(ps.last_event_seconds > 0.0 && ps.event_seconds >= ps.last_event_seconds);
    ck_assert(ps.total_seconds >= ps.event_seconds);
    free(G24);
    free(G32);
    free(XtX);
    rig_free(&g);
}
END_TEST

/* ---- 5b. support = magnitude: GMP's support, G only for the correction ------------- */

/* Rig b (Gram sensing, magnitude support, no correction) prunes exactly like
 * rig a (GMP, ROW) at every step; rig c (the same with a blended refit)
 * keeps, per row, the k largest |w| of its own weights (lower column first
 * among equals) and refits them through G. */
START_TEST(test_support_magnitude) {
    uint64_t seed = csp_test_seed() + 13;
    csp_schedule_options so = cubic_opts(0, 60, 10, 0.8);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    rig a, b, c;
    rig_init(&a, 1, 5, seed, &so, &po);
    double support = 0.0;
    ck_assert_int_eq(csp_pruner_get_experimental(a.p, -1, CSP_X_SUPPORT, &support), CSP_OK);
    ck_assert(support == CSP_SUPPORT_SOLVER);
    po.sensing.kind = CSP_SENSING_GRAM;
    po.correction = CSP_CORRECTION_NONE;
    rig_init(&b, 2, 5, seed, &so, &po);
    rig_x(&b, CSP_X_SUPPORT, CSP_SUPPORT_MAGNITUDE);
    po.correction = CSP_CORRECTION_BLEND;
    rig_init(&c, 1, 5, seed, &so, &po);
    rig_x(&c, CSP_X_SUPPORT, CSP_SUPPORT_MAGNITUDE);
    rig_x(&c, CSP_X_ALPHA, 0.3);
    static const int64_t s0[2] = {12, 20}, s1[2] = {7, 33};
    rig *rs[3] = {&a, &b, &c};
    for (int k = 0; k < 3; k++) {
        rig_add(rs[k], 2, s0, 0, CSP_DTYPE_F32, NULL);
        rig_add(rs[k], 2, s1, 2, CSP_DTYPE_F64, NULL);
    }
    test_rng gr;
    test_rng_init(&gr, seed + 99);
    double *G[2] = {good_gram(&gr, 20), good_gram(&gr, 33)};
    for (int k = 1; k < 3; k++)
        for (int i = 0; i < 2; i++)
            set_handle_gram(rs[k], &rs[k]->t[i], G[i]);
    int64_t events = 0;
    for (int64_t step = 0; step <= 70; step++) {
        snap sn[2];
        for (int k = 0; k < 3; k++)
            rig_update(rs[k]);
        for (int i = 0; i < 2; i++)
            snap_take(&sn[i], &c, &c.t[i]);
        csp_status st[3];
        for (int k = 0; k < 3; k++) {
            st[k] = csp_step(rs[k]->p, step);
            REQUIRE(st[k] == CSP_PRUNED || st[k] == CSP_MASKED, "step %lld rig %d: %s",
                    (long long)step, k, csp_context_last_error(rs[k]->ctx));
        }
        ck_assert_int_eq(st[0], st[1]);
        ck_assert_int_eq(st[0], st[2]);
        same_rigs(&a, &b, step);
        if (st[2] == CSP_PRUNED && step > 0) {
            events++;
            for (int i = 0; i < 2; i++) {
                const ten *t = &c.t[i];
                csp_tensor_stats ts;
                csp_tensor_stats_init(&ts, sizeof ts);
                ck_assert_int_eq(csp_pruner_tensor_stats(c.p, t->index, &ts), CSP_OK);
                check_event(&c, t, &sn[i], ts.target_sparsity, false, step);
                uint8_t *now = mask_of(&c, t);
                for (int64_t r = 0; r < t->rows; r++)
                    for (int64_t x = 0; x < t->cols; x++)
                        for (int64_t y = 0; y < t->cols; y++) {
                            int64_t fx = r * t->cols + x, fy = r * t->cols + y;
                            if (!now[fx] || now[fy] || !sn[i].mask[fy])
                                continue;
                            double ax = fabs(sn[i].w[fx]), ay = fabs(sn[i].w[fy]);
                            REQUIRE(ax > ay || (ax == ay && x < y),
                                    "step %lld tensor %d row %lld: kept |w| %g (col %lld) "
                                    "below dropped %g (col %lld)",
                                    (long long)step, i, (long long)r, ax, (long long)x, ay,
                                    (long long)y);
                        }
                free(now);
                ref_stats ref = {0};
                check_correction(&c, t, &sn[i], G[i], 0.3, false, &ref, step);
                ck_assert_int_eq(ts.sensing, CSP_SENSING_GRAM);
                ck_assert_double_eq_tol(ts.sensing_error, ref.seGe / ref.swGw,
                                        1e-5 * (ref.seGe / ref.swGw) + 1e-12);
            }
        }
        for (int i = 0; i < 2; i++)
            snap_free(&sn[i]);
    }
    ck_assert_int_eq(events, 6);
    free(G[0]);
    free(G[1]);
    for (int k = 0; k < 3; k++)
        rig_free(rs[k]);
}
END_TEST

/* ---- 5. random sensing: reproducible, thread-count free, keyed by seed and event ---- */

START_TEST(test_random_reproducible) {
    uint64_t seed = csp_test_seed() + 5;
    csp_schedule_options so = cubic_opts(0, 50, 10, 0.85);
    rig r[3];
    static const int64_t s0[2] = {24, 40}, s1[2] = {16, 33}, s2[1] = {200};
    for (int k = 0; k < 3; k++) {
        rig_init(&r[k], k == 1 ? 3 : 1, k == 2 ? seed + 1 : seed, seed, &so, NULL);
        csp_pruner_tensor_options o = topts(&r[k], CSP_GRANULARITY_ROW);
        o.sensing.kind = CSP_SENSING_GAUSSIAN;
        rig_add(&r[k], 2, s0, 0, CSP_DTYPE_F32, &o);
        o.sensing.kind = CSP_SENSING_RADEMACHER;
        o.solver.method = CSP_SOLVER_FISTA;
        o.correction = CSP_CORRECTION_FULL;
        rig_add(&r[k], 2, s1, 0, CSP_DTYPE_F32, &o);
        o.sensing.kind = CSP_SENSING_GAUSSIAN;
        o.solver.method = CSP_SOLVER_OMP;
        o.correction = CSP_CORRECTION_NONE;
        rig_x(&r[k], CSP_X_REDRAW, 1);
        o.block_size = 50;
        rig_add(&r[k], 1, s2, 0, CSP_DTYPE_F32, &o);
    }
    int redraw_checked = 0;
    for (int64_t step = 0; step <= 55; step++) {
        int64_t e = -1, last = -1;
        for (int k = 0; k < 3; k++)
            rig_update(&r[k]);
        csp_schedule_last_event(r[0].sched, step, &e);
        csp_pruner_last_step(r[0].p, &last);
        uint8_t *want = NULL, *fixed = NULL;
        double ts = 0.0;
        if (e > 0 && e > last) { /* the redraw tensor uses Phi keyed by the event */
            csp_schedule_target(r[0].sched, e, &ts);
            snap sn;
            snap_take(&sn, &r[0], &r[0].t[2]);
            want = direct_omp(&r[0], &r[0].t[2], &sn, ts, e);
            fixed = direct_omp(&r[0], &r[0].t[2], &sn, ts, 0);
            snap_free(&sn);
        }
        for (int k = 0; k < 3; k++) {
            csp_status st = csp_step(r[k].p, step);
            REQUIRE(st > 0, "step %lld: %s", (long long)step, csp_context_last_error(r[k].ctx));
        }
        same_rigs(&r[0], &r[1], step);
        if (want != NULL) {
            uint8_t *got = mask_of(&r[0], &r[0].t[2]);
            REQUIRE(memcmp(got, want, 200) == 0, "step %lld: redraw mask", (long long)step);
            redraw_checked += memcmp(got, fixed, 200) != 0;
            free(got);
        }
        free(want);
        free(fixed);
    }
    ck_assert_int_ge(redraw_checked, 1); /* a fixed Phi would have chosen otherwise */
    /* Another seed, another Phi: other masks. */
    uint8_t *a = mask_of(&r[0], &r[0].t[0]), *b = mask_of(&r[2], &r[2].t[0]);
    ck_assert_int_ne(memcmp(a, b, 24 * 40), 0);
    free(a);
    free(b);
    for (int k = 0; k < 3; k++)
        rig_free(&r[k]);
}
END_TEST

/* ---- 6. activation observation and the observation window -------------------------- */

/* Raw bytes of every buffer and mask of a rig, to prove "nothing touched". */
typedef struct {
    void *w[MAXT], *mom[MAXT];
    uint64_t digest;
    int64_t last;
} raw;

static void raw_take(raw *r, const rig *g) {
    for (int i = 0; i < g->nt; i++) {
        size_t b = ten_bytes(&g->t[i]);
        r->w[i] = malloc(b);
        r->mom[i] = malloc(b);
        memcpy(r->w[i], g->t[i].w, b);
        memcpy(r->mom[i], g->t[i].mom, b);
    }
    ck_assert_int_eq(csp_pruner_digest(g->p, &r->digest), CSP_OK);
    ck_assert_int_eq(csp_pruner_last_step(g->p, &r->last), CSP_OK);
}

static void raw_same(raw *r, const rig *g) {
    for (int i = 0; i < g->nt; i++) {
        size_t b = ten_bytes(&g->t[i]);
        REQUIRE(memcmp(r->w[i], g->t[i].w, b) == 0, "tensor %d: weights touched", i);
        REQUIRE(memcmp(r->mom[i], g->t[i].mom, b) == 0, "tensor %d: companion touched", i);
        free(r->w[i]);
        free(r->mom[i]);
    }
    uint64_t d;
    int64_t last;
    ck_assert_int_eq(csp_pruner_digest(g->p, &d), CSP_OK);
    ck_assert_int_eq(csp_pruner_last_step(g->p, &last), CSP_OK);
    ck_assert_uint_eq(d, r->digest);
    ck_assert_int_eq(last, r->last);
}

START_TEST(test_observe) {
    uint64_t seed = csp_test_seed() + 6;
    csp_schedule_options so = cubic_opts(10, 40, 10, 0.6);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    rig g, g0, none;
    rig_init(&g, 1, seed, seed, &so, &po);
    rig_x(&g, CSP_X_OBSERVE_WINDOW, 3);
    rig_init(&g0, 1, seed, seed, &so, &po);
    po.sensing.kind = CSP_SENSING_RADEMACHER;
    rig_init(&none, 1, seed, seed, &so, &po);
    static const int64_t sa[2] = {8, 12}, sb[2] = {6, 12};
    csp_pruner_tensor_options o = topts(&g, 0);
    o.sensing.kind = CSP_SENSING_ACTIVATIONS;
    ten *A = rig_add(&g, 2, sa, 0, CSP_DTYPE_F32, &o);
    rig_add(&g0, 2, sa, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    rig_add(&g, 2, sb, 0, CSP_DTYPE_F32, &o);
    rig_add(&none, 2, sb, 0, CSP_DTYPE_F32, NULL);
    /* The window: the last 3 steps up to and including each event. */
    static const int64_t events[] = {10, 20, 30, 40};
    for (int64_t step = 0; step <= 45; step++) {
        int64_t next = -1;
        for (int i = 3; i >= 0; i--)
            if (events[i] >= step)
                next = events[i];
        int32_t f = 7, f0 = 7, fn = 7;
        ck_assert_int_eq(csp_pruner_wants_observe(g.p, step, &f), CSP_OK);
        ck_assert_int_eq(csp_pruner_wants_observe(g0.p, step, &f0), CSP_OK);
        ck_assert_int_eq(csp_pruner_wants_observe(none.p, step, &fn), CSP_OK);
        ck_assert_int_eq(f, next >= 0 && next - step < 3);
        ck_assert_int_eq(f0, next >= 0);
        ck_assert_int_eq(fn, 0);
    }
    /* observe == X^T X / N (+ eps I), through the handle. */
    csp_sensing *h = NULL;
    ck_assert_int_eq(csp_pruner_sensing(g.p, A->index, &h), CSP_OK);
    ck_assert_int_eq(csp_sensing_kind(h), CSP_SENSING_ACTIVATIONS);
    double S[12 * 12] = {0}, SA[12 * 12] = {0}; /* sum |x_a x_c| */
    float x[300 * 12];
    int64_t N = 0;
    static const int64_t batch[] = {5, 0, 300, 1};
    for (int k = 0; k < 4; k++) {
        for (int64_t i = 0; i < batch[k] * 12; i++)
            x[i] = (float)(test_rng_normal(&g.rng) + 0.3);
        ck_assert_status(g.ctx, csp_pruner_observe(g.p, A->index, x, batch[k], 12), CSP_OK);
        for (int64_t r = 0; r < batch[k]; r++)
            for (int a = 0; a < 12; a++)
                for (int c = 0; c < 12; c++) {
                    S[a * 12 + c] += (double)x[r * 12 + a] * (double)x[r * 12 + c];
                    SA[a * 12 + c] += fabs((double)x[r * 12 + a] * (double)x[r * 12 + c]);
                }
        N += batch[k];
    }
    double acc[12 * 12 + 1], G[12 * 12], trace = 0.0;
    ck_assert_int_eq(csp_sensing_accumulator_len(h), 145);
    ck_assert_int_eq(csp_sensing_read_accumulator(h, acc, 145), CSP_OK);
    ck_assert(acc[144] == (double)N);
    for (int i = 0; i < 144; i++)
        /* float32 sums over chunks of <= 128 rows (csp_sensing_observe()). */
        REQUIRE(fabs(acc[i] - S[i]) <= 128 * 0x1p-24 * SA[i] + 1e-12 * fabs(S[i]),
                "S[%d] = %.17g, ref %.17g", i, acc[i], S[i]);
    ck_assert_int_eq(csp_sensing_gram(h, 0, 0, G, 12), CSP_OK);
    /* G from the accumulator as held. */
    for (int a = 0; a < 12; a++)
        trace += acc[a * 13] / (double)N;
    for (int i = 0; i < 144; i++) {
        double want = acc[i] / (double)N + (i % 13 == 0 ? 0.01 * trace / 12.0 : 0.0);
        REQUIRE(fabs(G[i] - want) <= 1e-12 * (1.0 + fabs(want)), "G[%d]", i);
    }
    csp_tensor_stats ts;
    csp_tensor_stats_init(&ts, sizeof ts);
    ck_assert_int_eq(csp_pruner_tensor_stats(g.p, A->index, &ts), CSP_OK);
    ck_assert_int_eq(ts.observed_rows, N);
    ck_assert_int_eq(ts.sensing, CSP_SENSING_ACTIVATIONS);
    /* Bad observations change nothing. */
    x[7] = NAN;
    ck_assert_status(g.ctx, csp_pruner_observe(g.p, A->index, x, 3, 12), CSP_E_NONFINITE);
    ck_assert_status(g.ctx, csp_pruner_observe(g.p, A->index, x, 3, 11), CSP_E_SHAPE);
    ck_assert_int_eq(csp_sensing_count(h), N);
    for (int64_t step = 0; step < 10; step++)
        ck_assert_int_eq(csp_step(g.p, step), CSP_MASKED);
    ck_assert_int_eq(csp_step(g.p, 10), CSP_PRUNED);
    ck_assert_int_eq(csp_sensing_count(h), 0); /* reset after the event */
    /* An event without observations: refused, nothing touched; then fine. */
    rig_update(&g);
    raw r;
    raw_take(&r, &g);
    ck_assert_status(g.ctx, csp_step(g.p, 20), CSP_E_STATE);
    ck_assert(strstr(csp_context_last_error(g.ctx), "csp_pruner_observe") != NULL);
    raw_same(&r, &g);
    ck_assert_int_eq(csp_pruner_tensor_stats(g.p, A->index, &ts), CSP_OK);
    ck_assert_int_eq(ts.events, 1);
    for (int64_t i = 0; i < 4 * 12; i++)
        x[i] = (float)test_rng_normal(&g.rng);
    ck_assert_status(g.ctx, csp_pruner_observe(g.p, A->index, x, 4, 12), CSP_OK);
    ck_assert_status(g.ctx, csp_step(g.p, 20), CSP_PRUNED);
    ck_assert_int_eq(csp_pruner_tensor_stats(g.p, A->index, &ts), CSP_OK);
    ck_assert_int_eq(ts.events, 2);
    rig_free(&g);
    rig_free(&g0);
    rig_free(&none);
}
END_TEST

/* ---- 7. data-parallel replicas in threads -------------------------------------------- */

#define DP_STEPS 61
typedef struct {
    uint64_t seed;
    int replica, allreduce;
    pthread_barrier_t *bar;
    double **slots; /* per replica, one accumulator each */
    uint64_t digest[DP_STEPS];
    uint64_t wsum;
    int failed;
    char err[CSP_ERROR_MAX + 64];
} replica_arg;

static void *replica_main(void *argp) {
    replica_arg *arg = argp;
    csp_context *ctx = NULL;
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = arg->seed;
    co.num_threads = 1 + arg->replica; /* results never depend on it */
    csp_context_create(&ctx, &co);
    csp_schedule_options so = cubic_opts(0, 50, 10, 0.8);
    csp_schedule *sched = NULL;
    csp_schedule_create(&sched, ctx, &so);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    csp_pruner *p = NULL;
    csp_pruner_create(&p, ctx, sched, &po);
    static const int64_t shapes[3][2] = {{24, 40}, {16, 20}, {150, 0}};
    static const int32_t kinds[3] = {CSP_SENSING_GAUSSIAN, CSP_SENSING_ACTIVATIONS,
                                     CSP_SENSING_RADEMACHER};
    static const int32_t solvers[3] = {CSP_SOLVER_OMP, CSP_SOLVER_FISTA, CSP_SOLVER_OMP};
    static const int32_t corr[3] = {CSP_CORRECTION_NONE, CSP_CORRECTION_FULL,
                                    CSP_CORRECTION_BLEND};
    float *w[3];
    int64_t numel[3];
    csp_tensor *t[3];
    test_rng data, obs;
    test_rng_init(&data, arg->seed);
    test_rng_init(&obs, arg->seed * 31 + (arg->allreduce ? (uint64_t)arg->replica : 0));
    for (int i = 0; i < 3; i++) {
        int32_t rank = shapes[i][1] == 0 ? 1 : 2;
        numel[i] = shapes[i][0] * (rank == 2 ? shapes[i][1] : 1);
        w[i] = malloc((size_t)numel[i] * sizeof(float));
        for (int64_t f = 0; f < numel[i]; f++)
            w[i][f] = (float)test_rng_normal(&data);
        csp_tensor_create(&t[i], ctx, w[i], CSP_DTYPE_F32, rank, shapes[i], 0, NULL);
        csp_pruner_tensor_options o;
        csp_pruner_tensor_options_init(&o, sizeof o, p);
        o.sensing.kind = kinds[i];
        o.solver.method = solvers[i];
        o.correction = corr[i];
        o.block_size = 40;
        if (csp_pruner_add_tensor(p, t[i], &o, NULL) != CSP_OK && !arg->failed) {
            arg->failed = 1;
            snprintf(arg->err, sizeof arg->err, "add: %s", csp_context_last_error(ctx));
        }
    }
    csp_sensing *h = NULL;
    csp_pruner_sensing(p, 1, &h);
    int64_t len = csp_sensing_accumulator_len(h);
    float x[8 * 20];
    for (int64_t step = 0; step < DP_STEPS; step++) {
        for (int i = 0; i < 3; i++)
            for (int64_t f = 0; f < numel[i]; f++)
                w[i][f] += (float)(0.05 * test_rng_normal(&data));
        for (int i = 0; i < 8 * 20; i++)
            x[i] = (float)test_rng_normal(&obs);
        csp_pruner_observe(p, 1, x, 8, 20);
        int32_t is_event = 0;
        csp_schedule_is_event(sched, step, &is_event);
        if (arg->allreduce && is_event) {
            /* The all-reduce a data-parallel host does before an event. */
            csp_sensing_read_accumulator(h, arg->slots[arg->replica], len);
            pthread_barrier_wait(arg->bar);
            double *sum = malloc((size_t)len * sizeof *sum);
            for (int64_t i = 0; i < len; i++)
                sum[i] = arg->slots[0][i] + arg->slots[1][i];
            pthread_barrier_wait(arg->bar);
            if (csp_sensing_write_accumulator(h, sum, len) != CSP_OK && !arg->failed) {
                arg->failed = 1;
                snprintf(arg->err, sizeof arg->err, "write: %s", csp_context_last_error(ctx));
            }
            free(sum);
        }
        csp_status st = csp_step(p, step);
        if (st < 0 && !arg->failed) {
            arg->failed = 1;
            snprintf(arg->err, sizeof arg->err, "step %lld: %s", (long long)step,
                     csp_context_last_error(ctx));
        }
        csp_pruner_digest(p, &arg->digest[step]);
    }
    uint64_t hsh = 0xcbf29ce484222325ULL;
    for (int i = 0; i < 3; i++) {
        const unsigned char *b = (const unsigned char *)w[i];
        for (size_t q = 0; q < (size_t)numel[i] * sizeof(float); q++)
            hsh = (hsh ^ b[q]) * 0x100000001b3ULL;
        csp_tensor_free(t[i]);
        free(w[i]);
    }
    arg->wsum = hsh;
    csp_pruner_free(p);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    return NULL;
}

static void run_replicas(uint64_t seed, int allreduce) {
    pthread_barrier_t bar;
    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
    double *slots[2] = {calloc(401, sizeof(double)), calloc(401, sizeof(double))};
    replica_arg args[2];
    pthread_t tid[2];
    for (int k = 0; k < 2; k++) {
        memset(&args[k], 0, sizeof args[k]);
        args[k].seed = seed;
        args[k].replica = k;
        args[k].allreduce = allreduce;
        args[k].bar = &bar;
        args[k].slots = slots;
        ck_assert_int_eq(pthread_create(&tid[k], NULL, replica_main, &args[k]), 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(tid[k], NULL);
    for (int k = 0; k < 2; k++)
        ck_assert_msg(!args[k].failed, "replica %d: %s", k, args[k].err);
    for (int64_t step = 0; step < DP_STEPS; step++)
        REQUIRE(args[0].digest[step] == args[1].digest[step], "step %lld: digests differ",
                (long long)step);
    ck_assert_uint_eq(args[0].wsum, args[1].wsum);
    ck_assert_uint_ne(args[0].digest[0], args[0].digest[DP_STEPS - 1]); /* it pruned */
    pthread_barrier_destroy(&bar);
    free(slots[0]);
    free(slots[1]);
}

/* Two replicas, own contexts with the same seed and thread counts 1 and 2,
 * the same weights: identical observations, or different ones all-reduced
 * before each event, give the same masks (digest) and weights. */
START_TEST(test_data_parallel_threads) {
    uint64_t seed = csp_test_seed() + 7;
    run_replicas(seed, 0);
    run_replicas(seed, 1);
}
END_TEST

/* ---- 8. the between-event shrink ------------------------------------------------------- */

typedef struct {
    double mag;
    int64_t idx;
} item;

static int cmp_item(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->mag != y->mag)
        return x->mag > y->mag ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Expected weights after a shrink step (pre = before, masked). */
static void shrink_ref(const ten *t, const uint8_t *mask, const double *pre, double *out,
                       double ts, double tau, double progress) {
    int64_t n = t->unit;
    item *v = malloc((size_t)n * sizeof *v);
    memcpy(out, pre, (size_t)t->numel * sizeof *out);
    for (int64_t u = 0; u < units(t); u++) {
        int64_t L = unit_len(t, u), cnt = 0;
        for (int64_t c = 0; c < L; c++)
            if (mask[u * n + c]) {
                v[cnt].mag = fabs(pre[u * n + c]);
                v[cnt++].idx = u * n + c;
            }
        int64_t keep = L - zeros_for(ts, L);
        if (keep >= cnt)
            continue;
        qsort(v, (size_t)cnt, sizeof *v, cmp_item);
        double cut = keep > 0 ? v[keep - 1].mag : v[0].mag;
        double thr = tau * progress * cut;
        for (int64_t q = keep; q < cnt; q++) {
            double x = pre[v[q].idx], a = fabs(x) - thr;
            double y = a > 0.0 ? copysign(a, x) : 0.0;
            out[v[q].idx] = t->dtype == CSP_DTYPE_F64 ? y : (double)(float)y;
        }
    }
    free(v);
}

START_TEST(test_shrink) {
    uint64_t seed = csp_test_seed() + 8;
    csp_schedule_options so = cubic_opts(5, 45, 10, 0.8);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    rig g;
    rig_init(&g, 1, seed, seed, &so, &po);
    rig_x(&g, CSP_X_SHRINK, 0.5);
    static const int64_t s0[2] = {10, 40}, s1[2] = {6, 30}, s2[1] = {100}, s3[2] = {5, 20};
    rig_add(&g, 2, s0, 0, CSP_DTYPE_F32, NULL);
    rig_add(&g, 2, s1, 3, CSP_DTYPE_F64, NULL);
    csp_pruner_tensor_options o = topts(&g, 0);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    o.block_size = 16;
    rig_x(&g, CSP_X_SHRINK, 0.3);
    rig_add(&g, 1, s2, 0, CSP_DTYPE_F32, &o); /* CSP blocks, its own tau */
    o = topts(&g, 0);
    rig_x(&g, CSP_X_SHRINK, 0.0); /* off for this one */
    rig_add(&g, 2, s3, 0, CSP_DTYPE_F32, &o);
    static const double tau[4] = {0.5, 0.5, 0.3, 0.0};
    int shrunk = 0;
    for (int64_t step = 0; step <= 55; step++) {
        rig_update(&g);
        int64_t e = -1, last = -1, next = -1;
        csp_schedule_last_event(g.sched, step, &e);
        csp_pruner_last_step(g.p, &last);
        csp_schedule_next_event(g.sched, step, &next);
        bool event = e >= 0 && e > last;
        snap sn[4];
        for (int i = 0; i < 4; i++)
            snap_take(&sn[i], &g, &g.t[i]);
        ck_assert_int_eq(csp_step(g.p, step), event ? CSP_PRUNED : CSP_MASKED);
        if (event) {
            for (int i = 0; i < 4; i++)
                snap_free(&sn[i]);
            continue;
        }
        bool active = e >= 0 && next >= 0; /* after the first event, before the last */
        double s_next = 0.0, progress = 0.0;
        if (active) {
            csp_schedule_target(g.sched, next, &s_next);
            progress = (double)(step - e) / (double)(next - e);
        }
        for (int i = 0; i < 4; i++) {
            ten *t = &g.t[i];
            double *pre = malloc((size_t)t->numel * sizeof *pre),
                   *want = malloc((size_t)t->numel * sizeof *want);
            for (int64_t f = 0; f < t->numel; f++)
                pre[f] = sn[i].mask[f] ? sn[i].w[f] : 0.0;
            if (active && tau[i] > 0)
                shrink_ref(t, sn[i].mask, pre, want, s_next, tau[i], progress);
            else
                memcpy(want, pre, (size_t)t->numel * sizeof *want);
            for (int64_t f = 0; f < t->numel; f++) {
                double got = tget(t, t->w, f);
                REQUIRE(got == want[f], "step %lld tensor %d weight %lld: %.9g, want %.9g",
                        (long long)step, i, (long long)f, got, want[f]);
                shrunk += got != pre[f];
            }
            free(pre);
            free(want);
        }
        /* The same step again: no second shrink. */
        void *copy = malloc(ten_bytes(&g.t[0]));
        memcpy(copy, g.t[0].w, ten_bytes(&g.t[0]));
        ck_assert_int_eq(csp_step(g.p, step), CSP_MASKED);
        ck_assert_int_eq(memcmp(copy, g.t[0].w, ten_bytes(&g.t[0])), 0);
        free(copy);
        for (int i = 0; i < 4; i++)
            snap_free(&sn[i]);
    }
    ck_assert_int_gt(shrunk, 100);
    rig_free(&g);
}
END_TEST

/* ---- 9. the step callback ------------------------------------------------------------- */

typedef struct {
    int calls, fail_at_step;
    int64_t steps[64];
    csp_status status[64];
    int32_t event[64];
    csp_status reentry;
    int64_t nnz_seen;
} cb_log;

static csp_status step_cb(void *user, const csp_pruner *p, int64_t step, csp_status status,
                          int32_t event) {
    cb_log *l = user;
    if (l->calls < 64) {
        l->steps[l->calls] = step;
        l->status[l->calls] = status;
        l->event[l->calls] = event;
    }
    l->calls++;
    l->reentry = csp_step((csp_pruner *)(uintptr_t)p, step + 1);
    csp_pruner_nnz(p, -1, &l->nnz_seen);
    return step == l->fail_at_step ? -99 : CSP_OK;
}

START_TEST(test_callback) {
    uint64_t seed = csp_test_seed() + 9;
    csp_schedule_options so = cubic_opts(0, 20, 5, 0.7);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    po.sensing.kind = CSP_SENSING_GAUSSIAN;
    rig g;
    rig_init(&g, 1, seed, seed, &so, &po);
    static const int64_t s0[2] = {8, 20};
    rig_add(&g, 2, s0, 0, CSP_DTYPE_F32, NULL);
    cb_log l;
    memset(&l, 0, sizeof l);
    l.fail_at_step = 10;
    ck_assert_int_eq(csp_pruner_set_callback(NULL, step_cb, &l), CSP_E_NULL);
    ck_assert_int_eq(csp_pruner_set_callback(g.p, step_cb, &l), CSP_OK);
    for (int64_t step = 0; step <= 12; step++) {
        rig_update(&g);
        csp_status st = csp_step(g.p, step);
        if (step == 10) {
            /* The callback failed: CALLBACK, but the event stands. */
            ck_assert_int_eq(st, CSP_E_CALLBACK);
            int64_t last;
            csp_pruner_last_step(g.p, &last);
            ck_assert_int_eq(last, 10);
            csp_tensor_stats ts;
            csp_tensor_stats_init(&ts, sizeof ts);
            csp_pruner_tensor_stats(g.p, 0, &ts);
            ck_assert_int_eq(ts.last_event, 10);
            ck_assert_int_eq(csp_step(g.p, 10), CSP_E_CALLBACK); /* re-masks, callback again */
        } else {
            ck_assert_int_eq(st, step % 5 == 0 ? CSP_PRUNED : CSP_MASKED);
        }
        ck_assert_int_eq(l.reentry, CSP_E_STATE);
    }
    ck_assert_status(g.ctx, csp_step(g.p, -3), CSP_E_RANGE);
    ck_assert_int_eq(l.calls, 15);
    for (int i = 0; i < 15; i++) {
        int64_t step = i <= 10 ? i : i <= 13 ? i - 1 : -3;
        ck_assert_int_eq(l.steps[i], step);
        csp_status want = step == -3 ? CSP_E_RANGE : step % 5 == 0 && i != 11 ? CSP_PRUNED
                                                                              : CSP_MASKED;
        ck_assert_int_eq(l.status[i], want);
        ck_assert_int_eq(l.event[i], want == CSP_PRUNED);
    }
    int64_t nnz;
    csp_pruner_nnz(g.p, -1, &nnz);
    ck_assert_int_eq(l.nnz_seen, nnz);
    csp_step_stats ps;
    csp_step_stats_init(&ps, sizeof ps);
    csp_pruner_step_stats(g.p, &ps);
    ck_assert_int_eq(ps.steps, 14); /* successful steps, whatever the callback said */
    ck_assert_int_eq(ps.events, 3);
    ck_assert_int_eq(csp_pruner_set_callback(g.p, NULL, NULL), CSP_OK);
    ck_assert_int_eq(csp_step(g.p, 13), CSP_MASKED);
    ck_assert_int_eq(l.calls, 15);
    rig_free(&g);
}
END_TEST

/* ---- 10. bad input ------------------------------------------------------------------- */

/* An invalid value of an option and the status it must get. */
struct bad_value {
    double value;
    csp_status want;
};

/* Values outside option @p info's range (from the library's own table, so
 * that no test hard-codes "the next enum value is invalid"). */
static int bad_values(const csp_option_info *info, struct bad_value *out) {
    int n = 0;
    csp_status range = info->type == CSP_OPTION_ENUM ? CSP_E_ENUM : CSP_E_RANGE;
    if (info->flags & CSP_OPTION_FIXED) {
        out[n++] = (struct bad_value){info->default_value + 1.0, CSP_E_INVALID};
        return n;
    }
    if (info->type == CSP_OPTION_UINT64)
        return 0;
    if (info->type == CSP_OPTION_DOUBLE) {
        out[n++] = (struct bad_value){NAN, range};
        if (info->flags & CSP_OPTION_MIN_OPEN)
            out[n++] = (struct bad_value){info->min, range};
        else
            out[n++] = (struct bad_value){info->min - 0.5 - fabs(info->min), range};
        if (info->flags & CSP_OPTION_MAX_OPEN)
            out[n++] = (struct bad_value){info->max, range};
        else if (isfinite(info->max) && info->max < 1e300)
            out[n++] = (struct bad_value){info->max * 1.5 + 1.0, range};
        else
            out[n++] = (struct bad_value){INFINITY, range};
        return n;
    }
    out[n++] = (struct bad_value){info->min - 1.0, range};
    if (info->max < 2147483647.0)
        out[n++] = (struct bad_value){info->max + 1.0, range};
    return n;
}

/* Store @p v as option type @p type at byte @p off of @p base. */
static void set_option(void *base, int64_t off, int32_t type, double v) {
    unsigned char *at = (unsigned char *)base + off;
    if (type == CSP_OPTION_DOUBLE) {
        memcpy(at, &v, sizeof v);
    } else if (type == CSP_OPTION_INT64 || type == CSP_OPTION_UINT64) {
        int64_t x = (int64_t)v;
        memcpy(at, &x, sizeof x);
    } else {
        int32_t x = (int32_t)v;
        memcpy(at, &x, sizeof x);
    }
}

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(1, 3), *other = test_context(1, 3);
    csp_schedule_options so = cubic_opts(0, 100, 10, 0.9);
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &so), CSP_OK);
    csp_pruner *p = NULL;
    /* Pruner options: every option of the library's table, one invalid value
     * at a time, must be refused with the status its type calls for. */
    struct bad_value values[8];
    int32_t count = csp_pruner_option_count();
    ck_assert_int_gt(count, 20);
    int tried = 0;
    for (int32_t k = 0; k < count; k++) {
        csp_option_info info;
        csp_option_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_pruner_option_info(k, &info), CSP_OK);
        if (info.pruner_offset < 0)
            continue;
        int nv = bad_values(&info, values);
        for (int v = 0; v < nv; v++) {
            csp_pruner_options po;
            csp_pruner_options_init(&po, sizeof po);
            set_option(&po, info.pruner_offset, info.type, values[v].value);
            p = (csp_pruner *)&ctx;
            csp_status st = csp_pruner_create(&p, ctx, s, &po);
            ck_assert_msg(st == values[v].want, "%s = %g: got %s, want %s (%s)", info.name,
                          values[v].value, csp_status_name(st), csp_status_name(values[v].want),
                          csp_context_last_error(ctx));
            ck_assert_ptr_null(p);
            ck_assert(strstr(csp_context_last_error(ctx), info.name) != NULL);
            tried++;
        }
    }
    ck_assert_int_ge(tried, 30);
    {
        csp_pruner_options po;
        csp_pruner_options_init(&po, sizeof po);
        po.nm_n = 4; /* N:M needs N < M */
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_RANGE);
        csp_pruner_options_init(&po, sizeof po);
        po.solver.reserved[3] = 1;
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_RESERVED);
        csp_pruner_options_init(&po, sizeof po);
        po.sensing.reserved0 = 1;
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_RESERVED);
        csp_pruner_options_init(&po, sizeof po);
        po.reserved0 = 1;
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, &po), CSP_E_RESERVED);
    }
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, s, NULL), CSP_OK);

    float buf[8][6 * 40];
    memset(buf, 0, sizeof buf);
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 6 * 40; i++)
            buf[k][i] = (float)(i % 17) - 8.0f + 0.01f * (float)k;
    int64_t shape[2] = {6, 40}, wide[2] = {1, CSP_SENSING_MAX_N + 1};
    csp_tensor *w[8], *foreign = NULL, *big = NULL;
    for (int k = 0; k < 8; k++)
        ck_assert_int_eq(csp_tensor_create(&w[k], ctx, buf[k], CSP_DTYPE_F32, 2, shape, 0, NULL),
                         CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&foreign, other, buf[7], CSP_DTYPE_F32, 2, shape, 0, NULL),
                     CSP_OK);
    float *wide_buf = calloc((size_t)wide[1], sizeof(float));
    ck_assert_int_eq(csp_tensor_create(&big, ctx, wide_buf, CSP_DTYPE_F32, 2, wide, 0, NULL),
                     CSP_OK);

    /* Tensor options: the same, through csp_pruner_add_tensor(); the
     * experimental parameters through csp_pruner_set_experimental(). */
    tried = 0;
    for (int32_t k = 0; k < count; k++) {
        csp_option_info info;
        csp_option_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_pruner_option_info(k, &info), CSP_OK);
        int nv = bad_values(&info, values);
        for (int v = 0; v < nv; v++) {
            if (info.flags & CSP_OPTION_EXPERIMENTAL) {
                ck_assert_int_eq(csp_pruner_set_experimental(p, -1, info.param, values[v].value),
                                 values[v].want);
                tried++;
                continue;
            }
            if (info.tensor_offset < 0)
                continue;
            csp_pruner_tensor_options to;
            ck_assert_int_eq(csp_pruner_tensor_options_init(&to, sizeof to, p), CSP_OK);
            to.granularity = CSP_GRANULARITY_ROW;
            set_option(&to, info.tensor_offset, info.type, values[v].value);
            int32_t idx = 7;
            csp_status st = csp_pruner_add_tensor(p, w[0], &to, &idx);
            ck_assert_msg(st == values[v].want, "tensor %s = %g: got %s, want %s (%s)", info.name,
                          values[v].value, csp_status_name(st), csp_status_name(values[v].want),
                          csp_context_last_error(ctx));
            ck_assert_int_eq(idx, -1);
            tried++;
        }
    }
    ck_assert_int_ge(tried, 30);
    /* CSP needs ROW or N:M granularity (N:M: tests/unit/test_csp_nm.c). */
    static const int32_t grans[2] = {CSP_GRANULARITY_TENSOR, CSP_GRANULARITY_GLOBAL};
    for (int k = 0; k < 2; k++) {
        csp_pruner_tensor_options to;
        csp_pruner_tensor_options_init(&to, sizeof to, p);
        to.granularity = grans[k];
        to.sensing.kind = CSP_SENSING_GAUSSIAN + k;
        ck_assert_status(ctx, csp_pruner_add_tensor(p, w[0], &to, NULL), CSP_E_UNSUPPORTED);
    }
    {
        csp_pruner_tensor_options to;
        ck_assert_int_eq(csp_pruner_tensor_options_init(&to, sizeof to, NULL), CSP_E_NULL);
        csp_pruner_tensor_options_init(&to, sizeof to, p);
        to.final_sparsity = -0.25;
        ck_assert_status(ctx, csp_pruner_add_tensor(p, w[0], &to, NULL), CSP_E_RANGE);
    }
    ck_assert_int_eq(csp_pruner_num_tensors(p), 0);
    csp_pruner_tensor_options o;
    csp_pruner_tensor_options_init(&o, sizeof o, p);
    o.granularity = CSP_GRANULARITY_ROW;
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, big, &o, NULL), CSP_E_SHAPE);
    /* Excluded tensors ignore the CSP options. */
    o.exclude = 1;
    o.granularity = CSP_GRANULARITY_TENSOR;
    int32_t i_ex = -1, i_gmp = -1, i_act = -1, i_gram = -1, i_tensor = -1, i_g = -1;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[0], &o, &i_ex), CSP_OK);
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[1], NULL, &i_tensor), CSP_OK);
    csp_pruner_tensor_options_init(&o, sizeof o, p);
    o.granularity = CSP_GRANULARITY_ROW;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[2], &o, &i_gmp), CSP_OK);
    o.sensing.kind = CSP_SENSING_ACTIVATIONS;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[3], &o, &i_act), CSP_OK);
    o.sensing.kind = CSP_SENSING_GRAM;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[4], &o, &i_gram), CSP_OK);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    ck_assert_status(ctx, csp_pruner_add_tensor(p, w[5], &o, &i_g), CSP_OK);

    /* csp_pruner_sensing */
    csp_sensing *h = (csp_sensing *)&ctx;
    ck_assert_int_eq(csp_pruner_sensing(NULL, 0, &h), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_sensing(p, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_sensing(p, 99, &h), CSP_E_RANGE);
    ck_assert_ptr_null(h);
    ck_assert_status(ctx, csp_pruner_sensing(p, -1, &h), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_sensing(p, i_ex, &h), CSP_OK);
    ck_assert_ptr_null(h);
    ck_assert_status(ctx, csp_pruner_sensing(p, i_gmp, &h), CSP_OK);
    ck_assert_ptr_null(h);
    ck_assert_status(ctx, csp_pruner_sensing(p, i_g, &h), CSP_OK);
    ck_assert_int_eq(csp_sensing_kind(h), CSP_SENSING_GAUSSIAN);
    ck_assert_int_eq(csp_sensing_n(h), 40);
    ck_assert_int_eq(csp_sensing_m(h), 20); /* rho 0.5 */

    /* csp_pruner_set_sensing */
    csp_sensing_options sopt;
    csp_sensing_options_init(&sopt, sizeof sopt);
    sopt.kind = CSP_SENSING_ACTIVATIONS;
    sopt.n = 40;
    csp_sensing *mine = NULL, *theirs = NULL, *short_ = NULL;
    ck_assert_int_eq(csp_sensing_create(&mine, ctx, &sopt), CSP_OK);
    ck_assert_int_eq(csp_sensing_create(&theirs, other, &sopt), CSP_OK);
    sopt.n = 39;
    ck_assert_int_eq(csp_sensing_create(&short_, ctx, &sopt), CSP_OK);
    ck_assert_int_eq(csp_pruner_set_sensing(NULL, 0, mine), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, 99, mine), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_ex, mine), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_tensor, mine), CSP_E_UNSUPPORTED);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_gmp, short_), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_gmp, theirs), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_gmp, NULL), CSP_OK); /* a no-op */
    ck_assert_status(ctx, csp_pruner_set_sensing(p, i_gmp, mine), CSP_OK);
    ck_assert_status(ctx, csp_pruner_sensing(p, i_gmp, &h), CSP_OK);
    ck_assert_ptr_eq(h, mine);

    /* csp_pruner_observe */
    float x[4 * 40];
    for (int i = 0; i < 4 * 40; i++)
        x[i] = (float)(i % 5);
    ck_assert_int_eq(csp_pruner_observe(NULL, i_act, x, 4, 40), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_observe(p, 99, x, 4, 40), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_observe(p, i_tensor, x, 4, 40), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_observe(p, i_g, x, 4, 40), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_observe(p, i_ex, x, 4, 40), CSP_E_INVALID);
    ck_assert_status(ctx, csp_pruner_observe(p, i_act, x, 4, 39), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_observe(p, i_act, x, -1, 40), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_pruner_observe(p, i_act, NULL, 4, 40), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_observe(p, i_act, NULL, 0, 40), CSP_OK);
    ck_assert_status(ctx, csp_pruner_observe(p, i_gmp, x, 4, 40), CSP_OK); /* the attached */
    ck_assert_int_eq(csp_sensing_count(mine), 4);

    /* csp_pruner_wants_observe */
    int32_t flag = 5;
    ck_assert_int_eq(csp_pruner_wants_observe(NULL, 0, &flag), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_wants_observe(p, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_wants_observe(p, -1, &flag), CSP_E_RANGE);
    ck_assert_int_eq(flag, 0);
    ck_assert_status(ctx, csp_pruner_wants_observe(p, 0, &flag), CSP_OK);
    ck_assert_int_eq(flag, 1);

    /* stats */
    csp_step_stats ps;
    ck_assert_int_eq(csp_step_stats_init(NULL, sizeof ps), CSP_E_NULL);
    ck_assert_int_eq(csp_step_stats_init(&ps, 7), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_step_stats_init(&ps, sizeof ps), CSP_OK);
    ck_assert_int_eq(csp_pruner_step_stats(NULL, &ps), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_step_stats(p, NULL), CSP_E_NULL);
    ps.struct_size = 12;
    ck_assert_status(ctx, csp_pruner_step_stats(p, &ps), CSP_E_STRUCT_SIZE);
    struct {
        csp_step_stats s;
        char extra[8];
    } bigger;
    memset(&bigger, 0, sizeof bigger);
    ck_assert_int_eq(csp_step_stats_init(&bigger.s, sizeof bigger), CSP_OK);
    bigger.extra[3] = 1; /* a newer header's field: the library zeroes what it does not know */
    ck_assert_status(ctx, csp_pruner_step_stats(p, &bigger.s), CSP_OK);
    ck_assert_int_eq(bigger.extra[3], 0);
    ck_assert_uint_eq(bigger.s.struct_size, sizeof bigger);
    ck_assert_int_eq(bigger.s.steps, 0);
    ck_assert_int_eq(bigger.s.last_event, -1);

    /* A GRAM tensor whose Gram was never set: the event is refused, nothing
     * touched; then the Gram arrives and the event goes through. */
    ck_assert_status(ctx, csp_pruner_observe(p, i_act, x, 4, 40), CSP_OK);
    float copy[8][6 * 40];
    memcpy(copy, buf, sizeof buf);
    ck_assert_status(ctx, csp_step(p, 10), CSP_E_STATE);
    ck_assert(strstr(csp_context_last_error(ctx), "csp_sensing_set_gram") != NULL);
    ck_assert_int_eq(memcmp(copy, buf, sizeof buf), 0);
    ck_assert_int_eq(csp_sensing_count(mine), 4);
    ck_assert_status(ctx, csp_pruner_sensing(p, i_gram, &h), CSP_OK);
    double G[40 * 40] = {0};
    for (int i = 0; i < 40; i++)
        G[i * 41] = 1.0 + 0.1 * i;
    ck_assert_int_eq(csp_sensing_set_gram(h, G, 40), CSP_OK);
    ck_assert_status(ctx, csp_step(p, 10), CSP_PRUNED);
    ck_assert_int_eq(csp_sensing_count(mine), 4); /* attached: never reset by the pruner */
    int64_t nnz = -1;
    ck_assert_int_eq(csp_pruner_nnz(p, i_gram, &nnz), CSP_OK);
    ck_assert_int_lt(nnz, 240);

    csp_pruner_free(p);
    csp_sensing_free(mine);
    csp_sensing_free(theirs);
    csp_sensing_free(short_);
    for (int k = 0; k < 8; k++)
        csp_tensor_free(w[k]);
    csp_tensor_free(foreign);
    csp_tensor_free(big);
    free(wide_buf);
    csp_schedule_free(s);
    csp_context_free(other);
    csp_context_free(ctx);
}
END_TEST

/* ---- 11. NaN, out-of-range and failures at a CSP event touch nothing ------------------ */

/* #12 "construction-time errors": a tensor whose operator will not be ready
 * for the coming event (activations never observed, user Gram never set)
 * gets one CSP_LOG_WARN naming it, at the first non-event step the host
 * should have fed it (the observation window open), not only the event's
 * error. */
typedef struct {
    int warnings;
    char last[CSP_ERROR_MAX];
} warn_log;

static void count_warnings(void *user, int32_t level, const char *message) {
    warn_log *w = user;
    if (level == CSP_LOG_WARN && strstr(message, "will fail unless") != NULL) {
        w->warnings++;
        snprintf(w->last, sizeof w->last, "%s", message);
    }
}

START_TEST(test_warn_unready) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 90);
    enum { R = 6, C = 16 };
    float w[3][R * C], x[4 * C];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < R * C; i++)
            w[k][i] = (float)test_rng_normal(&rng);
    for (int i = 0; i < 4 * C; i++)
        x[i] = (float)test_rng_normal(&rng);
    int64_t shape[2] = {R, C};
    /* mode 0: nothing observed; 1: observed every step; 2: nothing observed,
     * observe_window 3 (the warning waits for the window). */
    for (int mode = 0; mode < 3; mode++) {
        csp_context *ctx = test_context(1, 1);
        warn_log log = {0, ""};
        csp_context_set_log(ctx, count_warnings, &log, CSP_LOG_WARN);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.kind = CSP_SCHEDULE_CONSTANT; /* the event at 10 prunes to 0.5 */
        so.begin_step = 10;
        so.end_step = 30;
        so.frequency = 10;
        so.final_sparsity = 0.5;
        csp_schedule *s = NULL;
        csp_schedule_create(&s, ctx, &so);
        csp_pruner *p = NULL;
        csp_pruner_create(&p, ctx, s, NULL);
        if (mode == 2)
            ck_assert_int_eq(csp_pruner_set_experimental(p, -1, CSP_X_OBSERVE_WINDOW, 3), CSP_OK);
        csp_tensor *t[3];
        const char *names[3] = {"plain", "acts", "gram"};
        const int32_t kinds[3] = {CSP_SENSING_IDENTITY, CSP_SENSING_ACTIVATIONS,
                                  CSP_SENSING_GRAM};
        for (int k = 0; k < 3; k++) {
            csp_tensor_create(&t[k], ctx, w[k], CSP_DTYPE_F32, 2, shape, 0, names[k]);
            csp_pruner_tensor_options to;
            csp_pruner_tensor_options_init(&to, sizeof to, p);
            to.granularity = CSP_GRANULARITY_ROW;
            to.sensing.kind = kinds[k];
            ck_assert_status(ctx, csp_pruner_add_tensor(p, t[k], &to, NULL), CSP_OK);
        }
        /* The user Gram is set: only the activations tensor is unready. */
        csp_sensing *g = NULL;
        csp_sensing_options go;
        csp_sensing_options_init(&go, sizeof go);
        go.kind = CSP_SENSING_GRAM;
        go.n = C;
        ck_assert_status(ctx, csp_sensing_create(&g, ctx, &go), CSP_OK);
        double G[C * C] = {0};
        for (int a = 0; a < C; a++)
            G[a * C + a] = 1.0 + 0.1 * a;
        ck_assert_status(ctx, csp_sensing_set_gram(g, G, C), CSP_OK);
        ck_assert_status(ctx, csp_pruner_set_sensing(p, 2, g), CSP_OK);
        int first = -1;
        for (int64_t step = 0; step < 10; step++) {
            if (mode == 1)
                ck_assert_status(ctx, csp_pruner_observe(p, 1, x, 4, C), CSP_OK);
            ck_assert_status(ctx, csp_step(p, step), CSP_MASKED);
            if (first < 0 && log.warnings > 0)
                first = (int)step;
        }
        if (mode == 1) {
            ck_assert_int_eq(log.warnings, 0);
            ck_assert_status(ctx, csp_step(p, 10), CSP_PRUNED);
        } else {
            ck_assert_int_eq(log.warnings, 1); /* once for the event */
            ck_assert_int_eq(first, mode == 0 ? 0 : 8); /* window 3: steps 8, 9, 10 observe */
            ck_assert_ptr_nonnull(strstr(log.last, "tensor 1 ('acts')"));
            ck_assert_ptr_nonnull(strstr(log.last, "step 10"));
            ck_assert_status(ctx, csp_step(p, 10), CSP_E_STATE);
            ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "'acts'"));
        }
        csp_pruner_free(p);
        csp_sensing_free(g);
        for (int k = 0; k < 3; k++)
            csp_tensor_free(t[k]);
        csp_schedule_free(s);
        csp_context_free(ctx);
    }
}
END_TEST

/* One-shot pruning (docs/guide.md "One-shot pruning"): a constant schedule
 * with begin_step = end_step = t has one event, at t; calibration
 * activations observed before it; afterwards every step only re-applies
 * the masks (fine-tuning keeps the pattern). With the magnitude support and
 * the full refit, the layer-output error over the calibration inputs,
 * ||X (w - x)||^2 (float64 here), is at most magnitude pruning's
 * ||X (w - w_S)||^2: the refit is the least-squares optimum on that
 * support. Activations OMP with the refit is checked the same way against
 * its own support (the error of x is that support's optimum). */
static double output_error(const float *X, int64_t n_obs, const float *w, const float *x,
                           int64_t cols) {
    double e = 0.0;
    for (int64_t r = 0; r < n_obs; r++) {
        double d = 0.0;
        for (int64_t c = 0; c < cols; c++)
            d += (double)X[r * cols + c] * ((double)w[c] - (double)x[c]);
        e += d * d;
    }
    return e;
}

START_TEST(test_one_shot) {
    enum { R = 8, C = 32, NOBS = 96 };
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 95);
    float w[R * C], w0[R * C], X[NOBS * C], mix[C * C];
    for (int i = 0; i < R * C; i++)
        w0[i] = (float)test_rng_normal(&rng);
    /* Correlated inputs: X = Z M, M with a strong common component. */
    for (int i = 0; i < C * C; i++)
        mix[i] = (float)(0.3 * test_rng_normal(&rng) + ((i % C) == (i / C) ? 1.0 : 0.0));
    for (int r = 0; r < NOBS; r++) {
        float z[C];
        for (int c = 0; c < C; c++)
            z[c] = (float)test_rng_normal(&rng);
        for (int c = 0; c < C; c++) {
            double acc = 0.0;
            for (int k = 0; k < C; k++)
                acc += (double)z[k] * (double)mix[k * C + c];
            X[r * C + c] = (float)acc;
        }
    }
    int64_t shape[2] = {R, C};
    const double s = 0.75;
    const int64_t zeros = (int64_t)nearbyint(s * C);
    for (int variant = 0; variant < 2; variant++) {
        memcpy(w, w0, sizeof w);
        csp_context *ctx = test_context(1, 1);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.kind = CSP_SCHEDULE_CONSTANT;
        so.final_sparsity = s;
        so.begin_step = 0;
        so.end_step = 0;
        so.frequency = 1;
        csp_schedule *sch = NULL;
        ck_assert_status(ctx, csp_schedule_create(&sch, ctx, &so), CSP_OK);
        int64_t next = 0;
        csp_schedule_next_event(sch, 0, &next);
        ck_assert_int_eq(next, -1); /* the only event is step 0 */
        csp_pruner_options po;
        csp_pruner_options_init(&po, sizeof po);
        po.granularity = CSP_GRANULARITY_ROW;
        po.sensing.kind = CSP_SENSING_ACTIVATIONS;
        po.correction = CSP_CORRECTION_FULL;
        csp_pruner *p = NULL;
        ck_assert_status(ctx, csp_pruner_create(&p, ctx, sch, &po), CSP_OK);
        if (variant == 0)
            ck_assert_int_eq(
                csp_pruner_set_experimental(p, -1, CSP_X_SUPPORT, CSP_SUPPORT_MAGNITUDE), CSP_OK);
        csp_tensor *t = NULL;
        csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, "layer");
        ck_assert_status(ctx, csp_pruner_add_tensor(p, t, NULL, NULL), CSP_OK);
        for (int b = 0; b < NOBS; b += 32) /* calibration batches */
            ck_assert_status(ctx, csp_pruner_observe(p, 0, X + b * C, 32, C), CSP_OK);
        ck_assert_status(ctx, csp_step(p, 0), CSP_PRUNED);
        /* Exact row budgets; the error against the magnitude mask's. */
        double err = 0.0, err_mag = 0.0;
        for (int r = 0; r < R; r++) {
            const float *wr = w0 + r * C;
            int64_t z = 0;
            for (int c = 0; c < C; c++)
                z += w[r * C + c] == 0.0f;
            ck_assert_int_eq(z, zeros);
            /* Magnitude: keep the C - zeros largest |w| (no ties in normals). */
            float mag[C];
            for (int c = 0; c < C; c++) {
                int larger = 0;
                for (int k = 0; k < C; k++)
                    larger += fabsf(wr[k]) > fabsf(wr[c]);
                mag[c] = larger < C - zeros ? wr[c] : 0.0f;
            }
            err += output_error(X, NOBS, wr, w + r * C, C);
            err_mag += output_error(X, NOBS, wr, mag, C);
            if (variant == 0) /* the same support as magnitude's */
                for (int c = 0; c < C; c++)
                    ck_assert_int_eq(w[r * C + c] == 0.0f, mag[c] == 0.0f);
        }
        if (variant == 0)
            ck_assert_msg(err <= err_mag * (1.0 + 1e-4), "refit %g > magnitude %g", err, err_mag);
        ck_assert_msg(err < err_mag, "variant %d: %g not below magnitude's %g", variant, err,
                      err_mag);
        /* Fine-tuning: the host moves the weights, the pattern stays. */
        uint64_t d0 = 0, d1 = 0;
        csp_pruner_digest(p, &d0);
        for (int64_t step = 1; step <= 20; step++) {
            for (int i = 0; i < R * C; i++)
                w[i] += 0.01f * (float)test_rng_normal(&rng);
            ck_assert_status(ctx, csp_step(p, step), CSP_MASKED);
        }
        csp_pruner_digest(p, &d1);
        ck_assert_uint_eq(d0, d1);
        int64_t z = 0;
        for (int i = 0; i < R * C; i++)
            z += w[i] == 0.0f;
        ck_assert_int_eq(z, zeros * R);
        csp_step_stats ss;
        csp_step_stats_init(&ss, sizeof ss);
        csp_pruner_step_stats(p, &ss);
        ck_assert_int_eq(ss.events, 1);
        csp_pruner_free(p);
        csp_tensor_free(t);
        csp_schedule_free(sch);
        csp_context_free(ctx);
    }
}
END_TEST

/* #17: the time of csp_pruner_observe() is reported apart from csp_step()'s
 * (tensor and pruner stats), only for calls that succeeded, and survives a
 * checkpoint. */
START_TEST(test_observe_seconds) {
    enum { R = 4, C = 64, NOBS = 256 };
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 97);
    static float w[2][R * C], X[NOBS * C];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < R * C; i++)
            w[k][i] = (float)test_rng_normal(&rng);
    for (int i = 0; i < NOBS * C; i++)
        X[i] = (float)test_rng_normal(&rng);
    int64_t shape[2] = {R, C};
    csp_context *ctx = test_context(1, 1);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = 0.5;
    so.frequency = 5;
    csp_schedule *sch = NULL;
    ck_assert_status(ctx, csp_schedule_create(&sch, ctx, &so), CSP_OK);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    po.sensing.kind = CSP_SENSING_ACTIVATIONS;
    csp_pruner *p = NULL;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, sch, &po), CSP_OK);
    csp_tensor *t[2];
    for (int k = 0; k < 2; k++) {
        csp_tensor_create(&t[k], ctx, w[k], CSP_DTYPE_F32, 2, shape, 0, NULL);
        ck_assert_status(ctx, csp_pruner_add_tensor(p, t[k], NULL, NULL), CSP_OK);
    }
    csp_step_stats ss;
    csp_step_stats_init(&ss, sizeof ss);
    csp_tensor_stats ts[2];
    for (int64_t step = 1; step <= 7; step++) {
        for (int k = 0; k < 2; k++)
            ck_assert_status(ctx, csp_pruner_observe(p, k, X, NOBS, C), CSP_OK);
        ck_assert_int_eq(csp_pruner_step_stats(p, &ss), CSP_OK);
        double before = ss.total_seconds, obs = ss.observe_seconds;
        float bad = NAN; /* a refused call adds nothing */
        float row[C];
        memcpy(row, X, sizeof row);
        row[3] = bad;
        ck_assert_int_eq(csp_pruner_observe(p, 0, row, 1, C), CSP_E_NONFINITE);
        ck_assert_int_eq(csp_pruner_step_stats(p, &ss), CSP_OK);
        ck_assert(ss.observe_seconds == obs && ss.total_seconds == before);
        csp_status st = csp_step(p, step);
        ck_assert(st == CSP_MASKED || st == CSP_PRUNED);
    }
    ck_assert_int_eq(csp_pruner_step_stats(p, &ss), CSP_OK);
    double sum = 0.0;
    for (int k = 0; k < 2; k++) {
        csp_tensor_stats_init(&ts[k], sizeof ts[k]);
        ck_assert_int_eq(csp_pruner_tensor_stats(p, k, &ts[k]), CSP_OK);
        ck_assert(ts[k].observe_seconds > 0.0); /* 14 SYRKs of 256 x 64 */
        sum += ts[k].observe_seconds;
    }
    ck_assert(ss.observe_seconds > 0.0);
    ck_assert_msg(fabs(sum - ss.observe_seconds) <= 1e-12 * ss.observe_seconds + 1e-15,
                  "tensors %.17g, pruner %.17g", sum, ss.observe_seconds);
    /* The checkpoint keeps them. */
    int64_t size = 0;
    csp_pruner_save(p, NULL, 0, &size);
    void *buf = malloc((size_t)size);
    ck_assert_status(ctx, csp_pruner_save(p, buf, size, &size), CSP_OK);
    csp_pruner *q = NULL;
    ck_assert_status(ctx, csp_pruner_create(&q, ctx, sch, &po), CSP_OK);
    for (int k = 0; k < 2; k++)
        ck_assert_status(ctx, csp_pruner_add_tensor(q, t[k], NULL, NULL), CSP_OK);
    ck_assert_status(ctx, csp_pruner_load(q, buf, size), CSP_OK);
    csp_step_stats qs;
    csp_step_stats_init(&qs, sizeof qs);
    csp_pruner_step_stats(q, &qs);
    ck_assert(qs.observe_seconds == ss.observe_seconds);
    csp_tensor_stats qt;
    csp_tensor_stats_init(&qt, sizeof qt);
    csp_pruner_tensor_stats(q, 1, &qt);
    ck_assert(qt.observe_seconds == ts[1].observe_seconds);
    free(buf);
    csp_pruner_free(q);
    csp_pruner_free(p);
    for (int k = 0; k < 2; k++)
        csp_tensor_free(t[k]);
    csp_schedule_free(sch);
    csp_context_free(ctx);
}
END_TEST

/* An event at which no row loses weights (a polynomial schedule's target 0
 * at begin_step) solves nothing, so it needs no observations: activation
 * and user-Gram tensors prune nothing there instead of failing (and are
 * not warned about before it); the next event that prunes does need them. */
START_TEST(test_event_without_losses_needs_no_gram) {
    enum { R = 5, C = 12 };
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 99);
    float w[2][R * C], w0[2][R * C];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < R * C; i++)
            w0[k][i] = w[k][i] = (float)test_rng_normal(&rng);
    int64_t shape[2] = {R, C};
    csp_context *ctx = test_context(1, 1);
    warn_log log = {0, ""};
    csp_context_set_log(ctx, count_warnings, &log, CSP_LOG_WARN);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_POLYNOMIAL;
    so.initial_sparsity = 0.0;
    so.final_sparsity = 0.5;
    so.begin_step = 0;
    so.end_step = 20;
    so.frequency = 10;
    csp_schedule *sch = NULL;
    ck_assert_status(ctx, csp_schedule_create(&sch, ctx, &so), CSP_OK);
    csp_pruner *p = NULL;
    ck_assert_status(ctx, csp_pruner_create(&p, ctx, sch, NULL), CSP_OK);
    const int32_t kinds[2] = {CSP_SENSING_ACTIVATIONS, CSP_SENSING_GRAM};
    csp_tensor *t[2];
    for (int k = 0; k < 2; k++) {
        csp_tensor_create(&t[k], ctx, w[k], CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_pruner_tensor_options to;
        csp_pruner_tensor_options_init(&to, sizeof to, p);
        to.granularity = CSP_GRANULARITY_ROW;
        to.sensing.kind = kinds[k];
        to.correction = CSP_CORRECTION_FULL;
        ck_assert_status(ctx, csp_pruner_add_tensor(p, t[k], &to, NULL), CSP_OK);
    }
    ck_assert_status(ctx, csp_step(p, 0), CSP_PRUNED); /* target 0: nothing to solve */
    ck_assert_mem_eq(w, w0, sizeof w);
    ck_assert_int_eq(log.warnings, 0);
    csp_tensor_stats ts;
    csp_tensor_stats_init(&ts, sizeof ts);
    csp_pruner_tensor_stats(p, 0, &ts);
    ck_assert(ts.events == 1 && ts.sensing_error == 0.0 && ts.nnz == R * C);
    ck_assert_status(ctx, csp_step(p, 9), CSP_MASKED);
    ck_assert_int_eq(log.warnings, 2); /* the event at 10 prunes: both warned once */
    ck_assert_status(ctx, csp_step(p, 10), CSP_E_STATE);
    ck_assert_mem_eq(w, w0, sizeof w);
    csp_pruner_free(p);
    for (int k = 0; k < 2; k++)
        csp_tensor_free(t[k]);
    csp_schedule_free(sch);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_nonfinite) {
    uint64_t seed = csp_test_seed() + 11;
    csp_schedule_options so = cubic_opts(0, 40, 10, 0.8);
    rig g;
    rig_init(&g, 2, seed, seed, &so, NULL);
    static const int64_t s0[2] = {12, 30}, s1[2] = {10, 20}, s2[1] = {90}, s3[2] = {6, 16};
    csp_pruner_tensor_options o = topts(&g, CSP_GRANULARITY_ROW);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    o.solver.method = CSP_SOLVER_FISTA;
    o.correction = CSP_CORRECTION_FULL;
    ten *A = rig_add(&g, 2, s0, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_ACTIVATIONS;
    o.solver.method = CSP_SOLVER_ISTA;
    ten *B = rig_add(&g, 2, s1, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_RADEMACHER;
    o.block_size = 32;
    ten *C = rig_add(&g, 1, s2, 0, CSP_DTYPE_F32, &o);
    o.sensing.kind = CSP_SENSING_GAUSSIAN;
    o.solver.method = CSP_SOLVER_OMP;
    o.block_size = CSP_DEFAULT_BLOCK_SIZE;
    ten *D = rig_add(&g, 2, s3, 0, CSP_DTYPE_F64, &o);
    float obs[5 * 20];
    for (int64_t step = 0; step <= 10; step++) {
        rig_update(&g);
        observe_normal(&g, B, 5, obs);
        ck_assert_int_gt(csp_step(g.p, step), 0);
    }
    const csp__pcs *cs = g.p->tensors[A->index].cs;
    double lam[12];
    memcpy(lam, cs->lambda, sizeof lam);
    ck_assert(lam[0] > 0.0); /* calibrated at event 10 */
    csp_tensor_stats before, after;
    csp_tensor_stats_init(&before, sizeof before);
    csp_tensor_stats_init(&after, sizeof after);
    ck_assert_int_eq(csp_pruner_tensor_stats(g.p, A->index, &before), CSP_OK);
    for (int64_t step = 11; step < 20; step++) {
        rig_update(&g);
        observe_normal(&g, B, 5, obs);
        ck_assert_int_eq(csp_step(g.p, step), CSP_MASKED);
    }
    csp_sensing *hb = NULL;
    csp_pruner_sensing(g.p, B->index, &hb);
    int64_t count = csp_sensing_count(hb);
    ck_assert_int_eq(count, 45);
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 5; k++) {
        ten *t = k < 3 ? &g.t[k] : D;
        uint8_t *m = mask_of(&g, t);
        int64_t f = 7 + k;
        while (!m[f]) /* a kept weight (NaN is refused anywhere, the range only where kept) */
            f++;
        free(m);
        double keep = tget(t, t->w, f);
        if (k < 3)
            tset(t, t->w, f, bad[k]);
        else /* finite in float64 but not in the float32 solvers */
            tset(t, t->w, f, k == 3 ? 1e300 : -1e39);
        raw r;
        raw_take(&r, &g);
        ck_assert_status(g.ctx, csp_step(g.p, 20), CSP_E_NONFINITE);
        raw_same(&r, &g);
        ck_assert_int_eq(memcmp(lam, cs->lambda, sizeof lam), 0);
        ck_assert_int_eq(csp_sensing_count(hb), count);
        ck_assert_int_eq(csp_pruner_tensor_stats(g.p, A->index, &after), CSP_OK);
        ck_assert_int_eq(memcmp(&before, &after, sizeof before), 0);
        tset(t, t->w, f, keep);
    }
    ck_assert_int_eq(csp_step(g.p, 20), CSP_PRUNED);
    ck_assert_int_ne(memcmp(lam, cs->lambda, sizeof lam), 0);
    ck_assert_int_eq(csp_sensing_count(hb), 0);
    (void)C;
    rig_free(&g);
}
END_TEST

/* Issue 12, defect 4: finite float32 weights near FLT_MAX whose full or
 * blended correction overflows must fail the event (CSP_E_NONFINITE, the
 * tensor named) and leave every buffer, the masks and the stats as they
 * were; the same weights scaled down prune normally. */
START_TEST(test_correction_overflow) {
    uint64_t seed = csp_test_seed() + 23;
    static const int32_t corr[2] = {CSP_CORRECTION_FULL, CSP_CORRECTION_BLEND};
    static const int32_t solvers[2] = {CSP_SOLVER_OMP, CSP_SOLVER_FISTA};
    for (int c = 0; c < 2; c++)
        for (int a = 0; a < 2; a++) {
            csp_schedule_options so = cubic_opts(0, 20, 10, 0.6);
            rig g;
            rig_init(&g, 1 + a, seed + (uint64_t)(2 * c + a), seed, &so, NULL);
            rig_x(&g, CSP_X_ALPHA, 0.5);
            /* float32 rows of 24; a float64 rank-1 tensor with a short tail block. */
            static const int64_t shape2[2] = {6, 24}, shape1[1] = {70};
            csp_pruner_tensor_options o = topts(&g, CSP_GRANULARITY_ROW);
            o.sensing.kind = CSP_SENSING_GRAM;
            o.solver.method = solvers[a];
            o.correction = corr[c];
            o.block_size = 32;
            ten *t = a == 0 ? rig_add(&g, 2, shape2, 0, CSP_DTYPE_F32, &o)
                            : rig_add(&g, 1, shape1, 0, CSP_DTYPE_F64, &o);
            /* A near-equicorrelated Gram (1 on the diagonal, 0.85..0.86 off it:
             * positive definite, the jitter is far below the 0.15 gap) and rows of
             * positive weights in [0.9, 1] FLT_MAX. For every support S of k kept of
             * n, the refit adds G_SS^-1 G_SP w_P > 0.85 (n - k) 0.9 FLT_MAX / (1 + k)
             * to each kept weight, so with alpha 0.5 (or 1, full) the corrected value
             * is above 1.18 FLT_MAX (k = 10 of 24, 13 of 32, 3 of the tail's 6)
             * whatever support the solver picks: the event must fail. */
            int64_t u = t->unit;
            double *G = malloc((size_t)(u * u) * sizeof *G);
            ck_assert_ptr_nonnull(G);
            for (int64_t i = 0; i < u; i++)
                for (int64_t k = 0; k <= i; k++)
                    G[i * u + k] = G[k * u + i] =
                        i == k ? 1.0 : 0.85 + 0.01 * test_rng_uniform(&g.rng);
            set_handle_gram(&g, t, G);
            free(G);
            for (int64_t f = 0; f < t->numel; f++)
                tset(t, t->w, f, (double)(FLT_MAX * (float)(0.9 + 0.1 * test_rng_uniform(&g.rng))));
            csp_tensor_stats before, after;
            csp_tensor_stats_init(&before, sizeof before);
            csp_tensor_stats_init(&after, sizeof after);
            ck_assert_int_eq(csp_pruner_tensor_stats(g.p, t->index, &before), CSP_OK);
            raw r;
            raw_take(&r, &g);
            csp_status st = csp_step(g.p, 10);
            REQUIRE(st == CSP_E_NONFINITE, "correction %d solver %d: status %s (%s)", corr[c],
                    solvers[a], csp_status_name(st), csp_context_last_error(g.ctx));
            const char *msg = csp_context_last_error(g.ctx);
            REQUIRE(strstr(msg, "tensor 0") != NULL && strstr(msg, "'w'") != NULL,
                    "the message names the tensor: %s", msg);
            raw_same(&r, &g);
            ck_assert_int_eq(csp_pruner_tensor_stats(g.p, t->index, &after), CSP_OK);
            REQUIRE(memcmp(&before, &after, sizeof before) == 0, "stats changed");
            /* Scaled into range, the same event succeeds. */
            for (int64_t f = 0; f < t->numel; f++)
                tset(t, t->w, f, tget(t, t->w, f) * 1e-37);
            ck_assert_status(g.ctx, csp_step(g.p, 10), CSP_PRUNED);
            for (int64_t f = 0; f < t->numel; f++)
                REQUIRE(isfinite(tget(t, t->w, f)), "weight %lld not finite", (long long)f);
            rig_free(&g);
        }
}
END_TEST

/* Issue 12, defect 14: float64 weights near DBL_MAX (squares overflow) and
 * tiny ones (squares underflow) give the error statistics of a closed form
 * computed in long double: sqrt(sum pruned w^2 / sum w^2). */
START_TEST(test_stats_extreme_f64) {
    uint64_t seed = csp_test_seed() + 29;
    static const double scales[] = {0x1p1023, 1e300, 1e-300, 0x1p-1060, 1.0};
    for (int k = 0; k < 5; k++)
        for (int gran = 0; gran < 2; gran++) {
            csp_schedule_options so = cubic_opts(0, 20, 10, 0.7);
            rig g;
            rig_init(&g, 2, seed + (uint64_t)k, seed + (uint64_t)k, &so, NULL);
            static const int64_t shape[2] = {9, 37};
            csp_pruner_tensor_options o =
                topts(&g, gran ? CSP_GRANULARITY_ROW : CSP_GRANULARITY_TENSOR);
            ten *t = rig_add(&g, 2, shape, 3, CSP_DTYPE_F64, &o);
            double *pre = malloc((size_t)t->numel * sizeof *pre);
            for (int64_t f = 0; f < t->numel; f++) {
                double u = 0.25 + 0.75 * test_rng_uniform(&g.rng); /* |w| <= scale < DBL_MAX */
                pre[f] = (test_rng_u64(&g.rng) & 1 ? u : -u) * scales[k];
                tset(t, t->w, f, pre[f]);
            }
            ck_assert_status(g.ctx, csp_step(g.p, 10), CSP_PRUNED);
            uint8_t *m = mask_of(&g, t);
            long double all = 0.0L, gone = 0.0L;
            int64_t pruned = 0;
            for (int64_t f = 0; f < t->numel; f++) {
                long double v = (long double)pre[f] / (long double)scales[k];
                all += v * v;
                if (!m[f]) {
                    gone += v * v;
                    pruned++;
                }
            }
            ck_assert_int_gt(pruned, 0);
            csp_tensor_stats st;
            csp_tensor_stats_init(&st, sizeof st);
            ck_assert_int_eq(csp_pruner_tensor_stats(g.p, t->index, &st), CSP_OK);
            double want = (double)sqrtl(gone / all);
            /* Double sums of numel terms: a relative bound of 64 numel eps. */
            REQUIRE(isfinite(st.weight_error) && fabs(st.weight_error - want) <= 1e-12 * want,
                    "scale %g: weight_error %.17g, closed form %.17g", scales[k],
                    st.weight_error, want);
            REQUIRE(fabs(st.sensing_error - want * want) <= 2e-12 * want * want,
                    "scale %g: sensing_error %.17g, closed form %.17g", scales[k],
                    st.sensing_error, want * want);
            free(m);
            free(pre);
            rig_free(&g);
        }
}
END_TEST

static Suite *csp_suite(void) {
    Suite *s = suite_create("csp");
    TCase *tc = tcase_create("csp");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_identity_is_gmp);
    tcase_add_test(tc, test_user_gram_identity_is_gmp_row);
    tcase_add_test(tc, test_cs_masks);
    tcase_add_test(tc, test_correction_and_stats);
    tcase_add_test(tc, test_support_magnitude);
    tcase_add_test(tc, test_random_reproducible);
    tcase_add_test(tc, test_observe);
    tcase_add_test(tc, test_data_parallel_threads);
    tcase_add_test(tc, test_shrink);
    tcase_add_test(tc, test_callback);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_warn_unready);
    tcase_add_test(tc, test_one_shot);
    tcase_add_test(tc, test_observe_seconds);
    tcase_add_test(tc, test_event_without_losses_needs_no_gram);
    tcase_add_test(tc, test_correction_overflow);
    tcase_add_test(tc, test_stats_extreme_f64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(csp_suite()); }
