/* rnnt_infer.c - streaming greedy decoding, dense or sparse; see
 * rnnt_infer.h. */
#include "rnnt_infer.h"
#include "rnnt_math.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct rn_mat {
    const float *w; /* rows x cols, row-major (the model's weights) */
    int64_t rows, cols;
    csp_sparse *sp; /* NULL: dense */
} rn_mat;

struct rn_infer {
    const rn_model *m;
    csp_context *ctx;
    rn_mat mat[RN_MAX_PARAMS];
    float *buf; /* all scratch, one allocation */
    float *h[RN_MAX_LAYERS], *c[RN_MAX_LAYERS], *gates, *e, *ph, *pc, *q, *z, *lg;
};

/* y = W x + beta y. */
static int mv(const rn_infer *r, int k, const float *x, float beta, float *y)
{
    const rn_mat *a = &r->mat[k];
    if (a->sp != NULL)
        return csp_sparse_matvec(a->sp, r->ctx, 1.0f, x, beta, y) == CSP_OK ? RN_OK
                                                                            : RN_E_INVALID;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)a->rows, (int)a->cols, 1.0f, a->w,
                (int)a->cols, x, 1, beta, y, 1);
    return RN_OK;
}

void rn_infer_free(rn_infer *r)
{
    if (r == NULL)
        return;
    for (int k = 0; k < RN_MAX_PARAMS; k++)
        csp_sparse_free(r->mat[k].sp);
    free(r->buf);
    free(r);
}

int rn_infer_create(rn_infer **out, const rn_model *m, csp_context *ctx, int sparse)
{
    if (out == NULL || m == NULL || (sparse && ctx == NULL))
        return RN_E_INVALID;
    *out = NULL;
    rn_infer *r = calloc(1, sizeof *r);
    if (r == NULL)
        return RN_E_NOMEM;
    r->m = m;
    r->ctx = ctx;
    for (int k = 0; k < m->nparams; k++) {
        const rn_param *p = &m->p[k];
        r->mat[k] = (rn_mat){p->data, p->rows, p->cols, NULL};
        if (sparse && p->prunable &&
            csp_sparse_from_dense(ctx, p->data, p->rows, p->cols, 0, NULL, &r->mat[k].sp) !=
                CSP_OK) {
            rn_infer_free(r);
            return RN_E_INVALID;
        }
    }
    const rn_config *c = &m->cfg;
    const int64_t H = c->enc_hidden, P = c->pred_hidden, J = c->joint, V = c->vocab;
    const int64_t G4 = 4 * (H > P ? H : P);
    r->buf = malloc((size_t)(2 * c->enc_layers * H + G4 + 2 * J + 2 * P + J + V) * sizeof(float));
    if (r->buf == NULL) {
        rn_infer_free(r);
        return RN_E_NOMEM;
    }
    float *f = r->buf;
    for (int64_t l = 0; l < c->enc_layers; l++) {
        r->h[l] = f, f += H;
        r->c[l] = f, f += H;
    }
    r->gates = f, f += G4;
    r->e = f, f += J;
    r->ph = f, f += P;
    r->pc = f, f += P;
    r->q = f, f += J;
    r->z = f, f += J;
    r->lg = f;
    *out = r;
    return RN_OK;
}

int64_t rn_infer_weight_bytes(const rn_infer *r)
{
    int64_t bytes = 0;
    for (int k = 0; k < r->m->nparams; k++) {
        const rn_mat *a = &r->mat[k];
        if (!r->m->p[k].prunable)
            continue;
        csp_sparse_info info;
        csp_sparse_info_init(&info, sizeof info);
        if (a->sp != NULL && csp_sparse_inspect(a->sp, &info) == CSP_OK)
            bytes += info.bytes;
        else
            bytes += a->rows * a->cols * (int64_t)sizeof(float);
    }
    return bytes;
}

/* One LSTM step of the layer whose W_ih is parameter k: (h, c) in place
 * from input x; gate order i, f, g, o and the bias sum as rnnt_model.c. */
static int lstm_step(rn_infer *r, int k, const float *x, float *h, float *c)
{
    const rn_param *p = &r->m->p[k];
    const int64_t H = p[1].cols;
    float *g = r->gates;
    if (mv(r, k, x, 0.0f, g) != RN_OK || mv(r, k + 1, h, 1.0f, g) != RN_OK)
        return RN_E_INVALID;
    for (int64_t j = 0; j < H; j++) {
        float i = sigm(g[j] + p[2].data[j] + p[3].data[j]);
        float f = sigm(g[H + j] + p[2].data[H + j] + p[3].data[H + j]);
        float gg = ftanh(g[2 * H + j] + p[2].data[2 * H + j] + p[3].data[2 * H + j]);
        float o = sigm(g[3 * H + j] + p[2].data[3 * H + j] + p[3].data[3 * H + j]);
        c[j] = i * gg + f * c[j];
        h[j] = o * ftanh(c[j]);
    }
    return RN_OK;
}

/* The prediction network after symbol y, and its projection q = W_p h. */
static int pred_step(rn_infer *r, int32_t y)
{
    const rn_model *m = r->m;
    const float *emb = m->p[m->emb].data + (int64_t)y * m->cfg.embed;
    if (lstm_step(r, m->pred, emb, r->ph, r->pc) != RN_OK)
        return RN_E_INVALID;
    return mv(r, m->w_p, r->ph, 0.0f, r->q);
}

int rn_infer_decode(rn_infer *r, const float *x, int64_t T, int max_symbols, int32_t *hyp,
                    int32_t *hyp_len, int64_t cap, rn_infer_trace *trace)
{
    if (r == NULL || x == NULL || T < 0 || max_symbols < 1 || hyp_len == NULL || cap < 0 ||
        (cap > 0 && hyp == NULL))
        return RN_E_INVALID;
    const rn_model *m = r->m;
    const rn_config *cf = &m->cfg;
    const int64_t H = cf->enc_hidden, P = cf->pred_hidden, J = cf->joint, V = cf->vocab;
    if (trace != NULL)
        trace->steps = 0;
    for (int64_t l = 0; l < cf->enc_layers; l++) {
        memset(r->h[l], 0, (size_t)H * sizeof(float));
        memset(r->c[l], 0, (size_t)H * sizeof(float));
    }
    memset(r->ph, 0, (size_t)P * sizeof(float));
    memset(r->pc, 0, (size_t)P * sizeof(float));
    if (pred_step(r, cf->blank) != RN_OK)
        return RN_E_INVALID;
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++) {
        const float *in = x + t * cf->in;
        for (int64_t l = 0; l < cf->enc_layers; l++) {
            if (lstm_step(r, m->enc[l], in, r->h[l], r->c[l]) != RN_OK)
                return RN_E_INVALID;
            in = r->h[l];
        }
        if (mv(r, m->w_e, in, 0.0f, r->e) != RN_OK)
            return RN_E_INVALID;
        for (int64_t j = 0; j < J; j++)
            r->e[j] += m->p[m->b_e].data[j];
        if (trace != NULL && trace->enc != NULL && trace->enc_cap >= T * J)
            memcpy(trace->enc + t * J, r->e, (size_t)J * sizeof(float));
        for (int s = 0; s < max_symbols; s++) {
            for (int64_t j = 0; j < J; j++)
                r->z[j] = ftanh(r->e[j] + r->q[j]);
            memcpy(r->lg, m->p[m->b_o].data, (size_t)V * sizeof(float));
            if (mv(r, m->w_o, r->z, 1.0f, r->lg) != RN_OK)
                return RN_E_INVALID;
            if (trace != NULL) {
                if (trace->logits != NULL && (trace->steps + 1) * V <= trace->logits_cap)
                    memcpy(trace->logits + trace->steps * V, r->lg, (size_t)V * sizeof(float));
                trace->steps++;
            }
            int32_t best = 0;
            for (int32_t v = 1; v < V; v++)
                if (r->lg[v] > r->lg[best])
                    best = v;
            if (best == cf->blank)
                break;
            if (n < cap)
                hyp[n] = best;
            n++;
            if (pred_step(r, best) != RN_OK)
                return RN_E_INVALID;
        }
    }
    *hyp_len = (int32_t)(n < cap ? n : cap);
    return RN_OK;
}
