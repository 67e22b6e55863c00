/* The buffers a pruner binds (weights, companions, gradients) never share
 * memory: csp_step() writes each through its own mask, so an overlap would
 * write one through the other. Checked when a buffer is bound, and again
 * when csp_tensor_set_data() has re-pointed a view of the pruner's context
 * since the last check (the context's data epoch moved). */
#include "prune/pruner_internal.h"

#include <stdlib.h>

/* The bytes from the first to one past the last element of @p t. */
static void span_of(const csp_tensor *t, uintptr_t *lo, uintptr_t *hi) {
    size_t es = csp__dtype_size(t->dtype);
    *lo = (uintptr_t)t->data;
    *hi = *lo + ((size_t)(t->rows - 1) * (size_t)t->row_stride + (size_t)t->cols) * es;
}

static bool overlaps(const csp_tensor *a, const csp_tensor *b) {
    uintptr_t alo, ahi, blo, bhi;
    span_of(a, &alo, &ahi);
    span_of(b, &blo, &bhi);
    return alo < bhi && blo < ahi;
}

static bool list_overlaps(const csp__tlist *l, const csp_tensor *t) {
    for (int32_t c = 0; c < l->n; c++)
        if (overlaps(l->v[c], t))
            return true;
    return false;
}

csp_status csp__check_unbound(const csp_pruner *p, const csp_tensor *t, const char *fn) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (overlaps(pt->weight, t) || list_overlaps(&pt->companions, t) ||
            list_overlaps(&pt->gradients, t))
            return csp__error(p->ctx, CSP_E_INVALID,
                              "%s: the buffer overlaps one already bound to tensor %d ('%s')", fn,
                              (int)i, csp_tensor_name(pt->weight));
    }
    return CSP_OK;
}

/* One bound buffer: its bytes, and what it is (for the message). */
typedef struct {
    uintptr_t lo, hi;
    const csp_tensor *view;
    int32_t index; /* the pruner's tensor it is bound to */
    const char *role;
} binding;

static int by_start(const void *a, const void *b) {
    const binding *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : (x->hi > y->hi);
}

static void add_binding(binding *v, int64_t *n, const csp_tensor *t, int32_t index,
                        const char *role) {
    binding *b = &v[(*n)++];
    span_of(t, &b->lo, &b->hi);
    b->view = t;
    b->index = index;
    b->role = role;
}

csp_status csp__check_bindings(csp_pruner *p, const char *fn) {
    csp_context *ctx = p->ctx;
    if (p->data_epoch == ctx->data_epoch)
        return CSP_OK;
    int64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++)
        n += 1 + p->tensors[i].companions.n + p->tensors[i].gradients.n;
    if (n > 1) {
        binding *v = csp__calloc(ctx, (size_t)n, sizeof *v);
        if (v == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        n = 0;
        for (int32_t i = 0; i < p->num_tensors; i++) {
            const csp__ptensor *pt = &p->tensors[i];
            add_binding(v, &n, pt->weight, i, "weights");
            for (int32_t c = 0; c < pt->companions.n; c++)
                add_binding(v, &n, pt->companions.v[c], i, "companion");
            for (int32_t c = 0; c < pt->gradients.n; c++)
                add_binding(v, &n, pt->gradients.v[c], i, "gradient");
        }
        /* Sorted by start, two spans overlap only if some neighbours do. */
        qsort(v, (size_t)n, sizeof *v, by_start);
        for (int64_t k = 0; k + 1 < n; k++) {
            const binding *a = &v[k], *b = &v[k + 1];
            if (b->lo < a->hi) {
                csp_status st = csp__error(
                    ctx, CSP_E_INVALID,
                    "%s: the %s '%s' of tensor %d ('%s') and the %s '%s' of tensor %d ('%s') "
                    "share memory (a view re-pointed by csp_tensor_set_data()?); nothing was "
                    "changed",
                    fn, a->role, csp_tensor_name(a->view), (int)a->index,
                    csp_tensor_name(p->tensors[a->index].weight), b->role,
                    csp_tensor_name(b->view), (int)b->index,
                    csp_tensor_name(p->tensors[b->index].weight));
                csp__free(ctx, v);
                return st;
            }
        }
        csp__free(ctx, v);
    }
    p->data_epoch = ctx->data_epoch;
    return CSP_OK;
}
