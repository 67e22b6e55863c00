/* GMP benchmarks: mask re-apply against memcpy of the same bytes, and exact
 * magnitude selection at N weights against qsort of the same data, each
 * baseline measured in the same run. Medians over repetitions, with the
 * min..max spread (the machine is shared: expect noise).
 *
 *   bench_gmp [N] [reps] [threads]     defaults: 10000000 11 1
 *
 * Prints one `key value` line per figure after the human-readable table, for
 * bench/bench_select.py to pick up. */
#include <csp/csp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "select/select.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double med, min, max;
} stat3;

static stat3 summarize(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    stat3 s = {t[n / 2], t[0], t[n - 1]};
    return s;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double normal(void) {
    /* xorshift64* + Box-Muller: test data only. */
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        u[k] = (double)((rng_state * 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-53;
    }
    return sqrt(-2.0 * log(1.0 - u[0])) * cos(6.283185307179586 * u[1]);
}

static int cmp_abs_float(const void *a, const void *b) {
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x < y) - (x > y); /* descending */
}

static void check(csp_status st, csp_context *ctx, const char *what) {
    if (st < 0) {
        fprintf(stderr, "%s: %s: %s\n", what, csp_status_name(st), csp_context_last_error(ctx));
        exit(1);
    }
}

static void row(const char *what, stat3 s, double per, const char *unit) {
    printf("%-44s %9.3f ms  (%.3f..%.3f)  %8.3f %s\n", what, 1e3 * s.med, 1e3 * s.min, 1e3 * s.max,
           per, unit);
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 10000000;
    int reps = argc > 2 ? atoi(argv[2]) : 11;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (n < 1000 || reps < 1 || reps > 1000 || threads < 1)
        return 2;
    double s = 0.9;
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.num_threads = threads;
    csp_context *ctx = NULL;
    check(csp_context_create(&ctx, &co), NULL, "context");

    size_t bytes = (size_t)n * sizeof(float);
    float *w = malloc(bytes), *orig = malloc(bytes), *dst = malloc(bytes);
    int64_t nw = (n + 63) / 64;
    uint64_t *cur = malloc((size_t)nw * 8), *next = malloc((size_t)nw * 8);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int64_t i = 0; i < n; i++)
        orig[i] = w[i] = (float)normal();
    memcpy(dst, w, bytes); /* fault the pages in */
    printf("libcsp %s bench_gmp: N = %lld float32, s = %.2f, %d thread(s), %d repetitions; "
           "median ms (min..max)\n",
           csp_version_string(), (long long)n, s, threads, reps);

    /* ---- memcpy baseline ---- */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        memcpy(dst, w, bytes);
        t[r] = now() - t0;
        __asm__ volatile("" ::"r"(dst) : "memory");
    }
    stat3 mc = summarize(t, reps);
    double mc_gbs = 2.0 * (double)bytes / mc.med / 1e9;
    row("memcpy (read N + write N floats)", mc, mc_gbs, "GB/s");

    /* ---- per-tensor selection ---- */
    int64_t shape[1] = {n};
    csp_tensor *tw = NULL;
    check(csp_tensor_create(&tw, ctx, w, CSP_DTYPE_F32, 1, shape, 0, "w"), ctx, "tensor");
    for (int64_t i = 0; i < nw; i++)
        cur[i] = ~0ULL;
    if (n % 64)
        cur[nw - 1] = (1ULL << (n % 64)) - 1;
    int64_t keep = n - csp__round_count(s, n);
    csp__select_src src = {tw, cur, next};
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        check(csp__select_topk(ctx, &src, 1, keep), ctx, "select");
        t[r] = now() - t0;
    }
    stat3 sel = summarize(t, reps);
    row("select top-k (sampled window)", sel, 1e9 * sel.med / (double)n, "ns/weight");
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        check(csp__select_topk_ex(ctx, &src, 1, keep, CSP__SELECT_NO_SAMPLE), ctx, "select");
        t[r] = now() - t0;
    }
    stat3 selh = summarize(t, reps);
    row("select top-k (histogram path)", selh, 1e9 * selh.med / (double)n, "ns/weight");

    /* qsort of the same data: fewer repetitions (it is slow). */
    int qreps = reps < 3 ? reps : 3;
    for (int r = 0; r < qreps; r++) {
        memcpy(dst, orig, bytes);
        double t0 = now();
        qsort(dst, (size_t)n, sizeof *dst, cmp_abs_float);
        t[r] = now() - t0;
    }
    stat3 qs = summarize(t, qreps);
    row("qsort by |w| (baseline)", qs, 1e9 * qs.med / (double)n, "ns/weight");
    /* the selection is right: the kept count and the threshold agree */
    int64_t kept = 0;
    float thr = fabsf(dst[keep - 1]);
    for (int64_t i = 0; i < n; i++) {
        int b = (int)((next[i >> 6] >> (i & 63)) & 1);
        kept += b;
        if ((b && fabsf(w[i]) < thr) || (!b && fabsf(w[i]) > thr)) {
            fprintf(stderr, "selection disagrees with qsort at %lld\n", (long long)i);
            return 1;
        }
    }
    if (kept != keep) {
        fprintf(stderr, "kept %lld, expected %lld\n", (long long)kept, (long long)keep);
        return 1;
    }

    /* ---- global selection over 10 tensors ---- */
    csp_tensor *parts[10];
    csp__select_src srcs[10];
    uint64_t *pcur[10], *pnext[10];
    int64_t off = 0;
    for (int k = 0; k < 10; k++) {
        int64_t len = n * (k + 1) / 10 - n * k / 10;
        int64_t sh[2] = {len / 100, 100};
        if (len % 100)
            sh[0] = 1, sh[1] = len;
        check(csp_tensor_create(&parts[k], ctx, w + off, CSP_DTYPE_F32, 2, sh, 0, NULL), ctx,
              "part");
        int64_t pw = (len + 63) / 64;
        pcur[k] = malloc((size_t)pw * 8);
        pnext[k] = malloc((size_t)pw * 8);
        for (int64_t i = 0; i < pw; i++)
            pcur[k][i] = ~0ULL;
        if (len % 64)
            pcur[k][pw - 1] = (1ULL << (len % 64)) - 1;
        srcs[k] = (csp__select_src){parts[k], pcur[k], pnext[k]};
        off += len;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        check(csp__select_topk(ctx, srcs, 10, keep), ctx, "global");
        t[r] = now() - t0;
    }
    stat3 glob = summarize(t, reps);
    row("global select over 10 tensors", glob, 1e9 * glob.med / (double)n, "ns/weight");
    int64_t gk = 0;
    for (int k = 0; k < 10; k++)
        gk += csp__mask_popcount(pnext[k], csp_tensor_numel(parts[k]));
    if (gk != keep) {
        fprintf(stderr, "global kept %lld, expected %lld\n", (long long)gk, (long long)keep);
        return 1;
    }

    /* ---- row-balanced and N:M (for information) ---- */
    csp_tensor *mat = NULL;
    int64_t msh[2] = {n / 1000, 1000};
    check(csp_tensor_create(&mat, ctx, w, CSP_DTYPE_F32, 2, msh, 0, NULL), ctx, "matrix");
    csp__select_src msrc = {mat, cur, next};
    int rreps = reps < 5 ? reps : 5;
    for (int r = 0; r < rreps; r++) {
        double t0 = now();
        check(csp__select_rows(ctx, &msrc, 100), ctx, "rows");
        t[r] = now() - t0;
    }
    stat3 rows = summarize(t, rreps);
    row("row-balanced select (1000 cols)", rows, 1e9 * rows.med / (double)n, "ns/weight");
    for (int r = 0; r < rreps; r++) {
        double t0 = now();
        check(csp__select_nm(ctx, &msrc, 4, 2), ctx, "nm");
        t[r] = now() - t0;
    }
    stat3 nm = summarize(t, rreps);
    row("N:M 2:4 select", nm, 1e9 * nm.med / (double)n, "ns/weight");

    /* ---- mask re-apply through csp_step() ---- */
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = s;
    so.end_step = 0;
    csp_schedule *sched = NULL;
    check(csp_schedule_create(&sched, ctx, &so), ctx, "schedule");
    csp_pruner *p = NULL;
    check(csp_pruner_create(&p, ctx, sched, NULL), ctx, "pruner");
    check(csp_pruner_add_tensor(p, tw, NULL, NULL), ctx, "add");
    memcpy(w, orig, bytes);
    double t0 = now();
    check(csp_step(p, 0), ctx, "event");
    double event = now() - t0;
    printf("%-44s %9.3f ms               %8.3f ns/weight\n",
           "csp_step pruning event (select+apply)", 1e3 * event, 1e9 * event / (double)n);
    for (int r = 0; r < reps; r++) {
        t0 = now();
        check(csp_step(p, 1 + r), ctx, "re-apply");
        t[r] = now() - t0;
    }
    stat3 ap = summarize(t, reps);
    double ap_gbs = 2.0 * (double)bytes / ap.med / 1e9;
    row("csp_step re-apply (mask at s = 0.9)", ap, ap_gbs, "GB/s");

    printf("\nratios (same run):\n");
    printf("  re-apply / memcpy bandwidth       %.2f   (goal >= 0.70)\n", ap_gbs / mc_gbs);
    printf("  select: qsort / select            %.1fx\n", qs.med / sel.med);
    printf("  select: select / memcpy time      %.2f\n", sel.med / mc.med);
    printf("  global: qsort / global select     %.1fx\n", qs.med / glob.med);
    printf("\nkv memcpy_ms %.4f\nkv select_ns %.4f\nkv select_hist_ns %.4f\nkv qsort_ns %.4f\n"
           "kv global_ns %.4f\nkv apply_gbs %.4f\nkv memcpy_gbs %.4f\n",
           1e3 * mc.med, 1e9 * sel.med / (double)n, 1e9 * selh.med / (double)n,
           1e9 * qs.med / (double)n, 1e9 * glob.med / (double)n, ap_gbs, mc_gbs);

    csp_pruner_free(p);
    csp_schedule_free(sched);
    csp_tensor_free(mat);
    for (int k = 0; k < 10; k++) {
        csp_tensor_free(parts[k]);
        free(pcur[k]);
        free(pnext[k]);
    }
    csp_tensor_free(tw);
    csp_context_free(ctx);
    free(w);
    free(orig);
    free(dst);
    free(cur);
    free(next);
    free(t);
    return 0;
}
