/* test_dataset.c - file-name parsing, loading order, splits and errors on a
 * synthetic directory made here; with arguments, checks real data sets:
 *   test_dataset [--fsdd FSDD_DIR] [OTHER_DIR...]
 * FSDD_DIR must hold the full FSDD (2,500 files, 5 speakers); each
 * OTHER_DIR (e.g. gen_espeak_digits.sh output) must load and split. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dataset.h"
#include "../logmel.h"

#include "check.h"

static void le32(unsigned char *p, unsigned long v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Minimal 16-bit mono PCM writer for the fixtures. */
static void write_wav(const char *dir, const char *name, long rate, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    le32(h + 4, 36ul + 2ul * (unsigned long)n);
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 16);
    h[20] = 1, h[21] = 0, h[22] = 1, h[23] = 0;
    le32(h + 24, (unsigned long)rate);
    le32(h + 28, 2ul * (unsigned long)rate);
    h[32] = 2, h[33] = 0, h[34] = 16, h[35] = 0;
    memcpy(h + 36, "data", 4);
    le32(h + 40, 2ul * (unsigned long)n);
    fwrite(h, 1, 44, f);
    for (int i = 0; i < n; i++) {
        short s = (short)((i * 37) % 2000 - 1000);
        unsigned char b[2] = {(unsigned char)s, (unsigned char)((unsigned short)s >> 8)};
        fwrite(b, 1, 2, f);
    }
    fclose(f);
}

static void test_parse(void)
{
    int d, idx;
    char sp[SP_DS_SPEAKER_MAX];
    CHECK(sp_dataset_parse_name("3_theo_12.wav", &d, sp, &idx) && d == 3 &&
              !strcmp(sp, "theo") && idx == 12,
          "3_theo_12.wav");
    CHECK(sp_dataset_parse_name("0_en-us3_0.wav", &d, sp, &idx) && d == 0 &&
              !strcmp(sp, "en-us3") && idx == 0,
          "hyphen speaker");
    const char *bad[] = {"a_theo_1.wav", "3__1.wav",     "3_theo_.wav",
                         "3_theo_1.WAV", "3_theo_1.wav.bak", "33_theo_1.wav",
                         "3_th_eo_1.wav", "3_theo_1",    "3_theo_x1.wav",
                         "3-theo-1.wav", "",             "3_theo_1234567.wav",
                         "3_abcdefghijklmnopqrstuvwxyzabcdef_1.wav"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!sp_dataset_parse_name(bad[i], &d, sp, &idx), "rejects '%s'", bad[i]);
}

static void test_synthetic(void)
{
    char tmpl[] = "/tmp/sp_ds_test.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL, "mkdtemp");
    if (!dir)
        return;
    sp_dataset ds;
    char err[512];
    CHECK(sp_dataset_load(&ds, dir, err, sizeof err) == SP_DS_E_EMPTY, "empty dir");
    /* Speakers b and a, indices 0..6 for digits 0..2; lengths vary. */
    const char *spk[2] = {"bob", "al"};
    char name[64];
    for (int dgt = 2; dgt >= 0; dgt--)
        for (int s = 0; s < 2; s++)
            for (int i = 6; i >= 0; i--) {
                snprintf(name, sizeof name, "%d_%s_%d.wav", dgt, spk[s], i);
                write_wav(dir, name, 8000, 100 + 97 * i + 13 * dgt);
            }
    write_wav(dir, "README.wav", 8000, 300);
    int rc = sp_dataset_load(&ds, dir, err, sizeof err);
    CHECK(rc == SP_DS_OK, "load synthetic: %s", err);
    if (rc == SP_DS_OK) {
        CHECK(ds.n == 42 && ds.n_speakers == 2 && ds.n_skipped == 1,
              "n=%lld speakers=%d skipped=%lld", (long long)ds.n, ds.n_speakers,
              (long long)ds.n_skipped);
        CHECK(!strcmp(ds.speakers[0], "al") && !strcmp(ds.speakers[1], "bob"),
              "speakers sorted");
        CHECK(!strcmp(ds.utts[0].name, "0_al_0.wav") &&
                  !strcmp(ds.utts[6].name, "0_al_6.wav") &&
                  !strcmp(ds.utts[7].name, "0_bob_0.wav") &&
                  !strcmp(ds.utts[41].name, "2_bob_6.wav"),
              "order (digit, speaker, index)");
        int64_t tot = 0, mx = 0;
        int frames_ok = 1;
        for (int64_t i = 0; i < ds.n; i++) {
            const sp_utt *u = &ds.utts[i];
            int64_t n = 100 + 97 * u->index + 13 * u->label;
            if (u->samples != n || u->frames != sp_feat_num_frames(n))
                frames_ok = 0;
            if (i > 0 && u->feat != ds.utts[i - 1].feat + ds.utts[i - 1].frames * SP_FEAT_NMEL)
                frames_ok = 0;
            tot += u->frames;
            if (u->frames > mx)
                mx = u->frames;
        }
        CHECK(frames_ok && tot == ds.total_frames && mx == ds.max_frames,
              "frames and pool layout");
        sp_split sp;
        CHECK(sp_split_official(&ds, &sp) == SP_DS_OK && sp.n_test == 30 &&
                  sp.n_train == 12,
              "official split %lld/%lld", (long long)sp.n_train, (long long)sp.n_test);
        int ok = 1;
        for (int64_t i = 0; i < sp.n_test; i++)
            ok &= ds.utts[sp.test[i]].index < 5;
        for (int64_t i = 0; i < sp.n_train; i++)
            ok &= ds.utts[sp.train[i]].index >= 5;
        CHECK(ok, "official split by index");
        sp_split_free(&sp);
        CHECK(sp_split_speaker(&ds, 1, &sp) == SP_DS_OK && sp.n_test == 21 &&
                  sp.n_train == 21,
              "speaker fold sizes");
        ok = 1;
        for (int64_t i = 0; i < sp.n_test; i++)
            ok &= ds.utts[sp.test[i]].speaker == 1;
        for (int64_t i = 0; i < sp.n_train; i++)
            ok &= ds.utts[sp.train[i]].speaker != 1;
        CHECK(ok, "speaker fold disjoint");
        sp_split_free(&sp);
        CHECK(sp_split_speaker(&ds, 2, &sp) == SP_DS_E_INVALID, "bad speaker id");
        CHECK(sp_dataset_speaker_id(&ds, "bob") == 1 &&
                  sp_dataset_speaker_id(&ds, "zed") == -1,
              "speaker_id");
        sp_dataset_free(&ds);
    }
    /* A broken data file fails the load with a message naming it. */
    snprintf(name, sizeof name, "%s/5_al_1.wav", dir);
    FILE *f = fopen(name, "wb");
    if (f) {
        fputs("RIFF....WAVEjunk", f);
        fclose(f);
    }
    rc = sp_dataset_load(&ds, dir, err, sizeof err);
    CHECK(rc == SP_DS_E_WAV && strstr(err, "5_al_1.wav") != NULL,
          "bad wav: rc=%d '%s'", rc, err);
    CHECK(ds.n == 0 && ds.utts == NULL && ds.pool == NULL, "zeroed on error");
    remove(name);
    write_wav(dir, "5_al_2.wav", 16000, 500);
    rc = sp_dataset_load(&ds, dir, err, sizeof err);
    CHECK(rc == SP_DS_E_FORMAT, "16 kHz file rejected: rc=%d '%s'", rc, err);
    snprintf(name, sizeof name, "%s/5_al_2.wav", dir);
    remove(name);

    /* Directory choice: flag, then environment. */
    char buf[4096];
    CHECK(sp_dataset_find_dir("/some/flag", buf, sizeof buf) &&
              !strcmp(buf, "/some/flag"),
          "flag wins");
    setenv("CSP_SPEECH_DATA", dir, 1);
    CHECK(sp_dataset_find_dir(NULL, buf, sizeof buf) && !strcmp(buf, dir),
          "environment");
    CHECK(sp_dataset_find_dir("", buf, sizeof buf) && !strcmp(buf, dir),
          "empty flag ignored");
    unsetenv("CSP_SPEECH_DATA");
    CHECK(sp_dataset_load(&ds, "/nonexistent/dir", err, sizeof err) == SP_DS_E_IO,
          "missing dir");

    /* Clean up the fixture directory. */
    for (int dgt = 0; dgt < 3; dgt++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 7; i++) {
                snprintf(name, sizeof name, "%s/%d_%s_%d.wav", dir, dgt, spk[s], i);
                remove(name);
            }
    snprintf(name, sizeof name, "%s/README.wav", dir);
    remove(name);
    rmdir(dir);
}

static void test_real(const char *dir, int is_fsdd)
{
    sp_dataset ds, ds2;
    char err[512];
    int rc = sp_dataset_load(&ds, dir, err, sizeof err);
    CHECK(rc == SP_DS_OK, "load %s: %s", dir, err);
    if (rc)
        return;
    sp_split sp;
    sp_split_official(&ds, &sp);
    printf("%s: %lld utterances, %d speakers, %lld frames (max %lld), "
           "official split %lld/%lld\n",
           dir, (long long)ds.n, ds.n_speakers, (long long)ds.total_frames,
           (long long)ds.max_frames, (long long)sp.n_train, (long long)sp.n_test);
    if (is_fsdd)
        CHECK(ds.n == 2500 && ds.n_speakers == 5 && sp.n_train == 2250 &&
                  sp.n_test == 250,
              "FSDD sizes");
    CHECK(sp.n_train > 0 && sp.n_test > 0, "non-empty official split");
    sp_split_free(&sp);
    for (int s = 0; s < ds.n_speakers; s++) {
        sp_split_speaker(&ds, s, &sp);
        if (is_fsdd)
            CHECK(sp.n_train == 2000 && sp.n_test == 500, "FSDD fold %s", ds.speakers[s]);
        CHECK(sp.n_train + sp.n_test == ds.n && sp.n_test > 0, "fold %d", s);
        sp_split_free(&sp);
    }
    int counts[SP_DS_CLASSES] = {0};
    for (int64_t i = 0; i < ds.n; i++)
        counts[ds.utts[i].label]++;
    int bal = 1;
    for (int c = 1; c < SP_DS_CLASSES; c++)
        bal &= counts[c] == counts[0];
    CHECK(bal, "balanced classes");
    rc = sp_dataset_load(&ds2, dir, err, sizeof err);
    CHECK(rc == SP_DS_OK && ds2.n == ds.n && ds2.total_frames == ds.total_frames &&
              memcmp(ds.pool, ds2.pool,
                     (size_t)ds.total_frames * SP_FEAT_NMEL * sizeof(float)) == 0,
          "deterministic reload");
    int names = rc == SP_DS_OK;
    for (int64_t i = 0; names && i < ds.n; i++)
        names = !strcmp(ds.utts[i].name, ds2.utts[i].name);
    CHECK(names, "same order on reload");
    sp_dataset_free(&ds2);
    sp_dataset_free(&ds);
}

int main(int argc, char **argv)
{
    test_parse();
    test_synthetic();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fsdd") && i + 1 < argc)
            test_real(argv[++i], 1);
        else
            test_real(argv[i], 0);
    }
    printf("test_dataset: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
