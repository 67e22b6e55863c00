/* rnnt_infer.h - streaming greedy decoding of one utterance at a time
 * (batch 1, frame by frame, as a device runs the recogniser), with every
 * prunable matrix applied either densely (cblas_sgemv on the model's
 * weights) or through libcsp's sparse kernels (csp_sparse built from the
 * weights' nonzeros: the layout libcsp's pruning leaves, row-balanced or
 * N:M, is found by CSP_SPARSE_AUTO).
 *
 * The arithmetic is rn_greedy()'s (rnnt_model.h) in the same order, except
 * that the products are matrix-vector ones: the dense streaming decoder
 * equals rn_greedy() up to BLAS rounding, and the sparse one equals the
 * dense one up to the kernels' summation order (tests/test_infer.c). */
#ifndef RN_INFER_H
#define RN_INFER_H

#include <stdint.h>

#include <csp/csp.h>

#include "rnnt_model.h"

typedef struct rn_infer rn_infer;

/** Build a decoder over m (which must outlive it and not change). sparse:
 *  0 dense, 1 csp_sparse for every prunable matrix (through ctx, which must
 *  outlive the decoder). Returns RN_OK, RN_E_NOMEM or RN_E_INVALID (a
 *  libcsp error: its message is csp_context_last_error(ctx)). */
int rn_infer_create(rn_infer **out, const rn_model *m, csp_context *ctx, int sparse);
void rn_infer_free(rn_infer *r);

/** Bytes the decoder's prunable matrices occupy (dense: 4 per weight;
 *  sparse: values, indices and row pointers the kernels read). */
int64_t rn_infer_weight_bytes(const rn_infer *r);

/** What a decode computed, for tests: enc (T x J, the joint's encoder
 *  projection W_e h_t + b_e per frame) when enc_cap >= T * J, and the
 *  logits of every joint evaluation in order (V each) while they fit in
 *  logits_cap floats; steps counts the evaluations (even those that did
 *  not fit). Any pointer may be NULL. */
typedef struct rn_infer_trace {
    float *enc;
    int64_t enc_cap;
    float *logits;
    int64_t logits_cap;
    int64_t steps;
} rn_infer_trace;

/** Decode the features x (T x F, F = the model's input) with at most
 *  max_symbols labels per frame; hyp receives up to cap labels, *hyp_len
 *  their number. Allocates nothing. Returns RN_OK or RN_E_INVALID. */
int rn_infer_decode(rn_infer *r, const float *x, int64_t T, int max_symbols, int32_t *hyp,
                    int32_t *hyp_len, int64_t cap, rn_infer_trace *trace);

#endif /* RN_INFER_H */
