/* Sensing operators: identity, random Gaussian / Rademacher Phi (only
 * G = Phi^T Phi is built, from blocks of Phi rows), running activation
 * Grams, and a user-supplied Gram. */
#include "sensing_internal.h"

/* The random Grams are sums in a fixed order with no fused multiply-add, so
 * they are the same bit for bit on every platform. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Rows of X per float32 SYRK in observe(): each chunk's products are summed
 * in float32 (relative error <= OBS_CHUNK * 2^-24 of the absolute sum) and
 * the chunks in float64. */
#define OBS_CHUNK 128
/* Rows of Phi generated at a time when building a Gaussian Gram. */
#define PHI_BLOCK 32

struct csp_sensing {
    csp_context *ctx;
    int32_t kind;
    int64_t n, m;
    uint64_t tensor_id;
    double damping;
    /* Random kinds: scratch (Gaussian: PHI_BLOCK x n doubles; Rademacher:
     * n x mw words, one bit set per column). */
    double *zblock;
    uint64_t *colbits;
    int64_t mw;
    /* Activations: S (upper triangle used), N, and the SYRK's float32
     * scratch (CSP__SYRK_SCRATCH_ROWS x n). */
    double *xtx;
    float *xbuf;
    int64_t count;
    /* The prepared Gram and what it was prepared for. */
    csp__gram gram;
    bool gram_valid;
    int64_t gram_block, gram_event;
};

static const char *kind_name(int32_t kind) {
    switch (kind) {
    case CSP_SENSING_IDENTITY: return "identity";
    case CSP_SENSING_GAUSSIAN: return "gaussian";
    case CSP_SENSING_RADEMACHER: return "rademacher";
    case CSP_SENSING_ACTIVATIONS: return "activations";
    case CSP_SENSING_GRAM: return "gram";
    default: return "unknown";
    }
}

static bool is_random(int32_t kind) {
    return kind == CSP_SENSING_GAUSSIAN || kind == CSP_SENSING_RADEMACHER;
}

#define ROW(member, type, def, lo, hi, fl, pfl, en, doc)                                     \
    {#member, doc, en, CSP_OPTION_##type, fl, 0,                                                \
     {offsetof(csp_sensing_options, member), -1, -1}, lo, hi, def,                     \
     offsetof(csp_sensing_options, member)},
static const csp__option option_rows[] = {CSP__SENSING_OPTIONS(ROW)};
#undef ROW

static void sensing_defaults(void *full) {
    csp__options_defaults(option_rows, sizeof option_rows / sizeof option_rows[0], 0, full);
}

const csp__struct_desc csp__sensing_options_desc = {
    "csp_sensing_options", CSP__FIRST_SIZE_SENSING_OPTIONS, sizeof(csp_sensing_options),
    sensing_defaults, true};

CSP_API csp_status csp_sensing_options_init(csp_sensing_options *opts, size_t struct_size) {
    return csp__struct_init(&csp__sensing_options_desc, opts, struct_size);
}

csp_status csp__sensing_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                      const csp_sensing_options *o) {
    static const size_t keep[1] = {0};
    csp_status st = csp__options_unknown_zero(ctx, fn, prefix, option_rows,
                                              sizeof option_rows / sizeof option_rows[0], 0, o,
                                              sizeof *o, keep, 1);
    if (st != CSP_OK)
        return st;
    return csp__options_check(ctx, fn, prefix, option_rows,
                              sizeof option_rows / sizeof option_rows[0], 0, o);
}

CSP_API csp_status csp_sensing_create(csp_sensing **out, csp_context *ctx,
                                      const csp_sensing_options *caller) {
    static const char fn[] = "csp_sensing_create";
    if (out == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (ctx == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(ctx, caller, "opts");
    csp_sensing_options full;
    const csp_sensing_options *opts = &full;
    csp_status st = csp__struct_in(ctx, &csp__sensing_options_desc, caller, &full, fn);
    if (st == CSP_OK)
        st = csp__sensing_options_check(ctx, fn, "", opts);
    if (st != CSP_OK)
        return st;
    int32_t kind = opts->kind;
    int64_t n = opts->n;
    int64_t m = n;
    if (is_random(kind)) {
        m = opts->m > 0 ? opts->m : (int64_t)ceil(opts->rho * (double)n);
        if (m < 1)
            m = 1;
    }

    csp_sensing *s = csp__calloc(ctx, 1, sizeof *s);
    if (s == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
    s->ctx = ctx;
    s->kind = kind;
    s->n = n;
    s->m = m;
    s->tensor_id = opts->tensor_id;
    s->damping = opts->damping;
    s->mw = (m + 63) / 64;
    size_t nn = (size_t)n * (size_t)n;
    st = CSP_OK;
    if (kind != CSP_SENSING_IDENTITY) {
        st = csp__gram_alloc(ctx, &s->gram, n);
        if (st == CSP_OK && kind == CSP_SENSING_GAUSSIAN) {
            s->zblock = csp__malloc_aligned(ctx, (size_t)PHI_BLOCK * (size_t)n * sizeof(double));
            if (s->zblock == NULL)
                st = CSP_E_NOMEM;
        }
        if (st == CSP_OK && kind == CSP_SENSING_RADEMACHER) {
            s->colbits = csp__malloc(ctx, (size_t)n * (size_t)s->mw * sizeof(uint64_t));
            if (s->colbits == NULL)
                st = CSP_E_NOMEM;
        }
        if (st == CSP_OK && kind == CSP_SENSING_ACTIVATIONS) {
            s->xtx = csp__calloc(ctx, nn, sizeof(double));
            s->xbuf = csp__malloc_aligned(ctx, (size_t)CSP__SYRK_SCRATCH_ROWS * (size_t)n *
                                                     sizeof(float));
            if (s->xtx == NULL || s->xbuf == NULL)
                st = CSP_E_NOMEM;
        }
    }
    if (st != CSP_OK) {
        csp_sensing_free(s);
        return csp__error(ctx, st, "%s: out of memory for a %s operator with n = %lld", fn,
                          kind_name(kind), (long long)n);
    }
    s->gram_valid = kind == CSP_SENSING_IDENTITY;
    s->gram.n = n;
    s->gram.identity = kind == CSP_SENSING_IDENTITY;
    /* G = Phi^T Phi with m rows of Phi: rank <= m. */
    if ((kind == CSP_SENSING_GAUSSIAN || kind == CSP_SENSING_RADEMACHER) && s->m < n)
        s->gram.rank_bound = s->m;
    s->gram.mean_diag = s->gram.max_diag = s->gram.lmax = 1.0;
    if (kind != CSP_SENSING_IDENTITY)
        s->gram.lmax = 0.0;
    *out = s;
    return CSP_OK;
}

CSP_API void csp_sensing_free(csp_sensing *s) {
    if (s == NULL)
        return;
    csp_context *ctx = s->ctx;
    csp__gram_release(ctx, &s->gram);
    csp__free_aligned(ctx, s->zblock);
    csp__free(ctx, s->colbits);
    csp__free(ctx, s->xtx);
    csp__free_aligned(ctx, s->xbuf);
    csp__free(ctx, s);
}

CSP_API int32_t csp_sensing_kind(const csp_sensing *s) { return s == NULL ? 0 : s->kind; }
CSP_API int64_t csp_sensing_n(const csp_sensing *s) { return s == NULL ? 0 : s->n; }
CSP_API int64_t csp_sensing_m(const csp_sensing *s) { return s == NULL ? 0 : s->m; }

CSP_API int64_t csp_sensing_count(const csp_sensing *s) {
    return s == NULL || s->kind != CSP_SENSING_ACTIVATIONS ? 0 : s->count;
}

csp_context *csp__sensing_ctx(const csp_sensing *s) { return s->ctx; }

bool csp__sensing_ready(const csp_sensing *s) {
    if (s->kind == CSP_SENSING_ACTIVATIONS)
        return s->gram_valid || s->count > 0;
    if (s->kind == CSP_SENSING_GRAM)
        return s->gram_valid;
    return true;
}

/* ---- random operators --------------------------------------------------------- */

uint64_t csp__sensing_key(const csp_sensing *s, int64_t row_block, int64_t event) {
    return csp__key(s->ctx->seed ^ 0x5e45196e7f1d2c3bULL, s->tensor_id, (uint64_t)row_block,
                    (uint64_t)event);
}

/* Phi[i][j] of a Gaussian operator, times sqrt(m): a standard normal. */
static inline double gauss_entry(uint64_t key, int64_t n, int64_t i, int64_t j) {
    return csp__normal(key, (uint64_t)i * (uint64_t)n + (uint64_t)j);
}

/* Column j of a Rademacher Phi as bits over its m rows (1 = -1). */
static inline uint64_t rade_word(uint64_t key, int64_t mw, int64_t m, int64_t j, int64_t w) {
    uint64_t bits = csp__rand64(key, (uint64_t)j * (uint64_t)mw + (uint64_t)w);
    int64_t left = m - 64 * w;
    if (left < 64)
        bits &= ((uint64_t)1 << left) - 1u;
    return bits;
}

typedef struct {
    const csp_sensing *s;
    uint64_t key;
    int64_t i0, rows; /* Gaussian: Phi rows in zblock */
} gram_job;

static void gauss_fill(void *arg, int64_t b, int64_t e, int32_t worker) {
    (void)worker;
    const gram_job *j = arg;
    int64_t n = j->s->n;
    for (int64_t r = b; r < e; r++) {
        int64_t i = j->i0 + r;
        double *z = j->s->zblock + r * n;
        for (int64_t c = 0; c < n; c++)
            z[c] = gauss_entry(j->key, n, i, c);
    }
}

/* G[a][c] += sum over the block's rows i, in order, of z[i][a] * z[i][c],
 * for c >= a. The product is its own statement so no compiler fuses it into
 * an FMA: the sum is the same bit for bit everywhere. */
static void gauss_accumulate(void *arg, int64_t b, int64_t e, int32_t worker) {
    (void)worker;
    const gram_job *j = arg;
    int64_t n = j->s->n;
    double *G = j->s->gram.g64;
    for (int64_t a = b; a < e; a++) {
        double *ga = G + a * n;
        for (int64_t r = 0; r < j->rows; r++) {
            const double *z = j->s->zblock + r * n;
            double za = z[a];
            for (int64_t c = a; c < n; c++) {
                double p = za * z[c];
                ga[c] = ga[c] + p;
            }
        }
    }
}

static void rade_fill(void *arg, int64_t b, int64_t e, int32_t worker) {
    (void)worker;
    const gram_job *j = arg;
    const csp_sensing *s = j->s;
    for (int64_t c = b; c < e; c++)
        for (int64_t w = 0; w < s->mw; w++)
            s->colbits[c * s->mw + w] = rade_word(j->key, s->mw, s->m, c, w);
}

static void rade_gram(void *arg, int64_t b, int64_t e, int32_t worker) {
    (void)worker;
    const gram_job *j = arg;
    const csp_sensing *s = j->s;
    int64_t n = s->n, mw = s->mw;
    double m = (double)s->m;
    for (int64_t a = b; a < e; a++) {
        const uint64_t *ca = s->colbits + a * mw;
        for (int64_t c = a; c < n; c++) {
            const uint64_t *cc = s->colbits + c * mw;
            int64_t diff = 0;
            for (int64_t w = 0; w < mw; w++)
                diff += __builtin_popcountll(ca[w] ^ cc[w]);
            /* sum_i s_ia s_ic = m - 2 * (rows where the signs differ): an
             * exact integer, divided once. */
            s->gram.g64[a * n + c] = (m - 2.0 * (double)diff) / m;
        }
    }
}

static void mirror_upper(double *G, int64_t n) {
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = 0; c < a; c++)
            G[a * n + c] = G[c * n + a];
}

static void build_random(csp_sensing *s, int64_t row_block, int64_t event) {
    int64_t n = s->n, m = s->m;
    gram_job job = {s, csp__sensing_key(s, row_block, event), 0, 0};
    double *G = s->gram.g64;
    if (s->kind == CSP_SENSING_RADEMACHER) {
        csp__parallel_for(s->ctx, n, 16, rade_fill, &job);
        csp__parallel_for(s->ctx, n, 16, rade_gram, &job);
    } else {
        memset(G, 0, (size_t)n * (size_t)n * sizeof(double));
        for (int64_t i0 = 0; i0 < m; i0 += PHI_BLOCK) {
            job.i0 = i0;
            job.rows = m - i0 < PHI_BLOCK ? m - i0 : PHI_BLOCK;
            csp__parallel_for(s->ctx, job.rows, 4, gauss_fill, &job);
            csp__parallel_for(s->ctx, n, 16, gauss_accumulate, &job);
        }
        double md = (double)m;
        for (int64_t a = 0; a < n; a++)
            for (int64_t c = a; c < n; c++)
                G[a * n + c] = G[a * n + c] / md;
    }
    mirror_upper(G, n);
}

/* ---- prepare --------------------------------------------------------------------- */

static csp_status check_key(csp_context *ctx, int64_t row_block, int64_t event, const char *fn) {
    if (row_block < 0 || event < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: row_block = %lld and event = %lld must be >= 0",
                          fn, (long long)row_block, (long long)event);
    return CSP_OK;
}

static csp_status prepare(csp_sensing *s, int64_t row_block, int64_t event, const char *fn) {
    csp_status st = check_key(s->ctx, row_block, event, fn);
    if (st != CSP_OK)
        return st;
    int64_t n = s->n;
    switch (s->kind) {
    case CSP_SENSING_IDENTITY:
        return CSP_OK;
    case CSP_SENSING_GAUSSIAN:
    case CSP_SENSING_RADEMACHER:
        if (s->gram_valid && s->gram_block == row_block && s->gram_event == event)
            return CSP_OK;
        build_random(s, row_block, event);
        s->gram_block = row_block;
        s->gram_event = event;
        break;
    case CSP_SENSING_ACTIVATIONS: {
        if (s->gram_valid)
            return CSP_OK;
        if (s->count == 0)
            return csp__error(s->ctx, CSP_E_STATE,
                              "%s: the activations operator has observed no rows yet", fn);
        double inv = 1.0 / (double)s->count, trace = 0.0;
        double *G = s->gram.g64;
        for (int64_t a = 0; a < n; a++) {
            for (int64_t c = a; c < n; c++)
                G[a * n + c] = s->xtx[a * n + c] * inv;
            trace += G[a * n + a];
        }
        double mean = trace / (double)n;
        double eps = s->damping * (mean > 0.0 ? mean : 1.0);
        for (int64_t a = 0; a < n; a++)
            G[a * n + a] += eps;
        mirror_upper(G, n);
        break;
    }
    case CSP_SENSING_GRAM:
        if (!s->gram_valid)
            return csp__error(s->ctx, CSP_E_STATE,
                              "%s: no Gram set yet (call csp_sensing_set_gram())", fn);
        return CSP_OK;
    default:
        return csp__error(s->ctx, CSP_E_STATE, "%s: corrupt operator", fn);
    }
    csp__gram_finish(&s->gram);
    s->gram_valid = true;
    return CSP_OK;
}

csp_status csp__sensing_prepare(csp_sensing *s, int64_t row_block, int64_t event,
                                csp__gram **out) {
    csp_status st = prepare(s, row_block, event, "csp_sensing_prepare");
    *out = st == CSP_OK ? &s->gram : NULL;
    return st;
}

CSP_API csp_status csp_sensing_gram(csp_sensing *s, int64_t row_block, int64_t event,
                                    double *G, int64_t ld) {
    static const char fn[] = "csp_sensing_gram";
    if (s == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(s->ctx, G, "G");
    if (ld < s->n)
        return csp__error(s->ctx, CSP_E_SHAPE, "%s: ld = %lld < n = %lld", fn, (long long)ld,
                          (long long)s->n);
    csp_status st = prepare(s, row_block, event, fn);
    if (st != CSP_OK)
        return st;
    int64_t n = s->n;
    for (int64_t a = 0; a < n; a++) {
        double *row = G + a * ld;
        if (s->kind == CSP_SENSING_IDENTITY) {
            memset(row, 0, (size_t)n * sizeof(double));
            row[a] = 1.0;
        } else {
            memcpy(row, s->gram.g64 + a * n, (size_t)n * sizeof(double));
        }
    }
    return CSP_OK;
}

CSP_API csp_status csp_sensing_phi(const csp_sensing *s, int64_t row_block, int64_t event,
                                   double *phi, int64_t ld) {
    static const char fn[] = "csp_sensing_phi";
    if (s == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(s->ctx, phi, "phi");
    if (!is_random(s->kind))
        return csp__error(s->ctx, CSP_E_INVALID, "%s: a %s operator has no random Phi", fn,
                          kind_name(s->kind));
    if (ld < s->n)
        return csp__error(s->ctx, CSP_E_SHAPE, "%s: ld = %lld < n = %lld", fn, (long long)ld,
                          (long long)s->n);
    csp_status st = check_key(s->ctx, row_block, event, fn);
    if (st != CSP_OK)
        return st;
    uint64_t key = csp__sensing_key(s, row_block, event);
    int64_t n = s->n, m = s->m;
    double scale = 1.0 / sqrt((double)m);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double v;
            if (s->kind == CSP_SENSING_GAUSSIAN) {
                v = gauss_entry(key, n, i, j) * scale;
            } else {
                uint64_t word = rade_word(key, s->mw, m, j, i / 64);
                v = ((word >> (i % 64)) & 1u) ? -scale : scale;
            }
            phi[i * ld + j] = v;
        }
    return CSP_OK;
}

/* ---- activations -------------------------------------------------------------- */

static csp_status need_activations(const csp_sensing *s, const char *fn) {
    if (s->kind != CSP_SENSING_ACTIVATIONS)
        return csp__error(s->ctx, CSP_E_INVALID, "%s: the operator is %s, not activations", fn,
                          kind_name(s->kind));
    return CSP_OK;
}

CSP_API csp_status csp_sensing_observe(csp_sensing *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t row_stride) {
    static const char fn[] = "csp_sensing_observe";
    if (s == NULL)
        return CSP_E_NULL;
    csp_context *ctx = s->ctx;
    csp_status st = need_activations(s, fn);
    if (st != CSP_OK)
        return st;
    int64_t n = s->n;
    if (rows < 0 || cols != n)
        return csp__error(ctx, CSP_E_SHAPE, "%s: %lld x %lld inputs for an operator with n = %lld",
                          fn, (long long)rows, (long long)cols, (long long)n);
    if (row_stride == 0)
        row_stride = cols;
    if (row_stride < cols)
        return csp__error(ctx, CSP_E_SHAPE, "%s: row_stride = %lld < cols = %lld", fn,
                          (long long)row_stride, (long long)cols);
    if (rows == 0)
        return CSP_OK;
    CSP_CHECK_NULL(ctx, x, "x");
    if (rows > INT32_MAX)
        return csp__error(ctx, CSP_E_RANGE, "%s: %lld rows in one call; at most %d", fn,
                          (long long)rows, INT32_MAX);
    if (rows > CSP__SENSING_MAX_COUNT - s->count)
        return csp__error(ctx, CSP_E_RANGE,
                          "%s: %lld more rows would take the row count past 2^53 (it is %lld): "
                          "the accumulator cannot hold it exactly; reset or merge less",
                          fn, (long long)rows, (long long)s->count);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < n; c++)
            if (!isfinite(x[r * row_stride + c]))
                return csp__error(ctx, CSP_E_NONFINITE, "%s: x[%lld][%lld] is not finite", fn,
                                  (long long)r, (long long)c);
    for (int64_t r0 = 0; r0 < rows; r0 += OBS_CHUNK) {
        int64_t cnt = rows - r0 < OBS_CHUNK ? rows - r0 : OBS_CHUNK;
        csp__ssyrk_tn_d(n, cnt, x + r0 * row_stride, row_stride, s->xbuf, s->xtx, n, 0, n);
    }
    s->count += rows;
    s->gram_valid = false;
    return CSP_OK;
}

CSP_API csp_status csp_sensing_reset(csp_sensing *s) {
    if (s == NULL)
        return CSP_E_NULL;
    csp_status st = need_activations(s, "csp_sensing_reset");
    if (st != CSP_OK)
        return st;
    memset(s->xtx, 0, (size_t)s->n * (size_t)s->n * sizeof(double));
    s->count = 0;
    s->gram_valid = false;
    return CSP_OK;
}

CSP_API csp_status csp_sensing_merge(csp_sensing *dst, const csp_sensing *src) {
    static const char fn[] = "csp_sensing_merge";
    if (dst == NULL)
        return CSP_E_NULL;
    CSP_CHECK_NULL(dst->ctx, src, "src");
    if (dst == src)
        return csp__error(dst->ctx, CSP_E_INVALID, "%s: dst and src are the same operator", fn);
    if (dst->kind != CSP_SENSING_ACTIVATIONS || src->kind != CSP_SENSING_ACTIVATIONS)
        return csp__error(dst->ctx, CSP_E_INVALID, "%s: both operators must be activations",
                          fn);
    if (dst->n != src->n)
        return csp__error(dst->ctx, CSP_E_SHAPE, "%s: n = %lld and %lld differ", fn,
                          (long long)dst->n, (long long)src->n);
    if (src->count > CSP__SENSING_MAX_COUNT - dst->count)
        return csp__error(dst->ctx, CSP_E_RANGE,
                          "%s: the row counts %lld + %lld would pass 2^53: the accumulator "
                          "cannot hold the sum exactly",
                          fn, (long long)dst->count, (long long)src->count);
    int64_t n = dst->n;
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = a; c < n; c++)
            dst->xtx[a * n + c] += src->xtx[a * n + c];
    dst->count += src->count;
    dst->gram_valid = false;
    return CSP_OK;
}

CSP_API int64_t csp_sensing_accumulator_len(const csp_sensing *s) {
    if (s == NULL || s->kind != CSP_SENSING_ACTIVATIONS)
        return 0;
    return s->n * s->n + 1;
}

CSP_API csp_status csp_sensing_read_accumulator(const csp_sensing *s, double *buf,
                                                int64_t len) {
    static const char fn[] = "csp_sensing_read_accumulator";
    if (s == NULL)
        return CSP_E_NULL;
    csp_status st = need_activations(s, fn);
    if (st != CSP_OK)
        return st;
    CSP_CHECK_NULL(s->ctx, buf, "buf");
    int64_t n = s->n;
    if (len != n * n + 1)
        return csp__error(s->ctx, CSP_E_BUFFER, "%s: len = %lld, expected n * n + 1 = %lld", fn,
                          (long long)len, (long long)(n * n + 1));
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = 0; c < n; c++)
            buf[a * n + c] = a <= c ? s->xtx[a * n + c] : s->xtx[c * n + a];
    buf[n * n] = (double)s->count;
    return CSP_OK;
}

csp_status csp__sensing_check_accumulator(const csp_sensing *s, const double *buf, int64_t len,
                                          const char *fn) {
    csp_context *ctx = s->ctx;
    csp_status st = need_activations(s, fn);
    if (st != CSP_OK)
        return st;
    CSP_CHECK_NULL(ctx, buf, "buf");
    int64_t n = s->n;
    if (len != n * n + 1)
        return csp__error(ctx, CSP_E_BUFFER, "%s: len = %lld, expected n * n + 1 = %lld", fn,
                          (long long)len, (long long)(n * n + 1));
    double count = buf[n * n];
    if (!isfinite(count))
        return csp__error(ctx, CSP_E_NONFINITE, "%s: the row count is not finite", fn);
    if (count < 0.0 || count > (double)CSP__SENSING_MAX_COUNT || count != floor(count))
        return csp__error(ctx, CSP_E_RANGE, "%s: the row count %g is not a whole number in "
                          "[0, 2^53]", fn, count);
    double maxabs = 0.0;
    for (int64_t i = 0; i < n * n; i++) {
        if (!isfinite(buf[i]))
            return csp__error(ctx, CSP_E_NONFINITE, "%s: buf[%lld] is not finite", fn,
                              (long long)i);
        maxabs = fabs(buf[i]) > maxabs ? fabs(buf[i]) : maxabs;
    }
    if (count == 0.0 && maxabs > 0.0)
        return csp__error(ctx, CSP_E_INVALID, "%s: nonzero sums with a row count of 0", fn);
    for (int64_t a = 0; a < n; a++) {
        if (buf[a * n + a] < 0.0)
            return csp__error(ctx, CSP_E_INVALID, "%s: diagonal entry %lld is negative", fn,
                              (long long)a);
        for (int64_t c = a + 1; c < n; c++)
            if (fabs(buf[a * n + c] - buf[c * n + a]) > 1e-10 * maxabs)
                return csp__error(ctx, CSP_E_INVALID,
                                  "%s: the sums are not symmetric at (%lld, %lld)", fn,
                                  (long long)a, (long long)c);
    }
    return CSP_OK;
}

double csp__sensing_accumulator_at(const csp_sensing *s, int64_t i) {
    int64_t n = s->n;
    if (i == n * n)
        return (double)s->count;
    int64_t a = i / n, c = i % n;
    return a <= c ? s->xtx[a * n + c] : s->xtx[c * n + a];
}

CSP_API csp_status csp_sensing_write_accumulator(csp_sensing *s, const double *buf,
                                                 int64_t len) {
    if (s == NULL)
        return CSP_E_NULL;
    csp_status st = csp__sensing_check_accumulator(s, buf, len, "csp_sensing_write_accumulator");
    if (st != CSP_OK)
        return st;
    int64_t n = s->n;
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = a; c < n; c++)
            s->xtx[a * n + c] = buf[a * n + c];
    s->count = (int64_t)buf[n * n];
    s->gram_valid = false;
    return CSP_OK;
}

/* ---- user Gram ------------------------------------------------------------------ */

CSP_API csp_status csp_sensing_set_gram(csp_sensing *s, const double *G, int64_t ld) {
    static const char fn[] = "csp_sensing_set_gram";
    if (s == NULL)
        return CSP_E_NULL;
    csp_context *ctx = s->ctx;
    CSP_CHECK_NULL(ctx, G, "G");
    if (s->kind != CSP_SENSING_GRAM)
        return csp__error(ctx, CSP_E_INVALID, "%s: the operator is %s, not gram", fn,
                          kind_name(s->kind));
    int64_t n = s->n;
    if (ld < n)
        return csp__error(ctx, CSP_E_SHAPE, "%s: ld = %lld < n = %lld", fn, (long long)ld,
                          (long long)n);
    csp_status st = csp__gram_validate(ctx, G, n, ld, fn);
    if (st != CSP_OK)
        return st;
    /* Store the exactly symmetric part. */
    for (int64_t a = 0; a < n; a++)
        for (int64_t c = 0; c < n; c++)
            s->gram.g64[a * n + c] =
                a == c ? G[a * ld + c] : 0.5 * (G[a * ld + c] + G[c * ld + a]);
    csp__gram_finish(&s->gram);
    s->gram_valid = true;
    return CSP_OK;
}
