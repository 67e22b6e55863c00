/* Compressed-sensing pruning inside csp_step(): per tensor, the rows of its
 * matrix view (or the blocks of a rank-1 tensor) are solved against the
 * tensor's sensing Gram inside the current mask; the support is the new
 * mask; the kept weights are optionally refit. Plus the magnitude-event
 * errors of GMP tensors and the between-event shrink.
 *
 * An event runs in two phases (pruner.c): csp__cs_event() computes the new
 * mask into pt->next and everything else into a csp__cs_result, writing no
 * host buffer and no pruner state, so that any failure (NaN, allocation,
 * sensing not ready) leaves everything as it was; csp__cs_commit() then
 * writes, and cannot fail. */
#include "prune/pruner_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prune/mask.h"
#include "select/select.h"
#include "sensing/sensing_internal.h"
#include "solver/solver_internal.h"

double csp__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- create / free ----------------------------------------------------------- */

csp_status csp__cs_create(csp_pruner *p, int32_t index, csp__pcs **out) {
    static const char fn[] = "csp_pruner_add_tensor";
    csp_context *ctx = p->ctx;
    const csp__ptensor *pt = &p->tensors[index];
    const csp_tensor *w = pt->weight;
    const csp__csconf *c = &pt->conf;
    *out = NULL;
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
    if (c->sensing != CSP_SENSING_IDENTITY) {
        csp_sensing_options so;
        csp_sensing_options_init(&so, sizeof so);
        so.kind = c->sensing;
        so.n = cs->n;
        so.rho = c->rho;
        so.damping = c->damping;
        so.tensor_id = (uint64_t)index;
        st = csp_sensing_create(&cs->owned, ctx, &so);
    }
    if (st == CSP_OK) {
        csp_solver_options vo;
        csp_solver_options_init(&vo, sizeof vo);
        vo.method = c->solver;
        vo.tol = p->solver_tol;
        vo.max_iter = p->solver_max_iter;
        vo.calibrate = 1;
        st = csp_solver_create(&cs->solver, ctx, &vo);
    }
    if (st == CSP_OK && c->solver != CSP_SOLVER_OMP) {
        cs->lambda = csp__calloc(ctx, (size_t)(cs->rows + (cs->tail > 0)), sizeof(double));
        if (cs->lambda == NULL)
            st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    if (st != CSP_OK) {
        csp__cs_free(ctx, cs);
        return st;
    }
    *out = cs;
    return CSP_OK;
}

void csp__cs_free(csp_context *ctx, csp__pcs *cs) {
    if (cs == NULL)
        return;
    csp_sensing_free(cs->owned);
    csp_solver_free(cs->solver);
    csp__free(ctx, cs->lambda);
    csp__free(ctx, cs);
}

void csp__cs_result_free(csp_context *ctx, csp__cs_result *res) {
    csp__free_aligned(ctx, res->x);
    csp__free(ctx, res->sel);
    csp__free(ctx, res->lambda);
    memset(res, 0, sizeof *res);
}

/* ---- helpers ---------------------------------------------------------------- */

/* First element of CS row @p r (a matrix row, or a block of a rank-1
 * tensor); its weights are contiguous. */
static void *unit_ptr(const csp_tensor *t, const csp__pcs *cs, int64_t r) {
    int64_t off = t->rank == 1 ? r * cs->n : r * t->row_stride;
    return (char *)t->data + (size_t)off * csp__dtype_size(t->dtype);
}

/* e^T G e over the nonzeros @p nz of e (float64; G = I when g64 is NULL). */
static double quad_sparse(const csp__gram *g, const double *e, const int32_t *nz, int64_t cnt) {
    double s = 0.0;
    if (g->g64 == NULL) {
        for (int64_t a = 0; a < cnt; a++)
            s += e[nz[a]] * e[nz[a]];
        return s;
    }
    int64_t n = g->n;
    for (int64_t a = 0; a < cnt; a++) {
        const double *row = g->g64 + (int64_t)nz[a] * n;
        double acc = 0.0;
        for (int64_t q = 0; q < cnt; q++)
            acc += row[nz[q]] * e[nz[q]];
        s += e[nz[a]] * acc;
    }
    return s;
}

/* The message of the last error, copied (csp__error formats into the same
 * buffer). */
static void last_message(const csp_context *ctx, char *buf, size_t size) {
    snprintf(buf, size, "%s", csp_context_last_error(ctx));
}

/* ---- an event ------------------------------------------------------------------ */

/* Rows of the energy pass per GEMM (fixed: results never depend on it). */
#define ENERGY_CHUNK 256

typedef struct {
    int32_t *k;      /* rows_all budgets */
    int64_t *sel;    /* rows_all: the CS rows solved, ascending */
    float *wk, *bk;  /* ENERGY_CHUNK x n */
    float *wc, *xc;  /* nc x n: the solved rows, compacted */
    int32_t *kc;
    double *lam, *lamc;
    uint64_t *allowed, *support; /* nc x wn words */
    csp_row_stats *rs, *rs2;
    double *e, *eg; /* ENERGY_CHUNK x n: errors of solved rows, and e G */
    int32_t *nz;    /* n */
    csp__gram tail_gram;
    bool tail_owned;
} cs_scratch;

static void scratch_free(csp_context *ctx, cs_scratch *s) {
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
    if (s->tail_owned)
        csp__gram_release(ctx, &s->tail_gram);
}

/* A batch over compact rows [c0, c0 + rows) of length @p n. */
static void make_batch(csp_solver_batch *b, const cs_scratch *s, int64_t c0, int64_t rows,
                       int64_t n, int64_t ld, int64_t wn, csp_row_stats *stats) {
    csp_solver_batch_init(b, sizeof *b);
    b->rows = rows;
    b->n = n;
    b->w = s->wc + c0 * ld;
    b->w_stride = ld;
    b->x = s->xc + c0 * ld;
    b->x_stride = ld;
    b->k = s->kc + c0;
    b->lambda = s->lamc != NULL ? s->lamc + c0 : NULL;
    b->allowed = s->allowed + c0 * wn;
    b->allowed_row_bits = 64 * wn;
    b->support = s->support + c0 * wn;
    b->support_row_bits = 64 * wn;
    b->stats = stats + c0;
    b->stats_size = sizeof *stats;
}

/* CS row @p r as masked float32 into @p dst; false when a kept weight is
 * outside the float32 range (*bad receives it). */
static bool load_row(const csp__ptensor *pt, int64_t r, int64_t len, float *dst, double *bad) {
    const csp__pcs *cs = pt->cs;
    const csp_tensor *t = pt->weight;
    const char *src = unit_ptr(t, cs, r);
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

csp_status csp__cs_event(csp_pruner *p, int32_t index, double ts, int64_t e,
                         csp__cs_result *res) {
    static const char fn[] = "csp_step";
    double t0 = csp__now();
    memset(res, 0, sizeof *res);
    csp_context *ctx = p->ctx;
    csp__ptensor *pt = &p->tensors[index];
    csp__pcs *cs = pt->cs;
    const csp_tensor *t = pt->weight;
    const char *name = csp_tensor_name(t);
    csp_sensing *sens = csp__cs_sensing(cs);
    const int64_t n = cs->n, rows = cs->rows, tail = cs->tail;
    const int64_t rows_all = rows + (tail > 0);
    const int64_t wn = csp__mask_words(n);
    const bool l1 = pt->conf.solver != CSP_SOLVER_OMP;
    const bool corr = pt->conf.correction != CSP_CORRECTION_NONE;
    /* CSP_SUPPORT_MAGNITUDE: the solvers run on G = I (the k largest |w|, as
     * for GMP); G is for the correction and the statistics only. */
    const bool by_magnitude = pt->conf.support == CSP_SUPPORT_MAGNITUDE;
    const double alpha = pt->conf.correction == CSP_CORRECTION_FULL ? 1.0 : pt->conf.alpha;
    char msg[CSP_ERROR_MAX];

    if (!csp__all_finite(t))
        return csp__error(ctx, CSP_E_NONFINITE,
                          "%s: tensor %d (%s) holds a NaN or infinity; nothing was changed", fn,
                          (int)index, name);
    csp__gram identity_gram = {n, NULL, NULL, 1.0, 1.0, 1.0, true};
    csp__gram *g = &identity_gram;
    if (sens != NULL) {
        csp_status st = csp__sensing_prepare(sens, 0, pt->conf.redraw ? e : 0, &g);
        if (st != CSP_OK) {
            last_message(ctx, msg, sizeof msg);
            return csp__error(ctx, st, "%s: tensor %d (%s)%s: %s", fn, (int)index, name,
                              csp_sensing_kind(sens) == CSP_SENSING_ACTIVATIONS
                                  ? " needs observations since the last event "
                                    "(csp_pruner_observe())"
                                  : "",
                              msg);
        }
    }

    /* Budgets; only rows that lose weights are solved. */
    cs_scratch s;
    memset(&s, 0, sizeof s);
    s.k = csp__malloc(ctx, (size_t)rows_all * sizeof *s.k);
    s.sel = csp__malloc(ctx, (size_t)rows_all * sizeof *s.sel);
    if (s.k == NULL || s.sel == NULL) {
        scratch_free(ctx, &s);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    int64_t nc = 0, ns = 0;
    for (int64_t r = 0; r < rows_all; r++) {
        int64_t len = r < rows ? n : tail;
        int64_t avail = csp__mask_popcount_range(pt->mask, r * n, len);
        int64_t keep = len - csp__round_count(ts, len);
        s.k[r] = (int32_t)(keep < avail ? keep : avail);
        if (s.k[r] < avail)
            s.sel[nc++] = r;
    }
    ns = nc > 0 && s.sel[nc - 1] == rows && tail > 0 ? nc - 1 : nc; /* full rows solved */
    bool tail_solved = nc > ns;

    int64_t chunk = rows_all < ENERGY_CHUNK ? rows_all : ENERGY_CHUNK;
    size_t cap = (size_t)(nc > 0 ? nc : 1);
    s.wk = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(float));
    s.bk = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(float));
    s.wc = csp__malloc_aligned(ctx, cap * (size_t)n * sizeof(float));
    s.xc = csp__malloc_aligned(ctx, cap * (size_t)n * sizeof(float));
    s.kc = csp__malloc(ctx, cap * sizeof *s.kc);
    s.allowed = csp__calloc(ctx, cap * (size_t)wn, sizeof(uint64_t));
    s.support = csp__calloc(ctx, cap * (size_t)wn, sizeof(uint64_t));
    s.rs = csp__calloc(ctx, cap, sizeof *s.rs);
    s.e = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(double));
    s.eg = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(double));
    s.nz = csp__malloc(ctx, (size_t)n * sizeof(int32_t));
    bool ok = s.wk != NULL && s.bk != NULL && s.wc != NULL && s.xc != NULL && s.kc != NULL &&
              s.allowed != NULL && s.support != NULL && s.rs != NULL && s.e != NULL &&
              s.eg != NULL && s.nz != NULL;
    if (ok && corr) {
        s.rs2 = csp__calloc(ctx, cap, sizeof *s.rs2);
        ok = s.rs2 != NULL;
    }
    if (ok && l1) {
        s.lam = csp__malloc(ctx, (size_t)rows_all * sizeof *s.lam);
        s.lamc = csp__malloc(ctx, cap * sizeof *s.lamc);
        ok = s.lam != NULL && s.lamc != NULL;
        if (ok)
            memcpy(s.lam, cs->lambda, (size_t)rows_all * sizeof *s.lam);
    }
    if (ok && tail > 0) {
        if (g->g64 != NULL) {
            ok = csp__gram_alloc(ctx, &s.tail_gram, tail) == CSP_OK;
            s.tail_owned = ok;
            if (ok) {
                for (int64_t a = 0; a < tail; a++)
                    memcpy(s.tail_gram.g64 + a * tail, g->g64 + a * n,
                           (size_t)tail * sizeof(double));
                csp__gram_finish(&s.tail_gram);
            }
        } else {
            csp__gram id = {tail, NULL, NULL, 1.0, 1.0, 1.0, true};
            s.tail_gram = id;
        }
    }
    if (!ok) {
        scratch_free(ctx, &s);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the CSP solve of tensor %d "
                          "(%s: %lld rows of %lld)", fn, (int)index, name, (long long)rows_all,
                          (long long)n);
    }

    /* One pass: the masked rows in float32, the energies sum w^T G w (one
     * GEMM per chunk), and the solved rows gathered. */
    double sww = 0.0, swGw = 0.0, bad = 0.0;
    int64_t ci = 0;
    for (int64_t r0 = 0, cnt = 0; r0 < rows_all && ok; r0 += cnt) {
        cnt = rows_all - r0 < chunk ? rows_all - r0 : chunk;
        if (r0 < rows && r0 + cnt > rows)
            cnt = rows - r0; /* the tail gets a pass of its own */
        int64_t len = r0 < rows ? n : tail;
        const csp__gram *gr = r0 < rows ? g : &s.tail_gram;
        for (int64_t i = 0; i < cnt && ok; i++)
            ok = load_row(pt, r0 + i, len, s.wk + i * n, &bad);
        if (!ok)
            break;
        if (gr->g32 != NULL)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cnt, (int)len, (int)len,
                        1.0f, s.wk, (int)n, gr->g32, (int)len, 0.0f, s.bk, (int)n);
        for (int64_t i = 0; i < cnt; i++) {
            const float *w = s.wk + i * n;
            double ww = csp__f32_dot64(w, w, len);
            sww += ww;
            swGw += gr->g32 != NULL ? csp__f32_dot64(w, s.bk + i * n, len) : ww;
            int64_t r = r0 + i;
            if (ci < nc && s.sel[ci] == r) {
                memcpy(s.wc + ci * n, w, (size_t)len * sizeof(float));
                csp__bits_extract(s.allowed + ci * wn, pt->mask, r * n, len);
                s.kc[ci] = s.k[r];
                if (l1)
                    s.lamc[ci] = s.lam[r];
                ci++;
            }
        }
    }
    if (!ok) {
        scratch_free(ctx, &s);
        return csp__error(ctx, CSP_E_NONFINITE,
                          "%s: tensor %d (%s): weight %g is outside the float32 range of the "
                          "CSP solvers; nothing was changed",
                          fn, (int)index, name, bad);
    }

    /* Solve, then correct, the compacted rows. */
    csp_solver_batch b;
    csp_status st = CSP_OK, sst = CSP_OK;
    csp__gram tail_identity = {tail, NULL, NULL, 1.0, 1.0, 1.0, true};
    if (ns > 0) {
        make_batch(&b, &s, 0, ns, n, n, wn, s.rs);
        st = csp__solver_run(cs->solver, by_magnitude ? &identity_gram : g, &b);
    }
    if (st >= 0 && tail_solved) {
        make_batch(&b, &s, ns, 1, tail, n, wn, s.rs);
        sst = csp__solver_run(cs->solver, by_magnitude ? &tail_identity : &s.tail_gram, &b);
        st = sst < 0 || st == CSP_OK ? sst : st;
    }
    if (st >= 0 && corr && ns > 0) {
        make_batch(&b, &s, 0, ns, n, n, wn, s.rs2);
        sst = csp__solver_refit_ex(cs->solver, g, &b, alpha, false);
        st = sst < 0 || st == CSP_OK ? sst : st;
    }
    if (st >= 0 && corr && tail_solved) {
        make_batch(&b, &s, ns, 1, tail, n, wn, s.rs2);
        sst = csp__solver_refit_ex(cs->solver, &s.tail_gram, &b, alpha, false);
        st = sst < 0 || st == CSP_OK ? sst : st;
    }
    if (st < 0) {
        last_message(ctx, msg, sizeof msg);
        scratch_free(ctx, &s);
        return csp__error(ctx, st, "%s: tensor %d (%s): %s", fn, (int)index, name, msg);
    }

    /* The new mask: the old one, with the solved rows' supports; and the
     * errors e = w - x of the solved rows, a chunk at a time. */
    memcpy(pt->next, pt->mask, (size_t)csp__mask_words(t->numel) * sizeof(uint64_t));
    csp__tstats *tsx = &res->stats;
    double see = 0.0, seGe = 0.0;
    for (int64_t c0 = 0, cnt = 0; c0 < nc; c0 += cnt) {
        cnt = nc - c0 < chunk ? nc - c0 : chunk;
        if (c0 < ns && c0 + cnt > ns)
            cnt = ns - c0; /* the short last block alone */
        const csp__gram *gr = c0 < ns ? g : &s.tail_gram;
        int64_t len = c0 < ns ? n : tail;
        double sparse_cost = 0.0;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t c = c0 + i, r = s.sel[c];
            const uint64_t *sup = s.support + c * wn;
            csp__bits_insert(pt->next, r * n, sup, len);
            const float *wr = s.wc + c * n;
            const float *xr = s.xc + c * n;
            double *er = s.e + i * n;
            int64_t nnz = 0;
            for (int64_t q = 0; q < len; q++) {
                double wv = (double)wr[q];
                double xv = corr ? (double)xr[q] : csp__bit_get(sup, q) ? wv : 0.0;
                double d = wv - xv;
                see += d * d;
                er[q] = d;
                nnz += d != 0.0;
            }
            sparse_cost += (double)nnz * (double)nnz;
            const csp_row_stats *rr = &s.rs[c];
            tsx->iterations += rr->iterations;
            if (rr->iterations > tsx->iterations_max)
                tsx->iterations_max = rr->iterations;
            tsx->not_converged += rr->converged ? 0 : 1;
            bool damped = (rr->flags & CSP_ROW_DAMPED) != 0 ||
                          (corr && (s.rs2[c].flags & CSP_ROW_DAMPED) != 0);
            tsx->damped += damped ? 1 : 0;
            if (l1)
                s.lam[r] = s.lamc[c];
        }
        /* e^T G e in float64: one DGEMM when the errors are dense, else
         * over their nonzeros only. */
        if (gr->g64 != NULL && sparse_cost > 0.25 * (double)cnt * (double)len * (double)len) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cnt, (int)len, (int)len,
                        1.0, s.e, (int)n, gr->g64, (int)len, 0.0, s.eg, (int)n);
            for (int64_t i = 0; i < cnt; i++)
                seGe += csp__dot64(s.e + i * n, s.eg + i * n, len);
        } else {
            for (int64_t i = 0; i < cnt; i++) {
                const double *er = s.e + i * n;
                int64_t nnz = 0;
                for (int64_t q = 0; q < len; q++)
                    if (er[q] != 0.0)
                        s.nz[nnz++] = (int32_t)q;
                seGe += quad_sparse(gr, er, s.nz, nnz);
            }
        }
    }
    tsx->weight_error = sww > 0.0 ? sqrt(see / sww) : 0.0;
    tsx->sensing_error = swGw > 0.0 ? seGe / swGw : 0.0;
    if (st == CSP_DAMPED || st == CSP_NOT_CONVERGED)
        csp__log(ctx, CSP_LOG_WARN, "%s: tensor %d (%s): %lld rows damped, %lld not converged",
                 fn, (int)index, name, (long long)tsx->damped, (long long)tsx->not_converged);

    /* Keep what the commit needs. */
    if (corr && nc > 0) {
        res->x = s.xc;
        res->sel = s.sel;
        res->nc = nc;
        s.xc = NULL;
        s.sel = NULL;
    }
    res->lambda = s.lam;
    s.lam = NULL;
    scratch_free(ctx, &s);
    res->seconds = csp__now() - t0;
    return CSP_OK;
}

void csp__cs_commit(csp_pruner *p, csp__ptensor *pt, csp__cs_result *res) {
    csp__pcs *cs = pt->cs;
    const csp_tensor *t = pt->weight;
    int64_t n = cs->n, rows_all = cs->rows + (cs->tail > 0);
    for (int64_t c = 0; c < res->nc; c++) {
        int64_t r = res->sel[c];
        int64_t len = r < cs->rows ? n : cs->tail;
        char *dst = unit_ptr(t, cs, r);
        const float *xr = res->x + c * n;
        for (int64_t q = 0; q < len; q++) {
            if (!csp__bit_get(pt->mask, r * n + q))
                continue; /* zeroed by the mask */
            if (t->dtype == CSP_DTYPE_F64)
                ((double *)(void *)dst)[q] = (double)xr[q];
            else
                ((float *)(void *)dst)[q] = xr[q];
        }
    }
    if (res->lambda != NULL)
        memcpy(cs->lambda, res->lambda, (size_t)rows_all * sizeof(double));
    csp__tstats *ts = &pt->stats;
    ts->weight_error = res->stats.weight_error;
    ts->sensing_error = res->stats.sensing_error;
    ts->iterations = res->stats.iterations;
    ts->iterations_max = res->stats.iterations_max;
    ts->not_converged = res->stats.not_converged;
    ts->damped = res->stats.damped;
    ts->event_seconds = res->seconds;
    if (cs->attached == NULL && cs->owned != NULL &&
        csp_sensing_kind(cs->owned) == CSP_SENSING_ACTIVATIONS)
        csp_sensing_reset(cs->owned);
    csp__cs_result_free(p->ctx, res);
}

/* ---- GMP event errors ------------------------------------------------------------ */

void csp__gmp_event_errors(const csp__ptensor *pt, double *weight_err, double *sensing_err) {
    double ww, ee; /* one SIMD pass (prune/mask.c) */
    csp__mask_energy(pt->weight, pt->mask, pt->next, &ww, &ee);
    *weight_err = ww > 0.0 ? sqrt(ee / ww) : 0.0;
    *sensing_err = ww > 0.0 ? ee / ww : 0.0;
}

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

csp_status csp__shrink_reserve(csp_pruner *p, int64_t len) {
    if (len <= p->shrink_cap)
        return CSP_OK;
    shrink_item *buf = csp__malloc(p->ctx, (size_t)len * sizeof *buf);
    if (buf == NULL)
        return csp__error(p->ctx, CSP_E_NOMEM, "csp_pruner: out of memory for the shrink scratch");
    csp__free(p->ctx, p->shrink_buf);
    p->shrink_buf = buf;
    p->shrink_cap = len;
    return CSP_OK;
}

csp_status csp__shrink_prepare(csp_pruner *p, int64_t step, bool *active, double *s_next,
                               double *progress) {
    *active = false;
    bool any = false;
    for (int32_t i = 0; i < p->num_tensors && !any; i++)
        any = !p->tensors[i].excluded && p->tensors[i].conf.shrink > 0.0;
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

void csp__shrink_apply(csp_pruner *p, double s_next, double progress) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        if (pt->excluded || !(pt->conf.shrink > 0.0))
            continue;
        const csp_tensor *t = pt->weight;
        double ts = csp__tensor_target(p, pt, s_next);
        double tp = pt->conf.shrink * progress;
        size_t es = csp__dtype_size(t->dtype);
        if (pt->cs != NULL) {
            const csp__pcs *cs = pt->cs;
            for (int64_t r = 0; r < cs->rows + (cs->tail > 0); r++)
                shrink_row(p, pt, unit_ptr(t, cs, r), r * cs->n, r < cs->rows ? cs->n : cs->tail,
                           ts, tp);
        } else {
            for (int64_t r = 0; r < t->rows; r++)
                shrink_row(p, pt, (char *)t->data + (size_t)(r * t->row_stride) * es,
                           r * t->cols, t->cols, ts, tp);
        }
    }
}
