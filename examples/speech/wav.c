/* wav.c - robust RIFF/WAVE (16-bit mono PCM) reader. See wav.h. */
#include "wav.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint16_t rd_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* KSDATAFORMAT_SUBTYPE_PCM without its first two bytes (the format tag). */
static const unsigned char pcm_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10,
                                                0x00, 0x80, 0x00, 0x00, 0xAA,
                                                0x00, 0x38, 0x9B, 0x71};

const char *sp_wav_strerror(sp_wav_status st)
{
    switch (st) {
    case SP_WAV_OK: return "ok";
    case SP_WAV_E_IO: return "cannot open or read file";
    case SP_WAV_E_NOMEM: return "out of memory";
    case SP_WAV_E_NOT_WAVE: return "not a RIFF/WAVE file";
    case SP_WAV_E_TRUNCATED: return "truncated WAV file";
    case SP_WAV_E_MALFORMED: return "malformed WAV file";
    case SP_WAV_E_UNSUPPORTED: return "unsupported WAV encoding (need 16-bit mono PCM)";
    case SP_WAV_E_TOO_LARGE: return "WAV file too large";
    }
    return "unknown WAV status";
}

void sp_wav_free(sp_wav *w)
{
    if (!w)
        return;
    free(w->samples);
    w->samples = NULL;
    w->n = 0;
    w->sample_rate = 0;
}

typedef struct {
    uint16_t tag, channels, block_align, bits;
    uint32_t rate;
} fmt_info;

/* Validate a fmt chunk body. */
static sp_wav_status parse_fmt(const unsigned char *b, uint32_t size, fmt_info *f)
{
    if (size < 16)
        return SP_WAV_E_MALFORMED;
    f->tag = rd_u16(b);
    f->channels = rd_u16(b + 2);
    f->rate = rd_u32(b + 4);
    f->block_align = rd_u16(b + 12);
    f->bits = rd_u16(b + 14);
    if (f->channels == 0 || f->rate == 0 || f->bits == 0)
        return SP_WAV_E_MALFORMED;
    if (f->tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE */
        if (size < 40 || rd_u16(b + 16) < 22)
            return SP_WAV_E_MALFORMED;
        uint16_t valid_bits = rd_u16(b + 18);
        uint16_t sub_tag = rd_u16(b + 24);
        if (memcmp(b + 26, pcm_guid_tail, sizeof pcm_guid_tail) != 0 || sub_tag != 1)
            return SP_WAV_E_UNSUPPORTED;
        if (valid_bits != 0 && valid_bits != f->bits)
            return SP_WAV_E_UNSUPPORTED;
    } else if (f->tag != 1) {
        return SP_WAV_E_UNSUPPORTED;
    }
    if ((uint32_t)f->block_align != (uint32_t)f->channels * ((f->bits + 7u) / 8u))
        return SP_WAV_E_MALFORMED;
    if (f->channels != 1 || f->bits != 16)
        return SP_WAV_E_UNSUPPORTED;
    return SP_WAV_OK;
}

sp_wav_status sp_wav_parse(const void *buf, size_t len, sp_wav *out)
{
    static const unsigned char magic[12] = {'R', 'I', 'F', 'F', 0, 0, 0, 0,
                                            'W', 'A', 'V', 'E'};
    const unsigned char *b = (const unsigned char *)buf;
    if (!out)
        return SP_WAV_E_MALFORMED;
    memset(out, 0, sizeof *out);
    if (len > 0 && !b)
        return SP_WAV_E_IO;

    /* Header: a short file that matches the magic so far is truncated. */
    for (size_t i = 0; i < 12; i++) {
        if (i >= len)
            return SP_WAV_E_TRUNCATED;
        if ((i < 4 || i >= 8) && b[i] != magic[i])
            return SP_WAV_E_NOT_WAVE;
    }

    /* Trust the RIFF size only when it fits: trailing bytes after the RIFF
     * body are ignored; an overlong size is left to the chunk walk. */
    size_t end = len;
    uint32_t riff = rd_u32(b + 4);
    if (riff >= 4 && (size_t)riff <= len - 8)
        end = 8 + (size_t)riff;

    fmt_info fmt = {0, 0, 0, 0, 0};
    int have_fmt = 0;
    size_t p = 12;
    const unsigned char *data = NULL;
    uint32_t data_size = 0;

    while (p < end) {
        if (end - p < 8)
            return SP_WAV_E_TRUNCATED; /* partial chunk header, no data yet */
        const unsigned char *id = b + p;
        uint32_t size = rd_u32(b + p + 4);
        size_t body = p + 8;
        int fits = (size_t)size <= end - body;
        if (memcmp(id, "fmt ", 4) == 0) {
            if (!fits)
                return SP_WAV_E_TRUNCATED;
            if (have_fmt)
                return SP_WAV_E_MALFORMED;
            sp_wav_status st = parse_fmt(b + body, size, &fmt);
            if (st != SP_WAV_OK)
                return st;
            have_fmt = 1;
        } else if (memcmp(id, "data", 4) == 0) {
            if (!have_fmt)
                return SP_WAV_E_MALFORMED;
            if (!fits)
                return SP_WAV_E_TRUNCATED;
            data = b + body;
            data_size = size;
            break; /* everything needed is known */
        } else if (!fits) {
            return SP_WAV_E_TRUNCATED;
        }
        /* Next chunk; the pad byte of an odd chunk may be missing at EOF. */
        size_t step = (size_t)size + (size & 1u);
        if (step > end - body)
            break;
        p = body + step;
    }
    if (!have_fmt || !data)
        return SP_WAV_E_MALFORMED;
    if (data_size % fmt.block_align != 0)
        return SP_WAV_E_MALFORMED;

    int64_t n = (int64_t)(data_size / 2u);
    float *s = NULL;
    if (n > 0) {
        s = (float *)malloc((size_t)n * sizeof *s);
        if (!s)
            return SP_WAV_E_NOMEM;
        for (int64_t i = 0; i < n; i++) {
            int16_t v = (int16_t)rd_u16(data + 2 * i);
            s[i] = (float)v * (1.0f / 32768.0f);
        }
    }
    out->sample_rate = (int32_t)(fmt.rate > INT32_MAX ? INT32_MAX : fmt.rate);
    out->n = n;
    out->samples = s;
    return SP_WAV_OK;
}

sp_wav_status sp_wav_read(const char *path, sp_wav *out)
{
    if (!out)
        return SP_WAV_E_MALFORMED;
    memset(out, 0, sizeof *out);
    if (!path)
        return SP_WAV_E_IO;
    FILE *f = fopen(path, "rb");
    if (!f)
        return SP_WAV_E_IO;
    /* Read in blocks: works for pipes and avoids trusting ftell. */
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = (unsigned char *)malloc(cap);
    sp_wav_status st = SP_WAV_OK;
    if (!buf) {
        fclose(f);
        return SP_WAV_E_NOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= SP_WAV_MAX_BYTES) {
                st = SP_WAV_E_TOO_LARGE;
                break;
            }
            unsigned char *nb = (unsigned char *)realloc(buf, cap * 2);
            if (!nb) {
                st = SP_WAV_E_NOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = SP_WAV_E_IO;
            break;
        }
    }
    fclose(f);
    if (st == SP_WAV_OK)
        st = sp_wav_parse(buf, len, out);
    free(buf);
    return st;
}
