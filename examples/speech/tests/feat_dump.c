/* feat_dump.c - writes log-mel features of WAV files for ref_features.py.
 * Usage: feat_dump OUT.bin FILE.wav...
 * Output per file: int64 frame count, then frames*40 float32 (native endian). */
#include <stdio.h>
#include <stdlib.h>

#include "../logmel.h"
#include "../wav.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT.bin FILE.wav...\n", argv[0]);
        return 2;
    }
    static sp_fbank fb;
    sp_fbank_init(&fb);
    FILE *out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        sp_wav w;
        sp_wav_status st = sp_wav_read(argv[i], &w);
        if (st != SP_WAV_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], sp_wav_strerror(st));
            fclose(out);
            return 1;
        }
        int64_t nf = sp_feat_num_frames(w.n);
        float *f = malloc((size_t)nf * SP_FEAT_NMEL * sizeof *f);
        if (!f) {
            fclose(out);
            return 1;
        }
        sp_feat_logmel(&fb, w.samples, w.n, f);
        fwrite(&nf, sizeof nf, 1, out);
        fwrite(f, sizeof *f, (size_t)nf * SP_FEAT_NMEL, out);
        free(f);
        sp_wav_free(&w);
    }
    return fclose(out) == 0 ? 0 : 1;
}
