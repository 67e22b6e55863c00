/*
 * Pruning strategies: how one tensor's new mask (and, for some, corrected
 * weights) are chosen at a pruning event. A tensor's strategy is chosen once
 * from csp__strategies[] when its configuration is set (add_tensor, or
 * attaching/detaching a sensing operator), zstd-style; the event
 * (lib/prune/event.c) only calls through the table. Adding a strategy: a
 * file lib/prune/strategy_<name>.c with a csp__strategy, an id below, a
 * line in csp__strategy_choose(). Internal.
 *
 * An event is a transaction: every tensor's plan() runs first and may fail;
 * it writes only its tensor's `next` mask and its csp__tplan. Only when
 * every plan succeeded do the masks swap and every commit() run; commit()
 * cannot fail. On failure discard() releases the plans and nothing of the
 * pruner, the host's buffers or the strategies' state has changed.
 */
#ifndef CSP_PRUNE_STRATEGY_H
#define CSP_PRUNE_STRATEGY_H

#include "prune/pruner_internal.h"

/* What one tensor's plan holds until the commit. */
typedef struct csp__tplan {
    double target;      /* the tensor's target sparsity at this event */
    double adapt_mult;  /* the adaptive schedule's multiplier behind it */
    double seconds;     /* time of plan() and commit() */
    csp__tstats stats;  /* this event's error and solver statistics */
    /* "cs": corrected values of the rows solved (nc x n, NULL: none), the rows,
     * the new ISTA/FISTA lambdas (NULL for OMP). */
    float *x;
    int64_t *sel;
    int64_t nc;
    double *lambda;
} csp__tplan;

typedef struct csp__event {
    csp_pruner *p;
    int64_t e;         /* the schedule event */
    int64_t step;      /* the csp_step() step */
    double s;          /* the schedule's target at e */
    csp__tplan *plans; /* one per tensor */
} csp__event;

typedef struct csp__strategy {
    const char *name;
    /* Create the strategy's state of tensor @p index (NULL: none). Leaves a message. */
    csp_status (*bind)(csp_pruner *p, int32_t index);
    /* Free it (NULL: none). */
    void (*unbind)(csp_context *ctx, csp__ptensor *pt);
    /* Phase 1 (may fail, with a message naming the tensor): the new mask into
     * pt->next and the rest into ev->plans[index]. */
    csp_status (*plan)(csp__event *ev, int32_t index);
    /* Phase 2 (masks already swapped, not yet applied): write what the plan
     * holds. Cannot fail. NULL: nothing to write. */
    void (*commit)(csp__event *ev, int32_t index);
    /* Release a plan (after a commit or a failure). NULL: nothing held. */
    void (*discard)(csp__event *ev, int32_t index);
} csp__strategy;

enum csp__strategy_id {
    CSP__STRATEGY_MAGNITUDE = 0, /* GMP: the largest |w| at every granularity */
    CSP__STRATEGY_CS = 1,        /* compressed sensing: sensing + solver + correction per row */
    CSP__NUM_STRATEGIES
};

extern const csp__strategy csp__strategy_magnitude, csp__strategy_cs;
extern const csp__strategy *const csp__strategies[CSP__NUM_STRATEGIES];

/* The strategy of tensor @p pt's configuration; @p attached: a host operator
 * is attached. */
enum csp__strategy_id csp__strategy_choose(const csp__ptensor *pt, bool attached);

/* Switch tensor @p index to the strategy its configuration chooses now,
 * binding the new state before releasing the old (so a failure changes
 * nothing). */
csp_status csp__strategy_rebind(csp_pruner *p, int32_t index, bool attached);

/* A non-event step of the "cs" strategy's tensors: log CSP_LOG_WARN, once
 * per tensor and coming event, when the tensor's operator will not be ready
 * for that event (activations not observed, user Gram not set) although
 * the host should have fed it by now (the observation window is open). */
void csp__cs_warn_unready(csp_pruner *p, int64_t step);

#endif /* CSP_PRUNE_STRATEGY_H */
