/**
 * @file pruner.h
 * @brief The pruner: binds weight tensors (and their optimizer-state
 * companions) to a schedule, keeps one bit-packed mask per weight tensor and
 * prunes by magnitude (gradual magnitude pruning, GMP) through csp_step().
 *
 * **Selection.** At a pruning event every tensor keeps its largest-|w|
 * weights among those its mask still keeps (masks are monotone: a pruned
 * weight stays pruned). Among equal |w| the lower flat (row-major) index is
 * kept first; in a global group, tensors rank in the order they were added.
 * The number of zeros is `round_half_even(s * n)` with `s * n` computed in
 * double precision, the rounding of Python's `round()` and therefore of
 * `torch.nn.utils.prune` with a float amount:
 * - #CSP_GRANULARITY_TENSOR: n = numel zeros in the tensor;
 * - #CSP_GRANULARITY_ROW: n = cols zeros in every row of the matrix view;
 * - #CSP_GRANULARITY_GLOBAL: n = the group's total numel, one threshold;
 * - #CSP_GRANULARITY_NM: n = M in every group of M consecutive weights of a
 *   row, capped at M - N zeros (so the tensor ends N:M structured).
 * When the mask already holds more zeros than that, nothing is pruned.
 *
 * **Masks.** 1 bit per weight, bit i (row-major flat index over the shape,
 * ignoring row_stride) is bit `i % 64` of 64-bit word `i / 64`; 1 = kept,
 * 0 = pruned; the unused bits of the last word are 0. The digest is FNV-1a
 * (64-bit) over the little-endian mask bytes (docs/guide.md).
 *
 * **CSP.** A tensor whose sensing operator is not the identity (options
 * `sensing`, or csp_pruner_set_sensing()) is pruned by compressed sensing
 * instead: at an event every row w of its matrix view (a rank-1 tensor: every
 * block of `block_size` weights) is solved for a sparse x inside the current
 * mask, `min (w - x)^T G (w - x)` with `k = cols - round_half_even(s * cols)`
 * nonzeros (OMP) or with lambda calibrated to exactly k nonzeros (ISTA /
 * FISTA); the new mask is the support of x, and the kept weights are left as
 * they are (#CSP_CORRECTION_NONE), refit (#CSP_CORRECTION_FULL) or blended
 * (#CSP_CORRECTION_BLEND). CSP takes #CSP_GRANULARITY_ROW (a row-balanced k)
 * or #CSP_GRANULARITY_NM: then every group of M consecutive weights of a row
 * keeps exactly as many as magnitude N:M keeps there (OMP closes a group once
 * it holds that many atoms; the L1 solutions are cut to their largest |x_j|
 * per group), the correction is over the whole row's support, and a rank-1
 * tensor's `block_size` must be a multiple of M; #CSP_GRANULARITY_TENSOR and
 * #CSP_GRANULARITY_GLOBAL are refused with #CSP_E_UNSUPPORTED. With the
 * identity operator (the default) the solvers
 * and every correction reduce to magnitude selection with x_S = w_S, so such
 * tensors take the GMP path at every granularity, bit for bit
 * (docs/guide.md, "CSP").
 *
 * **Thread safety.** A pruner, its context, the tensors it touches and the
 * sensing operators it owns or borrows are used by one thread at a time
 * (the step callback runs on the thread that called csp_step()). A call
 * made on a pruner from inside one of the callbacks a running call
 * invokes (schedule callback, log hook, allocator) is refused with
 * #CSP_E_STATE and changes nothing; csp_pruner_free() there is deferred
 * until the running call returns. Pruners
 * with their own contexts may step concurrently from different threads.
 * csp_step() may use the context's worker threads, and its results never
 * depend on their number.
 */
#ifndef CSP_PRUNER_H
#define CSP_PRUNER_H

#include <csp/core.h>
#include <csp/schedule.h>
#include <csp/sensing.h>
#include <csp/solver.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A pruner (opaque).
 * @since 0.1.0
 */
typedef struct csp_pruner csp_pruner;

/** How the sparsity budget is spread. @since 0.1.0 */
enum csp_granularity {
    CSP_GRANULARITY_TENSOR = 1, /**< round(s * numel) zeros in the tensor. */
    CSP_GRANULARITY_ROW = 2,    /**< round(s * cols) zeros in every row. */
    CSP_GRANULARITY_GLOBAL = 3, /**< One threshold over a group of tensors. */
    CSP_GRANULARITY_NM = 4      /**< At most N kept in every M consecutive weights of a row. */
};

/** Largest M of N:M sparsity. @since 0.1.0 */
#define CSP_NM_MAX_M 32

/**
 * How a CSP event sets the weights it keeps (S: the new support, x_ls the
 * least-squares fit `w_S + G_SS^-1 G_{S,S^c} w_{S^c}` of the row through G).
 * Rows where the event prunes nothing are never rewritten. A third,
 * experimental value blends the two (`CSP_CORRECTION_BLEND`,
 * <csp/experimental.h>).
 * @since 0.1.0
 */
enum csp_correction {
    CSP_CORRECTION_NONE = 1,  /**< x_S = w_S: kept weights unchanged. */
    CSP_CORRECTION_FULL = 2   /**< x_S = x_ls: full least-squares refit. */
};

/** Default block length of rank-1 CSP tensors. @since 0.1.0 */
#define CSP_DEFAULT_BLOCK_SIZE 128

/**
 * @brief Options for csp_pruner_create(): the defaults of every tensor added
 * (each tensor may change them, csp_pruner_tensor_options). Fill with
 * csp_pruner_options_init().
 *
 * The sensing operator and the solver of CSP tensors are configured through
 * the embedded csp_sensing_options and csp_solver_options, field for field
 * as for csp_sensing_create() and csp_solver_create(), except the fields the
 * pruner sets itself, which must keep their defaults: `sensing.n` and
 * `sensing.tensor_id` (the pruner uses the row length and the tensor index),
 * `solver.calibrate` (always 1: every row gets exactly its budget),
 * `solver.lambda` and `solver.eps` (0). The options, their ranges and
 * defaults are also listed at run time by csp_pruner_option_info().
 * @since 0.1.0
 */
typedef struct csp_pruner_options {
    size_t struct_size;  /**< sizeof(csp_pruner_options), set by _init. */
    int32_t granularity; /**< ::csp_granularity of added tensors; default TENSOR. */
    int32_t nm_n;        /**< N of N:M, 1..M-1; default 2. */
    int32_t nm_m;        /**< M of N:M, 2..#CSP_NM_MAX_M; default 4. */
    int32_t correction;  /**< ::csp_correction of CSP tensors; default #CSP_CORRECTION_FULL
                              (the refit; docs/results/regimes.md). */
    int32_t block_size;  /**< Block length of rank-1 CSP tensors (the last block may be
                              shorter), 1..#CSP_SENSING_MAX_N; default
                              #CSP_DEFAULT_BLOCK_SIZE. */
    int32_t reserved0;   /**< Must be 0. */
    /** The sensing operator: `sensing.kind` #CSP_SENSING_IDENTITY (the default) is
     * magnitude pruning (GMP); any other kind makes the tensor CSP (it then needs
     * #CSP_GRANULARITY_ROW). Random kinds use `rho` (or `m`); activations use
     * `damping`; #CSP_SENSING_GRAM: the pruner owns an operator whose Gram the host
     * sets through csp_pruner_sensing(). */
    csp_sensing_options sensing;
    /** The solver of CSP tensors: `solver.method` (default #CSP_SOLVER_OMP), and for
     * ISTA/FISTA `tol`, `max_iter`, `max_bisect`, `restart`; `damping` and
     * `dependence_tol` for singular systems. */
    csp_solver_options solver;
} csp_pruner_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_pruner_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_options_init(csp_pruner_options *opts, size_t struct_size);

/**
 * @brief Per-tensor options for csp_pruner_add_tensor(). Fill with
 * csp_pruner_tensor_options_init(), which copies the pruner's options: a
 * tensor gets exactly the values its options hold (there is no "use the
 * pruner's" sentinel).
 * @since 0.1.0
 */
typedef struct csp_pruner_tensor_options {
    size_t struct_size;    /**< sizeof(csp_pruner_tensor_options), set by _init. */
    int32_t granularity;   /**< ::csp_granularity. */
    int32_t nm_n;          /**< N of N:M. */
    int32_t nm_m;          /**< M of N:M. */
    int32_t correction;    /**< ::csp_correction. */
    int32_t block_size;    /**< Rank-1 CSP block length. */
    int32_t exclude;       /**< Nonzero: never pruned nor masked (no mask is kept); default 0. */
    int32_t group;         /**< Global group id >= 0 (GLOBAL only); default 0. */
    int32_t reserved0;     /**< Must be 0. */
    double final_sparsity; /**< The tensor's final sparsity f in [0, 1): its target is the
                                schedule's scaled by f / s_f (capped at f); default the
                                schedule's s_f (no scaling). A different value needs s_f > 0.
                                All members of a global group need the same. */
    csp_sensing_options sensing; /**< As csp_pruner_options::sensing. */
    csp_solver_options solver;   /**< As csp_pruner_options::solver. */
} csp_pruner_tensor_options;

/**
 * @brief Fill @p opts with the pruner's options for the tensors it adds.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_pruner_tensor_options) as the caller sees it.
 * @param[in]  pruner       The pruner the tensor will be added to; must not be NULL.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_tensor_options_init(csp_pruner_tensor_options *opts,
                                                  size_t struct_size, const csp_pruner *pruner);

/** Value types of csp_option_info::type. @since 0.1.0 */
enum csp_option_type {
    CSP_OPTION_INT32 = 1,  /**< int32_t. */
    CSP_OPTION_INT64 = 2,  /**< int64_t. */
    CSP_OPTION_UINT64 = 3, /**< uint64_t. */
    CSP_OPTION_DOUBLE = 4, /**< double. */
    CSP_OPTION_ENUM = 5    /**< int32_t holding the enumerators of csp_option_info::enum_name. */
};

/** Bits of csp_option_info::flags. @since 0.1.0 */
enum csp_option_flag {
    CSP_OPTION_PRUNER = 1,       /**< A field of csp_pruner_options (pruner_offset). */
    CSP_OPTION_TENSOR = 2,       /**< A field of csp_pruner_tensor_options (tensor_offset). */
    CSP_OPTION_EXPERIMENTAL = 4, /**< Set with csp_pruner_set_experimental() (param);
                                      <csp/experimental.h>. */
    CSP_OPTION_FIXED = 8,        /**< Set by the pruner itself: must keep its default. */
    CSP_OPTION_CSP_ONLY = 16,    /**< Used by CSP tensors only (GMP tensors ignore it). */
    CSP_OPTION_MIN_OPEN = 32,    /**< The minimum is excluded from the range. */
    CSP_OPTION_MAX_OPEN = 64     /**< The maximum is excluded from the range. */
};

/**
 * @brief One option of a pruner, as csp_pruner_option_info() describes it.
 * @since 0.1.0
 */
typedef struct csp_option_info {
    size_t struct_size;      /**< sizeof(csp_option_info), set by _init. */
    const char *name;        /**< The member path, e.g. "sensing.damping" (static). */
    const char *description; /**< One line (static). */
    const char *enum_name;   /**< #CSP_OPTION_ENUM: the enum, e.g. "csp_sensing_kind"; else "". */
    int32_t type;            /**< ::csp_option_type. */
    int32_t flags;           /**< ::csp_option_flag bits. */
    int64_t pruner_offset;   /**< Byte offset in csp_pruner_options, or -1. */
    int64_t tensor_offset;   /**< Byte offset in csp_pruner_tensor_options, or -1. */
    int32_t param;           /**< Experimental: the csp_experimental_param; else 0. */
    int32_t reserved0;       /**< 0. */
    double min;              /**< Smallest value (see #CSP_OPTION_MIN_OPEN). */
    double max;              /**< Largest value (see #CSP_OPTION_MAX_OPEN). */
    double default_value;    /**< Default (of csp_pruner_options_init()). */
    int64_t member_offset;   /**< An option of an embedded struct ("solver.tol"): its byte
                                  offset in that struct (csp_solver_options,
                                  csp_sensing_options); else -1. */
} csp_option_info;

/**
 * @brief Prepare @p info for csp_pruner_option_info().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_option_info_init(csp_option_info *info, size_t struct_size);

/**
 * @brief Number of options csp_pruner_option_info() describes.
 * @since 0.1.0
 */
CSP_API int32_t csp_pruner_option_count(void);

/**
 * @brief Describe option @p index (0..csp_pruner_option_count()-1): its
 * name, type, where it lives, range and default. For bindings and tools;
 * C programs set the fields directly.
 * @param[in]     index  Option index.
 * @param[in,out] info   Filled; its struct_size must come from csp_option_info_init().
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index) or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_option_info(int32_t index, csp_option_info *info);

/**
 * @brief Create a pruner.
 * @param[out] out       Receives the pruner, or NULL on failure.
 * @param[in]  ctx       Context; must outlive the pruner.
 * @param[in]  schedule  Schedule; copied, so it may be freed afterwards (a
 *                       callback's user data stays the host's).
 * @param[in]  opts      Options, or NULL for the defaults.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (granularity, sensing, solver, correction), #CSP_E_RANGE
 *         (N:M, a numeric CSP option), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_create(csp_pruner **out, csp_context *ctx,
                                     const csp_schedule *schedule,
                                     const csp_pruner_options *opts);

/**
 * @brief Free a pruner (never the tensors or host buffers).
 * @param[in] pruner  Pruner, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_pruner_free(csp_pruner *pruner);

/**
 * @brief Add a weight tensor, before the first csp_step().
 *
 * Its mask starts all ones. The tensor view is borrowed: it must stay valid
 * (and keep pointing at the weights, see csp_tensor_set_data()) while the
 * pruner is used. A CSP tensor (sensing other than the identity) gets its
 * own sensing operator (random kinds keyed by its index) and solver here.
 * @param[in]  pruner  Pruner.
 * @param[in]  weight  Weight tensor, of the pruner's context.
 * @param[in]  opts    Options, or NULL for the defaults.
 * @param[out] index   Receives the tensor's index (0, 1, ... in order of
 *                     addition), or -1 on failure; may be NULL.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (granularity), #CSP_E_RANGE (N:M, group, override
 *         NaN or >= 1, or an override with a schedule whose s_f is 0),
 *         #CSP_E_SHAPE (N:M with cols not a multiple of M; a CSP row longer
 *         than #CSP_SENSING_MAX_N), #CSP_E_DTYPE (a global group mixing
 *         float32 and float64), #CSP_E_INVALID (the same buffer twice,
 *         another context, unequal overrides in a group), #CSP_E_UNSUPPORTED
 *         (CSP or shrink with a granularity other than ROW), #CSP_E_STATE
 *         (after the first csp_step()), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_add_tensor(csp_pruner *pruner, csp_tensor *weight,
                                         const csp_pruner_tensor_options *opts, int32_t *index);

/**
 * @brief Register a companion of tensor @p index: an optimizer-state buffer
 * of the same shape (SGD momentum, Adam's exp_avg and exp_avg_sq) that
 * csp_step() zeroes wherever the weight's mask is 0. Allowed at any time
 * (optimizers often create their state at the first update); the masks are
 * applied to it from the next csp_step() on.
 * @param[in] pruner     Pruner.
 * @param[in] index      Index of a non-excluded tensor.
 * @param[in] companion  Tensor of the same rank and shape (either dtype),
 *                       borrowed like the weight.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_SHAPE,
 *         #CSP_E_INVALID (the weight itself, an excluded tensor, another
 *         context), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_add_companion(csp_pruner *pruner, int32_t index,
                                            csp_tensor *companion);

/**
 * @brief Register a gradient buffer of tensor @p index, for
 * csp_pruner_mask_gradients(). Allowed at any time.
 *
 * Pruned weights still receive gradients. A trainer that clips by the global
 * gradient norm, or whose optimizer reads the whole gradient (LAMB, LARS),
 * must mask them first, or the pruned weights' gradients shrink the kept
 * weights' updates: call csp_pruner_mask_gradients() after the backward pass
 * and before clipping and the optimizer update (docs/guide.md, "Training
 * loop").
 * @param[in] pruner    Pruner.
 * @param[in] index     Index of a non-excluded tensor.
 * @param[in] gradient  Tensor of the same rank and shape (either dtype),
 *                      borrowed like the weight.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_SHAPE,
 *         #CSP_E_INVALID (a buffer already bound to the pruner, an excluded
 *         tensor, another context), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_add_gradient(csp_pruner *pruner, int32_t index,
                                           csp_tensor *gradient);

/**
 * @brief Zero every registered gradient buffer (csp_pruner_add_gradient())
 * wherever its tensor's mask is 0. Values at kept positions are not read or
 * written.
 * @param[in] pruner  Pruner.
 * @return #CSP_OK or #CSP_E_NULL.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_mask_gradients(csp_pruner *pruner);

/**
 * @brief Zero @p buffer wherever tensor @p index's mask is 0: the mask
 * applied to any buffer shaped like the weights (a gradient, an optimizer
 * state the pruner does not know, a copy of the weights), once.
 * @param[in] pruner  Pruner.
 * @param[in] index   Index of a non-excluded tensor.
 * @param[in] buffer  Tensor of the same rank and shape (either dtype); it
 *                    need not be registered.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_SHAPE,
 *         #CSP_E_INVALID (an excluded tensor, another context).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_apply_mask(const csp_pruner *pruner, int32_t index,
                                         csp_tensor *buffer);

/**
 * @brief Number of tensors added (0 for NULL).
 * @since 0.1.0
 */
CSP_API int32_t csp_pruner_num_tensors(const csp_pruner *pruner);

/**
 * @brief Call after every optimizer update: prune at pruning events, else
 * re-apply the masks to the weights and their companions.
 *
 * Let `last` be the step of the previous call (none before the first). A
 * pruning event happens when the schedule has an event `e` with
 * `last < e <= step`; the pruner then prunes once, to the targets of the
 * latest such `e` (so a jump, e.g. a resumed run, catches up in one event).
 * - `step == last`: masks are re-applied, nothing else changes; returns
 *   #CSP_MASKED.
 * - `step < last` (steps going backwards): refused with #CSP_E_STATE and
 *   nothing is touched; restore the pruner's state with the run instead.
 *
 * At an event every weight being pruned is read first: a NaN or infinity
 * returns #CSP_E_NONFINITE before any buffer or mask is written. Re-applying
 * masks does not look at values (a NaN at a kept position stays).
 *
 * @param[in] pruner  Pruner.
 * @param[in] step    Training step, >= 0 (TF-MOT's pruning step: the number
 *                    of optimizer updates done, see docs/guide.md).
 * @return #CSP_PRUNED (an event: masks updated and applied), #CSP_MASKED
 *         (masks re-applied), #CSP_NO_TENSORS (no tensor was added: nothing
 *         done, the step not recorded, the step callback still run), or
 *         #CSP_E_NULL, #CSP_E_RANGE (negative step, callback target),
 *         #CSP_E_STATE (steps going back, activations not observed, user
 *         Gram not set, called from one of the pruner's callbacks),
 *         #CSP_E_INVALID (two bound buffers share memory after
 *         csp_tensor_set_data()), #CSP_E_NONFINITE, #CSP_E_CALLBACK,
 *         #CSP_E_NOMEM; every error but
 *         a failed step callback leaves every buffer, mask and CSP state
 *         (lambdas, accumulators, stats) untouched.
 * @since 0.1.0
 */
CSP_API csp_status csp_step(csp_pruner *pruner, int64_t step);

/**
 * @brief The step of the last successful csp_step() call.
 * @param[in]  pruner  Pruner.
 * @param[out] step    Receives the step, or -1 before the first call.
 * @return #CSP_OK or #CSP_E_NULL.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_last_step(const csp_pruner *pruner, int64_t *step);

/**
 * @brief Copy tensor @p index's mask as packed words (layout in the file
 * comment). An excluded tensor reads as all ones.
 * @param[in]  pruner     Pruner.
 * @param[in]  index      Tensor index.
 * @param[out] words      Receives `(numel + 63) / 64` words.
 * @param[in]  num_words  Capacity of @p words, in words.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_BUFFER.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_mask_words(const csp_pruner *pruner, int32_t index,
                                         uint64_t *words, int64_t num_words);

/**
 * @brief Copy tensor @p index's mask as one byte per weight (1 kept, 0
 * pruned), in row-major flat order.
 * @param[in]  pruner     Pruner.
 * @param[in]  index      Tensor index.
 * @param[out] bytes      Receives numel bytes.
 * @param[in]  num_bytes  Capacity of @p bytes.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_BUFFER.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_mask_bytes(const csp_pruner *pruner, int32_t index,
                                         uint8_t *bytes, int64_t num_bytes);

/**
 * @brief Number of kept weights (ones in the mask) of tensor @p index, or of
 * all tensors together when @p index is -1 (excluded tensors count whole).
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (index).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_nnz(const csp_pruner *pruner, int32_t index, int64_t *nnz);

/**
 * @brief 64-bit digest of every mask, for agreement checks between
 * data-parallel replicas: FNV-1a 64 over, for each non-excluded tensor in
 * index order, its numel as 8 little-endian bytes followed by its
 * `(numel + 7) / 8` little-endian mask bytes (bit i in byte i / 8, bit
 * i % 8). The same on every platform.
 * @return #CSP_OK or #CSP_E_NULL.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_digest(const csp_pruner *pruner, uint64_t *digest);

/**
 * @brief Statistics of one tensor. Fill struct_size with
 * csp_tensor_stats_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_tensor_stats {
    size_t struct_size;       /**< sizeof(csp_tensor_stats), set by _init. */
    int64_t numel;            /**< Number of weights. */
    int64_t nnz;              /**< Weights the mask keeps. */
    double target_sparsity;   /**< Target of the last event (0 before any). */
    double achieved_sparsity; /**< 1 - nnz / numel. */
    int32_t granularity;      /**< ::csp_granularity in force. */
    int32_t excluded;         /**< 1 when excluded. */
    int64_t last_event;       /**< Step of the last event applied, or -1. */
    int32_t sensing;          /**< ::csp_sensing_kind in force (of the attached operator
                                   when one is set); #CSP_SENSING_IDENTITY for GMP. */
    int32_t solver;           /**< ::csp_solver_method in force (configured, also for GMP
                                   tensors, which ignore it). */
    int32_t correction;       /**< ::csp_correction in force (ignored by GMP tensors). */
    int32_t converged;        /**< 1 when every row of the last event's solve converged
                                   (always 1 for GMP and OMP). */
    /* Last event: W = the masked weights before it, X after it, rows w, x. */
    double weight_error;      /**< ||W - X||_F / ||W||_F (0 when W = 0 or before any event). */
    double sensing_error;     /**< sum_rows (w - x)^T G (w - x) / sum_rows w^T G w
                                   (G = I for GMP tensors). */
    int64_t solver_iterations;     /**< Sum over rows (OMP: atoms; ISTA/FISTA: iterations
                                        over every lambda trial); 0 for GMP. */
    int64_t solver_iterations_max; /**< Largest per-row count. */
    int64_t rows_not_converged;    /**< Rows that stopped at solver_max_iter. */
    int64_t rows_damped;      /**< Rows solved or refit with damping (singular G_SS). */
    int64_t events;           /**< Events applied to this tensor. */
    double event_seconds;     /**< Seconds this tensor took at the last event (selection
                                   or solve, correction, stats). */
    double total_seconds;     /**< The same summed over every event. */
    int64_t observed_rows;    /**< Activations: rows observed since the last event; 0
                                   otherwise. */
    double observe_seconds;   /**< Wall seconds of every successful csp_pruner_observe()
                                   on this tensor (not part of any csp_step() time). */
} csp_tensor_stats;

/**
 * @brief Prepare @p stats for csp_pruner_tensor_stats().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_tensor_stats_init(csp_tensor_stats *stats, size_t struct_size);

/**
 * @brief Statistics of tensor @p index.
 * @param[in]     pruner  Pruner.
 * @param[in]     index   Tensor index.
 * @param[in,out] stats   Filled; its struct_size must come from
 *                        csp_tensor_stats_init().
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_STRUCT_SIZE,
 *         #CSP_E_RESERVED.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_tensor_stats(const csp_pruner *pruner, int32_t index,
                                           csp_tensor_stats *stats);

/* ---- CSP: sensing, observation, stats and the step callback ------------ */

/**
 * @brief The sensing operator of tensor @p index (borrowed: valid until the
 * pruner is freed or another operator is attached). A data-parallel host
 * all-reduces an activations operator's accumulator through it
 * (csp_sensing_read_accumulator(), csp_sensing_write_accumulator()); a
 * #CSP_SENSING_GRAM tensor receives its Gram through csp_sensing_set_gram().
 * @param[in]  pruner   Pruner.
 * @param[in]  index    Tensor index.
 * @param[out] sensing  Receives the operator, or NULL when the tensor has
 *                      none (GMP tensors, excluded tensors).
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (index).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_sensing(csp_pruner *pruner, int32_t index, csp_sensing **sensing);

/**
 * @brief Attach a host-made sensing operator to tensor @p index (borrowed:
 * it must outlive its use by the pruner), replacing the configured one for
 * the following events; NULL detaches it again. Any kind is accepted (a
 * #CSP_SENSING_IDENTITY operator runs the solver's magnitude path). The
 * pruner never resets an attached operator. The tensor becomes a CSP tensor.
 * @param[in] pruner   Pruner.
 * @param[in] index    Index of a non-excluded ROW-granularity tensor.
 * @param[in] sensing  Operator of the pruner's context whose n is the
 *                     tensor's CSP row length (cols, or the block size of a
 *                     rank-1 tensor), or NULL.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_SHAPE (n),
 *         #CSP_E_INVALID (excluded tensor, another context),
 *         #CSP_E_UNSUPPORTED (granularity), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_set_sensing(csp_pruner *pruner, int32_t index,
                                          csp_sensing *sensing);

/**
 * @brief Feed layer inputs to tensor @p index's activations operator
 * (S += X^T X, N += rows; see csp_sensing_observe()). Call it in the forward
 * pass, for the steps csp_pruner_wants_observe() names. Non-finite inputs
 * are refused and change nothing.
 * @param[in] pruner  Pruner.
 * @param[in] index   Tensor whose sensing kind is #CSP_SENSING_ACTIVATIONS.
 * @param[in] x       rows x cols float32 inputs, row-major and contiguous.
 * @param[in] rows    Samples, >= 0 (0 is a no-op).
 * @param[in] cols    The tensor's CSP row length.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index, too many rows),
 *         #CSP_E_INVALID (no activations operator), #CSP_E_SHAPE,
 *         #CSP_E_NONFINITE.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_observe(csp_pruner *pruner, int32_t index, const float *x,
                                      int64_t rows, int64_t cols);

/**
 * @brief Should the host observe activations in the forward pass of step
 * @p step (the pass whose update csp_step(pruner, step) follows)?
 *
 * Yes when some tensor has activations sensing and the first event `e >=
 * step` exists with `e - step < observe_window` (any `e` when the window is
 * 0). Observations are never refused outside the window: the flag only lets
 * a host skip the cost.
 * @param[in]  pruner  Pruner.
 * @param[in]  step    Step, >= 0.
 * @param[out] flag    Receives 1 or 0.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (negative step).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_wants_observe(const csp_pruner *pruner, int64_t step,
                                            int32_t *flag);

/**
 * @brief Statistics of csp_step() over the whole pruner. Fill struct_size
 * with csp_step_stats_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_step_stats {
    size_t struct_size;        /**< sizeof(csp_step_stats), set by _init. */
    int64_t steps;             /**< csp_step() calls whose step was applied (#CSP_PRUNED,
                                    #CSP_MASKED, or #CSP_E_CALLBACK after either). */
    int64_t events;            /**< Pruning events applied. */
    int64_t last_event;        /**< Schedule step of the last event applied, or -1. */
    int64_t numel;             /**< Weights of every tensor (excluded ones too). */
    int64_t nnz;               /**< Kept weights (excluded tensors count whole). */
    double last_event_seconds; /**< Wall seconds of the csp_step() call of the last event. */
    double event_seconds;      /**< Wall seconds of every event call together. */
    double total_seconds;      /**< Wall seconds of every applied csp_step() call
                                    (events, re-masking, shrink; the callback excluded). */
    double observe_seconds;    /**< Wall seconds of every successful csp_pruner_observe()
                                    (all tensors; not in total_seconds: a host's CSP
                                    overhead is total_seconds + observe_seconds). */
} csp_step_stats;

/**
 * @brief Prepare @p stats for csp_pruner_step_stats().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_step_stats_init(csp_step_stats *stats, size_t struct_size);

/**
 * @brief Statistics of csp_step() for the pruner.
 * @param[in]     pruner  Pruner.
 * @param[in,out] stats   Filled; its struct_size must come from
 *                        csp_step_stats_init().
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_step_stats(const csp_pruner *pruner, csp_step_stats *stats);

/**
 * @brief Host callback run at the end of every csp_step() call, on the
 * calling thread. It may read the pruner (stats, masks, nnz, digest) and
 * change it (add tensors, load a checkpoint); csp_step() from inside it is
 * refused with #CSP_E_STATE, and csp_pruner_free() on its pruner is
 * deferred to the end of that csp_step() (the pruner is gone once
 * csp_step() returns). See "Re-entrancy" in docs/guide.md.
 * @param[in] user    The user pointer given to csp_pruner_set_callback().
 * @param[in] pruner  The pruner.
 * @param[in] step    The step argument of csp_step().
 * @param[in] status  What csp_step() is about to return (errors included).
 * @param[in] event   1 when the step was (or, on error, would have been) a
 *                    pruning event, else 0.
 * @return 0 (#CSP_OK) on success; anything else makes a csp_step() that
 *         had succeeded return #CSP_E_CALLBACK (its work stays applied).
 * @since 0.1.0
 */
typedef csp_status (*csp_step_fn)(void *user, const csp_pruner *pruner, int64_t step,
                                  csp_status status, int32_t event);

/**
 * @brief Set (or with @p fn NULL, remove) the step callback.
 * @return #CSP_OK or #CSP_E_NULL (pruner).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_set_callback(csp_pruner *pruner, csp_step_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* CSP_PRUNER_H */
