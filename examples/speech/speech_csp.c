/* speech_csp.c - every libcsp call of speech_demo (see speech_csp.h). */
#include "speech_csp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <csp/csp.h>
#define CSP_EXPERIMENTAL_API
#include <csp/experimental.h> /* CSP_CORRECTION_BLEND */

/* What the step callback records of a tensor's CSP statistics: the last
 * event that removed weights (the cubic schedule's last events often remove
 * none, and their errors read 0), and sums over such events. */
typedef struct csp_record {
    double weight_error, sensing_error; /* at the last event that removed weights */
    int64_t last_step;                  /* its step, -1 before any */
    double sum_weight_error, sum_sensing_error;
    int64_t changing_events;            /* events that removed weights */
    int64_t iterations, damped, not_converged; /* summed over all events */
} csp_record;

struct sc_pruning {
    csp_context *ctx;
    csp_pruner *pruner;
    const sm_overrides *ov;
    csp_tensor *tensors[4 * SD_N_PRUNABLE]; /* weight, 2 moments, gradient */
    int32_t index_of[SP_NPARAMS];          /* pruner index of a parameter, or -1 */
    pruning_times t;
    int64_t want_step; /* step whose csp_pruner_wants_observe() is cached */
    int32_t want;
    int64_t observed_passes; /* forward passes observed */
    csp_record rec[SD_N_PRUNABLE];
    csp_status error;
    int64_t error_step;
    const char *error_call;
};

int sc_check_version(void)
{
    if (CSP_CHECK_VERSION() == CSP_OK)
        return 0;
    fprintf(stderr, "libcsp %s does not match the header %s\n", csp_version_string(),
            CSP_VERSION_STRING);
    return -1;
}

const char *sc_version(void) { return csp_version_string(); }

/* ------------------------------------------------------------ set-up */

/* The cubic schedule of @p o: ramp from begin_frac to end_frac of the
 * steps, `events` events unless a frequency is given. */
static int schedule_options(const demo_options *o, int64_t total_steps,
                            csp_schedule_options *so)
{
    csp_schedule_options_init(so, sizeof *so);
    if (o->one_shot) {
        /* One-shot pruning (docs/guide.md): one event, at step 0. */
        so->kind = CSP_SCHEDULE_CONSTANT;
        so->final_sparsity = o->sparsity;
        so->begin_step = so->end_step = 0;
        so->frequency = 1;
        return 0;
    }
    so->kind = CSP_SCHEDULE_POLYNOMIAL;
    so->initial_sparsity = o->initial_sparsity;
    so->final_sparsity = o->sparsity;
    so->exponent = o->exponent;
    so->begin_step = (int64_t)llround(o->begin_frac * (double)total_steps);
    so->end_step = (int64_t)llround(o->end_frac * (double)total_steps);
    if (so->end_step > total_steps)
        so->end_step = total_steps;
    if (so->begin_step >= so->end_step)
        so->begin_step = so->end_step - 1;
    if (so->begin_step < 0) {
        fprintf(stderr, "too few training steps (%lld) for a schedule\n", (long long)total_steps);
        return -1;
    }
    so->frequency = o->frequency;
    if (so->frequency == 0) {
        so->frequency = (int64_t)llround((double)(so->end_step - so->begin_step) /
                                         (double)o->events);
        if (so->frequency < 1)
            so->frequency = 1;
    }
    return 0;
}

static int64_t count_events(const csp_schedule *sched, int64_t total_steps)
{
    int64_t n = 0;
    for (int64_t e = -1;;) {
        if (csp_schedule_next_event(sched, e, &e) != CSP_OK || e < 0 ||
            e > (total_steps > 0 ? total_steps : 0))
            return n;
        n++;
    }
}

/* Step callback: after each event, the CSP statistics of every tensor. */
static csp_status record_event(void *user, const csp_pruner *pruner, int64_t step,
                               csp_status status, int32_t event)
{
    sc_pruning *p = (sc_pruning *)user;
    if (!event || status != CSP_PRUNED)
        return CSP_OK;
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        csp_tensor_stats ts;
        csp_tensor_stats_init(&ts, sizeof ts);
        if (csp_pruner_tensor_stats(pruner, p->index_of[sd_prunable[k]], &ts) != CSP_OK)
            continue;
        csp_record *r = &p->rec[k];
        r->iterations += ts.solver_iterations;
        r->damped += ts.rows_damped;
        r->not_converged += ts.rows_not_converged;
        if (ts.last_event == step && ts.weight_error > 0.0) {
            r->weight_error = ts.weight_error;
            r->sensing_error = ts.sensing_error;
            r->last_step = step;
            r->sum_weight_error += ts.weight_error;
            r->sum_sensing_error += ts.sensing_error;
            r->changing_events++;
        }
    }
    return CSP_OK;
}

/* Parameter @p which as four tensors (weights, Adam moments, gradient)
 * added to the pruner with the method's tensor options. */
static csp_status add_parameter(sc_pruning *p, const sm_method *m, int k, sp_param *par)
{
    const int64_t shape[2] = {par->rows, par->cols};
    float *bufs[4] = {par->data, par->exp_avg, par->exp_avg_sq, par->grad};
    static const char *const suffix[4] = {"", ".exp_avg", ".exp_avg_sq", ".grad"};
    csp_tensor **t = &p->tensors[4 * k];
    csp_status st = CSP_OK;
    for (int b = 0; b < 4 && st == CSP_OK; b++) {
        char name[128];
        snprintf(name, sizeof name, "%s%s", par->name, suffix[b]);
        st = csp_tensor_create(&t[b], p->ctx, bufs[b], CSP_DTYPE_F32, 2, shape, 0, name);
    }
    csp_pruner_tensor_options to;
    sm_experimental x;
    csp_pruner_tensor_options_init(&to, sizeof to, p->pruner);
    int32_t index = -1;
    if (st == CSP_OK)
        st = sm_configure_tensor(m, p->ov, sd_prunable[k], &to, &x);
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
    p->index_of[sd_prunable[k]] = index;
    return st;
}

static csp_status build_pruner(sc_pruning *p, const sm_method *m, const demo_options *o,
                               sp_model *model, int64_t total_steps, sched_info *si)
{
    csp_context_options co;
    csp_context_options_init(&co, sizeof co);
    co.seed = o->train.seed;
    co.num_threads = o->threads;
    csp_status st = csp_context_create(&p->ctx, &co);
    if (st != CSP_OK)
        return st;
    csp_schedule_options so;
    if (schedule_options(o, total_steps, &so) != 0)
        return CSP_E_INVALID;
    csp_schedule *sched = NULL;
    sm_config cfg;
    csp_pruner_options_init(&cfg.po, sizeof cfg.po);
    if ((st = csp_schedule_create(&sched, p->ctx, &so)) == CSP_OK &&
        (st = sm_configure_pruner(m, p->ov, &cfg)) == CSP_OK &&
        (st = csp_pruner_create(&p->pruner, p->ctx, sched, &cfg.po)) == CSP_OK)
        st = sm_apply_experimental(p->pruner, -1, &cfg.x);
    *si = (sched_info){1, so.begin_step, so.end_step, so.frequency, 0, so.exponent,
                       so.initial_sparsity, so.final_sparsity};
    if (sched)
        si->events = count_events(sched, total_steps);
    csp_schedule_free(sched);
    for (int k = 0; k < SD_N_PRUNABLE && st == CSP_OK; k++)
        st = add_parameter(p, m, k, &model->p[sd_prunable[k]]);
    if (st == CSP_OK)
        st = csp_pruner_set_callback(p->pruner, record_event, p);
    return st;
}

int sc_create(sc_pruning **out, const sm_method *m, const demo_options *o, sp_model *model,
              int64_t total_steps, sched_info *si)
{
    *out = NULL;
    sc_pruning *p = (sc_pruning *)calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    p->ov = &o->csp;
    p->want_step = -1;
    for (int k = 0; k < SP_NPARAMS; k++)
        p->index_of[k] = -1;
    for (int k = 0; k < SD_N_PRUNABLE; k++)
        p->rec[k].last_step = -1;
    const csp_status st = build_pruner(p, m, o, model, total_steps, si);
    if (st != CSP_OK) {
        fprintf(stderr, "pruner setup: %s: %s\n", csp_status_name(st),
                p->ctx ? csp_context_last_error(p->ctx) : "");
        sc_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void sc_free(sc_pruning *p)
{
    if (!p)
        return;
    csp_pruner_free(p->pruner);
    for (int k = 0; k < 4 * SD_N_PRUNABLE; k++)
        csp_tensor_free(p->tensors[k]);
    csp_context_free(p->ctx);
    free(p);
}

/* ------------------------------------------------------------- hooks */

static void fail(sc_pruning *p, csp_status st, int64_t step, const char *call)
{
    p->error = st;
    p->error_step = step;
    p->error_call = call;
}

void sc_after_step(void *user, int64_t step)
{
    sc_pruning *p = (sc_pruning *)user;
    if (p->error)
        return;
    const double t0 = sd_now();
    /* The pruning step is the number of optimizer updates done. */
    const csp_status st = csp_step(p->pruner, step + 1);
    const double dt = sd_now() - t0;
    p->t.step_s += dt;
    p->t.calls++;
    if (st == CSP_PRUNED) {
        p->t.events++;
        p->t.event_s += dt;
    } else if (st < 0) {
        fail(p, st, step + 1, "csp_step");
    }
}

void sc_before_update(void *user, int64_t step)
{
    sc_pruning *p = (sc_pruning *)user;
    if (p->error)
        return;
    const double t0 = sd_now();
    const csp_status st = csp_pruner_mask_gradients(p->pruner);
    p->t.mask_s += sd_now() - t0;
    if (st < 0)
        fail(p, st, step + 1, "csp_pruner_mask_gradients");
}

/* Feed x to tensor @p index when its operator is the activations one. */
static csp_status observe_activations(csp_pruner *pruner, int32_t index, const float *x,
                                      int64_t rows, int64_t cols)
{
    csp_sensing *s = NULL;
    csp_status st = csp_pruner_sensing(pruner, index, &s);
    if (st != CSP_OK || s == NULL || csp_sensing_kind(s) != CSP_SENSING_ACTIVATIONS)
        return st;
    return csp_pruner_observe(pruner, index, x, rows, cols);
}

void sc_observe(void *user, int which, const float *x, int64_t rows, int64_t cols)
{
    sc_pruning *p = (sc_pruning *)user;
    if (p->error || which < 0 || which >= SP_NPARAMS || p->index_of[which] < 0)
        return;
    const double t0 = sd_now();
    /* This forward pass is followed by update number calls + 1, and by
     * csp_step(pruner, calls + 1): observe only when the pruner wants it. */
    const int64_t step = p->t.calls + 1;
    csp_status st = CSP_OK;
    if (p->want_step != step) {
        st = csp_pruner_wants_observe(p->pruner, step, &p->want);
        p->want_step = step;
        p->observed_passes += st == CSP_OK && p->want;
    }
    if (st == CSP_OK && p->want)
        st = observe_activations(p->pruner, p->index_of[which], x, rows, cols);
    p->t.observe_s += sd_now() - t0;
    if (st < 0)
        fail(p, st, step, "csp_pruner_observe");
}

/* Calibration hook: every pass is observed (one-shot pruning). */
static void calibrate_observe(void *user, int which, const float *x, int64_t rows,
                              int64_t cols)
{
    sc_pruning *p = (sc_pruning *)user;
    if (p->error || which < 0 || which >= SP_NPARAMS || p->index_of[which] < 0)
        return;
    const double t0 = sd_now();
    const csp_status st = observe_activations(p->pruner, p->index_of[which], x, rows, cols);
    p->t.observe_s += sd_now() - t0;
    if (st < 0)
        fail(p, st, 0, "csp_pruner_observe");
}

int sc_needs_activations(const sc_pruning *p)
{
    for (int k = 0; p && k < SD_N_PRUNABLE; k++) {
        csp_sensing *s = NULL;
        if (csp_pruner_sensing(p->pruner, p->index_of[sd_prunable[k]], &s) == CSP_OK && s &&
            csp_sensing_kind(s) == CSP_SENSING_ACTIVATIONS)
            return 1;
    }
    return 0;
}

int sc_one_shot(sc_pruning *p, sp_trainer *tr, const int64_t *calib, int64_t n_calib,
                double *calib_s)
{
    *calib_s = 0.0;
    if (sc_needs_activations(p)) {
        const double t0 = sd_now();
        sp_eval_result res;
        if (sp_trainer_calibrate(tr, calib, n_calib, calibrate_observe, p, &res) != SP_TRAIN_OK) {
            fprintf(stderr, "calibration pass failed\n");
            return -1;
        }
        *calib_s = sd_now() - t0;
        p->observed_passes += (n_calib + sp_trainer_options(tr)->eval_batch - 1) /
                              sp_trainer_options(tr)->eval_batch;
        if (sc_check(p) != 0)
            return -1;
    }
    const double t0 = sd_now();
    const csp_status st = csp_step(p->pruner, 0);
    const double dt = sd_now() - t0;
    p->t.step_s += dt;
    p->t.calls++;
    if (st == CSP_PRUNED) {
        p->t.events++;
        p->t.event_s += dt;
        return 0;
    }
    fprintf(stderr, "csp_step (one-shot event): %s: %s\n", csp_status_name(st),
            csp_context_last_error(p->ctx));
    return -1;
}

void sc_install_hooks(sc_pruning *p, sp_train_options *t, int mask_gradients)
{
    t->user = p;
    t->after_step = sc_after_step;
    t->before_update = mask_gradients ? sc_before_update : NULL;
    t->observe = NULL;
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        csp_sensing *s = NULL;
        if (csp_pruner_sensing(p->pruner, p->index_of[sd_prunable[k]], &s) == CSP_OK && s &&
            csp_sensing_kind(s) == CSP_SENSING_ACTIVATIONS)
            t->observe = sc_observe;
    }
}

int sc_check(const sc_pruning *p)
{
    if (!p || !p->error)
        return 0;
    fprintf(stderr, "%s (step %lld): %s: %s\n", p->error_call, (long long)p->error_step,
            csp_status_name(p->error), csp_context_last_error(p->ctx));
    return -1;
}

double sc_seconds(const sc_pruning *p)
{
    return p ? p->t.step_s + p->t.observe_s + p->t.mask_s : 0.0;
}

void sc_times(const sc_pruning *p, pruning_times *t)
{
    if (p)
        *t = p->t;
    else
        memset(t, 0, sizeof *t);
}

/* ----------------------------------------------------------- reports */

static int64_t round_half_even(double x) { return (int64_t)nearbyint(x); }

static int64_t expected_nnz(int32_t gran, const sm_overrides *ov, int64_t rows, int64_t cols,
                            double s)
{
    const int64_t n = ov->nm_m ? ov->nm_n : 2, m = ov->nm_m ? ov->nm_m : 4;
    int64_t zeros = round_half_even(s * (double)m);
    switch (gran) {
    case CSP_GRANULARITY_NM:
        /* round(s M) zeros in every group of M, capped at M - N */
        if (cols % m)
            return -1;
        zeros = zeros > m - n ? m - n : zeros;
        return rows * (cols / m) * (m - zeros);
    case CSP_GRANULARITY_TENSOR:
        return rows * cols - round_half_even(s * (double)(rows * cols));
    case CSP_GRANULARITY_ROW:
        return rows * (cols - round_half_even(s * (double)cols));
    default:
        return -1;
    }
}

/* Compressed bytes of an unpruned (dense) run, which has no pruner to
 * export: CSR = int32 row pointers (rows + 1), uint16 column indices when
 * cols < 65536 (else int32), float32 values; bitmap = 1 bit per weight
 * (rounded up to bytes) + float32 values. libcsp's exports add a small
 * header to these. */
static void dense_sizes(tensor_report *r)
{
    const int64_t idx = r->cols < 65536 ? 2 : 4;
    r->csr_bytes = 4 * (r->rows + 1) + (idx + 4) * r->nnz;
    r->bitmap_bytes = (r->numel + 7) / 8 + 4 * r->nnz;
    r->export_ok = 1;
}

/* Compressed bytes from libcsp's exports (CSR and bitmap), and a round trip:
 * the CSR export decodes back to the host's weights bit for bit. */
static int export_sizes(const sc_pruning *p, int32_t idx, const sp_param *par,
                        tensor_report *r)
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

/* nnz, the zero check of pruned weights and moments, and the inputs read,
 * from tensor @p idx's mask. */
static int mask_report(const sc_pruning *p, int32_t idx, const sp_param *par,
                       tensor_report *r)
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
    for (int64_t c = 0; c < par->cols; c++) {
        int used = 0;
        for (int64_t q = 0; q < par->rows && !used; q++)
            used = mask[q * par->cols + c];
        r->cols_used += used;
    }
    free(mask);
    return 0;
}

int sc_report_tensors(const sc_pruning *p, const sm_method *m, const demo_options *o,
                      const sp_model *model, tensor_report rep[SD_N_PRUNABLE])
{
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const sp_param *par = &model->p[sd_prunable[k]];
        tensor_report *r = &rep[k];
        memset(r, 0, sizeof *r);
        r->name = par->name;
        r->rows = par->rows;
        r->cols = par->cols;
        r->numel = par->size;
        r->dense_bytes = 4 * r->numel;
        r->mask_ok = 1;
        for (int64_t i = 0; i < par->size; i++)
            r->nonzero += par->data[i] != 0.0f;
        if (!p) {
            r->nnz = r->expected_nnz = r->numel;
            r->cols_used = r->cols;
            dense_sizes(r);
            continue;
        }
        const int32_t idx = p->index_of[sd_prunable[k]];
        r->expected_nnz = expected_nnz(sm_granularity(m, &o->csp, sd_prunable[k]), &o->csp,
                                       par->rows, par->cols, o->sparsity);
        if (mask_report(p, idx, par, r) != 0 || export_sizes(p, idx, par, r) != 0)
            return -1;
    }
    return 0;
}

static const char *sensing_name(int32_t k)
{
    switch (k) {
    case CSP_SENSING_IDENTITY: return "identity";
    case CSP_SENSING_GAUSSIAN: return "gaussian";
    case CSP_SENSING_RADEMACHER: return "rademacher";
    case CSP_SENSING_ACTIVATIONS: return "activations";
    case CSP_SENSING_GRAM: return "gram";
    default: return "?";
    }
}

static const char *solver_name(int32_t k)
{
    return k == CSP_SOLVER_OMP     ? "omp"
           : k == CSP_SOLVER_ISTA  ? "ista"
           : k == CSP_SOLVER_FISTA ? "fista"
           : k == CSP_SOLVER_SWEEP ? "sweep"
                                   : "?";
}

static const char *correction_name(int32_t k)
{
    return k == CSP_CORRECTION_NONE    ? "none"
           : k == CSP_CORRECTION_FULL  ? "full"
           : k == CSP_CORRECTION_BLEND ? "blend"
                                       : "?";
}

void sc_summary(const sc_pruning *p, const sp_model *model, csp_summary *out)
{
    memset(out, 0, sizeof *out);
    csp_step_stats ss;
    csp_step_stats_init(&ss, sizeof ss);
    if (!p || csp_pruner_step_stats(p->pruner, &ss) != CSP_OK)
        return;
    *out = (csp_summary){1, p->ov->text, ss.events, p->observed_passes, ss.event_seconds,
                         ss.last_event_seconds, ss.total_seconds, p->t.observe_s, {{0}}};
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        csp_tensor_stats ts;
        csp_tensor_stats_init(&ts, sizeof ts);
        if (csp_pruner_tensor_stats(p->pruner, p->index_of[sd_prunable[k]], &ts) != CSP_OK)
            continue;
        const csp_record *r = &p->rec[k];
        const double n = r->changing_events > 0 ? (double)r->changing_events : 1.0;
        out->t[k] = (csp_tensor_summary){
            model->p[sd_prunable[k]].name, sensing_name(ts.sensing), solver_name(ts.solver),
            correction_name(ts.correction), r->weight_error, r->sensing_error, r->last_step,
            r->sum_weight_error / n, r->sum_sensing_error / n, r->changing_events,
            r->iterations, r->damped, r->not_converged, ts.event_seconds, ts.total_seconds};
    }
}

uint64_t sc_digest(const sc_pruning *p)
{
    uint64_t digest = 0;
    if (p)
        csp_pruner_digest(p->pruner, &digest);
    return digest;
}
