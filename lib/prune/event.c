/* A pruning event as one transaction (lib/prune/strategy.h): plan every
 * tensor, then commit every tensor, then apply the masks. */
#include "prune/strategy.h"

#include <string.h>

#include "prune/adaptive.h"
#include "prune/mask.h"

const csp__strategy *const csp__strategies[CSP__NUM_STRATEGIES] = {
    [CSP__STRATEGY_MAGNITUDE] = &csp__strategy_magnitude,
    [CSP__STRATEGY_CS] = &csp__strategy_cs,
};

enum csp__strategy_id csp__strategy_choose(const csp__ptensor *pt, bool attached) {
    if (attached || pt->conf.sensing.kind != CSP_SENSING_IDENTITY)
        return CSP__STRATEGY_CS;
    return CSP__STRATEGY_MAGNITUDE;
}

csp_status csp__strategy_rebind(csp_pruner *p, int32_t index, bool attached) {
    csp__ptensor *pt = &p->tensors[index];
    const csp__strategy *want = csp__strategies[csp__strategy_choose(pt, attached)];
    if (want == pt->strategy)
        return CSP_OK;
    const csp__strategy *old = pt->strategy;
    csp__pcs *old_cs = pt->cs;
    pt->cs = NULL;
    if (want->bind != NULL) {
        csp_status st = want->bind(p, index);
        if (st != CSP_OK) {
            pt->cs = old_cs;
            return st;
        }
    }
    csp__pcs *new_cs = pt->cs;
    pt->cs = old_cs;
    if (old != NULL && old->unbind != NULL)
        old->unbind(p->ctx, pt);
    pt->cs = new_cs;
    pt->strategy = want;
    return CSP_OK;
}

void csp__apply_all(csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (csp__excluded(pt))
            continue;
        csp__mask_apply(p->ctx, pt->weight, pt->mask);
        for (int32_t c = 0; c < pt->companions.n; c++)
            csp__mask_apply(p->ctx, pt->companions.v[c], pt->mask);
    }
}

static void discard_all(csp__event *ev, int32_t upto) {
    for (int32_t i = 0; i < upto; i++) {
        const csp__ptensor *pt = &ev->p->tensors[i];
        if (pt->strategy != NULL && pt->strategy->discard != NULL)
            pt->strategy->discard(ev, i);
    }
}

/* Phase 2 for tensor @p i: the new mask becomes current, the strategy
 * writes what it planned, the statistics are committed. */
static void commit_one(csp__event *ev, int32_t i) {
    csp_pruner *p = ev->p;
    csp__ptensor *pt = &p->tensors[i];
    csp__tplan *plan = &ev->plans[i];
    double t0 = csp__now();
    uint64_t *old = pt->mask;
    pt->mask = pt->next;
    pt->next = old;
    pt->nnz = csp__mask_popcount(pt->mask, pt->weight->numel);
    pt->target = plan->target;
    pt->last_event = ev->e;
    if (pt->strategy->commit != NULL)
        pt->strategy->commit(ev, i);
    csp__tstats *ts = &pt->stats;
    int64_t events = ts->events;
    double total = ts->total_seconds, observe = ts->observe_seconds;
    *ts = plan->stats;
    ts->observe_seconds = observe;
    ts->events = events + 1;
    ts->event_seconds = plan->seconds + (csp__now() - t0);
    ts->total_seconds = total + ts->event_seconds;
    csp__adapt_commit(p, pt, plan->adapt_mult, plan->stats.sensing_error);
}

csp_status csp__event_run(csp_pruner *p, int64_t e, int64_t step) {
    csp_context *ctx = p->ctx;
    csp__event ev = {p, e, step, 0.0, NULL};
    double s_last = 0.0;
    csp_status st = csp__schedule_target(p->schedule, e, &ev.s);
    if (st == CSP_OK)
        st = csp__adapt_last_s(p, &s_last);
    if (st != CSP_OK)
        return st;
    int32_t nt = p->num_tensors;
    ev.plans = csp__calloc(ctx, (size_t)(nt > 0 ? nt : 1), sizeof *ev.plans);
    if (ev.plans == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "csp_step: out of memory");
    /* Phase 1: every plan; the first failure discards them all. */
    for (int32_t i = 0; i < nt; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (pt->strategy == NULL)
            continue;
        ev.plans[i].target = csp__adapt_target(p, pt, ev.s, s_last, &ev.plans[i].adapt_mult);
        double t0 = csp__now();
        st = pt->strategy->plan(&ev, i);
        ev.plans[i].seconds += csp__now() - t0;
        if (st != CSP_OK) {
            discard_all(&ev, i + 1);
            csp__free(ctx, ev.plans);
            return st;
        }
    }
    /* Phase 2: nothing below can fail. */
    for (int32_t i = 0; i < nt; i++)
        if (p->tensors[i].strategy != NULL)
            commit_one(&ev, i);
    discard_all(&ev, nt);
    csp__free(ctx, ev.plans);
    csp__apply_all(p);
    p->last_event = e;
    csp__log(ctx, CSP_LOG_INFO, "csp_step: pruning event %lld at step %lld, target %.6f",
             (long long)e, (long long)step, ev.s);
    return CSP_PRUNED;
}
