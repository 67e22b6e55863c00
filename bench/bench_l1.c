/* ISTA/FISTA benchmarks.
 *
 *   bench_l1 peak [B n iters]
 *     OpenBLAS sgemm peak (2048^3) and sgemm at the solver's shape (B x n x n),
 *     then FISTA forced into GEMM mode on dense iterates for a fixed number of
 *     iterations: effective GFLOP/s = 2 n^2 B iters / time, against the peak.
 *
 *   bench_l1 gap IN OUT REPEATS
 *     Time to a relative duality gap (data and baseline from l1_vs_numpy.py).
 *     IN:  int64 n, rows, has_x0; double tol; float64 G[n][n];
 *          float32 W[rows][n]; float64 lambda[rows]; [float32 X0[rows][n]]
 *     OUT: float32 X[rows][n] (automatic mode), per-mode lines on stdout.
 *
 * Links the all-symbols library to force the product mode (internal knob).
 * Set OPENBLAS_NUM_THREADS=1 for single-thread figures. */
#include <csp/csp.h>

#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* Best of three timed loops of @p calls sgemm calls (single calls are too
 * short to time alone). */
static double sgemm_gflops(int M, int N, int K, int calls) {
    float *A = malloc(sizeof(float) * (size_t)M * (size_t)K);
    float *B = malloc(sizeof(float) * (size_t)K * (size_t)N);
    float *C = malloc(sizeof(float) * (size_t)M * (size_t)N);
    for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
        A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    for (size_t i = 0; i < (size_t)K * (size_t)N; i++)
        B[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    double best = 0.0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int c = 0; c < calls; c++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
                        0.0f, C, N);
        double g = 2.0 * M * N * (double)K * calls / (now() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    free(A);
    free(B);
    free(C);
    return best;
}

static int peak(int argc, char **argv) {
    int B = argc > 2 ? atoi(argv[2]) : 4096, n = argc > 3 ? atoi(argv[3]) : 256;
    int iters = argc > 4 ? atoi(argv[4]) : 50;
    double peak_sq = sgemm_gflops(2048, 2048, 2048, 3);
    double peak_shape = sgemm_gflops(256, n, n, 400); /* one chunk, as the solver calls it */
    double peak_all = peak_sq > peak_shape ? peak_sq : peak_shape;
    csp_context *ctx = NULL;
    csp_context_create(&ctx, NULL);
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = CSP_SENSING_GAUSSIAN;
    so.n = n;
    so.rho = 0.5;
    csp_sensing *sen = NULL;
    csp_sensing_create(&sen, ctx, &so);
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.method = CSP_SOLVER_FISTA;
    o.calibrate = 0;
    o.lambda = 1e-4; /* dense iterates */
    o.tol = 1e-9;    /* never reached: every row runs max_iter */
    o.max_iter = iters;
    csp_solver *sv = NULL;
    csp_solver_create(&sv, ctx, &o);
    sv->l1_mode = 1;
    float *w = malloc(sizeof(float) * (size_t)B * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)B * (size_t)n);
    for (size_t i = 0; i < (size_t)B * (size_t)n; i++)
        w[i] = (float)sin((double)i * 0.7) * 2.0f;
    csp_row_stats *st = malloc(sizeof *st * (size_t)B);
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.rows = B;
    b.n = n;
    b.w = w;
    b.x = x;
    b.stats = st;
    b.stats_size = sizeof *st;
    csp_solver_solve(sv, sen, 0, 0, &b); /* warm-up: Gram, Lipschitz bound */
    double t[5];
    int64_t total = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        csp_solver_solve(sv, sen, 0, 0, &b);
        t[r] = now() - t0;
    }
    for (int i = 0; i < B; i++)
        total += st[i].iterations;
    double tm = median(t, 5);
    double flops = 2.0 * (double)n * n * ((double)total + B); /* + b = W G */
    double nnz = 0;
    for (size_t i = 0; i < (size_t)B * (size_t)n; i++)
        nnz += x[i] != 0.0f;
    printf("sgemm 2048^3: %.1f GFLOP/s; sgemm %dx%dx%d: %.1f GFLOP/s; peak = %.1f\n", peak_sq,
           256, n, n, peak_shape, peak_all);
    printf("FISTA GEMM mode (B=%d, n=%d, %d iterations, density %.2f): %.4f s, %.1f GFLOP/s = "
           "%.0f%% of the sgemm peak\n",
           B, n, iters, nnz / ((double)B * n), tm, flops / tm * 1e-9,
           100.0 * flops / tm * 1e-9 / peak_all);
    free(w);
    free(x);
    free(st);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    return 0;
}

static void *read_all(FILE *f, size_t size) {
    void *p = malloc(size);
    if (p == NULL || fread(p, 1, size, f) != size) {
        fprintf(stderr, "bench_l1: short read\n");
        exit(2);
    }
    return p;
}

static int gap(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench_l1 gap IN OUT REPEATS\n");
        return 2;
    }
    FILE *in = fopen(argv[2], "rb");
    int64_t hdr[3];
    double tol;
    if (in == NULL || fread(hdr, sizeof hdr, 1, in) != 1 || fread(&tol, sizeof tol, 1, in) != 1)
        return 2;
    int64_t n = hdr[0], rows = hdr[1];
    bool has_x0 = hdr[2] != 0;
    int repeats = atoi(argv[4]);
    double *G = read_all(in, sizeof(double) * (size_t)(n * n));
    float *W = read_all(in, sizeof(float) * (size_t)(rows * n));
    double *lam = read_all(in, sizeof(double) * (size_t)rows);
    float *X0 = has_x0 ? read_all(in, sizeof(float) * (size_t)(rows * n)) : NULL;
    fclose(in);
    float *X = malloc(sizeof(float) * (size_t)(rows * n));
    float *Xauto = malloc(sizeof(float) * (size_t)(rows * n));
    csp_row_stats *st = malloc(sizeof *st * (size_t)rows);

    csp_context *ctx = NULL;
    csp_context_create(&ctx, NULL);
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = CSP_SENSING_GRAM;
    so.n = n;
    csp_sensing *sen = NULL;
    csp_sensing_create(&sen, ctx, &so);
    if (csp_sensing_set_gram(sen, G, n) != CSP_OK) {
        fprintf(stderr, "%s\n", csp_context_last_error(ctx));
        return 1;
    }
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.method = CSP_SOLVER_FISTA;
    o.calibrate = 0;
    o.tol = tol;
    o.max_iter = 100000;
    csp_solver *sv = NULL;
    csp_solver_create(&sv, ctx, &o);
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.rows = rows;
    b.n = n;
    b.w = W;
    b.x = X;
    b.lambda = lam;
    b.stats = st;
    b.stats_size = sizeof *st;
    b.warm_start = has_x0;
    static const char *names[3] = {"auto", "gemm", "rows"};
    double *t = malloc(sizeof(double) * (size_t)(repeats + 1));
    for (int mode = 0; mode < 3; mode++) {
        sv->l1_mode = mode;
        int64_t iters = 0, notconv = 0;
        csp_status last = CSP_OK;
        for (int r = 0; r <= repeats; r++) { /* r = 0: warm-up */
            if (has_x0)
                memcpy(X, X0, sizeof(float) * (size_t)(rows * n));
            double t0 = now();
            last = csp_solver_solve(sv, sen, 0, 0, &b);
            t[r] = now() - t0;
        }
        for (int64_t i = 0; i < rows; i++) {
            iters += st[i].iterations;
            notconv += !st[i].converged;
        }
        double tm = median(t + 1, repeats);
        printf("csp mode=%s median_s=%.6f us_per_signal=%.3f mean_iters=%.1f notconv=%lld "
               "status=%s\n",
               names[mode], tm, tm / (double)rows * 1e6, (double)iters / (double)rows,
               (long long)notconv, csp_status_name(last));
        if (mode == 0)
            memcpy(Xauto, X, sizeof(float) * (size_t)(rows * n));
    }
    FILE *out = fopen(argv[3], "wb");
    if (out == NULL || fwrite(Xauto, sizeof(float), (size_t)(rows * n), out) != (size_t)(rows * n))
        return 2;
    fclose(out);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    free(G);
    free(W);
    free(lam);
    free(X0);
    free(X);
    free(Xauto);
    free(st);
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "peak") == 0)
        return peak(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "gap") == 0)
        return gap(argc, argv);
    fprintf(stderr, "usage: bench_l1 peak [B n iters] | gap IN OUT REPEATS\n");
    return 2;
}
