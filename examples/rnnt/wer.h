/* wer.h - word (digit) error rate and string accuracy for the RNN-T example.
 *
 * Levenshtein distance between a reference and a hypothesis label sequence
 * with unit costs for substitutions, insertions and deletions; WER is the
 * total edit distance over the total number of reference labels.
 */
#ifndef RN_WER_H
#define RN_WER_H

#include <stdint.h>

/** Edit counts of one alignment (a minimum-distance one; among those, the
 *  one with the most substitutions, i.e. the fewest ins+del). */
typedef struct rn_edits {
    int64_t sub, ins, del; /* substitutions, insertions, deletions */
} rn_edits;

/** Edit distance between ref[0..nref) and hyp[0..nhyp). Fills *e when e is
 *  not NULL. Returns the distance (sub + ins + del), or -1 when nref or nhyp
 *  is negative or a needed pointer is NULL (NULL is fine for a length 0).
 *  Allocates O(nhyp) memory once (stack for nhyp < 256). */
int64_t rn_edit_distance(const int32_t *ref, int nref, const int32_t *hyp,
                         int nhyp, rn_edits *e);

/** Running totals over a test set. Zero-initialise, then rn_wer_add(). */
typedef struct rn_wer {
    int64_t ref_labels;  /* reference digits */
    int64_t sub, ins, del;
    int64_t strings;     /* utterances added */
    int64_t strings_ok;  /* utterances with zero edits */
} rn_wer;

/** Add one utterance. Returns its edit distance or -1 (nothing added). */
int64_t rn_wer_add(rn_wer *w, const int32_t *ref, int nref,
                   const int32_t *hyp, int nhyp);

/** Word error rate in percent: 100 (sub + ins + del) / ref_labels; when
 *  ref_labels is 0 it is 100 * (number of edits), i.e. 0 for no edits. */
double rn_wer_percent(const rn_wer *w);

/** String accuracy in percent: 100 strings_ok / strings (0 when empty). */
double rn_string_acc_percent(const rn_wer *w);

#endif /* RN_WER_H */
