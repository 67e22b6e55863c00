/* Magnitude selection: exact top-k by radix/histogram passes over the bit
 * patterns of |w|, per tensor and over several tensors (row-balanced and N:M
 * are in rows.c). See select.h. */
#include "select/select.h"

#include "core/walk.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define SEL_HAVE_SSE2 1
#else
#define SEL_HAVE_SSE2 0
#endif

/* Per-dtype passes (select_tmpl.h). */
typedef struct {
    int keybits;   /* significant key bits: 31 or 63 */
    int h1;        /* shift of the first histogram digit */
    uint64_t kinf; /* key of +inf */
    uint64_t kabs; /* largest key */
    bool (*all_finite)(const csp_tensor *t);
    void (*hist1)(const csp__select_src *s, int64_t a, int64_t b, int64_t *hist, bool *bad);
    void (*histr)(const csp__select_src *s, int64_t a, int64_t b, int pshift, uint64_t prefix,
                  int shift, int64_t *hist);
    void (*window)(const csp__select_src *s, int64_t a, int64_t b, uint64_t lo, uint64_t hi,
                   uint64_t *buf, int64_t cap, int64_t *nbuf, int64_t *above, bool *bad);
    void (*write)(const csp__select_src *s, int64_t a, int64_t b, uint64_t T, int64_t *eq_left);
    uint64_t (*key_at)(const csp_tensor *t, int64_t f);
} sel_ops;

#define SEL_ELEM float
#define SEL_UINT uint32_t
#define SEL_SFX f32
#define SEL_ABS 0x7fffffffu
#define SEL_INF 0x7f800000u
#define SEL_H1 19
#define SEL_SIMD SEL_HAVE_SSE2
#include "select/select_tmpl.h"
#undef SEL_ELEM
#undef SEL_UINT
#undef SEL_SFX
#undef SEL_ABS
#undef SEL_INF
#undef SEL_H1
#undef SEL_SIMD

#define SEL_ELEM double
#define SEL_UINT uint64_t
#define SEL_SFX f64
#define SEL_ABS 0x7fffffffffffffffULL
#define SEL_INF 0x7ff0000000000000ULL
#define SEL_H1 47
#define SEL_SIMD 0
#include "select/select_tmpl.h"

static const sel_ops *ops_for(const csp_tensor *t) {
    return t->dtype == CSP_DTYPE_F64 ? &ops_f64 : &ops_f32;
}

/* ---- counts -------------------------------------------------------------- */

int64_t csp__round_count(double s, int64_t n) {
    double x = s * (double)n;
    if (!(x > 0.0))
        return 0;
    if (x >= (double)n)
        return n;
    double f = floor(x);
    double d = x - f; /* exact: x and f are close doubles */
    int64_t r = (int64_t)f;
    if (d > 0.5 || (d == 0.5 && (r & 1) != 0))
        r++;
    return r > n ? n : r;
}

bool csp__all_finite(const csp_tensor *t) { return ops_for(t)->all_finite(t); }

/* ---- k-th largest of keys in memory ------------------------------------- */

uint64_t csp__kth_largest(uint64_t *keys, int64_t n, int64_t need, int bits, int64_t *gt,
                          int64_t *eq) {
    int64_t above_all = 0;
    int shift = bits;
    while (n > 32 && shift > 0) {
        int d = shift >= 8 ? 8 : shift;
        shift -= d;
        uint64_t dm = (1ULL << d) - 1;
        int64_t h[256] = {0};
        for (int64_t i = 0; i < n; i++)
            h[(keys[i] >> shift) & dm]++;
        int64_t above = 0;
        int b = (int)dm;
        for (; b > 0; b--) {
            if (above + h[b] >= need)
                break;
            above += h[b];
        }
        above_all += above;
        need -= above;
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (((keys[i] >> shift) & dm) == (uint64_t)b)
                keys[m++] = keys[i];
        n = m;
    }
    if (n > 32) { /* every significant bit examined: all remaining keys equal */
        *gt = above_all;
        *eq = n;
        return keys[0];
    }
    for (int64_t i = 1; i < n; i++) { /* insertion sort, descending */
        uint64_t v = keys[i];
        int64_t j = i;
        for (; j > 0 && keys[j - 1] < v; j--)
            keys[j] = keys[j - 1];
        keys[j] = v;
    }
    uint64_t T = keys[need - 1];
    int64_t g = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        g += keys[i] > T;
        e += keys[i] == T;
    }
    *gt = above_all + g;
    *eq = e;
    return T;
}

/* ---- top-k over tensors --------------------------------------------------- */

#define SAMPLE_MIN_CANDIDATES (1 << 15)
#define SAMPLE_SIZE 16384
#define BUFFER_MIN 4096
#define BUFFER_MAX (1 << 21)
/* Histogram passes: the first over SEL_H1.. bits, then 12-bit digits. */
#define REFINE_BITS 12

typedef struct {
    uint64_t T;      /* threshold key */
    int64_t eq_take; /* candidates with key == T to keep, in rank order */
} threshold;

static int64_t buffer_cap(int64_t candidates) {
    int64_t cap = candidates / 16;
    if (cap < BUFFER_MIN)
        cap = BUFFER_MIN;
    if (cap > BUFFER_MAX)
        cap = BUFFER_MAX;
    return cap;
}

static int bits_below(uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }

/* Fast path: bound the threshold with a strided sample of the candidates,
 * then one window pass. Returns 1 when it found the threshold, 0 when the
 * caller must fall back to the histogram passes, <0 on error. */
static int sample_threshold(const sel_ops *ops, const csp__select_src *srcs, int32_t nsrc,
                            int64_t total, int64_t candidates, int64_t keep, uint64_t *sample,
                            uint64_t *buf, int64_t cap, threshold *out) {
    /* Midpoints of SAMPLE_SIZE equal slices of the concatenation. */
    int64_t ns = 0, base = 0;
    int32_t si = 0;
    for (int64_t j = 0; j < SAMPLE_SIZE; j++) {
        int64_t g = (int64_t)(((double)j + 0.5) * ((double)total / SAMPLE_SIZE));
        if (g >= total)
            g = total - 1;
        while (g >= base + srcs[si].t->numel) {
            base += srcs[si].t->numel;
            si++;
        }
        int64_t f = g - base;
        if ((srcs[si].cur[f >> 6] >> (f & 63)) & 1) {
            uint64_t k = ops->key_at(srcs[si].t, f);
            if (k >= ops->kinf)
                return CSP_E_NONFINITE;
            sample[ns++] = k;
        }
    }
    if (ns < SAMPLE_SIZE / 4)
        return 0;
    double p = (double)keep / (double)candidates;
    double q = p * (double)ns;
    double d = 4.0 * sqrt((double)ns * p * (1.0 - p)) + 16.0;
    int64_t hi_rank = (int64_t)floor(q - d); /* 1-based rank in the sample */
    int64_t lo_rank = (int64_t)ceil(q + d);
    uint64_t hi = ops->kabs, lo = 0;
    int64_t g, e;
    /* csp__kth_largest overwrites its input: the second call gets a copy. */
    memcpy(sample + SAMPLE_SIZE, sample, (size_t)ns * sizeof *sample);
    if (hi_rank >= 1)
        hi = csp__kth_largest(sample, ns, hi_rank, ops->keybits, &g, &e);
    if (lo_rank <= ns)
        lo = csp__kth_largest(sample + SAMPLE_SIZE, ns, lo_rank, ops->keybits, &g, &e);
    int64_t above = 0, mid = 0;
    bool bad = false;
    for (int32_t s = 0; s < nsrc; s++)
        ops->window(&srcs[s], 0, srcs[s].t->numel, lo, hi, buf, cap, &mid, &above, &bad);
    if (bad)
        return CSP_E_NONFINITE;
    if (!(above < keep && above + mid >= keep && mid <= cap))
        return 0;
    uint64_t T = csp__kth_largest(buf, mid, keep - above, bits_below(lo ^ hi), &g, &e);
    out->T = T;
    out->eq_take = keep - (above + g);
    return 1;
}

/* Robust path: histogram passes narrow the threshold's key prefix until its
 * bucket fits the buffer, then an in-memory select. */
static csp_status hist_threshold(csp_context *ctx, const sel_ops *ops, const csp__select_src *srcs,
                                 int32_t nsrc, int64_t keep, uint64_t *buf, int64_t cap,
                                 threshold *out) {
    size_t nb1 = (size_t)1 << (ops->keybits - ops->h1);
    size_t nbr = (size_t)1 << REFINE_BITS;
    int64_t *hist = csp__calloc(ctx, nb1 > nbr ? nb1 : nbr, sizeof *hist);
    if (hist == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "selection: out of memory for a histogram");
    bool bad = false;
    for (int32_t s = 0; s < nsrc; s++)
        ops->hist1(&srcs[s], 0, srcs[s].t->numel, hist, &bad);
    for (size_t b = (size_t)(ops->kinf >> ops->h1); b < nb1; b++)
        bad |= hist[b] != 0;
    if (bad) {
        csp__free(ctx, hist);
        return CSP_E_NONFINITE;
    }
    int64_t need = keep;
    size_t b = nb1 - 1;
    for (; b > 0; b--) {
        if (hist[b] >= need)
            break;
        need -= hist[b];
    }
    uint64_t prefix = b;
    int pshift = ops->h1;
    int64_t count = hist[b];
    while (count > cap && pshift > 0) {
        int shift = pshift > REFINE_BITS ? pshift - REFINE_BITS : 0;
        size_t nb = (size_t)1 << (pshift - shift);
        memset(hist, 0, nb * sizeof *hist);
        for (int32_t s = 0; s < nsrc; s++)
            ops->histr(&srcs[s], 0, srcs[s].t->numel, pshift, prefix, shift, hist);
        size_t d = nb - 1;
        for (; d > 0; d--) {
            if (hist[d] >= need)
                break;
            need -= hist[d];
        }
        prefix = (prefix << (pshift - shift)) | d;
        pshift = shift;
        count = hist[d];
    }
    csp__free(ctx, hist);
    if (pshift == 0) { /* every key of the bucket equals the prefix */
        out->T = prefix;
        out->eq_take = need;
        return CSP_OK;
    }
    /* The bucket is the key window [prefix << pshift, that + 2^pshift - 1]. */
    uint64_t lo = prefix << pshift, hi = lo | ((1ULL << pshift) - 1);
    int64_t m = 0, above_hi = 0;
    bool unused = false;
    for (int32_t s = 0; s < nsrc; s++)
        ops->window(&srcs[s], 0, srcs[s].t->numel, lo, hi, buf, count, &m, &above_hi, &unused);
    int64_t g, e;
    out->T = csp__kth_largest(buf, m, need, pshift, &g, &e);
    out->eq_take = need - g;
    return CSP_OK;
}

static csp_status nonfinite(csp_context *ctx, const char *what) {
    return csp__error(ctx, CSP_E_NONFINITE, "%s: a weight is NaN or infinite; nothing was changed",
                      what);
}

csp_status csp__select_topk(csp_context *ctx, const csp__select_src *srcs, int32_t nsrc,
                            int64_t keep) {
    return csp__select_topk_ex(ctx, srcs, nsrc, keep, 0);
}

csp_status csp__select_topk_ex(csp_context *ctx, const csp__select_src *srcs, int32_t nsrc,
                               int64_t keep, uint32_t flags) {
    const sel_ops *ops = ops_for(srcs[0].t);
    int64_t candidates = 0, total = 0;
    for (int32_t s = 0; s < nsrc; s++) {
        candidates += csp__mask_popcount(srcs[s].cur, srcs[s].t->numel);
        total += srcs[s].t->numel;
    }
    if (keep < 0)
        keep = 0;
    if (keep > candidates)
        keep = candidates;
    if (keep == 0 || keep == candidates) {
        for (int32_t s = 0; s < nsrc; s++)
            if (!ops->all_finite(srcs[s].t))
                return nonfinite(ctx, "selection");
        for (int32_t s = 0; s < nsrc; s++) {
            size_t bytes = (size_t)csp__mask_words(srcs[s].t->numel) * sizeof(uint64_t);
            if (keep == 0)
                memset(srcs[s].next, 0, bytes);
            else
                memcpy(srcs[s].next, srcs[s].cur, bytes);
        }
        return CSP_OK;
    }
    int64_t cap = (flags & CSP__SELECT_TINY_BUFFER) ? 64 : buffer_cap(candidates);
    uint64_t *buf = csp__malloc(ctx, (size_t)cap * sizeof *buf);
    if (buf == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "selection: out of memory for %lld keys",
                          (long long)cap);
    threshold thr = {0, 0};
    int found = 0;
    if (candidates >= SAMPLE_MIN_CANDIDATES && !(flags & CSP__SELECT_NO_SAMPLE)) {
        uint64_t *sample = csp__malloc(ctx, 2 * SAMPLE_SIZE * sizeof *sample);
        if (sample == NULL) {
            csp__free(ctx, buf);
            return csp__error(ctx, CSP_E_NOMEM, "selection: out of memory for a sample");
        }
        found = sample_threshold(ops, srcs, nsrc, total, candidates, keep, sample, buf, cap, &thr);
        csp__free(ctx, sample);
        if (found < 0) {
            csp__free(ctx, buf);
            return nonfinite(ctx, "selection");
        }
    }
    if (!found && (flags & CSP__SELECT_REQUIRE_SAMPLE)) {
        csp__free(ctx, buf);
        return csp__error(ctx, CSP_E_STATE, "selection: the sampled window missed");
    }
    if (!found) {
        csp_status st = hist_threshold(ctx, ops, srcs, nsrc, keep, buf, cap, &thr);
        if (st != CSP_OK) {
            csp__free(ctx, buf);
            return st == CSP_E_NONFINITE ? nonfinite(ctx, "selection") : st;
        }
    }
    csp__free(ctx, buf);
    int64_t eq_left = thr.eq_take;
    for (int32_t s = 0; s < nsrc; s++) {
        memset(srcs[s].next, 0, (size_t)csp__mask_words(srcs[s].t->numel) * sizeof(uint64_t));
        ops->write(&srcs[s], 0, srcs[s].t->numel, thr.T, &eq_left);
    }
    return CSP_OK;
}
