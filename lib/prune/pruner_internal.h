/* Pruner internals: the whole state is here so that checkpoints (which
 * know only this serialisable state) and the CSP solvers can reach it. */
#ifndef CSP_PRUNE_PRUNER_INTERNAL_H
#define CSP_PRUNE_PRUNER_INTERNAL_H

#include <csp/pruner.h>

#include "core/internal.h"
#include "prune/schedule_internal.h"

/* One weight tensor bound to the pruner. */
typedef struct csp__ptensor {
    csp_tensor *weight;      /* borrowed view */
    csp_tensor **companions; /* borrowed views, zeroed where the mask is 0 */
    int32_t num_companions;
    int32_t cap_companions;
    int32_t granularity; /* resolved csp_granularity */
    int32_t group;       /* global group id */
    int32_t nm_n, nm_m;  /* resolved N:M */
    int32_t excluded;
    double final_override; /* < 0: none */
    /* Serialisable state. */
    uint64_t *mask;     /* current mask (csp__mask_words(numel)); NULL if excluded */
    int64_t nnz;        /* ones in mask */
    double target;      /* target sparsity of the last event */
    int64_t last_event; /* step of the last event applied, -1 */
    /* Scratch. */
    uint64_t *next; /* the selection's new mask at an event */
    void *sensing;  /* reserved for the CSP sensing/solver state */
} csp__ptensor;

struct csp_pruner {
    csp_context *ctx;
    csp_schedule *schedule;          /* owned copy */
    int32_t granularity, nm_n, nm_m; /* defaults for added tensors */
    csp__ptensor *tensors;
    int32_t num_tensors, cap_tensors;
    /* Serialisable state. */
    int64_t last_step;  /* step of the last csp_step(), -1 before */
    int64_t last_event; /* schedule event applied last, -1 before */
};

/* Target sparsity of tensor @p pt when the schedule says @p s. */
double csp__tensor_target(const csp_pruner *p, const csp__ptensor *pt, double s);

#endif
