/* wav.h - robust reader for RIFF/WAVE files holding 16-bit mono PCM.
 *
 * Part of the libcsp speech example. Accepts WAVE_FORMAT_PCM and
 * WAVE_FORMAT_EXTENSIBLE with the PCM sub-format; skips unknown chunks
 * (LIST, fact, cue, ...), honours RIFF odd-size padding, and reports
 * malformed, truncated or unsupported input with a status code instead of
 * crashing. Any sample rate is accepted and reported; callers check it.
 */
#ifndef SP_WAV_H
#define SP_WAV_H

#include <stddef.h>
#include <stdint.h>

typedef enum sp_wav_status {
    SP_WAV_OK = 0,
    SP_WAV_E_IO = -1,          /* cannot open or read the file */
    SP_WAV_E_NOMEM = -2,       /* allocation failed */
    SP_WAV_E_NOT_WAVE = -3,    /* no "RIFF....WAVE" header */
    SP_WAV_E_TRUNCATED = -4,   /* ends inside the header, fmt or data chunk */
    SP_WAV_E_MALFORMED = -5,   /* bad structure: fmt missing/short/duplicate,
                                  data missing or before fmt, inconsistent
                                  block_align, data not whole frames, zero
                                  channels/rate/bits */
    SP_WAV_E_UNSUPPORTED = -6, /* well-formed but not 16-bit mono PCM */
    SP_WAV_E_TOO_LARGE = -7    /* file larger than SP_WAV_MAX_BYTES */
} sp_wav_status;

/** sp_wav_read() rejects files of this many bytes or more. */
#define SP_WAV_MAX_BYTES ((size_t)1 << 30)

typedef struct sp_wav {
    int32_t sample_rate; /* Hz, as stated in the fmt chunk */
    int64_t n;           /* number of samples */
    float *samples;      /* n samples, int16 / 32768 in [-1, 1); malloc'd
                            (NULL when n == 0) */
} sp_wav;

/** Parse a WAV image held in memory. On success *out owns a new sample
 *  buffer (free with sp_wav_free); on error *out is zeroed. buf may be NULL
 *  only when len == 0. */
sp_wav_status sp_wav_parse(const void *buf, size_t len, sp_wav *out);

/** Read and parse a file. Same ownership rules as sp_wav_parse. */
sp_wav_status sp_wav_read(const char *path, sp_wav *out);

/** Release the samples; safe on a zeroed struct and on NULL. */
void sp_wav_free(sp_wav *w);

/** Static description of a status; never NULL. */
const char *sp_wav_strerror(sp_wav_status st);

#endif /* SP_WAV_H */
