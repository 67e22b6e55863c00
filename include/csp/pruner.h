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
 * **Thread safety.** A pruner, its context and the tensors it touches are
 * used by one thread at a time; csp_step() may use the context's worker
 * threads, and its results never depend on their number.
 */
#ifndef CSP_PRUNER_H
#define CSP_PRUNER_H

#include <csp/core.h>
#include <csp/schedule.h>

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
 * @brief Options for csp_pruner_create(). Fill with csp_pruner_options_init().
 * @since 0.1.0
 */
typedef struct csp_pruner_options {
    size_t struct_size;  /**< sizeof(csp_pruner_options), set by _init. */
    int32_t granularity; /**< Default ::csp_granularity of added tensors; default TENSOR. */
    int32_t nm_n;        /**< Default N of N:M, 1..M-1; default 2. */
    int32_t nm_m;        /**< Default M of N:M, 2..#CSP_NM_MAX_M; default 4. */
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
 * csp_pruner_tensor_options_init().
 * @since 0.1.0
 */
typedef struct csp_pruner_tensor_options {
    size_t struct_size;    /**< sizeof(csp_pruner_tensor_options), set by _init. */
    int32_t granularity;   /**< ::csp_granularity, or 0 (default) for the pruner's. */
    int32_t group;         /**< Global group id >= 0 (GLOBAL only); default 0. */
    int32_t nm_n;          /**< N of N:M, or 0 (default) for the pruner's. */
    int32_t nm_m;          /**< M of N:M, or 0 (default) for the pruner's. */
    int32_t exclude;       /**< Nonzero: never pruned nor masked (no mask is kept). */
    double final_sparsity; /**< Override of the final sparsity in [0, 1): the tensor's
                                target is the schedule's scaled by final_sparsity / s_f
                                (capped at final_sparsity); negative (default -1) for
                                none. All members of a global group need the same. */
} csp_pruner_tensor_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_pruner_tensor_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_tensor_options_init(csp_pruner_tensor_options *opts,
                                                  size_t struct_size);

/**
 * @brief Create a pruner.
 * @param[out] out       Receives the pruner, or NULL on failure.
 * @param[in]  ctx       Context; must outlive the pruner.
 * @param[in]  schedule  Schedule; copied, so it may be freed afterwards (a
 *                       callback's user data stays the host's).
 * @param[in]  opts      Options, or NULL for the defaults.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (granularity), #CSP_E_RANGE (N:M), #CSP_E_NOMEM.
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
 * pruner is used.
 * @param[in]  pruner  Pruner.
 * @param[in]  weight  Weight tensor, of the pruner's context.
 * @param[in]  opts    Options, or NULL for the defaults.
 * @param[out] index   Receives the tensor's index (0, 1, ... in order of
 *                     addition), or -1 on failure; may be NULL.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_ENUM (granularity), #CSP_E_RANGE (N:M, group, override
 *         NaN or >= 1, or an override with a schedule whose s_f is 0),
 *         #CSP_E_SHAPE (N:M with cols not a multiple of M), #CSP_E_DTYPE
 *         (a global group mixing float32 and float64), #CSP_E_INVALID (the
 *         same buffer twice, another context, unequal overrides in a group),
 *         #CSP_E_STATE (after the first csp_step()), #CSP_E_NOMEM.
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
 *         (masks re-applied), or #CSP_E_NULL, #CSP_E_RANGE (negative step,
 *         callback target), #CSP_E_STATE, #CSP_E_NONFINITE, #CSP_E_CALLBACK,
 *         #CSP_E_NOMEM; every error leaves every buffer and mask untouched.
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

#ifdef __cplusplus
}
#endif

#endif /* CSP_PRUNER_H */
