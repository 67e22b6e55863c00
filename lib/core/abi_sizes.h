/*
 * The first released size of every versioned struct: the smallest
 * struct_size (or csp_solver_batch::stats_size) the library accepts, in one
 * place (docs/abi.md, "Growing a struct"). Internal.
 *
 * A struct's first size is its size up to the last member it had in the
 * release that introduced it, rounded up to its alignment. When a release
 * appends members to a struct, its entry here does NOT change. A struct
 * introduced by a later release gets a new line naming its last member in
 * that release. Members appended later must begin at or after the first
 * size (add an explicit reserved member when the old layout ended in
 * padding), and must not need a larger alignment.
 */
#ifndef CSP_CORE_ABI_SIZES_H
#define CSP_CORE_ABI_SIZES_H

#include <csp/csp.h>

#include <stddef.h>

/* Size of struct @p T up to and including member @p last, rounded up to
 * T's alignment. */
#define CSP__SIZE_UPTO(T, last)                                                      \
    ((offsetof(T, last) + sizeof(((T *)0)->last) + _Alignof(T) - 1) / _Alignof(T) *    \
     _Alignof(T))

/* 0.1.0 */
#define CSP__FIRST_SIZE_CONTEXT_OPTIONS CSP__SIZE_UPTO(csp_context_options, seed)
#define CSP__FIRST_SIZE_SCHEDULE_OPTIONS CSP__SIZE_UPTO(csp_schedule_options, callback_user)
#define CSP__FIRST_SIZE_SENSING_OPTIONS CSP__SIZE_UPTO(csp_sensing_options, reserved)
#define CSP__FIRST_SIZE_SOLVER_OPTIONS CSP__SIZE_UPTO(csp_solver_options, reserved)
#define CSP__FIRST_SIZE_SOLVER_BATCH CSP__SIZE_UPTO(csp_solver_batch, warm_start)
#define CSP__FIRST_SIZE_ROW_STATS CSP__SIZE_UPTO(csp_row_stats, flags)
#define CSP__FIRST_SIZE_PRUNER_OPTIONS CSP__SIZE_UPTO(csp_pruner_options, solver)
#define CSP__FIRST_SIZE_PRUNER_TENSOR_OPTIONS CSP__SIZE_UPTO(csp_pruner_tensor_options, solver)
#define CSP__FIRST_SIZE_OPTION_INFO CSP__SIZE_UPTO(csp_option_info, member_offset)
#define CSP__FIRST_SIZE_TENSOR_STATS CSP__SIZE_UPTO(csp_tensor_stats, observe_seconds)
#define CSP__FIRST_SIZE_STEP_STATS CSP__SIZE_UPTO(csp_step_stats, observe_seconds)
#define CSP__FIRST_SIZE_EXPORT_OPTIONS CSP__SIZE_UPTO(csp_export_options, nm_m)
#define CSP__FIRST_SIZE_EXPORT_STATS CSP__SIZE_UPTO(csp_export_stats, ratio)
#define CSP__FIRST_SIZE_EXPORT_INFO CSP__SIZE_UPTO(csp_export_info, bytes)
#define CSP__FIRST_SIZE_SPARSE_OPTIONS CSP__SIZE_UPTO(csp_sparse_options, nm_m)
#define CSP__FIRST_SIZE_SPARSE_INFO CSP__SIZE_UPTO(csp_sparse_info, nm_bits)

#endif /* CSP_CORE_ABI_SIZES_H */
