/* rnnt_infer_eval.h - the recogniser's inference, dense against sparse, on
 * a whole set of the corpus: one utterance at a time through the streaming
 * decoder (rnnt_infer.h), both decoders on the same utterance in turn, timed
 * in process CPU time (one thread on a shared machine). */
#ifndef RN_INFER_EVAL_H
#define RN_INFER_EVAL_H

#include <stdint.h>

#include <csp/csp.h>

#include "rnnt_data.h"
#include "rnnt_model.h"
#include "wer.h"

typedef struct rn_infer_stats {
    int64_t utterances, frames; /* encoder frames decoded (per decoder) */
    double audio_s;             /* seconds of audio in the set */
    double dense_s, sparse_s;   /* CPU seconds of decoding, per decoder */
    int64_t dense_bytes, sparse_bytes; /* prunable matrices' bytes */
    int64_t same_hyps;          /* utterances decoded identically by both */
    rn_wer dense_wer, sparse_wer;
} rn_infer_stats;

/** Decode every utterance of set with the dense and the sparse streaming
 *  decoder (at most max_symbols labels per frame). Returns 0, or -1 with a
 *  message on stderr. */
int rn_infer_eval(const rn_model *m, csp_context *ctx, const rn_corpus *c, rn_set set,
                  int max_symbols, rn_infer_stats *st);

#endif /* RN_INFER_EVAL_H */
