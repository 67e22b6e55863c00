/* The growth path of the versioned structs (lib/core/abi.h). */
#include "core/abi.h"

#include <string.h>

/* The largest struct this library knows is well below this; a full-size
 * copy lives on the stack. */
#define FULL_MAX 1024

static size_t size_of(const void *s) {
    size_t size;
    memcpy(&size, s, sizeof size);
    return size;
}

static void defaults_into(const csp__struct_desc *d, void *full) {
    memset(full, 0, d->size);
    memcpy(full, &d->size, sizeof d->size);
    if (d->defaults != NULL)
        d->defaults(full);
#ifdef CSP_GROWTH_TEST
    uint64_t probe = CSP__GROWTH_PROBE_DEFAULT;
    if (!d->fixed)
        memcpy((unsigned char *)full + d->size - sizeof probe, &probe, sizeof probe);
#endif
}

csp_status csp__struct_in(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                          void *full, const char *fn) {
    defaults_into(d, full);
    return caller == NULL ? CSP_OK : csp__struct_in_over(ctx, d, caller, full, fn);
}

csp_status csp__struct_in_over(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                               void *full, const char *fn) {
    size_t size = size_of(caller);
    if (!csp__struct_size_ok(d, size))
        return csp__error(ctx, CSP_E_STRUCT_SIZE,
                          "%s: %s has struct_size %zu; this library accepts %zu..%d (its own "
                          "size is %zu): fill the struct with its _init function",
                          fn, d->name, size, d->first_size, CSP_STRUCT_MAX_SIZE, d->size);
    const unsigned char *bytes = caller;
    for (size_t i = d->size; i < size; i++)
        if (bytes[i] != 0)
            return csp__error(ctx, CSP_E_RESERVED,
                              "%s: %s: byte %zu is past the %zu bytes this library knows and is "
                              "not zero (an option of a newer header this library cannot "
                              "honour)",
                              fn, d->name, i, d->size);
    size_t n = size < d->size ? size : d->size;
    memcpy((unsigned char *)full + sizeof(size_t), bytes + sizeof(size_t), n - sizeof(size_t));
    memcpy(full, &d->size, sizeof d->size);
#ifdef CSP_GROWTH_TEST
    uint64_t probe = CSP__GROWTH_PROBE_DEFAULT;
    if (!d->fixed)
        memcpy(&probe, (const unsigned char *)full + d->size - sizeof probe, sizeof probe);
    if (probe != CSP__GROWTH_PROBE_DEFAULT)
        return csp__error(ctx, CSP_E_INVALID, "%s: %s: growth_probe = %#llx", fn, d->name,
                          (unsigned long long)probe);
#endif
    return CSP_OK;
}

void csp__struct_defaults(const csp__struct_desc *d, void *full) { defaults_into(d, full); }

csp_status csp__struct_init(const csp__struct_desc *d, void *caller, size_t struct_size) {
    unsigned char full[FULL_MAX];
    defaults_into(d, full);
    return csp__struct_init_from(d, full, caller, struct_size);
}

csp_status csp__struct_init_from(const csp__struct_desc *d, const void *full, void *caller,
                                 size_t struct_size) {
    if (caller == NULL)
        return CSP_E_NULL;
    if (!csp__struct_size_ok(d, struct_size))
        return CSP_E_STRUCT_SIZE;
    size_t n = struct_size < d->size ? struct_size : d->size;
    memcpy(caller, full, n);
    if (struct_size > n)
        memset((unsigned char *)caller + n, 0, struct_size - n);
    memcpy(caller, &struct_size, sizeof struct_size);
    return CSP_OK;
}

csp_status csp__struct_out_check(csp_context *ctx, const csp__struct_desc *d, const void *caller,
                                 const char *fn) {
    if (caller == NULL)
        return csp__error(ctx, CSP_E_NULL, "%s: the %s is NULL", fn, d->name);
    size_t size = size_of(caller);
    if (!csp__struct_size_ok(d, size))
        return csp__error(ctx, CSP_E_STRUCT_SIZE,
                          "%s: %s has struct_size %zu; this library accepts %zu..%d: fill it "
                          "with its _init function",
                          fn, d->name, size, d->first_size, CSP_STRUCT_MAX_SIZE);
    return CSP_OK;
}

void csp__struct_out_sized(const csp__struct_desc *d, const void *full, void *dst, size_t stride) {
    size_t n = stride < d->size ? stride : d->size;
    memcpy(dst, full, n);
    if (stride > n)
        memset((unsigned char *)dst + n, 0, stride - n);
}

void csp__struct_out(const csp__struct_desc *d, const void *full, void *caller) {
    size_t size = size_of(caller);
    csp__struct_out_sized(d, full, caller, size);
    memcpy(caller, &size, sizeof size);
#ifdef CSP_GROWTH_TEST
    /* The library knows the probe: a caller that has it gets it. */
    uint64_t probe = CSP__GROWTH_PROBE_DEFAULT;
    if (size >= d->size && !d->fixed)
        memcpy((unsigned char *)caller + d->size - sizeof probe, &probe, sizeof probe);
#endif
}

/* In the 0.1 series nothing has been appended yet: every first size is the
 * struct's whole size (a patch release may not append members). */
#if CSP_VERSION_MAJOR == 0 && CSP_VERSION_MINOR == 1 && !defined(CSP_GROWTH_TEST)
#define SAME(T, FIRST) _Static_assert(FIRST == sizeof(T), #T ": first size is not its size");
SAME(csp_context_options, CSP__FIRST_SIZE_CONTEXT_OPTIONS)
SAME(csp_schedule_options, CSP__FIRST_SIZE_SCHEDULE_OPTIONS)
SAME(csp_sensing_options, CSP__FIRST_SIZE_SENSING_OPTIONS)
SAME(csp_solver_options, CSP__FIRST_SIZE_SOLVER_OPTIONS)
SAME(csp_solver_batch, CSP__FIRST_SIZE_SOLVER_BATCH)
SAME(csp_row_stats, CSP__FIRST_SIZE_ROW_STATS)
SAME(csp_pruner_options, CSP__FIRST_SIZE_PRUNER_OPTIONS)
SAME(csp_pruner_tensor_options, CSP__FIRST_SIZE_PRUNER_TENSOR_OPTIONS)
SAME(csp_option_info, CSP__FIRST_SIZE_OPTION_INFO)
SAME(csp_tensor_stats, CSP__FIRST_SIZE_TENSOR_STATS)
SAME(csp_step_stats, CSP__FIRST_SIZE_STEP_STATS)
SAME(csp_export_options, CSP__FIRST_SIZE_EXPORT_OPTIONS)
SAME(csp_export_stats, CSP__FIRST_SIZE_EXPORT_STATS)
SAME(csp_export_info, CSP__FIRST_SIZE_EXPORT_INFO)
#undef SAME
#endif
/* The embedded structs never change size. */
_Static_assert(CSP__FIRST_SIZE_SENSING_OPTIONS == sizeof(csp_sensing_options),
               "csp_sensing_options is embedded in the pruner's options: its size is fixed");
_Static_assert(CSP__FIRST_SIZE_SOLVER_OPTIONS == sizeof(csp_solver_options),
               "csp_solver_options is embedded in the pruner's options: its size is fixed");
_Static_assert(sizeof(csp_pruner_options) <= FULL_MAX &&
                   sizeof(csp_pruner_tensor_options) <= FULL_MAX,
               "FULL_MAX is too small");
