/* The pruner: tensors + masks + schedule; csp_step(). */
#include "prune/pruner_internal.h"

#include <math.h>
#include <string.h>

#include "prune/mask.h"
#include "select/select.h"

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
    return CSP_OK;
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
    p->last_step = -1;
    p->last_event = -1;
    *out = p;
    return CSP_OK;
}

static void free_ptensor(csp_context *ctx, csp__ptensor *pt) {
    csp__free(ctx, pt->companions);
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

/* Is @p data already bound as a weight or a companion? */
static bool buffer_taken(const csp_pruner *p, const void *data) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (pt->weight->data == data)
            return true;
        for (int32_t c = 0; c < pt->num_companions; c++)
            if (pt->companions[c]->data == data)
                return true;
    }
    return false;
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
    bool excluded = opts->exclude != 0;
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
    pruner->tensors[pruner->num_tensors] = pt;
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

CSP_API csp_status csp_pruner_add_companion(csp_pruner *pruner, int32_t index,
                                            csp_tensor *companion) {
    const char *fn = "csp_pruner_add_companion";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, companion, "companion");
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    csp__ptensor *pt = &pruner->tensors[index];
    if (pt->excluded)
        return csp__error(ctx, CSP_E_INVALID, "%s: tensor %d is excluded (it has no mask)", fn,
                          (int)index);
    if (companion->ctx != ctx)
        return csp__error(ctx, CSP_E_INVALID, "%s: the tensor belongs to another context", fn);
    if (!same_shape(companion, pt->weight))
        return csp__error(ctx, CSP_E_SHAPE, "%s: the companion's shape differs from tensor %d's",
                          fn, (int)index);
    if (buffer_taken(pruner, companion->data))
        return csp__error(ctx, CSP_E_INVALID, "%s: this buffer is already bound to the pruner", fn);
    if (pt->num_companions == pt->cap_companions) {
        int32_t cap = pt->cap_companions == 0 ? 4 : pt->cap_companions * 2;
        csp_tensor **grown = csp__calloc(ctx, (size_t)cap, sizeof *grown);
        if (grown == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        if (pt->num_companions > 0)
            memcpy(grown, pt->companions, (size_t)pt->num_companions * sizeof *grown);
        csp__free(ctx, pt->companions);
        pt->companions = grown;
        pt->cap_companions = cap;
    }
    pt->companions[pt->num_companions++] = companion;
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
        for (int32_t c = 0; c < pt->num_companions; c++)
            csp__mask_apply(p->ctx, pt->companions[c], pt->mask);
    }
}

static csp__select_src src_of(const csp__ptensor *pt) {
    csp__select_src s = {pt->weight, pt->mask, pt->next};
    return s;
}

/* Select every tensor's next mask for schedule target @p s; writes nothing
 * but the `next` scratch masks. */
static csp_status select_all(csp_pruner *p, double s) {
    csp_context *ctx = p->ctx;
    csp__select_src *group = NULL;
    csp_status st = CSP_OK;
    for (int32_t i = 0; i < p->num_tensors && st == CSP_OK; i++) {
        csp__ptensor *pt = &p->tensors[i];
        if (pt->excluded)
            continue;
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
    }
    csp__free(ctx, group);
    return st;
}

CSP_API csp_status csp_step(csp_pruner *pruner, int64_t step) {
    if (pruner == NULL)
        return CSP_E_NULL;
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
        apply_all(pruner);
        pruner->last_step = step;
        return CSP_MASKED;
    }
    double s;
    csp_status st = csp__schedule_target(pruner->schedule, e, &s);
    if (st != CSP_OK)
        return st;
    st = select_all(pruner, s);
    if (st != CSP_OK)
        return st;
    for (int32_t i = 0; i < pruner->num_tensors; i++) {
        csp__ptensor *pt = &pruner->tensors[i];
        if (pt->excluded)
            continue;
        uint64_t *old = pt->mask;
        pt->mask = pt->next;
        pt->next = old;
        pt->nnz = csp__mask_popcount(pt->mask, pt->weight->numel);
        pt->target = csp__tensor_target(pruner, pt, s);
        pt->last_event = e;
    }
    apply_all(pruner);
    pruner->last_step = step;
    pruner->last_event = e;
    csp__log(ctx, CSP_LOG_INFO, "csp_step: pruning event %lld at step %lld, target %.6f",
             (long long)e, (long long)step, s);
    return CSP_PRUNED;
}

CSP_API csp_status csp_pruner_last_step(const csp_pruner *pruner, int64_t *step) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, step, "step");
    *step = pruner->last_step;
    return CSP_OK;
}

/* ---- masks and stats -------------------------------------------------------- */

CSP_API csp_status csp_pruner_mask_words(const csp_pruner *pruner, int32_t index, uint64_t *words,
                                         int64_t num_words) {
    const char *fn = "csp_pruner_mask_words";
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, words, "words");
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    int64_t nw = csp__mask_words(pt->weight->numel);
    if (num_words < nw)
        return csp__error(pruner->ctx, CSP_E_BUFFER, "%s: %lld words needed, %lld given", fn,
                          (long long)nw, (long long)num_words);
    if (pt->excluded)
        csp__mask_fill(words, pt->weight->numel);
    else
        memcpy(words, pt->mask, (size_t)nw * sizeof *words);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_mask_bytes(const csp_pruner *pruner, int32_t index, uint8_t *bytes,
                                         int64_t num_bytes) {
    const char *fn = "csp_pruner_mask_bytes";
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(pruner->ctx, bytes, "bytes");
    csp_status st = check_index(pruner, index, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    int64_t numel = pt->weight->numel;
    if (num_bytes < numel)
        return csp__error(pruner->ctx, CSP_E_BUFFER, "%s: %lld bytes needed, %lld given", fn,
                          (long long)numel, (long long)num_bytes);
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
    return CSP_OK;
}
