/* Standalone driver for the fuzz targets, for compilers without libFuzzer
 * and for a quick deterministic run in `meson test --suite fuzz`:
 *   fuzz_x FILE...          run each file as one input (a crash reproducer)
 *   fuzz_x --write-seed F   write a valid seed input to F (for a corpus)
 *   fuzz_x [ITERATIONS]     the seed, then ITERATIONS (default 20000)
 *                           deterministic mutations of it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int main(int argc, char **argv) {
    static uint8_t seed[1 << 16], buf[1 << 16];
    size_t n = csp_fuzz_seed(seed, sizeof seed);
    if (n > sizeof seed)
        return 2;
    if (argc == 3 && strcmp(argv[1], "--write-seed") == 0) {
        FILE *f = fopen(argv[2], "wb");
        if (f == NULL || fwrite(seed, 1, n, f) != n || fclose(f) != 0)
            return 1;
        return 0;
    }
    char *end = NULL;
    long iters = argc == 2 ? strtol(argv[1], &end, 10) : 20000;
    if (argc == 1 || (argc == 2 && end != NULL && *end == '\0')) {
        LLVMFuzzerTestOneInput(seed, n);
        uint64_t s = 0x9e3779b97f4a7c15ULL;
        for (long it = 0; it < iters; it++) {
            memcpy(buf, seed, n);
            size_t len = n;
            buf[0] = (uint8_t)next(&s);
            int edits = 1 + (int)(next(&s) % 6);
            for (int e = 0; e < edits; e++) {
                size_t at = 1 + next(&s) % (len - 1);
                switch (next(&s) % 4) {
                case 0: buf[at] ^= (uint8_t)(1u << (next(&s) % 8)); break;
                case 1: buf[at] = (uint8_t)next(&s); break;
                case 2: buf[at] = (uint8_t)(next(&s) % 3); break;
                default: len = at; e = edits; break;
                }
            }
            LLVMFuzzerTestOneInput(buf, len);
        }
        printf("%ld mutations of a %zu-byte seed: no failure\n", iters, n);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t got = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, got);
    }
    return 0;
}
