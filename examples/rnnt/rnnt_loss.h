/* rnnt_loss.h - RNN-Transducer loss (Graves 2012) and its gradient.
 *
 * Mirrors torchaudio.functional.rnnt_loss(logits, targets, logit_lengths,
 * target_lengths, blank, reduction="none", fused_log_softmax=True):
 * the log-softmax over the V outputs is taken inside, the forward-backward
 * recursions run in log space in float64, and the gradient is with respect
 * to the raw logits (through the log-softmax).
 *
 * Layout: logits[b][t][u][v] (B x T x U1 x V, row-major, float), where U1 is
 * one more than the longest label sequence. Utterance b uses the cells
 * t < t_len[b], u <= u_len[b]; every other cell gets a zero gradient.
 *
 * Thread-safe: no global state. rn_loss() mallocs one float64 workspace
 * per call (5 x T x U1 doubles: alpha, beta, log-sum-exp, blank and emit
 * log-probs; reused across the batch); rn_loss_ws() takes a caller
 * workspace of rn_loss_ws_size() bytes instead and allocates nothing.
 */
#ifndef RN_LOSS_H
#define RN_LOSS_H

#include <stddef.h>
#include <stdint.h>

/** Status codes of this module (0 = ok). */
enum {
    RN_LOSS_OK = 0,
    RN_LOSS_E_NULL = -1,   /* a required pointer is NULL */
    RN_LOSS_E_RANGE = -2,  /* B, T, U1, V, blank, a length or a label out of range */
    RN_LOSS_E_NOMEM = -3,  /* workspace allocation failed */
    RN_LOSS_E_NONFINITE = -4 /* a logit is NaN/Inf, or p(y|x) underflowed */
};

/** Per-utterance RNN-T loss loss[b] = -log p(y_b | x_b) and, when grad is
 *  not NULL, grad = d loss_b / d logits (same shape as logits; the gradient
 *  of the SUM of the losses, i.e. each utterance's block holds its own
 *  loss's gradient). labels is B x (U1-1), row b holding u_len[b] valid
 *  labels in 0..V-1 other than blank (the rest ignored). Requirements:
 *  B >= 1, T >= 1, U1 >= 1, V >= 2, 0 <= blank < V, 1 <= t_len[b] <= T,
 *  0 <= u_len[b] <= U1-1. On a bad argument (E_NULL, E_RANGE, E_NOMEM)
 *  loss and grad are left untouched; on RN_LOSS_E_NONFINITE the entries
 *  of the utterances before the failing one are already written. */
int rn_loss(const float *logits, const int32_t *labels, const int32_t *t_len,
            const int32_t *u_len, int B, int T, int U1, int V, int blank,
            float *loss, float *grad);

/** Bytes of workspace rn_loss_ws() needs for these sizes (0 when T, U1 or V
 *  is not positive). */
size_t rn_loss_ws_size(int T, int U1, int V);

/** rn_loss() with a caller workspace of at least rn_loss_ws_size(T, U1, V)
 *  bytes, aligned for double (malloc'd memory is). Allocates nothing. */
int rn_loss_ws(const float *logits, const int32_t *labels,
               const int32_t *t_len, const int32_t *u_len, int B, int T,
               int U1, int V, int blank, float *loss, float *grad,
               void *ws, size_t ws_bytes);

/** Static description of a status code; never NULL. */
const char *rn_loss_strerror(int status);

#endif /* RN_LOSS_H */
