/**
 * @file sparse.h
 * @brief Sparse inference: an immutable float32 sparse-weight matrix built
 * from a pruned tensor or an export, and y = alpha W x + beta y for one
 * vector or a small batch.
 *
 * A ::csp_sparse holds the nonzero weights of a rows x cols matrix W (the
 * matrix view of a tensor: shape[0] rows, the other dimensions flattened
 * into columns) in one of three layouts (::csp_sparse_format), chosen to
 * exploit what libcsp's masks guarantee:
 * - **CSR**: row pointers, column indices and values;
 * - **balanced**: every row keeps the same number of weights (row-balanced
 *   granularity), so no row pointer is stored;
 * - **N:M**: N value slots and N packed positions (2 bits each for M <= 4,
 *   4 bits for M <= 16, 8 bits for M <= 32) per group of M columns.
 * Column indices are 16-bit when cols <= 65536, else 32-bit.
 *
 * The kernels are chosen once, when the object is built, from the CPU's
 * features (x86-64: AVX-512, AVX2+FMA or portable C; aarch64: NEON), or
 * forced through csp_sparse_options::kernel (a kernel the CPU lacks, such as
 * NEON on x86-64, is refused). Each output element is always computed in the
 * same order by the same kernel, so results never depend on the thread
 * count, on the batch size or on the position of a vector in the batch;
 * they may differ in the last bits between kernels.
 *
 * **Thread safety.** The object is immutable after it is built: any number
 * of threads may call csp_sparse_matvec(), csp_sparse_matmul() and
 * csp_sparse_inspect() on it concurrently, each with its own context (or a
 * NULL one). csp_sparse_free() must not race any other call on the object.
 */
#ifndef CSP_SPARSE_H
#define CSP_SPARSE_H

#include <csp/core.h>
#include <csp/pruner.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An immutable sparse float32 weight matrix. @since 0.1.0 */
typedef struct csp_sparse csp_sparse;

/** Storage layouts of a ::csp_sparse. @since 0.1.0 */
enum csp_sparse_format {
    /** Choose: N:M when the source has an N:M pattern the weights obey,
     *  else balanced when every row has the same count, else CSR. */
    CSP_SPARSE_AUTO = 0,
    /** Compressed sparse rows. */
    CSP_SPARSE_CSR = 1,
    /** Equal count per row, no row pointers (refused when counts differ). */
    CSP_SPARSE_BALANCED = 2,
    /** N:M groups of consecutive columns (refused when cols is not a
     *  multiple of M or some group has more than N nonzeros). */
    CSP_SPARSE_NM = 3
};

/** Kernel families of a ::csp_sparse. @since 0.1.0 */
enum csp_sparse_kernel {
    /** The fastest one this CPU supports. */
    CSP_SPARSE_KERNEL_AUTO = 0,
    /** Portable C. */
    CSP_SPARSE_KERNEL_PORTABLE = 1,
    /** x86-64 AVX2 with FMA. */
    CSP_SPARSE_KERNEL_AVX2 = 2,
    /** x86-64 AVX-512F. */
    CSP_SPARSE_KERNEL_AVX512 = 3,
    /** AArch64 NEON. */
    CSP_SPARSE_KERNEL_NEON = 4
};

/**
 * @brief Options of the csp_sparse_from_ functions. Fill with
 * csp_sparse_options_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_sparse_options {
    size_t struct_size; /**< sizeof(csp_sparse_options), set by _init. */
    int32_t format;     /**< ::csp_sparse_format; default #CSP_SPARSE_AUTO. */
    int32_t kernel;     /**< ::csp_sparse_kernel; default #CSP_SPARSE_KERNEL_AUTO. A
                             kernel this CPU or build lacks is refused
                             (#CSP_E_UNSUPPORTED). */
    int32_t nm_n;       /**< N of the N:M layout, or 0 (default): the source's
                             (the tensor's N:M granularity, an N:M export). */
    int32_t nm_m;       /**< M of the N:M layout (2..#CSP_NM_MAX_M), or 0. */
} csp_sparse_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_sparse_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_options_init(csp_sparse_options *opts, size_t struct_size);

/**
 * @brief What a ::csp_sparse holds. Fill struct_size with
 * csp_sparse_info_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_sparse_info {
    size_t struct_size;  /**< sizeof(csp_sparse_info), set by _init. */
    int64_t rows;        /**< Rows of W (length of y). */
    int64_t cols;        /**< Columns of W (length of x). */
    int64_t nnz;         /**< Stored nonzero weights (N:M padding slots excluded). */
    int64_t bytes;       /**< Bytes of the arrays the kernels read (values,
                              indices, row pointers). */
    int64_t dense_bytes; /**< rows * cols * 4: the dense float32 matrix. */
    int32_t format;      /**< ::csp_sparse_format actually used (never AUTO). */
    int32_t kernel;      /**< ::csp_sparse_kernel actually used (never AUTO). */
    int32_t index_bytes; /**< Bytes per column index (2 or 4). */
    int32_t nm_n;        /**< N of the N:M layout, else 0. */
    int32_t nm_m;        /**< M of the N:M layout, else 0. */
    int32_t nm_bits;     /**< 0: N:M runs on the slice layout with column
                              indices (no packed positions). */
} csp_sparse_info;

/**
 * @brief Prepare @p info for csp_sparse_inspect().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_info_init(csp_sparse_info *info, size_t struct_size);

/**
 * @brief Build a sparse matrix from the nonzeros of a dense row-major
 * float32 matrix.
 * @param[in]  ctx         Context (allocator, errors); must outlive the object.
 * @param[in]  dense       rows x cols values, row @p r at dense + r * ld.
 * @param[in]  rows        Rows, >= 1.
 * @param[in]  cols        Columns, >= 1.
 * @param[in]  ld          Elements between row starts; 0 means cols.
 * @param[in]  opts        Options, or NULL for the defaults.
 * @param[out] out         Receives the object (NULL on failure).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (rows, cols), #CSP_E_SHAPE
 *         (ld < cols; N:M with cols not a multiple of M),
 *         #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED, #CSP_E_ENUM (format,
 *         kernel), #CSP_E_UNSUPPORTED (kernel not available on this CPU),
 *         #CSP_E_STATE (balanced with unequal row counts; N:M with a group
 *         holding more than N nonzeros; N:M without N and M),
 *         #CSP_E_OVERFLOW, #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_from_dense(csp_context *ctx, const float *dense, int64_t rows,
                                         int64_t cols, int64_t ld,
                                         const csp_sparse_options *opts, csp_sparse **out);

/**
 * @brief Build a sparse matrix from an export (csp_pruner_export(): CSR,
 * bitmap or N:M, float32 or float64 values, float64 rounded to float32).
 *
 * The export is checked whole first (as csp_export_decode() does). Stored
 * values that are exactly zero are dropped. An N:M export gives its N and
 * M to the N:M layout unless @p opts names others.
 * @param[in]  ctx   Context (allocator, errors); must outlive the object.
 * @param[in]  buf   The export.
 * @param[in]  size  Its size in bytes, exactly.
 * @param[in]  opts  Options, or NULL for the defaults.
 * @param[out] out   Receives the object (NULL on failure).
 * @return Those of csp_sparse_from_dense() and of csp_export_inspect()
 *         (#CSP_E_CORRUPT, #CSP_E_VERSION: a bad export).
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_from_export(csp_context *ctx, const void *buf, int64_t size,
                                          const csp_sparse_options *opts, csp_sparse **out);

/**
 * @brief Build a sparse matrix from tensor @p index of a pruner: its
 * weights as they are now, times its mask (row_stride is honoured,
 * float64 weights are rounded to float32).
 *
 * An N:M tensor gives its N and M to the N:M layout unless @p opts names
 * others. The object is allocated through the pruner's context, which must
 * outlive it; the pruner may be freed first.
 * @param[in]  pruner  Pruner.
 * @param[in]  index   Tensor index (an excluded tensor is taken whole).
 * @param[in]  opts    Options, or NULL for the defaults.
 * @param[out] out     Receives the object (NULL on failure).
 * @return Those of csp_sparse_from_dense(), #CSP_E_RANGE (index).
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_from_pruner(const csp_pruner *pruner, int32_t index,
                                          const csp_sparse_options *opts, csp_sparse **out);

/**
 * @brief Free a sparse matrix (NULL is a no-op).
 * @since 0.1.0
 */
CSP_API void csp_sparse_free(csp_sparse *sparse);

/**
 * @brief Describe a sparse matrix.
 * @param[in]     sparse  The matrix.
 * @param[in,out] info    Filled; struct_size from csp_sparse_info_init().
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED.
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_inspect(const csp_sparse *sparse, csp_sparse_info *info);

/**
 * @brief y = alpha W x + beta y for one vector.
 *
 * With @p beta 0, y is only written (NaN or Inf in y do not propagate).
 * Allocates nothing; runs on the context's threads (csp_context_num_threads())
 * when the matrix is large enough, with results independent of their number.
 * @param[in]     sparse  The matrix W (rows x cols).
 * @param[in]     ctx     Context for threads and the error message, or NULL
 *                        (one thread, no message).
 * @param[in]     alpha   Scale of W x.
 * @param[in]     x       cols values.
 * @param[in]     beta    Scale of the old y.
 * @param[in,out] y       rows values; must not overlap @p x.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_INVALID (x and y overlap).
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_matvec(const csp_sparse *sparse, csp_context *ctx, float alpha,
                                     const float *x, float beta, float *y);

/**
 * @brief Y = alpha X W^T + beta Y for a batch of vectors, batch-major:
 * vector b is x[b * ldx + 0 .. cols), its result y[b * ldy + 0 .. rows).
 *
 * This is the layout of an RNN's batch of states (x[B][cols] -> y[B][rows]).
 * Each weight is read from memory once per 16 vectors: the inputs are
 * transposed 16 vectors at a time into a buffer the matrix owns, and one
 * stored weight updates 16 vectors with one multiply-add (the CSR layout
 * with very uneven rows instead applies each row to up to four vectors at
 * a time). Vector b's result is bit-identical to csp_sparse_matvec() on
 * that vector. Allocates nothing, except when another call on the same
 * matrix holds its buffer at the same time (then this call allocates
 * cols x 16 floats through the matrix's context, #CSP_E_NOMEM on failure);
 * threads as csp_sparse_matvec().
 * @param[in]     sparse  The matrix W (rows x cols).
 * @param[in]     ctx     Context for threads and the error message, or NULL.
 * @param[in]     batch   Vectors, >= 1 (the kernels are tuned for 1..32).
 * @param[in]     alpha   Scale of W x.
 * @param[in]     x       The batch of inputs.
 * @param[in]     ldx     Elements between input vectors, >= cols; 0 means cols.
 * @param[in]     beta    Scale of the old y (0: y is only written).
 * @param[in,out] y       The batch of outputs; must not overlap @p x.
 * @param[in]     ldy     Elements between output vectors, >= rows; 0 means rows.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (batch < 1), #CSP_E_SHAPE
 *         (ldx < cols, ldy < rows), #CSP_E_INVALID (x and y overlap),
 *         #CSP_E_OVERFLOW, #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_sparse_matmul(const csp_sparse *sparse, csp_context *ctx, int32_t batch,
                                     float alpha, const float *x, int64_t ldx, float beta,
                                     float *y, int64_t ldy);

#ifdef __cplusplus
}
#endif

#endif /* CSP_SPARSE_H */
