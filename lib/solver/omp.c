/* Batch-OMP in Gram form (Rubinstein, Zibulevsky & Elad 2008) with a
 * progressive Cholesky factor of G_SS, in the "Z" form that needs no
 * triangular solve per pick.
 *
 * Per row, with b = G w (one float32 GEMM per chunk of rows), L L^T = G_SS,
 * u = L^-1 b_S and Z = G_{:,S} L^-T (n x s, float64):
 *   alpha = b - G_{:,S} c = b - Z u   correlations of the residual
 *   j     = argmax_{allowed, not in S} |alpha_j|   (ties: lower index)
 *   l     = L^-1 G_{S,j} = row j of Z,  d = G_jj - l.l
 *   d <= dependence_tol * G_jj: j depends linearly on S: damp G -> G + delta I
 *         (L, u, Z and alpha are rebuilt for G + delta I)
 *   L    <- [L 0; l^T sqrt(d)],  u_s = ((G w)_j - l.u) / sqrt(d)
 *   z_s   = (G_{:,j} - Z l) / sqrt(d),  alpha -= u_s z_s      (O(n s))
 *   residual = w^T G w - u.u;  at the end c = L^-T u (one solve)
 * Only the candidates' entries of Z and alpha are ever read, so they are
 * kept for the live columns alone (allowed, not picked, group open): a
 * column that stops being a candidate is swapped out (remove_col()), and
 * the arg max breaks ties by column index, not by position.
 * Everything is float64 except the arg max (a float32 copy of alpha) and
 * b = G w. The products use csp__dgemm's fixed order, so no result depends
 * on the thread count. With the option
 * `normalize` the pick is argmax |alpha_j| / sqrt(G_jj) (normalised atoms;
 * G_jj = 0 scores 0). With an N:M constraint (csp__omp_nm()) a group of m
 * consecutive columns is closed (its columns penalised out) once it holds
 * `keep` atoms. */
#include "solver_internal.h"

#include <math.h>
#include <string.h>

static int force_layout = -1; /* csp__omp_force_layout() */

void csp__omp_force_layout(int mode) { force_layout = mode; }

/* Two layouts of the per-position arrays (alpha, pen, scl, base, alpha64,
 * the rows of Z), chosen per row by a cost model (layout_row()):
 *   live:    col[0 .. na-1] are the row's live columns, in no particular
 *            order (the allowed columns not yet picked and not in a closed
 *            N:M group); inv[j] is column j's position, -1 once it is not
 *            live; pen is 0 at every position;
 *   columns: position = column (na = n), and pen is -inf for the columns
 *            that are not candidates (the layout before live positions).
 * Positions na .. padded(na) - 1 are padding. */
typedef struct {
    float *alpha, *pen, *scl; /* alpha: float32 copy of alpha64 for the arg max;
                                 scl: normalize's 1 / sqrt(G_jj) per position */
    int32_t *S, *gcnt;        /* gcnt: atoms per N:M group */
    int32_t *col, *inv;       /* position -> column, column -> position */
    double *L, *u, *c, *l, *bS;
    double *Z;             /* kcap x n: row t is z_t = (G + delta I)_{col,S} L^-T e_t */
    double *base, *alpha64, *w64, *tmp; /* n, n, n (w64 by column), kcap */
    int64_t kcap, na;
    bool live; /* positions are the live columns (else: every column, in order) */
} omp_ws;

typedef struct {
    const csp_solver_options *opt;
    const csp__gram *g;
    const csp__batch *b;
    const float *bmat; /* chunk rows x n: G w */
    const float *scale; /* normalize: 1 / sqrt(G_jj) (0 where G_jj <= 0); else NULL */
    int64_t r0;
    omp_ws *ws;
    csp_row_stats *rs; /* chunk rows */
    uint64_t *bits;    /* chunk rows x words */
    int64_t words;
} omp_job;

/* Cholesky of G_SS + delta I into L (leading dimension ld); false when a
 * pivot is still below the dependence threshold. */
static bool refactor(const csp__gram *g, const int32_t *S, int64_t s, double delta, double tau,
                     double *L, int64_t ld) {
    int64_t n = g->n;
    for (int64_t i = 0; i < s; i++)
        for (int64_t t = 0; t <= i; t++)
            L[i * ld + t] = g->g64[(int64_t)S[i] * n + S[t]] + (i == t ? delta : 0.0);
    return csp__cholesky(L, ld, s, tau) < 0;
}

/* The first j maximising |a_j| scale_j + pen_j (pen 0 or -inf); -1 when
 * every score is -inf. */
static int64_t argmax_scaled(const float *a, const float *scale, const float *pen, int64_t n) {
    int64_t best = -1;
    float bv = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        float v = fabsf(a[j]) * scale[j] + pen[j];
        if (v > bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}

/* Small loops on distinct buffers (restrict: vectorised at -O2). */
static void divide(double *restrict z, double d, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        z[i] /= d;
}
static void to_float(float *restrict f, const double *restrict d, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)d[i];
}
/* a64 -= u z, a32 = (float)a64. */
static void update_alpha(double *restrict a64, float *restrict a32, const double *restrict z,
                         double u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = a64[i] - u * z[i];
        a64[i] = v;
        a32[i] = (float)v;
    }
}
/* l[t] = Z[t * ld] for t < s (column j of Z, Z pointing at it). */
static void gather_column(double *restrict l, const double *restrict Z, int64_t ld, int64_t s) {
    for (int64_t t = 0; t < s; t++)
        l[t] = Z[t * ld];
}

/* The positions the products run over: the live ones rounded up to a
 * multiple of 16 (whole register strips of the single-row product; a
 * partial strip's chains run one after the other, at FMA latency). The
 * padding positions hold finite leftovers: computed, never read. */
static int64_t padded(int64_t na, int64_t n) {
    int64_t p = (na + 15) & ~(int64_t)15;
    return p < n ? p : n;
}

/* z_t for atom t = S[t] (row t of L known) at the live positions:
 * (G_{col,S_t} - sum_{q<t} L_tq z_q) / L_tt, in float64 (csp__dgemm's fixed
 * order: each element is the same chain of operations whatever the number
 * of positions). The damping's delta e_{S_t} falls on S_t's own entry,
 * which is not live (S_t is picked), so it is left out. */
static void make_z(const csp__gram *g, omp_ws *ws, int64_t t) {
    int64_t n = g->n, ld = ws->kcap, na = padded(ws->na, n);
    const double *Lt = ws->L + t * ld;
    const double *restrict gt = g->g64 + (int64_t)ws->S[t] * n;
    const int32_t *restrict col = ws->col;
    double *restrict z = ws->Z + t * n;
    if (ws->live)
        for (int64_t p = 0; p < na; p++)
            z[p] = gt[col[p]];
    else
        memcpy(z, gt, (size_t)na * sizeof(double));
    for (int64_t q = 0; q < t; q++)
        ws->tmp[q] = -Lt[q];
    csp__dgemm(1, na, t, ws->tmp, ld, 1, ws->Z, n, z, n, true);
    divide(z, Lt[t], na);
}

/* alpha64 = base - sum_{t<s} u_t z_t, and its float32 copy. */
static void remake_alpha(omp_ws *ws, int64_t n, int64_t s) {
    int64_t na = padded(ws->na, n);
    memcpy(ws->alpha64, ws->base, (size_t)na * sizeof(double));
    for (int64_t t = 0; t < s; t++)
        ws->tmp[t] = -ws->u[t];
    csp__dgemm(1, na, s, ws->tmp, ws->kcap, 1, ws->Z, n, ws->alpha64, n, true);
    to_float(ws->alpha, ws->alpha64, na);
}

/* Column j stops being a candidate: the last live position moves into its
 * place in the per-position arrays and in rows 0 .. s-1 of Z (s moves), so
 * each later z_t costs O(live t) instead of O(n t). Under gradual pruning
 * the allowed set is the previous support, so a row's live count falls
 * from about k to 0 over its k picks. The arithmetic per position is
 * unchanged, so the results are the same bits. */
static void remove_col(omp_ws *ws, int64_t n, int64_t j, int64_t s) {
    int32_t p = ws->inv[j];
    if (!ws->live) {
        ws->pen[p] = -INFINITY; /* positions are columns */
        return;
    }
    if (p < 0)
        return;
    int64_t last = ws->na - 1;
    ws->inv[j] = -1;
    if (p != last) {
        int32_t cl = ws->col[last];
        ws->col[p] = cl;
        ws->inv[cl] = p;
        ws->alpha[p] = ws->alpha[last];
        ws->scl[p] = ws->scl[last];
        ws->base[p] = ws->base[last];
        ws->alpha64[p] = ws->alpha64[last];
        double *z = ws->Z;
        for (int64_t t = 0; t < s; t++, z += n)
            z[p] = z[last];
    }
    ws->na = last;
}

/* The live position with the largest |alpha| (times scl with normalize);
 * ties go to the lowest column, as when positions were columns. -1 when
 * nothing is live. */
static int64_t pick(const omp_ws *ws, bool scaled) {
    int64_t na = ws->na;
    int64_t p = scaled ? argmax_scaled(ws->alpha, ws->scl, ws->pen, na)
                       : csp__f32_argmax_abs(ws->alpha, ws->pen, na);
    if (p < 0 || !ws->live)
        return p; /* positions are columns: the first is the lowest */
    /* The arg max returned the first position of the maximum; a later one
     * may hold a lower column. */
    const float *a = ws->alpha, *sc = ws->scl, *pen = ws->pen;
    const int32_t *col = ws->col;
    if (scaled) {
        float v = fabsf(a[p]) * sc[p] + pen[p];
        for (int64_t q = p + 1; q < na; q++)
            if (fabsf(a[q]) * sc[q] + pen[q] == v && col[q] < col[p])
                p = q;
        return p;
    }
    float v = fabsf(a[p]) + pen[p];
    for (int64_t q = p + 1; q < na;) {
        int64_t f = csp__f32_find_abs(a + q, pen + q, na - q, v);
        if (f < 0)
            break;
        q += f;
        if (col[q] < col[p])
            p = q;
        q++;
    }
    return p;
}

/* Lay out row r's positions (ws->live, col, inv, alpha, pen, scl, base,
 * alpha64, na) and w64. */
static void layout_row(const omp_job *job, omp_ws *ws, int64_t r, const float *w,
                       const float *brow, int32_t k) {
    const csp__batch *b = job->b;
    int64_t n = job->g->n;
    int64_t na = 0;
    for (int64_t j = 0; j < n; j++)
        na += csp__allowed(b, r, j);
    /* Live positions pay a gather per z_t and a tie check per pick (O(live))
     * to save (n - live) entries of every z_t: worth it when the row drops
     * many columns or picks many atoms (cost model in units of one
     * multiply-add; measured at n = 128: all allowed and k = 25 is 1.3x
     * slower live, k = 115 1.35x faster, a previous support of k + 6
     * columns 1.6-2x faster at k = 12 ... 64). Otherwise the positions are
     * the columns and a column leaves by its penalty alone. */
    double kk = (double)k;
    ws->live = force_layout >= 0 ? force_layout == 1
                                 : kk * kk / 3.0 + 0.5 * (double)(n - na) * kk > 4.0 * (double)n;
    if (!ws->live)
        na = n;
    for (int64_t j = 0, q = 0; j < n; j++) {
        ws->w64[j] = (double)w[j];
        ws->inv[j] = -1;
        bool ok = csp__allowed(b, r, j);
        if (ok || !ws->live) {
            ws->col[q] = (int32_t)j;
            ws->inv[j] = (int32_t)q;
            ws->base[q] = (double)brow[j];
            ws->alpha64[q] = ws->base[q];
            ws->alpha[q] = brow[j];
            ws->scl[q] = job->scale != NULL ? job->scale[j] : 1.0f;
            ws->pen[q] = ok ? 0.0f : -INFINITY;
            q++;
        }
    }
    for (int64_t p = na; p < n; p++) { /* padding: finite, never read */
        ws->col[p] = 0;
        ws->base[p] = 0.0;
        ws->alpha64[p] = 0.0;
    }
    ws->na = na;
}

/* One row. With Z = (G + delta I)_{:,S} L^-T (L L^T = G_SS + delta I) and
 * u = L^-1 (G w + delta w)_S, the correlations of the residual are
 * alpha = (G + delta I) w - G_{:,S} c = base - Z u, and the new row of L
 * for a pick j is l = L^-1 G_{S,j} = Z_{j,:}: each pick adds one column of
 * Z (O(n s)) and updates alpha (O(n)); no triangular solve until the end
 * (c = L^-T u). */
static void omp_row(const omp_job *job, omp_ws *ws, int64_t r, int64_t cr) {
    const csp__gram *g = job->g;
    const csp__batch *b = job->b;
    const csp_solver_options *o = job->opt;
    int64_t n = g->n, ld = ws->kcap;
    const float *w = b->w + r * b->ws;
    const float *brow = job->bmat + cr * n;
    int32_t k = csp__batch_k(b, r);
    csp_row_stats st = {0};

    double wGw = csp__f32_dot64(w, brow, n);
    double wn2 = csp__f32_dot64(w, w, n);
    double damp0 = o->damping * (g->mean_diag > 0.0 ? g->mean_diag : 1.0);
    double tau = o->dependence_tol;
    layout_row(job, ws, r, w, brow, k);
    if (b->nm_m > 0)
        memset(ws->gcnt, 0, (size_t)(n / b->nm_m) * sizeof(int32_t));
    double delta = 0.0, res = wGw;
    if (g->rank_bound > 0 && k > g->rank_bound && damp0 > 0.0 && !(o->eps > 0.0)) {
        /* More atoms than rank(G) can hold: G_SS turns singular by pick
         * rank_bound + 1 at the latest. Solve with G + delta I from the
         * start instead of rebuilding L, u and Z at that pick. (With an eps
         * stop the row may end before that pick: left to the rebuild.) */
        st.flags |= CSP_ROW_DEPENDENT | CSP_ROW_DAMPED;
        delta = damp0;
        res = wGw + delta * wn2;
        for (int64_t p = 0; p < ws->na; p++) {
            ws->base[p] += delta * ws->w64[ws->col[p]];
            ws->alpha64[p] = ws->base[p];
        }
        to_float(ws->alpha, ws->alpha64, ws->na);
    }
    int64_t s = 0;
    int escalations = 0;
    for (;;) {
        if (s == k) {
            st.converged = 1;
            break;
        }
        if (o->eps > 0.0 && res <= o->eps * wGw) {
            st.converged = 1;
            break;
        }
        int64_t p = pick(ws, job->scale != NULL);
        if (p < 0)
            break; /* unreachable: k <= allowed count was checked */
        int64_t j = ws->col[p];
        gather_column(ws->l, ws->Z + p, n, s);
        double gjj = g->g64[j * n + j] + delta;
        double d = gjj - csp__dot64(ws->l, ws->l, s);
        if (!(d > tau * gjj) || !(d > 0.0)) {
            /* Linearly dependent on S (or G_jj = 0): damp and re-solve. */
            st.flags |= CSP_ROW_DEPENDENT | CSP_ROW_DAMPED;
            do {
                delta = delta == 0.0 ? damp0 : 10.0 * delta;
                escalations++;
            } while (!refactor(g, ws->S, s, delta, tau, ws->L, ld) && escalations < 64);
            for (int64_t t = 0; t < s; t++)
                ws->u[t] = ws->bS[t] + delta * ws->w64[ws->S[t]];
            csp__trsv_lower(ws->L, ld, s, ws->u);
            res = wGw + delta * wn2 - csp__dot64(ws->u, ws->u, s);
            for (int64_t q = 0; q < padded(ws->na, n); q++)
                ws->base[q] = (double)brow[ws->col[q]] + delta * ws->w64[ws->col[q]];
            for (int64_t t = 0; t < s; t++)
                make_z(g, ws, t);
            remake_alpha(ws, n, s);
            if (escalations >= 64)
                break; /* cannot happen with a finite PSD G */
            continue;
        }
        double ljj = sqrt(d);
        double *Ls = ws->L + s * ld;
        memcpy(Ls, ws->l, (size_t)s * sizeof(double));
        Ls[s] = ljj;
        double bj = csp__dot64(g->g64 + j * n, ws->w64, n); /* (G w)_j */
        ws->bS[s] = bj;
        ws->u[s] = (bj + delta * ws->w64[j] - csp__dot64(Ls, ws->u, s)) / ljj;
        ws->S[s] = (int32_t)j;
        remove_col(ws, n, j, s);
        s++;
        if (b->nm_m > 0 && ++ws->gcnt[j / b->nm_m] >= b->nm_keep)
            for (int64_t q = j - j % b->nm_m, e = q + b->nm_m; q < e; q++)
                remove_col(ws, n, q, s - 1); /* the group is full: closed */
        res = wGw + delta * wn2 - csp__dot64(ws->u, ws->u, s);
        if (s < k) {
            make_z(g, ws, s - 1);
            update_alpha(ws->alpha64, ws->alpha, ws->Z + (s - 1) * n, ws->u[s - 1],
                         padded(ws->na, n));
        }
    }
    memcpy(ws->c, ws->u, (size_t)s * sizeof(double));
    csp__trsv_lower_t(ws->L, ld, s, ws->c);

    /* The undamped residual, then the outputs (x may be w: read w first). */
    if (delta > 0.0) {
        double dist2 = wn2; /* ||w - x||^2 */
        for (int64_t t = 0; t < s; t++) {
            double wj = (double)w[ws->S[t]], cj = ws->c[t];
            dist2 += (wj - cj) * (wj - cj) - wj * wj;
        }
        res -= delta * dist2;
    }
    float *x = b->x + r * b->xs;
    memset(x, 0, (size_t)n * sizeof(float));
    uint64_t *bits = job->bits + cr * job->words;
    memset(bits, 0, (size_t)job->words * sizeof(uint64_t));
    for (int64_t t = 0; t < s; t++) {
        x[ws->S[t]] = (float)ws->c[t];
        csp__bit_set(bits, ws->S[t], true);
    }
    st.residual = res > 0.0 ? res : 0.0;
    st.energy = wGw;
    st.damping = delta;
    st.iterations = (int32_t)s;
    st.nnz = (int32_t)s;
    job->rs[cr] = st;
}

static void omp_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const omp_job *job = arg;
    for (int64_t cr = begin; cr < end; cr++)
        omp_row(job, &job->ws[worker], job->r0 + cr, cr);
}

/* G = I, given as the identity kind (no matrix): OMP selects the k largest
 * |w| among the allowed columns (ties: lower index) and x_S = w_S. */
static void identity_row(const omp_job *job, csp__ranked *items, int64_t r, int64_t cr) {
    const csp__batch *b = job->b;
    int64_t n = b->n;
    const float *w = b->w + r * b->ws;
    int32_t k = csp__batch_k(b, r);
    int64_t cnt = 0;
    double energy = 0.0;
    for (int64_t j = 0; j < n; j++) {
        energy += (double)w[j] * (double)w[j];
        if (csp__allowed(b, r, j)) {
            items[cnt].key = fabsf(w[j]);
            items[cnt].key2 = 0.0f;
            items[cnt].idx = (int32_t)j;
            cnt++;
        }
    }
    csp__rank_sort(items, cnt);
    float *x = b->x + r * b->xs;
    uint64_t *bits = job->bits + cr * job->words;
    memset(bits, 0, (size_t)job->words * sizeof(uint64_t));
    double eps = job->opt->eps, res = energy;
    int64_t s = 0;
    int32_t *gcnt = (int32_t *)(void *)(items + n); /* N:M: kept per group */
    if (b->nm_m > 0)
        memset(gcnt, 0, (size_t)(n / b->nm_m) * sizeof(int32_t));
    for (int64_t q = 0; q < cnt && s < k && !(eps > 0.0 && res <= eps * energy); q++) {
        int32_t j = items[q].idx;
        if (b->nm_m > 0 && gcnt[j / b->nm_m]++ >= b->nm_keep)
            continue; /* its group is full */
        res -= (double)w[j] * (double)w[j];
        csp__bit_set(bits, j, true);
        s++;
    }
    /* The exact residual, summed over the dropped entries in index order;
     * then x (which may be w). */
    res = 0.0;
    for (int64_t j = 0; j < n; j++)
        if (!csp__bit_get(bits, j))
            res += (double)w[j] * (double)w[j];
    for (int64_t j = 0; j < n; j++)
        x[j] = csp__bit_get(bits, j) ? w[j] : 0.0f;
    csp_row_stats st = {0};
    st.residual = res;
    st.energy = energy;
    st.iterations = (int32_t)s;
    st.nnz = (int32_t)s;
    st.converged = 1;
    job->rs[cr] = st;
}

typedef struct {
    const omp_job *job;
    csp__ranked **items;
} id_job;

static void identity_range(void *arg, int64_t begin, int64_t end, int32_t worker) {
    const id_job *ij = arg;
    for (int64_t cr = begin; cr < end; cr++)
        identity_row(ij->job, ij->items[worker], ij->job->r0 + cr, cr);
}

csp_status csp__omp(csp_solver *s, const csp__gram *g, const csp__batch *b) {
    csp_context *ctx = s->ctx;
    int64_t n = g->n, rows = b->rows;
    int64_t chunk = rows < CSP__CHUNK ? rows : CSP__CHUNK;
    int64_t workers = ctx->num_threads < chunk ? ctx->num_threads : chunk;
    int64_t words = (n + 63) / 64;
    int64_t kcap = b->kmax > 0 ? b->kmax : 1;
    bool identity = g->g64 == NULL;

    /* Everything is allocated before any output is written. */
    omp_ws *ws = csp__calloc(ctx, (size_t)workers, sizeof *ws);
    csp__ranked **items = csp__calloc(ctx, (size_t)workers, sizeof *items);
    float *bmat = identity ? NULL : csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(float));
    csp_row_stats *rs = csp__calloc(ctx, (size_t)chunk, sizeof *rs);
    uint64_t *bits = csp__calloc(ctx, (size_t)(chunk * words), sizeof(uint64_t));
    bool normalize = s->opt.normalize != 0 && !identity; /* G = I: already normalised */
    float *scale = normalize ? csp__malloc_aligned(ctx, (size_t)n * sizeof(float)) : NULL;
    bool ok = ws != NULL && items != NULL && (identity || bmat != NULL) && rs != NULL &&
              bits != NULL && (!normalize || scale != NULL);
    for (int64_t j = 0; ok && normalize && j < n; j++) {
        double d = g->g64[j * n + j];
        scale[j] = d > 0.0 ? (float)(1.0 / sqrt(d)) : 0.0f;
    }
    for (int64_t t = 0; ok && t < workers; t++) {
        if (identity) {
            items[t] = csp__malloc(ctx, (size_t)(2 * n) * sizeof(csp__ranked));
            ok = items[t] != NULL;
            continue;
        }
        omp_ws *w = &ws[t];
        w->kcap = kcap;
        w->alpha = csp__malloc_aligned(ctx, (size_t)(3 * n) * sizeof(float));
        w->S = csp__malloc(ctx, (size_t)(kcap + 3 * n) * sizeof(int32_t));
        w->L = csp__malloc(ctx, (size_t)(kcap * kcap + 5 * kcap) * sizeof(double));
        w->Z = csp__malloc_aligned(ctx, (size_t)(kcap * n + 3 * n) * sizeof(double));
        ok = w->alpha != NULL && w->S != NULL && w->L != NULL && w->Z != NULL;
        if (ok) {
            w->pen = w->alpha + n;
            w->scl = w->pen + n;
            w->u = w->L + kcap * kcap;
            w->c = w->u + kcap;
            w->l = w->c + kcap;
            w->bS = w->l + kcap;
            w->tmp = w->bS + kcap;
            w->base = w->Z + kcap * n;
            w->alpha64 = w->base + n;
            w->w64 = w->alpha64 + n;
            w->gcnt = w->S + kcap;
            w->col = w->gcnt + n;
            w->inv = w->col + n;
        }
    }
    csp_status status = CSP_OK;
    if (!ok) {
        status = csp__error(ctx, CSP_E_NOMEM,
                            "%s: out of memory for OMP (n = %lld, k = %lld, %lld threads)", b->fn,
                            (long long)n, (long long)kcap, (long long)workers);
    } else {
        omp_job job = {&s->opt, g, b, bmat, scale, 0, ws, rs, bits, words};
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            int64_t cnt = rows - r0 < chunk ? rows - r0 : chunk;
            job.r0 = r0;
            if (identity) {
                id_job ij = {&job, items};
                csp__parallel_for(ctx, cnt, 8, identity_range, &ij);
            } else {
                csp__rows_times_gram(g, b->w + r0 * b->ws, b->ws, cnt, bmat);
                csp__parallel_for(ctx, cnt, 4, omp_range, &job);
            }
            for (int64_t cr = 0; cr < cnt; cr++) {
                csp__put_stats(b, r0 + cr, &rs[cr]);
                csp__put_support(b, r0 + cr, bits + cr * words);
                if (rs[cr].flags & CSP_ROW_DAMPED)
                    status = CSP_DAMPED;
            }
        }
        if (status == CSP_DAMPED)
            csp__log(ctx, CSP_LOG_WARN, "%s: damping added to singular G_SS "
                     "in some rows (see the row stats)", b->fn);
    }
    for (int64_t t = 0; ws != NULL && t < workers; t++) {
        csp__free_aligned(ctx, ws[t].alpha);
        csp__free(ctx, ws[t].S);
        csp__free(ctx, ws[t].L);
        csp__free_aligned(ctx, ws[t].Z);
    }
    for (int64_t t = 0; items != NULL && t < workers; t++)
        csp__free(ctx, items[t]);
    csp__free(ctx, ws);
    csp__free(ctx, items);
    csp__free_aligned(ctx, bmat);
    csp__free_aligned(ctx, scale);
    csp__free(ctx, rs);
    csp__free(ctx, bits);
    return status;
}

csp_status csp__omp_nm(csp_solver *s, const csp__gram *g, const csp_solver_batch *batch,
                       int32_t m, int32_t keep, const char *fn) {
    csp__batch b;
    csp_status st = csp__resolve_batch(s, g->n, batch, &b, fn, false);
    if (st != CSP_OK || b.rows == 0)
        return st;
    b.nm_m = m;
    b.nm_keep = keep;
    return csp__omp(s, g, &b);
}
