/*
 * Walking a tensor's elements in pieces that stay within one row and one
 * 64-bit word of its mask (lib/core/bits.h). Internal.
 */
#ifndef CSP_CORE_WALK_H
#define CSP_CORE_WALK_H

#include "core/internal.h"

/* Walk the flat range [a, b) of a tensor in pieces that stay within one row
 * and one mask word:
 *   csp__walk w;
 *   for (csp__walk_init(&w, t, a, b); csp__walk_next(&w);)
 *       use w.p (first element), w.i (its flat index), w.n (1..64 elements)
 */
typedef struct {
    char *base;
    size_t esize;
    int64_t cols, stride; /* a contiguous tensor is walked as one row */
    int64_t r, c, end;
    void *p;
    int64_t i;
    int n;
} csp__walk;

static inline void csp__walk_init(csp__walk *w, const csp_tensor *t, int64_t a, int64_t b) {
    w->base = (char *)t->data;
    w->esize = csp__dtype_size(t->dtype);
    w->cols = t->row_stride == t->cols ? t->numel : t->cols;
    w->stride = t->row_stride;
    w->r = a / w->cols;
    w->c = a % w->cols;
    w->end = b;
    w->i = a;
    w->n = 0;
}

static inline bool csp__walk_next(csp__walk *w) {
    w->i += w->n;
    w->c += w->n;
    if (w->c == w->cols) {
        w->c = 0;
        w->r++;
    }
    if (w->i >= w->end)
        return false;
    int64_t n = w->cols - w->c;
    if (n > w->end - w->i)
        n = w->end - w->i;
    if (n > 64 - (w->i & 63))
        n = 64 - (w->i & 63);
    w->n = (int)n;
    w->p = w->base + (size_t)(w->r * w->stride + w->c) * w->esize;
    return true;
}

#endif /* CSP_CORE_WALK_H */
