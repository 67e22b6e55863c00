/*
 * Internal interface of the solver layer: the entry points the pruner uses
 * at a pruning event (no sensing object), plus the shared pieces of omp.c,
 * l1.c and refit.c.
 *
 * A caller (lib/prune/strategy_cs.c) does, per tensor and event:
 *     csp__gram *g;
 *     csp__sensing_prepare(sensing, row_block, event, &g);    (sensing_internal.h)
 *     csp_solver_batch b;  csp_solver_batch_init(&b, sizeof b);
 *     b.rows = rows; b.n = n; b.w = weights; b.x = out; b.k = per_row_k;
 *     b.allowed = mask_words; b.support = new_support; b.stats = row_stats;
 *     b.stats_size = sizeof *row_stats; ...
 *     csp__solver_run(solver, g, &b, "csp_step");               (x, new support)
 *     csp__solver_refit(solver, g, &b, alpha, false, "csp_step"); (correction)
 * and computes the errors itself. Messages name the public function given.
 *
 * G is float64 (g->g64) for every accurate quantity and float32 (g->g32)
 * for the O(n k^2) selection work and the GEMMs; rows are float32.
 */
#ifndef CSP_SOLVER_INTERNAL_H
#define CSP_SOLVER_INTERNAL_H

#include <csp/solver.h>
#ifndef CSP_EXPERIMENTAL_API
#define CSP_EXPERIMENTAL_API
#endif
#include <csp/experimental.h>

#include "core/abi.h"
#include "core/options.h"
#include "linalg/linalg.h"

/* The options of csp_solver_options, once (lib/core/options.h):
 * X(member, type, default, min, max, flags, flags in a pruner, enum, doc). */
#define CSP__SOLVER_OPTIONS(X)                                                                \
    X(method, ENUM, CSP_SOLVER_OMP, CSP_SOLVER_OMP, CSP_SOLVER_SWEEP, 0, CSP_OPTION_CSP_ONLY,   \
      "csp_solver_method", "OMP, ISTA, FISTA, or the sweep (experimental)")                                             \
    X(tol, DOUBLE, 1e-4, 0.0, 1.0, CSP_OPTION_MIN_OPEN | CSP_OPTION_MAX_OPEN,                   \
      CSP_OPTION_CSP_ONLY, "", "ISTA/FISTA: stop when the duality gap <= tol * objective")     \
    X(eps, DOUBLE, 0.0, 0.0, 1.0, CSP_OPTION_MAX_OPEN, CSP_OPTION_FIXED, "",                    \
      "OMP: also stop when (w-x)^T G (w-x) <= eps * w^T G w")                                  \
    X(lambda, DOUBLE, 0.0, 0.0, 1.7976931348623157e308, 0, CSP_OPTION_FIXED, "",                \
      "ISTA/FISTA without calibration: the L1 weight")                                         \
    X(damping, DOUBLE, 1e-4, 0.0, 1.0, CSP_OPTION_MIN_OPEN, CSP_OPTION_CSP_ONLY, "",            \
      "first damping of a singular G_SS (OMP with k > a random operator's m: from the first pick), relative to mean(diag G); escalates x10")             \
    X(dependence_tol, DOUBLE, 1e-6, 0.0, 1.0, CSP_OPTION_MIN_OPEN | CSP_OPTION_MAX_OPEN,        \
      CSP_OPTION_CSP_ONLY, "", "a new column is dependent when its pivot <= this * its diagonal") \
    X(max_iter, INT32, 1000, 1, 2147483647.0, 0, CSP_OPTION_CSP_ONLY, "",                       \
      "ISTA/FISTA: iterations per solve")                                                      \
    X(calibrate, INT32, 1, 0, 1, 0, CSP_OPTION_FIXED, "",                                       \
      "ISTA/FISTA: 1 = find lambda per row for exactly k nonzeros; 0 = use lambda")           \
    X(max_bisect, INT32, 60, 1, 2147483647.0, 0, CSP_OPTION_CSP_ONLY, "",                       \
      "calibration: most lambda trials per row")                                               \
    X(restart, INT32, 1, 0, 1, 0, CSP_OPTION_CSP_ONLY, "",                                      \
      "FISTA: 1 = adaptive momentum restart; 0 = plain FISTA")                                 \
    X(normalize, INT32, 0, 0, 1, 0, CSP_OPTION_CSP_ONLY, "",                                    \
      "OMP: 1 = pick by |alpha_j| / sqrt(G_jj) (normalised atoms); 0 = by |alpha_j|")

/* The descriptors of csp_solver_options, csp_solver_batch and csp_row_stats
 * (lib/core/abi.h). */
extern const csp__struct_desc csp__solver_options_desc, csp__solver_batch_desc,
    csp__row_stats_desc;

/* Validate the fields of @p o (ranges, reserved words); @p prefix goes
 * before each field's name in messages. */
csp_status csp__solver_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp_solver_options *o);

struct csp_solver {
    csp_context *ctx;
    csp_solver_options opt;
    /* ISTA/FISTA product mode: 0 = automatic (GEMM while the iterates are
     * dense, then sparse rows), 1 = GEMM only, 2 = sparse rows only. For
     * benchmarks and tests; results agree to rounding. */
    int32_t l1_mode;
    /* Sweep: columns per lazy-update block; 0 = the default (128). Results
     * agree to rounding for every block size. For benchmarks and tests. */
    int32_t sweep_block;
    /* Sweep: 0 = the support over the whole row first (the default); 1 =
     * per block, from the swept weights (the comparison of the tests). */
    int32_t sweep_mode;
};


/* A validated batch with defaults resolved. */
typedef struct csp__batch {
    int64_t rows, n;
    const float *w;
    int64_t ws;
    float *x;
    int64_t xs;
    const int32_t *k; /* NULL: k_all */
    int32_t k_all;
    int32_t kmax;     /* largest budget over the rows */
    double *lambda;
    const uint64_t *allowed;
    int64_t abits;
    uint64_t *support;
    int64_t sbits;
    csp_row_stats *stats;
    size_t stats_size;
    bool warm;
    int32_t nm_m, nm_keep; /* OMP only: at most nm_keep atoms per group of nm_m
                              consecutive columns (0: no constraint) */
    const char *fn; /* the public function, for messages */
} csp__batch;

static inline int32_t csp__batch_k(const csp__batch *b, int64_t r) {
    return b->k != NULL ? b->k[r] : b->k_all;
}

/* Validate @p batch for a solve (refit false) or a refit (true) with the
 * options of @p s and resolve its defaults into @p b: every check of
 * csp_solver_solve() (sizes, strides, overlap, k against the allowed
 * supports, finiteness, lambdas). The one home of batch validation
 * (lib/solver/solver.c). Messages name @p fn. */
csp_status csp__resolve_batch(const csp_solver *s, int64_t n, const csp_solver_batch *batch,
                              csp__batch *b, const char *fn, bool refit);

/* Solve @p batch against @p g with the method of @p s (a method table,
 * lib/solver/solver.c), after csp__resolve_batch(). Returns CSP_OK,
 * CSP_DAMPED, CSP_NOT_CONVERGED or an error (message naming @p fn). x,
 * support, stats and lambda are written only on success. @p g is not const:
 * the L1 methods compute and cache its Lipschitz bound. */
csp_status csp__solver_run(csp_solver *s, csp__gram *g, const csp_solver_batch *batch,
                           const char *fn);

/* Tests: the layout of OMP's per-position arrays. -1 (the default): the
 * cost model per row; 0: every column, in order; 1: the live columns. The
 * results are the same bits either way (test_omp_layouts). Not thread-safe:
 * set it before solving. */
void csp__omp_force_layout(int mode);

/* csp__solver_run() for OMP under an N:M constraint: a group of @p m
 * consecutive columns (n a multiple of m) closes once it holds @p keep
 * atoms, so a row whose budget k is the sum over its groups of
 * min(keep, allowed in the group) keeps exactly that many in each group.
 * The method of @p s must be CSP_SOLVER_OMP (lib/prune/strategy_cs.c). */
csp_status csp__omp_nm(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                       int32_t m, int32_t keep, const char *fn);

/* Correction of the kept weights on given supports (batch->support is the
 * INPUT here; k, allowed and lambda are ignored):
 *     x_S = w_S + alpha (x_ls - w_S),   x_{S^c} = 0,
 *     x_ls = G_SS^-1 (G w)_S = w_S + G_SS^-1 G_{S,S^c} w_{S^c},
 * so alpha = 0 keeps w on S (no correction), 1 is the full least-squares
 * refit, and values in between blend. A singular G_SS is damped exactly as
 * in OMP (G + delta I, reported in the stats and as CSP_DAMPED). x may be w.
 * Stats: nnz = |S|, iterations = 0, converged, damping; with @p errors the
 * residual and energy too (two O(n^2) quadratic forms per row), else 0 (for
 * callers that compute the errors themselves, in batches). */
csp_status csp__solver_refit(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                             double alpha, bool errors, const char *fn);

/* Per row, in float64: weight_err[r] = ||w - x|| / ||w|| and
 * sensing_err[r] = (w - x)^T G (w - x) / w^T G w (0 when the denominator is
 * 0). Either output may be NULL. Costs O(n nnz(w - x)) per row. A reference
 * for the tests. */
csp_status csp__row_errors(csp_context *ctx, const csp__gram *g, int64_t rows, int64_t n,
                           const float *w, int64_t ws, const float *x, int64_t xs,
                           double *weight_err, double *sensing_err);

/* ---- shared by omp.c, l1.c, refit.c ------------------------------------------ */

/* Rows per chunk: b = W G is computed for this many rows at a time (one
 * GEMM), then the rows are solved in parallel. Fixed, so results never
 * depend on the thread count. */
#define CSP__CHUNK 256

csp_status csp__omp(csp_solver *s, const csp__gram *g, const csp__batch *b);
csp_status csp__l1(csp_solver *s, csp__gram *g, const csp__batch *b);
csp_status csp__sweep(csp_solver *s, const csp__gram *g, const csp__batch *b);

/* ISTA or FISTA (the methods with lambdas)? */
static inline bool csp__method_l1(int32_t method) {
    return method == CSP_SOLVER_ISTA || method == CSP_SOLVER_FISTA;
}

/* b = W G for rows [r0, r0 + cnt) into out (cnt x n), through sgemm. */
void csp__rows_times_gram(const csp__gram *g, const float *w, int64_t ws, int64_t cnt,
                          float *out);

/* Copy a row's stats into the caller's array (stride stats_size). */
void csp__put_stats(const csp__batch *b, int64_t r, const csp_row_stats *st);

/* Write the support of row r (a word-aligned bitmap of n bits) into the
 * caller's layout. */
void csp__put_support(const csp__batch *b, int64_t r, const uint64_t *bits);

/* Is column c allowed in row r? */
static inline bool csp__allowed(const csp__batch *b, int64_t r, int64_t c) {
    return b->allowed == NULL || csp__bit_get(b->allowed, r * b->abits + c);
}

/* The stable order "larger |v| first, then lower index": a total order for
 * selection ties. */
typedef struct {
    float key; /* |v|, or a secondary score */
    float key2;
    int32_t idx;
} csp__ranked;
void csp__rank_sort(csp__ranked *items, int64_t count);

#endif
