/* test_demo_data.c - speech_demo's splits (speech_data.c) on in-memory data
 * sets: the official split and a speaker fold with and without --validate,
 * against a reference written out here (validation = the 5 lowest distinct
 * recording indices of the training side, or the next speaker), on fixed
 * and random data sets (fresh seed, printed); test utterances never reach
 * the training or validation side; refusals leave the split unchanged. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../rng.h"
#include "../speech_demo.h"

#include "check.h"

/* speech_demo.c's definitions that speech_data.c uses. */
const int sd_prunable[SD_N_PRUNABLE] = {SP_P_W_IH, SP_P_W_HH, SP_P_W_OUT};
double sd_now(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* Utterances of n_spk speakers x 10 digits x the recording indices that
 * `keep` (a bit per index 0..63) names; no features (splits need none). */
static void make(sp_dataset *ds, int n_spk, uint64_t keep)
{
    memset(ds, 0, sizeof *ds);
    ds->n_speakers = n_spk;
    for (int s = 0; s < n_spk; s++)
        snprintf(ds->speakers[s], SP_DS_SPEAKER_MAX, "spk%d", s);
    ds->utts = calloc((size_t)(10 * n_spk * 64), sizeof *ds->utts);
    for (int d = 0; d < 10; d++)
        for (int s = 0; s < n_spk; s++)
            for (int i = 0; i < 64; i++)
                if (keep >> i & 1) {
                    sp_utt *u = &ds->utts[ds->n++];
                    u->label = d;
                    u->speaker = s;
                    u->index = i;
                    snprintf(u->name, sizeof u->name, "%d_spk%d_%d.wav", d, s, i);
                }
}

/* 1 when the split is: test/validation = exactly the utterances `want_val`
 * accepts, training = exactly those `want_train` accepts. */
typedef int (*pick_fn)(const sp_utt *u, int arg);
static int exactly(const sp_dataset *ds, const int64_t *ids, int64_t n, pick_fn pick, int arg)
{
    int64_t count = 0;
    for (int64_t i = 0; i < ds->n; i++)
        count += pick(&ds->utts[i], arg);
    if (count != n)
        return 0;
    for (int64_t i = 0; i < n; i++)
        if (!pick(&ds->utts[ids[i]], arg) || (i && ids[i] <= ids[i - 1]))
            return 0;
    return 1;
}

/* Recording index in [lo, hi], given as lo << 8 | hi. */
static int idx_in(const sp_utt *u, int lo_hi)
{
    return u->index >= (lo_hi >> 8) && u->index <= (lo_hi & 255);
}

static int spk_is(const sp_utt *u, int s) { return u->speaker == s; }
static int spk_not(const sp_utt *u, int s) { return u->speaker != s; }

static demo_options options(const char *eval, int validate)
{
    demo_options o;
    memset(&o, 0, sizeof o);
    o.eval = eval;
    o.validate = validate;
    return o;
}

static void test_fixed(void)
{
    sp_dataset ds;
    make(&ds, 3, (1ull << 12) - 1); /* indices 0..11 */
    sp_split sp;
    split_info si;
    demo_options o = options("official", 0);
    CHECK(sd_make_split(&o, &ds, &sp, &si) == 0 && !strcmp(si.eval_set, "test") &&
              exactly(&ds, sp.test, sp.n_test, idx_in, 0 << 8 | 4) &&
              exactly(&ds, sp.train, sp.n_train, idx_in, 5 << 8 | 11),
          "official split");
    sp_split_free(&sp);
    o.validate = 1;
    CHECK(sd_make_split(&o, &ds, &sp, &si) == 0 && !strcmp(si.eval_set, "validation") &&
              exactly(&ds, sp.test, sp.n_test, idx_in, 5 << 8 | 9) &&
              exactly(&ds, sp.train, sp.n_train, idx_in, 10 << 8 | 11) && !si.val_speaker,
          "official validation: 5-9 validate, 10-11 train (%lld / %lld)",
          (long long)sp.n_test, (long long)sp.n_train);
    sp_split_free(&sp);
    o = options("speaker:spk1", 1);
    CHECK(sd_make_split(&o, &ds, &sp, &si) == 0 && si.val_speaker &&
              !strcmp(si.val_speaker, "spk2") && exactly(&ds, sp.test, sp.n_test, spk_is, 2) &&
              exactly(&ds, sp.train, sp.n_train, spk_is, 0),
          "speaker fold spk1 validated on spk2, trained on spk0");
    sp_split_free(&sp);
    o = options("speaker:spk2", 1); /* the next speaker wraps around */
    CHECK(sd_make_split(&o, &ds, &sp, &si) == 0 && !strcmp(si.val_speaker, "spk0") &&
              exactly(&ds, sp.train, sp.n_train, spk_is, 1),
          "speaker fold spk2 validated on spk0");
    sp_split_free(&sp);
    o = options("speaker:spk0", 0);
    CHECK(sd_make_split(&o, &ds, &sp, &si) == 0 && exactly(&ds, sp.test, sp.n_test, spk_is, 0) &&
              exactly(&ds, sp.train, sp.n_train, spk_not, 0),
          "speaker fold spk0");
    sp_split_free(&sp);
    for (const char *bad = "speaker:nobody"; bad; bad = strcmp(bad, "nope") ? "nope" : NULL) {
        o = options(bad, 0);
        CHECK(sd_make_split(&o, &ds, &sp, &si) == 2 && !sp.train && !sp.test, "--eval %s", bad);
    }
    sp_dataset_free(&ds);

    /* Two speakers: a validated fold has no one left to train on. */
    make(&ds, 2, (1ull << 12) - 1);
    o = options("speaker:spk0", 1);
    CHECK(sd_make_split(&o, &ds, &sp, &si) == -1 && !sp.train, "2 speakers: refused");
    /* Too few recording indices on the training side: the carve refuses and
     * leaves the split as it was. */
    sp_dataset_free(&ds);
    make(&ds, 2, 0x3ff); /* 0..9: the training side has 5 indices */
    sp_split_official(&ds, &sp);
    const int64_t n_train = sp.n_train, n_test = sp.n_test, *train = sp.train;
    CHECK(sd_carve_validation(&ds, &sp, -1) == -1 && sp.n_train == n_train &&
              sp.n_test == n_test && sp.train == train,
          "carve with 5 training indices refused, split unchanged");
    sp_split_free(&sp);
    sp_dataset_free(&ds);
}

/* Random sets of recording indices: the validation set is the utterances
 * whose index is among the 5 lowest distinct indices >= 5, by a reference
 * that walks the index range. */
static void test_random(uint64_t seed)
{
    sp_rng r;
    sp_rng_seed(&r, seed);
    int bad = 0, refused = 0;
    for (int trial = 0; trial < 200; trial++) {
        uint64_t keep = sp_rng_next(&r) | 1; /* index 0 kept: a test utterance */
        for (int thin = 0; thin < trial % 4; thin++) /* sparser sets: 1/2 .. 1/16 */
            keep &= sp_rng_next(&r) | 1;
        sp_dataset ds;
        make(&ds, 1 + (int)sp_rng_below(&r, 4), keep);
        int distinct = 0, max_val = -1;
        for (int i = 5; i < 64; i++)
            if (keep >> i & 1 && distinct < 5) {
                distinct++;
                max_val = i;
            }
        int train_left = 0;
        for (int i = max_val + 1; i < 64; i++)
            train_left |= (int)(keep >> i & 1);
        demo_options o = options("official", 1);
        sp_split sp;
        split_info si;
        const int rc = sd_make_split(&o, &ds, &sp, &si);
        if (distinct < 5 || !train_left) {
            /* fewer than 6 distinct training indices: nothing left to train on */
            refused += rc == -1;
            bad += rc != -1;
        } else {
            bad += rc != 0 || !exactly(&ds, sp.test, sp.n_test, idx_in, 5 << 8 | max_val) ||
                   !exactly(&ds, sp.train, sp.n_train, idx_in, (max_val + 1) << 8 | 63);
        }
        sp_split_free(&sp);
        sp_dataset_free(&ds);
    }
    CHECK(bad == 0, "random index sets: %d wrong splits (seed %llu)", bad,
          (unsigned long long)seed);
    printf("random index sets: %d of 200 refused (too few indices)\n", refused);
}

int main(void)
{
    const uint64_t seed = (uint64_t)time(NULL);
    printf("test_demo_data: seed %llu\n", (unsigned long long)seed);
    test_fixed();
    test_random(seed);
    printf("test_demo_data: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
