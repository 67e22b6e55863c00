/* Helper for omp_sklearn.py: solve a batch with libcsp's OMP on a Gram read
 * from a file, write x and the supports.
 *   omp_tool IN OUT
 * IN:  int64 n, rows, k; float64 G[n][n]; float32 W[rows][n]   (native endian)
 * OUT: float32 X[rows][n]; uint64 support[rows][ceil(n/64)] */
#include <csp/csp.h>

#include <stdio.h>
#include <stdlib.h>

static void *read_all(FILE *f, size_t size) {
    void *p = malloc(size);
    if (p == NULL || fread(p, 1, size, f) != size) {
        fprintf(stderr, "omp_tool: short read\n");
        exit(2);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: omp_tool IN OUT\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (in == NULL)
        return 2;
    int64_t hdr[3];
    if (fread(hdr, sizeof hdr, 1, in) != 1)
        return 2;
    int64_t n = hdr[0], rows = hdr[1], k = hdr[2], words = (n + 63) / 64;
    double *G = read_all(in, (size_t)(n * n) * sizeof *G);
    float *W = read_all(in, (size_t)(rows * n) * sizeof *W);
    fclose(in);
    float *X = malloc((size_t)(rows * n) * sizeof *X);
    uint64_t *sup = calloc((size_t)(rows * words), sizeof *sup);

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
    csp_status st = csp_context_create(&ctx, NULL);
    if (st == CSP_OK)
        st = csp_sensing_create(&sen, ctx, &so);
    if (st == CSP_OK)
        st = csp_sensing_set_gram(sen, G, n);
    if (st == CSP_OK)
        st = csp_solver_create(&sv, ctx, NULL);
    if (st == CSP_OK)
        st = csp_solver_solve(sv, sen, 0, 0, &b);
    if (st < 0) {
        fprintf(stderr, "omp_tool: %s: %s\n", csp_status_name(st), csp_context_last_error(ctx));
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (out == NULL || fwrite(X, sizeof *X, (size_t)(rows * n), out) != (size_t)(rows * n) ||
        fwrite(sup, sizeof *sup, (size_t)(rows * words), out) != (size_t)(rows * words))
        return 2;
    fclose(out);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
    free(G);
    free(W);
    free(X);
    free(sup);
    return 0;
}
