/* Minimal libcsp program: gradual magnitude pruning (GMP) of one weight
 * matrix and its momentum buffer with a cubic schedule, driven by
 * csp_step() after every (here simulated) optimizer update. Built out of
 * tree with
 *   cc minimal.c $(pkg-config --cflags --libs csp)
 */
#include <csp/csp.h>

#include <stdio.h>

#define ROWS 4
#define COLS 8

int main(void) {
    if (CSP_CHECK_VERSION() != CSP_OK) {
        fprintf(stderr, "libcsp %s does not match header %s\n", csp_version_string(),
                CSP_VERSION_STRING);
        return 1;
    }
    csp_context_options opts;
    csp_context_options_init(&opts, sizeof opts);
    opts.seed = 42;
    csp_context *ctx = NULL;
    csp_status st = csp_context_create(&ctx, &opts);
    if (st != CSP_OK) {
        fprintf(stderr, "csp_context_create: %s\n", csp_status_str(st));
        return 1;
    }

    /* The host owns its weights and optimizer state; libcsp views them. */
    static float weights[ROWS][COLS], momentum[ROWS][COLS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++) {
            weights[r][c] = (float)((r * 13 + c * 7) % 17) / 8.0f - 1.0f;
            momentum[r][c] = 0.1f;
        }
    int64_t shape[2] = {ROWS, COLS};
    csp_tensor *w = NULL, *m = NULL;
    csp_schedule *sched = NULL;
    csp_pruner *pruner = NULL;
    int32_t index = -1;

    /* Zhu & Gupta's cubic ramp from 0 to 75% over steps 0..100, an event
     * every 10 steps (TF-MOT PolynomialDecay(0, 0.75, 0, 100, 3, 10)). */
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_POLYNOMIAL;
    so.initial_sparsity = 0.0;
    so.final_sparsity = 0.75;
    so.begin_step = 0;
    so.end_step = 100;
    so.frequency = 10;
    if ((st = csp_tensor_create(&w, ctx, weights, CSP_DTYPE_F32, 2, shape, 0, "fc.weight")) ||
        (st = csp_tensor_create(&m, ctx, momentum, CSP_DTYPE_F32, 2, shape, 0, "fc.momentum")) ||
        (st = csp_schedule_create(&sched, ctx, &so)) ||
        (st = csp_pruner_create(&pruner, ctx, sched, NULL)) ||
        (st = csp_pruner_add_tensor(pruner, w, NULL, &index)) ||
        (st = csp_pruner_add_companion(pruner, index, m))) {
        fprintf(stderr, "setup: %s: %s\n", csp_status_name(st), csp_context_last_error(ctx));
        return 1;
    }

    for (int64_t step = 0; step <= 120; step++) {
        /* ... forward, backward, optimizer update (simulated) ... */
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < COLS; c++) {
                weights[r][c] += 0.001f * (float)((r + c + step) % 3 - 1);
                momentum[r][c] += 0.01f;
            }
        st = csp_step(pruner, step);
        if (st < 0) {
            fprintf(stderr, "csp_step: %s\n", csp_context_last_error(ctx));
            return 1;
        }
        if (st == CSP_PRUNED) {
            csp_tensor_stats stats;
            csp_tensor_stats_init(&stats, sizeof stats);
            csp_pruner_tensor_stats(pruner, index, &stats);
            printf("step %3lld: pruned to %2lld of %lld weights kept (target %.3f)\n",
                   (long long)step, (long long)stats.nnz, (long long)stats.numel,
                   stats.target_sparsity);
        }
    }
    uint8_t mask[ROWS * COLS];
    csp_pruner_mask_bytes(pruner, index, mask, ROWS * COLS);
    int zeroed = 0;
    for (int i = 0; i < ROWS * COLS; i++)
        zeroed += !mask[i] && weights[i / COLS][i % COLS] == 0.0f &&
                  momentum[i / COLS][i % COLS] == 0.0f;
    uint64_t digest = 0;
    csp_pruner_digest(pruner, &digest);
    printf("libcsp %s: %d weights and their momentum pruned, mask digest %016llx\n",
           csp_version_string(), zeroed, (unsigned long long)digest);

    /* Bad input gives a status and a message, never a crash. */
    st = csp_step(pruner, 50); /* steps never go back */
    printf("bad input -> %s: %s\n", csp_status_name(st), csp_context_last_error(ctx));

    csp_pruner_free(pruner);
    csp_schedule_free(sched);
    csp_tensor_free(m);
    csp_tensor_free(w);
    csp_context_free(ctx);
    return zeroed == ROWS * COLS - ROWS * COLS / 4 ? 0 : 1;
}
