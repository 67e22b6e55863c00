/* lstm.c - LSTM classifier forward/backward and Adam, see lstm.h. */
#include "lstm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* ---------------------------------------------------------------- memory */

static float *alloc_floats(int64_t n)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc needs a multiple */
    float *p = (float *)aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* ----------------------------------------------------- fast activations */
/* Branch-free float sigmoid and tanh (relative error ~2e-7 over the whole
 * range, measured against double; NaN input saturates). Only integer
 * compares and selects are used, so that compilers vectorise the cell loops
 * (gcc needs -O3; float compares would block if-conversion under the
 * default -ftrapping-math) and no rounding-mode trick breaks -ffast-math. */
static inline float f_from(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* |x| clamped to [0, 87] (NaN and inf -> 87), with integer operations. */
static inline float abs_clamp87(float x)
{
    int32_t u = (int32_t)(f_bits(x) & 0x7FFFFFFFu);
    u = u < 0x42AE0000 ? u : 0x42AE0000; /* 87.0f */
    return f_from((uint32_t)u);
}

/* For a in [0, 87]: returns exp(-a) - 1 (relative-accurate near 0) and
 * stores exp(-a) in *e. Cephes-style: -a = n ln2 + r, |r| <= ln2/2,
 * exp(r) - 1 = r + r^2 p(r). */
static inline float expm1_neg(float a, float *e)
{
    float y = -a;
    int32_t ni = (int32_t)(y * 1.44269504088896341f - 0.5f); /* round, y <= 0 */
    float n = (float)ni;
    float r = y - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float em = p * r * r + r;
    float scale = f_from((uint32_t)(ni + 127) << 23); /* 2^n, n >= -126 */
    *e = scale + scale * em;
    return (scale - 1.0f) + scale * em;
}

static inline float fast_sigmoid(float x)
{
    float e;
    (void)expm1_neg(abs_clamp87(x), &e); /* e = exp(-|x|) */
    float sp = 1.0f / (1.0f + e), sn = e * sp;
    uint32_t neg = 0u - (f_bits(x) >> 31); /* all ones when x < 0 */
    return f_from((f_bits(sp) & ~neg) | (f_bits(sn) & neg));
}

static inline float fast_tanh(float x)
{
    float e;
    float m = expm1_neg(abs_clamp87(2.0f * x), &e); /* exp(-2|x|) - 1 */
    float th = -m / (2.0f + m);
    return f_from(f_bits(th) | (f_bits(x) & 0x80000000u));
}

/* ----------------------------------------------------------------- model */

static const char *const param_names[SP_NPARAMS] = {
    "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",   "fc.weight",         "fc.bias"};

void sp_model_free(sp_model *m)
{
    if (!m)
        return;
    for (int k = 0; k < SP_NPARAMS; k++) {
        free(m->p[k].data);
        free(m->p[k].grad);
        free(m->p[k].exp_avg);
        free(m->p[k].exp_avg_sq);
    }
    memset(m, 0, sizeof *m);
}

int sp_model_init(sp_model *m, int64_t in, int64_t hidden, int64_t classes,
                  uint64_t seed)
{
    if (!m)
        return SP_LSTM_E_INVALID;
    memset(m, 0, sizeof *m);
    if (in < 1 || hidden < 1 || classes < 2)
        return SP_LSTM_E_INVALID;
    m->in = in;
    m->hidden = hidden;
    m->classes = classes;
    const int64_t G = 4 * hidden;
    const int64_t rows[SP_NPARAMS] = {G, G, G, G, classes, classes};
    const int64_t cols[SP_NPARAMS] = {in, hidden, 1, 1, hidden, 1};
    sp_rng rng;
    sp_rng_seed(&rng, seed);
    const float k = 1.0f / sqrtf((float)hidden);
    for (int i = 0; i < SP_NPARAMS; i++) {
        sp_param *p = &m->p[i];
        p->name = param_names[i];
        p->rows = rows[i];
        p->cols = cols[i];
        p->size = rows[i] * cols[i];
        p->prunable = (i == SP_P_W_IH || i == SP_P_W_HH || i == SP_P_W_OUT);
        p->data = alloc_floats(p->size);
        p->grad = alloc_floats(p->size);
        p->exp_avg = alloc_floats(p->size);
        p->exp_avg_sq = alloc_floats(p->size);
        if (!p->data || !p->grad || !p->exp_avg || !p->exp_avg_sq) {
            sp_model_free(m);
            return SP_LSTM_E_NOMEM;
        }
        for (int64_t j = 0; j < p->size; j++)
            p->data[j] = k * (2.0f * sp_rng_uniform(&rng) - 1.0f);
    }
    return SP_LSTM_OK;
}

void sp_adam_options_init(sp_adam_options *o)
{
    o->lr = 1e-3f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->clip = 5.0f;
}

double sp_model_grad_norm(const sp_model *m)
{
    double s = 0.0;
    for (int k = 0; k < SP_NPARAMS; k++) {
        const float *g = m->p[k].grad;
        for (int64_t j = 0; j < m->p[k].size; j++)
            s += (double)g[j] * g[j];
    }
    return sqrt(s);
}

double sp_model_adam_step(sp_model *m, const sp_adam_options *o)
{
    double norm = sp_model_grad_norm(m);
    if (o->clip > 0.0f) {
        double coef = (double)o->clip / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
            for (int k = 0; k < SP_NPARAMS; k++)
                for (int64_t j = 0; j < m->p[k].size; j++)
                    m->p[k].grad[j] *= c;
        }
    }
    m->adam_step++;
    const double t = (double)m->adam_step;
    const float b1 = o->beta1, b2 = o->beta2;
    const float step_size = (float)(o->lr / (1.0 - pow(o->beta1, t)));
    const float inv_bc2_sqrt = (float)(1.0 / sqrt(1.0 - pow(o->beta2, t)));
    for (int k = 0; k < SP_NPARAMS; k++) {
        sp_param *p = &m->p[k];
        float *restrict w = p->data, *restrict ea = p->exp_avg,
                        *restrict eq = p->exp_avg_sq;
        const float *restrict g = p->grad;
        for (int64_t j = 0; j < p->size; j++) {
            float gj = g[j];
            ea[j] += (1.0f - b1) * (gj - ea[j]);
            eq[j] = b2 * eq[j] + (1.0f - b2) * gj * gj;
            float denom = sqrtf(eq[j]) * inv_bc2_sqrt + o->eps;
            w[j] -= step_size * ea[j] / denom;
        }
    }
    return norm;
}

/* ----------------------------------------------------------------- batch */

void sp_batch_buf_free(sp_batch_buf *bb)
{
    if (!bb)
        return;
    free(bb->len);
    free(bb->bt);
    free(bb->off);
    free(bb->ids);
    free(bb->labels);
    free(bb->x);
    memset(bb, 0, sizeof *bb);
}

static int grow_i64(int64_t **p, int64_t n)
{
    int64_t *q = (int64_t *)realloc(*p, (size_t)(n > 0 ? n : 1) * sizeof *q);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

int sp_batch_pack(sp_batch_buf *bb, int64_t n, const int64_t *ids,
                  const float *const *feats, const int64_t *frames,
                  const int32_t *labels, int64_t in)
{
    if (!bb || n < 1 || !ids || !feats || !frames || !labels || in < 1)
        return SP_LSTM_E_INVALID;
    if (n > bb->cap_b) {
        int32_t *l = (int32_t *)realloc(bb->labels, (size_t)n * sizeof *l);
        if (!l)
            return SP_LSTM_E_NOMEM;
        bb->labels = l;
        if (grow_i64(&bb->len, n) || grow_i64(&bb->ids, n))
            return SP_LSTM_E_NOMEM;
        bb->cap_b = n;
    }
    /* Insertion sort by length, longest first; stable. */
    int64_t rows = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t id = ids[i], L = frames[id], j = i;
        if (L < 1)
            return SP_LSTM_E_INVALID;
        while (j > 0 && bb->len[j - 1] < L) {
            bb->len[j] = bb->len[j - 1];
            bb->ids[j] = bb->ids[j - 1];
            j--;
        }
        bb->len[j] = L;
        bb->ids[j] = id;
        rows += L;
    }
    int64_t T = bb->len[0];
    if (T + 1 > bb->cap_t) {
        if (grow_i64(&bb->bt, T + 1) || grow_i64(&bb->off, T + 1))
            return SP_LSTM_E_NOMEM;
        bb->cap_t = T + 1;
    }
    if (rows > bb->cap_rows) {
        float *x = (float *)realloc(bb->x, (size_t)rows * (size_t)in * sizeof *x);
        if (!x)
            return SP_LSTM_E_NOMEM;
        bb->x = x;
        bb->cap_rows = rows;
    }
    int64_t active = n;
    bb->off[0] = 0;
    for (int64_t t = 0; t < T; t++) {
        while (bb->len[active - 1] <= t)
            active--;
        bb->bt[t] = active;
        bb->off[t + 1] = bb->off[t] + active;
        for (int64_t r = 0; r < active; r++)
            memcpy(bb->x + (bb->off[t] + r) * in, feats[bb->ids[r]] + t * in,
                   (size_t)in * sizeof(float));
    }
    for (int64_t r = 0; r < n; r++)
        bb->labels[r] = labels[bb->ids[r]];
    bb->b.B = n;
    bb->b.T = T;
    bb->b.in = in;
    bb->b.len = bb->len;
    bb->b.bt = bb->bt;
    bb->b.off = bb->off;
    bb->b.x = bb->x;
    bb->b.labels = bb->labels;
    bb->b.ids = bb->ids;
    return SP_LSTM_OK;
}

/* ------------------------------------------------------------- workspace */

struct sp_lstm_ws {
    int64_t H, C, cap_b, cap_rows;
    float *gates; /* rows x 4H: pre-activations, then activations (i,f,g,o),
                     then (backward) gradients w.r.t. pre-activations */
    float *cs;    /* rows x H: c_t */
    float *tch;   /* rows x H: tanh(c_t) */
    float *hprev; /* rows x H: h_{t-1} for each row (zero at t = 0) */
    float *pool, *dpool, *dc, *dhrec; /* cap_b x H */
    float *logits, *probs;             /* cap_b x C */
    float *zeros, *scratch, *bsum;     /* H, H, 4H */
};

void sp_lstm_ws_free(sp_lstm_ws *ws)
{
    if (!ws)
        return;
    free(ws->gates);
    free(ws->cs);
    free(ws->tch);
    free(ws->hprev);
    free(ws->pool);
    free(ws->dpool);
    free(ws->dc);
    free(ws->dhrec);
    free(ws->logits);
    free(ws->probs);
    free(ws->zeros);
    free(ws->scratch);
    free(ws->bsum);
    free(ws);
}

int sp_lstm_ws_create(sp_lstm_ws **out, const sp_model *m)
{
    if (!out || !m)
        return SP_LSTM_E_INVALID;
    *out = NULL;
    sp_lstm_ws *ws = (sp_lstm_ws *)calloc(1, sizeof *ws);
    if (!ws)
        return SP_LSTM_E_NOMEM;
    ws->H = m->hidden;
    ws->C = m->classes;
    ws->zeros = alloc_floats(ws->H);
    ws->scratch = alloc_floats(ws->H);
    ws->bsum = alloc_floats(4 * ws->H);
    if (!ws->zeros || !ws->scratch || !ws->bsum) {
        sp_lstm_ws_free(ws);
        return SP_LSTM_E_NOMEM;
    }
    *out = ws;
    return SP_LSTM_OK;
}

static int ws_reserve(sp_lstm_ws *ws, int64_t B, int64_t rows)
{
    const int64_t H = ws->H, C = ws->C;
    if (rows > ws->cap_rows) {
        int64_t cap = rows + rows / 2;
        free(ws->gates);
        free(ws->cs);
        free(ws->tch);
        free(ws->hprev);
        ws->gates = alloc_floats(cap * 4 * H);
        ws->cs = alloc_floats(cap * H);
        ws->tch = alloc_floats(cap * H);
        ws->hprev = alloc_floats(cap * H);
        ws->cap_rows = cap;
        if (!ws->gates || !ws->cs || !ws->tch || !ws->hprev) {
            ws->cap_rows = 0;
            return SP_LSTM_E_NOMEM;
        }
    }
    if (B > ws->cap_b) {
        free(ws->pool);
        free(ws->dpool);
        free(ws->dc);
        free(ws->dhrec);
        free(ws->logits);
        free(ws->probs);
        ws->pool = alloc_floats(B * H);
        ws->dpool = alloc_floats(B * H);
        ws->dc = alloc_floats(B * H);
        ws->dhrec = alloc_floats(B * H);
        ws->logits = alloc_floats(B * C);
        ws->probs = alloc_floats(B * C);
        ws->cap_b = B;
        if (!ws->pool || !ws->dpool || !ws->dc || !ws->dhrec || !ws->logits ||
            !ws->probs) {
            ws->cap_b = 0;
            return SP_LSTM_E_NOMEM;
        }
    }
    return SP_LSTM_OK;
}

const float *sp_lstm_logits(const sp_lstm_ws *ws) { return ws->logits; }

/* ------------------------------------------------------------ recurrence */

/* Loops over the hidden units run in blocks of SP_VBLOCK with a fixed trip
 * count, which gcc vectorises even at -O2 (its "very cheap" cost model
 * refuses loops that need an epilogue), then a scalar tail. */
#define SP_VBLOCK 16

/* Forward of unit j of one cell row: gi, gf, gg, go are the four gate
 * blocks (i, f, g, o) of the row's pre-activations and get the
 * activations; cp = c_{t-1}; writes c_t and tanh(c_t); returns h_t. */
static inline float cell_forward_unit(int64_t j, float *restrict gi,
                                      float *restrict gf, float *restrict gg,
                                      float *restrict go,
                                      const float *restrict cp,
                                      float *restrict c, float *restrict tc)
{
    float i_ = fast_sigmoid(gi[j]);
    float f_ = fast_sigmoid(gf[j]);
    float g_ = fast_tanh(gg[j]);
    float o_ = fast_sigmoid(go[j]);
    float c_ = f_ * cp[j] + i_ * g_;
    float t_ = fast_tanh(c_);
    gi[j] = i_;
    gf[j] = f_;
    gg[j] = g_;
    go[j] = o_;
    c[j] = c_;
    tc[j] = t_;
    return o_ * t_;
}

/* One cell row: adds h_t to the pool row and stores it in hout. */
static void cell_forward(int64_t H, float *restrict gi, float *restrict gf,
                         float *restrict gg, float *restrict go,
                         const float *restrict cp, float *restrict c,
                         float *restrict tc, float *restrict pool,
                         float *restrict hout)
{
    int64_t j = 0;
    /* Blocks go through local arrays, which alias nothing: this keeps the
     * loops vectorisable after inlining, where gcc loses `restrict`. */
    for (; j + SP_VBLOCK <= H; j += SP_VBLOCK) {
        float bi[SP_VBLOCK], bf[SP_VBLOCK], bg[SP_VBLOCK], bo[SP_VBLOCK];
        float bp[SP_VBLOCK], bc[SP_VBLOCK], bt[SP_VBLOCK], bh[SP_VBLOCK];
        for (int k = 0; k < SP_VBLOCK; k++) {
            bi[k] = gi[j + k];
            bf[k] = gf[j + k];
            bg[k] = gg[j + k];
            bo[k] = go[j + k];
            bp[k] = cp[j + k];
        }
        for (int k = 0; k < SP_VBLOCK; k++)
            bh[k] = cell_forward_unit(k, bi, bf, bg, bo, bp, bc, bt);
        for (int k = 0; k < SP_VBLOCK; k++) {
            gi[j + k] = bi[k];
            gf[j + k] = bf[k];
            gg[j + k] = bg[k];
            go[j + k] = bo[k];
            c[j + k] = bc[k];
            tc[j + k] = bt[k];
            pool[j + k] += bh[k];
            hout[j + k] = bh[k];
        }
    }
    for (; j < H; j++) {
        float h = cell_forward_unit(j, gi, gf, gg, go, cp, c, tc);
        pool[j] += h;
        hout[j] = h;
    }
}

/* Backward of unit j of one cell row: the gate blocks hold the activations
 * and get the gradients w.r.t. the pre-activations; dc is the carried
 * dL/dc_t on entry and dL/dc_{t-1} on exit; dh = dps + dhr. */
static inline void cell_backward_unit(int64_t j, float *restrict gi,
                                      float *restrict gf, float *restrict gg,
                                      float *restrict go,
                                      const float *restrict cp,
                                      const float *restrict tc,
                                      const float *restrict dps,
                                      const float *restrict dhr,
                                      float *restrict dc)
{
    float i_ = gi[j], f_ = gf[j], g_ = gg[j], o_ = go[j];
    float t_ = tc[j];
    float dh = dps[j] + dhr[j];
    float dcj = dc[j] + dh * o_ * (1.0f - t_ * t_);
    dc[j] = dcj * f_;
    gi[j] = dcj * g_ * i_ * (1.0f - i_);
    gf[j] = dcj * cp[j] * f_ * (1.0f - f_);
    gg[j] = dcj * i_ * (1.0f - g_ * g_);
    go[j] = dh * t_ * o_ * (1.0f - o_);
}

static void cell_backward(int64_t H, float *restrict gi, float *restrict gf,
                          float *restrict gg, float *restrict go,
                          const float *restrict cp, const float *restrict tc,
                          const float *restrict dps, const float *restrict dhr,
                          float *restrict dc)
{
    int64_t j = 0;
    for (; j + SP_VBLOCK <= H; j += SP_VBLOCK) { /* see cell_forward */
        float bi[SP_VBLOCK], bf[SP_VBLOCK], bg[SP_VBLOCK], bo[SP_VBLOCK];
        float bp[SP_VBLOCK], bt[SP_VBLOCK], bd[SP_VBLOCK], br[SP_VBLOCK];
        float bc[SP_VBLOCK];
        for (int k = 0; k < SP_VBLOCK; k++) {
            bi[k] = gi[j + k];
            bf[k] = gf[j + k];
            bg[k] = gg[j + k];
            bo[k] = go[j + k];
            bp[k] = cp[j + k];
            bt[k] = tc[j + k];
            bd[k] = dps[j + k];
            br[k] = dhr[j + k];
            bc[k] = dc[j + k];
        }
        for (int k = 0; k < SP_VBLOCK; k++)
            cell_backward_unit(k, bi, bf, bg, bo, bp, bt, bd, br, bc);
        for (int k = 0; k < SP_VBLOCK; k++) {
            gi[j + k] = bi[k];
            gf[j + k] = bf[k];
            gg[j + k] = bg[k];
            go[j + k] = bo[k];
            dc[j + k] = bc[k];
        }
    }
    for (; j < H; j++)
        cell_backward_unit(j, gi, gf, gg, go, cp, tc, dps, dhr, dc);
}

int sp_lstm_forward(const sp_model *m, const sp_batch *b, sp_lstm_ws *ws,
                    sp_observe_fn observe, void *user, double *loss,
                    int64_t *correct)
{
    if (!m || !b || !ws || b->B < 1 || b->T < 1 || b->in != m->in ||
        ws->H != m->hidden || ws->C != m->classes)
        return SP_LSTM_E_INVALID;
    const int64_t H = m->hidden, G = 4 * H, In = m->in, C = m->classes;
    const int64_t B = b->B, T = b->T, R = b->off[T];
    int rc = ws_reserve(ws, B, R);
    if (rc)
        return rc;
    const float *Wih = m->p[SP_P_W_IH].data, *Whh = m->p[SP_P_W_HH].data;
    const float *bih = m->p[SP_P_B_IH].data, *bhh = m->p[SP_P_B_HH].data;
    const float *Wout = m->p[SP_P_W_OUT].data, *bout = m->p[SP_P_B_OUT].data;

    /* Input projection of every frame in one GEMM, biases folded in. */
    for (int64_t k = 0; k < G; k++)
        ws->bsum[k] = bih[k] + bhh[k];
    for (int64_t r = 0; r < R; r++)
        memcpy(ws->gates + r * G, ws->bsum, (size_t)G * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)G,
                (int)In, 1.0f, b->x, (int)In, Wih, (int)In, 1.0f, ws->gates,
                (int)G);

    memset(ws->pool, 0, (size_t)(B * H) * sizeof(float));
    memset(ws->hprev, 0, (size_t)(b->bt[0] * H) * sizeof(float)); /* h_{-1} */
    for (int64_t t = 0; t < T; t++) {
        const int64_t bt = b->bt[t], o = b->off[t];
        const int64_t nb = t + 1 < T ? b->bt[t + 1] : 0;
        float *g = ws->gates + o * G;
        if (t > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)bt,
                        (int)G, (int)H, 1.0f, ws->hprev + o * H, (int)H, Whh,
                        (int)H, 1.0f, g, (int)G);
        const float *cprev = t > 0 ? ws->cs + b->off[t - 1] * H : NULL;
        for (int64_t r = 0; r < bt; r++) {
            float *hout = r < nb ? ws->hprev + (b->off[t + 1] + r) * H
                                 : ws->scratch;
            float *gr = g + r * G;
            cell_forward(H, gr, gr + H, gr + 2 * H, gr + 3 * H,
                         cprev ? cprev + r * H : ws->zeros,
                         ws->cs + (o + r) * H, ws->tch + (o + r) * H,
                         ws->pool + r * H, hout);
        }
    }
    for (int64_t r = 0; r < B; r++) {
        float s = 1.0f / (float)b->len[r];
        for (int64_t j = 0; j < H; j++)
            ws->pool[r * H + j] *= s;
    }
    if (observe) {
        observe(user, SP_P_W_IH, b->x, R, In);
        observe(user, SP_P_W_HH, ws->hprev, R, H);
        observe(user, SP_P_W_OUT, ws->pool, B, H);
    }

    /* Output layer and softmax cross-entropy. */
    for (int64_t r = 0; r < B; r++)
        memcpy(ws->logits + r * C, bout, (size_t)C * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)C,
                (int)H, 1.0f, ws->pool, (int)H, Wout, (int)H, 1.0f,
                ws->logits, (int)C);
    double total = 0.0;
    int64_t ok = 0;
    for (int64_t r = 0; r < B; r++) {
        const float *z = ws->logits + r * C;
        float *pr = ws->probs + r * C;
        int64_t arg = 0;
        for (int64_t k = 1; k < C; k++)
            if (z[k] > z[arg])
                arg = k;
        double sum = 0.0;
        for (int64_t k = 0; k < C; k++) {
            double e = exp((double)z[k] - (double)z[arg]);
            pr[k] = (float)e;
            sum += e;
        }
        for (int64_t k = 0; k < C; k++)
            pr[k] = (float)((double)pr[k] / sum);
        int32_t y = b->labels[r];
        if (y < 0 || y >= C)
            return SP_LSTM_E_INVALID;
        total += log(sum) - ((double)z[y] - (double)z[arg]);
        ok += (arg == y);
    }
    if (loss)
        *loss = total / (double)B;
    if (correct)
        *correct = ok;
    return SP_LSTM_OK;
}

int sp_lstm_backward(sp_model *m, const sp_batch *b, sp_lstm_ws *ws)
{
    if (!m || !b || !ws || b->B < 1 || b->B > ws->cap_b ||
        b->off[b->T] > ws->cap_rows)
        return SP_LSTM_E_INVALID;
    const int64_t H = m->hidden, G = 4 * H, In = m->in, C = m->classes;
    const int64_t B = b->B, T = b->T, R = b->off[T];
    const float *Whh = m->p[SP_P_W_HH].data, *Wout = m->p[SP_P_W_OUT].data;

    /* dL/dlogits = (p - onehot) / B, kept in probs. */
    float *dz = ws->probs;
    for (int64_t r = 0; r < B; r++) {
        dz[r * C + b->labels[r]] -= 1.0f;
        for (int64_t k = 0; k < C; k++)
            dz[r * C + k] /= (float)B;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)H,
                (int)B, 1.0f, dz, (int)C, ws->pool, (int)H, 0.0f,
                m->p[SP_P_W_OUT].grad, (int)H);
    float *gbo = m->p[SP_P_B_OUT].grad;
    for (int64_t k = 0; k < C; k++) {
        float s = 0.0f;
        for (int64_t r = 0; r < B; r++)
            s += dz[r * C + k];
        gbo[k] = s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H,
                (int)C, 1.0f, dz, (int)C, Wout, (int)H, 0.0f, ws->dpool,
                (int)H);
    for (int64_t r = 0; r < B; r++) {
        float s = 1.0f / (float)b->len[r];
        for (int64_t j = 0; j < H; j++)
            ws->dpool[r * H + j] *= s;
    }

    /* BPTT; gradients w.r.t. pre-activations overwrite the gates. */
    memset(ws->dc, 0, (size_t)(B * H) * sizeof(float));
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t bt = b->bt[t], o = b->off[t];
        const int64_t nb = t + 1 < T ? b->bt[t + 1] : 0;
        if (nb > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb,
                        (int)H, (int)G, 1.0f, ws->gates + b->off[t + 1] * G,
                        (int)G, Whh, (int)H, 0.0f, ws->dhrec, (int)H);
        const float *cprev = t > 0 ? ws->cs + b->off[t - 1] * H : NULL;
        for (int64_t r = 0; r < bt; r++) {
            float *gr = ws->gates + (o + r) * G;
            cell_backward(H, gr, gr + H, gr + 2 * H, gr + 3 * H,
                          cprev ? cprev + r * H : ws->zeros,
                          ws->tch + (o + r) * H, ws->dpool + r * H,
                          r < nb ? ws->dhrec + r * H : ws->zeros,
                          ws->dc + r * H);
        }
    }

    /* Weight gradients: one GEMM each over all frames. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)In,
                (int)R, 1.0f, ws->gates, (int)G, b->x, (int)In, 0.0f,
                m->p[SP_P_W_IH].grad, (int)In);
    const int64_t r1 = b->off[1]; /* rows of t = 0 have h_{-1} = 0 */
    if (R > r1)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)G, (int)H,
                    (int)(R - r1), 1.0f, ws->gates + r1 * G, (int)G,
                    ws->hprev + r1 * H, (int)H, 0.0f, m->p[SP_P_W_HH].grad,
                    (int)H);
    else
        memset(m->p[SP_P_W_HH].grad, 0, (size_t)(G * H) * sizeof(float));
    float *gbi = m->p[SP_P_B_IH].grad, *gbh = m->p[SP_P_B_HH].grad;
    memset(gbi, 0, (size_t)G * sizeof(float));
    for (int64_t r = 0; r < R; r++) {
        const float *row = ws->gates + r * G;
        for (int64_t k = 0; k < G; k++)
            gbi[k] += row[k];
    }
    memcpy(gbh, gbi, (size_t)G * sizeof(float));
    return SP_LSTM_OK;
}
