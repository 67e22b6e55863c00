/* speech_methods.h - the pruning methods of speech_demo: a method name maps
 * to a libcsp pruner configuration. Every libcsp option the demo sets is set
 * here; speech_csp.c makes the calls. Adding a method (for instance a CSP
 * variant: sensing operator, solver, correction) is one entry in the table
 * of speech_methods.c; speech_demo and the comparison driver pick it up by
 * name (speech_demo --list-methods). A tensor whose operator is the
 * activations one is fed its inputs by speech_csp.c, with no code here.
 *
 * On top of a method, `--csp KEY=VALUE,...` (sm_parse_overrides) changes
 * single options for experiments without a new table entry.
 */
#ifndef SP_METHODS_H
#define SP_METHODS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <csp/csp.h>

/* A configuration's experimental parameters (<csp/experimental.h>), set on
 * the pruner after it is created (NaN: not set). */
typedef struct sm_experimental {
    double shrink, alpha, support, redraw, window;
    double adapt; /* CSP_X_ADAPT_BOUND, pruner-wide only (index -1) */
} sm_experimental;

/* A method's pruner configuration: the options and the experimental
 * parameters. */
typedef struct sm_config {
    csp_pruner_options po;
    sm_experimental x;
} sm_config;

typedef struct sm_method {
    const char *name;    /* --method NAME */
    const char *summary; /* one line, printed in the run header and reports */
    int prunes;          /* 0: dense training, no pruner */
    int is_csp;          /* 1: a compressed-sensing configuration (not GMP) */
    int available;       /* 0: this libcsp cannot run it (the reason is in summary) */
    /* Fill the configuration (options already csp_pruner_options_init()ed,
     * nothing experimental set); NULL keeps the library defaults. Returns 0
     * or a negative csp_status. */
    csp_status (*configure_pruner)(sm_config *c);
    /* Fill the options of prunable parameter `which` (SP_P_W_IH, SP_P_W_HH
     * or SP_P_W_OUT; already _init()ed from the pruner) and its
     * experimental parameters; NULL keeps the pruner's. */
    csp_status (*configure_tensor)(int which, csp_pruner_tensor_options *to,
                                   sm_experimental *x);
    int grid; /* 1: in compare.py's full grid by default */
} sm_method;

/** Option overrides on top of a method (`--csp KEY=VALUE,...`). Unset
 *  fields are negative (0 for the enums). */
typedef struct sm_overrides {
    unsigned tensors;   /* bit (1 << which) of the parameters the tensor
                           options apply to; 0 = all three */
    int32_t sensing, solver, correction, granularity, support; /* 0: unset */
    int32_t redraw, window, normalize;                /* -1: unset */
    int32_t nm_n, nm_m;                               /* N:M (0: unset) */
    double rho, damping, alpha, shrink, adapt;        /* < 0: unset */
    char text[256];                                   /* the spec, for the record */
} sm_overrides;

/** The method called `name`, or NULL. */
const sm_method *sm_find(const char *name);

/** Number of methods, and the i-th (0 <= i < sm_count()). */
int sm_count(void);
const sm_method *sm_at(int i);

/** Clear @p ov (nothing overridden). */
void sm_overrides_init(sm_overrides *ov);

/** Parse "KEY=VALUE[,KEY=VALUE...]" into @p ov. Keys: sensing
 *  (identity|gaussian|rademacher|activations), solver (omp|ista|fista),
 *  correction (none|full|blend), support (solver|magnitude), alpha, rho,
 *  damping, shrink, redraw (0|1),
 *  window (observe_window), granularity (row|tensor), tensors (ih, hh and
 *  out joined by '+'), adapt (the adaptive schedule's bound,
 *  CSP_X_ADAPT_BOUND, pruner-wide; 0 = off). Returns 0, or -1 with a
 *  message in @p err. */
int sm_parse_overrides(const char *spec, sm_overrides *ov, char *err, size_t errlen);

/** The method's configuration with @p ov (may be NULL) applied on top. A
 *  tensor given a non-identity sensing operator or a shrink by @p ov gets
 *  ROW granularity, which CSP needs. */
csp_status sm_configure_pruner(const sm_method *m, const sm_overrides *ov, sm_config *c);
csp_status sm_configure_tensor(const sm_method *m, const sm_overrides *ov, int which,
                               csp_pruner_tensor_options *to, sm_experimental *x);

/** Clear @p x (nothing set). */
void sm_experimental_init(sm_experimental *x);

/** Set the parameters of @p x that are set on tensor @p index (-1: the
 *  pruner's defaults) of @p pruner. */
csp_status sm_apply_experimental(csp_pruner *pruner, int32_t index, const sm_experimental *x);

/** Granularity that a method's configuration (with @p ov, may be NULL)
 *  gives prunable parameter `which` (for the expected-nnz check); 0 when it
 *  cannot tell. */
int32_t sm_granularity(const sm_method *m, const sm_overrides *ov, int which);

#endif /* SP_METHODS_H */
