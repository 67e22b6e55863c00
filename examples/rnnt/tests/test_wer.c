/* test_wer.c - digit edit distance, WER and string accuracy on hand-made
 * cases (exact integers), plus a random cross-check against a naive
 * recursive edit distance on short strings (fresh seed, printed). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../speech/rng.h"
#include "../../speech/tests/check.h"
#include "../wer.h"

static int naive(const int32_t *a, int n, const int32_t *b, int m)
{
    if (n == 0)
        return m;
    if (m == 0)
        return n;
    int best = naive(a, n - 1, b, m - 1) + (a[n - 1] != b[m - 1]);
    int d = naive(a, n - 1, b, m) + 1, i = naive(a, n, b, m - 1) + 1;
    best = d < best ? d : best;
    return i < best ? i : best;
}

static void expect(const int32_t *r, int nr, const int32_t *h, int nh, int64_t d,
                   int64_t s, int64_t i, int64_t del)
{
    rn_edits e;
    int64_t got = rn_edit_distance(r, nr, h, nh, &e);
    CHECK(got == d && e.sub == s && e.ins == i && e.del == del,
          "nr=%d nh=%d: got d=%lld s=%lld i=%lld del=%lld, want %lld %lld %lld %lld", nr,
          nh, (long long)got, (long long)e.sub, (long long)e.ins, (long long)e.del,
          (long long)d, (long long)s, (long long)i, (long long)del);
}

int main(int argc, char **argv)
{
    const int32_t a[] = {1, 2, 3, 4}, b[] = {1, 5, 3, 4}, c[] = {1, 2, 3, 4, 9};
    const int32_t d[] = {2, 3, 4}, e[] = {4, 3, 2, 1}, f[] = {7, 7};
    expect(a, 4, a, 4, 0, 0, 0, 0);       /* identical */
    expect(a, 4, b, 4, 1, 1, 0, 0);       /* one substitution */
    expect(a, 4, c, 5, 1, 0, 1, 0);       /* one insertion at the end */
    expect(a, 4, d, 3, 1, 0, 0, 1);       /* one deletion at the start */
    expect(a, 4, NULL, 0, 4, 0, 0, 4);    /* empty hypothesis: all deleted */
    expect(NULL, 0, f, 2, 2, 0, 2, 0);    /* empty reference: all inserted */
    expect(NULL, 0, NULL, 0, 0, 0, 0, 0);
    expect(a, 4, e, 4, 4, 4, 0, 0);       /* reversed: 4 subs beat 2 ins + 2 del */
    expect(f, 2, a, 4, 4, 2, 2, 0);       /* 7 7 -> 1 2 3 4 */
    CHECK(rn_edit_distance(NULL, 2, a, 4, NULL) == -1, "NULL ref with length");
    CHECK(rn_edit_distance(a, -1, a, 4, NULL) == -1, "negative length");

    rn_wer w = {0};
    rn_wer_add(&w, a, 4, a, 4); /* 0 errors */
    rn_wer_add(&w, a, 4, b, 4); /* 1 sub */
    rn_wer_add(&w, a, 4, c, 5); /* 1 ins */
    rn_wer_add(&w, d, 3, NULL, 0); /* 3 del */
    CHECK(w.ref_labels == 15 && w.sub == 1 && w.ins == 1 && w.del == 3, "totals");
    CHECK(w.strings == 4 && w.strings_ok == 1, "strings");
    CHECK(rn_wer_percent(&w) == 100.0 * 5 / 15, "WER %g", rn_wer_percent(&w));
    CHECK(rn_string_acc_percent(&w) == 25.0, "string acc %g", rn_string_acc_percent(&w));
    CHECK(rn_wer_add(&w, NULL, 3, a, 1) == -1 && w.strings == 4, "bad add adds nothing");
    rn_wer z = {0};
    CHECK(rn_wer_percent(&z) == 0.0 && rn_string_acc_percent(&z) == 0.0, "empty");

    /* long hypothesis (heap path) */
    int32_t *lh = malloc(600 * sizeof *lh);
    for (int i = 0; i < 600; i++)
        lh[i] = i % 10;
    expect(lh, 300, lh, 600, 300, 0, 300, 0);
    free(lh);

    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu\n", (unsigned long long)seed);
    sp_rng r;
    sp_rng_seed(&r, seed);
    for (int k = 0; k < 300; k++) {
        int32_t x[7], y[7];
        int n = (int)sp_rng_below(&r, 8), m = (int)sp_rng_below(&r, 8);
        for (int i = 0; i < 7; i++) {
            x[i] = (int32_t)sp_rng_below(&r, 3);
            y[i] = (int32_t)sp_rng_below(&r, 3);
        }
        rn_edits ed;
        int64_t got = rn_edit_distance(x, n, y, m, &ed);
        CHECK(got == naive(x, n, y, m), "random case %d: %lld vs %d", k, (long long)got,
              naive(x, n, y, m));
        CHECK(ed.sub + ed.ins + ed.del == got && ed.ins - ed.del == m - n && ed.sub >= 0 &&
                  ed.ins >= 0 && ed.del >= 0,
              "edit counts inconsistent");
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
