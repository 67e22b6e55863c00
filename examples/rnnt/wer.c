/* wer.c - digit edit distance and WER, see wer.h. */
#include "wer.h"

#include <stdlib.h>

/* One DP cell: distance, and substitutions on a best path (ties broken
 * towards more substitutions, i.e. fewer insertions + deletions). */
typedef struct cell {
    int64_t d, sub, ins;
} cell;

static int better(int64_t d, int64_t sub, const cell *c)
{
    return d < c->d || (d == c->d && sub > c->sub);
}

int64_t rn_edit_distance(const int32_t *ref, int nref, const int32_t *hyp,
                         int nhyp, rn_edits *e)
{
    if (nref < 0 || nhyp < 0 || (nref > 0 && !ref) || (nhyp > 0 && !hyp))
        return -1;
    cell stack_row[2][256];
    cell *heap = NULL, *prev = stack_row[0], *cur = stack_row[1];
    if (nhyp >= 256) {
        heap = (cell *)malloc(2 * ((size_t)nhyp + 1) * sizeof *heap);
        if (!heap)
            return -1;
        prev = heap;
        cur = heap + nhyp + 1;
    }
    /* Row 0: hyp[0..j) against nothing = j insertions. */
    for (int j = 0; j <= nhyp; j++)
        prev[j] = (cell){j, 0, j};
    for (int i = 1; i <= nref; i++) {
        cur[0] = (cell){i, 0, 0}; /* i deletions */
        for (int j = 1; j <= nhyp; j++) {
            int same = ref[i - 1] == hyp[j - 1];
            /* diagonal: match or substitution */
            cell best = {prev[j - 1].d + !same, prev[j - 1].sub + !same, prev[j - 1].ins};
            /* deletion of ref[i-1] */
            if (better(prev[j].d + 1, prev[j].sub, &best))
                best = (cell){prev[j].d + 1, prev[j].sub, prev[j].ins};
            /* insertion of hyp[j-1] */
            if (better(cur[j - 1].d + 1, cur[j - 1].sub, &best))
                best = (cell){cur[j - 1].d + 1, cur[j - 1].sub, cur[j - 1].ins + 1};
            cur[j] = best;
        }
        cell *t = prev;
        prev = cur;
        cur = t;
    }
    cell r = prev[nhyp];
    free(heap);
    if (e) {
        e->sub = r.sub;
        e->ins = r.ins;
        e->del = r.d - r.sub - r.ins;
    }
    return r.d;
}

int64_t rn_wer_add(rn_wer *w, const int32_t *ref, int nref,
                   const int32_t *hyp, int nhyp)
{
    if (!w)
        return -1;
    rn_edits e;
    int64_t d = rn_edit_distance(ref, nref, hyp, nhyp, &e);
    if (d < 0)
        return -1;
    w->ref_labels += nref;
    w->sub += e.sub;
    w->ins += e.ins;
    w->del += e.del;
    w->strings++;
    w->strings_ok += d == 0;
    return d;
}

double rn_wer_percent(const rn_wer *w)
{
    if (!w)
        return 0.0;
    double err = (double)(w->sub + w->ins + w->del);
    return w->ref_labels > 0 ? 100.0 * err / (double)w->ref_labels : 100.0 * err;
}

double rn_string_acc_percent(const rn_wer *w)
{
    if (!w || w->strings == 0)
        return 0.0;
    return 100.0 * (double)w->strings_ok / (double)w->strings;
}
