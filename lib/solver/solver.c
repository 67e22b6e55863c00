/* The solver object, batch validation and the public entry point. */
#include "solver_internal.h"

#include "sensing/sensing_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW(member, type, def, lo, hi, fl, pfl, en, doc)                                     \
    {#member, doc, en, CSP_OPTION_##type, fl, 0,                                                \
     {offsetof(csp_solver_options, member), -1, -1}, lo, hi, def,                      \
     offsetof(csp_solver_options, member)},
static const csp__option option_rows[] = {CSP__SOLVER_OPTIONS(ROW)};
#undef ROW

static void solver_defaults(void *full) {
    csp__options_defaults(option_rows, sizeof option_rows / sizeof option_rows[0], 0, full);
}

const csp__struct_desc csp__solver_options_desc = {
    "csp_solver_options", CSP__FIRST_SIZE_SOLVER_OPTIONS, sizeof(csp_solver_options),
    solver_defaults, true};
const csp__struct_desc csp__solver_batch_desc = {
    "csp_solver_batch", CSP__FIRST_SIZE_SOLVER_BATCH, sizeof(csp_solver_batch), NULL, false};
const csp__struct_desc csp__row_stats_desc = {"csp_row_stats", CSP__FIRST_SIZE_ROW_STATS,
                                              sizeof(csp_row_stats), NULL, false};

CSP_API csp_status csp_solver_options_init(csp_solver_options *opts, size_t struct_size) {
    return csp__struct_init(&csp__solver_options_desc, opts, struct_size);
}

CSP_API csp_status csp_solver_batch_init(csp_solver_batch *batch, size_t struct_size) {
    return csp__struct_init(&csp__solver_batch_desc, batch, struct_size);
}

csp_status csp__solver_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp_solver_options *o) {
    static const size_t keep[1] = {0};
    csp_status st = csp__options_unknown_zero(ctx, fn, prefix, option_rows,
                                              sizeof option_rows / sizeof option_rows[0], 0, o,
                                              sizeof *o, keep, 1);
    if (st != CSP_OK)
        return st;
    return csp__options_check(ctx, fn, prefix, option_rows,
                              sizeof option_rows / sizeof option_rows[0], 0, o);
}

CSP_API csp_status csp_solver_create(csp_solver **out, csp_context *ctx,
                                     const csp_solver_options *opts) {
    static const char fn[] = "csp_solver_create";
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    csp_solver_options full;
    csp_status st = csp__struct_in(ctx, &csp__solver_options_desc, opts, &full, fn);
    if (st == CSP_OK)
        st = csp__solver_options_check(ctx, fn, "", &full);
    if (st != CSP_OK)
        return st;
    csp_solver *s = csp__calloc(ctx, 1, sizeof *s);
    if (s == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    s->ctx = ctx;
    s->opt = full;
    *out = s;
    return CSP_OK;
}

CSP_API void csp_solver_free(csp_solver *s) {
    if (s == NULL)
        return;
    csp__free(s->ctx, s);
}

/* ---- helpers shared by the methods ------------------------------------------------ */

void csp__rows_times_gram(const csp__gram *g, const float *w, int64_t ws, int64_t cnt,
                          float *out) {
    int64_t n = g->n;
    csp__sgemm(cnt, n, n, w, ws, 1, g->g32, n, out, n, false);
}

void csp__put_stats(const csp__batch *b, int64_t r, const csp_row_stats *st) {
    if (b->stats == NULL)
        return;
    unsigned char *dst = (unsigned char *)b->stats + (size_t)r * b->stats_size;
#ifdef CSP_GROWTH_TEST
    csp_row_stats grown = *st;
    grown.growth_probe = CSP__GROWTH_PROBE_DEFAULT;
    st = &grown;
#endif
    csp__struct_out_sized(&csp__row_stats_desc, st, dst, b->stats_size);
}

void csp__put_support(const csp__batch *b, int64_t r, const uint64_t *bits) {
    if (b->support == NULL)
        return;
    int64_t base = r * b->sbits;
    for (int64_t c = 0; c < b->n; c++)
        csp__bit_set(b->support, base + c, csp__bit_get(bits, c));
}

static int cmp_ranked(const void *pa, const void *pb) {
    const csp__ranked *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    if (a->key2 != b->key2)
        return a->key2 > b->key2 ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

void csp__rank_sort(csp__ranked *items, int64_t count) {
    if (count > 1)
        qsort(items, (size_t)count, sizeof *items, cmp_ranked);
}

/* ---- validation ---------------------------------------------------------------------- */

static bool span_of(const float *p, int64_t rows, int64_t stride, int64_t n, uintptr_t *lo,
                    uintptr_t *hi) {
    int64_t last;
    if (!csp__mul_i64(rows - 1, stride, &last) || !csp__add_i64(last, n, &last) ||
        last > INT64_MAX / (int64_t)sizeof(float))
        return false;
    *lo = (uintptr_t)p;
    *hi = (uintptr_t)p + (uintptr_t)last * sizeof(float);
    return true;
}

static csp_status resolve_bits(csp_context *ctx, int64_t given, int64_t n, int64_t rows,
                               int64_t *out, const char *what, const char *fn) {
    int64_t bits = given == 0 ? 64 * ((n + 63) / 64) : given;
    int64_t total;
    if (bits < n || !csp__mul_i64(bits, rows, &total))
        return csp__error(ctx, CSP_E_SHAPE, "%s: %s_row_bits = %lld is below n = %lld", fn, what,
                          (long long)given, (long long)n);
    *out = bits;
    return CSP_OK;
}

csp_status csp__resolve_batch(const csp_solver *s, int64_t n, const csp_solver_batch *caller,
                              csp__batch *b, const char *fn, bool refit) {
    csp_context *ctx = s->ctx;
    const csp_solver_options *o = &s->opt;
    CSP_CHECK_NULL(ctx, caller, "batch");
    csp_solver_batch full;
    const csp_solver_batch *in = &full;
    csp_status st = csp__struct_in(ctx, &csp__solver_batch_desc, caller, &full, fn);
    if (st != CSP_OK)
        return st;
    memset(b, 0, sizeof *b);
    b->fn = fn;
    if (in->rows < 0)
        return csp__error(ctx, CSP_E_SHAPE, "%s: rows = %lld < 0", fn, (long long)in->rows);
    if (in->n != n)
        return csp__error(ctx, CSP_E_SHAPE, "%s: batch n = %lld but the Gram is %lld x %lld", fn,
                          (long long)in->n, (long long)n, (long long)n);
    b->rows = in->rows;
    b->n = n;
    if (b->rows == 0)
        return CSP_OK;
    CSP_CHECK_NULL(ctx, in->w, "batch->w");
    CSP_CHECK_NULL(ctx, in->x, "batch->x");
    b->w = in->w;
    b->x = in->x;
    b->ws = in->w_stride == 0 ? n : in->w_stride;
    b->xs = in->x_stride == 0 ? n : in->x_stride;
    if (b->ws < n || b->xs < n)
        return csp__error(ctx, CSP_E_SHAPE, "%s: w_stride = %lld and x_stride = %lld must be 0 "
                          "or >= n = %lld", fn, (long long)in->w_stride,
                          (long long)in->x_stride, (long long)n);
    if (b->ws > INT32_MAX || n > INT32_MAX)
        return csp__error(ctx, CSP_E_SHAPE, "%s: strides above 2^31 are not supported", fn);
    uintptr_t wlo, whi, xlo, xhi;
    if (!span_of(b->w, b->rows, b->ws, n, &wlo, &whi) ||
        !span_of(b->x, b->rows, b->xs, n, &xlo, &xhi))
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: the batch does not fit in memory", fn);
    if ((const float *)b->x == b->w) {
        if (b->xs != b->ws)
            return csp__error(ctx, CSP_E_INVALID, "%s: x is w but x_stride != w_stride", fn);
    } else if (xlo < whi && wlo < xhi) {
        return csp__error(ctx, CSP_E_INVALID, "%s: x overlaps w without being w", fn);
    }
    st = resolve_bits(ctx, in->allowed_row_bits, n, b->rows, &b->abits, "allowed", fn);
    if (st == CSP_OK)
        st = resolve_bits(ctx, in->support_row_bits, n, b->rows, &b->sbits, "support", fn);
    if (st != CSP_OK)
        return st;
    b->allowed = in->allowed;
    b->support = in->support;
    if (refit)
        CSP_CHECK_NULL(ctx, in->support, "batch->support");
    if (in->stats != NULL && !csp__struct_size_ok(&csp__row_stats_desc, in->stats_size))
        return csp__error(ctx, CSP_E_RANGE, "%s: stats_size = %zu is outside %zu..%d", fn,
                          in->stats_size, csp__row_stats_desc.first_size, CSP_STRUCT_MAX_SIZE);
    b->stats = in->stats;
    b->stats_size = in->stats_size;
    b->k = in->k;
    b->k_all = in->k_all;
    b->lambda = in->lambda;
    b->warm = in->warm_start != 0;
    if (in->warm_start != 0 && in->warm_start != 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: warm_start = %d must be 0 or 1", fn,
                          (int)in->warm_start);

    bool l1 = csp__method_l1(o->method);
    bool uses_k = !refit && (!l1 || o->calibrate);
    b->kmax = 0;
    if (uses_k) {
        for (int64_t r = 0; r < b->rows; r++) {
            int32_t k = csp__batch_k(b, r);
            if (k < 0 || k > n)
                return csp__error(ctx, CSP_E_RANGE, "%s: k = %d for row %lld is outside 0..%lld",
                                  fn, (int)k, (long long)r, (long long)n);
            if (b->allowed != NULL) {
                int64_t avail = csp__mask_popcount_range(b->allowed, r * b->abits, n);
                if (k > avail)
                    return csp__error(ctx, CSP_E_RANGE,
                                      "%s: k = %d for row %lld but its allowed support has "
                                      "only %lld columns",
                                      fn, (int)k, (long long)r, (long long)avail);
            }
            b->kmax = k > b->kmax ? k : b->kmax;
        }
    }
    if (!refit && l1) {
        for (int64_t r = 0; r < b->rows && b->lambda != NULL; r++) {
            double lam = b->lambda[r];
            if (!isfinite(lam))
                return csp__error(ctx, CSP_E_NONFINITE, "%s: lambda[%lld] is not finite", fn,
                                  (long long)r);
            if (!o->calibrate && !(lam > 0.0))
                return csp__error(ctx, CSP_E_RANGE, "%s: lambda[%lld] = %g must be > 0", fn,
                                  (long long)r, lam);
        }
        if (!o->calibrate && b->lambda == NULL && !(o->lambda > 0.0))
            return csp__error(ctx, CSP_E_RANGE,
                              "%s: without calibration lambda must be > 0 (options lambda = "
                              "%g and batch->lambda is NULL)",
                              fn, o->lambda);
    }
    for (int64_t r = 0; r < b->rows; r++) {
        const float *wr = b->w + r * b->ws;
        for (int64_t c = 0; c < n; c++)
            if (!isfinite(wr[c]))
                return csp__error(ctx, CSP_E_NONFINITE, "%s: w[%lld][%lld] is not finite", fn,
                                  (long long)r, (long long)c);
    }
    if (!refit && l1 && b->warm) {
        for (int64_t r = 0; r < b->rows; r++) {
            const float *xr = b->x + r * b->xs;
            for (int64_t c = 0; c < n; c++)
                if (csp__allowed(b, r, c) && !isfinite(xr[c]))
                    return csp__error(ctx, CSP_E_NONFINITE,
                                      "%s: warm start x[%lld][%lld] is not finite", fn,
                                      (long long)r, (long long)c);
        }
    }
    return CSP_OK;
}

/* ---- entry points ------------------------------------------------------------------ */

static csp_status omp_method(csp_solver *s, csp__gram *g, const csp__batch *b) {
    return csp__omp(s, g, b);
}

static csp_status sweep_method(csp_solver *s, csp__gram *g, const csp__batch *b) {
    return csp__sweep(s, g, b);
}

/* The methods, by csp_solver_method. */
typedef struct {
    const char *name;
    csp_status (*solve)(csp_solver *s, csp__gram *g, const csp__batch *b);
} method_entry;

static const method_entry methods[] = {
    [CSP_SOLVER_OMP] = {"omp", omp_method},
    [CSP_SOLVER_ISTA] = {"ista", csp__l1},
    [CSP_SOLVER_FISTA] = {"fista", csp__l1},
    [CSP_SOLVER_SWEEP] = {"sweep", sweep_method},
};

csp_status csp__solver_run(csp_solver *s, csp__gram *g, const csp_solver_batch *batch,
                           const char *fn) {
    csp__batch b;
    csp_status st = csp__resolve_batch(s, g->n, batch, &b, fn, false);
    if (st != CSP_OK || b.rows == 0)
        return st;
    return methods[s->opt.method].solve(s, g, &b);
}

CSP_API csp_status csp_solver_solve(csp_solver *s, csp_sensing *sensing, int64_t row_block,
                                    int64_t event, const csp_solver_batch *batch) {
    static const char fn[] = "csp_solver_solve";
    if (s == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(s->ctx, sensing, "sensing");
    csp__gram *g = NULL;
    csp_status st = csp__sensing_prepare(sensing, row_block, event, &g);
    if (st != CSP_OK)
        return st;
    return csp__solver_run(s, g, batch, fn);
}
