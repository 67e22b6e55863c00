/*
 * The second-order sweep (CSP_SOLVER_SWEEP, <csp/experimental.h>): the
 * SparseGPT / OBC family of layer-wise pruners, for CSP's problem
 * min (w - x)^T G (w - x) with exactly k kept weights per row.
 *
 * One factorisation per call, shared by every row: U upper triangular with
 * (G + delta I)^-1 = U^T U (delta = 0 unless G is singular; then the
 * solver's damping, escalating x10, as in OMP). With R = P L P from the
 * Cholesky L L^T of the reversed matrix P (G + delta I) P, G + delta I = R R^T
 * and U = R^-1 = P L^-1 P: one Cholesky and one triangular inverse (TRSM).
 *
 * Per row, the support is chosen first over the whole row, by the OBS
 * saliency w_j^2 / [(G + delta I)^-1]_jj (ties: larger |w_j|, then lower
 * index), among the allowed columns: exactly k kept, and no column-order
 * bias (a column's score does not depend on where the sweep is). Then the
 * columns are swept in index order: a pruned column j gives the error
 * e_j = (w_j - 0) / U_jj, and the later columns of the row absorb it,
 * w_{j'} -= e_j U_{j j'} (the OBS update); the updates are applied within
 * a block of CSP__SWEEP_BLOCK columns at once and to the columns after the
 * block by one GEMM per block (lazy updates). The kept weights are the
 * swept values: the OBS correction itself. The exact error through the
 * damped G is sum_j e_j^2, from which the residual through G follows.
 *
 * With G = c I (and the identity kind) U is diagonal: the support is the k
 * largest |w| (magnitude pruning, its ties included) and x_S = w_S.
 */
#include "solver_internal.h"

#include <math.h>
#include <string.h>

/* Default columns per lazy-update block. */
#define CSP__SWEEP_BLOCK 128

/* Factor: U (n x n, upper) with (G + delta I)^-1 = U^T U, and dh[j] =
 * [(G + delta I)^-1]_jj. @p L is n x n scratch. */
static csp_status sweep_factor(const csp_solver *s, const csp__gram *g, double *U, double *L,
                               double *dh, double *delta_out, const char *fn) {
    const csp_solver_options *o = &s->opt;
    int64_t n = g->n;
    double damp0 = o->damping * (g->mean_diag > 0.0 ? g->mean_diag : 1.0);
    double delta = 0.0;
    bool ok = false;
    for (int escal = 0; escal < 64 && !ok; escal++) {
        for (int64_t i = 0; i < n; i++) {
            const double *gr = g->g64 + (n - 1 - i) * n + (n - 1);
            for (int64_t j = 0; j <= i; j++)
                L[i * n + j] = gr[-j] + (i == j ? delta : 0.0);
        }
        ok = csp__cholesky(L, n, n, o->dependence_tol) < 0;
        if (!ok)
            delta = delta == 0.0 ? damp0 : 10.0 * delta;
    }
    if (!ok)
        return csp__error(s->ctx, CSP_E_INVALID,
                          "%s: the sweep could not factor G, even damped by %g", fn, delta);
    /* U <- L^-1 (lower), by TRSM on the identity. */
    memset(U, 0, (size_t)(n * n) * sizeof *U);
    for (int64_t i = 0; i < n; i++)
        U[i * n + i] = 1.0;
    /* Forward substitution, row by row in a fixed order (no BLAS: the bits
     * must not depend on its threading). Row i of L^-1 is zero past i. */
    for (int64_t i = 0; i < n; i++) {
        double *ui = U + i * n;
        const double *li = L + i * n;
        for (int64_t p = 0; p < i; p++) {
            double f = li[p];
            const double *up = U + p * n;
            for (int64_t c = 0; c <= p; c++)
                ui[c] = fma(-f, up[c], ui[c]);
        }
        double inv = 1.0 / li[i];
        for (int64_t c = 0; c <= i; c++)
            ui[c] *= inv;
    }
    /* Reverse both indices: the upper factor. L is free scratch now. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            L[i * n + j] = j >= i ? U[(n - 1 - i) * n + (n - 1 - j)] : 0.0;
    memcpy(U, L, (size_t)(n * n) * sizeof *U);
    for (int64_t j = 0; j < n; j++) {
        double acc = 0.0;
        for (int64_t i = 0; i <= j; i++)
            acc += U[i * n + j] * U[i * n + j];
        dh[j] = acc;
    }
    *delta_out = delta;
    return CSP_OK;
}

/* Row r's support (exactly k allowed columns by OBS saliency) into @p bits
 * (n bits, cleared first). dh NULL: G = I. */
static void sweep_select(const csp__batch *b, int64_t r, const double *dh, csp__ranked *items,
                         uint64_t *bits) {
    int64_t n = b->n, cnt = 0;
    const float *w = b->w + r * b->ws;
    for (int64_t j = 0; j < n; j++) {
        if (!csp__allowed(b, r, j))
            continue;
        double wj = (double)w[j];
        items[cnt].key = (float)(dh != NULL ? wj * wj / dh[j] : wj * wj);
        items[cnt].key2 = fabsf(w[j]);
        items[cnt].idx = (int32_t)j;
        cnt++;
    }
    csp__rank_sort(items, cnt);
    memset(bits, 0, (size_t)((n + 63) / 64) * sizeof(uint64_t));
    int32_t k = csp__batch_k(b, r);
    for (int64_t t = 0; t < k && t < cnt; t++)
        csp__bit_set(bits, items[t].idx, true);
}

typedef struct {
    const csp__gram *g;
    const csp__batch *b;
    const double *U;
    int64_t block;
    double *W;      /* chunk x n, the rows being swept */
    double *E;      /* chunk x block, the block's errors */
    double *loss;   /* chunk: sum of e_j^2 */
    uint64_t *bits; /* chunk x words: the supports */
    int64_t words;
    csp__ranked *items; /* n */
    int32_t *left;      /* chunk: kept weights still to place (per-block mode) */
    int64_t r0;
} sweep_job;

/* Per-block mode (s->sweep_mode 1): at the start of block [i1, i2), row r
 * keeps round(left * allowed_in_block / allowed_from_i1) of the block's
 * allowed columns (clamped so that the rest can still be met), the largest
 * current w_j^2 / U_jj^2. */
static void block_select(const sweep_job *job, int64_t r, int64_t i1, int64_t i2) {
    const csp__batch *b = job->b;
    const double *wr = job->W + r * job->g->n;
    uint64_t *bits = job->bits + r * job->words;
    int64_t inb = 0, rest = 0, cnt = 0;
    for (int64_t j = i1; j < b->n; j++) {
        if (!csp__allowed(b, job->r0 + r, j))
            continue;
        rest++;
        if (j >= i2)
            continue;
        inb++;
        double u = job->U[j * b->n + j];
        job->items[cnt].key = (float)(wr[j] * wr[j] * u * u);
        job->items[cnt].key2 = (float)fabs(wr[j]);
        job->items[cnt].idx = (int32_t)j;
        cnt++;
    }
    int64_t left = job->left[r];
    int64_t take = rest > 0 ? (left * inb * 2 + rest) / (2 * rest) : 0;
    if (take < left - (rest - inb))
        take = left - (rest - inb);
    if (take > left)
        take = left;
    csp__rank_sort(job->items, cnt);
    for (int64_t j = i1; j < i2; j++)
        csp__bit_set(bits, j, false);
    for (int64_t t = 0; t < take; t++)
        csp__bit_set(bits, job->items[t].idx, true);
    job->left[r] = (int32_t)(left - take);
}

/* Sweep rows [0, cnt) of the chunk starting at row r0: W holds them. */
static void sweep_chunk(const sweep_job *job, int64_t cnt) {
    const double *U = job->U;
    int64_t n = job->g->n, B = job->block;
    for (int64_t i1 = 0; i1 < n; i1 += B) {
        int64_t i2 = i1 + B < n ? i1 + B : n, len = i2 - i1;
        for (int64_t r = 0; r < cnt; r++) {
            if (job->left != NULL)
                block_select(job, r, i1, i2);
            double *wr = job->W + r * n, *er = job->E + r * B;
            const uint64_t *bits = job->bits + r * job->words;
            double loss = 0.0;
            for (int64_t i = i1; i < i2; i++) {
                const double *ui = U + i * n;
                double e = 0.0;
                if (!csp__bit_get(bits, i)) {
                    e = wr[i] / ui[i];
                    wr[i] = 0.0;
                    for (int64_t j = i + 1; j < i2; j++)
                        wr[j] -= e * ui[j];
                }
                er[i - i1] = -e; /* negated: the block update adds E U */
                loss += e * e;
            }
            job->loss[r] += loss;
        }
        if (i2 < n)
            csp__dgemm(cnt, n - i2, len, job->E, B, 1, U + i1 * n + i2, n, job->W + i2, n, true);
    }
}

/* The outputs of the chunk's rows: x, stats (residual from the loss, the
 * energy w^T G w from @p wg = W G in float), support. */
static void sweep_out(const sweep_job *job, int64_t r0, int64_t cnt, const float *wg,
                      double delta) {
    const csp__batch *b = job->b;
    int64_t n = b->n;
    for (int64_t r = 0; r < cnt; r++) {
        const float *w = b->w + (r0 + r) * b->ws;
        float *x = b->x + (r0 + r) * b->xs;
        const double *wr = job->W + r * n;
        const uint64_t *bits = job->bits + r * job->words;
        csp_row_stats st = {0};
        double energy = 0.0, dd = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double wj = (double)w[j];
            energy += wg != NULL ? wj * (double)wg[r * n + j] : wj * wj;
            bool kept = csp__bit_get(bits, j);
            float xv = kept ? (float)wr[j] : 0.0f;
            if (kept && xv == w[j])
                xv = w[j]; /* unchanged: keep its bits (the sign of a zero) */
            x[j] = xv; /* x may be w: w[j] is not read again */
            dd += (wj - (double)xv) * (wj - (double)xv);
            st.nnz += csp__bit_get(bits, j) ? 1 : 0;
        }
        double res = job->loss[r] - delta * dd;
        st.residual = res > 0.0 ? res : 0.0;
        st.energy = energy;
        st.damping = delta;
        st.flags = delta > 0.0 ? CSP_ROW_DAMPED : 0;
        st.iterations = (int32_t)n;
        st.converged = 1;
        csp__put_stats(b, r0 + r, &st);
        csp__put_support(b, r0 + r, bits);
    }
}

/* G = I (the identity kind): the k largest |w|, x_S = w_S. */
static csp_status sweep_identity(csp_solver *s, const csp__batch *b) {
    csp_context *ctx = s->ctx;
    int64_t n = b->n, words = (n + 63) / 64;
    csp__ranked *items = csp__malloc(ctx, (size_t)n * sizeof *items);
    uint64_t *bits = csp__malloc(ctx, (size_t)words * sizeof *bits);
    double *wd = csp__malloc(ctx, (size_t)n * sizeof *wd), loss = 0.0;
    if (items == NULL || bits == NULL || wd == NULL) {
        csp__free(ctx, items);
        csp__free(ctx, bits);
        csp__free(ctx, wd);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the sweep (n = %lld)", b->fn,
                          (long long)n);
    }
    sweep_job job = {NULL, b, NULL, 1, wd, NULL, &loss, bits, words, NULL, NULL, 0};
    for (int64_t r = 0; r < b->rows; r++) {
        sweep_select(b, r, NULL, items, bits);
        const float *w = b->w + r * b->ws;
        loss = 0.0;
        for (int64_t j = 0; j < n; j++) {
            wd[j] = (double)w[j];
            loss += csp__bit_get(bits, j) ? 0.0 : wd[j] * wd[j];
        }
        sweep_out(&job, r, 1, NULL, 0.0);
    }
    csp__free(ctx, items);
    csp__free(ctx, bits);
    csp__free(ctx, wd);
    return CSP_OK;
}

csp_status csp__sweep(csp_solver *s, const csp__gram *g, const csp__batch *b) {
    if (g->g64 == NULL)
        return sweep_identity(s, b);
    csp_context *ctx = s->ctx;
    int64_t n = g->n, rows = b->rows;
    int64_t chunk = rows < CSP__CHUNK ? rows : CSP__CHUNK;
    int64_t block = s->sweep_block > 0 ? s->sweep_block : CSP__SWEEP_BLOCK;
    int64_t words = (n + 63) / 64;
    double *U = csp__malloc_aligned(ctx, (size_t)(n * n) * sizeof(double));
    double *L = csp__malloc_aligned(ctx, (size_t)(n * n) * sizeof(double));
    double *dh = csp__malloc(ctx, (size_t)n * sizeof(double));
    double *W = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(double));
    double *E = csp__malloc_aligned(ctx, (size_t)(chunk * block) * sizeof(double));
    double *loss = csp__malloc(ctx, (size_t)chunk * sizeof(double));
    float *wg = csp__malloc_aligned(ctx, (size_t)(chunk * n) * sizeof(float));
    uint64_t *bits = csp__malloc(ctx, (size_t)(chunk * words) * sizeof(uint64_t));
    csp__ranked *items = csp__malloc(ctx, (size_t)n * sizeof(csp__ranked));
    csp_status st = CSP_OK;
    double delta = 0.0;
    if (U == NULL || L == NULL || dh == NULL || W == NULL || E == NULL || loss == NULL ||
        wg == NULL || bits == NULL || items == NULL)
        st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the sweep (n = %lld)", b->fn,
                        (long long)n);
    if (st == CSP_OK)
        st = sweep_factor(s, g, U, L, dh, &delta, b->fn);
    int32_t *left = s->sweep_mode == 1 ? csp__malloc(ctx, (size_t)chunk * sizeof(int32_t)) : NULL;
    if (st == CSP_OK && s->sweep_mode == 1 && left == NULL)
        st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for the sweep (n = %lld)", b->fn,
                        (long long)n);
    sweep_job job = {g, b, U, block, W, E, loss, bits, words, items, left, 0};
    for (int64_t r0 = 0; st == CSP_OK && r0 < rows; r0 += chunk) {
        int64_t cnt = rows - r0 < chunk ? rows - r0 : chunk;
        for (int64_t r = 0; r < cnt; r++) {
            const float *w = b->w + (r0 + r) * b->ws;
            for (int64_t j = 0; j < n; j++)
                W[r * n + j] = (double)w[j];
            loss[r] = 0.0;
            sweep_select(b, r0 + r, dh, items, bits + r * words);
            if (left != NULL)
                left[r] = csp__batch_k(b, r0 + r);
        }
        job.r0 = r0;
        csp__rows_times_gram(g, b->w + r0 * b->ws, b->ws, cnt, wg);
        sweep_chunk(&job, cnt);
        sweep_out(&job, r0, cnt, wg, delta);
    }
    if (st == CSP_OK && delta > 0.0) {
        st = CSP_DAMPED;
        csp__log(ctx, CSP_LOG_WARN, "%s: the sweep damped a singular G by %g (see the row stats)",
                 b->fn, delta);
    }
    csp__free_aligned(ctx, U);
    csp__free_aligned(ctx, L);
    csp__free(ctx, dh);
    csp__free_aligned(ctx, W);
    csp__free_aligned(ctx, E);
    csp__free(ctx, loss);
    csp__free_aligned(ctx, wg);
    csp__free(ctx, bits);
    csp__free(ctx, items);
    csp__free(ctx, left);
    return st;
}
