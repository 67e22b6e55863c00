/*
 * Internal interface of the solver layer: the entry points the pruner uses
 * at a pruning event (no sensing object, no public validation of struct
 * sizes), plus the shared pieces of omp.c, l1.c and refit.c.
 *
 * A pruner does, per tensor and event:
 *     csp__gram *g;
 *     csp__sensing_prepare(sensing, row_block, event, &g);   (sensing_internal.h)
 *     csp_solver_batch b;  csp_solver_batch_init(&b, sizeof b);
 *     b.rows = rows; b.n = cols; b.w = weights; b.w_stride = stride;
 *     b.x = scratch_or_weights; b.k = per_row_k;
 *     b.allowed = mask_words; b.allowed_row_bits = cols;      (its packed mask)
 *     b.support = new_mask_words; b.support_row_bits = cols;
 *     b.stats = row_stats; b.stats_size = sizeof *row_stats;
 *     csp__solver_run(solver, g, &b);                          (x, new support)
 *     csp__solver_refit(solver, g, &b, alpha);                 (correction)
 *     csp__row_errors(ctx, g, ...);                            (both errors)
 *
 * G is float64 (g->g64) for every accurate quantity and float32 (g->g32)
 * for the O(n k^2) selection work and the GEMMs; rows are float32.
 */
#ifndef CSP_SOLVER_INTERNAL_H
#define CSP_SOLVER_INTERNAL_H

#include <csp/solver.h>

#include "linalg/linalg.h"

struct csp_solver {
    csp_context *ctx;
    csp_solver_options opt;
    /* ISTA/FISTA product mode: 0 = automatic (GEMM while the iterates are
     * dense, then sparse rows), 1 = GEMM only, 2 = sparse rows only. For
     * benchmarks and tests; results agree to rounding. */
    int32_t l1_mode;
};

/* The first csp_row_stats layout (0.1.0): stats_size must be at least this. */
#define CSP__ROW_STATS_MIN sizeof(csp_row_stats)

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
} csp__batch;

static inline int32_t csp__batch_k(const csp__batch *b, int64_t r) {
    return b->k != NULL ? b->k[r] : b->k_all;
}

/* Solve @p batch against @p g with the method and options of @p s: every
 * check of csp_solver_solve() on the batch's values (k, masks, finiteness),
 * then OMP or ISTA/FISTA. Returns CSP_OK, CSP_DAMPED, CSP_NOT_CONVERGED or
 * an error (message on the context). x, support, stats and lambda are
 * written only on success. @p g is not const: the L1 methods compute and
 * cache its Lipschitz bound. */
csp_status csp__solver_run(csp_solver *s, csp__gram *g, const csp_solver_batch *batch);

/* Correction of the kept weights on given supports (batch->support is the
 * INPUT here; k, allowed and lambda are ignored):
 *     x_S = w_S + alpha (x_ls - w_S),   x_{S^c} = 0,
 *     x_ls = G_SS^-1 (G w)_S = w_S + G_SS^-1 G_{S,S^c} w_{S^c},
 * so alpha = 0 keeps w on S (no correction), 1 is the full least-squares
 * refit, and values in between blend. A singular G_SS is damped exactly as
 * in OMP (G + delta I, reported in the stats and as CSP_DAMPED). x may be w.
 * Stats: residual, energy, damping, nnz = |S|, iterations = 0, converged. */
csp_status csp__solver_refit(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                             double alpha);
/* The same; with @p errors false the stats' residual and energy (two
 * O(n^2) quadratic forms per row) are left 0, for callers that compute the
 * errors themselves (the pruner, in batches). */
csp_status csp__solver_refit_ex(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                                double alpha, bool errors);

/* Per row, in float64: weight_err[r] = ||w - x|| / ||w|| and
 * sensing_err[r] = (w - x)^T G (w - x) / w^T G w (0 when the denominator is
 * 0). Either output may be NULL. Costs O(n nnz(w - x)) per row. */
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
