/* test_gradcheck.c - analytic LSTM gradients (lstm.c, float32) against
 * central finite differences of an independent, naive float64 forward.
 *
 * Every entry of every parameter of a tiny model (In=3, H=5, C=4, a batch
 * of 5 utterances of lengths 6,1,3,3,4, given unsorted) is checked:
 *   |analytic - numeric| <= ATOL + RTOL * |numeric|   (RTOL 1e-4, ATOL 1e-7)
 * with numeric = (L(w+h) - L(w-h)) / 2h in float64, h = 1e-5 (truncation
 * and rounding error of the difference ~1e-10). The float32 forward loss
 * must match the float64 loss to 1e-5 relative. Exits 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lstm.h"
#include "../rng.h"

#define IN 3
#define HID 5
#define NC 4
#define NB 5
#define RTOL 1e-4
#define ATOL 1e-7

static const int64_t lens[NB] = {6, 1, 3, 3, 4};
static const int32_t labels_[NB] = {2, 0, 3, 1, 2};

/* Reference forward in double; w[k] are the parameters (PyTorch layout). */
static double ref_loss(double *const w[SP_NPARAMS], const float *const *x)
{
    const double *Wih = w[SP_P_W_IH], *Whh = w[SP_P_W_HH], *bih = w[SP_P_B_IH],
                 *bhh = w[SP_P_B_HH], *Wo = w[SP_P_W_OUT], *bo = w[SP_P_B_OUT];
    double total = 0.0;
    for (int u = 0; u < NB; u++) {
        double h[HID] = {0}, c[HID] = {0}, pool[HID] = {0};
        for (int64_t t = 0; t < lens[u]; t++) {
            double a[4 * HID];
            for (int k = 0; k < 4 * HID; k++) {
                double s = bih[k] + bhh[k];
                for (int j = 0; j < IN; j++)
                    s += Wih[k * IN + j] * x[u][t * IN + j];
                for (int j = 0; j < HID; j++)
                    s += Whh[k * HID + j] * h[j];
                a[k] = s;
            }
            for (int j = 0; j < HID; j++) {
                double ig = 1.0 / (1.0 + exp(-a[j]));
                double fg = 1.0 / (1.0 + exp(-a[HID + j]));
                double gg = tanh(a[2 * HID + j]);
                double og = 1.0 / (1.0 + exp(-a[3 * HID + j]));
                c[j] = fg * c[j] + ig * gg;
                h[j] = og * tanh(c[j]);
                pool[j] += h[j];
            }
        }
        double z[NC], zmax = -1e300;
        for (int k = 0; k < NC; k++) {
            double s = bo[k];
            for (int j = 0; j < HID; j++)
                s += Wo[k * HID + j] * pool[j] / (double)lens[u];
            z[k] = s;
            if (s > zmax)
                zmax = s;
        }
        double se = 0.0;
        for (int k = 0; k < NC; k++)
            se += exp(z[k] - zmax);
        total += log(se) + zmax - z[labels_[u]];
    }
    return total / NB;
}

int main(void)
{
    sp_model m;
    if (sp_model_init(&m, IN, HID, NC, 42) != SP_LSTM_OK)
        return 1;
    sp_rng rng;
    sp_rng_seed(&rng, 7);
    /* Larger weights than the default init so that gates saturate a bit. */
    for (int k = 0; k < SP_NPARAMS; k++)
        for (int64_t j = 0; j < m.p[k].size; j++)
            m.p[k].data[j] *= 2.5f;
    float *xs[NB];
    int64_t ids[NB];
    for (int u = 0; u < NB; u++) {
        xs[u] = malloc((size_t)lens[u] * IN * sizeof(float));
        for (int64_t j = 0; j < lens[u] * IN; j++)
            xs[u][j] = 3.0f * sp_rng_uniform(&rng) - 1.5f;
        ids[u] = u;
    }
    sp_batch_buf bb;
    memset(&bb, 0, sizeof bb);
    sp_lstm_ws *ws;
    if (sp_batch_pack(&bb, NB, ids, (const float *const *)xs, lens, labels_, IN) ||
        sp_lstm_ws_create(&ws, &m))
        return 1;
    double loss;
    int64_t correct;
    if (sp_lstm_forward(&m, &bb.b, ws, NULL, NULL, &loss, &correct) ||
        sp_lstm_backward(&m, &bb.b, ws))
        return 1;

    double *w[SP_NPARAMS];
    for (int k = 0; k < SP_NPARAMS; k++) {
        w[k] = malloc((size_t)m.p[k].size * sizeof(double));
        for (int64_t j = 0; j < m.p[k].size; j++)
            w[k][j] = m.p[k].data[j];
    }
    int fails = 0;
    double ref = ref_loss(w, (const float *const *)xs);
    double lerr = fabs(loss - ref) / fabs(ref);
    printf("loss float32 %.9f float64 %.9f rel_err %.3g\n", loss, ref, lerr);
    if (lerr > 1e-5) {
        printf("FAIL forward loss mismatch\n");
        fails++;
    }
    const double h = 1e-5;
    double worst_ratio = 0.0;
    for (int k = 0; k < SP_NPARAMS; k++) {
        double max_abs = 0.0, max_rel = 0.0;
        for (int64_t j = 0; j < m.p[k].size; j++) {
            double keep = w[k][j];
            w[k][j] = keep + h;
            double lp = ref_loss(w, (const float *const *)xs);
            w[k][j] = keep - h;
            double lm = ref_loss(w, (const float *const *)xs);
            w[k][j] = keep;
            double num = (lp - lm) / (2 * h);
            double ana = m.p[k].grad[j];
            double err = fabs(ana - num);
            double ratio = err / (ATOL + RTOL * fabs(num));
            if (err > max_abs)
                max_abs = err;
            if (fabs(num) > 1e-4 && err / fabs(num) > max_rel)
                max_rel = err / fabs(num);
            if (ratio > worst_ratio)
                worst_ratio = ratio;
            if (ratio > 1.0) {
                if (fails < 20)
                    printf("FAIL %s[%lld]: analytic %.9g numeric %.9g\n",
                           m.p[k].name, (long long)j, ana, num);
                fails++;
            }
        }
        printf("%-18s %4lld entries: max_abs_err %.3g max_rel_err(|g|>1e-4) %.3g\n",
               m.p[k].name, (long long)m.p[k].size, max_abs, max_rel);
    }
    printf("gradcheck: worst err/(%.0e + %.0e |g|) = %.3g -> %s\n", ATOL, RTOL,
           worst_ratio, fails ? "FAIL" : "PASS");
    for (int k = 0; k < SP_NPARAMS; k++)
        free(w[k]);
    for (int u = 0; u < NB; u++)
        free(xs[u]);
    sp_batch_buf_free(&bb);
    sp_lstm_ws_free(ws);
    sp_model_free(&m);
    return fails ? 1 : 0;
}
