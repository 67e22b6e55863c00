/* Option tables (lib/core/options.h). */
#include "core/options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void *at(const csp__option *o, int slot, const void *base) {
    return (unsigned char *)(uintptr_t)base + o->off[slot];
}

double csp__option_get(const csp__option *o, int slot, const void *base) {
    const void *p = at(o, slot, base);
    switch (o->type) {
    case CSP_OPTION_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    case CSP_OPTION_UINT64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    case CSP_OPTION_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default: { /* INT32, ENUM */
        int32_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    }
}

void csp__option_set(const csp__option *o, int slot, void *base, double v) {
    void *p = at(o, slot, base);
    switch (o->type) {
    case CSP_OPTION_INT64: {
        int64_t x = (int64_t)v;
        memcpy(p, &x, sizeof x);
        break;
    }
    case CSP_OPTION_UINT64: {
        uint64_t x = (uint64_t)v;
        memcpy(p, &x, sizeof x);
        break;
    }
    case CSP_OPTION_DOUBLE:
        memcpy(p, &v, sizeof v);
        break;
    default: {
        int32_t x = (int32_t)v;
        memcpy(p, &x, sizeof x);
        break;
    }
    }
}

uint64_t csp__option_bits(const csp__option *o, int slot, const void *base) {
    const void *p = at(o, slot, base);
    if (o->type == CSP_OPTION_INT32 || o->type == CSP_OPTION_ENUM) {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return (uint64_t)(int64_t)v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof v);
    if (o->type == CSP_OPTION_DOUBLE && v == 0x8000000000000000ULL)
        v = 0; /* -0 == +0 */
    return v;
}

bool csp__option_equal(const csp__option *o, int slot_a, const void *a, int slot_b,
                       const void *b) {
    return csp__option_bits(o, slot_a, a) == csp__option_bits(o, slot_b, b);
}

bool csp__option_valid(const csp__option *o, double v) {
    if (isnan(v))
        return false;
    if (o->type != CSP_OPTION_DOUBLE && v != floor(v))
        return false;
    if (o->type == CSP_OPTION_DOUBLE && isinf(v) && !(isinf(o->max) && v > 0))
        return false;
    bool lo = (o->flags & CSP_OPTION_MIN_OPEN) ? v > o->min : v >= o->min;
    bool hi = (o->flags & CSP_OPTION_MAX_OPEN) ? v < o->max : v <= o->max;
    return lo && hi;
}

void csp__options_defaults(const csp__option *rows, size_t n, int slot, void *base) {
    for (size_t i = 0; i < n; i++)
        if (rows[i].off[slot] >= 0)
            csp__option_set(&rows[i], slot, base, rows[i].def);
}

void csp__option_format(const csp__option *o, double v, char *buf, size_t size) {
    if (o->type == CSP_OPTION_DOUBLE)
        snprintf(buf, size, "%.17g", v);
    else
        snprintf(buf, size, "%.0f", v);
}

csp_status csp__options_check(csp_context *ctx, const char *fn, const char *prefix,
                              const csp__option *rows, size_t n, int slot, const void *base) {
    for (size_t i = 0; i < n; i++) {
        const csp__option *o = &rows[i];
        if (o->off[slot] < 0)
            continue;
        char got[40], lo[40], hi[40];
        if (o->flags & CSP_OPTION_FIXED) {
            bool wide = o->type == CSP_OPTION_INT64 || o->type == CSP_OPTION_UINT64;
            bool same = wide ? csp__option_bits(o, slot, base) == (uint64_t)(int64_t)o->def
                             : csp__option_get(o, slot, base) == o->def;
            if (same)
                continue;
            csp__option_format(o, csp__option_get(o, slot, base), got, sizeof got);
            csp__option_format(o, o->def, lo, sizeof lo);
            return csp__error(ctx, CSP_E_INVALID,
                              "%s: %s%s = %s: the pruner sets this option itself; leave it at "
                              "%s",
                              fn, prefix, o->name, got, lo);
        }
        /* int64/uint64 values beyond 2^53 cannot be read exactly as doubles:
         * compare those against the bounds in their own type. */
        double v = csp__option_get(o, slot, base);
        bool ok = csp__option_valid(o, v);
        if (ok && o->type == CSP_OPTION_INT64) {
            int64_t x;
            memcpy(&x, at(o, slot, base), sizeof x);
            ok = (double)x == v && x >= (int64_t)o->min && (isinf(o->max) || x <= (int64_t)o->max);
        }
        if (ok)
            continue;
        csp__option_format(o, v, got, sizeof got);
        if (o->type == CSP_OPTION_ENUM)
            return csp__error(ctx, CSP_E_ENUM, "%s: %s%s = %s is not a %s", fn, prefix, o->name,
                              got, o->enum_name);
        csp__option_format(o, o->min, lo, sizeof lo);
        csp__option_format(o, o->max, hi, sizeof hi);
        return csp__error(ctx, CSP_E_RANGE, "%s: %s%s = %s is outside %s%s, %s%s%s", fn, prefix,
                          o->name, got, (o->flags & CSP_OPTION_MIN_OPEN) ? "(" : "[", lo, hi,
                          (o->flags & CSP_OPTION_MAX_OPEN) ? ")" : "]",
                          o->type == CSP_OPTION_DOUBLE ? "" : " (an integer)");
    }
    return CSP_OK;
}

static size_t type_size(int32_t type) {
    return type == CSP_OPTION_INT32 || type == CSP_OPTION_ENUM ? 4 : 8;
}

csp_status csp__options_unknown_zero(csp_context *ctx, const char *fn, const char *prefix,
                                     const csp__option *rows, size_t n, int slot,
                                     const void *base, size_t size, const size_t *keep,
                                     size_t nkeep) {
    const unsigned char *b = base;
    for (size_t i = 0; i < size; i++) {
        if (b[i] == 0)
            continue;
        bool known = false;
        for (size_t k = 0; k < nkeep && !known; k++)
            known = i >= keep[k] && i < keep[k] + sizeof(size_t);
        for (size_t r = 0; r < n && !known; r++) {
            int64_t off = rows[r].off[slot], at = (int64_t)i;
            known = off >= 0 && at >= off && at < off + (int64_t)type_size(rows[r].type);
        }
        if (!known)
            return csp__error(ctx, CSP_E_RESERVED,
                              "%s: %sbyte %zu of the options is reserved and must be 0 (an "
                              "option of a newer header this library cannot honour)",
                              fn, prefix, i);
    }
    return CSP_OK;
}
