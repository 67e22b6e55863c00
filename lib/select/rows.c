/* Row-balanced and N:M selection (select.h): one read of each row into a
 * per-row buffer of biased keys, an O(n) select on it, one mask write; N:M
 * groups ranked in registers. Kernels in rows_tmpl.h. */
#include "select/select.h"

#include "core/walk.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define RS_HAVE_SSE2 1
#else
#define RS_HAVE_SSE2 0
#endif
/* AVX2 kernels, chosen at run time from the CPU's features (GCC and Clang
 * on x86-64). */
#if RS_HAVE_SSE2 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&          \
    !defined(CSP_NO_SIMD)
#include <immintrin.h>
#define RS_HAVE_AVX2 1
#else
#define RS_HAVE_AVX2 0
#endif

/* Sets of at most this many keys are finished by rank counting. */
#define RS_SMALL 32
/* Keys of slack after every window buffer (the AVX2 window stores whole
 * vectors). */
#define RS_SLACK 8

#if RS_HAVE_SSE2
/* Tables of the SSE2/AVX2 kernels (none elsewhere, e.g. on aarch64). */
/* 4 mask bits -> 4 lanes of all-ones/zero. */
#define RS_L4(b) {(b) & 1 ? ~0u : 0u, (b) & 2 ? ~0u : 0u, (b) & 4 ? ~0u : 0u, (b) & 8 ? ~0u : 0u}
static const uint32_t rs_lanes4[16][4] __attribute__((aligned(16))) = {
    RS_L4(0), RS_L4(1), RS_L4(2),  RS_L4(3),  RS_L4(4),  RS_L4(5),  RS_L4(6),  RS_L4(7),
    RS_L4(8), RS_L4(9), RS_L4(10), RS_L4(11), RS_L4(12), RS_L4(13), RS_L4(14), RS_L4(15)};
#undef RS_L4
/* Bit g of the index -> bit 4g (bit 8g): one bit per group back to the
 * groups' positions. */
#define RS_S4(b) (uint16_t)(((b) & 1) | ((b) & 2) << 3 | ((b) & 4) << 6 | ((b) & 8) << 9)
static const uint16_t rs_spread4[16] = {RS_S4(0),  RS_S4(1),  RS_S4(2),  RS_S4(3),
                                        RS_S4(4),  RS_S4(5),  RS_S4(6),  RS_S4(7),
                                        RS_S4(8),  RS_S4(9),  RS_S4(10), RS_S4(11),
                                        RS_S4(12), RS_S4(13), RS_S4(14), RS_S4(15)};
#undef RS_S4
#define RS_S8(b) (((b) & 1u) | ((b) & 2u) << 7 | ((b) & 4u) << 14 | ((b) & 8u) << 21)
static const uint32_t rs_spread8[16] = {RS_S8(0u),  RS_S8(1u),  RS_S8(2u),  RS_S8(3u),
                                        RS_S8(4u),  RS_S8(5u),  RS_S8(6u),  RS_S8(7u),
                                        RS_S8(8u),  RS_S8(9u),  RS_S8(10u), RS_S8(11u),
                                        RS_S8(12u), RS_S8(13u), RS_S8(14u), RS_S8(15u)};
#undef RS_S8
#endif

#if RS_HAVE_SSE2
/* SSE2 has no pminsd, pmaxsd. */
static inline __m128i rs_min_epi32(__m128i a, __m128i b) {
    __m128i gt = _mm_cmpgt_epi32(a, b);
    return _mm_or_si128(_mm_and_si128(gt, b), _mm_andnot_si128(gt, a));
}
static inline __m128i rs_max_epi32(__m128i a, __m128i b) {
    __m128i gt = _mm_cmpgt_epi32(a, b);
    return _mm_or_si128(_mm_and_si128(gt, a), _mm_andnot_si128(gt, b));
}
#endif

#if RS_HAVE_AVX2
/* pshufb controls packing the 32-bit lanes selected by 4 bits to the
 * front, and the number of lanes. */
#define RS_LN(l) 4 * (l), 4 * (l) + 1, 4 * (l) + 2, 4 * (l) + 3
#define RS_LZ 0x80, 0x80, 0x80, 0x80
static const uint8_t rs_pack4[16][16] __attribute__((aligned(16))) = {
    {RS_LZ, RS_LZ, RS_LZ, RS_LZ},                 {RS_LN(0), RS_LZ, RS_LZ, RS_LZ},
    {RS_LN(1), RS_LZ, RS_LZ, RS_LZ},              {RS_LN(0), RS_LN(1), RS_LZ, RS_LZ},
    {RS_LN(2), RS_LZ, RS_LZ, RS_LZ},              {RS_LN(0), RS_LN(2), RS_LZ, RS_LZ},
    {RS_LN(1), RS_LN(2), RS_LZ, RS_LZ},           {RS_LN(0), RS_LN(1), RS_LN(2), RS_LZ},
    {RS_LN(3), RS_LZ, RS_LZ, RS_LZ},              {RS_LN(0), RS_LN(3), RS_LZ, RS_LZ},
    {RS_LN(1), RS_LN(3), RS_LZ, RS_LZ},           {RS_LN(0), RS_LN(1), RS_LN(3), RS_LZ},
    {RS_LN(2), RS_LN(3), RS_LZ, RS_LZ},           {RS_LN(0), RS_LN(2), RS_LN(3), RS_LZ},
    {RS_LN(1), RS_LN(2), RS_LN(3), RS_LZ},        {RS_LN(0), RS_LN(1), RS_LN(2), RS_LN(3)}};
#undef RS_LN
#undef RS_LZ
static const uint8_t rs_pop4[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

static bool rs_have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

/* The lowest *take set bits of eq (all when fewer); *take decreases by the
 * number returned. */
static inline uint64_t rs_take_low(int64_t *take, uint64_t eq) {
    if (eq == 0)
        return 0;
    int64_t c = csp__popcount64(eq);
    if (c <= *take) {
        *take -= c;
        return eq;
    }
    uint64_t t = 0;
    while (*take > 0) {
        t |= eq & (~eq + 1);
        eq &= eq - 1;
        (*take)--;
    }
    return t;
}

/* One narrowing step of the select on n keys for the need-th largest: S
 * evenly spaced sample keys; the window is the sample's order statistics
 * ilo and ihi (ascending, 0-based) around the target's expected place q,
 * q -+ d with d one standard deviation of the sample rank plus a quarter
 * (narrow windows that sometimes miss beat wide ones, measured). ilo = -1:
 * no lower bound; ihi = S: no upper bound (never both). */
typedef struct {
    int64_t n, need;
    int S, ilo, ihi;
    uint64_t step; /* sample spacing, 16.16 fixed point */
} rs_plan;

static void rs_plan_level(rs_plan *p, int64_t n, int64_t need) {
    int S = n / 8 > RS_SMALL ? RS_SMALL : (int)(n / 8);
    if (S < 7)
        S = 7;
    double frac = (double)need / (double)n;
    double q = ((double)(n - need) + 0.5) * S / (double)n - 0.5;
    double d = sqrt(S * frac * (1.0 - frac)) + 0.25;
    int ilo = (int)floor(q - d), ihi = (int)ceil(q + d);
    if (ilo < -1)
        ilo = -1;
    if (ihi > S)
        ihi = S;
    if (ilo > S - 1)
        ilo = S - 1;
    if (ihi < 0)
        ihi = 0;
    if (ilo < 0 && ihi >= S) {
        int c = (int)floor(q + 0.5);
        ilo = ihi = c < 0 ? 0 : c > S - 1 ? S - 1 : c;
    }
    p->n = n;
    p->need = need;
    p->S = S;
    p->ilo = ilo;
    p->ihi = ihi;
    p->step = ((uint64_t)n << 16) / (uint64_t)S;
}

struct rs_ops;
typedef struct rs_ops {
    size_t key_bytes;
    bool (*rows)(const csp__select_src *s, int64_t r0, int64_t r1, int64_t keep_row,
                 void *scratch);
    bool (*nm_walk)(const csp__select_src *s, int64_t a, int64_t b, int m, int keep);
    bool (*nm_groups)(const csp__select_src *s, int64_t g0, int64_t g1, int m, int keep);
} rs_ops;

/* Full unrolling of the fixed rank loops (their trip counts would
 * mispredict). */
#if defined(__clang__)
#define RS_UNROLL(n) _Pragma("unroll")
#elif defined(__GNUC__)
#define RS_UNROLL_(x) _Pragma(#x)
#define RS_UNROLL(n) RS_UNROLL_(GCC unroll n)
#else
#define RS_UNROLL(n)
#endif

#define RS_TARGET
/* float32 with SSE2 where available */
#define RS_ELEM float
#define RS_KEY uint32_t
#define RS_SFX f32
#define RS_ABS 0x7fffffffu
#define RS_INF 0x7f800000u
#define RS_KMAX 0x7fffffffu
#define RS_SSE2 RS_HAVE_SSE2
#define RS_AVX2 0
#include "select/rows_tmpl.h"
#undef RS_SFX
#undef RS_SSE2
#undef RS_AVX2

#if RS_HAVE_AVX2
/* float32 with AVX2 */
#undef RS_TARGET
#define RS_TARGET __attribute__((target("avx2")))
#define RS_SFX f32y
#define RS_SSE2 1
#define RS_AVX2 1
#include "select/rows_tmpl.h"
#undef RS_SFX
#undef RS_SSE2
#undef RS_AVX2
#undef RS_TARGET
#define RS_TARGET
#endif

/* float32, portable C (tests compare it with the SIMD kernels) */
#define RS_SFX f32c
#define RS_SSE2 0
#define RS_AVX2 0
#include "select/rows_tmpl.h"
#undef RS_ELEM
#undef RS_KEY
#undef RS_SFX
#undef RS_ABS
#undef RS_INF
#undef RS_KMAX
#undef RS_SSE2
#undef RS_AVX2

#define RS_ELEM double
#define RS_KEY uint64_t
#define RS_SFX f64
#define RS_ABS 0x7fffffffffffffffULL
#define RS_INF 0x7ff0000000000000ULL
#define RS_KMAX 0x7fffffffffffffffULL
#define RS_SSE2 0
#define RS_AVX2 0
#include "select/rows_tmpl.h"
#undef RS_ELEM
#undef RS_KEY
#undef RS_SFX
#undef RS_ABS
#undef RS_INF
#undef RS_KMAX
#undef RS_SSE2

static const rs_ops *rs_ops_for(const csp_tensor *t, uint32_t flags) {
    if (t->dtype == CSP_DTYPE_F64)
        return &rs_ops_f64;
    if (flags & CSP__SELECT_PORTABLE)
        return &rs_ops_f32c;
#if RS_HAVE_AVX2
    if (!(flags & CSP__SELECT_NO_AVX2) && rs_have_avx2())
        return &rs_ops_f32y;
#endif
    return &rs_ops_f32;
}

static csp_status rs_nonfinite(csp_context *ctx, const char *what) {
    return csp__error(ctx, CSP_E_NONFINITE, "%s: a weight is NaN or infinite; nothing was changed",
                      what);
}

static int64_t rs_gcd(int64_t a, int64_t b) {
    while (b != 0) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Work per thread below which a thread start costs more than it saves. */
#define RS_GRAIN_WEIGHTS (1 << 16)

/* ---- row-balanced --------------------------------------------------------- */

typedef struct {
    const rs_ops *ops;
    const csp__select_src *src;
    int64_t keep_row;
    int64_t block_rows; /* rows per block: blocks start on mask-word boundaries */
    char *scratch;      /* per worker: 3 * cols keys */
    size_t scratch_bytes;
    bool bad[CSP_MAX_THREADS];
} rows_job;

static void rows_range(void *arg, int64_t b0, int64_t b1, int32_t worker) {
    rows_job *job = arg;
    int64_t rows = job->src->t->rows;
    int64_t r0 = b0 * job->block_rows, r1 = b1 * job->block_rows;
    if (r1 > rows)
        r1 = rows;
    if (!job->ops->rows(job->src, r0, r1, job->keep_row,
                        job->scratch + (size_t)worker * job->scratch_bytes))
        job->bad[worker] = true;
}

csp_status csp__select_rows(csp_context *ctx, const csp__select_src *src, int64_t keep_row) {
    return csp__select_rows_ex(ctx, src, keep_row, 0);
}

csp_status csp__select_rows_ex(csp_context *ctx, const csp__select_src *src, int64_t keep_row,
                               uint32_t flags) {
    const csp_tensor *t = src->t;
    size_t mask_bytes = (size_t)csp__mask_words(t->numel) * sizeof(uint64_t);
    if (keep_row <= 0 || keep_row >= t->cols) { /* nothing to rank */
        if (!csp__all_finite(t))
            return rs_nonfinite(ctx, "row selection");
        if (keep_row <= 0)
            memset(src->next, 0, mask_bytes);
        else
            memcpy(src->next, src->cur, mask_bytes);
        return CSP_OK;
    }
    if (t->rows == 1) /* one row: the per-tensor selection is the same thing */
        return csp__select_topk(ctx, src, 1, keep_row);
    const rs_ops *ops = rs_ops_for(t, flags);
    rows_job job;
    memset(&job, 0, sizeof job);
    job.ops = ops;
    job.src = src;
    job.keep_row = keep_row;
    job.block_rows = 64 / rs_gcd(t->cols, 64);
    int64_t nblocks = (t->rows + job.block_rows - 1) / job.block_rows;
    int64_t grain = RS_GRAIN_WEIGHTS / (job.block_rows * t->cols);
    if (grain < 1)
        grain = 1;
    int32_t workers = ctx->num_threads;
    if (workers > (nblocks + grain - 1) / grain)
        workers = (int32_t)((nblocks + grain - 1) / grain);
    if (workers < 1)
        workers = 1;
    job.scratch_bytes =
        ((size_t)(3 * t->cols + 2 * RS_SLACK) * ops->key_bytes + 63) & ~(size_t)63;
    job.scratch = csp__malloc(ctx, (size_t)workers * job.scratch_bytes);
    if (job.scratch == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "row selection: out of memory for %lld keys",
                          (long long)(3 * t->cols));
    memset(src->next, 0, mask_bytes);
    /* csp__parallel_for starts the same number of workers: one scratch
     * slice each. */
    csp__parallel_for(ctx, nblocks, grain, rows_range, &job);
    csp__free(ctx, job.scratch);
    for (int32_t w = 0; w < CSP_MAX_THREADS; w++)
        if (job.bad[w])
            return rs_nonfinite(ctx, "row selection");
    return CSP_OK;
}

/* ---- N:M -------------------------------------------------------------------- */

typedef struct {
    const rs_ops *ops;
    const csp__select_src *src;
    int m, keep;
    int64_t block; /* words (walk) or groups per block */
    bool walk;
    bool bad[CSP_MAX_THREADS];
} nm_job;

static void nm_range(void *arg, int64_t b0, int64_t b1, int32_t worker) {
    nm_job *job = arg;
    const csp_tensor *t = job->src->t;
    bool ok;
    if (job->walk) {
        int64_t a = b0 * job->block * 64, b = b1 * job->block * 64;
        ok = job->ops->nm_walk(job->src, a, b < t->numel ? b : t->numel, job->m, job->keep);
    } else {
        int64_t groups = t->numel / job->m;
        int64_t g0 = b0 * job->block, g1 = b1 * job->block;
        ok = job->ops->nm_groups(job->src, g0, g1 < groups ? g1 : groups, job->m, job->keep);
    }
    if (!ok)
        job->bad[worker] = true;
}

csp_status csp__select_nm(csp_context *ctx, const csp__select_src *src, int32_t m,
                          int32_t keep_group) {
    return csp__select_nm_ex(ctx, src, m, keep_group, 0);
}

csp_status csp__select_nm_ex(csp_context *ctx, const csp__select_src *src, int32_t m,
                             int32_t keep_group, uint32_t flags) {
    const csp_tensor *t = src->t;
    size_t mask_bytes = (size_t)csp__mask_words(t->numel) * sizeof(uint64_t);
    if (keep_group <= 0 || keep_group >= m) {
        if (!csp__all_finite(t))
            return rs_nonfinite(ctx, "N:M selection");
        if (keep_group <= 0)
            memset(src->next, 0, mask_bytes);
        else
            memcpy(src->next, src->cur, mask_bytes);
        return CSP_OK;
    }
    nm_job job;
    memset(&job, 0, sizeof job);
    job.ops = rs_ops_for(t, flags);
    job.src = src;
    job.m = m;
    job.keep = keep_group;
    /* When m divides 64, groups never straddle a mask word (rows hold whole
     * groups); otherwise blocks of groups start on word boundaries. */
    job.walk = 64 % m == 0;
    int64_t n;
    if (job.walk) {
        job.block = 1;
        n = csp__mask_words(t->numel);
    } else {
        job.block = 64 / rs_gcd(m, 64);
        n = (t->numel / m + job.block - 1) / job.block;
    }
    int64_t per = job.walk ? 64 : job.block * m;
    int64_t grain = RS_GRAIN_WEIGHTS / per;
    memset(src->next, 0, mask_bytes);
    csp__parallel_for(ctx, n, grain < 1 ? 1 : grain, nm_range, &job);
    for (int32_t w = 0; w < CSP_MAX_THREADS; w++)
        if (job.bad[w])
            return rs_nonfinite(ctx, "N:M selection");
    return CSP_OK;
}
