/* test_wav.c - WAV reader: valid variants, every malformed/truncated/
 * unsupported case named in wav.h, every prefix of a valid file, and
 * deterministic random mutations (build with -fsanitize=address,undefined
 * to check that bad input never crashes). Optional argument: a directory
 * of real WAVs (e.g. FSDD) that must all parse as 8 kHz mono. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rng.h"
#include "../wav.h"

#include "check.h"

typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *w, const void *p, size_t n)
{
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void put_u16(buf *w, unsigned v)
{
    unsigned char t[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(w, t, 2);
}
static void put_u32(buf *w, unsigned long v)
{
    unsigned char t[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(w, t, 4);
}
static void fix_riff(buf *w) /* RIFF size = file size - 8 */
{
    unsigned long v = (unsigned long)(w->n - 8);
    unsigned char t[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    memcpy(w->b + 4, t, 4);
}
static void header(buf *w)
{
    w->n = 0;
    put(w, "RIFF", 4);
    put_u32(w, 0);
    put(w, "WAVE", 4);
}
static void fmt_chunk(buf *w, unsigned tag, unsigned ch, unsigned long rate,
                      unsigned bits)
{
    put(w, "fmt ", 4);
    put_u32(w, 16);
    put_u16(w, tag);
    put_u16(w, ch);
    put_u32(w, rate);
    put_u32(w, rate * ch * bits / 8);
    put_u16(w, ch * bits / 8);
    put_u16(w, bits);
}
static const short samples[5] = {0, 1, -1, 32767, -32768};
static void data_chunk(buf *w)
{
    put(w, "data", 4);
    put_u32(w, 10);
    for (int i = 0; i < 5; i++)
        put_u16(w, (unsigned)(unsigned short)samples[i]);
}
static void valid(buf *w)
{
    header(w);
    fmt_chunk(w, 1, 1, 8000, 16);
    data_chunk(w);
    fix_riff(w);
}
static sp_wav_status parse(const buf *w, sp_wav *out)
{
    return sp_wav_parse(w->b, w->n, out);
}
static int samples_ok(const sp_wav *x)
{
    if (x->n != 5)
        return 0;
    for (int i = 0; i < 5; i++)
        if (x->samples[i] != (float)samples[i] / 32768.0f)
            return 0;
    return 1;
}

static void test_valid_variants(void)
{
    buf w;
    sp_wav x;
    valid(&w);
    CHECK(parse(&w, &x) == SP_WAV_OK && x.sample_rate == 8000 && samples_ok(&x),
          "plain PCM");
    sp_wav_free(&x);

    /* Unknown chunks (odd size, so padded) before fmt and before data. */
    header(&w);
    put(&w, "LIST", 4);
    put_u32(&w, 3);
    put(&w, "abc\0", 4);
    fmt_chunk(&w, 1, 1, 16000, 16);
    put(&w, "fact", 4);
    put_u32(&w, 4);
    put_u32(&w, 5);
    data_chunk(&w);
    put(&w, "junk", 4); /* trailing chunk after data: ignored */
    put_u32(&w, 2);
    put_u16(&w, 0);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_OK && x.sample_rate == 16000 && samples_ok(&x),
          "unknown chunks skipped");
    sp_wav_free(&x);

    /* fmt chunk with cbSize (18 bytes). */
    header(&w);
    put(&w, "fmt ", 4);
    put_u32(&w, 18);
    put_u16(&w, 1);
    put_u16(&w, 1);
    put_u32(&w, 8000);
    put_u32(&w, 16000);
    put_u16(&w, 2);
    put_u16(&w, 16);
    put_u16(&w, 0);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_OK && samples_ok(&x), "fmt size 18");
    sp_wav_free(&x);

    /* WAVE_FORMAT_EXTENSIBLE with the PCM sub-format. */
    header(&w);
    put(&w, "fmt ", 4);
    put_u32(&w, 40);
    put_u16(&w, 0xFFFE);
    put_u16(&w, 1);
    put_u32(&w, 8000);
    put_u32(&w, 16000);
    put_u16(&w, 2);
    put_u16(&w, 16);
    put_u16(&w, 22);
    put_u16(&w, 16);
    put_u32(&w, 4); /* channel mask */
    static const unsigned char guid[16] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0,
                                           0, 0xAA, 0, 0x38, 0x9B, 0x71};
    put(&w, guid, 16);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_OK && samples_ok(&x), "extensible PCM");
    sp_wav_free(&x);
    /* ... and with the IEEE-float sub-format: unsupported. */
    w.b[12 + 8 + 24] = 3;
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "extensible float");

    /* Empty data chunk. */
    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    put(&w, "data", 4);
    put_u32(&w, 0);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_OK && x.n == 0 && x.samples == NULL,
          "empty data");
    sp_wav_free(&x);

    /* Wrong RIFF size fields are tolerated when the chunks are complete. */
    valid(&w);
    w.b[4] = w.b[5] = w.b[6] = w.b[7] = 0xFF;
    CHECK(parse(&w, &x) == SP_WAV_OK && samples_ok(&x), "RIFF size too big");
    sp_wav_free(&x);
    valid(&w);
    w.b[4] = 2;
    w.b[5] = w.b[6] = w.b[7] = 0;
    CHECK(parse(&w, &x) == SP_WAV_OK && samples_ok(&x), "RIFF size too small");
    sp_wav_free(&x);
}

static void test_bad(void)
{
    buf w;
    sp_wav x;
    CHECK(sp_wav_parse(NULL, 0, &x) == SP_WAV_E_TRUNCATED, "empty input");
    CHECK(sp_wav_parse("RIF", 3, &x) == SP_WAV_E_TRUNCATED, "short prefix");
    CHECK(sp_wav_parse("RIFX\0\0\0\0WAVE", 12, &x) == SP_WAV_E_NOT_WAVE, "RIFX");
    CHECK(sp_wav_parse("RIFF\0\0\0\0AVI ", 12, &x) == SP_WAV_E_NOT_WAVE, "AVI");
    CHECK(sp_wav_parse("hello, world!", 13, &x) == SP_WAV_E_NOT_WAVE, "text");

    header(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "no chunks");

    header(&w);
    data_chunk(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "data before fmt");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "no data");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    fmt_chunk(&w, 1, 1, 8000, 16);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "two fmt chunks");

    header(&w);
    put(&w, "fmt ", 4);
    put_u32(&w, 8);
    put_u32(&w, 0x00010001);
    put_u32(&w, 8000);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "fmt too short");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    w.b[12 + 8 + 12] = 4; /* block_align 4 for mono 16-bit */
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "bad block_align");

    header(&w);
    fmt_chunk(&w, 1, 1, 0, 16);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "rate 0");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 16);
    put(&w, "data", 4);
    put_u32(&w, 3);
    put(&w, "abc", 3);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_MALFORMED, "odd data size");

    header(&w);
    fmt_chunk(&w, 1, 2, 8000, 16);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "stereo");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 8);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "8-bit");

    header(&w);
    fmt_chunk(&w, 1, 1, 8000, 24);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "24-bit");

    header(&w);
    fmt_chunk(&w, 3, 1, 8000, 32);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "IEEE float");

    header(&w);
    fmt_chunk(&w, 6, 1, 8000, 8);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_UNSUPPORTED, "A-law");

    /* Data chunk longer than the file. */
    valid(&w);
    w.b[40] = 100;
    CHECK(parse(&w, &x) == SP_WAV_E_TRUNCATED, "data size past EOF");
    /* Unknown chunk claiming 4 GiB. */
    header(&w);
    put(&w, "LIST", 4);
    put_u32(&w, 0xFFFFFFFFul);
    fmt_chunk(&w, 1, 1, 8000, 16);
    data_chunk(&w);
    fix_riff(&w);
    CHECK(parse(&w, &x) == SP_WAV_E_TRUNCATED, "huge unknown chunk");

    /* Every strict prefix of a valid file is an error, never a crash. */
    valid(&w);
    int prefix_ok = 1;
    for (size_t n = 0; n < w.n; n++) {
        sp_wav_status st = sp_wav_parse(w.b, n, &x);
        if (st == SP_WAV_OK || x.samples != NULL) {
            prefix_ok = 0;
            printf("prefix %zu parsed as %d\n", n, (int)st);
        }
        if (n < 12 && st != SP_WAV_E_TRUNCATED)
            prefix_ok = 0;
        if (n >= 12 && n < w.n && st != SP_WAV_E_TRUNCATED && st != SP_WAV_E_MALFORMED)
            prefix_ok = 0;
    }
    CHECK(prefix_ok, "all prefixes rejected as truncated/malformed");

    CHECK(sp_wav_read("/nonexistent/file.wav", &x) == SP_WAV_E_IO, "missing file");
    for (int s = 0; s >= -7; s--)
        CHECK(sp_wav_strerror((sp_wav_status)s) != NULL, "strerror %d", s);
    sp_wav_free(NULL);
}

static void test_fuzz(void)
{
    sp_rng r;
    sp_rng_seed(&r, 12345);
    buf base, w;
    valid(&base);
    long ok = 0, err = 0;
    for (int it = 0; it < 200000; it++) {
        w = base;
        int flips = 1 + (int)sp_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)sp_rng_below(&r, w.n);
            w.b[pos] = (unsigned char)sp_rng_next(&r);
        }
        if (sp_rng_below(&r, 4) == 0)
            w.n = (size_t)sp_rng_below(&r, w.n + 1);
        sp_wav x;
        sp_wav_status st = parse(&w, &x);
        if (st == SP_WAV_OK) {
            /* Whatever parsed must be self-consistent. */
            if (x.n < 0 || (x.n > 0 && !x.samples) || (size_t)x.n * 2 > w.n)
                err++;
            for (int64_t i = 0; i < x.n; i++)
                if (!(x.samples[i] >= -1.0f && x.samples[i] < 1.0f))
                    err++;
            ok++;
        } else if (x.samples != NULL || x.n != 0) {
            err++;
        }
        sp_wav_free(&x);
    }
    CHECK(err == 0, "fuzz: %ld inconsistent results", err);
    printf("fuzz: 200000 mutants, %ld parsed, rest rejected\n", ok);
}

static void test_dir(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, "open %s", dir);
    if (!d)
        return;
    long n = 0, bad = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".wav") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        sp_wav x;
        sp_wav_status st = sp_wav_read(path, &x);
        if (st != SP_WAV_OK || x.sample_rate != 8000 || x.n < 1) {
            printf("%s: %s\n", path, sp_wav_strerror(st));
            bad++;
        }
        sp_wav_free(&x);
        n++;
    }
    closedir(d);
    CHECK(n > 0 && bad == 0, "%ld of %ld files in %s failed", bad, n, dir);
    printf("read %ld WAV files from %s\n", n, dir);
}

int main(int argc, char **argv)
{
    test_valid_variants();
    test_bad();
    test_fuzz();
    for (int i = 1; i < argc; i++)
        test_dir(argv[i]);
    printf("test_wav: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
