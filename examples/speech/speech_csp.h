/* speech_csp.h - speech_demo's glue to libcsp: every libcsp call of the
 * demo is in speech_csp.c (the option structs of each method are filled
 * by speech_methods.c). A trainer step with pruning is
 *
 *     forward          -> sc_observe()        csp_pruner_wants_observe(),
 *                                             csp_pruner_observe()
 *     backward         -> sc_before_update()  csp_pruner_mask_gradients()
 *     clip, Adam       -> sc_after_step()     csp_step()
 *
 * installed as the trainer's hooks by sc_install_hooks().
 */
#ifndef SPEECH_CSP_H
#define SPEECH_CSP_H

#include <stdint.h>

#include "speech_demo.h"

typedef struct sc_pruning sc_pruning;

/** CSP_CHECK_VERSION(); prints the mismatch and returns -1 on failure. */
int sc_check_version(void);
/** csp_version_string(). */
const char *sc_version(void);

/** Context (seed and threads of @p o), the cubic schedule of @p o over
 *  @p total_steps, and a pruner configured by @p m (with o->csp on top)
 *  holding W_ih, W_hh and W_out of @p model with their Adam moments as
 *  companions and their gradient buffers registered for masking. Fills
 *  @p si. Prints why and returns -1 on failure (*out is then NULL). */
int sc_create(sc_pruning **out, const sm_method *m, const demo_options *o, sp_model *model,
              int64_t total_steps, sched_info *si);
void sc_free(sc_pruning *p);

/** Point the trainer's hooks at @p p: after_step (csp_step() with the
 *  number of updates done), before_update (gradient masking, when
 *  @p mask_gradients), observe (when a tensor uses activation sensing). */
void sc_install_hooks(sc_pruning *p, sp_train_options *t, int mask_gradients);

/** 1 when some prunable matrix uses activation sensing. */
int sc_needs_activations(const sc_pruning *p);

/** One-shot pruning: when a tensor uses activation sensing, a calibration
 *  pass over calib[0..n_calib) (training utterances) feeds every tensor's
 *  operator (its seconds in *calib_s), then the one event, csp_step(p, 0).
 *  Prints why and returns -1 unless it pruned. */
int sc_one_shot(sc_pruning *p, sp_trainer *tr, const int64_t *calib, int64_t n_calib,
                double *calib_s);

/** The trainer hooks themselves (user = the sc_pruning). */
void sc_after_step(void *user, int64_t step);
void sc_before_update(void *user, int64_t step);
void sc_observe(void *user, int which, const float *x, int64_t rows, int64_t cols);

/** 0, or -1 after printing the first error a hook met (hooks stop calling
 *  libcsp after an error). */
int sc_check(const sc_pruning *p);
/** Seconds in libcsp so far: csp_step(), masking and observing. */
double sc_seconds(const sc_pruning *p);
void sc_times(const sc_pruning *p, pruning_times *t);

/** Per prunable matrix: nnz and masks from libcsp (a NULL @p p, an unpruned
 *  run: every weight kept), the check that pruned weights and moments are
 *  zero, the inputs still read, and the compressed bytes from libcsp's
 *  exports with a CSR decode round trip (NULL @p p: the same layouts
 *  computed without headers). @p o gives the sparsity and overrides. */
int sc_report_tensors(const sc_pruning *p, const sm_method *m, const demo_options *o,
                      const sp_model *model, tensor_report rep[SD_N_PRUNABLE]);
/** The CSP statistics of the run (present = 0 for a NULL @p p). */
void sc_summary(const sc_pruning *p, const sp_model *model, csp_summary *out);
/** csp_pruner_digest(), 0 for a NULL @p p. */
uint64_t sc_digest(const sc_pruning *p);

#endif /* SPEECH_CSP_H */
