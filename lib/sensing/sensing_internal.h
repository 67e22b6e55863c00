/* Internal interface of the sensing layer, for the solvers and the pruner. */
#ifndef CSP_SENSING_INTERNAL_H
#define CSP_SENSING_INTERNAL_H

#include <csp/sensing.h>

#include "core/abi.h"
#include "core/options.h"
#include "linalg/linalg.h"

/* The options of csp_sensing_options, once (lib/core/options.h):
 * X(member, type, default, min, max, flags, flags in a pruner, enum, doc). */
#define CSP__SENSING_OPTIONS(X)                                                              \
    X(kind, ENUM, CSP_SENSING_IDENTITY, CSP_SENSING_IDENTITY, CSP_SENSING_GRAM, 0, 0,          \
      "csp_sensing_kind", "the kind of operator (identity = magnitude pruning)")             \
    X(n, INT64, 0, 1, CSP_SENSING_MAX_N, 0, CSP_OPTION_FIXED, "",                             \
      "row length: G is n x n (a pruner uses the tensor's CSP row length)")                  \
    X(m, INT64, 0, 0, 64.0 * CSP_SENSING_MAX_N, 0, CSP_OPTION_CSP_ONLY, "",                   \
      "random kinds: rows of Phi; 0 = ceil(rho n)")                                          \
    X(rho, DOUBLE, 0.5, 0.0, 64.0, CSP_OPTION_MIN_OPEN, CSP_OPTION_CSP_ONLY, "",              \
      "random kinds: m / n when m is 0")                                                     \
    X(damping, DOUBLE, 0.01, 0.0, 1e6, 0, CSP_OPTION_CSP_ONLY, "",                            \
      "activations: eps = damping * mean(diag(X^T X / N)) added to G")                        \
    X(tensor_id, UINT64, 0, 0.0, 18446744073709551615.0, 0, CSP_OPTION_FIXED, "",             \
      "random kinds: key coordinate naming the tensor (a pruner uses the tensor index)")

/* The descriptor of csp_sensing_options (lib/core/abi.h). */
extern const csp__struct_desc csp__sensing_options_desc;

/* Validate the fields of @p o that csp_sensing_create() and a pruner share
 * (ranges, reserved words); @p prefix goes before each field's name in
 * messages. */
csp_status csp__sensing_options_check(csp_context *ctx, const char *fn, const char *prefix,
                                      const csp_sensing_options *o);

/* The largest row count an activations operator holds: 2^53, the largest
 * count a float64 (the accumulator's last element, and so the checkpoint's
 * SENS section) stores exactly together with every count below it.
 * observe() and merge() refuse to go past it, write_accumulator() refuses
 * larger counts: what the library writes, it reads back. */
#define CSP__SENSING_MAX_COUNT ((int64_t)1 << 53)

/* Make the Gram of @p s for (row_block, event) current and return it in
 * *out. The result is cached in @p s: preparing the same key again (random
 * kinds) or with no new observation (activations) costs nothing. It stays
 * valid until the next call that changes @p s. For the identity kind the
 * Gram has g64 = g32 = NULL and identity = true: solvers take their
 * magnitude fast paths. Leaves a message on the context on failure
 * (CSP_E_STATE: nothing observed / no user Gram). */
csp_status csp__sensing_prepare(csp_sensing *s, int64_t row_block, int64_t event,
                                csp__gram **out);

/* The checks of csp_sensing_write_accumulator() alone (kind, length, finite,
 * whole count, symmetric, non-negative diagonal): CSP_OK when @p buf would
 * be accepted. Changes nothing; leaves a message naming @p fn on failure.
 * Checkpoint loading validates with it before changing anything. */
csp_status csp__sensing_check_accumulator(const csp_sensing *s, const double *buf, int64_t len,
                                          const char *fn);

/* Element @p i (0 <= i <= n * n) of what csp_sensing_read_accumulator()
 * writes, for an activations operator: no buffer needed. */
double csp__sensing_accumulator_at(const csp_sensing *s, int64_t i);

/* The context @p s was created with. */
csp_context *csp__sensing_ctx(const csp_sensing *s);

/* Would the next event's Gram be available: activations observed (or a
 * Gram built and not reset), a user Gram set; always for the other kinds. */
bool csp__sensing_ready(const csp_sensing *s);

/* The key of the random Phi for (row_block, event). */
uint64_t csp__sensing_key(const csp_sensing *s, int64_t row_block, int64_t event);

#endif
