/* The adaptive schedule (lib/prune/adaptive.c): a tensor's target at each
 * event from the schedule's increment and a multiplier that the error of
 * the previous event decides. Internal. */
#ifndef CSP_PRUNE_ADAPTIVE_H
#define CSP_PRUNE_ADAPTIVE_H

#include "prune/pruner_internal.h"

/* Is the adaptive schedule on (CSP_X_ADAPT_BOUND > 0)? */
bool csp__adapt_on(const csp_pruner *p);

/* The multiplier of the first event (the initial one, at most the max). */
double csp__adapt_first(const csp_pruner *p);

/* The schedule's target at the last event applied (0 before any, or when
 * the adaptive schedule is off). Leaves a message when a callback fails. */
csp_status csp__adapt_last_s(const csp_pruner *p, double *s_last);

/* Tensor @p pt's target at the coming event, whose schedule target is
 * @p s (@p s_last: csp__adapt_last_s()); the schedule's (scaled) target
 * when off. @p mult (may be NULL) receives the multiplier used. */
double csp__adapt_target(const csp_pruner *p, const csp__ptensor *pt, double s, double s_last,
                         double *mult);

/* After an event committed on @p pt with multiplier @p used and relative
 * error @p error: the multiplier of the next event. No-op when off. */
void csp__adapt_commit(const csp_pruner *p, csp__ptensor *pt, double used, double error);

/* Every tensor's multiplier back to the first event's (a checkpoint
 * without the adaptive state). */
void csp__adapt_reset(csp_pruner *p);

#endif
