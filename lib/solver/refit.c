/* Correction of the kept weights (least-squares refit on a support, with
 * blending) and the two compression errors of a result.
 *
 * The refit x_S = G_SS^-1 (G w)_S costs s^3 / 6 (the Cholesky factor of
 * G_SS) per row. With H = G^-1 the same solution is the OBS form
 * x_S = w_S - H_SR H_RR^-1 w_R, R the n - s removed columns (x_R = 0 and
 * G (w - x) vanishes on S), which costs (n - s)^3 / 6 per row after one
 * n^3 / 2 inverse per call: the cheaper form at low sparsity, where a
 * gradual schedule's first events keep most weights. A call computes H
 * when the cost model below says it pays and G's own factor passes the
 * dependence test (so no row of that call needs damping); each row with
 * fewer removed than kept columns then takes the OBS form. The two forms
 * agree to rounding (test_refit_obs_form). */
#include "solver_internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    double *A, *rhs;
    int32_t *S;
    double *z; /* OBS form: n doubles */
    int damped;
} refit_ws;

typedef struct {
    const csp_solver *s;
    const csp__gram *g;
    const csp__batch *b;
    double alpha;
    refit_ws *ws;
    int64_t kcap;
    bool errors; /* compute residual and energy (O(n^2) per row) */
    const double *H; /* G^-1 (n x n, full) for the OBS form, or NULL */
} refit_job;

/* OBS form of the refit (H = G^-1): x_S = w_S - H_SR H_RR^-1 w_R into c.
 * False (nothing written to c) when H_RR fails the dependence test. */
static bool refit_obs(const refit_job *job, refit_ws *ws, const float *w, int64_t s,
                      double *c) {
    int64_t n = job->b->n, ld = job->kcap;
    const double *H = job->H;
    int32_t *R = ws->S + s; /* the removed columns, after S */
    int64_t r = 0;
    for (int64_t j = 0, t = 0; j < n; j++) {
        if (t < s && ws->S[t] == j)
            t++;
        else
            R[r++] = (int32_t)j;
    }
    double *A = ws->A, *v = ws->rhs;
    for (int64_t i = 0; i < r; i++)
        for (int64_t t = 0; t <= i; t++)
            A[i * ld + t] = H[(int64_t)R[i] * n + R[t]];
    if (csp__cholesky(A, ld, r, job->s->opt.dependence_tol) >= 0)
        return false;
    for (int64_t q = 0; q < r; q++)
        v[q] = (double)w[R[q]];
    csp__trsv_lower(A, ld, r, v);
    csp__trsv_lower_t(A, ld, r, v);
    double *z = ws->z; /* v scattered over R, zero on S */
    memset(z, 0, (size_t)n * sizeof(double));
    for (int64_t q = 0; q < r; q++)
        z[R[q]] = v[q];
    for (int64_t t = 0; t < s; t++)
        c[t] = (double)w[ws->S[t]] - csp__dot64(H + (int64_t)ws->S[t] * n, z, n);
    return true;
}

static void refit_row(const refit_job *job, refit_ws *ws, int64_t r) {
    const csp__gram *g = job->g;
    const csp__batch *b = job->b;
    const csp_solver_options *o = &job->s->opt;
    int64_t n = b->n, ld = job->kcap;
    const float *w = b->w + r * b->ws;
    int64_t s = 0;
    for (int64_t j = 0; j < n; j++)
        if (csp__bit_get(b->support, r * b->sbits + j))
            ws->S[s++] = (int32_t)j;
    csp_row_stats st = {0};
    double delta = 0.0;
    double *c = ws->rhs + ld; /* the refit values on S */
    if (job->H != NULL && n - s < s && refit_obs(job, ws, w, s, c)) {
        /* done: the OBS form */
    } else if (g->g64 == NULL) {
        for (int64_t t = 0; t < s; t++)
            c[t] = (double)w[ws->S[t]];
    } else {
        for (int64_t t = 0; t < s; t++) {
            const double *row = g->g64 + (int64_t)ws->S[t] * n;
            double acc = 0.0;
            for (int64_t i = 0; i < n; i++)
                acc += row[i] * (double)w[i];
            ws->rhs[t] = acc;
        }
        double damp0 = o->damping * (g->mean_diag > 0.0 ? g->mean_diag : 1.0);
        for (int escal = 0; escal < 64; escal++) {
            for (int64_t i = 0; i < s; i++)
                for (int64_t t = 0; t <= i; t++)
                    ws->A[i * ld + t] =
                        g->g64[(int64_t)ws->S[i] * n + ws->S[t]] + (i == t ? delta : 0.0);
            if (csp__cholesky(ws->A, ld, s, o->dependence_tol) < 0)
                break;
            st.flags |= CSP_ROW_DAMPED | CSP_ROW_DEPENDENT;
            delta = delta == 0.0 ? damp0 : 10.0 * delta;
        }
        /* (G_SS + delta I) x = (G w)_S + delta w_S: damping pulls toward w. */
        for (int64_t t = 0; t < s; t++)
            c[t] = ws->rhs[t] + delta * (double)w[ws->S[t]];
        csp__trsv_lower(ws->A, ld, s, c);
        csp__trsv_lower_t(ws->A, ld, s, c);
    }
    /* Blend, then the residual through G of e = w - x (x may be w: read
     * everything first). */
    double *e = ws->A + ld * ld; /* n doubles */
    int32_t *nz = (int32_t *)(e + n);
    for (int64_t j = 0; j < n; j++)
        e[j] = (double)w[j];
    for (int64_t t = 0; t < s; t++) {
        int32_t j = ws->S[t];
        double wj = (double)w[j];
        c[t] = wj + job->alpha * (c[t] - wj);
        c[t] = (double)(float)c[t];
        e[j] = wj - c[t];
    }
    if (job->errors) {
        int64_t cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (e[j] != 0.0)
                nz[cnt++] = (int32_t)j;
        st.residual = csp__quad_sparse(g, e, nz, cnt);
        if (st.residual < 0.0)
            st.residual = 0.0;
        for (int64_t j = 0; j < n; j++)
            e[j] = (double)w[j];
        cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (e[j] != 0.0)
                nz[cnt++] = (int32_t)j;
        st.energy = csp__quad_sparse(g, e, nz, cnt);
    }
    float *x = b->x + r * b->xs;
    memset(x, 0, (size_t)n * sizeof(float));
    for (int64_t t = 0; t < s; t++)
        x[ws->S[t]] = (float)c[t];
    st.damping = delta;
    st.nnz = (int32_t)s;
    st.converged = 1;
    if (st.flags & CSP_ROW_DAMPED)
        ws->damped = 1;
    csp__put_stats(b, r, &st);
}

static void refit_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const refit_job *job = arg;
    for (int64_t r = begin; r < end; r++)
        refit_row(job, &job->ws[worker], r);
}

csp_status csp__solver_refit(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                             double alpha, bool errors, const char *fn) {
    if (s == NULL)
        return CSP_E_NULL;
    csp_context *ctx = s->ctx;
    CSP_CHECK_NULL(ctx, g, "g");
    if (!(alpha >= 0.0 && alpha <= 1.0))
        return csp__error(ctx, CSP_E_RANGE, "%s: alpha = %g is outside [0, 1]", fn, alpha);
    csp__batch b;
    csp_status st = csp__resolve_batch(s, g->n, batch, &b, fn, true);
    if (st != CSP_OK || b.rows == 0)
        return st;
    int64_t n = g->n, kcap = 1;
    /* Cost model in multiply-adds: the direct form s^3 / 6 + s n per row;
     * the OBS form n^3 / 2 once plus (n - s)^3 / 6 + s n for each row
     * with n - s < s (the others stay direct). */
    double direct = 0.0, obs = 0.5 * (double)n * (double)n * (double)n;
    for (int64_t r = 0; r < b.rows; r++) {
        int64_t c = csp__mask_popcount_range(b.support, r * b.sbits, n);
        kcap = c > kcap ? c : kcap;
        double dc = (double)c * (double)c * (double)c / 6.0 + (double)c * (double)n;
        double rc = (double)(n - c);
        direct += dc;
        obs += n - c < c ? rc * rc * rc / 6.0 + (double)c * (double)n : dc;
    }
    bool use_h = g->g64 != NULL && !g->identity && obs < 0.7 * direct;
    if (use_h)
        kcap = n; /* A holds H_RR, rhs the solve, S both lists */
    int64_t workers = ctx->num_threads < b.rows ? ctx->num_threads : b.rows;
    refit_ws *ws = csp__calloc(ctx, (size_t)workers, sizeof *ws);
    bool ok = ws != NULL;
    for (int64_t t = 0; ok && t < workers; t++) {
        /* A (kcap^2), e (n) and the nonzero list (n int32, as n doubles). */
        ws[t].A = csp__malloc(ctx, (size_t)(kcap * kcap + 2 * n) * sizeof(double));
        ws[t].rhs = csp__malloc(ctx, (size_t)(2 * kcap) * sizeof(double));
        ws[t].S = csp__malloc(ctx, (size_t)kcap * sizeof(int32_t));
        ws[t].z = use_h ? csp__malloc(ctx, (size_t)n * sizeof(double)) : NULL;
        ok = ws[t].A != NULL && ws[t].rhs != NULL && ws[t].S != NULL && (!use_h || ws[t].z);
    }
    double *H = NULL;
    if (ok && use_h) {
        /* Without room for H, or with G (numerically) singular: every row
         * takes the direct form, as without the cost model. */
        H = csp__malloc(ctx, (size_t)n * (size_t)n * sizeof(double));
        if (H != NULL && !csp__gram_inverse(g, H, s->opt.dependence_tol)) {
            csp__free(ctx, H);
            H = NULL;
        }
    }
    if (!ok) {
        st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory (support of %lld)", fn,
                        (long long)kcap);
    } else {
        refit_job job = {s, g, &b, alpha, ws, kcap, errors, H};
        csp__parallel_for(ctx, b.rows, 4, refit_range, &job);
        for (int64_t t = 0; t < workers; t++)
            if (ws[t].damped)
                st = CSP_DAMPED;
    }
    for (int64_t t = 0; ws != NULL && t < workers; t++) {
        csp__free(ctx, ws[t].A);
        csp__free(ctx, ws[t].rhs);
        csp__free(ctx, ws[t].S);
        csp__free(ctx, ws[t].z);
    }
    csp__free(ctx, ws);
    csp__free(ctx, H);
    return st;
}

/* ---- errors ---------------------------------------------------------------------------- */

typedef struct {
    const csp__gram *g;
    int64_t n;
    const float *w, *x;
    int64_t ws, xs;
    double *werr, *serr;
    double *scratch; /* per worker: 2n doubles (e, then the nonzero list) */
} err_job;

static void err_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const err_job *j = arg;
    int64_t n = j->n;
    double *e = j->scratch + (size_t)worker * 2 * (size_t)n;
    int32_t *nz = (int32_t *)(e + n);
    for (int64_t r = begin; r < end; r++) {
        const float *w = j->w + r * j->ws, *x = j->x + r * j->xs;
        double ww = 0.0, ee = 0.0;
        int64_t cnt = 0;
        for (int64_t c = 0; c < n; c++) {
            e[c] = (double)w[c] - (double)x[c];
            ww += (double)w[c] * (double)w[c];
            ee += e[c] * e[c];
            if (e[c] != 0.0)
                nz[cnt++] = (int32_t)c;
        }
        if (j->werr != NULL)
            j->werr[r] = ww > 0.0 ? sqrt(ee / ww) : 0.0;
        if (j->serr != NULL) {
            double num = csp__quad_sparse(j->g, e, nz, cnt);
            cnt = 0;
            for (int64_t c = 0; c < n; c++) {
                e[c] = (double)w[c];
                if (e[c] != 0.0)
                    nz[cnt++] = (int32_t)c;
            }
            double den = csp__quad_sparse(j->g, e, nz, cnt);
            j->serr[r] = den > 0.0 ? (num > 0.0 ? num : 0.0) / den : 0.0;
        }
    }
}

csp_status csp__row_errors(csp_context *ctx, const csp__gram *g, int64_t rows, int64_t n,
                           const float *w, int64_t ws, const float *x, int64_t xs,
                           double *weight_err, double *sensing_err) {
    static const char fn[] = "csp__row_errors";
    CSP_CHECK_NULL(ctx, g, "g");
    if (rows < 0 || n != g->n || ws < n || xs < n)
        return csp__error(ctx, CSP_E_SHAPE, "%s: bad shape", fn);
    if (rows == 0)
        return CSP_OK;
    CSP_CHECK_NULL(ctx, w, "w");
    CSP_CHECK_NULL(ctx, x, "x");
    int64_t workers = ctx->num_threads < rows ? ctx->num_threads : rows;
    double *scratch = csp__malloc(ctx, (size_t)workers * 2 * (size_t)n * sizeof(double));
    if (scratch == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    err_job j = {g, n, w, x, ws, xs, weight_err, sensing_err, scratch};
    csp__parallel_for(ctx, rows, 4, err_range, &j);
    csp__free(ctx, scratch);
    return CSP_OK;
}
