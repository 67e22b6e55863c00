/* libcsp's deterministic products (lib/linalg/gemm.c) against the BLAS the
 * library was built with (OpenBLAS on Debian), same shapes, same run: the
 * ratio csp time / BLAS time per row (1.0 = as fast; > 1 slower). Run with
 * OPENBLAS_NUM_THREADS=1 for the single-thread comparison:
 *   OPENBLAS_NUM_THREADS=1 build/bench/bench_gemm [reps] */
#include "linalg/linalg.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *fill(size_t count, size_t size) {
    unsigned char *p = malloc(count * size);
    if (p == NULL)
        exit(1);
    for (size_t i = 0; i < count; i++) {
        double v = (double)((i * 2654435761u) % 1000) / 500.0 - 1.0;
        if (size == sizeof(float))
            ((float *)p)[i] = (float)v;
        else
            ((double *)p)[i] = v;
    }
    return p;
}

#define BEST(expr, out)                                                                       \
    do {                                                                                      \
        double best_ = 1e30;                                                                  \
        for (int r_ = 0; r_ < reps; r_++) {                                                   \
            double t0_ = now();                                                               \
            expr;                                                                             \
            double t_ = now() - t0_;                                                          \
            best_ = t_ < best_ ? t_ : best_;                                                  \
        }                                                                                     \
        out = best_;                                                                          \
    } while (0)

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    printf("%-44s %10s %10s %7s\n", "product (m x n x k)", "csp ms", "blas ms", "ratio");
    static const int sg[][3] = {{64, 256, 256}, {256, 512, 512}, {128, 1600, 1600}};
    for (int q = 0; q < 3; q++) {
        int m = sg[q][0], n = sg[q][1], k = sg[q][2];
        float *A = fill((size_t)m * k, 4), *B = fill((size_t)k * n, 4), *C = fill((size_t)m * n, 4);
        double tc, tb;
        BEST(csp__sgemm(m, n, k, A, k, 1, B, n, C, n, false), tc);
        BEST(cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, A, k, B, n,
                         0.0f, C, n),
             tb);
        char name[64];
        snprintf(name, sizeof name, "sgemm (solver rows x G) %d x %d x %d", m, n, k);
        printf("%-44s %10.3f %10.3f %7.2f\n", name, 1e3 * tc, 1e3 * tb, tc / tb);
        free(A);
        free(B);
        free(C);
    }
    static const int dg[][3] = {{64, 256, 256}, {128, 1024, 1024}};
    for (int q = 0; q < 2; q++) {
        int m = dg[q][0], n = dg[q][1], k = dg[q][2];
        double *A = fill((size_t)m * k, 8), *B = fill((size_t)k * n, 8), *C = fill((size_t)m * n, 8);
        double tc, tb;
        BEST(csp__dgemm(m, n, k, A, k, 1, B, n, C, n, false), tc);
        BEST(cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, A, k, B, n,
                         0.0, C, n),
             tb);
        char name[64];
        snprintf(name, sizeof name, "dgemm (errors x G) %d x %d x %d", m, n, k);
        printf("%-44s %10.3f %10.3f %7.2f\n", name, 1e3 * tc, 1e3 * tb, tc / tb);
        free(A);
        free(B);
        free(C);
    }
    /* The activation accumulator as csp_sensing_observe() runs it: float32
     * SYRKs over chunks of 128 rows added into the float64 S, against one
     * BLAS ssyrk over the whole batch into a float32 C (no chunks, no
     * float64 sum: a lower bound for the same products). */
    static const int sy[][2] = {{128, 1600}, {256, 256}, {1600, 256}};
    for (int q = 0; q < 3; q++) {
        int n = sy[q][0], k = sy[q][1];
        float *X = fill((size_t)k * n, 4), *Cf = fill((size_t)n * n, 4);
        float *T = fill((size_t)CSP__SYRK_SCRATCH_ROWS * n, 4);
        double *C = fill((size_t)n * n, 8);
        double tc, tb;
        BEST(for (int r0 = 0; r0 < k; r0 += 128) csp__ssyrk_tn_d(
                 n, k - r0 < 128 ? k - r0 : 128, X + (size_t)r0 * n, n, T, C, n, 0, n),
             tc);
        BEST(cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, k, 1.0f, X, n, 1.0f, Cf, n),
             tb);
        char name[64];
        snprintf(name, sizeof name, "ssyrk->f64 (observe) n %d, batch %d", n, k);
        printf("%-44s %10.3f %10.3f %7.2f\n", name, 1e3 * tc, 1e3 * tb, tc / tb);
        free(X);
        free(Cf);
        free(T);
        free(C);
    }
    for (int n = 256; n <= 1600; n *= 6) {
        double *G = fill((size_t)n * n, 8), *v = fill((size_t)n, 8), *w = fill((size_t)n, 8);
        double tc, tb;
        BEST(for (int it = 0; it < 20; it++) csp__dgemm(1, n, n, v, n, 1, G, n, w, n, false), tc);
        BEST(for (int it = 0; it < 20; it++) cblas_dsymv(CblasRowMajor, CblasUpper, n, 1.0, G, n,
                                                          v, 1, 0.0, w, 1),
             tb);
        char name[64];
        snprintf(name, sizeof name, "G v (power iteration) n %d, 20 its", n);
        printf("%-44s %10.3f %10.3f %7.2f\n", name, 1e3 * tc, 1e3 * tb, tc / tb);
        free(G);
        free(v);
        free(w);
    }
    return 0;
}
