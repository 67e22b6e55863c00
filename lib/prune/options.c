/* The pruner's options table (lib/prune/options.h) and what it drives:
 * defaults, validation, csp_pruner_option_info(). */
#include "prune/options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

#define P_OFF(m) offsetof(csp_pruner_options, m)
#define T_OFF(m) offsetof(csp_pruner_tensor_options, m)
#define X_OFF(m) offsetof(csp__xconf, m)
#define BOTH(m) {P_OFF(m), T_OFF(m), -1}
#define TONLY(m) {-1, T_OFF(m), -1}
#define XONLY(m) {-1, -1, X_OFF(m)}

#define SENSING_ROW(member, type, def, lo, hi, fl, pfl, en, doc)                             \
    {"sensing." #member, doc, en, CSP_OPTION_##type, (fl) | (pfl), 0, BOTH(sensing.member), lo, \
     hi, def, offsetof(csp_sensing_options, member)},
#define SOLVER_ROW(member, type, def, lo, hi, fl, pfl, en, doc)                              \
    {"solver." #member, doc, en, CSP_OPTION_##type, (fl) | (pfl), 0, BOTH(solver.member), lo,   \
     hi, def, offsetof(csp_solver_options, member)},

const csp__option csp__pruner_options[] = {
    {"granularity", "how the sparsity budget is spread", "csp_granularity", CSP_OPTION_ENUM, 0, 0,
     BOTH(granularity), CSP_GRANULARITY_TENSOR, CSP_GRANULARITY_NM, CSP_GRANULARITY_TENSOR, -1},
    {"nm_n", "N of N:M (at most N kept in every M)", "", CSP_OPTION_INT32, CSP__OPTION_NM_ONLY, 0,
     BOTH(nm_n), 1, CSP_NM_MAX_M - 1, 2, -1},
    {"nm_m", "M of N:M", "", CSP_OPTION_INT32, CSP__OPTION_NM_ONLY, 0, BOTH(nm_m), 2, CSP_NM_MAX_M,
     4, -1},
    {"correction", "how a CSP event sets the weights it keeps", "csp_correction", CSP_OPTION_ENUM,
     CSP_OPTION_CSP_ONLY, 0, BOTH(correction), CSP_CORRECTION_NONE, CSP_CORRECTION_BLEND,
     CSP_CORRECTION_FULL, -1},
    {"block_size", "block length of rank-1 CSP tensors", "", CSP_OPTION_INT32,
     CSP_OPTION_CSP_ONLY | CSP__OPTION_RANK1_ONLY, 0, BOTH(block_size), 1, CSP_SENSING_MAX_N,
     CSP_DEFAULT_BLOCK_SIZE, -1},
    {"exclude", "1: never pruned nor masked", "", CSP_OPTION_INT32, 0, 0, TONLY(exclude), 0, 1,
     0, -1},
    {"group", "global group id (GLOBAL granularity)", "", CSP_OPTION_INT32,
     CSP__OPTION_GLOBAL_ONLY, 0, TONLY(group), 0, 2147483647.0, 0, -1},
    {"final_sparsity", "the tensor's final sparsity (default: the schedule's)", "",
     CSP_OPTION_DOUBLE, CSP_OPTION_MAX_OPEN, 0, TONLY(final_sparsity), 0.0, 1.0, NAN, -1},
    CSP__SENSING_OPTIONS(SENSING_ROW) CSP__SOLVER_OPTIONS(SOLVER_ROW)
    /* Experimental (<csp/experimental.h>). */
    {"shrink", "between-event shrink tau; 0 = off", "", CSP_OPTION_DOUBLE,
     CSP_OPTION_EXPERIMENTAL | CSP_OPTION_TENSOR, CSP_X_SHRINK, XONLY(shrink), 0.0, 1.0, 0.0, -1},
    {"support", "where a CSP event's support comes from", "csp_support", CSP_OPTION_ENUM,
     CSP_OPTION_EXPERIMENTAL | CSP_OPTION_TENSOR | CSP_OPTION_CSP_ONLY, CSP_X_SUPPORT,
     XONLY(support), CSP_SUPPORT_SOLVER, CSP_SUPPORT_WANDA, CSP_SUPPORT_SOLVER, -1},
    {"redraw", "random sensing: 1 = a new Phi at every event", "", CSP_OPTION_INT32,
     CSP_OPTION_EXPERIMENTAL | CSP_OPTION_TENSOR | CSP_OPTION_CSP_ONLY, CSP_X_REDRAW,
     XONLY(redraw), 0, 1, 0, -1},
    {"observe_window", "activations: observe the last steps before each event; 0 = all", "",
     CSP_OPTION_INT32, CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_OBSERVE_WINDOW,
     XONLY(observe_window), 0, 2147483647.0, 0, -1},
    {"alpha", "blend factor of CSP_CORRECTION_BLEND", "", CSP_OPTION_DOUBLE,
     CSP_OPTION_EXPERIMENTAL | CSP_OPTION_TENSOR | CSP_OPTION_CSP_ONLY, CSP_X_ALPHA,
     XONLY(alpha), 0.0, 1.0, 0.1, -1},
    /* The adaptive schedule (lib/prune/adaptive.c): one block, params 20..29. */
    {"adapt_bound", "adaptive schedule: bound on an event's relative error; 0 = off", "",
     CSP_OPTION_DOUBLE, CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_ADAPT_BOUND,
     XONLY(adapt_bound), 0.0, 1000.0, 0.0, -1},
    {"adapt_initial", "adaptive schedule: first increment multiplier", "", CSP_OPTION_DOUBLE,
     CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_ADAPT_INITIAL,
     XONLY(adapt_initial), 0.0, 100.0, 1.0, -1},
    {"adapt_max", "adaptive schedule: largest increment multiplier", "", CSP_OPTION_DOUBLE,
     CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_ADAPT_MAX, XONLY(adapt_max), 0.0,
     100.0, 3.0, -1},
    {"adapt_grow", "adaptive schedule: multiplier growth under the bound", "", CSP_OPTION_DOUBLE,
     CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_ADAPT_GROW, XONLY(adapt_grow), 1.0,
     100.0, 2.0, -1},
    {"adapt_shrink", "adaptive schedule: multiplier factor over the bound; 0 = hold", "",
     CSP_OPTION_DOUBLE, CSP_OPTION_EXPERIMENTAL | CSP__OPTION_PRUNER_WIDE, CSP_X_ADAPT_SHRINK,
     XONLY(adapt_shrink), 0.0, 1.0, 0.1, -1},
};
const size_t csp__num_pruner_options = sizeof csp__pruner_options / sizeof csp__pruner_options[0];
_Static_assert(sizeof csp__pruner_options / sizeof csp__pruner_options[0] <= CSP__MAX_OPTIONS,
               "raise CSP__MAX_OPTIONS");

const csp__option *csp__experimental_row(int32_t param) {
    for (size_t i = 0; i < csp__num_pruner_options; i++)
        if (csp__pruner_options[i].param == param && param != 0)
            return &csp__pruner_options[i];
    return NULL;
}

void csp__xconf_defaults(csp__xconf *x) {
    memset(x, 0, sizeof *x);
    csp__options_defaults(csp__pruner_options, csp__num_pruner_options, CSP__SLOT_X, x);
}

/* ---- the structs' descriptors ---------------------------------------------------- */

static void pruner_defaults(void *full) {
    csp_pruner_options *o = full;
    o->sensing.struct_size = sizeof o->sensing;
    o->solver.struct_size = sizeof o->solver;
    csp__options_defaults(csp__pruner_options, csp__num_pruner_options, CSP__SLOT_PRUNER, o);
}

const csp__struct_desc csp__pruner_options_desc = {
    "csp_pruner_options", CSP__FIRST_SIZE_PRUNER_OPTIONS, sizeof(csp_pruner_options),
    pruner_defaults, false};
/* No defaults of their own: _init copies the pruner's. */
const csp__struct_desc csp__pruner_tensor_options_desc = {
    "csp_pruner_tensor_options", CSP__FIRST_SIZE_PRUNER_TENSOR_OPTIONS,
    sizeof(csp_pruner_tensor_options), NULL, false};
const csp__struct_desc csp__tensor_stats_desc = {"csp_tensor_stats", CSP__FIRST_SIZE_TENSOR_STATS,
                                                 sizeof(csp_tensor_stats), NULL, false};
const csp__struct_desc csp__step_stats_desc = {"csp_step_stats", CSP__FIRST_SIZE_STEP_STATS,
                                               sizeof(csp_step_stats), NULL, false};
static const csp__struct_desc option_info_desc = {"csp_option_info", CSP__FIRST_SIZE_OPTION_INFO,
                                                  sizeof(csp_option_info), NULL, false};

CSP_API csp_status csp_pruner_options_init(csp_pruner_options *opts, size_t struct_size) {
    return csp__struct_init(&csp__pruner_options_desc, opts, struct_size);
}

CSP_API csp_status csp_step_stats_init(csp_step_stats *stats, size_t struct_size) {
    return csp__struct_init(&csp__step_stats_desc, stats, struct_size);
}

CSP_API csp_status csp_tensor_stats_init(csp_tensor_stats *stats, size_t struct_size) {
    return csp__struct_init(&csp__tensor_stats_desc, stats, struct_size);
}

CSP_API csp_status csp_option_info_init(csp_option_info *info, size_t struct_size) {
    return csp__struct_init(&option_info_desc, info, struct_size);
}

/* ---- validation -------------------------------------------------------------------- */

/* N:M, shared by the pruner's and a tensor's options. */
static csp_status check_nm(csp_context *ctx, const char *fn, const char *prefix, int32_t nm_n,
                           int32_t nm_m) {
    if (nm_n >= nm_m)
        return csp__error(ctx, CSP_E_RANGE, "%s: %sN:M = %d:%d needs N < M", fn, prefix, (int)nm_n,
                          (int)nm_m);
    return CSP_OK;
}

csp_status csp__pruner_options_check(csp_context *ctx, const char *fn,
                                     const csp_pruner_options *o) {
    static const size_t keep[3] = {0, P_OFF(sensing.struct_size), P_OFF(solver.struct_size)};
    csp_status st = csp__options_unknown_zero(ctx, fn, "", csp__pruner_options,
                                              csp__num_pruner_options, CSP__SLOT_PRUNER, o,
                                              sizeof *o - CSP__GROWTH_TAIL, keep, 3);
    if (st == CSP_OK)
        st = csp__options_check(ctx, fn, "", csp__pruner_options, csp__num_pruner_options,
                                CSP__SLOT_PRUNER, o);
    return st == CSP_OK ? check_nm(ctx, fn, "", o->nm_n, o->nm_m) : st;
}

csp_status csp__tensor_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp_pruner_tensor_options *o) {
    static const size_t keep[3] = {0, T_OFF(sensing.struct_size), T_OFF(solver.struct_size)};
    csp_status st = csp__options_unknown_zero(ctx, fn, prefix, csp__pruner_options,
                                              csp__num_pruner_options, CSP__SLOT_TENSOR, o,
                                              sizeof *o - CSP__GROWTH_TAIL, keep, 3);
    if (st == CSP_OK)
        st = csp__options_check(ctx, fn, prefix, csp__pruner_options, csp__num_pruner_options,
                                CSP__SLOT_TENSOR, o);
    return st == CSP_OK ? check_nm(ctx, fn, prefix, o->nm_n, o->nm_m) : st;
}

/* ---- introspection ------------------------------------------------------------------ */

CSP_API int32_t csp_pruner_option_count(void) { return (int32_t)csp__num_pruner_options; }

CSP_API csp_status csp_pruner_option_info(int32_t index, csp_option_info *info) {
    if (info == NULL)
        return CSP_E_NULL;
    csp_status st = csp__struct_out_check(NULL, &option_info_desc, info, "csp_pruner_option_info");
    if (st != CSP_OK)
        return st;
    if (index < 0 || (size_t)index >= csp__num_pruner_options)
        return CSP_E_RANGE;
    const csp__option *o = &csp__pruner_options[index];
    csp_option_info x;
    memset(&x, 0, sizeof x);
    x.name = o->name;
    x.description = o->doc;
    x.enum_name = o->enum_name;
    x.type = o->type;
    x.flags = o->flags & 0xffff;
    if (o->off[CSP__SLOT_PRUNER] >= 0)
        x.flags |= CSP_OPTION_PRUNER;
    if (o->off[CSP__SLOT_TENSOR] >= 0)
        x.flags |= CSP_OPTION_TENSOR;
    x.pruner_offset = o->off[CSP__SLOT_PRUNER];
    x.tensor_offset = o->off[CSP__SLOT_TENSOR];
    x.param = o->param;
    x.min = o->min;
    x.max = o->max;
    x.default_value = o->def;
    x.member_offset = o->member;
    csp__struct_out(&option_info_desc, &x, info);
    return CSP_OK;
}
