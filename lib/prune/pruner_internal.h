/* Pruner internals: the whole state is here so that checkpoints (which
 * know only this serialisable state) and the CSP solvers can reach it.
 *
 * Everything marked "serialisable" below is what a checkpoint must hold to
 * make resume bit-identical; the rest is configuration (rebuilt by the
 * host's create/add calls) or scratch. The random sensing operators need no
 * RNG state: Phi is a pure function of (context seed, tensor index, 0,
 * event key), with event key 0, or the step of the event being applied
 * when `redraw` is set. */
#ifndef CSP_PRUNE_PRUNER_INTERNAL_H
#define CSP_PRUNE_PRUNER_INTERNAL_H

#include <csp/pruner.h>

#include "core/internal.h"
#include "prune/schedule_internal.h"

/* CSP configuration of a tensor, resolved from the pruner's options and the
 * tensor's overrides (not serialisable: the host recreates it). */
typedef struct csp__csconf {
    int32_t sensing;    /* csp_sensing_kind configured */
    int32_t solver;     /* csp_solver_method */
    int32_t correction; /* csp_correction */
    int32_t block_size; /* rank-1 block length */
    int32_t redraw;     /* 0/1 */
    double rho, damping, alpha, shrink;
    int32_t support;    /* csp_support */
} csp__csconf;

/* Statistics of a tensor. Serialisable (stats). */
typedef struct csp__tstats {
    double weight_error;    /* last event */
    double sensing_error;   /* last event */
    int64_t iterations;     /* last event, sum over rows */
    int64_t iterations_max; /* last event, max over rows */
    int64_t not_converged;  /* last event, rows */
    int64_t damped;         /* last event, rows */
    int64_t events;         /* events applied */
    double event_seconds;   /* last event */
    double total_seconds;   /* all events */
} csp__tstats;

/* The CSP part of a tensor pruned through a sensing operator and a solver
 * (csp__ptensor.cs; NULL for magnitude (GMP) tensors). */
typedef struct csp__pcs {
    int64_t rows;           /* CS rows: matrix rows, or full blocks of a rank-1 tensor */
    int64_t n;              /* their length: cols, or the block size */
    int64_t tail;           /* rank-1: length of the last, shorter block (0: none) */
    csp_sensing *owned;     /* created by the pruner (NULL for the identity kind) */
    csp_sensing *attached;  /* the host's (csp_pruner_set_sensing()), borrowed; wins */
    csp_solver *solver;     /* owned */
    /* Serialisable state. */
    double *lambda; /* rows + (tail > 0) doubles: ISTA/FISTA lambdas calibrated at the last
                       event, the warm starts of the next one (0 = none); NULL for OMP */
    /* The owned operator's activation accumulator is serialisable too; it lives in
     * the operator: csp_sensing_read_accumulator() / csp_sensing_write_accumulator()
     * (n * n + 1 doubles; only when owned->kind is ACTIVATIONS and nothing is
     * attached: attached operators are the host's). An owned GRAM operator's matrix
     * comes from the host (csp_sensing_set_gram() through csp_pruner_sensing()); a
     * checkpoint may save it (csp_sensing_gram()) or leave it to the host. Random
     * operators hold no state (Phi is keyed). */
} csp__pcs;

/* A growable list of borrowed tensor views. */
typedef struct csp__tlist {
    csp_tensor **v;
    int32_t n, cap;
} csp__tlist;

/* One weight tensor bound to the pruner. */
typedef struct csp__ptensor {
    csp_tensor *weight;    /* borrowed view */
    csp__tlist companions; /* borrowed views, zeroed by csp_step() where the mask is 0 */
    csp__tlist gradients;  /* borrowed views, zeroed by csp_pruner_mask_gradients() */
    int32_t granularity; /* resolved csp_granularity */
    int32_t group;       /* global group id */
    int32_t nm_n, nm_m;  /* resolved N:M */
    int32_t excluded;
    double final_override; /* < 0: none */
    csp__csconf conf;      /* CSP configuration */
    csp__pcs *cs;          /* CSP state, NULL for GMP tensors */
    /* Serialisable state. */
    uint64_t *mask;     /* current mask (csp__mask_words(numel)); NULL if excluded */
    int64_t nnz;        /* ones in mask */
    double target;      /* target sparsity of the last event */
    int64_t last_event; /* step of the last event applied, -1 */
    csp__tstats stats;  /* serialisable: statistics */
    /* Scratch. */
    uint64_t *next; /* the selection's new mask at an event */
} csp__ptensor;

/* Statistics of csp_step(). Serialisable (stats). */
typedef struct csp__pstats {
    int64_t steps, events;
    double last_event_seconds, event_seconds, total_seconds;
} csp__pstats;

struct csp_pruner {
    csp_context *ctx;
    csp_schedule *schedule;          /* owned copy */
    int32_t granularity, nm_n, nm_m; /* defaults for added tensors */
    csp__csconf conf;                /* CSP defaults for added tensors */
    int32_t observe_window;
    int32_t solver_max_iter;
    double solver_tol;
    csp__ptensor *tensors;
    int32_t num_tensors, cap_tensors;
    /* The step callback (not serialisable). */
    csp_step_fn callback;
    void *callback_user;
    int32_t in_callback;
    /* Shrink scratch: (key, index) pairs for the longest shrink row. */
    void *shrink_buf;
    int64_t shrink_cap;
    /* Serialisable state. */
    int64_t last_step;  /* step of the last csp_step(), -1 before */
    int64_t last_event; /* schedule event applied last, -1 before */
    csp__pstats stats;  /* serialisable: statistics */
};

/* Target sparsity of tensor @p pt when the schedule says @p s. */
double csp__tensor_target(const csp_pruner *p, const csp__ptensor *pt, double s);

/* ---- CSP (prune/cs.c) ------------------------------------------------------ */

/* The sensing operator in use by a CSP tensor (attached, else owned). */
static inline csp_sensing *csp__cs_sensing(const csp__pcs *cs) {
    return cs->attached != NULL ? cs->attached : cs->owned;
}

/* Create the CSP state of tensor @p index from its configuration (owned
 * operator of the configured kind unless it is the identity, solver,
 * lambdas). */
csp_status csp__cs_create(csp_pruner *p, int32_t index, csp__pcs **out);
void csp__cs_free(csp_context *ctx, csp__pcs *cs);

/* What a CSP tensor's event computed, held until every tensor succeeded. */
typedef struct csp__cs_result {
    float *x;        /* nc x n corrected values of the solved rows (NULL: none) */
    int64_t *sel;    /* nc: the CS rows solved (they lost weights) */
    int64_t nc;
    double *lambda;  /* new lambdas (NULL for OMP) */
    csp__tstats stats;
    double seconds;
} csp__cs_result;

/* Event phase 1 for one CSP tensor at target @p ts of schedule event @p e:
 * the new mask into pt->next, everything else into @p res. Writes nothing
 * else (no host buffer, no state); on failure @p res holds nothing. */
csp_status csp__cs_event(csp_pruner *p, int32_t index, double ts, int64_t e,
                         csp__cs_result *res);
/* Event phase 2 (after the masks were swapped, before they are applied):
 * write the corrected values, commit lambdas and stats, reset an owned
 * activations accumulator; frees @p res. Cannot fail. */
void csp__cs_commit(csp_pruner *p, csp__ptensor *pt, csp__cs_result *res);
void csp__cs_result_free(csp_context *ctx, csp__cs_result *res);

/* Weight-domain errors of a magnitude event (G = I), from the weights,
 * the current mask and pt->next; before the masks are swapped. */
void csp__gmp_event_errors(const csp__ptensor *pt, double *weight_err, double *sensing_err);

/* Between-event shrink (prune/cs.c): is it active for this step, and with
 * which next-event target? Leaves a message on failure (callback). */
csp_status csp__shrink_prepare(csp_pruner *p, int64_t step, bool *active, double *s_next,
                               double *progress);
void csp__shrink_apply(csp_pruner *p, double s_next, double progress);
/* Grow the shrink scratch to hold @p len entries. */
csp_status csp__shrink_reserve(csp_pruner *p, int64_t len);

/* Monotonic wall clock in seconds. */
double csp__now(void);

#endif
