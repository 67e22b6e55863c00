/*
 * The pruner's options table (docs/internals.md, "Options"): every option of
 * csp_pruner_options, csp_pruner_tensor_options and the experimental
 * parameters, once. It drives the defaults, the validation of the pruner's
 * and each tensor's options, the checkpoint's comparison of the
 * configuration (lib/io/ckpt_cs.c) and csp_pruner_option_info(), from which
 * the Python binding builds its keywords. Internal.
 */
#ifndef CSP_PRUNE_OPTIONS_H
#define CSP_PRUNE_OPTIONS_H

#ifndef CSP_EXPERIMENTAL_API
#define CSP_EXPERIMENTAL_API
#endif
#include <csp/experimental.h>

#include "core/abi.h"
#include "core/options.h"

/* The experimental parameters of a tensor, or of the pruner (its defaults
 * for added tensors, and the pruner-wide observe_window). */
typedef struct csp__xconf {
    double shrink;
    double alpha;
    int32_t support;
    int32_t redraw;
    int32_t observe_window;
    /* The adaptive schedule (pruner-wide; lib/prune/adaptive.c). */
    double adapt_bound, adapt_initial, adapt_max, adapt_grow, adapt_shrink;
} csp__xconf;

/* Slots of a row's offsets. */
enum { CSP__SLOT_PRUNER = 0, CSP__SLOT_TENSOR = 1, CSP__SLOT_X = 2 };

/* Extra flags of rows (not in csp_option_info::flags). PRUNER_WIDE: the
 * experimental parameter is pruner-wide (index -1 only). The others say
 * when a tensor's value matters (the checkpoint compares only those): for
 * rank-1 tensors, for N:M granularity, for global groups. */
#define CSP__OPTION_PRUNER_WIDE 0x10000
#define CSP__OPTION_RANK1_ONLY 0x20000
#define CSP__OPTION_NM_ONLY 0x40000
#define CSP__OPTION_GLOBAL_ONLY 0x80000

/* Room for the table (a checkpoint check keeps one flag per row on the
 * stack). */
#define CSP__MAX_OPTIONS 128

extern const csp__option csp__pruner_options[];
extern const size_t csp__num_pruner_options;

/* The row of experimental parameter @p param, or NULL. */
const csp__option *csp__experimental_row(int32_t param);

extern const csp__struct_desc csp__pruner_options_desc, csp__pruner_tensor_options_desc,
    csp__tensor_stats_desc, csp__step_stats_desc;

/* Library defaults of the experimental parameters. */
void csp__xconf_defaults(csp__xconf *x);

/* Validate a pruner's options (table rows, reserved words, N:M). */
csp_status csp__pruner_options_check(csp_context *ctx, const char *fn,
                                     const csp_pruner_options *o);

/* Validate a tensor's options (table rows, reserved words, N:M); @p prefix
 * names the tensor in messages. */
csp_status csp__tensor_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp_pruner_tensor_options *o);

#endif /* CSP_PRUNE_OPTIONS_H */
