/* Fuzz target: csp_pruner_load() on arbitrary bytes must never crash, never
 * read out of bounds, leave the pruner unchanged whenever it fails, and
 * whenever it accepts a file, save it back to the same bytes (but for what
 * docs/formats.md tolerates: see same_bytes()). Build with -Dfuzz=true
 * (libFuzzer with clang; a standalone driver otherwise): see
 * docs/formats.md, "Fuzzing". */
#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <stdbool.h>
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
    /* Seeds: the pruner's state before any step, after steps 0..2, 0..5
     * (= ref) and 0..9. */
    uint8_t seeds[4][8192];
    int64_t seed_size[4];
} W;
static int ready, accepted;

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
        csp_pruner_create(&W.p, W.ctx, W.sched, NULL) != CSP_OK ||
        csp_pruner_set_experimental(W.p, -1, CSP_X_ADAPT_BOUND, 0.3) != CSP_OK) /* ADPT */
        die("setup");
    for (int i = 0; i < 4 * 24; i++)
        W.w0[i] = (float)((i * 37) % 101) - 50.0f;
    for (int i = 0; i < 3 * 8; i++)
        W.w1[i] = (double)((i * 13) % 29) - 14.0;
    int64_t s0[2] = {4, 24}, s1[2] = {3, 8}, s2[1] = {5};
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, W.p);
    to.granularity = CSP_GRANULARITY_ROW;
    if (csp_tensor_create(&W.t[0], W.ctx, W.w0, CSP_DTYPE_F32, 2, s0, 0, "w0") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[0], &to, NULL) != CSP_OK)
        die("tensor 0");
    to.granularity = CSP_GRANULARITY_NM;
    if (csp_tensor_create(&W.t[1], W.ctx, W.w1, CSP_DTYPE_F64, 2, s1, 0, NULL) != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[1], &to, NULL) != CSP_OK)
        die("tensor 1");
    to.granularity = CSP_GRANULARITY_TENSOR;
    to.exclude = 1;
    if (csp_tensor_create(&W.t[2], W.ctx, W.w2, CSP_DTYPE_F32, 1, s2, 0, "bias") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[2], &to, NULL) != CSP_OK)
        die("tensor 2");
    /* A CSP tensor: activations sensing (SENS), FISTA (WARM). */
    for (int i = 0; i < 3 * 8; i++)
        W.w3[i] = (float)((i * 17) % 23) - 11.0f;
    int64_t s3[2] = {3, 8};
    csp_pruner_tensor_options_init(&to, sizeof to, W.p);
    to.granularity = CSP_GRANULARITY_ROW;
    to.sensing.kind = CSP_SENSING_ACTIVATIONS;
    to.solver.method = CSP_SOLVER_FISTA;
    if (csp_tensor_create(&W.t[3], W.ctx, W.w3, CSP_DTYPE_F32, 2, s3, 0, "cs") != CSP_OK ||
        csp_pruner_add_tensor(W.p, W.t[3], &to, NULL) != CSP_OK)
        die("tensor 3");
    if (csp_pruner_save(W.p, W.seeds[0], sizeof W.seeds[0], &W.seed_size[0]) != CSP_OK)
        die("save");
    for (int64_t step = 0; step <= 9; step++) {
        float x[2 * 8];
        for (int i = 0; i < 2 * 8; i++)
            x[i] = (float)((i * 7 + (int)step * 3) % 13) - 6.0f;
        if (csp_pruner_observe(W.p, 3, x, 2, 8) != CSP_OK || csp_step(W.p, step) < 0)
            die("step");
        int k = step == 2 ? 1 : step == 5 ? 2 : step == 9 ? 3 : 0;
        if (k > 0 &&
            csp_pruner_save(W.p, W.seeds[k], sizeof W.seeds[k], &W.seed_size[k]) != CSP_OK)
            die("save");
    }
    memcpy(W.ref, W.seeds[2], (size_t)W.seed_size[2]);
    W.ref_size = W.seed_size[2];
    if (csp_pruner_load(W.p, W.ref, W.ref_size) != CSP_OK)
        die("reference load");
}

/* An accepted checkpoint saves back to its own bytes (docs/formats.md,
 * "Common rules"), except for what the format tolerates: the writer's
 * version (and so the header and file CRCs). Files laid out otherwise than
 * libcsp writes them (a newer minor or a longer header, other sections or
 * another order, a skipped optional section) are not compared. Returns the
 * offset of the first difference, or -1. */
static long same_bytes(const uint8_t *in, const uint8_t *out, size_t n) {
    if (n < 56 || csp__ld_u32(in + 12) != 48 || csp__ld_u16(in + 10) != 0 ||
        csp__ld_u32(in + 24) != csp__ld_u32(out + 24))
        return -1;
    uint32_t count = csp__ld_u32(in + 24);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *a = in + 48 + 40 * (size_t)i, *b = out + 48 + 40 * (size_t)i;
        if (memcmp(a, b, 12) != 0 || memcmp(a + 16, b + 16, 24) != 0)
            return -1; /* another table */
    }
    for (size_t k = 0; k < n; k++) {
        bool skip = (k >= 32 && k < 36) || (k >= 44 && k < 48) || (k >= n - 8 && k < n - 4);
        if (!skip && in[k] != out[k])
            return (long)k;
    }
    return -1;
}

/* Do two checkpoints have the same section table (tags, flags, versions,
 * offsets, lengths)? */
static bool same_table(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    if (na < 56 || nb < 56 || csp__ld_u32(a + 24) != csp__ld_u32(b + 24))
        return false;
    uint32_t count = csp__ld_u32(a + 24);
    if (48 + 40 * (size_t)count > na || 48 + 40 * (size_t)count > nb)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *x = a + 48 + 40 * (size_t)i, *y = b + 48 + 40 * (size_t)i;
        if (memcmp(x, y, 12) != 0 || memcmp(x + 16, y + 16, 24) != 0)
            return false;
    }
    return true;
}

int csp_fuzz_last_accepted(void) { return accepted; }

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
    accepted = st == CSP_OK;
    if (st != CSP_OK) {
        if (csp_status_str(st)[0] == '\0' || csp_context_last_error(W.ctx)[0] == '\0')
            die("an error without a message");
        if (csp_pruner_save(W.p, after, sizeof after, &sa) != CSP_OK || sa != sb ||
            memcmp(before, after, (size_t)sa) != 0)
            die("a failed load changed the pruner");
    } else {
        /* A valid checkpoint of this configuration: it must round-trip,
         * unless an older writer laid it out otherwise (fewer CSPC records,
         * say: its section table then differs). */
        if (csp_pruner_save(W.p, after, sizeof after, &sa) != CSP_OK)
            die("an accepted checkpoint cannot be saved");
        if ((size_t)sa != n && same_table(m, n, after, (size_t)sa))
            die("an accepted checkpoint does not save back to its size");
        long diff = (size_t)sa == n ? same_bytes(m, after, n) : -1;
        if (diff >= 0) {
            fprintf(stderr, "fuzz_checkpoint: byte %ld: input 0x%02x, saved 0x%02x\n", diff,
                    m[diff], after[diff]);
            die("an accepted checkpoint saves back to other bytes");
        }
        if (csp_pruner_load(W.p, W.ref, W.ref_size) != CSP_OK)
            die("reference reload");
    }
    free(m);
    return 0;
}

/* Seeds 0..3: the states above; 4: state 2 with the reseal flag. */
size_t csp_fuzz_seed(int k, uint8_t *buf, size_t cap) {
    setup();
    static const int state[] = {2, 0, 1, 3, 2};
    if (k < 0 || k >= (int)(sizeof state / sizeof state[0]))
        return 0;
    int s = state[k];
    size_t n = (size_t)W.seed_size[s] + 1;
    if (cap >= n) {
        buf[0] = k == 4 ? 1 : 0;
        memcpy(buf + 1, W.seeds[s], (size_t)W.seed_size[s]);
    }
    return n;
}
