/* rnnt_infer_eval.c - dense against sparse inference on a corpus set; see
 * rnnt_infer_eval.h. */
#include "rnnt_infer_eval.h"
#include "rnnt_infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rn_infer_eval(const rn_model *m, csp_context *ctx, const rn_corpus *c, rn_set set,
                  int max_symbols, rn_infer_stats *st)
{
    memset(st, 0, sizeof *st);
    rn_infer *dense = NULL, *sparse = NULL;
    if (rn_infer_create(&dense, m, NULL, 0) != RN_OK ||
        rn_infer_create(&sparse, m, ctx, 1) != RN_OK) {
        fprintf(stderr, "rn_infer_create: %s\n", csp_context_last_error(ctx));
        rn_infer_free(dense);
        return -1;
    }
    st->dense_bytes = rn_infer_weight_bytes(dense);
    st->sparse_bytes = rn_infer_weight_bytes(sparse);
    enum { CAP = 4 * RN_MAX_DIGITS };
    int32_t hd[CAP], hs[CAP], ld = 0, ls = 0;
    rn_batch bt;
    memset(&bt, 0, sizeof bt);
    const int64_t n = rn_corpus_size(c, set);
    int rc = n < 0 ? -1 : 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        rn_utt_info info;
        if (rn_corpus_batch(c, set, 0, i, 1, &bt) != 0 ||
            rn_corpus_info(c, set, 0, i, &info) != 0) {
            fprintf(stderr, "rn_infer_eval: utterance %lld could not be read\n", (long long)i);
            rc = -1;
            break;
        }
        const int64_t T = bt.t_len[0];
        double t0 = cpu_now();
        int e1 = rn_infer_decode(dense, bt.feat, T, max_symbols, hd, &ld, CAP, NULL);
        double t1 = cpu_now();
        int e2 = rn_infer_decode(sparse, bt.feat, T, max_symbols, hs, &ls, CAP, NULL);
        double t2 = cpu_now();
        if (e1 != RN_OK || e2 != RN_OK) {
            fprintf(stderr, "rn_infer_decode failed: %s\n", csp_context_last_error(ctx));
            rc = -1;
            break;
        }
        st->dense_s += t1 - t0;
        st->sparse_s += t2 - t1;
        st->utterances++;
        st->frames += T;
        st->audio_s += (double)info.samples / 8000.0;
        st->same_hyps += ld == ls && !memcmp(hd, hs, (size_t)ld * sizeof *hd);
        rn_wer_add(&st->dense_wer, bt.labels, bt.u_len[0], hd, ld);
        rn_wer_add(&st->sparse_wer, bt.labels, bt.u_len[0], hs, ls);
    }
    rn_batch_free(&bt);
    rn_infer_free(dense);
    rn_infer_free(sparse);
    return rc;
}
