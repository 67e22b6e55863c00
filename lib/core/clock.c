/* The monotonic clock of the statistics. */
#include "core/internal.h"

#include <time.h>

double csp__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
