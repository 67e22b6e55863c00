/*
 * The growth path of the versioned structs (docs/abi.md, "Growing a
 * struct"). Internal.
 *
 * Every public struct that starts with `size_t struct_size` (and
 * csp_row_stats, whose size travels as csp_solver_batch::stats_size) only
 * ever grows at the end. A caller compiled against an older header passes
 * its older, smaller size; one compiled against a newer header passes a
 * larger one. The library therefore never reads or writes a caller's struct
 * directly:
 * - input (options): csp__struct_in() accepts every size from the struct's
 *   first released size up to CSP_STRUCT_MAX_SIZE (bytes past the library's
 *   own size must be zero: options it cannot honour), fills a full-size
 *   struct with the defaults and copies the caller's prefix over it;
 * - output (`_init`, stats, info): csp__struct_init() and csp__struct_out()
 *   write only the bytes the caller has, and zero the part of a larger
 *   caller struct that this library does not know.
 * A struct's descriptor (csp__struct_desc) is defined next to its defaults,
 * in its layer; the first released sizes are all in lib/core/abi_sizes.h.
 */
#ifndef CSP_CORE_ABI_H
#define CSP_CORE_ABI_H

#include "core/abi_sizes.h"
#include "core/internal.h"

typedef struct csp__struct_desc {
    const char *name;  /* the public type, for messages */
    size_t first_size; /* its size in the release that introduced it */
    size_t size;       /* its size in this library */
    /* Write the default of every field into @p full (size bytes, zeroed,
     * struct_size set); NULL when every default is zero. */
    void (*defaults)(void *full);
    /* The struct is embedded in others, so its size never changes (it grows
     * into reserved words, docs/abi.md). */
    bool fixed;
} csp__struct_desc;

/* Copy the caller's struct @p caller (NULL: the defaults) into @p full, a
 * struct of d->size bytes: defaults first, then the caller's fields; full's
 * struct_size is d->size. CSP_E_STRUCT_SIZE or CSP_E_RESERVED with a message
 * naming @p fn. */
csp_status csp__struct_in(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                          void *full, const char *fn);

/* csp__struct_in() over a @p full struct the caller prepared (defaults of
 * its own, e.g. a tensor's options copied from its pruner's). */
csp_status csp__struct_in_over(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                               void *full, const char *fn);

/* Fill @p full (d->size bytes) with the defaults, struct_size = d->size. */
void csp__struct_defaults(const csp__struct_desc *d, void *full);

/* The body of an `_init` function: @p caller gets struct_size and the
 * defaults of the fields it has (and zeros past the library's size).
 * CSP_E_NULL or CSP_E_STRUCT_SIZE (the caller's struct is not written). */
csp_status csp__struct_init(const csp__struct_desc *d, void *caller, size_t struct_size);

/* The same with the defaults in @p full (d->size bytes, e.g. a tensor's
 * options copied from its pruner's). */
csp_status csp__struct_init_from(const csp__struct_desc *d, const void *full, void *caller,
                                 size_t struct_size);

/* Check that @p caller, an output struct, has a size from its `_init`:
 * CSP_E_NULL or CSP_E_STRUCT_SIZE with a message naming @p fn. */
csp_status csp__struct_out_check(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                                 const char *fn);

/* Copy @p full (d->size bytes) into @p caller, an output struct that passed
 * csp__struct_out_check(): only the bytes it has (its struct_size stays),
 * zeros in the part of a larger struct this library does not know. */
void csp__struct_out(const csp__struct_desc *d, const void *full, void *caller);

/* The same for one element of an array whose stride is @p stride bytes
 * (csp_row_stats): min(stride, d->size) bytes, zeros after. */
void csp__struct_out_sized(const csp__struct_desc *d, const void *full, void *dst, size_t stride);

/* Is @p size an acceptable caller size for @p d? */
static inline bool csp__struct_size_ok(const csp__struct_desc *d, size_t size) {
    return size >= d->first_size && size <= CSP_STRUCT_MAX_SIZE;
}

/* The growth test build (tests/abi/growth): every growable struct of the
 * headers it is compiled against ends with `uint64_t growth_probe`, whose
 * default is CSP__GROWTH_PROBE_DEFAULT; csp__struct_in() refuses another
 * value, so a caller whose struct lacks the field provably got the default. */
#define CSP__GROWTH_PROBE_DEFAULT 0x600d5eedULL
/* Bytes of the probe at the end of a growable struct in that build (0 in
 * every other). */
#ifdef CSP_GROWTH_TEST
#define CSP__GROWTH_TAIL sizeof(uint64_t)
#else
#define CSP__GROWTH_TAIL 0
#endif

#endif /* CSP_CORE_ABI_H */
