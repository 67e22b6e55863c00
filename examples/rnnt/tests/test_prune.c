/* test_prune.c - training the RNN-T network with rnnt_prune.c's pruner
 * (every LSTM and joint matrix, Adam moments as companions, gradients
 * masked before the update, csp_step() after it) keeps every pruned weight
 * and its Adam moments exactly zero after every step, masks the gradients
 * of pruned weights before clipping, reaches the target sparsity, and
 * feeds activation sensing (csp-act). Random features and labels from a
 * fresh seed (argv[1] to repeat one); the loss is rnnt_loss.h's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csp/csp.h>

#include "rng.h"
#include "rnnt_loss.h"
#include "rnnt_model.h"
#include "rnnt_prune.h"

enum { B = 4, T = 12, U = 3, F = 6 };

/* Train 60 steps of method `name` on random batches to 0.75 sparsity. */
static int run_method(const char *name, uint64_t seed)
{
    const sm_method *m = sm_find(name);
    if (!m)
        return 1;
    rn_config c;
    rn_config_init(&c);
    c.in = F;
    c.enc_layers = 2; /* two encoder layers: 9 pruned matrices */
    c.enc_hidden = 16;
    c.embed = 8;
    c.pred_hidden = 12;
    c.joint = 16;
    c.vocab = 5;
    rn_model model;
    if (rn_model_init(&model, &c, seed) != RN_OK)
        return 1;
    const int64_t steps = 60;
    rp_schedule s = {0.75, 0.1, 0.6, 3.0, 10, steps, 0, 0, 0, 0};
    rp_pruning *p = NULL;
    if (rp_create(&p, m, NULL, &model, seed, 1, &s) != 0)
        return 1;
    sp_rng r;
    sp_rng_seed(&r, seed ^ 0x5eed);
    float x[B * T * F], grad[B * T * (U + 1) * 5], loss[B];
    int32_t labels[B * U], t_len[B], u_len[B];
    rn_ws *ws;
    rn_ws_create(&ws);
    int fails = 0;
    for (int64_t step = 1; step <= steps; step++) {
        for (int i = 0; i < B * T * F; i++)
            x[i] = 2.0f * sp_rng_uniform(&r) - 1.0f;
        for (int b = 0; b < B; b++) {
            t_len[b] = T - (int32_t)sp_rng_below(&r, 4);
            u_len[b] = (int32_t)sp_rng_below(&r, U + 1);
            for (int u = 0; u < U; u++)
                labels[b * U + u] = 1 + (int32_t)sp_rng_below(&r, 4);
        }
        rn_input in = {B, T, U, F, x, t_len, labels, u_len};
        const float *lg;
        const int obs = rp_wants_observe(p, step);
        if (rn_forward(&model, &in, ws, obs ? rp_observe : NULL, p, &lg) != RN_OK ||
            rn_loss(lg, labels, t_len, u_len, B, T, U + 1, 5, 0, loss, grad) != 0 ||
            rn_backward(&model, &in, ws, grad) != RN_OK || rp_mask_gradients(p) != 0) {
            fprintf(stderr, "%s: step %lld failed\n", name, (long long)step);
            return 1;
        }
        /* masked gradients: a zero weight after an event has a zero gradient */
        if (step > s.end_step)
            for (int k = 0; k < model.nparams; k++)
                for (int64_t i = 0; model.p[k].prunable && i < model.p[k].size; i++)
                    if (model.p[k].data[i] == 0.0f && model.p[k].grad[i] != 0.0f) {
                        fprintf(stderr, "%s: unmasked gradient %s[%lld]\n", name,
                                model.p[k].name, (long long)i);
                        fails++;
                        break;
                    }
        rn_adam_step(&model, 1e-2, 1.0);
        if (rp_step(p, step) < 0)
            return 1;
        rp_tensor_report rep[RN_MAX_PARAMS];
        const int n = rp_report(p, &model, rep, RN_MAX_PARAMS);
        for (int k = 0; k < n; k++)
            if (!rep[k].mask_ok || !rep[k].export_ok) {
                fprintf(stderr, "%s: step %lld: %s pruned weight or moment nonzero\n", name,
                        (long long)step, rep[k].name);
                fails++;
            }
    }
    rp_tensor_report rep[RN_MAX_PARAMS];
    const int n = rp_report(p, &model, rep, RN_MAX_PARAMS);
    int64_t numel = 0, nnz = 0;
    for (int k = 0; k < n; k++) {
        numel += rep[k].numel;
        nnz += rep[k].nnz;
    }
    const double sp = 1.0 - (double)nnz / (double)numel;
    rp_times tm;
    rp_get_times(p, &tm);
    printf("%-10s %d matrices, sparsity %.4f, %lld events, %lld passes observed\n", name, n,
           sp, (long long)tm.events, (long long)tm.observed);
    if (n != 9 || fabs(sp - 0.75) > 0.02 || tm.events < 5) {
        fprintf(stderr, "%s: wrong count, sparsity or events\n", name);
        fails++;
    }
    if (m->is_csp && strstr(name, "act") && tm.observed == 0) {
        fprintf(stderr, "%s: activation sensing never fed\n", name);
        fails++;
    }
    rp_free(p);
    rn_ws_free(ws);
    rn_model_free(&model);
    return fails != 0;
}

int main(int argc, char **argv)
{
    const uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)seed);
    if (rp_check_version() != 0)
        return 1;
    int fails = 0;
    fails += run_method("gmp", seed);
    fails += run_method("gmp-tensor", seed);
    fails += run_method("csp-act", seed);
    return fails != 0;
}
