/* GMP benchmarks: magnitude selection (per tensor, global, row-balanced at
 * several row lengths, N:M), a pruning event through csp_step() and the mask
 * re-apply, each next to baselines measured in the same run (memcpy of the
 * same bytes, qsort of the same data). Medians over repetitions, with the
 * min..max spread (the machine may be shared: expect noise). See
 * bench/README.md for what each row means.
 *
 *   bench_gmp [N] [reps] [threads] [sections]
 *
 * defaults 10000000 11 1 all; sections is a comma-separated subset of
 * copy,topk,qsort,global,rows,nm,event,apply. Every selection is checked
 * (kept counts and the threshold property) before its time is printed.
 * Prints one `kv key value` line per figure after the table, for
 * bench/bench_select.py to pick up. */
#include <csp/csp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prune/mask.h"
#include "select/select.h"

/* Wall-clock time, or with CSP_BENCH_CLOCK=cpu this process's CPU time:
 * on a shared machine the CPU time of a one-thread run does not count the
 * time the scheduler gave to others (with more threads it adds them up). */
static clockid_t bench_clock = CLOCK_MONOTONIC;
static double now(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
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

static void fail(const char *what) {
    fprintf(stderr, "bench_gmp: %s\n", what);
    exit(1);
}

static void row(const char *what, stat3 s, double per, const char *unit) {
    printf("%-46s %9.3f ms  (%.3f..%.3f)  %8.3f %s\n", what, 1e3 * s.med, 1e3 * s.min, 1e3 * s.max,
           per, unit);
}

static int bit(const uint64_t *m, int64_t i) { return (int)((m[i >> 6] >> (i & 63)) & 1); }

/* In every unit of `len` consecutive weights (a row, an N:M group) of a
 * full candidate set: `keep` kept, and no dropped |w| above a kept one. */
static void verify_units(const float *w, const uint64_t *next, int64_t n, int64_t len,
                         int64_t keep, const char *what) {
    for (int64_t u = 0; u + len <= n; u += len) {
        int64_t kept = 0;
        float min_kept = INFINITY, max_drop = 0.0f;
        for (int64_t j = u; j < u + len; j++) {
            float a = fabsf(w[j]);
            if (bit(next, j)) {
                kept++;
                min_kept = a < min_kept ? a : min_kept;
            } else {
                max_drop = a > max_drop ? a : max_drop;
            }
        }
        if (kept != keep || (kept > 0 && kept < len && max_drop > min_kept)) {
            fprintf(stderr, "%s: unit at %lld keeps %lld of %lld (want %lld)\n", what, (long long)u,
                    (long long)kept, (long long)len, (long long)keep);
            exit(1);
        }
    }
}

static bool want(const char *sections, const char *name) {
    if (strcmp(sections, "all") == 0)
        return true;
    size_t n = strlen(name);
    for (const char *p = sections; (p = strstr(p, name)) != NULL; p += n)
        if ((p == sections || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

typedef struct {
    char key[48];
    double value;
} kv;
static kv kvs[96];
static int nkv;
static void put(const char *key, double value) {
    if (nkv < 96) {
        snprintf(kvs[nkv].key, sizeof kvs[nkv].key, "%s", key);
        kvs[nkv++].value = value;
    }
}

/* Time one pruning event through csp_step() on a fresh pruner over the
 * weights `orig` (copied into w first), granularity gran on a rows x cols
 * view; returns the median seconds; *mask gets the last event's mask. */
static stat3 time_event(csp_context *ctx, float *w, const float *orig, int64_t rows, int64_t cols,
                        int32_t gran, double s, int reps, double *t, uint64_t *mask) {
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = s;
    so.end_step = 0;
    csp_schedule *sched = NULL;
    check(csp_schedule_create(&sched, ctx, &so), ctx, "schedule");
    int64_t shape[2] = {rows, cols};
    csp_tensor *tw = NULL;
    check(csp_tensor_create(&tw, ctx, w, CSP_DTYPE_F32, 2, shape, 0, "w"), ctx, "tensor");
    for (int r = 0; r < reps; r++) {
        csp_pruner_options po;
        csp_pruner_options_init(&po, sizeof po);
        po.granularity = gran;
        po.nm_n = 2;
        po.nm_m = 4;
        csp_pruner *p = NULL;
        check(csp_pruner_create(&p, ctx, sched, &po), ctx, "pruner");
        check(csp_pruner_add_tensor(p, tw, NULL, NULL), ctx, "add");
        memcpy(w, orig, (size_t)(rows * cols) * sizeof *w);
        double t0 = now();
        check(csp_step(p, 0), ctx, "event");
        t[r] = now() - t0;
        if (r == reps - 1)
            check(csp_pruner_mask_words(p, 0, mask, (rows * cols + 63) / 64), ctx, "mask");
        csp_pruner_free(p);
    }
    csp_tensor_free(tw);
    csp_schedule_free(sched);
    return summarize(t, reps);
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 10000000;
    int reps = argc > 2 ? atoi(argv[2]) : 11;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    const char *sections = argc > 4 ? argv[4] : "all";
    if (n < 100000 || reps < 1 || reps > 1000 || threads < 1 || threads > CSP_MAX_THREADS)
        return 2;
    const double s = 0.9;
    const char *clk = getenv("CSP_BENCH_CLOCK");
    if (clk != NULL && strcmp(clk, "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
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
    if (w == NULL || orig == NULL || dst == NULL || cur == NULL || next == NULL || t == NULL)
        fail("out of memory");
    for (int64_t i = 0; i < n; i++)
        orig[i] = w[i] = (float)normal();
    memcpy(dst, w, bytes); /* fault the pages in */
    csp__mask_fill(cur, n);
    memset(next, 0, (size_t)nw * 8);
    printf("libcsp %s bench_gmp: N = %lld float32 N(0,1), s = %.2f, %d thread(s), %d "
           "repetitions; median ms (min..max) of %s time\n",
           csp_version_string(), (long long)n, s, threads, reps,
           bench_clock == CLOCK_MONOTONIC ? "wall-clock" : "process CPU");

    /* ---- memcpy baseline: always (every ratio needs it) ---- */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        memcpy(dst, w, bytes);
        t[r] = now() - t0;
        __asm__ volatile("" ::"r"(dst) : "memory");
    }
    stat3 mc = summarize(t, reps);
    double mc_gbs = 2.0 * (double)bytes / mc.med / 1e9;
    row("memcpy (read N + write N floats)", mc, mc_gbs, "GB/s");
    put("memcpy_ms", 1e3 * mc.med);
    put("memcpy_gbs", mc_gbs);
    put("memcpy_ns", 1e9 * mc.med / (double)n);

    int64_t shape[1] = {n};
    csp_tensor *tw = NULL;
    check(csp_tensor_create(&tw, ctx, w, CSP_DTYPE_F32, 1, shape, 0, "w"), ctx, "tensor");
    int64_t keep = n - csp__round_count(s, n);
    csp__select_src src = {tw, cur, next};
    double sel_ns = 0.0;

    /* ---- per-tensor selection ---- */
    if (want(sections, "topk")) {
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            check(csp__select_topk(ctx, &src, 1, keep), ctx, "select");
            t[r] = now() - t0;
        }
        stat3 sel = summarize(t, reps);
        sel_ns = 1e9 * sel.med / (double)n;
        row("select per tensor (sampled window)", sel, sel_ns, "ns/weight");
        put("select_ns", sel_ns);
        verify_units(w, next, n, n, keep, "per-tensor");
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            check(csp__select_topk_ex(ctx, &src, 1, keep, CSP__SELECT_NO_SAMPLE), ctx, "select");
            t[r] = now() - t0;
        }
        stat3 selh = summarize(t, reps);
        row("select per tensor (histogram path)", selh, 1e9 * selh.med / (double)n, "ns/weight");
        put("select_hist_ns", 1e9 * selh.med / (double)n);
        verify_units(w, next, n, n, keep, "per-tensor (histogram)");
    }

    /* ---- qsort of the same data: few repetitions (it is slow) ---- */
    if (want(sections, "qsort")) {
        int qreps = reps < 3 ? reps : 3;
        for (int r = 0; r < qreps; r++) {
            memcpy(dst, orig, bytes);
            double t0 = now();
            qsort(dst, (size_t)n, sizeof *dst, cmp_abs_float);
            t[r] = now() - t0;
        }
        stat3 qs = summarize(t, qreps);
        row("qsort by |w| (baseline)", qs, 1e9 * qs.med / (double)n, "ns/weight");
        put("qsort_ns", 1e9 * qs.med / (double)n);
    }

    /* ---- global selection over 10 tensors ---- */
    if (want(sections, "global")) {
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
            csp__mask_fill(pcur[k], len);
            srcs[k] = (csp__select_src){parts[k], pcur[k], pnext[k]};
            off += len;
        }
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            check(csp__select_topk(ctx, srcs, 10, keep), ctx, "global");
            t[r] = now() - t0;
        }
        stat3 glob = summarize(t, reps);
        row("select global over 10 tensors", glob, 1e9 * glob.med / (double)n, "ns/weight");
        put("global_ns", 1e9 * glob.med / (double)n);
        int64_t gk = 0;
        for (int k = 0; k < 10; k++) {
            gk += csp__mask_popcount(pnext[k], csp_tensor_numel(parts[k]));
            csp_tensor_free(parts[k]);
            free(pcur[k]);
            free(pnext[k]);
        }
        if (gk != keep)
            fail("global selection kept the wrong count");
    }

    /* ---- row-balanced at several row lengths ---- */
    if (want(sections, "rows")) {
        static const int64_t lens[] = {64, 128, 512, 1000, 4096};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            int64_t cols = lens[li], rows = n / cols, ne = rows * cols;
            int64_t msh[2] = {rows, cols};
            csp_tensor *mat = NULL;
            check(csp_tensor_create(&mat, ctx, w, CSP_DTYPE_F32, 2, msh, 0, NULL), ctx, "matrix");
            csp__select_src msrc = {mat, cur, next};
            int64_t kr = cols - csp__round_count(s, cols);
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                check(csp__select_rows(ctx, &msrc, kr), ctx, "rows");
                t[r] = now() - t0;
            }
            stat3 rs = summarize(t, reps);
            verify_units(w, next, ne, cols, kr, "row-balanced");
            char what[64], key[32];
            snprintf(what, sizeof what, "select row-balanced, rows of %lld", (long long)cols);
            row(what, rs, 1e9 * rs.med / (double)ne, "ns/weight");
            snprintf(key, sizeof key, "rows_%lld_ns", (long long)cols);
            put(key, 1e9 * rs.med / (double)ne);
            csp_tensor_free(mat);
        }
    }

    /* ---- N:M on 1024-column rows (a multiple of every M here) ---- */
    if (want(sections, "nm")) {
        static const int nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {8, 16}};
        int64_t cols = 1024, rows = n / cols, ne = rows * cols;
        int64_t msh[2] = {rows, cols};
        csp_tensor *mat = NULL;
        check(csp_tensor_create(&mat, ctx, w, CSP_DTYPE_F32, 2, msh, 0, NULL), ctx, "matrix");
        csp__select_src msrc = {mat, cur, next};
        for (size_t k = 0; k < sizeof nm / sizeof *nm; k++) {
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                check(csp__select_nm(ctx, &msrc, nm[k][1], nm[k][0]), ctx, "nm");
                t[r] = now() - t0;
            }
            stat3 st = summarize(t, reps);
            verify_units(w, next, ne, nm[k][1], nm[k][0], "N:M");
            char what[64], key[32];
            snprintf(what, sizeof what, "select N:M %d:%d%s", nm[k][0], nm[k][1],
                     nm[k][1] > 8 ? " (generic path)" : "");
            row(what, st, 1e9 * st.med / (double)ne, "ns/weight");
            snprintf(key, sizeof key, "nm_%d_%d_ns", nm[k][0], nm[k][1]);
            put(key, 1e9 * st.med / (double)ne);
        }
        csp_tensor_free(mat);
    }

    /* ---- pruning events through csp_step() on fresh pruners ---- */
    if (want(sections, "event")) {
        struct {
            const char *what, *key;
            int64_t cols;
            int32_t gran;
        } ev[] = {
            {"csp_step event, per tensor (select+apply)", "event_tensor_ns", 0,
             CSP_GRANULARITY_TENSOR},
            {"csp_step event, row-balanced, rows of 1000", "event_rows_ns", 1000,
             CSP_GRANULARITY_ROW},
            {"csp_step event, N:M 2:4, rows of 1000", "event_nm_2_4_ns", 1000, CSP_GRANULARITY_NM},
        };
        for (size_t k = 0; k < sizeof ev / sizeof *ev; k++) {
            int64_t cols = ev[k].cols ? ev[k].cols : n, rows = n / cols;
            stat3 st = time_event(ctx, w, orig, rows, cols, ev[k].gran, s, reps, t, next);
            int64_t ne = rows * cols;
            row(ev[k].what, st, 1e9 * st.med / (double)ne, "ns/weight");
            put(ev[k].key, 1e9 * st.med / (double)ne);
            if (k == 0)
                verify_units(orig, next, n, n, keep, "event");
            /* The event's parts, each timed alone on the same data and
             * view: the selection, the error statistics (energies of the
             * mask change), the mask's popcount, the apply. */
            int64_t esh[2] = {rows, cols};
            csp_tensor *te = NULL;
            check(csp_tensor_create(&te, ctx, w, CSP_DTYPE_F32, 2, esh, 0, NULL), ctx, "tensor");
            csp__select_src esrc = {te, cur, next};
            int64_t kr = cols - csp__round_count(s, cols);
            memcpy(w, orig, bytes);
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                if (ev[k].gran == CSP_GRANULARITY_TENSOR)
                    check(csp__select_topk(ctx, &esrc, 1, keep), ctx, "select");
                else if (ev[k].gran == CSP_GRANULARITY_ROW)
                    check(csp__select_rows(ctx, &esrc, kr), ctx, "select");
                else
                    check(csp__select_nm(ctx, &esrc, 4, 2), ctx, "select");
                t[r] = now() - t0;
            }
            double p_sel = summarize(t, reps).med;
            volatile double dsink = 0.0;
            for (int r = 0; r < reps; r++) {
                double kw, kd;
                double t0 = now();
                csp__mask_energy(te, cur, next, &kw, &kd);
                t[r] = now() - t0;
                dsink += kw + kd;
            }
            double p_err = summarize(t, reps).med;
            volatile int64_t sink = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                sink += csp__mask_popcount(next, ne);
                t[r] = now() - t0;
            }
            double p_pop = summarize(t, reps).med;
            for (int r = 0; r < reps; r++) {
                memcpy(dst, orig, bytes);
                csp_tensor *td = NULL;
                check(csp_tensor_create(&td, ctx, dst, CSP_DTYPE_F32, 2, esh, 0, NULL), ctx,
                      "tensor");
                double t0 = now();
                csp__mask_apply(ctx, td, next);
                t[r] = now() - t0;
                csp_tensor_free(td);
            }
            double p_app = summarize(t, reps).med;
            csp_tensor_free(te);
            double rest = st.med - p_sel - p_err - p_pop - p_app;
            printf("  parts timed alone: selection %.3f, error statistics %.3f, mask popcount "
                   "%.3f, apply %.3f, the rest (bookkeeping) %.3f ns/weight\n",
                   1e9 * p_sel / (double)ne, 1e9 * p_err / (double)ne, 1e9 * p_pop / (double)ne,
                   1e9 * p_app / (double)ne, 1e9 * rest / (double)ne);
            static const char *const part[] = {"select", "stats", "popcount", "apply", "rest"};
            double pv[] = {p_sel, p_err, p_pop, p_app, rest};
            for (int q = 0; q < 5; q++) {
                char key[32];
                snprintf(key, sizeof key, "%.*spart_%s_ns", (int)(strlen(ev[k].key) - 2),
                         ev[k].key, part[q]);
                put(key, 1e9 * pv[q] / (double)ne);
            }
        }
    }

    /* ---- mask re-apply through csp_step() ---- */
    if (want(sections, "apply")) {
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
        check(csp_step(p, 0), ctx, "event");
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            check(csp_step(p, 1 + r), ctx, "re-apply");
            t[r] = now() - t0;
        }
        stat3 ap = summarize(t, reps);
        double ap_gbs = 2.0 * (double)bytes / ap.med / 1e9;
        row("csp_step re-apply (mask at s = 0.9)", ap, ap_gbs, "GB/s");
        put("apply_gbs", ap_gbs);
        put("apply_vs_memcpy", ap_gbs / mc_gbs);
        csp_pruner_free(p);
        csp_schedule_free(sched);
        memcpy(w, orig, bytes);
    }

    printf("\nratios (same run; goals of issue 17 in brackets):\n");
    for (int k = 0; k < nkv; k++) {
        const char *key = kvs[k].key;
        size_t len = strlen(key);
        if (len > 3 && strcmp(key + len - 3, "_ns") == 0 && strncmp(key, "memcpy", 6) != 0 &&
            strstr(key, "_part_") == NULL) {
            const char *goal = strncmp(key, "rows_", 5) == 0 || strncmp(key, "nm_", 3) == 0
                                   ? "  [<= 1.5 ns/weight]"
                                   : strncmp(key, "event_", 6) == 0 ? "  [<= 2 ns/weight]" : "";
            if (strstr(key, "_16_") != NULL || strcmp(key, "qsort_ns") == 0)
                goal = "";
            printf("  %-22s %8.3f ns/weight = %6.2f x memcpy%s\n", key, kvs[k].value,
                   kvs[k].value * 1e-9 * (double)n / mc.med, goal);
        }
    }
    if (sel_ns > 0.0)
        for (int k = 0; k < nkv; k++)
            if (strncmp(kvs[k].key, "rows_", 5) == 0 || strncmp(kvs[k].key, "nm_", 3) == 0)
                printf("  %-22s %6.2f x per-tensor selection\n", kvs[k].key, kvs[k].value / sel_ns);
    printf("\n");
    for (int k = 0; k < nkv; k++)
        printf("kv %s %.4f\n", kvs[k].key, kvs[k].value);

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
