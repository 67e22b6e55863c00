/* The context: allocator, log hook, threads, seed and the last error. */
#include "internal.h"

#include "core/abi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *user, size_t size) {
    (void)user;
    return malloc(size);
}

static void default_free(void *user, void *ptr) {
    (void)user;
    free(ptr);
}

/* ---- errors and logging ------------------------------------------------ */

static void emit_log(const csp_context *ctx, int32_t level, const char *fmt, va_list ap)
    CSP_PRINTF(3, 0);

static void emit_log(const csp_context *ctx, int32_t level, const char *fmt, va_list ap) {
    char line[CSP_ERROR_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    ctx->log(ctx->log_user, level, line);
}

csp_status csp__error(csp_context *ctx, csp_status status, const char *fmt, ...) {
    if (ctx == NULL)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    ctx->last_status = status;
    if (ctx->log != NULL && ctx->log_level >= CSP_LOG_ERROR)
        ctx->log(ctx->log_user, CSP_LOG_ERROR, ctx->last_error);
    return status;
}

void csp__log(csp_context *ctx, int32_t level, const char *fmt, ...) {
    if (ctx == NULL || ctx->log == NULL || level > ctx->log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_log(ctx, level, fmt, ap);
    va_end(ap);
}

/* ---- memory ------------------------------------------------------------- */

void *csp__malloc(csp_context *ctx, size_t size) {
    return ctx->alloc(ctx->alloc_user, size == 0 ? 1 : size);
}

void *csp__calloc(csp_context *ctx, size_t n, size_t size) {
    size_t bytes;
    if (!csp__mul_size(n, size, &bytes))
        return NULL;
    void *p = csp__malloc(ctx, bytes);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

void csp__free(csp_context *ctx, void *ptr) {
    if (ptr != NULL)
        ctx->free(ctx->alloc_user, ptr);
}

#define CSP_ALIGN 64

void *csp__malloc_aligned(csp_context *ctx, size_t size) {
    /* Over-allocate, align, and keep the original pointer just below. */
    if (size > SIZE_MAX - CSP_ALIGN - sizeof(void *))
        return NULL;
    unsigned char *raw = csp__malloc(ctx, size + CSP_ALIGN + sizeof(void *));
    if (raw == NULL)
        return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (start + CSP_ALIGN - 1) & ~(uintptr_t)(CSP_ALIGN - 1);
    unsigned char *p = raw + (aligned - (uintptr_t)raw);
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

void csp__free_aligned(csp_context *ctx, void *ptr) {
    if (ptr == NULL)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)ptr - sizeof(void *), sizeof raw);
    csp__free(ctx, raw);
}

char *csp__strdup(csp_context *ctx, const char *s) {
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = csp__malloc(ctx, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* ---- public ------------------------------------------------------------- */

static void context_defaults(void *full) {
    csp_context_options *o = full;
    o->log_level = CSP_LOG_WARN;
    o->num_threads = 1;
}

static const csp__struct_desc context_options_desc = {
    "csp_context_options", CSP__FIRST_SIZE_CONTEXT_OPTIONS, sizeof(csp_context_options),
    context_defaults, false};

CSP_API csp_status csp_context_options_init(csp_context_options *opts, size_t struct_size) {
    return csp__struct_init(&context_options_desc, opts, struct_size);
}

CSP_API csp_status csp_context_create(csp_context **out, const csp_context_options *caller) {
    if (out == NULL)
        return CSP_E_NULL;
    *out = NULL;
    /* No context exists yet to carry a message: the status says it all. */
    csp_context_options full;
    const csp_context_options *opts = &full;
    csp_status st = csp__struct_in(NULL, &context_options_desc, caller, &full,
                                   "csp_context_create");
    if (st != CSP_OK)
        return st;
    if ((opts->alloc == NULL) != (opts->free == NULL))
        return CSP_E_INVALID;
    if (opts->num_threads < 1 || opts->num_threads > CSP_MAX_THREADS)
        return CSP_E_RANGE;
    if (opts->log_level < CSP_LOG_NONE || opts->log_level > CSP_LOG_DEBUG)
        return CSP_E_RANGE;

    csp_alloc_fn alloc = opts->alloc != NULL ? opts->alloc : default_alloc;
    csp_free_fn release = opts->free != NULL ? opts->free : default_free;
    csp_context *ctx = alloc(opts->alloc_user, sizeof *ctx);
    if (ctx == NULL)
        return CSP_E_NOMEM;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->free = release;
    ctx->alloc_user = opts->alloc_user;
    ctx->log = opts->log;
    ctx->log_user = opts->log_user;
    ctx->log_level = opts->log_level;
    ctx->num_threads = opts->num_threads;
    ctx->seed = opts->seed;
    *out = ctx;
    return CSP_OK;
}

CSP_API void csp_context_free(csp_context *ctx) {
    if (ctx == NULL)
        return;
    csp_free_fn release = ctx->free;
    void *user = ctx->alloc_user;
    release(user, ctx);
}

CSP_API const char *csp_context_last_error(const csp_context *ctx) {
    return ctx == NULL ? "NULL context" : ctx->last_error;
}

CSP_API csp_status csp_context_last_status(const csp_context *ctx) {
    return ctx == NULL ? CSP_E_NULL : ctx->last_status;
}

CSP_API void csp_context_clear_error(csp_context *ctx) {
    if (ctx == NULL)
        return;
    ctx->last_error[0] = '\0';
    ctx->last_status = CSP_OK;
}

CSP_API int32_t csp_context_num_threads(const csp_context *ctx) {
    return ctx == NULL ? 0 : ctx->num_threads;
}

CSP_API csp_status csp_context_set_num_threads(csp_context *ctx, int32_t num_threads) {
    if (ctx == NULL)
        return CSP_E_NULL;
    if (num_threads < 1 || num_threads > CSP_MAX_THREADS)
        return csp__error(ctx, CSP_E_RANGE, "csp_context_set_num_threads: %d is outside 1..%d",
                          (int)num_threads, CSP_MAX_THREADS);
    ctx->num_threads = num_threads;
    return CSP_OK;
}

CSP_API uint64_t csp_context_seed(const csp_context *ctx) {
    return ctx == NULL ? 0 : ctx->seed;
}

CSP_API csp_status csp_context_set_log(csp_context *ctx, csp_log_fn log, void *user,
                                       int32_t level) {
    if (ctx == NULL)
        return CSP_E_NULL;
    if (level < CSP_LOG_NONE || level > CSP_LOG_DEBUG)
        return csp__error(ctx, CSP_E_RANGE, "csp_context_set_log: level %d is outside 0..%d",
                          (int)level, CSP_LOG_DEBUG);
    ctx->log = log;
    ctx->log_user = user;
    ctx->log_level = level;
    return CSP_OK;
}
