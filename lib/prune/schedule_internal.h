/* Schedule internals shared with the pruner. */
#ifndef CSP_PRUNE_SCHEDULE_INTERNAL_H
#define CSP_PRUNE_SCHEDULE_INTERNAL_H

#include <csp/schedule.h>

#include "core/internal.h"

struct csp_schedule {
    csp_context *ctx;
    csp_schedule_options o; /* validated copy */
};

/* A copy owned by @p ctx's allocator (the pruner keeps its own). */
csp_status csp__schedule_clone(csp_context *ctx, const csp_schedule *src, csp_schedule **out);

/* Unchecked queries (step >= 0, or >= -1 for next_event). */
int64_t csp__schedule_last_event(const csp_schedule *s, int64_t step);
int64_t csp__schedule_next_event(const csp_schedule *s, int64_t step);
bool csp__schedule_is_event(const csp_schedule *s, int64_t step);
/* Leaves a message on the schedule's context when the callback fails. */
csp_status csp__schedule_target(const csp_schedule *s, int64_t step, double *target);

#endif
