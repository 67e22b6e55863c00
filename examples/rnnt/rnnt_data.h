/* rnnt_data.h - connected-digit utterances for the RNN-T example.
 *
 * An utterance is a string of min_digits..max_digits digits spoken by ONE
 * speaker. With the Free Spoken Digit Dataset (FSDD: Zohar Jackson et al.,
 * https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0) it
 * is made by joining that speaker's recordings of the digits with random
 * pauses, a random gain and background noise at a random SNR. Without FSDD
 * the espeak-ng fallback (gen_espeak_strings.sh, run once into a cache
 * directory) synthesises whole digit strings with many voices, rates and
 * pitches; the same pauses, gain and noise are added. Everything is
 * deterministic from (seed, set, utterance index[, epoch]).
 *
 * Sets and evaluations (recording = FSDD index 0..49 of one digit/speaker):
 *   RN_EVAL_OFFICIAL: TEST from recordings 0-4, VALID from 5-9, TRAIN from
 *                     10-49, all speakers.
 *   RN_EVAL_SPEAKER:  TEST = every recording of test_speaker; the other
 *                     speakers give VALID (recordings 0-4) and TRAIN (5-49).
 * (espeak fallback: a synthesised string's index i plays the recording's
 * part: i % 10 == 0 test, == 1 valid, else train for OFFICIAL; for SPEAKER
 * the test voice is held out and i % 10 == 0 of the others is VALID.)
 * VALID is carved from the training side, for every hyperparameter choice;
 * TEST recordings and speakers never reach TRAIN, VALID or the feature
 * normalisation, which is fitted on TRAIN utterances only.
 *
 * Features: 40-band log-mel (examples/speech/logmel.h, 25 ms / 10 ms), then
 * `stack` consecutive frames concatenated every `stride` frames (3 and 3:
 * 30 ms frames, F = 120), then per-feature normalisation (mean/std of TRAIN).
 *
 * Labels: blank is RN_BLANK = 0 and digit d is label d + 1 (V = RN_VOCAB).
 */
#ifndef RN_DATA_H
#define RN_DATA_H

#include <stddef.h>
#include <stdint.h>

#define RN_BLANK 0
#define RN_VOCAB 11      /* blank + 10 digits */
#define RN_MAX_DIGITS 7  /* longest string the corpus makes */

/** Status codes of this module (0 = ok). */
enum {
    RN_DATA_OK = 0,
    RN_DATA_E_NULL = -1,    /* a required pointer is NULL */
    RN_DATA_E_RANGE = -2,   /* an option, set, index or count out of range */
    RN_DATA_E_NOMEM = -3,
    RN_DATA_E_IO = -4,      /* no data directory, unreadable file, espeak failed */
    RN_DATA_E_FORMAT = -5   /* a recording is not 8 kHz 16-bit mono PCM, ... */
};

typedef enum rn_eval { RN_EVAL_OFFICIAL = 0, RN_EVAL_SPEAKER = 1 } rn_eval;
typedef enum rn_set { RN_SET_TRAIN = 0, RN_SET_VALID = 1, RN_SET_TEST = 2 } rn_set;

typedef struct rn_data_options {
    const char *data_dir;      /* FSDD directory; NULL or "" = look it up as
                                  sp_dataset_find_dir() does */
    const char *espeak_cache;  /* fallback cache directory (a build
                                  directory, never the repository); NULL =
                                  no fallback (open fails without FSDD) */
    const char *espeak_script; /* gen_espeak_strings.sh, run when the cache
                                  holds no complete set; NULL = never run */
    int force_espeak;          /* 1: use the fallback even if FSDD exists */
    rn_eval eval;
    int test_speaker;          /* RN_EVAL_SPEAKER: index in the speakers
                                  sorted by name (rn_corpus_speaker()) */
    uint64_t seed;
    int min_digits, max_digits;   /* 1, 7 (max <= RN_MAX_DIGITS) */
    int64_t n_train;              /* TRAIN strings per epoch (FSDD; the
                                     fallback has its fixed files) 2000 */
    int fresh_each_epoch;         /* 1: new TRAIN strings (digits, takes,
                                     pauses, noise) every epoch; 0: a fixed
                                     pool, epoch ignored. 1 */
    int64_t n_valid, n_test;      /* FSDD strings: 300, 500 */
    int pause_min_ms, pause_max_ms; /* between digits and at both ends: 50, 300 */
    double snr_min_db, snr_max_db;  /* 10, 30 */
    double gain_min_db, gain_max_db; /* whole-utterance gain: -12, 0 */
    int stack, stride;            /* frame stacking: 3, 3 */
    int64_t norm_utts;            /* TRAIN utterances (epoch 0) fitting the
                                     normalisation: 400 */
} rn_data_options;

/** Fill the defaults stated above. */
void rn_data_options_default(rn_data_options *o);

/** Per-utterance facts (what the generator chose). */
typedef struct rn_utt_info {
    int n_digits;
    int digits[RN_MAX_DIGITS];     /* spoken digits 0..9 */
    int speaker;                   /* index in rn_corpus_speaker() order */
    int recording[RN_MAX_DIGITS];  /* FSDD recording index of each digit
                                      (fallback: the string's index in
                                      recording[0], the rest -1) */
    int pause_ms[RN_MAX_DIGITS + 1]; /* before digit k, and (last) after */
    double snr_db;                 /* speech power / noise power */
    double gain_db;
    int64_t samples;               /* waveform length at 8 kHz */
} rn_utt_info;

/** One utterance's waveform, speech and noise kept apart (mix = speech +
 *  noise, clipped to [-1, 1], is what the features see). */
typedef struct rn_audio {
    int64_t n;
    float *speech, *noise; /* n samples each, malloc'd */
    rn_utt_info info;
} rn_audio;

/** A padded batch. Zero-initialise; rn_corpus_batch*() grows the buffers
 *  as needed (reuse one rn_batch across calls to avoid allocation). */
typedef struct rn_batch {
    int B;            /* utterances */
    int T;            /* max t_len (feature frames after stacking) */
    int F;            /* features per frame */
    int U;            /* row stride of labels: max(1, max u_len) */
    float *feat;      /* B x T x F, normalised, zero beyond t_len[b] */
    int32_t *t_len;   /* B */
    int32_t *labels;  /* B x U: labels 1..10 (digit + 1), 0 beyond u_len */
    int32_t *u_len;   /* B */
    size_t cap_feat, cap_labels, cap_b; /* allocated elements (internal) */
} rn_batch;

typedef struct rn_corpus rn_corpus;

/** Load the recordings (or the espeak-ng fallback), fix VALID/TEST, fit the
 *  normalisation. On error returns a negative code, *out = NULL and a
 *  message in err (when err != NULL and errlen > 0). */
int rn_corpus_open(const rn_data_options *o, rn_corpus **out, char *err,
                   size_t errlen);

/** Free everything; NULL is fine. */
void rn_corpus_close(rn_corpus *c);

/** Utterances in a set (TRAIN: per epoch), or -1 for a bad argument. */
int64_t rn_corpus_size(const rn_corpus *c, rn_set set);

/** Features per frame (40 * stack), or -1 when c is NULL. */
int rn_corpus_feat_dim(const rn_corpus *c);

/** One line saying which data is used: FSDD or the espeak-ng fallback,
 *  its directory, the evaluation, speakers, the set sizes. Never NULL. */
const char *rn_corpus_describe(const rn_corpus *c);

/** 1 when the espeak-ng fallback is used, 0 for FSDD, -1 for NULL. */
int rn_corpus_is_synthetic(const rn_corpus *c);

/** Speakers (sorted by name) and their names; NULL for a bad index. */
int rn_corpus_n_speakers(const rn_corpus *c);
const char *rn_corpus_speaker(const rn_corpus *c, int i);

/** What utterance `index` of `set` in `epoch` is (epoch matters for TRAIN
 *  with fresh_each_epoch only). Cheap: no audio is made. */
int rn_corpus_info(const rn_corpus *c, rn_set set, int epoch, int64_t index,
                   rn_utt_info *info);

/** Make its waveform; free with rn_audio_free(). */
int rn_corpus_render(const rn_corpus *c, rn_set set, int epoch, int64_t index,
                     rn_audio *a);
void rn_audio_free(rn_audio *a);

/** Features and labels of utterances first..first+count-1 of a set. On
 *  error *b keeps its buffers but its contents are unspecified. The
 *  corpus is read-only here: calls from several threads are safe with
 *  one rn_batch per thread. */
int rn_corpus_batch(const rn_corpus *c, rn_set set, int epoch, int64_t first,
                    int count, rn_batch *b);

/** The same for an arbitrary list of utterance indices (e.g. shuffled). */
int rn_corpus_batch_idx(const rn_corpus *c, rn_set set, int epoch,
                        const int64_t *idx, int count, rn_batch *b);

/** Free a batch's buffers and zero it; NULL is fine. */
void rn_batch_free(rn_batch *b);

/** Static description of a status code; never NULL. */
const char *rn_data_strerror(int status);

#endif /* RN_DATA_H */
