/* Small float64 helpers (triangular solves, Cholesky), bit counting, power
 * iteration and the prepared Gram matrix. */
#include "linalg.h"

#include <math.h>
#include <string.h>

/* Eight partial sums (element i goes to sum i mod 8), added pairwise in a
 * fixed order, then the tail in order: the same bits on every CPU and at
 * every optimisation level, and eight independent addition chains instead
 * of one (the triangular solves and the Cholesky factor below are bound by
 * this sum's latency; one chain was 4-8x slower on long rows). Below eight
 * elements this is the plain sum in index order. */
double csp__dot64(const double *a, const double *b, int64_t n) {
    double p[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int q = 0; q < 8; q++)
            p[q] += a[i + q] * b[i + q];
    double s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y[0..n) -= a[0..n) v; y and a never overlap (restrict lets the compiler
 * vectorise at every optimisation level). */
static void axpy_sub64(double *restrict y, const double *restrict a, double v, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        y[t] -= a[t] * v;
}

void csp__trsv_lower(const double *L, int64_t ld, int64_t s, double *y) {
    for (int64_t i = 0; i < s; i++) {
        const double *row = L + i * ld;
        y[i] = (y[i] - csp__dot64(row, y, i)) / row[i];
    }
}

void csp__trsv_lower_t(const double *L, int64_t ld, int64_t s, double *y) {
    for (int64_t i = s - 1; i >= 0; i--) {
        double v = y[i] / L[i * ld + i];
        y[i] = v;
        axpy_sub64(y, L + i * ld, v, i);
    }
}

int64_t csp__cholesky(double *A, int64_t ld, int64_t s, double tau) {
    for (int64_t i = 0; i < s; i++) {
        double *ri = A + i * ld;
        for (int64_t j = 0; j < i; j++) {
            const double *rj = A + j * ld;
            ri[j] = (ri[j] - csp__dot64(ri, rj, j)) / rj[j];
        }
        double aii = ri[i];
        double d = aii - csp__dot64(ri, ri, i);
        if (!(d > tau * aii) || !(d > 0.0))
            return i;
        ri[i] = sqrt(d);
    }
    return -1;
}

bool csp__gram_inverse(const csp__gram *g, double *H, double tau) {
    int64_t n = g->n;
    memcpy(H, g->g64, (size_t)n * (size_t)n * sizeof(double));
    if (csp__cholesky(H, n, n, tau) >= 0)
        return false; /* L L^T = G in the lower triangle */
    /* M = L^-1, column c by forward substitution, kept transposed in the
     * free upper triangle: T[c][i] = M[i][c] at H[c][i] (i > c), M[c][c] on
     * the diagonal once column c is done (later columns read L only in
     * rows and columns > c). */
    for (int64_t c = 0; c < n; c++) {
        double *t = H + c * n;
        double yc = 1.0 / t[c];
        for (int64_t i = c + 1; i < n; i++) {
            const double *li = H + i * n;
            double acc = li[c] * yc + csp__dot64(li + c + 1, t + c + 1, i - c - 1);
            t[i] = -acc / li[i];
        }
        t[c] = yc;
    }
    /* G^-1 = M^T M: element (a, b), a >= b, is sum_{i >= a} T[a][i] T[b][i],
     * written over the lower triangle (L is done with); T[a][a] is read
     * last by (a, a) itself. Then the upper triangle from the lower. */
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b <= a; b++)
            H[a * n + b] = csp__dot64(H + a * n + a, H + b * n + a, n - a);
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = a + 1; b < n; b++)
            H[a * n + b] = H[b * n + a];
    return true;
}

double csp__quad_sparse(const csp__gram *g, const double *e, const int32_t *nz, int64_t cnt) {
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

/* ---- the prepared Gram ----------------------------------------------------- */

csp_status csp__gram_alloc(csp_context *ctx, csp__gram *g, int64_t n) {
    memset(g, 0, sizeof *g);
    size_t nn;
    if (n < 1 || !csp__mul_size((size_t)n, (size_t)n, &nn) || nn > SIZE_MAX / sizeof(double))
        return CSP_E_OVERFLOW;
    g->g64 = csp__malloc_aligned(ctx, nn * sizeof(double));
    g->g32 = csp__malloc_aligned(ctx, nn * sizeof(float));
    if (g->g64 == NULL || g->g32 == NULL) {
        csp__gram_release(ctx, g);
        return CSP_E_NOMEM;
    }
    g->n = n;
    return CSP_OK;
}

void csp__gram_release(csp_context *ctx, csp__gram *g) {
    csp__free_aligned(ctx, g->g64);
    csp__free_aligned(ctx, g->g32);
    memset(g, 0, sizeof *g);
}

void csp__gram_finish(csp__gram *g) {
    int64_t n = g->n;
    double trace = 0.0, maxd = 0.0;
    bool identity = true;
    for (int64_t i = 0; i < n; i++) {
        const double *row = g->g64 + i * n;
        float *row32 = g->g32 + i * n;
        for (int64_t j = 0; j < n; j++) {
            row32[j] = (float)row[j];
            if (row[j] != (i == j ? 1.0 : 0.0))
                identity = false;
        }
        trace += row[i];
        maxd = row[i] > maxd ? row[i] : maxd;
    }
    g->mean_diag = trace / (double)n;
    g->max_diag = maxd;
    g->identity = identity;
    g->lmax = 0.0;
}

csp_status csp__gram_ensure_lmax(csp_context *ctx, csp__gram *g) {
    if (g->lmax > 0.0)
        return CSP_OK;
    int64_t n = g->n;
    if (g->identity) {
        g->lmax = 1.0;
        return CSP_OK;
    }
    /* Gershgorin: an upper bound on every eigenvalue. */
    double gersh = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += fabs(g->g64[i * n + j]);
        gersh = s > gersh ? s : gersh;
    }
    if (!(gersh > 0.0)) {
        g->lmax = 1.0; /* G = 0: any step works */
        return CSP_OK;
    }
    double *v = csp__malloc(ctx, 2 * (size_t)n * sizeof(double));
    if (v == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "power iteration: out of memory (n = %lld)",
                          (long long)n);
    double *w = v + n;
    /* A fixed, positive-ish start vector from the counter-based generator. */
    uint64_t key = csp__key(0x6c6d6178ULL, (uint64_t)n, 0, 0);
    double nrm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = 1.0 + csp__uniform(key, (uint64_t)i);
        nrm += v[i] * v[i];
    }
    nrm = sqrt(nrm);
    for (int64_t i = 0; i < n; i++)
        v[i] /= nrm;
    double lam = 0.0;
    for (int it = 0; it < 1000; it++) {
        /* w = G v as v^T G (G is symmetric): a streaming pass over G. */
        csp__dgemm(1, n, n, v, n, 1, g->g64, n, w, n, false);
        double rq = csp__dot64(v, w, n);
        double wn = sqrt(csp__dot64(w, w, n));
        if (!(wn > 0.0))
            break;
        for (int64_t i = 0; i < n; i++)
            v[i] = w[i] / wn;
        bool done = it > 2 && fabs(rq - lam) <= 1e-7 * rq;
        lam = rq;
        if (done)
            break;
    }
    csp__free(ctx, v);
    /* The Rayleigh quotient approaches lambda_max from below: a 2% margin
     * keeps 1/L a safe step, and Gershgorin caps it. */
    double L = 1.02 * lam;
    g->lmax = L > gersh || !(L > 0.0) ? gersh : L;
    return CSP_OK;
}

csp_status csp__gram_validate(csp_context *ctx, const double *G, int64_t n, int64_t ld,
                              const char *fn) {
    double maxabs = 0.0, maxd = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = G[i * ld + j];
            if (!isfinite(v))
                return csp__error(ctx, CSP_E_NONFINITE, "%s: G[%lld][%lld] is not finite", fn,
                                  (long long)i, (long long)j);
            maxabs = fabs(v) > maxabs ? fabs(v) : maxabs;
        }
    for (int64_t i = 0; i < n; i++) {
        double d = G[i * ld + i];
        if (d < 0.0)
            return csp__error(ctx, CSP_E_INVALID,
                              "%s: G[%lld][%lld] = %g < 0: not positive semi-definite", fn,
                              (long long)i, (long long)i, d);
        maxd = d > maxd ? d : maxd;
        for (int64_t j = 0; j < i; j++) {
            double a = G[i * ld + j], b = G[j * ld + i];
            if (fabs(a - b) > 1e-10 * maxabs)
                return csp__error(ctx, CSP_E_INVALID,
                                  "%s: G is not symmetric: G[%lld][%lld] = %.17g but "
                                  "G[%lld][%lld] = %.17g",
                                  fn, (long long)i, (long long)j, a, (long long)j, (long long)i,
                                  b);
        }
    }
    if (maxd == 0.0) {
        if (maxabs > 0.0)
            return csp__error(ctx, CSP_E_INVALID,
                              "%s: zero diagonal with nonzero entries: not positive "
                              "semi-definite",
                              fn);
        return CSP_OK; /* G = 0 is PSD */
    }
    /* PSD test: Cholesky of the symmetric part plus a small shift. */
    size_t nn = (size_t)n * (size_t)n;
    double *A = csp__malloc(ctx, nn * sizeof(double));
    if (A == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory checking G", fn);
    double shift = 1e-9 * maxd;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            A[i * n + j] = 0.5 * (G[i * ld + j] + G[j * ld + i]) + (i == j ? shift : 0.0);
    int64_t bad = csp__cholesky(A, n, n, 0.0);
    csp__free(ctx, A);
    if (bad >= 0)
        return csp__error(ctx, CSP_E_INVALID,
                          "%s: G is not positive semi-definite (Cholesky of G + %g I fails at "
                          "pivot %lld)",
                          fn, shift, (long long)bad);
    return CSP_OK;
}
