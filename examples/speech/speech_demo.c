/* speech_demo.c - trains the speech-digit LSTM (40 log-mel -> LSTM(H) ->
 * mean-pool -> Linear(10)) and prunes it during training with libcsp:
 * csp_step() after every optimizer update prunes W_ih, W_hh and W_out (not
 * the biases) and zeroes their Adam moments (registered as companions);
 * their gradients are masked before clipping (csp_pruner_mask_gradients()).
 *
 * Data: the Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0),
 * never copied into the repository, or the espeak-ng fallback
 * (speech_data.c). Every run says which data it used.
 *
 * Output: a line per epoch, a summary, and one machine-readable line
 * `RESULT {json}` (schema SD_RESULT_SCHEMA, README.md) for the comparison
 * driver (compare.py). The parts are listed in speech_demo.h; every libcsp
 * call is in speech_csp.c. Run `speech_demo --help` for the flags.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "speech_csp.h"
#include "speech_demo.h"

const int sd_prunable[SD_N_PRUNABLE] = {SP_P_W_IH, SP_P_W_HH, SP_P_W_OUT};

double sd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Zeros in the three pruned matrices, from the weights themselves. */
static double weight_sparsity(const sp_model *m)
{
    int64_t nnz = 0, numel = 0;
    for (int k = 0; k < SD_N_PRUNABLE; k++) {
        const sp_param *p = &m->p[sd_prunable[k]];
        for (int64_t i = 0; i < p->size; i++)
            nnz += p->data[i] != 0.0f;
        numel += p->size;
    }
    return numel ? 1.0 - (double)nnz / (double)numel : 0.0;
}

/* The learning-rate decay of @p o over @p total_steps updates: from the
 * update that follows lr_decay_begin (< 0: the pruning ramp's end) to
 * the one before lr_decay_end of the training steps. */
static void lr_schedule(const demo_options *o, int64_t total_steps, sp_lr_schedule *s)
{
    const double begin = o->lr_decay_begin < 0 ? o->end_frac : o->lr_decay_begin;
    s->kind = o->lr_decay;
    s->final_factor = o->lr_decay == SP_LR_CONSTANT ? 1.0 : o->lr_final;
    s->begin = (int64_t)llround(begin * (double)total_steps);
    s->end = (int64_t)llround(o->lr_decay_end * (double)total_steps) - 1;
    if (s->end <= s->begin)
        s->end = s->begin + 1;
}

/* ------------------------------------------------- dense model files */

#define SD_DENSE_MAGIC "SPDENSE1"

/* Every parameter of @p m (shapes, then float32 values) into @p path. */
static int save_dense(const sp_model *m, const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL && fwrite(SD_DENSE_MAGIC, 1, 8, f) == 8;
    for (int k = 0; ok && k < SP_NPARAMS; k++) {
        const sp_param *p = &m->p[k];
        const int64_t shape[2] = {p->rows, p->cols};
        ok = fwrite(shape, sizeof shape, 1, f) == 1 &&
             fwrite(p->data, sizeof(float), (size_t)p->size, f) == (size_t)p->size;
    }
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "cannot write the dense model %s\n", path);
    return ok ? 0 : -1;
}

/* The parameters saved by save_dense() into @p m (shapes must match). */
static int load_dense(sp_model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    char magic[8];
    int ok = f != NULL && fread(magic, 1, 8, f) == 8 && !memcmp(magic, SD_DENSE_MAGIC, 8);
    for (int k = 0; ok && k < SP_NPARAMS; k++) {
        sp_param *p = &m->p[k];
        int64_t shape[2];
        ok = fread(shape, sizeof shape, 1, f) == 1 && shape[0] == p->rows &&
             shape[1] == p->cols &&
             fread(p->data, sizeof(float), (size_t)p->size, f) == (size_t)p->size;
    }
    if (ok && fgetc(f) != EOF)
        ok = 0;
    if (f)
        fclose(f);
    if (!ok)
        fprintf(stderr, "cannot read the dense model %s (missing, or another model size)\n",
                path);
    return ok ? 0 : -1;
}

/* Epochs of training; after each one the evaluation set is scored when
 * the run prints epochs or the epoch is among the last --history. */
static int train_epochs(sp_trainer *tr, const sp_split *split, sc_pruning *pr, run_result *r)
{
    const demo_options *o = r->o;
    const int64_t epochs = o->one_shot ? o->finetune_epochs : o->epochs;
    for (int64_t e = 0; e < epochs; e++) {
        const double csp_before = sc_seconds(pr);
        sp_epoch_stats st;
        if (sp_trainer_run_epoch(tr, &st) != SP_TRAIN_OK) {
            fprintf(stderr, "training failed\n");
            return -1;
        }
        if (sc_check(pr) != 0)
            return -1;
        epoch_record *h = &r->hist[r->n_hist++];
        *h = (epoch_record){e + 1,   st.lr,        st.loss, st.acc, NAN, st.grad_norm,
                            st.clipped, weight_sparsity(r->model), sc_seconds(pr) - csp_before,
                            st.seconds};
        r->train_s += st.seconds;
        r->train_loss = st.loss;
        r->train_acc = st.acc;
        if (o->quiet && e + o->history < epochs && e + 1 < epochs)
            continue;
        const double t0 = sd_now();
        if (sp_trainer_evaluate(tr, split->test, split->n_test, &r->te) != SP_TRAIN_OK) {
            fprintf(stderr, "evaluation failed\n");
            return -1;
        }
        r->eval_s += sd_now() - t0;
        h->test_err = 1.0 - r->te.acc;
        if (!o->quiet)
            sr_print_epoch(h);
    }
    return 0;
}

/* One-shot pruning of the loaded model: the calibration utterances (evenly
 * strided over the training side), the event, and the evaluation set's
 * error right after it (before any fine-tuning). */
static int one_shot(sp_trainer *tr, const sp_split *split, sc_pruning *pr, run_result *r)
{
    const int64_t n = r->o->calib < split->n_train ? r->o->calib : split->n_train;
    int64_t *ids = (int64_t *)malloc((size_t)n * sizeof *ids);
    if (!ids)
        return -1;
    for (int64_t i = 0; i < n; i++)
        ids[i] = split->train[i * split->n_train / n];
    r->calib_n = sc_needs_activations(pr) ? n : 0;
    int rc = sc_one_shot(pr, tr, ids, n, &r->calib_s);
    free(ids);
    sp_eval_result te;
    if (rc == 0 && sp_trainer_evaluate(tr, split->test, split->n_test, &te) != SP_TRAIN_OK)
        rc = -1;
    if (rc == 0) {
        r->oneshot_err = 1.0 - te.acc;
        r->oneshot_loss = te.loss;
        r->te = te;
    }
    return rc;
}

/* The trainer, and for a pruning method the pruner on its model with the
 * trainer's hooks pointed at it; the learning-rate decay in both cases. */
static int setup(const demo_options *o, const sp_dataset *ds, const sp_split *split,
                 sp_trainer **tr, sc_pruning **pr, run_result *r)
{
    if (sp_trainer_create(tr, &o->train, ds, split->train, split->n_train) != SP_TRAIN_OK) {
        fprintf(stderr, "cannot create the trainer\n");
        return -1;
    }
    sp_model *model = sp_trainer_model(*tr);
    sp_train_options *live = sp_trainer_options(*tr);
    r->model = model;
    r->steps_per_epoch = sp_trainer_steps_per_epoch(*tr);
    r->total_steps = r->steps_per_epoch * (o->one_shot ? o->finetune_epochs : o->epochs);
    lr_schedule(o, r->total_steps, &live->lr_decay);
    r->lr_begin_step = live->lr_decay.begin;
    r->lr_end_step = live->lr_decay.end;
    if (o->load_dense && load_dense(model, o->load_dense) != 0)
        return -1;
    if (!r->method->prunes)
        return 0;
    if (sc_create(pr, r->method, o, model, r->total_steps, &r->sched) != 0)
        return -1;
    if (o->one_shot && one_shot(*tr, split, *pr, r) != 0)
        return -1;
    sc_install_hooks(*pr, live, o->mask_gradients);
    r->pruned = 1;
    return 0;
}

/* Train (and prune) on @p split, then print the summary and RESULT. */
static int run(run_result *r, const sp_split *split, double t_start)
{
    const demo_options *o = r->o;
    sp_trainer *tr = NULL;
    sc_pruning *pr = NULL;
    r->hist = (epoch_record *)calloc((size_t)o->epochs + (size_t)o->finetune_epochs,
                                     sizeof *r->hist);
    int rc = r->hist && setup(o, r->ds, split, &tr, &pr, r) == 0 ? 0 : 1;
    if (!rc) {
        sr_print_header(r);
        rc = train_epochs(tr, split, pr, r) == 0 ? 0 : 1;
    }
    if (!rc && o->one_shot && !r->pruned &&
        sp_trainer_evaluate(tr, split->test, split->n_test, &r->te) != SP_TRAIN_OK)
        rc = 1; /* dense, loaded: the reference */
    if (!rc && o->one_shot && !r->pruned)
        r->oneshot_err = 1.0 - r->te.acc, r->oneshot_loss = r->te.loss;
    if (!rc && o->save_dense && save_dense(r->model, o->save_dense) != 0)
        rc = 1;
    if (!rc && sc_report_tensors(pr, r->method, o, r->model, r->rep) != 0) {
        fprintf(stderr, "cannot read the masks or the exports\n");
        rc = 1;
    }
    if (!rc) {
        sc_times(pr, &r->pt);
        sc_summary(pr, r->model, &r->csp);
        r->digest = sc_digest(pr);
        r->total_s = sd_now() - t_start;
        sr_print_summary(r);
        sr_print_result(stdout, r);
    }
    sc_free(pr);
    sp_trainer_free(tr);
    free(r->hist);
    return rc;
}

int main(int argc, char **argv)
{
    demo_options o;
    const int args = sd_parse_args(argc, argv, &o);
    if (args != 0) {
        if (args < 0)
            sd_usage(stderr, argv[0]);
        return args < 0 ? 2 : 0;
    }
    if (sc_check_version() != 0)
        return 1;
    if (o.list_methods) {
        sr_print_methods(stdout);
        return 0;
    }
    const sm_method *method = sm_find(o.method);
    if (!method || !method->available) {
        fprintf(stderr, method ? "method %s is not available in this libcsp\n"
                               : "unknown method %s (--list-methods)\n", o.method);
        return method ? 3 : 2;
    }
    const double t_start = sd_now();
    data_info di;
    sp_dataset ds;
    char err[512];
    if (sd_resolve_data(&o, &di) != 0)
        return 1;
    if (sp_dataset_load(&ds, di.path, err, sizeof err) != SP_DS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sd_classify_data(&ds, &di);
    if (o.print_data) {
        printf("DATA ");
        sr_print_data_json(stdout, &ds, &di);
        printf("\n");
        sp_dataset_free(&ds);
        return 0;
    }
    sp_split split;
    split_info si;
    int rc = sd_make_split(&o, &ds, &split, &si);
    if (rc == 0) {
        run_result r = {.o = &o, .method = method, .di = &di, .ds = &ds, .si = &si,
                        .n_train = split.n_train, .n_test = split.n_test,
                        .libcsp_version = sc_version()};
        rc = run(&r, &split, t_start);
    } else {
        rc = rc == 2 ? 2 : 1;
    }
    sp_split_free(&split);
    sp_dataset_free(&ds);
    return rc;
}
