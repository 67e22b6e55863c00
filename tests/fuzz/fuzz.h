/* Shared by the fuzz targets and their standalone driver. */
#ifndef CSP_FUZZ_H
#define CSP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point: byte 0 is a flag (bit 0: recompute the CRCs
 * first, so mutations reach the parsers behind them), the rest the input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write valid seed input @p k (flag byte + a real checkpoint or export)
 * into @p buf; returns its size, the size needed when @p cap is too small,
 * or 0 when there is no seed @p k (seeds are numbered from 0). */
size_t csp_fuzz_seed(int k, uint8_t *buf, size_t cap);

/* Whether the last input was accepted by the library (a valid input). */
int csp_fuzz_last_accepted(void);

#endif
