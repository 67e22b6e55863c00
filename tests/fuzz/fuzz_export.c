/* Fuzz target: csp_export_inspect() and csp_export_decode() on arbitrary
 * bytes must never crash nor read or write out of bounds, and never write
 * the output when they fail. */
#include <csp/csp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "reseal.h"

#define CAP (1 << 16) /* doubles of output */

static int accepted;

int csp_fuzz_last_accepted(void) { return accepted; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t n = size - 1;
    uint8_t *m = malloc(n > 0 ? n : 1);
    double *dense = malloc(CAP * sizeof(double));
    if (m == NULL || dense == NULL) {
        free(m);
        free(dense);
        return 0;
    }
    if (n > 0)
        memcpy(m, data + 1, n);
    if (data[0] & 1)
        reseal_export(m, n);
    csp_export_info info;
    csp_export_info_init(&info, sizeof info);
    csp_status si = csp_export_inspect(NULL, m, (int64_t)n, &info);
    for (int k = 0; k < 64; k++)
        dense[k] = 42.0;
    /* A stride that leaves gaps when the shape allows, and each dtype. */
    int64_t stride = (si == CSP_OK && info.rows > 1 && info.cols < 64) ? info.cols + 1 : 0;
    int32_t dtype = (int32_t)((data[0] >> 1) % 3);
    csp_status sd = csp_export_decode(NULL, m, (int64_t)n, dense, dtype, stride,
                                      CAP * (int64_t)sizeof(double));
    accepted = si == CSP_OK && sd == CSP_OK;
    /* A header inspect refuses, decode refuses too; one it accepts decodes,
     * or its payload is corrupt, or the output is too small. */
    if (si != CSP_OK ? sd == CSP_OK
                     : !(sd == CSP_OK || sd == CSP_E_BUFFER || sd == CSP_E_CORRUPT)) {
        fprintf(stderr, "fuzz_export: inspect %s but decode %s\n", csp_status_name(si),
                csp_status_name(sd));
        abort();
    }
    if (sd != CSP_OK)
        for (int k = 0; k < 64; k++)
            if (dense[k] != 42.0) {
                fprintf(stderr, "fuzz_export: decode wrote the output and failed\n");
                abort();
            }
    free(m);
    free(dense);
    return 0;
}

/* Seeds: a small pruned tensor exported in every format (N:M has the most
 * structure, so it is seed 0), with float32 and float64 values, of a
 * float32 and a float64 tensor. */
size_t csp_fuzz_seed(int k, uint8_t *buf, size_t cap) {
    static const int32_t formats[] = {CSP_EXPORT_NM, CSP_EXPORT_CSR, CSP_EXPORT_BITMAP};
    if (k < 0 || k >= 3 * 4)
        return 0;
    int32_t format = formats[k % 3];
    int32_t tdtype = (k / 3) % 2 ? CSP_DTYPE_F64 : CSP_DTYPE_F32;
    int32_t vdtype = (k / 6) % 2 ? CSP_DTYPE_F32 : 0; /* 0: the tensor's own */
    csp_context *ctx = NULL;
    csp_schedule *s = NULL;
    csp_pruner *p = NULL;
    csp_tensor *t = NULL;
    double w[6 * 16];
    float wf[6 * 16];
    for (int i = 0; i < 6 * 16; i++) {
        w[i] = (double)((i * 29) % 31) - 15.0 + (double)k / 8.0;
        wf[i] = (float)w[i];
    }
    int64_t shape[2] = {6, 16}, size = 0;
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    csp_pruner_tensor_options to;
    csp_export_options o;
    csp_export_options_init(&o, sizeof o);
    o.format = format;
    o.value_dtype = vdtype;
    if (csp_context_create(&ctx, NULL) != CSP_OK || csp_schedule_create(&s, ctx, &so) != CSP_OK ||
        csp_pruner_create(&p, ctx, s, NULL) != CSP_OK ||
        csp_pruner_tensor_options_init(&to, sizeof to, p) != CSP_OK ||
        (to.granularity = CSP_GRANULARITY_NM, csp_tensor_create(&t, ctx, tdtype == CSP_DTYPE_F64 ? (void *)w : (void *)wf, tdtype, 2,
                          shape, 0, NULL)) != CSP_OK ||
        csp_pruner_add_tensor(p, t, &to, NULL) != CSP_OK || csp_step(p, 0) < 0 ||
        csp_pruner_export(p, 0, &o, NULL, 0, &size) != CSP_OK)
        abort();
    if (cap >= (size_t)size + 1) {
        buf[0] = 0;
        if (csp_pruner_export(p, 0, &o, buf + 1, size, &size) != CSP_OK)
            abort();
    }
    csp_pruner_free(p);
    csp_tensor_free(t);
    csp_schedule_free(s);
    csp_context_free(ctx);
    return (size_t)size + 1;
}
