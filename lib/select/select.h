/*
 * Magnitude selection: which weights a mask keeps. Internal; knows nothing
 * of pruners or schedules.
 *
 * Keys. The key of a weight is the IEEE-754 bit pattern of |w| (sign bit
 * cleared) read as an unsigned integer; for finite values key order is |w|
 * order, -0 and +0 share key 0, and keys >= the key of +inf are NaN/inf.
 *
 * Rank. A larger key ranks higher; among equal keys the lower flat index
 * (row-major over the shape) ranks higher, and in a multi-tensor selection
 * an earlier tensor ranks higher than a later one: "concatenate, then
 * stable-sort by descending |w|".
 *
 * Every selection reads the weights and the current mask `cur` and writes
 * a new mask `next` (both bit-packed, layout of csp/pruner.h), which is a
 * subset of `cur`. Selections never write the weights; a NaN or infinity in
 * any weight of the tensors makes them return CSP_E_NONFINITE (then `next`
 * holds garbage). This is the seam the CSP solvers plug into: given weights,
 * current mask and budget, a new mask.
 */
#ifndef CSP_SELECT_SELECT_H
#define CSP_SELECT_SELECT_H

#include "core/bits.h"
#include "core/internal.h"

/* Number of zeros for sparsity @p s of @p n weights: s * n in double,
 * rounded half to even (Python's round()). 0 <= result <= n. */
int64_t csp__round_count(double s, int64_t n);

/* One tensor of a selection. */
typedef struct {
    const csp_tensor *t;
    const uint64_t *cur; /* current mask, t->numel bits */
    uint64_t *next;      /* new mask, written */
} csp__select_src;

/* Keep the @p keep highest-ranked candidates (weights whose `cur` bit is
 * set) over @p nsrc tensors of one dtype, taken in order as if
 * concatenated; keep is clamped to [0, candidates]. Extra memory is bounded
 * (a histogram and a buffer of at most 2^21 keys), never a copy of the
 * weights. CSP_OK, CSP_E_NONFINITE or CSP_E_NOMEM (with a message). */
csp_status csp__select_topk(csp_context *ctx, const csp__select_src *srcs, int32_t nsrc,
                            int64_t keep);

/* csp__select_topk with test switches: force the histogram path, and/or a
 * 64-key buffer so that every refinement pass runs (results are identical),
 * or fail with CSP_E_STATE when the sampled window does not find the
 * threshold (a guard for the fast path's efficiency). */
#define CSP__SELECT_NO_SAMPLE 1u
#define CSP__SELECT_TINY_BUFFER 2u
#define CSP__SELECT_REQUIRE_SAMPLE 4u
csp_status csp__select_topk_ex(csp_context *ctx, const csp__select_src *srcs, int32_t nsrc,
                               int64_t keep, uint32_t flags);

/* Row-balanced: in every row of the matrix view keep the min(@p keep_row,
 * candidates of the row) highest-ranked candidates. Each row is read once
 * into a buffer of keys and selected there (expected O(cols)); rows run on
 * the context's threads, the result does not depend on their number. */
csp_status csp__select_rows(csp_context *ctx, const csp__select_src *src, int64_t keep_row);

/* N:M: cols must be a multiple of @p m (<= 64); in every group of m
 * consecutive weights of a row keep the min(@p keep_group, candidates)
 * highest-ranked candidates. Groups of 4 and 8 are ranked in registers. */
csp_status csp__select_nm(csp_context *ctx, const csp__select_src *src, int32_t m,
                          int32_t keep_group);

/* The two with test switches: CSP__SELECT_PORTABLE runs the portable C
 * kernels instead of the SIMD ones, CSP__SELECT_NO_AVX2 the SSE2 ones
 * instead of AVX2 (results are identical). */
#define CSP__SELECT_PORTABLE 8u
#define CSP__SELECT_NO_AVX2 16u
csp_status csp__select_rows_ex(csp_context *ctx, const csp__select_src *src, int64_t keep_row,
                               uint32_t flags);
csp_status csp__select_nm_ex(csp_context *ctx, const csp__select_src *src, int32_t m,
                             int32_t keep_group, uint32_t flags);

/* Is every weight of @p t finite? */
bool csp__all_finite(const csp_tensor *t);

/* The @p need-th largest (1-based, 1 <= need <= n) of @p n keys of at most
 * @p bits significant bits; overwrites @p keys. *gt receives how many keys are
 * larger, *eq how many are equal. Exposed for tests. */
uint64_t csp__kth_largest(uint64_t *keys, int64_t n, int64_t need, int bits, int64_t *gt,
                          int64_t *eq);

#endif
