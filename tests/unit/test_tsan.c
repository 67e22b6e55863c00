/* Thread safety: independent pruners, each with its own context (and worker
 * threads of its own), stepping GMP and CSP tensors concurrently from
 * several threads. Under ThreadSanitizer (suite tsan, built with
 * -Db_sanitize=thread) any data race between them fails the run; in the
 * ordinary builds it checks that every replica ends with the same masks. */
#include "testutil.h"

#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <pthread.h>
#include <string.h>

#define THREADS 4
#define STEPS 41

typedef struct {
    uint64_t seed;
    int32_t workers;
    uint64_t digest;
    int failed;
    char err[600];
} job;

static void job_fail(job *j, csp_context *ctx, const char *what) {
    if (!j->failed) {
        j->failed = 1;
        snprintf(j->err, sizeof j->err, "%s: %s", what, csp_context_last_error(ctx));
    }
}

static void *run(void *arg) {
    job *j = arg;
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = j->seed;
    co.num_threads = j->workers;
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, &co) != CSP_OK) {
        j->failed = 1;
        return NULL;
    }
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.end_step = 30;
    so.frequency = 10;
    so.final_sparsity = 0.8;
    csp_schedule *s = NULL;
    csp_schedule_create(&s, ctx, &so);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    csp_pruner *p = NULL;
    if (csp_pruner_create(&p, ctx, s, &po) != CSP_OK ||
        csp_pruner_set_experimental(p, -1, CSP_X_SHRINK, 0.05) != CSP_OK)
        job_fail(j, ctx, "create");
    static const int64_t shape[2] = {300, 32}; /* large enough for the worker threads */
    static const int32_t kinds[3] = {CSP_SENSING_IDENTITY, CSP_SENSING_GAUSSIAN,
                                     CSP_SENSING_ACTIVATIONS};
    static const int32_t solvers[3] = {CSP_SOLVER_OMP, CSP_SOLVER_OMP, CSP_SOLVER_FISTA};
    float *w[3], *m[3];
    csp_tensor *t[3], *c[3];
    test_rng rng;
    test_rng_init(&rng, j->seed);
    for (int i = 0; i < 3; i++) {
        w[i] = malloc(300 * 32 * sizeof(float));
        m[i] = malloc(300 * 32 * sizeof(float));
        for (int k = 0; k < 300 * 32; k++) {
            w[i][k] = (float)test_rng_normal(&rng);
            m[i][k] = 1.0f;
        }
        csp_tensor_create(&t[i], ctx, w[i], CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_tensor_create(&c[i], ctx, m[i], CSP_DTYPE_F32, 2, shape, 0, NULL);
        csp_pruner_tensor_options o;
        csp_pruner_tensor_options_init(&o, sizeof o, p);
        o.sensing.kind = kinds[i];
        o.solver.method = solvers[i];
        o.correction = i == 2 ? CSP_CORRECTION_FULL : CSP_CORRECTION_NONE;
        if (csp_pruner_add_tensor(p, t[i], &o, NULL) != CSP_OK ||
            csp_pruner_add_companion(p, i, c[i]) != CSP_OK)
            job_fail(j, ctx, "add");
    }
    float x[16 * 32];
    for (int64_t step = 0; step < STEPS; step++) {
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 300 * 32; k++)
                w[i][k] += (float)(0.01 * test_rng_normal(&rng));
        for (int k = 0; k < 16 * 32; k++)
            x[k] = (float)test_rng_normal(&rng);
        int32_t want = 0;
        csp_pruner_wants_observe(p, step, &want);
        if (want && csp_pruner_observe(p, 2, x, 16, 32) != CSP_OK)
            job_fail(j, ctx, "observe");
        if (csp_step(p, step) < 0)
            job_fail(j, ctx, "step");
    }
    csp_tensor_stats ts;
    csp_tensor_stats_init(&ts, sizeof ts);
    csp_pruner_tensor_stats(p, 1, &ts);
    csp_pruner_digest(p, &j->digest);
    csp_pruner_free(p);
    for (int i = 0; i < 3; i++) {
        csp_tensor_free(t[i]);
        csp_tensor_free(c[i]);
        free(w[i]);
        free(m[i]);
    }
    csp_schedule_free(s);
    csp_context_free(ctx);
    return NULL;
}

START_TEST(test_independent_pruners) {
    uint64_t seed = csp_test_seed();
    job jobs[THREADS];
    pthread_t tid[THREADS];
    for (int k = 0; k < THREADS; k++) {
        memset(&jobs[k], 0, sizeof jobs[k]);
        jobs[k].seed = seed + (uint64_t)(k % 2); /* two pairs of replicas */
        jobs[k].workers = 1 + k;
        ck_assert_int_eq(pthread_create(&tid[k], NULL, run, &jobs[k]), 0);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(tid[k], NULL);
    for (int k = 0; k < THREADS; k++)
        ck_assert_msg(!jobs[k].failed, "thread %d: %s", k, jobs[k].err);
    ck_assert_uint_eq(jobs[0].digest, jobs[2].digest);
    ck_assert_uint_eq(jobs[1].digest, jobs[3].digest);
    ck_assert_uint_ne(jobs[0].digest, jobs[1].digest);
}
END_TEST

static Suite *tsan_suite(void) {
    Suite *s = suite_create("tsan");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_independent_pruners);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(tsan_suite()); }
