/*
 * Masks: 1 bit per weight, bit i (row-major flat index over the shape,
 * ignoring row_stride) in bit i % 64 of word i / 64, 1 = kept, the layout
 * of lib/core/bits.h (which has the bit helpers); here applying a mask to a
 * tensor and the digest. Internal.
 */
#ifndef CSP_PRUNE_MASK_H
#define CSP_PRUNE_MASK_H

#include "core/bits.h"
#include "core/internal.h"

/* Zero the elements of @p t whose bit in @p mask is 0; elements whose bit is
 * 1 are not written, nor are whole words of ones. Uses the context's worker
 * threads for large tensors; the result does not depend on their number. */
void csp__mask_apply(csp_context *ctx, const csp_tensor *t, const uint64_t *mask);

/* The energies of a mask change: *kept_sq = sum of w^2 over the weights
 * whose bit is set in @p kept, *dropped_sq = the same over those set in
 * @p kept and clear in @p next (double sums; weights finite). The
 * summation order is fixed by the tensor's shape alone, the same for every
 * instruction set and thread count: element j of each walk piece
 * (core/walk.h) goes to accumulator j % 4, and the four are added as
 * (a0 + a1) + (a2 + a3). One pass at memory speed. A float64 tensor whose
 * largest kept |w| is outside [2^-300, 2^300] gets a second pass: both sums
 * are then of the weights times the same power of two 2^-e (|w| max in
 * [1, 2)), so they neither overflow nor underflow and their ratio (the
 * only use) is exact to rounding. */
void csp__mask_energy(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                      double *kept_sq, double *dropped_sq);
/* The same with a test switch: @p kernels 0 = the CPU's best, 1 = SSE2,
 * 2 = portable C (identical results). */
void csp__mask_energy_ex(const csp_tensor *t, const uint64_t *kept, const uint64_t *next,
                         double *kept_sq, double *dropped_sq, int kernels);

/* FNV-1a 64 over @p n bytes, continuing from @p h. */
#define CSP__FNV_OFFSET 0xcbf29ce484222325ULL
#define CSP__FNV_PRIME 0x100000001b3ULL
uint64_t csp__fnv1a(uint64_t h, const uint8_t *bytes, size_t n);
/* Continue digest @p h with @p numel (8 little-endian bytes) and the mask's
 * (numel + 7) / 8 little-endian bytes. */
uint64_t csp__mask_digest(uint64_t h, const uint64_t *mask, int64_t numel);

#endif
