/* dataset.h - Free Spoken Digit Dataset loader and splits.
 *
 * FSDD: Zohar Jackson et al., "Free Spoken Digit Dataset",
 * https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0.
 * Files are named {digit}_{speaker}_{index}.wav (8 kHz, 16-bit mono PCM).
 * The same naming is produced by gen_espeak_digits.sh (synthetic fallback).
 *
 * Utterances are ordered by (digit, speaker name, numeric index), so the
 * order never depends on the directory listing. Features (raw log-mel, see
 * logmel.h) of every file are computed once at load time.
 */
#ifndef SP_DATASET_H
#define SP_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define SP_DS_MAX_SPEAKERS 64
#define SP_DS_NAME_MAX 64    /* file name incl. NUL */
#define SP_DS_SPEAKER_MAX 32 /* speaker name incl. NUL */
#define SP_DS_CLASSES 10

typedef struct sp_utt {
    char name[SP_DS_NAME_MAX]; /* file name, e.g. "3_theo_12.wav" */
    int label;                 /* spoken digit 0..9 */
    int speaker;               /* index into sp_dataset.speakers */
    int index;                 /* recording index */
    int64_t samples;           /* length of the clip in samples */
    int64_t frames;            /* feature frames (>= 1) */
    float *feat;               /* frames x SP_FEAT_NMEL raw log-mel; points
                                  into sp_dataset.pool */
} sp_utt;

typedef struct sp_dataset {
    int64_t n;        /* utterances */
    sp_utt *utts;     /* n entries, sorted */
    int n_speakers;   /* distinct speakers, sorted by name */
    char speakers[SP_DS_MAX_SPEAKERS][SP_DS_SPEAKER_MAX];
    int64_t n_skipped;     /* directory entries not named like the data */
    int64_t total_frames;  /* sum of utts[i].frames */
    int64_t max_frames;    /* largest utts[i].frames */
    float *pool;           /* all features, utterance after utterance */
} sp_dataset;

/** Status codes of this module (0 = ok). */
enum {
    SP_DS_OK = 0,
    SP_DS_E_NOMEM = -1,
    SP_DS_E_IO = -2,      /* directory cannot be listed */
    SP_DS_E_EMPTY = -3,   /* no file named {digit}_{speaker}_{index}.wav */
    SP_DS_E_WAV = -4,     /* a data file failed to decode (see message) */
    SP_DS_E_FORMAT = -5,  /* wrong sample rate, too many speakers, ... */
    SP_DS_E_INVALID = -6  /* bad argument */
};

/** Load every {digit}_{speaker}_{index}.wav in dir. On error returns a
 *  negative code, leaves *ds zeroed and writes a message to err (when
 *  err != NULL, errlen > 0). */
int sp_dataset_load(sp_dataset *ds, const char *dir, char *err, size_t errlen);

/** Free everything; safe on a zeroed struct and on NULL. */
void sp_dataset_free(sp_dataset *ds);

/** Index of a speaker by name, or -1. */
int sp_dataset_speaker_id(const sp_dataset *ds, const char *name);

/** Parse "{digit}_{speaker}_{index}.wav". Returns 1 and fills the outputs on
 *  a match (speaker must be 1..SP_DS_SPEAKER_MAX-1 chars of [A-Za-z0-9-]),
 *  0 otherwise. */
int sp_dataset_parse_name(const char *name, int *digit, char *speaker,
                          int *index);

/** Choose the data directory: flag if non-NULL and non-empty; else the
 *  environment variable CSP_SPEECH_DATA if set and non-empty; else
 *  <repo root>/../shared/data/fsdd if that directory exists, where the repo
 *  root is the first of the current directory and its ancestors that holds
 *  a ".git" entry. Writes into buf and returns buf, or NULL when nothing
 *  is found. */
const char *sp_dataset_find_dir(const char *flag, char *buf, size_t buflen);

/** A train/test partition by utterance indices (ascending order). */
typedef struct sp_split {
    int64_t n_train, n_test;
    int64_t *train, *test;
} sp_split;

/** Official FSDD split: index 0..4 test, every other index (5..49) train. */
int sp_split_official(const sp_dataset *ds, sp_split *sp);

/** Leave-one-speaker-out fold: test = all utterances of test_speaker,
 *  train = all others. */
int sp_split_speaker(const sp_dataset *ds, int test_speaker, sp_split *sp);

/** Free the index arrays; safe on a zeroed struct and on NULL. */
void sp_split_free(sp_split *sp);

#endif /* SP_DATASET_H */
