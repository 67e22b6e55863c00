/* Sparsity schedules: closed-form targets and an arithmetic event grid. */
#include "prune/schedule_internal.h"

#include "core/abi.h"

#include <math.h>
#include <string.h>

static void schedule_defaults(void *full) {
    csp_schedule_options *o = full;
    o->kind = CSP_SCHEDULE_POLYNOMIAL;
    o->final_sparsity = 0.5;
    o->exponent = 3.0;
    o->end_step = -1;
    o->frequency = 100;
}

static const csp__struct_desc schedule_options_desc = {
    "csp_schedule_options", CSP__FIRST_SIZE_SCHEDULE_OPTIONS, sizeof(csp_schedule_options),
    schedule_defaults, false};

CSP_API csp_status csp_schedule_options_init(csp_schedule_options *opts, size_t struct_size) {
    return csp__struct_init(&schedule_options_desc, opts, struct_size);
}

static bool valid_sparsity(double s) { return s >= 0.0 && s < 1.0; /* false for NaN */ }

static csp_status check_options(csp_context *ctx, const csp_schedule_options *o) {
    const char *fn = "csp_schedule_create";
    if (o->kind != CSP_SCHEDULE_CONSTANT && o->kind != CSP_SCHEDULE_POLYNOMIAL &&
        o->kind != CSP_SCHEDULE_CALLBACK)
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown kind %d", fn, (int)o->kind);
    if (!valid_sparsity(o->initial_sparsity))
        return csp__error(ctx, CSP_E_RANGE, "%s: initial_sparsity %g is not in [0, 1)", fn,
                          o->initial_sparsity);
    if (!valid_sparsity(o->final_sparsity))
        return csp__error(ctx, CSP_E_RANGE, "%s: final_sparsity %g is not in [0, 1)", fn,
                          o->final_sparsity);
    if (o->initial_sparsity > o->final_sparsity)
        return csp__error(ctx, CSP_E_RANGE,
                          "%s: initial_sparsity %g > final_sparsity %g (masks never regrow)", fn,
                          o->initial_sparsity, o->final_sparsity);
    if (o->begin_step < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: begin_step %lld is negative", fn,
                          (long long)o->begin_step);
    if (o->frequency < 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: frequency %lld is not >= 1", fn,
                          (long long)o->frequency);
    if (o->kind == CSP_SCHEDULE_POLYNOMIAL) {
        if (!(o->exponent > 0.0) || !isfinite(o->exponent))
            return csp__error(ctx, CSP_E_RANGE, "%s: exponent %g is not a finite value > 0", fn,
                              o->exponent);
        if (o->end_step <= o->begin_step)
            return csp__error(ctx, CSP_E_RANGE,
                              "%s: end_step %lld is not after begin_step %lld (set end_step)", fn,
                              (long long)o->end_step, (long long)o->begin_step);
    } else if (o->end_step != -1 && o->end_step < o->begin_step) {
        return csp__error(ctx, CSP_E_RANGE,
                          "%s: end_step %lld is neither -1 nor >= begin_step %lld", fn,
                          (long long)o->end_step, (long long)o->begin_step);
    }
    if (o->kind == CSP_SCHEDULE_CALLBACK && o->callback == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: the callback kind needs a callback", fn);
    if (o->kind != CSP_SCHEDULE_CALLBACK && o->callback != NULL)
        return csp__error(ctx, CSP_E_INVALID, "%s: a callback was given to kind %d", fn,
                          (int)o->kind);
    return CSP_OK;
}

CSP_API csp_status csp_schedule_create(csp_schedule **out, csp_context *ctx,
                                       const csp_schedule_options *caller) {
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "csp_schedule_create: out is NULL");
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(ctx, caller, "opts");
    csp_schedule_options full;
    const csp_schedule_options *opts = &full;
    csp_status st = csp__struct_in(ctx, &schedule_options_desc, caller, &full,
                                   "csp_schedule_create");
    if (st != CSP_OK)
        return st;
    st = check_options(ctx, opts);
    if (st != CSP_OK)
        return st;
    csp_schedule *s = csp__calloc(ctx, 1, sizeof *s);
    if (s == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "csp_schedule_create: out of memory");
    s->ctx = ctx;
    s->o = full;
    *out = s;
    return CSP_OK;
}

csp_status csp__schedule_clone(csp_context *ctx, const csp_schedule *src, csp_schedule **out) {
    *out = NULL;
    csp_schedule *s = csp__calloc(ctx, 1, sizeof *s);
    if (s == NULL)
        return CSP_E_NOMEM;
    *s = *src;
    s->ctx = ctx;
    *out = s;
    return CSP_OK;
}

CSP_API void csp_schedule_free(csp_schedule *schedule) {
    if (schedule == NULL)
        return;
    csp__free(schedule->ctx, schedule);
}

/* ---- the event grid ----------------------------------------------------- */

int64_t csp__schedule_last_event(const csp_schedule *s, int64_t step) {
    const csp_schedule_options *o = &s->o;
    if (step < o->begin_step)
        return -1;
    if (o->end_step >= 0 && step >= o->end_step)
        return o->end_step;
    return step - (step - o->begin_step) % o->frequency;
}

int64_t csp__schedule_next_event(const csp_schedule *s, int64_t step) {
    const csp_schedule_options *o = &s->o;
    if (step < o->begin_step)
        return o->begin_step;
    if (o->end_step >= 0 && step >= o->end_step)
        return -1;
    int64_t k = (step - o->begin_step) / o->frequency + 1;
    /* begin + k * dt, unless that passes the end (or overflows int64). */
    int64_t next;
    if (!csp__mul_i64(k, o->frequency, &next) || !csp__add_i64(next, o->begin_step, &next))
        return o->end_step >= 0 ? o->end_step : -1;
    if (o->end_step >= 0 && next > o->end_step)
        return o->end_step;
    return next;
}

bool csp__schedule_is_event(const csp_schedule *s, int64_t step) {
    return csp__schedule_last_event(s, step) == step;
}

csp_status csp__schedule_target(const csp_schedule *s, int64_t step, double *target) {
    const csp_schedule_options *o = &s->o;
    switch (o->kind) {
    case CSP_SCHEDULE_CONSTANT:
        *target = o->final_sparsity;
        return CSP_OK;
    case CSP_SCHEDULE_POLYNOMIAL:
        if (step <= o->begin_step) {
            *target = o->initial_sparsity;
        } else if (step >= o->end_step) {
            *target = o->final_sparsity;
        } else {
            double frac = (double)(step - o->begin_step) / (double)(o->end_step - o->begin_step);
            *target = o->final_sparsity +
                      (o->initial_sparsity - o->final_sparsity) * pow(1.0 - frac, o->exponent);
        }
        return CSP_OK;
    default: {
        double t = 0.0;
        csp_status st = o->callback(o->callback_user, step, &t);
        if (st != CSP_OK)
            return csp__error(s->ctx, CSP_E_CALLBACK, "schedule callback returned %d at step %lld",
                              (int)st, (long long)step);
        if (!valid_sparsity(t))
            return csp__error(s->ctx, CSP_E_RANGE,
                              "schedule callback gave target %g at step %lld, not in [0, 1)", t,
                              (long long)step);
        *target = t;
        return CSP_OK;
    }
    }
}

/* ---- public queries ----------------------------------------------------- */

#define CHECK_QUERY(s, out, step, min_step)                                                        \
    do {                                                                                           \
        if ((s) == NULL)                                                                           \
            return CSP_E_NULL;                                                                     \
        CSP_CHECK_NULL((s)->ctx, out, #out);                                                       \
        if ((step) < (min_step))                                                                   \
            return csp__error((s)->ctx, CSP_E_RANGE, "%s: step %lld is not >= %d", __func__,       \
                              (long long)(step), (int)(min_step));                                 \
    } while (0)

CSP_API csp_status csp_schedule_target(const csp_schedule *schedule, int64_t step, double *target) {
    CHECK_QUERY(schedule, target, step, 0);
    return csp__schedule_target(schedule, step, target);
}

CSP_API csp_status csp_schedule_is_event(const csp_schedule *schedule, int64_t step,
                                         int32_t *is_event) {
    CHECK_QUERY(schedule, is_event, step, 0);
    *is_event = csp__schedule_is_event(schedule, step) ? 1 : 0;
    return CSP_OK;
}

CSP_API csp_status csp_schedule_next_event(const csp_schedule *schedule, int64_t step,
                                           int64_t *next) {
    CHECK_QUERY(schedule, next, step, -1);
    *next = csp__schedule_next_event(schedule, step);
    return CSP_OK;
}

CSP_API csp_status csp_schedule_last_event(const csp_schedule *schedule, int64_t step,
                                           int64_t *last) {
    CHECK_QUERY(schedule, last, step, 0);
    *last = csp__schedule_last_event(schedule, step);
    return CSP_OK;
}

CSP_API double csp_schedule_final_sparsity(const csp_schedule *schedule) {
    return schedule == NULL ? 0.0 : schedule->o.final_sparsity;
}
