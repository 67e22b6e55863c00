/* speech_report.c - what speech_demo prints: the run header, a line per
 * epoch, the summary and the machine-readable `RESULT {json}` line whose
 * layout is schema SD_RESULT_SCHEMA (README.md, "RESULT"). Every total is
 * computed from the model and the per-tensor reports. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "speech_demo.h"

/* --------------------------------------------------------------- JSON */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A small streaming writer: members are separated by commas per level. */
typedef struct jw {
    FILE *f;
    int depth;
    int count[16];
} jw;

static void jw_key(jw *w, const char *key)
{
    if (w->count[w->depth]++)
        fputc(',', w->f);
    if (key) {
        json_str(w->f, key);
        fputc(':', w->f);
    }
}

static void jw_open(jw *w, const char *key, char bracket)
{
    jw_key(w, key);
    fputc(bracket, w->f);
    w->count[++w->depth] = 0;
}

static void jw_close(jw *w, char bracket)
{
    fputc(bracket, w->f);
    w->depth--;
}

static void jw_int(jw *w, const char *key, int64_t v)
{
    jw_key(w, key);
    fprintf(w->f, "%lld", (long long)v);
}

static void jw_null(jw *w, const char *key)
{
    jw_key(w, key);
    fputs("null", w->f);
}

static void jw_num(jw *w, const char *key, double v)
{
    if (!isfinite(v)) {
        jw_null(w, key);
        return;
    }
    jw_key(w, key);
    fprintf(w->f, "%.17g", v);
}

static void jw_bool(jw *w, const char *key, int v)
{
    jw_key(w, key);
    fputs(v ? "true" : "false", w->f);
}

static void jw_str(jw *w, const char *key, const char *v)
{
    if (!v) {
        jw_null(w, key);
        return;
    }
    jw_key(w, key);
    json_str(w->f, v);
}

/* -------------------------------------------------------------- totals */

typedef struct totals {
    int64_t nnz, numel, expected, dense, csr, bitmap, bias_bytes, bias_params, params;
    int exact;      /* 1, 0, or -1 when some tensor has no expected count */
    int mask_ok, export_ok;
} totals;

static void compute_totals(const run_result *r, totals *t)
{
    memset(t, 0, sizeof *t);
    t->exact = t->mask_ok = t->export_ok = 1;
    for (int k = 0; k < SP_NPARAMS; k++) {
        t->params += r->model->p[k].size;
        if (!r->model->p[k].prunable) {
            t->bias_params += r->model->p[k].size;
            t->bias_bytes += 4 * r->model->p[k].size;
        }
    }
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const tensor_report *x = &r->rep[k];
        t->nnz += x->nnz;
        t->numel += x->numel;
        t->dense += x->dense_bytes;
        t->csr += x->csr_bytes;
        t->bitmap += x->bitmap_bytes;
        if (x->expected_nnz < 0 || t->expected < 0) {
            t->expected = -1;
        } else {
            t->expected += x->expected_nnz;
            t->exact &= x->nnz == x->expected_nnz;
        }
        t->mask_ok &= x->mask_ok;
        t->export_ok &= x->export_ok;
    }
    if (t->expected < 0)
        t->exact = -1;
}

static double sparsity_of(int64_t nnz, int64_t numel)
{
    return numel ? 1.0 - (double)nnz / (double)numel : 0.0;
}

/* ------------------------------------------------------------ listings */

void sr_print_methods(FILE *f)
{
    for (int i = 0; i < sm_count(); i++) {
        const sm_method *m = sm_at(i);
        jw w = {f, 0, {0}};
        fputs("METHOD ", f);
        jw_open(&w, NULL, '{');
        jw_str(&w, "name", m->name);
        jw_bool(&w, "prunes", m->prunes);
        jw_bool(&w, "is_csp", m->is_csp);
        jw_bool(&w, "available", m->available);
        jw_bool(&w, "grid", m->grid);
        jw_str(&w, "summary", m->summary);
        jw_close(&w, '}');
        fputc('\n', f);
    }
}

static void data_json(jw *w, const char *key, const sp_dataset *ds, const data_info *di)
{
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)di->fingerprint);
    jw_open(w, key, '{');
    jw_str(w, "path", di->path);
    jw_str(w, "kind", di->kind);
    jw_str(w, "source", di->source);
    jw_int(w, "files", ds->n);
    jw_str(w, "fingerprint", fp);
    jw_open(w, "speakers", '[');
    for (int s = 0; s < ds->n_speakers; s++)
        jw_str(w, NULL, ds->speakers[s]);
    jw_close(w, ']');
    jw_close(w, '}');
}

void sr_print_data_json(FILE *f, const sp_dataset *ds, const data_info *di)
{
    jw w = {f, 0, {0}};
    data_json(&w, NULL, ds, di);
}

/* ------------------------------------------------------------- header */

void sr_print_header(const run_result *r)
{
    const demo_options *o = r->o;
    const sp_model *m = r->model;
    const char *blas = getenv("OPENBLAS_NUM_THREADS");
    printf("data: %s\n      %s: %lld files, %d speakers; %s: train %lld, %s %lld\n",
           sd_kind_words(r->di->kind), r->di->path, (long long)r->ds->n, r->ds->n_speakers,
           r->si->fold ? "leave-one-speaker-out" : "official split", (long long)r->n_train,
           r->si->eval_set, (long long)r->n_test);
    if (r->si->val_rule)
        printf("      validation split: %s%s%s; the test utterances are not used\n",
               r->si->val_rule, r->si->val_speaker ? " = " : "",
               r->si->val_speaker ? r->si->val_speaker : "");
    printf("model: LSTM(%lld->%lld) mean-pool Linear(%lld->%lld); batch %lld, %lld steps/epoch, "
           "%lld epochs, seed %llu\n",
           (long long)m->in, (long long)m->hidden, (long long)m->hidden, (long long)m->classes,
           (long long)o->train.batch, (long long)r->steps_per_epoch, (long long)o->epochs,
           (unsigned long long)o->train.seed);
    printf("method: %s - %s\n", r->method->name, r->method->summary);
    if (o->csp.text[0])
        printf("        with --csp %s\n", o->csp.text);
    if (r->sched.present && o->one_shot)
        printf("schedule: one-shot, one event at step 0 to %g from %lld calibration "
               "utterances (training side), then %lld epochs of fine-tuning\n",
               r->sched.final_sparsity, (long long)o->calib, (long long)o->finetune_epochs);
    else if (r->sched.present)
        printf("schedule: polynomial^%g %g -> %g over steps %lld..%lld every %lld "
               "(%lld events) of %lld; W_ih, W_hh, W_out pruned, Adam moments zeroed\n",
               r->sched.exponent, r->sched.initial_sparsity, r->sched.final_sparsity,
               (long long)r->sched.begin_step, (long long)r->sched.end_step,
               (long long)r->sched.frequency, (long long)r->sched.events,
               (long long)r->total_steps);
    printf("recipe: %s: Adam lr %g, clip %g", o->recipe ? o->recipe : "custom",
           (double)o->train.adam.lr, (double)o->train.adam.clip);
    if (o->lr_decay != SP_LR_CONSTANT)
        printf(", %s decay to %gx over updates %lld..%lld", sd_lr_decay_name(o->lr_decay),
               o->lr_final, (long long)r->lr_begin_step, (long long)r->lr_end_step);
    printf("; pruned weights' gradients %s before clipping\n",
           r->method->prunes ? (o->mask_gradients ? "masked" : "NOT masked") : "(no pruner)");
    printf("libcsp %s, %d thread(s); OPENBLAS_NUM_THREADS=%s\n", r->libcsp_version,
           (int)o->threads, blas ? blas : "(unset)");
    if (!o->quiet)
        printf("epoch    loss  train_acc  %s_acc  sparsity  csp_ms  csp_share  epoch_s       lr\n",
               strcmp(r->si->eval_set, "test") ? "val " : "test");
}

void sr_print_epoch(const epoch_record *e)
{
    printf("%5lld  %6.4f   %6.2f%%   %6.2f%%   %7.4f  %6.1f   %6.2f%%  %7.3f  %7.2e\n",
           (long long)e->epoch, e->train_loss, 100.0 * e->train_acc, 100.0 * (1.0 - e->test_err),
           e->sparsity, 1e3 * e->csp_s, e->seconds > 0 ? 100.0 * e->csp_s / e->seconds : 0.0,
           e->seconds, e->lr);
    fflush(stdout);
}

/* ------------------------------------------------------------ summary */

static void print_tensor_lines(const run_result *r, const totals *t)
{
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const tensor_report *x = &r->rep[k];
        printf("  %-20s %4lld x %-4lld nnz %6lld / %6lld  sparsity %.4f%s; inputs read "
               "%lld/%lld\n",
               x->name, (long long)x->rows, (long long)x->cols, (long long)x->nnz,
               (long long)x->numel, sparsity_of(x->nnz, x->numel),
               x->expected_nnz < 0              ? ""
               : x->nnz == x->expected_nnz ? "  (exact)"
                                           : "  (NOT the expected count)",
               (long long)x->cols_used, (long long)x->cols);
    }
    printf("  %-20s             nnz %6lld / %6lld  sparsity %.4f; masked weights and "
           "moments zero: %s\n",
           "total", (long long)t->nnz, (long long)t->numel, sparsity_of(t->nnz, t->numel),
           t->mask_ok ? "yes" : "NO");
    printf("compressed size of the %d matrices (%s), biases (%lld B) dense:\n"
           "  dense float32            %8lld B\n"
           "  CSR (u16 col, i32 rowptr, f32)  %8lld B  (%.2f%% of dense)\n"
           "  bitmap + f32 values      %8lld B  (%.2f%% of dense)\n",
           SD_N_PRUNABLE,
           !r->pruned     ? "unpruned: computed by speech_demo"
           : t->export_ok ? "libcsp's exports; the CSR export decodes back to the weights "
                            "bit for bit"
                          : "libcsp's exports; the CSR round trip DIFFERS",
           (long long)t->bias_bytes, (long long)t->dense, (long long)t->csr,
           100.0 * (double)t->csr / (double)t->dense, (long long)t->bitmap,
           100.0 * (double)t->bitmap / (double)t->dense);
}

static void print_csp_lines(const csp_summary *c)
{
    if (!c->present)
        return;
    printf("csp_step: %lld events in %.3f s (last %.4f s); observing %.3f s over %lld "
           "forward passes\n",
           (long long)c->events, c->event_s, c->last_event_s, c->observe_s,
           (long long)c->observed_passes);
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const csp_tensor_summary *t = &c->t[k];
        if (!t->name)
            continue;
        printf("  %-18s %s/%s/%s: last removing event (step %lld): weight error "
               "%.4f, sensing error %.4g; mean over %lld such events %.4f / %.4g; "
               "solver iterations %lld, damped rows %lld; %.3f s in events\n",
               t->name, t->sensing, t->solver, t->correction, (long long)t->error_step,
               t->weight_error, t->sensing_error, (long long)t->changing_events,
               t->mean_weight_error, t->mean_sensing_error, (long long)t->iterations,
               (long long)t->rows_damped, t->total_event_s);
    }
}

static double csp_seconds(const pruning_times *p)
{
    return p->step_s + p->observe_s + p->mask_s;
}

void sr_print_summary(const run_result *r)
{
    totals t;
    compute_totals(r, &t);
    printf("final: %s accuracy %.2f%% (%lld/%lld), error rate %.2f%%\n", r->si->eval_set,
           100.0 * r->te.acc, (long long)r->te.correct, (long long)r->te.n,
           100.0 * (1.0 - r->te.acc));
    print_tensor_lines(r, &t);
    const double csp_s = csp_seconds(&r->pt);
    printf("time: %.2f s in all, training %.2f s, evaluation %.2f s; libcsp %.3f s "
           "(%.2f%% of training; %lld events %.3f s, %lld mask re-applies %.3f s, gradient "
           "masking %.3f s, observing %.3f s)\n",
           r->total_s, r->train_s, r->eval_s, csp_s,
           r->train_s > 0 ? 100.0 * csp_s / r->train_s : 0.0, (long long)r->pt.events,
           r->pt.event_s, (long long)(r->pt.calls - r->pt.events),
           r->pt.step_s - r->pt.event_s, r->pt.mask_s, r->pt.observe_s);
    print_csp_lines(&r->csp);
    printf("data used: %s (%s)\n", sd_kind_words(r->di->kind), r->di->path);
}

/* ------------------------------------------------------------- RESULT */

static void result_run(jw *w, const run_result *r)
{
    const demo_options *o = r->o;
    jw_str(w, "schema", SD_RESULT_SCHEMA);
    jw_str(w, "method", r->method->name);
    jw_bool(w, "is_csp", r->method->is_csp);
    jw_num(w, "sparsity", r->method->prunes ? o->sparsity : 0.0);
    jw_int(w, "seed", (int64_t)o->train.seed);
    jw_str(w, "eval", o->eval);
    jw_str(w, "eval_set", r->si->eval_set);
    if (r->si->val_rule) {
        jw_open(w, "validation", '{');
        jw_str(w, "rule", r->si->val_rule);
        jw_str(w, "speaker", r->si->val_speaker);
        jw_close(w, '}');
    } else {
        jw_null(w, "validation");
    }
    jw_int(w, "epochs", o->epochs);
    jw_int(w, "hidden", o->train.hidden);
    jw_int(w, "batch", o->train.batch);
    jw_int(w, "subset", o->subset);
    jw_int(w, "steps", r->total_steps);
    jw_int(w, "steps_per_epoch", r->steps_per_epoch);
    jw_int(w, "train_n", r->n_train);
}

static void result_model_recipe(jw *w, const run_result *r, const totals *t)
{
    const demo_options *o = r->o;
    jw_open(w, "model", '{');
    jw_int(w, "input", r->model->in);
    jw_int(w, "hidden", r->model->hidden);
    jw_int(w, "classes", r->model->classes);
    jw_int(w, "params", t->params);
    jw_int(w, "pruned_params", t->numel);
    jw_int(w, "bias_params", t->bias_params);
    jw_close(w, '}');
    jw_open(w, "recipe", '{');
    jw_str(w, "name", o->recipe);
    jw_num(w, "lr", (double)o->train.adam.lr);
    jw_num(w, "clip", (double)o->train.adam.clip);
    jw_int(w, "bucket", o->train.bucket);
    jw_str(w, "lr_decay", sd_lr_decay_name(o->lr_decay));
    if (o->lr_decay == SP_LR_CONSTANT) {
        jw_null(w, "lr_decay_begin_step");
        jw_null(w, "lr_decay_end_step");
    } else {
        jw_int(w, "lr_decay_begin_step", r->lr_begin_step);
        jw_int(w, "lr_decay_end_step", r->lr_end_step);
    }
    jw_num(w, "lr_final", o->lr_decay == SP_LR_CONSTANT ? 1.0 : o->lr_final);
    jw_bool(w, "mask_gradients", r->method->prunes && o->mask_gradients);
    jw_close(w, '}');
}

static void result_accuracy(jw *w, const run_result *r)
{
    int64_t clipped = 0;
    double norm = 0.0;
    for (int64_t i = 0; i < r->n_hist; i++) {
        clipped += r->hist[i].clipped;
        norm += r->hist[i].grad_norm * (double)r->steps_per_epoch;
    }
    jw_int(w, "test_n", r->te.n);
    jw_int(w, "test_correct", r->te.correct);
    jw_num(w, "test_acc", r->te.acc);
    jw_num(w, "test_err", 1.0 - r->te.acc);
    jw_num(w, "test_loss", r->te.loss);
    jw_num(w, "train_loss", r->train_loss);
    jw_num(w, "train_acc", r->train_acc);
    jw_open(w, "training", '{');
    jw_int(w, "clipped_steps", clipped);
    jw_num(w, "mean_grad_norm", r->total_steps ? norm / (double)r->total_steps : 0.0);
    jw_num(w, "final_lr", r->n_hist ? r->hist[r->n_hist - 1].lr : (double)r->o->train.adam.lr);
    jw_close(w, '}');
    jw_open(w, "history", '[');
    for (int64_t i = 0; i < r->n_hist; i++) {
        const epoch_record *e = &r->hist[i];
        jw_open(w, NULL, '{');
        jw_int(w, "epoch", e->epoch);
        jw_num(w, "lr", e->lr);
        jw_num(w, "train_loss", e->train_loss);
        jw_num(w, "train_acc", e->train_acc);
        jw_num(w, "test_err", e->test_err); /* null: not evaluated */
        jw_num(w, "grad_norm", e->grad_norm);
        jw_int(w, "clipped", e->clipped);
        jw_num(w, "sparsity", e->sparsity);
        jw_num(w, "seconds", e->seconds);
        jw_num(w, "csp_s", e->csp_s);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void result_schedule(jw *w, const run_result *r)
{
    if (!r->sched.present) {
        jw_null(w, "schedule");
        return;
    }
    jw_open(w, "schedule", '{');
    jw_int(w, "begin_step", r->sched.begin_step);
    jw_int(w, "end_step", r->sched.end_step);
    jw_int(w, "frequency", r->sched.frequency);
    jw_int(w, "events", r->sched.events);
    jw_num(w, "exponent", r->sched.exponent);
    jw_num(w, "initial_sparsity", r->sched.initial_sparsity);
    jw_num(w, "final_sparsity", r->sched.final_sparsity);
    jw_close(w, '}');
}

/* --one-shot: the loaded model, the calibration and the error right after
 * the event; null otherwise. */
static void result_one_shot(jw *w, const run_result *r)
{
    const demo_options *o = r->o;
    if (!o->one_shot) {
        jw_null(w, "one_shot");
        return;
    }
    const char *base = strrchr(o->load_dense, '/');
    jw_open(w, "one_shot", '{');
    jw_str(w, "dense_model", base ? base + 1 : o->load_dense);
    jw_int(w, "calib_n", r->calib_n);
    jw_num(w, "calib_s", r->calib_s);
    jw_num(w, "event_s", r->pt.event_s);
    jw_int(w, "finetune_epochs", o->finetune_epochs);
    jw_num(w, "err_after_event", r->oneshot_err);
    jw_num(w, "loss_after_event", r->oneshot_loss);
    jw_close(w, '}');
}

static void result_tensors(jw *w, const run_result *r, const totals *t)
{
    jw_open(w, "tensors", '[');
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const tensor_report *x = &r->rep[k];
        jw_open(w, NULL, '{');
        jw_str(w, "name", x->name);
        jw_int(w, "rows", x->rows);
        jw_int(w, "cols", x->cols);
        jw_int(w, "numel", x->numel);
        jw_int(w, "nnz", x->nnz);
        if (x->expected_nnz < 0)
            jw_null(w, "expected_nnz");
        else
            jw_int(w, "expected_nnz", x->expected_nnz);
        jw_int(w, "nonzero_values", x->nonzero);
        jw_int(w, "cols_used", x->cols_used);
        jw_bool(w, "mask_ok", x->mask_ok);
        jw_int(w, "dense_bytes", x->dense_bytes);
        jw_int(w, "csr_bytes", x->csr_bytes);
        jw_int(w, "bitmap_bytes", x->bitmap_bytes);
        jw_bool(w, "export_roundtrip", x->export_ok);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_int(w, "nnz", t->nnz);
    jw_int(w, "numel", t->numel);
    if (t->expected < 0)
        jw_null(w, "expected_nnz");
    else
        jw_int(w, "expected_nnz", t->expected);
    jw_num(w, "sparsity_achieved", sparsity_of(t->nnz, t->numel));
    if (t->exact < 0)
        jw_null(w, "sparsity_exact");
    else
        jw_bool(w, "sparsity_exact", t->exact);
    jw_bool(w, "mask_ok", t->mask_ok);
    jw_open(w, "bytes", '{');
    jw_int(w, "dense", t->dense);
    jw_int(w, "csr", t->csr);
    jw_int(w, "bitmap", t->bitmap);
    jw_int(w, "biases", t->bias_bytes);
    jw_str(w, "source", r->pruned ? "libcsp" : "speech_demo");
    jw_bool(w, "export_roundtrip", t->export_ok);
    jw_close(w, '}');
}

static void result_time(jw *w, const run_result *r)
{
    const double csp_s = csp_seconds(&r->pt);
    jw_open(w, "time", '{');
    jw_num(w, "total_s", r->total_s);
    jw_num(w, "train_s", r->train_s);
    jw_num(w, "eval_s", r->eval_s);
    jw_num(w, "csp_s", csp_s);
    jw_num(w, "csp_event_s", r->pt.event_s);
    jw_num(w, "csp_observe_s", r->pt.observe_s);
    jw_num(w, "csp_mask_s", r->pt.mask_s);
    jw_num(w, "csp_share", r->train_s > 0 ? csp_s / r->train_s : 0.0);
    jw_int(w, "events", r->pt.events);
    jw_int(w, "csp_calls", r->pt.calls);
    jw_close(w, '}');
}

static void result_csp(jw *w, const csp_summary *c)
{
    if (!c->present) {
        jw_null(w, "csp");
        return;
    }
    jw_open(w, "csp", '{');
    jw_str(w, "overrides", c->overrides);
    jw_int(w, "events", c->events);
    jw_num(w, "event_s", c->event_s);
    jw_num(w, "last_event_s", c->last_event_s);
    jw_num(w, "step_total_s", c->step_total_s);
    jw_num(w, "observe_s", c->observe_s);
    jw_int(w, "observed_passes", c->observed_passes);
    jw_open(w, "tensors", '[');
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const csp_tensor_summary *t = &c->t[k];
        jw_open(w, NULL, '{');
        jw_str(w, "name", t->name ? t->name : "?");
        jw_str(w, "sensing", t->sensing ? t->sensing : "?");
        jw_str(w, "solver", t->solver ? t->solver : "?");
        jw_str(w, "correction", t->correction ? t->correction : "?");
        jw_num(w, "weight_error", t->weight_error);
        jw_num(w, "sensing_error", t->sensing_error);
        jw_int(w, "error_step", t->error_step);
        jw_num(w, "mean_weight_error", t->mean_weight_error);
        jw_num(w, "mean_sensing_error", t->mean_sensing_error);
        jw_int(w, "changing_events", t->changing_events);
        jw_int(w, "iterations", t->iterations);
        jw_int(w, "rows_damped", t->rows_damped);
        jw_int(w, "rows_not_converged", t->rows_not_converged);
        jw_num(w, "event_s", t->event_s);
        jw_num(w, "total_event_s", t->total_event_s);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

void sr_print_result(FILE *f, const run_result *r)
{
    totals t;
    compute_totals(r, &t);
    char digest[17];
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)r->digest);
    const char *blas = getenv("OPENBLAS_NUM_THREADS");
    jw w = {f, 0, {0}};
    fputs("RESULT ", f);
    jw_open(&w, NULL, '{');
    result_run(&w, r);
    result_model_recipe(&w, r, &t);
    result_accuracy(&w, r);
    result_schedule(&w, r);
    result_one_shot(&w, r);
    result_tensors(&w, r, &t);
    result_time(&w, r);
    result_csp(&w, &r->csp);
    jw_str(&w, "digest", digest);
    jw_str(&w, "libcsp", r->libcsp_version);
    jw_int(&w, "threads", r->o->threads);
    jw_str(&w, "blas_threads", blas ? blas : "");
    data_json(&w, "data", r->ds, r->di);
    jw_close(&w, '}');
    fputc('\n', f);
    fflush(f);
}
