/**
 * @file io.h
 * @brief Checkpoint and resume of a pruner, and zero-weight compressed
 * export of pruned tensors. Byte layouts: docs/formats.md.
 *
 * **Checkpoints** hold a pruner's state: the masks, the schedule position
 * (the last step and event), each tensor's target and last event, the CSP
 * state (activation accumulators of pruner-owned operators, ISTA/FISTA
 * warm-start lambdas) and the statistics. They never hold weights,
 * optimizer state or operators the host attached: those are the host's,
 * and the host checkpoints them with its own tools (the context seed, which
 * keys the random operators, must also be the same). A checkpoint is loaded into a pruner
 * configured identically: the same tensors added in the same order, with
 * the same shapes, dtypes, granularities, groups, N:M, exclusions and
 * overrides, and a schedule with the same parameters. Resuming is bit
 * identical: N steps, save, load into a fresh pruner (the host restoring
 * its weights and optimizer state from its own checkpoint), N more steps
 * give the masks and weights of 2N uninterrupted steps.
 *
 * The format is little-endian on every platform, versioned, made of tagged
 * sections (unknown optional ones are skipped, unknown required ones
 * refused) and protected by CRC-32s (header, every section, whole file).
 * Loading checks everything before it changes anything: on any error the
 * pruner is exactly as it was.
 *
 * **Exports** write one tensor's weights as they are now, with every
 * weight its mask prunes left out (so exactly zero when decoded), in one of
 * three formats (::csp_export_format) behind a small versioned header.
 * csp_export_decode() expands an export back to a dense matrix.
 *
 * **Thread safety.** Like every call on a pruner: one thread at a time per
 * pruner and context. csp_export_inspect() and csp_export_decode() with a
 * NULL context touch no shared state and may run concurrently.
 */
#ifndef CSP_IO_H
#define CSP_IO_H

#include <csp/core.h>
#include <csp/pruner.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/** @name Checkpoints
 * @{ */

/** Checkpoint format major version this library writes and reads. @since 0.1.0 */
#define CSP_CHECKPOINT_VERSION_MAJOR 1
/** Checkpoint format minor version this library writes (it reads any minor). @since 0.1.0 */
#define CSP_CHECKPOINT_VERSION_MINOR 0

/**
 * @brief Serialise the pruner's state into a caller buffer.
 *
 * Call it with @p buf NULL to learn the size, then with a buffer of at
 * least that size. The bytes depend only on the pruner's state and
 * configuration (saving twice gives the same bytes).
 * @param[in]  pruner    Pruner.
 * @param[out] buf       Buffer of @p capacity bytes, or NULL to ask for the size.
 * @param[in]  capacity  Bytes available at @p buf (ignored when it is NULL).
 * @param[out] size      Receives the checkpoint's size in bytes, also when
 *                       the call fails with #CSP_E_BUFFER.
 * @return #CSP_OK, #CSP_E_NULL (pruner, size), #CSP_E_RANGE (negative
 *         capacity), #CSP_E_BUFFER (capacity too small; nothing written).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_save(const csp_pruner *pruner, void *buf, int64_t capacity,
                                   int64_t *size);

/**
 * @brief Save the pruner's state to a file, atomically.
 *
 * The checkpoint is written to the temporary file `<target>.csp-tmp` in
 * the target's directory, flushed to disk (fsync) and renamed over the
 * target, so readers see either the old file or the complete new one,
 * never a partial write. The target is @p path with its symbolic links
 * followed: the file a link leads to is replaced and the link stays. An
 * existing target keeps its mode, and its owner and group where the system
 * lets the caller set them; a new one gets mode 0666 less the umask.
 *
 * A save holds an exclusive flock() on its temporary file until the
 * rename; another save to the same target waits for it. A temporary left
 * by a save that was killed is removed by the next save to that target,
 * only when its lock is free and it is a regular file of the caller's
 * holding (part of) a checkpoint; any other file of that name is left
 * alone and the save fails (#CSP_E_IO). docs/formats.md, "Saving to a
 * file", has the details.
 * @param[in] pruner  Pruner.
 * @param[in] path    Destination path (its directory must exist).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_IO (the message names the failing
 *         operation, the path and the system's error text; also an
 *         existing target that is not a regular file, a foreign file where
 *         the temporary goes, a loop of links; the target is then
 *         untouched), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_save_file(const csp_pruner *pruner, const char *path);

/**
 * @brief Restore the pruner's state from a checkpoint in memory.
 *
 * Everything is validated before anything changes: the container (magic,
 * version, CRCs, lengths, the section table), the configuration (tensor
 * count, shapes, dtypes, granularities, groups, N:M, exclusions, overrides,
 * names where both sides have one, the schedule's parameters, the CSP
 * configuration and which tensors have host operators attached) and the state
 * itself (e.g. every mask's popcount equals its stored nnz). On any error
 * the pruner is unchanged. Host buffers are never touched: the masks reach
 * the weights and companions at the next csp_step(). Loading is allowed at
 * any time, also into a pruner that has already stepped. Reserved fields
 * must be zero: a checkpoint this library accepts saves back (from a
 * pruner configured identically) to the same bytes, but for what
 * docs/formats.md names (the writer's version, the minor version, section
 * order, optional sections skipped or missing).
 * @param[in] pruner  Pruner configured like the one that was saved.
 * @param[in] buf     The checkpoint.
 * @param[in] size    Its size in bytes, exactly (trailing bytes are refused).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (negative size),
 *         #CSP_E_CORRUPT (not a checkpoint, truncated, a CRC mismatch, an
 *         inconsistent field), #CSP_E_VERSION (a newer format major, or a
 *         required section this library does not know), #CSP_E_SHAPE
 *         (tensor count, rank or shape), #CSP_E_DTYPE, #CSP_E_STATE (any
 *         other configuration difference), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_load(csp_pruner *pruner, const void *buf, int64_t size);

/**
 * @brief Restore the pruner's state from a checkpoint file
 * (csp_pruner_load() on the file's bytes).
 *
 * Only a regular file is read; a FIFO or device is refused at once,
 * without waiting for a writer. Before the body is read, the header, the
 * end marker, the section table's layout and the size are checked: a file
 * larger than twice the size of this pruner's own checkpoint (what
 * csp_pruner_save() reports) plus 16 MiB is refused (#CSP_E_CORRUPT)
 * without being read.
 * @param[in] pruner  Pruner.
 * @param[in] path    File written by csp_pruner_save_file() (or the bytes
 *                    of csp_pruner_save() written by the host).
 * @return Those of csp_pruner_load(), and #CSP_E_IO (cannot open or read,
 *         not a regular file; the message has the system's error text).
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_load_file(csp_pruner *pruner, const char *path);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Compressed export
 * @{ */

/** Export formats (docs/formats.md has the byte layouts). @since 0.1.0 */
enum csp_export_format {
    /** Compressed sparse rows: row pointers (int32, or int64 when nnz >
     *  INT32_MAX), column indices (uint16 when cols < 65536, else int32,
     *  else int64), values. */
    CSP_EXPORT_CSR = 1,
    /** The mask, 1 bit per weight in row-major order, then the kept values
     *  packed in row-major order. */
    CSP_EXPORT_BITMAP = 2,
    /** N:M structured: N value slots and N indices of ceil(log2 M) bits
     *  (2 bits for 2:4) per group of M consecutive weights of a row. Only
     *  for masks that keep at most N of every M. */
    CSP_EXPORT_NM = 3
};

/**
 * @brief Options of csp_pruner_export() and csp_pruner_export_stats(). Fill
 * with csp_export_options_init().
 * @since 0.1.0
 */
typedef struct csp_export_options {
    size_t struct_size;  /**< sizeof(csp_export_options), set by _init. */
    int32_t format;      /**< ::csp_export_format; default #CSP_EXPORT_CSR. */
    int32_t value_dtype; /**< ::csp_dtype of the stored values, or 0 (default) for
                              the tensor's own (float64 values may be stored as
                              float32, rounded to nearest). */
    int32_t nm_n;        /**< N of #CSP_EXPORT_NM, or 0 (default) for the tensor's
                              own N:M (which then must have N:M granularity). */
    int32_t nm_m;        /**< M of #CSP_EXPORT_NM (2..#CSP_NM_MAX_M), or 0. */
} csp_export_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_export_options) as the caller sees it.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_export_options_init(csp_export_options *opts, size_t struct_size);

/**
 * @brief Export tensor @p index of the pruner: the host's weights as they
 * are now, without the weights the mask prunes.
 *
 * Call it with @p buf NULL for the size. Reads the weights (row_stride is
 * honoured) and the mask; writes only @p buf; allocates nothing.
 * @param[in]  pruner    Pruner.
 * @param[in]  index     Tensor index (an excluded tensor exports as fully kept).
 * @param[in]  opts      Options, or NULL for the defaults (CSR, own dtype).
 * @param[out] buf       Buffer of @p capacity bytes, or NULL to ask for the
 *                       size. Any alignment; 8-byte alignment lets readers
 *                       map the arrays in place (they are 8-aligned within).
 * @param[in]  capacity  Bytes at @p buf.
 * @param[out] size      Receives the export's size, also on #CSP_E_BUFFER.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index, capacity, N:M),
 *         #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED, #CSP_E_ENUM (format,
 *         value_dtype), #CSP_E_SHAPE (N:M with cols not a multiple of M),
 *         #CSP_E_STATE (N:M requested for a mask that keeps more than N of
 *         some M; N:M unspecified for a tensor without N:M granularity),
 *         #CSP_E_BUFFER.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_export(const csp_pruner *pruner, int32_t index,
                                     const csp_export_options *opts, void *buf,
                                     int64_t capacity, int64_t *size);

/**
 * @brief Sizes of an export against the dense tensor. Fill struct_size with
 * csp_export_stats_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_export_stats {
    size_t struct_size;  /**< sizeof(csp_export_stats), set by _init. */
    int64_t numel;       /**< Weights. */
    int64_t nnz;         /**< Weights kept by the mask (and stored). */
    int64_t bytes;       /**< Size of the export, header included. */
    int64_t dense_bytes; /**< numel * sizeof(the tensor's dtype). */
    int64_t header_bytes; /**< The header. */
    int64_t index_bytes; /**< Row pointers + column indices, the bitmap, or the
                              packed N:M indices, with their padding. */
    int64_t value_bytes; /**< Stored values, with their padding (N:M: N slots per
                              group, some of which may hold padding zeros). */
    double ratio;        /**< bytes / dense_bytes. */
} csp_export_stats;

/**
 * @brief Prepare @p stats for csp_pruner_export_stats().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_export_stats_init(csp_export_stats *stats, size_t struct_size);

/**
 * @brief Bytes an export of tensor @p index takes, against dense storage;
 * @p index -1 sums over every non-excluded tensor.
 * @param[in]     pruner  Pruner.
 * @param[in]     index   Tensor index, or -1 for all non-excluded tensors.
 * @param[in]     opts    Options, or NULL for the defaults.
 * @param[in,out] stats   Filled; its struct_size must come from
 *                        csp_export_stats_init().
 * @return Those of csp_pruner_export() except #CSP_E_BUFFER, and
 *         #CSP_E_STRUCT_SIZE / #CSP_E_RESERVED for @p stats.
 * @since 0.1.0
 */
CSP_API csp_status csp_pruner_export_stats(const csp_pruner *pruner, int32_t index,
                                           const csp_export_options *opts,
                                           csp_export_stats *stats);

/**
 * @brief What an export holds, read from its header. Fill struct_size with
 * csp_export_info_init(); fields are only ever appended.
 * @since 0.1.0
 */
typedef struct csp_export_info {
    size_t struct_size;          /**< sizeof(csp_export_info), set by _init. */
    int32_t format;              /**< ::csp_export_format. */
    int32_t value_dtype;         /**< ::csp_dtype of the stored values. */
    int32_t rank;                /**< Rank of the exported tensor, 1..CSP_MAX_RANK. */
    int32_t nm_n;                /**< N of an N:M export, else 0. */
    int32_t nm_m;                /**< M of an N:M export, else 0. */
    int32_t index_bytes;         /**< CSR: bytes per column index (2, 4, 8); N:M:
                                      bits per index; else 0. */
    int32_t pointer_bytes;       /**< CSR: bytes per row pointer (4, 8); else 0. */
    int32_t version;             /**< Export format version. */
    int64_t shape[CSP_MAX_RANK]; /**< Shape; 0 past the rank. */
    int64_t rows;                /**< Rows of the matrix view (shape[0], 1 for rank 1). */
    int64_t cols;                /**< Columns of the matrix view. */
    int64_t nnz;                 /**< Weights the mask kept. */
    int64_t bytes;               /**< Size of the whole export. */
} csp_export_info;

/**
 * @brief Prepare @p info for csp_export_inspect().
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_export_info_init(csp_export_info *info, size_t struct_size);

/**
 * @brief Read and check an export's header: magic, version, fields, the
 * size they imply against @p size, and the CRC of the whole export.
 * @param[in]     ctx   Context for the error message, or NULL for none.
 * @param[in]     buf   The export.
 * @param[in]     size  Its size in bytes, exactly.
 * @param[in,out] info  Filled; struct_size from csp_export_info_init().
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (negative size),
 *         #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED, #CSP_E_CORRUPT (bad magic,
 *         truncated, trailing bytes, CRC, inconsistent fields),
 *         #CSP_E_VERSION (a newer export version or an unknown format).
 * @since 0.1.0
 */
CSP_API csp_status csp_export_inspect(csp_context *ctx, const void *buf, int64_t size,
                                      csp_export_info *info);

/**
 * @brief Expand an export into a dense row-major matrix: rows x cols values,
 * the stored ones at their positions and zero everywhere else.
 *
 * The whole export is checked (csp_export_inspect(), plus sorted in-range
 * indices and consistent counts) before @p dense is written; on error
 * @p dense is untouched.
 * @param[in]  ctx         Context for the error message, or NULL.
 * @param[in]  buf         The export.
 * @param[in]  size        Its size in bytes.
 * @param[out] dense       Output, aligned to its element size.
 * @param[in]  dtype       ::csp_dtype of @p dense, or 0 for the export's value
 *                         dtype (values convert as C casts do).
 * @param[in]  row_stride  Elements between the starts of rows of @p dense; 0
 *                         means cols. Elements between rows are not written.
 * @param[in]  capacity    Bytes at @p dense; at least
 *                         ((rows - 1) * row_stride + cols) elements.
 *                         Those elements (the span decode writes, gaps
 *                         between rows included) must not overlap the
 *                         @p size bytes at @p buf.
 * @return #CSP_OK, those of csp_export_inspect(), #CSP_E_ENUM (dtype),
 *         #CSP_E_SHAPE (row_stride < cols), #CSP_E_INVALID (misaligned
 *         dense, or dense overlapping the export), #CSP_E_BUFFER
 *         (capacity), #CSP_E_OVERFLOW.
 * @since 0.1.0
 */
CSP_API csp_status csp_export_decode(csp_context *ctx, const void *buf, int64_t size,
                                     void *dense, int32_t dtype, int64_t row_stride,
                                     int64_t capacity);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CSP_IO_H */
