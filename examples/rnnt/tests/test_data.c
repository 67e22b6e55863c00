/* test_data.c - the connected-digit corpus (rnnt_data.h).
 *
 * With FSDD (argument --fsdd DIR; skipped, exit 77, without it) for both
 * evaluations: determinism (same seed -> identical batch bytes; another
 * seed or, for fresh TRAIN strings, another epoch -> different bytes;
 * VALID/TEST ignore the epoch), no leakage (every digit of every TRAIN
 * string of 3 epochs comes from recordings 10-49 (official) or from
 * another speaker than the test speaker (LOSO); VALID 5-9 / other speakers
 * 0-4; TEST 0-4 / the test speaker), lengths (1-7 digits, t_len from the
 * sample count, labels digit+1, zero padding), SNR (measured speech power
 * over the recordings' samples / noise power within 0.01 dB of the
 * utterance's drawn SNR, which lies in 10-30 dB), pauses in 50-300 ms, and
 * the normalisation (TRAIN features of the fitting utterances: mean 0,
 * std 1 per feature to 1e-3). Always: the fallback's file parsing and
 * split on tone WAVs written to a temporary directory, and option errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../speech/tests/check.h"
#include "../rnnt_data.h"

static int same_batch(const rn_batch *a, const rn_batch *b)
{
    return a->B == b->B && a->T == b->T && a->U == b->U && a->F == b->F &&
           !memcmp(a->feat, b->feat, (size_t)a->B * a->T * a->F * sizeof(float)) &&
           !memcmp(a->t_len, b->t_len, (size_t)a->B * sizeof(int32_t)) &&
           !memcmp(a->labels, b->labels, (size_t)a->B * a->U * sizeof(int32_t));
}

static rn_corpus *open_c(const char *dir, rn_eval ev, int spk, uint64_t seed)
{
    rn_data_options o;
    rn_data_options_default(&o);
    o.data_dir = dir;
    o.eval = ev;
    o.test_speaker = spk;
    o.seed = seed;
    o.n_train = 300;
    o.n_valid = 60;
    o.n_test = 80;
    o.norm_utts = 60;
    rn_corpus *c = NULL;
    char err[512] = "";
    int rc = rn_corpus_open(&o, &c, err, sizeof err);
    CHECK(rc == 0 && c, "rn_corpus_open rc %d: %s", rc, err);
    return c;
}

static void check_leak_and_lengths(const rn_corpus *c, rn_eval ev, int spk)
{
    for (int set = 0; set < 3; set++) {
        for (int ep = 0; ep < (set == RN_SET_TRAIN ? 3 : 1); ep++) {
            int bad = 0;
            for (int64_t i = 0; i < rn_corpus_size(c, (rn_set)set); i++) {
                rn_utt_info in;
                CHECK(rn_corpus_info(c, (rn_set)set, ep, i, &in) == 0, "info");
                bad += in.n_digits < 1 || in.n_digits > 7;
                for (int k = 0; k < in.n_digits; k++) {
                    int r = in.recording[k];
                    if (ev == RN_EVAL_OFFICIAL)
                        bad += set == RN_SET_TEST ? r > 4
                               : set == RN_SET_VALID ? (r < 5 || r > 9) : r < 10;
                    else
                        bad += set == RN_SET_TEST ? in.speaker != spk
                               : in.speaker == spk ||
                                     (set == RN_SET_VALID ? r > 4 : r < 5);
                    bad += in.digits[k] < 0 || in.digits[k] > 9;
                }
                for (int k = 0; k <= in.n_digits; k++)
                    bad += in.pause_ms[k] < 50 || in.pause_ms[k] > 300;
            }
            CHECK(bad == 0, "eval %d set %d epoch %d: %d leaked/invalid entries", ev, set, ep,
                  bad);
        }
    }
    rn_batch b = {0};
    CHECK(rn_corpus_batch(c, RN_SET_TRAIN, 0, 5, 9, &b) == 0, "batch");
    int bad = 0;
    for (int i = 0; i < b.B; i++) {
        rn_utt_info in;
        rn_corpus_info(c, RN_SET_TRAIN, 0, 5 + i, &in);
        int64_t nf = (in.samples - 200) / 80 + 1;
        bad += b.t_len[i] != (nf + 2) / 3 || b.u_len[i] != in.n_digits;
        for (int k = 0; k < b.U; k++)
            bad += b.labels[i * b.U + k] != (k < in.n_digits ? in.digits[k] + 1 : 0);
        for (int t = b.t_len[i]; t < b.T; t++)
            for (int f = 0; f < b.F; f++)
                bad += b.feat[((size_t)i * b.T + t) * b.F + f] != 0.0f;
    }
    CHECK(bad == 0 && b.F == 120 && rn_corpus_feat_dim(c) == 120, "batch layout: %d bad", bad);
    rn_batch_free(&b);
}

static void check_snr(const rn_corpus *c)
{
    double lo = 1e9, hi = -1e9;
    int bad = 0;
    for (int64_t i = 0; i < 40; i++) {
        rn_audio a;
        CHECK(rn_corpus_render(c, RN_SET_TEST, 0, i, &a) == 0, "render");
        int64_t pauses = 0;
        for (int k = 0; k <= a.info.n_digits; k++)
            pauses += a.info.pause_ms[k] * 8;
        double ps = 0.0, pn = 0.0;
        for (int64_t j = 0; j < a.n; j++) {
            ps += (double)a.speech[j] * a.speech[j];
            pn += (double)a.noise[j] * a.noise[j];
        }
        double snr = 10.0 * log10((ps / (double)(a.n - pauses)) / (pn / (double)a.n));
        bad += fabs(snr - a.info.snr_db) > 0.01 || a.info.snr_db < 10.0 ||
               a.info.snr_db > 30.0 || a.n != a.info.samples;
        lo = fmin(lo, snr);
        hi = fmax(hi, snr);
        rn_audio_free(&a);
    }
    CHECK(bad == 0, "%d utterances with the wrong SNR", bad);
    CHECK(hi - lo > 5.0, "SNR spread %g..%g dB too small", lo, hi);
    printf("measured SNR %.2f..%.2f dB over 40 test utterances\n", lo, hi);
}

static void check_norm(const rn_corpus *c)
{
    rn_batch b = {0};
    CHECK(rn_corpus_batch(c, RN_SET_TRAIN, 0, 0, 60, &b) == 0, "norm batch");
    double worst_m = 0, worst_s = 0;
    for (int f = 0; f < b.F; f++) {
        double s1 = 0, s2 = 0, n = 0;
        for (int i = 0; i < b.B; i++)
            for (int t = 0; t < b.t_len[i]; t++) {
                double v = b.feat[((size_t)i * b.T + t) * b.F + f];
                s1 += v;
                s2 += v * v;
                n++;
            }
        double m = s1 / n, sd = sqrt(s2 / n - m * m);
        worst_m = fmax(worst_m, fabs(m));
        worst_s = fmax(worst_s, fabs(sd - 1.0));
    }
    CHECK(worst_m < 1e-3 && worst_s < 1e-3, "normalisation: |mean| %g |std-1| %g", worst_m,
          worst_s);
    rn_batch_free(&b);
}

static void fsdd_tests(const char *dir)
{
    rn_corpus *c = open_c(dir, RN_EVAL_OFFICIAL, 0, 7), *c2 = open_c(dir, RN_EVAL_OFFICIAL, 0, 7);
    rn_corpus *c3 = open_c(dir, RN_EVAL_OFFICIAL, 0, 8);
    if (!c || !c2 || !c3)
        return;
    printf("%s\n", rn_corpus_describe(c));
    CHECK(rn_corpus_is_synthetic(c) == 0 && strstr(rn_corpus_describe(c), "FSDD"), "FSDD said");
    rn_batch a = {0}, b = {0};
    rn_corpus_batch(c, RN_SET_TRAIN, 2, 10, 6, &a);
    rn_corpus_batch(c2, RN_SET_TRAIN, 2, 10, 6, &b);
    CHECK(same_batch(&a, &b), "same seed, different bytes");
    rn_corpus_batch(c3, RN_SET_TRAIN, 2, 10, 6, &b);
    CHECK(!same_batch(&a, &b), "another seed, same bytes");
    rn_corpus_batch(c, RN_SET_TRAIN, 3, 10, 6, &b);
    CHECK(!same_batch(&a, &b), "fresh training strings: epochs 2 and 3 equal");
    rn_corpus_batch(c, RN_SET_TEST, 0, 0, 5, &a);
    rn_corpus_batch(c2, RN_SET_TEST, 9, 0, 5, &b);
    CHECK(same_batch(&a, &b), "test set depends on the epoch");
    int64_t idx[3] = {4, 0, 2};
    rn_corpus_batch_idx(c, RN_SET_TEST, 0, idx, 3, &b);
    CHECK(b.t_len[1] == a.t_len[0] && b.t_len[0] == a.t_len[4], "batch_idx order");
    rn_batch_free(&a);
    rn_batch_free(&b);
    check_leak_and_lengths(c, RN_EVAL_OFFICIAL, -1);
    check_snr(c);
    check_norm(c);
    rn_corpus_close(c);
    rn_corpus_close(c2);
    rn_corpus_close(c3);
    for (int spk = 0; spk < 5; spk += 2) {
        c = open_c(dir, RN_EVAL_SPEAKER, spk, 11);
        if (!c)
            return;
        if (spk == 0)
            printf("%s\n", rn_corpus_describe(c));
        check_leak_and_lengths(c, RN_EVAL_SPEAKER, spk);
        rn_corpus_close(c);
    }
}

/* A 16-bit mono 8 kHz WAV of n samples of a tone. */
static void write_wav(const char *path, int n, double f)
{
    FILE *fp = fopen(path, "wb");
    unsigned char h[44] = "RIFF....WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data";
    uint32_t riff = 36 + 2 * (uint32_t)n, data = 2 * (uint32_t)n;
    memcpy(h + 4, &riff, 4);
    memcpy(h + 40, &data, 4);
    fwrite(h, 1, 44, fp);
    for (int i = 0; i < n; i++) {
        int16_t s = (int16_t)(8000 * sin(6.283185307 * f * i / 8000.0));
        fwrite(&s, 2, 1, fp);
    }
    fclose(fp);
}

static void fallback_tests(void)
{
    char dir[] = "/tmp/rnnt_data_test.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char p[256];
    const char *voices[3] = {"va", "vb", "vc"};
    for (int v = 0; v < 3; v++)
        for (int i = 0; i < 20; i++) {
            snprintf(p, sizeof p, "%s/%d%d%s_%s_%d.wav", dir, i % 10, (i * 3) % 10,
                     i % 3 ? "7" : "", voices[v], i);
            write_wav(p, 2000 + 100 * i, 300 + 50 * v + 10 * i);
        }
    rn_data_options o;
    rn_data_options_default(&o);
    o.force_espeak = 1;
    o.espeak_cache = dir;
    o.norm_utts = 20;
    rn_corpus *c = NULL;
    char err[512] = "";
    CHECK(rn_corpus_open(&o, &c, err, sizeof err) == RN_DATA_E_IO, "no marker must fail");
    snprintf(p, sizeof p, "%s/COMPLETE-RNNT-ESPEAK.txt", dir);
    fclose(fopen(p, "w"));
    int rc = rn_corpus_open(&o, &c, err, sizeof err);
    CHECK(rc == 0, "fallback open: %s", err);
    if (c) {
        CHECK(rn_corpus_is_synthetic(c) == 1 && strstr(rn_corpus_describe(c), "SYNTHETIC"),
              "fallback not said");
        CHECK(rn_corpus_size(c, RN_SET_TEST) == 6 && rn_corpus_size(c, RN_SET_VALID) == 6 &&
                  rn_corpus_size(c, RN_SET_TRAIN) == 48 && rn_corpus_n_speakers(c) == 3,
              "fallback split sizes %lld %lld %lld", (long long)rn_corpus_size(c, RN_SET_TRAIN),
              (long long)rn_corpus_size(c, RN_SET_VALID), (long long)rn_corpus_size(c, RN_SET_TEST));
        int bad = 0;
        for (int s = 0; s < 3; s++)
            for (int64_t i = 0; i < rn_corpus_size(c, (rn_set)s); i++) {
                rn_utt_info in;
                rn_corpus_info(c, (rn_set)s, 0, i, &in);
                int idx = in.recording[0];
                bad += (s == RN_SET_TEST) != (idx % 10 == 0) || (s == RN_SET_VALID) != (idx % 10 == 1);
                bad += in.digits[0] != idx % 10 || in.digits[1] != (idx * 3) % 10 ||
                       in.n_digits != (idx % 3 ? 3 : 2);
            }
        CHECK(bad == 0, "fallback strings: %d wrong", bad);
        rn_corpus_close(c);
    }
    o.eval = RN_EVAL_SPEAKER;
    o.test_speaker = 1;
    c = NULL;
    rc = rn_corpus_open(&o, &c, err, sizeof err);
    CHECK(rc == 0 && c && rn_corpus_size(c, RN_SET_TEST) == 20, "fallback LOSO: %s", err);
    if (c) {
        int bad = 0;
        for (int64_t i = 0; i < rn_corpus_size(c, RN_SET_TRAIN); i++) {
            rn_utt_info in;
            rn_corpus_info(c, RN_SET_TRAIN, 0, i, &in);
            bad += in.speaker == 1 || strcmp(rn_corpus_speaker(c, 1), "vb") != 0;
        }
        CHECK(bad == 0, "fallback LOSO leaks the test voice");
        rn_corpus_close(c);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void option_errors(void)
{
    rn_data_options o;
    rn_corpus *c = (rn_corpus *)&o;
    CHECK(rn_corpus_open(NULL, &c, NULL, 0) == RN_DATA_E_NULL && c == NULL, "NULL options");
    rn_data_options_default(&o);
    o.max_digits = 8;
    CHECK(rn_corpus_open(&o, &c, NULL, 0) == RN_DATA_E_RANGE, "max_digits 8");
    rn_data_options_default(&o);
    o.snr_min_db = 40;
    CHECK(rn_corpus_open(&o, &c, NULL, 0) == RN_DATA_E_RANGE, "snr min > max");
    rn_data_options_default(&o);
    o.force_espeak = 1;
    CHECK(rn_corpus_open(&o, &c, NULL, 0) == RN_DATA_E_IO, "no fallback cache");
    CHECK(rn_corpus_size(NULL, RN_SET_TRAIN) == -1 && rn_corpus_speaker(NULL, 0) == NULL,
          "NULL corpus");
}

int main(int argc, char **argv)
{
    const char *fsdd = argc > 2 && strcmp(argv[1], "--fsdd") == 0 ? argv[2] : NULL;
    option_errors();
    fallback_tests();
    if (fsdd)
        fsdd_tests(fsdd);
    printf("%d passed, %d failed\n", passed, failed);
    if (failed)
        return 1;
    if (!fsdd) {
        printf("SKIP: no FSDD (the fallback checks passed)\n");
        return 77;
    }
    return 0;
}
