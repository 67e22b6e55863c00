/* The sparse-weight object (include/csp/sparse.h): building it from a dense
 * matrix, an export or a pruner tensor, and the y = alpha W x + beta y
 * drivers over the row kernels of lib/sparse/kernels.c. */
#include "sparse/sparse_internal.h"

#include <csp/io.h>
#include <string.h>

#include "core/abi.h"
#include "prune/pruner_internal.h"

/* ---- options and info ------------------------------------------------------------ */

static const csp__struct_desc sparse_options_desc = {
    "csp_sparse_options", CSP__FIRST_SIZE_SPARSE_OPTIONS, sizeof(csp_sparse_options), NULL,
    false};
static const csp__struct_desc sparse_info_desc = {
    "csp_sparse_info", CSP__FIRST_SIZE_SPARSE_INFO, sizeof(csp_sparse_info), NULL, false};

CSP_API csp_status csp_sparse_options_init(csp_sparse_options *opts, size_t struct_size) {
    return csp__struct_init(&sparse_options_desc, opts, struct_size);
}

CSP_API csp_status csp_sparse_info_init(csp_sparse_info *info, size_t struct_size) {
    return csp__struct_init(&sparse_info_desc, info, struct_size);
}

static csp_status check_options(csp_context *ctx, const csp_sparse_options *o, const char *fn) {
    if (o->format < CSP_SPARSE_AUTO || o->format > CSP_SPARSE_NM)
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown format %d", fn, (int)o->format);
    if (o->kernel < CSP_SPARSE_KERNEL_AUTO || o->kernel > CSP_SPARSE_KERNEL_NEON)
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown kernel %d", fn, (int)o->kernel);
    if (csp__sparse_kernels_get(o->kernel) == NULL)
        return csp__error(ctx, CSP_E_UNSUPPORTED, "%s: kernel %d is not available on this CPU",
                          fn, (int)o->kernel);
    if (o->nm_n != 0 || o->nm_m != 0) {
        if (o->nm_m < 2 || o->nm_m > CSP_NM_MAX_M || o->nm_n < 1 || o->nm_n >= o->nm_m)
            return csp__error(ctx, CSP_E_RANGE, "%s: N:M = %d:%d needs 1 <= N < M <= %d", fn,
                              (int)o->nm_n, (int)o->nm_m, CSP_NM_MAX_M);
    }
    return CSP_OK;
}

/* ---- building ------------------------------------------------------------------ */

static int32_t pos_bits(int32_t m) { return m <= 4 ? 2 : (m <= 16 ? 4 : 8); }

static int64_t round64(int64_t v) { return (v + 63) / 64 * 64; }

/* Decide the layout from the row counts; CSP_E_STATE when the requested one
 * does not fit the matrix. */
static csp_status choose_format(csp_context *ctx, const float *d, int64_t rows, int64_t cols,
                                int64_t ld, const int64_t *count, const csp_sparse_options *o,
                                int32_t *format, const char *fn) {
    bool nm_ok = false;
    if (o->nm_m != 0 && cols % o->nm_m == 0) {
        nm_ok = true;
        for (int64_t r = 0; r < rows && nm_ok; r++)
            for (int64_t g = 0; g < cols && nm_ok; g += o->nm_m) {
                int32_t kept = 0;
                for (int32_t j = 0; j < o->nm_m; j++)
                    kept += d[r * ld + g + j] != 0.0f;
                nm_ok = kept <= o->nm_n;
            }
    }
    bool balanced = true;
    for (int64_t r = 1; r < rows && balanced; r++)
        balanced = count[r] == count[0];
    switch (o->format) {
    case CSP_SPARSE_NM:
        if (o->nm_m == 0)
            return csp__error(ctx, CSP_E_STATE, "%s: the N:M layout needs nm_n and nm_m", fn);
        if (cols % o->nm_m != 0)
            return csp__error(ctx, CSP_E_SHAPE, "%s: %lld columns are not a multiple of M = %d",
                              fn, (long long)cols, (int)o->nm_m);
        if (!nm_ok)
            return csp__error(ctx, CSP_E_STATE, "%s: the weights are not %d:%d", fn,
                              (int)o->nm_n, (int)o->nm_m);
        *format = CSP_SPARSE_NM;
        return CSP_OK;
    case CSP_SPARSE_BALANCED:
        if (!balanced)
            return csp__error(ctx, CSP_E_STATE, "%s: rows keep different counts: not balanced",
                              fn);
        *format = CSP_SPARSE_BALANCED;
        return CSP_OK;
    case CSP_SPARSE_CSR:
        *format = CSP_SPARSE_CSR;
        return CSP_OK;
    default:
        *format = nm_ok ? CSP_SPARSE_NM : (balanced ? CSP_SPARSE_BALANCED : CSP_SPARSE_CSR);
        return CSP_OK;
    }
}

/* Sizes of the arrays and the object's geometry; false on overflow. */
static bool plan_arrays(csp_sparse *s, int64_t off[4]) {
    int64_t nrow = 0, nidx = 0, nval = s->nnz, npos = 0;
    if (s->format == CSP_SPARSE_CSR && !csp__mul_i64(s->rows + 1, 8, &nrow))
        return false;
    if (s->format == CSP_SPARSE_NM) {
        s->per_row = s->cols / s->nm_m * s->nm_n;
        s->pos_stride = (s->per_row * s->nm_bits + 7) / 8;
        if (!csp__mul_i64(s->rows, s->per_row, &nval) ||
            !csp__mul_i64(s->rows, s->pos_stride, &npos))
            return false;
    } else if (!csp__mul_i64(s->nnz, s->idxw, &nidx)) {
        return false;
    }
    if (!csp__mul_i64(nval, 4, &nval))
        return false;
    s->bytes = nrow + nidx + nval + npos;
    off[0] = 0;
    off[1] = round64(nrow);
    off[2] = off[1] + round64(nidx);
    off[3] = off[2] + round64(npos);
    return s->bytes < INT64_MAX / 4;
}

static void fill_arrays(csp_sparse *s, const float *d, int64_t ld) {
    if (s->format == CSP_SPARSE_NM) {
        memset(s->pos, 0, (size_t)(s->rows * s->pos_stride));
        for (int64_t r = 0; r < s->rows; r++) {
            float *v = s->val + r * s->per_row;
            uint8_t *p = s->pos + r * s->pos_stride;
            int64_t t = 0;
            for (int64_t g = 0; g < s->cols; g += s->nm_m) {
                int32_t used = 0;
                for (int32_t j = 0; j < s->nm_m; j++)
                    if (d[r * ld + g + j] != 0.0f) {
                        uint64_t at = (uint64_t)(t + used) * (uint64_t)s->nm_bits;
                        v[t + used] = d[r * ld + g + j];
                        p[at >> 3] |= (uint8_t)((uint32_t)j << (at & 7u));
                        used++;
                    }
                for (; used < s->nm_n; used++)
                    v[t + used] = 0.0f; /* padding slot: position 0, value 0 */
                t += s->nm_n;
            }
        }
        return;
    }
    int64_t k = 0;
    for (int64_t r = 0; r < s->rows; r++) {
        if (s->rowptr != NULL)
            s->rowptr[r] = k;
        for (int64_t c = 0; c < s->cols; c++) {
            float w = d[r * ld + c];
            if (w == 0.0f)
                continue;
            s->val[k] = w;
            if (s->idxw == 2)
                ((uint16_t *)s->idx)[k] = (uint16_t)c;
            else
                ((int32_t *)s->idx)[k] = (int32_t)c;
            k++;
        }
    }
    if (s->rowptr != NULL)
        s->rowptr[s->rows] = k;
}

/* The common builder: @p o is a full, validated options struct. */
static csp_status build(csp_context *ctx, const float *d, int64_t rows, int64_t cols, int64_t ld,
                        const csp_sparse_options *o, csp_sparse **out, const char *fn) {
    int64_t *count = csp__malloc(ctx, (size_t)rows * sizeof *count);
    csp_sparse *s = csp__calloc(ctx, 1, sizeof *s);
    if (count == NULL || s == NULL) {
        csp__free(ctx, count);
        csp__free(ctx, s);
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    int64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++) {
        count[r] = 0;
        for (int64_t c = 0; c < cols; c++)
            count[r] += d[r * ld + c] != 0.0f;
        nnz += count[r];
    }
    int32_t format = 0;
    csp_status st = choose_format(ctx, d, rows, cols, ld, count, o, &format, fn);
    s->ctx = ctx;
    s->rows = rows;
    s->cols = cols;
    s->nnz = nnz;
    s->format = format;
    s->idxw = cols <= 65536 ? 2 : 4;
    s->per_row = rows > 0 ? count[0] : 0;
    csp__free(ctx, count);
    if (format == CSP_SPARSE_NM) {
        s->nm_n = o->nm_n;
        s->nm_m = o->nm_m;
        s->nm_bits = pos_bits(o->nm_m);
        s->idxw = 0;
    }
    s->k = csp__sparse_kernels_get(o->kernel);
    int64_t off[4] = {0, 0, 0, 0};
    if (st == CSP_OK && !plan_arrays(s, off))
        st = csp__error(ctx, CSP_E_OVERFLOW, "%s: the matrix is too large", fn);
    if (st == CSP_OK) {
        int64_t vbytes = format == CSP_SPARSE_NM ? s->rows * s->per_row * 4 : s->nnz * 4;
        s->block = csp__malloc_aligned(ctx, (size_t)(off[3] + round64(vbytes)));
        if (s->block == NULL)
            st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    if (st != CSP_OK) {
        csp__free(ctx, s);
        return st;
    }
    uint8_t *b = s->block;
    s->rowptr = format == CSP_SPARSE_CSR ? (int64_t *)(void *)(b + off[0]) : NULL;
    s->idx = format == CSP_SPARSE_NM ? NULL : b + off[1];
    s->pos = format == CSP_SPARSE_NM ? b + off[2] : NULL;
    s->val = (float *)(void *)(b + off[3]);
    fill_arrays(s, d, ld);
    *out = s;
    return CSP_OK;
}

static csp_status take_options(csp_context *ctx, const csp_sparse_options *opts,
                               csp_sparse_options *full, const char *fn) {
    csp_status st = csp__struct_in(ctx, &sparse_options_desc, opts, full, fn);
    return st != CSP_OK ? st : check_options(ctx, full, fn);
}

CSP_API csp_status csp_sparse_from_dense(csp_context *ctx, const float *dense, int64_t rows,
                                         int64_t cols, int64_t ld,
                                         const csp_sparse_options *opts, csp_sparse **out) {
    const char *fn = "csp_sparse_from_dense";
    CSP_CHECK_NULL(ctx, out, "out");
    *out = NULL;
    CSP_CHECK_NULL(ctx, ctx, "ctx");
    CSP_CHECK_NULL(ctx, dense, "dense");
    if (rows < 1 || cols < 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: %lld x %lld: rows and cols must be >= 1", fn,
                          (long long)rows, (long long)cols);
    if (ld == 0)
        ld = cols;
    if (ld < cols)
        return csp__error(ctx, CSP_E_SHAPE, "%s: ld %lld < cols %lld", fn, (long long)ld,
                          (long long)cols);
    int64_t span;
    if (!csp__mul_i64(rows - 1, ld, &span) || !csp__add_i64(span, cols, &span) ||
        span > INT64_MAX / 8)
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: the matrix is too large", fn);
    csp_sparse_options full;
    csp_status st = take_options(ctx, opts, &full, fn);
    return st != CSP_OK ? st : build(ctx, dense, rows, cols, ld, &full, out, fn);
}

CSP_API csp_status csp_sparse_from_export(csp_context *ctx, const void *buf, int64_t size,
                                          const csp_sparse_options *opts, csp_sparse **out) {
    const char *fn = "csp_sparse_from_export";
    CSP_CHECK_NULL(ctx, out, "out");
    *out = NULL;
    CSP_CHECK_NULL(ctx, ctx, "ctx");
    CSP_CHECK_NULL(ctx, buf, "buf");
    csp_sparse_options full;
    csp_status st = take_options(ctx, opts, &full, fn);
    if (st != CSP_OK)
        return st;
    csp_export_info info;
    csp_export_info_init(&info, sizeof info);
    st = csp_export_inspect(ctx, buf, size, &info);
    if (st != CSP_OK)
        return st;
    if (info.format == CSP_EXPORT_NM && full.nm_m == 0) {
        full.nm_n = info.nm_n;
        full.nm_m = info.nm_m;
    }
    int64_t numel;
    if (!csp__mul_i64(info.rows, info.cols, &numel) || numel > INT64_MAX / 8)
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: the matrix is too large", fn);
    float *dense = csp__malloc_aligned(ctx, (size_t)numel * sizeof(float));
    if (dense == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    st = csp_export_decode(ctx, buf, size, dense, CSP_DTYPE_F32, 0,
                           numel * (int64_t)sizeof(float));
    if (st == CSP_OK)
        st = build(ctx, dense, info.rows, info.cols, info.cols, &full, out, fn);
    csp__free_aligned(ctx, dense);
    return st;
}

CSP_API csp_status csp_sparse_from_pruner(const csp_pruner *pruner, int32_t index,
                                          const csp_sparse_options *opts, csp_sparse **out) {
    const char *fn = "csp_sparse_from_pruner";
    CSP_CHECK_NULL(NULL, pruner, "pruner");
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, out, "out");
    *out = NULL;
    if (index < 0 || index >= pruner->num_tensors)
        return csp__error(ctx, CSP_E_RANGE, "%s: index %d outside 0..%d", fn, (int)index,
                          (int)pruner->num_tensors - 1);
    csp_sparse_options full;
    csp_status st = take_options(ctx, opts, &full, fn);
    if (st != CSP_OK)
        return st;
    const csp__ptensor *pt = &pruner->tensors[index];
    const csp_tensor *t = pt->weight;
    if (full.nm_m == 0 && !csp__excluded(pt) && pt->conf.granularity == CSP_GRANULARITY_NM) {
        full.nm_n = pt->conf.nm_n;
        full.nm_m = pt->conf.nm_m;
    }
    float *dense = csp__malloc_aligned(ctx, (size_t)t->numel * sizeof(float));
    if (dense == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) {
            int64_t at = r * t->cols + c;
            bool kept = pt->mask == NULL || ((pt->mask[at >> 6] >> (at & 63)) & 1u);
            const uint8_t *e = (const uint8_t *)t->data +
                               (size_t)(r * t->row_stride + c) * csp__dtype_size(t->dtype);
            float w;
            if (t->dtype == CSP_DTYPE_F64) {
                double v;
                memcpy(&v, e, sizeof v);
                w = (float)v;
            } else {
                memcpy(&w, e, sizeof w);
            }
            dense[at] = kept ? w : 0.0f;
        }
    st = build(ctx, dense, t->rows, t->cols, t->cols, &full, out, fn);
    csp__free_aligned(ctx, dense);
    return st;
}

CSP_API void csp_sparse_free(csp_sparse *sparse) {
    if (sparse == NULL)
        return;
    csp_context *ctx = sparse->ctx;
    csp__free_aligned(ctx, sparse->block);
    csp__free(ctx, sparse);
}

CSP_API csp_status csp_sparse_inspect(const csp_sparse *sparse, csp_sparse_info *info) {
    const char *fn = "csp_sparse_inspect";
    CSP_CHECK_NULL(NULL, sparse, "sparse");
    csp_status st = csp__struct_out_check(sparse->ctx, &sparse_info_desc, info, fn);
    if (st != CSP_OK)
        return st;
    csp_sparse_info x;
    memset(&x, 0, sizeof x);
    x.struct_size = sizeof x;
    x.rows = sparse->rows;
    x.cols = sparse->cols;
    x.nnz = sparse->nnz;
    x.bytes = sparse->bytes;
    x.dense_bytes = sparse->rows * sparse->cols * 4;
    x.format = sparse->format;
    x.kernel = sparse->k->kind;
    x.index_bytes = sparse->idxw;
    x.nm_n = sparse->nm_n;
    x.nm_m = sparse->nm_m;
    x.nm_bits = sparse->nm_bits;
    csp__struct_out(&sparse_info_desc, &x, info);
    return CSP_OK;
}

/* ---- products ------------------------------------------------------------------ */

typedef struct {
    const csp_sparse *s;
    int64_t batch, ldx, ldy;
    float alpha, beta;
    const float *x;
    float *y;
} product;

/* One row applied to vectors b .. b + nb of the batch. */
static inline void row_dot(const csp_sparse *s, int64_t r, const float *x, int64_t ldx, int nb,
                           float *out) {
    const csp__sparse_kernels *k = s->k;
    if (s->format == CSP_SPARSE_NM) {
        k->dot_nm(s->val + r * s->per_row, s->pos + r * s->pos_stride, s->per_row, s->nm_n,
                  s->nm_m, s->nm_bits, x, ldx, nb, out);
        return;
    }
    int64_t at = s->rowptr != NULL ? s->rowptr[r] : r * s->per_row;
    int64_t n = s->rowptr != NULL ? s->rowptr[r + 1] - at : s->per_row;
    if (s->idxw == 2)
        k->dot_u16(s->val + at, (const uint16_t *)s->idx + at, n, x, ldx, nb, out);
    else
        k->dot_i32(s->val + at, (const int32_t *)s->idx + at, n, x, ldx, nb, out);
}

static void product_rows(void *arg, int64_t begin, int64_t end, int32_t worker) {
    (void)worker;
    const product *p = arg;
    for (int64_t r = begin; r < end; r++)
        for (int64_t b = 0; b < p->batch; b += CSP__SPARSE_GROUP) {
            int nb = (int)(p->batch - b < CSP__SPARSE_GROUP ? p->batch - b : CSP__SPARSE_GROUP);
            float dot[CSP__SPARSE_GROUP];
            row_dot(p->s, r, p->x + b * p->ldx, p->ldx, nb, dot);
            for (int j = 0; j < nb; j++) {
                float *yj = p->y + (b + j) * p->ldy + r;
                *yj = p->beta == 0.0f ? p->alpha * dot[j] : p->alpha * dot[j] + p->beta * *yj;
            }
        }
}

static bool overlap(const void *a, size_t na, const void *b, size_t nb) {
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return pa < pb + nb && pb < pa + na;
}

static csp_status product_run(const csp_sparse *s, csp_context *ctx, int64_t batch, float alpha,
                              const float *x, int64_t ldx, float beta, float *y, int64_t ldy,
                              const char *fn) {
    int64_t xs, ys;
    if (!csp__mul_i64(batch - 1, ldx, &xs) || !csp__add_i64(xs, s->cols, &xs) ||
        !csp__mul_i64(batch - 1, ldy, &ys) || !csp__add_i64(ys, s->rows, &ys) ||
        xs > INT64_MAX / 8 || ys > INT64_MAX / 8)
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: the batch is too large", fn);
    if (overlap(x, (size_t)xs * sizeof(float), y, (size_t)ys * sizeof(float)))
        return csp__error(ctx, CSP_E_INVALID, "%s: y overlaps x", fn);
    product p = {s, batch, ldx, ldy, alpha, beta, x, y};
    int64_t per_row = s->rows > 0 ? (s->format == CSP_SPARSE_NM ? s->rows * s->per_row : s->nnz) /
                                        s->rows : 0;
    /* A thread is worth its start for ~256k multiply-adds. */
    int64_t grain = 262144 / (per_row * batch + 1) + 1;
    if (ctx == NULL)
        product_rows(&p, 0, s->rows, 0);
    else
        csp__parallel_for(ctx, s->rows, grain, product_rows, &p);
    return CSP_OK;
}

CSP_API csp_status csp_sparse_matvec(const csp_sparse *sparse, csp_context *ctx, float alpha,
                                     const float *x, float beta, float *y) {
    const char *fn = "csp_sparse_matvec";
    CSP_CHECK_NULL(ctx, sparse, "sparse");
    CSP_CHECK_NULL(ctx, x, "x");
    CSP_CHECK_NULL(ctx, y, "y");
    return product_run(sparse, ctx, 1, alpha, x, sparse->cols, beta, y, sparse->rows, fn);
}

CSP_API csp_status csp_sparse_matmul(const csp_sparse *sparse, csp_context *ctx, int32_t batch,
                                     float alpha, const float *x, int64_t ldx, float beta,
                                     float *y, int64_t ldy) {
    const char *fn = "csp_sparse_matmul";
    CSP_CHECK_NULL(ctx, sparse, "sparse");
    CSP_CHECK_NULL(ctx, x, "x");
    CSP_CHECK_NULL(ctx, y, "y");
    if (batch < 1)
        return csp__error(ctx, CSP_E_RANGE, "%s: batch %d < 1", fn, (int)batch);
    if (ldx == 0)
        ldx = sparse->cols;
    if (ldy == 0)
        ldy = sparse->rows;
    if (ldx < sparse->cols || ldy < sparse->rows)
        return csp__error(ctx, CSP_E_SHAPE, "%s: ldx %lld < cols %lld or ldy %lld < rows %lld",
                          fn, (long long)ldx, (long long)sparse->cols, (long long)ldy,
                          (long long)sparse->rows);
    return product_run(sparse, ctx, batch, alpha, x, ldx, beta, y, ldy, fn);
}
