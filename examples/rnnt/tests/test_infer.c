/* test_infer.c - the streaming decoder (rnnt_infer.h): dense against the
 * batched rn_greedy()/rn_encode(), and sparse (csp_sparse kernels) against
 * dense, on random models whose prunable matrices are pruned row-balanced
 * (0.9, and 0.5) and 2:4, from fresh seeds.
 *
 * Tolerances (float32; the products differ only in summation order):
 * encoder projections |a - b| <= 1e-4 (1 + |b|), logits of every joint
 * evaluation the same. Greedy decisions must agree except at a near tie:
 * where two decoders first pick different labels the reference's top two
 * logits lie within 1e-3 (then the trajectories part and the comparison
 * stops). A decoder that skipped a matrix, a bias or a frame fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "rnnt_infer.h"
#include "rnnt_model.h"

#define T_MAX 40
#define STEPS_MAX 4096
#define CAP 256

static int failures = 0;
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

typedef struct run {
    int32_t hyp[CAP], len;
    float enc[T_MAX * 64];
    float logits[STEPS_MAX * 16];
    rn_infer_trace tr;
} run;

static int decode(rn_infer *d, const float *x, int64_t T, run *o)
{
    o->tr = (rn_infer_trace){o->enc, T_MAX * 64, o->logits, STEPS_MAX * 16, 0};
    return rn_infer_decode(d, x, T, 3, o->hyp, &o->len, CAP, &o->tr);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int argmax(const float *v, int64_t n, float *gap)
{
    int b = 0, s = -1;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b])
            b = i;
    for (int i = 0; i < n; i++)
        if (i != b && (s < 0 || v[i] > v[s]))
            s = i;
    *gap = v[b] - v[s];
    return b;
}

/* Step through both traces while their decisions agree. Returns 1 when the
 * whole decode agreed (hyps must then be equal), 0 at a near tie. */
static int compare(const run *a, const run *ref, int64_t V, const char *what)
{
    int64_t steps = a->tr.steps < ref->tr.steps ? a->tr.steps : ref->tr.steps;
    for (int64_t s = 0; s < steps; s++) {
        const float *la = a->logits + s * V, *lr = ref->logits + s * V;
        for (int64_t v = 0; v < V; v++)
            if (!(fabsf(la[v] - lr[v]) <= 1e-4f * (1.0f + fabsf(lr[v])))) {
                CHECK(0, "%s: step %lld logit %lld: %g against %g", what, (long long)s,
                      (long long)v, la[v], lr[v]);
                return 1;
            }
        float ga, gr;
        if (argmax(la, V, &ga) != argmax(lr, V, &gr)) {
            CHECK(gr < 1e-3f, "%s: step %lld: different labels, reference gap %g", what,
                  (long long)s, gr);
            return 0;
        }
    }
    CHECK(a->tr.steps == ref->tr.steps, "%s: %lld joint evaluations against %lld", what,
          (long long)a->tr.steps, (long long)ref->tr.steps);
    CHECK(a->len == ref->len && !memcmp(a->hyp, ref->hyp, (size_t)a->len * sizeof(int32_t)),
          "%s: hypotheses differ (%d against %d labels)", what, a->len, ref->len);
    return 1;
}

/* Prune every prunable matrix: pattern 0 row-balanced at sparsity s (exact
 * count per row, random positions), 1: 2:4 (two random of every four). */
static void prune(rn_model *m, sp_rng *r, int pattern, double s)
{
    for (int k = 0; k < m->nparams; k++) {
        rn_param *p = &m->p[k];
        if (!p->prunable)
            continue;
        int64_t *idx = malloc((size_t)p->cols * sizeof *idx);
        for (int64_t i = 0; i < p->rows; i++) {
            float *w = p->data + i * p->cols;
            if (pattern == 1) {
                for (int64_t g = 0; g < p->cols; g += 4) {
                    int64_t a = (int64_t)sp_rng_below(r, 4), b = (int64_t)sp_rng_below(r, 3);
                    b += b >= a;
                    for (int64_t j = 0; j < 4; j++)
                        if (j != a && j != b)
                            w[g + j] = 0.0f;
                }
                continue;
            }
            for (int64_t j = 0; j < p->cols; j++)
                idx[j] = j;
            sp_rng_shuffle_i64(r, idx, p->cols);
            int64_t drop = (int64_t)llround(s * (double)p->cols);
            for (int64_t j = 0; j < drop; j++)
                w[idx[j]] = 0.0f;
        }
        free(idx);
    }
}

static void one_model(uint64_t seed, int pattern, double s, csp_context *ctx, int *compared,
                      int *mixed)
{
    sp_rng r;
    sp_rng_seed(&r, seed);
    rn_config c;
    rn_config_init(&c);
    c.in = 24;
    c.enc_layers = 2;
    c.enc_hidden = 32;
    c.embed = 8;
    c.pred_hidden = 16;
    c.joint = 24;
    rn_model m;
    if (rn_model_init(&m, &c, seed) != RN_OK) {
        CHECK(0, "rn_model_init");
        return;
    }
    /* A joint output layer larger than the init's, so that the logits move
     * with the encoder and prediction states. */
    for (int64_t j = 0; j < m.p[m.w_o].size; j++)
        m.p[m.w_o].data[j] *= 12.0f;
    prune(&m, &r, pattern, s);
    int64_t T = 10 + (int64_t)sp_rng_below(&r, T_MAX - 9);
    float x[T_MAX * 24];
    for (int64_t i = 0; i < T * c.in; i++)
        x[i] = 2.0f * sp_rng_uniform(&r) - 1.0f;

    rn_infer *dense = NULL, *sparse = NULL;
    CHECK(rn_infer_create(&dense, &m, NULL, 0) == RN_OK, "create dense");
    CHECK(rn_infer_create(&sparse, &m, ctx, 1) == RN_OK, "create sparse: %s",
          csp_context_last_error(ctx));
    static run rd, rs;
    /* A blank bias with which some frames emit labels and others do not
     * (random models tend to one extreme): with blank always winning, each
     * frame evaluates the joint once; the median margin of the best label
     * over blank, added to blank's bias, makes about half of them emit. */
    if (dense) {
        m.p[m.b_o].data[c.blank] += 100.0f;
        float margin[T_MAX];
        if (decode(dense, x, T, &rd) == RN_OK && rd.tr.steps == T) {
            for (int64_t t = 0; t < T; t++) {
                const float *l = rd.logits + t * c.vocab;
                float best = -INFINITY;
                for (int64_t v = 0; v < c.vocab; v++)
                    if (v != c.blank && l[v] > best)
                        best = l[v];
                margin[t] = best - l[c.blank];
            }
            qsort(margin, (size_t)T, sizeof *margin, cmp_float);
            m.p[m.b_o].data[c.blank] += margin[T / 2];
        }
    }
    if (dense && sparse && decode(dense, x, T, &rd) == RN_OK && decode(sparse, x, T, &rs) == RN_OK) {
        const int64_t J = c.joint, V = c.vocab;
        for (int64_t i = 0; i < T * J; i++)
            if (!(fabsf(rs.enc[i] - rd.enc[i]) <= 1e-4f * (1.0f + fabsf(rd.enc[i])))) {
                CHECK(0, "sparse encoder projection %lld: %g against %g", (long long)i,
                      rs.enc[i], rd.enc[i]);
                break;
            }
        *compared += compare(&rs, &rd, V, "sparse against dense");
        CHECK(rn_infer_weight_bytes(sparse) < rn_infer_weight_bytes(dense),
              "sparse weights %lld B, dense %lld B", (long long)rn_infer_weight_bytes(sparse),
              (long long)rn_infer_weight_bytes(dense));
        *mixed += rd.len > 0 && rd.tr.steps > rd.len; /* both branches taken */

        /* Dense streaming against the batched decoder of the trainer. */
        rn_ws *ws = NULL;
        int32_t t_len = (int32_t)T, u_len = 0, hyp[CAP], hl = 0;
        rn_input in = {1, T, 0, c.in, x, &t_len, NULL, &u_len};
        const float *proj = NULL;
        if (rn_ws_create(&ws) == RN_OK && rn_encode(&m, &in, ws, &proj) == RN_OK) {
            for (int64_t i = 0; i < T * J; i++)
                if (!(fabsf(rd.enc[i] - proj[i]) <= 1e-4f * (1.0f + fabsf(proj[i])))) {
                    CHECK(0, "dense encoder projection %lld: %g, rn_encode %g", (long long)i,
                          rd.enc[i], proj[i]);
                    break;
                }
            CHECK(rn_greedy(&m, &in, ws, 3, hyp, &hl, CAP) == RN_OK, "rn_greedy");
            float mingap = INFINITY, g;
            for (int64_t s2 = 0; s2 < rd.tr.steps && s2 < STEPS_MAX; s2++) {
                argmax(rd.logits + s2 * V, V, &g);
                mingap = g < mingap ? g : mingap;
            }
            if (mingap >= 1e-3f)
                CHECK(hl == rd.len && !memcmp(hyp, rd.hyp, (size_t)hl * sizeof *hyp),
                      "streaming dense and rn_greedy differ (%d against %d labels)", rd.len, hl);
        } else {
            CHECK(0, "rn_encode");
        }
        rn_ws_free(ws);
    } else {
        CHECK(0, "decode");
    }
    /* Bad input. */
    int32_t h[4], hl2;
    CHECK(rn_infer_decode(dense, NULL, T, 3, h, &hl2, 4, NULL) == RN_E_INVALID, "x NULL");
    CHECK(rn_infer_decode(dense, x, T, 0, h, &hl2, 4, NULL) == RN_E_INVALID, "max_symbols 0");
    CHECK(rn_infer_create(&sparse, &m, NULL, 1) == RN_E_INVALID || sparse == NULL,
          "sparse without a context");
    rn_infer_free(dense);
    rn_infer_free(sparse);
    rn_model_free(&m);
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu (rerun: %s %llu)\n", (unsigned long long)seed, argv[0],
           (unsigned long long)seed);
    csp_context *ctx = NULL;
    if (csp_context_create(&ctx, NULL) != CSP_OK) {
        printf("FAIL csp_context_create\n");
        return 1;
    }
    int compared = 0, runs = 0, mixed = 0;
    static const double sp[3] = {0.9, 0.5, 0.0};
    for (int k = 0; k < 12; k++, runs++)
        one_model(seed + (uint64_t)k, k % 3 == 2 ? 1 : 0, sp[k % 3], ctx, &compared, &mixed);
    printf("%d of %d decodes compared to the end (the rest parted at a near tie)\n", compared,
           runs);
    printf("%d of %d decodes both emitted labels and passed frames on blank\n", mixed, runs);
    CHECK(compared >= runs / 2, "too many near ties: %d of %d", compared, runs);
    CHECK(mixed >= runs / 4, "too few decodes took both branches: %d of %d", mixed, runs);
    csp_context_free(ctx);
    printf(failures ? "FAILED (%d)\n" : "OK\n", failures);
    return failures != 0;
}
