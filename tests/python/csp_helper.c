/* Test helper for the Python binding: the C side of the comparisons.
 *
 *   csp_helper layout
 *       prints "size STRUCT N", "offset STRUCT FIELD N", "enum NAME V" (the
 *       non-error status codes among them) and "const NAME V" lines: what
 *       the compiler makes of the headers, for the ctypes mirrors to be
 *       compared with.
 *   csp_helper prune SPEC WEIGHTS OUT
 *       runs a pruner described by the text file SPEC over the weight
 *       snapshots in WEIGHTS and writes masks, final weights and companions
 *       to OUT; prints "status STEP ST" per step, "digest D", "nnz N".
 *
 * SPEC lines (in this order; "tensor" repeated, each optionally followed by
 * its "tcsp" line; "csp" and "observe" optional):
 *   schedule KIND SI SF EXPONENT BEGIN END FREQ
 *   pruner GRANULARITY NM_N NM_M
 *   csp SENSING SOLVER CORRECTION BLOCK REDRAW WINDOW MAX_ITER RHO DAMPING ALPHA
 *       SHRINK TOL                      (csp_pruner_options' CSP fields)
 *   observe ROWS
 *   steps T
 *   tensor DTYPE ROWS COLS GRANULARITY GROUP NM_N NM_M EXCLUDE FINAL_SPARSITY
 *   tcsp SENSING SOLVER CORRECTION BLOCK REDRAW RHO DAMPING ALPHA SHRINK
 *                                       (the previous tensor's CSP overrides)
 * WEIGHTS: for each step t < T, for each tensor, ROWS*COLS values of DTYPE
 *   (1 float32, 2 float64), native byte order; then, with "observe", for each
 *   tensor whose operator is an activations one (in index order), ROWS x COLS
 *   float32 layer inputs. At step t every weight is overwritten with its
 *   snapshot (the host's optimizer update), the inputs are given to
 *   csp_pruner_observe() when csp_pruner_wants_observe(t) says so, then
 *   csp_step(t) runs. Every tensor has one companion, all ones at start.
 * OUT: for each tensor: (numel + 63) / 64 mask words, numel final weights,
 *   numel companion values.
 * Also prints "tstats I SENSING SOLVER CORRECTION CONVERGED WEIGHT_ERROR
 *   SENSING_ERROR ITERATIONS ITERATIONS_MAX NOT_CONVERGED DAMPED EVENTS
 *   OBSERVED_ROWS" per tensor and "sstats STEPS EVENTS LAST_EVENT NUMEL NNZ".
 */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENSORS 16

#define SIZE(T) printf("size %s %zu\n", #T, sizeof(T))
#define OFF(T, F) printf("offset %s %s %zu\n", #T, #F, offsetof(T, F))
#define ENUM(N) printf("enum %s %lld\n", #N, (long long)(N))

static int layout(void) {
    SIZE(csp_context_options);
    OFF(csp_context_options, struct_size);
    OFF(csp_context_options, alloc);
    OFF(csp_context_options, free);
    OFF(csp_context_options, alloc_user);
    OFF(csp_context_options, log);
    OFF(csp_context_options, log_user);
    OFF(csp_context_options, log_level);
    OFF(csp_context_options, num_threads);
    OFF(csp_context_options, seed);
    SIZE(csp_schedule_options);
    OFF(csp_schedule_options, struct_size);
    OFF(csp_schedule_options, kind);
    OFF(csp_schedule_options, initial_sparsity);
    OFF(csp_schedule_options, final_sparsity);
    OFF(csp_schedule_options, exponent);
    OFF(csp_schedule_options, begin_step);
    OFF(csp_schedule_options, end_step);
    OFF(csp_schedule_options, frequency);
    OFF(csp_schedule_options, callback);
    OFF(csp_schedule_options, callback_user);
    SIZE(csp_pruner_options);
    OFF(csp_pruner_options, struct_size);
    OFF(csp_pruner_options, granularity);
    OFF(csp_pruner_options, nm_n);
    OFF(csp_pruner_options, nm_m);
    OFF(csp_pruner_options, correction);
    OFF(csp_pruner_options, block_size);
    OFF(csp_pruner_options, sensing.kind);
    OFF(csp_pruner_options, sensing.n);
    OFF(csp_pruner_options, sensing.m);
    OFF(csp_pruner_options, sensing.rho);
    OFF(csp_pruner_options, sensing.damping);
    OFF(csp_pruner_options, sensing.tensor_id);
    OFF(csp_pruner_options, solver.method);
    OFF(csp_pruner_options, solver.tol);
    OFF(csp_pruner_options, solver.eps);
    OFF(csp_pruner_options, solver.lambda);
    OFF(csp_pruner_options, solver.damping);
    OFF(csp_pruner_options, solver.dependence_tol);
    OFF(csp_pruner_options, solver.max_iter);
    OFF(csp_pruner_options, solver.calibrate);
    OFF(csp_pruner_options, solver.max_bisect);
    OFF(csp_pruner_options, solver.restart);
    SIZE(csp_pruner_tensor_options);
    OFF(csp_pruner_tensor_options, struct_size);
    OFF(csp_pruner_tensor_options, granularity);
    OFF(csp_pruner_tensor_options, nm_n);
    OFF(csp_pruner_tensor_options, nm_m);
    OFF(csp_pruner_tensor_options, correction);
    OFF(csp_pruner_tensor_options, block_size);
    OFF(csp_pruner_tensor_options, exclude);
    OFF(csp_pruner_tensor_options, group);
    OFF(csp_pruner_tensor_options, final_sparsity);
    OFF(csp_pruner_tensor_options, sensing.kind);
    OFF(csp_pruner_tensor_options, sensing.n);
    OFF(csp_pruner_tensor_options, sensing.m);
    OFF(csp_pruner_tensor_options, sensing.rho);
    OFF(csp_pruner_tensor_options, sensing.damping);
    OFF(csp_pruner_tensor_options, sensing.tensor_id);
    OFF(csp_pruner_tensor_options, solver.method);
    OFF(csp_pruner_tensor_options, solver.tol);
    OFF(csp_pruner_tensor_options, solver.eps);
    OFF(csp_pruner_tensor_options, solver.lambda);
    OFF(csp_pruner_tensor_options, solver.damping);
    OFF(csp_pruner_tensor_options, solver.dependence_tol);
    OFF(csp_pruner_tensor_options, solver.max_iter);
    OFF(csp_pruner_tensor_options, solver.calibrate);
    OFF(csp_pruner_tensor_options, solver.max_bisect);
    OFF(csp_pruner_tensor_options, solver.restart);
    SIZE(csp_option_info);
    OFF(csp_option_info, struct_size);
    OFF(csp_option_info, name);
    OFF(csp_option_info, description);
    OFF(csp_option_info, enum_name);
    OFF(csp_option_info, type);
    OFF(csp_option_info, flags);
    OFF(csp_option_info, pruner_offset);
    OFF(csp_option_info, tensor_offset);
    OFF(csp_option_info, param);
    OFF(csp_option_info, reserved0);
    OFF(csp_option_info, min);
    OFF(csp_option_info, max);
    OFF(csp_option_info, default_value);
    OFF(csp_option_info, member_offset);
    SIZE(csp_tensor_stats);
    OFF(csp_tensor_stats, struct_size);
    OFF(csp_tensor_stats, numel);
    OFF(csp_tensor_stats, nnz);
    OFF(csp_tensor_stats, target_sparsity);
    OFF(csp_tensor_stats, achieved_sparsity);
    OFF(csp_tensor_stats, granularity);
    OFF(csp_tensor_stats, excluded);
    OFF(csp_tensor_stats, last_event);
    OFF(csp_tensor_stats, sensing);
    OFF(csp_tensor_stats, solver);
    OFF(csp_tensor_stats, correction);
    OFF(csp_tensor_stats, converged);
    OFF(csp_tensor_stats, weight_error);
    OFF(csp_tensor_stats, sensing_error);
    OFF(csp_tensor_stats, solver_iterations);
    OFF(csp_tensor_stats, solver_iterations_max);
    OFF(csp_tensor_stats, rows_not_converged);
    OFF(csp_tensor_stats, rows_damped);
    OFF(csp_tensor_stats, events);
    OFF(csp_tensor_stats, event_seconds);
    OFF(csp_tensor_stats, total_seconds);
    OFF(csp_tensor_stats, observed_rows);
    OFF(csp_tensor_stats, observe_seconds);
    SIZE(csp_step_stats);
    OFF(csp_step_stats, struct_size);
    OFF(csp_step_stats, steps);
    OFF(csp_step_stats, events);
    OFF(csp_step_stats, last_event);
    OFF(csp_step_stats, numel);
    OFF(csp_step_stats, nnz);
    OFF(csp_step_stats, last_event_seconds);
    OFF(csp_step_stats, event_seconds);
    OFF(csp_step_stats, total_seconds);
    OFF(csp_step_stats, observe_seconds);
    SIZE(csp_sensing_options);
    OFF(csp_sensing_options, struct_size);
    OFF(csp_sensing_options, n);
    OFF(csp_sensing_options, m);
    OFF(csp_sensing_options, rho);
    OFF(csp_sensing_options, damping);
    OFF(csp_sensing_options, tensor_id);
    OFF(csp_sensing_options, kind);
    OFF(csp_sensing_options, reserved0);
    OFF(csp_sensing_options, reserved);
    /* csp_solver_options: no mirror (the Python Solver writes it from the
     * options table, whose offsets are offsetof() themselves). */
    SIZE(csp_row_stats);
    OFF(csp_row_stats, residual);
    OFF(csp_row_stats, energy);
    OFF(csp_row_stats, lambda);
    OFF(csp_row_stats, damping);
    OFF(csp_row_stats, iterations);
    OFF(csp_row_stats, nnz);
    OFF(csp_row_stats, converged);
    OFF(csp_row_stats, flags);
    SIZE(csp_solver_batch);
    OFF(csp_solver_batch, struct_size);
    OFF(csp_solver_batch, rows);
    OFF(csp_solver_batch, n);
    OFF(csp_solver_batch, w);
    OFF(csp_solver_batch, w_stride);
    OFF(csp_solver_batch, x);
    OFF(csp_solver_batch, x_stride);
    OFF(csp_solver_batch, k);
    OFF(csp_solver_batch, lambda);
    OFF(csp_solver_batch, allowed);
    OFF(csp_solver_batch, allowed_row_bits);
    OFF(csp_solver_batch, support);
    OFF(csp_solver_batch, support_row_bits);
    OFF(csp_solver_batch, stats);
    OFF(csp_solver_batch, stats_size);
    OFF(csp_solver_batch, k_all);
    OFF(csp_solver_batch, warm_start);
    SIZE(csp_export_options);
    OFF(csp_export_options, struct_size);
    OFF(csp_export_options, format);
    OFF(csp_export_options, value_dtype);
    OFF(csp_export_options, nm_n);
    OFF(csp_export_options, nm_m);
    SIZE(csp_export_stats);
    OFF(csp_export_stats, struct_size);
    OFF(csp_export_stats, numel);
    OFF(csp_export_stats, nnz);
    OFF(csp_export_stats, bytes);
    OFF(csp_export_stats, dense_bytes);
    OFF(csp_export_stats, header_bytes);
    OFF(csp_export_stats, index_bytes);
    OFF(csp_export_stats, value_bytes);
    OFF(csp_export_stats, ratio);
    SIZE(csp_sparse_options);
    OFF(csp_sparse_options, struct_size);
    OFF(csp_sparse_options, format);
    OFF(csp_sparse_options, kernel);
    OFF(csp_sparse_options, nm_n);
    OFF(csp_sparse_options, nm_m);
    SIZE(csp_sparse_info);
    OFF(csp_sparse_info, struct_size);
    OFF(csp_sparse_info, rows);
    OFF(csp_sparse_info, cols);
    OFF(csp_sparse_info, nnz);
    OFF(csp_sparse_info, bytes);
    OFF(csp_sparse_info, dense_bytes);
    OFF(csp_sparse_info, format);
    OFF(csp_sparse_info, kernel);
    OFF(csp_sparse_info, index_bytes);
    OFF(csp_sparse_info, nm_n);
    OFF(csp_sparse_info, nm_m);
    OFF(csp_sparse_info, nm_bits);
    SIZE(csp_export_info);
    OFF(csp_export_info, struct_size);
    OFF(csp_export_info, format);
    OFF(csp_export_info, value_dtype);
    OFF(csp_export_info, rank);
    OFF(csp_export_info, nm_n);
    OFF(csp_export_info, nm_m);
    OFF(csp_export_info, index_bytes);
    OFF(csp_export_info, pointer_bytes);
    OFF(csp_export_info, version);
    OFF(csp_export_info, shape);
    OFF(csp_export_info, rows);
    OFF(csp_export_info, cols);
    OFF(csp_export_info, nnz);
    OFF(csp_export_info, bytes);
    ENUM(CSP_DTYPE_F32);
    ENUM(CSP_DTYPE_F64);
    ENUM(CSP_LOG_NONE);
    ENUM(CSP_LOG_ERROR);
    ENUM(CSP_LOG_WARN);
    ENUM(CSP_LOG_INFO);
    ENUM(CSP_LOG_DEBUG);
    ENUM(CSP_SCHEDULE_CONSTANT);
    ENUM(CSP_SCHEDULE_POLYNOMIAL);
    ENUM(CSP_SCHEDULE_CALLBACK);
    ENUM(CSP_GRANULARITY_TENSOR);
    ENUM(CSP_GRANULARITY_ROW);
    ENUM(CSP_GRANULARITY_GLOBAL);
    ENUM(CSP_GRANULARITY_NM);
    ENUM(CSP_CORRECTION_NONE);
    ENUM(CSP_CORRECTION_FULL);
    ENUM(CSP_CORRECTION_BLEND);
    ENUM(CSP_SUPPORT_SOLVER);
    ENUM(CSP_SUPPORT_MAGNITUDE);
    ENUM(CSP_SUPPORT_WANDA);
    ENUM(CSP_SENSING_IDENTITY);
    ENUM(CSP_SENSING_GAUSSIAN);
    ENUM(CSP_SENSING_RADEMACHER);
    ENUM(CSP_SENSING_ACTIVATIONS);
    ENUM(CSP_SENSING_GRAM);
    ENUM(CSP_SOLVER_OMP);
    ENUM(CSP_SOLVER_ISTA);
    ENUM(CSP_SOLVER_FISTA);
    ENUM(CSP_SOLVER_SWEEP);
    ENUM(CSP_ROW_DAMPED);
    ENUM(CSP_ROW_DEPENDENT);
    ENUM(CSP_ROW_FILLED);
    ENUM(CSP_ROW_CUT);
    ENUM(CSP_EXPORT_CSR);
    ENUM(CSP_EXPORT_BITMAP);
    ENUM(CSP_EXPORT_NM);
    ENUM(CSP_OK);
    ENUM(CSP_MASKED);
    ENUM(CSP_PRUNED);
    ENUM(CSP_DAMPED);
    ENUM(CSP_NOT_CONVERGED);
    ENUM(CSP_NO_TENSORS);
    printf("const MAX_THREADS %d\n", CSP_MAX_THREADS);
    printf("const MAX_RANK %d\n", CSP_MAX_RANK);
    printf("const MAX_NAME %d\n", CSP_MAX_NAME);
    printf("const NM_MAX_M %d\n", CSP_NM_MAX_M);
    printf("const DEFAULT_BLOCK_SIZE %d\n", CSP_DEFAULT_BLOCK_SIZE);
    printf("const SENSING_MAX_N %d\n", CSP_SENSING_MAX_N);
    printf("const ABI_VERSION %d\n", CSP_ABI_VERSION);
    printf("const VERSION_NUMBER %d\n", CSP_VERSION_NUMBER);
    return 0;
}

/* A tensor line and its optional tcsp line, as written (0 / -1 / negative:
 * "the pruner's"), applied once the pruner exists. */
typedef struct {
    int32_t dtype;
    int64_t rows, cols;
    int gran, group, nm_n, nm_m, exclude;
    double final_sparsity;
    int sensing, solver, correction, block, redraw;
    double rho, damping, alpha, shrink;
    void *data, *companion;
    csp_tensor *t, *c;
    int32_t index;
} spec_tensor;

/* The pruner-wide experimental parameters of the csp line (-1 / negative: unset). */
typedef struct {
    int redraw, window;
    double alpha, shrink;
} spec_x;

static csp_status set_x(csp_pruner *p, int32_t index, int32_t param, double v, int set) {
    return set ? csp_pruner_set_experimental(p, index, param, v) : CSP_OK;
}

static size_t esize(int32_t dtype) { return dtype == CSP_DTYPE_F64 ? 8 : 4; }

#define FAIL(...)                         \
    do {                                  \
        fprintf(stderr, __VA_ARGS__);     \
        fputc('\n', stderr);              \
        return 1;                         \
    } while (0)

#define CHECK(call)                                                                        \
    do {                                                                                   \
        csp_status st_ = (call);                                                           \
        if (st_ < 0)                                                                       \
            FAIL("%s: %s: %s", #call, csp_status_name(st_), csp_context_last_error(ctx)); \
    } while (0)

static int prune(const char *spec_path, const char *weights_path, const char *out_path) {
    FILE *spec = fopen(spec_path, "r");
    if (spec == NULL)
        FAIL("cannot open %s", spec_path);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    csp_pruner_options po;
    csp_pruner_options_init(&po, sizeof po);
    long long steps = 0, observe_rows = 0;
    spec_x px = {-1, -1, -1.0, -1.0};
    spec_tensor ts[MAX_TENSORS];
    int n = 0;
    char word[32];
    while (fscanf(spec, "%31s", word) == 1) {
        if (strcmp(word, "schedule") == 0) {
            int kind;
            long long b, e, f;
            if (fscanf(spec, "%d %lf %lf %lf %lld %lld %lld", &kind, &so.initial_sparsity,
                       &so.final_sparsity, &so.exponent, &b, &e, &f) != 7)
                FAIL("bad schedule line");
            so.kind = kind;
            so.begin_step = b;
            so.end_step = e;
            so.frequency = f;
        } else if (strcmp(word, "pruner") == 0) {
            int g, nn, mm;
            if (fscanf(spec, "%d %d %d", &g, &nn, &mm) != 3)
                FAIL("bad pruner line");
            po.granularity = g;
            po.nm_n = nn;
            po.nm_m = mm;
        } else if (strcmp(word, "csp") == 0) {
            int sens, solv, corr, bs, mi;
            if (fscanf(spec, "%d %d %d %d %d %d %d %lf %lf %lf %lf %lf", &sens, &solv, &corr,
                       &bs, &px.redraw, &px.window, &mi, &po.sensing.rho, &po.sensing.damping,
                       &px.alpha, &px.shrink, &po.solver.tol) != 12)
                FAIL("bad csp line");
            po.sensing.kind = sens;
            po.solver.method = solv;
            po.correction = corr;
            po.block_size = bs;
            po.solver.max_iter = mi;
        } else if (strcmp(word, "observe") == 0) {
            if (fscanf(spec, "%lld", &observe_rows) != 1)
                FAIL("bad observe line");
        } else if (strcmp(word, "tcsp") == 0) {
            if (n == 0)
                FAIL("tcsp before any tensor");
            spec_tensor *t = &ts[n - 1];
            if (fscanf(spec, "%d %d %d %d %d %lf %lf %lf %lf", &t->sensing, &t->solver,
                       &t->correction, &t->block, &t->redraw, &t->rho, &t->damping, &t->alpha,
                       &t->shrink) != 9)
                FAIL("bad tcsp line");
        } else if (strcmp(word, "steps") == 0) {
            if (fscanf(spec, "%lld", &steps) != 1)
                FAIL("bad steps line");
        } else if (strcmp(word, "tensor") == 0) {
            if (n == MAX_TENSORS)
                FAIL("too many tensors");
            spec_tensor *t = &ts[n];
            memset(t, 0, sizeof *t);
            t->redraw = -1;
            t->damping = t->alpha = t->shrink = -1.0;
            long long r, c;
            if (fscanf(spec, "%d %lld %lld %d %d %d %d %d %lf", &t->dtype, &r, &c, &t->gran,
                       &t->group, &t->nm_n, &t->nm_m, &t->exclude, &t->final_sparsity) != 9)
                FAIL("bad tensor line");
            t->rows = r;
            t->cols = c;
            n++;
        } else {
            FAIL("unknown spec word %s", word);
        }
    }
    fclose(spec);

    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, NULL) != CSP_OK)
        FAIL("csp_context_create failed");
    csp_schedule *sched = NULL;
    csp_pruner *pruner = NULL;
    CHECK(csp_schedule_create(&sched, ctx, &so));
    CHECK(csp_pruner_create(&pruner, ctx, sched, &po));
    CHECK(set_x(pruner, -1, CSP_X_REDRAW, px.redraw, px.redraw >= 0));
    CHECK(set_x(pruner, -1, CSP_X_OBSERVE_WINDOW, px.window, px.window >= 0));
    CHECK(set_x(pruner, -1, CSP_X_ALPHA, px.alpha, px.alpha >= 0.0));
    CHECK(set_x(pruner, -1, CSP_X_SHRINK, px.shrink, px.shrink >= 0.0));
    for (int i = 0; i < n; i++) {
        spec_tensor *t = &ts[i];
        size_t bytes = (size_t)(t->rows * t->cols) * esize(t->dtype);
        t->data = calloc(1, bytes);
        t->companion = malloc(bytes);
        if (t->data == NULL || t->companion == NULL)
            FAIL("out of memory");
        for (int64_t j = 0; j < t->rows * t->cols; j++) {
            if (t->dtype == CSP_DTYPE_F64)
                ((double *)t->companion)[j] = 1.0;
            else
                ((float *)t->companion)[j] = 1.0f;
        }
        int64_t shape[2] = {t->rows, t->cols};
        CHECK(csp_tensor_create(&t->t, ctx, t->data, t->dtype, 2, shape, 0, NULL));
        CHECK(csp_tensor_create(&t->c, ctx, t->companion, t->dtype, 2, shape, 0, NULL));
        csp_pruner_tensor_options o;
        CHECK(csp_pruner_tensor_options_init(&o, sizeof o, pruner));
        if (t->gran != 0)
            o.granularity = t->gran;
        o.group = t->group;
        if (t->nm_n != 0)
            o.nm_n = t->nm_n;
        if (t->nm_m != 0)
            o.nm_m = t->nm_m;
        o.exclude = t->exclude;
        if (t->final_sparsity >= 0.0)
            o.final_sparsity = t->final_sparsity;
        if (t->sensing != 0)
            o.sensing.kind = t->sensing;
        if (t->solver != 0)
            o.solver.method = t->solver;
        if (t->correction != 0)
            o.correction = t->correction;
        if (t->block != 0)
            o.block_size = t->block;
        if (t->rho != 0.0)
            o.sensing.rho = t->rho;
        if (t->damping >= 0.0)
            o.sensing.damping = t->damping;
        CHECK(csp_pruner_add_tensor(pruner, t->t, &o, &t->index));
        CHECK(set_x(pruner, t->index, CSP_X_REDRAW, t->redraw, t->redraw >= 0));
        CHECK(set_x(pruner, t->index, CSP_X_ALPHA, t->alpha, t->alpha >= 0.0));
        CHECK(set_x(pruner, t->index, CSP_X_SHRINK, t->shrink, t->shrink >= 0.0));
        if (!t->exclude)
            CHECK(csp_pruner_add_companion(pruner, t->index, t->c));
    }

    int activations[MAX_TENSORS];
    int64_t max_cols = 1;
    for (int i = 0; i < n; i++) {
        csp_sensing *sens = NULL;
        CHECK(csp_pruner_sensing(pruner, ts[i].index, &sens));
        activations[i] = sens != NULL && csp_sensing_kind(sens) == CSP_SENSING_ACTIVATIONS;
        if (ts[i].cols > max_cols)
            max_cols = ts[i].cols;
    }
    float *inputs = malloc((size_t)((observe_rows > 0 ? observe_rows : 1) * max_cols) *
                           sizeof *inputs);
    if (inputs == NULL)
        FAIL("out of memory");

    FILE *w = fopen(weights_path, "rb");
    if (w == NULL)
        FAIL("cannot open %s", weights_path);
    for (long long s = 0; s < steps; s++) {
        for (int i = 0; i < n; i++) {
            size_t count = (size_t)(ts[i].rows * ts[i].cols);
            if (fread(ts[i].data, esize(ts[i].dtype), count, w) != count)
                FAIL("short weights file");
        }
        int32_t want = 0;
        CHECK(csp_pruner_wants_observe(pruner, s, &want));
        for (int i = 0; i < n && observe_rows > 0; i++) {
            if (!activations[i])
                continue;
            size_t count = (size_t)(observe_rows * ts[i].cols);
            if (fread(inputs, sizeof *inputs, count, w) != count)
                FAIL("short weights file (inputs)");
            if (want)
                CHECK(csp_pruner_observe(pruner, ts[i].index, inputs, observe_rows, ts[i].cols));
        }
        csp_status st = csp_step(pruner, s);
        printf("status %lld %d\n", s, (int)st);
        if (st < 0)
            FAIL("csp_step: %s", csp_context_last_error(ctx));
    }
    fclose(w);
    free(inputs);

    for (int i = 0; i < n; i++) {
        csp_tensor_stats ts_;
        csp_tensor_stats_init(&ts_, sizeof ts_);
        CHECK(csp_pruner_tensor_stats(pruner, ts[i].index, &ts_));
        printf("tstats %d %d %d %d %d %.17g %.17g %lld %lld %lld %lld %lld %lld\n", i,
               (int)ts_.sensing, (int)ts_.solver, (int)ts_.correction, (int)ts_.converged,
               ts_.weight_error, ts_.sensing_error, (long long)ts_.solver_iterations,
               (long long)ts_.solver_iterations_max, (long long)ts_.rows_not_converged,
               (long long)ts_.rows_damped, (long long)ts_.events, (long long)ts_.observed_rows);
    }
    csp_step_stats ss;
    csp_step_stats_init(&ss, sizeof ss);
    CHECK(csp_pruner_step_stats(pruner, &ss));
    printf("sstats %lld %lld %lld %lld %lld\n", (long long)ss.steps, (long long)ss.events,
           (long long)ss.last_event, (long long)ss.numel, (long long)ss.nnz);

    uint64_t digest = 0;
    int64_t nnz = 0;
    CHECK(csp_pruner_digest(pruner, &digest));
    CHECK(csp_pruner_nnz(pruner, -1, &nnz));
    printf("digest %llu\nnnz %lld\n", (unsigned long long)digest, (long long)nnz);

    FILE *out = fopen(out_path, "wb");
    if (out == NULL)
        FAIL("cannot open %s", out_path);
    for (int i = 0; i < n; i++) {
        int64_t numel = ts[i].rows * ts[i].cols;
        int64_t nw = (numel + 63) / 64;
        uint64_t *words = calloc((size_t)nw, sizeof *words);
        if (words == NULL)
            FAIL("out of memory");
        CHECK(csp_pruner_mask_words(pruner, ts[i].index, words, nw));
        fwrite(words, sizeof *words, (size_t)nw, out);
        fwrite(ts[i].data, esize(ts[i].dtype), (size_t)numel, out);
        fwrite(ts[i].companion, esize(ts[i].dtype), (size_t)numel, out);
        free(words);
    }
    fclose(out);

    csp_pruner_free(pruner);
    csp_schedule_free(sched);
    for (int i = 0; i < n; i++) {
        csp_tensor_free(ts[i].t);
        csp_tensor_free(ts[i].c);
        free(ts[i].data);
        free(ts[i].companion);
    }
    csp_context_free(ctx);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "layout") == 0)
        return layout();
    if (argc == 5 && strcmp(argv[1], "prune") == 0)
        return prune(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: csp_helper layout | prune SPEC WEIGHTS OUT\n");
    return 2;
}
