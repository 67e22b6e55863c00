/* logmel.h - 40-band log-mel features for 8 kHz speech.
 *
 * Exactly: 8 kHz input, frames of 200 samples (25 ms) every 80 samples
 * (10 ms), symmetric Hamming window 0.54 - 0.46 cos(2 pi n / 199), zero
 * padded to a 256-point real FFT (own radix-2 code), power spectrum |X[k]|^2
 * for k = 0..128, 40 triangular HTK-mel filters (mel = 2595 log10(1 + f/700))
 * with edges equally spaced in mel from 20 Hz to 4000 Hz evaluated at the bin
 * frequencies k * 8000/256 (torchaudio melscale_fbanks, norm=None, htk), and
 * log(mel + 1e-6). Samples are int16/32768. Frame count floor((n-200)/80)+1;
 * clips shorter than 200 samples are zero-padded to one frame.
 * Computed in double, stored as float.
 */
#ifndef SP_LOGMEL_H
#define SP_LOGMEL_H
/* (Named logmel.h, not features.h: a local features.h on the include path
 * would shadow glibc's <features.h>.) */

#include <stdint.h>

#define SP_FEAT_RATE 8000
#define SP_FEAT_FRAME 200
#define SP_FEAT_HOP 80
#define SP_FEAT_NFFT 256
#define SP_FEAT_NBINS (SP_FEAT_NFFT / 2 + 1)
#define SP_FEAT_NMEL 40
#define SP_FEAT_FMIN 20.0
#define SP_FEAT_FMAX 4000.0
#define SP_FEAT_LOG_EPS 1e-6

/** Precomputed tables (window, FFT twiddles, mel filters). Plain value
 *  type: initialise once with sp_fbank_init, then share read-only. */
typedef struct sp_fbank {
    double window[SP_FEAT_FRAME];
    double cos_tw[SP_FEAT_NFFT / 2], sin_tw[SP_FEAT_NFFT / 2];
    int bitrev[SP_FEAT_NFFT / 2];
    double mel[SP_FEAT_NMEL][SP_FEAT_NBINS];
    int mel_lo[SP_FEAT_NMEL], mel_hi[SP_FEAT_NMEL]; /* nonzero bins [lo, hi) */
} sp_fbank;

void sp_fbank_init(sp_fbank *fb);

/** Number of frames for n samples (>= 1 for any n >= 0). */
int64_t sp_feat_num_frames(int64_t n);

/** Power spectrum of one frame of SP_FEAT_FRAME samples (window applied
 *  inside): power[SP_FEAT_NBINS]. Exposed for tests. */
void sp_feat_power(const sp_fbank *fb, const float *frame, double *power);

/** Log-mel features of n samples into out[num_frames * SP_FEAT_NMEL]
 *  (row-major, frame by frame). */
void sp_feat_logmel(const sp_fbank *fb, const float *x, int64_t n, float *out);

/** Per-band normalisation (x - mean) * inv_std. */
typedef struct sp_norm {
    float mean[SP_FEAT_NMEL];
    float inv_std[SP_FEAT_NMEL];
} sp_norm;

/** Fit mean/std over all frames of the given utterances (typically the
 *  training set only). feats[u] has frames[u] rows of SP_FEAT_NMEL. Uses
 *  double accumulation; a band with std < 1e-6 gets inv_std = 1e6. */
void sp_norm_fit(sp_norm *nm, int64_t n_utts, const float *const *feats,
                 const int64_t *frames);

/** In-place normalisation of rows x[frames * SP_FEAT_NMEL]. */
void sp_norm_apply(const sp_norm *nm, float *x, int64_t frames);

#endif /* SP_LOGMEL_H */
