/* The between-event shrink (experimental, CSP_X_SHRINK; docs/guide.md,
 * "Between-event shrink"): between two events, the weights the next event
 * will prune are soft-thresholded towards zero, a little more at every step.
 * A hook of csp_step()'s non-event steps, for tensors of any strategy. */
#include "prune/pruner_internal.h"

#include <math.h>
#include <string.h>

#include "prune/adaptive.h"
#include "prune/mask.h"
#include "select/select.h"

/* ---- between-event shrink ----------------------------------------------------------- */

/* A kept weight of a row: its magnitude and column. The order "larger
 * magnitude first, then lower column" is total, so the set selected below
 * never depends on the selection algorithm. */
typedef struct {
    double mag;
    int32_t idx;
} shrink_item;

static inline bool ranks_before(const shrink_item *a, const shrink_item *b) {
    return a->mag > b->mag || (a->mag == b->mag && a->idx < b->idx);
}

static void swap_items(shrink_item *a, shrink_item *b) {
    shrink_item t = *a;
    *a = *b;
    *b = t;
}

/* Partially order @p v so that v[k] is the item of rank k, v[0..k-1] rank
 * before it and v[k+1..] after it (quickselect, median-of-three). */
static void nth_item(shrink_item *v, int64_t cnt, int64_t k) {
    int64_t lo = 0, hi = cnt - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ranks_before(&v[mid], &v[lo]))
            swap_items(&v[mid], &v[lo]);
        if (ranks_before(&v[hi], &v[lo]))
            swap_items(&v[hi], &v[lo]);
        if (ranks_before(&v[hi], &v[mid]))
            swap_items(&v[hi], &v[mid]);
        shrink_item pivot = v[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (ranks_before(&v[i], &pivot))
                i++;
            while (ranks_before(&pivot, &v[j]))
                j--;
            if (i <= j) {
                swap_items(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

csp_status csp__shrink_reserve(csp_pruner *p, int64_t len, const char *fn) {
    if (len <= p->shrink_cap)
        return CSP_OK;
    shrink_item *buf = csp__malloc(p->ctx, (size_t)len * sizeof *buf);
    if (buf == NULL)
        return csp__error(p->ctx, CSP_E_NOMEM, "%s: out of memory for the shrink scratch", fn);
    csp__free(p->ctx, p->shrink_buf);
    p->shrink_buf = buf;
    p->shrink_cap = len;
    return CSP_OK;
}

/* Is the shrink due at @p step, and with which next-event target and
 * progress between the events? */
static csp_status shrink_prepare(csp_pruner *p, int64_t step, bool *active, double *s_next,
                                 double *progress) {
    *active = false;
    bool any = false;
    for (int32_t i = 0; i < p->num_tensors && !any; i++)
        any = !csp__excluded(&p->tensors[i]) && p->tensors[i].x.shrink > 0.0;
    if (!any || p->last_event < 0)
        return CSP_OK;
    int64_t e = csp__schedule_next_event(p->schedule, step);
    if (e < 0 || e <= p->last_event)
        return CSP_OK;
    csp_status st = csp__schedule_target(p->schedule, e, s_next);
    if (st != CSP_OK)
        return st;
    *progress = (double)(step - p->last_event) / (double)(e - p->last_event);
    *active = true;
    return CSP_OK;
}

/* Shrink one row (@p len weights at @p data, mask bits from @p base). */
static void shrink_row(csp_pruner *p, const csp__ptensor *pt, char *data, int64_t base,
                       int64_t len, double ts, double tau_progress) {
    int64_t keep = len - csp__round_count(ts, len);
    int64_t cnt = csp__mask_popcount_range(pt->mask, base, len);
    if (keep >= cnt)
        return;
    bool f64 = pt->weight->dtype == CSP_DTYPE_F64;
    shrink_item *v = p->shrink_buf;
    int64_t m = 0;
    for (int64_t c = 0; c < len; c++) {
        if (!csp__bit_get(pt->mask, base + c))
            continue;
        double x = f64 ? ((double *)(void *)data)[c] : (double)((float *)(void *)data)[c];
        v[m].mag = isnan(x) ? INFINITY : fabs(x);
        v[m].idx = (int32_t)c;
        m++;
    }
    double cut;
    if (keep > 0) {
        nth_item(v, m, keep - 1);
        cut = v[keep - 1].mag;
    } else {
        cut = 0.0;
        for (int64_t q = 0; q < m; q++)
            cut = v[q].mag > cut ? v[q].mag : cut;
    }
    double thr = tau_progress * cut;
    if (!(thr > 0.0) || isinf(thr))
        return;
    for (int64_t q = keep; q < m; q++) {
        int32_t c = v[q].idx;
        double x = f64 ? ((double *)(void *)data)[c] : (double)((float *)(void *)data)[c];
        if (isnan(x))
            continue;
        double a = fabs(x) - thr;
        double y = a > 0.0 ? copysign(a, x) : 0.0;
        if (f64)
            ((double *)(void *)data)[c] = y;
        else
            ((float *)(void *)data)[c] = (float)y;
    }
}

static void shrink_apply(csp_pruner *p, double s_next, double s_last, double progress) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (csp__excluded(pt) || !(pt->x.shrink > 0.0))
            continue;
        const csp_tensor *t = pt->weight;
        double ts = csp__adapt_target(p, pt, s_next, s_last, NULL);
        double tp = pt->x.shrink * progress;
        size_t es = csp__dtype_size(t->dtype);
        if (pt->cs != NULL) {
            const csp__pcs *cs = pt->cs;
            for (int64_t r = 0; r < cs->rows + (cs->tail > 0); r++)
                shrink_row(p, pt, csp__cs_row_ptr(t, cs, r), r * cs->n,
                           r < cs->rows ? cs->n : cs->tail,
                           ts, tp);
        } else {
            for (int64_t r = 0; r < t->rows; r++)
                shrink_row(p, pt, (char *)t->data + (size_t)(r * t->row_stride) * es,
                           r * t->cols, t->cols, ts, tp);
        }
    }
}

csp_status csp__shrink_step(csp_pruner *p, int64_t step) {
    bool active = false;
    double s_next = 0.0, progress = 0.0;
    double s_last = 0.0;
    csp_status st = shrink_prepare(p, step, &active, &s_next, &progress);
    if (st == CSP_OK && active)
        st = csp__adapt_last_s(p, &s_last);
    if (st == CSP_OK && active)
        shrink_apply(p, s_next, s_last, progress);
    return st;
}

int64_t csp__shrink_row_length(const csp__ptensor *pt) {
    if (pt->cs != NULL)
        return pt->cs->n;
    const csp_tensor *w = pt->weight;
    if (w->rank == 1 && pt->conf.sensing.kind != CSP_SENSING_IDENTITY)
        return pt->conf.block_size < w->numel ? pt->conf.block_size : w->numel;
    return w->cols;
}
