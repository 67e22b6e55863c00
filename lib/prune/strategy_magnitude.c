/* Strategy "magnitude" (gradual magnitude pruning, GMP): every tensor keeps
 * its largest |w| at its granularity; a global group is selected at its
 * first member. Errors are those of G = I. */
#include "prune/strategy.h"

#include <math.h>

#include "prune/mask.h"
#include "select/select.h"

static csp__select_src src_of(const csp__ptensor *pt) {
    csp__select_src s = {pt->weight, pt->mask, pt->next};
    return s;
}

static bool in_group(const csp__ptensor *o, int32_t group) {
    return !csp__excluded(o) && o->conf.granularity == CSP_GRANULARITY_GLOBAL &&
           o->conf.group == group && o->strategy == &csp__strategy_magnitude;
}

/* Select global group @p group over tensors index.. (the first member is
 * @p index). */
static csp_status select_group(csp_pruner *p, int32_t index, double ts) {
    csp_context *ctx = p->ctx;
    int32_t group = p->tensors[index].conf.group;
    csp__select_src *srcs = csp__calloc(ctx, (size_t)p->num_tensors, sizeof *srcs);
    if (srcs == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "csp_step: out of memory");
    int32_t ng = 0;
    int64_t total = 0;
    for (int32_t j = index; j < p->num_tensors; j++) {
        const csp__ptensor *o = &p->tensors[j];
        if (!in_group(o, group))
            continue;
        srcs[ng++] = src_of(o);
        total += o->weight->numel;
    }
    csp_status st = csp__select_topk(ctx, srcs, ng, total - csp__round_count(ts, total));
    csp__free(ctx, srcs);
    return st;
}

/* Weight-domain errors of the selection (G = I), from the weights, the
 * current mask and the planned one. */
static void event_errors(const csp__ptensor *pt, double *weight_err, double *sensing_err) {
    double ww, ee; /* one SIMD pass, fixed summation order (prune/mask.c) */
    csp__mask_energy(pt->weight, pt->mask, pt->next, &ww, &ee);
    *weight_err = ww > 0.0 ? sqrt(ee / ww) : 0.0;
    *sensing_err = ww > 0.0 ? ee / ww : 0.0;
}

/* The error of a selection that met a NaN or infinity: names the tensor
 * (for a global group, the first member that holds one). */
static csp_status nonfinite(const csp_pruner *p, int32_t index) {
    const csp__ptensor *pt = &p->tensors[index];
    int32_t bad = index;
    if (pt->conf.granularity == CSP_GRANULARITY_GLOBAL) {
        for (int32_t j = index; j < p->num_tensors; j++)
            if (in_group(&p->tensors[j], pt->conf.group) &&
                !csp__all_finite(p->tensors[j].weight)) {
                bad = j;
                break;
            }
    }
    return csp__error(p->ctx, CSP_E_NONFINITE,
                      "csp_step: tensor %d ('%s') holds a NaN or infinity; nothing was changed",
                      (int)bad, csp_tensor_name(p->tensors[bad].weight));
}

static csp_status plan(csp__event *ev, int32_t index) {
    csp_pruner *p = ev->p;
    csp_context *ctx = p->ctx;
    csp__ptensor *pt = &p->tensors[index];
    csp__tplan *pl = &ev->plans[index];
    const csp_tensor *w = pt->weight;
    const csp_pruner_tensor_options *c = &pt->conf;
    double ts = pl->target;
    csp__select_src src = src_of(pt);
    csp_status st = CSP_OK;
    switch (c->granularity) {
    case CSP_GRANULARITY_TENSOR:
        st = csp__select_topk(ctx, &src, 1, w->numel - csp__round_count(ts, w->numel));
        break;
    case CSP_GRANULARITY_ROW:
        st = csp__select_rows(ctx, &src, w->cols - csp__round_count(ts, w->cols));
        break;
    case CSP_GRANULARITY_NM: {
        int64_t z = csp__round_count(ts, c->nm_m);
        if (z > c->nm_m - c->nm_n)
            z = c->nm_m - c->nm_n;
        st = csp__select_nm(ctx, &src, c->nm_m, (int32_t)(c->nm_m - z));
        break;
    }
    default: { /* GLOBAL: the group is selected at its first member */
        bool first = true;
        for (int32_t j = 0; j < index && first; j++)
            first = !in_group(&p->tensors[j], c->group);
        if (first)
            st = select_group(p, index, ts);
        break;
    }
    }
    if (st == CSP_E_NONFINITE)
        return nonfinite(p, index);
    if (st != CSP_OK)
        return st;
    event_errors(pt, &pl->stats.weight_error, &pl->stats.sensing_error);
    return CSP_OK;
}

const csp__strategy csp__strategy_magnitude = {"magnitude", NULL, NULL, plan, NULL, NULL};
