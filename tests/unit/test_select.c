/* Selection kernels (white-box): exact top-k, row-balanced and N:M masks
 * against sort-based references written here, k rounding, mask apply and
 * the digest. Random data with ties, duplicates and signed zeros. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "prune/mask.h"
#include "select/select.h"

/* Values with many exact ties: mode 0 normal, 1 a few levels (+-0 included),
 * 2 half and half, 3 one value everywhere, 4 only -0 and +0, 5 subnormal
 * and zero magnitudes (the smallest keys), 6 magnitudes near the largest
 * finite float (the largest keys), 7 small integers of either sign. */
#define DRAW_MODES 8
static double draw(test_rng *r, int mode) {
    static const double levels[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 0.25};
    switch (mode) {
    case 0:
        return test_rng_normal(r);
    case 1:
        return levels[test_rng_u64(r) % 8];
    case 2:
        return (test_rng_u64(r) & 1) ? test_rng_normal(r) : levels[test_rng_u64(r) % 8];
    case 4:
        return (test_rng_u64(r) & 1) ? 0.0 : -0.0;
    case 5: {
        double d = (double)(test_rng_u64(r) % 5) * 0x1p-149; /* 0 .. 4 float subnormal ulps */
        return (test_rng_u64(r) & 1) ? d : -d;
    }
    case 6: {
        double d = 3.4028234663852886e38 * (1.0 - (double)(test_rng_u64(r) % 8) * 0x1p-24);
        return (test_rng_u64(r) & 1) ? d : -d;
    }
    case 7:
        return (double)((int)(test_rng_u64(r) % 7) - 3);
    default:
        return -0.75;
    }
}

/* A test tensor: rows x cols, row stride >= cols, float32 or float64. */
typedef struct {
    csp_tensor *t;
    void *buf;
    uint64_t *cur, *next;
    int64_t rows, cols, stride, numel;
    int32_t dtype;
} ttensor;

static double tget(const ttensor *x, int64_t f) {
    int64_t r = f / x->cols, c = f % x->cols;
    return x->dtype == CSP_DTYPE_F64 ? ((double *)x->buf)[r * x->stride + c]
                                     : (double)((float *)x->buf)[r * x->stride + c];
}

static void tset(ttensor *x, int64_t f, double v) {
    int64_t r = f / x->cols, c = f % x->cols;
    if (x->dtype == CSP_DTYPE_F64)
        ((double *)x->buf)[r * x->stride + c] = v;
    else
        ((float *)x->buf)[r * x->stride + c] = (float)v;
}

static int bit(const uint64_t *m, int64_t f) { return (int)((m[f >> 6] >> (f & 63)) & 1); }

static void make(ttensor *x, csp_context *ctx, test_rng *r, int64_t rows, int64_t cols, int64_t pad,
                 int32_t dtype, int mode, double pruned_frac) {
    memset(x, 0, sizeof *x);
    x->rows = rows;
    x->cols = cols;
    x->stride = cols + pad;
    x->numel = rows * cols;
    x->dtype = dtype;
    size_t es = dtype == CSP_DTYPE_F64 ? 8 : 4;
    x->buf = calloc((size_t)(rows * x->stride), es);
    int64_t shape[2] = {rows, cols};
    ck_assert_int_eq(
        csp_tensor_create(&x->t, ctx, x->buf, dtype, 2, shape, pad ? x->stride : 0, "t"), CSP_OK);
    for (int64_t f = 0; f < x->numel; f++)
        tset(x, f, draw(r, mode));
    ck_assert(x->numel > 0);
    size_t nw = (size_t)(x->numel + 63) / 64;
    x->cur = calloc(nw, 8);
    x->next = calloc(nw, 8);
    for (int64_t f = 0; f < x->numel; f++)
        if (test_rng_uniform(r) >= pruned_frac)
            x->cur[f >> 6] |= 1ULL << (f & 63);
    for (size_t w = 0; w < nw; w++)
        x->next[w] = test_rng_u64(r); /* garbage the selection must overwrite */
}

static void drop(ttensor *x) {
    csp_tensor_free(x->t);
    free(x->buf);
    free(x->cur);
    free(x->next);
}

static csp__select_src src(const ttensor *x) {
    csp__select_src s = {x->t, x->cur, x->next};
    return s;
}

/* Reference: candidates sorted by |w| descending, then (tensor, index). */
typedef struct {
    double mag;
    int32_t src;
    int64_t idx;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->mag != y->mag)
        return x->mag > y->mag ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Check that next == reference keeping `keep` of the candidates of xs
 * (ranges [a, a+len) of each, all if len < 0). */
static void check_topk_ref(ttensor *xs, int32_t nx, int64_t keep, const char *what) {
    int64_t total = 0;
    for (int32_t s = 0; s < nx; s++)
        total += xs[s].numel;
    cand *c = malloc((size_t)total * sizeof *c);
    int64_t nc = 0;
    for (int32_t s = 0; s < nx; s++)
        for (int64_t f = 0; f < xs[s].numel; f++)
            if (bit(xs[s].cur, f))
                c[nc++] = (cand){fabs(tget(&xs[s], f)), s, f};
    qsort(c, (size_t)nc, sizeof *c, cmp_cand);
    if (keep > nc)
        keep = nc;
    if (keep < 0)
        keep = 0;
    /* expected masks */
    uint64_t **exp = malloc((size_t)nx * sizeof *exp);
    for (int32_t s = 0; s < nx; s++)
        exp[s] = calloc((size_t)(xs[s].numel + 63) / 64, 8);
    for (int64_t j = 0; j < keep; j++)
        exp[c[j].src][c[j].idx >> 6] |= 1ULL << (c[j].idx & 63);
    for (int32_t s = 0; s < nx; s++) {
        for (int64_t f = 0; f < xs[s].numel; f++)
            REQUIRE(bit(xs[s].next, f) == bit(exp[s], f),
                    "%s: tensor %d index %lld: got %d, reference %d (|w| %g, keep %lld "
                    "of %lld)",
                    what, s, (long long)f, bit(xs[s].next, f), bit(exp[s], f),
                    fabs(tget(&xs[s], f)), (long long)keep, (long long)nc);
        if (xs[s].numel % 64)
            ck_assert_uint_eq(xs[s].next[xs[s].numel / 64] >> (xs[s].numel % 64), 0);
        free(exp[s]);
    }
    free(exp);
    free(c);
}

START_TEST(test_round_count) {
    /* Half to even, like Python's round(): 2.5 -> 2, 3.5 -> 4, 0.5 -> 0. */
    ck_assert_int_eq(csp__round_count(0.5, 5), 2);
    ck_assert_int_eq(csp__round_count(0.5, 7), 4);
    ck_assert_int_eq(csp__round_count(0.25, 2), 0);
    ck_assert_int_eq(csp__round_count(0.75, 2), 2);
    ck_assert_int_eq(csp__round_count(0.9, 10), 9);
    ck_assert_int_eq(csp__round_count(0.3, 10), 3);
    ck_assert_int_eq(csp__round_count(0.95, 10), 10); /* 9.5 -> 10: all pruned */
    ck_assert_int_eq(csp__round_count(0.85, 10), 8);  /* 8.5 -> 8 */
    ck_assert_int_eq(csp__round_count(0.0, 1000), 0);
    ck_assert_int_eq(csp__round_count(0.9, 10000000), 9000000);
    ck_assert_int_eq(csp__round_count(0.5, 0), 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed());
    for (int k = 0; k < 20000; k++) {
        int64_t n = (int64_t)(test_rng_u64(&r) % 5000);
        double s = (k & 1) ? test_rng_uniform(&r)
                           : (double)(test_rng_u64(&r) % 64) / 64.0; /* exact halves */
        double x = s * (double)n;
        double f = floor(x);
        double want = x - f > 0.5 ? f + 1 : x - f < 0.5 ? f : (fmod(f, 2.0) == 0 ? f : f + 1);
        REQUIRE(csp__round_count(s, n) == (int64_t)want, "round_count(%.17g, %lld)", s,
                (long long)n);
    }
}
END_TEST

static int cmp_desc_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

START_TEST(test_kth_largest) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 1);
    for (int trial = 0; trial < 300; trial++) {
        int64_t n = 1 + (int64_t)(test_rng_u64(&r) % (trial < 100 ? 40 : 3000));
        int bits = (trial & 1) ? 63 : 31;
        uint64_t range = trial % 3 == 0 ? 7 : (bits == 63 ? (1ULL << 63) - 1 : (1ULL << 31) - 1);
        uint64_t *k = malloc((size_t)n * 8), *sorted = malloc((size_t)n * 8);
        for (int64_t i = 0; i < n; i++)
            sorted[i] = k[i] = test_rng_u64(&r) % (range + 1);
        qsort(sorted, (size_t)n, 8, cmp_desc_u64);
        int64_t need = 1 + (int64_t)(test_rng_u64(&r) % (uint64_t)n);
        int64_t gt = -1, eq = -1;
        uint64_t T = csp__kth_largest(k, n, need, bits, &gt, &eq);
        ck_assert_uint_eq(T, sorted[need - 1]);
        int64_t g = 0, e = 0;
        for (int64_t i = 0; i < n; i++) {
            g += sorted[i] > T;
            e += sorted[i] == T;
        }
        ck_assert_int_eq(gt, g);
        ck_assert_int_eq(eq, e);
        free(k);
        free(sorted);
    }
}
END_TEST

/* Per tensor: every path (sampled window, histogram, tiny buffer with every
 * refinement pass), both dtypes, strided and contiguous, with ties. */
START_TEST(test_topk_matches_sort) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 2);
    for (int trial = 0; trial < 48; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int mode = (trial / 2) % 4;
        bool big = trial % 3 == 0;
        int64_t rows =
            big ? 200 + (int64_t)(test_rng_u64(&r) % 100) : 1 + (int64_t)(test_rng_u64(&r) % 20);
        int64_t cols =
            big ? 200 + (int64_t)(test_rng_u64(&r) % 100) : 1 + (int64_t)(test_rng_u64(&r) % 150);
        int64_t pad = (trial / 4) % 2 ? (int64_t)(test_rng_u64(&r) % 5) : 0;
        double pruned = (trial % 5 == 0) ? 0.0 : test_rng_uniform(&r) * 0.6;
        ttensor x;
        make(&x, ctx, &r, rows, cols, pad, dtype, mode, pruned);
        int64_t cands = csp__mask_popcount(x.cur, x.numel);
        int64_t keep = (int64_t)(test_rng_uniform(&r) * (double)(cands + 1));
        if (trial % 7 == 0)
            keep = trial % 2 ? 0 : cands;
        uint32_t flags = (uint32_t)(trial % 3);
        csp__select_src s = src(&x);
        ck_assert_status(ctx, csp__select_topk_ex(ctx, &s, 1, keep, flags), CSP_OK);
        check_topk_ref(&x, 1, keep, "topk");
        ck_assert_int_eq(csp__mask_popcount(x.next, x.numel), keep);
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* The fast path must find the threshold on ordinary (normal) data, both
 * dtypes, first event and later ones, every sparsity; the result is exact. */
START_TEST(test_topk_sampled_path_hits) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 9);
    for (int trial = 0; trial < 8; trial++) {
        ttensor x;
        make(&x, ctx, &r, 256, 200 + (int64_t)(test_rng_u64(&r) % 100), trial % 3 ? 0 : 4,
             trial & 1 ? CSP_DTYPE_F64 : CSP_DTYPE_F32, 0, trial < 4 ? 0.0 : 0.3);
        int64_t cands = csp__mask_popcount(x.cur, x.numel);
        int64_t keep = 1 + (int64_t)(test_rng_uniform(&r) * (double)(cands - 2));
        csp__select_src s = src(&x);
        ck_assert_status(ctx, csp__select_topk_ex(ctx, &s, 1, keep, CSP__SELECT_REQUIRE_SAMPLE),
                         CSP_OK);
        check_topk_ref(&x, 1, keep, "sampled topk");
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* Global: one threshold over several tensors == concatenate and sort. */
START_TEST(test_global_matches_concatenation) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 3);
    for (int trial = 0; trial < 24; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int32_t nx = 2 + (int32_t)(test_rng_u64(&r) % 4);
        ttensor xs[5];
        csp__select_src ss[5];
        int64_t cands = 0;
        for (int32_t s = 0; s < nx; s++) {
            bool big = trial % 4 == 0;
            int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % (big ? 300 : 12));
            int64_t cols = 1 + (int64_t)(test_rng_u64(&r) % (big ? 300 : 90));
            make(&xs[s], ctx, &r, rows, cols, (int64_t)(test_rng_u64(&r) % 3), dtype,
                 (trial / 2) % 3, s == 0 ? 0.0 : 0.3);
            ss[s] = src(&xs[s]);
            cands += csp__mask_popcount(xs[s].cur, xs[s].numel);
        }
        int64_t keep = (int64_t)(test_rng_uniform(&r) * (double)(cands + 1));
        ck_assert_status(ctx, csp__select_topk_ex(ctx, ss, nx, keep, (uint32_t)(trial % 3)),
                         CSP_OK);
        check_topk_ref(xs, nx, keep, "global");
        for (int32_t s = 0; s < nx; s++)
            drop(&xs[s]);
    }
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_rows_match_sort) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 4);
    for (int trial = 0; trial < 40; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 30);
        int64_t cols = 1 + (int64_t)(test_rng_u64(&r) % 200);
        ttensor x;
        make(&x, ctx, &r, rows, cols, (trial / 2) % 2 ? 3 : 0, dtype, (trial / 4) % 4,
             trial % 3 ? 0.25 : 0.0);
        int64_t keep_row = (int64_t)(test_rng_u64(&r) % (uint64_t)(cols + 1));
        csp__select_src s = src(&x);
        ck_assert_status(ctx, csp__select_rows(ctx, &s, keep_row), CSP_OK);
        /* reference: each row alone */
        for (int64_t row = 0; row < rows; row++) {
            cand *c = malloc((size_t)cols * sizeof *c);
            int64_t nc = 0;
            for (int64_t j = 0; j < cols; j++)
                if (bit(x.cur, row * cols + j))
                    c[nc++] = (cand){fabs(tget(&x, row * cols + j)), 0, j};
            qsort(c, (size_t)nc, sizeof *c, cmp_cand);
            int64_t k = keep_row < nc ? keep_row : nc;
            int8_t *want = calloc((size_t)cols, 1);
            for (int64_t j = 0; j < k; j++)
                want[c[j].idx] = 1;
            int64_t kept = 0;
            for (int64_t j = 0; j < cols; j++) {
                REQUIRE(bit(x.next, row * cols + j) == want[j], "row %lld col %lld", (long long)row,
                        (long long)j);
                kept += want[j];
            }
            ck_assert_int_eq(kept, k);
            free(want);
            free(c);
        }
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_nm_matches_sort) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 5);
    static const int ms[] = {4, 8, 2, 16, 32};
    for (int trial = 0; trial < 40; trial++) {
        int m = ms[trial % 5];
        int keep = 1 + (int)(test_rng_u64(&r) % (uint64_t)m);
        int32_t dtype = (trial / 5) % 2 ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 20);
        int64_t cols = m * (1 + (int64_t)(test_rng_u64(&r) % 12));
        ttensor x;
        make(&x, ctx, &r, rows, cols, (trial / 10) % 2 ? 5 : 0, dtype, trial % 4,
             trial % 3 == 0 ? 0.2 : 0.0);
        csp__select_src s = src(&x);
        ck_assert_status(ctx, csp__select_nm(ctx, &s, m, keep), CSP_OK);
        for (int64_t g = 0; g < x.numel; g += m) {
            cand c[32];
            int nc = 0;
            for (int j = 0; j < m; j++)
                if (bit(x.cur, g + j))
                    c[nc++] = (cand){fabs(tget(&x, g + j)), 0, j};
            qsort(c, (size_t)nc, sizeof *c, cmp_cand);
            int want[32] = {0};
            for (int j = 0; j < nc && j < keep; j++)
                want[c[j].idx] = 1;
            for (int j = 0; j < m; j++)
                REQUIRE(bit(x.next, g + j) == want[j], "N:M %d:%d group at %lld", keep, m,
                        (long long)g);
        }
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* Reference row-balanced mask: in every row the min(keep_row, candidates)
 * candidates first in "larger |w|, then lower column" order. */
static void check_rows_ref(const ttensor *x, int64_t keep_row, const char *what) {
    cand *c = malloc((size_t)x->cols * sizeof *c);
    int8_t *want = malloc((size_t)x->cols);
    for (int64_t row = 0; row < x->rows; row++) {
        int64_t nc = 0;
        for (int64_t j = 0; j < x->cols; j++)
            if (bit(x->cur, row * x->cols + j))
                c[nc++] = (cand){fabs(tget(x, row * x->cols + j)), 0, j};
        qsort(c, (size_t)nc, sizeof *c, cmp_cand);
        int64_t k = keep_row < nc ? keep_row : nc;
        memset(want, 0, (size_t)x->cols);
        for (int64_t j = 0; j < k; j++)
            want[c[j].idx] = 1;
        for (int64_t j = 0; j < x->cols; j++)
            REQUIRE(bit(x->next, row * x->cols + j) == want[j],
                    "%s: %lldx%lld %s, keep %lld of %lld: row %lld col %lld got %d (|w| %g)", what,
                    (long long)x->rows, (long long)x->cols,
                    x->dtype == CSP_DTYPE_F64 ? "f64" : "f32", (long long)keep_row, (long long)nc,
                    (long long)row, (long long)j, bit(x->next, row * x->cols + j),
                    fabs(tget(x, row * x->cols + j)));
    }
    if (x->numel % 64)
        ck_assert_uint_eq(x->next[x->numel / 64] >> (x->numel % 64), 0);
    free(want);
    free(c);
}

/* Reference N:M mask: in every group of m the min(keep, candidates) first
 * candidates in rank order. */
static void check_nm_ref(const ttensor *x, int m, int keep, const char *what) {
    for (int64_t g = 0; g < x->numel; g += m) {
        cand c[64];
        int nc = 0;
        for (int j = 0; j < m; j++)
            if (bit(x->cur, g + j))
                c[nc++] = (cand){fabs(tget(x, g + j)), 0, j};
        qsort(c, (size_t)nc, sizeof *c, cmp_cand);
        int want[64] = {0};
        for (int j = 0; j < nc && j < keep; j++)
            want[c[j].idx] = 1;
        for (int j = 0; j < m; j++)
            REQUIRE(bit(x->next, g + j) == want[j],
                    "%s: %d:%d on %lldx%lld %s (stride %lld), group at %lld, position %d: got %d",
                    what, keep, m, (long long)x->rows, (long long)x->cols,
                    x->dtype == CSP_DTYPE_F64 ? "f64" : "f32", (long long)x->stride, (long long)g, j,
                    bit(x->next, g + j));
    }
    if (x->numel % 64)
        ck_assert_uint_eq(x->next[x->numel / 64] >> (x->numel % 64), 0);
}

/* The kernel sets a test can force: the default (AVX2 where the CPU has
 * it), SSE2, portable C. */
static const uint32_t kernel_flags[] = {0, CSP__SELECT_NO_AVX2, CSP__SELECT_PORTABLE};
static const char *const kernel_names[] = {"default", "sse2", "portable"};

/* Sort rows ascending or descending by |w| (structured data for the
 * sampled windows). */
static void sort_rows(ttensor *x, bool descending) {
    double *v = malloc((size_t)x->cols * sizeof *v);
    for (int64_t row = 0; row < x->rows; row++) {
        for (int64_t j = 0; j < x->cols; j++)
            v[j] = tget(x, row * x->cols + j);
        for (int64_t i = 1; i < x->cols; i++) { /* insertion sort by |v| */
            double t = v[i];
            int64_t j = i;
            for (; j > 0 && (descending ? fabs(v[j - 1]) < fabs(t) : fabs(v[j - 1]) > fabs(t)); j--)
                v[j] = v[j - 1];
            v[j] = t;
        }
        for (int64_t j = 0; j < x->cols; j++)
            tset(x, row * x->cols + j, v[j]);
    }
    free(v);
}

/* Row-balanced selection against the sort reference on every row-length
 * class the kernels treat apart: rows of 1, short rows (< 64, <= 32 go
 * straight to rank counting), rows of exactly 64, rows not a multiple of 64,
 * long rows (several narrowing passes), tens of thousands; every kernel
 * set, both dtypes, strided rows, ties and signed zeros, sorted rows, masks
 * with few candidates, keep 0, 1, all, more than the row. */
START_TEST(test_rows_kernels_match_sort) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 10);
    static const int64_t lens[] = {1,  2,   3,   7,   8,   31,  32,   33,   40,   63,
                                   64, 65,  100, 127, 128, 129, 257,  500,  1000, 1023,
                                   1024, 4097};
    const int nlens = (int)(sizeof lens / sizeof *lens);
    for (int trial = 0; trial < 3 * nlens * 4; trial++) {
        int kset = trial % 3;
        int64_t cols = lens[(trial / 3) % nlens];
        int variant = trial / (3 * nlens); /* 0..3 */
        int32_t dtype = (trial / 2) % 2 ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int mode = (int)(test_rng_u64(&r) % DRAW_MODES);
        if (variant == 0)
            mode = 0;
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % (cols >= 1000 ? 6 : cols >= 100 ? 24 : 60));
        if (rows == 1)
            rows = 2; /* one row is the per-tensor selection (tested below) */
        int64_t pad = variant == 1 ? 1 + (int64_t)(test_rng_u64(&r) % 5) : 0;
        double pruned = variant == 2 ? 0.95 : variant == 3 ? 0.4 : 0.0;
        ttensor x;
        make(&x, ctx, &r, rows, cols, pad, dtype, mode, pruned);
        if (trial % 7 == 3)
            sort_rows(&x, trial % 2 == 0);
        int64_t keeps[6] = {cols - csp__round_count(0.9, cols),
                            (int64_t)(test_rng_u64(&r) % (uint64_t)(cols + 1)),
                            1,
                            0,
                            cols,
                            cols - 1};
        for (int k = 0; k < 6; k++) {
            csp__select_src s = src(&x);
            char what[96];
            snprintf(what, sizeof what, "rows (%s kernels, mode %d, trial %d)",
                     kernel_names[kset], mode, trial);
            ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, keeps[k], kernel_flags[kset]),
                             CSP_OK);
            check_rows_ref(&x, keeps[k], what);
            for (size_t w = 0; w < (size_t)(x.numel + 63) / 64; w++)
                x.next[w] = test_rng_u64(&r); /* garbage again */
        }
        drop(&x);
    }
    /* Tens of thousands of columns, one row (the per-tensor path), keep > row. */
    for (int trial = 0; trial < 6; trial++) {
        ttensor x;
        int64_t cols = trial < 3 ? 20000 + (int64_t)(test_rng_u64(&r) % 300) : 3000;
        make(&x, ctx, &r, trial < 3 ? 3 : 1, cols, trial & 1, trial & 1 ? CSP_DTYPE_F64 : CSP_DTYPE_F32,
             trial % 3 == 2 ? 1 : 0, trial == 1 ? 0.5 : 0.0);
        int64_t keep = trial == 5 ? cols + 7 : cols - csp__round_count(0.9, cols);
        csp__select_src s = src(&x);
        ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, keep, kernel_flags[trial % 3]), CSP_OK);
        check_rows_ref(&x, keep, "long rows");
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* Every narrowing step of the in-memory select on adversarial key sets
 * (all equal, two values, sorted, one outlier): the result is the sort's
 * and it always ends. Rows of 33..3000 keys, every need. */
START_TEST(test_rows_adversarial_keys) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 11);
    for (int trial = 0; trial < 60; trial++) {
        int64_t cols = 33 + (int64_t)(test_rng_u64(&r) % (trial < 30 ? 100 : 3000));
        ttensor x;
        make(&x, ctx, &r, 3, cols, 0, trial & 1 ? CSP_DTYPE_F64 : CSP_DTYPE_F32, 0, 0.0);
        for (int64_t f = 0; f < x.numel; f++) {
            int64_t j = f % cols;
            double v;
            switch (trial % 5) {
            case 0:
                v = 1.5;
                break;
            case 1:
                v = (j % 2) ? 2.0 : -1.0;
                break;
            case 2:
                v = (double)j;
                break;
            case 3:
                v = j == cols / 2 ? 100.0 : 0.5;
                break;
            default:
                v = j < cols - 3 ? 0.0 : 1.0; /* nearly all zeros */
                break;
            }
            tset(&x, f, v);
        }
        for (int k = 0; k < 4; k++) {
            int64_t keep = 1 + (int64_t)(test_rng_u64(&r) % (uint64_t)(cols - 1));
            csp__select_src s = src(&x);
            ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, keep, kernel_flags[k % 3]), CSP_OK);
            check_rows_ref(&x, keep, "rows, adversarial");
        }
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* N:M against the sort reference for every M with its own kernel (4 and 8,
 * in blocks of 4 groups and one by one), the rank-counting sizes (2, 3, 5,
 * 6, 7), the threshold path (12, 16, 32, 64) and M that do not divide 64
 * (groups across mask words); every keep, kernel set, dtype, strides,
 * ties, signed zeros and already pruned weights. */
START_TEST(test_nm_kernels_match_sort) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 12);
    static const int ms[] = {4, 8, 2, 3, 5, 6, 7, 12, 16, 32, 64};
    const int nms = (int)(sizeof ms / sizeof *ms);
    for (int trial = 0; trial < nms * 12; trial++) {
        int m = ms[trial % nms];
        int kset = (trial / nms) % 3;
        int variant = trial / (3 * nms); /* 0..3 */
        int32_t dtype = variant % 2 ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int mode = variant == 0 ? 0 : (int)(test_rng_u64(&r) % DRAW_MODES);
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % 20);
        /* odd group counts: blocks of 4 groups leave some groups over */
        int64_t cols = m * (1 + (int64_t)(test_rng_u64(&r) % (m >= 16 ? 5 : 41)));
        int64_t pad = variant >= 2 ? 1 + (int64_t)(test_rng_u64(&r) % 6) : 0;
        ttensor x;
        make(&x, ctx, &r, rows, cols, pad, dtype, mode, variant == 3 ? 0.3 : variant == 1 ? 0.6 : 0.0);
        for (int keep = 0; keep <= m; keep += m > 8 ? (m / 4) : 1) {
            csp__select_src s = src(&x);
            char what[96];
            snprintf(what, sizeof what, "N:M (%s kernels, mode %d)", kernel_names[kset], mode);
            ck_assert_status(ctx, csp__select_nm_ex(ctx, &s, m, keep, kernel_flags[kset]), CSP_OK);
            check_nm_ref(&x, m, keep, what);
            for (size_t w = 0; w < (size_t)(x.numel + 63) / 64; w++)
                x.next[w] = test_rng_u64(&r);
        }
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* Rows and N:M on 1 and 3 threads: identical masks, equal to the
 * reference; shapes whose row blocks end inside mask words. */
START_TEST(test_rows_nm_threads) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 13);
    csp_context *c1 = test_context(1, 0), *c3 = test_context(3, 0);
    static const int64_t shapes[][2] = {{300, 700}, {2100, 100}, {700, 333}, {64, 4100}};
    for (int trial = 0; trial < 8; trial++) {
        const int64_t *sh = shapes[trial % 4];
        ttensor x;
        make(&x, c1, &r, sh[0], sh[1], trial >= 4 ? 3 : 0, CSP_DTYPE_F32, trial % 3, 0.2);
        size_t nw = (size_t)(x.numel + 63) / 64;
        uint64_t *one = malloc(nw * 8);
        int64_t keep = sh[1] - csp__round_count(0.9, sh[1]);
        csp__select_src s = src(&x);
        ck_assert_status(c1, csp__select_rows(c1, &s, keep), CSP_OK);
        memcpy(one, x.next, nw * 8);
        ck_assert_status(c3, csp__select_rows(c3, &s, keep), CSP_OK);
        ck_assert_int_eq(memcmp(one, x.next, nw * 8), 0);
        check_rows_ref(&x, keep, "rows, 3 threads");
        drop(&x);
        free(one);
        /* N:M: m divides 64 (word blocks) and not (group blocks) */
        int m = trial % 2 ? 4 : 3;
        make(&x, c1, &r, 500, 300, trial >= 4 ? 1 : 0, CSP_DTYPE_F32, trial % 3, 0.1);
        one = malloc((size_t)(x.numel + 63) / 64 * 8);
        nw = (size_t)(x.numel + 63) / 64;
        s = src(&x);
        ck_assert_status(c1, csp__select_nm(c1, &s, m, m / 2), CSP_OK);
        memcpy(one, x.next, nw * 8);
        ck_assert_status(c3, csp__select_nm(c3, &s, m, m / 2), CSP_OK);
        ck_assert_int_eq(memcmp(one, x.next, nw * 8), 0);
        check_nm_ref(&x, m, m / 2, "N:M, 3 threads");
        drop(&x);
        free(one);
    }
    csp_context_free(c1);
    csp_context_free(c3);
}
END_TEST

/* A NaN or infinity anywhere (kept or already pruned) is refused. */
START_TEST(test_nonfinite_refused) {
    csp_context *ctx = test_context(1, 0);
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 6);
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int trial = 0; trial < 36; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        bool big = trial % 4 == 0;
        ttensor x;
        make(&x, ctx, &r, big ? 256 : 8, big ? 256 : 16, trial % 3 == 0 ? 2 : 0, dtype, 0, 0.3);
        int64_t f = (int64_t)(test_rng_u64(&r) % (uint64_t)x.numel);
        tset(&x, f, bad[trial % 3]);
        csp__select_src s = src(&x);
        int64_t cands = csp__mask_popcount(x.cur, x.numel);
        int64_t keep = (trial / 3) % 3 == 0 ? cands : cands / 2;
        ck_assert_status(ctx, csp__select_topk_ex(ctx, &s, 1, keep, (uint32_t)(trial % 3)),
                         CSP_E_NONFINITE);
        for (int k = 0; k < 3; k++) {
            ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, 3, kernel_flags[k]),
                             CSP_E_NONFINITE);
            ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, 0, kernel_flags[k]),
                             CSP_E_NONFINITE);
            ck_assert_status(ctx, csp__select_rows_ex(ctx, &s, x.cols, kernel_flags[k]),
                             CSP_E_NONFINITE);
            ck_assert_status(ctx, csp__select_nm_ex(ctx, &s, 4, 2, kernel_flags[k]),
                             CSP_E_NONFINITE);
            ck_assert_status(ctx, csp__select_nm_ex(ctx, &s, 8, 3, kernel_flags[k]),
                             CSP_E_NONFINITE);
            ck_assert_status(ctx, csp__select_nm_ex(ctx, &s, 16, 5, kernel_flags[k]),
                             CSP_E_NONFINITE);
        }
        ck_assert(strstr(csp_context_last_error(ctx), "N:M selection") != NULL);
        ck_assert(!csp__all_finite(x.t));
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* Applying a mask zeroes exactly the 0 bits, leaves the rest bit-identical
 * (NaN and -0 included), ignores padding, and does not depend on threads. */
START_TEST(test_mask_apply) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 7);
    for (int trial = 0; trial < 16; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int32_t threads = 1 + trial % 3;
        csp_context *ctx = test_context(threads, 0);
        bool big = trial >= 12;
        int64_t rows = big ? 1500 : 1 + (int64_t)(test_rng_u64(&r) % 40);
        int64_t cols = big ? 3000 : 1 + (int64_t)(test_rng_u64(&r) % 300);
        int64_t pad = (trial / 2) % 2 ? 7 : 0;
        ttensor x;
        make(&x, ctx, &r, rows, cols, pad, dtype, 2, 0.5);
        size_t es = dtype == CSP_DTYPE_F64 ? 8 : 4;
        /* whole words of zeros and of ones too */
        for (int64_t w = 0; w < (x.numel + 63) / 64; w += 5)
            x.cur[w] = (w % 10) ? ~0ULL : 0;
        if (x.numel % 64)
            x.cur[x.numel / 64] &= csp__lowmask((int)(x.numel % 64));
        tset(&x, 0, NAN);
        size_t bytes = (size_t)(rows * x.stride) * es;
        unsigned char *before = malloc(bytes);
        /* padding holds a marker that must survive */
        for (int64_t row = 0; row < rows; row++)
            for (int64_t c = cols; c < x.stride; c++) {
                if (dtype == CSP_DTYPE_F64)
                    ((double *)x.buf)[row * x.stride + c] = 99.0;
                else
                    ((float *)x.buf)[row * x.stride + c] = 99.0f;
            }
        memcpy(before, x.buf, bytes);
        csp__mask_apply(ctx, x.t, x.cur);
        for (int64_t row = 0; row < rows; row++)
            for (int64_t c = 0; c < x.stride; c++) {
                size_t off = (size_t)(row * x.stride + c) * es;
                bool keep = c >= cols || bit(x.cur, row * cols + c);
                static const unsigned char zero[8] = {0};
                REQUIRE(memcmp((char *)x.buf + off, keep ? before + off : zero, es) == 0,
                        "apply: row %lld col %lld (kept %d)", (long long)row, (long long)c,
                        (int)keep);
            }
        free(before);
        drop(&x);
        csp_context_free(ctx);
    }
}
END_TEST

/* The energies of a mask change (the GMP event's error statistics): sums
 * of w^2 over kept, and over kept-then-dropped weights, against a long
 * double reference (relative 1e-12); every kernel set gives the same bits,
 * whatever the shape (strides, pieces not a multiple of 4, whole words of
 * zeros and ones), both dtypes. */
START_TEST(test_mask_energy) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 14);
    csp_context *ctx = test_context(1, 0);
    for (int trial = 0; trial < 40; trial++) {
        int32_t dtype = (trial & 1) ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
        int64_t rows = 1 + (int64_t)(test_rng_u64(&r) % (trial < 30 ? 30 : 400));
        int64_t cols = 1 + (int64_t)(test_rng_u64(&r) % (trial < 30 ? 150 : 900));
        ttensor x;
        make(&x, ctx, &r, rows, cols, (trial / 2) % 2 ? 3 : 0, dtype, trial % 3 == 2 ? 2 : 0, 0.3);
        size_t nw = (size_t)(x.numel + 63) / 64;
        for (size_t w = 0; w < nw; w++) /* next: a subset of cur, some whole words */
            x.next[w] = x.cur[w] & (w % 7 == 0 ? 0 : w % 7 == 1 ? ~0ULL : test_rng_u64(&r));
        long double rw = 0.0L, re = 0.0L;
        for (int64_t f = 0; f < x.numel; f++) {
            long double v = (long double)tget(&x, f);
            if (bit(x.cur, f)) {
                rw += v * v;
                if (!bit(x.next, f))
                    re += v * v;
            }
        }
        double ww[3], ee[3];
        for (int k = 0; k < 3; k++)
            csp__mask_energy_ex(x.t, x.cur, x.next, &ww[k], &ee[k], k);
        REQUIRE(fabsl((long double)ww[0] - rw) <= 1e-12L * rw, "kept energy %.17g, reference %.17Lg",
                ww[0], rw);
        REQUIRE(fabsl((long double)ee[0] - re) <= 1e-12L * rw,
                "dropped energy %.17g, reference %.17Lg", ee[0], re);
        for (int k = 1; k < 3; k++)
            REQUIRE(memcmp(&ww[k], &ww[0], sizeof(double)) == 0 &&
                        memcmp(&ee[k], &ee[0], sizeof(double)) == 0,
                    "kernel set %d: %.17g %.17g, default %.17g %.17g", k, ww[k], ee[k], ww[0],
                    ee[0]);
        double w2, e2;
        csp__mask_energy(x.t, x.cur, x.next, &w2, &e2);
        ck_assert(w2 == ww[0] && e2 == ee[0]);
        drop(&x);
    }
    csp_context_free(ctx);
}
END_TEST

/* FNV-1a 64 over numel (8 LE bytes) and the LE mask bytes, computed here
 * byte by byte from the bit definition. */
START_TEST(test_digest_definition) {
    test_rng r;
    test_rng_init(&r, csp_test_seed() + 8);
    /* Known answer: FNV-1a 64 of the empty input and of "a". */
    ck_assert_uint_eq(csp__fnv1a(CSP__FNV_OFFSET, NULL, 0), 0xcbf29ce484222325ULL);
    ck_assert_uint_eq(csp__fnv1a(CSP__FNV_OFFSET, (const uint8_t *)"a", 1), 0xaf63dc4c8601ec8cULL);
    for (int trial = 0; trial < 20; trial++) {
        int64_t numel = 1 + (int64_t)(test_rng_u64(&r) % 700);
        uint64_t mask[11] = {0};
        for (int64_t i = 0; i < numel; i++)
            if (test_rng_u64(&r) & 1)
                mask[i >> 6] |= 1ULL << (i & 63);
        uint64_t h = 0xcbf29ce484222325ULL;
        for (int j = 0; j < 8; j++) {
            h ^= ((uint64_t)numel >> (8 * j)) & 0xff;
            h *= 0x100000001b3ULL;
        }
        for (int64_t b = 0; b < (numel + 7) / 8; b++) {
            unsigned byte = 0;
            for (int j = 0; j < 8; j++)
                if (b * 8 + j < numel && ((mask[(b * 8 + j) >> 6] >> ((b * 8 + j) & 63)) & 1))
                    byte |= 1u << j;
            h ^= byte;
            h *= 0x100000001b3ULL;
        }
        ck_assert_uint_eq(csp__mask_digest(CSP__FNV_OFFSET, mask, numel), h);
    }
}
END_TEST

static Suite *select_suite(void) {
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_count);
    tcase_add_test(tc, test_kth_largest);
    tcase_add_test(tc, test_topk_matches_sort);
    tcase_add_test(tc, test_topk_sampled_path_hits);
    tcase_add_test(tc, test_global_matches_concatenation);
    tcase_add_test(tc, test_rows_match_sort);
    tcase_add_test(tc, test_nm_matches_sort);
    tcase_add_test(tc, test_rows_kernels_match_sort);
    tcase_add_test(tc, test_rows_adversarial_keys);
    tcase_add_test(tc, test_nm_kernels_match_sort);
    tcase_add_test(tc, test_rows_nm_threads);
    tcase_add_test(tc, test_nonfinite_refused);
    tcase_add_test(tc, test_mask_apply);
    tcase_add_test(tc, test_mask_energy);
    tcase_add_test(tc, test_digest_definition);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(select_suite()); }
