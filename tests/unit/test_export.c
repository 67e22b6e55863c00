/* Compressed export: round trips of every format, value dtype, decode
 * dtype and stride, for contiguous and strided tensors of rank 1 to 4 with
 * empty rows, fully kept rows and special values; index widths; N:M
 * packing for several N:M (1 to 5 index bits, M not a power of two,
 * padded groups) and its refusals; sizes and stats against dense; every
 * truncation and bit flip of an export; forged headers and payloads behind
 * valid CRCs; random mutations; bad arguments. Masks are set white-box so
 * every pattern can be made. */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "../fuzz/reseal.h"
#include "prune/mask.h"
#include "prune/pruner_internal.h"

typedef struct {
    int32_t rank;
    int64_t shape[4];
    int64_t stride; /* 0: contiguous */
    int32_t dtype;
    int32_t nm_n, nm_m; /* an N:M its N:M-valid mask satisfies */
} tspec;

static const tspec specs[] = {
    {2, {7, 36}, 0, CSP_DTYPE_F32, 2, 4},
    {2, {6, 40}, 45, CSP_DTYPE_F64, 3, 8},
    {1, {96}, 0, CSP_DTYPE_F32, 1, 2},
    {3, {4, 3, 8}, 0, CSP_DTYPE_F64, 1, 3},
    {4, {3, 2, 2, 16}, 70, CSP_DTYPE_F32, 5, 32},
};
#define NSPECS ((int)(sizeof specs / sizeof specs[0]))

typedef struct {
    csp_context *ctx;
    csp_schedule *sched;
    csp_pruner *p;
    int nt;
    void *w[8];
    csp_tensor *t[8];
    int64_t rows[8], cols[8], ld[8];
    int32_t dtype[8];
} fixture;

static void fx_init(fixture *f) {
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(csp_context_create(&f->ctx, NULL), CSP_OK);
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    so.kind = CSP_SCHEDULE_CONSTANT;
    so.final_sparsity = 0.5;
    ck_assert_int_eq(csp_schedule_create(&f->sched, f->ctx, &so), CSP_OK);
    ck_assert_int_eq(csp_pruner_create(&f->p, f->ctx, f->sched, NULL), CSP_OK);
}

static int fx_add(fixture *f, int32_t rank, const int64_t *shape, int64_t stride, int32_t dtype,
                  const csp_pruner_tensor_options *to, test_rng *r) {
    int i = f->nt++;
    int64_t numel = 1;
    for (int d = 0; d < rank; d++)
        numel *= shape[d];
    int64_t rows = rank == 1 ? 1 : shape[0], cols = numel / rows;
    int64_t ld = stride ? stride : cols;
    size_t es = dtype == CSP_DTYPE_F64 ? 8 : 4;
    f->w[i] = malloc((size_t)((rows - 1) * ld + cols) * es);
    for (int64_t k = 0; k < (rows - 1) * ld + cols; k++) {
        double v = test_rng_normal(r);
        uint64_t pick = test_rng_u64(r) % 50;
        if (pick == 0)
            v = -0.0;
        else if (pick == 1)
            v = 0.0;
        else if (pick == 2)
            v = 1e-310; /* subnormal in float64, 0 in float32 */
        else if (pick == 3)
            v = NAN;
        if (dtype == CSP_DTYPE_F64)
            ((double *)f->w[i])[k] = v;
        else
            ((float *)f->w[i])[k] = (float)v;
    }
    ck_assert_int_eq(csp_tensor_create(&f->t[i], f->ctx, f->w[i], dtype, rank, shape, stride, NULL),
                     CSP_OK);
    int32_t idx;
    ck_assert_status(f->ctx, csp_pruner_add_tensor(f->p, f->t[i], to, &idx), CSP_OK);
    ck_assert_int_eq(idx, i);
    f->rows[i] = rows;
    f->cols[i] = cols;
    f->ld[i] = ld;
    f->dtype[i] = dtype;
    return i;
}

/* Replace NaNs (csp_step refuses them) by 1. */
static void no_nan(fixture *f, int i) {
    int64_t n = (f->rows[i] - 1) * f->ld[i] + f->cols[i];
    for (int64_t k = 0; k < n; k++) {
        if (f->dtype[i] == CSP_DTYPE_F64 && isnan(((double *)f->w[i])[k]))
            ((double *)f->w[i])[k] = 1.0;
        if (f->dtype[i] == CSP_DTYPE_F32 && isnan(((float *)f->w[i])[k]))
            ((float *)f->w[i])[k] = 1.0f;
    }
}

static void fx_free(fixture *f) {
    csp_pruner_free(f->p);
    csp_schedule_free(f->sched);
    for (int i = 0; i < f->nt; i++) {
        csp_tensor_free(f->t[i]);
        free(f->w[i]);
    }
    csp_context_free(f->ctx);
}

/* Set tensor @p i's mask (white-box): row 0 fully kept, row 1 (if any)
 * empty, the others random with keep probability @p q; or, with @p n > 0,
 * N:M-valid: 0..n kept per group of m, one row with exactly n per group. */
static void set_mask(fixture *f, int i, test_rng *r, double q, int n, int m) {
    csp__ptensor *pt = &f->p->tensors[i];
    int64_t rows = f->rows[i], cols = f->cols[i];
    memset(pt->mask, 0, (size_t)csp__mask_words(rows * cols) * sizeof(uint64_t));
    for (int64_t row = 0; row < rows; row++) {
        for (int64_t g = 0; g < cols; g += (n > 0 ? m : cols)) {
            int64_t glen = n > 0 ? m : cols;
            int want = n > 0 ? (row == 0 ? n : (int)(test_rng_u64(r) % (uint64_t)(n + 1))) : -1;
            if (row == 1 && rows > 2)
                want = 0;
            for (int64_t c = 0; c < glen; c++) {
                bool keep;
                if (n > 0) {
                    /* keep `want` of the group, at random positions */
                    int64_t left = glen - c;
                    keep = want > 0 && (int64_t)(test_rng_u64(r) % (uint64_t)left) < want;
                    if (keep)
                        want--;
                } else {
                    keep = row == 0 || (!(row == 1 && rows > 2) && test_rng_uniform(r) < q);
                }
                if (keep) {
                    int64_t bit = row * cols + g + c;
                    pt->mask[bit / 64] |= 1ULL << (bit % 64);
                }
            }
        }
    }
    pt->nnz = csp__mask_popcount(pt->mask, rows * cols);
}

/* The value a kept weight decodes to, as @p od, through @p vd. */
static void expected_value(const fixture *f, int i, int64_t r, int64_t c, int32_t vd, int32_t od,
                           uint8_t *out) {
    double d;
    float fl;
    const void *src;
    if (f->dtype[i] == CSP_DTYPE_F64) {
        d = ((const double *)f->w[i])[r * f->ld[i] + c];
        if (vd == CSP_DTYPE_F32) {
            fl = (float)d;
            if (od == CSP_DTYPE_F32) {
                memcpy(out, &fl, 4);
                return;
            }
            d = (double)fl;
        }
        if (od == CSP_DTYPE_F64) {
            memcpy(out, &d, 8);
        } else {
            fl = (float)d;
            memcpy(out, &fl, 4);
        }
        return;
    }
    fl = ((const float *)f->w[i])[r * f->ld[i] + c];
    src = &fl;
    if (vd == CSP_DTYPE_F64) {
        d = (double)fl;
        if (od == CSP_DTYPE_F64) {
            memcpy(out, &d, 8);
        } else {
            fl = (float)d;
            memcpy(out, &fl, 4);
        }
        return;
    }
    if (od == CSP_DTYPE_F32) {
        memcpy(out, src, 4);
    } else {
        d = (double)fl;
        memcpy(out, &d, 8);
    }
}

static uint8_t *export_of(const fixture *f, int i, const csp_export_options *o, int64_t *size) {
    ck_assert_status(f->ctx, csp_pruner_export(f->p, i, o, NULL, 0, size), CSP_OK);
    ck_assert_int_eq(*size % 8, 0);
    uint8_t *buf = malloc((size_t)*size + 8);
    memset(buf, 0xEE, (size_t)*size + 8);
    int64_t again = -1;
    ck_assert_status(f->ctx, csp_pruner_export(f->p, i, o, buf, *size + 8, &again), CSP_OK);
    ck_assert_int_eq(again, *size);
    ck_assert_int_eq(buf[*size], 0xEE);
    return buf;
}

/* Decode @p buf every way and compare with the tensor through its mask. */
static void check_round_trip(const fixture *f, int i, const uint8_t *buf, int64_t size,
                             int32_t vd, const char *what) {
    const csp__ptensor *pt = &f->p->tensors[i];
    int64_t rows = f->rows[i], cols = f->cols[i];
    for (int odi = 0; odi < 3; odi++)
        for (int si = 0; si < 2; si++) {
            int32_t od_arg = odi == 0 ? 0 : odi; /* 0, F32, F64 */
            int32_t od = od_arg == 0 ? vd : od_arg;
            size_t es = od == CSP_DTYPE_F64 ? 8 : 4;
            int64_t ld = si == 0 ? cols : cols + 5;
            int64_t cap = ((rows - 1) * ld + cols) * (int64_t)es;
            uint8_t *dense = malloc((size_t)cap + 8);
            memset(dense, 0x5A, (size_t)cap + 8);
            ck_assert_status(f->ctx,
                             csp_export_decode(f->ctx, buf, size, dense, od_arg, si ? ld : 0, cap),
                             CSP_OK);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t c = 0; c < cols; c++) {
                    int64_t bit = r * cols + c;
                    uint8_t want[8] = {0};
                    bool kept = pt->mask == NULL || ((pt->mask[bit / 64] >> (bit % 64)) & 1);
                    if (kept)
                        expected_value(f, i, r, c, vd, od, want);
                    REQUIRE(memcmp(dense + (size_t)(r * ld + c) * es, want, es) == 0,
                            "%s: decode dtype %d stride %lld: element (%lld, %lld) differs", what,
                            (int)od, (long long)ld, (long long)r, (long long)c);
                }
                if (r + 1 < rows) /* the gap between rows is untouched */
                    for (int64_t g = cols * (int64_t)es; g < ld * (int64_t)es; g++)
                        REQUIRE(dense[(size_t)(r * ld) * es + (size_t)g] == 0x5A,
                                "%s: gap written", what);
            }
            REQUIRE(dense[cap] == 0x5A, "%s: wrote past the end", what);
            free(dense);
        }
}

static void check_info(const fixture *f, int i, const uint8_t *buf, int64_t size, int32_t format,
                       int32_t vd, int64_t nnz) {
    csp_export_info info;
    csp_export_info_init(&info, sizeof info);
    ck_assert_status(f->ctx, csp_export_inspect(f->ctx, buf, size, &info), CSP_OK);
    const csp_tensor *t = f->t[i];
    ck_assert_int_eq(info.format, format);
    ck_assert_int_eq(info.value_dtype, vd);
    ck_assert_int_eq(info.rank, csp_tensor_rank(t));
    for (int d = 0; d < 4; d++)
        ck_assert_int_eq(info.shape[d], d < info.rank ? csp_tensor_dim(t, d) : 0);
    ck_assert_int_eq(info.rows, f->rows[i]);
    ck_assert_int_eq(info.cols, f->cols[i]);
    ck_assert_int_eq(info.nnz, nnz);
    ck_assert_int_eq(info.bytes, size);
    ck_assert_int_eq(info.version, 1);
    if (format == CSP_EXPORT_CSR) {
        ck_assert_int_eq(info.index_bytes, f->cols[i] < 65536 ? 2 : 4);
        ck_assert_int_eq(info.pointer_bytes, 4);
    }
}

START_TEST(test_round_trips) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    fixture f;
    fx_init(&f);
    for (int s = 0; s < NSPECS; s++)
        fx_add(&f, specs[s].rank, specs[s].shape, specs[s].stride, specs[s].dtype, NULL, &r);
    for (int pass = 0; pass < 2; pass++) { /* random masks, then N:M-valid ones */
        for (int s = 0; s < NSPECS; s++) {
            set_mask(&f, s, &r, 0.3, pass ? specs[s].nm_n : 0, specs[s].nm_m);
            for (int32_t format = CSP_EXPORT_CSR; format <= CSP_EXPORT_NM; format++) {
                if (format == CSP_EXPORT_NM && pass == 0)
                    continue;
                for (int32_t vdo = 0; vdo <= CSP_DTYPE_F64; vdo++) {
                    csp_export_options o;
                    csp_export_options_init(&o, sizeof o);
                    o.format = format;
                    o.value_dtype = vdo;
                    if (format == CSP_EXPORT_NM) {
                        o.nm_n = specs[s].nm_n;
                        o.nm_m = specs[s].nm_m;
                    }
                    int64_t size;
                    uint8_t *buf = export_of(&f, s, &o, &size);
                    int32_t vd = vdo == 0 ? specs[s].dtype : vdo;
                    char what[96];
                    snprintf(what, sizeof what, "tensor %d pass %d format %d values %d", s, pass,
                             format, vd);
                    check_info(&f, s, buf, size, format, vd, f.p->tensors[s].nnz);
                    check_round_trip(&f, s, buf, size, vd, what);
                    /* The stats agree with the export. */
                    csp_export_stats st;
                    csp_export_stats_init(&st, sizeof st);
                    ck_assert_status(f.ctx, csp_pruner_export_stats(f.p, s, &o, &st), CSP_OK);
                    ck_assert_int_eq(st.bytes, size);
                    ck_assert_int_eq(st.header_bytes + st.index_bytes + st.value_bytes, size);
                    ck_assert_int_eq(st.numel, f.rows[s] * f.cols[s]);
                    ck_assert_int_eq(st.nnz, f.p->tensors[s].nnz);
                    ck_assert_int_eq(st.dense_bytes,
                                     st.numel * (specs[s].dtype == CSP_DTYPE_F64 ? 8 : 4));
                    ck_assert(fabs(st.ratio - (double)size / (double)st.dense_bytes) < 1e-15);
                    free(buf);
                }
            }
        }
    }
    fx_free(&f);
}
END_TEST

/* Exact sizes: the documented layouts, byte for byte. */
static int64_t pad8(int64_t n) { return (n + 7) / 8 * 8; }

START_TEST(test_sizes_and_index_widths) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    fixture f;
    fx_init(&f);
    int64_t s1[2] = {2, 65535}, s2[2] = {2, 65536}, s3[1] = {70000};
    fx_add(&f, 2, s1, 0, CSP_DTYPE_F32, NULL, &r);
    fx_add(&f, 2, s2, 0, CSP_DTYPE_F32, NULL, &r);
    fx_add(&f, 1, s3, 0, CSP_DTYPE_F64, NULL, &r);
    int64_t want_idx[3] = {2, 4, 4};
    for (int i = 0; i < 3; i++) {
        set_mask(&f, i, &r, 0.1, 0, 0);
        int64_t nnz = f.p->tensors[i].nnz, rows = f.rows[i], numel = rows * f.cols[i];
        int64_t vs = f.dtype[i] == CSP_DTYPE_F64 ? 8 : 4;
        csp_export_options o;
        csp_export_options_init(&o, sizeof o);
        int64_t size;
        uint8_t *buf = export_of(&f, i, &o, &size);
        ck_assert_int_eq(size, 80 + pad8((rows + 1) * 4) + pad8(nnz * want_idx[i]) +
                                   pad8(nnz * vs));
        csp_export_info info;
        csp_export_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_export_inspect(NULL, buf, size, &info), CSP_OK);
        ck_assert_int_eq(info.index_bytes, want_idx[i]);
        check_round_trip(&f, i, buf, size, f.dtype[i], "wide");
        free(buf);
        o.format = CSP_EXPORT_BITMAP;
        o.value_dtype = CSP_DTYPE_F32;
        ck_assert_int_eq(csp_pruner_export(f.p, i, &o, NULL, 0, &size), CSP_OK);
        ck_assert_int_eq(size, 80 + pad8((numel + 7) / 8) + pad8(nnz * 4));
    }
    fx_free(&f);
}
END_TEST

/* The N:M layout through a pruner with N:M granularity, the tensor's own
 * N:M, padded groups, and the refusals. */
START_TEST(test_nm) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    fixture f;
    fx_init(&f);
    csp_pruner_tensor_options to;
    csp_pruner_tensor_options_init(&to, sizeof to, f.p);
    to.granularity = CSP_GRANULARITY_NM;
    to.nm_n = 2;
    to.nm_m = 4;
    int64_t shape[2] = {16, 32};
    int a = fx_add(&f, 2, shape, 0, CSP_DTYPE_F32, &to, &r);
    to.nm_n = 1;
    to.final_sparsity = 0.75; /* the schedule's 0.5 scaled: 1 of 4 kept */
    int b = fx_add(&f, 2, shape, 40, CSP_DTYPE_F64, &to, &r); /* 1:4 */
    int c = fx_add(&f, 2, shape, 0, CSP_DTYPE_F32, NULL, &r);  /* tensor granularity */
    csp_pruner_tensor_options_init(&to, sizeof to, f.p);
    to.exclude = 1;
    int d = fx_add(&f, 2, shape, 0, CSP_DTYPE_F32, &to, &r);
    for (int i = 0; i < 3; i++)
        no_nan(&f, i);
    ck_assert_status(f.ctx, csp_step(f.p, 0), CSP_PRUNED);

    csp_export_options o;
    csp_export_options_init(&o, sizeof o);
    o.format = CSP_EXPORT_NM;
    int64_t size;
    uint8_t *buf = export_of(&f, a, &o, &size);
    /* 2:4 of 16 x 32: 256 value slots of 4 bytes, 256 2-bit indices. */
    ck_assert_int_eq(size, 80 + 256 * 4 + 64);
    csp_export_info info;
    csp_export_info_init(&info, sizeof info);
    ck_assert_int_eq(csp_export_inspect(f.ctx, buf, size, &info), CSP_OK);
    ck_assert_int_eq(info.nm_n, 2);
    ck_assert_int_eq(info.nm_m, 4);
    ck_assert_int_eq(info.index_bytes, 2);
    check_round_trip(&f, a, buf, size, CSP_DTYPE_F32, "2:4");
    /* The indices of group 0 are those of its kept weights, in order. */
    uint64_t g0 = f.p->tensors[a].mask[0] & 0xf;
    int first = __builtin_ctzll(g0), second = __builtin_ctzll(g0 & (g0 - 1));
    ck_assert_int_eq(buf[80 + 256 * 4] & 3, first);
    ck_assert_int_eq((buf[80 + 256 * 4] >> 2) & 3, second);
    free(buf);

    /* 1:4 exported as 2:4: every group has one padding slot. */
    o.nm_n = 2;
    o.nm_m = 4;
    buf = export_of(&f, b, &o, &size);
    ck_assert_int_eq(size, 80 + 256 * 8 + 64);
    check_round_trip(&f, b, buf, size, CSP_DTYPE_F64, "1:4 as 2:4");
    free(buf);
    o.nm_n = 0;
    o.nm_m = 0;
    buf = export_of(&f, b, &o, &size); /* its own 1:4 */
    ck_assert_int_eq(size, 80 + 128 * 8 + 32);
    check_round_trip(&f, b, buf, size, CSP_DTYPE_F64, "1:4");
    free(buf);

    /* Refusals: a mask that is not N:M, no N:M to use, M not dividing cols,
     * bad N:M, N:M options on another format. */
    ck_assert_status(f.ctx, csp_pruner_export(f.p, c, &o, NULL, 0, &size), CSP_E_STATE);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(f.ctx), "nm_n"));
    o.nm_n = 2;
    o.nm_m = 4;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, c, &o, NULL, 0, &size), CSP_E_STATE);
    ck_assert_ptr_nonnull(strstr(csp_context_last_error(f.ctx), "is not 2:4: row"));
    ck_assert_status(f.ctx, csp_pruner_export(f.p, d, &o, NULL, 0, &size), CSP_E_STATE);
    o.nm_m = 5;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, a, &o, NULL, 0, &size), CSP_E_SHAPE);
    o.nm_m = 2;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, a, &o, NULL, 0, &size), CSP_E_RANGE);
    o.nm_m = 33;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, a, &o, NULL, 0, &size), CSP_E_RANGE);
    o.nm_n = 0;
    o.nm_m = 4;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, a, &o, NULL, 0, &size), CSP_E_RANGE);
    o.format = CSP_EXPORT_CSR;
    o.nm_n = 2;
    ck_assert_status(f.ctx, csp_pruner_export(f.p, a, &o, NULL, 0, &size), CSP_E_INVALID);
    /* An excluded tensor exports as fully kept. */
    csp_export_options_init(&o, sizeof o);
    buf = export_of(&f, d, &o, &size);
    check_info(&f, d, buf, size, CSP_EXPORT_CSR, CSP_DTYPE_F32, 512);
    check_round_trip(&f, d, buf, size, CSP_DTYPE_F32, "excluded");
    free(buf);
    /* Stats over all non-excluded tensors. */
    csp_export_stats all, one;
    csp_export_stats_init(&all, sizeof all);
    csp_export_stats_init(&one, sizeof one);
    ck_assert_status(f.ctx, csp_pruner_export_stats(f.p, -1, &o, &all), CSP_OK);
    int64_t bytes = 0, nnz = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_status(f.ctx, csp_pruner_export_stats(f.p, i, &o, &one), CSP_OK);
        bytes += one.bytes;
        nnz += one.nnz;
    }
    ck_assert_int_eq(all.bytes, bytes);
    ck_assert_int_eq(all.nnz, nnz);
    ck_assert_int_eq(all.dense_bytes, 512 * 4 + 512 * 8 + 512 * 4);
    o.format = CSP_EXPORT_NM; /* tensor c has no N:M: the sum fails */
    ck_assert_status(f.ctx, csp_pruner_export_stats(f.p, -1, &o, &all), CSP_E_STATE);
    fx_free(&f);
}
END_TEST

/* Bytes against dense for a 512 x 128 float32 tensor pruned by csp_step()
 * (the figures of docs/formats.md). */
START_TEST(test_bytes_vs_dense) {
    uint64_t seed = csp_test_seed();
    static const double sp[3] = {0.9, 0.95, 0.98};
    static const int nm_n[3] = {3, 2, 1}; /* of 32: 0.906, 0.938, 0.969 */
    for (int k = 0; k < 3; k++) {
        test_rng r;
        test_rng_init(&r, seed);
        fixture f;
        fx_init(&f);
        csp_schedule_free(f.sched);
        csp_pruner_free(f.p);
        csp_schedule_options so;
        csp_schedule_options_init(&so, sizeof so);
        so.kind = CSP_SCHEDULE_CONSTANT;
        so.final_sparsity = sp[k];
        ck_assert_int_eq(csp_schedule_create(&f.sched, f.ctx, &so), CSP_OK);
        ck_assert_int_eq(csp_pruner_create(&f.p, f.ctx, f.sched, NULL), CSP_OK);
        int64_t shape[2] = {512, 128};
        csp_pruner_tensor_options to;
        csp_pruner_tensor_options_init(&to, sizeof to, f.p);
        to.granularity = CSP_GRANULARITY_TENSOR;
        fx_add(&f, 2, shape, 0, CSP_DTYPE_F32, &to, &r);
        to.granularity = CSP_GRANULARITY_NM;
        to.nm_n = nm_n[k];
        to.nm_m = 32;
        fx_add(&f, 2, shape, 0, CSP_DTYPE_F32, &to, &r);
        no_nan(&f, 0);
        no_nan(&f, 1);
        ck_assert_int_eq(csp_step(f.p, 0), CSP_PRUNED);
        int64_t nnz = f.p->tensors[0].nnz;
        int64_t csr = 80 + pad8(513 * 4) + pad8(nnz * 2) + pad8(nnz * 4);
        int64_t bitmap = 80 + 65536 / 8 + pad8(nnz * 4);
        int64_t slots = 512 * 4 * nm_n[k];
        int64_t nm = 80 + slots * 4 + pad8((slots * 5 + 7) / 8);
        csp_export_options o;
        csp_export_options_init(&o, sizeof o);
        csp_export_stats st;
        csp_export_stats_init(&st, sizeof st);
        ck_assert_int_eq(csp_pruner_export_stats(f.p, 0, &o, &st), CSP_OK);
        ck_assert_int_eq(st.bytes, csr);
        ck_assert_int_eq(st.dense_bytes, 262144);
        o.format = CSP_EXPORT_BITMAP;
        ck_assert_int_eq(csp_pruner_export_stats(f.p, 0, &o, &st), CSP_OK);
        ck_assert_int_eq(st.bytes, bitmap);
        o.format = CSP_EXPORT_NM;
        ck_assert_int_eq(csp_pruner_export_stats(f.p, 1, &o, &st), CSP_OK);
        ck_assert_int_eq(st.bytes, nm);
        fprintf(stderr,
                "512x128 float32 at %.2f (nnz %lld): dense 262144, CSR %lld (%.3f), bitmap %lld "
                "(%.3f); %d:32 (sparsity %.3f) N:M %lld (%.3f)\n",
                sp[k], (long long)nnz, (long long)csr, (double)csr / 262144.0, (long long)bitmap,
                (double)bitmap / 262144.0, nm_n[k], 1.0 - nm_n[k] / 32.0, (long long)nm,
                (double)nm / 262144.0);
        fx_free(&f);
    }
}
END_TEST

/* ---- bad exports ------------------------------------------------------------- */

static uint8_t *sample_export(fixture *f, int32_t format, int64_t *size, test_rng *r) {
    fx_init(f);
    int64_t shape[2] = {5, 12};
    int i = fx_add(f, 2, shape, 0, CSP_DTYPE_F32, NULL, r);
    set_mask(f, i, r, 0.3, format == CSP_EXPORT_NM ? 1 : 0, 3);
    csp_export_options o;
    csp_export_options_init(&o, sizeof o);
    o.format = format;
    if (format == CSP_EXPORT_NM) {
        o.nm_n = 2;
        o.nm_m = 3;
    }
    return export_of(f, i, &o, size);
}

static void expect_decode(fixture *f, const uint8_t *buf, int64_t size, csp_status want,
                          const char *needle, const char *what) {
    float dense[80];
    for (int k = 0; k < 80; k++)
        dense[k] = 7.0f;
    csp_status st = csp_export_decode(f->ctx, buf, size, dense, CSP_DTYPE_F32, 0, sizeof dense);
    REQUIRE(st == want, "%s: %s (%s), expected %s", what, csp_status_name(st),
            csp_context_last_error(f->ctx), csp_status_name(want));
    if (st != CSP_OK)
        for (int k = 0; k < 80; k++)
            REQUIRE(dense[k] == 7.0f, "%s: dense written on error", what);
    if (needle != NULL)
        REQUIRE(strstr(csp_context_last_error(f->ctx), needle) != NULL, "%s: '%s' lacks '%s'",
                what, csp_context_last_error(f->ctx), needle);
}

START_TEST(test_truncations_and_flips) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    for (int32_t format = CSP_EXPORT_CSR; format <= CSP_EXPORT_NM; format++) {
        fixture f;
        int64_t size;
        uint8_t *buf = sample_export(&f, format, &size, &r);
        expect_decode(&f, buf, size, CSP_OK, NULL, "intact");
        for (int64_t n = 0; n < size; n++) {
            uint8_t *copy = malloc((size_t)n + 1);
            memcpy(copy, buf, (size_t)n);
            expect_decode(&f, copy, n, CSP_E_CORRUPT, NULL, "truncated");
            free(copy);
        }
        uint8_t *longer = calloc(1, (size_t)size + 8);
        memcpy(longer, buf, (size_t)size);
        expect_decode(&f, longer, size + 8, CSP_E_CORRUPT, "after the end", "longer");
        reseal_export(longer, (size_t)size + 8);
        expect_decode(&f, longer, size + 8, CSP_E_CORRUPT, NULL, "longer, sealed");
        free(longer);
        for (int64_t i = 0; i < size; i++)
            for (int bit = 0; bit < 8; bit++) {
                buf[i] ^= (uint8_t)(1u << bit);
                expect_decode(&f, buf, size, CSP_E_CORRUPT, NULL, "bit flip");
                buf[i] ^= (uint8_t)(1u << bit);
            }
        free(buf);
        fx_free(&f);
    }
}
END_TEST

/* Forged headers and payloads with valid CRCs. */
START_TEST(test_forged) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    struct {
        int32_t format;
        int64_t off; /* < 0: from the start of array 0/1 (see below) */
        int bytes;
        uint64_t value;
        csp_status want;
        const char *needle;
    } cases[] = {
        {CSP_EXPORT_CSR, 4, 2, 2, CSP_E_VERSION, "version 2"},
        {CSP_EXPORT_CSR, 8, 1, 9, CSP_E_VERSION, "format 9"},
        {CSP_EXPORT_CSR, 9, 1, 3, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 10, 1, 5, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 11, 1, 3, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 12, 1, 2, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 13, 1, 1, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 15, 1, 1, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 16, 8, 6, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 24, 8, 13, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 32, 8, 61, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 32, 8, 1, CSP_E_CORRUPT, "implies"},
        {CSP_EXPORT_CSR, 48, 8, 0, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 56, 8, 3, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 72, 4, 1, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_CSR, 6, 2, 88, CSP_E_CORRUPT, "header size"},
        {CSP_EXPORT_CSR, 80, 4, 1, CSP_E_CORRUPT, "first row pointer"},
        {CSP_EXPORT_CSR, 84, 4, 1000, CSP_E_CORRUPT, "row pointer 1"},
        {CSP_EXPORT_CSR, -1, 2, 12, CSP_E_CORRUPT, "row 0"},  /* column 12 of 12 */
        {CSP_EXPORT_CSR, -1, 4, 0, CSP_E_CORRUPT, "row 0"},   /* columns 0, 0 */
        {CSP_EXPORT_BITMAP, 80, 1, 0, CSP_E_CORRUPT, "popcount"},
        {CSP_EXPORT_BITMAP, 87, 1, 0xff, CSP_E_CORRUPT, "past the last"},
        {CSP_EXPORT_BITMAP, 8, 1, 3, CSP_E_CORRUPT, "header"},
        {CSP_EXPORT_NM, -3, 1, 0x0f, CSP_E_CORRUPT, "N:M group 0"}, /* index 3 of M = 3 */
        {CSP_EXPORT_NM, -3, 1, 0x05, CSP_E_CORRUPT, "N:M group 0"}, /* equal indices */
        {CSP_EXPORT_NM, 13, 1, 3, CSP_E_CORRUPT, "header"},         /* N = M */
        {CSP_EXPORT_NM, 14, 1, 5, CSP_E_CORRUPT, "header"},         /* cols % M */
        {CSP_EXPORT_NM, 250, 1, 1, CSP_E_CORRUPT, "padding"},       /* after 10 index bytes */
        {CSP_EXPORT_NM, 11, 1, 3, CSP_E_CORRUPT, "header"},         /* index bits */
        {CSP_EXPORT_NM, 32, 8, 41, CSP_E_CORRUPT, "nnz"},           /* nnz > slots */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture f;
        int64_t size;
        uint8_t *buf = sample_export(&f, cases[c].format, &size, &r);
        csp_export_info info;
        csp_export_info_init(&info, sizeof info);
        ck_assert_int_eq(csp_export_inspect(f.ctx, buf, size, &info), CSP_OK);
        int64_t off = cases[c].off;
        if (off == -1) { /* the column indices of row 0 (fully kept) */
            off = 80 + pad8(6 * 4);
        } else if (off == -3) { /* the packed N:M indices */
            off = 80 + pad8(5 * 4 * 2 * 4);
        }
        if (cases[c].format == CSP_EXPORT_CSR && cases[c].off == -1 && cases[c].bytes == 4)
            memcpy(buf + off + 2, buf + off, 2); /* duplicate column 0 */
        else
            for (int k = 0; k < cases[c].bytes; k++)
                buf[off + k] = (uint8_t)(cases[c].value >> (8 * k));
        reseal_export(buf, (size_t)size);
        char what[64];
        snprintf(what, sizeof what, "forged case %zu", c);
        expect_decode(&f, buf, size, cases[c].want, cases[c].needle, what);
        if (cases[c].off >= 0 && cases[c].off < 80) {
            csp_status st = csp_export_inspect(f.ctx, buf, size, &info);
            REQUIRE(st == cases[c].want || st == CSP_OK, "%s: inspect %s", what,
                    csp_status_name(st));
        }
        free(buf);
        fx_free(&f);
    }
}
END_TEST

START_TEST(test_random_mutations) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    int iters = getenv("CSP_UNDER_VALGRIND") ? 300 : 3000;
    for (int32_t format = CSP_EXPORT_CSR; format <= CSP_EXPORT_NM; format++) {
        fixture f;
        int64_t size;
        uint8_t *buf = sample_export(&f, format, &size, &r);
        uint8_t *m = malloc((size_t)size);
        for (int it = 0; it < iters; it++) {
            memcpy(m, buf, (size_t)size);
            int count = 1 + (int)(test_rng_u64(&r) % 4);
            for (int k = 0; k < count; k++) {
                uint64_t pos = test_rng_u64(&r) % (uint64_t)size;
                m[pos] = test_rng_u64(&r) % 2 ? (uint8_t)test_rng_u64(&r)
                                              : (uint8_t)(m[pos] ^ (1u << (test_rng_u64(&r) % 8)));
            }
            int64_t n = test_rng_u64(&r) % 8 == 0 ? (int64_t)(test_rng_u64(&r) % (uint64_t)size)
                                                  : size;
            bool sealed = test_rng_u64(&r) % 2 == 0;
            if (sealed)
                reseal_export(m, (size_t)n);
            float dense[80];
            for (int k = 0; k < 80; k++)
                dense[k] = 7.0f;
            csp_status st = csp_export_decode(f.ctx, m, n, dense, 0, 0, sizeof dense);
            if (st != CSP_OK) {
                REQUIRE(st == CSP_E_CORRUPT || st == CSP_E_VERSION || st == CSP_E_BUFFER,
                        "mutation %d: %s", it, csp_status_name(st));
                for (int k = 0; k < 80; k++)
                    REQUIRE(dense[k] == 7.0f, "mutation %d: dense written on error", it);
            }
        }
        free(m);
        free(buf);
        fx_free(&f);
    }
}
END_TEST

/* Defect: decoding into memory that overlaps the export read the export
 * while overwriting it, passed every check and then wrote past capacity.
 * Every overlap of the export with the bytes decode writes is refused
 * (CSP_E_INVALID, nothing written); adjacent buffers are fine. The arena
 * is large so that the unfixed decoder's stray writes stay inside it. */
/* Reserved and unused header bytes are refused (they always were; this
 * guards it): every single-bit change of bytes [0, 76) of a header, with
 * the CRC recomputed, is refused (but N:M's nnz), so an accepted header is
 * exactly what csp_pruner_export() writes. */
START_TEST(test_header_strict) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    for (int32_t format = CSP_EXPORT_CSR; format <= CSP_EXPORT_NM; format++) {
        fixture f;
        int64_t size;
        uint8_t *buf = sample_export(&f, format, &size, &r);
        uint8_t *m = malloc((size_t)size);
        static const int reserved[] = {15, 72, 73, 74, 75};
        for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++) {
            memcpy(m, buf, (size_t)size);
            m[reserved[k]] = 1;
            reseal_export(m, (size_t)size);
            expect_decode(&f, m, size, CSP_E_CORRUPT, "header", "reserved header byte");
        }
        for (int p = 0; p < 76; p++)
            for (int bit = 0; bit < 8; bit++) {
                /* N:M's nnz only has to fit the slots: the payload cannot
                 * tell a kept zero from a padding slot (docs/formats.md). */
                if (format == CSP_EXPORT_NM && p >= 32 && p < 40)
                    continue;
                memcpy(m, buf, (size_t)size);
                m[p] ^= (uint8_t)(1u << bit);
                reseal_export(m, (size_t)size);
                csp_export_info info;
                csp_export_info_init(&info, sizeof info);
                csp_status st = csp_export_inspect(f.ctx, m, size, &info);
                REQUIRE(st == CSP_E_CORRUPT || st == CSP_E_VERSION,
                        "format %d: header byte %d bit %d changed: inspect %s", (int)format, p,
                        bit, csp_status_name(st));
            }
        free(m);
        free(buf);
        fx_free(&f);
    }
}
END_TEST

START_TEST(test_decode_overlap) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    for (int32_t format = CSP_EXPORT_CSR; format <= CSP_EXPORT_NM; format++) {
        fixture f;
        int64_t size;
        uint8_t *buf = sample_export(&f, format, &size, &r);
        const int64_t span = 60 * 4; /* 5 x 12 float32, contiguous */
        const size_t arena_n = 1 << 20;
        uint8_t *arena = malloc(arena_n), *copy = malloc(arena_n);
        struct {
            int64_t exp_at, dense_at, stride, cap;
            csp_status want;
        } cases[] = {
            {0, 0, 0, span, CSP_E_INVALID},                      /* the same bytes */
            {0, size - 8, 0, span, CSP_E_INVALID},               /* dense over the tail */
            {span - 8, 0, 0, span, CSP_E_INVALID},               /* the export over its end */
            {16, 0, 0, 1 << 16, CSP_E_INVALID},                  /* the export inside dense */
            {64, 0, 0, span + size + 64, CSP_E_INVALID},          /* dense holds the export */
            {4096, 4096 - span - 4 + 8, 0, span, CSP_E_INVALID}, /* one element overlaps */
            {4096, 4096 - span, 0, span, CSP_OK},               /* dense just before */
            {4096, 4096 + size, 0, span, CSP_OK},               /* dense just after */
            {4096, 4096 - 4 * (4 * 13 + 12), 13, 1 << 16, CSP_OK}, /* strided, before */
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            memset(arena, 0x3C, arena_n);
            memcpy(arena + cases[c].exp_at, buf, (size_t)size);
            memcpy(copy, arena, arena_n);
            void *dense = arena + cases[c].dense_at;
            csp_status st = csp_export_decode(f.ctx, arena + cases[c].exp_at, size, dense, 0,
                                              cases[c].stride, cases[c].cap);
            REQUIRE(st == cases[c].want, "format %d case %zu: %s (%s), expected %s", (int)format,
                    c, csp_status_name(st), csp_context_last_error(f.ctx),
                    csp_status_name(cases[c].want));
            if (st != CSP_OK) {
                REQUIRE(strstr(csp_context_last_error(f.ctx), "csp_export_decode") != NULL &&
                            strstr(csp_context_last_error(f.ctx), "overlap") != NULL,
                        "format %d case %zu: message '%s'", (int)format, c,
                        csp_context_last_error(f.ctx));
                REQUIRE(memcmp(arena, copy, arena_n) == 0,
                        "format %d case %zu: refused, but memory was written", (int)format, c);
            } else {
                /* Only the output changed, and it decodes like a separate buffer. */
                REQUIRE(memcmp(arena + cases[c].exp_at, buf, (size_t)size) == 0,
                        "format %d case %zu: the export changed", (int)format, c);
                int64_t ld = cases[c].stride ? cases[c].stride : 12;
                float ref[13 * 5];
                ck_assert_status(f.ctx, csp_export_decode(f.ctx, buf, size, ref, 0, ld, sizeof ref),
                                 CSP_OK);
                for (int64_t row = 0; row < 5; row++)
                    REQUIRE(memcmp((uint8_t *)dense + 4 * row * ld, ref + row * ld, 48) == 0,
                            "format %d case %zu: row %lld differs", (int)format, c,
                            (long long)row);
            }
        }
        free(arena);
        free(copy);
        free(buf);
        fx_free(&f);
    }
}
END_TEST

START_TEST(test_bad_arguments) {
    uint64_t seed = csp_test_seed();
    test_rng r;
    test_rng_init(&r, seed);
    fixture f;
    int64_t size = -9;
    uint8_t *buf = sample_export(&f, CSP_EXPORT_CSR, &size, &r);
    csp_context *ctx = f.ctx;
    csp_export_options o;
    ck_assert_int_eq(csp_export_options_init(NULL, sizeof o), CSP_E_NULL);
    ck_assert_int_eq(csp_export_options_init(&o, 3), CSP_E_STRUCT_SIZE);
    ck_assert_int_eq(csp_export_options_init(&o, sizeof o), CSP_OK);
    ck_assert_int_eq(o.format, CSP_EXPORT_CSR);
    int64_t s2 = -9;
    ck_assert_int_eq(csp_pruner_export(NULL, 0, &o, NULL, 0, &s2), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, NULL, 0, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_export(f.p, 1, &o, NULL, 0, &s2), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_export(f.p, -1, &o, NULL, 0, &s2), CSP_E_RANGE);
    ck_assert_int_eq(s2, -9);
    o.format = 0;
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, NULL, 0, &s2), CSP_E_ENUM);
    o.format = 4;
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, NULL, 0, &s2), CSP_E_ENUM);
    o.format = CSP_EXPORT_BITMAP;
    o.value_dtype = 3;
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, NULL, 0, &s2), CSP_E_ENUM);
    o.value_dtype = 0;
    o.struct_size = 8;
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, NULL, 0, &s2), CSP_E_STRUCT_SIZE);
    o.struct_size = sizeof o;
    uint8_t small[64];
    memset(small, 1, sizeof small);
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, small, sizeof small, &s2), CSP_E_BUFFER);
    ck_assert_int_gt(s2, 64);
    ck_assert_int_eq(small[0], 1);
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, &o, small, -1, &s2), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_export(f.p, 0, NULL, NULL, 0, &s2), CSP_OK); /* defaults */
    ck_assert_int_eq(s2, size);

    csp_export_stats st;
    ck_assert_int_eq(csp_export_stats_init(NULL, sizeof st), CSP_E_NULL);
    ck_assert_int_eq(csp_export_stats_init(&st, 4), CSP_E_STRUCT_SIZE);
    csp_export_stats_init(&st, sizeof st);
    ck_assert_int_eq(csp_pruner_export_stats(NULL, 0, NULL, &st), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_export_stats(f.p, 0, NULL, NULL), CSP_E_NULL);
    ck_assert_status(ctx, csp_pruner_export_stats(f.p, -2, NULL, &st), CSP_E_RANGE);
    ck_assert_status(ctx, csp_pruner_export_stats(f.p, 1, NULL, &st), CSP_E_RANGE);
    st.struct_size = 2;
    ck_assert_status(ctx, csp_pruner_export_stats(f.p, 0, NULL, &st), CSP_E_STRUCT_SIZE);

    csp_export_info info;
    ck_assert_int_eq(csp_export_info_init(NULL, sizeof info), CSP_E_NULL);
    ck_assert_int_eq(csp_export_info_init(&info, 4), CSP_E_STRUCT_SIZE);
    csp_export_info_init(&info, sizeof info);
    ck_assert_int_eq(csp_export_inspect(ctx, NULL, size, &info), CSP_E_NULL);
    ck_assert_int_eq(csp_export_inspect(ctx, buf, size, NULL), CSP_E_NULL);
    ck_assert_int_eq(csp_export_inspect(ctx, buf, -1, &info), CSP_E_RANGE);
    ck_assert_int_eq(csp_export_inspect(NULL, buf, -1, &info), CSP_E_RANGE);
    info.struct_size = 1;
    ck_assert_int_eq(csp_export_inspect(ctx, buf, size, &info), CSP_E_STRUCT_SIZE);

    float dense[70];
    ck_assert_int_eq(csp_export_decode(ctx, NULL, size, dense, 0, 0, sizeof dense), CSP_E_NULL);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, NULL, 0, 0, sizeof dense), CSP_E_NULL);
    ck_assert_int_eq(csp_export_decode(NULL, buf, size, NULL, 0, 0, sizeof dense), CSP_E_NULL);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 7, 0, sizeof dense), CSP_E_ENUM);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, 11, sizeof dense), CSP_E_SHAPE);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, -1, sizeof dense), CSP_E_RANGE);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, 0, -1), CSP_E_RANGE);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, 0, 60 * 4 - 1), CSP_E_BUFFER);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, CSP_DTYPE_F64, 0, 60 * 8 - 1),
                     CSP_E_BUFFER);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, 13, 60 * 4), CSP_E_BUFFER);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, (char *)dense + 2, 0, 0, 60 * 4),
                     CSP_E_INVALID);
    ck_assert_int_eq(csp_export_decode(ctx, buf, size, dense, 0, 0, 60 * 4), CSP_OK);
    ck_assert_int_eq(csp_export_decode(NULL, buf, size, dense, 0, 0, 60 * 4), CSP_OK);
    free(buf);
    fx_free(&f);
}
END_TEST

static Suite *export_suite(void) {
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_sizes_and_index_widths);
    tcase_add_test(tc, test_nm);
    tcase_add_test(tc, test_bytes_vs_dense);
    tcase_add_test(tc, test_truncations_and_flips);
    tcase_add_test(tc, test_forged);
    tcase_add_test(tc, test_random_mutations);
    tcase_add_test(tc, test_decode_overlap);
    tcase_add_test(tc, test_header_strict);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(export_suite()); }
