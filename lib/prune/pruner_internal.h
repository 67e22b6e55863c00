/* Pruner internals: the whole state is here so that checkpoints (which
 * know only this serialisable state) and the strategies can reach it
 * (docs/internals.md has the picture).
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
#include "prune/options.h"
#include "prune/schedule_internal.h"

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
    double observe_seconds; /* all csp_pruner_observe() calls */
} csp__tstats;

/* The state of a tensor pruned by compressed sensing (strategy "cs"; NULL
 * for the others): lib/prune/strategy_cs.c. */
typedef struct csp__pcs {
    int64_t rows;          /* CS rows: matrix rows, or full blocks of a rank-1 tensor */
    int64_t n;             /* their length: cols, or the block size */
    int64_t tail;          /* rank-1: length of the last, shorter block (0: none) */
    csp_sensing *owned;    /* created by the pruner (NULL for the identity kind) */
    csp_sensing *attached; /* the host's (csp_pruner_set_sensing()), borrowed; wins */
    csp_solver *solver;    /* owned */
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

struct csp__strategy;

/* One weight tensor bound to the pruner. */
typedef struct csp__ptensor {
    csp_tensor *weight;    /* borrowed view */
    csp__tlist companions; /* borrowed views, zeroed by csp_step() where the mask is 0 */
    csp__tlist gradients;  /* borrowed views, zeroed by csp_pruner_mask_gradients() */
    csp_pruner_tensor_options conf; /* its options, validated (not serialisable) */
    csp__xconf x;                   /* its experimental parameters */
    const struct csp__strategy *strategy; /* NULL when excluded (lib/prune/strategy.h) */
    csp__pcs *cs;                   /* the "cs" strategy's state, else NULL */
    /* Serialisable state. */
    uint64_t *mask;     /* current mask (csp__mask_words(numel)); NULL if excluded */
    int64_t nnz;        /* ones in mask */
    double target;      /* target sparsity of the last event */
    int64_t last_event; /* step of the last event applied, -1 */
    csp__tstats stats;  /* serialisable: statistics */
    double adapt_mult;  /* serialisable (ADPT): the adaptive schedule's multiplier of the
                           next event (unused before the first; lib/prune/adaptive.c) */
    /* Scratch. */
    uint64_t *next; /* the new mask an event plans */
    int64_t warned_event; /* the event an "operator not ready" warning was logged for, -1 */
} csp__ptensor;

/* Statistics of csp_step(). Serialisable (stats). */
typedef struct csp__pstats {
    int64_t steps, events;
    double last_event_seconds, event_seconds, total_seconds, observe_seconds;
} csp__pstats;

struct csp_pruner {
    csp_context *ctx;
    csp_schedule *schedule;  /* owned copy */
    csp_pruner_options opts; /* defaults of added tensors, validated */
    csp__xconf x;            /* experimental defaults; observe_window is pruner-wide */
    csp__ptensor *tensors;
    int32_t num_tensors, cap_tensors;
    /* The step callback (not serialisable). */
    csp_step_fn callback;
    void *callback_user;
    int32_t in_callback;
    /* Re-entrancy: the public function whose work is running (NULL: none),
     * and a csp_pruner_free() deferred until it returns. */
    const char *busy;
    int32_t free_pending;
    /* The context's data epoch when the bound buffers were last found
     * disjoint (bindings.c). */
    uint64_t data_epoch;
    /* Shrink scratch: (key, index) pairs for the longest shrink row. */
    void *shrink_buf;
    int64_t shrink_cap;
    /* Serialisable state. */
    int64_t last_step;  /* step of the last csp_step(), -1 before */
    int64_t last_event; /* schedule event applied last, -1 before */
    csp__pstats stats;  /* serialisable: statistics */
};

static inline bool csp__excluded(const csp__ptensor *pt) { return pt->conf.exclude != 0; }

/* Re-entrancy guard of the functions that change a pruner: a callback that
 * runs inside one of them (schedule, log, allocator; the step callback for
 * csp_step() itself) and calls another on the same pruner is refused with
 * CSP_E_STATE, nothing changed; csp_pruner_free() there is deferred to the
 * end of the outer call. enter() returns CSP_OK or that error; leave() may
 * free the pruner (do not touch it afterwards). */
csp_status csp__pruner_enter(csp_pruner *p, const char *fn);

/* CSP_E_INVALID when @p t's memory overlaps a buffer @p p binds. */
csp_status csp__check_unbound(const csp_pruner *p, const csp_tensor *t, const char *fn);
/* CSP_E_INVALID when two buffers @p p binds share memory; a no-op unless a
 * view of the context was re-pointed since the last check. */
csp_status csp__check_bindings(csp_pruner *p, const char *fn);
void csp__pruner_leave(csp_pruner *p);

/* enter(), the call, leave(), return the call's status. */
#define CSP__GUARDED(p, fn, call)                    \
    do {                                             \
        csp_status guarded_ = csp__pruner_enter((p), (fn)); \
        if (guarded_ != CSP_OK)                      \
            return guarded_;                         \
        guarded_ = (call);                           \
        csp__pruner_leave(p);                        \
        return guarded_;                             \
    } while (0)

/* Target sparsity of tensor @p pt when the schedule says @p s. */
double csp__tensor_target(const csp_pruner *p, const csp__ptensor *pt, double s);

/* The sensing operator in use by a CSP tensor (attached, else owned). */
static inline csp_sensing *csp__cs_sensing(const csp__pcs *cs) {
    return cs->attached != NULL ? cs->attached : cs->owned;
}

/* First element of CS row @p r of a CSP tensor (a matrix row, or a block of
 * a rank-1 tensor); its weights are contiguous. */
static inline void *csp__cs_row_ptr(const csp_tensor *t, const csp__pcs *cs, int64_t r) {
    int64_t off = t->rank == 1 ? r * cs->n : r * t->row_stride;
    return (char *)t->data + (size_t)off * csp__dtype_size(t->dtype);
}

/* A pruning event to schedule event @p e at step @p step (lib/prune/event.c):
 * every tensor's strategy plans, then all commit. CSP_PRUNED, or an error
 * after which nothing has changed. */
csp_status csp__event_run(csp_pruner *p, int64_t e, int64_t step);

/* Re-apply every mask to its weights and companions. */
void csp__apply_all(csp_pruner *p);

/* Between-event shrink (lib/prune/shrink.c): run it for @p step when it is
 * due (after the masks were re-applied). Leaves a message on failure (a
 * schedule callback). */
csp_status csp__shrink_step(csp_pruner *p, int64_t step);
/* Grow the shrink scratch to hold @p len entries (a message naming @p fn
 * when out of memory). */
csp_status csp__shrink_reserve(csp_pruner *p, int64_t len, const char *fn);
/* The length of the rows tensor @p pt's shrink works on. */
int64_t csp__shrink_row_length(const csp__ptensor *pt);

#endif
