/* Fuzz target: csp_pruner_load() on arbitrary bytes must never crash, never
 * read out of bounds, and leave the pruner unchanged whenever it fails.
 * Build with -Dfuzz=true (libFuzzer with clang; a standalone driver
 * otherwise): see docs/formats.md, "Fuzzing". */
#include <csp/csp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "reseal.h"

static struct {
    csp_context *ctx;
    csp_schedule *sched;
    csp_pruner *p;
    csp_tensor *t[4];
    float w3[3 * 8];
    float w0[4 * 24];
    double w1[3 * 8];
    float w2[5];
    uint8_t ref[8192];
    int64_t ref_size;
} W;
static int ready;

static void die(const char *what) {
    fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, csp_context_last_error(W.ctx));
    abort();
}

static void setup(void) {
    if (ready)
        return;
    ready = 1;
    if (csp_context_create(&W.ctx, NULL) != CSP_OK)
        abort();
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.begin_step = 1;
    so.end_step = 9;
    so.frequency = 2;
    so.final_sparsity = 0.8;
    if (csp_schedule_create(&W.sched, W.ctx, &so) != CSP_OK ||
        csp_pruner_create(&W.p, W.ctx, W.sched, NULL) != CSP_OK)
        die("setup");
    for (int i = 0; i < 4 * 24; i++)
        W.w0[i] = (float)((i * 37) % 101) - 50.0f;
    for (int i = 0; i < 3 * 8; i++)
        W.w1[i] = (double)((i * 13) % 29) - 14.0;
    int64_t s0[2] = {4, 24}, s1[2] = {3, 8}, s2[1] = {5};
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to);
    to.granularity = CSP_GRANULARITY_ROW;
    if (csp_tensor_create(&W.t[0], W.ctx, W.w0, CSP_DTYPE_F32, 2, s0, 0, "w0") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[0], &to, NULL) != CSP_OK)
        die("tensor 0");
    to.granularity = CSP_GRANULARITY_NM;
    if (csp_tensor_create(&W.t[1], W.ctx, W.w1, CSP_DTYPE_F64, 2, s1, 0, NULL) != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[1], &to, NULL) != CSP_OK)
        die("tensor 1");
    to.granularity = 0;
    to.exclude = 1;
    if (csp_tensor_create(&W.t[2], W.ctx, W.w2, CSP_DTYPE_F32, 1, s2, 0, "bias") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[2], &to, NULL) != CSP_OK)
        die("tensor 2");
    /* A CSP tensor: activations sensing (SENS), FISTA (WARM). */
    for (int i = 0; i < 3 * 8; i++)
        W.w3[i] = (float)((i * 17) % 23) - 11.0f;
    int64_t s3[2] = {3, 8};
    csp_pruner_tensor_options_init(&to, sizeof to);
    to.granularity = CSP_GRANULARITY_ROW;
    to.sensing = CSP_SENSING_ACTIVATIONS;
    to.solver = CSP_SOLVER_FISTA;
    if (csp_tensor_create(&W.t[3], W.ctx, W.w3, CSP_DTYPE_F32, 2, s3, 0, "cs") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[3], &to, NULL) != CSP_OK)
        die("tensor 3");
    for (int64_t step = 0; step <= 5; step++) {
        float x[2 * 8];
        for (int i = 0; i < 2 * 8; i++)
            x[i] = (float)((i * 7 + (int)step * 3) % 13) - 6.0f;
        if (csp_pruner_observe(W.p, 3, x, 2, 8) != CSP_OK || csp_step(W.p, step) < 0)
            die("step");
    }
    if (csp_pruner_save(W.p, W.ref, sizeof W.ref, &W.ref_size) != CSP_OK)
        die("save");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size == 0)
        return 0;
    size_t n = size - 1;
    uint8_t *m = malloc(n > 0 ? n : 1);
    if (m == NULL)
        return 0;
    if (n > 0)
        memcpy(m, data + 1, n);
    if (data[0] & 1)
        reseal_checkpoint(m, n);
    static uint8_t before[8192], after[8192];
    int64_t sb = 0, sa = 0;
    if (csp_pruner_save(W.p, before, sizeof before, &sb) != CSP_OK)
        die("save before");
    csp_status st = csp_pruner_load(W.p, m, (int64_t)n);
    if (st != CSP_OK) {
        if (csp_status_str(st)[0] == '\0' || csp_context_last_error(W.ctx)[0] == '\0')
            die("an error without a message");
        if (csp_pruner_save(W.p, after, sizeof after, &sa) != CSP_OK || sa != sb ||
            memcmp(before, after, (size_t)sa) != 0)
            die("a failed load changed the pruner");
    } else {
        /* A valid checkpoint of this configuration: it must round-trip. */
        if (csp_pruner_save(W.p, after, sizeof after, &sa) != CSP_OK || (size_t)sa != n)
            die("an accepted checkpoint does not save back to its size");
        if (csp_pruner_load(W.p, W.ref, W.ref_size) != CSP_OK)
            die("reference reload");
    }
    free(m);
    return 0;
}

size_t csp_fuzz_seed(uint8_t *buf, size_t cap) {
    setup();
    size_t n = (size_t)W.ref_size + 1;
    if (cap >= n) {
        buf[0] = 0;
        memcpy(buf + 1, W.ref, (size_t)W.ref_size);
    }
    return n;
}
