/* rnnt_dense.h - rnnt_demo's model files (--save-dense, --load-dense,
 * --dump-params): every parameter of an rn_model, no optimizer state.
 *
 * Format (version 1, host byte order, i.e. little-endian on the machines
 * this runs on; all integers unsigned unless said):
 *
 *     8 bytes   magic "RNNTDNS\0"
 *     u32       version (1)
 *     u32       number of parameters P
 *     7 x i64   model sizes: in, enc_layers, enc_hidden, embed, pred_hidden,
 *               joint, vocab
 *     u64       seed of the run that wrote it (informational)
 *     P x (2 x i64)  rows, cols of each parameter, in model order
 *     f32 ...   the values of every parameter, in model order, row-major
 *     u64       FNV-1a 64 of every byte before it
 *
 * The file is written to FILE.tmp.PID and renamed over FILE. A reader
 * refuses a file whose magic, version, sizes (against the model it fills),
 * length or checksum do not match, with a message naming the difference.
 */
#ifndef RNNT_DENSE_H
#define RNNT_DENSE_H

#include <stddef.h>
#include <stdint.h>

#include "rnnt_model.h"

#define RN_DENSE_MAGIC "RNNTDNS"
#define RN_DENSE_VERSION 1u

/** Write every parameter of @p m to @p path atomically. 0, or -1 with the
 *  reason in err. */
int rn_dense_save(const rn_model *m, uint64_t seed, const char *path, char *err, size_t errlen);

/** Fill the parameters of @p m (already initialised with the sizes the file
 *  must have) from @p path; the Adam state and step are reset to zero.
 *  *seed (may be NULL) gets the writer's seed. 0, or -1 with the reason in
 *  err (the model is then unchanged). */
int rn_dense_load(rn_model *m, const char *path, uint64_t *seed, char *err, size_t errlen);

/** FNV-1a 64 of every parameter's values in model order (the RESULT line's
 *  params_fnv: a run that loads a file must print the saver's value). */
uint64_t rn_dense_params_fnv(const rn_model *m);

#endif /* RNNT_DENSE_H */
