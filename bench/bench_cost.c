/* Cost curves of one pruning event (issue 17): time and peak memory of the
 * library against the layer width and against the number of weights, for
 * GMP and each CSP solver, with 1 and 2 threads, in one run.
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/bench_cost [max_width] [max_n] [budget_s] [reps]
 *
 * Defaults: widths 256, 512, ..., 4096 (square layers w x w, row
 * granularity, one-shot dense -> 0.9); N = 1e5, 1e6, 1e7, 1e8 weights for GMP
 * (per tensor and rows of 1000) and N = 1e5 ... 1e7 for CSP (rows of 512).
 * A configuration whose next point would take longer than budget_s (default
 * 20 s, predicted from its last two points) is skipped and said so. Memory is
 * the peak of what the library allocated through the context's allocator
 * during the event (the caller's weights are not counted); the activation
 * operators' accumulators are created before the event and counted apart
 * ("state"). For each configuration the printed exponent is the log-log
 * slope of time against width (or N) over the last points measured: about 3
 * for a cubic solve, 1 for a linear pass. Medians over reps (default 3). */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OBS_ROWS = 256, MAX_POINTS = 8 };

typedef struct {
    const char *label;
    int32_t granularity, sensing, solver, correction;
} config;

static const config wconfigs[] = {
    {"GMP row", CSP_GRANULARITY_ROW, CSP_SENSING_IDENTITY, CSP_SOLVER_OMP, CSP_CORRECTION_NONE},
    {"gaussian OMP", CSP_GRANULARITY_ROW, CSP_SENSING_GAUSSIAN, CSP_SOLVER_OMP,
     CSP_CORRECTION_NONE},
    {"gaussian FISTA", CSP_GRANULARITY_ROW, CSP_SENSING_GAUSSIAN, CSP_SOLVER_FISTA,
     CSP_CORRECTION_NONE},
    {"activations OMP refit", CSP_GRANULARITY_ROW, CSP_SENSING_ACTIVATIONS, CSP_SOLVER_OMP,
     CSP_CORRECTION_FULL},
#ifdef CSP_SOLVER_SWEEP
    {"activations sweep", CSP_GRANULARITY_ROW, CSP_SENSING_ACTIVATIONS, CSP_SOLVER_SWEEP,
     CSP_CORRECTION_NONE},
#endif
};
#define NW (int)(sizeof wconfigs / sizeof wconfigs[0])

/* ---- counting allocator -------------------------------------------------- */

typedef struct {
    size_t now, peak;
} meter;

static void *count_alloc(void *user, size_t size) {
    meter *m = user;
    /* 64 bytes of header keep the block aligned for any type (and AVX-512). */
    unsigned char *b = aligned_alloc(64, ((size + 64 + 63) / 64) * 64);
    if (!b)
        return NULL;
    memcpy(b, &size, sizeof size);
    m->now += size;
    if (m->now > m->peak)
        m->peak = m->now;
    return b + 64;
}

static void count_free(void *user, void *ptr) {
    meter *m = user;
    unsigned char *b = (unsigned char *)ptr - 64;
    size_t size;
    memcpy(&size, b, sizeof size);
    m->now -= size;
    free(b);
}

/* ---- data ---------------------------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static double uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((double)((rng_state * 0x2545f4914f6cdd1dULL) >> 11) + 0.5) * 0x1.0p-53;
}
static float normal(void) {
    double u = uniform(), v = uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void die(csp_context *ctx, const char *what) {
    fprintf(stderr, "bench_cost: %s: %s\n", what, ctx ? csp_context_last_error(ctx) : "");
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- one event ------------------------------------------------------------ */

typedef struct {
    double seconds;   /* the event's csp_step() */
    size_t peak;      /* library bytes at the peak during the event, above the state */
    size_t state;     /* library bytes held before the event (operators, masks) */
} result;

/* One fresh pruner over a rows x cols tensor (copy of w0), one-shot to 0.9. */
static result one_event(int threads, const config *c, int64_t rows, int64_t cols,
                        const float *w0, float *obs) {
    meter m = {0, 0};
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.num_threads = threads;
    co.seed = 11;
    co.log_level = CSP_LOG_ERROR;
    co.alloc = count_alloc;
    co.free = count_free;
    co.alloc_user = &m;
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, &co) != CSP_OK)
        die(NULL, "context");
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.initial_sparsity = 0.9;
    so.final_sparsity = 0.9;
    so.begin_step = 0;
    so.end_step = 1;
    so.frequency = 1;
    csp_schedule *s = NULL;
    if (csp_schedule_create(&s, ctx, &so) != CSP_OK)
        die(ctx, "schedule");
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    po.granularity = c->granularity;
    po.sensing.kind = c->sensing;
    po.solver.method = c->solver;
    po.correction = c->correction;
    csp_pruner *p = NULL;
    if (csp_pruner_create(&p, ctx, s, &po) != CSP_OK)
        die(ctx, "pruner");
    size_t n = (size_t)(rows * cols);
    float *w = malloc(n * sizeof(float));
    if (!w)
        die(ctx, "out of memory");
    memcpy(w, w0, n * sizeof(float));
    int64_t shape[2] = {rows, cols};
    csp_tensor *t = NULL;
    if (csp_tensor_create(&t, ctx, w, CSP_DTYPE_F32, 2, shape, 0, "W") != CSP_OK ||
        csp_pruner_add_tensor(p, t, NULL, NULL) != CSP_OK)
        die(ctx, "tensor");
    if (c->sensing == CSP_SENSING_ACTIVATIONS) {
        /* Correlated inputs: a shared factor per row plus noise per feature. */
        float *o = (float *)obs;
        for (int64_t q = 0; q < OBS_ROWS; q++) {
            float f = normal();
            for (int64_t j = 0; j < cols; j++)
                o[q * cols + j] = 0.5f * f + normal();
        }
        if (csp_pruner_observe(p, 0, obs, OBS_ROWS, cols) != CSP_OK)
            die(ctx, "observe");
    }
    result r;
    r.state = m.now;
    m.peak = m.now;
    if (csp_step(p, 0) != CSP_PRUNED)
        die(ctx, "step");
    r.peak = m.peak - r.state;
    csp_step_stats ps;
    csp_step_stats_init(&ps, sizeof ps);
    csp_pruner_step_stats(p, &ps);
    r.seconds = ps.last_event_seconds;
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(s);
    csp_context_free(ctx);
    free(w);
    return r;
}

static result median_event(int reps, int threads, const config *c, int64_t rows, int64_t cols,
                           const float *w0, float *obs) {
    double secs[32];
    result r = {0, 0, 0};
    if (reps > 32)
        reps = 32;
    for (int i = 0; i < reps; i++) {
        result one = one_event(threads, c, rows, cols, w0, obs);
        secs[i] = one.seconds;
        r.peak = one.peak;
        r.state = one.state;
    }
    qsort(secs, (size_t)reps, sizeof(double), cmp_double);
    r.seconds = secs[reps / 2];
    return r;
}

/* ---- a curve ---------------------------------------------------------------- */

typedef struct {
    const config *c;
    int64_t cols;          /* > 0: fixed row length (N curve); 0: square w x w */
    const int64_t *xs;     /* widths or N */
    int nx;
    const char *xname;
} curve;

static double slope(const double *x, const double *y, int k) {
    if (k < 2)
        return NAN;
    return log(y[k - 1] / y[k - 2]) / log(x[k - 1] / x[k - 2]);
}

static void run_curve(const curve *cv, int reps, double budget, const float *w0,
                      float *obs) {
    double xs[MAX_POINTS], t1[MAX_POINTS];
    int k = 0;
    for (int i = 0; i < cv->nx; i++) {
        int64_t rows, cols;
        if (cv->cols > 0) {
            cols = cv->cols;
            rows = cv->xs[i] / cols;
        } else {
            rows = cols = cv->xs[i];
        }
        double x = (double)(cv->cols > 0 ? rows * cols : cols);
        if (k >= 2) {
            double predicted = t1[k - 1] * pow(x / xs[k - 1], fmax(1.0, slope(xs, t1, k)));
            if (predicted > budget) {
                printf("%-24s %10s=%-10lld skipped: predicted %.1f s > budget %.0f s\n",
                       cv->c->label, cv->xname, (long long)cv->xs[i], predicted, budget);
                continue;
            }
        }
        int r = (rows * cols >= 10000000 || k >= 2) ? (reps < 3 ? reps : 1 + reps / 3) : reps;
        result a = median_event(r, 1, cv->c, rows, cols, w0, obs);
        result b = median_event(r, 2, cv->c, rows, cols, w0, obs);
        xs[k] = x;
        t1[k] = a.seconds;
        k++;
        printf("%-24s %10s=%-10lld %10.4f %10.4f %7.2f %11.1f %11.1f %8.2f\n", cv->c->label,
               cv->xname, (long long)cv->xs[i], a.seconds, b.seconds, a.seconds / b.seconds,
               (double)a.peak / 1048576.0, (double)a.state / 1048576.0,
               1e9 * a.seconds / (double)(rows * cols));
        printf("kv cost %s %s %lld t1 %.6g t2 %.6g peak_mib %.3f state_mib %.3f\n",
               cv->c->label, cv->xname, (long long)cv->xs[i], a.seconds, b.seconds,
               (double)a.peak / 1048576.0, (double)a.state / 1048576.0);
    }
    if (k >= 2)
        printf("%-24s time grows as %s^%.2f (last two points, 1 thread)\n\n", cv->c->label,
               cv->xname, slope(xs, t1, k));
}

int main(int argc, char **argv) {
    int64_t max_width = argc > 1 ? atoll(argv[1]) : 4096;
    double max_n = argc > 2 ? atof(argv[2]) : 1e8;
    double budget = argc > 3 ? atof(argv[3]) : 20.0;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    if (max_width < 256 || max_n < 1e5 || budget <= 0 || reps < 1) {
        fprintf(stderr, "usage: bench_cost [max_width >= 256] [max_n >= 1e5] [budget_s] "
                        "[reps]\n");
        return 2;
    }
    int64_t widths[MAX_POINTS], ns[MAX_POINTS], csp_ns[MAX_POINTS];
    int nw = 0, nn = 0, ncn = 0;
    for (int64_t w = 256; w <= max_width && nw < MAX_POINTS; w *= 2)
        widths[nw++] = w;
    for (double n = 1e5; n <= max_n * 1.0001 && nn < MAX_POINTS; n *= 10) {
        ns[nn++] = (int64_t)n;
        if (n <= 1e7 * 1.0001)
            csp_ns[ncn++] = (int64_t)n;
    }
    int64_t maxel = (int64_t)max_n;
    if (max_width * max_width > maxel)
        maxel = max_width * max_width;
    float *w0 = malloc((size_t)maxel * sizeof(float));
    float *obs = malloc((size_t)OBS_ROWS * (size_t)max_width * sizeof(float));
    if (!w0 || !obs)
        die(NULL, "out of memory");
    for (int64_t i = 0; i < maxel; i++)
        w0[i] = 0.1f * normal();
    printf("libcsp %s: one pruning event, one-shot dense -> 0.9, median of %d (fewer for the "
           "largest points); activations observed from %d rows\n",
           csp_version_string(), reps, OBS_ROWS);
    printf("%-24s %21s %10s %10s %7s %11s %11s %8s\n", "config", "size", "1 thr s", "2 thr s",
           "1/2", "event MiB", "state MiB", "ns/wt");
    printf("\n-- against the layer width (square w x w layers, row granularity)\n");
    for (int k = 0; k < NW; k++) {
        curve cv = {&wconfigs[k], 0, widths, nw, "width"};
        run_curve(&cv, reps, budget, w0, obs);
    }
    printf("-- against the number of weights N\n");
    const config gmp_tensor = {"GMP tensor", CSP_GRANULARITY_TENSOR, CSP_SENSING_IDENTITY,
                               CSP_SOLVER_OMP, CSP_CORRECTION_NONE};
    curve cv_t = {&gmp_tensor, 1000, ns, nn, "N"};
    run_curve(&cv_t, reps, budget, w0, obs);
    curve cv_r = {&wconfigs[0], 1000, ns, nn, "N"};
    run_curve(&cv_r, reps, budget, w0, obs);
    for (int k = 1; k < NW; k++) {
        curve cv = {&wconfigs[k], 512, csp_ns, ncn, "N"};
        run_curve(&cv, reps, budget, w0, obs);
    }
    free(w0);
    free(obs);
    return 0;
}
