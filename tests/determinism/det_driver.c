/* Determinism driver: the same multi-event CSP pruning for every solver
 * (OMP, ISTA, FISTA, the experimental sweep) x sensing kind (gaussian, rademacher, activations,
 * gram), correction full, printing after each run one line
 *   solver kind digest-after-each-event weight-bytes-hash
 * det_check.py runs it under different OPENBLAS_NUM_THREADS and libcsp
 * thread counts (separate processes) and compares the lines.
 *
 * Usage: det_driver SEED CSP_THREADS */
#define CSP_EXPERIMENTAL_API
#include <csp/csp.h>
#include <csp/experimental.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 96
#define COLS 200
#define STEPS 21
#define OBS 48

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double normal(uint64_t *s) {
    double u = ((double)(mix(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = ((double)(mix(s) >> 11) + 0.5) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int fail(csp_context *ctx, const char *what) {
    fprintf(stderr, "det_driver: %s: %s\n", what, ctx ? csp_context_last_error(ctx) : "");
    return 1;
}

/* A well-conditioned PSD Gram: B^T B / m + 0.1 I with B m x n normal. */
static double *host_gram(uint64_t *rng, int64_t n) {
    int64_t m = n / 2;
    double *B = malloc((size_t)(m * n) * sizeof *B), *G = calloc((size_t)(n * n), sizeof *G);
    if (B == NULL || G == NULL) {
        free(B);
        free(G);
        return NULL;
    }
    for (int64_t i = 0; i < m * n; i++)
        B[i] = normal(rng);
    for (int64_t r = 0; r < m; r++)
        for (int64_t a = 0; a < n; a++)
            for (int64_t c = 0; c < n; c++)
                G[a * n + c] += B[r * n + a] * B[r * n + c] / (double)m;
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = 0; c < a; c++)
            G[a * n + c] = G[c * n + a]; /* exactly symmetric */
    for (int64_t a = 0; a < n; a++)
        G[a * n + a] += 0.1;
    free(B);
    return G;
}

static int run(uint64_t seed, int32_t threads, int32_t solver, int32_t kind) {
    csp_context *ctx = NULL;
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = seed;
    co.num_threads = threads;
    if (csp_context_create(&ctx, &co) != CSP_OK)
        return fail(NULL, "csp_context_create");
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.begin_step = 0;
    so.end_step = 20;
    so.frequency = 5;
    so.final_sparsity = 0.75;
    csp_schedule *sched = NULL;
    csp_pruner *p = NULL;
    csp_tensor *t = NULL;
    float *w = malloc(ROWS * COLS * sizeof *w), *x = malloc(OBS * COLS * sizeof *x);
    double *G = NULL;
    int rc = 1;
    uint64_t rng = seed * 0x2545f4914f6cdd1dULL + (uint64_t)(solver * 8 + kind);
    if (w == NULL || x == NULL)
        goto out;
    if (csp_schedule_create(&sched, ctx, &so) != CSP_OK) {
        fail(ctx, "csp_schedule_create");
        goto out;
    }
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    po.correction = CSP_CORRECTION_FULL;
    po.sensing.kind = kind;
    po.solver.method = solver;
    if (csp_pruner_create(&p, ctx, sched, &po) != CSP_OK) {
        fail(ctx, "csp_pruner_create");
        goto out;
    }
    for (int64_t f = 0; f < ROWS * COLS; f++)
        w[f] = (float)normal(&rng);
    const int64_t shape[2] = {ROWS, COLS};
    if (csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, NULL) != CSP_OK ||
        csp_pruner_add_tensor(p, t, NULL, NULL) != CSP_OK) {
        fail(ctx, "add tensor");
        goto out;
    }
    if (kind == CSP_SENSING_GRAM) {
        csp_sensing *h = NULL;
        G = host_gram(&rng, COLS);
        if (G == NULL || csp_pruner_sensing(p, 0, &h) != CSP_OK ||
            csp_sensing_set_gram(h, G, COLS) != CSP_OK) {
            fail(ctx, "set gram");
            goto out;
        }
    }
    printf("solver %d kind %d", (int)solver, (int)kind);
    for (int64_t step = 0; step < STEPS; step++) {
        for (int64_t f = 0; f < ROWS * COLS; f++)
            w[f] += (float)(0.05 * normal(&rng));
        if (kind == CSP_SENSING_ACTIVATIONS) {
            for (int64_t i = 0; i < OBS * COLS; i++)
                x[i] = (float)normal(&rng);
            if (csp_pruner_observe(p, 0, x, OBS, COLS) != CSP_OK) {
                fail(ctx, "csp_pruner_observe");
                goto out;
            }
        }
        csp_status st = csp_step(p, step);
        if (st < 0) {
            fail(ctx, "csp_step");
            goto out;
        }
        if (st == CSP_PRUNED) {
            uint64_t d = 0;
            csp_pruner_digest(p, &d);
            printf(" %016" PRIx64, d);
        }
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *b = (const unsigned char *)w;
    for (size_t q = 0; q < ROWS * COLS * sizeof(float); q++)
        h = (h ^ b[q]) * 0x100000001b3ULL;
    printf(" w %016" PRIx64 "\n", h);
    rc = 0;
out:
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    free(G);
    free(w);
    free(x);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: det_driver SEED CSP_THREADS\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 10);
    int32_t threads = (int32_t)strtol(argv[2], NULL, 10);
    static const int32_t solvers[4] = {CSP_SOLVER_OMP, CSP_SOLVER_ISTA, CSP_SOLVER_FISTA,
                                       CSP_SOLVER_SWEEP};
    static const int32_t kinds[4] = {CSP_SENSING_GAUSSIAN, CSP_SENSING_RADEMACHER,
                                     CSP_SENSING_ACTIVATIONS, CSP_SENSING_GRAM};
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 4; k++)
            if (run(seed, threads, solvers[a], kinds[k]) != 0)
                return 1;
    return 0;
}
