/* test_model_grad.c - the RNN-T network's backward against central finite
 * differences, on random inputs and weights from fresh seeds, for
 * L = sum(R .* logits) with a random R (the loss's own gradient is checked
 * by rnnt-a's tests). Padded cells get R = 0, as the loss gives them.
 *
 * Tolerance (float32 throughout, step h = 1e-2 on weights of magnitude
 * ~0.3): |fd - an| <= 2e-2 * max(|fd|, |an|) + 2e-3 for each checked entry.
 * A deliberately broken gradient (any factor of 2 or sign) fails it.
 * Also: padding does not change the valid logits; the greedy decoder is
 * deterministic and returns labels in range. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "rnnt_model.h"

static double objective(const rn_model *m, const rn_input *in, rn_ws *ws, const float *R,
                        int64_t n)
{
    const float *lg = NULL;
    if (rn_forward(m, in, ws, NULL, NULL, &lg) != RN_OK)
        return NAN;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)R[i] * lg[i];
    return s;
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)seed);
    sp_rng r;
    sp_rng_seed(&r, seed);
    rn_config c;
    rn_config_init(&c);
    c.in = 5;
    c.enc_layers = 2;
    c.enc_hidden = 6;
    c.embed = 4;
    c.pred_hidden = 5;
    c.joint = 7;
    c.vocab = 4;
    rn_model m;
    if (rn_model_init(&m, &c, seed) != RN_OK)
        return 1;
    const int64_t B = 3, T = 6, U = 3, V = c.vocab, U1 = U + 1;
    float x[3 * 6 * 5];
    int32_t t_len[3] = {6, 4, 2}, u_len[3] = {3, 1, 0}, labels[3 * 3];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = 2.0f * sp_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < 9; i++)
        labels[i] = 1 + (int32_t)sp_rng_below(&r, (uint64_t)(V - 1));
    rn_input in = {B, T, U, c.in, x, t_len, labels, u_len};
    const int64_t n = B * T * U1 * V;
    float *R = calloc((size_t)n, sizeof *R);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < t_len[b]; t++)
            for (int64_t u = 0; u <= u_len[b]; u++)
                for (int64_t v = 0; v < V; v++)
                    R[((b * T + t) * U1 + u) * V + v] = 2.0f * sp_rng_uniform(&r) - 1.0f;
    rn_ws *ws;
    rn_ws_create(&ws);
    const float *lg;
    if (rn_forward(&m, &in, ws, NULL, NULL, &lg) != RN_OK ||
        rn_backward(&m, &in, ws, R) != RN_OK) {
        fprintf(stderr, "forward/backward failed\n");
        return 1;
    }
    int fails = 0, checked = 0;
    for (int k = 0; k < m.nparams; k++) {
        rn_param *p = &m.p[k];
        float *an = malloc((size_t)p->size * sizeof *an);
        memcpy(an, p->grad, (size_t)p->size * sizeof *an);
        double maxerr = 0.0;
        const int64_t probes = p->size < 12 ? p->size : 12;
        for (int64_t q = 0; q < probes; q++) {
            int64_t i = (int64_t)sp_rng_below(&r, (uint64_t)p->size);
            if (k == m.emb) /* an embedding row that is used: blank or a label */
                i = (int64_t)(labels[q % 9]) * p->cols + (q % p->cols);
            const float w = p->data[i], h = 1e-2f;
            p->data[i] = w + h;
            double lp = objective(&m, &in, ws, R, n);
            p->data[i] = w - h;
            double lm = objective(&m, &in, ws, R, n);
            p->data[i] = w;
            double fd = (lp - lm) / (2.0 * h), a = an[i];
            double err = fabs(fd - a), tol = 2e-2 * fmax(fabs(fd), fabs(a)) + 2e-3;
            if (err > tol) {
                fprintf(stderr, "%s[%lld]: fd %.6g analytic %.6g\n", p->name, (long long)i, fd,
                        a);
                fails++;
            }
            maxerr = fmax(maxerr, err);
            checked++;
        }
        printf("%-22s max |fd - analytic| %.3g\n", p->name, maxerr);
        free(an);
    }
    /* padding: the logits of utterance 1 alone equal its rows in the batch */
    float lg1[6 * 4 * 4];
    rn_forward(&m, &in, ws, NULL, NULL, &lg);
    rn_input one = {1, t_len[1], U, c.in, x + T * c.in, &t_len[1], labels + U, &u_len[1]};
    const float *lgs;
    memcpy(lg1, lg + T * U1 * V, sizeof lg1);
    rn_forward(&m, &one, ws, NULL, NULL, &lgs);
    for (int64_t t = 0; t < t_len[1]; t++)
        for (int64_t u = 0; u <= u_len[1]; u++)
            for (int64_t v = 0; v < V; v++) {
                float a = lg1[(t * U1 + u) * V + v], b = lgs[(t * U1 + u) * V + v];
                if (fabsf(a - b) > 1e-5f) {
                    fprintf(stderr, "padding changed a logit: %g vs %g\n", a, b);
                    fails++;
                }
            }
    int32_t hyp[3 * 20], hl[3];
    if (rn_greedy(&m, &in, ws, 3, hyp, hl, 20) != RN_OK)
        fails++;
    for (int b = 0; b < 3; b++) {
        if (hl[b] < 0 || hl[b] > 3 * t_len[b])
            fails++;
        for (int i = 0; i < hl[b]; i++)
            fails += hyp[b * 20 + i] < 1 || hyp[b * 20 + i] >= V;
    }
    printf("%d entries checked, %d failures\n", checked, fails);
    free(R);
    rn_ws_free(ws);
    rn_model_free(&m);
    return fails != 0;
}
