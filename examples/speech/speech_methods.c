/* speech_methods.c - method name -> libcsp pruner configuration, see
 * speech_methods.h.
 *
 * Adding a method: one entry in methods[] below, with configure_pruner /
 * configure_tensor functions that set the granularity (CSP needs ROW), the
 * sensing operator, solver, correction and their parameters. speech_demo
 * and compare.py pick it up by name. "csp" runs the library's defaults
 * (csp_pruner_options_init()), which are the identity operator (GMP), so
 * its is_csp is 0; should the defaults become a CSP configuration, that
 * entry's summary and is_csp change and compare.py's reduced grid runs it.
 */
#include "speech_methods.h"

#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"

/* Activation sensing observes the forward passes of the last SM_ACT_WINDOW
 * steps before each event (of about 14 steps between events here): 160
 * pooled vectors for W_out, about 12,000 frames for W_ih and W_hh. */
#define SM_ACT_WINDOW 5

static csp_status gran_row(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_ROW;
    return CSP_OK;
}

static csp_status gran_tensor(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_TENSOR;
    return CSP_OK;
}

static csp_status gran_global(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_GLOBAL;
    return CSP_OK;
}

/* ---- CSP variants (every one ROW: the CSP problems are per row) ---------- */

/* Paper-literal: classic CS measurements y = Phi w, Gaussian Phi with
 * m = n/2 rows, one Phi per tensor, OMP support. */
static csp_status gauss(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_ROW;
    c->po.sensing.kind = CSP_SENSING_GAUSSIAN;
    c->po.sensing.rho = 0.5;
    c->po.solver.method = CSP_SOLVER_OMP;
    c->po.correction = CSP_CORRECTION_NONE;
    return CSP_OK;
}

static csp_status gauss_refit(sm_config *c)
{
    gauss(c);
    c->po.correction = CSP_CORRECTION_FULL;
    return CSP_OK;
}

/* Output-preserving: G = X^T X / N + 1% of its mean diagonal, X the layer's
 * inputs over the last SM_ACT_WINDOW forward passes before each event. */
static csp_status act(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_ROW;
    c->po.sensing.kind = CSP_SENSING_ACTIVATIONS;
    c->po.sensing.damping = 0.01;
    c->po.solver.method = CSP_SOLVER_OMP;
    c->po.correction = CSP_CORRECTION_NONE;
    c->x.window = SM_ACT_WINDOW;
    return CSP_OK;
}

static csp_status act_refit(sm_config *c)
{
    act(c);
    c->po.correction = CSP_CORRECTION_FULL;
    return CSP_OK;
}

static csp_status act_blend(sm_config *c)
{
    act(c);
    c->po.correction = CSP_CORRECTION_BLEND;
    c->x.alpha = 0.2;
    return CSP_OK;
}

static csp_status act_fista(sm_config *c)
{
    act(c);
    c->po.solver.method = CSP_SOLVER_FISTA;
    return CSP_OK;
}

/* GMP's support (the k largest |w| per row) with an OBS-style compensation:
 * the kept weights move a fraction alpha of the way to the least-squares
 * refit through the activation Gram (support = CSP_SUPPORT_MAGNITUDE). */
static csp_status obs(sm_config *c)
{
    act(c);
    c->x.support = CSP_SUPPORT_MAGNITUDE;
    c->po.correction = CSP_CORRECTION_BLEND;
    c->x.alpha = 0.2;
    return CSP_OK;
}

/* Identity operator (GMP's support) plus the library's between-event shrink
 * of the weights the next event removes. */
static csp_status shrink(sm_config *c)
{
    c->po.granularity = CSP_GRANULARITY_ROW;
    c->x.shrink = 0.01;
    return CSP_OK;
}

static const sm_method methods[] = {
    {"dense", "no pruning (the reference)", 0, 0, 1, NULL, NULL, 1},
    {"gmp", "gradual magnitude pruning, row-balanced budget (round(s*cols) zeros per row)",
     1, 0, 1, gran_row, NULL, 1},
    {"gmp-tensor", "gradual magnitude pruning, per-tensor budget", 1, 0, 1, gran_tensor, NULL, 1},
    {"gmp-global", "gradual magnitude pruning, one threshold over the three matrices", 1, 0, 1,
     gran_global, NULL, 0},
    {"csp",
     "the library's default configuration (csp_pruner_options_init): identity sensing, "
     "i.e. GMP with a per-tensor budget",
     1, 0, 1, NULL, NULL, 0},
    {"csp-gauss", "CSP, Gaussian Phi (rho 0.5, one per tensor), OMP support, no correction",
     1, 1, 1, gauss, NULL, 1},
    {"csp-gauss-refit", "CSP, Gaussian Phi (rho 0.5), OMP support, full least-squares refit",
     1, 1, 1, gauss_refit, NULL, 0},
    {"csp-act",
     "CSP, activation Gram (eps 1% of mean diag, last 5 passes before each event), OMP "
     "support, no correction",
     1, 1, 1, act, NULL, 1},
    {"csp-act-refit", "CSP, activation Gram, OMP support, full least-squares refit", 1, 1, 1,
     act_refit, NULL, 0},
    {"csp-act-blend", "CSP, activation Gram, OMP support, blended refit (alpha 0.2)", 1, 1, 1,
     act_blend, NULL, 0},
    {"csp-act-fista",
     "CSP, activation Gram, FISTA L1 support (lambda calibrated to k), no correction", 1, 1,
     1, act_fista, NULL, 0},
    {"csp-obs",
     "CSP, activation Gram, GMP's support (magnitude), blended refit (alpha 0.2): "
     "OBS-style compensation",
     1, 1, 1, obs, NULL, 1},
    {"csp-shrink",
     "identity sensing (GMP's support) + libcsp's between-event shrink (tau 0.01) of the "
     "weights the next event removes",
     1, 1, 1, shrink, NULL, 1},
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

/* ---- overrides ------------------------------------------------------------ */

void sm_overrides_init(sm_overrides *ov)
{
    memset(ov, 0, sizeof *ov);
    ov->redraw = -1;
    ov->window = -1;
    ov->normalize = -1;
    ov->rho = ov->damping = ov->alpha = ov->shrink = ov->adapt = -1.0;
}

static int word(const char *v, const char *const *names, const int32_t *vals, int n,
                int32_t *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = vals[i];
            return 0;
        }
    return -1;
}

static int number(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

int sm_parse_overrides(const char *spec, sm_overrides *ov, char *err, size_t errlen)
{
    static const char *const sens_n[] = {"identity", "gaussian", "rademacher", "activations"};
    static const int32_t sens_v[] = {CSP_SENSING_IDENTITY, CSP_SENSING_GAUSSIAN,
                                     CSP_SENSING_RADEMACHER, CSP_SENSING_ACTIVATIONS};
    static const char *const solv_n[] = {"omp", "ista", "fista", "sweep"};
    static const int32_t solv_v[] = {CSP_SOLVER_OMP, CSP_SOLVER_ISTA, CSP_SOLVER_FISTA,
                                     CSP_SOLVER_SWEEP};
    static const char *const corr_n[] = {"none", "full", "blend"};
    static const int32_t corr_v[] = {CSP_CORRECTION_NONE, CSP_CORRECTION_FULL,
                                     CSP_CORRECTION_BLEND};
    static const char *const supp_n[] = {"solver", "magnitude", "wanda"};
    static const int32_t supp_v[] = {CSP_SUPPORT_SOLVER, CSP_SUPPORT_MAGNITUDE,
                                     CSP_SUPPORT_WANDA};
    static const char *const gran_n[] = {"row", "tensor", "nm"};
    static const int32_t gran_v[] = {CSP_GRANULARITY_ROW, CSP_GRANULARITY_TENSOR,
                                     CSP_GRANULARITY_NM};
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "--csp: too long");
        return -1;
    }
    strcpy(buf, spec);
    snprintf(ov->text, sizeof ov->text, "%s", spec);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v) {
            snprintf(err, errlen, "--csp: %s is not KEY=VALUE", kv);
            return -1;
        }
        *v++ = '\0';
        double d = 0.0;
        int bad = 0;
        if (!strcmp(kv, "sensing"))
            bad = word(v, sens_n, sens_v, 4, &ov->sensing);
        else if (!strcmp(kv, "solver"))
            bad = word(v, solv_n, solv_v, 4, &ov->solver);
        else if (!strcmp(kv, "correction"))
            bad = word(v, corr_n, corr_v, 3, &ov->correction);
        else if (!strcmp(kv, "support"))
            bad = word(v, supp_n, supp_v, 3, &ov->support);
        else if (!strcmp(kv, "granularity"))
            bad = word(v, gran_n, gran_v, 3, &ov->granularity);
        else if (!strcmp(kv, "alpha"))
            bad = number(v, 0.0, 1.0, &ov->alpha);
        else if (!strcmp(kv, "rho"))
            bad = number(v, 1e-6, 64.0, &ov->rho);
        else if (!strcmp(kv, "damping"))
            bad = number(v, 0.0, 1e6, &ov->damping);
        else if (!strcmp(kv, "shrink"))
            bad = number(v, 0.0, 1.0, &ov->shrink);
        else if (!strcmp(kv, "redraw"))
            bad = number(v, 0.0, 1.0, &d) || (d != 0.0 && d != 1.0), ov->redraw = (int32_t)d;
        else if (!strcmp(kv, "normalize"))
            bad = number(v, 0.0, 1.0, &d) || (d != 0.0 && d != 1.0), ov->normalize = (int32_t)d;
        else if (!strcmp(kv, "nm")) {
            int n = 0, m = 0, used = 0;
            bad = sscanf(v, "%d:%d%n", &n, &m, &used) != 2 || v[used] || n < 1 || m < 2 ||
                  n >= m;
            ov->nm_n = n;
            ov->nm_m = m;
        } else if (!strcmp(kv, "adapt"))
            bad = number(v, 0.0, 1000.0, &ov->adapt);
        else if (!strcmp(kv, "window"))
            bad = number(v, 0.0, 1e9, &d) || d != floor(d), ov->window = (int32_t)d;
        else if (!strcmp(kv, "tensors")) {
            ov->tensors = 0;
            char *save2 = NULL;
            for (char *t = strtok_r(v, "+", &save2); t && !bad; t = strtok_r(NULL, "+", &save2))
                if (!strcmp(t, "ih"))
                    ov->tensors |= 1u << SP_P_W_IH;
                else if (!strcmp(t, "hh"))
                    ov->tensors |= 1u << SP_P_W_HH;
                else if (!strcmp(t, "out"))
                    ov->tensors |= 1u << SP_P_W_OUT;
                else
                    bad = 1;
            bad |= ov->tensors == 0;
        } else {
            snprintf(err, errlen,
                     "--csp: unknown key %s (sensing, solver, correction, support, alpha, rho, "
                     "damping, shrink, redraw, window, normalize, granularity, nm, tensors, "
                     "adapt)",
                     kv);
            return -1;
        }
        if (bad) {
            snprintf(err, errlen, "--csp: bad value for %s: %s", kv, v);
            return -1;
        }
    }
    return 0;
}

void sm_experimental_init(sm_experimental *x)
{
    x->shrink = x->alpha = x->support = x->redraw = x->window = x->adapt = NAN;
}

csp_status sm_apply_experimental(csp_pruner *pruner, int32_t index, const sm_experimental *x)
{
    const double v[5] = {x->shrink, x->alpha, x->support, x->redraw, x->window};
    static const int32_t param[5] = {CSP_X_SHRINK, CSP_X_ALPHA, CSP_X_SUPPORT, CSP_X_REDRAW,
                                     CSP_X_OBSERVE_WINDOW};
    csp_status st = CSP_OK;
    for (int k = 0; k < 5 && st == CSP_OK; k++)
        if (!isnan(v[k]) && (index < 0 || param[k] != CSP_X_OBSERVE_WINDOW))
            st = csp_pruner_set_experimental(pruner, index, param[k], v[k]);
    if (st == CSP_OK && index < 0 && !isnan(x->adapt))
        st = csp_pruner_set_experimental(pruner, -1, CSP_X_ADAPT_BOUND, x->adapt);
    return st;
}

csp_status sm_configure_pruner(const sm_method *m, const sm_overrides *ov, sm_config *c)
{
    sm_experimental_init(&c->x);
    csp_status st = m->configure_pruner ? m->configure_pruner(c) : CSP_OK;
    if (st == CSP_OK && ov && ov->window >= 0)
        c->x.window = ov->window;
    if (st == CSP_OK && ov && ov->adapt >= 0)
        c->x.adapt = ov->adapt;
    if (st == CSP_OK && ov && ov->sensing == CSP_SENSING_ACTIVATIONS && ov->window < 0 &&
        isnan(c->x.window))
        c->x.window = SM_ACT_WINDOW;
    return st;
}

csp_status sm_configure_tensor(const sm_method *m, const sm_overrides *ov, int which,
                               csp_pruner_tensor_options *to, sm_experimental *x)
{
    sm_experimental_init(x);
    csp_status st = m->configure_tensor ? m->configure_tensor(which, to, x) : CSP_OK;
    if (st != CSP_OK || !ov || (ov->tensors && !(ov->tensors & (1u << which))))
        return st;
    if (ov->sensing)
        to->sensing.kind = ov->sensing;
    if (ov->solver)
        to->solver.method = ov->solver;
    if (ov->correction)
        to->correction = ov->correction;
    if (ov->support)
        x->support = ov->support;
    if (ov->redraw >= 0)
        x->redraw = ov->redraw;
    if (ov->rho >= 0)
        to->sensing.rho = ov->rho;
    if (ov->damping >= 0)
        to->sensing.damping = ov->damping;
    if (ov->alpha >= 0)
        x->alpha = ov->alpha;
    if (ov->shrink >= 0)
        x->shrink = ov->shrink;
    if (ov->normalize >= 0)
        to->solver.normalize = ov->normalize;
    if (ov->nm_m) {
        to->nm_n = ov->nm_n;
        to->nm_m = ov->nm_m;
    }
    if (ov->granularity)
        to->granularity = ov->granularity;
    else if ((ov->sensing && ov->sensing != CSP_SENSING_IDENTITY) || ov->shrink > 0)
        to->granularity = CSP_GRANULARITY_ROW;
    return CSP_OK;
}

/* The options a parameter ends up with: through a throwaway pruner of the
 * configuration (a tensor's options start as a copy of its pruner's). */
static int resolve(const sm_method *m, const sm_overrides *ov, int which, int32_t *gran,
                   int32_t *sensing)
{
    sm_config c;
    csp_pruner_tensor_options to;
    sm_experimental x;
    csp_context *ctx = NULL;
    csp_schedule *sched = NULL;
    csp_pruner *p = NULL;
    csp_schedule_options so;
    int ok = csp_pruner_options_init(&c.po, sizeof c.po) == CSP_OK &&
             sm_configure_pruner(m, ov, &c) == CSP_OK && csp_context_create(&ctx, NULL) == CSP_OK &&
             csp_schedule_options_init(&so, sizeof so) == CSP_OK &&
             (so.kind = CSP_SCHEDULE_CONSTANT, csp_schedule_create(&sched, ctx, &so) == CSP_OK) &&
             csp_pruner_create(&p, ctx, sched, &c.po) == CSP_OK &&
             csp_pruner_tensor_options_init(&to, sizeof to, p) == CSP_OK &&
             sm_configure_tensor(m, ov, which, &to, &x) == CSP_OK;
    if (ok) {
        *gran = to.granularity;
        *sensing = to.sensing.kind;
    }
    csp_pruner_free(p);
    csp_schedule_free(sched);
    csp_context_free(ctx);
    return ok ? 0 : -1;
}

int32_t sm_granularity(const sm_method *m, const sm_overrides *ov, int which)
{
    if (!m || !m->prunes)
        return 0;
    int32_t g, s;
    return resolve(m, ov, which, &g, &s) == 0 ? g : 0;
}
