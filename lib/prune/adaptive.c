/* The adaptive schedule (docs/guide.md, "Adaptive schedule"): the schedule's
 * events and final sparsity stay; the increment of a tensor's target at an
 * event is the schedule's increment since the last event times a
 * multiplier, which the error measured at each event (the tensor's
 * sensing_error) makes grow while it stays under the bound and shrink (or
 * hold) when it is over. Once the schedule reaches its final sparsity (its
 * last event), a tensor's target is its final target. */
#include "prune/adaptive.h"

static double clamp_max(const csp__xconf *x, double m) { return m < x->adapt_max ? m : x->adapt_max; }

bool csp__adapt_on(const csp_pruner *p) { return p->x.adapt_bound > 0.0; }

double csp__adapt_first(const csp_pruner *p) { return clamp_max(&p->x, p->x.adapt_initial); }

csp_status csp__adapt_last_s(const csp_pruner *p, double *s_last) {
    *s_last = 0.0;
    if (!csp__adapt_on(p) || p->last_event < 0)
        return CSP_OK;
    return csp__schedule_target(p->schedule, p->last_event, s_last);
}

double csp__adapt_target(const csp_pruner *p, const csp__ptensor *pt, double s, double s_last,
                         double *mult) {
    double plain = csp__tensor_target(p, pt, s);
    double m = p->last_event < 0 ? csp__adapt_first(p) : pt->adapt_mult;
    if (mult != NULL)
        *mult = m;
    if (!csp__adapt_on(p))
        return plain;
    /* The tensor's final target exactly (the scaled one may miss it by an ulp). */
    double f = pt->conf.final_sparsity;
    if (s >= p->schedule->o.final_sparsity)
        return f; /* the schedule's last event */
    double before = p->last_event < 0 ? 0.0 : pt->target;
    double base = plain - (p->last_event < 0 ? 0.0 : csp__tensor_target(p, pt, s_last));
    if (!(base > 0.0))
        return before;
    double t = before + m * base;
    return t < f ? t : f;
}

void csp__adapt_commit(const csp_pruner *p, csp__ptensor *pt, double used, double error) {
    if (!csp__adapt_on(p))
        return;
    const csp__xconf *x = &p->x;
    double m;
    if (error <= x->adapt_bound)
        m = used > 0.0 ? used * x->adapt_grow : x->adapt_initial;
    else
        m = used * x->adapt_shrink; /* NaN errors land here too */
    pt->adapt_mult = clamp_max(x, m);
}

void csp__adapt_reset(csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++)
        p->tensors[i].adapt_mult = csp__adapt_first(p);
}

CSP_API csp_status csp_pruner_target(const csp_pruner *pruner, int32_t index, double *target) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, target, "target");
    if (index < 0 || index >= pruner->num_tensors)
        return csp__error(pruner->ctx, CSP_E_RANGE,
                          "csp_pruner_target: tensor index %d is outside 0..%d", (int)index,
                          (int)pruner->num_tensors - 1);
    *target = pruner->tensors[index].target;
    return CSP_OK;
}
