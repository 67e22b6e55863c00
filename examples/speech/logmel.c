/* logmel.c - log-mel features, see logmel.h. */
#include "logmel.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846
#define HALF (SP_FEAT_NFFT / 2) /* complex FFT size used for the real FFT */

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

void sp_fbank_init(sp_fbank *fb)
{
    memset(fb, 0, sizeof *fb);
    for (int i = 0; i < SP_FEAT_FRAME; i++)
        fb->window[i] = 0.54 - 0.46 * cos(2.0 * PI * i / (SP_FEAT_FRAME - 1));
    /* Twiddles e^{-2 pi i k / NFFT}, k < NFFT/2: the HALF-point FFT uses
     * every second one, the real-FFT split all of them. */
    for (int k = 0; k < HALF; k++) {
        fb->cos_tw[k] = cos(2.0 * PI * k / SP_FEAT_NFFT);
        fb->sin_tw[k] = -sin(2.0 * PI * k / SP_FEAT_NFFT);
    }
    int bits = 0;
    while ((1 << bits) < HALF)
        bits++;
    for (int i = 0; i < HALF; i++) {
        int r = 0;
        for (int b = 0; b < bits; b++)
            if (i & (1 << b))
                r |= 1 << (bits - 1 - b);
        fb->bitrev[i] = r;
    }
    /* Triangular filters in the style of torchaudio.functional.melscale_fbanks. */
    double mmin = hz_to_mel(SP_FEAT_FMIN), mmax = hz_to_mel(SP_FEAT_FMAX);
    double fpts[SP_FEAT_NMEL + 2];
    for (int i = 0; i < SP_FEAT_NMEL + 2; i++)
        fpts[i] = mel_to_hz(mmin + (mmax - mmin) * i / (SP_FEAT_NMEL + 1));
    for (int m = 0; m < SP_FEAT_NMEL; m++) {
        fb->mel_lo[m] = SP_FEAT_NBINS;
        fb->mel_hi[m] = 0;
        for (int k = 0; k < SP_FEAT_NBINS; k++) {
            double f = (double)k * (SP_FEAT_RATE / 2.0) / (SP_FEAT_NBINS - 1);
            double down = (f - fpts[m]) / (fpts[m + 1] - fpts[m]);
            double up = (fpts[m + 2] - f) / (fpts[m + 2] - fpts[m + 1]);
            double w = down < up ? down : up;
            if (w > 0.0) {
                fb->mel[m][k] = w;
                if (k < fb->mel_lo[m])
                    fb->mel_lo[m] = k;
                fb->mel_hi[m] = k + 1;
            }
        }
        if (fb->mel_lo[m] > fb->mel_hi[m])
            fb->mel_lo[m] = fb->mel_hi[m];
    }
}

int64_t sp_feat_num_frames(int64_t n)
{
    if (n < SP_FEAT_FRAME)
        return 1;
    return (n - SP_FEAT_FRAME) / SP_FEAT_HOP + 1;
}

/* In-place iterative radix-2 complex FFT of size HALF (forward, e^{-i}). */
static void fft_half(const sp_fbank *fb, double *re, double *im)
{
    for (int i = 0; i < HALF; i++) {
        int j = fb->bitrev[i];
        if (j > i) {
            double t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int len = 2; len <= HALF; len <<= 1) {
        int half = len >> 1;
        int stride = SP_FEAT_NFFT / len; /* twiddle index step */
        for (int s = 0; s < HALF; s += len) {
            for (int k = 0; k < half; k++) {
                double wr = fb->cos_tw[k * stride], wi = fb->sin_tw[k * stride];
                int a = s + k, b = a + half;
                double tr = re[b] * wr - im[b] * wi;
                double ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

void sp_feat_power(const sp_fbank *fb, const float *frame, double *power)
{
    /* Pack the windowed, zero-padded real frame x[0..NFFT) as
     * z[n] = x[2n] + i x[2n+1] and take a HALF-point complex FFT. */
    double re[HALF], im[HALF];
    for (int n = 0; n < HALF; n++) {
        int a = 2 * n, b = 2 * n + 1;
        re[n] = a < SP_FEAT_FRAME ? fb->window[a] * (double)frame[a] : 0.0;
        im[n] = b < SP_FEAT_FRAME ? fb->window[b] * (double)frame[b] : 0.0;
    }
    fft_half(fb, re, im);
    /* Split: X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[H-k]) / 2,
     * O = (Z[k] - conj Z[H-k]) / 2i, W = e^{-2 pi i / NFFT}. */
    for (int k = 0; k <= HALF; k++) {
        int k1 = k % HALF, k2 = (HALF - k) % HALF;
        double zr = re[k1], zi = im[k1], cr = re[k2], ci = -im[k2];
        double er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
        double dr = 0.5 * (zr - cr), di = 0.5 * (zi - ci);
        double orr = di, oi = -dr; /* (dr + i di) / i */
        double wr, wi;
        if (k < HALF) {
            wr = fb->cos_tw[k];
            wi = fb->sin_tw[k];
        } else {
            wr = -1.0;
            wi = 0.0;
        }
        double xr = er + wr * orr - wi * oi;
        double xi = ei + wr * oi + wi * orr;
        power[k] = xr * xr + xi * xi;
    }
}

void sp_feat_logmel(const sp_fbank *fb, const float *x, int64_t n, float *out)
{
    int64_t nf = sp_feat_num_frames(n);
    float pad[SP_FEAT_FRAME];
    double power[SP_FEAT_NBINS];
    for (int64_t t = 0; t < nf; t++) {
        const float *frame;
        if (n < SP_FEAT_FRAME) {
            memset(pad, 0, sizeof pad);
            for (int64_t i = 0; i < n; i++)
                pad[i] = x[i];
            frame = pad;
        } else {
            frame = x + t * SP_FEAT_HOP;
        }
        sp_feat_power(fb, frame, power);
        float *o = out + t * SP_FEAT_NMEL;
        for (int m = 0; m < SP_FEAT_NMEL; m++) {
            double acc = 0.0;
            for (int k = fb->mel_lo[m]; k < fb->mel_hi[m]; k++)
                acc += fb->mel[m][k] * power[k];
            o[m] = (float)log(acc + SP_FEAT_LOG_EPS);
        }
    }
}

void sp_norm_fit(sp_norm *nm, int64_t n_utts, const float *const *feats,
                 const int64_t *frames)
{
    double sum[SP_FEAT_NMEL] = {0}, sq[SP_FEAT_NMEL] = {0};
    double count = 0.0;
    for (int64_t u = 0; u < n_utts; u++) {
        for (int64_t t = 0; t < frames[u]; t++) {
            const float *row = feats[u] + t * SP_FEAT_NMEL;
            for (int m = 0; m < SP_FEAT_NMEL; m++) {
                sum[m] += row[m];
                sq[m] += (double)row[m] * row[m];
            }
        }
        count += (double)frames[u];
    }
    for (int m = 0; m < SP_FEAT_NMEL; m++) {
        double mean = count > 0 ? sum[m] / count : 0.0;
        double var = count > 0 ? sq[m] / count - mean * mean : 1.0;
        double sd = var > 0 ? sqrt(var) : 0.0;
        nm->mean[m] = (float)mean;
        nm->inv_std[m] = (float)(sd < 1e-6 ? 1e6 : 1.0 / sd);
    }
}

void sp_norm_apply(const sp_norm *nm, float *x, int64_t frames)
{
    for (int64_t t = 0; t < frames; t++) {
        float *row = x + t * SP_FEAT_NMEL;
        for (int m = 0; m < SP_FEAT_NMEL; m++)
            row[m] = (row[m] - nm->mean[m]) * nm->inv_std[m];
    }
}
