/* test_logmel.c - log-mel front end: frame counts, short-clip padding, the
 * radix-2 real FFT against a naive double DFT (relative 1e-10), filter bank
 * shape, a 1 kHz tone landing in the right band, and the normalisation.
 * (The float64 numpy reference on real files is ref_features.py.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../logmel.h"
#include "../rng.h"

#include "check.h"

static const double PI = 3.14159265358979323846;

int main(void)
{
    static sp_fbank fb;
    sp_fbank_init(&fb);

    /* Frame counts: floor((n - 200) / 80) + 1, at least 1. */
    const int64_t ns[] = {0, 1, 199, 200, 279, 280, 359, 360, 18262};
    const int64_t nf[] = {1, 1, 1, 1, 1, 2, 2, 3, 226};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        CHECK(sp_feat_num_frames(ns[i]) == nf[i], "frames(%lld) = %lld",
              (long long)ns[i], (long long)sp_feat_num_frames(ns[i]));

    /* FFT power spectrum vs naive DFT on a random windowed frame. */
    sp_rng r;
    sp_rng_seed(&r, 3);
    float frame[SP_FEAT_FRAME];
    for (int i = 0; i < SP_FEAT_FRAME; i++)
        frame[i] = 2.0f * sp_rng_uniform(&r) - 1.0f;
    double power[SP_FEAT_NBINS], worst = 0.0, maxp = 0.0;
    sp_feat_power(&fb, frame, power);
    for (int k = 0; k < SP_FEAT_NBINS; k++) {
        double re = 0.0, im = 0.0;
        for (int n = 0; n < SP_FEAT_FRAME; n++) {
            double w = 0.54 - 0.46 * cos(2.0 * PI * n / (SP_FEAT_FRAME - 1));
            re += w * frame[n] * cos(2.0 * PI * k * n / SP_FEAT_NFFT);
            im -= w * frame[n] * sin(2.0 * PI * k * n / SP_FEAT_NFFT);
        }
        double p = re * re + im * im;
        if (p > maxp)
            maxp = p;
        double e = fabs(power[k] - p);
        if (e > worst)
            worst = e;
    }
    CHECK(worst <= 1e-10 * maxp, "FFT vs DFT max err %.3g (max power %.3g)",
          worst, maxp);
    printf("FFT vs naive DFT: max abs err %.3g, relative to max power %.3g\n",
           worst, worst / maxp);

    /* Filter bank: 40 triangles, peaks <= 1, each nonempty, increasing. */
    int fb_ok = 1;
    for (int m = 0; m < SP_FEAT_NMEL; m++) {
        double peak = 0.0;
        for (int k = 0; k < SP_FEAT_NBINS; k++)
            if (fb.mel[m][k] > peak)
                peak = fb.mel[m][k];
        if (!(peak > 0.0 && peak <= 1.0) || fb.mel_lo[m] >= fb.mel_hi[m])
            fb_ok = 0;
        if (m > 0 && fb.mel_lo[m] < fb.mel_lo[m - 1])
            fb_ok = 0;
    }
    CHECK(fb_ok, "filter bank shape");

    /* Short clip = the same clip zero-padded to 200 samples. */
    float clip[150], padded[SP_FEAT_FRAME] = {0};
    for (int i = 0; i < 150; i++)
        clip[i] = padded[i] = (float)sin(0.3 * i) * 0.5f;
    float a[SP_FEAT_NMEL], b[SP_FEAT_NMEL];
    sp_feat_logmel(&fb, clip, 150, a);
    sp_feat_logmel(&fb, padded, SP_FEAT_FRAME, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "short clip padding");

    /* Silence: every band is log(1e-6); empty clip gives one such frame. */
    float zero[SP_FEAT_FRAME] = {0};
    sp_feat_logmel(&fb, zero, 0, a);
    int sil = 1;
    for (int m = 0; m < SP_FEAT_NMEL; m++)
        if (fabsf(a[m] - (float)log(1e-6)) > 1e-6f)
            sil = 0;
    CHECK(sil, "silence -> log(1e-6)");

    /* A 1 kHz tone: the loudest band is the one whose filter peaks nearest
     * to 1 kHz (bin 32). */
    float *tone = malloc(800 * sizeof *tone);
    for (int i = 0; i < 800; i++)
        tone[i] = (float)(0.5 * sin(2.0 * PI * 1000.0 * i / 8000.0));
    int64_t tf = sp_feat_num_frames(800);
    float *feat = malloc((size_t)tf * SP_FEAT_NMEL * sizeof *feat);
    sp_feat_logmel(&fb, tone, 800, feat);
    int best = 0, expect = 0;
    double bestw = -1.0;
    for (int m = 0; m < SP_FEAT_NMEL; m++) {
        if (feat[m] > feat[best])
            best = m;
        if (fb.mel[m][32] > bestw) {
            bestw = fb.mel[m][32];
            expect = m;
        }
    }
    CHECK(best == expect, "1 kHz tone in band %d, expected %d", best, expect);

    /* Normalisation: fitted on two "utterances", then mean 0 / std 1. */
    int64_t frames[2] = {tf, 1};
    const float *feats[2] = {feat, a};
    sp_norm nm;
    sp_norm_fit(&nm, 2, feats, frames);
    float *all = malloc((size_t)(tf + 1) * SP_FEAT_NMEL * sizeof *all);
    memcpy(all, feat, (size_t)tf * SP_FEAT_NMEL * sizeof *all);
    memcpy(all + tf * SP_FEAT_NMEL, a, SP_FEAT_NMEL * sizeof *all);
    sp_norm_apply(&nm, all, tf + 1);
    int norm_ok = 1;
    for (int m = 0; m < SP_FEAT_NMEL; m++) {
        double s = 0, s2 = 0;
        for (int64_t t = 0; t < tf + 1; t++) {
            s += all[t * SP_FEAT_NMEL + m];
            s2 += (double)all[t * SP_FEAT_NMEL + m] * all[t * SP_FEAT_NMEL + m];
        }
        double mean = s / (double)(tf + 1), var = s2 / (double)(tf + 1) - mean * mean;
        if (fabs(mean) > 1e-4 || fabs(var - 1.0) > 1e-3)
            norm_ok = 0;
    }
    CHECK(norm_ok, "normalised mean 0, std 1");
    free(all);
    free(feat);
    free(tone);
    printf("test_logmel: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
