/* Solvers: OMP against a float64 reference written here, exact recovery,
 * identity = magnitude selection, ISTA/FISTA against a float64 optimum,
 * lambda calibration, damping, determinism across thread counts, in-place
 * solves, the internal refit and error routines, bad input. */
#include "testutil.h"

#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

#include <math.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------------------------- */

/* Smaller problems under valgrind (memory checking, not statistics). */
static bool under_valgrind(void) {
    const char *e = getenv("CSP_UNDER_VALGRIND");
    return e != NULL && e[0] == '1';
}

static csp_sensing *make_sensing(csp_context *ctx, int32_t kind, int64_t n, int64_t m) {
    csp_sensing_options o;
    csp_sensing_options_init(&o, sizeof o);
    o.kind = kind;
    o.n = n;
    o.m = m;
    csp_sensing *s = NULL;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_OK);
    return s;
}

static csp_solver *make_solver(csp_context *ctx, int32_t method, int32_t calibrate,
                               double lambda, double tol) {
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.method = method;
    o.calibrate = calibrate;
    o.lambda = lambda;
    o.tol = tol;
    o.max_iter = 5000;
    csp_solver *s = NULL;
    ck_assert_status(ctx, csp_solver_create(&s, ctx, &o), CSP_OK);
    return s;
}

/* G = X^T X / samples in float64 (X samples x n) into @p G, and a GRAM
 * operator holding it. */
static csp_sensing *sample_gram_sensing(csp_context *ctx, const float *X, int64_t samples,
                                        int64_t n, double *G) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t t = 0; t < samples; t++)
                acc += (double)X[t * n + i] * X[t * n + j];
            G[i * n + j] = acc / (double)samples;
        }
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GRAM, n, 0);
    ck_assert_status(ctx, csp_sensing_set_gram(sen, G, n), CSP_OK);
    return sen;
}

static double *gram_of(csp_context *ctx, csp_sensing *s) {
    int64_t n = csp_sensing_n(s);
    double *G = malloc((size_t)(n * n) * sizeof *G);
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, G, n), CSP_OK);
    return G;
}

static void fill_normal(float *x, int64_t count, test_rng *r) {
    for (int64_t i = 0; i < count; i++)
        x[i] = (float)test_rng_normal(r);
}

static bool bit(const uint64_t *bits, int64_t i) { return (bits[i >> 6] >> (i & 63)) & 1u; }

/* A random allowed mask keeping about @p keep of each row, at least kmin. */
static void random_mask(uint64_t *bits, int64_t rows, int64_t n, int64_t row_bits, double keep,
                        int64_t kmin, test_rng *r) {
    memset(bits, 0, (size_t)((rows * row_bits + 63) / 64) * sizeof(uint64_t));
    for (int64_t i = 0; i < rows; i++) {
        int64_t cnt = 0;
        for (int64_t c = 0; c < n; c++)
            if (test_rng_uniform(r) < keep || n - c <= kmin - cnt) {
                int64_t b = i * row_bits + c;
                bits[b >> 6] |= (uint64_t)1 << (b & 63);
                cnt++;
            }
    }
}

/* (w - x)^T G (w - x) and the L1 objective, in float64. */
static double quad(const double *G, int64_t n, const float *w, const float *x) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double ei = (double)w[i] - (double)x[i], acc = 0.0;
        for (int64_t j = 0; j < n; j++)
            acc += G[i * n + j] * ((double)w[j] - (double)x[j]);
        s += ei * acc;
    }
    return s;
}

static double l1_objective(const double *G, int64_t n, const float *w, const float *x,
                           double lam) {
    double l1 = 0.0;
    for (int64_t j = 0; j < n; j++)
        l1 += fabs((double)x[j]);
    return 0.5 * quad(G, n, w, x) + lam * l1;
}

/* Reference OMP in float64: alpha = G (w - x) recomputed in full, x the
 * least-squares fit on S from a fresh Cholesky factor; the first maximum of
 * |alpha| over allowed, unselected columns wins. Returns |S|. */
/* Float64 reference OMP; with @p normalize the pick is |a_j| / sqrt(G_jj). */
static int ref_omp_ex(const double *G, int n, const float *wf, int k, const uint64_t *allowed,
                      int64_t abit0, int *S, double *x, bool normalize) {
    double *w = malloc((size_t)n * sizeof *w), *b = malloc((size_t)n * sizeof *b);
    double *L = malloc((size_t)(k * k + 1) * sizeof *L), *c = malloc((size_t)(k + 1) * sizeof *c);
    for (int i = 0; i < n; i++)
        w[i] = wf[i];
    for (int i = 0; i < n; i++) {
        b[i] = 0.0;
        for (int j = 0; j < n; j++)
            b[i] += G[i * n + j] * w[j];
    }
    memset(x, 0, (size_t)n * sizeof *x);
    int s = 0;
    while (s < k) {
        int best = -1;
        double bv = -1.0;
        for (int j = 0; j < n; j++) {
            if (allowed != NULL && !bit(allowed, abit0 + j))
                continue;
            bool sel = false;
            for (int t = 0; t < s; t++)
                sel = sel || S[t] == j;
            if (sel)
                continue;
            double a = b[j];
            for (int t = 0; t < s; t++)
                a -= G[j * n + S[t]] * x[S[t]];
            double score = fabs(a);
            if (normalize)
                score = G[j * n + j] > 0.0 ? score / sqrt(G[j * n + j]) : 0.0;
            if (score > bv) {
                bv = score;
                best = j;
            }
        }
        if (best < 0)
            break;
        S[s++] = best;
        /* Cholesky of G_SS and the solve. */
        for (int i = 0; i < s; i++)
            for (int j = 0; j <= i; j++) {
                double v = G[S[i] * n + S[j]];
                for (int q = 0; q < j; q++)
                    v -= L[i * k + q] * L[j * k + q];
                L[i * k + j] = i == j ? sqrt(v) : v / L[j * k + j];
            }
        for (int i = 0; i < s; i++) {
            double v = b[S[i]];
            for (int q = 0; q < i; q++)
                v -= L[i * k + q] * c[q];
            c[i] = v / L[i * k + i];
        }
        for (int i = s - 1; i >= 0; i--) {
            double v = c[i];
            for (int q = i + 1; q < s; q++)
                v -= L[q * k + i] * c[q];
            c[i] = v / L[i * k + i];
        }
        memset(x, 0, (size_t)n * sizeof *x);
        for (int i = 0; i < s; i++)
            x[S[i]] = c[i];
    }
    free(w);
    free(b);
    free(L);
    free(c);
    return s;
}

static int ref_omp(const double *G, int n, const float *wf, int k, const uint64_t *allowed,
                   int64_t abit0, int *S, double *x) {
    return ref_omp_ex(G, n, wf, k, allowed, abit0, S, x, false);
}

/* Reference L1 optimum: coordinate descent in float64 to convergence. */
static double ref_l1(const double *G, int n, const float *wf, double lam,
                     const uint64_t *allowed, int64_t abit0) {
    double *x = calloc((size_t)n, sizeof *x), *gx = calloc((size_t)n, sizeof *gx);
    double *b = malloc((size_t)n * sizeof *b);
    for (int i = 0; i < n; i++) {
        b[i] = 0.0;
        for (int j = 0; j < n; j++)
            b[i] += G[i * n + j] * (double)wf[j];
    }
    for (int sweep = 0; sweep < 20000; sweep++) {
        double change = 0.0, scale = 0.0;
        for (int j = 0; j < n; j++) {
            if (allowed != NULL && !bit(allowed, abit0 + j))
                continue;
            double gjj = G[j * n + j];
            double z = x[j] - (gx[j] - b[j]) / gjj;
            double t = lam / gjj;
            double nx = fabs(z) > t ? copysign(fabs(z) - t, z) : 0.0;
            double d = nx - x[j];
            if (d != 0.0) {
                for (int i = 0; i < n; i++)
                    gx[i] += G[i * n + j] * d;
                x[j] = nx;
            }
            change = fmax(change, fabs(d));
            scale = fmax(scale, fabs(nx));
        }
        if (change <= 1e-15 * (scale + 1e-300))
            break;
    }
    /* Objective in float64. */
    double q = 0.0, l1 = 0.0;
    for (int i = 0; i < n; i++) {
        double ei = (double)wf[i] - x[i], acc = 0.0;
        for (int j = 0; j < n; j++)
            acc += G[i * n + j] * ((double)wf[j] - x[j]);
        q += ei * acc;
        l1 += fabs(x[i]);
    }
    free(x);
    free(gx);
    free(b);
    return 0.5 * q + lam * l1;
}

static csp_solver_batch batch_of(int64_t rows, int64_t n, const float *w, float *x, int32_t k,
                                 csp_row_stats *stats) {
    csp_solver_batch b;
    ck_assert_int_eq(csp_solver_batch_init(&b, sizeof b), CSP_OK);
    b.rows = rows;
    b.n = n;
    b.w = w;
    b.x = x;
    b.k_all = k;
    b.stats = stats;
    b.stats_size = stats != NULL ? sizeof *stats : 0;
    return b;
}

/* ---- OMP ------------------------------------------------------------------------------------ */

/* Supports and coefficients match the float64 reference on >= 99% of rows,
 * with and without allowed masks. */
static void omp_vs_reference(bool masked) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ (masked ? 77 : 0));
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 128, M = 64, MAXROWS = 300, K = 12 };
    int ROWS = under_valgrind() ? 100 : MAXROWS;
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, M);
    double *G = gram_of(ctx, sen);
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    float *w = malloc(sizeof(float) * N * ROWS), *x = malloc(sizeof(float) * N * ROWS);
    fill_normal(w, N * ROWS, &rng);
    uint64_t mask[MAXROWS * 2], sup[MAXROWS * 2];
    random_mask(mask, ROWS, N, N, 0.6, K, &rng);
    csp_row_stats st[MAXROWS];
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    b.support = sup;
    b.support_row_bits = N;
    if (masked) {
        b.allowed = mask;
        b.allowed_row_bits = N;
    }
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    int match = 0;
    double xr[N];
    int S[K];
    for (int r = 0; r < ROWS; r++) {
        int s = ref_omp(G, N, w + r * N, K, masked ? mask : NULL, (int64_t)r * N, S, xr);
        ck_assert_int_eq(s, K);
        ck_assert_int_eq(st[r].nnz, K);
        ck_assert_int_eq(st[r].iterations, K);
        ck_assert_int_eq(st[r].converged, 1);
        ck_assert_int_eq(st[r].flags, 0);
        bool same = true;
        double scale = 0.0;
        for (int j = 0; j < N; j++)
            scale = fmax(scale, fabs(xr[j]));
        for (int j = 0; j < N; j++) {
            bool in_ref = xr[j] != 0.0;
            if (bit(sup, (int64_t)r * N + j) != in_ref)
                same = false;
            if (!in_ref && x[r * N + j] != 0.0f)
                same = false;
            if (masked && !bit(mask, (int64_t)r * N + j))
                ck_assert(x[r * N + j] == 0.0f && !bit(sup, (int64_t)r * N + j));
        }
        if (same) {
            for (int j = 0; j < N; j++)
                ck_assert_msg(fabs(x[r * N + j] - xr[j]) <= 1e-4 * fmax(fabs(xr[j]), 1e-2 * scale),
                              "row %d col %d: %.9g vs reference %.9g", r, j, x[r * N + j], xr[j]);
            match++;
        }
        /* The reported residual is (w - x)^T G (w - x). */
        double q = quad(G, N, w + r * N, x + r * N);
        ck_assert_msg(fabs(st[r].residual - q) <= 1e-4 * st[r].energy, "residual %g vs %g",
                      st[r].residual, q);
        double e = 0.0;
        float zero[N];
        memset(zero, 0, sizeof zero);
        e = quad(G, N, w + r * N, zero);
        ck_assert(fabs(st[r].energy - e) <= 1e-5 * e);
    }
    ck_assert_msg(match >= (ROWS * 99 + 99) / 100, "only %d of %d rows match the reference",
                  match, ROWS);
    free(w);
    free(x);
    free(G);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}

START_TEST(test_omp_reference) { omp_vs_reference(false); }
END_TEST

START_TEST(test_omp_reference_masked) { omp_vs_reference(true); }
END_TEST

/* Long supports (k = 84 of n = 96, the early events of a ramp): every pick
 * extends the factor and the correlations by one column (omp.c), so errors
 * could build up over the 84 steps. On a full-rank activation-like Gram
 * (AR(1) inputs, correlation 0.6) the supports match the float64 reference
 * on >= 97% of rows (the last picks of a row may be near-ties), with the
 * coefficients within 1e-4 relative (float32 outputs) and the reported
 * residual equal to (w - x)^T G (w - x) within 1e-6 w^T G w. */
/* Row r of a solve against the reference's coefficients xr: false when the
 * supports differ; else the coefficients must agree within 1e-4 (relative,
 * floored at 1e-2 of the row's largest) and it returns true. */
static bool same_as_reference(const float *x, const uint64_t *sup, int64_t sbits, int r, int n,
                              const double *xr) {
    double scale = 0.0;
    for (int j = 0; j < n; j++) {
        scale = fmax(scale, fabs(xr[j]));
        if (bit(sup, (int64_t)r * sbits + j) != (xr[j] != 0.0))
            return false;
    }
    for (int j = 0; j < n; j++)
        ck_assert_msg(fabs(x[r * n + j] - xr[j]) <= 1e-4 * fmax(fabs(xr[j]), 1e-2 * scale),
                      "row %d col %d: %.9g vs reference %.9g", r, j, x[r * n + j], xr[j]);
    return true;
}

START_TEST(test_omp_reference_long) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ 0x10a6);
    csp_context *ctx = test_context(1 + (int32_t)(seed % 2), seed);
    enum { N = 96, K = 84, SAMPLES = 600 };
    const int ROWS = under_valgrind() ? 20 : 120;
    static double G[N * N];
    static float X[SAMPLES * N];
    for (int t = 0; t < SAMPLES; t++) {
        double prev = test_rng_normal(&rng);
        for (int j = 0; j < N; j++) {
            prev = 0.6 * prev + 0.8 * test_rng_normal(&rng);
            X[t * N + j] = (float)prev;
        }
    }
    csp_sensing *sen = sample_gram_sensing(ctx, X, SAMPLES, N, G);
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    float *w = malloc(sizeof(float) * N * ROWS), *x = malloc(sizeof(float) * N * ROWS);
    fill_normal(w, N * ROWS, &rng);
    uint64_t *sup = malloc(sizeof(uint64_t) * 2 * ROWS);
    csp_row_stats *st = malloc(sizeof *st * ROWS);
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    b.support = sup;
    b.support_row_bits = 128;
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    int match = 0;
    int S[K];
    double xr[N];
    for (int r = 0; r < ROWS; r++) {
        ck_assert_int_eq(ref_omp(G, N, w + r * N, K, NULL, 0, S, xr), K);
        ck_assert_int_eq(st[r].nnz, K);
        ck_assert_int_eq(st[r].flags, 0);
        match += same_as_reference(x, sup, 128, r, N, xr);
        double q = quad(G, N, w + r * N, x + r * N);
        ck_assert_msg(fabs(st[r].residual - q) <= 1e-6 * st[r].energy, "residual %g vs %g",
                      st[r].residual, q);
    }
    ck_assert_msg(match >= (ROWS * 97) / 100, "only %d of %d rows match the reference", match,
                  ROWS);
    free(w);
    free(x);
    free(sup);
    free(st);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* k above a known rank bound (a random operator with m < k rows of Phi):
 * the row is solved with G + delta I from the first pick, which makes it
 * OMP on G + delta I (delta = damping * mean diag G). Against the float64
 * reference on that matrix: supports on >= 95 % of rows (the picks beyond
 * rank m follow correlations ~delta |w - x|, so near-ties exist),
 * coefficients within 1e-4 where they match, the undamped residual; rows
 * flagged dependent and damped with delta reported. k <= m stays undamped. */
START_TEST(test_omp_rank_predamp) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ 0x7a3d);
    csp_context *ctx = test_context(1 + (int32_t)(seed % 2), seed);
    enum { N = 96, M = 32, K = 60, ROWS = 80 };
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, M);
    csp_solver_options so;
    csp_solver_options_init(&so, sizeof so);
    so.method = CSP_SOLVER_OMP;
    so.damping = 1e-2;
    csp_solver *sv = NULL;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &so), CSP_OK);
    double *G = gram_of(ctx, sen), trace = 0.0;
    static double Gd[N * N];
    for (int i = 0; i < N; i++)
        trace += G[i * N + i];
    double delta = 1e-2 * trace / N;
    for (int i = 0; i < N * N; i++)
        Gd[i] = G[i] + (i % (N + 1) == 0 ? delta : 0.0);
    static float w[N * ROWS], x[N * ROWS];
    static uint64_t sup[2 * ROWS];
    csp_row_stats st[ROWS];
    fill_normal(w, N * ROWS, &rng);
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    b.support = sup;
    b.support_row_bits = 128;
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_DAMPED);
    int match = 0, S[K];
    double xr[N];
    for (int r = 0; r < ROWS; r++) {
        ck_assert_int_eq(ref_omp(Gd, N, w + r * N, K, NULL, 0, S, xr), K);
        ck_assert_int_eq(st[r].nnz, K);
        ck_assert(st[r].flags & CSP_ROW_DAMPED);
        ck_assert(st[r].flags & CSP_ROW_DEPENDENT);
        ck_assert_msg(fabs(st[r].damping - delta) <= 1e-12 * delta, "damping %g, want %g",
                      st[r].damping, delta);
        match += same_as_reference(x, sup, 128, r, N, xr);
        double q = quad(G, N, w + r * N, x + r * N);
        ck_assert_msg(fabs(st[r].residual - q) <= 1e-5 * st[r].energy, "residual %g vs %g",
                      st[r].residual, q);
    }
    ck_assert_msg(match >= (ROWS * 95) / 100, "only %d of %d rows match the reference", match,
                  ROWS);
    b.k_all = M / 2;
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    for (int r = 0; r < ROWS; r++)
        ck_assert_int_eq(st[r].flags & CSP_ROW_DAMPED, 0);
    free(G);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* The live-column layout of OMP (columns swapped out as they stop being
 * candidates, ties settled by column index) gives the same bits as the
 * column layout: supports, coefficients and row stats, on rows with masks,
 * exact ties (duplicated inputs, which also make G_SS singular and damp),
 * normalised atoms, N:M groups and a rank-deficient random operator. */
static void omp_layouts_case(csp_context *ctx, csp_sensing *sen, int nm, bool normalize,
                             int64_t n, int rows, const float *w, int k, const uint64_t *mask,
                             int *live_rows) {
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.normalize = normalize ? 1 : 0;
    csp_solver *sv = NULL;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_OK);
    size_t xs = sizeof(float) * (size_t)(n * rows);
    float *x[2] = {malloc(xs), malloc(xs)};
    int64_t words = (n + 63) / 64;
    uint64_t *sup[2] = {calloc((size_t)(rows * words), 8), calloc((size_t)(rows * words), 8)};
    csp_row_stats *st[2] = {calloc((size_t)rows, sizeof(csp_row_stats)),
                            calloc((size_t)rows, sizeof(csp_row_stats))};
    csp_status ret[2];
    for (int lay = 0; lay < 2; lay++) {
        csp__omp_force_layout(lay);
        csp_solver_batch b = batch_of(rows, n, w, x[lay], k, st[lay]);
        b.support = sup[lay];
        b.allowed = mask;
        if (nm > 0) {
            csp__gram *g = NULL;
            ck_assert_status(ctx, csp__sensing_prepare(sen, 0, 0, &g), CSP_OK);
            ret[lay] = csp__omp_nm(sv, g, &b, nm, nm / 2, "test");
        } else {
            ret[lay] = csp_solver_solve(sv, sen, 0, 0, &b);
        }
        ck_assert(ret[lay] == CSP_OK || ret[lay] == CSP_DAMPED);
    }
    csp__omp_force_layout(-1);
    ck_assert_int_eq(ret[0], ret[1]);
    ck_assert_mem_eq(x[0], x[1], xs);
    ck_assert_mem_eq(sup[0], sup[1], (size_t)(rows * words) * 8);
    for (int r = 0; r < rows; r++) {
        ck_assert_int_eq(st[0][r].nnz, st[1][r].nnz);
        ck_assert_int_eq(st[0][r].flags, st[1][r].flags);
        ck_assert_int_eq(st[0][r].iterations, st[1][r].iterations);
        ck_assert(st[0][r].residual == st[1][r].residual);
        ck_assert(st[0][r].damping == st[1][r].damping);
        *live_rows += st[0][r].flags != 0;
    }
    for (int lay = 0; lay < 2; lay++) {
        free(x[lay]);
        free(sup[lay]);
        free(st[lay]);
    }
    csp_solver_free(sv);
}

START_TEST(test_omp_layouts) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ 0x1a70);
    csp_context *ctx = test_context(1, seed);
    enum { N = 96, ROWS = 60, SAMPLES = 300 };
    /* An activation Gram with three pairs of identical inputs (exact ties
     * in alpha; the second of a pair is dependent on the first). */
    static float X[SAMPLES * N];
    static double G[N * N];
    fill_normal(X, SAMPLES * N, &rng);
    static const int dup[3][2] = {{70, 5}, {90, 33}, {41, 40}};
    for (int t = 0; t < SAMPLES; t++) {
        float common = (float)test_rng_normal(&rng);
        for (int j = 0; j < N; j++)
            X[t * N + j] = X[t * N + j] * (float)(0.5 + (j % 5)) + common;
        for (int d = 0; d < 3; d++)
            X[t * N + dup[d][1]] = X[t * N + dup[d][0]];
    }
    csp_sensing *sen = sample_gram_sensing(ctx, X, SAMPLES, N, G);
    float *w = malloc(sizeof(float) * N * ROWS);
    fill_normal(w, N * ROWS, &rng);
    for (int r = 0; r < ROWS; r++) /* equal weights on a duplicated pair: exact ties */
        for (int d = 0; d < 3; d++)
            w[r * N + dup[d][1]] = w[r * N + dup[d][0]];
    uint64_t mask[ROWS * 2];
    int damped = 0;
    for (int kq = 0; kq < 4; kq++) {
        int k = (int)(N * (0.1 + 0.27 * kq));
        random_mask(mask, ROWS, N, 128, 0.9, k, &rng);
        for (int nz = 0; nz < 2; nz++) {
            omp_layouts_case(ctx, sen, 0, nz == 1, N, ROWS, w, k, NULL, &damped);
            omp_layouts_case(ctx, sen, 0, nz == 1, N, ROWS, w, k, mask, &damped);
        }
        if (k <= N / 2)
            omp_layouts_case(ctx, sen, 4, false, N, ROWS, w, k, NULL, &damped);
    }
    ck_assert_msg(damped > 0, "no row met a tie or a dependent column");
    csp_sensing_free(sen);
    /* A Gaussian operator with m < k: damped from the first pick. */
    sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 24);
    omp_layouts_case(ctx, sen, 0, false, N, ROWS, w, 40, NULL, &damped);
    omp_layouts_case(ctx, sen, 0, false, N, ROWS, w, 40, mask, &damped);
    csp_sensing_free(sen);
    free(w);
    csp_context_free(ctx);
}
END_TEST


/* k-sparse signals are recovered exactly at m = ceil(2 k ln(n / k)).
 * Measured rate of OMP at (n, k, m) = (1024, 10, 93) with Gaussian
 * amplitudes: 99.3-99.7% over seeds (the float64 reference does the same;
 * equal-magnitude amplitudes are harder for OMP: ~93%). */
/* Normalised atoms (solver option normalize): against the float64
 * reference with the normalised pick on an activation-like Gram whose
 * column energies differ by 100x; and, with a diagonal G, the closed form:
 * the support is the k largest |w_j| sqrt(G_jj) (Wanda's score). */
START_TEST(test_omp_normalized) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ 0x5eed);
    csp_context *ctx = test_context(1 + (int32_t)(seed % 2), seed);
    enum { N = 48, ROWS = 120, K = 9, SAMPLES = 400 };
    /* G = X^T X / S with column j scaled by 10^(2 j / N - 1). */
    static double G[N * N];
    static float X[SAMPLES * N];
    fill_normal(X, SAMPLES * N, &rng);
    for (int t = 0; t < SAMPLES; t++)
        for (int j = 0; j < N; j++)
            X[t * N + j] *= (float)pow(10.0, 2.0 * j / N - 1.0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int t = 0; t < SAMPLES; t++)
                acc += (double)X[t * N + i] * X[t * N + j];
            G[i * N + j] = acc / SAMPLES + (i == j ? 1e-3 : 0.0);
        }
    csp_sensing_options so;
    csp_sensing_options_init(&so, sizeof so);
    so.kind = CSP_SENSING_GRAM;
    so.n = N;
    csp_sensing *sen = NULL;
    ck_assert_status(ctx, csp_sensing_create(&sen, ctx, &so), CSP_OK);
    ck_assert_status(ctx, csp_sensing_set_gram(sen, G, N), CSP_OK);
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    ck_assert_int_eq(o.normalize, 0);
    o.normalize = 1;
    csp_solver *sv = NULL;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_OK);
    static float w[N * ROWS], x[N * ROWS];
    fill_normal(w, N * ROWS, &rng);
    uint64_t sup[ROWS];
    csp_row_stats st[ROWS];
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    b.support = sup;
    b.support_row_bits = 64;
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    int match = 0, differs_from_plain = 0;
    int S[K];
    double xr[N], xp[N];
    for (int r = 0; r < ROWS; r++) {
        ck_assert_int_eq(ref_omp_ex(G, N, w + r * N, K, NULL, 0, S, xr, true), K);
        bool same = true;
        for (int j = 0; j < N; j++)
            same = same && bit(&sup[r], j) == (xr[j] != 0.0);
        match += same;
        ref_omp_ex(G, N, w + r * N, K, NULL, 0, S, xp, false);
        bool plain = true;
        for (int j = 0; j < N; j++)
            plain = plain && (xp[j] != 0.0) == (xr[j] != 0.0);
        differs_from_plain += !plain;
    }
    ck_assert_msg(match >= (ROWS * 98) / 100, "%d of %d rows match the reference", match, ROWS);
    ck_assert_msg(differs_from_plain > ROWS / 4, "normalised supports like plain ones (%d)",
                  differs_from_plain);
    /* A diagonal G: the closed form. */
    static double D[N * N];
    memset(D, 0, sizeof D);
    for (int j = 0; j < N; j++)
        D[j * N + j] = 0.01 + 5.0 * test_rng_uniform(&rng);
    ck_assert_status(ctx, csp_sensing_set_gram(sen, D, N), CSP_OK);
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    for (int r = 0; r < ROWS; r++) {
        double score[N];
        for (int j = 0; j < N; j++)
            score[j] = fabs((double)w[r * N + j]) * sqrt(D[j * N + j]);
        for (int j = 0; j < N; j++) {
            int above = 0;
            for (int q = 0; q < N; q++)
                above += score[q] > score[j];
            REQUIRE(bit(&sup[r], j) == (above < K), "row %d col %d: rank %d", r, j, above);
        }
    }
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_omp_exact_recovery) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 1);
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 1024, K = 10 };
    const int ROWS = under_valgrind() ? 40 : 400;
    int m = (int)ceil(2.0 * K * log((double)N / K)); /* 93 */
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, m);
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    float *w = calloc((size_t)N * ROWS, sizeof *w), *x = malloc((size_t)N * ROWS * sizeof *x);
    for (int r = 0; r < ROWS; r++)
        for (int q = 0; q < K; q++) {
            int j;
            do
                j = (int)(test_rng_u64(&rng) % N);
            while (w[r * N + j] != 0.0f);
            w[r * N + j] = (float)test_rng_normal(&rng);
        }
    csp_row_stats *st = malloc(ROWS * sizeof *st);
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
    int exact = 0;
    for (int r = 0; r < ROWS; r++) {
        bool ok = true;
        for (int j = 0; j < N; j++)
            ok = ok && fabsf(x[r * N + j] - w[r * N + j]) <= 1e-4f * (1.0f + fabsf(w[r * N + j]));
        exact += ok;
        if (ok)
            ck_assert(st[r].residual <= 1e-6 * st[r].energy);
    }
    ck_assert_msg(exact >= ROWS * 96 / 100 - (under_valgrind() ? 2 : 0),
                  "exact recovery on %d of %d rows at m = %d", exact, ROWS, m);
    /* With eps and a budget of 3k, OMP stops once the residual is below
     * eps w^T G w: on a recoverable row, after at most its k atoms. */
    csp_solver_options o;
    csp_solver_options_init(&o, sizeof o);
    o.eps = 1e-4; /* the floor is ~1e-6: w^T G w comes from a float32 G w */
    csp_solver *se = NULL;
    ck_assert_status(ctx, csp_solver_create(&se, ctx, &o), CSP_OK);
    float *x2 = malloc((size_t)N * ROWS * sizeof *x2);
    b.x = x2;
    b.k_all = 3 * K;
    ck_assert_status(ctx, csp_solver_solve(se, sen, 0, 0, &b), CSP_OK);
    int early = 0;
    for (int r = 0; r < ROWS; r++) {
        ck_assert(st[r].converged);
        ck_assert(st[r].nnz == 3 * K || st[r].residual <= 1e-4 * st[r].energy);
        bool rec = true;
        for (int j = 0; j < N; j++)
            rec = rec && fabsf(x[r * N + j] - w[r * N + j]) <= 1e-4f * (1.0f + fabsf(w[r * N + j]));
        if (rec) {
            ck_assert_int_le(st[r].nnz, K);
            early += st[r].nnz < 3 * K;
        }
    }
    ck_assert_int_eq(early, exact);
    free(x2);
    free(w);
    free(x);
    free(st);
    csp_solver_free(se);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* G = I: OMP keeps exactly the k largest |w| (lower index first among
 * equals) and x_S = w_S bit for bit, through the identity operator (fast
 * path) and through a user Gram equal to I (general Batch-OMP path). */
START_TEST(test_identity_is_magnitude) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 2);
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 70, ROWS = 40 };
    csp_sensing *id = make_sensing(ctx, CSP_SENSING_IDENTITY, N, 0);
    csp_sensing *ug = make_sensing(ctx, CSP_SENSING_GRAM, N, 0);
    static double I[N * N];
    for (int i = 0; i < N; i++)
        I[i * N + i] = 1.0;
    ck_assert_status(ctx, csp_sensing_set_gram(ug, I, N), CSP_OK);
    csp_solver *omp = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    csp_solver *fista = make_solver(ctx, CSP_SOLVER_FISTA, 1, 0.0, 1e-6);
    static float w[N * ROWS], x[N * ROWS];
    /* Few distinct magnitudes: many ties, both signs, some zeros. */
    for (int i = 0; i < N * ROWS; i++) {
        int q = (int)(test_rng_u64(&rng) % 9) - 4;
        w[i] = (float)q * 0.25f;
    }
    uint64_t mask[ROWS * 2], sup[ROWS * 2];
    int32_t k[ROWS];
    random_mask(mask, ROWS, N, 128, 0.7, N / 2, &rng);
    for (int r = 0; r < ROWS; r++)
        k[r] = (int32_t)(test_rng_u64(&rng) % (N / 2 + 1));
    csp_row_stats st[ROWS];
    for (int variant = 0; variant < 6; variant++) {
        csp_sensing *sen = variant % 2 == 0 ? id : ug;
        csp_solver *sv = variant < 4 ? omp : fista;
        bool masked = variant == 2 || variant == 3;
        csp_solver_batch b = batch_of(ROWS, N, w, x, 0, st);
        b.k = k;
        b.support = sup;
        if (masked)
            b.allowed = mask;
        csp_status got = csp_solver_solve(sv, sen, 0, 0, &b);
        ck_assert_msg(got == CSP_OK, "variant %d: %s", variant, csp_context_last_error(ctx));
        for (int r = 0; r < ROWS; r++) {
            /* Sort-based reference: rank allowed columns by |w| desc, index asc. */
            int order[N], cnt = 0;
            for (int j = 0; j < N; j++)
                if (!masked || bit(mask, (int64_t)r * 128 + j))
                    order[cnt++] = j;
            for (int a = 1; a < cnt; a++)
                for (int c = a; c > 0; c--) {
                    float fa = fabsf(w[r * N + order[c - 1]]), fb = fabsf(w[r * N + order[c]]);
                    if (fb > fa) {
                        int t = order[c];
                        order[c] = order[c - 1];
                        order[c - 1] = t;
                    }
                }
            bool keep[N] = {false};
            for (int q = 0; q < k[r]; q++)
                keep[order[q]] = true;
            for (int j = 0; j < N; j++) {
                ck_assert_msg(bit(sup, (int64_t)r * 128 + j) == keep[j],
                              "variant %d row %d col %d: support differs from magnitude",
                              variant, r, j);
                if (variant < 4)
                    ck_assert_msg(memcmp(&x[r * N + j], keep[j] ? &w[r * N + j] : &(float){0.0f},
                                         sizeof(float)) == 0,
                                  "variant %d row %d col %d: x = %a, w = %a", variant, r, j,
                                  x[r * N + j], w[r * N + j]);
                else if (!keep[j])
                    ck_assert(x[r * N + j] == 0.0f);
            }
            ck_assert_int_eq(st[r].nnz, k[r]);
        }
    }
    csp_solver_free(omp);
    csp_solver_free(fista);
    csp_sensing_free(id);
    csp_sensing_free(ug);
    csp_context_free(ctx);
}
END_TEST

/* k above rank(G): G_SS turns singular; damping keeps the solve finite and
 * is reported. */
START_TEST(test_omp_damping) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 3);
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 64, M = 16, ROWS = 30, K = 24 };
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_RADEMACHER, N, M);
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    static float w[N * ROWS], x[N * ROWS];
    fill_normal(w, N * ROWS, &rng);
    csp_row_stats st[ROWS];
    uint64_t sup[ROWS];
    csp_solver_batch b = batch_of(ROWS, N, w, x, K, st);
    b.support = sup;
    b.support_row_bits = 64;
    ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_DAMPED);
    for (int r = 0; r < ROWS; r++) {
        ck_assert_int_eq(st[r].nnz, K);
        ck_assert_int_eq(__builtin_popcountll(sup[r]), K);
        ck_assert(st[r].flags & CSP_ROW_DAMPED);
        ck_assert(st[r].flags & CSP_ROW_DEPENDENT);
        ck_assert(st[r].damping > 0.0);
        ck_assert(isfinite(st[r].residual));
        /* With m = 16 atoms the residual through G can already be ~0. */
        ck_assert(st[r].residual <= 1e-3 * st[r].energy);
        for (int j = 0; j < N; j++)
            ck_assert(isfinite(x[r * N + j]));
    }
    /* A zero Gram (user) is all damping: every column depends on nothing. */
    csp_sensing *z = make_sensing(ctx, CSP_SENSING_GRAM, N, 0);
    static double Z[N * N];
    ck_assert_status(ctx, csp_sensing_set_gram(z, Z, N), CSP_OK);
    ck_assert_status(ctx, csp_solver_solve(sv, z, 0, 0, &b), CSP_DAMPED);
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < N; j++)
            ck_assert(isfinite(x[r * N + j]));
    csp_sensing_free(z);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* ---- ISTA / FISTA ------------------------------------------------------------------------- */

START_TEST(test_l1_reference) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 4);
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 48, M = 32, MAXROWS = 12 };
    const int ROWS = under_valgrind() ? 3 : MAXROWS;
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, M);
    double *G = gram_of(ctx, sen);
    static float w[N * MAXROWS], x[N * MAXROWS];
    fill_normal(w, N * ROWS, &rng);
    uint64_t mask[MAXROWS];
    random_mask(mask, ROWS, N, 64, 0.8, 10, &rng);
    double lam[MAXROWS], refobj[2][MAXROWS];
    for (int r = 0; r < ROWS; r++) {
        /* lambda from 5% to 40% of lambda_max. */
        double lmax = 0.0;
        for (int i = 0; i < N; i++) {
            double bi = 0.0;
            for (int j = 0; j < N; j++)
                bi += G[i * N + j] * w[r * N + j];
            lmax = fmax(lmax, fabs(bi));
        }
        lam[r] = lmax * (0.05 + 0.35 * test_rng_uniform(&rng));
        refobj[0][r] = ref_l1(G, N, w + r * N, lam[r], NULL, 0);
        refobj[1][r] = ref_l1(G, N, w + r * N, lam[r], mask, (int64_t)r * 64);
    }
    int64_t iters[3][2] = {{0}};
    for (int method = 0; method < 3; method++)
        for (int masked = 0; masked < 2; masked++) {
            csp_solver_options o;
            csp_solver_options_init(&o, sizeof o);
            o.method = method == 0 ? CSP_SOLVER_ISTA : CSP_SOLVER_FISTA;
            o.restart = method == 2 ? 1 : 0;
            o.calibrate = 0;
            o.tol = 5e-5;
            o.max_iter = 100000;
            csp_solver *sv = NULL;
            ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_OK);
            csp_row_stats st[MAXROWS];
            csp_solver_batch b = batch_of(ROWS, N, w, x, 0, st);
            b.lambda = lam;
            if (masked)
                b.allowed = mask;
            ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
            for (int r = 0; r < ROWS; r++) {
                double P = l1_objective(G, N, w + r * N, x + r * N, lam[r]);
                double ref = refobj[masked][r];
                ck_assert_msg(fabs(P - ref) <= 1e-4 * ref,
                              "method %d masked %d row %d: objective %.12g, optimum %.12g (rel "
                              "%.3g)",
                              method, masked, r, P, ref, (P - ref) / ref);
                ck_assert_int_eq(st[r].converged, 1);
                ck_assert(st[r].lambda == lam[r]);
                iters[method][masked] += st[r].iterations;
                if (masked)
                    for (int j = 0; j < N; j++)
                        if (!bit(mask, (int64_t)r * 64 + j))
                            ck_assert(x[r * N + j] == 0.0f);
            }
            csp_solver_free(sv);
        }
    for (int masked = 0; masked < 2; masked++) {
        ck_assert_msg(iters[1][masked] < iters[0][masked], "FISTA %lld >= ISTA %lld iterations",
                      (long long)iters[1][masked], (long long)iters[0][masked]);
        ck_assert_msg(iters[2][masked] < iters[0][masked],
                      "FISTA+restart %lld >= ISTA %lld iterations",
                      (long long)iters[2][masked], (long long)iters[0][masked]);
    }
    free(G);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* Calibration: every row ends with exactly k nonzeros (support size k),
 * lambda is reported and a second call warm-started from it agrees. */
START_TEST(test_l1_calibration) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 5);
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 64, MAXROWS = 24 };
    const int ROWS = under_valgrind() ? 5 : MAXROWS;
    for (int kind = 0; kind < 3; kind++) {
        csp_sensing *sen =
            kind == 0 ? make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 40)
                      : make_sensing(ctx, kind == 1 ? CSP_SENSING_ACTIVATIONS
                                                    : CSP_SENSING_RADEMACHER,
                                     N, 12);
        if (kind == 1) {
            static float X[200 * N];
            fill_normal(X, 200 * N, &rng);
            ck_assert_status(ctx, csp_sensing_observe(sen, X, 200, N, 0), CSP_OK);
        }
        csp_solver *sv = make_solver(ctx, CSP_SOLVER_FISTA, 1, 0.0, 1e-4);
        static float w[N * MAXROWS], x[N * MAXROWS];
        fill_normal(w, N * ROWS, &rng);
        int32_t k[MAXROWS];
        for (int r = 0; r < ROWS; r++)
            k[r] = (int32_t)(test_rng_u64(&rng) % 40);
        double lam[MAXROWS];
        memset(lam, 0, sizeof lam);
        uint64_t sup[MAXROWS];
        csp_row_stats st[MAXROWS];
        csp_solver_batch b = batch_of(ROWS, N, w, x, 0, st);
        b.k = k;
        b.lambda = lam;
        b.support = sup;
        csp_status got = csp_solver_solve(sv, sen, 0, 0, &b);
        ck_assert_msg(got == CSP_OK || got == CSP_NOT_CONVERGED, "%s",
                      csp_context_last_error(ctx));
        for (int r = 0; r < ROWS; r++) {
            ck_assert_int_eq(__builtin_popcountll(sup[r]), k[r]);
            ck_assert_int_eq(st[r].nnz, k[r]);
            int nz = 0;
            for (int j = 0; j < N; j++) {
                nz += x[r * N + j] != 0.0f;
                if (x[r * N + j] != 0.0f)
                    ck_assert(bit(&sup[r], j));
            }
            ck_assert_int_le(nz, k[r]);
            if (!(st[r].flags & CSP_ROW_FILLED))
                ck_assert_int_eq(nz, k[r]);
            ck_assert(lam[r] >= 0.0 && lam[r] == st[r].lambda);
        }
        /* Warm start (from x and lambda): the same supports. */
        uint64_t sup2[MAXROWS];
        b.support = sup2;
        b.warm_start = 1;
        got = csp_solver_solve(sv, sen, 0, 0, &b);
        ck_assert(got == CSP_OK || got == CSP_NOT_CONVERGED);
        int same = 0;
        for (int r = 0; r < ROWS; r++) {
            ck_assert_int_eq(__builtin_popcountll(sup2[r]), k[r]);
            same += sup2[r] == sup[r];
        }
        /* Rademacher with m = 12 < k: Lasso solutions are not unique (equal
         * columns), so only the well-posed operators must agree. */
        if (kind != 2)
            ck_assert_int_ge(same, ROWS - 1);
        (void)MAXROWS;
        csp_solver_free(sv);
        csp_sensing_free(sen);
    }
    csp_context_free(ctx);
}
END_TEST

/* ---- determinism, in place, threads ---------------------------------------------------- */

START_TEST(test_threads_and_in_place) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 6);
    /* 520 rows: two full chunks of 256 and a tail. */
    enum { N = 96, ROWS = 520, K = 9 };
    static float w[N * ROWS], x1[N * ROWS], x2[N * ROWS], wc[N * ROWS];
    fill_normal(w, N * ROWS, &rng);
    int64_t rows = under_valgrind() ? 24 : ROWS;
    /* Bits past n in each row's words are never written: start at 0. */
    static uint64_t mask[ROWS * 2], s1[ROWS * 2], s2[ROWS * 2];
    memset(s1, 0, sizeof s1);
    memset(s2, 0, sizeof s2);
    random_mask(mask, ROWS, N, 128, 0.8, K, &rng);
    for (int method = CSP_SOLVER_OMP; method <= CSP_SOLVER_FISTA; method++)
        for (int cal = 0; cal < 2; cal++) {
            /* OMP has no calibration; ISTA runs FISTA's code with beta = 0. */
            if ((method == CSP_SOLVER_OMP && cal == 0) || method == CSP_SOLVER_ISTA)
                continue;
            for (int threads = 1; threads <= 3; threads += 2) {
                csp_context *ctx = test_context(threads, csp_test_seed());
                csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 48);
                csp_solver *sv = make_solver(ctx, method, cal, 0.3, 1e-4);
                csp_solver_batch b = batch_of(rows, N, w, threads == 1 ? x1 : x2, K, NULL);
                b.allowed = mask;
                b.support = threads == 1 ? s1 : s2;
                csp_status got = csp_solver_solve(sv, sen, 0, 0, &b);
                ck_assert_msg(got >= 0, "%s", csp_context_last_error(ctx));
                if (threads > 1) {
                    ck_assert_msg(memcmp(x1, x2, sizeof(float) * N * rows) == 0,
                                  "method %d calibrate %d: x depends on the thread count", method,
                                  cal);
                    ck_assert_mem_eq(s1, s2, sizeof s1);
                }
                /* In place: x = w gives the same result. */
                memcpy(wc, w, sizeof w);
                b.w = wc;
                b.x = wc;
                b.support = NULL;
                ck_assert_int_eq(csp_solver_solve(sv, sen, 0, 0, &b), got);
                ck_assert(memcmp(wc, x1, sizeof(float) * N * rows) == 0);
                csp_solver_free(sv);
                csp_sensing_free(sen);
                csp_context_free(ctx);
            }
        }
}
END_TEST

/* Masks packed contiguously (row_bits = n, rows not word-aligned) and
 * strided rows give the same results as the default layouts; bits outside
 * the batch's rows are left alone. */
START_TEST(test_packed_masks_and_strides) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 8);
    csp_context *ctx = test_context(2, csp_test_seed());
    enum { N = 70, ROWS = 9, WS = 75, K = 6 };
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_RADEMACHER, N, 40);
    static float w[ROWS * WS], wd[ROWS * N], xa[ROWS * N], xb[ROWS * 80];
    fill_normal(w, ROWS * WS, &rng);
    for (int r = 0; r < ROWS; r++)
        memcpy(wd + r * N, w + r * WS, N * sizeof(float));
    uint64_t aligned[ROWS * 2], packed[(ROWS * N + 63) / 64 + 1];
    random_mask(aligned, ROWS, N, 128, 0.7, K, &rng);
    memset(packed, 0, sizeof packed);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < N; c++)
            if (bit(aligned, (int64_t)r * 128 + c)) {
                int64_t b = (int64_t)r * N + c;
                packed[b >> 6] |= (uint64_t)1 << (b & 63);
            }
    for (int method = CSP_SOLVER_OMP; method <= CSP_SOLVER_FISTA; method += 2) {
        csp_solver *sv = make_solver(ctx, method, 1, 0.0, 1e-4);
        uint64_t sa[ROWS * 2], sp[(ROWS * N + 63) / 64 + 1];
        memset(sa, 0, sizeof sa);
        memset(sp, 0xff, sizeof sp); /* sentinel past the last row's bits */
        csp_solver_batch b = batch_of(ROWS, N, wd, xa, K, NULL);
        b.allowed = aligned;
        b.support = sa;
        ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
        b = batch_of(ROWS, N, w, xb, K, NULL);
        b.w_stride = WS;
        b.x_stride = 80;
        b.allowed = packed;
        b.allowed_row_bits = N;
        b.support = sp;
        b.support_row_bits = N;
        ck_assert_status(ctx, csp_solver_solve(sv, sen, 0, 0, &b), CSP_OK);
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < N; c++) {
                ck_assert(bit(sa, (int64_t)r * 128 + c) == bit(sp, (int64_t)r * N + c));
                ck_assert(xa[r * N + c] == xb[r * 80 + c]);
            }
        for (int64_t q = (int64_t)ROWS * N; q < (int64_t)sizeof sp * 8; q++)
            ck_assert(bit(sp, q));
        csp_solver_free(sv);
    }
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* ---- the internal refit and errors ------------------------------------------------------- */

START_TEST(test_refit_and_errors) {
    test_rng rng;
    test_rng_init(&rng, csp_test_seed() + 7);
    csp_context *ctx = test_context(2, csp_test_seed());
    enum { N = 40, ROWS = 20, K = 8 };
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 30);
    csp__gram *g = NULL;
    ck_assert_status(ctx, csp__sensing_prepare(sen, 0, 0, &g), CSP_OK);
    double *G = gram_of(ctx, sen);
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    static float w[N * ROWS], xo[N * ROWS], xr[N * ROWS];
    fill_normal(w, N * ROWS, &rng);
    uint64_t sup[ROWS];
    csp_row_stats st[ROWS], st2[ROWS];
    csp_solver_batch b = batch_of(ROWS, N, w, xo, K, st);
    b.support = sup;
    ck_assert_status(ctx, csp__solver_run(sv, g, &b, "test"), CSP_OK);
    /* Full refit on OMP's support = OMP's least-squares coefficients. */
    b.x = xr;
    b.stats = st2;
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 1.0, true, "test"), CSP_OK);
    for (int i = 0; i < N * ROWS; i++)
        ck_assert(fabsf(xr[i] - xo[i]) <= 1e-4f * (1.0f + fabsf(xo[i])));
    for (int r = 0; r < ROWS; r++) {
        ck_assert_int_eq(st2[r].nnz, K);
        ck_assert(fabs(st2[r].residual - st[r].residual) <= 1e-4 * st[r].energy);
    }
    /* alpha = 0 keeps w on S; alpha = 1/2 is halfway. */
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 0.0, true, "test"), CSP_OK);
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < N; j++)
            ck_assert(xr[r * N + j] == (bit(&sup[r], j) ? w[r * N + j] : 0.0f));
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 0.5, true, "test"), CSP_OK);
    for (int i = 0; i < N * ROWS; i++) {
        int r = i / N, j = i % N;
        float want = bit(&sup[r], j) ? 0.5f * (w[i] + xo[i]) : 0.0f;
        ck_assert(fabsf(xr[i] - want) <= 1e-4f * (1.0f + fabsf(want)));
    }
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 1.5, true, "test"), CSP_E_RANGE);
    b.support = NULL;
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 1.0, true, "test"), CSP_E_NULL);
    /* Errors: weight and sensing domain, against direct float64 sums. */
    double we[ROWS], se[ROWS];
    ck_assert_status(ctx, csp__row_errors(ctx, g, ROWS, N, w, N, xo, N, we, se), CSP_OK);
    float zero[N];
    memset(zero, 0, sizeof zero);
    for (int r = 0; r < ROWS; r++) {
        double ww = 0.0, ee = 0.0;
        for (int j = 0; j < N; j++) {
            ww += (double)w[r * N + j] * w[r * N + j];
            ee += ((double)w[r * N + j] - xo[r * N + j]) * ((double)w[r * N + j] - xo[r * N + j]);
        }
        ck_assert(fabs(we[r] - sqrt(ee / ww)) <= 1e-12);
        double want = quad(G, N, w + r * N, xo + r * N) / quad(G, N, w + r * N, zero);
        ck_assert(fabs(se[r] - want) <= 1e-10);
        ck_assert(fabs(se[r] - st[r].residual / st[r].energy) <= 1e-4);
    }
    ck_assert_status(ctx, csp__row_errors(ctx, g, ROWS, N + 1, w, N, xo, N, we, se),
                     CSP_E_SHAPE);
    /* Identity: refit is a no-op, errors are plain norms. */
    csp_sensing *id = make_sensing(ctx, CSP_SENSING_IDENTITY, N, 0);
    csp__gram *gi = NULL;
    ck_assert_status(ctx, csp__sensing_prepare(id, 0, 0, &gi), CSP_OK);
    ck_assert(gi->identity && gi->g64 == NULL);
    b.support = sup;
    ck_assert_status(ctx, csp__solver_refit(sv, gi, &b, 1.0, true, "test"), CSP_OK);
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < N; j++)
            ck_assert(xr[r * N + j] == (bit(&sup[r], j) ? w[r * N + j] : 0.0f));
    ck_assert_status(ctx, csp__row_errors(ctx, gi, ROWS, N, w, N, xr, N, we, se), CSP_OK);
    for (int r = 0; r < ROWS; r++)
        ck_assert(fabs(se[r] - we[r] * we[r]) <= 1e-12);
    csp_sensing_free(id);
    free(G);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* The refit's OBS form (lib/solver/refit.c: x_S = w_S - H_SR H_RR^-1 w_R
 * with H = G^-1, taken for rows keeping more than half their columns when
 * the call's cost model says so) against a float64 solve of the normal
 * equations G_SS x_S = (G w)_S, on a correlated PD Gram, rows keeping 1 ..
 * N columns in one call (both forms); csp__gram_inverse against G H = I; a
 * rank-deficient Gram falls back to the direct, damped form. */
START_TEST(test_refit_obs_form) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed ^ 0x0b5f);
    csp_context *ctx = test_context(1 + (int32_t)(seed % 2), seed);
    enum { N = 64, ROWS = 48, SAMPLES = 400 };
    static double G[N * N], H[N * N];
    static float X[SAMPLES * N];
    for (int t = 0; t < SAMPLES; t++) {
        double prev = test_rng_normal(&rng);
        for (int j = 0; j < N; j++) {
            prev = 0.6 * prev + 0.8 * test_rng_normal(&rng);
            X[t * N + j] = (float)(prev + 0.3);
        }
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int t = 0; t < SAMPLES; t++)
                acc += (double)X[t * N + i] * X[t * N + j];
            G[i * N + j] = acc / SAMPLES + (i == j ? 0.01 : 0.0);
        }
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GRAM, N, 0);
    ck_assert_status(ctx, csp_sensing_set_gram(sen, G, N), CSP_OK);
    csp__gram *g = NULL;
    ck_assert_status(ctx, csp__sensing_prepare(sen, 0, 0, &g), CSP_OK);
    ck_assert(csp__gram_inverse(g, H, 1e-6));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int q = 0; q < N; q++)
                acc += G[i * N + q] * H[q * N + j];
            ck_assert_msg(fabs(acc - (i == j)) <= 1e-9, "(G H)[%d][%d] = %.3g", i, j, acc);
            ck_assert(H[i * N + j] == H[j * N + i]);
        }
    csp_solver *sv = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    static float w[N * ROWS], x[N * ROWS];
    static uint64_t sup[ROWS];
    csp_row_stats st[ROWS];
    fill_normal(w, N * ROWS, &rng);
    for (int r = 0; r < ROWS; r++) {
        /* keep 1 .. N columns; most rows keep more than half (the OBS form) */
        int keep = r < 8 ? 1 + r * 4 : N / 2 + 1 + (r * 7) % (N / 2);
        sup[r] = 0;
        for (int c = 0; c < keep;) {
            int j = (int)(test_rng_u64(&rng) % N);
            if (!((sup[r] >> j) & 1u)) {
                sup[r] |= 1ull << j;
                c++;
            }
        }
    }
    csp_solver_batch b = batch_of(ROWS, N, w, x, 0, st);
    b.support = sup;
    ck_assert_status(ctx, csp__solver_refit(sv, g, &b, 1.0, true, "test"), CSP_OK);
    for (int r = 0; r < ROWS; r++) {
        int S[N], s = 0;
        for (int j = 0; j < N; j++)
            if (bit(&sup[r], j))
                S[s++] = j;
        /* reference: Gaussian elimination on G_SS x = (G w)_S in float64 */
        static double A[N * (N + 1)];
        for (int i = 0; i < s; i++) {
            double rhs = 0.0;
            for (int q = 0; q < N; q++)
                rhs += G[S[i] * N + q] * (double)w[r * N + q];
            for (int t = 0; t < s; t++)
                A[i * (N + 1) + t] = G[S[i] * N + S[t]];
            A[i * (N + 1) + N] = rhs;
        }
        for (int p = 0; p < s; p++)
            for (int i = p + 1; i < s; i++) {
                double f = A[i * (N + 1) + p] / A[p * (N + 1) + p];
                for (int t = p; t < s; t++)
                    A[i * (N + 1) + t] -= f * A[p * (N + 1) + t];
                A[i * (N + 1) + N] -= f * A[p * (N + 1) + N];
            }
        double ref[N];
        for (int i = s - 1; i >= 0; i--) {
            double v = A[i * (N + 1) + N];
            for (int t = i + 1; t < s; t++)
                v -= A[i * (N + 1) + t] * ref[t];
            ref[i] = v / A[i * (N + 1) + i];
        }
        double scale = 0.0;
        for (int i = 0; i < s; i++)
            scale = fmax(scale, fabs(ref[i]));
        for (int i = 0; i < s; i++)
            ck_assert_msg(fabs(x[r * N + S[i]] - ref[i]) <= 1e-5 * fmax(fabs(ref[i]), 0.1 * scale),
                          "row %d (keeps %d) col %d: %.9g vs %.9g", r, s, S[i], x[r * N + S[i]],
                          ref[i]);
        for (int j = 0; j < N; j++)
            if (!bit(&sup[r], j))
                ck_assert(x[r * N + j] == 0.0f);
        ck_assert_int_eq(st[r].flags, 0);
        double q = quad(G, N, w + r * N, x + r * N);
        ck_assert(fabs(st[r].residual - q) <= 1e-6 * st[r].energy);
    }
    /* rank(G) <= 16 < the kept counts: no inverse, the direct form damps. */
    csp_sensing *low = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 16);
    csp__gram *gl = NULL;
    ck_assert_status(ctx, csp__sensing_prepare(low, 0, 0, &gl), CSP_OK);
    ck_assert(!csp__gram_inverse(gl, H, 1e-6));
    ck_assert_status(ctx, csp__solver_refit(sv, gl, &b, 1.0, true, "test"), CSP_DAMPED);
    for (int i = 0; i < N * ROWS; i++)
        ck_assert(isfinite(x[i]));
    csp_sensing_free(low);
    csp_solver_free(sv);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

/* ---- bad input -------------------------------------------------------------------------- */

START_TEST(test_bad_input) {
    csp_context *ctx = test_context(1, csp_test_seed());
    enum { N = 16, ROWS = 4 };
    csp_sensing *sen = make_sensing(ctx, CSP_SENSING_GAUSSIAN, N, 8);
    float w[N * ROWS], x[N * ROWS];
    for (int i = 0; i < N * ROWS; i++) {
        w[i] = (float)(i % 7) - 3.0f;
        x[i] = 42.0f; /* sentinel: must survive every failed call */
    }
    csp_solver_options o;
    ck_assert_int_eq(csp_solver_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_solver_options_init(&o, sizeof o - 1), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_solver_options_init(&o, sizeof o), CSP_OK);
    csp_solver *sv = (csp_solver *)&o;
    o.method = 0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_ENUM);
    ck_assert_ptr_null(sv);
    o.method = 5; /* 4 is the experimental CSP_SOLVER_SWEEP */
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_ENUM);
    o.method = CSP_SOLVER_FISTA;
    o.tol = 0.0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.tol = NAN;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.tol = 1e-4;
    o.max_iter = 0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.max_iter = 10;
    o.eps = 1.0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.eps = 0.0;
    o.lambda = -1.0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.lambda = INFINITY;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.lambda = 0.0;
    o.calibrate = 2;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.calibrate = 1;
    o.damping = 0.0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.damping = 1e-4;
    o.dependence_tol = 1.0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.dependence_tol = 1e-6;
    o.max_bisect = 0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.max_bisect = 60;
    o.restart = -1;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_RANGE);
    o.restart = 1;
    o.struct_size = sizeof o + 8; /* a newer caller with unknown non-zero bytes */
    struct {
        csp_solver_options o;
        uint64_t extra;
    } big;
    memcpy(&big.o, &o, sizeof o);
    big.extra = 1;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &big.o), CSP_E_RESERVED);
    big.extra = 0;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &big.o), CSP_OK);
    csp_solver_free(sv);
    o.struct_size = 8;
    ck_assert_status(ctx, csp_solver_create(&sv, ctx, &o), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_solver_create(NULL, ctx, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_solver_create(&sv, NULL, NULL), CSP_E_NULL);
    csp_solver_free(NULL);

    csp_solver *omp = make_solver(ctx, CSP_SOLVER_OMP, 1, 0.0, 1e-4);
    csp_solver *fista = make_solver(ctx, CSP_SOLVER_FISTA, 0, 0.0, 1e-4);
    csp_row_stats st[ROWS];
    uint64_t mask[ROWS];
    memset(mask, 0xff, sizeof mask);
    mask[2] = 0x7; /* 3 allowed columns in row 2 */
    csp_solver_batch b = batch_of(ROWS, N, w, x, 4, st);
    ck_assert_int_eq(csp_solver_batch_init(NULL, sizeof b), CSP_E_NULL);
    ck_assert_int_eq(csp_solver_batch_init(&b, 4), CSP_E_STRUCT_SIZE);
    b = batch_of(ROWS, N, w, x, 4, st);
#define BAD(solver, expect)                                                              \
    do {                                                                                 \
        ck_assert_status(ctx, csp_solver_solve(solver, sen, 0, 0, &b), expect);          \
        ck_assert_str_ne(csp_context_last_error(ctx), "");                               \
        for (int i_ = 0; i_ < N * ROWS; i_++)                                            \
            ck_assert(x[i_] == 42.0f);                                                   \
        csp_context_clear_error(ctx);                                                    \
        b = batch_of(ROWS, N, w, x, 4, st);                                              \
    } while (0)
    b.k_all = N + 1;
    BAD(omp, CSP_E_RANGE);
    b.k_all = -1;
    BAD(omp, CSP_E_RANGE);
    int32_t k[ROWS] = {1, 2, 4, 4};
    b.k = k;
    b.allowed = mask;
    BAD(omp, CSP_E_RANGE); /* row 2 wants 4 of its 3 allowed columns */
    k[2] = 3;
    k[3] = -2;
    b.k = k;
    BAD(omp, CSP_E_RANGE);
    k[3] = 4;
    w[5] = NAN;
    BAD(omp, CSP_E_NONFINITE);
    w[5] = INFINITY;
    BAD(omp, CSP_E_NONFINITE);
    w[5] = 1.0f;
    b.n = N + 1;
    BAD(omp, CSP_E_SHAPE);
    b.rows = -1;
    BAD(omp, CSP_E_SHAPE);
    b.w_stride = N - 1;
    BAD(omp, CSP_E_SHAPE);
    b.allowed = mask;
    b.allowed_row_bits = N - 1;
    BAD(omp, CSP_E_SHAPE);
    b.support_row_bits = 3;
    BAD(omp, CSP_E_SHAPE);
    b.w = NULL;
    BAD(omp, CSP_E_NULL);
    b.x = NULL;
    BAD(omp, CSP_E_NULL);
    b.stats_size = sizeof(csp_row_stats) - 8;
    BAD(omp, CSP_E_RANGE);
    b.struct_size = 16;
    BAD(omp, CSP_E_STRUCT_SIZE);
    b.x = (float *)w + 1; /* overlaps w */
    BAD(omp, CSP_E_INVALID);
    b.x = (float *)w;
    b.x_stride = 2 * N;
    BAD(omp, CSP_E_INVALID);
    b.warm_start = 2;
    BAD(omp, CSP_E_RANGE);
    ck_assert_status(ctx, csp_solver_solve(omp, sen, 0, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_solver_solve(omp, NULL, 0, 0, &b), CSP_E_NULL);
    ck_assert_status(ctx, csp_solver_solve(omp, sen, -1, 0, &b), CSP_E_RANGE);
    ck_assert_int_eq(csp_solver_solve(NULL, sen, 0, 0, &b), CSP_E_NULL);
    /* ISTA/FISTA without calibration: lambda must be > 0 and finite. */
    BAD(fista, CSP_E_RANGE); /* options lambda = 0 */
    double lam[ROWS] = {0.1, 0.1, 0.0, 0.1};
    b.lambda = lam;
    BAD(fista, CSP_E_RANGE);
    lam[2] = NAN;
    b.lambda = lam;
    BAD(fista, CSP_E_NONFINITE);
    lam[2] = 0.1;
    b.lambda = lam;
    b.warm_start = 1;
    float save = x[3];
    x[3] = NAN;
    ck_assert_status(ctx, csp_solver_solve(fista, sen, 0, 0, &b), CSP_E_NONFINITE);
    x[3] = save;
    /* An unready operator. */
    csp_sensing *act = make_sensing(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    b = batch_of(ROWS, N, w, x, 4, st);
    ck_assert_status(ctx, csp_solver_solve(omp, act, 0, 0, &b), CSP_E_STATE);
    for (int i = 0; i < N * ROWS; i++)
        ck_assert(x[i] == 42.0f);
    /* Zero rows is fine and writes nothing. */
    b.rows = 0;
    ck_assert_status(ctx, csp_solver_solve(omp, sen, 0, 0, &b), CSP_OK);
    /* k = 0 gives x = 0 and an empty support. */
    b = batch_of(ROWS, N, w, x, 0, st);
    ck_assert_status(ctx, csp_solver_solve(omp, sen, 0, 0, &b), CSP_OK);
    for (int i = 0; i < N * ROWS; i++)
        ck_assert(x[i] == 0.0f);
    /* Stats of a larger (newer) layout: the tail is zeroed. */
    unsigned char big_stats[ROWS][sizeof(csp_row_stats) + 16];
    memset(big_stats, 0xab, sizeof big_stats);
    b.k_all = 2;
    b.stats = (csp_row_stats *)(void *)big_stats;
    b.stats_size = sizeof big_stats[0];
    ck_assert_status(ctx, csp_solver_solve(omp, sen, 0, 0, &b), CSP_OK);
    for (int r = 0; r < ROWS; r++) {
        csp_row_stats got;
        memcpy(&got, big_stats[r], sizeof got);
        ck_assert_int_eq(got.nnz, 2);
        for (size_t q = sizeof got; q < sizeof big_stats[0]; q++)
            ck_assert_int_eq(big_stats[r][q], 0);
    }
#undef BAD
    csp_sensing_free(act);
    csp_solver_free(omp);
    csp_solver_free(fista);
    csp_sensing_free(sen);
    csp_context_free(ctx);
}
END_TEST

static Suite *solver_suite(void) {
    Suite *s = suite_create("solver");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_omp_reference);
    tcase_add_test(tc, test_omp_reference_masked);
    tcase_add_test(tc, test_omp_normalized);
    tcase_add_test(tc, test_omp_reference_long);
    tcase_add_test(tc, test_omp_exact_recovery);
    tcase_add_test(tc, test_identity_is_magnitude);
    tcase_add_test(tc, test_omp_damping);
    tcase_add_test(tc, test_omp_rank_predamp);
    tcase_add_test(tc, test_omp_layouts);
    tcase_add_test(tc, test_l1_reference);
    tcase_add_test(tc, test_l1_calibration);
    tcase_add_test(tc, test_threads_and_in_place);
    tcase_add_test(tc, test_packed_masks_and_strides);
    tcase_add_test(tc, test_refit_and_errors);
    tcase_add_test(tc, test_refit_obs_form);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(solver_suite()); }
