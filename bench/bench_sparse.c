/* Sparse inference (csp_sparse_matvec / csp_sparse_matmul) against OpenBLAS
 * cblas_sgemv / cblas_sgemm on the same matrices, in the same run, one
 * thread. Shapes of the recogniser (512x40, 512x128, 512x256) and
 * memory-bound ones (2048x512, 4096x1024, 4096x4096); sparsity 0.5 to
 * 0.98 with row-balanced masks (what CSP's row granularity gives: the
 * balanced layout, no row pointers); batch 1 (sgemv), 4 and 16 (sgemm,
 * batch-major x[B][cols] -> y[B][rows], the same layout as the sparse call).
 *
 *   OPENBLAS_NUM_THREADS=1 build-rel/bench/bench_sparse [reps] [kernel] [pattern]
 *
 * reps: repetitions per timing (the fastest is reported; default 7); kernel: auto,
 * portable, avx2, avx512 (default auto); pattern: balanced (default) or
 * random (i.i.d. mask: CSR with row pointers). Every sparse result is
 * checked against the dense one before it is timed.
 *
 * Columns: dense and sparse time per call, speed-up = dense /
 * sparse, both the fastest of the repetitions, bound = dense bytes / sparse bytes (the byte ratio: what a
 * purely memory-bound kernel could gain), frac = speed-up / bound. */
#include <csp/csp.h>

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* This process's CPU time (one thread: the time the scheduler gave it, so
 * a loaded machine's other jobs are left out), or with CSP_BENCH_CLOCK=wall
 * the wall clock. */
static clockid_t bench_clock = CLOCK_PROCESS_CPUTIME_ID;
static double now(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static float rndf(void) { return (float)((double)(rnd() >> 11) * 0x1.0p-53 * 2.0 - 1.0); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *arg);

/* Fastest repetition's seconds per call (the least disturbed by other jobs
 * on a shared machine); each repetition runs enough calls for ~4 ms. */
static double time_it(bench_fn fn, void *arg, int reps) {
    fn(arg);
    int calls = 1;
    for (;;) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            fn(arg);
        if (now() - t0 > 0.004 || calls >= (1 << 20))
            break;
        calls *= 2;
    }
    double t[64];
    if (reps > 64)
        reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            fn(arg);
        t[r] = (now() - t0) / calls;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[0];
}

typedef struct {
    int64_t rows, cols;
    int32_t batch;
    const float *w, *x;
    float *y;
    const csp_sparse *s;
} job;

static void run_dense(void *p) {
    job *j = p;
    if (j->batch == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)j->rows, (int)j->cols, 1.0f, j->w,
                    (int)j->cols, j->x, 1, 0.0f, j->y, 1);
    else /* Y[B][rows] = X[B][cols] W^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->batch, (int)j->rows,
                    (int)j->cols, 1.0f, j->x, (int)j->cols, j->w, (int)j->cols, 0.0f, j->y,
                    (int)j->rows);
}

static void run_sparse(void *p) {
    job *j = p;
    if (j->batch == 1)
        csp_sparse_matvec(j->s, NULL, 1.0f, j->x, 0.0f, j->y);
    else
        csp_sparse_matmul(j->s, NULL, j->batch, 1.0f, j->x, 0, 0.0f, j->y, 0);
}

static const char *format_name(int32_t f) {
    return f == CSP_SPARSE_CSR ? "csr" : f == CSP_SPARSE_BALANCED ? "balanced" : "nm";
}
static const char *kernel_name(int32_t k) {
    switch (k) {
    case CSP_SPARSE_KERNEL_PORTABLE: return "portable";
    case CSP_SPARSE_KERNEL_AVX2: return "avx2";
    case CSP_SPARSE_KERNEL_AVX512: return "avx512";
    case CSP_SPARSE_KERNEL_NEON: return "neon";
    default: return "auto";
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    const char *kname = argc > 2 ? argv[2] : "auto";
    bool random_mask = argc > 3 && strcmp(argv[3], "random") == 0;
    int32_t kernel = CSP_SPARSE_KERNEL_AUTO;
    for (int32_t k = 1; k <= CSP_SPARSE_KERNEL_NEON; k++)
        if (strcmp(kname, kernel_name(k)) == 0)
            kernel = k;
    if (reps < 1)
        reps = 7;
    const char *clk = getenv("CSP_BENCH_CLOCK");
    if (clk != NULL && strcmp(clk, "wall") == 0)
        bench_clock = CLOCK_MONOTONIC;
    static const int64_t shapes[][2] = {{512, 40},   {512, 128},   {512, 256},
                                        {2048, 512}, {4096, 1024}, {4096, 4096}};
    static const double sparsity[] = {0.5, 0.7, 0.8, 0.9, 0.95, 0.98};
    static const int32_t batches[] = {1, 4, 16};
    csp_context *ctx;
    if (csp_context_create(&ctx, NULL) != CSP_OK)
        return 1;
    printf("# bench_sparse: libcsp %s, fastest of %d reps, %s, mask %s, requested kernel %s\n",
           csp_version_string(), reps,
           bench_clock == CLOCK_MONOTONIC ? "wall clock" : "process CPU time",
           random_mask ? "random (i.i.d.)" : "row-balanced", kname);
    printf("%-10s %5s %3s %-8s %-8s %10s %10s %8s %7s %6s\n", "shape", "s", "B", "format",
           "kernel", "dense_us", "sparse_us", "speedup", "bound", "frac");
    int rc = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t rows = shapes[si][0], cols = shapes[si][1];
        float *w = malloc((size_t)(rows * cols) * sizeof *w);
        float *x = malloc((size_t)(16 * cols) * sizeof *x);
        float *yd = malloc((size_t)(16 * rows) * sizeof *yd);
        float *ys = malloc((size_t)(16 * rows) * sizeof *ys);
        for (int64_t i = 0; i < 16 * cols; i++)
            x[i] = rndf();
        double dense_t[3];
        for (int bi = 0; bi < 3; bi++) {
            for (int64_t i = 0; i < rows * cols; i++)
                w[i] = rndf();
            job j = {rows, cols, batches[bi], w, x, yd, NULL};
            dense_t[bi] = time_it(run_dense, &j, reps);
        }
        for (size_t pi = 0; pi < sizeof sparsity / sizeof sparsity[0]; pi++) {
            double s = sparsity[pi];
            int64_t keep = cols - (int64_t)llround(s * (double)cols);
            for (int64_t r = 0; r < rows; r++) {
                float *row = w + r * cols;
                if (random_mask) {
                    for (int64_t c = 0; c < cols; c++) {
                        float v = rndf();
                        row[c] = ((double)(rnd() >> 11) * 0x1.0p-53) < s ? 0.0f : (v ? v : 1.0f);
                    }
                    continue;
                }
                memset(row, 0, (size_t)cols * sizeof *row);
                for (int64_t placed = 0; placed < keep;) {
                    int64_t c = (int64_t)(rnd() % (uint64_t)cols);
                    if (row[c] != 0.0f)
                        continue;
                    float v = rndf();
                    row[c] = v != 0.0f ? v : 1.0f;
                    placed++;
                }
            }
            csp_sparse_options o;
            csp_sparse_options_init(&o, sizeof o);
            o.kernel = kernel;
            csp_sparse *sp;
            if (csp_sparse_from_dense(ctx, w, rows, cols, 0, &o, &sp) != CSP_OK) {
                fprintf(stderr, "bench_sparse: %s\n", csp_context_last_error(ctx));
                return 1;
            }
            csp_sparse_info info;
            csp_sparse_info_init(&info, sizeof info);
            csp_sparse_inspect(sp, &info);
            double bound = (double)info.dense_bytes / (double)info.bytes;
            for (int bi = 0; bi < 3; bi++) {
                int32_t B = batches[bi];
                job jd = {rows, cols, B, w, x, yd, NULL}, js = {rows, cols, B, w, x, ys, sp};
                run_dense(&jd);
                run_sparse(&js);
                for (int64_t i = 0; i < B * rows; i++)
                    if (fabsf(yd[i] - ys[i]) > 1e-4f * (1.0f + fabsf(yd[i]))) {
                        fprintf(stderr, "bench_sparse: wrong result %lldx%lld s %.2f B %d\n",
                                (long long)rows, (long long)cols, s, (int)B);
                        return 1;
                    }
                double ts = time_it(run_sparse, &js, reps);
                double sp_up = dense_t[bi] / ts;
                char shape[32];
                snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)cols);
                printf("%-10s %5.2f %3d %-8s %-8s %10.2f %10.2f %8.2f %7.2f %6.2f\n", shape, s,
                       (int)B, format_name(info.format), kernel_name(info.kernel),
                       dense_t[bi] * 1e6, ts * 1e6, sp_up, bound, sp_up / bound);
                fflush(stdout);
            }
            csp_sparse_free(sp);
        }
        free(w);
        free(x);
        free(yd);
        free(ys);
    }
    csp_context_free(ctx);
    return rc;
}
