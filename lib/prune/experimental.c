/* The experimental parameters (<csp/experimental.h>): set and read through
 * the options table's experimental rows (lib/prune/options.c). */
#include "prune/pruner_internal.h"

#include <stdio.h>

static csp_status find_param(const csp_pruner *p, int32_t index, int32_t param,
                             const csp__option **row, const char *fn) {
    *row = csp__experimental_row(param);
    if (*row == NULL)
        return csp__error(p->ctx, CSP_E_ENUM, "%s: %d is not a csp_experimental_param", fn,
                          (int)param);
    if (index < -1 || index >= p->num_tensors)
        return csp__error(p->ctx, CSP_E_RANGE, "%s: tensor index %d is outside -1..%d", fn,
                          (int)index, (int)p->num_tensors - 1);
    if (index >= 0 && ((*row)->flags & CSP__OPTION_PRUNER_WIDE))
        return csp__error(p->ctx, CSP_E_INVALID,
                          "%s: %s is a pruner-wide parameter: set it with index -1", fn,
                          (*row)->name);
    return CSP_OK;
}

static csp_status pruner_set_experimental_unguarded(csp_pruner *pruner, int32_t index,
                                                    int32_t param, double value) {
    static const char fn[] = "csp_pruner_set_experimental";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    const csp__option *row;
    csp_status st = find_param(pruner, index, param, &row, fn);
    if (st != CSP_OK)
        return st;
    if (pruner->last_step >= 0)
        return csp__error(ctx, CSP_E_STATE,
                          "%s: experimental parameters are set before the first csp_step()", fn);
    char got[40];
    csp__option_format(row, value, got, sizeof got);
    if (!csp__option_valid(row, value))
        return csp__error(ctx, row->type == CSP_OPTION_ENUM ? CSP_E_ENUM : CSP_E_RANGE,
                          "%s: %s = %s is outside its range (see <csp/experimental.h>)", fn,
                          row->name, got);
    csp__xconf *x = index < 0 ? &pruner->x : &pruner->tensors[index].x;
    if (index >= 0) {
        csp__ptensor *pt = &pruner->tensors[index];
        if (csp__excluded(pt))
            return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d is excluded", fn, (int)index);
        if (param == CSP_X_SHRINK && value > 0.0) {
            if (pt->conf.granularity != CSP_GRANULARITY_ROW)
                return csp__error(ctx, CSP_E_UNSUPPORTED,
                                  "%s: the between-event shrink needs CSP_GRANULARITY_ROW; tensor "
                                  "%d has granularity %d",
                                  fn, (int)index, (int)pt->conf.granularity);
            st = csp__shrink_reserve(pruner, csp__shrink_row_length(pt), fn);
            if (st != CSP_OK)
                return st;
        }
    }
    csp__option_set(row, CSP__SLOT_X, x, value);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_set_experimental(csp_pruner *pruner, int32_t index, int32_t param,
                                               double value) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_set_experimental",
                 pruner_set_experimental_unguarded(pruner, index, param, value));
}

CSP_API csp_status csp_pruner_get_experimental(const csp_pruner *pruner, int32_t index,
                                               int32_t param, double *value) {
    static const char fn[] = "csp_pruner_get_experimental";
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, value, "value");
    const csp__option *row;
    csp_status st = find_param(pruner, index, param, &row, fn);
    if (st != CSP_OK)
        return st;
    const csp__xconf *x = index < 0 ? &pruner->x : &pruner->tensors[index].x;
    *value = csp__option_get(row, CSP__SLOT_X, x);
    return CSP_OK;
}
