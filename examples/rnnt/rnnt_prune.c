/* rnnt_prune.c - every libcsp call of rnnt_demo (see rnnt_prune.h). */
#include "rnnt_prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csp/csp.h>

#include "lstm.h" /* SP_P_W_IH, SP_P_W_HH, SP_P_W_OUT: the speech methods' slots */

struct rp_pruning {
    csp_context *ctx;
    csp_pruner *pruner;
    const sm_method *method;
    const sm_overrides *ov;
    csp_tensor *tensors[4 * RN_MAX_PARAMS];
    int32_t index_of[RN_MAX_PARAMS]; /* pruner index of a parameter, or -1 */
    int any_activations;
    int64_t want_step;
    int32_t want;
    rp_times t;
    csp_status error;
    const char *error_call;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rp_check_version(void)
{
    if (CSP_CHECK_VERSION() == CSP_OK)
        return 0;
    fprintf(stderr, "libcsp %s does not match the header %s\n", csp_version_string(),
            CSP_VERSION_STRING);
    return -1;
}

const char *rp_version(void) { return csp_version_string(); }

static int slot_of(int kind)
{
    return kind == RN_KIND_IH ? SP_P_W_IH : kind == RN_KIND_HH ? SP_P_W_HH : SP_P_W_OUT;
}

static csp_status add_parameter(rp_pruning *p, int k, rn_param *par)
{
    const int64_t shape[2] = {par->rows, par->cols};
    float *bufs[4] = {par->data, par->exp_avg, par->exp_avg_sq, par->grad};
    static const char *const suffix[4] = {"", ".exp_avg", ".exp_avg_sq", ".grad"};
    csp_tensor **t = &p->tensors[4 * k];
    csp_status st = CSP_OK;
    for (int b = 0; b < 4 && st == CSP_OK; b++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", par->name, suffix[b]);
        st = csp_tensor_create(&t[b], p->ctx, bufs[b], CSP_DTYPE_F32, 2, shape, 0, name);
    }
    csp_pruner_tensor_options to;
    sm_experimental x;
    csp_pruner_tensor_options_init(&to, sizeof to, p->pruner);
    int32_t index = -1;
    if (st == CSP_OK)
        st = sm_configure_tensor(p->method, p->ov, slot_of(par->kind), &to, &x);
    if (st == CSP_OK)
        st = csp_pruner_add_tensor(p->pruner, t[0], &to, &index);
    if (st == CSP_OK)
        st = sm_apply_experimental(p->pruner, index, &x);
    if (st == CSP_OK)
        st = csp_pruner_add_companion(p->pruner, index, t[1]);
    if (st == CSP_OK)
        st = csp_pruner_add_companion(p->pruner, index, t[2]);
    if (st == CSP_OK)
        st = csp_pruner_add_gradient(p->pruner, index, t[3]);
    p->index_of[k] = index;
    if (st == CSP_OK) {
        csp_sensing *s = NULL;
        if (csp_pruner_sensing(p->pruner, index, &s) == CSP_OK && s &&
            csp_sensing_kind(s) == CSP_SENSING_ACTIVATIONS)
            p->any_activations = 1;
    }
    return st;
}

static csp_status schedule(rp_pruning *p, rp_schedule *s, csp_schedule **out)
{
    csp_schedule_options so;
    csp_schedule_options_init(&so, sizeof so);
    if (s->one_shot) {
        /* One-shot pruning (docs/guide.md): one event, at step 0. */
        so.kind = CSP_SCHEDULE_CONSTANT;
        so.final_sparsity = s->sparsity;
        so.begin_step = so.end_step = 0;
        so.frequency = 1;
        s->begin_step = s->end_step = 0;
        s->frequency = 1;
        return csp_schedule_create(out, p->ctx, &so);
    }
    so.kind = CSP_SCHEDULE_POLYNOMIAL;
    so.initial_sparsity = 0.0;
    so.final_sparsity = s->sparsity;
    so.exponent = s->exponent;
    so.begin_step = (int64_t)llround(s->begin_frac * (double)s->total_steps);
    so.end_step = (int64_t)llround(s->end_frac * (double)s->total_steps);
    if (so.end_step > s->total_steps)
        so.end_step = s->total_steps;
    if (so.end_step < 1)
        so.end_step = 1;
    if (so.begin_step >= so.end_step)
        so.begin_step = so.end_step - 1;
    so.frequency = (int64_t)llround((double)(so.end_step - so.begin_step) / (double)s->events);
    if (so.frequency < 1)
        so.frequency = 1;
    s->begin_step = so.begin_step;
    s->end_step = so.end_step;
    s->frequency = so.frequency;
    return csp_schedule_create(out, p->ctx, &so);
}

static csp_status build(rp_pruning *p, rn_model *model, uint64_t seed, int threads,
                        rp_schedule *s)
{
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = seed;
    co.num_threads = threads;
    csp_status st = csp_context_create(&p->ctx, &co);
    if (st != CSP_OK)
        return st;
    csp_schedule *sched = NULL;
    sm_config cfg;
    csp_pruner_options_init(&cfg.po, sizeof cfg.po);
    if ((st = schedule(p, s, &sched)) == CSP_OK &&
        (st = sm_configure_pruner(p->method, p->ov, &cfg)) == CSP_OK &&
        (st = csp_pruner_create(&p->pruner, p->ctx, sched, &cfg.po)) == CSP_OK)
        st = sm_apply_experimental(p->pruner, -1, &cfg.x);
    csp_schedule_free(sched);
    for (int k = 0; k < model->nparams && st == CSP_OK; k++)
        if (model->p[k].prunable)
            st = add_parameter(p, k, &model->p[k]);
    return st;
}

int rp_create(rp_pruning **out, const sm_method *m, const sm_overrides *ov, rn_model *model,
              uint64_t seed, int threads, rp_schedule *s)
{
    *out = NULL;
    rp_pruning *p = (rp_pruning *)calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    p->method = m;
    p->ov = ov;
    p->want_step = -1;
    for (int k = 0; k < RN_MAX_PARAMS; k++)
        p->index_of[k] = -1;
    const csp_status st = build(p, model, seed, threads, s);
    if (st != CSP_OK) {
        fprintf(stderr, "pruner setup: %s: %s\n", csp_status_name(st),
                p->ctx ? csp_context_last_error(p->ctx) : "");
        rp_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void rp_free(rp_pruning *p)
{
    if (!p)
        return;
    csp_pruner_free(p->pruner);
    for (int k = 0; k < 4 * RN_MAX_PARAMS; k++)
        csp_tensor_free(p->tensors[k]);
    csp_context_free(p->ctx);
    free(p);
}

static void fail(rp_pruning *p, csp_status st, const char *call)
{
    if (!p->error) {
        p->error = st;
        p->error_call = call;
    }
}

int rp_wants_observe(rp_pruning *p, int64_t step)
{
    if (!p || !p->any_activations || p->error)
        return 0;
    if (p->want_step != step) {
        const csp_status st = csp_pruner_wants_observe(p->pruner, step, &p->want);
        if (st != CSP_OK) {
            fail(p, st, "csp_pruner_wants_observe");
            p->want = 0;
        }
        p->want_step = step;
        p->t.observed += p->want != 0;
    }
    return p->want != 0;
}

void rp_observe(void *user, int index, const float *x, int64_t rows, int64_t cols)
{
    rp_pruning *p = (rp_pruning *)user;
    if (p->error || index < 0 || index >= RN_MAX_PARAMS || p->index_of[index] < 0)
        return;
    const double t0 = now();
    csp_sensing *s = NULL;
    csp_status st = csp_pruner_sensing(p->pruner, p->index_of[index], &s);
    if (st == CSP_OK && s && csp_sensing_kind(s) == CSP_SENSING_ACTIVATIONS)
        st = csp_pruner_observe(p->pruner, p->index_of[index], x, rows, cols);
    p->t.observe_s += now() - t0;
    if (st < 0)
        fail(p, st, "csp_pruner_observe");
}

int rp_mask_gradients(rp_pruning *p)
{
    if (p->error)
        return -1;
    const double t0 = now();
    const csp_status st = csp_pruner_mask_gradients(p->pruner);
    p->t.mask_s += now() - t0;
    if (st < 0) {
        fail(p, st, "csp_pruner_mask_gradients");
        return rp_check(p);
    }
    return 0;
}

int rp_step(rp_pruning *p, int64_t step)
{
    if (p->error)
        return rp_check(p);
    const double t0 = now();
    const csp_status st = csp_step(p->pruner, step);
    const double dt = now() - t0;
    p->t.step_s += dt;
    p->t.calls++;
    if (st == CSP_PRUNED) {
        p->t.events++;
        p->t.event_s += dt;
        return 1;
    }
    if (st < 0) {
        fail(p, st, "csp_step");
        return rp_check(p);
    }
    return 0;
}

int rp_needs_activations(const rp_pruning *p) { return p && p->any_activations; }

void rp_add_observed(rp_pruning *p, int64_t passes)
{
    if (p)
        p->t.observed += passes;
}

int rp_one_shot(rp_pruning *p)
{
    if (p->error)
        return rp_check(p);
    const double t0 = now();
    const csp_status st = csp_step(p->pruner, 0);
    const double dt = now() - t0;
    p->t.step_s += dt;
    p->t.calls++;
    if (st == CSP_PRUNED) {
        p->t.events++;
        p->t.event_s += dt;
        return 0;
    }
    fprintf(stderr, "csp_step (one-shot event): %s: %s\n", csp_status_name(st),
            st < 0 ? csp_context_last_error(p->ctx) : "no event at step 0");
    return -1;
}

int rp_check(const rp_pruning *p)
{
    if (!p || !p->error)
        return 0;
    fprintf(stderr, "%s: %s: %s\n", p->error_call, csp_status_name(p->error),
            csp_context_last_error(p->ctx));
    return -1;
}

void rp_get_times(const rp_pruning *p, rp_times *t)
{
    if (p)
        *t = p->t;
    else
        memset(t, 0, sizeof *t);
}

/* Bytes of a dense run's layouts (no libcsp header): CSR = int32 row
 * pointers, uint16 column indices (cols < 65536), float32 values; bitmap =
 * one bit per weight + float32 values. */
static void dense_sizes(rp_tensor_report *r)
{
    const int64_t idx = r->cols < 65536 ? 2 : 4;
    r->csr_bytes = 4 * (r->rows + 1) + (idx + 4) * r->nnz;
    r->bitmap_bytes = (r->numel + 7) / 8 + 4 * r->nnz;
    r->export_ok = 1;
}

static int export_sizes(const rp_pruning *p, int32_t idx, const rn_param *par,
                        rp_tensor_report *r)
{
    csp_export_options eo;
    csp_export_stats es;
    csp_export_options_init(&eo, sizeof eo);
    csp_export_stats_init(&es, sizeof es);
    eo.format = CSP_EXPORT_BITMAP;
    if (csp_pruner_export_stats(p->pruner, idx, &eo, &es) != CSP_OK)
        return -1;
    r->bitmap_bytes = es.bytes;
    eo.format = CSP_EXPORT_CSR;
    int64_t size = 0;
    if (csp_pruner_export(p->pruner, idx, &eo, NULL, 0, &size) != CSP_OK)
        return -1;
    void *buf = malloc((size_t)size);
    float *back = (float *)malloc((size_t)par->size * sizeof *back);
    int rc = -1;
    if (buf && back && csp_pruner_export(p->pruner, idx, &eo, buf, size, &size) == CSP_OK &&
        csp_export_decode(p->ctx, buf, size, back, CSP_DTYPE_F32, par->cols,
                          par->size * (int64_t)sizeof *back) == CSP_OK) {
        r->csr_bytes = size;
        r->export_ok = memcmp(back, par->data, (size_t)par->size * sizeof *back) == 0;
        rc = 0;
    }
    free(buf);
    free(back);
    return rc;
}

static int mask_report(const rp_pruning *p, int32_t idx, const rn_param *par,
                       rp_tensor_report *r)
{
    uint8_t *mask = (uint8_t *)malloc((size_t)par->size);
    if (!mask || csp_pruner_nnz(p->pruner, idx, &r->nnz) != CSP_OK ||
        csp_pruner_mask_bytes(p->pruner, idx, mask, par->size) != CSP_OK) {
        free(mask);
        return -1;
    }
    for (int64_t i = 0; i < par->size; i++)
        if (!mask[i] &&
            (par->data[i] != 0.0f || par->exp_avg[i] != 0.0f || par->exp_avg_sq[i] != 0.0f))
            r->mask_ok = 0;
    free(mask);
    return 0;
}

int rp_report(const rp_pruning *p, const rn_model *model, rp_tensor_report *rep, int cap)
{
    int n = 0;
    for (int k = 0; k < model->nparams; k++) {
        const rn_param *par = &model->p[k];
        if (!par->prunable)
            continue;
        if (n >= cap)
            return -1;
        rp_tensor_report *r = &rep[n++];
        memset(r, 0, sizeof *r);
        r->name = par->name;
        r->rows = par->rows;
        r->cols = par->cols;
        r->numel = par->size;
        r->mask_ok = 1;
        if (!p) {
            r->nnz = r->numel;
            dense_sizes(r);
            continue;
        }
        if (mask_report(p, p->index_of[k], par, r) != 0 ||
            export_sizes(p, p->index_of[k], par, r) != 0)
            return -1;
    }
    return n;
}
