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
/* N:M: @p slots value slots of one row (groups * n), position of slot t
 * in bits [t * bits, (t + 1) * bits) of @p pos (bits 2, 4 or 8, LSB first),
 * column (t / n) * m + position. */
typedef void (*csp__sparse_dot_nm)(const float *v, const uint8_t *pos, int64_t slots, int32_t n,
                                   int32_t m, int32_t bits, const float *x, int64_t ldx, int nb,
                                   float *out);

typedef struct csp__sparse_kernels {
    int32_t kind; /* csp_sparse_kernel */
    csp__sparse_dot_u16 dot_u16;
    csp__sparse_dot_i32 dot_i32;
    csp__sparse_dot_nm dot_nm;
} csp__sparse_kernels;

/* The table of @p kind (CSP_SPARSE_KERNEL_AUTO: the best this CPU runs);
 * NULL when this CPU or build lacks it. */
const csp__sparse_kernels *csp__sparse_kernels_get(int32_t kind);

struct csp_sparse {
    csp_context *ctx; /* allocated through it */
    int64_t rows, cols, nnz;
    int32_t format;    /* CSR, BALANCED or NM */
    int32_t idxw;      /* 2 or 4 (CSR, balanced) */
    int32_t nm_n, nm_m, nm_bits;
    int64_t per_row;   /* balanced: weights per row; N:M: slots per row */
    int64_t pos_stride; /* N:M: bytes of positions per row */
    int64_t *rowptr;   /* CSR: rows + 1 offsets */
    void *idx;         /* CSR/balanced: uint16_t or int32_t column indices */
    uint8_t *pos;      /* N:M: packed positions, pos_stride bytes per row */
    float *val;        /* values (N:M: slots, padding slots 0) */
    int64_t bytes;     /* bytes of the arrays above the kernels read */
    const csp__sparse_kernels *k;
    void *block;       /* the one aligned allocation holding the arrays */
};

#endif /* CSP_SPARSE_INTERNAL_H */
