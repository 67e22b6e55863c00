/**
 * @file sensing.h
 * @brief Sensing operators: where the Gram matrix G of every solver comes from.
 *
 * A row w of a weight matrix (or a fixed-size block of a flattened tensor)
 * is compared with its sparse approximation x through a symmetric positive
 * semi-definite *sensing Gram* G of the row's length n: the compression error
 * is `(w - x)^T G (w - x)` (docs/guide.md, "Sensing"). A ::csp_sensing
 * produces that G:
 *
 * | kind | G |
 * |---|---|
 * | #CSP_SENSING_IDENTITY | I (magnitude pruning) |
 * | #CSP_SENSING_GAUSSIAN | Phi^T Phi, Phi m x n with N(0, 1/m) entries |
 * | #CSP_SENSING_RADEMACHER | Phi^T Phi, Phi m x n with +-1/sqrt(m) entries |
 * | #CSP_SENSING_ACTIVATIONS | X^T X / N + eps I, X the observed layer inputs |
 * | #CSP_SENSING_GRAM | a matrix the host supplies |
 *
 * Random operators are drawn from a counter-based generator keyed by
 * (context seed, tensor id, row block, event): the same key gives the same
 * G bit for bit on every run, platform and thread count. Phi itself is never
 * stored; G is built from blocks of Phi rows.
 *
 * Thread safety: a sensing object is used by one thread at a time (like its
 * context); one owned by or attached to a pruner is also used by that
 * pruner's csp_step(). Results never depend on the context's thread count.
 */
#ifndef CSP_SENSING_H
#define CSP_SENSING_H

#include <csp/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A sensing operator (opaque). @since 0.1.0 */
typedef struct csp_sensing csp_sensing;

/** Kinds of sensing operator. @since 0.1.0 */
enum csp_sensing_kind {
    CSP_SENSING_IDENTITY = 1,    /**< G = I: the solvers reduce to magnitude selection. */
    CSP_SENSING_GAUSSIAN = 2,    /**< Random Gaussian Phi, E[Phi^T Phi] = I. */
    CSP_SENSING_RADEMACHER = 3,  /**< Random +-1/sqrt(m) Phi, diag(G) = 1 exactly. */
    CSP_SENSING_ACTIVATIONS = 4, /**< Running Gram of observed layer inputs. */
    CSP_SENSING_GRAM = 5         /**< A Gram matrix set with csp_sensing_set_gram(). */
};

/** Largest row length a sensing operator accepts (G has n^2 entries). @since 0.1.0 */
#define CSP_SENSING_MAX_N 65536

/**
 * @brief Options for csp_sensing_create(). Fill with
 * csp_sensing_options_init(), then set at least @c kind and @c n.
 *
 * The struct is embedded in csp_pruner_options and
 * csp_pruner_tensor_options, so its size never changes: later fields take
 * the place of @c reserved words, and a zero there always means the
 * behaviour of this release (docs/abi.md).
 * @since 0.1.0
 */
typedef struct csp_sensing_options {
    size_t struct_size;  /**< sizeof(csp_sensing_options), set by _init. */
    int64_t n;           /**< Row length: G is n x n. 1..CSP_SENSING_MAX_N; no default (0). */
    int64_t m;           /**< Random kinds: rows of Phi; 0 (default) means ceil(rho * n). */
    double rho;          /**< Random kinds: m / n when m is 0; in (0, 64]; default 0.5. */
    double damping;      /**< Activations: eps = damping * mean(diag(X^T X / N)); >= 0,
                              default 0.01. Ignored by the other kinds. */
    uint64_t tensor_id;  /**< Random kinds: key coordinate naming the tensor; default 0. */
    int32_t kind;        /**< ::csp_sensing_kind; default #CSP_SENSING_IDENTITY. */
    int32_t reserved0;   /**< Must be 0. */
    uint64_t reserved[6]; /**< Must be 0: room for later fields. */
} csp_sensing_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_sensing_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_options_init(csp_sensing_options *opts, size_t struct_size);

/**
 * @brief Create a sensing operator. All the memory it needs (G in float64
 * and float32, accumulators, scratch) is allocated here.
 * @param[out] out   Receives the operator, or NULL on failure.
 * @param[in]  ctx   Context; must outlive the operator. Its seed keys the
 *                   random kinds.
 * @param[in]  opts  Options (copied); must not be NULL (n has no default).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (kind), #CSP_E_RANGE (n, m, rho, damping),
 *         #CSP_E_OVERFLOW, #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_create(csp_sensing **out, csp_context *ctx,
                                      const csp_sensing_options *opts);

/**
 * @brief Free a sensing operator.
 * @param[in] s  Operator, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_sensing_free(csp_sensing *s);

/** @brief ::csp_sensing_kind of @p s, or 0 for NULL. @since 0.1.0 */
CSP_API int32_t csp_sensing_kind(const csp_sensing *s);

/** @brief Row length n of @p s, or 0 for NULL. @since 0.1.0 */
CSP_API int64_t csp_sensing_n(const csp_sensing *s);

/**
 * @brief Rows m of Phi for the random kinds; n for the others; 0 for NULL.
 * @since 0.1.0
 */
CSP_API int64_t csp_sensing_m(const csp_sensing *s);

/**
 * @brief Write the Gram matrix G (n x n, float64, row-major, symmetric).
 *
 * For the random kinds G = Phi^T Phi for the Phi keyed by (context seed,
 * tensor id, @p row_block, @p event); the other kinds ignore both. For
 * activations G = S / N + eps I with S the accumulated X^T X and N the
 * number of observed rows.
 *
 * @param[in]  s          Operator.
 * @param[in]  row_block  Random kinds: key coordinate (e.g. a block of rows
 *                        sharing one Phi); >= 0.
 * @param[in]  event      Random kinds: key coordinate (e.g. the pruning
 *                        event, to redraw Phi); >= 0.
 * @param[out] G          n x n output.
 * @param[in]  ld         Elements between rows of @p G; >= n.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (row_block, event),
 *         #CSP_E_SHAPE (ld), #CSP_E_STATE (activations with no observed row,
 *         user Gram not set yet).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_gram(csp_sensing *s, int64_t row_block, int64_t event,
                                    double *G, int64_t ld);

/**
 * @brief Write the random measurement matrix Phi (m x n, float64, row-major)
 * of a random kind, keyed like csp_sensing_gram(). The solvers never need
 * it; it is there for hosts that want the measurements y = Phi w.
 * @param[in]  s          Operator of kind #CSP_SENSING_GAUSSIAN or
 *                        #CSP_SENSING_RADEMACHER.
 * @param[in]  row_block  Key coordinate; >= 0.
 * @param[in]  event      Key coordinate; >= 0.
 * @param[out] phi        m x n output.
 * @param[in]  ld         Elements between rows of @p phi; >= n.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE, #CSP_E_SHAPE, #CSP_E_INVALID
 *         (not a random kind).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_phi(const csp_sensing *s, int64_t row_block, int64_t event,
                                   double *phi, int64_t ld);

/**
 * @brief Accumulate layer inputs into an activations operator:
 * S += X^T X, N += rows.
 *
 * Cheap enough for a forward pass: rows n^2 / 2 multiply-adds in float32,
 * in chunks of 128 rows, each chunk's sums added to S in float64: every
 * element of the added X^T X is within 128 * 2^-24 * sum_r |x_ri x_rj| of
 * the exact sum, however many rows a call has. The order of the sums is
 * fixed (no BLAS), so the same calls give the same S on every CPU and
 * thread count.
 * @param[in] s           Operator of kind #CSP_SENSING_ACTIVATIONS.
 * @param[in] x           rows x cols float32 inputs, one sample per row.
 * @param[in] rows        Number of samples; >= 0 (0 is a no-op).
 * @param[in] cols        Must equal n.
 * @param[in] row_stride  Elements between rows of @p x; 0 means cols.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID (wrong kind), #CSP_E_SHAPE,
 *         #CSP_E_NONFINITE, #CSP_E_RANGE (more than INT32_MAX rows, or N
 *         would pass 2^53, the largest count the accumulator and a
 *         checkpoint store exactly); on error the operator is unchanged.
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_observe(csp_sensing *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t row_stride);

/** @brief Rows observed so far (N) by an activations operator; 0 otherwise. @since 0.1.0 */
CSP_API int64_t csp_sensing_count(const csp_sensing *s);

/**
 * @brief Forget every observed row (S = 0, N = 0).
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_INVALID (not activations).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_reset(csp_sensing *s);

/**
 * @brief Add the observations of @p src to @p dst (S_dst += S_src,
 * N_dst += N_src); @p src is unchanged.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID (not both activations, or
 *         the same object), #CSP_E_SHAPE (different n), #CSP_E_RANGE (N_dst
 *         would pass 2^53; @p dst is unchanged).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_merge(csp_sensing *dst, const csp_sensing *src);

/**
 * @brief Length in doubles of an activations accumulator: n * n + 1.
 * @return n * n + 1, or 0 for NULL or another kind.
 * @since 0.1.0
 */
CSP_API int64_t csp_sensing_accumulator_len(const csp_sensing *s);

/**
 * @brief Copy the accumulator out: @p buf[0 .. n*n-1] = S (full symmetric,
 * row-major), @p buf[n*n] = N.
 *
 * A data-parallel host all-reduces this buffer (sum) across replicas and
 * writes it back with csp_sensing_write_accumulator(), e.g.
 * `MPI_Allreduce(MPI_IN_PLACE, buf, len, MPI_DOUBLE, MPI_SUM, comm)`.
 * @param[in]  s    Activations operator.
 * @param[out] buf  @p len doubles.
 * @param[in]  len  csp_sensing_accumulator_len(s).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID (kind), #CSP_E_BUFFER (len).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_read_accumulator(const csp_sensing *s, double *buf,
                                                int64_t len);

/**
 * @brief Replace the accumulator with @p buf (layout of
 * csp_sensing_read_accumulator()). It is validated first: finite, S
 * symmetric (1e-10 relative) with a non-negative diagonal, N a whole number
 * in [0, 2^53], S = 0 when N = 0. On failure nothing changes.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID, #CSP_E_BUFFER,
 *         #CSP_E_NONFINITE, #CSP_E_RANGE (N).
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_write_accumulator(csp_sensing *s, const double *buf,
                                                 int64_t len);

/**
 * @brief Set the Gram matrix of a #CSP_SENSING_GRAM operator (copied).
 *
 * G is validated: finite, symmetric within 1e-10 of its largest entry,
 * non-negative diagonal, and positive semi-definite (a Cholesky
 * factorisation of G + 1e-9 max(diag G) I must succeed). On failure nothing
 * changes.
 * @param[in] s   Operator of kind #CSP_SENSING_GRAM.
 * @param[in] G   n x n float64, row-major.
 * @param[in] ld  Elements between rows of @p G; >= n.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID (kind, not symmetric, not
 *         PSD), #CSP_E_SHAPE (ld), #CSP_E_NONFINITE, #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_sensing_set_gram(csp_sensing *s, const double *G, int64_t ld);

#ifdef __cplusplus
}
#endif

#endif /* CSP_SENSING_H */
