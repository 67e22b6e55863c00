/* Sparse inference (include/csp/sparse.h): every layout (CSR with 16- and
 * 32-bit indices, balanced, N:M with 2/4/8-bit positions) and every kernel
 * this CPU runs against a float64 reference, on random shapes with empty
 * rows, all-zero and full matrices, odd sizes, batches 1, 3 and 32,
 * strided batches, alpha/beta; kernels against each other; thread-count
 * and batch independence (bit for bit); the pruner and export sources; bad
 * input.
 *
 * Tolerance: |y - ref| <= 4 n eps32 (sum_k |w_k x_k| + |beta y_old|) + 1e-30,
 * with n the row's stored count (+1) and ref computed in float64 from the
 * same float32 weights and inputs: the bound of a float32 sum of n terms
 * in any order, times 4. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "prune/pruner_internal.h"
#include "sparse/sparse_internal.h"

static const int32_t kernels[] = {CSP_SPARSE_KERNEL_PORTABLE, CSP_SPARSE_KERNEL_AVX2,
                                  CSP_SPARSE_KERNEL_AVX512, CSP_SPARSE_KERNEL_NEON};
#define NKERNELS 4

/* A random rows x cols matrix (row stride ld) whose pattern is one of:
 * 0 random density, 1 balanced (k per row), 2 N:M. Some rows emptied. */
static float *make_matrix(test_rng *r, int64_t rows, int64_t cols, int64_t ld, int pattern,
                          double density, int32_t n, int32_t m, bool empty_rows) {
    float *d = calloc((size_t)(rows * ld), sizeof *d);
    int64_t k = (int64_t)(density * (double)cols);
    for (int64_t i = 0; i < rows; i++) {
        bool empty = empty_rows && test_rng_u64(r) % 5 == 0;
        if (pattern == 0) {
            for (int64_t c = 0; c < cols; c++)
                if (!empty && test_rng_uniform(r) < density)
                    d[i * ld + c] = (float)test_rng_normal(r);
        } else if (pattern == 1) {
            /* k distinct columns per row (a partial Fisher-Yates over marks) */
            int64_t placed = 0;
            while (placed < k) {
                int64_t c = (int64_t)(test_rng_u64(r) % (uint64_t)cols);
                if (d[i * ld + c] != 0.0f)
                    continue;
                float v = (float)test_rng_normal(r);
                d[i * ld + c] = v == 0.0f ? 1.0f : v;
                placed++;
            }
        } else {
            for (int64_t g = 0; g < cols; g += m) {
                int32_t keep = empty ? 0 : (int32_t)(test_rng_u64(r) % (uint64_t)(n + 1));
                for (int32_t j = 0; j < keep; j++) {
                    int64_t c = g + (int64_t)(test_rng_u64(r) % (uint64_t)m);
                    float v = (float)test_rng_normal(r);
                    d[i * ld + c] = v == 0.0f ? 1.0f : v;
                }
            }
        }
    }
    return d;
}

/* Check y (batch-major, ldy) against the float64 reference of
 * alpha W x + beta y0. */
static void check_product(const float *d, int64_t rows, int64_t cols, int64_t ld, int32_t batch,
                          float alpha, const float *x, int64_t ldx, float beta, const float *y0,
                          const float *y, int64_t ldy, const char *what) {
    for (int32_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < rows; i++) {
            double ref = 0.0, mag = 0.0;
            int64_t n = 1;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)d[i * ld + c] * (double)x[b * ldx + c];
                ref += p;
                mag += fabs(p);
                n += d[i * ld + c] != 0.0f;
            }
            double old = beta == 0.0f ? 0.0 : (double)beta * (double)y0[b * ldy + i];
            ref = (double)alpha * ref + old;
            double tol = 4.0 * (double)n * FLT_EPSILON * (fabs((double)alpha) * mag + fabs(old)) +
                         1e-30;
            double got = y[b * ldy + i];
            REQUIRE(fabs(got - ref) <= tol, "%s: b %d row %lld: %.9g vs %.9g (tol %.3g)", what,
                    (int)b, (long long)i, got, ref, tol);
        }
}

static float *random_vec(test_rng *r, int64_t n) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)test_rng_normal(r);
    return v;
}

/* Build with every kernel and the given format, check every batch. */
static void check_all(csp_context *ctx, test_rng *r, const float *d, int64_t rows, int64_t cols,
                      int64_t ld, int32_t format, int32_t n, int32_t m, int32_t want_format,
                      const char *what) {
    const int32_t batches[] = {1, 3, 32};
    for (int kk = 0; kk < NKERNELS; kk++) {
        if (csp__sparse_kernels_get(kernels[kk]) == NULL)
            continue;
        csp_sparse_options o;
        csp_sparse_options_init(&o, sizeof o);
        o.format = format;
        o.kernel = kernels[kk];
        o.nm_n = n;
        o.nm_m = m;
        csp_sparse *s;
        ck_assert_status(ctx, csp_sparse_from_dense(ctx, d, rows, cols, ld, &o, &s), CSP_OK);
        csp_sparse_info info;
        csp_sparse_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_sparse_inspect(s, &info), CSP_OK);
        ck_assert_int_eq(info.format, want_format);
        ck_assert_int_eq(info.kernel, kernels[kk]);
        ck_assert_int_eq(info.rows, rows);
        ck_assert_int_eq(info.cols, cols);
        int64_t nnz = 0;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t c = 0; c < cols; c++)
                nnz += d[i * ld + c] != 0.0f;
        ck_assert_int_eq(info.nnz, nnz);
        ck_assert_int_eq(info.index_bytes, cols <= 65536 ? 2 : 4);
        for (int bi = 0; bi < 3; bi++) {
            int32_t B = batches[bi];
            int64_t ldx = cols + (bi == 1 ? 3 : 0), ldy = rows + (bi == 1 ? 5 : 0);
            float *x = random_vec(r, B * ldx), *y0 = random_vec(r, B * ldy);
            float *y = malloc((size_t)(B * ldy) * sizeof *y);
            float alpha = bi == 2 ? -0.5f : 1.0f, beta = bi == 1 ? 0.25f : 0.0f;
            memcpy(y, y0, (size_t)(B * ldy) * sizeof *y);
            if (beta == 0.0f)
                for (int64_t t = 0; t < B * ldy; t += 7)
                    y[t] = NAN; /* beta 0: y is only written */
            ck_assert_status(ctx, csp_sparse_matmul(s, ctx, B, alpha, x, ldx, beta, y, ldy),
                             CSP_OK);
            check_product(d, rows, cols, ld, B, alpha, x, ldx, beta, y0, y, ldy, what);
            /* every vector of the batch equals matvec on it, bit for bit */
            float *yv = malloc((size_t)rows * sizeof *yv);
            for (int32_t b = 0; b < B; b++) {
                memcpy(yv, y0 + b * ldy, (size_t)rows * sizeof *yv);
                ck_assert_int_eq(csp_sparse_matvec(s, NULL, alpha, x + b * ldx, beta, yv), CSP_OK);
                REQUIRE(memcmp(yv, y + b * ldy, (size_t)rows * sizeof *yv) == 0,
                        "%s: batch %d vector %d differs from matvec", what, (int)B, (int)b);
            }
            free(yv);
            free(x);
            free(y0);
            free(y);
        }
        csp_sparse_free(s);
    }
}

START_TEST(test_csr_random) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    const double dens[] = {0.0, 0.03, 0.1, 0.3, 0.7, 1.0};
    for (int t = 0; t < 24; t++) {
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 90);
        int64_t cols = 1 + (int64_t)(test_rng_u64(&r) % 200);
        int64_t ld = cols + (t % 3 == 0 ? 7 : 0);
        double dn = dens[t % 6];
        float *d = make_matrix(&r, rows, cols, ld, 0, dn, 0, 0, true);
        bool balanced = true;
        int64_t c0 = -1;
        for (int64_t i = 0; i < rows; i++) {
            int64_t c = 0;
            for (int64_t j = 0; j < cols; j++)
                c += d[i * ld + j] != 0.0f;
            if (c0 >= 0 && c != c0)
                balanced = false;
            c0 = c;
        }
        check_all(ctx, &r, d, rows, cols, ld, CSP_SPARSE_CSR, 0, 0, CSP_SPARSE_CSR, "csr");
        check_all(ctx, &r, d, rows, cols, ld, CSP_SPARSE_AUTO, 0, 0,
                  balanced ? CSP_SPARSE_BALANCED : CSP_SPARSE_CSR, "auto");
        free(d);
    }
    csp_context_free(ctx);
}
END_TEST

/* Every batch size 1..33 on odd shapes (slices padded: rows not a multiple
 * of 16) of each layout: the float64 reference and matvec bit for bit;
 * a CSR matrix with one dense row among near-empty ones (the row layout,
 * its slices' padding would be 10x); and a call finding the matrix's
 * transposition buffer taken (it allocates its own). */
START_TEST(test_batches) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(2, 1);
    for (int pattern = 0; pattern < 4; pattern++) {
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 70);
        int64_t cols = 8 * (1 + (int64_t)(test_rng_u64(&r) % 40));
        if (pattern == 3) { /* large enough that the padding rule picks rows */
            rows += 40;
            cols += 64;
        }
        float *d = make_matrix(&r, rows, cols, cols, pattern < 3 ? pattern : 0, 0.3, 2, 4,
                               pattern != 1);
        if (pattern == 3) { /* row 0 dense, the others one weight at most */
            for (int64_t i = 0; i < rows * cols; i++)
                d[i] = i < cols ? 1.0f + (float)test_rng_uniform(&r)
                                : (i % cols == i / cols % cols ? (float)test_rng_normal(&r) : 0.0f);
        }
        csp_sparse_options o;
        csp_sparse_options_init(&o, sizeof o);
        o.nm_n = pattern == 2 ? 2 : 0;
        o.nm_m = pattern == 2 ? 4 : 0;
        for (int kk = 0; kk < NKERNELS; kk++) {
            if (csp__sparse_kernels_get(kernels[kk]) == NULL)
                continue;
            o.kernel = kernels[kk];
            csp_sparse *s;
            ck_assert_status(ctx, csp_sparse_from_dense(ctx, d, rows, cols, 0, &o, &s), CSP_OK);
            if (pattern != 0) /* balanced, N:M: slices; the uneven CSR: rows */
                ck_assert_int_eq(s->sell, pattern != 3);
            for (int32_t B = 1; B <= 33; B++) {
                float *x = random_vec(&r, B * cols), *y0 = random_vec(&r, B * rows);
                float *y = malloc((size_t)(B * rows) * sizeof *y);
                float *yv = malloc((size_t)rows * sizeof *yv);
                memcpy(y, y0, (size_t)(B * rows) * sizeof *y);
                bool taken = B % 5 == 4;
                if (taken)
                    ck_assert(!atomic_flag_test_and_set(&s->ws_busy));
                ck_assert_status(ctx, csp_sparse_matmul(s, ctx, B, 0.75f, x, 0, -0.5f, y, 0),
                                 CSP_OK);
                if (taken)
                    atomic_flag_clear(&s->ws_busy);
                check_product(d, rows, cols, cols, B, 0.75f, x, cols, -0.5f, y0, y, rows,
                              "batches");
                for (int32_t b = 0; b < B; b++) {
                    memcpy(yv, y0 + b * rows, (size_t)rows * sizeof *yv);
                    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 0.75f, x + b * cols, -0.5f, yv),
                                     CSP_OK);
                    REQUIRE(memcmp(yv, y + b * rows, (size_t)rows * sizeof *yv) == 0,
                            "pattern %d kernel %d: batch %d vector %d differs from matvec",
                            pattern, (int)kernels[kk], (int)B, (int)b);
                }
                free(x);
                free(y0);
                free(y);
                free(yv);
            }
            csp_sparse_free(s);
        }
        free(d);
    }
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_wide_i32) {
    /* cols > 65536: 32-bit indices */
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    int64_t rows = 5, cols = 70001;
    float *d = make_matrix(&r, rows, cols, cols, 0, 0.01, 0, 0, true);
    d[cols - 1] = 2.0f; /* the last column is used */
    check_all(ctx, &r, d, rows, cols, cols, CSP_SPARSE_CSR, 0, 0, CSP_SPARSE_CSR, "i32");
    free(d);
    /* 65536 columns still fit 16 bits */
    cols = 65536;
    d = make_matrix(&r, 3, cols, cols, 1, 0.02, 0, 0, false);
    d[cols - 1] = d[cols - 1] == 0.0f ? 0.0f : d[cols - 1];
    check_all(ctx, &r, d, 3, cols, cols, CSP_SPARSE_AUTO, 0, 0, CSP_SPARSE_BALANCED, "u16 edge");
    free(d);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_balanced) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    const double dens[] = {0.0, 0.05, 0.25, 0.5, 1.0};
    for (int t = 0; t < 15; t++) {
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 64);
        int64_t cols = 1 + (int64_t)(test_rng_u64(&r) % 300);
        float *d = make_matrix(&r, rows, cols, cols, 1, dens[t % 5], 0, 0, false);
        check_all(ctx, &r, d, rows, cols, cols, CSP_SPARSE_BALANCED, 0, 0, CSP_SPARSE_BALANCED,
                  "balanced");
        check_all(ctx, &r, d, rows, cols, cols, CSP_SPARSE_AUTO, 0, 0, CSP_SPARSE_BALANCED,
                  "balanced auto");
        free(d);
    }
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_nm) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    /* 2-bit (2:4, 1:4, 1:2, 3:4), 4-bit (3:8 unaligned N, 4:16, 2:5), 8-bit (2:32, 8:17) */
    const int32_t nm[][2] = {{2, 4}, {1, 4}, {1, 2}, {3, 4}, {3, 8}, {4, 16},
                             {2, 5}, {2, 32}, {8, 17}, {4, 8}};
    for (int t = 0; t < 10; t++) {
        for (int rep = 0; rep < 2; rep++) {
            int32_t n = nm[t][0], m = nm[t][1];
            int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 40);
            int64_t cols = m * (1 + (int64_t)(test_rng_u64(&r) % 40));
            int64_t ld = cols + rep * 3;
            float *d = make_matrix(&r, rows, cols, ld, 2, 0, n, m, rep == 1);
            check_all(ctx, &r, d, rows, cols, ld, CSP_SPARSE_NM, n, m, CSP_SPARSE_NM, "nm");
            check_all(ctx, &r, d, rows, cols, ld, CSP_SPARSE_AUTO, n, m, CSP_SPARSE_NM,
                      "nm auto");
            free(d);
        }
    }
    /* the layout's size: a full 2:4 16 x 32 is one slice of 16 positions:
     * 256 values of 4 bytes, 256 column indices of 2, 2 slice offsets of 8 */
    float *d = calloc(16 * 32, sizeof *d);
    for (int t = 0; t < 16 * 32; t += 4) {
        d[t + (int)(test_rng_u64(&r) % 2)] = 1.0f + (float)test_rng_uniform(&r);
        d[t + 2 + (int)(test_rng_u64(&r) % 2)] = -1.0f - (float)test_rng_uniform(&r);
    }
    csp_sparse_options o;
    csp_sparse_options_init(&o, sizeof o);
    o.nm_n = 2;
    o.nm_m = 4;
    csp_sparse *s;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 16, 32, 0, &o, &s), CSP_OK);
    csp_sparse_info info;
    csp_sparse_info_init(&info, sizeof info);
    ck_assert_int_eq(csp_sparse_inspect(s, &info), CSP_OK);
    ck_assert_int_eq(info.bytes, 256 * 4 + 256 * 2 + 2 * 8);
    ck_assert_int_eq(info.nm_bits, 0);
    ck_assert_int_eq(info.dense_bytes, 16 * 32 * 4);
    csp_sparse_free(s);
    free(d);
    csp_context_free(ctx);
}
END_TEST

/* Kernels agree within the tolerance with each other; thread counts agree
 * bit for bit. */
START_TEST(test_kernels_and_threads) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *c1 = test_context(1, 1), *c3 = test_context(3, 1), *c8 = test_context(8, 1);
    int64_t rows = 700, cols = 513;
    for (int pattern = 0; pattern < 3; pattern++) {
        float *d = make_matrix(&r, rows, cols + (pattern == 2 ? 3 : 0), cols + 3, pattern, 0.2, 1,
                               4, pattern == 0);
        int64_t cc = cols + (pattern == 2 ? 3 : 0);
        int32_t B = 19;
        float *x = random_vec(&r, B * cc);
        float *yref = NULL;
        for (int kk = 0; kk < NKERNELS; kk++) {
            if (csp__sparse_kernels_get(kernels[kk]) == NULL)
                continue;
            csp_sparse_options o;
            csp_sparse_options_init(&o, sizeof o);
            o.kernel = kernels[kk];
            if (pattern == 2) {
                o.nm_n = 1;
                o.nm_m = 4;
            }
            csp_sparse *s;
            ck_assert_int_eq(csp_sparse_from_dense(c1, d, rows, cc, cols + 3, &o, &s), CSP_OK);
            float *y1 = calloc((size_t)(B * rows), sizeof *y1);
            float *y3 = calloc((size_t)(B * rows), sizeof *y3);
            float *y8 = calloc((size_t)(B * rows), sizeof *y8);
            ck_assert_int_eq(csp_sparse_matmul(s, c1, B, 1.0f, x, 0, 0.0f, y1, 0), CSP_OK);
            ck_assert_int_eq(csp_sparse_matmul(s, c3, B, 1.0f, x, 0, 0.0f, y3, 0), CSP_OK);
            ck_assert_int_eq(csp_sparse_matmul(s, c8, B, 1.0f, x, 0, 0.0f, y8, 0), CSP_OK);
            ck_assert(memcmp(y1, y3, (size_t)(B * rows) * sizeof *y1) == 0);
            ck_assert(memcmp(y1, y8, (size_t)(B * rows) * sizeof *y1) == 0);
            check_product(d, rows, cc, cols + 3, B, 1.0f, x, cc, 0.0f, y1, y1, rows, "threads");
            if (yref == NULL) {
                yref = y1;
                y1 = NULL;
            } else {
                for (int64_t t = 0; t < B * rows; t++)
                    REQUIRE(fabsf(y1[t] - yref[t]) <= 1e-4f * (1.0f + fabsf(yref[t])),
                            "kernel %d vs portable at %lld: %g vs %g", (int)kernels[kk],
                            (long long)t, y1[t], yref[t]);
            }
            free(y1);
            free(y3);
            free(y8);
            csp_sparse_free(s);
        }
        free(yref);
        free(x);
        free(d);
    }
    csp_context_free(c1);
    csp_context_free(c3);
    csp_context_free(c8);
}
END_TEST

/* A pruner with a row-granularity tensor (float64, strided), an N:M one
 * and an excluded one: csp_sparse_from_pruner against weights x mask, and
 * csp_sparse_from_export of each export format against it, bit for bit. */
START_TEST(test_pruner_and_export) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = 0.75;
    csp_schedule *sched;
    ck_assert_int_eq(csp_schedule_create(&sched, ctx, &so), CSP_OK);
    csp_pruner *p;
    ck_assert_int_eq(csp_pruner_create(&p, ctx, sched, NULL), CSP_OK);
    int64_t rows = 24, cols = 40, ld = 45;
    double *w0 = malloc((size_t)(rows * ld) * sizeof *w0);
    float *w1 = malloc((size_t)(rows * cols) * sizeof *w1);
    float *w2 = malloc((size_t)(rows * cols) * sizeof *w2);
    for (int64_t k = 0; k < rows * ld; k++)
        w0[k] = test_rng_normal(&r);
    for (int64_t k = 0; k < rows * cols; k++) {
        w1[k] = (float)test_rng_normal(&r);
        w2[k] = (float)test_rng_normal(&r);
    }
    int64_t shape[2] = {rows, cols};
    csp_tensor *t0, *t1, *t2;
    ck_assert_int_eq(csp_tensor_create(&t0, ctx, w0, CSP_DTYPE_F64, 2, shape, ld, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&t1, ctx, w1, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    ck_assert_int_eq(csp_tensor_create(&t2, ctx, w2, CSP_DTYPE_F32, 2, shape, 0, NULL), CSP_OK);
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.granularity = CSP_GRANULARITY_ROW;
    int32_t idx;
    ck_assert_int_eq(csp_pruner_add_tensor(p, t0, &to, &idx), CSP_OK);
    to.granularity = CSP_GRANULARITY_NM;
    to.nm_n = 1;
    to.nm_m = 4;
    ck_assert_int_eq(csp_pruner_add_tensor(p, t1, &to, &idx), CSP_OK);
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.exclude = 1;
    ck_assert_int_eq(csp_pruner_add_tensor(p, t2, &to, &idx), CSP_OK);
    ck_assert_status(ctx, csp_step(p, 0), CSP_PRUNED);

    float *x = random_vec(&r, cols);
    float *ya = malloc((size_t)rows * sizeof *ya), *yb = malloc((size_t)rows * sizeof *yb);
    float *dense = malloc((size_t)(rows * cols) * sizeof *dense);
    const int32_t want[3] = {CSP_SPARSE_BALANCED, CSP_SPARSE_NM, CSP_SPARSE_BALANCED};
    for (int32_t i = 0; i < 3; i++) {
        csp_sparse *s;
        ck_assert_status(ctx, csp_sparse_from_pruner(p, i, NULL, &s), CSP_OK);
        csp_sparse_info info;
        csp_sparse_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_sparse_inspect(s, &info), CSP_OK);
        ck_assert_msg(info.format == want[i], "tensor %d: format %d", (int)i, (int)info.format);
        ck_assert_int_eq(info.nnz, i == 2 ? rows * cols : p->tensors[i].nnz);
        /* weights x mask, rounded to float32 */
        for (int64_t a = 0; a < rows; a++)
            for (int64_t c = 0; c < cols; c++) {
                int64_t at = a * cols + c;
                bool kept = i == 2 || ((p->tensors[i].mask[at >> 6] >> (at & 63)) & 1u);
                float v = i == 0 ? (float)w0[a * ld + c] : (i == 1 ? w1[at] : w2[at]);
                dense[at] = kept ? v : 0.0f;
            }
        ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, x, 0.0f, ya), CSP_OK);
        check_product(dense, rows, cols, cols, 1, 1.0f, x, cols, 0.0f, ya, ya, rows, "pruner");
        const int32_t fmts[3] = {CSP_EXPORT_CSR, CSP_EXPORT_BITMAP, CSP_EXPORT_NM};
        for (int f = 0; f < 3; f++) {
            csp_export_options eo;
            csp_export_options_init(&eo, sizeof eo);
            eo.format = fmts[f];
            eo.value_dtype = CSP_DTYPE_F32;
            if (fmts[f] == CSP_EXPORT_NM && i != 1)
                continue;
            int64_t size;
            ck_assert_int_eq(csp_pruner_export(p, i, &eo, NULL, 0, &size), CSP_OK);
            void *buf = malloc((size_t)size);
            ck_assert_int_eq(csp_pruner_export(p, i, &eo, buf, size, &size), CSP_OK);
            csp_sparse *e;
            ck_assert_status(ctx, csp_sparse_from_export(ctx, buf, size, NULL, &e), CSP_OK);
            ck_assert_int_eq(csp_sparse_inspect(e, &info), CSP_OK);
            /* only an N:M export carries N:M; the others are balanced */
            ck_assert_int_eq(info.format, i == 1 && fmts[f] != CSP_EXPORT_NM
                                              ? CSP_SPARSE_BALANCED : want[i]);
            ck_assert_int_eq(csp_sparse_matvec(e, ctx, 1.0f, x, 0.0f, yb), CSP_OK);
            /* the same layout gives the same bits; another, the reference's tolerance */
            if (info.format == want[i])
                ck_assert(memcmp(ya, yb, (size_t)rows * sizeof *ya) == 0);
            check_product(dense, rows, cols, cols, 1, 1.0f, x, cols, 0.0f, yb, yb, rows, "export");
            csp_sparse_free(e);
            /* a damaged export is refused and nothing is returned */
            ((uint8_t *)buf)[size / 2] ^= 0x10;
            e = (csp_sparse *)buf;
            ck_assert_int_eq(csp_sparse_from_export(ctx, buf, size, NULL, &e), CSP_E_CORRUPT);
            ck_assert_ptr_null(e);
            ck_assert_int_eq(csp_sparse_from_export(ctx, buf, size - 1, NULL, &e), CSP_E_CORRUPT);
            free(buf);
        }
        csp_sparse_free(s);
    }
    /* the object outlives its pruner */
    csp_sparse *s;
    ck_assert_int_eq(csp_sparse_from_pruner(p, 3, NULL, &s), CSP_E_RANGE);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(csp_sparse_from_pruner(p, 0, NULL, &s), CSP_OK);
    csp_pruner_free(p);
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, x, 0.0f, yb), CSP_OK);
    csp_sparse_free(s);
    csp_sparse_free(NULL);
    free(x);
    free(ya);
    free(yb);
    free(dense);
    csp_tensor_free(t0);
    csp_tensor_free(t1);
    csp_tensor_free(t2);
    free(w0);
    free(w1);
    free(w2);
    csp_schedule_free(sched);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(2, 1);
    float d[6 * 8] = {0};
    for (int k = 0; k < 48; k += 3)
        d[k] = (float)(k + 1);
    csp_sparse *s = NULL;
    csp_sparse_options o;
    ck_assert_int_eq(csp_sparse_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_options_init(&o, 3), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_sparse_options_init(&o, sizeof o), CSP_OK);
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_from_dense(NULL, d, 6, 8, 0, &o, &s), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_from_dense(ctx, NULL, 6, 8, 0, &o, &s), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 0, 8, 0, &o, &s), CSP_E_RANGE);
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, -1, 0, &o, &s), CSP_E_RANGE);
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 7, &o, &s), CSP_E_SHAPE);
    o.format = 9;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_ENUM);
    o.format = CSP_SPARSE_AUTO;
    o.kernel = 17;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_ENUM);
    for (int kk = 0; kk < NKERNELS; kk++) {
        o.kernel = kernels[kk];
        ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s),
                         csp__sparse_kernels_get(kernels[kk]) ? CSP_OK : CSP_E_UNSUPPORTED);
        csp_sparse_free(s);
        s = NULL;
    }
    /* The automatic choice: NEON on aarch64 (part of the architecture),
     * never NEON elsewhere, where asking for it is refused. */
    o.kernel = CSP_SPARSE_KERNEL_AUTO;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_OK);
    csp_sparse_info auto_info;
    ck_assert_int_eq(csp_sparse_info_init(&auto_info, sizeof auto_info), CSP_OK);
    ck_assert_int_eq(csp_sparse_inspect(s, &auto_info), CSP_OK);
#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(CSP_NO_SIMD)
    ck_assert_int_eq(auto_info.kernel, CSP_SPARSE_KERNEL_NEON);
#else
    ck_assert_int_ne(auto_info.kernel, CSP_SPARSE_KERNEL_NEON);
    ck_assert_ptr_null(csp__sparse_kernels_get(CSP_SPARSE_KERNEL_NEON));
#endif
    csp_sparse_free(s);
    s = NULL;
    o.kernel = 0;
    o.nm_n = 4;
    o.nm_m = 4;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_RANGE);
    o.nm_n = 1;
    o.nm_m = 3;
    o.format = CSP_SPARSE_NM;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_SHAPE);
    o.nm_m = 4;
    d[1] = 5.0f; /* row 0 group 0 keeps 2 of 4 */
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_STATE);
    o.nm_n = 0;
    o.nm_m = 0;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_STATE);
    o.format = CSP_SPARSE_BALANCED;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &o, &s), CSP_E_STATE);
    ck_assert_ptr_null(s);
    /* trailing unknown option bytes must be zero */
    struct {
        csp_sparse_options o;
        int64_t extra;
    } big;
    memset(&big, 0, sizeof big);
    ck_assert_int_eq(csp_sparse_options_init(&big.o, sizeof big), CSP_OK);
    big.extra = 1;
    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, &big.o, &s), CSP_E_RESERVED);

    ck_assert_int_eq(csp_sparse_from_dense(ctx, d, 6, 8, 0, NULL, &s), CSP_OK);
    float buf[64];
    for (int k = 0; k < 64; k++)
        buf[k] = (float)k;
    float y[6];
    ck_assert_int_eq(csp_sparse_matvec(NULL, ctx, 1.0f, buf, 0.0f, y), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, NULL, 0.0f, y), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, buf, 0.0f, NULL), CSP_E_NULL);
    /* aliasing: y over x, partly or wholly */
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, buf, 0.0f, buf + 7), CSP_E_INVALID);
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, buf + 2, 0.0f, buf), CSP_E_INVALID);
    ck_assert_int_eq(csp_sparse_matvec(s, ctx, 1.0f, buf, 0.0f, buf + 8), CSP_OK);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 2, 1.0f, buf, 0, 0.0f, buf + 15, 0), CSP_E_INVALID);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 2, 1.0f, buf, 0, 0.0f, buf + 16, 0), CSP_OK);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 0, 1.0f, buf, 0, 0.0f, y, 0), CSP_E_RANGE);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 1, 1.0f, buf, 7, 0.0f, y, 0), CSP_E_SHAPE);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 1, 1.0f, buf, 0, 0.0f, y, 5), CSP_E_SHAPE);
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 1, 1.0f, buf, INT64_MAX / 2, 0.0f, y, 0),
                     CSP_OK); /* one vector: ldx unused past it */
    ck_assert_int_eq(csp_sparse_matmul(s, ctx, 3, 1.0f, buf, INT64_MAX / 2, 0.0f, y, 0),
                     CSP_E_OVERFLOW);
    ck_assert_str_ne(csp_context_last_error(ctx), "");
    csp_sparse_info info;
    ck_assert_int_eq(csp_sparse_inspect(NULL, &info), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_inspect(s, NULL), CSP_E_NULL);
    info.struct_size = 5;
    ck_assert_int_eq(csp_sparse_inspect(s, &info), CSP_E_STRUCT_SIZE);
    csp_sparse_free(s);
    ck_assert_int_eq(csp_sparse_from_export(ctx, NULL, 10, NULL, &s), CSP_E_NULL);
    ck_assert_int_eq(csp_sparse_from_export(ctx, buf, 40, NULL, &s), CSP_E_CORRUPT);
    ck_assert_int_eq(csp_sparse_from_pruner(NULL, 0, NULL, &s), CSP_E_NULL);
    csp_context_free(ctx);
}
END_TEST

/* An all-zero matrix gives beta y (and alpha * 0); one full column. */
START_TEST(test_zero_and_full) {
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    csp_context *ctx = test_context(1, 1);
    float *z = calloc(33 * 17, sizeof *z);
    check_all(ctx, &r, z, 33, 17, 17, CSP_SPARSE_AUTO, 0, 0, CSP_SPARSE_BALANCED, "zero");
    check_all(ctx, &r, z, 33, 16, 17, CSP_SPARSE_AUTO, 2, 4, CSP_SPARSE_NM, "zero nm");
    check_all(ctx, &r, z, 33, 17, 17, CSP_SPARSE_CSR, 0, 0, CSP_SPARSE_CSR, "zero csr");
    float *one = make_matrix(&r, 1, 1, 1, 1, 1.0, 0, 0, false);
    check_all(ctx, &r, one, 1, 1, 1, CSP_SPARSE_AUTO, 0, 0, CSP_SPARSE_BALANCED, "1x1");
    free(one);
    free(z);
    csp_context_free(ctx);
}
END_TEST

static Suite *sparse_suite(void) {
    Suite *s = suite_create("sparse");
    TCase *tc = tcase_create("sparse");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_csr_random);
    tcase_add_test(tc, test_wide_i32);
    tcase_add_test(tc, test_batches);
    tcase_add_test(tc, test_balanced);
    tcase_add_test(tc, test_nm);
    tcase_add_test(tc, test_kernels_and_threads);
    tcase_add_test(tc, test_pruner_and_export);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_zero_and_full);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(sparse_suite()); }
