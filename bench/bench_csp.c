/* Time of one CSP pruning event against one GMP event, in the same run, on
 * the speech model's shapes (W_ih 512x40, W_hh 512x128, W_out 10x128, row
 * granularity) at s = 0.95:
 *   - "one-shot": a dense model pruned to 0.95 in one event;
 *   - "last step": an event from 0.90 to 0.95 (a late event of a ramp).
 * Each timing is a fresh pruner (setup untimed) whose event csp_step() is
 * timed; medians (min..max) over the repetitions, per tensor from the
 * tensor stats (event_seconds) and for the whole call (step stats).
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/bench_csp [reps] [threads] */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 3, OBS = 256 };
static const int64_t shapes[NT][2] = {{512, 40}, {512, 128}, {10, 128}};
static const char *names[NT] = {"W_ih", "W_hh", "W_out"};

typedef struct {
    const char *label;
    int32_t sensing, solver, correction;
} config;

static const config configs[] = {
    {"GMP (identity)", CSP_SENSING_IDENTITY, CSP_SOLVER_OMP, CSP_CORRECTION_NONE},
    {"gaussian rho .5, OMP", CSP_SENSING_GAUSSIAN, CSP_SOLVER_OMP, CSP_CORRECTION_NONE},
    {"gaussian rho .5, OMP, refit", CSP_SENSING_GAUSSIAN, CSP_SOLVER_OMP, CSP_CORRECTION_FULL},
    {"rademacher, FISTA", CSP_SENSING_RADEMACHER, CSP_SOLVER_FISTA, CSP_CORRECTION_NONE},
    {"activations, OMP", CSP_SENSING_ACTIVATIONS, CSP_SOLVER_OMP, CSP_CORRECTION_NONE},
    {"activations, OMP, blend .1", CSP_SENSING_ACTIVATIONS, CSP_SOLVER_OMP,
     CSP_CORRECTION_BLEND},
};
#define NCONF (int)(sizeof configs / sizeof configs[0])

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double normal(void) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        u[i] = ((double)((rng_state * 0x2545f4914f6cdd1dULL) >> 11) + 0.5) * 0x1.0p-53;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(csp_context *ctx, const char *what) {
    fprintf(stderr, "%s: %s\n", what, csp_context_last_error(ctx));
    exit(1);
}

/* One timed event; secs[0..NT-1] per tensor, secs[NT] the whole call,
 * iters the OMP/FISTA iterations over all tensors. */
static void one_event(csp_context *ctx, const config *c, int late, float *const *w0,
                      double *secs, int64_t *iters) {
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.initial_sparsity = late ? 0.90 : 0.95;
    so.final_sparsity = 0.95;
    so.begin_step = 0;
    so.end_step = 1;
    so.frequency = 1;
    csp_schedule *s = NULL;
    if (csp_schedule_create(&s, ctx, &so) != CSP_OK)
        die(ctx, "schedule");
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = CSP_GRANULARITY_ROW;
    po.sensing.kind = c->sensing;
    po.solver.method = c->solver;
    po.correction = c->correction;
    csp_pruner *p = NULL;
    if (csp_pruner_create(&p, ctx, s, &po) != CSP_OK)
        die(ctx, "pruner");
    float *w[NT];
    csp_tensor *t[NT];
    for (int i = 0; i < NT; i++) {
        size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
        w[i] = malloc(n * sizeof(float));
        memcpy(w[i], w0[i], n * sizeof(float));
        if (csp_tensor_create(&t[i], ctx, w[i], CSP_DTYPE_F32, 2, shapes[i], 0, names[i]) !=
                CSP_OK ||
            csp_pruner_add_tensor(p, t[i], NULL, NULL) != CSP_OK)
            die(ctx, "tensor");
    }
    static float x[OBS * 128];
    int64_t step = 0;
    for (int round = 0; round <= late; round++, step++) {
        if (c->sensing == CSP_SENSING_ACTIVATIONS)
            for (int i = 0; i < NT; i++) {
                int64_t n = shapes[i][1];
                for (int64_t q = 0; q < OBS * n; q++)
                    x[q] = (float)normal();
                if (csp_pruner_observe(p, i, x, OBS, n) != CSP_OK)
                    die(ctx, "observe");
            }
        if (csp_step(p, step) != CSP_PRUNED)
            die(ctx, "step");
    }
    csp_tensor_stats ts;
    csp_tensor_stats_init(&ts, sizeof ts);
    *iters = 0;
    for (int i = 0; i < NT; i++) {
        csp_pruner_tensor_stats(p, i, &ts);
        secs[i] = ts.event_seconds;
        *iters += ts.solver_iterations;
    }
    csp_step_stats ps;
    csp_step_stats_init(&ps, sizeof ps);
    csp_pruner_step_stats(p, &ps);
    secs[NT] = ps.last_event_seconds;
    csp_pruner_free(p);
    for (int i = 0; i < NT; i++) {
        csp_tensor_free(t[i]);
        free(w[i]);
    }
    csp_schedule_free(s);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (reps < 1 || threads < 1) {
        fprintf(stderr, "usage: bench_csp [reps] [threads]\n");
        return 2;
    }
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.num_threads = threads;
    co.seed = 7;
    co.log_level = CSP_LOG_ERROR;
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, &co) != CSP_OK)
        return 1;
    float *w0[NT];
    for (int i = 0; i < NT; i++) {
        size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
        w0[i] = malloc(n * sizeof(float));
        for (size_t q = 0; q < n; q++)
            w0[i][q] = (float)(0.1 * normal());
    }
    printf("libcsp %s: one pruning event at s = 0.95, row granularity, %d threads, %d reps; "
           "medians in ms (min..max of the whole call)\n",
           csp_version_string(), threads, reps);
    double *samples = malloc((size_t)reps * (NT + 1) * sizeof(double));
    for (int late = 0; late <= 1; late++) {
        printf("\n%s\n", late ? "last step of a ramp: 0.90 -> 0.95"
                              : "one-shot: dense -> 0.95");
        printf("%-30s %9s %9s %9s %9s %18s %8s %10s\n", "config", names[0], names[1], names[2],
               "event", "(min..max)", "x GMP", "iterations");
        double gmp = 0.0;
        for (int k = 0; k < NCONF; k++) {
            int64_t iters = 0;
            double med[NT + 1];
            for (int r = 0; r < reps; r++) {
                double secs[NT + 1];
                one_event(ctx, &configs[k], late, w0, secs, &iters);
                for (int i = 0; i <= NT; i++)
                    samples[i * reps + r] = secs[i];
            }
            for (int i = 0; i <= NT; i++) {
                qsort(samples + i * reps, (size_t)reps, sizeof(double), cmp_double);
                med[i] = samples[i * reps + reps / 2];
            }
            if (k == 0)
                gmp = med[NT];
            printf("%-30s %9.3f %9.3f %9.3f %9.3f %8.3f..%-8.3f %8.1f %10lld\n", configs[k].label,
                   1e3 * med[0], 1e3 * med[1], 1e3 * med[2], 1e3 * med[NT], 1e3 * samples[NT * reps],
                   1e3 * samples[NT * reps + reps - 1], med[NT] / gmp, (long long)iters);
        }
    }
    free(samples);
    for (int i = 0; i < NT; i++)
        free(w0[i]);
    csp_context_free(ctx);
    return 0;
}
