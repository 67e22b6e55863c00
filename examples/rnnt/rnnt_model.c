/* rnnt_model.c - RNN-T network forward/backward, greedy decoding, Adam; see
 * rnnt_model.h. */
#include "rnnt_model.h"
#include "rnnt_math.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* ---------------------------------------------------------------- memory */

static float *alloc_floats(int64_t n)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = (float *)aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* A grow-only float buffer. */
typedef struct fbuf {
    float *p;
    int64_t cap;
} fbuf;

static float *fbuf_get(fbuf *b, int64_t n)
{
    if (n > b->cap) {
        free(b->p);
        b->p = alloc_floats(n);
        b->cap = b->p ? n : 0;
    }
    return b->p;
}

/* One LSTM layer's activations: gates (i, f, g, o activated), c, tanh(c), h,
 * all time-major T x B rows. */
typedef struct lstm_cache {
    fbuf g, c, tc, h;
} lstm_cache;

struct rn_ws {
    int64_t B, T, U1;
    fbuf xt;                     /* encoder input, time-major T x B x F */
    lstm_cache enc[RN_MAX_LAYERS];
    fbuf emb_in;                 /* prediction input U1 x B x E */
    int32_t *sym;                /* U1 x B input symbols */
    int64_t sym_cap;
    lstm_cache pred;
    fbuf ep, pp;                 /* joint projections T x B x J, U1 x B x J */
    fbuf z, logits;              /* B x T x U1 x J, B x T x U1 x V */
    fbuf dz, dep, dpp, dh, dh2, dg, dx, dhn, dcn, obs;
};

int rn_ws_create(rn_ws **out)
{
    *out = (rn_ws *)calloc(1, sizeof **out);
    return *out ? RN_OK : RN_E_NOMEM;
}

static void cache_free(lstm_cache *c)
{
    free(c->g.p);
    free(c->c.p);
    free(c->tc.p);
    free(c->h.p);
}

void rn_ws_free(rn_ws *ws)
{
    if (!ws)
        return;
    free(ws->xt.p);
    for (int l = 0; l < RN_MAX_LAYERS; l++)
        cache_free(&ws->enc[l]);
    cache_free(&ws->pred);
    free(ws->emb_in.p);
    free(ws->sym);
    fbuf *bufs[] = {&ws->ep, &ws->pp, &ws->z, &ws->logits, &ws->dz, &ws->dep, &ws->dpp,
                    &ws->dh, &ws->dh2, &ws->dg, &ws->dx, &ws->dhn, &ws->dcn, &ws->obs};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]->p);
    free(ws);
}

/* ------------------------------------------------------------ the model */

void rn_config_init(rn_config *c)
{
    memset(c, 0, sizeof *c);
    c->enc_layers = 1;
    c->enc_hidden = 128;
    c->embed = 32;
    c->pred_hidden = 64;
    c->joint = 128;
    c->vocab = 11;
    c->blank = 0;
}

static int add_param(rn_model *m, const char *name, int64_t rows, int64_t cols, int prunable,
                     int kind)
{
    rn_param *p = &m->p[m->nparams];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rows = rows;
    p->cols = cols;
    p->size = rows * cols;
    p->prunable = prunable;
    p->kind = kind;
    p->data = alloc_floats(p->size);
    p->grad = alloc_floats(p->size);
    p->exp_avg = alloc_floats(p->size);
    p->exp_avg_sq = alloc_floats(p->size);
    if (!p->data || !p->grad || !p->exp_avg || !p->exp_avg_sq)
        return -1;
    return m->nparams++;
}

static int add_lstm(rn_model *m, const char *prefix, int64_t in, int64_t h)
{
    char n[40];
    snprintf(n, sizeof n, "%s.weight_ih", prefix);
    int first = add_param(m, n, 4 * h, in, 1, RN_KIND_IH);
    snprintf(n, sizeof n, "%s.weight_hh", prefix);
    int ok = first >= 0 && add_param(m, n, 4 * h, h, 1, RN_KIND_HH) >= 0;
    snprintf(n, sizeof n, "%s.bias_ih", prefix);
    ok = ok && add_param(m, n, 4 * h, 1, 0, RN_KIND_OTHER) >= 0;
    snprintf(n, sizeof n, "%s.bias_hh", prefix);
    ok = ok && add_param(m, n, 4 * h, 1, 0, RN_KIND_OTHER) >= 0;
    return ok ? first : -1;
}

static void fill_uniform(sp_rng *r, rn_param *p, double bound)
{
    for (int64_t i = 0; i < p->size; i++)
        p->data[i] = (float)((2.0 * sp_rng_uniform(r) - 1.0) * bound);
}

static void fill_normal(sp_rng *r, rn_param *p)
{
    for (int64_t i = 0; i < p->size; i++) {
        double u1 = ((double)(sp_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = (double)(sp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
        p->data[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

int rn_model_init(rn_model *m, const rn_config *c, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    if (c->in < 1 || c->enc_layers < 1 || c->enc_layers > RN_MAX_LAYERS || c->enc_hidden < 1 ||
        c->embed < 1 || c->pred_hidden < 1 || c->joint < 1 || c->vocab < 2 || c->blank < 0 ||
        c->blank >= c->vocab)
        return RN_E_INVALID;
    m->cfg = *c;
    int ok = 1;
    for (int64_t l = 0; l < c->enc_layers && ok; l++) {
        char n[24];
        snprintf(n, sizeof n, "enc.l%d", (int)l);
        m->enc[l] = add_lstm(m, n, l ? c->enc_hidden : c->in, c->enc_hidden);
        ok = m->enc[l] >= 0;
    }
    ok = ok && (m->emb = add_param(m, "pred.embed", c->vocab, c->embed, 0, RN_KIND_OTHER)) >= 0;
    ok = ok && (m->pred = add_lstm(m, "pred.lstm", c->embed, c->pred_hidden)) >= 0;
    ok = ok && (m->w_e = add_param(m, "joint.enc.weight", c->joint, c->enc_hidden, 1,
                                   RN_KIND_JOINT)) >= 0;
    ok = ok && (m->b_e = add_param(m, "joint.enc.bias", c->joint, 1, 0, RN_KIND_OTHER)) >= 0;
    ok = ok && (m->w_p = add_param(m, "joint.pred.weight", c->joint, c->pred_hidden, 1,
                                   RN_KIND_JOINT)) >= 0;
    ok = ok && (m->w_o = add_param(m, "joint.out.weight", c->vocab, c->joint, 1,
                                   RN_KIND_JOINT)) >= 0;
    ok = ok && (m->b_o = add_param(m, "joint.out.bias", c->vocab, 1, 0, RN_KIND_OTHER)) >= 0;
    if (!ok) {
        rn_model_free(m);
        return RN_E_NOMEM;
    }
    sp_rng r;
    sp_rng_seed(&r, seed);
    for (int64_t l = 0; l < c->enc_layers; l++)
        for (int k = 0; k < 4; k++)
            fill_uniform(&r, &m->p[m->enc[l] + k], 1.0 / sqrt((double)c->enc_hidden));
    fill_normal(&r, &m->p[m->emb]);
    for (int k = 0; k < 4; k++)
        fill_uniform(&r, &m->p[m->pred + k], 1.0 / sqrt((double)c->pred_hidden));
    fill_uniform(&r, &m->p[m->w_e], 1.0 / sqrt((double)c->enc_hidden));
    fill_uniform(&r, &m->p[m->b_e], 1.0 / sqrt((double)c->enc_hidden));
    fill_uniform(&r, &m->p[m->w_p], 1.0 / sqrt((double)c->pred_hidden));
    fill_uniform(&r, &m->p[m->w_o], 1.0 / sqrt((double)c->joint));
    fill_uniform(&r, &m->p[m->b_o], 1.0 / sqrt((double)c->joint));
    return RN_OK;
}

void rn_model_free(rn_model *m)
{
    for (int k = 0; k < m->nparams; k++) {
        free(m->p[k].data);
        free(m->p[k].grad);
        free(m->p[k].exp_avg);
        free(m->p[k].exp_avg_sq);
    }
    m->nparams = 0;
}

int64_t rn_model_numel(const rn_model *m, int prunable_only)
{
    int64_t n = 0;
    for (int k = 0; k < m->nparams; k++)
        if (!prunable_only || m->p[k].prunable)
            n += m->p[k].size;
    return n;
}

/* ------------------------------------------------------------ LSTM layer */

/* sigm() and ftanh(): rnnt_math.h. */

/* Forward of one LSTM layer over X (T*B x In, time-major), parameters
 * p[0..3] = W_ih, W_hh, b_ih, b_hh. Returns -1 on allocation failure. */
static int lstm_forward(const rn_param *p, const float *X, int64_t T, int64_t B,
                        lstm_cache *c)
{
    const int64_t H = p[1].cols, In = p[0].cols, G4 = 4 * H;
    float *G = fbuf_get(&c->g, T * B * G4), *C = fbuf_get(&c->c, T * B * H);
    float *TC = fbuf_get(&c->tc, T * B * H), *Hs = fbuf_get(&c->h, T * B * H);
    if (!G || !C || !TC || !Hs)
        return -1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(T * B), (int)G4, (int)In, 1.0f,
                X, (int)In, p[0].data, (int)In, 0.0f, G, (int)G4);
    for (int64_t t = 0; t < T; t++) {
        float *g = G + t * B * G4;
        if (t > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)G4, (int)H, 1.0f,
                        Hs + (t - 1) * B * H, (int)H, p[1].data, (int)H, 1.0f, g, (int)G4);
        for (int64_t b = 0; b < B; b++) {
            float *gb = g + b * G4;
            const float *cp = t > 0 ? C + ((t - 1) * B + b) * H : NULL;
            float *cb = C + (t * B + b) * H, *tb = TC + (t * B + b) * H;
            float *hb = Hs + (t * B + b) * H;
            for (int64_t j = 0; j < H; j++) {
                float i = sigm(gb[j] + p[2].data[j] + p[3].data[j]);
                float f = sigm(gb[H + j] + p[2].data[H + j] + p[3].data[H + j]);
                float gg = ftanh(gb[2 * H + j] + p[2].data[2 * H + j] + p[3].data[2 * H + j]);
                float o = sigm(gb[3 * H + j] + p[2].data[3 * H + j] + p[3].data[3 * H + j]);
                float cv = i * gg + (cp ? f * cp[j] : 0.0f);
                gb[j] = i;
                gb[H + j] = f;
                gb[2 * H + j] = gg;
                gb[3 * H + j] = o;
                cb[j] = cv;
                tb[j] = ftanh(cv);
                hb[j] = o * tb[j];
            }
        }
    }
    return 0;
}

/* Backward of one LSTM layer: dHs (T*B x H) is d L / d h from above;
 * accumulates the parameter gradients, writes d L / d X to dX (may be
 * NULL). Returns -1 on allocation failure. */
static int lstm_backward(rn_param *p, const float *X, int64_t T, int64_t B, lstm_cache *c,
                         const float *dHs, float *dX, rn_ws *ws)
{
    const int64_t H = p[1].cols, In = p[0].cols, G4 = 4 * H;
    float *dG = fbuf_get(&ws->dg, T * B * G4), *dhn = fbuf_get(&ws->dhn, B * H);
    float *dcn = fbuf_get(&ws->dcn, B * H);
    if (!dG || !dhn || !dcn)
        return -1;
    memset(dhn, 0, (size_t)(B * H) * sizeof *dhn);
    memset(dcn, 0, (size_t)(B * H) * sizeof *dcn);
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t b = 0; b < B; b++) {
            const int64_t r = t * B + b;
            const float *g = c->g.p + r * G4, *tc = c->tc.p + r * H;
            const float *cp = t > 0 ? c->c.p + (r - B) * H : NULL;
            const float *dh_in = dHs + r * H;
            float *dg = dG + r * G4, *dhb = dhn + b * H, *dcb = dcn + b * H;
            for (int64_t j = 0; j < H; j++) {
                const float i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
                const float dh = dh_in[j] + dhb[j];
                const float dc = dh * o * (1.0f - tc[j] * tc[j]) + dcb[j];
                const float cprev = cp ? cp[j] : 0.0f;
                dg[j] = dc * gg * i * (1.0f - i);
                dg[H + j] = dc * cprev * f * (1.0f - f);
                dg[2 * H + j] = dc * i * (1.0f - gg * gg);
                dg[3 * H + j] = dh * tc[j] * o * (1.0f - o);
                dcb[j] = dc * f;
            }
        }
        if (t > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H, (int)G4,
                        1.0f, dG + t * B * G4, (int)G4, p[1].data, (int)H, 0.0f, dhn, (int)H);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G4, (int)In, (int)(T * B), 1.0f,
                dG, (int)G4, X, (int)In, 1.0f, p[0].grad, (int)In);
    if (T > 1)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G4, (int)H, (int)((T - 1) * B),
                    1.0f, dG + B * G4, (int)G4, c->h.p, (int)H, 1.0f, p[1].grad, (int)H);
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < G4; j++)
            p[2].grad[j] += dG[r * G4 + j];
    memcpy(p[3].grad, p[2].grad, (size_t)G4 * sizeof(float)); /* zeroed before, equal */
    if (dX)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(T * B), (int)In, (int)G4,
                    1.0f, dG, (int)G4, p[0].data, (int)In, 0.0f, dX, (int)In);
    return 0;
}

/* --------------------------------------------------------- observation */

/* The rows of X (T x B x cols, time-major) with t < len[b] (shift = 1: the
 * row of t - 1, zero at t = 0), gathered into ws->obs and observed. */
static void observe_rows(rn_observe_fn fn, void *user, int index, const float *X, int64_t T,
                         int64_t B, int64_t cols, const int32_t *len, int add, int shift,
                         rn_ws *ws)
{
    int64_t rows = 0;
    for (int64_t b = 0; b < B; b++)
        rows += (len[b] + add < T ? len[b] + add : T);
    float *o = fbuf_get(&ws->obs, rows * cols);
    if (!o || rows == 0)
        return;
    int64_t k = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            if (t >= len[b] + add)
                continue;
            float *dst = o + (k++) * cols;
            if (shift && t == 0)
                memset(dst, 0, (size_t)cols * sizeof *dst);
            else
                memcpy(dst, X + ((t - shift) * B + b) * cols, (size_t)cols * sizeof *dst);
        }
    fn(user, index, o, rows, cols);
}

/* ------------------------------------------------------------- forward */

static int check_input(const rn_model *m, const rn_input *in)
{
    if (!m || !in || in->B < 1 || in->T < 1 || in->U < 0 || in->F != m->cfg.in || !in->x ||
        !in->t_len || !in->u_len || (in->U > 0 && !in->labels))
        return RN_E_INVALID;
    for (int64_t b = 0; b < in->B; b++) {
        if (in->t_len[b] < 1 || in->t_len[b] > in->T || in->u_len[b] < 0 ||
            in->u_len[b] > in->U)
            return RN_E_INVALID;
        for (int64_t u = 0; u < in->u_len[b]; u++) {
            int32_t y = in->labels[b * in->U + u];
            if (y < 0 || y >= m->cfg.vocab || y == m->cfg.blank)
                return RN_E_INVALID;
        }
    }
    return RN_OK;
}

/* Encoder stack and the encoder projection; observes when fn != NULL. */
static int encoder_forward(const rn_model *m, const rn_input *in, rn_ws *ws, rn_observe_fn fn,
                           void *user)
{
    const int64_t B = in->B, T = in->T, F = in->F, J = m->cfg.joint;
    float *xt = fbuf_get(&ws->xt, T * B * F);
    float *ep = fbuf_get(&ws->ep, T * B * J);
    if (!xt || !ep)
        return RN_E_NOMEM;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            memcpy(xt + (t * B + b) * F, in->x + (b * T + t) * F, (size_t)F * sizeof *xt);
    const float *X = xt;
    for (int64_t l = 0; l < m->cfg.enc_layers; l++) {
        const rn_param *p = &m->p[m->enc[l]];
        if (lstm_forward(p, X, T, B, &ws->enc[l]) != 0)
            return RN_E_NOMEM;
        if (fn) {
            observe_rows(fn, user, m->enc[l], X, T, B, p[0].cols, in->t_len, 0, 0, ws);
            observe_rows(fn, user, m->enc[l] + 1, ws->enc[l].h.p, T, B, p[1].cols, in->t_len,
                         0, 1, ws);
        }
        X = ws->enc[l].h.p;
    }
    const int64_t He = m->cfg.enc_hidden;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(T * B), (int)J, (int)He, 1.0f, X,
                (int)He, m->p[m->w_e].data, (int)He, 0.0f, ep, (int)J);
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < J; j++)
            ep[r * J + j] += m->p[m->b_e].data[j];
    if (fn)
        observe_rows(fn, user, m->w_e, X, T, B, He, in->t_len, 0, 0, ws);
    return RN_OK;
}

/* Prediction network over blank, y_1 .. y_U and its projection. */
static int predictor_forward(const rn_model *m, const rn_input *in, rn_ws *ws,
                             rn_observe_fn fn, void *user)
{
    const int64_t B = in->B, U1 = in->U + 1, E = m->cfg.embed, J = m->cfg.joint;
    const int64_t P = m->cfg.pred_hidden;
    if (U1 * B > ws->sym_cap) {
        free(ws->sym);
        ws->sym = (int32_t *)malloc((size_t)(U1 * B) * sizeof *ws->sym);
        ws->sym_cap = ws->sym ? U1 * B : 0;
    }
    float *xe = fbuf_get(&ws->emb_in, U1 * B * E), *pp = fbuf_get(&ws->pp, U1 * B * J);
    if (!ws->sym || !xe || !pp)
        return RN_E_NOMEM;
    for (int64_t u = 0; u < U1; u++)
        for (int64_t b = 0; b < B; b++) {
            int32_t y = m->cfg.blank;
            if (u > 0 && u - 1 < in->u_len[b])
                y = in->labels[b * in->U + u - 1];
            ws->sym[u * B + b] = y;
            memcpy(xe + (u * B + b) * E, m->p[m->emb].data + y * E, (size_t)E * sizeof *xe);
        }
    const rn_param *p = &m->p[m->pred];
    if (lstm_forward(p, xe, U1, B, &ws->pred) != 0)
        return RN_E_NOMEM;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(U1 * B), (int)J, (int)P, 1.0f,
                ws->pred.h.p, (int)P, m->p[m->w_p].data, (int)P, 0.0f, pp, (int)J);
    if (fn) {
        observe_rows(fn, user, m->pred, xe, U1, B, E, in->u_len, 1, 0, ws);
        observe_rows(fn, user, m->pred + 1, ws->pred.h.p, U1, B, P, in->u_len, 1, 1, ws);
        observe_rows(fn, user, m->w_p, ws->pred.h.p, U1, B, P, in->u_len, 1, 0, ws);
    }
    return RN_OK;
}

/* z of the valid cells, gathered and observed (the input of W_o). */
static void observe_joint(const rn_model *m, const rn_input *in, rn_ws *ws, rn_observe_fn fn,
                          void *user)
{
    const int64_t T = in->T, U1 = in->U + 1, J = m->cfg.joint;
    int64_t rows = 0;
    for (int64_t b = 0; b < in->B; b++)
        rows += (int64_t)in->t_len[b] * (in->u_len[b] + 1);
    float *o = fbuf_get(&ws->obs, rows * J);
    if (!o)
        return;
    int64_t k = 0;
    for (int64_t b = 0; b < in->B; b++)
        for (int64_t t = 0; t < in->t_len[b]; t++)
            for (int64_t u = 0; u <= in->u_len[b]; u++)
                memcpy(o + (k++) * J, ws->z.p + ((b * T + t) * U1 + u) * J,
                       (size_t)J * sizeof *o);
    fn(user, m->w_o, o, rows, J);
}

int rn_forward(const rn_model *m, const rn_input *in, rn_ws *ws, rn_observe_fn observe,
               void *user, const float **logits)
{
    int st = check_input(m, in);
    if (st != RN_OK || !ws)
        return st != RN_OK ? st : RN_E_INVALID;
    const int64_t B = in->B, T = in->T, U1 = in->U + 1, J = m->cfg.joint, V = m->cfg.vocab;
    ws->B = B;
    ws->T = T;
    ws->U1 = U1;
    if ((st = encoder_forward(m, in, ws, observe, user)) != RN_OK ||
        (st = predictor_forward(m, in, ws, observe, user)) != RN_OK)
        return st;
    float *z = fbuf_get(&ws->z, B * T * U1 * J), *lg = fbuf_get(&ws->logits, B * T * U1 * V);
    if (!z || !lg)
        return RN_E_NOMEM;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *e = ws->ep.p + (t * B + b) * J;
            for (int64_t u = 0; u < U1; u++) {
                const float *q = ws->pp.p + (u * B + b) * J;
                float *zz = z + ((b * T + t) * U1 + u) * J;
                for (int64_t j = 0; j < J; j++)
                    zz[j] = ftanh(e[j] + q[j]);
            }
        }
    const int64_t R = B * T * U1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)V, (int)J, 1.0f, z, (int)J,
                m->p[m->w_o].data, (int)J, 0.0f, lg, (int)V);
    for (int64_t r = 0; r < R; r++)
        for (int64_t v = 0; v < V; v++)
            lg[r * V + v] += m->p[m->b_o].data[v];
    if (observe)
        observe_joint(m, in, ws, observe, user);
    *logits = lg;
    return RN_OK;
}

int rn_encode(const rn_model *m, const rn_input *in, rn_ws *ws, const float **proj)
{
    if (!m || !in || !ws || in->B < 1 || in->T < 1 || in->F != m->cfg.in || !in->x)
        return RN_E_INVALID;
    int st = encoder_forward(m, in, ws, NULL, NULL);
    if (st == RN_OK)
        *proj = ws->ep.p;
    return st;
}

/* ------------------------------------------------------------ backward */

/* Joint backward: d z -> d ep, d pp (into ws->dep, ws->dpp). */
static int joint_backward(rn_model *m, rn_ws *ws, const float *dlogits)
{
    const int64_t B = ws->B, T = ws->T, U1 = ws->U1, J = m->cfg.joint, V = m->cfg.vocab;
    const int64_t R = B * T * U1;
    float *dz = fbuf_get(&ws->dz, R * J), *dep = fbuf_get(&ws->dep, T * B * J);
    float *dpp = fbuf_get(&ws->dpp, U1 * B * J);
    if (!dz || !dep || !dpp)
        return RN_E_NOMEM;
    rn_param *wo = &m->p[m->w_o];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)J, (int)R, 1.0f, dlogits,
                (int)V, ws->z.p, (int)J, 0.0f, wo->grad, (int)J);
    float *gbo = m->p[m->b_o].grad;
    for (int64_t r = 0; r < R; r++)
        for (int64_t v = 0; v < V; v++)
            gbo[v] += dlogits[r * V + v];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)J, (int)V, 1.0f, dlogits,
                (int)V, wo->data, (int)J, 0.0f, dz, (int)J);
    memset(dep, 0, (size_t)(T * B * J) * sizeof *dep);
    memset(dpp, 0, (size_t)(U1 * B * J) * sizeof *dpp);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            float *de = dep + (t * B + b) * J;
            for (int64_t u = 0; u < U1; u++) {
                const int64_t r = (b * T + t) * U1 + u;
                const float *zz = ws->z.p + r * J;
                float *d = dz + r * J, *dq = dpp + (u * B + b) * J;
                for (int64_t j = 0; j < J; j++) {
                    const float a = d[j] * (1.0f - zz[j] * zz[j]);
                    de[j] += a;
                    dq[j] += a;
                }
            }
        }
    return RN_OK;
}

int rn_backward(rn_model *m, const rn_input *in, rn_ws *ws, const float *dlogits)
{
    if (!m || !in || !ws || !dlogits || ws->B != in->B || ws->T != in->T || ws->U1 != in->U + 1)
        return RN_E_INVALID;
    for (int k = 0; k < m->nparams; k++)
        memset(m->p[k].grad, 0, (size_t)m->p[k].size * sizeof(float));
    const int64_t B = in->B, T = in->T, U1 = in->U + 1, J = m->cfg.joint;
    const int64_t He = m->cfg.enc_hidden, P = m->cfg.pred_hidden, E = m->cfg.embed;
    int st = joint_backward(m, ws, dlogits);
    if (st != RN_OK)
        return st;
    const int64_t L = m->cfg.enc_layers;
    const float *Htop = ws->enc[L - 1].h.p;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)J, (int)He, (int)(T * B), 1.0f,
                ws->dep.p, (int)J, Htop, (int)He, 0.0f, m->p[m->w_e].grad, (int)He);
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < J; j++)
            m->p[m->b_e].grad[j] += ws->dep.p[r * J + j];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)J, (int)P, (int)(U1 * B), 1.0f,
                ws->dpp.p, (int)J, ws->pred.h.p, (int)P, 0.0f, m->p[m->w_p].grad, (int)P);
    /* prediction network */
    float *dh = fbuf_get(&ws->dh, (U1 * B * P > T * B * He ? U1 * B * P : T * B * He));
    float *dx = fbuf_get(&ws->dx, (U1 * B * E > T * B * He ? U1 * B * E : T * B * He));
    float *dh2 = fbuf_get(&ws->dh2, T * B * He);
    if (!dh || !dx || !dh2)
        return RN_E_NOMEM;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(U1 * B), (int)P, (int)J, 1.0f,
                ws->dpp.p, (int)J, m->p[m->w_p].data, (int)P, 0.0f, dh, (int)P);
    if (lstm_backward(&m->p[m->pred], ws->emb_in.p, U1, B, &ws->pred, dh, dx, ws) != 0)
        return RN_E_NOMEM;
    float *ge = m->p[m->emb].grad;
    for (int64_t r = 0; r < U1 * B; r++)
        for (int64_t j = 0; j < E; j++)
            ge[(int64_t)ws->sym[r] * E + j] += dx[r * E + j];
    /* encoder, top layer down */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(T * B), (int)He, (int)J, 1.0f,
                ws->dep.p, (int)J, m->p[m->w_e].data, (int)He, 0.0f, dh, (int)He);
    for (int64_t l = L - 1; l >= 0; l--) {
        const float *X = l > 0 ? ws->enc[l - 1].h.p : ws->xt.p;
        float *dX = l > 0 ? dh2 : NULL;
        if (lstm_backward(&m->p[m->enc[l]], X, T, B, &ws->enc[l], dh, dX, ws) != 0)
            return RN_E_NOMEM;
        if (l > 0)
            memcpy(dh, dh2, (size_t)(T * B * He) * sizeof *dh);
    }
    return RN_OK;
}

/* ------------------------------------------------------------ decoding */

/* One step of the prediction LSTM for symbol y from (h, c) in place; the
 * projection W_p h into q. gates: 4P scratch. */
static void pred_step(const rn_model *m, int32_t y, float *h, float *c, float *gates, float *q)
{
    const rn_param *p = &m->p[m->pred];
    const int64_t P = m->cfg.pred_hidden, E = m->cfg.embed, J = m->cfg.joint;
    for (int64_t j = 0; j < 4 * P; j++)
        gates[j] = p[2].data[j] + p[3].data[j];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(4 * P), (int)E, 1.0f, p[0].data, (int)E,
                m->p[m->emb].data + (int64_t)y * E, 1, 1.0f, gates, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(4 * P), (int)P, 1.0f, p[1].data, (int)P, h,
                1, 1.0f, gates, 1);
    for (int64_t j = 0; j < P; j++) {
        float i = sigm(gates[j]), f = sigm(gates[P + j]), g = ftanh(gates[2 * P + j]);
        float o = sigm(gates[3 * P + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * ftanh(c[j]);
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)J, (int)P, 1.0f, m->p[m->w_p].data, (int)P, h,
                1, 0.0f, q, 1);
}

int rn_greedy(const rn_model *m, const rn_input *in, rn_ws *ws, int max_symbols, int32_t *hyp,
              int32_t *hyp_len, int64_t cap)
{
    const float *ep = NULL;
    if (!hyp || !hyp_len || cap < 0 || max_symbols < 1)
        return RN_E_INVALID;
    int st = rn_encode(m, in, ws, &ep);
    if (st != RN_OK)
        return st;
    const int64_t B = in->B, P = m->cfg.pred_hidden, J = m->cfg.joint, V = m->cfg.vocab;
    float *tmp = (float *)malloc((size_t)(2 * P + 4 * P + 2 * J + V) * sizeof(float));
    if (!tmp)
        return RN_E_NOMEM;
    float *h = tmp, *c = h + P, *gates = c + P, *q = gates + 4 * P, *z = q + J, *lg = z + J;
    for (int64_t b = 0; b < B; b++) {
        memset(h, 0, (size_t)(2 * P) * sizeof *h);
        pred_step(m, m->cfg.blank, h, c, gates, q);
        int32_t n = 0;
        for (int64_t t = 0; t < in->t_len[b]; t++) {
            const float *e = ep + (t * B + b) * J;
            for (int s = 0; s < max_symbols; s++) {
                for (int64_t j = 0; j < J; j++)
                    z[j] = ftanh(e[j] + q[j]);
                memcpy(lg, m->p[m->b_o].data, (size_t)V * sizeof *lg);
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)V, (int)J, 1.0f,
                            m->p[m->w_o].data, (int)J, z, 1, 1.0f, lg, 1);
                int32_t best = 0;
                for (int32_t v = 1; v < V; v++)
                    if (lg[v] > lg[best])
                        best = v;
                if (best == m->cfg.blank)
                    break;
                if (n < cap)
                    hyp[b * cap + n] = best;
                n++;
                pred_step(m, best, h, c, gates, q);
            }
        }
        hyp_len[b] = n < cap ? n : (int32_t)cap;
    }
    free(tmp);
    return RN_OK;
}

/* ---------------------------------------------------------------- Adam */

double rn_grad_norm(const rn_model *m)
{
    double s = 0.0;
    for (int k = 0; k < m->nparams; k++)
        for (int64_t j = 0; j < m->p[k].size; j++)
            s += (double)m->p[k].grad[j] * m->p[k].grad[j];
    return sqrt(s);
}

double rn_adam_step(rn_model *m, double lr, double clip)
{
    const double norm = rn_grad_norm(m);
    const float scale = (clip > 0.0 && clip / (norm + 1e-6) < 1.0)
                            ? (float)(clip / (norm + 1e-6)) : 1.0f;
    m->adam_step++;
    const double t = (double)m->adam_step;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float step_size = (float)(lr / (1.0 - pow(0.9, t)));
    const float inv_bc2 = (float)(1.0 / sqrt(1.0 - pow(0.999, t)));
    for (int k = 0; k < m->nparams; k++) {
        rn_param *p = &m->p[k];
        for (int64_t j = 0; j < p->size; j++) {
            const float g = p->grad[j] * scale;
            p->exp_avg[j] += (1.0f - b1) * (g - p->exp_avg[j]);
            p->exp_avg_sq[j] = b2 * p->exp_avg_sq[j] + (1.0f - b2) * g * g;
            p->data[j] -= step_size * p->exp_avg[j] / (sqrtf(p->exp_avg_sq[j]) * inv_bc2 + eps);
        }
    }
    return norm;
}
