/* speech_methods.c - method name -> libcsp pruner configuration, see
 * speech_methods.h.
 *
 * PLUG-IN POINT for the CSP variants (issue 5): add one entry per variant
 * below (e.g. "csp-random-omp", "csp-act-omp", "csp-random-refit", ...)
 * whose configure_pruner / configure_tensor set the sensing operator,
 * solver and correction fields, and an observe function for activation
 * sensing; set SM_LIBRARY_HAS_CSP to 1 once csp_pruner_options_init() gives
 * a CSP configuration, so that "csp" (the library default) counts as CSP.
 * Nothing else in speech_demo.c or compare.py needs to change.
 */
#include "speech_methods.h"

#include <string.h>

#include "lstm.h"

/* 1 once the library's default pruner configuration is compressed-sensing
 * pruning; until then "csp" runs the defaults (GMP, per-tensor budget) and
 * says so. */
#ifndef SM_LIBRARY_HAS_CSP
#define SM_LIBRARY_HAS_CSP 0
#endif

static csp_status gran_row(csp_pruner_options *po)
{
    po->granularity = CSP_GRANULARITY_ROW;
    return CSP_OK;
}

static csp_status gran_tensor(csp_pruner_options *po)
{
    po->granularity = CSP_GRANULARITY_TENSOR;
    return CSP_OK;
}

static csp_status gran_global(csp_pruner_options *po)
{
    po->granularity = CSP_GRANULARITY_GLOBAL;
    return CSP_OK;
}

static const sm_method methods[] = {
    {"dense", "no pruning (the reference)", 0, 0, 1, NULL, NULL, NULL},
    {"gmp", "gradual magnitude pruning, row-balanced budget (round(s*cols) zeros per row)",
     1, 0, 1, gran_row, NULL, NULL},
    {"gmp-tensor", "gradual magnitude pruning, per-tensor budget", 1, 0, 1, gran_tensor, NULL,
     NULL},
    {"gmp-global", "gradual magnitude pruning, one threshold over the three matrices", 1, 0, 1,
     gran_global, NULL, NULL},
    {"csp",
#if SM_LIBRARY_HAS_CSP
     "the library's default CSP configuration (csp_pruner_options_init)",
#else
     "the library's default configuration (csp_pruner_options_init); this libcsp has no CSP "
     "yet, so it is GMP with a per-tensor budget",
#endif
     1, SM_LIBRARY_HAS_CSP, 1, NULL, NULL, NULL},
};

#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

int sm_count(void) { return N_METHODS; }

const sm_method *sm_at(int i) { return i >= 0 && i < N_METHODS ? &methods[i] : NULL; }

const sm_method *sm_find(const char *name)
{
    for (int i = 0; name && i < N_METHODS; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

int32_t sm_granularity(const sm_method *m, int which)
{
    if (!m || !m->prunes)
        return 0;
    csp_pruner_options po;
    csp_pruner_tensor_options to;
    if (csp_pruner_options_init(&po, sizeof po) != CSP_OK ||
        csp_pruner_tensor_options_init(&to, sizeof to) != CSP_OK)
        return 0;
    if (m->configure_pruner && m->configure_pruner(&po) != CSP_OK)
        return 0;
    if (m->configure_tensor && m->configure_tensor(which, &to) != CSP_OK)
        return 0;
    return to.granularity ? to.granularity : po.granularity;
}
