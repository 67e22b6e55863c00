/* Batch-OMP timing on data written by omp_vs_sklearn.py (run that script).
 *   bench_omp IN OUT REPEATS
 * IN:  int64 n, rows, k; float64 G[n][n]; float32 W[rows][n]
 * OUT: uint64 support[rows][ceil(n/64)]
 * Prints the median and best wall time of csp_solver_solve (b = G w
 * included) and of the sgemm b = W G alone, over REPEATS runs after one
 * warm-up. Single-threaded unless CSP_THREADS is set; set
 * OPENBLAS_NUM_THREADS=1 for single-thread figures. */
#include <csp/csp.h>

#include <cblas.h>
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

static void *read_all(FILE *f, size_t size) {
    void *p = malloc(size);
    if (p == NULL || fread(p, 1, size, f) != size) {
        fprintf(stderr, "bench_omp: short read\n");
        exit(2);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_omp IN OUT REPEATS\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    int64_t hdr[3];
    if (in == NULL || fread(hdr, sizeof hdr, 1, in) != 1)
        return 2;
    int64_t n = hdr[0], rows = hdr[1], k = hdr[2], words = (n + 63) / 64;
    int repeats = atoi(argv[3]);
    if (repeats < 1)
        repeats = 1;
    double *G = read_all(in, (size_t)(n * n) * sizeof *G);
    float *W = read_all(in, (size_t)(rows * n) * sizeof *W);
    fclose(in);
    float *X = malloc((size_t)(rows * n) * sizeof *X);
    float *G32 = malloc((size_t)(n * n) * sizeof *G32);
    uint64_t *sup = calloc((size_t)(rows * words), sizeof *sup);
    for (int64_t i = 0; i < n * n; i++)
        G32[i] = (float)G[i];

    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    const char *th = getenv("CSP_THREADS");
    co.num_threads = th != NULL ? atoi(th) : 1;
    csp_context *ctx = NULL;
    csp_sensing *sen = NULL;
    csp_solver *sv = NULL;
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = CSP_SENSING_GRAM;
    so.n = n;
    csp_solver_batch b;
    csp_solver_batch_init(&b, sizeof b);
    b.rows = rows;
    b.n = n;
    b.w = W;
    b.x = X;
    b.k_all = (int32_t)k;
    b.support = sup;
    csp_status st = csp_context_create(&ctx, &co);
    if (st == CSP_OK)
        st = csp_sensing_create(&sen, ctx, &so);
    if (st == CSP_OK)
        st = csp_sensing_set_gram(sen, G, n);
    if (st == CSP_OK)
        st = csp_solver_create(&sv, ctx, NULL);
    if (st == CSP_OK)
        st = csp_solver_solve(sv, sen, 0, 0, &b); /* warm-up (prepares the Gram) */
    if (st < 0) {
        fprintf(stderr, "bench_omp: %s: %s\n", csp_status_name(st), csp_context_last_error(ctx));
        return 1;
    }
    double *t = malloc((size_t)repeats * sizeof *t), *tg = malloc((size_t)repeats * sizeof *tg);
    float *B = malloc((size_t)(256 * n) * sizeof *B);
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        csp_solver_solve(sv, sen, 0, 0, &b);
        t[r] = now() - t0;
        /* The GEMM part alone, chunked as the solver does it. */
        t0 = now();
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            int cnt = (int)(rows - r0 < 256 ? rows - r0 : 256);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cnt, (int)n, (int)n, 1.0f,
                        W + r0 * n, (int)n, G32, (int)n, 0.0f, B, (int)n);
        }
        tg[r] = now() - t0;
    }
    qsort(t, (size_t)repeats, sizeof *t, cmp_double);
    qsort(tg, (size_t)repeats, sizeof *tg, cmp_double);
    printf("csp_omp median_s=%.6f best_s=%.6f gemm_median_s=%.6f rows=%lld n=%lld k=%lld "
           "threads=%d\n",
           t[repeats / 2], t[0], tg[repeats / 2], (long long)rows, (long long)n, (long long)k,
           co.num_threads);
    FILE *out = fopen(argv[2], "wb");
    if (out == NULL ||
        fwrite(sup, sizeof *sup, (size_t)(rows * words), out) != (size_t)(rows * words))
        return 2;
    fclose(out);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    free(G);
    free(G32);
    free(W);
    free(X);
    free(B);
    free(sup);
    free(t);
    free(tg);
    return 0;
}
