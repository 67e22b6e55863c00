/* The pruner: tensors, masks, schedule; csp_step() (the event itself is
 * lib/prune/event.c, the strategies lib/prune/strategy_*.c). */
#include "prune/pruner_internal.h"

#include <math.h>
#include <string.h>

#include "prune/mask.h"
#include "prune/strategy.h"
#include "sensing/sensing_internal.h"

/* ---- create / free ------------------------------------------------------- */

CSP_API csp_status csp_pruner_create(csp_pruner **out, csp_context *ctx,
                                     const csp_schedule *schedule, const csp_pruner_options *opts) {
    static const char fn[] = "csp_pruner_create";
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(ctx, schedule, "schedule");
    csp_pruner_options full;
    csp_status st = csp__struct_in(ctx, &csp__pruner_options_desc, opts, &full, fn);
    if (st == CSP_OK)
        st = csp__pruner_options_check(ctx, fn, &full);
    if (st != CSP_OK)
        return st;
    csp_pruner *p = csp__calloc(ctx, 1, sizeof *p);
    if (p == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    p->ctx = ctx;
    if (csp__schedule_clone(ctx, schedule, &p->schedule) != CSP_OK) {
        csp__free(ctx, p);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the schedule", fn);
    }
    p->opts = full;
    csp__xconf_defaults(&p->x);
    p->last_step = -1;
    p->last_event = -1;
    p->data_epoch = ctx->data_epoch;
    *out = p;
    return CSP_OK;
}

static void free_ptensor(csp_context *ctx, csp__ptensor *pt) {
    if (pt->strategy != NULL && pt->strategy->unbind != NULL)
        pt->strategy->unbind(ctx, pt);
    csp__free(ctx, pt->companions.v);
    csp__free(ctx, pt->gradients.v);
    csp__free_aligned(ctx, pt->mask);
    csp__free_aligned(ctx, pt->next);
}

static void destroy(csp_pruner *pruner) {
    csp_context *ctx = pruner->ctx;
    for (int32_t i = 0; i < pruner->num_tensors; i++)
        free_ptensor(ctx, &pruner->tensors[i]);
    csp__free(ctx, pruner->tensors);
    csp__free(ctx, pruner->shrink_buf);
    csp_schedule_free(pruner->schedule);
    csp__free(ctx, pruner);
}

CSP_API void csp_pruner_free(csp_pruner *pruner) {
    if (pruner == NULL)
        return;
    if (pruner->busy != NULL || pruner->in_callback) {
        pruner->free_pending = 1; /* from a callback: freed when the outer call returns */
        return;
    }
    destroy(pruner);
}

csp_status csp__pruner_enter(csp_pruner *p, const char *fn) {
    if (p->busy != NULL)
        return csp__error(p->ctx, CSP_E_STATE,
                          "%s: called while %s() runs on the same pruner (from one of its "
                          "callbacks); nothing was changed",
                          fn, p->busy);
    p->busy = fn;
    return CSP_OK;
}

void csp__pruner_leave(csp_pruner *p) {
    p->busy = NULL;
    if (p->free_pending && !p->in_callback)
        destroy(p);
}

/* ---- a tensor's options ------------------------------------------------------ */

/* The pruner's options as a tensor's (the defaults of csp_pruner_tensor_options). */
static void tensor_defaults(const csp_pruner *p, csp_pruner_tensor_options *t) {
    csp__struct_defaults(&csp__pruner_tensor_options_desc, t);
    const csp_pruner_options *o = &p->opts;
    t->granularity = o->granularity;
    t->nm_n = o->nm_n;
    t->nm_m = o->nm_m;
    t->correction = o->correction;
    t->block_size = o->block_size;
    t->sensing = o->sensing;
    t->solver = o->solver;
    t->final_sparsity = p->schedule->o.final_sparsity;
}

CSP_API csp_status csp_pruner_tensor_options_init(csp_pruner_tensor_options *opts,
                                                  size_t struct_size, const csp_pruner *pruner) {
    if (opts == NULL || pruner == NULL)
        return CSP_E_NULL;
    csp_pruner_tensor_options full;
    tensor_defaults(pruner, &full);
    return csp__struct_init_from(&csp__pruner_tensor_options_desc, &full, opts, struct_size);
}

/* ---- tensors --------------------------------------------------------------- */

static bool same_shape(const csp_tensor *a, const csp_tensor *b) {
    if (a->rank != b->rank)
        return false;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

static csp_status list_push(csp_context *ctx, csp__tlist *l, csp_tensor *t, const char *fn) {
    if (l->n == l->cap) {
        if (l->cap > INT32_MAX / 2)
            return csp__error(ctx, CSP_E_OVERFLOW, "%s: too many buffers", fn);
        int32_t cap = l->cap == 0 ? 4 : l->cap * 2;
        csp_tensor **grown = csp__calloc(ctx, (size_t)cap, sizeof *grown);
        if (grown == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        if (l->n > 0)
            memcpy(grown, l->v, (size_t)l->n * sizeof *grown);
        csp__free(ctx, l->v);
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    return CSP_OK;
}

/* The checks of a tensor's options that involve its shape, its pruner or
 * the other tensors (the table checked ranges and enums already). */
static csp_status check_tensor_conf(const csp_pruner *p, const csp_tensor *w,
                                    const csp_pruner_tensor_options *c, const char *fn) {
    csp_context *ctx = p->ctx;
    if (c->exclude)
        return CSP_OK;
    if (p->x.shrink > 0.0 && c->granularity != CSP_GRANULARITY_ROW)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: the between-event shrink (the pruner's experimental shrink = %g) "
                          "needs CSP_GRANULARITY_ROW; granularity %d is not supported",
                          fn, p->x.shrink, (int)c->granularity);
    double sf = p->schedule->o.final_sparsity;
    if (c->final_sparsity != sf && !(sf > 0.0))
        return csp__error(ctx, CSP_E_RANGE,
                          "%s: final_sparsity %g: the schedule's final sparsity is 0, so there is "
                          "nothing to scale",
                          fn, c->final_sparsity);
    bool is_cs = c->sensing.kind != CSP_SENSING_IDENTITY;
    bool cs_gran = c->granularity == CSP_GRANULARITY_ROW || c->granularity == CSP_GRANULARITY_NM;
    if (is_cs && !cs_gran)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: compressed-sensing pruning (sensing.kind other than identity) needs "
                          "CSP_GRANULARITY_ROW or CSP_GRANULARITY_NM (the problems are per row); "
                          "granularity %d is not supported",
                          fn, (int)c->granularity);
    int64_t cs_len = w->rank == 1 ? c->block_size : w->cols;
    if (w->rank == 1 && cs_len > w->numel)
        cs_len = w->numel;
    if (is_cs && c->granularity == CSP_GRANULARITY_NM && cs_len % c->nm_m != 0)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: CSP rows of %lld weights (block_size) are not a multiple of "
                          "M = %d",
                          fn, (long long)cs_len, (int)c->nm_m);
    if (is_cs && c->granularity == CSP_GRANULARITY_NM && c->solver.method == CSP_SOLVER_SWEEP)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: the sweep solver (CSP_SOLVER_SWEEP) has no N:M constraint; use "
                          "CSP_SOLVER_OMP, ISTA or FISTA at CSP_GRANULARITY_NM",
                          fn);
    if (is_cs && cs_len > CSP_SENSING_MAX_N)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: CSP rows of %lld weights are longer than CSP_SENSING_MAX_N = %d",
                          fn, (long long)cs_len, CSP_SENSING_MAX_N);
    if (c->granularity == CSP_GRANULARITY_NM && w->cols % c->nm_m != 0)
        return csp__error(ctx, CSP_E_SHAPE, "%s: %lld columns are not a multiple of M = %d", fn,
                          (long long)w->cols, (int)c->nm_m);
    if (c->granularity != CSP_GRANULARITY_GLOBAL)
        return CSP_OK;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *o = &p->tensors[i];
        if (csp__excluded(o) || o->conf.granularity != CSP_GRANULARITY_GLOBAL ||
            o->conf.group != c->group)
            continue;
        if (o->weight->dtype != w->dtype)
            return csp__error(ctx, CSP_E_DTYPE, "%s: global group %d mixes float32 and float64",
                              fn, (int)c->group);
        if (o->conf.final_sparsity != c->final_sparsity)
            return csp__error(ctx, CSP_E_INVALID,
                              "%s: members of global group %d need the same final_sparsity", fn,
                              (int)c->group);
        if (o->strategy != &csp__strategy_magnitude)
            return csp__error(ctx, CSP_E_INVALID,
                              "%s: global group %d: tensor %d is pruned by compressed sensing",
                              fn, (int)c->group, (int)i);
    }
    return CSP_OK;
}

static csp_status grow_tensors(csp_pruner *p, const char *fn) {
    if (p->num_tensors < p->cap_tensors)
        return CSP_OK;
    if (p->cap_tensors > INT32_MAX / 2)
        return csp__error(p->ctx, CSP_E_OVERFLOW, "%s: too many tensors", fn);
    int32_t cap = p->cap_tensors == 0 ? 8 : p->cap_tensors * 2;
    csp__ptensor *grown = csp__calloc(p->ctx, (size_t)cap, sizeof *grown);
    if (grown == NULL)
        return csp__error(p->ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    if (p->num_tensors > 0)
        memcpy(grown, p->tensors, (size_t)p->num_tensors * sizeof *grown);
    csp__free(p->ctx, p->tensors);
    p->tensors = grown;
    p->cap_tensors = cap;
    return CSP_OK;
}

static csp_status pruner_add_tensor_unguarded(csp_pruner *pruner, csp_tensor *weight,
                                         const csp_pruner_tensor_options *opts, int32_t *index) {
    static const char fn[] = "csp_pruner_add_tensor";
    if (index != NULL)
        *index = -1;
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, weight, "weight");
    csp_pruner_tensor_options conf;
    tensor_defaults(pruner, &conf);
    csp_status st = opts == NULL ? CSP_OK
                                 : csp__struct_in_over(ctx, &csp__pruner_tensor_options_desc,
                                                       opts, &conf, fn);
    if (st == CSP_OK)
        st = csp__tensor_options_check(ctx, fn, "", &conf);
    if (st != CSP_OK)
        return st;
    if (pruner->last_step >= 0)
        return csp__error(ctx, CSP_E_STATE, "%s: tensors are added before the first csp_step()",
                          fn);
    if (weight->ctx != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the tensor belongs to another context", fn);
    st = csp__check_unbound(pruner, weight, fn);
    if (st == CSP_OK)
        st = check_tensor_conf(pruner, weight, &conf, fn);
    if (st == CSP_OK)
        st = grow_tensors(pruner, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[pruner->num_tensors];
    memset(pt, 0, sizeof *pt);
    pt->weight = weight;
    pt->conf = conf;
    pt->x = pruner->x;
    pt->nnz = weight->numel;
    pt->last_event = -1;
    pt->warned_event = -1;
    if (!csp__excluded(pt)) {
        size_t bytes = (size_t)csp__mask_words(weight->numel) * sizeof(uint64_t);
        pt->mask = csp__malloc_aligned(ctx, bytes);
        pt->next = pt->mask == NULL ? NULL : csp__malloc_aligned(ctx, bytes);
        st = pt->next == NULL ? csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the mask", fn)
                              : CSP_OK;
        if (st == CSP_OK) {
            csp__mask_fill(pt->mask, weight->numel);
            st = csp__strategy_rebind(pruner, pruner->num_tensors, false);
        }
        if (st == CSP_OK && pt->x.shrink > 0.0)
            st = csp__shrink_reserve(pruner, csp__shrink_row_length(pt), fn);
    }
    if (st != CSP_OK) {
        free_ptensor(ctx, pt);
        memset(pt, 0, sizeof *pt);
        return st;
    }
    if (index != NULL)
        *index = pruner->num_tensors;
    pruner->num_tensors++;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_add_tensor(csp_pruner *pruner, csp_tensor *weight,
                                         const csp_pruner_tensor_options *opts, int32_t *index) {
    if (index != NULL)
        *index = -1;
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_add_tensor",
                 pruner_add_tensor_unguarded(pruner, weight, opts, index));
}

static csp_status check_index(const csp_pruner *p, int32_t index, const char *fn) {
    if (index < 0 || index >= p->num_tensors)
        return csp__error(p->ctx, CSP_E_RANGE, "%s: tensor index %d is outside 0..%d", fn,
                          (int)index, (int)p->num_tensors - 1);
    return CSP_OK;
}

/* The checks shared by the calls that bind or mask a buffer shaped like
 * tensor @p index's weights; @p what names the buffer in messages. */
static csp_status check_shaped(const csp_pruner *pruner, int32_t index, const csp_tensor *t,
                               const char *what, const char *fn) {
    csp_context *ctx = pruner->ctx;
    if (t == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: %s is NULL", fn, what);
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    if (csp__excluded(pt))
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d is excluded (it has no mask)", fn,
                          (int)index);
    if (t->ctx != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the %s belongs to another context", fn, what);
    if (!same_shape(t, pt->weight))
        return csp__error(ctx, CSP_E_SHAPE, "%s: the %s's shape differs from tensor %d's", fn,
                          what, (int)index);
    return CSP_OK;
}

/* Bind @p t to tensor @p index's list @p which ("companion" or "gradient"). */
static csp_status bind_shaped(csp_pruner *pruner, int32_t index, csp_tensor *t, bool gradient,
                              const char *fn) {
    if (pruner == NULL)
        return CSP_E_NULL;
    const char *what = gradient ? "gradient" : "companion";
    csp_status st = check_shaped(pruner, index, t, what, fn);
    if (st != CSP_OK)
        return st;
    st = csp__check_unbound(pruner, t, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[index];
    return list_push(pruner->ctx, gradient ? &pt->gradients : &pt->companions, t, fn);
}

static csp_status pruner_add_companion_unguarded(csp_pruner *pruner, int32_t index,
                                                 csp_tensor *companion) {
    return bind_shaped(pruner, index, companion, false, "csp_pruner_add_companion");
}

CSP_API csp_status csp_pruner_add_companion(csp_pruner *pruner, int32_t index,
                                            csp_tensor *companion) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_add_companion",
                 pruner_add_companion_unguarded(pruner, index, companion));
}

static csp_status pruner_add_gradient_unguarded(csp_pruner *pruner, int32_t index,
                                                csp_tensor *gradient) {
    return bind_shaped(pruner, index, gradient, true, "csp_pruner_add_gradient");
}

CSP_API csp_status csp_pruner_add_gradient(csp_pruner *pruner, int32_t index,
                                           csp_tensor *gradient) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_add_gradient",
                 pruner_add_gradient_unguarded(pruner, index, gradient));
}

static csp_status pruner_mask_gradients_unguarded(csp_pruner *pruner) {
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_status st = csp__check_bindings(pruner, "csp_pruner_mask_gradients");
    if (st != CSP_OK)
        return st;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        const csp__ptensor *pt = &pruner->tensors[i];
        for (int32_t c = 0; c < pt->gradients.n; c++)
            csp__mask_apply(pruner->ctx, pt->gradients.v[c], pt->mask);
    }
    return CSP_OK;
}

CSP_API csp_status csp_pruner_mask_gradients(csp_pruner *pruner) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_mask_gradients", pruner_mask_gradients_unguarded(pruner));
}

CSP_API csp_status csp_pruner_apply_mask(const csp_pruner *pruner, int32_t index,
                                         csp_tensor *buffer) {
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_status st = check_shaped(pruner, index, buffer, "buffer", "csp_pruner_apply_mask");
    if (st != CSP_OK)
        return st;
    csp__mask_apply(pruner->ctx, buffer, pruner->tensors[index].mask);
    return CSP_OK;
}

CSP_API int32_t csp_pruner_num_tensors(const csp_pruner *pruner) {
    return pruner == NULL ? 0 : pruner->num_tensors;
}

/* ---- stepping ------------------------------------------------------------- */

double csp__tensor_target(const csp_pruner *p, const csp__ptensor *pt, double s) {
    double f = pt->conf.final_sparsity, sf = p->schedule->o.final_sparsity;
    if (f == sf)
        return s;
    double scaled = s * (f / sf);
    return scaled < f ? scaled : f;
}

static csp_status step_inner(csp_pruner *pruner, int64_t step, int32_t *event) {
    csp_context *ctx = pruner->ctx;
    if (step < 0)
        return csp__error(ctx, CSP_E_RANGE, "csp_step: step %lld is negative", (long long)step);
    if (step < pruner->last_step)
        return csp__error(ctx, CSP_E_STATE,
                          "csp_step: step %lld is before the last step %lld; steps never go "
                          "back (restore the pruner's state with the run's)",
                          (long long)step, (long long)pruner->last_step);
    if (pruner->num_tensors == 0)
        return CSP_NO_TENSORS; /* nothing to prune, nothing recorded */
    csp_status st = csp__check_bindings(pruner, "csp_step");
    if (st != CSP_OK)
        return st;
    int64_t e = csp__schedule_last_event(pruner->schedule, step);
    if (step == pruner->last_step || e < 0 || e <= pruner->last_step) {
        csp__apply_all(pruner);
        if (step != pruner->last_step) {
            st = csp__shrink_step(pruner, step);
            if (st != CSP_OK)
                return st;
            csp__cs_warn_unready(pruner, step);
        }
        pruner->last_step = step;
        return CSP_MASKED;
    }
    *event = 1;
    st = csp__event_run(pruner, e, step);
    if (st == CSP_PRUNED)
        pruner->last_step = step;
    return st;
}

CSP_API csp_status csp_step(csp_pruner *pruner, int64_t step) {
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    if (pruner->in_callback)
        return csp__error(ctx, CSP_E_STATE, "csp_step: called from the pruner's step callback");
    csp_status st = csp__pruner_enter(pruner, "csp_step");
    if (st != CSP_OK)
        return st;
    double t0 = csp__now();
    int32_t event = 0;
    st = step_inner(pruner, step, &event);
    double dt = csp__now() - t0;
    if (st >= 0 && st != CSP_NO_TENSORS) {
        csp__pstats *ps = &pruner->stats;
        ps->steps++;
        ps->total_seconds += dt;
        if (st == CSP_PRUNED) {
            ps->events++;
            ps->last_event_seconds = dt;
            ps->event_seconds += dt;
        }
    }
    /* The step callback may read the pruner and change what the other calls
     * allow; csp_step() itself is refused there, csp_pruner_free() deferred. */
    pruner->busy = NULL;
    if (pruner->callback != NULL) {
        pruner->in_callback = 1;
        csp_status cb = pruner->callback(pruner->callback_user, pruner, step, st, event);
        pruner->in_callback = 0;
        if (st >= 0 && cb != CSP_OK)
            st = csp__error(ctx, CSP_E_CALLBACK,
                            "csp_step: the step callback returned %d at step %lld (the step "
                            "itself was applied)",
                            (int)cb, (long long)step);
    }
    if (pruner->free_pending)
        destroy(pruner);
    return st;
}

CSP_API csp_status csp_pruner_last_step(const csp_pruner *pruner, int64_t *step) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, step, "step");
    *step = pruner->last_step;
    return CSP_OK;
}

/* ---- masks and stats -------------------------------------------------------- */

/* The checks shared by the mask readers: tensor `index` exists and `out`
 * is a non-NULL buffer of at least `have` units (64-bit words or bytes)
 * that holds its mask. */
static csp_status mask_output(const csp_pruner *pruner, int32_t index, const void *out,
                              int64_t have, int64_t unit_bits, const char *fn,
                              const csp__ptensor **pt) {
    const char *what = unit_bits == 64 ? "words" : "bytes";
    if (out == NULL)
        return csp__error(pruner->ctx, CSP_E_NULL, "%s: %s is NULL", fn, what);
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    *pt = &pruner->tensors[index];
    int64_t numel = (*pt)->weight->numel;
    int64_t needed = unit_bits == 64 ? csp__mask_words(numel) : numel;
    if (have < needed)
        return csp__error(pruner->ctx, CSP_E_BUFFER, "%s: %lld %s needed, %lld given", fn,
                          (long long)needed, what, (long long)have);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_mask_words(const csp_pruner *pruner, int32_t index, uint64_t *words,
                                         int64_t num_words) {
    if (pruner == NULL)
        return CSP_E_NULL;
    const csp__ptensor *pt = NULL;
    csp_status st = mask_output(pruner, index, words, num_words, 64, "csp_pruner_mask_words", &pt);
    if (st != CSP_OK)
        return st;
    int64_t nw = csp__mask_words(pt->weight->numel);
    if (csp__excluded(pt))
        csp__mask_fill(words, pt->weight->numel);
    else
        memcpy(words, pt->mask, (size_t)nw * sizeof *words);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_mask_bytes(const csp_pruner *pruner, int32_t index, uint8_t *bytes,
                                         int64_t num_bytes) {
    if (pruner == NULL)
        return CSP_E_NULL;
    const csp__ptensor *pt = NULL;
    csp_status st = mask_output(pruner, index, bytes, num_bytes, 8, "csp_pruner_mask_bytes", &pt);
    if (st != CSP_OK)
        return st;
    int64_t numel = pt->weight->numel;
    if (csp__excluded(pt)) {
        memset(bytes, 1, (size_t)numel);
        return CSP_OK;
    }
    for (int64_t i = 0; i < numel; i++)
        bytes[i] = (uint8_t)((pt->mask[i >> 6] >> (i & 63)) & 1);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_nnz(const csp_pruner *pruner, int32_t index, int64_t *nnz) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, nnz, "nnz");
    if (index == -1) {
        int64_t total = 0;
        for (int32_t i = 0; i < pruner->num_tensors; i++)
            total += pruner->tensors[i].nnz;
        *nnz = total;
        return CSP_OK;
    }
    csp_status st = check_index(pruner, index, "csp_pruner_nnz");
    if (st != CSP_OK)
        return st;
    *nnz = pruner->tensors[index].nnz;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_digest(const csp_pruner *pruner, uint64_t *digest) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, digest, "digest");
    uint64_t h = CSP__FNV_OFFSET;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        const csp__ptensor *pt = &pruner->tensors[i];
        if (!csp__excluded(pt))
            h = csp__mask_digest(h, pt->mask, pt->weight->numel);
    }
    *digest = h;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_tensor_stats(const csp_pruner *pruner, int32_t index,
                                           csp_tensor_stats *stats) {
    static const char fn[] = "csp_pruner_tensor_stats";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_status st = csp__struct_out_check(pruner->ctx, &csp__tensor_stats_desc, stats, fn);
    if (st == CSP_OK)
        st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    csp_tensor_stats x;
    memset(&x, 0, sizeof x);
    x.numel = pt->weight->numel;
    x.nnz = pt->nnz;
    x.target_sparsity = pt->target;
    x.achieved_sparsity = 1.0 - (double)pt->nnz / (double)pt->weight->numel;
    x.granularity = pt->conf.granularity;
    x.excluded = csp__excluded(pt);
    x.last_event = pt->last_event;
    const csp__tstats *ts = &pt->stats;
    csp_sensing *sens = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
    x.sensing = sens != NULL ? csp_sensing_kind(sens)
                : pt->cs != NULL ? pt->conf.sensing.kind
                                 : CSP_SENSING_IDENTITY;
    x.solver = pt->conf.solver.method;
    x.correction = pt->conf.correction;
    x.converged = ts->not_converged == 0 ? 1 : 0;
    x.weight_error = ts->weight_error;
    x.sensing_error = ts->sensing_error;
    x.solver_iterations = ts->iterations;
    x.solver_iterations_max = ts->iterations_max;
    x.rows_not_converged = ts->not_converged;
    x.rows_damped = ts->damped;
    x.events = ts->events;
    x.event_seconds = ts->event_seconds;
    x.total_seconds = ts->total_seconds;
    x.observed_rows = csp_sensing_count(sens);
    x.observe_seconds = ts->observe_seconds;
    csp__struct_out(&csp__tensor_stats_desc, &x, stats);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_step_stats(const csp_pruner *pruner, csp_step_stats *stats) {
    static const char fn[] = "csp_pruner_step_stats";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_status st = csp__struct_out_check(pruner->ctx, &csp__step_stats_desc, stats, fn);
    if (st != CSP_OK)
        return st;
    const csp__pstats *ps = &pruner->stats;
    csp_step_stats x;
    memset(&x, 0, sizeof x);
    x.steps = ps->steps;
    x.events = ps->events;
    x.last_event = pruner->last_event;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        x.numel += pruner->tensors[i].weight->numel;
        x.nnz += pruner->tensors[i].nnz;
    }
    x.last_event_seconds = ps->last_event_seconds;
    x.event_seconds = ps->event_seconds;
    x.total_seconds = ps->total_seconds;
    x.observe_seconds = ps->observe_seconds;
    csp__struct_out(&csp__step_stats_desc, &x, stats);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_set_callback(csp_pruner *pruner, csp_step_fn fn, void *user) {
    if (pruner == NULL)
        return CSP_E_NULL;
    pruner->callback = fn;
    pruner->callback_user = fn != NULL ? user : NULL;
    return CSP_OK;
}

/* ---- CSP entry points -------------------------------------------------------- */

CSP_API csp_status csp_pruner_sensing(csp_pruner *pruner, int32_t index, csp_sensing **sensing) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, sensing, "sensing");
    *sensing = NULL;
    csp_status st = check_index(pruner, index, "csp_pruner_sensing");
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    if (pt->cs != NULL)
        *sensing = csp__cs_sensing(pt->cs);
    return CSP_OK;
}

static csp_status pruner_set_sensing_unguarded(csp_pruner *pruner, int32_t index,
                                               csp_sensing *sensing) {
    static const char fn[] = "csp_pruner_set_sensing";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[index];
    if (csp__excluded(pt))
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d is excluded", fn, (int)index);
    if (sensing == NULL) {
        if (pt->cs == NULL)
            return CSP_OK;
        pt->cs->attached = NULL;
        return csp__strategy_rebind(pruner, index, false); /* back to GMP for an identity kind */
    }
    if (pt->conf.granularity != CSP_GRANULARITY_ROW && pt->conf.granularity != CSP_GRANULARITY_NM)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: compressed-sensing pruning needs CSP_GRANULARITY_ROW or "
                          "CSP_GRANULARITY_NM; tensor %d has granularity %d",
                          fn, (int)index, (int)pt->conf.granularity);
    int64_t len = pt->weight->rank == 1 ? pt->conf.block_size : pt->weight->cols;
    if (pt->weight->rank == 1 && len > pt->weight->numel)
        len = pt->weight->numel;
    if (pt->conf.granularity == CSP_GRANULARITY_NM && len % pt->conf.nm_m != 0)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: tensor %d's CSP rows of %lld weights are not a multiple of M = %d",
                          fn, (int)index, (long long)len, (int)pt->conf.nm_m);
    if (csp_sensing_n(sensing) != len)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: the operator's n = %lld, but tensor %d's CSP rows have %lld "
                          "weights",
                          fn, (long long)csp_sensing_n(sensing), (int)index, (long long)len);
    if (csp__sensing_ctx(sensing) != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the operator belongs to another context", fn);
    if (pt->x.shrink > 0.0) {
        st = csp__shrink_reserve(pruner, len, fn);
        if (st != CSP_OK)
            return st;
    }
    st = csp__strategy_rebind(pruner, index, true);
    if (st != CSP_OK)
        return st;
    pt->cs->attached = sensing;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_set_sensing(csp_pruner *pruner, int32_t index, csp_sensing *sensing) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_set_sensing",
                 pruner_set_sensing_unguarded(pruner, index, sensing));
}

static csp_status pruner_observe_unguarded(csp_pruner *pruner, int32_t index, const float *x,
                                           int64_t rows, int64_t cols) {
    static const char fn[] = "csp_pruner_observe";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[index];
    csp_sensing *s = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
    if (s == NULL || csp_sensing_kind(s) != CSP_SENSING_ACTIVATIONS)
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d has no activations sensing", fn,
                          (int)index);
    double t0 = csp__now();
    st = csp_sensing_observe(s, x, rows, cols, 0);
    if (st == CSP_OK) {
        double dt = csp__now() - t0;
        pt->stats.observe_seconds += dt;
        pruner->stats.observe_seconds += dt;
    }
    return st;
}

CSP_API csp_status csp_pruner_observe(csp_pruner *pruner, int32_t index, const float *x,
                                      int64_t rows, int64_t cols) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_observe",
                 pruner_observe_unguarded(pruner, index, x, rows, cols));
}

CSP_API csp_status csp_pruner_wants_observe(const csp_pruner *pruner, int64_t step,
                                            int32_t *flag) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, flag, "flag");
    *flag = 0;
    if (step < 0)
        return csp__error(pruner->ctx, CSP_E_RANGE, "csp_pruner_wants_observe: step %lld is "
                          "negative", (long long)step);
    bool any = false;
    for (int32_t i = 0; i < pruner->num_tensors && !any; i++) {
        const csp__ptensor *pt = &pruner->tensors[i];
        csp_sensing *s = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
        any = s != NULL && csp_sensing_kind(s) == CSP_SENSING_ACTIVATIONS;
    }
    if (!any)
        return CSP_OK;
    int64_t e = csp__schedule_next_event(pruner->schedule, step - 1);
    int32_t window = pruner->x.observe_window;
    if (e >= 0 && (window == 0 || e - step < window))
        *flag = 1;
    return CSP_OK;
}
