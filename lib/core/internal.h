/*
 * Internal interface shared by every libcsp layer. Nothing here is exported;
 * white-box tests link the uninstalled all-symbols library to reach it.
 */
#ifndef CSP_CORE_INTERNAL_H
#define CSP_CORE_INTERNAL_H

#include <csp/core.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define CSP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CSP_LIKELY(x) __builtin_expect(!!(x), 1)
#define CSP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define CSP_PRINTF(f, a)
#define CSP_LIKELY(x) (x)
#define CSP_UNLIKELY(x) (x)
#endif

#define CSP_ERROR_MAX 512

struct csp_context {
    csp_alloc_fn alloc;
    csp_free_fn free;
    void *alloc_user;
    csp_log_fn log;
    void *log_user;
    int32_t log_level;
    int32_t num_threads;
    uint64_t seed;
    csp_status last_status;
    char last_error[CSP_ERROR_MAX];
    uint64_t data_epoch; /* moves at every csp_tensor_set_data() that re-points */
};

struct csp_tensor {
    csp_context *ctx;
    void *data;
    int32_t dtype;
    int32_t rank;
    int64_t shape[CSP_MAX_RANK];
    int64_t rows;
    int64_t cols;
    int64_t row_stride;
    int64_t numel;
    char *name; /* NULL when unnamed */
};

/* ---- errors and logging ------------------------------------------------ */

/* Record @p status and a printf-style message on @p ctx (which may be NULL),
 * log it at CSP_LOG_ERROR and return @p status. */
csp_status csp__error(csp_context *ctx, csp_status status, const char *fmt, ...)
    CSP_PRINTF(3, 4);

/* Send a printf-style message to the log hook when @p level is enabled. */
void csp__log(csp_context *ctx, int32_t level, const char *fmt, ...) CSP_PRINTF(3, 4);

/* Return CSP_E_NULL with a message naming @p what when @p ptr is NULL. */
#define CSP_CHECK_NULL(ctx, ptr, what)                                              \
    do {                                                                            \
        if ((ptr) == NULL)                                                          \
            return csp__error((ctx), CSP_E_NULL, "%s: %s is NULL", __func__, what); \
    } while (0)

/* ---- memory ------------------------------------------------------------- */

/* Allocate @p size bytes through the context's hook; NULL on failure (no
 * message: callers report CSP_E_NOMEM with context). size 0 allocates 1. */
void *csp__malloc(csp_context *ctx, size_t size);
/* Zero-filled; fails on overflow of n * size. */
void *csp__calloc(csp_context *ctx, size_t n, size_t size);
void csp__free(csp_context *ctx, void *ptr);
/* Memory aligned to 64 bytes (cache line, widest SIMD), from the hook. */
void *csp__malloc_aligned(csp_context *ctx, size_t size);
void csp__free_aligned(csp_context *ctx, void *ptr);
/* Duplicate a string (NULL for NULL or on failure). */
char *csp__strdup(csp_context *ctx, const char *s);

/* Overflow-checked arithmetic: false when the result does not fit. */
static inline bool csp__mul_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool csp__add_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool csp__mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- tensors ------------------------------------------------------------ */

static inline size_t csp__dtype_size(int32_t dtype) {
    return dtype == CSP_DTYPE_F64 ? sizeof(double) : sizeof(float);
}

/* ---- threads ------------------------------------------------------------ */

/* Body of a parallel loop: handle items [begin, end). @p worker is 0..n-1. */
typedef void (*csp__range_fn)(void *arg, int64_t begin, int64_t end, int32_t worker);

/* Run fn over [0, n) split into contiguous chunks of at least @p grain items
 * on up to ctx->num_threads threads (the calling thread included). The split
 * only decides who computes what: each item must be computed the same way
 * whoever computes it, so results never depend on the thread count.
 * Always returns CSP_OK: a chunk whose thread cannot start runs on the
 * calling thread. Worker threads must not allocate through the context. */
csp_status csp__parallel_for(csp_context *ctx, int64_t n, int64_t grain, csp__range_fn fn,
                             void *arg);

/* ---- time ---------------------------------------------------------------- */

/* Monotonic wall clock in seconds (lib/core/clock.c). */
double csp__now(void);

/* ---- counter-based random numbers --------------------------------------- */

/* A stateless generator: every value is a pure function of (key, counter),
 * so streams are identical across runs, platforms and thread counts. */
uint64_t csp__mix64(uint64_t x);
/* 64 random bits for (key, counter). */
static inline uint64_t csp__rand64(uint64_t key, uint64_t counter) {
    return csp__mix64(key ^ csp__mix64(counter + 0x9e3779b97f4a7c15ULL));
}
/* Derive a key from a parent key and up to three coordinates. */
uint64_t csp__key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
/* Uniform double in [0, 1) with 53 random bits. */
static inline double csp__uniform(uint64_t key, uint64_t counter) {
    return (double)(csp__rand64(key, counter) >> 11) * 0x1.0p-53;
}
/* Standard normal from (key, counter): inversion (Wichura's AS 241) of one
 * 64-bit draw, with only correctly rounded IEEE operations, so the value is
 * the same bit for bit on every platform. */
double csp__normal(uint64_t key, uint64_t counter);
/* Natural logarithm from +, -, *, / and frexp only (within 2 ulp of log,
 * identical on every IEEE-754 platform); -inf for 0, NaN for x < 0. */
double csp__log_portable(double x);

#endif /* CSP_CORE_INTERNAL_H */
