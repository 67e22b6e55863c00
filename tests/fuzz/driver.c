/* Standalone driver for the fuzz targets, for compilers without libFuzzer
 * and for quick deterministic runs in `meson test --suite fuzz`:
 *   fuzz_x FILE...             run each file as one input (a crash reproducer)
 *   fuzz_x --valid PATH...     run each file (of each directory) as one input
 *                              and fail unless the library accepts every one
 *                              (the committed seed corpus)
 *   fuzz_x --write-seed F      write seed 0 to F
 *   fuzz_x --write-corpus DIR  write every seed to DIR/seed-NN
 *   fuzz_x [ITERATIONS]        the seeds, then ITERATIONS (default 20000)
 *                              deterministic mutations of seed 0 */
#include <dirent.h>
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

static uint8_t seed[1 << 16], buf[1 << 16];

static int write_bytes(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* Run @p path as one input; with @p need_valid, fail unless accepted. */
static int run_file(const char *path, int need_valid) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t got = fread(buf, 1, sizeof buf, f);
    int big = !feof(f);
    fclose(f);
    if (big) {
        fprintf(stderr, "%s: larger than %zu bytes\n", path, sizeof buf);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, got);
    if (need_valid && !csp_fuzz_last_accepted()) {
        fprintf(stderr, "%s: refused by the library, but the corpus holds valid inputs only\n",
                path);
        return 1;
    }
    return 0;
}

static int run_path(const char *path, int need_valid, int *count) {
    DIR *d = opendir(path);
    if (d == NULL) {
        (*count)++;
        return run_file(path, need_valid);
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        (*count)++;
        bad |= run_file(full, need_valid);
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seed") == 0) {
        size_t n = csp_fuzz_seed(0, seed, sizeof seed);
        return n == 0 || n > sizeof seed ? 2 : write_bytes(argv[2], seed, n);
    }
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) {
        int k = 0;
        for (;; k++) {
            size_t n = csp_fuzz_seed(k, seed, sizeof seed);
            if (n == 0)
                break;
            if (n > sizeof seed)
                return 2;
            char path[4096];
            snprintf(path, sizeof path, "%s/seed-%02d", argv[2], k);
            if (write_bytes(path, seed, n) != 0)
                return 1;
        }
        printf("%d seeds written to %s\n", k, argv[2]);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--valid") == 0) {
        int bad = 0, count = 0;
        for (int i = 2; i < argc; i++)
            bad |= run_path(argv[i], 1, &count);
        if (count == 0) {
            fprintf(stderr, "no inputs\n");
            return 1;
        }
        if (!bad)
            printf("%d valid inputs accepted\n", count);
        return bad;
    }
    char *end = NULL;
    long iters = argc == 2 ? strtol(argv[1], &end, 10) : 20000;
    if (argc == 1 || (argc == 2 && end != NULL && *end == '\0')) {
        for (int k = 0;; k++) {
            size_t n = csp_fuzz_seed(k, seed, sizeof seed);
            if (n == 0)
                break;
            if (n > sizeof seed)
                return 2;
            LLVMFuzzerTestOneInput(seed, n);
            if (!csp_fuzz_last_accepted()) {
                fprintf(stderr, "seed %d is refused\n", k);
                return 1;
            }
        }
        size_t n = csp_fuzz_seed(0, seed, sizeof seed);
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
    int bad = 0;
    for (int i = 1; i < argc; i++)
        bad |= run_file(argv[i], 0);
    return bad;
}
