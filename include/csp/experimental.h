/**
 * @file experimental.h
 * @brief Research options of the pruner, with a weaker promise than the rest
 * of the API.
 *
 * These options are what the project's own studies use to look for where
 * compressed-sensing pruning wins (docs/results/); none of them beat
 * row-balanced magnitude pruning yet on our benchmarks, so their meaning,
 * range or existence may change in any minor release. Their symbols are in
 * the separate version node `CSP_EXPERIMENTAL_0.1` of libcsp.so.0 and are left
 * out of the ABI baseline; the stable API never needs them (docs/abi.md,
 * "Stable and experimental").
 *
 * Define `CSP_EXPERIMENTAL_API` before including this header to use it:
 *
 *     #define CSP_EXPERIMENTAL_API
 *     #include <csp/experimental.h>
 *
 * Every parameter is a double (integer parameters take integral values). A
 * parameter is set for one tensor (index >= 0), or with index -1 as the
 * pruner's default for the tensors added afterwards (and for the pruner-wide
 * parameters), before the first csp_step().
 */
#ifndef CSP_EXPERIMENTAL_H
#define CSP_EXPERIMENTAL_H

#ifndef CSP_EXPERIMENTAL_API
#error "define CSP_EXPERIMENTAL_API before including <csp/experimental.h> (docs/abi.md)"
#endif

#include <csp/pruner.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The blended correction: x_S = w_S + alpha (x_ls - w_S), alpha from
 * #CSP_X_ALPHA (a value of csp_pruner_options::correction). */
#define CSP_CORRECTION_BLEND 3

/** The second-order sweep (SparseGPT / OBC family; a value of
 * csp_solver_options::method): one Cholesky of G shared by a tensor's rows,
 * the support of each row chosen by the OBS saliency w_j^2 / [G^-1]_jj
 * (exactly k per row), then a column-wise sweep in index order in which the
 * later weights absorb the error of each pruned one (the OBS update), with
 * lazy block updates. The kept weights are the swept values; with G = c I the
 * support is the k largest |w| and x_S = w_S (docs/method.md, "The
 * second-order sweep"). */
#define CSP_SOLVER_SWEEP 4

/** Where a CSP event's new support comes from (#CSP_X_SUPPORT). */
enum csp_support {
    CSP_SUPPORT_SOLVER = 1,   /**< The solver's (OMP, or calibrated L1) through G. */
    CSP_SUPPORT_MAGNITUDE = 2, /**< The k largest |w| (GMP's support); G serves only the
                                    correction and the statistics. */
    CSP_SUPPORT_WANDA = 3      /**< The k largest Wanda scores |w_j| sqrt(G_jj) (Sun et al.
                                    2023; G_jj of the tensor's Gram, for activations the
                                    squared input norm); with correction none this is plain
                                    Wanda, with full Wanda plus the refit. ROW and N:M. */
};

/** The experimental parameters. */
enum csp_experimental_param {
    /** Between-event shrink tau in [0, 1]; 0 (default) = off. After each event,
     * until the next, the weights the next event will prune are shrunk towards
     * zero (docs/guide.md, "Between-event shrink"). ROW granularity only. */
    CSP_X_SHRINK = 1,
    /** ::csp_support of a CSP tensor; default #CSP_SUPPORT_SOLVER. */
    CSP_X_SUPPORT = 2,
    /** Random sensing: 0 (default) = one Phi per tensor, keyed by (seed, tensor index,
     * 0, 0); 1 = a new Phi at every event, keyed by (seed, tensor index, 0, event). */
    CSP_X_REDRAW = 3,
    /** Pruner-wide (index -1): csp_pruner_wants_observe() says yes for the last
     * observe_window steps up to and including each event; 0 (default) = at every
     * step before an event. >= 0. */
    CSP_X_OBSERVE_WINDOW = 4,
    /** Blend factor alpha of #CSP_CORRECTION_BLEND in [0, 1]; default 0.1. */
    CSP_X_ALPHA = 5
};

/**
 * @brief Set an experimental parameter.
 * @param[in] pruner  Pruner, before its first csp_step().
 * @param[in] index   Tensor index, or -1 for the pruner's default (tensors added
 *                    afterwards) and the pruner-wide parameters.
 * @param[in] param   ::csp_experimental_param.
 * @param[in] value   The value (see the parameter).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index, value), #CSP_E_ENUM (param,
 *         an enum value), #CSP_E_INVALID (a pruner-wide parameter with index >= 0,
 *         an excluded tensor), #CSP_E_UNSUPPORTED (shrink on a granularity other
 *         than ROW), #CSP_E_STATE (after the first csp_step()), #CSP_E_NOMEM.
 */
CSP_API csp_status csp_pruner_set_experimental(csp_pruner *pruner, int32_t index,
                                               int32_t param, double value);

/**
 * @brief Read an experimental parameter (as csp_pruner_set_experimental() takes it).
 * @return #CSP_OK, #CSP_E_NULL, #CSP_E_RANGE (index), #CSP_E_ENUM (param),
 *         #CSP_E_INVALID (a pruner-wide parameter with index >= 0).
 */
CSP_API csp_status csp_pruner_get_experimental(const csp_pruner *pruner, int32_t index,
                                               int32_t param, double *value);

#ifdef __cplusplus
}
#endif

#endif /* CSP_EXPERIMENTAL_H */
