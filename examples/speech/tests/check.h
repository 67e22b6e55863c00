/* check.h - the speech tests' tiny assertion counter (the trainer's tests
 * need no test framework): CHECK(cond, printf-args) counts a pass or
 * prints the failure with its line and counts it; a test's main() prints
 * the counts and returns non-zero when `failed` is. */
#ifndef SPEECH_TESTS_CHECK_H
#define SPEECH_TESTS_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) {                                     \
            passed++;                                   \
        } else {                                        \
            failed++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

#endif
