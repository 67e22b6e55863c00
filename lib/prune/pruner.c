/* The pruner: tensors + masks + schedule; csp_step(). */
#include "prune/pruner_internal.h"

#include <math.h>
#include <string.h>

#include "prune/mask.h"
#include "select/select.h"
#include "sensing/sensing_internal.h"

/* ---- options ------------------------------------------------------------- */

CSP_API csp_status csp_pruner_options_init(csp_pruner_options *opts, size_t struct_size) {
    if (opts == NULL)
        return CSP_E_NULL;
    csp_status st = csp__init_options(opts, struct_size, sizeof *opts);
    if (st != CSP_OK)
        return st;
    opts->granularity = CSP_GRANULARITY_TENSOR;
    opts->nm_n = 2;
    opts->nm_m = 4;
    opts->sensing = CSP_SENSING_IDENTITY;
    opts->solver = CSP_SOLVER_OMP;
    opts->correction = CSP_CORRECTION_NONE;
    opts->block_size = CSP_DEFAULT_BLOCK_SIZE;
    opts->redraw = 0;
    opts->observe_window = 0;
    opts->solver_max_iter = 1000;
    opts->rho = 0.5;
    opts->damping = 0.01;
    opts->alpha = 0.1;
    opts->shrink = 0.0;
    opts->solver_tol = 1e-4;
    opts->support = CSP_SUPPORT_SOLVER;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_tensor_options_init(csp_pruner_tensor_options *opts,
                                                  size_t struct_size) {
    if (opts == NULL)
        return CSP_E_NULL;
    csp_status st = csp__init_options(opts, struct_size, sizeof *opts);
    if (st != CSP_OK)
        return st;
    opts->final_sparsity = -1.0;
    opts->redraw = -1;
    opts->damping = -1.0;
    opts->alpha = -1.0;
    opts->shrink = -1.0;
    return CSP_OK;
}

CSP_API csp_status csp_step_stats_init(csp_step_stats *stats, size_t struct_size) {
    if (stats == NULL)
        return CSP_E_NULL;
    return csp__init_options(stats, struct_size, sizeof *stats);
}

CSP_API csp_status csp_tensor_stats_init(csp_tensor_stats *stats, size_t struct_size) {
    if (stats == NULL)
        return CSP_E_NULL;
    return csp__init_options(stats, struct_size, sizeof *stats);
}

static bool valid_granularity(int32_t g) {
    return g >= CSP_GRANULARITY_TENSOR && g <= CSP_GRANULARITY_NM;
}

static csp_status check_nm(csp_context *ctx, const char *fn, int32_t n, int32_t m) {
    if (m < 2 || m > CSP_NM_MAX_M || n < 1 || n >= m)
        return csp__error(ctx, CSP_E_RANGE, "%s: N:M = %d:%d needs 1 <= N < M <= %d", fn, (int)n,
                          (int)m, CSP_NM_MAX_M);
    return CSP_OK;
}

/* The CSP options of a pruner or (resolved) of a tensor. */
static csp_status check_conf(csp_context *ctx, const char *fn, const csp__csconf *c) {
    if (c->sensing < CSP_SENSING_IDENTITY || c->sensing > CSP_SENSING_GRAM)
        return csp__error(ctx, CSP_E_ENUM, "%s: sensing %d is not a csp_sensing_kind", fn,
                          (int)c->sensing);
    if (c->solver < CSP_SOLVER_OMP || c->solver > CSP_SOLVER_FISTA)
        return csp__error(ctx, CSP_E_ENUM, "%s: solver %d is not a csp_solver_method", fn,
                          (int)c->solver);
    if (c->correction < CSP_CORRECTION_NONE || c->correction > CSP_CORRECTION_BLEND)
        return csp__error(ctx, CSP_E_ENUM, "%s: correction %d is not a csp_correction", fn,
                          (int)c->correction);
    if (c->block_size < 1 || c->block_size > CSP_SENSING_MAX_N)
        return csp__error(ctx, CSP_E_RANGE, "%s: block_size = %d is outside 1..%d", fn,
                          (int)c->block_size, CSP_SENSING_MAX_N);
    if (c->redraw != 0 && c->redraw != 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: redraw = %d must be 0 or 1", fn,
                          (int)c->redraw);
    if (!(c->rho > 0.0 && c->rho <= 64.0))
        return csp__error(ctx, CSP_E_RANGE, "%s: rho = %g is outside (0, 64]", fn, c->rho);
    if (!(c->damping >= 0.0 && c->damping <= 1e6))
        return csp__error(ctx, CSP_E_RANGE, "%s: damping = %g is outside [0, 1e6]", fn,
                          c->damping);
    if (!(c->alpha >= 0.0 && c->alpha <= 1.0))
        return csp__error(ctx, CSP_E_RANGE, "%s: alpha = %g is outside [0, 1]", fn, c->alpha);
    if (!(c->shrink >= 0.0 && c->shrink <= 1.0))
        return csp__error(ctx, CSP_E_RANGE, "%s: shrink = %g is outside [0, 1]", fn,
                          c->shrink);
    if (c->support != CSP_SUPPORT_SOLVER && c->support != CSP_SUPPORT_MAGNITUDE)
        return csp__error(ctx, CSP_E_ENUM, "%s: support %d is not a csp_support", fn,
                          (int)c->support);
    return CSP_OK;
}

/* ---- create / free ------------------------------------------------------- */

CSP_API csp_status csp_pruner_create(csp_pruner **out, csp_context *ctx,
                                     const csp_schedule *schedule, const csp_pruner_options *opts) {
    const char *fn = "csp_pruner_create";
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(ctx, schedule, "schedule");
    csp_pruner_options defaults;
    if (opts == NULL) {
        csp_pruner_options_init(&defaults, sizeof defaults);
        opts = &defaults;
    }
    csp_status st = csp__check_options(ctx, opts, sizeof *opts, fn);
    if (st != CSP_OK)
        return st;
    if (!valid_granularity(opts->granularity))
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown granularity %d", fn,
                          (int)opts->granularity);
    st = check_nm(ctx, fn, opts->nm_n, opts->nm_m);
    if (st != CSP_OK)
        return st;
    csp__csconf conf = {opts->sensing, opts->solver,  opts->correction, opts->block_size,
                        opts->redraw,  opts->rho,     opts->damping,    opts->alpha,
                        opts->shrink,  opts->support};
    st = check_conf(ctx, fn, &conf);
    if (st != CSP_OK)
        return st;
    if (opts->observe_window < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: observe_window = %d is negative", fn,
                          (int)opts->observe_window);
    if (opts->solver_max_iter < 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: solver_max_iter = %d must be >= 1", fn,
                          (int)opts->solver_max_iter);
    if (!(opts->solver_tol > 0.0 && opts->solver_tol < 1.0))
        return csp__error(ctx, CSP_E_RANGE, "%s: solver_tol = %g is outside (0, 1)", fn,
                          opts->solver_tol);
    csp_pruner *p = csp__calloc(ctx, 1, sizeof *p);
    if (p == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    p->ctx = ctx;
    if (csp__schedule_clone(ctx, schedule, &p->schedule) != CSP_OK) {
        csp__free(ctx, p);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the schedule", fn);
    }
    p->granularity = opts->granularity;
    p->nm_n = opts->nm_n;
    p->nm_m = opts->nm_m;
    p->conf = conf;
    p->observe_window = opts->observe_window;
    p->solver_max_iter = opts->solver_max_iter;
    p->solver_tol = opts->solver_tol;
    p->last_step = -1;
    p->last_event = -1;
    *out = p;
    return CSP_OK;
}

static void free_ptensor(csp_context *ctx, csp__ptensor *pt) {
    csp__cs_free(ctx, pt->cs);
    pt->cs = NULL;
    csp__free(ctx, pt->companions.v);
    csp__free(ctx, pt->gradients.v);
    csp__free_aligned(ctx, pt->mask);
    csp__free_aligned(ctx, pt->next);
}

CSP_API void csp_pruner_free(csp_pruner *pruner) {
    if (pruner == NULL)
        return;
    csp_context *ctx = pruner->ctx;
    for (int32_t i = 0; i < pruner->num_tensors; i++)
        free_ptensor(ctx, &pruner->tensors[i]);
    csp__free(ctx, pruner->tensors);
    csp__free(ctx, pruner->shrink_buf);
    csp_schedule_free(pruner->schedule);
    csp__free(ctx, pruner);
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

static bool list_has(const csp__tlist *l, const void *data) {
    for (int32_t c = 0; c < l->n; c++)
        if (l->v[c]->data == data)
            return true;
    return false;
}

/* Is @p data already bound as a weight, a companion or a gradient? */
static bool buffer_taken(const csp_pruner *p, const void *data) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (pt->weight->data == data || list_has(&pt->companions, data) ||
            list_has(&pt->gradients, data))
            return true;
    }
    return false;
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

CSP_API csp_status csp_pruner_add_tensor(csp_pruner *pruner, csp_tensor *weight,
                                         const csp_pruner_tensor_options *opts, int32_t *index) {
    const char *fn = "csp_pruner_add_tensor";
    if (index != NULL)
        *index = -1;
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, weight, "weight");
    csp_pruner_tensor_options defaults;
    if (opts == NULL) {
        csp_pruner_tensor_options_init(&defaults, sizeof defaults);
        opts = &defaults;
    }
    csp_status st = csp__check_options(ctx, opts, sizeof *opts, fn);
    if (st != CSP_OK)
        return st;
    if (pruner->last_step >= 0)
        return csp__error(ctx, CSP_E_STATE, "%s: tensors are added before the first csp_step()",
                          fn);
    if (weight->ctx != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the tensor belongs to another context", fn);
    if (buffer_taken(pruner, weight->data))
        return csp__error(ctx, CSP_E_INVALID, "%s: this buffer is already bound to the pruner", fn);
    if (pruner->num_tensors == INT32_MAX)
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: too many tensors", fn);
    int32_t gran = opts->granularity == 0 ? pruner->granularity : opts->granularity;
    if (!valid_granularity(gran))
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown granularity %d", fn,
                          (int)opts->granularity);
    int32_t nm_n = opts->nm_n == 0 ? pruner->nm_n : opts->nm_n;
    int32_t nm_m = opts->nm_m == 0 ? pruner->nm_m : opts->nm_m;
    st = check_nm(ctx, fn, nm_n, nm_m);
    if (st != CSP_OK)
        return st;
    if (opts->group < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: group %d is negative", fn, (int)opts->group);
    double f = opts->final_sparsity;
    if (isnan(f) || f >= 1.0)
        return csp__error(ctx, CSP_E_RANGE, "%s: final_sparsity %g is not in [0, 1) or < 0", fn, f);
    if (f >= 0.0 && !(pruner->schedule->o.final_sparsity > 0.0))
        return csp__error(ctx, CSP_E_RANGE,
                          "%s: the schedule's final sparsity is 0, so an override has nothing "
                          "to scale",
                          fn);
    const csp__csconf *d = &pruner->conf;
    csp__csconf conf = {
        opts->sensing != 0 ? opts->sensing : d->sensing,
        opts->solver != 0 ? opts->solver : d->solver,
        opts->correction != 0 ? opts->correction : d->correction,
        opts->block_size != 0 ? opts->block_size : d->block_size,
        opts->redraw >= 0 ? opts->redraw : d->redraw,
        opts->rho != 0.0 ? opts->rho : d->rho,
        opts->damping >= 0.0 || isnan(opts->damping) ? opts->damping : d->damping,
        opts->alpha >= 0.0 || isnan(opts->alpha) ? opts->alpha : d->alpha,
        opts->shrink >= 0.0 || isnan(opts->shrink) ? opts->shrink : d->shrink,
        opts->support != 0 ? opts->support : d->support};
    st = check_conf(ctx, fn, &conf);
    if (st != CSP_OK)
        return st;
    bool excluded = opts->exclude != 0;
    bool is_cs = !excluded && conf.sensing != CSP_SENSING_IDENTITY;
    if (!excluded && (is_cs || conf.shrink > 0.0) && gran != CSP_GRANULARITY_ROW)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: %s needs CSP_GRANULARITY_ROW (the problems are per row, with a "
                          "row-balanced budget); granularity %d is not supported",
                          fn, is_cs ? "compressed-sensing pruning (sensing other than identity)"
                                    : "the between-event shrink",
                          (int)gran);
    int64_t cs_len = weight->rank == 1 ? conf.block_size : weight->cols;
    if (weight->rank == 1 && cs_len > weight->numel)
        cs_len = weight->numel;
    if (is_cs && cs_len > CSP_SENSING_MAX_N)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: CSP rows of %lld weights are longer than CSP_SENSING_MAX_N = %d",
                          fn, (long long)cs_len, CSP_SENSING_MAX_N);
    if (!excluded && gran == CSP_GRANULARITY_NM && weight->cols % nm_m != 0)
        return csp__error(ctx, CSP_E_SHAPE, "%s: %lld columns are not a multiple of M = %d", fn,
                          (long long)weight->cols, (int)nm_m);
    if (!excluded && gran == CSP_GRANULARITY_GLOBAL) {
        for (int32_t i = 0; i < pruner->num_tensors; i++) {
            const csp__ptensor *o = &pruner->tensors[i];
            if (o->excluded || o->granularity != CSP_GRANULARITY_GLOBAL || o->group != opts->group)
                continue;
            if (o->weight->dtype != weight->dtype)
                return csp__error(ctx, CSP_E_DTYPE, "%s: global group %d mixes float32 and float64",
                                  fn, (int)opts->group);
            if ((o->final_override < 0.0) != (f < 0.0) || (f >= 0.0 && o->final_override != f))
                return csp__error(ctx, CSP_E_INVALID,
                                  "%s: members of global group %d need the same final_sparsity", fn,
                                  (int)opts->group);
        }
    }

    if (pruner->num_tensors == pruner->cap_tensors) {
        int32_t cap = pruner->cap_tensors == 0 ? 8 : pruner->cap_tensors * 2;
        if (cap < pruner->cap_tensors)
            cap = INT32_MAX;
        csp__ptensor *grown = csp__calloc(ctx, (size_t)cap, sizeof *grown);
        if (grown == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        if (pruner->num_tensors > 0)
            memcpy(grown, pruner->tensors, (size_t)pruner->num_tensors * sizeof *grown);
        csp__free(ctx, pruner->tensors);
        pruner->tensors = grown;
        pruner->cap_tensors = cap;
    }
    csp__ptensor pt;
    memset(&pt, 0, sizeof pt);
    pt.weight = weight;
    pt.granularity = gran;
    pt.group = opts->group;
    pt.nm_n = nm_n;
    pt.nm_m = nm_m;
    pt.excluded = excluded ? 1 : 0;
    pt.final_override = f < 0.0 ? -1.0 : f;
    pt.conf = conf;
    pt.nnz = weight->numel;
    pt.last_event = -1;
    if (!excluded) {
        size_t bytes = (size_t)csp__mask_words(weight->numel) * sizeof(uint64_t);
        pt.mask = csp__malloc_aligned(ctx, bytes);
        pt.next = pt.mask == NULL ? NULL : csp__malloc_aligned(ctx, bytes);
        if (pt.next == NULL) {
            free_ptensor(ctx, &pt);
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the mask", fn);
        }
        csp__mask_fill(pt.mask, weight->numel);
    }
    if (!excluded && conf.shrink > 0.0) {
        st = csp__shrink_reserve(pruner, is_cs ? cs_len : weight->cols);
        if (st != CSP_OK) {
            free_ptensor(ctx, &pt);
            return st;
        }
    }
    pruner->tensors[pruner->num_tensors] = pt;
    if (is_cs) {
        st = csp__cs_create(pruner, pruner->num_tensors, &pruner->tensors[pruner->num_tensors].cs);
        if (st != CSP_OK) {
            free_ptensor(ctx, &pruner->tensors[pruner->num_tensors]);
            return st;
        }
    }
    if (index != NULL)
        *index = pruner->num_tensors;
    pruner->num_tensors++;
    return CSP_OK;
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
    if (pt->excluded)
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
    if (buffer_taken(pruner, t->data))
        return csp__error(pruner->ctx, CSP_E_INVALID,
                          "%s: this buffer is already bound to the pruner", fn);
    csp__ptensor *pt = &pruner->tensors[index];
    return list_push(pruner->ctx, gradient ? &pt->gradients : &pt->companions, t, fn);
}

CSP_API csp_status csp_pruner_add_companion(csp_pruner *pruner, int32_t index,
                                            csp_tensor *companion) {
    return bind_shaped(pruner, index, companion, false, "csp_pruner_add_companion");
}

CSP_API csp_status csp_pruner_add_gradient(csp_pruner *pruner, int32_t index,
                                           csp_tensor *gradient) {
    return bind_shaped(pruner, index, gradient, true, "csp_pruner_add_gradient");
}

CSP_API csp_status csp_pruner_mask_gradients(csp_pruner *pruner) {
    if (pruner == NULL)
        return CSP_E_NULL;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        const csp__ptensor *pt = &pruner->tensors[i];
        for (int32_t c = 0; c < pt->gradients.n; c++)
            csp__mask_apply(pruner->ctx, pt->gradients.v[c], pt->mask);
    }
    return CSP_OK;
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
    if (pt->final_override < 0.0)
        return s;
    double scaled = s * (pt->final_override / p->schedule->o.final_sparsity);
    return scaled < pt->final_override ? scaled : pt->final_override;
}

static void apply_all(csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (pt->excluded)
            continue;
        csp__mask_apply(p->ctx, pt->weight, pt->mask);
        for (int32_t c = 0; c < pt->companions.n; c++)
            csp__mask_apply(p->ctx, pt->companions.v[c], pt->mask);
    }
}

static csp__select_src src_of(const csp__ptensor *pt) {
    csp__select_src s = {pt->weight, pt->mask, pt->next};
    return s;
}

/* Select every GMP tensor's next mask for schedule target @p s; writes
 * nothing but the `next` scratch masks. Each tensor's time goes to
 * seconds[i] (a global group's to its first member). */
static csp_status select_all(csp_pruner *p, double s, double *seconds) {
    csp_context *ctx = p->ctx;
    csp__select_src *group = NULL;
    csp_status st = CSP_OK;
    for (int32_t i = 0; i < p->num_tensors && st == CSP_OK; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (pt->excluded || pt->cs != NULL)
            continue;
        double t0 = csp__now();
        const csp_tensor *w = pt->weight;
        double ts = csp__tensor_target(p, pt, s);
        csp__select_src src = src_of(pt);
        switch (pt->granularity) {
        case CSP_GRANULARITY_TENSOR:
            st = csp__select_topk(ctx, &src, 1, w->numel - csp__round_count(ts, w->numel));
            break;
        case CSP_GRANULARITY_ROW:
            st = csp__select_rows(ctx, &src, w->cols - csp__round_count(ts, w->cols));
            break;
        case CSP_GRANULARITY_NM: {
            int64_t z = csp__round_count(ts, pt->nm_m);
            if (z > pt->nm_m - pt->nm_n)
                z = pt->nm_m - pt->nm_n;
            st = csp__select_nm(ctx, &src, pt->nm_m, (int32_t)(pt->nm_m - z));
            break;
        }
        default: { /* GLOBAL: the group is selected at its first member */
            bool first = true;
            for (int32_t j = 0; j < i && first; j++) {
                const csp__ptensor *o = &p->tensors[j];
                first = o->excluded || o->granularity != CSP_GRANULARITY_GLOBAL ||
                        o->group != pt->group;
            }
            if (!first)
                break;
            if (group == NULL) {
                group = csp__calloc(ctx, (size_t)p->num_tensors, sizeof *group);
                if (group == NULL) {
                    st = csp__error(ctx, CSP_E_NOMEM, "csp_step: out of memory");
                    break;
                }
            }
            int32_t ng = 0;
            int64_t total = 0;
            for (int32_t j = i; j < p->num_tensors; j++) {
                const csp__ptensor *o = &p->tensors[j];
                if (o->excluded || o->granularity != CSP_GRANULARITY_GLOBAL ||
                    o->group != pt->group)
                    continue;
                group[ng++] = src_of(o);
                total += o->weight->numel;
            }
            st = csp__select_topk(ctx, group, ng, total - csp__round_count(ts, total));
            break;
        }
        }
        seconds[i] = csp__now() - t0;
    }
    csp__free(ctx, group);
    return st;
}

/* A pruning event to schedule event @p e. Phase 1 computes every new mask
 * (GMP selections, CSP solves, corrections) into scratch and can fail;
 * phase 2 commits and cannot. */
static csp_status prune_event(csp_pruner *pruner, int64_t e, int64_t step) {
    csp_context *ctx = pruner->ctx;
    double s;
    csp_status st = csp__schedule_target(pruner->schedule, e, &s);
    if (st != CSP_OK)
        return st;
    int32_t nt = pruner->num_tensors;
    double *seconds = csp__calloc(ctx, (size_t)(nt > 0 ? nt : 1), sizeof *seconds);
    csp__cs_result *res = csp__calloc(ctx, (size_t)(nt > 0 ? nt : 1), sizeof *res);
    if (seconds == NULL || res == NULL) {
        csp__free(ctx, seconds);
        csp__free(ctx, res);
        return csp__error(ctx, CSP_E_NOMEM, "csp_step: out of memory");
    }
    st = select_all(pruner, s, seconds);
    for (int32_t i = 0; i < nt && st == CSP_OK; i++) {
        csp__ptensor *pt = &pruner->tensors[i];
        if (!pt->excluded && pt->cs != NULL)
            st = csp__cs_event(pruner, i, csp__tensor_target(pruner, pt, s), e, &res[i]);
    }
    if (st != CSP_OK) {
        for (int32_t i = 0; i < nt; i++)
            csp__cs_result_free(ctx, &res[i]);
        csp__free(ctx, res);
        csp__free(ctx, seconds);
        return st;
    }
    /* Phase 2: nothing below can fail. */
    for (int32_t i = 0; i < nt; i++) {
        csp__ptensor *pt = &pruner->tensors[i];
        if (pt->excluded)
            continue;
        double t0 = csp__now();
        if (pt->cs == NULL) {
            csp__tstats *ts = &pt->stats;
            csp__gmp_event_errors(pt, &ts->weight_error, &ts->sensing_error);
            ts->iterations = ts->iterations_max = ts->not_converged = ts->damped = 0;
        }
        uint64_t *old = pt->mask;
        pt->mask = pt->next;
        pt->next = old;
        pt->nnz = csp__mask_popcount(pt->mask, pt->weight->numel);
        pt->target = csp__tensor_target(pruner, pt, s);
        pt->last_event = e;
        if (pt->cs != NULL) {
            csp__cs_commit(pruner, pt, &res[i]); /* sets stats, event_seconds */
        } else {
            pt->stats.event_seconds = seconds[i];
        }
        pt->stats.event_seconds += csp__now() - t0;
        pt->stats.total_seconds += pt->stats.event_seconds;
        pt->stats.events++;
    }
    csp__free(ctx, res);
    csp__free(ctx, seconds);
    apply_all(pruner);
    pruner->last_event = e;
    csp__log(ctx, CSP_LOG_INFO, "csp_step: pruning event %lld at step %lld, target %.6f",
             (long long)e, (long long)step, s);
    return CSP_PRUNED;
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
    int64_t e = csp__schedule_last_event(pruner->schedule, step);
    if (step == pruner->last_step || e < 0 || e <= pruner->last_step) {
        bool shrink = false;
        double s_next = 0.0, progress = 0.0;
        if (step != pruner->last_step) {
            csp_status st = csp__shrink_prepare(pruner, step, &shrink, &s_next, &progress);
            if (st != CSP_OK)
                return st;
        }
        apply_all(pruner);
        if (shrink)
            csp__shrink_apply(pruner, s_next, progress);
        pruner->last_step = step;
        return CSP_MASKED;
    }
    *event = 1;
    csp_status st = prune_event(pruner, e, step);
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
    double t0 = csp__now();
    int32_t event = 0;
    csp_status st = step_inner(pruner, step, &event);
    double dt = csp__now() - t0;
    if (st >= 0) {
        csp__pstats *ps = &pruner->stats;
        ps->steps++;
        ps->total_seconds += dt;
        if (st == CSP_PRUNED) {
            ps->events++;
            ps->last_event_seconds = dt;
            ps->event_seconds += dt;
        }
    }
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
    if (pt->excluded)
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
    if (pt->excluded) {
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
        if (!pt->excluded)
            h = csp__mask_digest(h, pt->mask, pt->weight->numel);
    }
    *digest = h;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_tensor_stats(const csp_pruner *pruner, int32_t index,
                                           csp_tensor_stats *stats) {
    const char *fn = "csp_pruner_tensor_stats";
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, stats, "stats");
    csp_status st = csp__check_options(pruner->ctx, stats, sizeof *stats, fn);
    if (st != CSP_OK)
        return st;
    st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    stats->numel = pt->weight->numel;
    stats->nnz = pt->nnz;
    stats->target_sparsity = pt->target;
    stats->achieved_sparsity = 1.0 - (double)pt->nnz / (double)pt->weight->numel;
    stats->granularity = pt->granularity;
    stats->excluded = pt->excluded;
    stats->last_event = pt->last_event;
    const csp__tstats *ts = &pt->stats;
    csp_sensing *sens = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
    stats->sensing = sens != NULL ? csp_sensing_kind(sens)
                     : pt->cs != NULL ? pt->conf.sensing
                                      : CSP_SENSING_IDENTITY;
    stats->solver = pt->conf.solver;
    stats->correction = pt->conf.correction;
    stats->converged = ts->not_converged == 0 ? 1 : 0;
    stats->weight_error = ts->weight_error;
    stats->sensing_error = ts->sensing_error;
    stats->solver_iterations = ts->iterations;
    stats->solver_iterations_max = ts->iterations_max;
    stats->rows_not_converged = ts->not_converged;
    stats->rows_damped = ts->damped;
    stats->events = ts->events;
    stats->event_seconds = ts->event_seconds;
    stats->total_seconds = ts->total_seconds;
    stats->observed_rows = csp_sensing_count(sens);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_step_stats(const csp_pruner *pruner, csp_step_stats *stats) {
    static const char fn[] = "csp_pruner_step_stats";
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, stats, "stats");
    csp_status st = csp__check_options(pruner->ctx, stats, sizeof *stats, fn);
    if (st != CSP_OK)
        return st;
    const csp__pstats *ps = &pruner->stats;
    stats->steps = ps->steps;
    stats->events = ps->events;
    stats->last_event = pruner->last_event;
    stats->numel = 0;
    stats->nnz = 0;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        stats->numel += pruner->tensors[i].weight->numel;
        stats->nnz += pruner->tensors[i].nnz;
    }
    stats->last_event_seconds = ps->last_event_seconds;
    stats->event_seconds = ps->event_seconds;
    stats->total_seconds = ps->total_seconds;
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

CSP_API csp_status csp_pruner_set_sensing(csp_pruner *pruner, int32_t index,
                                          csp_sensing *sensing) {
    static const char fn[] = "csp_pruner_set_sensing";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[index];
    if (pt->excluded)
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d is excluded", fn, (int)index);
    if (sensing == NULL) {
        if (pt->cs != NULL) {
            pt->cs->attached = NULL;
            if (pt->cs->owned == NULL && pt->conf.sensing == CSP_SENSING_IDENTITY) {
                csp__cs_free(ctx, pt->cs); /* back to the GMP path */
                pt->cs = NULL;
            }
        }
        return CSP_OK;
    }
    if (pt->granularity != CSP_GRANULARITY_ROW)
        return csp__error(ctx, CSP_E_UNSUPPORTED,
                          "%s: compressed-sensing pruning needs CSP_GRANULARITY_ROW; tensor %d "
                          "has granularity %d",
                          fn, (int)index, (int)pt->granularity);
    int64_t len = pt->weight->rank == 1 ? pt->conf.block_size : pt->weight->cols;
    if (pt->weight->rank == 1 && len > pt->weight->numel)
        len = pt->weight->numel;
    if (csp_sensing_n(sensing) != len)
        return csp__error(ctx, CSP_E_SHAPE,
                          "%s: the operator's n = %lld, but tensor %d's CSP rows have %lld "
                          "weights",
                          fn, (long long)csp_sensing_n(sensing), (int)index, (long long)len);
    if (csp__sensing_ctx(sensing) != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the operator belongs to another context", fn);
    if (pt->cs == NULL) {
        if (pt->conf.shrink > 0.0) {
            st = csp__shrink_reserve(pruner, len);
            if (st != CSP_OK)
                return st;
        }
        st = csp__cs_create(pruner, index, &pt->cs);
        if (st != CSP_OK)
            return st;
    }
    pt->cs->attached = sensing;
    return CSP_OK;
}

CSP_API csp_status csp_pruner_observe(csp_pruner *pruner, int32_t index, const float *x,
                                      int64_t rows, int64_t cols) {
    static const char fn[] = "csp_pruner_observe";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    csp_sensing *s = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
    if (s == NULL || csp_sensing_kind(s) != CSP_SENSING_ACTIVATIONS)
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d has no activations sensing", fn,
                          (int)index);
    return csp_sensing_observe(s, x, rows, cols, 0);
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
    if (e >= 0 && (pruner->observe_window == 0 || e - step < pruner->observe_window))
        *flag = 1;
    return CSP_OK;
}
