/* Counter-based random numbers: pure functions of (key, counter).
 *
 * Every value is computed with IEEE-754 double operations in a fixed order
 * (+, -, *, /, sqrt and frexp, which are exact or correctly rounded
 * everywhere), never with the platform's log/cos, so the streams are
 * identical bit for bit across runs, platforms, compilers and thread counts. */
#include "internal.h"

/* No fused multiply-add anywhere in this file, whatever the flags: a fused
 * and an unfused a * b + c differ in the last bit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

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

double csp__log_portable(double x) {
    /* x = f 2^e with f in [sqrt(1/2), sqrt(2)); log f = 2 atanh(s),
     * s = (f - 1) / (f + 1), |s| <= 0.1716, as an odd series in s whose
     * truncation error is below 1e-18. ln 2 is split so e ln 2 is exact. */
    if (!(x > 0.0) || isinf(x))
        return x == 0.0 ? -INFINITY : (isinf(x) ? x : NAN);
    int e;
    double f = frexp(x, &e);
    if (f < 0.70710678118654752440) {
        f *= 2.0;
        e -= 1;
    }
    double s = (f - 1.0) / (f + 1.0);
    double s2 = s * s;
    double p = 2.0 / 25.0;
    p = p * s2 + 2.0 / 23.0;
    p = p * s2 + 2.0 / 21.0;
    p = p * s2 + 2.0 / 19.0;
    p = p * s2 + 2.0 / 17.0;
    p = p * s2 + 2.0 / 15.0;
    p = p * s2 + 2.0 / 13.0;
    p = p * s2 + 2.0 / 11.0;
    p = p * s2 + 2.0 / 9.0;
    p = p * s2 + 2.0 / 7.0;
    p = p * s2 + 2.0 / 5.0;
    p = p * s2 + 2.0 / 3.0;
    double logf_ = 2.0 * s + s * s2 * p;
    const double ln2_hi = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
    const double ln2_lo = 1.90821492927058770002e-10; /* 0x3dea39ef35793c76 */
    double de = (double)e;
    return de * ln2_hi + (de * ln2_lo + logf_);
}

/* Wichura's AS 241 (PPND16): the standard normal quantile of a lower-tail
 * probability p in (0, 1/2], accurate to about 1e-16. */
static double normal_quantile_lower(double p) {
    double q = p - 0.5; /* exact: p is a multiple of 2^-54 below 1/2 */
    if (q >= -0.425) {
        double r = 0.180625 - q * q;
        double num = ((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r +
                          6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r +
                        1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
                      1.3314166789178437745e+2) * r + 3.3871328727963666080e+0;
        double den = ((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r +
                          3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r +
                        5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
                      4.2313330701600911252e+1) * r + 1.0;
        return q * num / den;
    }
    double r = sqrt(-csp__log_portable(p));
    double val;
    if (r <= 5.0) {
        r -= 1.6;
        double num = ((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r +
                          2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r +
                        3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r +
                      4.63033784615654529590e+0) * r + 1.42343711074968357734e+0;
        double den = ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r +
                          1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r +
                        6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r +
                      2.05319162663775882187e+0) * r + 1.0;
        val = num / den;
    } else {
        r -= 5.0;
        double num = ((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                          1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r +
                        2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r +
                      5.46378491116411436990e+0) * r + 6.65790464350110377720e+0;
        double den = ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r +
                          1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r +
                        1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
                      5.99832206555887937690e-1) * r + 1.0;
        val = num / den;
    }
    return -val;
}

double csp__normal(uint64_t key, uint64_t counter) {
    /* Inversion: one 64-bit draw gives a random sign (bit 0) and a lower-tail
     * probability p = (k + 1/2) 2^-53 in (0, 1/2) from its top 52 bits, so
     * the distribution is exactly symmetric and p never reaches 0. */
    uint64_t bits = csp__rand64(key, counter);
    double p = ((double)(bits >> 12) + 0.5) * 0x1.0p-53;
    double z = normal_quantile_lower(p);
    return (bits & 1) ? -z : z;
}
