/* Strategy "cs" (compressed-sensing pruning): per tensor, the rows of its
 * matrix view (or the blocks of a rank-1 tensor) are solved against the
 * tensor's sensing Gram inside the current mask; the support is the new
 * mask; the kept weights are optionally corrected (docs/guide.md, "CSP").
 *
 * At N:M granularity (CS rows are whole numbers of groups of M, checked at
 * csp_pruner_add_tensor()) each group keeps M - min(round(s M), M - N) of
 * its candidates, as magnitude N:M does: OMP closes a group once it holds
 * that many atoms; the L1 solvers' output, |w| (magnitude support) and the
 * Wanda score are cut to the top per group; the correction is over the
 * whole row's support.
 *
 * plan() computes the new mask into pt->next and the corrected values, new
 * lambdas and statistics into the plan, writing no host buffer and no
 * state, so that any failure (NaN, overflow, allocation, sensing not ready)
 * leaves everything as it was; commit() then writes. */
#include "prune/strategy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "prune/adaptive.h"
#include "prune/mask.h"
#include "select/select.h"
#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

static const char FN[] = "csp_step";

/* ---- bind / unbind ------------------------------------------------------------- */

static void cs_free(csp_context *ctx, csp__pcs *cs) {
    if (cs == NULL)
        return;
    csp_sensing_free(cs->owned);
    csp_solver_free(cs->solver);
    csp__free(ctx, cs->lambda);
    csp__free(ctx, cs);
}

static void unbind(csp_context *ctx, csp__ptensor *pt) {
    cs_free(ctx, pt->cs);
    pt->cs = NULL;
}

static csp_status bind(csp_pruner *p, int32_t index) {
    csp_context *ctx = p->ctx;
    csp__ptensor *pt = &p->tensors[index];
    const csp_tensor *w = pt->weight;
    const csp_pruner_tensor_options *c = &pt->conf;
    static const char fn[] = "csp_pruner_add_tensor";
    csp__pcs *cs = csp__calloc(ctx, 1, sizeof *cs);
    if (cs == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    if (w->rank == 1) {
        cs->n = c->block_size < w->numel ? c->block_size : w->numel;
        cs->rows = w->numel / cs->n;
        cs->tail = w->numel % cs->n;
    } else {
        cs->n = w->cols;
        cs->rows = w->rows;
        cs->tail = 0;
    }
    csp_status st = CSP_OK;
    if (c->sensing.kind != CSP_SENSING_IDENTITY) {
        csp_sensing_options so = c->sensing;
        so.n = cs->n;
        so.tensor_id = (uint64_t)index;
        st = csp_sensing_create(&cs->owned, ctx, &so);
    }
    if (st == CSP_OK)
        st = csp_solver_create(&cs->solver, ctx, &c->solver);
    if (st == CSP_OK && csp__method_l1(c->solver.method)) {
        cs->lambda = csp__calloc(ctx, (size_t)(cs->rows + (cs->tail > 0)), sizeof(double));
        if (cs->lambda == NULL)
            st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    if (st != CSP_OK) {
        cs_free(ctx, cs);
        return st;
    }
    pt->cs = cs;
    return CSP_OK;
}

/* ---- one event's job ------------------------------------------------------------- */

/* Rows of the energy and error passes per GEMM (fixed: results never depend
 * on it). */
#define CHUNK 256

/* Supports chosen by a score instead of the solver: |w_j| (magnitude
 * support at N:M), |w_j| sqrt(G_jj) (Wanda), or |x_j| of the solver's
 * output (the L1 solvers at N:M). */
enum { SCORE_NONE = 0, SCORE_MAGNITUDE, SCORE_WANDA, SCORE_X };

typedef struct {
    int32_t *k;                  /* rows_all budgets */
    int64_t *sel;                /* rows_all: the CS rows solved, ascending */
    float *wk, *bk;              /* CHUNK x n */
    float *wc, *xc;              /* nc x n: the solved rows, compacted */
    int32_t *kc;                 /* nc budgets */
    double *lam, *lamc;          /* rows_all lambdas, nc compacted */
    uint64_t *allowed, *support; /* nc x wn words */
    csp_row_stats *rs, *rs2;     /* nc: solve and correction stats */
    double *e, *eg;              /* CHUNK x n: errors of solved rows, and e G */
    int32_t *nz;                 /* n */
    csp__ranked *items;          /* n: a scored selection's ranking */
    csp__gram tail_gram;
    bool tail_owned;
} scratch;

typedef struct {
    csp_pruner *p;
    int32_t index;
    csp__ptensor *pt;
    csp__pcs *cs;
    csp__tplan *pl;
    const char *name;
    csp__gram *g;        /* the tensor's Gram (or the identity) */
    csp__gram identity;  /* n x n identity */
    csp__gram tail_id;   /* tail x tail identity */
    int64_t n, rows, tail, rows_all, wn, chunk;
    int64_t nc, ns;      /* rows solved, of which full rows */
    bool tail_solved;
    bool l1, corr, by_magnitude;
    bool nm;                     /* N:M granularity */
    int32_t nm_m, nm_keep;       /* M, and the weights each group keeps */
    int score;                   /* a SCORE_* selection instead of the solver */
    bool use_x; /* the kept weights take x: a correction, or the sweep's own values */
    double alpha;
    scratch s;
} job;

static void scratch_free(csp_context *ctx, scratch *s) {
    csp__free(ctx, s->k);
    csp__free(ctx, s->sel);
    csp__free_aligned(ctx, s->wk);
    csp__free_aligned(ctx, s->bk);
    csp__free_aligned(ctx, s->wc);
    csp__free_aligned(ctx, s->xc);
    csp__free(ctx, s->kc);
    csp__free(ctx, s->lam);
    csp__free(ctx, s->lamc);
    csp__free(ctx, s->allowed);
    csp__free(ctx, s->support);
    csp__free(ctx, s->rs);
    csp__free(ctx, s->rs2);
    csp__free_aligned(ctx, s->e);
    csp__free_aligned(ctx, s->eg);
    csp__free(ctx, s->nz);
    csp__free(ctx, s->items);
    if (s->tail_owned)
        csp__gram_release(ctx, &s->tail_gram);
    memset(s, 0, sizeof *s);
}

/* The message of the last error, copied (csp__error formats into the same
 * buffer). */
static void last_message(const csp_context *ctx, char *buf, size_t size) {
    snprintf(buf, size, "%s", csp_context_last_error(ctx));
}

/* N:M: the weights a group of M keeps at target @p ts (as magnitude N:M). */
static int32_t nm_keep(const csp_pruner_tensor_options *c, double ts) {
    int64_t z = csp__round_count(ts, c->nm_m);
    if (z > c->nm_m - c->nm_n)
        z = c->nm_m - c->nm_n;
    return (int32_t)(c->nm_m - z);
}

/* The budget of CS row @p r (@p len weights) at target @p ts, and its
 * candidates into *avail: at ROW, min(len - round(ts len), avail); at N:M
 * the sum over its groups of min(nm_keep(), candidates of the group). */
static int64_t row_budget(const csp__ptensor *pt, int64_t r, int64_t len, double ts,
                          int64_t *avail) {
    const csp__pcs *cs = pt->cs;
    const csp_pruner_tensor_options *c = &pt->conf;
    *avail = csp__mask_popcount_range(pt->mask, r * cs->n, len);
    if (c->granularity != CSP_GRANULARITY_NM) {
        int64_t keep = len - csp__round_count(ts, len);
        return keep < *avail ? keep : *avail;
    }
    int64_t kg = nm_keep(c, ts), k = 0;
    for (int64_t g0 = 0; g0 < len; g0 += c->nm_m) {
        int64_t a = csp__mask_popcount_range(pt->mask, r * cs->n + g0, c->nm_m);
        k += a < kg ? a : kg;
    }
    return k;
}

/* Does some row lose weights at target @p ts (else nothing is solved and
 * the event needs no Gram)? */
static bool any_row_loses(const csp__ptensor *pt, double ts) {
    const csp__pcs *cs = pt->cs;
    int64_t rows_all = cs->rows + (cs->tail > 0);
    for (int64_t r = 0; r < rows_all; r++) {
        int64_t avail;
        if (row_budget(pt, r, r < cs->rows ? cs->n : cs->tail, ts, &avail) < avail)
            return true;
    }
    return false;
}

/* The Gram of the event and the job's constants. */
static csp_status job_init(job *j, csp__event *ev, int32_t index) {
    csp_pruner *p = ev->p;
    memset(j, 0, sizeof *j);
    j->p = p;
    j->index = index;
    j->pt = &p->tensors[index];
    j->cs = j->pt->cs;
    j->pl = &ev->plans[index];
    j->name = csp_tensor_name(j->pt->weight);
    const csp__pcs *cs = j->cs;
    j->n = cs->n;
    j->rows = cs->rows;
    j->tail = cs->tail;
    j->rows_all = cs->rows + (cs->tail > 0);
    j->wn = csp__mask_words(cs->n);
    j->chunk = j->rows_all < CHUNK ? j->rows_all : CHUNK;
    const csp_pruner_tensor_options *c = &j->pt->conf;
    j->l1 = csp__method_l1(c->solver.method);
    j->corr = c->correction != CSP_CORRECTION_NONE;
    j->use_x = j->corr || c->solver.method == CSP_SOLVER_SWEEP;
    /* CSP_SUPPORT_MAGNITUDE: the solvers run on G = I (the k largest |w|, as
     * for GMP); G is for the correction and the statistics only. */
    j->by_magnitude = j->pt->x.support == CSP_SUPPORT_MAGNITUDE;
    j->nm = c->granularity == CSP_GRANULARITY_NM;
    j->nm_m = j->nm ? c->nm_m : 0;
    j->nm_keep = j->nm ? nm_keep(c, j->pl->target) : 0;
    /* The solvers' supports, except Wanda's score, and |w| per group (no
     * solver needed) for the magnitude support at N:M. */
    j->score = j->pt->x.support == CSP_SUPPORT_WANDA          ? SCORE_WANDA
               : j->nm && j->pt->x.support == CSP_SUPPORT_MAGNITUDE ? SCORE_MAGNITUDE
                                                             : SCORE_NONE;
    j->alpha = c->correction == CSP_CORRECTION_FULL ? 1.0 : j->pt->x.alpha;
    csp__gram id = {j->n, NULL, NULL, 1.0, 1.0, 1.0, true, 0};
    j->identity = id;
    j->tail_id = id;
    j->tail_id.n = j->tail;
    j->g = &j->identity;
    csp_context *ctx = p->ctx;
    if (!csp__all_finite(j->pt->weight))
        return csp__error(ctx, CSP_E_NONFINITE,
                          "%s: tensor %d ('%s') holds a NaN or infinity; nothing was changed", FN,
                          (int)index, j->name);
    csp_sensing *sens = csp__cs_sensing(cs);
    if (sens == NULL || !any_row_loses(j->pt, j->pl->target))
        return CSP_OK; /* G = I, or nothing to solve (no observation needed) */
    csp_status st = csp__sensing_prepare(sens, 0, j->pt->x.redraw ? ev->e : 0, &j->g);
    if (st == CSP_OK)
        return CSP_OK;
    char msg[CSP_ERROR_MAX];
    last_message(ctx, msg, sizeof msg);
    return csp__error(ctx, st, "%s: tensor %d ('%s')%s: %s", FN, (int)index, j->name,
                      csp_sensing_kind(sens) == CSP_SENSING_ACTIVATIONS
                          ? " needs observations since the last event (csp_pruner_observe())"
                          : "",
                      msg);
}

/* Budgets: only rows that lose weights are solved. */
static void budgets(job *j, double ts) {
    const csp__ptensor *pt = j->pt;
    j->nc = 0;
    for (int64_t r = 0; r < j->rows_all; r++) {
        int64_t avail;
        j->s.k[r] = (int32_t)row_budget(pt, r, r < j->rows ? j->n : j->tail, ts, &avail);
        if (j->s.k[r] < avail)
            j->s.sel[j->nc++] = r;
    }
    bool last_is_tail = j->nc > 0 && j->s.sel[j->nc - 1] == j->rows && j->tail > 0;
    j->ns = last_is_tail ? j->nc - 1 : j->nc;
    j->tail_solved = j->nc > j->ns;
}

/* The tail block's own Gram: the leading tail x tail block of G. */
static bool tail_gram(job *j, csp_context *ctx) {
    scratch *s = &j->s;
    if (j->g->g64 == NULL) {
        s->tail_gram = j->tail_id;
        return true;
    }
    if (csp__gram_alloc(ctx, &s->tail_gram, j->tail) != CSP_OK)
        return false;
    s->tail_owned = true;
    for (int64_t a = 0; a < j->tail; a++)
        memcpy(s->tail_gram.g64 + a * j->tail, j->g->g64 + a * j->n,
               (size_t)j->tail * sizeof(double));
    csp__gram_finish(&s->tail_gram);
    return true;
}

static csp_status scratch_alloc(job *j) {
    csp_context *ctx = j->p->ctx;
    scratch *s = &j->s;
    const size_t n = (size_t)j->n, chunk_n = (size_t)(j->chunk * j->n);
    s->k = csp__malloc(ctx, (size_t)j->rows_all * sizeof *s->k);
    s->sel = csp__malloc(ctx, (size_t)j->rows_all * sizeof *s->sel);
    bool ok = s->k != NULL && s->sel != NULL;
    if (ok)
        budgets(j, j->pl->target);
    size_t cap = (size_t)(j->nc > 0 ? j->nc : 1);
    if (ok) {
        s->wk = csp__malloc_aligned(ctx, chunk_n * sizeof(float));
        s->bk = csp__malloc_aligned(ctx, chunk_n * sizeof(float));
        s->wc = csp__malloc_aligned(ctx, cap * n * sizeof(float));
        s->xc = csp__malloc_aligned(ctx, cap * n * sizeof(float));
        s->kc = csp__malloc(ctx, cap * sizeof *s->kc);
        s->allowed = csp__calloc(ctx, cap * (size_t)j->wn, sizeof(uint64_t));
        s->support = csp__calloc(ctx, cap * (size_t)j->wn, sizeof(uint64_t));
        s->rs = csp__calloc(ctx, cap, sizeof *s->rs);
        s->e = csp__malloc_aligned(ctx, chunk_n * sizeof(double));
        s->eg = csp__malloc_aligned(ctx, chunk_n * sizeof(double));
        s->nz = csp__malloc(ctx, n * sizeof(int32_t));
        s->items = csp__malloc(ctx, n * sizeof(csp__ranked));
        ok = s->wk != NULL && s->bk != NULL && s->wc != NULL && s->xc != NULL && s->kc != NULL &&
             s->allowed != NULL && s->support != NULL && s->rs != NULL && s->e != NULL &&
             s->eg != NULL && s->nz != NULL && s->items != NULL;
    }
    if (ok && j->corr) {
        s->rs2 = csp__calloc(ctx, cap, sizeof *s->rs2);
        ok = s->rs2 != NULL;
    }
    if (ok && j->l1) {
        s->lam = csp__malloc(ctx, (size_t)j->rows_all * sizeof *s->lam);
        s->lamc = csp__malloc(ctx, cap * sizeof *s->lamc);
        ok = s->lam != NULL && s->lamc != NULL;
        if (ok)
            memcpy(s->lam, j->cs->lambda, (size_t)j->rows_all * sizeof *s->lam);
    }
    if (ok && j->tail > 0)
        ok = tail_gram(j, ctx);
    if (ok)
        return CSP_OK;
    return csp__error(ctx, CSP_E_NOMEM,
                      "%s: out of memory for the CSP solve of tensor %d ('%s': %lld rows of %lld)",
                      FN, (int)j->index, j->name, (long long)j->rows_all, (long long)j->n);
}

/* CS row @p r as masked float32 into @p dst; false when a kept weight is
 * outside the float32 range (*bad receives it). */
static bool load_row(const csp__ptensor *pt, int64_t r, int64_t len, float *dst, double *bad) {
    const csp__pcs *cs = pt->cs;
    const csp_tensor *t = pt->weight;
    const char *src = csp__cs_row_ptr(t, cs, r);
    for (int64_t c = 0; c < len; c++) {
        bool kept = csp__bit_get(pt->mask, r * cs->n + c);
        double v = t->dtype == CSP_DTYPE_F64 ? ((const double *)(const void *)src)[c]
                                             : (double)((const float *)(const void *)src)[c];
        float f = kept ? (float)v : 0.0f;
        if (!isfinite(f)) {
            *bad = v;
            return false;
        }
        dst[c] = f;
    }
    return true;
}

/* One pass: the masked rows in float32, the energies sum w^T w and
 * sum w^T G w (one GEMM per chunk), and the solved rows gathered. */
static csp_status gather(job *j, double *sww, double *swGw) {
    scratch *s = &j->s;
    const int64_t n = j->n;
    double bad = 0.0;
    int64_t ci = 0;
    *sww = *swGw = 0.0;
    for (int64_t r0 = 0, cnt = 0; r0 < j->rows_all; r0 += cnt) {
        cnt = j->rows_all - r0 < j->chunk ? j->rows_all - r0 : j->chunk;
        if (r0 < j->rows && r0 + cnt > j->rows)
            cnt = j->rows - r0; /* the tail gets a pass of its own */
        int64_t len = r0 < j->rows ? n : j->tail;
        const csp__gram *gr = r0 < j->rows ? j->g : &s->tail_gram;
        for (int64_t i = 0; i < cnt; i++)
            if (!load_row(j->pt, r0 + i, len, s->wk + i * n, &bad))
                return csp__error(j->p->ctx, CSP_E_NONFINITE,
                                  "%s: tensor %d ('%s'): weight %g is outside the float32 range "
                                  "of the CSP solvers; nothing was changed",
                                  FN, (int)j->index, j->name, bad);
        if (gr->g32 != NULL)
            csp__sgemm(cnt, len, len, s->wk, n, 1, gr->g32, len, s->bk, n, false);
        for (int64_t i = 0; i < cnt; i++) {
            const float *w = s->wk + i * n;
            double ww = csp__f32_dot64(w, w, len);
            *sww += ww;
            *swGw += gr->g32 != NULL ? csp__f32_dot64(w, s->bk + i * n, len) : ww;
            int64_t r = r0 + i;
            if (ci < j->nc && s->sel[ci] == r) {
                memcpy(s->wc + ci * n, w, (size_t)len * sizeof(float));
                csp__bits_extract(s->allowed + ci * j->wn, j->pt->mask, r * n, len);
                s->kc[ci] = s->k[r];
                if (j->l1)
                    s->lamc[ci] = s->lam[r];
                ci++;
            }
        }
    }
    return CSP_OK;
}

/* A batch over compact rows [c0, c0 + rows) of length @p len. */
static void make_batch(csp_solver_batch *b, const job *j, int64_t c0, int64_t rows, int64_t len,
                       csp_row_stats *stats) {
    const scratch *s = &j->s;
    csp_solver_batch_init(b, sizeof *b);
    b->rows = rows;
    b->n = len;
    b->w = s->wc + c0 * j->n;
    b->w_stride = j->n;
    b->x = s->xc + c0 * j->n;
    b->x_stride = j->n;
    b->k = s->kc + c0;
    b->lambda = s->lamc != NULL ? s->lamc + c0 : NULL;
    b->allowed = s->allowed + c0 * j->wn;
    b->allowed_row_bits = 64 * j->wn;
    b->support = s->support + c0 * j->wn;
    b->support_row_bits = 64 * j->wn;
    b->stats = stats + c0;
    b->stats_size = sizeof *stats;
}

/* The worse of two solver statuses (errors first, then informational). */
static csp_status merge(csp_status a, csp_status b) { return b < 0 || a == CSP_OK ? b : a; }

/* The supports of compact rows [c0, c0 + cnt) of length @p len by the score
 * @p mode: in every group (the row at ROW, M consecutive weights at N:M)
 * the candidates ranked by score, then |w|, then lower index, and the first
 * min(budget, candidates) kept; x = w there, 0 elsewhere. @p gr: the rows'
 * Gram (its diagonal for Wanda; none is G = I). */
static void select_scored(job *j, int64_t c0, int64_t cnt, int64_t len, const csp__gram *gr,
                          int mode) {
    scratch *s = &j->s;
    int64_t gsz = j->nm ? j->nm_m : len;
    for (int64_t c = c0; c < c0 + cnt; c++) {
        const float *w = s->wc + c * j->n;
        float *x = s->xc + c * j->n;
        const uint64_t *al = s->allowed + c * j->wn;
        uint64_t *sup = s->support + c * j->wn;
        memset(sup, 0, (size_t)j->wn * sizeof(uint64_t));
        int64_t kept = 0;
        for (int64_t g0 = 0; g0 < len; g0 += gsz) {
            int64_t m = 0;
            for (int64_t q = g0; q < g0 + gsz; q++) {
                if (!csp__bit_get(al, q))
                    continue;
                double sc = mode == SCORE_X ? fabs((double)x[q]) : fabs((double)w[q]);
                if (mode == SCORE_WANDA && gr->g64 != NULL)
                    sc *= sqrt(fmax(gr->g64[q * gr->n + q], 0.0));
                s->items[m].key = (float)sc;
                s->items[m].key2 = fabsf(w[q]);
                s->items[m].idx = (int32_t)q;
                m++;
            }
            csp__rank_sort(s->items, m);
            int64_t keep = j->nm ? j->nm_keep : s->kc[c];
            for (int64_t t = 0; t < keep && t < m; t++)
                csp__bit_set(sup, s->items[t].idx, true);
            kept += keep < m ? keep : m;
        }
        for (int64_t q = 0; q < len; q++)
            x[q] = csp__bit_get(sup, q) ? w[q] : 0.0f;
        csp_row_stats st = {0};
        st.nnz = (int32_t)kept;
        st.converged = 1;
        s->rs[c] = st;
    }
}

/* The solver's supports of compact rows [c0, c0 + rows) against @p g (the
 * Gram of their length; @p id its identity): under the N:M constraint for
 * OMP. */
static csp_status run_solver(job *j, int64_t c0, int64_t rows, int64_t len, csp__gram *g,
                             csp__gram *id) {
    csp_solver_batch b;
    make_batch(&b, j, c0, rows, len, j->s.rs);
    if (j->by_magnitude)
        return csp__solver_run(j->cs->solver, id, &b, FN);
    if (j->nm && !j->l1)
        return csp__omp_nm(j->cs->solver, g, &b, j->nm_m, j->nm_keep, FN);
    return csp__solver_run(j->cs->solver, g, &b, FN);
}

/* The full correction of compact rows [c0, c0 + rows) against @p g. After
 * OMP (its own supports, full correction) a row OMP solved without damping
 * already holds the least-squares fit on its support through the same G
 * (OMP's coefficients come from its Cholesky factor of G_SS), so only the
 * damped rows (solved with G + delta I) are refitted: the same solution,
 * other rounding, one k x k solve per row less. */
static csp_status correct(job *j, int64_t c0, int64_t rows, int64_t len, const csp__gram *g) {
    scratch *s = &j->s;
    csp_solver *solver = j->cs->solver;
    csp_solver_batch b;
    bool omp_fit = j->alpha == 1.0 && !j->by_magnitude && j->score == SCORE_NONE &&
                   solver->opt.method == CSP_SOLVER_OMP;
    if (!omp_fit) {
        make_batch(&b, j, c0, rows, len, s->rs2);
        return csp__solver_refit(solver, g, &b, j->alpha, false, FN);
    }
    csp_status st = CSP_OK;
    for (int64_t c = c0; c < c0 + rows && st >= 0;) {
        int64_t e = c;
        while (e < c0 + rows && (s->rs[e].flags & CSP_ROW_DAMPED) == 0) {
            s->rs2[e] = s->rs[e];
            e++;
        }
        int64_t d = e;
        while (d < c0 + rows && (s->rs[d].flags & CSP_ROW_DAMPED) != 0)
            d++;
        if (d > e) { /* a run of damped rows */
            make_batch(&b, j, e, d - e, len, s->rs2);
            st = merge(st, csp__solver_refit(solver, g, &b, 1.0, false, FN));
        }
        c = d;
    }
    return st;
}

/* Solve (or score), then correct, the compacted rows: full rows in one
 * batch, the short tail block alone. */
static csp_status solve(job *j) {
    scratch *s = &j->s;
    csp_status st = CSP_OK;
    int mode = j->score;
    if (mode == SCORE_NONE && j->ns > 0)
        st = run_solver(j, 0, j->ns, j->n, j->g, &j->identity);
    if (mode == SCORE_NONE && st >= 0 && j->tail_solved)
        st = merge(st, run_solver(j, j->ns, 1, j->tail, &s->tail_gram, &j->tail_id));
    if (mode == SCORE_NONE && j->nm && j->l1)
        mode = SCORE_X; /* cut the L1 solution to the top per group */
    if (st >= 0 && mode != SCORE_NONE) {
        select_scored(j, 0, j->ns, j->n, j->g, mode);
        if (j->tail_solved)
            select_scored(j, j->ns, 1, j->tail, &s->tail_gram, mode);
    }
    if (st >= 0 && j->corr && j->ns > 0)
        st = merge(st, correct(j, 0, j->ns, j->n, j->g));
    if (st >= 0 && j->corr && j->tail_solved)
        st = merge(st, correct(j, j->ns, 1, j->tail, &s->tail_gram));
    if (st >= 0)
        return st;
    char msg[CSP_ERROR_MAX];
    last_message(j->p->ctx, msg, sizeof msg);
    return csp__error(j->p->ctx, st, "%s: tensor %d ('%s'): %s", FN, (int)j->index, j->name, msg);
}

/* A corrected value the destination cannot hold (float32 overflow in the
 * correction, or a non-finite solver output): the event must fail. */
static csp_status check_corrected(const job *j) {
    const scratch *s = &j->s;
    for (int64_t c = 0; c < j->nc && j->use_x; c++) {
        int64_t len = s->sel[c] < j->rows ? j->n : j->tail;
        const float *xr = s->xc + c * j->n;
        for (int64_t q = 0; q < len; q++)
            if (!isfinite(xr[q]))
                return csp__error(j->p->ctx, CSP_E_NONFINITE,
                                  "%s: tensor %d ('%s'): the correction of row %lld overflows "
                                  "(weight %lld would be %g); nothing was changed",
                                  FN, (int)j->index, j->name, (long long)s->sel[c], (long long)q,
                                  (double)xr[q]);
    }
    return CSP_OK;
}

/* Rows [c0, c0 + cnt) of the compact batch: their new supports into the
 * planned mask, their errors e = w - x into s->e, the solver statistics;
 * the sum of e^T e into *see. Returns sum nnz(e)^2 (to choose the
 * quadratic form's method). */
static double rows_out(job *j, int64_t c0, int64_t cnt, int64_t len, double *see) {
    scratch *s = &j->s;
    csp__tstats *tsx = &j->pl->stats;
    double sparse_cost = 0.0;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t c = c0 + i, r = s->sel[c];
        const uint64_t *sup = s->support + c * j->wn;
        csp__bits_insert(j->pt->next, r * j->n, sup, len);
        const float *wr = s->wc + c * j->n, *xr = s->xc + c * j->n;
        double *er = s->e + i * j->n;
        int64_t nnz = 0;
        for (int64_t q = 0; q < len; q++) {
            double wv = (double)wr[q];
            double xv = j->use_x ? (double)xr[q] : csp__bit_get(sup, q) ? wv : 0.0;
            double d = wv - xv;
            *see += d * d;
            er[q] = d;
            nnz += d != 0.0;
        }
        sparse_cost += (double)nnz * (double)nnz;
        const csp_row_stats *rr = &s->rs[c];
        tsx->iterations += rr->iterations;
        if (rr->iterations > tsx->iterations_max)
            tsx->iterations_max = rr->iterations;
        tsx->not_converged += rr->converged ? 0 : 1;
        bool damped = (rr->flags & CSP_ROW_DAMPED) != 0 ||
                      (j->corr && (s->rs2[c].flags & CSP_ROW_DAMPED) != 0);
        tsx->damped += damped ? 1 : 0;
        if (j->l1)
            s->lam[r] = s->lamc[c];
    }
    return sparse_cost;
}

/* The new mask (the old one, with the solved rows' supports) and the
 * errors, a chunk at a time. */
static void outputs(job *j, double sww, double swGw) {
    scratch *s = &j->s;
    const int64_t n = j->n;
    memcpy(j->pt->next, j->pt->mask,
           (size_t)csp__mask_words(j->pt->weight->numel) * sizeof(uint64_t));
    double see = 0.0, seGe = 0.0;
    for (int64_t c0 = 0, cnt = 0; c0 < j->nc; c0 += cnt) {
        cnt = j->nc - c0 < j->chunk ? j->nc - c0 : j->chunk;
        if (c0 < j->ns && c0 + cnt > j->ns)
            cnt = j->ns - c0; /* the short last block alone */
        const csp__gram *gr = c0 < j->ns ? j->g : &s->tail_gram;
        int64_t len = c0 < j->ns ? n : j->tail;
        double sparse_cost = rows_out(j, c0, cnt, len, &see);
        /* e^T G e in float64: one DGEMM when the errors are dense, else over
         * their nonzeros only. */
        if (gr->g64 != NULL && sparse_cost > 0.25 * (double)cnt * (double)len * (double)len) {
            csp__dgemm(cnt, len, len, s->e, n, 1, gr->g64, len, s->eg, n, false);
            for (int64_t i = 0; i < cnt; i++)
                seGe += csp__dot64(s->e + i * n, s->eg + i * n, len);
            continue;
        }
        for (int64_t i = 0; i < cnt; i++) {
            const double *er = s->e + i * n;
            int64_t nnz = 0;
            for (int64_t q = 0; q < len; q++)
                if (er[q] != 0.0)
                    s->nz[nnz++] = (int32_t)q;
            seGe += csp__quad_sparse(gr, er, s->nz, nnz);
        }
    }
    csp__tstats *tsx = &j->pl->stats;
    tsx->weight_error = sww > 0.0 ? sqrt(see / sww) : 0.0;
    tsx->sensing_error = swGw > 0.0 ? seGe / swGw : 0.0;
}

static csp_status plan(csp__event *ev, int32_t index) {
    job j;
    csp_status st = job_init(&j, ev, index);
    if (st == CSP_OK)
        st = scratch_alloc(&j);
    double sww = 0.0, swGw = 0.0;
    if (st == CSP_OK)
        st = gather(&j, &sww, &swGw);
    csp_status solved = st == CSP_OK ? solve(&j) : st;
    st = solved < 0 ? solved : check_corrected(&j);
    if (st != CSP_OK) {
        scratch_free(j.p->ctx, &j.s);
        return st;
    }
    outputs(&j, sww, swGw);
    if (solved == CSP_DAMPED || solved == CSP_NOT_CONVERGED)
        csp__log(j.p->ctx, CSP_LOG_WARN,
                 "%s: tensor %d ('%s'): %lld rows damped, %lld not converged", FN, (int)index,
                 j.name, (long long)j.pl->stats.damped, (long long)j.pl->stats.not_converged);
    /* Keep what the commit needs. */
    if (j.use_x && j.nc > 0) {
        j.pl->x = j.s.xc;
        j.pl->sel = j.s.sel;
        j.pl->nc = j.nc;
        j.s.xc = NULL;
        j.s.sel = NULL;
    }
    j.pl->lambda = j.s.lam;
    j.s.lam = NULL;
    scratch_free(j.p->ctx, &j.s);
    return CSP_OK;
}

/* ---- commit / discard ------------------------------------------------------------ */

static void commit(csp__event *ev, int32_t index) {
    csp__ptensor *pt = &ev->p->tensors[index];
    csp__tplan *pl = &ev->plans[index];
    csp__pcs *cs = pt->cs;
    const csp_tensor *t = pt->weight;
    int64_t n = cs->n, rows_all = cs->rows + (cs->tail > 0);
    for (int64_t c = 0; c < pl->nc; c++) {
        int64_t r = pl->sel[c];
        int64_t len = r < cs->rows ? n : cs->tail;
        char *dst = csp__cs_row_ptr(t, cs, r);
        const float *xr = pl->x + c * n;
        for (int64_t q = 0; q < len; q++) {
            if (!csp__bit_get(pt->mask, r * n + q))
                continue; /* zeroed by the mask */
            if (t->dtype == CSP_DTYPE_F64)
                ((double *)(void *)dst)[q] = (double)xr[q];
            else
                ((float *)(void *)dst)[q] = xr[q];
        }
    }
    if (pl->lambda != NULL)
        memcpy(cs->lambda, pl->lambda, (size_t)rows_all * sizeof(double));
    if (cs->attached == NULL && cs->owned != NULL &&
        csp_sensing_kind(cs->owned) == CSP_SENSING_ACTIVATIONS)
        csp_sensing_reset(cs->owned);
}

static void discard(csp__event *ev, int32_t index) {
    csp_context *ctx = ev->p->ctx;
    csp__tplan *pl = &ev->plans[index];
    csp__free_aligned(ctx, pl->x);
    csp__free(ctx, pl->sel);
    csp__free(ctx, pl->lambda);
    pl->x = NULL;
    pl->sel = NULL;
    pl->lambda = NULL;
}

void csp__cs_warn_unready(csp_pruner *p, int64_t step) {
    int64_t e = csp__schedule_next_event(p->schedule, step);
    if (e < 0)
        return;
    int32_t window = p->x.observe_window;
    if (window > 0 && e - step >= window)
        return; /* the host is not asked to observe yet */
    /* The event's target, unless that would call the host's schedule
     * callback between events (then assume the event prunes). */
    double s = 1.0, s_last = 0.0;
    if (p->schedule->o.kind != CSP_SCHEDULE_CALLBACK &&
        (csp__schedule_target(p->schedule, e, &s) != CSP_OK ||
         csp__adapt_last_s(p, &s_last) != CSP_OK))
        return;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp__ptensor *pt = &p->tensors[i];
        csp_sensing *sens = pt->cs != NULL ? csp__cs_sensing(pt->cs) : NULL;
        if (sens == NULL || pt->warned_event == e || csp__sensing_ready(sens))
            continue;
        if (p->schedule->o.kind != CSP_SCHEDULE_CALLBACK &&
            !any_row_loses(pt, csp__adapt_target(p, pt, s, s_last, NULL)))
            continue; /* nothing to solve at that event: no Gram needed */
        pt->warned_event = e;
        bool acts = csp_sensing_kind(sens) == CSP_SENSING_ACTIVATIONS;
        csp__log(p->ctx, CSP_LOG_WARN,
                 "csp_step: tensor %d ('%s') uses %s sensing and %s at step %lld; the pruning "
                 "event at step %lld will fail unless %s first",
                 (int)i, csp_tensor_name(pt->weight), acts ? "activations" : "gram",
                 acts ? "nothing has been observed for it since the last event"
                      : "no Gram has been set",
                 (long long)step, (long long)e,
                 acts ? "csp_pruner_observe() feeds it" : "csp_sensing_set_gram() is called");
    }
}

const csp__strategy csp__strategy_cs = {"cs", bind, unbind, plan, commit, discard};
