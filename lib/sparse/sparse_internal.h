/*
 * Sparse inference (include/csp/sparse.h): the object and the kernel table.
 * Internal. Every kernel family (portable C, AVX2, AVX-512, NEON) fills one
 * csp__sparse_kernels table in lib/sparse/kernels.c; that file is the only
 * place that knows which families exist and which one a CPU runs.
 */
#ifndef CSP_SPARSE_INTERNAL_H
#define CSP_SPARSE_INTERNAL_H

#include <csp/sparse.h>

#include "core/internal.h"

#include <stdatomic.h>

/* Vectors one kernel call applies a row to (the batch is walked in groups
 * of this many; every vector's result is computed the same way whatever
 * the group size). */
#define CSP__SPARSE_GROUP 4

/* The row kernels: out[b] = sum_k v[k] * x[b * ldx + col(k)] for b < nb
 * (1..CSP__SPARSE_GROUP), over one row's n stored weights. The summation
 * order depends only on n (and the kernel), never on nb or b. */
typedef void (*csp__sparse_dot_u16)(const float *v, const uint16_t *idx, int64_t n,
                                    const float *x, int64_t ldx, int nb, float *out);
typedef void (*csp__sparse_dot_i32)(const float *v, const int32_t *idx, int64_t n,
                                    const float *x, int64_t ldx, int nb, float *out);
/* The slice kernels (SELL-C layout, C = CSP__SPARSE_LANES rows per slice):
 * a slice of width w stores w positions of CSP__SPARSE_LANES entries,
 * v[k * LANES + l] and idx[k * LANES + l] being row l's k-th weight (padding:
 * value 0, a valid column). Matvec: out[l] = sum_k v * x[idx] for every lane.
 * Batched: xt is x transposed, CSP__SPARSE_LANES floats per column (vector j
 * of the chunk at xt[c * LANES + j]); out[l * LANES + j] for j < nw at
 * least (nw the chunk's vectors; the rest may be left unwritten).
 * Every lane sums its positions in order k = 0 .. w - 1 with one
 * fused multiply-add each (x86, NEON) or a multiply then an add (portable),
 * in both kernels of a family: batched results are bit-identical to matvec. */
#define CSP__SPARSE_LANES 16
typedef void (*csp__sparse_sell_u16)(const float *v, const uint16_t *idx, int64_t w,
                                     const float *x, float *out);
typedef void (*csp__sparse_sell_i32)(const float *v, const int32_t *idx, int64_t w,
                                     const float *x, float *out);
typedef void (*csp__sparse_sellb_u16)(const float *v, const uint16_t *idx, int64_t w,
                                      const float *xt, int nw, float *out);
typedef void (*csp__sparse_sellb_i32)(const float *v, const int32_t *idx, int64_t w,
                                      const float *xt, int nw, float *out);

typedef struct csp__sparse_kernels {
    int32_t kind; /* csp_sparse_kernel */
    csp__sparse_dot_u16 dot_u16;
    csp__sparse_dot_i32 dot_i32;
    csp__sparse_sell_u16 sell_u16;
    csp__sparse_sell_i32 sell_i32;
    csp__sparse_sellb_u16 sellb_u16;
    csp__sparse_sellb_i32 sellb_i32;
} csp__sparse_kernels;

/* The table of @p kind (CSP_SPARSE_KERNEL_AUTO: the best this CPU runs);
 * NULL when this CPU or build lacks it. */
const csp__sparse_kernels *csp__sparse_kernels_get(int32_t kind);

struct csp_sparse {
    csp_context *ctx; /* allocated through it */
    int64_t rows, cols, nnz;
    int32_t format;    /* CSR, BALANCED or NM (the public layout's name) */
    int32_t idxw;      /* 2 or 4: bytes per column index */
    int32_t nm_n, nm_m;
    /* The slice layout (every format unless a CSR matrix's row counts are
     * too uneven): nslices slices of CSP__SPARSE_LANES rows, slice i's
     * entries [sptr[i], sptr[i + 1]) (a multiple of LANES); slice lane l
     * is row perm[i * LANES + l] (perm NULL: row i * LANES + l), rows past
     * the end are padding. */
    int32_t sell;
    int64_t nslices;
    int64_t *sptr;
    int32_t *perm;
    /* The row layout (CSR with uneven rows): rows + 1 offsets. */
    int64_t *rowptr;
    void *idx;         /* uint16_t or int32_t column indices */
    float *val;        /* values (slice layout: padding entries 0) */
    int64_t bytes;     /* bytes of the arrays above the kernels read */
    const csp__sparse_kernels *k;
    /* The batched slice kernels' transposed inputs (cols x LANES floats),
     * taken by one call at a time (ws_busy); a concurrent call allocates
     * its own. */
    float *ws;
    atomic_flag ws_busy;
    void *block;       /* the one aligned allocation holding the arrays */
};

#endif /* CSP_SPARSE_INTERNAL_H */
