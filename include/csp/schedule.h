/**
 * @file schedule.h
 * @brief Sparsity schedules: the target sparsity at a training step, and
 * which steps are pruning events.
 *
 * Every kind shares one event grid: the events are the steps
 * `t = begin_step + j * frequency` (j = 0, 1, ...) with `t <= end_step`,
 * plus `end_step` itself so that the final sparsity is always reached;
 * `end_step = -1` (constant and callback kinds only) means no end.
 * Targets:
 * - #CSP_SCHEDULE_CONSTANT: `final_sparsity` at every step.
 * - #CSP_SCHEDULE_POLYNOMIAL: `s_i` at and before `begin_step` (t0), `s_f`
 *   at and after `end_step` (t_end), and in between
 *   `s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0))^p`
 *   (Zhu & Gupta 2017 for p = 3), evaluated in double precision.
 * - #CSP_SCHEDULE_CALLBACK: whatever the host's ::csp_schedule_fn returns.
 *
 * This is TF-MOT's `PolynomialDecay(initial_sparsity, final_sparsity,
 * begin_step, end_step, power, frequency)` and `ConstantSparsity`, step for
 * step, except that TF-MOT has no event at `end_step` when
 * `(end_step - begin_step) % frequency != 0` (docs/guide.md).
 *
 * A schedule is immutable after creation; its queries may be called from
 * several threads at once (a callback schedule only if its callback allows).
 */
#ifndef CSP_SCHEDULE_H
#define CSP_SCHEDULE_H

#include <csp/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A sparsity schedule (opaque).
 * @since 0.1.0
 */
typedef struct csp_schedule csp_schedule;

/** Kinds of schedule. @since 0.1.0 */
enum csp_schedule_kind {
    CSP_SCHEDULE_CONSTANT = 1,   /**< `final_sparsity` at every step. */
    CSP_SCHEDULE_POLYNOMIAL = 2, /**< Ramp from `initial_sparsity` to `final_sparsity`. */
    CSP_SCHEDULE_CALLBACK = 3    /**< The host's ::csp_schedule_fn gives the target. */
};

/**
 * @brief Host callback giving the target sparsity at a step.
 * @param[in]  user    The `callback_user` of the options.
 * @param[in]  step    Training step, >= 0.
 * @param[out] target  Target sparsity, finite and in [0, 1).
 * @return 0 (#CSP_OK) on success; anything else makes the calling libcsp
 *         function fail with #CSP_E_CALLBACK.
 * @since 0.1.0
 */
typedef csp_status (*csp_schedule_fn)(void *user, int64_t step, double *target);

/**
 * @brief Options for csp_schedule_create(). Fill with
 * csp_schedule_options_init() first, then change fields.
 * @since 0.1.0
 */
typedef struct csp_schedule_options {
    size_t struct_size;       /**< sizeof(csp_schedule_options), set by _init. */
    int32_t kind;             /**< ::csp_schedule_kind; default #CSP_SCHEDULE_POLYNOMIAL. */
    double initial_sparsity;  /**< s_i in [0, 1), <= final_sparsity; default 0. */
    double final_sparsity;    /**< s_f in [0, 1); default 0.5. For a callback schedule the
                                   value its targets end at (used only to scale per-tensor
                                   overrides). */
    double exponent;          /**< p > 0 of the polynomial kind; default 3. */
    int64_t begin_step;       /**< t0 >= 0, the first event; default 0. */
    int64_t end_step;         /**< t_end, the last event: > t0 for the polynomial kind
                                   (required: the default -1 is refused there), >= t0 or
                                   -1 (no end) for the others; default -1. */
    int64_t frequency;        /**< dt >= 1, steps between events; default 100. */
    csp_schedule_fn callback; /**< Required for #CSP_SCHEDULE_CALLBACK, else NULL. */
    void *callback_user;      /**< Passed to the callback. */
} csp_schedule_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_schedule_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_options_init(csp_schedule_options *opts, size_t struct_size);

/**
 * @brief Create a schedule.
 * @param[out] out   Receives the schedule, or NULL on failure.
 * @param[in]  ctx   Context; must outlive the schedule.
 * @param[in]  opts  Options (copied); must not be NULL.
 * @return #CSP_OK, #CSP_E_NULL (out, ctx, opts, or a callback kind without
 *         callback), #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED, #CSP_E_ENUM (kind),
 *         #CSP_E_RANGE (a sparsity NaN or outside [0, 1), initial >
 *         final, exponent NaN or <= 0, begin_step < 0, frequency < 1,
 *         end_step <= begin_step for the polynomial kind or < begin_step
 *         and not -1 for the others), #CSP_E_INVALID (a callback given to
 *         another kind), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_create(csp_schedule **out, csp_context *ctx,
                                       const csp_schedule_options *opts);

/**
 * @brief Free a schedule.
 * @param[in] schedule  Schedule, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_schedule_free(csp_schedule *schedule);

/**
 * @brief Target sparsity at @p step.
 * @param[in]  schedule  Schedule.
 * @param[in]  step      Step, >= 0.
 * @param[out] target    Receives the target, in [0, 1).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (negative step, or a callback
 *         target NaN or outside [0, 1)), #CSP_E_CALLBACK.
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_target(const csp_schedule *schedule, int64_t step,
                                       double *target);

/**
 * @brief Is @p step a pruning event?
 * @param[in]  schedule  Schedule.
 * @param[in]  step      Step, >= 0.
 * @param[out] is_event  Receives 1 or 0.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (negative step).
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_is_event(const csp_schedule *schedule, int64_t step,
                                         int32_t *is_event);

/**
 * @brief The first pruning event strictly after @p step.
 * @param[in]  schedule  Schedule.
 * @param[in]  step      Step, >= -1 (-1 asks for the very first event).
 * @param[out] next      Receives the event step, or -1 when none follows.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (step < -1).
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_next_event(const csp_schedule *schedule, int64_t step,
                                           int64_t *next);

/**
 * @brief The last pruning event at or before @p step.
 * @param[in]  schedule  Schedule.
 * @param[in]  step      Step, >= 0.
 * @param[out] last      Receives the event step, or -1 when none is <= step.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (negative step).
 * @since 0.1.0
 */
CSP_API csp_status csp_schedule_last_event(const csp_schedule *schedule, int64_t step,
                                           int64_t *last);

/**
 * @brief The schedule's final sparsity (`final_sparsity` of its options).
 * @return s_f, or 0 for a NULL schedule.
 * @since 0.1.0
 */
CSP_API double csp_schedule_final_sparsity(const csp_schedule *schedule);

#ifdef __cplusplus
}
#endif

#endif /* CSP_SCHEDULE_H */
