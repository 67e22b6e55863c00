/* Allocation failure: fail the N-th allocation of every create path, for
 * every N, and check the call fails cleanly and leaks nothing. Later layers
 * add their create paths here. */
#include "testutil.h"

#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <string.h>
#include <unistd.h>

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

/* Allocation failures count from the first allocation after @p a's setup. */
static void arm(test_alloc *a, int64_t fail_at) {
    a->fail_at = fail_at == 0 ? 0 : a->calls + fail_at;
}

static csp_status path_schedule(test_alloc *a, void *state) {
    (void)state;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    arm(a, fail_at);
    csp_schedule_options o;
    csp_schedule_options_init(&o, sizeof o);
    o.end_step = 100;
    csp_schedule *s = NULL;
    csp_status st = csp_schedule_create(&s, ctx, &o);
    if (st != CSP_OK)
        ck_assert_ptr_null(s);
    csp_schedule_free(s);
    csp_context_free(ctx);
    return st;
}

/* A pruner with every kind of tensor, companions, and steps through every
 * granularity's selection (a global group of two). The whole sequence runs
 * under the failing allocator; a failed csp_step must leave masks and
 * buffers as they were. */
typedef struct {
    float w[4][64 * 40];
    float c[64 * 40];
} pruner_bufs;

static csp_status path_pruner(test_alloc *a, void *state) {
    pruner_bufs *b = state;
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 64 * 40; i++)
            b->w[t][i] = (float)((i * 7919 + t * 31) % 1000) - 500.0f;
    for (int i = 0; i < 64 * 40; i++)
        b->c[i] = 1.0f;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    int64_t shape[2] = {64, 40};
    csp_tensor *t[5] = {0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(csp_tensor_create(&t[i], ctx, b->w[i], CSP_DTYPE_F32, 2, shape, 0, NULL),
                         CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&t[4], ctx, b->c, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.end_step = 10;
    so.frequency = 5;
    so.final_sparsity = 0.8;
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &so), CSP_OK);
    arm(a, fail_at);

    csp_pruner *p = NULL;
    csp_status st = csp_pruner_create(&p, ctx, s, NULL);
    static const int32_t gran[4] = {CSP_GRANULARITY_TENSOR, CSP_GRANULARITY_ROW,
                                    CSP_GRANULARITY_GLOBAL, CSP_GRANULARITY_GLOBAL};
    for (int i = 0; i < 4 && st == CSP_OK; i++) {
        csp_pruner_tensor_options to;
        csp_pruner_tensor_options_init(&to, sizeof to, p);
        to.granularity = gran[i];
        st = csp_pruner_add_tensor(p, t[i], &to, NULL);
        ck_assert_int_eq(csp_pruner_num_tensors(p), st == CSP_OK ? i + 1 : i);
    }
    if (st == CSP_OK)
        st = csp_pruner_add_companion(p, 0, t[4]);
    for (int64_t step = 0; step <= 10 && st == CSP_OK; step += 5) {
        uint64_t d0 = 0, d1 = 1;
        ck_assert_int_eq(csp_pruner_digest(p, &d0), CSP_OK);
        float first = b->w[0][1];
        st = csp_step(p, step);
        if (st == CSP_PRUNED) {
            st = CSP_OK;
        } else {
            ck_assert_int_eq(csp_pruner_digest(p, &d1), CSP_OK);
            ck_assert_uint_eq(d0, d1);
            ck_assert(b->w[0][1] == first);
        }
    }
    if (st != CSP_OK && p == NULL)
        ck_assert_int_eq(csp_pruner_num_tensors(p), 0);
    csp_pruner_free(p);
    csp_schedule_free(s);
    for (int i = 0; i < 5; i++)
        csp_tensor_free(t[i]);
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

START_TEST(test_schedule_create_oom) {
    ck_assert_int_eq(exhaust("csp_schedule_create", path_schedule, NULL), 1);
}
END_TEST

START_TEST(test_pruner_oom) {
    pruner_bufs *b = malloc(sizeof *b);
    /* pruner + schedule copy, 4 x (array growth? + 2 masks), companion
     * array, and the selections' scratch at each event: at least 12. */
    ck_assert_int_ge(exhaust("csp_pruner_create/add/step", path_pruner, b), 12);
    free(b);
}
END_TEST

/* CSP tensors (every sensing kind the pruner owns, OMP/FISTA/ISTA, every
 * correction, a rank-1 tensor in blocks, an attached operator, shrink)
 * created and stepped through three events under the failing allocator: a
 * failed call is CSP_E_NOMEM and leaves masks and buffers as they were. */
typedef struct {
    float w[5][24 * 20];
    float x[6 * 12];
} csp_bufs;

static uint64_t bytes_hash(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static csp_status path_pruner_cs(test_alloc *a, void *state) {
    csp_bufs *b = state;
    for (int t = 0; t < 5; t++)
        for (int i = 0; i < 24 * 20; i++)
            b->w[t][i] = (float)((i * 7919 + t * 31) % 1000) / 250.0f - 2.0f;
    for (int i = 0; i < 6 * 12; i++)
        b->x[i] = (float)((i * 37) % 11) - 5.0f;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    static const int64_t shapes[5][2] = {{24, 20}, {10, 12}, {70, 0}, {8, 20}, {12, 20}};
    csp_tensor *t[5] = {0};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(csp_tensor_create(&t[i], ctx, b->w[i], CSP_DTYPE_F32,
                                           shapes[i][1] == 0 ? 1 : 2, shapes[i], 0, NULL),
                         CSP_OK);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.end_step = 20;
    so.frequency = 10;
    so.final_sparsity = 0.7;
    csp_schedule *s = NULL;
    ck_assert_int_eq(csp_schedule_create(&s, ctx, &so), CSP_OK);
    csp_sensing_options sopt;
    csp_sensing_options_init(&sopt, sizeof sopt);
    sopt.kind = CSP_SENSING_RADEMACHER;
    sopt.n = 20;
    csp_sensing *host = NULL;
    ck_assert_int_eq(csp_sensing_create(&host, ctx, &sopt), CSP_OK);
    arm(a, fail_at);

    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    po.sensing.kind = CSP_SENSING_GAUSSIAN;
    po.correction = CSP_CORRECTION_FULL;
    csp_pruner *p = NULL;
    csp_status st = csp_pruner_create(&p, ctx, s, &po);
    static const int32_t kinds[5] = {CSP_SENSING_GAUSSIAN, CSP_SENSING_ACTIVATIONS,
                                     CSP_SENSING_RADEMACHER, CSP_SENSING_IDENTITY,
                                     CSP_SENSING_GRAM};
    static const int32_t solvers[5] = {CSP_SOLVER_OMP, CSP_SOLVER_FISTA, CSP_SOLVER_ISTA,
                                       CSP_SOLVER_OMP, CSP_SOLVER_OMP};
    static const int32_t corr[5] = {CSP_CORRECTION_FULL, CSP_CORRECTION_BLEND,
                                    CSP_CORRECTION_NONE, CSP_CORRECTION_FULL,
                                    CSP_CORRECTION_FULL};
    for (int i = 0; i < 5 && st == CSP_OK; i++) {
        csp_pruner_tensor_options to;
        csp_pruner_tensor_options_init(&to, sizeof to, p);
        to.sensing.kind = kinds[i];
        to.solver.method = solvers[i];
        to.correction = corr[i];
        to.block_size = 32;
        st = csp_pruner_add_tensor(p, t[i], &to, NULL);
        if (st == CSP_OK && i == 3)
            st = csp_pruner_set_experimental(p, 3, CSP_X_SHRINK, 0.2);
    }
    if (st == CSP_OK)
        st = csp_pruner_set_sensing(p, 3, host);
    if (st == CSP_OK) {
        csp_sensing *h = NULL;
        st = csp_pruner_sensing(p, 4, &h);
        double G[20 * 20] = {0};
        for (int i = 0; i < 20; i++)
            G[i * 21] = 1.0 + 0.05 * i;
        if (st == CSP_OK)
            st = csp_sensing_set_gram(h, G, 20);
    }
    for (int64_t step = 0; step <= 20 && st == CSP_OK; step += 5) {
        st = csp_pruner_observe(p, 1, b->x, 6, 12);
        if (st != CSP_OK)
            break;
        uint64_t d0 = 0, d1 = 1;
        ck_assert_int_eq(csp_pruner_digest(p, &d0), CSP_OK);
        uint64_t h0 = bytes_hash(b->w, sizeof b->w);
        st = csp_step(p, step);
        if (st == CSP_PRUNED || st == CSP_MASKED) {
            st = CSP_OK;
        } else {
            ck_assert_int_eq(csp_pruner_digest(p, &d1), CSP_OK);
            ck_assert_uint_eq(d0, d1);
            ck_assert_uint_eq(h0, bytes_hash(b->w, sizeof b->w));
        }
    }
    csp_pruner_free(p);
    csp_sensing_free(host);
    csp_schedule_free(s);
    for (int i = 0; i < 5; i++)
        csp_tensor_free(t[i]);
    csp_context_free(ctx);
    return st;
}

START_TEST(test_pruner_cs_oom) {
    csp_bufs *b = malloc(sizeof *b);
    /* pruner + schedule copy, 5 x (masks + CSP state), the Gram's
     * validation, and every event's scratch. */
    ck_assert_int_ge(exhaust("CSP pruner create/add/step", path_pruner_cs, b), 30);
    free(b);
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

static csp_status path_solver(test_alloc *a, void *state) {
    (void)state;
    csp_context *ctx = context_then_fail(a);
    csp_solver *s = NULL;
    csp_status st = csp_solver_create(&s, ctx, NULL);
    if (st != CSP_OK)
        ck_assert_ptr_null(s);
    csp_solver_free(s);
    csp_context_free(ctx);
    return st;
}

/* A solve under the failing allocator: NOMEM leaves x untouched. */
typedef struct {
    int32_t kind, method, calibrate, threads;
} solve_case;

static csp_status path_solve(test_alloc *a, void *state) {
    const solve_case *c = state;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    csp_context_set_num_threads(ctx, c->threads);
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = c->kind;
    so.n = 21;
    so.m = 15;
    csp_sensing *sen = NULL;
    ck_assert_int_eq(csp_sensing_create(&sen, ctx, &so), CSP_OK);
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.method = c->method;
    o.calibrate = c->calibrate;
    o.lambda = 0.2;
    csp_solver *sv = NULL;
    ck_assert_int_eq(csp_solver_create(&sv, ctx, &o), CSP_OK);
    enum { N = 21, ROWS = 5 };
    float w[N * ROWS], x[N * ROWS];
    for (int i = 0; i < N * ROWS; i++) {
        w[i] = (float)((i * 7919) % 23) - 11.0f;
        x[i] = 42.0f;
    }
    csp_row_stats st[ROWS];
    uint64_t sup[ROWS];
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.rows = ROWS;
    b.n = N;
    b.w = w;
    b.x = x;
    b.k_all = 4;
    b.support = sup;
    b.stats = st;
    b.stats_size = sizeof st[0];
    a->fail_at = fail_at == 0 ? 0 : a->calls + fail_at;
    csp_status got = csp_solver_solve(sv, sen, 0, 0, &b);
    a->fail_at = 0;
    if (got == CSP_E_NOMEM)
        for (int i = 0; i < N * ROWS; i++)
            ck_assert(x[i] == 42.0f);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    return got;
}

START_TEST(test_sensing_create_oom) {
    for (int32_t kind = CSP_SENSING_IDENTITY; kind <= CSP_SENSING_GRAM; kind++) {
        int64_t n = exhaust("csp_sensing_create", path_sensing, &kind);
        ck_assert_int_ge(n, 1);
    }
}
END_TEST

START_TEST(test_solver_create_oom) {
    ck_assert_int_eq(exhaust("csp_solver_create", path_solver, NULL), 1);
}
END_TEST

START_TEST(test_solve_oom) {
    static const solve_case cases[] = {
        {CSP_SENSING_GAUSSIAN, CSP_SOLVER_OMP, 1, 1},
        {CSP_SENSING_GAUSSIAN, CSP_SOLVER_OMP, 1, 3},
        {CSP_SENSING_IDENTITY, CSP_SOLVER_OMP, 1, 2},
        {CSP_SENSING_RADEMACHER, CSP_SOLVER_FISTA, 0, 2},
        {CSP_SENSING_GAUSSIAN, CSP_SOLVER_ISTA, 1, 1},
        {CSP_SENSING_IDENTITY, CSP_SOLVER_FISTA, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n = exhaust("csp_solver_solve", path_solve, (void *)&cases[i]);
        ck_assert_int_ge(n, 1);
    }
}
END_TEST

/* Checkpoints and exports: a pruner (built with allocations switched off)
 * saved to and loaded from a file, a buffer and exported, with the N-th
 * allocation of the call failing. A failed save leaves no file behind; a
 * failed load leaves the pruner unchanged. */
typedef struct {
    int op; /* 0 save_file, 1 load_file, 2 load buffer, 3 export, 4 save buffer; +5: the
               tensor is CSP with a pruner-owned activations operator */
    char path[64];
    float w[6 * 20];
} io_state;

static csp_status path_io(test_alloc *a, void *state) {
    io_state *s = state;
    int64_t fail_at = a->fail_at;
    a->fail_at = 0;
    csp_context *ctx = test_context_with_alloc(a);
    for (int i = 0; i < 6 * 20; i++)
        s->w[i] = (float)((i * 7919) % 97) - 48.0f;
    int64_t shape[2] = {6, 20};
    csp_tensor *t = NULL;
    ck_assert_int_eq(csp_tensor_create(&t, ctx, s->w, CSP_DTYPE_F32, 2, shape, 0, "w"), CSP_OK);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = 0.7;
    csp_schedule *sc = NULL;
    ck_assert_int_eq(csp_schedule_create(&sc, ctx, &so), CSP_OK);
    csp_pruner *p = NULL, *q = NULL;
    csp_pruner_tensor_options to;
    int cs = s->op >= 5;
    ck_assert_int_eq(csp_pruner_create(&p, ctx, sc, NULL), CSP_OK);
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    if (cs) {
        to.granularity = CSP_GRANULARITY_ROW;
        to.sensing.kind = CSP_SENSING_ACTIVATIONS;
        to.solver.method = CSP_SOLVER_FISTA;
    }
    ck_assert_int_eq(csp_pruner_add_tensor(p, t, &to, NULL), CSP_OK);
    ck_assert_int_eq(csp_pruner_create(&q, ctx, sc, NULL), CSP_OK);
    ck_assert_int_eq(csp_pruner_add_tensor(q, t, &to, NULL), CSP_OK);
    if (cs) {
        float x[3 * 20];
        for (int i = 0; i < 3 * 20; i++)
            x[i] = (float)((i * 31) % 17) - 8.0f;
        ck_assert_int_eq(csp_pruner_observe(p, 0, x, 3, 20), CSP_OK);
    }
    ck_assert_int_eq(csp_step(p, 3), CSP_PRUNED);
    uint8_t buf[8192];
    int64_t size = 0;
    ck_assert_int_eq(csp_pruner_save(p, buf, sizeof buf, &size), CSP_OK);
    if (s->op % 5 == 1)
        ck_assert_int_eq(csp_pruner_save_file(p, s->path), CSP_OK);
    uint64_t d0, d1;
    ck_assert_int_eq(csp_pruner_digest(q, &d0), CSP_OK);
    arm(a, fail_at);
    csp_status st;
    switch (s->op % 5) {
    case 0:
        st = csp_pruner_save_file(p, s->path);
        ck_assert_int_eq(access(s->path, F_OK) == 0, st == CSP_OK);
        break;
    case 1:
        st = csp_pruner_load_file(q, s->path);
        break;
    case 2:
        st = csp_pruner_load(q, buf, size);
        break;
    case 3: {
        csp_export_options o;
        csp_export_options_init(&o, sizeof o);
        uint8_t out[1024];
        st = csp_pruner_export(p, 0, &o, out, sizeof out, &size);
        if (st == CSP_OK) {
            float dense[120];
            st = csp_export_decode(ctx, out, size, dense, 0, 0, sizeof dense);
        }
        break;
    }
    default:
        st = csp_pruner_save(p, buf, sizeof buf, &size);
        break;
    }
    a->fail_at = 0;
    ck_assert_int_eq(csp_pruner_digest(q, &d1), CSP_OK);
    if (st != CSP_OK)
        ck_assert_uint_eq(d0, d1);
    unlink(s->path);
    csp_pruner_free(p);
    csp_pruner_free(q);
    csp_schedule_free(sc);
    csp_tensor_free(t);
    csp_context_free(ctx);
    return st;
}

START_TEST(test_io_oom) {
    io_state *s = calloc(1, sizeof *s);
    snprintf(s->path, sizeof s->path, "/tmp/csp_alloc_%ld.ckpt", (long)getpid());
    s->op = 0;
    ck_assert_int_eq(exhaust("csp_pruner_save_file", path_io, s), 2); /* bytes, temp name */
    s->op = 1;
    ck_assert_int_eq(exhaust("csp_pruner_load_file", path_io, s), 1); /* the file's bytes */
    s->op = 2;
    ck_assert_int_eq(exhaust("csp_pruner_load", path_io, s), 0);
    s->op = 3;
    ck_assert_int_eq(exhaust("csp_pruner_export/decode", path_io, s), 0);
    s->op = 4;
    ck_assert_int_eq(exhaust("csp_pruner_save", path_io, s), 0);
    s->op = 7; /* CSP: the accumulators are staged before anything changes */
    ck_assert_int_eq(exhaust("csp_pruner_load (CSP)", path_io, s), 1);
    s->op = 9;
    ck_assert_int_eq(exhaust("csp_pruner_save (CSP)", path_io, s), 0);
    s->op = 6;
    ck_assert_int_eq(exhaust("csp_pruner_load_file (CSP)", path_io, s), 2);
    free(s);
}
END_TEST

static Suite *alloc_suite(void) {
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("oom");
    /* Every path runs once per allocation it makes (N^2 work): under ASan on
     * a loaded 2-core machine test_pruner_cs_oom took 5-6 s with OpenBLAS's
     * worker threads spinning, past Check's default 4 s (meson now runs this
     * suite with OPENBLAS_NUM_THREADS=1: under 1 s). */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_context_create_oom);
    tcase_add_test(tc, test_tensor_create_oom);
    tcase_add_test(tc, test_schedule_create_oom);
    tcase_add_test(tc, test_pruner_oom);
    tcase_add_test(tc, test_pruner_cs_oom);
    tcase_add_test(tc, test_sensing_create_oom);
    tcase_add_test(tc, test_solver_create_oom);
    tcase_add_test(tc, test_solve_oom);
    tcase_add_test(tc, test_io_oom);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(alloc_suite()); }
