/* Counter-based random numbers: pure functions of (key, counter). */
#include "internal.h"

#include <math.h>

uint64_t csp__mix64(uint64_t x) {
    /* The SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijection whose
     * output passes BigCrush when fed a counter. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t csp__key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = csp__mix64(seed + 0x632be59bd9b4e019ULL);
    k = csp__mix64(k ^ (a + 0x9e3779b97f4a7c15ULL));
    k = csp__mix64(k ^ (b + 0x8cb92ba72f3d8dd7ULL));
    k = csp__mix64(k ^ (c + 0xd6e8feb86659fd93ULL));
    return k;
}

double csp__normal(uint64_t key, uint64_t counter) {
    /* Box-Muller from two uniforms derived from the same counter; u1 in
     * (0, 1] so the logarithm is finite. */
    double u1 = 1.0 - csp__uniform(key, 2 * counter);
    double u2 = csp__uniform(key, 2 * counter + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
