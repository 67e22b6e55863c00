/* Sensing operators: identity, random Phi (determinism, known values,
 * G = Phi^T Phi, E[G] = I), activations (observe, merge, reset, accumulator
 * round trip), user Gram validation, bad input. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static csp_sensing *make(csp_context *ctx, int32_t kind, int64_t n, int64_t m) {
    csp_sensing_options o;
    ck_assert_int_eq(csp_sensing_options_init(&o, sizeof o), CSP_OK);
    o.kind = kind;
    o.n = n;
    o.m = m;
    csp_sensing *s = NULL;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_OK);
    return s;
}

START_TEST(test_options_and_create) {
    csp_context *ctx = test_context(1, 1);
    csp_sensing_options o;
    ck_assert_int_eq(csp_sensing_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_sensing_options_init(&o, 3), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_sensing_options_init(&o, sizeof o), CSP_OK);
    ck_assert_int_eq(o.kind, CSP_SENSING_IDENTITY);
    ck_assert(o.rho == 0.5 && o.damping == 0.01);
    csp_sensing *s = (csp_sensing *)&o; /* must be reset to NULL on failure */
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE); /* n = 0 */
    ck_assert_ptr_null(s);
    ck_assert_str_ne(csp_context_last_error(ctx), "");
    o.n = 8;
    o.kind = 0;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_ENUM);
    o.kind = 6;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_ENUM);
    o.kind = CSP_SENSING_GAUSSIAN;
    o.rho = 0.0;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE);
    o.rho = NAN;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE);
    o.rho = 0.5;
    o.m = -1;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE);
    o.m = 0;
    o.damping = -1.0;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE);
    o.damping = 0.01;
    o.n = CSP_SENSING_MAX_N + 1;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_RANGE);
    o.n = 8;
    o.struct_size = sizeof o - 1;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_E_STRUCT_SIZE);
    o.struct_size = sizeof o;
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_sensing_create(NULL, ctx, &o), CSP_E_NULL);
    ck_assert_int_eq(csp_sensing_create(&s, NULL, &o), CSP_E_NULL);
    ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_OK);
    ck_assert_int_eq(csp_sensing_kind(s), CSP_SENSING_GAUSSIAN);
    ck_assert_int_eq(csp_sensing_n(s), 8);
    ck_assert_int_eq(csp_sensing_m(s), 4); /* ceil(0.5 * 8) */
    ck_assert_int_eq(csp_sensing_count(s), 0);
    ck_assert_int_eq(csp_sensing_accumulator_len(s), 0);
    csp_sensing_free(s);
    csp_sensing_free(NULL);
    ck_assert_int_eq(csp_sensing_kind(NULL), 0);
    ck_assert_int_eq(csp_sensing_n(NULL), 0);
    ck_assert_int_eq(csp_sensing_m(NULL), 0);
    ck_assert_int_eq(csp_sensing_count(NULL), 0);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_identity) {
    csp_context *ctx = test_context(1, csp_test_seed());
    csp_sensing *s = make(ctx, CSP_SENSING_IDENTITY, 5, 0);
    ck_assert_int_eq(csp_sensing_m(s), 5);
    double G[5 * 6];
    for (int i = 0; i < 30; i++)
        G[i] = 7.0;
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, G, 6), CSP_OK);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 6; j++)
            ck_assert(G[i * 6 + j] == (j == 5 ? 7.0 : (i == j ? 1.0 : 0.0)));
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, G, 4), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_sensing_gram(s, -1, 0, G, 5), CSP_E_RANGE);
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, NULL, 5), CSP_E_NULL);
    ck_assert_int_eq(csp_sensing_gram(NULL, 0, 0, G, 5), CSP_E_NULL);
    ck_assert_status(ctx, csp_sensing_phi(s, 0, 0, G, 5), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_observe(s, (const float *)G, 1, 5, 0), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_set_gram(s, G, 5), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_reset(s), CSP_E_INVALID);
    csp_sensing_free(s);
    csp_context_free(ctx);
}
END_TEST

/* G = Phi^T Phi (to rounding), symmetric, and E[G] = I. */
static void check_random(int32_t kind) {
    uint64_t seed = csp_test_seed();
    csp_context *ctx = test_context(1, seed);
    enum { N = 40, M = 24 };
    csp_sensing *s = make(ctx, kind, N, M);
    ck_assert_int_eq(csp_sensing_m(s), M);
    static double G[N * N], P[M * N];
    ck_assert_status(ctx, csp_sensing_gram(s, 3, 5, G, N), CSP_OK);
    ck_assert_status(ctx, csp_sensing_phi(s, 3, 5, P, N), CSP_OK);
    double diag = 0.0;
    for (int a = 0; a < N; a++) {
        diag += G[a * N + a];
        for (int c = 0; c < N; c++) {
            double ref = 0.0;
            for (int i = 0; i < M; i++)
                ref += P[i * N + a] * P[i * N + c];
            ck_assert_msg(fabs(G[a * N + c] - ref) <= 1e-12 * (1.0 + fabs(ref)),
                          "G[%d][%d] = %.17g, Phi^T Phi = %.17g", a, c, G[a * N + c], ref);
            ck_assert(G[a * N + c] == G[c * N + a]);
        }
    }
    if (kind == CSP_SENSING_RADEMACHER) {
        for (int a = 0; a < N; a++) {
            ck_assert(G[a * N + a] == 1.0);
            for (int c = 0; c < N; c++) {
                double q = G[a * N + c] * M;
                ck_assert_msg(fabs(q - nearbyint(q)) < 1e-9, "m G is not an integer: %g", q);
            }
        }
        for (int i = 0; i < M * N; i++)
            ck_assert(fabs(fabs(P[i]) - 1.0 / sqrt((double)M)) < 1e-15);
    }
    /* E[G] = I: average G over many keys (events). */
    static double mean[N * N];
    memset(mean, 0, sizeof mean);
    enum { DRAWS = 200 };
    for (int e = 0; e < DRAWS; e++) {
        ck_assert_status(ctx, csp_sensing_gram(s, 0, e, G, N), CSP_OK);
        for (int i = 0; i < N * N; i++)
            mean[i] += G[i] / DRAWS;
    }
    /* Var(G_ac) = 1/m off the diagonal (2/m on it for Gaussian, 0 for
     * Rademacher): 6-sigma bounds. */
    for (int a = 0; a < N; a++)
        for (int c = 0; c < N; c++) {
            double var = (a == c ? (kind == CSP_SENSING_GAUSSIAN ? 2.0 : 0.0) : 1.0) / M;
            double tolv = 6.0 * sqrt(var / DRAWS) + 1e-12;
            ck_assert_msg(fabs(mean[a * N + c] - (a == c)) <= tolv, "E[G][%d][%d] = %g", a, c,
                          mean[a * N + c]);
        }
    (void)diag;
    csp_sensing_free(s);
    csp_context_free(ctx);
}

START_TEST(test_gaussian) { check_random(CSP_SENSING_GAUSSIAN); }
END_TEST

START_TEST(test_rademacher) { check_random(CSP_SENSING_RADEMACHER); }
END_TEST

/* The same key gives the same G bit for bit, for any thread count and on
 * every platform (committed values); other keys differ. */
START_TEST(test_random_deterministic) {
    enum { N = 6, M = 5 };
    /* Committed: (seed 42, tensor 7, block 1, event 2). An independent
     * Python reimplementation of the documented generator (SplitMix64 keys,
     * scipy.special.ndtri) agrees to 1e-15. */
    static const double want_gauss[4] = {0x1.4ac2fff851fe8p-1, 0x1.b48ad3ceb1413p-3,
                                         0x1.0c67baae08696p-1, 0x1.01744f9eb511dp-4};
    static const double want_rade[4] = {0x1p+0, 0x1.999999999999ap-3, -0x1.999999999999ap-3,
                                        -0x1.3333333333333p-1};
    for (int kind = CSP_SENSING_GAUSSIAN; kind <= CSP_SENSING_RADEMACHER; kind++) {
        double ref[N * N];
        for (int threads = 1; threads <= 4; threads++) {
            csp_context *ctx = test_context(threads, 42);
            csp_sensing_options o;
            csp_sensing_options_init(&o, sizeof o);
            o.kind = kind;
            o.n = N;
            o.m = M;
            o.tensor_id = 7;
            csp_sensing *s = NULL;
            ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_OK);
            double G[N * N], H[N * N];
            ck_assert_status(ctx, csp_sensing_gram(s, 1, 2, G, N), CSP_OK);
            if (threads == 1) {
                memcpy(ref, G, sizeof G);
                const double *want = kind == CSP_SENSING_GAUSSIAN ? want_gauss : want_rade;
                double got[4] = {G[0], G[1], G[3 * N + 2], G[5 * N + 4]};
                for (int i = 0; i < 4; i++)
                    ck_assert_msg(got[i] == want[i], "kind %d value %d: %a, committed %a",
                                  kind, i, got[i], want[i]);
            }
            ck_assert_mem_eq(G, ref, sizeof G);
            /* Other coordinates give other matrices; the cache is keyed. */
            ck_assert_status(ctx, csp_sensing_gram(s, 1, 3, H, N), CSP_OK);
            ck_assert(memcmp(G, H, sizeof G) != 0);
            ck_assert_status(ctx, csp_sensing_gram(s, 2, 2, H, N), CSP_OK);
            ck_assert(memcmp(G, H, sizeof G) != 0);
            ck_assert_status(ctx, csp_sensing_gram(s, 1, 2, H, N), CSP_OK);
            ck_assert_mem_eq(G, H, sizeof G);
            csp_sensing_free(s);
            o.tensor_id = 8;
            ck_assert_status(ctx, csp_sensing_create(&s, ctx, &o), CSP_OK);
            ck_assert_status(ctx, csp_sensing_gram(s, 1, 2, H, N), CSP_OK);
            ck_assert(memcmp(G, H, sizeof G) != 0);
            csp_sensing_free(s);
            csp_context_free(ctx);
        }
    }
}
END_TEST

/* A larger random Gram is also identical across thread counts. */
START_TEST(test_random_threads) {
    uint64_t seed = csp_test_seed();
    enum { N = 130, M = 70 };
    static double ref[N * N], G[N * N];
    for (int kind = CSP_SENSING_GAUSSIAN; kind <= CSP_SENSING_RADEMACHER; kind++)
        for (int threads = 1; threads <= 3; threads++) {
            csp_context *ctx = test_context(threads, seed);
            csp_sensing *s = make(ctx, kind, N, M);
            ck_assert_status(ctx, csp_sensing_gram(s, 0, 9, G, N), CSP_OK);
            if (threads == 1)
                memcpy(ref, G, sizeof G);
            else
                ck_assert_mem_eq(G, ref, sizeof G);
            csp_sensing_free(s);
            csp_context_free(ctx);
        }
}
END_TEST

static void fill(float *x, int64_t count, test_rng *r) {
    for (int64_t i = 0; i < count; i++)
        x[i] = (float)test_rng_normal(r);
}

START_TEST(test_activations) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed);
    csp_context *ctx = test_context(1, seed);
    enum { N = 17, R1 = 300, R2 = 45, STRIDE = 20 };
    csp_sensing *a = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    csp_sensing *b = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    static float x1[R1 * STRIDE], x2[R2 * N];
    fill(x1, R1 * STRIDE, &rng);
    fill(x2, R2 * N, &rng);
    double G[N * N];
    /* Nothing observed yet. */
    ck_assert_status(ctx, csp_sensing_gram(a, 0, 0, G, N), CSP_E_STATE);
    ck_assert_status(ctx, csp_sensing_observe(a, x1, R1, N, STRIDE), CSP_OK);
    ck_assert_status(ctx, csp_sensing_observe(a, x2, R2, N, 0), CSP_OK);
    ck_assert_int_eq(csp_sensing_count(a), R1 + R2);
    ck_assert_status(ctx, csp_sensing_gram(a, 0, 0, G, N), CSP_OK);
    /* Reference: X^T X / N + 0.01 mean(diag) I, in float64. The promised
     * error (csp_sensing_observe()): float32 sums over chunks of at most
     * OBS_ROWS rows, at most OBS_ROWS 2^-24 sum_r |x_ri x_rj| per element,
     * the chunks summed in float64; the damping's trace inherits it. */
    enum { OBS_ROWS = 128 };
    double S[N * N], E[N * N], trace = 0.0, etrace = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double v = 0.0, av = 0.0;
            for (int r = 0; r < R1; r++) {
                double p = (double)x1[r * STRIDE + i] * x1[r * STRIDE + j];
                v += p;
                av += fabs(p);
            }
            for (int r = 0; r < R2; r++) {
                double p = (double)x2[r * N + i] * x2[r * N + j];
                v += p;
                av += fabs(p);
            }
            S[i * N + j] = v / (R1 + R2);
            E[i * N + j] = OBS_ROWS * 0x1p-24 * av / (R1 + R2);
        }
    for (int i = 0; i < N; i++) {
        trace += S[i * N + i];
        etrace += E[i * N + i];
    }
    double worst = 0.0; /* the largest error as a share of its bound */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double ref = S[i * N + j] + (i == j ? 0.01 * trace / N : 0.0);
            double tol = E[i * N + j] + (i == j ? 0.01 * etrace / N : 0.0) +
                         1e-12 * (1.0 + fabs(ref));
            double err = fabs(G[i * N + j] - ref);
            ck_assert_msg(err <= tol, "G[%d][%d] %.17g vs %.17g (tolerance %.3g)", i, j,
                          G[i * N + j], ref, tol);
            ck_assert(G[i * N + j] == G[j * N + i]);
            worst = fmax(worst, err / tol);
        }
    /* Not float64 products any more, and yet far inside the bound. */
    ck_assert_msg(worst < 0.5, "activation Gram error at %.3f of its bound", worst);
    /* Merge: b observes the second part only, then takes a's... */
    ck_assert_status(ctx, csp_sensing_observe(b, x2, R2, N, 0), CSP_OK);
    csp_sensing *c = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    ck_assert_status(ctx, csp_sensing_observe(c, x1, R1, N, STRIDE), CSP_OK);
    ck_assert_status(ctx, csp_sensing_merge(c, b), CSP_OK);
    ck_assert_int_eq(csp_sensing_count(c), R1 + R2);
    ck_assert_int_eq(csp_sensing_count(b), R2);
    double H[N * N];
    ck_assert_status(ctx, csp_sensing_gram(c, 0, 0, H, N), CSP_OK);
    for (int i = 0; i < N * N; i++)
        ck_assert(fabs(H[i] - G[i]) <= 1e-12 * (1.0 + fabs(G[i])));
    /* Accumulator round trip: read c, write into a fresh operator. */
    int64_t len = csp_sensing_accumulator_len(c);
    ck_assert_int_eq(len, N * N + 1);
    static double acc[N * N + 1], acc2[N * N + 1];
    ck_assert_status(ctx, csp_sensing_read_accumulator(c, acc, len), CSP_OK);
    ck_assert(acc[N * N] == R1 + R2);
    ck_assert(acc[1] == acc[N]); /* full symmetric */
    csp_sensing *d = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc, len), CSP_OK);
    ck_assert_int_eq(csp_sensing_count(d), R1 + R2);
    ck_assert_status(ctx, csp_sensing_read_accumulator(d, acc2, len), CSP_OK);
    ck_assert_mem_eq(acc, acc2, sizeof acc);
    ck_assert_status(ctx, csp_sensing_gram(d, 0, 0, H, N), CSP_OK);
    for (int i = 0; i < N * N; i++)
        ck_assert(fabs(H[i] - G[i]) <= 1e-12 * (1.0 + fabs(G[i])));
    /* An all-reduce of two replicas = the sum of their accumulators. */
    for (int i = 0; i <= N * N; i++)
        acc2[i] = 2.0 * acc[i];
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_OK);
    ck_assert_int_eq(csp_sensing_count(d), 2 * (R1 + R2));
    ck_assert_status(ctx, csp_sensing_gram(d, 0, 0, H, N), CSP_OK);
    for (int i = 0; i < N * N; i++)
        ck_assert(fabs(H[i] - G[i]) <= 1e-12 * (1.0 + fabs(G[i])));

    /* Bad accumulators leave d unchanged. */
    acc2[N * N] = 1.5;
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_RANGE);
    acc2[N * N] = -1.0;
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_RANGE);
    acc2[N * N] = 0.0;
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_INVALID);
    acc2[N * N] = 4.0;
    acc2[1] += 1.0; /* asymmetric */
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_INVALID);
    acc2[1] = NAN;
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_NONFINITE);
    acc2[1] = acc2[N];
    acc2[0] = -1.0;
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_write_accumulator(d, acc2, len - 1), CSP_E_BUFFER);
    ck_assert_status(ctx, csp_sensing_read_accumulator(d, acc2, len + 1), CSP_E_BUFFER);
    ck_assert_status(ctx, csp_sensing_read_accumulator(d, NULL, len), CSP_E_NULL);
    ck_assert_int_eq(csp_sensing_count(d), 2 * (R1 + R2));

    /* Bad observations leave the operator unchanged. */
    x2[5] = NAN;
    ck_assert_status(ctx, csp_sensing_observe(a, x2, R2, N, 0), CSP_E_NONFINITE);
    x2[5] = INFINITY;
    ck_assert_status(ctx, csp_sensing_observe(a, x2, R2, N, 0), CSP_E_NONFINITE);
    ck_assert_int_eq(csp_sensing_count(a), R1 + R2);
    ck_assert_status(ctx, csp_sensing_gram(a, 0, 0, H, N), CSP_OK);
    ck_assert_mem_eq(H, G, sizeof G);
    ck_assert_status(ctx, csp_sensing_observe(a, x1, 2, N + 1, 0), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_sensing_observe(a, x1, -1, N, 0), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_sensing_observe(a, x1, 2, N, N - 1), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_sensing_observe(a, NULL, 2, N, 0), CSP_E_NULL);
    ck_assert_status(ctx, csp_sensing_observe(a, NULL, 0, N, 0), CSP_OK);
    ck_assert_int_eq(csp_sensing_observe(NULL, x1, 1, N, 0), CSP_E_NULL);
    /* Merge errors. */
    ck_assert_status(ctx, csp_sensing_merge(a, a), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_merge(a, NULL), CSP_E_NULL);
    csp_sensing *e = make(ctx, CSP_SENSING_ACTIVATIONS, N + 1, 0);
    ck_assert_status(ctx, csp_sensing_merge(a, e), CSP_E_SHAPE);
    csp_sensing *idn = make(ctx, CSP_SENSING_IDENTITY, N, 0);
    ck_assert_status(ctx, csp_sensing_merge(a, idn), CSP_E_INVALID);
    ck_assert_status(ctx, csp_sensing_read_accumulator(idn, acc, len), CSP_E_INVALID);
    /* Reset. */
    ck_assert_status(ctx, csp_sensing_reset(a), CSP_OK);
    ck_assert_int_eq(csp_sensing_count(a), 0);
    ck_assert_status(ctx, csp_sensing_gram(a, 0, 0, H, N), CSP_E_STATE);
    csp_sensing_free(a);
    csp_sensing_free(b);
    csp_sensing_free(c);
    csp_sensing_free(d);
    csp_sensing_free(e);
    csp_sensing_free(idn);
    csp_context_free(ctx);
}
END_TEST

/* Defect: observe() and merge() let an activations operator's row count
 * pass 2^53, which the accumulator (and the checkpoint, which stores it)
 * cannot hold exactly: csp_sensing_write_accumulator() and the checkpoint
 * loader then refused the library's own state. Every path that adds rows
 * now stops at 2^53 with nothing changed; exactly 2^53 is allowed. */
/* Many rows in one call: the float32 sums stop at each chunk of rows and
 * the chunks add in float64, so the error stays at the chunk's bound
 * (OBS_ROWS 2^-24 relative for positive inputs) however many rows come. A
 * float32 running sum over all 2^20 rows is off by about 1.4e-5 (numpy,
 * the same inputs' distribution), twice the bound. */
START_TEST(test_activations_many_rows) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed + 11);
    csp_context *ctx = test_context(1, seed);
    enum { N = 3, R = 1 << 20, OBS_ROWS = 128 };
    csp_sensing *a = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    float *x = malloc((size_t)R * N * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int64_t q = 0; q < (int64_t)R * N; q++)
        x[q] = (float)(1.0 + test_rng_uniform(&rng));
    ck_assert_status(ctx, csp_sensing_observe(a, x, R, N, 0), CSP_OK);
    static double acc[N * N + 1];
    ck_assert_status(ctx, csp_sensing_read_accumulator(a, acc, N * N + 1), CSP_OK);
    ck_assert(acc[N * N] == R);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double v = 0.0; /* float64 over products exact in float64 */
            for (int64_t r = 0; r < R; r++)
                v += (double)x[r * N + i] * x[r * N + j];
            double rel = fabs(acc[i * N + j] - v) / v;
            ck_assert_msg(rel <= OBS_ROWS * 0x1p-24, "S[%d][%d] relative error %.3g", i, j, rel);
        }
    free(x);
    csp_sensing_free(a);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_count_limit) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed);
    csp_context *ctx = test_context(1, seed);
    enum { N = 5 };
    const double limit = 9007199254740992.0; /* 2^53 */
    csp_sensing *a = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    csp_sensing *b = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    float x[3 * N];
    fill(x, 3 * N, &rng);
    ck_assert_status(ctx, csp_sensing_observe(a, x, 3, N, 0), CSP_OK);
    double acc[N * N + 1], before[N * N + 1], after[N * N + 1];
    ck_assert_status(ctx, csp_sensing_read_accumulator(a, acc, N * N + 1), CSP_OK);
    acc[N * N] = limit - 2.0;
    ck_assert_status(ctx, csp_sensing_write_accumulator(a, acc, N * N + 1), CSP_OK);
    ck_assert_status(ctx, csp_sensing_read_accumulator(a, before, N * N + 1), CSP_OK);
    /* observe: 3 rows would make 2^53 + 1. */
    ck_assert_status(ctx, csp_sensing_observe(a, x, 3, N, 0), CSP_E_RANGE);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "csp_sensing_observe"));
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "2^53"));
    /* merge: b holds 3 rows. */
    ck_assert_status(ctx, csp_sensing_observe(b, x, 3, N, 0), CSP_OK);
    ck_assert_status(ctx, csp_sensing_merge(a, b), CSP_E_RANGE);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "csp_sensing_merge"));
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(ctx), "2^53"));
    ck_assert_status(ctx, csp_sensing_read_accumulator(a, after, N * N + 1), CSP_OK);
    ck_assert_mem_eq(before, after, sizeof before);
    /* The other way round is the same sum. */
    ck_assert_status(ctx, csp_sensing_merge(b, a), CSP_E_RANGE);
    ck_assert_int_eq(csp_sensing_count(b), 3);
    /* Up to exactly 2^53 is fine, and its accumulator writes back. */
    ck_assert_status(ctx, csp_sensing_observe(a, x, 2, N, 0), CSP_OK);
    ck_assert(csp_sensing_count(a) == (int64_t)limit);
    ck_assert_status(ctx, csp_sensing_read_accumulator(a, acc, N * N + 1), CSP_OK);
    ck_assert(acc[N * N] == limit);
    ck_assert_status(ctx, csp_sensing_write_accumulator(b, acc, N * N + 1), CSP_OK);
    ck_assert_status(ctx, csp_sensing_observe(a, x, 1, N, 0), CSP_E_RANGE);
    csp_sensing *z = make(ctx, CSP_SENSING_ACTIVATIONS, N, 0);
    ck_assert_status(ctx, csp_sensing_merge(a, z), CSP_OK); /* adding 0 rows */
    ck_assert_status(ctx, csp_sensing_observe(a, x, 0, N, 0), CSP_OK);
    /* write_accumulator refuses more than 2^53 (the next double up). */
    acc[N * N] = limit + 2.0;
    ck_assert_status(ctx, csp_sensing_write_accumulator(z, acc, N * N + 1), CSP_E_RANGE);
    csp_sensing_free(z);
    csp_sensing_free(a);
    csp_sensing_free(b);
    csp_context_free(ctx);
}
END_TEST

START_TEST(test_user_gram) {
    uint64_t seed = csp_test_seed();
    test_rng rng;
    test_rng_init(&rng, seed);
    csp_context *ctx = test_context(1, seed);
    enum { N = 9, K = 5, LD = 11 };
    csp_sensing *s = make(ctx, CSP_SENSING_GRAM, N, 0);
    double G[N * LD], H[N * N];
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, H, N), CSP_E_STATE);
    /* A rank-deficient PSD Gram (B^T B, B K x N) is accepted. */
    double B[K * N];
    for (int i = 0; i < K * N; i++)
        B[i] = test_rng_normal(&rng);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double v = 0.0;
            for (int q = 0; q < K; q++)
                v += B[q * N + i] * B[q * N + j];
            G[i * LD + j] = v;
        }
    ck_assert_status(ctx, csp_sensing_set_gram(s, G, LD), CSP_OK);
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, H, N), CSP_OK);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            ck_assert(fabs(H[i * N + j] - G[i * LD + j]) <= 1e-15 * fabs(G[i * LD + j]));
    /* Rejections leave the previous Gram in place. */
    double keep = G[1];
    G[1] += 1e-3;
    ck_assert_status(ctx, csp_sensing_set_gram(s, G, LD), CSP_E_INVALID); /* asymmetric */
    G[1] = keep;
    G[2 * LD + 2] = -1.0;
    ck_assert_status(ctx, csp_sensing_set_gram(s, G, LD), CSP_E_INVALID); /* diag < 0 */
    G[2 * LD + 2] = NAN;
    ck_assert_status(ctx, csp_sensing_set_gram(s, G, LD), CSP_E_NONFINITE);
    /* Indefinite: [[1, 2], [2, 1]] on the first two coordinates. */
    double F[N * N];
    memset(F, 0, sizeof F);
    for (int i = 0; i < N; i++)
        F[i * N + i] = 1.0;
    F[1] = F[N] = 2.0;
    ck_assert_status(ctx, csp_sensing_set_gram(s, F, N), CSP_E_INVALID);
    ck_assert_str_ne(csp_context_last_error(ctx), "");
    ck_assert_status(ctx, csp_sensing_set_gram(s, F, N - 1), CSP_E_SHAPE);
    ck_assert_status(ctx, csp_sensing_set_gram(s, NULL, N), CSP_E_NULL);
    double H2[N * N];
    ck_assert_status(ctx, csp_sensing_gram(s, 0, 0, H2, N), CSP_OK);
    ck_assert_mem_eq(H, H2, sizeof H);
    /* G = 0 is PSD. */
    memset(F, 0, sizeof F);
    ck_assert_status(ctx, csp_sensing_set_gram(s, F, N), CSP_OK);
    csp_sensing_free(s);
    csp_context_free(ctx);
}
END_TEST

static Suite *sensing_suite(void) {
    Suite *s = suite_create("sensing");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_options_and_create);
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_gaussian);
    tcase_add_test(tc, test_rademacher);
    tcase_add_test(tc, test_random_deterministic);
    tcase_add_test(tc, test_random_threads);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_activations_many_rows);
    tcase_add_test(tc, test_user_gram);
    tcase_add_test(tc, test_count_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(sensing_suite()); }
