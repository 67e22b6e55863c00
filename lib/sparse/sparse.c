/* The sparse-weight object (include/csp/sparse.h): building it from a dense
 * matrix, an export or a pruner tensor, and the y = alpha W x + beta y
 * drivers over the row kernels of lib/sparse/kernels.c. */
#include "sparse/sparse_internal.h"

#include <csp/io.h>
#include <stdlib.h>
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

#define LANES CSP__SPARSE_LANES

typedef struct {
    int64_t count, row;
} row_key;

static int cmp_key(const void *a, const void *b) {
    const row_key *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* The slice layout's row order and size: CSR rows sorted by decreasing
 * count (the slices' padding is then small; @p perm receives the order),
 * the other layouts in order (perm untouched). Returns the entries
 * (positions x LANES), or -1 on overflow. */
static int64_t plan_slices(const csp_sparse *s, const int64_t *count, row_key *keys,
                           int32_t *perm) {
    bool sort = s->format == CSP_SPARSE_CSR;
    if (sort) {
        for (int64_t r = 0; r < s->rows; r++)
            keys[r] = (row_key){count[r], r};
        qsort(keys, (size_t)s->rows, sizeof *keys, cmp_key);
        for (int64_t r = 0; r < s->rows; r++)
            perm[r] = (int32_t)keys[r].row;
    }
    int64_t entries = 0;
    for (int64_t i = 0; i < s->nslices; i++) {
        int64_t w = 0;
        for (int64_t l = i * LANES; l < (i + 1) * LANES && l < s->rows; l++) {
            int64_t c = count[sort ? perm[l] : l];
            w = c > w ? c : w;
        }
        if (!csp__add_i64(entries, w * LANES, &entries))
            return -1;
    }
    return entries;
}

/* Byte offsets of the arrays in the block (sptr, perm, rowptr, idx, val,
 * ws, end); false on overflow. */
static bool plan_arrays(csp_sparse *s, int64_t entries, int64_t off[7]) {
    int64_t n[6] = {0, 0, 0, 0, 0, 0};
    bool ok = true;
    if (s->sell) {
        ok = csp__mul_i64(s->nslices + 1, 8, &n[0]) && csp__mul_i64(entries, s->idxw, &n[3]) &&
             csp__mul_i64(entries, 4, &n[4]) && csp__mul_i64(s->cols, 4 * LANES, &n[5]);
        if (s->format == CSP_SPARSE_CSR)
            ok = ok && csp__mul_i64(s->rows, 4, &n[1]);
    } else {
        ok = csp__mul_i64(s->rows + 1, 8, &n[2]) && csp__mul_i64(s->nnz, s->idxw, &n[3]) &&
             csp__mul_i64(s->nnz, 4, &n[4]);
    }
    if (!ok)
        return false;
    s->bytes = n[0] + n[1] + n[2] + n[3] + n[4];
    off[0] = 0;
    for (int a = 0; a < 6; a++) {
        if (n[a] > INT64_MAX / 8)
            return false;
        off[a + 1] = off[a] + round64(n[a]);
    }
    return off[6] < INT64_MAX / 4;
}

static void put_entry(csp_sparse *s, int64_t at, float v, int64_t c) {
    s->val[at] = v;
    if (s->idxw == 2)
        ((uint16_t *)s->idx)[at] = (uint16_t)c;
    else
        ((int32_t *)s->idx)[at] = (int32_t)c;
}

static void fill_slices(csp_sparse *s, const float *d, int64_t ld, const int64_t *count) {
    int64_t at = 0;
    for (int64_t i = 0; i < s->nslices; i++) {
        s->sptr[i] = at;
        int64_t w = 0;
        for (int64_t q = i * LANES; q < (i + 1) * LANES && q < s->rows; q++) {
            int64_t c = count[s->perm != NULL ? s->perm[q] : q];
            w = c > w ? c : w;
        }
        for (int l = 0; l < LANES; l++) {
            int64_t q = i * LANES + l, k = 0, last = 0;
            if (q < s->rows) {
                const float *row = d + (s->perm != NULL ? s->perm[q] : q) * ld;
                for (int64_t c = 0; c < s->cols; c++)
                    if (row[c] != 0.0f) {
                        put_entry(s, at + k * LANES + l, row[c], c);
                        last = c;
                        k++;
                    }
            }
            for (; k < w; k++) /* padding: value 0 at a column the row reads */
                put_entry(s, at + k * LANES + l, 0.0f, last);
        }
        at += w * LANES;
    }
    s->sptr[s->nslices] = at;
}

static void fill_rows(csp_sparse *s, const float *d, int64_t ld) {
    int64_t k = 0;
    for (int64_t r = 0; r < s->rows; r++) {
        s->rowptr[r] = k;
        for (int64_t c = 0; c < s->cols; c++)
            if (d[r * ld + c] != 0.0f)
                put_entry(s, k++, d[r * ld + c], c);
    }
    s->rowptr[s->rows] = k;
}

/* Point the arrays into the block and fill them. */
static void place_arrays(csp_sparse *s, const int64_t off[7], const int32_t *perm,
                         const float *d, int64_t ld, const int64_t *count) {
    uint8_t *b = s->block;
    s->idx = b + off[3];
    s->val = (float *)(void *)(b + off[4]);
    atomic_flag_clear(&s->ws_busy);
    if (!s->sell) {
        s->rowptr = (int64_t *)(void *)(b + off[2]);
        fill_rows(s, d, ld);
        return;
    }
    s->sptr = (int64_t *)(void *)(b + off[0]);
    s->ws = (float *)(void *)(b + off[5]);
    memset(s->ws, 0, (size_t)(off[6] - off[5]));
    if (s->format == CSP_SPARSE_CSR) {
        s->perm = (int32_t *)(void *)(b + off[1]);
        memcpy(s->perm, perm, (size_t)s->rows * sizeof *perm);
    }
    fill_slices(s, d, ld, count);
}

/* Choose between the slice layout and (CSR with uneven rows) the row
 * layout; allocate and fill. count and the scratch arrays are freed by the
 * caller. */
static csp_status lay_out(csp_sparse *s, const float *d, int64_t ld, const int64_t *count,
                          const char *fn) {
    csp_context *ctx = s->ctx;
    s->nslices = (s->rows + LANES - 1) / LANES;
    bool csr = s->format == CSP_SPARSE_CSR;
    row_key *keys = NULL;
    int32_t *perm = NULL;
    if (csr && s->rows <= INT32_MAX) {
        keys = csp__malloc(ctx, (size_t)s->rows * sizeof *keys);
        perm = csp__malloc(ctx, (size_t)s->rows * sizeof *perm);
        if (keys == NULL || perm == NULL) {
            csp__free(ctx, keys);
            csp__free(ctx, perm);
            return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        }
    }
    int64_t entries = -1;
    if (!csr || perm != NULL)
        entries = plan_slices(s, count, keys, perm);
    /* CSR keeps the slice layout when its padding costs at most a quarter */
    s->sell = entries >= 0 && (!csr || entries <= s->nnz + s->nnz / 4 + LANES * LANES);
    csp_status st = CSP_OK;
    int64_t off[7] = {0};
    if (!plan_arrays(s, entries, off))
        st = csp__error(ctx, CSP_E_OVERFLOW, "%s: the matrix is too large", fn);
    if (st == CSP_OK) {
        s->block = csp__malloc_aligned(ctx, (size_t)off[6]);
        if (s->block == NULL)
            st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    }
    if (st == CSP_OK)
        place_arrays(s, off, perm, d, ld, count);
    csp__free(ctx, keys);
    csp__free(ctx, perm);
    return st;
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
    if (format == CSP_SPARSE_NM) {
        s->nm_n = o->nm_n;
        s->nm_m = o->nm_m;
    }
    s->k = csp__sparse_kernels_get(o->kernel);
    if (st == CSP_OK)
        st = lay_out(s, d, ld, count, fn);
    csp__free(ctx, count);
    if (st != CSP_OK) {
        csp__free(ctx, s);
        return st;
    }
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
    const float *xt; /* slice layout, batched: the chunk transposed */
    int nw;          /* vectors in the chunk */
} product;

static inline void put_y(const product *p, float *yj, float dot) {
    *yj = p->beta == 0.0f ? p->alpha * dot : p->alpha * dot + p->beta * *yj;
}

/* One row of the row layout applied to vectors b .. b + nb of the batch. */
static inline void row_dot(const csp_sparse *s, int64_t r, const float *x, int64_t ldx, int nb,
                           float *out) {
    const csp__sparse_kernels *k = s->k;
    int64_t at = s->rowptr[r];
    int64_t n = s->rowptr[r + 1] - at;
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
            for (int j = 0; j < nb; j++)
                put_y(p, p->y + (b + j) * p->ldy + r, dot[j]);
        }
}

/* Slices [begin, end) of the slice layout: one vector (xt NULL) or the
 * transposed chunk of nw vectors. */
static void product_slices(void *arg, int64_t begin, int64_t end, int32_t worker) {
    (void)worker;
    const product *p = arg;
    const csp_sparse *s = p->s;
    const csp__sparse_kernels *k = s->k;
    float out[LANES * LANES] __attribute__((aligned(64)));
    for (int64_t i = begin; i < end; i++) {
        int64_t at = s->sptr[i], w = (s->sptr[i + 1] - at) / LANES;
        const float *v = s->val + at;
        const void *idx = (const uint8_t *)s->idx + at * s->idxw;
        if (p->xt == NULL) {
            if (s->idxw == 2)
                k->sell_u16(v, idx, w, p->x, out);
            else
                k->sell_i32(v, idx, w, p->x, out);
        } else if (s->idxw == 2) {
            k->sellb_u16(v, idx, w, p->xt, p->nw, out);
        } else {
            k->sellb_i32(v, idx, w, p->xt, p->nw, out);
        }
        for (int l = 0; l < LANES && i * LANES + l < s->rows; l++) {
            int64_t r = s->perm != NULL ? s->perm[i * LANES + l] : i * LANES + l;
            if (p->xt == NULL)
                put_y(p, p->y + r, out[l]);
            else
                for (int j = 0; j < p->nw; j++)
                    put_y(p, p->y + j * p->ldy + r, out[l * LANES + j]);
        }
    }
}

/* The slice layout over a batch: one vector directly, more in chunks of
 * LANES vectors transposed into the matrix's workspace (or, when another
 * call holds it, a buffer of this call's own). */
static csp_status product_sell(product *p, csp_context *ctx, const char *fn) {
    const csp_sparse *s = p->s;
    int64_t per_slice = s->nslices > 0 ? s->sptr[s->nslices] / s->nslices : 0;
    int64_t nb = p->batch < LANES ? p->batch : LANES;
    /* A thread is worth its start for ~256k multiply-adds. */
    int64_t grain = 262144 / (per_slice * nb + 1) + 1;
    if (p->batch == 1) {
        if (ctx == NULL)
            product_slices(p, 0, s->nslices, 0);
        else
            csp__parallel_for(ctx, s->nslices, grain, product_slices, p);
        return CSP_OK;
    }
    atomic_flag *busy = (atomic_flag *)&s->ws_busy;
    bool own = !atomic_flag_test_and_set(busy);
    float *xt = own ? s->ws : csp__malloc_aligned(s->ctx, (size_t)(s->cols * LANES * 4));
    if (xt == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    const float *x = p->x;
    float *y = p->y;
    for (int64_t b0 = 0; b0 < p->batch; b0 += LANES) {
        p->nw = (int)(p->batch - b0 < LANES ? p->batch - b0 : LANES);
        for (int j = 0; j < p->nw; j++) {
            const float *xj = x + (b0 + j) * p->ldx;
            for (int64_t c = 0; c < s->cols; c++)
                xt[c * LANES + j] = xj[c];
        }
        p->xt = xt;
        p->y = y + b0 * p->ldy;
        if (ctx == NULL)
            product_slices(p, 0, s->nslices, 0);
        else
            csp__parallel_for(ctx, s->nslices, grain, product_slices, p);
    }
    if (own)
        atomic_flag_clear(busy);
    else
        csp__free_aligned(s->ctx, xt);
    return CSP_OK;
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
    product p = {s, batch, ldx, ldy, alpha, beta, x, y, NULL, 1};
    if (s->sell)
        return product_sell(&p, ctx, fn);
    int64_t per_row = s->rows > 0 ? s->nnz / s->rows : 0;
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
