/**
 * @file solver.h
 * @brief Batched compressed-sensing solvers in Gram form: OMP, ISTA, FISTA.
 *
 * Every row w (length n) of a batch is approximated by a sparse x through a
 * sensing Gram G (sensing.h), one of:
 *
 * - k-sparse (#CSP_SOLVER_OMP): `min_x (w - x)^T G (w - x)` with at most k
 *   nonzeros, greedily (Batch-OMP with a progressive Cholesky factor of
 *   G_SS, Rubinstein, Zibulevsky & Elad 2008). The returned x is the
 *   least-squares fit on the selected support S:
 *   `x_S = G_SS^-1 (G w)_S = w_S + G_SS^-1 G_{S,S^c} w_{S^c}`.
 * - L1 (#CSP_SOLVER_ISTA, #CSP_SOLVER_FISTA):
 *   `min_x 1/2 (w - x)^T G (w - x) + lambda ||x||_1`, by proximal gradient
 *   steps 1/L (L >= the largest eigenvalue of G, from power iteration), to a
 *   relative duality gap @c tol. With @c calibrate, lambda is found per row
 *   by bisection so that exactly k entries are nonzero.
 *
 * Each row may be restricted to an *allowed support* (a bit mask, 1 =
 * allowed): x is zero outside it. Among equal scores the lower column index
 * always wins; with G = I, OMP selects exactly the k largest |w| and returns
 * x_S = w_S.
 *
 * Thread safety: a solver is used by one thread at a time; it uses up to the
 * context's thread count internally, and its results do not depend on it.
 */
#ifndef CSP_SOLVER_H
#define CSP_SOLVER_H

#include <csp/core.h>
#include <csp/sensing.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A solver: a method and its options (opaque). @since 0.1.0 */
typedef struct csp_solver csp_solver;

/** Solver methods. @since 0.1.0 */
enum csp_solver_method {
    CSP_SOLVER_OMP = 1,   /**< Batch-OMP: exactly k atoms (or residual <= eps). */
    CSP_SOLVER_ISTA = 2,  /**< Iterative soft thresholding (proximal gradient). */
    CSP_SOLVER_FISTA = 3  /**< ISTA with Nesterov momentum (Beck & Teboulle 2009). */
};

/** Bits of csp_row_stats::flags. @since 0.1.0 */
enum csp_row_flag {
    CSP_ROW_DAMPED = 1,    /**< G_SS was singular or ill-conditioned, or OMP's k exceeded
                                a random operator's m (rank(G) <= m): the row was solved
                                with G + damping I (csp_row_stats::damping). */
    CSP_ROW_DEPENDENT = 2, /**< A selected column was linearly dependent on the others
                                (with k > m: would have been, so damped from the start). */
    CSP_ROW_FILLED = 4,    /**< Calibrated L1: no lambda reached k nonzeros; the rest of the
                                support was filled by |w|, then by index. */
    CSP_ROW_CUT = 8        /**< Calibrated L1: the solution had more than k nonzeros at the
                                final lambda (ties); the k largest |x| were kept. */
};

/**
 * @brief Options for csp_solver_create(). Fill with
 * csp_solver_options_init() first.
 *
 * The struct is embedded in csp_pruner_options and
 * csp_pruner_tensor_options, so its size never changes: later fields take
 * the place of @c reserved words, and a zero there always means the
 * behaviour of this release (docs/abi.md).
 * @since 0.1.0
 */
typedef struct csp_solver_options {
    size_t struct_size;     /**< sizeof(csp_solver_options), set by _init. */
    double tol;             /**< ISTA/FISTA: stop when the duality gap <= tol * objective;
                                 (0, 1); default 1e-4. Values below ~1e-6 are not
                                 reachable in float32. */
    double eps;             /**< OMP: also stop when (w-x)^T G (w-x) <= eps * w^T G w;
                                 [0, 1); default 0 (always k atoms). */
    double lambda;          /**< ISTA/FISTA without calibration: the L1 weight (>= 0) for
                                 rows without their own (csp_solver_batch::lambda);
                                 default 0. */
    double damping;         /**< First damping, relative to mean(diag G), added when G_SS
                                 is singular (OMP: from the first pick when k exceeds a
                                 random operator's m); escalates x10 while needed; (0, 1];
                                 default 1e-4. */
    double dependence_tol;  /**< A new column is linearly dependent when its Cholesky pivot
                                 is <= dependence_tol * its diagonal; (0, 1); default
                                 1e-6. */
    int32_t method;         /**< ::csp_solver_method; default #CSP_SOLVER_OMP. */
    int32_t max_iter;       /**< ISTA/FISTA: iterations per solve; >= 1; default 1000. */
    int32_t calibrate;      /**< ISTA/FISTA: 1 (default) = find lambda per row so that
                                 exactly k entries are nonzero; 0 = use lambda as given. */
    int32_t max_bisect;     /**< Calibration: most lambda trials per row; >= 1; default 60. */
    int32_t restart;        /**< FISTA: 1 (default) = adaptive momentum restart
                                 (O'Donoghue & Candes 2015); 0 = plain FISTA. */
    int32_t normalize;      /**< OMP: 1 = pick the atom with the largest |alpha_j| /
                                 sqrt(G_jj) (normalised atoms: with a diagonal G the
                                 support is the k largest |w_j| sqrt(G_jj), Wanda's score);
                                 0 (default) = the largest |alpha_j|, as scikit-learn's
                                 orthogonal_mp_gram. */
    uint64_t reserved[8];   /**< Must be 0: room for later fields. */
} csp_solver_options;

/**
 * @brief Per-row results. Written at a stride of csp_solver_batch::stats_size
 * bytes, so the struct can grow.
 * @since 0.1.0
 */
typedef struct csp_row_stats {
    double residual;    /**< (w - x)^T G (w - x) at the returned x (sensing-domain error). */
    double energy;      /**< w^T G w; residual / energy is the relative error. */
    double lambda;      /**< ISTA/FISTA: the L1 weight used (calibrated or given); OMP: 0. */
    double damping;     /**< Absolute damping added to diag(G) for this row; 0 if none. */
    int32_t iterations; /**< OMP: atoms selected; ISTA/FISTA: iterations over all solves
                             of the row (all lambda trials). */
    int32_t nnz;        /**< Size of the returned support. */
    int32_t converged;  /**< 1 when every solve of the row met its stopping rule. */
    int32_t flags;      /**< ::csp_row_flag bits. */
} csp_row_stats;

/**
 * @brief A batch of rows to solve: inputs, outputs and their layouts. Fill
 * with csp_solver_batch_init(), then set the pointers.
 *
 * Bit masks are LSB-first uint64 words: the bit of (row r, column c) is bit
 * `(r * row_bits + c) % 64` of word `(r * row_bits + c) / 64`.
 * @since 0.1.0
 */
typedef struct csp_solver_batch {
    size_t struct_size;         /**< sizeof(csp_solver_batch), set by _init. */
    int64_t rows;               /**< Number of rows; >= 0. */
    int64_t n;                  /**< Row length; must equal the sensing's n. */
    const float *w;             /**< rows x n inputs (finite). */
    int64_t w_stride;           /**< Elements between rows of w; 0 means n. */
    float *x;                   /**< rows x n outputs; may be w itself (same stride) but
                                     must not otherwise overlap it. */
    int64_t x_stride;           /**< Elements between rows of x; 0 means n. */
    const int32_t *k;           /**< Per-row budgets (0..n), or NULL to use k_all. OMP and
                                     calibrated ISTA/FISTA. */
    double *lambda;             /**< ISTA/FISTA: per-row L1 weights, or NULL. Without
                                     calibration: the weights to use (NULL: options lambda).
                                     With calibration: in, a first guess (<= 0: none); out,
                                     the calibrated weight. */
    const uint64_t *allowed;    /**< Allowed supports (1 = may be nonzero), or NULL for all.
                                     Each row must allow at least its k columns. */
    int64_t allowed_row_bits;   /**< Bits between rows of allowed; 0 means 64 * ceil(n/64). */
    uint64_t *support;          /**< Output supports (1 = selected), or NULL. Only the bits
                                     of the batch's rows are written. */
    int64_t support_row_bits;   /**< Bits between rows of support; 0 means 64 * ceil(n/64). */
    csp_row_stats *stats;       /**< rows per-row results, or NULL. */
    size_t stats_size;          /**< Bytes between stats entries: sizeof(csp_row_stats) as
                                     the caller sees it (fields it lacks are not written). */
    int32_t k_all;              /**< Budget of every row when k is NULL; default 0. */
    int32_t warm_start;         /**< ISTA/FISTA: 1 = start from the content of x (outside
                                     the allowed support it is ignored); 0 (default) = from 0. */
} csp_solver_batch;

/**
 * @brief Fill @p opts with defaults.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_solver_options_init(csp_solver_options *opts, size_t struct_size);

/**
 * @brief Fill @p batch with defaults (all pointers NULL, strides 0, k_all 0).
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_solver_batch_init(csp_solver_batch *batch, size_t struct_size);

/**
 * @brief Create a solver.
 * @param[out] out   Receives the solver, or NULL on failure.
 * @param[in]  ctx   Context; must outlive the solver.
 * @param[in]  opts  Options (copied), or NULL for the defaults (OMP).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (method), #CSP_E_RANGE (a numeric option), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_solver_create(csp_solver **out, csp_context *ctx,
                                     const csp_solver_options *opts);

/**
 * @brief Free a solver.
 * @param[in] s  Solver, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_solver_free(csp_solver *s);

/**
 * @brief Solve a batch of rows that share the Gram of @p sensing at
 * (@p row_block, @p event) (see csp_sensing_gram()).
 *
 * Every argument and every input value is checked before any output is
 * written; on an error the outputs are unchanged and the context holds a
 * message.
 *
 * @param[in] s          Solver.
 * @param[in] sensing    Operator giving G. Its Gram is prepared (built or
 *                       taken from its cache) by this call.
 * @param[in] row_block  Key coordinate of random operators; >= 0.
 * @param[in] event      Key coordinate of random operators; >= 0.
 * @param[in] batch      Rows, budgets, masks and outputs.
 * @return #CSP_OK; #CSP_NOT_CONVERGED when some row stopped at max_iter;
 *         else #CSP_DAMPED when some row needed damping (see the row stats);
 *         errors: #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_SHAPE (n, strides, row bits), #CSP_E_RANGE (k < 0, k > n,
 *         k above the allowed count, negative lambda, stats_size),
 *         #CSP_E_NONFINITE (w, lambda or the warm start), #CSP_E_STATE
 *         (sensing not ready), #CSP_E_INVALID (x overlaps w without being
 *         w), #CSP_E_OVERFLOW, #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_solver_solve(csp_solver *s, csp_sensing *sensing, int64_t row_block,
                                    int64_t event, const csp_solver_batch *batch);

#ifdef __cplusplus
}
#endif

#endif /* CSP_SOLVER_H */
