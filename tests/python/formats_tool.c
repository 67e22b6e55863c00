/* Writes a checkpoint, exports in every format, the library's own decoding
 * of each and the masks into a directory, for formats_check.py to read
 * back with an independent implementation of docs/formats.md.
 *   formats_tool DIR */
#include <csp/csp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void must(csp_context *ctx, csp_status st, const char *what) {
    if (st < 0) {
        fprintf(stderr, "%s: %s: %s\n", what, csp_status_name(st), csp_context_last_error(ctx));
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    const char *dir = argv[1];
    csp_context *ctx;
    csp_context_create(&ctx, NULL);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.begin_step = 0;
    so.end_step = 10;
    so.frequency = 5;
    so.final_sparsity = 0.7;
    csp_schedule *s;
    must(ctx, csp_schedule_create(&s, ctx, &so), "schedule");
    csp_pruner *p;
    must(ctx, csp_pruner_create(&p, ctx, s, NULL), "pruner");
    static float w0[7 * 45];
    static double w1[6 * 16];
    for (int i = 0; i < 7 * 45; i++)
        w0[i] = (float)((i * 7919) % 1013) / 100.0f - 5.0f;
    for (int i = 0; i < 6 * 16; i++)
        w1[i] = (double)((i * 104729) % 997) / 50.0 - 10.0;
    int64_t s0[2] = {7, 40}, s1[3] = {6, 4, 4};
    csp_tensor *t0, *t1;
    must(ctx, csp_tensor_create(&t0, ctx, w0, CSP_DTYPE_F32, 2, s0, 45, "layer0.weight"), "t0");
    must(ctx, csp_tensor_create(&t1, ctx, w1, CSP_DTYPE_F64, 3, s1, 0, NULL), "t1");
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, p);
    to.granularity = CSP_GRANULARITY_ROW;
    must(ctx, csp_pruner_add_tensor(p, t0, &to, NULL), "add t0");
    to.granularity = CSP_GRANULARITY_NM;
    must(ctx, csp_pruner_add_tensor(p, t1, &to, NULL), "add t1");
    for (int64_t step = 0; step <= 7; step++)
        must(ctx, csp_step(p, step), "step");

    int64_t size;
    must(ctx, csp_pruner_save(p, NULL, 0, &size), "save size");
    uint8_t *buf = malloc((size_t)size);
    must(ctx, csp_pruner_save(p, buf, size, &size), "save");
    put(dir, "checkpoint.bin", buf, (size_t)size);
    free(buf);
    uint8_t m0[7 * 40], m1[6 * 16];
    must(ctx, csp_pruner_mask_bytes(p, 0, m0, sizeof m0), "mask 0");
    must(ctx, csp_pruner_mask_bytes(p, 1, m1, sizeof m1), "mask 1");
    put(dir, "mask0.bin", m0, sizeof m0);
    put(dir, "mask1.bin", m1, sizeof m1);

    static const struct {
        int32_t tensor, format, value_dtype;
        const char *name;
    } ex[] = {
        {0, CSP_EXPORT_CSR, 0, "t0_csr"},       {0, CSP_EXPORT_BITMAP, 0, "t0_bitmap"},
        {1, CSP_EXPORT_CSR, 0, "t1_csr"},       {1, CSP_EXPORT_BITMAP, CSP_DTYPE_F32, "t1_bitmap"},
        {1, CSP_EXPORT_NM, 0, "t1_nm"},         {1, CSP_EXPORT_NM, CSP_DTYPE_F32, "t1_nm32"},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        csp_export_options o;
        csp_export_options_init(&o, sizeof o);
        o.format = ex[i].format;
        o.value_dtype = ex[i].value_dtype;
        must(ctx, csp_pruner_export(p, ex[i].tensor, &o, NULL, 0, &size), "export size");
        buf = malloc((size_t)size);
        must(ctx, csp_pruner_export(p, ex[i].tensor, &o, buf, size, &size), "export");
        char name[64];
        snprintf(name, sizeof name, "%s.bin", ex[i].name);
        put(dir, name, buf, (size_t)size);
        double dense[7 * 40];
        must(ctx, csp_export_decode(ctx, buf, size, dense, CSP_DTYPE_F64, 0, sizeof dense),
             "decode");
        int64_t numel = ex[i].tensor == 0 ? 7 * 40 : 6 * 16;
        snprintf(name, sizeof name, "%s.dense", ex[i].name);
        put(dir, name, dense, (size_t)numel * sizeof(double));
        free(buf);
    }
    /* The weights as the host holds them (contiguous copies). */
    double d0[7 * 40];
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < 40; c++)
            d0[r * 40 + c] = w0[r * 45 + c];
    put(dir, "w0.bin", d0, sizeof d0);
    put(dir, "w1.bin", w1, sizeof w1);
    csp_pruner_free(p);
    csp_schedule_free(s);
    csp_tensor_free(t0);
    csp_tensor_free(t1);
    csp_context_free(ctx);
    return 0;
}
