/* bench_rnnt_infer: the RNN-T recogniser's encoder forward (examples/rnnt:
 * 2 LSTM layers of 128, input 120 = 40 log-mel bands x 3 stacked frames,
 * one encoder step per 30 ms of audio), batch 1, dense (cblas_sgemv) against
 * csp_sparse_matvec on the same masked weights in the same run (issue 15).
 *
 *   OPENBLAS_NUM_THREADS=1 build-rel/bench/bench_rnnt_infer [reps] [seconds]
 *
 * The shapes are replicated here (W_ih 512 x 120 and 512 x 128, W_hh
 * 512 x 128, gates i f g o), so the bench does not depend on the example's
 * build. Each step does the per-frame gate matvecs W_ih x_t and W_hh h_{t-1}
 * of both layers, the biases and the LSTM cell. Patterns: row-balanced at
 * 0.8 / 0.9 / 0.95, N:M 2:4 (0.5), 1:4 (0.75), 1:8 (0.875).
 *
 * Columns: dense and sparse milliseconds of compute per second of audio
 * (the fastest of reps, process CPU time; CSP_BENCH_CLOCK=wall for the wall
 * clock), speed-up of the whole forward; kernel = speed-up of the gate
 * matvecs alone; share = the matvecs' share of the dense forward; predicted =
 * 1 / (1 - share + share / kernel), the whole-forward speed-up the kernel
 * explains. The sparse final state is checked against the dense one. */
#include <csp/csp.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H 128
#define G (4 * H)
#define IN 120
#define LAYERS 2
#define FRAMES_PER_S (1000.0 / 30.0)

static clockid_t bench_clock = CLOCK_PROCESS_CPUTIME_ID;
static double now(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) * 0x1p-53;
}

typedef struct {
    float *w[LAYERS][2]; /* [layer][0: W_ih, 1: W_hh], masked dense */
    csp_sparse *s[LAYERS][2];
    float *b[LAYERS]; /* b_ih + b_hh */
    int64_t cols[LAYERS][2];
    const float *x; /* frames x IN features */
    int frames;
    float h[LAYERS][H], c[LAYERS][H], gates[G], tmp[G];
    int sparse, matvec_only;
} model;

static float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

static void gate_mv(model *m, int l, int k, const float *in, float beta, float *out) {
    if (m->sparse)
        csp_sparse_matvec(m->s[l][k], NULL, 1.0f, in, beta, out);
    else
        cblas_sgemv(CblasRowMajor, CblasNoTrans, G, (int)m->cols[l][k], 1.0f, m->w[l][k],
                    (int)m->cols[l][k], in, 1, beta, out, 1);
}

/* One utterance: every frame through both layers. */
static void forward(void *p) {
    model *m = p;
    memset(m->h, 0, sizeof m->h);
    memset(m->c, 0, sizeof m->c);
    for (int t = 0; t < m->frames; t++) {
        const float *in = m->x + (size_t)t * IN;
        for (int l = 0; l < LAYERS; l++) {
            gate_mv(m, l, 0, in, 0.0f, m->gates);
            gate_mv(m, l, 1, m->h[l], 1.0f, m->gates);
            if (m->matvec_only) {
                /* Keep the inputs moving without the cell's arithmetic. */
                memcpy(m->h[l], m->gates, sizeof m->h[l]);
                in = m->h[l];
                continue;
            }
            for (int j = 0; j < H; j++) {
                float gi = sigm(m->gates[j] + m->b[l][j]);
                float gf = sigm(m->gates[H + j] + m->b[l][H + j]);
                float gg = tanhf(m->gates[2 * H + j] + m->b[l][2 * H + j]);
                float go = sigm(m->gates[3 * H + j] + m->b[l][3 * H + j]);
                m->c[l][j] = gf * m->c[l][j] + gi * gg;
                m->h[l][j] = go * tanhf(m->c[l][j]);
            }
            in = m->h[l];
        }
    }
}

static double time_it(void (*fn)(void *), void *arg, int reps) {
    fn(arg);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fn(arg);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/* Mask row by row: balanced keeps `keep` random positions per row; N:M
 * keeps n random positions in every group of mm columns. */
static void mask_matrix(float *w, const float *full, int64_t rows, int64_t cols, int n, int mm,
                        double sparsity) {
    int64_t keep = (int64_t)llround((1.0 - sparsity) * (double)cols);
    for (int64_t r = 0; r < rows; r++) {
        float *row = w + r * cols;
        memset(row, 0, (size_t)cols * sizeof *row);
        if (mm == 0) {
            for (int64_t kept = 0; kept < keep;) {
                int64_t c = (int64_t)(urand() * (double)cols);
                if (row[c] == 0.0f) {
                    row[c] = full[r * cols + c];
                    kept++;
                }
            }
            continue;
        }
        for (int64_t g = 0; g < cols; g += mm)
            for (int kept = 0; kept < n;) {
                int64_t c = g + (int64_t)(urand() * mm);
                if (row[c] == 0.0f) {
                    row[c] = full[r * cols + c];
                    kept++;
                }
            }
    }
}

typedef struct {
    const char *name;
    int n, m;
    double sparsity;
} pattern;

static double max_diff(const model *a, const model *b) {
    double d = 0.0;
    for (int j = 0; j < H; j++)
        d = fmax(d, fabs((double)a->h[LAYERS - 1][j] - (double)b->h[LAYERS - 1][j]));
    return d;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (reps < 1)
        reps = 7;
    if (!(seconds > 0.0))
        seconds = 1.0;
    const char *clk = getenv("CSP_BENCH_CLOCK");
    if (clk != NULL && strcmp(clk, "wall") == 0)
        bench_clock = CLOCK_MONOTONIC;
    int frames = (int)ceil(seconds * FRAMES_PER_S);
    double audio_s = frames / FRAMES_PER_S;
    csp_context *ctx;
    if (csp_context_create(&ctx, NULL) != CSP_OK)
        return 1;
    model dm, sm;
    memset(&dm, 0, sizeof dm);
    float *full[LAYERS][2];
    float *x = malloc((size_t)frames * IN * sizeof *x);
    for (int i = 0; i < frames * IN; i++)
        x[i] = (float)(2.0 * urand() - 1.0);
    dm.x = x;
    dm.frames = frames;
    float bound = 1.0f / sqrtf((float)H);
    for (int l = 0; l < LAYERS; l++) {
        dm.b[l] = malloc(G * sizeof(float));
        for (int j = 0; j < G; j++)
            dm.b[l][j] = (float)((2.0 * urand() - 1.0) * bound);
        for (int k = 0; k < 2; k++) {
            dm.cols[l][k] = (l == 0 && k == 0) ? IN : H;
            size_t n = (size_t)G * (size_t)dm.cols[l][k];
            full[l][k] = malloc(n * sizeof(float));
            dm.w[l][k] = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                full[l][k][i] = (float)((2.0 * urand() - 1.0) * bound);
        }
    }
    static const pattern pats[] = {{"balanced", 0, 0, 0.8}, {"balanced", 0, 0, 0.9},
                                   {"balanced", 0, 0, 0.95}, {"2:4", 2, 4, 0.5},
                                   {"1:4", 1, 4, 0.75},       {"1:8", 1, 8, 0.875}};
    printf("# bench_rnnt_infer: libcsp %s, encoder 2x%d LSTM, input %d, %d frames (%.2f s of "
           "audio), batch 1, fastest of %d reps, %s\n",
           csp_version_string(), H, IN, frames, audio_s, reps,
           bench_clock == CLOCK_MONOTONIC ? "wall clock" : "process CPU time");
    printf("%-9s %5s %-8s %9s %9s %8s %8s %6s %9s %9s\n", "pattern", "s", "kernel", "dense_ms",
           "sparse_ms", "speedup", "kernel", "share", "predicted", "max_diff");
    int rc = 0;
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        const pattern *pt = &pats[p];
        csp_sparse_options o;
        csp_sparse_options_init(&o, sizeof o);
        if (pt->m > 0) {
            o.format = CSP_SPARSE_NM;
            o.nm_n = pt->n;
            o.nm_m = pt->m;
        } else {
            o.format = CSP_SPARSE_BALANCED;
        }
        for (int l = 0; l < LAYERS; l++)
            for (int k = 0; k < 2; k++) {
                mask_matrix(dm.w[l][k], full[l][k], G, dm.cols[l][k], pt->n, pt->m,
                            pt->sparsity);
                csp_status st = csp_sparse_from_dense(ctx, dm.w[l][k], G, dm.cols[l][k], 0, &o,
                                                      &dm.s[l][k]);
                if (st != CSP_OK) {
                    fprintf(stderr, "csp_sparse_from_dense: %s\n", csp_context_last_error(ctx));
                    return 1;
                }
            }
        sm = dm;
        sm.sparse = 1;
        dm.matvec_only = sm.matvec_only = 0;
        forward(&dm);
        forward(&sm);
        double diff = max_diff(&dm, &sm);
        double td = time_it(forward, &dm, reps), ts = time_it(forward, &sm, reps);
        dm.matvec_only = sm.matvec_only = 1;
        double md = time_it(forward, &dm, reps), ms = time_it(forward, &sm, reps);
        dm.matvec_only = 0;
        csp_sparse_info info;
        csp_sparse_info_init(&info, sizeof info);
        csp_sparse_inspect(dm.s[0][1], &info);
        double share = fmin(md / td, 1.0), kern = md / ms;
        double pred = 1.0 / (1.0 - share + share / kern);
        printf("%-9s %5.3f %-8s %9.3f %9.3f %8.2f %8.2f %6.2f %9.2f %9.2e\n", pt->name,
               pt->sparsity,
               info.kernel == CSP_SPARSE_KERNEL_AVX512 ? "avx512"
               : info.kernel == CSP_SPARSE_KERNEL_AVX2 ? "avx2"
               : info.kernel == CSP_SPARSE_KERNEL_NEON ? "neon"
                                                        : "portable",
               1e3 * td / audio_s, 1e3 * ts / audio_s, td / ts, kern, share, pred, diff);
        /* Same weights, float32 sums in another order: |h| < 1, a few ulps
         * per step, through the recurrence. */
        if (!(diff < 1e-4)) {
            fprintf(stderr, "sparse encoder differs from dense: %g\n", diff);
            rc = 1;
        }
        for (int l = 0; l < LAYERS; l++)
            for (int k = 0; k < 2; k++)
                csp_sparse_free(dm.s[l][k]);
    }
    for (int l = 0; l < LAYERS; l++) {
        free(dm.b[l]);
        for (int k = 0; k < 2; k++) {
            free(full[l][k]);
            free(dm.w[l][k]);
        }
    }
    free(x);
    csp_context_free(ctx);
    return rc;
}
