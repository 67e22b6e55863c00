/* train.h - training driver for the speech-digit LSTM (see lstm.h), with
 * the hooks a pruning library needs. Single-threaded apart from BLAS;
 * deterministic for a given seed (own PRNG, fixed batch order) with a
 * fixed BLAS thread count (measure with OPENBLAS_NUM_THREADS=1).
 */
#ifndef SP_TRAIN_H
#define SP_TRAIN_H

#include <stdint.h>

#include "dataset.h"
#include "logmel.h"
#include "lstm.h"

/** Called after every optimizer step; step is the 0-based index of the
 *  step just completed (0 .. epochs * steps_per_epoch - 1). Weights,
 *  gradients and Adam moments (sp_trainer_model) may be changed in place. */
typedef void (*sp_after_step_fn)(void *user, int64_t step);

/** Learning-rate decay: the update with 0-based index `step` uses
 *  lr * sp_lr_factor(schedule, step). With u = (step - begin) / (end - begin)
 *  clamped to [0, 1] and f = final_factor, the factor is 1 for
 *  SP_LR_CONSTANT, else 1 - (1 - f) u (linear), f + (1 - f)(1 + cos(pi u)) / 2
 *  (cosine) or f^u (exponential): 1 up to `begin`, f from `end` on. */
enum { SP_LR_CONSTANT = 0, SP_LR_LINEAR = 1, SP_LR_COSINE = 2, SP_LR_EXP = 3 };

typedef struct sp_lr_schedule {
    int kind;             /* SP_LR_* (SP_LR_CONSTANT) */
    int64_t begin, end;   /* steps; begin < end unless constant */
    double final_factor;  /* f in (0, 1] (1) */
} sp_lr_schedule;

/** The factor above; 1 for a NULL or constant schedule. */
double sp_lr_factor(const sp_lr_schedule *s, int64_t step);

/** 1 when the schedule is usable: a known kind and, unless constant,
 *  0 <= begin < end and 0 < final_factor <= 1. */
int sp_lr_schedule_valid(const sp_lr_schedule *s);

typedef struct sp_train_options {
    int64_t hidden;      /* LSTM width H (128) */
    int64_t batch;       /* utterances per step (32); last batch may be short */
    int64_t eval_batch;  /* utterances per forward in evaluation (128) */
    int64_t bucket;      /* length bucketing: after each epoch's shuffle,
                            runs of batch*bucket utterances are sorted by
                            length before being cut into batches, and the
                            batch order is shuffled again; 0 = plain random
                            batches (8) */
    uint64_t seed;       /* model init and shuffling (1) */
    sp_adam_options adam; /* lr 1e-3, betas 0.9/0.999, eps 1e-8, clip 5 */
    sp_lr_schedule lr_decay; /* multiplies adam.lr per update (constant) */
    /* Hooks (NULL = off, no cost). */
    void (*after_step)(void *user, int64_t step);
    /* After the backward pass, before clipping and the Adam update of the
     * same step (0-based): the gradients (sp_trainer_model) are final and
     * may be changed in place, e.g. masked so that pruned weights do not
     * count in the clipping norm. */
    void (*before_update)(void *user, int64_t step);
    /* During each training forward, after the recurrence: the inputs of
     * each prunable matrix for the batch, `which` = SP_P_W_IH (frames,
     * rows = valid frames, cols = In), SP_P_W_HH (h_{t-1}, zero at t = 0,
     * rows = valid frames, cols = H), SP_P_W_OUT (mean-pooled hidden
     * vector, rows = batch, cols = H); contiguous row-major float32, valid
     * only during the call. Not called during evaluation. */
    void (*observe)(void *user, int which, const float *x, int64_t rows,
                    int64_t cols);
    void *user; /* passed to every hook */
} sp_train_options;

/** Fill the defaults listed above. */
void sp_train_options_init(sp_train_options *o);

typedef struct sp_trainer sp_trainer;

enum { SP_TRAIN_OK = 0, SP_TRAIN_E_NOMEM = -1, SP_TRAIN_E_INVALID = -2 };

/** Create a trainer on ds (which must outlive it) that trains on the
 *  utterances train_ids[0..n_train). Features are normalised per band with
 *  mean/std of the training utterances only (a normalised copy is kept). */
int sp_trainer_create(sp_trainer **out, const sp_train_options *opt,
                      const sp_dataset *ds, const int64_t *train_ids,
                      int64_t n_train);
void sp_trainer_free(sp_trainer *tr);

typedef struct sp_epoch_stats {
    int64_t epoch;   /* 0-based index of the epoch just run */
    int64_t steps;   /* optimizer steps in it */
    double loss;     /* mean training loss over its utterances (running) */
    double acc;      /* running training accuracy, fraction */
    double seconds;  /* wall time of the epoch */
    double lr;       /* learning rate of the epoch's last update */
    int64_t clipped; /* updates whose gradient norm exceeded adam.clip */
    double grad_norm; /* mean gradient norm before clipping (after before_update) */
} sp_epoch_stats;

/** One epoch: shuffle, then for each batch forward (observe hook),
 *  backward, before_update hook, clip, Adam with the decayed learning rate,
 *  after_step hook. st may be NULL. */
int sp_trainer_run_epoch(sp_trainer *tr, sp_epoch_stats *st);

typedef struct sp_eval_result {
    int64_t n, correct;
    double loss; /* mean cross-entropy */
    double acc;  /* correct / n */
} sp_eval_result;

/** Loss and accuracy on ids[0..n) of the dataset, with the current weights
 *  (no hooks, no state change). */
int sp_trainer_evaluate(sp_trainer *tr, const int64_t *ids, int64_t n,
                        sp_eval_result *res);

/** Calibration: forward passes over ids[0..n) with the current weights, as
 *  sp_trainer_evaluate() (no backward, no update, no state change), except
 *  that @p observe (with @p user) sees the inputs of each prunable matrix,
 *  as the options' observe hook does in training. For one-shot pruning from
 *  calibration activations; ids should be training utterances. */
int sp_trainer_calibrate(sp_trainer *tr, const int64_t *ids, int64_t n,
                         sp_observe_fn observe, void *user, sp_eval_result *res);

/** The trainer's own copy of its options. Between epochs the host may
 *  change the hooks, `user`, `adam` and `lr_decay` (for instance install
 *  hooks that need the model, or a decay that needs the step count); the
 *  other fields must stay as they were at creation. */
sp_train_options *sp_trainer_options(sp_trainer *tr);
/** The model: parameters, gradients and Adam moments, see lstm.h. */
sp_model *sp_trainer_model(sp_trainer *tr);
/** Optimizer steps per epoch (ceil(n_train / batch)). */
int64_t sp_trainer_steps_per_epoch(const sp_trainer *tr);
/** Optimizer steps done so far. */
int64_t sp_trainer_steps_done(const sp_trainer *tr);
/** Normalisation fitted on the training utterances. */
const sp_norm *sp_trainer_norm(const sp_trainer *tr);

#endif /* SP_TRAIN_H */
