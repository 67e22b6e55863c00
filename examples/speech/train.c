/* train.c - training driver, see train.h. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

struct sp_trainer {
    sp_train_options opt;
    const sp_dataset *ds;
    sp_model model;
    sp_lstm_ws *ws;
    sp_batch_buf bb;
    sp_norm norm;
    sp_rng rng;            /* shuffling */
    int64_t n_train;
    int64_t *train_ids;    /* given training set */
    int64_t *order;        /* per-epoch utterance order */
    int64_t *batch_start;  /* per-epoch batch starts into order */
    int64_t *sort_tmp;     /* scratch for sorting (2 * n) */
    float *feat;           /* normalised copy of ds->pool */
    const float **feats;   /* per utterance, into feat */
    int64_t *frames;       /* per utterance */
    int32_t *labels;       /* per utterance */
    int64_t steps, epochs;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sp_train_options_init(sp_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->hidden = 128;
    o->batch = 32;
    o->eval_batch = 128;
    o->bucket = 8;
    o->seed = 1;
    sp_adam_options_init(&o->adam);
    o->lr_decay.kind = SP_LR_CONSTANT;
    o->lr_decay.final_factor = 1.0;
}

int sp_lr_schedule_valid(const sp_lr_schedule *s)
{
    if (!s || s->kind == SP_LR_CONSTANT)
        return 1;
    if (s->kind != SP_LR_LINEAR && s->kind != SP_LR_COSINE && s->kind != SP_LR_EXP)
        return 0;
    return s->begin >= 0 && s->begin < s->end && s->final_factor > 0.0 &&
           s->final_factor <= 1.0;
}

double sp_lr_factor(const sp_lr_schedule *s, int64_t step)
{
    if (!s || s->kind == SP_LR_CONSTANT || !sp_lr_schedule_valid(s))
        return 1.0;
    if (step <= s->begin)
        return 1.0;
    if (step >= s->end)
        return s->final_factor;
    const double u = (double)(step - s->begin) / (double)(s->end - s->begin);
    const double f = s->final_factor;
    switch (s->kind) {
    case SP_LR_LINEAR: return 1.0 - (1.0 - f) * u;
    case SP_LR_COSINE: return f + (1.0 - f) * 0.5 * (1.0 + cos(3.14159265358979323846 * u));
    default: return pow(f, u);
    }
}

void sp_trainer_free(sp_trainer *tr)
{
    if (!tr)
        return;
    sp_model_free(&tr->model);
    sp_lstm_ws_free(tr->ws);
    sp_batch_buf_free(&tr->bb);
    free(tr->train_ids);
    free(tr->order);
    free(tr->batch_start);
    free(tr->sort_tmp);
    free(tr->feat);
    free(tr->feats);
    free(tr->frames);
    free(tr->labels);
    free(tr);
}

int sp_trainer_create(sp_trainer **out, const sp_train_options *opt,
                      const sp_dataset *ds, const int64_t *train_ids,
                      int64_t n_train)
{
    if (!out)
        return SP_TRAIN_E_INVALID;
    *out = NULL;
    if (!opt || !ds || ds->n < 1 || !train_ids || n_train < 1 ||
        opt->hidden < 1 || opt->batch < 1 || opt->eval_batch < 1 ||
        opt->bucket < 0 || !sp_lr_schedule_valid(&opt->lr_decay))
        return SP_TRAIN_E_INVALID;
    for (int64_t i = 0; i < n_train; i++)
        if (train_ids[i] < 0 || train_ids[i] >= ds->n)
            return SP_TRAIN_E_INVALID;
    sp_trainer *tr = (sp_trainer *)calloc(1, sizeof *tr);
    if (!tr)
        return SP_TRAIN_E_NOMEM;
    tr->opt = *opt;
    tr->ds = ds;
    tr->n_train = n_train;
    const size_t n = (size_t)ds->n, nt = (size_t)n_train;
    tr->train_ids = (int64_t *)malloc(nt * sizeof(int64_t));
    tr->order = (int64_t *)malloc(nt * sizeof(int64_t));
    tr->batch_start = (int64_t *)malloc((nt + 1) * sizeof(int64_t));
    tr->sort_tmp = (int64_t *)malloc(2 * n * sizeof(int64_t));
    tr->feat = (float *)malloc((size_t)ds->total_frames * SP_FEAT_NMEL * sizeof(float));
    tr->feats = (const float **)malloc(n * sizeof(float *));
    tr->frames = (int64_t *)malloc(n * sizeof(int64_t));
    tr->labels = (int32_t *)malloc(n * sizeof(int32_t));
    if (!tr->train_ids || !tr->order || !tr->batch_start || !tr->sort_tmp ||
        !tr->feat || !tr->feats || !tr->frames || !tr->labels) {
        sp_trainer_free(tr);
        return SP_TRAIN_E_NOMEM;
    }
    memcpy(tr->train_ids, train_ids, nt * sizeof(int64_t));

    /* Normalisation from the training utterances only. */
    const float **tf = (const float **)malloc(nt * sizeof(float *));
    int64_t *tn = (int64_t *)malloc(nt * sizeof(int64_t));
    if (!tf || !tn) {
        free(tf);
        free(tn);
        sp_trainer_free(tr);
        return SP_TRAIN_E_NOMEM;
    }
    for (size_t i = 0; i < nt; i++) {
        tf[i] = ds->utts[train_ids[i]].feat;
        tn[i] = ds->utts[train_ids[i]].frames;
    }
    sp_norm_fit(&tr->norm, n_train, tf, tn);
    free(tf);
    free(tn);
    memcpy(tr->feat, ds->pool, (size_t)ds->total_frames * SP_FEAT_NMEL * sizeof(float));
    for (size_t u = 0; u < n; u++) {
        const sp_utt *ut = &ds->utts[u];
        float *f = tr->feat + (ut->feat - ds->pool);
        sp_norm_apply(&tr->norm, f, ut->frames);
        tr->feats[u] = f;
        tr->frames[u] = ut->frames;
        tr->labels[u] = ut->label;
    }

    sp_rng master;
    sp_rng_seed(&master, opt->seed);
    uint64_t init_seed = sp_rng_next(&master);
    sp_rng_seed(&tr->rng, sp_rng_next(&master));
    if (sp_model_init(&tr->model, SP_FEAT_NMEL, opt->hidden, SP_DS_CLASSES,
                      init_seed) != SP_LSTM_OK ||
        sp_lstm_ws_create(&tr->ws, &tr->model) != SP_LSTM_OK) {
        sp_trainer_free(tr);
        return SP_TRAIN_E_NOMEM;
    }
    *out = tr;
    return SP_TRAIN_OK;
}

sp_model *sp_trainer_model(sp_trainer *tr) { return &tr->model; }

sp_train_options *sp_trainer_options(sp_trainer *tr) { return &tr->opt; }

int64_t sp_trainer_steps_per_epoch(const sp_trainer *tr)
{
    return (tr->n_train + tr->opt.batch - 1) / tr->opt.batch;
}

int64_t sp_trainer_steps_done(const sp_trainer *tr) { return tr->steps; }

const sp_norm *sp_trainer_norm(const sp_trainer *tr) { return &tr->norm; }

/* Sort ids[0..n) by frames, longest first, ties by position (stable). Uses
 * pairs (frames, position) in tmp[0..2n). */
static int cmp_pair_desc(const void *a, const void *b)
{
    const int64_t *x = (const int64_t *)a, *y = (const int64_t *)b;
    if (x[0] != y[0])
        return x[0] > y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static void sort_by_length(int64_t *ids, int64_t n, const int64_t *frames,
                           int64_t *tmp)
{
    for (int64_t i = 0; i < n; i++) {
        tmp[2 * i] = frames[ids[i]];
        tmp[2 * i + 1] = i;
    }
    qsort(tmp, (size_t)n, 2 * sizeof(int64_t), cmp_pair_desc);
    /* tmp[2i+1] = source position; gather through the frames slots. */
    for (int64_t i = 0; i < n; i++)
        tmp[2 * i] = ids[tmp[2 * i + 1]];
    for (int64_t i = 0; i < n; i++)
        ids[i] = tmp[2 * i];
}

int sp_trainer_run_epoch(sp_trainer *tr, sp_epoch_stats *st)
{
    if (!tr || !sp_lr_schedule_valid(&tr->opt.lr_decay))
        return SP_TRAIN_E_INVALID;
    const double t0 = now_seconds();
    const int64_t n = tr->n_train, B = tr->opt.batch;
    memcpy(tr->order, tr->train_ids, (size_t)n * sizeof(int64_t));
    sp_rng_shuffle_i64(&tr->rng, tr->order, n);
    int64_t nb = 0;
    if (tr->opt.bucket > 0) {
        const int64_t chunk = B * tr->opt.bucket;
        for (int64_t c = 0; c < n; c += chunk) {
            int64_t len = n - c < chunk ? n - c : chunk;
            sort_by_length(tr->order + c, len, tr->frames, tr->sort_tmp);
            for (int64_t s = c; s < c + len; s += B)
                tr->batch_start[nb++] = s;
        }
        sp_rng_shuffle_i64(&tr->rng, tr->batch_start, nb);
    } else {
        for (int64_t s = 0; s < n; s += B)
            tr->batch_start[nb++] = s;
    }
    const sp_observe_fn observe = tr->opt.observe;
    double loss_sum = 0.0, norm_sum = 0.0;
    int64_t correct_sum = 0, clipped = 0;
    sp_adam_options adam = tr->opt.adam;
    for (int64_t k = 0; k < nb; k++) {
        int64_t s = tr->batch_start[k];
        int64_t bs = n - s < B ? n - s : B;
        int rc = sp_batch_pack(&tr->bb, bs, tr->order + s, tr->feats,
                               tr->frames, tr->labels, SP_FEAT_NMEL);
        if (rc)
            return rc == SP_LSTM_E_NOMEM ? SP_TRAIN_E_NOMEM : SP_TRAIN_E_INVALID;
        double loss;
        int64_t correct;
        rc = sp_lstm_forward(&tr->model, &tr->bb.b, tr->ws, observe,
                             tr->opt.user, &loss, &correct);
        if (!rc)
            rc = sp_lstm_backward(&tr->model, &tr->bb.b, tr->ws);
        if (rc)
            return rc == SP_LSTM_E_NOMEM ? SP_TRAIN_E_NOMEM : SP_TRAIN_E_INVALID;
        if (tr->opt.before_update)
            tr->opt.before_update(tr->opt.user, tr->steps);
        adam.lr = (float)((double)tr->opt.adam.lr * sp_lr_factor(&tr->opt.lr_decay, tr->steps));
        const double norm = sp_model_adam_step(&tr->model, &adam);
        norm_sum += norm;
        clipped += adam.clip > 0.0f && (double)adam.clip / (norm + 1e-6) < 1.0; /* as clipped */
        if (tr->opt.after_step)
            tr->opt.after_step(tr->opt.user, tr->steps);
        tr->steps++;
        loss_sum += loss * (double)bs;
        correct_sum += correct;
    }
    if (st) {
        st->epoch = tr->epochs;
        st->steps = nb;
        st->loss = loss_sum / (double)n;
        st->acc = (double)correct_sum / (double)n;
        st->seconds = now_seconds() - t0;
        st->lr = adam.lr;
        st->clipped = clipped;
        st->grad_norm = nb ? norm_sum / (double)nb : 0.0;
    }
    tr->epochs++;
    return SP_TRAIN_OK;
}

/* Forward passes over ids[0..n) in batches of eval_batch, sorted by length,
 * with @p observe (may be NULL) seeing each prunable matrix's inputs. */
static int forward_set(sp_trainer *tr, const int64_t *ids, int64_t n, sp_observe_fn observe,
                       void *user, sp_eval_result *res)
{
    if (!tr || !ids || n < 1 || !res)
        return SP_TRAIN_E_INVALID;
    memset(res, 0, sizeof *res);
    int64_t *sorted = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    int64_t *tmp = (int64_t *)malloc((size_t)n * 2 * sizeof(int64_t));
    if (!sorted || !tmp) {
        free(sorted);
        free(tmp);
        return SP_TRAIN_E_NOMEM;
    }
    int rc = SP_TRAIN_OK;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tr->ds->n) {
            rc = SP_TRAIN_E_INVALID;
            break;
        }
        sorted[i] = ids[i];
    }
    if (rc == SP_TRAIN_OK)
        sort_by_length(sorted, n, tr->frames, tmp);
    double loss_sum = 0.0;
    int64_t correct_sum = 0;
    for (int64_t s = 0; s < n && rc == SP_TRAIN_OK; s += tr->opt.eval_batch) {
        int64_t bs = n - s < tr->opt.eval_batch ? n - s : tr->opt.eval_batch;
        double loss;
        int64_t correct;
        int r = sp_batch_pack(&tr->bb, bs, sorted + s, tr->feats, tr->frames,
                              tr->labels, SP_FEAT_NMEL);
        if (!r)
            r = sp_lstm_forward(&tr->model, &tr->bb.b, tr->ws, observe, user,
                                &loss, &correct);
        if (r) {
            rc = r == SP_LSTM_E_NOMEM ? SP_TRAIN_E_NOMEM : SP_TRAIN_E_INVALID;
            break;
        }
        loss_sum += loss * (double)bs;
        correct_sum += correct;
    }
    free(sorted);
    free(tmp);
    if (rc == SP_TRAIN_OK) {
        res->n = n;
        res->correct = correct_sum;
        res->loss = loss_sum / (double)n;
        res->acc = (double)correct_sum / (double)n;
    }
    return rc;
}

int sp_trainer_evaluate(sp_trainer *tr, const int64_t *ids, int64_t n,
                        sp_eval_result *res)
{
    return forward_set(tr, ids, n, NULL, NULL, res);
}

int sp_trainer_calibrate(sp_trainer *tr, const int64_t *ids, int64_t n,
                         sp_observe_fn observe, void *user, sp_eval_result *res)
{
    return forward_set(tr, ids, n, observe, user, res);
}
