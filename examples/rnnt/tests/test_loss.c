/* test_loss.c - rn_loss() against an independent float64 reference.
 *
 * The reference enumerates EVERY alignment path of the RNN-T lattice
 * (blank = move in t, label = move in u, ending with the blank at
 * (T'-1, U')) and sums their probabilities in float64, with its own
 * log-softmax; it shares no code with rnnt_loss.c. Checked on random
 * logits (N(0, 1.5^2), labels uniform, lengths uniform, fresh seeds):
 *   loss:  |c - ref| <= 1e-5 * max(1, |ref|)
 *   grad:  |c - fd| <= 1e-6 + 1e-4 * |fd| for every logit, where fd is the
 *          central difference (L(z+h) - L(z-h)) / 2h of the float64
 *          reference, h = 1e-4 (truncation ~1e-9; the C gradient is float32).
 * Plus: cells beyond t_len/u_len get exactly zero gradient, every cell's
 * gradient sums to 0 over v (softmax), grad == NULL gives the same loss,
 * edge cases U = 0, T = 1, B > 1 with different lengths, the caller
 * workspace variant, and the error codes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../speech/rng.h"
#include "../../speech/tests/check.h"
#include "../rnnt_loss.h"

/* Sum over all paths from (t,u) of the path probability (float64). */
static double paths(const double *lp, const int32_t *y, int Tb, int Ub, int U1,
                    int V, int blank, int t, int u)
{
    const double *c = lp + ((size_t)t * U1 + u) * V;
    double s = 0.0;
    if (t == Tb - 1 && u == Ub)
        return exp(c[blank]);
    if (t < Tb - 1)
        s += exp(c[blank]) * paths(lp, y, Tb, Ub, U1, V, blank, t + 1, u);
    if (u < Ub)
        s += exp(c[y[u]]) * paths(lp, y, Tb, Ub, U1, V, blank, t, u + 1);
    return s;
}

/* Reference loss of one utterance from float64 logits z (T x U1 x V). */
static double ref_loss(const double *z, const int32_t *y, int Tb, int Ub,
                       int T, int U1, int V, int blank)
{
    double *lp = malloc(sizeof(double) * T * U1 * V);
    for (int i = 0; i < T * U1; i++) {
        double m = z[i * V];
        for (int v = 1; v < V; v++)
            m = z[i * V + v] > m ? z[i * V + v] : m;
        double s = 0.0;
        for (int v = 0; v < V; v++)
            s += exp(z[i * V + v] - m);
        for (int v = 0; v < V; v++)
            lp[i * V + v] = z[i * V + v] - m - log(s);
    }
    double p = paths(lp, y, Tb, Ub, U1, V, blank, 0, 0);
    free(lp);
    return -log(p);
}

static double gauss(sp_rng *r)
{
    double u1 = (sp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
    double u2 = (sp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* One random batch checked in full against the reference. */
static void check_batch(sp_rng *r, int B, int T, int U1, int V, int blank,
                        const int32_t *tl_fixed, const int32_t *ul_fixed)
{
    size_t block = (size_t)T * U1 * V, n = block * B;
    float *z = malloc(n * sizeof *z), *g = malloc(n * sizeof *g);
    float *g2 = malloc(n * sizeof *g2);
    float *loss = malloc(B * sizeof *loss), *loss2 = malloc(B * sizeof *loss2);
    int32_t *y = malloc(sizeof(int32_t) * B * (U1 > 1 ? U1 - 1 : 1));
    int32_t *tl = malloc(sizeof(int32_t) * B), *ul = malloc(sizeof(int32_t) * B);
    double *zd = malloc(block * sizeof *zd);
    for (size_t i = 0; i < n; i++)
        z[i] = (float)(1.5 * gauss(r));
    for (int b = 0; b < B; b++) {
        tl[b] = tl_fixed ? tl_fixed[b] : 1 + (int32_t)sp_rng_below(r, (uint64_t)T);
        ul[b] = ul_fixed ? ul_fixed[b] : (int32_t)sp_rng_below(r, (uint64_t)U1);
        for (int u = 0; u < U1 - 1; u++) {
            int32_t v = (int32_t)sp_rng_below(r, (uint64_t)V - 1);
            y[b * (U1 - 1) + u] = v >= blank ? v + 1 : v;
        }
    }
    for (size_t i = 0; i < n; i++)
        g[i] = 12345.0f; /* must be overwritten everywhere */
    int rc = rn_loss(z, y, tl, ul, B, T, U1, V, blank, loss, g);
    CHECK(rc == 0, "rn_loss rc %d (B=%d T=%d U1=%d V=%d)", rc, B, T, U1, V);
    rc = rn_loss(z, y, tl, ul, B, T, U1, V, blank, loss2, NULL);
    CHECK(rc == 0, "rn_loss without grad rc %d", rc);
    size_t wsn = rn_loss_ws_size(T, U1, V);
    void *ws = malloc(wsn);
    rc = rn_loss_ws(z, y, tl, ul, B, T, U1, V, blank, loss2, g2, ws, wsn);
    CHECK(rc == 0 && memcmp(g, g2, n * sizeof *g) == 0,
          "rn_loss_ws differs from rn_loss (rc %d)", rc);
    free(ws);
    double worst = 0.0;
    for (int b = 0; b < B; b++) {
        const int32_t *yb = y + b * (U1 - 1);
        for (size_t i = 0; i < block; i++)
            zd[i] = z[b * block + i];
        double L = ref_loss(zd, yb, tl[b], ul[b], T, U1, V, blank);
        CHECK(fabs(loss[b] - L) <= 1e-5 * fmax(1.0, fabs(L)),
              "loss[%d] %.9g ref %.9g", b, loss[b], L);
        CHECK(loss2[b] == loss[b], "loss without grad differs");
        const float *gb = g + b * block;
        for (int t = 0; t < T; t++) {
            for (int u = 0; u < U1; u++) {
                const float *gc = gb + ((size_t)t * U1 + u) * V;
                int inside = t < tl[b] && u <= ul[b];
                double sum = 0.0;
                for (int v = 0; v < V; v++) {
                    size_t i = ((size_t)t * U1 + u) * V + v;
                    sum += gc[v];
                    if (!inside) {
                        CHECK(gc[v] == 0.0f, "grad outside lattice b%d t%d u%d = %g",
                              b, t, u, gc[v]);
                        continue;
                    }
                    const double h = 1e-4;
                    double keep = zd[i];
                    zd[i] = keep + h;
                    double lp = ref_loss(zd, yb, tl[b], ul[b], T, U1, V, blank);
                    zd[i] = keep - h;
                    double lm = ref_loss(zd, yb, tl[b], ul[b], T, U1, V, blank);
                    zd[i] = keep;
                    double fd = (lp - lm) / (2 * h);
                    double err = fabs(gc[v] - fd);
                    if (err > worst)
                        worst = err;
                    CHECK(err <= 1e-6 + 1e-4 * fabs(fd),
                          "grad b%d t%d u%d v%d = %.8g, fd %.8g", b, t, u, v, gc[v], fd);
                }
                CHECK(fabs(sum) <= 1e-5, "cell gradient sums to %g", sum);
            }
        }
    }
    printf("B=%d T=%d U1=%d V=%d blank=%d: worst |grad - fd| %.2e\n", B, T, U1,
           V, blank, worst);
    free(z); free(g); free(g2); free(loss); free(loss2); free(y); free(tl);
    free(ul); free(zd);
}

static void check_errors(void)
{
    float z[2 * 3 * 4] = {0}, loss[1] = {7.0f}, g[24];
    int32_t y[2] = {1, 2}, tl[1] = {2}, ul[1] = {2};
    CHECK(rn_loss(NULL, y, tl, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_NULL, "NULL logits");
    CHECK(rn_loss(z, y, tl, ul, 1, 2, 3, 4, 0, NULL, g) == RN_LOSS_E_NULL, "NULL loss");
    CHECK(rn_loss(z, NULL, tl, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_NULL, "NULL labels");
    CHECK(rn_loss(z, y, tl, ul, 0, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "B 0");
    CHECK(rn_loss(z, y, tl, ul, 1, 2, 3, 1, 0, loss, g) == RN_LOSS_E_RANGE, "V 1");
    CHECK(rn_loss(z, y, tl, ul, 1, 2, 3, 4, 4, loss, g) == RN_LOSS_E_RANGE, "blank V");
    int32_t bad_t[1] = {3}, zero_t[1] = {0}, bad_u[1] = {3};
    CHECK(rn_loss(z, y, bad_t, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "t_len > T");
    CHECK(rn_loss(z, y, zero_t, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "t_len 0");
    CHECK(rn_loss(z, y, tl, bad_u, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "u_len > U1-1");
    int32_t yb[2] = {1, 0}, yv[2] = {1, 4};
    CHECK(rn_loss(z, yb, tl, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "blank label");
    CHECK(rn_loss(z, yv, tl, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_RANGE, "label V");
    CHECK(loss[0] == 7.0f, "loss written on error");
    char ws[8];
    CHECK(rn_loss_ws(z, y, tl, ul, 1, 2, 3, 4, 0, loss, g, ws, sizeof ws) == RN_LOSS_E_RANGE,
          "small workspace");
    z[5] = NAN;
    CHECK(rn_loss(z, y, tl, ul, 1, 2, 3, 4, 0, loss, g) == RN_LOSS_E_NONFINITE, "NaN logit");
    /* a label only beyond u_len is ignored, U1 = 1 needs no labels */
    int32_t yig[2] = {1, 99}, ul1[1] = {1};
    z[5] = 0.0f;
    CHECK(rn_loss(z, yig, tl, ul1, 1, 2, 3, 4, 0, loss, g) == 0, "label beyond u_len checked");
    int32_t u0[1] = {0};
    CHECK(rn_loss(z, NULL, tl, u0, 1, 2, 1, 4, 0, loss, NULL) == 0, "U1 = 1 without labels");
    /* closed form: uniform logits, T = 1, U = 0: loss = log V */
    CHECK(fabs(loss[0] - 2.0 * log(4.0)) < 1e-6, "T=2,U=0 uniform: %g vs %g", loss[0],
          2.0 * log(4.0));
    CHECK(strcmp(rn_loss_strerror(RN_LOSS_E_RANGE), "unknown status") != 0, "strerror");
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10)
                             : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    printf("seed %llu (rerun: test_loss SEED)\n", (unsigned long long)seed);
    sp_rng r;
    sp_rng_seed(&r, seed);
    check_errors();
    const int32_t t1[1] = {1}, u0[1] = {0}, u2[1] = {2};
    check_batch(&r, 1, 1, 3, 5, 0, t1, u2); /* T = 1 */
    check_batch(&r, 1, 4, 3, 5, 0, NULL, u0); /* U = 0 */
    check_batch(&r, 1, 1, 1, 3, 2, t1, u0); /* T = 1, U = 0, blank last */
    const int32_t tl[4] = {5, 2, 3, 5}, ul[4] = {3, 1, 0, 2};
    check_batch(&r, 4, 5, 4, 6, 0, tl, ul); /* B > 1, different lengths */
    for (int k = 0; k < 4; k++)
        check_batch(&r, 3, 2 + (int)sp_rng_below(&r, 6), 1 + (int)sp_rng_below(&r, 5),
                    2 + (int)sp_rng_below(&r, 10), 0, NULL, NULL);
    check_batch(&r, 2, 6, 5, 11, 3, NULL, NULL); /* blank not 0 */
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
