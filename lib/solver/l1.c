/* ISTA and FISTA for min_x 1/2 (w - x)^T G (w - x) + lambda ||x||_1 on a
 * batch of rows, with x restricted to each row's allowed support.
 *
 * One iteration is x <- soft(y - (G y - b) / L, lambda / L) with b = G w,
 * L >= lambda_max(G) and y = x (ISTA) or the Nesterov point (FISTA). G y is
 * never multiplied: the solver keeps gx = G x and uses linearity,
 * G y = gx + beta (gx - gx_prev), so there is one product G x per iteration
 * and the duality gap of x comes for free (g = b - gx).
 *
 * Two ways to form G x for a chunk of rows:
 *   - GEMM mode: all active rows at once, csp__sgemm (dense iterates);
 *   - row mode: per row, sum over the nonzeros of x of x_j G[j, :] (a
 *     gather-AXPY: O(n nnz) instead of O(n^2)), each row to convergence,
 *     rows in parallel.
 * A chunk starts in GEMM mode and switches to row mode for good once its
 * iterates are sparse (density below DENSE_SWITCH). Converged rows leave the
 * GEMM at once (their slots are compacted away).
 *
 * Duality gap (Gram form of the Lasso dual, restricted to the allowed set):
 *   g = G (w - x), r = (w - x).g, P = r/2 + lambda ||x||_1,
 *   s = min(1, lambda / max_A |g|), D = s (r + x.g) - s^2 r / 2,
 * and a row has converged when P - D <= tol P.
 *
 * Calibration (exact nnz = k per row): bisection on lambda in log space,
 * each trial warm-started from the previous one, bracketed by
 * lambda_max = max_A |b| (x = 0). When no trial gives exactly k nonzeros
 * (ties), the solution at the largest lambda with more than k is cut to its
 * k largest |x| (lower index first); when no trial reaches k (rank-deficient
 * G: a Lasso solution has at most rank(G) nonzeros), the support is filled
 * by |w|, then by index. */
#include "solver_internal.h"

#include <math.h>
#include <string.h>

/* Switch a chunk from GEMM mode to row mode below this iterate density
 * (measured crossover at n = 256: row mode wins at 0.25, GEMM at 0.47). */
#define DENSE_SWITCH 0.35

typedef struct {
    float *base;                         /* the allocation (X, XP, ... rotate) */
    float *X, *XP, *GX, *GXP, *B, *PINF; /* chunk x n each */
    int64_t *row;
    double *t, *lam, *energy;
    int32_t *iters, *nnz;
    csp__prox_out *po;
} l1_chunk;

typedef struct {
    int32_t *idx;
    float *val, *xlo, *gtmp;
    csp__ranked *items;
    uint64_t *sel;
} l1_ws;

typedef struct {
    csp_solver *s;
    const csp__gram *g;
    const csp__batch *b;
    l1_chunk *ch;
    l1_ws *ws;
    bool fista, restart;
    double tol;
    int32_t max_iter;
    float invL;
    double L;
    bool has_mask;
    csp_row_stats *rs; /* per chunk row */
    uint64_t *bits;    /* per chunk row: the returned support */
    int64_t words;
    int64_t r0;
} l1_ctx;

static bool gap_ok(const csp__prox_out *po, double lam, double tol) {
    double r = po->r;
    double P = 0.5 * r + lam * po->l1;
    double s = po->gmax > lam ? lam / po->gmax : 1.0;
    double D = s * (r + po->xg) - 0.5 * s * s * r;
    return P - D <= tol * P;
}

/* A row's iterate state: four vectors and the FISTA momentum. */
typedef struct {
    float *x, *xp, *gx, *gxp;
    double t;
    int32_t iters, nnz;
} l1_row;

static void swapf(float **a, float **b) {
    float *t = *a;
    *a = *b;
    *b = t;
}

/* Continue the iteration of one row until its gap is small or @p budget more
 * products were made. On return x, gx are the last iterate and *fin holds
 * its gap terms. */
static bool row_solve(const l1_ctx *c, l1_row *st, const float *w, const float *b,
                      const float *pinf, double lam, int32_t budget, l1_ws *ws,
                      csp__prox_out *fin) {
    int64_t n = c->g->n;
    float thr = (float)(lam * (double)c->invL);
    for (int32_t it = 0;; it++) {
        double tn = st->t, beta = 0.0;
        if (c->fista) {
            tn = 0.5 * (1.0 + sqrt(1.0 + 4.0 * st->t * st->t));
            beta = (st->t - 1.0) / tn;
        }
        csp__prox_out po;
        csp__f32_prox_step(n, w, b, pinf, thr, (float)beta, c->invL, st->x, st->xp, st->gx,
                           st->gxp, ws->idx, ws->val, &po);
        if (gap_ok(&po, lam, c->tol)) {
            *fin = po;
            return true;
        }
        if (it >= budget) {
            *fin = po;
            return false;
        }
        if (c->fista)
            st->t = c->restart && po.rdot > 0.0 ? 1.0 : tn;
        memset(st->gxp, 0, (size_t)n * sizeof(float));
        csp__f32_axpy_rows(st->gxp, n, c->g->g32, n, ws->idx, ws->val, po.nnz);
        swapf(&st->x, &st->xp);
        swapf(&st->gx, &st->gxp);
        st->nnz = (int32_t)po.nnz;
        st->iters++;
    }
}

/* gx = G x from scratch (sparse). */
static int32_t product(const l1_ctx *c, const float *x, float *gx, l1_ws *ws) {
    int64_t n = c->g->n, nnz = 0;
    for (int64_t j = 0; j < n; j++)
        if (x[j] != 0.0f) {
            ws->idx[nnz] = (int32_t)j;
            ws->val[nnz] = x[j];
            nnz++;
        }
    memset(gx, 0, (size_t)n * sizeof(float));
    csp__f32_axpy_rows(gx, n, c->g->g32, n, ws->idx, ws->val, nnz);
    return (int32_t)nnz;
}

/* Write row r's result (x may be w: everything of w was read before). The
 * support is @p sel when given, else the nonzeros of xr; st->nnz is set to
 * its size. */
static void finish_row(const l1_ctx *c, int64_t r, const float *xr, const uint64_t *sel,
                       csp_row_stats *st) {
    const csp__batch *b = c->b;
    int64_t n = b->n;
    uint64_t *bits = c->bits + (r - c->r0) * c->words;
    if (sel != NULL) {
        memcpy(bits, sel, (size_t)c->words * sizeof(uint64_t));
    } else {
        memset(bits, 0, (size_t)c->words * sizeof(uint64_t));
        for (int64_t j = 0; j < n; j++)
            if (xr[j] != 0.0f)
                csp__bit_set(bits, j, true);
    }
    st->nnz = (int32_t)csp__mask_popcount_range(bits, 0, n);
    float *x = b->x + r * b->xs;
    if (x != xr)
        memcpy(x, xr, (size_t)n * sizeof(float));
    c->rs[r - c->r0] = *st;
}

/* ---- calibration of one row (row mode) ---------------------------------------------- */

static float kth_largest_abs(const l1_ctx *c, int64_t r, const float *v, int32_t k,
                             csp__ranked *items) {
    int64_t n = c->g->n, cnt = 0;
    for (int64_t j = 0; j < n; j++)
        if (csp__allowed(c->b, r, j)) {
            items[cnt].key = fabsf(v[j]);
            items[cnt].key2 = 0.0f;
            items[cnt].idx = (int32_t)j;
            cnt++;
        }
    csp__rank_sort(items, cnt);
    return k < cnt ? items[k].key : 0.0f;
}

/* Keep the k entries of x ranked first by (|x|, |w|, lower index) among the
 * allowed ones, zero the rest, and mark the kept ones in sel. */
static void keep_top_k(const l1_ctx *c, int64_t r, float *x, const float *w, int32_t k,
                       csp__ranked *items, uint64_t *sel) {
    int64_t n = c->g->n, cnt = 0;
    for (int64_t j = 0; j < n; j++)
        if (csp__allowed(c->b, r, j)) {
            items[cnt].key = fabsf(x[j]);
            items[cnt].key2 = fabsf(w[j]);
            items[cnt].idx = (int32_t)j;
            cnt++;
        }
    csp__rank_sort(items, cnt);
    memset(sel, 0, (size_t)c->words * sizeof(uint64_t));
    for (int64_t q = 0; q < cnt; q++) {
        if (q < k)
            csp__bit_set(sel, items[q].idx, true);
        else
            x[items[q].idx] = 0.0f;
    }
}

static void calibrate_row(const l1_ctx *c, int64_t slot, int32_t worker) {
    const csp__batch *b = c->b;
    l1_chunk *ch = c->ch;
    l1_ws *ws = &c->ws[worker];
    int64_t n = c->g->n, r = ch->row[slot];
    const float *w = b->w + r * b->ws;
    const float *brow = ch->B + slot * n;
    const float *pinf = c->has_mask ? ch->PINF + slot * n : NULL;
    int32_t k = csp__batch_k(b, r);
    l1_row st = {ch->X + slot * n, ch->XP + slot * n, ch->GX + slot * n, ch->GXP + slot * n,
                 1.0, 0, ch->nnz[slot]};
    csp_row_stats out = {0};
    out.energy = ch->energy[slot];

    double lam_max = 0.0;
    for (int64_t j = 0; j < n; j++)
        if (pinf == NULL || pinf[j] == 0.0f)
            lam_max = fabs((double)brow[j]) > lam_max ? fabs((double)brow[j]) : lam_max;
    double guess = b->lambda != NULL ? b->lambda[r] : 0.0;
    double lam = guess > 0.0 ? guess : (double)kth_largest_abs(c, r, brow, k, ws->items);
    if (!(lam > 0.0) || lam >= lam_max)
        lam = 0.5 * lam_max;
    double lo = 0.0, hi = lam_max;
    bool have_lo = false, exact = false, conv = true;
    int32_t best_cnt = -1, stalls = 0;
    int32_t budget_left = c->max_iter;
    csp__prox_out fin = {0};
    if (k == 0 || lam_max == 0.0) {
        memset(st.x, 0, (size_t)n * sizeof(float));
        memset(st.gx, 0, (size_t)n * sizeof(float));
        st.nnz = 0;
        exact = k == 0;
        lam = lam_max;
    } else {
        for (int32_t trial = 0; trial < c->s->opt.max_bisect; trial++) {
            memcpy(st.xp, st.x, (size_t)n * sizeof(float));
            memcpy(st.gxp, st.gx, (size_t)n * sizeof(float));
            st.t = 1.0;
            budget_left = c->max_iter;
            conv = row_solve(c, &st, w, brow, pinf, lam, budget_left, ws, &fin);
            int32_t cnt = st.nnz;
            if (cnt == k) {
                exact = true;
                break;
            }
            if (cnt > k) {
                lo = lam;
                have_lo = true;
                memcpy(ws->xlo, st.x, (size_t)n * sizeof(float));
            } else {
                hi = lam;
            }
            if (have_lo) {
                if (hi <= lo * (1.0 + 1e-7))
                    break;
                lam = sqrt(lo * hi);
            } else {
                /* Below k and no bracket yet: go down. A rank-deficient G
                 * caps the count (at most rank(G) nonzeros), so give up
                 * after four steps without progress. */
                stalls = cnt > best_cnt ? 0 : stalls + 1;
                best_cnt = cnt > best_cnt ? cnt : best_cnt;
                lam *= 0.25;
                if (lam < 1e-9 * lam_max || stalls >= 4)
                    break;
            }
        }
    }
    float *x = st.x;
    if (!exact) {
        if (have_lo) {
            x = ws->xlo;
            lam = lo;
            out.flags |= CSP_ROW_CUT;
        } else {
            out.flags |= CSP_ROW_FILLED;
        }
        keep_top_k(c, r, x, w, k, ws->items, ws->sel);
    }
    /* The residual of the returned x. */
    if (!exact || k == 0 || lam_max == 0.0) {
        product(c, x, ws->gtmp, ws);
        double res = 0.0;
        for (int64_t j = 0; j < n; j++)
            res += ((double)w[j] - (double)x[j]) * ((double)brow[j] - (double)ws->gtmp[j]);
        out.residual = res;
    } else {
        out.residual = fin.r;
    }
    if (out.residual < 0.0)
        out.residual = 0.0;
    out.lambda = lam;
    out.iterations = st.iters;
    out.converged = conv ? 1 : 0;
    if (b->lambda != NULL)
        b->lambda[r] = lam;
    finish_row(c, r, x, exact ? NULL : ws->sel, &out);
}

typedef struct {
    const l1_ctx *c;
    int64_t first;
} slot_job;

static void calibrate_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const slot_job *j = arg;
    for (int64_t s = begin; s < end; s++)
        calibrate_row(j->c, j->first + s, worker);
}

/* ---- fixed lambda ---------------------------------------------------------------------- */

static void fixed_row_finish(const l1_ctx *c, int64_t slot, const float *x,
                             const csp__prox_out *po, int32_t iters, bool conv) {
    l1_chunk *ch = c->ch;
    csp_row_stats out = {0};
    out.energy = ch->energy[slot];
    out.residual = po->r > 0.0 ? po->r : 0.0;
    out.lambda = ch->lam[slot];
    out.iterations = iters;
    out.converged = conv ? 1 : 0;
    finish_row(c, ch->row[slot], x, NULL, &out);
}

/* Row mode after the GEMM loop: each slot holds x (X), G x (GX) and a
 * pending x_new (XP, from the last prox pass) whose product is not formed
 * yet; form it sparsely, then iterate the row to the end. */
static void row_mode_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const slot_job *j = arg;
    const l1_ctx *c = j->c;
    l1_chunk *ch = c->ch;
    int64_t n = c->g->n;
    l1_ws *ws = &c->ws[worker];
    for (int64_t slot = begin; slot < end; slot++) {
        int64_t r = ch->row[slot];
        l1_row st = {ch->XP + slot * n, ch->X + slot * n, ch->GXP + slot * n,
                     ch->GX + slot * n, ch->t[slot], ch->iters[slot] + 1, 0};
        st.nnz = product(c, st.x, st.gx, ws);
        csp__prox_out fin;
        const float *pinf = c->has_mask ? ch->PINF + slot * n : NULL;
        bool conv = row_solve(c, &st, c->b->w + r * c->b->ws, ch->B + slot * n, pinf,
                              ch->lam[slot], c->max_iter - st.iters, ws, &fin);
        fixed_row_finish(c, slot, st.x, &fin, st.iters, conv);
    }
}

typedef struct {
    const l1_ctx *c;
    int64_t nact;
} prox_job;

static void gemm_prox_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const prox_job *pj = arg;
    const l1_ctx *c = pj->c;
    l1_chunk *ch = c->ch;
    int64_t n = c->g->n;
    l1_ws *ws = &c->ws[worker];
    for (int64_t slot = begin; slot < end; slot++) {
        int64_t r = ch->row[slot];
        double tn = ch->t[slot], beta = 0.0;
        if (c->fista) {
            tn = 0.5 * (1.0 + sqrt(1.0 + 4.0 * ch->t[slot] * ch->t[slot]));
            beta = (ch->t[slot] - 1.0) / tn;
        }
        csp__f32_prox_step(n, c->b->w + r * c->b->ws, ch->B + slot * n,
                           c->has_mask ? ch->PINF + slot * n : NULL,
                           (float)(ch->lam[slot] * (double)c->invL), (float)beta, c->invL,
                           ch->X + slot * n, ch->XP + slot * n, ch->GX + slot * n,
                           ch->GXP + slot * n, ws->idx, ws->val, &ch->po[slot]);
        if (c->fista)
            ch->t[slot] = c->restart && ch->po[slot].rdot > 0.0 ? 1.0 : tn;
    }
}

static void swap_rows(float *M, int64_t n, int64_t a, int64_t b) {
    float *ra = M + a * n, *rb = M + b * n;
    for (int64_t j = 0; j < n; j++) {
        float t = ra[j];
        ra[j] = rb[j];
        rb[j] = t;
    }
}

static void swap_slots(l1_chunk *ch, int64_t n, int64_t a, int64_t b, bool mask) {
    if (a == b)
        return;
    swap_rows(ch->X, n, a, b);
    swap_rows(ch->XP, n, a, b);
    swap_rows(ch->GX, n, a, b);
    swap_rows(ch->GXP, n, a, b);
    swap_rows(ch->B, n, a, b);
    if (mask)
        swap_rows(ch->PINF, n, a, b);
#define SWAPV(T, arr)       \
    do {                    \
        T t_ = ch->arr[a];  \
        ch->arr[a] = ch->arr[b]; \
        ch->arr[b] = t_;    \
    } while (0)
    SWAPV(int64_t, row);
    SWAPV(double, t);
    SWAPV(double, lam);
    SWAPV(double, energy);
    SWAPV(int32_t, iters);
    SWAPV(int32_t, nnz);
    SWAPV(csp__prox_out, po);
#undef SWAPV
}

static void fixed_chunk(l1_ctx *c, int64_t cnt) {
    csp_context *ctx = c->s->ctx;
    l1_chunk *ch = c->ch;
    int64_t n = c->g->n;
    int64_t nact = cnt;
    for (;;) {
        prox_job pj = {c, nact};
        csp__parallel_for(ctx, nact, 8, gemm_prox_range, &pj);
        /* Retire converged rows and rows out of iterations. */
        int64_t slot = 0;
        while (slot < nact) {
            bool conv = gap_ok(&ch->po[slot], ch->lam[slot], c->tol);
            if (conv || ch->iters[slot] >= c->max_iter) {
                fixed_row_finish(c, slot, ch->X + slot * n, &ch->po[slot], ch->iters[slot],
                                 conv);
                swap_slots(ch, n, slot, nact - 1, c->has_mask);
                nact--;
            } else {
                slot++;
            }
        }
        if (nact == 0)
            return;
        int64_t nnz = 0;
        for (slot = 0; slot < nact; slot++)
            nnz += ch->po[slot].nnz;
        int32_t mode = c->s->l1_mode;
        if (mode == 2 || (mode == 0 && (double)nnz < DENSE_SWITCH * (double)nact * (double)n))
            break; /* sparse iterates: row mode from here */
        /* G x_new for the active rows (XP holds x_new). */
        csp__rows_times_gram(c->g, ch->XP, n, nact, ch->GXP);
        float *t;
        t = ch->X, ch->X = ch->XP, ch->XP = t;
        t = ch->GX, ch->GX = ch->GXP, ch->GXP = t;
        for (slot = 0; slot < nact; slot++) {
            ch->nnz[slot] = (int32_t)ch->po[slot].nnz;
            ch->iters[slot]++;
        }
    }
    slot_job sj = {c, 0};
    csp__parallel_for(ctx, nact, 1, row_mode_range, &sj);
}

/* ---- G = I (identity kind, no matrix): closed forms ------------------------------------ */

static void identity_row(const l1_ctx *c, int64_t r, l1_ws *ws) {
    const csp__batch *b = c->b;
    const csp_solver_options *o = &c->s->opt;
    int64_t n = b->n;
    const float *w = b->w + r * b->ws;
    float *xr = ws->gtmp; /* the result, copied out at the end (x may be w) */
    csp_row_stats out = {0};
    double lam;
    int32_t k = csp__batch_k(b, r);
    if (o->calibrate) {
        /* The k largest |w| (lower index first), shrunk by the (k+1)-th. */
        int64_t cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (csp__allowed(b, r, j)) {
                ws->items[cnt].key = fabsf(w[j]);
                ws->items[cnt].key2 = 0.0f;
                ws->items[cnt].idx = (int32_t)j;
                cnt++;
            }
        csp__rank_sort(ws->items, cnt);
        lam = k < cnt ? (double)ws->items[k].key : 0.0;
        if (k > 0 && k < cnt && ws->items[k - 1].key == ws->items[k].key)
            out.flags |= CSP_ROW_CUT;
        memset(xr, 0, (size_t)n * sizeof(float));
        memset(ws->sel, 0, (size_t)c->words * sizeof(uint64_t));
        float thr = (float)lam;
        for (int32_t q = 0; q < k; q++) {
            int32_t j = ws->items[q].idx;
            float a = fabsf(w[j]) - thr;
            xr[j] = a > 0.0f ? copysignf(a, w[j]) : 0.0f;
            csp__bit_set(ws->sel, j, true);
        }
        if (b->lambda != NULL)
            b->lambda[r] = lam;
    } else {
        lam = b->lambda != NULL ? b->lambda[r] : o->lambda;
        float thr = (float)lam;
        for (int64_t j = 0; j < n; j++) {
            float a = fabsf(w[j]) - thr;
            xr[j] = csp__allowed(b, r, j) && a > 0.0f ? copysignf(a, w[j]) : 0.0f;
        }
    }
    double energy = 0.0, res = 0.0;
    for (int64_t j = 0; j < n; j++) {
        energy += (double)w[j] * (double)w[j];
        double d = (double)w[j] - (double)xr[j];
        res += d * d;
    }
    out.energy = energy;
    out.residual = res;
    out.lambda = lam;
    out.iterations = 1;
    out.converged = 1;
    finish_row(c, r, xr, o->calibrate ? ws->sel : NULL, &out);
}

static void identity_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const slot_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        identity_row(j->c, j->c->r0 + i, &j->c->ws[worker]);
}

/* ---- driver ------------------------------------------------------------------------------ */

static void load_chunk(l1_ctx *c, int64_t r0, int64_t cnt) {
    const csp__batch *b = c->b;
    const csp_solver_options *o = &c->s->opt;
    l1_chunk *ch = c->ch;
    int64_t n = c->g->n;
    csp__rows_times_gram(c->g, b->w + r0 * b->ws, b->ws, cnt, ch->B);
    bool any_warm = false;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t r = r0 + i;
        const float *w = b->w + r * b->ws;
        ch->row[i] = r;
        ch->t[i] = 1.0;
        ch->iters[i] = 0;
        ch->lam[i] = b->lambda != NULL ? b->lambda[r] : o->lambda;
        ch->energy[i] = csp__f32_dot64(w, ch->B + i * n, n);
        float *pinf = ch->PINF + i * n;
        float *x = ch->X + i * n;
        const float *x0 = b->x + r * b->xs;
        int32_t nnz = 0;
        for (int64_t j = 0; j < n; j++) {
            bool ok = csp__allowed(b, r, j);
            if (c->has_mask)
                pinf[j] = ok ? 0.0f : INFINITY;
            x[j] = b->warm && ok ? x0[j] : 0.0f;
            nnz += x[j] != 0.0f;
        }
        ch->nnz[i] = nnz;
        any_warm = any_warm || nnz > 0;
    }
    if (any_warm)
        csp__rows_times_gram(c->g, ch->X, n, cnt, ch->GX);
    else
        memset(ch->GX, 0, (size_t)(cnt * n) * sizeof(float));
    memcpy(ch->XP, ch->X, (size_t)(cnt * n) * sizeof(float));
    memcpy(ch->GXP, ch->GX, (size_t)(cnt * n) * sizeof(float));
}

csp_status csp__l1(csp_solver *s, csp__gram *g, const csp__batch *b) {
    csp_context *ctx = s->ctx;
    const csp_solver_options *o = &s->opt;
    int64_t n = g->n, rows = b->rows;
    int64_t chunk = rows < CSP__CHUNK ? rows : CSP__CHUNK;
    int64_t workers = ctx->num_threads < chunk ? ctx->num_threads : chunk;
    bool identity = g->g64 == NULL;
    csp_status st = CSP_OK;
    if (!identity) {
        st = csp__gram_ensure_lmax(ctx, g);
        if (st != CSP_OK)
            return st;
    }

    l1_chunk ch;
    memset(&ch, 0, sizeof ch);
    l1_ws *ws = csp__calloc(ctx, (size_t)workers, sizeof *ws);
    csp_row_stats *rs = csp__calloc(ctx, (size_t)chunk, sizeof *rs);
    int64_t words = (n + 63) / 64;
    uint64_t *bits = csp__calloc(ctx, (size_t)(chunk * words), sizeof(uint64_t));
    bool ok = ws != NULL && rs != NULL && bits != NULL;
    size_t mat = (size_t)(chunk * n) * sizeof(float);
    if (ok && !identity) {
        ch.base = ch.X = csp__malloc_aligned(ctx, 6 * mat);
        ch.row = csp__malloc(ctx, (size_t)chunk * sizeof(int64_t));
        ch.t = csp__malloc(ctx, (size_t)chunk * 3 * sizeof(double));
        ch.iters = csp__malloc(ctx, (size_t)chunk * 2 * sizeof(int32_t));
        ch.po = csp__malloc(ctx, (size_t)chunk * sizeof(csp__prox_out));
        ok = ch.X != NULL && ch.row != NULL && ch.t != NULL && ch.iters != NULL &&
             ch.po != NULL;
        if (ok) {
            ch.XP = ch.X + chunk * n;
            ch.GX = ch.XP + chunk * n;
            ch.GXP = ch.GX + chunk * n;
            ch.B = ch.GXP + chunk * n;
            ch.PINF = ch.B + chunk * n;
            ch.lam = ch.t + chunk;
            ch.energy = ch.lam + chunk;
            ch.nnz = ch.iters + chunk;
        }
    }
    for (int64_t t = 0; ok && t < workers; t++) {
        ws[t].idx = csp__malloc(ctx, (size_t)n * sizeof(int32_t));
        ws[t].val = csp__malloc_aligned(ctx, 3 * (size_t)n * sizeof(float));
        ws[t].items = csp__malloc(ctx, (size_t)n * sizeof(csp__ranked));
        ws[t].sel = csp__malloc(ctx, (size_t)words * sizeof(uint64_t));
        ok = ws[t].idx != NULL && ws[t].val != NULL && ws[t].items != NULL &&
             ws[t].sel != NULL;
        if (ok) {
            ws[t].xlo = ws[t].val + n;
            ws[t].gtmp = ws[t].xlo + n;
        }
    }
    if (!ok) {
        st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for %s (n = %lld, "
                        "%lld threads)", b->fn, o->method == CSP_SOLVER_ISTA ? "ISTA" : "FISTA",
                        (long long)n, (long long)workers);
    } else {
        l1_ctx c;
        memset(&c, 0, sizeof c);
        c.s = s;
        c.g = g;
        c.b = b;
        c.ch = &ch;
        c.ws = ws;
        c.fista = o->method == CSP_SOLVER_FISTA;
        c.restart = o->restart != 0;
        c.tol = o->tol;
        c.max_iter = o->max_iter;
        c.L = identity ? 1.0 : g->lmax;
        c.invL = (float)(1.0 / c.L);
        c.has_mask = b->allowed != NULL;
        c.rs = rs;
        c.bits = bits;
        c.words = words;
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            int64_t cnt = rows - r0 < chunk ? rows - r0 : chunk;
            c.r0 = r0;
            slot_job sj = {&c, 0};
            if (identity) {
                csp__parallel_for(ctx, cnt, 8, identity_range, &sj);
            } else {
                load_chunk(&c, r0, cnt);
                if (o->calibrate)
                    csp__parallel_for(ctx, cnt, 1, calibrate_range, &sj);
                else
                    fixed_chunk(&c, cnt);
            }
            for (int64_t i = 0; i < cnt; i++) {
                const csp_row_stats *rst = &rs[i];
                csp__put_stats(b, r0 + i, rst);
                csp__put_support(b, r0 + i, bits + i * words);
                if (!rst->converged)
                    st = CSP_NOT_CONVERGED;
            }
        }
        if (st == CSP_NOT_CONVERGED)
            csp__log(ctx, CSP_LOG_WARN, "%s: some rows stopped at max_iter = %d "
                     "before reaching tol = %g", b->fn, (int)o->max_iter, o->tol);
    }
    for (int64_t t = 0; ws != NULL && t < workers; t++) {
        csp__free(ctx, ws[t].idx);
        csp__free_aligned(ctx, ws[t].val);
        csp__free(ctx, ws[t].items);
        csp__free(ctx, ws[t].sel);
    }
    csp__free(ctx, ws);
    csp__free(ctx, rs);
    csp__free(ctx, bits);
    csp__free_aligned(ctx, ch.base);
    csp__free(ctx, ch.row);
    csp__free(ctx, ch.t);
    csp__free(ctx, ch.iters);
    csp__free(ctx, ch.po);
    return st;
}
