/* speech_methods.h - the pruning methods of speech_demo: a method name maps
 * to a libcsp pruner configuration. Adding a method (for instance a CSP
 * variant: sensing operator, solver, correction) is one entry in the table
 * of speech_methods.c; speech_demo.c and the comparison driver pick it up by
 * name (speech_demo --list-methods).
 */
#ifndef SP_METHODS_H
#define SP_METHODS_H

#include <stdint.h>
#include <stdio.h>

#include <csp/csp.h>

typedef struct sm_method {
    const char *name;    /* --method NAME */
    const char *summary; /* one line, printed in the run header and reports */
    int prunes;          /* 0: dense training, no pruner */
    int is_csp;          /* 1: a compressed-sensing configuration (not GMP) */
    int available;       /* 0: this libcsp cannot run it (the reason is in summary) */
    /* Fill the pruner options (already csp_pruner_options_init()ed); NULL
     * keeps the library defaults. Returns 0 or a negative csp_status. */
    csp_status (*configure_pruner)(csp_pruner_options *po);
    /* Fill the options of prunable parameter `which` (SP_P_W_IH, SP_P_W_HH
     * or SP_P_W_OUT; already _init()ed); NULL keeps the defaults. */
    csp_status (*configure_tensor)(int which, csp_pruner_tensor_options *to);
    /* Activation sensing: called from the trainer's observe hook with the
     * inputs of the prunable matrix added as tensor `index` (see lstm.h for
     * what x holds). NULL: the method needs no activations and the demo
     * installs no observe hook (it then costs nothing). */
    csp_status (*observe)(csp_pruner *pruner, int32_t index, const float *x,
                          int64_t rows, int64_t cols);
} sm_method;

/** The method called `name`, or NULL. */
const sm_method *sm_find(const char *name);

/** Number of methods, and the i-th (0 <= i < sm_count()). */
int sm_count(void);
const sm_method *sm_at(int i);

/** Granularity that a method's configuration gives prunable parameter
 *  `which` (for the expected-nnz check); 0 when it cannot tell. */
int32_t sm_granularity(const sm_method *m, int which);

#endif /* SP_METHODS_H */
