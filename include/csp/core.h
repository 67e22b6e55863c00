/**
 * @file core.h
 * @brief libcsp core: version, status codes, context, tensors, options.
 *
 * Conventions used by every libcsp object (docs/guide.md has the long form):
 * - Every function returning ::csp_status returns #CSP_OK (0) on success, a
 *   small positive informational code when it succeeded with something to
 *   say, or a negative error code. Error numbers never change once released.
 * - When a call that has a context fails, a human-readable message is left on
 *   that context (csp_context_last_error()). There is no global error state.
 * - Objects are opaque and come in create/free pairs. The create functions
 *   take the out-pointer first and set it to NULL on failure; every
 *   `*_free(NULL)` is a no-op.
 * - Options structs start with `size_t struct_size`, are filled with defaults
 *   by their `*_options_init()` function and only ever grow at the end.
 * - A context and the objects created from it may be used by one thread at a
 *   time. Independent contexts may be used concurrently from different
 *   threads. A context must outlive every object created from it.
 */
#ifndef CSP_CORE_H
#define CSP_CORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(CSP_BUILDING_DLL)
#define CSP_API __declspec(dllexport)
#elif defined(_WIN32) && defined(CSP_USING_DLL)
#define CSP_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define CSP_API __attribute__((visibility("default")))
#else
#define CSP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/** @name Version
 * @{ */

/** Major version; equal to the ABI version and the soname major. */
#define CSP_VERSION_MAJOR 0
/** Minor version: bumped when functions are added. */
#define CSP_VERSION_MINOR 1
/** Patch version: bumped for fixes that add nothing. */
#define CSP_VERSION_PATCH 0
/** The version as text, "MAJOR.MINOR.PATCH". */
#define CSP_VERSION_STRING "0.1.0"
/** The version as one number: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define CSP_VERSION_NUMBER \
    ((CSP_VERSION_MAJOR * 10000) + (CSP_VERSION_MINOR * 100) + CSP_VERSION_PATCH)
/** ABI version of this header (the `N` of `libcsp.so.N`). */
#define CSP_ABI_VERSION 0

/**
 * @brief Version of the library actually loaded, as CSP_VERSION_NUMBER.
 * @return MAJOR * 10000 + MINOR * 100 + PATCH of the running library.
 * @since 0.1.0
 */
CSP_API uint32_t csp_version_number(void);

/**
 * @brief Version of the library actually loaded, as text.
 * @return A static string such as "0.1.0"; never NULL. Thread-safe.
 * @since 0.1.0
 */
CSP_API const char *csp_version_string(void);

/**
 * @brief ABI version (soname major) of the library actually loaded.
 * @since 0.1.0
 */
CSP_API uint32_t csp_abi_version(void);

/**
 * @brief Header/library handshake: is the loaded library usable with the
 * header a program was compiled against?
 *
 * Call it as `csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER)` (the
 * macro CSP_CHECK_VERSION() does exactly that). The library accepts when the
 * ABI versions are equal and the library is at least as new as the header
 * (MAJOR.MINOR), because a newer header may declare functions an older
 * library lacks.
 *
 * @param[in] header_abi      CSP_ABI_VERSION of the caller's header.
 * @param[in] header_version  CSP_VERSION_NUMBER of the caller's header.
 * @return #CSP_OK, or #CSP_E_VERSION when they do not match.
 * @since 0.1.0
 */
CSP_API int32_t csp_check_version(uint32_t header_abi, uint32_t header_version);

/** Handshake with the header this translation unit was compiled against. */
#define CSP_CHECK_VERSION() csp_check_version(CSP_ABI_VERSION, CSP_VERSION_NUMBER)

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Status codes
 * @{ */

/**
 * @brief Result of a libcsp call: 0 ok, > 0 informational, < 0 error.
 *
 * Values are those of ::csp_status_code. The numbers are fixed forever; new
 * codes are only ever added.
 */
typedef int32_t csp_status;

/** Every status code libcsp returns. */
enum csp_status_code {
    CSP_OK = 0,                  /**< Success. */

    /* Informational: positive, fixed numbers. */
    CSP_MASKED = 1,              /**< csp_step(): masks re-applied, no pruning event. */
    CSP_PRUNED = 2,              /**< csp_step(): pruning event, masks updated. */
    CSP_DAMPED = 3,              /**< Solved, but damping was added to an
                                      ill-conditioned or singular G_SS in some
                                      row (see the row stats). */
    CSP_NOT_CONVERGED = 4,       /**< Solved, but some row stopped at max_iter
                                      before reaching its tolerance. */
    CSP_NO_TENSORS = 5,          /**< csp_step(): the pruner has no tensors, so
                                      nothing was done (the step is not recorded). */

    /* Errors: negative, fixed numbers. */
    CSP_E_INVALID = -1,          /**< An argument is invalid (see the message). */
    CSP_E_NULL = -2,             /**< A required pointer is NULL. */
    CSP_E_NOMEM = -3,            /**< The allocator returned NULL. */
    CSP_E_OVERFLOW = -4,         /**< A size computation would overflow. */
    CSP_E_STRUCT_SIZE = -5,      /**< An options struct has an unknown struct_size. */
    CSP_E_RESERVED = -6,         /**< Reserved or unknown trailing bytes are not zero. */
    CSP_E_ENUM = -7,             /**< An enum argument has an unknown value. */
    CSP_E_DTYPE = -8,            /**< Unsupported or mismatched element type. */
    CSP_E_SHAPE = -9,            /**< Bad or mismatched shape, rank or stride. */
    CSP_E_RANGE = -10,           /**< A numeric argument is out of its range or NaN. */
    CSP_E_NONFINITE = -11,       /**< Input data contains NaN or infinity. */
    CSP_E_STATE = -12,           /**< The call is not valid in the object's state. */
    CSP_E_VERSION = -13,         /**< Header/library or file version mismatch. */
    CSP_E_IO = -14,              /**< Reading or writing a file failed. */
    CSP_E_CORRUPT = -15,         /**< Serialised data is corrupt or truncated. */
    CSP_E_UNSUPPORTED = -16,     /**< Valid request this build cannot do. */
    CSP_E_CALLBACK = -17,        /**< A host callback reported failure. */
    CSP_E_THREAD = -18,          /**< Reserved: no call returns it today (a parallel loop
                                      whose worker thread cannot start runs that part on
                                      the calling thread instead). */
    CSP_E_BUFFER = -19           /**< A caller-supplied buffer is too small. */
};

/**
 * @brief One-line English description of a status code.
 * @return A static string; never NULL, also for unknown codes. Thread-safe.
 * @since 0.1.0
 */
CSP_API const char *csp_status_str(csp_status status);

/**
 * @brief Symbolic name of a status code, e.g. "CSP_E_NOMEM".
 * @return A static string; "CSP_UNKNOWN_STATUS" for unknown codes; never NULL.
 * @since 0.1.0
 */
CSP_API const char *csp_status_name(csp_status status);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Context
 * @{ */

/**
 * @brief The library context: allocator, log hook, threads, seed and the
 * last error message. Every other object is created from one.
 */
typedef struct csp_context csp_context;

/**
 * @brief Allocation hook. Must return memory aligned for any C type, or NULL.
 * Called only from the thread that called into libcsp.
 */
typedef void *(*csp_alloc_fn)(void *user, size_t size);

/** @brief Release hook for memory returned by ::csp_alloc_fn. Never given NULL. */
typedef void (*csp_free_fn)(void *user, void *ptr);

/**
 * @brief Log hook. @p message is a NUL-terminated line without newline,
 * valid only during the call.
 */
typedef void (*csp_log_fn)(void *user, int32_t level, const char *message);

/** Log levels: a message goes to the hook when its level <= the context's. */
enum csp_log_level {
    CSP_LOG_NONE = 0,    /**< Log nothing. */
    CSP_LOG_ERROR = 1,   /**< Errors returned to the caller. */
    CSP_LOG_WARN = 2,    /**< Recoverable problems (damping escalated, ...). */
    CSP_LOG_INFO = 3,    /**< One line per pruning event. */
    CSP_LOG_DEBUG = 4    /**< Verbose tracing. */
};

/** No versioned struct is ever larger: every struct_size up to this many bytes is
 * accepted when the bytes this library does not know are zero, so a binding may
 * allocate this much, fill it with an `_init` function and pass it on. */
#define CSP_STRUCT_MAX_SIZE 4096

/** Largest thread count a context accepts. */
#define CSP_MAX_THREADS 256

/**
 * @brief Options for csp_context_create(). Fill with
 * csp_context_options_init() first, then change fields.
 */
typedef struct csp_context_options {
    size_t struct_size;    /**< sizeof(csp_context_options), set by _init. */
    csp_alloc_fn alloc;    /**< Allocation hook; NULL means malloc. */
    csp_free_fn free;      /**< Release hook; set exactly when alloc is set. */
    void *alloc_user;      /**< Passed to alloc and free. */
    csp_log_fn log;        /**< Log hook; NULL logs nothing. */
    void *log_user;        /**< Passed to log. */
    int32_t log_level;     /**< ::csp_log_level; default CSP_LOG_WARN. */
    int32_t num_threads;   /**< Worker threads, 1..CSP_MAX_THREADS; default 1. */
    uint64_t seed;         /**< Seed of every random choice; default 0. */
} csp_context_options;

/**
 * @brief Fill @p opts with defaults.
 * @param[out] opts         Options to fill; must not be NULL.
 * @param[in]  struct_size  sizeof(csp_context_options) as the caller sees it.
 *                          Sizes larger than the library knows are zeroed past
 *                          the known fields; smaller unknown sizes are refused.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_STRUCT_SIZE.
 * @since 0.1.0
 */
CSP_API csp_status csp_context_options_init(csp_context_options *opts, size_t struct_size);

/**
 * @brief Create a context.
 * @param[out] out   Receives the context, or NULL on failure.
 * @param[in]  opts  Options, or NULL for the defaults. Copied; the caller
 *                   keeps ownership.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_STRUCT_SIZE, #CSP_E_RESERVED,
 *         #CSP_E_INVALID (alloc without free or the reverse), #CSP_E_RANGE
 *         (num_threads or log_level), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_context_create(csp_context **out, const csp_context_options *opts);

/**
 * @brief Free a context. Every object created from it must be freed first.
 * @param[in] ctx  Context, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_context_free(csp_context *ctx);

/**
 * @brief Message of the last failed call made with this context.
 * @return A string owned by the context, valid until the next call that uses
 *         it; "" when no error happened since csp_context_clear_error();
 *         "NULL context" for NULL. Never NULL.
 * @since 0.1.0
 */
CSP_API const char *csp_context_last_error(const csp_context *ctx);

/**
 * @brief Status of the last failed call made with this context (0 if none).
 * @since 0.1.0
 */
CSP_API csp_status csp_context_last_status(const csp_context *ctx);

/**
 * @brief Forget the last error.
 * @param[in] ctx  Context, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_context_clear_error(csp_context *ctx);

/**
 * @brief Number of worker threads; results never depend on it.
 * @return The thread count, or 0 for a NULL context.
 * @since 0.1.0
 */
CSP_API int32_t csp_context_num_threads(const csp_context *ctx);

/**
 * @brief Change the number of worker threads.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE (outside 1..CSP_MAX_THREADS).
 * @since 0.1.0
 */
CSP_API csp_status csp_context_set_num_threads(csp_context *ctx, int32_t num_threads);

/**
 * @brief The context's seed (0 for a NULL context).
 * @since 0.1.0
 */
CSP_API uint64_t csp_context_seed(const csp_context *ctx);

/**
 * @brief Replace the log hook and level.
 * @param[in] ctx    Context.
 * @param[in] log    Hook, or NULL to stop logging.
 * @param[in] user   Passed to the hook.
 * @param[in] level  ::csp_log_level.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_RANGE.
 * @since 0.1.0
 */
CSP_API csp_status csp_context_set_log(csp_context *ctx, csp_log_fn log, void *user,
                                       int32_t level);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Tensors
 * @{ */

/**
 * @brief A view of a host buffer: element type, shape, row stride, name.
 *
 * No data is copied: libcsp reads and writes the host's buffer in place.
 * Its matrix view has `rows = shape[0]` and `cols = shape[1] * ... *
 * shape[rank-1]` (a rank-1 tensor is one row). Elements of a row are
 * contiguous; consecutive rows are `row_stride` elements apart.
 */
typedef struct csp_tensor csp_tensor;

/** Element types. */
enum csp_dtype {
    CSP_DTYPE_F32 = 1, /**< IEEE-754 binary32 (float). */
    CSP_DTYPE_F64 = 2  /**< IEEE-754 binary64 (double). */
};

/** Largest tensor rank. */
#define CSP_MAX_RANK 4

/** Longest tensor name, in bytes, without the terminating NUL. */
#define CSP_MAX_NAME 255

/**
 * @brief Create a tensor view of host memory.
 * @param[out] out         Receives the tensor, or NULL on failure.
 * @param[in]  ctx         Context.
 * @param[in]  data        Host buffer; must stay valid while the tensor is
 *                         used and be aligned to the element size.
 * @param[in]  dtype       ::csp_dtype.
 * @param[in]  rank        1..CSP_MAX_RANK.
 * @param[in]  shape       @p rank sizes, each >= 1.
 * @param[in]  row_stride  Elements between the starts of consecutive rows;
 *                         0 means contiguous (cols). Otherwise >= cols.
 * @param[in]  name        Optional name (copied), or NULL.
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_ENUM (dtype), #CSP_E_SHAPE (rank,
 *         shape, stride), #CSP_E_OVERFLOW, #CSP_E_INVALID (misaligned data,
 *         name too long), #CSP_E_NOMEM.
 * @since 0.1.0
 */
CSP_API csp_status csp_tensor_create(csp_tensor **out, csp_context *ctx, void *data,
                                     int32_t dtype, int32_t rank, const int64_t *shape,
                                     int64_t row_stride, const char *name);

/**
 * @brief Free a tensor view (never the host buffer).
 * @param[in] t  Tensor, or NULL (no-op).
 * @since 0.1.0
 */
CSP_API void csp_tensor_free(csp_tensor *t);

/**
 * @brief Point the view at another buffer of the same layout (for a host
 * that reallocated its parameters).
 *
 * A pruner that binds the view (as weights, companion or gradient) checks,
 * at its next csp_step() or csp_pruner_mask_gradients(), that its buffers
 * still share no memory; if the new buffer overlaps another it binds, that
 * call fails with #CSP_E_INVALID naming both and changes nothing, until
 * the view is pointed elsewhere.
 * @return #CSP_OK, #CSP_E_NULL or #CSP_E_INVALID (misaligned).
 * @since 0.1.0
 */
CSP_API csp_status csp_tensor_set_data(csp_tensor *t, void *data);

/** @brief The host buffer (NULL for a NULL tensor). @since 0.1.0 */
CSP_API void *csp_tensor_data(const csp_tensor *t);
/** @brief ::csp_dtype, or 0 for a NULL tensor. @since 0.1.0 */
CSP_API int32_t csp_tensor_dtype(const csp_tensor *t);
/** @brief Rank, or 0 for a NULL tensor. @since 0.1.0 */
CSP_API int32_t csp_tensor_rank(const csp_tensor *t);
/** @brief Size of @p axis, or 0 for a NULL tensor or an axis outside 0..rank-1. @since 0.1.0 */
CSP_API int64_t csp_tensor_dim(const csp_tensor *t, int32_t axis);
/** @brief Number of elements, or 0 for a NULL tensor. @since 0.1.0 */
CSP_API int64_t csp_tensor_numel(const csp_tensor *t);
/** @brief Rows of the matrix view (shape[0]; 1 for rank 1), or 0. @since 0.1.0 */
CSP_API int64_t csp_tensor_rows(const csp_tensor *t);
/** @brief Columns of the matrix view, or 0. @since 0.1.0 */
CSP_API int64_t csp_tensor_cols(const csp_tensor *t);
/** @brief Elements between consecutive rows (>= cols), or 0. @since 0.1.0 */
CSP_API int64_t csp_tensor_row_stride(const csp_tensor *t);
/** @brief The name given at creation, "" when none or for NULL; never NULL. @since 0.1.0 */
CSP_API const char *csp_tensor_name(const csp_tensor *t);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CSP_CORE_H */
