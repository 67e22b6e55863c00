/* rnnt_loss.c - RNN-T loss and gradient in log space, see rnnt_loss.h.
 *
 * For one utterance with T' = t_len frames and U' = u_len labels, over the
 * lattice t < T', u <= U' (Graves 2012, "Sequence transduction with
 * recurrent neural networks", section 2):
 *   blank(t,u) = log softmax(z[t][u])[blank], emit(t,u) = ... [y_{u+1}]
 *   alpha(0,0) = 0,
 *   alpha(t,u) = logaddexp(alpha(t-1,u) + blank(t-1,u),
 *                          alpha(t,u-1) + emit(t,u-1))
 *   beta(T'-1,U') = blank(T'-1,U'),
 *   beta(t,u)  = logaddexp(beta(t+1,u) + blank(t,u), beta(t,u+1) + emit(t,u))
 *   loss = -beta(0,0) (= -(alpha(T'-1,U') + blank(T'-1,U')))
 * and with g(t,u) = exp(alpha(t,u) + beta(t,u) + loss) (the occupancy),
 *   d loss / d z[t][u][v] = g(t,u) softmax_v
 *       - exp(alpha(t,u) + blank(t,u) + beta(t+1,u) + loss)   [v = blank]
 *       - exp(alpha(t,u) + emit(t,u) + beta(t,u+1) + loss)    [v = y_{u+1}]
 * where beta(T',U') is 0 for the final blank and -inf elsewhere beyond the
 * lattice.
 */
#include "rnnt_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log(exp(a) + exp(b)) with -inf handled. */
static double log_add(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

size_t rn_loss_ws_size(int T, int U1, int V)
{
    if (T <= 0 || U1 <= 0 || V <= 0)
        return 0;
    /* alpha, beta, log-sum-exp, blank, emit: 5 x T x U1 doubles */
    return (size_t)5 * (size_t)T * (size_t)U1 * sizeof(double);
}

const char *rn_loss_strerror(int status)
{
    switch (status) {
    case RN_LOSS_OK: return "ok";
    case RN_LOSS_E_NULL: return "a required pointer is NULL";
    case RN_LOSS_E_RANGE: return "a size, length or label is out of range";
    case RN_LOSS_E_NOMEM: return "out of memory";
    case RN_LOSS_E_NONFINITE: return "non-finite logits or probability underflow";
    default: return "unknown status";
    }
}

static int check_args(const float *logits, const int32_t *labels,
                      const int32_t *t_len, const int32_t *u_len, int B,
                      int T, int U1, int V, int blank, const float *loss)
{
    if (!logits || !t_len || !u_len || !loss || (!labels && U1 > 1))
        return RN_LOSS_E_NULL;
    if (B < 1 || T < 1 || U1 < 1 || V < 2 || blank < 0 || blank >= V)
        return RN_LOSS_E_RANGE;
    for (int b = 0; b < B; b++) {
        if (t_len[b] < 1 || t_len[b] > T || u_len[b] < 0 || u_len[b] > U1 - 1)
            return RN_LOSS_E_RANGE;
        for (int u = 0; u < u_len[b]; u++) {
            int32_t y = labels[(size_t)b * (size_t)(U1 - 1) + (size_t)u];
            if (y < 0 || y >= V || y == blank)
                return RN_LOSS_E_RANGE;
        }
    }
    return RN_LOSS_OK;
}

/* Log-softmax pieces of the lattice: lse, blank and emit log-probs.
 * Returns nonzero when a logit is not finite. */
static int lattice_logprobs(const float *z, const int32_t *y, int Tb, int Ub,
                            int U1, int V, int blank, double *lse,
                            double *lpb, double *lpe)
{
    for (int t = 0; t < Tb; t++) {
        for (int u = 0; u <= Ub; u++) {
            const float *zz = z + ((size_t)t * (size_t)U1 + (size_t)u) * (size_t)V;
            double m = -INFINITY;
            for (int v = 0; v < V; v++) {
                if (!isfinite(zz[v]))
                    return 1;
                if (zz[v] > m)
                    m = zz[v];
            }
            double s = 0.0;
            for (int v = 0; v < V; v++)
                s += exp((double)zz[v] - m);
            size_t i = (size_t)t * (size_t)U1 + (size_t)u;
            lse[i] = m + log(s);
            lpb[i] = (double)zz[blank] - lse[i];
            lpe[i] = u < Ub ? (double)zz[y[u]] - lse[i] : -INFINITY;
        }
    }
    return 0;
}

/* One utterance; returns 0 or RN_LOSS_E_NONFINITE. */
static int one_utt(const float *z, const int32_t *y, int Tb, int Ub, int T,
                   int U1, int V, int blank, double *ws, float *loss,
                   float *grad)
{
    size_t cells = (size_t)T * (size_t)U1;
    double *alpha = ws, *beta = ws + cells, *lse = ws + 2 * cells;
    double *lpb = ws + 3 * cells, *lpe = ws + 4 * cells;
#define IX(t, u) ((size_t)(t) * (size_t)U1 + (size_t)(u))
    if (lattice_logprobs(z, y, Tb, Ub, U1, V, blank, lse, lpb, lpe))
        return RN_LOSS_E_NONFINITE;
    for (int t = 0; t < Tb; t++) {
        for (int u = 0; u <= Ub; u++) {
            double a;
            if (t == 0 && u == 0)
                a = 0.0;
            else {
                a = -INFINITY;
                if (t > 0)
                    a = alpha[IX(t - 1, u)] + lpb[IX(t - 1, u)];
                if (u > 0)
                    a = log_add(a, alpha[IX(t, u - 1)] + lpe[IX(t, u - 1)]);
            }
            alpha[IX(t, u)] = a;
        }
    }
    for (int t = Tb - 1; t >= 0; t--) {
        for (int u = Ub; u >= 0; u--) {
            double b;
            if (t == Tb - 1 && u == Ub)
                b = lpb[IX(t, u)];
            else {
                b = -INFINITY;
                if (t < Tb - 1)
                    b = beta[IX(t + 1, u)] + lpb[IX(t, u)];
                if (u < Ub)
                    b = log_add(b, beta[IX(t, u + 1)] + lpe[IX(t, u)]);
            }
            beta[IX(t, u)] = b;
        }
    }
    double logp = beta[IX(0, 0)];
    if (!isfinite(logp))
        return RN_LOSS_E_NONFINITE;
    *loss = (float)-logp;
    if (!grad)
        return RN_LOSS_OK;
    memset(grad, 0, cells * (size_t)V * sizeof *grad);
    for (int t = 0; t < Tb; t++) {
        for (int u = 0; u <= Ub; u++) {
            size_t i = IX(t, u);
            const float *zz = z + i * (size_t)V;
            float *gg = grad + i * (size_t)V;
            double occ = exp(alpha[i] + beta[i] - logp);
            for (int v = 0; v < V; v++)
                gg[v] = (float)(occ * exp((double)zz[v] - lse[i]));
            double nb = t < Tb - 1 ? beta[IX(t + 1, u)] : (u == Ub ? 0.0 : -INFINITY);
            double gb = exp(alpha[i] + lpb[i] + nb - logp);
            double ge = u < Ub ? exp(alpha[i] + lpe[i] + beta[IX(t, u + 1)] - logp) : 0.0;
            gg[blank] = (float)(occ * exp(lpb[i]) - gb);
            if (u < Ub)
                gg[y[u]] = (float)(occ * exp(lpe[i]) - ge);
        }
    }
#undef IX
    return RN_LOSS_OK;
}

int rn_loss_ws(const float *logits, const int32_t *labels,
               const int32_t *t_len, const int32_t *u_len, int B, int T,
               int U1, int V, int blank, float *loss, float *grad, void *ws,
               size_t ws_bytes)
{
    int rc = check_args(logits, labels, t_len, u_len, B, T, U1, V, blank, loss);
    if (rc)
        return rc;
    if (!ws)
        return RN_LOSS_E_NULL;
    if (ws_bytes < rn_loss_ws_size(T, U1, V))
        return RN_LOSS_E_RANGE;
    size_t block = (size_t)T * (size_t)U1 * (size_t)V;
    for (int b = 0; b < B; b++) {
        const int32_t *y = labels ? labels + (size_t)b * (size_t)(U1 - 1) : NULL;
        rc = one_utt(logits + (size_t)b * block, y, t_len[b], u_len[b], T, U1,
                     V, blank, (double *)ws, &loss[b],
                     grad ? grad + (size_t)b * block : NULL);
        if (rc)
            return rc;
    }
    return RN_LOSS_OK;
}

int rn_loss(const float *logits, const int32_t *labels, const int32_t *t_len,
            const int32_t *u_len, int B, int T, int U1, int V, int blank,
            float *loss, float *grad)
{
    int rc = check_args(logits, labels, t_len, u_len, B, T, U1, V, blank, loss);
    if (rc)
        return rc;
    size_t n = rn_loss_ws_size(T, U1, V);
    void *ws = malloc(n);
    if (!ws)
        return RN_LOSS_E_NOMEM;
    rc = rn_loss_ws(logits, labels, t_len, u_len, B, T, U1, V, blank, loss,
                    grad, ws, n);
    free(ws);
    return rc;
}
