/* Checkpoint sections of the CSP state (lib/prune/cs.c): the CSP
 * configuration ("CSPC", compared on load), the activation accumulators of
 * pruner-owned operators ("SENS"), the ISTA/FISTA warm-start lambdas
 * ("WARM") and the statistics ("STAT"). Random operators need no section:
 * Phi is a pure function of (seed, tensor, event key). Layouts in
 * docs/formats.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "sensing/sensing_internal.h"

static csp_status corrupt(csp__ckpt_load *l, const char *section, const char *what) {
    return csp__error(l->pruner->ctx, CSP_E_CORRUPT, "csp_pruner_load: section %s: %s", section,
                      what);
}

static const char *tname(const csp__ptensor *pt) {
    return pt->weight->name != NULL ? pt->weight->name : "";
}

/* ---- CSPC: the CSP configuration --------------------------------------------- */

#define CSPC_HEAD 32u
#define CSPC_REC 56u

static uint64_t cspc_size(const csp_pruner *p) {
    return CSPC_HEAD + (uint64_t)p->num_tensors * CSPC_REC;
}

static void cspc_write(const csp_pruner *p, csp__wbuf *w) {
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    csp__w_i32(w, p->observe_window);
    csp__w_i32(w, p->solver_max_iter);
    csp__w_f64(w, p->solver_tol);
    csp__w_u64(w, p->ctx->seed);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        const csp__csconf *c = &pt->conf;
        csp__w_u8(w, pt->cs != NULL);
        csp__w_u8(w, pt->cs != NULL && pt->cs->attached != NULL);
        csp__w_u8(w, (uint8_t)(c->redraw != 0));
        csp__w_u8(w, 0);
        csp__w_i32(w, c->sensing);
        csp__w_i32(w, c->solver);
        csp__w_i32(w, c->correction);
        csp__w_i32(w, c->block_size);
        csp__w_i32(w, c->support);
        csp__w_f64(w, c->rho);
        csp__w_f64(w, c->damping);
        csp__w_f64(w, c->alpha);
        csp__w_f64(w, c->shrink);
    }
}

static csp_status differs_i(csp__ckpt_load *l, int32_t i, const char *what, long long file,
                            long long mine) {
    const csp__ptensor *pt = &l->pruner->tensors[i];
    return csp__error(l->pruner->ctx, CSP_E_STATE,
                      "csp_pruner_load: tensor %d ('%s'): CSP %s differs: checkpoint %lld, "
                      "pruner %lld",
                      (int)i, tname(pt), what, file, mine);
}

static csp_status differs_f(csp__ckpt_load *l, int32_t i, const char *what, double file,
                            double mine) {
    if (i < 0)
        return csp__error(l->pruner->ctx, CSP_E_STATE,
                          "csp_pruner_load: the pruner's %s differs: checkpoint %.17g, pruner "
                          "%.17g",
                          what, file, mine);
    const csp__ptensor *pt = &l->pruner->tensors[i];
    return csp__error(l->pruner->ctx, CSP_E_STATE,
                      "csp_pruner_load: tensor %d ('%s'): CSP %s differs: checkpoint %.17g, "
                      "pruner %.17g",
                      (int)i, tname(pt), what, file, mine);
}

static const char *cs_text(int has_cs, int attached) {
    return !has_cs ? "GMP" : attached ? "CSP with a host operator" : "CSP with its own operator";
}

static csp_status cspc_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count = csp__r_u32(&r);
    (void)csp__r_u32(&r);
    int32_t window = csp__r_i32(&r), max_iter = csp__r_i32(&r);
    double tol = csp__r_f64(&r);
    uint64_t seed = csp__r_u64(&r);
    if (!r.ok || l->len != CSPC_HEAD + (uint64_t)count * CSPC_REC)
        return corrupt(l, "CSPC", "wrong length");
    if ((int64_t)count != (int64_t)p->num_tensors)
        return corrupt(l, "CSPC", "tensor count differs from PRUN's");
    if (window != p->observe_window)
        return differs_f(l, -1, "observe_window", window, p->observe_window);
    if (max_iter != p->solver_max_iter)
        return differs_f(l, -1, "solver_max_iter", max_iter, p->solver_max_iter);
    if (tol != p->solver_tol)
        return differs_f(l, -1, "solver_tol", tol, p->solver_tol);
    /* The seed keys the random operators' Phi: it matters when one is used. */
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        bool random = pt->cs != NULL && pt->cs->owned != NULL &&
                      (csp_sensing_kind(pt->cs->owned) == CSP_SENSING_GAUSSIAN ||
                       csp_sensing_kind(pt->cs->owned) == CSP_SENSING_RADEMACHER);
        if (random && seed != p->ctx->seed)
            return csp__error(p->ctx, CSP_E_STATE,
                              "csp_pruner_load: the context seed differs: checkpoint %llu, "
                              "context %llu (it keys tensor %d's random sensing operator)",
                              (unsigned long long)seed, (unsigned long long)p->ctx->seed,
                              (int)i);
    }
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__ptensor *pt = &p->tensors[i];
        const csp__csconf *c = &pt->conf;
        int has_cs = csp__r_u8(&r), attached = csp__r_u8(&r), redraw = csp__r_u8(&r);
        (void)csp__r_u8(&r);
        int32_t sensing = csp__r_i32(&r), solver = csp__r_i32(&r);
        int32_t correction = csp__r_i32(&r), block = csp__r_i32(&r);
        int32_t support = csp__r_i32(&r);
        double rho = csp__r_f64(&r), damping = csp__r_f64(&r);
        double alpha = csp__r_f64(&r), shrink = csp__r_f64(&r);
        if (sensing != c->sensing)
            return differs_i(l, i, "sensing kind", sensing, c->sensing);
        if (shrink != c->shrink)
            return differs_f(l, i, "shrink", shrink, c->shrink);
        if (has_cs != (pt->cs != NULL) ||
            attached != (pt->cs != NULL && pt->cs->attached != NULL))
            return csp__error(p->ctx, CSP_E_STATE,
                              "csp_pruner_load: tensor %d ('%s'): CSP state differs: checkpoint "
                              "%s, pruner %s (attach host operators with "
                              "csp_pruner_set_sensing() before loading)",
                              (int)i, tname(pt), cs_text(has_cs, attached),
                              cs_text(pt->cs != NULL, pt->cs != NULL && pt->cs->attached != NULL));
        if (pt->cs == NULL)
            continue; /* GMP: the rest is not used */
        if (solver != c->solver)
            return differs_i(l, i, "solver", solver, c->solver);
        if (correction != c->correction)
            return differs_i(l, i, "correction", correction, c->correction);
        if (support != c->support)
            return differs_i(l, i, "support", support, c->support);
        if (block != c->block_size && pt->weight->rank == 1)
            return differs_i(l, i, "block_size", block, c->block_size);
        if (redraw != (c->redraw != 0))
            return differs_i(l, i, "redraw", redraw, c->redraw != 0);
        if (rho != c->rho)
            return differs_f(l, i, "rho", rho, c->rho);
        if (damping != c->damping)
            return differs_f(l, i, "damping", damping, c->damping);
        if (alpha != c->alpha)
            return differs_f(l, i, "alpha", alpha, c->alpha);
    }
    return r.ok ? CSP_OK : corrupt(l, "CSPC", "truncated");
}

static void cspc_commit(csp__ckpt_load *l) { (void)l; /* configuration only */ }

/* ---- SENS: activation accumulators of pruner-owned operators ---------------------- */

/* The operator whose accumulator a checkpoint holds, or NULL: an owned
 * activations operator with nothing attached (attached ones are the host's). */
static csp_sensing *owned_activations(const csp__ptensor *pt) {
    if (pt->cs == NULL || pt->cs->attached != NULL || pt->cs->owned == NULL)
        return NULL;
    return csp_sensing_kind(pt->cs->owned) == CSP_SENSING_ACTIVATIONS ? pt->cs->owned : NULL;
}

static bool sens_present(const csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++)
        if (owned_activations(&p->tensors[i]) != NULL)
            return true;
    return false;
}

static uint64_t sens_size(const csp_pruner *p) {
    uint64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s != NULL)
            n += 16 + 8 * (uint64_t)csp_sensing_accumulator_len(s);
    }
    return n;
}

static void sens_write(const csp_pruner *p, csp__wbuf *w) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        int64_t len = csp_sensing_accumulator_len(s);
        csp__w_u32(w, (uint32_t)i);
        csp__w_u32(w, 0);
        csp__w_i64(w, len);
        for (int64_t k = 0; k < len; k++)
            csp__w_f64(w, csp__sensing_accumulator_at(s, k));
    }
}

/* Staged accumulators: one allocation, the records' doubles in order. */
typedef struct {
    double *data;
} sens_stage;

static csp_status sens_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp_context *ctx = p->ctx;
    uint64_t total = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s != NULL)
            total += (uint64_t)csp_sensing_accumulator_len(s);
    }
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    if (total > 0) {
        double *data = csp__malloc(ctx, (size_t)total * sizeof(double));
        if (data == NULL)
            return csp__error(ctx, CSP_E_NOMEM, "csp_pruner_load: out of memory for the "
                              "activation accumulators");
        l->stage = data;
    }
    double *at = l->stage;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        uint32_t index = csp__r_u32(&r);
        uint32_t zero = csp__r_u32(&r);
        int64_t len = csp__r_i64(&r);
        if (!r.ok || index != (uint32_t)i || len != csp_sensing_accumulator_len(s))
            return corrupt(l, "SENS", "records do not match the pruner's activation operators");
        if (zero != 0)
            return corrupt(l, "SENS", "a reserved field is not zero");
        const uint8_t *src = csp__r_take(&r, 8 * (uint64_t)len);
        if (src == NULL)
            return corrupt(l, "SENS", "truncated accumulator");
        for (int64_t k = 0; k < len; k++)
            at[k] = csp__bits_f64(csp__ld_u64(src + 8 * k));
        if (csp__sensing_check_accumulator(s, at, len, "accumulator") != CSP_OK) {
            char why[CSP_ERROR_MAX];
            snprintf(why, sizeof why, "%s", csp_context_last_error(ctx));
            return csp__error(ctx, CSP_E_CORRUPT, "csp_pruner_load: section SENS: tensor %d: %s",
                              (int)i, why);
        }
        /* What csp_sensing_read_accumulator() writes, exactly: S symmetric
         * bit for bit (the operator keeps one triangle) and N not -0, so
         * the section saves back to its own bytes. */
        int64_t n = csp_sensing_n(s);
        for (int64_t a = 0; a < n; a++)
            for (int64_t c = a + 1; c < n; c++)
                if (csp__ld_u64(src + 8 * (a * n + c)) != csp__ld_u64(src + 8 * (c * n + a)))
                    return csp__error(ctx, CSP_E_CORRUPT,
                                      "csp_pruner_load: section SENS: tensor %d: the sums are not "
                                      "exactly symmetric at (%lld, %lld)",
                                      (int)i, (long long)a, (long long)c);
        if (signbit(at[len - 1]))
            return corrupt(l, "SENS", "a negative row count");
        at += len;
    }
    if (r.pos != r.len)
        return corrupt(l, "SENS", "bytes after the last accumulator");
    return CSP_OK;
}

static void sens_commit(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    const double *at = l->stage;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        csp_sensing *s = owned_activations(&p->tensors[i]);
        if (s == NULL)
            continue;
        int64_t len = csp_sensing_accumulator_len(s);
        (void)csp_sensing_write_accumulator(s, at, len); /* checked: cannot fail */
        at += len;
    }
}

static csp_status sens_absent(csp__ckpt_load *l) {
    if (sens_present(l->pruner))
        return corrupt(l, "SENS", "missing, but the pruner has activation operators");
    return CSP_OK;
}

static void sens_release(csp__ckpt_load *l) {
    csp__free(l->pruner->ctx, l->stage);
    l->stage = NULL;
}

/* ---- WARM: ISTA/FISTA warm-start lambdas ------------------------------------------ */

static int64_t lambda_count(const csp__ptensor *pt) {
    if (pt->cs == NULL || pt->cs->lambda == NULL)
        return 0;
    return pt->cs->rows + (pt->cs->tail > 0);
}

static bool warm_present(const csp_pruner *p) {
    for (int32_t i = 0; i < p->num_tensors; i++)
        if (lambda_count(&p->tensors[i]) > 0)
            return true;
    return false;
}

static uint64_t warm_size(const csp_pruner *p) {
    uint64_t n = 0;
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c > 0)
            n += 16 + 8 * (uint64_t)c;
    }
    return n;
}

static void warm_write(const csp_pruner *p, csp__wbuf *w) {
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        csp__w_u32(w, (uint32_t)i);
        csp__w_u32(w, 0);
        csp__w_i64(w, c);
        for (int64_t k = 0; k < c; k++)
            csp__w_f64(w, p->tensors[i].cs->lambda[k]);
    }
}

static csp_status warm_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        uint32_t index = csp__r_u32(&r);
        uint32_t zero = csp__r_u32(&r);
        int64_t count = csp__r_i64(&r);
        if (!r.ok || index != (uint32_t)i || count != c)
            return corrupt(l, "WARM", "records do not match the pruner's ISTA/FISTA tensors");
        if (zero != 0)
            return corrupt(l, "WARM", "a reserved field is not zero");
        for (int64_t k = 0; k < c; k++) {
            double v = csp__r_f64(&r);
            if (!r.ok || !(v >= 0.0) || !isfinite(v))
                return corrupt(l, "WARM", "a lambda is truncated, negative or not finite");
        }
    }
    if (r.pos != r.len)
        return corrupt(l, "WARM", "bytes after the last record");
    return CSP_OK;
}

static void warm_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        int64_t c = lambda_count(&p->tensors[i]);
        if (c == 0)
            continue;
        (void)csp__r_u64(&r);
        (void)csp__r_u64(&r);
        for (int64_t k = 0; k < c; k++)
            p->tensors[i].cs->lambda[k] = csp__r_f64(&r);
    }
}

static csp_status warm_absent(csp__ckpt_load *l) {
    if (warm_present(l->pruner))
        return corrupt(l, "WARM", "missing, but the pruner has ISTA/FISTA tensors");
    return CSP_OK;
}

/* ---- STAT: statistics ----------------------------------------------------------- */

#define STAT_HEAD 48u
#define STAT_REC 72u

static uint64_t stat_size(const csp_pruner *p) {
    return STAT_HEAD + (uint64_t)p->num_tensors * STAT_REC;
}

static void stat_write(const csp_pruner *p, csp__wbuf *w) {
    const csp__pstats *s = &p->stats;
    csp__w_i64(w, s->steps);
    csp__w_i64(w, s->events);
    csp__w_f64(w, s->last_event_seconds);
    csp__w_f64(w, s->event_seconds);
    csp__w_f64(w, s->total_seconds);
    csp__w_u32(w, (uint32_t)p->num_tensors);
    csp__w_u32(w, 0);
    for (int32_t i = 0; i < p->num_tensors; i++) {
        const csp__tstats *t = &p->tensors[i].stats;
        csp__w_f64(w, t->weight_error);
        csp__w_f64(w, t->sensing_error);
        csp__w_i64(w, t->iterations);
        csp__w_i64(w, t->iterations_max);
        csp__w_i64(w, t->not_converged);
        csp__w_i64(w, t->damped);
        csp__w_i64(w, t->events);
        csp__w_f64(w, t->event_seconds);
        csp__w_f64(w, t->total_seconds);
    }
}

static bool finite_nonneg(double v) { return v >= 0.0 && isfinite(v); }

static void stat_parse(csp__rbuf *r, csp__pstats *ps, uint32_t *count, uint32_t *zero) {
    ps->steps = csp__r_i64(r);
    ps->events = csp__r_i64(r);
    ps->last_event_seconds = csp__r_f64(r);
    ps->event_seconds = csp__r_f64(r);
    ps->total_seconds = csp__r_f64(r);
    *count = csp__r_u32(r);
    *zero = csp__r_u32(r);
}

static void stat_parse_t(csp__rbuf *r, csp__tstats *t) {
    t->weight_error = csp__r_f64(r);
    t->sensing_error = csp__r_f64(r);
    t->iterations = csp__r_i64(r);
    t->iterations_max = csp__r_i64(r);
    t->not_converged = csp__r_i64(r);
    t->damped = csp__r_i64(r);
    t->events = csp__r_i64(r);
    t->event_seconds = csp__r_f64(r);
    t->total_seconds = csp__r_f64(r);
}

static csp_status stat_check(csp__ckpt_load *l) {
    const csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    csp__pstats ps;
    uint32_t count, zero;
    stat_parse(&r, &ps, &count, &zero);
    if (!r.ok || (int64_t)count != (int64_t)p->num_tensors ||
        l->len != STAT_HEAD + (uint64_t)count * STAT_REC)
        return corrupt(l, "STAT", "wrong length or tensor count");
    if (zero != 0)
        return corrupt(l, "STAT", "a reserved field is not zero");
    bool ok = ps.steps >= 0 && ps.events >= 0 && finite_nonneg(ps.last_event_seconds) &&
              finite_nonneg(ps.event_seconds) && finite_nonneg(ps.total_seconds);
    for (int32_t i = 0; i < p->num_tensors && ok; i++) {
        csp__tstats t;
        stat_parse_t(&r, &t);
        ok = finite_nonneg(t.weight_error) && finite_nonneg(t.sensing_error) &&
             t.iterations >= 0 && t.iterations_max >= 0 && t.not_converged >= 0 &&
             t.damped >= 0 && t.events >= 0 && finite_nonneg(t.event_seconds) &&
             finite_nonneg(t.total_seconds);
    }
    return ok ? CSP_OK : corrupt(l, "STAT", "a statistic is negative or not finite");
}

static void stat_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    csp__rbuf r;
    csp__r_init(&r, l->payload, l->len);
    uint32_t count, zero;
    stat_parse(&r, &p->stats, &count, &zero);
    for (int32_t i = 0; i < p->num_tensors; i++)
        stat_parse_t(&r, &p->tensors[i].stats);
}

/* A file without statistics: start them from zero. */
static void stat_absent_commit(csp__ckpt_load *l) {
    csp_pruner *p = l->pruner;
    memset(&p->stats, 0, sizeof p->stats);
    for (int32_t i = 0; i < p->num_tensors; i++)
        memset(&p->tensors[i].stats, 0, sizeof p->tensors[i].stats);
}

/* ---- the codecs ------------------------------------------------------------------ */

const csp__ckpt_codec csp__ckpt_codec_cspc = {
    .tag = CSP__TAG('C', 'S', 'P', 'C'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .size = cspc_size, .write = cspc_write, .check = cspc_check, .commit = cspc_commit,
    .name = "CSP configuration"};

const csp__ckpt_codec csp__ckpt_codec_sens = {
    .tag = CSP__TAG('S', 'E', 'N', 'S'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .present = sens_present, .size = sens_size, .write = sens_write, .check = sens_check,
    .commit = sens_commit, .absent_check = sens_absent, .release = sens_release,
    .name = "activation accumulators"};

const csp__ckpt_codec csp__ckpt_codec_warm = {
    .tag = CSP__TAG('W', 'A', 'R', 'M'), .version = 1, .flags = CSP__SECTION_REQUIRED,
    .present = warm_present, .size = warm_size, .write = warm_write, .check = warm_check,
    .commit = warm_commit, .absent_check = warm_absent, .name = "warm-start lambdas"};

const csp__ckpt_codec csp__ckpt_codec_stat = {
    .tag = CSP__TAG('S', 'T', 'A', 'T'), .version = 1, .flags = 0, .size = stat_size,
    .write = stat_write, .check = stat_check, .commit = stat_commit,
    .absent_commit = stat_absent_commit, .name = "statistics"};
