/* The second-order sweep (CSP_SOLVER_SWEEP) against OMP with the full
 * refit on one wide layer, same run, same activation Gram:
 *   bench_sweep [n] [sparsity] [rows]     (defaults 1600 0.5 n)
 * G = X^T X / N + 0.01 mean(diag) I from N = 2n correlated inputs (AR(1)
 * columns, rho 0.8), W rows x n standard normal, k = round((1-s) n) per row.
 * Prints each method's time (the solve, and the refit for OMP; G given) and
 * its layer-output error sum_r (w-x)^T G (w-x), then the ratios; the CSP
 * event with OMP and the full correction costs OMP alone when no row was
 * damped (its coefficients are the refit), else OMP + refit. Set
 * OPENBLAS_NUM_THREADS=1 for single-thread figures. */
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static double normal(void) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u[i] = ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* sum over rows of (w - x)^T G (w - x), float64 through one GEMM. */
static double layer_error(const double *G, int64_t n, int64_t rows, const float *W,
                          const float *X) {
    double *E = calloc((size_t)(rows * n), sizeof *E), *EG = malloc((size_t)(rows * n) * 8);
    if (E == NULL || EG == NULL || rows < 1)
        exit(2);
    for (int64_t i = 0; i < rows * n; i++)
        E[i] = (double)W[i] - (double)X[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)n, 1.0, E,
                (int)n, G, (int)n, 0.0, EG, (int)n);
    double s = 0.0;
    for (int64_t i = 0; i < rows * n; i++)
        s += E[i] * EG[i];
    free(E);
    free(EG);
    return s;
}

static csp_solver *solver(csp_context *ctx, int32_t method) {
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.method = method;
    csp_solver *s = NULL;
    if (csp_solver_create(&s, ctx, &o) != CSP_OK)
        exit(2);
    return s;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 1600;
    double sp = argc > 2 ? atof(argv[2]) : 0.5;
    int64_t rows = argc > 3 ? atoll(argv[3]) : n, N = 2 * n;
    int32_t k = (int32_t)lround((1.0 - sp) * (double)n);
    double *Xs = malloc((size_t)(N * n) * sizeof *Xs), *G = malloc((size_t)(n * n) * 8);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < n; j++)
            Xs[i * n + j] = normal() + (j > 0 ? 0.8 * Xs[i * n + j - 1] : 0.0);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)N, 1.0 / N, Xs,
                (int)n, Xs, (int)n, 0.0, G, (int)n);
    double tr = 0.0;
    for (int64_t j = 0; j < n; j++)
        tr += G[j * n + j];
    for (int64_t j = 0; j < n; j++)
        G[j * n + j] += 0.01 * tr / n;
    free(Xs);
    float *W = malloc((size_t)(rows * n) * 4), *X = malloc((size_t)(rows * n) * 4);
    for (int64_t i = 0; i < rows * n; i++)
        W[i] = (float)normal();
    uint64_t *sup = calloc((size_t)(rows * ((n + 63) / 64)), 8);

    csp_context *ctx = NULL;
    csp_sensing *sen = NULL;
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = CSP_SENSING_GRAM;
    so.n = n;
    csp__gram *g = NULL;
    if (csp_context_create(&ctx, NULL) != CSP_OK || csp_sensing_create(&sen, ctx, &so) != CSP_OK ||
        csp_sensing_set_gram(sen, G, n) != CSP_OK || csp__sensing_prepare(sen, 0, 0, &g) != CSP_OK)
        return 2;
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.rows = rows;
    b.n = n;
    b.w = W;
    b.x = X;
    b.k_all = k;
    b.support = sup;
    csp_solver *sw = solver(ctx, CSP_SOLVER_SWEEP), *omp = solver(ctx, CSP_SOLVER_OMP);
    printf("bench_sweep: n = %lld, rows = %lld, sparsity %.2f (k = %d), G from %lld inputs\n",
           (long long)n, (long long)rows, sp, (int)k, (long long)N);
    double t0 = now();
    csp_status st = csp__solver_run(sw, g, &b, "bench_sweep");
    double t_sw = now() - t0;
    double e_sw = layer_error(G, n, rows, W, X);
    t0 = now();
    st = st < 0 ? st : csp__solver_refit(sw, g, &b, 1.0, false, "bench_sweep");
    double t_swr = now() - t0 + t_sw;
    double e_swr = layer_error(G, n, rows, W, X);
    t0 = now();
    csp_row_stats *rs = calloc((size_t)rows, sizeof *rs);
    b.stats = rs;
    b.stats_size = sizeof *rs;
    st = st < 0 ? st : csp__solver_run(omp, g, &b, "bench_sweep");
    double t_omp_sel = now() - t0;
    b.stats = NULL;
    /* OMP's coefficients are the least-squares fit on its support, so a
     * pruner event with OMP and the full correction refits only the rows
     * OMP had to damp (lib/prune/strategy_cs.c, correct()). */
    int64_t damped = 0;
    for (int64_t r = 0; r < rows; r++)
        damped += (rs[r].flags & CSP_ROW_DAMPED) != 0;
    double e_omp_sel = layer_error(G, n, rows, W, X);
    t0 = now();
    st = st < 0 ? st : csp__solver_refit(omp, g, &b, 1.0, false, "bench_sweep");
    double t_omp = now() - t0 + t_omp_sel;
    double e_omp = layer_error(G, n, rows, W, X);
    double t_event = damped > 0 ? t_omp : t_omp_sel;
    double e_event = damped > 0 ? e_omp : e_omp_sel;
    free(rs);
    if (st < 0) {
        fprintf(stderr, "bench_sweep: %s\n", csp_context_last_error(ctx));
        return 1;
    }
    printf("  sweep               %8.3f s   layer error %.6g\n", t_sw, e_sw);
    printf("  sweep + full refit  %8.3f s   layer error %.6g\n", t_swr, e_swr);
    printf("  OMP                 %8.3f s   layer error %.6g   (%lld of %lld rows damped)\n",
           t_omp_sel, e_omp_sel, (long long)damped, (long long)rows);
    printf("  OMP + full refit    %8.3f s   layer error %.6g\n", t_omp, e_omp);
    printf("  CSP event, OMP + full correction (the pruner: refits damped rows only) %.3f s\n",
           t_event);
    printf("  time  event / sweep = %.2f   error  sweep / OMP+refit = %.3f, "
           "sweep+refit / OMP+refit = %.3f\n",
           t_event / t_sw, e_sw / e_omp, e_swr / e_omp);
    /* For bench/run.sh's summary. */
    printf("kv n %lld\nkv rows %lld\nkv sweep_s %.6g\nkv sweep_refit_s %.6g\n"
           "kv omp_refit_s %.6g\nkv omp_s %.6g\nkv omp_damped_rows %lld\n", (long long)n,
           (long long)rows, t_sw, t_swr, t_omp, t_omp_sel, (long long)damped);
    printf("kv omp_refit_time_ratio %.6g\nkv omp_refit_error_ratio %.6g\n"
           "kv sweep_refit_time_ratio %.6g\nkv sweep_refit_error_ratio %.6g\n", t_event / t_sw,
           e_event / e_sw, t_swr / t_sw, e_swr / e_sw);
    csp_solver_free(sw);
    csp_solver_free(omp);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    free(G), free(W), free(X), free(sup);
    return 0;
}
