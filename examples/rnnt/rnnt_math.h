/* The recogniser's activations, shared by the trainer (rnnt_model.c) and the
 * streaming decoder (rnnt_infer.c) so that both compute the same values. */
#ifndef RN_MATH_H
#define RN_MATH_H

#include <math.h>

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* tanh through expf (glibc's expf is much faster than its tanhf); absolute
 * error ~1e-7, saturates cleanly (expf overflow gives +-1). */
static inline float ftanh(float x) { return 1.0f - 2.0f / (expf(2.0f * x) + 1.0f); }

#endif /* RN_MATH_H */
