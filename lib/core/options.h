/*
 * Option tables: one row per option of an options struct, with its member
 * path, type, range and default, so that defaults, validation, per-tensor
 * copies, checkpoint comparisons and the bindings' keyword mapping all come
 * from one description (docs/internals.md, "Options"). Internal.
 *
 * A row locates its value in up to CSP__SLOTS structs (the pruner's options,
 * a tensor's options, the experimental configuration); an offset of -1
 * means "not there". The layers define their rows with X-macros
 * (CSP__SENSING_OPTIONS in lib/sensing/sensing_internal.h,
 * CSP__SOLVER_OPTIONS in lib/solver/solver_internal.h), so that a layer's
 * own table and the pruner's table, which embeds it, share every bound and
 * default.
 */
#ifndef CSP_CORE_OPTIONS_H
#define CSP_CORE_OPTIONS_H

#include <csp/pruner.h>

#include "core/internal.h"

enum { CSP__SLOTS = 3 };

typedef struct csp__option {
    const char *name;      /* member path, e.g. "sensing.damping" */
    const char *doc;       /* one line */
    const char *enum_name; /* CSP_OPTION_ENUM: "csp_sensing_kind"; else "" */
    int32_t type;          /* csp_option_type */
    int32_t flags;         /* csp_option_flag bits */
    int32_t param;         /* csp_experimental_param, or 0 */
    int64_t off[CSP__SLOTS];
    double min, max, def;
    int64_t member; /* offset in its embedded struct (sensing., solver.), else -1 */
} csp__option;

/* The value of @p o in the struct at @p base (slot @p slot), as a double
 * (int64/uint64 values above 2^53 are rounded: compare them with
 * csp__option_equal()). */
double csp__option_get(const csp__option *o, int slot, const void *base);
/* Store @p v (already validated, integral for integer types). */
void csp__option_set(const csp__option *o, int slot, void *base, double v);
/* The 64 bits of the value (int32 sign-extended, double's bit pattern). */
uint64_t csp__option_bits(const csp__option *o, int slot, const void *base);
/* Do two structs hold the same value of @p o? (bit equality; -0 == +0) */
bool csp__option_equal(const csp__option *o, int slot_a, const void *a, int slot_b,
                       const void *b);

/* Is @p v a valid value of @p o (range, finite, integral for integers)? */
bool csp__option_valid(const csp__option *o, double v);

/* Write every row's default into the struct at @p base (slot @p slot). */
void csp__options_defaults(const csp__option *rows, size_t n, int slot, void *base);

/* Validate every row present in @p slot of the struct at @p base: range
 * (CSP_E_RANGE), enum (CSP_E_ENUM), CSP_OPTION_FIXED rows equal to their
 * default (CSP_E_INVALID). The message names @p fn and the option's path,
 * prefixed by @p prefix (e.g. "tensor 3 ('fc.weight'): "; may be ""). */
csp_status csp__options_check(csp_context *ctx, const char *fn, const char *prefix,
                              const csp__option *rows, size_t n, int slot, const void *base);

/* Every byte of the struct at @p base (@p size bytes) that no row of slot
 * @p slot covers, other than the struct_size members at the @p nkeep offsets
 * @p keep, must be zero: the reserved words (and explicit padding) of the
 * struct, which later releases may give a meaning. CSP_E_RESERVED naming
 * @p fn, @p prefix and the byte otherwise. Claiming a reserved word for a new
 * option is then just adding its row. */
csp_status csp__options_unknown_zero(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp__option *rows, size_t n, int slot,
                                     const void *base, size_t size, const size_t *keep,
                                     size_t nkeep);

/* Format a value for messages (integers without a fraction). */
void csp__option_format(const csp__option *o, double v, char *buf, size_t size);

#endif /* CSP_CORE_OPTIONS_H */
