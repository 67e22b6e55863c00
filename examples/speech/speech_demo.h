/* speech_demo.h - the parts of speech_demo and what they share.
 *
 *   speech_demo.c     main() and the training loop
 *   speech_args.c     the command line -> demo_options
 *   speech_data.c     the data directory (FSDD, else the espeak-ng fallback),
 *                     its provenance, the splits (and validation splits)
 *   speech_csp.c      every libcsp call: context, schedule, pruner, tensors,
 *                     csp_step(), gradient masking, observing, masks,
 *                     exports and statistics (speech_csp.h)
 *   speech_methods.c  method name -> libcsp pruner options (speech_methods.h)
 *   speech_report.c   the summary and the `RESULT {json}` line, schema
 *                     SD_RESULT_SCHEMA (documented in README.md, "RESULT")
 *
 * Every libcsp function call is in speech_csp.c, apart from the option
 * structs that speech_methods.c fills (csp_*_options_init() included); the
 * other files call none (tests/test_demo_smoke.py checks).
 */
#ifndef SPEECH_DEMO_H
#define SPEECH_DEMO_H

#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "lstm.h"
#include "speech_methods.h"
#include "train.h"

/** Version of the RESULT line's layout; bump it when a field changes
 *  meaning or type, and update README.md and tests/test_demo_smoke.py. */
#define SD_RESULT_SCHEMA "speech-result/3"

/** The prunable parameters, in the order they are added to the pruner. */
#define SD_N_PRUNABLE 3
extern const int sd_prunable[SD_N_PRUNABLE];

double sd_now(void); /* monotonic seconds */

/* ------------------------------------------------------------ options */

typedef struct demo_options {
    const char *method;
    double sparsity;
    double begin_frac, end_frac, exponent, initial_sparsity;
    int64_t frequency, events;
    int64_t epochs;
    int64_t subset;
    int64_t history;       /* --quiet: also evaluate after the last N epochs */
    int32_t threads;
    const char *data;
    const char *eval;      /* "official" or "speaker:NAME" */
    int validate;          /* evaluate on a validation split of the training side */
    const char *espeak_cache;
    int64_t espeak_takes;
    int no_generate;
    int list_methods, print_data, quiet;
    /* The recipe (README.md, "Training recipe"). */
    const char *recipe;    /* name of the last --recipe given */
    int lr_decay;          /* SP_LR_* */
    double lr_decay_begin; /* fraction of the training steps; < 0: the ramp end */
    double lr_decay_end;   /* fraction of the training steps */
    double lr_final;       /* factor reached at lr_decay_end */
    int mask_gradients;    /* csp_pruner_mask_gradients() before clipping */
    /* One-shot pruning of a trained model (README.md, "One-shot pruning"). */
    int one_shot;          /* one event at step 0 from calibration activations */
    int64_t finetune_epochs; /* --one-shot: epochs of fine-tuning after the event */
    int64_t calib;         /* --one-shot: calibration utterances (training side) */
    const char *save_dense, *load_dense; /* dense model files */
    int decay_given, decay_begin_given; /* --lr-decay, --lr-decay-begin seen */
    sm_overrides csp;
    sp_train_options train;
} demo_options;

/** Parse the command line. Returns 0, 1 after --help (printed), or -1
 *  after printing why the arguments are bad. */
int sd_parse_args(int argc, char **argv, demo_options *o);
void sd_usage(FILE *f, const char *prog);
/** "none", "linear", "cosine", "exp" for an SP_LR_* kind. */
const char *sd_lr_decay_name(int kind);

/* --------------------------------------------------------------- data */

typedef struct data_info {
    char path[4096];
    const char *kind;   /* "fsdd", "espeak" or "other" */
    const char *source; /* "flag", "env", "repo", "espeak-fallback" */
    uint64_t fingerprint;
} data_info;

/** The data directory for @p o (may synthesise the espeak-ng fallback). */
int sd_resolve_data(const demo_options *o, data_info *di);
/** Fill di->kind and di->fingerprint from the loaded data. */
void sd_classify_data(const sp_dataset *ds, data_info *di);
/** One line that says what the data is. */
const char *sd_kind_words(const char *kind);

typedef struct split_info {
    const char *fold;        /* held-out speaker of a speaker:NAME run, or NULL */
    const char *eval_set;    /* "test" or "validation" */
    const char *val_speaker; /* validation speaker of a validated speaker fold */
    const char *val_rule;    /* how the validation set was carved, or NULL */
} split_info;

/** The split of @p o: official or leave-one-speaker-out, then, with
 *  --validate, the validation split carved from its training side (the
 *  test utterances are left out entirely), then --subset. Prints why on
 *  failure (returns -1, or 2 for a bad --eval). */
int sd_make_split(const demo_options *o, const sp_dataset *ds, sp_split *split,
                  split_info *si);

/** Replace @p split by a validation split of its training side: the
 *  validation set is `val_speaker`'s utterances when it is >= 0, else the
 *  training utterances with the 5 lowest recording indices of the training
 *  side (5..9 for the official split); training keeps the rest. Test
 *  utterances appear in neither. Returns 0, or -1 when a side would be
 *  empty or memory runs out (the split is unchanged then). */
int sd_carve_validation(const sp_dataset *ds, sp_split *split, int val_speaker);

/* ------------------------------------------------------------ results */

typedef struct epoch_record {
    int64_t epoch;                /* 1-based */
    double lr;                    /* learning rate of the epoch's last update */
    double train_loss, train_acc; /* running, over the epoch */
    double test_err;              /* error on the evaluation set; NaN: not evaluated */
    double grad_norm;             /* mean gradient norm before clipping */
    int64_t clipped;              /* updates clipped */
    double sparsity;              /* zeros in the three matrices after the epoch */
    double csp_s, seconds;        /* time in libcsp, wall time of the epoch */
} epoch_record;

typedef struct tensor_report {
    const char *name;
    int64_t rows, cols, numel, nnz, expected_nnz; /* expected -1: not defined */
    int64_t nonzero;                               /* nonzero weight values */
    int64_t cols_used; /* columns (inputs) that some kept weight still reads */
    int mask_ok;      /* every pruned position: weight and both moments 0 */
    int64_t dense_bytes, csr_bytes, bitmap_bytes;
    int export_ok;    /* the CSR export decodes back to the weights, bit for bit */
} tensor_report;

typedef struct csp_tensor_summary {
    const char *name;
    const char *sensing, *solver, *correction;
    double weight_error, sensing_error; /* at the last event that removed weights */
    int64_t error_step;                 /* its step, -1 before any */
    double mean_weight_error, mean_sensing_error;
    int64_t changing_events, iterations, rows_damped, rows_not_converged;
    double event_s, total_event_s;
} csp_tensor_summary;

typedef struct csp_summary {
    int present;      /* 0: no pruner (dense) */
    const char *overrides;
    int64_t events, observed_passes;
    double event_s, last_event_s, step_total_s, observe_s;
    csp_tensor_summary t[SD_N_PRUNABLE];
} csp_summary;

typedef struct sched_info {
    int present;      /* 0: no pruner (dense) */
    int64_t begin_step, end_step, frequency, events;
    double exponent, initial_sparsity, final_sparsity;
} sched_info;

typedef struct pruning_times {
    double step_s, event_s;  /* csp_step(): all calls, the pruning events */
    double observe_s;        /* csp_pruner_wants_observe() and observing */
    double mask_s;           /* csp_pruner_mask_gradients() */
    int64_t calls, events;   /* csp_step() calls, pruning events */
} pruning_times;

/** Everything a run reports. */
typedef struct run_result {
    const demo_options *o;
    const sm_method *method;
    const data_info *di;
    const sp_dataset *ds;
    const split_info *si;
    const sp_model *model;
    int64_t n_train, n_test, total_steps, steps_per_epoch;
    int64_t lr_begin_step, lr_end_step; /* the decay's update indices */
    sched_info sched;
    sp_eval_result te;
    double train_loss, train_acc;
    epoch_record *hist;
    int64_t n_hist;
    tensor_report rep[SD_N_PRUNABLE];
    csp_summary csp;
    pruning_times pt;
    double total_s, train_s, eval_s;
    int pruned;       /* a pruner ran (the bytes come from libcsp's exports) */
    /* --one-shot: calibration utterances, their pass's seconds, and the
     * evaluation set's error and loss right after the event. */
    int64_t calib_n;
    double calib_s, oneshot_err, oneshot_loss;
    uint64_t digest;
    const char *libcsp_version;
} run_result;

/* speech_report.c */
void sr_print_methods(FILE *f);
void sr_print_data_json(FILE *f, const sp_dataset *ds, const data_info *di);
void sr_print_header(const run_result *r);
void sr_print_epoch(const epoch_record *e);
void sr_print_summary(const run_result *r);
void sr_print_result(FILE *f, const run_result *r);

#endif /* SPEECH_DEMO_H */
