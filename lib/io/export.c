/* Zero-weight compressed export of one pruned tensor (CSR, bitmap, packed
 * N:M) and the decoder that expands an export back to a dense matrix.
 * Byte layouts: docs/formats.md. Nothing here allocates. */
#include <csp/io.h>

#include <string.h>

#include "core/abi.h"
#include "io/bytes.h"
#include "prune/mask.h"
#include "prune/pruner_internal.h"

#define X_MAGIC "CSPX"
#define X_VERSION 1
#define X_HEADER 80u

/* ---- layout -------------------------------------------------------------------- */

/* Where everything of an export lies. Arrays a, b, c start at 8-aligned
 * offsets: CSR (row pointers, column indices, values), bitmap (bits,
 * values, -), N:M (values, packed indices, -). */
typedef struct {
    int32_t format, vdtype;
    uint64_t rows, cols, nnz;
    uint32_t idxw, ptrw;   /* CSR: index bytes, pointer bytes; N:M: idxw = bits */
    uint32_t n, m;         /* N:M */
    uint64_t slots;        /* N:M: rows * cols / M * N */
    uint64_t off[3], len[3];
    uint64_t total;
} layout;

static uint32_t nm_bits(uint32_t m) {
    uint32_t b = 0;
    while ((1u << b) < m)
        b++;
    return b;
}

/* False when a size overflows 64 bits. */
static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

static bool compute_layout(layout *L) {
    uint64_t vs = L->vdtype == CSP_DTYPE_F64 ? 8 : 4, numel;
    if (!mul_u64(L->rows, L->cols, &numel) || numel > (uint64_t)INT64_MAX / 2)
        return false;
    uint64_t len[3] = {0, 0, 0};
    switch (L->format) {
    case CSP_EXPORT_CSR:
        if (!mul_u64(L->rows + 1, L->ptrw, &len[0]) || !mul_u64(L->nnz, L->idxw, &len[1]) ||
            !mul_u64(L->nnz, vs, &len[2]))
            return false;
        break;
    case CSP_EXPORT_BITMAP:
        len[0] = (numel + 7) / 8;
        if (!mul_u64(L->nnz, vs, &len[1]))
            return false;
        break;
    default: {
        uint64_t bits;
        if (!mul_u64(numel / L->m, L->n, &L->slots) || !mul_u64(L->slots, vs, &len[0]) ||
            !mul_u64(L->slots, L->idxw, &bits))
            return false;
        len[1] = (bits + 7) / 8;
        break;
    }
    }
    uint64_t pos = X_HEADER;
    for (int i = 0; i < 3; i++) {
        if (len[i] > (uint64_t)INT64_MAX / 4 || pos > (uint64_t)INT64_MAX / 4)
            return false;
        L->off[i] = pos;
        L->len[i] = len[i];
        pos = csp__pad8(pos + len[i]);
    }
    L->total = pos;
    return true;
}

/* ---- options ------------------------------------------------------------------- */

static void export_defaults(void *full) { ((csp_export_options *)full)->format = CSP_EXPORT_CSR; }

static const csp__struct_desc export_options_desc = {
    "csp_export_options", CSP__FIRST_SIZE_EXPORT_OPTIONS, sizeof(csp_export_options),
    export_defaults, false};
static const csp__struct_desc export_stats_desc = {
    "csp_export_stats", CSP__FIRST_SIZE_EXPORT_STATS, sizeof(csp_export_stats), NULL, false};
static const csp__struct_desc export_info_desc = {
    "csp_export_info", CSP__FIRST_SIZE_EXPORT_INFO, sizeof(csp_export_info), NULL, false};

CSP_API csp_status csp_export_options_init(csp_export_options *opts, size_t struct_size) {
    return csp__struct_init(&export_options_desc, opts, struct_size);
}

CSP_API csp_status csp_export_stats_init(csp_export_stats *stats, size_t struct_size) {
    return csp__struct_init(&export_stats_desc, stats, struct_size);
}

CSP_API csp_status csp_export_info_init(csp_export_info *info, size_t struct_size) {
    return csp__struct_init(&export_info_desc, info, struct_size);
}

/* ---- export ---------------------------------------------------------------------- */

/* Mask bits [pos, pos + n) of a tensor (all ones when excluded), 1 <= n <= 64. */
static inline uint64_t bits_of(const csp__ptensor *pt, int64_t pos, int n) {
    return pt->mask == NULL ? csp__lowmask(n) : csp__bits_load(pt->mask, pos, n);
}

static inline const uint8_t *elem(const csp_tensor *t, int64_t r, int64_t c) {
    return (const uint8_t *)t->data + (size_t)(r * t->row_stride + c) * csp__dtype_size(t->dtype);
}

/* Store the weight at @p src (tensor dtype @p td) as @p vd at @p dst. */
static inline void put_value(uint8_t *dst, const uint8_t *src, int32_t td, int32_t vd) {
    if (td == vd) {
        /* bit patterns travel unchanged (NaN payloads, -0) */
        if (vd == CSP_DTYPE_F64) {
            uint64_t u;
            memcpy(&u, src, 8);
            csp__st_u64(dst, u);
        } else {
            uint32_t u;
            memcpy(&u, src, 4);
            csp__st_u32(dst, u);
        }
    } else if (vd == CSP_DTYPE_F32) {
        double d;
        memcpy(&d, src, 8);
        csp__st_u32(dst, csp__f32_bits((float)d));
    } else {
        float f;
        memcpy(&f, src, 4);
        csp__st_u64(dst, csp__f64_bits((double)f));
    }
}

/* Resolve the options for tensor @p pt into a layout without the sizes;
 * checks N:M validity of the mask. */
static csp_status resolve(const csp_pruner *p, const csp__ptensor *pt, int32_t index,
                          const csp_export_options *o, layout *L, const char *fn) {
    csp_context *ctx = p->ctx;
    const csp_tensor *t = pt->weight;
    memset(L, 0, sizeof *L);
    L->format = o->format;
    L->vdtype = o->value_dtype == 0 ? t->dtype : o->value_dtype;
    L->rows = (uint64_t)t->rows;
    L->cols = (uint64_t)t->cols;
    L->nnz = (uint64_t)(csp__excluded(pt) ? t->numel : pt->nnz);
    if (o->format == CSP_EXPORT_CSR) {
        L->idxw = t->cols < 65536 ? 2 : (t->cols - 1 <= INT32_MAX ? 4 : 8);
        L->ptrw = L->nnz <= (uint64_t)INT32_MAX ? 4 : 8;
    } else if (o->format == CSP_EXPORT_NM) {
        int32_t n = o->nm_n, m = o->nm_m;
        if (n == 0 && m == 0) {
            if (csp__excluded(pt) || pt->conf.granularity != CSP_GRANULARITY_NM)
                return csp__error(ctx, CSP_E_STATE,
                                  "%s: tensor %d has no N:M granularity: set nm_n and nm_m", fn,
                                  (int)index);
            n = pt->conf.nm_n;
            m = pt->conf.nm_m;
        }
        if (m < 2 || m > CSP_NM_MAX_M || n < 1 || n >= m)
            return csp__error(ctx, CSP_E_RANGE, "%s: N:M = %d:%d needs 1 <= N < M <= %d", fn,
                              (int)n, (int)m, CSP_NM_MAX_M);
        if (t->cols % m != 0)
            return csp__error(ctx, CSP_E_SHAPE, "%s: tensor %d: %lld columns are not a multiple "
                              "of M = %d", fn, (int)index, (long long)t->cols, (int)m);
        L->n = (uint32_t)n;
        L->m = (uint32_t)m;
        L->idxw = nm_bits((uint32_t)m);
        /* Every group of M must keep at most N. */
        for (int64_t r = 0; r < t->rows; r++)
            for (int64_t g = 0; g < t->cols; g += m) {
                int kept = csp__popcount64(bits_of(pt, r * t->cols + g, m));
                if (kept > n)
                    return csp__error(ctx, CSP_E_STATE,
                                      "%s: tensor %d is not %d:%d: row %lld, columns %lld..%lld "
                                      "keep %d",
                                      fn, (int)index, (int)n, (int)m, (long long)r, (long long)g,
                                      (long long)(g + m - 1), kept);
            }
    }
    if (!compute_layout(L))
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: tensor %d: the export size overflows", fn,
                          (int)index);
    return CSP_OK;
}

static csp_status check_opts(const csp_pruner *p, const csp_export_options *o, const char *fn) {
    if (o->format < CSP_EXPORT_CSR || o->format > CSP_EXPORT_NM)
        return csp__error(p->ctx, CSP_E_ENUM, "%s: unknown format %d", fn, (int)o->format);
    if (o->value_dtype != 0 && o->value_dtype != CSP_DTYPE_F32 && o->value_dtype != CSP_DTYPE_F64)
        return csp__error(p->ctx, CSP_E_ENUM, "%s: unknown value_dtype %d", fn,
                          (int)o->value_dtype);
    if (o->format != CSP_EXPORT_NM && (o->nm_n != 0 || o->nm_m != 0))
        return csp__error(p->ctx, CSP_E_INVALID, "%s: nm_n and nm_m are for CSP_EXPORT_NM only",
                          fn);
    if ((o->nm_n == 0) != (o->nm_m == 0))
        return csp__error(p->ctx, CSP_E_RANGE, "%s: set both nm_n and nm_m, or neither", fn);
    return CSP_OK;
}

static void write_header(uint8_t *b, const layout *L, const csp_tensor *t) {
    memset(b, 0, X_HEADER);
    memcpy(b, X_MAGIC, 4);
    csp__st_u16(b + 4, X_VERSION);
    csp__st_u16(b + 6, X_HEADER);
    b[8] = (uint8_t)L->format;
    b[9] = (uint8_t)L->vdtype;
    b[10] = (uint8_t)t->rank;
    b[11] = (uint8_t)L->idxw;
    b[12] = (uint8_t)L->ptrw;
    b[13] = (uint8_t)L->n;
    b[14] = (uint8_t)L->m;
    csp__st_u64(b + 16, L->rows);
    csp__st_u64(b + 24, L->cols);
    csp__st_u64(b + 32, L->nnz);
    for (int d = 0; d < CSP_MAX_RANK; d++)
        csp__st_u64(b + 40 + 8 * d, d < t->rank ? (uint64_t)t->shape[d] : 0);
}

static inline void st_width(uint8_t *p, uint64_t v, uint32_t w) {
    if (w == 2)
        csp__st_u16(p, (uint16_t)v);
    else if (w == 4)
        csp__st_u32(p, (uint32_t)v);
    else
        csp__st_u64(p, v);
}

/* OR the low @p bits of @p v into the bit stream @p s at bit @p pos. */
static inline void put_bits(uint8_t *s, uint64_t pos, uint32_t bits, uint32_t v) {
    for (uint32_t i = 0; i < bits; i++, pos++)
        if ((v >> i) & 1u)
            s[pos / 8] |= (uint8_t)(1u << (pos % 8));
}

static void write_payload(const csp__ptensor *pt, const layout *L, uint8_t *b) {
    const csp_tensor *t = pt->weight;
    const int64_t rows = t->rows, cols = t->cols;
    const uint32_t vs = L->vdtype == CSP_DTYPE_F64 ? 8 : 4;
    if (L->format == CSP_EXPORT_NM) {
        uint8_t *vals = b + L->off[0], *idx = b + L->off[1];
        uint64_t slot = 0;
        const int m = (int)L->m;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < cols; g += m) {
                uint64_t kept = bits_of(pt, r * cols + g, m);
                /* The N slots: the kept positions, completed by the lowest
                 * pruned ones (value 0), in increasing position. */
                uint64_t chosen = kept;
                for (int j = 0; j < m && csp__popcount64(chosen) < (int)L->n; j++)
                    chosen |= 1ULL << j;
                for (int j = 0; j < m; j++) {
                    if (!((chosen >> j) & 1))
                        continue;
                    if ((kept >> j) & 1)
                        put_value(vals + slot * vs, elem(t, r, g + j), t->dtype, L->vdtype);
                    put_bits(idx, slot * L->idxw, L->idxw, (uint32_t)j);
                    slot++;
                }
            }
        return;
    }
    uint8_t *ptrs = L->format == CSP_EXPORT_CSR ? b + L->off[0] : NULL;
    uint8_t *cidx = L->format == CSP_EXPORT_CSR ? b + L->off[1] : NULL;
    uint8_t *bitmap = L->format == CSP_EXPORT_BITMAP ? b + L->off[0] : NULL;
    uint8_t *vals = b + (L->format == CSP_EXPORT_CSR ? L->off[2] : L->off[1]);
    uint64_t k = 0;
    if (ptrs != NULL)
        st_width(ptrs, 0, L->ptrw);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c += 64) {
            int n = cols - c < 64 ? (int)(cols - c) : 64;
            int64_t flat = r * cols + c;
            uint64_t bits = bits_of(pt, flat, n);
            if (bitmap != NULL)
                for (int j = 0; j < n; j++)
                    if ((bits >> j) & 1)
                        bitmap[(flat + j) / 8] |= (uint8_t)(1u << ((flat + j) % 8));
            while (bits != 0) {
                int j = __builtin_ctzll(bits);
                bits &= bits - 1;
                if (cidx != NULL)
                    st_width(cidx + k * L->idxw, (uint64_t)(c + j), L->idxw);
                put_value(vals + k * vs, elem(t, r, c + j), t->dtype, L->vdtype);
                k++;
            }
        }
        if (ptrs != NULL)
            st_width(ptrs + (uint64_t)(r + 1) * L->ptrw, k, L->ptrw);
    }
}

static csp_status export_prepare(const csp_pruner *pruner, int32_t index,
                                 const csp_export_options *opts, layout *L, const char *fn) {
    csp_export_options full;
    csp_status st = csp__struct_in(pruner->ctx, &export_options_desc, opts, &full, fn);
    if (st == CSP_OK)
        st = check_opts(pruner, &full, fn);
    if (st != CSP_OK)
        return st;
    if (index < 0 || index >= pruner->num_tensors)
        return csp__error(pruner->ctx, CSP_E_RANGE, "%s: tensor index %d is outside 0..%d", fn,
                          (int)index, (int)pruner->num_tensors - 1);
    return resolve(pruner, &pruner->tensors[index], index, &full, L, fn);
}

CSP_API csp_status csp_pruner_export(const csp_pruner *pruner, int32_t index,
                                     const csp_export_options *opts, void *buf, int64_t capacity,
                                     int64_t *size) {
    const char *fn = "csp_pruner_export";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, size, "size");
    layout L;
    csp_status st = export_prepare(pruner, index, opts, &L, fn);
    if (st != CSP_OK)
        return st;
    *size = (int64_t)L.total;
    if (buf == NULL)
        return CSP_OK;
    if (capacity < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: capacity %lld is negative", fn,
                          (long long)capacity);
    if ((uint64_t)capacity < L.total)
        return csp__error(ctx, CSP_E_BUFFER, "%s: %llu bytes needed, %lld given", fn,
                          (unsigned long long)L.total, (long long)capacity);
    uint8_t *b = buf;
    memset(b, 0, (size_t)L.total);
    const csp__ptensor *pt = &pruner->tensors[index];
    write_header(b, &L, pt->weight);
    write_payload(pt, &L, b);
    uint32_t crc = csp__crc32(0, b, X_HEADER - 4);
    crc = csp__crc32(crc, b + X_HEADER, (size_t)(L.total - X_HEADER));
    csp__st_u32(b + X_HEADER - 4, crc);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_export_stats(const csp_pruner *pruner, int32_t index,
                                           const csp_export_options *opts,
                                           csp_export_stats *stats) {
    const char *fn = "csp_pruner_export_stats";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    csp_status st = csp__struct_out_check(ctx, &export_stats_desc, stats, fn);
    if (st != CSP_OK)
        return st;
    if (index < -1 || index >= pruner->num_tensors)
        return csp__error(ctx, CSP_E_RANGE, "%s: tensor index %d is outside -1..%d", fn,
                          (int)index, (int)pruner->num_tensors - 1);
    int32_t lo = index < 0 ? 0 : index, hi = index < 0 ? pruner->num_tensors : index + 1;
    csp_export_stats s;
    memset(&s, 0, sizeof s);
    for (int32_t i = lo; i < hi; i++) {
        const csp__ptensor *pt = &pruner->tensors[i];
        if (index < 0 && csp__excluded(pt))
            continue;
        layout L;
        st = export_prepare(pruner, i, opts, &L, fn);
        if (st != CSP_OK)
            return st;
        const csp_tensor *t = pt->weight;
        s.numel += t->numel;
        s.nnz += (int64_t)L.nnz;
        s.bytes += (int64_t)L.total;
        s.dense_bytes += t->numel * (int64_t)csp__dtype_size(t->dtype);
        s.header_bytes += X_HEADER;
        int vi = L.format == CSP_EXPORT_CSR ? 2 : (L.format == CSP_EXPORT_BITMAP ? 1 : 0);
        for (int a = 0; a < 3; a++) {
            int64_t padded = (int64_t)csp__pad8(L.len[a]);
            if (a == vi)
                s.value_bytes += padded;
            else
                s.index_bytes += padded;
        }
    }
    s.ratio = s.dense_bytes > 0 ? (double)s.bytes / (double)s.dense_bytes : 0.0;
    csp__struct_out(&export_stats_desc, &s, stats);
    return CSP_OK;
}

/* ---- inspect and decode --------------------------------------------------------- */

static csp_status bad(csp_context *ctx, const char *fn, const char *what) {
    return csp__error(ctx, CSP_E_CORRUPT, "%s: %s", fn, what);
}

/* Largest column index a CSR index of @p w bytes holds (uint16, int32, int64). */
static uint64_t max_index(uint32_t w) {
    return w == 2 ? UINT16_MAX : (w == 4 ? (uint64_t)INT32_MAX : (uint64_t)INT64_MAX);
}

/* Parse and check the header and the size (not the payload). */
static csp_status parse(csp_context *ctx, const uint8_t *b, uint64_t size, layout *L,
                        int32_t *rank, int64_t shape[CSP_MAX_RANK], const char *fn) {
    if (size >= 4 && memcmp(b, X_MAGIC, 4) != 0)
        return bad(ctx, fn, "not a libcsp export (bad magic)");
    if (size < X_HEADER)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: truncated: %llu bytes, the header has %u", fn,
                          (unsigned long long)size, X_HEADER);
    uint32_t version = csp__ld_u16(b + 4), hsize = csp__ld_u16(b + 6);
    if (hsize != X_HEADER && version == X_VERSION)
        return bad(ctx, fn, "bad header size");
    if (hsize < X_HEADER || hsize % 8 != 0 || hsize > size)
        return bad(ctx, fn, "bad header size or truncated header");
    uint32_t crc = csp__crc32(0, b, hsize - 4);
    crc = csp__crc32(crc, b + hsize, (size_t)(size - hsize));
    bool crc_ok = crc == csp__ld_u32(b + hsize - 4);
    if (crc_ok && version != X_VERSION)
        return csp__error(ctx, CSP_E_VERSION,
                          "%s: export version %lu; this library (%s) reads version %d", fn,
                          (unsigned long)version, csp_version_string(), X_VERSION);
    memset(L, 0, sizeof *L);
    L->format = b[8];
    L->vdtype = b[9];
    *rank = b[10];
    L->idxw = b[11];
    L->ptrw = b[12];
    L->n = b[13];
    L->m = b[14];
    L->rows = csp__ld_u64(b + 16);
    L->cols = csp__ld_u64(b + 24);
    L->nnz = csp__ld_u64(b + 32);
    bool fields = version == X_VERSION && b[15] == 0 && csp__ld_u32(b + 72) == 0 && *rank >= 1 &&
                  *rank <= CSP_MAX_RANK &&
                  (L->vdtype == CSP_DTYPE_F32 || L->vdtype == CSP_DTYPE_F64);
    uint64_t numel = 1;
    for (int d = 0; d < CSP_MAX_RANK; d++) {
        uint64_t v = csp__ld_u64(b + 40 + 8 * d);
        shape[d] = (int64_t)v;
        if (d < *rank)
            fields = fields && v >= 1 && v <= (uint64_t)INT64_MAX && mul_u64(numel, v, &numel) &&
                     numel <= (uint64_t)INT64_MAX;
        else
            fields = fields && v == 0;
    }
    if (fields) {
        uint64_t rows = *rank == 1 ? 1 : (uint64_t)shape[0];
        fields = L->rows == rows && L->cols == numel / rows && L->nnz <= numel;
    }
    bool known_format = L->format >= CSP_EXPORT_CSR && L->format <= CSP_EXPORT_NM;
    if (fields && known_format) {
        switch (L->format) {
        case CSP_EXPORT_CSR:
            fields = (L->idxw == 2 || L->idxw == 4 || L->idxw == 8) &&
                     (L->ptrw == 4 || L->ptrw == 8) && L->n == 0 && L->m == 0 &&
                     L->cols - 1 <= max_index(L->idxw) &&
                     (L->ptrw == 8 || L->nnz <= (uint64_t)INT32_MAX);
            break;
        case CSP_EXPORT_BITMAP:
            fields = L->idxw == 0 && L->ptrw == 0 && L->n == 0 && L->m == 0;
            break;
        default:
            fields = L->m >= 2 && L->m <= CSP_NM_MAX_M && L->n >= 1 && L->n < L->m &&
                     L->cols % L->m == 0 && L->idxw == nm_bits(L->m) && L->ptrw == 0;
            break;
        }
    }
    bool sized = fields && known_format && compute_layout(L);
    if (!crc_ok) {
        if (sized && L->total > size)
            return csp__error(ctx, CSP_E_CORRUPT, "%s: truncated: %llu bytes of %llu", fn,
                              (unsigned long long)size, (unsigned long long)L->total);
        if (sized && L->total < size)
            return csp__error(ctx, CSP_E_CORRUPT, "%s: %llu bytes after the end of the export",
                              fn, (unsigned long long)(size - L->total));
        return bad(ctx, fn, "CRC mismatch");
    }
    if (!known_format && fields)
        return csp__error(ctx, CSP_E_VERSION,
                          "%s: export format %d is unknown to this library (%s)", fn,
                          (int)L->format, csp_version_string());
    if (!fields || !sized)
        return bad(ctx, fn, "inconsistent header fields");
    if (L->total != size)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: the header implies %llu bytes, %llu given", fn,
                          (unsigned long long)L->total, (unsigned long long)size);
    return CSP_OK;
}

static csp_status check_null_size(csp_context *ctx, const void *buf, int64_t size,
                                  const char *fn) {
    CSP_CHECK_NULL(ctx, buf, "buf");
    if (size < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: size %lld is negative", fn, (long long)size);
    return CSP_OK;
}

CSP_API csp_status csp_export_inspect(csp_context *ctx, const void *buf, int64_t size,
                                      csp_export_info *info) {
    const char *fn = "csp_export_inspect";
    csp_status st = check_null_size(ctx, buf, size, fn);
    if (st != CSP_OK)
        return st;
    st = csp__struct_out_check(ctx, &export_info_desc, info, fn);
    if (st != CSP_OK)
        return st;
    layout L;
    csp_export_info x;
    memset(&x, 0, sizeof x);
    st = parse(ctx, buf, (uint64_t)size, &L, &x.rank, x.shape, fn);
    if (st != CSP_OK)
        return st;
    x.format = L.format;
    x.value_dtype = L.vdtype;
    x.nm_n = (int32_t)L.n;
    x.nm_m = (int32_t)L.m;
    x.index_bytes = (int32_t)L.idxw;
    x.pointer_bytes = (int32_t)L.ptrw;
    x.version = X_VERSION;
    x.rows = (int64_t)L.rows;
    x.cols = (int64_t)L.cols;
    x.nnz = (int64_t)L.nnz;
    x.bytes = (int64_t)L.total;
    csp__struct_out(&export_info_desc, &x, info);
    return CSP_OK;
}

static inline uint64_t ld_width(const uint8_t *p, uint32_t w) {
    return w == 2 ? csp__ld_u16(p) : (w == 4 ? csp__ld_u32(p) : csp__ld_u64(p));
}

static inline uint32_t get_bits(const uint8_t *s, uint64_t pos, uint32_t bits) {
    uint32_t v = 0;
    for (uint32_t i = 0; i < bits; i++, pos++)
        v |= (uint32_t)((s[pos / 8] >> (pos % 8)) & 1u) << i;
    return v;
}

static bool zero_bytes(const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Check the payload: sorted in-range indices, counts, zero padding. */
static csp_status check_payload(csp_context *ctx, const uint8_t *b, const layout *L,
                                const char *fn) {
    for (int a = 0; a < 3; a++)
        if (!zero_bytes(b + L->off[a] + L->len[a], csp__pad8(L->off[a] + L->len[a]) -
                                                       (L->off[a] + L->len[a])))
            return bad(ctx, fn, "non-zero padding");
    if (L->format == CSP_EXPORT_CSR) {
        const uint8_t *ptrs = b + L->off[0], *cidx = b + L->off[1];
        if (ld_width(ptrs, L->ptrw) != 0)
            return bad(ctx, fn, "the first row pointer is not 0");
        uint64_t prev = 0;
        for (uint64_t r = 0; r < L->rows; r++) {
            uint64_t end = ld_width(ptrs + (r + 1) * L->ptrw, L->ptrw);
            if (end < prev || end > L->nnz)
                return csp__error(ctx, CSP_E_CORRUPT, "%s: row pointer %llu is out of order", fn,
                                  (unsigned long long)(r + 1));
            for (uint64_t k = prev; k < end; k++) {
                uint64_t c = ld_width(cidx + k * L->idxw, L->idxw);
                if (c >= L->cols || (k > prev && c <= ld_width(cidx + (k - 1) * L->idxw, L->idxw)))
                    return csp__error(ctx, CSP_E_CORRUPT,
                                      "%s: row %llu: column indices out of range or not "
                                      "increasing",
                                      fn, (unsigned long long)r);
            }
            prev = end;
        }
        if (prev != L->nnz)
            return bad(ctx, fn, "the last row pointer is not nnz");
    } else if (L->format == CSP_EXPORT_BITMAP) {
        const uint8_t *bm = b + L->off[0];
        uint64_t numel = L->rows * L->cols, ones = 0;
        for (uint64_t i = 0; i < L->len[0]; i++)
            ones += (uint64_t)__builtin_popcount(bm[i]);
        if (numel % 8 != 0 && (bm[L->len[0] - 1] >> (numel % 8)) != 0)
            return bad(ctx, fn, "bitmap bits set past the last weight");
        if (ones != L->nnz)
            return bad(ctx, fn, "the bitmap's popcount is not nnz");
    } else {
        const uint8_t *idx = b + L->off[1];
        uint64_t groups = L->slots / L->n, bits = L->slots * L->idxw;
        if (L->nnz > L->slots)
            return bad(ctx, fn, "nnz exceeds the N:M slots");
        for (uint64_t g = 0; g < groups; g++) {
            uint32_t last = 0;
            for (uint32_t j = 0; j < L->n; j++) {
                uint32_t v = get_bits(idx, (g * L->n + j) * L->idxw, L->idxw);
                if (v >= L->m || (j > 0 && v <= last))
                    return csp__error(ctx, CSP_E_CORRUPT,
                                      "%s: N:M group %llu: indices out of range or not increasing",
                                      fn, (unsigned long long)g);
                last = v;
            }
        }
        if (bits % 8 != 0 && (idx[L->len[1] - 1] >> (bits % 8)) != 0)
            return bad(ctx, fn, "index bits set past the last slot");
    }
    return CSP_OK;
}

static inline void out_value(void *dense, int32_t od, uint64_t at, const uint8_t *src,
                             int32_t vd) {
    if (vd == CSP_DTYPE_F64) {
        double d = csp__bits_f64(csp__ld_u64(src));
        if (od == CSP_DTYPE_F64)
            ((double *)dense)[at] = d;
        else
            ((float *)dense)[at] = (float)d;
    } else {
        float f = csp__bits_f32(csp__ld_u32(src));
        if (od == CSP_DTYPE_F32)
            ((float *)dense)[at] = f;
        else
            ((double *)dense)[at] = (double)f;
    }
}

CSP_API csp_status csp_export_decode(csp_context *ctx, const void *buf, int64_t size, void *dense,
                                     int32_t dtype, int64_t row_stride, int64_t capacity) {
    const char *fn = "csp_export_decode";
    csp_status st = check_null_size(ctx, buf, size, fn);
    if (st != CSP_OK)
        return st;
    CSP_CHECK_NULL(ctx, dense, "dense");
    if (dtype != 0 && dtype != CSP_DTYPE_F32 && dtype != CSP_DTYPE_F64)
        return csp__error(ctx, CSP_E_ENUM, "%s: unknown dtype %d", fn, (int)dtype);
    if (row_stride < 0 || capacity < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: row_stride and capacity must be >= 0", fn);
    const uint8_t *b = buf;
    layout L;
    int32_t rank;
    int64_t shape[CSP_MAX_RANK];
    st = parse(ctx, b, (uint64_t)size, &L, &rank, shape, fn);
    if (st != CSP_OK)
        return st;
    int32_t od = dtype == 0 ? L.vdtype : dtype;
    uint64_t es = od == CSP_DTYPE_F64 ? 8 : 4;
    uint64_t ld = row_stride == 0 ? L.cols : (uint64_t)row_stride;
    if (ld < L.cols)
        return csp__error(ctx, CSP_E_SHAPE, "%s: row_stride %lld is smaller than a row (%llu)", fn,
                          (long long)row_stride, (unsigned long long)L.cols);
    uint64_t span, bytes;
    if (!mul_u64(L.rows - 1, ld, &span) || span > UINT64_MAX - L.cols ||
        !mul_u64(span + L.cols, es, &bytes) || bytes > (uint64_t)INT64_MAX)
        return csp__error(ctx, CSP_E_OVERFLOW, "%s: the dense size overflows", fn);
    if ((uint64_t)capacity < bytes)
        return csp__error(ctx, CSP_E_BUFFER, "%s: %llu bytes needed, %lld given", fn,
                          (unsigned long long)bytes, (long long)capacity);
    if ((uintptr_t)dense % es != 0)
        return csp__error(ctx, CSP_E_INVALID, "%s: dense is not aligned to %llu bytes", fn,
                          (unsigned long long)es);
    /* The decoder reads the export while it writes the output: shared bytes
     * would change the indices it has checked under its feet (and send the
     * writes anywhere). Refuse any overlap with the bytes it writes. */
    uintptr_t in0 = (uintptr_t)b, out0 = (uintptr_t)dense;
    if (in0 < out0 + (uintptr_t)bytes && out0 < in0 + (uintptr_t)size)
        return csp__error(ctx, CSP_E_INVALID,
                          "%s: the output (%llu bytes at dense) overlaps the export (%lld bytes "
                          "at buf); decode into separate memory",
                          fn, (unsigned long long)bytes, (long long)size);
    st = check_payload(ctx, b, &L, fn);
    if (st != CSP_OK)
        return st;

    for (uint64_t r = 0; r < L.rows; r++)
        memset((uint8_t *)dense + r * ld * es, 0, (size_t)(L.cols * es));
    const uint32_t vs = L.vdtype == CSP_DTYPE_F64 ? 8 : 4;
    if (L.format == CSP_EXPORT_CSR) {
        const uint8_t *ptrs = b + L.off[0], *cidx = b + L.off[1], *vals = b + L.off[2];
        uint64_t k = 0;
        for (uint64_t r = 0; r < L.rows; r++) {
            uint64_t end = ld_width(ptrs + (r + 1) * L.ptrw, L.ptrw);
            for (; k < end; k++)
                out_value(dense, od, r * ld + ld_width(cidx + k * L.idxw, L.idxw),
                          vals + k * vs, L.vdtype);
        }
    } else if (L.format == CSP_EXPORT_BITMAP) {
        const uint8_t *bm = b + L.off[0], *vals = b + L.off[1];
        uint64_t k = 0, numel = L.rows * L.cols;
        for (uint64_t byte = 0; byte < L.len[0]; byte++) {
            unsigned v = bm[byte];
            while (v != 0) {
                unsigned j = (unsigned)__builtin_ctz(v);
                v &= v - 1;
                uint64_t i = byte * 8 + j;
                if (i < numel)
                    out_value(dense, od, (i / L.cols) * ld + i % L.cols, vals + k++ * vs,
                              L.vdtype);
            }
        }
    } else {
        const uint8_t *vals = b + L.off[0], *idx = b + L.off[1];
        uint64_t gpr = L.cols / L.m, slot = 0;
        for (uint64_t r = 0; r < L.rows; r++)
            for (uint64_t g = 0; g < gpr; g++)
                for (uint32_t j = 0; j < L.n; j++, slot++)
                    out_value(dense, od, r * ld + g * L.m + get_bits(idx, slot * L.idxw, L.idxw),
                              vals + slot * vs, L.vdtype);
    }
    return CSP_OK;
}
