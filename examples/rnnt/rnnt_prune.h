/* rnnt_prune.h - rnnt_demo's glue to libcsp: every libcsp call of the
 * recogniser is in rnnt_prune.c. Every prunable matrix of the network (the
 * LSTM W_ih / W_hh of every layer and the joint's W_e, W_p, W_o; embedding
 * and biases excluded) is one pruner tensor with its two Adam moments as
 * companions and its gradient registered for masking. A training step is
 *
 *     forward   (rp_observe as the model's observe hook, when some tensor
 *                uses activation sensing and the pruner wants inputs)
 *     backward  -> rp_mask_gradients()  csp_pruner_mask_gradients()
 *     clip, Adam -> rp_step()           csp_step()
 *
 * Methods come from examples/speech/speech_methods.c (same names): an LSTM
 * input matrix is configured as the speech model's W_ih, a recurrent one
 * as W_hh, a joint matrix as W_out.
 */
#ifndef RNNT_PRUNE_H
#define RNNT_PRUNE_H

#include <stdint.h>
#include <stdio.h>

#include "rnnt_model.h"
#include "speech_methods.h"

typedef struct rp_schedule {
    double sparsity, begin_frac, end_frac, exponent;
    int64_t events, total_steps;
    int64_t begin_step, end_step, frequency; /* filled by rp_create */
    int one_shot; /* 1: one event at step 0 to `sparsity` (the rest ignored) */
} rp_schedule;

typedef struct rp_pruning rp_pruning;

/** CSP_CHECK_VERSION(); prints the mismatch and returns -1 on failure. */
int rp_check_version(void);
const char *rp_version(void);

/** Context (seed, threads), cubic schedule and a pruner configured by @p m
 *  (with @p ov on top, may be NULL) holding every prunable matrix of
 *  @p model. Prints why and returns -1 on failure. */
int rp_create(rp_pruning **out, const sm_method *m, const sm_overrides *ov, rn_model *model,
              uint64_t seed, int threads, rp_schedule *s);
void rp_free(rp_pruning *p);

/** 1 when some tensor uses activation sensing and the pruner wants the
 *  inputs of the forward pass before update `step` (1-based). */
int rp_wants_observe(rp_pruning *p, int64_t step);
/** The model's observe hook (user = the rp_pruning). */
void rp_observe(void *user, int index, const float *x, int64_t rows, int64_t cols);
/** Mask the gradients by the current masks (before clipping). */
int rp_mask_gradients(rp_pruning *p);
/** csp_step(pruner, step) after update number step (1-based). Returns 1
 *  when an event pruned, 0, or -1 after printing the error. */
int rp_step(rp_pruning *p, int64_t step);
/** 1 when some tensor uses activation sensing (one-shot: calibrate). */
int rp_needs_activations(const rp_pruning *p);
/** Count @p passes observed forward passes (a calibration) in the times. */
void rp_add_observed(rp_pruning *p, int64_t passes);
/** The one-shot event: csp_step(pruner, 0), which must prune (a schedule
 *  made with one_shot). 0, or -1 after printing the error. */
int rp_one_shot(rp_pruning *p);
/** 0, or -1 after printing the first error met by a hook. */
int rp_check(const rp_pruning *p);

typedef struct rp_times {
    double step_s, event_s, mask_s, observe_s;
    int64_t calls, events, observed;
} rp_times;
void rp_get_times(const rp_pruning *p, rp_times *t);

/** Per-tensor report: nnz from the masks, pruned weights and moments zero
 *  (mask_ok), bytes of libcsp's CSR and bitmap exports (a CSR decode round
 *  trip must give the weights back). A NULL @p p (dense run): every weight
 *  kept, the same layouts computed without libcsp's headers. */
typedef struct rp_tensor_report {
    const char *name;
    int64_t rows, cols, numel, nnz, csr_bytes, bitmap_bytes;
    int mask_ok, export_ok;
} rp_tensor_report;

/** Fills rep[0 .. n) for the prunable parameters in model order; returns
 *  n, or -1. */
int rp_report(const rp_pruning *p, const rn_model *model, rp_tensor_report *rep, int cap);

#endif /* RNNT_PRUNE_H */
